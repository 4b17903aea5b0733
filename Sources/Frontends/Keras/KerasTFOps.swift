import Foundation
import SofieIR

/// TensorFlow functions that tf-keras (Keras 2) records as layers when a Functional model
/// calls them on Keras tensors: class TFOpLambda with config `function` ("math.exp",
/// "__operators__.add", "nn.relu", "reshape", ...) and SlicingOpLambda for `x[...]`. Each call
/// is one inbound entry `[first argument, node, tensor, kwargs]`; the first argument is a
/// tensor, `_CONSTANT_VALUE` with its value in the tensor slot, or (concat, stack) a list of
/// entries, one per listed tensor; kwargs hold tensors as `[name, node, tensor]`. Tensors
/// include the batch axis.
enum TFOps {
    enum Arg {
        case tensor(Value)
        case constant(Any)
        case tensors([Value])
    }

    typealias Lower = (KerasLowering, KerasLayer, _ first: Arg, _ kwargs: [String: Arg]) throws -> Value

    static func isTFOp(_ className: String) -> Bool { className == "TFOpLambda" || className == "SlicingOpLambda" }

    /// The function a TFOpLambda layer calls ("math.exp"), without the "tf." prefix.
    static func function(_ config: [String: Any]) -> String {
        let f = config["function"] as? String ?? "?"
        return f.hasPrefix("tf.") ? String(f.dropFirst(3)) : f
    }

    /// Lowers every recorded call of one TFOpLambda/SlicingOpLambda layer.
    static func lowerCalls(_ l: KerasLowering, _ layer: KerasLayer, _ d: [String: Any], _ value: ((String, Int, Int)) throws -> Value) throws -> [[Value]] {
        let f = function(layer.config)
        guard let lower = table[f] else {
            throw l.fail(layer, "the TensorFlow function tf.\(f) is not supported; supported: \(table.keys.sorted().map { "tf." + $0 }.joined(separator: ", "))")
        }
        func ref(_ e: [Any]) -> (String, Int, Int)? {
            guard e.count >= 3, let name = e[0] as? String else { return nil }
            func index(_ k: Int) -> Int { (e[k] as? NSNumber).flatMap(KerasLayer.exactInt) ?? -1 }
            return (name, index(1), index(2))
        }
        var results: [[Value]] = []
        for call in d["inbound_nodes"] as? [Any] ?? [] {
            guard let entries = call as? [Any], !entries.isEmpty else { throw l.fail(layer, "has a malformed inbound node (Keras 2 format expected)") }
            // A call is one entry, or (a list argument) a list of entries.
            let list = entries.first is String ? [entries] : entries.compactMap { $0 as? [Any] }
            guard entries.first is String || list.count == entries.count, let head = list.first, head.count >= 3 else { throw l.fail(layer, "has a malformed inbound node") }
            var kwargs: [String: Arg] = [:]
            for (k, v) in head.count > 3 ? (head[3] as? [String: Any] ?? [:]) : [:] {
                if let a = v as? [Any], a.count == 3, a[0] is String, let r = ref(a) { kwargs[k] = .tensor(try value(r)) } else { kwargs[k] = .constant(v) }
            }
            let first: Arg
            if list.count > 1 {
                first = .tensors(try list.map { e in
                    guard let r = ref(e), r.0 != "_CONSTANT_VALUE" else { throw l.fail(layer, "lists a constant among its tensors") }
                    return try value(r)
                })
            } else if head[0] as? String == "_CONSTANT_VALUE" {
                first = .constant(head[2])
            } else {
                guard let r = ref(head) else { throw l.fail(layer, "has a malformed inbound node") }
                first = .tensor(try value(r))
            }
            do { results.append([try lower(l, layer, first, kwargs)]) } catch let e as ModelLimitError { throw l.fail(layer, "tf.\(f): \(e.message)") }
        }
        return results
    }

    // MARK: operands

    static func dtype(_ l: KerasLowering, _ v: Value) -> DataType {
        l.elementTypes[ObjectIdentifier(v)] ?? v.tensorType?.elementType ?? .float
    }

