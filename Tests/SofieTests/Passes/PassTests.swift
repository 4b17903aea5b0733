import Foundation
import SofieBackends
import SofieDriver
import SofieFrontends
import SofieIR
import SofiePasses
import XCTest

final class PassTests: XCTestCase {
    func testDefaultPipelineOnKerasCNN() throws {
        let model = try ModelLoader.load(path: TestSupport.repoRoot + "/Tests/Fixtures/keras/cnn/model.keras")
        let before = model.graph.opHistogram()
        try Compiler.optimize(model, passes: nil, verifyEach: true)
        let after = model.graph.opHistogram()
        XCTAssertEqual(before["BatchNormalization"], 1)
        XCTAssertNil(after["BatchNormalization"], "fuse-conv-bn folds the BatchNormalization into the Conv")
        XCTAssertLessThan(after["Transpose"] ?? 0, before["Transpose"] ?? 0)
        XCTAssertNoThrow(try Verifier.verify(model))
    }

    func testPipelineParsingNamesUnknownPasses() {
        XCTAssertEqual(try PassRegistry.pipeline("fold-constants, fuse-conv-bn").map(\.name), ["fold-constants", "fuse-conv-bn"])
        XCTAssertThrowsError(try PassRegistry.pipeline("fold-constants,no-such-pass")) { e in
            XCTAssertTrue("\(e)".contains("no-such-pass") && "\(e)".contains("fuse-conv-bn"), "\(e)")
        }
    }

    func testCustomPassRegistrationAndCLIListing() throws {
        struct CountNodes: GraphPass {
            let name = "count-nodes"
            let summary = "a test pass that changes nothing"
            func run(_ model: Model) throws -> Bool { false }
        }
        PassRegistry.register("count-nodes") { CountNodes() }
        XCTAssertEqual(try PassRegistry.pipeline("count-nodes,eliminate-identity").map(\.name), ["count-nodes", "eliminate-identity"])
        let r = try TestSupport.sofie(["passes"])
        XCTAssertEqual(r.status, 0)
        for name in PassRegistry.builtins.map(\.name) { XCTAssertTrue(r.output.contains(name), r.output) }
    }

    func testPrintAfterAndO0() throws {
        let path = TestSupport.repoRoot + "/Tests/Fixtures/keras/cnn/model.keras"
        let out = try TestSupport.tempDir("print-after") + "/cnn.onnx"
        let r = try TestSupport.sofie(["convert", path, "-o", out, "--print-after", "fuse-conv-bn", "--verify-each"])
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.output.contains("// after fuse-conv-bn (run 1, changed)"), r.output)
        let r0 = try TestSupport.sofie(["convert", path, "-o", out, "-O0"])
        XCTAssertEqual(r0.status, 0, r0.output)
        XCTAssertTrue(r0.output.contains("19 nodes"), r0.output)
        let bad = try TestSupport.sofie(["convert", path, "-o", out, "--passes", "nope"])
        XCTAssertNotEqual(bad.status, 0)
        XCTAssertTrue(bad.output.contains("no such pass"), bad.output)
    }
}

extension PassTests {
    /// The compile pipeline (static shapes) on the Keras CNN, ResNet-style and MobileNet-style
    /// fixtures: at most one Transpose, at the input; no BatchNormalization. Numbers are checked
    /// by KerasFixtureTests, which compiles every fixture through the same pipeline.
    func testCompilePipelineLeavesOnlyTheInputTranspose() throws {
        // (sofie convert, without static shapes, reaches the same on the ResNet/MobileNet blocks.)
        for name in ["cnn", "resnet_block", "mobilenet_block"] {
            let model = try ModelLoader.load(path: TestSupport.repoRoot + "/Tests/Fixtures/keras/\(name)/model.keras")
            try Compiler.prepare(model, verifyEach: true)
            let transposes = model.graph.nodes.filter { $0.opType == "Transpose" }
            XCTAssertFalse(model.graph.nodes.contains { $0.opType == "BatchNormalization" }, name)
            XCTAssertEqual(transposes.count, 1, "\(name): \(model.graph.opHistogram())")
            XCTAssertTrue(transposes.first?.input(0) === model.graph.inputs[0], "\(name): the remaining transpose reads the input")
            if name == "cnn" { XCTAssertEqual(model.graph.opHistogram()["Gemm"], 1) }
            print("\(name): compile pipeline leaves \(model.graph.nodes.count) nodes, \(transposes.count) transposes")
        }
    }

