import Foundation
import SofieIR

/// Normalizations, attention, Dot and the 1-D/3-D variants of the convolution layers
/// (registered in `KerasLayers.table`).
extension KerasLayers {
    /// Preprocessing and augmentation layers that are random during training and the identity
    /// at inference (checked against Keras 3 and tf-keras with training=False).
    static let identityAtInference = [
        "RandomFlip", "RandomRotation", "RandomZoom", "RandomTranslation", "RandomContrast", "RandomBrightness",
        "RandomShear", "RandomGrayscale", "RandomHue", "RandomSaturation", "RandomSharpness", "RandomColorJitter",
        "RandomErasing", "RandomGaussianBlur", "RandomInvert", "RandomPosterization", "RandomPerspective",
        "RandomElasticTransform", "RandomColorDegeneration", "Solarization", "AugMix", "CutMix", "MixUp", "RandAugment",
        "RandomHeight", "RandomWidth",
    ]

    // MARK: normalizations

    /// The channel count of a layer's input when no weight tells it (Keras 3 records the
    /// input shape in build_config).
    static func builtChannels(_ layer: KerasLayer, axis: Int) -> Int? {
        guard let shape = (layer.raw["build_config"] as? [String: Any])?["input_shape"] as? [Any] else { return nil }
        let a = axis < 0 ? axis + shape.count : axis
        guard a >= 0, a < shape.count, let n = shape[a] as? NSNumber else { return nil }
        return KerasLayer.exactInt(n)
    }

    static func groupNorm(_ l: L, _ layer: KerasLayer, _ x: [Value]) throws -> [Value] {
        let r = try l.rank(x[0], layer)
        guard r >= 3 else { throw l.fail(layer, "normalizes a rank-\(r) tensor; rank 3 or more (batch, positions..., channels) is supported") }
        let axis0 = try layer.axes("axis")?.first ?? -1
        let axis = axis0 < 0 ? axis0 + r : axis0
        guard axis == r - 1 || axis == 1 else { throw l.fail(layer, "axis \(axis0) is not supported (the channel axis must be 1 or the last)") }
        let groups = layer.int("groups") ?? 32
        let center = layer.bool("center") ?? true, scale = layer.bool("scale") ?? true
        let w = try l.weights(layer)
        guard w.count == (center ? 1 : 0) + (scale ? 1 : 0), w.allSatisfy({ $0.shape.count == 1 }) else {
            throw l.fail(layer, "expected gamma/beta vectors as configured, the file has \(w.map(\.shape))")
        }
        guard let c = w.first?.shape[0] ?? builtChannels(layer, axis: axis) else {
            throw l.fail(layer, "cannot tell its channel count (no gamma, beta or build_config)")
        }
        guard groups > 0, c % groups == 0, w.allSatisfy({ $0.shape[0] == c }) else {
            throw l.fail(layer, "\(groups) groups do not divide \(c) channels")
        }
        let gamma = scale ? w[0].values : [Float](repeating: 1, count: c)
        let beta = center ? w[scale ? 1 : 0].values : [Float](repeating: 0, count: c)
        // GroupNormalization-21 takes per-channel scale and bias (opset 18's were per group).
        l.opset = max(l.opset, 21)
        let attrs = [Attribute("num_groups", .int(Int64(groups))), Attribute("epsilon", .float(Float(layer.double("epsilon") ?? 1e-3)))]
        let params = [l.constant(gamma, [c], layer.name + "_gamma"), l.constant(beta, [c], layer.name + "_beta")]
        if axis == 1 { return [l.ranked(l.op("GroupNormalization", [x[0]] + params, layer.name, attrs), r)] }
        let xt = l.transpose(x[0], L.toChannelsFirst(r), layer.name + "_to_nchw")
        let y = l.op("GroupNormalization", [xt] + params, layer.name + "_gn", attrs)
        return [l.ranked(l.transpose(y, L.toChannelsLast(r), layer.name + "_to_nhwc"), r)]
    }

