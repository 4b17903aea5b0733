import Foundation
import XCTest

/// `sofie verify` as a user runs it: on .npy inputs and random ones, an ONNX file and Keras
/// models (one with integer indices), saved outputs checked by NumPy, a mismatch that must be
/// reported as one (exit 1), bad inputs that get an error naming the file, and a model with
/// run-time dimensions checked at several sizes.
final class VerifyTests: XCTestCase {
    func testMatchesOnGivenAndRandomInputs() throws {
        try TestSupport.requirePython()
        let work = try TestSupport.tempDir("verify")
        let model = TestSupport.repoRoot + "/Examples/models/mlp.onnx"
        try TestSupport.run(TestSupport.python, ["-c", "import numpy as np; np.save('\(work)/x.npy', np.random.default_rng(2).uniform(-1, 1, (4, 784)).astype(np.float32)); np.save('\(work)/bad.npy', np.zeros((4, 783), np.float32))"])
        let r = try TestSupport.sofie(["verify", model, "--input", "0=\(work)/x.npy", "--save-outputs", work + "/out", "--python", TestSupport.python])
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.output.contains("match: every output within"), r.output)
        XCTAssertTrue(r.output.contains("µs per inference"), r.output)
        // The saved output is what ONNX Runtime computes from the same file.
        let check = try TestSupport.run(TestSupport.python, ["-c", """
        import numpy as np, onnxruntime as ort
        s = ort.InferenceSession('\(model)', providers=['CPUExecutionProvider'])
        ref = s.run(None, {s.get_inputs()[0].name: np.load('\(work)/x.npy')})[0]
        y = np.load('\(work)/out/probabilities.npy')
        print(y.shape == ref.shape and bool(np.all(np.abs(y - ref) <= 1e-5 + 1e-4 * np.abs(ref))))
        """])
        XCTAssertEqual(check.output.trimmingCharacters(in: .whitespacesAndNewlines), "True")

        for fixture in ["lstm", "embedding"] {
            let k = try TestSupport.sofie(["verify", "\(TestSupport.repoRoot)/Tests/Fixtures/keras/\(fixture)/model.keras", "--batch", "3", "--python", TestSupport.python])
            XCTAssertEqual(k.status, 0, "\(fixture): \(k.output)")
            XCTAssertTrue(k.output.contains("match:"), k.output)
        }

        // A zero tolerance cannot hold for float sums in another order: reported, exit 1.
        let strict = try TestSupport.sofie(["verify", model, "--rtol", "0", "--atol", "0", "--python", TestSupport.python])
        XCTAssertEqual(strict.status, 1, strict.output)
        XCTAssertTrue(strict.output.contains("MISMATCH") && strict.output.contains("differ from ONNX Runtime"), strict.output)

        let bad = try TestSupport.sofie(["verify", model, "--input", "0=\(work)/bad.npy", "--python", TestSupport.python])
        XCTAssertEqual(bad.status, 1)
        XCTAssertTrue(bad.output.contains("bad.npy: shape [4, 783] does not fit input 0"), bad.output)
        let noInput = try TestSupport.sofie(["verify", model, "--input", "pixels=\(work)/x.npy", "--python", TestSupport.python])
        XCTAssertEqual(noInput.status, 1)
        XCTAssertTrue(noInput.output.contains("the model has no input 'pixels'"), noInput.output)
        // Without Python: sofie's Swift reference evaluator (float64, graph before optimization).
        for path in [model] + ["lstm", "gru", "cnn", "conv_transpose", "normalizations"].map({ "\(TestSupport.repoRoot)/Tests/Fixtures/keras/\($0)/model.keras" })
            + ["resnet18_mini_torchscript", "bert_tiny_dynamo"].map({ "\(TestSupport.repoRoot)/Tests/Fixtures/pytorch/\($0)/model.onnx" }) {
            let s = try TestSupport.sofie(["verify", path, "--swift-reference", "--batch", "2", "--runs", "2"])
            XCTAssertEqual(s.status, 0, "\(path): \(s.output)")
            XCTAssertTrue(s.output.contains("reference: sofie's Swift reference evaluator") && s.output.contains("match:"), s.output)
        }
        try TestSupport.run(TestSupport.python, ["-c", """
        import onnx
        from onnx import helper, TensorProto
        g = helper.make_graph([helper.make_node('DepthToSpace', ['x'], ['y'], blocksize=2, name='d2s')], 'g',
                              [helper.make_tensor_value_info('x', TensorProto.FLOAT, [1, 8, 2, 2])],
                              [helper.make_tensor_value_info('y', TensorProto.FLOAT, [1, 2, 4, 4])])
        onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid('', 17)], ir_version=8), '\(work)/d2s.onnx')
        """])
        let missing = try TestSupport.sofie(["verify", work + "/d2s.onnx", "--swift-reference"])
        XCTAssertEqual(missing.status, 1)
        XCTAssertTrue(missing.output.contains("'d2s' (DepthToSpace): the Swift reference evaluator has no DepthToSpace yet"), missing.output)
        // Run-time dimensions: compiled once, checked at the smallest value, about half and the
        // bound (a GNN's nodes and edges; the random edge list indexes the nodes of each size),
        // against ONNX Runtime and against the Swift reference.
        for reference in [["--python", TestSupport.python], ["--swift-reference"]] {
            let gnn = "\(TestSupport.repoRoot)/Tests/Fixtures/runtime_dims/gnn_nodes_edges_dynamo/model.onnx"
            let d = try TestSupport.sofie(["verify", gnn, "--dim", "n=max:32", "--dim", "e=max:64"] + reference)
            XCTAssertEqual(d.status, 0, d.output)
            XCTAssertTrue(d.output.contains("sizes:     e = 1, n = 1; e = 32, n = 16; e = 64, n = 32") && d.output.contains("match:"), d.output)
        }
        let files = try TestSupport.sofie(["verify", "\(TestSupport.repoRoot)/Tests/Fixtures/runtime_dims/deepsets_dynamo/model.onnx", "--dim", "n=max:32",
                                           "--input", "0=\(work)/x.npy", "--python", TestSupport.python])
        XCTAssertEqual(files.status, 1)
        XCTAssertTrue(files.output.contains("--input files are not taken with --dim NAME=max:BOUND"), files.output)
        let noPython = try TestSupport.sofie(["verify", model, "--python", "/nonexistent/python3"])
        XCTAssertEqual(noPython.status, 1)
        XCTAssertTrue(noPython.output.contains("/nonexistent/python3 cannot import onnxruntime"), noPython.output)
    }
}
