import CSofieONNX
import Foundation
import SofieIR

public struct ONNXWriteError: Error, CustomStringConvertible {
    public let file: String
    public let message: String
    public var description: String { "\(file): \(message)" }
}

/// Writes the IR as an ONNX ModelProto through protobuf-c. Tensors are written as
/// raw_data; the output file appears only when complete (temporary file + rename).
public enum ONNXWriter {
    public static func write(_ model: Model, to path: String) throws {
        let builder = ProtoBuilder()
        defer { builder.freeAll() }
        let proto = try builder.model(model)
        let size = onnx__model_proto__get_packed_size(proto)
        guard size <= Int(Int32.max) else {
            throw ONNXWriteError(file: path, message: "the model is \(size) bytes, more than protobuf's 2 GiB message limit")
        }
        let buffer = UnsafeMutablePointer<UInt8>.allocate(capacity: max(size, 1))
        defer { buffer.deallocate() }
        let written = onnx__model_proto__pack(proto, buffer)
        precondition(written == size, "protobuf-c packed \(written) bytes, announced \(size)")
        try AtomicFile.write(UnsafeRawBufferPointer(start: buffer, count: size), to: path)
    }

    /// Serializes to bytes in memory (for tests and pipelines that hand the model on).
    public static func serialize(_ model: Model) throws -> [UInt8] {
        let builder = ProtoBuilder()
        defer { builder.freeAll() }
        let proto = try builder.model(model)
        let size = onnx__model_proto__get_packed_size(proto)
        var out = [UInt8](repeating: 0, count: size)
        out.withUnsafeMutableBufferPointer { _ = onnx__model_proto__pack(proto, $0.baseAddress!) }
        return out
    }
}

/// Builds protobuf-c message trees in malloc'd memory it tracks and frees at once.
/// Tensor bytes are not copied: raw_data points at the IR's storage, kept alive by `retained`.
private final class ProtoBuilder {
    private var allocations: [UnsafeMutableRawPointer] = []
    private var retained: [AnyObject] = []
    /// IR versions before 4 require every initializer to be a graph input too.
    private var initializersAreInputs = false

    func freeAll() {
        for p in allocations { free(p) }
        allocations = []
        retained = []
    }

    func alloc<T>(_ type: T.Type, count: Int = 1) -> UnsafeMutablePointer<T> {
        let p = calloc(max(count, 1), MemoryLayout<T>.stride)!
        allocations.append(p)
        return p.bindMemory(to: T.self, capacity: max(count, 1))
    }

    func str(_ s: String) -> UnsafeMutablePointer<CChar> {
        let p = strdup(s)!
        allocations.append(UnsafeMutableRawPointer(p))
        return p
    }

    /// nil for empty strings, so that unset optional strings stay unset.
    func optStr(_ s: String) -> UnsafeMutablePointer<CChar>? { s.isEmpty ? nil : str(s) }

    func binary(_ b: [UInt8]) -> ProtobufCBinaryData {
        let p = alloc(UInt8.self, count: b.count)
        b.withUnsafeBufferPointer { if let base = $0.baseAddress { p.update(from: base, count: b.count) } }
        return ProtobufCBinaryData(len: b.count, data: p)
    }

    func list<T>(_ items: [T]) -> (Int, UnsafeMutablePointer<T>?) {
        guard !items.isEmpty else { return (0, nil) }
        let p = alloc(T.self, count: items.count)
        p.initialize(from: items, count: items.count)
        return (items.count, p)
    }

    func strList(_ items: [String]) -> (Int, UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) {
        list(items.map { Optional(str($0)) })
    }

    func entries(_ kv: [(String, String)]) -> (Int, UnsafeMutablePointer<UnsafeMutablePointer<Onnx__StringStringEntryProto>?>?) {
        list(kv.map { k, v -> UnsafeMutablePointer<Onnx__StringStringEntryProto>? in
            let e = alloc(Onnx__StringStringEntryProto.self)
            onnx__string_string_entry_proto__init(e)
            e.pointee.key = str(k)
            e.pointee.value = str(v)
            return e
        })
    }

    func model(_ m: Model) throws -> UnsafeMutablePointer<Onnx__ModelProto> {
        let p = alloc(Onnx__ModelProto.self)
        onnx__model_proto__init(p)
        p.pointee.has_ir_version = 1
        p.pointee.ir_version = Int64(m.irVersion)
        (p.pointee.n_opset_import, p.pointee.opset_import) = list(m.opsetImports.map { o -> UnsafeMutablePointer<Onnx__OperatorSetIdProto>? in
            let op = alloc(Onnx__OperatorSetIdProto.self)
            onnx__operator_set_id_proto__init(op)
            op.pointee.domain = str(o.domain)
            op.pointee.has_version = 1
            op.pointee.version = Int64(o.version)
            return op
        })
        p.pointee.producer_name = optStr(m.producerName)
        p.pointee.producer_version = optStr(m.producerVersion)
        p.pointee.domain = optStr(m.domain)
        if m.modelVersion != 0 { p.pointee.has_model_version = 1; p.pointee.model_version = Int64(m.modelVersion) }
        p.pointee.doc_string = optStr(m.docString)
        (p.pointee.n_metadata_props, p.pointee.metadata_props) = entries(m.metadata)
        initializersAreInputs = m.irVersion < 4
        p.pointee.graph = try graph(m.graph, isMain: true)
        return p
    }

