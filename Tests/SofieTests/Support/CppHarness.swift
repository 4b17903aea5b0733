import Foundation
import SofieIR
import XCTest

/// Builds and runs emitted C++ with the machine's real compiler.
enum CppHarness {
    static var compiler: String { ProcessInfo.processInfo.environment["CXX"] ?? "g++" }
    static let warningFlags = ["-std=c++17", "-Wall", "-Wextra", "-Werror"]

    /// Compiles `sources` (one executable each) with up to `jobs` compilers at once.
    static func build(_ jobs: [(source: String, binary: String)], flags: [String], parallel: Int = 2,
                      compiler: String = CppHarness.compiler) -> [String: String] {
        var errors: [String: String] = [:]
        let lock = NSLock()
        DispatchQueue.concurrentPerform(iterations: parallel) { worker in
            for (i, job) in jobs.enumerated() where i % parallel == worker {
                let path = "/usr/bin/env"
                let r = try? TestSupport.run(path, [compiler] + flags + [job.source, "-o", job.binary], check: false)
                if r == nil || r!.status != 0 {
                    lock.lock()
                    errors[job.source] = r?.output ?? "could not start \(compiler)"
                    lock.unlock()
                }
            }
        }
        return errors
    }

    /// Writes raw little-endian bytes of a tensor.
    static func writeRaw(_ t: Tensor, to path: String) throws {
        guard let raw = t.rawBytes else { throw NSError(domain: "CppHarness", code: 1, userInfo: [NSLocalizedDescriptionKey: "string tensor"]) }
        try Data(raw).write(to: URL(fileURLWithPath: path))
    }

    /// Compares produced raw bytes with an expected tensor: floats with |a-b| <= atol + rtol*|b|
    /// (NaN matches NaN), everything else exactly. Returns a description of the first mismatch.
    static func compare(_ produced: Data, _ expected: Tensor, rtol: Double = 1e-4, atol: Double = 1e-5) -> String? {
        guard let raw = expected.rawBytes else { return "expected tensor is not numeric" }
        guard produced.count == raw.count else { return "produced \(produced.count) bytes, expected \(raw.count)" }
        func check<T>(_: T.Type, _ toDouble: (T) -> Double) -> String? {
            let n = raw.count / MemoryLayout<T>.size
            return produced.withUnsafeBytes { p -> String? in
                for i in 0..<n {
                    let a = toDouble(p.loadUnaligned(fromByteOffset: i * MemoryLayout<T>.size, as: T.self))
                    let b = toDouble(raw.loadUnaligned(fromByteOffset: i * MemoryLayout<T>.size, as: T.self))
                    if a.isNaN && b.isNaN { continue }
                    if a == b { continue }
                    if !(abs(a - b) <= atol + rtol * abs(b)) { return "element \(i): got \(a), expected \(b)" }
                }
                return nil
            }
        }
        switch expected.dataType {
        case .float: return check(Float.self) { Double($0) }
        case .double: return check(Double.self) { $0 }
        default:
            if produced.elementsEqual(raw) { return nil }
            let i = zip(produced, raw).enumerated().first { $0.element.0 != $0.element.1 }?.offset ?? 0
            return "byte \(i) differs (element type \(expected.dataType))"
        }
    }
}
