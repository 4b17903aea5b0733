import Foundation
import SofieDriver
import XCTest

/// The runtime's vectorized float exp, sigmoid, tanh and erf (used by recurrent gates and fused
/// activations) against the C library in double precision, in units in the last place, over
/// [-110, 110] in steps that cross every binade, plus infinities and NaN; and the array forms
/// (SIMD body and padded tail) give each element the same result wherever it sits,
/// at plain -O2 (SSE2 vectors) and at -O3 -march=native.
final class RuntimeMathTests: XCTestCase {
    func testVectorizedElementaryFunctionsAgainstLibm() throws {
        try TestSupport.requirePython()
        let work = try TestSupport.tempDir("runtime-math")
        var options = Compiler.Options(name: "m")
        options.weights = .embed
        try Compiler.compile(path: TestSupport.repoRoot + "/Examples/models/mlp.onnx", directory: work, options: options)
        try #"""
        #include "m.hxx"
        #include <cstdio>
        namespace sofie_rt = m::sofie_rt;
        // ulp of the float nearest to `ref`, and the error of `got` in those units.
        static double ulps(double ref, float got) {
            if (std::isnan(ref)) return std::isnan(got) ? 0 : 1e9;
            if (std::isinf(ref)) return got == ref ? 0 : 1e9;
            // Below the smallest normal float the unit is that number itself (an absolute bound).
            const float r = static_cast<float>(std::fabs(ref));
            const double u = r < std::numeric_limits<float>::min() ? double(std::numeric_limits<float>::min())
                                                                    : double(std::nextafter(r, INFINITY)) - double(r);
            return std::fabs(double(got) - ref) / u;
        }
        int main() {
            double worst[4] = {0, 0, 0, 0};
            std::vector<float> xs;
            for (double x = -110; x <= 110; x += 0.000731) xs.push_back(float(x));
            for (float x : {0.0f, -0.0f, 1e-30f, -1e-30f, 1e-7f, 88.7f, 88.72f, 88.8f, -87.3f, -103.9f, -104.5f, 7.9f, -7.9f, 9.0f})
                xs.push_back(x);
            for (float x : xs) {
                const double d = x;
                const double e = std::exp(d), s = 1.0 / (1.0 + std::exp(-d)), t = std::tanh(d);
                worst[0] = std::max(worst[0], ulps(e, sofie_rt::fast_exp(x)));
                worst[1] = std::max(worst[1], ulps(s, sofie_rt::fast_sigmoid(x)));
                worst[2] = std::max(worst[2], ulps(t, sofie_rt::fast_tanh(x)));
                worst[3] = std::max(worst[3], ulps(std::erf(d), sofie_rt::fast_erf(x)));
            }
            const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
            int special = 0;
            special += sofie_rt::fast_exp(inf) == inf && sofie_rt::fast_exp(-inf) == 0 && std::isnan(sofie_rt::fast_exp(nan));
            // sigmoid(-inf): 0 to within the smallest normal float, like every result below it.
            special += sofie_rt::fast_sigmoid(inf) == 1 && sofie_rt::fast_sigmoid(-inf) >= 0
                       && sofie_rt::fast_sigmoid(-inf) < std::numeric_limits<float>::min() && std::isnan(sofie_rt::fast_sigmoid(nan));
            special += sofie_rt::fast_tanh(inf) == 1 && sofie_rt::fast_tanh(-inf) == -1 && std::isnan(sofie_rt::fast_tanh(nan));
            special += sofie_rt::fast_erf(inf) == 1 && sofie_rt::fast_erf(-inf) == -1 && std::isnan(sofie_rt::fast_erf(nan));
            // Arrays of every length up to 70 at every offset: each element as alone in an array
            // of one (the SIMD body and the padded tail agree; no result depends on its position).
            int mismatches = 0;
            auto alone = [](auto fn, float x) { float v[1] = {x}; fn(v, 1); return v[0]; };
            auto ex = [](float* v, int64_t n) { sofie_rt::apply_array<sofie_rt::Fn::Exp>(v, n); };
            auto sg = [](float* v, int64_t n) { sofie_rt::apply_array<sofie_rt::Fn::Sigmoid>(v, n); };
            auto th = [](float* v, int64_t n) { sofie_rt::apply_array<sofie_rt::Fn::Tanh>(v, n); };
            auto er = [](float* v, int64_t n) { sofie_rt::apply_array<sofie_rt::Fn::Erf>(v, n); };
            for (int n = 0; n <= 70; ++n)
                for (int off = 0; off < 3; ++off) {
                    std::vector<float> a(xs.begin() + 1000 * n + off, xs.begin() + 1000 * n + off + n), b = a, c = a, f = a;
                    ex(a.data(), n);
                    sg(b.data(), n);
                    th(c.data(), n);
                    er(f.data(), n);
                    for (int j = 0; j < n; ++j) {
                        const float x = xs[1000 * n + off + j];
                        mismatches += a[j] != alone(ex, x);
                        mismatches += b[j] != alone(sg, x);
                        mismatches += c[j] != alone(th, x);
                        mismatches += f[j] != alone(er, x);
                        // and within the same bounds as the scalar functions
                        worst[0] = std::max(worst[0], ulps(std::exp(double(x)), a[j]));
                        worst[1] = std::max(worst[1], ulps(1.0 / (1.0 + std::exp(-double(x))), b[j]));
                        worst[2] = std::max(worst[2], ulps(std::tanh(double(x)), c[j]));
                        worst[3] = std::max(worst[3], ulps(std::erf(double(x)), f[j]));
                    }
                }
            std::printf("%zu %.3f %.3f %.3f %.3f %d %d\n", xs.size(), worst[0], worst[1], worst[2], worst[3], special, mismatches);
        }
        """#.write(toFile: work + "/main.cpp", atomically: true, encoding: .utf8)
        // Clang too when it is on the PATH (Swift's toolchain brings one): it folds constants by
        // its own rules, and found a float-to-int conversion of NaN once.
        var builds = [(["-O2"], "plain", CppHarness.compiler), (["-O3", "-march=native"], "native", CppHarness.compiler)]
        if let clang = TestSupport.which("clang++") {
            builds += [(["-O2"], "clang-plain", clang), (["-O3", "-march=native"], "clang-native", clang)]
        }
        // All builds at once, on both cores.
        let errors = CppHarness.buildVariants(builds.map { (work + "/main.cpp", work + "/" + $0.1, $0.2, CppHarness.warningFlags + $0.0 + ["-I", work]) })
        XCTAssertEqual(errors.count, 0, errors.values.joined(separator: "\n").prefix(3000).description)
        for (_, exe, _) in builds where errors[work + "/" + exe] == nil {
            let fields = try TestSupport.run(work + "/" + exe, []).output.split(separator: " ").map { String($0).trimmingCharacters(in: .whitespacesAndNewlines) }
            XCTAssertEqual(fields.count, 7, "\(fields)")
            guard fields.count == 7, let n = Int(fields[0]), let e = Double(fields[1]), let s = Double(fields[2]), let t = Double(fields[3]),
                  let r = Double(fields[4]) else { continue }
            XCTAssertGreaterThan(n, 300_000, exe)
            XCTAssertLessThanOrEqual(e, 1.0, "exp, worst ulp (\(exe))")
            XCTAssertLessThanOrEqual(s, 3.0, "sigmoid, worst ulp (\(exe))")
            XCTAssertLessThanOrEqual(t, 6.0, "tanh, worst ulp (\(exe))")
            XCTAssertLessThanOrEqual(r, 8.0, "erf, worst ulp (\(exe))")
            XCTAssertEqual(fields[5], "4", "infinities and NaN (\(exe))")
            XCTAssertEqual(fields[6], "0", "array forms differ from the scalar functions (\(exe))")
        }
    }
}
