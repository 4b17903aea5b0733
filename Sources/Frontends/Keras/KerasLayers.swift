import Foundation
import SofieIR

/// Keras layer class -> lowering to ONNX nodes. Adding a layer touches this table only.
enum KerasLayers {
    typealias L = KerasLowering

    static let table: [String: L.Lower] = {
        var t: [String: L.Lower] = [:]
        t["Dense"] = dense
        for c in ["Conv1D", "Conv2D", "Conv3D"] { t[c] = conv }
        for c in ["DepthwiseConv1D", "DepthwiseConv2D"] { t[c] = depthwiseAny }
        for c in ["SeparableConv1D", "SeparableConv2D"] { t[c] = separableAny }
        for c in ["Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose"] { t[c] = convTransposeAny }
        for c in ["MaxPooling1D", "MaxPooling2D", "MaxPooling3D", "AveragePooling1D", "AveragePooling2D", "AveragePooling3D"] { t[c] = pool }
        for c in ["GlobalAveragePooling1D", "GlobalAveragePooling2D", "GlobalAveragePooling3D",
                  "GlobalMaxPooling1D", "GlobalMaxPooling2D", "GlobalMaxPooling3D"] { t[c] = globalPool }
        t["Flatten"] = { l, layer, x in
            let r = try l.rank(x[0], layer)
            return [l.ranked(l.op("Flatten", [x[0]], layer.name, [Attribute("axis", .int(1))]), r >= 2 ? 2 : r)]
        }
        t["Reshape"] = { l, layer, x in
            guard let target = try layer.ints("target_shape", count: 0) else { throw l.fail(layer, "has no target_shape") }
            return [l.ranked(l.op("Reshape", [x[0], l.ints([0] + target, layer.name + "_shape")], layer.name), target.count + 1)]
        }
        t["Permute"] = { l, layer, x in
            guard let dims = try layer.ints("dims", count: 0) else { throw l.fail(layer, "has no dims") }
            return [l.ranked(l.transpose(x[0], [0] + dims, layer.name), dims.count + 1)]
        }
        t["BatchNormalization"] = batchNorm
        t["LayerNormalization"] = layerNorm
        t["Activation"] = { l, layer, x in
            [try l.activation(layer.string("activation") ?? "linear", x[0], layer, name: layer.name)]
        }
        t["ReLU"] = reluLayer
        t["LeakyReLU"] = { l, layer, x in
            let alpha = layer.double("negative_slope") ?? layer.double("alpha") ?? 0.3
            return [l.same(l.op("LeakyRelu", [x[0]], layer.name, [Attribute("alpha", .float(Float(alpha)))]), x[0])]
        }
        t["ELU"] = { l, layer, x in
            [l.same(l.op("Elu", [x[0]], layer.name, [Attribute("alpha", .float(Float(layer.double("alpha") ?? 1)))]), x[0])]
        }
        t["Softmax"] = { l, layer, x in
            let axis = try layer.axes("axis")?.first ?? -1
            return [l.same(l.op("Softmax", [x[0]], layer.name, [Attribute("axis", .int(Int64(axis)))]), x[0])]
        }
        t["PReLU"] = prelu
        for c in ["Dropout", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D", "GaussianNoise", "GaussianDropout",
                  "AlphaDropout", "ActivityRegularization", "Identity"] + identityAtInference {
            t[c] = { l, layer, x in [l.same(l.op("Identity", [x[0]], layer.name), x[0])] }
        }
        for (c, op) in [("Add", "Add"), ("Subtract", "Sub"), ("Multiply", "Mul"), ("Maximum", "Max"), ("Minimum", "Min")] {
            t[c] = { l, layer, x in
                guard x.count >= 2 else { throw l.fail(layer, "needs at least two inputs") }
                var acc = x[0]
                for (i, y) in x.dropFirst().enumerated() {
                    acc = l.same(l.op(op, [acc, y], i == x.count - 2 ? layer.name : "\(layer.name)_\(i)"), x[0])
                }
                return [acc]
            }
        }
        t["Average"] = { l, layer, x in [l.same(l.op("Mean", x, layer.name), x[0])] }
        t["Concatenate"] = { l, layer, x in
            let axis = layer.int("axis") ?? -1
            return [l.same(l.op("Concat", x, layer.name, [Attribute("axis", .int(Int64(axis)))]), x[0])]
        }
        t["ZeroPadding1D"] = { l, layer, x in try zeroPad(l, layer, x[0], spatial: 1) }
        t["ZeroPadding2D"] = { l, layer, x in try zeroPad(l, layer, x[0], spatial: 2) }
        t["ZeroPadding3D"] = { l, layer, x in try zeroPad(l, layer, x[0], spatial: 3) }
        t["Cropping1D"] = { l, layer, x in try crop(l, layer, x[0], spatial: 1) }
        t["Cropping2D"] = { l, layer, x in try crop(l, layer, x[0], spatial: 2) }
        t["Cropping3D"] = { l, layer, x in try crop(l, layer, x[0], spatial: 3) }
        t["UpSampling1D"] = { l, layer, x in try upsample(l, layer, x[0], spatial: 1) }
        t["UpSampling2D"] = { l, layer, x in try upsample(l, layer, x[0], spatial: 2) }
        t["UpSampling3D"] = { l, layer, x in try upsample(l, layer, x[0], spatial: 3) }
        t["Rescaling"] = { l, layer, x in
            let scale = l.constant([Float(layer.double("scale") ?? 1)], [], layer.name + "_scale")
            let offset = l.constant([Float(layer.double("offset") ?? 0)], [], layer.name + "_offset")
            let m = l.op("Mul", [x[0], scale], layer.name + "_mul")
            return [l.same(l.op("Add", [m, offset], layer.name), x[0])]
        }
        t["RepeatVector"] = { l, layer, x in
            guard let n = layer.int("n") else { throw l.fail(layer, "has no n") }
            let u = l.op("Unsqueeze", [x[0], l.ints([1], layer.name + "_axes")], layer.name + "_unsq")
            return [l.ranked(l.op("Tile", [u, l.ints([1, n, 1], layer.name + "_repeats")], layer.name), 3)]
        }
        t["Embedding"] = { l, layer, x in
            let w = try l.weights(layer)
            guard w.count == 1, w[0].shape.count == 2 else { throw l.fail(layer, "expected one 2-D embeddings array, got \(w.map(\.shape))") }
            let table = l.constant(w[0].values, w[0].shape, layer.name + "_embeddings")
            let idx = l.op("Cast", [x[0]], layer.name + "_idx", [Attribute("to", .int(Int64(DataType.int64.rawValue)))])
            let y = l.ranked(l.op("Gather", [table, idx], layer.name), try l.rank(x[0], layer) + 1)
            if layer.bool("mask_zero") == true {
                // Index 0 is padding: the mask marks the other steps.
                let zero = l.scalar(0, .int64, layer.name + "_pad_index")
                l.masks[ObjectIdentifier(y)] = l.op("Not", [l.op("Equal", [idx, zero], layer.name + "_is_pad")], layer.name + "_mask")
            }
            return [y]
        }
        t["Normalization"] = normalization
        t["GroupNormalization"] = groupNorm
        t["UnitNormalization"] = unitNorm
        t["RMSNormalization"] = rmsNorm
        t["Dot"] = dot
        t["Masking"] = masking
        for c in ["ConvLSTM1D", "ConvLSTM2D", "ConvLSTM3D"] { t[c] = convLSTM }
        t["MultiHeadAttention"] = multiHeadAttention
        t["LayerScale"] = layerScale
        t["TimeDistributed"] = timeDistributed
        t["CustomScaleLayer"] = customScale
        t["Resizing"] = resizing
        t["CenterCrop"] = centerCrop
        t["Attention"] = dotAttention
        t["AdditiveAttention"] = dotAttention
        t["SimpleRNN"] = { l, layer, x in try recurrent(l, layer, x[0], kind: "RNN", reverseOverride: nil, name: layer.name) }
        t["LSTM"] = { l, layer, x in try recurrent(l, layer, x[0], kind: "LSTM", reverseOverride: nil, name: layer.name) }
        t["GRU"] = { l, layer, x in try recurrent(l, layer, x[0], kind: "GRU", reverseOverride: nil, name: layer.name) }
        t["Bidirectional"] = bidirectional
        return t
    }()

