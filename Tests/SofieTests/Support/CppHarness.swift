import Foundation
import SofieIR
import XCTest

/// Builds and runs emitted C++ with the machine's real compiler.
enum CppHarness {
    static var compiler: String { ProcessInfo.processInfo.environment["CXX"] ?? "g++" }
    static let warningFlags = ["-std=c++17", "-Wall", "-Wextra", "-Werror"]
    /// For suites that check numbers at a plain -O1/-O2: only the runtime the flags target (the
    /// portable 16-byte vectors, what Clang, NEON and -DSOFIE_NO_DISPATCH builds run), not the
    /// AVX-512 and AVX2 copies and twins of `run` besides it, which cost a quarter to a half
    /// more compile time and which GeneratedCodeTests builds and runs on their own; the
    /// -march=native suites (PyTorchExportTests, RealModelTests) run the widest kernels.
    static let oneRuntimeCopy = ["-DSOFIE_NO_DISPATCH"]

    /// An emitted header without the twins of its run methods (the same bodies again for each
    /// dispatch target, AVX-512 and AVX2, for builds without them): what a test counts calls in.
    /// Checks that the twins are there.
    static func withoutDispatchTwins(_ header: String) -> String {
        var text = header
        for label in ["AVX-512", "AVX2 + FMA"] {
            guard let start = text.range(of: "  // the run methods again, for CPUs with \(label)\n"),
                  let end = text.range(of: "#pragma GCC pop_options\n#endif\n", range: start.upperBound..<text.endIndex) else {
                XCTFail("the header has no \(label) twins of its run methods")
                return header
            }
            text = String(text[..<start.lowerBound] + text[end.upperBound...])
        }
        return text
    }

    /// Compiles `sources` (one executable each) with up to `jobs` compilers at once.
    static func build(_ jobs: [(source: String, binary: String)], flags: [String], parallel: Int = 2,
                      compiler: String = CppHarness.compiler) -> [String: String] {
        let byBinary = buildVariants(jobs.map { ($0.source, $0.binary, compiler, flags) }, parallel: parallel)
        // Keyed by source, as callers look them up.
        return Dictionary(jobs.compactMap { job in byBinary[job.binary].map { (job.source, $0) } }, uniquingKeysWith: { a, _ in a })
    }

    /// Sources built with their own compiler and flags each (one source several ways, say), up
    /// to `parallel` at once; the errors by binary path.
    static func buildVariants(_ jobs: [(source: String, binary: String, compiler: String, flags: [String])], parallel: Int = 2) -> [String: String] {
        var errors: [String: String] = [:]
        let lock = NSLock()
        DispatchQueue.concurrentPerform(iterations: parallel) { worker in
            for (i, job) in jobs.enumerated() where i % parallel == worker {
                let r = try? TestSupport.run("/usr/bin/env", [job.compiler] + job.flags + [job.source, "-o", job.binary], check: false)
                if r == nil || r!.status != 0 {
                    lock.lock()
                    errors[job.binary] = r?.output ?? "could not start \(job.compiler)"
                    lock.unlock()
                }
            }
        }
        return errors
    }

    /// Writes raw little-endian bytes of a tensor.
    /// Sub-byte tensors (int4, float4e2m1, ...) are written one value per byte, as the emitted
    /// code takes them.
    static func writeRaw(_ t: Tensor, to path: String) throws {
        if t.dataType.isSubByte, let unpacked = t.unpackedSubBytes() { try Data(unpacked).write(to: URL(fileURLWithPath: path)); return }
        guard let raw = t.rawBytes else { throw NSError(domain: "CppHarness", code: 1, userInfo: [NSLocalizedDescriptionKey: "string tensor"]) }
        try Data(raw).write(to: URL(fileURLWithPath: path))
    }

