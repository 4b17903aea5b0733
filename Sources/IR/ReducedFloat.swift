import Foundation

/// The binary layouts of float16, bfloat16 and the float8 formats (the same rules as the C++
/// header's `sofie::minifloat::format`): exponent and mantissa widths, bias, and how the top
/// of the range is used.
public struct ReducedFloatFormat: Sendable {
    public enum Kind: Sendable {
        /// The all-ones exponent holds infinities and NaNs (IEEE binary16, bfloat16, float8 e5m2).
        case ieee
        /// No infinities; only all-ones exponent and mantissa is NaN (float8 e4m3fn).
        case finite
        /// No infinities and no negative zero; the bit pattern of -0 is the NaN (the fnuz formats).
        case finiteUnsignedZero
    }
    public let exponentBits: Int, mantissaBits: Int, bias: Int, kind: Kind

    public init?(_ t: DataType) {
        switch t {
        case .float16: (exponentBits, mantissaBits, bias, kind) = (5, 10, 15, .ieee)
        case .bfloat16: (exponentBits, mantissaBits, bias, kind) = (8, 7, 127, .ieee)
        case .float8e4m3fn: (exponentBits, mantissaBits, bias, kind) = (4, 3, 7, .finite)
        case .float8e4m3fnuz: (exponentBits, mantissaBits, bias, kind) = (4, 3, 8, .finiteUnsignedZero)
        case .float8e5m2: (exponentBits, mantissaBits, bias, kind) = (5, 2, 15, .ieee)
        case .float8e5m2fnuz: (exponentBits, mantissaBits, bias, kind) = (5, 2, 16, .finiteUnsignedZero)
        default: return nil
        }
    }

    /// One unit in the last place at `x` (the spacing of the format's values around it).
    public func ulp(at x: Double) -> Double {
        let minNormal = pow(2, Double(1 - bias))
        let a = abs(x)
        guard a.isFinite else { return .nan }
        if a < minNormal { return pow(2, Double(1 - bias - mantissaBits)) }
        return pow(2, Double(a.exponent) - Double(mantissaBits))
    }

    /// Every element of a tensor of this format, decoded (nil for a tensor without raw bytes).
    public static func values(of t: Tensor) -> [Double]? {
        guard let f = ReducedFloatFormat(t.dataType), let raw = t.rawBytes, let width = t.dataType.byteSize else { return nil }
        return stride(from: 0, to: raw.count - width + 1, by: width).map { k in
            f.decode(width == 2 ? UInt32(raw.loadUnaligned(fromByteOffset: k, as: UInt16.self)) : UInt32(raw[k]))
        }
    }

    /// The value of a bit pattern (exact).
    public func decode(_ bits: UInt32) -> Double {
        let sign = UInt32(1) << (exponentBits + mantissaBits)
        let top = (UInt32(1) << exponentBits) - 1, mask = (UInt32(1) << mantissaBits) - 1
        let negative = bits & sign != 0
        let e = (bits >> mantissaBits) & top, m = bits & mask
        switch kind {
        case .finiteUnsignedZero where bits == sign: return .nan
        case .finite where e == top && m == mask: return .nan
        case .ieee where e == top: return m != 0 ? .nan : (negative ? -.infinity : .infinity)
        default: break
        }
        let v = e == 0 ? Double(m) * pow(2, Double(1 - bias - mantissaBits))
                       : Double(m | (mask + 1)) * pow(2, Double(Int(e) - bias - mantissaBits))
        return negative ? -v : v
    }
}
