/// A dimension chosen at run time, up to a bound (`sofie compile --dim N=max:1024`): the graph
/// is compiled with the symbol at its bound (every static shape is the largest the tensor can
/// be, so the memory plan holds any size), and the values whose extents follow the symbol
/// carry them as expressions (`Value.runtimeShape`), which the C++ emitter evaluates at run time.
public struct RuntimeDimension: Hashable, Sendable, CustomStringConvertible {
    /// The symbol's name in the model (`N`, `seq_len`).
    public let name: String
    /// The largest value `infer` accepts (the compiled shapes are at this value).
    public let bound: Int
    /// The smallest value `infer` accepts: every extent that follows the symbol stays at least 1.
    public var minimum: Int
    /// Whether an op computes the value from run-time values (the length of a Range whose
    /// bounds are inputs), rather than `infer` taking it as an argument.
    public var fromValues: Bool

    public init(name: String, bound: Int, minimum: Int = 1, fromValues: Bool = false) {
        self.name = name
        self.bound = bound
        self.minimum = minimum
        self.fromValues = fromValues
    }

    /// The symbol of the length of a node's output that depends on run-time values (a Range
    /// with bounds computed at run time): given a bound with `--dim NAME_len=max:BOUND`.
    public static func lengthSymbol(of node: Node) -> String {
        (node.name.isEmpty ? (node.outputs.first??.name ?? node.opType) : node.name) + "_len"
    }

    public var description: String { "\(name) in \(minimum)...\(bound)" }
}

/// Ops whose shape, axes or repeats input may arrive at run time when the model declares the
/// output's static shape (ONNX's node tests do; exporters' value_info often does): the compiler
/// takes the declared shape, and the emitted code checks at run time that the input's values give
/// exactly that shape (`std::invalid_argument` if not). The data then moves as the shapes say
/// (Reshape, Squeeze, Unsqueeze, Expand, Tile, ConstantOfShape; TopK's k, Split's sizes,
/// OneHot's depth and Resize's sizes are the declared extents), or the op reads the input at run
/// time (reductions, Slice, Pad).
public enum DeclaredShapes {
    /// Op -> the inputs that may be run-time values.
    public static let inputs: [String: Set<Int>] = {
        var m: [String: Set<Int>] = ["Reshape": [1], "Squeeze": [1], "Unsqueeze": [1], "Expand": [1], "Tile": [1], "ConstantOfShape": [0],
                                     "TopK": [1], "Split": [1], "OneHot": [1], "Slice": [1, 2, 3, 4], "Pad": [1, 3], "Resize": [2, 3], "Upsample": [1],
                                     "CenterCropPad": [1], "MaxUnpool": [2], "AffineGrid": [1], "Col2Im": [1, 2], "STFT": [1, 3], "DFT": [2], "MelWeightMatrix": [0, 1, 2, 3, 4],
                                     "Range": [0, 1, 2], "NonZero": [0], "Compress": [1],
                                     "HannWindow": [0], "HammingWindow": [0], "BlackmanWindow": [0], "Unique": [0], "NonMaxSuppression": [0, 1, 2, 3, 4]]
        for op in ["ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2", "ReduceSumSquare", "ReduceLogSum", "ReduceLogSumExp"] {
            m[op] = [1]
        }
        return m
    }()

    /// Ops whose emitters read those inputs at run time themselves (the others get a check
    /// before their usual code).
    public static let readAtRunTime: Set<String> = ["Slice", "Pad", "Range", "NonZero", "Compress", "Unique", "NonMaxSuppression", "Resize", "Upsample", "Col2Im", "STFT", "DFT", "MelWeightMatrix", "HannWindow", "HammingWindow", "BlackmanWindow", "ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd",
                                                     "ReduceL1", "ReduceL2", "ReduceSumSquare", "ReduceLogSum", "ReduceLogSumExp"]

    /// Whether `node` may take its declared output shapes because input `input` is a run-time value.
    public static func accepts(_ node: Node, runtimeInput input: Int) -> Bool {
        guard node.domain.isEmpty || node.domain == "ai.onnx", inputs[node.opType]?.contains(input) ?? false else { return false }
        // (Outputs the node leaves out need no shape.)
        return node.outputs.contains { $0 != nil } && node.outputs.allSatisfy { $0 == nil || $0?.tensorType?.staticShape != nil }
    }

