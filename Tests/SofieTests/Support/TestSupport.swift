import Foundation
import XCTest

/// Paths and helpers shared by the tests.
enum TestSupport {
    static let repoRoot: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<4 { url.deleteLastPathComponent() }
        return url.path
    }()

    /// The project's Python (with onnx, onnxruntime, numpy), set up by scripts/setup.sh.
    static var python: String {
        if let p = ProcessInfo.processInfo.environment["SOFIE_PYTHON"] { return p }
        return repoRoot + "/.venv/bin/python"
    }

    static func requirePython(file: StaticString = #filePath, line: UInt = #line) throws {
        guard FileManager.default.isExecutableFile(atPath: python) else {
            XCTFail("no Python environment at \(python); run ./scripts/test.sh, which creates it", file: file, line: line)
            throw XCTSkip("python missing")
        }
    }

    /// The folder of ONNX's light real models inside the onnx pip package.
    static func lightModelsFolder() throws -> String {
        let out = try run(python, ["-c", "import onnx, os; print(os.path.join(os.path.dirname(onnx.__file__), 'backend/test/data/light'))"])
        return out.output.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    static let lightModels = ["bvlc_alexnet", "densenet121", "inception_v1", "inception_v2", "resnet50",
                              "shufflenet", "squeezenet", "vgg19", "zfnet512"]

    struct RunResult {
        let status: Int32
        let output: String
    }

    /// Runs a program, capturing stdout and stderr together.
    @discardableResult
    static func run(_ exe: String, _ args: [String], cwd: String? = nil, check: Bool = true) throws -> RunResult {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: exe)
        p.arguments = args
        if let cwd { p.currentDirectoryURL = URL(fileURLWithPath: cwd) }
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = pipe
        try p.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        let r = RunResult(status: p.terminationStatus, output: String(decoding: data, as: UTF8.self))
        if check && r.status != 0 {
            throw NSError(domain: "TestSupport", code: Int(r.status),
                          userInfo: [NSLocalizedDescriptionKey: "\(exe) \(args.joined(separator: " ")) failed (\(r.status)):\n\(r.output)"])
        }
        return r
    }

    static func tempDir(_ name: String) throws -> String {
        let dir = NSTemporaryDirectory() + "sofie-tests-\(getpid())/\(name)"
        try? FileManager.default.removeItem(atPath: dir)
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    /// ONNX's node conformance tests, written once per test run by ../shared/tools/onnx_node_tests.py
    /// (or the copy under Tests/scripts when the shared folder is absent).
    /// Full path of an executable on the PATH, or nil.
    static func which(_ name: String) -> String? {
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":") {
            let path = "\(dir)/\(name)"
            if FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        return nil
    }

    static func nodeTestsFolder() throws -> String {
        let lock = NSLock()
        lock.lock(); defer { lock.unlock() }
        let dir = NSTemporaryDirectory() + "sofie-tests-\(getpid())/node-tests"
        if FileManager.default.fileExists(atPath: dir + "/.complete") { return dir }
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try run(python, [repoRoot + "/Tests/scripts/onnx_node_tests.py", dir])
        FileManager.default.createFile(atPath: dir + "/.complete", contents: Data())
        return dir
    }

    static func subfolders(_ dir: String) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: dir).filter { !$0.hasPrefix(".") }.sorted()
    }
}

extension TestSupport {
    /// The `sofie` executable built next to the test bundle.
    static var sofieExecutable: String {
        let bundle = Bundle(for: BundleLocator.self).bundleURL
        for dir in [bundle, bundle.deletingLastPathComponent()] {
            let candidate = dir.appendingPathComponent("sofie").path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return repoRoot + "/.build/debug/sofie"
    }

    /// Runs the CLI and returns its exit status and combined output.
    static func sofie(_ args: [String]) throws -> RunResult {
        try run(sofieExecutable, args, check: false)
    }
}

private final class BundleLocator {}
