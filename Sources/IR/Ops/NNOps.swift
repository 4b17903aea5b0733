import Foundation


/// Neural-network ops: matrix products, convolutions, pooling, normalizations, softmax,
/// resizing, top-k and recurrent layers. Shape and type rules only (no constant folding).
public enum NNOps {
    /// MaxUnpool: the shape MaxPool's attributes imply (`inferred`) and the output's (output_shape
    /// when given, which may only be larger).
    public static func maxUnpool(_ c: OpContext) throws -> (inferred: [Int], output: [Int]) {
        let x = try c.shape(0)
        guard try c.shape(1) == x else { throw c.invalid("indices \(try c.shape(1)) must have X's shape \(x)") }
        guard let k = c.node.ints("kernel_shape"), k.count == x.count - 2, k.count >= 1, k.allSatisfy({ $0 >= 1 && $0 <= 1 << 20 }) else {
            throw c.invalid("kernel_shape must give one size (1 to 2^20) per spatial axis of \(x)")
        }
        let r = k.count
        let strides = c.node.ints("strides") ?? [Int](repeating: 1, count: r)
        let pads = c.node.ints("pads") ?? [Int](repeating: 0, count: 2 * r)
        guard strides.count == r, pads.count == 2 * r, strides.allSatisfy({ $0 >= 1 && $0 <= 1 << 20 }), pads.allSatisfy({ $0 >= 0 && $0 <= 1 << 20 }) else {
            throw c.invalid("strides (1 to 2^20) and pads (0 to 2^20) are malformed")
        }
        var inferred = [x[0], x[1]]
        for d in 0..<r {
            let v = (x[d + 2] - 1) * strides[d] - pads[d] - pads[r + d] + k[d]
            guard v >= 1 else { throw c.invalid("the unpooled size along spatial axis \(d) is \(v)") }
            inferred.append(v)
        }
        var output = inferred
        if c.has(2) {
            output = try c.requireConstant(2, "output_shape").ints.map { Int($0) }
            guard output.count == inferred.count, zip(output, inferred).allSatisfy({ $0 >= $1 && $0 <= 1 << 30 }) else {
                throw c.invalid("output_shape \(output) must have rank \(inferred.count) and be at least \(inferred)")
            }
        }
        return (inferred, output)
    }

    /// DeformConv (2-D, as ONNX's reference defines it): shapes and attributes.
    public struct DeformGeometry {
        public var n = 0, c = 0, h = 0, w = 0, oc = 0, kh = 0, kw = 0, oh = 0, ow = 0
        public var group = 1, offsetGroup = 1
        public var strides = [1, 1], dilations = [1, 1], pads = [0, 0, 0, 0]
    }

