import Foundation
import SofieIR

/// One Keras layer as the lowering sees it.
struct KerasLayer {
    let className: String
    let name: String
    let config: [String: Any]
    /// Full layer dictionary (nested models carry their own config in it).
    let raw: [String: Any]
    /// The nested-model scope the layer lives in.
    let scope: [String]
    /// Index among the layers of the same class in its model (for files without weight names).
    let classIndex: Int

    var label: String { "layer '\(name)' (\(className))" }

    func string(_ k: String) -> String? { config[k] as? String }
    /// An integer setting; nil when absent or not an integer that fits (a config is untrusted:
    /// `intValue` of 1e308 would trap).
    func int(_ k: String) -> Int? { (config[k] as? NSNumber).flatMap(KerasLayer.exactInt) }

    static func exactInt(_ n: NSNumber) -> Int? {
        let d = n.doubleValue
        guard d.isFinite, abs(d) < 1e15 else { return nil }
        return Int(exactly: d)
    }
    func double(_ k: String) -> Double? { (config[k] as? NSNumber)?.doubleValue }
    func bool(_ k: String) -> Bool? { (config[k] as? NSNumber)?.boolValue }
    /// An int or a list of ints (kernel_size: 3 or [3, 3]).
    /// With `count` > 0 a list must have exactly that many entries; every entry must be an integer.
    func ints(_ k: String, count: Int) throws -> [Int]? {
        guard let raw = config[k], !(raw is NSNull) else { return nil }
        if let v = raw as? [Any] {
            let values = v.compactMap { ($0 as? NSNumber).flatMap(KerasLayer.exactInt) }
            guard values.count == v.count, count == 0 || values.count == count else {
                throw ModelLimitError("its setting '\(k)' should be \(count > 0 ? "\(count) integers" : "a list of integers"), the file has \(v)")
            }
            return values
        }
        guard let n = raw as? NSNumber, let v = KerasLayer.exactInt(n) else {
            throw ModelLimitError("its setting '\(k)' should be an integer or a list of integers, the file has \(raw)")
        }
        return [Int](repeating: v, count: count)
    }
    /// An axis or a list of axes (axis: -1 or [3]), each an exact integer; nil when absent.
    func axes(_ k: String) throws -> [Int]? {
        guard let raw = config[k], !(raw is NSNull) else { return nil }
        if raw is [Any] { return try ints(k, count: 0) }
        guard let n = raw as? NSNumber, let v = KerasLayer.exactInt(n) else {
            throw ModelLimitError("its setting '\(k)' should be an integer or a list of integers, the file has \(raw)")
        }
        return [v]
    }
}

/// Builds the IR graph for a Keras model: a table from layer class to lowering function.
/// Keras tensors stay channels_last (as Keras computes them); layers that ONNX defines
/// channels-first (Conv, pooling, BatchNormalization) are wrapped in explicit Transposes,
/// which the passes remove later.
final class KerasLowering {
    let file: String
    let weights: KerasWeightSource
    let kerasVersion: String
    let graph = Graph(name: "")
    var taken = Set<String>()
    var opset = 18

    typealias Lower = (KerasLowering, KerasLayer, [Value]) throws -> [Value]

    init(file: String, weights: KerasWeightSource, kerasVersion: String) {
        self.file = file
        self.weights = weights
        self.kerasVersion = kerasVersion
    }

    var isKeras2: Bool { kerasVersion.hasPrefix("2.") }

    func fail(_ layer: KerasLayer, _ message: String) -> KerasError {
        KerasError(file: file, "\(layer.label): \(message)")
    }

    // MARK: graph building

    /// A fresh value or node name (the graph's own naming, `base`, `base_1`, ...).
    func name(_ base: String) -> String { graph.uniqueName(base.isEmpty ? "t" : base, taken: &taken) }

    @discardableResult
    func node(_ op: String, _ inputs: [Value?], name: String, attributes: [Attribute] = [], outputs: Int = 1) -> [Value] {
        let outs = (0..<outputs).map { Value(name: self.name(outputs == 1 ? name : "\(name)_\($0)")) }
        graph.appendNode(Node(opType: op, name: self.name("n_" + name), inputs: inputs, outputs: outs, attributes: attributes))
        return outs
    }

