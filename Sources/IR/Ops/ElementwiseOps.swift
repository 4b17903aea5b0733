import Foundation


/// Unary and broadcasting elementwise ops: type rules and reference evaluation.
public enum ElementwiseOps {
    /// Unary ops whose output has the input's type; the function is their reference semantics
    /// (nil where constant folding does not evaluate the op).
    static let unary: [String: ((Double, OpContext) -> Double)?] = [
        "Abs": { x, _ in abs(x) }, "Neg": { x, _ in -x }, "Sqrt": { x, _ in x.squareRoot() },
        "Exp": { x, _ in exp(x) }, "Log": { x, _ in log(x) }, "Reciprocal": { x, _ in 1 / x },
        "Floor": { x, _ in x.rounded(.down) }, "Ceil": { x, _ in x.rounded(.up) },
        "Round": { x, _ in x.rounded(.toNearestOrEven) }, "Sign": { x, _ in x > 0 ? 1 : (x < 0 ? -1 : 0) },
        "Relu": { x, _ in max(x, 0) }, "Sigmoid": { x, _ in 1 / (1 + exp(-x)) }, "Tanh": { x, _ in tanh(x) },
        "Sin": { x, _ in sin(x) }, "Cos": { x, _ in cos(x) }, "Tan": { x, _ in tan(x) },
        "Asin": { x, _ in asin(x) }, "Acos": { x, _ in acos(x) }, "Atan": { x, _ in atan(x) },
        "Sinh": { x, _ in sinh(x) }, "Cosh": { x, _ in cosh(x) }, "Asinh": { x, _ in asinh(x) },
        "Acosh": { x, _ in acosh(x) }, "Atanh": { x, _ in atanh(x) }, "Erf": { x, _ in erf(x) },
        "Softplus": { x, _ in log1p(exp(x)) }, "Softsign": { x, _ in x / (1 + abs(x)) },
        "Not": { x, _ in x == 0 ? 1 : 0 }, "BitwiseNot": nil,
        "LeakyRelu": { x, c in x >= 0 ? x : Double(c.float("alpha", 0.01)) * x },
        "Elu": { x, c in x >= 0 ? x : Double(c.float("alpha", 1)) * (exp(x) - 1) },
        "Celu": { x, c in let a = Double(c.float("alpha", 1)); return max(0, x) + min(0, a * (exp(x / a) - 1)) },
        "Selu": { x, c in
            let a = Double(c.float("alpha", 1.67326319217681884765625)), g = Double(c.float("gamma", 1.05070102214813232421875))
            return x > 0 ? g * x : g * (a * exp(x) - a) },
        "ThresholdedRelu": { x, c in x > Double(c.float("alpha", 1)) ? x : 0 },
        "HardSigmoid": { x, c in max(0, min(1, Double(c.float("alpha", 0.2)) * x + Double(c.float("beta", 0.5)))) },
        "HardSwish": { x, _ in x * max(0, min(1, x / 6 + 0.5)) },
        "Mish": { x, _ in x * tanh(log1p(exp(x))) },
        "Swish": { x, c in x / (1 + exp(-Double(c.float("alpha", 1)) * x)) },
        "Gelu": { x, c in
            if c.node.string("approximate") == "tanh" { return 0.5 * x * (1 + tanh(0.7978845608028654 * (x + 0.044715 * x * x * x))) }
            return 0.5 * x * (1 + erf(x / 2.0.squareRoot())) },
        "Shrink": { x, c in
            let l = Double(c.float("lambd", 0.5)), b = Double(c.float("bias", 0))
            return x < -l ? x + b : (x > l ? x - b : 0) },
        "Identity": { x, _ in x }, "Dropout": { x, _ in x },
    ]

    static let comparison: Set<String> = ["Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual"]
    static let logical: Set<String> = ["And", "Or", "Xor"]
    static let arithmetic: Set<String> = ["Add", "Sub", "Mul", "Div", "Mod", "Pow", "BitShift", "BitwiseAnd", "BitwiseOr", "BitwiseXor"]
    static let variadic: Set<String> = ["Max", "Min", "Sum", "Mean"]