    public static func deformConv(_ c: OpContext) throws -> DeformGeometry {
        let x = try c.shape(0), w = try c.shape(1), off = try c.shape(2)
        guard x.count == 4, w.count == 4, off.count == 4 else { throw c.fail("DeformConv over \(x.count - 2) spatial dimensions is not supported (2 are)") }
        var g = DeformGeometry()
        (g.n, g.c, g.h, g.w, g.oc, g.kh, g.kw) = (x[0], x[1], x[2], x[3], w[0], w[2], w[3])
        if let k = c.node.ints("kernel_shape"), k != [g.kh, g.kw] { throw c.invalid("kernel_shape \(k) differs from the weight's \([g.kh, g.kw])") }
        g.group = c.int("group", 1)
        g.offsetGroup = c.int("offset_group", 1)
        g.strides = c.node.ints("strides") ?? [1, 1]
        g.dilations = c.node.ints("dilations") ?? [1, 1]
        g.pads = c.node.ints("pads") ?? [0, 0, 0, 0]
        guard g.group >= 1, g.offsetGroup >= 1, g.c == w[1] * g.group, g.oc % g.group == 0, g.c % g.offsetGroup == 0 else {
            throw c.invalid("channels do not fit: X \(x), W \(w), group \(g.group), offset_group \(g.offsetGroup)")
        }
        guard g.strides.count == 2, g.dilations.count == 2, g.pads.count == 4, g.strides.allSatisfy({ $0 >= 1 }), g.dilations.allSatisfy({ $0 >= 1 }),
              g.pads.allSatisfy({ $0 >= 0 && $0 <= 1 << 20 }), g.strides.allSatisfy({ $0 <= 1 << 20 }), g.dilations.allSatisfy({ $0 <= 1 << 20 }) else {
            throw c.invalid("strides, dilations (1 to 2^20, two each) and pads (0 to 2^20, four) are malformed")
        }
        g.oh = (g.h + g.pads[0] + g.pads[2] - ((g.kh - 1) * g.dilations[0] + 1)) / g.strides[0] + 1
        g.ow = (g.w + g.pads[1] + g.pads[3] - ((g.kw - 1) * g.dilations[1] + 1)) / g.strides[1] + 1
        guard g.oh >= 1, g.ow >= 1 else { throw c.invalid("the kernel does not fit the padded input") }
        guard off == [g.n, g.offsetGroup * g.kh * g.kw * 2, g.oh, g.ow] else {
            throw c.invalid("offset must be \([g.n, g.offsetGroup * g.kh * g.kw * 2, g.oh, g.ow]), not \(off)")
        }
        if c.has(3) { guard try c.shape(3) == [g.oc] else { throw c.invalid("B must be [\(g.oc)]") } }
        if c.has(4) { guard try c.shape(4) == [g.n, g.offsetGroup * g.kh * g.kw, g.oh, g.ow] else { throw c.invalid("mask must be \([g.n, g.offsetGroup * g.kh * g.kw, g.oh, g.ow])") } }
        return g
    }

