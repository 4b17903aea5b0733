import Foundation
import SofieIR

/// x * 0.5 * (1 + erf(x / sqrt 2)), in any order of the products (and x * (1/sqrt 2) for the
/// division), becomes Gelu: ONNX's from opset 20, org.sofie.Gelu before.
public struct RecognizeGelu: GraphPass {
    public let name = "recognize-gelu"
    public let summary = "replace x * 0.5 * (1 + erf(x / sqrt 2)) by one Gelu (org.sofie.Gelu below opset 20)"
    public init() {}

    public func run(_ model: Model) throws -> Bool {
        let g = model.graph
        let opset = model.onnxOpset ?? 21
        var changed = false
        var taken = Set(g.definedValues.map(\.name) + g.nodes.map(\.name))
        var i = 0
        while i < g.nodes.count {
            let root = g.nodes[i]
            i += 1
            guard root.opType == "Mul", root.isStandard, let y = root.output(0) else { continue }
            var muls: [Node] = []
            let fs = Recognize.factors(y, root: true, nodes: &muls)
            guard fs.count == 3, let half = fs.firstIndex(where: { Recognize.close(Recognize.scalar($0), 0.5) }),
                  let addIndex = fs.firstIndex(where: { $0.producer?.opType == "Add" && $0.uses.count == 1 }), half != addIndex else { continue }
            let x = fs[3 - half - addIndex]
            let add = fs[addIndex].producer!
            guard let a0 = add.input(0), let a1 = add.input(1) else { continue }
            let (e, one) = a0.producer?.opType == "Erf" ? (a0, a1) : (a1, a0)
            guard e.producer?.opType == "Erf", Recognize.close(Recognize.scalar(one), 1),
                  e.uses.count == 1, let erf = e.producer, let scaled = erf.input(0), scaled.uses.count == 1, let s = scaled.producer,
                  s.inputs.count == 2, s.input(0) === x, x.tensorType.map({ [.float, .double].contains($0.elementType) }) ?? false else { continue }
            switch s.opType {
            case "Div": guard Recognize.close(Recognize.scalar(s.input(1)), 2.0.squareRoot()) else { continue }
            case "Mul": guard Recognize.close(Recognize.scalar(s.input(1)), 1 / 2.0.squareRoot()) else { continue }
            default: continue
            }
            let gelu = Node(opType: "Gelu", domain: opset >= 20 ? "" : SofieOps.domain, name: g.uniqueName((root.name.isEmpty ? "gelu" : root.name) + "_gelu", taken: &taken),
                            inputs: [x], outputs: [])
            root.removeAllOutputs()
            gelu.appendOutput(y)
            g.insertNode(gelu, at: i)
            g.removeNodes(Set((muls + [add, erf, s]).map(ObjectIdentifier.init)))
            i = g.nodes.firstIndex { $0 === gelu }! + 1
            changed = true
        }
        if changed, opset < 20, !model.opsetImports.contains(where: { $0.domain == SofieOps.domain }) {
            model.opsetImports.append(OpsetImport(domain: SofieOps.domain, version: SofieOps.version))
        }
        return changed
    }
}
