import SofieIR

/// The parts of fold-transposes that move a Transpose across an op: the op then runs on the
/// untransposed value with its axes (or constant operand) remapped, and one Transpose follows.
extension FoldTransposes {
    /// The permutation that undoes `p`.
    static func inverse(_ p: [Int]) -> [Int] {
        var q = [Int](repeating: 0, count: p.count)
        for (i, axis) in p.enumerated() { q[axis] = i }
        return q
    }

    /// How op `u`, reading Transpose(x, p) as input 0, is rewritten to read x instead; nil when it cannot be.
    static func remap(_ u: Node, perm p: [Int], opset: Int, graph g: Graph) -> ((inout Set<String>) -> Void)? {
        let rank = p.count
        func axis(_ a: Int) -> Int? { let r = a < 0 ? a + rank : a; return r >= 0 && r < rank ? r : nil }
        func constant(_ values: [Int], _ dtype: DataType, _ base: String, _ taken: inout Set<String>) -> Value {
            g.addConstant(NDArray(dtype == .int32 ? .int32 : .int64, shape: [values.count], ints: values.map { Int64($0) }).tensor(),
                          name: base, taken: &taken)
        }
        if unary.contains(u.opType) {
            guard u.inputs.dropFirst().allSatisfy({ $0 == nil || ($0!.tensorType?.staticShape?.reduce(1, *) ?? 2) <= 1 }) else { return nil }
            return { _ in }
        }
        switch u.opType {
        case "Softmax", "LogSoftmax", "Hardmax":
            // Opset 13 made these single-axis ops; before, they flattened from the axis on.
            guard opset >= 13, let a = axis(u.int("axis") ?? -1) else { return nil }
            return { _ in u.setAttribute("axis", .int(Int64(p[a]))) }
        case "Pad":
            guard opset >= 11, u.inputs.count < 4 || u.input(3) == nil,
                  let pads = u.input(1)?.initializer?.integers(), pads.count == 2 * rank,
                  u.inputs.count < 3 || u.input(2) == nil || u.input(2)?.initializer != nil else { return nil }
            var np = [Int](repeating: 0, count: 2 * rank)
            for i in 0..<rank { np[p[i]] = pads[i]; np[rank + p[i]] = pads[rank + i] }
            let old = u.input(1)
            return { taken in u.setInput(1, constant(np, .int64, (old?.name ?? "pads") + "_mapped", &taken)) }
        case "Slice":
            guard opset >= 10, u.input(1)?.initializer != nil, u.input(2)?.initializer != nil,
                  u.inputs.count < 5 || u.input(4) == nil || u.input(4)?.initializer != nil else { return nil }
            let count = u.input(1)!.initializer!.elementCount
            let axes: [Int]
            if u.inputs.count > 3, let a = u.input(3) {
                guard let av = a.initializer?.integers() else { return nil }
                axes = av
            } else {
                axes = Array(0..<count)
            }
            let mapped = axes.compactMap(axis).map { p[$0] }
            guard mapped.count == axes.count else { return nil }
            let old = u.input(3)
            let dtype = u.input(1)!.initializer!.dataType
            return { taken in
                let v = constant(mapped, dtype, (old?.name ?? "axes") + "_mapped", &taken)
                if u.inputs.count > 3 { u.setInput(3, v) } else { u.appendInput(v) }
            }
        case "Resize":
            // Per-axis scales or sizes follow their axes (no ROI).
            guard opset >= 11, u.inputs.count >= 3, u.input(1)?.initializer.map({ $0.elementCount == 0 }) ?? true else { return nil }
            let which = u.inputs.count > 3 && u.input(3) != nil ? 3 : 2
            if let axes = u.ints("axes") {
                // Opset 18's `axes`: each axis a becomes p[a]; kept ascending, values with them.
                guard opset >= 18, let c = u.input(which), let t = c.initializer, t.dims == [axes.count], let array = NDArray(t) else { return nil }
                let mapped = axes.compactMap(axis).map { p[$0] }
                guard mapped.count == axes.count, Set(mapped).count == mapped.count else { return nil }
                let order = mapped.indices.sorted { mapped[$0] < mapped[$1] }
                let moved = array.gathered(order, shape: [axes.count])
                return { taken in
                    u.setAttribute("axes", .ints(order.map { Int64(mapped[$0]) }))
                    u.setInput(which, g.addConstant(moved.tensor(), name: c.name + "_mapped", taken: &taken))
                }
            }
            guard let c = u.input(which), let t = c.initializer, t.dims == [rank], let array = NDArray(t) else { return nil }
            let moved = array.gathered(inverse(p), shape: [rank])
            return { taken in u.setInput(which, g.addConstant(moved.tensor(), name: c.name + "_mapped", taken: &taken)) }
        case _ where binary.contains(u.opType) && u.inputs.count == 2:
            // A broadcasting op with a constant: transpose the constant by the inverse permutation.
            guard let c = u.input(1), let t = c.initializer, t.dims.count <= rank, let array = NDArray(t) else { return nil }
            var aligned = array
            aligned.shape = [Int](repeating: 1, count: rank - t.dims.count) + t.dims
            let moved = aligned.transposed(inverse(p))
            return { taken in u.setInput(1, g.addConstant(moved.tensor(), name: c.name + "_transposed", taken: &taken)) }
        default:
            return nil
        }
    }

