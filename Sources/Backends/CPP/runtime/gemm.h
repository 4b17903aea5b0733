// swift-sofie C++ runtime: The cache-blocked GEMM: packing, the register tile, row and vector products, packed weights.
// Part of sofie_runtime.h, which sofie embeds into every emitted header (see README.md here).
#pragma once
#include <algorithm>
#include "math.h"

namespace sofie_rt {

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
// A read in place. Optionally it prefetches pf_rows rows of another block of B (row r at
// pf + r * ldb, NR columns), one row every pf_step values of k, into L2: gemm_packed brings in
// the weights its next tiles read while this one computes.
// GCC and Clang get explicit SIMD vectors (their vector extensions, sized for any target);
// other compilers get the same loops in plain C++.
#if defined(__GNUC__) || defined(__clang__)
// One step of k of the register tile: the MR x NR sums take row k of b times column k of the
// rows of A. (A function, not a lambda: it takes the target of the AVX2 twin's region.)
template <int64_t NV, class T, class V>
SOFIE_MATH void tile_step(V (&acc)[MR][NV], const T* const (&rows)[MR], const T* b, int64_t ldb, int64_t csa, int64_t k) {
    constexpr int64_t L = Vec<T>::kLanes;
    V bv[NV];
    _Pragma("GCC unroll 16") for (int64_t v = 0; v < NV; ++v) std::memcpy(&bv[v], b + k * ldb + v * L, sizeof(V));
    _Pragma("GCC unroll 16") for (int64_t i = 0; i < MR; ++i) {
        const T ai = rows[i][k * csa];
        _Pragma("GCC unroll 16") for (int64_t v = 0; v < NV; ++v) acc[i][v] += bv[v] * ai;
    }
}
template <class T>
inline void tile(int64_t kc, const T* a, int64_t rsa, int64_t csa, int64_t mr, const T* b, int64_t ldb, T (&out)[MR][NR],
                 const T* pf = nullptr, int64_t pf_rows = 0, int64_t pf_step = 1) {
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
    const T* const(&crows)[MR] = rows;
    // k runs in groups of 4, the rows of the prefetch due in a group issued before it. (Tested
    // on every k, the prefetch cost about 7%: its test and the registers it holds made the loop
    // longer than its loads and FMAs; a loop of pf_step k's between the prefetches was slower
    // still, its exit mispredicted every pf_step k's. vit_b_16's 197x768x3072 product alone,
    // kernel_alone.cpp: 145 -> 154 GFLOP/s median, BENCHMARKS.md.)
    constexpr int64_t U = 4;
    int64_t pf_row = 0, pf_k = 0;  // the next row to prefetch, and the k from which it is due
    int64_t k = 0;
    for (; k + U <= kc; k += U) {
        if (pf_k < k + U && pf_row < pf_rows) {
            do {
                const char* r = reinterpret_cast<const char*>(pf + pf_row * ldb);
                _Pragma("GCC unroll 4") for (int64_t l = 0; l < NR * static_cast<int64_t>(sizeof(T)); l += 64) __builtin_prefetch(r + l, 0, 2);
                ++pf_row;
                pf_k += pf_step;
            } while (pf_k < k + U && pf_row < pf_rows);
        }
        _Pragma("GCC unroll 4") for (int64_t u = 0; u < U; ++u) tile_step<NV>(acc, crows, b, ldb, csa, k + u);
    }
    for (int64_t u = 0; u < U - 1 && k + u < kc; ++u) tile_step<NV>(acc, crows, b, ldb, csa, k + u);  // the last kc % U
    for (int64_t i = 0; i < MR; ++i)
        for (int64_t v = 0; v < NV; ++v) std::memcpy(&out[i][v * L], &acc[i][v], sizeof(V));
}
#else
template <class T>
inline void tile(int64_t kc, const T* a, int64_t rsa, int64_t csa, int64_t mr, const T* b, int64_t ldb, T (&out)[MR][NR],
                 const T* = nullptr, int64_t = 0, int64_t = 1) {
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
    int64_t j0 = 0;  // the columns stored in vectors
#if defined(__GNUC__) || defined(__clang__)
    // Float: the whole vectors of the tile's width (all of it when nr == NR) take the same sums
    // in the same order, in vectors, the activation applied before the store; the columns past
    // them go through the scalar code below. (At -O2 GCC leaves that code scalar, and narrow
    // products, attention's heads of 16 columns say, would spend more time storing than
    // multiplying.)
    if constexpr (std::is_same<T, float>::value) {
        constexpr int64_t L = Vec<T>::kLanes;
        const int64_t nv = nr / L;
        j0 = nv * L;
        if (nv > 0) {
            for (int64_t i = 0; i < mr; ++i) {
                T* ci = c + i * ldc;
                _Pragma("GCC unroll 16") for (int64_t v = 0; v < NR / L; ++v) {
                    if (v >= nv) break;
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
        }
    }
#endif
    if (j0 == nr) return;
    for (int64_t i = 0; i < mr; ++i) {
        T* ci = c + i * ldc;
        for (int64_t j = j0; j < nr; ++j) {
            T v = t[i][j];
            if (accumulate) v += ci[j];
            if (last) {
                if (row_bias) v += row_bias[i];
                if (col_bias) v += col_bias[j];
                if (residual) v += residual[i * ldc + j];
            }
            ci[j] = v;
        }
        if (last) activate(ci + j0, nr - j0, ep.act, ep.alpha, ep.beta);
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
constexpr int64_t kPanel = 128;
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
constexpr int64_t kSliver = kMaxNR;
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
// a time so that they stay in L2 while NC columns of slivers pass. The tiles over one panel
// prefetch, a share each, the panel the loop reads next: weights larger than L2 come from L3,
// and the first tile over a panel otherwise waited for it (vit_b_16's 197x768x3072 product
// alone, kernel_alone.cpp: 7319 -> 6696 us, BENCHMARKS.md).
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
                const int64_t tiles = (iEnd - ic + MR - 1) / MR;
                for (int64_t j = j0; j < jEnd; j += NR) {
                    const int64_t nr = std::min(NR, N - j);
                    const T* b = P + ((j / kSliver) * K + k0) * kSliver + j % kSliver;
                    // The panel read next (none when it is one this block of rows has read).
                    int64_t nj = -1, nk = 0;
                    if (j + NR < jEnd) { nj = j + NR; nk = k0; }
                    else if (iEnd >= M && k0 + KC < K) { nj = j0; nk = k0 + KC; }
                    else if (iEnd >= M && jEnd < N) { nj = jEnd; nk = 0; }
                    const T* next = nj >= 0 ? P + ((nj / kSliver) * K + nk) * kSliver + nj % kSliver : nullptr;
                    const int64_t nextRows = nj >= 0 ? std::min(KC, K - nk) : 0;
                    const int64_t share = (nextRows + tiles - 1) / tiles;  // rows per tile
                    const int64_t step = share > 0 ? std::max<int64_t>(1, kc / share) : 1;
                    for (int64_t i0 = ic, ti = 0; i0 < iEnd; i0 += MR, ++ti) {
                        const int64_t mr = std::min(MR, iEnd - i0);
                        const int64_t r0 = ti * share;
                        const int64_t rows = std::max<int64_t>(0, std::min(share, nextRows - r0));
                        tile(kc, p.A + i0 * p.rsa + k0 * p.csa, p.rsa, p.csa, mr, b, kSliver, t, rows > 0 ? next + r0 * kSliver : b,
                             rows, step);
                        store_tile(t, p.C + i0 * p.ldc + j, p.ldc, mr, nr, acc, last, p.row_bias ? p.row_bias + i0 : nullptr,
                                   p.col_bias ? p.col_bias + j : nullptr, p.epilogue,
                                   p.epilogue.residual ? p.epilogue.residual + i0 * p.ldc + j : nullptr);
                    }
                }
            }
        }
    }
}

}  // namespace sofie_rt
