import CSofieONNX
import Foundation
import SofieIR

/// Reads `.onnx` files into the IR through the protobuf-c code generated from
/// `Schemas/onnx.proto`. Model files are untrusted: every size, offset, dimension and
/// external-data path is checked before it is used.
public enum ONNXReader {
    /// protobuf's own limit on one message; larger weights must live in external data.
    static let maxMessageSize = Int(Int32.max)
    /// Subgraphs and function calls nest at most this deep (guards against recursion bombs).
    static let maxNesting = 64
    /// Nodes per graph, counted after local functions are inlined (ResNet-152 has ~500, large
    /// transformers tens of thousands).
    nonisolated(unsafe) public static var maxNodes = 1 << 18
    /// Protobuf messages nest at most this deep in the file (a subgraph level takes three:
    /// graph, node, attribute; a nested type two), checked before protobuf-c recurses into them.
    static let maxWireDepth = 3 * maxNesting + 2 * 32 + 16

    public static func read(path: String) throws -> Model {
        let mapped: MappedFile
        do { mapped = try MappedFile(path: path) } catch {
            throw ONNXReadError(file: path, "cannot open the file: \(describe(error))")
        }
        guard mapped.count <= maxMessageSize else {
            throw ONNXReadError(file: path, "the file is \(mapped.count) bytes, more than protobuf's 2 GiB message limit; store large weights as external data")
        }
        let base = URL(fileURLWithPath: path).deletingLastPathComponent().path
        return try read(bytes: mapped.bytes, file: path, baseDirectory: base)
    }

    /// Reads a serialized ModelProto. `baseDirectory` is where external data files are looked up.
    public static func read(bytes: UnsafeRawBufferPointer, file: String, baseDirectory: String?) throws -> Model {
        guard bytes.count > 0 else { throw ONNXReadError(file: file, "the file is empty, not an ONNX model") }
        // protobuf-c decodes nested messages recursively: bound the nesting before it sees them.
        do { try WireScan.check(bytes, maxDepth: maxWireDepth) } catch let e as WireScan.Failure {
            throw ONNXReadError(file: file, "not a valid ONNX model: \(e.message)")
        }
        guard let proto = onnx__model_proto__unpack(nil, bytes.count, bytes.baseAddress!.assumingMemoryBound(to: UInt8.self)) else {
            throw ONNXReadError(file: file, "not a valid ONNX model: the protobuf data is truncated or corrupt")
        }
        let owner = UnpackedModel(proto)
        let reader = Reader(file: file, baseDirectory: baseDirectory, owner: owner)
        return try reader.model(proto)
    }

    /// Reads one serialized TensorProto (the `input_0.pb` files of ONNX's test data).
    public static func readTensor(path: String) throws -> Tensor {
        let mapped: MappedFile
        do { mapped = try MappedFile(path: path) } catch {
            throw ONNXReadError(file: path, "cannot open the file: \(describe(error))")
        }
        let bytes = mapped.bytes
        guard let p = onnx__tensor_proto__unpack(nil, bytes.count, bytes.baseAddress?.assumingMemoryBound(to: UInt8.self) ?? UnsafePointer(bitPattern: 1)!) else {
            throw ONNXReadError(file: path, "not a valid TensorProto: the protobuf data is truncated or corrupt")
        }
        let owner = UnpackedTensor(p)
        let reader = Reader(file: path, baseDirectory: URL(fileURLWithPath: path).deletingLastPathComponent().path, owner: owner)
        return try reader.tensor(p)
    }

    static func describe(_ error: Error) -> String {
        if let e = error as? POSIXError { return String(cString: strerror(e.code.rawValue)) }
        return "\(error)"
    }
}

/// Owns the decoded protobuf message; tensors reference its bytes until they are gone.
final class UnpackedModel {
    let pointer: UnsafeMutablePointer<Onnx__ModelProto>
    init(_ p: UnsafeMutablePointer<Onnx__ModelProto>) { pointer = p }
    deinit { onnx__model_proto__free_unpacked(pointer, nil) }
}

final class UnpackedTensor {
    let pointer: UnsafeMutablePointer<Onnx__TensorProto>
    init(_ p: UnsafeMutablePointer<Onnx__TensorProto>) { pointer = p }
    deinit { onnx__tensor_proto__free_unpacked(pointer, nil) }
}

@inline(__always) func cstr(_ p: UnsafeMutablePointer<CChar>?) -> String {
    guard let p else { return "" }
    return String(cString: p)
}

@inline(__always) func array<T>(_ p: UnsafeMutablePointer<T>?, _ n: Int) -> UnsafeBufferPointer<T> {
    UnsafeBufferPointer(start: n > 0 ? p : nil, count: p == nil ? 0 : n)
}

