import Foundation
import SofieBackends
import SofieDriver
import SofieFrontends
import SofieIR
import SofiePasses
import XCTest

/// ONNX's own operator conformance tests through the C++ backend: every test whose ops
/// compile is built (many models per translation unit, both cores), run on each
/// test_data_set, and compared with ONNX's expected outputs. Tests the compiler rejects
/// are counted as rejected, with the compile-time message.
final class ConformanceTests: XCTestCase {
    struct Case {
        let name: String
        let dir: String
        var namespace: String = ""
        var header: String = ""
        var datasets: [(dir: String, outputs: [Tensor])] = []
        var ops: Set<String> = []
        var status = "pending"
        var detail = ""
    }

    /// Tests whose published expected outputs are rounded to 4 decimals (checked: ONNX's
    /// ReferenceEvaluator and ONNX Runtime both agree with us to float precision, not with the
    /// file). They are compared at the precision of the file: |a-b| <= 5e-5 (half a unit of the
    /// last published digit) + 1e-4*|b|.
    static let roundedReferences: Set<String> = ["test_averagepool_2d_ceil_last_window_starts_on_pad", "test_gridsample_bicubic",
                                                  "test_roialign_aligned_false", "test_roialign_aligned_true"]

    static func atol(_ c: Case) -> Double { roundedReferences.contains(c.name) ? 5e-5 : 1e-5 }

    /// float16/bfloat16 outputs of graphs that compute (the `_expanded` attention tests): within
    /// two units in the last place of the output type. We compute each op in float32 and round
    /// its result once, as ONNX Runtime's CPU kernels do; ONNX's references come from numpy
    /// running the same graph in float16, which rounds after every elementary step inside an op
    /// (its float16 Softmax alone differs from float32-then-round by up to 8 ulps on 64x16
    /// random inputs). The attention graphs end up at most 2 ulps apart. Graphs that only
    /// convert and move elements (every Cast test) must match exactly.
    static func reducedUlps(_ c: Case) -> Double {
        c.ops.allSatisfy { op in
            ["Cast", "CastLike", "Constant"].contains(op) || !(OpRegistry.definitions[op]?.traits.isDisjoint(with: [.movesElements, .readsShapeOnly]) ?? true)
        } ? 0 : 2
    }

    /// Minimum number of passing node tests; raise it as operators are added.
    static let passFloor = 1750

    func testONNXNodeTests() throws {
        try TestSupport.requirePython()
        // SOFIE_CONFORMANCE_DIR: another folder of node tests (e.g. make_constant_input_variants.py's).
        let customDir = ProcessInfo.processInfo.environment["SOFIE_CONFORMANCE_DIR"]
        try runNodeTests(folder: try customDir ?? TestSupport.nodeTestsFolder(), report: "conformance-report.txt",
                         floor: customDir == nil ? Self.passFloor : nil, skip: Self.randomDraws.merging(Self.referenceDivergences) { a, _ in a })
    }

    /// Node tests whose axes, sizes, scales, shapes or counts arrive as graph inputs (rejected
    /// above: their output shapes depend on run-time values) with those inputs made constant
    /// (Tests/scripts/make_constant_input_variants.py), as real models have them: the same
    /// comparison with ONNX's outputs, so the constant-input paths of Resize, the reductions,
    /// Pad, Slice, TopK, ... are checked too. Report: .build/conformance-constant-inputs.txt.
    func testONNXNodeTestsWithConstantShapeInputs() throws {
        try TestSupport.requirePython()
        let variants = try TestSupport.tempDir("constant-input-variants")
        try TestSupport.run(TestSupport.python, [TestSupport.repoRoot + "/Tests/scripts/make_constant_input_variants.py", try TestSupport.nodeTestsFolder(), variants])
        try runNodeTests(folder: variants, report: "conformance-constant-inputs.txt", floor: Self.constantInputFloor, skip: Self.referenceDivergences)
    }

