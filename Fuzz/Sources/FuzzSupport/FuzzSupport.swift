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

    /// Snapshot input (the default) or libhdf5 in-process (SOFIE_FUZZ_LIBHDF5=1) for the HDF5
    /// targets.
    public static func chooseHDF5Input() {
        if ProcessInfo.processInfo.environment["SOFIE_FUZZ_LIBHDF5"] == "1" {
            HDF5Input.mode = .libhdf5InProcess
        } else {
            HDF5Input.mode = .snapshotBytes
        }
    }

    /// `TARGET --convert-seeds IN OUT`: rewrites seeds whose last part is an HDF5 file (a
    /// .h5 model, or [len][config.json][model.weights.h5]) into the snapshot form, reading them
    /// with libhdf5 in-process. Seeds libhdf5 cannot read are left out.
    public static func convertSeedsIfAsked(parts: Int) -> Bool {
        let args = CommandLine.arguments
        guard args.count == 4, args[1] == "--convert-seeds" else { return false }
        let fm = FileManager.default
        let files = ((try? fm.contentsOfDirectory(atPath: args[2])) ?? []).sorted()
        try? fm.createDirectory(atPath: args[3], withIntermediateDirectories: true)
        var written = 0
        for f in files {
            guard let data = fm.contents(atPath: args[2] + "/" + f) else { continue }
            var p = split([UInt8](data), parts: parts)
            guard let snap = try? HDF5Input.snapshot(ofHDF5: p[parts - 1], name: f) else { continue }
            p[parts - 1] = snap
            var out: [UInt8] = []
            for (i, part) in p.enumerated() {
                if i < parts - 1 { out += withUnsafeBytes(of: UInt32(part.count).littleEndian) { Array($0) } }
                out += part
            }
            if fm.createFile(atPath: args[3] + "/" + f, contents: Data(out)) { written += 1 }
        }
        print("\(written) of \(files.count) seeds converted to HDF5 snapshots in \(args[3])")
        return true
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