    /// LayerNormalization over axes that are not the trailing ones (ONNX's op normalizes from
    /// an axis to the end): mean and variance by reductions, gamma and beta on those axes.
    static func layerNormOverAxes(_ l: L, _ layer: KerasLayer, _ x: Value, axes: [Int], rank r: Int) throws -> [Value] {
        let w = try l.weights(layer)
        let center = layer.bool("center") ?? true, scale = layer.bool("scale") ?? true
        guard w.count == (center ? 1 : 0) + (scale ? 1 : 0), w.allSatisfy({ $0.shape.count == axes.count }) else {
            throw l.fail(layer, "expected gamma/beta over axes \(axes), the file has \(w.map(\.shape))")
        }
        var shape = [Int](repeating: 1, count: r)
        if let s = w.first?.shape { for (i, a) in axes.enumerated() { shape[a] = s[i] } }
        let n = layer.name, eps = Float(layer.double("epsilon") ?? 1e-3)
        let ax = l.ints(axes, n + "_axes")
        let mean = l.op("ReduceMean", [x, ax], n + "_mean", [Attribute("keepdims", .int(1))])
        let d = l.op("Sub", [x, mean], n + "_centered")
        let v = l.op("ReduceMean", [l.op("Mul", [d, d], n + "_sq"), ax], n + "_var", [Attribute("keepdims", .int(1))])
        let sd = l.op("Sqrt", [l.op("Add", [v, l.constant([eps], [], n + "_eps")], n + "_var_eps")], n + "_std")
        var y = l.op("Div", [d, sd], (scale || center) ? n + "_norm" : n)
        if scale { y = l.op("Mul", [y, l.constant(w[0].values, shape, n + "_gamma")], center ? n + "_scaled" : n) }
        if center { y = l.op("Add", [y, l.constant(w[scale ? 1 : 0].values, shape, n + "_beta")], n) }
        return [l.ranked(y, r)]
    }

    static func positiveAxes(_ l: L, _ layer: KerasLayer, rank r: Int, default d: [Int]) throws -> [Int] {
        let axes = (try layer.axes("axis") ?? d).map { $0 < 0 ? $0 + r : $0 }
        guard axes.allSatisfy({ $0 >= 1 && $0 < r }), Set(axes).count == axes.count else {
            throw l.fail(layer, "axis \(axes) is not a set of non-batch axes of a rank-\(r) tensor")
        }
        return axes.sorted()
    }

    /// x / max(||x||_2, eps) over `axes`, as Keras computes it: x * min(rsqrt(sum(x^2)), 1/eps).
    static func l2Normalize(_ l: L, _ x: Value, axes: [Int], epsilon: Float, _ name: String) -> Value {
        let sq = l.op("Mul", [x, x], name + "_sq")
        let sum = l.op("ReduceSum", [sq, l.ints(axes, name + "_axes")], name + "_sum", [Attribute("keepdims", .int(1))])
        let inv = l.op("Reciprocal", [l.op("Sqrt", [sum], name + "_norm")], name + "_inv")
        let capped = l.op("Min", [inv, l.constant([1 / epsilon], [], name + "_cap")], name + "_capped")
        return l.op("Mul", [x, capped], name)
    }

    static func unitNorm(_ l: L, _ layer: KerasLayer, _ x: [Value]) throws -> [Value] {
        let r = try l.rank(x[0], layer)
        let axes = try positiveAxes(l, layer, rank: r, default: [-1])
        return [l.ranked(l2Normalize(l, x[0], axes: axes, epsilon: 1e-12, layer.name), r)]
    }

    static func rmsNorm(_ l: L, _ layer: KerasLayer, _ x: [Value]) throws -> [Value] {
        let r = try l.rank(x[0], layer)
        let axes = try positiveAxes(l, layer, rank: r, default: [-1])
        let w = try l.weights(layer)
        guard w.count == 1, w[0].shape.count == axes.count else { throw l.fail(layer, "expected one scale array over axes \(axes), the file has \(w.map(\.shape))") }
        // scale has the normalized axes' sizes; placed on those axes of a rank-r shape.
        var shape = [Int](repeating: 1, count: r)
        for (i, a) in axes.enumerated() { shape[a] = w[0].shape[i] }
        let eps = Float(layer.double("epsilon") ?? 1e-6)
        let sq = l.op("Mul", [x[0], x[0]], layer.name + "_sq")
        let mean = l.op("ReduceMean", [sq, l.ints(axes, layer.name + "_axes")], layer.name + "_mean", [Attribute("keepdims", .int(1))])
        let rms = l.op("Sqrt", [l.op("Add", [mean, l.constant([eps], [], layer.name + "_eps")], layer.name + "_var")], layer.name + "_rms")
        let inv = l.op("Reciprocal", [rms], layer.name + "_inv")
        let y = l.op("Mul", [l.op("Mul", [x[0], inv], layer.name + "_norm"), l.constant(w[0].values, shape, layer.name + "_scale")], layer.name)
        return [l.ranked(y, r)]
    }

