import Foundation
import SofieIR

/// Unary, binary (broadcasting), variadic, Where, Clip, Cast: one C++ expression each.
enum CppElementwise {
    static func unaryExpression(_ op: String, _ n: Node, _ t: DataType, _ x: String) -> String? {
        let T = CppTypes.name(t)!
        let isFloat = t.isFloatingPoint
        let isUnsigned = [.uint8, .uint16, .uint32, .uint64, .bool].contains(t)
        func lit(_ v: Float) -> String { CppOps.literal(Double(v), isFloat ? t : .double) }
        func f(_ name: String, _ def: Float) -> String { lit(n.float(name) ?? def) }
        // Math functions run in the element type for floats and in double for integers.
        let d = isFloat ? x : "double(\(x))"
        switch op {
        case "Abs": return isUnsigned ? x : (isFloat ? "std::abs(\(x))" : "(\(x) < 0 ? -\(x) : \(x))")
        case "Neg": return "-\(x)"
        case "Sqrt": return "std::sqrt(\(d))"
        // float exp, sigmoid and tanh: the runtime's branch-free versions, so loops vectorize.
        case "Exp": return t == .float ? "sofie_rt::fast_exp(\(d))" : "std::exp(\(d))"
        case "Log": return "std::log(\(d))"
        case "Erf" where t == .float: return "sofie_rt::fast_erf(\(d))"
        case "Sin", "Cos", "Tan", "Asin", "Acos", "Atan", "Sinh", "Cosh", "Asinh", "Acosh", "Atanh", "Erf", "Floor", "Ceil":
            return "std::\(op.lowercased())(\(d))"
        case "Round": return "std::nearbyint(\(d))"
        case "Reciprocal": return "\(T)(1) / \(x)"
        case "Sign": return "(\(T)(0) < \(x)) - sofie_rt::is_neg(\(x))"
        // Relu and LeakyRelu here for integer tensors; on floats they run sofie_rt::activate.
        case "Relu": return "(sofie_rt::is_neg(\(x)) ? \(T)(0) : \(x))"
        case "Softplus": return "std::log(std::exp(\(d)) + \(T)(1))"
        case "Softsign": return "\(x) / (\(T)(1) + std::abs(\(d)))"
        case "Not": return "!\(x)"
        case "BitwiseNot": return "~\(x)"
        case "LeakyRelu": return "(!sofie_rt::is_neg(\(x)) ? \(x) : \(f("alpha", 0.01)) * \(x))"
        case "Elu": return "(\(x) >= \(T)(0) ? \(x) : \(f("alpha", 1)) * (std::exp(\(d)) - \(T)(1)))"
        case "Celu":
            let a = f("alpha", 1)
            return "(std::max(\(T)(0), \(x)) + std::min(\(T)(0), \(a) * (std::exp(\(d) / \(a)) - \(T)(1))))"
        case "Selu":
            let a = f("alpha", 1.67326319217681884765625), g = f("gamma", 1.05070102214813232421875)
            return "(\(x) > \(T)(0) ? \(g) * \(x) : \(g) * (\(a) * std::exp(\(d)) - \(a)))"
        case "ThresholdedRelu": return "(\(x) > \(f("alpha", 1)) ? \(x) : \(T)(0))"
        case "Mish": return "\(x) * std::tanh(std::log1p(std::exp(\(d))))"
        case "Swish":  // alpha != 1 (alpha 1 is the epilogue activation)
            return t == .float ? "\(x) * sofie_rt::fast_sigmoid(\(f("alpha", 1)) * \(d))" : "\(x) / (\(T)(1) + std::exp(-\(f("alpha", 1)) * \(d)))"
        case "Gelu" where n.string("approximate") == "tanh":
            // The exact form is an epilogue activation (sofie_rt::activate); the tanh form is not.
            let tanh = t == .float ? "sofie_rt::fast_tanh" : "std::tanh"
            return "\(T)(0.5) * \(x) * (\(T)(1) + \(tanh)(\(T)(0.7978845608028654) * (\(x) + \(T)(0.044715) * \(x) * \(x) * \(x))))"
        case "Shrink":
            let l = f("lambd", 0.5), b = f("bias", 0)
            return "(\(x) < -\(l) ? \(x) + \(b) : (\(x) > \(l) ? \(x) - \(b) : \(T)(0)))"
        case "Identity", "Dropout": return x
        case "IsNaN": return "std::isnan(\(x))"
        case "IsInf":
            let pos = n.int("detect_positive") ?? 1, neg = n.int("detect_negative") ?? 1
            return "(std::isinf(\(x)) && ((\(x) > 0 && \(pos)) || (\(x) < 0 && \(neg))))"
        default: return nil
        }
    }

