import SofieIR

/// Replaces control flow that is decided at compile time by the ops it runs, so that every
/// later pass and the emitter see one flat graph:
///
/// - `Scan` (opset 9 and later) over a sequence of static length is unrolled: step t reads
///   slice t of each scan input (a Gather of one index, so the axis goes away), runs a copy of
///   the body with the states of step t - 1, and the scan outputs are the steps' outputs stacked
///   along their axis (Unsqueeze + Concat), in either direction;
/// - `If` whose condition is a constant becomes the branch it takes; on a run-time condition,
///   when both branches declare outputs of one static type and shape, both are inlined and
///   Where selects (the branches are pure; the untaken one costs its time);
/// - `Loop` of a constant trip count whose condition stays true is unrolled likewise.
///
/// The copies count against `maxGraphNodes`, so a long sequence over a large body is refused
/// with the numbers rather than swelling the header. Scan of opset 8 (with its
/// batch axis and sequence_lens) and If with a run-time condition stay, and the C++ back end
/// reports them as unsupported ops, as it does other Loops and Ifs.
public struct InlineControlFlow: GraphPass {
    public let name = "inline-control-flow"
    public let summary = "unroll Scan over a static length and Loop of a constant trip count; If becomes its branch (constant condition) or both branches and a Where"
    /// Unrolling and inlining stop short of a graph of this many nodes (counted afresh on every
    /// run, so nested loops unrolled over several runs of the pass stay within it too).
    public var maxGraphNodes = 20_000

    public init() {}

    public func run(_ model: Model) throws -> Bool {
        let opset = model.onnxOpset ?? 21
        let g = model.graph
        var taken = Set(g.definedValues.map(\.name) + g.nodes.map(\.name))
        var added = g.nodes.count
        var changed = false
        // Each replaced node's expansion, spliced in at the end in one pass (inserting node by node
        // into the array made unrolling quadratic: a fuzz finding, 8,197 iterations of a Loop).
        var replacements: [ObjectIdentifier: [Node]] = [:]
        for node in g.nodes where node.isStandard {
            let out = Expansion()
            if node.opType == "Scan", opset >= 9, let body = Self.subgraph(node, "body") {
                guard let steps = try Self.scanSteps(node, body: body) else { continue }
                try unrollScan(node, body: body, steps: steps, opset: opset, graph: g, taken: &taken, budget: maxGraphNodes - added, out: out)
            } else if node.opType == "Scan", opset < 9, let body = Self.subgraph(node, "body"), node.input(0) == nil {
                // Opset 8's form: a leading batch axis on every state and scan input (scan axis 1),
                // without sequence_lens: one opset-9 Scan per batch row, each unrolled.
                try unrollBatchedScan(node, body: body, opset: opset, graph: g, taken: &taken, budget: maxGraphNodes - added, out: out)
            } else if node.opType == "If", let cond = node.input(0)?.initializer, let flag = NDArray(cond), flag.count == 1 {
                guard let branch = Self.subgraph(node, flag.double(0) != 0 ? "then_branch" : "else_branch") else { continue }
                guard branch.outputs.count == node.outputs.count else {
                    throw CompileError(node: node, "its taken branch '\(branch.name)' has \(branch.outputs.count) outputs for the node's \(node.outputs.count)")
                }
                let values = try inline(branch, map: [:], into: g, prefix: node.name.isEmpty ? "if" : node.name, taken: &taken, out: out)
                let results = node.outputs
                node.removeAllOutputs()
                for (k, o) in results.enumerated() {
                    guard let o else { continue }
                    out.nodes.append(Node(opType: "Identity", name: g.uniqueName("\(node.name)_out\(k)", taken: &taken), inputs: [values[k]], outputs: [o]))
                }
            } else if node.opType == "If", node.input(0)?.initializer == nil, let shapes = Self.selectableBranches(node) {
                try selectIf(node, shapes: shapes, graph: g, taken: &taken, budget: maxGraphNodes - added, out: out)
            } else if node.opType == "Loop", let body = Self.subgraph(node, "body"), let trips = try Self.loopTrips(node, body: body) {
                try unrollLoop(node, body: body, trips: trips, opset: opset, graph: g, taken: &taken, budget: maxGraphNodes - added, out: out)
            } else {
                continue
            }
            replacements[ObjectIdentifier(node)] = out.nodes
            added += out.nodes.count
            changed = true
        }
        if changed {
            // The expansions where their nodes were (the nodes themselves go right after).
            g.setNodes(g.nodes.flatMap { n in (replacements[ObjectIdentifier(n)] ?? []) + [n] })
            g.removeNodes(Set(replacements.keys))
        }
        return changed
    }

