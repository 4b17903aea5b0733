/// Deep copies (onnx-ir's `model.clone()`): new models, graphs, nodes, values and tensor
/// objects with the same contents, so that passes run on the copy leave the original as it was.
/// Tensor bytes are immutable (`TensorData`) and shared between a tensor and its copy.
extension Model {
    public func clone() -> Model {
        let m = Model(graph: graph.clone(outer: [:]))
        m.irVersion = irVersion
        m.opsetImports = opsetImports
        m.producerName = producerName
        m.producerVersion = producerVersion
        m.domain = domain
        m.modelVersion = modelVersion
        m.docString = docString
        m.metadata = metadata
        return m
    }
}

extension Tensor {
    /// A new tensor object with this one's name, type, shape and (shared, immutable) data.
    public func copy() -> Tensor {
        let t = Tensor(name: name, dataType: dataType, dims: dims, data: data)
        t.docString = docString
        t.metadata = metadata
        return t
    }
}

extension Graph {
    /// A copy of this graph; `outer` maps the values of enclosing graphs (already copied) that
    /// a subgraph reads to their copies.
    public func clone(outer: [ObjectIdentifier: Value]) -> Graph {
        var map = outer
        func value(_ v: Value) -> Value {
            if let c = map[ObjectIdentifier(v)] { return c }
            let c = Value(name: v.name, type: v.type, initializer: v.initializer?.copy())
            c.docString = v.docString
            c.metadata = v.metadata
            map[ObjectIdentifier(v)] = c
            return c
        }
        func attribute(_ a: Attribute) -> Attribute {
            var c = a
            switch a.value {
            case .tensor(let t): c.value = .tensor(t.copy())
            case .tensors(let ts): c.value = .tensors(ts.map { $0.copy() })
            case .graph(let g): c.value = .graph(g.clone(outer: map))
            case .graphs(let gs): c.value = .graphs(gs.map { $0.clone(outer: map) })
            default: break
            }
            return c
        }
        let g = Graph(name: name)
        g.docString = docString
        g.metadata = metadata
        g.inputs = inputs.map(value)
        g.initializers = initializers.map(value)
        g.sparseInitializers = sparseInitializers.map { (value($0.0), SparseTensor(values: $0.1.values.copy(), indices: $0.1.indices.copy(), dims: $0.1.dims)) }
        for n in nodes {
            let c = Node(opType: n.opType, domain: n.domain, name: n.name, inputs: n.inputs.map { $0.map(value) },
                         outputs: n.outputs.map { $0.map(value) }, attributes: n.attributes.map(attribute))
            c.overload = n.overload
            c.docString = n.docString
            c.metadata = n.metadata
            g.appendNode(c)
        }
        g.outputs = outputs.map(value)
        g.declaredValueInfo = declaredValueInfo.map(value)
        g.memoryPlan = memoryPlan
        return g
    }
}
