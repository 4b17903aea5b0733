// swift-sofie C++ runtime: Kernels on the blocked channel layout (NCHW16c) the block-channels pass puts chains of convolutions in.
// Part of sofie_runtime.h, which sofie embeds into every emitted header (see README.md here).
#pragma once
#include <algorithm>
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

// x (C channels of HW pixels) into the blocked layout (ceil(C / 16) blocks).
inline void to_blocked(const float* x, int64_t C, int64_t HW, float* y) {
    const int64_t CB = (C + kBlock - 1) / kBlock;
    for (int64_t cb = 0; cb < CB; ++cb) {
        float* yb = y + cb * HW * kBlock;
        // 64 pixels at a time, so that the 16 rows read and the 4 KB written stay in L1.
        for (int64_t p0 = 0; p0 < HW; p0 += 64) {
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
        for (int64_t p0 = 0; p0 < HW; p0 += 64) {
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

// F output blocks at P output pixels of row oh from column ow0: the sums over input blocks
// [cb0, cb1) of the taps inside the image, added to the bias (first pass) or to what y holds
// (later passes); the last pass adds the residual and applies the activation. Without Edge
// every tap of the P pixels is inside the row (interior_columns); with it P is 1 and taps
// outside are skipped. w points at the first output block's weights, blocks wf apart; y (and
// res, the residual at the same place, or null) at pixel (oh, ow0) of the first block, blocks
// yf apart.
template <int64_t F, int64_t P, bool Edge>
SOFIE_MATH void conv_blocked_tile(const float* x, const float* w, int64_t wf, int64_t cb0, int64_t cb1, const Window& win, int64_t oh,
                                  int64_t ow0, float* y, int64_t yf, const float* bias, bool first, bool last, const Epilogue<float>& ep,
                                  const float* res) {
    static_assert(!Edge || P == 1, "edge tiles are one pixel wide");
    constexpr int64_t BV = kBlockVecs, L = kLanesF;
    const int64_t IH = win.in[1], IW = win.in[2], KH = win.k[1], KW = win.k[2];
    const int64_t sh = win.s[1], sw = win.s[2], dh = win.d[1], dw = win.d[2];
    BlockAcc<F, P> a;
    _Pragma("GCC unroll 4") for (int64_t f = 0; f < F; ++f)
        _Pragma("GCC unroll 8") for (int64_t p = 0; p < P; ++p)
            _Pragma("GCC unroll 4") for (int64_t v = 0; v < BV; ++v) {
                if (first) {
                    a.v[f][p][v] = VecF{};
                    if (bias) std::memcpy(&a.v[f][p][v], bias + f * kBlock + v * L, sizeof(VecF));
                } else {
                    std::memcpy(&a.v[f][p][v], y + f * yf + p * kBlock + v * L, sizeof(VecF));
                }
            }
    const int64_t ih0 = oh * sh - win.p[1], iw0 = ow0 * sw - win.p[2];
    const int64_t khw = KH * KW;
    for (int64_t cb = cb0; cb < cb1; ++cb) {
        const float* xc = x + cb * IH * IW * kBlock;
        const float* wc = w + cb * khw * kBlock * kBlock;
        for (int64_t kh = 0; kh < KH; ++kh) {
            const int64_t ih = ih0 + kh * dh;
            if (ih < 0 || ih >= IH) continue;
            const float* xr = xc + ih * IW * kBlock;
            for (int64_t kw = 0; kw < KW; ++kw) {
                const int64_t iw = iw0 + kw * dw;
                if (Edge && (iw < 0 || iw >= IW)) continue;
                const float* xp = xr + iw * kBlock;
                const float* wk = wc + (kh * KW + kw) * kBlock * kBlock;
                _Pragma("GCC unroll 16") for (int64_t ic = 0; ic < kBlock; ++ic) {
                    VecF wv[F][BV];
                    _Pragma("GCC unroll 4") for (int64_t f = 0; f < F; ++f)
                        _Pragma("GCC unroll 4") for (int64_t v = 0; v < BV; ++v)
                            std::memcpy(&wv[f][v], wk + f * wf + ic * kBlock + v * L, sizeof(VecF));
                    _Pragma("GCC unroll 8") for (int64_t p = 0; p < P; ++p) {
                        const float xs = xp[p * sw * kBlock + ic];
                        _Pragma("GCC unroll 4") for (int64_t f = 0; f < F; ++f)
                            _Pragma("GCC unroll 4") for (int64_t v = 0; v < BV; ++v) a.v[f][p][v] += xs * wv[f][v];
                    }
                }
            }
        }
    }
    _Pragma("GCC unroll 4") for (int64_t f = 0; f < F; ++f)
        _Pragma("GCC unroll 8") for (int64_t p = 0; p < P; ++p)
            _Pragma("GCC unroll 4") for (int64_t v = 0; v < BV; ++v) {
                VecF s = a.v[f][p][v];
                if (last) {
                    if (res) {
                        VecF r;
                        std::memcpy(&r, res + f * yf + p * kBlock + v * L, sizeof(VecF));
                        s += r;
                    }
                    s = act_vec(s, ep.act, ep.alpha, ep.beta);
                }
                std::memcpy(y + f * yf + p * kBlock + v * L, &s, sizeof(VecF));
            }
}

// One pass of F output blocks from mb over input blocks [cb0, cb1), every output pixel.
template <int64_t F>
inline void conv_blocked_pass(int64_t CB, int64_t mb, int64_t cb0, int64_t cb1, const float* x, const float* w, const float* bias,
                              const Window& win, float* y, const Epilogue<float>& ep) {
    constexpr int64_t P = kConvTileP;
    const int64_t OH = win.out[1], OW = win.out[2], khw = win.k[1] * win.k[2];
    const int64_t wf = CB * khw * kBlock * kBlock, yf = OH * OW * kBlock;
    const bool first = cb0 == 0, last = cb1 == CB;
    const float* wm = w + mb * wf;
    const float* bm = bias ? bias + mb * kBlock : nullptr;
    const Interior in = interior_columns(win.in[2], OW, win.k[2], win.s[2], win.d[2], win.p[2]);
    for (int64_t oh = 0; oh < OH; ++oh) {
        const int64_t at = (mb * OH + oh) * OW * kBlock;
        float* yr = y + at;
        const float* rr = ep.residual ? ep.residual + at : nullptr;
        auto edge = [&](int64_t ow) {
            conv_blocked_tile<F, 1, true>(x, wm, wf, cb0, cb1, win, oh, ow, yr + ow * kBlock, yf, bm, first, last, ep,
                                          rr ? rr + ow * kBlock : nullptr);
        };
        for (int64_t ow = 0; ow < in.lo; ++ow) edge(ow);
        int64_t ow = in.lo;
        for (; ow + P <= in.hi; ow += P)
            conv_blocked_tile<F, P, false>(x, wm, wf, cb0, cb1, win, oh, ow, yr + ow * kBlock, yf, bm, first, last, ep,
                                           rr ? rr + ow * kBlock : nullptr);
        for (; ow < in.hi; ++ow)
            conv_blocked_tile<F, 1, false>(x, wm, wf, cb0, cb1, win, oh, ow, yr + ow * kBlock, yf, bm, first, last, ep,
                                           rr ? rr + ow * kBlock : nullptr);
        for (ow = in.hi; ow < OW; ++ow) edge(ow);
    }
}
#endif

// Input blocks whose weights for the tile's output blocks stay within 128 KB (half of an L2 of
// the smallest kind): a pass over them keeps those weights in cache for every output pixel.
inline int64_t conv_blocked_chunk(int64_t khw, int64_t F) { return std::max<int64_t>(1, (128 * 1024 / 4) / (F * khw * kBlock * kBlock)); }

// Convolution of one blocked image, one group, 1-D or 2-D (win.in[0] == win.out[0] == 1): CB
// input blocks, MB output blocks. w is the weight blocked as
// w[((((mb * CB + cb) * KH + kh) * KW + kw) * 16 + ic) * 16 + oc] for output channel mb*16 + oc
// and input channel cb*16 + ic (zero past the real channels); bias (MB * 16 values) may be
// null. The epilogue's residual has y's blocked shape. The sums over input channels run in
// passes of conv_blocked_chunk blocks, each adding to what the pass before stored.
inline void conv_blocked(int64_t CB, int64_t MB, const float* x, const float* w, const float* bias, const Window& win, float* y,
                         const Epilogue<float>& ep) {
    // A pointwise convolution with unit strides and no padding is one row of all the pixels.
    Window flat = win;
    if (win.k[1] == 1 && win.k[2] == 1 && win.s[1] == 1 && win.s[2] == 1 && win.p[1] == 0 && win.p[2] == 0 && win.in[1] == win.out[1] &&
        win.in[2] == win.out[2]) {
        flat.in[1] = flat.out[1] = 1;
        flat.in[2] = flat.out[2] = win.in[1] * win.in[2];
    }
    const int64_t khw = win.k[1] * win.k[2];
#if defined(__GNUC__) || defined(__clang__)
    constexpr int64_t F = kConvTileF;
    const int64_t chunk = conv_blocked_chunk(khw, F);
    for (int64_t mb = 0; mb < MB;) {
        const int64_t left = MB - mb;
        for (int64_t cb0 = 0; cb0 < CB; cb0 += chunk) {
            const int64_t cb1 = std::min(CB, cb0 + chunk);
            if (left >= F) conv_blocked_pass<F>(CB, mb, cb0, cb1, x, w, bias, flat, y, ep);
            else if (F > 2 && left >= 2) conv_blocked_pass<2>(CB, mb, cb0, cb1, x, w, bias, flat, y, ep);
            else conv_blocked_pass<1>(CB, mb, cb0, cb1, x, w, bias, flat, y, ep);
        }
        mb += left >= F ? F : (F > 2 && left >= 2) ? 2 : 1;
    }
#else
    const int64_t IH = flat.in[1], IW = flat.in[2], OH = flat.out[1], OW = flat.out[2], KH = flat.k[1], KW = flat.k[2];
    for (int64_t mb = 0; mb < MB; ++mb)
        for (int64_t oh = 0; oh < OH; ++oh)
            for (int64_t ow = 0; ow < OW; ++ow)
                for (int64_t oc = 0; oc < kBlock; ++oc) {
                    float s = bias ? bias[mb * kBlock + oc] : 0.0f;
                    for (int64_t cb = 0; cb < CB; ++cb)
                        for (int64_t kh = 0; kh < KH; ++kh) {
                            const int64_t ih = oh * flat.s[1] - flat.p[1] + kh * flat.d[1];
                            if (ih < 0 || ih >= IH) continue;
                            for (int64_t kw = 0; kw < KW; ++kw) {
                                const int64_t iw = ow * flat.s[2] - flat.p[2] + kw * flat.d[2];
                                if (iw < 0 || iw >= IW) continue;
                                for (int64_t ic = 0; ic < kBlock; ++ic)
                                    s += x[((cb * IH + ih) * IW + iw) * kBlock + ic] *
                                         w[((((mb * CB + cb) * KH + kh) * KW + kw) * kBlock + ic) * kBlock + oc];
                            }
                        }
                    const int64_t at = ((mb * OH + oh) * OW + ow) * kBlock + oc;
                    if (ep.residual) s += ep.residual[at];
                    activate(&s, &s, 1, ep.act, ep.alpha, ep.beta);
                    y[at] = s;
                }
#endif
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
    _Pragma("GCC unroll 8") for (int64_t p = 0; p < P; ++p)
        _Pragma("GCC unroll 4") for (int64_t v = 0; v < BV; ++v) {
            VecF s = a[p][v];
            if (res) {
                VecF r;
                std::memcpy(&r, res + p * kBlock + v * L, sizeof(VecF));
                s += r;
            }
            s = act_vec(s, ep.act, ep.alpha, ep.beta);
            std::memcpy(y + p * kBlock + v * L, &s, sizeof(VecF));
        }
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
            for (int64_t ow = 0; ow < in.lo; ++ow) tile1(ow, true);
            int64_t ow = in.lo;
            for (; ow + P <= in.hi; ow += P)
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