    // MARK: dense and convolutions

    static func dense(_ l: L, _ layer: KerasLayer, _ x: [Value]) throws -> [Value] {
        let w = try l.weights(layer)
        let useBias = layer.bool("use_bias") ?? true
        guard w.count == (useBias ? 2 : 1), w[0].shape.count == 2 else {
            throw l.fail(layer, "expected kernel\(useBias ? " and bias" : ""), the file has \(w.map(\.shape))")
        }
        let units = w[0].shape[1]
        if let declared = layer.int("units"), declared != units {
            throw l.fail(layer, "weight '\(w[0].path)' has shape \(w[0].shape), but the layer declares \(declared) units")
        }
        if useBias { try l.expectWeights(layer, w, [nil, [units]]) }
        let r = try l.rank(x[0], layer)
        var y = l.op("MatMul", [x[0], l.constant(w[0].values, w[0].shape, layer.name + "_kernel")], layer.name + "_matmul")
        if useBias { y = l.op("Add", [y, l.constant(w[1].values, [units], layer.name + "_bias")], layer.name + "_biasadd") }
        l.ranked(y, r)
        return [try l.activation(layer.string("activation") ?? "linear", y, layer, name: layer.name)]
    }

    /// Reorders a row-major array: result[i_perm...] = values[i...]. Walks the destination in
    /// order with an odometer that updates the source offset incrementally (weights of large
    /// models pass through here once, at conversion).
    /// The loops below do not check bounds (release builds), so the arguments are checked here:
    /// `perm` a permutation of the axes and `values` exactly the elements of `shape`.
    static func permute(_ values: [Float], _ shape: [Int], _ perm: [Int]) throws -> ([Float], [Int]) {
        guard perm.count == shape.count, Set(perm) == Set(0..<shape.count) else {
            throw ModelLimitError("a weight of shape \(shape) cannot be permuted by \(perm): its rank is not \(perm.count)")
        }
        guard shape.allSatisfy({ $0 >= 0 }), try Checked.product(shape) == values.count else {
            throw ModelLimitError("a weight of shape \(shape) holds \(values.count) values")
        }
        let n = shape.count - 2
        if n >= 1, perm == [n + 1, n] + Array(0..<n) { return kernelToOIK(values, shape) }
        let out = perm.map { shape[$0] }
        let st = NDArray.strides(shape)
        let srcStride = perm.map { st[$0] }
        let r = out.count
        guard r > 0, !values.isEmpty else { return (values, out) }
        var result = [Float](repeating: 0, count: values.count)
        values.withUnsafeBufferPointer { src in
            result.withUnsafeMutableBufferPointer { dst in
                var idx = [Int](repeating: 0, count: r)
                var off = 0
                let inner = out[r - 1], innerStride = srcStride[r - 1]
                var flat = 0
                while flat < dst.count {
                    var o = off
                    for _ in 0..<inner { dst[flat] = src[o]; flat += 1; o += innerStride }
                    var d = r - 2
                    while d >= 0 {
                        idx[d] += 1
                        off += srcStride[d]
                        if idx[d] < out[d] { break }
                        off -= srcStride[d] * out[d]
                        idx[d] = 0
                        d -= 1
                    }
                    if d < 0 { break }
                }
            }
        }
        return (result, out)
    }

