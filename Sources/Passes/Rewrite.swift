import SofieIR

/// A declarative graph pattern: the shape of a small expression tree rooted at a node.
public indirect enum Pattern {
    /// Any value, bound under the name.
    case any(String)
    /// A constant (initializer) value, bound under the name.
    case constant(String)
    /// A node of this op type whose first inputs match the patterns; the node is bound under `bind`.
    case op(String, [Pattern], bind: String)
}

/// What a pattern bound: values and nodes by name.
public struct Match {
    public var values: [String: Value] = [:]
    public var nodes: [String: Node] = [:]

    public func value(_ name: String) -> Value { values[name]! }
    public func node(_ name: String) -> Node { nodes[name]! }
    public func tensor(_ name: String) -> Tensor? { values[name]?.initializer }
}

/// Builds replacement nodes just before the matched root.
public final class RewriteBuilder {
    let graph: Graph
    var index: Int
    var taken: Set<String>

    init(graph: Graph, index: Int) {
        self.graph = graph
        self.index = index
        self.taken = Set(graph.definedValues.map(\.name))
    }

    /// Inserts a node and returns its first output.
    @discardableResult
    public func node(_ op: String, _ inputs: [Value?], name: String, attributes: [Attribute] = []) -> Value {
        let out = Value(name: graph.uniqueName(name, taken: &taken))
        graph.insertNode(Node(opType: op, name: graph.uniqueName(name, taken: &taken), inputs: inputs, outputs: [out], attributes: attributes), at: index)
        index += 1
        return out
    }

    public func constant(_ tensor: Tensor, name: String) -> Value {
        graph.addConstant(tensor, name: name, taken: &taken)
    }
}

/// A fusion written as pattern -> replacement, with a condition. `match` never changes the
/// graph; only the replacement does. Interior matched nodes must have no other readers (the
/// root may have many); a root that is a graph output hands its value to the replacement.
public struct RewriteRule: GraphPass {
    public let name: String
    public let summary: String
    public let pattern: Pattern
    public let condition: (Match) -> Bool
    public let replacement: (Match, RewriteBuilder) throws -> Value

    public init(name: String, summary: String, pattern: Pattern, condition: @escaping (Match) -> Bool = { _ in true },
                replacement: @escaping (Match, RewriteBuilder) throws -> Value) {
        self.name = name
        self.summary = summary
        self.pattern = pattern
        self.condition = condition
        self.replacement = replacement
    }

    /// Matches `pattern` at `value`; nil when it does not match.
    public static func match(_ pattern: Pattern, _ value: Value, root: Bool = true, into m: inout Match) -> Bool {
        switch pattern {
        case .any(let name):
            if let bound = m.values[name] { return bound === value }
            m.values[name] = value
            return true
        case .constant(let name):
            guard value.initializer != nil else { return false }
            if let bound = m.values[name] { return bound === value }
            m.values[name] = value
            return true
        case .op(let op, let inputs, let bind):
            guard let n = value.producer, n.opType == op, n.isStandard,
                  n.inputs.count >= inputs.count else { return false }
            if !root && value.uses.count != 1 { return false }
            m.nodes[bind] = n
            m.values[bind] = value
            for (p, v) in zip(inputs, n.inputs) {
                guard let v, match(p, v, root: false, into: &m) else { return false }
            }
            return true
        }
    }

    public func run(_ model: Model) throws -> Bool {
        let g = model.graph
        let outputs = Set(g.outputs.map(ObjectIdentifier.init))
        var changed = false
        var i = 0
        while i < g.nodes.count {
            let n = g.nodes[i]
            i += 1
            guard let out = n.output(0) else { continue }
            var m = Match()
            guard Self.match(pattern, out, into: &m), condition(m) else { continue }
            let builder = RewriteBuilder(graph: g, index: i - 1)
            let replacement = try replacement(m, builder)
            replacement.type = out.type
            if outputs.contains(ObjectIdentifier(out)) {
                // A graph output keeps its value (and name): the replacement's node produces it.
                guard let p = replacement.producer, p.outputs.count == 1, replacement.uses.isEmpty else { continue }
                n.removeAllOutputs()
                p.removeAllOutputs()
                p.appendOutput(out)
            } else {
                g.replaceAllUses(of: out, with: replacement)
            }
            i = builder.index + 1
            changed = true
        }
        if changed { _ = try DeadCodeElimination().run(model) }
        return changed
    }
}

/// Built-in fusions written as rewrite rules.
public enum Fusions {
    /// MatMul(a, W) + b with a 2-D, W 2-D constant, b a constant of N values -> Gemm(a, W, b).
    public static var matmulAdd: [RewriteRule] {
        func condition(_ m: Match) -> Bool {
            guard let w = m.tensor("w"), w.dims.count == 2, let b = m.tensor("b"), b.dataType == w.dataType,
                  b.elementCount == w.dims[1], b.dims.count <= 2, b.dims.last == w.dims[1] || b.dims.isEmpty,
                  m.value("a").tensorType?.shape?.count == 2, [DataType.float, .double].contains(w.dataType) else { return false }
            return true
        }
        func gemm(_ m: Match, _ b: RewriteBuilder) -> Value {
            let bias = m.tensor("b")!
            let flat = Tensor(dataType: bias.dataType, dims: [bias.elementCount], data: bias.data)
            return b.node("Gemm", [m.value("a"), m.value("w"), b.constant(flat, name: m.value("b").name + "_flat")],
                          name: m.node("add").name.isEmpty ? "gemm" : m.node("add").name + "_gemm")
        }
        return [
            RewriteRule(name: "fuse-matmul-add", summary: "MatMul + Add of a constant bias becomes Gemm",
                        pattern: .op("Add", [.op("MatMul", [.any("a"), .constant("w")], bind: "mm"), .constant("b")], bind: "add"),
                        condition: condition, replacement: gemm),
            RewriteRule(name: "fuse-matmul-add", summary: "MatMul + Add of a constant bias becomes Gemm",
                        pattern: .op("Add", [.constant("b"), .op("MatMul", [.any("a"), .constant("w")], bind: "mm")], bind: "add"),
                        condition: condition, replacement: gemm),
        ]
    }
}