    func op(_ op: String, _ inputs: [Value?], _ name: String, _ attributes: [Attribute] = []) -> Value {
        node(op, inputs, name: name, attributes: attributes)[0]
    }

    func constant(_ values: [Float], _ shape: [Int], _ name: String) -> Value {
        graph.addConstant(Tensor(dataType: .float, dims: shape, values: values), name: name.isEmpty ? "t" : name, taken: &taken)
    }

    func ints(_ values: [Int], _ name: String) -> Value {
        graph.addConstant(Tensor(dataType: .int64, dims: [values.count], values: values.map { Int64($0) }), name: name.isEmpty ? "t" : name, taken: &taken)
    }

    func transpose(_ x: Value, _ perm: [Int], _ name: String) -> Value {
        op("Transpose", [x], name, [Attribute("perm", .ints(perm.map { Int64($0) }))])
    }

    /// NHWC -> NCHW permutation for a tensor of `rank`, and its inverse.
    /// (Ranks below 3 have no spatial axes: the identity, so that a malformed model reaches a
    /// clear error instead of an inverted range.)
    static func toChannelsFirst(_ rank: Int) -> [Int] { rank < 3 ? Array(0..<max(rank, 0)) : [0, rank - 1] + Array(1..<(rank - 1)) }
    static func toChannelsLast(_ rank: Int) -> [Int] { rank < 3 ? Array(0..<max(rank, 0)) : [0] + Array(2..<rank) + [1] }

    /// Rank of a Keras tensor: from the IR type when known (inputs carry it).
    func rank(_ v: Value, _ layer: KerasLayer) throws -> Int {
        if let r = ranks[ObjectIdentifier(v)] { return r }
        throw fail(layer, "the rank of its input is unknown")
    }
    var ranks: [ObjectIdentifier: Int] = [:]
    /// The tensors the layer call being lowered receives by keyword.
    var callKeywords: [String: Value] = [:]
    var callOptions: [String: Any] = [:]
    var callShapes: [[Int?]?] = []
    /// Shapes (batch 1) of lowered values, for `inferredShape`.
    var shapeMemo: [ObjectIdentifier: [Int]] = [:]
    /// Keras masks ([batch, time] booleans) of lowered values (see KerasMasking.swift).
    var masks: [ObjectIdentifier: Value] = [:]
    var elementTypes: [ObjectIdentifier: DataType] = [:]

    func weights(_ layer: KerasLayer) throws -> [KerasWeight] {
        do { return try weights.weights(scope: layer.scope, layer: layer.name, className: layer.className, index: layer.classIndex) }
        catch let e as HDF5Error { throw fail(layer, "cannot read its weights: \(e.message)") }
    }

    func expectWeights(_ layer: KerasLayer, _ w: [KerasWeight], _ shapes: [[Int]?]) throws {
        guard w.count == shapes.count else {
            throw fail(layer, "expected \(shapes.count) weight arrays, the file has \(w.count)")
        }
        for (a, s) in zip(w, shapes) {
            if let s, a.shape != s { throw fail(layer, "weight '\(a.path)' has shape \(a.shape), expected \(s)") }
        }
    }

    // MARK: models

    func lower(modelConfig: [String: Any]) throws -> Model {
        let className = modelConfig["class_name"] as? String ?? ""
        guard let config = modelConfig["config"] as? [String: Any] else {
            throw KerasError(file: file, "the model config has no 'config'")
        }
        graph.name = config["name"] as? String ?? "keras_model"
        try refuseUnsupportedLayers(config)
        let outputs = try lowerModel(className: className, config: config, inputs: nil, scope: [])
        keepKerasInterface(config: config, outputs: outputs)
        for v in outputs {
            // Shapes are inferred later (passes); the file needs a type: float, the known rank,
            // the symbolic batch first.
            if v.type == nil, let r = ranks[ObjectIdentifier(v)] {
                v.tensorType = TensorType(.float, r == 0 ? [] : [.symbolic("batch")] + [Dim](repeating: .unknown, count: r - 1))
            }
            graph.outputs.append(v)
        }
        let model = Model(graph: graph)
        model.irVersion = 8
        model.opsetImports = [OpsetImport(domain: "", version: opset)]
        model.producerName = "swift-sofie (Keras \(kerasVersion.isEmpty ? "?" : kerasVersion))"
        model.producerVersion = "0.1.0"
        return model
    }

