import Foundation

/// Losses, further normalizations, cumulative and index ops: shape and type rules.
public enum ExtraOps {
    /// What DFT (opsets 17-20) computes along one axis of a [batch, signal..., 1 or 2] tensor.
    public struct DFTGeometry {
        public var axis = 1, length = 0, inputLength = 0, outLength = 0
        public var inverse = false, onesided = false, complexInput = false
        /// The inverse of a one-sided spectrum: a real signal (IRFFT).
        public var realOutput: Bool { inverse && onesided }
    }

    /// STFT (opset 17): frames of `length` samples every `step`, each windowed and transformed.
    public static func stft(_ c: OpContext) throws -> (batch: Int, signal: Int, complex: Bool, step: Int, length: Int, frames: Int, bins: Int) {
        let x = try c.shape(0)
        guard x.count == 3, x[2] == 1 || x[2] == 2 else { throw c.invalid("the signal must be [batch, length, 1 or 2], not \(x)") }
        let step = try scalarInt(c, 1, "frame_step")
        var length = x[1]
        if c.has(2) {
            let w = try c.shape(2)
            guard w.count == 1 else { throw c.invalid("the window must be 1-D, not \(w)") }
            length = w[0]
        }
        if c.has(3) {
            let l = try scalarInt(c, 3, "frame_length")
            if c.has(2), l != length { throw c.invalid("frame_length \(l) differs from the window's length \(length)") }
            length = l
        }
        guard step >= 1, length >= 1, length <= x[1] else {
            throw c.invalid("frame_step \(step) must be positive and the frame length \(length) between 1 and the signal's \(x[1])")
        }
        let onesided = c.int("onesided", 1) != 0
        if onesided && x[2] == 2 { throw c.invalid("a one-sided STFT needs a real signal") }
        return (x[0], x[1], x[2] == 2, step, length, (x[1] - length) / step + 1, onesided ? length / 2 + 1 : length)
    }

    /// STFT whose frame_step or frame_length arrives at run time, the output shape declared:
    /// the frames and bins from the output (step and length are read and checked at run time).
    public static func stftDeclared(_ c: OpContext, output y: [Int]) throws -> (batch: Int, signal: Int, complex: Bool, step: Int, length: Int, frames: Int, bins: Int) {
        let x = try c.shape(0)
        guard x.count == 3, x[2] == 1 || x[2] == 2 else { throw c.invalid("the signal must be [batch, length, 1 or 2], not \(x)") }
        guard y.count == 4, y[0] == x[0], y[3] == 2, y[1] >= 1, y[1] <= x[1], y[2] >= 1, y[2] <= x[1] else {
            throw c.invalid("the declared output \(y) is not [batch, frames, bins, 2] for the signal \(x)")
        }
        if c.int("onesided", 1) != 0 && x[2] == 2 { throw c.invalid("a one-sided STFT needs a real signal") }
        if c.has(2) { guard let w = try? c.shape(2), w.count == 1, w[0] >= 1, w[0] <= x[1] else { throw c.invalid("the window must be 1-D, at most the signal's length") } }
        return (x[0], x[1], x[2] == 2, 0, 0, y[1], y[2])
    }

    /// AffineGrid (opset 20): theta (N, 2, 3) or (N, 3, 4) and a constant size (N, C, H, W) or
    /// (N, C, D, H, W): the batch and the spatial sizes.
    public static func affineGrid(_ c: OpContext) throws -> (n: Int, dims: [Int]) {
        let theta = try c.shape(0)
        let size = try c.requireConstant(1, "size").ints.map { Int($0) }
        guard size.count == 4 || size.count == 5, theta.count == 3, theta[0] == size[0],
              theta[1] == size.count - 2, theta[2] == size.count - 1 else {
            throw c.invalid("theta \(theta) and size \(size) must be (N, 2, 3) with (N, C, H, W) or (N, 3, 4) with (N, C, D, H, W)")
        }
        let dims = Array(size[2...])
        guard dims.allSatisfy({ $0 >= 1 && $0 <= 1 << 20 }), (try? Checked.product(dims)).map({ $0 <= 1 << 28 }) ?? false else {
            throw c.invalid("the grid size \(dims) is not between 1 and 2^20 per axis, 2^28 in all")
        }
        return (size[0], dims)
    }