    /// Ops that take a Transpose on input 0 by remapping (the absorbing consumers make moving worth it).
    static let movable: Set<String> = unary.union(binary).union(["Softmax", "LogSoftmax", "Hardmax", "Pad", "Slice", "Resize"])

    /// Concat of values that are all the same transpose (or constants): concatenate the
    /// untransposed values on the mapped axis and transpose once. k transposes become one.
    static func concat(_ n: Node, graph g: Graph, outputs: Set<ObjectIdentifier>, taken: inout Set<String>) -> Bool {
        guard n.opType == "Concat", n.inputs.count >= 2, let y = n.output(0), let at = g.nodes.firstIndex(where: { $0 === n }) else { return false }
        var perm: [Int]?
        var transposed = 0
        for case let v? in n.inputs where v.initializer == nil {
            guard let t = v.producer, t.opType == "Transpose", let p = t.ints("perm"), v.uses.count == 1,
                  !outputs.contains(ObjectIdentifier(v)), perm == nil || perm == p else { return false }
            perm = p
            transposed += 1
        }
        // Only when transposes strictly drop: k input transposes (k >= 2) become one output transpose.
        guard let p = perm, transposed >= 2, let a = n.int("axis"), let ax = Optional(a < 0 ? a + p.count : a), ax >= 0, ax < p.count,
              n.inputs.allSatisfy({ $0?.initializer.map { $0.dims.count == p.count } ?? true }) else { return false }
        // Constants: transpose them by the inverse permutation.
        let back = inverse(p)
        var newInputs: [Value?] = []
        for v in n.inputs {
            guard let v else { newInputs.append(nil); continue }
            if let t = v.initializer {
                guard let arr = NDArray(t) else { return false }
                newInputs.append(g.addConstant(arr.transposed(back).tensor(), name: v.name + "_transposed", taken: &taken))
            } else {
                newInputs.append(v.producer!.input(0))
            }
        }
        for (i, v) in newInputs.enumerated() { n.setInput(i, v) }
        n.setAttribute("axis", .int(Int64(p[ax])))
        let inner = Value(name: g.uniqueName(y.name + "_untransposed", taken: &taken), type: y.tensorType.map { .tensor(TensorType($0.elementType, nil)) })
        n.removeAllOutputs()
        n.appendOutput(inner)
        g.insertNode(Node(opType: "Transpose", name: g.uniqueName((n.name.isEmpty ? "concat" : n.name) + "_transpose", taken: &taken),
                          inputs: [inner], outputs: [y], attributes: [Attribute("perm", .ints(p.map { Int64($0) }))]), at: at + 1)
        return true
    }