    /// The "done when", through `sofie convert --sofie-ops` (symbolic batch): on the Keras
    /// CNN, ResNet-style and MobileNet-style models the default pipeline leaves at most one
    /// Transpose, at the input; no BatchNormalization; every activation and residual Add rides in
    /// a FusedConv/FusedGemm epilogue. (KerasFixtureTests checks the numbers of this pipeline.)
    func testConvertLeavesOneTransposeAndFusedEpilogues() throws {
        let expected: [String: (nodes: Int, fused: Int)] = ["cnn": (7, 1), "resnet_block": (8, 4), "mobilenet_block": (8, 4)]
        for (name, want) in expected.sorted(by: { $0.key < $1.key }) {
            let path = TestSupport.repoRoot + "/Tests/Fixtures/keras/\(name)/model.keras"
            let out = try TestSupport.tempDir("convert-fused") + "/\(name).onnx"
            let r = try TestSupport.sofie(["convert", path, "-o", out, "--sofie-ops", "--verify-each"])
            XCTAssertEqual(r.status, 0, r.output)
            let model = try ONNXReader.read(path: out)
            let ops = model.graph.opHistogram()
            let transposes = model.graph.nodes.filter { $0.opType == "Transpose" }
            XCTAssertLessThanOrEqual(transposes.count, 1, "\(name): \(ops)")
            XCTAssertTrue(transposes.allSatisfy { $0.input(0) === model.graph.inputs[0] }, "\(name): a transpose other than the input's is left")
            for op in ["BatchNormalization", "Relu", "Clip", "Add", "Sigmoid", "HardSwish"] { XCTAssertNil(ops[op], "\(name): \(op) left: \(ops)") }
            XCTAssertEqual(ops["org.sofie.FusedConv"], want.fused, "\(name): \(ops)")
            XCTAssertEqual(model.graph.nodes.count, want.nodes, "\(name): \(ops)")
            XCTAssertTrue(model.opsetImports.contains { $0.domain == "org.sofie" && $0.version == 1 })
            // Without --sofie-ops the file holds standard ONNX only.
            let plain = try TestSupport.sofie(["convert", path, "-o", out])
            XCTAssertEqual(plain.status, 0, plain.output)
            XCTAssertFalse(try ONNXReader.read(path: out).graph.nodes.contains { !$0.domain.isEmpty }, name)
        }
    }
}

extension PassTests {
    func testCommonSubexpressionElimination() throws {
        let g = Graph(name: "cse")
        let t = TensorType(.float, fixed: [4])
        let x = Value(name: "x", type: .tensor(t))
        g.inputs = [x]
        let a = Value(name: "a"), b = Value(name: "b"), c = Value(name: "c"), y = Value(name: "y", type: .tensor(t))
        g.appendNode(Node(opType: "LeakyRelu", inputs: [x], outputs: [a], attributes: [Attribute("alpha", .float(0.1))]))
        g.appendNode(Node(opType: "LeakyRelu", inputs: [x], outputs: [b], attributes: [Attribute("alpha", .float(0.1))]))
        g.appendNode(Node(opType: "LeakyRelu", inputs: [x], outputs: [c], attributes: [Attribute("alpha", .float(0.2))]))
        let s = Value(name: "s")
        g.appendNode(Node(opType: "Add", inputs: [a, b], outputs: [s]))
        g.appendNode(Node(opType: "Add", inputs: [s, c], outputs: [y]))
        g.outputs = [y]
        let m = Model(graph: g)
        XCTAssertTrue(try CommonSubexpressionElimination().run(m))
        XCTAssertEqual(g.nodes.map(\.opType), ["LeakyRelu", "LeakyRelu", "Add", "Add"], "the second alpha=0.1 LeakyRelu merges; alpha=0.2 stays")
        XCTAssertTrue(g.nodes[2].input(0) === g.nodes[2].input(1))
        XCTAssertNoThrow(try Verifier.verify(m))
        XCTAssertFalse(try CommonSubexpressionElimination().run(m))
    }
}

extension PassTests {
    /// MatMul/Gemm + BatchNormalization fold into one Gemm each; ONNX Runtime gives the same
    /// outputs before and after.
    func testDenseBatchNormFoldKeepsTheNumbers() throws {
        try TestSupport.requirePython()
        let dir = try TestSupport.tempDir("dense-bn")
        try TestSupport.run(TestSupport.python, [TestSupport.repoRoot + "/Tests/scripts/make_dense_bn.py", dir + "/in.onnx"])
        let model = try ONNXReader.read(path: dir + "/in.onnx")
        try Compiler.optimize(model, passes: nil, verifyEach: true)
        let ops = model.graph.opHistogram()
        XCTAssertNil(ops["BatchNormalization"], "\(ops)")
        XCTAssertEqual(ops["Gemm"], 2, "\(ops)")
        try ONNXWriter.write(model, to: dir + "/out.onnx")
        let r = try TestSupport.run(TestSupport.python, [TestSupport.repoRoot + "/Tests/scripts/compare_ort.py", dir + "/in.onnx", dir + "/out.onnx",
                                                         "--rtol", "1e-5", "--atol", "1e-5"], check: false)
        XCTAssertEqual(r.status, 0, r.output)
    }
}

