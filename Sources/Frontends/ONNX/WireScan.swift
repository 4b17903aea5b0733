import Foundation

/// A pre-scan of a serialized ONNX message, run before protobuf-c unpacks it. protobuf-c
/// decodes nested messages recursively, so a file of a few KB nesting subgraphs 10,000 deep
/// (or sequence types 100,000 deep) overflows the stack inside the library. This scan walks
/// the same bytes with an explicit stack, following only the fields of ONNX's schema that can
/// nest without bound, and refuses messages nested deeper than `maxDepth` levels. It also
/// refuses malformed wire data early (a length running past its message), so the scan is
/// linear in the file size and never trusts a length.
enum WireScan {
    /// The ONNX messages on a recursive path (others nest at most a few levels).
    enum Kind { case model, graph, node, attribute, function, valueInfo, type, typeWrapper, mapType, trainingInfo }

    /// Which field of `kind` holds which nested message (only fields on a recursive path).
    static func child(_ kind: Kind, _ field: UInt64) -> Kind? {
        switch (kind, field) {
        case (.model, 7): return .graph
        case (.model, 25): return .function
        case (.model, 20): return .trainingInfo
        case (.trainingInfo, 1), (.trainingInfo, 2): return .graph
        case (.graph, 1): return .node
        case (.graph, 11), (.graph, 12), (.graph, 13): return .valueInfo
        case (.node, 5): return .attribute
        case (.attribute, 6), (.attribute, 11): return .graph
        case (.attribute, 14), (.attribute, 15): return .type
        case (.function, 7): return .node
        case (.function, 11): return .attribute
        case (.function, 12): return .valueInfo
        case (.valueInfo, 2): return .type
        case (.type, 4), (.type, 9): return .typeWrapper  // sequence_type, optional_type: elem_type = 1
        case (.type, 5): return .mapType  // map_type: value_type = 2
        case (.typeWrapper, 1): return .type
        case (.mapType, 2): return .type
        default: return nil
        }
    }

    struct Failure: Error { let message: String }

    /// Throws when the message nests deeper than `maxDepth` or its wire data is malformed.
    static func check(_ bytes: UnsafeRawBufferPointer, root: Kind = .model, maxDepth: Int) throws {
        guard let base = bytes.baseAddress?.assumingMemoryBound(to: UInt8.self) else { return }
        // Each frame: the kind of message and where it ends.
        var stack: [(kind: Kind, end: Int)] = [(root, bytes.count)]
        var pos = 0
        func varint() throws -> UInt64 {
            var result: UInt64 = 0
            var shift: UInt64 = 0
            while true {
                guard pos < stack.last!.end else { throw Failure(message: "the protobuf data is truncated or corrupt") }
                let b = base[pos]
                pos += 1
                if shift < 64 { result |= UInt64(b & 0x7f) << shift }
                if b & 0x80 == 0 { return result }
                shift += 7
                guard shift < 70 else { throw Failure(message: "the protobuf data is truncated or corrupt") }
            }
        }
        while let top = stack.last {
            if pos >= top.end {
                stack.removeLast()
                continue
            }
            let key = try varint()
            let field = key >> 3
            let end = top.end
            switch key & 7 {
            case 0: _ = try varint()
            case 1: pos += 8
            case 5: pos += 4
            case 2:
                let len = try varint()
                guard len <= UInt64(end - pos) else { throw Failure(message: "the protobuf data is truncated or corrupt") }
                if let kind = child(top.kind, field) {
                    guard stack.count < maxDepth else {
                        throw Failure(message: "its messages nest more than \(maxDepth) levels deep (subgraphs or types nested without bound)")
                    }
                    stack.append((kind, pos + Int(len)))
                } else {
                    pos += Int(len)
                }
            default:
                throw Failure(message: "the protobuf data is truncated or corrupt")
            }
            guard pos <= end else { throw Failure(message: "the protobuf data is truncated or corrupt") }
        }
    }
}
