import Foundation
import SofieBackends
import SofieDriver
import SofieFrontends
import SofieIR
import SofiePasses
import XCTest

/// float16, bfloat16 and float8 tensors: stored as their bits (sofie::float16_t, ...),
/// computed in float32 with the result of each op rounded to the tensor's type.
final class ReducedFloatTests: XCTestCase {
    /// float16 models against ONNX Runtime (Tests/scripts/make_float16_models.py): a CNN and a
    /// transformer block, built with AddressSanitizer and UBSan. ONNX Runtime computes runs of
    /// ops without float16 kernels in float32 without rounding between them, so the outputs
    /// agree within 2 float16 ulps (of each value or at the output's scale), not bit for bit (measured: 1); against the same model in float32 they
    /// stay within 1% of the output's scale.
    func testFloat16ModelsMatchONNXRuntime() throws {
        try ReferenceFixtures.makeAndCompare(script: "make_float16_models.py", expect: ["attention_fp16", "cnn_fp16"], ulps: 2, f32Tolerance: 0.01)
    }

    /// `sofie verify` on float16 models: random float16 inputs, the outputs decoded and compared
    /// with ONNX Runtime's (both fixtures: a CNN and a transformer block).
    func testVerifyComparesFloat16Models() throws {
        try TestSupport.requirePython()
        let fixtures = try TestSupport.tempDir("float16-verify")
        try TestSupport.run(TestSupport.python, [TestSupport.repoRoot + "/Tests/scripts/make_float16_models.py", fixtures])
        for name in ["cnn_fp16", "attention_fp16"] {
            // float16 results: compared at float16's resolution (one ulp is 1e-3 relative; the
            // outputs, of scale 0.4 and 2.3, measured 1.2e-4 and 9.8e-4 apart: one ulp each).
            let r = try TestSupport.sofie(["verify", "\(fixtures)/\(name)/model.onnx", "--python", TestSupport.python, "--atol", "2e-3", "--rtol", "1e-3"])
            XCTAssertEqual(r.status, 0, r.output)
            XCTAssertTrue(r.output.contains(" ok") && r.output.contains("match: every output"), r.output)
        }
    }

    /// The pass leaves Cast and data movement in float16 and wraps everything else.
    func testWideningWrapsComputingOpsOnly() throws {
        let g = Graph(name: "g")
        let x = Value(name: "x", type: .tensor(TensorType(.float16, fixed: [2, 3])))
        g.inputs = [x]
        let t = Value(name: "t", type: .tensor(TensorType(.float16, fixed: [3, 2])))
        let r = Value(name: "r", type: .tensor(TensorType(.float16, fixed: [3, 2])))
        let y = Value(name: "y", type: .tensor(TensorType(.float16, fixed: [3, 2])))
        g.appendNode(Node(opType: "Transpose", inputs: [x], outputs: [t]))
        g.appendNode(Node(opType: "Relu", inputs: [t], outputs: [r]))
        g.appendNode(Node(opType: "Add", inputs: [r, r], outputs: [y]))
        g.outputs = [y]
        let model = Model(graph: g)
        model.opsetImports = [OpsetImport(domain: "", version: 21)]
        XCTAssertTrue(try WidenReducedFloats().run(model))
        XCTAssertEqual(g.nodes.map(\.opType), ["Transpose", "Cast", "Relu", "Cast", "Cast", "Add", "Cast"])
        // Add reads r twice through one widening; every computing op sees float32 only.
        for n in g.nodes where n.opType != "Cast" && n.opType != "Transpose" {
            XCTAssertTrue((n.inputs + n.outputs).allSatisfy { $0?.tensorType?.elementType == .float }, "\(n)")
        }
        XCTAssertTrue(g.nodes[5].input(0) === g.nodes[5].input(1))
        XCTAssertTrue(g.outputs[0] === y && y.tensorType?.elementType == .float16)
        try Verifier.verify(model)
        XCTAssertFalse(try WidenReducedFloats().run(model), "a second run changes nothing")
    }