    /// `parts` stacked along a new axis `axis` into `result`: an Unsqueeze of each, then one
    /// Concat, in the form the model's opset reads (Unsqueeze's axes an input from opset 13).
    /// Every name carries the part's number (Graph.uniqueName probes suffixes one by one).
    static func stack(_ parts: [Value], axis: Int, into result: Value, opset: Int, graph g: Graph, prefix: String,
                      taken: inout Set<String>, out: Expansion) {
        let base = "\(prefix)_\(result.name)"
        let axes = opset >= 13 ? g.addConstant(Tensor(dataType: .int64, dims: [1], values: [Int64(axis)]), name: base + "_axes", taken: &taken) : nil
        var unsqueezed: [Value] = []
        for (k, part) in parts.enumerated() {
            let u = Value(name: g.uniqueName("\(base)_part\(k)", taken: &taken))
            out.nodes.append(Node(opType: "Unsqueeze", name: g.uniqueName("\(base)_unsqueeze\(k)", taken: &taken), inputs: axes.map { [part, $0] } ?? [part], outputs: [u],
                                  attributes: axes == nil ? [Attribute("axes", .ints([Int64(axis)]))] : []))
            unsqueezed.append(u)
        }
        out.nodes.append(Node(opType: "Concat", name: g.uniqueName(base + "_stack", taken: &taken), inputs: unsqueezed, outputs: [result],
                              attributes: [Attribute("axis", .int(Int64(axis)))]))
    }

    /// The nodes replacing one control-flow node, in order.
    final class Expansion { var nodes: [Node] = [] }

    /// If on a run-time condition whose branches declare outputs of one static type and shape
    /// each (so that selecting is all that differs): the types, else nil (the If stays).
    static func selectableBranches(_ node: Node) -> [TensorType]? {
        guard let a = subgraph(node, "then_branch"), let b = subgraph(node, "else_branch"),
              a.outputs.count == node.outputs.count, b.outputs.count == node.outputs.count,
              node.input(0)?.tensorType?.staticShape.map({ $0.reduce(1, *) == 1 }) ?? false else { return nil }
        var types: [TensorType] = []
        for (x, y) in zip(a.outputs, b.outputs) {
            guard let tx = x.tensorType, let ty = y.tensorType, tx == ty, tx.staticShape != nil else { return nil }
            types.append(tx)
        }
        return types
    }

    /// Both branches inlined, each output chosen by Where(condition, then, else): the branches
    /// are pure computations, so running both gives the taken one's values (at the cost of the
    /// other's time).
    func selectIf(_ node: Node, shapes: [TensorType], graph g: Graph, taken: inout Set<String>, budget: Int, out: Expansion) throws {
        let a = Self.subgraph(node, "then_branch")!, b = Self.subgraph(node, "else_branch")!
        let cost = Self.nodeCount(a) + Self.nodeCount(b) + shapes.count
        guard cost <= budget else { throw CompileError(node: node, "inlining both branches would add \(cost) nodes, more than the \(budget) allowed") }
        let prefix = node.name.isEmpty ? "if" : node.name
        let thenValues = try inline(a, map: [:], into: g, prefix: prefix + "_then", taken: &taken, out: out)
        let elseValues = try inline(b, map: [:], into: g, prefix: prefix + "_else", taken: &taken, out: out)
        let cond = node.input(0)!
        let results = node.outputs
        node.removeAllOutputs()
        for (k, o) in results.enumerated() {
            guard let o else { continue }
            out.nodes.append(Node(opType: "Where", name: g.uniqueName("\(prefix)_select\(k)", taken: &taken),
                                  inputs: [cond, thenValues[k], elseValues[k]], outputs: [o]))
        }
    }

