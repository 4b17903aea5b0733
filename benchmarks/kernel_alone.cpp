// Times one runtime kernel alone, as a model calls it: the weights rotate through NBUF copies
// (8 copies of a large weight do not fit in L2, so they come from L3 or memory, as in a model
// whose layers each have their own), the best of ROUNDS calls. Build it against the runtime
// headers of the version to measure, e.g. for a before/after of a runtime change:
//   git show HEAD:Sources/Backends/CPP/runtime/<each header> into /tmp/old/ (or a worktree), then
//   g++ -std=c++17 -O3 -march=native -I /tmp/old benchmarks/kernel_alone.cpp -o /tmp/k_old
//   g++ -std=c++17 -O3 -march=native -I Sources/Backends/CPP/runtime benchmarks/kernel_alone.cpp -o /tmp/k_new
// and run the two alternately (the machine drifts):
//   /tmp/k_old gemm M K N [NBUF]        C[M,N] = A[M,K] * W[K,N] + bias (gemm_packed, W packed)
//   /tmp/k_old conv CB MB HW K [NBUF]   conv_blocked: CB -> MB blocks of 16 channels, HW x HW,
//                                       K x K window, stride 1, same padding, Relu
//   /tmp/k_old groups G HW K S [NBUF]  conv_blocked_groups: G groups of one block (16 -> 16
//                                       channels each, RegNet's), HW x HW input, K x K window,
//                                       stride S, same padding, Relu
//   /tmp/k_old stem C MB HW K S [NBUF]  conv_planar_blocked (a network's first convolution): C
//                                       planar channels -> MB blocks, HW x HW input, K x K
//                                       window, stride S, no padding, Relu
// Prints microseconds and GFLOP/s; benchmarks/fma_peak.cpp gives the core's peak to compare.
#include "sofie_runtime.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <vector>

using namespace sofie_rt;

template <class F>
static double best_of(int rounds, F call) {
    double best = 1e30;
    for (int r = 0; r < rounds; ++r) {
        const auto t0 = std::chrono::steady_clock::now();
        call(r);
        const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        if (s < best) best = s;
    }
    return best;
}

