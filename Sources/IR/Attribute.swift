/// The kinds of ONNX attribute values, numbered as in `AttributeProto.AttributeType`.
public enum AttributeKind: Int32, Sendable {
    case float = 1, int = 2, string = 3, tensor = 4, graph = 5, floats = 6, ints = 7, strings = 8
    case tensors = 9, graphs = 10, sparseTensor = 11, sparseTensors = 12, typeProto = 13, typeProtos = 14
}

public enum AttributeValue: @unchecked Sendable {
    case float(Float)
    case int(Int64)
    case string([UInt8])
    case tensor(Tensor)
    case graph(Graph)
    case sparseTensor(SparseTensor)
    case type(ValueType?)
    case floats([Float])
    case ints([Int64])
    case strings([[UInt8]])
    case tensors([Tensor])
    case graphs([Graph])
    case sparseTensors([SparseTensor])
    case types([ValueType?])
    /// Inside an ONNX function body: "take the caller's attribute named `name`".
    case reference(name: String, kind: AttributeKind)

    public var kind: AttributeKind {
        switch self {
        case .float: return .float
        case .int: return .int
        case .string: return .string
        case .tensor: return .tensor
        case .graph: return .graph
        case .sparseTensor: return .sparseTensor
        case .type: return .typeProto
        case .floats: return .floats
        case .ints: return .ints
        case .strings: return .strings
        case .tensors: return .tensors
        case .graphs: return .graphs
        case .sparseTensors: return .sparseTensors
        case .types: return .typeProtos
        case .reference(_, let kind): return kind
        }
    }
}

public struct Attribute: @unchecked Sendable {
    public var name: String
    public var value: AttributeValue
    public var docString: String = ""

    public init(_ name: String, _ value: AttributeValue, docString: String = "") {
        self.name = name
        self.value = value
        self.docString = docString
    }
}

extension Node {
    public func attribute(_ name: String) -> AttributeValue? {
        attributes.first { $0.name == name }?.value
    }

    public func int(_ name: String) -> Int? {
        if case .int(let v)? = attribute(name) { return Int(v) }
        return nil
    }

    public func float(_ name: String) -> Float? {
        if case .float(let v)? = attribute(name) { return v }
        return nil
    }

    public func ints(_ name: String) -> [Int]? {
        if case .ints(let v)? = attribute(name) { return v.map { Int($0) } }
        return nil
    }

    public func floats(_ name: String) -> [Float]? {
        if case .floats(let v)? = attribute(name) { return v }
        return nil
    }

    public func string(_ name: String) -> String? {
        if case .string(let v)? = attribute(name) { return String(decoding: v, as: UTF8.self) }
        return nil
    }

    public func tensor(_ name: String) -> Tensor? {
        if case .tensor(let t)? = attribute(name) { return t }
        return nil
    }

    public func setAttribute(_ name: String, _ value: AttributeValue) {
        if let i = attributes.firstIndex(where: { $0.name == name }) {
            attributes[i].value = value
        } else {
            attributes.append(Attribute(name, value))
        }
    }

    public func removeAttribute(_ name: String) {
        attributes.removeAll { $0.name == name }
    }
}
