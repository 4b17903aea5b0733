import SofieIR

/// Decides whether a model compiled for batch 1 may be run row by row for any batch size:
/// true when every op treats the rows of the leading (batch) dimension independently, so
/// that row b of every batch-carrying output depends only on row b of the batch-carrying
/// inputs. Conservative: an op not known to be row-independent makes the answer no.
enum BatchAnalysis {
    struct Result {
        /// Graph inputs and outputs that carry the batch dimension (leading axis).
        var inputs: Set<ObjectIdentifier>
        var outputs: Set<ObjectIdentifier>
        /// Every value that carries the batch: name -> the axis it is on (0 except between the
        /// batch/time Transposes around a recurrent op, which moves it).
        var carrying: [String: Int] = [:]
    }

    /// Ops that act on each leading-axis row separately when their batch-carrying operand is
    /// input 0: stated on their definitions (OpTraits.rowIndependent).
    static func rowwise(_ n: Node) -> Bool {
        // Training-mode BatchNormalization normalizes with the batch's own statistics.
        if n.opType == "BatchNormalization" && (n.int("training_mode") ?? 0) == 1 { return false }
        return OpRegistry.traits(of: n).contains(.rowIndependent)
    }

    /// Whether `block` (the same model compiled for `rows` rows) has, for every value of the
    /// single-row graph, a value of the same name whose shape is the single-row one with the
    /// batch axis's 1 replaced by `rows`. A reshape that folds rows together (e.g. to a
    /// constant [1, -1]) breaks this, and the block must not be used.
    static func blockMatches(_ block: Graph, rows: Int, single: Graph, carrying: [String: Int]) -> Bool {
        var shapes: [String: [Int]] = [:]
        for v in block.inputs + block.nodes.flatMap({ $0.outputs.compactMap { $0 } }) { shapes[v.name] = v.tensorType?.staticShape }
        for v in single.inputs + single.nodes.flatMap({ $0.outputs.compactMap { $0 } }) where v.initializer == nil {
            guard var want = v.tensorType?.staticShape else { return false }
            if let axis = carrying[v.name] {
                guard axis < want.count, want[axis] == 1 else { return false }
                want[axis] = rows
            }
            guard shapes[v.name] == want else { return false }
        }
        return true
    }