int main(int argc, char** argv) {
    if (argc < 5) {
        std::fprintf(stderr, "usage: %s gemm M K N [NBUF] | conv CB MB HW K [NBUF] | groups G HW K S [NBUF] | stem C MB HW K S [NBUF]\n", argv[0]);
        return 2;
    }
    std::mt19937 gen(1);
    std::uniform_real_distribution<float> u(-1, 1);
    const bool gemm_kernel = std::strcmp(argv[1], "gemm") == 0, stem = std::strcmp(argv[1], "stem") == 0,
               groups = std::strcmp(argv[1], "groups") == 0;
    const int64_t a = std::atoll(argv[2]), b = std::atoll(argv[3]), c = std::atoll(argv[4]);
    const int64_t d = gemm_kernel ? 0 : (argc > 5 ? std::atoll(argv[5]) : 3);
    const int64_t stride = stem && argc > 6 ? std::atoll(argv[6]) : 1;
    const int nargs = gemm_kernel ? 5 : stem ? 7 : 6;  // where NBUF is
    const int nbuf = argc > nargs ? std::atoi(argv[nargs]) : 8;
    auto fill = [&](std::vector<float>& v, float scale) {
        for (auto& e : v) e = u(gen) * scale;
    };
    // NBUF copies of a convolution weight of n floats (small values: sums of many products).
    auto weight_copies = [&](size_t n) {
        std::vector<std::vector<float>> W(nbuf, std::vector<float>(n));
        for (auto& w : W) fill(w, 0.05f);
        return W;
    };
    if (groups) {
        // argv: G HW K S
        const int64_t G = a, H = b, k = c, s_ = argc > 5 ? std::atoll(argv[5]) : 1, pad = k / 2, O = (H + 2 * pad - k) / s_ + 1;
        const Window win{{1, H, H}, {1, O, O}, {1, k, k}, {1, s_, s_}, {1, 1, 1}, {0, pad, pad}};
        std::vector<float> x(G * H * H * kBlock), y(G * O * O * kBlock), bias(G * kBlock), work(conv_blocked_work(1, win) + 1);
        fill(x, 1.0f);
        fill(bias, 1.0f);
        const auto W = weight_copies(G * k * k * kBlock * kBlock);
        const Epilogue<float> ep{Act::Relu, 0, 0, nullptr};
        const double t = best_of(10 * nbuf, [&](int r) {
            conv_blocked_groups(G, 1, 1, x.data(), W[r % nbuf].data(), bias.data(), win, y.data(), ep, work.data());
        });
        std::printf("groups %lld x 16->16 %lldx%lld k%lld s%lld nbuf=%d: %.1f us, %.1f GFLOP/s\n", (long long)G, (long long)H, (long long)H,
                    (long long)k, (long long)s_, nbuf, t * 1e6, 2.0 * G * kBlock * kBlock * k * k * O * O / t / 1e9);
    } else if (stem) {
        const int64_t C = a, MB = b, H = c, k = d, O = (H - k) / stride + 1;
        const Window win{{1, H, H}, {1, O, O}, {1, k, k}, {1, stride, stride}, {1, 1, 1}, {0, 0, 0}};
        std::vector<float> x(C * H * H), y(MB * O * O * kBlock), bias(MB * kBlock), work(conv_planar_work(C, win) + 1);
        fill(x, 1.0f);
        fill(bias, 1.0f);
        const auto W = weight_copies(MB * k * k * kBlock * kBlock);
        const Epilogue<float> ep{Act::Relu, 0, 0, nullptr};
        const double s = best_of(10 * nbuf, [&](int r) {
            conv_planar_blocked(C, MB, x.data(), W[r % nbuf].data(), bias.data(), win, y.data(), ep, work.data());
        });
        std::printf("stem %lld->%lld blocks %lldx%lld k%lld s%lld nbuf=%d: %.1f us, %.1f GFLOP/s\n", (long long)C, (long long)MB, (long long)H,
                    (long long)H, (long long)k, (long long)stride, nbuf, s * 1e6, 2.0 * C * MB * kBlock * k * k * O * O / s / 1e9);
    } else if (gemm_kernel) {
        const int64_t M = a, K = b, N = c, slivers = (N + kSliver - 1) / kSliver;
        std::vector<float> A(M * K), C(M * N), bias(N);
        fill(A, 1.0f);
        fill(bias, 1.0f);
        std::vector<std::vector<float>> W(nbuf, std::vector<float>(slivers * K * kSliver, 0.0f));
        for (auto& w : W)
            for (int64_t k = 0; k < K; ++k)
                for (int64_t j = 0; j < N; ++j) w[((j / kSliver) * K + k) * kSliver + j % kSliver] = u(gen);
        const double s = best_of(10 * nbuf, [&](int r) {
            GemmArgs<float> p;
            p.M = M, p.N = N, p.K = K, p.A = A.data(), p.rsa = K, p.csa = 1;
            p.B = W[r % nbuf].data(), p.C = C.data(), p.ldc = N, p.col_bias = bias.data();
            gemm_packed(p);
        });
        std::printf("gemm %lldx%lldx%lld nbuf=%d: %.1f us, %.1f GFLOP/s\n", (long long)M, (long long)K, (long long)N, nbuf, s * 1e6,
                    2.0 * M * N * K / s / 1e9);
    } else {
        const int64_t CB = a, MB = b, H = c, k = d, pad = k / 2;
        const Window win{{1, H, H}, {1, H, H}, {1, k, k}, {1, 1, 1}, {1, 1, 1}, {0, pad, pad}};
        std::vector<float> x(CB * H * H * kBlock), y(MB * H * H * kBlock), bias(MB * kBlock), work(conv_blocked_work(CB, win) + 1);
        fill(x, 1.0f);
        fill(bias, 1.0f);
        const auto W = weight_copies(MB * CB * k * k * kBlock * kBlock);
        const Epilogue<float> ep{Act::Relu, 0, 0, nullptr};
        const double s = best_of(10 * nbuf, [&](int r) {
            conv_blocked(CB, MB, x.data(), W[r % nbuf].data(), bias.data(), win, y.data(), ep, work.data());
        });
        std::printf("conv %lld->%lld blocks %lldx%lld k%lld nbuf=%d: %.1f us, %.1f GFLOP/s\n", (long long)CB, (long long)MB, (long long)H,
                    (long long)H, (long long)k, nbuf, s * 1e6, 2.0 * CB * MB * kBlock * kBlock * k * k * H * H / s / 1e9);
    }
    return 0;
}
