import Foundation
import XCTest

/// scripts/install.sh as a user runs it: a release sofie with the Swift runtime linked in,
/// installed into a prefix, runs with no Swift toolchain on the PATH and no Swift library
/// among its dependencies, and find_package(Sofie) from that prefix builds Examples/cmake.
final class InstallTests: XCTestCase {
    func testInstallIntoAPrefix() throws {
        try TestSupport.requirePython()
        let work = try TestSupport.tempDir("install")
        let prefix = work + "/prefix"
        // A build folder of its own: `swift test` holds .build.
        let scratch = TestSupport.repoRoot + "/.build/install-test"
        let r = try TestSupport.run("/usr/bin/env", ["SOFIE_INSTALL_SCRATCH=" + scratch, TestSupport.repoRoot + "/scripts/install.sh", prefix], check: false)
        XCTAssertEqual(r.status, 0, String(r.output.suffix(3000)))
        let sofie = prefix + "/bin/sofie"
        XCTAssertTrue(FileManager.default.isExecutableFile(atPath: sofie))
        XCTAssertTrue(FileManager.default.fileExists(atPath: prefix + "/lib/cmake/Sofie/SofieConfig.cmake"))
        let ldd = try TestSupport.run("/usr/bin/ldd", [sofie])
        XCTAssertFalse(ldd.output.contains("libswift") || ldd.output.contains("libFoundation"), "links the Swift runtime dynamically:\n\(ldd.output)")
        // No Swift toolchain on the PATH.
        let env = ["/usr/bin/env", "-i", "PATH=\(prefix)/bin:/usr/bin:/bin", "HOME=\(work)"]
        let version = try TestSupport.run(env[0], Array(env.dropFirst()) + ["sofie", "--version"])
        XCTAssertEqual(version.output.trimmingCharacters(in: .whitespacesAndNewlines), "0.1.0")
        let compiled = try TestSupport.run(env[0], Array(env.dropFirst()) + ["sofie", "compile", TestSupport.repoRoot + "/Examples/models/mlp.onnx", "-o", work + "/gen"])
        XCTAssertTrue(compiled.output.contains("wrote \(work)/gen/mlp.hxx"), compiled.output)
        // find_package(Sofie) through CMAKE_PREFIX_PATH picks the installed sofie.
        try TestSupport.run(env[0], Array(env.dropFirst()) + ["cmake", "-S", TestSupport.repoRoot + "/Examples/cmake", "-B", work + "/build", "-DCMAKE_PREFIX_PATH=" + prefix])
        let cache = try String(contentsOfFile: work + "/build/CMakeCache.txt", encoding: .utf8)
        XCTAssertTrue(cache.contains("SOFIE_EXECUTABLE:FILEPATH=\(prefix)/bin/sofie"), "the installed sofie is not the one used")
        try TestSupport.run(env[0], Array(env.dropFirst()) + ["cmake", "--build", work + "/build"])
        let out = try TestSupport.run(work + "/build/classify", []).output
        XCTAssertEqual(out.split(separator: "\n").count, 10, out)
    }
}