    /// Why the model is not row-separable (nil when it is), with the result when it is.
    static func analyze(_ graph: Graph, batchInputs: Set<String>, opset: Int) -> (Result?, String?) {
        // Batch-carrying values and the axis the batch is on.
        var carries: [ObjectIdentifier: Int] = [:]
        var inputs = Set<ObjectIdentifier>()
        for v in graph.inputs where batchInputs.contains(v.name) {
            guard let s = v.tensorType?.staticShape, s.first == 1 else { return (nil, "input '\(v.name)' does not have a leading dimension of 1") }
            carries[ObjectIdentifier(v)] = 0
            inputs.insert(ObjectIdentifier(v))
        }
        if inputs.isEmpty { return (nil, "no input has a symbolic leading dimension") }
        func has(_ v: Value?) -> Bool { v.map { carries[ObjectIdentifier($0)] != nil } ?? false }
        func axis(_ v: Value?) -> Int? { v.flatMap { carries[ObjectIdentifier($0)] } }
        func dim(_ v: Value?, _ a: Int) -> Int? {
            guard let s = v?.tensorType?.staticShape, a >= 0, a < s.count else { return nil }
            return s[a]
        }
        func rank(_ v: Value?) -> Int { v?.tensorType?.staticShape?.count ?? -1 }
        func lead1(_ v: Value?) -> Bool { v?.tensorType?.staticShape?.first == 1 }
        for n in graph.nodes {
            let ins = n.inputs
            guard ins.contains(where: has) else { continue }
            let out = n.outputs.compactMap { $0 }
            let reason = "node \(n.label) combines rows of the batch dimension"
            let c = OpContext(node: n, opset: opset)
            // Ops that move the batch axis (batch/time Transposes and the recurrent ops between
            // them, as Keras and PyTorch write batch-first sequences): each output's batch axis.
            if let moved = movedAxes(n, c, axis: axis, has: has, dim: dim) {
                guard moved.count == out.count else { return (nil, reason) }
                for (o, a) in zip(out, moved) { carries[ObjectIdentifier(o)] = a }
                continue
            }
            // Every other op needs the batch on axis 0 of its batch-carrying operands.
            guard ins.allSatisfy({ !has($0) || axis($0) == 0 }) else { return (nil, reason) }
            var ok = false
            switch n.opType {
            case "FusedConv" where SofieOps.isSofie(n), "BlockedConv" where SofieOps.isSofie(n):
                // Conv with a residual of the output's shape (row b of Z goes with row b of Y).
                ok = has(ins[0]) && !has(n.input(1)) && !has(n.input(2))
            case "FusedGemm" where SofieOps.isSofie(n):
                ok = has(ins[0]) && (n.int("transA") ?? 0) == 0 && !has(ins[1]) && !has(n.input(2))
                    && (n.input(2) == nil || rank(n.input(2)) < 2 || lead1(n.input(2)))
            case _ where rowwise(n):
                ok = has(ins[0]) && ins.dropFirst().allSatisfy { !has($0) }
            case _ where OpRegistry.traits(of: n).contains(.broadcastingElementwise):
                // Batch operands are aligned at axis 0; the others must not reach axis 0 of the output.
                let r = rank(out.first)
                ok = ins.allSatisfy { v in v == nil || (has(v) ? rank(v) == r : (rank(v) < r || lead1(v))) }
            case "Gemm":
                ok = has(ins[0]) && (n.int("transA") ?? 0) == 0 && !has(ins[1]) && !(ins.count > 2 && has(ins[2]))
                    && (ins.count < 3 || ins[2] == nil || rank(ins[2]) < 2 || lead1(ins[2]))
            case "MatMul":
                ok = has(ins[0]) && !has(ins[1]) && rank(ins[0]) >= 2 && rank(ins[1]) <= 2
            case "Flatten":
                ok = (n.int("axis") ?? 1) >= 1
            case "Reshape", "Squeeze", "Unsqueeze":
                // Row-separable when the leading 1 stays the leading 1 (no axis is moved across it).
                if n.opType == "Squeeze" { ok = !((try? ReductionOps.reduceAxes(c))?.axes.contains(0) ?? true) && lead1(out.first) }
                else { ok = lead1(out.first) && lead1(ins[0]) }
                if n.opType == "Unsqueeze", let axes = try? c.ints(attribute: "axes", orInput: 1) { ok = ok && !axes.contains(0) }
            case "Transpose":
                ok = (n.ints("perm") ?? []).first == 0
            case "Softmax", "LogSoftmax", "Hardmax", "ArgMax", "ArgMin", "TopK", "LayerNormalization", "CumSum", "CumProd",
                 "LpNormalization", "RMSNormalization":
                let r = rank(ins[0])
                let a = n.int("axis") ?? (["Softmax", "LogSoftmax", "Hardmax"].contains(n.opType) ? -1 : (n.opType == "LayerNormalization" ? -1 : 0))
                let axis = a < 0 ? a + r : a
                ok = axis >= 1 && ins.dropFirst().allSatisfy { !has($0) }
                if ["Softmax", "LogSoftmax", "Hardmax"].contains(n.opType) && n.int("axis") == nil { ok = r >= 2 }
            case "Concat", "Split":
                let r = rank(ins[0])
                let a = n.int("axis") ?? 0
                ok = (a < 0 ? a + r : a) >= 1 && ins.allSatisfy { $0 == nil || has($0) }
            case "Slice", "Pad", "Resize", "Upsample":
                // Unchanged leading dimension of 1 means axis 0 is untouched.
                ok = lead1(out.first) && ins.dropFirst().allSatisfy { !has($0) }
            case "ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2", "ReduceLogSum",
                 "ReduceLogSumExp", "ReduceSumSquare":
                ok = !((try? ReductionOps.reduceAxes(c))?.axes.contains(0) ?? true) && lead1(out.first)
            default:
                ok = false
            }
            if !ok { return (nil, reason) }
            for o in out { carries[ObjectIdentifier(o)] = 0 }
        }
        var outputs = Set<ObjectIdentifier>()
        for v in graph.outputs where has(v) {
            guard lead1(v), axis(v) == 0 else { return (nil, "output '\(v.name)' does not keep the batch dimension first") }
            outputs.insert(ObjectIdentifier(v))
        }
        if outputs.isEmpty { return (nil, "no output carries the batch dimension") }
        var carrying: [String: Int] = [:]
        for v in graph.inputs + graph.nodes.flatMap({ $0.outputs.compactMap { $0 } }) { if let a = axis(v) { carrying[v.name] = a } }
        return (Result(inputs: inputs, outputs: outputs, carrying: carrying), nil)
    }

