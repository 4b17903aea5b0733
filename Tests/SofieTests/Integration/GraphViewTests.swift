import Foundation
import XCTest

/// `sofie inspect MODEL --html out.html` as a user opens it: the page for a PyTorch export is
/// loaded by headless Chromium (Debian's), whose DOM must hold every node of both graphs as SVG
/// elements, and a screenshot is taken; a model whose names carry markup gets them escaped.
final class GraphViewTests: XCTestCase {
    static var chromium: String? {
        ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"].first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    func headless(_ args: [String]) throws -> TestSupport.RunResult {
        guard let c = Self.chromium else { throw XCTSkip("unreachable") }
        return try TestSupport.run(c, ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"] + args, check: false)
    }

    func testPageRendersInChromium() throws {
        guard Self.chromium != nil else { return XCTFail("no Chromium; scripts/setup.sh installs Debian's chromium") }
        let work = try TestSupport.tempDir("graph-view")
        let model = TestSupport.repoRoot + "/Tests/Fixtures/pytorch/mobilenet_v3_small_torchscript/model.onnx"
        let r = try TestSupport.sofie(["inspect", model, "--html", work + "/g.html"])
        XCTAssertEqual(r.status, 0, r.output)
        guard let m = r.output.range(of: #"(\d+) nodes as read, (\d+) after the pipeline"#, options: .regularExpression) else {
            return XCTFail(r.output)
        }
        let counts = r.output[m].split(separator: " ").compactMap { Int($0) }
        XCTAssertEqual(counts.count, 2)
        XCTAssertLessThan(counts[1], counts[0], "the pipeline should shrink this graph")

        let dom = try headless(["--dump-dom", "file://" + work + "/g.html"])
        XCTAssertEqual(dom.status, 0, dom.output)
        func occurrences(_ s: String, _ text: String) -> Int { text.components(separatedBy: s).count - 1 }
        // Every node of both graphs is an SVG group in the DOM Chromium built.
        XCTAssertEqual(occurrences("<g class=\"node", dom.output), counts[0] + counts[1], "nodes in Chromium's DOM")
        XCTAssertGreaterThan(occurrences("<g class=\"node removed\"", dom.output), 0, "removed nodes are marked")
        XCTAssertGreaterThan(occurrences("<g class=\"edge\"", dom.output), counts[0])
        XCTAssertTrue(dom.output.contains("<table id=\"counts\">"), "operator counts")

        let shot = work + "/g.png"
        let s = try headless(["--window-size=1400,900", "--screenshot=" + shot, "file://" + work + "/g.html"])
        XCTAssertEqual(s.status, 0, s.output)
        let png = try Data(contentsOf: URL(fileURLWithPath: shot))
        XCTAssertEqual(Array(png.prefix(8)), [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A], "a PNG")
        let width = png[16..<20].reduce(0) { $0 << 8 | Int($1) }, height = png[20..<24].reduce(0) { $0 << 8 | Int($1) }
        XCTAssertEqual([width, height], [1400, 900])
        XCTAssertGreaterThan(png.count, 20_000, "a page with content compresses to more than a blank one")
    }

    func testNamesFromTheModelAreEscaped() throws {
        try TestSupport.requirePython()
        let work = try TestSupport.tempDir("graph-view-names")
        try TestSupport.run(TestSupport.python, ["-c", """
        import onnx
        from onnx import helper, TensorProto
        evil = '<script>alert(1)</script>"&'
        n = helper.make_node('Relu', ['x'], [evil], name=evil + "'")
        g = helper.make_graph([n], 'g', [helper.make_tensor_value_info('x', TensorProto.FLOAT, [1, 4])],
                              [helper.make_tensor_value_info(evil, TensorProto.FLOAT, [1, 4])])
        onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid('', 17)], ir_version=8), '\(work)/evil.onnx')
        """])
        let r = try TestSupport.sofie(["inspect", work + "/evil.onnx", "--html", work + "/e.html"])
        XCTAssertEqual(r.status, 0, r.output)
        let page = try String(contentsOfFile: work + "/e.html", encoding: .utf8)
        XCTAssertFalse(page.lowercased().contains("<script"), "markup from the model reached the page")
        XCTAssertTrue(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;&quot;&amp;"), "the name is shown, escaped")
    }
}
