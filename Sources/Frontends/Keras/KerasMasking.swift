import Foundation
import SofieIR

/// Keras masks: `Masking` and `Embedding(mask_zero=True)` attach a boolean [batch, time] mask
/// to their output; layers that support masking pass it on (merges combine masks with AND);
/// recurrent layers skip masked steps (the state is carried over, the output is the previous
/// one, or zeros with zero_output_for_mask), and GlobalAveragePooling1D averages the unmasked
/// steps only. A layer that would use a mask in a way not lowered here is an error; any other
/// layer drops it, as Keras does.
extension KerasLayers {
    /// Layers whose output carries their (single) input's mask unchanged.
    static let maskPassThrough: Set<String> = [
        "Activation", "ActivityRegularization", "AlphaDropout", "BatchNormalization", "Dense", "Dropout", "ELU",
        "GaussianDropout", "GaussianNoise", "GroupNormalization", "Identity", "LayerNormalization", "LeakyReLU",
        "Normalization", "PReLU", "ReLU", "Rescaling", "UnitNormalization", "TimeDistributed", "SpatialDropout1D",
    ]
    static let maskMerges: Set<String> = ["Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum"]
    /// Layers that read the mask (or a mask-dependent result) in ways not lowered: refused.
    static let maskUnsupported: Set<String> = [
        "Softmax", "Attention", "AdditiveAttention", "GroupedQueryAttention", "Concatenate", "Dot",
        "ConvLSTM1D", "ConvLSTM2D", "ConvLSTM3D", "Lambda",
    ]

    /// Masking(mask_value): a step is kept when any feature differs from mask_value; masked
    /// steps are zeroed, and the mask goes with the output.
    static func masking(_ l: L, _ layer: KerasLayer, _ x: [Value]) throws -> [Value] {
        let r = try l.rank(x[0], layer)
        guard r >= 3 else { throw l.fail(layer, "masks [batch, time, features...] tensors, its input has rank \(r)") }
        let n = layer.name
        let value = l.constant([Float(layer.double("mask_value") ?? 0)], [], n + "_mask_value")
        let differs = l.op("Not", [l.op("Equal", [x[0], value], n + "_equal")], n + "_differs")
        let any = l.op("ReduceMax", [l.op("Cast", [differs], n + "_differs_f", [Attribute("to", .int(Int64(DataType.float.rawValue)))]),
                                    l.ints(Array(2..<r), n + "_feature_axes")], n + "_any", [Attribute("keepdims", .int(1))])
        let y = l.ranked(l.op("Mul", [x[0], any], n), r)
        let mask = l.op("Cast", [l.op("Reshape", [any, l.ints([0, 0], n + "_mask_shape")], n + "_mask_f")], n + "_mask",
                        [Attribute("to", .int(Int64(DataType.bool.rawValue)))])
        l.masks[ObjectIdentifier(y)] = mask
        return [y]
    }

    /// GlobalAveragePooling1D of a masked sequence: sum(x * m) / sum(m) over the steps.
    static func maskedAveragePool1D(_ l: L, _ layer: KerasLayer, _ x: Value, _ mask: Value) throws -> [Value] {
        guard try l.rank(x, layer) == 3, !channelsFirst(layer) else { throw l.fail(layer, "averages a masked sequence; only channels_last [batch, steps, features] is supported") }
        let n = layer.name
        let keep = layer.bool("keepdims") ?? false
        let m = l.op("Unsqueeze", [l.op("Cast", [mask], n + "_mask_f", [Attribute("to", .int(Int64(DataType.float.rawValue)))]), l.ints([2], n + "_mask_axis")], n + "_mask_3d")
        let keepAttr = [Attribute("keepdims", .int(keep ? 1 : 0))]
        let s = l.op("ReduceSum", [l.op("Mul", [x, m], n + "_masked"), l.ints([1], n + "_axes")], n + "_sum", keepAttr)
        let c = l.op("ReduceSum", [m, l.ints([1], n + "_count_axes")], n + "_count", keepAttr)
        return [l.ranked(l.op("Div", [s, c], n), keep ? 3 : 2)]
    }

