

/// Why a node cannot be compiled; names the node, its op and the reason.
public struct CompileError: Error, CustomStringConvertible {
    /// What the error is about: the message names it.
    public enum Subject: Equatable, Sendable {
        /// A node, by name (may be empty) and op type.
        case node(name: String, opType: String)
        /// A graph input (its shape, its type).
        case graphInput(String)
        /// An initializer.
        case initializer(String)
        /// A value inside the graph (no single node to blame).
        case value(String)
        /// The model as a whole (a size budget, a graph-level rule).
        case graph
        /// Where the output goes (not the model).
        case outputPath
        /// A failure of the compiler itself, not of the model.
        case internalError
    }

    public let subject: Subject
    public let reason: String
    /// The input that had to be a compile-time constant and is not (requireConstant): a node the
    /// compiler may still take when the model declares its output shapes (DeclaredShapes).
    public var runtimeInput: Int? = nil
    /// A length that run-time values choose and the model neither bounds nor declares (NonZero's
    /// count): its symbol (`RuntimeDimension.lengthSymbol`) and the largest value it can take,
    /// which the compiler uses as the bound when `--dim SYMBOL=max:B` does not give one.
    public var lengthBound: (symbol: String, maximum: Int)? = nil

    public init(node: Node, _ reason: String) {
        self.subject = .node(name: node.name, opType: node.opType)
        self.reason = reason
    }

    public init(_ subject: Subject, _ reason: String) {
        self.subject = subject
        self.reason = reason
    }

    /// The node's name, or "" when the error is not about a node.
    public var node: String { if case .node(let name, _) = subject { return name }; return "" }
    /// The node's op type, or "" when the error is not about a node.
    public var opType: String { if case .node(_, let op) = subject { return op }; return "" }

    public var description: String {
        switch subject {
        case .node(let name, let op): return name.isEmpty ? "unnamed \(op) node: \(reason)" : "node '\(name)' (op \(op)): \(reason)"
        case .internalError: return "internal error: \(reason)"
        case .graphInput, .initializer, .value, .graph, .outputPath: return reason
        }
    }
}

/// What shape inference and evaluation see of one node.
public struct OpContext {
    public let node: Node
    public let opset: Int

    public init(node: Node, opset: Int) {
        self.node = node
        self.opset = opset
    }

    public var inputCount: Int { node.inputs.count }
    public func has(_ i: Int) -> Bool { node.input(i) != nil }

    public func fail(_ reason: String) -> CompileError { CompileError(node: node, reason) }

    /// An error in the model itself (an axis out of range, a zero blocksize, a NaN scale), as
    /// opposed to something this compiler cannot handle yet: every command refuses the model,
    /// even where shape inference is otherwise lenient (`sofie convert`, `sofie inspect`).
    public func invalid(_ reason: String) -> ModelLimitError { ModelLimitError(reason) }

    public func type(_ i: Int) throws -> TensorType {
        guard let v = node.input(i) else { throw fail("input \(i) is missing") }
        guard let t = v.tensorType else { throw fail("input \(i) ('\(v.name)') has no known type") }
        return t
    }

    public func dtype(_ i: Int) throws -> DataType { try type(i).elementType }

    public func shape(_ i: Int) throws -> [Int] {
        let t = try type(i)
        guard let s = t.staticShape else {
            throw fail("input \(i) ('\(node.input(i)!.name)') has the shape \(t.shape.map { "\($0)" } ?? "of unknown rank"), which is not static; pin symbolic dimensions with --dim NAME=VALUE")
        }
        return s
    }

    public func rank(_ i: Int) throws -> Int { try shape(i).count }

    /// The input's constant value, if it is an initializer.
    public func constant(_ i: Int) -> NDArray? {
        guard let t = node.input(i)?.initializer else { return nil }
        return NDArray(t)
    }

    public func requireConstant(_ i: Int, _ what: String) throws -> NDArray {
        guard let c = constant(i) else {
            var e = fail("its \(what) (input \(i)) must be a compile-time constant; it is computed at run time here")
            e.runtimeInput = i
            throw e
        }
        return c
    }

    /// Integer attribute or input (ONNX moved many attributes to inputs across opsets).
    public func ints(attribute name: String, orInput i: Int) throws -> [Int]? {
        if let a = node.ints(name) { return a }
        if has(i) { return try requireConstant(i, name).ints.map { Int($0) } }
        return nil
    }

    public func int(_ name: String, _ def: Int) -> Int { node.int(name) ?? def }
    public func float(_ name: String, _ def: Float) -> Float { node.float(name) ?? def }

