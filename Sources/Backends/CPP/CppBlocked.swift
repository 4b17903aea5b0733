import Foundation
import SofieIR

/// The blocked channel layout's ops (the block-channels pass; the runtime's blocked.h):
/// ToBlocked, FromBlocked, BlockedConv and BlockedGlobalAveragePool, one call per image.
enum CppBlocked {
    static let lanes = SofieOps.blockLanes

    static var table: [String: CppOps.Emit] {
        var t: [String: CppOps.Emit] = [:]
        t["ToBlocked"] = { e, n in
            let x = try e.input(n, 0), y = try e.output(n, 0)
            let C = x.shape[1], HW = x.shape[2...].reduce(1, *)
            CppNN.perImage(e, x.shape[0]) { i in
                "sofie_rt::to_blocked(\(at(x.ptr, i, C * HW)), \(C), \(HW), \(at(y.ptr, i, y.count / y.shape[0])));"
            }
        }
        t["FromBlocked"] = { e, n in
            let x = try e.input(n, 0), y = try e.output(n, 0)
            let C = y.shape[1], HW = y.shape[2...].reduce(1, *)
            CppNN.perImage(e, y.shape[0]) { i in
                "sofie_rt::from_blocked(\(at(x.ptr, i, x.count / x.shape[0])), \(C), \(HW), \(at(y.ptr, i, C * HW)));"
            }
        }
        t["BlockedGlobalAveragePool"] = { e, n in
            let x = try e.input(n, 0), y = try e.output(n, 0)
            let CB = x.shape[1], HW = x.shape[2..<(x.shape.count - 1)].reduce(1, *)
            CppNN.perImage(e, x.shape[0]) { i in
                "sofie_rt::global_average_blocked(\(at(x.ptr, i, CB * HW * lanes)), \(CB), \(HW), \(at(y.ptr, i, CB * lanes)));"
            }
        }
        t["BlockedConv"] = { e, n in
            let x = try e.input(n, 0), y = try e.output(n, 0)
            guard x.dtype == .float, let wv = n.input(1) else { throw CompileError(node: n, "BlockedConv takes a float image and a constant weight") }
            let ep = try Epilogue(e, n, y)
            // A planar input may be channels-last ([N, S..., C]: a Keras model's image).
            let channelsLast = (n.int("channels_last") ?? 0) != 0 && x.shape.count == y.shape.count - 1
            let g = try geometry(n, x: SofieOps.nchwOrder(x.shape, channelsLast: channelsLast), y: y.shape)
            let CB = x.shape[1], MB = y.shape[1], G = g.group
            let depthwise = G > 1 && (wv.tensorType?.staticShape?[1] ?? 0) == 1
            var bp = "nullptr"
            if let bv = n.input(2) {
                guard let p = e.paddedBias(bv, blocks: MB) else { throw CompileError(node: n, "the bias '\(bv.name)' is not a constant float vector of \(g.outputShape[1]) values") }
                bp = p
            }
            let inImage = x.count / x.shape[0], outImage = y.count / y.shape[0]
            let epilogue = ep.cpp("float", residualOffset: y.shape[0] == 1 ? "0" : "n * \(outImage)")
            if x.shape.count == y.shape.count - 1 {
                // A stem: planar input of a few channels, blocked output
                // (sofie_rt::conv_planar_blocked; the image copied once into padded NHWC rows).
                let C = g.inputShape[1]
                guard G == 1, let wp = e.blockedLayoutWeight(wv, depthwise: false, groups: 1) else {
                    throw CompileError(node: n, "the weight '\(wv.name)' is not a constant float tensor holding the values its shape \(wv.tensorType?.staticShape ?? []) gives")
                }
                let work = try planarWorkElements(g)
                e.workspace(work)
                e.block {
                    e.line("static constexpr sofie_rt::Window win = \(CppNN.window(g));")
                    e.line("static_assert(sofie_rt::conv_planar_work(\(C), win) == \(work), \"workspace sized for another formula\");")
                    CppNN.perImage(e, x.shape[0]) { i in
                        "sofie_rt::conv_planar_blocked(\(C), \(MB), \(at(x.ptr, i, inImage)), \(wp), \(bp), win, \(at(y.ptr, i, outImage)), \(epilogue), static_cast<float*>(work)\(channelsLast ? ", true" : ""));"
                    }
                }
                return
            }
            if e.options.winograd && winogradApplies(g, depthwise: depthwise) {
                // 3×3, stride 1: Winograd F(2×2, 3×3) on the blocked image (sofie_rt::conv_winograd_blocked).
                guard let up = e.winogradWeight(wv) else {
                    throw CompileError(node: n, "the weight '\(wv.name)' is not a constant float tensor holding the values its shape \(wv.tensorType?.staticShape ?? []) gives")
                }
                let work = try winogradWorkElements(CB: CB, MB: MB, outH: g.outputShape[2], outW: g.outputShape[3])
                e.workspace(work)
                e.block {
                    e.line("static constexpr sofie_rt::Window win = \(CppNN.window(g));")
                    e.line("static_assert(sofie_rt::conv_winograd_work(\(CB), \(MB), win) == \(work), \"workspace sized for another formula\");")
                    CppNN.perImage(e, x.shape[0]) { i in
                        "sofie_rt::conv_winograd_blocked(\(CB), \(MB), \(at(x.ptr, i, inImage)), \(up), \(bp), win, \(at(y.ptr, i, outImage)), \(epilogue), static_cast<float*>(work));"
                    }
                }
                return
            }
            guard let wp = e.blockedLayoutWeight(wv, depthwise: depthwise, groups: G) else {
                throw CompileError(node: n, "the weight '\(wv.name)' is not a constant float tensor holding the values its shape \(wv.tensorType?.staticShape ?? []) gives")
            }
            // The input rows with their padding columns (sofie_rt::conv_blocked_work), per group.
            let work = depthwise ? 0 : try paddedRowsElements(g, blocks: G > 1 ? CB / G : CB)
            e.workspace(work)
            let wk = work > 0 ? "static_cast<float*>(work)" : "nullptr"
            // Only the real channels of a last, partial input block are read (24 of 32 lanes).
            let realIn = g.inputShape[1] % lanes
            let tail = G == 1 && realIn != 0 ? ", \(realIn)" : ""
            e.block {
                e.line("static constexpr sofie_rt::Window win = \(CppNN.window(g));")
                if !depthwise { e.line("static_assert(sofie_rt::conv_blocked_work(\(G > 1 ? CB / G : CB), win) == \(work), \"workspace sized for another formula\");") }
                CppNN.perImage(e, x.shape[0]) { i in
                    depthwise
                        ? "sofie_rt::depthwise_blocked(\(CB), \(at(x.ptr, i, inImage)), \(wp), \(bp), win, \(at(y.ptr, i, outImage)), \(epilogue));"
                        : G > 1
                        ? "sofie_rt::conv_blocked_groups(\(G), \(CB / G), \(MB / G), \(at(x.ptr, i, inImage)), \(wp), \(bp), win, \(at(y.ptr, i, outImage)), \(epilogue), \(wk));"
                        : "sofie_rt::conv_blocked(\(CB), \(MB), \(at(x.ptr, i, inImage)), \(wp), \(bp), win, \(at(y.ptr, i, outImage)), \(epilogue), \(wk)\(tail));"
                }
            }
        }
        t["BlockedMaxPool"] = { e, n in
            let x = try e.input(n, 0), y = try e.output(n, 0)
            let s = x.shape.count - 3
            guard let kernel = n.ints("kernel_shape"), let strides = n.ints("strides"), let dil = n.ints("dilations"), let pads = n.ints("pads"),
                  kernel.count == s, strides.count == s, dil.count == s, pads.count == 2 * s else {
                throw CompileError(node: n, "BlockedMaxPool needs explicit kernel_shape, strides, dilations and pads")
            }
            let g = NNOps.Geometry(inputShape: [x.shape[0], x.shape[1] * lanes] + x.shape[2..<(s + 2)], outputShape: [y.shape[0], y.shape[1] * lanes] + y.shape[2..<(s + 2)],
                                   kernel: kernel, strides: strides, dilations: dil, padsBegin: Array(pads[0..<s]), padsEnd: Array(pads[s...]))
            e.block {
                e.line("static constexpr sofie_rt::Window win = \(CppNN.window(g));")
                CppNN.perImage(e, x.shape[0]) { i in
                    "sofie_rt::max_pool_blocked(\(x.shape[1]), \(at(x.ptr, i, x.count / x.shape[0])), win, \(at(y.ptr, i, y.count / y.shape[0])));"
                }
            }
        }
        return t
    }

