import SofieIR

/// Region flipping, the global rule of fold-transposes. A channels_last model lowered to
/// channels-first ops is a sequence of layout regions: elementwise ops, Concat, Pad, Slice,
/// kept-dims reductions... computed on Transpose(x, p) values, entered through Transposes with
/// perm p and left through Transposes back to channels-first (before the next Conv or pool).
/// The local rules move one transpose across one op at a time and must see a drop at every
/// step; multi-branch cells (NASNet: Adds of two transposed branches feeding a Concat whose
/// inputs also feed other ops) never offer one. Here the whole region flips at once: every op
/// in it runs on the untransposed values (axes and constants remapped), the entry Transposes
/// disappear when nothing else reads them, the exit Transposes compose with p (and vanish when
/// they were its inverse), and a Transpose is added only for values read outside the region
/// (graph outputs, layout-specific ops). Done only when the count of Transposes strictly drops.
extension FoldTransposes {
    static let regionReductions: Set<String> = ["ReduceMean", "ReduceMax", "ReduceMin", "ReduceSum", "ReduceProd"]

    /// How a region op reads `p`-transposed inputs; nil when it cannot take part.
    enum RegionRole { case unary, binary, concat, remapped, reduction, layerNorm, matmul }

    static func regionRole(_ u: Node, rank: Int, opset: Int) -> RegionRole? {
        guard u.domain.isEmpty || u.domain == "ai.onnx", u.outputs.count == 1, u.output(0) != nil else { return nil }
        if unary.contains(u.opType) { return .unary }
        if binary.contains(u.opType) && u.inputs.count == 2 { return .binary }
        switch u.opType {
        case "Concat": return u.int("axis") != nil ? .concat : nil
        case "Softmax", "LogSoftmax", "Hardmax", "Pad", "Slice", "Resize": return .remapped
        case "LayerNormalization":
            // Over the last axis only (Keras' channels LayerNorm): it becomes explicit ops over
            // the mapped axis, which ONNX's LayerNormalization (trailing axes) cannot express.
            guard let a = Optional(u.int("axis") ?? -1), a == -1 || a == rank - 1, u.input(1)?.initializer?.dims.count == 1,
                  u.inputs.count < 3 || u.input(2) == nil || u.input(2)?.initializer?.dims.count == 1, u.outputs.count == 1 else { return nil }
            return .layerNorm
        case "MatMul":
            // A Dense on the channels (the last axis) of a channels-first-able tensor: a 1x1 Conv.
            guard rank >= 3, let w = u.input(1)?.initializer, w.dims.count == 2 else { return nil }
            return .matmul
        case _ where regionReductions.contains(u.opType):
            guard (u.int("keepdims") ?? 1) == 1, opset >= 13 || u.opType != "ReduceSum" || u.ints("axes") != nil else { return nil }
            return .reduction
        default: return nil
        }
    }