    static func binaryExpression(_ op: String, _ n: Node, _ t: DataType, _ a: String, _ b: String) -> String? {
        let isFloat = t.isFloatingPoint
        switch op {
        case "Add", "Sum": return "\(a) + \(b)"
        case "Sub": return "\(a) - \(b)"
        case "Mul": return "\(a) * \(b)"
        case "Div": return isFloat ? "\(a) / \(b)" : "(\(b) == 0 ? 0 : \(a) / \(b))"
        case "Mod":
            if isFloat { return n.int("fmod") == 1 ? "std::fmod(\(a), \(b))" : "sofie_rt::mod_floor_fp(\(a), \(b))" }
            if n.int("fmod") == 1 { return "(\(b) == 0 ? 0 : \(a) % \(b))" }
            return "sofie_rt::mod_floor(\(a), \(b))"
        case "Pow": return isFloat ? "std::pow(\(a), \(b))" : "std::pow(double(\(a)), double(\(b)))"
        case "Max": return "std::max(\(a), \(b))"
        case "Min": return "std::min(\(a), \(b))"
        case "Equal": return "\(a) == \(b)"
        case "Less": return "\(a) < \(b)"
        case "Greater": return "\(a) > \(b)"
        case "LessOrEqual": return "\(a) <= \(b)"
        case "GreaterOrEqual": return "\(a) >= \(b)"
        case "And": return "\(a) && \(b)"
        case "Or": return "\(a) || \(b)"
        case "Xor": return "\(a) != \(b)"
        case "BitShift": return n.string("direction") == "RIGHT" ? "sofie_rt::shift_right(\(a), \(b))" : "sofie_rt::shift_left(\(a), \(b))"
        case "BitwiseAnd": return "\(a) & \(b)"
        case "BitwiseOr": return "\(a) | \(b)"
        case "BitwiseXor": return "\(a) ^ \(b)"
        default: return nil
        }
    }

    static let unaryOps = ["Abs", "Neg", "Sqrt", "Exp", "Log", "Sin", "Cos", "Tan", "Asin", "Acos", "Atan", "Sinh", "Cosh", "Asinh",
                           "Acosh", "Atanh", "Erf", "Floor", "Ceil", "Round", "Reciprocal", "Sign", "Relu", "Sigmoid", "Tanh",
                           "Softplus", "Softsign", "Not", "BitwiseNot", "LeakyRelu", "Elu", "Celu", "Selu", "ThresholdedRelu",
                           "HardSigmoid", "HardSwish", "Mish", "Swish", "Gelu", "Shrink", "Identity", "IsNaN", "IsInf"]
    static let binaryOps = ["Add", "Sub", "Mul", "Div", "Mod", "Pow", "Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual",
                            "And", "Or", "Xor", "BitShift", "BitwiseAnd", "BitwiseOr", "BitwiseXor"]