    /// Elements of sofie_rt::conv_blocked_work: one image's rows of `blocks` input blocks with the
    /// columns of zeros that put every output column's taps inside its row (0 when none are
    /// needed), or for a strided pointwise convolution the pixels it reads. Sizes come from the
    /// model: overflow-checked.
    static func paddedRowsElements(_ g: NNOps.Geometry, blocks: Int) throws -> Int {
        let s = g.kernel.count, iw = g.inputShape[g.inputShape.count - 1], ih = s == 2 ? g.inputShape[2] : 1
        let ow = g.outputShape[g.outputShape.count - 1], oh = s == 2 ? g.outputShape[2] : 1
        // A strided pointwise convolution gathers its pixels instead (sofie_rt::conv_blocked_subsamples).
        if g.kernel.allSatisfy({ $0 == 1 }) && (g.padsBegin + g.padsEnd).allSatisfy({ $0 == 0 }) && g.strides.contains(where: { $0 > 1 }) {
            return try Checked.product([blocks, oh, ow, lanes], "the gathered pixels")
        }
        let left = g.padsBegin[s - 1]
        let reach = try Checked.sum([try Checked.mul(ow - 1, g.strides[s - 1]), try Checked.mul(g.kernel[s - 1] - 1, g.dilations[s - 1]), 1], "the window's reach")
        let right = max(0, reach - left - iw)
        return left == 0 && right == 0 ? 0 : try Checked.product([blocks, ih, try Checked.sum([iw, left, right]), lanes], "the padded rows")
    }

