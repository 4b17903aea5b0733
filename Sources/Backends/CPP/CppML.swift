import Foundation
import SofieIR

/// Ops of the `ai.onnx.ml` domain: TreeEnsemble as tables in the weights walked per row,
/// Binarizer, ArrayFeatureExtractor.
enum CppML {
    static func bytes<T>(_ values: [T]) -> [UInt8] { values.withUnsafeBytes { Array($0) } }

    static let table: [String: CppOps.Emit] = [
        // Each row walks every tree from its root to a leaf (the trees were checked acyclic at
        // compile time, so a walk takes at most one step per node), and the leaf's weight goes to
        // its target: summed, averaged over the trees, or the smallest/largest kept; then the
        // post transform. Comparisons and sums in double.
        "TreeEnsemble": { e, n in
            let t = try MLOps.ensemble(OpContext(node: n, opset: e.opset))
            let x = try e.input(n, 0), y = try e.output(n, 0)
            guard x.dtype == .float || x.dtype == .double else { throw CompileError(node: n, "TreeEnsemble on \(x.dtype) is not supported (float32 and float64 are)") }
            let rows = x.shape[0], F = x.shape[1], K = t.targets
            func table(_ key: String, _ b: [UInt8], _ type: String) -> String {
                "reinterpret_cast<const \(type)*>(weights_ + \(e.storeWeight(b, key: "tree:\(n.name):\(e.counter):\(key)")))"
            }
            e.counter += 1
            e.workspace(K + 8)
            e.block {
                e.line("const int32_t* const feature = \(table("feature", bytes(t.features), "int32_t"));")
                e.line("const uint8_t* const mode = \(table("mode", t.modes, "uint8_t"));")
                e.line("const uint8_t* const missing_true = \(table("missing", t.missingTrue, "uint8_t"));")
                e.line("const double* const split = \(table("split", bytes(t.splits), "double"));")
                e.line("const int32_t* const if_true = \(table("true", bytes(t.trueChild), "int32_t"));")
                e.line("const int32_t* const if_false = \(table("false", bytes(t.falseChild), "int32_t"));")
                e.line("const double* const leaf_weight = \(table("weight", bytes(t.leafWeights), "double"));")
                e.line("const int32_t* const leaf_target = \(table("target", bytes(t.leafTargets), "int32_t"));")
                e.line("const int32_t* const root = \(table("root", bytes(t.roots), "int32_t"));")
                let members = t.modes.contains(6)
                if members {
                    e.line("const int32_t* const member_start = \(table("mstart", bytes(t.memberStart), "int32_t"));")
                    e.line("const int32_t* const member_count = \(table("mcount", bytes(t.memberCount), "int32_t"));")
                    e.line("const double* const member = \(table("members", bytes(t.memberValues.isEmpty ? [0.0] : t.memberValues), "double"));")
                }
                e.line("double* const score = static_cast<double*>(work);")
                e.line("for (int64_t r = 0; r < \(rows); ++r) {")
                e.line("    const \(x.ctype)* const xr = \(x.ptr) + r * \(F);")
                // As ONNX's reference: a target no leaf reaches keeps the start value.
                let start = [0: "0.0", 1: "0.0", 2: "std::numeric_limits<\(x.ctype)>::max()", 3: "std::numeric_limits<\(x.ctype)>::lowest()"][t.aggregate]!
                e.line("    for (int64_t j = 0; j < \(K); ++j) score[j] = \(start);")
                e.line("    for (int64_t tree = 0; tree < \(t.roots.count); ++tree) {")
                e.line("        int32_t k = root[tree];")
                e.line("        while (k >= 0) {")
                e.line("            const double v = static_cast<double>(xr[feature[k]]), s = split[k];")
                e.line("            bool go = false;")
                e.line("            switch (mode[k]) {")
                e.line("            case 0: go = v <= s; break;")
                e.line("            case 1: go = v < s; break;")
                e.line("            case 2: go = v >= s; break;")
                e.line("            case 3: go = v > s; break;")
                e.line("            case 4: go = v == s; break;")
                e.line("            case 5: go = v != s; break;")
                if members {
                    e.line("            default: for (int32_t m = 0; m < member_count[k]; ++m) if (member[member_start[k] + m] == v) { go = true; break; }")
                } else {
                    e.line("            default: break;")
                }
                e.line("            }")
                e.line("            if (missing_true[k] && std::isnan(v)) go = true;")
                e.line("            k = go ? if_true[k] : if_false[k];")
                e.line("        }")
                e.line("        const int32_t leaf = -k - 1;")
                switch t.aggregate {
                case 2: e.line("        score[leaf_target[leaf]] = std::min(score[leaf_target[leaf]], leaf_weight[leaf]);")
                case 3: e.line("        score[leaf_target[leaf]] = std::max(score[leaf_target[leaf]], leaf_weight[leaf]);")
                default: e.line("        score[leaf_target[leaf]] += leaf_weight[leaf];")
                }
                e.line("    }")
                if t.aggregate == 0 { e.line("    for (int64_t j = 0; j < \(K); ++j) score[j] /= \(t.roots.count).0;") }
                switch t.post {
                case 1, 3:
                    // Softmax over the targets; SOFTMAX_ZERO leaves zero scores at zero.
                    let zero = t.post == 3
                    e.line("    double top = -std::numeric_limits<double>::infinity(), total = 0;")
                    e.line("    for (int64_t j = 0; j < \(K); ++j) if (\(zero ? "score[j] != 0 && " : "")score[j] > top) top = score[j];")
                    e.line("    for (int64_t j = 0; j < \(K); ++j) { score[j] = \(zero ? "score[j] == 0 ? 0.0 : " : "")std::exp(score[j] - top); total += score[j]; }")
                    e.line("    for (int64_t j = 0; j < \(K); ++j) score[j] = total > 0 ? score[j] / total : 0.0;")
                case 2:
                    e.line("    for (int64_t j = 0; j < \(K); ++j) score[j] = 1.0 / (1.0 + std::exp(-score[j]));")
                default: break
                }
                e.line("    for (int64_t j = 0; j < \(K); ++j) \(y.ptr)[r * \(K) + j] = static_cast<\(y.ctype)>(score[j]);")
                e.line("}")
            }
        },
        "Binarizer": { e, n in
            let x = try e.input(n, 0), y = try e.output(n, 0)
            let threshold = CppOps.literal(Double(n.float("threshold") ?? 0), x.dtype)
            // NaN stays NaN (it is not above the threshold, and not below it either).
            e.elementwise(y, [x]) { a in "(\(a[0]) > \(threshold) ? \(x.ctype)(1) : (std::isnan(\(a[0])) ? \(a[0]) : \(x.ctype)(0)))" }
        },
        "ArrayFeatureExtractor": { e, n in
            let x = try e.input(n, 0), idx = try e.input(n, 1), y = try e.output(n, 0)
            let last = x.shape.last!, outer = x.count / max(last, 1), k = idx.count
            e.line("for (int64_t o = 0; o < \(outer); ++o) for (int64_t j = 0; j < \(k); ++j) {")
            e.line("    const int64_t i = static_cast<int64_t>(\(idx.ptr)[j]);")
            e.line("    if (i < 0 || i >= \(last)) throw std::invalid_argument(\"\(e.ns): ArrayFeatureExtractor index \" + std::to_string(i) + \" is out of range for \(last) features\");")
            e.line("    \(y.ptr)[o * \(k) + j] = \(x.ptr)[o * \(last) + i];")
            e.line("}")
        },
    ]

