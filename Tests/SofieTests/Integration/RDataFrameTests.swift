import Foundation
import XCTest

/// NAME::Functor inside ROOT's RDataFrame, for real: ROOT 6.40 from PyPI (`root`, installed by
/// scripts/setup.sh into .venv-root), its C++ interpreter compiling the generated headers, a
/// 2-thread RDataFrame over a 20,000-entry tree defining a scalar score (float columns) and a
/// 3-class probability vector (double columns, FunctorT<double>) and a Deep Sets output over a
/// column of 1 to 20 particles per entry (`--dim n=max:32`, FunctorT<ROOT::RVecF>); every entry
/// compared with ONNX Runtime (Tests/scripts/rdf_functor.py).
final class RDataFrameTests: XCTestCase {
    static var rootPython: String {
        ProcessInfo.processInfo.environment["SOFIE_ROOT_PYTHON"] ?? TestSupport.repoRoot + "/.venv-root/bin/python"
    }

    func testFunctorInMultiThreadedRDataFrame() throws {
        try TestSupport.requirePython()
        guard FileManager.default.isExecutableFile(atPath: Self.rootPython) else {
            return XCTFail("no ROOT environment at \(Self.rootPython); scripts/setup.sh creates it (pip install root)")
        }
        let work = try TestSupport.tempDir("rdataframe")
        let script = TestSupport.repoRoot + "/Tests/scripts/rdf_functor.py"
        try TestSupport.run(TestSupport.python, [script, "models", work])
        for m in ["sel", "cls", "dsets"] {
            let r = try TestSupport.sofie(["compile", "\(work)/\(m).onnx", "-o", work, "--weights", "file"] + (m == "dsets" ? ["--dim", "n=max:32"] : []))
            XCTAssertEqual(r.status, 0, r.output)
            let header = try String(contentsOfFile: "\(work)/\(m).hxx", encoding: .utf8)
            XCTAssertTrue(header.contains("using Functor = FunctorT<>;"), "\(m).hxx has no Functor")
        }
        let run = try TestSupport.run(Self.rootPython, [script, "run", work], check: false)
        XCTAssertEqual(run.status, 0, run.output)
        XCTAssertTrue(run.output.contains("slots 2 entries 20000"), run.output)
        let check = try TestSupport.run(TestSupport.python, [script, "check", work])
        XCTAssertEqual(check.output.trimmingCharacters(in: .whitespacesAndNewlines), "ok 20000 entries")
    }
}