extension PassTests {
    /// plan-memory on real graphs (Keras fixtures after the compile pipeline): two values whose
    /// lifetimes overlap never share bytes unless one aliases the other, every slot is inside
    /// the arena, and reuse makes the arena smaller than the sum of the tensors on deep models.
    func testMemoryPlanNeverOverlapsLiveValues() throws {
        var checked = 0
        for name in ["cnn", "resnet_block", "mobilenet_block", "two_branch_cnn", "lstm", "normalizations", "reshape_permute", "merge"] {
            let model = try ModelLoader.load(path: TestSupport.repoRoot + "/Tests/Fixtures/keras/\(name)/model.keras")
            try Compiler.prepare(model)
            let g = model.graph
            let plan = try XCTUnwrap(g.memoryPlan, name)
            XCTAssertEqual(plan, MemoryPlan.compute(g), "the plan is deterministic")
            var position: [ObjectIdentifier: Int] = [:]
            for (i, n) in g.nodes.enumerated() { position[ObjectIdentifier(n)] = i }
            func root(_ v: String) -> String { plan.aliases[v].map(root) ?? v }
            var lifetimes: [String: (Int, Int)] = [:]
            for (i, n) in g.nodes.enumerated() {
                for case let o? in n.outputs where plan.slots[o.name] != nil {
                    let end = o.uses.map { position[ObjectIdentifier($0.node)]! }.max() ?? i
                    let r = root(o.name)
                    let old = lifetimes[r] ?? (i, i)
                    lifetimes[r] = (min(old.0, i), max(old.1, end))
                }
            }
            XCTAssertFalse(lifetimes.isEmpty, name)
            let roots = lifetimes.keys.sorted()
            for (a, ra) in roots.enumerated() {
                let sa = plan.slots[ra]!, la = lifetimes[ra]!
                XCTAssertLessThanOrEqual(sa.offset + sa.bytes, plan.arenaBytes)
                for rb in roots[(a + 1)...] {
                    let sb = plan.slots[rb]!, lb = lifetimes[rb]!
                    let live = la.0 <= lb.1 && lb.0 <= la.1
                    let shared = sa.offset < sb.offset + sb.bytes && sb.offset < sa.offset + sa.bytes
                    XCTAssertFalse(live && shared, "\(name): %\(ra) and %\(rb) are live together and share bytes")
                    checked += 1
                }
            }
            if ["resnet_block", "mobilenet_block", "cnn"].contains(name) { XCTAssertLessThan(plan.arenaBytes, plan.totalBytes, name) }
        }
        XCTAssertGreaterThan(checked, 50)
    }
}

extension PassTests {
    /// A file with malformed org.sofie nodes (an unknown activation; LeakyRelu without its
    /// parameter) is a clear error from convert and compile: names the file and node, lists the
    /// activations, exits non-zero, writes nothing.
    func testMalformedSofieNodesAreClearErrors() throws {
        let dir = try TestSupport.tempDir("bad-sofie-ops")
        for (tag, act, params) in [("unknown", "Foo", [Float]()), ("no_params", "LeakyRelu", [Float]())] {
            let g = Graph(name: "bad")
            let x = Value(name: "x", type: .tensor(TensorType(.float, fixed: [1, 2])))
            let w = Tensor(name: "w", dataType: .float, dims: [2, 2], values: [Float](repeating: 1, count: 4))
            let wv = Value(name: "w", type: .tensor(w.type), initializer: w)
            let y = Value(name: "y", type: .tensor(TensorType(.float, fixed: [1, 2])))
            g.inputs = [x]
            g.addInitializer(wv)
            g.appendNode(Node(opType: "FusedGemm", domain: SofieOps.domain, name: "fg", inputs: [x, wv], outputs: [y],
                              attributes: [Attribute("activation", .string(Array(act.utf8))), Attribute("activation_params", .floats(params))]))
            g.outputs = [y]
            let m = Model(graph: g)
            m.opsetImports = [OpsetImport(domain: "", version: 17), OpsetImport(domain: SofieOps.domain, version: 1)]
            let path = "\(dir)/\(tag).onnx"
            try ONNXWriter.write(m, to: path)
            let out = "\(dir)/\(tag)_out.onnx"
            let convert = try TestSupport.sofie(["convert", path, "-o", out])
            XCTAssertNotEqual(convert.status, 0, tag)
            XCTAssertTrue(convert.output.contains("\(tag).onnx") && convert.output.contains("'fg'") && convert.output.contains("LeakyRelu (1)"), convert.output)
            XCTAssertFalse(FileManager.default.fileExists(atPath: out), tag)
            let compile = try TestSupport.sofie(["compile", path, "-o", "\(dir)/\(tag)_gen"])
            XCTAssertNotEqual(compile.status, 0, tag)
            XCTAssertTrue(compile.output.contains("'fg'") && compile.output.contains(act), compile.output)
            XCTAssertFalse(FileManager.default.fileExists(atPath: "\(dir)/\(tag)_gen/\(tag).hxx"), tag)
        }
    }
}

