import SofieIR

/// Specializes a graph on the values of small integer graph inputs that only shape
/// computations read, when the output shapes the model declares imply those values.
///
/// ONNX function bodies (CenterCropPad, AffineGrid expanded into their definitions) compute
/// pads, slice bounds and fill shapes from a run-time `shape` or `size` input; the padded or
/// gathered intermediate tensors have no declared shape, so no static shape exists for them
/// unless the input's values are known. The declared output shapes fix them: the compiler
/// finds which elements of the input the output extents follow, takes the values the declared
/// extents give, compiles the graph with those elements constant, and the generated code
/// checks them when it is called (`Graph.inputAssumptions`; `std::invalid_argument` otherwise).
/// Elements no output extent follows (AffineGrid's channel count) stay run-time values.
///
/// How the elements are found: a probe copy of the model gets distinct primes as the input's
/// values, shape inference and folding run on it, and an output extent equal to one of the
/// primes names the element it follows. The probe is only a guess; what makes the result
/// right is that the specialized graph must infer exactly the declared output shapes
/// (`Compiler.prepare` checks, else the original error stands) and that the run-time check
/// refuses any other values. Values the check refuses could in rare graphs give the declared
/// shapes too (an extent max(20, s) is 20 for every s <= 20): those calls get a clear error,
/// never a wrong result.
public enum SpecializeShapeInputs {
    /// Distinct primes for the probe: large enough not to be a model's own extent, small
    /// enough that a few of them multiplied stay inside the tensor size budget.
    static let probeValues: [Int64] = [131, 127, 113, 109, 107, 103, 101, 97, 89, 83, 79, 73, 71, 67, 61, 59]

    /// The integer graph inputs a specialization may fix: int32/int64 vectors (or scalars) of
    /// at most 16 elements in all.
    static func candidates(_ g: Graph) -> [Value] {
        var total = 0
        return g.inputs.filter { v in
            guard v.initializer == nil, let t = v.tensorType, t.elementType == .int64 || t.elementType == .int32,
                  let s = t.staticShape, s.count <= 1, case let n = s.first ?? 1, n >= 1, total + n <= probeValues.count else { return false }
            total += n
            return true
        }
    }

    /// The assumptions that would make `model`'s shapes static (nil when the probe finds none).
    /// `simplify` runs shape inference and folding to a fixed point (leniently) on a copy.
    public static func solve(_ model: Model, simplify: (Model) throws -> Void) -> [InputAssumption]? {
        let inputs = candidates(model.graph)
        guard !inputs.isEmpty else { return nil }
        let declared = model.graph.outputs.map { $0.tensorType?.staticShape }
        guard declared.contains(where: { $0 != nil }) else { return nil }
        // The probe: every candidate element a distinct prime.
        let probe = model.clone()
        probe.graph.valueLengths = model.graph.valueLengths
        var owner: [Int64: (input: Int, element: Int)] = [:]
        var next = 0
        for (k, v) in inputs.enumerated() {
            guard let i = model.graph.inputs.firstIndex(where: { $0 === v }) else { return nil }
            let copy = probe.graph.inputs[i], t = v.tensorType!, n = t.staticShape!.first ?? 1
            let values = Array(probeValues[next..<(next + n)])
            for (e, p) in values.enumerated() { owner[p] = (k, e) }
            next += n
            let tensor = integers(values, like: t, dims: t.staticShape!)
            tensor.name = copy.name
            let constant = Value(name: copy.name, type: .tensor(tensor.type), initializer: tensor)
            probe.graph.addInitializer(constant)
            probe.graph.replaceAllUses(of: copy, with: constant)  // (the input stays, unread)
        }
        // Outputs forget their declared shapes in the probe: the inferred ones are wanted.
        for o in probe.graph.outputs { if let t = o.tensorType { o.tensorType = TensorType(t.elementType, nil) } }
        do {
            for _ in 0..<8 {
                do { try simplify(probe) } catch { if trustReshapeTargets(probe.graph) { continue } else { throw error } }
                if !trustReshapeTargets(probe.graph) { break }
            }
        } catch { return nil }
        var found: [Int: [Int: Int64]] = [:]
        var because: [Int: String] = [:]
        for (o, want) in zip(probe.graph.outputs, declared) {
            guard let want, let got = o.tensorType?.shape, got.count == want.count else { continue }
            for (d, w) in zip(got, want) {
                guard let g = d.value, let (k, e) = owner[Int64(g)] else { continue }
                if let old = found[k]?[e], old != Int64(w) { return nil }
                found[k, default: [:]][e] = Int64(w)
                because[k] = because[k] ?? o.name
            }
        }
        guard !found.isEmpty else { return nil }
        return found.keys.sorted().map { InputAssumption(input: inputs[$0], values: found[$0]!, because: because[$0]!) }
    }

