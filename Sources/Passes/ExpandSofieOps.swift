import SofieIR

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
