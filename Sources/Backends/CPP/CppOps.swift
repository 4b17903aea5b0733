import Foundation
import SofieIR

/// Op type -> code generator. Each op family file contributes a table.
enum CppOps {
    typealias Emit = (EmitContext, Node) throws -> Void

    static let table: [String: Emit] = {
        var t: [String: Emit] = [:]
        for family in [CppElementwise.table, CppShape.table, CppReduce.table, CppNN.table, CppExtra.table, CppRecurrent.table, CppEinsum.table, CppAttention.table, CppQuant.table] {
            t.merge(family) { a, _ in a }
        }
        return t
    }()

    /// Code generators of our own org.sofie ops (fused forms the passes create).
    static let sofieTable: [String: Emit] = ["FusedConv": table["Conv"]!, "FusedGemm": table["Gemm"]!, "Gelu": table["Gelu"]!]
        .merging(CppBlocked.table) { a, _ in a }

    /// A C++ literal of `v` in type `t` (exact for float32 values, which print with 9 digits).
    static func literal(_ v: Double, _ t: DataType) -> String {
        switch t {
        case .float:
            let f = Float(v)
            if f.isNaN { return "std::numeric_limits<float>::quiet_NaN()" }
            if f.isInfinite { return f < 0 ? "-std::numeric_limits<float>::infinity()" : "std::numeric_limits<float>::infinity()" }
            return String(format: "%.9g", f).fixDoubleLiteral() + "f"
        case .double:
            if v.isNaN { return "std::numeric_limits<double>::quiet_NaN()" }
            if v.isInfinite { return v < 0 ? "-std::numeric_limits<double>::infinity()" : "std::numeric_limits<double>::infinity()" }
            return String(format: "%.17g", v).fixDoubleLiteral()
        case .bool: return v != 0 ? "true" : "false"
        case .int64:
            let i = Int64(exactly: v.rounded(.towardZero)) ?? 0
            return i == Int64.min ? "std::numeric_limits<int64_t>::min()" : "int64_t(\(i)LL)"
        case .uint64: return "uint64_t(\(UInt64(exactly: max(0, v.rounded(.towardZero))) ?? 0)ULL)"
        default: return "\(CppTypes.name(t)!)(\(Int64(exactly: v.rounded(.towardZero)) ?? 0))"
        }
    }

    static func intList(_ v: [Int]) -> String { "{" + v.map(String.init).joined(separator: ", ") + "}" }
}

extension String {
    /// "1" is an integer literal; make it "1.0" so that a suffix f makes a float literal.
    func fixDoubleLiteral() -> String {
        guard !contains("."), !contains("e"), !contains("n") else { return self }
        return self + ".0"
    }
}

extension EmitContext {
    /// Opens `{` ... `}` around a block of lines.
    func block(_ lines: () throws -> Void) rethrows {
        line("{")
        let start = body.count
        try lines()
        for i in start..<body.count where !body[i].isEmpty { body[i] = "    " + body[i] }
        line("}")
    }

    /// Lines emitted by `lines`, indented by `levels` × 4 spaces (inside a loop written by hand).
    func indented(_ levels: Int, _ lines: () throws -> Void) rethrows {
        let start = body.count
        try lines()
        let pad = String(repeating: " ", count: 4 * levels)
        for i in start..<body.count where !body[i].isEmpty { body[i] = pad + body[i] }
    }

    /// Emits nested loops over `shape` with index variables i0, i1, ...; `inner` gets them. An
    /// axis of extent 1 gets no loop: its index is the literal "0" (which `offset` drops), unless
    /// the body jumps (`continue`/`break` there must keep their loop).
    func loops(_ shape: [Int], prefix: String = "i", _ inner: ([String]) throws -> Void) rethrows {
        try loops(shape.map { DimExpr($0) }, prefix: prefix, inner)
    }

    /// `pointer + offset`, or the pointer alone when the offset is "0".
    static func at(_ pointer: String, _ offset: String) -> String { offset == "0" ? pointer : "\(pointer) + \(offset)" }

