import Foundation
import SofieBackends
import SofieDriver
import SofieFrontends
import SofieIR
import SofiePasses
import XCTest

/// Every Keras fixture (Tests/Fixtures/keras, made by make_fixtures.py with real Keras 3 and
/// tf-keras) converts in every format it was saved in; onnx.checker accepts the ONNX; ONNX
/// Runtime on it matches Keras; and the C++ emitted by the compile pipeline matches Keras too.
final class KerasFixtureTests: XCTestCase {
    struct Item {
        let fixture: String
        let dir: String
        let format: String
        var prefix: String { format == "model_k2.h5" ? "keras2" : "keras3" }
        var tag: String { fixture + "_" + format.replacingOccurrences(of: ".", with: "_") }
    }

    static var fixtures: String { TestSupport.repoRoot + "/Tests/Fixtures/keras" }

    func items() throws -> [Item] {
        var out: [Item] = []
        for name in try TestSupport.subfolders(Self.fixtures) where FileManager.default.fileExists(atPath: "\(Self.fixtures)/\(name)/meta.json") {
            let meta = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(Self.fixtures)/\(name)/meta.json"))) as! [String: Any]
            for f in meta["formats"] as! [String] { out.append(Item(fixture: name, dir: "\(Self.fixtures)/\(name)", format: f)) }
        }
        return out
    }

    func testFixtureCoverage() throws {
        let all = try items()
        XCTAssertGreaterThanOrEqual(Set(all.map(\.fixture)).count, 40)
        XCTAssertEqual(Set(all.map(\.format)), ["model.keras", "model_k3.h5", "model_k2.h5"])
    }

    /// Keras' interface survives: inputs in `input_layers` order (not the layer list's), outputs
    /// in `output_layers` order named after their layers, with static shapes after the default
    /// pipeline, in all three formats. (The numeric tests feed the same model's inputs by
    /// position, so a reordering would also fail them.)
    func testInputAndOutputOrderAndNamesFollowKeras() throws {
        for format in ["model.keras", "model_k3.h5", "model_k2.h5"] {
            let model = try ModelLoader.load(path: TestSupport.repoRoot + "/Tests/Fixtures/keras/input_order/" + format)
            try Compiler.optimize(model, passes: nil)
            XCTAssertEqual(model.graph.inputs.map(\.name), ["b", "a"], format)
            XCTAssertEqual(model.graph.outputs.map(\.name), ["head", "diff"], format)
            XCTAssertEqual(model.graph.inputs.map { $0.tensorType?.shape?.last }, [Dim.fixed(6), Dim.fixed(4)], format)
            XCTAssertEqual(model.graph.outputs.map { $0.tensorType?.shape?.last }, [Dim.fixed(2), Dim.fixed(3)], format)
        }
        let mlp = try ModelLoader.load(path: TestSupport.repoRoot + "/Tests/Fixtures/keras/mlp/model.keras")
        XCTAssertEqual(mlp.graph.outputs.map(\.name), ["dense_2"], "a Sequential model's output is named after its last layer")
    }

    /// Keras' batch-major sequences reach the recurrent ops through batch/time Transposes; the
    /// batch analysis follows the batch axis through them, so recurrent models get a run-time
    /// batch (they were compiled for a fixed batch of 1). The numeric test runs their blocks.
    func testRecurrentModelsGetARunTimeBatch() throws {
        let names = ["lstm", "gru", "simple_rnn", "bidirectional", "bidirectional_gru", "recurrent_sequences", "recurrent_activations"]
        for name in names {
            for format in ["model.keras", "model_k2.h5"] {
                let emitted = try Compiler.emit(try ModelLoader.load(path: "\(Self.fixtures)/\(name)/\(format)"), options: Compiler.Options(name: "r"), source: format)
                XCTAssertTrue(emitted.runtimeBatch, "\(name)/\(format)")
                XCTAssertTrue(emitted.header.contains("Transpose") || emitted.header.contains("LSTM") || emitted.header.contains("GRU") || emitted.header.contains("RNN"), "\(name)/\(format)")
            }
        }
    }

