import SofieIR

/// Evaluates nodes whose inputs are all constant with the reference semantics of OpRegistry,
/// turning their outputs into initializers; Shape and Size of statically shaped values fold
/// too. Large fills (ConstantOfShape) stay nodes: the emitter makes them when a Session starts.
public struct ConstantFolding: GraphPass {
    public let name = "fold-constants"
    public let summary = "evaluate constant subgraphs (shape computations, Constant nodes) at compile time"
    /// ConstantOfShape outputs up to this many elements are folded; larger ones stay fills.
    public var maxFillElements = 4096
    /// Other folded outputs may have at most this many elements.
    public var maxElements = 1 << 24

    public init() {}

    public func run(_ model: Model) throws -> Bool {
        let opset = model.onnxOpset ?? 21
        var changed = replaceEmptyValues(model.graph)
        changed = selectConcatPieces(model.graph, opset: opset) || changed
        var remove = Set<ObjectIdentifier>()
        for node in model.graph.nodes {
            guard let def = OpRegistry.definition(for: node), let evaluate = def.evaluate else { continue }
            let shapeOnly = node.opType == "Shape" || node.opType == "Size"
            if shapeOnly {
                guard node.input(0)?.tensorType?.staticShape != nil else { continue }
            } else {
                guard node.inputs.allSatisfy({ $0 == nil || $0!.initializer != nil }) else { continue }
            }
            guard node.outputs.allSatisfy({ $0 != nil }) else { continue }
            let c = OpContext(node: node, opset: opset)
            guard let types = try? def.infer(c) else { continue }
            let limit = node.opType == "ConstantOfShape" ? maxFillElements : maxElements
            guard types.allSatisfy({ t in t.staticShape.flatMap { try? Checked.product($0) }.map { $0 <= limit } ?? false }) else { continue }
            // Only what the evaluator holds exactly (float16, float8 and sub-byte types stay to run time).
            guard types.allSatisfy({ NDArray.canHold($0.elementType) }) else { continue }
            let args = shapeOnly ? [nil] : node.inputs.map { $0?.initializer.flatMap(NDArray.init) }
            if !shapeOnly && zip(args, node.inputs).contains(where: { $0 == nil && $1 != nil }) { continue }
            let results = try evaluate(c, args)
            // An evaluator that covers only part of the op (e.g. not its training-mode outputs) leaves the node.
            guard results.count >= node.outputs.count else { continue }
            for (out, value) in zip(node.outputs, results) {
                let old = out!
                let t = value.tensor(name: old.name)
                let v = Value(name: old.name, type: .tensor(t.type), initializer: t)
                model.graph.addInitializer(v)
                model.graph.replaceAllUses(of: old, with: v)
            }
            remove.insert(ObjectIdentifier(node))
            changed = true
        }
        model.graph.removeNodes(remove)
        return changed
    }
}

extension ConstantFolding {
    /// A tensor with no elements has one possible value whatever computes it: nodes read an
    /// empty constant instead (so that, e.g., an `axes` graph input of shape [0] is known to be
    /// empty at compile time). Graph inputs and outputs stay as they are.
    func replaceEmptyValues(_ g: Graph) -> Bool {
        var constants: [ObjectIdentifier: Value] = [:]
        var taken: Set<String>?
        var changed = false
        for node in g.nodes {
            for (i, v) in node.inputs.enumerated() {
                guard let v, v.initializer == nil, let t = v.tensorType, let shape = t.staticShape, shape.contains(0),
                      t.elementType != .string, t.elementType != .undefined else { continue }
                let empty: Value
                if let c = constants[ObjectIdentifier(v)] {
                    empty = c
                } else {
                    if taken == nil { taken = Set(g.definedValues.map(\.name)) }
                    let tensor = Tensor(dataType: t.elementType, dims: shape, data: .raw(ByteStorage(count: 0) { _ in }))
                    empty = g.addConstant(tensor, name: v.name + "_empty", taken: &taken!)
                    constants[ObjectIdentifier(v)] = empty
                }
                node.setInput(i, empty)
                changed = true
            }
        }
        return changed
    }
}

extension ConstantFolding {
    /// A Slice or Split of a 1-D Concat that takes whole pieces reads those pieces: a shape
    /// vector joined from constant and run-time extents, then cut apart again (as ONNX function
    /// bodies and exporters do), keeps its constant extents constant.
    func selectConcatPieces(_ g: Graph, opset: Int) -> Bool {
        var changed = false
        var taken: Set<String>?
        var inserted = 0
        for (index, node) in g.nodes.enumerated() where node.isStandard && (node.opType == "Slice" || node.opType == "Split") {
            guard let x = node.input(0), let concat = x.producer, concat.isStandard, concat.opType == "Concat",
                  concat.inputs.allSatisfy({ $0?.tensorType?.staticShape?.count == 1 }),
                  let total = x.tensorType?.staticShape, total.count == 1 else { continue }
            let pieces = concat.inputs.map { $0! }
            var bounds = [0]
            for p in pieces { bounds.append(bounds.last! + p.tensorType!.staticShape![0]) }
            guard bounds.last == total[0] else { continue }
            // The output ranges [start, end) the node takes, in order.
            var ranges: [(Int, Int)] = []
            let c = OpContext(node: node, opset: opset)
            if node.opType == "Slice" {
                guard node.outputs.count == 1, let p = try? ShapeOps.sliceParams(c), p.steps == [1] else { continue }
                ranges = [(p.starts[0], p.starts[0] + p.shape[0])]
            } else {
                guard (try? c.axis(c.int("axis", 0), rank: 1)) == 0, let shapes = try? ShapeOps.splitShapes(c) else { continue }
                var start = 0
                for s in shapes { ranges.append((start, start + s[0])); start += s[0] }
            }
            for (k, (start, end)) in ranges.enumerated() {
                guard let out = node.output(k), !out.uses.isEmpty, start < end, !g.outputs.contains(where: { $0 === out }),
                      let first = bounds.firstIndex(of: start), let last = bounds.firstIndex(of: end) else { continue }
                let selected = Array(pieces[first..<last])
                let value: Value
                if selected.count == 1 {
                    value = selected[0]
                } else {
                    if taken == nil { taken = Set(g.definedValues.map(\.name) + g.nodes.map(\.name)) }
                    value = Value(name: g.uniqueName(out.name + "_pieces", taken: &taken!), type: out.type)
                    g.insertNode(Node(opType: "Concat", name: g.uniqueName(node.name + "_pieces", taken: &taken!), inputs: selected, outputs: [value],
                                      attributes: [Attribute("axis", .int(0))]), at: index + inserted)
                    inserted += 1
                }
                g.replaceAllUses(of: out, with: value)
                changed = true
            }
        }
        return changed
    }
}
