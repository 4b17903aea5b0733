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
        "Softmax", "Attention", "AdditiveAttention", "MultiHeadAttention", "GroupedQueryAttention", "Concatenate", "Dot",
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
    func propagateMasks(_ layer: KerasLayer, _ inputs: [Value], _ outputs: [Value]) {
        guard isKeras2 else { return }
        let inMasks = inputs.compactMap { masks[ObjectIdentifier($0)] }
        guard !inMasks.isEmpty, let first = outputs.first, masks[ObjectIdentifier(first)] == nil else { return }
        let cls = layer.className
        if KerasLayers.maskPassThrough.contains(cls), let m = masks[ObjectIdentifier(inputs[0])] {
            for o in outputs { masks[ObjectIdentifier(o)] = m }
        } else if KerasLayers.maskMerges.contains(cls) {
            var m = inMasks[0]
            for (i, other) in inMasks.dropFirst().enumerated() { m = op("And", [m, other], layer.name + "_mask\(i)") }
            masks[ObjectIdentifier(first)] = m
        } else if ["SimpleRNN", "LSTM", "GRU", "Bidirectional"].contains(cls), let m = masks[ObjectIdentifier(inputs[0])] {
            let inner = cls == "Bidirectional" ? (layer.config["layer"] as? [String: Any])?["config"] as? [String: Any] ?? [:] : layer.config
            if (inner["return_sequences"] as? NSNumber)?.boolValue == true { masks[ObjectIdentifier(first)] = m }
        }
    }
}
