import Foundation
import SofieIR

/// Losses, further normalizations, cumulative and index ops.
enum CppExtra {
    /// Emits `int64_t off` = the flat offset of the index tuple ix[0..<count] into a tensor of
    /// `shape` (negative indices wrap, out-of-range ones read element 0: defined behaviour).
    static func indexTupleOffset(_ e: EmitContext, count: Int, shape: [Int], strides: [Int]) {
        e.line("    int64_t off = 0;")
        for k in 0..<count {
            e.line("    { int64_t v = static_cast<int64_t>(ix[\(k)]); if (v < 0) v += \(shape[k]); if (v < 0 || v >= \(shape[k])) v = 0; off += v * \(strides[k]); }")
        }
    }

    /// Negative log-likelihood over class axis 1 of `logp` (N, C, d...) with integer targets.
    static func nll(_ e: EmitContext, _ n: Node, logp: String, shape: [Int], target: CTensor, weight: CTensor?, out: CTensor) {
        let N = shape[0], C = shape[1], D = shape[2...].reduce(1, *)
        let red = n.string("reduction") ?? "mean"
        let ignore = n.int("ignore_index")
        let T = out.ctype
        e.block {
            e.line("double total = 0, wsum = 0;")
            e.line("for (int64_t b = 0; b < \(N); ++b) for (int64_t d = 0; d < \(D); ++d) {")
            e.line("    const int64_t t = static_cast<int64_t>(\(target.ptr)[b * \(D) + d]);")
            e.line("    double loss = 0, w = 0;")
            e.line("    if (\(ignore.map { "t != \($0)" } ?? "true") && t >= 0 && t < \(C)) {")
            e.line("        w = \(weight.map { "double(\($0.ptr)[t])" } ?? "1.0");")
            e.line("        loss = -double(\(logp)[(b * \(C) + t) * \(D) + d]) * w;")
            e.line("    }")
            if red == "none" { e.line("    \(out.ptr)[b * \(D) + d] = static_cast<\(T)>(loss);") }
            e.line("    total += loss;")
            e.line("    wsum += w;")
            e.line("}")
            switch red {
            case "none": e.line("(void)total; (void)wsum;")
            case "sum": e.line("(void)wsum; \(out.ptr)[0] = static_cast<\(T)>(total);")
            default: e.line("\(out.ptr)[0] = static_cast<\(T)>(wsum != 0 ? total / wsum : 0.0);")
            }
        }
    }

    /// `cs[i]`, `sn[i]` = cos, sin of 2 pi i / L in double, in the workspace (which the caller
    /// sized for 2 L), tabulated per call: DFT and STFT index them by (k * j) mod L.
    static func twiddles(_ e: EmitContext, _ L: Int) { twiddles(e, String(L)) }

    /// cos and sin of 2*pi*i/L for i < L into the workspace (`L` a number or a run-time variable).
    static func twiddles(_ e: EmitContext, _ L: String) {
        e.line("double* const cs = static_cast<double*>(work); double* const sn = cs + \(L);")
        e.line("for (int64_t i = 0; i < \(L); ++i) { const double a = 6.283185307179586476925286766559 * static_cast<double>(i) / static_cast<double>(\(L)); cs[i] = std::cos(a); sn[i] = std::sin(a); }")
    }

    /// DFT along `g.axis`: each output point by its definition, in double, twiddles tabulated per call.
    static func dft(_ e: EmitContext, _ x: CTensor, _ y: CTensor, _ g: ExtraOps.DFTGeometry) {
        let L = g.length, cin = g.complexInput ? 2 : 1
        let outer = x.shape[..<g.axis].reduce(1, *), inner = x.shape[(g.axis + 1)..<(x.shape.count - 1)].reduce(1, *)
        // Input points read: the first `used` along the axis (zero beyond).
        let used = g.realOutput ? min(g.inputLength, L / 2 + 1) : min(g.inputLength, L)
        let T = y.ctype
        e.workspace(2 * L)
        e.block {
            twiddles(e, L)
            e.line("const \(x.ctype)* const x = \(x.ptr); \(T)* const y = \(y.ptr);")
            e.line("for (int64_t o = 0; o < \(outer); ++o) for (int64_t i = 0; i < \(inner); ++i) {")
            e.line("    auto re = [&](int64_t j) { return static_cast<double>(x[((o * \(g.inputLength) + j) * \(inner) + i) * \(cin)]); };")
            e.line(cin == 2 ? "    auto im = [&](int64_t j) { return static_cast<double>(x[((o * \(g.inputLength) + j) * \(inner) + i) * 2 + 1]); };"
                            : "    auto im = [](int64_t) { return 0.0; };")
            e.line("    (void)im;")
            e.line("    for (int64_t k = 0; k < \(g.outLength); ++k) {")
            e.line("        double sr = 0, si = 0;")
            if g.realOutput {
                // IRFFT: the Hermitian spectrum's real signal; DC (and Nyquist, for an even
                // length) count once and by their real part only, the rest twice.
                e.line("        for (int64_t j = 0; j < \(used); ++j) {")
                e.line("            const int64_t t = (k * j) % \(L);")
                e.line("            if (j == 0 || 2 * j == \(L)) sr += re(j) * cs[t];")
                e.line("            else sr += 2.0 * (re(j) * cs[t] - im(j) * sn[t]);")
                e.line("        }")
                e.line("        (void)si;")
                e.line("        y[(o * \(g.outLength) + k) * \(inner) + i] = static_cast<\(T)>(sr / \(L).0);")
            } else {
                let sign = g.inverse ? "+" : "-"
                e.line("        for (int64_t j = 0; j < \(used); ++j) {")
                e.line("            const int64_t t = (k * j) % \(L);")
                e.line("            const double xr = re(j), xi = im(j);")
                // x * e^{sign i a} = (xr + i xi)(cos a + sign i sin a)
                e.line("            sr += xr * cs[t] \(sign == "-" ? "+" : "-") xi * sn[t];")
                e.line("            si += xi * cs[t] \(sign) xr * sn[t];")
                e.line("        }")
                let scale = g.inverse ? " / \(L).0" : ""
                e.line("        y[((o * \(g.outLength) + k) * \(inner) + i) * 2] = static_cast<\(T)>(sr\(scale));")
                e.line("        y[((o * \(g.outLength) + k) * \(inner) + i) * 2 + 1] = static_cast<\(T)>(si\(scale));")
            }
            e.line("    }")
            e.line("}")
        }
    }