    /// For ops that may move the batch axis, the batch axis of each output (nil for every other
    /// op, and for these when the batch is on axis 0 and they keep it there, which the general
    /// rules handle). An empty array: the op mixes rows.
    static func movedAxes(_ n: Node, _ c: OpContext, axis: (Value?) -> Int?, has: (Value?) -> Bool, dim: (Value?, Int) -> Int?) -> [Int]? {
        let ins = n.inputs
        switch n.opType {
        case "Transpose":
            // A permutation moves whole rows: the batch follows its axis.
            guard let a = axis(ins[0]), let perm = n.ints("perm"), let to = perm.firstIndex(of: a) else { return nil }
            if a == 0 && to == 0 { return nil }
            return [to]
        case "Squeeze", "Unsqueeze":
            guard let a = axis(ins[0]), a != 0, dim(ins[0], a) == 1 else { return nil }
            if n.opType == "Squeeze" {
                guard let axes = (try? ReductionOps.reduceAxes(c))?.axes, !axes.isEmpty, !axes.contains(a) else { return [] }
                return [a - axes.filter { $0 < a }.count]
            }
            guard let raw = try? c.ints(attribute: "axes", orInput: 1) else { return [] }
            let r = (n.inputs[0]?.tensorType?.staticShape?.count ?? 0) + raw.count
            let axes = Set(raw.map { $0 < 0 ? $0 + r : $0 })
            // Output axes not inserted take the input's axes in order.
            let kept = (0..<r).filter { !axes.contains($0) }
            return a < kept.count ? [kept[a]] : []
        case "Slice":
            // Reversing or cutting the time axis of a sequence-major tensor leaves its batch axis.
            guard let a = axis(ins[0]), a != 0 else { return nil }
            let r = ins[0]?.tensorType?.staticShape?.count ?? 0
            guard ins.dropFirst().allSatisfy({ !has($0) }), ins.count > 3, ins[3] != nil,
                  let axes = try? c.ints(attribute: "axes", orInput: 3), !axes.map({ $0 < 0 ? $0 + r : $0 }).contains(a) else { return [] }
            return [a]
        case "RNN", "GRU", "LSTM":
            // X: [seq, batch, in] (layout 0) or [batch, seq, in] (layout 1); each batch row runs
            // its own recurrence. Weights must not carry the batch; sequence_lens and the initial
            // states may, on their batch axis.
            let layout = n.int("layout") ?? 0
            let xAxis = layout == 0 ? 1 : 0, stateAxis = layout == 0 ? 1 : 0
            guard axis(ins[0]) == xAxis, dim(ins[0], xAxis) == 1 else { return [] }
            for (i, v) in ins.enumerated().dropFirst() where has(v) {
                switch i {
                case 4: guard axis(v) == 0 else { return [] }
                case 5: guard axis(v) == stateAxis else { return [] }                   // initial_h
                case 6 where n.opType == "LSTM": guard axis(v) == stateAxis else { return [] }  // initial_c
                default: return []
                }
            }
            // Y: [seq, dirs, batch, hidden] or [batch, seq, dirs, hidden]; Y_h, Y_c: [dirs, batch, hidden] or [batch, dirs, hidden].
            return n.outputs.compactMap { $0 }.map { o in
                let idx = n.outputs.firstIndex { $0 === o } ?? 0
                return idx == 0 ? (layout == 0 ? 2 : 0) : stateAxis
            }
        default:
            // Elementwise ops and Concat on tensors whose batch is on another axis (e.g. the two
            // directions of a Bidirectional layer merged before going back to batch-major).
            guard let a = ins.compactMap({ axis($0) }).first, a != 0 else { return nil }
            let r = n.outputs.first??.tensorType?.staticShape?.count ?? -1
            let carriers = ins.filter(has)
            guard carriers.allSatisfy({ axis($0) == a && $0?.tensorType?.staticShape?.count == r }) else { return [] }
            if n.opType == "Concat" {
                let k = n.int("axis") ?? 0
                guard ins.allSatisfy(has), (k < 0 ? k + r : k) != a else { return [] }
                return [a]
            }
            let unary = rowwise(n) && ins.count == 1
            let binary = ["Add", "Sub", "Mul", "Div", "Max", "Min", "Sum", "Mean", "Pow", "PRelu", "Where", "Clip"].contains(n.opType)
            guard unary || binary else { return nil }
            // Operands without the batch broadcast; they must not reach axis a with more than 1.
            for v in ins where v != nil && !has(v) {
                let vr = v?.tensorType?.staticShape?.count ?? r
                let at = a - (r - vr)
                if at >= 0 && dim(v, at) != 1 { return [] }
            }
            return [a]
        }
    }
}
