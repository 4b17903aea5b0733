// Tests of swift-sofie's C++ runtime kernels (Sources/Backends/CPP/runtime) against naive loops.
//
//   g++ -std=c++17 -O2 -I Sources/Backends/CPP/runtime Tests/cpp/runtime_kernels_test.cpp -o t && ./t
//
// RuntimeKernelTests (swift test) builds it three ways — plain -O2 (SSE2 vectors, 6x8 tiles),
// -O3 -march=native (AVX2 or AVX-512 tiles) and AddressSanitizer + UBSan — against the runtime
// text sofie embeds, and compares the constants printed first with the Swift emitter's.
//
// Every kernel result is compared with a double-precision naive loop. The bound for a sum of K
// products is the classic one for floating-point summation in any order, with or without FMA:
// |computed - exact| <= (K + 2) * 2^-24 * sum |terms| (bias and residual counted as terms);
// an activation applied afterwards is Lipschitz (at most 1.5 for those used here) plus its own
// rounding. Buffers carry guard zones around them (unless under AddressSanitizer, which checks
// exact-size allocations instead), so a write outside the output fails the test.
#include "sofie_runtime.h"

#include <cinttypes>
#include <cstdio>
#include <functional>
#include <random>
#include <vector>

namespace rt = sofie_rt;

static int g_failures = 0;
static long g_checks = 0;
static const char* g_case = "";

#define CHECK(cond, ...)                                                     \
    do {                                                                     \
        ++g_checks;                                                          \
        if (!(cond)) {                                                       \
            if (++g_failures <= 30) {                                        \
                std::printf("FAIL [%s] %s:%d: ", g_case, __FILE__, __LINE__); \
                std::printf(__VA_ARGS__);                                    \
                std::printf("\n");                                           \
            }                                                                \
        }                                                                    \
    } while (0)

#if defined(__SANITIZE_ADDRESS__)
constexpr size_t kGuard = 0;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr size_t kGuard = 0;
#else
constexpr size_t kGuard = 64;
#endif
#else
constexpr size_t kGuard = 64;
#endif
constexpr float kSentinel = -12345.5f;

// A float buffer with guard zones before and after (checked by intact()).
struct Buf {
    std::vector<float> v;
    size_t n;
    explicit Buf(size_t n_, float fill = 0.0f) : v(n_ + 2 * kGuard, kSentinel), n(n_) {
        // (The bound tells GCC's -Wstringop-overflow that n is no negative count cast to size_t.)
        if (n > (size_t(1) << 40)) std::abort();
        std::fill(v.begin() + kGuard, v.begin() + kGuard + n, fill);
    }
    float* p() { return v.data() + kGuard; }
    const float* p() const { return v.data() + kGuard; }
    float& operator[](size_t i) { return v[kGuard + i]; }
    float operator[](size_t i) const { return v[kGuard + i]; }
    bool intact() const {
        for (size_t i = 0; i < kGuard; ++i)
            if (v[i] != kSentinel || v[kGuard + n + i] != kSentinel) return false;
        return true;
    }
};

static std::mt19937 g_rng(20261205);
static void randomize(Buf& b, float lo = -1.0f, float hi = 1.0f) {
    std::uniform_real_distribution<float> d(lo, hi);
    for (size_t i = 0; i < b.n; ++i) b[i] = d(g_rng);
}
// Scratch space: filled with NaN so that a kernel reading workspace it did not write shows.
static void poison(Buf& b) {
    for (size_t i = 0; i < b.n; ++i) b[i] = std::numeric_limits<float>::quiet_NaN();
}

constexpr double kEps = 1.0 / (1 << 24);

// Double-precision activation (the ONNX definitions).
static double act_ref(rt::Act act, double x, double alpha, double beta) {
    switch (act) {
    case rt::Act::None: return x;
    case rt::Act::Relu: return x < 0 ? 0 : x;
    case rt::Act::LeakyRelu: return x < 0 ? alpha * x : x;
    case rt::Act::Sigmoid: return 1 / (1 + std::exp(-x));
    case rt::Act::Tanh: return std::tanh(x);
    case rt::Act::Clip: return std::min(beta, std::max(alpha, x));
    case rt::Act::HardSigmoid: return std::max(0.0, std::min(1.0, alpha * x + beta));
    case rt::Act::HardSwish: return x * std::max(0.0, std::min(1.0, x / 6 + 0.5));
    case rt::Act::Swish: return x / (1 + std::exp(-x));
    case rt::Act::Gelu: return 0.5 * x * (1 + std::erf(x / std::sqrt(2.0)));
    }
    return x;
}

// Compares a kernel's output with the exact sums: ref[i] (before the activation), mag[i] = the
// sum of the absolute values of its terms, K = the number of terms.
static void compare(const char* what, const Buf& got, const std::vector<double>& ref, const std::vector<double>& mag,
                    double K, rt::Act act = rt::Act::None, double alpha = 0, double beta = 0) {
    CHECK(got.intact(), "%s: wrote outside its output", what);
    int shown = 0;
    for (size_t i = 0; i < ref.size(); ++i) {
        const double want = act_ref(act, ref[i], alpha, beta);
        const double tol = 1.5 * (K + 2) * kEps * mag[i] + 8 * kEps * std::fabs(want) + 1e-30;
        const bool ok = std::fabs(got[i] - want) <= tol;
        CHECK(ok || shown > 3, "%s: element %zu = %.9g, expected %.9g (tolerance %.3g)", what, i, got[i], want, tol);
        if (!ok) ++shown;
    }
}

// ---------------------------------------------------------------------------------------------
static void test_integer_helpers() {
    g_case = "integer helpers";
    CHECK(rt::mod_floor(-7, 3) == 2, "mod_floor(-7, 3)");
    CHECK(rt::mod_floor(7, -3) == -2, "mod_floor(7, -3)");
    CHECK(rt::mod_floor(6, 3) == 0, "mod_floor(6, 3)");
    CHECK(rt::mod_floor(5, 0) == 0, "mod_floor(5, 0) is 0");
    CHECK(rt::mod_floor<uint8_t>(250, 7) == 250 % 7, "mod_floor unsigned");
    CHECK(rt::shift_left<int8_t>(int8_t(1), 9) == 0, "shift_left out of range");
    CHECK(rt::shift_left<uint8_t>(uint8_t(0x81), 1) == 0x02, "shift_left drops the high bit");
    CHECK(rt::shift_right<int32_t>(-8, 40) == -1, "shift_right of a negative value out of range");
    CHECK(rt::shift_right<int32_t>(-8, 1) == -4, "shift_right arithmetic");
    CHECK(rt::shift_right<int32_t>(8, -1) == 0, "negative shift amount");
    CHECK(rt::mod_floor_fp(-7.5f, 2.0f) == 0.5f, "mod_floor_fp(-7.5, 2)");
    CHECK(rt::mod_floor_fp(7.5f, -2.0f) == -0.5f, "mod_floor_fp(7.5, -2)");
}

