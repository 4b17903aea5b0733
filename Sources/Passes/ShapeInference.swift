import SofieIR

/// Gives every node output a type and shape from the op's rules (OpRegistry).
/// Lenient by default: a node it cannot infer yet (an unknown op, a shape that depends on a
/// value not folded yet) keeps its outputs untyped. `strict` turns those into errors.
///
/// Symbolic dimensions (a dynamic batch) are carried through: the op rules work on numbers,
/// so each symbol stands in as a distinct large prime while a node is inferred, and an output
/// dimension equal to one comes back as that symbol (a multiple of one, e.g. after Flatten of
/// the batch, becomes unknown). The stand-ins never outlive the node being inferred, so
/// constant folding never sees them.
public struct ShapeInference: GraphPass {
    public let name = "infer-shapes"
    public let summary = "infer element types and shapes of every value (symbolic dimensions such as a dynamic batch carried through)"
    public var strict: Bool

    public init(strict: Bool = false) { self.strict = strict }

    /// Stand-ins for symbolic dimensions: primes no real dimension is expected to be a multiple of.
    static let standIns = [1_000_003, 1_000_033, 1_000_037, 1_000_039, 1_000_081, 1_000_099]

    public func run(_ model: Model) throws -> Bool {
        let opset = model.onnxOpset ?? 21
        var changed = false
        var symbols: [Dim: Int] = [:]
        var back: [Int: Dim] = [:]
        func standIn(_ d: Dim) -> Int? {
            if let v = d.value { return v }
            if let p = symbols[d] { return p }
            guard symbols.count < Self.standIns.count else { return nil }
            let p = Self.standIns[symbols.count]
            symbols[d] = p
            back[p] = d
            return p
        }
        for node in model.graph.nodes {
            guard let def = OpRegistry.definition(for: node) else {
                if strict { throw CompileError(node: node, "the op \(node.domain.isEmpty ? "" : node.domain + ".")\(node.opType) is not supported") }
                continue
            }
            // Symbolic input shapes take their stand-ins while this node is inferred.
            var saved: [(Value, ValueType?)] = []
            for case let v? in node.inputs where !saved.contains(where: { $0.0 === v }) {
                guard let t = v.tensorType, let shape = t.shape, t.staticShape == nil else { continue }
                let dims = shape.map(standIn)
                guard dims.allSatisfy({ $0 != nil }) else { continue }
                saved.append((v, v.type))
                v.tensorType = TensorType(t.elementType, fixed: dims.map { $0! })
            }
            let types: [TensorType]
            do {
                defer { for (v, t) in saved { v.type = t } }
                types = try def.infer(OpContext(node: node, opset: opset))
            } catch let e as ModelLimitError where saved.isEmpty || strict {
                // Numbers no model can mean (overflowing sizes, NaN scales) are errors even in a
                // lenient run: nothing later could make them valid. (With stand-ins for symbolic
                // dimensions in play, the overflow may be the stand-ins': left to the strict run.)
                throw CompileError(node: node, e.message)
            } catch let e as CompileError where e.runtimeInput.map({ DeclaredShapes.accepts(node, runtimeInput: $0) || (strict && Self.implyDeclaredShape(node, runtimeInput: $0, &changed)) }) ?? false {
                // A shape or axes input known only at run time, the output's shape declared in
                // the model: the declared shape stands (the emitted code checks the values),
                // unless no values could give it.
                if strict, let why = DeclaredShapes.inconsistency(node, opset: opset) { throw CompileError(node: node, why) }
                continue
            } catch {
                if strict { throw error }
                continue
            }
            for (i, t0) in types.enumerated() where i < node.outputs.count {
                guard let out = node.outputs[i] else { continue }
                var t = t0
                if !saved.isEmpty, let shape = t.shape {
                    t.shape = shape.map { d in
                        guard let v = d.value else { return d }
                        if let sym = back[v] { return sym }
                        return Self.standIns.contains(where: { v != 0 && v % $0 == 0 }) ? .unknown : d
                    }
                }
                // An unknown dimension never replaces one the value already had (declared in the file).
                if let old = out.tensorType?.shape, let new = t.shape, old.count == new.count {
                    t.shape = zip(new, old).map { n, o in n == .unknown ? o : n }
                }
                // Sizes past the budget are refused here, before any pass or the emitter allocates them.
                if let shape = t.shape {
                    do { try Limits.checkTensor(shape.compactMap(\.value), t.elementType, "output '\(out.name)'") } catch let e as ModelLimitError {
                        throw CompileError(node: node, e.message)
                    }
                }
                if out.tensorType != t { out.tensorType = t; changed = true }
            }
        }
        return changed
    }

    /// A node with a run-time shape input whose single output has no declared shape: when its
    /// consumers imply one (`DeclaredShapes.impliedByConsumers`: an ONNX function body's
    /// ReduceSum before a Sqrt, a window's Range before Cos), the output takes it as declared
    /// and the node compiles as `DeclaredShapes.accepts` allows (its values checked at run time).
    /// Only in the strict run, after folding: a shape input that folding makes constant later
    /// gets its real shape, never a guess, and the optimizations see the model as before.
    static func implyDeclaredShape(_ node: Node, runtimeInput: Int, _ changed: inout Bool) -> Bool {
        guard node.outputs.count == 1, let out = node.outputs[0], out.tensorType?.staticShape == nil,
              DeclaredShapes.inputs[node.opType]?.contains(runtimeInput) ?? false,
              let shape = DeclaredShapes.impliedByConsumers(out) else { return false }
        let dtype: DataType?
        switch node.opType {
        case "ConstantOfShape": dtype = node.tensor("value")?.dataType ?? .float
        case "NonZero": dtype = .int64
        default: dtype = node.input(0)?.tensorType?.elementType
        }
        guard let dtype, (try? Limits.checkTensor(shape, dtype, "output '\(out.name)'")) != nil else { return false }
        out.tensorType = TensorType(dtype, fixed: shape)
        changed = true
        return DeclaredShapes.accepts(node, runtimeInput: runtimeInput)
    }
}
