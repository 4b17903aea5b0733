import SofieIR

/// Fuses what follows a Conv, Gemm or 2-D MatMul into its epilogue: a residual Add of a value
/// of the output's shape, then one activation (Relu, LeakyRelu, Sigmoid, Tanh, Clip with
/// constant bounds, HardSigmoid, HardSwish, or Swish written as x * Sigmoid(x)). The result is
/// one `org.sofie.FusedConv` / `org.sofie.FusedGemm` node (see `SofieOps`), which the C++
/// emitter runs as one GEMM whose store applies bias, residual and activation.
public struct FuseEpilogues: GraphPass {
    public let name = "fuse-epilogues"
    public let summary = "fuse residual Adds and activations into the Conv/Gemm/MatMul before them (org.sofie.FusedConv/FusedGemm)"
    public init() {}

    public func run(_ model: Model) throws -> Bool {
        let g = model.graph
        let outputs = Set(g.outputs.map(ObjectIdentifier.init))
        var taken = Set(g.definedValues.map(\.name))
        var changed = false
        func isOutput(_ v: Value) -> Bool { outputs.contains(ObjectIdentifier(v)) }
        /// The single consumer of `v` when v is an interior value (not a graph output).
        func soleConsumer(_ v: Value) -> Node? {
            guard v.uses.count == 1, !isOutput(v) else { return nil }
            return v.uses[0].node
        }

        var i = 0
        while i < g.nodes.count {
            let n = g.nodes[i]
            i += 1
            guard let kind = Self.fusable(n), var cur = n.output(0), let type = cur.tensorType,
                  type.elementType == .float || type.elementType == .double, let outShape = type.shape,
                  !outShape.contains(.unknown) else { continue }
            // A fused node that already has its activation takes nothing more.
            if !(n.string("activation") ?? "").isEmpty { continue }
            var absorbed: [Node] = [n]
            var residual = SofieOps.isSofie(n) ? n.input(3) : nil
            var activation = "", params: [Float] = []
            // Residual: Add(y, z) with z of y's exact shape (no broadcasting), computed at run time.
            if residual == nil, let add = soleConsumer(cur), add.opType == "Add", add.isStandard, add.inputs.count == 2,
               let sum = add.output(0), let other = add.input(add.input(0) === cur ? 1 : 0), other !== cur,
               other.initializer == nil, other.tensorType?.shape == outShape, other.tensorType?.elementType == type.elementType {
                residual = other
                absorbed.append(add)
                cur = sum
            }
            // Activation.
            if let a = soleConsumer(cur) ?? Self.swishHead(cur, isOutput), a.isStandard || (a.opType == "Gelu" && SofieOps.isSofie(a)), let (act, p, last) = Self.activation(a, cur, isOutput) {
                activation = act
                params = p
                absorbed += last === a ? [a] : [a, last]
                cur = last.output(0)!
            }
            guard absorbed.count > 1 else { continue }
            var inputs: [Value?] = Array(n.inputs.prefix(3))
            if kind == "FusedGemm" && n.opType == "MatMul" { inputs = [n.input(0), n.input(1)] }
            while inputs.count < 3 { inputs.append(nil) }
            if let residual { inputs.append(residual) }
            while let l = inputs.last, l == nil { inputs.removeLast() }
            var attrs = n.attributes.filter { $0.name != "activation" && $0.name != "activation_params" }
            if !activation.isEmpty {
                attrs.append(Attribute("activation", .string(Array(activation.utf8))))
                attrs.append(Attribute("activation_params", .floats(params)))
            }
            let last = absorbed.last!
            let fused = Node(opType: kind, domain: SofieOps.domain, name: g.uniqueName((n.name.isEmpty ? kind : n.name) + "_fused", taken: &taken),
                             inputs: inputs, outputs: [], attributes: attrs)
            last.removeAllOutputs()
            fused.appendOutput(cur)
            // Placed where the last absorbed node was: every input (the residual too) is defined by then.
            g.insertNode(fused, at: g.nodes.firstIndex { $0 === last }! + 1)
            g.removeNodes(Set(absorbed.map(ObjectIdentifier.init)))
            i = g.nodes.firstIndex { $0 === fused }! + 1
            changed = true
        }
        if changed, !model.opsetImports.contains(where: { $0.domain == SofieOps.domain }) {
            model.opsetImports.append(OpsetImport(domain: SofieOps.domain, version: SofieOps.version))
        }
        return changed
    }

    /// The fused op a node becomes, if it can take an epilogue.
    static func fusable(_ n: Node) -> String? {
        if n.domain == SofieOps.domain { return ["FusedConv", "FusedGemm"].contains(n.opType) ? n.opType : nil }
        guard n.isStandard, n.outputs.count == 1 else { return nil }
        switch n.opType {
        case "Conv": return "FusedConv"
        case "Gemm": return "FusedGemm"
        case "MatMul":
            guard n.input(0)?.tensorType?.shape?.count == 2, n.input(1)?.tensorType?.shape?.count == 2 else { return nil }
            return "FusedGemm"
        default: return nil
        }
    }

