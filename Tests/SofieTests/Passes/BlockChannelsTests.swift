import Foundation
import SofieBackends
import SofieDriver
import SofieIR
import SofiePasses
import XCTest

/// The block-channels pass: which nodes enter the blocked layout, where conversions go, and
/// that the result verifies and expands back to ONNX (the numbers: PassNumericsTests through
/// ONNX Runtime, GeneratedCodeTests' kernel paths, and every CNN fixture against its reference).
final class BlockChannelsTests: XCTestCase {
    /// x [1, 3, 12, 12] -> stem Conv 3->16 (reads x planar, writes blocks) -> Relu ->
    /// Conv 16->24 -> Relu (also a graph output) -> depthwise 24 -> HardSwish -> Mul by a
    /// scalar -> GlobalAveragePool -> Flatten; a Concat of [24-channel, 16-channel] images
    /// (the first not whole blocks: stays NCHW) and of [16, 24] (blocked); c2 padded with zeros
    /// (1 on top and left, 2 on the bottom, 0 on the right) -> MaxPool 3×3 stride 2.
    func model() -> Model {
        let g = Graph(name: "blocked")
        var seed: UInt64 = 7
        func weight(_ name: String, _ dims: [Int]) -> Value {
            let values = (0..<dims.reduce(1, *)).map { _ -> Float in
                seed = seed &* 6364136223846793005 &+ 1442695040888963407
                return Float(seed >> 40) / Float(1 << 24) - 0.5
            }
            let t = Tensor(name: name, dataType: .float, dims: dims, values: values)
            let v = Value(name: name, type: .tensor(t.type), initializer: t)
            g.addInitializer(v)
            return v
        }
        func conv(_ x: Value, _ w: [Int], group: Int = 1, _ out: String) -> Value {
            let y = Value(name: out)
            g.appendNode(Node(opType: "Conv", name: out, inputs: [x, weight(out + "_w", w), weight(out + "_b", [w[0]])], outputs: [y],
                              attributes: [Attribute("pads", .ints([1, 1, 1, 1])), Attribute("group", .int(Int64(group)))]))
            return y
        }
        func op(_ type: String, _ ins: [Value], _ out: String, _ attrs: [Attribute] = []) -> Value {
            let y = Value(name: out)
            g.appendNode(Node(opType: type, name: out, inputs: ins, outputs: [y], attributes: attrs))
            return y
        }
        let x = Value(name: "x", type: .tensor(TensorType(.float, fixed: [1, 3, 12, 12])))
        g.inputs = [x]
        let s = op("Relu", [conv(x, [16, 3, 3, 3], "stem")], "stem_relu")
        let c2 = op("Relu", [conv(s, [24, 16, 3, 3], "c2")], "c2_relu")
        let d = op("HardSwish", [conv(c2, [24, 1, 3, 3], group: 24, "dw")], "dw_hs")
        let k = Tensor(name: "k", dataType: .float, dims: [], values: [Float(0.5)])
        let kv = Value(name: "k", type: .tensor(k.type), initializer: k)
        g.addInitializer(kv)
        let m = op("Mul", [d, kv], "scaled")
        let pooled = op("Flatten", [op("GlobalAveragePool", [m], "gap")], "pooled")
        let catNCHW = op("Concat", [c2, s], "cat_nchw", [Attribute("axis", .int(1))])
        let catBlocked = op("Concat", [s, c2], "cat_blocked", [Attribute("axis", .int(1))])
        let padsT = Tensor(name: "pads", dataType: .int64, dims: [8], values: [Int64(0), 0, 1, 1, 0, 0, 2, 0])
        let padsV = Value(name: "pads", type: .tensor(padsT.type), initializer: padsT)
        g.addInitializer(padsV)
        let maxPooled = op("MaxPool", [op("Pad", [c2, padsV], "padded")], "max_pooled",
                           [Attribute("kernel_shape", .ints([3, 3])), Attribute("strides", .ints([2, 2]))])
        for v in [pooled, c2, catNCHW, catBlocked, maxPooled] { v.tensorType = nil }
        g.outputs = [pooled, c2, catNCHW, catBlocked, maxPooled]
        let model = Model(graph: g)
        model.opsetImports = [OpsetImport(domain: "", version: 17)]
        return model
    }

