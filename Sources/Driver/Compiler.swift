import Foundation
import SofieBackends
import SofieFrontends
import SofieIR
import SofiePasses

/// The compile pipeline: pin dimensions, infer shapes and fold constants to a fixed point,
/// drop dead code, check that every value has a static shape, emit C++.
public enum Compiler {
    public struct Options {
        public var name: String
        public var weights: WeightsPlacement = .auto
        public var dims: [String: Int] = [:]
        /// Run-time dimensions with their upper bounds (--dim NAME=max:BOUND): `infer` takes
        /// their values; the code is compiled once for every value up to the bound.
        public var bounds: [String: Int] = [:]
        public var batch: Int = 1
        /// Rows of the block bodies for a run-time batch (each > 1; the largest runs first):
        /// nil chooses (`autoBlockSizes`), [] or [1] turns blocks off.
        public var batchBlocks: [Int]? = nil
        /// Optimization passes run before emission; nil means the default pipeline, [] none (-O0).
        public var passes: [GraphPass]? = nil
        public var verifyEach = false
        /// When set, counts what each pass did (PassStatistics; `--stats`).
        public var statistics: PassStatistics? = nil
        /// Also write NAME_c.h and NAME_c.cpp, a C interface to the Session (CppCApi).
        public var cApi = false
        /// Winograd F(2×2, 3×3) for 3×3 stride-1 blocked convolutions (CppEmitterOptions.winograd).
        public var winograd = true
        public var afterEach: ((GraphPass, Model, Bool) throws -> Void)? = nil

        public init(name: String) { self.name = name }
    }

    /// A failure of the pipeline, with the file it concerns.
    public struct Failure: Error, CustomStringConvertible {
        public let file: String
        public let underlying: Error
        public init(file: String, underlying: Error) {
            self.file = file
            self.underlying = underlying
        }
        public var description: String { "\(file): \(underlying)" }
    }

    /// Brings a model into the form the C++ emitter consumes.
    public static func prepare(_ model: Model, dims: [String: Int] = [:], batch: Int = 1, passes: [GraphPass]? = nil,
                               verifyEach: Bool = false, afterEach: ((GraphPass, Model, Bool) throws -> Void)? = nil,
                               statistics: PassStatistics? = nil) throws {
        _ = try PinDimensions(values: dims, batch: batch).run(model)
        model.graph.valueLengths = dims
        // Passes that end a pipeline (plan-memory) run once at the end below, not in the loop.
        let chosen = try (passes ?? PassRegistry.pipeline(names: PassRegistry.defaultPipeline)).filter { !$0.mustRunLast }
        // Shape inference and folding always run: the emitter needs static shapes. So does the
        // inlining of compile-time control flow (Scan, If with a constant condition): the emitter
        // has no subgraphs.
        var manager = PassManager(chosen + [ShapeInference(), InlineControlFlow(), ConstantFolding(), DeadCodeElimination()], fixedPoint: true,
                                  maxIterations: 50, verifyEach: verifyEach)
        manager.afterEach = afterEach
        manager.statistics = statistics
        try manager.run(model)
        // float16/bfloat16/float8 compute in float32 with rounding on store (the kernels are
        // float32): after the optimizations, which then see the model's own graph.
        let widen = WidenReducedFloats()
        if try widen.run(model) { try afterEach?(widen, model, true) }
        // An op the backend cannot emit is reported as such (with the supported list), before
        // strict inference would report it as an op without shape rules.
        // An op the compiler knows only folds away (window functions, MelWeightMatrix) reports
        // why it did not fold, e.g. an input that is not constant.
        func checkSupported() throws {
            if let node = model.graph.nodes.first(where: { !CppEmitter.supports($0) }) {
                if let def = OpRegistry.definition(for: node), def.evaluate != nil {
                    do { _ = try def.infer(OpContext(node: node, opset: model.onnxOpset ?? 21)) } catch let e as CompileError { throw e }
                }
                throw CppEmitter.unsupported(node)
            }
        }
        let declared = model.graph.outputs.map { $0.tensorType?.staticShape }
        do {
            try checkSupported()
            _ = try ShapeInference(strict: true).run(model)
        } catch let error as CompileError where error.runtimeInput != nil || model.graph.nodes.contains(where: { $0.opType == "If" && !CppEmitter.supports($0) }) {
            // A shape computed from a small integer input that no declared shape covers: the
            // declared output shapes may imply the input's values (SpecializeShapeInputs); the
            // graph is specialized on them when it then infers exactly those output shapes.
            // Otherwise the original error stands. (An If whose condition such an input decides
            // is tried too: with the values known, it folds to one branch.)
            let simplify = PassManager([ShapeInference(), InlineControlFlow(), ConstantFolding(), DeadCodeElimination()], fixedPoint: true, maxIterations: 50)
            guard let assumptions = SpecializeShapeInputs.solve(model, simplify: { _ = try simplify.run($0) }) else { throw error }
            SpecializeShapeInputs.apply(assumptions, to: model)
            do {
                try manager.run(model)
                try checkSupported()
                _ = try ShapeInference(strict: true).run(model)
            } catch { throw error }
            guard zip(model.graph.outputs, declared).allSatisfy({ $1 == nil || $0.tensorType?.staticShape == $1 }) else { throw error }
        }
        // Memory planning comes last: it needs the final graph.
        let plan = PlanMemory()
        _ = try plan.run(model)
        try afterEach?(plan, model, false)
        // Each tensor passed the size budget; their sum in the arena or the weights must too.
        let arena = model.graph.memoryPlan?.arenaBytes ?? 0
        let weights = model.graph.initializers.reduce(0) { $0 &+ ($1.initializer?.rawBytes?.count ?? 0) }
        for (what, bytes) in [("the arena of intermediate tensors", arena), ("the weights", weights)] where bytes > Limits.maxTensorBytes {
            throw CompileError(.graph, "\(what) would take \(bytes) bytes, more than the \(Limits.maxTensorBytes)-byte limit (--max-tensor-bytes)")
        }
    }

