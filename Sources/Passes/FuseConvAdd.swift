import SofieIR

/// A Conv without run-time bias followed by Add of a per-channel constant ([M,1,...,1] or
/// [1,M,1,...,1], or one value): the constant becomes (or is added to) the Conv's bias.
/// A rewrite rule (see `RewriteRule`); `--stats` shows its rewrites and why it refused.
public struct FuseConvAdd: RulePass {
    public let name = "fuse-conv-add"
    public let summary = "fold an Add of a per-channel constant after a Conv into the Conv's bias"
    public init() {}

    public var rules: [RewriteRule] { [rule] }

    var rule: RewriteRule {
        func check(_ m: Match) -> Verdict {
            let conv = m.node("conv")
            guard m.node("add").inputs.count == 2 else { return .refuse("the Add has more than two inputs") }
            guard let c = m.tensor("c"), c.dataType == .float, c.values(as: Float.self) != nil else { return .refuse("the added constant is not float32") }
            guard let shape = m.value("conv").tensorType?.shape, shape.count >= 3, let channels = m.tensor("w")?.dims.first else { return .refuse("the Conv's output shape or weight is unknown") }
            // The constant broadcasts along channels only: [M,1..] or [1,M,1..] of rank <= the output's.
            var dims = c.dims
            while dims.count < shape.count { dims.insert(1, at: 0) }
            guard dims.count == shape.count, dims[0] == 1, dims[1] == channels || dims[1] == 1, dims[2...].allSatisfy({ $0 == 1 }) else {
                return .refuse("the added constant of shape \(c.dims) is not one value per channel")
            }
            if conv.inputs.count > 2, let old = conv.input(2) {
                guard let ov = old.initializer?.values(as: Float.self), ov.count == channels else { return .refuse("the Conv's bias is not a float32 constant of \(channels) values") }
            }
            return .accept
        }
        func rewrite(_ m: Match, _ b: RewriteBuilder) throws -> Value {
            let conv = m.node("conv"), channels = m.tensor("w")!.dims[0]
            let cv = m.tensor("c")!.values(as: Float.self)!
            var bias = conv.input(2)?.initializer?.values(as: Float.self) ?? [Float](repeating: 0, count: channels)
            for o in 0..<channels { bias[o] += cv.count == 1 ? cv[0] : cv[o] }
            let base = conv.name.isEmpty ? "conv" : conv.name
            let bv = b.constant(Tensor(dataType: .float, dims: [channels], values: bias), name: base + "_bias")
            return b.node("Conv", [m.value("x"), m.value("w"), bv], name: base + "_add", attributes: conv.attributes)
        }
        return RewriteRule(name: name, summary: summary,
                           pattern: .commutative("Add", .op("Conv", [.any("x"), .constant("w")], bind: "conv"), .constant("c"), bind: "add"),
                           check: check, replacement: rewrite)
    }
}
