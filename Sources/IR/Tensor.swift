import Foundation

/// Immutable bytes with a stable address. The owner (a decoded protobuf message, a
/// memory-mapped file, or our own allocation) stays alive as long as the storage does,
/// so tensors read from a file reference its bytes without copying them.
public final class ByteStorage: @unchecked Sendable {
    public let pointer: UnsafeRawPointer
    public let count: Int
    private let owner: AnyObject?
    private let ownsPointer: Bool

    /// References bytes kept alive by `owner`.
    public init(pointer: UnsafeRawPointer, count: Int, owner: AnyObject) {
        self.pointer = pointer
        self.count = count
        self.owner = owner
        self.ownsPointer = false
    }

    /// Copies `bytes` into a new allocation.
    public init(copying bytes: UnsafeRawBufferPointer) {
        let p = UnsafeMutableRawPointer.allocate(byteCount: max(bytes.count, 1), alignment: 16)
        if bytes.count > 0, let base = bytes.baseAddress { p.copyMemory(from: base, byteCount: bytes.count) }
        self.pointer = UnsafeRawPointer(p)
        self.count = bytes.count
        self.owner = nil
        self.ownsPointer = true
    }

    /// Allocates `count` bytes, zero-filled, and lets `fill` write them. The zero fill makes
    /// every byte defined even when `fill` writes only part of the buffer: storage we create
    /// never exposes heap contents (the same model always gives the same bytes).
    public init(count: Int, fill: (UnsafeMutableRawBufferPointer) throws -> Void) rethrows {
        let p = UnsafeMutableRawPointer.allocate(byteCount: max(count, 1), alignment: 16)
        p.initializeMemory(as: UInt8.self, repeating: 0, count: max(count, 1))
        do { try fill(UnsafeMutableRawBufferPointer(start: p, count: count)) } catch { p.deallocate(); throw error }
        self.pointer = UnsafeRawPointer(p)
        self.count = count
        self.owner = nil
        self.ownsPointer = true
    }

    /// Copies the elements of `array`. The copy happens inside `withUnsafeBytes`: the
    /// array's buffer is only valid there (a temporary array is freed right after).
    public convenience init<T>(array: [T]) {
        self.init(count: array.count * MemoryLayout<T>.stride) { dst in
            array.withUnsafeBytes { src in
                if let base = src.baseAddress, src.count > 0 { dst.baseAddress!.copyMemory(from: base, byteCount: src.count) }
            }
        }
    }

    deinit { if ownsPointer { UnsafeMutableRawPointer(mutating: pointer).deallocate() } }

    public var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: pointer, count: count) }

    public static func == (a: ByteStorage, b: ByteStorage) -> Bool {
        a.count == b.count && (a.count == 0 || memcmp(a.pointer, b.pointer, a.count) == 0)
    }
}

/// A tensor's contents: raw little-endian bytes (every numeric type) or byte strings.
public enum TensorData: Sendable {
    case raw(ByteStorage)
    case strings([[UInt8]])
}

/// A constant tensor: an initializer, or the value of a tensor attribute.
public final class Tensor: @unchecked Sendable {
    public var name: String
    public let dataType: DataType
    public let dims: [Int]
    public let data: TensorData
    public var docString: String = ""
    public var metadata: [(String, String)] = []

    public init(name: String = "", dataType: DataType, dims: [Int], data: TensorData) {
        self.name = name
        self.dataType = dataType
        self.dims = dims
        self.data = data
    }

    /// Builds a tensor from Swift values; `T` must match `dataType`'s raw layout.
    public convenience init<T>(name: String = "", dataType: DataType, dims: [Int], values: [T]) {
        // A Swift Int for an int32 tensor would store twice the bytes, every other one garbage:
        // a programming error, caught here rather than as wrong weights downstream.
        precondition(dataType.byteSize.map { $0 == MemoryLayout<T>.stride } ?? true,
                     "Tensor(\(dataType)) built from \(T.self) values of \(MemoryLayout<T>.stride) bytes")
        self.init(name: name, dataType: dataType, dims: dims, data: .raw(ByteStorage(array: values)))
    }

    public var elementCount: Int { dims.reduce(1, *) }
    public var type: TensorType { TensorType(dataType, fixed: dims) }

    public var rawBytes: UnsafeRawBufferPointer? {
        if case .raw(let s) = data { return s.bytes }
        return nil
    }

    /// Elements reinterpreted as `T` (which must match the element size); nil for string tensors.
    public func values<T>(as: T.Type) -> [T]? {
        guard case .raw(let s) = data, MemoryLayout<T>.size == dataType.byteSize else { return nil }
        let n = s.count / MemoryLayout<T>.size
        return [T](unsafeUninitializedCapacity: n) { buf, initialized in
            memcpy(buf.baseAddress!, s.pointer, n * MemoryLayout<T>.size)
            initialized = n
        }
    }

    /// Integer elements widened to Int (for shape-like tensors of any integer type).
    public func integers() -> [Int]? {
        switch dataType {
        case .int64: return values(as: Int64.self)?.map { Int($0) }
        case .int32: return values(as: Int32.self)?.map { Int($0) }
        case .int16: return values(as: Int16.self)?.map { Int($0) }
        case .int8: return values(as: Int8.self)?.map { Int($0) }
        case .uint8, .bool: return values(as: UInt8.self)?.map { Int($0) }
        case .uint16: return values(as: UInt16.self)?.map { Int($0) }
        case .uint32: return values(as: UInt32.self)?.map { Int($0) }
        case .uint64: return values(as: UInt64.self)?.map { Int(truncatingIfNeeded: $0) }
        default: return nil
        }
    }

    /// The elements of a sub-byte tensor (int4, uint4, int2, uint2, float4e2m1), packed in
    /// ONNX's layout (the first element in the low bits), one per byte: int4 and int2 as
    /// sign-extended two's complement, the others as their unsigned code. nil for other types
    /// or when the data is shorter than the element count needs.
    public func unpackedSubBytes() -> [UInt8]? {
        guard dataType.isSubByte, let raw = rawBytes else { return nil }
        let n = elementCount
        let bits = dataType == .int2 || dataType == .uint2 ? 2 : 4
        let perByte = 8 / bits, mask = UInt8((1 << bits) - 1)
        guard raw.count >= (n + perByte - 1) / perByte else { return nil }
        let signed = dataType == .int4 || dataType == .int2
        return (0..<n).map { i in
            let code = (raw[i / perByte] >> UInt8((i % perByte) * bits)) & mask
            // Sign extension: the top bit of the field set means negative.
            return signed && code & (1 << UInt8(bits - 1)) != 0 ? code | ~mask : code
        }
    }

    /// True when both tensors hold the same type, shape and bytes.
    public func sameContents(as other: Tensor) -> Bool {
        guard dataType == other.dataType, dims == other.dims else { return false }
        switch (data, other.data) {
        case (.raw(let a), .raw(let b)): return a == b
        case (.strings(let a), .strings(let b)): return a == b
        default: return false
        }
    }
}

/// A sparse tensor in ONNX's COO form, kept verbatim.
public struct SparseTensor: Sendable {
    public var values: Tensor
    public var indices: Tensor
    public var dims: [Int]
    public init(values: Tensor, indices: Tensor, dims: [Int]) {
        self.values = values
        self.indices = indices
        self.dims = dims
    }
}
