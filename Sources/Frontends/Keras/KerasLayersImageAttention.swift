import Foundation
import SofieIR

/// The image preprocessing layers that change shapes (Resizing, CenterCrop) and the
/// dot-product attention layers without projections (Attention, AdditiveAttention)
/// (registered in `KerasLayers.table`).
extension KerasLayers {
    // MARK: Resizing and CenterCrop

    /// The (height, width) axes of an image batch and their static sizes.
    static func imageAxes(_ l: L, _ layer: KerasLayer, _ x: Value) throws -> (axes: [Int], sizes: [Int]) {
        let r = try l.rank(x, layer)
        guard r == 4 else { throw l.fail(layer, "takes a batch of images (rank 4), its input has rank \(r)") }
        let axes = channelsFirst(layer) ? [2, 3] : [1, 2]
        guard let shape = inputShape(l, layer, x), shape.count == 4, let h = shape[axes[0]], let w = shape[axes[1]], h > 0, w > 0 else {
            throw l.fail(layer, "needs its input's static height and width, which are not known here")
        }
        return (axes, [h, w])
    }

    static func targetSize(_ l: L, _ layer: KerasLayer) throws -> (Int, Int) {
        guard let h = layer.int("height"), let w = layer.int("width"), (1...(1 << 16)).contains(h), (1...(1 << 16)).contains(w) else {
            throw l.fail(layer, "height and width must be integers between 1 and 65536, the file has \(layer.config["height"] ?? "none") x \(layer.config["width"] ?? "none")")
        }
        return (h, w)
    }

    /// Resizing as Keras 3 computes it with the TensorFlow backend (tf.image.resize without
    /// antialiasing). Bilinear (half-pixel centers) is ONNX's linear/half_pixel Resize, with a
    /// scale per axis (ONNX Runtime 1.23's transpose optimizer breaks Resize's opset-18 `axes`),
    /// rounded so that floor(in * scale) is the target in float and double arithmetic. Nearest
    /// is two Gathers with the source rows and columns TensorFlow picks, computed here in its
    /// float32 arithmetic (floor((o + 0.5) * (in / out)), at most in - 1): exact, where a
    /// float scale would break ties differently. crop_to_aspect_ratio first cuts the centered
    /// box of the target's aspect ratio; pad_to_aspect_ratio first pads both sides with
    /// fill_value (Keras' float32-then-truncate arithmetic in both).
    static func resizing(_ l: L, _ layer: KerasLayer, _ x: [Value]) throws -> [Value] {
        let (axes, size) = try imageAxes(l, layer, x[0])
        let (th, tw) = try targetSize(l, layer)
        let interpolation = layer.string("interpolation") ?? "bilinear"
        guard interpolation == "bilinear" || interpolation == "nearest" else {
            throw l.fail(layer, "interpolation '\(interpolation)' is not supported (bilinear and nearest are)")
        }
        if layer.bool("antialias") == true && interpolation == "bilinear" && (th < size[0] || tw < size[1]) {
            throw l.fail(layer, "antialias=True when downsizing is not supported")
        }
        let crop = layer.bool("crop_to_aspect_ratio") == true, pad = layer.bool("pad_to_aspect_ratio") == true
        let n = layer.name
        var y = x[0]
        var (h, w) = (size[0], size[1])
        let byWidth = Int(Float(w * th) / Float(tw)), byHeight = Int(Float(h * tw) / Float(th))
        if crop {
            let ch = max(min(h, byWidth), 1), cw = max(min(w, byHeight), 1)
            let hs = Int(Float(h - ch) / 2), ws = Int(Float(w - cw) / 2)
            if ch != h || cw != w {
                y = l.op("Slice", [y, l.ints([hs, ws], n + "_crop_starts"), l.ints([hs + ch, ws + cw], n + "_crop_ends"), l.ints(axes, n + "_crop_axes")], n + "_crop")
            }
            (h, w) = (ch, cw)
        } else if pad {
            let ph = max(h, byWidth), pw = max(w, byHeight)
            let hs = Int(Float(ph - h) / 2), ws = Int(Float(pw - w) / 2)
            if hs > 0 || ws > 0 {
                var pads = [Int](repeating: 0, count: 8)
                pads[axes[0]] = hs; pads[axes[0] + 4] = hs
                pads[axes[1]] = ws; pads[axes[1] + 4] = ws
                let fill = l.constant([Float(layer.double("fill_value") ?? 0)], [], n + "_fill")
                y = l.op("Pad", [y, l.ints(pads, n + "_pads"), fill], n + "_pad")
            }
            (h, w) = (h + 2 * hs, w + 2 * ws)
        }
        if interpolation == "nearest" {
            func rows(_ inD: Int, _ outD: Int) -> [Int] {
                let scale = Float(inD) / Float(outD)
                return (0..<outD).map { o in max(0, min(Int(((Float(o) + 0.5) * scale).rounded(.down)), inD - 1)) }
            }
            if th != h { y = l.op("Gather", [y, l.ints(rows(h, th), n + "_rows")], n + (tw != w ? "_rows_gathered" : ""), [Attribute("axis", .int(Int64(axes[0])))]) }
            if tw != w { y = l.op("Gather", [y, l.ints(rows(w, tw), n + "_cols")], n, [Attribute("axis", .int(Int64(axes[1])))]) }
            if th == h && tw == w { y = l.op("Identity", [y], n) }
            return [l.ranked(y, 4)]
        }
        func scale(_ inD: Int, _ outD: Int) -> Float {
            var s = Float(outD) / Float(inD)
            while (Double(inD) * Double(s)).rounded(.down) < Double(outD) || (Float(inD) * s).rounded(.down) < Float(outD) { s = s.nextUp }
            return s
        }
        var scales: [Float] = [1, 1, 1, 1]
        scales[axes[0]] = scale(h, th)
        scales[axes[1]] = scale(w, tw)
        let attrs = [Attribute("mode", .string(Array("linear".utf8))), Attribute("coordinate_transformation_mode", .string(Array("half_pixel".utf8)))]
        return [l.ranked(l.op("Resize", [y, nil, l.constant(scales, [4], n + "_scales")], n, attrs), 4)]
    }

