import Foundation

/// NumPy's `.npy` format (format versions 1, 2 and 3): a magic string, a header that is a Python
/// dict literal {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }, then the elements.
/// Reading accepts little- and big-endian data and C or Fortran order and returns a Tensor in
/// the IR's layout (C order, little-endian); object arrays, structured dtypes, strings and
/// complex numbers are refused. Writing produces version 1.0, C order, little-endian, which
/// `numpy.load` reads. Every number in a file is checked: the header length, each dimension,
/// the element count against Limits, and the data size against the file's.
public enum NPY {
    public struct FormatError: Error, CustomStringConvertible {
        public let description: String
    }

    static let magic: [UInt8] = [0x93] + Array("NUMPY".utf8)
    /// Longer headers are not written by NumPy for any shape the IR allows.
    static let maxHeaderBytes = 65_536

    /// The IR type of a NumPy type code (kind and size, e.g. "f4"), nil when the IR has none.
    static func dataType(kind: Character, size: Int) -> DataType? {
        switch (kind, size) {
        case ("f", 2): return .float16
        case ("f", 4): return .float
        case ("f", 8): return .double
        case ("i", 1): return .int8
        case ("i", 2): return .int16
        case ("i", 4): return .int32
        case ("i", 8): return .int64
        case ("u", 1): return .uint8
        case ("u", 2): return .uint16
        case ("u", 4): return .uint32
        case ("u", 8): return .uint64
        case ("b", 1): return .bool
        default: return nil
        }
    }

    static func typeCode(_ t: DataType) -> String? {
        switch t {
        case .float16: return "<f2"
        case .float: return "<f4"
        case .double: return "<f8"
        case .int8: return "|i1"
        case .int16: return "<i2"
        case .int32: return "<i4"
        case .int64: return "<i8"
        case .uint8: return "|u1"
        case .uint16: return "<u2"
        case .uint32: return "<u4"
        case .uint64: return "<u8"
        case .bool: return "|b1"
        default: return nil
        }
    }