    /// Lists every layer the table cannot lower, nested models included, in one error, so that
    /// a user learns the whole gap at once. One such layer is left to `apply`, whose error
    /// names it with its registered name.
    func refuseUnsupportedLayers(_ config: [String: Any]) throws {
        var missing: [(cls: String, names: [String])] = []
        func scan(_ config: [String: Any], depth: Int) {
            guard depth < 64, let layers = config["layers"] as? [[String: Any]] else { return }
            for d in layers {
                let cls = d["class_name"] as? String ?? "?"
                let cfg = d["config"] as? [String: Any] ?? [:]
                let name = cfg["name"] as? String ?? d["name"] as? String ?? cls
                if KerasOps.isOperation(d) {
                    if KerasOps.table[cls] == nil {
                        let label = "keras.ops " + cls
                        if let i = missing.firstIndex(where: { $0.cls == label }) { missing[i].names.append(name) } else { missing.append((label, [name])) }
                    }
                    continue
                }
                if TFOps.isTFOp(cls) {
                    let f = TFOps.function(cfg)
                    if TFOps.table[f] == nil {
                        let label = "TensorFlow function tf." + f
                        if let i = missing.firstIndex(where: { $0.cls == label }) { missing[i].names.append(name) } else { missing.append((label, [name])) }
                    }
                    continue
                }
                if ["Functional", "Sequential", "Model"].contains(cls) { scan(cfg, depth: depth + 1); continue }
                if cls == "InputLayer" || KerasLayers.table[cls] != nil { continue }
                if let i = missing.firstIndex(where: { $0.cls == cls }) { missing[i].names.append(name) } else { missing.append((cls, [name])) }
            }
        }
        scan(config, depth: 0)
        let count = missing.reduce(0) { $0 + $1.names.count }
        guard count > 1 else { return }
        let list = missing.map { m in
            let shown = m.names.prefix(5).map { "'\($0)'" }.joined(separator: ", ") + (m.names.count > 5 ? ", ..." : "")
            return "\(m.cls) (\(m.names.count): \(shown))"
        }.joined(separator: "; ")
        throw KerasError(file: file, "\(count) layers of \(missing.count) class\(missing.count == 1 ? "" : "es") are not supported: \(list); supported classes: \(KerasLayers.table.keys.sorted().joined(separator: ", "))")
    }

    /// The model's graph inputs, by the name of their InputLayer (the top-level model only).
    var topInputs: [String: Value] = [:]

    /// Keras' own interface: graph inputs in the order of `input_layers` (the order of
    /// `model(inputs)` and `model.predict([...])`, which need not be the order of the layer
    /// list), and outputs named after their output layers (`out_a`, not `out_a_biasadd`;
    /// a layer's second output tensor `name_1`). A value already holding the wanted name is
    /// renamed; an output that is also an input or another output keeps its name.
    func keepKerasInterface(config: [String: Any], outputs: [Value]) {
        if let il = config["input_layers"] as? [Any] {
            let order = refs(il).map(\.0)
            let rank = { (v: Value) -> Int in
                order.firstIndex { self.topInputs[$0] === v } ?? order.count
            }
            graph.inputs = graph.inputs.enumerated().sorted { (rank($0.element), $0.offset) < (rank($1.element), $1.offset) }.map(\.element)
        }
        // A Sequential model's output is its last layer's.
        let lastLayer = ((config["layers"] as? [[String: Any]])?.last?["config"] as? [String: Any])?["name"] as? String
        let refsOut = (config["output_layers"] as? [Any]).map(refs) ?? lastLayer.map { [($0, 0, 0)] } ?? []
        guard refsOut.count == outputs.count else { return }
        for (i, (r, v)) in zip(refsOut, outputs).enumerated() {
            let wanted = r.2 > 0 ? "\(r.0)_\(r.2)" : r.0
            guard v.name != wanted, v.initializer == nil, !graph.inputs.contains(where: { $0 === v }),
                  !outputs.enumerated().contains(where: { $0.offset != i && $0.element === v }),
                  !refsOut.enumerated().contains(where: { $0.offset != i && ($0.element.2 > 0 ? "\($0.element.0)_\($0.element.2)" : $0.element.0) == wanted })
            else { continue }
            for other in graph.definedValues where other.name == wanted && other !== v {
                other.name = name(wanted + "_inner")
            }
            taken.insert(wanted)
            v.name = wanted
        }
    }

