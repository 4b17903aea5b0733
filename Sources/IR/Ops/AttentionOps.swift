/// ONNX Attention (opsets 23-25): scaled dot-product attention over 3-D (batch, seq, heads *
/// head_size) or 4-D (batch, heads, seq, head_size) Q/K/V, with grouped-query heads, an
/// internal KV cache (past/present), an external one (nonpad_kv_seqlen), masks, causal and
/// sliding windows, softcap, and the optional QK output.
public enum AttentionOps {
    /// What shape inference derives once, for the emitter too.
    public struct Geometry {
        public var batch = 0, qHeads = 0, kvHeads = 0, qLen = 0, kvLen = 0, pastLen = 0, head = 0, vHead = 0
        public var rank = 4
        /// Keys attended: the cache's and the new ones.
        public var totalLen: Int { pastLen + kvLen }
    }

    public static func geometry(_ c: OpContext) throws -> Geometry {
        let q = try c.shape(0), k = try c.shape(1), v = try c.shape(2)
        guard q.count == 3 || q.count == 4, k.count == q.count, v.count == q.count else {
            throw c.invalid("Q, K and V must all be 3-D or all 4-D (ranks \(q.count), \(k.count), \(v.count))")
        }
        var g = Geometry()
        g.rank = q.count
        g.batch = q[0]
        guard k[0] == g.batch, v[0] == g.batch else { throw c.invalid("Q, K and V have different batch sizes (\(q[0]), \(k[0]), \(v[0]))") }
        if q.count == 3 {
            guard let qh = c.node.int("q_num_heads"), let kvh = c.node.int("kv_num_heads"), qh > 0, kvh > 0 else {
                throw c.invalid("3-D inputs need positive q_num_heads and kv_num_heads attributes")
            }
            guard q[2] % qh == 0, k[2] % kvh == 0, v[2] % kvh == 0 else {
                throw c.invalid("hidden sizes \(q[2]), \(k[2]), \(v[2]) are not multiples of the head counts \(qh), \(kvh)")
            }
            (g.qHeads, g.kvHeads, g.qLen, g.kvLen) = (qh, kvh, q[1], k[1])
            (g.head, g.vHead) = (q[2] / qh, v[2] / kvh)
            guard k[2] / kvh == g.head else { throw c.invalid("Q's head size \(g.head) differs from K's \(k[2] / kvh)") }
            guard v[1] == k[1] else { throw c.invalid("K and V have different sequence lengths (\(k[1]), \(v[1]))") }
        } else {
            (g.qHeads, g.kvHeads, g.qLen, g.kvLen, g.head, g.vHead) = (q[1], k[1], q[2], k[2], q[3], v[3])
            guard k[3] == g.head else { throw c.invalid("Q's head size \(g.head) differs from K's \(k[3])") }
            guard v[1] == k[1], v[2] == k[2] else { throw c.invalid("K \(k) and V \(v) disagree on heads or sequence length") }
        }
        guard g.kvHeads > 0, g.qHeads % g.kvHeads == 0 else {
            throw c.invalid("q_num_heads \(g.qHeads) is not a multiple of kv_num_heads \(g.kvHeads)")
        }
        if c.has(4) != c.has(5) { throw c.invalid("past_key and past_value must be given together") }
        if c.has(4) {
            let pk = try c.shape(4), pv = try c.shape(5)
            guard pk.count == 4, pv.count == 4, pk[0] == g.batch, pk[1] == g.kvHeads, pk[3] == g.head,
                  pv[0] == g.batch, pv[1] == g.kvHeads, pv[2] == pk[2], pv[3] == g.vHead else {
                throw c.invalid("past_key \(pk) / past_value \(pv) do not match (batch \(g.batch), kv heads \(g.kvHeads), head sizes \(g.head), \(g.vHead))")
            }
            g.pastLen = pk[2]
            if c.has(6) { throw c.invalid("nonpad_kv_seqlen cannot be combined with past_key/past_value") }
        }
        if c.has(3) {
            let m = try c.shape(3), dt = try c.dtype(3)
            let qt = try c.dtype(0)
            guard dt == .bool || dt == qt else { throw c.invalid("attn_mask must be bool or Q's type, not \(dt)") }
            guard !m.isEmpty, m.count <= 4, m.last! <= g.totalLen,
                  broadcastShapes(m.dropLast() + [1], [g.batch, g.qHeads, g.qLen, 1]) == [g.batch, g.qHeads, g.qLen, 1] else {
                throw c.invalid("attn_mask \(m) does not broadcast to (batch \(g.batch), heads \(g.qHeads), \(g.qLen) queries, at most \(g.totalLen) keys)")
            }
        }
        if c.has(6) {
            let (nt, ns) = (try c.dtype(6), try c.shape(6))
            guard nt == .int64, ns == [g.batch] else { throw c.invalid("nonpad_kv_seqlen must be int64 of shape [\(g.batch)]") }
        }
        for w in ["left_window_size", "right_window_size"] where c.int(w, -1) < -1 {
            throw c.invalid("\(w) = \(c.int(w, -1)); it must be -1 (unbounded) or nonnegative")
        }
        let mode = c.int("qk_matmul_output_mode", 0)
        guard (0...3).contains(mode) else { throw c.invalid("qk_matmul_output_mode = \(mode); it must be 0 to 3") }
        return g
    }