    /// The convolution-kernel case (K..., I, O) -> (O, I, K...), i.e. swapping the outer axes of
    /// [K, I, O], in 32x32 tiles so that reads and writes both stay in cache.
    private static func kernelToOIK(_ values: [Float], _ shape: [Int]) -> ([Float], [Int]) {
        let n = shape.count - 2
        let K = shape[0..<n].reduce(1, *), I = shape[n], O = shape[n + 1]
        var result = [Float](repeating: 0, count: values.count)
        let T = 32
        values.withUnsafeBufferPointer { src in
            result.withUnsafeMutableBufferPointer { dst in
                for k0 in stride(from: 0, to: K, by: T) {
                    for o0 in stride(from: 0, to: O, by: T) {
                        for i in 0..<I {
                            for o in o0..<min(o0 + T, O) {
                                let d = (o * I + i) * K
                                for k in k0..<min(k0 + T, K) { dst[d + k] = src[(k * I + i) * O + o] }
                            }
                        }
                    }
                }
            }
        }
        return (result, [O, I] + Array(shape[0..<n]))
    }

    static func channelsFirst(_ layer: KerasLayer) -> Bool { layer.string("data_format") == "channels_first" }

    /// Wraps a channels-first ONNX op for a channels_last Keras tensor: Transpose in, op, Transpose out.
    static func channelsFirstOp(_ l: L, _ layer: KerasLayer, _ x: Value, _ body: (Value) throws -> Value) throws -> Value {
        let r = try l.rank(x, layer)
        guard r >= 3 else { throw l.fail(layer, "takes a tensor with spatial axes (rank 3 or more), its input has rank \(r)") }
        if channelsFirst(layer) { return l.ranked(try body(x), r) }
        let xt = l.transpose(x, L.toChannelsFirst(r), layer.name + "_to_nchw")
        let y = try body(xt)
        return l.ranked(l.transpose(y, L.toChannelsLast(r), layer.name + "_to_nhwc"), r)
    }

    static func padAttributes(_ l: L, _ layer: KerasLayer, spatial n: Int, kernel: [Int], dilation: [Int]) throws -> [Attribute] {
        switch layer.string("padding") ?? "valid" {
        case "same" where dilation.contains(where: { $0 > 1 }):
            // Keras allows dilation only with stride 1, where 'same' pads (k-1)*d in total,
            // the smaller half first (explicit pads: not every runtime takes SAME with dilation).
            let total = zip(kernel, dilation).map { ($0 - 1) * $1 }
            return [Attribute("pads", .ints((total.map { $0 / 2 } + total.map { $0 - $0 / 2 }).map { Int64($0) }))]
        case "same": return [Attribute("auto_pad", .string(Array("SAME_UPPER".utf8)))]
        case "valid": return [Attribute("auto_pad", .string(Array("VALID".utf8)))]
        case "causal":
            let left = zip(kernel, dilation).map { ($0 - 1) * $1 }
            return [Attribute("pads", .ints((left + [Int](repeating: 0, count: n)).map { Int64($0) }))]
        default: throw l.fail(layer, "padding '\(layer.string("padding") ?? "")' is not supported (same, valid, causal are)")
        }
    }

    static func conv(_ l: L, _ layer: KerasLayer, _ x: [Value]) throws -> [Value] {
        let n = Int(String(layer.className.dropFirst(4).prefix(1))) ?? 2
        let w = try l.weights(layer)
        let useBias = layer.bool("use_bias") ?? true
        guard w.count == (useBias ? 2 : 1), w[0].shape.count == n + 2 else {
            throw l.fail(layer, "expected a \(n + 2)-D kernel\(useBias ? " and a bias" : ""), the file has \(w.map(\.shape))")
        }
        let k = Array(w[0].shape[0..<n])
        let groups = layer.int("groups") ?? 1
        // Keras kernel (k..., in/groups, out) -> ONNX (out, in/groups, k...).
        let (kv, ks) = try permute(w[0].values, w[0].shape, [n + 1, n] + Array(0..<n))
        let kernel = l.constant(kv, ks, layer.name + "_kernel")
        let bias = useBias ? l.constant(w[1].values, w[1].shape, layer.name + "_bias") : nil
        let attrs = try convAttributes(l, layer, spatial: n, kernel: k, group: groups)
        let y = try channelsFirstOp(l, layer, x[0]) { xt in l.op("Conv", [xt, kernel, bias], layer.name + "_conv", attrs) }
        return [try l.activation(layer.string("activation") ?? "linear", y, layer, name: layer.name)]
    }