    /// Ops whose output length run-time values choose, with a largest value the input gives.
    static let valueLengthOps: Set<String> = ["NonZero", "Unique", "Compress", "NonMaxSuppression", "TopK"]

    public static func emit(_ model: Model, options: Options, source: String) throws -> EmittedCpp {
        // The batch decision has one owner, BatchPlan: the inputs carrying a batch are read
        // before the dimensions are pinned, the rest is decided on the prepared model.
        let batchInputs = BatchPlan.batchInputs(of: model, dims: options.dims.merging(options.bounds) { a, _ in a })
        if let both = options.bounds.keys.first(where: { options.dims[$0] != nil }) {
            throw CompileError(.graph, "--dim \(both) is given both a value and a bound")
        }
        // A copy for the block bodies, taken before the passes change the model, and only when
        // block bodies may be wanted (not with run-time dimensions: the blocks would need their
        // own run-time extents).
        var copy = batchInputs.isEmpty || options.batch != 1 || !options.bounds.isEmpty || !BatchPlan.mayWantBlocks(model, requested: options.batchBlocks) ? nil : model.clone()
        // Lengths that run-time values choose (NonZero's count, Unique's, Compress's) and that
        // the model neither declares nor --dim bounds take their largest possible value as the
        // bound: the model is prepared anew from a copy with that bound added.
        let pristine = model.graph.nodes.contains { valueLengthOps.contains($0.opType) } ? model.clone() : nil
        var bounds = options.bounds
        while true {
            do {
                if bounds.isEmpty {
                    try prepare(model, dims: options.dims, batch: options.batch, passes: options.passes, verifyEach: options.verifyEach,
                                afterEach: options.afterEach, statistics: options.statistics)
                } else {
                    try RuntimeDimensions.prepare(model, bounds: bounds) { m, values in
                        let atBounds = values == bounds
                        try prepare(m, dims: options.dims.merging(values) { a, _ in a }, batch: options.batch, passes: options.passes,
                                    verifyEach: options.verifyEach, afterEach: atBounds ? options.afterEach : nil, statistics: atBounds ? options.statistics : nil)
                    }
                }
                break
            } catch let e as CompileError {
                // (At most 16 such lengths by default: each one found costs a fresh preparation.)
                guard let pristine, let (symbol, maximum) = e.lengthBound, bounds[symbol] == nil, options.dims[symbol] == nil,
                      maximum >= 1, bounds.count - options.bounds.count < 16 else { throw e }
                bounds[symbol] = maximum
                model.graph = pristine.clone().graph
                copy = nil
            }
        }
        var o = CppEmitterOptions(name: options.name)
        o.weights = options.weights
        o.winograd = options.winograd
        o.sourceDescription = URL(fileURLWithPath: source).lastPathComponent
        var plan = BatchPlan.decide(model, batchInputs: batchInputs, compiledBatch: options.batch, requested: copy == nil ? [] : options.batchBlocks)
        var blocks: [(rows: Int, model: Model)] = []
        if let copy {
            for rows in plan.blockSizes {
                let block = copy.clone()
                do { try prepare(block, dims: options.dims, batch: rows, passes: options.passes) } catch {
                    // E.g. a Reshape to a constant shape with batch 1 written in: no block body of this size.
                    plan.drop(rows, because: "the model does not compile for \(rows) rows: \(error)")
                    continue
                }
                blocks.append((rows, block))
            }
        }
        return try CppEmitter.emit(model, options: o, plan: plan, blocks: blocks)
    }

