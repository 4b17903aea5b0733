import Foundation
import XCTest

/// cmake/SofieModel.cmake as a user uses it: Examples/cmake configured and built by Debian's
/// cmake with the sofie built here, its program run and compared with ONNX Runtime; replacing
/// the model file makes the next build recompile it, an unchanged model does not.
final class CMakeTests: XCTestCase {
    func testExampleProjectBuildsRunsAndFollowsTheModel() throws {
        try TestSupport.requirePython()
        guard let cmake = ["/usr/bin/cmake", "/usr/local/bin/cmake"].first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            return XCTFail("no cmake; scripts/setup.sh installs Debian's")
        }
        let work = try TestSupport.tempDir("cmake-example")
        let model = work + "/model.onnx"
        try FileManager.default.copyItem(atPath: TestSupport.repoRoot + "/Examples/models/mlp.onnx", toPath: model)
        // A fixed input, written by NumPy so that ONNX Runtime and the program read the same floats.
        let input = work + "/input.bin"
        try TestSupport.run(TestSupport.python, ["-c", "import numpy as np; np.random.default_rng(7).uniform(-1, 1, 784).astype(np.float32).tofile('\(input)')"])

        try TestSupport.run(cmake, ["-S", TestSupport.repoRoot + "/Examples/cmake", "-B", work + "/build",
                                   "-DSOFIE_EXECUTABLE=" + TestSupport.sofieExecutable, "-DEXAMPLE_MODEL=" + model])
        func build() throws -> String { try TestSupport.run(cmake, ["--build", work + "/build", "-j", "2"]).output }
        func checkAgainstONNXRuntime(_ what: String) throws {
            let out = try TestSupport.run(work + "/build/classify", [input]).output
            let ours = out.split(separator: "\n").compactMap { Double($0) }
            let ref = try TestSupport.run(TestSupport.python, ["-c", """
            import numpy as np, onnxruntime as ort
            s = ort.InferenceSession('\(model)', providers=['CPUExecutionProvider'])
            x = np.fromfile('\(input)', dtype=np.float32).reshape(1, 784)
            print('\\n'.join(repr(float(v)) for v in s.run(None, {s.get_inputs()[0].name: x})[0].ravel()))
            """]).output.split(separator: "\n").compactMap { Double($0) }
            XCTAssertEqual(ours.count, 10, "\(what): \(out)")
            XCTAssertEqual(ours.count, ref.count, what)
            for (a, b) in zip(ours, ref) { XCTAssertLessThanOrEqual(abs(a - b), 1e-5 + 1e-4 * abs(b), "\(what): \(ours) vs ONNX Runtime \(ref)") }
        }

        let first = try build()
        XCTAssertTrue(first.contains("sofie: compiling"), first)
        XCTAssertTrue(FileManager.default.fileExists(atPath: work + "/build/sofie/mlp/mlp.weights"))
        try checkAgainstONNXRuntime("first build")

        let again = try build()
        XCTAssertFalse(again.contains("sofie: compiling"), "an unchanged model was recompiled:\n\(again)")

        // New weights in the same file: the next build must recompile it and follow the change.
        Thread.sleep(forTimeInterval: 1.1)  // file times of 1 s resolution on some file systems
        try TestSupport.run(TestSupport.python, ["-c", """
        import onnx, numpy as np
        from onnx import numpy_helper
        m = onnx.load('\(model)')
        t = max(m.graph.initializer, key=lambda t: np.prod(t.dims))
        t.CopyFrom(numpy_helper.from_array(-1.5 * numpy_helper.to_array(t), t.name))
        onnx.save(m, '\(model)')
        """])
        let third = try build()
        XCTAssertTrue(third.contains("sofie: compiling"), "a changed model was not recompiled:\n\(third)")
        try checkAgainstONNXRuntime("after changing the model")
    }

    /// A name that is not a clean C++ identifier is refused at configure time, with the fix.
    func testBadNameIsAConfigureError() throws {
        guard let cmake = ["/usr/bin/cmake", "/usr/local/bin/cmake"].first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            return XCTFail("no cmake; scripts/setup.sh installs Debian's")
        }
        let work = try TestSupport.tempDir("cmake-bad-name")
        try """
        cmake_minimum_required(VERSION 3.19)
        project(bad LANGUAGES CXX)
        include(\(TestSupport.repoRoot)/cmake/SofieModel.cmake)
        sofie_add_model(m MODEL \(TestSupport.repoRoot)/Examples/models/mlp.onnx NAME 2-layer)
        """.write(toFile: work + "/CMakeLists.txt", atomically: true, encoding: .utf8)
        let r = try TestSupport.run(cmake, ["-S", work, "-B", work + "/build", "-DSOFIE_EXECUTABLE=" + TestSupport.sofieExecutable], check: false)
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.output.contains("'2-layer' is not usable as a C++ namespace"), r.output)
    }
}