    /// Compares produced raw bytes with an expected tensor: floats with |a-b| <= atol + rtol*|b|
    /// (NaN matches NaN), everything else exactly. Returns a description of the first mismatch.
    /// float16/bfloat16/float8 outputs are decoded and compared as numbers; `ulps` allows that many
    /// units in the last place of their type besides (0: exact up to atol/rtol).
    static func compare(_ produced: Data, _ expected: Tensor, rtol: Double = 1e-4, atol: Double = 1e-5, ulps: Double = 0) -> String? {
        if expected.dataType.isSubByte || expected.dataType == .float8e8m0 {
            // One value per byte: the integers exactly; float4e2m1 and float8e8m0 as the
            // numbers their codes stand for (so -0 matches +0, NaN matches NaN).
            guard let codes = expected.dataType == .float8e8m0 ? expected.rawBytes.map(Array.init) : expected.unpackedSubBytes() else { return "expected tensor is not numeric" }
            guard produced.count == codes.count else { return "produced \(produced.count) bytes, expected \(codes.count) (one per element)" }
            func number(_ b: UInt8) -> Double {
                switch expected.dataType {
                case .float4e2m1:
                    let m = [0, 0.5, 1, 1.5, 2, 3, 4, 6][Int(b & 7)]
                    return b & 8 != 0 ? -m : m
                case .float8e8m0: return b == 0xff ? .nan : Double(sign: .plus, exponent: Int(b) - 127, significand: 1)
                default: return Double(Int8(bitPattern: b))
                }
            }
            for (i, (a, b)) in zip(produced, codes).enumerated() {
                let x = number(a), y = number(b)
                if x == y || (x.isNaN && y.isNaN) { continue }
                return "element \(i): got \(x) (code \(a)), expected \(y) (code \(b)) (element type \(expected.dataType))"
            }
            return nil
        }
        guard let raw = expected.rawBytes else { return "expected tensor is not numeric" }
        guard produced.count == raw.count else { return "produced \(produced.count) bytes, expected \(raw.count)" }
        let reduced = ReducedFloatFormat(expected.dataType)
        func check<T>(_: T.Type, _ toDouble: (T) -> Double) -> String? {
            let n = raw.count / MemoryLayout<T>.size
            return produced.withUnsafeBytes { p -> String? in
                for i in 0..<n {
                    let a = toDouble(p.loadUnaligned(fromByteOffset: i * MemoryLayout<T>.size, as: T.self))
                    let b = toDouble(raw.loadUnaligned(fromByteOffset: i * MemoryLayout<T>.size, as: T.self))
                    if a.isNaN && b.isNaN { continue }
                    if a == b { continue }
                    if !(abs(a - b) <= atol + rtol * abs(b) + ulps * (reduced?.ulp(at: b) ?? 0)) { return "element \(i): got \(a), expected \(b)" }
                }
                return nil
            }
        }
        switch expected.dataType {
        case .float: return check(Float.self) { Double($0) }
        case .double: return check(Double.self) { $0 }
        case .float16, .bfloat16: return check(UInt16.self) { reduced!.decode(UInt32($0)) }
        case .float8e4m3fn, .float8e4m3fnuz, .float8e5m2, .float8e5m2fnuz: return check(UInt8.self) { reduced!.decode(UInt32($0)) }
        default:
            if produced.elementsEqual(raw) { return nil }
            let i = zip(produced, raw).enumerated().first { $0.element.0 != $0.element.1 }?.offset ?? 0
            return "byte \(i) differs (element type \(expected.dataType))"
        }
    }

    /// Input and output types and element counts, read back from the header's documentation.
    static func signature(_ header: String) -> (inputs: [(type: String, count: Int)], outputs: [(type: String, count: Int)]) {
        var ins: [(String, Int)] = [], outs: [(String, Int)] = []
        var section = 0
        for line in header.split(separator: "\n").prefix(400) {
            if line.hasPrefix("// Inputs:") { section = 1; continue }
            if line.hasPrefix("// Outputs:") { section = 2; continue }
            if line.hasPrefix("// Weights:") { break }
            guard section > 0, let colon = line.firstIndex(of: ":"), let br = line.firstIndex(of: "["), let close = line.firstIndex(of: "]") else { continue }
            let type = line[line.index(after: colon)..<br].trimmingCharacters(in: .whitespaces)
            let dims = line[line.index(after: br)..<close].split(separator: "x").compactMap { Int($0) }
            let entry = (type, dims.reduce(1, *))
            if section == 1 { ins.append(entry) } else { outs.append(entry) }
        }
        return (ins, outs)
    }

