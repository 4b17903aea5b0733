import Foundation
import SofieBackends
import SofieDriver
import SofieFrontends
import SofieIR
import SofiePasses
import XCTest

/// Properties of the generated code: hostile names cannot break or inject code, several
/// Sessions run concurrently, output is deterministic, both g++ and clang++ accept it with
/// -Wall -Wextra -Werror, and the CLI's errors name node and op.
final class GeneratedCodeTests: XCTestCase {
    func compileAndCompare(model: String, dir: String, name: String, threads: Int, compilers: [String],
                           flagSets: [[String]] = [["-O2"]], gccFlagSets: [[String]] = [], passes: [String]? = nil) throws {
        var options = Compiler.Options(name: name)
        options.weights = .file
        if let passes { options.passes = try PassRegistry.pipeline(names: passes) }
        let emitted = try Compiler.compile(path: model, directory: dir, options: options)
        try TestSupport.run(TestSupport.python, [TestSupport.repoRoot + "/Tests/scripts/ort_run.py", model, dir])
        let driver = CppHarness.singleModelDriver(header: emitted.header, namespace: emitted.namespace, dir: dir,
                                                  weights: "\(dir)/\(emitted.weightsFileName)", threads: threads, repeats: 200)
        try driver.write(toFile: "\(dir)/main.cpp", atomically: true, encoding: .utf8)
        // Every compiler and flag set at once, on both cores (gccFlagSets for g++ alone, numbered
        // after flagSets).
        let builds = compilers.flatMap { cxx in
            (flagSets + (cxx == "g++" ? gccFlagSets : [])).enumerated().map { (cxx: cxx, bin: "\(dir)/main-\(cxx)-\($0)", flags: $1) }
        }
        let buildErrors = CppHarness.buildVariants(builds.map { ("\(dir)/main.cpp", $0.bin, $0.cxx, CppHarness.warningFlags + $0.flags + ["-pthread"]) })
        for (cxx, bin, flags) in builds {
            XCTAssertNil(buildErrors[bin], "\(cxx) \(flags.joined(separator: " ")): \(buildErrors[bin] ?? "")")
            guard buildErrors[bin] == nil else { continue }
            let r = try TestSupport.run(bin, [], check: false)
            XCTAssertEqual(r.status, 0, r.output)
            var k = 0
            while FileManager.default.fileExists(atPath: "\(dir)/out\(k).ref") {
                let ref = try Data(contentsOf: URL(fileURLWithPath: "\(dir)/out\(k).ref"))
                let expected = Tensor(dataType: .float, dims: [ref.count / 4], values: ref.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) })
                for t in 0..<threads {
                    let file = threads > 1 ? "\(dir)/out\(k)_t\(t).bin" : "\(dir)/out\(k).bin"
                    let out = try Data(contentsOf: URL(fileURLWithPath: file))
                    XCTAssertNil(CppHarness.compare(out, expected, rtol: 1e-4, atol: 1e-5), "\(cxx) \(flags.joined(separator: " ")) thread \(t) output \(k)")
                }
                k += 1
            }
            XCTAssertGreaterThan(k, 0)
        }
    }

    /// Each specialized kernel of the runtime (transB weights stored transposed, dot products on
    /// transposed narrow weights,
    /// direct depthwise convolution with stride, dilation and multiplier on padded planes (1-D and
    /// 2-D, every register block) and by rows (3-D), convolutions packing their im2col blocks
    /// straight from the image (several K panels and column blocks, strides, dilations,
    /// asymmetric pads, groups, 1-D to 3-D), the direct kernel of convolutions with few output
    /// channels (conv_rows: partial channel blocks, strides, dilation, pads wider than the kernel, a
    /// batch), convolutions with few output pixels (conv_pixels), constant MatMul/Gemm weights stored packed (every path of gemm_packed), Relu and
    /// residual epilogues) against ONNX Runtime, with g++ and clang++, at -O2 and -O3 -march=native.
    func testSpecializedKernelPathsMatchONNXRuntime() throws {
        try TestSupport.requirePython()
        let dir = try TestSupport.tempDir("kernel-paths")
        let model = dir + "/kernel_paths.onnx"
        try TestSupport.run(TestSupport.python, [TestSupport.repoRoot + "/Tests/scripts/make_kernel_paths.py", model])
        // Plain -O2 (with g++ on x86-64 the AVX-512 twin of run when the CPU has AVX-512, else the
        // AVX2 twin when it has AVX2; clang++ SSE2), -O3 -march=native (this machine's widest),
        // -O2 without the twins (SSE2: 4-float vectors) and, with g++, -O2 without the AVX-512
        // twin (the AVX2 twin on a machine with AVX-512). The NCHW kernels: the default pipeline
        // without the blocked layout.
        try compileAndCompare(model: model, dir: dir, name: "kernel_paths", threads: 1, compilers: ["g++", "clang++"],
                              flagSets: [["-O2"], ["-O3", "-march=native"], ["-O2", "-DSOFIE_NO_DISPATCH"]],
                              gccFlagSets: [["-O2", "-DSOFIE_NO_AVX512_DISPATCH"]],
                              passes: PassRegistry.defaultPipeline.filter { $0 != "block-channels" })
        #if arch(x86_64)
        let symbols = { (bin: String) in (try? TestSupport.run("/usr/bin/env", ["nm", "-C", bin]).output) ?? "" }
        XCTAssertTrue(symbols(dir + "/main-g++-0").contains("Session::run_avx512("), "g++ -O2 builds the AVX-512 twin")
        XCTAssertTrue(symbols(dir + "/main-g++-0").contains("Session::run_avx2("), "g++ -O2 builds the AVX2 twin")
        XCTAssertFalse(symbols(dir + "/main-g++-2").contains("run_avx"), "-DSOFIE_NO_DISPATCH leaves them out")
        XCTAssertFalse(symbols(dir + "/main-g++-3").contains("run_avx512"), "-DSOFIE_NO_AVX512_DISPATCH leaves the AVX-512 twin out")
        XCTAssertTrue(symbols(dir + "/main-g++-3").contains("Session::run_avx2("), "-DSOFIE_NO_AVX512_DISPATCH keeps the AVX2 twin")
        // -march=native has AVX2 already: no AVX2 twin; on a CPU with AVX-512 no twin at all, on
        // one without (a Zen 3, say) the AVX-512 twin stays, for the CPUs that have it.
        let cpuFlags = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8))?.split(separator: "\n").first { $0.hasPrefix("flags") } ?? ""
        let hasAVX512 = ["avx512f", "avx512vl", "avx512bw", "avx512dq"].allSatisfy { cpuFlags.split(separator: " ").contains(Substring($0)) }
        XCTAssertFalse(symbols(dir + "/main-g++-1").contains("run_avx2("), "-march=native has AVX2 already: no AVX2 twin")
        XCTAssertEqual(symbols(dir + "/main-g++-1").contains("run_avx512("), !hasAVX512, "-march=native keeps the AVX-512 twin only where the CPU lacks AVX-512")
        XCTAssertFalse(symbols(dir + "/main-clang++-0").contains("run_avx"), "clang++ builds no twin")
        #endif
        let header = CppHarness.withoutDispatchTwins(try String(contentsOfFile: dir + "/kernel_paths.hxx", encoding: .utf8))
        XCTAssertEqual(header.components(separatedBy: "sofie_rt::depthwise_plane<float>(").count - 1, 10, "1-D and 2-D depthwise convolutions run on padded planes")
        XCTAssertEqual(header.components(separatedBy: "sofie_rt::depthwise_conv<float>(").count - 1, 1, "the 3-D one by rows")
        XCTAssertTrue(header.contains("sofie_rt::Act::Relu"), "the Relu rides in an epilogue")
        XCTAssertEqual(header.components(separatedBy: "sofie_rt::Act::Clip,").count - 1, 4, "so do the Clips (stored from registers but after a residual)")
        for act in ["HardSwish", "Sigmoid", "HardSigmoid"] { XCTAssertTrue(header.contains("sofie_rt::Act::\(act),"), act) }
        XCTAssertEqual(header.components(separatedBy: "sofie_rt::gemm_conv(").count - 1, 6, "convolutions pack their im2col blocks from the image")
        XCTAssertEqual(header.components(separatedBy: "sofie_rt::conv_rows<float, 6, 2>(").count - 1, 4, "few output channels: the direct kernel (5 and 12 channels: blocks of 6)")
        XCTAssertEqual(header.components(separatedBy: "sofie_rt::conv_rows<float, 4, 2>(").count - 1, 6, "2, 7, 8 and 16 channels: blocks of 4")
        XCTAssertEqual(header.components(separatedBy: "sofie_rt::conv_rows<float, 8, 1>(").count - 1, 1, "rows of one vector")
        XCTAssertEqual(header.components(separatedBy: "sofie_rt::conv_pixels<float>(").count - 1, 4, "at most 16 output pixels: the product the other way round")
        XCTAssertFalse(header.contains("sofie_rt::im2col("), "no im2col matrix is formed")
        XCTAssertEqual(header.components(separatedBy: "sofie_rt::gemm_packed(").count - 1, 6, "constant MatMul/Gemm weights are stored packed")

        // The same model through the default pipeline: the convolutions it can take run in the
        // blocked layout (one group of 16 or more channels, depthwise, groups of whole blocks).
        let blockedDir = try TestSupport.tempDir("kernel-paths-blocked")
        try compileAndCompare(model: model, dir: blockedDir, name: "kernel_paths", threads: 1, compilers: ["g++", "clang++"],
                              flagSets: [["-O2"], ["-O3", "-march=native"], ["-O2", "-DSOFIE_NO_DISPATCH"]])
        let blocked = CppHarness.withoutDispatchTwins(try String(contentsOfFile: blockedDir + "/kernel_paths.hxx", encoding: .utf8))
        for call in ["sofie_rt::conv_blocked(", "sofie_rt::depthwise_blocked(", "sofie_rt::to_blocked(", "sofie_rt::from_blocked("] {
            XCTAssertGreaterThan(blocked.components(separatedBy: call).count - 1, 1, call)
        }
        XCTAssertGreaterThan(blocked.components(separatedBy: "sofie_rt::conv_winograd_blocked(").count - 1, 0, "3×3 stride-1 convolutions run as Winograd F(2×2, 3×3)")
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
                XCTAssertTrue(["#pragma once", "#include <", "#ifndef SOFIE_RUNTIME_", "#define SOFIE_RUNTIME_", "#endif",
                                "#if defined(__GNUC__) || defined(__clang__)", "#if defined(__AVX512F__)", "#elif defined(__AVX__)", "#else",
                                "#if defined(SOFIE_NPY)", "#define SOFIE_NPY_V1", "#define SOFIE_MATH inline", "#undef SOFIE_MATH",
                                // the AVX-512 and AVX2 copies of the runtime and the twins of the run methods
                                "#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)", "#pragma GCC push_options",
                                "#pragma GCC target(\"avx2,fma\")", "#pragma GCC target(\"avx512f,avx512vl,avx512bw,avx512dq,avx2,fma\")",
                                "#pragma GCC pop_options", "#define SOFIE_RT_VECTOR_BYTES 32", "#define SOFIE_RT_VECTOR_BYTES 64",
                                "#undef SOFIE_RT_VECTOR_BYTES", "#if defined(SOFIE_RT_VECTOR_BYTES)", "#elif defined(__AVX512F__)",
                                "#if defined(SOFIE_AVX2_TWINS)", "#ifndef SOFIE_AVX2_TWINS", "#define SOFIE_AVX2_TWINS 1",
                                "#if defined(SOFIE_AVX512_TWINS)", "#ifndef SOFIE_AVX512_TWINS", "#define SOFIE_AVX512_TWINS 1",
                                "#if defined(__clang__)", "#define SOFIE_SHUFFLE16(", "#undef SOFIE_SHUFFLE16",
                                // the innermost broadcast loop's pragma
                                "#ifndef SOFIE_INNER_LOOP", "#if defined(__GNUC__) && !defined(__clang__)",
                                "#define SOFIE_INNER_LOOP _Pragma(\"GCC unroll 1\")", "#define SOFIE_INNER_LOOP",
                                // the depthwise row tile's register pin
                                "#if defined(__x86_64__) && defined(__AVX512F__)", "#elif defined(__x86_64__)"].contains { trimmed.hasPrefix($0) }, "unexpected directive: \(line)")
            }
            XCTAssertFalse(line.hasSuffix("\\"), "a line ends in a backslash (line splice): \(line)")
            XCTAssertFalse(line.contains("??"), "a trigraph-like sequence: \(line)")
        }
        XCTAssertFalse(header.unicodeScalars.contains { !$0.isASCII }, "non-ASCII reached the header")
        XCTAssertFalse(header.contains("\r"), "a carriage return reached the header")
    }

    /// Node names reach the run-time error messages (string literals), not only comments: a
    /// Range named to close the literal and inject a static_assert (its length checked against
    /// the declared output, so the message quotes the name) must give a header that compiles,
    /// the quote replaced.
    func testHostileNamesCannotLeaveAStringLiteral() throws {
        let g = Graph(name: "quoted")
        let ins = ["s", "l", "d"].map { Value(name: $0, type: .tensor(TensorType(.float, fixed: []))) }
        g.inputs = ins
        let y = Value(name: "y", type: .tensor(TensorType(.float, fixed: [5])))
        let name = "r\"); static_assert(false, \"injected"
        g.appendNode(Node(opType: "Range", name: name, inputs: ins, outputs: [y]))
        g.outputs = [y]
        let model = Model(graph: g)
        model.opsetImports = [OpsetImport(domain: "", version: 17)]
        let dir = try TestSupport.tempDir("quoted")
        let emitted = try Compiler.compile(model, source: "quoted.onnx", directory: dir, options: Compiler.Options(name: "quoted"))
        XCTAssertFalse(emitted.header.contains("r\"); static_assert"), "the name's quote reached the header")
        XCTAssertTrue(emitted.header.contains("Range 'r_); static_assert(false, _injected'"), "the message quotes the name, quote replaced")
        try "#include \"quoted.hxx\"\nint main() { quoted::Session s; (void)s; return 0; }\n".write(toFile: dir + "/main.cpp", atomically: true, encoding: .utf8)
        let errors = CppHarness.build([(dir + "/main.cpp", dir + "/main")], flags: CppHarness.warningFlags + ["-O0"], parallel: 1)
        XCTAssertTrue(errors.isEmpty, "\(errors.values.joined(separator: "\n").prefix(3000))")
    }

    func testSessionsRunConcurrentlyInThreads() throws {
        try TestSupport.requirePython()
        let dir = try TestSupport.tempDir("threads")
        try compileAndCompare(model: TestSupport.repoRoot + "/Examples/models/mlp.onnx", dir: dir, name: "mlp", threads: 8, compilers: ["g++"])
    }

    /// Weights, fills and arena start on a 64-byte boundary however the heap places the
    /// storage (new[] gives 16 bytes), for both constructors: every tensor offset is a multiple
    /// of 64, so a vector load of a tensor never straddles two cache lines. Misaligned storage
    /// cost 1.4x on an LSTM 256->256 and 1.56x on SqueezeNet (BENCHMARKS.md, 2026-12-07).
    func testSessionStorageIsAlignedTo64Bytes() throws {
        let dir = try TestSupport.tempDir("aligned")
        let path = TestSupport.repoRoot + "/Examples/models/mlp.onnx"
        for (name, weights) in [("embedded", WeightsPlacement.embed), ("filed", .file)] {
            var options = Compiler.Options(name: name)
            options.weights = weights
            _ = try Compiler.compile(path: path, directory: dir, options: options)
        }
        // The members are private; this test alone reads them.
        let driver = """
        #include <cstdint>
        #include <cstdio>
        #include <memory>
        #include <string>
        #include <vector>
        #define private public
        #include "embedded.hxx"
        #include "filed.hxx"
        #undef private
        template <class S> static int misaligned(const S& s) {
            int bad = 0;
            for (const unsigned char* p : {s.weights_, s.fills_, s.arena_}) bad += reinterpret_cast<std::uintptr_t>(p) % 64 != 0;
            return bad;
        }
        int main() {
            int bad = 0, sessions = 0;
            std::vector<std::unique_ptr<char[]>> keep;  // shifts the heap by 1..64 bytes
            for (int shift = 1; shift <= 64; ++shift) {
                keep.emplace_back(new char[shift]);
                embedded::Session a;
                filed::Session b("\(dir)/filed.weights");
                bad += misaligned(a) + misaligned(b);
                sessions += 2;
            }
            std::printf("%d of %d pointers misaligned\\n", bad, 3 * sessions);
            return bad != 0;
        }

        """
        try driver.write(toFile: dir + "/main.cpp", atomically: true, encoding: .utf8)
        let errors = CppHarness.build([(dir + "/main.cpp", dir + "/main")], flags: CppHarness.warningFlags + ["-O0", "-I", dir], parallel: 1)
        XCTAssertTrue(errors.isEmpty, "\(errors.values.joined(separator: "\n").prefix(3000))")
        guard errors.isEmpty else { return }
        let r = try TestSupport.run(dir + "/main", [], check: false)
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.output.contains("0 of 384 pointers misaligned"), r.output)
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

    /// The Keras CNN fixture's Session reads like hand-written code: one named pointer per
    /// tensor at the top of run, matrix products with named arguments, no loops of one
    /// iteration or index terms that are always 0. The golden file keeps it so (regenerate
    /// with SOFIE_UPDATE_GOLDEN=1 and read the diff); the rules below hold whatever it says.
    func testKerasCNNHeaderReadsLikeHandWrittenCode() throws {
        let path = TestSupport.repoRoot + "/Tests/Fixtures/keras/cnn/model.keras"
        var options = Compiler.Options(name: "cnn")
        options.weights = .file
        let header = try Compiler.emit(try ModelLoader.load(path: path), options: options, source: "model.keras").header
        let session = try XCTUnwrap(header.range(of: "struct Session {")).lowerBound
        let text = String(header[session...])
        let golden = TestSupport.repoRoot + "/Tests/Fixtures/golden/keras_cnn_session.hxx"
        if ProcessInfo.processInfo.environment["SOFIE_UPDATE_GOLDEN"] == "1" {
            try text.write(toFile: golden, atomically: true, encoding: .utf8)
        }
        let expected = try String(contentsOfFile: golden, encoding: .utf8)
        if text != expected {
            let got = text.split(separator: "\n", omittingEmptySubsequences: false), want = expected.split(separator: "\n", omittingEmptySubsequences: false)
            let k = (0..<min(got.count, want.count)).first { got[$0] != want[$0] } ?? min(got.count, want.count)
            XCTFail("the emitted Session differs from \(golden) from line \(k + 1): got '\(k < got.count ? got[k] : "<end>")', expected '\(k < want.count ? want[k] : "<end>")'")
        }
        // The rules, on run's body after its pointer declarations.
        let run = try XCTUnwrap(text.range(of: "    void run(")).upperBound
        let lines = text[run...].split(separator: "\n").map(String.init)
        let firstOp = try XCTUnwrap(lines.firstIndex { $0.contains("// ") && $0.contains("->") })
        let declarations = lines[..<firstOp].filter { $0.contains(" t_") }
        XCTAssertGreaterThanOrEqual(declarations.count, 8)
        for d in declarations { XCTAssertTrue(d.contains("// float["), "a tensor pointer states its type and shape: \(d)") }
        let code = lines[firstOp...].prefix { !$0.hasPrefix("    std::unique_ptr") }
        for l in code {
            XCTAssertFalse(l.contains("reinterpret_cast"), "tensors are named, not cast at each use: \(l)")
            XCTAssertNil(l.range(of: "< 1;"), "a loop of one iteration: \(l)")
            XCTAssertNil(l.range(of: "(\\(|\\[| )[a-z][a-z0-9]* \\* 1\\b", options: .regularExpression), "a term times 1: \(l)")
            XCTAssertNil(l.range(of: "\\+ 0[^.0-9x]", options: .regularExpression), "a term that is always 0: \(l)")
            XCTAssertFalse(l.contains("(void)"), l)
            XCTAssertFalse(l.contains("sofie_rt::gemm<"), "matrix products take named arguments: \(l)")
        }
        XCTAssertEqual(code.filter { $0.contains("sofie_rt::gemm(mm)") }.count, 1, "the dense layer")
        XCTAssertEqual(code.filter { $0.contains("sofie_rt::conv_rows<float, 6, 2>(") || $0.contains("sofie_rt::conv_rows<float, 4, 2>(") }.count, 2, "the two convolutions (6 and 8 channels: the direct kernel)")
        // Every weight stored once, in the layout its reader takes (the dense layer's 392 x 10
        // kernel used to be stored in its own layout too, unread: 15 KB of 34).
        let weightLine = try XCTUnwrap(text.split(separator: "\n").first { $0.contains("kWeightBytes = ") })
        let weightBytes = try XCTUnwrap(Int(weightLine.split(separator: "=")[1].trimmingCharacters(in: CharacterSet(charactersIn: " ;"))))
        XCTAssertLessThanOrEqual(weightBytes, 4562 * 4 + 10 * 64, "4,562 float parameters in 10 initializers, each 64-byte aligned")
    }

    /// CumSum with its axis as a graph input: right for each axis given at run time, and an axis
    /// out of range for the rank is an std::invalid_argument naming it (not a wrong read).
    func testRunTimeAxisOfCumSum() throws {
        let g = Graph(name: "g")
        let x = Value(name: "x", type: .tensor(TensorType(.float, fixed: [2, 3])))
        let axis = Value(name: "axis", type: .tensor(TensorType(.int64, fixed: [])))
        g.inputs = [x, axis]
        let y = Value(name: "y")
        g.appendNode(Node(opType: "CumSum", name: "cum", inputs: [x, axis], outputs: [y]))
        g.outputs = [y]
        let model = Model(graph: g)
        model.opsetImports = [OpsetImport(domain: "", version: 14)]
        let dir = try TestSupport.tempDir("cumsum-axis")
        var options = Compiler.Options(name: "model")
        options.weights = .embed
        let emitted = try Compiler.compile(model, source: "cumsum.onnx", directory: dir, options: options)
        try Data([Float(1), 2, 3, 4, 5, 6].flatMap { withUnsafeBytes(of: $0, Array.init) }).write(to: URL(fileURLWithPath: "\(dir)/in0.bin"))
        let driver = CppHarness.singleModelDriver(header: emitted.header, namespace: emitted.namespace, dir: dir, weights: nil)
        try driver.write(toFile: "\(dir)/main.cpp", atomically: true, encoding: .utf8)
        let errors = CppHarness.build([("\(dir)/main.cpp", "\(dir)/main")], flags: CppHarness.warningFlags + ["-O1", "-fsanitize=address,undefined", "-fno-sanitize-recover=all"])
        XCTAssertTrue(errors.isEmpty, "\(errors)")
        for (a, expected) in [(Int64(0), [Float(1), 2, 3, 5, 7, 9]), (1, [1, 3, 6, 4, 9, 15]), (-1, [1, 3, 6, 4, 9, 15])] {
            try Data(withUnsafeBytes(of: a, Array.init)).write(to: URL(fileURLWithPath: "\(dir)/in1.bin"))
            let r = try TestSupport.run("\(dir)/main", [], check: false)
            XCTAssertEqual(r.status, 0, r.output)
            let out = try Data(contentsOf: URL(fileURLWithPath: "\(dir)/out0.bin"))
            XCTAssertEqual(out.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }, expected, "axis \(a)")
        }
        try Data(withUnsafeBytes(of: Int64(2), Array.init)).write(to: URL(fileURLWithPath: "\(dir)/in1.bin"))
        let r = try TestSupport.run("\(dir)/main", [], check: false)
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.output.contains("CumSum axis 2 is out of range for rank 2"), r.output)
    }

    func testUnsupportedOpIsAClearCompileError() throws {
        try TestSupport.requirePython()
        let folder = try TestSupport.nodeTestsFolder()
        let out = try TestSupport.tempDir("unsupported")
        let r = try TestSupport.sofie(["compile", "\(folder)/test_tfidfvectorizer_tf_only_bigrams_skip0/model.onnx", "-o", out])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.output.contains("TfIdfVectorizer") && r.output.contains("not supported") && r.output.contains("supported: "), r.output)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: out), [], "no partial output")
        // A Pad whose pads are computed at run time, its output's shape neither declared nor
        // implied, is refused: CenterCropPad's function body with the output's declared shape
        // taken away (with it, the graph is specialized on the `shape` values that give it;
        // RuntimeDimsTests), so no shape tells what the pads are (reductions read their axes
        // at run time, checked against the declared output shape).
        let undeclared = try TestSupport.tempDir("undeclared") + "/model.onnx"
        try TestSupport.run(TestSupport.python, ["-c", """
            import onnx, sys
            m = onnx.load(sys.argv[1])
            for o in m.graph.output: o.type.tensor_type.ClearField("shape")
            onnx.save(m, sys.argv[2])
            """, "\(folder)/test_center_crop_pad_crop_expanded/model.onnx", undeclared])
        let r2 = try TestSupport.sofie(["compile", undeclared, "-o", out])
        XCTAssertNotEqual(r2.status, 0)
        XCTAssertTrue(r2.output.contains("Pad") && r2.output.contains("compile-time constant"), r2.output)
        let r3 = try TestSupport.sofie(["compile", "\(folder)/test_reduce_sum_keepdims_example/model.onnx", "-o", out])
        XCTAssertEqual(r3.status, 0, r3.output)
    }
}