    func graph(_ g: Graph, isMain: Bool) throws -> UnsafeMutablePointer<Onnx__GraphProto> {
        let p = alloc(Onnx__GraphProto.self)
        onnx__graph_proto__init(p)
        p.pointee.name = str(g.name)
        p.pointee.doc_string = optStr(g.docString)
        (p.pointee.n_metadata_props, p.pointee.metadata_props) = entries(g.metadata)
        (p.pointee.n_node, p.pointee.node) = list(try g.nodes.map { Optional(try node($0)) })
        (p.pointee.n_initializer, p.pointee.initializer) = list(g.initializers.map { v -> UnsafeMutablePointer<Onnx__TensorProto>? in
            let t = v.initializer!
            return tensor(t, name: v.name)
        })
        (p.pointee.n_sparse_initializer, p.pointee.sparse_initializer) = list(g.sparseInitializers.map { Optional(sparse($0.1)) })
        var inputs = g.inputs
        if isMain && initializersAreInputs {
            let listed = Set(inputs.map(ObjectIdentifier.init))
            inputs += g.initializers.filter { !listed.contains(ObjectIdentifier($0)) }
        }
        (p.pointee.n_input, p.pointee.input) = list(inputs.map { Optional(valueInfo($0)) })
        (p.pointee.n_output, p.pointee.output) = list(g.outputs.map { Optional(valueInfo($0)) })
        // Types of intermediate values: every typed node output that is not a graph output.
        let outs = Set(g.outputs.map(ObjectIdentifier.init))
        var infos: [Value] = []
        for n in g.nodes {
            for case let o? in n.outputs where o.type != nil && !outs.contains(ObjectIdentifier(o)) { infos.append(o) }
        }
        (p.pointee.n_value_info, p.pointee.value_info) = list(infos.map { Optional(valueInfo($0)) })
        return p
    }

    func node(_ n: Node) throws -> UnsafeMutablePointer<Onnx__NodeProto> {
        let p = alloc(Onnx__NodeProto.self)
        onnx__node_proto__init(p)
        (p.pointee.n_input, p.pointee.input) = strList(n.inputs.map { $0?.name ?? "" })
        (p.pointee.n_output, p.pointee.output) = strList(n.outputs.map { $0?.name ?? "" })
        p.pointee.name = optStr(n.name)
        p.pointee.op_type = str(n.opType)
        p.pointee.domain = optStr(n.domain)
        p.pointee.overload = optStr(n.overload)
        p.pointee.doc_string = optStr(n.docString)
        (p.pointee.n_metadata_props, p.pointee.metadata_props) = entries(n.metadata)
        (p.pointee.n_attribute, p.pointee.attribute) = list(try n.attributes.map { Optional(try attribute($0)) })
        return p
    }

    func attribute(_ a: Attribute) throws -> UnsafeMutablePointer<Onnx__AttributeProto> {
        let p = alloc(Onnx__AttributeProto.self)
        onnx__attribute_proto__init(p)
        p.pointee.name = str(a.name)
        p.pointee.doc_string = optStr(a.docString)
        p.pointee.has_type = 1
        p.pointee.type = Onnx__AttributeProto__AttributeType(rawValue: UInt32(a.value.kind.rawValue))
        switch a.value {
        case .float(let f): p.pointee.has_f = 1; p.pointee.f = f
        case .int(let i): p.pointee.has_i = 1; p.pointee.i = i
        case .string(let s): p.pointee.has_s = 1; p.pointee.s = binary(s)
        case .tensor(let t): p.pointee.t = tensor(t, name: t.name)
        case .graph(let g): p.pointee.g = try graph(g, isMain: false)
        case .sparseTensor(let s): p.pointee.sparse_tensor = sparse(s)
        case .type(let t): p.pointee.tp = typeProto(t)
        case .floats(let v): (p.pointee.n_floats, p.pointee.floats) = list(v)
        case .ints(let v): (p.pointee.n_ints, p.pointee.ints) = list(v)
        case .strings(let v): (p.pointee.n_strings, p.pointee.strings) = list(v.map(binary))
        case .tensors(let v): (p.pointee.n_tensors, p.pointee.tensors) = list(v.map { Optional(tensor($0, name: $0.name)) })
        case .graphs(let v): (p.pointee.n_graphs, p.pointee.graphs) = list(try v.map { Optional(try graph($0, isMain: false)) })
        case .sparseTensors(let v): (p.pointee.n_sparse_tensors, p.pointee.sparse_tensors) = list(v.map { Optional(sparse($0)) })
        case .types(let v): (p.pointee.n_type_protos, p.pointee.type_protos) = list(v.map { typeProto($0) })
        case .reference(let name, _): p.pointee.ref_attr_name = str(name)
        }
        return p
    }