    public static var table: [String: OpDef] {
        var t: [String: OpDef] = [:]
        t["MatMul"] = OpDef(infer: { c in [tt(try c.dtype(0), try matmulShape(c, try c.shape(0), try c.shape(1)))] })
        t["Gemm"] = OpDef(infer: { c in
            let a = try c.shape(0), b = try c.shape(1)
            guard a.count == 2, b.count == 2 else { throw c.fail("A and B must be 2-D, got \(a) and \(b)") }
            let m = c.int("transA", 0) == 1 ? a[1] : a[0], k = c.int("transA", 0) == 1 ? a[0] : a[1]
            let kb = c.int("transB", 0) == 1 ? b[1] : b[0], n = c.int("transB", 0) == 1 ? b[0] : b[1]
            guard k == kb else { throw c.fail("inner dimensions differ: A is \(a), B is \(b)") }
            if c.has(2), broadcastShapes([m, n], try c.shape(2)) != [m, n] { throw c.fail("C of shape \(try c.shape(2)) does not broadcast to [\(m), \(n)]") }
            return [tt(try c.dtype(0), [m, n])]
        })
        t["GridSample"] = OpDef(infer: { c in
            let x = try c.shape(0), g = try c.shape(1)
            let r = x.count - 2
            guard r >= 1, r <= 3 else { throw c.fail("GridSample on \(x.count)-D input is not supported (1 to 3 spatial dimensions are)") }
            guard g.count == r + 2, g[0] == x[0], g.last == r else {
                throw c.invalid("grid \(g) does not match X \(x): it must be (N, output dims..., \(r)) with N = \(x[0])")
            }
            _ = try gridSampleMode(c)
            return [tt(try c.dtype(0), [x[0], x[1]] + Array(g[1...r]))]
        })
        t["DeformConv"] = OpDef(infer: { c in
            let g = try deformConv(c)
            return [tt(try c.dtype(0), [g.n, g.oc, g.oh, g.ow])]
        })
        t["MaxUnpool"] = OpDef(infer: { c in
            let g = try maxUnpool(c)
            return [tt(try c.dtype(0), g.output)]
        })
        t["RoiAlign"] = OpDef(infer: { c in
            let x = try c.shape(0), rois = try c.shape(1), idx = try c.shape(2)
            guard x.count == 4, rois.count == 2, rois[1] == 4, idx == [rois[0]] else {
                throw c.invalid("X must be (N, C, H, W), rois (num_rois, 4) and batch_indices (num_rois); got \(x), \(rois), \(idx)")
            }
            let oh = c.int("output_height", 1), ow = c.int("output_width", 1)
            guard oh >= 1, ow >= 1, oh <= 1 << 16, ow <= 1 << 16 else { throw c.invalid("output_height and output_width must be between 1 and 65536") }
            guard ["avg", "max"].contains(c.node.string("mode") ?? "avg") else { throw c.invalid("mode must be avg or max") }
            guard ["half_pixel", "output_half_pixel"].contains(c.node.string("coordinate_transformation_mode") ?? "half_pixel") else {
                throw c.invalid("coordinate_transformation_mode must be half_pixel or output_half_pixel")
            }
            return [tt(try c.dtype(0), [rois[0], x[1], oh, ow])]
        })
        t["Conv"] = OpDef(infer: { c in [tt(try c.dtype(0), try convGeometry(c).outputShape)] })
        t["ConvTranspose"] = OpDef(infer: { c in [tt(try c.dtype(0), try convTransposeGeometry(c).outputShape)] })
        for op in ["MaxPool", "AveragePool", "LpPool"] {
            t[op] = OpDef(infer: { c in
                let g = try poolGeometry(c)
                var out = [tt(try c.dtype(0), g.outputShape)]
                if op == "MaxPool" && c.node.outputs.count > 1 { out.append(tt(.int64, g.outputShape)) }
                return out
            })
        }
        for op in ["GlobalAveragePool", "GlobalMaxPool", "GlobalLpPool"] {
            t[op] = OpDef(infer: { c in
                let s = try c.shape(0)
                guard s.count >= 3 else { throw c.fail("needs an input of rank 3 or more, got \(s)") }
                return [tt(try c.dtype(0), [s[0], s[1]] + [Int](repeating: 1, count: s.count - 2))]
            })
        }
        t["BatchNormalization"] = OpDef(infer: { c in
            let s = try c.shape(0)
            guard s.count >= 2 else { throw c.fail("needs an input of rank 2 or more") }
            for i in 1...4 where try c.shape(i) != [s[1]] { throw c.fail("input \(i) should have shape [\(s[1])], got \(try c.shape(i))") }
            // Training mode (opset 14+): the updated running mean and variance besides.
            let outs = [tt(try c.dtype(0), s), tt(try c.dtype(3), [s[1]]), tt(try c.dtype(4), [s[1]])]
            return Array(outs.prefix(max(1, min(3, c.node.outputs.count))))
        })
        t["InstanceNormalization"] = OpDef(infer: { c in [tt(try c.dtype(0), try c.shape(0))] })
        t["LayerNormalization"] = OpDef(infer: { c in
            let s = try c.shape(0)
            let axis = try c.axis(c.int("axis", -1), rank: s.count)
            var outs = [tt(try c.dtype(0), s)]
            let stat = s.enumerated().map { $0.offset < axis ? $0.element : 1 }
            if c.node.outputs.count > 1 { outs.append(tt(.float, stat)) }
            if c.node.outputs.count > 2 { outs.append(tt(.float, stat)) }
            return outs
        })
        t["LRN"] = OpDef(infer: { c in [tt(try c.dtype(0), try c.shape(0))] })
        for op in ["Softmax", "LogSoftmax", "Hardmax"] {
            t[op] = OpDef(infer: { c in
                let s = try c.shape(0)
                _ = try c.axis(c.int("axis", c.opset < 13 ? 1 : -1), rank: s.count)
                return [tt(try c.dtype(0), s)]
            })
        }
        t["TopK"] = OpDef(infer: { c in
            let s = try c.shape(0)
            let axis = try c.axis(c.int("axis", -1), rank: s.count)
            let k: Int
            if c.opset >= 10, c.constant(1) == nil {
                // k given at run time: a length run-time values choose (--dim NODE_len=max:BOUND,
                // by default the axis' extent), unless the model declares the outputs' shapes.
                let symbol = RuntimeDimension.lengthSymbol(of: c.node)
                guard let v = c.node.graph?.valueLengths[symbol] else {
                    var e = c.fail("its k (input 1) arrives at run time; give it a bound with --dim '\(symbol)=max:BOUND' (at most the axis' \(s[axis])) to compute it at run time")
                    e.runtimeInput = 1
                    e.lengthBound = (symbol, s[axis])
                    throw e
                }
                k = v
            } else {
                k = c.opset < 10 ? c.int("k", 1) : Int(clamping: try c.requireConstant(1, "k").ints.first ?? -1)
            }
            guard k >= 0, k <= s[axis] else { throw c.invalid("k = \(k) exceeds dimension \(s[axis])") }
            var o = s
            o[axis] = k
            return [tt(try c.dtype(0), o), tt(.int64, o)]
        })
        t["Resize"] = OpDef(infer: { c in [tt(try c.dtype(0), try resizeShape(c))] })
        t["Upsample"] = OpDef(infer: { c in [tt(try c.dtype(0), try resizeShape(c))] })
        // Row-independent along the batch (OpTraits.rowIndependent).
        for op in ["Conv", "ConvTranspose", "MaxPool", "AveragePool", "LpPool", "GlobalAveragePool", "GlobalMaxPool",
                   "BatchNormalization", "InstanceNormalization", "LRN"] { t[op]?.traits.insert(.rowIndependent) }
        for op in ["MatMul", "Gemm"] { t[op]?.traits.insert(.denseProduct) }
        for op in ["Conv", "ConvTranspose", "DeformConv"] { t[op]?.traits.insert(.convolution) }
        return t
    }