    /// Col2Im (opset 18): blocks of `block` positions of the columns summed back into an image.
    public struct Col2ImGeometry {
        public var n = 0, c = 0, image: [Int] = [], block: [Int] = [], strides: [Int] = [], dilations: [Int] = [], padsBegin: [Int] = [], padsEnd: [Int] = [], blocks: [Int] = []
    }

    /// Col2Im's strides, dilations and pads for `r` spatial axes (validated).
    static func col2imAttributes(_ c: OpContext, rank r: Int, into g: inout Col2ImGeometry) throws {
        g.strides = c.node.ints("strides") ?? [Int](repeating: 1, count: r)
        g.dilations = c.node.ints("dilations") ?? [Int](repeating: 1, count: r)
        let pads = c.node.ints("pads") ?? [Int](repeating: 0, count: 2 * r)
        guard g.strides.count == r, g.dilations.count == r, pads.count == 2 * r, (g.strides + g.dilations).allSatisfy({ $0 >= 1 && $0 <= 1 << 20 }),
              pads.allSatisfy({ $0 >= 0 && $0 <= 1 << 20 }) else { throw c.invalid("strides, dilations (1 to 2^20) and pads (0 to 2^20) must give one value per axis (pads two)") }
        g.padsBegin = Array(pads[..<r])
        g.padsEnd = Array(pads[r...])
    }

    /// Col2Im whose image_shape or block_shape arrives at run time, the output shape declared:
    /// the batch, channels and image from the output (the block shape is read at run time).
    public static func col2imDeclared(_ c: OpContext, output y: [Int]) throws -> Col2ImGeometry {
        let x = try c.shape(0)
        guard x.count == 3, y.count >= 3, y[0] == x[0], y[1] >= 1, x[1] % y[1] == 0, y[2...].allSatisfy({ $0 >= 1 && $0 <= 1 << 20 }) else {
            throw c.invalid("the declared output \(y) does not fit the input \(x) as (N, C, image...)")
        }
        var g = Col2ImGeometry()
        (g.n, g.c, g.image) = (y[0], y[1], Array(y[2...]))
        try col2imAttributes(c, rank: g.image.count, into: &g)
        return g
    }

    public static func col2im(_ c: OpContext) throws -> Col2ImGeometry {
        let x = try c.shape(0)
        var g = Col2ImGeometry()
        g.image = try c.requireConstant(1, "image_shape").ints.map { Int($0) }
        g.block = try c.requireConstant(2, "block_shape").ints.map { Int($0) }
        let r = g.image.count
        guard x.count == 3, r >= 1, g.block.count == r, g.image.allSatisfy({ $0 >= 1 && $0 <= 1 << 20 }), g.block.allSatisfy({ $0 >= 1 && $0 <= 1 << 20 }) else {
            throw c.invalid("input must be (N, C * block size, L) with image_shape and block_shape of one rank (1 to 2^20 each); got \(x), \(g.image), \(g.block)")
        }
        try col2imAttributes(c, rank: r, into: &g)
        for d in 0..<r {
            let span = g.dilations[d] * (g.block[d] - 1) + 1
            let b = (g.image[d] + g.padsBegin[d] + g.padsEnd[d] - span) / g.strides[d] + 1
            guard b >= 1 else { throw c.invalid("the block does not fit the padded image along axis \(d)") }
            g.blocks.append(b)
        }
        let k = try Checked.product(g.block)
        guard x[1] % k == 0, x[2] == (try Checked.product(g.blocks)) else {
            throw c.invalid("input \(x) does not hold C * \(k) rows of \(g.blocks.reduce(1, *)) blocks")
        }
        (g.n, g.c) = (x[0], x[1] / k)
        return g
    }

