import Foundation
import XCTest

/// Models quantized by ONNX Runtime's own tools (Tests/scripts/make_quantized_models.py:
/// quantize_static in QDQ format, quantize_dynamic) against ONNX Runtime, built with
/// AddressSanitizer and UBSan. ONNX Runtime fuses the QDQ pattern into integer kernels; sofie
/// runs the graph as written, so the outputs agree within one quantization step of the output.
final class QuantizedModelTests: XCTestCase {
    func testQuantizedModelsMatchONNXRuntime() throws {
        try TestSupport.requirePython()
        let fixtures = try TestSupport.tempDir("quantized-fixtures")
        try TestSupport.run(TestSupport.python, [TestSupport.repoRoot + "/Tests/scripts/make_quantized_models.py", fixtures])
        let names = try TestSupport.subfolders(fixtures)
        XCTAssertEqual(names, ["cnn_static_qdq", "mlp_dynamic"])
        try ReferenceFixtures.compileBuildCompare(fixtures: fixtures, names: names, work: try TestSupport.tempDir("quantized"),
                                                  sanitize: true, quantizationSteps: 1)
    }
}