    // MARK: pooling

    static func pool(_ l: L, _ layer: KerasLayer, _ x: [Value]) throws -> [Value] {
        let n = Int(String(layer.className.filter(\.isNumber))) ?? 2
        let size = try layer.ints("pool_size", count: n) ?? [Int](repeating: 2, count: n)
        let strides = try layer.ints("strides", count: n) ?? size
        let isMax = layer.className.hasPrefix("Max")
        var attrs = [Attribute("kernel_shape", .ints(size.map { Int64($0) })), Attribute("strides", .ints(strides.map { Int64($0) }))]
        attrs += try padAttributes(l, layer, spatial: n, kernel: size, dilation: [Int](repeating: 1, count: n))
        if !isMax { attrs.append(Attribute("count_include_pad", .int(0))) }
        let y = try channelsFirstOp(l, layer, x[0]) { xt in l.op(isMax ? "MaxPool" : "AveragePool", [xt], layer.name, attrs) }
        return [y]
    }

    static func globalPool(_ l: L, _ layer: KerasLayer, _ x: [Value]) throws -> [Value] {
        let r = try l.rank(x[0], layer)
        guard r >= 3 else { throw l.fail(layer, "pools over spatial axes, its input has rank \(r)") }
        if layer.className == "GlobalAveragePooling1D", let mask = l.mask(for: x[0]) {
            return try maskedAveragePool1D(l, layer, x[0], mask)
        }
        let keep = layer.bool("keepdims") ?? false
        let axes = channelsFirst(layer) ? Array(2..<r) : Array(1..<(r - 1))
        let op = layer.className.contains("Max") ? "ReduceMax" : "ReduceMean"
        let y = l.op(op, [x[0], l.ints(axes, layer.name + "_axes")], layer.name, [Attribute("keepdims", .int(keep ? 1 : 0))])
        return [l.ranked(y, keep ? r : 2)]
    }

    // MARK: normalization

    static func batchNorm(_ l: L, _ layer: KerasLayer, _ x: [Value]) throws -> [Value] {
        let r = try l.rank(x[0], layer)
        let axis0 = try layer.axes("axis")?.first ?? -1
        let axis = axis0 < 0 ? axis0 + r : axis0
        let w = try l.weights(layer)
        let center = layer.bool("center") ?? true, scale = layer.bool("scale") ?? true
        guard w.count == 2 + (center ? 1 : 0) + (scale ? 1 : 0) else {
            throw l.fail(layer, "expected \(2 + (center ? 1 : 0) + (scale ? 1 : 0)) weight arrays (gamma, beta, moving mean, moving variance as configured), the file has \(w.count)")
        }
        var i = 0
        let c = w.last!.shape.reduce(1, *)
        let gamma = scale ? w[i].values : [Float](repeating: 1, count: c); if scale { i += 1 }
        let beta = center ? w[i].values : [Float](repeating: 0, count: c); if center { i += 1 }
        let mean = w[i].values, variance = w[i + 1].values
        guard [gamma.count, beta.count, mean.count, variance.count].allSatisfy({ $0 == c }) else { throw l.fail(layer, "its weights have different lengths") }
        let eps = Float(layer.double("epsilon") ?? 1e-3)
        let params = [gamma, beta, mean, variance].enumerated().map { k, v in l.constant(v, [c], layer.name + ["_gamma", "_beta", "_mean", "_variance"][k]) }
        let attrs = [Attribute("epsilon", .float(eps))]
        if axis == 1 || r == 2 {
            return [l.ranked(l.op("BatchNormalization", [x[0]] + params, layer.name, attrs), r)]
        }
        guard axis == r - 1 else { throw l.fail(layer, "axis \(axis0) is not supported (the channel axis must be 1 or the last)") }
        let xt = l.transpose(x[0], L.toChannelsFirst(r), layer.name + "_to_nchw")
        let y = l.op("BatchNormalization", [xt] + params, layer.name + "_bn", attrs)
        return [l.ranked(l.transpose(y, L.toChannelsLast(r), layer.name + "_to_nhwc"), r)]
    }

    static func layerNorm(_ l: L, _ layer: KerasLayer, _ x: [Value]) throws -> [Value] {
        let r = try l.rank(x[0], layer)
        let axes = (try layer.axes("axis") ?? [-1]).map { $0 < 0 ? $0 + r : $0 }.sorted()
        guard axes.count <= r, axes.allSatisfy({ $0 >= 1 && $0 < r }), Set(axes).count == axes.count else {
            throw l.fail(layer, "normalizing over axes \(axes) of a rank-\(r) tensor is not supported")
        }
        if axes != Array((r - axes.count)..<r) { return try layerNormOverAxes(l, layer, x[0], axes: axes, rank: r) }
        let w = try l.weights(layer)
        let center = layer.bool("center") ?? true, scale = layer.bool("scale") ?? true
        guard w.count == (center ? 1 : 0) + (scale ? 1 : 0) else { throw l.fail(layer, "expected gamma/beta weights, the file has \(w.count)") }
        let shape = w.first?.shape ?? []
        let c = shape.reduce(1, *)
        guard c > 0 else { throw l.fail(layer, "cannot tell the normalized size") }
        let gamma = scale ? w[0].values : [Float](repeating: 1, count: c)
        let beta = center ? w[scale ? 1 : 0].values : [Float](repeating: 0, count: c)
        let y = l.op("LayerNormalization", [x[0], l.constant(gamma, shape, layer.name + "_gamma"), l.constant(beta, shape, layer.name + "_beta")],
                     layer.name, [Attribute("axis", .int(Int64(axes[0]))), Attribute("epsilon", .float(Float(layer.double("epsilon") ?? 1e-3)))])
        return [l.ranked(y, r)]
    }

