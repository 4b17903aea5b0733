import Foundation
import SofieIR

/// RNN, GRU and LSTM as plain loops over time, batch and gates (sizes are small at batch 1).
enum CppRecurrent {
    /// C++ expression of an ONNX recurrent activation applied to `x` (double).
    static func activation(_ name: String, _ alpha: Double?, _ beta: Double?, _ x0: String, node: Node) throws -> String {
        let x = "(\(x0))"
        switch name.lowercased() {
        case "sigmoid": return "1.0 / (1.0 + std::exp(-\(x)))"
        case "tanh": return "std::tanh(\(x))"
        case "relu": return "std::max(0.0, \(x))"
        case "leakyrelu": return "(\(x) >= 0 ? \(x) : \(alpha ?? 0.01) * \(x))"
        case "thresholdedrelu": return "(\(x) > \(alpha ?? 1.0) ? \(x) : 0.0)"
        case "hardsigmoid": return "std::max(0.0, std::min(1.0, \(alpha ?? 0.2) * \(x) + \(beta ?? 0.5)))"
        case "elu": return "(\(x) >= 0 ? \(x) : \(alpha ?? 1.0) * (std::exp(\(x)) - 1.0))"
        case "softsign": return "\(x) / (1.0 + std::abs(\(x)))"
        case "softplus": return "std::log(1.0 + std::exp(\(x)))"
        case "affine": return "(\(alpha ?? 1.0) * \(x) + \(beta ?? 0.0))"
        case "scaledtanh": return "(\(alpha ?? 1.0) * std::tanh(\(beta ?? 1.0) * \(x)))"
        default: throw CompileError(node: node, "activation '\(name)' is not supported")
        }
    }

    static var table: [String: CppOps.Emit] {
        var t: [String: CppOps.Emit] = [:]
        for op in ["RNN", "GRU", "LSTM"] { t[op] = { e, n in try emit(e, n, op) } }
        return t
    }

