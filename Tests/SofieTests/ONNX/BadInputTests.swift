import Foundation
import SofieFrontends
import SofieIR
import XCTest

/// Every kind of bad input gives a clear error naming the file and the defect, a non-zero
/// exit status from the CLI, and no output file.
final class BadInputTests: XCTestCase {
    nonisolated(unsafe) static var folder: String = ""

    override class func setUp() {
        super.setUp()
        guard FileManager.default.isExecutableFile(atPath: TestSupport.python),
              let dir = try? TestSupport.tempDir("bad-inputs") else { return }
        _ = try? TestSupport.run(TestSupport.python, [TestSupport.repoRoot + "/Tests/scripts/make_bad_inputs.py", dir])
        folder = dir
    }

    /// Reads `name` with the library and through `sofie convert`, expecting `fragments` in both errors.
    func expectFailure(_ name: String, _ fragments: [String], file: StaticString = #filePath, line: UInt = #line) throws {
        try TestSupport.requirePython()
        let path = Self.folder + "/" + name
        XCTAssertThrowsError(try ONNXReader.read(path: path), file: file, line: line) { error in
            let text = "\(error)"
            XCTAssertTrue(text.hasPrefix(path), "error should name the file: \(text)", file: file, line: line)
            for f in fragments { XCTAssertTrue(text.contains(f), "'\(text)' should mention '\(f)'", file: file, line: line) }
        }
        let out = Self.folder + "/out-\(name)"
        let r = try TestSupport.sofie(["convert", path, "-o", out])
        XCTAssertNotEqual(r.status, 0, "sofie convert should fail on \(name)", file: file, line: line)
        XCTAssertTrue(r.output.contains("error: \(path)"), r.output, file: file, line: line)
        XCTAssertFalse(r.output.contains("Fatal error") || r.output.contains("Stack dump"), r.output, file: file, line: line)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out), "no output file may be left behind", file: file, line: line)
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: Self.folder).filter { $0.contains(".tmp-") }
        XCTAssertEqual(leftovers, [], "temporary files left behind", file: file, line: line)
    }

    func testTruncatedProtobuf() throws { try expectFailure("truncated.onnx", ["truncated or corrupt"]) }
    func testCorruptProtobuf() throws { try expectFailure("corrupt.onnx", ["truncated or corrupt"]) }
    func testNotONNXAtAll() throws { try expectFailure("not_onnx.onnx", ["not a valid ONNX model"]) }
    func testEmptyFile() throws { try expectFailure("empty.onnx", ["empty"]) }
    func testRawDataShorterThanShape() throws { try expectFailure("raw_short.onnx", ["tensor 'w'", "12 bytes", "shorter", "16 bytes"]) }
    func testDimsOverflow() throws { try expectFailure("dims_overflow.onnx", ["tensor 'w'", "overflows"]) }
    func testNegativeDims() throws { try expectFailure("dims_negative.onnx", ["tensor 'w'", "negative dimension"]) }
    func testExternalDataMissing() throws { try expectFailure("external_missing.onnx", ["weights_missing.bin", "cannot be read"]) }
    func testExternalDataEscapesFolder() throws { try expectFailure("external_escape.onnx", ["../../etc/passwd", "outside the model's folder"]) }
    func testExternalDataAbsolutePath() throws { try expectFailure("external_absolute.onnx", ["/etc/passwd", "outside the model's folder"]) }
    func testExternalDataTooShort() throws { try expectFailure("external_short.onnx", ["weights_small.bin", "only 8 bytes"]) }

    func testExternalDataIsRead() throws {
        try TestSupport.requirePython()
        let model = try ONNXReader.read(path: Self.folder + "/external_ok.onnx")
        let w = try XCTUnwrap(model.graph.initializers.first?.initializer)
        XCTAssertEqual(w.values(as: Float.self), [0, 1, 2, 3])
    }

    func testMissingFileAndUnknownFormat() throws {
        let r = try TestSupport.sofie(["inspect", "/nonexistent/model.onnx"])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.output.contains("no such file"), r.output)
        let txt = try TestSupport.tempDir("unknown-format") + "/model.txt"
        try "x".write(toFile: txt, atomically: true, encoding: .utf8)
        let r2 = try TestSupport.sofie(["inspect", txt])
        XCTAssertNotEqual(r2.status, 0)
        XCTAssertTrue(r2.output.contains("unknown model format"), r2.output)
    }

    func testUnwritableOutputLeavesNothing() throws {
        try TestSupport.requirePython()
        let r = try TestSupport.sofie(["convert", Self.folder + "/good.onnx", "-o", "/nonexistent-dir/out.onnx"])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.output.contains("does not exist"), r.output)
    }
}
