import Foundation


/// A constant tensor in a form the reference evaluator computes on: integers (and bools)
/// as Int64, floating point as Double. Converted from and to IR tensors at the edges.
public struct NDArray {
    public var dataType: DataType
    public var shape: [Int]
    public var ints: [Int64] = []
    public var floats: [Double] = []

    public var count: Int { shape.reduce(1, *) }
    public var isFloat: Bool { dataType.isFloatingPoint }

    public init(_ dataType: DataType, shape: [Int], ints: [Int64]) {
        self.dataType = dataType
        self.shape = shape
        self.ints = ints
    }

    public init(_ dataType: DataType, shape: [Int], floats: [Double]) {
        self.dataType = dataType
        self.shape = shape
        self.floats = floats
    }

    /// Element `i` as Double (whatever the storage).
    @inline(__always) public func double(_ i: Int) -> Double { isFloat ? floats[i] : Double(ints[i]) }
    @inline(__always) public func int(_ i: Int) -> Int64 { isFloat ? Int64(floats[i]) : ints[i] }

    public static func scalar(_ dt: DataType, _ v: Double) -> NDArray {
        dt.isFloatingPoint ? NDArray(dt, shape: [], floats: [v]) : NDArray(dt, shape: [], ints: [Int64(v)])
    }

    /// Builds an array of `dt` from Double values, rounding and wrapping like a C++ cast.
    public static func make(_ dt: DataType, shape: [Int], _ values: [Double]) -> NDArray {
        if dt.isFloatingPoint {
            return NDArray(dt, shape: shape, floats: dt == .float ? values.map { Double(Float($0)) } : values)
        }
        return NDArray(dt, shape: shape, ints: values.map { castInt($0, to: dt) })
    }

    static func castInt(_ v: Double, to dt: DataType) -> Int64 {
        if dt == .bool { return v != 0 ? 1 : 0 }
        guard v.isFinite else { return 0 }
        let t = v.rounded(.towardZero)
        guard t >= -9.2e18, t <= 9.2e18 else { return 0 }
        return wrap(Int64(t), dt)
    }

    /// Wraps an integer into the range of `dt` (two's complement), as C++ conversions do.
    static func wrap(_ v: Int64, _ dt: DataType) -> Int64 {
        switch dt {
        case .int8: return Int64(Int8(truncatingIfNeeded: v))
        case .uint8: return Int64(UInt8(truncatingIfNeeded: v))
        case .int16: return Int64(Int16(truncatingIfNeeded: v))
        case .uint16: return Int64(UInt16(truncatingIfNeeded: v))
        case .int32: return Int64(Int32(truncatingIfNeeded: v))
        case .uint32: return Int64(UInt32(truncatingIfNeeded: v))
        case .bool: return v != 0 ? 1 : 0
        default: return v
        }
    }

    /// The element types an NDArray holds exactly (float32/64, the integers up to 64 bits, bool).
    public static func canHold(_ dt: DataType) -> Bool {
        switch dt {
        case .float, .double, .int64, .int32, .int16, .int8, .uint8, .uint16, .uint32, .uint64, .bool: return true
        default: return false
        }
    }

    public init?(_ t: Tensor) {
        guard t.dataType != .string else { return nil }
        dataType = t.dataType
        shape = t.dims
        switch t.dataType {
        case .float: guard let v = t.values(as: Float.self) else { return nil }; floats = v.map(Double.init)
        case .double: guard let v = t.values(as: Double.self) else { return nil }; floats = v
        case .int64, .int32, .int16, .int8, .uint8, .uint16, .uint32, .bool:
            guard let v = t.integers() else { return nil }; ints = v.map { Int64($0) }
        case .uint64: guard let v = t.values(as: UInt64.self) else { return nil }; ints = v.map { Int64(bitPattern: $0) }
        default: return nil
        }
    }

    public func tensor(name: String = "") -> Tensor {
        func make<T>(_ v: [T]) -> Tensor { Tensor(name: name, dataType: dataType, dims: shape, values: v) }
        switch dataType {
        case .float: return make(floats.map { Float($0) })
        case .double: return make(floats)
        case .int64: return make(ints)
        case .uint64: return make(ints.map { UInt64(bitPattern: $0) })
        case .int32: return make(ints.map { Int32(truncatingIfNeeded: $0) })
        case .uint32: return make(ints.map { UInt32(truncatingIfNeeded: $0) })
        case .int16: return make(ints.map { Int16(truncatingIfNeeded: $0) })
        case .uint16: return make(ints.map { UInt16(truncatingIfNeeded: $0) })
        case .int8: return make(ints.map { Int8(truncatingIfNeeded: $0) })
        case .uint8: return make(ints.map { UInt8(truncatingIfNeeded: $0) })
        case .bool: return make(ints.map { UInt8($0 != 0 ? 1 : 0) })
        default: preconditionFailure("NDArray cannot hold \(dataType)")
        }
    }

    /// Row-major strides of `shape`.
    public static func strides(_ shape: [Int]) -> [Int] {
        var s = [Int](repeating: 1, count: shape.count)
        var acc = 1
        for i in stride(from: shape.count - 1, through: 0, by: -1) { s[i] = acc; acc *= shape[i] }
        return s
    }

    /// Picks elements by flat index (the common tool of the shape ops).
    public func gathered(_ indices: [Int], shape newShape: [Int]) -> NDArray {
        var r = self
        r.shape = newShape
        if isFloat { r.floats = indices.map { floats[$0] } } else { r.ints = indices.map { ints[$0] } }
        return r
    }
}

/// Numpy-style broadcasting of two shapes; nil if they do not broadcast (or a dimension is
/// negative: an Expand to a shape of -1 from a hostile file once reached an array of count -1).
public func broadcastShapes(_ a: [Int], _ b: [Int]) -> [Int]? {
    guard a.allSatisfy({ $0 >= 0 }), b.allSatisfy({ $0 >= 0 }) else { return nil }
    let n = max(a.count, b.count)
    var out = [Int](repeating: 1, count: n)
    for i in 0..<n {
        let x = i < n - a.count ? 1 : a[i - (n - a.count)]
        let y = i < n - b.count ? 1 : b[i - (n - b.count)]
        if x == y || y == 1 { out[i] = x } else if x == 1 { out[i] = y } else { return nil }
    }
    return out
}

/// For each element of `outShape`, the flat index into an input of `inShape` broadcast to it.
public func broadcastIndices(_ inShape: [Int], to outShape: [Int]) -> [Int] {
    let n = outShape.count
    let padded = [Int](repeating: 1, count: n - inShape.count) + inShape
    let inStrides = NDArray.strides(padded)
    let total = outShape.reduce(1, *)
    var result = [Int](repeating: 0, count: total)
    var idx = [Int](repeating: 0, count: n)
    for flat in 0..<total {
        var off = 0
        for d in 0..<n where padded[d] != 1 { off += idx[d] * inStrides[d] }
        result[flat] = off
        var d = n - 1
        while d >= 0 { idx[d] += 1; if idx[d] < outShape[d] { break }; idx[d] = 0; d -= 1 }
    }
    return result
}

extension NDArray {
    /// The array with its axes permuted: axis i of the result is axis perm[i] of this one.
    public func transposed(_ perm: [Int]) -> NDArray {
        let out = perm.map { shape[$0] }
        let st = NDArray.strides(shape)
        return gathered(indexGrid(out, perm.map { st[$0] }), shape: out)
    }
}
