import Foundation
import SofieIR

/// Where the weights of an emitted model go.
public enum WeightsPlacement: String, CaseIterable, Sendable {
    /// In the header, as a byte array (small models).
    case embed
    /// In a binary file next to the header, read when a Session is created.
    case file
    /// Embedded up to `embedLimit` bytes, in a file above.
    case auto
}

public struct CppEmitterOptions {
    /// Namespace of the emitted code; also the header's file name stem.
    public var name: String
    public var weights: WeightsPlacement = .auto
    public var embedLimit: Int = 1 << 20
    /// 3×3 stride-1 convolutions in the blocked layout as Winograd F(2×2, 3×3) (faster; their
    /// weights take 16/9 the space). False: the direct kernel for them too.
    public var winograd: Bool = true
    public var sourceDescription: String = ""

    public init(name: String) { self.name = name }
}

/// The emitted header and, when the weights go to a file, its bytes.
public struct EmittedCpp {
    public let namespace: String
    public let header: String
    public let weights: [UInt8]?
    /// Whether `infer(batch, ...)` runs any number of rows; otherwise why not (nil when no input had a batch).
    public var runtimeBatch: Bool = false
    public var fixedBatchReason: String?
    /// Rows of each block body, largest first (empty: rows run one by one).
    public var blockSizes: [Int] = []
    /// Block bodies asked for and left out, each with why (e.g. a Reshape to a constant shape
    /// that holds one row).
    public var droppedBlocks: [(rows: Int, reason: String)] = []
    /// Things the user should know that did not stop the compile (each names its node).
    public var warnings: [String] = []
    /// One input or output of `infer`, in order: its argument name, element type, shape (of one
    /// row when batched) and whether it carries the run-time batch.
    public struct Port {
        public let name: String
        public let dataType: DataType
        public let shape: [Int]
        public let batched: Bool
        /// The extents at run time when some follow a run-time dimension (`shape` is then the shape at the bounds).
        public var runtimeShape: [DimExpr]? = nil
        /// Elements (of one row when batched; at the bounds with run-time dimensions).
        public var count: Int { shape.reduce(1, *) }
        /// The element type as the header spells it (`bool`, `float`, `int64_t`, `sofie::float16_t`, ...).
        public var cppType: String { CppTypes.name(dataType) ?? "void" }
        /// The element type as C sees it: the header's, except the reduced-precision floats,
        /// which C passes as their bits (`uint16_t` for float16 and bfloat16, `uint8_t` for float8).
        public var cType: String { CppNumberTypes.cName(dataType) ?? cppType }
        /// Whether C's spelling differs from the header's (the C API casts the pointer).
        public var isBits: Bool { CppNumberTypes.cName(dataType) != nil }
    }
    public var inputs: [Port] = []
    public var outputs: [Port] = []
    /// Dimensions `infer` takes at run time (--dim NAME=max:BOUND), in the order of its arguments,
    /// with the names the arguments have.
    public var runtimeDimensions: [(dimension: RuntimeDimension, argument: String)] = []
    /// Whether the weights are in the header (`Session()`) rather than in NAME.weights.
    public var weightsEmbedded: Bool { weights == nil }
    /// The largest block (1 when there is none).
    public var blockRows: Int { blockSizes.first ?? 1 }
    public var headerFileName: String { namespace + ".hxx" }
    public var weightsFileName: String { namespace + ".weights" }
}

/// Emits a self-contained C++17 header from a graph whose values all have static shapes and
/// supported element types (run the compile pipeline first). It consumes only the graph.
public enum CppEmitter {
    /// `plan` says which inputs carry a run-time batch (BatchPlan.decide on this model);
    /// `blocks` are the same model prepared for the plan's block sizes: a row-separable model
    /// then runs as many rows as it can through the largest block body (real matrix products),
    /// then the next, and the remaining rows one by one. A block is used only when its values
    /// are the single-row ones `rows` times as tall and it can share the weights and fills of the
    /// bodies before it; one that is not is reported in `droppedBlocks` with the reason.
    public static func emit(_ model: Model, options: CppEmitterOptions, plan: BatchPlan? = nil,
                            blocks: [(rows: Int, model: Model)] = []) throws -> EmittedCpp {
        var plan = plan ?? BatchPlan.decide(model, batchInputs: [], compiledBatch: 1, requested: [])
        let e = try EmitContext(model: model, options: options, plan: plan)
        try e.emitBody()
        var contexts: [EmitContext] = []
        if let batch = plan.analysis {
            var last = e
            for (rows, block) in blocks.sorted(by: { $0.rows > $1.rows }) where rows > 1 {
                // Same graph, every batch-carrying value `rows` times as tall: else rows would mix.
                guard BatchAnalysis.blockMatches(block.graph, rows: rows, single: e.graph, carrying: batch.carrying) else {
                    plan.drop(rows, because: "compiled for \(rows) rows, some value is not the one-row value \(rows) times as tall (e.g. a Reshape to a constant shape)")
                    continue
                }
                let b = try EmitContext(model: block, options: options, plan: BatchPlan(batchInputs: [], compiledBatch: rows))
                b.weightBytes = last.weightBytes
                b.weightOffsets = last.weightOffsets
                do { try b.emitBody() } catch {
                    plan.drop(rows, because: "its code could not be generated: \(error)")
                    continue
                }
                guard b.sharesStorage(with: last) else {
                    plan.drop(rows, because: "its constants differ from the one-row body's (it cannot share the Session's weights)")
                    continue
                }
                contexts.append(b)
                last = b
            }
        }
        var result = try e.assemble(inputs: e.graph.inputs.filter { $0.initializer == nil }, blocks: contexts)
        result.droppedBlocks = plan.droppedBlocks
        return result
    }

    /// Whether a model pinned to batch 1 keeps the rows of `batchInputs` independent (so that
    /// it can run any batch, row by row or in blocks).
    public static func isRowSeparable(_ model: Model, batchInputs: Set<String>) -> Bool {
        BatchPlan.decide(model, batchInputs: batchInputs, compiledBatch: 1, requested: []).runtimeBatch
    }

    /// Whether the C++ backend has a code generator for this op (ONNX's, or our own org.sofie ones).
    public static func supports(_ node: Node) -> Bool {
        if SofieOps.isSofie(node) { return CppOps.sofieTable[node.opType] != nil }
        if node.domain == MLOps.domain { return CppML.table[node.opType] != nil }
        if node.domain == TrainingOps.domain { return CppML.trainingTable[node.opType] != nil }
        return node.isStandard && CppOps.table[node.opType] != nil
    }

    public static var supportedOps: [String] {
        CppOps.table.keys.sorted() + CppML.table.keys.sorted().map { MLOps.domain + "." + $0 } + CppML.trainingTable.keys.sorted().map { TrainingOps.domain + "." + $0 }
    }

    /// The error for a node whose op the backend cannot emit, listing the supported ops.
    public static func unsupported(_ node: Node) -> CompileError {
        CompileError(node: node, "the op \(node.domain.isEmpty ? "" : node.domain + ".")\(node.opType) is not supported by the C++ backend (supported: \(supportedOps.joined(separator: ", ")))")
    }
}

/// A tensor as the emitted code sees it.
struct CTensor {
    let value: Value
    let dtype: DataType
    let shape: [Int]
    /// C++ expression of a pointer to its first element.
    let ptr: String
    var count: Int { shape.reduce(1, *) }
    var ctype: String { CppTypes.name(dtype)! }
}

enum CppTypes {
    static func name(_ t: DataType) -> String? {
        switch t {
        case .float: return "float"
        case .double: return "double"
        case .int64: return "int64_t"
        case .int32: return "int32_t"
        case .int16: return "int16_t"
        case .int8, .int4, .int2: return "int8_t"
        case .uint8, .uint4, .uint2: return "uint8_t"
        case .uint16: return "uint16_t"
        case .uint32: return "uint32_t"
        case .uint64: return "uint64_t"
        case .bool: return "bool"
        default: return CppNumberTypes.name(t)
        }
    }
}