    static func normalization(_ l: L, _ layer: KerasLayer, _ x: [Value]) throws -> [Value] {
        let invert = layer.bool("invert") == true
        let r = try l.rank(x[0], layer)
        var meanValues: [Float], varValues: [Float], shape: [Int]
        func floats(_ k: String) -> [Float]? {
            if let a = layer.config[k] as? [Any] { return a.compactMap { ($0 as? NSNumber)?.floatValue } }
            if let v = layer.config[k] as? NSNumber { return [v.floatValue] }
            return nil
        }
        if let m = floats("mean"), let v = floats("variance"), m.count == v.count {
            // Given in the constructor: stored in the config, broadcast along the last axis.
            meanValues = m; varValues = v; shape = [m.count]
        } else {
            // Adapted: the weights hold mean, variance (and an int count).
            let w = try l.weights(layer)
            guard w.count >= 2 else { throw l.fail(layer, "is not adapted: it has no mean and variance") }
            meanValues = w[0].values; varValues = w[1].values; shape = w[0].shape
        }
        while shape.count < r { shape.insert(1, at: 0) }
        let mean = l.constant(meanValues, shape, layer.name + "_mean")
        let std = varValues.map { max(sqrt($0), 1e-7) }
        let sd = l.constant(std, shape, layer.name + "_std")
        if invert {
            // invert=True maps normalized values back: x * std + mean.
            let scaled = l.op("Mul", [x[0], sd], layer.name + "_scaled")
            return [l.ranked(l.op("Add", [scaled, mean], layer.name), r)]
        }
        let c = l.op("Sub", [x[0], mean], layer.name + "_center")
        return [l.ranked(l.op("Div", [c, sd], layer.name), r)]
    }

    static func prelu(_ l: L, _ layer: KerasLayer, _ x: [Value]) throws -> [Value] {
        let w = try l.weights(layer)
        guard w.count == 1 else { throw l.fail(layer, "expected one alpha array, the file has \(w.count)") }
        let slope = l.constant(w[0].values, w[0].shape, layer.name + "_alpha")
        return [l.same(l.op("PRelu", [x[0], slope], layer.name), x[0])]
    }

    static func reluLayer(_ l: L, _ layer: KerasLayer, _ x: [Value]) throws -> [Value] {
        let maxValue = layer.double("max_value")
        let slope = layer.double("negative_slope") ?? 0
        let threshold = layer.double("threshold") ?? 0
        if slope == 0 && threshold == 0 {
            if let m = maxValue {
                return [l.same(l.op("Clip", [x[0], l.constant([0], [], layer.name + "_min"), l.constant([Float(m)], [], layer.name + "_max")], layer.name), x[0])]
            }
            return [l.same(l.op("Relu", [x[0]], layer.name), x[0])]
        }
        // General form: x >= threshold ? min(x, max) : slope * (x - threshold).
        let th = l.constant([Float(threshold)], [], layer.name + "_threshold")
        var pos = x[0]
        if let m = maxValue { pos = l.op("Min", [x[0], l.constant([Float(m)], [], layer.name + "_max")], layer.name + "_cap") }
        let neg = l.op("Mul", [l.op("Sub", [x[0], th], layer.name + "_shift"), l.constant([Float(slope)], [], layer.name + "_slope")], layer.name + "_neg")
        let cond = l.op("GreaterOrEqual", [x[0], th], layer.name + "_cond")
        return [l.same(l.op("Where", [cond, pos, neg], layer.name), x[0])]
    }

    // MARK: padding, cropping, resizing

    /// Padding or cropping: one integer, (before, after) for one spatial axis, or per axis an
    /// integer or a pair. Every number must be an exact non-negative integer.
    static func pairs(_ layer: KerasLayer, _ key: String, spatial n: Int) throws -> [(Int, Int)]? {
        func int(_ x: Any) throws -> Int {
            guard let v = (x as? NSNumber).flatMap(KerasLayer.exactInt), v >= 0 else {
                throw ModelLimitError("its '\(key)' holds \(x), not a non-negative integer")
            }
            return v
        }
        if let v = layer.config[key] as? NSNumber { let k = try int(v); return [(Int, Int)](repeating: (k, k), count: n) }
        guard let list = layer.config[key] as? [Any] else { return nil }
        if n == 1, list.count == 2, !(list[0] is [Any]) { return [(try int(list[0]), try int(list[1]))] }
        return try list.map { e in
            if let p = e as? [Any] {
                guard p.count == 2 else { throw ModelLimitError("its '\(key)' holds \(p), not a (before, after) pair") }
                return (try int(p[0]), try int(p[1]))
            }
            let v = try int(e)
            return (v, v)
        }
    }

    /// The rank of a tensor a layer over `n` spatial axes reads: batch, n positions, channels.
    static func spatialRank(_ l: L, _ layer: KerasLayer, _ x: Value, spatial n: Int) throws -> Int {
        let r = try l.rank(x, layer)
        guard r == n + 2 else { throw l.fail(layer, "takes a rank-\(n + 2) tensor (batch, \(n) spatial axes, channels), its input has rank \(r)") }
        return r
    }