extension Fusions {
    /// Flatten(Transpose(x, channels-first -> channels-last)) feeding a Dense layer (MatMul or
    /// Gemm with a constant weight): flatten x directly and permute the weight's rows once, so
    /// that the transpose disappears. Needs x's static shape.
    public static var transposeBeforeDense: [RewriteRule] {
        /// The shape with a static value for every dimension but the batch (0 when symbolic).
        func featureShape(_ v: Value) -> [Int]? {
            guard let s = v.tensorType?.shape, s.count >= 1 else { return nil }
            let rest = s.dropFirst().compactMap(\.value)
            guard rest.count == s.count - 1 else { return nil }
            return [s[0].value ?? 0] + rest
        }
        func condition(_ m: Match) -> Bool {
            guard let perm = m.node("t").ints("perm"), let shape = featureShape(m.value("x")), shape.count >= 3,
                  perm == [0] + Array(2..<shape.count) + [1], (m.node("f").int("axis") ?? 1) == 1,
                  let w = m.tensor("w"), w.dims.count == 2, w.dataType == .float, w.dims[0] == shape[1...].reduce(1, *) else { return false }
            if m.node("mm").opType == "Gemm" && ((m.node("mm").int("transA") ?? 0) != 0 || (m.node("mm").int("transB") ?? 0) != 0) { return false }
            return true
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
        return ["MatMul", "Gemm"].map { op in
            RewriteRule(name: "fold-transpose-into-dense", summary: "remove the transpose before Flatten -> Dense by permuting the weight rows",
                        pattern: .op(op, [.op("Flatten", [.op("Transpose", [.any("x")], bind: "t")], bind: "f"), .constant("w")], bind: "mm"),
                        condition: condition, replacement: rewrite)
        }
    }
}

extension Fusions {
    /// BatchNormalization (inference, constant parameters) after MatMul or Gemm with a constant
    /// 2-D weight, on 2-D values: folded into the weight's columns and a bias,
    /// W'[:, c] = W[:, c] * s[c], b' = (b - mean) * s + beta, s = gamma / sqrt(var + eps).
    public static var denseBatchNorm: [RewriteRule] {
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
        func condition(_ m: Match) -> Bool {
            let mm = m.node("mm")
            guard let w = m.tensor("w"), w.dataType == .float, w.dims.count == 2, let p = params(m), p.s.count == w.dims[1],
                  m.value("a").tensorType?.shape?.count == 2 else { return false }
            if mm.opType == "Gemm" {
                guard (mm.int("transA") ?? 0) == 0, (mm.int("transB") ?? 0) == 0, (mm.float("alpha") ?? 1) == 1, (mm.float("beta") ?? 1) == 1 else { return false }
                if mm.inputs.count > 2, let c = mm.input(2) {
                    guard let cv = c.initializer, cv.dataType == .float, cv.elementCount == w.dims[1] else { return false }
                }
            }
            return true
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
        return ["MatMul", "Gemm"].map { op in
            RewriteRule(name: "fuse-dense-bn", summary: "fold BatchNormalization into the MatMul/Gemm before it",
                        pattern: .op("BatchNormalization", [.op(op, [.any("a"), .constant("w")], bind: "mm"), .constant("gamma"),
                                                            .constant("beta"), .constant("mean"), .constant("var")], bind: "bn"),
                        condition: condition, replacement: rewrite)
        }
    }
}

/// Runs several rules as one named pass.
public struct RuleSet: GraphPass {
    public let name: String
    public let summary: String
    public let rules: [RewriteRule]

    public init(name: String, summary: String, rules: [RewriteRule]) {
        self.name = name
        self.summary = summary
        self.rules = rules
    }

    public func run(_ model: Model) throws -> Bool {
        var changed = false
        for r in rules { if try r.run(model) { changed = true } }
        return changed
    }
}

extension Fusions {
    /// A 2-D Transpose feeding Gemm or a 2-D MatMul: Gemm reads the operand transposed through
    /// its transA/transB flag instead (the emitted GEMM walks it with swapped strides, no copy).
    public static var transposeIntoGemm: [RewriteRule] {
        func isSwap(_ m: Match) -> Bool {
            m.node("t").ints("perm").map { $0 == [1, 0] } ?? (m.value("x").tensorType?.shape?.count == 2)
        }
        func twoD(_ m: Match) -> Bool {
            m.value("x").tensorType?.shape?.count == 2 && m.value("other").tensorType?.shape?.count == 2
                && [DataType.float, .double].contains(m.value("x").tensorType?.elementType ?? .int8)
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
        var rules: [RewriteRule] = []
        for op in ["Gemm", "MatMul"] {
            rules.append(RewriteRule(name: "fold-transpose-into-gemm", summary: "",
                                     pattern: .op(op, [.op("Transpose", [.any("x")], bind: "t"), .any("other")], bind: "mm"),
                                     condition: { isSwap($0) && twoD($0) }, replacement: { gemm($0, $1, operand: 0) }))
            rules.append(RewriteRule(name: "fold-transpose-into-gemm", summary: "",
                                     pattern: .op(op, [.any("other"), .op("Transpose", [.any("x")], bind: "t")], bind: "mm"),
                                     condition: { isSwap($0) && twoD($0) }, replacement: { gemm($0, $1, operand: 1) }))
        }
        return rules
    }
}