final class EmitContext {
    let model: Model
    let graph: Graph
    let options: CppEmitterOptions
    let ns: String
    let opset: Int
    /// Lines of the body of `infer`.
    var body: [String] = []
    /// Lines run once in the Session constructor (fills of ConstantOfShape).
    var setup: [String] = []
    var tensors: [ObjectIdentifier: CTensor] = [:]
    var weightBytes: [UInt8] = []
    var fillBytes = 0
    var arenaBytes = 0
    var workspaceElements = 0
    var counter = 0
    /// The batch decision this body is emitted under (BatchPlan).
    let plan: BatchPlan
    /// Matrix products emitted for the current node (their argument blocks are named apart).
    var gemmsInNode = 0
    var batch: BatchAnalysis.Result? { plan.analysis }
    var batchReason: String? { plan.fixedReason }
    /// Warnings about the model (each names its node), reported with the result.
    var warnings: [String] = []

    init(model: Model, options: CppEmitterOptions, plan: BatchPlan) throws {
        self.plan = plan
        self.model = model
        self.graph = model.graph
        self.options = options
        self.ns = CppNames.identifier(options.name, fallback: "Model")
        self.opset = model.onnxOpset ?? 21
    }

    func fresh(_ base: String) -> String {
        counter += 1
        return "\(base)\(counter)"
    }

    func line(_ s: String) { body.append(s) }

    func tensor(_ v: Value?) throws -> CTensor {
        guard let v, let t = tensors[ObjectIdentifier(v)] else { throw CompileError(.internalError, "value \(v?.name ?? "nil") has no storage") }
        return t
    }

    func input(_ node: Node, _ i: Int) throws -> CTensor {
        guard let v = node.input(i) else { throw CompileError(node: node, "input \(i) is missing") }
        return try tensor(v)
    }

    /// Input `i` when the node has it (omitted optional inputs and short input lists give nil).
    func optionalInput(_ node: Node, _ i: Int) throws -> CTensor? {
        try node.input(i).map { try tensor($0) }
    }

    /// Output `i` when the node has it (omitted optional outputs give nil).
    func optionalOutput(_ node: Node, _ i: Int) throws -> CTensor? {
        try node.output(i).map { try tensor($0) }
    }

    func output(_ node: Node, _ i: Int) throws -> CTensor {
        guard let v = node.output(i) else { throw CompileError(node: node, "output \(i) is missing") }
        return try tensor(v)
    }

    static func align(_ n: Int, _ a: Int = 64) -> Int { (n + a - 1) / a * a }

    // MARK: emission

    func emitBody() throws {
        try checkTypes()
        let order = graph.nodes
        if let n = order.first(where: { !CppEmitter.supports($0) }) { throw CppEmitter.unsupported(n) }
        // Storage: inputs and outputs are the caller's pointers; initializers live in the weights;
        // ConstantOfShape fills in the weights' fill region; everything else in the arena.
        let inputs = graph.inputs.filter { $0.initializer == nil }
        for (k, v) in inputs.enumerated() { try place(v, ptr: "in\(k)") }
        var outputNames: [ObjectIdentifier: Int] = [:]
        for (k, v) in graph.outputs.enumerated() where outputNames[ObjectIdentifier(v)] == nil {
            outputNames[ObjectIdentifier(v)] = k
            if v.producer != nil && tensors[ObjectIdentifier(v)] == nil { try place(v, ptr: "out\(k)") }
        }
        for v in graph.initializers where outputNames[ObjectIdentifier(v)] == nil {
            if Self.readOnlyAsPackedB(v) {
                storedPacked.insert(ObjectIdentifier(v))
            } else if Self.readOnlyAsTransposedB(v) || CppRecurrent.readOnlyAsRecurrentWeight(v) {
                storedTransposed.insert(ObjectIdentifier(v))
            } else if CppNN.readOnlyAsConvRowsWeight(v, opset: opset) || CppBlocked.readOnlyByBlockedConv(v) {
                storedBlocked.insert(ObjectIdentifier(v))
            } else if CppNN.readOnlyAsConvPixelsWeight(v, opset: opset) {
                storedPacked.insert(ObjectIdentifier(v))
            }
        }
        for v in graph.initializers where (v.uses.count > 0 || outputNames[ObjectIdentifier(v)] != nil)
            && !storedTransposed.contains(ObjectIdentifier(v)) && !storedPacked.contains(ObjectIdentifier(v))
            && !storedBlocked.contains(ObjectIdentifier(v)) {
            try placeWeight(v)
        }
        var fills: [Node] = []
        for n in order where n.opType == "ConstantOfShape" {
            fills.append(n)
            try placeFill(n)
        }
        try planArena(order.filter { $0.opType != "ConstantOfShape" })
        // Input values the graph was specialized on (SpecializeShapeInputs): checked first.
        for a in graph.inputAssumptions {
            let v = try tensor(a.input), name = CppNames.comment(a.input.name, limit: 60)
            let values = a.values.sorted { $0.key < $1.key }
            line("")
            line("// Input '\(name)': compiled for the values that give output '\(CppNames.comment(a.because, limit: 60))' its declared shape")
            line("if (" + values.map { "static_cast<int64_t>(\(v.ptr)[\($0.key)]) != \($0.value)" }.joined(separator: " || ") + ")")
            let want = values.map { v.shape.isEmpty ? "\($0.value)" : "[\($0.key)] = \($0.value)" }.joined(separator: ", ")
            line("    throw std::invalid_argument(\"\(ns): input '\(name)' must be \(want): the code was compiled for the values that give output '\(CppNames.comment(a.because, limit: 60))' the shape the model declares, and runs no others\");")
        }
        for n in fills where DeclaredShapes.isRuntime(n, 0) {
            line("")
            line("// \(CppNames.comment(n.opType)) '\(CppNames.comment(n.name, limit: 60))': its shape arrives at run time")
            try checkDeclaredShape(n, input: 0)
        }

        for n in order where n.opType != "ConstantOfShape" {
            line("")
            line("// \(CppNames.comment(n.opType)) '\(CppNames.comment(n.name, limit: 60))' -> \(n.outputs.compactMap { $0.map { CppNames.comment($0.name, limit: 40) } }.joined(separator: ", "))")
            let start = body.count
            gemmsInNode = 0
            if CppRuntimeDims.touchesRuntimeExtents(n) && !CppRuntimeDims.supported.contains(n.opType) {
                let what = (n.inputs + n.outputs).compactMap { $0 }.first { $0.runtimeShape != nil }
                throw CompileError(node: n, "its tensor '\(what?.name ?? "?")' has extents chosen at run time (\(what?.runtimeShape?.map(\.description).joined(separator: " x ") ?? "")), and sofie does not yet emit \(n.opType) with run-time extents (it does: elementwise ops and casts, MatMul, Gemm, reductions, Softmax, LayerNormalization, Transpose, Gather, Slice, Concat, Expand, ScatterElements, Range, NonZero, Compress, Unique, NonMaxSuppression, TopK (its k), reshapes, LSTM/GRU/RNN); fix the dimension with --dim NAME=VALUE instead")
            }
            // Shape inputs known only at run time, the output shape declared: checked here (the
            // reductions read their axes at run time themselves).
            // (A TopK whose k is a bounded run-time length checks it itself.)
            if let runtime = DeclaredShapes.inputs[n.opType], !DeclaredShapes.readAtRunTime.contains(n.opType),
               !(n.opType == "TopK" && CppRuntimeDims.touchesRuntimeExtents(n)) {
                for i in runtime.sorted() where DeclaredShapes.isRuntime(n, i) { try checkDeclaredShape(n, input: i) }
            }
            let table = SofieOps.isSofie(n) ? CppOps.sofieTable : n.domain == MLOps.domain ? CppML.table : n.domain == TrainingOps.domain ? CppML.trainingTable : CppOps.table
            try table[n.opType]!(self, n)
            if body.count == start { body.removeLast(2) }
        }
        // Outputs not written by a node (graph inputs, constants, repeated outputs): copy.
        var written = Set<ObjectIdentifier>()
        for (k, v) in graph.outputs.enumerated() {
            let t = try tensor(v)
            if t.ptr == "out\(k)" && !written.contains(ObjectIdentifier(v)) { written.insert(ObjectIdentifier(v)); continue }
            line("std::memcpy(out\(k), \(t.ptr), sizeof(\(t.ctype)) * \(count(t)));")
        }
    }

    /// Whether this block body can share `other`'s storage: it started from other's weights
    /// (adding only what differs, such as shape constants of the block's batch) and its
    /// constant fills are the same.
    func sharesStorage(with other: EmitContext) -> Bool {
        weightBytes.starts(with: other.weightBytes) && fillBytes == other.fillBytes && setup == other.setup
    }