    /// The outputs' element counts as C++ expressions after `infer` on `session`: a length that
    /// run-time values choose (`Y_len (at most 6)` in the header's list) reads
    /// `session->last_Y_len()`; `bound` is the count with every such length at its largest.
    static func outputCounts(_ header: String, session: String) -> [(bound: Int, expr: String)] {
        var out: [(Int, String)] = []
        var section = 0
        for line in header.split(separator: "\n").prefix(400) {
            if line.hasPrefix("// Outputs:") { section = 2; continue }
            if line.hasPrefix("// Computed from") || line.hasPrefix("// Weights:") { if section == 2 { break } else { continue } }
            guard section == 2, let br = line.firstIndex(of: "["), let close = line[br...].firstIndex(of: "]") else { continue }
            // "3x4", or "Y_len x 3 (at most 6x3)": the symbols' lengths, then their product's bound.
            let text = String(line[line.index(after: br)..<close])
            let parts = text.components(separatedBy: " (at most ")
            var bound = 1, factors: [String] = []
            if parts.count == 2 {
                bound = parts[1].dropLast().split(separator: "x").compactMap { Int($0) }.reduce(1, *)
                for t in parts[0].components(separatedBy: " x ") {
                    factors.append(Int(t) != nil ? t : "\(session)->last_\(t)()")
                }
            } else {
                let dims = text.split(separator: "x").compactMap { Int($0) }
                bound = dims.reduce(1, *)
                factors = dims.map(String.init)
            }
            out.append((bound, factors.isEmpty ? "1" : factors.joined(separator: " * ")))
        }
        return out
    }

    /// C++ helpers of the test drivers: load/save raw little-endian arrays (a missing or short
    /// file ends the program with status 2), and Buf<T>, the byte type booleans travel as
    /// (std::vector<bool> has no data()).
    static let ioHelpers = #"""
    #include <cstdio>
    #include <cstdlib>
    #include <fstream>
    #include <string>
    #include <vector>
    namespace {
    template <class T> std::vector<T> load(const std::string& path, std::size_t n) {
        std::vector<T> v(n);
        std::ifstream f(path, std::ios::binary);
        if (n && !f.read(reinterpret_cast<char*>(v.data()), static_cast<std::streamsize>(n * sizeof(T)))) { std::fprintf(stderr, "cannot read %s\n", path.c_str()); std::exit(2); }
        return v;
    }
    template <class T> void save(const std::string& path, const T* p, std::size_t n) {
        std::ofstream f(path, std::ios::binary);
        f.write(reinterpret_cast<const char*>(p), static_cast<std::streamsize>(n * sizeof(T)));
    }
    template <class T> struct Buf { using type = T; };
    template <> struct Buf<bool> { using type = unsigned char; };
    }  // namespace

    """#

    /// A main() that runs one model on in<k>.bin files of `dir` and writes out<k>.bin; with
    /// `threads` > 1, that many Sessions run concurrently and each writes out<k>_t<i>.bin.
    static func singleModelDriver(header: String, namespace ns: String, dir: String, weights: String?, threads: Int = 1, repeats: Int = 1) -> String {
        let sig = signature(header)
        var s = "#include \"\(ns).hxx\"\n#include <thread>\n" + ioHelpers
        s += """
        static void work(int id) {

        """
        s += "    \(ns)::Session session\(weights.map { "(\"\($0)\")" } ?? "");\n"
        var args: [String] = []
        for (k, t) in sig.inputs.enumerated() {
            // Buf<T>: booleans travel as bytes (std::vector<bool> has no data()).
            s += "    auto in\(k) = load<Buf<\(t.type)>::type>(\"\(dir)/in\(k).bin\", \(t.count));\n"
            args.append("reinterpret_cast<const \(t.type)*>(in\(k).data())")
        }
        for (k, t) in sig.outputs.enumerated() {
            s += "    std::vector<Buf<\(t.type)>::type> out\(k)(\(t.count));\n"
            args.append("reinterpret_cast<\(t.type)*>(out\(k).data())")
        }
        s += "    for (int r = 0; r < \(repeats); ++r) session.infer(\(args.joined(separator: ", ")));\n"
        for (k, t) in sig.outputs.enumerated() {
            s += "    save(\"\(dir)/out\(k)\" + (\(threads) > 1 ? \"_t\" + std::to_string(id) : std::string()) + \".bin\", out\(k).data(), \(t.count));\n"
        }
        s += "}\nint main() {\n    std::vector<std::thread> pool;\n    for (int i = 0; i < \(threads); ++i) pool.emplace_back(work, i);\n    for (auto& t : pool) t.join();\n    return 0;\n}\n"
        return s
    }
}