    static func binaryEval(_ op: String, _ c: OpContext, _ isFloat: Bool) -> (Double, Double) -> Double {
        switch op {
        case "Add", "Sum": return { $0 + $1 }
        case "Sub": return { $0 - $1 }
        case "Mul": return { $0 * $1 }
        case "Div": return isFloat ? { $0 / $1 } : { b, d in d == 0 ? 0 : (b / d).rounded(.towardZero) }
        case "Mod":
            if c.int("fmod", 0) == 1 { return { fmod($0, $1) } }
            if isFloat { return { a, b in let r = fmod(a, b); return (r != 0 && (r < 0) != (b < 0)) ? r + b : r } }
            return { a, b in b == 0 ? 0 : { let r = fmod(a, b); return (r != 0 && (r < 0) != (b < 0)) ? r + b : r }() }
        case "Pow": return { pow($0, $1) }
        case "Max": return { max($0, $1) }
        case "Min": return { min($0, $1) }
        case "Equal": return { $0 == $1 ? 1 : 0 }
        case "Less": return { $0 < $1 ? 1 : 0 }
        case "Greater": return { $0 > $1 ? 1 : 0 }
        case "LessOrEqual": return { $0 <= $1 ? 1 : 0 }
        case "GreaterOrEqual": return { $0 >= $1 ? 1 : 0 }
        case "And": return { ($0 != 0 && $1 != 0) ? 1 : 0 }
        case "Or": return { ($0 != 0 || $1 != 0) ? 1 : 0 }
        case "Xor": return { (($0 != 0) != ($1 != 0)) ? 1 : 0 }
        default: return { a, _ in a }
        }
    }

    /// Applies `f` elementwise with broadcasting; integer results wrap to `outType`.
    static func broadcast(_ arrays: [NDArray], outType: DataType, _ f: ([Double]) -> Double) -> NDArray? {
        var shape: [Int] = []
        for a in arrays { guard let s = broadcastShapes(shape, a.shape) else { return nil }; shape = s }
        let idx = arrays.map { broadcastIndices($0.shape, to: shape) }
        let n = shape.reduce(1, *)
        var out = [Double](repeating: 0, count: n)
        var args = [Double](repeating: 0, count: arrays.count)
        // Integers go through Int64 when the Double path could lose precision.
        for i in 0..<n {
            for k in arrays.indices { args[k] = arrays[k].double(idx[k][i]) }
            out[i] = f(args)
        }
        return NDArray.make(outType, shape: shape, out)
    }

    static func intBinary(_ op: String, _ a: NDArray, _ b: NDArray, _ c: OpContext) -> NDArray? {
        guard let shape = broadcastShapes(a.shape, b.shape) else { return nil }
        let ia = broadcastIndices(a.shape, to: shape), ib = broadcastIndices(b.shape, to: shape)
        var out = [Int64](repeating: 0, count: shape.reduce(1, *))
        for i in out.indices {
            let x = a.ints[ia[i]], y = b.ints[ib[i]]
            switch op {
            case "Add": out[i] = x &+ y
            case "Sub": out[i] = x &- y
            case "Mul": out[i] = x &* y
            case "Div": out[i] = y == 0 ? 0 : x / y
            case "Mod":
                if y == 0 { out[i] = 0 } else if c.int("fmod", 0) == 1 { out[i] = x % y } else {
                    let r = x % y
                    out[i] = (r != 0 && (r < 0) != (y < 0)) ? r + y : r
                }
            case "Max": out[i] = max(x, y)
            case "Min": out[i] = min(x, y)
            default: return nil
            }
            out[i] = NDArray.wrap(out[i], a.dataType)
        }
        return NDArray(a.dataType, shape: shape, ints: out)
    }

    /// The broadcast shape of `inputs`, every one of which is required (an elementwise op's
    /// evaluation reads them all; a missing one is an error here, not a crash there).
    static func broadcastAll(_ c: OpContext, _ inputs: [Int]) throws -> [Int] {
        var shape: [Int] = []
        for i in inputs {
            let s = try c.shape(i)
            guard let b = broadcastShapes(shape, s) else {
                throw c.fail("input shapes \(try inputs.map { try c.shape($0) }) do not broadcast")
            }
            shape = b
        }
        return shape
    }

