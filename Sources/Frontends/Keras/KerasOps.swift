import Foundation
import SofieIR

/// `keras.ops` calls that Keras 3 records in a Functional graph as operation nodes (config
/// entries whose module is `keras.src.ops.numpy` or `keras.src.ops.nn`): `x + 3.0` inside
/// MobileNetV3's hard-swish, `ops.relu6(x)`, `ops.matmul(q, ops.transpose(k))`. Their class
/// names overlap the layers' (`Add`, `Multiply`, `Concatenate`), so the module decides; their
/// arguments mix tensors, numbers and lists, and their shapes include the batch axis.
enum KerasOps {
    enum Arg {
        case tensor(Value, dtype: String?)
        case number(Double)
        case list([Arg])
        case other(Any)
    }

    typealias Lower = (KerasLowering, KerasLayer, [Arg], [String: Arg]) throws -> Value

    static func isOperation(_ d: [String: Any]) -> Bool {
        if let module = d["module"] as? String { return module.hasPrefix("keras.src.ops") }
        // Keras 3's legacy .h5 drops `module`; an operation's config has no `trainable`, which
        // every layer's has.
        let cls = d["class_name"] as? String ?? ""
        return table[cls] != nil && (d["config"] as? [String: Any])?["trainable"] == nil && d["inbound_nodes"] != nil
    }

    /// One recorded argument: a `__keras_tensor__` (resolved by `value`), a number, or a list.
    static func argument(_ x: Any, _ value: ((String, Int, Int)) throws -> Value) throws -> Arg {
        if let t = x as? [String: Any], t["class_name"] as? String == "__keras_tensor__" {
            let c = t["config"] as? [String: Any] ?? [:]
            guard let h = c["keras_history"] as? [Any], let name = h.first as? String else {
                throw ModelLimitError("an argument is a tensor without keras_history")
            }
            func index(_ k: Int) -> Int { h.count > k ? ((h[k] as? NSNumber).flatMap(KerasLayer.exactInt) ?? -1) : 0 }
            return .tensor(try value((name, index(1), index(2))), dtype: c["dtype"] as? String)
        }
        if let n = x as? NSNumber { return .number(n.doubleValue) }
        if let a = x as? [Any] { return .list(try arguments(a, value)) }
        return .other(x)
    }

    static func arguments(_ a: [Any], _ value: ((String, Int, Int)) throws -> Value) throws -> [Arg] {
        try a.map { try argument($0, value) }
    }

    static func lower(_ l: KerasLowering, _ layer: KerasLayer, _ args: [Arg], _ kwargs: [String: Arg]) throws -> Value {
        guard let f = table[layer.className] else {
            throw l.fail(layer, "the keras.ops operation \(layer.className) is not supported; supported operations: \(table.keys.sorted().joined(separator: ", "))")
        }
        do { return try f(l, layer, args, kwargs) } catch let e as ModelLimitError { throw l.fail(layer, e.message) }
    }

    // MARK: operands

    /// The operand at `i` as a graph value: a float32 tensor, or a number as a scalar constant.
    static func operand(_ l: KerasLowering, _ layer: KerasLayer, _ args: [Arg], _ i: Int) throws -> (Value, rank: Int) {
        guard i < args.count else { throw ModelLimitError("expects at least \(i + 1) arguments, the file has \(args.count)") }
        switch args[i] {
        case .tensor(let v, let dtype):
            guard dtype == nil || dtype == "float32" else { throw ModelLimitError("argument \(i + 1) is a \(dtype!) tensor; only float32 is supported") }
            return (v, try l.rank(v, layer))
        case .number(let d):
            return (l.constant([Float(d)], [], layer.name + "_c\(i)"), 0)
        default:
            throw ModelLimitError("argument \(i + 1) should be a tensor or a number")
        }
    }

    static func tensor(_ l: KerasLowering, _ layer: KerasLayer, _ args: [Arg], _ i: Int) throws -> (Value, rank: Int) {
        let (v, r) = try operand(l, layer, args, i)
        guard case .tensor = args[i] else { throw ModelLimitError("argument \(i + 1) should be a tensor") }
        return (v, r)
    }

    /// An integer, list of integers, or null setting of the operation (axis, axes, newshape).
    static func axes(_ layer: KerasLayer, _ key: String) throws -> [Int]? { try layer.axes(key) }

    // MARK: the table

