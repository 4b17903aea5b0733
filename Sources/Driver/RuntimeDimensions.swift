import SofieBackends
import SofieIR

/// Finds how every tensor's extents follow the run-time dimensions (`--dim N=max:1024`).
///
/// The model is prepared (pinned, shape-inferred, folded, optimized) with each symbol at its
/// bound, and again with one symbol at a time one below its bound, and once more with every
/// symbol near half its bound. The prepared graphs must be the same graph (same nodes, ops and
/// attributes; the same constants wherever a constant is read as data), which shows that the
/// compiled code does not depend on the symbol's value except through extents. Each extent is
/// then `a + Σ c_s·s` (from the first two samples) and must hold at the third; an extent that
/// shrinks as a symbol grows, or is not linear in it (a strided window over the symbol's axis),
/// is an error naming the tensor. The bound model keeps its static shapes (the largest), which
/// the memory plan sizes the arena for, and gets `Value.runtimeShape` on the values whose
/// extents follow a symbol.
enum RuntimeDimensions {
    /// Inputs whose contents only give the shape of the output (the extents come from the
    /// output's run-time shape): a constant there may differ between sizes.
    /// (Slice's ends: with positive steps they set only the extent; starts and steps must agree.)
    static let shapeOnlyInputs: Set<String> = ["Reshape:1", "Expand:1", "ConstantOfShape:0", "Slice:2"]