    func testChainsEnterTheBlockedLayoutOnce() throws {
        let m = model()
        try Compiler.optimize(m, passes: try PassRegistry.pipeline(names: ["infer-shapes", "fuse-epilogues", "block-channels", "eliminate-dead-code"]),
                              keepSofieOps: true, verifyEach: true)
        let g = m.graph
        let ops = g.nodes.map { $0.domain.isEmpty ? $0.opType : "sofie." + $0.opType }
        func count(_ op: String) -> Int { ops.filter { $0 == op }.count }
        XCTAssertEqual(count("sofie.FusedConv"), 0, "\(ops)")
        XCTAssertEqual(count("sofie.BlockedConv"), 3, "the 3-channel stem reads x planar: \(ops)")
        XCTAssertEqual(count("sofie.ToBlocked"), 0, "the stem's output is the chain's first blocked value: \(ops)")
        let stem = try XCTUnwrap(g.nodes.first { $0.opType == "BlockedConv" && $0.input(1)?.name == "stem_w" })
        XCTAssertEqual(stem.input(0)?.name, "x")
        XCTAssertEqual(stem.output(0)?.tensorType?.staticShape, [1, 1, 12, 12, 16])
        let pad = try XCTUnwrap(g.nodes.first { $0.opType == "Pad" })
        XCTAssertEqual(pad.output(0)?.tensorType?.staticShape, [1, 2, 15, 13, 16], "the zeros go around the blocked image")
        XCTAssertEqual(count("sofie.BlockedMaxPool"), 1, "\(ops)")
        XCTAssertEqual(count("sofie.BlockedGlobalAveragePool"), 1, "\(ops)")
        XCTAssertEqual(count("HardSwish"), 0, "the HardSwish rides in the depthwise convolution's epilogue: \(ops)")
        let mul = try XCTUnwrap(g.nodes.first { $0.opType == "Mul" })
        XCTAssertEqual(mul.output(0)?.tensorType?.staticShape, [1, 2, 12, 12, 16], "the product with a scalar runs on blocks")
        // Out of the chain: the stem's image and c2 (read by the NCHW Concat; c2 also a graph
        // output), the blocked Concat and the max-pooled image (graph outputs) and the pooled
        // image before Flatten.
        XCTAssertEqual(count("sofie.FromBlocked"), 5, "\(ops)")
        let concats = g.nodes.filter { $0.opType == "Concat" }
        XCTAssertEqual(concats.count, 2)
        XCTAssertEqual(concats.filter { $0.output(0)?.tensorType?.staticShape?.count == 5 }.count, 1, "only [16, 24] concatenates blocks")
        let conv = try XCTUnwrap(g.nodes.first { $0.opType == "BlockedConv" && $0.int("group") == 24 })
        XCTAssertEqual(conv.output(0)?.tensorType?.staticShape, [1, 2, 12, 12, 16], "24 channels: 2 blocks")
        XCTAssertEqual(conv.ints("pads"), [1, 1, 1, 1])
        XCTAssertNoThrow(try Verifier.verify(m))

        // Expanded back to ONNX: no org.sofie node is left and shapes still infer.
        XCTAssertTrue(try ExpandSofieOps().run(m))
        XCTAssertFalse(m.graph.nodes.contains(where: SofieOps.isSofie))
        _ = try ShapeInference(strict: true).run(m)
        XCTAssertEqual(m.graph.outputs.map { $0.tensorType?.staticShape ?? [] }, [[1, 24], [1, 24, 12, 12], [1, 40, 12, 12], [1, 40, 12, 12], [1, 24, 7, 6]])
    }

    func testFewOutputChannelsStayNCHW() throws {
        let m = model()
        // A 3 -> 8 convolution: few input channels and less than a block of outputs.
        let g = m.graph
        let wt = Tensor(name: "small_w", dataType: .float, dims: [8, 3, 3, 3], values: [Float](repeating: 0.25, count: 8 * 27))
        let bt = Tensor(name: "small_b", dataType: .float, dims: [8], values: [Float](repeating: 0.5, count: 8))
        let wv = Value(name: "small_w", type: .tensor(wt.type), initializer: wt), bv = Value(name: "small_b", type: .tensor(bt.type), initializer: bt)
        g.addInitializer(wv)
        g.addInitializer(bv)
        let stem = try XCTUnwrap(g.nodes.first { $0.name == "stem" })
        let y = Value(name: "small")
        g.appendNode(Node(opType: "Conv", name: "small", inputs: [stem.input(0)!, wv, bv], outputs: [y], attributes: [Attribute("pads", .ints([1, 1, 1, 1]))]))
        g.outputs = [y]
        try Compiler.optimize(m, passes: try PassRegistry.pipeline(names: ["infer-shapes", "block-channels", "eliminate-dead-code"]), keepSofieOps: true)
        XCTAssertFalse(m.graph.nodes.contains(where: SofieOps.isSofie), "\(m.graph.nodes.map(\.opType))")
    }