    // MARK: wrappers

    /// The static shape of a layer's input: recorded by Keras 3 in the call, or in
    /// build_config, or the graph input's declared shape, or inferred from the graph built so
    /// far (Keras 2 files record none).
    static func inputShape(_ l: L, _ layer: KerasLayer, _ x: Value) -> [Int?]? {
        if let s = l.callShapes.first, let s { return s }
        if let s = (layer.raw["build_config"] as? [String: Any])?["input_shape"] as? [Any] {
            return s.map { ($0 as? NSNumber).flatMap(KerasLayer.exactInt) }
        }
        if let dims = x.tensorType?.shape { return dims.map(\.value) }
        return l.inferredShape(x)
    }

    /// TimeDistributed(inner): the positions axis folded into the batch ([B, T, ...] ->
    /// [B*T, ...]), the inner layer lowered on that, and [B*T, ...] unfolded to [B, T, ...]
    /// (Unsqueeze, then a Reshape whose zeros copy the inner output's dimensions).
    static func timeDistributed(_ l: L, _ layer: KerasLayer, _ x: [Value]) throws -> [Value] {
        guard let inner = layer.config["layer"] as? [String: Any], let cls = inner["class_name"] as? String,
              let icfg = inner["config"] as? [String: Any] else { throw l.fail(layer, "has no inner layer") }
        guard let lower = table[cls], !["Bidirectional", "TimeDistributed", "MultiHeadAttention"].contains(cls) else {
            throw l.fail(layer, "wraps \(cls), which is not supported inside TimeDistributed")
        }
        let r = try l.rank(x[0], layer)
        guard r >= 3, let shape = inputShape(l, layer, x[0]), shape.count == r else {
            throw l.fail(layer, "needs its input's shape (Keras 3 records it; a Keras 2 file only for a model input)")
        }
        let inner0 = Array(shape.dropFirst(2))
        guard let steps = shape[1], steps > 0, inner0.allSatisfy({ ($0 ?? 0) > 0 }) else {
            throw l.fail(layer, "needs static time and feature dimensions, its input is \(shape.map { $0.map(String.init) ?? "None" })")
        }
        let n = layer.name
        let folded = l.ranked(l.op("Reshape", [x[0], l.ints([-1] + inner0.map { $0! }, n + "_fold_shape")], n + "_fold"), r - 1)
        // The inner layer reads the wrapper's weights (they are the inner layer's).
        let innerLayer = KerasLayer(className: cls, name: n, config: icfg, raw: inner, scope: layer.scope, classIndex: layer.classIndex)
        let saved = l.callShapes
        l.callShapes = [[nil] + inner0]
        defer { l.callShapes = saved }
        let ys = try lower(l, innerLayer, [folded])
        guard ys.count == 1 else { throw l.fail(layer, "its inner layer \(cls) has \(ys.count) outputs") }
        let k = try l.rank(ys[0], layer)
        let lifted = l.op("Unsqueeze", [ys[0], l.ints([0], n + "_lift_axis")], n + "_lift")
        let y = l.op("Reshape", [lifted, l.ints([-1, steps] + [Int](repeating: 0, count: k - 1), n + "_unfold_shape")], n)
        return [l.ranked(y, k + 1)]
    }

    // MARK: the helper layers keras.applications defines

    /// LayerScale (ConvNeXt) and CustomScaleLayer (InceptionResNetV2) are classes of
    /// keras.applications, not of keras.layers: a user's own class of the same name means
    /// something else, so only theirs (by module, or by config keys in a legacy .h5) is lowered.
    static func requireApplicationClass(_ l: L, _ layer: KerasLayer, keys: [String]) throws {
        if let module = layer.raw["module"] as? String {
            guard module.hasPrefix("keras.src.applications") || module.hasPrefix("keras.applications") else {
                throw l.fail(layer, "is a custom class from module '\(module)', not keras.applications' \(layer.className); custom classes are not supported")
            }
        }
        for k in keys where layer.config[k] == nil {
            throw l.fail(layer, "has no '\(k)': not keras.applications' \(layer.className)")
        }
    }

