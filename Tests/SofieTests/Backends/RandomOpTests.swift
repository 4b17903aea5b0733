import Foundation
import SofieDriver
import SofieIR
import XCTest

/// RandomNormal, RandomUniform(Like) and Bernoulli: no other generator reproduces ONNX
/// Runtime's or numpy's draws, so they are checked as distributions (20,000 draws: means and
/// spreads within 4 standard errors, bounds), as deterministic per Session (two Sessions give
/// the same values) and as fresh per call (a second call differs).
final class RandomOpTests: XCTestCase {
    func testDistributionsAndDeterminism() throws {
        let n = 20_000
        let g = Graph(name: "random")
        let p = Value(name: "p", type: .tensor(TensorType(.float, fixed: [n])))
        g.inputs = [p]
        let normal = Value(name: "normal"), uniform = Value(name: "uniform"), like = Value(name: "like"), coin = Value(name: "coin")
        g.appendNode(Node(opType: "RandomNormal", name: "rn", outputs: [normal],
                          attributes: [Attribute("shape", .ints([Int64(n)])), Attribute("mean", .float(1)), Attribute("scale", .float(2))]))
        g.appendNode(Node(opType: "RandomUniform", name: "ru", outputs: [uniform],
                          attributes: [Attribute("shape", .ints([Int64(n)])), Attribute("low", .float(-1)), Attribute("high", .float(3)), Attribute("seed", .float(7))]))
        g.appendNode(Node(opType: "RandomUniformLike", name: "rul", inputs: [p], outputs: [like], attributes: []))
        g.appendNode(Node(opType: "Bernoulli", name: "bern", inputs: [p], outputs: [coin], attributes: [Attribute("dtype", .int(Int64(DataType.int32.rawValue)))]))
        g.outputs = [normal, uniform, like, coin]
        let model = Model(graph: g)
        model.opsetImports = [OpsetImport(domain: "", version: 22)]
        let dir = try TestSupport.tempDir("random-ops")
        var options = Compiler.Options(name: "model")
        options.weights = .embed
        let emitted = try Compiler.compile(model, source: "random.onnx", directory: dir, options: options)
        try Data([Float](repeating: 0.3, count: n).flatMap { withUnsafeBytes(of: $0, Array.init) }).write(to: URL(fileURLWithPath: "\(dir)/in0.bin"))
        func run(threads: Int, repeats: Int) throws {
            let driver = CppHarness.singleModelDriver(header: emitted.header, namespace: emitted.namespace, dir: dir, weights: nil, threads: threads, repeats: repeats)
            try driver.write(toFile: "\(dir)/main.cpp", atomically: true, encoding: .utf8)
            let errors = CppHarness.build([("\(dir)/main.cpp", "\(dir)/main")], flags: CppHarness.warningFlags + ["-O1", "-pthread", "-fsanitize=address,undefined", "-fno-sanitize-recover=all"])
            XCTAssertTrue(errors.isEmpty, "\(errors)")
            let r = try TestSupport.run("\(dir)/main", [], check: false)
            XCTAssertEqual(r.status, 0, r.output)
        }
        func floats(_ file: String) throws -> [Double] {
            try Data(contentsOf: URL(fileURLWithPath: "\(dir)/\(file)")).withUnsafeBytes { Array($0.bindMemory(to: Float.self)).map(Double.init) }
        }
        func stats(_ v: [Double]) -> (mean: Double, std: Double) {
            let m = v.reduce(0, +) / Double(v.count)
            return (m, (v.map { ($0 - m) * ($0 - m) }.reduce(0, +) / Double(v.count)).squareRoot())
        }
        // Two Sessions in two threads: the same draws.
        try run(threads: 2, repeats: 1)
        for k in 0..<4 {
            XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: "\(dir)/out\(k)_t0.bin")), try Data(contentsOf: URL(fileURLWithPath: "\(dir)/out\(k)_t1.bin")), "output \(k) differs between Sessions")
        }
        let nm = stats(try floats("out0_t0.bin")), un = try floats("out1_t0.bin"), ul = try floats("out2_t0.bin")
        let se = 2.0 / Double(n).squareRoot()
        XCTAssertEqual(nm.mean, 1, accuracy: 4 * se)
        XCTAssertEqual(nm.std, 2, accuracy: 4 * se)
        XCTAssertTrue(un.allSatisfy { $0 >= -1 && $0 < 3 })
        XCTAssertEqual(stats(un).mean, 1, accuracy: 4 * 4 / 12.0.squareRoot() / Double(n).squareRoot())
        XCTAssertEqual(stats(un).std, 4 / 12.0.squareRoot(), accuracy: 0.03)
        XCTAssertTrue(ul.allSatisfy { $0 >= 0 && $0 < 1 })
        XCTAssertNotEqual(un.map { ($0 + 1) / 4 }.prefix(100).map { Float($0) }, ul.prefix(100).map { Float($0) }, "seeded and unseeded draws coincide")
        let coins = try Data(contentsOf: URL(fileURLWithPath: "\(dir)/out3_t0.bin")).withUnsafeBytes { Array($0.bindMemory(to: Int32.self)) }
        XCTAssertTrue(coins.allSatisfy { $0 == 0 || $0 == 1 })
        let rate = Double(coins.reduce(0, +)) / Double(n)
        XCTAssertEqual(rate, 0.3, accuracy: 4 * (0.3 * 0.7 / Double(n)).squareRoot())
        // A second call of the same Session draws afresh.
        let first = try floats("out0_t0.bin")
        try run(threads: 1, repeats: 2)
        XCTAssertNotEqual(try floats("out0.bin"), first, "the second call repeated the first call's draws")
    }
}