    /// GridSample's mode (0 nearest, 1 linear, 2 cubic; opset 16's bilinear/bicubic too) and
    /// padding (0 zeros, 1 border, 2 reflection).
    public static func gridSampleMode(_ c: OpContext) throws -> (mode: Int, padding: Int) {
        let modes = ["nearest": 0, "linear": 1, "bilinear": 1, "cubic": 2, "bicubic": 2]
        let pads = ["zeros": 0, "border": 1, "reflection": 2]
        let m = c.node.string("mode") ?? (c.opset < 20 ? "bilinear" : "linear"), p = c.node.string("padding_mode") ?? "zeros"
        guard let mode = modes[m] else { throw c.invalid("mode '\(m)' is not one of nearest, linear, cubic") }
        guard let pad = pads[p] else { throw c.invalid("padding_mode '\(p)' is not one of zeros, border, reflection") }
        return (mode, pad)
    }

    static func matmulShape(_ c: OpContext, _ a0: [Int], _ b0: [Int]) throws -> [Int] {
        guard !a0.isEmpty, !b0.isEmpty else { throw c.fail("MatMul inputs must not be scalars") }
        let a = a0.count == 1 ? [1] + a0 : a0, b = b0.count == 1 ? b0 + [1] : b0
        guard a[a.count - 1] == b[b.count - 2] else { throw c.fail("inner dimensions differ: \(a0) × \(b0)") }
        guard let batch = broadcastShapes(Array(a.dropLast(2)), Array(b.dropLast(2))) else {
            throw c.fail("batch dimensions of \(a0) and \(b0) do not broadcast")
        }
        var out = batch + [a[a.count - 2], b[b.count - 1]]
        if a0.count == 1 { out.remove(at: out.count - 2) }
        if b0.count == 1 { out.removeLast() }
        return out
    }