    /// Whether any tensor is float16, bfloat16 or float8 (the header then carries their types).
    var usesReducedFloats: Bool {
        let values = graph.inputs + graph.outputs + graph.initializers + graph.nodes.flatMap { $0.outputs.compactMap { $0 } }
        return values.contains { $0.tensorType.map { CppNumberTypes.name($0.elementType) != nil } ?? false }
    }

    func checkTypes() throws {
        for v in graph.inputs + graph.outputs {
            guard let t = v.tensorType else { throw CompileError(.value(v.name), "value '\(v.name)' has no tensor type") }
            guard CppTypes.name(t.elementType) != nil else {
                throw CompileError(.value(v.name), "value '\(v.name)' has the element type \(t.elementType), which the C++ backend does not support (supported: float32, float64, float16, bfloat16, float8 e4m3fn/e4m3fnuz/e5m2/e5m2fnuz/e8m0, float4e2m1, int2/4/8/16/32/64, uint2/4/8/16/32/64, bool)")
            }
            guard t.staticShape != nil else { throw CompileError(.value(v.name), "value '\(v.name)' has no static shape; pin symbolic dimensions with --dim NAME=VALUE") }
        }
        for n in graph.nodes {
            for case let o? in n.outputs {
                guard let t = o.tensorType, t.staticShape != nil else {
                    throw CompileError(node: n, "the shape of its output '\(o.name)' could not be determined at compile time")
                }
                guard CppTypes.name(t.elementType) != nil else {
                    throw CompileError(node: n, "its output '\(o.name)' has the element type \(t.elementType), which the C++ backend does not support")
                }
            }
            for case let i? in n.inputs {
                if let t = i.tensorType, CppTypes.name(t.elementType) == nil {
                    throw CompileError(node: n, "its input '\(i.name)' has the element type \(t.elementType), which the C++ backend does not support")
                }
            }
            try Self.checkStorageOnlyTypes(n)
        }
    }

    /// Element types held one value per byte that only conversions understand: the sub-byte
    /// integers and float4e2m1 (whose int8_t/uint8_t storage would otherwise compute without
    /// wrapping to their range) and float8e8m0 (an exponent). Ops that convert them, or only
    /// move their bytes, take them; any other op is refused by name.
    static func isStorageOnly(_ t: DataType) -> Bool { t.isSubByte || t == .float8e8m0 }

    static func checkStorageOnlyTypes(_ n: Node) throws {
        let converts = n.isStandard && ["Cast", "CastLike", "QuantizeLinear", "DequantizeLinear"].contains(n.opType)
        let traits = OpRegistry.traits(of: n)
        if converts || !traits.isDisjoint(with: [.movesElements, .aliasesInput]) { return }
        for case let v? in n.inputs + n.outputs {
            guard let t = v.tensorType?.elementType, isStorageOnly(t) else { continue }
            throw CompileError(node: n, "'\(v.name)' has the element type \(t), which the C++ backend stores one value per byte and only converts (Cast, CastLike, QuantizeLinear, DequantizeLinear) or moves (Reshape, Transpose, Gather, Concat, ...); \(n.opType) on it is not supported: cast it to a wider type first")
        }
    }

    /// Named pointers to tensors (`t_` and the tensor's sanitized name), declared at the top of
    /// the run method in the order they were made; only those its body reads are declared.
    var pointers: [(name: String, declaration: String)] = []
    var pointerNames = Set<String>()
    /// What each named pointer points at (`arena_ + 1024`): tensors that share storage (a
    /// Reshape's output and its input) have different names and the same address.
    var addresses: [String: String] = [:]

    /// Where a tensor's elements are: its pointer's address (the pointer itself for inputs and outputs).
    func storage(of t: CTensor) -> String { addresses[t.ptr] ?? t.ptr }

    /// A named pointer to `expr` (a `ctype` array of `shape`, the model's value `label`): the name
    /// to use in the body. Names take a `t_` prefix, which no emitter's local variable has, so a
    /// tensor can never be shadowed by (or shadow) a block's own variables.
    func namedPointer(_ label: String, ctype: String, const: Bool, shape: [Int], expr: String) -> String {
        let sanitized = CppNames.identifier(label, fallback: "v")
        let name = graph.uniqueName("t_" + sanitized, taken: &pointerNames)
        addresses[name] = expr
        let dims = shape.isEmpty ? "scalar" : shape.map(String.init).joined(separator: "x")
        let original = sanitized == label ? "" : " '\(CppNames.comment(label, limit: 60))'"
        pointers.append((name, "\(const ? "const " : "")\(ctype)* const \(name) = reinterpret_cast<\(const ? "const " : "")\(ctype)*>(\(expr));  // \(ctype)[\(dims)]\(original)"))
        return name
    }

    /// Stores `bytes` in the weights (see storeWeight) and returns a named pointer to them.
    func weightPointer(_ bytes: [UInt8], key: String, label: String, ctype: String, shape: [Int]) -> String {
        let offset = storeWeight(bytes, key: key)
        return namedPointer(label, ctype: ctype, const: true, shape: shape, expr: "weights_ + \(offset)")
    }

    /// The declarations of the named pointers `body` reads, in the order they were made.
    func pointerDeclarations(reading body: String) -> [String] {
        let used = Self.identifiers(body)
        return pointers.filter { used.contains($0.name) }.map(\.declaration)
    }

    /// The identifiers (and numbers) a piece of C++ spells.
    static func identifiers(_ text: String) -> Set<String> {
        var found = Set<String>()
        var word = ""
        for u in text.unicodeScalars {
            if u.isASCII && (u.properties.isAlphabetic || u == "_" || ("0"..."9").contains(u)) {
                word.unicodeScalars.append(u)
            } else if !word.isEmpty {
                found.insert(word)
                word = ""
            }
        }
        if !word.isEmpty { found.insert(word) }
        return found
    }

    func place(_ v: Value, ptr: String) throws {
        let t = v.tensorType!
        tensors[ObjectIdentifier(v)] = CTensor(value: v, dtype: t.elementType, shape: t.staticShape!, ptr: ptr)
    }

    /// Pointer to a transposed copy (N x K) of a constant 2-D float/double weight (K x N), stored
    /// once in the weights (a block body reuses the single-row body's identical copy): lets
    /// few-row products run as contiguous dot products, and transB weights pack fast.
    func transposedWeight(_ v: Value) -> String? {
        guard let t = v.initializer, t.dims.count == 2, t.dataType == .float || t.dataType == .double,
              let raw = t.rawBytes, let ctype = CppTypes.name(t.dataType) else { return nil }
        let rows = t.dims[0], cols = t.dims[1], size = t.dataType.byteSize!
        guard raw.count == rows * cols * size else { return nil }
        let bytes = Self.transposed(raw, at: 0, rows: rows, cols: cols, elementSize: size)
        withExtendedLifetime(t) {}
        return weightPointer(bytes, key: "transposed:" + v.name, label: v.name + "_transposed", ctype: ctype, shape: [cols, rows])
    }

