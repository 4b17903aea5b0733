import Foundation
@testable import SofieBackends
import SofieIR
import XCTest

/// The C++ runtime's kernels as C++: Tests/cpp/runtime_kernels_test.cpp checks each kernel (GEMM
/// paths, packed weights, the convolution kernels, depthwise, col2im, pooling, activations, the
/// array math) against a naive double-precision loop, with guard zones around every buffer and
/// NaN-filled workspaces. Built against the runtime text sofie embeds (CppRuntime.source) at plain
/// -O2 (SSE2: 6 x 8 tiles), -O2 -mavx2 -mfma (6 x 16: what a plain -O2 header runs on an AVX2
/// CPU), -O3 -march=native (AVX2 or AVX-512 tiles), without __GNUC__ (the scalar fallbacks) and
/// with clang when it is on the PATH; and against the header files in the repository under AddressSanitizer and UBSan.
/// The constants the emitter sizes workspaces with must be the C++ ones.
final class RuntimeKernelTests: XCTestCase {
    func testKernelsAgainstNaiveLoops() throws {
        let work = try TestSupport.tempDir("runtime-kernels")
        let embedded = work + "/embedded"
        try FileManager.default.createDirectory(atPath: embedded, withIntermediateDirectories: true)
        try CppRuntime.source.write(toFile: embedded + "/sofie_runtime.h", atomically: true, encoding: .utf8)
        let source = TestSupport.repoRoot + "/Tests/cpp/runtime_kernels_test.cpp"
        let headers = TestSupport.repoRoot + "/Sources/Backends/CPP/runtime"

        var builds: [(name: String, flags: [String], compiler: String)] = [
            ("plain", ["-O2", "-I", embedded], CppHarness.compiler),
            ("native", ["-O3", "-march=native", "-I", embedded], CppHarness.compiler),
            // What the AVX2 twin of a plain -O2 build runs (32-byte vectors, 6 x 16 tiles).
            ("avx2", ["-O2", "-mavx2", "-mfma", "-I", embedded], CppHarness.compiler),
            // The scalar fallbacks a compiler without GNU vector extensions (MSVC) builds: g++
            // told it is not GNU (-Wno-overflow: INFINITY is then a constant it warns about).
            ("portable", ["-O1", "-U__GNUC__", "-Wno-overflow", "-I", embedded], CppHarness.compiler),
            ("sanitized", ["-O1", "-g", "-march=native", "-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-I", headers],
             CppHarness.compiler),
        ]
        if let clang = TestSupport.which("clang++") { builds.append(("clang-native", ["-O3", "-march=native", "-I", embedded], clang)) }
        var errors: [String: String] = [:]
        let lock = NSLock()
        DispatchQueue.concurrentPerform(iterations: builds.count) { i in
            let b = builds[i]
            let e = CppHarness.build([(source, work + "/" + b.name)], flags: CppHarness.warningFlags + b.flags, parallel: 1, compiler: b.compiler)
            lock.lock(); errors.merge(e.mapValues { "\(b.name): \($0)" }) { $0 + "\n" + $1 }; lock.unlock()
        }
        XCTAssertEqual(errors.count, 0, errors.values.joined(separator: "\n").prefix(4000).description)

        let expected = "constants KC=\(CppRuntime.kc) NC=\(CppRuntime.nc) kMaxNR=\(CppRuntime.maxNR) kPanel=\(CppRuntime.gemvPanel) "
            + "kDepthwiseMaxRow=\(CppRuntime.depthwiseMaxRow) kDepthwiseRowBuffer=\(CppRuntime.depthwiseRowBuffer) kDepthwiseWork=\(CppRuntime.depthwiseWork)"
        let cpu = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        let hasAVX2 = cpu.contains(" avx2") && cpu.contains(" fma")
        for b in builds where FileManager.default.isExecutableFile(atPath: work + "/" + b.name) && (b.name != "avx2" || hasAVX2) {
            let r = try TestSupport.run(work + "/" + b.name, [], check: false)
            XCTAssertEqual(r.status, 0, "\(b.name):\n\(r.output.prefix(4000))")
            let lines = r.output.split(separator: "\n").map(String.init)
            XCTAssertEqual(lines.first, expected, "\(b.name): the runtime's constants differ from the emitter's (CppRuntime)")
            // "N checks, 0 failures": the test ran its cases.
            let summary = lines.last?.split(separator: " ") ?? []
            XCTAssertTrue(summary.count == 4 && (Int(summary[0]) ?? 0) > 100_000 && summary[2] == "0", "\(b.name): \(lines.last ?? "no output")")
        }
    }

    /// The embedded text stands alone: the parts inlined once each, no `#pragma once` or local
    /// include left, and its guard and namespace renamed in the emitted form.
    func testEmbeddedRuntimeIsSelfContained() throws {
        let text = CppRuntime.source
        XCTAssertFalse(text.contains("#pragma once"))
        XCTAssertFalse(text.split(separator: "\n").contains { $0.hasPrefix("#include \"") }, "a local include was not inlined")
        for part in ["base.h", "math.h", "gemm.h", "conv.h", "ops.h"] {
            let first = try String(contentsOfFile: TestSupport.repoRoot + "/Sources/Backends/CPP/runtime/" + part, encoding: .utf8)
                .split(separator: "\n").first.map(String.init) ?? ""
            XCTAssertEqual(text.components(separatedBy: first + "\n").count - 1, 1, "\(part) is embedded once")
        }
        let versioned = CppRuntime.versioned
        XCTAssertFalse(versioned.contains("namespace sofie_rt {"))
        XCTAssertFalse(versioned.contains("SOFIE_RUNTIME_V2"))
        XCTAssertEqual(versioned.components(separatedBy: "namespace sofie_rt_\(CppRuntime.versionTag) {").count - 1,
                       text.components(separatedBy: "namespace sofie_rt {").count - 1)
    }

    func testWinogradOnlyForOutputsLargerThanEightByEight() {
        // 3×3 stride 1, one group: Winograd above 16 tiles of 2×2; 7×7 and 8×8 (resnet's last
        // stage) run direct, and so does everything that is not a 3×3 stride-1 one-group window.
        func geometry(_ h: Int, _ w: Int, kernel: [Int] = [3, 3], strides: [Int] = [1, 1], group: Int = 1) -> NNOps.Geometry {
            NNOps.Geometry(inputShape: [1, 512, h, w], outputShape: [1, 512, h, w], kernel: kernel, strides: strides, dilations: [1, 1],
                           padsBegin: [1, 1], padsEnd: [1, 1], group: group)
        }
        for (h, w, expected) in [(7, 7, false), (8, 8, false), (4, 4, false), (9, 8, true), (14, 14, true), (56, 56, true), (1, 200, true)] {
            XCTAssertEqual(CppBlocked.winogradApplies(geometry(h, w), depthwise: false), expected, "\(h)×\(w)")
        }
        XCTAssertFalse(CppBlocked.winogradApplies(geometry(56, 56), depthwise: true))
        XCTAssertFalse(CppBlocked.winogradApplies(geometry(56, 56, group: 2), depthwise: false))
        XCTAssertFalse(CppBlocked.winogradApplies(geometry(56, 56, strides: [2, 2]), depthwise: false))
        XCTAssertFalse(CppBlocked.winogradApplies(geometry(56, 56, kernel: [5, 5]), depthwise: false))
        XCTAssertFalse(CppBlocked.winogradApplies(geometry(Int.max, Int.max), depthwise: false), "an overflowing tile count is not Winograd's")
    }
}