    static let table: [String: Lower] = {
        var t: [String: Lower] = [:]
        func binary(_ op: String) -> Lower {
            { l, layer, a, _ in
                guard a.count == 2 else { throw ModelLimitError("expects 2 arguments, the file has \(a.count)") }
                let (x, rx) = try operand(l, layer, a, 0), (y, ry) = try operand(l, layer, a, 1)
                guard rx > 0 || ry > 0 else { throw ModelLimitError("has no tensor argument") }
                return l.ranked(l.op(op, [x, y], layer.name), max(rx, ry))
            }
        }
        t["Add"] = binary("Add")
        t["Subtract"] = binary("Sub")
        t["Multiply"] = binary("Mul")
        t["Divide"] = binary("Div")
        t["TrueDivide"] = binary("Div")
        t["Maximum"] = binary("Max")
        t["Minimum"] = binary("Min")
        t["Power"] = binary("Pow")
        t["Matmul"] = { l, layer, a, _ in
            let (x, rx) = try tensor(l, layer, a, 0), (y, ry) = try tensor(l, layer, a, 1)
            guard rx >= 2, ry >= 2 else { throw ModelLimitError("matmul of rank-\(rx) and rank-\(ry) tensors is not supported (both at least 2)") }
            return l.ranked(l.op("MatMul", [x, y], layer.name), max(rx, ry))
        }

        func unary(_ op: String, _ attrs: [Attribute] = []) -> Lower {
            { l, layer, a, _ in
                let (x, r) = try tensor(l, layer, a, 0)
                return l.ranked(l.op(op, [x], layer.name, attrs), r)
            }
        }
        t["Absolute"] = unary("Abs")
        t["Abs"] = unary("Abs")
        t["Negative"] = unary("Neg")
        t["Sqrt"] = unary("Sqrt")
        t["Exp"] = unary("Exp")
        t["Log"] = unary("Log")
        t["Tanh"] = unary("Tanh")
        t["Sin"] = unary("Sin")
        t["Cos"] = unary("Cos")
        t["Floor"] = unary("Floor")
        t["Ceil"] = unary("Ceil")
        t["Erf"] = unary("Erf")
        t["Reciprocal"] = unary("Reciprocal")
        t["Square"] = { l, layer, a, _ in
            let (x, r) = try tensor(l, layer, a, 0)
            return l.ranked(l.op("Mul", [x, x], layer.name), r)
        }

        // keras.ops.nn activations: the same ONNX as the layers' activations (Keras 3 forms).
        func activation(_ name: String) -> Lower {
            { l, layer, a, _ in
                let (x, _) = try tensor(l, layer, a, 0)
                return try l.activation(name, x, layer, name: layer.name)
            }
        }
        for (cls, name) in [("Relu", "relu"), ("Relu6", "relu6"), ("Sigmoid", "sigmoid"), ("HardSigmoid", "hard_sigmoid"),
                            ("HardSilu", "hard_silu"), ("HardSwish", "hard_silu"), ("Silu", "silu"), ("Swish", "silu"),
                            ("Softplus", "softplus"), ("Softsign", "softsign"), ("Selu", "selu"), ("Mish", "mish")] {
            t[cls] = activation(name)
        }
        t["Elu"] = { l, layer, a, _ in
            let (x, r) = try tensor(l, layer, a, 0)
            let alpha = layer.double("alpha") ?? 1
            return l.ranked(l.op("Elu", [x], layer.name, [Attribute("alpha", .float(Float(alpha)))]), r)
        }
        t["LeakyRelu"] = { l, layer, a, _ in
            let (x, r) = try tensor(l, layer, a, 0)
            let slope = layer.double("negative_slope") ?? 0.2
            return l.ranked(l.op("LeakyRelu", [x], layer.name, [Attribute("alpha", .float(Float(slope)))]), r)
        }
        t["Gelu"] = { l, layer, a, _ in
            let (x, r) = try tensor(l, layer, a, 0)
            // ops.gelu defaults to the tanh approximation (the gelu activation to the exact form):
            // 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).
            guard layer.bool("approximate") ?? true else { return try l.activation("gelu", x, layer, name: layer.name) }
            let n = layer.name
            func c(_ v: Float, _ s: String) -> Value { l.constant([v], [], n + s) }
            let x3 = l.op("Mul", [l.op("Mul", [x, x], n + "_sq"), x], n + "_cube")
            let inner = l.op("Add", [x, l.op("Mul", [x3, c(0.044715, "_k")], n + "_kx3")], n + "_inner")
            let t = l.op("Tanh", [l.op("Mul", [inner, c(Float((2.0 / Double.pi).squareRoot()), "_s")], n + "_scaled")], n + "_tanh")
            let half = l.op("Mul", [x, c(0.5, "_half")], n + "_halfx")
            return l.ranked(l.op("Mul", [half, l.op("Add", [t, c(1, "_one")], n + "_plus1")], n), r)
        }
        t["Softmax"] = { l, layer, a, _ in
            let (x, r) = try tensor(l, layer, a, 0)
            let axis = try axes(layer, "axis")
            guard let axis, axis.count == 1 else { throw ModelLimitError("softmax over \(axis.map { "\($0)" } ?? "all axes") is not supported (one axis)") }
            return l.ranked(l.op("Softmax", [x], layer.name, [Attribute("axis", .int(Int64(axis[0])))]), r)
        }
        t["LogSoftmax"] = { l, layer, a, _ in
            let (x, r) = try tensor(l, layer, a, 0)
            let axis = try axes(layer, "axis") ?? [-1]
            guard axis.count == 1 else { throw ModelLimitError("log_softmax over several axes is not supported") }
            return l.ranked(l.op("LogSoftmax", [x], layer.name, [Attribute("axis", .int(Int64(axis[0])))]), r)
        }
        t["Clip"] = { l, layer, a, _ in
            let (x, r) = try tensor(l, layer, a, 0)
            guard let lo = layer.double("x_min"), let hi = layer.double("x_max"), !lo.isNaN, !hi.isNaN else {
                throw ModelLimitError("needs numeric x_min and x_max")
            }
            let n = layer.name
            return l.ranked(l.op("Clip", [x, l.constant([Float(lo)], [], n + "_min"), l.constant([Float(hi)], [], n + "_max")], n), r)
        }

        // Shapes: these take the whole shape, batch axis included.
        t["Reshape"] = { l, layer, a, _ in
            let (x, _) = try tensor(l, layer, a, 0)
            guard let shape = try axes(layer, "newshape"), shape.allSatisfy({ $0 >= -1 }), shape.filter({ $0 == -1 }).count <= 1 else {
                throw ModelLimitError("needs a newshape of non-negative sizes and at most one -1")
            }
            return l.ranked(l.op("Reshape", [x, l.ints(shape, layer.name + "_shape")], layer.name), shape.count)
        }
        t["Transpose"] = { l, layer, a, _ in
            let (x, r) = try tensor(l, layer, a, 0)
            let perm = try axes(layer, "axes") ?? Array((0..<r).reversed())
            guard perm.sorted() == Array(0..<r) else { throw ModelLimitError("axes \(perm) are not a permutation of the tensor's \(r) axes") }
            return l.ranked(l.transpose(x, perm, layer.name), r)
        }
        t["Concatenate"] = { l, layer, a, _ in
            guard case .list(let items)? = a.first, !items.isEmpty else { throw ModelLimitError("expects a list of tensors") }
            let xs = try (0..<items.count).map { try tensor(l, layer, items, $0) }
            let axis = try axes(layer, "axis") ?? [0]
            guard axis.count == 1 else { throw ModelLimitError("concatenates along one axis") }
            return l.ranked(l.op("Concat", xs.map(\.0), layer.name, [Attribute("axis", .int(Int64(axis[0])))]), xs[0].rank)
        }
        func reduce(_ op: String) -> Lower {
            { l, layer, a, _ in
                let (x, r) = try tensor(l, layer, a, 0)
                let keep = layer.bool("keepdims") ?? false
                let list = try axes(layer, "axis")
                if let list, list.isEmpty || !list.allSatisfy({ $0 >= -r && $0 < r }) { throw ModelLimitError("axis \(list) is out of range for a rank-\(r) tensor") }
                let count = list.map { Set($0.map { ($0 + r) % r }).count } ?? r
                var inputs: [Value?] = [x]
                if let list { inputs.append(l.ints(list, layer.name + "_axes")) }
                let attrs = [Attribute("keepdims", .int(keep ? 1 : 0))]
                return l.ranked(l.op(op, inputs, layer.name, attrs), keep ? r : r - count)
            }
        }
        // Comparisons and logic: Keras 3 records mask computations this way (Masking's
        // not_equal/any, Embedding(mask_zero)'s not_equal, merged masks' logical_or).
        func compare(_ op: String, negate: Bool = false) -> Lower {
            { l, layer, a, _ in
                guard a.count == 2 else { throw ModelLimitError("expects 2 arguments, the file has \(a.count)") }
                var dtype: DataType = .float
                for arg in a { if case .tensor(_, let d?) = arg { dtype = KerasLowering.dataType(d) ?? .float } }
                func side(_ i: Int) throws -> (Value, Int) {
                    switch a[i] {
                    case .tensor(let v, _): return (v, try l.rank(v, layer))
                    case .number(let d):
                        if dtype == .int32 || dtype == .int64 {
                            guard let k = KerasLayer.exactInt(NSNumber(value: d)), k >= Int(Int32.min), k <= Int(Int32.max) else { throw ModelLimitError("compares an integer tensor with \(d)") }
                            return (l.scalar(k, dtype, layer.name + "_c\(i)"), 0)
                        }
                        return (l.constant([Float(d)], [], layer.name + "_c\(i)"), 0)
                    default: throw ModelLimitError("argument \(i + 1) should be a tensor or a number")
                    }
                }
                let (x, rx) = try side(0), (y, ry) = try side(1)
                var v = l.op(op, [x, y], layer.name + (negate ? "_equal" : ""))
                if negate { v = l.op("Not", [v], layer.name) }
                l.elementTypes[ObjectIdentifier(v)] = .bool
                return l.ranked(v, max(rx, ry))
            }
        }
        t["Equal"] = compare("Equal")
        t["NotEqual"] = compare("Equal", negate: true)
        t["Greater"] = compare("Greater")
        t["GreaterEqual"] = compare("GreaterOrEqual")
        t["Less"] = compare("Less")
        t["LessEqual"] = compare("LessOrEqual")
        func boolean(_ l: KerasLowering, _ layer: KerasLayer, _ a: [Arg], _ i: Int) throws -> (Value, Int) {
            guard i < a.count, case .tensor(let v, let d) = a[i], d == "bool" else { throw ModelLimitError("argument \(i + 1) should be a boolean tensor") }
            return (v, try l.rank(v, layer))
        }
        for (cls, op) in [("LogicalAnd", "And"), ("LogicalOr", "Or"), ("LogicalXor", "Xor")] {
            t[cls] = { l, layer, a, _ in
                let (x, rx) = try boolean(l, layer, a, 0), (y, ry) = try boolean(l, layer, a, 1)
                let v = l.op(op, [x, y], layer.name)
                l.elementTypes[ObjectIdentifier(v)] = .bool
                return l.ranked(v, max(rx, ry))
            }
        }
        t["LogicalNot"] = { l, layer, a, _ in
            let (x, r) = try boolean(l, layer, a, 0)
            let v = l.op("Not", [x], layer.name)
            l.elementTypes[ObjectIdentifier(v)] = .bool
            return l.ranked(v, r)
        }
        // any/all of booleans: the max/min of their 0/1 values.
        for (cls, op) in [("Any", "ReduceMax"), ("All", "ReduceMin")] {
            t[cls] = { l, layer, a, _ in
                let (x, r) = try boolean(l, layer, a, 0)
                let keep = layer.bool("keepdims") ?? false
                let list = try axes(layer, "axis")
                if let list, list.isEmpty || !list.allSatisfy({ $0 >= -r && $0 < r }) { throw ModelLimitError("axis \(list) is out of range for a rank-\(r) tensor") }
                let count = list.map { Set($0.map { ($0 + r) % r }).count } ?? r
                let n = layer.name
                var inputs: [Value?] = [l.op("Cast", [x], n + "_f", [Attribute("to", .int(Int64(DataType.float.rawValue)))])]
                if let list { inputs.append(l.ints(list, n + "_axes")) }
                let reduced = l.op(op, inputs, n + "_reduced", [Attribute("keepdims", .int(keep ? 1 : 0))])
                let v = l.op("Cast", [reduced], n, [Attribute("to", .int(Int64(DataType.bool.rawValue)))])
                l.elementTypes[ObjectIdentifier(v)] = .bool
                return l.ranked(v, keep ? r : r - count)
            }
        }
        t["Mean"] = reduce("ReduceMean")
        t["Sum"] = reduce("ReduceSum")
        t["Max"] = reduce("ReduceMax")
        t["Min"] = reduce("ReduceMin")
        t["Amax"] = reduce("ReduceMax")
        t["Amin"] = reduce("ReduceMin")
        return t
    }()
}