    static func zeroPad(_ l: L, _ layer: KerasLayer, _ x: Value, spatial n: Int) throws -> [Value] {
        let r = try spatialRank(l, layer, x, spatial: n)
        guard let p = try pairs(layer, "padding", spatial: n), p.count == n else { throw l.fail(layer, "has no valid padding") }
        let first = channelsFirst(layer) ? 2 : 1
        var begins = [Int](repeating: 0, count: r), ends = begins
        for (i, (a, b)) in p.enumerated() { begins[first + i] = a; ends[first + i] = b }
        return [l.ranked(l.op("Pad", [x, l.ints(begins + ends, layer.name + "_pads")], layer.name), r)]
    }

    static func crop(_ l: L, _ layer: KerasLayer, _ x: Value, spatial n: Int) throws -> [Value] {
        let r = try spatialRank(l, layer, x, spatial: n)
        guard let p = try pairs(layer, "cropping", spatial: n), p.count == n else { throw l.fail(layer, "has no valid cropping") }
        let first = channelsFirst(layer) ? 2 : 1
        let axes = (0..<n).map { first + $0 }
        // Slice ends count from the end; INT64_MAX-like large ends mean "to the end".
        let starts = p.map { $0.0 }, ends = p.map { $0.1 == 0 ? Int(Int32.max) : -$0.1 }
        return [l.ranked(l.op("Slice", [x, l.ints(starts, layer.name + "_starts"), l.ints(ends, layer.name + "_ends"), l.ints(axes, layer.name + "_axes")], layer.name), r)]
    }

    static func upsample(_ l: L, _ layer: KerasLayer, _ x: Value, spatial n: Int) throws -> [Value] {
        let r = try spatialRank(l, layer, x, spatial: n)
        let size = try layer.ints("size", count: n) ?? [Int](repeating: 2, count: n)
        guard size.allSatisfy({ $0 >= 1 && $0 <= 1 << 16 }) else { throw l.fail(layer, "size \(size) must be between 1 and 65536") }
        let first = channelsFirst(layer) ? 2 : 1
        var scales = [Float](repeating: 1, count: r)
        for i in 0..<n { scales[first + i] = Float(size[i]) }
        let interpolation = layer.string("interpolation") ?? "nearest"
        var attrs: [Attribute]
        switch interpolation {
        case "nearest": attrs = [Attribute("mode", .string(Array("nearest".utf8))), Attribute("nearest_mode", .string(Array("floor".utf8))),
                                 Attribute("coordinate_transformation_mode", .string(Array("asymmetric".utf8)))]
        case "bilinear": attrs = [Attribute("mode", .string(Array("linear".utf8))), Attribute("coordinate_transformation_mode", .string(Array("half_pixel".utf8)))]
        default: throw l.fail(layer, "interpolation '\(interpolation)' is not supported (nearest, bilinear are)")
        }
        return [l.ranked(l.op("Resize", [x, nil, l.constant(scales, [r], layer.name + "_scales")], layer.name, attrs), r)]
    }

    // MARK: recurrent layers

    /// Keras gate order -> ONNX: LSTM i,f,c,o -> i,o,f,c; GRU z,r,h stays (with reset_after as linear_before_reset).
    static func reorderGates(_ values: [Float], rows: Int, hidden: Int, kind: String) -> [Float] {
        // values: (rows, G*hidden) row-major (Keras kernel layout); returns (G*hidden, rows) for ONNX.
        let g = kind == "LSTM" ? 4 : (kind == "GRU" ? 3 : 1)
        let order = kind == "LSTM" ? [0, 3, 1, 2] : Array(0..<g)
        var out = [Float](repeating: 0, count: values.count)
        for (dstGate, srcGate) in order.enumerated() {
            for h in 0..<hidden {
                for r in 0..<rows {
                    out[(dstGate * hidden + h) * rows + r] = values[r * g * hidden + srcGate * hidden + h]
                }
            }
        }
        return out
    }