func bytes(_ b: ProtobufCBinaryData) -> [UInt8] {
    guard b.len > 0, let d = b.data else { return [] }
    return Array(UnsafeBufferPointer(start: d, count: b.len))
}

func entries(_ p: UnsafeMutablePointer<UnsafeMutablePointer<Onnx__StringStringEntryProto>?>?, _ n: Int) -> [(String, String)] {
    array(p, n).compactMap { e in e.map { (cstr($0.pointee.key), cstr($0.pointee.value)) } }
}

/// A node as read, before its names are bound to values (function calls already expanded).
private struct PendingNode {
    var name: String
    var opType: String
    var domain: String
    var overload: String
    var inputs: [String]
    var outputs: [String]
    var attributes: [Attribute]
    var docString: String
    var metadata: [(String, String)]
}

/// Name lookup through a graph and the graphs that enclose it.
private class Scope {
    var values: [String: Value] = [:]
    let parent: Scope?
    init(parent: Scope?) { self.parent = parent }
    func lookup(_ name: String) -> Value? { values[name] ?? parent?.lookup(name) }
}

private struct FunctionKey: Hashable {
    let domain: String
    let name: String
    let overload: String
}

/// Names already used in a graph (shared while function bodies are expanded into it).
private final class NameSet {
    var names = Set<String>()
    /// The next suffix to try per base name, so that renaming stays linear when one function
    /// is called thousands of times.
    var nextSuffix: [String: Int] = [:]

    /// `base` if it is free, else `base_k` for the first free k; the result is taken.
    func fresh(_ base: String) -> String {
        var candidate = base
        if names.contains(candidate) {
            var k = nextSuffix[base] ?? 1
            repeat { candidate = "\(base)_\(k)"; k += 1 } while names.contains(candidate)
            nextSuffix[base] = k
        }
        names.insert(candidate)
        return candidate
    }
}
private final class RenameMap {
    var map: [String: String]
    init(_ map: [String: String]) { self.map = map }
}

private final class Reader {
    let file: String
    let baseDirectory: String?
    let owner: AnyObject
    var functions: [FunctionKey: UnsafeMutablePointer<Onnx__FunctionProto>] = [:]
    var externalFiles: [String: MappedFile] = [:]
    var extraOpsets: [String: Int] = [:]
    var inlinedCalls = 0
    var functionSizes: [FunctionKey: Int] = [:]
    /// Placeholder values standing for outer-scope names, per subgraph, until `bindOuter`.
    var outerPlaceholders: [ObjectIdentifier: [Value]] = [:]

    init(file: String, baseDirectory: String?, owner: AnyObject) {
        self.file = file
        self.baseDirectory = baseDirectory
        self.owner = owner
    }

    func fail(_ message: String) -> ONNXReadError { ONNXReadError(file: file, message) }

    func model(_ p: UnsafeMutablePointer<Onnx__ModelProto>) throws -> Model {
        let m = p.pointee
        guard let g = m.graph else {
            throw fail("not an ONNX model: it has no graph (is this really an .onnx file?)")
        }
        guard (m.has_ir_version != 0) else { throw fail("not an ONNX model: it has no ir_version") }
        guard m.ir_version >= 1, m.ir_version <= 64 else { throw fail("unsupported ir_version \(m.ir_version)") }
        for f in array(m.functions, m.n_functions) {
            guard let f else { continue }
            functions[FunctionKey(domain: cstr(f.pointee.domain), name: cstr(f.pointee.name), overload: cstr(f.pointee.overload))] = f
        }
        let graph = try self.graph(g, parent: nil, depth: 0)
        let model = Model(graph: graph)
        model.irVersion = Int(m.ir_version)
        for o in array(m.opset_import, m.n_opset_import) {
            guard let o else { continue }
            model.opsetImports.append(OpsetImport(domain: cstr(o.pointee.domain), version: Int(o.pointee.version)))
        }
        // Function bodies may use domains the model itself does not import.
        for (domain, version) in extraOpsets.sorted(by: { $0.key < $1.key })
        where !model.opsetImports.contains(where: { $0.domain == domain || ($0.domain == "ai.onnx" && domain.isEmpty) }) {
            model.opsetImports.append(OpsetImport(domain: domain, version: version))
        }
        model.producerName = cstr(m.producer_name)
        model.producerVersion = cstr(m.producer_version)
        model.domain = cstr(m.domain)
        model.modelVersion = (m.has_model_version != 0) ? Int(m.model_version) : 0
        model.docString = cstr(m.doc_string)
        model.metadata = entries(m.metadata_props, m.n_metadata_props)
        return model
    }

    // MARK: graphs