    /// Elements of sofie_rt::conv_planar_work: the padded image as NHWC rows, as many rows and
    /// columns as the pads and the window's reach need. Overflow-checked: the sizes come from
    /// the model.
    static func planarWorkElements(_ g: NNOps.Geometry) throws -> Int {
        let s = g.kernel.count
        func extent(_ i: Int) throws -> Int {
            // Spatial axis i of the 2-D window (in 1-D the row axis is a single row).
            guard i >= 2 - s else { return 1 }
            let a = i - (2 - s)
            let reach = try Checked.sum([try Checked.mul(g.outputShape[2 + a] - 1, g.strides[a]), try Checked.mul(g.kernel[a] - 1, g.dilations[a]), 1], "the window's reach")
            return max(try Checked.sum([g.padsBegin[a], g.inputShape[2 + a]], "the padded image"), reach)
        }
        return try Checked.product([try extent(0), try extent(1), g.inputShape[1]], "the padded image")
    }

    /// Whether a blocked convolution runs as Winograd F(2×2, 3×3): 2-D, one group, a 3×3 kernel
    /// with stride and dilation 1, and an output of more than 16 tiles of 2×2 (larger than 8×8).
    /// From 16 channels at 112×112 to 1024 at 14×14 it was 1.3–2.5× faster than the direct kernel
    /// (BENCHMARKS.md). At 7×7 and below the direct kernel, since made faster on rows of 7, does
    /// as well or better: 512 channels at 7×7 on a Zen 3 (AVX2) took 4.6–5.4 ms direct against
    /// 4.8–6.7 alone and 5.1 against 6.4 in resnet18, whose weights no longer fit in L3 once
    /// transformed (16/9 the size: resnet18's three 7×7 layers 28 → 50 MB).
    static func winogradApplies(_ g: NNOps.Geometry, depthwise: Bool) -> Bool {
        guard !depthwise && g.group == 1 && g.kernel == [3, 3] && g.strides == [1, 1] && g.dilations == [1, 1],
              g.outputShape.count == 4 else { return false }
        let (h, w) = (g.outputShape[2], g.outputShape[3])
        let tiles = (h / 2 + h % 2).multipliedReportingOverflow(by: w / 2 + w % 2)
        return !tiles.overflow && tiles.partialValue > 16
    }

    /// Elements of sofie_rt::conv_winograd_work (its winograd_plan: the transformed inputs and
    /// the products of as many rows of 2×2 tiles as fit 512 KB, at most about 64 tiles, at
    /// least one row). Overflow-checked: the sizes come from the model.
    static func winogradWorkElements(CB: Int, MB: Int, outH: Int, outW: Int) throws -> Int {
        let th = (outH + 1) / 2, tw = (outW + 1) / 2, blocks = try Checked.sum([CB, MB], "the blocks")
        let perRow = try Checked.product([16, blocks, tw, lanes, 4], "the Winograd workspace")
        var rows = perRow > 0 ? (512 << 10) / perRow : 1
        let cap = tw > 0 ? (64 + tw - 1) / tw : 1
        rows = max(1, min(rows, cap, th))
        return try Checked.product([16, blocks, rows, tw, lanes], "the Winograd workspace")
    }