    /// Normalizes a possibly negative axis for a tensor of `rank`.
    public func axis(_ a: Int, rank: Int, what: String = "axis") throws -> Int {
        let r = a < 0 ? a + rank : a
        // Strict: a scalar has no axes, so every axis is out of range for rank 0. (The check once
        // accepted axis 0 of a scalar, and Gather and Split then indexed past an empty shape —
        // two fuzz findings with one root cause.)
        guard r >= 0, r < rank else {
            throw invalid(rank == 0 ? "\(what) \(a) given for a scalar, which has no axes" : "\(what) \(a) is out of range for rank \(rank) (allowed: \(-rank)...\(rank - 1))")
        }
        return r
    }
}

/// Facts about an op that passes and back ends act on (in the spirit of MLIR's op traits):
/// kept on the op's definition, so that a new op states them once where it is defined.
public struct OpTraits: OptionSet, Sendable {
    public let rawValue: Int
    public init(rawValue: Int) { self.rawValue = rawValue }

    /// Output 0 holds input 0's elements in the same order, under another shape: it may share
    /// input 0's storage (memory planning aliases it; the back end then copies nothing).
    public static let aliasesInput = OpTraits(rawValue: 1 << 0)
    /// Copies elements without computing on them: works on any element type, bits preserved
    /// (float16 and float8 stay in their type through it).
    public static let movesElements = OpTraits(rawValue: 1 << 1)
    /// Reads only its input's shape, never its elements.
    public static let readsShapeOnly = OpTraits(rawValue: 1 << 2)
    /// Each row along axis 0 of input 0 gives the same row of every output from that row alone
    /// (the other inputs are per-op constants): a model of such ops runs any batch row by row.
    public static let rowIndependent = OpTraits(rawValue: 1 << 3)
    /// A dense floating-point matrix product (MatMul, Gemm, Einsum): rows of a batch become
    /// rows of one product, so compiling block bodies of many rows pays. (The integer products
    /// run plain loops, which blocks do not speed up: not marked.)
    public static let denseProduct = OpTraits(rawValue: 1 << 4)
    /// A convolution (runs image by image, so block bodies of many rows only cost memory).
    public static let convolution = OpTraits(rawValue: 1 << 5)
    /// A binary op whose two inputs may be swapped with bit-identical results (Add, Mul, the
    /// logical and bitwise ones, Equal; not Max/Min, whose NaN handling depends on the order,
    /// nor the variadic Sum/Mean, whose rounding does): common-subexpression elimination merges
    /// f(a, b) with f(b, a), and commutative rewrite patterns match either order.
    public static let commutative = OpTraits(rawValue: 1 << 6)
    /// Elementwise over inputs that broadcast against each other by numpy's rules (Add, Less,
    /// Where, Max, PRelu, Clip, ...): an output element reads each input at its broadcast
    /// position, so a row of the output comes from the same row of inputs that have the
    /// output's rank (the batch analysis relies on this).
    public static let broadcastingElementwise = OpTraits(rawValue: 1 << 7)
}

/// The facts of one ONNX operator that the passes need: how to infer its outputs' types,
/// (optionally) how to evaluate it on constants for constant folding, and its traits.
public struct OpDef {
    public typealias Infer = (OpContext) throws -> [TensorType]
    public typealias Evaluate = (OpContext, [NDArray?]) throws -> [NDArray]
    public let infer: Infer
    public let evaluate: Evaluate?
    public var traits: OpTraits

    public init(infer: @escaping Infer, evaluate: Evaluate? = nil, traits: OpTraits = []) {
        self.infer = infer
        self.evaluate = evaluate
        self.traits = traits
    }
}

/// Op type -> definition, for the default ONNX domain. Each op family file contributes a table.
public enum OpRegistry {
    nonisolated(unsafe) public static var definitions: [String: OpDef] = {
        var all: [String: OpDef] = [:]
        for table in [ElementwiseOps.table, ShapeOps.table, ReductionOps.table, NNOps.table, ExtraOps.table, RecurrentOps.table, EinsumOps.table, AttentionOps.table, QuantOps.table] {
            all.merge(table) { a, _ in a }
        }
        return all
    }()

    /// The node's op traits (none for ops without a definition).
    public static func traits(of node: Node) -> OpTraits { definition(for: node)?.traits ?? [] }

    public static func definition(for node: Node) -> OpDef? {
        if node.domain == SofieOps.domain { return SofieOps.definitions[node.opType] }
        if node.domain == MLOps.domain { return MLOps.definitions[node.opType] }
        if node.domain == TrainingOps.domain { return TrainingOps.definitions[node.opType] }
        guard node.isStandard else { return nil }
        return definitions[node.opType]
    }
}

func tt(_ dt: DataType, _ shape: [Int]) -> TensorType { TensorType(dt, fixed: shape) }