    /// CenterCropPad (opset 18): the output shape, the input's with the axes named by `axes`
    /// (default: all) given the constant shape's sizes.
    public static func centerCropPad(_ c: OpContext) throws -> [Int] {
        let x = try c.shape(0)
        let shape = try c.requireConstant(1, "shape").ints.map { Int($0) }
        let axes = try (c.node.ints("axes") ?? Array(0..<x.count)).map { try c.axis($0, rank: x.count) }
        guard shape.count == axes.count, Set(axes).count == axes.count else { throw c.invalid("shape \(shape) must give one size per axis \(axes)") }
        var out = x
        for (a, v) in zip(axes, shape) {
            guard v >= 0, v <= 1 << 30 else { throw c.invalid("the size \(v) for axis \(a) is not between 0 and 2^30") }
            out[a] = v
        }
        _ = try Checked.product(out)
        return out
    }

    static func outputDatatype(_ c: OpContext) throws -> DataType {
        let code = c.int("output_datatype", 1)
        guard let dt = Int32(exactly: code).flatMap(DataType.init(rawValue:)), dt == .float || dt == .double else {
            throw c.fail("output_datatype \(code) is not supported (float32 and float64 are)")
        }
        return dt
    }

    static func scalarInt(_ c: OpContext, _ i: Int, _ what: String) throws -> Int {
        let v = try c.requireConstant(i, what)
        guard v.count == 1 else { throw c.invalid("\(what) must be a scalar") }
        return try Checked.int(v.double(0), what)
    }

    static func windowSize(_ c: OpContext) throws -> Int {
        let size = try scalarInt(c, 0, "size")
        guard size >= 1, size <= 1 << 24 else { throw c.invalid("the window size \(size) is not between 1 and 2^24") }
        guard size > 1 || c.int("periodic", 1) != 0 else { throw c.invalid("a symmetric window needs at least 2 points") }
        return size
    }

    /// MelWeightMatrix as ONNX's reference computes it: triangles between mel-spaced bin indices.
    static func melWeights(_ c: OpContext) throws -> (bins: Int, mels: Int, values: [Double]) {
        let mels = try scalarInt(c, 0, "num_mel_bins"), dft = try scalarInt(c, 1, "dft_length"), rate = try scalarInt(c, 2, "sample_rate")
        let lower = try c.requireConstant(3, "lower_edge_hertz").double(0), upper = try c.requireConstant(4, "upper_edge_hertz").double(0)
        guard mels >= 1, mels <= 1 << 16, dft >= 1, dft <= 1 << 24, rate >= 1, lower.isFinite, upper.isFinite, lower >= 0, upper > lower else {
            throw c.invalid("MelWeightMatrix needs 1 to 65536 mel bins, a DFT length of 1 to 2^24, a positive sample rate and 0 <= lower < upper edges")
        }
        let bins = dft / 2 + 1
        func mel(_ f: Double) -> Double { 2595 * log1p(f / 700) / log(10) }
        let lo = mel(lower), step = (mel(upper) - lo) / Double(mels + 2)
        let edges = try (0..<(mels + 2)).map { k -> Int in
            let f = 700 * expm1((Double(k) * step + lo) / 2595 * log(10))
            let b = (Double(dft + 1) * f / Double(rate)).rounded(.down)
            guard b >= 0, b < Double(bins) else { throw c.invalid("the mel band edge \(k) falls on spectrogram bin \(b), outside the \(bins) bins of a \(dft)-point DFT") }
            return Int(b)
        }
        var out = [Double](repeating: 0, count: bins * mels)
        for i in 0..<mels {
            let l: Int = edges[i], m: Int = edges[i + 1], h: Int = edges[i + 2]
            if m == l {
                out[m * mels + i] = 1
            } else if m > l {
                let width = Double(m - l)
                for j in l...m { out[j * mels + i] = Double(j - l) / width }
            }
            if h > m {
                let width = Double(h - m)
                for j in m..<h { out[j * mels + i] = Double(h - j) / width }
            }
        }
        return (bins, mels, out)
    }

    /// The axes DFT could run over to give the declared output `y` when its axis arrives at run
    /// time (a square signal allows more than one), each with its geometry.
    public static func dftCandidates(_ c: OpContext, output y: [Int]) -> [DFTGeometry] {
        guard let x = try? c.shape(0), x.count >= 3, y.count == x.count else { return [] }
        return (1...(x.count - 2)).compactMap { a -> DFTGeometry? in
            guard let g = try? dft(c, axis: a) else { return nil }
            var out = x
            out[a] = g.outLength
            out[x.count - 1] = g.realOutput ? 1 : 2
            return out == y ? g : nil
        }
    }

