import SofieIR

/// Common-subexpression elimination: a node with the same op, inputs (the same values, in
/// either order for commutative ops) and attributes as an earlier node is dropped and its
/// readers use the earlier node's outputs.
/// Nodes with subgraph or tensor attributes are left alone.
public struct CommonSubexpressionElimination: GraphPass {
    public let name = "eliminate-common-subexpressions"
    public let summary = "merge nodes that compute the same op on the same values"
    public init() {}

    static func key(_ n: Node) -> String? {
        var parts = [n.domain, n.opType, n.overload]
        var inputs = n.inputs.map { v in v.map { String(UInt(bitPattern: ObjectIdentifier($0).hashValue)) } ?? "_" }
        // f(a, b) and f(b, a) are one computation for a commutative op.
        if inputs.count == 2, OpRegistry.traits(of: n).contains(.commutative) { inputs.sort() }
        parts += inputs
        parts.append("|\(n.outputs.count)|")
        for a in n.attributes.sorted(by: { $0.name < $1.name }) {
            switch a.value {
            case .float(let f): parts.append("\(a.name)=f\(f.bitPattern)")
            case .int(let i): parts.append("\(a.name)=i\(i)")
            case .string(let s): parts.append("\(a.name)=s\(s)")
            case .floats(let f): parts.append("\(a.name)=F\(f.map(\.bitPattern))")
            case .ints(let i): parts.append("\(a.name)=I\(i)")
            case .strings(let s): parts.append("\(a.name)=S\(s)")
            default: return nil
            }
        }
        return parts.joined(separator: ",")
    }

    /// Ops whose result is not a function of their inputs alone.
    static let impure: Set<String> = ["RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike", "Multinomial", "Bernoulli"]

    public func run(_ model: Model) throws -> Bool {
        let g = model.graph
        let outputs = Set(g.outputs.map(ObjectIdentifier.init))
        var seen: [String: Node] = [:]
        var remove = Set<ObjectIdentifier>()
        for n in g.nodes where !Self.impure.contains(n.opType) {
            guard let k = Self.key(n) else { continue }
            guard let first = seen[k] else { seen[k] = n; continue }
            guard !n.outputs.contains(where: { $0.map { outputs.contains(ObjectIdentifier($0)) } ?? false }) else { continue }
            for (a, b) in zip(n.outputs, first.outputs) {
                guard let a else { continue }
                guard let b else { continue }
                g.replaceAllUses(of: a, with: b)
            }
            if n.outputs.allSatisfy({ $0 == nil || $0!.uses.isEmpty }) { remove.insert(ObjectIdentifier(n)) }
        }
        g.removeNodes(remove)
        return !remove.isEmpty
    }
}
