import SofieIR

/// Gives every node output a type and static shape from the op's rules (OpRegistry).
/// Lenient by default: a node it cannot infer yet (an unknown op, a shape that depends on a
/// value not folded yet) keeps its outputs untyped. `strict` turns those into errors.
public struct ShapeInference: GraphPass {
    public let name = "infer-shapes"
    public let summary = "infer element types and static shapes of every value"
    public var strict: Bool

    public init(strict: Bool = false) { self.strict = strict }

    public func run(_ model: Model) throws -> Bool {
        let opset = model.onnxOpset ?? 21
        var changed = false
        for node in model.graph.nodes {
            guard let def = OpRegistry.definition(for: node) else {
                if strict { throw CompileError(node: node, "the op \(node.domain.isEmpty ? "" : node.domain + ".")\(node.opType) is not supported") }
                continue
            }
            let types: [TensorType]
            do { types = try def.infer(OpContext(node: node, opset: opset)) } catch {
                if strict { throw error }
                continue
            }
            for (i, t) in types.enumerated() where i < node.outputs.count {
                guard let out = node.outputs[i] else { continue }
                if out.tensorType != t { out.tensorType = t; changed = true }
            }
        }
        return changed
    }
}

/// Replaces symbolic dimensions of the graph inputs by numbers: `values` by name, and any
/// other symbolic leading dimension by `batch`.
public struct PinDimensions: GraphPass {
    public let name = "pin-dims"
    public let summary = "fix symbolic input dimensions to numbers (--dim NAME=VALUE; batch defaults to 1)"
    public var values: [String: Int]
    public var batch: Int

    public init(values: [String: Int], batch: Int = 1) {
        self.values = values
        self.batch = batch
    }

    public func run(_ model: Model) throws -> Bool {
        var changed = false
        for v in model.graph.inputs where v.initializer == nil {
            guard var t = v.tensorType, var shape = t.shape else { continue }
            for (i, d) in shape.enumerated() {
                switch d {
                case .symbolic(let s):
                    if let n = values[s] { shape[i] = .fixed(n) } else if i == 0 { shape[i] = .fixed(batch) } else {
                        throw CompileError(node: "", opType: "graph input", "input '\(v.name)' has the symbolic dimension '\(s)' at position \(i); give it a value with --dim \(s)=VALUE")
                    }
                case .unknown:
                    if i == 0 { shape[i] = .fixed(batch) } else {
                        throw CompileError(node: "", opType: "graph input", "input '\(v.name)' has an unnamed unknown dimension at position \(i), which cannot be pinned")
                    }
                case .fixed: continue
                }
                changed = true
            }
            t.shape = shape
            v.tensorType = t
        }
        return changed
    }
}
