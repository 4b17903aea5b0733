import Foundation
import SofieIR

/// LayerNormalization written out: m = ReduceMean(x, trailing axes); d = x - m;
/// v = ReduceMean(d * d or d ^ 2); y = d / Sqrt(v + eps) (or d * Reciprocal(...)), optionally
/// * gamma + beta with constants. Becomes LayerNormalization (opset 17 and later).
public struct RecognizeLayerNorm: GraphPass {
    public let name = "recognize-layernorm"
    public let summary = "replace the decomposed form of layer normalization by one LayerNormalization (opset >= 17)"
    public init() {}

    /// The reduced axes of a ReduceMean with keepdims=1 when they are the trailing `k` axes of rank r.
    static func trailingAxes(_ n: Node, rank r: Int, opset: Int) -> Int? {
        guard n.opType == "ReduceMean", n.isStandard, (n.int("keepdims") ?? 1) == 1 else { return nil }
        let axes: [Int]
        if let a = n.ints("axes") { axes = a } else if opset >= 18, let a = n.input(1)?.initializer?.integers() { axes = a } else { return nil }
        let norm = Set(axes.map { $0 < 0 ? $0 + r : $0 })
        guard !norm.isEmpty, norm.count == axes.count, norm == Set((r - norm.count)..<r) else { return nil }
        return norm.count
    }

    public func run(_ model: Model) throws -> Bool {
        let g = model.graph
        let opset = model.onnxOpset ?? 21
        guard opset >= 17 else { return false }
        let outputs = Set(g.outputs.map(ObjectIdentifier.init))
        func interior(_ v: Value, uses: Int = 1) -> Bool { v.uses.count == uses && !outputs.contains(ObjectIdentifier(v)) }
        var changed = false
        var taken = Set(g.definedValues.map(\.name) + g.nodes.map(\.name))
        var i = 0
        while i < g.nodes.count {
            let sub = g.nodes[i]
            i += 1
            // Anchor: d = Sub(x, ReduceMean(x)).
            guard sub.opType == "Sub", sub.isStandard, let x = sub.input(0), let m = sub.input(1), let d = sub.output(0),
                  let meanNode = m.producer, meanNode.input(0) === x, interior(m),
                  let shape = x.tensorType?.shape, let dtype = x.tensorType?.elementType, dtype == .float || dtype == .double,
                  let k = Self.trailingAxes(meanNode, rank: shape.count, opset: opset),
                  let normDims = Optional(shape.suffix(k).compactMap(\.value)), normDims.count == k else { continue }
            // d has readers: the square (one or two uses) and the normalization.
            let squareNodes = d.uses.map(\.node).filter { ($0.opType == "Pow" && Recognize.close(Recognize.scalar($0.input(1)), 2)) || ($0.opType == "Mul" && $0.input(0) === d && $0.input(1) === d) }
            guard squareNodes.count == 1, let sq = squareNodes.first, let sqv = sq.output(0), interior(sqv),
                  let varNode = sqv.uses.first?.node, Self.trailingAxes(varNode, rank: shape.count, opset: opset) == k, varNode.input(0) === sqv,
                  let vv = varNode.output(0), interior(vv), let addEps = vv.uses.first?.node, addEps.opType == "Add",
                  let eps = Recognize.scalar(addEps.input(0) === vv ? addEps.input(1) : addEps.input(0)),
                  let ve = addEps.output(0), interior(ve), let sqrtNode = ve.uses.first?.node, sqrtNode.opType == "Sqrt",
                  let sd = sqrtNode.output(0), interior(sd), let divider = sd.uses.first?.node else { continue }
            // d / sd, or d * Reciprocal(sd).
            var normNodes: [Node] = []
            let normalizer: Node
            if divider.opType == "Div", divider.input(0) === d, divider.input(1) === sd {
                normalizer = divider
            } else if divider.opType == "Reciprocal", let r = divider.output(0), interior(r), let mul = r.uses.first?.node, mul.opType == "Mul",
                      Set([mul.input(0), mul.input(1)].compactMap { $0.map(ObjectIdentifier.init) }) == Set([ObjectIdentifier(d), ObjectIdentifier(r)]) {
                normNodes.append(divider)
                normalizer = mul
            } else { continue }
            guard d.uses.count == (sq.opType == "Mul" ? 3 : 2), let normalized = normalizer.output(0) else { continue }
            // Optional affine part with constants of the normalized shape (or broadcastable scalars).
            var last = normalized
            var affine: [Node] = []
            func constantOperand(_ n: Node, of v: Value) -> Tensor? {
                let other = n.input(0) === v ? n.input(1) : n.input(0)
                guard let t = other?.initializer, t.dataType == dtype, Array(t.dims.drop(while: { $0 == 1 })) == normDims || t.elementCount == 1 else { return nil }
                return t
            }
            var gamma: [Double] = [Double](repeating: 1, count: normDims.reduce(1, *))
            var beta: [Double] = [Double](repeating: 0, count: gamma.count)
            if interior(last), let mul = last.uses.first?.node, mul.opType == "Mul", let t = constantOperand(mul, of: last), let a = NDArray(t) {
                gamma = (0..<gamma.count).map { a.double(a.count == 1 ? 0 : $0) }
                affine.append(mul)
                last = mul.output(0)!
            }
            if interior(last), let add = last.uses.first?.node, add.opType == "Add", let t = constantOperand(add, of: last), let a = NDArray(t) {
                beta = (0..<beta.count).map { a.double(a.count == 1 ? 0 : $0) }
                affine.append(add)
                last = add.output(0)!
            }
            let lastNode = last.producer!
            func constant(_ values: [Double], _ suffix: String) -> Value {
                g.addConstant(NDArray(dtype, shape: normDims, floats: values).tensor(), name: (sub.name.isEmpty ? "layernorm" : sub.name) + suffix, taken: &taken)
            }
            let ln = Node(opType: "LayerNormalization", name: g.uniqueName((sub.name.isEmpty ? "layernorm" : sub.name) + "_layernorm", taken: &taken),
                          inputs: [x, constant(gamma, "_gamma"), constant(beta, "_beta")], outputs: [],
                          attributes: [Attribute("axis", .int(Int64(shape.count - k))), Attribute("epsilon", .float(Float(eps)))])
            lastNode.removeAllOutputs()
            ln.appendOutput(last)
            g.insertNode(ln, at: g.nodes.firstIndex { $0 === lastNode }! + 1)
            g.removeNodes(Set(([meanNode, sub, sq, varNode, addEps, sqrtNode, normalizer] + normNodes + affine).map(ObjectIdentifier.init)))
            i = 0
            changed = true
        }
        if changed { _ = try DeadCodeElimination().run(model) }
        return changed
    }
}