    /// The sub-byte and microscaling types beyond the node tests (Tests/scripts/make_subbyte_models.py:
    /// packed int4/uint4 initializers of odd length in 4-bit weight-only MatMuls, sub-byte
    /// tensors through Transpose/Reshape/Flatten/Unsqueeze, wrapping and out-of-range casts,
    /// float4e2m1 ties, every float8e8m0 rounding mode), against ONNX's reference evaluator:
    /// all five must compile and match.
    func testSubByteTypeModels() throws {
        try runScriptModels("make_subbyte_models.py", report: "subbyte-report.txt", all: 5)
    }

    /// Control flow the inline-control-flow pass resolves at compile time, beyond the node tests
    /// (Tests/scripts/make_control_flow_models.py, against ONNX Runtime): Scan with reversed
    /// inputs and outputs, non-zero and negative axes, body initializers, outer-scope reads and a
    /// nested constant If; a running sum in opset 11; a top-level If with a constant condition.
    func testControlFlowModels() throws {
        try runScriptModels("make_control_flow_models.py", report: "control-flow-report.txt", all: 5)
    }

    /// Cases of single ops the node tests leave out (Tests/scripts/make_op_models.py, against ONNX
    /// Runtime, or ONNX's reference where ONNX Runtime has no kernel): Einsum with ellipses,
    /// MaxUnpool to a larger output_shape, BatchNormalization in training mode, DFT with an axis
    /// input and dft_length, RoiAlign max with output_half_pixel, DeformConv with groups and a mask.
    func testOpModels() throws {
        try runScriptModels("make_op_models.py", report: "op-models-report.txt", all: 7)
    }

    /// Decision-tree ensembles made by scikit-learn and converted by skl2onnx
    /// (Tests/scripts/make_tree_models.py: gradient boosting and random forests, binary and
    /// multiclass classifiers, regressors, NaN features), against ONNX Runtime.
    func testTreeEnsembleModels() throws {
        try runScriptModels("make_tree_models.py", report: "tree-models-report.txt", all: 6)
    }

    /// Runs a fixture script that writes models in node-test layout, then every model through the
    /// C++ back end; all `count` must compile and match.
    func runScriptModels(_ script: String, report: String, all count: Int) throws {
        try TestSupport.requirePython()
        let dir = try TestSupport.tempDir((script as NSString).deletingPathExtension)
        try TestSupport.run(TestSupport.python, [TestSupport.repoRoot + "/Tests/scripts/" + script, dir])
        try runNodeTests(folder: dir, report: report, floor: count)
    }

    /// Minimum passing constant-input variants (256 of 278 when last raised).
    static let constantInputFloor = 250

    /// Tests whose expected outputs are draws of numpy's random generator, which no other
    /// generator reproduces (sofie's random ops are checked statistically: RandomOpTests).
    static let randomDraws: [String: String] = Dictionary(uniqueKeysWithValues: ["test_bernoulli", "test_bernoulli_double", "test_bernoulli_seed",
        "test_bernoulli_expanded", "test_bernoulli_double_expanded", "test_bernoulli_seed_expanded"].map { ($0, "random draws") })

    /// Where ONNX's reference and ONNX Runtime disagree and we follow ONNX Runtime.
    static let referenceDivergences: [String: String] = [
        // Downsampling by 0.6 with align_corners: the reference divides by the unrounded output
        // length (4 * 0.6 - 1 = 1.4), ONNX Runtime 1.23 (and sofie) by the output's actual length
        // minus one (1): [1, 3.142857] against [1, 4].
        "test_resize_downsample_scales_linear_align_corners": "align_corners with a fractional output length",
        // MaxUnpool to an output_shape larger than the one the attributes imply: the reference
        // reads the indices in the implied shape (4x4) and pads it at the end; ONNX Runtime (and
        // PyTorch's max_unpool2d with output_size, and sofie) read them as positions in the
        // output_shape (5x5), the tensor MaxPool took them from. Covered against ONNX Runtime
        // by make_op_models.py.
        "test_maxunpool_export_with_output_shape": "indices relative to the implied, not the given, output shape",
    ]

