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
    /// x [1, 3, 12, 12] -> stem Conv 3->16 (too few input channels: stays NCHW) -> Relu ->
    /// Conv 16->24 -> Relu (also a graph output) -> depthwise 24 -> HardSwish -> Mul by a
    /// scalar -> GlobalAveragePool -> Flatten; a Concat of [24-channel, 16-channel] images
    /// (the first not whole blocks: stays NCHW) and of [16, 24] (blocked).
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
        for v in [pooled, c2, catNCHW, catBlocked] { v.tensorType = nil }
        g.outputs = [pooled, c2, catNCHW, catBlocked]
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
        XCTAssertEqual(count("sofie.FusedConv"), 1, "the 3-channel stem stays NCHW: \(ops)")
        XCTAssertEqual(count("sofie.BlockedConv"), 2, "\(ops)")
        XCTAssertEqual(count("sofie.ToBlocked"), 1, "one conversion into the chain, shared by both Concats and c2: \(ops)")
        XCTAssertEqual(count("sofie.BlockedGlobalAveragePool"), 1, "\(ops)")
        XCTAssertEqual(count("HardSwish"), 0, "the HardSwish rides in the depthwise convolution's epilogue: \(ops)")
        let mul = try XCTUnwrap(g.nodes.first { $0.opType == "Mul" })
        XCTAssertEqual(mul.output(0)?.tensorType?.staticShape, [1, 2, 12, 12, 16], "the product with a scalar runs on blocks")
        // Out of the chain: c2 (a graph output and read by the NCHW Concat), the blocked Concat
        // (a graph output) and the pooled image before Flatten.
        XCTAssertEqual(count("sofie.FromBlocked"), 3, "\(ops)")
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
        XCTAssertEqual(m.graph.outputs.map { $0.tensorType?.staticShape ?? [] }, [[1, 24], [1, 24, 12, 12], [1, 40, 12, 12], [1, 40, 12, 12]])
    }

    func testFewInputChannelsStayNCHW() throws {
        let m = model()
        // Only the stem: 3 input channels.
        m.graph.outputs = [m.graph.nodes.first { $0.name == "stem_relu" }!.output(0)!]
        m.graph.outputs[0].tensorType = nil
        try Compiler.optimize(m, passes: try PassRegistry.pipeline(names: ["infer-shapes", "block-channels", "eliminate-dead-code"]), keepSofieOps: true)
        XCTAssertFalse(m.graph.nodes.contains(where: SofieOps.isSofie), "\(m.graph.nodes.map(\.opType))")
    }

    func testCompiledModelMatchesTheUnblockedOne() throws {
        // Same model compiled with and without the pass: the emitted C++ gives the same outputs.
        let dir = try TestSupport.tempDir("block-channels")
        let path = dir + "/blocked.onnx"
        try ONNXWriter.write(model(), to: path)
        var outputs: [[Data]] = []
        let configs = [("nchw", PassRegistry.defaultPipeline.filter { $0 != "block-channels" }, true), ("blocked", PassRegistry.defaultPipeline, true),
                       ("direct", PassRegistry.defaultPipeline, false)]
        for (tag, passes, winograd) in configs {
            var options = Compiler.Options(name: "m_" + tag)
            options.weights = .file
            options.passes = try PassRegistry.pipeline(names: passes)
            options.winograd = winograd
            let emitted = try Compiler.compile(path: path, directory: dir + "/" + tag, options: options)
            if tag == "blocked" {
                // c2 (3×3, stride 1) runs as Winograd F(2×2, 3×3), dw as the depthwise kernel.
                XCTAssertTrue(emitted.header.contains("sofie_rt::conv_winograd_blocked("))
                XCTAssertFalse(emitted.header.contains("sofie_rt::conv_blocked("))
                XCTAssertTrue(emitted.header.contains("sofie_rt::depthwise_blocked("))
            }
            if tag == "direct" {
                // --no-winograd: c2 through the direct blocked kernel.
                XCTAssertFalse(emitted.header.contains("sofie_rt::conv_winograd_blocked("))
                XCTAssertTrue(emitted.header.contains("sofie_rt::conv_blocked("))
            }
            let input: [Float] = (0..<(3 * 12 * 12)).map { (i: Int) -> Float in Float((i * 37) % 101) / 50.0 - 1.0 }
            try Data(input.withUnsafeBytes { Array($0) }).write(to: URL(fileURLWithPath: "\(dir)/\(tag)/in0.bin"))
            let driver = CppHarness.singleModelDriver(header: emitted.header, namespace: emitted.namespace, dir: "\(dir)/\(tag)",
                                                      weights: "\(dir)/\(tag)/\(emitted.weightsFileName)", threads: 1, repeats: 1)
            try driver.write(toFile: "\(dir)/\(tag)/main.cpp", atomically: true, encoding: .utf8)
            let errors = CppHarness.build([("\(dir)/\(tag)/main.cpp", "\(dir)/\(tag)/main")], flags: CppHarness.warningFlags + ["-O2", "-pthread"], parallel: 1)
            XCTAssertEqual(errors.count, 0, "\(errors.values.first ?? "")")
            let r = try TestSupport.run("\(dir)/\(tag)/main", [], check: false)
            XCTAssertEqual(r.status, 0, r.output)
            outputs.append(try (0..<4).map { try Data(contentsOf: URL(fileURLWithPath: "\(dir)/\(tag)/out\($0).bin")) })
        }
        for k in 0..<4 {
            let ref = outputs[0][k].withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
            for (i, tag) in [(1, "blocked"), (2, "direct")] {
                XCTAssertNil(CppHarness.compare(outputs[i][k], Tensor(dataType: .float, dims: [ref.count], values: ref), rtol: 1e-5, atol: 1e-6), "\(tag) output \(k)")
            }
        }
    }
}