    /// RotaryEmbedding (opset 23): X as 4-D (batch, heads, seq, head) or 3-D (batch, seq,
    /// heads * head); the caches (positions, rot/2), read at position_ids (batch, seq), or
    /// (batch, seq, rot/2) without them.
    public struct Rotary {
        public var batch = 0, heads = 0, seq = 0, head = 0, rot = 0, positions = 0, rank = 4
        public var hasPositionIds = false
    }

    public static func rotary(_ c: OpContext) throws -> Rotary {
        let x = try c.shape(0), cc = try c.shape(1), sc = try c.shape(2)
        var r = Rotary()
        r.rank = x.count
        switch x.count {
        case 4: (r.batch, r.heads, r.seq, r.head) = (x[0], x[1], x[2], x[3])
        case 3:
            let h = c.int("num_heads", 0)
            guard h > 0, x[2] % h == 0 else { throw c.invalid("a 3-D input needs num_heads dividing its hidden size \(x[2]) (num_heads = \(h))") }
            (r.batch, r.seq, r.heads, r.head) = (x[0], x[1], h, x[2] / h)
        default: throw c.invalid("X must be 3-D or 4-D, not \(x)")
        }
        let dim = c.int("rotary_embedding_dim", 0)
        r.rot = dim == 0 ? r.head : dim
        guard r.rot > 0, r.rot <= r.head, r.rot % 2 == 0 else { throw c.invalid("rotary_embedding_dim \(r.rot) must be even and at most the head size \(r.head)") }
        guard cc == sc else { throw c.invalid("cos_cache \(cc) and sin_cache \(sc) differ in shape") }
        r.hasPositionIds = c.has(3)
        if r.hasPositionIds {
            guard try c.shape(3) == [r.batch, r.seq], cc.count == 2, cc[1] == r.rot / 2 else {
                throw c.invalid("with position_ids (batch, seq) = [\(r.batch), \(r.seq)], the caches must be (positions, \(r.rot / 2)); got \(cc), position_ids \(try c.shape(3))")
            }
            r.positions = cc[0]
        } else {
            guard cc == [r.batch, r.seq, r.rot / 2] else { throw c.invalid("without position_ids the caches must be [\(r.batch), \(r.seq), \(r.rot / 2)], not \(cc)") }
        }
        return r
    }

    /// LinearAttention's (opset 27) shapes: 3-D packed (batch, seq, heads * d) Q, K, V; decay per
    /// key head or per key dimension, beta per key head or one.
    public struct LinearGeometry {
        public var batch = 0, seq = 0, qHeads = 0, kvHeads = 0, dk = 0, dv = 0
        public var gating = false, delta = false
        /// decay's last dimension is kvHeads * dk (one per key dimension), not kvHeads.
        public var decayPerKey = false
        /// beta's last dimension (kvHeads or 1).
        public var betaLast = 1
        public var scale = 1.0
    }

