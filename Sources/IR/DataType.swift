/// Element types of ONNX tensors, with ONNX's `TensorProto.DataType` numbers.
public enum DataType: Int32, CaseIterable, Sendable, CustomStringConvertible {
    case undefined = 0
    case float = 1
    case uint8 = 2
    case int8 = 3
    case uint16 = 4
    case int16 = 5
    case int32 = 6
    case int64 = 7
    case string = 8
    case bool = 9
    case float16 = 10
    case double = 11
    case uint32 = 12
    case uint64 = 13
    case complex64 = 14
    case complex128 = 15
    case bfloat16 = 16
    case float8e4m3fn = 17
    case float8e4m3fnuz = 18
    case float8e5m2 = 19
    case float8e5m2fnuz = 20
    case uint4 = 21
    case int4 = 22
    case float4e2m1 = 23
    case float8e8m0 = 24
    case uint2 = 25
    case int2 = 26

    /// Bytes per element in raw (little-endian) storage; nil for strings and sub-byte types.
    public var byteSize: Int? {
        switch self {
        case .bool, .uint8, .int8, .float8e4m3fn, .float8e4m3fnuz, .float8e5m2, .float8e5m2fnuz, .float8e8m0: return 1
        case .uint16, .int16, .float16, .bfloat16: return 2
        case .float, .int32, .uint32: return 4
        case .double, .int64, .uint64, .complex64: return 8
        case .complex128: return 16
        case .undefined, .string, .uint4, .int4, .float4e2m1, .uint2, .int2: return nil
        }
    }

    /// Number of raw bytes that hold `count` elements; nil when the type has no raw form or on overflow.
    public func rawByteCount(elements count: Int) -> Int? {
        switch self {
        case .uint4, .int4, .float4e2m1: return count / 2 + count % 2
        case .uint2, .int2: return (count + 3) / 4
        default:
            guard let size = byteSize else { return nil }
            let (bytes, overflow) = count.multipliedReportingOverflow(by: size)
            return overflow ? nil : bytes
        }
    }

    /// int4, uint4, int2, uint2 and float4e2m1: packed two (four) to a byte in ONNX files.
    public var isSubByte: Bool {
        switch self {
        case .uint4, .int4, .float4e2m1, .uint2, .int2: return true
        default: return false
        }
    }

    /// Bytes per element when every element has bytes of its own: `byteSize`, and 1 for the
    /// sub-byte types (unpacked, one value per byte, as the C++ back end stores them).
    public var unpackedByteSize: Int? { isSubByte ? 1 : byteSize }

    public var isFloatingPoint: Bool {
        switch self {
        case .float, .double, .float16, .bfloat16: return true
        default: return false
        }
    }

    /// float16, bfloat16 and the float8 formats: stored narrow, computed in float32.
    public var isReducedFloat: Bool {
        switch self {
        case .float16, .bfloat16, .float8e4m3fn, .float8e4m3fnuz, .float8e5m2, .float8e5m2fnuz: return true
        default: return false
        }
    }

    public var isInteger: Bool {
        switch self {
        case .uint8, .int8, .uint16, .int16, .int32, .int64, .uint32, .uint64: return true
        default: return false
        }
    }

    public var description: String {
        switch self {
        case .undefined: return "undefined"
        case .float: return "float32"
        case .double: return "float64"
        case .float16: return "float16"
        case .bfloat16: return "bfloat16"
        default: return String(describing: Self.names[self] ?? "type\(rawValue)")
        }
    }

    private static let names: [DataType: String] = [
        .uint8: "uint8", .int8: "int8", .uint16: "uint16", .int16: "int16", .int32: "int32", .int64: "int64",
        .string: "string", .bool: "bool", .uint32: "uint32", .uint64: "uint64", .complex64: "complex64",
        .complex128: "complex128", .float8e4m3fn: "float8e4m3fn", .float8e4m3fnuz: "float8e4m3fnuz",
        .float8e5m2: "float8e5m2", .float8e5m2fnuz: "float8e5m2fnuz", .uint4: "uint4", .int4: "int4",
        .float4e2m1: "float4e2m1", .float8e8m0: "float8e8m0", .uint2: "uint2", .int2: "int2",
    ]
}

/// One dimension of a shape: a number, a named symbol (e.g. "batch"), or unknown.
public enum Dim: Hashable, Sendable, CustomStringConvertible {
    case fixed(Int)
    case symbolic(String)
    case unknown

    public var value: Int? { if case .fixed(let v) = self { return v } else { return nil } }

    public var description: String {
        switch self {
        case .fixed(let v): return String(v)
        case .symbolic(let s): return s
        case .unknown: return "?"
        }
    }
}

/// The type of a tensor value: element type and, when known, its shape.
public struct TensorType: Hashable, Sendable, CustomStringConvertible {
    public var elementType: DataType
    /// nil when the rank is unknown.
    public var shape: [Dim]?

    public init(_ elementType: DataType, _ shape: [Dim]?) {
        self.elementType = elementType
        self.shape = shape
    }

    public init(_ elementType: DataType, fixed dims: [Int]) {
        self.init(elementType, dims.map { .fixed($0) })
    }

    /// The shape when every dimension is a number.
    public var staticShape: [Int]? {
        guard let shape else { return nil }
        var dims: [Int] = []
        for d in shape { guard let v = d.value else { return nil }; dims.append(v) }
        return dims
    }

    public var description: String {
        guard let shape else { return "\(elementType)[*]" }
        return "\(elementType)[\(shape.map(\.description).joined(separator: ","))]"
    }
}

/// Non-tensor ONNX types (sequences, maps, optionals, sparse tensors) are kept verbatim
/// so that models carrying them survive a round trip, even though no pass understands them.
public indirect enum ValueType: Hashable, Sendable, CustomStringConvertible {
    case tensor(TensorType)
    case sparseTensor(TensorType)
    case sequence(ValueType?)
    case map(key: DataType, value: ValueType?)
    case optional(ValueType?)

    public var tensorType: TensorType? { if case .tensor(let t) = self { return t } else { return nil } }

    public var description: String {
        switch self {
        case .tensor(let t): return t.description
        case .sparseTensor(let t): return "sparse \(t)"
        case .sequence(let e): return "seq(\(e.map(\.description) ?? "?"))"
        case .map(let k, let v): return "map(\(k),\(v.map(\.description) ?? "?"))"
        case .optional(let e): return "optional(\(e.map(\.description) ?? "?"))"
        }
    }
}