    func runNodeTests(folder: String, report reportName: String, floor: Int?, skip: [String: String] = [:]) throws {
        let work = try TestSupport.tempDir("conformance")
        var cases = try TestSupport.subfolders(folder).filter { skip[$0] == nil }.map { Case(name: $0, dir: "\(folder)/\($0)") }
        let only = ProcessInfo.processInfo.environment["SOFIE_CONFORMANCE_ONLY"]
        // SOFIE_CONFORMANCE_ONLY=cast,float16: the tests whose name contains any of the words.
        if let only {
            let words = only.split(separator: ",").map(String.init)
            cases = cases.filter { c in words.contains { c.name.contains($0) } }
        }

        // 1. Compile every model in-process; write its inputs as raw files.
        for i in cases.indices {
            var c = cases[i]
            defer { cases[i] = c }
            let model: Model
            do { model = try ONNXReader.read(path: c.dir + "/model.onnx") } catch {
                c.status = "rejected"; c.detail = "\(error)"; continue
            }
            c.ops = Set(model.graph.nodes.map(\.opType))
            do {
                var options = Compiler.Options(name: "t\(i)")
                options.weights = .embed
                let emitted = try Compiler.emit(model, options: options, source: c.name)
                c.namespace = emitted.namespace
                c.header = emitted.header
            } catch let e as CompileError {
                c.status = "rejected"; c.detail = e.description; continue
            } catch {
                c.status = "failed"; c.detail = "compile pipeline error: \(error)"; continue
            }
            do {
                let dsNames = try TestSupport.subfolders(c.dir).filter { $0.hasPrefix("test_data_set_") }
                for ds in dsNames {
                    let out = "\(work)/\(c.namespace)/\(ds)"
                    try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
                    var k = 0
                    while FileManager.default.fileExists(atPath: "\(c.dir)/\(ds)/input_\(k).pb") {
                        try CppHarness.writeRaw(try ONNXReader.readTensor(path: "\(c.dir)/\(ds)/input_\(k).pb"), to: "\(out)/in\(k).bin")
                        k += 1
                    }
                    var expected: [Tensor] = []
                    while FileManager.default.fileExists(atPath: "\(c.dir)/\(ds)/output_\(expected.count).pb") {
                        expected.append(try ONNXReader.readTensor(path: "\(c.dir)/\(ds)/output_\(expected.count).pb"))
                    }
                    c.datasets.append((out, expected))
                }
                c.status = "compiled"
            } catch {
                c.status = "rejected"; c.detail = "test data: \(error)"
            }
        }

        // 2. Batch the compiled models into translation units and build them on both cores.
        let compiled = cases.indices.filter { cases[$0].status == "compiled" }
        let perUnit = 40
        var jobs: [(source: String, binary: String)] = []
        var unitOf: [Int: Int] = [:]
        for (u, start) in stride(from: 0, to: compiled.count, by: perUnit).enumerated() {
            let members = Array(compiled[start..<min(start + perUnit, compiled.count)])
            var src = ""
            for m in members {
                let headerPath = "\(work)/\(cases[m].namespace).hxx"
                try cases[m].header.write(toFile: headerPath, atomically: true, encoding: .utf8)
                src += "#include \"\(headerPath)\"\n"
                unitOf[m] = u
            }
            src += Self.driverSource(members.map { cases[$0] })
            let path = "\(work)/unit\(u).cpp"
            try src.write(toFile: path, atomically: true, encoding: .utf8)
            jobs.append((path, "\(work)/unit\(u)"))
        }
        let started = Date()
        let buildErrors = CppHarness.build(jobs, flags: CppHarness.warningFlags + CppHarness.oneRuntimeCopy + ["-O1"])
        print("conformance: built \(jobs.count) translation units for \(compiled.count) models in \(Int(Date().timeIntervalSince(started))) s")

        // 3. Run each unit; compare every output with ONNX's expected values.
        for (u, job) in jobs.enumerated() {
            let members = compiled.filter { unitOf[$0] == u }
            if let err = buildErrors[job.source] {
                for m in members { cases[m].status = "failed"; cases[m].detail = "C++ build failed: \(err.prefix(400))" }
                continue
            }
            let r = try TestSupport.run(job.binary, [], check: false)
            for m in members {
                var c = cases[m]
                if !r.output.contains("done \(c.namespace)\n") {
                    c.status = "failed"; c.detail = "the emitted code crashed or threw: \(r.output.suffix(300))"
                } else {
                    c.status = "passed"
                    outer: for ds in c.datasets {
                        for (k, expected) in ds.outputs.enumerated() {
                            guard let data = FileManager.default.contents(atPath: "\(ds.dir)/out\(k).bin") else {
                                c.status = "failed"; c.detail = "no output \(k)"; break outer
                            }
                            if let diff = CppHarness.compare(data, expected, atol: Self.atol(c), ulps: Self.reducedUlps(c)) {
                                c.status = "failed"; c.detail = "\(URL(fileURLWithPath: ds.dir).lastPathComponent) output \(k): \(diff)"; break outer
                            }
                        }
                    }
                }
                cases[m] = c
            }
        }

        // 3b. A broad sample (every 4th passing model, and the first of each op) again with
        // AddressSanitizer and UBSan: no out-of-bounds access or undefined behaviour in the
        // emitted code, and the same outputs.
        var sample: [Int] = []
        var seenOps = Set<String>()
        for (k, m) in compiled.enumerated() where cases[m].status == "passed" {
            if k % 4 == 0 || !cases[m].ops.isSubset(of: seenOps) { sample.append(m) }
            seenOps.formUnion(cases[m].ops)
        }
        var sanJobs: [(source: String, binary: String)] = []
        var sanMembers: [[Int]] = []
        for (u, start) in stride(from: 0, to: sample.count, by: perUnit).enumerated() {
            let members = Array(sample[start..<min(start + perUnit, sample.count)])
            var src = members.map { "#include \"\(work)/\(cases[$0].namespace).hxx\"\n" }.joined()
            src += Self.driverSource(members.map { cases[$0] })
            let path = "\(work)/san\(u).cpp"
            try src.write(toFile: path, atomically: true, encoding: .utf8)
            sanJobs.append((path, "\(work)/san\(u)"))
            sanMembers.append(members)
        }
        let sanStarted = Date()
        let sanErrors = CppHarness.build(sanJobs, flags: CppHarness.warningFlags + CppHarness.oneRuntimeCopy + ["-O1", "-fsanitize=address,undefined", "-fno-sanitize-recover=all"])
        XCTAssertEqual(sanErrors.count, 0, sanErrors.values.map { String($0.prefix(400)) }.joined(separator: "\n"))
        var sanChecked = 0
        for (u, job) in sanJobs.enumerated() where sanErrors[job.source] == nil {
            let r = try TestSupport.run(job.binary, [], check: false)
            XCTAssertEqual(r.status, 0, "sanitized unit \(u): \(r.output.suffix(600))")
            XCTAssertFalse(r.output.contains("runtime error") || r.output.contains("AddressSanitizer"), "sanitized unit \(u): \(r.output.suffix(600))")
            for m in sanMembers[u] {
                let c = cases[m]
                guard r.output.contains("done \(c.namespace)\n") else { XCTFail("\(c.name) did not finish under the sanitizers"); continue }
                for ds in c.datasets {
                    for (k, expected) in ds.outputs.enumerated() {
                        if let data = FileManager.default.contents(atPath: "\(ds.dir)/out\(k).bin"),
                           let diff = CppHarness.compare(data, expected, atol: Self.atol(c), ulps: Self.reducedUlps(c)) {
                            XCTFail("\(c.name) output \(k) under the sanitizers: \(diff)")
                        }
                    }
                }
                sanChecked += 1
            }
        }
        print("conformance: \(sanChecked) models (\(seenOps.count) op types) rebuilt with -fsanitize=address,undefined and run clean in \(Int(Date().timeIntervalSince(sanStarted))) s")

        // 4. Report: a line per op (over the tests whose model uses it), then the totals.
        var perOp: [String: (p: Int, f: Int, r: Int)] = [:]
        for c in cases {
            for op in c.ops.isEmpty ? ["(no nodes)"] : Array(c.ops) {
                var e = perOp[op] ?? (0, 0, 0)
                switch c.status {
                case "passed": e.p += 1
                case "rejected": e.r += 1
                default: e.f += 1
                }
                perOp[op] = e
            }
        }
        var report = "ONNX node tests through the C++ backend, per op (a test counts for every op of its model):\n"
        for (op, e) in perOp.sorted(by: { $0.key < $1.key }) {
            report += "  \(op): \(e.p) passed, \(e.f) failed, \(e.r) rejected\n"
        }
        let passed = cases.filter { $0.status == "passed" }.count
        let failed = cases.filter { $0.status != "passed" && $0.status != "rejected" }
        let rejected = cases.filter { $0.status == "rejected" }.count
        for c in failed { report += "FAILED \(c.name): \(c.detail)\n" }
        if ProcessInfo.processInfo.environment["SOFIE_CONFORMANCE_VERBOSE"] != nil {
            for c in cases where c.status == "rejected" { report += "REJECTED \(c.name): \(c.detail)\n" }
        }
        report += "\(passed) passed, \(failed.count) failed (\(rejected) rejected at compile time)\n"
        // .build exists after `swift build`, but not when the tests were built elsewhere (--scratch-path).
        try FileManager.default.createDirectory(atPath: TestSupport.repoRoot + "/.build", withIntermediateDirectories: true)
        try report.write(toFile: TestSupport.repoRoot + "/.build/" + reportName, atomically: true, encoding: .utf8)
        print(report)
        XCTAssertEqual(failed.count, 0, "node tests that compiled but produced wrong numbers or did not build/run")
        if only == nil, let floor { XCTAssertGreaterThanOrEqual(passed, floor) }
    }

