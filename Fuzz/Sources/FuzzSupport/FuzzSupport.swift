import Foundation
import SofieDriver
import SofieFrontends
import SofieIR

/// What every fuzz target does with one input: read it, and if the reader accepts it, verify it
/// and (for the compile target) run the whole pipeline to C++. Errors are the expected outcome;
/// a crash, hang, sanitizer report or allocation beyond libFuzzer's -rss_limit_mb is a finding.
public enum FuzzSupport {
    /// Smaller limits than the CLI's, so that one input stays fast (a file inlining 2^18 nodes
    /// is legal but takes a second); the limits' own checks are what gets exercised.
    public static func setUp() {
        ONNXReader.maxNodes = 4096
        Limits.maxTensorBytes = 1 << 28
    }

    public static func bytes(_ data: UnsafePointer<UInt8>, _ count: Int) -> [UInt8] {
        setUp()
        return Array(UnsafeBufferPointer(start: data, count: count))
    }

    /// Splits an input into parts, each prefixed by a 4-byte little-endian length (the last part
    /// takes the rest): the structure-aware form of a .keras archive (config.json, weights).
    public static func split(_ b: [UInt8], parts: Int) -> [[UInt8]] {
        var out: [[UInt8]] = []
        var pos = 0
        for _ in 0..<(parts - 1) {
            guard pos + 4 <= b.count else { out.append([]); continue }
            let n = Int(b[pos]) | Int(b[pos + 1]) << 8 | Int(b[pos + 2]) << 16 | Int(b[pos + 3]) << 24
            pos += 4
            let end = min(b.count, pos + n)
            out.append(Array(b[pos..<end]))
            pos = end
        }
        out.append(pos < b.count ? Array(b[pos...]) : [])
        return out
    }

    /// Runs the model through the checks the CLI's inspect and convert run.
    public static func exercise(_ model: Model, compile: Bool) {
        do {
            try Verifier.verify(model)
            if compile {
                _ = try Compiler.emit(model, options: Compiler.Options(name: "fuzz"), source: "fuzz.onnx")
            } else {
                try Compiler.optimize(model, passes: nil)
            }
        } catch {}
    }
}