    /// A recurrent layer over a masked sequence, unrolled over its static steps: each step is
    /// a one-step ONNX RNN/GRU/LSTM from the previous states, and the mask picks the new or the
    /// old states and output (Keras' backend.rnn with a mask).
    static func maskedRecurrent(_ l: L, _ layer: KerasLayer, _ x: Value, mask: Value, kind: String, inputs: (W: Value, R: Value, B: Value?),
                                attributes: [Attribute], reverse: Bool, inputOrder: Bool, zeroOutput: Bool, returnState: Bool,
                                name: String) throws -> [Value] {
        guard let shape = inputShape(l, layer, x), shape.count == 3, let steps = shape[1], steps >= 1, steps <= 4096 else {
            throw l.fail(layer, "runs over a masked sequence, which needs a static number of steps (at most 4096)")
        }
        let xt = l.transpose(x, [1, 0, 2], name + "_time_major")
        let mt = l.op("Unsqueeze", [l.transpose(mask, [1, 0], name + "_mask_time_major"), l.ints([2], name + "_mask_axis")], name + "_mask_steps")
        let zero = l.constant([0], [], name + "_zero")
        let stateCount = kind == "LSTM" ? 2 : 1
        var states: [Value]? = nil
        var output: Value? = nil
        var outputs: [(t: Int, v: Value)] = []
        for k in 0..<steps {
            let t = reverse ? steps - 1 - k : k
            let tag = "\(name)_step\(t)"
            let xs = l.op("Slice", [xt, l.ints([t], tag + "_start"), l.ints([t + 1], tag + "_end"), l.ints([0], tag + "_axis")], tag + "_x")
            let ms = l.op("Slice", [mt, l.ints([t], tag + "_mstart"), l.ints([t + 1], tag + "_mend"), l.ints([0], tag + "_maxis")], tag + "_m")
            var ins: [Value?] = [xs, inputs.W, inputs.R, inputs.B]
            if let states { ins += [nil] + states.map { Optional($0) } }
            let outs = l.node(kind, ins, name: tag + "_" + kind.lowercased(), attributes: attributes, outputs: kind == "LSTM" ? 3 : 2)
            let new = Array(outs[1...stateCount])
            let kept = new.enumerated().map { i, v in l.op("Where", [ms, v, states?[i] ?? zero], tag + (i == 0 ? "_h" : "_c")) }
            let out = zeroOutput ? l.op("Where", [ms, new[0], zero], tag + "_out") : kept[0]
            states = kept
            output = out
            outputs.append((t, out))
        }
        if layer.bool("return_sequences") == true {
            let ordered = inputOrder ? outputs.sorted { $0.t < $1.t } : outputs
            let seq = l.op("Concat", ordered.map(\.v), name + "_steps", [Attribute("axis", .int(0))])
            let y = l.ranked(l.transpose(seq, [1, 0, 2], name), 3)
            return [y] + (returnState ? finalStates() : [])
        }
        let y = l.ranked(l.op("Squeeze", [output!, l.ints([0], name + "_axis")], name), 2)
        return [y] + (returnState ? finalStates() : [])

        func finalStates() -> [Value] {
            states!.enumerated().map { i, v in
                l.ranked(l.op("Squeeze", [v, l.ints([0], name + "_state\(i)_axis")], name + (i == 0 ? "_state_h" : "_state_c")), 2)
            }
        }
    }
}

extension KerasLowering {
    /// The mask a layer call applies to `x`: Keras 3 records it as the call's `mask` argument
    /// (computed by keras.ops nodes in the graph); Keras 2 attaches it to tensors, which this
    /// lowering follows (`masks`).
    func mask(for x: Value) -> Value? {
        if let m = callKeywords["mask"] { return m }
        return isKeras2 ? masks[ObjectIdentifier(x)] : nil
    }

    /// Before a layer runs: refuses a masked input to a layer whose use of the mask is not lowered.
    func checkMasks(_ layer: KerasLayer, _ inputs: [Value]) throws {
        guard callKeywords["mask"] != nil || (isKeras2 && inputs.contains(where: { masks[ObjectIdentifier($0)] != nil })) else { return }
        if KerasLayers.maskUnsupported.contains(layer.className) {
            throw fail(layer, "receives a masked tensor (from Masking or Embedding(mask_zero=True)); \(layer.className) with a mask is not supported")
        }
    }