    /// Why the declared output shapes cannot be right whatever the run-time values are (nil when
    /// they can): the code moves data by these shapes, so a declared shape that does not fit the
    /// input (a Reshape to another element count, a TopK k beyond the axis, Split sizes that do
    /// not add up, a OneHot output that is not the indices' shape plus the depth) would read past
    /// the input; it is refused at compile time.
    public static func inconsistency(_ node: Node, opset: Int) -> String? {
        let ins = node.inputs.map { $0?.tensorType?.staticShape }
        let outs = node.outputs.map { $0?.tensorType?.staticShape }
        guard let y = outs.first ?? nil else { return nil }
        func count(_ s: [Int]) -> Int? { (try? Checked.product(s)) }
        let c = OpContext(node: node, opset: opset)
        switch node.opType {
        case "Reshape", "Squeeze", "Unsqueeze":
            guard let x = ins.first ?? nil, count(x) == count(y) else { return "its declared output shape \(y) does not hold the input's elements" }
        case "TopK", "Split":
            guard let x = ins.first ?? nil, !x.isEmpty, let axis = try? c.axis(node.int("axis") ?? (node.opType == "Split" ? 0 : -1), rank: x.count) else { return "its input has no static shape" }
            let shapes = outs.compactMap { $0 }
            guard shapes.allSatisfy({ s in s.count == x.count && s.indices.allSatisfy { d in d == axis || s[d] == x[d] } }) else {
                return "its declared outputs \(shapes) do not match the input \(x) outside axis \(axis)"
            }
            if node.opType == "TopK", y[axis] > x[axis] { return "its declared k \(y[axis]) exceeds the input's \(x[axis]) elements on axis \(axis)" }
            if node.opType == "Split", shapes.reduce(0, { $0 + $1[axis] }) != x[axis] { return "its declared outputs do not add up to the input's \(x[axis]) elements on axis \(axis)" }
        case "NonZero":
            guard let x = ins.first ?? nil, y.count == 2, y[0] == x.count, y[1] <= (count(x) ?? 0) else { return "its declared output \(y) is not [\(ins.first??.count ?? 0), at most the input's elements]" }
        case "Compress":
            guard let x = ins.first ?? nil, let cond = ins.count > 1 ? ins[1] : nil, cond.count == 1 else { return "its inputs have no static shapes" }
            if let a = node.int("axis") {
                guard let axis = try? c.axis(a, rank: x.count), y.count == x.count, y.indices.allSatisfy({ $0 == axis || y[$0] == x[$0] }), y[axis] <= cond[0] else {
                    return "its declared output \(y) does not fit the input \(x) with at most \(cond[0]) slices selected"
                }
            } else if y.count != 1 || y[0] > cond[0] { return "its declared output \(y) does not fit at most \(cond[0]) selected elements" }
        case "HannWindow", "HammingWindow", "BlackmanWindow":
            let least = (node.int("periodic") ?? 1) != 0 ? 1 : 2
            guard y.count == 1, y[0] >= least, y[0] <= 1 << 24 else { return "its declared output \(y) is not a window of \(least) to 2^24 points" }
        case "Unique":
            guard let x = ins.first ?? nil, let total = count(x) else { return "its input has no static shape" }
            let n: Int
            if let a = node.int("axis") {
                guard let axis = try? c.axis(a, rank: x.count), y.count == x.count, y.indices.allSatisfy({ $0 == axis || y[$0] == x[$0] }), y[axis] <= x[axis] else {
                    return "its declared output \(y) does not fit the input \(x) with at most \(x.first ?? 0) distinct slices"
                }
                n = y[axis]
                if outs.count > 2, let inv = outs[2], inv != [x[axis]] { return "its declared inverse_indices \(inv) are not [\(x[axis])]" }
            } else {
                guard y.count == 1, y[0] <= total else { return "its declared output \(y) does not fit at most \(total) distinct elements" }
                n = y[0]
                if outs.count > 2, let inv = outs[2], inv != [total] { return "its declared inverse_indices \(inv) are not [\(total)]" }
            }
            for k in [1, 3] where outs.count > k { if let o = outs[k], o != [n] { return "its declared output \(k) \(o) is not [\(n)]" } }
        case "NonMaxSuppression":
            guard let b = ins.first ?? nil, let sc = ins.count > 1 ? ins[1] : nil, b.count == 3, sc.count == 3, y.count == 2, y[1] == 3,
                  let most = count([b[0], sc[1], b[1]]), y[0] <= most else { return "its declared output \(y) is not [at most batches x classes x boxes, 3]" }
        case "CenterCropPad":
            guard let x = ins.first ?? nil, x.count == y.count else { return "its declared output \(y) does not have the input's rank" }
            let axes = Set((node.ints("axes") ?? Array(0..<x.count)).compactMap { try? c.axis($0, rank: x.count) })
            if let d = x.indices.first(where: { !axes.contains($0) && x[$0] != y[$0] }) { return "its declared output \(y) differs from the input \(x) on axis \(d), which it does not crop or pad" }
        case "MaxUnpool":
            guard let x = ins.first ?? nil, x.count == y.count, x.count >= 3, y[0] == x[0], y[1] == x[1] else { return "its declared output \(y) does not fit the input \((ins.first ?? nil) ?? [])" }
        case "AffineGrid":
            guard let theta = ins.first ?? nil, theta.count == 3, y.count == theta[1] + 2, y.last == theta[1], y[0] == theta[0], theta[2] == theta[1] + 1 else {
                return "its declared output \(y) does not fit theta \((ins.first ?? nil) ?? [])"
            }
        case "MelWeightMatrix":
            guard y.count == 2, y[1] >= 1, y[1] <= 1 << 16, y[0] >= 1, y[0] <= (1 << 23) + 1 else { return "its declared output \(y) is not [bins, mel bins] (1 to 65536 mel bins)" }
        case "DFT":
            if ExtraOps.dftCandidates(c, output: y).isEmpty { return "no axis gives its declared output \(y) from the input \((ins.first ?? nil) ?? [])" }
        case "STFT":
            if (try? ExtraOps.stftDeclared(c, output: y)) == nil { return "its declared output \(y) is not [batch, frames, bins, 2] for the signal \((ins.first ?? nil) ?? [])" }
        case "Col2Im":
            if (try? ExtraOps.col2imDeclared(c, output: y)) == nil { return "its declared output \(y) does not fit the input \((ins.first ?? nil) ?? []) as (N, C, image...)" }
        case "Resize", "Upsample":
            guard let x = ins.first ?? nil, x.count == y.count else { return "its declared output \(y) does not have the input's rank" }
        case "OneHot":
            guard let idx = ins.first ?? nil, let axis = try? c.axis(node.int("axis") ?? -1, rank: y.count) else { return "its indices have no static shape" }
            var rest = y
            rest.remove(at: axis)
            if rest != idx { return "its declared output \(y) is not the indices' shape \(idx) with the depth on axis \(axis)" }
        default: break
        }
        return nil
    }

