// swift-sofie: reduced-precision float storage types (namespace sofie), emitted into headers whose
// model has such a tensor. Needs <cstdint>, <cstring>, <cmath>, <limits>, <type_traits>.
#ifndef SOFIE_NUMBER_TYPES_V1
#define SOFIE_NUMBER_TYPES_V1
namespace sofie {

// Reduced-precision floats as stored in tensors: the bits only (IEEE binary16, bfloat16, and
// the OCP/ONNX float8 formats). Convert with to_float / to_double and from_double<T>.
struct float16_t { std::uint16_t bits; };
struct bfloat16_t { std::uint16_t bits; };
struct float8e4m3fn_t { std::uint8_t bits; };
struct float8e4m3fnuz_t { std::uint8_t bits; };
struct float8e5m2_t { std::uint8_t bits; };
struct float8e5m2fnuz_t { std::uint8_t bits; };

namespace minifloat {
// A binary float format: E exponent bits, M mantissa bits, exponent bias, and how the top of
// the range is used — Kind 0: IEEE (all-ones exponent holds inf and NaN), 1: "fn" (no inf;
// only S.1111.111 is NaN), 2: "fnuz" (no inf, no negative zero; 1.0000.000 is the NaN).
template <int E, int M, int Bias, int Kind> struct format {
    static constexpr std::uint32_t sign = 1u << (E + M);
    static constexpr std::uint32_t mant = (1u << M) - 1;
    static constexpr std::uint32_t top = (1u << E) - 1;
    static constexpr std::uint32_t max_bits =
        Kind == 0 ? (((top - 1) << M) | mant) : Kind == 1 ? ((top << M) | (mant - 1)) : ((top << M) | mant);
    static constexpr std::uint32_t inf_bits = top << M;

    static std::uint32_t nan_bits(bool neg) {
        if (Kind == 2) return sign;
        return (neg ? sign : 0u) | (top << M) | (Kind == 1 ? mant : (1u << (M - 1)));
    }

    static double decode(std::uint32_t b) {
        const bool neg = (b & sign) != 0;
        const std::uint32_t e = (b >> M) & top, m = b & mant;
        if (Kind == 2 && b == sign) return std::numeric_limits<double>::quiet_NaN();
        if (Kind == 1 && e == top && m == mant) return neg ? -std::numeric_limits<double>::quiet_NaN() : std::numeric_limits<double>::quiet_NaN();
        if (Kind == 0 && e == top) {
            if (m != 0) return neg ? -std::numeric_limits<double>::quiet_NaN() : std::numeric_limits<double>::quiet_NaN();
            return neg ? -std::numeric_limits<double>::infinity() : std::numeric_limits<double>::infinity();
        }
        const double v = e == 0 ? std::ldexp(double(m), 1 - Bias - M) : std::ldexp(double(m | (1u << M)), int(e) - Bias - M);
        return neg ? -v : v;
    }

    // Round to nearest, ties to even. Beyond the largest finite value: with `saturate` the
    // largest finite value (infinities too); without, infinity where the format has one, else NaN.
    static std::uint32_t encode(double x, bool saturate) {
        const bool neg = std::signbit(x);
        const std::uint32_t s = neg ? sign : 0u;
        if (std::isnan(x)) return nan_bits(neg);
        const double a = std::fabs(x);
        const double maxv = decode(max_bits);
        if (a > maxv) {
            if (saturate) return s | max_bits;
            if (!std::isinf(a)) {
                // Values that round down to the largest finite value are not an overflow.
                int e = 0;
                std::frexp(maxv, &e);
                const double half_ulp = std::ldexp(1.0, e - 1 - M - 1);
                if (a < maxv + half_ulp || (a == maxv + half_ulp && (max_bits & 1u) == 0)) return s | max_bits;
            }
            return Kind == 0 ? (s | inf_bits) : nan_bits(neg);
        }
        if (a == 0) return Kind == 2 ? 0u : s;
        int e = 0;
        std::frexp(a, &e);                       // a in [2^(e-1), 2^e)
        const int emin = 1 - Bias;               // the smallest normal exponent
        const int q = ((e - 1) < emin ? emin : (e - 1)) - M;  // exponent of one unit in the last place
        const double r = std::nearbyint(std::ldexp(a, -q));   // units, rounded to nearest even
        const double v = std::ldexp(r, q);
        if (v > maxv) return saturate ? (s | max_bits) : (Kind == 0 ? (s | inf_bits) : nan_bits(neg));
        if (r == 0) return Kind == 2 ? 0u : s;
        if (v < std::ldexp(1.0, emin)) return s | std::uint32_t(r);  // subnormal
        int ve = 0;
        std::frexp(v, &ve);
        const std::uint32_t m = std::uint32_t(std::ldexp(v, -(ve - 1 - M))) - (1u << M);
        return s | (std::uint32_t(ve - 1 + Bias) << M) | m;
    }
};

template <class T> struct format_of;
template <> struct format_of<float16_t> { using type = format<5, 10, 15, 0>; };
template <> struct format_of<bfloat16_t> { using type = format<8, 7, 127, 0>; };
template <> struct format_of<float8e4m3fn_t> { using type = format<4, 3, 7, 1>; };
template <> struct format_of<float8e4m3fnuz_t> { using type = format<4, 3, 8, 2>; };
template <> struct format_of<float8e5m2_t> { using type = format<5, 2, 15, 0>; };
template <> struct format_of<float8e5m2fnuz_t> { using type = format<5, 2, 16, 2>; };
}  // namespace minifloat

// Exact (every value of these formats is a float).
template <class T> inline double to_double(T v) { return minifloat::format_of<T>::type::decode(v.bits); }
template <class T> inline float to_float(T v) { return static_cast<float>(to_double(v)); }
// Rounded once, to nearest even; `saturate` (ONNX Cast's attribute, for float8) clamps
// out-of-range values and infinities to the largest finite value.
template <class T> inline T from_double(double x, bool saturate = false) {
    return T{static_cast<decltype(T::bits)>(minifloat::format_of<T>::type::encode(x, saturate))};
}
template <class T> inline T from_float(float x, bool saturate = false) { return from_double<T>(static_cast<double>(x), saturate); }

// float16 and bfloat16 from and to float by bit manipulation (the same results as the general
// code above, checked over every float16 and 2^20 random floats; float's own round-to-nearest
// does the subnormal rounding): the conversions float16 models run around every op.
inline std::uint32_t float_bits(float f) { std::uint32_t u; std::memcpy(&u, &f, 4); return u; }
inline float bits_float(std::uint32_t u) { float f; std::memcpy(&f, &u, 4); return f; }
template <> inline float to_float(float16_t h) {
    std::uint32_t u = (std::uint32_t(h.bits) & 0x7fffu) << 13;
    const std::uint32_t e = u & (0x7c00u << 13);
    u += (127u - 15u) << 23;
    if (e == (0x7c00u << 13)) u += (128u - 16u) << 23;                      // inf, NaN
    else if (e == 0) { u += 1u << 23; u = float_bits(bits_float(u) - bits_float(113u << 23)); }  // zero, subnormal
    return bits_float(u | ((std::uint32_t(h.bits) & 0x8000u) << 16));
}
template <> inline double to_double(float16_t h) { return static_cast<double>(to_float(h)); }
template <> inline float16_t from_float(float x, bool) {
    std::uint32_t u = float_bits(x);
    const std::uint32_t sign = u & 0x80000000u;
    u ^= sign;
    std::uint16_t o;
    if (u >= (127u + 16u) << 23) o = u > (255u << 23) ? 0x7e00 : 0x7c00;    // beyond 65520: inf; NaN stays NaN
    else if (u < 113u << 23) o = static_cast<std::uint16_t>(float_bits(bits_float(u) + 0.5f) - float_bits(0.5f));  // subnormal
    else o = static_cast<std::uint16_t>((u + ((15u - 127u) << 23) + 0xfffu + ((u >> 13) & 1u)) >> 13);
    return float16_t{static_cast<std::uint16_t>(o | (sign >> 16))};
}
template <> inline float to_float(bfloat16_t h) { return bits_float(std::uint32_t(h.bits) << 16); }
template <> inline double to_double(bfloat16_t h) { return static_cast<double>(to_float(h)); }
template <> inline bfloat16_t from_float(float x, bool) {
    const std::uint32_t u = float_bits(x);
    if ((u & 0x7fffffffu) > 0x7f800000u) return bfloat16_t{static_cast<std::uint16_t>((u >> 16) | 0x40u)};  // NaN, kept quiet
    return bfloat16_t{static_cast<std::uint16_t>((u + 0x7fffu + ((u >> 16) & 1u)) >> 16)};
}

}  // namespace sofie
#endif  // SOFIE_NUMBER_TYPES_V1