    /// For Swish written as Mul(y, Sigmoid(y)): y's Sigmoid reader, when y has exactly those two readers.
    static func swishHead(_ y: Value, _ isOutput: (Value) -> Bool) -> Node? {
        guard y.uses.count == 2, !isOutput(y) else { return nil }
        return y.uses.map(\.node).first { $0.opType == "Sigmoid" }
    }

    /// The activation node `a` applies to `y`: its name, parameters and the node that produces the result.
    static func activation(_ a: Node, _ y: Value, _ isOutput: (Value) -> Bool) -> (String, [Float], Node)? {
        guard a.input(0) === y, a.output(0) != nil else { return nil }
        switch a.opType {
        case "Relu", "Tanh", "HardSwish":
            return (a.opType, [], a)
        case "Gelu":
            // The exact (erf) form: ONNX's Gelu (opset 20) or ours.
            return (a.string("approximate") ?? "none") == "none" ? ("Gelu", [], a) : nil
        case "Sigmoid":
            // Swish: y * Sigmoid(y).
            if y.uses.count == 2, let s = a.output(0), !isOutput(s), s.uses.count == 1, let m = s.uses.first?.node, m.opType == "Mul",
               m.inputs.count == 2, Set([m.input(0), m.input(1)].compactMap { $0.map(ObjectIdentifier.init) }) == Set([ObjectIdentifier(y), ObjectIdentifier(s)]) {
                return ("Swish", [], m)
            }
            return y.uses.count == 1 ? ("Sigmoid", [], a) : nil
        case "LeakyRelu":
            return ("LeakyRelu", [a.float("alpha") ?? 0.01], a)
        case "HardSigmoid":
            return ("HardSigmoid", [a.float("alpha") ?? 0.2, a.float("beta") ?? 0.5], a)
        case "Clip":
            func bound(_ i: Int, _ attr: String, _ def: Float) -> Float? {
                if a.inputs.count > i {
                    guard let v = a.input(i) else { return def }
                    return v.initializer.flatMap(NDArray.init).flatMap { $0.count == 1 ? Float($0.double(0)) : nil }
                }
                return a.float(attr) ?? def
            }
            guard let lo = bound(1, "min", -Float.infinity), let hi = bound(2, "max", Float.infinity) else { return nil }
            return ("Clip", [lo, hi], a)
        default:
            return nil
        }
    }
}

/// A Conv without run-time bias followed by Add of a per-channel constant ([M,1,...,1] or
/// [1,M,1,...,1]): the constant becomes (or is added to) the Conv's bias.
public struct FuseConvAdd: GraphPass {
    public let name = "fuse-conv-add"
    public let summary = "fold an Add of a per-channel constant after a Conv into the Conv's bias"
    public init() {}

    public func run(_ model: Model) throws -> Bool {
        let g = model.graph
        let outputs = Set(g.outputs.map(ObjectIdentifier.init))
        var taken = Set(g.definedValues.map(\.name))
        var remove = Set<ObjectIdentifier>()
        for add in g.nodes where add.opType == "Add" && add.isStandard && add.inputs.count == 2 {
            guard let a = add.input(0), let b = add.input(1), let y = add.output(0) else { continue }
            let (convOut, constant) = a.producer?.opType == "Conv" ? (a, b) : (b, a)
            guard let conv = convOut.producer, conv.opType == "Conv", conv.isStandard,
                  convOut.uses.count == 1, !outputs.contains(ObjectIdentifier(convOut)),
                  let c = constant.initializer, c.dataType == .float, let cv = c.values(as: Float.self),
                  let shape = convOut.tensorType?.shape, shape.count >= 3, let m = conv.input(1)?.initializer?.dims.first else { continue }
            // The constant must broadcast along channels only: dims [M,1..] or [1,M,1..] of rank <= output rank.
            var dims = c.dims
            while dims.count < shape.count { dims.insert(1, at: 0) }
            guard dims.count == shape.count, dims[0] == 1, dims[1] == m || dims[1] == 1, dims[2...].allSatisfy({ $0 == 1 }) else { continue }
            var bias = [Float](repeating: 0, count: m)
            if conv.inputs.count > 2, let old = conv.input(2) {
                guard let ov = old.initializer?.values(as: Float.self), ov.count == m else { continue }
                bias = ov
            }
            for o in 0..<m { bias[o] += cv.count == 1 ? cv[0] : cv[o] }
            let bv = g.addConstant(Tensor(dataType: .float, dims: [m], values: bias), name: (conv.name.isEmpty ? "conv" : conv.name) + "_bias", taken: &taken)
            if conv.inputs.count > 2 { conv.setInput(2, bv) } else {
                while conv.inputs.count < 2 { conv.appendInput(nil) }
                conv.appendInput(bv)
            }
            add.removeAllInputs()
            add.removeAllOutputs()
            conv.removeAllOutputs()
            conv.appendOutput(y)
            remove.insert(ObjectIdentifier(add))
        }
        g.removeNodes(remove)
        if !remove.isEmpty { _ = try DeadCodeElimination().run(model) }
        return !remove.isEmpty
    }
}