    func tensor(_ t: Tensor, name: String) -> UnsafeMutablePointer<Onnx__TensorProto> {
        let p = alloc(Onnx__TensorProto.self)
        onnx__tensor_proto__init(p)
        (p.pointee.n_dims, p.pointee.dims) = list(t.dims.map { Int64($0) })
        p.pointee.has_data_type = 1
        p.pointee.data_type = t.dataType.rawValue
        p.pointee.name = optStr(name)
        p.pointee.doc_string = optStr(t.docString)
        (p.pointee.n_metadata_props, p.pointee.metadata_props) = entries(t.metadata)
        switch t.data {
        case .raw(let storage):
            retained.append(storage)
            p.pointee.has_raw_data = 1
            p.pointee.raw_data = ProtobufCBinaryData(len: storage.count,
                                                     data: UnsafeMutablePointer(mutating: storage.pointer.assumingMemoryBound(to: UInt8.self)))
        case .strings(let strings):
            (p.pointee.n_string_data, p.pointee.string_data) = list(strings.map(binary))
        }
        return p
    }

    func sparse(_ s: SparseTensor) -> UnsafeMutablePointer<Onnx__SparseTensorProto> {
        let p = alloc(Onnx__SparseTensorProto.self)
        onnx__sparse_tensor_proto__init(p)
        p.pointee.values = tensor(s.values, name: s.values.name)
        p.pointee.indices = tensor(s.indices, name: s.indices.name)
        (p.pointee.n_dims, p.pointee.dims) = list(s.dims.map { Int64($0) })
        return p
    }

    func valueInfo(_ v: Value) -> UnsafeMutablePointer<Onnx__ValueInfoProto> {
        let p = alloc(Onnx__ValueInfoProto.self)
        onnx__value_info_proto__init(p)
        p.pointee.name = str(v.name)
        p.pointee.doc_string = optStr(v.docString)
        (p.pointee.n_metadata_props, p.pointee.metadata_props) = entries(v.metadata)
        p.pointee.type = typeProto(v.type)
        return p
    }

    func shape(_ dims: [Dim]?) -> UnsafeMutablePointer<Onnx__TensorShapeProto>? {
        guard let dims else { return nil }
        let s = alloc(Onnx__TensorShapeProto.self)
        onnx__tensor_shape_proto__init(s)
        (s.pointee.n_dim, s.pointee.dim) = list(dims.map { d -> UnsafeMutablePointer<Onnx__TensorShapeProto__Dimension>? in
            let dp = alloc(Onnx__TensorShapeProto__Dimension.self)
            onnx__tensor_shape_proto__dimension__init(dp)
            switch d {
            case .fixed(let v):
                dp.pointee.value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE
                dp.pointee.dim_value = Int64(v)
            case .symbolic(let name):
                dp.pointee.value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM
                dp.pointee.dim_param = str(name)
            case .unknown:
                break
            }
            return dp
        })
        return s
    }

    func typeProto(_ t: ValueType?) -> UnsafeMutablePointer<Onnx__TypeProto>? {
        guard let t else { return nil }
        let p = alloc(Onnx__TypeProto.self)
        onnx__type_proto__init(p)
        switch t {
        case .tensor(let tt), .sparseTensor(let tt):
            let isSparse: Bool
            if case .sparseTensor = t { isSparse = true } else { isSparse = false }
            if isSparse {
                let s = alloc(Onnx__TypeProto__SparseTensor.self)
                onnx__type_proto__sparse_tensor__init(s)
                s.pointee.has_elem_type = 1
                s.pointee.elem_type = tt.elementType.rawValue
                s.pointee.shape = shape(tt.shape)
                p.pointee.value_case = ONNX__TYPE_PROTO__VALUE_SPARSE_TENSOR_TYPE
                p.pointee.sparse_tensor_type = s
            } else {
                let s = alloc(Onnx__TypeProto__Tensor.self)
                onnx__type_proto__tensor__init(s)
                s.pointee.has_elem_type = 1
                s.pointee.elem_type = tt.elementType.rawValue
                s.pointee.shape = shape(tt.shape)
                p.pointee.value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE
                p.pointee.tensor_type = s
            }
        case .sequence(let e):
            let s = alloc(Onnx__TypeProto__Sequence.self)
            onnx__type_proto__sequence__init(s)
            s.pointee.elem_type = typeProto(e)
            p.pointee.value_case = ONNX__TYPE_PROTO__VALUE_SEQUENCE_TYPE
            p.pointee.sequence_type = s
        case .optional(let e):
            let s = alloc(Onnx__TypeProto__Optional.self)
            onnx__type_proto__optional__init(s)
            s.pointee.elem_type = typeProto(e)
            p.pointee.value_case = ONNX__TYPE_PROTO__VALUE_OPTIONAL_TYPE
            p.pointee.optional_type = s
        case .map(let key, let value):
            let s = alloc(Onnx__TypeProto__Map.self)
            onnx__type_proto__map__init(s)
            s.pointee.has_key_type = 1
            s.pointee.key_type = key.rawValue
            s.pointee.value_type = typeProto(value)
            p.pointee.value_case = ONNX__TYPE_PROTO__VALUE_MAP_TYPE
            p.pointee.map_type = s
        }
        return p
    }
}