    /// The rows x cols matrix of `elementSize`-byte elements starting at byte `at` of `raw`,
    /// transposed (cols x rows).
    static func transposed(_ raw: UnsafeRawBufferPointer, at base: Int, rows: Int, cols: Int, elementSize size: Int) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: rows * cols * size)
        for r in 0..<rows {
            for c in 0..<cols {
                for b in 0..<size { bytes[(c * rows + r) * size + b] = raw[base + (r * cols + c) * size + b] }
            }
        }
        return bytes
    }

    /// Initializers read only as the B of Gemm with transB = 1 (or as a narrow B, readsNarrowB),
    /// or as W or R of recurrent ops: stored once, transposed, by the op's code (never in their
    /// own layout).
    var storedTransposed = Set<ObjectIdentifier>()

    /// Whether a 2-D float/double initializer is read, and only read, as B of float Gemms with
    /// transB = 1 or with a narrow B (both read it transposed).
    static func readOnlyAsTransposedB(_ v: Value) -> Bool {
        guard let t = v.initializer, t.dims.count == 2, t.dataType == .float || t.dataType == .double, !v.uses.isEmpty else { return false }
        return v.uses.allSatisfy { use in
            ["Gemm", "FusedGemm"].contains(use.node.opType) && use.index == 1 && (use.node.int("transB") == 1 || readsNarrowB(use.node))
                && [DataType.float, .double].contains(use.node.input(0)?.tensorType?.elementType ?? .int8)
        }
    }

    /// A Gemm (no transposes) of at most 2 rows by fewer than 16 columns over K >= 64 with a
    /// constant B (a dense layer's last outputs): it reads B transposed, each output one
    /// contiguous dot product.
    static func readsNarrowB(_ n: Node) -> Bool {
        guard (n.int("transA") ?? 0) == 0, (n.int("transB") ?? 0) == 0, let b = n.input(1)?.initializer, b.dims.count == 2,
              let m = n.output(0)?.tensorType?.staticShape?.first else { return false }
        return isNarrowB(rows: m, columns: b.dims[1], depth: b.dims[0])
    }

    /// The shape of a product whose constant B Gemm reads transposed: at most 2 rows, fewer than
    /// 16 columns, K >= 64.
    static func isNarrowB(rows: Int, columns: Int, depth: Int) -> Bool { rows <= 2 && columns < 16 && depth >= 64 }

    /// Initializers read only as the constant B of float MatMul/Gemm products: stored once,
    /// packed into slivers (packedWeight), never in their own layout.
    var storedPacked = Set<ObjectIdentifier>()

    /// Columns of one sliver of a packed weight (sofie_rt::kSliver).
    static let sliver = CppRuntime.maxNR

    /// Whether a 2-D float/double initializer is read, and only read, as B of float/double
    /// MatMul, Gemm or FusedGemm nodes, and its columns fill their slivers well enough (at most
    /// 1/8 of the packed copy is padding).
    static func readOnlyAsPackedB(_ v: Value) -> Bool {
        // Dims come from the model: their product is checked against the data without overflow.
        guard let t = v.initializer, t.dims.count == 2, t.dataType == .float || t.dataType == .double, !v.uses.isEmpty,
              t.dims[0] > 0, t.dims[1] > 0, case let (elements, o1) = t.dims[0].multipliedReportingOverflow(by: t.dims[1]), !o1,
              case let (bytes, o2) = elements.multipliedReportingOverflow(by: t.dataType.byteSize!), !o2,
              t.rawBytes?.count == bytes else { return false }
        var columns: Int?
        for use in v.uses {
            let op = use.node.opType
            guard use.index == 1, use.node.input(0)?.tensorType?.elementType == t.dataType else { return false }
            let n: Int
            switch op {
            case "MatMul": n = t.dims[1]
            case "Gemm", "FusedGemm": n = use.node.int("transB") == 1 ? t.dims[0] : t.dims[1]
            default: return false
            }
            if let c = columns, c != n { return false }
            columns = n
        }
        guard let n = columns else { return false }
        let padded = (n + sliver - 1) / sliver * sliver
        return padded * 8 <= n * 9
    }

    /// Pointer to the packed copy of a constant B, K x N (or N x K when `transposed`, as Gemm's
    /// transB = 1 reads it): element (k, j) at [(j / sliver * K + k) * sliver + j % sliver], zero
    /// beyond N; stored once per orientation in the weights. nil unless `v` is stored packed
    /// (storedPacked: its own layout is not in the weights).
    func packedWeight(_ v: Value, transposed: Bool) -> String? {
        guard storedPacked.contains(ObjectIdentifier(v)), let t = v.initializer, t.dims.count == 2 else { return nil }
        return packedSlivers(v, K: transposed ? t.dims[1] : t.dims[0], N: transposed ? t.dims[0] : t.dims[1], transposed: transposed)
    }

    /// Pointer to the packed transpose of a constant convolution weight (M x C x kernel...,
    /// viewed as M x K): B = Wt, K x M, for sofie_rt::conv_pixels; stored once (besides its own
    /// layout when another kernel reads it too). nil when its data does not hold its dims.
    func packedConvWeight(_ v: Value) -> String? {
        guard let t = v.initializer, t.dims.count >= 3, t.dims[0] > 0, let inner = Self.valuesPerChannel(t) else { return nil }
        return packedSlivers(v, K: inner, N: t.dims[0], transposed: true)
    }

    /// A convolution weight's values per output channel (the product of its dims after the
    /// first; dims come from the model: nil when one is not positive or the product overflows).
    static func valuesPerChannel(_ t: Tensor) -> Int? {
        var inner = 1
        for d in t.dims.dropFirst() {
            let r = inner.multipliedReportingOverflow(by: d)
            guard d > 0, !r.overflow else { return nil }
            inner = r.partialValue
        }
        return inner
    }

    /// The slivers of a K x N right operand (stored N x K when `transposed`).
    private func packedSlivers(_ v: Value, K: Int, N: Int, transposed: Bool) -> String? {
        guard let t = v.initializer, t.dataType == .float || t.dataType == .double,
              let raw = t.rawBytes, let ctype = CppTypes.name(t.dataType) else { return nil }
        let size = t.dataType.byteSize!
        guard K > 0, N > 0, case let (elements, o1) = K.multipliedReportingOverflow(by: N), !o1,
              case let (count, o2) = elements.multipliedReportingOverflow(by: size), !o2, raw.count == count else { return nil }
        let bytes = Self.slivers(raw, at: 0, K: K, N: N, transposed: transposed, elementSize: size)
        withExtendedLifetime(t) {}
        return weightPointer(bytes, key: (transposed ? "packed-transposed:" : "packed:") + v.name, label: v.name + "_packed", ctype: ctype,
                             shape: [(N + Self.sliver - 1) / Self.sliver, K, Self.sliver])
    }

    /// The K x N matrix at byte `at` of `raw` (stored N x K when `transposed`) packed into the
    /// slivers sofie_rt::gemm_packed reads: element (k, j) at [(j / sliver * K + k) * sliver +
    /// j % sliver], zero beyond N. The caller has checked that raw holds the matrix.
    static func slivers(_ raw: UnsafeRawBufferPointer, at: Int, K: Int, N: Int, transposed: Bool, elementSize size: Int) -> [UInt8] {
        let w = sliver, slivers = (N + w - 1) / w
        var bytes = [UInt8](repeating: 0, count: slivers * K * w * size)
        bytes.withUnsafeMutableBytes { dst in
            for s in 0..<slivers {
                let count = min(w, N - s * w)
                for k in 0..<K {
                    let to = (s * K + k) * w * size
                    if transposed {
                        for c in 0..<count {
                            (dst.baseAddress! + to + c * size).copyMemory(from: raw.baseAddress! + at + ((s * w + c) * K + k) * size, byteCount: size)
                        }
                    } else {
                        (dst.baseAddress! + to).copyMemory(from: raw.baseAddress! + at + (k * N + s * w) * size, byteCount: count * size)
                    }
                }
            }
        }
        return bytes
    }

    /// Initializers read only as the weight of convolutions that run sofie_rt::conv_rows
    /// (blockedConvWeight), or as the weight or bias of BlockedConv nodes (blockedLayoutWeight,
    /// paddedBias): stored only in those layouts, never in their own.
    var storedBlocked = Set<ObjectIdentifier>()

    /// Pointer to a constant convolution weight (M x C x kernel..., float or double) stored in
    /// blocks of `mb` output channels for sofie_rt::conv_rows: element (m, i), i the index
    /// within one channel's C x kernel values, at [(m / mb * inner + i) * mb + m % mb], zero
    /// for the channels beyond M; stored once per block size. nil when the initializer's data
    /// does not hold the values its dims give.
    func blockedConvWeight(_ v: Value, mb: Int) -> String? {
        guard mb > 0, let t = v.initializer, t.dims.count >= 3, t.dataType == .float || t.dataType == .double,
              let raw = t.rawBytes, let ctype = CppTypes.name(t.dataType) else { return nil }
        let size = t.dataType.byteSize!, M = t.dims[0]
        // Dims come from the model: their product is checked against the data without overflow.
        guard let inner = Self.valuesPerChannel(t) else { return nil }
        let blocks = (M + mb - 1) / mb
        guard M > 0, case let (elements, o1) = M.multipliedReportingOverflow(by: inner), !o1,
              case let (count, o2) = elements.multipliedReportingOverflow(by: size), !o2, raw.count == count,
              case let (padded, o3) = (blocks * mb).multipliedReportingOverflow(by: inner), !o3,
              case let (paddedBytes, o4) = padded.multipliedReportingOverflow(by: size), !o4 else { return nil }
        var bytes = [UInt8](repeating: 0, count: paddedBytes)
        bytes.withUnsafeMutableBytes { dst in
            for m in 0..<M {
                for i in 0..<inner {
                    (dst.baseAddress! + ((m / mb * inner + i) * mb + m % mb) * size)
                        .copyMemory(from: raw.baseAddress! + (m * inner + i) * size, byteCount: size)
                }
            }
        }
        withExtendedLifetime(t) {}
        return weightPointer(bytes, key: "conv-blocked-\(mb):" + v.name, label: v.name + "_blocked", ctype: ctype, shape: [blocks, inner, mb])
    }

    /// Key (an initializer's name, or a layout such as "transposed:" or "packed:" and its name) -> (offset, bytes) in `weightBytes`.
    var weightOffsets: [String: (Int, Int)] = [:]

    /// Stores `bytes` in the weights, 64-byte aligned, under `key` and returns their offset; bytes
    /// identical to those already stored under the key are not stored again (a block body thus
    /// reuses the single-row body's copy).
    func storeWeight(_ bytes: [UInt8], key: String) -> Int {
        if let (offset, count) = weightOffsets[key], count == bytes.count, weightBytes[offset..<(offset + count)].elementsEqual(bytes) {
            return offset
        }
        while weightBytes.count % 64 != 0 { weightBytes.append(0) }
        let offset = weightBytes.count
        weightBytes.append(contentsOf: bytes)
        weightOffsets[key] = (offset, bytes.count)
        return offset
    }

    func placeWeight(_ v: Value) throws {
        guard let t = v.initializer else { return }
        guard let ctype = CppTypes.name(t.dataType), let raw = t.rawBytes else {
            throw CompileError(.initializer(v.name), "initializer '\(v.name)' has the element type \(t.dataType), which the C++ backend does not support")
        }
        let bytes: [UInt8]
        if t.dataType.isSubByte {
            // Unpacked, one value per byte (int4/int2 sign-extended), as the code reads them.
            guard let unpacked = t.unpackedSubBytes() else {
                throw CompileError(.initializer(v.name), "initializer '\(v.name)' holds fewer bytes than its \(t.elementCount) \(t.dataType) elements need")
            }
            bytes = unpacked
        } else {
            bytes = t.dataType == .bool ? raw.map { $0 != 0 ? 1 : 0 } : Array(raw)
        }
        tensors[ObjectIdentifier(v)] = CTensor(value: v, dtype: t.dataType, shape: t.dims,
                                               ptr: weightPointer(bytes, key: v.name, label: v.name, ctype: ctype, shape: t.dims))
    }

    /// Bytes of state kept by the Session across calls (zeroed when it is created), in the fills
    /// region: a pointer to them as `type`.
    func sessionState(bytes: Int, type: String) -> String {
        fillBytes = Self.align(fillBytes)
        let offset = fillBytes
        fillBytes += bytes
        let ptr = "reinterpret_cast<\(type)*>(fills_ + \(offset))"
        setup.append("std::memset(fills_ + \(offset), 0, \(bytes));  // Session state")
        return ptr
    }

    func placeFill(_ n: Node) throws {
        guard let v = n.output(0), let t = v.tensorType, let shape = t.staticShape, let ctype = CppTypes.name(t.elementType) else {
            throw CompileError(node: n, "its output type is unknown")
        }
        let bytes = shape.reduce(1, *) * (t.elementType.byteSize ?? 1)
        fillBytes = Self.align(fillBytes)
        let offset = fillBytes
        fillBytes += bytes
        let ptr = namedPointer(v.name, ctype: ctype, const: false, shape: shape, expr: "fills_ + \(offset)")
        tensors[ObjectIdentifier(v)] = CTensor(value: v, dtype: t.elementType, shape: shape, ptr: ptr)
        let value = n.tensor("value").flatMap(NDArray.init).map { $0.double(0) } ?? 0
        setup.append("std::fill_n(reinterpret_cast<\(ctype)*>(fills_ + \(offset)), \(shape.reduce(1, *)), \(CppOps.literal(value, t.elementType)));  // \(CppNames.comment(n.opType)) '\(CppNames.comment(n.name, limit: 50))'")
    }

    /// Gives every intermediate value its place in the arena, from the graph's memory plan
    /// (the plan-memory pass), or a fresh plan when there is none or it no longer fits the graph.
    func planArena(_ nodes: [Node]) throws {
        var plan = graph.memoryPlan ?? MemoryPlan.compute(graph)
        let planned = nodes.flatMap { $0.outputs.compactMap { $0 } }.filter { tensors[ObjectIdentifier($0)] == nil }
        if planned.contains(where: { plan.slots[$0.name] == nil }) { plan = MemoryPlan.compute(graph) }
        arenaBytes = plan.arenaBytes
        for v in planned {
            guard let slot = plan.slots[v.name], let t = v.tensorType, let shape = t.staticShape,
                  slot.bytes >= shape.reduce(1, *) * (t.elementType.byteSize ?? 1) else {
                throw CompileError(.internalError, "no arena slot for '\(v.name)'\(v.producer.map { " (output of node '\($0.name)', op \($0.opType))" } ?? "")")
            }
            tensors[ObjectIdentifier(v)] = CTensor(value: v, dtype: t.elementType, shape: shape,
                                                   ptr: namedPointer(v.name, ctype: CppTypes.name(t.elementType)!, const: false, shape: shape, expr: "arena_ + \(slot.offset)"))
        }
    }

    /// Reserves `elements` of workspace (GEMM packing, depthwise planes, ...) shared by all nodes.
    func workspace(_ elements: Int) { workspaceElements = max(workspaceElements, elements) }

    // MARK: assembling the header

    func assemble(inputs: [Value], blocks: [EmitContext] = []) throws -> EmittedCpp {
        if let last = blocks.last, last.weightBytes.count > weightBytes.count { weightBytes = last.weightBytes }
        let embed: Bool
        switch options.weights {
        case .embed: embed = true
        case .file: embed = false
        case .auto: embed = weightBytes.count <= options.embedLimit
        }
        let ins = try inputs.map { try tensor($0) }
        let outs = try graph.outputs.map { try tensor($0) }
        var inNames = Set<String>()
        func argName(_ v: Value, _ fallback: String) -> String {
            var n = CppNames.identifier(v.name, fallback: fallback)
            // Names the generated methods use themselves stay theirs.
            // (`session` and `restrict` for the C interface, CppCApi: its first parameter, a C keyword.)
            let internalName = ["batch", "result", "work", "r", "storage_", "weights_", "fills_", "arena_", "align64", "session", "restrict"].contains(n)
                || n.range(of: "^(in|out)[0-9]+$", options: .regularExpression) != nil
            if internalName { n += "_" + fallback }
            if inNames.contains(n) {
                // Sanitizing can map different names to one ("x." and "x_"): number the later ones,
                // skipping numbers that another argument already has ("x_3").
                var k = 2
                while inNames.contains("\(n)_\(k)") { k += 1 }
                n = "\(n)_\(k)"
            }
            inNames.insert(n)
            return n
        }
        let inArgs = zip(ins, inputs).enumerated().map { k, p in argName(p.1, "input\(k)") }
        let outArgs = graph.outputs.enumerated().map { k, v in argName(v, "output\(k)") }
        // Run-time dimensions: arguments of infer (named after the symbols), `n_NAME` inside run.
        let rdims = graph.runtimeDimensions
        var dimArgs: [String] = []
        for d in rdims {
            var a = CppNames.identifier(d.name, fallback: "dim")
            while inNames.contains(a) || ["batch", "result", "work", "r", "session", "restrict"].contains(a) { a += "_" }
            inNames.insert(a)
            dimArgs.append(a)
        }
        if Set(rdims.map { CppRuntimeDims.variable($0.name) }).count != rdims.count {
            throw CompileError(.graph, "two run-time dimensions have names that are the same C++ identifier (\(rdims.map(\.name).joined(separator: ", ")))")
        }
        let argOf = Dictionary(uniqueKeysWithValues: zip(rdims.map(\.name), dimArgs))
        /// An extent in terms of infer's arguments.
        func public_(_ d: DimExpr) -> String { d.cpp { argOf[$0] ?? $0 } }
        func shapeText(_ t: CTensor) -> String {
            guard let r = t.value.runtimeShape else { return t.shape.map(String.init).joined(separator: "x") }
            return r.map(public_).joined(separator: " x ") + " (at most \(t.shape.map(String.init).joined(separator: "x")))"
        }
        // infer's arguments: the inputs' dimensions; lengths computed from values (a Range's)
        // are the Session's after a call (last_NAME()).
        let argDims = zip(rdims, dimArgs).filter { !$0.0.fromValues }, valueDims = zip(rdims, dimArgs).filter { $0.0.fromValues }
        if !valueDims.isEmpty && batch != nil {
            throw CompileError(.graph, "a run-time batch together with lengths computed from run-time values (\(valueDims.map(\.0.name).joined(separator: ", "))) is not supported; fix the batch with --batch")
        }
        let dimParams = argDims.map { "int64_t \($0.1)" }
        let dimList = argDims.map(\.1).joined(separator: ", ")
        let allDimList = zip(rdims, dimArgs).map { $0.fromValues ? "last_\($1)()" : $1 }.joined(separator: ", ")
        // Element counts at run time: a size function of the dimensions, or the static constant.
        let inSize = ins.indices.map { k in ins[k].hasRuntimeExtents ? "input\(k)_size(\(dimList))" : "kInput\(k)Size" }
        let outSize = outs.indices.map { k in outs[k].hasRuntimeExtents ? "output\(k)_size(\(allDimList))" : "kOutput\(k)Size" }
        let outFromValues = outs.map { ($0.value.runtimeShape ?? []).contains { d in valueDims.contains { d.symbols.contains($0.0.name) } } }
        let workspaceBytes = Self.align(workspaceElements * 8)
        let blockScratch = blocks.map { $0.arenaBytes + Self.align($0.workspaceElements * 8) }.max() ?? 0
        let scratch = max(arenaBytes + workspaceBytes, blockScratch)
        // The Session allocates it at once: it must pass the size budget like any tensor.
        if scratch > Limits.maxTensorBytes {
            throw CompileError(.graph, "the Session's scratch memory (intermediate tensors and the kernels' workspace) would take \(scratch) bytes, more than the \(Limits.maxTensorBytes)-byte limit (--max-tensor-bytes)")
        }
        let sizes = blocks.map(\.plan.compiledBatch)
        var h = ""
        func w(_ s: String = "") { h += s + "\n" }
        w("// \(ns).hxx - generated by swift-sofie from \(CppNames.comment(options.sourceDescription.isEmpty ? "a model" : options.sourceDescription)).")
        w("// Needs only a C++17 compiler and the standard library. Do not edit: regenerate instead.")
        w("// Build with optimization and the target's instruction set (e.g. -O3 -march=native): the kernels")
        w("// use SIMD vectors as wide as the target has.")
        w("//")
        w("// Inputs:")
        for (t, a) in zip(ins, inArgs) { w("//   \(a): \(t.ctype)[\(shapeText(t))]   (\(CppNames.comment(t.value.name, limit: 60)))") }
        w("// Outputs:")
        for (t, a) in zip(outs, outArgs) { w("//   \(a): \(t.ctype)[\(shapeText(t))]   (\(CppNames.comment(t.value.name, limit: 60)))") }
        if !rdims.isEmpty {
            if !argDims.isEmpty { w("// Run-time dimensions (the first arguments of infer): \(argDims.map { "\($1) in \($0.minimum)...\($0.bound)" }.joined(separator: ", ")).") }
            for (d, a) in valueDims {
                w("// Computed from run-time values: \(a) in \(d.minimum)...\(d.bound) (\(CppNames.comment(d.name, limit: 60)); session.last_\(a)() after infer; beyond the range, std::length_error).")
            }
            w("//   The code is compiled once for every value in range; memory is planned for the largest.")
            w("//   A value outside its range throws std::out_of_range. Arrays hold the actual sizes")
            w("//   (input<k>_size(...) and output<k>_size(...) give them), row-major and contiguous.")
        }
        w("// Weights: \(weightBytes.count) bytes \(embed ? "embedded in this header" : "in the file \(ns).weights"); constant fills: \(fillBytes) bytes.")
        w("// Scratch memory per Session: \(scratch) bytes (\(arenaBytes) for intermediate tensors, \(workspaceBytes) workspace\(blocks.isEmpty ? "" : "; the block bodies need up to \(blockScratch)")).")
        if let b = batch {
            let names = zip(inputs, inArgs).filter { b.inputs.contains(ObjectIdentifier($0.0)) }.map(\.1) + zip(graph.outputs, outArgs).filter { b.outputs.contains(ObjectIdentifier($0.0)) }.map(\.1)
            w("// Batch: any size at run time with infer(batch, ...): every op keeps the rows of the leading")
            if !sizes.isEmpty {
                w("//   dimension independent, so rows run in blocks of \(sizes.map(String.init).joined(separator: ", then ")) (block bodies), the rest one")
                w("//   by one. Batched: \(names.joined(separator: ", ")).")
            } else {
                w("//   dimension independent, so rows run one after another. Batched: \(names.joined(separator: ", ")).")
            }
        } else if let r = batchReason {
            w("// Batch: fixed at compile time (\(CppNames.comment(r, limit: 100))).")
        }
        w("//")
        w("// Usage:")
        w(embed ? "//   \(ns)::Session session;" : "//   \(ns)::Session session(\"\(ns).weights\");")
        w("//   session.infer(\((argDims.map(\.1) + inArgs + outArgs).joined(separator: ", ")));   // raw pointers")
        w("// A Session is not shared between threads; create one per thread (they are independent).")
        w("// Define SOFIE_NPY before including this header for \(ns)::load_npy / save_npy (NumPy .npy files).")
        if usesReducedFloats {
            w("// float16/bfloat16/float8 tensors are sofie::float16_t etc. (their bits): convert with sofie::to_float(x)")
            w("//   and sofie::from_double<sofie::float16_t>(v) (round to nearest even). They are computed in float32.")
        }
        let subByte = Set((ins + outs).map(\.dtype).filter(\.isSubByte)).sorted { $0.rawValue < $1.rawValue }
        if !subByte.isEmpty {
            w("// \(subByte.map(\.description).joined(separator: "/")) tensors pass one value per byte, unpacked (not two or four to a byte as in")
            w("//   ONNX files): int4/int2 as int8_t in [-8, 7]/[-2, 1], uint4/uint2 as uint8_t in [0, 15]/[0, 3], float4e2m1 as")
            w("//   sofie::float4e2m1_t holding its 4-bit code.")
        }
        w("#pragma once")
        w("static_assert(sizeof(bool) == 1, \"swift-sofie's generated code assumes one-byte bool\");")
        for inc in ["algorithm", "cmath", "cstddef", "cstdint", "cstring", "fstream", "limits", "memory", "mutex", "stdexcept", "string", "tuple", "type_traits", "vector"] {
            w("#include <\(inc)>")
        }
        w()
        if usesReducedFloats {
            h += CppNumberTypes.source
            w()
        }
        h += CppRuntime.versioned
        w()
        // Built without AVX-512 or AVX2 (plain -O2, what many build systems use) by GCC on x86-64:
        // copies of the runtime compiled for AVX-512 and for AVX2 + FMA, which `run` switches to
        // when the CPU has them (CppRuntime.dispatchCopy). -DSOFIE_NO_DISPATCH leaves them out.
        h += CppRuntime.dispatchCopy
        w()
        h += CppNpy.source
        w()
        w("namespace \(ns) {")
        w()
        w("namespace sofie_rt = ::sofie_rt_\(CppRuntime.versionTag);  // this header's runtime, named after its content")
        for t in CppRuntime.dispatchTargets {
            w("#if defined(\(t.twinsMacro))")
            w("namespace sofie_rt_\(t.name) = ::sofie_rt_\(CppRuntime.versionTag)_\(t.name);  // the same, compiled for \(t.label)")
            w("#endif")
        }
        w()
        w("#if defined(SOFIE_NPY)  // NumPy .npy files: \(ns)::load_npy<float>(path, &shape), \(ns)::save_npy(path, data, shape)")
        w("using sofie_npy::load_npy;")
        w("using sofie_npy::save_npy;")
        w("#endif")
        w()
        if embed && !weightBytes.isEmpty {
            w("// The weights, byte for byte (little-endian), copied into the Session when it is created.")
            w("alignas(64) inline const unsigned char kWeights[\(weightBytes.count)] = {")
            var row = ""
            for (i, b) in weightBytes.enumerated() {
                row += "\(b),"
                if i % 32 == 31 { w(row); row = "" }
            }
            if !row.isEmpty { w(row) }
            w("};")
            w()
        }
        w("struct Session {")
        w("    static constexpr std::size_t kWeightBytes = \(weightBytes.count);")
        w("    static constexpr std::size_t kFillBytes = \(fillBytes);")
        w("    static constexpr std::size_t kScratchBytes = \(scratch);")
        for (k, t) in ins.enumerated() { w("    static constexpr std::size_t kInput\(k)Size = \(t.count);  // \(inArgs[k])\(t.hasRuntimeExtents ? ", at the bounds" : "")") }
        for (k, t) in outs.enumerated() { w("    static constexpr std::size_t kOutput\(k)Size = \(t.count);  // \(outArgs[k])\(t.hasRuntimeExtents ? ", at the bounds" : "")") }
        for (d, a) in zip(rdims, dimArgs) {
            w("    static constexpr int64_t kMin_\(a) = \(d.minimum), kMax_\(a) = \(d.bound);  // range of the run-time dimension \(a)")
        }
        let sizeParams = dimArgs.map { "[[maybe_unused]] int64_t \($0)" }.joined(separator: ", ")
        for (k, t) in ins.enumerated() where t.hasRuntimeExtents {
            w("    static std::size_t input\(k)_size(\(argDims.map { "[[maybe_unused]] int64_t \($0.1)" }.joined(separator: ", "))) { return static_cast<std::size_t>(\(public_(t.countExpr))); }  // \(inArgs[k])")
        }
        for (k, t) in outs.enumerated() where t.hasRuntimeExtents {
            w("    static std::size_t output\(k)_size(\(sizeParams)) { return static_cast<std::size_t>(\(public_(t.countExpr))); }  // \(outArgs[k])")
        }
        for (d, a) in valueDims {
            w("    // The length '\(CppNames.comment(d.name, limit: 60))' the last infer computed.")
            w("    int64_t last_\(a)() const { return \(CppRuntimeDims.variable(d.name))_last_; }")
        }
        if !argDims.isEmpty {
            w("    // Throws std::out_of_range unless every run-time dimension is within its range.")
            w("    static void check_dimensions(\(dimParams.joined(separator: ", "))) {")
            for (d, a) in argDims {
                w("        if (\(a) < kMin_\(a) || \(a) > kMax_\(a))")
                w("            throw std::out_of_range(\"\(ns): \(a) = \" + std::to_string(\(a)) + \" is outside \(d.minimum)...\(d.bound), the range this code was compiled for\");")
            }
            w("    }")
        }
        for r in sizes { w("    static constexpr std::size_t kBlock\(r)Rows = \(r);  // rows per run_block\(r)") }
        w()
        let ctorBody = { (w: (String) -> Void) in
            w("        fills_ = weights_ + ((kWeightBytes + 63) / 64) * 64;")
            w("        arena_ = fills_ + ((kFillBytes + 63) / 64) * 64;")
            for s in self.setup { w("        " + s) }
        }
        let storage = "((kWeightBytes + 63) / 64 + (kFillBytes + 63) / 64 + (kScratchBytes + 63) / 64) * 64 + 64"
        if embed {
            w("    Session() : storage_(new unsigned char[\(storage)]()) {")
            w("        weights_ = align64(storage_.get());")
            if !weightBytes.isEmpty { w("        std::memcpy(weights_, kWeights, kWeightBytes);") }
            ctorBody { w($0) }
            w("    }")
        } else {
            w("    // Reads the weights file written next to this header by sofie compile.")
            w("    explicit Session(const std::string& weightsPath) : storage_(new unsigned char[\(storage)]()) {")
            w("        weights_ = align64(storage_.get());")
            w("        if (!sofie_rt::read_file(weightsPath, weights_, kWeightBytes))")
            w("            throw std::runtime_error(\"\(ns): cannot read \" + std::to_string(kWeightBytes) + \" bytes of weights from '\" + weightsPath + \"'\");")
            ctorBody { w($0) }
            w("    }")
        }
        w("    Session(const Session&) = delete;")
        w("    Session& operator=(const Session&) = delete;")
        w()
        let params = zip(ins, inArgs).map { "const \($0.ctype)* \($1)" } + zip(outs, outArgs).map { "\($0.ctype)* \($1)" }
        let runDims = argDims.map { $0.1 + ", " }.joined()
        w("    // Runs the model. Arrays are row-major and contiguous; no memory is allocated.")
        w("    void infer(\((dimParams + params).joined(separator: ", "))) {")
        if !argDims.isEmpty { w("        check_dimensions(\(dimList));") }
        for (k, a) in inArgs.enumerated() { w("        const \(ins[k].ctype)* const in\(k) = \(a);") }
        for (k, a) in outArgs.enumerated() { w("        \(outs[k].ctype)* const out\(k) = \(a);") }
        w("        run(\(runDims)\((0..<ins.count).map { "in\($0)" }.joined(separator: ", "))\(ins.isEmpty || outs.isEmpty ? "" : ", ")\((0..<outs.count).map { "out\($0)" }.joined(separator: ", ")));")
        w("    }")
        w()
        // The std::vector convenience.
        // std::vector<bool> has no data(): booleans travel as bytes (bool is one byte here).
        func vec(_ t: CTensor) -> String { "std::vector<\(t.dtype == .bool ? "uint8_t" : t.ctype)>" }
        func data(_ expr: String, _ t: CTensor, const: Bool) -> String {
            t.dtype == .bool ? "reinterpret_cast<\(const ? "const " : "")bool*>(\(expr).data())" : "\(expr).data()"
        }
        let retTypes = outs.map(vec)
        let ret = retTypes.count == 1 ? retTypes[0] : "std::tuple<\(retTypes.joined(separator: ", "))>"
        if let b = batch {
            let bp = ["std::size_t batch"] + dimParams + params
            w("    // Runs `batch` rows: row r of each batched input and output starts at r times its size above.")
            w("    void infer(\(bp.joined(separator: ", "))) {")
            if !argDims.isEmpty { w("        check_dimensions(\(dimList));") }
            let args = argDims.map(\.1) + inputs.enumerated().map { k, v in b.inputs.contains(ObjectIdentifier(v)) ? "\(inArgs[k]) + r * \(inSize[k])" : inArgs[k] }
                + graph.outputs.enumerated().map { k, v in b.outputs.contains(ObjectIdentifier(v)) ? "\(outArgs[k]) + r * \(outSize[k])" : outArgs[k] }
            w("        std::size_t r = 0;")
            for r in sizes {
                w("        for (; r + kBlock\(r)Rows <= batch; r += kBlock\(r)Rows)")
                w("            run_block\(r)(\(args.joined(separator: ", ")));")
            }
            w("        for (; r < batch; ++r)")
            w("            run(\(args.joined(separator: ", ")));")
            w("    }")
            w()
        }
        let batched = { (k: Int) -> Bool in self.batch?.inputs.contains(ObjectIdentifier(inputs[k])) ?? false }
        // The run-time dimensions read off the input sizes, when each is an extent of its own in
        // some input whose other extents are constants (and there is no run-time batch).
        var derived: [String]? = batch == nil ? [] : nil
        for (d, a) in argDims where derived != nil {
            let symbol = DimExpr(symbol: d.name)
            guard let k = ins.indices.first(where: { k in
                guard let r = ins[k].value.runtimeShape else { return false }
                return r.contains(symbol) && r.allSatisfy { $0 == symbol || $0.isConstant } && r.filter({ $0 == symbol }).count == 1
                    && r.compactMap(\.constant).reduce(1, *) > 0
            }) else { derived = nil; break }
            let others = ins[k].value.runtimeShape!.compactMap(\.constant).reduce(1, *)
            derived!.append("const int64_t \(a) = static_cast<int64_t>(\(inArgs[k]).size() / \(others));")
        }
        func vectorForm(explicitDims: Bool) {
            if argDims.isEmpty {
                w("    // Convenience: checks the input sizes and returns the output\(outs.count > 1 ? "s" : "") as vectors (allocates).")
            } else if explicitDims {
                w("    // Convenience: checks the input sizes for these run-time dimensions and returns the output\(outs.count > 1 ? "s" : "") as vectors (allocates).")
            } else {
                w("    // Convenience: the run-time dimensions from the input sizes (\(dimList)); returns the output\(outs.count > 1 ? "s" : "") as vectors (allocates).")
            }
            w("    \(ret) infer(\(((explicitDims ? dimParams : []) + zip(ins, inArgs).map { "const \(vec($0))& \($1)" }).joined(separator: ", "))) {")
            if !explicitDims { for l in derived ?? [] { w("        " + l) } }
            if !argDims.isEmpty { w("        check_dimensions(\(dimList));") }
            if let firstBatched = inArgs.indices.first(where: batched) {
                w("        const std::size_t batch = \(inArgs[firstBatched]).size() / \(inSize[firstBatched]);")
            }
            for (k, a) in inArgs.enumerated() {
                let size = ins[k].hasRuntimeExtents ? inSize[k] : "kInput\(k)Size"
                let need = batched(k) ? "batch * \(size)" : size
                let what = batched(k) ? "a positive multiple of \" + std::to_string(\(size)) + \" values, the same batch as the other inputs" : "\" + std::to_string(\(size)) + \" values"
                w("        if (\(a).size() != \(need)\(batched(k) ? " || batch == 0" : "")) throw std::invalid_argument(\"\(ns): input \(a) needs \(what)\(ins[k].hasRuntimeExtents ? " for \(argDims.map(\.1).map { "\($0) = \" + std::to_string(\($0)) + \"" }.joined(separator: ", "))" : ""), got \" + std::to_string(\(a).size()));")
            }
            w("        \(ret) result;")
            for k in outs.indices {
                let ref = outs.count == 1 ? "result" : "std::get<\(k)>(result)"
                let rows = (batch?.outputs.contains(ObjectIdentifier(graph.outputs[k])) ?? false) ? "batch * " : ""
                w("        \(ref).resize(\(rows)\(outFromValues[k] ? "kOutput\(k)Size" : outSize[k]));")
            }
            let callArgs = zip(ins, inArgs).map { data($1, $0, const: true) } + outs.indices.map { data(outs.count == 1 ? "result" : "std::get<\($0)>(result)", outs[$0], const: false) }
            let allArgs = (batch != nil ? ["batch"] : []) + argDims.map(\.1) + callArgs
            w("        infer(\(allArgs.joined(separator: ", ")));")
            for k in outs.indices where outFromValues[k] {
                w("        \(outs.count == 1 ? "result" : "std::get<\(k)>(result)").resize(\(outSize[k]));  // its length computed from the values")
            }
            w("        return result;")
            w("    }")
            w()
        }
        vectorForm(explicitDims: true)
        if !argDims.isEmpty, derived != nil, !ins.isEmpty { vectorForm(explicitDims: false) }
        w(" private:")
        let runParams = rdims.filter { !$0.fromValues }.map { "[[maybe_unused]] const int64_t \(CppRuntimeDims.variable($0.name))" } + ins.enumerated().map { "const \($1.ctype)* in\($0)" } + outs.enumerated().map { "\($1.ctype)* out\($0)" }
        let portNames = (ins.indices.map { "in\($0) = \(inArgs[$0])" } + outs.indices.map { "out\($0) = \(outArgs[$0])" }).joined(separator: ", ")
        let runArgs = (rdims.filter { !$0.fromValues }.map { CppRuntimeDims.variable($0.name) } + ins.indices.map { "in\($0)" }
                       + outs.indices.map { "out\($0)" }).joined(separator: ", ")
        // The twins of the run methods for each dispatch target, defined after the struct inside
        // a target region (so that everything in them, lambdas too, is compiled for the target).
        var twins = [String](repeating: "", count: CppRuntime.dispatchTargets.count)
        func method(_ name: String, _ ctx: EmitContext, attribute: String = "") {
            var bodyText = ""
            for l in ctx.body { bodyText += l.isEmpty ? "\n" : "        " + l + "\n" }
            // The workspace, when some op asked for it (an op may ask and then need none, e.g. a reduction of nothing).
            let readsWork = bodyText.contains("(work)") || bodyText.contains(", work)")
            let declarations = ctx.pointerDeclarations(reading: bodyText).map { "        " + $0 + "\n" }.joined()
            var body = declarations
            if ctx.usesWorkspaceVariable && readsWork { body += "        void* const work = arena_ + \(ctx.arenaBytes);\n" }
            body += bodyText
            let used = Self.identifiers(declarations + bodyText)
            // Silence unused-parameter warnings for pointers a model never reads (e.g. unused inputs).
            for k in ins.indices where !used.contains("in\(k)") { body += "        (void)in\(k);\n" }
            for k in outs.indices where !used.contains("out\(k)") { body += "        (void)out\(k);\n" }
            if !portNames.isEmpty { w("    // \(portNames)") }
            w("    \(attribute)void \(name)(\(runParams.joined(separator: ", "))) {")
            for t in CppRuntime.dispatchTargets {
                w("#if defined(\(t.twinsMacro))")
                w("        if (sofie_rt::\(t.check)()) return \(name)_\(t.name)(\(runArgs));  // the same, compiled for \(t.label)")
                w("#endif")
            }
            h += body
            w("    }")
            for t in CppRuntime.dispatchTargets {
                w("#if defined(\(t.twinsMacro))")
                w("    void \(name)_\(t.name)(\(runParams.joined(separator: ", ")));")
                w("#endif")
            }
            w()
            for (k, t) in CppRuntime.dispatchTargets.enumerated() {
                twins[k] += "inline void Session::\(name)_\(t.name)(\(runParams.joined(separator: ", "))) {\n"
                twins[k] += "        namespace sofie_rt = sofie_rt_\(t.name);\n"
                twins[k] += body + "}\n"
            }
        }
        method("run", self)
        for b in blocks {
            let r = b.plan.compiledBatch
            w("    // The same model for \(r) rows at once (batched inputs and outputs hold \(r) rows).")
            // Kept out of line so that the single-row path is compiled (inlined) as without it.
            method("run_block\(r)", b, attribute: "[[gnu::noinline]] ")
        }
        w("    std::unique_ptr<unsigned char[]> storage_;")
        w("    [[maybe_unused]] unsigned char* weights_ = nullptr;")
        w("    [[maybe_unused]] unsigned char* fills_ = nullptr;")
        w("    [[maybe_unused]] unsigned char* arena_ = nullptr;")
        w("    // The first 64-byte boundary at or after p (storage_ has 64 bytes to spare): every tensor's offset")
        w("    // is a multiple of 64, so no vector load straddles two cache lines (new[] gives 16-byte alignment).")
        w("    static unsigned char* align64(unsigned char* p) { return p + (64 - reinterpret_cast<std::uintptr_t>(p) % 64) % 64; }")
        for d in rdims where d.fromValues { w("    int64_t \(CppRuntimeDims.variable(d.name))_last_ = 0;") }
        w("};")
        w()
        for (k, t) in CppRuntime.dispatchTargets.enumerated() {
            w("#if defined(\(t.twinsMacro))  // the run methods again, for CPUs with \(t.label)")
            w("#pragma GCC push_options")
            w("#pragma GCC target(\"\(t.gccTarget)\")")
            h += twins[k]
            w("#pragma GCC pop_options")
            w("#endif")
            w()
        }
        if rdims.isEmpty, let functor = CppFunctor.emit(namespace: ns, inputs: ins, outputs: outs, embedded: embed) { h += functor }
        // With run-time dimensions: a functor over one collection per row when infer(x) reads
        // them off the single input's size.
        if !rdims.isEmpty, ins.count == 1, !argDims.isEmpty, derived != nil,
           let functor = CppFunctor.emitCollection(namespace: ns, input: ins[0], outputs: outs, embedded: embed) { h += functor }
        w("}  // namespace \(ns)")
        var result = EmittedCpp(namespace: ns, header: h, weights: embed ? nil : weightBytes)
        result.runtimeBatch = batch != nil
        result.runtimeDimensions = Array(zip(rdims, dimArgs))
        result.fixedBatchReason = batchReason
        result.blockSizes = sizes
        result.warnings = warnings
        result.inputs = inputs.indices.map { k in
            EmittedCpp.Port(name: inArgs[k], dataType: ins[k].dtype, shape: ins[k].shape,
                            batched: batch?.inputs.contains(ObjectIdentifier(inputs[k])) ?? false, runtimeShape: ins[k].value.runtimeShape)
        }
        result.outputs = graph.outputs.indices.map { k in
            EmittedCpp.Port(name: outArgs[k], dataType: outs[k].dtype, shape: outs[k].shape,
                            batched: batch?.outputs.contains(ObjectIdentifier(graph.outputs[k])) ?? false, runtimeShape: outs[k].value.runtimeShape)
        }
        return result
    }

    var usesWorkspaceVariable: Bool { workspaceElements > 0 }
}