/// Turns our own `org.sofie` nodes back into standard ONNX ops (for writing a plain ONNX file).
public struct ExpandSofieOps: GraphPass {
    public let name = "expand-sofie-ops"
    public let summary = "rewrite org.sofie fused nodes as the standard ONNX ops they stand for"
    public init() {}

    public func run(_ model: Model) throws -> Bool {
        let g = model.graph
        guard g.nodes.contains(where: SofieOps.isSofie) else { return false }
        let opset = model.onnxOpset ?? 21
        var taken = Set(g.definedValues.map(\.name) + g.nodes.map(\.name))
        // The expansion names its constants with `unique` already.
        let constant = { (t: Tensor) -> Value in
            let v = Value(name: t.name, type: .tensor(t.type), initializer: t)
            g.addInitializer(v)
            return v
        }
        var result: [Node] = []
        for n in g.nodes {
            guard SofieOps.isSofie(n), let y = n.output(0) else {
                result.append(n)
                continue
            }
            n.removeAllOutputs()
            guard let expanded = SofieOps.expand(n, output: y, opset: opset, unique: { g.uniqueName($0, taken: &taken) }, constant: constant) else {
                let act = n.string("activation") ?? ""
                let why = act.isEmpty ? "" : ": its activation '\(act)' with \((n.floats("activation_params") ?? []).count) parameters is not one of "
                    + SofieOps.activations.sorted { $0.key < $1.key }.map { "\($0.key) (\($0.value.count))" }.joined(separator: ", ")
                throw PassError(pass: name, message: "node \(n.label) of domain \(n.domain) has no ONNX equivalent\(why)")
            }
            n.removeAllInputs()
            result += expanded
        }
        g.setNodes(result)
        model.opsetImports.removeAll { $0.domain == SofieOps.domain }
        return true
    }
}

/// A zero-padding Pad (constant mode, value 0, spatial axes only) read only by a Conv becomes
/// part of the Conv's own padding: the padded copy of the input disappears.
public struct FusePadConv: GraphPass {
    public let name = "fuse-pad-conv"
    public let summary = "fold a zero Pad of the spatial axes into the Conv that reads it"
    public init() {}

    public func run(_ model: Model) throws -> Bool {
        let g = model.graph
        let opset = model.onnxOpset ?? 21
        let outputs = Set(g.outputs.map(ObjectIdentifier.init))
        var changed = false
        for conv in g.nodes where conv.opType == "Conv" && conv.isStandard {
            guard let padded = conv.input(0), let pad = padded.producer, pad.opType == "Pad", pad.isStandard,
                  padded.uses.count == 1, !outputs.contains(ObjectIdentifier(padded)), let x = pad.input(0),
                  (pad.string("mode") ?? "constant") == "constant", pad.inputs.count < 4 || pad.input(3) == nil else { continue }
            guard let pads = pad.constantPads(opset: opset) else { continue }
            if opset >= 11 {
                if pad.inputs.count > 2, let c = pad.input(2) {
                    guard let cv = c.initializer.flatMap(NDArray.init), cv.count <= 1, cv.count == 0 || cv.double(0) == 0 else { continue }
                }
            } else {
                guard (pad.float("value") ?? 0) == 0 else { continue }
            }
            let rank = pads.count / 2
            guard rank >= 3, pads.count == 2 * rank, pads.allSatisfy({ $0 >= 0 }),
                  pads[0] == 0, pads[1] == 0, pads[rank] == 0, pads[rank + 1] == 0 else { continue }
            let autoPad = conv.string("auto_pad") ?? "NOTSET"
            guard autoPad == "NOTSET" || autoPad == "VALID" else { continue }
            let spatial = rank - 2
            let old = conv.ints("pads") ?? [Int](repeating: 0, count: 2 * spatial)
            guard old.count == 2 * spatial else { continue }
            var merged = old
            for i in 0..<spatial {
                merged[i] += pads[2 + i]
                merged[spatial + i] += pads[rank + 2 + i]
            }
            conv.attributes.removeAll { $0.name == "auto_pad" || $0.name == "pads" }
            conv.setAttribute("pads", .ints(merged.map { Int64($0) }))
            conv.setInput(0, x)
            changed = true
        }
        if changed { _ = try DeadCodeElimination().run(model) }
        return changed
    }
}

extension Node {
    /// A Pad's amounts ([begin..., end...]) when they are constants: the `pads` attribute before
    /// opset 11, the constant second input from then on.
    func constantPads(opset: Int) -> [Int]? {
        opset >= 11 ? input(1)?.initializer?.integers() : ints("pads")
    }
}
