import Foundation
import XCTest

/// RNN, LSTM and GRU as single ops, in the forms ROOT TMVA SOFIE's own test models use
/// (Tests/scripts/make_recurrent_ops.py: batch-major layout, bidirectional and reverse,
/// sequence_lens, initial states, peepholes, clip, linear_before_reset, HardSigmoid gates),
/// against ONNX Runtime, the emitted code built with AddressSanitizer and UBSan.
final class RecurrentOpTests: XCTestCase {
    func testRecurrentOpsMatchONNXRuntime() throws {
        try TestSupport.requirePython()
        let fixtures = try TestSupport.tempDir("recurrent-fixtures")
        try TestSupport.run(TestSupport.python, [TestSupport.repoRoot + "/Tests/scripts/make_recurrent_ops.py", fixtures])
        let names = try TestSupport.subfolders(fixtures)
        XCTAssertEqual(names.count, 22, "\(names)")
        try ReferenceFixtures.compileBuildCompare(fixtures: fixtures, names: names, work: try TestSupport.tempDir("recurrent"), sanitize: true)
    }

    /// clip=0 (which TMVA SOFIE writes for "no clipping") compiles, with a warning that says how it was read.
    func testClipZeroIsReadAsNoClippingWithAWarning() throws {
        try TestSupport.requirePython()
        let fixtures = try TestSupport.tempDir("recurrent-clip")
        try TestSupport.run(TestSupport.python, [TestSupport.repoRoot + "/Tests/scripts/make_recurrent_ops.py", fixtures])
        let r = try TestSupport.sofie(["compile", "\(fixtures)/lstm_clip0/model.onnx", "-o", fixtures + "/out"])
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.output.contains("warning: \(fixtures)/lstm_clip0/model.onnx: node 'lstm_clip0' (op LSTM): clip=0.0 is not a positive threshold; read as no clipping"), r.output)
        let clipped = try TestSupport.sofie(["compile", "\(fixtures)/lstm_clip/model.onnx", "-o", fixtures + "/out2"])
        XCTAssertFalse(clipped.output.contains("warning"), clipped.output)
    }
}

/// Small models for bugs once found in the emitted C++ (Tests/scripts/make_regression_models.py):
/// ReduceLogSumExp with constant axes, argument names that collide after sanitizing, variadic ops
/// with many inputs.
final class EmitterRegressionTests: XCTestCase {
    func testRegressionModelsMatchONNXRuntime() throws {
        try TestSupport.requirePython()
        let fixtures = try TestSupport.tempDir("regression-fixtures")
        try TestSupport.run(TestSupport.python, [TestSupport.repoRoot + "/Tests/scripts/make_regression_models.py", fixtures])
        let names = try TestSupport.subfolders(fixtures)
        XCTAssertEqual(names.count, 8, "\(names)")
        try ReferenceFixtures.compileBuildCompare(fixtures: fixtures, names: names, work: try TestSupport.tempDir("regression"), sanitize: true)
    }
}
