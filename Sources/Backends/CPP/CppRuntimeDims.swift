import SofieIR

/// Run-time dimensions in the emitted code (`--dim N=max:BOUND`): each symbol is a parameter
/// of `run` (`n_N`), extents that follow it are C++ expressions of it, and only the ops listed
/// in `supported` may touch a tensor with such an extent (each of their emitters computes its
/// loop bounds, strides and offsets as `DimExpr`s, which print as plain numbers when static,
/// so a model without run-time dimensions gets the same code as before).
enum CppRuntimeDims {
    /// Ops whose emitters handle run-time extents on any input or output.
    static let supported: Set<String> = {
        var s: Set<String> = Set(CppElementwise.unaryOps).union(CppElementwise.binaryOps)
        s.formUnion(["Max", "Min", "Sum", "Mean", "Where", "Clip", "PRelu", "Transpose", "Gather", "Concat", "MatMul", "Gemm", "FusedGemm",
                     "LSTM", "GRU", "RNN", "Softmax", "LogSoftmax", "LayerNormalization",
                     "Slice", "Expand", "ScatterElements", "Scatter", "Range", "NonZero", "Compress", "Unique", "NonMaxSuppression", "TopK", "Cast", "CastLike"])
        s.formUnion(ReductionOps.reduceOps)
        for (op, def) in OpRegistry.definitions where def.traits.contains(.aliasesInput) { s.insert(op) }
        return s
    }()

    /// Whether the node reads or writes a tensor with a run-time extent.
    static func touchesRuntimeExtents(_ n: Node) -> Bool {
        (n.inputs + n.outputs).contains { $0?.runtimeShape != nil }
    }

    /// The C++ variable holding a symbol's value inside `run`.
    static func variable(_ symbol: String) -> String { "n_" + CppNames.identifier(symbol, fallback: "dim") }
}

extension EmitContext {
    /// The run-time check that a shape, axes or repeats input (DeclaredShapes) gives the output
    /// shape the model declares: std::invalid_argument naming the node if not.
    func checkDeclaredShape(_ n: Node, input i: Int) throws {
        // Inputs that are the output's extents themselves: Resize's sizes and CenterCropPad's
        // shape (those of its axes), MaxUnpool's output_shape, AffineGrid's size (N, C, spatial;
        // C is not used). Each value must be the declared extent (nil: any).
        if ["Resize", "CenterCropPad", "MaxUnpool", "AffineGrid"].contains(n.opType) {
            let v = try input(n, i), y = try output(n, 0), r = y.shape.count
            let want: [Int?]
            switch n.opType {
            case "MaxUnpool": want = y.shape
            case "AffineGrid": want = r >= 2 ? [y.shape[0], nil] + y.shape[1..<(r - 1)].map { $0 } : []
            default: want = try (n.ints("axes") ?? Array(0..<r)).map { try OpContext(node: n, opset: opset).axis($0, rank: r) }.map { y.shape[$0] }
            }
            let what = ["Resize": "sizes", "CenterCropPad": "shape", "MaxUnpool": "output_shape", "AffineGrid": "size"][n.opType]!
            guard v.count == want.count, !want.isEmpty, !v.hasRuntimeExtents else { throw CompileError(node: n, "its \(what) (input \(i)) must have \(want.count) values") }
            let test = want.enumerated().compactMap { k, w in w.map { "static_cast<int64_t>(\(v.ptr)[\(k)]) != \($0)" } }.joined(separator: " || ")
            line("if (\(test))")
            line("    throw std::invalid_argument(\"\(ns): node '\(CppNames.comment(n.name, limit: 60))' (\(n.opType)): its \(what) (input \(i)) does not give the declared output shape [\(y.shape.map(String.init).joined(separator: "x"))]\");")
            return
        }
        // TopK's k, Split's sizes and OneHot's depth: the declared extents on the op's axis.
        if ["TopK", "Split", "OneHot"].contains(n.opType) {
            let v = try input(n, i)
            let ref = n.opType == "OneHot" ? try output(n, 0) : try input(n, 0)
            let rank = ref.shape.count
            let axis = try OpContext(node: n, opset: opset).axis(n.int("axis") ?? (n.opType == "Split" ? 0 : -1), rank: rank)
            let extents = try n.outputs.indices.compactMap { k in try n.output(k).map { try tensor($0).shape[axis] } }
            let want = n.opType == "Split" ? extents : [extents[0]]
            let what = ["TopK": "k", "Split": "split", "OneHot": "depth"][n.opType]!
            guard v.count == want.count, !v.hasRuntimeExtents else { throw CompileError(node: n, "its \(what) (input \(i)) must have \(want.count) value\(want.count == 1 ? "" : "s")") }
            let test = want.enumerated().map { k, w in "static_cast<int64_t>(\(v.ptr)[\(k)]) != \(w)" }.joined(separator: " || ")
            line("if (\(test))")
            line("    throw std::invalid_argument(\"\(ns): node '\(CppNames.comment(n.name, limit: 60))' (\(n.opType)): its \(what) (input \(i)) is not the declared \(want.map(String.init).joined(separator: ", "))\");")
            return
        }
        let codes = ["Reshape": 0, "Squeeze": 1, "Unsqueeze": 2, "Expand": 3, "Tile": 4, "ConstantOfShape": 5]
        guard let code = codes[n.opType] else { throw CompileError(node: n, "internal: no run-time shape check for \(n.opType)") }
        let v = try input(n, i), y = try output(n, 0)
        guard v.shape.count <= 1, !v.hasRuntimeExtents, !y.hasRuntimeExtents, [DataType.int64, .int32].contains(v.dtype) else {
            throw CompileError(node: n, "its input \(i) must be a 1-D int64 tensor")
        }
        let inShape = n.opType == "ConstantOfShape" ? [] : try self.input(n, 0).shape
        func array(_ a: [Int]) -> String { "{" + (a + [0]).map(String.init).joined(separator: ", ") + "}" }
        let what = ["Reshape": "shape", "Squeeze": "axes", "Unsqueeze": "axes", "Expand": "shape", "Tile": "repeats", "ConstantOfShape": "shape"][n.opType]!
        block {
            line("static constexpr int64_t in_shape[] = \(array(inShape)), out_shape[] = \(array(y.shape));")
            line("if (!sofie_rt::declared_shape_ok<\(v.ctype)>(\(code), in_shape, \(inShape.count), \(v.ptr), \(v.count), out_shape, \(y.shape.count), \((n.int("allowzero") ?? 0) != 0)))")
            line("    throw std::invalid_argument(\"\(ns): node '\(CppNames.comment(n.name, limit: 60))' (\(n.opType)): its \(what) (input \(i)) does not give the output shape [\(y.shape.map(String.init).joined(separator: "x"))] the model declares\");")
        }
    }
}