    public static func dft(_ c: OpContext, axis forced: Int? = nil) throws -> DFTGeometry {
        let x = try c.shape(0)
        guard x.count >= 3, x[x.count - 1] == 1 || x[x.count - 1] == 2 else {
            throw c.invalid("the input must be [batch, signal..., 1 or 2] (real or complex), not \(x)")
        }
        var g = DFTGeometry()
        g.complexInput = x[x.count - 1] == 2
        g.inverse = c.int("inverse", 0) != 0
        g.onesided = c.int("onesided", 0) != 0
        // Opset 20 moved the axis (default -2) to input 2, which must be a constant here.
        var axis = c.opset >= 20 ? -2 : c.int("axis", 1)
        if let forced { axis = forced } else if c.opset >= 20, c.has(2) {
            let a = try c.requireConstant(2, "axis")
            guard !a.isFloat, a.count == 1 else { throw c.invalid("axis must be one integer") }
            axis = Int(a.ints[0])
        }
        g.axis = try c.axis(axis, rank: x.count)
        guard g.axis >= 1, g.axis <= x.count - 2 else { throw c.invalid("axis \(axis) is the batch or the real/imaginary axis of \(x)") }
        g.inputLength = x[g.axis]
        if c.has(1) {
            let l = try c.requireConstant(1, "dft_length")
            guard !l.isFloat, l.count == 1 else { throw c.invalid("dft_length must be one integer") }
            g.length = try Checked.int(l.double(0), "dft_length")
        } else {
            g.length = g.realOutput ? 2 * (g.inputLength - 1) : g.inputLength
        }
        guard g.length >= 1, g.length <= 1 << 24 else { throw c.invalid("the DFT length \(g.length) is not between 1 and 2^24") }
        if g.onesided && !g.inverse && g.complexInput { throw c.invalid("a one-sided forward DFT needs a real input") }
        if g.realOutput && !g.complexInput { throw c.invalid("a one-sided inverse DFT needs a complex input") }
        g.outLength = g.onesided && !g.inverse ? g.length / 2 + 1 : g.length
        return g
    }

