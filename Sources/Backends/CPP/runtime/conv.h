// swift-sofie C++ runtime: Convolution and pooling: im2col GEMMs, direct kernels, depthwise kernels, col2im, pooling.
// Part of sofie_runtime.h, which sofie embeds into every emitted header (see README.md here).
#pragma once
#include <algorithm>
#include <limits>
#include "gemm.h"

namespace sofie_rt {

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
constexpr int64_t kDepthwiseMaxRow = 1024;
constexpr int64_t kDepthwiseRowBuffer = 4 * kDepthwiseMaxRow + 256;  // the padded input row
constexpr int64_t kDepthwiseWork = kDepthwiseMaxRow + 64 + kDepthwiseRowBuffer;
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

}  // namespace sofie_rt