    /// ConvNeXt's LayerScale: x * gamma, gamma a per-channel weight.
    static func layerScale(_ l: L, _ layer: KerasLayer, _ x: [Value]) throws -> [Value] {
        try requireApplicationClass(l, layer, keys: ["projection_dim"])
        let w = try l.weights(layer)
        guard w.count == 1, w[0].shape.count == 1 else { throw l.fail(layer, "expected one gamma vector, the file has \(w.map(\.shape))") }
        if let dim = layer.int("projection_dim"), dim != w[0].shape[0] { throw l.fail(layer, "gamma has \(w[0].shape[0]) values for projection_dim \(dim)") }
        return [l.same(l.op("Mul", [x[0], l.constant(w[0].values, w[0].shape, layer.name + "_gamma")], layer.name), x[0])]
    }

    /// InceptionResNetV2's CustomScaleLayer: inputs[0] + inputs[1] * scale.
    static func customScale(_ l: L, _ layer: KerasLayer, _ x: [Value]) throws -> [Value] {
        try requireApplicationClass(l, layer, keys: ["scale"])
        guard x.count == 2, let scale = layer.double("scale") else { throw l.fail(layer, "needs two inputs and a scale") }
        let scaled = l.op("Mul", [x[1], l.constant([Float(scale)], [], layer.name + "_scale")], layer.name + "_scaled")
        return [l.same(l.op("Add", [x[0], scaled], layer.name), x[0])]
    }

    // MARK: Dot and attention

    /// Dot(axes) of two batched tensors (Keras' batch_dot): rank 2 x rank 2 (a row-wise inner
    /// product, [batch, 1]) or rank 3 x rank 3 (a batched matrix product).
    static func dot(_ l: L, _ layer: KerasLayer, _ x: [Value]) throws -> [Value] {
        guard x.count == 2 else { throw l.fail(layer, "needs two inputs, it has \(x.count)") }
        let r0 = try l.rank(x[0], layer), r1 = try l.rank(x[1], layer)
        guard let a = try layer.axes("axes"), a.count == 1 || a.count == 2 else { throw l.fail(layer, "has no valid axes") }
        let ax = a[0] < 0 ? a[0] + r0 : a[0], ay = (a.count == 2 ? a[1] : a[0]) < 0 ? (a.count == 2 ? a[1] : a[0]) + r1 : (a.count == 2 ? a[1] : a[0])
        var p = x[0], q = x[1]
        if layer.bool("normalize") == true {
            p = l2Normalize(l, p, axes: [ax], epsilon: 1e-7, layer.name + "_l2a")
            q = l2Normalize(l, q, axes: [ay], epsilon: 1e-7, layer.name + "_l2b")
        }
        switch (r0, r1) {
        case (2, 2) where ax == 1 && ay == 1:
            let m = l.op("Mul", [p, q], layer.name + "_mul")
            return [l.ranked(l.op("ReduceSum", [m, l.ints([1], layer.name + "_axes")], layer.name, [Attribute("keepdims", .int(1))]), 2)]
        case (3, 3) where (1...2).contains(ax) && (1...2).contains(ay):
            if ax == 1 { p = l.transpose(p, [0, 2, 1], layer.name + "_ta") }
            if ay == 2 { q = l.transpose(q, [0, 2, 1], layer.name + "_tb") }
            return [l.ranked(l.op("MatMul", [p, q], layer.name), 3)]
        default:
            throw l.fail(layer, "Dot over axes \(a) of rank-\(r0) and rank-\(r1) tensors is not supported (rank 2 with axes 1, or rank 3 with axes 1 or 2)")
        }
    }