// The microscaling element and scale types, added later under their own guard (the block
// above is shared with headers of earlier sofie versions, so it never changes).
#ifndef SOFIE_NUMBER_TYPES_MX_V1
#define SOFIE_NUMBER_TYPES_MX_V1
namespace sofie {
// One value per byte: float4e2m1's code (sign, 2 exponent bits, 1 mantissa bit) in the low four
// bits; float8e8m0 a power of two, 2^(bits - 127), 0xff the NaN (no sign, no zero).
struct float4e2m1_t { std::uint8_t bits; };
struct float8e8m0_t { std::uint8_t bits; };

template <> inline float to_float(float4e2m1_t v) {
    static constexpr float magnitude[8] = {0.0f, 0.5f, 1.0f, 1.5f, 2.0f, 3.0f, 4.0f, 6.0f};
    const float m = magnitude[v.bits & 7u];
    return (v.bits & 8u) ? -m : m;
}
template <> inline double to_double(float4e2m1_t v) { return static_cast<double>(to_float(v)); }
// Round to nearest, ties to even code; every value past 6 (infinities too) saturates to +-6,
// as the format has no infinity; NaN, which it cannot hold either, becomes +0.
template <> inline float4e2m1_t from_double(double x, bool) {
    if (std::isnan(x)) return float4e2m1_t{0};
    const double a = std::fabs(x);
    const std::uint8_t code = a <= 0.25 ? 0 : a < 0.75 ? 1 : a <= 1.25 ? 2 : a < 1.75 ? 3 : a <= 2.5 ? 4 : a < 3.5 ? 5 : a <= 5.0 ? 6 : 7;
    return float4e2m1_t{static_cast<std::uint8_t>(code | (std::signbit(x) ? 8u : 0u))};
}
template <> inline float4e2m1_t from_float(float x, bool saturate) { return from_double<float4e2m1_t>(static_cast<double>(x), saturate); }

// From float as ONNX's reference does it, on the float32 bits: the exponent rounded by `mode`
// (0 up: any fraction rounds away from zero; 1 down: truncate; 2 nearest: by the guard bit,
// ties up), inf and NaN to NaN; `saturate` keeps rounding from running past the largest
// exponent (0xfe) into the NaN. The sign is ignored (negative input is undefined in ONNX).
inline float8e8m0_t e8m0_from_float(float x, bool saturate, int mode) {
    const std::uint32_t u = float_bits(x);
    std::uint32_t e = (u >> 23) & 0xffu;
    if (e == 0xffu) return float8e8m0_t{0xff};
    bool up = false;
    if (mode == 0) up = (u & 0x7fffffu) != 0;
    if (mode == 2) up = (u & 0x400000u) != 0 && ((u & 0x3fffffu) != 0 || e > 0);
    if (up && !(saturate && e == 0xfeu)) ++e;
    return float8e8m0_t{static_cast<std::uint8_t>(e)};
}
template <> inline float to_float(float8e8m0_t v) {
    if (v.bits == 0xff) return std::numeric_limits<float>::quiet_NaN();
    return bits_float(v.bits == 0 ? 0x400000u : std::uint32_t(v.bits) << 23);  // 2^-127 is subnormal
}
template <> inline double to_double(float8e8m0_t v) { return static_cast<double>(to_float(v)); }
template <> inline float8e8m0_t from_float(float x, bool saturate) { return e8m0_from_float(x, saturate, 0); }
// Through float, as the reference converts its input to float32 first.
template <> inline float8e8m0_t from_double(double x, bool saturate) { return e8m0_from_float(static_cast<float>(x), saturate, 0); }
}  // namespace sofie
#endif  // SOFIE_NUMBER_TYPES_MX_V1
