import Foundation
import SofieBackends
import SofieFrontends
import SofieIR
import XCTest

/// Reading then writing keeps the graph: same nodes and attributes, byte-identical
/// initializers, and files that onnx.checker accepts (checked by an independent Python script).
final class RoundTripTests: XCTestCase {
    func roundTrip(_ models: [(name: String, path: String)], outDir: String) throws -> String {
        var pairs = ""
        var failures: [String] = []
        for (name, path) in models {
            do {
                let model = try ONNXReader.read(path: path)
                try Verifier.verify(model)
                let out = outDir + "/" + name + ".onnx"
                try ONNXWriter.write(model, to: out)
                // Our own reader on our own output must give the same IR again.
                let again = try ONNXReader.read(path: out)
                if let diff = IRComparison.difference(model.graph, again.graph) {
                    failures.append("\(name): re-read graph differs: \(diff)")
                }
                pairs += "\(path)\t\(out)\n"
            } catch {
                failures.append("\(name): \(error)")
            }
        }
        XCTAssertEqual(failures, [], "models that failed to round-trip")
        let pairsFile = outDir + "/pairs.tsv"
        try pairs.write(toFile: pairsFile, atomically: true, encoding: .utf8)
        let result = try TestSupport.run(TestSupport.python, [TestSupport.repoRoot + "/Tests/scripts/check_roundtrip.py", pairsFile], check: false)
        XCTAssertEqual(result.status, 0, result.output)
        return result.output
    }

    func testLightModelsRoundTrip() throws {
        try TestSupport.requirePython()
        let folder = try TestSupport.lightModelsFolder()
        let models = TestSupport.lightModels.map { ("light_\($0)", "\(folder)/light_\($0).onnx") }
        let summary = try roundTrip(models, outDir: try TestSupport.tempDir("roundtrip-light"))
        XCTAssertTrue(summary.contains("\(models.count) ok, 0 failed"), summary)
    }

    func testNodeTestsRoundTrip() throws {
        try TestSupport.requirePython()
        let folder = try TestSupport.nodeTestsFolder()
        let names = try TestSupport.subfolders(folder)
        XCTAssertGreaterThan(names.count, 1800, "expected ONNX's ~1,855 node tests")
        let models = names.map { ($0, "\(folder)/\($0)/model.onnx") }
        let summary = try roundTrip(models, outDir: try TestSupport.tempDir("roundtrip-node"))
        print("node-test round trip: \(summary.split(separator: "\n").last ?? "")")
        XCTAssertTrue(summary.contains("\(models.count) ok, 0 failed"), summary)
    }
}

/// Structural comparison of two IR graphs (names, ops, attributes, tensors).
enum IRComparison {
    static func difference(_ a: Graph, _ b: Graph) -> String? {
        guard a.nodes.count == b.nodes.count else { return "\(a.nodes.count) nodes vs \(b.nodes.count)" }
        guard a.inputs.map(\.name) == b.inputs.map(\.name), a.outputs.map(\.name) == b.outputs.map(\.name) else { return "inputs/outputs differ" }
        for (x, y) in zip(a.inputs + a.outputs, b.inputs + b.outputs) where x.type != y.type {
            return "type of '\(x.name)': \(String(describing: x.type)) vs \(String(describing: y.type))"
        }
        guard a.initializers.count == b.initializers.count else { return "initializer count differs" }
        for (x, y) in zip(a.initializers, b.initializers) {
            guard x.name == y.name, let tx = x.initializer, let ty = y.initializer, tx.sameContents(as: ty) else {
                return "initializer '\(x.name)' differs"
            }
        }
        for (n, m) in zip(a.nodes, b.nodes) {
            guard n.opType == m.opType, n.domain == m.domain, n.name == m.name,
                  n.inputs.map({ $0?.name }) == m.inputs.map({ $0?.name }),
                  n.outputs.map({ $0?.name }) == m.outputs.map({ $0?.name }),
                  n.attributes.map(\.name) == m.attributes.map(\.name) else { return "node \(n.label) differs" }
            for (x, y) in zip(n.attributes, m.attributes) {
                if let d = difference(x.value, y.value) { return "node \(n.label) attribute \(x.name): \(d)" }
            }
        }
        return nil
    }

    static func difference(_ x: AttributeValue, _ y: AttributeValue) -> String? {
        switch (x, y) {
        case (.float(let a), .float(let b)): return a.bitPattern == b.bitPattern ? nil : "\(a) vs \(b)"
        case (.int(let a), .int(let b)): return a == b ? nil : "\(a) vs \(b)"
        case (.string(let a), .string(let b)): return a == b ? nil : "strings differ"
        case (.floats(let a), .floats(let b)): return a.map(\.bitPattern) == b.map(\.bitPattern) ? nil : "floats differ"
        case (.ints(let a), .ints(let b)): return a == b ? nil : "ints differ"
        case (.strings(let a), .strings(let b)): return a == b ? nil : "strings differ"
        case (.tensor(let a), .tensor(let b)): return a.sameContents(as: b) ? nil : "tensor differs"
        case (.tensors(let a), .tensors(let b)):
            return a.count == b.count && zip(a, b).allSatisfy { $0.sameContents(as: $1) } ? nil : "tensors differ"
        case (.graph(let a), .graph(let b)): return difference(a, b)
        case (.graphs(let a), .graphs(let b)):
            guard a.count == b.count else { return "graph count differs" }
            for (g, h) in zip(a, b) { if let d = difference(g, h) { return d } }
            return nil
        case (.sparseTensor(let a), .sparseTensor(let b)):
            return a.values.sameContents(as: b.values) && a.indices.sameContents(as: b.indices) && a.dims == b.dims ? nil : "sparse differs"
        case (.type(let a), .type(let b)): return a == b ? nil : "type differs"
        case (.types(let a), .types(let b)): return a == b ? nil : "types differ"
        case (.sparseTensors(let a), .sparseTensors(let b)): return a.count == b.count ? nil : "sparse count differs"
        case (.reference(let a, let ka), .reference(let b, let kb)): return a == b && ka == kb ? nil : "reference differs"
        default: return "kind \(x.kind) vs \(y.kind)"
        }
    }
}