    public static var table: [String: OpDef] {
        var t: [String: OpDef] = [:]
        t["NegativeLogLikelihoodLoss"] = OpDef(infer: { c in
            let x = try c.shape(0), target = try c.shape(1)
            guard x.count >= 2, target == [x[0]] + Array(x[2...]) else { throw c.fail("target shape \(target) does not fit input \(x)") }
            let red = c.node.string("reduction") ?? "mean"
            return [tt(try c.dtype(0), red == "none" ? target : [])]
        })
        t["SoftmaxCrossEntropyLoss"] = OpDef(infer: { c in
            let x = try c.shape(0), target = try c.shape(1)
            guard x.count >= 2, target == [x[0]] + Array(x[2...]) else { throw c.fail("labels shape \(target) does not fit scores \(x)") }
            let red = c.node.string("reduction") ?? "mean"
            var outs = [tt(try c.dtype(0), red == "none" ? target : [])]
            if c.node.outputs.count > 1 { outs.append(tt(try c.dtype(0), x)) }
            return outs
        })
        for op in ["RMSNormalization", "LpNormalization", "MeanVarianceNormalization", "GroupNormalization"] {
            t[op] = OpDef(infer: { c in [tt(try c.dtype(0), try c.shape(0))] })
        }
        for op in ["CumSum", "CumProd"] {
            t[op] = OpDef(infer: { c in
                // The axis may arrive at run time (the output's shape does not depend on it).
                if let axis = c.constant(1) {
                    guard !axis.isFloat, axis.count == 1 else { throw c.invalid("axis must be one integer") }
                    _ = try c.axis(Int(axis.ints[0]), rank: try c.rank(0))
                } else {
                    guard try c.shape(1).reduce(1, *) == 1, !(try c.dtype(1)).isFloatingPoint else { throw c.invalid("axis must be one integer") }
                }
                return [tt(try c.dtype(0), try c.shape(0))]
            })
        }
        t["OneHot"] = OpDef(infer: { c in
            let s = try c.shape(0)
            let depth = try Checked.int(try c.requireConstant(1, "depth").double(0), "depth")
            guard depth >= 0 else { throw c.invalid("depth \(depth) is negative") }
            let axis = try c.axis(c.int("axis", -1), rank: s.count + 1)
            var out = s
            out.insert(depth, at: axis)
            return [tt(try c.dtype(2), out)]
        })
        t["EyeLike"] = OpDef(infer: { c in
            let s = try c.shape(0)
            guard s.count == 2 else { throw c.fail("needs a 2-D input") }
            let input = try c.dtype(0)
            let dt = c.node.int("dtype").flatMap { Int32(exactly: $0) }.flatMap { DataType(rawValue: $0) } ?? input
            return [tt(dt, s)]
        })
        t["GatherND"] = OpDef(infer: { c in
            let d = try c.shape(0), i = try c.shape(1)
            let b = c.int("batch_dims", 0)
            guard let last = i.last, last <= d.count - b, b < min(d.count, i.count) else { throw c.fail("indices shape \(i) does not fit data \(d)") }
            return [tt(try c.dtype(0), Array(i.dropLast()) + Array(d[(b + last)...]))]
        })
        t["ScatterND"] = OpDef(infer: { c in [tt(try c.dtype(0), try c.shape(0))] })
        t["GatherND"]?.traits.insert(.movesElements)
        // Window functions and the mel filter bank: constants of their (constant) inputs,
        // computed at compile time in double (folded; there is no run-time form).
        for op in ["HannWindow", "HammingWindow", "BlackmanWindow"] {
            t[op] = OpDef(infer: { c in
                let size = try windowSize(c)
                return [tt(try outputDatatype(c), [size])]
            }, evaluate: { c, _ in
                let size = try windowSize(c)
                let periodic = c.int("periodic", 1) != 0
                let n = Double(periodic ? size : size - 1)
                let values = (0..<size).map { i -> Double in
                    let a = 2 * Double.pi * Double(i) / n
                    switch op {
                    case "HannWindow": return 0.5 - 0.5 * cos(a)
                    case "HammingWindow": return 25.0 / 46.0 - (1 - 25.0 / 46.0) * cos(a)
                    default: return 0.42 - 0.5 * cos(a) + 0.08 * cos(2 * a)
                    }
                }
                return [NDArray.make(try outputDatatype(c), shape: [size], values)]
            })
        }
        // Random draws: shape from the attribute or the input, type from dtype (default float
        // for the fixed-shape ones, the input's for the Like ones and Bernoulli).
        for op in ["RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike", "Bernoulli"] {
            t[op] = OpDef(infer: { c in
                let shape: [Int]
                if op == "RandomNormal" || op == "RandomUniform" {
                    guard let s = c.node.ints("shape"), s.allSatisfy({ $0 >= 0 && $0 <= 1 << 30 }) else { throw c.invalid("shape must be given, each size between 0 and 2^30") }
                    _ = try Checked.product(s)
                    shape = s
                } else {
                    shape = try c.shape(0)
                }
                let fallback: DataType = op == "RandomNormal" || op == "RandomUniform" ? .float : try c.dtype(0)
                var dt = fallback
                if let code = c.node.int("dtype") {
                    guard let d = Int32(exactly: code).flatMap(DataType.init(rawValue:)) else { throw c.invalid("dtype \(code) is not a data type") }
                    dt = d
                }
                guard op == "Bernoulli" ? (dt.isFloatingPoint || dt.isInteger || dt == .bool) : dt.isFloatingPoint else {
                    throw c.fail("\(op) to \(dt) is not supported")
                }
                return [tt(dt, shape)]
            })
        }
        t["Col2Im"] = OpDef(infer: { c in
            let g = try col2im(c)
            return [tt(try c.dtype(0), [g.n, g.c] + g.image)]
        })
        t["AffineGrid"] = OpDef(infer: { c in
            let (n, dims) = try affineGrid(c)
            return [tt(try c.dtype(0), [n] + dims + [dims.count])]
        })
        t["CenterCropPad"] = OpDef(infer: { c in
            [tt(try c.dtype(0), try centerCropPad(c))]
        }, traits: .movesElements)
        t["STFT"] = OpDef(infer: { c in
            let g = try stft(c)
            return [tt(try c.dtype(0), [g.batch, g.frames, g.bins, 2])]
        })
        t["MelWeightMatrix"] = OpDef(infer: { c in
            let m = try melWeights(c)
            return [tt(try outputDatatype(c), [m.bins, m.mels])]
        }, evaluate: { c, _ in
            let m = try melWeights(c)
            return [NDArray.make(try outputDatatype(c), shape: [m.bins, m.mels], m.values)]
        })
        t["DFT"] = OpDef(infer: { c in
            let g = try dft(c)
            var out = try c.shape(0)
            out[g.axis] = g.outLength
            out[out.count - 1] = g.realOutput ? 1 : 2
            return [tt(try c.dtype(0), out)]
        })
        // SwiGLU: Swish_alpha(A) * B, A and B of one shape (no broadcasting).
        t["SwiGLU"] = OpDef(infer: { c in
            let a = try c.shape(0), b = try c.shape(1)
            guard a == b else { throw c.invalid("A \(a) and B \(b) must have the same shape") }
            return [tt(try c.dtype(0), a)]
        })
        // Det: determinants of the trailing square matrices.
        t["Det"] = OpDef(infer: { c in
            let x = try c.shape(0)
            guard x.count >= 2, x[x.count - 1] == x[x.count - 2] else { throw c.invalid("Det needs square matrices in the last two axes, not \(x)") }
            return [tt(try c.dtype(0), Array(x.dropLast(2)))]
        })
        t["GroupNormalization"]?.traits.insert(.rowIndependent)
        return t
    }
}