    /// Lowers a Sequential or Functional model; with `inputs` (a nested model) its input layers
    /// are bound to them, otherwise they become graph inputs.
    func lowerModel(className: String, config: [String: Any], inputs: [Value]?, scope: [String]) throws -> [Value] {
        guard let layers = config["layers"] as? [[String: Any]] else {
            throw KerasError(file: file, "model '\(config["name"] ?? "?")' (\(className)) has no layer list")
        }
        var classCount: [String: Int] = [:]
        func makeLayer(_ d: [String: Any]) -> KerasLayer {
            let cls = d["class_name"] as? String ?? "?"
            let cfg = d["config"] as? [String: Any] ?? [:]
            let name = cfg["name"] as? String ?? d["name"] as? String ?? cls
            let idx = classCount[cls, default: 0]
            classCount[cls] = idx + 1
            return KerasLayer(className: cls, name: name, config: cfg, raw: d, scope: scope, classIndex: idx)
        }
        if className == "Sequential" {
            var current: Value?
            var inputIndex = 0
            for (i, d) in layers.enumerated() {
                let layer = makeLayer(d)
                if layer.className == "InputLayer" {
                    if let inputs, inputIndex >= inputs.count {
                        throw fail(layer, "the nested model has more input layers than the \(inputs.count) tensor(s) it is called with")
                    }
                    current = try input(layer, bound: inputs?[inputIndex])
                    inputIndex += 1
                    continue
                }
                if current == nil {
                    // No InputLayer: the first layer carries the input shape.
                    let shape = (layer.config["batch_input_shape"] as? [Any]) ?? ((d["build_config"] as? [String: Any])?["input_shape"] as? [Any])
                    guard let shape else { throw fail(layer, "the Sequential model declares no input shape") }
                    let synthetic = KerasLayer(className: "InputLayer", name: (config["name"] as? String ?? "model") + "_input",
                                               config: ["batch_shape": shape], raw: [:], scope: scope, classIndex: 0)
                    current = try input(synthetic, bound: inputs?.first)
                }
                _ = i
                let outs = try apply(layer, [current!])
                guard outs.count == 1 else { throw fail(layer, "a layer in a Sequential model must have one output") }
                current = outs[0]
            }
            guard let current else { throw KerasError(file: file, "the Sequential model has no layers") }
            return [current]
        }
        // Functional (also "Model"): layers in topological order with their call nodes.
        var produced: [String: [[Value]]] = [:]
        var inputLayers: [String] = []
        if let il = config["input_layers"] as? [Any] { inputLayers = refs(il).map(\.0) }
        var bound = 0
        for d in layers {
            let layer = makeLayer(d)
            if layer.className == "InputLayer" {
                let position = inputLayers.firstIndex(of: layer.name) ?? bound
                if let inputs, position >= inputs.count {
                    throw fail(layer, "the nested model has more input layers than the \(inputs.count) tensor(s) it is called with")
                }
                let v = try input(layer, bound: inputs.map { $0[position] })
                if inputs == nil && scope.isEmpty { topInputs[layer.name] = v }
                produced[layer.name] = [[v]]
                bound += 1
                continue
            }
            func value(_ r: (String, Int, Int)) throws -> Value {
                // Keras 2 numbers a nested model's calls globally (its construction is node 0):
                // a single recorded call is the one meant.
                if let node = produced[r.0], node.count == 1, r.1 >= 1, r.2 >= 0, r.2 < node[0].count { return node[0][r.2] }
                guard let node = produced[r.0], r.1 >= 0, r.2 >= 0, r.1 < node.count, r.2 < node[r.1].count else {
                    throw fail(layer, "its input '\(r.0)'[\(r.1)][\(r.2)] is not produced by an earlier layer")
                }
                return node[r.1][r.2]
            }
            var results: [[Value]] = []
            if KerasOps.isOperation(d) {
                // keras.ops calls recorded in a Functional graph (x + 3.0, ops.relu6(x), ...):
                // their arguments mix tensors and numbers.
                for call in d["inbound_nodes"] as? [Any] ?? [] {
                    let call = call as? [String: Any] ?? [:]
                    let args = try KerasOps.arguments(call["args"] as? [Any] ?? [], value)
                    let kwargs = try (call["kwargs"] as? [String: Any] ?? [:]).mapValues { try KerasOps.argument($0, value) }
                    results.append([try KerasOps.lower(self, layer, args, kwargs)])
                }
                produced[layer.name] = results
                continue
            }
            if TFOps.isTFOp(layer.className) {
                produced[layer.name] = try TFOps.lowerCalls(self, layer, d, value)
                continue
            }
            let calls = try inboundCalls(d, layer)
            for call in calls {
                callKeywords = try call.keywords.mapValues(value)
                callOptions = call.options
                callShapes = call.shapes
                defer { callKeywords = [:]; callOptions = [:]; callShapes = [] }
                results.append(try apply(layer, try call.tensors.map(value)))
            }
            produced[layer.name] = results
        }
        guard let ol = config["output_layers"] as? [Any] else { throw KerasError(file: file, "the model has no output_layers") }
        return try refs(ol).map { r in
            guard let node = produced[r.0], r.1 >= 0, r.2 >= 0, r.1 < node.count, r.2 < node[r.1].count else {
                throw KerasError(file: file, "model output '\(r.0)' is not produced by any layer")
            }
            return node[r.1][r.2]
        }
    }

