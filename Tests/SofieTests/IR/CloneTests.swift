import Foundation
import SofieBackends
import SofieDriver
import SofieFrontends
import SofieIR
import SofiePasses
import XCTest

/// Model.clone(): the copy serializes to the same bytes, passes the verifier, shares no node,
/// value or tensor object with the original, and optimizing it leaves the original unchanged.
final class CloneTests: XCTestCase {
    func testCloneIsDeepAndFaithful() throws {
        let root = TestSupport.repoRoot
        let models = [root + "/Examples/models/mlp.onnx",
                      root + "/Tests/Fixtures/pytorch/bert_tiny_dynamo/model.onnx",
                      root + "/Tests/Fixtures/pytorch/gru_torchscript/model.onnx",
                      root + "/Tests/Fixtures/keras/mobilenet_block/model.keras"]
        for path in models {
            let original = try ModelLoader.load(path: path)
            let before = try ONNXWriter.serialize(original)
            let copy = original.clone()
            XCTAssertEqual(try ONNXWriter.serialize(copy), before, "\(path): the clone serializes differently")
            try Verifier.verify(copy)
            let originalObjects = Set(original.graph.nodes.map { ObjectIdentifier($0) } + original.graph.definedValues.map { ObjectIdentifier($0) }
                                      + original.graph.initializers.compactMap { $0.initializer.map { ObjectIdentifier($0) } })
            let copyObjects = Set(copy.graph.nodes.map { ObjectIdentifier($0) } + copy.graph.definedValues.map { ObjectIdentifier($0) }
                                  + copy.graph.initializers.compactMap { $0.initializer.map { ObjectIdentifier($0) } })
            XCTAssertTrue(originalObjects.isDisjoint(with: copyObjects), "\(path): the clone shares objects with the original")
            try Compiler.optimize(copy, passes: nil, keepSofieOps: true)
            XCTAssertNotEqual(copy.graph.nodes.count, 0)
            XCTAssertEqual(try ONNXWriter.serialize(original), before, "\(path): optimizing the clone changed the original")
        }
    }

    /// Subgraphs that read a value of the enclosing graph read the copy's value.
    func testSubgraphsReadTheCopiedOuterValues() throws {
        try TestSupport.requirePython()
        let dir = try TestSupport.tempDir("clone-if")
        try TestSupport.run(TestSupport.python, ["-c", """
        import onnx
        from onnx import helper, TensorProto
        t = helper.make_graph([helper.make_node('Relu', ['x2'], ['a'])], 't', [], [helper.make_tensor_value_info('a', TensorProto.FLOAT, [2])])
        e = helper.make_graph([helper.make_node('Neg', ['x2'], ['b'])], 'e', [], [helper.make_tensor_value_info('b', TensorProto.FLOAT, [2])])
        g = helper.make_graph([helper.make_node('Add', ['x', 'x'], ['x2']), helper.make_node('If', ['c'], ['y'], then_branch=t, else_branch=e)], 'g',
                              [helper.make_tensor_value_info('c', TensorProto.BOOL, []), helper.make_tensor_value_info('x', TensorProto.FLOAT, [2])],
                              [helper.make_tensor_value_info('y', TensorProto.FLOAT, [2])])
        onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid('', 17)], ir_version=8), '\(dir)/if.onnx')
        """])
        let original = try ModelLoader.load(path: dir + "/if.onnx")
        let copy = original.clone()
        XCTAssertEqual(try ONNXWriter.serialize(copy), try ONNXWriter.serialize(original))
        let outer = copy.graph.nodes[0].output(0)!
        for sub in copy.graph.nodes[1].subgraphs {
            XCTAssertTrue(sub.nodes[0].input(0) === outer, "a branch reads the original's value, not the copy's")
        }
        XCTAssertEqual(outer.uses.count, 2, "the copied outer value knows its readers in both branches")
    }
}