    /// Output blocks in groups of 4, 2 and 1 within each of `groups` convolution groups, as
    /// sofie_rt::conv_blocked_group cuts them: block b's group starts at start[b] and holds
    /// width[b] blocks. `blocks` must be a multiple of `groups`.
    static func outputBlockGroups(blocks: Int, groups: Int) -> (start: [Int], width: [Int]) {
        var start = [Int](repeating: 0, count: blocks), width = start
        let perGroup = blocks / groups
        for g0 in stride(from: 0, to: blocks, by: perGroup) {
            var m0 = g0
            while m0 < g0 + perGroup {
                let left = g0 + perGroup - m0, gw = left >= 4 ? 4 : left >= 2 ? 2 : 1
                for b in m0..<(m0 + gw) { (start[b], width[b]) = (m0, gw) }
                m0 += gw
            }
        }
        return (start, width)
    }

    /// `p` advanced to image `i` of `size` elements (p itself for a single image).
    static func at(_ p: String, _ i: String?, _ size: Int) -> String { i.map { "\(p) + \($0) * \(size)" } ?? p }

    /// A BlockedConv's geometry in NCHW terms (for CppNN.window), from its blocked shapes and
    /// its explicit attributes (the block-channels pass writes them all).
    static func geometry(_ n: Node, x: [Int], y: [Int]) throws -> NNOps.Geometry {
        // x is blocked, or planar (one axis fewer) for a stem.
        let s = y.count - 3, planar = x.count == y.count - 1
        guard s == 1 || s == 2, y.count == x.count || planar, let w = n.input(1)?.tensorType?.staticShape, w.count == s + 2 else {
            throw CompileError(node: n, "BlockedConv takes 1-D or 2-D blocked images")
        }
        let kernel = n.ints("kernel_shape") ?? Array(w[2...]), strides = n.ints("strides") ?? [Int](repeating: 1, count: s)
        let dil = n.ints("dilations") ?? [Int](repeating: 1, count: s), pads = n.ints("pads") ?? [Int](repeating: 0, count: 2 * s)
        guard kernel.count == s, strides.count == s, dil.count == s, pads.count == 2 * s else {
            throw CompileError(node: n, "BlockedConv's kernel_shape, strides, dilations and pads do not fit a \(s)-D window")
        }
        let group = n.int("group") ?? 1
        return NNOps.Geometry(inputShape: [x[0], group * w[1]] + (planar ? x[2...] : x[2..<(x.count - 1)]), outputShape: [y[0], w[0]] + y[2..<(y.count - 1)],
                              kernel: kernel, strides: strides, dilations: dil, padsBegin: Array(pads[0..<s]), padsEnd: Array(pads[s...]), group: group)
    }

    /// Whether an initializer is read, and only read, as the weight or bias of BlockedConv
    /// nodes (it is then stored only in their layouts).
    static func readOnlyByBlockedConv(_ v: Value) -> Bool {
        guard v.initializer != nil, !v.uses.isEmpty else { return false }
        return v.uses.allSatisfy { $0.node.opType == "BlockedConv" && SofieOps.isSofie($0.node) && ($0.index == 1 || $0.index == 2) }
    }
}

extension EmitContext {
    /// Pointer to a constant float convolution weight [M, C/group, k...] in the blocked layout of
    /// sofie_rt::conv_blocked (output blocks in groups of 4, 2 and 1 per convolution group, the
    /// values of one input channel and tap consecutive within a group: see conv_blocked) or of
    /// sofie_rt::depthwise_blocked ([(cb * KHW + t) * 16 + l]), zero past the real channels; nil
    /// when the data does not hold the values the dims give.
    func blockedLayoutWeight(_ v: Value, depthwise: Bool, groups: Int) -> String? {
        guard let t = v.initializer, t.dataType == .float, t.dims.count >= 3, let raw = t.rawBytes else { return nil }
        // Dims come from the model: every product is checked for overflow.
        var khw = 1
        for d in t.dims.dropFirst(2) {
            let r = khw.multipliedReportingOverflow(by: d)
            guard d > 0, !r.overflow else { return nil }
            khw = r.partialValue
        }
        let M = t.dims[0], C = t.dims[1], L = SofieOps.blockLanes
        guard M > 0, C > 0, case let (perChannel, o1) = C.multipliedReportingOverflow(by: khw), !o1,
              case let (elements, o2) = M.multipliedReportingOverflow(by: perChannel), !o2,
              case let (bytes, o3) = elements.multipliedReportingOverflow(by: 4), !o3, raw.count == bytes, !depthwise || C == 1 else { return nil }
        let MB = (M + L - 1) / L, CB = (C + L - 1) / L
        let count = depthwise ? MB * khw * L : MB * CB * khw * L * L
        guard count <= 1 << 30 else { return nil }
        guard depthwise || (groups > 0 && MB % groups == 0) else { return nil }
        var out = [Float](repeating: 0, count: count)
        let (start, width) = depthwise ? ([Int](repeating: 0, count: MB), [Int](repeating: 0, count: MB))
                                       : CppBlocked.outputBlockGroups(blocks: MB, groups: groups)
        for m in 0..<M {
            let b = m / L
            for c in 0..<C {
                for k in 0..<khw {
                    let value = raw.loadUnaligned(fromByteOffset: ((m * C + c) * khw + k) * 4, as: Float.self)
                    if depthwise {
                        out[(b * khw + k) * L + m % L] = value
                    } else {
                        out[start[b] * CB * khw * L * L + ((((c / L) * khw + k) * L + c % L) * width[b] + b - start[b]) * L + m % L] = value
                    }
                }
            }
        }
        let bytesOut = out.withUnsafeBytes { Array($0) }
        withExtendedLifetime(t) {}
        return weightPointer(bytesOut, key: (depthwise ? "depthwise-nchw16c:" : "conv-nchw16c:") + v.name, label: v.name + "_nchw16c", ctype: "float",
                             shape: depthwise ? [MB, khw, L] : [MB, CB, khw, L, L])
    }