    /// A Loop's trip count when it is a constant, its condition absent or constant true, and the
    /// body's condition output always true (the condition input passed through, or a constant
    /// true): it then runs exactly that many times. nil otherwise (the Loop stays).
    static func loopTrips(_ node: Node, body: Graph) throws -> Int? {
        guard let m = node.input(0)?.initializer.flatMap(NDArray.init), m.count == 1 else { return nil }
        if let c = node.input(1) {
            guard let v = c.initializer.flatMap(NDArray.init), v.count == 1, v.double(0) != 0 else { return nil }
        }
        guard body.inputs.count >= 2, !body.outputs.isEmpty else { throw CompileError(node: node, "its body must take the iteration number and condition and give a condition") }
        var out: Value = body.outputs[0]
        while let p = out.producer, p.opType == "Identity", let i = p.input(0) { out = i }
        let alwaysTrue: Bool
        if out === body.inputs[1] {
            alwaysTrue = true
        } else if let t = out.initializer.flatMap(NDArray.init) {
            alwaysTrue = t.count == 1 && t.double(0) != 0
        } else if let p = out.producer, p.opType == "Constant", let t = p.tensor("value").flatMap(NDArray.init) {
            alwaysTrue = t.count == 1 && t.double(0) != 0
        } else {
            alwaysTrue = false
        }
        guard alwaysTrue else { return nil }
        let trips = try Checked.int(m.double(0), "the trip count")
        guard trips >= 1 else { throw CompileError(node: node, "a trip count of \(trips) (no iteration) is not supported") }
        return trips
    }

    /// Unrolls a Loop of a constant trip count: iteration i reads i as its iteration number and
    /// the previous iteration's carried values; the scan outputs stack along a new first axis.
    func unrollLoop(_ node: Node, body: Graph, trips: Int, opset: Int, graph g: Graph, taken: inout Set<String>, budget: Int, out: Expansion) throws {
        let carried = node.inputs.count - 2
        guard carried >= 0, body.inputs.count == 2 + carried, body.outputs.count >= 1 + carried, node.outputs.count == body.outputs.count - 1 else {
            throw CompileError(node: node, "its body takes \(body.inputs.count) inputs and gives \(body.outputs.count) outputs, but the node carries \(carried) values and has \(node.outputs.count) outputs")
        }
        let scans = body.outputs.count - 1 - carried
        let bodyNodes = Self.nodeCount(body)
        let (cost, overflow) = trips.multipliedReportingOverflow(by: bodyNodes + 2 * scans)
        guard !overflow, cost <= budget else {
            throw CompileError(node: node, "unrolling \(trips) iterations of a \(bodyNodes)-node body would add \(overflow ? "too many" : String(cost)) nodes, more than the \(budget) allowed")
        }
        let prefix = node.name.isEmpty ? "loop" : node.name
        let yes = g.addConstant(Tensor(dataType: .bool, dims: [], values: [UInt8(1)]), name: "\(prefix)_true", taken: &taken)
        guard node.inputs.dropFirst(2).allSatisfy({ $0 != nil }) else { throw CompileError(node: node, "a loop-carried input is omitted") }
        var state: [Value] = (0..<carried).map { node.input(2 + $0)! }
        var perStep: [[Value]] = Array(repeating: [], count: scans)
        for i in 0..<trips {
            let iter = g.addConstant(Tensor(dataType: .int64, dims: [], values: [Int64(i)]), name: "\(prefix)_iter\(i)", taken: &taken)
            var map: [ObjectIdentifier: Value] = [ObjectIdentifier(body.inputs[0]): iter, ObjectIdentifier(body.inputs[1]): yes]
            for k in 0..<carried { map[ObjectIdentifier(body.inputs[2 + k])] = state[k] }
            let values = try inline(body, map: map, into: g, prefix: "\(prefix)_i\(i)", taken: &taken, out: out)
            state = Array(values[1..<(1 + carried)])
            for k in 0..<scans { perStep[k].append(values[1 + carried + k]) }
        }
        let results = node.outputs
        node.removeAllOutputs()
        // A running number in every new name: Graph.uniqueName probes base_1, base_2, ... in
        // turn, which is quadratic over thousands of copies of one base name.
        var serial = 0
        func add(_ op: String, _ inputs: [Value], _ result: Value, _ attributes: [Attribute] = []) {
            serial += 1
            out.nodes.append(Node(opType: op, name: g.uniqueName("\(prefix)_\(op.lowercased())\(serial)", taken: &taken), inputs: inputs, outputs: [result], attributes: attributes))
        }
        for k in 0..<carried { if let r = results[k] { add("Identity", [state[k]], r) } }
        for k in 0..<scans {
            guard let r = results[carried + k] else { continue }
            Self.stack(perStep[k], axis: 0, into: r, opset: opset, graph: g, prefix: prefix, taken: &taken, out: out)
        }
    }

