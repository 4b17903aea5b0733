import Foundation
import SofieIR

/// RNN, GRU and LSTM. The input projection of every time step (and batch row) is one matrix
/// product before the recurrence; each step then adds h·Rᵀ (one row times Rᵀ packed into
/// column panels, streamed in order) and applies the gate nonlinearities over whole gate blocks, on the target's
/// vectors for float. W (transposed, [input, gates·hidden]) and R (packed) are stored so when
/// they are constants, else rearranged into the workspace at the start of the call. Computation is in
/// the tensor's own type (float as ONNX Runtime does).
enum CppRecurrent {
    /// C++ expression of an ONNX recurrent activation applied to `x0` (type `T`), for the
    /// activations without an array kernel.
    static func activation(_ name: String, _ alpha: Double?, _ beta: Double?, _ x0: String, _ T: String, node: Node) throws -> String {
        let x = "(\(x0))"
        func lit(_ v: Double) -> String { "\(T)(\(v))" }
        switch name.lowercased() {
        case "sigmoid": return "sofie_rt::fast_sigmoid(\(x))"
        case "tanh": return "sofie_rt::fast_tanh(\(x))"
        case "relu": return "std::max(\(T)(0), \(x))"
        case "leakyrelu": return "(\(x) >= \(T)(0) ? \(x) : \(lit(alpha ?? 0.01)) * \(x))"
        case "thresholdedrelu": return "(\(x) > \(lit(alpha ?? 1.0)) ? \(x) : \(T)(0))"
        case "hardsigmoid": return "std::max(\(T)(0), std::min(\(T)(1), \(lit(alpha ?? 0.2)) * \(x) + \(lit(beta ?? 0.5))))"
        case "elu": return "(\(x) >= \(T)(0) ? \(x) : \(lit(alpha ?? 1.0)) * (std::exp(\(x)) - \(T)(1)))"
        case "softsign": return "\(x) / (\(T)(1) + std::abs(\(x)))"
        case "softplus": return "std::log(\(T)(1) + std::exp(\(x)))"
        case "affine": return "(\(lit(alpha ?? 1.0)) * \(x) + \(lit(beta ?? 0.0)))"
        case "scaledtanh": return "(\(lit(alpha ?? 1.0)) * sofie_rt::fast_tanh(\(lit(beta ?? 1.0)) * \(x)))"
        default: throw CompileError(node: node, "activation '\(name)' is not supported")
        }
    }

    /// One activation of a direction: its name and parameters.
    struct Activation {
        let name: String, alpha: Double?, beta: Double?
        /// The runtime's array function for it, when it has one.
        var arrayFunction: String? {
            switch name.lowercased() {
            case "sigmoid": return "Sigmoid"
            case "tanh": return "Tanh"
            default: return nil
            }
        }
    }

    static var table: [String: CppOps.Emit] {
        var t: [String: CppOps.Emit] = [:]
        for op in ["RNN", "GRU", "LSTM"] { t[op] = { e, n in try emit(e, n, op) } }
        return t
    }

    /// The per-direction slices of a constant W [D, G·hidden, input], each read as the
    /// [input, G·hidden] matrix Wᵀ and packed into gemm_packed's slivers (every step's input
    /// projection is one product with it); nil when W is not a constant.
    static func packedSlices(_ e: EmitContext, _ v: Value?, directions: Int) -> [String]? {
        guard let v, let t = v.initializer, t.dims.count == 3, t.dims[0] == directions,
              t.dataType == .float || t.dataType == .double, let raw = t.rawBytes, let ctype = CppTypes.name(t.dataType) else { return nil }
        let rows = t.dims[1], cols = t.dims[2], size = t.dataType.byteSize!
        guard raw.count == directions * rows * cols * size else { return nil }
        return (0..<directions).map { d in
            let bytes = EmitContext.slivers(raw, at: d * rows * cols * size, K: cols, N: rows, transposed: true, elementSize: size)
            withExtendedLifetime(t) {}
            let label = "\(v.name)_packed\(directions > 1 ? "_\(d)" : "")"
            return e.weightPointer(bytes, key: "recurrent-packed:\(d):" + v.name, label: label, ctype: ctype, shape: [bytes.count / size])
        }
    }