    /// Σ var_d * stride_d, skipping zero strides and literal-0 indices; "0" when empty.
    static func offset(_ vars: [String], _ strides: [Int], base: Int = 0) -> String {
        var terms = zip(vars, strides).filter { $0.1 != 0 && $0.0 != "0" }.map { $0.1 == 1 ? $0.0 : "\($0.0) * \($0.1)" }
        if base != 0 { terms.insert(String(base), at: 0) }
        return terms.isEmpty ? "0" : terms.joined(separator: " + ")
    }

    /// Strides of `inShape` broadcast against `outShape` (0 on broadcast axes).
    static func broadcastStrides(_ inShape: [Int], _ outShape: [Int]) -> [Int] {
        let padded = [Int](repeating: 1, count: outShape.count - inShape.count) + inShape
        let st = NDArray.strides(padded)
        return padded.indices.map { padded[$0] == 1 && outShape[$0] != 1 ? 0 : (padded[$0] == 1 ? 0 : st[$0]) }
    }

    /// out[i] = expr(inputs at their broadcast positions). `expr` gets one C++ expression per input.
    func elementwise(_ out: CTensor, _ ins: [CTensor], _ expr: ([String]) -> String) {
        block {
            for (k, t) in ins.enumerated() { line("const \(t.ctype)* const a\(k) = \(t.ptr);") }
            line("\(out.ctype)* const y = \(out.ptr);")
            let od = out.dims, oc = out.countExpr
            if ins.allSatisfy({ $0.countExpr == oc || $0.countExpr == 1 }) {
                let args = ins.enumerated().map { k, t in t.countExpr == 1 && oc != 1 ? "a\(k)[0]" : "a\(k)[i]" }
                line("for (int64_t i = 0; i < \(cpp(oc)); ++i) y[i] = static_cast<\(out.ctype)>(\(expr(args)));")
            } else {
                let strides = ins.map { Self.broadcastStrides($0.dims, od) }
                let ost = Self.strides(od)
                if let shape = od.map(\.constant) as? [Int], let st = ([ost] + strides).map({ $0.map(\.constant) }) as? [[Int]] {
                    broadcastLoops(shape, st) { v, at in
                        let args = ins.indices.map { "a\($0)[\(at($0 + 1))]" }
                        line("y[\(at(0))] = static_cast<\(out.ctype)>(\(expr(args)));")
                    }
                    return
                }
                loops(od) { v in
                    let args = strides.enumerated().map { k, s in "a\(k)[\(offset(v, s))]" }
                    line("y[\(offset(v, ost))] = static_cast<\(out.ctype)>(\(expr(args)));")
                }
            }
        }
    }

    /// Loops over a static broadcast: `strides[k]` are tensor k's strides over `shape` (0 where
    /// it broadcasts). Axes that every tensor walks contiguously together merge into one (a
    /// blocked [36, 7, 7, 16] times a [36, 1, 1, 16] scale runs as 36 x 49 x 16), and the
    /// innermost loop carries SOFIE_INNER_LOOP: GCC otherwise unrolls a short innermost loop
    /// (16 channels of a block) completely and then vectorizes the loop around it across pixels,
    /// with shuffles (MobileNetV3's squeeze-and-excitation Muls: run twice, they cost 125 µs more
    /// of its 1600; BENCHMARKS.md, 2026-12-07).
    /// `inner` gets the loop variables and each tensor's offset expression.
    func broadcastLoops(_ shape: [Int], _ strides: [[Int]], _ inner: ([String], (Int) -> String) -> Void) {
        // Merged axes, outermost first: extent and each tensor's stride.
        var axes: [(n: Int, st: [Int])] = []
        for d in shape.indices where shape[d] != 1 {
            let st = strides.map { $0[d] }
            if let last = axes.last, zip(last.st, st).allSatisfy({ $0.0 == $0.1 * shape[d] }) {
                axes[axes.count - 1] = (last.n * shape[d], st)
            } else {
                axes.append((shape[d], st))
            }
        }
        loops(axes.map { DimExpr($0.n) }, innermost: "SOFIE_INNER_LOOP ") { v in
            inner(v) { k in Self.offset(v, axes.map { $0.st[k] }) }
        }
    }

    /// Copies `src` into `dst` unless they are the same buffer.
    func copy(_ dst: CTensor, _ src: CTensor) {
        guard storage(of: dst) != storage(of: src) else { return }
        line("std::memcpy(\(dst.ptr), \(src.ptr), sizeof(\(dst.ctype)) * \(count(dst)));")
    }
}