    func testNonzeroPadStaysNCHW() throws {
        let m = model()
        // Padding with ones is not padding with zeros: the Pad (and the MaxPool after it) stay NCHW.
        let g = m.graph
        let pad = try XCTUnwrap(g.nodes.first { $0.name == "padded" })
        let one = Tensor(name: "one", dataType: .float, dims: [], values: [Float(1)])
        let ov = Value(name: "one", type: .tensor(one.type), initializer: one)
        g.addInitializer(ov)
        pad.appendInput(ov)
        try Compiler.optimize(m, passes: try PassRegistry.pipeline(names: ["infer-shapes", "fuse-epilogues", "block-channels", "eliminate-dead-code"]), keepSofieOps: true)
        let padded = try XCTUnwrap(g.nodes.first { $0.opType == "Pad" })
        XCTAssertEqual(padded.output(0)?.tensorType?.staticShape, [1, 24, 15, 13])
        XCTAssertFalse(g.nodes.contains { $0.opType == "BlockedMaxPool" }, "\(g.nodes.map(\.opType))")
    }

    func testCompiledModelMatchesTheUnblockedOne() throws {
        // Same model compiled with and without the pass: the emitted C++ gives the same outputs.
        try compileAndCompare(model(), tag: "block-channels", outputs: 5) { tag, header in
            if tag == "blocked" {
                // c2 (3×3, stride 1) runs as Winograd F(2×2, 3×3), dw as the depthwise kernel.
                XCTAssertTrue(header.contains("sofie_rt::conv_winograd_blocked("))
                XCTAssertFalse(header.contains("sofie_rt::conv_blocked("))
                XCTAssertTrue(header.contains("sofie_rt::depthwise_blocked("))
                XCTAssertTrue(header.contains("sofie_rt::conv_planar_blocked("), "the stem reads x planar")
            }
            if tag == "direct" {
                // --no-winograd: c2 through the direct blocked kernel.
                XCTAssertFalse(header.contains("sofie_rt::conv_winograd_blocked("))
                XCTAssertTrue(header.contains("sofie_rt::conv_blocked("))
            }
        }
    }

    /// x [1, 11, 10, 3] channels-last -> Transpose to NCHW -> Conv 3->20 5×5 stride 2 (the
    /// Keras stem): the blocked stem reads x itself.
    func channelsLastModel() -> Model {
        let g = Graph(name: "nhwc")
        let values: [Float] = (0..<(20 * 3 * 25)).map { (i: Int) -> Float in Float((i * 53) % 97) / 48.0 - 1.0 }
        let biases: [Float] = (0..<20).map { (i: Int) -> Float in Float(i) / 10.0 - 1.0 }
        let wt = Tensor(name: "w", dataType: .float, dims: [20, 3, 5, 5], values: values)
        let bt = Tensor(name: "b", dataType: .float, dims: [20], values: biases)
        for t in [wt, bt] { g.addInitializer(Value(name: t.name, type: .tensor(t.type), initializer: t)) }
        let x = Value(name: "x", type: .tensor(TensorType(.float, fixed: [1, 11, 10, 3])))
        g.inputs = [x]
        let xt = Value(name: "x_nchw"), y = Value(name: "y")
        g.appendNode(Node(opType: "Transpose", name: "to_nchw", inputs: [x], outputs: [xt], attributes: [Attribute("perm", .ints([0, 3, 1, 2]))]))
        g.appendNode(Node(opType: "Conv", name: "stem", inputs: [xt, g.initializers[0], g.initializers[1]], outputs: [y],
                          attributes: [Attribute("pads", .ints([2, 1, 2, 2])), Attribute("strides", .ints([2, 2]))]))
        g.outputs = [y]
        let model = Model(graph: g)
        model.opsetImports = [OpsetImport(domain: "", version: 17)]
        return model
    }