    static var table: [String: CppOps.Emit] {
        var t: [String: CppOps.Emit] = [:]
        // The transform as its definition, in double: O(length^2) per signal with the twiddle
        // factors tabulated once per call (index k*j mod length: exact angles at any length).
        // grid[n, ..., :] = theta[n] @ (x, y[, z], 1) over the normalized output coordinates.
        t["AffineGrid"] = { e, n in
            let theta = try e.input(n, 0), y = try e.output(n, 0)
            // (size given at run time: the declared output's batch and grid, checked before.)
            let (batch, dims) = DeclaredShapes.isRuntime(n, 1) && y.shape.count >= 3 ? (y.shape[0], Array(y.shape[1..<(y.shape.count - 1)]))
                : try ExtraOps.affineGrid(OpContext(node: n, opset: e.opset))
            guard theta.dtype == .float || theta.dtype == .double else { throw CompileError(node: n, "AffineGrid on \(theta.dtype) is not supported (float32 and float64 are)") }
            let r = dims.count, align = (n.int("align_corners") ?? 0) != 0, points = dims.reduce(1, *)
            // The coordinate of index i along an axis of size s (x is the last axis).
            func coord(_ i: String, _ s: Int) -> String {
                align ? (s == 1 ? "-1.0" : "-1.0 + 2.0 * static_cast<double>(\(i)) / \(s - 1).0") : "-1.0 + (2.0 * static_cast<double>(\(i)) + 1.0) / \(s).0"
            }
            e.block {
                e.line("for (int64_t b = 0; b < \(batch); ++b) for (int64_t p = 0; p < \(points); ++p) {")
                e.line("    const \(theta.ctype)* const t = \(theta.ptr) + b * \(r * (r + 1));")
                // Homogeneous point (x, y[, z], 1): x from the last axis.
                var rest = "p"
                var comps: [String] = []
                for (k, s) in dims.enumerated().reversed() {
                    e.line("    const int64_t i\(k) = \(rest) % \(s);")
                    comps.append(coord("i\(k)", s))
                    rest = "(\(rest) / \(s))"
                }
                e.line("    const double h[\(r + 1)] = {\(comps.joined(separator: ", ")), 1.0};")
                e.line("    for (int64_t o = 0; o < \(r); ++o) {")
                e.line("        double v = 0; for (int64_t k = 0; k <= \(r); ++k) v += static_cast<double>(t[o * \(r + 1) + k]) * h[k];")
                e.line("        \(y.ptr)[(b * \(points) + p) * \(r) + o] = static_cast<\(y.ctype)>(v);")
                e.line("    }")
                e.line("}")
            }
        }
        // Random draws, deterministic per Session: element i of call k of a node is a hash
        // (SplitMix64's finalizer) of the node's seed (its `seed` attribute, else a hash of its
        // output's name), k and i; k counts the node's calls in the Session (8 bytes of Session
        // state). Uniform: the top 53 bits; normal: Box-Muller over two such draws.
        for op in ["RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike", "Bernoulli"] {
            t[op] = { e, n in
                let y = try e.output(n, 0)
                let p = op == "Bernoulli" ? try e.input(n, 0) : nil
                var seed: UInt64
                if let f = n.float("seed") {
                    seed = UInt64(f.bitPattern) &* 0x9E37_79B9_7F4A_7C15
                } else {
                    seed = 0xCBF2_9CE4_8422_2325  // FNV-1a of the output's name
                    for b in (n.output(0)?.name ?? n.name).utf8 { seed = (seed ^ UInt64(b)) &* 0x100_0000_01B3 }
                }
                let counter = e.sessionState(bytes: 8, type: "uint64_t")
                let normal = op.hasPrefix("RandomNormal")
                let a = Double(n.float(normal ? "mean" : "low") ?? 0), b = Double(n.float(normal ? "scale" : "high") ?? 1)
                e.block {
                    e.line("const uint64_t call = (*\(counter))++;")
                    e.line("auto draw = [call](uint64_t i) {")
                    e.line("    uint64_t z = \(seed)ULL + call * 0xD1B54A32D192ED03ULL + i * 0x9E3779B97F4A7C15ULL;")
                    e.line("    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL; z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL; z ^= z >> 31;")
                    e.line("    return static_cast<double>(z >> 11) * 0x1.0p-53;  // [0, 1)")
                    e.line("};")
                    e.line("for (int64_t i = 0; i < \(y.count); ++i) {")
                    switch op {
                    case "Bernoulli":
                        e.line("    const double q = static_cast<double>(\(p!.ptr)[i]);")
                        e.line("    \(y.ptr)[i] = static_cast<\(y.ctype)>(draw(static_cast<uint64_t>(i)) < q ? 1 : 0);  // NaN gives 0")
                    case _ where normal:
                        e.line("    const double u1 = 1.0 - draw(2 * static_cast<uint64_t>(i)), u2 = draw(2 * static_cast<uint64_t>(i) + 1);")
                        e.line("    \(y.ptr)[i] = static_cast<\(y.ctype)>(\(a) + \(b) * std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2));")
                    default:
                        e.line("    \(y.ptr)[i] = static_cast<\(y.ctype)>(\(a) + (\(b) - \(a)) * draw(static_cast<uint64_t>(i)));")
                    }
                    e.line("}")
                }
            }
        }
        // Every column entry added to the image position its block and kernel offset name.
        t["Col2Im"] = { e, n in
            let x = try e.input(n, 0), y = try e.output(n, 0)
            func list(_ v: [Int]) -> String { v.map(String.init).joined(separator: ", ") }
            let runtime = DeclaredShapes.isRuntime(n, 1) || DeclaredShapes.isRuntime(n, 2)
            let g: ExtraOps.Col2ImGeometry
            if runtime {
                // image_shape or block_shape given at run time, the output declared: the image is
                // the declared one; the block shape is read, and both are checked to fit.
                g = try ExtraOps.col2imDeclared(OpContext(node: n, opset: e.opset), output: y.shape)
            } else {
                g = try ExtraOps.col2im(OpContext(node: n, opset: e.opset))
            }
            let r = g.image.count, K = x.shape[1] / max(g.c, 1), L = x.shape[2], plane = g.image.reduce(1, *)
            try e.block {
                e.line("static const int64_t image[] = {\(list(g.image))};")
                e.line("static const int64_t stride[] = {\(list(g.strides))}, dilation[] = {\(list(g.dilations))}, pad[] = {\(list(g.padsBegin))};")
                if runtime {
                    e.line("static const int64_t pad_end[] = {\(list(g.padsEnd))};")
                    let im = try e.input(n, 1), bs = try e.input(n, 2)
                    let fail = "throw std::invalid_argument(\"\(e.ns): Col2Im '\(CppNames.comment(n.name, limit: 60))': its image_shape and block_shape do not fit the input [\(list(x.shape))] and the declared output [\(list(y.shape))]\")"
                    guard im.count == r, bs.count == r else { throw CompileError(node: n, "image_shape and block_shape must have \(r) values") }
                    e.line("int64_t block[\(r)], blocks[\(r)], k_total = 1, l_total = 1;")
                    e.line("for (int d = 0; d < \(r); ++d) {")
                    e.line("    if (static_cast<int64_t>(\(im.ptr)[d]) != image[d]) \(fail);")
                    e.line("    block[d] = static_cast<int64_t>(\(bs.ptr)[d]);")
                    e.line("    if (block[d] < 1 || block[d] > \(K)) \(fail);")
                    e.line("    const int64_t span = dilation[d] * (block[d] - 1) + 1, room = image[d] + pad[d] + pad_end[d] - span;")
                    e.line("    if (room < 0) \(fail);")
                    e.line("    blocks[d] = room / stride[d] + 1;")
                    e.line("    k_total *= block[d]; l_total *= blocks[d];")
                    e.line("    if (k_total > \(K) || l_total > \(L)) \(fail);")
                    e.line("}")
                    e.line("if (k_total != \(K) || l_total != \(L)) \(fail);")
                } else {
                    e.line("static const int64_t block[] = {\(list(g.block))}, blocks[] = {\(list(g.blocks))};")
                }
                e.line("std::fill_n(\(y.ptr), \(y.count), \(y.ctype)(0));")
                e.line("for (int64_t b = 0; b < \(g.n * g.c); ++b) for (int64_t k = 0; k < \(K); ++k) for (int64_t l = 0; l < \(L); ++l) {")
                e.line("    int64_t kr = k, lr = l, at = 0; bool inside = true;")
                e.line("    for (int64_t d = \(r - 1), stride_out = 1; d >= 0; --d) {")
                e.line("        const int64_t i = (lr % blocks[d]) * stride[d] - pad[d] + (kr % block[d]) * dilation[d];")
                e.line("        kr /= block[d]; lr /= blocks[d];")
                e.line("        if (i < 0 || i >= image[d]) inside = false;")
                e.line("        at += i * stride_out; stride_out *= image[d];")
                e.line("    }")
                e.line("    if (inside) \(y.ptr)[b * \(plane) + at] += \(x.ptr)[(b * \(K) + k) * \(L) + l];")
                e.line("}")
            }
        }
        // Centred crop and zero pad per axis: output index i reads input index i - pad + crop.
        t["CenterCropPad"] = { e, n in
            let x = try e.input(n, 0), y = try e.output(n, 0)
            let r = x.shape.count
            let offset = zip(x.shape, y.shape).map { d, s in s < d ? (d - s) / 2 : -((s - d) / 2) }
            e.block {
                e.line("static const int64_t in_dims[] = {\(x.shape.map(String.init).joined(separator: ", "))}, out_dims[] = {\(y.shape.map(String.init).joined(separator: ", "))}, shift[] = {\(offset.map(String.init).joined(separator: ", "))};")
                e.line("for (int64_t o = 0; o < \(y.count); ++o) {")
                e.line("    int64_t rest = o, at = 0, stride = 1; bool inside = true;")
                e.line("    for (int64_t d = \(r - 1); d >= 0; --d) {")
                e.line("        const int64_t i = rest % out_dims[d] + shift[d]; rest /= out_dims[d];")
                e.line("        if (i < 0 || i >= in_dims[d]) inside = false;")
                e.line("        at += i * stride; stride *= in_dims[d];")
                e.line("    }")
                e.line("    \(y.ptr)[o] = inside ? \(x.ptr)[at] : \(y.ctype)(0);")
                e.line("}")
            }
        }
        // Each frame windowed and transformed by its definition, in double (twiddles tabulated per call).
        t["STFT"] = { e, n in
            let x = try e.input(n, 0), w = try e.optionalInput(n, 2), y = try e.output(n, 0)
            guard x.dtype == .float || x.dtype == .double, w == nil || w!.dtype == x.dtype else {
                throw CompileError(node: n, "STFT on \(x.dtype) is not supported (float32 and float64, window the same)")
            }
            // frame_step or frame_length given at run time, the output declared: both are read,
            // checked to give the declared frames and bins, and the frames computed with them.
            let runtime = DeclaredShapes.isRuntime(n, 1) || DeclaredShapes.isRuntime(n, 3)
            let g = runtime ? try ExtraOps.stftDeclared(OpContext(node: n, opset: e.opset), output: y.shape) : try ExtraOps.stft(OpContext(node: n, opset: e.opset))
            let c = g.complex ? 2 : 1
            e.workspace(2 * (runtime ? g.signal : g.length))
            try e.block {
                var L = String(g.length), step = String(g.step)
                if runtime {
                    let fail = "throw std::invalid_argument(\"\(e.ns): STFT '\(CppNames.comment(n.name, limit: 60))': its frame_step and frame_length do not give the declared output [\(y.shape.map(String.init).joined(separator: "x"))]\")"
                    let st = try e.input(n, 1), fl = try e.optionalInput(n, 3)
                    e.line("const int64_t step = static_cast<int64_t>(\(st.ptr)[0]);")
                    e.line("const int64_t L = \(fl.map { "static_cast<int64_t>(\($0.ptr)[0])" } ?? String(w?.count ?? g.signal));")
                    e.line("if (step < 1 || L < 1 || L > \(g.signal)\(w.map { " || L != \($0.count)" } ?? "") || (\(g.signal) - L) / step + 1 != \(g.frames) || \((n.int("onesided") ?? 1) != 0 ? "L / 2 + 1" : "L") != \(g.bins)) \(fail);")
                    (L, step) = ("L", "step")
                }
                twiddles(e, L)
                e.line("for (int64_t b = 0; b < \(g.batch); ++b) for (int64_t f = 0; f < \(g.frames); ++f) {")
                e.line("    const \(x.ctype)* const frame = \(x.ptr) + (b * \(g.signal) + f * \(step)) * \(c);")
                e.line("    for (int64_t k = 0; k < \(g.bins); ++k) {")
                e.line("        double sr = 0, si = 0;")
                e.line("        for (int64_t j = 0; j < \(L); ++j) {")
                e.line("            const double wj = \(w.map { "static_cast<double>(\($0.ptr)[j])" } ?? "1.0");")
                e.line("            const double xr = wj * frame[j * \(c)], xi = \(c == 2 ? "wj * frame[j * 2 + 1]" : "0.0");")
                e.line("            const int64_t t = (k * j) % \(L);")
                e.line("            sr += xr * cs[t] + xi * sn[t];")
                e.line("            si += xi * cs[t] - xr * sn[t];")
                e.line("        }")
                e.line("        \(y.ptr)[((b * \(g.frames) + f) * \(g.bins) + k) * 2] = static_cast<\(y.ctype)>(sr);")
                e.line("        \(y.ptr)[((b * \(g.frames) + f) * \(g.bins) + k) * 2 + 1] = static_cast<\(y.ctype)>(si);")
                e.line("    }")
                e.line("}")
            }
        }
        t["DFT"] = { e, n in
            let x = try e.input(n, 0), y = try e.output(n, 0)
            guard x.dtype == .float || x.dtype == .double else { throw CompileError(node: n, "DFT on \(x.dtype) is not supported (float32 and float64 are)") }
            let c = OpContext(node: n, opset: e.opset)
            guard DeclaredShapes.isRuntime(n, 2) else { return dft(e, x, y, try ExtraOps.dft(c)) }
            // The axis given at run time, the output declared: every axis that gives the declared
            // output is compiled, and the value picks one (another is std::invalid_argument).
            let candidates = ExtraOps.dftCandidates(c, output: y.shape)
            guard !candidates.isEmpty else { throw CompileError(node: n, "no axis gives the declared output \(y.shape)") }
            let axisInput = try e.input(n, 2)
            e.line("switch ([&] { const int64_t a = static_cast<int64_t>(\(axisInput.ptr)[0]); return a < 0 ? a + \(x.shape.count) : a; }()) {")
            for g in candidates {
                e.line("case \(g.axis): {")
                dft(e, x, y, g)
                e.line("    break;")
                e.line("}")
            }
            e.line("default:")
            e.line("    throw std::invalid_argument(\"\(e.ns): DFT '\(CppNames.comment(n.name, limit: 60))': its axis does not give the declared output [\(y.shape.map(String.init).joined(separator: "x"))] (axes \(candidates.map { String($0.axis) }.joined(separator: ", ")) do)\");")
            e.line("}")
        }
        // MelWeightMatrix whose arguments arrive at run time (constant ones are folded), its
        // output declared: computed per call (sofie_rt::mel_weights), its size checked.
        t["MelWeightMatrix"] = { e, n in
            let y = try e.output(n, 0)
            guard y.shape.count == 2, y.dtype == .float || y.dtype == .double else { throw CompileError(node: n, "its declared output must be a 2-D float32 or float64 tensor") }
            let ins = try (0..<5).map { try e.input(n, $0) }
            e.workspace(y.shape[1] + 2)
            e.block {
                e.line("const int64_t mels = static_cast<int64_t>(\(ins[0].ptr)[0]), dft = static_cast<int64_t>(\(ins[1].ptr)[0]), rate = static_cast<int64_t>(\(ins[2].ptr)[0]);")
                e.line("if (mels != \(y.shape[1]) || dft < 1 || dft / 2 + 1 != \(y.shape[0]) ||")
                e.line("    !sofie_rt::mel_weights(mels, dft, rate, static_cast<double>(\(ins[3].ptr)[0]), static_cast<double>(\(ins[4].ptr)[0]), \(y.ptr), static_cast<int64_t*>(work)))")
                e.line("    throw std::invalid_argument(\"\(e.ns): MelWeightMatrix '\(CppNames.comment(n.name, limit: 60))': its arguments do not give the declared [\(y.shape[0])x\(y.shape[1])] matrix, or are out of range\");")
            }
        }
        t["SwiGLU"] = { e, n in
            let a = try e.input(n, 0), b = try e.input(n, 1), y = try e.output(n, 0)
            guard a.dtype == .float || a.dtype == .double else { throw CompileError(node: n, "SwiGLU on \(a.dtype) is not supported") }
            let alpha = CppOps.literal(Double(n.float("alpha") ?? 1), a.dtype)
            e.elementwise(y, [a, b]) { v in "(\(v[0]) / (\(a.ctype)(1) + std::exp(-\(alpha) * \(v[0])))) * \(v[1])" }
        }
        t["Det"] = { e, n in
            let x = try e.input(n, 0), y = try e.output(n, 0)
            guard x.dtype == .float || x.dtype == .double else { throw CompileError(node: n, "Det on \(x.dtype) is not supported") }
            let m = x.shape[x.shape.count - 1]
            e.workspace(m * m)
            // LU with partial pivoting in double, one matrix at a time.
            e.block {
                e.line("double* const a = static_cast<double*>(work);")
                e.line("for (int64_t b = 0; b < \(y.count); ++b) {")
                e.line("    for (int64_t i = 0; i < \(m * m); ++i) a[i] = static_cast<double>(\(x.ptr)[b * \(m * m) + i]);")
                e.line("    double det = 1;")
                e.line("    for (int64_t k = 0; k < \(m); ++k) {")
                e.line("        int64_t p = k;")
                e.line("        for (int64_t i = k + 1; i < \(m); ++i) if (std::fabs(a[i * \(m) + k]) > std::fabs(a[p * \(m) + k])) p = i;")
                e.line("        if (a[p * \(m) + k] == 0) { det = 0; break; }")
                e.line("        if (p != k) { for (int64_t j = 0; j < \(m); ++j) std::swap(a[p * \(m) + j], a[k * \(m) + j]); det = -det; }")
                e.line("        det *= a[k * \(m) + k];")
                e.line("        for (int64_t i = k + 1; i < \(m); ++i) {")
                e.line("            const double f = a[i * \(m) + k] / a[k * \(m) + k];")
                e.line("            for (int64_t j = k; j < \(m); ++j) a[i * \(m) + j] -= f * a[k * \(m) + j];")
                e.line("        }")
                e.line("    }")
                e.line("    \(y.ptr)[b] = static_cast<\(y.ctype)>(det);")
                e.line("}")
            }
        }
        t["NegativeLogLikelihoodLoss"] = { e, n in
            let x = try e.input(n, 0), target = try e.input(n, 1), y = try e.output(n, 0)
            nll(e, n, logp: x.ptr, shape: x.shape, target: target, weight: try e.optionalInput(n, 2), out: y)
        }
        t["SoftmaxCrossEntropyLoss"] = { e, n in
            let x = try e.input(n, 0), target = try e.input(n, 1), y = try e.output(n, 0)
            guard x.dtype.isFloatingPoint else { throw CompileError(node: n, "scores must be float32 or float64") }
            let N = x.shape[0], C = x.shape[1], D = x.shape[2...].reduce(1, *)
            // log-softmax over the classes, into the log_prob output or the workspace.
            let logp: String
            if n.outputs.count > 1, let lp = n.output(1) { logp = try e.tensor(lp).ptr } else {
                e.workspace(x.count + 8)
                logp = "static_cast<\(x.ctype)*>(work)"
            }
            try e.block {
                e.line("\(x.ctype)* const lp = \(logp);")
                e.line("for (int64_t b = 0; b < \(N); ++b) for (int64_t d = 0; d < \(D); ++d) {")
                e.line("    const \(x.ctype)* xs = \(x.ptr) + b * \(C * D) + d;")
                e.line("    \(x.ctype) m = xs[0];")
                e.line("    for (int64_t c = 1; c < \(C); ++c) m = std::max(m, xs[c * \(D)]);")
                e.line("    double s = 0;")
                e.line("    for (int64_t c = 0; c < \(C); ++c) s += std::exp(double(xs[c * \(D)] - m));")
                e.line("    const double ls = std::log(s);")
                e.line("    for (int64_t c = 0; c < \(C); ++c) lp[b * \(C * D) + c * \(D) + d] = static_cast<\(x.ctype)>(double(xs[c * \(D)] - m) - ls);")
                e.line("}")
                nll(e, n, logp: "lp", shape: x.shape, target: target, weight: try e.optionalInput(n, 2), out: y)
            }
        }
        t["RMSNormalization"] = { e, n in
            let x = try e.input(n, 0), s = try e.input(n, 1), y = try e.output(n, 0)
            let axis = try OpContext(node: n, opset: e.opset).axis(n.int("axis") ?? -1, rank: x.shape.count)
            let outer = x.shape[..<axis].reduce(1, *), inner = x.shape[axis...].reduce(1, *)
            let eps = Double(n.float("epsilon") ?? 1e-5)
            let sIdx = s.count == 1 ? "0" : "i % \(s.count)"
            e.line("for (int64_t o = 0; o < \(outer); ++o) {")
            e.line("    const \(x.ctype)* x = \(x.ptr) + o * \(inner);")
            e.line("    double ss = 0;")
            e.line("    for (int64_t i = 0; i < \(inner); ++i) ss += double(x[i]) * double(x[i]);")
            e.line("    const double inv = 1.0 / std::sqrt(ss / \(inner).0 + \(eps));")
            e.line("    for (int64_t i = 0; i < \(inner); ++i) \(y.ptr)[o * \(inner) + i] = static_cast<\(y.ctype)>(double(x[i]) * inv * double(\(s.ptr)[\(sIdx)]));")
            e.line("}")
        }
        t["LpNormalization"] = { e, n in
            let x = try e.input(n, 0), y = try e.output(n, 0)
            let axis = try OpContext(node: n, opset: e.opset).axis(n.int("axis") ?? -1, rank: x.shape.count)
            let p = n.int("p") ?? 2
            guard p == 1 || p == 2 else { throw CompileError(node: n, "p must be 1 or 2") }
            let outer = x.shape[..<axis].reduce(1, *), dim = x.shape[axis], inner = x.shape[(axis + 1)...].reduce(1, *)
            e.line("for (int64_t o = 0; o < \(outer); ++o) for (int64_t i = 0; i < \(inner); ++i) {")
            e.line("    const int64_t base = o * \(dim * inner) + i;")
            e.line("    double s = 0;")
            e.line("    for (int64_t k = 0; k < \(dim); ++k) { const double v = \(x.ptr)[base + k * \(inner)]; s += \(p == 1 ? "std::abs(v)" : "v * v"); }")
            e.line("    const double norm = \(p == 1 ? "s" : "std::sqrt(s)");")
            e.line("    for (int64_t k = 0; k < \(dim); ++k) \(y.ptr)[base + k * \(inner)] = static_cast<\(y.ctype)>(norm == 0 ? 0.0 : \(x.ptr)[base + k * \(inner)] / norm);")
            e.line("}")
        }
        t["MeanVarianceNormalization"] = { e, n in
            let x = try e.input(n, 0), y = try e.output(n, 0)
            let axes = Set(try (n.ints("axes") ?? [0, 2, 3]).map { try OpContext(node: n, opset: e.opset).axis($0, rank: x.shape.count) })
            let kept = x.shape.enumerated().map { axes.contains($0.offset) ? 1 : $0.element }
            let ost = NDArray.strides(kept).enumerated().map { axes.contains($0.offset) ? 0 : $0.element }
            let groups = kept.reduce(1, *), per = x.count / max(groups, 1)
            e.workspace(2 * groups + 8)
            e.block {
                e.line("double* const mean = static_cast<double*>(work);")
                e.line("double* const sq = mean + \(groups);")
                e.line("std::fill_n(mean, \(2 * groups), 0.0);")
                e.line("const \(x.ctype)* x = \(x.ptr);")
                e.loops(x.shape) { v in e.line("{ const double t = *x++; mean[\(EmitContext.offset(v, ost))] += t; sq[\(EmitContext.offset(v, ost))] += t * t; }") }
                e.line("for (int64_t g = 0; g < \(groups); ++g) { mean[g] /= \(per).0; sq[g] = std::sqrt(std::max(sq[g] / \(per).0 - mean[g] * mean[g], 0.0)) + 1e-9; }")
                e.line("x = \(x.ptr);")
                e.line("\(y.ctype)* y = \(y.ptr);")
                e.loops(x.shape, prefix: "j") { v in
                    e.line("*y++ = static_cast<\(y.ctype)>((*x++ - mean[\(EmitContext.offset(v, ost))]) / sq[\(EmitContext.offset(v, ost))]);")
                }
            }
        }
        t["GroupNormalization"] = { e, n in
            let x = try e.input(n, 0), s = try e.input(n, 1), b = try e.input(n, 2), y = try e.output(n, 0)
            let G = n.int("num_groups") ?? 1
            let N = x.shape[0], C = x.shape[1], hw = x.shape[2...].reduce(1, *)
            guard G > 0, C % G == 0 else { throw CompileError(node: n, "num_groups \(G) does not divide the \(C) channels") }
            let per = (C / G) * hw
            let perChannel = s.count == C
            let eps = Double(n.float("epsilon") ?? 1e-5)
            e.line("for (int64_t b = 0; b < \(N); ++b) for (int64_t g = 0; g < \(G); ++g) {")
            e.line("    const \(x.ctype)* x = \(x.ptr) + (b * \(G) + g) * \(per);")
            e.line("    double mean = 0, var = 0;")
            e.line("    for (int64_t i = 0; i < \(per); ++i) mean += x[i];")
            e.line("    mean /= \(per).0;")
            e.line("    for (int64_t i = 0; i < \(per); ++i) var += (x[i] - mean) * (x[i] - mean);")
            e.line("    const double inv = 1.0 / std::sqrt(var / \(per).0 + \(eps));")
            e.line("    for (int64_t i = 0; i < \(per); ++i) {")
            e.line("        const int64_t ch = \(perChannel ? "g * \(C / G) + i / \(hw)" : "g");")
            e.line("        \(y.ptr)[(b * \(G) + g) * \(per) + i] = static_cast<\(y.ctype)>((x[i] - mean) * inv * \(s.ptr)[ch] + \(b.ptr)[ch]);")
            e.line("    }")
            e.line("}")
        }
        for op in ["CumSum", "CumProd"] {
            t[op] = { e, n in
                let x = try e.input(n, 0), y = try e.output(n, 0)
                let exclusive = (n.int("exclusive") ?? 0) == 1, reverse = (n.int("reverse") ?? 0) == 1
                let opc = op == "CumSum" ? "+" : "*"
                let ident = op == "CumSum" ? "0" : "1"
                // The scan over (outer, dim, inner) extents, literals or run-time variables.
                func scan(outer: String, dim: String, inner: String) {
                    e.line("for (int64_t o = 0; o < \(outer); ++o) for (int64_t i = 0; i < \(inner); ++i) {")
                    e.line("    \(y.ctype) acc = \(y.ctype)(\(ident));")
                    e.line("    for (int64_t s = 0; s < \(dim); ++s) {")
                    e.line("        const int64_t at = (o * \(dim) + \(reverse ? "(\(dim) - 1 - s)" : "s")) * \(inner) + i;")
                    if exclusive {
                        e.line("        const \(y.ctype) v = \(x.ptr)[at];")
                        e.line("        \(y.ptr)[at] = acc;")
                        e.line("        acc = static_cast<\(y.ctype)>(acc \(opc) v);")
                    } else {
                        e.line("        acc = static_cast<\(y.ctype)>(acc \(opc) \(x.ptr)[at]);")
                        e.line("        \(y.ptr)[at] = acc;")
                    }
                    e.line("    }")
                    e.line("}")
                }
                guard let constant = n.input(1)?.initializer?.integers()?.first else {
                    // An axis given at run time: the extents follow from it per call; one out of
                    // range for the rank is an std::invalid_argument naming it.
                    let axisIn = try e.input(n, 1)
                    let r = x.shape.count
                    e.block {
                        e.line("static const int64_t dims[] = {\(x.shape.map(String.init).joined(separator: ", "))};")
                        e.line("int64_t axis = static_cast<int64_t>(\(axisIn.ptr)[0]);")
                        e.line("if (axis < -\(r) || axis >= \(r)) throw std::invalid_argument(\"\(e.ns): \(op) axis \" + std::to_string(axis) + \" is out of range for rank \(r)\");")
                        e.line("if (axis < 0) axis += \(r);")
                        e.line("int64_t outer = 1, inner = 1;")
                        e.line("for (int64_t d = 0; d < axis; ++d) outer *= dims[d];")
                        e.line("for (int64_t d = axis + 1; d < \(r); ++d) inner *= dims[d];")
                        e.line("const int64_t dim = dims[axis];")
                        scan(outer: "outer", dim: "dim", inner: "inner")
                    }
                    return
                }
                let axis = try OpContext(node: n, opset: e.opset).axis(constant, rank: x.shape.count)
                scan(outer: String(x.shape[..<axis].reduce(1, *)), dim: String(x.shape[axis]), inner: String(x.shape[(axis + 1)...].reduce(1, *)))
            }
        }
        t["OneHot"] = { e, n in
            let idx = try e.input(n, 0), vals = try e.input(n, 2), y = try e.output(n, 0)
            let axis = try OpContext(node: n, opset: e.opset).axis(n.int("axis") ?? -1, rank: y.shape.count)
            let depth = y.shape[axis]  // the constant depth, or the declared one (checked at run time)
            let outer = y.shape[..<axis].reduce(1, *), inner = y.shape[(axis + 1)...].reduce(1, *)
            e.line("for (int64_t o = 0; o < \(outer); ++o) for (int64_t d = 0; d < \(depth); ++d) for (int64_t i = 0; i < \(inner); ++i) {")
            e.line("    int64_t k = static_cast<int64_t>(\(idx.ptr)[o * \(inner) + i]);")
            e.line("    if (k < 0) k += \(depth);")
            e.line("    \(y.ptr)[(o * \(depth) + d) * \(inner) + i] = \(vals.ptr)[k == d ? 1 : 0];")
            e.line("}")
        }
        t["EyeLike"] = { e, n in
            let y = try e.output(n, 0)
            let k = n.int("k") ?? 0
            e.line("for (int64_t i = 0; i < \(y.shape[0]); ++i) for (int64_t j = 0; j < \(y.shape[1]); ++j) \(y.ptr)[i * \(y.shape[1]) + j] = static_cast<\(y.ctype)>(j - i == \(k) ? 1 : 0);")
        }
        t["GatherND"] = { e, n in
            let x = try e.input(n, 0), idx = try e.input(n, 1), y = try e.output(n, 0)
            let b = n.int("batch_dims") ?? 0
            let last = idx.shape.last!
            let batch = x.shape[..<b].reduce(1, *)
            let perBatchIdx = idx.shape[b..<(idx.shape.count - 1)].reduce(1, *)
            let slice = x.shape[(b + last)...].reduce(1, *)
            let xBatch = x.shape[b...].reduce(1, *)
            let st = NDArray.strides(Array(x.shape[b...]))
            e.line("for (int64_t bb = 0; bb < \(batch); ++bb) for (int64_t q = 0; q < \(perBatchIdx); ++q) {")
            e.line("    const \(idx.ctype)* ix = \(idx.ptr) + (bb * \(perBatchIdx) + q) * \(last);")
            indexTupleOffset(e, count: last, shape: Array(x.shape[b...]), strides: st)
            e.line("    std::memcpy(\(y.ptr) + (bb * \(perBatchIdx) + q) * \(slice), \(x.ptr) + bb * \(xBatch) + off, sizeof(\(y.ctype)) * \(slice));")
            e.line("}")
        }
        t["ScatterND"] = { e, n in
            let x = try e.input(n, 0), idx = try e.input(n, 1), upd = try e.input(n, 2), y = try e.output(n, 0)
            let last = idx.shape.last!
            let count = idx.count / max(last, 1)
            let slice = x.shape[last...].reduce(1, *)
            let st = NDArray.strides(x.shape)
            let red = n.string("reduction") ?? "none"
            e.copy(y, x)
            e.line("for (int64_t q = 0; q < \(count); ++q) {")
            e.line("    const \(idx.ctype)* ix = \(idx.ptr) + q * \(last);")
            indexTupleOffset(e, count: last, shape: x.shape, strides: st)
            e.line("    for (int64_t i = 0; i < \(slice); ++i) {")
            e.line("        \(y.ctype)& d = \(y.ptr)[off + i];")
            e.line("        const \(y.ctype) u = \(upd.ptr)[q * \(slice) + i];")
            switch red {
            case "add": e.line("        d = static_cast<\(y.ctype)>(d + u);")
            case "mul": e.line("        d = static_cast<\(y.ctype)>(d * u);")
            case "max": e.line("        d = std::max(d, u);")
            case "min": e.line("        d = std::min(d, u);")
            default: e.line("        d = u;")
            }
            e.line("    }")
            e.line("}")
        }
        return t
    }
}

