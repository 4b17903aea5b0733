import Foundation
import SofieDriver
import SofieIR
import XCTest

/// Models quantized by ONNX Runtime's own tools (Tests/scripts/make_quantized_models.py:
/// quantize_static in QDQ format, quantize_dynamic) against ONNX Runtime running the graph as
/// written (its fused integer kernels give machine-dependent results: saturating u8 x s8
/// products without VNNI), built with AddressSanitizer and UBSan; within one quantization step
/// of the output.
final class QuantizedModelTests: XCTestCase {
    func testQuantizedModelsMatchONNXRuntime() throws {
        try ReferenceFixtures.makeAndCompare(script: "make_quantized_models.py", expect: ["cnn_static_qdq", "mlp_dynamic"], quantizationSteps: 1)
    }

    /// Run-time values no quantizer produces — NaN, infinities, a zero scale, sums that pass
    /// int32 — stay defined (built with UBSan and its float-cast-overflow check, which fail the run on undefined behaviour):
    /// NaN quantizes to the low end of the range, as the reference's int32 conversion clips.
    func testQuantizationOfExtremeValuesIsDefined() throws {
        let g = Graph(name: "q")
        let x = Value(name: "x", type: .tensor(TensorType(.float, fixed: [6])))
        let s = Value(name: "s", type: .tensor(TensorType(.float, fixed: [])))
        g.inputs = [x, s]
        let zp = Value(name: "zp", initializer: Tensor(name: "zp", dataType: .uint8, dims: [], values: [UInt8(3)]))
        zp.tensorType = TensorType(.uint8, fixed: [])
        g.addInitializer(zp)
        let q = Value(name: "q"), dq = Value(name: "dq")
        g.appendNode(Node(opType: "QuantizeLinear", name: "quant", inputs: [x, s, zp], outputs: [q]))
        g.appendNode(Node(opType: "DynamicQuantizeLinear", name: "dyn", inputs: [x], outputs: [dq, Value(name: "ds"), Value(name: "dz")]))
        g.outputs = [q, dq]
        let model = Model(graph: g)
        model.opsetImports = [OpsetImport(domain: "", version: 21)]
        let dir = try TestSupport.tempDir("quant-extremes")
        var options = Compiler.Options(name: "model")
        options.weights = .embed
        let emitted = try Compiler.compile(model, source: "q.onnx", directory: dir, options: options)
        try Data([Float.nan, .infinity, -.infinity, 1e30, 2.5, -0.0].flatMap { withUnsafeBytes(of: $0, Array.init) }).write(to: URL(fileURLWithPath: "\(dir)/in0.bin"))
        try Data(withUnsafeBytes(of: Float(0.5), Array.init)).write(to: URL(fileURLWithPath: "\(dir)/in1.bin"))
        let driver = CppHarness.singleModelDriver(header: emitted.header, namespace: emitted.namespace, dir: dir, weights: nil)
        try driver.write(toFile: "\(dir)/main.cpp", atomically: true, encoding: .utf8)
        let errors = CppHarness.build([("\(dir)/main.cpp", "\(dir)/main")], flags: CppHarness.warningFlags + CppHarness.oneRuntimeCopy + ["-O1", "-fsanitize=address,undefined,float-cast-overflow", "-fno-sanitize-recover=all"])
        XCTAssertTrue(errors.isEmpty, "\(errors)")
        let r = try TestSupport.run("\(dir)/main", [], check: false)
        XCTAssertEqual(r.status, 0, r.output)
        let out = try Data(contentsOf: URL(fileURLWithPath: "\(dir)/out0.bin"))
        // NaN -> 0 (low end), inf -> 255, -inf -> 0, 1e30 -> 255, 2.5/0.5 = 5 + 3 = 8, -0 -> 3.
        XCTAssertEqual(Array(out), [0, 255, 0, 255, 8, 3])
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: "\(dir)/out1.bin")).count, 6)
    }
}