    /// Pointer to a constant 3×3 float convolution weight [M, C, 3, 3] transformed for Winograd
    /// F(2×2, 3×3) (sofie_rt::conv_winograd_blocked): G g Gᵀ for every (m, c), its 16 elements
    /// each in conv_blocked's 1×1 layout, element e at e * MB * CB * 256; nil when the data does
    /// not hold the values the dims give.
    func winogradWeight(_ v: Value) -> String? {
        guard let t = v.initializer, t.dataType == .float, t.dims.count == 4, t.dims[2] == 3, t.dims[3] == 3, let raw = t.rawBytes else { return nil }
        let M = t.dims[0], C = t.dims[1], L = SofieOps.blockLanes
        guard M > 0, C > 0, case let (mc, o1) = M.multipliedReportingOverflow(by: C), !o1,
              case let (bytes, o2) = mc.multipliedReportingOverflow(by: 36), !o2, raw.count == bytes else { return nil }
        let MB = (M + L - 1) / L, CB = (C + L - 1) / L
        guard case let (perBlock, o3) = CB.multipliedReportingOverflow(by: 16 * L * L), !o3,
              case let (count, o4) = MB.multipliedReportingOverflow(by: perBlock), !o4, count <= 1 << 30 else { return nil }
        var out = [Float](repeating: 0, count: count)
        let (start, width) = CppBlocked.outputBlockGroups(blocks: MB, groups: 1)
        let G: [[Double]] = [[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]]
        let plane = MB * CB * L * L
        for m in 0..<M {
            let b = m / L
            for c in 0..<C {
                var g = [Double](repeating: 0, count: 9)
                for k in 0..<9 { g[k] = Double(raw.loadUnaligned(fromByteOffset: ((m * C + c) * 9 + k) * 4, as: Float.self)) }
                let at = start[b] * CB * L * L + ((c / L * L + c % L) * width[b] + b - start[b]) * L + m % L
                for i in 0..<4 {
                    for j in 0..<4 {
                        var s = 0.0
                        for a in 0..<3 { for k in 0..<3 { s += G[i][a] * g[a * 3 + k] * G[j][k] } }
                        out[(i * 4 + j) * plane + at] = Float(s)
                    }
                }
            }
        }
        let bytesOut = out.withUnsafeBytes { Array($0) }
        withExtendedLifetime(t) {}
        return weightPointer(bytesOut, key: "winograd-nchw16c:" + v.name, label: v.name + "_winograd", ctype: "float", shape: [16, MB, CB, L, L])
    }

    /// Pointer to a constant float bias of M values padded with zeros to `blocks` * 16; nil when
    /// it is not one.
    func paddedBias(_ v: Value, blocks: Int) -> String? {
        let L = SofieOps.blockLanes
        guard let t = v.initializer, t.dataType == .float, t.dims.count == 1, let raw = t.rawBytes, t.dims[0] <= blocks * L,
              raw.count == t.dims[0] * 4 else { return nil }
        var bytes = [UInt8](repeating: 0, count: blocks * L * 4)
        if raw.count > 0 { bytes.withUnsafeMutableBytes { $0.baseAddress!.copyMemory(from: raw.baseAddress!, byteCount: raw.count) } }
        withExtendedLifetime(t) {}
        return weightPointer(bytes, key: "bias-nchw16c:" + v.name, label: v.name + "_nchw16c", ctype: "float", shape: [blocks * L])
    }
}