/// A symbolic batch stays a run-time argument when the model keeps batch rows independent.
final class BatchTests: XCTestCase {
    func testRuntimeBatchMatchesONNXRuntime() throws {
        try TestSupport.requirePython()
        let dir = try TestSupport.tempDir("batch")
        let model = TestSupport.repoRoot + "/Examples/models/mlp.onnx"
        let emitted = try Compiler.compile(path: model, directory: dir, options: Compiler.Options(name: "mlp"))
        XCTAssertTrue(emitted.runtimeBatch, emitted.fixedBatchReason ?? "")
        try TestSupport.run(TestSupport.python, [TestSupport.repoRoot + "/Tests/scripts/ort_run.py", model, dir, "--batch", "5"])
        try runAndCompare(dir: dir, header: "mlp.hxx", values: 5 * 10, body: """
            auto x = load<float>("\(dir)/in0.bin", 5 * 784);
            mlp::Session s;
            std::vector<float> y = s.infer(x);          // batch taken from the input size
            std::vector<float> z(y.size());
            s.infer(5, x.data(), z.data());              // raw-pointer form
            if (y != z) return 3;
            save("\(dir)/out0.bin", y.data(), y.size());
            try { s.infer(std::vector<float>(783)); return 4; } catch (const std::invalid_argument&) {}
        """)
    }

