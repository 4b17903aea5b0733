import Foundation
import SofieBackends
import SofieDriver
import SofieFrontends
import SofieIR
import SofiePasses
import XCTest

/// Every built-in pass, run alone (after shape inference) on real graphs — Keras fixtures
/// converted without optimization, ONNX's light models with seeded random weights, and a
/// decomposed transformer block — keeps the outputs: ONNX Runtime on the model before and
/// after (org.sofie ops expanded back to ONNX) agrees within |a-b| <= 1e-5 + 1e-4|a|.
final class PassNumericsTests: XCTestCase {
    static let kerasModels = ["cnn", "resnet_block", "mobilenet_block", "two_branch_cnn", "activations", "normalizations",
                              "padding_cropping", "upsampling_variants", "softmax_axis", "merge", "dense_3d", "depthwise_separable"]

    func testEachPassKeepsTheNumbersThroughONNXRuntime() throws {
        try TestSupport.requirePython()
        let work = try TestSupport.tempDir("pass-numerics")
        var sources: [(name: String, path: String)] = []
        for name in Self.kerasModels {
            let model = try ModelLoader.load(path: TestSupport.repoRoot + "/Tests/Fixtures/keras/\(name)/model.keras")
            let path = "\(work)/\(name).onnx"
            try ONNXWriter.write(model, to: path)
            sources.append((name, path))
        }
        try TestSupport.run(TestSupport.python, [TestSupport.repoRoot + "/Tests/scripts/make_decomposed.py", "\(work)/decomposed.onnx"])
        sources.append(("decomposed", "\(work)/decomposed.onnx"))
        try TestSupport.run(TestSupport.python, [TestSupport.repoRoot + "/Tests/scripts/make_dense_bn.py", "\(work)/dense_bn.onnx"])
        sources.append(("dense_bn", "\(work)/dense_bn.onnx"))
        let light = try TestSupport.lightModelsFolder()
        for name in ["squeezenet", "resnet50", "shufflenet"] {
            let path = "\(work)/light_\(name)_random.onnx"
            try TestSupport.run(TestSupport.python, [TestSupport.repoRoot + "/Tests/scripts/randomize_fills.py", "\(light)/light_\(name).onnx", path])
            sources.append(("light_\(name)", path))
        }
        var pairs = ""
        var changedBy: [String: Int] = [:]
        var failures: [String] = []
        for pass in PassRegistry.builtins.map(\.name) where pass != "expand-sofie-ops" {
            for (name, path) in sources {
                do {
                    let model = try ONNXReader.read(path: path)
                    var changed = false
                    var manager = PassManager([ShapeInference(), try PassRegistry.pipeline(pass)[0]], fixedPoint: true, verifyEach: true)
                    manager.afterEach = { p, _, did in if p.name == pass && did { changed = true } }
                    try manager.run(model)
                    guard changed else { continue }
                    changedBy[pass, default: 0] += 1
                    _ = try ExpandSofieOps().run(model)
                    try Verifier.verify(model)
                    let out = "\(work)/\(name)_after_\(pass).onnx"
                    try ONNXWriter.write(model, to: out)
                    pairs += "\(path)\t\(out)\t\(pass) on \(name)\n"
                } catch {
                    failures.append("\(pass) on \(name): \(error)")
                }
            }
        }
        // And the whole default pipeline, the C++ backend's fusions included (expanded back).
        for (name, path) in sources {
            do {
                let model = try ONNXReader.read(path: path)
                try Compiler.optimize(model, passes: try PassRegistry.pipeline(names: PassRegistry.defaultPipeline), verifyEach: true)
                let out = "\(work)/\(name)_after_default.onnx"
                try ONNXWriter.write(model, to: out)
                pairs += "\(path)\t\(out)\tdefault pipeline on \(name)\n"
            } catch {
                failures.append("default pipeline on \(name): \(error)")
            }
        }
        XCTAssertEqual(failures, [])
        try pairs.write(toFile: "\(work)/pairs.tsv", atomically: true, encoding: .utf8)
        let r = try TestSupport.run(TestSupport.python, [TestSupport.repoRoot + "/Tests/scripts/compare_ort_many.py", "\(work)/pairs.tsv",
                                                         "--rtol", "1e-4", "--atol", "1e-5"], check: false)
        print("each pass alone, before vs after through ONNX Runtime: \(r.output.split(separator: "\n").last ?? "")")
        print("models changed per pass: \(changedBy.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))")
        XCTAssertEqual(r.status, 0, r.output)
        // Every pass that can change these models did (a pass that never fires is not tested here).
        for pass in ["fold-transposes", "fuse-conv-bn", "fuse-dense-bn", "fuse-matmul-add", "fold-transpose-into-dense", "fold-transpose-into-gemm",
                     "recognize-gelu", "recognize-layernorm", "fuse-epilogues", "eliminate-identity", "fold-constants", "eliminate-dead-code"] {
            XCTAssertGreaterThan(changedBy[pass] ?? 0, 0, "\(pass) changed none of the test models")
        }
    }