    /// Runs optimization passes on a model to be written as ONNX (sofie convert). Unless
    /// `keepSofieOps`, the default pipeline leaves out the backend-only fusions and any org.sofie
    /// node a chosen pass created is expanded back into standard ONNX ops at the end.
    public static func optimize(_ model: Model, passes: [GraphPass]?, keepSofieOps: Bool = false, verifyEach: Bool = false,
                                afterEach: ((GraphPass, Model, Bool) throws -> Void)? = nil, statistics: PassStatistics? = nil) throws {
        let defaults = PassRegistry.defaultPipeline.filter { keepSofieOps || !PassRegistry.backendOnly.contains($0) }
        let chosen = try passes ?? PassRegistry.pipeline(names: defaults)
        if !chosen.isEmpty {
            var manager = PassManager(chosen, fixedPoint: true, maxIterations: 50, verifyEach: verifyEach)
            manager.afterEach = afterEach
            manager.statistics = statistics
            try manager.run(model)
        }
        if !keepSofieOps { _ = try ExpandSofieOps().run(model) }
    }

    /// Reads `path`, compiles it and writes `NAME.hxx` (and `NAME.weights`) into `directory`.
    @discardableResult
    public static func compile(path: String, directory: String, options: Options) throws -> EmittedCpp {
        try compile(try ModelLoader.load(path: path), source: path, directory: directory, options: options)
    }

    /// Compiles a loaded model (which the passes change) read from `source`, and writes its files
    /// into `directory`.
    @discardableResult
    public static func compile(_ model: Model, source: String, directory: String, options: Options) throws -> EmittedCpp {
        let emitted: EmittedCpp
        do { emitted = try emit(model, options: options, source: source) } catch let e as CompileError {
            throw Failure(file: source, underlying: e)
        }
        var isDir: ObjCBool = false
        if !FileManager.default.fileExists(atPath: directory, isDirectory: &isDir) {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } else if !isDir.boolValue {
            throw Failure(file: directory, underlying: CompileError(.outputPath, "the output path exists and is not a folder"))
        }
        if let w = emitted.weights {
            try w.withUnsafeBytes { try AtomicFile.write($0, to: directory + "/" + emitted.weightsFileName) }
        }
        if options.cApi {
            let c = CppCApi.emit(emitted)
            try AtomicFile.write(c.header, to: directory + "/" + c.headerFileName)
            try AtomicFile.write(c.source, to: directory + "/" + c.sourceFileName)
        }
        try AtomicFile.write(emitted.header, to: directory + "/" + emitted.headerFileName)
        return emitted
    }
}
