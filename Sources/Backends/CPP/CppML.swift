import Foundation
import SofieIR

/// Ops of the `ai.onnx.ml` domain: TreeEnsemble as tables in the weights walked per row,
/// Binarizer, ArrayFeatureExtractor.
enum CppML {
    static func bytes<T>(_ values: [T]) -> [UInt8] { values.withUnsafeBytes { Array($0) } }

    /// Each row walks every tree from its root to a leaf (the trees were checked acyclic at
    /// compile time, so a walk takes at most one step per node), and the leaf's weights go to
    /// their targets: summed, averaged over the trees, or the smallest/largest kept; then the base
    /// values, the classifier's label and the post transform. Comparisons and sums in double.
    static func ensemble(_ e: EmitContext, _ n: Node, _ t: MLOps.Ensemble, scores: CTensor?, labels: CTensor?) throws {
        let x = try e.input(n, 0)
        guard x.dtype == .float || x.dtype == .double else { throw CompileError(node: n, "\(n.opType) on \(x.dtype) is not supported (float32 and float64 are)") }
        let rows = x.shape[0], F = x.shape[1], K = t.targets
        let id = e.counter
        e.counter += 1
        func table(_ key: String, _ b: [UInt8], _ type: String) -> String {
            "reinterpret_cast<const \(type)*>(weights_ + \(e.storeWeight(b.isEmpty ? [0, 0, 0, 0, 0, 0, 0, 0] : b, key: "tree\(id):\(key)")))"
        }
        e.workspace(2 * K + 8)
        e.block {
            e.line("const int32_t* const feature = \(table("feature", bytes(t.features), "int32_t"));")
            e.line("const uint8_t* const mode = \(table("mode", t.modes, "uint8_t"));")
            e.line("const uint8_t* const missing_true = \(table("missing", t.missingTrue, "uint8_t"));")
            e.line("const double* const split = \(table("split", bytes(t.splits), "double"));")
            e.line("const int32_t* const if_true = \(table("true", bytes(t.trueChild), "int32_t"));")
            e.line("const int32_t* const if_false = \(table("false", bytes(t.falseChild), "int32_t"));")
            e.line("const int32_t* const leaf_start = \(table("lstart", bytes(t.leafStart), "int32_t"));")
            e.line("const int32_t* const leaf_count = \(table("lcount", bytes(t.leafCount), "int32_t"));")
            e.line("const double* const leaf_weight = \(table("weight", bytes(t.leafWeights), "double"));")
            e.line("const int32_t* const leaf_target = \(table("target", bytes(t.leafTargets), "int32_t"));")
            e.line("const int32_t* const root = \(table("root", bytes(t.roots), "int32_t"));")
            let members = t.modes.contains(6) && !t.memberValues.isEmpty
            if members {
                e.line("const int32_t* const member_start = \(table("mstart", bytes(t.memberStart), "int32_t"));")
                e.line("const int32_t* const member_count = \(table("mcount", bytes(t.memberCount), "int32_t"));")
                e.line("const double* const member = \(table("members", bytes(t.memberValues), "double"));")
            }
            e.line("double* const score = static_cast<double*>(work); double* const seen = score + \(K);")
            e.line("for (int64_t r = 0; r < \(rows); ++r) {")
            e.line("    const \(x.ctype)* const xr = \(x.ptr) + r * \(F);")
            // TreeEnsemble's reference keeps the type's extreme for a target no leaf reaches with
            // MIN/MAX; the older ops (ONNX Runtime) give it 0.
            let extreme = [2: "std::numeric_limits<\(x.ctype)>::max()", 3: "std::numeric_limits<\(x.ctype)>::lowest()"][t.aggregate]
            e.line("    for (int64_t j = 0; j < \(K); ++j) { score[j] = \(t.emptyIsZero ? "0.0" : extreme ?? "0.0"); seen[j] = 0; }")
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
            e.line("        for (int32_t c = leaf_start[leaf]; c < leaf_start[leaf] + leaf_count[leaf]; ++c) {")
            e.line("            const int32_t j = leaf_target[c]; const double w = leaf_weight[c];")
            switch t.aggregate {
            case 2: e.line("            score[j] = seen[j] != 0 ? std::min(score[j], w) : (\(t.emptyIsZero) ? w : std::min(score[j], w));")
            case 3: e.line("            score[j] = seen[j] != 0 ? std::max(score[j], w) : (\(t.emptyIsZero) ? w : std::max(score[j], w));")
            default: e.line("            score[j] += w;")
            }
            e.line("            seen[j] = 1;")
            e.line("        }")
            e.line("    }")
            if t.aggregate == 0 { e.line("    for (int64_t j = 0; j < \(K); ++j) score[j] /= \(t.roots.count).0;") }
            let base = t.base
            if t.binary {
                // Two classes, the weights naming one: the score s is the second class's.
                e.line("    double s = 0; for (int64_t j = 0; j < 2; ++j) s += score[j];")
                if let b = base.first { e.line("    s += \(CppOps.literal(b, .double));") }
                if let labels {
                    let threshold = t.weightsAllPositive ? "0.5" : "0.0"
                    e.line("    \(labels.ptr)[r] = s > \(threshold) ? int64_t(\(t.labels[1])LL) : int64_t(\(t.labels[0])LL);")
                }
                if t.weightsAllPositive {
                    e.line("    score[0] = 1.0 - s; score[1] = s;")
                } else if t.post == 2 {
                    e.line("    score[0] = 1.0 / (1.0 + std::exp(s)); score[1] = 1.0 / (1.0 + std::exp(-s));")
                } else {
                    e.line("    score[0] = -s; score[1] = s;")
                }
            } else {
                if !base.isEmpty {
                    e.line("    { static const double base[] = {\(base.map { CppOps.literal($0, .double) }.joined(separator: ", "))}; for (int64_t j = 0; j < \(K); ++j) score[j] += base[j]; }")
                }
                if let labels {
                    e.line("    { int64_t best = 0; for (int64_t j = 1; j < \(K); ++j) if (score[j] > score[best]) best = j;")
                    e.line("      static const int64_t label[] = {\(t.labels.map { "int64_t(\($0)LL)" }.joined(separator: ", "))}; \(labels.ptr)[r] = label[best]; }")
                }
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
            }
            if let scores { e.line("    for (int64_t j = 0; j < \(K); ++j) \(scores.ptr)[r * \(K) + j] = static_cast<\(scores.ctype)>(score[j]);") }
            e.line("}")
        }
    }

    static let table: [String: CppOps.Emit] = [
        "TreeEnsemble": { e, n in
            try ensemble(e, n, try MLOps.ensemble(OpContext(node: n, opset: e.opset)), scores: try e.output(n, 0), labels: nil)
        },
        "TreeEnsembleRegressor": { e, n in
            try ensemble(e, n, try MLOps.legacyEnsemble(OpContext(node: n, opset: e.opset)), scores: try e.output(n, 0), labels: nil)
        },
        "TreeEnsembleClassifier": { e, n in
            let t = try MLOps.legacyEnsemble(OpContext(node: n, opset: e.opset))
            let labels = try e.output(n, 0)
            let scores = n.outputs.count > 1 ? try n.output(1).map { try e.tensor($0) } : nil
            try ensemble(e, n, t, scores: scores, labels: labels)
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