    static func recurrent(_ l: L, _ layer: KerasLayer, _ x: Value, kind: String, reverseOverride: Bool?, name: String,
                          weightsOverride: [KerasWeight]? = nil) throws -> [Value] {
        let w = try weightsOverride ?? l.weights(layer)
        guard let units = layer.int("units"), units >= 1, units <= 1 << 20 else { throw l.fail(layer, "has no valid units (1 to 2^20)") }
        let g = kind == "LSTM" ? 4 : (kind == "GRU" ? 3 : 1)
        let useBias = layer.bool("use_bias") ?? true
        // Kernel [input, gates*units], recurrent kernel [units, gates*units], bias [gates*units]
        // (or [2, 3*units] for a GRU with reset_after): anything else would be read out of bounds.
        let biasOK = !useBias || (w.count == 3 && (w[2].shape == [g * units] || (kind == "GRU" && w[2].shape == [2, g * units])))
        guard w.count == (useBias ? 3 : 2), w[0].shape.count == 2, w[0].shape[1] == g * units, w[1].shape == [units, g * units], biasOK else {
            throw l.fail(layer, "expected kernel, recurrent kernel\(useBias ? " and bias" : ""), the file has \(w.map(\.shape))")
        }
        let returnState = layer.bool("return_state") == true
        if returnState && reverseOverride != nil { throw l.fail(layer, "return_state=True inside Bidirectional is not supported") }
        if layer.bool("stateful") == true { throw l.fail(layer, "stateful=True is not supported") }
        let act = layer.string("activation") ?? "tanh"
        let recAct = layer.string("recurrent_activation") ?? "sigmoid"
        func onnxAct(_ s: String) throws -> String {
            switch s {
            case "tanh": return "Tanh"
            case "sigmoid": return "Sigmoid"
            case "relu": return "Relu"
            case "hard_sigmoid": return "HardSigmoid"
            case "linear": return "Affine"
            default: throw l.fail(layer, "activation '\(s)' is not supported in recurrent layers")
            }
        }
        let input = w[0].shape[0]
        let wv = reorderGates(w[0].values, rows: input, hidden: units, kind: kind)
        let rv = reorderGates(w[1].values, rows: units, hidden: units, kind: kind)
        let W = l.constant(wv, [1, g * units, input], name + "_W")
        let R = l.constant(rv, [1, g * units, units], name + "_R")
        var B: Value? = nil
        var attrs = [Attribute("hidden_size", .int(Int64(units)))]
        if kind == "GRU" {
            let resetAfter = layer.bool("reset_after") ?? true
            attrs.append(Attribute("linear_before_reset", .int(resetAfter ? 1 : 0)))
        }
        if useBias {
            var bias = w[2].values
            if kind == "GRU" && w[2].shape.count == 2 {
                // reset_after: (2, 3*units) = input bias, recurrent bias.
                let bi = reorderGates(Array(bias[0..<(g * units)]), rows: 1, hidden: units, kind: kind)
                let br = reorderGates(Array(bias[(g * units)...]), rows: 1, hidden: units, kind: kind)
                bias = bi + br
            } else {
                bias = reorderGates(bias, rows: 1, hidden: units, kind: kind) + [Float](repeating: 0, count: g * units)
            }
            B = l.constant(bias, [1, 2 * g * units], name + "_B")
        }
        let names: [String]
        switch kind {
        case "LSTM": names = [try onnxAct(recAct), try onnxAct(act), try onnxAct(act)]
        case "GRU": names = [try onnxAct(recAct), try onnxAct(act)]
        default: names = [try onnxAct(act)]
        }
        attrs.append(Attribute("activations", .strings(names.map { Array($0.utf8) })))
        if names.contains("HardSigmoid") || names.contains("Affine") {
            // Keras 3 hard_sigmoid is relu6(x+3)/6; Keras 2's is clip(0.2x+0.5).
            let hsAlpha: Float = l.isKeras2 ? 0.2 : 1.0 / 6.0
            attrs.append(Attribute("activation_alpha", .floats(names.map { $0 == "HardSigmoid" ? hsAlpha : 1 })))
            attrs.append(Attribute("activation_beta", .floats(names.map { $0 == "HardSigmoid" ? 0.5 : 0 })))
        }
        let reverse = reverseOverride ?? (layer.bool("go_backwards") ?? false)
        if let mask = l.mask(for: x) {
            // Bidirectional makes masked steps output zeros when it returns sequences.
            let zeroOutput = reverseOverride != nil ? layer.bool("return_sequences") == true : layer.bool("zero_output_for_mask") == true
            return try maskedRecurrent(l, layer, x, mask: mask, kind: kind, inputs: (W, R, B), attributes: attrs, reverse: reverse,
                                       inputOrder: reverseOverride == true, zeroOutput: zeroOutput, returnState: returnState, name: name)
        }
        if reverse { attrs.append(Attribute("direction", .string(Array("reverse".utf8)))) }
        // Keras is batch-major (batch, time, features); ONNX's default layout is time-major.
        let xt = l.transpose(x, [1, 0, 2], name + "_time_major")
        let outs = l.node(kind, [xt, W, R, B], name: name + "_" + kind.lowercased(), attributes: attrs, outputs: kind == "LSTM" ? 3 : 2)
        if layer.bool("return_sequences") == true {
            // Y: (time, 1, batch, units) -> (batch, time, units). Keras' go_backwards returns the
            // sequence in processing order (reversed).
            var y = l.op("Squeeze", [outs[0], l.ints([1], name + "_dir_axis")], name + "_y")
            if reverse && reverseOverride == nil {
                // ONNX aligns a reverse pass's outputs with the input steps; Keras' go_backwards
                // lists them in processing order: flip the time axis.
                y = l.op("Slice", [y, l.ints([-1], name + "_flip_start"), l.ints([Int(Int64.min / 2)], name + "_flip_end"),
                                   l.ints([0], name + "_flip_axis"), l.ints([-1], name + "_flip_step")], name + "_flipped")
            }
            y = l.transpose(y, [1, 0, 2], name)
            return [l.ranked(y, 3)] + (returnState ? states(outs) : [])
        }
        // Y_h: (1, batch, units) -> (batch, units).
        return [l.ranked(l.op("Squeeze", [outs[1], l.ints([0], name + "_dir_axis")], name), 2)] + (returnState ? states(outs) : [])

        // return_state: the final hidden state (and an LSTM's cell state), (batch, units) each.
        func states(_ outs: [Value]) -> [Value] {
            outs.dropFirst().enumerated().map { i, v in
                l.ranked(l.op("Squeeze", [v, l.ints([0], name + "_state\(i)_axis")], name + (i == 0 ? "_state_h" : "_state_c")), 2)
            }
        }
    }

