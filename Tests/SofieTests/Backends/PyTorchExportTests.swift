import Foundation
import SofieBackends
import SofieDriver
import SofieFrontends
import SofieIR
import XCTest

/// Models made by other people's tools: small real architectures (torchvision's ResNet layout,
/// MobileNetV3, EfficientNet, SqueezeNet, RegNet, ShuffleNetV2, ViT, nn.TransformerEncoder,
/// LSTM, GRU, a GNN with index_select/scatter_add, BERT from transformers) exported by both of
/// PyTorch's ONNX exporters (Tests/Fixtures/pytorch/make_fixtures.py). Each compiles, builds at
/// -O2 and matches ONNX Runtime's outputs recorded beside it.
final class PyTorchExportTests: XCTestCase {
    static var fixtures: String { TestSupport.repoRoot + "/Tests/Fixtures/pytorch" }

    static func names() throws -> [String] {
        try TestSupport.subfolders(fixtures).filter { FileManager.default.fileExists(atPath: "\(fixtures)/\($0)/meta.json") }
    }

    func testFixtureCoverage() throws {
        let names = try Self.names()
        XCTAssertGreaterThanOrEqual(names.count, 24, "\(names)")
        XCTAssertEqual(names.filter { $0.hasSuffix("_torchscript") }.count, names.filter { $0.hasSuffix("_dynamo") }.count)
    }

    func testExportsMatchONNXRuntime() throws {
        try ReferenceFixtures.compileBuildCompare(fixtures: Self.fixtures, names: try Self.names(), work: try TestSupport.tempDir("pytorch-exports"))
    }
}

/// Fixture folders NAME/{model.onnx, in0.bin..., out0.ref..., meta.json} whose references come
/// from a real framework: each model is compiled, its driver built at -O2 (two compilers at
/// once), run, and every output compared with the reference -- elementwise and relative to
/// the output's scale (outputs can be tiny).
enum ReferenceFixtures {
    /// Runs `Tests/scripts/<script> DIR` (the fixtures and their references), checks it wrote
    /// exactly `expect`, then compiles, builds and compares them (compileBuildCompare) and
    /// returns the fixtures' folder.
    @discardableResult
    static func makeAndCompare(script: String, expect: [String], sanitize: Bool = true, ulps: Double = 0, f32Tolerance: Double = 0,
                               quantizationSteps: Double? = nil, file: StaticString = #filePath, line: UInt = #line) throws -> String {
        try TestSupport.requirePython()
        let name = (script as NSString).deletingPathExtension
        let fixtures = try TestSupport.tempDir(name + "-fixtures")
        try TestSupport.run(TestSupport.python, [TestSupport.repoRoot + "/Tests/scripts/" + script, fixtures])
        let names = try TestSupport.subfolders(fixtures)
        XCTAssertEqual(names, expect, file: file, line: line)
        try compileBuildCompare(fixtures: fixtures, names: names, work: try TestSupport.tempDir(name), sanitize: sanitize, ulps: ulps,
                                f32Tolerance: f32Tolerance, quantizationSteps: quantizationSteps)
        return fixtures
    }

