import Foundation
import XCTest

/// `sofie compile --c-api` as its users use it: NAME_c.cpp built into a shared library with g++,
/// called from a C99 program (gcc -pedantic) and from Python through ctypes, each compared
/// with ONNX Runtime; the error paths return status codes, never an exception or a crash.
final class CApiTests: XCTestCase {
    func build(_ weights: String, _ work: String) throws {
        let model = TestSupport.repoRoot + "/Examples/models/mlp.onnx"
        let r = try TestSupport.sofie(["compile", model, "-o", work, "--c-api", "--weights", weights])
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.output.contains("with the C interface"), r.output)
        let cxx = ProcessInfo.processInfo.environment["CXX"] ?? "g++"
        try TestSupport.run("/usr/bin/env", [cxx, "-std=c++17", "-O2", "-Wall", "-Wextra", "-Werror", "-fPIC", "-shared",
                                             work + "/mlp_c.cpp", "-o", work + "/libmlp.so"])
    }

    func reference(_ input: String, rows: Int) throws -> [Double] {
        try TestSupport.run(TestSupport.python, ["-c", """
        import numpy as np, onnxruntime as ort
        s = ort.InferenceSession('\(TestSupport.repoRoot)/Examples/models/mlp.onnx', providers=['CPUExecutionProvider'])
        x = np.fromfile('\(input)', dtype=np.float32).reshape(\(rows), 784)
        print('\\n'.join(repr(float(v)) for v in s.run(None, {s.get_inputs()[0].name: x})[0].ravel()))
        """]).output.split(separator: "\n").compactMap { Double($0) }
    }

    func assertClose(_ ours: [Double], _ ref: [Double], _ what: String) {
        XCTAssertEqual(ours.count, ref.count, what)
        for (a, b) in zip(ours, ref) where abs(a - b) > 1e-5 + 1e-4 * abs(b) {
            return XCTFail("\(what): \(a) vs ONNX Runtime \(b)")
        }
    }

    func testFromC() throws {
        try TestSupport.requirePython()
        let work = try TestSupport.tempDir("c-api-c")
        try build("file", work)
        let input = work + "/x.bin"
        try TestSupport.run(TestSupport.python, ["-c", "import numpy as np; np.random.default_rng(11).uniform(-1, 1, (3, 784)).astype(np.float32).tofile('\(input)')"])
        try """
        #include "mlp_c.h"
        #include <stdio.h>
        #include <stdlib.h>

        int main(int argc, char** argv) {
            enum { ROWS = 3 };
            static float x[ROWS * MLP_INPUT0_SIZE], y[ROWS * MLP_OUTPUT0_SIZE];
            mlp_session* s = NULL;
            mlp_session* none = NULL;
            FILE* f;
            int status, i;
            if (argc != 3) return 2;
            f = fopen(argv[2], "rb");
            if (!f || fread(x, sizeof(float), ROWS * MLP_INPUT0_SIZE, f) != ROWS * MLP_INPUT0_SIZE) return 2;
            fclose(f);
            /* The error paths first: each returns its status and leaves no session behind. */
            status = mlp_create("/nonexistent/mlp.weights", &none);
            printf("missing weights: %d %s %s\\n", status, mlp_status_message(status), none == NULL ? "null" : "set");
            printf("null session out: %d\\n", mlp_create(argv[1], NULL));
            status = mlp_create(argv[1], &s);
            if (status != MLP_OK) { printf("create failed: %s\\n", mlp_status_message(status)); return 1; }
            printf("null input: %d\\n", mlp_infer(s, ROWS, NULL, y));
            printf("zero batch: %d\\n", mlp_infer(s, 0, x, y));
            status = mlp_infer(s, ROWS, x, y);
            printf("infer: %d\\n", status);
            for (i = 0; i < ROWS * MLP_OUTPUT0_SIZE; ++i) printf("%.9g\\n", y[i]);
            mlp_destroy(s);
            mlp_destroy(NULL);
            return status;
        }
        """.write(toFile: work + "/main.c", atomically: true, encoding: .utf8)
        try TestSupport.run("/usr/bin/env", ["gcc", "-std=c99", "-pedantic", "-Wall", "-Wextra", "-Werror", work + "/main.c", "-I", work,
                                             "-L", work, "-lmlp", "-Wl,-rpath," + work, "-o", work + "/main"])
        let out = try TestSupport.run(work + "/main", [work + "/mlp.weights", input]).output
        let lines = out.split(separator: "\n").map(String.init)
        XCTAssertEqual(lines.first, "missing weights: 2 mlp: cannot read the weights file (missing, unreadable or too short) null")
        XCTAssertTrue(lines.contains("null session out: 1"), out)
        XCTAssertTrue(lines.contains("null input: 1"), out)
        XCTAssertTrue(lines.contains("zero batch: 1"), out)
        XCTAssertTrue(lines.contains("infer: 0"), out)
        let values = lines.drop { $0 != "infer: 0" }.dropFirst().compactMap { Double($0) }
        assertClose(values, try reference(input, rows: 3), "C through mlp_c.h")
    }

    func testFromPythonCtypes() throws {
        try TestSupport.requirePython()
        for weights in ["file", "embed"] {
            let work = try TestSupport.tempDir("c-api-ctypes-\(weights)")
            try build(weights, work)
            let input = work + "/x.bin"
            try TestSupport.run(TestSupport.python, ["-c", "import numpy as np; np.random.default_rng(12).uniform(-1, 1, (5, 784)).astype(np.float32).tofile('\(input)')"])
            let r = try TestSupport.run(TestSupport.python, ["-c", """
            import ctypes, numpy as np
            lib = ctypes.CDLL('\(work)/libmlp.so')
            F = np.ctypeslib.ndpointer(dtype=np.float32, flags='C_CONTIGUOUS')
            lib.mlp_create.argtypes = [ctypes.c_char_p, ctypes.POINTER(ctypes.c_void_p)]
            lib.mlp_infer.argtypes = [ctypes.c_void_p, ctypes.c_size_t, F, F]
            lib.mlp_destroy.argtypes = [ctypes.c_void_p]
            lib.mlp_status_message.restype = ctypes.c_char_p
            s = ctypes.c_void_p()
            path = \(weights == "file" ? "b'\(work)/mlp.weights'" : "None")
            status = lib.mlp_create(path, ctypes.byref(s))
            assert status == 0, lib.mlp_status_message(status)
            x = np.fromfile('\(input)', dtype=np.float32).reshape(5, 784)
            y = np.zeros((5, 10), dtype=np.float32)
            assert lib.mlp_infer(s, 5, x, y) == 0
            lib.mlp_destroy(s)
            print('\\n'.join(repr(float(v)) for v in y.ravel()))
            """])
            assertClose(r.output.split(separator: "\n").compactMap { Double($0) }, try reference(input, rows: 5), "ctypes, weights \(weights)")
        }
    }
}