    /// Tries to flip the region entered by Transpose `seed`; true when the graph changed.
    static func flipRegion(from seed: Node, graph g: Graph, opset: Int, outputs: Set<ObjectIdentifier>,
                           touched: inout Set<ObjectIdentifier>, taken: inout Set<String>) -> Bool {
        guard seed.opType == "Transpose", let p = seed.ints("perm"), let seedOut = seed.output(0), seed.input(0) != nil,
              !outputs.contains(ObjectIdentifier(seedOut)) else { return false }
        let rank = p.count
        func entryTranspose(_ v: Value) -> Node? {
            guard let t = v.producer, t.opType == "Transpose", t.ints("perm") == p, t.input(0) != nil,
                  !outputs.contains(ObjectIdentifier(v)), !touched.contains(ObjectIdentifier(t)) else { return nil }
            return t
        }
        var entries: [ObjectIdentifier: Node] = [ObjectIdentifier(seedOut): seed]
        var inRegion: Set<ObjectIdentifier> = [ObjectIdentifier(seedOut)]
        var values: [Value] = [seedOut]
        var ops: [Node] = []
        var opIDs = Set<ObjectIdentifier>()
        // Whether u can join, and the entry values it would pull in.
        func admit(_ u: Node) -> [Value]? {
            guard let role = regionRole(u, rank: rank, opset: opset) else { return nil }
            var newEntries: [Value] = []
            func regionOrEntry(_ v: Value) -> Bool {
                if inRegion.contains(ObjectIdentifier(v)) { return true }
                if entryTranspose(v) != nil { newEntries.append(v); return true }
                return false
            }
            for (i, input) in u.inputs.enumerated() {
                guard let v = input else { continue }
                switch role {
                case .unary:
                    if i == 0 { guard regionOrEntry(v) else { return nil } } else { guard let c = v.initializer, c.elementCount <= 1 else { return nil } }
                case .binary:
                    if let c = v.initializer { guard c.dims.count <= rank, !inRegion.contains(ObjectIdentifier(v)) else { return nil } } else { guard regionOrEntry(v) else { return nil } }
                case .concat:
                    if let c = v.initializer { guard c.dims.count == rank else { return nil } } else { guard regionOrEntry(v) else { return nil } }
                case .remapped, .reduction, .layerNorm, .matmul:
                    if i == 0 { guard regionOrEntry(v) else { return nil } } else { guard v.initializer != nil else { return nil } }
                }
            }
            if role == .remapped && remap(u, perm: p, opset: opset, graph: g) == nil { return nil }
            if role == .matmul && p[rank - 1] != 1 { return nil }
            if role == .layerNorm && u.input(0)?.tensorType?.elementType != .float { return nil }
            if role == .reduction && u.ints("axes") == nil && (u.inputs.count < 2 || u.input(1)?.initializer?.integers() == nil) { return nil }
            return newEntries
        }
        var grew = true
        while grew {
            grew = false
            var k = 0
            while k < values.count {
                for use in values[k].uses {
                    let u = use.node
                    let id = ObjectIdentifier(u)
                    guard !opIDs.contains(id), !touched.contains(id), u.opType != "Transpose" else { continue }
                    guard let newEntries = admit(u) else { continue }
                    for e in newEntries where !inRegion.contains(ObjectIdentifier(e)) {
                        entries[ObjectIdentifier(e)] = entryTranspose(e)
                        inRegion.insert(ObjectIdentifier(e))
                        values.append(e)
                    }
                    ops.append(u)
                    opIDs.insert(id)
                    let out = u.output(0)!
                    inRegion.insert(ObjectIdentifier(out))
                    values.append(out)
                    grew = true
                    if ops.count > 4096 { return false }
                }
                k += 1
            }
        }
        // Count what changes: entries that disappear and exits that cancel, against the
        // Transposes needed for values read outside the region.
        func insideUse(_ n: Node) -> Bool { opIDs.contains(ObjectIdentifier(n)) || n.opType == "Transpose" }
        var benefit = 0, cost = 0
        var exits: [Node] = []
        for v in values {
            for use in v.uses where use.node.opType == "Transpose" && !opIDs.contains(ObjectIdentifier(use.node)) {
                let t = use.node
                guard let q = t.ints("perm"), q.count == rank, !exits.contains(where: { $0 === t }) else { continue }
                exits.append(t)
                if q.map({ p[$0] }) == Array(0..<rank), let o = t.output(0), !outputs.contains(ObjectIdentifier(o)) { benefit += 1 }
            }
            if entries[ObjectIdentifier(v)] != nil {
                if v.uses.allSatisfy({ insideUse($0.node) }) { benefit += 1 }
            } else if outputs.contains(ObjectIdentifier(v)) || v.uses.contains(where: { !insideUse($0.node) }) {
                cost += 1
            }
        }
        guard !ops.isEmpty, benefit > cost else { return false }

        // Apply. Region ops' outputs become untransposed values; entries read their sources.
        var replacement: [ObjectIdentifier: Value] = [:]
        for (id, t) in entries { replacement[id] = t.input(0)! }
        var outerOf: [(inner: Value, outer: Value, producer: Node)] = []
        for u in ops {
            let y = u.output(0)!
            let inner = Value(name: g.uniqueName(y.name + "_untransposed", taken: &taken), type: y.tensorType.map { .tensor(TensorType($0.elementType, nil)) })
            replacement[ObjectIdentifier(y)] = inner
            outerOf.append((inner, y, u))
        }
        let back = inverse(p)
        for u in ops {
            let role = regionRole(u, rank: rank, opset: opset)!
            switch role {
            case .remapped:
                remap(u, perm: p, opset: opset, graph: g)!(&taken)
            case .concat:
                let a = u.int("axis")!
                u.setAttribute("axis", .int(Int64(p[a < 0 ? a + rank : a])))
            case .reduction:
                if let axes = u.ints("axes") {
                    u.setAttribute("axes", .ints(axes.map { Int64(p[$0 < 0 ? $0 + rank : $0]) }))
                } else if let axes = u.input(1)?.initializer?.integers() {
                    let mapped = axes.map { Int64(p[$0 < 0 ? $0 + rank : $0]) }
                    u.setInput(1, g.addConstant(Tensor(dataType: .int64, dims: [mapped.count], values: mapped), name: (u.input(1)?.name ?? "axes") + "_mapped", taken: &taken))
                }
            case .unary, .binary, .layerNorm, .matmul:
                break
            }
            for (i, input) in u.inputs.enumerated() {
                guard let v = input else { continue }
                if let r = replacement[ObjectIdentifier(v)] {
                    u.setInput(i, r)
                } else if (role == .binary || role == .concat), let c = v.initializer, c.dims.count > 0, let array = NDArray(c) {
                    // A constant broadcast against the transposed value: transpose it back.
                    var aligned = array
                    aligned.shape = [Int](repeating: 1, count: rank - c.dims.count) + c.dims
                    u.setInput(i, g.addConstant(aligned.transposed(back).tensor(), name: v.name + "_transposed", taken: &taken))
                }
            }
            let inner = replacement[ObjectIdentifier(u.output(0)!)]!
            u.removeAllOutputs()
            u.appendOutput(inner)
        }
        for u in ops where u.opType == "LayerNormalization" || u.opType == "MatMul" {
            expandChannelOp(u, axis: p[rank - 1], rank: rank, graph: g, opset: opset, taken: &taken)
        }
        for t in exits {
            let x = t.input(0)!
            guard let r = replacement[ObjectIdentifier(x)], let q = t.ints("perm") else { continue }
            t.setInput(0, r)
            let composed = q.map { p[$0] }
            t.setAttribute("perm", .ints(composed.map { Int64($0) }))
            if composed == Array(0..<rank), let o = t.output(0), !outputs.contains(ObjectIdentifier(o)) { g.replaceAllUses(of: o, with: r) }
        }
        // Values still read outside the region (or graph outputs): one Transpose each.
        for (inner, outer, producer) in outerOf where outputs.contains(ObjectIdentifier(outer)) || !outer.uses.isEmpty {
            // (The producer may have been expanded into several nodes: follow the value.)
            guard let source = inner.producer ?? Optional(producer), let at = g.nodes.firstIndex(where: { $0 === source }) else { continue }
            let t = Node(opType: "Transpose", name: g.uniqueName((producer.name.isEmpty ? producer.opType : producer.name) + "_transpose", taken: &taken),
                         inputs: [inner], outputs: [outer], attributes: [Attribute("perm", .ints(p.map { Int64($0) }))])
            g.insertNode(t, at: at + 1)
            touched.insert(ObjectIdentifier(t))
        }
        for u in ops { touched.insert(ObjectIdentifier(u)) }
        for t in entries.values { touched.insert(ObjectIdentifier(t)) }
        for t in exits { touched.insert(ObjectIdentifier(t)) }
        return true
    }
}

