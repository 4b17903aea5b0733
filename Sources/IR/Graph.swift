/// A use of a value: input number `index` of `node`.
public struct Use {
    public unowned(unsafe) let node: Node
    public let index: Int
}

/// A named tensor in the graph. It knows the node that produces it (nil for graph
/// inputs and initializers) and every node input that reads it.
public final class Value: CustomStringConvertible {
    public var name: String
    public var type: ValueType?
    /// The constant contents when this value is an initializer.
    public var initializer: Tensor?
    public var docString: String = ""
    public var metadata: [(String, String)] = []
    public internal(set) weak var producer: Node?
    public internal(set) var uses: [Use] = []
    /// The extents at run time when some follow a run-time dimension (`Graph.runtimeDimensions`;
    /// the static shape is then the shape at the bounds); nil when the shape is the static one.
    public var runtimeShape: [DimExpr]?

    public init(name: String, type: ValueType? = nil, initializer: Tensor? = nil) {
        self.name = name
        self.type = type
        self.initializer = initializer
    }

    public var tensorType: TensorType? {
        get { type?.tensorType }
        set { type = newValue.map { .tensor($0) } }
    }

    public var isConstant: Bool { initializer != nil }
    public var description: String { "%\(name)" }
}

/// One operator application.
public final class Node: CustomStringConvertible {
    public var name: String
    public var opType: String
    public var domain: String
    public var overload: String = ""
    public var attributes: [Attribute]
    public var docString: String = ""
    public var metadata: [(String, String)] = []
    /// nil entries are omitted optional inputs (ONNX's empty name).
    public private(set) var inputs: [Value?] = []
    /// nil entries are omitted optional outputs.
    public private(set) var outputs: [Value?] = []
    public internal(set) weak var graph: Graph?

    public init(opType: String, domain: String = "", name: String = "", inputs: [Value?] = [], outputs: [Value?] = [],
                attributes: [Attribute] = []) {
        self.opType = opType
        self.domain = domain
        self.name = name
        self.attributes = attributes
        for v in inputs { appendInput(v) }
        for v in outputs { appendOutput(v) }
    }

    public var description: String {
        let ins = inputs.map { $0?.description ?? "_" }.joined(separator: ", ")
        let outs = outputs.map { $0?.description ?? "_" }.joined(separator: ", ")
        return "\(outs) = \(domain.isEmpty ? "" : domain + ".")\(opType)(\(ins))"
    }

    /// "name (OpType)" for messages; the op type alone when the node has no name.
    public var label: String { name.isEmpty ? opType : "'\(name)' (\(opType))" }

    /// Whether the node is an op of ONNX's default domain ("" or "ai.onnx").
    public var isStandard: Bool { domain.isEmpty || domain == "ai.onnx" }

    public func appendInput(_ value: Value?) {
        value?.uses.append(Use(node: self, index: inputs.count))
        inputs.append(value)
    }

    public func setInput(_ index: Int, _ value: Value?) {
        if let old = inputs[index] { old.uses.removeAll { $0.node === self && $0.index == index } }
        inputs[index] = value
        value?.uses.append(Use(node: self, index: index))
    }

    /// Drops every input (and the uses they record).
    public func removeAllInputs() {
        for (i, v) in inputs.enumerated() { v?.uses.removeAll { $0.node === self && $0.index == i } }
        inputs = []
    }

    public func appendOutput(_ value: Value?) {
        if let value {
            precondition(value.producer == nil || value.producer === self, "value \(value.name) already has a producer")
            value.producer = self
        }
        outputs.append(value)
    }

    /// Detaches the node's outputs (they get no producer).
    public func removeAllOutputs() {
        for v in outputs { if let v, v.producer === self { v.producer = nil } }
        outputs = []
    }

    /// Existing (non-omitted) input at `i`, or nil.
    public func input(_ i: Int) -> Value? { i < inputs.count ? inputs[i] : nil }
    public func output(_ i: Int) -> Value? { i < outputs.count ? outputs[i] : nil }

    /// Subgraphs held in attributes (If/Loop/Scan bodies).
    public var subgraphs: [Graph] {
        attributes.flatMap { a -> [Graph] in
            switch a.value {
            case .graph(let g): return [g]
            case .graphs(let gs): return gs
            default: return []
            }
        }
    }
}

/// A graph: ordered nodes, inputs, outputs and initializers. A subgraph may read values
/// of the graphs enclosing it (ONNX's outer scope).
public final class Graph {
    public var name: String
    public var docString: String = ""
    public var metadata: [(String, String)] = []
    public private(set) var nodes: [Node] = []
    public var inputs: [Value] = []
    public var outputs: [Value] = []
    /// Initializers in file order; each has `initializer` set.
    public var initializers: [Value] = []
    public var sparseInitializers: [(Value, SparseTensor)] = []
    /// Values whose type was declared in the file's value_info (intermediate values).
    public var declaredValueInfo: [Value] = []
    /// The arena layout the plan-memory pass chose for the C++ emitter (nil until planned).
    public var memoryPlan: MemoryPlan?
    /// Dimensions chosen at run time up to a bound (set by the compiler after the passes, with
    /// `Value.runtimeShape` on the values that follow them); empty when every shape is static.
    public var runtimeDimensions: [RuntimeDimension] = []
    /// Values of the lengths that depend on run-time values (`RuntimeDimension.lengthSymbol`),
    /// by symbol, for shape inference while the compiler prepares the model at sample sizes.
    public var valueLengths: [String: Int] = [:]
    /// Values of integer graph inputs the compiled code assumes (set by the compiler when a
    /// shape computation reads the input and only these values give the output shapes the
    /// model declares); the emitted code checks them when it is called.
    public var inputAssumptions: [InputAssumption] = []

