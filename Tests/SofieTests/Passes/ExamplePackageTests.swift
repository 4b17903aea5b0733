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
    }
}
