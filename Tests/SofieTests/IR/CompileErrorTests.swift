import Foundation
import SofieDriver
import SofieFrontends
import SofieIR
import XCTest

/// Errors say what they are about as a case of CompileError.Subject (not as a magic op-type
/// string), and each kind of subject reads as its own message.
final class CompileErrorTests: XCTestCase {
    func testSubjectsAndMessages() {
        XCTAssertEqual(CompileError(.node(name: "conv1", opType: "Conv"), "bad pads").description, "node 'conv1' (op Conv): bad pads")
        XCTAssertEqual(CompileError(.node(name: "", opType: "Relu"), "why").description, "unnamed Relu node: why")
        XCTAssertEqual(CompileError(.graphInput("x"), "input 'x' has ...").description, "input 'x' has ...")
        XCTAssertEqual(CompileError(.internalError, "no arena slot").description, "internal error: no arena slot")
        let e = CompileError(.initializer("w"), "unsupported type")
        XCTAssertEqual(e.node, "")
        XCTAssertEqual(e.opType, "")
        XCTAssertEqual(e.subject, .initializer("w"))
    }

    /// A symbolic dimension left unpinned is an error about that graph input.
    func testUnpinnedDimensionNamesTheGraphInput() throws {
        try TestSupport.requirePython()
        let dir = try TestSupport.tempDir("compile-error")
        try TestSupport.run(TestSupport.python, ["-c", """
        import onnx
        from onnx import helper, TensorProto
        g = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, "S"])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, "S"])])
        onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), "\(dir)/m.onnx")
        """])
        let model = try ModelLoader.load(path: dir + "/m.onnx")
        XCTAssertThrowsError(try Compiler.emit(model, options: Compiler.Options(name: "m"), source: "m.onnx")) { error in
            guard let e = error as? CompileError else { return XCTFail("\(error)") }
            XCTAssertEqual(e.subject, .graphInput("x"))
            XCTAssertTrue(e.description.contains("--dim S=VALUE"), e.description)
        }
    }

    /// Sub-byte tensors live one value per byte in int8_t/uint8_t: an op that would compute on
    /// that storage (and so leave int4's range without wrapping) is refused by name, with the way out.
    func testArithmeticOnSubByteTensorsIsRefused() throws {
        let g = Graph(name: "g")
        let x = Value(name: "x", type: .tensor(TensorType(.int4, fixed: [4])))
        g.inputs = [x]
        let y = Value(name: "y")
        g.appendNode(Node(opType: "Add", name: "add4", inputs: [x, x], outputs: [y]))
        g.outputs = [y]
        let model = Model(graph: g)
        model.opsetImports = [OpsetImport(domain: "", version: 25)]
        XCTAssertThrowsError(try Compiler.emit(model, options: Compiler.Options(name: "m"), source: "m.onnx")) { error in
            guard let e = error as? CompileError else { return XCTFail("\(error)") }
            XCTAssertEqual(e.subject, .node(name: "add4", opType: "Add"))
            XCTAssertTrue(e.description.contains("stores one value per byte") && e.description.contains("cast it to a wider type first"), e.description)
        }
    }

    /// Unrolling is bounded: a Scan of 60,000 steps over even a one-node body is refused with the
    /// numbers (the inline-control-flow pass's node budget), not expanded into a huge graph.
    func testScanUnrollingIsBounded() throws {
        let body = Graph(name: "body")
        let s = Value(name: "s", type: .tensor(TensorType(.float, fixed: [2]))), xt = Value(name: "x_t", type: .tensor(TensorType(.float, fixed: [2])))
        let s2 = Value(name: "s2")
        body.inputs = [s, xt]
        body.appendNode(Node(opType: "Add", inputs: [s, xt], outputs: [s2]))
        body.outputs = [s2]
        let g = Graph(name: "g")
        let s0 = Value(name: "s0", type: .tensor(TensorType(.float, fixed: [2]))), x = Value(name: "x", type: .tensor(TensorType(.float, fixed: [60_000, 2])))
        g.inputs = [s0, x]
        let y = Value(name: "y")
        g.appendNode(Node(opType: "Scan", name: "long_scan", inputs: [s0, x], outputs: [y],
                          attributes: [Attribute("body", .graph(body)), Attribute("num_scan_inputs", .int(1))]))
        g.outputs = [y]
        let model = Model(graph: g)
        model.opsetImports = [OpsetImport(domain: "", version: 21)]
        XCTAssertThrowsError(try Compiler.emit(model, options: Compiler.Options(name: "m"), source: "m.onnx")) { error in
            guard let e = error as? CompileError else { return XCTFail("\(error)") }
            XCTAssertEqual(e.subject, .node(name: "long_scan", opType: "Scan"))
            XCTAssertTrue(e.description.contains("unrolling 60000 steps of a 1-node body would add 120000 nodes, more than the 19999 allowed"), e.description)
        }
    }
}