    /// input_layers/output_layers: ["name", 0, 0] or [["name", 0, 0], ...].
    func refs(_ list: [Any]) -> [(String, Int, Int)] {
        if let name = list.first as? String {
            // Node and tensor indices; anything but a non-negative integer becomes -1, which
            // every lookup refuses with the layer's name.
            func index(_ k: Int) -> Int {
                guard list.count > k else { return 0 }
                return (list[k] as? NSNumber).flatMap(KerasLayer.exactInt) ?? -1
            }
            return [(name, index(1), index(2))]
        }
        return list.compactMap { $0 as? [Any] }.flatMap { refs($0) }
    }

    /// One call of a layer: the tensors passed positionally, and those passed by keyword
    /// (MultiHeadAttention's `value`, `key`, `attention_mask`).
    struct Call {
        var tensors: [(String, Int, Int)] = []
        var keywords: [String: (String, Int, Int)] = [:]
        /// Keyword arguments that are not tensors (use_causal_mask, training, ...).
        var options: [String: Any] = [:]
        /// The shapes Keras 3 records for the positional tensors (empty for Keras 2).
        var shapes: [[Int?]?] = []
    }

    /// The tensors each call of a layer reads, in both Keras 3 and Keras 2 formats.
    func inboundCalls(_ d: [String: Any], _ layer: KerasLayer) throws -> [Call] {
        guard let nodes = d["inbound_nodes"] as? [Any] else { return [] }
        var calls: [Call] = []
        for n in nodes {
            if let call = n as? [String: Any] {
                // Keras 3: {"args": [...], "kwargs": {...}}; tensors are __keras_tensor__ dicts.
                func history(_ x: Any) -> [Any]? {
                    guard let t = x as? [String: Any], t["class_name"] as? String == "__keras_tensor__",
                          let c = t["config"] as? [String: Any] else { return nil }
                    return c["keras_history"] as? [Any]
                }
                var c = Call()
                func collect(_ x: Any) {
                    if let h = history(x) {
                        c.tensors += refs(h)
                        // Keras 3 records each tensor's shape (None for unknown dimensions).
                        let shape = ((x as? [String: Any])?["config"] as? [String: Any])?["shape"] as? [Any]
                        c.shapes.append(shape?.map { ($0 as? NSNumber).flatMap(KerasLayer.exactInt) })
                    } else if let a = x as? [Any] {
                        a.forEach(collect)
                    }
                }
                collect(call["args"] ?? [])
                for (k, v) in call["kwargs"] as? [String: Any] ?? [:] {
                    if let h = history(v), let r = refs(h).first { c.keywords[k] = r } else { c.options[k] = v }
                }
                calls.append(c)
            } else if let list = n as? [Any] {
                // Keras 2: [[name, node, tensor, kwargs], ...]; a tensor passed by keyword is
                // [name, node, tensor] inside the kwargs of the first entry.
                var c = Call()
                func ref(_ e: [Any]) -> (String, Int, Int)? {
                    guard let name = e.first as? String else { return nil }
                    func index(_ k: Int) -> Int { e.count > k ? ((e[k] as? NSNumber).flatMap(KerasLayer.exactInt) ?? -1) : 0 }
                    return (name, index(1), index(2))
                }
                for e in list.compactMap({ $0 as? [Any] }) {
                    guard let r = ref(e) else { continue }
                    c.tensors.append(r)
                    if e.count > 3, let kw = e[3] as? [String: Any] {
                        for (k, v) in kw {
                            if let a = v as? [Any], a.count >= 3, a.first is String, let r = ref(a) { c.keywords[k] = r } else { c.options[k] = v }
                        }
                    }
                }
                calls.append(c)
            }
        }
        return calls
    }

