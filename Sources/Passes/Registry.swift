import SofieIR

/// The built-in passes by name, and pipelines written as "a,b,c".
public enum PassRegistry {
    /// The built-in passes; each states its own name (`sofie passes` lists them in this order).
    static let factories: [() -> GraphPass] = [
        { ShapeInference() }, { ConstantFolding() }, { InlineControlFlow() }, { EliminateIdentity() },
        { CommonSubexpressionElimination() }, { FoldTransposes() }, { FuseConvBatchNorm() }, { FuseConvAdd() },
        { FusePadConv() }, { Fusions.denseBatchNorm }, { Fusions.matmulAdd }, { Fusions.transposeBeforeDense },
        { Fusions.transposeIntoGemm }, { RecognizeGelu() }, { RecognizeLayerNorm() }, { FuseEpilogues() }, { BlockChannels() },
        { DeadCodeElimination() }, { ExpandSofieOps() }, { WidenReducedFloats() }, { PlanMemory() },
    ]

    /// The built-in passes by name.
    public static let builtins: [(name: String, make: () -> GraphPass)] = factories.map { ($0().name, $0) }

    /// Custom passes registered by users of the library (by name).
    nonisolated(unsafe) public static var custom: [String: () -> GraphPass] = [:]

    public static func register(_ name: String, _ make: @escaping () -> GraphPass) { custom[name] = make }

    /// The pipeline `sofie convert` and `sofie compile` run when no --passes is given.
    public static let defaultPipeline = ["infer-shapes", "fold-constants", "eliminate-identity", "eliminate-common-subexpressions", "fold-transposes",
                                         "fuse-conv-bn", "fuse-conv-add", "fuse-pad-conv", "fuse-dense-bn", "fuse-matmul-add", "fold-transpose-into-dense",
                                         "fold-transpose-into-gemm", "recognize-gelu", "recognize-layernorm", "fuse-epilogues", "block-channels", "eliminate-dead-code"]

    /// Passes whose result only the C++ backend consumes (they create org.sofie ops): the
    /// default pipeline of `sofie convert` leaves them out unless --sofie-ops asks for them.
    public static let backendOnly: Set<String> = ["fuse-epilogues", "block-channels"]

    public static func make(_ name: String) -> GraphPass? {
        builtins.first { $0.name == name }?.make() ?? custom[name]?()
    }

    /// Parses "fold-constants, fuse-conv-bn" into passes; unknown names are an error listing the known ones.
    public static func pipeline(_ text: String) throws -> [GraphPass] {
        try pipeline(names: text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty })
    }

    /// The passes of these names, in order (e.g. `defaultPipeline`).
    /// The name `default` stands for the default pipeline (e.g. `default,my-pass`).
    public static func pipeline(names: [String]) throws -> [GraphPass] {
        try names.flatMap { $0 == "default" ? defaultPipeline : [$0] }.map { name in
            guard let p = make(name) else {
                let known = (builtins.map(\.name) + custom.keys.sorted()).joined(separator: ", ")
                throw PassError(pass: name, message: "no such pass; the passes are: \(known)")
            }
            return p
        }
    }
}