    /// `sanitize` builds the drivers with AddressSanitizer and UndefinedBehaviorSanitizer, any
    /// report failing the run.
    /// float16 outputs (dtype "float16") are compared within `ulps` units in the last place of
    /// float16 of out0.ref (of each element, or at the output's largest magnitude), and, when the fixture has out0.f32ref (the model run in float32),
    /// within `f32Tolerance` of that output's scale.
    static func compileBuildCompare(fixtures: String, names: [String], work: String, sanitize: Bool = false,
                                    ulps: Double = 0, f32Tolerance: Double = 0, quantizationSteps: Double? = nil) throws {
        var jobs: [(source: String, binary: String)] = []
        var outputs: [String: [(dtype: String, count: Int)]] = [:]
        var steps: [String: Double] = [:]
        for name in names {
            let src = "\(fixtures)/\(name)", dir = "\(work)/\(name)"
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            let meta = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(src)/meta.json"))) as! [String: Any]
            for k in 0..<(meta["inputs"] as! [Any]).count {
                try FileManager.default.copyItem(atPath: "\(src)/in\(k).bin", toPath: "\(dir)/in\(k).bin")
            }
            steps[name] = meta["step"] as? Double
            outputs[name] = (meta["outputs"] as! [[String: Any]]).map { o in
                (dtype: o["dtype"] as! String, count: (o["shape"] as! [Int]).reduce(1, *))
            }
            var options = Compiler.Options(name: "model")
            options.weights = .file
            let emitted: EmittedCpp
            do { emitted = try Compiler.compile(path: "\(src)/model.onnx", directory: dir, options: options) } catch {
                XCTFail("\(name): does not compile: \(error)")
                continue
            }
            let driver = CppHarness.singleModelDriver(header: emitted.header, namespace: emitted.namespace, dir: dir,
                                                      weights: emitted.weights == nil ? nil : "\(dir)/\(emitted.weightsFileName)")
            try driver.write(toFile: "\(dir)/main.cpp", atomically: true, encoding: .utf8)
            jobs.append(("\(dir)/main.cpp", "\(dir)/main"))
        }
        let sanitizers = sanitize ? ["-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer"] : []
        let errors = CppHarness.build(jobs, flags: CppHarness.warningFlags + ["-O2", "-march=native"] + sanitizers)
        XCTAssertEqual(errors.count, 0, errors.map { "\($0.key): \($0.value.prefix(800))" }.joined(separator: "\n"))
        for job in jobs where errors[job.source] == nil {
            let dir = URL(fileURLWithPath: job.source).deletingLastPathComponent().path
            let name = URL(fileURLWithPath: dir).lastPathComponent
            let r = try TestSupport.run(job.binary, [], check: false)
            XCTAssertEqual(r.status, 0, "\(name): \(r.output)")
            XCTAssertFalse(r.output.contains("Sanitizer") || r.output.contains("runtime error:"), "\(name): \(r.output)")
            XCTAssertFalse(outputs[name, default: []].isEmpty, name)
            for (k, o) in outputs[name, default: []].enumerated() {
                let ref = try Data(contentsOf: URL(fileURLWithPath: "\(fixtures)/\(name)/out\(k).ref"))
                let out = try Data(contentsOf: URL(fileURLWithPath: "\(dir)/out\(k).bin"))
                if o.dtype == "float16" {
                    let expected = Tensor(dataType: .float16, dims: [o.count], values: ref.withUnsafeBytes { Array($0.bindMemory(to: UInt16.self)) })
                    let f16 = ReducedFloatFormat(.float16)!
                    let a = out.withUnsafeBytes { Array($0.bindMemory(to: UInt16.self)) }.map { f16.decode(UInt32($0)) }
                    let r = ref.withUnsafeBytes { Array($0.bindMemory(to: UInt16.self)) }.map { f16.decode(UInt32($0)) }
                    // Each element within `ulps` of its own float16 spacing, or of the spacing at
                    // the output's scale (values near zero after cancellation, e.g. GELU of small inputs).
                    let scaleUlp = f16.ulp(at: r.map { abs($0) }.max() ?? 0)
                    if let diff = CppHarness.compare(out, expected, rtol: 0, atol: ulps * scaleUlp, ulps: ulps) {
                        XCTFail("\(name) output \(k) differs from the reference by more than \(ulps) float16 ulps: \(diff)")
                    }
                    let ulpsOff = zip(a, r).map { abs($0 - $1) / f16.ulp(at: $1) }.max() ?? 0
                    let scaleUlpsOff = zip(a, r).map { abs($0 - $1) / scaleUlp }.max() ?? 0
                    var line = "\(name): output \(k) (float16, \(o.count) values) within \(ulpsOff) float16 ulps of ONNX Runtime's elementwise, \(scaleUlpsOff) at the output's scale"
                    if let f32 = try? Data(contentsOf: URL(fileURLWithPath: "\(fixtures)/\(name)/out\(k).f32ref")) {
                        let b = f32.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }.map { Double($0) }
                        let scale = b.map { abs($0) }.max() ?? 0
                        let worst = zip(a, b).map { abs($0 - $1) }.max() ?? 0
                        XCTAssertLessThanOrEqual(worst, f32Tolerance * scale, "\(name) output \(k): max |diff| \(worst) from the float32 model against scale \(scale)")
                        line += "; max |diff| \(worst) from the float32 model (scale \(scale))"
                    }
                    print(line)
                    continue
                }
                XCTAssertEqual(o.dtype, "float32", "\(name): output \(k) type")
                if let quantizationSteps, let step = steps[name] {
                    // Quantized models: within `quantizationSteps` of the output's quantization step.
                    let a = out.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }, b = ref.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
                    XCTAssertEqual(a.count, b.count, name)
                    let worst = zip(a, b).map { abs(Double($0) - Double($1)) }.max() ?? 0
                    XCTAssertLessThanOrEqual(worst, quantizationSteps * step, "\(name) output \(k): max |diff| \(worst), step \(step)")
                    let exact = zip(a, b).filter { $0 == $1 }.count
                    print("\(name): output \(k) within \(worst / step) quantization steps (\(step)) of ONNX Runtime; \(exact) of \(a.count) values equal")
                    continue
                }
                let expected = Tensor(dataType: .float, dims: [o.count], values: ref.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) })
                if let diff = CppHarness.compare(out, expected, rtol: 1e-4, atol: 1e-5) {
                    XCTFail("\(name) output \(k) differs from the reference: \(diff)")
                    continue
                }
                let a = out.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }, b = expected.values(as: Float.self)!
                let scale = b.map { abs(Double($0)) }.max() ?? 0
                let worst = zip(a, b).map { abs(Double($0) - Double($1)) }.max() ?? 0
                XCTAssertLessThanOrEqual(worst, 1e-4 * scale + 1e-30, "\(name) output \(k): max |diff| \(worst) against scale \(scale)")
                print("\(name): output \(k) matches the reference (\(o.count) values, scale \(scale), max |diff| \(worst))")
            }
        }
    }
}