extension EmitContext {
    /// The length of `n`'s output that run-time values choose (Range's, NonZero's, Compress's):
    /// `count` lines compute `count` (inside a lambda, at run() level). With a bound
    /// (`--dim NODE_len=max:BOUND`) it must lie in the symbol's range (std::length_error) and is kept
    /// as the symbol's variable, which later ops read, and for Session::last_NODE_len(); without one,
    /// it must equal `declared`, the model's declared extent (std::invalid_argument). Returns the
    /// length's C++ expression. `made` words the message: "Range 'r' makes 100 elements, ...".
    func valueLength(_ n: Node, declared: Int, made: String, _ count: [String], unit: String? = nil) throws -> String {
        let symbol = RuntimeDimension.lengthSymbol(of: n)
        let bounded = graph.runtimeDimensions.first { $0.name == symbol && $0.fromValues }
        let what = "\(CppNames.comment(n.opType)) '\(CppNames.comment(n.name, limit: 60))'"
        let v = bounded.map { _ in CppRuntimeDims.variable(symbol) } ?? "count_\(fresh("len"))"
        line("const int64_t \(v) = [&] {")
        for l in count { line("    " + l) }
        if let d = bounded {
            line("    if (count < \(d.minimum) || count > \(d.bound))")
            line("        throw std::length_error(\"\(ns): \(what) \(made) \" + std::to_string(count) + \" \(unit ?? self.unit(made)), outside \(d.minimum)...\(d.bound) (its bound, --dim '\(CppNames.comment(symbol, limit: 60))=max:\(d.bound)')\");")
        } else {
            line("    if (count != \(declared))")
            line("        throw std::invalid_argument(\"\(ns): \(what) \(made) \" + std::to_string(count) + \" \(unit ?? self.unit(made)), not the \(declared) the model declares\");")
        }
        line("    return count;")
        line("}();")
        if bounded != nil { line("\(v)_last_ = \(v);") }
        return v
    }

    private func unit(_ made: String) -> String {
        made == "finds" ? "nonzero elements" : made == "selects" ? "slices" : "elements"
    }
}

