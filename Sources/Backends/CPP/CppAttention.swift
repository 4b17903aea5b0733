import Foundation
import SofieIR

/// Transformer ops: RotaryEmbedding, and Attention (opsets 23-25) through the runtime's
/// `attention` kernel: the emitter works out the layout (3-D inputs are read in place with
/// interleaved heads, no transposes), the KV cache (present = past, then the new keys) and the
/// mask's broadcast strides.
enum CppAttention {
    static let table: [String: CppOps.Emit] = [
        // The recurrence as the spec writes it, token by token, per key/value head: the state
        // (dk x dv) lives in present_state (or the workspace), decayed by exp(g), corrected by
        // the delta rule, updated by k (x) v, and read by each query head of the group.
        "LinearAttention": { e, n in
            let g = try AttentionOps.linearGeometry(OpContext(node: n, opset: e.opset))
            let q = try e.input(n, 0), k = try e.input(n, 1), v = try e.input(n, 2), past = try e.optionalInput(n, 3)
            let decay = try e.optionalInput(n, 4), beta = try e.optionalInput(n, 5), y = try e.output(n, 0)
            let present = n.outputs.count > 1 ? try n.output(1).map { try e.tensor($0) } : nil
            guard q.dtype == .float || q.dtype == .double, [k, v, past, decay, beta, present].allSatisfy({ $0 == nil || $0!.dtype == q.dtype }) else {
                throw CompileError(node: n, "LinearAttention on \(q.dtype) is not supported (float32 and float64 are; float16/bfloat16 are computed in float32)")
            }
            let T = q.ctype, dk = g.dk, dv = g.dv, group = g.qHeads / g.kvHeads, stateSize = dk * dv
            // State per (batch, kv head) in present_state when it is there; else in the workspace. Plus dv for the corrected value.
            e.workspace((present == nil ? g.batch * g.kvHeads * stateSize : 0) + dv + 8)
            e.block {
                e.line("\(T)* const vt = static_cast<\(T)*>(work);")
                e.line("\(T)* const states = \(present.map { $0.ptr } ?? "static_cast<\(T)*>(work) + \(dv)");")
                e.line("for (int64_t b = 0; b < \(g.batch); ++b) for (int64_t hk = 0; hk < \(g.kvHeads); ++hk) {")
                e.line("    \(T)* const S = states + (b * \(g.kvHeads) + hk) * \(stateSize);")
                if let past { e.line("    for (int64_t i = 0; i < \(stateSize); ++i) S[i] = \(past.ptr)[(b * \(g.kvHeads) + hk) * \(stateSize) + i];") }
                else { e.line("    for (int64_t i = 0; i < \(stateSize); ++i) S[i] = \(T)(0);") }
                e.line("    for (int64_t t = 0; t < \(g.seq); ++t) {")
                e.line("        const \(T)* const kt = \(k.ptr) + (b * \(g.seq) + t) * \(g.kvHeads * dk) + hk * \(dk);")
                e.line("        const \(T)* const vin = \(v.ptr) + (b * \(g.seq) + t) * \(g.kvHeads * dv) + hk * \(dv);")
                if let decay {
                    let row = "(b * \(g.seq) + t) * \(g.decayPerKey ? g.kvHeads * dk : g.kvHeads)"
                    if g.decayPerKey {
                        e.line("        for (int64_t d = 0; d < \(dk); ++d) { const \(T) f = std::exp(\(decay.ptr)[\(row) + hk * \(dk) + d]); for (int64_t m = 0; m < \(dv); ++m) S[d * \(dv) + m] *= f; }")
                    } else {
                        e.line("        { const \(T) f = std::exp(\(decay.ptr)[\(row) + hk]); for (int64_t i = 0; i < \(stateSize); ++i) S[i] *= f; }")
                    }
                }
                if let beta {
                    e.line("        const \(T) bt = \(beta.ptr)[(b * \(g.seq) + t) * \(g.betaLast) + \(g.betaLast == 1 ? "0" : "hk")];")
                    e.line("        for (int64_t m = 0; m < \(dv); ++m) vt[m] = vin[m];")
                    e.line("        for (int64_t d = 0; d < \(dk); ++d) for (int64_t m = 0; m < \(dv); ++m) vt[m] -= S[d * \(dv) + m] * kt[d];")
                    e.line("        for (int64_t m = 0; m < \(dv); ++m) vt[m] *= bt;")
                } else {
                    e.line("        for (int64_t m = 0; m < \(dv); ++m) vt[m] = vin[m];")
                }
                e.line("        for (int64_t d = 0; d < \(dk); ++d) for (int64_t m = 0; m < \(dv); ++m) S[d * \(dv) + m] += kt[d] * vt[m];")
                e.line("        for (int64_t hg = 0; hg < \(group); ++hg) {")
                e.line("            const int64_t h = hk * \(group) + hg;")
                e.line("            const \(T)* const qt = \(q.ptr) + (b * \(g.seq) + t) * \(g.qHeads * dk) + h * \(dk);")
                e.line("            \(T)* const out = \(y.ptr) + (b * \(g.seq) + t) * \(g.qHeads * dv) + h * \(dv);")
                e.line("            for (int64_t m = 0; m < \(dv); ++m) out[m] = \(T)(0);")
                e.line("            for (int64_t d = 0; d < \(dk); ++d) for (int64_t m = 0; m < \(dv); ++m) out[m] += qt[d] * S[d * \(dv) + m];")
                e.line("            for (int64_t m = 0; m < \(dv); ++m) out[m] *= \(CppOps.literal(g.scale, q.dtype));")
                e.line("        }")
                e.line("    }")
                e.line("}")
            }
        },
        // Depthwise causal 1-D convolution over [past_state (or zeros), input]; present_state is
        // the last k - 1 positions of that sequence.
        "CausalConvWithState": { e, n in
            let g = try AttentionOps.causalConv(OpContext(node: n, opset: e.opset))
            let x = try e.input(n, 0), w = try e.input(n, 1), bias = try e.optionalInput(n, 2), past = try e.optionalInput(n, 3)
            let y = try e.output(n, 0)
            let present = n.outputs.count > 1 ? try n.output(1).map { try e.tensor($0) } : nil
            guard x.dtype == .float || x.dtype == .double, [w, bias, past].allSatisfy({ $0 == nil || $0!.dtype == x.dtype }) else {
                throw CompileError(node: n, "CausalConvWithState on \(x.dtype) is not supported (float32 and float64 are; float16/bfloat16 are computed in float32)")
            }
            let T = x.ctype, K = g.k, L = g.length
            let silu = ["silu", "swish"].contains(n.string("activation") ?? "none")
            e.block {
                e.line("for (int64_t r = 0; r < \(g.batch * g.channels); ++r) {")
                e.line("    const int64_t c = r % \(g.channels);")
                e.line("    const \(T)* const xr = \(x.ptr) + r * \(L); const \(T)* const wr = \(w.ptr) + c * \(K);")
                // Position i of the padded sequence (length L + K - 1).
                let pastAt = past.map { "\($0.ptr)[r * \(K - 1) + i]" } ?? "\(T)(0)"
                e.line("    auto at = [&](int64_t i) -> \(T) { return i < \(K - 1) ? \(pastAt) : xr[i - \(K - 1)]; };")
                e.line("    (void)at;")
                e.line("    for (int64_t t = 0; t < \(L); ++t) {")
                e.line("        \(T) acc = \(bias.map { "\($0.ptr)[c]" } ?? "\(T)(0)");")
                e.line("        for (int64_t j = 0; j < \(K); ++j) acc += wr[j] * at(t + j);")
                if silu { e.line("        acc = acc / (\(T)(1) + std::exp(-acc));") }
                e.line("        \(y.ptr)[r * \(L) + t] = acc;")
                e.line("    }")
                if let present, K > 1 { e.line("    for (int64_t i = 0; i < \(K - 1); ++i) \(present.ptr)[r * \(K - 1) + i] = at(\(L) + i);") }
                e.line("}")
            }
        },
        "RotaryEmbedding": { e, n in
            let r = try AttentionOps.rotary(OpContext(node: n, opset: e.opset))
            let x = try e.input(n, 0), cosC = try e.input(n, 1), sinC = try e.input(n, 2), pid = try e.optionalInput(n, 3)
            let y = try e.output(n, 0)
            let T = x.ctype, half = r.rot / 2
            let interleaved = (n.int("interleaved") ?? 0) != 0
            // Element (b, s, h, d) of X and Y.
            let rowOffset = r.rank == 4 ? "((b * \(r.heads) + h) * \(r.seq) + s) * \(r.head)" : "((b * \(r.seq) + s) * \(r.heads) + h) * \(r.head)"
            e.line("for (int64_t b = 0; b < \(r.batch); ++b) for (int64_t s = 0; s < \(r.seq); ++s) {")
            if let pid {
                // A position outside the cache reads row 0 (defined behaviour for bad run-time ids).
                e.line("    int64_t p = static_cast<int64_t>(\(pid.ptr)[b * \(r.seq) + s]); if (p < 0 || p >= \(r.positions)) p = 0;")
                e.line("    const \(T)* const cs = \(cosC.ptr) + p * \(half); const \(T)* const sn = \(sinC.ptr) + p * \(half);")
            } else {
                e.line("    const \(T)* const cs = \(cosC.ptr) + (b * \(r.seq) + s) * \(half); const \(T)* const sn = \(sinC.ptr) + (b * \(r.seq) + s) * \(half);")
            }
            e.line("    for (int64_t h = 0; h < \(r.heads); ++h) {")
            e.line("        const \(T)* const xr = \(x.ptr) + \(rowOffset); \(T)* const yr = \(y.ptr) + \(rowOffset);")
            e.line("        for (int64_t k = 0; k < \(half); ++k) {")
            let (i1, i2) = interleaved ? ("2 * k", "2 * k + 1") : ("k", "k + \(half)")
            e.line("            const \(T) x1 = xr[\(i1)], x2 = xr[\(i2)];")
            e.line("            const \(T) re = cs[k] * x1 - sn[k] * x2, im = sn[k] * x1 + cs[k] * x2;")
            e.line("            yr[\(i1)] = re; yr[\(i2)] = im;")
            e.line("        }")
            if r.rot < r.head { e.line("        for (int64_t d = \(r.rot); d < \(r.head); ++d) yr[d] = xr[d];") }
            e.line("    }")
            e.line("}")
        },
        "Attention": { e, n in
            let g = try AttentionOps.geometry(OpContext(node: n, opset: e.opset))
            let q = try e.input(n, 0), k = try e.input(n, 1), v = try e.input(n, 2)
            let mask = try e.optionalInput(n, 3), pastK = try e.optionalInput(n, 4), pastV = try e.optionalInput(n, 5)
            let nonpad = try e.optionalInput(n, 6)
            let y = try e.output(n, 0)
            let presentK = n.outputs.count > 1 ? try n.output(1).map { try e.tensor($0) } : nil
            let presentV = n.outputs.count > 2 ? try n.output(2).map { try e.tensor($0) } : nil
            let qk = n.outputs.count > 3 ? try n.output(3).map { try e.tensor($0) } : nil
            guard q.dtype == .float || q.dtype == .double else {
                throw CompileError(node: n, "Attention on \(q.dtype) is not supported (float32 and float64 are; float16/bfloat16 are computed in float32)")
            }
            if pastK != nil && (presentK == nil || presentV == nil) {
                throw CompileError(node: n, "past_key/past_value are given without the present_key/present_value outputs; the spec uses them together")
            }
            let T = q.ctype
            // Strides over (batch, head, row) of a 3-D (batch, seq, heads*d) or 4-D (batch, heads, seq, d) tensor.
            func strides(_ heads: Int, _ len: Int, _ d: Int) -> [Int] {
                g.rank == 3 ? [len * heads * d, d, heads * d] : [heads * len * d, len * d, d]
            }
            func list(_ s: [Int]) -> String { "{" + s.map(String.init).joined(separator: ", ") + "}" }
            let qs = strides(g.qHeads, g.qLen, g.head)
            let kIn = strides(g.kvHeads, g.kvLen, g.head), vIn = strides(g.kvHeads, g.kvLen, g.vHead)
            // With a cache the kernel reads present (4-D, every key), else K and V as given.
            let cached = pastK != nil ? (presentK, presentV) : (nil, nil)
            let (kPtr, ks) = cached.0.map { ($0.ptr, [g.kvHeads * g.totalLen * g.head, g.totalLen * g.head, g.head]) } ?? (k.ptr, kIn)
            let (vPtr, vs) = cached.1.map { ($0.ptr, [g.kvHeads * g.totalLen * g.vHead, g.totalLen * g.vHead, g.vHead]) } ?? (v.ptr, vIn)
            // The kernel's workspace (in 8-byte units): a double row of biases, then Q and K of one
            // head (K's rows rounded up to whole slivers), its scores, and the GEMM packing buffer, in T.
            let width = q.dtype.byteSize!
            let pack = max(CppNN.packElements(m: g.qLen, n: g.totalLen, k: g.head, rsb: 1, csb: g.head, csa: 1),
                           CppNN.packElements(m: g.qLen, n: g.vHead, k: g.totalLen, rsb: vs[2], csb: 1, csa: 1))
            let keys = try Checked.mul(try Checked.sum([g.totalLen, CppRuntime.maxNR - 1], "the attention workspace") / CppRuntime.maxNR,
                                       CppRuntime.maxNR, "the attention workspace")  // whole slivers (sofie_rt::kSliver)
            let elements = try Checked.sum([try Checked.mul(g.qLen, g.head), try Checked.mul(keys, g.head),
                                            try Checked.mul(g.qLen, g.totalLen), pack], "the attention workspace")
            let bytes = try Checked.mul(elements, width, "the attention workspace")
            guard bytes <= Limits.maxTensorBytes else {
                throw CompileError(node: n, "its workspace would take \(bytes) bytes (\(g.qLen) x \(g.totalLen) scores of one head), more than the \(Limits.maxTensorBytes)-byte limit")
            }
            e.workspace(g.totalLen + (bytes + 7) / 8)
            e.block {
                // The cache: present = past's keys, then the new ones, (batch, kv heads, total, d).
                for (name, cur, past, present, d, curStrides) in [("kstride", k, pastK, presentK, g.head, kIn), ("vstride", v, pastV, presentV, g.vHead, vIn)] {
                    guard let present else { continue }
                    e.line("{ const int64_t \(name)[3] = \(list(curStrides)); sofie_rt::attention_cache<\(T)>(\(past?.ptr ?? "nullptr"), \(cur.ptr), \(name), \(present.ptr), \(g.batch), \(g.kvHeads), \(g.pastLen), \(g.kvLen), \(d)); }")
                }
                let ys = strides(g.qHeads, g.qLen, g.vHead)
                var ms = [0, 0, 0], mlen = 0
                if let mask {
                    let full = EmitContext.broadcastStrides(Array(mask.shape.dropLast()) + [1], [g.batch, g.qHeads, g.qLen, 1])
                    // broadcastStrides counts the key axis as 1 wide: scale the others by its real length.
                    ms = full.prefix(3).map { $0 * mask.shape.last! }
                    mlen = mask.shape.last!
                }
                let scale = n.float("scale").map(Double.init) ?? 1 / Double(g.head).squareRoot()
                // sqrt(scale) as the input type rounds it (the spec's ScaleFactorF = Cast(sqrt(scale), T)).
                let root = q.dtype == .float ? Double(Float(scale.squareRoot())) : scale.squareRoot()
                let softcap = Double(n.float("softcap") ?? 0)
                let p = [
                    "\(g.batch), \(g.qHeads), \(g.kvHeads), \(g.qLen), \(g.totalLen), \(g.head), \(g.vHead)",
                    list(qs), list(ks), list(vs), list(ys), list(ms), "\(mlen)", "\(g.pastLen)",
                    CppOps.literal(root, .double), CppOps.literal(softcap, .double),
                    "\(n.int("is_causal") ?? 0 != 0 ? 1 : 0), \(n.int("left_window_size") ?? -1), \(n.int("right_window_size") ?? -1)",
                    "\(n.int("qk_matmul_output_mode") ?? 0)",
                ]
                e.line("const sofie_rt::AttentionParams params = {\(p.joined(separator: ", "))};")
                let M = mask?.ctype ?? T
                e.line("sofie_rt::attention<\(T), \(M)>(params, \(q.ptr), \(kPtr), \(vPtr), \(mask.map { "static_cast<const \(M)*>(\($0.ptr))" } ?? "static_cast<const \(M)*>(nullptr)"), \(nonpad?.ptr ?? "nullptr"), \(y.ptr), \(qk?.ptr ?? "nullptr"), work);")
            }
        },
    ]
}