    public init(name: String = "") { self.name = name }

    public func appendNode(_ node: Node) {
        node.graph = self
        nodes.append(node)
    }

    public func insertNode(_ node: Node, at index: Int) {
        node.graph = self
        nodes.insert(node, at: index)
    }

    /// Detaches the inputs of every node inside `node`'s subgraphs, recursively: a subgraph that
    /// reads a value of an enclosing graph is recorded among that value's uses, and those uses
    /// must go with the node (they refer to their nodes unowned).
    public static func detachSubgraphReads(_ node: Node) {
        for sub in node.subgraphs {
            for n in sub.nodes {
                detachSubgraphReads(n)
                n.removeAllInputs()
            }
        }
    }

    /// Removes a node after detaching its inputs (and its subgraphs'). Its outputs must no longer be used.
    public func removeNode(_ node: Node) {
        Self.detachSubgraphReads(node)
        node.removeAllInputs()
        node.removeAllOutputs()
        nodes.removeAll { $0 === node }
        node.graph = nil
    }

    /// Removes many nodes at once (linear time).
    public func removeNodes(_ remove: Set<ObjectIdentifier>) {
        guard !remove.isEmpty else { return }
        for n in nodes where remove.contains(ObjectIdentifier(n)) {
            Self.detachSubgraphReads(n)
            n.removeAllInputs()
            n.removeAllOutputs()
            n.graph = nil
        }
        nodes.removeAll { remove.contains(ObjectIdentifier($0)) }
    }

    public func setNodes(_ newNodes: [Node]) {
        for n in newNodes { n.graph = self }
        nodes = newNodes
    }

    /// Makes every reader of `old` (nodes, and graph outputs) read `new` instead.
    public func replaceAllUses(of old: Value, with new: Value) {
        for use in old.uses { use.node.setInput(use.index, new) }
        for i in outputs.indices where outputs[i] === old { outputs[i] = new }
    }

    public func addInitializer(_ value: Value) {
        precondition(value.initializer != nil)
        initializers.append(value)
    }

    /// Adds `tensor` as a new initializer under a fresh name starting from `base` and returns its value.
    @discardableResult
    public func addConstant(_ tensor: Tensor, name base: String, taken: inout Set<String>) -> Value {
        tensor.name = uniqueName(base, taken: &taken)
        let value = Value(name: tensor.name, type: .tensor(tensor.type), initializer: tensor)
        addInitializer(value)
        return value
    }

    /// Every value defined in this graph (inputs, initializers, node outputs).
    public var definedValues: [Value] {
        inputs + initializers.filter { v in !inputs.contains { $0 === v } } + nodes.flatMap { $0.outputs.compactMap { $0 } }
    }

    /// A name not used by any value or node of this graph, starting from `base`.
    public func uniqueName(_ base: String, taken: inout Set<String>) -> String {
        if taken.insert(base).inserted { return base }
        var i = 1
        while !taken.insert("\(base)_\(i)").inserted { i += 1 }
        return "\(base)_\(i)"
    }

    /// Counts nodes by op type, including nodes of subgraphs.
    public func opHistogram() -> [String: Int] {
        var counts: [String: Int] = [:]
        func visit(_ g: Graph) {
            for n in g.nodes {
                counts[n.isStandard ? n.opType : "\(n.domain).\(n.opType)", default: 0] += 1
                n.subgraphs.forEach(visit)
            }
        }
        visit(self)
        return counts
    }
}

public struct OpsetImport: Hashable, Sendable {
    public var domain: String
    public var version: Int
    public init(domain: String, version: Int) {
        self.domain = domain
        self.version = version
    }
}

/// An ONNX model: a graph plus the facts of the file around it.
public final class Model {
    public var irVersion: Int = 10
    public var opsetImports: [OpsetImport] = []
    public var producerName: String = ""
    public var producerVersion: String = ""
    public var domain: String = ""
    public var modelVersion: Int = 0
    public var docString: String = ""
    public var metadata: [(String, String)] = []
    public var graph: Graph

    public init(graph: Graph) { self.graph = graph }

    /// The version of the default ONNX opset ("" or "ai.onnx"), or nil if not imported.
    public var onnxOpset: Int? {
        opsetImports.first { $0.domain == "" || $0.domain == "ai.onnx" }?.version
    }
}

/// Values a compiled graph assumes for some elements of an integer graph input (a shape vector
/// such as CenterCropPad's `shape` or AffineGrid's `size` in their function bodies): the
/// compiler specialized the graph on them, and the generated code refuses other values.
public struct InputAssumption {
    /// The graph input (it stays an input of the generated function).
    public let input: Value
    /// Element index (row-major) -> the value assumed there; elements not listed are read at run time.
    public let values: [Int: Int64]
    /// The declared output whose shape implied the values (for the error message).
    public let because: String

    public init(input: Value, values: [Int: Int64], because: String) {
        self.input = input
        self.values = values
        self.because = because
    }
}
