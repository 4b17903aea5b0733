import Foundation
import SofieBackends
import SofieFrontends
import SofieIR
import XCTest

final class FunctionInliningTests: XCTestCase {
    func testLocalFunctionsAreInlinedAndKeepTheNumbers() throws {
        try TestSupport.requirePython()
        let dir = try TestSupport.tempDir("functions")
        let original = dir + "/functions.onnx"
        try TestSupport.run(TestSupport.python, [TestSupport.repoRoot + "/Tests/scripts/make_function_model.py", original])
        let model = try ONNXReader.read(path: original)
        try Verifier.verify(model)
        let ops = model.graph.nodes.map(\.opType)
        XCTAssertEqual(ops.filter { $0 == "LeakyRelu" }.count, 2)
        XCTAssertFalse(ops.contains("Block") || ops.contains("ScaledLeaky"), "function calls should be inlined: \(ops)")
        // The attribute reference took the caller's alpha in block1 and the default in leaky2.
        let alphas = model.graph.nodes.filter { $0.opType == "LeakyRelu" }.map { $0.float("alpha") }
        XCTAssertEqual(alphas, [0.3, 0.1])
        let written = dir + "/inlined.onnx"
        try ONNXWriter.write(model, to: written)
        let r = try TestSupport.run(TestSupport.python, [TestSupport.repoRoot + "/Tests/scripts/compare_ort.py", original, written], check: false)
        XCTAssertEqual(r.status, 0, r.output)
    }
}