extension CTensor {
    /// The extents at run time (the static shape when none follows a run-time dimension).
    var dims: [DimExpr] { value.runtimeShape ?? shape.map { DimExpr($0) } }
    /// The element count at run time.
    var countExpr: DimExpr { dims.reduce(DimExpr(1), *) }
    var hasRuntimeExtents: Bool { value.runtimeShape != nil }
}

extension EmitContext {
    /// A run-time extent in C++ (a number when static).
    func cpp(_ d: DimExpr) -> String { d.cpp(CppRuntimeDims.variable) }
    /// A run-time extent as a factor of a product (parenthesized when it is a sum).
    func factor(_ d: DimExpr) -> String { d.terms.count > 1 ? "(\(cpp(d)))" : cpp(d) }
    /// An extent's largest value (its value with every symbol at its bound).
    func bound(_ d: DimExpr) throws -> Int {
        if let c = d.constant { return c }
        return try d.evaluate(Dictionary(uniqueKeysWithValues: graph.runtimeDimensions.map { ($0.name, $0.bound) }))
    }
    /// A tensor's element count in C++.
    func count(_ t: CTensor) -> String { cpp(t.countExpr) }

    /// Row-major strides of run-time extents.
    static func strides(_ dims: [DimExpr]) -> [DimExpr] {
        var st = [DimExpr](repeating: 1, count: dims.count)
        var acc = DimExpr(1)
        for i in dims.indices.reversed() {
            st[i] = acc
            acc = acc * dims[i]
        }
        return st
    }

    /// Σ var_d * stride_d over run-time strides (as `offset` does for static ones).
    func offset(_ vars: [String], _ strides: [DimExpr], base: DimExpr = 0) -> String {
        if let s = strides.map(\.constant) as? [Int], let b = base.constant { return Self.offset(vars, s, base: b) }
        var terms: [String] = []
        if base != 0 { terms.append(cpp(base)) }
        for (v, s) in zip(vars, strides) where s != 0 && v != "0" {
            let text = cpp(s)
            terms.append(s == 1 ? v : "\(v) * \(s.terms.count > 1 ? "(\(text))" : text)")
        }
        return terms.isEmpty ? "0" : terms.joined(separator: " + ")
    }

    /// Strides of `inShape` broadcast against `outShape` (0 on broadcast axes), run-time extents.
    static func broadcastStrides(_ inShape: [DimExpr], _ outShape: [DimExpr]) -> [DimExpr] {
        let padded = [DimExpr](repeating: 1, count: outShape.count - inShape.count) + inShape
        let st = strides(padded)
        return padded.indices.map { padded[$0] == 1 ? 0 : st[$0] }
    }

    /// Nested loops over extents, static or run-time, with index variables i0, i1, ...; `inner`
    /// gets them. An axis of extent 1 gets no loop: its index is the literal "0" (which `offset`
    /// drops), unless the body jumps (`continue`/`break` there must keep their loop).
    /// `innermost` goes before the innermost loop's `for` (a pragma macro, or nothing).
    func loops(_ shape: [DimExpr], prefix: String = "i", innermost: String = "", _ inner: ([String]) throws -> Void) rethrows {
        let start = body.count
        try loops(shape, prefix: prefix, dropUnit: true, innermost: innermost, inner)
        // A jump (continue/break) in the body needs every loop, unit ones included.
        if shape.contains(1), body[start...].contains(where: { $0.contains("continue;") || $0.contains("break;") }) {
            body.removeSubrange(start...)
            try loops(shape, prefix: prefix, dropUnit: false, innermost: innermost, inner)
        }
    }

    private func loops(_ shape: [DimExpr], prefix: String, dropUnit: Bool, innermost: String, _ inner: ([String]) throws -> Void) rethrows {
        let vars = shape.indices.map { dropUnit && shape[$0] == 1 ? "0" : "\(prefix)\($0)" }
        let last = vars.lastIndex { $0 != "0" }
        var depth = 0
        for (d, n) in shape.enumerated() where vars[d] != "0" {
            line(String(repeating: "    ", count: depth) + (d == last ? innermost : "") + "for (int64_t \(vars[d]) = 0; \(vars[d]) < \(cpp(n)); ++\(vars[d])) {")
            depth += 1
        }
        let innerStart = body.count
        try inner(vars)
        for i in innerStart..<body.count where !body[i].isEmpty { body[i] = String(repeating: "    ", count: depth) + body[i] }
        for d in stride(from: depth - 1, through: 0, by: -1) { line(String(repeating: "    ", count: d) + "}") }
    }
}