    /// The static shape a consumer chain implies for `value` when the model declares none for it:
    /// `value` flows through ops that keep its shape (unary elementwise ops, casts, and
    /// broadcasting ops whose other inputs have one element) to a value whose shape the model
    /// declares (a graph output, a value_info). ONNX's function bodies (ReduceL2 as ReduceSum →
    /// Sqrt, HannWindow as Range → Mul → Cos ...) declare only their outputs. The implied shape
    /// is taken as declared, so the emitted code checks the run-time values against it: a wrong
    /// guess (a value that broadcasts up to the declared shape) is a run-time error, never an
    /// overrun. Follows at most `depth` ops.
    public static func impliedByConsumers(_ value: Value, depth: Int = 32) -> [Int]? {
        var frontier = [value], seen = Set<ObjectIdentifier>([ObjectIdentifier(value)])
        for _ in 0..<depth {
            var next: [Value] = []
            for v in frontier {
                for use in v.uses {
                    let n = use.node
                    guard keepsShape(n, input: use.index), let out = n.outputs.first ?? nil else { continue }
                    if let s = out.tensorType?.staticShape { return s }
                    if seen.insert(ObjectIdentifier(out)).inserted { next.append(out) }
                }
            }
            if next.isEmpty { return nil }
            frontier = Array(next.prefix(256))
        }
        return nil
    }

    static let shapeKeepingUnary: Set<String> = [
        "Abs", "Neg", "Sqrt", "Exp", "Log", "Reciprocal", "Floor", "Ceil", "Round", "Sign", "Relu", "Sigmoid", "Tanh",
        "Sin", "Cos", "Tan", "Asin", "Acos", "Atan", "Sinh", "Cosh", "Asinh", "Acosh", "Atanh", "Erf", "Softplus", "Softsign",
        "Not", "BitwiseNot", "LeakyRelu", "Elu", "Celu", "Selu", "ThresholdedRelu", "HardSigmoid", "HardSwish", "Mish",
        "Gelu", "Shrink", "Identity", "Cast", "IsNaN", "IsInf",
    ]
    static let shapeKeepingBroadcast: Set<String> = [
        "Add", "Sub", "Mul", "Div", "Mod", "Pow", "Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual",
        "And", "Or", "Xor", "Max", "Min", "Sum", "Mean", "Where", "PRelu", "Clip",
    ]