    /// CenterCrop: the centered box (Keras: start = (in - target) // 2). A target larger than
    /// the input makes Keras resize instead (smart_resize), which is refused.
    static func centerCrop(_ l: L, _ layer: KerasLayer, _ x: [Value]) throws -> [Value] {
        let (axes, size) = try imageAxes(l, layer, x[0])
        let (th, tw) = try targetSize(l, layer)
        guard th <= size[0], tw <= size[1] else {
            throw l.fail(layer, "crops \(size[0])x\(size[1]) images to \(th)x\(tw); a target larger than the input (which Keras resizes instead) is not supported")
        }
        let hs = (size[0] - th) / 2, ws = (size[1] - tw) / 2
        let n = layer.name
        return [l.ranked(l.op("Slice", [x[0], l.ints([hs, ws], n + "_starts"), l.ints([hs + th, ws + tw], n + "_ends"), l.ints(axes, n + "_axes")], n), 4)]
    }

    // MARK: Attention and AdditiveAttention

    /// The static length (axis 1) of a [batch, positions, features] tensor passed at `position`
    /// of the call: recorded by Keras 3, or inferred from the graph built so far.
    static func sequenceLength(_ l: L, _ v: Value, position i: Int) -> Int? {
        if l.callShapes.count > i, let s = l.callShapes[i], s.count == 3, let t = s[1] { return t }
        return l.inferredShape(v)?[1]
    }