    /// MultiHeadAttention on [batch, positions, features] tensors: the query, key and value
    /// projections (EinsumDense kernels [features, heads, size]) as MatMuls, the heads split by
    /// Reshape/Transpose, softmax(Q K^T / sqrt(key_dim)) V, and the output projection.
    static func multiHeadAttention(_ l: L, _ layer: KerasLayer, _ x: [Value]) throws -> [Value] {
        let kw = l.callKeywords
        if l.callOptions["return_attention_scores"] as? Bool == true { throw l.fail(layer, "return_attention_scores=True is not supported") }
        // Keras records the default, attention over the positions axis, as [1] for rank 3.
        if let axes = try layer.axes("attention_axes"), axes != [1], axes != [-2] {
            throw l.fail(layer, "attention_axes \(axes) is not supported (the positions axis, 1, is)")
        }
        if layer.bool("use_gate") == true { throw l.fail(layer, "use_gate=True is not supported") }
        if let w = layer.config["sliding_window"], !(w is NSNull) { throw l.fail(layer, "sliding_window attention is not supported") }
        let query = x[0]
        guard let value = x.count > 1 ? x[1] : kw["value"] else { throw l.fail(layer, "is called without a value tensor") }
        let key = x.count > 2 ? x[2] : (kw["key"] ?? value)
        for v in [query, value, key] {
            let r = try l.rank(v, layer)
            guard r == 3 else { throw l.fail(layer, "attends over a rank-\(r) tensor; [batch, positions, features] is supported") }
        }
        // Weights by role (the group or name before the variable): query, key, value, output.
        var found: [String: [KerasWeight]] = [:]
        for w in try l.weights(layer) {
            let parts = w.path.split(separator: "/").map(String.init)
            let owner: String
            if let v = parts.lastIndex(of: "vars"), v > 0 { owner = parts[v - 1] } else { owner = parts.count >= 2 ? parts[parts.count - 2] : "" }
            guard let role = ["query", "key", "value", "output"].first(where: { owner.contains($0) }) else {
                throw l.fail(layer, "has the weight '\(w.path)', which is not a query, key, value or output projection")
            }
            found[role, default: []].append(w)
        }
        func projection(_ role: String, kernelRank: Int) throws -> (kernel: KerasWeight, bias: KerasWeight?) {
            let ws = found[role] ?? []
            guard let k = ws.first(where: { $0.shape.count == kernelRank }), ws.count <= 2 else {
                throw l.fail(layer, "expected a \(kernelRank)-D \(role) kernel (and a bias), the file has \(ws.map(\.shape))")
            }
            return (k, ws.first(where: { $0.shape.count != kernelRank }))
        }
        let q = try projection("query", kernelRank: 3), k = try projection("key", kernelRank: 3)
        let v = try projection("value", kernelRank: 3), o = try projection("output", kernelRank: 3)
        let heads = q.kernel.shape[1], keyDim = q.kernel.shape[2], valueDim = v.kernel.shape[2]
        guard k.kernel.shape[1] == heads, k.kernel.shape[2] == keyDim, v.kernel.shape[1] == heads,
              o.kernel.shape[0] == heads, o.kernel.shape[1] == valueDim, heads > 0, keyDim > 0 else {
            throw l.fail(layer, "its projections do not agree: query \(q.kernel.shape), key \(k.kernel.shape), value \(v.kernel.shape), output \(o.kernel.shape)")
        }
        let outDim = o.kernel.shape[2]
        for (b, expected) in [(q.bias, [heads, keyDim]), (k.bias, [heads, keyDim]), (v.bias, [heads, valueDim]), (o.bias, [outDim])] {
            if let b, b.shape != expected { throw l.fail(layer, "the bias '\(b.path)' has shape \(b.shape), expected \(expected)") }
        }
        let n = layer.name
        // [batch, positions, features] -> [batch, heads, positions, size].
        func split(_ t: Value, _ p: (kernel: KerasWeight, bias: KerasWeight?), size: Int, _ tag: String, keyLayout: Bool) -> Value {
            let inDim = p.kernel.shape[0]
            var y = l.op("MatMul", [t, l.constant(p.kernel.values, [inDim, heads * size], "\(n)_\(tag)_kernel")], "\(n)_\(tag)_matmul")
            if let b = p.bias { y = l.op("Add", [y, l.constant(b.values, [heads * size], "\(n)_\(tag)_bias")], "\(n)_\(tag)_biasadd") }
            let split = l.op("Reshape", [y, l.ints([0, 0, heads, size], "\(n)_\(tag)_split_shape")], "\(n)_\(tag)_split")
            return l.transpose(split, keyLayout ? [0, 2, 3, 1] : [0, 2, 1, 3], "\(n)_\(tag)_heads")
        }
        var qh = split(query, q, size: keyDim, "query", keyLayout: false)
        qh = l.op("Mul", [qh, l.constant([1 / Float(keyDim).squareRoot()], [], n + "_scale")], n + "_query_scaled")
        let kh = split(key, k, size: keyDim, "key", keyLayout: true)
        let vh = split(value, v, size: valueDim, "value", keyLayout: false)
        let scores = l.op("MatMul", [qh, kh], n + "_scores")
        let probs: Value
        if let mask = try attentionMask(l, layer, query: query, value: value, key: key) {
            // [B, T, S] -> [B, 1, T, S]. Keras 3 (its dot_product_attention) replaces masked
            // scores by a large negative number, tf-keras adds -1e9 to them; a fully masked
            // row (a padded query) then attends uniformly in Keras 3.
            let m4 = l.op("Unsqueeze", [mask, l.ints([1], n + "_mask_heads_axis")], n + "_mask_heads")
            let big = l.constant([-1e9], [], n + "_masked_score")
            if l.isKeras2 {
                let off = l.op("Sub", [l.constant([1], [], n + "_one"), m4], n + "_mask_off")
                let masked = l.op("Add", [scores, l.op("Mul", [off, big], n + "_mask_bias")], n + "_masked_scores")
                probs = l.op("Softmax", [masked], n + "_softmax", [Attribute("axis", .int(-1))])
            } else {
                let keep = l.op("Cast", [m4], n + "_mask_keep", [Attribute("to", .int(Int64(DataType.bool.rawValue)))])
                let masked = l.op("Where", [keep, scores, big], n + "_masked_scores")
                probs = l.op("Softmax", [masked], n + "_softmax", [Attribute("axis", .int(-1))])
            }
        } else {
            probs = l.op("Softmax", [scores], n + "_softmax", [Attribute("axis", .int(-1))])
        }
        let ctx = l.transpose(l.op("MatMul", [probs, vh], n + "_context"), [0, 2, 1, 3], n + "_context_t")
        let merged = l.op("Reshape", [ctx, l.ints([0, 0, heads * valueDim], n + "_merge_shape")], n + "_merge")
        var y = l.op("MatMul", [merged, l.constant(o.kernel.values, [heads * valueDim, outDim], n + "_output_kernel")], n + (o.bias == nil ? "" : "_output_matmul"))
        if let b = o.bias { y = l.op("Add", [y, l.constant(b.values, [outDim], n + "_output_bias")], n) }
        return [l.ranked(y, 3)]
    }

