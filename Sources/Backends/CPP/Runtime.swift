import Foundation

/// The C++ kernels every emitted header carries, shared by all models in a translation
/// unit through an include guard. Tuning happens here, in one place: the cache-blocked GEMM
/// (packed panels, a register-blocked micro-kernel written so that the compiler vectorizes it
/// for the target), which Gemm, MatMul, Conv and ConvTranspose all go through.
enum CppRuntime {
    // The runtime's sizes, defined once: the C++ text below is made from them, and the emitter
    // sizes workspaces with them (CppNN.packElements, the depthwise path).
    /// GEMM blocking: rows of K and columns of N per packed block of B.
    static let kc = 256, nc = 1024
    /// The widest register tile's columns (AVX-512: 2 vectors of 16 floats); checked by a
    /// static_assert in the C++.
    static let maxNR = 32
    /// Direct depthwise convolution: outputs per row, the padded input row, the whole workspace.
    static let depthwiseMaxRow = 1024
    static let depthwiseRowBuffer = 4 * depthwiseMaxRow + 256
    static let depthwiseWork = depthwiseMaxRow + 64 + depthwiseRowBuffer
    /// Columns per panel of a packed matrix for row-times-matrix products (recurrent steps).
    static let gemvPanel = 128

    /// Elements of `pack_panels`' output for a K x N matrix.
    static func panelElements(k: Int, n: Int) -> Int { (n + gemvPanel - 1) / gemvPanel * k * gemvPanel }

