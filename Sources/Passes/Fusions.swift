import SofieIR

/// Built-in fusions written as rewrite rules.
public enum Fusions {
    /// MatMul(a, W) + b with W a 2-D constant, b a constant of N values -> Gemm(a, W, b). An
    /// input of higher rank with a static shape (a Linear layer on a sequence, as PyTorch
    /// exports it: Add(bias, MatMul(x, W))) is viewed as a matrix of its rows around the Gemm:
    /// Reshape(Gemm(Reshape(a, [rows, K]), W, b), [..., N]); the Reshapes copy nothing.
    public static var matmulAdd: RuleSet {
        let name = "fuse-matmul-add", summary = "MatMul + Add of a constant bias becomes Gemm (inputs of rank 2, or more with static shapes)"
        /// The input's static shape when it is of rank 3 or more and has one.
        func staticRows(_ m: Match) -> [Int]? {
            guard let shape = m.value("a").tensorType?.shape, shape.count > 2 else { return nil }
            let dims = shape.compactMap(\.value)
            return dims.count == shape.count ? dims : nil
        }
        func check(_ m: Match) -> Verdict {
            guard let w = m.tensor("w"), w.dims.count == 2, [DataType.float, .double].contains(w.dataType) else { return .refuse("the weight is not a 2-D float32/float64 constant") }
            guard let b = m.tensor("b"), b.dataType == w.dataType, b.elementCount == w.dims[1], b.dims.count <= 2,
                  b.dims.last == w.dims[1] || b.dims.isEmpty else { return .refuse("the added constant is not a bias of the product's \(w.dims[1]) columns") }
            if m.value("a").tensorType?.shape?.count == 2 { return .accept }
            guard let dims = staticRows(m) else { return .refuse("the input is neither 2-D nor of static shape") }
            return .require(dims.last == w.dims[0] && !dims.contains(0), "the input's last axis is not the weight's rows")
        }
        func gemm(_ m: Match, _ b: RewriteBuilder) -> Value {
            let bias = m.tensor("b")!
            let flat = Tensor(dataType: bias.dataType, dims: [bias.elementCount], data: bias.data)
            let base = m.node("add").name.isEmpty ? "gemm" : m.node("add").name + "_gemm"
            guard let dims = staticRows(m) else {
                return b.node("Gemm", [m.value("a"), m.value("w"), b.constant(flat, name: m.value("b").name + "_flat")], name: base)
            }
            let k = dims.last!, n = m.tensor("w")!.dims[1]
            let rows = dims.dropLast().reduce(1, *)
            func shape(_ d: [Int], _ suffix: String) -> Value {
                b.constant(Tensor(dataType: .int64, dims: [d.count], values: d.map(Int64.init)), name: base + suffix)
            }
            let a2 = b.node("Reshape", [m.value("a"), shape([rows, k], "_rows")], name: base + "_in")
            let y = b.node("Gemm", [a2, m.value("w"), b.constant(flat, name: m.value("b").name + "_flat")], name: base)
            return b.node("Reshape", [y, shape(Array(dims.dropLast()) + [n], "_shape")], name: base + "_out")
        }
        return RuleSet(name: name, summary: summary, rules: [
            RewriteRule(name: name, summary: summary,
                        pattern: .commutative("Add", .op("MatMul", [.any("a"), .constant("w")], bind: "mm"), .constant("b"), bind: "add"),
                        check: check, replacement: gemm),
        ])
    }
}