    /// MultiHeadAttention's mask as 0/1 floats, [B, T, S] (or [T, S] when only causal): the
    /// query's mask [B, T, 1], the value's and the key's [B, 1, S] (Keras masks of the inputs or
    /// the recorded query_mask/value_mask/key_mask), the attention_mask argument and the causal
    /// mask, multiplied (Keras combines them with AND). nil without any mask.
    static func attentionMask(_ l: L, _ layer: KerasLayer, query: Value, value: Value, key: Value) throws -> Value? {
        let n = layer.name
        let kw = l.callKeywords
        func float(_ v: Value, _ tag: String) -> Value { l.op("Cast", [v], "\(n)_\(tag)_f", [Attribute("to", .int(Int64(DataType.float.rawValue)))]) }
        var parts: [Value] = []
        if let q = kw["query_mask"] ?? l.masks[ObjectIdentifier(query)] {
            parts.append(l.op("Unsqueeze", [float(q, "query_mask"), l.ints([2], n + "_query_mask_axis")], n + "_query_mask_3d"))
        }
        if let v = kw["value_mask"] ?? l.masks[ObjectIdentifier(value)] {
            parts.append(l.op("Unsqueeze", [float(v, "value_mask"), l.ints([1], n + "_value_mask_axis")], n + "_value_mask_3d"))
        }
        if key !== value, let k = kw["key_mask"] ?? l.masks[ObjectIdentifier(key)] {
            parts.append(l.op("Unsqueeze", [float(k, "key_mask"), l.ints([1], n + "_key_mask_axis")], n + "_key_mask_3d"))
        }
        if let a = kw["attention_mask"] {
            guard try l.rank(a, layer) == 3 else { throw l.fail(layer, "its attention_mask should be [batch, queries, keys]") }
            parts.append(float(a, "attention_mask"))
        }
        if l.callOptions["use_causal_mask"] as? Bool == true {
            guard let t = sequenceLength(l, query, position: 0), let s = sequenceLength(l, value, position: 1), t > 0, s > 0, t * s <= 1 << 24 else {
                throw l.fail(layer, "use_causal_mask needs static query and value lengths, which are not known here")
            }
            var lower = [Float](repeating: 0, count: t * s)
            for i in 0..<t { for j in 0..<s where j <= i { lower[i * s + j] = 1 } }
            parts.append(l.constant(lower, [t, s], n + "_causal_mask"))
        }
        guard var m = parts.first else { return nil }
        for (i, p) in parts.dropFirst().enumerated() { m = l.op("Mul", [m, p], "\(n)_mask\(i)") }
        return m
    }