    /// The per-direction column ranges of a constant R [D, gates·hidden, hidden], read as the
    /// [hidden, gates·hidden] matrix Rᵀ, each packed into the runtime's panels (pack_panels'
    /// layout) and stored once in the weights; nil when R is not a constant.
    static func packedPanels(_ e: EmitContext, _ v: Value?, directions: Int, ranges: [(start: Int, count: Int)]) -> [[String]]? {
        guard let v, let t = v.initializer, t.dims.count == 3, t.dims[0] == directions,
              t.dataType == .float || t.dataType == .double, let raw = t.rawBytes, let ctype = CppTypes.name(t.dataType) else { return nil }
        let rows = t.dims[1], k = t.dims[2], size = t.dataType.byteSize!, pw = CppRuntime.gemvPanel
        guard raw.count == directions * rows * k * size, ranges.allSatisfy({ $0.start + $0.count <= rows }) else { return nil }
        return (0..<directions).map { d in
            ranges.enumerated().map { index, range in
                var bytes = [UInt8](repeating: 0, count: CppRuntime.panelElements(k: k, n: range.count) * size)
                for p in 0..<((range.count + pw - 1) / pw) {
                    for kk in 0..<k {
                        for c in 0..<min(pw, range.count - p * pw) {
                            let src = ((d * rows + range.start + p * pw + c) * k + kk) * size
                            let dst = ((p * k + kk) * pw + c) * size
                            for b in 0..<size { bytes[dst + b] = raw[src + b] }
                        }
                    }
                }
                withExtendedLifetime(t) {}
                return e.weightPointer(bytes, key: "recurrent-panels:\(d):\(index):" + v.name, label: "\(v.name)_panels\(directions > 1 ? "_\(d)" : "")\(ranges.count > 1 ? "_\(index)" : "")", ctype: ctype, shape: [bytes.count / size])
            }
        }
    }

    /// Whether a constant is read only as W or R of recurrent ops (it is then stored transposed only).
    static func readOnlyAsRecurrentWeight(_ v: Value) -> Bool {
        guard let t = v.initializer, t.dims.count == 3, t.dataType == .float || t.dataType == .double, !v.uses.isEmpty else { return false }
        return v.uses.allSatisfy { ["RNN", "GRU", "LSTM"].contains($0.node.opType) && ($0.index == 1 || $0.index == 2) }
    }