    /// A tensor operand, or a number as a scalar constant of `like`'s element type.
    static func operand(_ l: KerasLowering, _ layer: KerasLayer, _ a: Arg?, like: DataType = .float, _ what: String) throws -> (Value, rank: Int) {
        switch a {
        case .tensor(let v)?: return (v, try l.rank(v, layer))
        case .constant(let c)?:
            if let n = c as? NSNumber {
                let v: Value
                switch like {
                case .int32, .int64:
                    guard let k = KerasLayer.exactInt(n), k >= Int(Int32.min), k <= Int(Int32.max) else { throw ModelLimitError("\(what) \(n) is not an integer of the tensor's type") }
                    v = l.scalar(k, like, layer.name + "_c")
                case .bool: throw ModelLimitError("\(what) is a number where a boolean tensor is expected")
                default: v = l.constant([Float(n.doubleValue)], [], layer.name + "_c")
                }
                return (v, 0)
            }
            if let list = c as? [Any] {
                let values = list.compactMap { ($0 as? NSNumber)?.floatValue }
                guard values.count == list.count, !values.isEmpty, like == .float else { throw ModelLimitError("\(what) is a constant list that is not a list of numbers") }
                return (l.constant(values, [values.count], layer.name + "_c"), 1)
            }
            throw ModelLimitError("\(what) is neither a tensor nor a number")
        default:
            throw ModelLimitError("\(what) is missing")
        }
    }

    static func tensor(_ l: KerasLowering, _ layer: KerasLayer, _ a: Arg?, _ what: String) throws -> (Value, rank: Int) {
        guard case .tensor(let v)? = a else { throw ModelLimitError("\(what) should be a tensor") }
        return (v, try l.rank(v, layer))
    }

    static func ints(_ a: Arg?) -> [Int]? {
        guard case .constant(let c)? = a else { return nil }
        if let n = c as? NSNumber { return KerasLayer.exactInt(n).map { [$0] } }
        guard let list = c as? [Any] else { return nil }
        let v = list.compactMap { ($0 as? NSNumber).flatMap(KerasLayer.exactInt) }
        return v.count == list.count ? v : nil
    }

    static func number(_ a: Arg?) -> Double? {
        guard case .constant(let c)? = a, let n = c as? NSNumber else { return nil }
        return n.doubleValue
    }

    static func flag(_ a: Arg?) -> Bool? {
        guard case .constant(let c)? = a else { return nil }
        return (c as? NSNumber)?.boolValue
    }

    static func axis(_ a: Int, rank r: Int) throws -> Int {
        guard a >= -r, a < r else { throw ModelLimitError("axis \(a) is out of range for a rank-\(r) tensor") }
        return a < 0 ? a + r : a
    }

    // MARK: the table

