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
        /// Names of every value that carries the batch.
        var carrying: Set<String> = []
    }

    /// Ops that act on each leading-axis row separately when their batch-carrying operand is input 0.
    static let rowwise: Set<String> = Set([
        "Conv", "ConvTranspose", "MaxPool", "AveragePool", "LpPool", "GlobalAveragePool", "GlobalMaxPool",
        "BatchNormalization", "InstanceNormalization", "LRN", "Identity", "Dropout", "Cast", "CastLike",
        "DepthToSpace", "SpaceToDepth", "GroupNormalization",
    ]).union(CppElementwise.unaryOps)

    /// Whether `block` (the same model compiled for `rows` rows) has, for every value of the
    /// single-row graph, a value of the same name whose shape is the single-row one with the
    /// batch-carrying leading 1 replaced by `rows`. A reshape that folds rows together (e.g. to a
    /// constant [1, -1]) breaks this, and the block must not be used.
    static func blockMatches(_ block: Graph, rows: Int, single: Graph, carrying: Set<String>) -> Bool {
        var shapes: [String: [Int]] = [:]
        for v in block.inputs + block.nodes.flatMap({ $0.outputs.compactMap { $0 } }) { shapes[v.name] = v.tensorType?.staticShape }
        for v in single.inputs + single.nodes.flatMap({ $0.outputs.compactMap { $0 } }) where v.initializer == nil {
            guard var want = v.tensorType?.staticShape else { return false }
            if carrying.contains(v.name) {
                guard want.first == 1 else { return false }
                want[0] = rows
            }
            guard shapes[v.name] == want else { return false }
        }
        return true
    }

    /// Why the model is not row-separable (nil when it is), with the result when it is.
    static func analyze(_ graph: Graph, batchInputs: Set<String>) -> (Result?, String?) {
        var carries = Set<ObjectIdentifier>()
        var inputs = Set<ObjectIdentifier>()
        for v in graph.inputs where batchInputs.contains(v.name) {
            guard let s = v.tensorType?.staticShape, s.first == 1 else { return (nil, "input '\(v.name)' does not have a leading dimension of 1") }
            carries.insert(ObjectIdentifier(v))
            inputs.insert(ObjectIdentifier(v))
        }
        if inputs.isEmpty { return (nil, "no input has a symbolic leading dimension") }
        func has(_ v: Value?) -> Bool { v.map { carries.contains(ObjectIdentifier($0)) } ?? false }
        func rank(_ v: Value?) -> Int { v?.tensorType?.staticShape?.count ?? -1 }
        func lead1(_ v: Value?) -> Bool { v?.tensorType?.staticShape?.first == 1 }
        for n in graph.nodes {
            let ins = n.inputs
            guard ins.contains(where: has) else { continue }
            let out = n.outputs.compactMap { $0 }
            let reason = "node \(n.label) combines rows of the batch dimension"
            var ok = false
            let opset = 21
            let c = OpContext(node: n, opset: opset)
            switch n.opType {
            case "FusedConv" where SofieOps.isSofie(n):
                // Conv with a residual of the output's shape (row b of Z goes with row b of Y).
                ok = has(ins[0]) && !has(n.input(1)) && !has(n.input(2))
            case "FusedGemm" where SofieOps.isSofie(n):
                ok = has(ins[0]) && (n.int("transA") ?? 0) == 0 && !has(ins[1]) && !has(n.input(2))
                    && (n.input(2) == nil || rank(n.input(2)) < 2 || lead1(n.input(2)))
            case _ where rowwise.contains(n.opType):
                ok = has(ins[0]) && ins.dropFirst().allSatisfy { !has($0) }
            case "Add", "Sub", "Mul", "Div", "Mod", "Pow", "Max", "Min", "Sum", "Mean", "Where", "PRelu", "Equal", "Less",
                 "Greater", "LessOrEqual", "GreaterOrEqual", "And", "Or", "Xor", "BitShift", "Clip":
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
            for o in out { carries.insert(ObjectIdentifier(o)) }
        }
        var outputs = Set<ObjectIdentifier>()
        for v in graph.outputs where has(v) {
            guard lead1(v) else { return (nil, "output '\(v.name)' does not keep the batch dimension first") }
            outputs.insert(ObjectIdentifier(v))
        }
        if outputs.isEmpty { return (nil, "no output carries the batch dimension") }
        var carrying = Set<String>()
        for v in graph.inputs + graph.nodes.flatMap({ $0.outputs.compactMap { $0 } }) where has(v) { carrying.insert(v.name) }
        return (Result(inputs: inputs, outputs: outputs, carrying: carrying), nil)
    }
}