    static func emit(_ e: EmitContext, _ n: Node, _ op: String) throws {
        let g = try RecurrentOps.geometry(OpContext(node: n, opset: e.opset))
        let x = try e.input(n, 0)
        guard x.dtype == .float || x.dtype == .double else { throw CompileError(node: n, "\(op) needs float32 or float64 input") }
        func out(_ i: Int) throws -> CTensor? { n.outputs.count > i && n.output(i) != nil ? try e.output(n, i) : nil }
        let b = try e.optionalInput(n, 3), seqLens = try e.optionalInput(n, 4), h0 = try e.optionalInput(n, 5)
        let c0 = op == "LSTM" ? try e.optionalInput(n, 6) : nil, peep = op == "LSTM" ? try e.optionalInput(n, 7) : nil
        let y = try out(0), yh = try out(1), yc = op == "LSTM" ? try out(2) : nil
        let G = RecurrentOps.gates(op), H = g.hidden, B = g.batch, I = g.input, S = g.seq, D = g.directions
        let GH = G * H
        let T = x.ctype
        // The number of steps may be a run-time extent (the workspace is sized for its bound).
        let steps = x.dims[g.layout == 0 ? 0 : 1], Sc = e.factor(steps)
        guard x.dims.enumerated().allSatisfy({ $0.offset == (g.layout == 0 ? 0 : 1) || $0.element.isConstant }) else {
            throw CompileError(node: n, "\(op): only the number of steps may be a run-time dimension")
        }
        if op == "LSTM" && (n.int("input_forget") ?? 0) == 1 { throw CompileError(node: n, "input_forget=1 is not supported") }
        // Activations: per direction f, g(, h) with defaults.
        let defaults = op == "LSTM" ? ["Sigmoid", "Tanh", "Tanh"] : (op == "GRU" ? ["Sigmoid", "Tanh"] : ["Tanh"])
        let names = n.attribute("activations").flatMap { v -> [String]? in if case .strings(let s) = v { return s.map { String(decoding: $0, as: UTF8.self) } }; return nil } ?? []
        let alphas = n.floats("activation_alpha") ?? [], betas = n.floats("activation_beta") ?? []
        var acts: [[Activation]] = []
        var k = 0
        for _ in 0..<D {
            var list: [Activation] = []
            for d in defaults.indices {
                let name = names.isEmpty ? defaults[d] : names[min(k, names.count - 1)]
                let a = k < alphas.count && !names.isEmpty ? Double(alphas[k]) : nil
                let bb = k < betas.count && !names.isEmpty ? Double(betas[k]) : nil
                _ = try activation(name, a, bb, "v", T, node: n)  // unsupported names fail here
                list.append(Activation(name: name, alpha: a, beta: bb))
                k += 1
            }
            acts.append(list)
        }
        // A clip threshold <= 0 would clip every gate to 0. ROOT TMVA SOFIE's recurrent test
        // models carry clip=0 meaning "no clipping" (TMVA's reading; ONNX Runtime refuses it):
        // read it so, and say so.
        var clip = n.float("clip").map { Double($0) }
        if let c = clip, !(c > 0) {
            e.warnings.append("node '\(n.name)' (op \(op)): clip=\(c) is not a positive threshold; read as no clipping")
            clip = nil
        }
        /// Clips `count` values at `p` (when clip is set) and applies `act` in place.
        func activate(_ act: Activation, _ p0: String, _ count: Int) throws {
            let p = p0.contains(" ") ? "(\(p0))" : p0
            if let clip { e.line("for (int64_t j = 0; j < \(count); ++j) \(p)[j] = std::max(\(T)(-\(clip)), std::min(\(T)(\(clip)), \(p)[j]));") }
            if let f = act.arrayFunction {
                e.line("sofie_rt::apply_array<sofie_rt::Fn::\(f)>(\(p), \(count));")
            } else {
                e.line("for (int64_t j = 0; j < \(count); ++j) \(p)[j] = \(try activation(act.name, act.alpha, act.beta, "\(p)[j]", T, node: n));")
            }
        }
        let linearBeforeReset = op == "GRU" && (n.int("linear_before_reset") ?? 0) == 1
        func stateIndex(_ dir: String) -> String { g.layout == 0 ? "(\(dir) * \(B) + bi) * \(H)" : "(bi * \(D) + \(dir)) * \(H)" }

        // Weights as [input, G·H] and [hidden, G·H]: stored so when constant, else transposed here.
        let wv = n.input(1), rv = n.input(2)
        // Rᵀ's columns as the steps read them: all gates at once, or GRU's z and r, then h.
        let ranges: [(start: Int, count: Int)] = op == "GRU" ? [(0, 2 * H), (2 * H, H)] : [(0, GH)]
        let wConst = packedSlices(e, wv, directions: D), rConst = packedPanels(e, rv, directions: D, ranges: ranges)
        let w = wConst == nil ? try e.input(n, 1) : nil, r = rConst == nil ? try e.input(n, 2) : nil

        // Workspace (in elements of T, regions 64-byte aligned): projected inputs of all steps,
        // states, bias sums, a step's scratch row, run-time transposed weights, GEMM packing.
        var offset = 0
        func region(_ count: Int) -> Int { let o = offset; offset += (count + 15) / 16 * 16; return o }
        let xwAt = region(S * B * GH), hsAt = region(D * B * H), csAt = region(op == "LSTM" ? D * B * H : 0)
        let biasAt = region(GH), rbhAt = region(linearBeforeReset ? H : 0), tmpAt = region(op == "RNN" ? 0 : H)
        let panelSizes = ranges.map { CppRuntime.panelElements(k: H, n: $0.count) }
        let wtAt = region(wConst == nil ? I * GH : 0), rtAt = region(rConst == nil ? panelSizes.reduce(0, +) : 0)
        let pack = wConst == nil ? CppNN.packElements(m: S * B, n: GH, k: I, rsb: GH, csb: 1, csa: 1) : 0
        let packAt = region(pack)
        let elementBytes = x.dtype.byteSize ?? 8
        e.workspace((offset * elementBytes + 7) / 8)
        try e.block {
            e.line("\(T)* const ws = static_cast<\(T)*>(work);")
            e.line("\(T)* const xw = ws + \(xwAt);  // [steps x batch, \(G) gates x \(H)]: inputs projected, with biases")
            e.line("\(T)* const hs = ws + \(hsAt);")
            if op == "LSTM" { e.line("\(T)* const cs = ws + \(csAt);") }
            e.line("\(T)* const bias = ws + \(biasAt);")
            if linearBeforeReset { e.line("\(T)* const rbh = ws + \(rbhAt);") }
            if op != "RNN" { e.line("\(T)* const tmp = ws + \(tmpAt);") }
            // Initial states.
            for (state, initial) in [("hs", h0), ("cs", c0)] where state == "hs" || op == "LSTM" {
                if let initial {
                    e.line("for (int64_t dir = 0; dir < \(D); ++dir) for (int64_t bi = 0; bi < \(B); ++bi) for (int64_t j = 0; j < \(H); ++j) \(state)[(dir * \(B) + bi) * \(H) + j] = \(initial.ptr)[\(stateIndex("dir")) + j];")
                } else {
                    e.line("std::fill_n(\(state), \(D * B * H), \(T)(0));")
                }
            }
            if let y { e.line("std::fill_n(\(y.ptr), \(e.count(y)), \(T)(0));") }
            for dir in 0..<D {
                let reverse = n.string("direction") == "reverse" || dir == 1
                let act = acts[dir]
                e.line("// direction \(dir)\(reverse ? " (reverse)" : "")")
                let wt: String, panels: [String]
                if let wConst { wt = wConst[dir] } else {
                    wt = "(ws + \(wtAt))"
                    e.line("for (int64_t q = 0; q < \(GH); ++q) for (int64_t i = 0; i < \(I); ++i) \(wt)[i * \(GH) + q] = \(w!.ptr)[\(dir * GH * I) + q * \(I) + i];")
                }
                if let rConst { panels = rConst[dir] } else {
                    var at = rtAt
                    panels = ranges.indices.map { i in defer { at += panelSizes[i] }; return "(ws + \(at))" }
                    for (i, range) in ranges.enumerated() {
                        e.line("sofie_rt::pack_panels<\(T)>(\(H), \(range.count), \(r!.ptr) + \(dir * GH * H + range.start * H), 1, \(H), \(panels[i]));")
                    }
                }
                // Biases: Wb + Rb, except GRU's hidden-gate Rb under linear_before_reset (added inside r ⊙ (·)).
                if let b {
                    let wb = "(\(b.ptr) + \(dir * 2 * GH))", rb = "(\(b.ptr) + \(dir * 2 * GH + GH))"
                    let merged = linearBeforeReset ? 2 * H : GH
                    e.line("for (int64_t q = 0; q < \(merged); ++q) bias[q] = \(wb)[q] + \(rb)[q];")
                    if linearBeforeReset {
                        e.line("for (int64_t q = \(2 * H); q < \(GH); ++q) bias[q] = \(wb)[q];")
                        e.line("for (int64_t j = 0; j < \(H); ++j) rbh[j] = \(rb)[\(2 * H) + j];")
                    }
                } else {
                    e.line("std::fill_n(bias, \(GH), \(T)(0));")
                    if linearBeforeReset { e.line("std::fill_n(rbh, \(H), \(T)(0));") }
                }
                // Every step's input projection at once (rows of X in their stored order).
                CppNN.gemmCall(e, x.dtype, m: steps * DimExpr(B), n: DimExpr(GH), k: DimExpr(I), a: x.ptr, rsa: DimExpr(I), csa: 1, b: wt, rsb: DimExpr(GH), csb: 1,
                               c: "xw", ldc: DimExpr(GH), accumulate: false, colBias: "bias", work: pack > 0 ? "ws + \(packAt)" : "nullptr",
                               packedB: wConst != nil)
                e.line("for (int64_t bi = 0; bi < \(B); ++bi) {")
                e.line("    const int64_t len = \(seqLens.map { "std::min<int64_t>(\(Sc), std::max<int64_t>(0, static_cast<int64_t>(\($0.ptr)[bi])))" } ?? Sc);")
                e.line("    \(T)* const h = hs + (\(dir) * \(B) + bi) * \(H);")
                if op == "LSTM" { e.line("    \(T)* const c = cs + (\(dir) * \(B) + bi) * \(H);") }
                e.line("    for (int64_t s = 0; s < len; ++s) {")
                e.line("        const int64_t t = \(reverse ? "len - 1 - s" : "s");")
                e.line("        \(T)* const gates = xw + (\(g.layout == 0 ? "t * \(B) + bi" : "bi * \(Sc) + t")) * \(GH);")
                try e.indented(2) {
                    /// c += a · Rᵀ over the columns of range `index`.
                    func recurrent(_ index: Int, _ a: String, _ c: String) {
                        e.line("sofie_rt::gemv_panels<\(T)>(\(H), \(ranges[index].count), \(a), \(panels[index]), \(c), true);")
                    }
                    switch op {
                    case "RNN":
                        recurrent(0, "h", "gates")
                        try activate(act[0], "gates", H)
                        e.line("std::memcpy(h, gates, sizeof(\(T)) * \(H));")
                    case "GRU":
                        // z and r, then the hidden gate from r and h.
                        recurrent(0, "h", "gates")
                        try activate(act[0], "gates", 2 * H)
                        if linearBeforeReset {
                            e.line("std::memcpy(tmp, rbh, sizeof(\(T)) * \(H));")
                            recurrent(1, "h", "tmp")
                            e.line("for (int64_t j = 0; j < \(H); ++j) gates[\(2 * H) + j] += gates[\(H) + j] * tmp[j];")
                        } else {
                            e.line("for (int64_t j = 0; j < \(H); ++j) tmp[j] = gates[\(H) + j] * h[j];")
                            recurrent(1, "tmp", "gates + \(2 * H)")
                        }
                        try activate(act[1], "gates + \(2 * H)", H)
                        e.line("for (int64_t j = 0; j < \(H); ++j) h[j] = (\(T)(1) - gates[j]) * gates[\(2 * H) + j] + gates[j] * h[j];")
                    default:
                        // LSTM gates i, o, f, c; peepholes add P ⊙ c to i and f (old c) and o (new c).
                        recurrent(0, "h", "gates")
                        if let peep {
                            let pp = "(\(peep.ptr) + \(dir * 3 * H))"
                            e.line("for (int64_t j = 0; j < \(H); ++j) { gates[j] += \(pp)[j] * c[j]; gates[\(2 * H) + j] += \(pp)[\(2 * H) + j] * c[j]; }")
                            try activate(act[0], "gates", H)
                            try activate(act[0], "gates + \(2 * H)", H)
                        } else {
                            try activate(act[0], "gates", 3 * H)
                        }
                        try activate(act[1], "gates + \(3 * H)", H)
                        e.line("for (int64_t j = 0; j < \(H); ++j) c[j] = gates[\(2 * H) + j] * c[j] + gates[j] * gates[\(3 * H) + j];")
                        if let peep {
                            e.line("for (int64_t j = 0; j < \(H); ++j) gates[\(H) + j] += \(peep.ptr)[\(dir * 3 * H + H) + j] * c[j];")
                            try activate(act[0], "gates + \(H)", H)
                        }
                        e.line("std::memcpy(tmp, c, sizeof(\(T)) * \(H));")
                        // The output activation of the cell state is not clipped.
                        if let f = act[2].arrayFunction {
                            e.line("sofie_rt::apply_array<sofie_rt::Fn::\(f)>(tmp, \(H));")
                        } else {
                            e.line("for (int64_t j = 0; j < \(H); ++j) tmp[j] = \(try activation(act[2].name, act[2].alpha, act[2].beta, "tmp[j]", T, node: n));")
                        }
                        e.line("for (int64_t j = 0; j < \(H); ++j) h[j] = gates[\(H) + j] * tmp[j];")
                    }
                    if let y {
                        let yIndex = g.layout == 0 ? "((t * \(D) + \(dir)) * \(B) + bi) * \(H)" : "((bi * \(Sc) + t) * \(D) + \(dir)) * \(H)"
                        e.line("std::memcpy(\(y.ptr) + \(yIndex), h, sizeof(\(T)) * \(H));")
                    }
                }
                e.line("    }")
                e.line("}")
            }
            if let yh { e.line("for (int64_t dir = 0; dir < \(D); ++dir) for (int64_t bi = 0; bi < \(B); ++bi) std::memcpy(\(yh.ptr) + \(stateIndex("dir")), hs + (dir * \(B) + bi) * \(H), sizeof(\(T)) * \(H));") }
            if let yc { e.line("for (int64_t dir = 0; dir < \(D); ++dir) for (int64_t bi = 0; bi < \(B); ++bi) std::memcpy(\(yc.ptr) + \(stateIndex("dir")), cs + (dir * \(B) + bi) * \(H), sizeof(\(T)) * \(H));") }
        }
    }
}
