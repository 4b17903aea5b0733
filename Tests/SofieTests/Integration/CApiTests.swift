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

    /// Run-time dimensions through the C interface: the Deep Sets fixture compiled with
    /// --dim n=max:32 takes n as an argument of ds_infer (ONNX Runtime's outputs at n = 1, 2, 5,
    /// 17, 32; 0 and 33 return DS_ERROR_DIMENSION), and a Range over run-time bounds reports its
    /// length through rg_last_r_len (100 elements beyond the bound of 64: RG_ERROR_LENGTH).
    func testRunTimeDimensionsFromC() throws {
        try TestSupport.requirePython()
        let work = try TestSupport.tempDir("c-api-dims")
        let fixture = TestSupport.repoRoot + "/Tests/Fixtures/runtime_dims/deepsets_dynamo"
        let r = try TestSupport.sofie(["compile", fixture + "/model.onnx", "-o", work, "--name", "ds", "--dim", "n=max:32", "--c-api", "--weights", "embed"])
        XCTAssertEqual(r.status, 0, r.output)
        try TestSupport.run(TestSupport.python, [TestSupport.repoRoot + "/Tests/scripts/make_range_models.py", work + "/range"])
        let r2 = try TestSupport.sofie(["compile", work + "/range/range_float/model.onnx", "-o", work, "--name", "rg", "--dim", "r_len=max:64", "--c-api", "--weights", "embed"])
        XCTAssertEqual(r2.status, 0, r2.output)
        let header = try String(contentsOfFile: work + "/ds_c.h", encoding: .utf8)
        XCTAssertTrue(header.contains("int ds_infer(ds_session* session, int64_t n, const float* input0, float* y);"), header)
        let cxx = ProcessInfo.processInfo.environment["CXX"] ?? "g++"
        for lib in ["ds", "rg"] {
            try TestSupport.run("/usr/bin/env", [cxx, "-std=c++17", "-O2", "-Wall", "-Wextra", "-Werror", "-fPIC", "-shared", work + "/\(lib)_c.cpp", "-o", work + "/lib\(lib).so"])
        }
        try """
        #include "ds_c.h"
        #include "rg_c.h"
        #include <math.h>
        #include <stdio.h>

        static int load(const char* path, float* v, size_t n) {
            FILE* f = fopen(path, "rb");
            size_t got = f ? fread(v, sizeof(float), n, f) : 0;
            if (f) fclose(f);
            return got == n;
        }

        int main(int argc, char** argv) {
            static const int64_t sizes[5] = {1, 2, 5, 17, 32};
            static float x[DS_INPUT0_SIZE], y[DS_OUTPUT0_SIZE], want[DS_OUTPUT0_SIZE], r[RG_OUTPUT0_SIZE];
            char path[4096];
            ds_session* s = NULL;
            rg_session* g = NULL;
            int c, i, failed = 0;
            float a = 0.0f, b = 10.0f, d = 1.0f;
            if (argc != 2 || ds_create(NULL, &s) != DS_OK || rg_create(NULL, &g) != RG_OK) return 2;
            for (c = 0; c < 5; ++c) {
                sprintf(path, "%s/case%d_in0.bin", argv[1], c);
                if (ds_input0_size(sizes[c]) != (size_t)(6 * sizes[c]) || !load(path, x, ds_input0_size(sizes[c]))) return 2;
                sprintf(path, "%s/case%d_out0.ref", argv[1], c);
                if (!load(path, want, DS_OUTPUT0_SIZE)) return 2;
                if (ds_infer(s, sizes[c], x, y) != DS_OK) { printf("n = %d failed\\n", (int)sizes[c]); failed = 1; }
                for (i = 0; i < DS_OUTPUT0_SIZE; ++i)
                    if (fabs(y[i] - want[i]) > 1e-5 + 1e-4 * fabs(want[i])) { printf("n = %d: y[%d] = %g, ONNX Runtime %g\\n", (int)sizes[c], i, y[i], want[i]); failed = 1; }
            }
            printf("n = 0: %d\\n", ds_infer(s, 0, x, y));
            printf("n = 33: %d %s\\n", ds_infer(s, 33, x, y), ds_status_message(ds_infer(s, 33, x, y)));
            c = rg_infer(g, &a, &b, &d, r);  /* (the length is read after the call) */
            printf("range 0..10: %d, length %d\\n", c, (int)rg_last_r_len(g));
            for (i = 0; i < 10; ++i) if (r[i] != (float)i) failed = 1;
            b = 100.0f;
            printf("range 0..100: %d %s\\n", rg_infer(g, &a, &b, &d, r), rg_status_message(RG_ERROR_LENGTH));
            printf("bounds %d..%d, %d..%d\\n", DS_N_MIN, DS_N_MAX, RG_R_LEN_MIN, RG_R_LEN_MAX);
            ds_destroy(s);
            rg_destroy(g);
            return failed;
        }
        """.write(toFile: work + "/main.c", atomically: true, encoding: .utf8)
        try TestSupport.run("/usr/bin/env", ["gcc", "-std=c99", "-pedantic", "-Wall", "-Wextra", "-Werror", work + "/main.c", "-I", work,
                                             "-L", work, "-lds", "-lrg", "-lm", "-Wl,-rpath," + work, "-o", work + "/main"])
        let run = try TestSupport.run(work + "/main", [fixture], check: false)
        XCTAssertEqual(run.status, 0, run.output)
        let lines = run.output.split(separator: "\n").map(String.init)
        XCTAssertTrue(lines.contains("n = 0: 5"), run.output)
        XCTAssertTrue(lines.contains("n = 33: 5 ds: a run-time dimension is outside the range the code was compiled for"), run.output)
        XCTAssertTrue(lines.contains("range 0..10: 0, length 10"), run.output)
        XCTAssertTrue(lines.contains("range 0..100: 6 rg: a length computed from the input values exceeds its bound"), run.output)
        XCTAssertTrue(lines.contains("bounds 1..32, 0..64"), run.output)
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
