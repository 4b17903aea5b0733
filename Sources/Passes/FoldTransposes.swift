import Foundation
import SofieIR

/// Transposes that cancel or compose: Transpose(Transpose(x)) becomes one Transpose, or none
/// when the permutations are inverse. (Transposes of constants are folded by fold-constants.)
public struct FoldTransposes: GraphPass {
    public let name = "fold-transposes"
    public let summary = "cancel and merge transposes; move them through elementwise, Softmax, Pad, Slice, Resize, Concat, Split and reductions (axes remapped); flip whole layout regions (channels LayerNorm and Dense included) when that removes transposes"
    public init() {}

    /// Rounds until nothing moves (shapes re-inferred between them): a transpose moves one op
    /// per round, and deep residual streams (InceptionResNetV2's 40 blocks) need more rounds
    /// than the pipeline's fixed-point iterations. Transposes only move down, so it ends.
    public func run(_ model: Model) throws -> Bool {
        var changed = false
        for _ in 0..<256 {
            guard try runOnce(model) else { break }
            changed = true
            _ = try ShapeInference().run(model)
        }
        return changed
    }

    func runOnce(_ model: Model) throws -> Bool {
        let g = model.graph
        // Every rule below indexes by perm: a Transpose whose perm is not a permutation of its
        // input's axes (a hostile file) leaves the graph to strict shape inference's error.
        for n in g.nodes where n.opType == "Transpose" {
            guard let p = n.ints("perm") else { continue }  // the default, reversed axes
            guard Set(p) == Set(0..<p.count), p.count == Set(p).count else { return false }
            if let r = n.input(0)?.tensorType?.shape?.count, r != p.count { return false }
        }
        let outputs = Set(g.outputs.map(ObjectIdentifier.init))
        var changed = false
        var taken = Set(g.definedValues.map(\.name))
        for n in g.nodes where n.opType == "Transpose" {
            if let p = n.ints("perm"), p == Array(0..<p.count), let x = n.input(0), let y = n.output(0),
               !outputs.contains(ObjectIdentifier(y)) {
                g.replaceAllUses(of: y, with: x)
                changed = true
                continue
            }
            guard let mid = n.input(0), let inner = mid.producer, inner.opType == "Transpose", let x = inner.input(0),
                  let y = n.output(0), let p1 = inner.ints("perm"), let p2 = n.ints("perm"), p1.count == p2.count else { continue }
            let composed = p2.map { p1[$0] }
            if composed == Array(0..<composed.count) {
                guard !outputs.contains(ObjectIdentifier(y)) else { continue }
                g.replaceAllUses(of: y, with: x)
            } else {
                // Read x directly with the composed permutation; the inner transpose dies if unused.
                n.setInput(0, x)
                n.setAttribute("perm", .ints(composed.map { Int64($0) }))
            }
            changed = true
        }
        // Whole layout regions first (TransposeRegions.swift); the next round re-infers shapes.
        var touched = Set<ObjectIdentifier>()
        var flipped = false
        for t in g.nodes where t.opType == "Transpose" && !touched.contains(ObjectIdentifier(t)) {
            if Self.flipRegion(from: t, graph: g, opset: model.onnxOpset ?? 21, outputs: outputs, touched: &touched, taken: &taken) { flipped = true }
        }
        if flipped {
            _ = try DeadCodeElimination().run(model)
            return true
        }
        // A unary elementwise op after a transpose runs before it instead: the transpose moves
        // down (towards consumers, where it meets other transposes and merges or cancels).
        // Transposes only ever move down, so this cannot oscillate.
        let opset = model.onnxOpset ?? 21
        for u in g.nodes where Self.movable.contains(u.opType) {
            guard let mid = u.input(0), let t1 = mid.producer, t1.opType == "Transpose", Self.usesMoveTogether(mid),
                  let x = t1.input(0), let y = u.output(0), u.outputs.count == 1, !outputs.contains(ObjectIdentifier(mid)),
                  let p1 = t1.ints("perm"), let at = g.nodes.firstIndex(where: { $0 === u }) else { continue }
            // Worth it only if some consumer can absorb the transpose.
            let absorbing: Set<String> = Self.movable.union(["Transpose", "ReduceMean", "ReduceMax", "ReduceSum", "ReduceMin", "Concat", "Split"])
            guard y.uses.contains(where: { absorbing.contains($0.node.opType) }), let apply = Self.remap(u, perm: p1, opset: opset, graph: g) else { continue }
            apply(&taken)
            let inner = Value(name: g.uniqueName(y.name + "_untransposed", taken: &taken),
                              type: y.tensorType.map { .tensor(TensorType($0.elementType, nil)) })
            u.setInput(0, x)
            u.removeAllOutputs()
            u.appendOutput(inner)
            let t = Node(opType: "Transpose", name: g.uniqueName(t1.name + "_moved", taken: &taken), inputs: [inner], outputs: [y],
                         attributes: [Attribute("perm", .ints(p1.map { Int64($0) }))])
            g.insertNode(t, at: at + 1)
            changed = true
        }
        // Reduce over axes of a transposed value: reduce the original value over the mapped axes.
        for r in g.nodes where ["ReduceMean", "ReduceMax", "ReduceSum", "ReduceMin"].contains(r.opType) {
            // (The transpose may have other readers: the reduction just stops being one of them.)
            guard let mid = r.input(0), let t1 = mid.producer, t1.opType == "Transpose",
                  let x = t1.input(0), let p = t1.ints("perm"), r.output(0) != nil else { continue }
            let axesIn: [Int]
            if let a = r.ints("axes") { axesIn = a } else if r.inputs.count > 1, let av = r.input(1)?.initializer?.integers() { axesIn = av } else { continue }
            let rank = p.count
            let axes = axesIn.map { $0 < 0 ? $0 + rank : $0 }
            let keep = (r.int("keepdims") ?? 1) == 1
            let remaining = (0..<rank).filter { !axes.contains($0) }.map { p[$0] }
            guard remaining == remaining.sorted(), let y = r.output(0), let at = g.nodes.firstIndex(where: { $0 === r }) else { continue }
            let mapped = axes.map { p[$0] }.sorted()
            r.setInput(0, x)
            if keep {
                // Kept axes of size 1: the reduced value is the transpose of the one reduced on
                // x, and only unit axes move (it becomes a Reshape, or meets a transpose back).
                let inner = Value(name: g.uniqueName(y.name + "_untransposed", taken: &taken), type: y.tensorType.map { .tensor(TensorType($0.elementType, nil)) })
                r.removeAllOutputs()
                r.appendOutput(inner)
                g.insertNode(Node(opType: "Transpose", name: g.uniqueName(r.name + "_transpose", taken: &taken), inputs: [inner], outputs: [y],
                                  attributes: [Attribute("perm", .ints(p.map { Int64($0) }))]), at: at + 1)
            }
            if r.ints("axes") != nil {
                r.setAttribute("axes", .ints(mapped.map { Int64($0) }))
            } else {
                let tensor = Tensor(dataType: .int64, dims: [mapped.count], values: mapped.map { Int64($0) })
                let v = g.addConstant(tensor, name: (r.input(1)?.name ?? "axes") + "_mapped", taken: &taken)
                r.setInput(1, v)
            }
            changed = true
        }
        // A binary elementwise op whose two inputs are the same transpose of other values:
        // compute it on those values and transpose once afterwards (two transposes become one).
        for b in g.nodes where Self.binary.contains(b.opType) && b.inputs.count == 2 {
            guard let l = b.input(0), let r = b.input(1), l !== r, let tl = l.producer, let tr = r.producer,
                  tl.opType == "Transpose", tr.opType == "Transpose", l.uses.count == 1, r.uses.count == 1,
                  !outputs.contains(ObjectIdentifier(l)), !outputs.contains(ObjectIdentifier(r)),
                  let p = tl.ints("perm"), tr.ints("perm") == p, let a = tl.input(0), let c = tr.input(0),
                  let y = b.output(0), let at = g.nodes.firstIndex(where: { $0 === b }) else { continue }
            let inner = Value(name: g.uniqueName(y.name + "_untransposed", taken: &taken),
                              type: y.tensorType.map { .tensor(TensorType($0.elementType, nil)) })
            b.setInput(0, a)
            b.setInput(1, c)
            b.removeAllOutputs()
            b.appendOutput(inner)
            let t = Node(opType: "Transpose", name: g.uniqueName((b.name.isEmpty ? b.opType : b.name) + "_transpose", taken: &taken),
                         inputs: [inner], outputs: [y], attributes: [Attribute("perm", .ints(p.map { Int64($0) }))])
            g.insertNode(t, at: at + 1)
            changed = true
        }
        for n in g.nodes where n.opType == "Concat" || n.opType == "Split" {
            if n.opType == "Concat" ? Self.concat(n, graph: g, outputs: outputs, taken: &taken) : Self.split(n, graph: g, outputs: outputs, taken: &taken) {
                changed = true
            }
        }
        for t in g.nodes where t.opType == "Transpose" {
            if Self.upThroughInputPad(t, graph: g, opset: opset, outputs: outputs, taken: &taken) { changed = true }
        }
        for t in g.nodes where t.opType == "Transpose" {
            if Self.reshapeIfOnlyUnitAxesMove(t, graph: g, taken: &taken) { changed = true }
        }
        if changed { _ = try DeadCodeElimination().run(model) }
        return changed
    }