    /// Attention (Luong: scores q.k, or with score_mode concat sum(tanh(q + k))) and
    /// AdditiveAttention (Bahdanau: sum(scale * tanh(q + k))) over [batch, positions, dim]
    /// inputs [query, value(, key)], then softmax over the value positions and the weighted
    /// sum of the values. use_causal_mask adds Keras' -1e9 to the scores above the diagonal;
    /// return_attention_scores adds the softmax weights as a second output.
    static func dotAttention(_ l: L, _ layer: KerasLayer, _ x: [Value]) throws -> [Value] {
        let additive = layer.className == "AdditiveAttention"
        if l.callKeywords["mask"] != nil { throw l.fail(layer, "is called with a mask; attention masks are not supported") }
        guard x.count == 2 || x.count == 3 else { throw l.fail(layer, "takes [query, value] or [query, value, key], it is called with \(x.count) tensors") }
        for v in x {
            let r = try l.rank(v, layer)
            guard r == 3 else { throw l.fail(layer, "attends over a rank-\(r) tensor; [batch, positions, dim] is supported") }
        }
        let (q, v) = (x[0], x[1])
        let k = x.count == 3 ? x[2] : v
        let n = layer.name
        let useScale = layer.bool("use_scale") ?? (additive ? true : false)
        let concat = !additive && (layer.string("score_mode") ?? "dot") == "concat"
        let w = try l.weights(layer)
        // Weights in the order the layer builds them (a .keras file numbers them).
        let expected = (useScale ? ["scale"] : []) + (concat ? ["concat_score_weight"] : [])
        guard w.count == expected.count else {
            throw l.fail(layer, "expected the weights \(expected), the file has \(w.count) (\(w.map(\.path)))")
        }
        func weight(_ key: String) throws -> KerasWeight { w[expected.firstIndex(of: key)!] }
        var scores: Value
        if additive || concat {
            // [B, Tq, 1, D] + [B, 1, Tv, D] -> sum over D.
            let qe = l.op("Unsqueeze", [q, l.ints([2], n + "_q_axis")], n + "_q_expanded")
            let ke = l.op("Unsqueeze", [k, l.ints([1], n + "_k_axis")], n + "_k_expanded")
            var s = l.op("Add", [qe, ke], n + "_sum")
            if concat && useScale {
                let scale = try weight("scale")
                guard scale.values.count == 1 else { throw l.fail(layer, "scale has shape \(scale.shape), expected a scalar") }
                s = l.op("Mul", [s, l.constant(scale.values, [], n + "_scale")], n + "_scaled")
            }
            var t = l.op("Tanh", [s], n + "_tanh")
            if additive && useScale {
                let scale = try weight("scale")
                guard scale.shape.count == 1 else { throw l.fail(layer, "scale has shape \(scale.shape), expected [dim]") }
                t = l.op("Mul", [t, l.constant(scale.values, scale.shape, n + "_scale")], n + "_scaled")
            }
            scores = l.op("ReduceSum", [t, l.ints([-1], n + "_dim_axis")], n + "_scores", [Attribute("keepdims", .int(0))])
            if concat {
                let csw = try weight("concat_score_weight")
                guard csw.values.count == 1 else { throw l.fail(layer, "concat_score_weight has shape \(csw.shape), expected a scalar") }
                scores = l.op("Mul", [scores, l.constant(csw.values, [], n + "_concat_score_weight")], n + "_weighted_scores")
            }
        } else {
            scores = l.op("MatMul", [q, l.transpose(k, [0, 2, 1], n + "_key_t")], n + "_scores")
            if useScale {
                let scale = try weight("scale")
                guard scale.values.count == 1 else { throw l.fail(layer, "scale has shape \(scale.shape), expected a scalar") }
                scores = l.op("Mul", [scores, l.constant(scale.values, [], n + "_scale")], n + "_scaled_scores")
            }
        }
        if (l.callOptions["use_causal_mask"] as? Bool ?? false) || layer.bool("causal") == true {
            guard let tq = sequenceLength(l, x[0], position: 0), let tv = sequenceLength(l, x[1], position: 1), tq > 0, tv > 0, tq * tv <= 1 << 24 else {
                throw l.fail(layer, "use_causal_mask needs static query and value lengths, which are not known here")
            }
            var bias = [Float](repeating: 0, count: tq * tv)
            for i in 0..<tq { for j in 0..<tv where j > i { bias[i * tv + j] = -1e9 } }
            scores = l.op("Add", [scores, l.constant(bias, [tq, tv], n + "_causal_bias")], n + "_causal_scores")
        }
        let weights = l.ranked(l.op("Softmax", [scores], n + "_weights", [Attribute("axis", .int(-1))]), 3)
        let out = l.ranked(l.op("MatMul", [weights, v], n), 3)
        if l.callOptions["return_attention_scores"] as? Bool == true { return [out, weights] }
        return [out]
    }
}

extension KerasLowering {
    /// The static shape of a lowered value, batch (axis 0) unknown, from the op definitions'
    /// shape functions run on the graph built so far with a batch of 1. For the layers that need
    /// a shape a Keras 2 file does not record. Types are set only for the duration of each
    /// node's inference (the lowered graph stays untyped); results are memoized.
    func inferredShape(_ v: Value) -> [Int?]? {
        let key = ObjectIdentifier(v)
        if let s = shapeMemo[key] { return [nil] + s.dropFirst().map { Optional($0) } }
        for node in graph.nodes where node.outputs.contains(where: { $0.map { shapeMemo[ObjectIdentifier($0)] == nil } ?? false }) {
            guard let def = OpRegistry.definitions[node.opType], node.domain.isEmpty else { continue }
            var saved: [(Value, ValueType?)] = []
            var known = true
            for case let input? in node.inputs {
                if let s = shapeMemo[ObjectIdentifier(input)] {
                    saved.append((input, input.type))
                    input.type = .tensor(TensorType(elementTypes[ObjectIdentifier(input)] ?? input.tensorType?.elementType ?? .float, fixed: s))
                } else if let t = input.tensorType, t.shape != nil {
                    // A graph input (batch pinned to 1) or an initializer.
                    let dims = t.shape!.enumerated().map { $0.element.value ?? ($0.offset == 0 ? 1 : -1) }
                    guard dims.allSatisfy({ $0 >= 0 }) else { known = false; break }
                    shapeMemo[ObjectIdentifier(input)] = dims
                    saved.append((input, input.type))
                    input.type = .tensor(TensorType(t.elementType, fixed: dims))
                } else {
                    known = false
                    break
                }
            }
            if known, let types = try? def.infer(OpContext(node: node, opset: opset)) {
                for (o, t) in zip(node.outputs, types) {
                    if let o, let s = t.staticShape { shapeMemo[ObjectIdentifier(o)] = s; elementTypes[ObjectIdentifier(o)] = t.elementType }
                }
            }
            for (value, type) in saved { value.type = type }
        }
        guard let s = shapeMemo[key] else { return nil }
        return [nil] + s.dropFirst().map { Optional($0) }
    }
}
