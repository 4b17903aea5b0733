import SofieIR

/// The one owner of the batch decision for the C++ backend: which graph inputs carry a
/// run-time batch, whether the compiled model keeps its rows independent (so `infer(batch, ...)`
/// runs any number of rows), which block bodies to compile, and why any of it was not done.
/// The driver makes it once (`inputs` before the passes, `decide` after), prepares the block
/// bodies it asks for and hands everything to `CppEmitter.emit`, which records what it dropped.
public struct BatchPlan {
    /// Graph inputs whose leading dimension is the batch (symbolic and not pinned by --dim).
    public let batchInputs: Set<String>
    /// The batch the single-row body is compiled for (--batch; 1 unless the user fixed it).
    public let compiledBatch: Int
    /// The row analysis of the prepared model; nil when the batch is fixed.
    var analysis: BatchAnalysis.Result?
    /// Why the batch is fixed at compile time (nil when it is a run-time argument, or no input has one).
    public private(set) var fixedReason: String?
    /// Rows of the block bodies to compile, largest first (empty: rows run one by one).
    public private(set) var blockSizes: [Int] = []
    /// Block bodies that were asked for and left out, each with its reason.
    public private(set) var droppedBlocks: [(rows: Int, reason: String)] = []

    /// A plan with no run-time batch yet (`decide` fills it in).
    public init(batchInputs: Set<String>, compiledBatch: Int) {
        self.batchInputs = batchInputs
        self.compiledBatch = compiledBatch
    }

    /// Whether `infer(batch, ...)` takes any number of rows.
    public var runtimeBatch: Bool { analysis != nil }

    /// The graph inputs of a model (before its dimensions are pinned) whose leading dimension is
    /// a batch: symbolic or unknown, and not given a value in `dims`.
    public static func batchInputs(of model: Model, dims: [String: Int]) -> Set<String> {
        var inputs = Set<String>()
        for v in model.graph.inputs where v.initializer == nil {
            switch v.tensorType?.shape?.first {
            case .symbolic(let s)? where dims[s] == nil: inputs.insert(v.name)
            case .unknown?: inputs.insert(v.name)
            default: break
            }
        }
        return inputs
    }

    /// Whether block bodies may be wanted for this model (before the passes): asked for with a
    /// size above 1, or, when not asked, the model has dense products and no convolutions.
    public static func mayWantBlocks(_ model: Model, requested: [Int]?) -> Bool {
        requested.map { $0.contains { $0 > 1 } } ?? hasDenseProductsOnly(model)
    }

    /// Whether the model has dense products and no convolutions (which run image by image
    /// anyway, so a block would only cost memory): the ops' traits say which is which.
    static func hasDenseProductsOnly(_ model: Model) -> Bool {
        let traits = model.graph.nodes.map(OpRegistry.traits(of:))
        return traits.contains { $0.contains(.denseProduct) } && !traits.contains { $0.contains(.convolution) }
    }

    /// The decision for a prepared model (shapes pinned to `compiledBatch` rows, passes run).
    /// `requested`: the --batch-block sizes (nil: 64 and 16 rows for models with dense products
    /// and no convolutions, each while its rows of intermediate tensors fit in 8 MiB).
    public static func decide(_ model: Model, batchInputs: Set<String>, compiledBatch: Int, requested: [Int]?) -> BatchPlan {
        var plan = BatchPlan(batchInputs: batchInputs, compiledBatch: compiledBatch)
        guard !batchInputs.isEmpty else { return plan }
        guard compiledBatch == 1 else {
            plan.fixedReason = "compiled for batch \(compiledBatch)"
            return plan
        }
        let (result, reason) = BatchAnalysis.analyze(model.graph, batchInputs: batchInputs, opset: model.onnxOpset ?? 21)
        plan.analysis = result
        plan.fixedReason = reason
        guard result != nil else { return plan }
        let arena = model.graph.memoryPlan?.arenaBytes ?? Int.max
        let sizes = requested ?? (hasDenseProductsOnly(model) ? [64, 16].filter { arena <= (8 << 20) / $0 } : [])
        plan.blockSizes = Set(sizes.filter { $0 > 1 }).sorted(by: >)
        return plan
    }

    /// Leaves out the block body of `rows` rows, saying why (reported with the result).
    public mutating func drop(_ rows: Int, because reason: String) {
        blockSizes.removeAll { $0 == rows }
        droppedBlocks.append((rows, reason))
    }
}