    /// Spatial geometry of a convolution or pooling window.
    public struct Geometry {
        public var inputShape: [Int]
        public var outputShape: [Int]
        public var kernel: [Int]
        public var strides: [Int]
        public var dilations: [Int]
        public var padsBegin: [Int]
        public var padsEnd: [Int]
        public var group: Int = 1

        public init(inputShape: [Int], outputShape: [Int], kernel: [Int], strides: [Int], dilations: [Int], padsBegin: [Int], padsEnd: [Int], group: Int = 1) {
            (self.inputShape, self.outputShape, self.kernel, self.strides) = (inputShape, outputShape, kernel, strides)
            (self.dilations, self.padsBegin, self.padsEnd, self.group) = (dilations, padsBegin, padsEnd, group)
        }
    }

    static func resolvePads(_ c: OpContext, input: [Int], kernel: [Int], strides: [Int], dilations: [Int], ceil: Bool) throws -> ([Int], [Int], [Int]) {
        let n = kernel.count
        // (strides or dilations of another length than the kernel's were indexed past their end:
        // a compile-target fuzz finding.)
        guard input.count == n, strides.count == n, dilations.count == n else {
            throw c.fail("kernel \(kernel), strides \(strides) and dilations \(dilations) must each have one value per spatial axis (\(input.count))")
        }
        let autoPad = c.node.string("auto_pad") ?? "NOTSET"
        var begin = [Int](repeating: 0, count: n), end = begin
        var out = [Int](repeating: 0, count: n)
        for i in 0..<n {
            guard kernel[i] >= 1, strides[i] >= 1, dilations[i] >= 1 else {
                throw c.invalid("kernel \(kernel), strides \(strides) and dilations \(dilations) must be positive")
            }
            let ek = try Checked.add(try Checked.mul(kernel[i] - 1, dilations[i], "the dilated kernel"), 1, "the dilated kernel")
            switch autoPad {
            case "SAME_UPPER", "SAME_LOWER":
                out[i] = try Checked.add(input[i], strides[i] - 1, "the output size") / strides[i]
                let total = max(0, try Checked.sum([try Checked.mul(out[i] - 1, strides[i], "the padded size"), ek, -input[i]], "the padding"))
                if autoPad == "SAME_UPPER" { begin[i] = total / 2; end[i] = total - total / 2 } else { end[i] = total / 2; begin[i] = total - total / 2 }
            case "VALID":
                out[i] = (input[i] - ek) / strides[i] + 1  // input and ek are >= 0: no overflow
            case "NOTSET", "":
                let pads = c.node.ints("pads") ?? [Int](repeating: 0, count: 2 * n)
                guard pads.count == 2 * n else { throw c.fail("pads has \(pads.count) values, \(2 * n) expected") }
                begin[i] = pads[i]; end[i] = pads[i + n]
                let span = try Checked.sum([input[i], begin[i], end[i], -ek], "the padded input")
                if ceil {
                    out[i] = try Checked.add(span, strides[i] - 1, "the output size") / strides[i] + 1
                    // The last window must start inside the input or the left padding.
                    if try Checked.mul(out[i] - 1, strides[i], "the last window") >= Checked.add(input[i], begin[i], "the padded input") { out[i] -= 1 }
                } else {
                    out[i] = span / strides[i] + 1
                }
            default:
                throw c.fail("auto_pad '\(autoPad)' is not supported")
            }
            guard out[i] > 0 else { throw c.invalid("the output would be empty (input \(input), kernel \(kernel))") }
        }
        return (begin, end, out)
    }