    // MARK: 1-D and 3-D variants of the convolutions

    /// kernel_shape, strides, dilations, group and padding of a Keras convolution over `n`
    /// spatial axes.
    static func convAttributes(_ l: L, _ layer: KerasLayer, spatial n: Int, kernel k: [Int], group: Int) throws -> [Attribute] {
        let strides = try layer.ints("strides", count: n) ?? [Int](repeating: 1, count: n)
        let dil = try layer.ints("dilation_rate", count: n) ?? [Int](repeating: 1, count: n)
        return [Attribute("kernel_shape", .ints(k.map { Int64($0) })), Attribute("strides", .ints(strides.map { Int64($0) })),
                Attribute("dilations", .ints(dil.map { Int64($0) })), Attribute("group", .int(Int64(group)))]
            + (try padAttributes(l, layer, spatial: n, kernel: k, dilation: dil))
    }

    /// DepthwiseConv1D/2D: kernel (k..., in, multiplier) -> ONNX (in*multiplier, 1, k...).
    static func depthwiseKernel(_ l: L, _ layer: KerasLayer, _ w: KerasWeight, spatial n: Int, _ name: String) throws -> (Value, cin: Int, mult: Int) {
        guard w.shape.count == n + 2 else { throw l.fail(layer, "expected a \(n + 2)-D depthwise kernel, the file has \(w.shape)") }
        let cin = w.shape[n], mult = w.shape[n + 1]
        let (kv, _) = try permute(w.values, w.shape, [n, n + 1] + Array(0..<n))
        return (l.constant(kv, [try Checked.mul(cin, mult), 1] + Array(w.shape[0..<n]), name), cin, mult)
    }

    static func depthwiseAny(_ l: L, _ layer: KerasLayer, _ x: [Value]) throws -> [Value] {
        let n = layer.className.contains("1D") ? 1 : 2
        let w = try l.weights(layer)
        let useBias = layer.bool("use_bias") ?? true
        guard w.count == (useBias ? 2 : 1) else { throw l.fail(layer, "expected a depthwise kernel\(useBias ? " and a bias" : ""), the file has \(w.map(\.shape))") }
        let (kernel, cin, _) = try depthwiseKernel(l, layer, w[0], spatial: n, layer.name + "_kernel")
        let k = Array(w[0].shape[0..<n])
        let bias = useBias ? l.constant(w[1].values, w[1].shape, layer.name + "_bias") : nil
        let attrs = try convAttributes(l, layer, spatial: n, kernel: k, group: cin)
        let y = try channelsFirstOp(l, layer, x[0]) { xt in l.op("Conv", [xt, kernel, bias], layer.name + "_conv", attrs) }
        return [try l.activation(layer.string("activation") ?? "linear", y, layer, name: layer.name)]
    }