    /// The sequence length when every scan input's shape along its axis is known, else nil (to wait
    /// for shape inference); an error when they disagree or the scan is empty.
    static func scanSteps(_ node: Node, body: Graph) throws -> Int? {
        guard let m = node.int("num_scan_inputs"), m >= 1, m <= node.inputs.count, m <= body.inputs.count else {
            throw CompileError(node: node, "num_scan_inputs must be between 1 and the number of inputs (\(node.inputs.count)) and of body inputs (\(body.inputs.count))")
        }
        let n = node.inputs.count - m
        let axes = node.ints("scan_input_axes") ?? [Int](repeating: 0, count: m)
        guard axes.count == m else { throw CompileError(node: node, "scan_input_axes has \(axes.count) entries for \(m) scan inputs") }
        var length: Int?
        for j in 0..<m {
            guard let shape = node.input(n + j)?.tensorType?.staticShape else { return nil }
            let a = axes[j] < 0 ? axes[j] + shape.count : axes[j]
            guard a >= 0, a < shape.count else { throw CompileError(node: node, "scan_input_axes[\(j)] = \(axes[j]) is out of range for rank \(shape.count)") }
            if let l = length, l != shape[a] { throw CompileError(node: node, "its scan inputs have different lengths (\(l) and \(shape[a]))") }
            length = shape[a]
        }
        guard let length, length >= 1 else { throw CompileError(node: node, "an empty sequence (length 0) is not supported") }
        return length
    }

    /// Opset 8's Scan (input 0, sequence_lens, absent): row b of every state and scan input
    /// goes through an opset-9 Scan of its own (a copy of the body), unrolled at once; the rows'
    /// results stack back along axis 0.
    func unrollBatchedScan(_ node: Node, body: Graph, opset: Int, graph g: Graph, taken: inout Set<String>, budget: Int, out: Expansion) throws {
        guard let m = node.int("num_scan_inputs"), m >= 1, node.inputs.count >= 1 + m else {
            throw CompileError(node: node, "num_scan_inputs must be between 1 and the number of inputs after sequence_lens")
        }
        let n = node.inputs.count - 1 - m
        guard node.inputs.dropFirst().allSatisfy({ $0 != nil }) else { throw CompileError(node: node, "a state or scan input is omitted") }
        guard let first = node.input(1 + n)?.tensorType?.staticShape, first.count >= 2 else {
            throw CompileError(node: node, "its scan inputs need static shapes (batch, sequence, ...)")
        }
        let batch = first[0]
        guard batch >= 1 else { throw CompileError(node: node, "an empty batch is not supported") }
        let prefix = node.name.isEmpty ? "scan" : node.name
        // A running number in every new name: Graph.uniqueName probes base_1, base_2, ... in
        // turn, which is quadratic over thousands of copies of one base name.
        var serial = 0
        func add(_ op: String, _ inputs: [Value], _ result: Value, _ attributes: [Attribute] = []) {
            serial += 1
            out.nodes.append(Node(opType: op, name: g.uniqueName("\(prefix)_\(op.lowercased())\(serial)", taken: &taken), inputs: inputs, outputs: [result], attributes: attributes))
        }
        var perRow: [[Value]] = Array(repeating: [], count: node.outputs.count)
        var added = 0
        var free: [ObjectIdentifier: Value] = [:]
        for v in Self.freeValues(body) { free[ObjectIdentifier(v)] = v }
        for b in 0..<batch {
            let idx = g.addConstant(Tensor(dataType: .int64, dims: [], values: [Int64(b)]), name: "\(prefix)_row\(b)", taken: &taken)
            var rowInputs: [Value] = []
            for i in 1..<node.inputs.count {
                let v = Value(name: g.uniqueName("\(prefix)_b\(b)_in\(i)", taken: &taken))
                add("Gather", [node.input(i)!, idx], v, [Attribute("axis", .int(0))])
                rowInputs.append(v)
            }
            let outs = (0..<node.outputs.count).map { k in Value(name: g.uniqueName("\(prefix)_b\(b)_out\(k)", taken: &taken)) }
            var attributes = [Attribute("body", .graph(body.clone(outer: free))), Attribute("num_scan_inputs", .int(Int64(m)))]
            if let d = node.ints("directions") { attributes.append(Attribute("scan_input_directions", .ints(d.map(Int64.init)))) }
            let row = Node(opType: "Scan", name: g.uniqueName("\(prefix)_b\(b)", taken: &taken), inputs: rowInputs, outputs: outs, attributes: attributes)
            let before = out.nodes.count
            // Shapes of the row inputs, for the unrolling: the batch axis dropped.
            for (k, v) in rowInputs.enumerated() {
                if let t = node.input(1 + k)?.tensorType, let s = t.staticShape { v.type = .tensor(TensorType(t.elementType, fixed: Array(s.dropFirst()))) }
            }
            guard let steps = try Self.scanSteps(row, body: Self.subgraph(row, "body")!) else {
                throw CompileError(node: node, "the sequence length of its scan inputs is not known")
            }
            try unrollScan(row, body: Self.subgraph(row, "body")!, steps: steps, opset: opset, graph: g, taken: &taken, budget: budget - added, out: out)
            // The row's Scan never joins the graph: only its reads go.
            Graph.detachSubgraphReads(row)
            row.removeAllInputs()
            added += out.nodes.count - before + rowInputs.count
            for (k, o) in outs.enumerated() { perRow[k].append(o) }
        }
        let results = node.outputs
        node.removeAllOutputs()
        for (k, r) in results.enumerated() {
            guard let r else { continue }
            Self.stack(perRow[k], axis: 0, into: r, opset: opset, graph: g, prefix: prefix, taken: &taken, out: out)
            added += batch + 1
        }
    }