    /// `weight` and `bias` are the inputs holding them (Conv: 1 and 2; QLinearConv: 3 and 8;
    /// ConvInteger has no bias).
    public static func convGeometry(_ c: OpContext, weight: Int = 1, bias: Int? = 2) throws -> Geometry {
        let x = try c.shape(0), w = try c.shape(weight)
        guard x.count >= 3, w.count == x.count else { throw c.fail("input \(x) and weight \(w) must have the same rank, 3 or more") }
        let n = x.count - 2
        let group = c.int("group", 1)
        guard group > 0, x[1] % group == 0, w[0] % group == 0, w[1] * group == x[1] else {
            throw c.fail("channels do not fit: input \(x), weight \(w), group \(group)")
        }
        let kernel = c.node.ints("kernel_shape") ?? Array(w[2...])
        guard kernel == Array(w[2...]) else { throw c.fail("kernel_shape \(kernel) disagrees with the weight shape \(w)") }
        let strides = c.node.ints("strides") ?? [Int](repeating: 1, count: n)
        let dil = c.node.ints("dilations") ?? [Int](repeating: 1, count: n)
        guard strides.count == n, dil.count == n, strides.allSatisfy({ $0 > 0 }), dil.allSatisfy({ $0 > 0 }) else { throw c.invalid("strides or dilations do not fit") }
        if let bias, c.has(bias), try c.shape(bias) != [w[0]] { throw c.fail("bias should have shape [\(w[0])]") }
        let (b, e, o) = try resolvePads(c, input: Array(x[2...]), kernel: kernel, strides: strides, dilations: dil, ceil: false)
        return Geometry(inputShape: x, outputShape: [x[0], w[0]] + o, kernel: kernel, strides: strides, dilations: dil,
                        padsBegin: b, padsEnd: e, group: group)
    }

    public static func convTransposeGeometry(_ c: OpContext) throws -> Geometry {
        let x = try c.shape(0), w = try c.shape(1)
        guard x.count >= 3, w.count == x.count else { throw c.fail("input \(x) and weight \(w) must have the same rank, 3 or more") }
        let n = x.count - 2
        let group = c.int("group", 1)
        guard x[1] == w[0], x[1] % group == 0 else { throw c.fail("channels do not fit: input \(x), weight \(w), group \(group)") }
        let kernel = c.node.ints("kernel_shape") ?? Array(w[2...])
        let strides = c.node.ints("strides") ?? [Int](repeating: 1, count: n)
        let dil = c.node.ints("dilations") ?? [Int](repeating: 1, count: n)
        let outPad = c.node.ints("output_padding") ?? [Int](repeating: 0, count: n)
        var begin = [Int](repeating: 0, count: n), end = begin, out = begin
        let autoPad = c.node.string("auto_pad") ?? "NOTSET"
        let explicitOut = c.node.ints("output_shape")
        guard kernel.count == n, strides.count == n, dil.count == n, outPad.count == n,
              kernel.allSatisfy({ $0 >= 1 }), strides.allSatisfy({ $0 >= 1 }), dil.allSatisfy({ $0 >= 1 }) else {
            throw c.invalid("kernel \(kernel), strides \(strides), dilations \(dil) and output_padding \(outPad) do not fit a \(n)-D convolution")
        }
        for i in 0..<n {
            let ek = try Checked.add(try Checked.mul(kernel[i] - 1, dil[i], "the dilated kernel"), 1, "the dilated kernel")
            let full = try Checked.sum([try Checked.mul(strides[i], x[i + 2] - 1, "the output size"), outPad[i], ek], "the output size")
            if let os = explicitOut {
                let target = os.count == n ? os[i] : os[i + 2]
                // Floor division, as the specification's reference does (total may be negative).
                let total = try Checked.sub(full, target, "the padding")
                let half = total >= 0 ? total / 2 : -((-total + 1) / 2)  // floor division
                if autoPad == "SAME_UPPER" { begin[i] = half; end[i] = total - half } else { end[i] = half; begin[i] = total - half }
                out[i] = target
            } else if autoPad == "SAME_UPPER" || autoPad == "SAME_LOWER" {
                out[i] = try Checked.mul(x[i + 2], strides[i], "the output size")
                let total = try Checked.sub(full, out[i], "the padding")
                if autoPad == "SAME_UPPER" { begin[i] = total / 2; end[i] = total - total / 2 } else { end[i] = total / 2; begin[i] = total - total / 2 }
            } else {
                let pads = c.node.ints("pads") ?? [Int](repeating: 0, count: 2 * n)
                begin[i] = pads[i]; end[i] = pads[i + n]
                out[i] = try Checked.sum([full, -begin[i], -end[i]], "the output size")
            }
            guard out[i] > 0 else { throw c.invalid("the output would be empty") }
        }
        return Geometry(inputShape: x, outputShape: [x[0], w[1] * group] + out, kernel: kernel, strides: strides, dilations: dil,
                        padsBegin: begin, padsEnd: end, group: group)
    }