    /// ai.onnx.preview.training's optimizer steps, elementwise in double, as ONNX's reference.
    static let trainingTable: [String: CppOps.Emit] = {
        var t: [String: CppOps.Emit] = [:]
        for op in ["Adagrad", "Momentum", "Adam"] {
            t[op] = { e, n in
                let (count, states) = try TrainingOps.groups(OpContext(node: n, opset: e.opset))
                let r = try e.input(n, 0), step = try e.input(n, 1)
                func f(_ name: String, _ def: Float) -> String { CppOps.literal(Double(n.float(name) ?? def), .double) }
                let norm = f("norm_coefficient", 0)
                for i in 0..<count {
                    let x = try e.input(n, 2 + i), g = try e.input(n, 2 + count + i)
                    guard x.dtype == .float || x.dtype == .double else { throw CompileError(node: n, "\(op) on \(x.dtype) is not supported (float32 and float64 are)") }
                    let xNew = try e.output(n, i)
                    let s1 = try e.input(n, 2 + 2 * count + i), s1New = try e.output(n, count + i)
                    let adam = op == "Adam" ? (h: try e.input(n, 2 + 3 * count + i), hNew: try e.output(n, 2 * count + i)) : nil
                    e.block {
                        e.line("const double r = static_cast<double>(\(r.ptr)[0]); const double t = static_cast<double>(\(step.ptr)[0]);")
                        e.line("for (int64_t k = 0; k < \(x.count); ++k) {")
                        e.line("    const double x = \(x.ptr)[k], g = \(norm) * x + static_cast<double>(\(g.ptr)[k]);")
                        switch op {
                        case "Adagrad":
                            e.line("    const double h = static_cast<double>(\(s1.ptr)[k]) + g * g;")
                            e.line("    \(s1New.ptr)[k] = static_cast<\(s1New.ctype)>(h);")
                            e.line("    \(xNew.ptr)[k] = static_cast<\(xNew.ctype)>(x - r / (1.0 + t * \(f("decay_factor", 0))) * g / (std::sqrt(h) + \(f("epsilon", 0))));")
                        case "Momentum":
                            let nesterov = (n.string("mode") ?? "standard") == "nesterov"
                            e.line("    const double alpha = \(f("alpha", 0)), beta = t > 0 ? \(f("beta", 0)) : 1.0;")
                            e.line("    const double v = alpha * static_cast<double>(\(s1.ptr)[k]) + beta * g;")
                            e.line("    \(s1New.ptr)[k] = static_cast<\(s1New.ctype)>(v);")
                            e.line("    \(xNew.ptr)[k] = static_cast<\(xNew.ctype)>(x - r * \(nesterov ? "(g + alpha * v)" : "v"));")
                        default:
                            let (h, hNew) = adam!
                            e.line("    const double alpha = \(f("alpha", 0.9)), beta = \(f("beta", 0.999));")
                            e.line("    const double v = alpha * static_cast<double>(\(s1.ptr)[k]) + (1.0 - alpha) * g;")
                            e.line("    const double h = beta * static_cast<double>(\(h.ptr)[k]) + (1.0 - beta) * g * g;")
                            e.line("    const double rate = t > 0 ? r * std::sqrt(1.0 - std::pow(beta, t)) / (1.0 - std::pow(alpha, t)) : r;")
                            e.line("    \(s1New.ptr)[k] = static_cast<\(s1New.ctype)>(v);")
                            e.line("    \(hNew.ptr)[k] = static_cast<\(hNew.ctype)>(h);")
                            e.line("    \(xNew.ptr)[k] = static_cast<\(xNew.ctype)>((1.0 - \(f("norm_coefficient_post", 0))) * (x - rate * v / (std::sqrt(h) + \(f("epsilon", 0)))));")
                        }
                        e.line("}")
                    }
                }
                _ = states
            }
        }
        return t
    }()
}
