// swift-sofie C++ runtime: Kernels on the blocked channel layout (NCHW16c) the block-channels pass puts chains of convolutions in.
// Part of sofie_runtime.h, which sofie embeds into every emitted header (see README.md here).
#pragma once
#include <algorithm>
#include <limits>
#include <type_traits>
#include <vector>
#include "base.h"
#include "math.h"
#include "conv.h"

namespace sofie_rt {

// The blocked layout: an image of C channels over H x W pixels is stored as ceil(C / 16)
// blocks, each H x W pixels of 16 consecutive channel values: channel c of pixel p at
// [(c / 16 * H * W + p) * 16 + c % 16]. A convolution then takes one vector of 16 output
// channels per pixel, and a depthwise one a vector of 16 channels, with no transposes, no
// im2col and no packing per call (ONNX Runtime's NCHWc, OpenVINO's blocked formats). The lanes
// of channels past C hold finite values that nothing reads for a real channel: to_blocked
// writes zeros there, and every blocked weight is zero for them. The block is 16 floats
// whatever the target, so that layouts never depend on the vector width (see README.md).
constexpr int64_t kBlock = 16;

#if defined(__GNUC__) || defined(__clang__)
// A 16 x 16 tile of floats transposed in registers: four rounds of exchanging the off-diagonal
// halves of 2 x 2 blocks of sizes 1, 2, 4 and 8 (each a two-vector shuffle with a fixed mask).
typedef float V16 __attribute__((vector_size(64)));
#if defined(__clang__)
#define SOFIE_SHUFFLE16(a, b, ...) __builtin_shufflevector(a, b, __VA_ARGS__)
#else
typedef int32_t V16i __attribute__((vector_size(64)));
#define SOFIE_SHUFFLE16(a, b, ...) __builtin_shuffle(a, b, V16i{__VA_ARGS__})
#endif
SOFIE_MATH void transpose16(V16* t) {
    for (int r = 0; r < 16; ++r)
        if ((r & 1) == 0) {
            const V16 a = t[r], c = t[r + 1];
            t[r] = SOFIE_SHUFFLE16(a, c, 0, 16, 2, 18, 4, 20, 6, 22, 8, 24, 10, 26, 12, 28, 14, 30);
            t[r + 1] = SOFIE_SHUFFLE16(a, c, 1, 17, 3, 19, 5, 21, 7, 23, 9, 25, 11, 27, 13, 29, 15, 31);
        }
    for (int r = 0; r < 16; ++r)
        if ((r & 2) == 0) {
            const V16 a = t[r], c = t[r + 2];
            t[r] = SOFIE_SHUFFLE16(a, c, 0, 1, 16, 17, 4, 5, 20, 21, 8, 9, 24, 25, 12, 13, 28, 29);
            t[r + 2] = SOFIE_SHUFFLE16(a, c, 2, 3, 18, 19, 6, 7, 22, 23, 10, 11, 26, 27, 14, 15, 30, 31);
        }
    for (int r = 0; r < 16; ++r)
        if ((r & 4) == 0) {
            const V16 a = t[r], c = t[r + 4];
            t[r] = SOFIE_SHUFFLE16(a, c, 0, 1, 2, 3, 16, 17, 18, 19, 8, 9, 10, 11, 24, 25, 26, 27);
            t[r + 4] = SOFIE_SHUFFLE16(a, c, 4, 5, 6, 7, 20, 21, 22, 23, 12, 13, 14, 15, 28, 29, 30, 31);
        }
    for (int r = 0; r < 16; ++r)
        if ((r & 8) == 0) {
            const V16 a = t[r], c = t[r + 8];
            t[r] = SOFIE_SHUFFLE16(a, c, 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23);
            t[r + 8] = SOFIE_SHUFFLE16(a, c, 8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31);
        }
}
#undef SOFIE_SHUFFLE16
#endif

// x (C channels of HW pixels) into the blocked layout (ceil(C / 16) blocks).
inline void to_blocked(const float* x, int64_t C, int64_t HW, float* y) {
    const int64_t CB = (C + kBlock - 1) / kBlock;
    for (int64_t cb = 0; cb < CB; ++cb) {
        float* yb = y + cb * HW * kBlock;
        int64_t p0 = 0;
#if defined(__GNUC__) || defined(__clang__)
        // Whole blocks of 16 channels, 16 pixels at a time: a tile transposed in registers
        // (AVX-512 only: with narrower vectors the compiler splits the 64-byte shuffles into
        // element moves, 5x slower than the loop below).
        if (kVectorBytes == 64 && (cb + 1) * kBlock <= C) {
            for (; p0 + kBlock <= HW; p0 += kBlock) {
                V16 t[kBlock];
                for (int64_t l = 0; l < kBlock; ++l) std::memcpy(&t[l], x + (cb * kBlock + l) * HW + p0, sizeof(V16));
                transpose16(t);
                std::memcpy(yb + p0 * kBlock, t, sizeof t);
            }
        }
#endif
        // The rest (and a partial last block) 64 pixels at a time, so that the 16 rows read
        // and the 4 KB written stay in L1.
        for (; p0 < HW; p0 += 64) {
            const int64_t pn = std::min<int64_t>(64, HW - p0);
            for (int64_t l = 0; l < kBlock; ++l) {
                const int64_t c = cb * kBlock + l;
                float* d = yb + p0 * kBlock + l;
                if (c < C) {
                    const float* s = x + c * HW + p0;
                    for (int64_t p = 0; p < pn; ++p) d[p * kBlock] = s[p];
                } else {
                    for (int64_t p = 0; p < pn; ++p) d[p * kBlock] = 0.0f;
                }
            }
        }
    }
}

// The blocked x back into C channels of HW pixels (the lanes past C dropped).
inline void from_blocked(const float* x, int64_t C, int64_t HW, float* y) {
    const int64_t CB = (C + kBlock - 1) / kBlock;
    for (int64_t cb = 0; cb < CB; ++cb) {
        const float* xb = x + cb * HW * kBlock;
        int64_t p0 = 0;
#if defined(__GNUC__) || defined(__clang__)
        if (kVectorBytes == 64 && (cb + 1) * kBlock <= C) {
            for (; p0 + kBlock <= HW; p0 += kBlock) {
                V16 t[kBlock];
                std::memcpy(t, xb + p0 * kBlock, sizeof t);
                transpose16(t);
                for (int64_t l = 0; l < kBlock; ++l) std::memcpy(y + (cb * kBlock + l) * HW + p0, &t[l], sizeof(V16));
            }
        }
#endif
        for (; p0 < HW; p0 += 64) {
            const int64_t pn = std::min<int64_t>(64, HW - p0);
            for (int64_t l = 0; l < kBlock && cb * kBlock + l < C; ++l) {
                const float* s = xb + p0 * kBlock + l;
                float* d = y + (cb * kBlock + l) * HW + p0;
                for (int64_t p = 0; p < pn; ++p) d[p] = s[p * kBlock];
            }
        }
    }
}

// GlobalAveragePool of a blocked image: CB blocks of HW pixels into CB blocks of one pixel.
inline void global_average_blocked(const float* x, int64_t CB, int64_t HW, float* y) {
    for (int64_t cb = 0; cb < CB; ++cb) {
        float sum[kBlock] = {};
        const float* xb = x + cb * HW * kBlock;
        for (int64_t p = 0; p < HW; ++p)
            for (int64_t l = 0; l < kBlock; ++l) sum[l] += xb[p * kBlock + l];
        for (int64_t l = 0; l < kBlock; ++l) y[cb * kBlock + l] = sum[l] / static_cast<float>(HW);
    }
}

// The columns [lo, hi) of an output row whose every tap is inside the input row (no bounds
// checks needed there): iw = ow * s - p + kw * d within [0, IW) for kw = 0 and kw = K - 1.
struct Interior {
    int64_t lo, hi;
};
inline Interior interior_columns(int64_t IW, int64_t OW, int64_t K, int64_t s, int64_t d, int64_t p) {
    const int64_t lo = std::min(OW, (p + s - 1) / s);
    const int64_t top = IW - 1 + p - (K - 1) * d;  // ow * s <= top
    const int64_t hi = top < 0 ? lo : std::max(lo, std::min(OW, top / s + 1));
    return {lo, hi};
}

// MaxPool of a blocked image of CB blocks (1-D or 2-D window): as sofie_rt::pool computes it,
// per lane, the first tap inside the image and then every larger one (so NaNs and signed zeros
// come out as there). Output pixels whose window lies wholly inside the row take a vector path
// over the rows of the window that are inside the image; the edge columns go tap by tap.
inline void max_pool_blocked(int64_t CB, const float* x, const Window& win, float* y) {
    const int64_t IH = win.in[1], IW = win.in[2], OH = win.out[1], OW = win.out[2];
    const int64_t KH = win.k[1], KW = win.k[2];
    const Interior inner = interior_columns(IW, OW, KW, win.s[2], win.d[2], win.p[2]);
    for (int64_t cb = 0; cb < CB; ++cb) {
        const float* xc = x + cb * IH * IW * kBlock;
        for (int64_t oh = 0; oh < OH; ++oh) {
            float* yr = y + (cb * OH + oh) * OW * kBlock;
            const int64_t h0 = oh * win.s[1] - win.p[1];
            // The window rows inside the image: kh in [kh0, kh1).
            int64_t kh0 = 0, kh1 = KH;
            while (kh0 < KH && h0 + kh0 * win.d[1] < 0) ++kh0;
            while (kh1 > kh0 && h0 + (kh1 - 1) * win.d[1] >= IH) --kh1;
            auto pixel = [&](int64_t ow) {
                float m[kBlock];
                bool any = false;
                for (int64_t kh = kh0; kh < kh1; ++kh) {
                    const int64_t ih = h0 + kh * win.d[1];
                    for (int64_t kw = 0; kw < KW; ++kw) {
                        const int64_t iw = ow * win.s[2] + kw * win.d[2] - win.p[2];
                        if (iw < 0 || iw >= IW) continue;
                        const float* v = xc + (ih * IW + iw) * kBlock;
                        if (!any) {
                            for (int64_t l = 0; l < kBlock; ++l) m[l] = v[l];
                            any = true;
                        } else {
                            for (int64_t l = 0; l < kBlock; ++l) m[l] = v[l] > m[l] ? v[l] : m[l];
                        }
                    }
                }
                // A window wholly in the padding (ONNX's geometry never makes one) gives -inf.
                if (!any)
                    for (int64_t l = 0; l < kBlock; ++l) m[l] = -std::numeric_limits<float>::infinity();
                std::memcpy(yr + ow * kBlock, m, sizeof m);
            };
            const int64_t lo = kh0 < kh1 ? inner.lo : OW, hi = kh0 < kh1 ? inner.hi : OW;
            for (int64_t ow = 0; ow < lo; ++ow) pixel(ow);
#if defined(__GNUC__) || defined(__clang__)
            typedef Vec<float>::type V;
            constexpr int64_t L = Vec<float>::kLanes, NV = kBlock / L;
            // Eight pixels at a time: eight independent chains of maxima hide the latency.
            constexpr int64_t T = 8;
            auto tile = [&](int64_t ow, auto count) {
                constexpr int64_t P = decltype(count)::value;
                const float* base = xc + (h0 * IW + ow * win.s[2] - win.p[2]) * kBlock;
                const int64_t step = win.s[2] * kBlock;
                V m[P][NV];
                _Pragma("GCC unroll 8") for (int64_t p = 0; p < P; ++p)
                    _Pragma("GCC unroll 4") for (int64_t v = 0; v < NV; ++v) std::memcpy(&m[p][v], base + kh0 * win.d[1] * IW * kBlock + p * step + v * L, sizeof(V));
                for (int64_t kh = kh0; kh < kh1; ++kh) {
                    const float* r = base + kh * win.d[1] * IW * kBlock;
                    for (int64_t kw = kh == kh0 ? 1 : 0; kw < KW; ++kw)
                        _Pragma("GCC unroll 8") for (int64_t p = 0; p < P; ++p)
                            _Pragma("GCC unroll 4") for (int64_t v = 0; v < NV; ++v) {
                                V t;
                                std::memcpy(&t, r + kw * win.d[2] * kBlock + p * step + v * L, sizeof(V));
                                m[p][v] = t > m[p][v] ? t : m[p][v];
                            }
                }
                std::memcpy(yr + ow * kBlock, m, sizeof m);
            };
            int64_t ow = lo;
            for (; ow + T <= hi; ow += T) tile(ow, std::integral_constant<int64_t, T>{});
            for (; ow < hi; ++ow) tile(ow, std::integral_constant<int64_t, 1>{});
#else
            for (int64_t ow = lo; ow < hi; ++ow) pixel(ow);
#endif
            for (int64_t ow = hi; ow < OW; ++ow) pixel(ow);  // hi >= lo: interior_columns never gives less
        }
    }
}

#if defined(__GNUC__) || defined(__clang__)
// Vectors of the target per block of 16 floats (1 on AVX-512, 2 on AVX, 4 on SSE2 and NEON).
constexpr int64_t kBlockVecs = kBlock * 4 / kVectorBytes;
constexpr int64_t kLanesF = kVectorBytes / 4;
// The register tile of conv_blocked: F blocks of 16 output channels at P output pixels (AVX-512:
// 4 x 6 x 1 = 24 accumulators of its 32 registers; with 16 registers, 1 x 6 x 2 or 1 x 2 x 4).
constexpr int64_t kConvTileF = kVectorBytes == 64 ? 4 : 1;
constexpr int64_t kConvTileP = kVectorBytes == 16 ? 2 : 6;
// The depthwise tile: P pixels of one block.
constexpr int64_t kDepthwiseTileP = kVectorBytes == 64 ? 8 : kVectorBytes == 32 ? 6 : 2;

template <int64_t F, int64_t P>
struct BlockAcc {
    VecF v[F][P][kBlockVecs];
};

// A tile's starting sums: the bias (first pass over the input blocks) or what y holds.
template <int64_t F, int64_t P>
SOFIE_MATH void tile_start(BlockAcc<F, P>& a, const float* y, int64_t yf, const float* bias, bool first) {
    constexpr int64_t L = kLanesF;
    _Pragma("GCC unroll 4") for (int64_t f = 0; f < F; ++f)
        _Pragma("GCC unroll 16") for (int64_t p = 0; p < P; ++p)
            _Pragma("GCC unroll 4") for (int64_t v = 0; v < kBlockVecs; ++v) {
                if (first) {
                    a.v[f][p][v] = VecF{};
                    if (bias) std::memcpy(&a.v[f][p][v], bias + f * kBlock + v * L, sizeof(VecF));
                } else {
                    std::memcpy(&a.v[f][p][v], y + f * yf + p * kBlock + v * L, sizeof(VecF));
                }
            }
}

// Stores a tile's sums; the last pass adds the residual (res, at the tile's place, or null) and
// applies the activation.
template <int64_t F, int64_t P>
SOFIE_MATH void tile_store(const BlockAcc<F, P>& a, float* y, int64_t yf, bool last, const Epilogue<float>& ep, const float* res) {
    constexpr int64_t L = kLanesF;
    if (!last) {
        _Pragma("GCC unroll 4") for (int64_t f = 0; f < F; ++f)
            _Pragma("GCC unroll 16") for (int64_t p = 0; p < P; ++p)
                _Pragma("GCC unroll 4") for (int64_t v = 0; v < kBlockVecs; ++v)
                    std::memcpy(y + f * yf + p * kBlock + v * L, &a.v[f][p][v], sizeof(VecF));
        return;
    }
    VecF s[F * P * kBlockVecs];
    _Pragma("GCC unroll 4") for (int64_t f = 0; f < F; ++f)
        _Pragma("GCC unroll 16") for (int64_t p = 0; p < P; ++p)
            _Pragma("GCC unroll 4") for (int64_t v = 0; v < kBlockVecs; ++v) {
                VecF& t = s[(f * P + p) * kBlockVecs + v];
                t = a.v[f][p][v];
                if (res) {
                    VecF r;
                    std::memcpy(&r, res + f * yf + p * kBlock + v * L, sizeof(VecF));
                    t += r;
                }
            }
    act_vecs<F * P * kBlockVecs>(s, ep.act, ep.alpha, ep.beta);
    _Pragma("GCC unroll 4") for (int64_t f = 0; f < F; ++f)
        _Pragma("GCC unroll 16") for (int64_t p = 0; p < P; ++p)
            _Pragma("GCC unroll 4") for (int64_t v = 0; v < kBlockVecs; ++v)
                std::memcpy(y + f * yf + p * kBlock + v * L, &s[(f * P + p) * kBlockVecs + v], sizeof(VecF));
}

// A range of bytes to bring into L2 a few cache lines at a time: conv_blocked's passes prefetch
// the weights of the pass after them, per_step lines before each tap of each tile (weights
// larger than L2 come from L3, and the first tiles of a pass otherwise waited for them; all of a
// tile's share at once before the tile was slower on small images). conv_blocked_taps keeps the
// position in registers and writes it back here.
struct Prefetcher {
    const char* base = nullptr;
    int64_t lines = 0, done = 0, per_step = 0;
};

// One step of a Prefetcher's range, the position (pfp, and the lines left) in the caller's
// registers: the next `per` lines, or those left.
SOFIE_MATH void prefetch_step(const char*& pfp, int64_t& pfLeft, int64_t per) {
    if (pfLeft > 0) {
        const int64_t n = per < pfLeft ? per : pfLeft;
        for (int64_t i = 0; i < n; ++i) __builtin_prefetch(pfp + i * 64, 0, 2);
        pfLeft -= n;
        if (pfLeft > 0) pfp += n * 64;
    }
}

// Adds to the tile's sums input channel ic of tap xp/wk: F output blocks x P pixels.
template <int64_t F, int64_t P>
SOFIE_MATH void conv_blocked_lane(BlockAcc<F, P>& a, const float* xp, const float* wk, int64_t ic, int64_t icStride, int64_t step) {
    constexpr int64_t BV = kBlockVecs, L = kLanesF;
    VecF wv[F][BV];
    _Pragma("GCC unroll 4") for (int64_t f = 0; f < F; ++f)
        _Pragma("GCC unroll 4") for (int64_t v = 0; v < BV; ++v)
            std::memcpy(&wv[f][v], wk + ic * icStride + f * kBlock + v * L, sizeof(VecF));
    _Pragma("GCC unroll 16") for (int64_t p = 0; p < P; ++p) {
        const float xs = xp[p * step + ic];
        _Pragma("GCC unroll 4") for (int64_t f = 0; f < F; ++f)
            _Pragma("GCC unroll 4") for (int64_t v = 0; v < BV; ++v) a.v[f][p][v] += xs * wv[f][v];
    }
}

// Adds to the tile's sums the taps of ncb input blocks: x points at the tile's first pixel's
// window origin in the first block (blocks `plane` apart), w at the first output block's
// weights for that input block (input blocks wcb apart); the weights of one input channel for
// the gw output blocks of the weight's group are consecutive, so output block f of the tile is
// at f * 16 and input channel ic at ic * gw * 16 (GW: gw known at compile time, 0: not).
// taps[2t] and taps[2t + 1] are tap t's offsets into x and w, inside the image for every pixel
// of the tile; pixels are SW (or, for SW = 0, sw) input columns apart. The last of the ncb
// blocks holds `tail` real channels (16 when it is full): only those are read.
// Before each tap of the full blocks it prefetches the next pref.per_step lines of pref.
template <int64_t F, int64_t P, int64_t SW, int64_t GW>
SOFIE_MATH void conv_blocked_taps(BlockAcc<F, P>& a, const float* x, int64_t plane, const float* w, int64_t gw, int64_t wcb, int64_t ncb,
                                  const int64_t* taps, int64_t ntaps, int64_t sw, int64_t tail, Prefetcher& pref) {
    const int64_t step = (SW > 0 ? SW : sw) * kBlock;
    const char* pfp = pref.base + pref.done * 64;
    int64_t pfLeft = pref.lines - pref.done;
    const int64_t pfPer = pref.per_step;
    const int64_t icStride = (GW > 0 ? GW : gw) * kBlock;
    const int64_t full = tail < kBlock ? ncb - 1 : ncb;
    for (int64_t cb = 0; cb < full; ++cb, x += plane, w += wcb)
        for (int64_t t = 0; t < ntaps; ++t) {
            const float* xp = x + taps[2 * t];
            const float* wk = w + taps[2 * t + 1];
            prefetch_step(pfp, pfLeft, pfPer);
            _Pragma("GCC unroll 16") for (int64_t ic = 0; ic < kBlock; ++ic) conv_blocked_lane<F, P>(a, xp, wk, ic, icStride, step);
        }
    pref.done = pref.lines - pfLeft;
    if (full < ncb)
        for (int64_t t = 0; t < ntaps; ++t) {
            const float* xp = x + taps[2 * t];
            const float* wk = w + taps[2 * t + 1];
            for (int64_t ic = 0; ic < tail; ++ic) conv_blocked_lane<F, P>(a, xp, wk, ic, icStride, step);
        }
}

// One output block (F = 1: RegNet's groups of 16 channels) under a window 3 wide with unit
// dilation, on AVX-512: per row of taps and input channel, each input column the tile reads is
// broadcast once and multiplied by the weights of every tap that reads it (at stride 1 a column
// feeds 3 of the tile's pixels, at stride 2 one or two), rather than once per tap. Tap by tap,
// the tile loaded one weight vector and 8 broadcasts per 8 FMAs, more than the two load ports
// keep up with. The sums of a pixel run row, input channel, column (the tap-by-tap tile: row,
// column, input channel), so results differ from it in rounding only.
constexpr bool kConvRows3 = kVectorBytes == 64;
// Rows of at least 14 pixels (RegNet's 14 x 14 stage, and 28 and 56 as 14 + 14 ...) take tiles
// of 14 pixels, one sum each (tiles of up to 8 keep two, the even and the odd input channels',
// so that enough independent sums cover the FMA latency).
constexpr int64_t kRows3Wide = 14;
// Rows of 7 pixels (the last stage of RegNet and ResNets) go two rows per tile.
constexpr int64_t kRows3Pair = 7;

template <int64_t P, int64_t S, int64_t R>
SOFIE_MATH void conv_blocked_lane3(BlockAcc<1, P * R>& a, const float* xp, int64_t rowStep, const float* wk, int64_t ic) {
    constexpr int64_t J = (P - 1) * S + 3;  // input columns a row of the tile reads
    VecF wv[3];
    _Pragma("GCC unroll 3") for (int64_t kw = 0; kw < 3; ++kw)
        std::memcpy(&wv[kw], wk + kw * kBlock * kBlock + ic * kBlock, sizeof(VecF));
    _Pragma("GCC unroll 2") for (int64_t r = 0; r < R; ++r)
        _Pragma("GCC unroll 64") for (int64_t j = 0; j < J; ++j) {
            const float xs = xp[r * rowStep + j * kBlock + ic];
            _Pragma("GCC unroll 3") for (int64_t kw = 0; kw < 3; ++kw) {
                const int64_t q = j - kw;
                if (q >= 0 && q % S == 0 && q / S < P) a.v[0][r * P + q / S][0] += xs * wv[kw];
            }
        }
}

// The taps of ncb input blocks for conv_blocked_lane3: as conv_blocked_taps with F = 1, one
// weight group of one block (gw = 1) and stride S, taps the rows' 3 taps each in column order.
// R = 2: two output rows of P pixels each, the second's input rowStep floats after the first's
// (the same taps: both rows' windows inside the image), its sums at a.v[0][P + p].
template <int64_t P, int64_t S, int64_t R = 1>
SOFIE_MATH void conv_blocked_rows3(BlockAcc<1, P * R>& a, const float* x, int64_t plane, const float* w, int64_t wcb, int64_t ncb,
                                   const int64_t* taps, int64_t ntaps, int64_t tail, Prefetcher& pref, int64_t rowStep = 0) {
    const char* pfp = pref.base + pref.done * 64;
    int64_t pfLeft = pref.lines - pref.done;
    const int64_t pfPer = pref.per_step * 3;
    constexpr bool dual = P * R <= 8;
    BlockAcc<1, P * R> b{};  // tiles of up to 8: the odd input channels' sums (a: the even ones'); else unused
    for (int64_t cb = 0; cb < ncb; ++cb, x += plane, w += wcb) {
        const int64_t lanes = cb + 1 == ncb ? tail : kBlock;
        for (int64_t t = 0; t < ntaps; t += 3) {
            const float* xp = x + taps[2 * t];
            const float* wk = w + taps[2 * t + 1];
            prefetch_step(pfp, pfLeft, pfPer);
            if (lanes == kBlock) {
                _Pragma("GCC unroll 16") for (int64_t ic = 0; ic < kBlock; ++ic)
                    conv_blocked_lane3<P, S, R>(dual && ic % 2 ? b : a, xp, rowStep, wk, ic);
            } else {
                for (int64_t ic = 0; ic < lanes; ++ic) conv_blocked_lane3<P, S, R>(dual && ic % 2 ? b : a, xp, rowStep, wk, ic);
            }
        }
    }
    pref.done = pref.lines - pfLeft;
    if constexpr (dual) {
        _Pragma("GCC unroll 16") for (int64_t p = 0; p < P * R; ++p) a.v[0][p][0] += b.v[0][p][0];
    }
}

// A whole tile of conv_blocked_rows3: start, the taps of every input block, store.
template <int64_t P, int64_t S, int64_t R = 1>
inline void conv_blocked_tile3(const float* x, int64_t plane, const float* w, int64_t wcb, int64_t ncb, const int64_t* taps, int64_t ntaps,
                               int64_t tail, float* y, int64_t yf, const float* bias, bool first, bool last, const Epilogue<float>& ep,
                               const float* res, Prefetcher& pf, int64_t rowStep = 0) {
    BlockAcc<1, P * R> a;
    tile_start(a, y, yf, bias, first);
    conv_blocked_rows3<P, S, R>(a, x, plane, w, wcb, ncb, taps, ntaps, tail, pf, rowStep);
    tile_store(a, y, yf, last, ep, res);
}

// conv_blocked_rows3 serves a pass of F output blocks at input stride SW with weight groups of GW.
template <int64_t F, int64_t SW, int64_t GW>
constexpr bool conv_rows3_applies() { return kConvRows3 && F == 1 && GW == 1 && (SW == 1 || SW == 2); }

// The taps of output pixel (oh, ow) inside the image, x offsets from the block's start; for
// ow < 0, those of the rows inside for the row's interior tiles, x offsets from input column
// ow * sw - pw of the tile's first pixel. Returns their count.
inline int64_t conv_blocked_tap_list(const Window& win, int64_t oh, int64_t ow, int64_t gw, int64_t* taps) {
    const int64_t IH = win.in[1], IW = win.in[2], KH = win.k[1], KW = win.k[2];
    const int64_t ih0 = oh * win.s[1] - win.p[1], iw0 = ow < 0 ? 0 : ow * win.s[2] - win.p[2];
    int64_t n = 0;
    for (int64_t kh = 0; kh < KH; ++kh) {
        const int64_t ih = ih0 + kh * win.d[1];
        if (ih < 0 || ih >= IH) continue;
        for (int64_t kw = 0; kw < KW; ++kw) {
            const int64_t iw = iw0 + kw * win.d[2];
            if (ow >= 0 && (iw < 0 || iw >= IW)) continue;
            taps[2 * n] = (ih * IW + (ow < 0 ? kw * win.d[2] : iw)) * kBlock;
            taps[2 * n + 1] = (kh * KW + kw) * kBlock * kBlock * gw;
            ++n;
        }
    }
    return n;
}

// One interior tile: start, the taps of every input block, store.
template <int64_t F, int64_t P, int64_t SW, int64_t GW>
inline void conv_blocked_tile(const float* x, int64_t plane, const float* w, int64_t gw, int64_t wcb, int64_t ncb, const int64_t* taps,
                              int64_t ntaps, int64_t sw, int64_t tail, float* y, int64_t yf, const float* bias, bool first, bool last,
                              const Epilogue<float>& ep, const float* res, Prefetcher& pf, bool rows3) {
    if constexpr (conv_rows3_applies<F, SW, GW>()) {
        if (rows3) {
            conv_blocked_tile3<P, SW>(x, plane, w, wcb, ncb, taps, ntaps, tail, y, yf, bias, first, last, ep, res, pf);
            return;
        }
    }
    BlockAcc<F, P> a;
    tile_start(a, y, yf, bias, first);
    conv_blocked_taps<F, P, SW, GW>(a, x, plane, w, gw, wcb, ncb, taps, ntaps, sw, tail, pf);
    tile_store(a, y, yf, last, ep, res);
}

// The interior tile of `take` pixels (1 <= take <= P), the count a template argument.
template <int64_t F, int64_t P, int64_t SW, int64_t GW>
inline void conv_blocked_tile_of(int64_t take, const float* x, int64_t plane, const float* w, int64_t gw, int64_t wcb, int64_t ncb,
                                 const int64_t* taps, int64_t ntaps, int64_t sw, int64_t tail, float* y, int64_t yf, const float* bias,
                                 bool first, bool last, const Epilogue<float>& ep, const float* res, Prefetcher& pf, bool rows3) {
    if constexpr (P > 1) {
        if (take < P) {
            conv_blocked_tile_of<F, P - 1, SW, GW>(take, x, plane, w, gw, wcb, ncb, taps, ntaps, sw, tail, y, yf, bias, first, last, ep, res, pf,
                                                   rows3);
            return;
        }
    }
    conv_blocked_tile<F, P, SW, GW>(x, plane, w, gw, wcb, ncb, taps, ntaps, sw, tail, y, yf, bias, first, last, ep, res, pf, rows3);
}

// Pixels per interior tile of F output blocks: with one block on AVX-512, 8, so that 8
// independent sums cover the FMA latency (6 left the FMA units idle a quarter of the time; RegNet's
// grouped convolutions have one block per group). 16 -> 16 channels 3x3, alone (kernel_alone.cpp):
// 56x56 105 -> 137 GFLOP/s, 28x28 104 -> 122, 7x7 74-82 -> 115-124 (two runs). 12 pixels, now
// that the p loops unroll that far, ran faster alone (56x56 153, 28x28 143) but gave RegNet and
// EfficientNet nothing, and would add four tile widths to every header's build.
template <int64_t F>
constexpr int64_t conv_tile_pixels() { return F == 1 && kVectorBytes == 64 ? 8 : kConvTileP; }

// One pass of F output blocks from mb over input blocks [cb0, cb1), every output pixel: w is
// the weights of the group of gw output blocks these are in, at output block f0 of the group
// (w already advanced by f0 * 16); taps has room for 2 * KH * KW offsets. The pass prefetches
// the `next` floats (the next pass's weights; null: none) spread over its tiles.
template <int64_t F, int64_t SW, int64_t GW>
inline void conv_blocked_pass(int64_t CB, int64_t mb, int64_t cb0, int64_t cb1, const float* x, const float* w, int64_t gw,
                              const float* bias, const Window& win, float* y, const Epilogue<float>& ep, int64_t* taps, int64_t lanes,
                              const float* next, int64_t nextCount) {
    constexpr int64_t P = conv_tile_pixels<F>();
    const int64_t IW = win.in[2], OH = win.out[1], OW = win.out[2], khw = win.k[1] * win.k[2], sw = win.s[2], pw = win.p[2];
    const int64_t plane = win.in[1] * IW * kBlock, wcb = khw * kBlock * kBlock * gw, yf = OH * OW * kBlock;
    const bool first = cb0 == 0, last = cb1 == CB;
    const int64_t tail = last ? lanes : kBlock;
    const float* xs = x + cb0 * plane;
    const float* wm = w + cb0 * wcb;
    const float* bm = bias ? bias + mb * kBlock : nullptr;
    const int64_t ncb = cb1 - cb0;
    const Interior in = interior_columns(IW, OW, win.k[2], sw, win.d[2], pw);
    const bool rows3 = win.k[2] == 3 && win.d[2] == 1;
    Prefetcher pf;
    if (next && nextCount > 0) {
        const int64_t edges = in.lo + (OW - std::max(in.hi, in.lo));
        const int64_t tiles = OH * (edges + (in.hi > in.lo ? (in.hi - in.lo + P - 1) / P : 0));
        const int64_t steps = std::max<int64_t>(1, tiles * ncb * khw);
        pf.base = reinterpret_cast<const char*>(next);
        pf.lines = (nextCount * static_cast<int64_t>(sizeof(float)) + 63) / 64;
        pf.per_step = (pf.lines + steps - 1) / steps;
    }
    for (int64_t oh = 0; oh < OH; ++oh) {
        const int64_t at = (mb * OH + oh) * OW * kBlock;
        float* yr = y + at;
        const float* rr = ep.residual ? ep.residual + at : nullptr;
        if constexpr (conv_rows3_applies<F, SW, GW>()) {
            // Rows of kRows3Pair pixels with no edge pixels go two at a time when both rows'
            // windows lie inside the image (their outputs are consecutive: one tile of 2 x 7).
            const int64_t ih1 = (oh + 1) * win.s[1] - win.p[1];
            if (rows3 && OW == kRows3Pair && in.lo == 0 && in.hi == OW && oh + 1 < OH && oh * win.s[1] >= win.p[1] &&
                ih1 + (win.k[1] - 1) * win.d[1] < win.in[1]) {
                const int64_t n = conv_blocked_tap_list(win, oh, -1, gw, taps);
                conv_blocked_tile3<kRows3Pair, SW, 2>(xs - pw * kBlock, plane, wm, wcb, ncb, taps, n, tail, yr, yf, bm, first, last, ep, rr, pf,
                                                      win.s[1] * IW * kBlock);
                ++oh;
                continue;
            }
        }
        // One pixel whose window reaches past the row's ends: its own tap list.
        auto edge = [&](int64_t ow) {
            const int64_t n = conv_blocked_tap_list(win, oh, ow, gw, taps);
            BlockAcc<F, 1> a;
            tile_start(a, yr + ow * kBlock, yf, bm, first);
            conv_blocked_taps<F, 1, SW, GW>(a, xs, plane, wm, gw, wcb, ncb, taps, n, sw, tail, pf);
            tile_store(a, yr + ow * kBlock, yf, last, ep, rr ? rr + ow * kBlock : nullptr);
        };
        for (int64_t ow = 0; ow < in.lo; ++ow) edge(ow);
        if (in.lo < in.hi) {
            const int64_t n = conv_blocked_tap_list(win, oh, -1, gw, taps);
            // Tiles of P pixels, the last two of the row evened out (each tile streams the
            // weights once: 7 columns as 4 + 3, not 6 + 1).
            for (int64_t ow = in.lo; ow < in.hi;) {
                const int64_t left = in.hi - ow;
                const int64_t take = left <= P ? left : left >= 2 * P ? P : (left + 1) / 2;
                const float* xt = xs + (ow * sw - pw) * kBlock;
                float* yt = yr + ow * kBlock;
                const float* rt = rr ? rr + ow * kBlock : nullptr;
                if constexpr (conv_rows3_applies<F, SW, GW>()) {
                    if (rows3 && left >= kRows3Wide) {
                        conv_blocked_tile3<kRows3Wide, SW>(xt, plane, wm, wcb, ncb, taps, n, tail, yt, yf, bm, first, last, ep, rt, pf);
                        ow += kRows3Wide;
                        continue;
                    }
                }
                conv_blocked_tile_of<F, P, SW, GW>(take, xt, plane, wm, gw, wcb, ncb, taps, n, sw, tail, yt, yf, bm, first, last, ep, rt, pf,
                                                   rows3);
                ow += take;
            }
        }
        for (int64_t ow = std::max(in.hi, in.lo); ow < OW; ++ow) edge(ow);
    }
}

template <int64_t F, int64_t GW>
inline void conv_blocked_pass_sw(int64_t CB, int64_t mb, int64_t cb0, int64_t cb1, const float* x, const float* w, int64_t gw,
                                 const float* bias, const Window& win, float* y, const Epilogue<float>& ep, int64_t* taps, int64_t lanes,
                                 const float* next, int64_t nextCount) {
    if (win.s[2] == 1) conv_blocked_pass<F, 1, GW>(CB, mb, cb0, cb1, x, w, gw, bias, win, y, ep, taps, lanes, next, nextCount);
    else if (win.s[2] == 2) conv_blocked_pass<F, 2, GW>(CB, mb, cb0, cb1, x, w, gw, bias, win, y, ep, taps, lanes, next, nextCount);
    else conv_blocked_pass<F, 0, GW>(CB, mb, cb0, cb1, x, w, gw, bias, win, y, ep, taps, lanes, next, nextCount);
}
#endif

// The weight's output blocks are stored in groups of 4 (then 2 and 1 for the last ones), the
// 16 x 16 values of one input block and tap interleaved within a group (see conv_blocked):
// the size of the group that starts with `left` output blocks still to store. Fixed whatever
// the target, so that layouts do not depend on the vector width.
constexpr int64_t conv_blocked_group(int64_t left) { return left >= 4 ? 4 : left >= 2 ? 2 : 1; }

// Input blocks whose weights for the tile's output blocks stay within 128 KB (half of an L2 of
// the smallest kind): a pass over them keeps those weights in cache for every output pixel.
// Images of up to 28 x 28 output pixels take passes of 32 KB instead, which stay in L1: their
// rows give few tiles, often short ones (7 columns as 4 + 3), and each tile streaming 128 KB
// from L2 left the FMAs waiting (resnet18's 512-channel 3x3 at 7 x 7: 68 -> 100 GFLOP/s alone;
// more passes only re-read a small output).
inline int64_t conv_blocked_chunk(int64_t khw, int64_t F, int64_t pixels) {
    const int64_t bytes = pixels <= 28 * 28 ? 32 * 1024 : 128 * 1024;
    return std::max<int64_t>(1, (bytes / 4) / (F * khw * kBlock * kBlock));
}

// Convolution of one blocked image, one group, 1-D or 2-D (win.in[0] == win.out[0] == 1): CB
// input blocks, MB output blocks. w is the weight blocked in groups of gw output blocks
// (conv_blocked_group): output channel (m0 + f) * 16 + oc of the group that starts at block m0,
// input channel cb * 16 + ic, tap t = kh * KW + kw at
// w[m0 * CB * KH * KW * 256 + (((cb * KH * KW + t) * 16 + ic) * gw + f) * 16 + oc], zero past
// the real channels; bias (MB * 16 values) may be null. The epilogue's residual has y's blocked shape. The sums over input channels run in
// passes of conv_blocked_chunk blocks, each adding to what the pass before stored; each pass
// prefetches the next one's weights, and the last pass the afterCount floats at `after` (the
// next group's, for conv_blocked_groups) when given.
// Columns of zeros conv_blocked adds on the left and right of each input row so that every
// output column's taps fall inside the row (no one-pixel edge tiles), and the workspace this
// takes (elements; 0 when the window needs none).
struct ColumnPads {
    int64_t left, right;
};
constexpr ColumnPads conv_blocked_column_pads(const Window& win) {
    const int64_t reach = (win.out[2] - 1) * win.s[2] + (win.k[2] - 1) * win.d[2] + 1;  // padded columns the outputs read
    return {win.p[2], std::max<int64_t>(0, reach - win.p[2] - win.in[2])};
}
// A pointwise convolution with strides and no padding reads every s-th pixel: conv_blocked
// gathers those into the workspace and runs them as one row of unit stride.
constexpr bool conv_blocked_subsamples(const Window& win) {
    return win.k[1] == 1 && win.k[2] == 1 && win.p[1] == 0 && win.p[2] == 0 && (win.s[1] > 1 || win.s[2] > 1);
}
constexpr int64_t conv_blocked_work(int64_t CB, const Window& win) {
    if (conv_blocked_subsamples(win)) return CB * win.out[1] * win.out[2] * kBlock;
    const ColumnPads c = conv_blocked_column_pads(win);
    return c.left == 0 && c.right == 0 ? 0 : CB * win.in[1] * (win.in[2] + c.left + c.right) * kBlock;
}

inline void conv_blocked(int64_t CB, int64_t MB, const float* x, const float* w, const float* bias, const Window& win, float* y,
                         const Epilogue<float>& ep, float* work, int64_t lanes = kBlock, const float* after = nullptr,
                         int64_t afterCount = 0) {
    if (work && conv_blocked_subsamples(win)) {
        // The strided pixels gathered (work: conv_blocked_work elements), then one flat row.
        const int64_t IH = win.in[1], IW = win.in[2], OH = win.out[1], OW = win.out[2];
        for (int64_t cb = 0; cb < CB; ++cb)
            for (int64_t oh = 0; oh < OH; ++oh)
                for (int64_t ow = 0; ow < OW; ++ow)
                    std::memcpy(work + ((cb * OH + oh) * OW + ow) * kBlock, x + ((cb * IH + oh * win.s[1]) * IW + ow * win.s[2]) * kBlock,
                                sizeof(float) * kBlock);
        const Window flat{{1, 1, OH * OW}, {1, 1, OH * OW}, {1, 1, 1}, {1, 1, 1}, {1, 1, 1}, {0, 0, 0}};
        conv_blocked(CB, MB, work, w, bias, flat, y, ep, nullptr, lanes, after, afterCount);
        return;
    }
    const ColumnPads cp = conv_blocked_column_pads(win);
    // Padding pays where the edge pixels would be a large share of a row; the copy costs more
    // the larger the stride (s x s input pixels per output pixel). On wide rows the edge pixels
    // cost less than the copy: RegNet's first grouped convolution (stride 2, 112 x 112 -> 56 x 56,
    // 2 groups of 16 channels) spent a quarter of its time copying 1.6 MB (113 GFLOP/s padded, 143
    // with edge pixels), its second (56 x 56 -> 28 x 28) ran at 120 against 134; at stride 1, rows
    // of 56 and fewer ran faster padded (one group at 28 x 28: 144 against 126).
    const Interior in = interior_columns(win.in[2], win.out[2], win.k[2], win.s[2], win.d[2], win.p[2]);
    const int64_t edges = in.lo + win.out[2] - std::max(in.hi, in.lo);
    if (work && (cp.left > 0 || cp.right > 0) && win.out[2] * win.s[2] < 56 * edges) {
        // The input with its padding columns written out (work: conv_blocked_work elements).
        const int64_t IW = win.in[2], PW = IW + cp.left + cp.right, rows = CB * win.in[1];
        for (int64_t r = 0; r < rows; ++r) {
            float* d = work + r * PW * kBlock;
            std::fill(d, d + cp.left * kBlock, 0.0f);
            std::memcpy(d + cp.left * kBlock, x + r * IW * kBlock, sizeof(float) * IW * kBlock);
            std::fill(d + (cp.left + IW) * kBlock, d + PW * kBlock, 0.0f);
        }
        Window padded = win;
        padded.in[2] = PW;
        padded.p[2] = 0;
        conv_blocked(CB, MB, work, w, bias, padded, y, ep, nullptr, lanes, after, afterCount);
        return;
    }
    // A pointwise convolution with unit strides and no padding is one row of all the pixels.
    Window flat = win;
    if (win.k[1] == 1 && win.k[2] == 1 && win.s[1] == 1 && win.s[2] == 1 && win.p[1] == 0 && win.p[2] == 0 && win.in[1] == win.out[1] &&
        win.in[2] == win.out[2]) {
        flat.in[1] = flat.out[1] = 1;
        flat.in[2] = flat.out[2] = win.in[1] * win.in[2];
    }
    const int64_t khw = win.k[1] * win.k[2];
#if defined(__GNUC__) || defined(__clang__)
    // Tap offsets: on the stack for kernels up to 8 x 8.
    int64_t small[128];
    std::vector<int64_t> big;
    int64_t* taps = small;
    if (khw > 64) {
        big.resize(2 * khw);
        taps = big.data();
    }
    for (int64_t mb = 0; mb < MB;) {
        const int64_t gw = conv_blocked_group(MB - mb);
        const float* wg = w + mb * CB * khw * kBlock * kBlock;
        const int64_t chunk = conv_blocked_chunk(khw, gw, flat.out[1] * flat.out[2]);
        for (int64_t cb0 = 0; cb0 < CB; cb0 += chunk) {
            const int64_t cb1 = std::min(CB, cb0 + chunk);
            // The weights of the pass after this one follow this pass's (the group's next
            // input blocks, or the next group's first ones).
            const float* next = wg + cb1 * khw * kBlock * kBlock * gw;
            int64_t nextCount = 0;
            if (cb1 < CB) {
                nextCount = (std::min(CB, cb1 + chunk) - cb1) * khw * kBlock * kBlock * gw;
            } else if (mb + gw < MB) {
                const int64_t g2 = conv_blocked_group(MB - mb - gw);
                nextCount = std::min(CB, conv_blocked_chunk(khw, g2, flat.out[1] * flat.out[2])) * khw * kBlock * kBlock * g2;
            } else if (after) {
                next = after;
                nextCount = afterCount;
            }
            // A tile of the whole group where the registers hold it (AVX-512), else block by block.
            // (if constexpr: the passes a target never runs are not compiled for it.)
            static_assert(kConvTileF == 4 || kConvTileF == 1, "tiles of 4 output blocks or of 1");
            if constexpr (kConvTileF == 4) {
                if (gw == 4) conv_blocked_pass_sw<4, 4>(CB, mb, cb0, cb1, x, wg, gw, bias, flat, y, ep, taps, lanes, next, nextCount);
                else if (gw == 2) conv_blocked_pass_sw<2, 2>(CB, mb, cb0, cb1, x, wg, gw, bias, flat, y, ep, taps, lanes, next, nextCount);
                else conv_blocked_pass_sw<1, 1>(CB, mb, cb0, cb1, x, wg, gw, bias, flat, y, ep, taps, lanes, next, nextCount);
            } else if (gw == 1) {
                conv_blocked_pass_sw<1, 1>(CB, mb, cb0, cb1, x, wg, gw, bias, flat, y, ep, taps, lanes, next, nextCount);
            } else {
                for (int64_t f = 0; f < gw; ++f)
                    conv_blocked_pass_sw<1, 0>(CB, mb + f, cb0, cb1, x, wg + f * kBlock, gw, bias, flat, y, ep, taps, lanes,
                                               f + 1 == gw ? next : nullptr, nextCount);
            }
        }
        mb += gw;
    }
#else
    // Scalar: the weights in their groups of 4, 2 and 1 output blocks (see above), only the
    // real lanes of the last input block read.
    const int64_t IH = flat.in[1], IW = flat.in[2], OH = flat.out[1], OW = flat.out[2], KH = flat.k[1], KW = flat.k[2];
    for (int64_t m0 = 0; m0 < MB;) {
        const int64_t gw = conv_blocked_group(MB - m0);
        const float* wg = w + m0 * CB * khw * kBlock * kBlock;
        for (int64_t f = 0; f < gw; ++f)
            for (int64_t oh = 0; oh < OH; ++oh)
                for (int64_t ow = 0; ow < OW; ++ow)
                    for (int64_t oc = 0; oc < kBlock; ++oc) {
                        const int64_t mb = m0 + f;
                        float s = bias ? bias[mb * kBlock + oc] : 0.0f;
                        for (int64_t cb = 0; cb < CB; ++cb) {
                            const int64_t real = cb == CB - 1 ? lanes : kBlock;
                            for (int64_t kh = 0; kh < KH; ++kh) {
                                const int64_t ih = oh * flat.s[1] - flat.p[1] + kh * flat.d[1];
                                if (ih < 0 || ih >= IH) continue;
                                for (int64_t kw = 0; kw < KW; ++kw) {
                                    const int64_t iw = ow * flat.s[2] - flat.p[2] + kw * flat.d[2];
                                    if (iw < 0 || iw >= IW) continue;
                                    for (int64_t ic = 0; ic < real; ++ic)
                                        s += x[((cb * IH + ih) * IW + iw) * kBlock + ic] *
                                             wg[(((cb * khw + kh * KW + kw) * kBlock + ic) * gw + f) * kBlock + oc];
                                }
                            }
                        }
                        const int64_t at = ((mb * OH + oh) * OW + ow) * kBlock + oc;
                        if (ep.residual) s += ep.residual[at];
                        activate(&s, &s, 1, ep.act, ep.alpha, ep.beta);
                        y[at] = s;
                    }
        m0 += gw;
    }
#endif
}

// A one-group convolution of a planar image of a few channels (a network's stem: C < 16,
// x: [C, IH, IW], or [IH, IW, C] when channels_last: a Keras model's input) writing a blocked
// image. The image goes into the workspace with its padding
// written out and its channels interleaved ([PH, PW, C]: the C values a tap reads are
// consecutive), then each tile of F output blocks x P pixels runs its C channels per tap.
// w is blocked as conv_blocked reads it for one input block (16 input channels, zero past C).
struct PlanarPads {
    int64_t top, left, rows, cols;  // rows and columns of the padded image
};
constexpr PlanarPads conv_planar_pads(const Window& win) {
    const int64_t reachH = (win.out[1] - 1) * win.s[1] + (win.k[1] - 1) * win.d[1] + 1;
    const int64_t reachW = (win.out[2] - 1) * win.s[2] + (win.k[2] - 1) * win.d[2] + 1;
    const int64_t rows = win.p[1] + win.in[1] > reachH ? win.p[1] + win.in[1] : reachH;
    const int64_t cols = win.p[2] + win.in[2] > reachW ? win.p[2] + win.in[2] : reachW;
    return {win.p[1], win.p[2], rows, cols};
}
constexpr int64_t conv_planar_work(int64_t C, const Window& win) {
    const PlanarPads pp = conv_planar_pads(win);
    return pp.rows * pp.cols * C;
}

#if defined(__GNUC__) || defined(__clang__)
// Pixels per stem tile of F output blocks: at least 12 independent sums (1 block: 12 pixels,
// 2 or 4 blocks: 6), since every sum is one chain of KH * KW * C dependent FMAs (27 for a 3x3
// RGB stem) and fewer chains than FMA latency x ports leave the FMA units waiting.
template <int64_t F>
constexpr int64_t conv_planar_pixels() { return kVectorBytes == 64 && F == 1 ? 12 : kConvTileP; }

// One stem tile: the n (tap, channel) pairs of the window as one flat list (offs[2j] into the
// padded image from the tile's first pixel, offs[2j + 1] into w), so that a 3-channel window
// runs as one loop of 27 steps rather than 9 loops of 3.
template <int64_t F, int64_t P>
inline void conv_planar_tile(const float* xp, const int64_t* offs, int64_t n, int64_t step, const float* w, float* yt, int64_t yf,
                             const float* bias, const Epilogue<float>& ep, const float* res) {
    BlockAcc<F, P> a;
    tile_start(a, yt, yf, bias, true);
    _Pragma("GCC unroll 3") for (int64_t j = 0; j < n; ++j)
        conv_blocked_lane<F, P>(a, xp + offs[2 * j], w + offs[2 * j + 1], 0, 0, step);
    tile_store(a, yt, yf, true, ep, res);
}

// Every output pixel of F output blocks from mb (w at the first one's weights).
template <int64_t F>
inline void conv_planar_pass(int64_t C, int64_t mb, const float* xp, int64_t PW, const float* w, const int64_t* offs, int64_t n,
                             const float* bias, const Window& win, float* y, const Epilogue<float>& ep) {
    constexpr int64_t P = conv_planar_pixels<F>();
    const int64_t OH = win.out[1], OW = win.out[2], yf = OH * OW * kBlock, step = win.s[2] * C;
    const float* bm = bias ? bias + mb * kBlock : nullptr;
    for (int64_t oh = 0; oh < OH; ++oh) {
        const int64_t at = (mb * OH + oh) * OW * kBlock;
        const float* xr = xp + oh * win.s[1] * PW * C;
        for (int64_t ow = 0; ow < OW;) {
            const int64_t left = OW - ow;
            const float* xt = xr + ow * step;
            float* yt = y + at + ow * kBlock;
            const float* rt = ep.residual ? ep.residual + at + ow * kBlock : nullptr;
            // Whole tiles, then a row's last pixels in tiles of P / 2 (when above 4), 4, 2 and 1.
            constexpr int64_t H = P / 2 > 4 ? P / 2 : 1, Q = P > 4 ? 4 : 1;
            int64_t take;
            if (left >= P) conv_planar_tile<F, P>(xt, offs, n, step, w, yt, yf, bm, ep, rt), take = P;
            else if (H > 1 && left >= H) conv_planar_tile<F, H>(xt, offs, n, step, w, yt, yf, bm, ep, rt), take = H;
            else if (Q > 1 && left >= Q) conv_planar_tile<F, Q>(xt, offs, n, step, w, yt, yf, bm, ep, rt), take = Q;
            else if (left >= 2) conv_planar_tile<F, 2>(xt, offs, n, step, w, yt, yf, bm, ep, rt), take = 2;
            else conv_planar_tile<F, 1>(xt, offs, n, step, w, yt, yf, bm, ep, rt), take = 1;
            ow += take;
        }
    }
}
#endif

inline void conv_planar_blocked(int64_t C, int64_t MB, const float* x, const float* w, const float* bias, const Window& win, float* y,
                                const Epilogue<float>& ep, float* work, bool channels_last = false) {
    const PlanarPads pp = conv_planar_pads(win);
    const int64_t IH = win.in[1], IW = win.in[2];
    // Zeros only where the padding is (the rows above and below, the columns left and right of
    // each image row); each image row written once, its channels interleaved pixel by pixel.
    const int64_t rowLen = pp.cols * C, right = (pp.cols - pp.left - IW) * C;
    std::fill(work, work + pp.top * rowLen, 0.0f);
    std::fill(work + (pp.top + IH) * rowLen, work + pp.rows * rowLen, 0.0f);
    for (int64_t ih = 0; ih < IH; ++ih) {
        float* row = work + (ih + pp.top) * rowLen;
        std::fill(row, row + pp.left * C, 0.0f);
        std::fill(row + (pp.left + IW) * C, row + (pp.left + IW) * C + right, 0.0f);
        float* dst = row + pp.left * C;
        if (channels_last || C == 1) {
            std::memcpy(dst, x + ih * IW * C, sizeof(float) * IW * C);
        } else if (C == 3) {  // RGB, the usual stem
            const float* r = x + ih * IW;
            const float* g = r + IH * IW;
            const float* b = g + IH * IW;
            for (int64_t iw = 0; iw < IW; ++iw) {
                dst[3 * iw] = r[iw];
                dst[3 * iw + 1] = g[iw];
                dst[3 * iw + 2] = b[iw];
            }
        } else {
            for (int64_t iw = 0; iw < IW; ++iw)
                for (int64_t c = 0; c < C; ++c) dst[iw * C + c] = x[(c * IH + ih) * IW + iw];
        }
    }
    const int64_t khw = win.k[1] * win.k[2];
#if defined(__GNUC__) || defined(__clang__)
    // The window's (tap, channel) pairs: image offsets from a tile's first pixel, and weight
    // offsets for a group of gw output blocks (input channel ic of tap t at (t * 16 + ic) * gw * 16).
    int64_t small[2 * 256];
    std::vector<int64_t> big;
    int64_t* offs = small;
    const int64_t n = khw * C;
    if (n > 256) {
        big.resize(2 * n);
        offs = big.data();
    }
    for (int64_t mb = 0; mb < MB;) {
        const int64_t gw = conv_blocked_group(MB - mb);
        const float* wg = w + mb * khw * kBlock * kBlock;
        int64_t j = 0;
        for (int64_t kh = 0; kh < win.k[1]; ++kh)
            for (int64_t kw = 0; kw < win.k[2]; ++kw)
                for (int64_t ic = 0; ic < C; ++ic, ++j) {
                    offs[2 * j] = (kh * win.d[1] * pp.cols + kw * win.d[2]) * C + ic;
                    offs[2 * j + 1] = ((kh * win.k[2] + kw) * kBlock + ic) * gw * kBlock;
                }
        if constexpr (kConvTileF == 4) {
            if (gw == 4) conv_planar_pass<4>(C, mb, work, pp.cols, wg, offs, n, bias, win, y, ep);
            else if (gw == 2) conv_planar_pass<2>(C, mb, work, pp.cols, wg, offs, n, bias, win, y, ep);
            else conv_planar_pass<1>(C, mb, work, pp.cols, wg, offs, n, bias, win, y, ep);
        } else {
            for (int64_t f = 0; f < gw; ++f) conv_planar_pass<1>(C, mb + f, work, pp.cols, wg + f * kBlock, offs, n, bias, win, y, ep);
        }
        mb += gw;
    }
#else
    const int64_t OH = win.out[1], OW = win.out[2], KH = win.k[1], KW = win.k[2];
    for (int64_t m0 = 0; m0 < MB;) {
        const int64_t gw = conv_blocked_group(MB - m0);
        for (int64_t f = 0; f < gw; ++f)
            for (int64_t oh = 0; oh < OH; ++oh)
                for (int64_t ow = 0; ow < OW; ++ow)
                    for (int64_t oc = 0; oc < kBlock; ++oc) {
                        const int64_t mb = m0 + f;
                        float s = bias ? bias[mb * kBlock + oc] : 0.0f;
                        for (int64_t kh = 0; kh < KH; ++kh)
                            for (int64_t kw = 0; kw < KW; ++kw)
                                for (int64_t ic = 0; ic < C; ++ic)
                                    s += work[((oh * win.s[1] + kh * win.d[1]) * pp.cols + ow * win.s[2] + kw * win.d[2]) * C + ic] *
                                         w[m0 * khw * kBlock * kBlock + (((kh * KW + kw) * kBlock + ic) * gw + f) * kBlock + oc];
                        const int64_t at = ((mb * OH + oh) * OW + ow) * kBlock + oc;
                        if (ep.residual) s += ep.residual[at];
                        activate(&s, &s, 1, ep.act, ep.alpha, ep.beta);
                        y[at] = s;
                    }
        m0 += gw;
    }
#endif
}

// A grouped convolution whose groups are whole blocks (C / G and M / G multiples of 16): G
// convolutions of CBg input and MBg output blocks each, the weight blocked per group as
// conv_blocked reads it (group g's at g * MBg * CBg * KH * KW * 256). Each group's last pass
// prefetches the weights of the next group's first pass: weights come from L3 in a model, and
// a group of one block takes only 1-2 us (RegNet's 25 groups at 7 x 7 with weights from L3,
// kernel_alone.cpp: 128 -> 134 GFLOP/s).
inline void conv_blocked_groups(int64_t G, int64_t CBg, int64_t MBg, const float* x, const float* w, const float* bias, const Window& win,
                                float* y, const Epilogue<float>& ep, float* work) {
    const int64_t khw = win.k[1] * win.k[2];
    const int64_t inBlocks = CBg * win.in[1] * win.in[2] * kBlock, outBlocks = MBg * win.out[1] * win.out[2] * kBlock;
    const int64_t perGroup = MBg * CBg * khw * kBlock * kBlock, gw = conv_blocked_group(MBg);
    const int64_t firstPass = std::min(perGroup, conv_blocked_chunk(khw, gw, win.out[1] * win.out[2]) * khw * kBlock * kBlock * gw);
    for (int64_t g = 0; g < G; ++g) {
        Epilogue<float> e = ep;
        if (e.residual) e.residual += g * outBlocks;
        const float* after = g + 1 < G ? w + (g + 1) * perGroup : nullptr;
        conv_blocked(CBg, MBg, x + g * inBlocks, w + g * perGroup, bias ? bias + g * MBg * kBlock : nullptr, win, y + g * outBlocks, e, work,
                     kBlock, after, after ? firstPass : 0);
    }
}

// 3x3 convolutions with stride and dilation 1 as Winograd F(2x2, 3x3) (Lavin and Gray): each
// 2x2 block of outputs is A^T[(G g G^T) .* (B^T d B)]A for its 4x4 input patch d, so the 36
// multiplications of the direct sums become 16, done as 16 products (one per element e of the
// 4x4 transformed tile) over the input channels by conv_blocked as 1x1 convolutions whose
// "pixels" are the tiles. u holds G g G^T for every (output, input) channel pair: 16 weights,
// element e's in conv_blocked's 1x1 layout at e * MB * CB * 256. The tiles go R rows of tiles
// at a time through the workspace (transformed inputs, then products), sized to stay in L2.
#if defined(__GNUC__) || defined(__clang__)
using WinoVec = VecF;
constexpr int64_t kWinoLanes = kLanesF;
SOFIE_MATH void winograd_act(WinoVec* o, const Epilogue<float>& ep) { act_vecs<4>(o, ep.act, ep.alpha, ep.beta); }
#else
using WinoVec = float;
constexpr int64_t kWinoLanes = 1;
inline void winograd_act(WinoVec* o, const Epilogue<float>& ep) { activate(o, o, 4, ep.act, ep.alpha, ep.beta); }
#endif

struct WinogradPlan {
    int64_t th, tw, rows;  // tile rows and columns of the image, tile rows per pass
};

constexpr WinogradPlan winograd_plan(int64_t CB, int64_t MB, const Window& win) {
    const int64_t th = (win.out[1] + 1) / 2, tw = (win.out[2] + 1) / 2;
    // 16 elements x (CB + MB) blocks x tiles x 64 bytes within 512 KB, at least one tile row
    // and no more than about 64 tiles per product.
    const int64_t perRow = 16 * (CB + MB) * tw * kBlock * 4;
    int64_t rows = perRow > 0 ? (int64_t{512} << 10) / perRow : 1;
    const int64_t cap = tw > 0 ? (64 + tw - 1) / tw : 1;
    if (rows > cap) rows = cap;
    if (rows > th) rows = th;
    if (rows < 1) rows = 1;
    return WinogradPlan{th, tw, rows};
}

constexpr int64_t conv_winograd_work(int64_t CB, int64_t MB, const Window& win) {
    const WinogradPlan p = winograd_plan(CB, MB, win);
    return 16 * (CB + MB) * p.rows * p.tw * kBlock;
}

inline void conv_winograd_blocked(int64_t CB, int64_t MB, const float* x, const float* u, const float* bias, const Window& win, float* y,
                                  const Epilogue<float>& ep, float* work) {
    const WinogradPlan plan = winograd_plan(CB, MB, win);
    const int64_t IH = win.in[1], IW = win.in[2], OH = win.out[1], OW = win.out[2], pt = win.p[1], pl = win.p[2];
    const int64_t maxTiles = plan.rows * plan.tw;
    float* V = work;                                // [e][cb][t][16]
    float* Mw = work + 16 * CB * maxTiles * kBlock;  // [e][mb][t][16]
    alignas(64) const float zeros[kBlock] = {};
    const Epilogue<float> none{Act::None, 0.0f, 0.0f, nullptr};
    for (int64_t r0 = 0; r0 < plan.th; r0 += plan.rows) {
        const int64_t rows = plan.rows < plan.th - r0 ? plan.rows : plan.th - r0, T = rows * plan.tw;
        // B^T d B for every tile and input block.
        for (int64_t cb = 0; cb < CB; ++cb)
            for (int64_t t = 0; t < T; ++t) {
                const int64_t ih0 = (r0 + t / plan.tw) * 2 - pt, iw0 = (t % plan.tw) * 2 - pl;
                const float* src[4][4];
                for (int64_t i = 0; i < 4; ++i)
                    for (int64_t j = 0; j < 4; ++j) {
                        const int64_t ih = ih0 + i, iw = iw0 + j;
                        src[i][j] = ih >= 0 && ih < IH && iw >= 0 && iw < IW ? x + ((cb * IH + ih) * IW + iw) * kBlock : zeros;
                    }
                for (int64_t l = 0; l < kBlock; l += kWinoLanes) {
                    WinoVec d[4][4], b[4][4];
                    for (int64_t i = 0; i < 4; ++i)
                        for (int64_t j = 0; j < 4; ++j) std::memcpy(&d[i][j], src[i][j] + l, sizeof(WinoVec));
                    for (int64_t j = 0; j < 4; ++j) {
                        b[0][j] = d[0][j] - d[2][j];
                        b[1][j] = d[1][j] + d[2][j];
                        b[2][j] = d[2][j] - d[1][j];
                        b[3][j] = d[1][j] - d[3][j];
                    }
                    for (int64_t i = 0; i < 4; ++i) {
                        const WinoVec v[4] = {b[i][0] - b[i][2], b[i][1] + b[i][2], b[i][2] - b[i][1], b[i][1] - b[i][3]};
                        for (int64_t j = 0; j < 4; ++j)
                            std::memcpy(V + (((i * 4 + j) * CB + cb) * T + t) * kBlock + l, &v[j], sizeof(WinoVec));
                    }
                }
            }
        // The 16 products over the input channels: 1x1 convolutions of T pixels.
        const Window w1{{1, 1, T}, {1, 1, T}, {1, 1, 1}, {1, 1, 1}, {1, 1, 1}, {0, 0, 0}};
        for (int64_t e = 0; e < 16; ++e)
            conv_blocked(CB, MB, V + e * CB * T * kBlock, u + e * MB * CB * kBlock * kBlock, nullptr, w1, Mw + e * MB * T * kBlock, none, nullptr);
        // A^T m A, bias, residual and activation for every tile and output block.
        for (int64_t mb = 0; mb < MB; ++mb)
            for (int64_t t = 0; t < T; ++t) {
                const int64_t oh0 = (r0 + t / plan.tw) * 2, ow0 = (t % plan.tw) * 2;
                for (int64_t l = 0; l < kBlock; l += kWinoLanes) {
                    WinoVec m[4][4], a[2][4];
                    for (int64_t i = 0; i < 4; ++i)
                        for (int64_t j = 0; j < 4; ++j) std::memcpy(&m[i][j], Mw + (((i * 4 + j) * MB + mb) * T + t) * kBlock + l, sizeof(WinoVec));
                    for (int64_t j = 0; j < 4; ++j) {
                        a[0][j] = m[0][j] + m[1][j] + m[2][j];
                        a[1][j] = m[1][j] - m[2][j] - m[3][j];
                    }
                    WinoVec bv{};
                    if (bias) std::memcpy(&bv, bias + mb * kBlock + l, sizeof(WinoVec));
                    WinoVec o[4];
                    for (int64_t i = 0; i < 2; ++i) {
                        o[i * 2] = a[i][0] + a[i][1] + a[i][2] + bv;
                        o[i * 2 + 1] = a[i][1] - a[i][2] - a[i][3] + bv;
                    }
                    for (int64_t q = 0; q < 4; ++q) {
                        const int64_t oh = oh0 + q / 2, ow = ow0 + q % 2;
                        if (oh >= OH || ow >= OW) continue;
                        const int64_t at = ((mb * OH + oh) * OW + ow) * kBlock + l;
                        if (ep.residual) {
                            WinoVec rv;
                            std::memcpy(&rv, ep.residual + at, sizeof(WinoVec));
                            o[q] += rv;
                        }
                    }
                    winograd_act(o, ep);
                    for (int64_t q = 0; q < 4; ++q) {
                        const int64_t oh = oh0 + q / 2, ow = ow0 + q % 2;
                        if (oh < OH && ow < OW) std::memcpy(y + ((mb * OH + oh) * OW + ow) * kBlock + l, &o[q], sizeof(WinoVec));
                    }
                }
            }
    }
}

#if defined(__GNUC__) || defined(__clang__)
// P output pixels of one depthwise block from (oh, ow0): the sums over the taps inside the
// image (with Edge, P is 1 and taps outside are skipped), then residual and activation.
template <int64_t P, bool Edge>
SOFIE_MATH void depthwise_blocked_tile(const float* xc, const float* wc, const float* bias, const Window& win, int64_t oh, int64_t ow0,
                                       float* y, const Epilogue<float>& ep, const float* res) {
    static_assert(!Edge || P == 1, "edge tiles are one pixel wide");
    constexpr int64_t BV = kBlockVecs, L = kLanesF;
    const int64_t IH = win.in[1], IW = win.in[2], KH = win.k[1], KW = win.k[2];
    const int64_t sw = win.s[2], dh = win.d[1], dw = win.d[2];
    VecF a[P][BV];
    _Pragma("GCC unroll 8") for (int64_t p = 0; p < P; ++p)
        _Pragma("GCC unroll 4") for (int64_t v = 0; v < BV; ++v) {
            a[p][v] = VecF{};
            if (bias) std::memcpy(&a[p][v], bias + v * L, sizeof(VecF));
        }
    const int64_t ih0 = oh * win.s[1] - win.p[1], iw0 = ow0 * sw - win.p[2];
    for (int64_t kh = 0; kh < KH; ++kh) {
        const int64_t ih = ih0 + kh * dh;
        if (ih < 0 || ih >= IH) continue;
        const float* xr = xc + ih * IW * kBlock;
        for (int64_t kw = 0; kw < KW; ++kw) {
            const int64_t iw = iw0 + kw * dw;
            if (Edge && (iw < 0 || iw >= IW)) continue;
            VecF wv[BV];
            _Pragma("GCC unroll 4") for (int64_t v = 0; v < BV; ++v) std::memcpy(&wv[v], wc + (kh * KW + kw) * kBlock + v * L, sizeof(VecF));
            const float* xp = xr + iw * kBlock;
            _Pragma("GCC unroll 8") for (int64_t p = 0; p < P; ++p)
                _Pragma("GCC unroll 4") for (int64_t v = 0; v < BV; ++v) {
                    VecF xv;
                    std::memcpy(&xv, xp + p * sw * kBlock + v * L, sizeof(VecF));
                    a[p][v] += xv * wv[v];
                }
        }
    }
    if (res)
        _Pragma("GCC unroll 8") for (int64_t p = 0; p < P; ++p)
            _Pragma("GCC unroll 4") for (int64_t v = 0; v < BV; ++v) {
                VecF r;
                std::memcpy(&r, res + p * kBlock + v * L, sizeof(VecF));
                a[p][v] += r;
            }
    act_vecs<P * BV>(&a[0][0], ep.act, ep.alpha, ep.beta);
    _Pragma("GCC unroll 8") for (int64_t p = 0; p < P; ++p)
        _Pragma("GCC unroll 4") for (int64_t v = 0; v < BV; ++v) std::memcpy(y + p * kBlock + v * L, &a[p][v], sizeof(VecF));
}
#endif

#if defined(__GNUC__) || defined(__clang__)
// P output pixels from (oh, ow0) for a kernel width and column stride known at compile time
// (dilation 1): each kernel row's (P - 1) * SW + KW input vectors are loaded once and shared
// by the P outputs, columns outside the image skipped (so the tile also serves the row's
// edges), and the row's KW weight vectors loaded once per tile.
template <int64_t P, int64_t KW, int64_t SW, bool Edge>
SOFIE_MATH void depthwise_blocked_row_tile(const float* xc, const float* wc, const float* bias, const Window& win, int64_t oh, int64_t ow0,
                                           float* y, const Epilogue<float>& ep, const float* res) {
    constexpr int64_t BV = kBlockVecs, L = kLanesF, N = (P - 1) * SW + KW;
    const int64_t IH = win.in[1], IW = win.in[2], KH = win.k[1], dh = win.d[1];
    VecF a[P][BV];
    _Pragma("GCC unroll 8") for (int64_t p = 0; p < P; ++p)
        _Pragma("GCC unroll 4") for (int64_t v = 0; v < BV; ++v) {
            a[p][v] = VecF{};
            if (bias) std::memcpy(&a[p][v], bias + v * L, sizeof(VecF));
        }
    const int64_t ih0 = oh * win.s[1] - win.p[1], iw0 = ow0 * SW - win.p[2];
    // Input columns iw0 + j for j in [jlo, jhi) are inside the image (all of them without Edge).
    alignas(64) const float zeros[kLanesF] = {};
    const int64_t jlo = Edge && iw0 < 0 ? -iw0 : 0, jhi = Edge && IW - iw0 < N ? IW - iw0 : N;
    for (int64_t kh = 0; kh < KH; ++kh) {
        const int64_t ih = ih0 + kh * dh;
        if (ih < 0 || ih >= IH) continue;
        const float* xp = xc + (ih * IW + iw0) * kBlock;
        const float* wr = wc + kh * KW * kBlock;
        _Pragma("GCC unroll 4") for (int64_t v = 0; v < BV; ++v) {
            VecF wv[KW];
            _Pragma("GCC unroll 8") for (int64_t kw = 0; kw < KW; ++kw) std::memcpy(&wv[kw], wr + kw * kBlock + v * L, sizeof(VecF));
            _Pragma("GCC unroll 32") for (int64_t j = 0; j < N; ++j) {
                // Outside the image (edge tiles only) the column reads zeros: a pointer select,
                // not a branch per column.
                const float* src = !Edge || (j >= jlo && j < jhi) ? xp + j * kBlock + v * L : zeros;
                VecF xv;
                std::memcpy(&xv, src, sizeof(VecF));
                // Keep the vector in a register: otherwise the compiler folds the load into each
                // FMA that reads it (up to KW loads of one vector instead of one), and the kernel
                // is bound by loads rather than FMAs (3x3: 54 -> 80 GFLOP/s on AVX-512).
#if defined(__x86_64__) && defined(__AVX512F__)
                __asm__("" : "+v"(xv));
#elif defined(__x86_64__)
                __asm__("" : "+x"(xv));
#endif
                // Input column j feeds output p through tap kw = j - p * SW.
                _Pragma("GCC unroll 8") for (int64_t p = 0; p < P; ++p) {
                    const int64_t kw = j - p * SW;
                    if (kw >= 0 && kw < KW) a[p][v] += xv * wv[kw >= 0 && kw < KW ? kw : 0];
                }
            }
        }
    }
    if (res)
        _Pragma("GCC unroll 8") for (int64_t p = 0; p < P; ++p)
            _Pragma("GCC unroll 4") for (int64_t v = 0; v < BV; ++v) {
                VecF r;
                std::memcpy(&r, res + p * kBlock + v * L, sizeof(VecF));
                a[p][v] += r;
            }
    act_vecs<P * BV>(&a[0][0], ep.act, ep.alpha, ep.beta);
    _Pragma("GCC unroll 8") for (int64_t p = 0; p < P; ++p)
        _Pragma("GCC unroll 4") for (int64_t v = 0; v < BV; ++v) std::memcpy(y + p * kBlock + v * L, &a[p][v], sizeof(VecF));
}

// One whole output row with the row tiles when the kernel width and stride are one of the
// specialized pairs (tiles of P, then 4, 2 and 1 for the rest, so no sum is one long chain);
// false when they are not.
template <int64_t P>
inline bool depthwise_blocked_row(const float* xc, const float* wc, const float* bias, const Window& win, int64_t oh, float* yr,
                                  const Epilogue<float>& ep, const float* rr) {
    if (win.d[2] != 1) return false;
    const int64_t OW = win.out[2];
    auto run = [&](auto kw, auto sw) {
        constexpr int64_t K = decltype(kw)::value, S = decltype(sw)::value;
        int64_t ow = 0;
        auto tiles = [&](auto p) {
            constexpr int64_t Q = decltype(p)::value;
            for (; ow + Q <= OW; ow += Q) {
                float* yp = yr + ow * kBlock;
                const float* rp = rr ? rr + ow * kBlock : nullptr;
                const int64_t iw0 = ow * S - win.p[2];
                if (iw0 >= 0 && iw0 + (Q - 1) * S + K <= win.in[2])
                    depthwise_blocked_row_tile<Q, K, S, false>(xc, wc, bias, win, oh, ow, yp, ep, rp);
                else
                    depthwise_blocked_row_tile<Q, K, S, true>(xc, wc, bias, win, oh, ow, yp, ep, rp);
            }
        };
        tiles(std::integral_constant<int64_t, P>{});
        if (P > 4) tiles(std::integral_constant<int64_t, (P > 4 ? 4 : 1)>{});
        if (P > 2) tiles(std::integral_constant<int64_t, (P > 2 ? 2 : 1)>{});
        tiles(std::integral_constant<int64_t, 1>{});
        return true;
    };
    using I1 = std::integral_constant<int64_t, 1>;
    using I2 = std::integral_constant<int64_t, 2>;
    const int64_t KW = win.k[2], SW = win.s[2];
    if (KW == 3 && SW == 1) return run(std::integral_constant<int64_t, 3>{}, I1{});
    if (KW == 3 && SW == 2) return run(std::integral_constant<int64_t, 3>{}, I2{});
    if (KW == 5 && SW == 1) return run(std::integral_constant<int64_t, 5>{}, I1{});
    if (KW == 5 && SW == 2) return run(std::integral_constant<int64_t, 5>{}, I2{});
    if (KW == 7 && SW == 1) return run(std::integral_constant<int64_t, 7>{}, I1{});
    return false;
}
#endif

// Depthwise convolution (group = channels, one output channel per input channel) of one
// blocked image of CB blocks, 1-D or 2-D: w blocked as w[((cb * KH + kh) * KW + kw) * 16 + l]
// (zero past the real channels), bias (CB * 16 values) may be null; the residual has y's
// blocked shape.
inline void depthwise_blocked(int64_t CB, const float* x, const float* w, const float* bias, const Window& win, float* y,
                              const Epilogue<float>& ep) {
    const int64_t IH = win.in[1], IW = win.in[2], OH = win.out[1], OW = win.out[2], KH = win.k[1], KW = win.k[2];
    for (int64_t cb = 0; cb < CB; ++cb) {
        const float* xc = x + cb * IH * IW * kBlock;
        const float* wc = w + cb * KH * KW * kBlock;
        const float* bc = bias ? bias + cb * kBlock : nullptr;
#if defined(__GNUC__) || defined(__clang__)
        constexpr int64_t P = kDepthwiseTileP;
        const Interior in = interior_columns(IW, OW, KW, win.s[2], win.d[2], win.p[2]);
        for (int64_t oh = 0; oh < OH; ++oh) {
            const int64_t at = ((cb * OH + oh) * OW) * kBlock;
            float* yr = y + at;
            const float* rr = ep.residual ? ep.residual + at : nullptr;
            auto tile1 = [&](int64_t ow, bool edge) {
                float* yp = yr + ow * kBlock;
                const float* rp = rr ? rr + ow * kBlock : nullptr;
                if (edge) depthwise_blocked_tile<1, true>(xc, wc, bc, win, oh, ow, yp, ep, rp);
                else depthwise_blocked_tile<1, false>(xc, wc, bc, win, oh, ow, yp, ep, rp);
            };
            if (depthwise_blocked_row<P>(xc, wc, bc, win, oh, yr, ep, rr)) continue;
            int64_t ow = 0;
            for (; ow < in.lo; ++ow) tile1(ow, true);
            for (ow = in.lo; ow + P <= in.hi; ow += P)
                depthwise_blocked_tile<P, false>(xc, wc, bc, win, oh, ow, yr + ow * kBlock, ep, rr ? rr + ow * kBlock : nullptr);
            for (; ow < in.hi; ++ow) tile1(ow, false);
            for (ow = in.hi; ow < OW; ++ow) tile1(ow, true);
        }
#else
        for (int64_t oh = 0; oh < OH; ++oh)
            for (int64_t ow = 0; ow < OW; ++ow)
                for (int64_t l = 0; l < kBlock; ++l) {
                    float s = bc ? bc[l] : 0.0f;
                    for (int64_t kh = 0; kh < KH; ++kh) {
                        const int64_t ih = oh * win.s[1] - win.p[1] + kh * win.d[1];
                        if (ih < 0 || ih >= IH) continue;
                        for (int64_t kw = 0; kw < KW; ++kw) {
                            const int64_t iw = ow * win.s[2] - win.p[2] + kw * win.d[2];
                            if (iw < 0 || iw >= IW) continue;
                            s += xc[(ih * IW + iw) * kBlock + l] * wc[(kh * KW + kw) * kBlock + l];
                        }
                    }
                    const int64_t at = ((cb * OH + oh) * OW + ow) * kBlock + l;
                    if (ep.residual) s += ep.residual[at];
                    activate(&s, &s, 1, ep.act, ep.alpha, ep.beta);
                    y[at] = s;
                }
#endif
    }
}

}  // namespace sofie_rt
