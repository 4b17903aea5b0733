import Foundation
import SofieBackends
import SofieDriver
import SofieFrontends
import SofieIR
import XCTest

/// ONNX's nine light real models (opset 9; weights made by ConstantOfShape) compile, build
/// and match ONNX Runtime on the same seeded inputs (|a-b| <= 1e-4 + 1e-4*|b|).
final class RealModelTests: XCTestCase {
    func testLightModelsMatchONNXRuntime() throws {
        try TestSupport.requirePython()
        let folder = try TestSupport.lightModelsFolder()
        let work = try TestSupport.tempDir("light-models")
        var jobs: [(source: String, binary: String)] = []
        // The light models' own weights are constant fills (their outputs are uniform); the
        // smaller ones also run with seeded random weights to test real numerics.
        let randomized = ["squeezenet", "resnet50", "inception_v1", "densenet121", "shufflenet"]
        var names = TestSupport.lightModels
        for name in randomized {
            let dir = "\(work)/\(name)_random"
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            try TestSupport.run(TestSupport.python, [TestSupport.repoRoot + "/Tests/scripts/randomize_fills.py", "\(folder)/light_\(name).onnx", "\(dir)/model.onnx"])
            names.append("\(name)_random")
        }
        for name in names {
            let dir = "\(work)/\(name)"
            let path = name.hasSuffix("_random") ? "\(dir)/model.onnx" : "\(folder)/light_\(name).onnx"
            var options = Compiler.Options(name: "light_\(name)")
            options.weights = .file
            let emitted = try Compiler.compile(path: path, directory: dir, options: options)
            // Fills stay fills: the weights file holds only true initializers, not hundreds of MB.
            if !name.hasSuffix("_random") {
                XCTAssertLessThan(emitted.weights?.count ?? 0, 1 << 20, "\(name): ConstantOfShape weights must not be materialized")
            }
            XCTAssertLessThan(emitted.header.utf8.count, 4 << 20, "\(name): header unexpectedly large")
            try TestSupport.run(TestSupport.python, [TestSupport.repoRoot + "/Tests/scripts/ort_run.py", path, dir])
            let driver = CppHarness.singleModelDriver(header: emitted.header, namespace: emitted.namespace, dir: dir,
                                                      weights: "\(dir)/\(emitted.weightsFileName)")
            try driver.write(toFile: "\(dir)/main.cpp", atomically: true, encoding: .utf8)
            jobs.append(("\(dir)/main.cpp", "\(dir)/main"))
        }
        let errors = CppHarness.build(jobs, flags: CppHarness.warningFlags + ["-O2", "-march=native"])
        XCTAssertEqual(errors.count, 0, errors.map { "\($0.key): \($0.value.prefix(600))" }.joined(separator: "\n"))
        for name in names {
            let dir = "\(work)/\(name)"
            guard errors["\(dir)/main.cpp"] == nil else { continue }
            let r = try TestSupport.run("\(dir)/main", [], check: false)
            XCTAssertEqual(r.status, 0, "\(name): \(r.output)")
            var k = 0
            while FileManager.default.fileExists(atPath: "\(dir)/out\(k).ref") {
                let ref = try Data(contentsOf: URL(fileURLWithPath: "\(dir)/out\(k).ref"))
                let out = try Data(contentsOf: URL(fileURLWithPath: "\(dir)/out\(k).bin"))
                let expected = Tensor(dataType: .float, dims: [ref.count / 4], values: ref.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) })
                if let diff = CppHarness.compare(out, expected, rtol: 1e-4, atol: 1e-4) {
                    XCTFail("light_\(name) output \(k) differs from ONNX Runtime: \(diff)")
                } else {
                    let values = ref.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
                    print("light_\(name): output \(k) matches ONNX Runtime (\(values.count) values in [\(values.min()!), \(values.max()!)])")
                }
                k += 1
            }
            XCTAssertGreaterThan(k, 0, "\(name): no reference outputs")
        }
    }
}