    static func bidirectional(_ l: L, _ layer: KerasLayer, _ x: [Value]) throws -> [Value] {
        guard let inner = layer.config["layer"] as? [String: Any], let cls = inner["class_name"] as? String,
              let icfg = inner["config"] as? [String: Any], ["LSTM", "GRU", "SimpleRNN"].contains(cls) else {
            throw l.fail(layer, "wraps an unsupported layer (LSTM, GRU, SimpleRNN are supported)")
        }
        let mode = layer.string("merge_mode") ?? "concat"
        let w = try l.weights(layer)
        let per = w.count / 2
        guard per >= 2, w.count % 2 == 0 else { throw l.fail(layer, "expected forward and backward weights, the file has \(w.map(\.shape))") }
        // Weight groups sort as backward_layer then forward_layer in .keras files; .h5 lists forward first.
        let backwardFirst = w.first?.path.contains("backward") ?? false
        let fw = backwardFirst ? Array(w[per...]) : Array(w[..<per])
        let bw = backwardFirst ? Array(w[..<per]) : Array(w[per...])
        let kind = cls == "SimpleRNN" ? "RNN" : cls
        let innerLayer = KerasLayer(className: cls, name: layer.name, config: icfg, raw: inner, scope: layer.scope, classIndex: 0)
        let f = try recurrent(l, innerLayer, x[0], kind: kind, reverseOverride: false, name: layer.name + "_forward", weightsOverride: fw)[0]
        // The backward pass's sequence is aligned with the input steps, as Bidirectional wants.
        let b = try recurrent(l, innerLayer, x[0], kind: kind, reverseOverride: true, name: layer.name + "_backward", weightsOverride: bw)[0]
        let r = innerLayer.bool("return_sequences") == true ? 3 : 2
        switch mode {
        case "concat": return [l.ranked(l.op("Concat", [f, b], layer.name, [Attribute("axis", .int(-1))]), r)]
        case "sum": return [l.ranked(l.op("Add", [f, b], layer.name), r)]
        case "mul": return [l.ranked(l.op("Mul", [f, b], layer.name), r)]
        case "ave":
            let s = l.op("Add", [f, b], layer.name + "_sum")
            return [l.ranked(l.op("Mul", [s, l.constant([0.5], [], layer.name + "_half")], layer.name), r)]
        default: throw l.fail(layer, "merge_mode '\(mode)' is not supported")
        }
    }
}

extension KerasLowering {
    /// Gives `v` the rank of `like`.
    func same(_ v: Value, _ like: Value) -> Value {
        if let r = ranks[ObjectIdentifier(like)] { ranks[ObjectIdentifier(v)] = r }
        return v
    }

    /// The built-in Keras activations, as ONNX ops.
    func activation(_ name: String, _ x: Value, _ layer: KerasLayer, name out: String) throws -> Value {
        func unary(_ op: String, _ attrs: [Attribute] = []) -> Value { same(self.op(op, [x], out, attrs), x) }
        func c(_ v: Float) -> Value { constant([v], [], out + "_c") }
        switch name {
        case "linear": return x
        case "relu": return unary("Relu")
        case "relu6": return same(op("Clip", [x, c(0), c(6)], out), x)
        case "sigmoid": return unary("Sigmoid")
        case "hard_sigmoid":
            // Keras 3: relu6(x + 3) / 6; Keras 2: clip(0.2 x + 0.5, 0, 1).
            return unary("HardSigmoid", [Attribute("alpha", .float(isKeras2 ? 0.2 : 1.0 / 6.0)), Attribute("beta", .float(0.5))])
        case "hard_silu", "hard_swish": return unary("HardSwish")
        case "tanh": return unary("Tanh")
        case "softmax": return unary("Softmax", [Attribute("axis", .int(-1))])
        case "log_softmax": return unary("LogSoftmax", [Attribute("axis", .int(-1))])
        case "softplus": return unary("Softplus")
        case "softsign": return unary("Softsign")
        case "elu": return unary("Elu", [Attribute("alpha", .float(1))])
        case "selu": return unary("Selu")
        case "exponential": return unary("Exp")
        case "leaky_relu": return unary("LeakyRelu", [Attribute("alpha", .float(isKeras2 ? 0.3 : 0.2))])
        case "swish", "silu":
            let s = op("Sigmoid", [x], out + "_sigmoid")
            return same(op("Mul", [x, s], out), x)
        case "mish":
            let sp = op("Softplus", [x], out + "_softplus")
            let t = op("Tanh", [sp], out + "_tanh")
            return same(op("Mul", [x, t], out), x)
        case "gelu":
            // Keras' gelu defaults to the exact (erf) form: 0.5 x (1 + erf(x / sqrt 2)).
            let d = op("Div", [x, c(Float(2.0.squareRoot()))], out + "_scaled")
            let e = op("Erf", [d], out + "_erf")
            let p = op("Add", [e, c(1)], out + "_plus1")
            let m = op("Mul", [x, p], out + "_mul")
            return same(op("Mul", [m, c(0.5)], out), x)
        default:
            throw fail(layer, "activation '\(name)' is not supported (relu, relu6, sigmoid, hard_sigmoid, tanh, softmax, log_softmax, softplus, softsign, elu, selu, gelu, swish/silu, mish, exponential, linear, leaky_relu, hard_silu)")
        }
    }
}