    /// fold-transposes flips whole layout regions: the ConvNeXt block (channels LayerNorm and
    /// Dense layers between convolutions) and the NASNet-style cell keep only the input's
    /// Transpose and the one a channels_last graph output needs (numerics: the tests below).
    func testLayoutRegionsKeepNoInnerTransposes() throws {
        for format in ["model.keras", "model_k3.h5", "model_k2.h5"] {
            let model = try ModelLoader.load(path: "\(Self.fixtures)/layout_regions/\(format)")
            let before = model.graph.nodes.filter { $0.opType == "Transpose" }.count
            try Compiler.optimize(model, passes: nil, verifyEach: true)
            let ops = model.graph.nodes.map(\.opType)
            XCTAssertGreaterThan(before, 10, format)
            XCTAssertEqual(ops.filter { $0 == "Transpose" }.count, 2, "\(format): \(ops)")
            XCTAssertFalse(ops.contains("LayerNormalization") || ops.contains("MatMul"), "\(format): channels LayerNorm and Dense run channels-first: \(ops)")
        }
    }

    func testConvertedFixturesMatchKerasThroughONNXRuntime() throws {
        try TestSupport.requirePython()
        let work = try TestSupport.tempDir("keras-onnx")
        var list = ""
        var failures: [String] = []
        for item in try items() {
            do {
                let model = try ModelLoader.load(path: "\(item.dir)/\(item.format)")
                try Verifier.verify(model)
                let out = "\(work)/\(item.tag).onnx"
                try ONNXWriter.write(model, to: out)
                list += "\(out)\t\(item.dir)\t\(item.prefix)\n"
                // The default optimization pipeline must keep the numbers too.
                try Compiler.optimize(model, passes: nil, verifyEach: true)
                let optimized = "\(work)/\(item.tag)_optimized.onnx"
                try ONNXWriter.write(model, to: optimized)
                list += "\(optimized)\t\(item.dir)\t\(item.prefix)\n"
                // The C++ pipeline's fusions (org.sofie FusedConv/FusedGemm), expanded back to
                // standard ONNX for writing, keep them as well.
                let fusedModel = try ModelLoader.load(path: "\(item.dir)/\(item.format)")
                try Compiler.optimize(fusedModel, passes: try PassRegistry.pipeline(names: PassRegistry.defaultPipeline), verifyEach: true)
                XCTAssertFalse(fusedModel.graph.nodes.contains(where: SofieOps.isSofie), item.tag)
                let expanded = "\(work)/\(item.tag)_fused_expanded.onnx"
                try ONNXWriter.write(fusedModel, to: expanded)
                list += "\(expanded)\t\(item.dir)\t\(item.prefix)\n"
            } catch {
                failures.append("\(item.tag): \(error)")
            }
        }
        XCTAssertEqual(failures, [])
        try list.write(toFile: work + "/list.tsv", atomically: true, encoding: .utf8)
        let r = try TestSupport.run(TestSupport.python, [TestSupport.repoRoot + "/Tests/scripts/check_keras_onnx.py", work + "/list.tsv"], check: false)
        print("Keras -> ONNX -> ONNX Runtime: \(r.output.split(separator: "\n").last ?? "")")
        XCTAssertEqual(r.status, 0, r.output)
    }