    /// Whether `node`'s first output has the shape of its input `input` whatever that shape is.
    static func keepsShape(_ node: Node, input: Int) -> Bool {
        guard node.domain.isEmpty || node.domain == "ai.onnx" else { return false }
        if shapeKeepingUnary.contains(node.opType) { return input == 0 }
        if node.opType == "CastLike" { return input == 0 }
        guard shapeKeepingBroadcast.contains(node.opType) else { return false }
        // Every other input of a static shape: one element (a scalar the value broadcasts over).
        // One whose shape is not known yet (it derives from the value too, as both terms of a
        // window's sum do) may still broadcast the result up: the implied shape is then too
        // large, which the run-time check refuses.
        for (i, other) in node.inputs.enumerated() where i != input {
            guard let o = other, o !== node.inputs[input] else { continue }
            if let s = o.initializer?.dims ?? o.tensorType?.staticShape, !s.allSatisfy({ $0 == 1 }) { return false }
        }
        return true
    }

    /// Whether the node's input `i` is one of its run-time shape inputs (present and not a constant).
    public static func isRuntime(_ node: Node, _ i: Int) -> Bool {
        (inputs[node.opType]?.contains(i) ?? false) && node.input(i) != nil && node.input(i)?.initializer == nil
    }
}

/// An extent as a polynomial in run-time symbols with integer coefficients: `3`, `N`,
/// `2*N + 1`, `N*N*64` (strides of an attention score tensor). Closed under + and *, which is
/// all shapes, strides and offsets need; compares by value (terms are kept canonical).
public struct DimExpr: Hashable, Sendable, CustomStringConvertible, ExpressibleByIntegerLiteral {
    /// Monomial (sorted symbol names, repeated for powers; [] is the constant) -> coefficient (never 0).
    public private(set) var terms: [[String]: Int]

    public init(_ constant: Int) { terms = constant == 0 ? [:] : [[]: constant] }
    public init(integerLiteral value: Int) { self.init(value) }
    public init(symbol: String) { terms = [[symbol]: 1] }

    /// The value when it does not depend on a symbol.
    public var constant: Int? {
        if terms.isEmpty { return 0 }
        if terms.count == 1, let c = terms[[]] { return c }
        return nil
    }

    public var isConstant: Bool { constant != nil }
    public var symbols: Set<String> { Set(terms.keys.flatMap { $0 }) }

    /// The coefficient of a symbol's first power (the slope of an affine extent).
    public func coefficient(of symbol: String) -> Int { terms[[symbol]] ?? 0 }

    public static func + (a: DimExpr, b: DimExpr) -> DimExpr {
        var r = a
        for (m, c) in b.terms {
            let s = (r.terms[m] ?? 0) &+ c
            r.terms[m] = s == 0 ? nil : s
        }
        return r
    }

    public static func - (a: DimExpr, b: DimExpr) -> DimExpr { a + b * DimExpr(-1) }

    public static func * (a: DimExpr, b: DimExpr) -> DimExpr {
        var r = DimExpr(0)
        for (ma, ca) in a.terms {
            for (mb, cb) in b.terms {
                let m = (ma + mb).sorted()
                let s = (r.terms[m] ?? 0) &+ ca &* cb
                r.terms[m] = s == 0 ? nil : s
            }
        }
        return r
    }

    /// The value for the given symbol values; throws when a symbol has none or the result
    /// does not fit 64 bits.
    public func evaluate(_ values: [String: Int]) throws -> Int {
        var total = 0
        for (m, c) in terms {
            var p = c
            for s in m {
                guard let v = values[s] else { throw ModelLimitError("no value for the run-time dimension '\(s)'") }
                p = try Checked.mul(p, v, "a run-time extent")
            }
            total = try Checked.add(total, p, "a run-time extent")
        }
        return total
    }

    /// The expression in C++ (`name` spells a symbol's variable), constant terms last:
    /// `n_N * 64 + 8`.
    public func cpp(_ name: (String) -> String) -> String {
        if let c = constant { return String(c) }
        let ordered = terms.sorted { a, b in a.key.count != b.key.count ? a.key.count > b.key.count : a.key.lexicographicallyPrecedes(b.key) }
        var out = ""
        for (m, c) in ordered {
            let factors = m.map(name)
            var term = factors.joined(separator: " * ")
            if m.isEmpty { term = String(abs(c)) } else if abs(c) != 1 { term += " * \(abs(c))" }
            if out.isEmpty { out = c < 0 ? "-" + term : term } else { out += c < 0 ? " - " + term : " + " + term }
        }
        return out
    }

    public var description: String { cpp { $0 } }
}