    func graph(_ p: UnsafeMutablePointer<Onnx__GraphProto>, parent: Scope?, depth: Int) throws -> Graph {
        guard depth <= ONNXReader.maxNesting else { throw fail("subgraphs nest deeper than \(ONNXReader.maxNesting) levels") }
        let g = p.pointee
        let graph = Graph(name: cstr(g.name))
        graph.docString = cstr(g.doc_string)
        graph.metadata = entries(g.metadata_props, g.n_metadata_props)
        let scope = Scope(parent: parent)
        let where_ = parent == nil ? "" : " of subgraph '\(graph.name)'"

        func define(_ v: Value, _ what: String) throws {
            guard !v.name.isEmpty else { throw fail("\(what)\(where_) has an empty name") }
            if scope.values[v.name] != nil { throw fail("the name '\(v.name)' is defined twice in graph '\(graph.name)' (\(what))") }
            scope.values[v.name] = v
        }

        for vi in array(g.input, g.n_input) {
            guard let vi else { continue }
            let v = Value(name: cstr(vi.pointee.name), type: try valueType(vi.pointee.type, what: "input '\(cstr(vi.pointee.name))'"))
            v.docString = cstr(vi.pointee.doc_string)
            v.metadata = entries(vi.pointee.metadata_props, vi.pointee.n_metadata_props)
            try define(v, "graph input")
            graph.inputs.append(v)
        }
        for t in array(g.initializer, g.n_initializer) {
            guard let t else { continue }
            let tensor = try self.tensor(t)
            if let existing = scope.values[tensor.name], graph.inputs.contains(where: { $0 === existing }) {
                // ir_version < 4 style: an initializer that is also listed as an input (a default value).
                existing.initializer = tensor
                graph.initializers.append(existing)
            } else {
                let v = Value(name: tensor.name, type: .tensor(tensor.type), initializer: tensor)
                try define(v, "initializer")
                graph.initializers.append(v)
            }
        }
        for s in array(g.sparse_initializer, g.n_sparse_initializer) {
            guard let s else { continue }
            let sparse = try sparseTensor(s)
            let v = Value(name: sparse.values.name, type: .sparseTensor(TensorType(sparse.values.dataType, fixed: sparse.dims)))
            try define(v, "sparse initializer")
            graph.sparseInitializers.append((v, sparse))
        }

        // What inlining will produce is counted first (sizes of functions memoized), so a few KB
        // of functions calling each other twice per level are refused before any work.
        var expanded = 0
        for n in array(g.node, g.n_node) {
            guard let n else { continue }
            expanded = expanded.addingReportingOverflow(try inlinedSize(n, depth: depth)).partialValue
            guard expanded >= 0, expanded <= ONNXReader.maxNodes else {
                throw fail("the graph has more than \(ONNXReader.maxNodes) nodes once its local functions are inlined")
            }
        }

        // Expand function calls, then create every node output before wiring inputs, so that
        // a file whose nodes are out of order still reads (we sort it below).
        var pending: [PendingNode] = []
        let taken = NameSet()
        for n in array(g.node, g.n_node) {
            guard let n else { continue }
            for o in array(n.pointee.output, n.pointee.n_output) { taken.names.insert(cstr(o)) }
        }
        for n in array(g.node, g.n_node) {
            guard let n else { continue }
            try expand(n, rename: { $0 }, callerAttributes: nil, into: &pending, taken: taken, depth: depth)
        }
        var nodeOutputs: [[Value?]] = []
        for pn in pending {
            var outs: [Value?] = []
            for name in pn.outputs {
                if name.isEmpty { outs.append(nil); continue }
                let v = Value(name: name)
                try define(v, "output of node \(pn.name.isEmpty ? pn.opType : "'\(pn.name)' (\(pn.opType))")")
                outs.append(v)
            }
            nodeOutputs.append(outs)
        }
        for vi in array(g.value_info, g.n_value_info) {
            guard let vi else { continue }
            let name = cstr(vi.pointee.name)
            guard let v = scope.values[name] else { continue }  // value_info of an unknown name is harmless
            v.type = try valueType(vi.pointee.type, what: "value_info '\(name)'")
            v.docString = cstr(vi.pointee.doc_string)
            graph.declaredValueInfo.append(v)
        }
        var nodes: [Node] = []
        for (pn, outs) in zip(pending, nodeOutputs) {
            let label = pn.name.isEmpty ? pn.opType : "'\(pn.name)' (\(pn.opType))"
            var ins: [Value?] = []
            for name in pn.inputs {
                if name.isEmpty { ins.append(nil); continue }
                guard let v = scope.lookup(name) else {
                    throw fail("node \(label) reads '\(name)', which no node, input or initializer defines")
                }
                ins.append(v)
            }
            let node = Node(opType: pn.opType, domain: pn.domain, name: pn.name, inputs: ins, outputs: outs, attributes: [])
            node.overload = pn.overload
            node.docString = pn.docString
            node.metadata = pn.metadata
            node.attributes = pn.attributes
            nodes.append(node)
        }
        // Subgraph attributes were read with only their own names; bind their outer-scope reads now.
        for node in nodes {
            for sub in node.subgraphs { try bindOuter(sub, scope: scope) }
        }
        graph.setNodes(try topologicallySorted(nodes, graph: graph))

        for vi in array(g.output, g.n_output) {
            guard let vi else { continue }
            let name = cstr(vi.pointee.name)
            guard let v = scope.lookup(name) else { throw fail("graph output '\(name)'\(where_) is never defined") }
            if let t = try valueType(vi.pointee.type, what: "output '\(name)'") { v.type = t }
            if v.docString.isEmpty { v.docString = cstr(vi.pointee.doc_string) }
            graph.outputs.append(v)
        }
        return graph
    }