/// RNN, GRU and LSTM (ONNX layout and gate order).
public enum RecurrentOps {
    public struct Geometry {
        public var seq: Int
        public var batch: Int
        public var input: Int
        public var hidden: Int
        public var directions: Int
        public var layout: Int
    }

    public static func geometry(_ c: OpContext) throws -> Geometry {
        let x = try c.shape(0), w = try c.shape(1)
        guard x.count == 3, w.count == 3 else { throw c.fail("X must be 3-D and W 3-D, got \(x) and \(w)") }
        let layout = c.int("layout", 0)
        let dirs = c.node.string("direction") == "bidirectional" ? 2 : 1
        guard let hidden = c.node.int("hidden_size") ?? (w[1] > 0 ? w[1] / gates(c.node.opType) : nil) else { throw c.fail("hidden_size is missing") }
        guard w[0] == dirs, w[1] == gates(c.node.opType) * hidden, w[2] == x[2] else { throw c.fail("W of shape \(w) does not fit X \(x), \(dirs) direction(s), hidden size \(hidden)") }
        return Geometry(seq: layout == 0 ? x[0] : x[1], batch: layout == 0 ? x[1] : x[0], input: x[2], hidden: hidden, directions: dirs, layout: layout)
    }

    public static func gates(_ op: String) -> Int { op == "LSTM" ? 4 : (op == "GRU" ? 3 : 1) }

    public static var table: [String: OpDef] {
        var t: [String: OpDef] = [:]
        for op in ["RNN", "GRU", "LSTM"] {
            t[op] = OpDef(infer: { c in
                let g = try geometry(c)
                let dt = try c.dtype(0)
                let y = g.layout == 0 ? [g.seq, g.directions, g.batch, g.hidden] : [g.batch, g.seq, g.directions, g.hidden]
                let h = g.layout == 0 ? [g.directions, g.batch, g.hidden] : [g.batch, g.directions, g.hidden]
                return [tt(dt, y), tt(dt, h)] + (op == "LSTM" ? [tt(dt, h)] : [])
            })
        }
        return t
    }
}