    /// The decomposed block: LayerNormalization and Gelu are recognized, the Gelu and the
    /// residual ride in Gemm epilogues, the Transpose before the scores' MatMul becomes transB;
    /// the emitted C++ matches ONNX Runtime on the original file.
    func testDecomposedBlockIsRecognizedAndCompiled() throws {
        try TestSupport.requirePython()
        let dir = try TestSupport.tempDir("decomposed")
        try TestSupport.run(TestSupport.python, [TestSupport.repoRoot + "/Tests/scripts/make_decomposed.py", "\(dir)/model.onnx"])
        let model = try ONNXReader.read(path: "\(dir)/model.onnx")
        try Compiler.prepare(model, verifyEach: true)
        let ops = model.graph.opHistogram()
        XCTAssertEqual(ops["LayerNormalization"], 1, "\(ops)")
        XCTAssertEqual(ops["org.sofie.FusedGemm"], 3, "\(ops)")
        for gone in ["Erf", "Pow", "ReduceMean", "Sqrt", "Transpose", "MatMul", "Relu", "Add"] { XCTAssertNil(ops[gone], "\(gone) left: \(ops)") }
        let fused = model.graph.nodes.filter { $0.opType == "FusedGemm" }
        XCTAssertEqual(Set(fused.map { $0.string("activation") ?? "" }), ["Gelu", "", "Relu"])
        XCTAssertTrue(fused.contains { $0.int("transB") == 1 }, "the transposed operand is read through transB")

        let emitted = try Compiler.compile(path: "\(dir)/model.onnx", directory: dir, options: Compiler.Options(name: "decomposed"))
        try TestSupport.run(TestSupport.python, [TestSupport.repoRoot + "/Tests/scripts/ort_run.py", "\(dir)/model.onnx", dir])
        let driver = CppHarness.singleModelDriver(header: emitted.header, namespace: emitted.namespace, dir: dir, weights: nil)
        try driver.write(toFile: "\(dir)/main.cpp", atomically: true, encoding: .utf8)
        let errors = CppHarness.build([("\(dir)/main.cpp", "\(dir)/main")], flags: CppHarness.warningFlags + CppHarness.oneRuntimeCopy + ["-O1"])
        XCTAssertEqual(errors.count, 0, errors.values.joined(separator: "\n"))
        let r = try TestSupport.run("\(dir)/main", [], check: false)
        XCTAssertEqual(r.status, 0, r.output)
        for k in 0..<2 {
            let ref = try Data(contentsOf: URL(fileURLWithPath: "\(dir)/out\(k).ref"))
            let out = try Data(contentsOf: URL(fileURLWithPath: "\(dir)/out\(k).bin"))
            let expected = Tensor(dataType: .float, dims: [ref.count / 4], values: ref.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) })
            XCTAssertNil(CppHarness.compare(out, expected), "output \(k)")
        }
    }
}