    /// Subgraphs reference names of enclosing graphs; while reading them those names are
    /// held by placeholder values, which are replaced here by the real outer values.
    func bindOuter(_ graph: Graph, scope: Scope) throws {
        for ph in outerPlaceholders.removeValue(forKey: ObjectIdentifier(graph)) ?? [] {
            guard let real = scope.lookup(ph.name) else {
                throw fail("subgraph '\(graph.name)' reads '\(ph.name)', which is not defined in it or in any enclosing graph")
            }
            for use in ph.uses { use.node.setInput(use.index, real) }
            if let i = graph.outputs.firstIndex(where: { $0 === ph }) { graph.outputs[i] = real }
        }
    }

    func topologicallySorted(_ nodes: [Node], graph: Graph) throws -> [Node] {
        var produced = Set<ObjectIdentifier>()
        var inOrder = true
        let local = Set(nodes.flatMap { $0.outputs.compactMap { $0.map(ObjectIdentifier.init) } })
        for n in nodes {
            for i in n.inputs { if let i, local.contains(ObjectIdentifier(i)), !produced.contains(ObjectIdentifier(i)) { inOrder = false } }
            for o in n.outputs { if let o { produced.insert(ObjectIdentifier(o)) } }
            if !inOrder { break }
        }
        if inOrder { return nodes }
        // Kahn's algorithm, stable in file order.
        var indexOf: [ObjectIdentifier: Int] = [:]
        for (i, n) in nodes.enumerated() { indexOf[ObjectIdentifier(n)] = i }
        var missing = [Int](repeating: 0, count: nodes.count)
        var consumers = [[Int]](repeating: [], count: nodes.count)
        for (i, n) in nodes.enumerated() {
            for input in n.inputs {
                guard let input, let p = input.producer, let pi = indexOf[ObjectIdentifier(p)] else { continue }
                missing[i] += 1
                consumers[pi].append(i)
            }
        }
        var ready = (0..<nodes.count).filter { missing[$0] == 0 }
        var result: [Node] = []
        var heap = ready
        ready = []
        heap.sort(by: >)
        while let i = heap.popLast() {
            result.append(nodes[i])
            var added = false
            for c in consumers[i] {
                missing[c] -= 1
                if missing[c] == 0 { heap.append(c); added = true }
            }
            if added { heap.sort(by: >) }
        }
        if result.count != nodes.count {
            let stuck = nodes.indices.first { missing[$0] > 0 }.map { nodes[$0].label } ?? "?"
            throw fail("the graph '\(graph.name)' has a cycle (node \(stuck) depends on its own output)")
        }
        return result
    }

    // MARK: nodes and function inlining

    /// Nodes that inlining `p` makes (1 for a node that calls no local function), capped just
    /// above `maxNodes`; sizes of functions are memoized, so this is linear in the file.
    func inlinedSize(_ p: UnsafeMutablePointer<Onnx__NodeProto>, depth: Int) throws -> Int {
        let n = p.pointee
        let key = FunctionKey(domain: cstr(n.domain), name: cstr(n.op_type), overload: cstr(n.overload))
        guard let fn = functions[key] else { return 1 }
        if let known = functionSizes[key] { return known }
        guard depth < ONNXReader.maxNesting else {
            throw fail("function calls nest deeper than \(ONNXReader.maxNesting) levels (function '\(key.name)')")
        }
        var total = 0
        for body in array(fn.pointee.node, fn.pointee.n_node) {
            guard let body else { continue }
            total = min(total + (try inlinedSize(body, depth: depth + 1)), ONNXReader.maxNodes + 1)
        }
        functionSizes[key] = total
        return total
    }