    /// A main() that runs every model of the unit on each of its data sets.
    static func driverSource(_ members: [Case]) -> String {
        var s = CppHarness.ioHelpers + """
        int main() {

        """
        for c in members {
            s += "    {\n        std::printf(\"start \(c.namespace)\\n\"); std::fflush(stdout);\n"
            s += "        auto session = std::make_unique<\(c.namespace)::Session>();\n"
            let sig = CppHarness.signature(c.header)
            for ds in c.datasets {
                var args: [String] = []
                s += "        {\n"
                for (k, t) in sig.inputs.enumerated() {
                    s += "            auto in\(k) = load<Buf<\(t.type)>::type>(\"\(ds.dir)/in\(k).bin\", \(t.count));\n"
                    args.append("reinterpret_cast<const \(t.type)*>(in\(k).data())")
                }
                let bounds = CppHarness.outputCounts(c.header, session: "session")
                for (k, t) in sig.outputs.enumerated() {
                    let n = k < bounds.count && bounds[k].bound >= 0 ? bounds[k].bound : t.count
                    s += "            std::vector<Buf<\(t.type)>::type> out\(k)(\(max(n, 1)));\n"
                    args.append("reinterpret_cast<\(t.type)*>(out\(k).data())")
                }
                s += "            session->infer(\(args.joined(separator: ", ")));\n"
                // Lengths computed from run-time values: the buffers hold the bound, the files
                // the actual length (Session::last_NODE_len()).
                let counts = CppHarness.outputCounts(c.header, session: "session")
                for (k, t) in sig.outputs.enumerated() {
                    let n = k < counts.count && counts[k].bound >= 0 ? counts[k].expr : String(t.count)
                    s += "            save(\"\(ds.dir)/out\(k).bin\", out\(k).data(), static_cast<std::size_t>(\(n)));\n"
                }
                s += "        }\n"
            }
            s += "        std::printf(\"done \(c.namespace)\\n\"); std::fflush(stdout);\n    }\n"
        }
        s += "    return 0;\n}\n"
        return s
    }
}