    func testStemReadsAChannelsLastImage() throws {
        let m = channelsLastModel()
        try Compiler.optimize(m, passes: try PassRegistry.pipeline(names: ["infer-shapes", "block-channels", "eliminate-dead-code"]), keepSofieOps: true, verifyEach: true)
        XCTAssertFalse(m.graph.nodes.contains { $0.opType == "Transpose" }, "\(m.graph.nodes.map(\.opType))")
        let conv = try XCTUnwrap(m.graph.nodes.first { $0.opType == "BlockedConv" })
        XCTAssertEqual(conv.input(0)?.name, "x")
        XCTAssertEqual(conv.int("channels_last"), 1)
        XCTAssertEqual(conv.output(0)?.tensorType?.staticShape, [1, 2, 6, 5, 16])
        // Expanded back to ONNX, the Transpose comes back.
        XCTAssertTrue(try ExpandSofieOps().run(m))
        _ = try ShapeInference(strict: true).run(m)
        XCTAssertEqual(m.graph.outputs[0].tensorType?.staticShape, [1, 20, 6, 5])
        try compileAndCompare(channelsLastModel(), tag: "nhwc-stem", outputs: 1) { tag, header in
            if tag == "blocked" { XCTAssertTrue(header.contains(", static_cast<float*>(work), true);"), "the stem reads x channels-last") }
        }
    }

    /// Compiles `model` without the block-channels pass, with it, and with it but without
    /// Winograd; runs the three on the same input and compares their outputs.
    func compileAndCompare(_ model: Model, tag base: String, outputs count: Int, check: (String, String) -> Void) throws {
        let dir = try TestSupport.tempDir(base)
        let path = dir + "/model.onnx"
        try ONNXWriter.write(model, to: path)
        let inputCount = model.graph.inputs[0].tensorType?.staticShape?.reduce(1, *) ?? 0
        var outputs: [[Data]] = []
        var jobs: [(source: String, binary: String)] = []
        let configs = [("nchw", PassRegistry.defaultPipeline.filter { $0 != "block-channels" }, true), ("blocked", PassRegistry.defaultPipeline, true),
                       ("direct", PassRegistry.defaultPipeline, false)]
        for (tag, passes, winograd) in configs {
            var options = Compiler.Options(name: "m_" + tag)
            options.weights = .file
            options.passes = try PassRegistry.pipeline(names: passes)
            options.winograd = winograd
            let emitted = try Compiler.compile(path: path, directory: dir + "/" + tag, options: options)
            check(tag, emitted.header)
            let input: [Float] = (0..<inputCount).map { (i: Int) -> Float in Float((i * 37) % 101) / 50.0 - 1.0 }
            try Data(input.withUnsafeBytes { Array($0) }).write(to: URL(fileURLWithPath: "\(dir)/\(tag)/in0.bin"))
            let driver = CppHarness.singleModelDriver(header: emitted.header, namespace: emitted.namespace, dir: "\(dir)/\(tag)",
                                                      weights: "\(dir)/\(tag)/\(emitted.weightsFileName)", threads: 1, repeats: 1)
            try driver.write(toFile: "\(dir)/\(tag)/main.cpp", atomically: true, encoding: .utf8)
            jobs.append(("\(dir)/\(tag)/main.cpp", "\(dir)/\(tag)/main"))
        }
        // The three builds at once, on both cores; -march=native: one copy of the runtime, the
        // widest blocked kernels (what a plain -O2 build's AVX-512 twin runs here too).
        let errors = CppHarness.build(jobs, flags: CppHarness.warningFlags + ["-O2", "-march=native", "-pthread"])
        XCTAssertEqual(errors.count, 0, "\(errors.values.first ?? "")")
        for (tag, _, _) in configs {
            let r = try TestSupport.run("\(dir)/\(tag)/main", [], check: false)
            XCTAssertEqual(r.status, 0, r.output)
            outputs.append(try (0..<count).map { try Data(contentsOf: URL(fileURLWithPath: "\(dir)/\(tag)/out\($0).bin")) })
        }
        for k in 0..<count {
            let ref = outputs[0][k].withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
            for (i, tag) in [(1, "blocked"), (2, "direct")] {
                XCTAssertNil(CppHarness.compare(outputs[i][k], Tensor(dataType: .float, dims: [ref.count], values: ref), rtol: 1e-5, atol: 1e-6), "\(tag) output \(k)")
            }
        }
    }
}
