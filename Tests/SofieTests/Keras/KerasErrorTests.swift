import Foundation
import SofieFrontends
import XCTest

/// Defective or unsupported Keras files give a clear error naming the file, the layer and its
/// class, a non-zero exit status, and no output file.
final class KerasErrorTests: XCTestCase {
    nonisolated(unsafe) static var folder = ""

    override class func setUp() {
        super.setUp()
        guard FileManager.default.isExecutableFile(atPath: TestSupport.python), let dir = try? TestSupport.tempDir("bad-keras") else { return }
        _ = try? TestSupport.run(TestSupport.python, [TestSupport.repoRoot + "/Tests/scripts/make_bad_keras.py",
                                                      TestSupport.repoRoot + "/Tests/Fixtures/keras", dir])
        folder = dir
    }

    func expectFailure(_ name: String, _ fragments: [String], file: StaticString = #filePath, line: UInt = #line) throws {
        try TestSupport.requirePython()
        let path = Self.folder + "/" + name
        let out = Self.folder + "/out-\(name).onnx"
        let r = try TestSupport.sofie(["convert", path, "-o", out])
        XCTAssertNotEqual(r.status, 0, r.output, file: file, line: line)
        XCTAssertTrue(r.output.contains("error: \(path)"), r.output, file: file, line: line)
        for f in fragments { XCTAssertTrue(r.output.contains(f), "'\(r.output)' should mention '\(f)'", file: file, line: line) }
        XCTAssertFalse(FileManager.default.fileExists(atPath: out), "no output may be left", file: file, line: line)
        let cdir = Self.folder + "/cpp-\(name)"
        let c = try TestSupport.sofie(["compile", path, "-o", cdir])
        XCTAssertNotEqual(c.status, 0, c.output, file: file, line: line)
        XCTAssertTrue(((try? FileManager.default.contentsOfDirectory(atPath: cdir)) ?? []).isEmpty, "compile left files", file: file, line: line)
    }

    func testLambdaLayer() throws {
        try expectFailure("lambda.keras", ["(Lambda)", "not supported", "supported classes:", "Dense", "Conv2D"])
    }

    func testEveryUnsupportedLayerIsListed() throws {
        try expectFailure("several_unsupported.keras", ["4 layers of 2 classes are not supported: GroupedQueryAttention (2: 'pre', 'top'); SpectralNormalization (2: 'sub_a', 'sub_b')",
                                                        "supported classes:"])
    }

    func testCustomLayerClass() throws {
        try expectFailure("custom_class.keras", ["(MyDense)", "Custom>MyDense", "not supported"])
    }

    func testWeightsOfTheWrongShape() throws {
        try expectFailure("wrong_weights.keras", ["(Dense)", "weight"])
    }

    func testUnsupportedOption() throws {
        try expectFailure("bicubic.keras", ["(UpSampling2D)", "interpolation 'bicubic' is not supported"])
    }

    func testTruncatedArchive() throws { try expectFailure("truncated.keras", ["zip"]) }
    func testNotAZip() throws { try expectFailure("not_zip.keras", ["not a readable zip archive"]) }
    func testWeightsOnlyH5() throws { try expectFailure("weights_only.h5", ["model_config", "weights-only"]) }

    func testGoodFileInspects() throws {
        try TestSupport.requirePython()
        let r = try TestSupport.sofie(["inspect", Self.folder + "/good.keras"])
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.output.contains("MatMul"), r.output)
    }
}