    static let table: [String: Lower] = {
        var t: [String: Lower] = [:]
        func typed(_ l: KerasLowering, _ v: Value, _ dt: DataType, rank r: Int) -> Value {
            if dt != .float { l.elementTypes[ObjectIdentifier(v)] = dt }
            return l.ranked(v, r)
        }
        func binary(_ op: String, result: DataType? = nil) -> Lower {
            { l, layer, first, kw in
                // The first operand decides the type of a number in the second, and vice versa.
                let like: DataType
                if case .tensor(let v) = first { like = dtype(l, v) } else if case .tensor(let v)? = kw["y"] { like = dtype(l, v) } else { like = .float }
                let (x, rx) = try operand(l, layer, first, like: like, "x")
                let (y, ry) = try operand(l, layer, kw["y"], like: like, "y")
                guard rx > 0 || ry > 0 else { throw ModelLimitError("has no tensor operand") }
                return typed(l, l.op(op, [x, y], layer.name), result ?? like, rank: max(rx, ry))
            }
        }
        for f in ["__operators__.add", "math.add", "add"] { t[f] = binary("Add") }
        for f in ["math.subtract", "subtract", "__operators__.sub"] { t[f] = binary("Sub") }
        for f in ["math.multiply", "multiply", "__operators__.mul"] { t[f] = binary("Mul") }
        for f in ["math.truediv", "math.divide", "__operators__.truediv", "truediv", "divide"] { t[f] = binary("Div") }
        for f in ["math.maximum", "maximum"] { t[f] = binary("Max") }
        for f in ["math.minimum", "minimum"] { t[f] = binary("Min") }
        for f in ["math.pow", "pow", "__operators__.pow"] { t[f] = binary("Pow") }
        for (f, op) in [("greater", "Greater"), ("less", "Less"), ("greater_equal", "GreaterOrEqual"), ("less_equal", "LessOrEqual"), ("equal", "Equal")] {
            t["math." + f] = binary(op, result: .bool)
            t[f] = binary(op, result: .bool)
        }
        t["math.squared_difference"] = { l, layer, first, kw in
            let d = try binary("Sub")(l, layer, first, kw)
            return l.same(l.op("Mul", [d, d], layer.name + "_sq"), d)
        }

        func unary(_ op: String, _ attrs: [Attribute] = []) -> Lower {
            { l, layer, first, _ in
                let (x, r) = try tensor(l, layer, first, "x")
                return typed(l, l.op(op, [x], layer.name, attrs), dtype(l, x), rank: r)
            }
        }
        for (f, op) in [("abs", "Abs"), ("negative", "Neg"), ("exp", "Exp"), ("log", "Log"), ("sqrt", "Sqrt"), ("tanh", "Tanh"),
                        ("sigmoid", "Sigmoid"), ("erf", "Erf"), ("sin", "Sin"), ("cos", "Cos"), ("floor", "Floor"), ("ceil", "Ceil"),
                        ("reciprocal", "Reciprocal"), ("softplus", "Softplus"), ("sign", "Sign"), ("round", "Round")] {
            t["math." + f] = unary(op)
        }
        t["__operators__.neg"] = unary("Neg")
        for (f, op) in [("relu", "Relu"), ("sigmoid", "Sigmoid"), ("tanh", "Tanh"), ("softplus", "Softplus"), ("softsign", "Softsign"),
                        ("selu", "Selu"), ("elu", "Elu")] {
            t["nn." + f] = unary(op)
        }
        t["math.rsqrt"] = { l, layer, first, _ in
            let (x, r) = try tensor(l, layer, first, "x")
            return l.ranked(l.op("Reciprocal", [l.op("Sqrt", [x], layer.name + "_sqrt")], layer.name), r)
        }
        t["math.square"] = { l, layer, first, _ in
            let (x, r) = try tensor(l, layer, first, "x")
            return l.ranked(l.op("Mul", [x, x], layer.name), r)
        }
        func activation(_ name: String) -> Lower {
            { l, layer, first, _ in try l.activation(name, try tensor(l, layer, first, "x").0, layer, name: layer.name) }
        }
        t["nn.relu6"] = activation("relu6")
        for f in ["nn.silu", "nn.swish", "math.silu"] { t[f] = activation("silu") }
        t["nn.leaky_relu"] = { l, layer, first, kw in
            let (x, r) = try tensor(l, layer, first, "features")
            let alpha = number(kw["alpha"]) ?? 0.2
            return l.ranked(l.op("LeakyRelu", [x], layer.name, [Attribute("alpha", .float(Float(alpha)))]), r)
        }
        t["nn.gelu"] = { l, layer, first, kw in
            let (x, r) = try tensor(l, layer, first, "features")
            guard !(flag(kw["approximate"]) ?? false) else {
                // 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), as keras.ops.gelu's default.
                return try KerasOps.table["Gelu"]!(l, KerasLayer(className: "Gelu", name: layer.name, config: ["approximate": true], raw: [:], scope: layer.scope, classIndex: 0), [.tensor(x, dtype: nil)], [:])
            }
            return l.ranked(try l.activation("gelu", x, layer, name: layer.name), r)
        }
        for f in ["nn.softmax", "math.softmax", "nn.log_softmax", "math.log_softmax"] {
            let op = f.hasSuffix("log_softmax") ? "LogSoftmax" : "Softmax"
            t[f] = { l, layer, first, kw in
                let (x, r) = try tensor(l, layer, first, "logits")
                let a = try axis(ints(kw["axis"])?.first ?? -1, rank: r)
                return l.ranked(l.op(op, [x], layer.name, [Attribute("axis", .int(Int64(a)))]), r)
            }
        }
        t["clip_by_value"] = { l, layer, first, kw in
            let (x, r) = try tensor(l, layer, first, "t")
            let (lo, _) = try operand(l, layer, kw["clip_value_min"], "clip_value_min")
            let (hi, _) = try operand(l, layer, kw["clip_value_max"], "clip_value_max")
            // tf.clip_by_value broadcasts its bounds: Max then Min (Clip takes scalars only).
            return l.ranked(l.op("Min", [l.op("Max", [x, lo], layer.name + "_lo"), hi], layer.name), r)
        }

        for (f, op) in [("reduce_mean", "ReduceMean"), ("reduce_sum", "ReduceSum"), ("reduce_max", "ReduceMax"), ("reduce_min", "ReduceMin"),
                        ("reduce_prod", "ReduceProd")] {
            t["math." + f] = { l, layer, first, kw in
                let (x, r) = try tensor(l, layer, first, "input_tensor")
                let keep = flag(kw["keepdims"]) ?? false
                var inputs: [Value?] = [x]
                var removed = r
                if let a = kw["axis"], case .constant(let c) = a, !(c is NSNull) {
                    guard let list = ints(a), !list.isEmpty else { throw ModelLimitError("axis must be an integer or a list of integers") }
                    removed = Set(try list.map { try axis($0, rank: r) }).count
                    inputs.append(l.ints(list, layer.name + "_axes"))
                }
                return l.ranked(l.op(op, inputs, layer.name, [Attribute("keepdims", .int(keep ? 1 : 0))]), keep ? r : r - removed)
            }
        }

        t["reshape"] = { l, layer, first, kw in
            let (x, _) = try tensor(l, layer, first, "tensor")
            guard let shape = ints(kw["shape"]), shape.allSatisfy({ $0 >= -1 }), shape.filter({ $0 == -1 }).count <= 1 else {
                throw ModelLimitError("needs a constant shape of non-negative sizes and at most one -1")
            }
            return typed(l, l.op("Reshape", [x, l.ints(shape, layer.name + "_shape")], layer.name), dtype(l, x), rank: shape.count)
        }
        for f in ["transpose", "compat.v1.transpose", "linalg.matrix_transpose"] {
            t[f] = { l, layer, first, kw in
                let (x, r) = try tensor(l, layer, first, "a")
                if flag(kw["conjugate"]) == true { throw ModelLimitError("conjugate=True is not supported") }
                var perm = ints(kw["perm"]) ?? Array((0..<r).reversed())
                if f == "linalg.matrix_transpose" { perm = Array(0..<max(r - 2, 0)) + [r - 1, r - 2] }
                guard perm.sorted() == Array(0..<r) else { throw ModelLimitError("perm \(perm) is not a permutation of \(r) axes") }
                return typed(l, l.transpose(x, perm, layer.name), dtype(l, x), rank: r)
            }
        }
        t["expand_dims"] = { l, layer, first, kw in
            let (x, r) = try tensor(l, layer, first, "input")
            guard let a = ints(kw["axis"])?.first else { throw ModelLimitError("needs an integer axis") }
            let ax = try axis(a, rank: r + 1)
            return typed(l, l.op("Unsqueeze", [x, l.ints([ax], layer.name + "_axes")], layer.name), dtype(l, x), rank: r + 1)
        }
        for f in ["squeeze", "compat.v1.squeeze"] {
            t[f] = { l, layer, first, kw in
                let (x, r) = try tensor(l, layer, first, "input")
                guard let list = ints(kw["axis"]), !list.isEmpty else { throw ModelLimitError("squeeze without axes is not supported (the squeezed axes must be named)") }
                let axes = Set(try list.map { try axis($0, rank: r) }).sorted()
                return typed(l, l.op("Squeeze", [x, l.ints(axes, layer.name + "_axes")], layer.name), dtype(l, x), rank: r - axes.count)
            }
        }
        t["concat"] = { l, layer, first, kw in
            guard case .tensors(let xs) = first, !xs.isEmpty else { throw ModelLimitError("expects a list of tensors") }
            let r = try l.rank(xs[0], layer)
            guard let a = ints(kw["axis"])?.first else { throw ModelLimitError("needs an integer axis") }
            return typed(l, l.op("Concat", xs, layer.name, [Attribute("axis", .int(Int64(try axis(a, rank: r))))]), dtype(l, xs[0]), rank: r)
        }
        t["stack"] = { l, layer, first, kw in
            guard case .tensors(let xs) = first, !xs.isEmpty else { throw ModelLimitError("expects a list of tensors") }
            let r = try l.rank(xs[0], layer)
            let ax = try axis(ints(kw["axis"])?.first ?? 0, rank: r + 1)
            let lifted = xs.enumerated().map { i, x in l.op("Unsqueeze", [x, l.ints([ax], layer.name + "_axes\(i)")], layer.name + "_lift\(i)") }
            return typed(l, l.op("Concat", lifted, layer.name, [Attribute("axis", .int(Int64(ax)))]), dtype(l, xs[0]), rank: r + 1)
        }
        for f in ["pad", "compat.v1.pad"] {
            t[f] = { l, layer, first, kw in
                let (x, r) = try tensor(l, layer, first, "tensor")
                if case .constant(let m)? = kw["mode"], (m as? String)?.uppercased() != "CONSTANT" { throw ModelLimitError("mode \(m) is not supported (CONSTANT is)") }
                guard case .constant(let p)? = kw["paddings"], let rows = p as? [Any], rows.count == r else { throw ModelLimitError("needs constant paddings, one pair per axis") }
                var begins: [Int] = [], ends: [Int] = []
                for row in rows {
                    guard let pair = ints(.constant(row)), pair.count == 2, pair.allSatisfy({ $0 >= 0 && $0 <= 1 << 20 }) else { throw ModelLimitError("paddings must be pairs of non-negative integers") }
                    begins.append(pair[0]); ends.append(pair[1])
                }
                let fill = l.constant([Float(number(kw["constant_values"]) ?? 0)], [], layer.name + "_fill")
                return l.ranked(l.op("Pad", [x, l.ints(begins + ends, layer.name + "_pads"), fill], layer.name), r)
            }
        }
        for f in ["linalg.matmul", "matmul", "__operators__.matmul"] {
            t[f] = { l, layer, first, kw in
                let (a, ra) = try tensor(l, layer, first, "a")
                let (b, rb) = try tensor(l, layer, kw["b"], "b")
                guard ra >= 2, rb >= 2 else { throw ModelLimitError("multiplies rank-\(ra) and rank-\(rb) tensors (both at least 2 are supported)") }
                let pa = flag(kw["transpose_a"]) == true ? l.transpose(a, Array(0..<(ra - 2)) + [ra - 1, ra - 2], layer.name + "_at") : a
                let pb = flag(kw["transpose_b"]) == true ? l.transpose(b, Array(0..<(rb - 2)) + [rb - 1, rb - 2], layer.name + "_bt") : b
                return l.ranked(l.op("MatMul", [pa, pb], layer.name), max(ra, rb))
            }
        }
        t["cast"] = { l, layer, first, kw in
            let (x, r) = try tensor(l, layer, first, "x")
            guard case .constant(let s)? = kw["dtype"], let name = s as? String, let dt = KerasLowering.dataType(name) else {
                throw ModelLimitError("dtype \(kw["dtype"].map { "\($0)" } ?? "none") is not supported (float32, float64, int32, int64, bool)")
            }
            return typed(l, l.op("Cast", [x], layer.name, [Attribute("to", .int(Int64(dt.rawValue)))]), dt, rank: r)
        }
        t["where"] = { l, layer, first, kw in
            let (c, rc) = try tensor(l, layer, first, "condition")
            guard dtype(l, c) == .bool else { throw ModelLimitError("the condition must be a boolean tensor") }
            let like: DataType
            if case .tensor(let v)? = kw["x"] { like = dtype(l, v) } else if case .tensor(let v)? = kw["y"] { like = dtype(l, v) } else { like = .float }
            let (x, rx) = try operand(l, layer, kw["x"], like: like, "x")
            let (y, ry) = try operand(l, layer, kw["y"], like: like, "y")
            return typed(l, l.op("Where", [c, x, y], layer.name), like, rank: max(rc, rx, ry))
        }
        t["__operators__.getitem"] = getitem
        return t
    }()