    /// Unrolls one Scan into `out`.
    func unrollScan(_ node: Node, body: Graph, steps: Int, opset: Int, graph g: Graph, taken: inout Set<String>, budget: Int, out: Expansion) throws {
        let m = node.int("num_scan_inputs")!
        let n = node.inputs.count - m
        guard body.inputs.count == n + m, body.outputs.count >= n, node.outputs.count == body.outputs.count else {
            throw CompileError(node: node, "its body takes \(body.inputs.count) inputs and gives \(body.outputs.count) outputs, but the node has \(n) states, \(m) scan inputs and \(node.outputs.count) outputs")
        }
        let k = body.outputs.count - n
        let inAxes = node.ints("scan_input_axes") ?? [Int](repeating: 0, count: m)
        let inDirs = node.ints("scan_input_directions") ?? [Int](repeating: 0, count: m)
        let outAxes = node.ints("scan_output_axes") ?? [Int](repeating: 0, count: k)
        let outDirs = node.ints("scan_output_directions") ?? [Int](repeating: 0, count: k)
        guard inDirs.count == m, outAxes.count == k, outDirs.count == k else {
            throw CompileError(node: node, "scan_input_directions, scan_output_axes and scan_output_directions must have one entry per scan input/output")
        }
        let bodyNodes = Self.nodeCount(body)
        let (cost, overflow) = steps.multipliedReportingOverflow(by: bodyNodes + m + 2 * k)
        guard !overflow, cost <= budget else {
            throw CompileError(node: node, "unrolling \(steps) steps of a \(bodyNodes)-node body would add \(overflow ? "too many" : String(cost)) nodes, more than the \(budget) allowed")
        }
        let prefix = node.name.isEmpty ? "scan" : node.name
        // A running number in every new name: Graph.uniqueName probes base_1, base_2, ... in
        // turn, which is quadratic over thousands of copies of one base name.
        var serial = 0
        func add(_ op: String, _ inputs: [Value], _ result: Value, _ attributes: [Attribute] = []) {
            serial += 1
            out.nodes.append(Node(opType: op, name: g.uniqueName("\(prefix)_\(op.lowercased())\(serial)", taken: &taken), inputs: inputs, outputs: [result], attributes: attributes))
        }
        func fresh(_ base: String) -> Value { serial += 1; return Value(name: g.uniqueName("\(base)\(serial)", taken: &taken)) }
        guard node.inputs.allSatisfy({ $0 != nil }) else { throw CompileError(node: node, "an input (state or scan input) is omitted") }
        var states: [Value] = (0..<n).map { node.input($0)! }
        var perStep: [[Value]] = Array(repeating: [], count: k)
        for t in 0..<steps {
            var map: [ObjectIdentifier: Value] = [:]
            for i in 0..<n { map[ObjectIdentifier(body.inputs[i])] = states[i] }
            for j in 0..<m {
                let x = node.input(n + j)!
                let index = inDirs[j] == 1 ? steps - 1 - t : t
                let rank = x.tensorType?.staticShape?.count ?? 0
                let axis = inAxes[j] < 0 ? inAxes[j] + rank : inAxes[j]
                let idx = g.addConstant(Tensor(dataType: .int64, dims: [], values: [Int64(index)]), name: "\(prefix)_step\(index)", taken: &taken)
                let slice = fresh("\(prefix)_t\(t)_\(body.inputs[n + j].name)")
                add("Gather", [x, idx], slice, [Attribute("axis", .int(Int64(axis)))])
                map[ObjectIdentifier(body.inputs[n + j])] = slice
            }
            let values = try inline(body, map: map, into: g, prefix: "\(prefix)_t\(t)", taken: &taken, out: out)
            states = Array(values[0..<n])
            for j in 0..<k { perStep[j].append(values[n + j]) }
        }
        let results = node.outputs
        node.removeAllOutputs()
        for i in 0..<n where results[i] != nil {
            out.nodes.append(Node(opType: "Identity", name: g.uniqueName("\(prefix)_final\(i)", taken: &taken), inputs: [states[i]], outputs: [results[i]]))
        }
        for j in 0..<k {
            guard let result = results[n + j] else { continue }
            let rank = (perStep[j][0].tensorType?.staticShape?.count ?? body.outputs[n + j].tensorType?.shape?.count).map { $0 + 1 }
            var axis = outAxes[j]
            if axis < 0 {
                guard let rank else { throw CompileError(node: node, "scan_output_axes[\(j)] = \(axis) is negative and the rank of the output is unknown") }
                axis += rank
            }
            let steps = outDirs[j] == 1 ? Array(perStep[j].reversed()) : perStep[j]
            Self.stack(steps, axis: axis, into: result, opset: opset, graph: g, prefix: prefix, taken: &taken, out: out)
        }
    }

