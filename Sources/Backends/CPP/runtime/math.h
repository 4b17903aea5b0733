// swift-sofie C++ runtime: Branch-free elementary functions (exp, tanh, sigmoid, erf, gelu) and activations, scalar and SIMD.
// Part of sofie_runtime.h, which sofie embeds into every emitted header (see README.md here).
#pragma once
#include "base.h"

namespace sofie_rt {

// Elementary functions for float written without branches, so that a loop over them becomes
// SIMD code (the array forms below use the target's vectors explicitly, at -O2 too). Double
// keeps the C library's functions. Worst error against the exact value over every float in
// [-110, 110] (Tests/cpp/math_exhaustive.cpp), in ulps of the nearest float: exp 1.03, sigmoid
// 2.5, tanh 5.0, erf 7.5; results below the smallest normal float (1.2e-38) within that much of
// the exact value (RuntimeMathTests checks a grid of these on every run). tanh and erf multiply x
// by the rational p/q last, so that no intermediate falls below the normal range for tiny x
// (x * p first cost 104 ulps at x = 2e-38). An element's result does not depend on its position.
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
    // Below lo (and NaN: float-to-int of NaN is undefined) the polynomial runs on 0, whose
    // result the selects at the end replace: on lo itself it would make denormal intermediates,
    // which cost a microcode assist per lane (masked attention scores, the padded tail of a row).
    const F xc = select_bits(x >= lo, select_bits(x > hi, hi, x), F{});
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
    return select_bits(x > 9.0f, F{} + 1.0f, select_bits(x < -9.0f, F{} - 1.0f, xc * (p / q)));
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
    return xc * (p / q);
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
SOFIE_MATH VecF act_vec(VecF x, Act act, float alpha, float beta) {
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

// The activation of N vectors with one dispatch: act_vec's switch per vector, inside a tile's
// unrolled store loop, cost as much as the arithmetic of a short kernel (a depthwise 3x3).
template <int64_t N>
SOFIE_MATH void act_vecs(VecF* x, Act act, float alpha, float beta) {
    switch (act) {
    case Act::None: return;
    case Act::Relu:
        _Pragma("GCC unroll 32") for (int64_t i = 0; i < N; ++i) x[i] = act_vec(x[i], Act::Relu, alpha, beta);
        return;
    case Act::LeakyRelu:
        _Pragma("GCC unroll 32") for (int64_t i = 0; i < N; ++i) x[i] = act_vec(x[i], Act::LeakyRelu, alpha, beta);
        return;
    case Act::Clip:
        _Pragma("GCC unroll 32") for (int64_t i = 0; i < N; ++i) x[i] = act_vec(x[i], Act::Clip, alpha, beta);
        return;
    case Act::HardSigmoid:
        _Pragma("GCC unroll 32") for (int64_t i = 0; i < N; ++i) x[i] = act_vec(x[i], Act::HardSigmoid, alpha, beta);
        return;
    case Act::HardSwish:
        _Pragma("GCC unroll 32") for (int64_t i = 0; i < N; ++i) x[i] = act_vec(x[i], Act::HardSwish, alpha, beta);
        return;
    case Act::Sigmoid:
        _Pragma("GCC unroll 32") for (int64_t i = 0; i < N; ++i) x[i] = act_vec(x[i], Act::Sigmoid, alpha, beta);
        return;
    case Act::Tanh:
        _Pragma("GCC unroll 32") for (int64_t i = 0; i < N; ++i) x[i] = act_vec(x[i], Act::Tanh, alpha, beta);
        return;
    case Act::Swish:
        _Pragma("GCC unroll 32") for (int64_t i = 0; i < N; ++i) x[i] = act_vec(x[i], Act::Swish, alpha, beta);
        return;
    case Act::Gelu:
        _Pragma("GCC unroll 32") for (int64_t i = 0; i < N; ++i) x[i] = act_vec(x[i], Act::Gelu, alpha, beta);
        return;
    }
}
#endif

}  // namespace sofie_rt