extension PassTests {
    /// ZeroPadding2D at the input of a channels_last model: the transpose moves above the Pad and
    /// is the only one left, reading the model input, and the Pad becomes the Conv's padding
    /// (numbers: PassNumericsTests, KerasFixtureTests).
    func testTransposeMovesAboveAnInputPad() throws {
        let model = try ModelLoader.load(path: TestSupport.repoRoot + "/Tests/Fixtures/keras/padding_cropping/model.keras")
        let before = model.graph.opHistogram()["Transpose"] ?? 0
        try Compiler.optimize(model, passes: nil, verifyEach: true)
        let transposes = model.graph.nodes.filter { $0.opType == "Transpose" }
        XCTAssertGreaterThan(before, 1)
        XCTAssertEqual(transposes.count, 1, "\(model.graph.opHistogram())")
        XCTAssertTrue(transposes.first?.input(0) === model.graph.inputs[0])
        // The zero padding then joins the Conv's own pads (fuse-pad-conv).
        XCTAssertNil(model.graph.opHistogram()["Pad"], "\(model.graph.opHistogram())")
        XCTAssertTrue(model.graph.nodes.contains { $0.opType == "Conv" && $0.ints("pads") == [1, 3, 2, 0] })
    }
}

extension PassTests {
    /// A shape vector joined from a run-time element and constants, cut apart again: the
    /// Split and the Slice that take whole constant pieces read those pieces, so the fill's
    /// shape folds; the piece that takes the run-time element keeps reading it.
    func testSliceAndSplitOfConcatTakeWholePieces() throws {
        let g = Graph(name: "pieces")
        let n = Value(name: "n", type: .tensor(TensorType(.int64, fixed: [1])))
        g.inputs = [n]
        func constant(_ name: String, _ v: [Int64]) -> Value {
            let c = Value(name: name, initializer: Tensor(dataType: .int64, dims: [v.count], values: v))
            c.tensorType = TensorType(.int64, fixed: [v.count])
            g.initializers.append(c)
            return c
        }
        let joined = Value(name: "joined"), a = Value(name: "a"), b = Value(name: "b"), c = Value(name: "c"), hw = Value(name: "hw")
        g.appendNode(Node(opType: "Concat", inputs: [constant("two", [2]), n, constant("hw", [50, 90])], outputs: [joined], attributes: [Attribute("axis", .int(0))]))
        g.appendNode(Node(opType: "Split", inputs: [joined, constant("sizes", [1, 1, 2])], outputs: [a, b, c]))
        g.appendNode(Node(opType: "Slice", inputs: [joined, constant("s", [1]), constant("e", [4])], outputs: [hw]))
        let fill = Value(name: "fill", type: .tensor(TensorType(.float, fixed: [50, 90])))
        let y = Value(name: "y", type: .tensor(TensorType(.int64, fixed: [4])))
        g.appendNode(Node(opType: "ConstantOfShape", inputs: [c], outputs: [fill]))
        g.appendNode(Node(opType: "Concat", inputs: [a, b, hw], outputs: [y], attributes: [Attribute("axis", .int(0))]))
        g.outputs = [fill, y]
        let m = Model(graph: g)
        m.opsetImports = [OpsetImport(domain: "", version: 18)]
        try PassManager([ShapeInference(), ConstantFolding(), DeadCodeElimination()], fixedPoint: true).run(m)
        let fillNode = try XCTUnwrap(g.nodes.first { $0.opType == "ConstantOfShape" })
        XCTAssertEqual(fillNode.input(0)?.initializer?.values(as: Int64.self), [50, 90], "the Split's third piece is the constant [50, 90]")
        let out = try XCTUnwrap(g.nodes.first { $0.outputs.contains { $0 === y } })
        XCTAssertTrue(out.input(1) === n, "the Split's second piece is the input itself")
        XCTAssertEqual(out.opType, "Concat")
        XCTAssertFalse(g.nodes.contains { $0.opType == "Split" }, g.nodes.map(\.opType).description)
        // Slice [1, 4) spans the run-time piece and the constant one: a Concat of the two.
        let hwNode = try XCTUnwrap(out.input(2)?.producer)
        XCTAssertEqual(hwNode.opType, "Concat")
        XCTAssertTrue(hwNode.input(0) === n)
        XCTAssertNoThrow(try Verifier.verify(m))
    }

