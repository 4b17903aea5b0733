import SofieIR

/// Computes float16, bfloat16 and float8 tensors in float32, rounding on store: every op that
/// reads or writes such a tensor (other than Cast and the ops that only move elements) gets a
/// Cast to float32 before it and a Cast back after it, so each op computes in float32 and its
/// result is rounded to the tensor's type once, as ONNX Runtime's CPU kernels do. A value read
/// by several ops is widened once. The back end's kernels are then all float32; the reduced
/// types only travel through Cast and the data-movement ops, which copy their bits.
/// The C++ backend runs it after the optimization passes (so fusions see the model's own
/// graph) and before memory planning.
public struct WidenReducedFloats: GraphPass {
    public let name = "widen-reduced-floats"
    public let summary = "compute float16/bfloat16/float8 in float32: Casts around each op that is not pure data movement, rounding on store"
    public init() {}


    /// Ops that read and write the reduced types themselves (conversions and quantization).
    public static let convertsItself: Set<String> = ["Cast", "CastLike", "BitCast", "QuantizeLinear", "DequantizeLinear"]

    public func run(_ model: Model) throws -> Bool {
        let g = model.graph
        func reduced(_ v: Value?) -> Bool { v?.tensorType?.elementType.isReducedFloat ?? false }
        guard g.definedValues.contains(where: reduced) else { return false }
        var taken = Set(g.definedValues.map(\.name) + g.nodes.map(\.name))
        var widened: [ObjectIdentifier: Value] = [:]
        var result: [Node] = []
        var changed = false

        func cast(_ x: Value, to dt: DataType, named base: String) -> (Node, Value) {
            let y = Value(name: g.uniqueName(base, taken: &taken), type: x.tensorType.map { .tensor(TensorType(dt, $0.shape)) })
            let node = Node(opType: "Cast", name: g.uniqueName(base + "_cast", taken: &taken), inputs: [x], outputs: [y],
                            attributes: [Attribute("to", .int(Int64(dt.rawValue)))])
            return (node, y)
        }

        for n in g.nodes {
            let isCast = n.isStandard && Self.convertsItself.contains(n.opType)
            // Ops that only move elements, or read only the shape, keep the reduced type (OpTraits).
            let moves = !OpRegistry.traits(of: n).isDisjoint(with: [.movesElements, .readsShapeOnly])
            guard !isCast, !moves, n.subgraphs.isEmpty, n.inputs.contains(where: reduced) || n.outputs.contains(where: reduced) else {
                result.append(n); continue
            }
            guard n.inputs.contains(where: reduced) else {
                let o = n.outputs.first(where: reduced)!!
                throw CompileError(node: n, "its output '\(o.name)' is \(o.tensorType!.elementType) made from attributes alone; the C++ backend computes \(o.tensorType!.elementType) in float32 and needs a \(o.tensorType!.elementType) input to round from (cast a float32 result instead)")
            }
            changed = true
            for (i, x) in n.inputs.enumerated() {
                guard let x, reduced(x) else { continue }
                if let w = widened[ObjectIdentifier(x)] { n.setInput(i, w); continue }
                // A constant is widened once, here (exactly: every float16/bfloat16/float8 value is a
                // float32), instead of by a Cast on every call.
                if let t = x.initializer, let values = ReducedFloatFormat.values(of: t) {
                    let w = g.addConstant(Tensor(dataType: .float, dims: t.dims, values: values.map { Float($0) }), name: x.name + "_f32", taken: &taken)
                    widened[ObjectIdentifier(x)] = w
                    n.setInput(i, w)
                    continue
                }
                let (c, w) = cast(x, to: .float, named: x.name + "_f32")
                result.append(c)
                widened[ObjectIdentifier(x)] = w
                n.setInput(i, w)
            }
            let outs = n.outputs
            n.removeAllOutputs()
            var narrowing: [Node] = []
            for o in outs {
                guard let o, let t = o.tensorType, t.elementType.isReducedFloat else { n.appendOutput(o); continue }
                let wide = Value(name: g.uniqueName(o.name + "_f32", taken: &taken), type: .tensor(TensorType(.float, t.shape)))
                n.appendOutput(wide)
                let back = Node(opType: "Cast", name: g.uniqueName(o.name + "_round", taken: &taken), inputs: [wide], outputs: [o],
                                attributes: [Attribute("to", .int(Int64(t.elementType.rawValue)))])
                narrowing.append(back)
            }
            result.append(n)
            result.append(contentsOf: narrowing)
        }
        g.setNodes(result)
        return changed
    }
}
