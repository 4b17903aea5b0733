import SofieIR

/// The built-in passes by name, and pipelines written as "a,b,c".
public enum PassRegistry {
    public static let builtins: [(name: String, make: () -> GraphPass)] = [
        ("infer-shapes", { ShapeInference() }),
        ("fold-constants", { ConstantFolding() }),
        ("inline-control-flow", { InlineControlFlow() }),
        ("eliminate-identity", { EliminateIdentity() }),
        ("eliminate-common-subexpressions", { CommonSubexpressionElimination() }),
        ("fold-transposes", { FoldTransposes() }),
        ("fuse-conv-bn", { FuseConvBatchNorm() }),
        ("fuse-conv-add", { FuseConvAdd() }),
        ("fuse-pad-conv", { FusePadConv() }),
        ("fuse-dense-bn", { RuleSet(name: "fuse-dense-bn", summary: "fold BatchNormalization into the MatMul/Gemm before it (2-D values)", rules: Fusions.denseBatchNorm) }),
        ("fuse-matmul-add", { RuleSet(name: "fuse-matmul-add", summary: "MatMul + Add of a constant bias becomes Gemm (2-D inputs)", rules: Fusions.matmulAdd) }),
        ("fold-transpose-into-dense", { RuleSet(name: "fold-transpose-into-dense", summary: "remove the transpose before Flatten -> Dense by permuting the Dense weight rows (static shapes except the batch)", rules: Fusions.transposeBeforeDense) }),
        ("fold-transpose-into-gemm", { RuleSet(name: "fold-transpose-into-gemm", summary: "a 2-D Transpose before Gemm/MatMul becomes Gemm's transA/transB flag", rules: Fusions.transposeIntoGemm) }),
        ("recognize-gelu", { RecognizeGelu() }),
        ("recognize-layernorm", { RecognizeLayerNorm() }),
        ("fuse-epilogues", { FuseEpilogues() }),
        ("eliminate-dead-code", { DeadCodeElimination() }),
        ("expand-sofie-ops", { ExpandSofieOps() }),
        ("widen-reduced-floats", { WidenReducedFloats() }),
        ("plan-memory", { PlanMemory() }),
    ]

    /// Custom passes registered by users of the library (by name).
    nonisolated(unsafe) public static var custom: [String: () -> GraphPass] = [:]

    public static func register(_ name: String, _ make: @escaping () -> GraphPass) { custom[name] = make }

    /// The pipeline `sofie convert` and `sofie compile` run when no --passes is given.
    public static let defaultPipeline = ["infer-shapes", "fold-constants", "eliminate-identity", "eliminate-common-subexpressions", "fold-transposes",
                                         "fuse-conv-bn", "fuse-conv-add", "fuse-pad-conv", "fuse-dense-bn", "fuse-matmul-add", "fold-transpose-into-dense",
                                         "fold-transpose-into-gemm", "recognize-gelu", "recognize-layernorm", "fuse-epilogues", "eliminate-dead-code"]

    /// Passes whose result only the C++ backend consumes (they create org.sofie ops): the
    /// default pipeline of `sofie convert` leaves them out unless --sofie-ops asks for them.
    public static let backendOnly: Set<String> = ["fuse-epilogues"]

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
