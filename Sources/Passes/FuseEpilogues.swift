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
            var reshapeAfter: (node: Node, output: Value)?
            // Residual: Add(y, z) with z of y's exact shape (no broadcasting), computed at run time.
            if residual == nil, let add = soleConsumer(cur), add.opType == "Add", add.isStandard, add.inputs.count == 2,
               let sum = add.output(0), let other = add.input(add.input(0) === cur ? 1 : 0), other !== cur,
               other.initializer == nil, other.tensorType?.shape == outShape, other.tensorType?.elementType == type.elementType {
                residual = other
                absorbed.append(add)
                cur = sum
            }
            // Activation.
            if let a = soleConsumer(cur) ?? Self.swishHead(cur, isOutput), Self.isActivationOp(a), let (act, p, last) = Self.activation(a, cur, isOutput) {
                activation = act
                params = p
                absorbed += last === a ? [a] : [a, last]
                cur = last.output(0)!
            } else if residual == nil, kind == "FusedGemm", let r = soleConsumer(cur), r.opType == "Reshape", r.isStandard,
                      let ry = r.output(0), let a = soleConsumer(ry), Self.isActivationOp(a), let (act, p, last) = Self.activation(a, ry, isOutput),
                      last === a, let final = a.output(0) {
                // Gemm -> Reshape -> activation (a Linear layer on a sequence, viewed as a matrix by
                // fuse-matmul-add): the activation moves into the Gemm, which keeps its own output;
                // the Reshape then gives its result the activation's output.
                activation = act
                params = p
                absorbed.append(a)
                reshapeAfter = (r, final)
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
            if let (reshape, final) = reshapeAfter {
                // The Gemm's output stays the fused node's (placed where the Gemm was, before the
                // Reshape that reads it); the Reshape writes what the activation did.
                n.removeAllOutputs()
                fused.appendOutput(cur)
                reshape.removeAllOutputs()
                reshape.appendOutput(final)
                g.insertNode(fused, at: g.nodes.firstIndex { $0 === n }! + 1)
            } else {
                fused.appendOutput(cur)
                // Placed where the last absorbed node was: every input (the residual too) is defined by then.
                g.insertNode(fused, at: g.nodes.firstIndex { $0 === last }! + 1)
            }
            g.removeNodes(Set(absorbed.map(ObjectIdentifier.init)))
            // On from where n was: the fused node sits after the last absorbed one, and the nodes
            // between (a block's main branch when its shortcut convolution comes first) are
            // still to be visited. The fused node, met again, takes nothing more.
            i = min(i - 1, g.nodes.firstIndex { $0 === fused }! + 1)
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

    /// Whether `a` is an op the epilogue's activations come from (standard, or sofie's Gelu).
    static func isActivationOp(_ a: Node) -> Bool { a.isStandard || (a.opType == "Gelu" && SofieOps.isSofie(a)) }

    /// For Swish written as Mul(y, Sigmoid(y)): y's Sigmoid reader, when y has exactly those two readers.
    static func swishHead(_ y: Value, _ isOutput: (Value) -> Bool) -> Node? {
        guard y.uses.count == 2, !isOutput(y) else { return nil }
        return y.uses.map(\.node).first { $0.opType == "Sigmoid" }
    }

    /// The activation node `a` applies to `y`: its name, parameters and the node that produces
    /// the result (SofieOps.activation, plus Swish written as y * Sigmoid(y)).
    static func activation(_ a: Node, _ y: Value, _ isOutput: (Value) -> Bool) -> (String, [Float], Node)? {
        guard a.input(0) === y, a.output(0) != nil, let (name, params) = SofieOps.activation(of: a) else { return nil }
        if a.opType == "Sigmoid" {
            // Swish: y * Sigmoid(y).
            if y.uses.count == 2, let s = a.output(0), !isOutput(s), s.uses.count == 1, let m = s.uses.first?.node, m.opType == "Mul",
               m.inputs.count == 2, Set([m.input(0), m.input(1)].compactMap { $0.map(ObjectIdentifier.init) }) == Set([ObjectIdentifier(y), ObjectIdentifier(s)]) {
                return ("Swish", [], m)
            }
            return y.uses.count == 1 ? ("Sigmoid", [], a) : nil
        }
        return (name, params, a)
    }
}