    func expand(_ p: UnsafeMutablePointer<Onnx__NodeProto>, rename: (String) -> String,
                callerAttributes: [String: Attribute]?, into pending: inout [PendingNode],
                taken: NameSet, depth: Int) throws {
        let n = p.pointee
        let opType = cstr(n.op_type)
        let domain = cstr(n.domain)
        let name = cstr(n.name)
        let label = name.isEmpty ? opType : "'\(name)' (\(opType))"
        guard !opType.isEmpty else { throw fail("node \(name.isEmpty ? "#\(pending.count)" : "'\(name)'") has no op_type") }
        var attributes: [Attribute] = []
        for a in array(n.attribute, n.n_attribute) {
            guard let a else { continue }
            var attr = try attribute(a, node: label, depth: depth)
            if case .reference(let ref, _) = attr.value, let caller = callerAttributes {
                guard let given = caller[ref] else { continue }  // not given by the caller: the attribute is left out
                attr.value = given.value
            }
            attributes.append(attr)
        }
        let inputs = array(n.input, n.n_input).map { s -> String in let x = cstr(s); return x.isEmpty ? "" : rename(x) }
        let outputs = array(n.output, n.n_output).map { s -> String in let x = cstr(s); return x.isEmpty ? "" : rename(x) }

        let key = FunctionKey(domain: domain, name: opType, overload: cstr(n.overload))
        guard let fn = functions[key] else {
            // Functions that call each other several times per level multiply: a few KB can
            // describe millions of nodes. Bound what inlining may produce.
            guard pending.count < ONNXReader.maxNodes else {
                throw fail("the graph has more than \(ONNXReader.maxNodes) nodes\(depth > 0 ? " once its local functions are inlined (node \(label))" : "")")
            }
            pending.append(PendingNode(name: name, opType: opType, domain: domain, overload: cstr(n.overload),
                                       inputs: inputs, outputs: outputs, attributes: attributes,
                                       docString: cstr(n.doc_string),
                                       metadata: entries(n.metadata_props, n.n_metadata_props)))
            return
        }
        // Inline the local function: formal parameters map to the call's values, every other
        // name of the body gets a fresh, unique name.
        guard depth < ONNXReader.maxNesting else { throw fail("function calls nest deeper than \(ONNXReader.maxNesting) levels at node \(label)") }
        let f = fn.pointee
        var map: [String: String] = [:]
        let formalIn = array(f.input, f.n_input).map { cstr($0) }
        let formalOut = array(f.output, f.n_output).map { cstr($0) }
        guard inputs.count <= formalIn.count, outputs.count <= formalOut.count else {
            throw fail("node \(label) calls function '\(opType)' with \(inputs.count) inputs and \(outputs.count) outputs; it takes \(formalIn.count) and \(formalOut.count)")
        }
        for (i, formal) in formalIn.enumerated() { map[formal] = i < inputs.count ? inputs[i] : "" }
        for (i, formal) in formalOut.enumerated() where i < outputs.count { map[formal] = outputs[i] }
        var attrs: [String: Attribute] = [:]
        for a in array(f.attribute_proto, f.n_attribute_proto) {
            guard let a else { continue }
            let d = try attribute(a, node: "function '\(opType)'", depth: depth)
            attrs[d.name] = d
        }
        for a in attributes { attrs[a.name] = a }
        inlinedCalls += 1
        let prefix = (name.isEmpty ? opType : name) + "/"
        for o in array(f.opset_import, f.n_opset_import) {
            guard let o else { continue }
            let d = cstr(o.pointee.domain)
            extraOpsets[d] = max(extraOpsets[d] ?? 0, Int(o.pointee.version))
        }
        let renames = RenameMap(map)
        let renameBody: (String) -> String = { inner in
            if let mapped = renames.map[inner] { return mapped }
            let candidate = taken.fresh(prefix + inner)
            renames.map[inner] = candidate
            return candidate
        }
        for body in array(f.node, f.n_node) {
            guard let body else { continue }
            try expand(body, rename: renameBody, callerAttributes: attrs, into: &pending, taken: taken, depth: depth + 1)
        }
    }

    func attribute(_ p: UnsafeMutablePointer<Onnx__AttributeProto>, node: String, depth: Int) throws -> Attribute {
        let a = p.pointee
        let name = cstr(a.name)
        let what = "attribute '\(name)' of node \(node)"
        var kindRaw = (a.has_type != 0) ? Int32(a.type.rawValue) : 0
        if kindRaw == 0 {
            // Very old files leave `type` out; infer it from the field that is set.
            if a.n_floats > 0 { kindRaw = 6 } else if a.n_ints > 0 { kindRaw = 7 } else if a.n_strings > 0 { kindRaw = 8 }
            else if a.n_tensors > 0 { kindRaw = 9 } else if a.n_graphs > 0 { kindRaw = 10 }
            else if (a.has_f != 0) { kindRaw = 1 } else if (a.has_i != 0) { kindRaw = 2 } else if (a.has_s != 0) { kindRaw = 3 }
            else if a.t != nil { kindRaw = 4 } else if a.g != nil { kindRaw = 5 }
        }
        guard let kind = AttributeKind(rawValue: kindRaw) else { throw fail("\(what) has an unknown type \(kindRaw)") }
        if let ref = a.ref_attr_name, ref.pointee != 0 {
            return Attribute(name, .reference(name: cstr(ref), kind: kind), docString: cstr(a.doc_string))
        }
        let value: AttributeValue
        switch kind {
        case .float: value = .float(a.f)
        case .int: value = .int(a.i)
        case .string: value = .string(bytes(a.s))
        case .tensor:
            guard let t = a.t else { throw fail("\(what) says TENSOR but holds no tensor") }
            value = .tensor(try tensor(t))
        case .graph:
            guard let g = a.g else { throw fail("\(what) says GRAPH but holds no graph") }
            value = .graph(try subgraph(g, depth: depth))
        case .sparseTensor:
            guard let s = a.sparse_tensor else { throw fail("\(what) says SPARSE_TENSOR but holds none") }
            value = .sparseTensor(try sparseTensor(s))
        case .typeProto: value = .type(try valueType(a.tp, what: what))
        case .floats: value = .floats(Array(array(a.floats, a.n_floats)))
        case .ints: value = .ints(Array(array(a.ints, a.n_ints)))
        case .strings: value = .strings(array(a.strings, a.n_strings).map(bytes))
        case .tensors: value = .tensors(try array(a.tensors, a.n_tensors).compactMap { try $0.map(tensor) })
        case .graphs: value = .graphs(try array(a.graphs, a.n_graphs).compactMap { g in try g.map { try subgraph($0, depth: depth) } })
        case .sparseTensors: value = .sparseTensors(try array(a.sparse_tensors, a.n_sparse_tensors).compactMap { try $0.map(sparseTensor) })
        case .typeProtos: value = .types(try array(a.type_protos, a.n_type_protos).map { try valueType($0, what: what) })
        }
        return Attribute(name, value, docString: cstr(a.doc_string))
    }

    /// Reads a subgraph whose reads of enclosing-graph names are bound later (`bindOuter`).
    func subgraph(_ p: UnsafeMutablePointer<Onnx__GraphProto>, depth: Int) throws -> Graph {
        let placeholders = PlaceholderScope()
        let g = try graph(p, parent: placeholders, depth: depth + 1)
        outerPlaceholders[ObjectIdentifier(g)] = Array(placeholders.created.values).sorted { $0.name < $1.name }
        return g
    }

    // MARK: types

    func valueType(_ p: UnsafeMutablePointer<Onnx__TypeProto>?, what: String, depth: Int = 0) throws -> ValueType? {
        guard let p else { return nil }
        guard depth < 32 else { throw fail("the type of \(what) nests too deeply") }
        let t = p.pointee
        switch t.value_case {
        case ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE:
            guard let tt = t.tensor_type else { return nil }
            return .tensor(try tensorType(elem: (tt.pointee.has_elem_type != 0) ? tt.pointee.elem_type : 0, shape: tt.pointee.shape, what: what))
        case ONNX__TYPE_PROTO__VALUE_SPARSE_TENSOR_TYPE:
            guard let tt = t.sparse_tensor_type else { return nil }
            return .sparseTensor(try tensorType(elem: (tt.pointee.has_elem_type != 0) ? tt.pointee.elem_type : 0, shape: tt.pointee.shape, what: what))
        case ONNX__TYPE_PROTO__VALUE_SEQUENCE_TYPE:
            return .sequence(try valueType(t.sequence_type?.pointee.elem_type, what: what, depth: depth + 1))
        case ONNX__TYPE_PROTO__VALUE_OPTIONAL_TYPE:
            return .optional(try valueType(t.optional_type?.pointee.elem_type, what: what, depth: depth + 1))
        case ONNX__TYPE_PROTO__VALUE_MAP_TYPE:
            let key = DataType(rawValue: t.map_type?.pointee.key_type ?? 0) ?? .undefined
            return .map(key: key, value: try valueType(t.map_type?.pointee.value_type, what: what, depth: depth + 1))
        default:
            return nil
        }
    }

    func tensorType(elem: Int32, shape: UnsafeMutablePointer<Onnx__TensorShapeProto>?, what: String) throws -> TensorType {
        guard let dt = DataType(rawValue: elem) else { throw fail("\(what) has an unknown element type \(elem)") }
        guard let shape else { return TensorType(dt, nil) }
        var dims: [Dim] = []
        for d in array(shape.pointee.dim, shape.pointee.n_dim) {
            guard let d else { continue }
            switch d.pointee.value_case {
            case ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE:
                let v = d.pointee.dim_value
                guard v >= 0 else { throw fail("\(what) has a negative dimension \(v)") }
                dims.append(.fixed(Int(v)))
            case ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM:
                let s = cstr(d.pointee.dim_param)
                dims.append(s.isEmpty ? .unknown : .symbolic(s))
            default:
                dims.append(.unknown)
            }
        }
        // Declared shapes are untrusted too: their fixed dims must not overflow or exceed the budget.
        do { try Limits.checkTensor(dims.compactMap(\.value), dt, what) } catch let e as ModelLimitError { throw fail(e.message) }
        return TensorType(dt, dims)
    }

    // MARK: tensors

    func sparseTensor(_ p: UnsafeMutablePointer<Onnx__SparseTensorProto>) throws -> SparseTensor {
        let s = p.pointee
        guard let v = s.values, let i = s.indices else { throw fail("a sparse tensor lacks its values or indices") }
        let dims = array(s.dims, s.n_dims).map { Int(clamping: $0) }
        guard dims.allSatisfy({ $0 >= 0 }) else { throw fail("a sparse tensor has a negative dimension") }
        return SparseTensor(values: try tensor(v), indices: try tensor(i), dims: dims)
    }

    func tensor(_ p: UnsafeMutablePointer<Onnx__TensorProto>) throws -> Tensor {
        let t = p.pointee
        let name = cstr(t.name)
        let what = "tensor '\(name)'"
        guard let dt = DataType(rawValue: (t.has_data_type != 0) ? t.data_type : 0), dt != .undefined else {
            throw fail("\(what) has an unknown or missing data type \(t.data_type)")
        }
        var dims: [Int] = []
        var count = 1
        for d in array(t.dims, t.n_dims) {
            guard d >= 0 else { throw fail("\(what) has a negative dimension \(d)") }
            let (c, overflow) = count.multipliedReportingOverflow(by: Int(d))
            guard !overflow, c <= Int(Int32.max) * 64 else {
                throw fail("\(what) has dimensions \(array(t.dims, t.n_dims).map { $0 }) whose element count overflows")
            }
            count = c
            dims.append(Int(d))
        }
        if t.segment != nil { throw fail("\(what) is a segment of a larger tensor, which is not supported") }
        let data: TensorData
        if (t.has_data_location != 0) && t.data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL {
            data = try externalData(t, name: name, dataType: dt, count: count)
        } else if dt == .string {
            guard t.n_string_data == count else {
                throw fail("\(what) has \(t.n_string_data) strings, its shape \(dims) says \(count)")
            }
            data = .strings(array(t.string_data, t.n_string_data).map(bytes))
        } else {
            guard let expected = dt.rawByteCount(elements: count) else { throw fail("\(what) has a size that overflows") }
            if (t.has_raw_data != 0) {
                guard t.raw_data.len == expected else {
                    let rel = t.raw_data.len < expected ? "shorter than" : "longer than"
                    throw fail("\(what) has \(t.raw_data.len) bytes of raw data, \(rel) the \(expected) bytes its type \(dt) and shape \(dims) need")
                }
                data = expected == 0 ? .raw(ByteStorage(copying: UnsafeRawBufferPointer(start: nil, count: 0)))
                    : .raw(ByteStorage(pointer: UnsafeRawPointer(t.raw_data.data), count: expected, owner: owner))
            } else {
                data = .raw(try typedData(t, dt: dt, count: count, expected: expected, what: what, dims: dims))
            }
        }
        let tensor = Tensor(name: name, dataType: dt, dims: dims, data: data)
        tensor.docString = cstr(t.doc_string)
        tensor.metadata = entries(t.metadata_props, t.n_metadata_props)
        return tensor
    }

    /// Converts the typed repeated fields (float_data, int32_data, ...) to raw little-endian bytes.
    func typedData(_ t: Onnx__TensorProto, dt: DataType, count: Int, expected: Int, what: String, dims: [Int]) throws -> ByteStorage {
        func check(_ have: Int, _ need: Int, _ field: String) throws {
            guard have == need else {
                throw fail("\(what) has \(have) values in \(field), its type \(dt) and shape \(dims) need \(need)")
            }
        }
        switch dt {
        case .float:
            try check(t.n_float_data, count, "float_data")
            return ByteStorage(copying: UnsafeRawBufferPointer(array(t.float_data, t.n_float_data)))
        case .complex64:
            try check(t.n_float_data, 2 * count, "float_data")
            return ByteStorage(copying: UnsafeRawBufferPointer(array(t.float_data, t.n_float_data)))
        case .double:
            try check(t.n_double_data, count, "double_data")
            return ByteStorage(copying: UnsafeRawBufferPointer(array(t.double_data, t.n_double_data)))
        case .complex128:
            try check(t.n_double_data, 2 * count, "double_data")
            return ByteStorage(copying: UnsafeRawBufferPointer(array(t.double_data, t.n_double_data)))
        case .int64:
            try check(t.n_int64_data, count, "int64_data")
            return ByteStorage(copying: UnsafeRawBufferPointer(array(t.int64_data, t.n_int64_data)))
        case .int32:
            try check(t.n_int32_data, count, "int32_data")
            return ByteStorage(copying: UnsafeRawBufferPointer(array(t.int32_data, t.n_int32_data)))
        case .uint64:
            try check(t.n_uint64_data, count, "uint64_data")
            return ByteStorage(copying: UnsafeRawBufferPointer(array(t.uint64_data, t.n_uint64_data)))
        case .uint32:
            try check(t.n_uint64_data, count, "uint64_data")
            let src = array(t.uint64_data, t.n_uint64_data)
            return ByteStorage(array: src.map { UInt32(truncatingIfNeeded: $0) })
        case .int16, .uint16, .float16, .bfloat16:
            try check(t.n_int32_data, count, "int32_data")
            return ByteStorage(array: array(t.int32_data, t.n_int32_data).map { UInt16(truncatingIfNeeded: $0) })
        case .int8, .uint8, .bool, .float8e4m3fn, .float8e4m3fnuz, .float8e5m2, .float8e5m2fnuz, .float8e8m0:
            try check(t.n_int32_data, count, "int32_data")
            return ByteStorage(array: array(t.int32_data, t.n_int32_data).map { UInt8(truncatingIfNeeded: $0) })
        case .uint4, .int4, .float4e2m1, .uint2, .int2:
            // Sub-byte values come packed, one packed byte per int32 entry.
            try check(t.n_int32_data, expected, "int32_data")
            return ByteStorage(array: array(t.int32_data, t.n_int32_data).map { UInt8(truncatingIfNeeded: $0) })
        case .string, .undefined:
            throw fail("\(what) has no data")
        }
    }

    func externalData(_ t: Onnx__TensorProto, name: String, dataType: DataType, count: Int) throws -> TensorData {
        let what = "tensor '\(name)'"
        var location = ""
        var offset = 0
        var length: Int?
        for (k, v) in entries(t.external_data, t.n_external_data) {
            switch k {
            case "location": location = v
            case "offset":
                guard let o = Int(v), o >= 0 else { throw fail("\(what) has an invalid external-data offset '\(v)'") }
                offset = o
            case "length":
                guard let l = Int(v), l >= 0 else { throw fail("\(what) has an invalid external-data length '\(v)'") }
                length = l
            default: break
            }
        }
        guard dataType != .string else { throw fail("\(what): string tensors cannot be stored as external data") }
        guard let expected = dataType.rawByteCount(elements: count) else { throw fail("\(what) has a size that overflows") }
        guard !location.isEmpty else { throw fail("\(what) is stored externally but names no location") }
        guard let base = baseDirectory else {
            throw fail("\(what) is stored in the external file '\(location)', but the model was not read from a folder")
        }
        // The location must stay inside the model's folder: no absolute paths, no '..'.
        let parts = location.split(separator: "/", omittingEmptySubsequences: true)
        guard !location.hasPrefix("/"), !location.contains("\\"), !parts.contains(where: { $0 == ".." }), !parts.isEmpty else {
            throw fail("\(what) names the external data file '\(location)', which is outside the model's folder; only relative paths inside it are allowed")
        }
        let path = base + "/" + location
        let realBase = URL(fileURLWithPath: base).resolvingSymlinksInPath().path
        let realPath = URL(fileURLWithPath: path).resolvingSymlinksInPath().path
        guard realPath.hasPrefix(realBase + "/") else {
            throw fail("\(what) names the external data file '\(location)', which resolves outside the model's folder")
        }
        let mapped: MappedFile
        if let m = externalFiles[location] { mapped = m } else {
            do { mapped = try MappedFile(path: path) } catch {
                throw fail("\(what) is stored in the external data file '\(location)', which cannot be read: \(ONNXReader.describe(error))")
            }
            externalFiles[location] = mapped
        }
        let len = length ?? expected
        guard len == expected else {
            throw fail("\(what) declares \(len) bytes of external data, its type \(dataType) and shape need \(expected)")
        }
        let (end, overflow) = offset.addingReportingOverflow(len)
        guard !overflow, end <= mapped.count else {
            throw fail("\(what) wants bytes \(offset)..<\(offset &+ len) of '\(location)', which has only \(mapped.count) bytes")
        }
        if len == 0 { return .raw(ByteStorage(copying: UnsafeRawBufferPointer(start: nil, count: 0))) }
        return .raw(ByteStorage(pointer: mapped.pointer! + offset, count: len, owner: mapped))
    }
}

/// The scope of a subgraph's enclosing graphs while the subgraph is read: any name it
/// does not define gets a placeholder value, bound to the real outer value afterwards.
private final class PlaceholderScope: Scope {
    var created: [String: Value] = [:]
    init() { super.init(parent: nil) }
    override func lookup(_ name: String) -> Value? {
        if let v = created[name] { return v }
        let v = Value(name: name)
        created[name] = v
        return v
    }
}