extension FoldTransposes {
    /// A flipped region's last-axis LayerNormalization or MatMul, now over axis `k` of the
    /// untransposed value: LayerNormalization becomes ReduceMean, Sub, Mul, ReduceMean, Add,
    /// Sqrt, Div (and the affine Mul/Add with scale and bias along axis k); MatMul (k = 1)
    /// becomes a 1x1 Conv with the transposed weights.
    static func expandChannelOp(_ u: Node, axis k: Int, rank: Int, graph g: Graph, opset: Int, taken: inout Set<String>) {
        guard let x = u.input(0), let y = u.output(0), let at = g.nodes.firstIndex(where: { $0 === u }) else { return }
        let base = u.name.isEmpty ? u.opType : u.name
        var nodes: [Node] = []
        func value(_ suffix: String) -> Value { Value(name: g.uniqueName(base + suffix, taken: &taken), type: nil) }
        func add(_ op: String, _ inputs: [Value?], _ out: Value, _ attrs: [Attribute] = []) -> Value {
            nodes.append(Node(opType: op, name: g.uniqueName(base + "_" + op.lowercased(), taken: &taken), inputs: inputs, outputs: [out], attributes: attrs))
            return out
        }
        if u.opType == "MatMul", let w = u.input(1)?.initializer, w.dataType == .float, let values = w.values(as: Float.self),
           values.count == w.dims[0] * w.dims[1] {
            // W [C, F] -> [F, C, 1, ...] (weights of real models are millions of floats: a
            // plain loop, not the generic NDArray transpose).
            let (c, f) = (w.dims[0], w.dims[1])
            var kernel = [Float](repeating: 0, count: values.count)
            values.withUnsafeBufferPointer { src in
                kernel.withUnsafeMutableBufferPointer { dst in
                    for i in 0..<c { for j in 0..<f { dst[j * c + i] = src[i * f + j] } }
                }
            }
            let kv = g.addConstant(Tensor(dataType: .float, dims: [f, c] + [Int](repeating: 1, count: rank - 2), values: kernel), name: base + "_kernel", taken: &taken)
            u.removeAllOutputs()
            _ = add("Conv", [x, kv], y, [Attribute("kernel_shape", .ints([Int64](repeating: 1, count: rank - 2)))])
        } else if u.opType == "LayerNormalization", let scale = u.input(1)?.initializer, let sa = NDArray(scale) {
            let c = scale.dims[0]
            let along = [c] + [Int](repeating: 1, count: rank - 1 - k)
            func reduceMean(_ input: Value, _ suffix: String) -> Value {
                if opset >= 18 {
                    let axes = g.addConstant(Tensor(dataType: .int64, dims: [1], values: [Int64(k)]), name: base + "_axes", taken: &taken)
                    return add("ReduceMean", [input, axes], value(suffix), [Attribute("keepdims", .int(1))])
                }
                return add("ReduceMean", [input], value(suffix), [Attribute("axes", .ints([Int64(k)])), Attribute("keepdims", .int(1))])
            }
            let eps = g.addConstant(Tensor(dataType: .float, dims: [], values: [u.float("epsilon") ?? 1e-5]), name: base + "_epsilon", taken: &taken)
            let mean = reduceMean(x, "_mean")
            let d = add("Sub", [x, mean], value("_centered"))
            let variance = reduceMean(add("Mul", [d, d], value("_squared")), "_variance")
            let sd = add("Sqrt", [add("Add", [variance, eps], value("_variance_eps"))], value("_std"))
            let hasBias = u.inputs.count > 2 && u.input(2) != nil
            var scaleArray = sa
            scaleArray.shape = along
            let sv = g.addConstant(scaleArray.tensor(), name: base + "_scale", taken: &taken)
            let normalized = add("Div", [d, sd], value("_normalized"))
            var biasValue: Value?
            if hasBias, let bt = u.input(2)?.initializer, var ba = NDArray(bt) {
                ba.shape = along
                biasValue = g.addConstant(ba.tensor(), name: base + "_bias", taken: &taken)
            }
            u.removeAllOutputs()
            if let biasValue {
                _ = add("Add", [add("Mul", [normalized, sv], value("_scaled")), biasValue], y)
            } else {
                _ = add("Mul", [normalized, sv], y)
            }
        } else {
            return
        }
        u.removeAllInputs()
        for (i, n) in nodes.enumerated() { g.insertNode(n, at: at + 1 + i) }
        g.removeNodes([ObjectIdentifier(u)])
    }
}