    /// Copies `sub`'s nodes into `out`, reading `map`'s values for its inputs and the enclosing
    /// graphs' own values for what it reads from outside; its initializers join g's. Returns the
    /// values of sub's outputs.
    func inline(_ sub: Graph, map: [ObjectIdentifier: Value], into g: Graph, prefix: String,
                taken: inout Set<String>, out: Expansion) throws -> [Value] {
        guard sub.sparseInitializers.isEmpty else { throw CompileError(.graph, "subgraph '\(sub.name)' has sparse initializers, which inlining does not support") }
        var outer = map
        for v in Self.freeValues(sub) where outer[ObjectIdentifier(v)] == nil { outer[ObjectIdentifier(v)] = v }
        let copy = sub.clone(outer: outer)
        for v in copy.initializers {
            v.name = g.uniqueName("\(prefix)_\(v.name)", taken: &taken)
            v.initializer?.name = v.name
            g.addInitializer(v)
        }
        for c in copy.nodes {
            for case let o? in c.outputs { o.name = g.uniqueName("\(prefix)_\(o.name)", taken: &taken) }
            c.name = g.uniqueName("\(prefix)_\(c.name.isEmpty ? c.opType : c.name)", taken: &taken)
            out.nodes.append(c)
        }
        return copy.outputs
    }

    /// Values a graph (or a subgraph inside it) reads but does not define.
    static func freeValues(_ sub: Graph) -> [Value] {
        var defined = Set((sub.inputs + sub.initializers).map(ObjectIdentifier.init))
        for n in sub.nodes { for case let o? in n.outputs { defined.insert(ObjectIdentifier(o)) } }
        var seen = Set<ObjectIdentifier>()
        var free: [Value] = []
        func note(_ v: Value) {
            if !defined.contains(ObjectIdentifier(v)) && seen.insert(ObjectIdentifier(v)).inserted { free.append(v) }
        }
        for n in sub.nodes {
            for case let i? in n.inputs { note(i) }
            for s in n.subgraphs { freeValues(s).forEach(note) }
        }
        sub.outputs.forEach(note)
        return free
    }

    static func subgraph(_ node: Node, _ name: String) -> Graph? {
        if case .graph(let g)? = node.attribute(name) { return g }
        return nil
    }

    static func nodeCount(_ g: Graph) -> Int { g.nodes.reduce(0) { $0 + 1 + $1.subgraphs.reduce(0) { $0 + nodeCount($1) } } }
}