    func input(_ layer: KerasLayer, bound: Value?) throws -> Value {
        let shapeAny = (layer.config["batch_shape"] as? [Any]) ?? (layer.config["batch_input_shape"] as? [Any])
        guard let shapeAny else { throw fail(layer, "has no batch_shape") }
        if let bound { return bound }
        let dims: [Dim] = try shapeAny.enumerated().map { i, d in
            if let n = d as? NSNumber {
                guard let k = KerasLayer.exactInt(n), k >= 0 else { throw fail(layer, "its batch_shape has the dimension \(n), not a non-negative integer") }
                return .fixed(k)
            }
            return i == 0 ? .symbolic("batch") : .symbolic("\(layer.name)_dim\(i)")
        }
        let dtype = (layer.config["dtype"] as? String).flatMap(KerasLowering.dataType) ?? .float
        let v = Value(name: name(layer.name), type: .tensor(TensorType(dtype, dims)))
        graph.inputs.append(v)
        ranks[ObjectIdentifier(v)] = dims.count
        return v
    }

    static func dataType(_ s: String) -> DataType? {
        switch s {
        case "float32": return .float
        case "float64": return .double
        case "int32": return .int32
        case "int64": return .int64
        case "bool": return .bool
        default: return nil
        }
    }

    /// Lowers one call of a layer; nested models recurse.
    func apply(_ layer: KerasLayer, _ inputs: [Value]) throws -> [Value] {
        if ["Functional", "Sequential", "Model"].contains(layer.className) {
            let outs = try lowerModel(className: layer.className, config: layer.config, inputs: inputs, scope: layer.scope + [layer.name])
            return outs
        }
        guard let lower = KerasLayers.table[layer.className] else {
            let registered = layer.raw["registered_name"] as? String
            let detail = registered.map { $0 != layer.className ? " (registered as '\($0)')" : "" } ?? ""
            throw fail(layer, "the layer class \(layer.className)\(detail) is not supported; supported classes: \(KerasLayers.table.keys.sorted().joined(separator: ", "))")
        }
        // A layer called without inputs (a malformed inbound_nodes entry) would leave the
        // lowering functions nothing to read.
        guard !inputs.isEmpty else { throw fail(layer, "is called with no input tensor (its inbound_nodes are empty or malformed)") }
        try checkMasks(layer, inputs)
        do {
            let outputs = try lower(self, layer, inputs)
            propagateMasks(layer, inputs, outputs)
            return outputs
        } catch let e as ModelLimitError { throw fail(layer, e.message) }
    }

    /// Records the rank of a lowered value (shapes are inferred later; lowering only needs ranks).
    @discardableResult
    func ranked(_ v: Value, _ r: Int) -> Value {
        ranks[ObjectIdentifier(v)] = r
        return v
    }
}