    /// After a layer runs: the masks of its outputs (unless the layer set them).
    /// (Keras 3 also carries masks on tensors at run time: MultiHeadAttention reads its
    /// inputs' masks that way, without a recorded argument. So masks are followed for both
    /// versions; Keras 3 layers with a `mask` argument use the recorded one.)
    func propagateMasks(_ layer: KerasLayer, _ inputs: [Value], _ outputs: [Value]) {
        let inMasks = inputs.compactMap { masks[ObjectIdentifier($0)] }
        guard !inMasks.isEmpty, let first = outputs.first, masks[ObjectIdentifier(first)] == nil else { return }
        let cls = layer.className
        if KerasLayers.maskPassThrough.contains(cls), let m = masks[ObjectIdentifier(inputs[0])] {
            for o in outputs { masks[ObjectIdentifier(o)] = m }
        } else if KerasLayers.maskMerges.contains(cls) {
            var m = inMasks[0]
            for (i, other) in inMasks.dropFirst().enumerated() { m = op("And", [m, other], layer.name + "_mask\(i)") }
            masks[ObjectIdentifier(first)] = m
        } else if cls == "MultiHeadAttention", let m = masks[ObjectIdentifier(inputs[0])] {
            masks[ObjectIdentifier(first)] = m  // the query's mask
        } else if ["SimpleRNN", "LSTM", "GRU", "Bidirectional"].contains(cls), let m = masks[ObjectIdentifier(inputs[0])] {
            let inner = cls == "Bidirectional" ? (layer.config["layer"] as? [String: Any])?["config"] as? [String: Any] ?? [:] : layer.config
            if (inner["return_sequences"] as? NSNumber)?.boolValue == true { masks[ObjectIdentifier(first)] = m }
        }
    }
}

