import SofieIR

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
                        throw CompileError(.graphInput(v.name), "input '\(v.name)' has the symbolic dimension '\(s)' at position \(i); give it a value with --dim \(s)=VALUE, or a bound with --dim \(s)=max:BOUND to choose it at run time")
                    }
                case .unknown:
                    if i == 0 { shape[i] = .fixed(batch) } else {
                        throw CompileError(.graphInput(v.name), "input '\(v.name)' has an unnamed unknown dimension at position \(i), which cannot be pinned")
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