    /// Reads a `.npy` file; errors name the file and what is wrong with it.
    public static func read(path: String, name: String = "") throws -> Tensor {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw FormatError(description: "\(path): cannot read the file")
        }
        do {
            return try decode(data, name: name)
        } catch let e as FormatError {
            throw FormatError(description: "\(path): \(e.description)")
        } catch let e as ModelLimitError {
            throw FormatError(description: "\(path): \(e.description)")
        }
    }

    public static func decode(_ data: Data, name: String = "") throws -> Tensor {
        let bytes = [UInt8](data)
        guard bytes.count >= 10, Array(bytes[0..<6]) == magic else {
            throw FormatError(description: "not a .npy file (it does not start with \\x93NUMPY)")
        }
        let major = bytes[6]
        let headerLength: Int, start: Int
        switch major {
        case 1:
            headerLength = Int(bytes[8]) | Int(bytes[9]) << 8
            start = 10
        case 2, 3:
            guard bytes.count >= 12 else { throw FormatError(description: "the file ends inside its header") }
            headerLength = Int(bytes[8]) | Int(bytes[9]) << 8 | Int(bytes[10]) << 16 | Int(bytes[11]) << 24
            start = 12
        default:
            throw FormatError(description: "format version \(major).\(bytes[7]) is not one of NumPy's (1, 2 or 3)")
        }
        guard headerLength <= maxHeaderBytes else {
            throw FormatError(description: "the header claims \(headerLength) bytes (more than \(maxHeaderBytes))")
        }
        guard bytes.count >= start + headerLength else { throw FormatError(description: "the file ends inside its header") }
        let header = String(decoding: bytes[start..<start + headerLength], as: UTF8.self)
        let h = try parseHeader(header)

        let descr = h.descr
        guard descr.count >= 3, let order = descr.first, "<>|=".contains(order) else {
            throw FormatError(description: "dtype '\(descr)' is not a plain numeric type (object, structured and string arrays are not read)")
        }
        let kind = descr[descr.index(after: descr.startIndex)]
        guard let size = Int(descr.dropFirst(2)), let type = dataType(kind: kind, size: size) else {
            throw FormatError(description: "dtype '\(descr)' is not supported (floating point, signed and unsigned integers and bool are)")
        }
        for d in h.shape where d < 0 { throw FormatError(description: "the shape \(h.shape) has a negative dimension") }
        try Limits.checkTensor(h.shape, type, "the array")
        let count = try Checked.product(h.shape)
        let byteCount = try Checked.mul(count, size)
        let payload = start + headerLength
        guard bytes.count - payload == byteCount else {
            throw FormatError(description: "shape \(h.shape) of \(descr) needs \(byteCount) data bytes, the file has \(bytes.count - payload)")
        }
        let bigEndian = order == ">" && size > 1
        let storage = ByteStorage(count: byteCount) { dst in
            let out = dst.bindMemory(to: UInt8.self)
            if !h.fortranOrder && !bigEndian {
                bytes.withUnsafeBufferPointer { src in
                    for i in 0..<byteCount { out[i] = src[payload + i] }
                }
                if type == .bool { for i in 0..<byteCount where out[i] > 1 { out[i] = 1 } }
                return
            }
            // Element e of the file (in its order) goes to element cIndex(e) of the tensor.
            let strides = h.fortranOrder ? NDArray.strides(h.shape) : []
            var index = [Int](repeating: 0, count: h.shape.count)  // Fortran-order position
            for e in 0..<count {
                var target = e
                if h.fortranOrder {
                    target = 0
                    for k in 0..<index.count { target += index[k] * strides[k] }
                    for k in 0..<index.count {  // first index varies fastest
                        index[k] += 1
                        if index[k] < h.shape[k] { break }
                        index[k] = 0
                    }
                }
                let src = payload + e * size, d = target * size
                for b in 0..<size { out[d + b] = bytes[src + (bigEndian ? size - 1 - b : b)] }
            }
            // NumPy's bool is one byte, 0 or 1; any other byte value reads as true.
            if type == .bool { for i in 0..<byteCount where out[i] > 1 { out[i] = 1 } }
        }
        return Tensor(name: name, dataType: type, dims: h.shape, data: .raw(storage))
    }

    struct Header { var descr: String; var fortranOrder: Bool; var shape: [Int] }

    /// Parses the dict literal NumPy writes; only the three keys and the value forms it uses.
    static func parseHeader(_ text: String) throws -> Header {
        var s = Substring(text.trimmingCharacters(in: .whitespacesAndNewlines))
        func fail(_ why: String) -> FormatError { FormatError(description: "header \(text.prefix(120).debugDescription): \(why)") }
        func skipSpace() { while let c = s.first, c == " " || c == "\n" || c == "\t" { s.removeFirst() } }
        func expect(_ c: Character) throws {
            skipSpace()
            guard s.first == c else { throw fail("expected '\(c)'") }
            s.removeFirst()
        }
        func string() throws -> String {
            skipSpace()
            guard let q = s.first, q == "'" || q == "\"" else { throw fail("expected a quoted string") }
            s.removeFirst()
            guard let end = s.firstIndex(of: q) else { throw fail("unterminated string") }
            let v = String(s[..<end])
            s = s[s.index(after: end)...]
            return v
        }
        var descr: String?, fortran: Bool?, shape: [Int]?
        try expect("{")
        while true {
            skipSpace()
            if s.first == "}" { s.removeFirst(); break }
            let key = try string()
            try expect(":")
            skipSpace()
            switch key {
            case "descr":
                guard s.first == "'" || s.first == "\"" else { throw fail("'descr' is not a simple type string (structured arrays are not read)") }
                descr = try string()
            case "fortran_order":
                if s.hasPrefix("True") { fortran = true; s.removeFirst(4) } else if s.hasPrefix("False") { fortran = false; s.removeFirst(5) } else { throw fail("'fortran_order' is neither True nor False") }
            case "shape":
                try expect("(")
                var dims: [Int] = []
                while true {
                    skipSpace()
                    if s.first == ")" { s.removeFirst(); break }
                    var digits = ""
                    while let c = s.first, c.isASCII, c.isNumber || c == "-" || c == "L" { if c != "L" { digits.append(c) }; s.removeFirst() }
                    guard digits.count <= 19, let d = Int(digits) else { throw fail("a dimension is not an integer") }
                    dims.append(d)
                    guard dims.count <= 64 else { throw fail("more than 64 dimensions") }
                    skipSpace()
                    if s.first == "," { s.removeFirst() }
                }
                shape = dims
            default:
                throw fail("unknown key '\(key)'")
            }
            skipSpace()
            if s.first == "," { s.removeFirst() }
        }
        guard let d = descr, let f = fortran, let sh = shape else { throw fail("'descr', 'fortran_order' and 'shape' are all required") }
        return Header(descr: d, fortranOrder: f, shape: sh)
    }

    /// The bytes of a `.npy` file (version 1.0, C order, little-endian) holding the tensor.
    public static func encode(_ t: Tensor) throws -> [UInt8] {
        guard let code = typeCode(t.dataType) else {
            throw FormatError(description: "tensor '\(t.name)' of type \(t.dataType) has no .npy form here")
        }
        guard let raw = t.rawBytes else { throw FormatError(description: "tensor '\(t.name)' has no raw data") }
        let shape = t.dims.count == 1 ? "(\(t.dims[0]),)" : "(" + t.dims.map(String.init).joined(separator: ", ") + ")"
        var header = "{'descr': '\(code)', 'fortran_order': False, 'shape': \(shape), }"
        // Magic, version, 2-byte length, header: padded with spaces to a multiple of 64, ending in '\n'.
        let unpadded = 10 + header.utf8.count + 1
        header += String(repeating: " ", count: (64 - unpadded % 64) % 64) + "\n"
        guard header.utf8.count <= 65_535 else { throw FormatError(description: "tensor '\(t.name)' has too many dimensions for a .npy 1.0 header") }
        var out = magic + [1, 0, UInt8(header.utf8.count & 0xff), UInt8(header.utf8.count >> 8)]
        out += Array(header.utf8)
        out += Array(raw)
        return out
    }

    /// Writes the tensor as a `.npy` file, atomically (a temporary file renamed into place).
    public static func write(_ t: Tensor, to path: String) throws {
        let bytes = try encode(t)
        try bytes.withUnsafeBytes { try AtomicFile.write($0, to: path) }
    }
}
