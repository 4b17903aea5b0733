import Foundation
import XCTest

/// The same model compiled twice gives the same bytes -- once of the two runs with glibc's
/// allocator filling freed and new memory with a pattern and its thread cache off, so that any
/// read of uninitialized or freed memory changes the output. Covers every PyTorch-export
/// fixture, Keras fixtures in all three formats, and a model whose small-integer and 16-bit
/// float initializers are stored in int32_data (they were once read from freed memory).
final class DeterminismTests: XCTestCase {
    static let perturb = ["MALLOC_PERTURB_": "165", "GLIBC_TUNABLES": "glibc.malloc.tcache_count=0"]

    func run(_ args: [String], perturbed: Bool) throws -> TestSupport.RunResult {
        let env = (perturbed ? Self.perturb : [:]).map { "\($0.key)=\($0.value)" }
        return try TestSupport.run("/usr/bin/env", env + [TestSupport.sofieExecutable] + args, check: false)
    }

    func files(_ dir: String) throws -> [String: Data] {
        var out: [String: Data] = [:]
        for f in try FileManager.default.contentsOfDirectory(atPath: dir) {
            out[f] = try Data(contentsOf: URL(fileURLWithPath: dir + "/" + f))
        }
        return out
    }

    func testCompileTwiceGivesIdenticalBytes() throws {
        let work = try TestSupport.tempDir("determinism")
        var models: [String] = []
        for name in try PyTorchExportTests.names() { models.append("\(PyTorchExportTests.fixtures)/\(name)/model.onnx") }
        let keras = TestSupport.repoRoot + "/Tests/Fixtures/keras"
        for name in ["cnn", "lstm", "gru", "mobilenet_block", "embedding", "bidirectional", "normalizations", "conv_transpose"] {
            for f in ["model.keras", "model_k3.h5", "model_k2.h5"] where FileManager.default.fileExists(atPath: "\(keras)/\(name)/\(f)") {
                models.append("\(keras)/\(name)/\(f)")
            }
        }
        XCTAssertGreaterThan(models.count, 40)
        for (k, model) in models.enumerated() {
            let a = "\(work)/\(k)a", b = "\(work)/\(k)b"
            let r1 = try run(["compile", model, "-o", a, "--name", "model", "--weights", "file"], perturbed: false)
            let r2 = try run(["compile", model, "-o", b, "--name", "model", "--weights", "file"], perturbed: true)
            XCTAssertEqual(r1.status, 0, "\(model): \(r1.output)")
            XCTAssertEqual(r2.status, 0, "\(model): \(r2.output)")
            let fa = try files(a), fb = try files(b)
            XCTAssertEqual(Set(fa.keys), Set(fb.keys), model)
            for (name, bytes) in fa { XCTAssertTrue(bytes == fb[name], "\(model): \(name) differs between two compiles") }
        }
    }

    func testTypedInitializersSurviveConvertUnderMallocPerturb() throws {
        try TestSupport.requirePython()
        let work = try TestSupport.tempDir("typed-data")
        try TestSupport.run(TestSupport.python, [TestSupport.repoRoot + "/Tests/scripts/make_typed_data_model.py", "\(work)/typed.onnx"])
        let r = try run(["convert", "\(work)/typed.onnx", "-o", "\(work)/out.onnx", "-O0"], perturbed: true)
        XCTAssertEqual(r.status, 0, r.output)
        try "\(work)/typed.onnx\t\(work)/out.onnx\n".write(toFile: "\(work)/pairs.txt", atomically: true, encoding: .utf8)
        let check = try TestSupport.run(TestSupport.python, [TestSupport.repoRoot + "/Tests/scripts/check_roundtrip.py", "\(work)/pairs.txt"], check: false)
        XCTAssertEqual(check.status, 0, check.output)
        XCTAssertTrue(check.output.contains("1 ok, 0 failed"), check.output)
    }
}