    static func separableAny(_ l: L, _ layer: KerasLayer, _ x: [Value]) throws -> [Value] {
        let n = layer.className.contains("1D") ? 1 : 2
        let w = try l.weights(layer)
        let useBias = layer.bool("use_bias") ?? true
        guard w.count == (useBias ? 3 : 2), w[1].shape.count == n + 2 else {
            throw l.fail(layer, "expected depthwise and pointwise kernels\(useBias ? " and a bias" : ""), the file has \(w.map(\.shape))")
        }
        let (dk, cin, mult) = try depthwiseKernel(l, layer, w[0], spatial: n, layer.name + "_depthwise")
        guard w[1].shape[n] == cin * mult else { throw l.fail(layer, "its pointwise kernel \(w[1].shape) does not take the \(cin * mult) depthwise channels") }
        let out = w[1].shape[n + 1]
        let (pv, _) = try permute(w[1].values, w[1].shape, [n + 1, n] + Array(0..<n))
        let pk = l.constant(pv, [out, cin * mult] + [Int](repeating: 1, count: n), layer.name + "_pointwise")
        let bias = useBias ? l.constant(w[2].values, w[2].shape, layer.name + "_bias") : nil
        let k = Array(w[0].shape[0..<n])
        let attrs = try convAttributes(l, layer, spatial: n, kernel: k, group: cin)
        let y = try channelsFirstOp(l, layer, x[0]) { xt in
            let d = l.op("Conv", [xt, dk, nil], layer.name + "_dw", attrs)
            return l.op("Conv", [d, pk, bias], layer.name + "_pw", [Attribute("kernel_shape", .ints([Int64]((0..<n).map { _ in 1 })))])
        }
        return [try l.activation(layer.string("activation") ?? "linear", y, layer, name: layer.name)]
    }

    /// Conv1DTranspose/Conv2DTranspose/Conv3DTranspose: Keras kernel (k..., out, in) -> ONNX
    /// ConvTranspose (in, out, k...).
    static func convTransposeAny(_ l: L, _ layer: KerasLayer, _ x: [Value]) throws -> [Value] {
        let n = Int(String(layer.className.filter(\.isNumber))) ?? 2
        let w = try l.weights(layer)
        let useBias = layer.bool("use_bias") ?? true
        guard w.count == (useBias ? 2 : 1), w[0].shape.count == n + 2 else { throw l.fail(layer, "expected a \(n + 2)-D kernel, the file has \(w.map(\.shape))") }
        let k = Array(w[0].shape[0..<n])
        let (kv, ks) = try permute(w[0].values, w[0].shape, [n + 1, n] + Array(0..<n))
        let kernel = l.constant(kv, ks, layer.name + "_kernel")
        let bias = useBias ? l.constant(w[1].values, w[1].shape, layer.name + "_bias") : nil
        let strides = try layer.ints("strides", count: n) ?? [Int](repeating: 1, count: n)
        let dil = try layer.ints("dilation_rate", count: n) ?? [Int](repeating: 1, count: n)
        var attrs = [Attribute("kernel_shape", .ints(k.map { Int64($0) })), Attribute("strides", .ints(strides.map { Int64($0) })),
                     Attribute("dilations", .ints(dil.map { Int64($0) }))]
        let padding = layer.string("padding") ?? "valid"
        guard padding == "same" || padding == "valid" else { throw l.fail(layer, "padding '\(padding)' is not supported (same, valid are)") }
        if let op = try layer.ints("output_padding", count: n) {
            // Keras: length = (in - 1) * stride + kernel - 2 * pad + output_padding (pad = kernel / 2
            // for 'same', 0 for 'valid'); TensorFlow crops the full transposed output by
            // total = 2 * pad - output_padding, the smaller half first. ONNX: explicit pads for a
            // non-negative total, otherwise output_padding (added at the end).
            guard dil.allSatisfy({ $0 == 1 }) else { throw l.fail(layer, "output_padding with dilation is not supported") }
            guard zip(op, strides).allSatisfy({ $0 >= 0 && $0 < $1 }) else { throw l.fail(layer, "output_padding \(op) must be below the strides \(strides)") }
            let total = zip(k, op).map { (padding == "same" ? 2 * ($0 / 2) : 0) - $1 }
            let begin = total.map { max($0, 0) / 2 }, end = total.map { max($0, 0) - max($0, 0) / 2 }
            attrs += [Attribute("pads", .ints((begin + end).map { Int64($0) })), Attribute("output_padding", .ints(total.map { Int64(max(-$0, 0)) }))]
        } else if padding == "same" {
            attrs.append(Attribute("auto_pad", .string(Array("SAME_UPPER".utf8))))
        }
        let y = try channelsFirstOp(l, layer, x[0]) { xt in l.op("ConvTranspose", [xt, kernel, bias], layer.name + "_convt", attrs) }
        return [try l.activation(layer.string("activation") ?? "linear", y, layer, name: layer.name)]
    }
}