extension KerasLayers {
    /// ConvLSTM1D/2D/3D over [batch, time, spatial..., channels] (or channels_first), unrolled
    /// over its static steps in channels-first layout: the input convolution of every step at
    /// once (time folded into the batch), then per step the recurrent convolution ('same',
    /// stride 1) of the previous h, the gates i, f, c, o (Keras' order), c = f c' + i act(x_c + h_c)
    /// and h = o act(c). Zero initial states: the first step has no recurrent term.
    static func convLSTM(_ l: L, _ layer: KerasLayer, _ x: [Value]) throws -> [Value] {
        guard let n = Int(layer.className.dropFirst("ConvLSTM".count).prefix(1)), (1...3).contains(n) else { throw l.fail(layer, "is not ConvLSTM1D/2D/3D") }
        let r = try l.rank(x[0], layer)
        guard r == n + 3 else { throw l.fail(layer, "takes a rank-\(n + 3) tensor (batch, time, \(n) spatial axes, channels), its input has rank \(r)") }
        if layer.bool("stateful") == true { throw l.fail(layer, "stateful=True is not supported") }
        if l.callKeywords["mask"] != nil || l.callKeywords["initial_state"] != nil { throw l.fail(layer, "masks and initial states are not supported") }
        guard let shape = inputShape(l, layer, x[0]), shape.count == r, let steps = shape[1], steps >= 1, steps <= 4096 else {
            throw l.fail(layer, "needs a static number of steps (at most 4096)")
        }
        let w = try l.weights(layer)
        let useBias = layer.bool("use_bias") ?? true
        guard w.count == (useBias ? 3 : 2), w[0].shape.count == n + 2, w[1].shape.count == n + 2, w[0].shape[n + 1] % 4 == 0 else {
            throw l.fail(layer, "expected kernel, recurrent kernel\(useBias ? " and bias" : ""), the file has \(w.map(\.shape))")
        }
        let filters = w[0].shape[n + 1] / 4
        let k = Array(w[0].shape[0..<n]), rk = Array(w[1].shape[0..<n])
        guard filters >= 1, w[1].shape[n] == filters, w[1].shape[n + 1] == 4 * filters, !useBias || w[2].shape == [4 * filters] else {
            throw l.fail(layer, "its weights do not agree: kernel \(w[0].shape), recurrent kernel \(w[1].shape)\(useBias ? ", bias \(w[2].shape)" : "")")
        }
        let name = layer.name
        let cf = channelsFirst(layer)
        // [B, T, S..., C] -> [B, T, C, S...] -> [B*T, C, S...].
        let spatial = Array(2..<(2 + n))
        let xcf = cf ? x[0] : l.transpose(x[0], [0, 1, r - 1] + spatial, name + "_channels_first")
        let cin = w[0].shape[n]
        guard shape.dropFirst(2).allSatisfy({ ($0 ?? 0) > 0 }) else { throw l.fail(layer, "needs static spatial dimensions") }
        let space = (cf ? Array(shape[3...]) : Array(shape[2..<(r - 1)])).map { $0! }
        let folded = l.op("Reshape", [xcf, l.ints([-1, cin] + space, name + "_fold_shape")], name + "_fold")
        let kernel = try permute(w[0].values, w[0].shape, [n + 1, n] + Array(0..<n))
        let inputAttrs = try convAttributes(l, layer, spatial: n, kernel: k, group: 1)
        var gatesIn = l.op("Conv", [folded, l.constant(kernel.0, kernel.1, name + "_kernel"), useBias ? l.constant(w[2].values, [4 * filters], name + "_bias") : nil],
                           name + "_input_conv", inputAttrs)
        // [B*T, 4F, S'...] -> [B, T, 4F, S'...].
        guard let convShape = l.inferredShape(gatesIn), convShape.count == n + 2, convShape.dropFirst().allSatisfy({ ($0 ?? 0) > 0 }) else {
            throw l.fail(layer, "the output size of its input convolution is not known (input \(space), kernel \(k))")
        }
        gatesIn = l.op("Reshape", [gatesIn, l.ints([-1, steps] + convShape.dropFirst().map { $0! }, name + "_unfold_shape")], name + "_unfold")
        let recurrent = try permute(w[1].values, w[1].shape, [n + 1, n] + Array(0..<n))
        let R = l.constant(recurrent.0, recurrent.1, name + "_recurrent_kernel")
        let pads = rk.map { ($0 - 1) / 2 } + rk.map { $0 - 1 - ($0 - 1) / 2 }
        let recAttrs = [Attribute("kernel_shape", .ints(rk.map { Int64($0) })), Attribute("pads", .ints(pads.map { Int64($0) }))]
        let act = layer.string("activation") ?? "tanh", recAct = layer.string("recurrent_activation") ?? "sigmoid"
        let reverse = layer.bool("go_backwards") ?? false
        var h: Value? = nil, c: Value? = nil
        var outs: [Value] = []
        for s in 0..<steps {
            let t = reverse ? steps - 1 - s : s
            let tag = "\(name)_step\(t)"
            var z = l.op("Squeeze", [l.op("Slice", [gatesIn, l.ints([t], tag + "_start"), l.ints([t + 1], tag + "_end"), l.ints([1], tag + "_axis")], tag + "_slice"),
                                     l.ints([1], tag + "_squeeze_axis")], tag + "_x")
            if let h { z = l.op("Add", [z, l.op("Conv", [h, R], tag + "_recurrent_conv", recAttrs)], tag + "_z") }
            let g = l.node("Split", [z], name: tag + "_gate", attributes: [Attribute("axis", .int(1)), Attribute("num_outputs", .int(4))], outputs: 4)
            for v in g { l.ranked(v, n + 2) }
            let i = try l.activation(recAct, g[0], layer, name: tag + "_i")
            let f = try l.activation(recAct, g[1], layer, name: tag + "_f")
            let cc = try l.activation(act, g[2], layer, name: tag + "_cc")
            let o = try l.activation(recAct, g[3], layer, name: tag + "_o")
            let ic = l.op("Mul", [i, cc], tag + "_ic")
            c = c.map { l.op("Add", [l.op("Mul", [f, $0], tag + "_fc"), ic], tag + "_c") } ?? ic
            l.ranked(c!, n + 2)
            h = l.op("Mul", [o, try l.activation(act, c!, layer, name: tag + "_act_c")], tag + "_h")
            outs.append(h!)
        }
        let toLast = [0] + Array(2..<(n + 2)) + [1]
        func channelsLast(_ v: Value, _ base: String) -> Value { cf ? v : l.transpose(v, toLast, base) }
        var result: [Value]
        if layer.bool("return_sequences") == true {
            let lifted = outs.enumerated().map { i, v in l.op("Unsqueeze", [v, l.ints([1], "\(name)_lift\(i)_axis")], "\(name)_lift\(i)") }
            let seq = l.op("Concat", lifted, name + (cf ? "" : "_sequence"), [Attribute("axis", .int(1))])
            result = [l.ranked(cf ? seq : l.transpose(seq, [0, 1] + Array(3..<(n + 3)) + [2], name), r)]
        } else {
            result = [l.ranked(channelsLast(h!, name), n + 2)]
        }
        if layer.bool("return_state") == true {
            result += [l.ranked(channelsLast(h!, name + "_state_h"), n + 2), l.ranked(channelsLast(c!, name + "_state_c"), n + 2)]
        }
        return result
    }
}