    static func emit(_ e: EmitContext, _ n: Node, _ op: String) throws {
        let g = try RecurrentOps.geometry(OpContext(node: n, opset: e.opset))
        let x = try e.input(n, 0), w = try e.input(n, 1), r = try e.input(n, 2)
        guard x.dtype.isFloatingPoint else { throw CompileError(node: n, "\(op) needs float32 or float64 input") }
        func out(_ i: Int) throws -> CTensor? { n.outputs.count > i && n.output(i) != nil ? try e.output(n, i) : nil }
        let b = try e.optionalInput(n, 3), seqLens = try e.optionalInput(n, 4), h0 = try e.optionalInput(n, 5)
        let c0 = op == "LSTM" ? try e.optionalInput(n, 6) : nil, peep = op == "LSTM" ? try e.optionalInput(n, 7) : nil
        let y = try out(0), yh = try out(1), yc = op == "LSTM" ? try out(2) : nil
        let G = RecurrentOps.gates(op), H = g.hidden, B = g.batch, I = g.input, S = g.seq, D = g.directions
        let T = x.ctype
        if op == "LSTM" && (n.int("input_forget") ?? 0) == 1 { throw CompileError(node: n, "input_forget=1 is not supported") }
        // Activations: per direction f, g(, h) with defaults.
        let defaults = op == "LSTM" ? ["Sigmoid", "Tanh", "Tanh"] : (op == "GRU" ? ["Sigmoid", "Tanh"] : ["Tanh"])
        let names = n.attribute("activations").flatMap { v -> [String]? in if case .strings(let s) = v { return s.map { String(decoding: $0, as: UTF8.self) } }; return nil } ?? []
        let alphas = n.floats("activation_alpha") ?? [], betas = n.floats("activation_beta") ?? []
        var acts: [[(String) throws -> String]] = []
        var k = 0
        for _ in 0..<D {
            var list: [(String) throws -> String] = []
            for d in defaults.indices {
                let name = names.isEmpty ? defaults[d] : names[min(k, names.count - 1)]
                let a = k < alphas.count && !names.isEmpty ? Double(alphas[k]) : nil
                let bb = k < betas.count && !names.isEmpty ? Double(betas[k]) : nil
                list.append({ try activation(name, a, bb, $0, node: n) })
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
        func clipped(_ v: String) -> String { clip.map { "std::max(-\($0), std::min(\($0), \(v)))" } ?? v }
        let linearBeforeReset = (n.int("linear_before_reset") ?? 0) == 1
        let xIndex = g.layout == 0 ? "(t * \(B) + bi) * \(I)" : "(bi * \(S) + t) * \(I)"
        func stateIndex(_ dir: String) -> String { g.layout == 0 ? "(\(dir) * \(B) + bi) * \(H)" : "(bi * \(D) + \(dir)) * \(H)" }
        let yIndex = g.layout == 0 ? "((t * \(D) + dir) * \(B) + bi) * \(H)" : "((bi * \(S) + t) * \(D) + dir) * \(H)"
        // Workspace: h, c (per direction and batch) and gate pre-activations.
        let stateSize = D * B * H
        e.workspace(3 * stateSize + G * H + 16)
        try e.block {
            e.line("double* const hs = static_cast<double*>(work);")
            e.line("double* const cs = hs + \(stateSize);")
            e.line("double* const gates = cs + \(stateSize);")
            e.line("double* const hnew = gates + \(G * H);")
            e.line("for (int64_t i = 0; i < \(stateSize); ++i) { hs[i] = 0; cs[i] = 0; }")
            if let h0 { e.line("for (int64_t dir = 0; dir < \(D); ++dir) for (int64_t bi = 0; bi < \(B); ++bi) for (int64_t j = 0; j < \(H); ++j) hs[(dir * \(B) + bi) * \(H) + j] = \(h0.ptr)[\(stateIndex("dir")) + j];") }
            if let c0 { e.line("for (int64_t dir = 0; dir < \(D); ++dir) for (int64_t bi = 0; bi < \(B); ++bi) for (int64_t j = 0; j < \(H); ++j) cs[(dir * \(B) + bi) * \(H) + j] = \(c0.ptr)[\(stateIndex("dir")) + j];") }
            if let y { e.line("std::fill_n(\(y.ptr), \(y.count), \(T)(0));") }
            for dir in 0..<D {
                let reverse = n.string("direction") == "reverse" || dir == 1
                let wp = "\(w.ptr) + \(dir * G * H * I)", rp = "\(r.ptr) + \(dir * G * H * H)"
                e.line("// direction \(dir)\(reverse ? " (reverse)" : "")")
                e.line("for (int64_t bi = 0; bi < \(B); ++bi) {")
                e.line("    const int64_t len = \(seqLens.map { "static_cast<int64_t>(\($0.ptr)[bi])" } ?? "\(S)");")
                e.line("    double* const h = hs + (\(dir) * \(B) + bi) * \(H);")
                e.line("    double* const c = cs + (\(dir) * \(B) + bi) * \(H);")
                e.line("    for (int64_t s = 0; s < len; ++s) {")
                e.line("        const int64_t t = \(reverse ? "len - 1 - s" : "s");")
                e.line("        const \(T)* const xt = \(x.ptr) + \(xIndex);")
                e.line("        const \(T)* const wm = \(wp);")
                e.line("        const \(T)* const rm = \(rp);")
                e.line("        (void)c;")
                // Pre-activations: W x + R h + biases (GRU's hidden gate handled separately).
                e.line("        for (int64_t q = 0; q < \(G * H); ++q) {")
                e.line("            double v = 0;")
                e.line("            for (int64_t i = 0; i < \(I); ++i) v += double(wm[q * \(I) + i]) * xt[i];")
                if let b { e.line("            v += double(\(b.ptr)[\(dir * 2 * G * H) + q]);") }
                if op == "GRU" {
                    e.line("            if (q < \(2 * H)) {")
                    e.line("                for (int64_t i = 0; i < \(H); ++i) v += double(rm[q * \(H) + i]) * h[i];")
                    if let b { e.line("                v += double(\(b.ptr)[\(dir * 2 * G * H + G * H) + q]);") }
                    e.line("            }")
                } else {
                    e.line("            for (int64_t i = 0; i < \(H); ++i) v += double(rm[q * \(H) + i]) * h[i];")
                    if let b { e.line("            v += double(\(b.ptr)[\(dir * 2 * G * H + G * H) + q]);") }
                }
                e.line("            gates[q] = v;")
                e.line("        }")
                let f = acts[dir][0]
                switch op {
                case "RNN":
                    e.line("        for (int64_t j = 0; j < \(H); ++j) hnew[j] = \(try f(clipped("gates[j]")));")
                case "GRU":
                    let gAct = acts[dir][1]
                    // z and r for every unit first: without linear_before_reset, r multiplies h by unit.
                    e.line("        for (int64_t j = 0; j < \(H); ++j) {")
                    e.line("            gates[j] = \(try f(clipped("gates[j]")));")
                    e.line("            gates[\(H) + j] = \(try f(clipped("gates[\(H) + j]")));")
                    e.line("        }")
                    e.line("        for (int64_t j = 0; j < \(H); ++j) {")
                    e.line("            const double z = gates[j];")
                    e.line("            double hh = gates[\(2 * H) + j];")
                    e.line("            double rec = 0;")
                    if linearBeforeReset {
                        e.line("            for (int64_t i = 0; i < \(H); ++i) rec += double(rm[(\(2 * H) + j) * \(H) + i]) * h[i];")
                        if let b { e.line("            rec += double(\(b.ptr)[\(dir * 2 * G * H + G * H + 2 * H) + j]);") }
                        e.line("            hh += gates[\(H) + j] * rec;")
                    } else {
                        e.line("            for (int64_t i = 0; i < \(H); ++i) rec += double(rm[(\(2 * H) + j) * \(H) + i]) * (gates[\(H) + i] * h[i]);")
                        if let b { e.line("            rec += double(\(b.ptr)[\(dir * 2 * G * H + G * H + 2 * H) + j]);") }
                        e.line("            hh += rec;")
                    }
                    e.line("            hh = \(try gAct(clipped("hh")));")
                    e.line("            hnew[j] = (1.0 - z) * hh + z * h[j];")
                    e.line("        }")
                default:  // LSTM: gates i, o, f, c
                    let gAct = acts[dir][1], hAct = acts[dir][2]
                    let pp = peep.map { "\($0.ptr) + \(dir * 3 * H)" }
                    e.line("        for (int64_t j = 0; j < \(H); ++j) {")
                    e.line("            const double it = \(try f(clipped("gates[j]" + (pp.map { " + double((\($0))[j]) * c[j]" } ?? ""))));")
                    e.line("            const double ft = \(try f(clipped("gates[\(2 * H) + j]" + (pp.map { " + double((\($0))[\(2 * H) + j]) * c[j]" } ?? ""))));")
                    e.line("            const double ct = \(try gAct(clipped("gates[\(3 * H) + j]")));")
                    e.line("            const double cn = ft * c[j] + it * ct;")
                    e.line("            const double ot = \(try f(clipped("gates[\(H) + j]" + (pp.map { " + double((\($0))[\(H) + j]) * cn" } ?? ""))));")
                    e.line("            c[j] = cn;")
                    e.line("            hnew[j] = ot * \(try hAct("cn"));")
                    e.line("        }")
                }
                e.line("        for (int64_t j = 0; j < \(H); ++j) h[j] = hnew[j];")
                if let y { e.line("        for (int64_t j = 0; j < \(H); ++j) \(y.ptr)[\(yIndex.replacingOccurrences(of: "dir", with: "\(dir)")) + j] = static_cast<\(T)>(h[j]);") }
                e.line("    }")
                e.line("}")
            }
            if let yh { e.line("for (int64_t dir = 0; dir < \(D); ++dir) for (int64_t bi = 0; bi < \(B); ++bi) for (int64_t j = 0; j < \(H); ++j) \(yh.ptr)[\(stateIndex("dir")) + j] = static_cast<\(T)>(hs[(dir * \(B) + bi) * \(H) + j]);") }
            if let yc { e.line("for (int64_t dir = 0; dir < \(D); ++dir) for (int64_t bi = 0; bi < \(B); ++bi) for (int64_t j = 0; j < \(H); ++j) \(yc.ptr)[\(stateIndex("dir")) + j] = static_cast<\(T)>(cs[(dir * \(B) + bi) * \(H) + j]);") }
        }
    }
}