    static var table: [String: CppOps.Emit] {
        var t: [String: CppOps.Emit] = [:]
        for op in unaryOps {
            t[op] = { e, n in
                let x = try e.input(n, 0), y = try e.output(n, 0)
                if op == "Identity" { e.copy(y, x); return }
                let floatOnly: Set<String> = ["Sqrt", "Exp", "Log", "Sin", "Cos", "Tan", "Asin", "Acos", "Atan", "Sinh", "Cosh", "Asinh", "Acosh",
                                              "Atanh", "Erf", "Sigmoid", "Tanh", "Softplus", "Softsign", "Elu", "Celu", "Selu", "HardSigmoid",
                                              "HardSwish", "Mish", "Swish", "Gelu", "IsNaN", "IsInf", "Floor", "Ceil", "Round", "Reciprocal"]
                if floatOnly.contains(op) && !x.dtype.isFloatingPoint {
                    throw CompileError(node: n, "\(op) on \(x.dtype) is not supported (float32 and float64 are)")
                }
                // An epilogue activation on float32/float64: the runtime's activate(), the same
                // code a fused Conv/Gemm epilogue runs (one definition of each activation).
                if x.dtype == .float || x.dtype == .double, let (name, params) = SofieOps.activation(of: n) {
                    let lit = { (v: Float) in CppOps.literal(Double(v), x.dtype) }
                    let alpha = params.count > 0 ? lit(params[0]) : lit(0), beta = params.count > 1 ? lit(params[1]) : lit(0)
                    e.line("sofie_rt::activate<\(x.ctype)>(\(x.ptr), \(y.ptr), \(e.count(y)), sofie_rt::Act::\(name), \(alpha), \(beta));")
                    return
                }
                guard let expr = unaryExpression(op, n, x.dtype, "a0[i]") else { throw CompileError(node: n, "unsupported") }
                e.elementwise(y, [x]) { _ in expr }
            }
        }
        t["Dropout"] = { e, n in
            let x = try e.input(n, 0), y = try e.output(n, 0)
            if n.inputs.count > 2, let mode = n.input(2) {
                guard let m = mode.initializer?.integers(), m.allSatisfy({ $0 == 0 }) else {
                    throw CompileError(node: n, "training mode (random dropout) is not supported; only inference (training_mode false) is")
                }
            }
            e.copy(y, x)
            if let m = n.output(1) {
                let mask = try e.tensor(m)
                e.line("std::fill_n(\(mask.ptr), \(mask.count), true);")
            }
        }
        for op in binaryOps {
            t[op] = { e, n in
                let a = try e.input(n, 0), b = try e.input(n, 1), y = try e.output(n, 0)
                guard binaryExpression(op, n, a.dtype, "x", "y") != nil else { throw CompileError(node: n, "unsupported") }
                e.elementwise(y, [a, b]) { args in binaryExpression(op, n, a.dtype, args[0], args[1])! }
            }
        }
        for op in ["Max", "Min", "Sum", "Mean"] {
            t[op] = { e, n in
                let ins = try (0..<n.inputs.count).filter { n.input($0) != nil }.map { try e.input(n, $0) }
                let y = try e.output(n, 0)
                let T = y.ctype
                func combine(_ acc: String, _ a: String) -> String {
                    switch op {
                    case "Max": return "std::max<\(T)>(\(acc), \(a))"
                    case "Min": return "std::min<\(T)>(\(acc), \(a))"
                    default: return "\(acc) + \(a)"
                    }
                }
                if ins.count <= 8 {
                    e.elementwise(y, ins) { args in
                        let expr = args.dropFirst().reduce(args[0], combine)
                        return op == "Mean" ? "(\(expr)) / \(T)(\(args.count))" : expr
                    }
                    return
                }
                // Many inputs: one pass per input into the output (each element reads only its
                // own output element), so that the code grows linearly and stays within
                // compilers' nesting limits.
                e.elementwise(y, [ins[0]]) { "\($0[0])" }
                for x in ins.dropFirst() { e.elementwise(y, [y, x]) { combine($0[0], $0[1]) } }
                if op == "Mean" { e.elementwise(y, [y]) { "\($0[0]) / \(T)(\(ins.count))" } }
            }
        }
        t["Where"] = { e, n in
            let c = try e.input(n, 0), a = try e.input(n, 1), b = try e.input(n, 2), y = try e.output(n, 0)
            e.elementwise(y, [c, a, b]) { "\($0[0]) ? \($0[1]) : \($0[2])" }
        }
        t["PRelu"] = { e, n in
            let x = try e.input(n, 0), s = try e.input(n, 1), y = try e.output(n, 0)
            e.elementwise(y, [x, s]) { "(sofie_rt::is_neg(\($0[0])) ? \($0[1]) * \($0[0]) : \($0[0]))" }
        }
        t["Clip"] = { e, n in
            let x = try e.input(n, 0), y = try e.output(n, 0)
            var ins = [x]
            var lo: String?, hi: String?
            if n.inputs.count > 1, let v = n.input(1) { ins.append(try e.tensor(v)); lo = "a\(ins.count - 1)[0]" }
            else if let f = n.float("min") { lo = CppOps.literal(Double(f), x.dtype) }
            if n.inputs.count > 2, let v = n.input(2) { ins.append(try e.tensor(v)); hi = "a\(ins.count - 1)[0]" }
            else if let f = n.float("max") { hi = CppOps.literal(Double(f), x.dtype) }
            let T = x.ctype
            e.block {
                for (k, t) in ins.enumerated() { e.line("const \(t.ctype)* const a\(k) = \(t.ptr);") }
                e.line("\(T)* const y = \(y.ptr);")
                var expr = "a0[i]"
                if let lo { expr = "std::max<\(T)>(\(expr), \(lo))" }
                if let hi { expr = "std::min<\(T)>(\(expr), \(hi))" }
                e.line("for (int64_t i = 0; i < \(e.count(y)); ++i) y[i] = \(expr);")
            }
        }
        // The same bytes as another type of the same width (checked by shape inference).
        t["BitCast"] = { e, n in e.copy(try e.output(n, 0), try e.input(n, 0)) }
        for op in ["Cast", "CastLike"] {
            t[op] = { e, n in
                let x = try e.input(n, 0), y = try e.output(n, 0)
                if x.dtype == y.dtype { e.copy(y, x); return }
                // float16, bfloat16 and float8 are their bits: decode to double (exact), and
                // encode rounding once to nearest even; `saturate` (opset 19) only for float8.
                let fromBits = CppNumberTypes.name(x.dtype) != nil
                if let (lo, hi) = CppQuant.subByteRange(y.dtype) {
                    // int4/uint4/int2/uint2, one value per byte. From a float: truncated, and 0
                    // when that is out of range or NaN (undefined in ONNX; its reference gives 0).
                    // From an integer: the low bits, reinterpreted (two's complement), as ONNX
                    // defines for integer narrowing.
                    let bits = y.dtype == .int4 || y.dtype == .uint4 ? 4 : 2
                    let T = y.ctype
                    if fromBits || x.dtype.isFloatingPoint {
                        e.elementwise(y, [x]) { a in
                            let v = fromBits ? "sofie::to_double(\(a[0]))" : "static_cast<double>(\(a[0]))"
                            return "[](double t) { return t >= \(lo) && t <= \(hi) ? static_cast<\(T)>(t) : \(T)(0); }(std::trunc(\(v)))"
                        }
                    } else {
                        let mask = (1 << bits) - 1, top = 1 << (bits - 1)
                        e.elementwise(y, [x]) { a in
                            let low = "(static_cast<uint32_t>(\(a[0])) & \(mask)u)"
                            return lo < 0 ? "static_cast<\(T)>(static_cast<int32_t>(\(low) ^ \(top)u) - \(top))" : "static_cast<\(T)>(\(low))"
                        }
                    }
                    return
                }
                if y.dtype == .float8e8m0 {
                    // Cast opset 24's round_mode: up (the default), down or nearest.
                    let modes = ["up": 0, "down": 1, "nearest": 2]
                    let name = n.string("round_mode") ?? "up"
                    guard let mode = modes[name] else { throw CompileError(node: n, "round_mode '\(name)' is not one of up, down, nearest") }
                    let saturate = (n.int("saturate") ?? 1) != 0
                    e.elementwise(y, [x]) { a in
                        let v = fromBits ? "sofie::to_float(\(a[0]))" : "static_cast<float>(\(a[0]))"
                        return "sofie::e8m0_from_float(\(v), \(saturate), \(mode))"
                    }
                    return
                }
                if CppNumberTypes.name(y.dtype) != nil {
                    let isFloat8 = y.dtype != .float16 && y.dtype != .bfloat16
                    let saturate = isFloat8 && (n.int("saturate") ?? 1) != 0
                    e.elementwise(y, [x]) { a in
                        // From float (or another reduced type, exactly a float) the fast float path; else through double.
                        x.dtype == .float || fromBits ? "sofie::from_float<\(y.ctype)>(\(fromBits ? "sofie::to_float(\(a[0]))" : a[0]), \(saturate))"
                            : "sofie::from_double<\(y.ctype)>(static_cast<double>(\(a[0])), \(saturate))"
                    }
                    return
                }
                func value(_ a: String) -> String { fromBits ? (y.dtype == .float ? "sofie::to_float(\(a))" : "sofie::to_double(\(a))") : a }
                if y.dtype == .bool { e.elementwise(y, [x]) { "\(value($0[0])) != 0" }; return }
                if fromBits && !y.dtype.isFloatingPoint {
                    let T = y.ctype
                    e.elementwise(y, [x]) { a in
                        let v = value(a[0])
                        return "(std::isnan(\(v)) ? \(T)(0) : (\(v) <= double(std::numeric_limits<\(T)>::lowest()) ? std::numeric_limits<\(T)>::lowest() : (\(v) >= double(std::numeric_limits<\(T)>::max()) ? std::numeric_limits<\(T)>::max() : static_cast<\(T)>(\(v)))))"
                    }
                    return
                }
                if fromBits { e.elementwise(y, [x]) { "static_cast<\(y.ctype)>(\(value($0[0])))" }; return }
                if x.dtype.isFloatingPoint && !y.dtype.isFloatingPoint {
                    // Out-of-range float-to-integer conversion is undefined in C++: saturate, NaN -> 0.
                    let T = y.ctype
                    e.elementwise(y, [x]) { a in
                        "(std::isnan(\(a[0])) ? \(T)(0) : (double(\(a[0])) <= double(std::numeric_limits<\(T)>::lowest()) ? std::numeric_limits<\(T)>::lowest() : (double(\(a[0])) >= double(std::numeric_limits<\(T)>::max()) ? std::numeric_limits<\(T)>::max() : static_cast<\(T)>(\(a[0])))))"
                    }
                    return
                }
                e.elementwise(y, [x]) { "static_cast<\(y.ctype)>(\($0[0]))" }
            }
        }
        return t
    }
}