extension PassNumericsTests {
    /// Epilogues on an opset-9 model (Clip's bounds are attributes there): Conv + Clip and
    /// Gemm + LeakyRelu fuse, expand back to opset-9 ONNX, and ONNX Runtime agrees.
    func testEpiloguesExpandForOldOpsets() throws {
        try TestSupport.requirePython()
        let dir = try TestSupport.tempDir("old-opset-epilogues")
        let g = Graph(name: "old")
        let x = Value(name: "x", type: .tensor(TensorType(.float, fixed: [1, 2, 5, 5])))
        g.inputs = [x]
        func constant(_ name: String, _ dims: [Int]) -> Value {
            let values = (0..<dims.reduce(1, *)).map { Float(sin(Double($0) * 1.7)) * 0.5 }
            let t = Tensor(name: name, dataType: .float, dims: dims, values: values)
            let v = Value(name: name, type: .tensor(t.type), initializer: t)
            g.addInitializer(v)
            g.inputs.append(v)  // IR 3: initializers are graph inputs too
            return v
        }
        let c = Value(name: "c"), r = Value(name: "r"), f = Value(name: "f"), h = Value(name: "h")
        let y = Value(name: "y", type: .tensor(TensorType(.float, fixed: [1, 4])))
        g.appendNode(Node(opType: "Conv", name: "conv", inputs: [x, constant("w", [3, 2, 3, 3]), constant("b", [3])], outputs: [c],
                          attributes: [Attribute("pads", .ints([1, 1, 1, 1]))]))
        g.appendNode(Node(opType: "Clip", name: "clip", inputs: [c], outputs: [r], attributes: [Attribute("min", .float(0)), Attribute("max", .float(0.6))]))
        g.appendNode(Node(opType: "Flatten", name: "flat", inputs: [r], outputs: [f]))
        g.appendNode(Node(opType: "Gemm", name: "dense", inputs: [f, constant("d", [75, 4]), constant("db", [4])], outputs: [h]))
        g.appendNode(Node(opType: "LeakyRelu", name: "lrelu", inputs: [h], outputs: [y], attributes: [Attribute("alpha", .float(0.1))]))
        g.outputs = [y]
        let model = Model(graph: g)
        model.irVersion = 3
        model.opsetImports = [OpsetImport(domain: "", version: 9)]
        try ONNXWriter.write(model, to: dir + "/before.onnx")
        try Compiler.optimize(model, passes: try PassRegistry.pipeline("infer-shapes,fuse-epilogues"), keepSofieOps: true, verifyEach: true)
        XCTAssertEqual(model.graph.opHistogram(), ["org.sofie.FusedConv": 1, "Flatten": 1, "org.sofie.FusedGemm": 1])
        _ = try ExpandSofieOps().run(model)
        let clip = try XCTUnwrap(model.graph.nodes.first { $0.opType == "Clip" })
        XCTAssertEqual(clip.inputs.count, 1, "opset 9: bounds as attributes")
        XCTAssertEqual(clip.float("max"), 0.6)
        try ONNXWriter.write(model, to: dir + "/after.onnx")
        try assertONNXRuntimeAgrees(dir, "opset 9 epilogues")
    }
}

extension PassNumericsTests {
    /// The whole default pipeline (the C++ backend's fusions included, expanded back to ONNX)
    /// on all 1,855 ONNX operator conformance models: ONNX Runtime gives the same outputs on the
    /// tests' own inputs before and after, for every model ONNX Runtime can run.
    func testPipelineOnEveryNodeTestKeepsTheNumbers() throws {
        try TestSupport.requirePython()
        let folder = try TestSupport.nodeTestsFolder()
        let work = try TestSupport.tempDir("node-tests-optimized")
        let pipeline = try PassRegistry.pipeline(names: PassRegistry.defaultPipeline)
        var pairs = ""
        var failures: [String] = []
        var count = 0
        for name in try TestSupport.subfolders(folder) {
            let path = "\(folder)/\(name)/model.onnx"
            guard FileManager.default.fileExists(atPath: path) else { continue }
            count += 1
            do {
                let model = try ONNXReader.read(path: path)
                try Compiler.optimize(model, passes: pipeline, verifyEach: true)
                try Verifier.verify(model)
                try ONNXWriter.write(model, to: "\(work)/\(name).onnx")
                pairs += "\(path)\t\(work)/\(name).onnx\t\(name)\n"
            } catch {
                failures.append("\(name): \(error)")
            }
        }
        XCTAssertEqual(count, 1855)
        XCTAssertEqual(failures, [])
        try pairs.write(toFile: "\(work)/pairs.tsv", atomically: true, encoding: .utf8)
        let r = try TestSupport.run(TestSupport.python, [TestSupport.repoRoot + "/Tests/scripts/compare_ort_node_tests.py", "\(work)/pairs.tsv"], check: false)
        print("node tests, default pipeline, through ONNX Runtime: \(r.output.split(separator: "\n").last ?? "")")
        XCTAssertEqual(r.status, 0, r.output)
    }
}

