import Foundation
import SofieDriver
import XCTest

/// Headers carry a runtime named after its content: two models from this sofie share one copy
/// in a translation unit, and a header whose runtime differs (a header from another sofie
/// version, made here by editing one) keeps its own instead of silently using the other's.
final class RuntimeVersionTests: XCTestCase {
    func testHeadersFromDifferentRuntimesCoexist() throws {
        try TestSupport.requirePython()
        let work = try TestSupport.tempDir("runtime-version")
        let model = TestSupport.repoRoot + "/Examples/models/mlp.onnx"
        var options = Compiler.Options(name: "current")
        options.weights = .embed
        try Compiler.compile(path: model, directory: work, options: options)
        let current = try String(contentsOfFile: work + "/current.hxx", encoding: .utf8)
        guard let r = current.range(of: #"SOFIE_RUNTIME_([0-9a-f]{16})"#, options: .regularExpression) else {
            return XCTFail("no content-named runtime guard")
        }
        let tag = String(current[r].dropFirst("SOFIE_RUNTIME_".count))
        XCTAssertEqual(current.components(separatedBy: "namespace sofie_rt = ::sofie_rt_\(tag);").count - 1, 1)
        // "Another version": a different runtime body (one more function) under its own tag.
        var other = current
            .replacingOccurrences(of: tag, with: "0123456789abcdef")
            .replacingOccurrences(of: "namespace current {", with: "namespace older {")
        // The runtime opens its namespace once per part (base.h, math.h, ...): the function goes into the first.
        if let open = other.range(of: "namespace sofie_rt_0123456789abcdef {") {
            other.replaceSubrange(open, with: "namespace sofie_rt_0123456789abcdef {\ninline int only_in_the_older_runtime() { return 42; }")
        }
        try other.write(toFile: work + "/older.hxx", atomically: true, encoding: .utf8)
        try """
        #include "current.hxx"
        #include "older.hxx"
        #include <cstdio>
        int main() {
            std::vector<float> x(784, 0.25f);
            current::Session a;
            older::Session b;
            auto ya = a.infer(x), yb = b.infer(x);
            std::printf("%d %d\\n", ya == yb ? 1 : 0, sofie_rt_0123456789abcdef::only_in_the_older_runtime());
            return 0;
        }
        """.write(toFile: work + "/main.cpp", atomically: true, encoding: .utf8)
        let errors = CppHarness.build([(work + "/main.cpp", work + "/main")], flags: CppHarness.warningFlags + ["-O1", "-I", work])
        XCTAssertEqual(errors.count, 0, errors.values.joined(separator: "\n").prefix(3000).description)
        let out = try TestSupport.run(work + "/main", []).output
        XCTAssertEqual(out.trimmingCharacters(in: .whitespacesAndNewlines), "1 42", "both runtimes present, same results")
    }
}
