import Foundation
import SofieDriver
import SofieFrontends
import SofieIR
import SofiePasses
import XCTest

/// PassStatistics (`--stats`): the per-pass node counts add up to the pipeline's change, the
/// fusions that fire on a Keras MobileNet block are the ones that removed nodes, and the CLI
/// prints the table.
final class PassStatisticsTests: XCTestCase {
    func testCountsAddUpAndNameTheFusions() throws {
        let path = TestSupport.repoRoot + "/Tests/Fixtures/keras/mobilenet_block/model.keras"
        let model = try ModelLoader.load(path: path)
        let before = model.graph.nodes.count
        let stats = PassStatistics()
        try Compiler.optimize(model, passes: nil, keepSofieOps: true, statistics: stats)
        let net = stats.entries.reduce(0) { $0 + $1.removed - $1.added }
        XCTAssertEqual(net, before - model.graph.nodes.count, stats.text)
        let bn = try XCTUnwrap(stats.entries.first { $0.pass == "fuse-conv-bn" })
        XCTAssertGreaterThan(bn.removed, 0, stats.text)
        XCTAssertGreaterThan(bn.changed, 0)
        XCTAssertTrue(stats.entries.allSatisfy { $0.runs >= $0.changed && $0.runs >= 1 })

        let r = try TestSupport.sofie(["convert", path, "-o", try TestSupport.tempDir("stats") + "/m.onnx", "--stats"])
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.output.contains("pass") && r.output.contains("nodes -") && r.output.contains("fuse-conv-bn"), r.output)
    }
}

extension PassStatisticsTests {
    /// A MatMul + bias graph with the Add's operands in the given order (bias first or second),
    /// the weight float32 or (to be refused) float64 with a float64 input.
    func matmulAddModel(biasFirst: Bool, weightType: DataType = .float) -> Model {
        let g = Graph(name: "mm")
        var taken = Set<String>()
        let x = Value(name: "x", type: .tensor(TensorType(weightType, fixed: [2, 3])))
        g.inputs = [x]
        let wt = weightType == .float ? Tensor(dataType: .float, dims: [3, 4], values: (0..<12).map { Float($0) })
                                      : Tensor(dataType: .double, dims: [3, 4], values: (0..<12).map { Double($0) })
        let w = g.addConstant(wt, name: "w", taken: &taken)
        let bt = Tensor(dataType: .float, dims: [4], values: [Float](arrayLiteral: 1, 2, 3, 4))
        let b = g.addConstant(bt, name: "b", taken: &taken)
        let p = Value(name: "p"), y = Value(name: "y", type: .tensor(TensorType(weightType, fixed: [2, 4])))
        g.appendNode(Node(opType: "MatMul", name: "mm", inputs: [x, w], outputs: [p]))
        g.appendNode(Node(opType: "Add", name: "add", inputs: biasFirst ? [b, p] : [p, b], outputs: [y]))
        g.outputs = [y]
        let m = Model(graph: g)
        _ = try? ShapeInference().run(m)
        return m
    }

    /// One commutative rule fuses both operand orders; a refused match is counted under its
    /// reason; every built-in pass is registered under the name it states itself.
    func testRulesMatchEitherOrderAndSayWhyTheyRefuse() throws {
        for biasFirst in [false, true] {
            let m = matmulAddModel(biasFirst: biasFirst)
            let report = PassReport()
            XCTAssertTrue(try Fusions.matmulAdd.run(m, report: report), "bias first: \(biasFirst)")
            XCTAssertEqual(m.graph.nodes.map(\.opType), ["Gemm"])
            XCTAssertEqual(report.counts, ["fuse-matmul-add": 1])
            XCTAssertNoThrow(try Verifier.verify(m))
        }
        // float64 weight with a float32 bias: refused, with the reason.
        let m = matmulAddModel(biasFirst: false, weightType: .double)
        let stats = PassStatistics()
        var pm = PassManager([Fusions.matmulAdd])
        pm.statistics = stats
        XCTAssertFalse(try pm.run(m))
        XCTAssertEqual(m.graph.nodes.map(\.opType), ["MatMul", "Add"])
        let entry = try XCTUnwrap(stats.entries.first)
        XCTAssertEqual(entry.refusals, ["fuse-matmul-add: the added constant is not a bias of the product's 4 columns": 1], stats.text)
        XCTAssertTrue(stats.text.contains("refused 1x: fuse-matmul-add: the added constant"), stats.text)

        for (name, make) in PassRegistry.builtins { XCTAssertEqual(make().name, name) }
        XCTAssertEqual(Set(PassRegistry.builtins.map(\.name)).count, PassRegistry.builtins.count, "pass names are unique")
        XCTAssertTrue(PassRegistry.builtins.allSatisfy { !$0.make().summary.isEmpty }, "every pass has a summary")
    }
}

extension PassStatisticsTests {
    /// "Memory planning comes last" is checked by the pass manager, not only written down.
    func testPlanMemoryMustEndThePipeline() throws {
        let m = matmulAddModel(biasFirst: false)
        XCTAssertThrowsError(try PassManager([PlanMemory(), DeadCodeElimination()]).run(m)) { error in
            XCTAssertTrue("\(error)".contains("plan-memory") && "\(error)".contains("must be the last pass"), "\(error)")
        }
        XCTAssertNoThrow(try PassManager([DeadCodeElimination(), PlanMemory()], fixedPoint: true).run(m))
        XCTAssertNoThrow(try PassManager([DeadCodeElimination(), PlanMemory()]).run(m))
        XCTAssertNotNil(m.graph.memoryPlan)
        // sofie compile runs it last itself, whatever --passes lists.
        var options = Compiler.Options(name: "mm")
        options.passes = [PlanMemory(), DeadCodeElimination()]
        XCTAssertNoThrow(try Compiler.emit(matmulAddModel(biasFirst: true), options: options, source: "mm.onnx"))
    }
}

extension PassStatisticsTests {
    /// OpTraits.commutative: CSE merges Add(a, b) with Add(b, a) but not Sub(a, b) with Sub(b, a).
    func testCommonSubexpressionsOfCommutativeOps() throws {
        for (op, merges) in [("Add", true), ("Mul", true), ("Sub", false), ("Max", false)] {
            let g = Graph(name: "cse")
            let t = TensorType(.float, fixed: [4])
            let a = Value(name: "a", type: .tensor(t)), b = Value(name: "b", type: .tensor(t))
            g.inputs = [a, b]
            let p = Value(name: "p"), q = Value(name: "q"), y = Value(name: "y", type: .tensor(t))
            g.appendNode(Node(opType: op, inputs: [a, b], outputs: [p]))
            g.appendNode(Node(opType: op, inputs: [b, a], outputs: [q]))
            g.appendNode(Node(opType: "Div", inputs: [p, q], outputs: [y]))
            g.outputs = [y]
            XCTAssertEqual(try CommonSubexpressionElimination().run(Model(graph: g)), merges, op)
            XCTAssertEqual(g.nodes.count, merges ? 2 : 3, op)
        }
    }
}