    public static var table: [String: OpDef] {
        var t: [String: OpDef] = [:]
        for (op, f) in unary {
            t[op] = OpDef(
                infer: { c in [tt(try c.dtype(0), try c.shape(0))] + (op == "Dropout" && c.node.outputs.count > 1 ? [tt(c.opset < 10 ? try c.dtype(0) : .bool, try c.shape(0))] : []) },
                evaluate: f.map { f in { c, a in
                    let x = a[0]!
                    if op == "Dropout" && c.node.outputs.count > 1 {
                        let mask = c.opset < 10 && x.isFloat ? NDArray(x.dataType, shape: x.shape, floats: .init(repeating: 1, count: x.count))
                            : NDArray(.bool, shape: x.shape, ints: .init(repeating: 1, count: x.count))
                        return [x, mask]
                    }
                    if !x.isFloat && ["Neg", "Abs", "Sign", "Identity", "Not", "Relu"].contains(op) {
                        let v = x.ints.map { v -> Int64 in
                            switch op {
                            case "Neg": return 0 &- v
                            case "Abs": return v < 0 ? 0 &- v : v
                            case "Sign": return v > 0 ? 1 : (v < 0 ? -1 : 0)
                            case "Not": return v == 0 ? 1 : 0
                            case "Relu": return max(v, 0)
                            default: return v
                            }
                        }
                        return [NDArray(x.dataType, shape: x.shape, ints: v.map { NDArray.wrap($0, x.dataType) })]
                    }
                    return [NDArray.make(x.dataType, shape: x.shape, (0..<x.count).map { f(x.double($0), c) })]
                } })
        }
        for op in ["IsNaN", "IsInf"] {
            t[op] = OpDef(infer: { c in [tt(.bool, try c.shape(0))] })
        }
        for op in arithmetic.union(comparison).union(logical) {
            t[op] = OpDef(
                infer: { c in
                    let dt = comparison.contains(op) || logical.contains(op) ? DataType.bool : try c.dtype(0)
                    if op != "Pow" && !logical.contains(op) {
                        let (a, b) = (try c.dtype(0), try c.dtype(1))
                        guard a == b else { throw c.fail("its inputs have different element types (\(a) and \(b))") }
                    }
                    return [tt(dt, try broadcastAll(c, [0, 1]))]
                },
                evaluate: op.hasPrefix("Bit") ? nil : { c, a in
                    let (x, y) = (a[0]!, a[1]!)
                    if !x.isFloat && !y.isFloat && !comparison.contains(op) && !logical.contains(op) && op != "Pow" {
                        if let r = intBinary(op, x, y, c) { return [r] }
                    }
                    let dt = comparison.contains(op) || logical.contains(op) ? DataType.bool : x.dataType
                    let f = binaryEval(op, c, x.isFloat)
                    guard let r = broadcast([x, y], outType: dt, { f($0[0], $0[1]) }) else { throw c.fail("shapes do not broadcast") }
                    return [r]
                })
        }
        for op in variadic {
            t[op] = OpDef(
                infer: { c in [tt(try c.dtype(0), try broadcastAll(c, Array(0..<c.inputCount)))] },
                evaluate: { c, a in
                    let arrays = a.compactMap { $0 }
                    let f = binaryEval(op == "Mean" ? "Sum" : op, c, arrays[0].isFloat)
                    let n = Double(arrays.count)
                    guard let r = broadcast(arrays, outType: arrays[0].dataType, { v in
                        let s = v.dropFirst().reduce(v[0], f)
                        return op == "Mean" ? s / n : s
                    }) else { throw c.fail("shapes do not broadcast") }
                    return [r]
                })
        }
        t["Where"] = OpDef(
            infer: { c in
                // (A hostile file with an int64 X and a float Y made the folding index Y's
                // missing integers: the two branches must have one type, as ONNX requires.)
                guard try c.dtype(1) == c.dtype(2) else { throw c.fail("X is \(try c.dtype(1)) but Y is \(try c.dtype(2)); they must have the same type") }
                return [tt(try c.dtype(1), try broadcastAll(c, [0, 1, 2]))]
            },
            evaluate: { c, a in
                guard a[1]!.dataType == a[2]!.dataType, a[1]!.isFloat == a[2]!.isFloat else { throw c.fail("X and Y have different types") }
                guard let r = broadcast([a[0]!, a[1]!, a[2]!], outType: a[1]!.dataType, { $0[0] != 0 ? $0[1] : $0[2] }) else {
                    throw c.fail("shapes do not broadcast")
                }
                if !a[1]!.isFloat {  // keep 64-bit integers exact
                    let shape = r.shape
                    let i0 = broadcastIndices(a[0]!.shape, to: shape), i1 = broadcastIndices(a[1]!.shape, to: shape), i2 = broadcastIndices(a[2]!.shape, to: shape)
                    return [NDArray(r.dataType, shape: shape, ints: (0..<r.count).map { a[0]!.int(i0[$0]) != 0 ? a[1]!.ints[i1[$0]] : a[2]!.ints[i2[$0]] })]
                }
                return [r]
            })
        t["PRelu"] = OpDef(infer: { c in
            let s = try c.shape(0)
            guard broadcastShapes(s, try c.shape(1)) == s else { throw c.fail("slope shape \(try c.shape(1)) does not broadcast to \(s)") }
            return [tt(try c.dtype(0), s)]
        })
        t["Clip"] = OpDef(
            infer: { c in [tt(try c.dtype(0), try c.shape(0))] },
            evaluate: { c, a in
                let x = a[0]!
                let lo = a.count > 1 ? a[1].map { $0.double(0) } : (c.node.float("min").map(Double.init))
                let hi = a.count > 2 ? a[2].map { $0.double(0) } : (c.node.float("max").map(Double.init))
                if !x.isFloat {
                    return [NDArray(x.dataType, shape: x.shape, ints: x.ints.map { v in
                        var r = v
                        if let lo { r = max(r, a.count > 1 ? a[1]!.ints[0] : Int64(lo)) }
                        if let hi { r = min(r, a.count > 2 ? a[2]!.ints[0] : Int64(hi)) }
                        return r })]
                }
                return [NDArray.make(x.dataType, shape: x.shape, x.floats.map { v in min(max(v, lo ?? -.infinity), hi ?? .infinity) })]
            })
        t["Cast"] = OpDef(
            infer: { c in
                guard let to = c.node.int("to"), let code = Int32(exactly: to), let dt = DataType(rawValue: code) else { throw c.invalid("has no valid 'to' attribute") }
                return [tt(dt, try c.shape(0))]
            },
            evaluate: { c, a in [try cast(a[0]!, to: try c.infer()[0].elementType, c)] })
        // The bits as another type of the same width (opset 26); the bytes are little-endian.
        t["BitCast"] = OpDef(
            infer: { c in
                guard let to = c.node.int("to"), let code = Int32(exactly: to), let dt = DataType(rawValue: code) else { throw c.invalid("has no valid 'to' attribute") }
                let from = try c.dtype(0)
                guard dt != .bool || from == .bool else { throw c.fail("BitCast to bool is not supported: a byte other than 0 or 1 is no bool in C++") }
                guard let a = from.byteSize, let b = dt.byteSize, dt != .string, from != .string else { throw c.fail("BitCast between \(from) and \(dt) is not supported (whole-byte types only)") }
                guard a == b else { throw c.invalid("BitCast from \(from) (\(a * 8) bits) to \(dt) (\(b * 8) bits): the widths must be equal") }
                return [tt(dt, try c.shape(0))]
            })
        t["CastLike"] = OpDef(
            infer: { c in [tt(try c.dtype(1), try c.shape(0))] },
            evaluate: { c, a in [try cast(a[0]!, to: a[1]!.dataType, c)] })
        t["Identity"]?.traits.insert(.movesElements)
        // Row-independent along the batch (OpTraits.rowIndependent): every unary op, Cast and CastLike.
        for op in Array(unary.keys) + ["IsNaN", "IsInf", "Cast", "CastLike"] { t[op]?.traits.insert(.rowIndependent) }
        for op in ["Add", "Mul", "And", "Or", "Xor", "Equal", "BitwiseAnd", "BitwiseOr", "BitwiseXor"] { t[op]?.traits.insert(.commutative) }
        for op in arithmetic.union(comparison).union(logical).union(variadic).union(["Where", "PRelu", "Clip"]) {
            t[op]?.traits.insert(.broadcastingElementwise)
        }
        return t
    }

    static func cast(_ x: NDArray, to dt: DataType, _ c: OpContext) throws -> NDArray {
        guard dt.isFloatingPoint || dt.isInteger || dt == .bool else { throw c.fail("casting to \(dt) is not supported") }
        if !x.isFloat && !dt.isFloatingPoint { return NDArray(dt, shape: x.shape, ints: x.ints.map { NDArray.wrap($0, dt) }) }
        if !x.isFloat { return NDArray.make(dt, shape: x.shape, x.ints.map { Double($0) }) }
        return NDArray.make(dt, shape: x.shape, x.floats)
    }
}

extension OpContext {
    /// Runs this node's shape inference (used by evaluators that need the output type).
    func infer() throws -> [TensorType] {
        guard let def = OpRegistry.definition(for: node) else { throw fail("unsupported op") }
        return try def.infer(self)
    }
}