/// Einsum: explicit ("ij,jk->ik") and implicit ("ij,jk") forms, with an ellipsis ("...ij,...jk").
public enum EinsumOps {
    public struct Parsed {
        public var inputs: [[Character]]
        public var output: [Character]
        public var sizes: [Character: Int]
    }

    public static func parse(_ c: OpContext) throws -> Parsed {
        guard let eq = c.node.string("equation") else { throw c.fail("has no equation") }
        let clean = eq.filter { !$0.isWhitespace }
        let parts = clean.components(separatedBy: "->")
        guard parts.count <= 2 else { throw c.invalid("equation '\(eq)' has more than one '->'") }
        var ins = parts[0].split(separator: ",", omittingEmptySubsequences: false).map { Array($0) }
        guard ins.count == c.inputCount else { throw c.fail("equation '\(eq)' names \(ins.count) inputs, the node has \(c.inputCount)") }
        // An ellipsis stands for the dimensions no letter names: spelled out with letters the
        // equation does not use, right-aligned across the inputs (equal sizes; no broadcasting).
        var ellipsis: [Character] = []
        var explicitOutput = parts.count > 1 ? Array(parts[1]) : nil
        if clean.contains(".") {
            func split(_ term: [Character]) throws -> (before: [Character], after: [Character])? {
                let s = String(term)
                guard let r = s.range(of: "...") else {
                    guard !term.contains(".") else { throw c.invalid("equation '\(eq)' has a '.' outside an ellipsis") }
                    return nil
                }
                let before = Array(s[..<r.lowerBound]), after = Array(s[r.upperBound...])
                guard !before.contains("."), !after.contains(".") else { throw c.invalid("equation '\(eq)' has more than one ellipsis in a term") }
                return (before, after)
            }
            var counts: [Int?] = []
            for (k, term) in ins.enumerated() {
                if let (b, a) = try split(term) {
                    let e = try c.rank(k) - b.count - a.count
                    guard e >= 0 else { throw c.invalid("input \(k) has rank \(try c.rank(k)), fewer than the equation's \(b.count + a.count) indices") }
                    counts.append(e)
                } else { counts.append(nil) }
            }
            let dims = counts.compactMap { $0 }.max() ?? 0
            let used = Set(clean)
            ellipsis = Array(Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz").filter { !used.contains($0) }.prefix(dims))
            guard ellipsis.count == dims else { throw c.invalid("equation '\(eq)' leaves too few free letters for its ellipsis") }
            for (k, term) in ins.enumerated() {
                guard let (b, a) = try split(term), let e = counts[k] else { continue }
                ins[k] = b + ellipsis.suffix(e) + a
            }
            if let out = explicitOutput, let (b, a) = try split(out) { explicitOutput = b + ellipsis + a }
        }
        var sizes: [Character: Int] = [:]
        var counts: [Character: Int] = [:]
        for (k, letters) in ins.enumerated() {
            let s = try c.shape(k)
            guard s.count == letters.count else { throw c.fail("input \(k) has rank \(s.count), the equation gives it \(letters.count) indices") }
            for (ch, d) in zip(letters, s) {
                guard ch.isLetter else { throw c.fail("equation '\(eq)' has an invalid index '\(ch)'") }
                if let known = sizes[ch], known != d { throw c.fail("index '\(ch)' has sizes \(known) and \(d)") }
                sizes[ch] = d
                counts[ch, default: 0] += 1
            }
        }
        let output: [Character]
        if let explicitOutput {
            output = explicitOutput
            for ch in output where sizes[ch] == nil { throw c.fail("output index '\(ch)' appears in no input") }
        } else {
            // Implicit: the ellipsis dimensions, then the letters that appear once, in order.
            let ell = Set(ellipsis)
            output = ellipsis + counts.filter { $0.value == 1 && !ell.contains($0.key) }.map(\.key).sorted()
        }
        return Parsed(inputs: ins, output: output, sizes: sizes)
    }

    public static var table: [String: OpDef] {
        ["Einsum": OpDef(infer: { c in
            let p = try parse(c)
            return [tt(try c.dtype(0), p.output.map { p.sizes[$0]! })]
        }, traits: .denseProduct)]
    }
}