extension Fusions {
    /// Flatten(Transpose(x, channels-first -> channels-last)) feeding a Dense layer (MatMul or
    /// Gemm with a constant weight): flatten x directly and permute the weight's rows once, so
    /// that the transpose disappears. Needs x's static shape.
    public static var transposeBeforeDense: RuleSet {
        let name = "fold-transpose-into-dense"
        let summary = "remove the transpose before Flatten -> Dense by permuting the Dense weight rows (static shapes except the batch)"
        /// The shape with a static value for every dimension but the batch (0 when symbolic).
        func featureShape(_ v: Value) -> [Int]? {
            guard let s = v.tensorType?.shape, s.count >= 1 else { return nil }
            let rest = s.dropFirst().compactMap(\.value)
            guard rest.count == s.count - 1 else { return nil }
            return [s[0].value ?? 0] + rest
        }
        func check(_ m: Match) -> Verdict {
            guard let shape = featureShape(m.value("x")), shape.count >= 3 else { return .refuse("the transposed value has no static shape of rank 3 or more (besides the batch)") }
            guard let perm = m.node("t").ints("perm"), perm == [0] + Array(2..<shape.count) + [1] else { return .refuse("the Transpose is not channels-first to channels-last") }
            guard (m.node("f").int("axis") ?? 1) == 1 else { return .refuse("the Flatten does not keep only the batch axis") }
            guard let w = m.tensor("w"), w.dims.count == 2, w.dataType == .float, w.dims[0] == shape[1...].reduce(1, *) else { return .refuse("the weight is not a float32 matrix with one row per flattened feature") }
            let mm = m.node("mm")
            return .require(mm.opType != "Gemm" || ((mm.int("transA") ?? 0) == 0 && (mm.int("transB") ?? 0) == 0), "the Gemm transposes an operand")
        }
        func rewrite(_ m: Match, _ b: RewriteBuilder) throws -> Value {
            let shape = featureShape(m.value("x"))!
            let c = shape[1], spatial = shape[2...].reduce(1, *)
            let w = m.tensor("w")!
            let cols = w.dims[1]
            let old = w.values(as: Float.self)!
            var new = [Float](repeating: 0, count: old.count)
            // Row s*C + ch of the channels-last flattening is row ch*S + s of the channels-first one.
            for ch in 0..<c {
                for sp in 0..<spatial {
                    let src = (sp * c + ch) * cols, dst = (ch * spatial + sp) * cols
                    for j in 0..<cols { new[dst + j] = old[src + j] }
                }
            }
            let flat = b.node("Flatten", [m.value("x")], name: m.node("f").name + "_nchw", attributes: [Attribute("axis", .int(1))])
            let weight = b.constant(Tensor(dataType: .float, dims: w.dims, values: new), name: m.value("w").name + "_nchw_rows")
            let mm = m.node("mm")
            return b.node(mm.opType, [flat, weight] + Array(mm.inputs.dropFirst(2)), name: mm.name + "_nchw", attributes: mm.attributes)
        }
        return RuleSet(name: name, summary: summary, rules: ["MatMul", "Gemm"].map { op in
            RewriteRule(name: name, summary: summary,
                        pattern: .op(op, [.op("Flatten", [.op("Transpose", [.any("x")], bind: "t")], bind: "f"), .constant("w")], bind: "mm"),
                        check: check, replacement: rewrite)
        })
    }
}