    public static func linearGeometry(_ c: OpContext) throws -> LinearGeometry {
        let q = try c.shape(0), k = try c.shape(1), v = try c.shape(2)
        guard q.count == 3, k.count == 3, v.count == 3 else { throw c.invalid("query, key and value must be 3-D (batch, seq, heads * size), not \(q), \(k), \(v)") }
        guard let qh = c.node.int("q_num_heads"), let kvh = c.node.int("kv_num_heads"), qh > 0, kvh > 0, qh % kvh == 0 else {
            throw c.invalid("q_num_heads and kv_num_heads must be positive, q_num_heads a multiple of kv_num_heads")
        }
        guard k[0] == q[0], v[0] == q[0], k[1] == q[1], v[1] == q[1] else { throw c.invalid("query \(q), key \(k) and value \(v) differ in batch or sequence length") }
        guard q[2] % qh == 0, v[2] % kvh == 0, k[2] == kvh * (q[2] / qh) else {
            throw c.invalid("hidden sizes \(q[2]), \(k[2]), \(v[2]) do not split into \(qh) query and \(kvh) key/value heads of one key size")
        }
        var g = LinearGeometry()
        (g.batch, g.seq, g.qHeads, g.kvHeads, g.dk, g.dv) = (q[0], q[1], qh, kvh, q[2] / qh, v[2] / kvh)
        let rule = c.node.string("update_rule") ?? "gated_delta"
        guard ["linear", "gated", "delta", "gated_delta"].contains(rule) else { throw c.invalid("update_rule '\(rule)' is not one of linear, gated, delta, gated_delta") }
        g.gating = rule.hasPrefix("gated")
        g.delta = rule.hasSuffix("delta")
        if c.has(3) {
            let p = try c.shape(3)
            guard p == [g.batch, kvh, g.dk, g.dv] else { throw c.invalid("past_state must be \([g.batch, kvh, g.dk, g.dv]), not \(p)") }
        }
        guard c.has(4) == g.gating else { throw c.invalid("update_rule '\(rule)' \(g.gating ? "needs" : "takes no") decay input") }
        guard c.has(5) == g.delta else { throw c.invalid("update_rule '\(rule)' \(g.delta ? "needs" : "takes no") beta input") }
        if g.gating {
            let d = try c.shape(4)
            guard d.count == 3, d[0] == g.batch, d[1] == g.seq, d[2] == kvh || d[2] == kvh * g.dk else {
                throw c.invalid("decay must be [\(g.batch), \(g.seq), \(kvh)] or [\(g.batch), \(g.seq), \(kvh * g.dk)], not \(d)")
            }
            g.decayPerKey = d[2] == kvh * g.dk && d[2] != kvh
        }
        if g.delta {
            let b = try c.shape(5)
            guard b.count == 3, b[0] == g.batch, b[1] == g.seq, b[2] == kvh || b[2] == 1 else {
                throw c.invalid("beta must be [\(g.batch), \(g.seq), \(kvh)] or [\(g.batch), \(g.seq), 1], not \(b)")
            }
            g.betaLast = b[2]
        }
        let s = Double(c.node.float("scale") ?? 0)
        g.scale = s == 0 ? 1 / Double(g.dk).squareRoot() : s
        return g
    }

    /// CausalConvWithState (opset 27): (batch, channels, length) input, (channels, 1, k) weight.
    public static func causalConv(_ c: OpContext) throws -> (batch: Int, channels: Int, length: Int, k: Int) {
        let x = try c.shape(0), w = try c.shape(1)
        guard x.count == 3, w.count == 3, w[0] == x[1], w[1] == 1, w[2] >= 1 else {
            throw c.invalid("input must be (batch, channels, length) and weight (channels, 1, k); got \(x) and \(w)")
        }
        if c.has(2) { guard try c.shape(2) == [x[1]] else { throw c.invalid("bias must be [\(x[1])], not \(try c.shape(2))") } }
        if c.has(3) { guard try c.shape(3) == [x[0], x[1], w[2] - 1] else { throw c.invalid("past_state must be \([x[0], x[1], w[2] - 1]), not \(try c.shape(3))") } }
        let act = c.node.string("activation") ?? "none"
        guard ["none", "silu", "swish"].contains(act) else { throw c.invalid("activation '\(act)' is not one of none, silu, swish") }
        return (x[0], x[1], x[2], w[2])
    }

    static let table: [String: OpDef] = [
        "LinearAttention": OpDef(infer: { c in
            let g = try linearGeometry(c)
            let dt = try c.dtype(0)
            return Array([tt(dt, [g.batch, g.seq, g.qHeads * g.dv]), tt(c.has(3) ? try c.dtype(3) : dt, [g.batch, g.kvHeads, g.dk, g.dv])].prefix(max(1, c.node.outputs.count)))
        }),
        "CausalConvWithState": OpDef(infer: { c in
            let g = try causalConv(c)
            let dt = try c.dtype(0)
            return Array([tt(dt, [g.batch, g.channels, g.length]), tt(dt, [g.batch, g.channels, g.k - 1])].prefix(max(1, c.node.outputs.count)))
        }),
        "RotaryEmbedding": OpDef(infer: { c in
            _ = try rotary(c)
            return [tt(try c.dtype(0), try c.shape(0))]
        }),
        "Attention": OpDef(infer: { c in
            let g = try geometry(c)
            let dt = try c.dtype(0)
            let y = g.rank == 3 ? [g.batch, g.qLen, g.qHeads * g.vHead] : [g.batch, g.qHeads, g.qLen, g.vHead]
            return [tt(dt, y), tt(dt, [g.batch, g.kvHeads, g.totalLen, g.head]), tt(dt, [g.batch, g.kvHeads, g.totalLen, g.vHead]),
                    tt(dt, [g.batch, g.qHeads, g.qLen, g.totalLen])].prefix(max(1, c.node.outputs.count)).map { $0 }
        }),
    ]
}
