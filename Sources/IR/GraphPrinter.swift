/// A readable listing of a graph, one line per node (`--print-after`; for tests and library
/// users too): `%out = Op(%in, $initializer) {attributes}`, then the memory plan if any.
public enum GraphPrinter {
    public static func text(_ g: Graph) -> String {
        var lines = ["graph '\(g.name)' (\(g.inputs.filter { $0.initializer == nil }.map { "%\($0.name): \($0.type?.description ?? "?")" }.joined(separator: ", ")))"]
        for n in g.nodes {
            let attrs = n.attributes.map { a -> String in
                switch a.value {
                case .int(let v): return "\(a.name)=\(v)"
                case .float(let v): return "\(a.name)=\(v)"
                case .ints(let v): return "\(a.name)=\(v)"
                case .floats(let v): return "\(a.name)=\(v)"
                case .string(let v): return "\(a.name)=\"\(String(decoding: v, as: UTF8.self))\""
                default: return a.name
                }
            }
            let ins = n.inputs.map { v in v.map { $0.initializer != nil ? "$\($0.name)" : "%\($0.name)" } ?? "_" }
            lines.append("  \(n.outputs.map { $0.map { "%\($0.name)" } ?? "_" }.joined(separator: ", ")) = \(n.domain.isEmpty ? "" : n.domain + ".")\(n.opType)(\(ins.joined(separator: ", ")))\(attrs.isEmpty ? "" : " {\(attrs.joined(separator: ", "))}")")
        }
        lines.append("  return \(g.outputs.map { "%\($0.name)" }.joined(separator: ", "))")
        if let plan = g.memoryPlan {
            lines.append("  // memory plan: arena \(plan.arenaBytes) bytes for \(plan.slots.count - plan.aliases.count) tensors (\(plan.totalBytes) bytes without reuse), \(plan.aliases.count) aliases")
            for n in g.nodes {
                for case let o? in n.outputs {
                    guard let slot = plan.slots[o.name] else { continue }
                    lines.append("  //   %\(o.name) @\(slot.offset) +\(slot.bytes)\(plan.aliases[o.name].map { " (alias of %\($0))" } ?? "")")
                }
            }
        }
        return lines.joined(separator: "\n")
    }
}