    /// x[...] (SlicingOpLambda): slices {start, stop, step} per axis, integers (which drop their
    /// axis), an Ellipsis (the axes it spans are kept whole).
    static func getitem(_ l: KerasLowering, _ layer: KerasLayer, _ first: Arg, _ kw: [String: Arg]) throws -> Value {
        let (x, r) = try tensor(l, layer, first, "tensor")
        guard case .constant(let specAny)? = kw["slice_spec"] else { throw ModelLimitError("has no slice_spec") }
        let spec = (specAny as? [Any]) ?? [specAny]
        var starts: [Int] = [], ends: [Int] = [], axes: [Int] = [], steps: [Int] = [], dropped: [Int] = []
        var pos = 0
        for (k, item) in spec.enumerated() {
            if let s = item as? String, s == "..." || s.lowercased() == "ellipsis" {
                pos += r - (spec.count - 1)
                continue
            }
            if let d = item as? [String: Any], d["class_name"] as? String == "__ellipsis__" || d["ellipsis"] != nil {
                pos += r - (spec.count - 1)
                continue
            }
            guard pos < r else { throw ModelLimitError("slice_spec has more entries than the tensor's \(r) axes") }
            if let n = item as? NSNumber, let i = KerasLayer.exactInt(n) {
                starts.append(i); ends.append(i == -1 ? Int(Int32.max) : i + 1); axes.append(pos); steps.append(1); dropped.append(pos)
            } else if let d = item as? [String: Any] {
                func bound(_ key: String) throws -> Int? {
                    guard let v = d[key], !(v is NSNull) else { return nil }
                    guard let n = v as? NSNumber, let i = KerasLayer.exactInt(n) else { throw ModelLimitError("slice \(k) has a non-integer \(key)") }
                    return i
                }
                let step = try bound("step") ?? 1
                guard step != 0 else { throw ModelLimitError("slice \(k) has step 0") }
                let big = Int(Int32.max)
                let start = try bound("start") ?? (step > 0 ? 0 : -1)
                let stop = try bound("stop") ?? (step > 0 ? big : -big)
                if start != 0 || stop != big || step != 1 {
                    starts.append(start); ends.append(stop); axes.append(pos); steps.append(step)
                }
            } else {
                throw ModelLimitError("slice_spec entry \(k) (\(item)) is not supported (integers, slices and an ellipsis are)")
            }
            pos += 1
        }
        let n = layer.name
        var y = x
        if !axes.isEmpty {
            y = l.op("Slice", [x, l.ints(starts, n + "_starts"), l.ints(ends, n + "_ends"), l.ints(axes, n + "_axes"), l.ints(steps, n + "_steps")],
                     dropped.isEmpty ? n : n + "_slice")
        }
        if !dropped.isEmpty { y = l.op("Squeeze", [y, l.ints(dropped, n + "_squeeze_axes")], n) }
        if axes.isEmpty && dropped.isEmpty { y = l.op("Identity", [x], n) }
        if dtype(l, x) != .float { l.elementTypes[ObjectIdentifier(y)] = dtype(l, x) }
        return l.ranked(y, r - dropped.count)
    }
}

extension KerasLowering {
    /// An integer scalar constant of type `dtype` (int32; anything else is int64).
    func scalar(_ v: Int, _ dtype: DataType, _ name: String) -> Value {
        // The element type decides the stored width (values are copied as their Swift type).
        let t = dtype == .int32 ? Tensor(name: self.name(name), dataType: .int32, dims: [], values: [Int32(truncatingIfNeeded: v)])
                                : Tensor(name: self.name(name), dataType: .int64, dims: [], values: [Int64(v)])
        let value = Value(name: t.name, type: .tensor(t.type), initializer: t)
        graph.addInitializer(value)
        return value
    }
}