    /// Prepares `model` at the bounds (as `prepare` does) and annotates its run-time extents.
    /// `prepareAt` prepares a fresh copy of the unprepared model for some symbol values.
    static func prepare(_ model: Model, bounds: [String: Int], prepareAt: (Model, [String: Int]) throws -> Void) throws {
        let symbols = bounds.keys.sorted()
        for s in symbols where bounds[s]! < 1 {
            throw CompileError(.graph, "--dim \(s)=max:\(bounds[s]!): the bound must be at least 1")
        }
        let pristine = model.clone()
        // Symbols of the inputs' dimensions (infer's arguments); the others are lengths an op
        // computes from run-time values (RuntimeDimension.lengthSymbol).
        var inputSymbols = Set<String>()
        for v in model.graph.inputs where v.initializer == nil {
            for d in v.tensorType?.shape ?? [] { if case .symbolic(let s) = d { inputSymbols.insert(s) } }
        }
        try prepareAt(model, bounds)
        // Samples: each symbol one below its bound; then all near half (when that is another value).
        var lowered: [String: Graph] = [:]
        for s in symbols where bounds[s]! >= 2 {
            var values = bounds
            values[s] = bounds[s]! - 1
            lowered[s] = try sample(pristine, values, prepareAt)
        }
        var half = bounds
        for s in symbols { half[s] = max(1, (bounds[s]! + 1) / 2) }
        let check: Graph? = half != bounds && symbols.allSatisfy({ half[$0]! != bounds[$0]! - 1 }) ? try sample(pristine, half, prepareAt) : nil

        let graph = model.graph
        // Constants of one repeated value whose extents follow a symbol (zeros to scatter into):
        // read as their first elements, they are the same at every size.
        var splats = Set<String>()
        for (s, g) in lowered { splats.formUnion(try sameGraph(graph, g, "\(s) = \(bounds[s]! - 1)", bounds)) }
        if let check { splats.formUnion(try sameGraph(graph, check, symbols.map { "\($0) = \(half[$0]!)" }.joined(separator: ", "), bounds)) }

        // Extents: base + Σ c_s (s - bound_s).
        let maps = lowered.mapValues(valuesByName)
        let checkMap = check.map(valuesByName)
        // Input dimensions at least 1 (every extent that follows them too); lengths computed from
        // values may be 0 (an empty Range).
        var minimum = Dictionary(uniqueKeysWithValues: symbols.map { ($0, inputSymbols.contains($0) ? 1 : 0) })
        var annotated: [(Value, [DimExpr])] = []
        func staticShape(_ v: Value?) -> [Int]? { v?.initializer?.dims ?? v?.tensorType?.staticShape }
        for v in computedValues(graph) + graph.initializers.filter({ splats.contains($0.name) }) {
            guard let shape = staticShape(v) else { continue }
            var exprs: [DimExpr] = []
            for (i, d) in shape.enumerated() {
                var e = DimExpr(d)
                for s in symbols {
                    guard let other = staticShape(maps[s]?[v.name]), other.count == shape.count else { continue }
                    let c = d - other[i]
                    if c < 0 {
                        throw CompileError(.value(v.name), "tensor '\(v.name)'\(producerText(v)) has \(d) at position \(i) when \(s) = \(bounds[s]!) and \(other[i]) when \(s) = \(bounds[s]! - 1); an extent that shrinks as a run-time dimension grows cannot be planned for its bound")
                    }
                    if c != 0 { e = e + DimExpr(c) * (DimExpr(symbol: s) - DimExpr(bounds[s]!)) }
                }
                if let checkMap, !e.isConstant, let other = staticShape(checkMap[v.name]), other.count == shape.count {
                    let predicted = try e.evaluate(half)
                    if predicted != other[i] {
                        throw CompileError(.value(v.name), "tensor '\(v.name)'\(producerText(v)) has an extent at position \(i) that does not follow \(symbols.joined(separator: ", ")) linearly (\(d) at the bound, \(other[i]) at \(symbols.map { "\($0) = \(half[$0]!)" }.joined(separator: ", ")), not \(predicted)); sofie handles run-time extents of the form a + b*N (e.g. not a strided window over the symbol's axis)")
                    }
                }
                if !e.isConstant {
                    // The smallest symbol values for which the extent stays at least 1.
                    let syms = e.symbols.sorted()
                    if syms.count == 1, let s = syms.first {
                        let c = e.coefficient(of: s), k = e.constant ?? (e - DimExpr(c) * DimExpr(symbol: s)).constant ?? 0
                        let least = inputSymbols.contains(s) ? 1 : 0
                        // c*s + k >= least  <=>  s >= ceil((least - k) / c)
                        if c > 0 {
                            let a = least - k
                            minimum[s] = max(minimum[s]!, a >= 0 ? (a + c - 1) / c : -((-a) / c))
                        }
                    }
                }
                exprs.append(e)
            }
            if exprs.contains(where: { !$0.isConstant }) { annotated.append((v, exprs)) }
        }
        for s in symbols where minimum[s]! > bounds[s]! {
            throw CompileError(.graph, "with \(s) at most \(bounds[s]!), some tensor has no elements for every \(s) up to the bound (the smallest \(s) that gives every tensor an element is \(minimum[s]!)); raise the bound")
        }
        let used = Set(annotated.flatMap { $0.1.flatMap(\.symbols) })
        // (A bound of 1 has no other size to follow: nothing needs to.)
        if let unused = symbols.first(where: { !used.contains($0) && bounds[$0]! > 1 }) {
            let named = inputSymbols.sorted().map { "'\($0)'" }.joined(separator: ", ")
            throw CompileError(.graph, "--dim \(unused)=max:\(bounds[unused]!): no tensor's extent follows '\(unused)' (the inputs' symbolic dimensions are \(named.isEmpty ? "none" : named); a Range with run-time bounds is named NODE_len)")
        }
        for (v, exprs) in annotated { v.runtimeShape = exprs }
        graph.runtimeDimensions = symbols.map {
            RuntimeDimension(name: $0, bound: bounds[$0]!, minimum: minimum[$0]!, fromValues: !inputSymbols.contains($0))
        }
    }

    static func sample(_ pristine: Model, _ values: [String: Int], _ prepareAt: (Model, [String: Int]) throws -> Void) throws -> Graph {
        let copy = pristine.clone()
        do { try prepareAt(copy, values) } catch {
            let at = values.sorted { $0.key < $1.key }.map { "\($0.key) = \($0.value)" }.joined(separator: ", ")
            throw CompileError(.graph, "the model compiles at the bound but not at \(at), which a run-time dimension must allow: \(error)")
        }
        return copy.graph
    }

    /// Graph inputs and node outputs (the values the emitted code holds).
    static func computedValues(_ g: Graph) -> [Value] {
        g.inputs.filter { $0.initializer == nil } + g.nodes.flatMap { $0.outputs.compactMap { $0 } }
    }

    static func valuesByName(_ g: Graph) -> [String: Value] {
        var m: [String: Value] = [:]
        for v in computedValues(g) + g.initializers { m[v.name] = v }
        return m
    }

    static func producerText(_ v: Value) -> String {
        v.producer.map { " (output of node '\($0.name)', op \($0.opType))" } ?? " (a graph input)"
    }

