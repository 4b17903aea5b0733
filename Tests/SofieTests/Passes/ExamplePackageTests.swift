import Foundation
import XCTest

/// Builds Examples/CustomPass as a separate package depending on ours, and runs it on a model
/// with a double Relu: its custom pass must remove one, and the C++ must be written.
final class ExamplePackageTests: XCTestCase {
    func testCustomPassExampleBuildsAndRuns() throws {
        try TestSupport.requirePython()
        let dir = try TestSupport.tempDir("example")
        let model = dir + "/double_relu.onnx"
        try TestSupport.run(TestSupport.python, ["-c", """
        import onnx, sys
        from onnx import helper, TensorProto
        g = helper.make_graph([helper.make_node('Relu', ['x'], ['a'], name='r1'), helper.make_node('Relu', ['a'], ['b'], name='r2'),
                               helper.make_node('Identity', ['b'], ['y'], name='id')], 'g',
                              [helper.make_tensor_value_info('x', TensorProto.FLOAT, [2, 3])],
                              [helper.make_tensor_value_info('y', TensorProto.FLOAT, [2, 3])])
        m = helper.make_model(g, opset_imports=[helper.make_opsetid('', 17)]); m.ir_version = 8
        onnx.save(m, sys.argv[1])
        """, model])
        let package = TestSupport.repoRoot + "/Examples/CustomPass"
        let scratch = TestSupport.repoRoot + "/.build/example"
        let swift = ProcessInfo.processInfo.environment["SWIFT_EXEC"] ?? "/usr/bin/env"
        // No cached build description: files added to our package since the last build must be seen.
        let build = try TestSupport.run(swift, ["swift", "build", "--package-path", package, "--scratch-path", scratch, "--disable-build-manifest-caching"], check: false)
        XCTAssertEqual(build.status, 0, String(build.output.suffix(2000)))
        let r = try TestSupport.run(scratch + "/debug/custom-pass-demo", [model, dir + "/out"], check: false)
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.output.contains("ops: Identity=1 Relu=2"), r.output)
        XCTAssertTrue(r.output.contains("ops: Identity=1 Relu=1"), r.output)  // one Relu collapsed; the Identity produces a graph output
        XCTAssertTrue(r.output.contains("nodes: 3 -> 2"), r.output)
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir + "/out/demo.hxx"))

        // The same passes as a plugin of the sofie command.
        let plugin = scratch + "/debug/libCustomPassPlugin.so"
        let listed = try TestSupport.sofie(["passes", "--load-pass-plugin", plugin])
        XCTAssertEqual(listed.status, 0, listed.output)
        XCTAssertTrue(listed.output.contains("collapse-double-relu") && listed.output.contains("Relu(Relu(x)) becomes Relu(x)"), listed.output)
        let c = try TestSupport.sofie(["compile", model, "-o", dir + "/plugin-out", "--load-pass-plugin", plugin,
                                       "--passes", "report-ops,collapse-double-relu,default", "--print-after", "collapse-double-relu"])
        XCTAssertEqual(c.status, 0, c.output)
        XCTAssertTrue(c.output.contains("ops: Identity=1 Relu=2"), c.output)
        XCTAssertTrue(c.output.contains("after collapse-double-relu (run 1, changed): 2 nodes"), c.output)
        XCTAssertTrue(c.output.contains("= Relu(%x)"), c.output)
        let header = CppHarness.withoutDispatchTwins(try String(contentsOfFile: dir + "/plugin-out/double_relu.hxx", encoding: .utf8))
        XCTAssertEqual(header.components(separatedBy: "// Relu").count - 1, 1, "one Relu left in the emitted code")
        // What is not a plugin is refused with the reason.
        let missing = try TestSupport.sofie(["compile", model, "-o", dir + "/x", "--load-pass-plugin", dir + "/none.so"])
        XCTAssertNotEqual(missing.status, 0)
        XCTAssertTrue(missing.output.contains("none.so: no such pass plugin"), missing.output)
        let notPlugin = try TestSupport.sofie(["compile", model, "-o", dir + "/x", "--load-pass-plugin", "/lib/x86_64-linux-gnu/libz.so.1"])
        XCTAssertNotEqual(notPlugin.status, 0)
        XCTAssertTrue(notPlugin.output.contains("not a sofie pass plugin"), notPlugin.output)
    }
}
