import Foundation
import SofieIR

/// Removes Identity nodes and inference-mode Dropout nodes, reading their input directly.
public struct EliminateIdentity: GraphPass {
    public let name = "eliminate-identity"
    public let summary = "remove Identity and inference-mode Dropout nodes"
    public init() {}

    public func run(_ model: Model) throws -> Bool {
        let g = model.graph
        let outputs = Set(g.outputs.map(ObjectIdentifier.init))
        var remove = Set<ObjectIdentifier>()
        for n in g.nodes where n.opType == "Identity" || n.opType == "Dropout" {
            guard let x = n.input(0), let y = n.output(0), !outputs.contains(ObjectIdentifier(y)) else { continue }
            if n.opType == "Dropout" {
                if n.outputs.count > 1, let mask = n.output(1), !mask.uses.isEmpty || outputs.contains(ObjectIdentifier(mask)) { continue }
                if n.inputs.count > 2, let mode = n.input(2) {
                    guard let m = mode.initializer?.integers(), m.allSatisfy({ $0 == 0 }) else { continue }
                }
            }
            g.replaceAllUses(of: y, with: x)
            remove.insert(ObjectIdentifier(n))
        }
        g.removeNodes(remove)
        return !remove.isEmpty
    }
}