/// Einsum as one loop nest: output indices outside, summed indices inside.
enum CppEinsum {
    static var table: [String: CppOps.Emit] {
        ["Einsum": { e, n in
            let p = try EinsumOps.parse(OpContext(node: n, opset: e.opset))
            let y = try e.output(n, 0)
            let ins = try (0..<n.inputs.count).map { try e.input(n, $0) }
            let summed = Array(Set(p.inputs.joined()).subtracting(p.output)).sorted()
            func v(_ ch: Character) -> String { "i_\(ch.unicodeScalars.first!.value)" }
            let acc = y.dtype.isFloatingPoint ? "double" : "int64_t"
            e.block {
                e.line("\(y.ctype)* y = \(y.ptr);")
                e.loops(p.output.map { p.sizes[$0]! }, prefix: "o") { ov in
                    for (k, ch) in p.output.enumerated() { e.line("const int64_t \(v(ch)) = \(ov[k]);") }
                    e.line("\(acc) sum = 0;")
                    e.loops(summed.map { p.sizes[$0]! }, prefix: "s") { sv in
                        for (k, ch) in summed.enumerated() { e.line("const int64_t \(v(ch)) = \(sv[k]);") }
                        var factors: [String] = []
                        for (k, letters) in p.inputs.enumerated() {
                            let st = NDArray.strides(ins[k].shape)
                            let idx = zip(letters, st).map { "\(v($0.0)) * \($0.1)" }.joined(separator: " + ")
                            factors.append("\(acc)(\(ins[k].ptr)[\(idx.isEmpty ? "0" : idx)])")
                        }
                        e.line("sum += \(factors.joined(separator: " * "));")
                    }
                    e.line("*y++ = static_cast<\(y.ctype)>(sum);")
                }
            }
        }]
    }
}