    public static func poolGeometry(_ c: OpContext) throws -> Geometry {
        let x = try c.shape(0)
        guard x.count >= 3 else { throw c.fail("needs an input of rank 3 or more, got \(x)") }
        let n = x.count - 2
        guard let kernel = c.node.ints("kernel_shape"), kernel.count == n else { throw c.fail("kernel_shape is missing or has the wrong length") }
        let strides = c.node.ints("strides") ?? [Int](repeating: 1, count: n)
        let dil = c.node.ints("dilations") ?? [Int](repeating: 1, count: n)
        let (b, e, o) = try resolvePads(c, input: Array(x[2...]), kernel: kernel, strides: strides, dilations: dil, ceil: c.int("ceil_mode", 0) == 1)
        return Geometry(inputShape: x, outputShape: [x[0], x[1]] + o, kernel: kernel, strides: strides, dilations: dil, padsBegin: b, padsEnd: e)
    }

    static func resizeShape(_ c: OpContext) throws -> [Int] {
        let s = try c.shape(0)
        if c.node.opType == "Upsample" {
            var scales: [Float]
            if let f = c.node.floats("scales") { scales = f } else { scales = try c.requireConstant(1, "scales").floats.map { Float($0) } }
            return try zip(s, scales).map { try scaled($0, Double($1)) }
        }
        if c.has(3) {
            let sizes = try c.requireConstant(3, "sizes").ints.map { Int($0) }
            guard sizes.allSatisfy({ $0 >= 0 }) else { throw c.invalid("sizes \(sizes) has a negative size") }
            if let axes = c.node.ints("axes") {
                guard sizes.count == axes.count else { throw c.fail("sizes has \(sizes.count) values for \(axes.count) axes") }
                var out = s
                for (k, a) in axes.enumerated() { let ax = try c.axis(a, rank: s.count); out[ax] = sizes[k] }
                return out
            }
            guard sizes.count == s.count else { throw c.fail("sizes has \(sizes.count) values for rank \(s.count)") }
            return sizes
        }
        guard c.has(2) else { throw c.fail("needs scales or sizes") }
        let scales = try c.requireConstant(2, "scales").floats
        if let axes = c.node.ints("axes") {
            var out = s
            guard scales.count == axes.count else { throw c.fail("scales has \(scales.count) values for \(axes.count) axes") }
            for (k, a) in axes.enumerated() { let ax = try c.axis(a, rank: s.count); out[ax] = try scaled(s[ax], scales[k]) }
            return out
        }
        guard scales.count == s.count else { throw c.fail("scales has \(scales.count) values for rank \(s.count)") }
        return try zip(s, scales).map { try scaled($0, $1) }

        /// A dimension times a scale from the model: scales must be finite and positive.
        func scaled(_ d: Int, _ scale: Double) throws -> Int {
            guard scale.isFinite, scale > 0 else { throw c.invalid("scale \(scale) is not a finite positive number") }
            return try Checked.int((Double(d) * scale).rounded(.down), "the scaled size")
        }
    }
}