    static let source = #"""
#ifndef SOFIE_RUNTIME_V2
#define SOFIE_RUNTIME_V2
namespace sofie_rt {

// Sign tests that do not warn (-Wtype-limits) when instantiated for unsigned types.
template <class T>
constexpr bool is_neg(T v) {
    if constexpr (std::is_signed<T>::value || std::is_floating_point<T>::value) return v < T(0);
    else return false;
}

// Integer modulo with the sign of the divisor (Python/ONNX Mod with fmod=0); 0 for b == 0.
template <class T>
constexpr T mod_floor(T a, T b) {
    if (b == 0) return T(0);
    const T r = static_cast<T>(a % b);
    return (r != 0 && is_neg(r) != is_neg(b)) ? static_cast<T>(r + b) : r;
}

// Shifts with ONNX/numpy semantics: the amount is unsigned, so negative or too-large amounts
// shift everything out (a right shift of a negative value leaves -1). No undefined behaviour.
template <class T, class S>
constexpr T shift_left(T a, S b) {
    using U = typename std::make_unsigned<T>::type;
    if (is_neg(b) || static_cast<uint64_t>(b) >= sizeof(T) * 8) return T(0);
    return static_cast<T>(static_cast<U>(static_cast<U>(a) << b));
}
template <class T, class S>
constexpr T shift_right(T a, S b) {
    if (is_neg(b) || static_cast<uint64_t>(b) >= sizeof(T) * 8) return is_neg(a) ? T(-1) : T(0);
    return static_cast<T>(a >> b);
}

// Floating-point modulo with the sign of the divisor (ONNX Mod with fmod=0).
template <class T>
inline T mod_floor_fp(T a, T b) {
    const T r = std::fmod(a, b);
    return (r != 0 && (r < 0) != (b < 0)) ? r + b : r;
}

// Blocking of the GEMM: an MR x NR register tile, KC-deep panels, NC columns of B per block.
// Only B (activations: im2col blocks packed from the image, or MatMul's right operand) is packed, into the
// Session's workspace; A (the weights of Conv and Gemm) is read in place, never copied.
// Register tile MR x NR: NR spans two SIMD vectors of the compile target's width (AVX-512:
// 64 bytes, AVX: 32, otherwise 16 as SSE2 and NEON have). Wider vectors than the target has
// would be emulated, many times slower: compile with your target's flags (-march=native).
// AVX-512 has 32 vector registers: 8 rows x 2 vectors of accumulators fit (and channel counts
// are usually multiples of 8); with 16 registers, 6 rows.
#if defined(__AVX512F__)
constexpr int64_t kVectorBytes = 64;
constexpr int64_t MR = 8;
#elif defined(__AVX__)
constexpr int64_t kVectorBytes = 32;
constexpr int64_t MR = 6;
#else
constexpr int64_t kVectorBytes = 16;
constexpr int64_t MR = 6;
#endif
constexpr int64_t NR = 2 * kVectorBytes / 4;
constexpr int64_t KC = \#(kc);
constexpr int64_t NC = \#(nc);
static_assert(NR <= \#(maxNR), "the emitter sizes packing buffers for NR up to \#(maxNR) (CppRuntime.maxNR)");

// Elementary functions for float written without branches, so that a loop over them becomes
// SIMD code (the array forms below use the target's vectors explicitly, at -O2 too). Double
// keeps the C library's functions. Accuracy against the exactly rounded result, measured over
// [-110, 110] (RuntimeMathTests): exp within 1 ulp, sigmoid 2.3, tanh 5.6, erf 7.1; results below the
// smallest normal float (1.2e-38) within that much of the exact value. An element's result does not depend on its position.
#if defined(__GNUC__) || defined(__clang__)
template <class T>
struct Vec {
    static constexpr int64_t kLanes = kVectorBytes / sizeof(T);
    typedef T type __attribute__((vector_size(kVectorBytes)));
};
#endif

// The math below is forced inline so that loops calling it become SIMD code.
#if defined(__GNUC__) || defined(__clang__)
#define SOFIE_MATH inline __attribute__((always_inline))
#else
#define SOFIE_MATH inline
#endif

// Picks a where the mask (all bits set or clear per lane, as comparisons give) is set, else b;
// for scalars the same through bool.
template <class F, class M>
SOFIE_MATH F select_bits(M mask, F a, F b) { return mask ? a : b; }
#if defined(__GNUC__) || defined(__clang__)
typedef float VecF __attribute__((vector_size(kVectorBytes)));
typedef int32_t VecI __attribute__((vector_size(kVectorBytes)));
SOFIE_MATH VecF select_bits(VecI mask, VecF a, VecF b) {
    return reinterpret_cast<VecF>((reinterpret_cast<VecI>(a) & mask) | (reinterpret_cast<VecI>(b) & ~mask));
}
SOFIE_MATH VecF bits_to_float(VecI i) { return reinterpret_cast<VecF>(i); }
SOFIE_MATH VecI float_to_int(VecF f) { return __builtin_convertvector(f, VecI); }
#endif
SOFIE_MATH float bits_to_float(int32_t i) { float f; std::memcpy(&f, &i, sizeof f); return f; }
SOFIE_MATH int32_t float_to_int(float f) { return static_cast<int32_t>(f); }

// e^xc = y * 2^n for xc already clamped to the float range: n = round(xc / ln 2), reduction by
// ln 2 in two parts (Cody-Waite), y a degree-6 polynomial on [-ln2/2, ln2/2] (Cephes'
// coefficients). Returns y; n through the reference.
template <class F>
SOFIE_MATH F exp_reduced(F xc, F& n) {
    const float magic = 12582912.0f;  // 1.5 * 2^23: adding and subtracting it rounds to an integer
    n = (xc * 1.44269504088896341f + magic) - magic;
    F r = xc - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    F p = F{} + 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    return p * r * r + r + 1.0f;
}

// e^x, with 2^n applied as two factors so that every n from -150 to 128 is exact; infinities,
// underflow to 0 and NaN as the C library gives them.
template <class F>
SOFIE_MATH F exp_poly(F x) {
    const F hi = F{} + 88.72283935546875f, lo = F{} + -103.972084045410f;
    // NaN goes to lo here (float-to-int of NaN is undefined) and comes back at the end.
    const F xc = select_bits(x >= lo, select_bits(x > hi, hi, x), lo);
    F n;
    F y = exp_reduced(xc, n);
    const auto ni = float_to_int(n);
    const auto na = ni >> 1;
    y = y * bits_to_float((na + 127) << 23) * bits_to_float((ni - na + 127) << 23);
    y = select_bits(x > hi, F{} + std::numeric_limits<float>::infinity(), y);
    y = select_bits(x < lo, F{}, y);
    return select_bits(x != x, x, y);
}

// tanh(x): x * p(x^2) / q(x^2) on [-7.9, 7.9] (where tanh rounds to +-1), Eigen's coefficients.
template <class F>
SOFIE_MATH F tanh_poly(F x) {
    const F c = F{} + 7.90531110763549805f;
    const F xc = select_bits(x < -c, -c, select_bits(x > c, c, x));
    const F x2 = xc * xc;
    F p = F{} + -2.76076847742355e-16f;
    p = p * x2 + 2.00018790482477e-13f;
    p = p * x2 + -8.60467152213735e-11f;
    p = p * x2 + 5.12229709037114e-08f;
    p = p * x2 + 1.48572235717979e-05f;
    p = p * x2 + 6.37261928875436e-04f;
    p = p * x2 + 4.89352455891786e-03f;
    F q = F{} + 1.19825839466702e-06f;
    q = q * x2 + 1.18534705686654e-04f;
    q = q * x2 + 2.26843463243900e-03f;
    q = q * x2 + 4.89352518554385e-03f;
    // Beyond 9, tanh rounds to +-1 in float (the rational stays a few ulp below it).
    return select_bits(x > 9.0f, F{} + 1.0f, select_bits(x < -9.0f, F{} - 1.0f, xc * p / q));
}

// e^x for sigmoid: x clamped to [-88, 88] (where 1 / (1 + e^x) is 0 or 1 to within the
// smallest normal float), one exponent factor, no special cases.
template <class F>
SOFIE_MATH F exp_clamped(F x) {
    const F lim = F{} + 88.0f;
    const F xc = select_bits(x >= -lim, select_bits(x > lim, lim, x), -lim);
    F n;
    const F y = exp_reduced(xc, n);
    return y * bits_to_float((float_to_int(n) + 127) << 23);
}

template <class F>
SOFIE_MATH F sigmoid_poly(F x) { return select_bits(x != x, x, 1.0f / (1.0f + exp_clamped(-x))); }

// erf(x): x * p(x^2) / q(x^2) on [-4, 4] (beyond, erf rounds to +-1), Eigen's coefficients.
template <class F>
SOFIE_MATH F erf_poly(F x) {
    const F c = F{} + 4.0f;
    const F xc = select_bits(x < -c, -c, select_bits(x > c, c, x));
    const F x2 = xc * xc;
    F p = F{} + -2.72614225801306e-10f;
    p = p * x2 + 2.77068142495902e-08f;
    p = p * x2 + -2.10102402082508e-06f;
    p = p * x2 + -5.69250639462346e-05f;
    p = p * x2 + -7.34990630326855e-04f;
    p = p * x2 + -2.95459980854025e-03f;
    p = p * x2 + -1.60960333262415e-02f;
    F q = F{} + -1.45660718464996e-05f;
    q = q * x2 + -2.13374055278905e-04f;
    q = q * x2 + -1.68282697438203e-03f;
    q = q * x2 + -7.37332916720468e-03f;
    q = q * x2 + -1.42647390514189e-02f;
    return xc * p / q;
}

// Gelu (exact form): x/2 (1 + erf(x / sqrt 2)).
template <class F>
SOFIE_MATH F gelu_poly(F x) { return 0.5f * x * (1.0f + erf_poly(x * 0.7071067811865476f)); }

SOFIE_MATH float fast_exp(float x) { return exp_poly(x); }
inline double fast_exp(double x) { return std::exp(x); }
SOFIE_MATH float fast_tanh(float x) { return tanh_poly(x); }
inline double fast_tanh(double x) { return std::tanh(x); }
SOFIE_MATH float fast_sigmoid(float x) { return sigmoid_poly(x); }
SOFIE_MATH float fast_erf(float x) { return erf_poly(x); }
inline double fast_erf(double x) { return std::erf(x); }
SOFIE_MATH float fast_gelu(float x) { return gelu_poly(x); }
inline double fast_gelu(double x) { return 0.5 * x * (1.0 + std::erf(x * 0.7071067811865476)); }
inline double fast_sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }

// v[j] = f(v[j]) for n contiguous values; float runs on the target's vectors.
enum class Fn { Exp, Sigmoid, Tanh, Swish, Erf, Gelu };
template <Fn fn, class F>
SOFIE_MATH F apply_fn(F x) {
    if constexpr (fn == Fn::Exp) return exp_poly(x);
    else if constexpr (fn == Fn::Sigmoid) return sigmoid_poly(x);
    else if constexpr (fn == Fn::Tanh) return tanh_poly(x);
    else if constexpr (fn == Fn::Erf) return erf_poly(x);
    else if constexpr (fn == Fn::Gelu) return gelu_poly(x);
    else return x * sigmoid_poly(x);
}
template <Fn fn>
inline void apply_array(const float* in, float* v, int64_t n) {
#if defined(__GNUC__) || defined(__clang__)
    constexpr int64_t L = kVectorBytes / sizeof(float);
    const int64_t body = n - n % L;
    for (int64_t j = 0; j < body; j += L) {
        VecF x;
        std::memcpy(&x, in + j, sizeof x);
        x = apply_fn<fn>(x);
        std::memcpy(v + j, &x, sizeof x);
    }
    if (body < n) {  // the tail through the same vector code, so no element depends on its position
        VecF x{};
        std::memcpy(&x, in + body, sizeof(float) * (n - body));
        x = apply_fn<fn>(x);
        std::memcpy(v + body, &x, sizeof(float) * (n - body));
    }
#else
    for (int64_t j = 0; j < n; ++j) v[j] = apply_fn<fn>(in[j]);
#endif
}
template <Fn fn>
inline void apply_array(const double* in, double* v, int64_t n) {
    for (int64_t j = 0; j < n; ++j) {
        if constexpr (fn == Fn::Exp) v[j] = std::exp(in[j]);
        else if constexpr (fn == Fn::Sigmoid) v[j] = fast_sigmoid(in[j]);
        else if constexpr (fn == Fn::Tanh) v[j] = std::tanh(in[j]);
        else if constexpr (fn == Fn::Erf) v[j] = std::erf(in[j]);
        else if constexpr (fn == Fn::Gelu) v[j] = fast_gelu(in[j]);
        else v[j] = in[j] * fast_sigmoid(in[j]);
    }
}
// In place.
template <Fn fn, class T>
inline void apply_array(T* v, int64_t n) { apply_array<fn>(static_cast<const T*>(v), v, n); }

// The GEMM epilogue: after bias, C += residual (laid out like C) and then an activation.
enum class Act { None, Relu, LeakyRelu, Sigmoid, Tanh, Clip, HardSigmoid, HardSwish, Swish, Gelu };

template <class T>
struct Epilogue {
    Act act;
    T alpha, beta;       // LeakyRelu alpha; Clip min, max; HardSigmoid alpha, beta
    const T* residual;   // nullptr, or a tensor read with C's row stride
};

// The activations' one definition: y = act(x) over n contiguous values (y may be x), one
// loop per kind so each vectorizes. Fused epilogues and standalone activation nodes (Relu,
// Sigmoid, ... on float tensors) both run it.
template <class T>
inline void activate(const T* x, T* y, int64_t n, Act act, T alpha, T beta) {
    switch (act) {
    case Act::None:
        if (x != y) std::copy(x, x + n, y);
        return;
    case Act::Relu:
        for (int64_t j = 0; j < n; ++j) y[j] = x[j] < T(0) ? T(0) : x[j];
        return;
    case Act::LeakyRelu:
        for (int64_t j = 0; j < n; ++j) y[j] = x[j] < T(0) ? alpha * x[j] : x[j];
        return;
    case Act::Sigmoid: apply_array<Fn::Sigmoid>(x, y, n); return;
    case Act::Tanh: apply_array<Fn::Tanh>(x, y, n); return;
    case Act::Clip:
        for (int64_t j = 0; j < n; ++j) y[j] = std::min(beta, std::max(alpha, x[j]));
        return;
    case Act::HardSigmoid: for (int64_t j = 0; j < n; ++j) y[j] = std::max(T(0), std::min(T(1), alpha * x[j] + beta)); return;
    case Act::HardSwish: for (int64_t j = 0; j < n; ++j) y[j] = x[j] * std::max(T(0), std::min(T(1), x[j] / T(6) + T(0.5))); return;
    case Act::Swish: apply_array<Fn::Swish>(x, y, n); return;
    case Act::Gelu: apply_array<Fn::Gelu>(x, y, n); return;
    }
}

// In place.
template <class T>
inline void activate(T* v, int64_t n, Act act, T alpha, T beta) { activate(static_cast<const T*>(v), v, n, act, alpha, beta); }

#if defined(__GNUC__) || defined(__clang__)
// The activations that are a comparison and a select: cheap enough to apply on many sums at
// once (a depthwise tile's 8 vectors; the vector functions and HardSwish measured 0.92-0.93x
// there against the pass over the plane after it).
template <class T>
constexpr bool select_act(Act act) {
    return std::is_same<T, float>::value && (act == Act::None || act == Act::Relu || act == Act::LeakyRelu || act == Act::Clip);
}
// An activation on one float vector in registers, computed as activate() computes it (the
// same comparisons, so NaN and -0 come out the same, and the same vector functions): GEMM
// tiles and depthwise rows store activated sums instead of passing over the output again.
inline VecF act_vec(VecF x, Act act, float alpha, float beta) {
    const VecF zero{}, one = VecF{} + 1.0f;
    switch (act) {
    case Act::None: return x;
    case Act::Relu: return select_bits(x < zero, zero, x);
    case Act::LeakyRelu: return select_bits(x < zero, alpha * x, x);
    case Act::Clip: {  // std::min(beta, std::max(alpha, x))
        const VecF lo = VecF{} + alpha, hi = VecF{} + beta;
        const VecF m = select_bits(lo < x, x, lo);
        return select_bits(m < hi, m, hi);
    }
    case Act::HardSigmoid: {  // std::max(0, std::min(1, alpha * x + beta))
        const VecF t = alpha * x + beta;
        const VecF m = select_bits(t < one, t, one);
        return select_bits(zero < m, m, zero);
    }
    case Act::HardSwish: {  // x * std::max(0, std::min(1, x / 6 + 0.5))
        const VecF t = x / 6.0f + 0.5f;
        const VecF m = select_bits(t < one, t, one);
        return x * select_bits(zero < m, m, zero);
    }
    case Act::Sigmoid: return apply_fn<Fn::Sigmoid>(x);
    case Act::Tanh: return apply_fn<Fn::Tanh>(x);
    case Act::Swish: return apply_fn<Fn::Swish>(x);
    case Act::Gelu: return apply_fn<Fn::Gelu>(x);
    }
    return x;
}
#endif

// The whole epilogue on an M x N block of C already holding the product and bias.
template <class T>
inline void epilogue(T* C, int64_t M, int64_t N, int64_t ldc, const Epilogue<T>& ep) {
    for (int64_t i = 0; i < M; ++i) {
        T* ci = C + i * ldc;
        if (ep.residual) {
            const T* ri = ep.residual + i * ldc;
            for (int64_t j = 0; j < N; ++j) ci[j] += ri[j];
        }
        activate(ci, N, ep.act, ep.alpha, ep.beta);
    }
}

// Packs a kc x nc block of B (element (k,j) at B[k*rsb + j*csb]) into NR-column slivers.
template <class T>
inline void pack_b(int64_t kc, int64_t nc, const T* B, int64_t rsb, int64_t csb, T* dst) {
    for (int64_t j0 = 0; j0 < nc; j0 += NR) {
        const int64_t nr = std::min(NR, nc - j0);
        for (int64_t k = 0; k < kc; ++k) {
            const T* src = B + k * rsb + j0 * csb;
            T* d = dst + k * NR;
            if (csb == 1 && nr == NR) {
                std::memcpy(d, src, sizeof(T) * NR);
            } else {
                for (int64_t j = 0; j < nr; ++j) d[j] = src[j * csb];
                for (int64_t j = nr; j < NR; ++j) d[j] = T(0);
            }
        }
        dst += NR * kc;
    }
}

// The register tile: acc[MR][NR] += A[i, k] * b[k, :] over kc (row k of b at b + k * ldb),
// A read in place.
// GCC and Clang get explicit SIMD vectors (their vector extensions, sized for any target);
// other compilers get the same loops in plain C++.
#if defined(__GNUC__) || defined(__clang__)
template <class T>
inline void tile(int64_t kc, const T* a, int64_t rsa, int64_t csa, int64_t mr, const T* b, int64_t ldb, T (&out)[MR][NR]) {
    typedef typename Vec<T>::type V;
    constexpr int64_t L = Vec<T>::kLanes;
    constexpr int64_t NV = NR / L;
    // The unroll pragmas keep the accumulators in registers at -O2 too (GCC unrolls these
    // small loops by itself only at -O3).
    V acc[MR][NV];
    _Pragma("GCC unroll 16") for (int64_t i = 0; i < MR; ++i)
        _Pragma("GCC unroll 16") for (int64_t v = 0; v < NV; ++v) acc[i][v] = V{};
    const T* rows[MR];
    _Pragma("GCC unroll 16") for (int64_t i = 0; i < MR; ++i) rows[i] = a + (i < mr ? i : 0) * rsa;
    for (int64_t k = 0; k < kc; ++k) {
        V bv[NV];
        _Pragma("GCC unroll 16") for (int64_t v = 0; v < NV; ++v) std::memcpy(&bv[v], b + k * ldb + v * L, sizeof(V));
        _Pragma("GCC unroll 16") for (int64_t i = 0; i < MR; ++i) {
            const T ai = rows[i][k * csa];
            _Pragma("GCC unroll 16") for (int64_t v = 0; v < NV; ++v) acc[i][v] += bv[v] * ai;
        }
    }
    for (int64_t i = 0; i < MR; ++i)
        for (int64_t v = 0; v < NV; ++v) std::memcpy(&out[i][v * L], &acc[i][v], sizeof(V));
}
#else
template <class T>
inline void tile(int64_t kc, const T* a, int64_t rsa, int64_t csa, int64_t mr, const T* b, int64_t ldb, T (&out)[MR][NR]) {
    for (int64_t i = 0; i < MR; ++i)
        for (int64_t j = 0; j < NR; ++j) out[i][j] = T(0);
    for (int64_t k = 0; k < kc; ++k)
        for (int64_t i = 0; i < mr; ++i) {
            const T ai = a[i * rsa + k * csa];
            for (int64_t j = 0; j < NR; ++j) out[i][j] += ai * b[k * ldb + j];
        }
}
#endif

// Writes an mr x nr tile into C: [C +] tile, and on the last panel bias and epilogue.
template <class T>
inline void store_tile(const T (&t)[MR][NR], T* c, int64_t ldc, int64_t mr, int64_t nr, bool accumulate, bool last,
                       const T* row_bias, const T* col_bias, const Epilogue<T>& ep, const T* residual) {
#if defined(__GNUC__) || defined(__clang__)
    // Full-width tiles of float: the same sums in the same order, in vectors, the activation
    // applied before the store.
    if constexpr (std::is_same<T, float>::value) {
        if (nr == NR) {
            constexpr int64_t L = Vec<T>::kLanes;
            for (int64_t i = 0; i < mr; ++i) {
                T* ci = c + i * ldc;
                _Pragma("GCC unroll 16") for (int64_t v = 0; v < NR / L; ++v) {
                    VecF x, y;
                    std::memcpy(&x, &t[i][v * L], sizeof x);
                    if (accumulate) { std::memcpy(&y, ci + v * L, sizeof y); x += y; }
                    if (last) {
                        if (row_bias) x += row_bias[i];
                        if (col_bias) { std::memcpy(&y, col_bias + v * L, sizeof y); x += y; }
                        if (residual) { std::memcpy(&y, residual + i * ldc + v * L, sizeof y); x += y; }
                        x = act_vec(x, ep.act, ep.alpha, ep.beta);
                    }
                    std::memcpy(ci + v * L, &x, sizeof x);
                }
            }
            return;
        }
    }
#endif
    for (int64_t i = 0; i < mr; ++i) {
        T* ci = c + i * ldc;
        for (int64_t j = 0; j < nr; ++j) {
            T v = t[i][j];
            if (accumulate) v += ci[j];
            if (last) {
                if (row_bias) v += row_bias[i];
                if (col_bias) v += col_bias[j];
                if (residual) v += residual[i * ldc + j];
            }
            ci[j] = v;
        }
        if (last) activate(ci, nr, ep.act, ep.alpha, ep.beta);
    }
}

// Few rows (batch-1 dense layers): C[i, :] = A[i, :] * B without packing, streaming B's rows
// once. GCC and Clang keep blocks of 8, 4, 2 or 1 vectors of columns in registers over the
// whole K loop (at -O2 too; several independent sums hide the FMA latency); each element is
// summed in k order.
template <class T>
inline void finish_row(T* c, const T* acc, int64_t n, int64_t j0, bool accumulate, const T* row_bias_i,
                       const T* col_bias, const T* residual) {
    for (int64_t j = 0; j < n; ++j) {
        T v = acc[j];
        if (accumulate) v += c[j0 + j];
        if (row_bias_i) v += *row_bias_i;
        if (col_bias) v += col_bias[j0 + j];
        if (residual) v += residual[j0 + j];
        c[j0 + j] = v;
    }
}
#if defined(__GNUC__) || defined(__clang__)
// Columns [j0, j0 + NV vectors) of one row (B readable that far), of which the first `count`
// are stored.
template <int64_t NV, class T>
inline void rows_block(int64_t K, const T* a, int64_t csa, const T* B, int64_t rsb, int64_t j0, int64_t count, T* c,
                       bool accumulate, const T* rb, const T* col_bias, const T* res) {
    typedef typename Vec<T>::type V;
    constexpr int64_t L = Vec<T>::kLanes;
    V acc[NV];
    _Pragma("GCC unroll 8") for (int64_t v = 0; v < NV; ++v) acc[v] = V{};
    for (int64_t k = 0; k < K; ++k) {
        const T ak = a[k * csa];
        const T* b = B + k * rsb + j0;
        _Pragma("GCC unroll 8") for (int64_t v = 0; v < NV; ++v) {
            V bv;
            std::memcpy(&bv, b + v * L, sizeof(V));
            acc[v] += bv * ak;
        }
    }
    T out[NV * L];
    std::memcpy(out, acc, sizeof acc);
    finish_row(c, out, std::min(count, NV * L), j0, accumulate, rb, col_bias, res);
}
#endif
template <class T>
inline void gemm_rows(int64_t M, int64_t N, int64_t K, const T* A, int64_t rsa, int64_t csa, const T* B, int64_t rsb,
                      T* C, int64_t ldc, bool accumulate, const T* row_bias, const T* col_bias, const Epilogue<T>& ep) {
    for (int64_t i = 0; i < M; ++i) {
        const T* a = A + i * rsa;
        T* c = C + i * ldc;
        const T* rb = row_bias ? row_bias + i : nullptr;
        const T* res = ep.residual ? ep.residual + i * ldc : nullptr;
        int64_t tail = 0;  // first column the scalar loop does
#if defined(__GNUC__) || defined(__clang__)
        constexpr int64_t L = Vec<T>::kLanes;
        const int64_t vectors = N / L;
        int64_t j0 = 0;
        for (int64_t v = 0; v + 8 <= vectors; v += 8, j0 += 8 * L) rows_block<8>(K, a, csa, B, rsb, j0, 8 * L, c, accumulate, rb, col_bias, res);
        if (vectors % 8 >= 4) { rows_block<4>(K, a, csa, B, rsb, j0, 4 * L, c, accumulate, rb, col_bias, res); j0 += 4 * L; }
        if (vectors % 4 >= 2) { rows_block<2>(K, a, csa, B, rsb, j0, 2 * L, c, accumulate, rb, col_bias, res); j0 += 2 * L; }
        if (vectors % 2 == 1) { rows_block<1>(K, a, csa, B, rsb, j0, L, c, accumulate, rb, col_bias, res); }
        tail = vectors * L;
#endif
        for (int64_t j = tail; j < N; ++j) {
            T acc = T(0);
            for (int64_t k = 0; k < K; ++k) acc += a[k * csa] * B[k * rsb + j];
            finish_row(c, &acc, 1, j, accumulate, rb, col_bias, res);
        }
        activate(c, N, ep.act, ep.alpha, ep.beta);
    }
}

// One row times a constant matrix (each step of a recurrent op): the matrix packed once into
// panels of kPanel columns, each panel's rows consecutive, so every panel streams through
// the cache in order. pack_panels writes B's columns [0, N) (element (k, j) at
// B[k * rsb + j * csb]) as dst[(p * K + k) * kPanel + c], zero beyond N.
constexpr int64_t kPanel = \#(gemvPanel);
template <class T>
inline void pack_panels(int64_t K, int64_t N, const T* B, int64_t rsb, int64_t csb, T* dst) {
    for (int64_t p = 0; p * kPanel < N; ++p)
        for (int64_t k = 0; k < K; ++k)
            for (int64_t c = 0; c < kPanel; ++c) {
                const int64_t j = p * kPanel + c;
                dst[(p * K + k) * kPanel + c] = j < N ? B[k * rsb + j * csb] : T(0);
            }
}

// c[0, N) = [c +] a[0, K) * B, B packed by pack_panels; each element summed in k order.
template <class T>
inline void gemv_panels(int64_t K, int64_t N, const T* a, const T* P, T* c, bool accumulate) {
    for (int64_t p = 0; p * kPanel < N; ++p) {
        const T* panel = P + p * K * kPanel;
        const int64_t n = std::min(kPanel, N - p * kPanel);
        T* cp = c + p * kPanel;
#if defined(__GNUC__) || defined(__clang__)
        constexpr int64_t L = Vec<T>::kLanes;
        constexpr int64_t NV = kPanel / L < 8 ? kPanel / L : 8;  // vectors of accumulators
        static_assert(kPanel % (NV * L) == 0, "panel width is a multiple of the accumulator block");
        for (int64_t h = 0; h < n; h += NV * L)
            rows_block<NV>(K, a, 1, panel, kPanel, h, n - h, cp, accumulate, static_cast<const T*>(nullptr),
                           static_cast<const T*>(nullptr), static_cast<const T*>(nullptr));
#else
        for (int64_t j = 0; j < n; ++j) {
            T acc = T(0);
            for (int64_t k = 0; k < K; ++k) acc += a[k] * panel[k * kPanel + j];
            cp[j] = accumulate ? cp[j] + acc : acc;
        }
#endif
    }
}

// The cache-blocked product: B is packed block by block by `pack(k0, kc, j0, nc, dst)` into
// NR-column slivers (zero beyond nc), A is read in place; each MR x NR tile is accumulated in
// registers and stored with bias and epilogue on the last K panel.
template <class T, class Pack>
inline void gemm_blocked(int64_t M, int64_t N, int64_t K, const T* A, int64_t rsa, int64_t csa, T* C, int64_t ldc,
                         bool accumulate, const T* row_bias, const T* col_bias, const Epilogue<T>& ep, T* work, const Pack& pack) {
    T* pb = work;
    T t[MR][NR];
    for (int64_t j0 = 0; j0 < N; j0 += NC) {
        const int64_t nc = std::min(NC, N - j0);
        for (int64_t k0 = 0; k0 < K; k0 += KC) {
            const int64_t kc = std::min(KC, K - k0);
            const bool acc = accumulate || k0 > 0;
            const bool last = k0 + kc >= K;
            pack(k0, kc, j0, nc, pb);
            for (int64_t jr = 0; jr < nc; jr += NR) {
                const int64_t nr = std::min(NR, nc - jr);
                for (int64_t i0 = 0; i0 < M; i0 += MR) {
                    const int64_t mr = std::min(MR, M - i0);
                    tile(kc, A + i0 * rsa + k0 * csa, rsa, csa, mr, pb + jr * kc, NR, t);
                    store_tile(t, C + i0 * ldc + j0 + jr, ldc, mr, nr, acc, last,
                               row_bias ? row_bias + i0 : nullptr, col_bias ? col_bias + j0 + jr : nullptr, ep,
                               ep.residual ? ep.residual + i0 * ldc + j0 + jr : nullptr);
                }
            }
        }
    }
}

// Few rows with B stored transposed (column j of B contiguous: rsb == 1, as for Gemm with
// transB = 1, PyTorch's Linear): each C[i, j] is a dot product of two contiguous vectors.
template <class T>
inline T dot(const T* a, const T* b, int64_t K) {
#if defined(__GNUC__) || defined(__clang__)
    typedef typename Vec<T>::type V;
    constexpr int64_t L = Vec<T>::kLanes;
    V acc0 = V{}, acc1 = V{};
    const int64_t body = K - K % (2 * L);
    for (int64_t k = 0; k < body; k += 2 * L) {
        V a0, a1, b0, b1;
        std::memcpy(&a0, a + k, sizeof(V));
        std::memcpy(&a1, a + k + L, sizeof(V));
        std::memcpy(&b0, b + k, sizeof(V));
        std::memcpy(&b1, b + k + L, sizeof(V));
        acc0 += a0 * b0;
        acc1 += a1 * b1;
    }
    acc0 += acc1;
    T sum = T(0);
    for (int64_t l = 0; l < L; ++l) sum += acc0[l];
    for (int64_t k = body; k < K; ++k) sum += a[k] * b[k];
    return sum;
#else
    T sum = T(0);
    for (int64_t k = 0; k < K; ++k) sum += a[k] * b[k];
    return sum;
#endif
}

template <class T>
inline void gemm_dot(int64_t M, int64_t N, int64_t K, const T* A, int64_t rsa, const T* B, int64_t csb, T* C, int64_t ldc,
                     bool accumulate, const T* row_bias, const T* col_bias, const Epilogue<T>& ep) {
    for (int64_t i = 0; i < M; ++i) {
        T* c = C + i * ldc;
        for (int64_t j = 0; j < N; ++j) {
            T v = dot(A + i * rsa, B + j * csb, K);
            if (accumulate) v += c[j];
            if (row_bias) v += row_bias[i];
            if (col_bias) v += col_bias[j];
            if (ep.residual) v += ep.residual[i * ldc + j];
            c[j] = v;
        }
        activate(c, N, ep.act, ep.alpha, ep.beta);
    }
}

// C[M,N] = [C +] A[M,K] * B[K,N] (+ row_bias[m]) (+ col_bias[n]), then the epilogue.
// A and B are addressed through row and column strides, so transposed operands cost nothing.
template <class T>
inline void gemm(int64_t M, int64_t N, int64_t K, const T* A, int64_t rsa, int64_t csa, const T* B, int64_t rsb,
                 int64_t csb, T* C, int64_t ldc, bool accumulate, const T* row_bias, const T* col_bias,
                 const Epilogue<T>& ep, T* work) {
    if (M <= 0 || N <= 0) return;
    if (K <= 0) {
        for (int64_t i = 0; i < M; ++i)
            for (int64_t j = 0; j < N; ++j) {
                T v = accumulate ? C[i * ldc + j] : T(0);
                if (row_bias) v += row_bias[i];
                if (col_bias) v += col_bias[j];
                C[i * ldc + j] = v;
            }
        epilogue(C, M, N, ldc, ep);
        return;
    }
    if (M <= 2 && csb == 1) {
        gemm_rows(M, N, K, A, rsa, csa, B, rsb, C, ldc, accumulate, row_bias, col_bias, ep);
        return;
    }
    if (M <= 2 && rsb == 1 && csa == 1) {
        gemm_dot(M, N, K, A, rsa, B, csb, C, ldc, accumulate, row_bias, col_bias, ep);
        return;
    }
    gemm_blocked(M, N, K, A, rsa, csa, C, ldc, accumulate, row_bias, col_bias, ep, work,
                 [&](int64_t k0, int64_t kc, int64_t j0, int64_t nc, T* dst) { pack_b(kc, nc, B + k0 * rsb + j0 * csb, rsb, csb, dst); });
}

// Integer and other non-floating types: a plain triple loop (exact, not tuned).
template <class T>
inline void gemm_plain(int64_t M, int64_t N, int64_t K, const T* A, int64_t rsa, int64_t csa, const T* B, int64_t rsb,
                       int64_t csb, T* C, int64_t ldc, bool accumulate) {
    for (int64_t i = 0; i < M; ++i)
        for (int64_t j = 0; j < N; ++j) {
            T acc = accumulate ? C[i * ldc + j] : T(0);
            for (int64_t k = 0; k < K; ++k) acc += A[i * rsa + k * csa] * B[k * rsb + j * csb];
            C[i * ldc + j] = acc;
        }
}

// One matrix product's arguments by name (the emitted code fills the fields it needs; the
// rest keep these defaults): C[M,N] = [C +] A[M,K] * B[K,N] (+ row_bias[m]) (+ col_bias[n]),
// then the epilogue, with A(i,k) at A[i*rsa + k*csa], B(k,j) at B[k*rsb + j*csb] and C(i,j) at
// C[i*ldc + j]. `work` is the packing buffer (CppNN.packElements elements; null when the
// product takes a path that packs nothing).
template <class T>
struct GemmArgs {
    int64_t M = 0, N = 0, K = 0;
    const T* A = nullptr;
    int64_t rsa = 0, csa = 1;
    const T* B = nullptr;
    int64_t rsb = 0, csb = 1;
    T* C = nullptr;
    int64_t ldc = 0;
    bool accumulate = false;
    const T* row_bias = nullptr;
    const T* col_bias = nullptr;
    Epilogue<T> epilogue{};
    T* work = nullptr;
};

// Forced inline (SOFIE_MATH): the product's sizes then reach gemm() as the constants the
// emitted code wrote, which lets the compiler inline and specialize it as it does for a call
// with literal arguments (without, a GNN's small products ran 2x slower).
template <class T>
SOFIE_MATH void gemm(const GemmArgs<T>& p) {
    gemm(p.M, p.N, p.K, p.A, p.rsa, p.csa, p.B, p.rsb, p.csb, p.C, p.ldc, p.accumulate, p.row_bias, p.col_bias, p.epilogue, p.work);
}

template <class T>
SOFIE_MATH void gemm_plain(const GemmArgs<T>& p) {
    gemm_plain(p.M, p.N, p.K, p.A, p.rsa, p.csa, p.B, p.rsb, p.csb, p.C, p.ldc, p.accumulate);
}

// Constant right operands (the weights of MatMul and Gemm) are stored by the emitter already
// packed, in slivers of kSliver columns whose K rows are consecutive: element (k, j) at
// P[(j / kSliver * K + k) * kSliver + j % kSliver], zero beyond N (CppEmitter.packedWeight).
// Nothing is packed per call, and each sliver streams through the cache in order.
constexpr int64_t kSliver = \#(maxNR);
static_assert(kSliver % NR == 0, "a packed sliver holds whole register tiles");

#if defined(__GNUC__) || defined(__clang__)
// Row a (K elements, stride csa) times S consecutive slivers from sliver s0: the S * kSliver
// sums in registers over the whole K loop, each summed in k order, then finished into row c.
template <int64_t S, class T>
inline void packed_row(int64_t N, int64_t K, const T* a, int64_t csa, const T* P, int64_t s0, T* c, bool accumulate,
                       const T* rb, const T* col_bias, const T* res) {
    typedef typename Vec<T>::type V;
    constexpr int64_t L = Vec<T>::kLanes;
    constexpr int64_t NV = kSliver / L;
    V acc[S][NV];
    _Pragma("GCC unroll 8") for (int64_t s = 0; s < S; ++s)
        _Pragma("GCC unroll 8") for (int64_t v = 0; v < NV; ++v) acc[s][v] = V{};
    const T* b[S];
    _Pragma("GCC unroll 8") for (int64_t s = 0; s < S; ++s) b[s] = P + (s0 + s) * K * kSliver;
    for (int64_t k = 0; k < K; ++k) {
        const T ak = a[k * csa];
        _Pragma("GCC unroll 8") for (int64_t s = 0; s < S; ++s)
            _Pragma("GCC unroll 8") for (int64_t v = 0; v < NV; ++v) {
                V bv;
                std::memcpy(&bv, b[s] + k * kSliver + v * L, sizeof(V));
                acc[s][v] += bv * ak;
            }
    }
    T out[S * kSliver];
    std::memcpy(out, acc, sizeof acc);
    const int64_t j0 = s0 * kSliver;
    finish_row(c, out, std::min(S * kSliver, N - j0), j0, accumulate, rb, col_bias, res);
}
#endif

// C = [C +] A * B with B packed by the emitter (p.B: the slivers); every other argument as for
// gemm(). One or two rows: each row against several slivers at once (8 vectors of sums in
// registers). More rows: the register tile over KC-deep panels of the slivers, MC rows of A at
// a time so that they stay in L2 while NC columns of slivers pass.
template <class T>
SOFIE_MATH void gemm_packed(const GemmArgs<T>& p) {
    const int64_t M = p.M, N = p.N, K = p.K;
    if (M <= 0 || N <= 0) return;
    if (K <= 0) {  // bias and epilogue only (B is not read)
        gemm(p);
        return;
    }
    const T* const P = p.B;
    if (M <= 2) {
        for (int64_t i = 0; i < M; ++i) {
            const T* a = p.A + i * p.rsa;
            T* c = p.C + i * p.ldc;
            const T* rb = p.row_bias ? p.row_bias + i : nullptr;
            const T* res = p.epilogue.residual ? p.epilogue.residual + i * p.ldc : nullptr;
#if defined(__GNUC__) || defined(__clang__)
            constexpr int64_t S = kSliver / Vec<T>::kLanes >= 8 ? 1 : 8 / (kSliver / Vec<T>::kLanes);
            const int64_t slivers = (N + kSliver - 1) / kSliver;
            int64_t s = 0;
            for (; s + S <= slivers; s += S) packed_row<S>(N, K, a, p.csa, P, s, c, p.accumulate, rb, p.col_bias, res);
            for (; s < slivers; ++s) packed_row<1>(N, K, a, p.csa, P, s, c, p.accumulate, rb, p.col_bias, res);
#else
            for (int64_t j = 0; j < N; ++j) {
                T acc = T(0);
                const T* b = P + (j / kSliver) * K * kSliver + j % kSliver;
                for (int64_t k = 0; k < K; ++k) acc += a[k * p.csa] * b[k * kSliver];
                finish_row(c, &acc, 1, j, p.accumulate, rb, p.col_bias, res);
            }
#endif
            activate(c, N, p.epilogue.act, p.epilogue.alpha, p.epilogue.beta);
        }
        return;
    }
    constexpr int64_t MC = 16 * MR;
    T t[MR][NR];
    for (int64_t j0 = 0; j0 < N; j0 += NC) {
        const int64_t jEnd = std::min(N, j0 + NC);
        for (int64_t k0 = 0; k0 < K; k0 += KC) {
            const int64_t kc = std::min(KC, K - k0);
            const bool acc = p.accumulate || k0 > 0;
            const bool last = k0 + kc >= K;
            for (int64_t ic = 0; ic < M; ic += MC) {
                const int64_t iEnd = std::min(M, ic + MC);
                for (int64_t j = j0; j < jEnd; j += NR) {
                    const int64_t nr = std::min(NR, N - j);
                    const T* b = P + ((j / kSliver) * K + k0) * kSliver + j % kSliver;
                    for (int64_t i0 = ic; i0 < iEnd; i0 += MR) {
                        const int64_t mr = std::min(MR, iEnd - i0);
                        tile(kc, p.A + i0 * p.rsa + k0 * p.csa, p.rsa, p.csa, mr, b, kSliver, t);
                        store_tile(t, p.C + i0 * p.ldc + j, p.ldc, mr, nr, acc, last, p.row_bias ? p.row_bias + i0 : nullptr,
                                   p.col_bias ? p.col_bias + j : nullptr, p.epilogue,
                                   p.epilogue.residual ? p.epilogue.residual + i0 * p.ldc + j : nullptr);
                    }
                }
            }
        }
    }
}

// Spatial geometry of a convolution or pooling window, in up to 3 dimensions (D, H, W);
// lower-rank ops use 1 for the missing leading dimensions.
struct Window {
    int64_t in[3], out[3], k[3], s[3], d[3], p[3];
};

// A convolution's product packs its B operand, the im2col matrix of one image,
// col[(c, kd, kh, kw), (od, oh, ow)], block by block straight from the image into the NR-column
// slivers pack_b writes, without ever forming the matrix (for a 3x3 convolution nine times the
// image, written to memory and read back on every call). pack_im2col writes the kc x nc block
// whose first row is k0 and first column j0, zero where the window reaches into the padding and
// beyond nc: each row of the block is gathered along whole output rows into a buffer that stays
// in L1, then dealt out to the slivers in NR-element moves.
template <class T>
inline void pack_im2col(const T* x, const Window& w, int64_t k0, int64_t kc, int64_t j0, int64_t nc, T* dst) {
    const int64_t outW = w.out[2], outHW = w.out[1] * outW;
    const int64_t planeSize = w.in[0] * w.in[1] * w.in[2];
    const int64_t slivers = (nc + NR - 1) / NR;
    T row[NC + NR];
    for (int64_t j = nc; j < slivers * NR; ++j) row[j] = T(0);
    // The block's first column as (od, oh, ow): the runs along output rows start there for
    // every k and step without divisions (a small block in a small image is a few elements
    // per run, where a division per run cost as much as the product).
    const int64_t od0 = j0 / outHW, oh0 = j0 % outHW / outW, ow00 = j0 % outW;
    // (c, kd, kh, kw) of row k0, stepped along with the row.
    int64_t kw = k0 % w.k[2], kh = k0 / w.k[2] % w.k[1], kd = k0 / (w.k[2] * w.k[1]) % w.k[0];
    int64_t c = k0 / (w.k[2] * w.k[1] * w.k[0]);
    for (int64_t k = 0; k < kc; ++k) {
        const T* const plane = x + c * planeSize;
        // Output columns whose input column is inside the row: [lo, hi) (padding elsewhere).
        const int64_t off = kw * w.d[2] - w.p[2];
        int64_t lo, hi;
        if (w.s[2] == 1) {
            lo = off < 0 ? -off : 0;
            hi = w.in[2] - off;
        } else {
            lo = off < 0 ? (-off + w.s[2] - 1) / w.s[2] : 0;
            hi = w.in[2] - off <= 0 ? 0 : (w.in[2] - off + w.s[2] - 1) / w.s[2];
        }
        lo = std::min(lo, outW);
        hi = std::max(lo, std::min(hi, outW));
        const int64_t idk = kd * w.d[0] - w.p[0], ihk = kh * w.d[1] - w.p[1];
        int64_t od = od0, oh = oh0, ow0 = ow00;
        for (int64_t j = 0; j < nc;) {
            const int64_t ow1 = std::min(outW, ow0 + (nc - j));  // this output row's end in the block
            T* const r = row + j;  // r[ow - ow0] is column (od, oh, ow)
            const int64_t id = od * w.s[0] + idk;
            const int64_t ih = oh * w.s[1] + ihk;
            if (id < 0 || id >= w.in[0] || ih < 0 || ih >= w.in[1]) {
                for (int64_t ow = ow0; ow < ow1; ++ow) r[ow - ow0] = T(0);
            } else {
                // Input element of column ow: plane[start + ow * stride] (indices, so that no
                // pointer is formed outside the tensor or the buffer).
                const int64_t start = (id * w.in[1] + ih) * w.in[2] + off;
                const int64_t a = std::max(ow0, std::min(lo, ow1)), b = std::max(a, std::min(hi, ow1));
                for (int64_t ow = ow0; ow < a; ++ow) r[ow - ow0] = T(0);
                if (w.s[2] == 1) {
                    for (int64_t ow = a; ow < b; ++ow) r[ow - ow0] = plane[start + ow];
                } else {
                    for (int64_t ow = a; ow < b; ++ow) r[ow - ow0] = plane[start + ow * w.s[2]];
                }
                for (int64_t ow = b; ow < ow1; ++ow) r[ow - ow0] = T(0);
            }
            j += ow1 - ow0;
            ow0 = 0;
            if (++oh == w.out[1]) { oh = 0; ++od; }
        }
        for (int64_t q = 0; q < slivers; ++q) std::memcpy(dst + (q * kc + k) * NR, row + q * NR, sizeof(T) * NR);
        if (++kw == w.k[2]) {
            kw = 0;
            if (++kh == w.k[1]) {
                kh = 0;
                if (++kd == w.k[0]) { kd = 0; ++c; }
            }
        }
    }
}

// One image's convolution as a product: C[M, out] = A[M, K] * im2col(B), with B the image
// (K = channels x kernel taps, every other GemmArgs field as for gemm); `work` holds one packed
// block (CppNN.convPackElements).
template <class T>
SOFIE_MATH void gemm_conv(const GemmArgs<T>& p, const Window& win) {
    if (p.M <= 0 || p.N <= 0) return;
    if (p.K <= 0) {  // no input channels: bias and epilogue only (B is not read)
        gemm(p);
        return;
    }
    gemm_blocked(p.M, p.N, p.K, p.A, p.rsa, p.csa, p.C, p.ldc, p.accumulate, p.row_bias, p.col_bias, p.epilogue, p.work,
                 [&](int64_t k0, int64_t kc, int64_t j0, int64_t nc, T* dst) { pack_im2col(p.B, win, k0, kc, j0, nc, dst); });
}

// Direct convolution for few output channels: with M small, gemm_conv's packed im2col
// blocks are reused by only M rows and packing them costs as much as the product. Here the
// image is copied once into zero-padded rows (`work`: H x C rows of conv_rows_width(w)
// elements, row ih of every channel together) and each output row is computed for MB channels x
// U vectors of columns at a time, the sums over (c, kh, kw) in that order kept in registers.
// A row is split by the horizontal stride sw into sw phases of conv_rows_phase(w) elements:
// element t of phase q holds padded column t * sw + q (input column t * sw + q - pad), so that
// tap kw of output column j reads phase (kw * dw) % sw at j + (kw * dw) / sw, consecutive
// elements for consecutive outputs (with sw = 1, one phase: the padded row).
// The emitter uses it for one group, 1-D and 2-D windows, and stores the weights blocked:
// wp[((m / MB * C + c) * KH + kh) * KW + kw) * MB + m % MB], zero for m >= M. Rows of the
// kernel outside the image are skipped; bias is added to the sum and then the epilogue
// (residual, activation) runs per output row, as in gemm_conv.
template <class T, int64_t U>
constexpr int64_t conv_rows_phase(const Window& w) {
#if defined(__GNUC__) || defined(__clang__)
    constexpr int64_t L = Vec<T>::kLanes;
#else
    constexpr int64_t L = 1;
#endif
    return (w.out[2] + U * L - 1) / (U * L) * (U * L) + (w.k[2] - 1) * w.d[2] / w.s[2];
}
template <class T, int64_t U>
constexpr int64_t conv_rows_width(const Window& w) { return w.s[2] * conv_rows_phase<T, U>(w); }
template <class T, int64_t U>
constexpr int64_t conv_rows_elements(const Window& w, int64_t C) { return C * w.in[1] * conv_rows_width<T, U>(w); }

template <class T, int64_t MB, int64_t U>
inline void conv_rows(int64_t M, int64_t C, const T* x, const T* wp, const T* bias, const Window& w, T* y,
                      const Epilogue<T>& ep, T* work) {
#if defined(__GNUC__) || defined(__clang__)
    typedef typename Vec<T>::type V;
    constexpr int64_t L = Vec<T>::kLanes;
#else
    typedef T V;
    constexpr int64_t L = 1;
#endif
    constexpr int64_t UL = U * L;
    const int64_t H = w.in[1], W = w.in[2], OH = w.out[1], OW = w.out[2], KH = w.k[1], KW = w.k[2], sw = w.s[2];
    const int64_t PH = conv_rows_phase<T, U>(w), PW = sw * PH, blocks = (OW + UL - 1) / UL, KK = KH * KW;
    for (int64_t c = 0; c < C; ++c) {
        for (int64_t ih = 0; ih < H; ++ih) {
            const T* const src = x + (c * H + ih) * W;
            for (int64_t q = 0; q < sw; ++q) {
                T* const d = work + (ih * C + c) * PW + q * PH;
                // Element t is input column t * sw + q - pad: inside the row for t in [a, b)
                // (indices, no pointer outside the image).
                const int64_t first = q - w.p[2];
                const int64_t a = std::min(PH, first >= 0 ? int64_t(0) : (-first + sw - 1) / sw);
                const int64_t b = std::max(a, std::min(PH, W - first <= 0 ? int64_t(0) : (W - first + sw - 1) / sw));
                for (int64_t t = 0; t < a; ++t) d[t] = T(0);
                if (sw == 1) {
                    for (int64_t t = a; t < b; ++t) d[t] = src[t + first];
                } else {
                    for (int64_t t = a; t < b; ++t) d[t] = src[t * sw + first];
                }
                for (int64_t t = b; t < PH; ++t) d[t] = T(0);
            }
        }
    }
    for (int64_t m0 = 0; m0 < M; m0 += MB) {
        const T* const wb = wp + (m0 / MB) * C * KK * MB;
        const int64_t mr = std::min(MB, M - m0);
        for (int64_t oh = 0; oh < OH; ++oh) {
            for (int64_t ob = 0; ob < blocks; ++ob) {
                V acc[MB][U];
                for (int64_t m = 0; m < MB; ++m)
                    for (int64_t u = 0; u < U; ++u) acc[m][u] = V{};
                for (int64_t c = 0; c < C; ++c) {
                    for (int64_t kh = 0; kh < KH; ++kh) {
                        const int64_t ih = oh * w.s[1] + kh * w.d[1] - w.p[1];
                        if (ih < 0 || ih >= H) continue;
                        const T* const row = work + (ih * C + c) * PW + ob * UL;
                        const T* const wk = wb + (c * KK + kh * KW) * MB;
                        for (int64_t kw = 0; kw < KW; ++kw) {
                            const int64_t tap = kw * w.d[2];
                            const T* const at = row + (tap % sw) * PH + tap / sw;
                            V xv[U];
                            for (int64_t u = 0; u < U; ++u) std::memcpy(&xv[u], at + u * L, sizeof(V));
                            // A scalar times a vector: one broadcast load per weight (a
                            // splat written as V{} + w also adds the zero, per weight).
                            for (int64_t m = 0; m < MB; ++m) {
                                const T wm = wk[kw * MB + m];
                                for (int64_t u = 0; u < U; ++u) acc[m][u] += xv[u] * wm;
                            }
                        }
                    }
                }
                for (int64_t m = 0; m < mr; ++m) {
                    T* const o = y + ((m0 + m) * OH + oh) * OW + ob * UL;
                    const T bm = bias ? bias[m0 + m] : T(0);
                    for (int64_t u = 0; u < U; ++u) {
                        const int64_t n = std::min(L, OW - ob * UL - u * L);
                        if (n <= 0) break;
                        const V v = acc[m][u] + bm;
                        std::memcpy(o + u * L, &v, sizeof(T) * n);
                    }
                }
            }
            if (ep.residual || ep.act != Act::None) {
                for (int64_t m = 0; m < mr; ++m) {
                    const int64_t at = ((m0 + m) * OH + oh) * OW;
                    if (ep.residual)
                        for (int64_t j = 0; j < OW; ++j) y[at + j] += ep.residual[at + j];
                    activate(y + at, OW, ep.act, ep.alpha, ep.beta);
                }
            }
        }
    }
}

// Convolution with few output pixels (the deep layers of small images): as gemm_conv the output
// is M rows of P columns, with P below NR mostly padding of the register tiles, and the im2col
// blocks are packed on every call. Here the product runs the other way round: the P x K im2col
// rows of the image (gathered into `work`) times the weight's transpose, K x M, which the
// emitter stores packed in slivers as for a constant MatMul weight (gemm_packed); the P x M
// result is then transposed into y with the residual and the activation. `work` holds
// conv_pixels_elements(w, C, M) elements.
template <class T>
constexpr int64_t conv_pixels_elements(const Window& w, int64_t C, int64_t M) {
    return w.out[0] * w.out[1] * w.out[2] * (C * w.k[0] * w.k[1] * w.k[2] + M);
}
template <class T>
SOFIE_MATH void conv_pixels(int64_t M, int64_t C, const T* x, const T* wp, const T* bias, const Window& w, T* y,
                            const Epilogue<T>& ep, T* work) {
    const int64_t P = w.out[0] * w.out[1] * w.out[2], K = C * w.k[0] * w.k[1] * w.k[2];
    T* const a = work;
    T* const c = work + P * K;
    for (int64_t p = 0; p < P; ++p) {
        const int64_t od = p / (w.out[1] * w.out[2]), oh = p / w.out[2] % w.out[1], ow = p % w.out[2];
        T* const row = a + p * K;
        int64_t k = 0;
        for (int64_t ci = 0; ci < C; ++ci)
            for (int64_t kd = 0; kd < w.k[0]; ++kd) {
                const int64_t id = od * w.s[0] + kd * w.d[0] - w.p[0];
                for (int64_t kh = 0; kh < w.k[1]; ++kh) {
                    const int64_t ih = oh * w.s[1] + kh * w.d[1] - w.p[1];
                    const bool inside = id >= 0 && id < w.in[0] && ih >= 0 && ih < w.in[1];
                    const int64_t base = ((ci * w.in[0] + id) * w.in[1] + ih) * w.in[2];
                    for (int64_t kw = 0; kw < w.k[2]; ++kw, ++k) {
                        const int64_t iw = ow * w.s[2] + kw * w.d[2] - w.p[2];
                        row[k] = inside && iw >= 0 && iw < w.in[2] ? x[base + iw] : T(0);
                    }
                }
            }
    }
    GemmArgs<T> g;
    g.M = P; g.N = M; g.K = K;
    g.A = a; g.rsa = K;
    g.B = wp;
    g.C = c; g.ldc = M;
    g.col_bias = bias;
    gemm_packed(g);
    for (int64_t m = 0; m < M; ++m) {
        T* const ym = y + m * P;
        if (ep.residual) {
            for (int64_t p = 0; p < P; ++p) ym[p] = c[p * M + m] + ep.residual[m * P + p];
        } else {
            for (int64_t p = 0; p < P; ++p) ym[p] = c[p * M + m];
        }
    }
    activate(y, M * P, ep.act, ep.alpha, ep.beta);
}

// Depthwise convolution of one image: output channel o reads only input channel o / mult
// (group = C, M = C * mult), directly, without im2col. For each output row, every input row
// under the kernel is copied once into a zero-padded buffer, so that each tap adds a shifted
// slice of it to the row's accumulators with no bounds checks (whole vectors when the stride
// is 1). The emitter uses this when a row has at most kDepthwiseMaxRow outputs; `work` holds
// kDepthwiseWork elements (the accumulators and the padded row).
constexpr int64_t kDepthwiseMaxRow = \#(depthwiseMaxRow);
constexpr int64_t kDepthwiseRowBuffer = \#(depthwiseRowBuffer);  // the padded input row
constexpr int64_t kDepthwiseWork = \#(depthwiseWork);
template <class T>
inline void depthwise_conv(int64_t M, int64_t mult, const T* x, const T* w, const T* bias, const Window& win, T* y,
                           const Epilogue<T>& ep, T* work) {
    const int64_t inN = win.in[0] * win.in[1] * win.in[2];
    const int64_t outHW = win.out[1] * win.out[2], outN = win.out[0] * outHW;
    const int64_t kvol = win.k[0] * win.k[1] * win.k[2];
    const int64_t W = win.out[2], s = win.s[2], d = win.d[2], p = win.p[2], in = win.in[2];
    constexpr int64_t L = 64 / sizeof(T);
    const int64_t Wp = (W + L - 1) / L * L;                // outputs computed per row (a multiple of L)
    const int64_t need = (Wp - 1) * s + (win.k[2] - 1) * d + 1;  // padded input row length read
    T* const acc = work;
    T* const xp = work + kDepthwiseMaxRow + 64;
    for (int64_t o = 0; o < M; ++o) {
        const T* xc = x + (o / mult) * inN;
        const T* wo = w + o * kvol;
        const T b = bias ? bias[o] : T(0);
        for (int64_t od = 0; od < win.out[0]; ++od)
            for (int64_t oh = 0; oh < win.out[1]; ++oh) {
                for (int64_t j = 0; j < Wp; ++j) acc[j] = b;
                for (int64_t kd = 0; kd < win.k[0]; ++kd) {
                    const int64_t id = od * win.s[0] + kd * win.d[0] - win.p[0];
                    if (id < 0 || id >= win.in[0]) continue;
                    for (int64_t kh = 0; kh < win.k[1]; ++kh) {
                        const int64_t ih = oh * win.s[1] + kh * win.d[1] - win.p[1];
                        if (ih < 0 || ih >= win.in[1]) continue;
                        // xp[i] = x[row][i - p], zero outside the row.
                        const T* xr = xc + (id * win.in[1] + ih) * in;
                        for (int64_t i = 0; i < need; ++i) {
                            const int64_t iw = i - p;
                            xp[i] = iw >= 0 && iw < in ? xr[iw] : T(0);
                        }
                        const T* wk = wo + (kd * win.k[1] + kh) * win.k[2];
                        for (int64_t kw = 0; kw < win.k[2]; ++kw) {
                            const T wv = wk[kw];
                            const T* src = xp + kw * d;
                            if (s == 1) {
                                for (int64_t j = 0; j < Wp; ++j) acc[j] += wv * src[j];
                            } else {
                                for (int64_t j = 0; j < Wp; ++j) acc[j] += wv * src[j * s];
                            }
                        }
                    }
                }
                T* yr = y + o * outN + od * outHW + oh * W;
                if (ep.residual) {
                    const T* rr = ep.residual + o * outN + od * outHW + oh * W;
                    for (int64_t j = 0; j < W; ++j) yr[j] = acc[j] + rr[j];
                } else {
                    for (int64_t j = 0; j < W; ++j) yr[j] = acc[j];
                }
                activate(yr, W, ep.act, ep.alpha, ep.beta);
            }
    }
}

// Depthwise convolution in 2-D (and 1-D) of one image, the faster form: each input channel is
// copied once into a zero-padded plane whose rows are split by the horizontal stride into
// `sw` phases (column t*sw + q of a padded row goes to phase q at t), so every tap of every
// output row reads consecutive elements; sums stay in registers over all KH x KW taps.
// `work` holds depthwise_plane_elements(win) elements (CppNN sizes it with the same formula).
template <class T>
constexpr int64_t depthwise_plane_elements(const Window& win) {
    constexpr int64_t LW = 64 / sizeof(T);  // the widest vector: any target's lanes divide it
    const int64_t wv = (win.out[2] + LW - 1) / LW * LW;
    const int64_t need = (wv - 1) * win.s[2] + (win.k[2] - 1) * win.d[2] + 1;
    const int64_t phase = (need + win.s[2] - 1) / win.s[2];
    const int64_t rows = (win.out[1] - 1) * win.s[1] + (win.k[1] - 1) * win.d[1] + 1;
    return rows * win.s[2] * phase;
}
#if defined(__GNUC__) || defined(__clang__)
// U vectors of outputs from column j0 in each of R consecutive output rows (plane rows
// rowStride apart, output rows OW apart), the sums in registers over all taps. Wide rows use
// one row of several vectors; narrow rows several rows of one vector (independent sums
// instead of one chain of KH x KW dependent FMAs).
template <int64_t R, int64_t U, class T>
inline void depthwise_tile(const T* rows0, int64_t rowStride, int64_t rowStep, int64_t KH, int64_t KW, int64_t dw, int64_t sw,
                           int64_t phase, const T* wo, T b, int64_t j0, int64_t OW, T* yr, const Epilogue<T>* act) {
    typedef typename Vec<T>::type V;
    constexpr int64_t L = Vec<T>::kLanes;
    V acc[R][U];
    _Pragma("GCC unroll 4") for (int64_t r = 0; r < R; ++r)
        _Pragma("GCC unroll 4") for (int64_t u = 0; u < U; ++u) acc[r][u] = V{} + b;
    for (int64_t kh = 0; kh < KH; ++kh) {
        const T* prow = rows0 + kh * rowStep + j0;
        int64_t q = 0, t = 0;  // tap kw reads phase q at column t: kw * dw == t * sw + q
        for (int64_t kw = 0; kw < KW; ++kw, q += dw) {
            while (q >= sw) { q -= sw; ++t; }
            const T* src = prow + q * phase + t;
            const T wv = wo[kh * KW + kw];
            _Pragma("GCC unroll 4") for (int64_t r = 0; r < R; ++r)
                _Pragma("GCC unroll 4") for (int64_t u = 0; u < U; ++u) {
                    V xv;
                    std::memcpy(&xv, src + r * rowStride + u * L, sizeof(V));
                    acc[r][u] += xv * wv;
                }
        }
    }
    if constexpr (std::is_same<T, float>::value) {
        if (act)
            _Pragma("GCC unroll 4") for (int64_t r = 0; r < R; ++r)
                _Pragma("GCC unroll 4") for (int64_t u = 0; u < U; ++u) acc[r][u] = act_vec(acc[r][u], act->act, act->alpha, act->beta);
    }
    const int64_t n = std::min(U * L, OW - j0);
    for (int64_t r = 0; r < R; ++r) {
        T out[U * L];
        std::memcpy(out, acc[r], sizeof(V) * U);
        std::memcpy(yr + r * OW + j0, out, sizeof(T) * n);
    }
}
#endif
template <class T>
inline void depthwise_plane(int64_t M, int64_t mult, const T* x, const T* w, const T* bias, const Window& win, T* y,
                            const Epilogue<T>& ep, T* work) {
    constexpr int64_t LW = 64 / sizeof(T);
    const int64_t H = win.in[1], Win = win.in[2], OH = win.out[1], OW = win.out[2];
    const int64_t KH = win.k[1], KW = win.k[2], sh = win.s[1], sw = win.s[2], dh = win.d[1], dw = win.d[2];
    const int64_t ph = win.p[1], pw = win.p[2];
    const int64_t wv = (OW + LW - 1) / LW * LW;
    const int64_t need = (wv - 1) * sw + (KW - 1) * dw + 1;
    const int64_t phase = (need + sw - 1) / sw;
    const int64_t rows = (OH - 1) * sh + (KH - 1) * dh + 1;
    T* const plane = work;
#if defined(__GNUC__) || defined(__clang__)
    // Without a residual, the tiles apply select-type activations to their sums before storing
    // them (every output element is stored by a tile here; float only).
    const Epilogue<T>* fused = !ep.residual && select_act<T>(ep.act) ? &ep : nullptr;
#else
    const Epilogue<T>* fused = nullptr;
#endif
    for (int64_t o = 0; o < M; ++o) {
        if (o % mult == 0) {
            const T* xc = x + (o / mult) * H * Win;
            for (int64_t r = 0; r < rows; ++r) {
                const int64_t ih = r - ph;
                if (sw == 2 && ih >= 0 && ih < H) {
                    // Both phases in one pass (a constant stride the compiler vectorizes).
                    T* d0 = plane + r * 2 * phase;
                    T* d1 = d0 + phase;
                    const T* src = xc + ih * Win - pw;  // padded column c is src[c]
                    auto at = [&](int64_t c) { return c >= pw && c < Win + pw ? src[c] : T(0); };
                    const int64_t a = std::min(phase, (pw + 1) / 2);                  // from here 2t >= pw
                    const int64_t b = std::max(a, std::min(phase, (Win + pw) / 2));  // and 2t + 1 < Win + pw before here
                    for (int64_t t = 0; t < a; ++t) { d0[t] = at(2 * t); d1[t] = at(2 * t + 1); }
                    for (int64_t t = a; t < b; ++t) {
                        d0[t] = src[2 * t];
                        d1[t] = src[2 * t + 1];
                    }
                    for (int64_t t = b; t < phase; ++t) { d0[t] = at(2 * t); d1[t] = at(2 * t + 1); }
                    continue;
                }
                for (int64_t q = 0; q < sw; ++q) {
                    T* dst = plane + (r * sw + q) * phase;
                    // Columns t with 0 <= t*sw + q - pw < Win are inside the image; zero elsewhere.
                    const int64_t lo = ih < 0 || ih >= H ? phase : std::min(phase, std::max<int64_t>(0, (pw - q + sw - 1) / sw));
                    const int64_t hi = ih < 0 || ih >= H ? phase : std::max(lo, std::min(phase, (Win + pw - q + sw - 1) / sw));
                    for (int64_t t = 0; t < lo; ++t) dst[t] = T(0);
                    const T* src = xc + ih * Win + q - pw;
                    if (sw == 1) {
                        if (hi > lo) std::memcpy(dst + lo, src + lo, sizeof(T) * (hi - lo));
                    } else {
                        for (int64_t t = lo; t < hi; ++t) dst[t] = src[t * sw];
                    }
                    for (int64_t t = hi; t < phase; ++t) dst[t] = T(0);
                }
            }
        }
        const T* wo = w + o * KH * KW;
        const T b = bias ? bias[o] : T(0);
        int64_t oh0 = 0;  // output rows done in groups
#if defined(__GNUC__) || defined(__clang__)
        // Rows of at most 2 vectors: 4 output rows at once, so that 4 to 8 independent sums
        // hide the FMA latency (one row alone would be one or two chains of KH x KW dependent
        // FMAs); wider rows one by one below, in tiles of 4, 2 and 1 vectors.
        if (OW <= 2 * Vec<T>::kLanes) {
            const int64_t rowStride = sh * sw * phase, rowStep = dh * sw * phase;
            for (; oh0 + 4 <= OH; oh0 += 4) {
                const T* r0 = plane + oh0 * rowStride;
                T* y0 = y + (o * OH + oh0) * OW;
                if (OW > Vec<T>::kLanes) depthwise_tile<4, 2>(r0, rowStride, rowStep, KH, KW, dw, sw, phase, wo, b, 0, OW, y0, fused);
                else depthwise_tile<4, 1>(r0, rowStride, rowStep, KH, KW, dw, sw, phase, wo, b, 0, OW, y0, fused);
            }
        }
#endif
        for (int64_t oh = oh0; oh < OH; ++oh) {
            T* yr = y + (o * OH + oh) * OW;
            const T* rows0 = plane + oh * sh * sw * phase;
            const int64_t rowStep = dh * sw * phase;
            int64_t j0 = 0;
#if defined(__GNUC__) || defined(__clang__)
            constexpr int64_t L = Vec<T>::kLanes;
            for (; j0 + 4 * L <= OW; j0 += 4 * L) depthwise_tile<1, 4>(rows0, 0, rowStep, KH, KW, dw, sw, phase, wo, b, j0, OW, yr, fused);
            if (j0 + 2 * L <= OW) { depthwise_tile<1, 2>(rows0, 0, rowStep, KH, KW, dw, sw, phase, wo, b, j0, OW, yr, fused); j0 += 2 * L; }
            for (; j0 < OW; j0 += L) depthwise_tile<1, 1>(rows0, 0, rowStep, KH, KW, dw, sw, phase, wo, b, j0, OW, yr, fused);
#else
            for (; j0 < OW; ++j0) {
                T acc = b;
                for (int64_t kh = 0; kh < KH; ++kh)
                    for (int64_t kw = 0; kw < KW; ++kw) {
                        const int64_t off = kw * dw;
                        acc += rows0[kh * rowStep + (off % sw) * phase + off / sw + j0] * wo[kh * KW + kw];
                    }
                yr[j0] = acc;
            }
#endif
        }
        // Residual and activation over the channel's output plane.
        T* yo = y + o * OH * OW;
        if (ep.residual) {
            const T* rr = ep.residual + o * OH * OW;
            for (int64_t j = 0; j < OH * OW; ++j) yo[j] += rr[j];
        }
        if (!fused) activate(yo, OH * OW, ep.act, ep.alpha, ep.beta);
    }
}

// col2im for ConvTranspose: adds col[(c, kd, kh, kw), (id, ih, iw)] into y (C channels of w.out).
// Here w.in is the transposed conv's input (the columns' spatial size) and w.out its output.
template <class T>
inline void col2im_add(const T* col, int64_t C, const Window& w, T* y) {
    const int64_t inN = w.in[0] * w.in[1] * w.in[2];
    for (int64_t c = 0; c < C; ++c)
        for (int64_t kd = 0; kd < w.k[0]; ++kd)
            for (int64_t kh = 0; kh < w.k[1]; ++kh)
                for (int64_t kw = 0; kw < w.k[2]; ++kw) {
                    const T* row = col + (((c * w.k[0] + kd) * w.k[1] + kh) * w.k[2] + kw) * inN;
                    for (int64_t i0 = 0; i0 < w.in[0]; ++i0) {
                        const int64_t o0 = i0 * w.s[0] + kd * w.d[0] - w.p[0];
                        if (o0 < 0 || o0 >= w.out[0]) continue;
                        for (int64_t i1 = 0; i1 < w.in[1]; ++i1) {
                            const int64_t o1 = i1 * w.s[1] + kh * w.d[1] - w.p[1];
                            if (o1 < 0 || o1 >= w.out[1]) continue;
                            for (int64_t i2 = 0; i2 < w.in[2]; ++i2) {
                                const int64_t o2 = i2 * w.s[2] + kw * w.d[2] - w.p[2];
                                if (o2 < 0 || o2 >= w.out[2]) continue;
                                y[((c * w.out[0] + o0) * w.out[1] + o1) * w.out[2] + o2] +=
                                    row[(i0 * w.in[1] + i1) * w.in[2] + i2];
                            }
                        }
                    }
                }
}

enum class Pool { Max, Avg, AvgIncludePad, Lp };

// Pools one channel plane; for Max also writes flat argmax indices when idx is non-null.
template <class T>
inline void pool(const T* x, const Window& w, Pool kind, double p, T* y, int64_t* idx, int64_t idxBase) {
    for (int64_t o0 = 0; o0 < w.out[0]; ++o0)
        for (int64_t o1 = 0; o1 < w.out[1]; ++o1)
            for (int64_t o2 = 0; o2 < w.out[2]; ++o2) {
                double acc = kind == Pool::Max ? -std::numeric_limits<double>::infinity() : 0.0;
                int64_t count = 0, best = -1;
                for (int64_t k0 = 0; k0 < w.k[0]; ++k0) {
                    const int64_t i0 = o0 * w.s[0] + k0 * w.d[0] - w.p[0];
                    for (int64_t k1 = 0; k1 < w.k[1]; ++k1) {
                        const int64_t i1 = o1 * w.s[1] + k1 * w.d[1] - w.p[1];
                        for (int64_t k2 = 0; k2 < w.k[2]; ++k2) {
                            const int64_t i2 = o2 * w.s[2] + k2 * w.d[2] - w.p[2];
                            const bool inside = i0 >= 0 && i0 < w.in[0] && i1 >= 0 && i1 < w.in[1] && i2 >= 0 && i2 < w.in[2];
                            if (!inside) {
                                // Padding positions count only for count_include_pad, and only
                                // inside the padded extent.
                                if (kind == Pool::AvgIncludePad && i0 < w.in[0] + w.p[0] && i1 < w.in[1] + w.p[1] &&
                                    i2 < w.in[2] + w.p[2])
                                    ++count;
                                continue;
                            }
                            const int64_t flat = (i0 * w.in[1] + i1) * w.in[2] + i2;
                            const double v = double(x[flat]);
                            if (kind == Pool::Max) {
                                if (v > acc || best < 0) { acc = v; best = flat; }
                            } else if (kind == Pool::Lp) {
                                acc += std::pow(std::fabs(v), p);
                            } else {
                                acc += v;
                            }
                            ++count;
                        }
                    }
                }
                const int64_t o = (o0 * w.out[1] + o1) * w.out[2] + o2;
                if (kind == Pool::Avg || kind == Pool::AvgIncludePad) acc = count > 0 ? acc / double(count) : 0.0;
                if (kind == Pool::Lp) acc = std::pow(acc, 1.0 / p);
                y[o] = T(acc);
                if (idx) idx[o] = idxBase + best;
            }
}

// Faster 2-D max pooling for float-like types without dilation or index output.
template <class T>
inline void max_pool2d(const T* x, const Window& w, T* y) {
    for (int64_t oh = 0; oh < w.out[1]; ++oh) {
        const int64_t h0 = oh * w.s[1] - w.p[1];
        const int64_t hs = std::max<int64_t>(h0, 0), he = std::min<int64_t>(h0 + w.k[1], w.in[1]);
        for (int64_t ow = 0; ow < w.out[2]; ++ow) {
            const int64_t w0 = ow * w.s[2] - w.p[2];
            const int64_t ws = std::max<int64_t>(w0, 0), we = std::min<int64_t>(w0 + w.k[2], w.in[2]);
            T m = -std::numeric_limits<T>::infinity();
            for (int64_t h = hs; h < he; ++h)
                for (int64_t ww = ws; ww < we; ++ww) m = std::max(m, x[h * w.in[2] + ww]);
            y[oh * w.out[2] + ow] = m;
        }
    }
}

// Reads a whole binary file into dst; returns false if it is missing or of the wrong size.
inline bool read_file(const std::string& path, void* dst, std::size_t bytes) {
    std::ifstream f(path, std::ios::binary | std::ios::ate);
    if (!f) return false;
    if (static_cast<std::size_t>(f.tellg()) != bytes) return false;
    f.seekg(0);
    return static_cast<bool>(f.read(static_cast<char*>(dst), static_cast<std::streamsize>(bytes)));
}

// ONNX Attention (opsets 23-25), computed directly: for each (batch, query head, query row)
// the additive bias row (mask, causal frontier, sliding window, padding; -inf = not
// attended), the scores (Q and K each scaled by sqrt(scale) as the input type rounds it, as
// the spec's graph does), softcap, the softmax (a row with no attended key gives zeros), and
// the probability-weighted sum of V's rows. Query head h reads key/value head
// h / (q_heads / kv_heads). Strides in elements over (batch, head, row); rows contiguous.
struct AttentionParams {
    std::int64_t batch, q_heads, kv_heads, q_len, kv_len, head, v_head;  // kv_len: every key, the cache's too
    std::int64_t q_stride[3], k_stride[3], v_stride[3], y_stride[3];
    std::int64_t mask_stride[3], mask_len;  // (batch, head, query row); keys at stride 1, those past mask_len masked
    std::int64_t past_len;                  // keys before the query block (when no nonpad_kv_seqlen)
    double scale_root, softcap;
    int causal, left_window, right_window;
    int qk_mode;                            // what qk receives: 0 scores, 1 after softcap, 2 + bias, 3 probabilities
};

template <class T, class M>
void attention(const AttentionParams& p, const T* q, const T* k, const T* v, const M* mask, const std::int64_t* nonpad,
               T* y, T* qk, void* work) {
    const double neg_inf = -std::numeric_limits<double>::infinity();
    // Workspace: the bias row (double), Q and K of one head scaled, the scores of one head,
    // then the GEMM packing buffer.
    double* const bias = static_cast<double*>(work);
    T* const qs = reinterpret_cast<T*>(bias + p.kv_len);
    T* const ks = qs + p.q_len * p.head;
    T* const sc = ks + p.kv_len * p.head;
    T* const pack = sc + p.q_len * p.kv_len;
    const std::int64_t group = p.q_heads / p.kv_heads;
    const T root = static_cast<T>(p.scale_root);
    const Epilogue<T> none{};
    for (std::int64_t b = 0; b < p.batch; ++b) {
        const std::int64_t offset = nonpad ? nonpad[b] - p.q_len : p.past_len;
        for (std::int64_t h = 0; h < p.q_heads; ++h) {
            const std::int64_t hk = h / group;
            // Q and K scaled by sqrt(scale) each, rounded to T (the spec's graph), then Q K^T by GEMM.
            for (std::int64_t i = 0; i < p.q_len; ++i) {
                const T* const row = q + b * p.q_stride[0] + h * p.q_stride[1] + i * p.q_stride[2];
                for (std::int64_t d = 0; d < p.head; ++d) qs[i * p.head + d] = static_cast<T>(row[d] * root);
            }
            for (std::int64_t j = 0; j < p.kv_len; ++j) {
                const T* const row = k + b * p.k_stride[0] + hk * p.k_stride[1] + j * p.k_stride[2];
                for (std::int64_t d = 0; d < p.head; ++d) ks[j * p.head + d] = static_cast<T>(row[d] * root);
            }
            gemm<T>(p.q_len, p.kv_len, p.head, qs, p.head, 1, ks, 1, p.head, sc, p.kv_len, false, nullptr, nullptr, none, pack);
            for (std::int64_t i = 0; i < p.q_len; ++i) {
                T* const srow = sc + i * p.kv_len;
                T* const qkrow = qk ? qk + ((b * p.q_heads + h) * p.q_len + i) * p.kv_len : nullptr;
                const M* const mrow = mask ? mask + b * p.mask_stride[0] + h * p.mask_stride[1] + i * p.mask_stride[2] : nullptr;
                bool attended = false;
                for (std::int64_t j = 0; j < p.kv_len; ++j) {
                    double m = 0;
                    if (mrow) {
                        if (j >= p.mask_len) m = neg_inf;
                        else if (std::is_same<M, bool>::value) m = mrow[j] ? 0.0 : neg_inf;
                        else m = static_cast<double>(mrow[j]);
                    }
                    if (p.causal && j > i + offset) m += neg_inf;
                    if (p.left_window >= 0 || p.right_window >= 0) {
                        const std::int64_t d = i + offset - j;
                        if ((p.left_window >= 0 && d > p.left_window) || (p.right_window >= 0 && -d > p.right_window)) m += neg_inf;
                    }
                    if (nonpad && j >= nonpad[b]) m += neg_inf;
                    bias[j] = m;
                    if (!(m == neg_inf)) attended = true;
                }
                // The logits in T (as the spec's graph holds them), then the softmax with the
                // runtime's vector exp over the whole row.
                T top = -std::numeric_limits<T>::infinity();
                for (std::int64_t j = 0; j < p.kv_len; ++j) {
                    double s = static_cast<double>(srow[j]);
                    if (qkrow && p.qk_mode == 0) qkrow[j] = static_cast<T>(s);
                    if (p.softcap > 0) s = static_cast<double>(static_cast<T>(p.softcap * std::tanh(s / p.softcap)));
                    const T x = static_cast<T>(s + bias[j]);
                    if (qkrow && p.qk_mode == 1) qkrow[j] = static_cast<T>(s);
                    if (qkrow && p.qk_mode == 2) qkrow[j] = x;
                    srow[j] = x;
                    if (x > top) top = x;
                }
                if (!attended) {
                    for (std::int64_t j = 0; j < p.kv_len; ++j) srow[j] = T(0);
                } else {
                    if (top == -std::numeric_limits<T>::infinity()) top = T(0);
                    for (std::int64_t j = 0; j < p.kv_len; ++j) srow[j] -= top;
                    apply_array<Fn::Exp>(srow, p.kv_len);
                    double sum = 0;
                    for (std::int64_t j = 0; j < p.kv_len; ++j) sum += static_cast<double>(srow[j]);
                    if (sum == 0) sum = 1;
                    const double inv = 1.0 / sum;
                    for (std::int64_t j = 0; j < p.kv_len; ++j) srow[j] = static_cast<T>(static_cast<double>(srow[j]) * inv);
                }
                if (qkrow && p.qk_mode == 3) for (std::int64_t j = 0; j < p.kv_len; ++j) qkrow[j] = srow[j];
            }
            // Y (this head's rows) = P V, written in place into Y's layout.
            gemm<T>(p.q_len, p.v_head, p.kv_len, sc, p.kv_len, 1, v + b * p.v_stride[0] + hk * p.v_stride[1], p.v_stride[2], 1,
                    y + b * p.y_stride[0] + h * p.y_stride[1], p.y_stride[2], false, nullptr, nullptr, none, pack);
        }
    }
}

// The attention KV cache: present (batch, heads, past_len + len, d) = past's rows, then cur's
// (rows at cur_stride over batch, head, row; a 3-D input's heads interleaved).
template <class T>
void attention_cache(const T* past, const T* cur, const std::int64_t cur_stride[3], T* present, std::int64_t batch,
                     std::int64_t heads, std::int64_t past_len, std::int64_t len, std::int64_t d) {
    for (std::int64_t b = 0; b < batch; ++b)
        for (std::int64_t h = 0; h < heads; ++h) {
            T* const out = present + (b * heads + h) * (past_len + len) * d;
            if (past_len > 0) std::memcpy(out, past + (b * heads + h) * past_len * d, sizeof(T) * static_cast<std::size_t>(past_len * d));
            for (std::int64_t s = 0; s < len; ++s)
                std::memcpy(out + (past_len + s) * d, cur + b * cur_stride[0] + h * cur_stride[1] + s * cur_stride[2], sizeof(T) * static_cast<std::size_t>(d));
        }
}

// GridSample (opsets 16-22), 1 to 3 spatial dimensions, as ONNX's reference computes it: grid
// coordinates (component k addresses spatial axis rank-1-k) denormalized in T, then for points outside the border clamped (border) or reflected
// (reflection); nearest rounds half to even, linear and cubic (Keys, a = -0.75) weigh the
// neighbours, each neighbour read through the padding mode (zeros outside).
struct GridSampleParams {
    std::int64_t batch, channels, rank, in_dims[3], out_points;
    int mode, padding, align_corners;  // mode 0 nearest, 1 linear, 2 cubic; padding 0 zeros, 1 border, 2 reflection
};

inline double grid_reflect(double x, double lo, double hi) {
    const double range = hi - lo;
    if (!(range > 0)) return lo;
    if (x < lo || x > hi) {
        const double dx = x < lo ? lo - x : x - hi;
        const double n = std::floor(dx / range);
        const double r = dx - n * range;
        const bool even = std::fmod(n, 2.0) == 0;
        if (x < lo) return even ? lo + r : hi - r;
        return even ? hi - r : lo + r;
    }
    return x;
}

inline void grid_cubic(double t, double c[4]) {
    const double a = -0.75;
    t = std::fabs(t);
    c[0] = ((a * (t + 1) - 5 * a) * (t + 1) + 8 * a) * (t + 1) - 4 * a;
    c[1] = ((a + 2) * t - (a + 3)) * t * t + 1;
    c[2] = ((a + 2) * (1 - t) - (a + 3)) * (1 - t) * (1 - t) + 1;
    c[3] = ((a * (2 - t) - 5 * a) * (2 - t) + 8 * a) * (2 - t) - 4 * a;
}

template <class T>
void grid_sample(const GridSampleParams& p, const T* x, const T* grid, T* y) {
    const std::int64_t r = p.rank;
    std::int64_t plane = 1, stride[3] = {1, 1, 1};
    for (std::int64_t d = r - 1; d >= 0; --d) { stride[d] = plane; plane *= p.in_dims[d]; }
    double lo[3], hi[3];
    for (std::int64_t d = 0; d < r; ++d) {
        lo[d] = p.align_corners ? 0.0 : -0.5;
        hi[d] = p.align_corners ? double(p.in_dims[d] - 1) : double(p.in_dims[d]) - 0.5;
    }
    // The element at integer position idx of one channel plane, through the padding mode.
    auto pixel = [&](const T* data, const std::int64_t* idx) -> double {
        std::int64_t off = 0;
        for (std::int64_t d = 0; d < r; ++d) {
            std::int64_t i = idx[d];
            const std::int64_t n = p.in_dims[d];
            if (p.padding == 0) { if (i < 0 || i >= n) return 0.0; }
            else if (p.padding == 1) i = i < 0 ? 0 : (i >= n ? n - 1 : i);
            else { i = static_cast<std::int64_t>(grid_reflect(double(i), lo[d], hi[d])); i = i < 0 ? 0 : (i >= n ? n - 1 : i); }
            off += i * stride[d];
        }
        return static_cast<double>(data[off]);
    };
    for (std::int64_t b = 0; b < p.batch; ++b)
        for (std::int64_t o = 0; o < p.out_points; ++o) {
            const T* const g = grid + (b * p.out_points + o) * r;
            double coord[3];
            for (std::int64_t d = 0; d < r; ++d) {
                const T v = g[r - 1 - d];
                const T len = static_cast<T>(p.in_dims[d]);
                T c = p.align_corners ? (v + T(1)) / T(2) * (len - T(1)) : ((v + T(1)) * len - T(1)) / T(2);
                double cd = static_cast<double>(c);
                if (p.mode == 0) cd = std::nearbyint(cd);
                // Out of range, infinite or NaN grids stay defined: far outside the border.
                if (!(cd > -1e9)) cd = -1e9;
                if (!(cd < 1e9)) cd = 1e9;
                if (cd < lo[d] || cd > hi[d]) {
                    if (p.padding == 1) cd = cd < 0 ? 0.0 : (cd > double(p.in_dims[d] - 1) ? double(p.in_dims[d] - 1) : cd);
                    else if (p.padding == 2) cd = grid_reflect(cd, lo[d], hi[d]);
                }
                coord[d] = static_cast<double>(static_cast<T>(cd));
            }
            std::int64_t base[3];
            double w[3][4];
            int taps = 1;
            if (p.mode == 0) {
                for (std::int64_t d = 0; d < r; ++d) base[d] = static_cast<std::int64_t>(coord[d]);
            } else if (p.mode == 1) {
                taps = 2;
                for (std::int64_t d = 0; d < r; ++d) {
                    base[d] = static_cast<std::int64_t>(std::floor(coord[d]));
                    const double t = coord[d] - double(base[d]);
                    w[d][0] = 1 - t; w[d][1] = t;
                }
            } else {
                taps = 4;
                for (std::int64_t d = 0; d < r; ++d) {
                    base[d] = static_cast<std::int64_t>(std::floor(coord[d]));
                    grid_cubic(coord[d] - double(base[d]), w[d]);
                    base[d] -= 1;
                }
            }
            std::int64_t corners = 1;
            for (std::int64_t d = 0; d < r; ++d) corners *= taps;
            for (std::int64_t ch = 0; ch < p.channels; ++ch) {
                const T* const data = x + (b * p.channels + ch) * plane;
                double v = 0;
                if (p.mode == 0) v = pixel(data, base);
                else
                    for (std::int64_t k = 0; k < corners; ++k) {
                        std::int64_t idx[3], rest = k;
                        double weight = 1;
                        for (std::int64_t d = r - 1; d >= 0; --d) {
                            const std::int64_t t = rest % taps;
                            rest /= taps;
                            idx[d] = base[d] + t;
                            weight *= w[d][t];
                        }
                        v += weight * pixel(data, idx);
                    }
                y[(b * p.channels + ch) * p.out_points + o] = static_cast<T>(v);
            }
        }
}

// An axis given at run time for a rank-R tensor, made non-negative and marked in `seen` (when
// not null); -1 when it is out of range or (with `seen`) repeated.
inline std::int64_t take_axis(std::int64_t a, std::int64_t R, bool* seen) {
    if (a < -R || a >= R) return -1;
    if (a < 0) a += R;
    if (seen) {
        if (seen[a]) return -1;
        seen[a] = true;
    }
    return a;
}

// Shape, axes or repeats given at run time to an op whose output shape the model declares
// (DeclaredShapes): whether `vals` (k values) give exactly the output shape `out` (rank outR)
// from the input shape `in` (rank R). op: 0 Reshape, 1 Squeeze, 2 Unsqueeze, 3 Expand, 4 Tile,
// 5 ConstantOfShape.
template <class V>
inline bool declared_shape_ok(int op, const std::int64_t* in, std::int64_t R, const V* vals, std::int64_t k,
                              const std::int64_t* out, std::int64_t outR, bool allowzero) {
    constexpr std::int64_t kMaxRank = 16;
    if (R > kMaxRank || outR > kMaxRank || k < 0) return false;
    switch (op) {
    case 0: {  // Reshape: 0 copies the input's dimension (unless allowzero), one -1 is inferred
        if (k != outR) return false;
        int inferred = 0;
        for (std::int64_t i = 0; i < k; ++i) {
            std::int64_t v = static_cast<std::int64_t>(vals[i]);
            if (v == 0 && !allowzero) v = i < R ? in[i] : -2;
            if (v == -1) { ++inferred; continue; }
            if (v != out[i]) return false;
        }
        return inferred <= 1;
    }
    case 1:    // Squeeze: the axes (each of extent 1) removed
    case 2: {  // Unsqueeze: axes of the output that are new 1s
        const std::int64_t rank = op == 1 ? R : outR;
        if (op == 1 ? outR != R - k : outR != R + k) return false;
        bool marked[kMaxRank] = {};
        for (std::int64_t i = 0; i < k; ++i)
            if (take_axis(static_cast<std::int64_t>(vals[i]), rank, marked) < 0) return false;
        std::int64_t j = 0;
        for (std::int64_t i = 0; i < rank; ++i) {
            if (op == 1) {
                if (marked[i]) { if (in[i] != 1) return false; continue; }
                if (out[j++] != in[i]) return false;
            } else {
                if (marked[i]) { if (out[i] != 1) return false; continue; }
                if (out[i] != in[j++]) return false;
            }
        }
        return true;
    }
    case 3: {  // Expand: the input broadcast against the shape
        const std::int64_t r = R > k ? R : k;
        if (r != outR) return false;
        for (std::int64_t i = 0; i < r; ++i) {
            const std::int64_t a = i - (r - R) >= 0 ? in[i - (r - R)] : 1;
            const std::int64_t b = i - (r - k) >= 0 ? static_cast<std::int64_t>(vals[i - (r - k)]) : 1;
            const std::int64_t d = a == 1 ? b : (b == 1 || b == a ? a : -1);
            if (d != out[i]) return false;
        }
        return true;
    }
    case 4:  // Tile: each dimension times its repeat
        if (k != R || outR != R) return false;
        for (std::int64_t i = 0; i < R; ++i)
            if (static_cast<std::int64_t>(vals[i]) < 0 || in[i] * static_cast<std::int64_t>(vals[i]) != out[i]) return false;
        return true;
    default:  // ConstantOfShape: the shape itself
        if (k != outR) return false;
        for (std::int64_t i = 0; i < k; ++i)
            if (static_cast<std::int64_t>(vals[i]) != out[i]) return false;
        return true;
    }
}

// Slice with starts/ends/axes/steps given at run time (k of each; axes and steps may be null):
// per input axis the start and step after ONNX's clamping, true when the extents they give are
// the declared `out`.
template <class V>
inline bool slice_params(const std::int64_t* in, std::int64_t R, const V* starts, const V* ends, std::int64_t k,
                         const V* axes, const V* steps, const std::int64_t* out, std::int64_t* start, std::int64_t* step) {
    constexpr std::int64_t kMaxRank = 16;
    if (R > kMaxRank || k < 0 || k > R) return false;
    std::int64_t extent[kMaxRank];
    bool seen[kMaxRank] = {};
    for (std::int64_t d = 0; d < R; ++d) { start[d] = 0; step[d] = 1; extent[d] = in[d]; }
    for (std::int64_t i = 0; i < k; ++i) {
        const std::int64_t a = take_axis(axes ? static_cast<std::int64_t>(axes[i]) : i, R, seen);
        if (a < 0) return false;
        const std::int64_t s = steps ? static_cast<std::int64_t>(steps[i]) : 1, dim = in[a];
        if (s == 0 || s == std::numeric_limits<std::int64_t>::min()) return false;
        std::int64_t b = static_cast<std::int64_t>(starts[i]), e = static_cast<std::int64_t>(ends[i]), n = 0;
        if (b < 0) b = b < -dim ? -1 : b + dim;
        if (e < 0) e = e < -dim ? -1 : e + dim;
        if (s > 0) {
            b = b < 0 ? 0 : (b > dim ? dim : b);
            e = e < 0 ? 0 : (e > dim ? dim : e);
            n = e > b ? (e - b - 1) / s + 1 : 0;
        } else {
            b = b < 0 ? 0 : (b > dim - 1 ? dim - 1 : b);
            e = e < -1 ? -1 : (e > dim - 1 ? dim - 1 : e);
            n = b > e ? (b - e - 1) / (-s) + 1 : 0;
        }
        start[a] = b;
        step[a] = s;
        extent[a] = n;
    }
    for (std::int64_t d = 0; d < R; ++d)
        if (extent[d] != out[d]) return false;
    return true;
}

// Pad with pads (and axes) given at run time: pads holds the begins then the ends of the k listed
// axes (all R when axes is null); *begin gets each axis's begin; true when in + begin + end is the
// declared `out` on every axis.
template <class P, class X>
inline bool pad_params(const std::int64_t* in, std::int64_t R, const P* pads, std::int64_t npads, const X* axes, std::int64_t naxes,
                       const std::int64_t* out, std::int64_t* begin) {
    constexpr std::int64_t kMaxRank = 16;
    const std::int64_t k = axes ? naxes : R;
    if (R > kMaxRank || npads != 2 * k) return false;
    std::int64_t end[kMaxRank] = {};
    bool seen[kMaxRank] = {};
    for (std::int64_t d = 0; d < R; ++d) begin[d] = 0;
    for (std::int64_t i = 0; i < k; ++i) {
        const std::int64_t a = take_axis(axes ? static_cast<std::int64_t>(axes[i]) : i, R, seen);
        if (a < 0) return false;
        begin[a] = static_cast<std::int64_t>(pads[i]);
        end[a] = static_cast<std::int64_t>(pads[i + k]);
        if (begin[a] < -in[a] || end[a] < -in[a] || begin[a] > (std::int64_t(1) << 40) || end[a] > (std::int64_t(1) << 40)) return false;
    }
    for (std::int64_t d = 0; d < R; ++d)
        if (in[d] + begin[d] + end[d] != out[d]) return false;
    return true;
}

// A reduction over axes given at run time: x of shape `in` (rank R) into acc (one accumulator
// per output element, starting at `init`, `step(acc, value, output index)` per element); the output shape must
// be `out` (rank outR, as declared). Empty axes reduce all (or nothing, with noop_empty). Sets
// *count to the elements per output; false when the axes are invalid or give another shape.
template <class T, class A, class Step>
inline bool reduce_axes(const T* x, const std::int64_t* in, std::int64_t R, const std::int64_t* axes, std::int64_t naxes,
                        bool keepdims, bool noop_empty, const std::int64_t* out, std::int64_t outR, A init, Step step,
                        A* acc, std::int64_t* count) {
    constexpr std::int64_t kMaxRank = 16;
    if (R > kMaxRank) return false;
    bool red[kMaxRank] = {};
    if (naxes == 0) {
        if (!noop_empty)
            for (std::int64_t d = 0; d < R; ++d) red[d] = true;
    }
    for (std::int64_t i = 0; i < naxes; ++i) {
        const std::int64_t a = take_axis(axes[i], R, nullptr);
        if (a < 0) return false;
        red[a] = true;
    }
    std::int64_t o = 0;
    for (std::int64_t d = 0; d < R; ++d) {
        if (red[d] && !keepdims) continue;
        if (o >= outR || out[o] != (red[d] ? 1 : in[d])) return false;
        ++o;
    }
    if (o != outR) return false;
    std::int64_t ost[kMaxRank], outputs = 1, per = 1, total = 1;
    for (std::int64_t d = R - 1; d >= 0; --d) {
        ost[d] = red[d] ? 0 : outputs;
        if (red[d]) per *= in[d]; else outputs *= in[d];
        total *= in[d];
    }
    for (std::int64_t i = 0; i < outputs; ++i) acc[i] = init;
    std::int64_t idx[kMaxRank] = {};
    for (std::int64_t i = 0; i < total; ++i) {
        std::int64_t at = 0;
        for (std::int64_t d = 0; d < R; ++d) at += idx[d] * ost[d];
        acc[at] = step(acc[at], static_cast<A>(x[i]), at);
        for (std::int64_t d = R - 1; d >= 0; --d) {
            if (++idx[d] < in[d]) break;
            idx[d] = 0;
        }
    }
    *count = per;
    return true;
}

// Unique (ONNX): x viewed as outer x A x inner, its A slices compared element by element in
// (outer, inner) order, NaN after every number and equal to NaN. Writes the first occurrence
// (first) and the count (cnt) of each distinct slice, ascending when `sorted`, else in order of
// first occurrence, and every slice's position among them (inv); returns how many there are.
// order and aux: A elements of scratch each. key(x[i]) gives the value compared (float for
// float16/bfloat16). No allocation.
template <class T, class Key>
inline std::int64_t unique_slices(const T* x, std::int64_t outer, std::int64_t A, std::int64_t inner, bool sorted,
                                  std::int64_t* order, std::int64_t* first, std::int64_t* cnt, std::int64_t* inv,
                                  std::int64_t* aux, Key key) {
    auto cmp = [&](std::int64_t a, std::int64_t b) -> int {
        for (std::int64_t o = 0; o < outer; ++o)
            for (std::int64_t i = 0; i < inner; ++i) {
                const auto u = key(x[(o * A + a) * inner + i]), v = key(x[(o * A + b) * inner + i]);
                const bool un = !(u == u), vn = !(v == v);
                if (u == v || (un && vn)) continue;
                return (vn || (!un && u < v)) ? -1 : 1;
            }
        return int{0};  // equal slices
    };
    for (std::int64_t j = 0; j < A; ++j) order[j] = j;
    std::sort(order, order + A, [&](std::int64_t a, std::int64_t b) {
        const int r = cmp(a, b);
        return r < 0 || (r == 0 && a < b);
    });
    std::int64_t k = 0;
    for (std::int64_t s = 0; s < A; ++s) {
        if (s == 0 || cmp(order[s - 1], order[s]) != 0) {
            first[k] = order[s];
            cnt[k] = 0;
            ++k;
        }
        ++cnt[k - 1];
        inv[order[s]] = k - 1;
    }
    if (!sorted) {
        for (std::int64_t g = 0; g < k; ++g) order[g] = g;
        std::sort(order, order + k, [&](std::int64_t a, std::int64_t b) { return first[a] < first[b]; });
        for (std::int64_t t = 0; t < k; ++t) aux[order[t]] = t;
        for (std::int64_t j = 0; j < A; ++j) inv[j] = aux[inv[j]];
        for (std::int64_t t = 0; t < k; ++t) aux[t] = first[order[t]];
        for (std::int64_t t = 0; t < k; ++t) first[t] = aux[t];
        for (std::int64_t t = 0; t < k; ++t) aux[t] = cnt[order[t]];
        for (std::int64_t t = 0; t < k; ++t) cnt[t] = aux[t];
    }
    return k;
}

// Resize's index table of one axis when its scale arrives at run time: for each output index o,
// the source indices i0 and i1 (times the axis' stride) and the weight w of i1. mode 0 nearest,
// 1 linear; ctm 0 half_pixel, 1 asymmetric, 2 align_corners, 3 pytorch_half_pixel,
// 4 half_pixel_symmetric; nearest 0 round_prefer_floor, 1 round_prefer_ceil, 2 floor, 3 ceil.
// (The same arithmetic as the tables sofie computes when the scale is a constant.)
inline void resize_axis(int mode, int ctm, int nearest, std::int64_t in, std::int64_t out, double s, std::int64_t stride,
                        std::int64_t* i0, std::int64_t* i1, double* w) {
    for (std::int64_t o = 0; o < out; ++o) {
        const double xo = static_cast<double>(o);
        double src;
        switch (ctm) {
        case 1: src = xo / s; break;
        case 2: src = out == 1 ? 0.0 : xo * static_cast<double>(in - 1) / static_cast<double>(out - 1); break;
        case 3: src = out > 1 ? (xo + 0.5) / s - 0.5 : 0.0; break;
        case 4: {
            const double adj = static_cast<double>(out) / (s * static_cast<double>(in)), center = static_cast<double>(in) / 2;
            src = center * (1 - adj) + (xo + 0.5) / s - 0.5;
            break;
        }
        default: src = (xo + 0.5) / s - 0.5;
        }
        // Clamped before any conversion to an integer (a huge or NaN source index is no index).
        if (!(src > -1.0)) src = -1.0;
        if (src > static_cast<double>(in)) src = static_cast<double>(in);
        if (mode == 0) {
            const double f = std::floor(src);
            double r;
            switch (nearest) {
            case 2: r = f; break;
            case 3: r = std::ceil(src); break;
            case 1: r = std::floor(src + 0.5); break;
            default: r = src == f + 0.5 ? f : std::round(src);
            }
            std::int64_t i = static_cast<std::int64_t>(r);
            i = i < 0 ? 0 : (i > in - 1 ? in - 1 : i);
            i0[o] = i1[o] = i * stride;
            w[o] = 0.0;
        } else {
            const double c = src < 0.0 ? 0.0 : (src > static_cast<double>(in - 1) ? static_cast<double>(in - 1) : src);
            const std::int64_t a = static_cast<std::int64_t>(std::floor(c)), b = a + 1 < in ? a + 1 : in - 1;
            i0[o] = a * stride;
            i1[o] = b * stride;
            w[o] = c - static_cast<double>(a);
        }
    }
}

// MelWeightMatrix (ONNX's reference): triangles between mel-spaced spectrogram bins, written
// as [dft / 2 + 1, mels]. edges: mels + 2 elements of scratch. False when the arguments are
// out of range (1 to 65536 mel bins, a DFT length of 1 to 2^24, a positive sample rate,
// 0 <= lower < upper) or an edge falls outside the bins.
template <class T>
inline bool mel_weights(std::int64_t mels, std::int64_t dft, std::int64_t rate, double lower, double upper, T* out,
                        std::int64_t* edges) {
    if (mels < 1 || mels > (1 << 16) || dft < 1 || dft > (1 << 24) || rate < 1 || !(lower >= 0) || !(upper > lower) ||
        !(upper <= std::numeric_limits<double>::max()))
        return false;
    const std::int64_t bins = dft / 2 + 1;
    auto mel = [](double f) { return 2595.0 * std::log1p(f / 700.0) / std::log(10.0); };
    const double lo = mel(lower), step = (mel(upper) - lo) / static_cast<double>(mels + 2);
    for (std::int64_t k = 0; k < mels + 2; ++k) {
        const double f = 700.0 * std::expm1((static_cast<double>(k) * step + lo) / 2595.0 * std::log(10.0));
        const double b = std::floor(static_cast<double>(dft + 1) * f / static_cast<double>(rate));
        if (!(b >= 0) || !(b < static_cast<double>(bins))) return false;
        edges[k] = static_cast<std::int64_t>(b);
    }
    for (std::int64_t i = 0; i < bins * mels; ++i) out[i] = T(0);
    for (std::int64_t i = 0; i < mels; ++i) {
        const std::int64_t l = edges[i], m = edges[i + 1], h = edges[i + 2];
        if (m == l) {
            out[m * mels + i] = T(1);
        } else if (m > l) {
            for (std::int64_t j = l; j <= m; ++j) out[j * mels + i] = static_cast<T>(static_cast<double>(j - l) / static_cast<double>(m - l));
        }
        if (h > m)
            for (std::int64_t j = m; j < h; ++j) out[j * mels + i] = static_cast<T>(static_cast<double>(h - j) / static_cast<double>(h - m));
    }
    return true;
}

// NonMaxSuppression (ONNX): boxes [B, S, 4], scores [B, C, S]. Per batch and class, the boxes by
// descending score (ties: lower index first; NaN scores last), above score_th when has_th, each
// kept unless its IoU with one kept before exceeds iou_th, at most max_out. Writes (batch,
// class, box) triples to sel (room for B*C*min(S, max_out) of them) and returns how many.
// order: S elements of scratch; kept: S. Computes in T, as ONNX's reference does.
template <class T>
inline std::int64_t non_max_suppression(const T* boxes, const T* scores, std::int64_t B, std::int64_t S, std::int64_t C,
                                        std::int64_t max_out, bool has_th, T score_th, T iou_th, bool center,
                                        std::int64_t* sel, std::int64_t* order, std::int64_t* kept) {
    if (max_out > S) max_out = S;
    auto edges = [&](const T* b, T* e) {  // x0, x1, y0, y1
        if (center) {
            const T hw = b[2] / T(2), hh = b[3] / T(2);
            e[0] = b[0] - hw; e[1] = b[0] + hw; e[2] = b[1] - hh; e[3] = b[1] + hh;
        } else {
            e[0] = std::min(b[1], b[3]); e[1] = std::max(b[1], b[3]); e[2] = std::min(b[0], b[2]); e[3] = std::max(b[0], b[2]);
        }
    };
    std::int64_t count = 0;
    for (std::int64_t b = 0; b < B; ++b)
        for (std::int64_t c = 0; c < C; ++c) {
            const T* const sc = scores + (b * C + c) * S;
            std::int64_t n = 0;
            for (std::int64_t i = 0; i < S; ++i)
                if (!has_th || sc[i] > score_th) order[n++] = i;
            std::sort(order, order + n, [&](std::int64_t i, std::int64_t j) {
                const bool ni = !(sc[i] == sc[i]), nj = !(sc[j] == sc[j]);
                if (ni != nj) return nj;
                if (!ni && sc[i] != sc[j]) return sc[i] > sc[j];
                return i < j;
            });
            std::int64_t m = 0;
            for (std::int64_t t = 0; t < n && m < max_out; ++t) {
                T a[4];
                edges(boxes + (b * S + order[t]) * 4, a);
                bool keep = true;
                for (std::int64_t q = 0; q < m && keep; ++q) {
                    T o[4];
                    edges(boxes + (b * S + kept[q]) * 4, o);
                    const T x0 = std::max(a[0], o[0]), x1 = std::min(a[1], o[1]), y0 = std::max(a[2], o[2]), y1 = std::min(a[3], o[3]);
                    if (!(x1 > x0) || !(y1 > y0)) continue;
                    const T inter = (x1 - x0) * (y1 - y0);
                    const T area_a = (a[1] - a[0]) * (a[3] - a[2]), area_o = (o[1] - o[0]) * (o[3] - o[2]);
                    const T uni = area_a + area_o - inter;
                    if (!(inter > T(0)) || !(area_a > T(0)) || !(area_o > T(0)) || !(uni > T(0))) continue;
                    if (inter / uni > iou_th) keep = false;
                }
                if (!keep) continue;
                kept[m++] = order[t];
                sel[count * 3] = b; sel[count * 3 + 1] = c; sel[count * 3 + 2] = order[t];
                ++count;
            }
        }
    return count;
}

#undef SOFIE_MATH
}  // namespace sofie_rt
#endif  // SOFIE_RUNTIME_V2
"""#
}

extension CppRuntime {
    /// The runtime is named after its content (FNV-1a 64 of the source): headers emitted by the
    /// same sofie share one copy in a translation unit; headers from sofie versions whose
    /// runtimes differ each keep their own (guard SOFIE_RUNTIME_<hash>, namespace
    /// sofie_rt_<hash>), instead of one silently using the other's kernels.
    static func tag(of text: String) -> String {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in text.utf8 { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01b3 }
        let hex = String(h, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }

    static let versionTag = tag(of: source)

    /// The source as emitted: guard and namespace carry `versionTag`.
    static let versioned: String = source
        .replacingOccurrences(of: "SOFIE_RUNTIME_V2", with: "SOFIE_RUNTIME_\(versionTag)")
        .replacingOccurrences(of: "namespace sofie_rt {", with: "namespace sofie_rt_\(versionTag) {")
        .replacingOccurrences(of: "}  // namespace sofie_rt\n", with: "}  // namespace sofie_rt_\(versionTag)\n")
}