extension PassNumericsTests {
    /// A Linear layer on a sequence as PyTorch exports it, Relu(Add(bias, MatMul(x[1, 5, 3], W))):
    /// fuse-matmul-add views x as a matrix around a Gemm (Reshapes, no copies) and fuse-epilogues
    /// moves the Relu into it past the Reshape back; ONNX Runtime agrees with the original. With
    /// a symbolic leading dimension the rule refuses, saying why.
    func testLinearOnASequenceBecomesOneGemm() throws {
        try TestSupport.requirePython()
        let dir = try TestSupport.tempDir("sequence-linear")
        func model(_ lead: Dim) -> Model {
            let g = Graph(name: "seq")
            var taken = Set<String>()
            let x = Value(name: "x", type: .tensor(TensorType(.float, [lead, .fixed(5), .fixed(3)])))
            g.inputs = [x]
            let w = g.addConstant(Tensor(dataType: .float, dims: [3, 4], values: (0..<12).map { Float(sin(Double($0))) }), name: "w", taken: &taken)
            let b = g.addConstant(Tensor(dataType: .float, dims: [4], values: [0.5, -1, 0.25, -0.125] as [Float]), name: "b", taken: &taken)
            let p = Value(name: "p"), s = Value(name: "s"), y = Value(name: "y")
            g.appendNode(Node(opType: "MatMul", name: "mm", inputs: [x, w], outputs: [p]))
            g.appendNode(Node(opType: "Add", name: "add", inputs: [b, p], outputs: [s]))
            g.appendNode(Node(opType: "Relu", name: "relu", inputs: [s], outputs: [y]))
            g.outputs = [y]
            let m = Model(graph: g)
            m.opsetImports = [OpsetImport(domain: "", version: 17)]
            return m
        }
        let m = model(.fixed(1))
        try ONNXWriter.write(m, to: dir + "/before.onnx")
        try Compiler.optimize(m, passes: try PassRegistry.pipeline(names: PassRegistry.defaultPipeline), keepSofieOps: true, verifyEach: true)
        XCTAssertEqual(m.graph.opHistogram(), ["Reshape": 2, "org.sofie.FusedGemm": 1])
        let gemm = try XCTUnwrap(m.graph.nodes.first { $0.opType == "FusedGemm" })
        XCTAssertEqual(gemm.string("activation"), "Relu")
        XCTAssertEqual(m.graph.outputs[0].tensorType?.shape, [.fixed(1), .fixed(5), .fixed(4)])
        _ = try ExpandSofieOps().run(m)
        try ONNXWriter.write(m, to: dir + "/after.onnx")
        try assertONNXRuntimeAgrees(dir, "sequence linear")

        let symbolic = model(.symbolic("batch"))
        _ = try ShapeInference().run(symbolic)
        let stats = PassStatistics()
        var pm = PassManager([Fusions.matmulAdd])
        pm.statistics = stats
        XCTAssertFalse(try pm.run(symbolic))
        XCTAssertEqual(stats.entries.first?.refusals, ["fuse-matmul-add: the input is neither 2-D nor of static shape": 1], stats.text)
    }
}

