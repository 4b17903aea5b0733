import SofieIR

/// Removes nodes whose outputs nobody reads, and initializers nobody reads.
public struct DeadCodeElimination: GraphPass {
    public let name = "eliminate-dead-code"
    public let summary = "remove nodes and initializers whose values are never used"

    public init() {}

    public func run(_ model: Model) throws -> Bool {
        let g = model.graph
        let outputs = Set(g.outputs.map(ObjectIdentifier.init))
        var remove = Set<ObjectIdentifier>()
        for node in g.nodes.reversed() {
            let live = node.outputs.contains { v in
                guard let v else { return false }
                return outputs.contains(ObjectIdentifier(v)) || v.uses.contains { !remove.contains(ObjectIdentifier($0.node)) }
            }
            if !live && node.subgraphs.isEmpty { remove.insert(ObjectIdentifier(node)) }
        }
        g.removeNodes(remove)
        let before = g.initializers.count
        let inputs = Set(g.inputs.map(ObjectIdentifier.init))
        g.initializers.removeAll { $0.uses.isEmpty && !outputs.contains(ObjectIdentifier($0)) && !inputs.contains(ObjectIdentifier($0)) }
        return !remove.isEmpty || g.initializers.count != before
    }
}