    /// The C++ conversions against the Swift decoder and numpy-free facts: every bit pattern of
    /// each 8-bit format round-trips through from_double(to_double(b)); every float16 does;
    /// rounding is to nearest even at the half-way points; saturate and overflow follow ONNX.
    func testConversionsRoundTripAndRound() throws {
        let dir = try TestSupport.tempDir("minifloat")
        let src = """
        #include <cmath>
        #include <cstdint>
        #include <cstdio>
        #include <cstring>
        #include <limits>
        \(CppNumberTypes.source)
        template <class T> int roundtrip(int bits) {
            int bad = 0;
            for (int b = 0; b < (1 << bits); ++b) {
                T v{static_cast<decltype(T::bits)>(b)};
                double d = sofie::to_double(v);
                T w = sofie::from_double<T>(d);
                if (std::isnan(d) ? !std::isnan(sofie::to_double(w)) : w.bits != v.bits) {
                    // fnuz has no -0: its pattern is the NaN (handled above); e4m3fn's two NaNs differ in sign only.
                    ++bad; std::printf("roundtrip %d: %d -> %g -> %d\\n", bits, b, d, int(w.bits));
                }
                std::printf("%d %.17g\\n", b, d);
            }
            return bad;
        }
        int main() {
            int bad = roundtrip<sofie::float8e4m3fn_t>(8) + roundtrip<sofie::float8e4m3fnuz_t>(8) + roundtrip<sofie::float8e5m2_t>(8)
                    + roundtrip<sofie::float8e5m2fnuz_t>(8) + roundtrip<sofie::float16_t>(16);
            // Ties to even: 1 + 2^-11 is half-way between 1 and the next float16; 1 + 3*2^-11 rounds up.
            bad += sofie::from_double<sofie::float16_t>(1 + std::ldexp(1.0, -11)).bits != 0x3C00;
            bad += sofie::from_double<sofie::float16_t>(1 + 3 * std::ldexp(1.0, -11)).bits != 0x3C02;
            bad += sofie::from_double<sofie::float16_t>(65520.0).bits != 0x7C00;  // rounds past the largest: inf
            bad += sofie::from_double<sofie::float16_t>(65519.0).bits != 0x7BFF;
            bad += sofie::from_double<sofie::bfloat16_t>(1.00390625).bits != 0x3F80;  // tie, to even
            bad += sofie::from_double<sofie::float8e4m3fn_t>(1e6, true).bits != 0x7E;  // saturate: 448
            bad += sofie::from_double<sofie::float8e4m3fn_t>(1e6, false).bits != 0x7F; // no inf: NaN
            bad += sofie::from_double<sofie::float8e4m3fn_t>(464.0, false).bits != 0x7E; // tie to the even 448
            bad += sofie::from_double<sofie::float8e5m2_t>(-1e6, false).bits != 0xFC;  // -inf
            bad += sofie::from_double<sofie::float8e5m2_t>(-INFINITY, true).bits != 0xFB; // saturate: -57344
            bad += sofie::from_double<sofie::float8e4m3fnuz_t>(-1e-9).bits != 0x00;    // no negative zero
            bad += sofie::from_double<sofie::float8e5m2fnuz_t>(NAN).bits != 0x80;
            // The fast float paths of float16 and bfloat16 agree with the general code: every
            // float16 decoded, every midpoint between neighbours and 2^20 random floats encoded.
            using H = sofie::minifloat::format_of<sofie::float16_t>::type;
            using B = sofie::minifloat::format_of<sofie::bfloat16_t>::type;
            for (int b = 0; b < 65536; ++b) {
                const sofie::float16_t h{static_cast<std::uint16_t>(b)};
                const double slow = H::decode(static_cast<std::uint32_t>(b));
                const float fast = sofie::to_float(h);
                if (std::isnan(slow) ? !std::isnan(fast) : double(fast) != slow) { ++bad; std::printf("to_float %d\\n", b); }
                if (b < 0x7bff || (b >= 0x8000 && b < 0xfbff)) {
                    const float mid = static_cast<float>((slow + H::decode(static_cast<std::uint32_t>(b + 1))) / 2);
                    if (sofie::from_float<sofie::float16_t>(mid).bits != H::encode(mid, false)) { ++bad; std::printf("midpoint %d\\n", b); }
                }
            }
            std::uint64_t state = 12345;
            for (int i = 0; i < (1 << 20); ++i) {
                state = state * 6364136223846793005ull + 1442695040888963407ull;
                const float f = sofie::bits_float(static_cast<std::uint32_t>(state >> 32));
                const bool nan = std::isnan(f);
                const auto h = sofie::from_float<sofie::float16_t>(f);
                const auto g = sofie::from_float<sofie::bfloat16_t>(f);
                if (nan ? !std::isnan(sofie::to_float(h)) : h.bits != H::encode(f, false)) { ++bad; std::printf("float16 %a\\n", double(f)); }
                if (nan ? !std::isnan(sofie::to_float(g)) : g.bits != B::encode(f, false)) { ++bad; std::printf("bfloat16 %a\\n", double(f)); }
                if (bad > 20) break;
            }
            std::printf("bad %d\\n", bad);
            return bad != 0;
        }
        """
        try src.write(toFile: "\(dir)/t.cpp", atomically: true, encoding: .utf8)
        let errs = CppHarness.build([("\(dir)/t.cpp", "\(dir)/t")], flags: CppHarness.warningFlags + ["-O2"])
        XCTAssertTrue(errs.isEmpty, "\(errs)")
        let r = try TestSupport.run("\(dir)/t", [], check: false)
        XCTAssertEqual(r.status, 0, String(r.output.suffix(2000)))
        // The decoded values agree with the Swift decoder for every pattern of each format.
        let lines = r.output.split(separator: "\n").filter { $0.split(separator: " ").count == 2 && !$0.hasPrefix("bad") }
        let formats: [(DataType, Int)] = [(.float8e4m3fn, 256), (.float8e4m3fnuz, 256), (.float8e5m2, 256), (.float8e5m2fnuz, 256), (.float16, 65536)]
        XCTAssertEqual(lines.count, formats.reduce(0) { $0 + $1.1 })
        var k = 0
        for (dt, count) in formats {
            let f = ReducedFloatFormat(dt)!
            for b in 0..<count {
                let parts = lines[k].split(separator: " ")
                k += 1
                let c = Double(parts[1]) ?? .nan, s = f.decode(UInt32(b))
                if !(c == s || (c.isNaN && s.isNaN)) { XCTFail("\(dt) bits \(b): C++ \(c), Swift \(s)"); break }
                if dt == .float16 {
                    // And both agree with Swift's own IEEE binary16.
                    let native = Double(Float16(bitPattern: UInt16(b)))
                    if !(native == s || (native.isNaN && s.isNaN)) { XCTFail("float16 bits \(b): Float16 \(native), decoder \(s)"); break }
                }
            }
        }
    }
}
