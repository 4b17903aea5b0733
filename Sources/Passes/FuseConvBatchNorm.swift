import Foundation
import SofieIR

/// Folds an inference BatchNormalization that is the only reader of a Conv's output into the
/// Conv's weights and bias (all constant): W' = W * s, b' = (b - mean) * s + beta, s = gamma / sqrt(var + eps).
/// A rewrite rule (see `RewriteRule`); `--stats` shows its rewrites and why it refused.
public struct FuseConvBatchNorm: RulePass {
    public let name = "fuse-conv-bn"
    public let summary = "fold BatchNormalization into the weights of the Conv before it"
    public init() {}

    public var rules: [RewriteRule] { [rule] }

    /// Inference-mode parameters as float32, each of `m` values.
    static func parameters(_ m: Match, channels: Int) -> (gamma: [Float], beta: [Float], mean: [Float], variance: [Float])? {
        guard let gamma = m.tensor("gamma")?.values(as: Float.self), let beta = m.tensor("beta")?.values(as: Float.self),
              let mean = m.tensor("mean")?.values(as: Float.self), let variance = m.tensor("var")?.values(as: Float.self),
              [gamma.count, beta.count, mean.count, variance.count].allSatisfy({ $0 == channels }) else { return nil }
        return (gamma, beta, mean, variance)
    }

    var rule: RewriteRule {
        func check(_ m: Match) -> Verdict {
            let bn = m.node("bn"), conv = m.node("conv")
            guard bn.outputs.compactMap({ $0 }).count == 1, (bn.int("training_mode") ?? 0) == 0 else { return .refuse("the BatchNormalization is in training mode") }
            guard let w = m.tensor("w"), w.dataType == .float, let channels = w.dims.first, channels > 0 else { return .refuse("the Conv's weight is not a float32 constant") }
            guard Self.parameters(m, channels: channels) != nil else { return .refuse("the BatchNormalization's parameters are not float32 constants of the Conv's \(channels) channels") }
            if conv.inputs.count > 2, let b = conv.input(2) {
                guard let bv = b.initializer?.values(as: Float.self), bv.count == channels else { return .refuse("the Conv's bias is not a float32 constant of \(channels) values") }
            }
            return .accept
        }
        func rewrite(_ m: Match, _ b: RewriteBuilder) throws -> Value {
            let bn = m.node("bn"), conv = m.node("conv"), w = m.tensor("w")!
            let channels = w.dims[0]
            let p = Self.parameters(m, channels: channels)!
            let wv = w.values(as: Float.self)!
            let bias = conv.input(2)?.initializer?.values(as: Float.self) ?? [Float](repeating: 0, count: channels)
            let eps = bn.float("epsilon") ?? 1e-5
            let per = wv.count / channels
            var nw = wv, nb = bias
            for o in 0..<channels {
                let s = p.gamma[o] / (p.variance[o] + eps).squareRoot()
                for k in 0..<per { nw[o * per + k] = wv[o * per + k] * s }
                nb[o] = (bias[o] - p.mean[o]) * s + p.beta[o]
            }
            let weight = b.constant(Tensor(dataType: .float, dims: w.dims, values: nw), name: m.value("w").name + "_bn")
            let biasValue = b.constant(Tensor(dataType: .float, dims: [channels], values: nb), name: (conv.name.isEmpty ? "conv" : conv.name) + "_bias_bn")
            return b.node("Conv", [m.value("x"), weight, biasValue], name: (conv.name.isEmpty ? "conv" : conv.name) + "_bn", attributes: conv.attributes)
        }
        return RewriteRule(name: name, summary: summary,
                           pattern: .op("BatchNormalization", [.op("Conv", [.any("x"), .constant("w")], bind: "conv"), .constant("gamma"),
                                                               .constant("beta"), .constant("mean"), .constant("var")], bind: "bn"),
                           check: check, replacement: rewrite)
    }
}