    func testCompiledFixturesMatchKeras() throws {
        let work = try TestSupport.tempDir("keras-cpp")
        var units: [(source: String, binary: String)] = []
        var members: [[Item]] = []
        var current = "#include <cstdio>\n#include <fstream>\n#include <string>\n#include <vector>\n"
        var currentItems: [Item] = []
        var body = ""
        var failures: [String] = []
        var blockBodies = 0
        func flush() throws {
            guard !currentItems.isEmpty else { return }
            let path = "\(work)/unit\(units.count).cpp"
            let src = current + CppHarness.ioHelpers + """
            int main() {
            \(body)    return 0;
            }

            """
            try src.write(toFile: path, atomically: true, encoding: .utf8)
            units.append((path, "\(work)/unit\(units.count)"))
            members.append(currentItems)
            current = "#include <cstdio>\n#include <fstream>\n#include <string>\n#include <vector>\n"
            currentItems = []
            body = ""
        }
        for (i, item) in try items().enumerated() {
            let meta = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(item.dir)/meta.json"))) as! [String: Any]
            let inputs = meta["inputs"] as! [[String: Any]]
            let batch = (inputs[0]["shape"] as! [Int])[0]
            do {
                var options = Compiler.Options(name: "k\(i)")
                options.weights = .embed
                // Blocks of 2 rows: the fixtures' batches (3 rows) run one block and one single row,
                // so both bodies of every row-separable model are checked against Keras.
                options.batchBlocks = [2]
                var emitted = try Compiler.emit(try ModelLoader.load(path: "\(item.dir)/\(item.format)"), options: options, source: item.format)
                if emitted.runtimeBatch { blockBodies += emitted.blockRows == 2 ? 1 : 0 }
                if !emitted.runtimeBatch {
                    options.batch = batch
                    emitted = try Compiler.emit(try ModelLoader.load(path: "\(item.dir)/\(item.format)"), options: options, source: item.format)
                }
                let header = "\(work)/\(emitted.namespace).hxx"
                try emitted.header.write(toFile: header, atomically: true, encoding: .utf8)
                current += "#include \"\(header)\"\n"
                let sig = CppHarness.signature(emitted.header)
                let rows = emitted.runtimeBatch ? batch : 1
                var args: [String] = []
                body += "    {\n        auto s = std::make_unique<\(emitted.namespace)::Session>();\n"
                for (k, t) in sig.inputs.enumerated() {
                    body += "        auto in\(k) = load<\(t.type)>(\"\(item.dir)/input\(k).bin\", \(t.count * rows));\n"
                    args.append("in\(k).data()")
                }
                for (k, t) in sig.outputs.enumerated() {
                    body += "        std::vector<\(t.type)> out\(k)(\(t.count * rows));\n"
                    args.append("out\(k).data()")
                }
                body += "        s->infer(\(emitted.runtimeBatch ? "\(batch), " : "")\(args.joined(separator: ", ")));\n"
                for k in sig.outputs.indices {
                    body += "        { std::ofstream f(\"\(work)/\(item.tag)_out\(k).bin\", std::ios::binary); f.write(reinterpret_cast<const char*>(out\(k).data()), static_cast<std::streamsize>(out\(k).size() * sizeof(out\(k)[0]))); }\n"
                }
                body += "    }\n"
                currentItems.append(item)
                if currentItems.count == 20 { try flush() }
            } catch {
                failures.append("\(item.tag): \(error)")
            }
        }
        try flush()
        XCTAssertEqual(failures, [], "fixtures that did not compile")
        let errors = CppHarness.build(units, flags: CppHarness.warningFlags + CppHarness.oneRuntimeCopy + ["-O1"])
        XCTAssertEqual(errors.count, 0, errors.values.map { String($0.prefix(800)) }.joined(separator: "\n"))
        var passed = 0
        for (u, unit) in units.enumerated() where errors[unit.source] == nil {
            let r = try TestSupport.run(unit.binary, [], check: false)
            XCTAssertEqual(r.status, 0, r.output)
            for item in members[u] {
                var k = 0
                var ok = true
                while FileManager.default.fileExists(atPath: "\(item.dir)/\(item.prefix)_output\(k).bin") {
                    let ref = try Data(contentsOf: URL(fileURLWithPath: "\(item.dir)/\(item.prefix)_output\(k).bin"))
                    let expected = Tensor(dataType: .float, dims: [ref.count / 4], values: ref.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) })
                    guard let out = FileManager.default.contents(atPath: "\(work)/\(item.tag)_out\(k).bin") else {
                        XCTFail("\(item.tag): no output \(k)"); ok = false; break
                    }
                    if let diff = CppHarness.compare(out, expected) { XCTFail("\(item.tag) output \(k) differs from Keras: \(diff)"); ok = false }
                    k += 1
                }
                if ok && k > 0 { passed += 1 }
            }
        }
        print("Keras -> C++: \(passed) of \(try items().count) fixture files match Keras (\(blockBodies) through a 2-row block body and a single row)")
        XCTAssertGreaterThan(blockBodies, 60, "most fixtures are row-separable and get a block body")
    }
}
