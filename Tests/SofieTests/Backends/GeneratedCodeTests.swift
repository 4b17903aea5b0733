import Foundation
import SofieBackends
import SofieDriver
import SofieFrontends
import SofieIR
import XCTest

/// Properties of the generated code: hostile names cannot break or inject code, several
/// Sessions run concurrently, output is deterministic, both g++ and clang++ accept it with
/// -Wall -Wextra -Werror, and the CLI's errors name node and op.
final class GeneratedCodeTests: XCTestCase {
    func compileAndCompare(model: String, dir: String, name: String, threads: Int, compilers: [String]) throws {
        var options = Compiler.Options(name: name)
        options.weights = .file
        let emitted = try Compiler.compile(path: model, directory: dir, options: options)
        try TestSupport.run(TestSupport.python, [TestSupport.repoRoot + "/Tests/scripts/ort_run.py", model, dir])
        let driver = CppHarness.singleModelDriver(header: emitted.header, namespace: emitted.namespace, dir: dir,
                                                  weights: "\(dir)/\(emitted.weightsFileName)", threads: threads, repeats: 200)
        try driver.write(toFile: "\(dir)/main.cpp", atomically: true, encoding: .utf8)
        for cxx in compilers {
            let bin = "\(dir)/main-\(cxx)"
            let errors = CppHarness.build([("\(dir)/main.cpp", bin)], flags: CppHarness.warningFlags + ["-O2", "-pthread"], parallel: 1, compiler: cxx)
            XCTAssertEqual(errors.count, 0, "\(cxx): \(errors.values.first ?? "")")
            guard errors.isEmpty else { continue }
            let r = try TestSupport.run(bin, [], check: false)
            XCTAssertEqual(r.status, 0, r.output)
            var k = 0
            while FileManager.default.fileExists(atPath: "\(dir)/out\(k).ref") {
                let ref = try Data(contentsOf: URL(fileURLWithPath: "\(dir)/out\(k).ref"))
                let expected = Tensor(dataType: .float, dims: [ref.count / 4], values: ref.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) })
                for t in 0..<threads {
                    let file = threads > 1 ? "\(dir)/out\(k)_t\(t).bin" : "\(dir)/out\(k).bin"
                    let out = try Data(contentsOf: URL(fileURLWithPath: file))
                    XCTAssertNil(CppHarness.compare(out, expected, rtol: 1e-4, atol: 1e-5), "\(cxx) thread \(t) output \(k)")
                }
                k += 1
            }
            XCTAssertGreaterThan(k, 0)
        }
    }

    func testHostileNamesCannotBreakTheCode() throws {
        try TestSupport.requirePython()
        let dir = try TestSupport.tempDir("hostile")
        let model = dir + "/hostile.onnx"
        try TestSupport.run(TestSupport.python, [TestSupport.repoRoot + "/Tests/scripts/make_hostile_model.py", model])
        try compileAndCompare(model: model, dir: dir, name: "class */ evil\n", threads: 1, compilers: ["g++", "clang++"])
        let header = try String(contentsOfFile: dir + "/class_evil.hxx", encoding: .utf8)
        // Hostile text may appear only inside // comments, which end at the line's end.
        for line in header.split(separator: "\n", omittingEmptySubsequences: false) {
            let code = line.components(separatedBy: "//")[0]
            for bad in ["<evil>", "#define float", "system(", "rm -rf", "namespace {", "return 0;"] {
                XCTAssertFalse(code.contains(bad), "hostile text '\(bad)' reached code: \(line)")
            }
            let trimmed = code.trimmingCharacters(in: .whitespaces)
            if trimmed.hasPrefix("#") {
                XCTAssertTrue(["#pragma once", "#include <", "#ifndef SOFIE_RUNTIME_V1", "#define SOFIE_RUNTIME_V1", "#endif",
                                "#if defined(__GNUC__) || defined(__clang__)", "#else"].contains { trimmed.hasPrefix($0) }, "unexpected directive: \(line)")
            }
            XCTAssertFalse(line.hasSuffix("\\"), "a line ends in a backslash (line splice): \(line)")
            XCTAssertFalse(line.contains("??"), "a trigraph-like sequence: \(line)")
        }
        XCTAssertFalse(header.unicodeScalars.contains { !$0.isASCII }, "non-ASCII reached the header")
        XCTAssertFalse(header.contains("\r"), "a carriage return reached the header")
    }

    func testSessionsRunConcurrentlyInThreads() throws {
        try TestSupport.requirePython()
        let dir = try TestSupport.tempDir("threads")
        try compileAndCompare(model: TestSupport.repoRoot + "/Examples/models/mlp.onnx", dir: dir, name: "mlp", threads: 8, compilers: ["g++"])
    }

    func testEmissionIsDeterministic() throws {
        let path = TestSupport.repoRoot + "/Examples/models/mlp.onnx"
        var options = Compiler.Options(name: "mlp")
        options.weights = .embed
        let a = try Compiler.emit(try ONNXReader.read(path: path), options: options, source: path)
        let b = try Compiler.emit(try ONNXReader.read(path: path), options: options, source: path)
        XCTAssertEqual(a.header, b.header)
        XCTAssertTrue(a.header.contains("kWeights"))
    }

    func testUnsupportedOpIsAClearCompileError() throws {
        try TestSupport.requirePython()
        let folder = try TestSupport.nodeTestsFolder()
        let out = try TestSupport.tempDir("unsupported")
        let r = try TestSupport.sofie(["compile", "\(folder)/test_det_2d/model.onnx", "-o", out])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.output.contains("Det") && r.output.contains("not supported") && r.output.contains("supported: "), r.output)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: out), [], "no partial output")
        let r2 = try TestSupport.sofie(["compile", "\(folder)/test_reduce_sum_default_axes_keepdims_example/model.onnx", "-o", out])
        XCTAssertNotEqual(r2.status, 0)
        XCTAssertTrue(r2.output.contains("ReduceSum") && r2.output.contains("compile-time constant"), r2.output)
    }
}
