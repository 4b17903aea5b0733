import Foundation
import SofieBackends
import SofieDriver
import SofieFrontends
import SofieIR
import XCTest

/// Run-time dimensions (`--dim n=max:BOUND`): models whose set size or number of steps is
/// symbolic in PyTorch's exports (Tests/Fixtures/runtime_dims/make_fixtures.py: a Deep Sets
/// model, an LSTM and a GRU over n steps, a transformer encoder over n tokens, a GNN over n
/// nodes and e edges, through both exporters where they can; Keras models with None in the set or
/// time dimension) compile once and match ONNX Runtime (Keras) at every recorded size, size 1 and
/// the bound included; sizes out of range throw.
final class RuntimeDimsTests: XCTestCase {
    static var fixtures: String { TestSupport.repoRoot + "/Tests/Fixtures/runtime_dims" }

    static func names() throws -> [String] {
        try TestSupport.subfolders(fixtures).filter { FileManager.default.fileExists(atPath: "\(fixtures)/\($0)/meta.json") }
    }

    /// Builds `driver` (one C++ file including the headers in `work`) with AddressSanitizer and
    /// UBSan and runs it; nil (a recorded failure) when it does not build.
    static func buildAndRun(_ driver: String, in work: String, flags: [String]) throws -> TestSupport.RunResult? {
        try driver.write(toFile: "\(work)/driver.cpp", atomically: true, encoding: .utf8)
        let sanitizers = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer"]
        let errors = CppHarness.build([("\(work)/driver.cpp", "\(work)/driver")], flags: CppHarness.warningFlags + flags + sanitizers, parallel: 1)
        XCTAssertTrue(errors.isEmpty, "\(errors.values.joined(separator: "\n").prefix(4000))")
        guard errors.isEmpty else { return nil }
        return try TestSupport.run("\(work)/driver", [], check: false)
    }

    struct Case {
        let values: [String: Int], inputs: [(dtype: String, count: Int)], outCount: Int
    }

    struct Meta {
        let bounds: [String: Int], cases: [Case]
        init(_ path: String) throws {
            let m = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as! [String: Any]
            bounds = m["bounds"] as! [String: Int]
            cases = (m["cases"] as! [[String: Any]]).map { c in
                Case(values: c["values"] as! [String: Int],
                     inputs: (c["inputs"] as! [[String: Any]]).map { ($0["dtype"] as! String, ($0["shape"] as! [Int]).reduce(1, *)) },
                     outCount: (c["out"] as! [Int]).reduce(1, *))
            }
        }
    }

