import Foundation
import SofieBackends
import SofieDriver
import SofieFrontends
import SofieIR
import SofiePasses
import XCTest

/// keras.applications models (made by Tests/Fixtures/keras/make_applications.py into the
/// git-ignored Tests/Fixtures/keras-apps: 7-110 MB each, too large to commit). Runs when they
/// are present: each converts, passes the verifier, matches Keras through ONNX Runtime and
/// through the emitted C++ (|a-b| <= 1e-5 + 1e-4 |ref|); the Transposes the optimized graph
/// keeps are printed (the channels_last folding's open work).
final class KerasApplicationTests: XCTestCase {
    /// SOFIE_KERAS_APPS points elsewhere (e.g. at all 40 applications made with --all).
    static var folder: String { ProcessInfo.processInfo.environment["SOFIE_KERAS_APPS"] ?? TestSupport.repoRoot + "/Tests/Fixtures/keras-apps" }

    struct App { let name: String; let dir: String; let format: String }

    func apps() throws -> [App] {
        guard FileManager.default.fileExists(atPath: Self.folder) else {
            throw XCTSkip("no keras.applications models in \(Self.folder) (make them with Tests/Fixtures/keras/make_applications.py in the Keras venv)")
        }
        var out: [App] = []
        for name in try TestSupport.subfolders(Self.folder) where FileManager.default.fileExists(atPath: "\(Self.folder)/\(name)/meta.json") {
            let meta = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(Self.folder)/\(name)/meta.json"))) as! [String: Any]
            for f in meta["formats"] as! [String] { out.append(App(name: name, dir: "\(Self.folder)/\(name)", format: f)) }
        }
        if out.isEmpty { throw XCTSkip("no keras.applications models in \(Self.folder)") }
        return out
    }

    func testApplicationsMatchKerasThroughONNXRuntime() throws {
        try TestSupport.requirePython()
        let work = try TestSupport.tempDir("keras-apps-onnx")
        var list = ""
        var failures: [String] = []
        for app in try apps() {
            let tag = app.name + "_" + app.format.replacingOccurrences(of: ".", with: "_")
            do {
                let model = try ModelLoader.load(path: "\(app.dir)/\(app.format)")
                try Verifier.verify(model)
                try Compiler.optimize(model, passes: nil)
                let counts = Dictionary(grouping: model.graph.nodes, by: \.opType).mapValues(\.count)
                print("\(tag): \(model.graph.nodes.count) nodes, \(counts["Transpose"] ?? 0) Transposes")
                let out = "\(work)/\(tag).onnx"
                try ONNXWriter.write(model, to: out)
                list += "\(out)\t\(app.dir)\tkeras3\n"
            } catch {
                failures.append("\(tag): \(error)")
            }
        }
        XCTAssertEqual(failures, [])
        try list.write(toFile: work + "/list.tsv", atomically: true, encoding: .utf8)
        let r = try TestSupport.run(TestSupport.python, [TestSupport.repoRoot + "/Tests/scripts/check_keras_onnx.py", work + "/list.tsv"], check: false)
        print("keras.applications -> ONNX -> ONNX Runtime: \(r.output.split(separator: "\n").last ?? "")")
        XCTAssertEqual(r.status, 0, r.output)
    }

    func testApplicationsMatchKerasThroughEmittedCpp() throws {
        let work = try TestSupport.tempDir("keras-apps-cpp")
        var units: [(source: String, binary: String)] = []
        var built: [(App, String)] = []
        var failures: [String] = []
        // The .keras file of each application (the .h5 holds the same model and weights).
        for (i, app) in try apps().filter({ $0.format == "model.keras" }).enumerated() {
            let meta = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(app.dir)/meta.json"))) as! [String: Any]
            let batch = ((meta["inputs"] as! [[String: Any]])[0]["shape"] as! [Int])[0]
            do {
                var options = Compiler.Options(name: "app\(i)")
                options.weights = .file
                let emitted = try Compiler.compile(path: "\(app.dir)/\(app.format)", directory: work, options: options)
                let sig = CppHarness.signature(emitted.header)
                let rows = emitted.runtimeBatch ? batch : 1
                guard emitted.runtimeBatch || batch == 1 else { failures.append("\(app.name): no run-time batch"); continue }
                let src = "#include <cstdio>\n#include <fstream>\n#include <memory>\n#include <string>\n#include <vector>\n#include \"\(work)/\(emitted.headerFileName)\"\n"
                    + CppHarness.ioHelpers + """
                int main() {
                    auto s = std::make_unique<\(emitted.namespace)::Session>("\(work)/\(emitted.weightsFileName)");
                    auto in0 = load<\(sig.inputs[0].type)>("\(app.dir)/input0.bin", \(sig.inputs[0].count * rows));
                    std::vector<\(sig.outputs[0].type)> out0(\(sig.outputs[0].count * rows));
                    s->infer(\(emitted.runtimeBatch ? "\(batch), " : "")in0.data(), out0.data());
                    std::ofstream f("\(work)/\(app.name)_out0.bin", std::ios::binary);
                    f.write(reinterpret_cast<const char*>(out0.data()), static_cast<std::streamsize>(out0.size() * sizeof(out0[0])));
                    return 0;
                }

                """
                let path = "\(work)/\(app.name).cpp"
                try src.write(toFile: path, atomically: true, encoding: .utf8)
                units.append((path, "\(work)/\(app.name)"))
                built.append((app, path))
            } catch {
                failures.append("\(app.name): \(error)")
            }
        }
        XCTAssertEqual(failures, [], "applications that did not compile")
        let errors = CppHarness.build(units, flags: CppHarness.warningFlags + ["-O2"])
        XCTAssertEqual(errors.count, 0, errors.values.map { String($0.prefix(800)) }.joined(separator: "\n"))
        var passed = 0
        for (app, source) in built where errors[source] == nil {
            let r = try TestSupport.run("\(work)/\(app.name)", [], check: false)
            XCTAssertEqual(r.status, 0, r.output)
            let ref = try Data(contentsOf: URL(fileURLWithPath: "\(app.dir)/keras3_output0.bin"))
            let expected = Tensor(dataType: .float, dims: [ref.count / 4], values: ref.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) })
            guard let out = FileManager.default.contents(atPath: "\(work)/\(app.name)_out0.bin") else { XCTFail("\(app.name): no output"); continue }
            if let diff = CppHarness.compare(out, expected) { XCTFail("\(app.name) differs from Keras: \(diff)") } else { passed += 1 }
        }
        print("keras.applications -> C++: \(passed) of \(built.count) match Keras")
    }
}
