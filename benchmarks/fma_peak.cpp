// Single-core FP32 FMA throughput of this machine: independent chains of vector FMAs (16 with
// AVX-512's 32 registers, 12 with AVX2's 16 so that none spills: 16 chains there measured half
// the peak on a Zen 3; either covers the FMA latency of any x86-64 core), at the widest width the
// build targets and at 256 bits. The kernel lines of bench_real.py take their "% of peak" from --peak-gflops; this says
// what to pass. Build: g++ -O2 -march=native benchmarks/fma_peak.cpp -o /tmp/fma_peak
#include <immintrin.h>
#include <chrono>
#include <cstdio>

template <int C, class V, class F>
static double run(V seed, V mul, V add, F fma, int lanes) {
    V a[C];
    for (int i = 0; i < C; ++i) a[i] = seed;
    const long n = 20000000;
    double best = 0;
    for (int round = 0; round < 5; ++round) {
        const auto t0 = std::chrono::steady_clock::now();
        for (long k = 0; k < n; ++k) {
#pragma GCC unroll 16
            for (int i = 0; i < C; ++i) a[i] = fma(a[i], mul, add);
        }
        const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        const double gf = n * double(C) * lanes * 2 / s / 1e9;
        if (gf > best) best = gf;
    }
    // Keep the sums alive.
    volatile float sink = 0;
    for (int i = 0; i < C; ++i) sink = sink + reinterpret_cast<const float*>(&a[i])[0];
    return best;
}

int main() {
#if defined(__AVX512F__)
    const double z = run<16>(_mm512_set1_ps(0.001f), _mm512_set1_ps(0.9999f), _mm512_set1_ps(0.0001f),
                         [](__m512 a, __m512 b, __m512 c) { return _mm512_fmadd_ps(a, b, c); }, 16);
    std::printf("512-bit FMA: %.1f GFLOP/s\n", z);
#endif
#if defined(__FMA__)
    #if defined(__AVX512F__)
    constexpr int chains = 16;
#else
    constexpr int chains = 12;
#endif
    const double y = run<chains>(_mm256_set1_ps(0.001f), _mm256_set1_ps(0.9999f), _mm256_set1_ps(0.0001f),
                         [](__m256 a, __m256 b, __m256 c) { return _mm256_fmadd_ps(a, b, c); }, 8);
    std::printf("256-bit FMA: %.1f GFLOP/s\n", y);
#else
    std::printf("build with -march=native (or -mfma) to measure FMA throughput\n");
#endif
    return 0;
}