    /// The probe finds which elements of a shape input the declared output extents follow:
    /// CenterCropPad's function body in small (pads from max(x, shape) - x, then a Slice of
    /// `shape` from the middle). Solving gives the declared extents; an output without a
    /// declared shape gives nothing to solve from.
    func testSpecializeShapeInputsSolvesFromDeclaredShape() throws {
        func model(declared: [Int]?) -> (Model, Value) {
            let g = Graph(name: "crop")
            let x = Value(name: "x", type: .tensor(TensorType(.float, fixed: [6, 4])))
            let shape = Value(name: "shape", type: .tensor(TensorType(.int64, fixed: [2])))
            g.inputs = [x, shape]
            let xs = Value(name: "xs"), big = Value(name: "big"), pad = Value(name: "pad"), zeros = Value(name: "zeros"), pads = Value(name: "pads")
            let padded = Value(name: "padded"), ps = Value(name: "ps"), diff = Value(name: "diff"), start = Value(name: "start"), end = Value(name: "end")
            let two = Value(name: "two", initializer: Tensor(dataType: .int64, dims: [1], values: [Int64(2)]))
            two.tensorType = TensorType(.int64, fixed: [1])
            g.initializers = [two]
            let y = Value(name: "y", type: .tensor(TensorType(.float, declared.map { $0.map { Dim.fixed($0) } })))
            g.appendNode(Node(opType: "Shape", inputs: [x], outputs: [xs]))
            g.appendNode(Node(opType: "Max", inputs: [xs, shape], outputs: [big]))
            g.appendNode(Node(opType: "Sub", inputs: [big, xs], outputs: [pad]))
            g.appendNode(Node(opType: "Sub", inputs: [pad, pad], outputs: [zeros]))
            g.appendNode(Node(opType: "Concat", inputs: [zeros, pad], outputs: [pads], attributes: [Attribute("axis", .int(0))]))
            g.appendNode(Node(opType: "Pad", inputs: [x, pads], outputs: [padded]))
            g.appendNode(Node(opType: "Shape", inputs: [padded], outputs: [ps]))
            g.appendNode(Node(opType: "Sub", inputs: [ps, shape], outputs: [diff]))
            g.appendNode(Node(opType: "Div", inputs: [diff, two], outputs: [start]))
            g.appendNode(Node(opType: "Add", inputs: [start, shape], outputs: [end]))
            g.appendNode(Node(opType: "Slice", inputs: [padded, start, end], outputs: [y]))
            g.outputs = [y]
            let m = Model(graph: g)
            m.opsetImports = [OpsetImport(domain: "", version: 18)]
            return (m, shape)
        }
        let simplify = PassManager([ShapeInference(), InlineControlFlow(), ConstantFolding(), DeadCodeElimination()], fixedPoint: true)
        let (m, shape) = model(declared: [8, 3])
        try simplify.run(m)
        let before = m.graph.nodes.count
        let found = try XCTUnwrap(SpecializeShapeInputs.solve(m, simplify: { _ = try simplify.run($0) }))
        XCTAssertEqual(found.count, 1)
        XCTAssertTrue(found[0].input === shape)
        XCTAssertEqual(found[0].values, [0: 8, 1: 3])
        XCTAssertEqual(found[0].because, "y")
        XCTAssertEqual(m.graph.nodes.count, before, "solving leaves the model as it was")
        SpecializeShapeInputs.apply(found, to: m)
        try simplify.run(m)
        _ = try ShapeInference(strict: true).run(m)
        XCTAssertEqual(m.graph.outputs[0].tensorType?.staticShape, [8, 3])
        XCTAssertEqual(m.graph.nodes.map(\.opType), ["Pad", "Slice"], "pads and bounds folded to constants")
        XCTAssertEqual(m.graph.inputAssumptions.first?.values, [0: 8, 1: 3])

        let (undeclared, _) = model(declared: nil)
        try simplify.run(undeclared)
        XCTAssertNil(SpecializeShapeInputs.solve(undeclared, simplify: { _ = try simplify.run($0) }))
    }
}