extension Fusions {
    /// BatchNormalization (inference, constant parameters) after MatMul or Gemm with a constant
    /// 2-D weight, on 2-D values: folded into the weight's columns and a bias,
    /// W'[:, c] = W[:, c] * s[c], b' = (b - mean) * s + beta, s = gamma / sqrt(var + eps).
    public static var denseBatchNorm: RuleSet {
        let name = "fuse-dense-bn", summary = "fold BatchNormalization into the MatMul/Gemm before it (2-D values)"
        func params(_ m: Match) -> (s: [Float], shift: [Float])? {
            let bn = m.node("bn")
            guard bn.outputs.compactMap({ $0 }).count == 1, (bn.int("training_mode") ?? 0) == 0,
                  let g = m.tensor("gamma")?.values(as: Float.self), let b = m.tensor("beta")?.values(as: Float.self),
                  let mean = m.tensor("mean")?.values(as: Float.self), let v = m.tensor("var")?.values(as: Float.self),
                  g.count == b.count, g.count == mean.count, g.count == v.count else { return nil }
            let eps = bn.float("epsilon") ?? 1e-5
            let s = zip(g, v).map { $0 / ($1 + eps).squareRoot() }
            return (s, (0..<s.count).map { b[$0] - mean[$0] * s[$0] })
        }
        func check(_ m: Match) -> Verdict {
            let mm = m.node("mm")
            guard let w = m.tensor("w"), w.dataType == .float, w.dims.count == 2 else { return .refuse("the weight is not a float32 matrix") }
            guard let p = params(m), p.s.count == w.dims[1] else { return .refuse("the BatchNormalization is not in inference mode with float32 parameters of the product's \(w.dims[1]) columns") }
            guard m.value("a").tensorType?.shape?.count == 2 else { return .refuse("the input is not 2-D") }
            if mm.opType == "Gemm" {
                guard (mm.int("transA") ?? 0) == 0, (mm.int("transB") ?? 0) == 0, (mm.float("alpha") ?? 1) == 1, (mm.float("beta") ?? 1) == 1 else { return .refuse("the Gemm transposes or scales") }
                if mm.inputs.count > 2, let c = mm.input(2) {
                    guard let cv = c.initializer, cv.dataType == .float, cv.elementCount == w.dims[1] else { return .refuse("the Gemm's bias is not a float32 constant of \(w.dims[1]) values") }
                }
            }
            return .accept
        }
        func rewrite(_ m: Match, _ b: RewriteBuilder) throws -> Value {
            let w = m.tensor("w")!, (s, shift) = params(m)!
            let rows = w.dims[0], cols = w.dims[1]
            var nw = w.values(as: Float.self)!
            for r in 0..<rows { for c in 0..<cols { nw[r * cols + c] *= s[c] } }
            var bias = [Float](repeating: 0, count: cols)
            let mm = m.node("mm")
            if mm.opType == "Gemm", mm.inputs.count > 2, let c = mm.input(2)?.initializer?.values(as: Float.self) { bias = c }
            let nb = (0..<cols).map { bias[$0] * s[$0] + shift[$0] }
            let weight = b.constant(Tensor(dataType: .float, dims: [rows, cols], values: nw), name: m.value("w").name + "_bn")
            let biasValue = b.constant(Tensor(dataType: .float, dims: [cols], values: nb), name: m.value("w").name + "_bn_bias")
            return b.node("Gemm", [m.value("a"), weight, biasValue], name: m.node("bn").name + "_gemm")
        }
        return RuleSet(name: name, summary: summary, rules: ["MatMul", "Gemm"].map { op in
            RewriteRule(name: name, summary: summary,
                        pattern: .op("BatchNormalization", [.op(op, [.any("a"), .constant("w")], bind: "mm"), .constant("gamma"),
                                                            .constant("beta"), .constant("mean"), .constant("var")], bind: "bn"),
                        check: check, replacement: rewrite)
        })
    }
}

extension Fusions {
    /// A 2-D Transpose feeding Gemm or a 2-D MatMul: Gemm reads the operand transposed through
    /// its transA/transB flag instead (the emitted GEMM walks it with swapped strides, no copy).
    public static var transposeIntoGemm: RuleSet {
        let name = "fold-transpose-into-gemm", summary = "a 2-D Transpose before Gemm/MatMul becomes Gemm's transA/transB flag"
        func check(_ m: Match) -> Verdict {
            let swap = m.node("t").ints("perm").map { $0 == [1, 0] } ?? (m.value("x").tensorType?.shape?.count == 2)
            guard swap else { return .refuse("the Transpose does not swap two axes") }
            guard m.value("x").tensorType?.shape?.count == 2, m.value("other").tensorType?.shape?.count == 2 else { return .refuse("an operand is not 2-D") }
            return .require([DataType.float, .double].contains(m.value("x").tensorType?.elementType ?? .int8), "the operands are not float32/float64")
        }
        func gemm(_ m: Match, _ b: RewriteBuilder, operand: Int) -> Value {
            let n = m.node("mm")
            var attrs = n.opType == "Gemm" ? n.attributes : []
            let flag = operand == 0 ? "transA" : "transB"
            let old = n.int(flag) ?? 0
            attrs.removeAll { $0.name == flag }
            attrs.append(Attribute(flag, .int(Int64(1 - old))))
            var inputs = Array(n.inputs)
            inputs[operand] = m.value("x")
            return b.node("Gemm", inputs, name: (n.name.isEmpty ? "gemm" : n.name) + "_trans", attributes: attrs)
        }
        // Not commutative: which operand the Transpose feeds decides the flag.
        var rules: [RewriteRule] = []
        for op in ["Gemm", "MatMul"] {
            rules.append(RewriteRule(name: name, summary: summary,
                                     pattern: .op(op, [.op("Transpose", [.any("x")], bind: "t"), .any("other")], bind: "mm"),
                                     check: check, replacement: { gemm($0, $1, operand: 0) }))
            rules.append(RewriteRule(name: name, summary: summary,
                                     pattern: .op(op, [.any("other"), .op("Transpose", [.any("x")], bind: "t")], bind: "mm"),
                                     check: check, replacement: { gemm($0, $1, operand: 1) }))
        }
        return RuleSet(name: name, summary: summary, rules: rules)
    }
}
