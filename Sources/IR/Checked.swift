import Foundation

/// Arithmetic on numbers that come from a model file. A model is untrusted input: its dims,
/// strides, pads, scales and counts can be anything an Int64 or a Double can hold, so every
/// computation on them goes through these helpers, which throw instead of trapping. Shape
/// inference turns the error into one naming the node (`CompileError`).
public struct ModelLimitError: Error, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

public enum Checked {
    public static func add(_ a: Int, _ b: Int, _ what: @autoclosure () -> String = "a size") throws -> Int {
        let (r, o) = a.addingReportingOverflow(b)
        guard !o else { throw ModelLimitError("\(what()) overflows 64 bits (\(a) + \(b))") }
        return r
    }

    public static func sub(_ a: Int, _ b: Int, _ what: @autoclosure () -> String = "a size") throws -> Int {
        let (r, o) = a.subtractingReportingOverflow(b)
        guard !o else { throw ModelLimitError("\(what()) overflows 64 bits (\(a) - \(b))") }
        return r
    }

    public static func mul(_ a: Int, _ b: Int, _ what: @autoclosure () -> String = "a size") throws -> Int {
        let (r, o) = a.multipliedReportingOverflow(by: b)
        guard !o else { throw ModelLimitError("\(what()) overflows 64 bits (\(a) x \(b))") }
        return r
    }

    /// Sum of several terms (e.g. a dimension plus its pads).
    public static func sum(_ xs: [Int], _ what: @autoclosure () -> String = "a size") throws -> Int {
        var s = 0
        for x in xs { s = try add(s, x, what()) }
        return s
    }

    /// The element count of a shape; an error when the product does not fit in 64 bits.
    public static func product<S: Sequence>(_ dims: S, _ what: @autoclosure () -> String = "the element count") throws -> Int where S.Element == Int {
        var p = 1
        var zero = false
        for d in dims {
            if d == 0 { zero = true; continue }
            let (r, o) = p.multipliedReportingOverflow(by: d)
            guard !o else { throw ModelLimitError("\(what()) of the shape \(Array(dims)) overflows 64 bits") }
            p = r
        }
        return zero ? 0 : p
    }

    /// A Double (a scale, a float Range bound, a float-valued axis) as an Int; an error when it
    /// is NaN, infinite or beyond Int's range.
    public static func int(_ x: Double, _ what: @autoclosure () -> String = "a value") throws -> Int {
        guard x.isFinite else { throw ModelLimitError("\(what()) is \(x), not a finite number") }
        guard x >= -9.2e18, x <= 9.2e18 else { throw ModelLimitError("\(what()) \(x) is beyond the 64-bit integer range") }
        return Int(x)
    }

    /// An Int that must fit a 32-bit field (an element type code, a protobuf enum).
    public static func int32(_ x: Int, _ what: @autoclosure () -> String = "a value") throws -> Int32 {
        guard let r = Int32(exactly: x) else { throw ModelLimitError("\(what()) \(x) does not fit in 32 bits") }
        return r
    }

    /// Integer division that refuses a zero divisor.
    public static func div(_ a: Int, _ b: Int, _ what: @autoclosure () -> String = "a size") throws -> Int {
        guard b != 0 else { throw ModelLimitError("\(what()) divides by zero") }
        guard !(a == .min && b == -1) else { throw ModelLimitError("\(what()) overflows 64 bits (\(a) / \(b))") }
        return a / b
    }
}

/// Size limits that keep a hostile or absurd model from making sofie (or the code it emits)
/// allocate more than a machine has. Overridable per process (`sofie --max-tensor-bytes`).
public enum Limits {
    /// The largest tensor, weight file, fill or arena sofie accepts, in bytes (16 GiB).
    nonisolated(unsafe) public static var maxTensorBytes = 1 << 34

    /// Checks a tensor's element count and byte size against the budget.
    public static func checkTensor(_ shape: [Int], _ type: DataType, _ what: @autoclosure () -> String) throws {
        for d in shape where d < 0 { throw ModelLimitError("\(what()) has a negative dimension \(d) in \(shape)") }
        let n = try Checked.product(shape, "the element count of \(what())")
        // Types without a fixed element size (strings) are budgeted at 8 bytes an element,
        // the size of the reference each element needs at least.
        let bytes: Int
        if type == .string || type == .undefined {
            let (b, overflow) = n.multipliedReportingOverflow(by: 8)
            bytes = overflow ? Int.max : b
        } else {
            bytes = type.rawByteCount(elements: n) ?? Int.max
        }
        guard bytes <= maxTensorBytes else {
            throw ModelLimitError("\(what()) of shape \(shape) would take \(bytes) bytes, more than the \(maxTensorBytes)-byte limit (--max-tensor-bytes)")
        }
    }
}
