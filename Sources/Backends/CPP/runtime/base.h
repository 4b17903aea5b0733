// swift-sofie C++ runtime: Integer helpers with ONNX semantics and the GEMM's blocking constants.
// Part of sofie_runtime.h, which sofie embeds into every emitted header (see README.md here).
#pragma once
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <cmath>

// Before the innermost loop of an emitted broadcasting elementwise op (the header's own code):
// with GCC, no unrolling, so that the loop is vectorized as written. A short innermost loop (a
// block's 16 channels) was otherwise unrolled completely first and the loop around it
// vectorized across pixels with shuffles.
#ifndef SOFIE_INNER_LOOP
#if defined(__GNUC__) && !defined(__clang__)
#define SOFIE_INNER_LOOP _Pragma("GCC unroll 1")
#else
#define SOFIE_INNER_LOOP
#endif
#endif

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
#if defined(SOFIE_RT_VECTOR_BYTES)  // a copy compiled for a wider target than the translation unit's
constexpr int64_t kVectorBytes = SOFIE_RT_VECTOR_BYTES;
constexpr int64_t MR = kVectorBytes == 64 ? 8 : 6;
#elif defined(__AVX512F__)
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
constexpr int64_t KC = 256;
constexpr int64_t NC = 1024;
// The widest register tile the emitter sizes packing buffers for (CppRuntime.maxNR, checked by
// RuntimeKernelTests): AVX-512's 2 vectors of 16 floats.
constexpr int64_t kMaxNR = 32;
static_assert(NR <= kMaxNR, "the emitter sizes packing buffers for NR up to kMaxNR (CppRuntime.maxNR)");

// Whether this CPU runs AVX2 and FMA code (the OS saving the AVX registers included): the emitted
// `run` switches to its AVX2 twin with it when the header was built without AVX2.
inline bool cpu_has_avx2_fma() {
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
    static const bool has = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    return has;
#else
    return false;
#endif
}

// Whether this CPU runs the AVX-512 code of the AVX-512 twin (F, VL, BW and DQ; the OS saving the
// AVX-512 registers included): the emitted `run` switches to that twin first.
inline bool cpu_has_avx512() {
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
    static const bool has = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
                            __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") && cpu_has_avx2_fma();
    return has;
#else
    return false;
#endif
}

}  // namespace sofie_rt