static void test_math() {
    // Accuracy in ulps over [-110, 110] is RuntimeMathTests' (through an emitted header); here the
    // special values and the array forms.
    g_case = "elementary functions";
    CHECK(rt::fast_exp(89.0f) == INFINITY, "exp overflows to inf");
    CHECK(rt::fast_exp(-INFINITY) == 0.0f, "exp(-inf) = 0");
    CHECK(std::isnan(rt::fast_exp(NAN)) && std::isnan(rt::fast_tanh(NAN)) && std::isnan(rt::fast_sigmoid(NAN)), "NaN propagates");
    CHECK(rt::fast_tanh(INFINITY) == 1.0f && rt::fast_tanh(-INFINITY) == -1.0f, "tanh(+-inf)");
    // sigmoid(-inf) is 1 / (1 + e^88): below the smallest normal float, as documented.
    CHECK(rt::fast_sigmoid(INFINITY) == 1.0f && rt::fast_sigmoid(-INFINITY) >= 0.0f &&
          rt::fast_sigmoid(-INFINITY) < std::numeric_limits<float>::min(), "sigmoid(+-inf)");
    CHECK(rt::fast_erf(INFINITY) == 1.0f && rt::fast_erf(-INFINITY) == -1.0f && rt::fast_erf(0.0f) == 0.0f, "erf(+-inf), erf(0)");

    // The array forms (SIMD) agree with the scalar forms (each is within its documented ulps of the
    // exact value, which RuntimeMathTests measures; the compiler may contract the two differently
    // into FMAs, e.g. tanh near -8 at -march=native: 4 ulps apart), and an element's result does not depend on its position
    // in the array or the array's length (the tail goes through the same vector code): the
    // property the emitted code relies on for results that do not change with batch size.
    g_case = "apply_array";
    Buf in(203), out(203);
    randomize(in, -12, 12);
    in[5] = NAN; in[17] = INFINITY; in[40] = -INFINITY; in[41] = 0.0f; in[42] = -0.0f;
    struct A { const char* name; void (*array)(const float*, float*, int64_t); float (*scalar)(float); };
    const A forms[] = {
        {"exp", [](const float* x, float* y, int64_t n) { rt::apply_array<rt::Fn::Exp>(x, y, n); }, [](float x) { return rt::fast_exp(x); }},
        {"tanh", [](const float* x, float* y, int64_t n) { rt::apply_array<rt::Fn::Tanh>(x, y, n); }, [](float x) { return rt::fast_tanh(x); }},
        {"sigmoid", [](const float* x, float* y, int64_t n) { rt::apply_array<rt::Fn::Sigmoid>(x, y, n); }, [](float x) { return rt::fast_sigmoid(x); }},
        {"erf", [](const float* x, float* y, int64_t n) { rt::apply_array<rt::Fn::Erf>(x, y, n); }, [](float x) { return rt::fast_erf(x); }},
        {"gelu", [](const float* x, float* y, int64_t n) { rt::apply_array<rt::Fn::Gelu>(x, y, n); }, [](float x) { return rt::fast_gelu(x); }},
        {"swish", [](const float* x, float* y, int64_t n) { rt::apply_array<rt::Fn::Swish>(x, y, n); }, [](float x) { return x * rt::fast_sigmoid(x); }},
    };
    auto same_bits = [](float a, float b) { return (std::isnan(a) && std::isnan(b)) || std::memcmp(&a, &b, 4) == 0; };
    for (const A& f : forms) {
        f.array(in.p(), out.p(), 203);
        CHECK(out.intact(), "%s array form wrote outside", f.name);
        for (size_t i = 0; i < in.n; ++i) {
            const float s = f.scalar(in[i]);
            const bool ok = same_bits(s, out[i]) || std::fabs(out[i] - s) <= 16 * kEps * std::fabs(s) + 1e-37;
            CHECK(ok, "%s array form at x = %.9g: %.9g, scalar %.9g", f.name, in[i], out[i], s);
        }
        for (int64_t start : {0, 1, 3, 7}) {
            for (int64_t n = 0; n + start <= 60; n += 1) {
                Buf o(static_cast<size_t>(n));
                f.array(in.p() + start, o.p(), n);
                CHECK(o.intact(), "%s array form of length %" PRId64 " wrote outside", f.name, n);
                for (int64_t i = 0; i < n; ++i)
                    CHECK(same_bits(o[i], out[start + i]), "%s: element %" PRId64 " of a length-%" PRId64 " array differs from the same input at %" PRId64,
                          f.name, i, n, start + i);
            }
        }
    }
}

static const rt::Act kActs[] = {rt::Act::None, rt::Act::Relu, rt::Act::LeakyRelu, rt::Act::Sigmoid, rt::Act::Tanh,
                                rt::Act::Clip, rt::Act::HardSigmoid, rt::Act::HardSwish, rt::Act::Swish, rt::Act::Gelu};
static double act_alpha(rt::Act a) { return a == rt::Act::Clip ? -0.5 : a == rt::Act::HardSigmoid ? 0.2 : 0.1; }
static double act_beta(rt::Act a) { return a == rt::Act::Clip ? 6.0 : a == rt::Act::HardSigmoid ? 0.5 : 0.0; }

static void test_activations() {
    g_case = "activate";
    Buf x(301), y(301);
    randomize(x, -9, 9);
    for (rt::Act act : kActs) {
        const float a = static_cast<float>(act_alpha(act)), b = static_cast<float>(act_beta(act));
        rt::activate(x.p(), y.p(), 301, act, a, b);
        CHECK(y.intact(), "activate %d wrote outside", static_cast<int>(act));
        for (size_t i = 0; i < 301; ++i) {
            const double want = act_ref(act, x[i], a, b);
            // Within a few ulps of the result, plus the rounding of the terms where the formula
            // cancels (alpha * x + beta near 0, 1 + erf(x) for very negative x in Gelu).
            const double tol = 12 * kEps * std::fabs(want) + 4 * kEps * (std::fabs(x[i]) + std::fabs(b)) + 1e-37;
            CHECK(std::fabs(y[i] - want) <= tol, "act %d at x = %.9g: %.9g, expected %.9g",
                  static_cast<int>(act), x[i], y[i], want);
        }
#if defined(__GNUC__) || defined(__clang__)
        // The register form the GEMM's tile store uses computes what activate() computes.
        constexpr int64_t L = rt::Vec<float>::kLanes;
        for (size_t i = 0; i + L <= 301; i += L) {
            rt::VecF v;
            for (int64_t l = 0; l < L; ++l) v[l] = x[i + l];
            const rt::VecF r = rt::act_vec(v, act, a, b);
            for (int64_t l = 0; l < L; ++l)
                CHECK(r[l] == y[i + l] || (std::isnan(r[l]) && std::isnan(y[i + l])), "act_vec %d at x = %.9g: %.9g, activate %.9g",
                      static_cast<int>(act), x[i + l], r[l], y[i + l]);
        }
#endif
    }
}

// ---------------------------------------------------------------------------------------------
// GEMM: C = [C +] op(A) * op(B) + row_bias + col_bias + residual, then the activation.
struct GemmCase { int64_t M, N, K; bool transA, transB, accumulate, rowBias, colBias, residual; rt::Act act; };

static void naive_gemm(const GemmCase& c, const Buf& A, int64_t rsa, int64_t csa, const Buf& B, int64_t rsb, int64_t csb,
                       const Buf& C0, const Buf& rb, const Buf& cb, const Buf& res, std::vector<double>& ref, std::vector<double>& mag) {
    ref.assign(c.M * c.N, 0);
    mag.assign(c.M * c.N, 0);
    for (int64_t i = 0; i < c.M; ++i)
        for (int64_t j = 0; j < c.N; ++j) {
            double s = 0, m = 0;
            for (int64_t k = 0; k < c.K; ++k) {
                const double t = static_cast<double>(A[i * rsa + k * csa]) * B[k * rsb + j * csb];
                s += t; m += std::fabs(t);
            }
            auto add = [&](double v) { s += v; m += std::fabs(v); };
            if (c.accumulate) add(C0[i * c.N + j]);
            if (c.rowBias) add(rb[i]);
            if (c.colBias) add(cb[j]);
            if (c.residual) add(res[i * c.N + j]);
            ref[i * c.N + j] = s; mag[i * c.N + j] = m;
        }
}