    /// Throws unless `b` (prepared at `at`) is `a` (prepared at the bounds) up to extents and
    /// shape-only constants.
    /// Returns the constants that differ only in extents and hold one repeated value or are
    /// the bound's constant cut to fewer leading rows.
    static func sameGraph(_ a: Graph, _ b: Graph, _ at: String, _ bounds: [String: Int]) throws -> Set<String> {
        var splats = Set<String>()
        let bounds = bounds.sorted { $0.key < $1.key }.map { "\($0.key) = \($0.value)" }.joined(separator: ", ")
        func differ(_ what: String) -> CompileError {
            CompileError(.graph, "the model compiles to different code at \(bounds) and at \(at) (\(what)); sofie needs one graph for every size up to the bound")
        }
        guard a.nodes.count == b.nodes.count else { throw differ("\(a.nodes.count) nodes against \(b.nodes.count)") }
        let bValues = valuesByName(b)
        for (x, y) in zip(a.nodes, b.nodes) {
            guard x.opType == y.opType, x.domain == y.domain, x.name == y.name, x.inputs.count == y.inputs.count, x.outputs.count == y.outputs.count else {
                throw differ("node '\(x.name)' (\(x.opType)) against '\(y.name)' (\(y.opType))")
            }
            guard attributesText(x) == attributesText(y) else { throw differ("node '\(x.name)' (\(x.opType)) has other attributes") }
            for (i, (u, w)) in zip(x.inputs, y.inputs).enumerated() {
                guard let u, let w else {
                    guard u == nil && w == nil else { throw differ("node '\(x.name)' input \(i)") }
                    continue
                }
                guard u.name == w.name else { throw differ("node '\(x.name)' input \(i) is '\(u.name)' against '\(w.name)'") }
                guard let tu = u.initializer else { continue }
                guard let tw = bValues[w.name]?.initializer ?? w.initializer, tu.dataType == tw.dataType else {
                    throw differ("input \(i) of node '\(x.name)' is a constant only at the bound")
                }
                if shapeOnlyInputs.contains("\(x.opType):\(i)") { continue }
                let same: Bool = withExtendedLifetime((tu, tw)) {
                    guard tu.dims == tw.dims, let ra = tu.rawBytes, let rb = tw.rawBytes else { return false }
                    return ra.elementsEqual(rb)
                }
                if !same, tu.dims.count == tw.dims.count, (splat(tu).map { $0 == splat(tw) } ?? false) || isLeadingPrefix(tw, of: tu) {
                    splats.insert(u.name)
                } else if !same {
                    throw CompileError(node: x, "its input '\(u.name)' holds values computed from the run-time dimension (a constant at one size, another at \(at)); sofie computes such values only at compile time, so this model needs --dim with a fixed value for now")
                }
            }
        }
        return splats
    }

    /// Whether `small` is `large`'s first rows (the same extents after the first, its bytes a
    /// prefix of large's): positions 0..<n of a Range folded at the bound, say.
    static func isLeadingPrefix(_ small: Tensor, of large: Tensor) -> Bool {
        guard small.dataType == large.dataType, !small.dims.isEmpty, small.dims.dropFirst() == large.dims.dropFirst() else { return false }
        return withExtendedLifetime((small, large)) {
            guard let a = small.rawBytes, let b = large.rawBytes, a.count <= b.count else { return false }
            return a.elementsEqual(b[0..<a.count])
        }
    }

    /// The bytes of the one value every element of `t` has (nil when they differ or it has none).
    static func splat(_ t: Tensor) -> [UInt8]? {
        withExtendedLifetime(t) {
            guard let raw = t.rawBytes, let size = t.dataType.byteSize, size > 0, raw.count >= size, raw.count % size == 0 else { return nil }
            let first = Array(raw[0..<size])
            var i = size
            while i < raw.count {
                for b in 0..<size where raw[i + b] != first[b] { return nil }
                i += size
            }
            return first
        }
    }

    /// A node's attributes as comparable text (subgraph attributes by their node count).
    static func attributesText(_ n: Node) -> String {
        n.attributes.map { a -> String in
            switch a.value {
            case .graph(let g): return "\(a.name)=graph(\(g.nodes.count))"
            case .graphs(let gs): return "\(a.name)=graphs(\(gs.map { $0.nodes.count }))"
            case .tensor(let t): return "\(a.name)=tensor(\(t.dims),\(withExtendedLifetime(t) { t.rawBytes.map { Array($0).hashValue } ?? 0 }))"
            default: return "\(a.name)=\(a.value)"
            }
        }.joined(separator: ";")
    }
}
