import Foundation
import SofieIR

/// Finds Gelu and LayerNormalization written out as elementwise ops (as exporters and our
/// Keras lowering write them) and puts the single op in their place.
enum Recognize {
    /// The scalar value of a constant, if it holds exactly one element.
    static func scalar(_ v: Value?) -> Double? {
        guard let t = v?.initializer, t.elementCount == 1, let a = NDArray(t) else { return nil }
        return a.double(0)
    }

    static func close(_ a: Double?, _ b: Double) -> Bool { a.map { abs($0 - b) <= 1e-6 * abs(b) } ?? false }

    /// The factors of a product tree of Mul nodes rooted at `v` (interior products must have one reader).
    static func factors(_ v: Value, root: Bool, nodes: inout [Node]) -> [Value] {
        guard let n = v.producer, n.opType == "Mul", n.isStandard, n.inputs.count == 2, root || v.uses.count == 1,
              let a = n.input(0), let b = n.input(1), nodes.count < 3 else { return [v] }
        nodes.append(n)
        return factors(a, root: false, nodes: &nodes) + factors(b, root: false, nodes: &nodes)
    }
}