    /// Whether the readers of a transposed value can each take the transpose: one reader, or
    /// the pattern x * f(x) (swish, hard-swish, SE gating on the same value), where every reader
    /// is a unary op that moves the transpose below itself or a binary op between the value
    /// and such unary ops' results, which then meets two equal transposes and merges them.
    static func usesMoveTogether(_ mid: Value) -> Bool {
        if mid.uses.count == 1 { return true }
        let readers = mid.uses.map(\.node)
        let unaryReaders = readers.filter { unary.contains($0.opType) && $0.input(0) === mid && $0.inputs.dropFirst().allSatisfy { $0 == nil || $0?.initializer != nil } }
        for r in readers where !unaryReaders.contains(where: { $0 === r }) {
            guard binary.contains(r.opType), r.inputs.count == 2 else { return false }
            for case let v? in r.inputs where v !== mid {
                guard let p = v.producer else { return false }
                if unaryReaders.contains(where: { $0 === p }) { continue }
                // Or the same transpose of another value, read only here (the binary rule merges them).
                guard p.opType == "Transpose", p.ints("perm") == mid.producer?.ints("perm"), v.uses.count == 1 else { return false }
            }
        }
        return !unaryReaders.isEmpty
    }

    /// A Transpose that moves only axes of size 1 moves no data: it becomes a Reshape (e.g.
    /// [N, 1, 1, C] -> [N, C, 1, 1] between a squeeze-and-excitation block's pooling and its
    /// convolutions). Needs every dimension static except, possibly, a leading batch that stays.
    static func reshapeIfOnlyUnitAxesMove(_ t: Node, graph g: Graph, taken: inout Set<String>) -> Bool {
        // Axis 0 stays: it is the batch (fixed at 1 when compiling, where a batch/time
        // transpose of a single row would look like a unit-axis move but is not one for the
        // batch analysis), and a transpose of a 2-D operand may still become a GEMM's transB.
        guard let x = t.input(0), let y = t.output(0), let p = t.ints("perm"), p.first == 0, let shape = x.tensorType?.shape, shape.count == p.count,
              let at = g.nodes.firstIndex(where: { $0 === t }) else { return false }
        // Axes of size other than 1 must keep their order.
        let moving = p.filter { shape[$0].value != 1 }
        guard moving == moving.sorted() else { return false }
        var target: [Int64] = []
        for (i, src) in p.enumerated() {
            if let v = shape[src].value { target.append(Int64(v)) }
            else if i == 0 && src == 0 { target.append(0) }  // the symbolic batch, copied
            else { return false }
        }
        let c = g.addConstant(Tensor(dataType: .int64, dims: [target.count], values: target), name: (t.name.isEmpty ? "transpose" : t.name) + "_shape", taken: &taken)
        let reshape = Node(opType: "Reshape", name: g.uniqueName((t.name.isEmpty ? "transpose" : t.name) + "_as_reshape", taken: &taken), inputs: [x, c], outputs: [])
        t.removeAllInputs()
        t.removeAllOutputs()
        reshape.appendOutput(y)
        g.insertNode(reshape, at: at)
        g.removeNodes([ObjectIdentifier(t)])
        return true
    }

    static let binary: Set<String> = ["Add", "Sub", "Mul", "Div", "Max", "Min", "Pow", "PRelu", "Equal", "Less", "Greater", "And", "Or"]

    static let unary: Set<String> = ["Relu", "LeakyRelu", "Sigmoid", "Tanh", "Elu", "Selu", "Clip", "Abs", "Neg", "Exp", "Log",
                                     "Sqrt", "Softplus", "Softsign", "HardSigmoid", "HardSwish", "Erf", "Identity", "Cast",
                                     "Celu", "ThresholdedRelu", "Reciprocal", "Floor", "Ceil", "Round", "Sign", "Not"]
}