    /// Builds a driver (the io helpers, `header`, and `body` as main's body), runs it, and compares
    /// the `values` floats it saved as out0.bin with ONNX Runtime's out0.ref.
    func runAndCompare(dir: String, header: String, values: Int, body: String) throws {
        let main = CppHarness.ioHelpers + "#include <cmath>\n#include <stdexcept>\n#include \"\(header)\"\nint main() {\n\(body)\n    return 0;\n}\n"
        try main.write(toFile: dir + "/main.cpp", atomically: true, encoding: .utf8)
        let errors = CppHarness.build([(dir + "/main.cpp", dir + "/main")], flags: CppHarness.warningFlags + ["-O2"], parallel: 1)
        XCTAssertEqual(errors.count, 0, errors.values.first ?? "")
        let r = try TestSupport.run(dir + "/main", [], check: false)
        XCTAssertEqual(r.status, 0, r.output)
        let ref = try Data(contentsOf: URL(fileURLWithPath: dir + "/out0.ref"))
        let out = try Data(contentsOf: URL(fileURLWithPath: dir + "/out0.bin"))
        XCTAssertEqual(ref.count, values * 4)
        let expected = Tensor(dataType: .float, dims: [ref.count / 4], values: ref.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) })
        XCTAssertNil(CppHarness.compare(out, expected, rtol: 1e-4, atol: 1e-5))
    }

    /// A dense model gets 64- and 16-row block bodies: 150 rows run as two blocks of 64, one of
    /// 16 and six single rows, and match ONNX Runtime on the whole batch and row by row.
    func testBlockBodyRunsWholeBlocksAndTheRest() throws {
        try TestSupport.requirePython()
        let dir = try TestSupport.tempDir("batch-block")
        let model = dir + "/linear_mlp.onnx"
        try TestSupport.run(TestSupport.python, [TestSupport.repoRoot + "/Tests/scripts/make_linear_mlp.py", model])
        let emitted = try Compiler.compile(path: model, directory: dir, options: Compiler.Options(name: "lin"))
        XCTAssertTrue(emitted.runtimeBatch)
        XCTAssertEqual(emitted.blockSizes, [64, 16])
        XCTAssertTrue(emitted.header.contains("run_block64(") && emitted.header.contains("run_block16("))
        try TestSupport.run(TestSupport.python, [TestSupport.repoRoot + "/Tests/scripts/ort_run.py", model, dir, "--batch", "150"])
        try runAndCompare(dir: dir, header: "lin.hxx", values: 150 * 3, body: """
            auto x = load<float>("\(dir)/in0.bin", 150 * 64);
            lin::Session s;
            std::vector<float> y = s.infer(x);
            // Row by row gives the same numbers as the blocks (up to float rounding of the sums).
            for (std::size_t r = 0; r < 150; ++r) {
                std::vector<float> one(x.begin() + r * 64, x.begin() + (r + 1) * 64);
                std::vector<float> z = s.infer(one);
                for (int j = 0; j < 3; ++j) if (std::abs(z[j] - y[r * 3 + j]) > 1e-5f + 1e-4f * std::abs(z[j])) return 3;
            }
            save("\(dir)/out0.bin", y.data(), y.size());
        """)
        // --batch-block 1 turns the block bodies off.
        var off = Compiler.Options(name: "lin1")
        off.batchBlocks = [1]
        let single = try Compiler.compile(path: model, directory: dir + "/off", options: off)
        XCTAssertEqual(single.blockSizes, [])
        XCTAssertFalse(single.header.contains("run_block"))
        let cli = try TestSupport.sofie(["compile", model, "-o", dir + "/cli", "--batch-block", "8"])
        XCTAssertEqual(cli.status, 0, cli.output)
        XCTAssertTrue(cli.output.contains("blocks of 8 rows"), cli.output)
        let bad = try TestSupport.sofie(["compile", model, "-o", dir + "/bad", "--batch-block", "0,x"])
        XCTAssertNotEqual(bad.status, 0)
        XCTAssertTrue(bad.output.contains("--batch-block expects"), bad.output)
    }

    /// A Reshape to a constant shape with batch 1 written in is row-separable at batch 1 but cannot
    /// be compiled for 16 or 64 rows: the model still compiles, with no block bodies.
    func testBlockThatCannotBeCompiledIsLeftOut() throws {
        let g = Graph(name: "reshape1")
        let x = Value(name: "x", type: .tensor(TensorType(.float, [.symbolic("N"), .fixed(4), .fixed(4)])))
        g.inputs = [x]
        let shape = Tensor(name: "shape", dataType: .int64, dims: [2], values: [Int64(1), 16])
        let s = Value(name: "shape", type: .tensor(shape.type), initializer: shape)
        let w = Tensor(name: "w", dataType: .float, dims: [16, 3], values: (0..<48).map { Float($0) / 48 })
        let wv = Value(name: "w", type: .tensor(w.type), initializer: w)
        g.addInitializer(s)
        g.addInitializer(wv)
        let f = Value(name: "f")
        let y = Value(name: "y", type: .tensor(TensorType(.float, [.symbolic("N"), .fixed(3)])))
        g.appendNode(Node(opType: "Reshape", name: "flat", inputs: [x, s], outputs: [f]))
        g.appendNode(Node(opType: "MatMul", name: "dense", inputs: [f, wv], outputs: [y]))
        g.outputs = [y]
        let m = Model(graph: g)
        m.opsetImports = [OpsetImport(domain: "", version: 17)]
        let emitted = try Compiler.emit(m, options: Compiler.Options(name: "reshape1"), source: "reshape1.onnx")
        XCTAssertTrue(emitted.runtimeBatch)
        XCTAssertEqual(emitted.blockSizes, [])
        // Reported with the reason (BatchPlan), not swallowed.
        XCTAssertEqual(emitted.droppedBlocks.map(\.rows), [64, 16])
        XCTAssertTrue(emitted.droppedBlocks.allSatisfy { $0.reason.contains("does not compile for \($0.rows) rows") && $0.reason.contains("flat") },
                      "\(emitted.droppedBlocks)")
    }

    /// Reshape to [1, -1] then Softmax: per row at batch 1, but at 16 rows the reshape folds the
    /// rows into one and the softmax would mix them. The block body is refused.
    func testBlockThatWouldMixRowsIsRefused() throws {
        let g = Graph(name: "fold")
        let x = Value(name: "x", type: .tensor(TensorType(.float, [.symbolic("N"), .fixed(4), .fixed(4)])))
        g.inputs = [x]
        func shape(_ name: String, _ v: [Int64]) -> Value {
            let t = Tensor(name: name, dataType: .int64, dims: [v.count], values: v)
            let value = Value(name: name, type: .tensor(t.type), initializer: t)
            g.addInitializer(value)
            return value
        }
        let f = Value(name: "f"), s = Value(name: "s"), h = Value(name: "h")
        let y = Value(name: "y", type: .tensor(TensorType(.float, [.symbolic("N"), .fixed(3)])))
        let w = Tensor(name: "w", dataType: .float, dims: [16, 3], values: (0..<48).map { Float($0) / 48 })
        let wv = Value(name: "w", type: .tensor(w.type), initializer: w)
        g.addInitializer(wv)
        g.appendNode(Node(opType: "Reshape", name: "fold", inputs: [x, shape("one_row", [1, -1])], outputs: [f]))
        g.appendNode(Node(opType: "Softmax", name: "sm", inputs: [f], outputs: [s], attributes: [Attribute("axis", .int(-1))]))
        g.appendNode(Node(opType: "Reshape", name: "unfold", inputs: [s, shape("rows", [-1, 16])], outputs: [h]))
        g.appendNode(Node(opType: "MatMul", name: "dense", inputs: [h, wv], outputs: [y]))
        g.outputs = [y]
        let m = Model(graph: g)
        m.opsetImports = [OpsetImport(domain: "", version: 17)]
        var options = Compiler.Options(name: "fold")
        options.batchBlocks = [16]
        let emitted = try Compiler.emit(m, options: options, source: "fold.onnx")
        XCTAssertTrue(emitted.runtimeBatch)
        XCTAssertEqual(emitted.blockSizes, [], "a block would softmax over 16 rows at once")
        XCTAssertEqual(emitted.droppedBlocks.map(\.rows), [16])
        XCTAssertTrue(emitted.droppedBlocks.first?.reason.contains("not the one-row value 16 times as tall") ?? false, "\(emitted.droppedBlocks)")
    }

    func testBatchMixingModelGetsAFixedBatchWithAReason() throws {
        // Softmax over axis 0 mixes the rows of the batch.
        let g = Graph(name: "mix")
        let x = Value(name: "x", type: .tensor(TensorType(.float, [.symbolic("N"), .fixed(4)])))
        let y = Value(name: "y", type: .tensor(TensorType(.float, [.symbolic("N"), .fixed(4)])))
        g.inputs = [x]
        g.appendNode(Node(opType: "Softmax", name: "sm", inputs: [x], outputs: [y], attributes: [Attribute("axis", .int(0))]))
        g.outputs = [y]
        let m = Model(graph: g)
        m.opsetImports = [OpsetImport(domain: "", version: 17)]
        var options = Compiler.Options(name: "mix")
        options.batch = 3
        let fixed = try Compiler.emit(m, options: options, source: "mix.onnx")
        XCTAssertFalse(fixed.runtimeBatch)
        XCTAssertTrue(fixed.header.contains("Batch: fixed at compile time"))
        XCTAssertTrue(fixed.header.contains("float[3x4]"))
        // At batch 1 the analysis itself names the op that mixes rows.
        let g1 = Model(graph: Graph(name: "mix1"))
        let x1 = Value(name: "x", type: .tensor(TensorType(.float, [.symbolic("N"), .fixed(4)])))
        let y1 = Value(name: "y", type: .tensor(TensorType(.float, [.symbolic("N"), .fixed(4)])))
        g1.graph.inputs = [x1]
        g1.graph.appendNode(Node(opType: "Softmax", name: "sm", inputs: [x1], outputs: [y1], attributes: [Attribute("axis", .int(0))]))
        g1.graph.outputs = [y1]
        g1.opsetImports = [OpsetImport(domain: "", version: 17)]
        let one = try Compiler.emit(g1, options: Compiler.Options(name: "mix1"), source: "mix1.onnx")
        XCTAssertFalse(one.runtimeBatch)
        XCTAssertTrue(one.fixedBatchReason?.contains("'sm' (Softmax)") ?? false, one.fixedBatchReason ?? "nil")
    }
}
