import Foundation
import SofieDriver
import SofieIR
import XCTest

/// ONNX Attention (opset 23) at transformer sizes against ONNX Runtime
/// (Tests/scripts/make_attention_models.py), built with AddressSanitizer and UBSan; the
/// conformance tests cover the rest of the op (its 80-odd node tests).
final class AttentionTests: XCTestCase {
    func testAttentionModelsMatchONNXRuntime() throws {
        try ReferenceFixtures.makeAndCompare(script: "make_attention_models.py",
                                             expect: ["causal_after_prefix_odd_sizes", "causal_prefill_4d", "decode_step_kv_cache", "full_after_prefix_odd_sizes", "gqa_3d_float_mask", "padded_batch_bool_mask", "softcap_scores"])
    }

    /// Head counts and shapes from the file are checked before anything is emitted: each bad
    /// case is refused with a message naming the node and the numbers.
    func testInconsistentAttentionIsRefusedClearly() throws {
        func model(q: [Int], k: [Int], v: [Int], attributes: [Attribute]) -> Model {
            let g = Graph(name: "g")
            let ins = [("Q", q), ("K", k), ("V", v)].map { Value(name: $0.0, type: .tensor(TensorType(.float, fixed: $0.1))) }
            g.inputs = ins
            let y = Value(name: "Y")
            g.appendNode(Node(opType: "Attention", name: "attn", inputs: ins, outputs: [y], attributes: attributes))
            g.outputs = [y]
            let m = Model(graph: g)
            m.opsetImports = [OpsetImport(domain: "", version: 23)]
            return m
        }
        let cases: [(Model, String)] = [
            (model(q: [1, 4, 24], k: [1, 4, 24], v: [1, 4, 24], attributes: [Attribute("q_num_heads", .int(5)), Attribute("kv_num_heads", .int(3))]),
             "not multiples of the head counts"),
            (model(q: [1, 4, 24], k: [1, 4, 24], v: [1, 4, 24], attributes: []), "need positive q_num_heads and kv_num_heads"),
            (model(q: [1, 3, 4, 8], k: [1, 2, 6, 8], v: [1, 2, 6, 8], attributes: []), "is not a multiple of kv_num_heads"),
            (model(q: [1, 2, 4, 8], k: [1, 2, 6, 4], v: [1, 2, 6, 8], attributes: []), "head size 8 differs from K's 4"),
            (model(q: [1, 2, 4, 8], k: [1, 2, 6, 8], v: [1, 2, 6, 8], attributes: [Attribute("left_window_size", .int(-5))]), "left_window_size = -5"),
        ]
        for (m, expected) in cases {
            var options = Compiler.Options(name: "m")
            options.weights = .embed
            XCTAssertThrowsError(try Compiler.emit(m, options: options, source: "attn.onnx")) { error in
                XCTAssertTrue("\(error)".contains(expected), "\(error)")
            }
        }
    }
}