extension PassNumericsTests {
    /// A residual block whose shortcut convolution comes first in node order (torchvision's
    /// RegNet exports its `proj` before the main branch): the shortcut takes the Add and the
    /// final Relu, and the main branch's Conv + Relu between them still fuse (they were skipped:
    /// the walk went on after the fused node, which sits after the whole branch). ONNX Runtime
    /// gives the same outputs before and after.
    func testEpiloguesOfABranchAfterItsShortcut() throws {
        try TestSupport.requirePython()
        let dir = try TestSupport.tempDir("shortcut-first-epilogues")
        let g = Graph(name: "block")
        let x = Value(name: "x", type: .tensor(TensorType(.float, fixed: [1, 4, 6, 6])))
        g.inputs = [x]
        var taken = Set<String>()
        func constant(_ name: String, _ dims: [Int]) -> Value {
            let values = (0..<dims.reduce(1, *)).map { Float(sin(Double($0) * 1.3 + Double(name.count))) * 0.4 }
            return g.addConstant(Tensor(dataType: .float, dims: dims, values: values), name: name, taken: &taken)
        }
        let p = Value(name: "p"), a = Value(name: "a"), ar = Value(name: "ar"), b = Value(name: "b"), s = Value(name: "s")
        let y = Value(name: "y", type: .tensor(TensorType(.float, fixed: [1, 4, 6, 6])))
        g.appendNode(Node(opType: "Conv", name: "proj", inputs: [x, constant("wp", [4, 4, 1, 1]), constant("bp", [4])], outputs: [p]))
        g.appendNode(Node(opType: "Conv", name: "a", inputs: [x, constant("wa", [4, 4, 1, 1]), constant("ba", [4])], outputs: [a]))
        g.appendNode(Node(opType: "Relu", name: "a_relu", inputs: [a], outputs: [ar]))
        g.appendNode(Node(opType: "Conv", name: "b", inputs: [ar, constant("wb", [4, 2, 3, 3]), constant("bb", [4])], outputs: [b],
                          attributes: [Attribute("pads", .ints([1, 1, 1, 1])), Attribute("group", .int(2))]))
        g.appendNode(Node(opType: "Add", name: "add", inputs: [p, b], outputs: [s]))
        g.appendNode(Node(opType: "Relu", name: "out_relu", inputs: [s], outputs: [y]))
        g.outputs = [y]
        let model = Model(graph: g)
        model.opsetImports = [OpsetImport(domain: "", version: 17)]
        try ONNXWriter.write(model, to: dir + "/before.onnx")
        try Compiler.optimize(model, passes: try PassRegistry.pipeline("infer-shapes"), keepSofieOps: true, verifyEach: true)
        // One run: in the default pipeline block-channels follows at once, and a Conv it has
        // blocked takes no epilogue on a second round.
        XCTAssertTrue(try FuseEpilogues().run(model))
        try Verifier.verify(model)
        XCTAssertEqual(model.graph.opHistogram(), ["org.sofie.FusedConv": 2, "Conv": 1])
        let fused = model.graph.nodes.filter { $0.opType == "FusedConv" }
        XCTAssertEqual(fused.map { $0.string("activation") ?? "" }, ["Relu", "Relu"])
        XCTAssertEqual(fused.map(\.inputs.count).sorted(), [3, 4], "one takes the residual")
        _ = try ExpandSofieOps().run(model)
        try ONNXWriter.write(model, to: dir + "/after.onnx")
        try assertONNXRuntimeAgrees(dir, "shortcut first")
    }
}

extension PassNumericsTests {
    /// ONNX Runtime gives the same outputs for dir/before.onnx and dir/after.onnx
    /// (Tests/scripts/compare_ort_many.py, the same seeded random inputs for both).
    func assertONNXRuntimeAgrees(_ dir: String, _ label: String, file: StaticString = #filePath, line: UInt = #line) throws {
        try "\(dir)/before.onnx\t\(dir)/after.onnx\t\(label)\n".write(toFile: dir + "/pairs.tsv", atomically: true, encoding: .utf8)
        let run = try TestSupport.run(TestSupport.python, [TestSupport.repoRoot + "/Tests/scripts/compare_ort_many.py", dir + "/pairs.tsv"], check: false)
        XCTAssertEqual(run.status, 0, run.output, file: file, line: line)
    }
}
