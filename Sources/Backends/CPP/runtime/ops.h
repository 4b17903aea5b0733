// swift-sofie C++ runtime: Kernels of other ops: file loading, Softmax and LayerNormalization rows, Attention, GridSample, shape checks, reductions, Unique, Resize, MelWeightMatrix, NonMaxSuppression.
// Part of sofie_runtime.h, which sofie embeds into every emitted header (see README.md here).
#pragma once
#include <algorithm>
#include <fstream>
#include <limits>
#include <string>
#include <vector>
#include "math.h"

namespace sofie_rt {

// Reads a whole binary file into dst; returns false if it is missing or of the wrong size.
inline bool read_file(const std::string& path, void* dst, std::size_t bytes) {
    std::ifstream f(path, std::ios::binary | std::ios::ate);
    if (!f) return false;
    if (static_cast<std::size_t>(f.tellg()) != bytes) return false;
    f.seekg(0);
    return static_cast<bool>(f.read(static_cast<char*>(dst), static_cast<std::streamsize>(bytes)));
}

#if defined(__GNUC__) || defined(__clang__)
// Horizontal maximum and sum of a vector of B bytes of floats, by halves in registers (what the
// lane loops `lane[l] = op(lane[l], lane[l + w])`, w = L/2 ... 1, compute, in the same order;
// GCC keeps those loops in memory at -O2). The maximum takes the upper half's lane where it is
// greater, so a NaN there is passed over as by the scalar form.
template <std::int64_t B>
struct FloatBytes {
    typedef float type __attribute__((vector_size(B)));
};
template <std::int64_t B>
SOFIE_MATH float hmax_floats(typename FloatBytes<B>::type v) {
    if constexpr (B == 4) {
        return v[0];
    } else {
        typedef typename FloatBytes<B / 2>::type H;
        typedef std::int32_t HI __attribute__((vector_size(B / 2)));
        H lo, hi;
        std::memcpy(&lo, &v, B / 2);
        std::memcpy(&hi, reinterpret_cast<const char*>(&v) + B / 2, B / 2);
        const HI m = hi > lo;
        return hmax_floats<B / 2>(reinterpret_cast<H>((reinterpret_cast<HI>(hi) & m) | (reinterpret_cast<HI>(lo) & ~m)));
    }
}
template <std::int64_t B>
SOFIE_MATH float hsum_floats(typename FloatBytes<B>::type v) {
    if constexpr (B == 4) {
        return v[0];
    } else {
        typedef typename FloatBytes<B / 2>::type H;
        H lo, hi;
        std::memcpy(&lo, &v, B / 2);
        std::memcpy(&hi, reinterpret_cast<const char*>(&v) + B / 2, B / 2);
        return hsum_floats<B / 2>(lo + hi);
    }
}
#endif

// Softmax over `rows` rows of n contiguous floats (y may be x): the row's maximum, e^(x - max)
// through the vector exp, the sum (one partial sum per vector lane, the lanes then added
// pairwise), every value times 1 / sum. A row holding a NaN, or only -inf, becomes NaN, as the
// scalar form gives. Rows of at least a vector end with a vector that overlaps the one before
// it, read before anything is written (y may be x): its lanes past the whole vectors join the
// sum, and the lanes it shares are written with the values the body gave them. (Lanes gathered
// through memory for the tail cost a stalled load per row: vit_b_16's 197-long rows.)
inline void softmax_rows(const float* x, float* y, std::int64_t rows, std::int64_t n) {
    for (std::int64_t r = 0; r < rows; ++r) {
        const float* xr = x + r * n;
        float* yr = y + r * n;
#if defined(__GNUC__) || defined(__clang__)
        constexpr std::int64_t L = kVectorBytes / sizeof(float);
        if (n >= L) {
            const std::int64_t body = n - n % L;
            VecF tail, m0, m1;
            std::memcpy(&tail, xr + n - L, sizeof tail);
            m0 = tail;
            m1 = tail;
            std::int64_t k = 0;
            for (; k + 2 * L <= body; k += 2 * L) {  // two chains of maxima
                VecF a, b;
                std::memcpy(&a, xr + k, sizeof a);
                std::memcpy(&b, xr + k + L, sizeof b);
                m0 = select_bits(a > m0, a, m0);
                m1 = select_bits(b > m1, b, m1);
            }
            for (; k < body; k += L) {
                VecF a;
                std::memcpy(&a, xr + k, sizeof a);
                m0 = select_bits(a > m0, a, m0);
            }
            const float m = hmax_floats<kVectorBytes>(select_bits(m1 > m0, m1, m0));
            VecF sv{};
            for (k = 0; k < body; k += L) {
                VecF v;
                std::memcpy(&v, xr + k, sizeof v);
                v = exp_poly(v - m);
                std::memcpy(yr + k, &v, sizeof v);
                sv += v;
            }
            if (body < n) {  // the lanes from L - (n - body) on are new
                VecF lane;
                for (std::int64_t l = 0; l < L; ++l) lane[l] = static_cast<float>(l);
                tail = exp_poly(tail - m);
                sv += select_bits(lane >= static_cast<float>(L - (n - body)), tail, VecF{});
            }
            const float inv = 1.0f / hsum_floats<kVectorBytes>(sv);
            for (k = 0; k < body; k += L) {
                VecF v;
                std::memcpy(&v, yr + k, sizeof v);
                v *= inv;
                std::memcpy(yr + k, &v, sizeof v);
            }
            if (body < n) {
                tail *= inv;
                std::memcpy(yr + n - L, &tail, sizeof tail);
            }
            continue;
        }
        // A row shorter than a vector: its lanes through memory, the rest e^-inf = 0.
        float lane[L];
        for (std::int64_t l = 0; l < L; ++l) lane[l] = l < n ? xr[l] : -std::numeric_limits<float>::infinity();
        VecF v;
        std::memcpy(&v, lane, sizeof v);
        const float m = hmax_floats<kVectorBytes>(v);
        v = exp_poly(v - m);
        const float inv = 1.0f / hsum_floats<kVectorBytes>(v);
        v *= inv;
        std::memcpy(lane, &v, sizeof v);
        for (std::int64_t l = 0; l < n; ++l) yr[l] = lane[l];
#else
        float m = xr[0];
        for (std::int64_t k = 1; k < n; ++k) if (xr[k] > m) m = xr[k];
        float s = 0;
        for (std::int64_t k = 0; k < n; ++k) { yr[k] = fast_exp(xr[k] - m); s += yr[k]; }
        const float inv = 1.0f / s;
        for (std::int64_t k = 0; k < n; ++k) yr[k] *= inv;
#endif
    }
}

#if defined(__GNUC__) || defined(__clang__)
// Half a vector of floats, and as many doubles in a whole vector: L / 2 floats read and widened.
// (Functions, not lambdas: a lambda does not take the target of the AVX2 twin's region, and
// returning its wide vectors would then change the ABI.)
typedef float HalfVecF __attribute__((vector_size(kVectorBytes / 2)));
typedef double VecD __attribute__((vector_size(kVectorBytes)));
SOFIE_MATH VecD widen_floats(const float* p) {
    HalfVecF h;
    std::memcpy(&h, p, sizeof h);
    return __builtin_convertvector(h, VecD);
}
#endif

// LayerNormalization of `rows` rows of n contiguous floats with a scale (and a bias, or null)
// of n values: mean and variance in double (two passes, each over four vectors of partial
// sums, one per lane, which are then added: the vectors pairwise, the lanes in order; one
// chain of sums waited on the adder's latency, 100 us for vit_b_16's 197 rows of 768), y =
// (x - mean) / sqrt(var + eps) * scale + bias computed in double and rounded once.
inline void layer_norm_rows(const float* x, float* y, std::int64_t rows, std::int64_t n, const float* scale,
                            const float* bias, double eps) {
    for (std::int64_t r = 0; r < rows; ++r) {
        const float* xr = x + r * n;
        float* yr = y + r * n;
        double mean = 0, var = 0;
        // Vectors over [0, body), then element by element (all of the row without GNU vectors).
        std::int64_t body = 0;
#if defined(__GNUC__) || defined(__clang__)
        constexpr std::int64_t L = kVectorBytes / sizeof(double);
        body = n - n % L;
        VecD a0{}, a1{}, a2{}, a3{};
        std::int64_t i = 0;
        for (; i + 4 * L <= body; i += 4 * L) {
            a0 += widen_floats(xr + i);
            a1 += widen_floats(xr + i + L);
            a2 += widen_floats(xr + i + 2 * L);
            a3 += widen_floats(xr + i + 3 * L);
        }
        for (; i < body; i += L) a0 += widen_floats(xr + i);
        VecD acc = (a0 + a1) + (a2 + a3);
        for (std::int64_t l = 0; l < L; ++l) mean += acc[l];
#endif
        for (std::int64_t i = body; i < n; ++i) mean += xr[i];
        mean /= static_cast<double>(n);
#if defined(__GNUC__) || defined(__clang__)
        a0 = a1 = a2 = a3 = VecD{};
        for (i = 0; i + 4 * L <= body; i += 4 * L) {
            const VecD d0 = widen_floats(xr + i) - mean, d1 = widen_floats(xr + i + L) - mean;
            const VecD d2 = widen_floats(xr + i + 2 * L) - mean, d3 = widen_floats(xr + i + 3 * L) - mean;
            a0 += d0 * d0;
            a1 += d1 * d1;
            a2 += d2 * d2;
            a3 += d3 * d3;
        }
        for (; i < body; i += L) {
            const VecD d = widen_floats(xr + i) - mean;
            a0 += d * d;
        }
        acc = (a0 + a1) + (a2 + a3);
        for (std::int64_t l = 0; l < L; ++l) var += acc[l];
#endif
        for (std::int64_t i = body; i < n; ++i) var += (xr[i] - mean) * (xr[i] - mean);
        var /= static_cast<double>(n);
        const double inv = 1.0 / std::sqrt(var + eps);
#if defined(__GNUC__) || defined(__clang__)
        for (std::int64_t i = 0; i < body; i += L) {
            VecD v = (widen_floats(xr + i) - mean) * inv * widen_floats(scale + i);
            if (bias) v += widen_floats(bias + i);
            const HalfVecF h = __builtin_convertvector(v, HalfVecF);
            std::memcpy(yr + i, &h, sizeof h);
        }
#endif
        for (std::int64_t i = body; i < n; ++i)
            yr[i] = static_cast<float>(bias ? (xr[i] - mean) * inv * scale[i] + bias[i] : (xr[i] - mean) * inv * scale[i]);
    }
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

// Softmax of one row in place (attention's rows without a bias): floats in vectors.
inline void attention_softmax(float* r, std::int64_t n) { softmax_rows(r, r, 1, n); }
inline void attention_softmax(double* r, std::int64_t n) {
    double top = r[0];
    for (std::int64_t j = 1; j < n; ++j) top = r[j] > top ? r[j] : top;
    double sum = 0;
    for (std::int64_t j = 0; j < n; ++j) sum += (r[j] = std::exp(r[j] - top));
    const double inv = 1.0 / sum;
    for (std::int64_t j = 0; j < n; ++j) r[j] *= inv;
}

template <class T, class M>
void attention(const AttentionParams& p, const T* q, const T* k, const T* v, const M* mask, const std::int64_t* nonpad,
               T* y, T* qk, void* work) {
    const double neg_inf = -std::numeric_limits<double>::infinity();
    // Workspace: the bias row (double), Q and K of one head scaled (K for keys rounded up to
    // whole slivers), the scores of one head, then the GEMM packing buffer.
    const std::int64_t kv_padded = (p.kv_len + kSliver - 1) / kSliver * kSliver;
    double* const bias = static_cast<double*>(work);
    T* const qs = reinterpret_cast<T*>(bias + p.kv_len);
    T* const ks = qs + p.q_len * p.head;
    T* const sc = ks + kv_padded * p.head;
    T* const pack = sc + p.q_len * p.kv_len;
    const std::int64_t group = p.q_heads / p.kv_heads;
    const T root = static_cast<T>(p.scale_root);
    const Epilogue<T> none{};
    // No mask, padding, softcap, window or qk output: K^T packed for gemm_packed, the causal
    // frontier by blocks (below). The last sliver's columns past the keys stay zero: the packing
    // of every head writes only the keys' columns.
    const bool plain = !mask && !nonpad && !(p.softcap > 0) && p.left_window < 0 && p.right_window < 0 && !qk;
    if (plain && p.kv_len % kSliver != 0) std::fill(ks + (p.kv_len / kSliver) * p.head * kSliver, ks + kv_padded * p.head, T(0));
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
                if (plain) {  // K^T packed once for gemm_packed: key j in column j % kSliver of sliver j / kSliver
                    T* const col = ks + (j / kSliver) * p.head * kSliver + j % kSliver;
                    for (std::int64_t d = 0; d < p.head; ++d) col[d * kSliver] = static_cast<T>(row[d] * root);
                } else {
                    for (std::int64_t d = 0; d < p.head; ++d) ks[j * p.head + d] = static_cast<T>(row[d] * root);
                }
            }
            const T* const vh = v + b * p.v_stride[0] + hk * p.v_stride[1];
            T* const yh = y + b * p.y_stride[0] + h * p.y_stride[1];
            if (plain) {
                // No bias but the causal frontier: blocks of query rows, each with the keys its
                // last row attends (row i: keys [0, i + offset] when causal, else all). The keys
                // a causal row does not attend weigh 0 in the other rows of its block; the keys
                // past the block's last row are never computed (about half of the products).
                constexpr std::int64_t QB = 16;
                auto attends = [&](std::int64_t i) {
                    return p.causal ? std::max<std::int64_t>(0, std::min(p.kv_len, i + offset + 1)) : p.kv_len;
                };
                for (std::int64_t i0 = 0; i0 < p.q_len; i0 += QB) {
                    const std::int64_t rows = std::min(QB, p.q_len - i0), cols = attends(i0 + rows - 1);
                    T* const yb = yh + i0 * p.y_stride[2];
                    if (cols == 0) {  // no row of the block attends any key
                        for (std::int64_t i = 0; i < rows; ++i) std::fill_n(yb + i * p.y_stride[2], p.v_head, T(0));
                        continue;
                    }
                    T* const sb = sc + i0 * p.kv_len;
                    GemmArgs<T> qkt;  // this block's scores: its query rows against the keys it attends
                    qkt.M = rows; qkt.N = cols; qkt.K = p.head;
                    qkt.A = qs + i0 * p.head; qkt.rsa = p.head;
                    qkt.B = ks;
                    qkt.C = sb; qkt.ldc = p.kv_len;
                    gemm_packed(qkt);
                    for (std::int64_t i = 0; i < rows; ++i) {
                        T* const srow = sb + i * p.kv_len;
                        const std::int64_t n = attends(i0 + i);
                        if (n > 0) attention_softmax(srow, n);
                        std::fill(srow + n, srow + cols, T(0));
                    }
                    gemm<T>(rows, p.v_head, cols, sb, p.kv_len, 1, vh, p.v_stride[2], 1, yb, p.y_stride[2], false, nullptr, nullptr, none, pack);
                }
                continue;
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
            gemm<T>(p.q_len, p.v_head, p.kv_len, sc, p.kv_len, 1, vh, p.v_stride[2], 1, yh, p.y_stride[2], false, nullptr, nullptr, none, pack);
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

}  // namespace sofie_rt