    /// Split of a transposed value whose every output is read only by Transposes: split the
    /// untransposed value on the mapped axis and compose the permutations (1 + k transposes
    /// become at most k, none when they were inverses).
    static func split(_ n: Node, graph g: Graph, outputs: Set<ObjectIdentifier>, taken: inout Set<String>) -> Bool {
        guard n.opType == "Split", let mid = n.input(0), let t = mid.producer, t.opType == "Transpose", mid.uses.count == 1,
              !outputs.contains(ObjectIdentifier(mid)), let p = t.ints("perm"), let x = t.input(0) else { return false }
        let ax0 = n.int("axis") ?? 0
        let ax = ax0 < 0 ? ax0 + p.count : ax0
        guard ax >= 0, ax < p.count else { return false }
        for case let o? in n.outputs {
            guard !outputs.contains(ObjectIdentifier(o)), !o.uses.isEmpty,
                  o.uses.allSatisfy({ $0.node.opType == "Transpose" && $0.node.ints("perm")?.count == p.count }) else { return false }
        }
        n.setInput(0, x)
        n.setAttribute("axis", .int(Int64(p[ax])))
        for case let o? in n.outputs {
            // The outputs now hold untransposed pieces: their old shapes no longer apply.
            o.tensorType = o.tensorType.map { TensorType($0.elementType, nil) }
            for use in o.uses {
                let tr = use.node
                let q = tr.ints("perm")!
                tr.setAttribute("perm", .ints(q.map { Int64(p[$0]) }))
            }
        }
        _ = taken
        return true
    }

    /// Transpose(Pad(x)) with x a graph input: pad the transposed input instead (pads permuted),
    /// so that the transpose reads the model input, where it is the one a channels_last model
    /// keeps. Done only when no consumer would move the transpose back down (no oscillation).
    static func upThroughInputPad(_ t: Node, graph g: Graph, opset: Int, outputs: Set<ObjectIdentifier>, taken: inout Set<String>) -> Bool {
        guard let padded = t.input(0), let pad = padded.producer, pad.opType == "Pad", pad.isStandard,
              padded.uses.count == 1, !outputs.contains(ObjectIdentifier(padded)),
              let x = pad.input(0), x.producer == nil, x.initializer == nil, g.inputs.contains(where: { $0 === x }),
              let p = t.ints("perm"), let y = t.output(0), pad.inputs.count < 4 || pad.input(3) == nil,
              let at = g.nodes.firstIndex(where: { $0 === pad }) else { return false }
        let absorbing = movable.union(["Transpose", "ReduceMean", "ReduceMax", "ReduceSum", "ReduceMin", "Concat", "Split"])
        guard !y.uses.contains(where: { absorbing.contains($0.node.opType) }) else { return false }
        let rank = p.count
        guard let pads = pad.constantPads(opset: opset), pads.count == 2 * rank else { return false }
        // Transpose(Pad(x, P), p) = Pad(Transpose(x, p), P') with P'[i] = P[p[i]] (begins and ends).
        var moved = [Int](repeating: 0, count: 2 * rank)
        for i in 0..<rank { moved[i] = pads[p[i]]; moved[rank + i] = pads[rank + p[i]] }
        let xt = Value(name: g.uniqueName(x.name + "_transposed", taken: &taken), type: x.tensorType.map { .tensor(TensorType($0.elementType, nil)) })
        let transpose = Node(opType: "Transpose", name: g.uniqueName(t.name.isEmpty ? "transpose" : t.name, taken: &taken), inputs: [x], outputs: [xt],
                             attributes: [Attribute("perm", .ints(p.map { Int64($0) }))])
        var inputs: [Value?] = [xt]
        var attributes = pad.attributes
        if opset >= 11 {
            inputs.append(g.addConstant(NDArray(.int64, shape: [2 * rank], ints: moved.map { Int64($0) }).tensor(),
                                        name: (pad.input(1)?.name ?? "pads") + "_transposed", taken: &taken))
            if pad.inputs.count > 2 { inputs.append(pad.input(2)) }
        } else {
            attributes = attributes.filter { $0.name != "pads" } + [Attribute("pads", .ints(moved.map { Int64($0) }))]
        }
        let newPad = Node(opType: "Pad", name: g.uniqueName(pad.name.isEmpty ? "pad" : pad.name, taken: &taken), inputs: inputs, outputs: [],
                          attributes: attributes)
        t.removeAllInputs()
        t.removeAllOutputs()
        newPad.appendOutput(y)
        g.insertNode(transpose, at: at)
        g.insertNode(newPad, at: at + 1)
        g.removeNodes([ObjectIdentifier(t)])
        return true
    }
}