static void test_gemm() {
    const GemmCase cases[] = {
        {1, 1, 1, false, false, false, false, false, false, rt::Act::None},
        {1, 37, 19, false, false, false, true, false, false, rt::Act::Relu},
        {2, 50, 300, false, false, true, false, true, false, rt::Act::None},
        {2, 45, 70, false, true, false, false, false, false, rt::Act::None},       // gemm_dot
        {3, 17, 5, true, false, false, true, true, true, rt::Act::Clip},
        {7, 33, 260, false, true, true, false, false, false, rt::Act::LeakyRelu},
        {13, 70, 513, true, true, false, true, false, true, rt::Act::HardSwish},
        {6, 16, 256, false, false, false, false, false, false, rt::Act::Sigmoid},
        {50, 64, 64, false, false, false, true, false, false, rt::Act::Swish},
        {64, 1100, 40, false, false, true, false, true, true, rt::Act::Gelu},       // more than NC columns
        {9, 31, 0, false, false, true, true, true, false, rt::Act::Relu},           // K = 0: bias only
        {33, 9, 600, true, false, false, true, false, false, rt::Act::Tanh},
        {16, 48, 17, false, false, false, false, false, true, rt::Act::HardSigmoid},
        // Over 256 columns (ending inside a sliver), three K panels, rows not a multiple of MR.
        {20, 300, 520, false, false, true, true, true, true, rt::Act::Relu},
    };
    for (bool packed : {false, true}) {
        for (const GemmCase& c : cases) {
            g_case = packed ? "gemm_packed" : "gemm";
            if (packed && c.transB) continue;  // packed weights are packed from any layout; one suffices
            Buf A(std::max<int64_t>(c.M * c.K, 1)), B(std::max<int64_t>(c.K * c.N, 1)), C(c.M * c.N), C0(c.M * c.N);
            Buf rb(c.M), cb(c.N), res(c.M * c.N);
            randomize(A); randomize(B); randomize(C0); randomize(rb); randomize(cb); randomize(res);
            for (size_t i = 0; i < C.n; ++i) C[i] = c.accumulate ? C0[i] : NAN;  // not accumulating: C is not read
            const int64_t rsa = c.transA ? 1 : c.K, csa = c.transA ? c.M : 1;
            const int64_t rsb = c.transB ? 1 : c.N, csb = c.transB ? c.K : 1;
            std::vector<double> ref, mag;
            naive_gemm(c, A, rsa, csa, B, rsb, csb, C0, rb, cb, res, ref, mag);
            const int64_t nr = rt::kMaxNR;
            Buf work(std::max<int64_t>(std::min(c.K, rt::KC) * ((std::min(c.N, rt::NC) + nr - 1) / nr * nr), 1));
            poison(work);
            rt::GemmArgs<float> p;
            p.M = c.M; p.N = c.N; p.K = c.K; p.A = A.p(); p.rsa = rsa; p.csa = csa; p.C = C.p(); p.ldc = c.N;
            p.accumulate = c.accumulate; p.row_bias = c.rowBias ? rb.p() : nullptr; p.col_bias = c.colBias ? cb.p() : nullptr;
            p.epilogue = {c.act, static_cast<float>(act_alpha(c.act)), static_cast<float>(act_beta(c.act)), c.residual ? res.p() : nullptr};
            p.work = work.p();
            Buf P(std::max<int64_t>((c.N + rt::kSliver - 1) / rt::kSliver * rt::kSliver * c.K, 1));
            if (packed) {
                // The emitter's layout (CppEmitter.packedWeight): element (k, j) at
                // P[(j / kSliver * K + k) * kSliver + j % kSliver], zero beyond N.
                for (int64_t j0 = 0; j0 < (c.N + rt::kSliver - 1) / rt::kSliver * rt::kSliver; ++j0)
                    for (int64_t k = 0; k < c.K; ++k)
                        P[(j0 / rt::kSliver * c.K + k) * rt::kSliver + j0 % rt::kSliver] = j0 < c.N ? B[k * rsb + j0 * csb] : 0.0f;
                p.B = P.p();
                rt::gemm_packed(p);
            } else {
                p.B = B.p(); p.rsb = rsb; p.csb = csb;
                rt::gemm(p);
            }
            char what[160];
            std::snprintf(what, sizeof what, "%s M=%" PRId64 " N=%" PRId64 " K=%" PRId64 " act=%d", g_case, c.M, c.N, c.K, static_cast<int>(c.act));
            compare(what, C, ref, mag, static_cast<double>(c.K + 3), c.act, act_alpha(c.act), act_beta(c.act));
            CHECK(work.intact(), "%s: wrote outside its workspace", what);
        }
    }

    g_case = "pack_panels / gemv_panels";
    for (int64_t N : {1, 127, 128, 129, 300}) {
        const int64_t K = 57;
        Buf B(K * N), a(K), c(N), c0(N), P((N + rt::kPanel - 1) / rt::kPanel * K * rt::kPanel);
        randomize(B); randomize(a); randomize(c0);
        rt::pack_panels(K, N, B.p(), N, 1, P.p());
        CHECK(P.intact(), "pack_panels N=%" PRId64 " wrote outside", N);
        for (bool acc : {false, true}) {
            for (int64_t j = 0; j < N; ++j) c[j] = acc ? c0[j] : NAN;
            rt::gemv_panels(K, N, a.p(), P.p(), c.p(), acc);
            std::vector<double> ref(N), mag(N);
            for (int64_t j = 0; j < N; ++j) {
                double s = acc ? c0[j] : 0, m = std::fabs(s);
                for (int64_t k = 0; k < K; ++k) { const double t = static_cast<double>(a[k]) * B[k * N + j]; s += t; m += std::fabs(t); }
                ref[j] = s; mag[j] = m;
            }
            compare("gemv_panels", c, ref, mag, K + 1);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Convolution of one image (C channels, groups of G) as ONNX defines it, in double.
struct ConvCase {
    int64_t C, M, G;
    int64_t in[3], k[3], s[3], d[3], p[3];  // D, H, W (1 for missing leading dimensions)
    bool bias, residual;
    rt::Act act;
};

static rt::Window window_of(const ConvCase& c) {
    rt::Window w{};
    for (int i = 0; i < 3; ++i) {
        w.in[i] = c.in[i]; w.k[i] = c.k[i]; w.s[i] = c.s[i]; w.d[i] = c.d[i]; w.p[i] = c.p[i];
        w.out[i] = (c.in[i] + 2 * c.p[i] - c.d[i] * (c.k[i] - 1) - 1) / c.s[i] + 1;
    }
    return w;
}

static void naive_conv(const ConvCase& c, const rt::Window& w, const Buf& x, const Buf& wt, const Buf& bias, const Buf& res,
                       std::vector<double>& ref, std::vector<double>& mag) {
    const int64_t outN = w.out[0] * w.out[1] * w.out[2], inN = w.in[0] * w.in[1] * w.in[2];
    const int64_t Cg = c.C / c.G, Mg = c.M / c.G, kvol = c.k[0] * c.k[1] * c.k[2];
    ref.assign(c.M * outN, 0);
    mag.assign(c.M * outN, 0);
    for (int64_t m = 0; m < c.M; ++m)
        for (int64_t o = 0; o < outN; ++o) {
            const int64_t od = o / (w.out[1] * w.out[2]), oh = o / w.out[2] % w.out[1], ow = o % w.out[2];
            double s = 0, mg = 0;
            for (int64_t cc = 0; cc < Cg; ++cc)
                for (int64_t kd = 0; kd < c.k[0]; ++kd)
                    for (int64_t kh = 0; kh < c.k[1]; ++kh)
                        for (int64_t kw = 0; kw < c.k[2]; ++kw) {
                            const int64_t id = od * c.s[0] - c.p[0] + kd * c.d[0], ih = oh * c.s[1] - c.p[1] + kh * c.d[1],
                                          iw = ow * c.s[2] - c.p[2] + kw * c.d[2];
                            if (id < 0 || id >= w.in[0] || ih < 0 || ih >= w.in[1] || iw < 0 || iw >= w.in[2]) continue;
                            const int64_t ci = m / Mg * Cg + cc;
                            const double t = static_cast<double>(wt[(m * Cg + cc) * kvol + (kd * c.k[1] + kh) * c.k[2] + kw]) *
                                             x[ci * inN + (id * w.in[1] + ih) * w.in[2] + iw];
                            s += t; mg += std::fabs(t);
                        }
            if (c.bias) { s += bias[m]; mg += std::fabs(bias[m]); }
            if (c.residual) { s += res[m * outN + o]; mg += std::fabs(res[m * outN + o]); }
            ref[m * outN + o] = s; mag[m * outN + o] = mg;
        }
}

enum class ConvKernel { GemmConv, Rows41, Rows42, Rows62, Rows81, Pixels, Depthwise, DepthwisePlane };
static const char* kernel_name(ConvKernel k) {
    switch (k) {
    case ConvKernel::GemmConv: return "gemm_conv";
    case ConvKernel::Rows41: return "conv_rows<4,1>";
    case ConvKernel::Rows42: return "conv_rows<4,2>";
    case ConvKernel::Rows62: return "conv_rows<6,2>";
    case ConvKernel::Rows81: return "conv_rows<8,1>";
    case ConvKernel::Pixels: return "conv_pixels";
    case ConvKernel::Depthwise: return "depthwise_conv";
    case ConvKernel::DepthwisePlane: return "depthwise_plane";
    }
    return "?";
}

template <int64_t MB, int64_t U>
static void run_conv_rows(const ConvCase& c, const rt::Window& w, const Buf& x, const Buf& wt, const float* bias,
                          Buf& y, const rt::Epilogue<float>& ep) {
    const int64_t kvol = c.k[1] * c.k[2], Mb = (c.M + MB - 1) / MB * MB;
    Buf wp(Mb * c.C * kvol);
    // The emitter's blocked layout: wp[((m / MB * C + c) * KH + kh) * KW + kw) * MB + m % MB], zero for m >= M.
    for (int64_t m = 0; m < Mb; ++m)
        for (int64_t ch = 0; ch < c.C; ++ch)
            for (int64_t t = 0; t < kvol; ++t)
                wp[((m / MB * c.C + ch) * kvol + t) * MB + m % MB] = m < c.M ? wt[(m * c.C + ch) * kvol + t] : 0.0f;
    Buf work(rt::conv_rows_elements<float, U>(w, c.C));
    poison(work);
    rt::conv_rows<float, MB, U>(c.M, c.C, x.p(), wp.p(), bias, w, y.p(), ep, work.p());
    CHECK(work.intact(), "conv_rows wrote outside its workspace");
}

static void test_conv() {
    const ConvCase cases[] = {
        // C, M, G, in, k, s, d, p, bias, residual, act
        {5, 7, 1, {1, 9, 9}, {1, 3, 3}, {1, 1, 1}, {1, 1, 1}, {0, 1, 1}, true, false, rt::Act::Relu},
        {3, 8, 1, {1, 17, 23}, {1, 3, 3}, {1, 2, 2}, {1, 1, 1}, {0, 1, 1}, false, true, rt::Act::None},
        {4, 6, 1, {1, 12, 40}, {1, 5, 5}, {1, 1, 1}, {1, 1, 1}, {0, 2, 2}, true, true, rt::Act::HardSwish},
        {6, 5, 1, {1, 11, 13}, {1, 3, 3}, {1, 1, 1}, {1, 2, 2}, {0, 2, 2}, true, false, rt::Act::Clip},
        {2, 9, 1, {1, 1, 50}, {1, 1, 7}, {1, 1, 3}, {1, 1, 1}, {0, 0, 3}, true, false, rt::Act::LeakyRelu},  // 1-D
        {3, 4, 1, {1, 8, 6}, {1, 7, 7}, {1, 2, 2}, {1, 1, 1}, {0, 3, 3}, false, false, rt::Act::None},
        {300, 20, 1, {1, 4, 4}, {1, 3, 3}, {1, 1, 1}, {1, 1, 1}, {0, 1, 1}, true, false, rt::Act::Relu},  // K > KC, few pixels
        {2, 3, 1, {5, 6, 7}, {2, 3, 3}, {2, 1, 2}, {1, 1, 1}, {1, 1, 0}, true, false, rt::Act::Sigmoid},  // 3-D
    };
    const ConvKernel kernels[] = {ConvKernel::GemmConv, ConvKernel::Rows41, ConvKernel::Rows42, ConvKernel::Rows62,
                                  ConvKernel::Rows81, ConvKernel::Pixels};
    for (const ConvCase& c : cases) {
        const rt::Window w = window_of(c);
        const int64_t outN = w.out[0] * w.out[1] * w.out[2], inN = w.in[0] * w.in[1] * w.in[2];
        const int64_t K = c.C * c.k[0] * c.k[1] * c.k[2];
        Buf x(c.C * inN), wt(c.M * K), bias(c.M), res(c.M * outN);
        randomize(x); randomize(wt); randomize(bias); randomize(res);
        std::vector<double> ref, mag;
        naive_conv(c, w, x, wt, bias, res, ref, mag);
        const float alpha = static_cast<float>(act_alpha(c.act)), beta = static_cast<float>(act_beta(c.act));
        const rt::Epilogue<float> ep{c.act, alpha, beta, c.residual ? res.p() : nullptr};
        for (ConvKernel kernel : kernels) {
            g_case = kernel_name(kernel);
            const bool rows = kernel != ConvKernel::GemmConv && kernel != ConvKernel::Pixels;
            if (rows && w.in[0] != 1) continue;  // conv_rows: 1-D and 2-D windows
            Buf y(c.M * outN, NAN);
            if (kernel == ConvKernel::GemmConv) {
                const int64_t nr = rt::kMaxNR;
                Buf work(std::min(K, rt::KC) * ((std::min(outN, rt::NC) + nr - 1) / nr * nr));
                poison(work);
                rt::GemmArgs<float> p;
                p.M = c.M; p.N = outN; p.K = K; p.A = wt.p(); p.rsa = K; p.B = x.p(); p.C = y.p(); p.ldc = outN;
                p.row_bias = c.bias ? bias.p() : nullptr; p.epilogue = ep; p.work = work.p();
                rt::gemm_conv(p, w);
                CHECK(work.intact(), "gemm_conv wrote outside its workspace");
            } else if (kernel == ConvKernel::Pixels) {
                // Weights transposed (K x M) in slivers, as gemm_packed reads them.
                const int64_t Ms = (c.M + rt::kSliver - 1) / rt::kSliver * rt::kSliver;
                Buf wp(Ms * K);
                for (int64_t m = 0; m < Ms; ++m)
                    for (int64_t k = 0; k < K; ++k)
                        wp[(m / rt::kSliver * K + k) * rt::kSliver + m % rt::kSliver] = m < c.M ? wt[m * K + k] : 0.0f;
                Buf work(rt::conv_pixels_elements<float>(w, c.C, c.M));
                poison(work);
                rt::conv_pixels<float>(c.M, c.C, x.p(), wp.p(), c.bias ? bias.p() : nullptr, w, y.p(), ep, work.p());
                CHECK(work.intact(), "conv_pixels wrote outside its workspace");
            } else {
                const float* b = c.bias ? bias.p() : nullptr;
                if (kernel == ConvKernel::Rows41) run_conv_rows<4, 1>(c, w, x, wt, b, y, ep);
                if (kernel == ConvKernel::Rows42) run_conv_rows<4, 2>(c, w, x, wt, b, y, ep);
                if (kernel == ConvKernel::Rows62) run_conv_rows<6, 2>(c, w, x, wt, b, y, ep);
                if (kernel == ConvKernel::Rows81) run_conv_rows<8, 1>(c, w, x, wt, b, y, ep);
            }
            char what[160];
            std::snprintf(what, sizeof what, "%s C=%" PRId64 " M=%" PRId64 " k=%" PRId64 "x%" PRId64 " s=%" PRId64, g_case, c.C, c.M,
                          c.k[1], c.k[2], c.s[2]);
            compare(what, y, ref, mag, K + 2, c.act, alpha, beta);
        }
    }

    // Depthwise: G = C groups of one input channel, M = C * mult outputs.
    const ConvCase dw[] = {
        {8, 8, 8, {1, 14, 14}, {1, 3, 3}, {1, 1, 1}, {1, 1, 1}, {0, 1, 1}, true, false, rt::Act::Clip},
        {5, 10, 5, {1, 15, 17}, {1, 3, 3}, {1, 2, 2}, {1, 1, 1}, {0, 1, 1}, true, false, rt::Act::Relu},  // multiplier 2
        {4, 4, 4, {1, 28, 28}, {1, 5, 5}, {1, 2, 2}, {1, 1, 1}, {0, 2, 2}, false, true, rt::Act::None},
        {3, 3, 3, {1, 20, 37}, {1, 3, 3}, {1, 1, 1}, {1, 2, 2}, {0, 2, 2}, true, false, rt::Act::HardSwish},
        {6, 6, 6, {1, 1, 70}, {1, 1, 5}, {1, 1, 1}, {1, 1, 1}, {0, 0, 2}, true, false, rt::Act::LeakyRelu},  // 1-D
        {2, 2, 2, {1, 9, 9}, {1, 7, 7}, {1, 1, 3}, {1, 1, 1}, {0, 3, 3}, true, true, rt::Act::Sigmoid},
    };
    for (const ConvCase& c : dw) {
        const rt::Window w = window_of(c);
        const int64_t outN = w.out[0] * w.out[1] * w.out[2], inN = w.in[0] * w.in[1] * w.in[2], kvol = c.k[1] * c.k[2];
        Buf x(c.C * inN), wt(c.M * kvol), bias(c.M), res(c.M * outN);
        randomize(x); randomize(wt); randomize(bias); randomize(res);
        std::vector<double> ref, mag;
        naive_conv(c, w, x, wt, bias, res, ref, mag);
        const float alpha = static_cast<float>(act_alpha(c.act)), beta = static_cast<float>(act_beta(c.act));
        const rt::Epilogue<float> ep{c.act, alpha, beta, c.residual ? res.p() : nullptr};
        for (bool plane : {false, true}) {
            g_case = plane ? "depthwise_plane" : "depthwise_conv";
            Buf y(c.M * outN, NAN);
            Buf work(plane ? rt::depthwise_plane_elements<float>(w) : rt::kDepthwiseWork);
            poison(work);
            if (plane) rt::depthwise_plane<float>(c.M, c.M / c.C, x.p(), wt.p(), c.bias ? bias.p() : nullptr, w, y.p(), ep, work.p());
            else rt::depthwise_conv<float>(c.M, c.M / c.C, x.p(), wt.p(), c.bias ? bias.p() : nullptr, w, y.p(), ep, work.p());
            CHECK(work.intact(), "%s wrote outside its workspace", g_case);
            char what[160];
            std::snprintf(what, sizeof what, "%s C=%" PRId64 " mult=%" PRId64 " k=%" PRId64 " s=%" PRId64 " d=%" PRId64, g_case, c.C,
                          c.M / c.C, c.k[2], c.s[2], c.d[2]);
            compare(what, y, ref, mag, kvol + 2, c.act, alpha, beta);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The blocked channel layout (blocked.h): convolutions and depthwise convolutions on blocked
// images against the naive NCHW convolution; the lanes past the real channels of the input are
// set to a nonzero value first, so a kernel that reads them for a real channel fails.
static void fill_pad_lanes(Buf& b, int64_t C, int64_t HW, float v) {
    const int64_t CB = (C + rt::kBlock - 1) / rt::kBlock;
    for (int64_t cb = 0; cb < CB; ++cb)
        for (int64_t p = 0; p < HW; ++p)
            for (int64_t l = C - cb * rt::kBlock; l < rt::kBlock; ++l)
                if (l >= 0) b[(cb * HW + p) * rt::kBlock + l] = v;
}

static void test_blocked() {
    const ConvCase cases[] = {
        // C, M, G, in, k, s, d, p, bias, residual, act
        {5, 7, 1, {1, 9, 9}, {1, 3, 3}, {1, 1, 1}, {1, 1, 1}, {0, 1, 1}, true, false, rt::Act::Relu},
        {40, 70, 1, {1, 13, 17}, {1, 3, 3}, {1, 1, 1}, {1, 1, 1}, {0, 1, 1}, true, true, rt::Act::HardSwish},
        {80, 36, 1, {1, 11, 10}, {1, 3, 3}, {1, 2, 2}, {1, 1, 1}, {0, 1, 1}, false, true, rt::Act::Clip},   // 2 passes
        {32, 48, 1, {1, 7, 9}, {1, 1, 1}, {1, 1, 1}, {1, 1, 1}, {0, 0, 0}, true, false, rt::Act::Sigmoid},  // pointwise
        {24, 32, 1, {1, 14, 14}, {1, 1, 1}, {1, 2, 2}, {1, 1, 1}, {0, 0, 0}, true, true, rt::Act::None},    // strided 1x1
        {40, 70, 1, {1, 7, 9}, {1, 1, 1}, {1, 2, 3}, {1, 1, 1}, {0, 0, 0}, true, true, rt::Act::Relu},     // strided 1x1, odd sizes
        {20, 16, 1, {1, 1, 31}, {1, 1, 1}, {1, 1, 2}, {1, 1, 1}, {0, 0, 0}, false, false, rt::Act::None},   // strided 1x1, 1-D
        {16, 20, 1, {1, 12, 19}, {1, 5, 5}, {1, 1, 2}, {1, 2, 2}, {0, 4, 3}, true, false, rt::Act::Swish},  // dilated
        {17, 16, 1, {1, 1, 40}, {1, 1, 7}, {1, 1, 3}, {1, 1, 1}, {0, 0, 3}, true, false, rt::Act::LeakyRelu},  // 1-D
        {3, 64, 1, {1, 8, 6}, {1, 7, 7}, {1, 2, 2}, {1, 1, 1}, {0, 3, 3}, false, false, rt::Act::Tanh},  // wider than the image
        {3, 32, 1, {1, 23, 21}, {1, 3, 3}, {1, 2, 2}, {1, 1, 1}, {0, 1, 1}, true, true, rt::Act::Clip},  // a stem
        // one-block stems: rows of 12-pixel tiles and their tails (6, 4, 2, 1)
        {3, 16, 1, {1, 5, 61}, {1, 3, 3}, {1, 2, 2}, {1, 1, 1}, {0, 1, 1}, true, true, rt::Act::HardSwish},  // 31 = 12 + 12 + 6 + 1
        {3, 8, 1, {1, 4, 45}, {1, 3, 3}, {1, 1, 1}, {1, 1, 1}, {0, 1, 1}, false, false, rt::Act::Relu},  // 45 = 3 x 12 + 6 + 2 + 1
        {2, 16, 1, {1, 3, 16}, {1, 3, 3}, {1, 1, 1}, {1, 1, 1}, {0, 1, 1}, true, false, rt::Act::None},  // 16 = 12 + 4
        {4, 20, 1, {1, 1, 30}, {1, 1, 5}, {1, 1, 1}, {1, 1, 2}, {0, 0, 4}, true, false, rt::Act::HardSwish},  // 1-D, dilated
        {1, 48, 1, {1, 9, 12}, {1, 5, 3}, {1, 1, 2}, {1, 1, 1}, {0, 2, 0}, false, false, rt::Act::Relu},  // one channel, 4 + 2 blocks
        {64, 64, 1, {1, 7, 7}, {1, 3, 3}, {1, 1, 1}, {1, 1, 1}, {0, 1, 1}, true, true, rt::Act::Relu},   // rows of 7: tiles of 4 + 3
        {48, 80, 1, {1, 7, 7}, {1, 1, 1}, {1, 1, 1}, {1, 1, 1}, {0, 0, 0}, true, true, rt::Act::Relu},   // 49 pixels as one row, 4 + 1 blocks
        {32, 64, 1, {1, 14, 13}, {1, 3, 3}, {1, 2, 2}, {1, 1, 1}, {0, 1, 1}, false, true, rt::Act::None},  // strided to rows of 7
        {16, 32, 1, {1, 5, 23}, {1, 3, 3}, {1, 1, 1}, {1, 1, 1}, {0, 0, 2}, true, false, rt::Act::None},  // asymmetric: pads on one side
        {48, 40, 1, {1, 15, 13}, {1, 3, 3}, {1, 1, 1}, {1, 1, 1}, {0, 1, 1}, false, true, rt::Act::Relu},  // odd rows and columns of tiles
        {96, 80, 1, {1, 28, 28}, {1, 3, 3}, {1, 1, 1}, {1, 1, 1}, {0, 0, 0}, true, false, rt::Act::HardSwish},  // several passes of tile rows
        // depthwise
        {40, 40, 40, {1, 14, 14}, {1, 3, 3}, {1, 1, 1}, {1, 1, 1}, {0, 1, 1}, true, false, rt::Act::Clip},
        {24, 24, 24, {1, 15, 17}, {1, 5, 5}, {1, 2, 2}, {1, 1, 1}, {0, 2, 2}, true, true, rt::Act::HardSwish},
        {16, 16, 16, {1, 20, 37}, {1, 3, 3}, {1, 1, 1}, {1, 2, 2}, {0, 2, 2}, false, false, rt::Act::Relu},
        {7, 7, 7, {1, 1, 70}, {1, 1, 5}, {1, 1, 2}, {1, 1, 1}, {0, 0, 2}, true, false, rt::Act::None},  // 1-D
        {33, 33, 33, {1, 4, 3}, {1, 7, 7}, {1, 1, 1}, {1, 1, 1}, {0, 3, 3}, true, true, rt::Act::Sigmoid},
        // row tiles of 8, 4, 2 and 1 (AVX2: 6, 4, 2, 1), edge tiles on both sides, pads on one side
        {32, 32, 32, {1, 6, 31}, {1, 3, 3}, {1, 1, 1}, {1, 1, 1}, {0, 1, 1}, true, true, rt::Act::HardSigmoid},
        {20, 20, 20, {1, 7, 31}, {1, 3, 3}, {1, 2, 2}, {1, 1, 1}, {0, 0, 1}, false, false, rt::Act::Relu},
        {16, 16, 16, {1, 3, 29}, {1, 5, 5}, {1, 1, 1}, {1, 1, 1}, {0, 2, 2}, true, false, rt::Act::Swish},
        // groups of whole blocks
        {64, 32, 2, {1, 9, 11}, {1, 3, 3}, {1, 2, 1}, {1, 1, 1}, {0, 1, 1}, true, true, rt::Act::Relu},
        {48, 48, 3, {1, 6, 6}, {1, 3, 3}, {1, 1, 1}, {1, 1, 1}, {0, 1, 1}, false, false, rt::Act::None},
        {32, 224, 2, {1, 5, 9}, {1, 1, 1}, {1, 1, 1}, {1, 1, 1}, {0, 0, 0}, true, false, rt::Act::Relu},  // 7 blocks per group: 4 + 2 + 1
        // groups one block wide (RegNet: one output block per group), strided and not
        {64, 64, 4, {1, 13, 29}, {1, 3, 3}, {1, 2, 2}, {1, 1, 1}, {0, 1, 1}, true, true, rt::Act::Relu},
        {32, 32, 2, {1, 5, 30}, {1, 3, 3}, {1, 1, 1}, {1, 1, 1}, {0, 1, 1}, false, false, rt::Act::HardSwish},
        // ... RegNet's last stage (25 groups at 7x7), 7 strided groups,
        // a strided pointwise one (gathered pixels), a 1-D one
        {400, 400, 25, {1, 7, 7}, {1, 3, 3}, {1, 1, 1}, {1, 1, 1}, {0, 1, 1}, true, true, rt::Act::Relu},
        {112, 112, 7, {1, 11, 14}, {1, 3, 3}, {1, 2, 2}, {1, 1, 1}, {0, 1, 1}, true, false, rt::Act::Sigmoid},
        {96, 96, 6, {1, 9, 10}, {1, 1, 1}, {1, 2, 2}, {1, 1, 1}, {0, 0, 0}, false, true, rt::Act::None},
        {48, 48, 3, {1, 1, 33}, {1, 1, 5}, {1, 1, 1}, {1, 1, 1}, {0, 0, 2}, true, false, rt::Act::LeakyRelu},
        // one output block under windows 3 wide (AVX-512: a column's value broadcast once for its
        // taps; rows of 14 and more in tiles of 14): a partial last input block at stride 1 and 2,
        // and a dilated window (tap by tap)
        {20, 16, 1, {1, 6, 19}, {1, 3, 3}, {1, 1, 1}, {1, 1, 1}, {0, 1, 1}, true, true, rt::Act::Relu},
        {37, 16, 1, {1, 7, 31}, {1, 3, 3}, {1, 2, 2}, {1, 1, 1}, {0, 1, 1}, false, false, rt::Act::None},
        {16, 16, 1, {1, 9, 12}, {1, 3, 3}, {1, 1, 1}, {1, 2, 2}, {0, 2, 2}, true, false, rt::Act::Relu},
        // rows of 7 in tiles of two rows (rows 1 + 2, 3 + 4, 5 + 6 here), a partial input block
        {20, 16, 1, {1, 8, 7}, {1, 3, 3}, {1, 1, 1}, {1, 1, 1}, {0, 1, 1}, true, true, rt::Act::Relu},
        // rows wide enough that conv_blocked runs the edge pixels rather than copy the input
        // padded: strided groups (edges on both sides) and 3 output blocks (2 + 1) at stride 1
        {32, 32, 2, {1, 4, 113}, {1, 3, 3}, {1, 2, 2}, {1, 1, 1}, {0, 1, 1}, true, true, rt::Act::Relu},
        {16, 48, 1, {1, 3, 115}, {1, 3, 3}, {1, 1, 1}, {1, 1, 1}, {0, 1, 1}, false, false, rt::Act::None},
    };
    for (const ConvCase& c : cases) {
        const bool depthwise = c.G > 1 && c.G == c.C;
        g_case = depthwise ? "depthwise_blocked" : c.G > 1 ? "conv_blocked_groups" : "conv_blocked";
        const rt::Window w = window_of(c);
        const int64_t outN = w.out[1] * w.out[2], inN = w.in[1] * w.in[2], kvol = c.k[1] * c.k[2];
        const int64_t CB = (c.C + 15) / 16, MB = (c.M + 15) / 16, Cg = c.C / c.G;
        Buf x(c.C * inN), wt(c.M * Cg * kvol), bias(c.M), res(c.M * outN);
        randomize(x); randomize(wt); randomize(bias); randomize(res);
        std::vector<double> ref, mag;
        naive_conv(c, w, x, wt, bias, res, ref, mag);
        Buf xb(CB * inN * 16, NAN), rb(MB * outN * 16, NAN), yb(MB * outN * 16, NAN), y(c.M * outN, NAN);
        rt::to_blocked(x.p(), c.C, inN, xb.p());
        // to_blocked zeroes the lanes past C; no kernel may read them for a real channel.
        for (int64_t p = 0; p < inN; ++p)
            for (int64_t l = c.C % 16; l > 0 && l < 16; ++l) CHECK(xb[((CB - 1) * inN + p) * 16 + l] == 0.0f, "pad lane %" PRId64 " not zero", l);
        fill_pad_lanes(xb, c.C, inN, 3.0f);
        rt::to_blocked(res.p(), c.M, outN, rb.p());
        Buf bb(MB * 16);
        for (int64_t m = 0; m < MB * 16; ++m) bb[m] = m < c.M ? bias[m] : 0.0f;
        const float alpha = static_cast<float>(act_alpha(c.act)), beta = static_cast<float>(act_beta(c.act));
        const rt::Epilogue<float> ep{c.act, alpha, beta, c.residual ? rb.p() : nullptr};
        if (depthwise) {
            Buf wb(CB * kvol * 16);
            for (int64_t ch = 0; ch < CB * 16; ++ch)
                for (int64_t t = 0; t < kvol; ++t) wb[(ch / 16 * kvol + t) * 16 + ch % 16] = ch < c.C ? wt[ch * kvol + t] : 0.0f;
            rt::depthwise_blocked(CB, xb.p(), wb.p(), c.bias ? bb.p() : nullptr, w, yb.p(), ep);
            CHECK(wb.intact(), "weights overwritten");
        } else {
            // Per group of Cg input channels (one group: Cg = C), blocks of the group's channels.
            const int64_t CBg = (Cg + 15) / 16;
            Buf wb(MB * CBg * kvol * 256);
            // Groups of 4, 2 or 1 output blocks (per convolution group), interleaved per input channel.
            const int64_t MBg = MB / c.G;
            for (int64_t m = 0; m < MB * 16; ++m) {
                const int64_t b = m / 16, g0 = b / MBg * MBg;
                int64_t m0 = g0, gw = rt::conv_blocked_group(MBg);
                while (b >= m0 + gw) { m0 += gw; gw = rt::conv_blocked_group(g0 + MBg - m0); }
                for (int64_t ch = 0; ch < CBg * 16; ++ch)
                    for (int64_t t = 0; t < kvol; ++t)
                        wb[m0 * CBg * kvol * 256 + (((ch / 16 * kvol + t) * 16 + ch % 16) * gw + (b - m0)) * 16 + m % 16] =
                            m < c.M && ch < Cg ? wt[(m * Cg + ch) * kvol + t] : 0.0f;
            }
            // Told the real channels of the last input block, conv_blocked reads none past them:
            // its input's pad lanes are NaN.
            const int64_t lanes = c.C % 16 == 0 ? 16 : c.C % 16;
            Buf xn = xb;
            fill_pad_lanes(xn, c.C, inN, NAN);
            // Without a workspace (edge columns in one-pixel tiles), then with one (padded rows or
            // gathered pixels).
            Buf yb0(MB * outN * 16, NAN);
            Buf work(std::max<int64_t>(1, rt::conv_blocked_work(CBg, w)));
            poison(work);
            for (bool padded : {false, true}) {
                Buf& out = padded ? yb : yb0;
                float* wk = padded ? work.p() : nullptr;
                if (c.G > 1) rt::conv_blocked_groups(c.G, CBg, MB / c.G, xb.p(), wb.p(), c.bias ? bb.p() : nullptr, w, out.p(), ep, wk);
                else rt::conv_blocked(CB, MB, xn.p(), wb.p(), c.bias ? bb.p() : nullptr, w, out.p(), ep, wk, lanes);
            }
            CHECK(work.intact(), "%s wrote outside its workspace", g_case);
            if (c.G == 1 && c.C < 16) {
                // The planar stem kernel: the same convolution from the NCHW image.
                Buf yp(MB * outN * 16, NAN), pwork(rt::conv_planar_work(c.C, w));
                poison(pwork);
                rt::conv_planar_blocked(c.C, MB, x.p(), wb.p(), c.bias ? bb.p() : nullptr, w, yp.p(), ep, pwork.p());
                CHECK(yp.intact() && pwork.intact() && x.intact(), "conv_planar_blocked wrote outside its output or workspace");
                Buf ypl(c.M * outN, NAN);
                rt::from_blocked(yp.p(), c.M, outN, ypl.p());
                char whatp[160];
                std::snprintf(whatp, sizeof whatp, "conv_planar_blocked C=%" PRId64 " M=%" PRId64 " k=%" PRId64 "x%" PRId64, c.C, c.M, c.k[1], c.k[2]);
                compare(whatp, ypl, ref, mag, Cg * kvol + 2, c.act, alpha, beta);
                // The same image channels-last ([IH, IW, C]): the same output.
                Buf xl(c.C * inN), ypc(MB * outN * 16, NAN);
                for (int64_t ch = 0; ch < c.C; ++ch)
                    for (int64_t i = 0; i < inN; ++i) xl[i * c.C + ch] = x[ch * inN + i];
                poison(pwork);
                rt::conv_planar_blocked(c.C, MB, xl.p(), wb.p(), c.bias ? bb.p() : nullptr, w, ypc.p(), ep, pwork.p(), true);
                CHECK(ypc.intact() && pwork.intact(), "conv_planar_blocked (channels last) wrote outside its output or workspace");
                for (int64_t i = 0; i < MB * outN * 16; ++i)
                    if (!(ypc[i] == yp[i] || (ypc[i] != ypc[i] && yp[i] != yp[i]))) {
                        CHECK(false, "conv_planar_blocked: channels last differs at %" PRId64, i);
                        break;
                    }
            }
            if (c.G == 1 && c.k[1] == 3 && c.k[2] == 3 && c.s[1] == 1 && c.s[2] == 1 && c.d[1] == 1 && c.d[2] == 1) {
                // Winograd F(2x2, 3x3): u = G g Gᵀ per channel pair, element e in the 1×1 layout.
                Buf u(16 * MB * CB * 256);
                const double G[4][3] = {{1, 0, 0}, {0.5, 0.5, 0.5}, {0.5, -0.5, 0.5}, {0, 0, 1}};
                for (int64_t m = 0; m < MB * 16; ++m) {
                    const int64_t b = m / 16;
                    int64_t m0 = 0, gw = rt::conv_blocked_group(MB);
                    while (b >= m0 + gw) { m0 += gw; gw = rt::conv_blocked_group(MB - m0); }
                    for (int64_t ch = 0; ch < CB * 16; ++ch)
                        for (int64_t i = 0; i < 4; ++i)
                            for (int64_t j = 0; j < 4; ++j) {
                                double v = 0;
                                if (m < c.M && ch < c.C)
                                    for (int64_t a = 0; a < 3; ++a)
                                        for (int64_t bb2 = 0; bb2 < 3; ++bb2) v += G[i][a] * wt[(m * c.C + ch) * 9 + a * 3 + bb2] * G[j][bb2];
                                u[(i * 4 + j) * MB * CB * 256 + m0 * CB * 256 + ((ch / 16 * 16 + ch % 16) * gw + (b - m0)) * 16 + m % 16] = static_cast<float>(v);
                            }
                }
                Buf ywb(MB * outN * 16, NAN), wwork(rt::conv_winograd_work(CB, MB, w));
                poison(wwork);
                rt::conv_winograd_blocked(CB, MB, xb.p(), u.p(), c.bias ? bb.p() : nullptr, w, ywb.p(), ep, wwork.p());
                CHECK(ywb.intact() && u.intact(), "conv_winograd_blocked wrote outside its output");
                Buf yw(c.M * outN, NAN);
                rt::from_blocked(ywb.p(), c.M, outN, yw.p());
                char whatw[160];
                std::snprintf(whatw, sizeof whatw, "conv_winograd_blocked C=%" PRId64 " M=%" PRId64 " %" PRId64 "x%" PRId64, c.C, c.M, w.in[1], w.in[2]);
                compare(whatw, yw, ref, mag, Cg * kvol + 2, c.act, alpha, beta);
            }
            Buf y0(c.M * outN, NAN);
            rt::from_blocked(yb0.p(), c.M, outN, y0.p());
            char what0[160];
            std::snprintf(what0, sizeof what0, "%s (no workspace) C=%" PRId64 " M=%" PRId64 " k=%" PRId64, g_case, c.C, c.M, c.k[2]);
            compare(what0, y0, ref, mag, Cg * kvol + 2, c.act, alpha, beta);
        }
        CHECK(yb.intact(), "%s wrote outside its output", g_case);
        for (size_t i = 0; i < yb.n; ++i) CHECK(std::isfinite(yb[i]), "%s: element %zu of the blocked output is %g", g_case, i, yb[i]);
        rt::from_blocked(yb.p(), c.M, outN, y.p());
        char what[160];
        std::snprintf(what, sizeof what, "%s C=%" PRId64 " M=%" PRId64 " k=%" PRId64 "x%" PRId64 " s=%" PRId64 " d=%" PRId64, g_case, c.C,
                      c.M, c.k[1], c.k[2], c.s[2], c.d[2]);
        compare(what, y, ref, mag, Cg * kvol + 2, c.act, alpha, beta);
    }
    // to_blocked and from_blocked against the layout's definition, at sizes that take the
    // transposed 16 x 16 tiles, the remainder and partial blocks.
    for (int64_t C : {1, 16, 21, 48}) {
        for (int64_t HW : {1, 15, 16, 37, 64, 100}) {
            g_case = "to_blocked/from_blocked";
            const int64_t CB = (C + 15) / 16;
            Buf x(C * HW), xb(CB * HW * 16, NAN), back(C * HW, NAN);
            randomize(x);
            rt::to_blocked(x.p(), C, HW, xb.p());
            for (int64_t c = 0; c < CB * 16; ++c)
                for (int64_t p = 0; p < HW; ++p)
                    CHECK(xb[(c / 16 * HW + p) * 16 + c % 16] == (c < C ? x[c * HW + p] : 0.0f), "to_blocked C=%" PRId64 " HW=%" PRId64 " c=%" PRId64 " p=%" PRId64, C, HW, c, p);
            rt::from_blocked(xb.p(), C, HW, back.p());
            for (int64_t i = 0; i < C * HW; ++i) CHECK(back[i] == x[i], "from_blocked C=%" PRId64 " HW=%" PRId64 " element %" PRId64, C, HW, i);
            CHECK(xb.intact() && back.intact(), "to_blocked/from_blocked wrote outside their outputs");
        }
    }
    // MaxPool on blocks, against sofie_rt::pool on each channel plane.
    {
        g_case = "max_pool_blocked";
        const int64_t C = 20, CB = 2;
        const ConvCase pc{C, C, C, {1, 13, 11}, {1, 3, 3}, {1, 2, 2}, {1, 1, 1}, {0, 1, 1}, false, false, rt::Act::None};
        rt::Window w = window_of(pc);
        w.out[1] += 1;  // ceil_mode's extra row: its windows reach past the padding
        const int64_t inN = w.in[1] * w.in[2], outN = w.out[1] * w.out[2];
        Buf x(C * inN), xb(CB * inN * 16), yb(CB * outN * 16, NAN), y(C * outN, NAN), want(C * outN, NAN);
        randomize(x);
        rt::to_blocked(x.p(), C, inN, xb.p());
        rt::max_pool_blocked(CB, xb.p(), w, yb.p());
        rt::from_blocked(yb.p(), C, outN, y.p());
        for (int64_t ch = 0; ch < C; ++ch) rt::pool<float>(x.p() + ch * inN, w, rt::Pool::Max, 0, want.p() + ch * outN, nullptr, 0);
        for (int64_t i = 0; i < C * outN; ++i) CHECK(y[i] == want[i], "max_pool_blocked element %" PRId64 " = %g, pool gives %g", i, y[i], want[i]);
        CHECK(yb.intact(), "max_pool_blocked wrote outside its output");
    }
    // GlobalAveragePool on blocks.
    g_case = "global_average_blocked";
    const int64_t C = 21, HW = 37, CB = 2;
    Buf x(C * HW), xb(CB * HW * 16), yb(CB * 16, NAN), y(C, NAN);
    randomize(x);
    rt::to_blocked(x.p(), C, HW, xb.p());
    rt::global_average_blocked(xb.p(), CB, HW, yb.p());
    rt::from_blocked(yb.p(), C, 1, y.p());
    std::vector<double> ref(C), mag(C);
    for (int64_t ch = 0; ch < C; ++ch) {
        for (int64_t p = 0; p < HW; ++p) { ref[ch] += x[ch * HW + p]; mag[ch] += std::fabs(x[ch * HW + p]); }
        ref[ch] /= HW; mag[ch] /= HW;
    }
    compare("global_average_blocked", y, ref, mag, HW + 2);
    CHECK(yb.intact() && xb.intact(), "global_average_blocked wrote outside its output");
}

// ConvTranspose's col2im: y += the columns scattered back to the image.
static void test_col2im() {
    g_case = "col2im_add";
    ConvCase c{3, 3, 1, {1, 5, 6}, {1, 3, 2}, {1, 2, 1}, {1, 1, 2}, {0, 1, 0}, false, false, rt::Act::None};
    rt::Window w{};
    // Here w.in is the columns' spatial size (the transposed conv's input), w.out the image.
    for (int i = 0; i < 3; ++i) {
        w.in[i] = c.in[i]; w.k[i] = c.k[i]; w.s[i] = c.s[i]; w.d[i] = c.d[i]; w.p[i] = c.p[i];
        w.out[i] = (c.in[i] - 1) * c.s[i] - 2 * c.p[i] + c.d[i] * (c.k[i] - 1) + 1;
    }
    const int64_t kvol = c.k[0] * c.k[1] * c.k[2], inN = w.in[0] * w.in[1] * w.in[2], outN = w.out[0] * w.out[1] * w.out[2];
    Buf col(c.C * kvol * inN), y(c.C * outN), y0(c.C * outN);
    randomize(col); randomize(y0);
    for (size_t i = 0; i < y.n; ++i) y[i] = y0[i];
    rt::col2im_add(col.p(), c.C, w, y.p());
    std::vector<double> ref(y.n), mag(y.n);
    for (size_t i = 0; i < y.n; ++i) { ref[i] = y0[i]; mag[i] = std::fabs(y0[i]); }
    for (int64_t ch = 0; ch < c.C; ++ch)
        for (int64_t kh = 0; kh < c.k[1]; ++kh)
            for (int64_t kw = 0; kw < c.k[2]; ++kw)
                for (int64_t ih = 0; ih < w.in[1]; ++ih)
                    for (int64_t iw = 0; iw < w.in[2]; ++iw) {
                        const int64_t oh = ih * c.s[1] - c.p[1] + kh * c.d[1], ow = iw * c.s[2] - c.p[2] + kw * c.d[2];
                        if (oh < 0 || oh >= w.out[1] || ow < 0 || ow >= w.out[2]) continue;
                        const double v = col[((ch * kvol) + kh * c.k[2] + kw) * inN + ih * w.in[2] + iw];
                        ref[ch * outN + oh * w.out[2] + ow] += v;
                        mag[ch * outN + oh * w.out[2] + ow] += std::fabs(v);
                    }
    compare("col2im_add", y, ref, mag, kvol + 1);
}

static void test_pool() {
    struct PoolCase { int64_t in[3], k[3], s[3], d[3], p[3]; };
    const PoolCase cases[] = {
        {{1, 9, 9}, {1, 3, 3}, {1, 2, 2}, {1, 1, 1}, {0, 1, 1}},
        {{1, 12, 7}, {1, 2, 2}, {1, 2, 2}, {1, 1, 1}, {0, 0, 0}},
        {{1, 10, 11}, {1, 3, 2}, {1, 1, 3}, {1, 2, 1}, {0, 2, 1}},
        {{1, 1, 20}, {1, 1, 4}, {1, 1, 3}, {1, 1, 1}, {0, 0, 2}},
        {{4, 5, 6}, {2, 2, 3}, {2, 1, 2}, {1, 1, 1}, {1, 0, 1}},
    };
    for (const PoolCase& pc : cases) {
        rt::Window w{};
        for (int i = 0; i < 3; ++i) {
            w.in[i] = pc.in[i]; w.k[i] = pc.k[i]; w.s[i] = pc.s[i]; w.d[i] = pc.d[i]; w.p[i] = pc.p[i];
            w.out[i] = (pc.in[i] + 2 * pc.p[i] - pc.d[i] * (pc.k[i] - 1) - 1) / pc.s[i] + 1;
        }
        const int64_t inN = w.in[0] * w.in[1] * w.in[2], outN = w.out[0] * w.out[1] * w.out[2];
        Buf x(inN);
        randomize(x, -3, 3);
        for (rt::Pool kind : {rt::Pool::Max, rt::Pool::Avg, rt::Pool::AvgIncludePad, rt::Pool::Lp}) {
            g_case = kind == rt::Pool::Max ? "pool max" : kind == rt::Pool::Avg ? "pool avg" : kind == rt::Pool::Lp ? "pool lp" : "pool avg+pad";
            Buf y(outN, NAN);
            std::vector<int64_t> idx(outN, -1);
            rt::pool(x.p(), w, kind, 2.0, y.p(), kind == rt::Pool::Max ? idx.data() : nullptr, 100);
            std::vector<double> ref(outN), mag(outN);
            for (int64_t o = 0; o < outN; ++o) {
                const int64_t od = o / (w.out[1] * w.out[2]), oh = o / w.out[2] % w.out[1], ow = o % w.out[2];
                double mx = -INFINITY, sum = 0, sq = 0, cnt = 0;
                int64_t arg = -1;
                for (int64_t kd = 0; kd < w.k[0]; ++kd)
                    for (int64_t kh = 0; kh < w.k[1]; ++kh)
                        for (int64_t kw = 0; kw < w.k[2]; ++kw) {
                            const int64_t id = od * w.s[0] - w.p[0] + kd * w.d[0], ih = oh * w.s[1] - w.p[1] + kh * w.d[1],
                                          iw = ow * w.s[2] - w.p[2] + kw * w.d[2];
                            if (id < 0 || id >= w.in[0] || ih < 0 || ih >= w.in[1] || iw < 0 || iw >= w.in[2]) continue;
                            const int64_t at = (id * w.in[1] + ih) * w.in[2] + iw;
                            if (x[at] > mx) { mx = x[at]; arg = at; }
                            sum += x[at]; sq += static_cast<double>(x[at]) * x[at]; cnt += 1;
                        }
                const double taps = static_cast<double>(w.k[0] * w.k[1] * w.k[2]);
                ref[o] = kind == rt::Pool::Max ? mx : kind == rt::Pool::Avg ? sum / cnt : kind == rt::Pool::AvgIncludePad ? sum / taps : std::sqrt(sq);
                mag[o] = kind == rt::Pool::Max ? 0 : kind == rt::Pool::Lp ? sq : std::fabs(ref[o]) * taps * 4;
                if (kind == rt::Pool::Max) CHECK(idx[o] == arg + 100, "max pool index at %" PRId64 ": %" PRId64 ", expected %" PRId64, o, idx[o], arg + 100);
            }
            compare(g_case, y, ref, mag, 2.0 * w.k[0] * w.k[1] * w.k[2]);
            if (kind == rt::Pool::Max && w.in[0] == 1 && w.d[1] == 1 && w.d[2] == 1) {
                g_case = "max_pool2d";
                Buf y2(outN, NAN);
                rt::max_pool2d(x.p(), w, y2.p());
                compare(g_case, y2, ref, mag, 1);
            }
        }
    }
}

// Softmax and LayerNormalization rows against double-precision loops, at row lengths around the
// vector width (tails of every size); a NaN or an all -inf row gives NaNs.
static void test_rows() {
    for (int64_t n : {1, 3, 7, 15, 16, 17, 31, 32, 33, 64, 100, 197, 768}) {
        const int64_t rows = 3;
        Buf x(rows * n);
        randomize(x, -8, 8);
        g_case = "softmax_rows";
        Buf y(rows * n, NAN);
        rt::softmax_rows(x.p(), y.p(), rows, n);
        std::vector<double> ref(rows * n), mag(rows * n);
        for (int64_t r = 0; r < rows; ++r) {
            double m = -INFINITY, s = 0;
            for (int64_t k = 0; k < n; ++k) m = std::max(m, static_cast<double>(x[r * n + k]));
            for (int64_t k = 0; k < n; ++k) s += std::exp(x[r * n + k] - m);
            for (int64_t k = 0; k < n; ++k) {
                ref[r * n + k] = std::exp(x[r * n + k] - m) / s;
                mag[r * n + k] = ref[r * n + k] * 4;  // exp within about 1 ulp, then the sum and one product
            }
        }
        compare(g_case, y, ref, mag, static_cast<double>(n));
        g_case = "softmax_rows in place";  // attention's rows: the tail vector overlaps written values
        Buf w(rows * n, NAN);
        for (int64_t i = 0; i < rows * n; ++i) w[i] = x[i];
        rt::softmax_rows(w.p(), w.p(), rows, n);
        compare(g_case, w, ref, mag, static_cast<double>(n));
        g_case = "layer_norm_rows";
        Buf scale(n), bias(n);
        randomize(scale, 0.5f, 2.0f);
        randomize(bias);
        for (bool withBias : {true, false}) {
            Buf z(rows * n, NAN);
            rt::layer_norm_rows(x.p(), z.p(), rows, n, scale.p(), withBias ? bias.p() : nullptr, 1e-5);
            for (int64_t r = 0; r < rows; ++r) {
                double mean = 0, var = 0;
                for (int64_t k = 0; k < n; ++k) mean += x[r * n + k];
                mean /= static_cast<double>(n);
                for (int64_t k = 0; k < n; ++k) var += (x[r * n + k] - mean) * (x[r * n + k] - mean);
                var /= static_cast<double>(n);
                for (int64_t k = 0; k < n; ++k) {
                    const double v = (x[r * n + k] - mean) / std::sqrt(var + 1e-5) * scale[k];
                    ref[r * n + k] = v + (withBias ? bias[k] : 0.0);
                    mag[r * n + k] = std::fabs(v) + (withBias ? std::fabs(bias[k]) : 0.0);
                }
            }
            compare(g_case, z, ref, mag, 1);
        }
    }
    g_case = "softmax_rows special values";
    for (int64_t n : {5, 16, 40}) {
        Buf x(n), y(n, 0);
        randomize(x);
        x[n / 2] = std::numeric_limits<float>::quiet_NaN();
        rt::softmax_rows(x.p(), y.p(), 1, n);
        for (int64_t k = 0; k < n; ++k) CHECK(std::isnan(y[k]), "a row with a NaN: element %" PRId64 " = %g", k, y[k]);
        for (int64_t k = 0; k < n; ++k) x[k] = -INFINITY;
        rt::softmax_rows(x.p(), y.p(), 1, n);
        for (int64_t k = 0; k < n; ++k) CHECK(std::isnan(y[k]), "a row of -inf: element %" PRId64 " = %g", k, y[k]);
        for (int64_t k = 0; k < n; ++k) x[k] = k == n - 1 ? 1000.0f : -1000.0f;
        rt::softmax_rows(x.p(), y.p(), 1, n);
        for (int64_t k = 0; k < n; ++k) CHECK(y[k] == (k == n - 1 ? 1.0f : 0.0f), "one dominant logit: element %" PRId64 " = %g", k, y[k]);
        CHECK(y.intact(), "softmax_rows wrote outside its output");
    }
}

int main() {
    // The constants the Swift emitter sizes workspaces with (RuntimeKernelTests compares them).
    std::printf("constants KC=%" PRId64 " NC=%" PRId64 " kMaxNR=%" PRId64 " kPanel=%" PRId64 " kDepthwiseMaxRow=%" PRId64
                " kDepthwiseRowBuffer=%" PRId64 " kDepthwiseWork=%" PRId64 "\n",
                rt::KC, rt::NC, rt::kMaxNR, rt::kPanel, rt::kDepthwiseMaxRow, rt::kDepthwiseRowBuffer, rt::kDepthwiseWork);
    std::printf("target MR=%" PRId64 " NR=%" PRId64 " vector bytes=%" PRId64 "\n", rt::MR, rt::NR, rt::kVectorBytes);
    test_integer_helpers();
    test_math();
    test_activations();
    test_gemm();
    test_conv();
    test_blocked();
    test_col2im();
    test_pool();
    test_rows();
    std::printf("%ld checks, %d failures\n", g_checks, g_failures);
    return g_failures == 0 ? 0 : 1;
}