    /// All fixtures in one translation unit (built with AddressSanitizer and UBSan): for each
    /// model and case, the pointer form's output is written and compared with ONNX Runtime's;
    /// the vector form must give the same (the one that reads the sizes off the inputs too, for
    /// the models with one input); 0 and bound + 1 must throw std::out_of_range; an input of the
    /// wrong length std::invalid_argument.
    func testCompiledOnceMatchesONNXRuntimeAtEverySize() throws {
        let names = try Self.names()
        XCTAssertGreaterThanOrEqual(names.count, 11, "\(names)")
        let work = try TestSupport.tempDir("runtime-dims")
        var driver = "#include <cstdio>\n#include <fstream>\n#include <iterator>\n"
        var calls = ""
        var expectedThrows = 0, batchedChecks = 0
        for name in names {
            let meta = try Meta("\(Self.fixtures)/\(name)/meta.json")
            var options = Compiler.Options(name: "rd_\(name)")
            options.bounds = meta.bounds
            let file = FileManager.default.fileExists(atPath: "\(Self.fixtures)/\(name)/model.keras") ? "model.keras" : "model.onnx"
            let emitted = try Compiler.compile(path: "\(Self.fixtures)/\(name)/\(file)", directory: work, options: options)
            let order = emitted.runtimeDimensions.map(\.dimension.name)
            XCTAssertEqual(Set(order), Set(meta.bounds.keys), name)
            XCTAssertEqual(emitted.runtimeDimensions.map(\.dimension.bound), order.map { meta.bounds[$0]! }, name)
            XCTAssertNotNil(emitted.inputs[0].runtimeShape, name)
            let ns = "rd_\(name)"
            driver += "#include \"\(ns).hxx\"\n"
            calls += "    {\n        \(ns)::Session s;\n"
            for (c, kase) in meta.cases.enumerated() {
                let dims = order.map { String(kase.values[$0]!) }.joined(separator: ", ")
                calls += "        {\n"
                var args: [String] = []
                for (k, input) in kase.inputs.enumerated() {
                    let type = input.dtype == "int64" ? "int64_t" : "float"
                    calls += "            std::vector<\(type)> x\(k) = read_file<\(type)>(\"\(Self.fixtures)/\(name)/case\(c)_in\(k).bin\");\n"
                    args.append("x\(k)")
                }
                calls += """
                            std::vector<float> y(\(ns)::Session::kOutput0Size, -1.0f);
                            s.infer(\(dims), \(args.map { "\($0).data()" }.joined(separator: ", ")), y.data());
                            y.resize(\(kase.outCount));
                            write_floats("\(work)/\(name)_got_\(c).bin", y);
                            if (s.infer(\(dims), \(args.joined(separator: ", "))) != y) { std::printf("\(name): the vector form differs in case \(c)\\n"); failed = true; }

                    """
                if kase.inputs.count == 1 && emitted.runtimeBatch {
                    // Two rows at once (each the case's input) give the case's output twice.
                    calls += """
                                {
                                    std::vector<float> xx(x0); xx.insert(xx.end(), x0.begin(), x0.end());
                                    std::vector<float> yy(2 * y.size());
                                    s.infer(2, \(dims), xx.data(), yy.data());
                                    if (!std::equal(y.begin(), y.end(), yy.begin()) || !std::equal(y.begin(), y.end(), yy.begin() + static_cast<std::ptrdiff_t>(y.size()))) { std::printf("\(name): two rows differ from one in case \(c)\\n"); failed = true; }
                                }

                    """
                    batchedChecks += 1
                }
                if kase.inputs.count == 1 && !emitted.runtimeBatch {
                    calls += "            if (s.infer(x0) != y) { std::printf(\"\(name): the size-reading vector form differs in case \(c)\\n\"); failed = true; }\n"
                }
                calls += "        }\n"
            }
            // Each dimension at 0 and one above its bound, the others at their bounds.
            for (i, d) in order.enumerated() {
                for bad in [0, meta.bounds[d]! + 1] {
                    var values = order.map { String(meta.bounds[$0]!) }
                    values[i] = String(bad)
                    let ins = meta.cases[0].inputs.indices.map { "x\($0).data()" }.joined(separator: ", ")
                    let decl = meta.cases[0].inputs.enumerated().map { k, input in
                        "std::vector<\(input.dtype == "int64" ? "int64_t" : "float")> x\(k)(\(ns)::Session::kInput\(k)Size);"
                    }.joined(separator: " ")
                    calls += """
                            {
                                \(decl) std::vector<float> y(\(ns)::Session::kOutput0Size);
                                try { s.infer(\(values.joined(separator: ", ")), \(ins), y.data()); std::printf("\(name): \(d)=\(bad) did not throw\\n"); failed = true; }
                                catch (const std::out_of_range& e) { std::printf("%s\\n", e.what()); }
                            }

                    """
                    expectedThrows += 1
                }
            }
            let small = order.map { _ in "1" }.joined(separator: ", ")
            let wrong = meta.cases[0].inputs.map { "std::vector<\($0.dtype == "int64" ? "int64_t" : "float")>(1001)" }.joined(separator: ", ")
            calls += """
                    try { s.infer(\(small), \(wrong)); std::printf("\(name): a wrong input length did not throw\\n"); failed = true; }
                    catch (const std::invalid_argument&) {}
                }

            """
        }
        driver += """
            template <class T>
            static std::vector<T> read_file(const char* path) {
                std::ifstream f(path, std::ios::binary);
                std::vector<char> bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
                std::vector<T> v(bytes.size() / sizeof(T));
                std::memcpy(v.data(), bytes.data(), v.size() * sizeof(T));
                return v;
            }
            static void write_floats(const char* path, const std::vector<float>& v) {
                std::ofstream f(path, std::ios::binary);
                f.write(reinterpret_cast<const char*>(v.data()), static_cast<std::streamsize>(v.size() * sizeof(float)));
            }
            int main() {
                bool failed = false;
            \(calls)
                return failed ? 1 : 0;
            }

            """
        guard let run = try Self.buildAndRun(driver, in: work, flags: ["-O1", "-march=native"]) else { return }
        XCTAssertEqual(run.status, 0, run.output)
        XCTAssertGreaterThan(batchedChecks, 0, "some fixture (Keras) has a run-time batch besides its run-time dimension")
        XCTAssertEqual(run.output.components(separatedBy: "the range this code was compiled for").count - 1, expectedThrows, run.output)
        for name in names {
            let meta = try Meta("\(Self.fixtures)/\(name)/meta.json")
            for (c, kase) in meta.cases.enumerated() {
                let want = try Data(contentsOf: URL(fileURLWithPath: "\(Self.fixtures)/\(name)/case\(c)_out0.ref"))
                let got = try Data(contentsOf: URL(fileURLWithPath: "\(work)/\(name)_got_\(c).bin"))
                let ref = Tensor(dataType: .float, dims: [want.count / 4], values: want.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) })
                if let m = CppHarness.compare(got, ref) { XCTFail("\(name) at \(kase.values): \(m)") }
                // Relative to the output's scale too (outputs can be small).
                let g = got.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }, r = ref.values(as: Float.self)!
                XCTAssertEqual(g.count, r.count, name)
                let scale = r.map { abs($0) }.max() ?? 0
                let worst = zip(g, r).map { abs($0 - $1) }.max() ?? 0
                XCTAssertLessThanOrEqual(Double(worst), 1e-4 * Double(scale) + 1e-6, "\(name) at \(kase.values)")
            }
        }
    }

    /// Range with bounds given at run time (ROOT TMVA SOFIE's RangeFloat/RangeInt form, and a
    /// Range whose values feed more ops; Tests/scripts/make_range_models.py): the length is
    /// computed at run time up to --dim r_len=max:64, reported by last_r_len(), and matches ONNX
    /// Runtime's outputs for every case (empty ranges and negative steps included); a range
    /// longer than the bound throws std::length_error; without a bound the error says what to give.
    func testRangeWithRunTimeBoundsMatchesONNXRuntime() throws {
        try TestSupport.requirePython()
        let fixtures = try TestSupport.tempDir("range-models")
        try TestSupport.run(TestSupport.python, [TestSupport.repoRoot + "/Tests/scripts/make_range_models.py", fixtures])
        let names = try TestSupport.subfolders(fixtures).filter { $0.hasPrefix("range") }
        XCTAssertEqual(names, ["range_float", "range_int", "range_used"])
        try nonZero(fixtures: fixtures)
        let work = try TestSupport.tempDir("range-build")
        var driver = "#include <cmath>\n#include <cstdio>\n"
        var calls = ""
        var checks = 0
        for name in names {
            let model = "\(fixtures)/\(name)/model.onnx"
            var plain = Compiler.Options(name: "x")
            XCTAssertThrowsError(try Compiler.emit(try ModelLoader.load(path: model), options: plain, source: model)) { error in
                XCTAssertTrue("\(error)".contains("--dim 'r_len=max:BOUND'"), "\(error)")
            }
            plain.name = "rg_\(name)"
            plain.bounds = ["r_len": 64]
            let emitted = try Compiler.compile(path: model, directory: work, options: plain)
            XCTAssertEqual(emitted.runtimeDimensions.map(\.dimension.fromValues), [true])
            driver += "#include \"rg_\(name).hxx\"\n"
            let meta = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(fixtures)/\(name)/cases.json"))) as! [String: Any]
            let T = (meta["dtype"] as! String) == "int64" ? "int64_t" : "float"
            calls += "    {\n        rg_\(name)::Session s;\n"
            for c in meta["cases"] as! [[String: Any]] {
                let ins = (c["inputs"] as! [Double]).map { T == "float" ? "\($0)f" : "\(Int($0))" }
                let outs = c["outputs"] as! [[Double]]
                calls += "        {\n            const \(T) a = \(ins[0]), b = \(ins[1]), d = \(ins[2]);\n"
                calls += "            std::vector<\(T)> y(rg_\(name)::Session::kOutput0Size, \(T)(-7));\n"
                if outs.count > 1 { calls += "            float sum = -7;\n            s.infer(&a, &b, &d, y.data(), &sum);\n" } else { calls += "            s.infer(&a, &b, &d, y.data());\n" }
                calls += "            if (s.last_r_len() != \(outs[0].count)) { std::printf(\"\(name): length %lld, want \(outs[0].count)\\n\", (long long)s.last_r_len()); failed = true; }\n"
                for (i, v) in outs[0].enumerated() {
                    calls += "            if (std::fabs(double(y[\(i)]) - \(v)) > 1e-5 * (1 + std::fabs(\(v)))) { std::printf(\"\(name): y[\(i)] = %g, want \(v)\\n\", double(y[\(i)])); failed = true; }\n"
                    checks += 1
                }
                if outs.count > 1 {
                    calls += "            if (std::fabs(double(sum) - \(outs[1][0])) > 1e-5 * (1 + std::fabs(\(outs[1][0])))) { std::printf(\"\(name): sum %g\\n\", double(sum)); failed = true; }\n"
                    calls += "            if (s.infer(std::vector<float>{a}, std::vector<float>{b}, std::vector<float>{d}) != std::make_tuple(std::vector<float>(y.begin(), y.begin() + \(outs[0].count)), std::vector<float>{sum})) { std::printf(\"\(name): the vector form differs\\n\"); failed = true; }\n"
                }
                calls += "        }\n"
            }
            calls += """
                    {
                        const \(T) a = 0, b = 100, d = 1;
                        std::vector<\(T)> y(rg_\(name)::Session::kOutput0Size); float sum = 0; (void)sum;
                        try { s.infer(&a, &b, &d, y.data()\(name == "range_used" ? ", &sum" : "")); std::printf("\(name): 100 elements did not throw\\n"); failed = true; }
                        catch (const std::length_error& e) { std::printf("%s\\n", e.what()); }
                    }
                }

            """
        }
        driver += "int main() {\n    bool failed = false;\n\(calls)    return failed ? 1 : 0;\n}\n"
        guard let run = try Self.buildAndRun(driver, in: work, flags: ["-O1"]) else { return }
        XCTAssertEqual(run.status, 0, run.output)
        XCTAssertGreaterThan(checks, 40)
        XCTAssertEqual(run.output.components(separatedBy: "makes 100 elements, outside 0...64").count - 1, 3, run.output)
    }

    /// NonZero over a run-time input (make_range_models.py's `nonzero`: coordinates, then cast
    /// and summed per row): the count is computed at run time up to --dim nz_len=max:20; all-zero,
    /// sparse, dense and full inputs give ONNX Runtime's coordinates and sums.
    func nonZero(fixtures: String) throws {
        let work = try TestSupport.tempDir("nonzero-build")
        let model = "\(fixtures)/nonzero/model.onnx"
        // Without --dim, the count's bound is the largest it can be: the input's element count.
        let loaded = try ModelLoader.load(path: model)
        let elements = loaded.graph.inputs[0].tensorType!.staticShape!.reduce(1, *)
        let byDefault = try Compiler.emit(loaded, options: Compiler.Options(name: "x"), source: model)
        XCTAssertTrue(byDefault.header.contains("nz_len in 0...\(elements) "), String(byDefault.header.prefix(1500)))
        var options = Compiler.Options(name: "nonzero")
        options.bounds = ["nz_len": 20]
        _ = try Compiler.compile(path: model, directory: work, options: options)
        let meta = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(fixtures)/nonzero/cases.json"))) as! [String: Any]
        var body = ""
        for c in meta["cases"] as! [[String: Any]] {
            let x = (c["x"] as! [Double]).map { "\(Float($0))f" }.joined(separator: ", ")
            let idx = (c["idx"] as! [Int]).map(String.init).joined(separator: ", ")
            let rows = (c["rows"] as! [Double]).map { "\($0)" }.joined(separator: ", ")
            body += """
                    {
                        const float x[20] = {\(x)};
                        const std::vector<int64_t> want = {\(idx)};
                        const double rows_want[2] = {\(rows)};
                        int64_t idx[40]; float rows[2];
                        s.infer(x, idx, rows);
                        if (s.last_nz_len() != \(c["count"] as! Int) || !std::equal(want.begin(), want.end(), idx)) { std::printf("coordinates differ (count %lld)\\n", (long long)s.last_nz_len()); failed = true; }
                        for (int i = 0; i < 2; ++i) if (std::fabs(rows[i] - rows_want[i]) > 1e-4) { std::printf("row sum %d differs\\n", i); failed = true; }
                        auto [vi, vr] = s.infer(std::vector<float>(x, x + 20));
                        if (vi.size() != want.size() || !std::equal(want.begin(), want.end(), vi.begin())) { std::printf("the vector form differs\\n"); failed = true; }
                        (void)vr;
                    }

            """
        }
        let driver = "#include <cmath>\n#include <cstdio>\n#include \"nonzero.hxx\"\nint main() {\n    nonzero::Session s;\n    bool failed = false;\n\(body)    return failed ? 1 : 0;\n}\n"
        guard let run = try Self.buildAndRun(driver, in: work, flags: ["-O1"]) else { return }
        XCTAssertEqual(run.status, 0, run.output)
        XCTAssertEqual((meta["cases"] as! [Any]).count, 4)
        try compress(fixtures: fixtures)
    }

    /// Compress by a run-time condition (make_range_models.py's `compress`): the count of rows
    /// selected is computed at run time up to --dim sel_len=max:6; none, some, all and the last
    /// row give ONNX Runtime's rows.
    func compress(fixtures: String) throws {
        let work = try TestSupport.tempDir("compress-build")
        var options = Compiler.Options(name: "compress")
        options.bounds = ["sel_len": 6]
        _ = try Compiler.compile(path: "\(fixtures)/compress/model.onnx", directory: work, options: options)
        let meta = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(fixtures)/compress/cases.json"))) as! [String: Any]
        var body = ""
        for c in meta["cases"] as! [[String: Any]] {
            let x = (c["x"] as! [Double]).map { "\(Float($0))f" }.joined(separator: ", ")
            let keep = (c["keep"] as! [Int]).map { $0 != 0 ? "true" : "false" }.joined(separator: ", ")
            let y = (c["y"] as! [Double]).map { "\(Float($0))f" }.joined(separator: ", ")
            body += """
                    {
                        const float x[18] = {\(x)};
                        const bool keep[6] = {\(keep)};
                        const std::vector<float> want = {\(y)};
                        float y[18];
                        s.infer(x, keep, y);
                        if (s.last_sel_len() != \(c["count"] as! Int) || !std::equal(want.begin(), want.end(), y)) { std::printf("rows differ (count %lld)\\n", (long long)s.last_sel_len()); failed = true; }
                    }

            """
        }
        let driver = "#include <cstdio>\n#include \"compress.hxx\"\nint main() {\n    compress::Session s;\n    bool failed = false;\n\(body)    return failed ? 1 : 0;\n}\n"
        guard let run = try Self.buildAndRun(driver, in: work, flags: ["-O1"]) else { return }
        XCTAssertEqual(run.status, 0, run.output)
    }

    /// Unique (sorted, and rows in order of first occurrence), NonMaxSuppression with run-time
    /// thresholds and TopK with a run-time k (Tests/scripts/make_value_length_models.py; the output
    /// lengths symbolic in the files): compiled without --dim, each length is bounded by the
    /// largest it can be, and every case gives ONNX Runtime's outputs through the vector form
    /// (outputs as long as the run made them) and last_NODE_len(). A tighter --dim bound throws
    /// std::length_error beyond it.
    func testValueDependentLengthsMatchONNXRuntime() throws {
        try TestSupport.requirePython()
        let fixtures = try TestSupport.tempDir("value-length-models")
        try TestSupport.run(TestSupport.python, [TestSupport.repoRoot + "/Tests/scripts/make_value_length_models.py", fixtures])
        let work = try TestSupport.tempDir("value-length-build")
        let models: [(name: String, symbol: String, bound: Int)] = [("unique_sorted", "u_len", 12), ("unique_rows", "rows_len", 6), ("nms", "nms_len", 40), ("topk_k", "top_len", 10)]
        var driver = "#include <cmath>\n#include <cstdio>\n#include <vector>\n"
        var calls = ""
        var checks = 0
        func cppType(_ dtype: String) -> String { ["float32": "float", "int64": "int64_t"][dtype]! }
        for m in models {
            var options = Compiler.Options(name: "vl_\(m.name)")
            let emitted = try Compiler.compile(path: "\(fixtures)/\(m.name)/model.onnx", directory: work, options: options)
            XCTAssertEqual(emitted.runtimeDimensions.map(\.dimension.name), [m.symbol])
            XCTAssertEqual(emitted.runtimeDimensions.map(\.dimension.bound), [m.bound])
            driver += "#include \"vl_\(m.name).hxx\"\n"
            let meta = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(fixtures)/\(m.name)/cases.json"))) as! [String: Any]
            calls += "    {\n        vl_\(m.name)::Session s;\n"
            for (ci, c) in (meta["cases"] as! [[String: Any]]).enumerated() {
                let ins = (c["inputs"] as! [[String: Any]]).map { i -> String in
                    let t = cppType(i["dtype"] as! String)
                    return "std::vector<\(t)>{\((i["values"] as! [Double]).map { t == "float" ? "\(Float($0))f" : "\(Int($0))" }.joined(separator: ", "))}"
                }
                calls += "        {\n            const auto r = s.infer(\(ins.joined(separator: ", ")));\n"
                let outs = c["outputs"] as! [[String: Any]]
                for (k, o) in outs.enumerated() {
                    let values = o["values"] as! [Double]
                    let t = cppType(o["dtype"] as! String)
                    calls += "            { const std::vector<double> want = {\(values.map { "\($0)" }.joined(separator: ", "))}; const auto& got = \(outs.count == 1 ? "r" : "std::get<\(k)>(r)");\n"
                    calls += "              if (got.size() != want.size()) { std::printf(\"\(m.name) case \(ci) output \(k): %zu values, want %zu\\n\", got.size(), want.size()); failed = true; }\n"
                    calls += "              else for (std::size_t i = 0; i < want.size(); ++i) if (std::fabs(double(got[i]) - want[i]) > \(t == "float" ? "1e-5 * (1 + std::fabs(want[i]))" : "0")) { std::printf(\"\(m.name) case \(ci) output \(k)[%zu] = %g, want %g\\n\", i, double(got[i]), want[i]); failed = true; break; } }\n"
                    checks += values.count
                }
                calls += "        }\n"
            }
            calls += "    }\n"
            if m.name == "topk_k" {
                // A bound below the axis: k = 5 is beyond it.
                options.name = "vl_topk_tight"
                options.bounds = ["top_len": 4]
                _ = try Compiler.compile(path: "\(fixtures)/\(m.name)/model.onnx", directory: work, options: options)
                driver += "#include \"vl_topk_tight.hxx\"\n"
                calls += """
                    {
                        vl_topk_tight::Session s;
                        const auto r = s.infer(std::vector<float>(20, 1.0f), std::vector<int64_t>{4});
                        if (std::get<0>(r).size() != 8 || s.last_top_len() != 4) { std::printf("topk at its bound: wrong size\\n"); failed = true; }
                        try { s.infer(std::vector<float>(20, 1.0f), std::vector<int64_t>{5}); std::printf("k = 5 beyond the bound 4 did not throw\\n"); failed = true; }
                        catch (const std::length_error& e) { std::printf("%s\\n", e.what()); }
                    }

                """
            }
        }
        driver += "int main() {\n    bool failed = false;\n\(calls)    return failed ? 1 : 0;\n}\n"
        guard let run = try Self.buildAndRun(driver, in: work, flags: ["-O1"]) else { return }
        XCTAssertEqual(run.status, 0, run.output)
        XCTAssertGreaterThan(checks, 300)
        XCTAssertTrue(run.output.contains("asks for 5 elements, outside 0...4"), run.output)
    }

    /// Shape, axis, scale and size inputs given at run time whose values do not give the output
    /// the model declares (ONNX's node-test models, one value changed): each run throws
    /// std::invalid_argument naming the op, under AddressSanitizer and UBSan, and the same
    /// Session then runs the declared values (the node tests' own) without an error.
    func testWrongRunTimeShapeValuesThrow() throws {
        try TestSupport.requirePython()
        let folder = try TestSupport.nodeTestsFolder()
        let work = try TestSupport.tempDir("wrong-shape-values")
        // Model, op named in the message, then input index -> (wrong values, the declared case's values).
        let cases: [(test: String, op: String, inputs: [Int: (wrong: String, right: String)])] = [
            ("test_dft_axis", "DFT", [1: ("3", "2")]),
            ("test_stft", "STFT", [1: ("7", "8"), 2: ("16", "16")]),
            ("test_col2im", "Col2Im", [1: ("5, 5", "5, 5"), 2: ("2, 2", "1, 5")]),
            ("test_resize_upsample_scales_nearest", "Resize", [1: ("1.0f, 1.0f, 2.0f, 2.0f", "1.0f, 1.0f, 2.0f, 3.0f")]),
            ("test_hannwindow", "HannWindow", [0: ("11", "10")]),
            ("test_melweightmatrix", "MelWeightMatrix", [0: ("7", "8"), 1: ("16", "16"), 2: ("8192", "8192"), 3: ("0.0f", "0.0f"), 4: ("4096.0f", "4096.0f")]),
            ("test_center_crop_pad_crop", "CenterCropPad", [1: ("10, 8, 3", "10, 7, 3")]),
            ("test_maxunpool_export_with_output_shape", "MaxUnpool", [1: ("0, 1, 2, 3", "0, 1, 2, 3"), 2: ("1, 1, 5, 6", "1, 1, 5, 5")]),
            ("test_affine_grid_2d", "AffineGrid", [1: ("2, 3, 6, 5", "2, 3, 5, 6")]),
            // Function bodies specialized on the values the declared output shape implies
            // (SpecializeShapeInputs): the input is checked, not the node. AffineGrid's channel
            // count is no extent of the grid: it stays free (7 is not the node test's 3).
            ("test_center_crop_pad_crop_expanded", "input 'shape' must be [0] = 10, [1] = 7, [2] = 3", [1: ("10, 8, 3", "10, 7, 3")]),
            ("test_affine_grid_2d_expanded", "input 'size' must be [0] = 2, [2] = 5, [3] = 6", [1: ("2, 3, 6, 5", "2, 7, 5, 6")]),
        ]
        var driver = "#include <cstdio>\n#include <cstring>\n#include <stdexcept>\n#include <vector>\n"
        var calls = ""
        for (i, c) in cases.enumerated() {
            var options = Compiler.Options(name: "w\(i)")
            options.weights = .embed
            let emitted = try Compiler.compile(path: "\(folder)/\(c.test)/model.onnx", directory: work, options: options)
            driver += "#include \"w\(i).hxx\"\n"
            let sig = CppHarness.signature(emitted.header)
            func args(_ pick: (Int) -> String?) -> (decl: String, list: String) {
                var decl = "", list: [String] = []
                for (k, t) in sig.inputs.enumerated() {
                    let values = pick(k).map { "{\($0)}" } ?? "(\(max(t.count, 1)))"
                    decl += "            std::vector<\(t.type)> in\(k)\(values); in\(k).resize(\(max(t.count, 1)));\n"
                    list.append("in\(k).data()")
                }
                for (k, t) in sig.outputs.enumerated() {
                    decl += "            std::vector<\(t.type)> out\(k)(\(max(t.count, 1)));\n"
                    list.append("out\(k).data()")
                }
                return (decl, list.joined(separator: ", "))
            }
            let wrong = args { c.inputs[$0]?.wrong }, right = args { c.inputs[$0]?.right }
            calls += """
                {
                    w\(i)::Session s;
                    {
            \(wrong.decl)            try { s.infer(\(wrong.list)); std::printf("\(c.test): wrong values did not throw\\n"); failed = true; }
                        catch (const std::invalid_argument& e) { if (!std::strstr(e.what(), "\(c.op)")) { std::printf("\(c.test): %s\\n", e.what()); failed = true; } else std::printf("%s\\n", e.what()); }
                    }
                    {
            \(right.decl)            try { s.infer(\(right.list)); } catch (const std::exception& e) { std::printf("\(c.test): the declared values threw %s\\n", e.what()); failed = true; }
                    }
                }

            """
        }
        driver += "int main() {\n    bool failed = false;\n\(calls)    return failed ? 1 : 0;\n}\n"
        guard let run = try Self.buildAndRun(driver, in: work, flags: ["-O1"]) else { return }
        XCTAssertEqual(run.status, 0, run.output)
        XCTAssertEqual(run.output.split(separator: "\n").filter { $0.contains("does not") || $0.contains("do not") || $0.contains("has size") || $0.contains("out of range") || $0.contains("must be") }.count, cases.count, run.output)
    }

    /// A Reshape whose shape, a ReduceSum whose axes, a TopK whose k and a Slice whose starts are
    /// graph inputs, their output shapes declared: the code computes them when the values give the declared shapes (-1 and negative
    /// axes included) and throws std::invalid_argument naming the node when they do not.
    func testShapeAndAxesInputsCheckedAgainstDeclaredShapes() throws {
        let g = Graph(name: "runtime_shape_inputs")
        let x = Value(name: "x", type: .tensor(TensorType(.float, fixed: [2, 3])))
        let shape = Value(name: "shape", type: .tensor(TensorType(.int64, fixed: [2])))
        let axes = Value(name: "axes", type: .tensor(TensorType(.int64, fixed: [1])))
        let k = Value(name: "k", type: .tensor(TensorType(.int64, fixed: [1])))
        let starts = Value(name: "starts", type: .tensor(TensorType(.int64, fixed: [1])))
        g.inputs = [x, shape, axes, k, starts]
        let r = Value(name: "r", type: .tensor(TensorType(.float, fixed: [3, 2])))
        let s = Value(name: "s", type: .tensor(TensorType(.float, fixed: [2, 1])))
        g.appendNode(Node(opType: "Reshape", name: "the_reshape", inputs: [x, shape], outputs: [r]))
        g.appendNode(Node(opType: "ReduceSum", name: "the_sum", inputs: [x, axes], outputs: [s]))
        let top = Value(name: "top", type: .tensor(TensorType(.float, fixed: [2, 2])))
        let at = Value(name: "at", type: .tensor(TensorType(.int64, fixed: [2, 2])))
        g.appendNode(Node(opType: "TopK", name: "the_topk", inputs: [x, k], outputs: [top, at]))
        let cut = Value(name: "cut", type: .tensor(TensorType(.float, fixed: [2, 2])))
        let ends = Value(name: "ends", initializer: Tensor(dataType: .int64, dims: [1], values: [Int64.max]))
        let sliceAxes = Value(name: "slice_axes", initializer: Tensor(dataType: .int64, dims: [1], values: [Int64(-1)]))
        ends.tensorType = TensorType(.int64, fixed: [1])
        sliceAxes.tensorType = TensorType(.int64, fixed: [1])
        g.initializers = [ends, sliceAxes]
        g.appendNode(Node(opType: "Slice", name: "the_slice", inputs: [x, starts, ends, sliceAxes], outputs: [cut]))
        g.outputs = [r, s, top, at, cut]
        let model = Model(graph: g)
        model.opsetImports = [OpsetImport(domain: "", version: 18)]
        let work = try TestSupport.tempDir("declared-shapes")
        _ = try Compiler.compile(model, source: "declared.onnx", directory: work, options: Compiler.Options(name: "declared"))
        let driver = """
            #include <cstdio>
            #include "declared.hxx"
            int main() {
                declared::Session s;
                const float x[6] = {1, 2, 3, 4, 5, 6};
                float r[6], sum[2], top[4], cut[4];
                int64_t at[4];
                const int64_t two = 2, three = 3, one = 1, minus_two = -2, zero = 0;
                bool failed = false;
                for (auto shape : {std::vector<int64_t>{3, 2}, std::vector<int64_t>{-1, 2}, std::vector<int64_t>{3, -1}})
                    for (int64_t axis : {int64_t(1), int64_t(-1)}) {
                        s.infer(x, shape.data(), &axis, &two, axis == 1 ? &one : &minus_two, r, sum, top, at, cut);
                        failed = failed || cut[0] != 2 || cut[1] != 3 || cut[2] != 5 || cut[3] != 6;
                        for (int i = 0; i < 6; ++i) failed = failed || r[i] != x[i];
                        failed = failed || sum[0] != 6 || sum[1] != 15;
                        failed = failed || top[0] != 3 || top[1] != 2 || top[2] != 6 || top[3] != 5 || at[0] != 2 || at[1] != 1;
                    }
                int throws = 0;
                const int64_t good_axis = 1, bad_axis = 0, out_of_range = 2;
                for (auto shape : {std::vector<int64_t>{6, 1}, std::vector<int64_t>{2, 3}, std::vector<int64_t>{-1, -1}}) {
                    try { s.infer(x, shape.data(), &good_axis, &two, &one, r, sum, top, at, cut); } catch (const std::invalid_argument& e) { ++throws; std::printf("%s\\n", e.what()); }
                }
                const int64_t shape[2] = {3, 2};
                for (const int64_t* axis : {&bad_axis, &out_of_range}) {
                    try { s.infer(x, shape, axis, &two, &one, r, sum, top, at, cut); } catch (const std::invalid_argument& e) { ++throws; std::printf("%s\\n", e.what()); }
                }
                try { s.infer(x, shape, &good_axis, &three, &one, r, sum, top, at, cut); } catch (const std::invalid_argument& e) { ++throws; std::printf("%s\\n", e.what()); }
                try { s.infer(x, shape, &good_axis, &two, &zero, r, sum, top, at, cut); } catch (const std::invalid_argument& e) { ++throws; std::printf("%s\\n", e.what()); }
                return failed || throws != 7 ? 1 : 0;
            }

            """
        guard let run = try Self.buildAndRun(driver, in: work, flags: ["-O1"]) else { return }
        XCTAssertEqual(run.status, 0, run.output)
        XCTAssertEqual(run.output.components(separatedBy: "node 'the_reshape' (Reshape): its shape (input 1) does not give the output shape [3x2]").count - 1, 3, run.output)
        XCTAssertEqual(run.output.components(separatedBy: "node 'the_sum' (ReduceSum): its axes (input 1) do not give the output shape [2x1]").count - 1, 2, run.output)
        XCTAssertEqual(run.output.components(separatedBy: "node 'the_topk' (TopK): its k (input 1) is not the declared 2").count - 1, 1, run.output)
        XCTAssertEqual(run.output.components(separatedBy: "node 'the_slice' (Slice): its starts, ends, axes and steps do not give the output shape [2x2]").count - 1, 1, run.output)
        // A declared shape no values could give (it would read past the input) is refused.
        for (op, declared, expect) in [("Reshape", [3, 3], "does not hold the input's elements"), ("TopK", [2, 4], "exceeds the input's 3 elements")] {
            let g2 = Graph(name: "hostile_declared")
            let x2 = Value(name: "x", type: .tensor(TensorType(.float, fixed: [2, 3])))
            let v2 = Value(name: "v", type: .tensor(TensorType(.int64, fixed: [op == "Reshape" ? 2 : 1])))
            g2.inputs = [x2, v2]
            let outs = op == "Reshape" ? [Value(name: "y", type: .tensor(TensorType(.float, fixed: declared)))]
                : [Value(name: "y", type: .tensor(TensorType(.float, fixed: declared))), Value(name: "i", type: .tensor(TensorType(.int64, fixed: declared)))]
            g2.appendNode(Node(opType: op, name: "bad", inputs: [x2, v2], outputs: outs))
            g2.outputs = outs
            let m2 = Model(graph: g2)
            m2.opsetImports = [OpsetImport(domain: "", version: 18)]
            XCTAssertThrowsError(try Compiler.emit(m2, options: Compiler.Options(name: "h"), source: "hostile.onnx")) { error in
                XCTAssertTrue("\(error)".contains("bad") && "\(error)".contains(expect), "\(error)")
            }
        }
        // Without a declared output shape the shape input must be a constant (or bounded).
        r.tensorType = TensorType(.float, nil)
        XCTAssertThrowsError(try Compiler.emit(model, options: Compiler.Options(name: "d2"), source: "declared.onnx")) { error in
            XCTAssertTrue("\(error)".contains("the_reshape"), "\(error)")
        }
    }

    /// The same model compiled with a bound and with the size fixed: where nothing follows the
    /// symbol the code is the same, and compiling twice gives the same header.
    func testHeadersAreDeterministicAndStaticShapesUnchanged() throws {
        let src = "\(Self.fixtures)/deepsets_torchscript/model.onnx"
        let work = try TestSupport.tempDir("runtime-dims-determinism")
        var headers: [String] = []
        for k in 0..<2 {
            var options = Compiler.Options(name: "m")
            options.bounds = ["n": 32]
            let e = try Compiler.compile(path: src, directory: "\(work)/\(k)", options: options)
            headers.append(e.header)
        }
        XCTAssertEqual(headers[0], headers[1])
        XCTAssertTrue(headers[0].contains("mm.M = n_n;"), "the set's rows are a run-time extent of the products")
        XCTAssertTrue(headers[0].contains("static std::size_t input0_size([[maybe_unused]] int64_t n)"))
    }

    /// An op without run-time extent support on the symbol's axis, a bound below 1 and a size
    /// fixed and bounded at once are errors that say what to do.
    func testClearErrors() throws {
        // Conv over the symbolic axis: not yet emitted with run-time extents.
        let g = Graph(name: "conv_over_n")
        let x = Value(name: "x", type: .tensor(TensorType(.float, [.fixed(1), .fixed(2), .symbolic("n")])))
        g.inputs = [x]
        let w = Value(name: "w", initializer: Tensor(dataType: .float, dims: [3, 2, 1], values: [Float](repeating: 0.5, count: 6)))
        w.tensorType = TensorType(.float, fixed: [3, 2, 1])
        g.initializers = [w]
        let y = Value(name: "y")
        g.appendNode(Node(opType: "Conv", name: "the_conv", inputs: [x, w], outputs: [y]))
        g.outputs = [y]
        let model = Model(graph: g)
        model.opsetImports = [OpsetImport(domain: "", version: 17)]
        var options = Compiler.Options(name: "m")
        options.bounds = ["n": 16]
        XCTAssertThrowsError(try Compiler.emit(model, options: options, source: "conv.onnx")) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("the_conv") && text.contains("Conv") && text.contains("--dim"), text)
        }
        let bad = try TestSupport.sofie(["compile", "\(Self.fixtures)/deepsets_torchscript/model.onnx", "--dim", "n=max:0", "-o", try TestSupport.tempDir("rd-bad")])
        XCTAssertNotEqual(bad.status, 0)
        XCTAssertTrue(bad.output.contains("at least 1"), bad.output)
        let twice = try TestSupport.sofie(["compile", "\(Self.fixtures)/deepsets_torchscript/model.onnx", "--dim", "n=max:8", "--dim", "n=4", "-o", try TestSupport.tempDir("rd-bad2")])
        XCTAssertNotEqual(twice.status, 0)
        XCTAssertTrue(twice.output.contains("twice"), twice.output)

        // Lengths that values choose take default bounds, at most 16 per model: a 17th NonZero
        // gets the error that names the flag, and --dim gives it a bound.
        func nonZeros(_ count: Int) -> Model {
            let g = Graph(name: "many_nonzero")
            for k in 0..<count {
                let x = Value(name: "x\(k)", type: .tensor(TensorType(.float, fixed: [4])))
                let y = Value(name: "y\(k)")
                g.inputs.append(x)
                g.appendNode(Node(opType: "NonZero", name: "nz\(k)", inputs: [x], outputs: [y]))
                g.outputs.append(y)
            }
            let m = Model(graph: g)
            m.opsetImports = [OpsetImport(domain: "", version: 17)]
            return m
        }
        let sixteen = try Compiler.emit(nonZeros(16), options: Compiler.Options(name: "m16"), source: "nz.onnx")
        XCTAssertEqual(sixteen.runtimeDimensions.count, 16)
        XCTAssertEqual(Set(sixteen.runtimeDimensions.map(\.dimension.bound)), [4])
        XCTAssertThrowsError(try Compiler.emit(nonZeros(17), options: Compiler.Options(name: "m17"), source: "nz.onnx")) { error in
            XCTAssertTrue("\(error)".contains("nz16") && "\(error)".contains("--dim 'nz16_len=max:BOUND'"), "\(error)")
        }
        var given = Compiler.Options(name: "m17")
        given.bounds = ["nz16_len": 2]
        let seventeen = try Compiler.emit(nonZeros(17), options: given, source: "nz.onnx")
        XCTAssertEqual(seventeen.runtimeDimensions.first { $0.dimension.name == "nz16_len" }?.dimension.bound, 2)
    }
}