    /// A tensor of `values` in the element type of `t` (int64 or int32).
    static func integers(_ values: [Int64], like t: TensorType, dims: [Int]) -> Tensor {
        t.elementType == .int64 ? Tensor(dataType: .int64, dims: dims, values: values)
            : Tensor(dataType: .int32, dims: dims, values: values.map { Int32(truncatingIfNeeded: $0) })
    }

    /// In the probe, a Reshape to a constant shape of positive extents becomes a fill of that
    /// shape (only shapes matter there): a prime may stand where the model has its own extent
    /// (AffineGrid's batch, which theta's fixes), so the element counts need not agree, and
    /// the extents downstream still show which elements they follow. Returns whether it
    /// rewrote any.
    static func trustReshapeTargets(_ g: Graph) -> Bool {
        var remove = Set<ObjectIdentifier>()
        var taken = Set(g.definedValues.map(\.name))
        for (i, n) in g.nodes.enumerated() where n.isStandard && n.opType == "Reshape" {
            guard let out = n.output(0), let t = n.input(0)?.tensorType, let size = t.elementType.byteSize, size > 0,
                  let target = n.input(1), let shape = target.initializer, shape.dataType == .int64,
                  let dims = shape.values(as: Int64.self), dims.allSatisfy({ $0 > 0 }) else { continue }
            let zero = Tensor(dataType: t.elementType, dims: [1], data: .raw(ByteStorage(count: size) { _ in }))
            let fill = Node(opType: "ConstantOfShape", name: n.name, inputs: [target], outputs: [], attributes: [Attribute("value", .tensor(zero))])
            let value = Value(name: g.uniqueName(out.name + "_fill", taken: &taken))
            fill.appendOutput(value)
            g.insertNode(fill, at: i + remove.count)
            g.replaceAllUses(of: out, with: value)
            remove.insert(ObjectIdentifier(n))
        }
        g.removeNodes(remove)
        return !remove.isEmpty
    }

    /// Rewrites `model` to read the assumed elements as constants: the input's uses read a
    /// constant (every element assumed) or a Concat of constants and one-element Slices of the
    /// input (the others); the assumptions are recorded on the graph for the emitted check.
    public static func apply(_ assumptions: [InputAssumption], to model: Model) {
        let g = model.graph
        var taken = Set(g.definedValues.map(\.name) + g.nodes.map(\.name))
        var front: [Node] = []
        for a in assumptions {
            let v = a.input, t = v.tensorType!, shape = t.staticShape!, n = shape.first ?? 1
            func constant(_ values: [Int64], dims: [Int], base: String) -> Value {
                g.addConstant(integers(values, like: t, dims: dims), name: base, taken: &taken)
            }
            if a.values.count == n {
                let c = constant((0..<n).map { a.values[$0]! }, dims: shape, base: v.name + "_assumed")
                g.replaceAllUses(of: v, with: c)
            } else {
                let joined = Value(name: g.uniqueName(v.name + "_assumed", taken: &taken))
                g.replaceAllUses(of: v, with: joined)
                var pieces: [Value] = []
                for e in 0..<n {
                    if let w = a.values[e] {
                        pieces.append(constant([w], dims: [1], base: "\(v.name)_\(e)"))
                    } else {
                        let out = Value(name: g.uniqueName("\(v.name)_\(e)", taken: &taken))
                        let bounds = [constant([Int64(e)], dims: [1], base: "\(v.name)_\(e)_start"), constant([Int64(e + 1)], dims: [1], base: "\(v.name)_\(e)_end")]
                        front.append(Node(opType: "Slice", name: g.uniqueName("\(v.name)_\(e)_slice", taken: &taken), inputs: [v] + bounds, outputs: [out]))
                        pieces.append(out)
                    }
                }
                front.append(Node(opType: "Concat", name: g.uniqueName(v.name + "_assumed", taken: &taken), inputs: pieces, outputs: [joined],
                                  attributes: [Attribute("axis", .int(0))]))
            }
            g.inputAssumptions.append(a)
        }
        for (i, node) in front.enumerated() { g.insertNode(node, at: i) }
    }
}
