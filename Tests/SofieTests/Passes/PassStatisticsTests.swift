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
