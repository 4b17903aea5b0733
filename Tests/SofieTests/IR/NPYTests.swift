import Foundation
import SofieBackends
import SofieDriver
import SofieIR
import XCTest

/// NumPy .npy files: the Swift reader and writer against NumPy itself (files NumPy wrote in
/// every dtype, byte order, memory order and format version; files sofie wrote, read back by
/// numpy.load), hostile files refused with a message, and the emitted header's load_npy /
/// save_npy driving a compiled model whose outputs ONNX Runtime checks.
final class NPYTests: XCTestCase {
    static var cases: String = ""

    func casesDir() throws -> String {
        try TestSupport.requirePython()
        if Self.cases.isEmpty {
            let dir = try TestSupport.tempDir("npy-cases")
            try TestSupport.run(TestSupport.python, [TestSupport.repoRoot + "/Tests/scripts/make_npy_cases.py", dir])
            Self.cases = dir
        }
        return Self.cases
    }

    func testReadsWhatNumPyWrites() throws {
        let dir = try casesDir()
        let cases = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/cases.json"))) as! [String: [String: Any]]
        XCTAssertEqual(cases.count, 20)
        for (name, c) in cases.sorted(by: { $0.key < $1.key }) {
            let t = try NPY.read(path: "\(dir)/\(name).npy")
            XCTAssertEqual(t.dims, c["shape"] as! [Int], name)
            let expected = try Data(contentsOf: URL(fileURLWithPath: "\(dir)/\(name).bin"))
            XCTAssertEqual(Data(t.rawBytes!), expected, "\(name): elements differ from NumPy's")
        }
    }

    func testNumPyReadsWhatSofieWrites() throws {
        let dir = try casesDir()
        let cases = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/cases.json"))) as! [String: [String: Any]]
        let out = try TestSupport.tempDir("npy-written")
        for name in cases.keys { try NPY.write(try NPY.read(path: "\(dir)/\(name).npy"), to: "\(out)/\(name).npy") }
        let r = try TestSupport.run(TestSupport.python, ["-c", """
        import json, numpy as np
        cases = json.load(open('\(dir)/cases.json'))
        bad = [n for n in cases if not (lambda a, b: a.dtype == b.dtype.newbyteorder('<') and a.shape == b.shape and np.array_equal(a, b, equal_nan=True))(np.load('\(out)/' + n + '.npy'), np.load('\(dir)/' + n + '.npy'))]
        print(len(cases) - len(bad), 'equal', bad)
        """])
        XCTAssertTrue(r.output.hasPrefix("20 equal []"), r.output)
    }

    func testHostileFilesAreRefusedWithTheirName() throws {
        let dir = try casesDir()
        let expectations = [
            "bad_object": "not a plain numeric type", "bad_structured": "structured", "bad_complex": "not supported",
            "bad_string": "not supported", "bad_truncated": "data bytes", "bad_extra": "data bytes", "bad_magic": "not a .npy file",
            "bad_header_cut": "ends inside its header", "bad_huge_shape": "overflows", "bad_overflow_dim": "not an integer",
            "bad_negative": "negative", "bad_no_shape": "required", "bad_version": "format version", "bad_header_length": "header claims",
        ]
        for (name, words) in expectations {
            let path = "\(dir)/\(name).npy"
            XCTAssertThrowsError(try NPY.read(path: path), name) { error in
                let text = "\(error)"
                XCTAssertTrue(text.hasPrefix(path + ": "), text)
                XCTAssertTrue(text.contains(words), "\(name): \(text)")
            }
        }
    }

    /// The header's helpers as a C++ user writes them: the input read from a big-endian
    /// Fortran-order .npy NumPy wrote, the output written with save_npy and checked by NumPy
    /// against ONNX Runtime; a dtype mismatch is a std::runtime_error naming the file.
    func testEmittedHeaderLoadsAndSavesNpy() throws {
        try TestSupport.requirePython()
        let work = try TestSupport.tempDir("npy-cpp")
        let model = TestSupport.repoRoot + "/Examples/models/mlp.onnx"
        try TestSupport.run(TestSupport.python, ["-c", """
        import numpy as np
        x = np.asfortranarray(np.random.default_rng(5).uniform(-1, 1, (3, 784))).astype('>f4')
        np.save('\(work)/x.npy', x)
        np.save('\(work)/wrong.npy', x.astype(np.float64))
        """])
        var options = Compiler.Options(name: "mlp")
        options.weights = .file
        let emitted = try Compiler.compile(path: model, directory: work, options: options)
        XCTAssertTrue(emitted.runtimeBatch)
        let src = """
        #define SOFIE_NPY
        #include "mlp.hxx"
        #include <cstdio>
        int main(int argc, char** argv) {
            if (argc != 2) return 2;
            std::vector<std::size_t> shape;
            try {
                std::vector<float> x = mlp::load_npy<float>(argv[1], &shape);
                mlp::Session s("\(work)/mlp.weights");
                std::vector<float> y(shape[0] * 10);
                s.infer(shape[0], x.data(), y.data());
                mlp::save_npy("\(work)/y.npy", y, {shape[0], 10});
            } catch (const std::exception& e) {
                std::printf("error: %s\\n", e.what());
                return 3;
            }
            return 0;
        }
        """
        try src.write(toFile: work + "/main.cpp", atomically: true, encoding: .utf8)
        let errors = CppHarness.build([(work + "/main.cpp", work + "/main")], flags: CppHarness.warningFlags + ["-O2", "-I", work])
        XCTAssertEqual(errors.count, 0, errors.values.joined(separator: "\n"))
        try TestSupport.run(work + "/main", [work + "/x.npy"])
        let check = try TestSupport.run(TestSupport.python, ["-c", """
        import numpy as np, onnxruntime as ort
        s = ort.InferenceSession('\(model)', providers=['CPUExecutionProvider'])
        x = np.load('\(work)/x.npy').astype(np.float32)
        ref = s.run(None, {s.get_inputs()[0].name: x})[0]
        y = np.load('\(work)/y.npy')
        assert y.dtype == np.float32 and y.shape == ref.shape, (y.dtype, y.shape, ref.shape)
        print('ok' if np.all(np.abs(y - ref) <= 1e-5 + 1e-4 * np.abs(ref)) else 'max diff %g' % np.abs(y - ref).max())
        """])
        XCTAssertEqual(check.output.trimmingCharacters(in: .whitespacesAndNewlines), "ok")
        let wrong = try TestSupport.run(work + "/main", [work + "/wrong.npy"], check: false)
        XCTAssertEqual(wrong.status, 3)
        XCTAssertTrue(wrong.output.contains("wrong.npy: dtype f8 does not match the requested f4"), wrong.output)
    }
}
