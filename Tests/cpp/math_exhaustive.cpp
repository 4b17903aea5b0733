// Worst error of the runtime's float exp, sigmoid, tanh and erf (the array forms, as the emitted
// code calls them) over every float in [-110, 110], against the C library in double precision,
// in ulps of the float nearest the exact value (below the smallest normal float, in units of it:
// an absolute bound). A measurement to run by hand when the math changes (about a minute per
// function), not a CI step; RuntimeMathTests checks a grid of 600,000 points on every run.
//
//   g++ -std=c++17 -O3 -march=native -I Sources/Backends/CPP/runtime Tests/cpp/math_exhaustive.cpp -o /tmp/mx
//   for f in 0 1 2 3; do /tmp/mx $f; done     # 0 exp, 1 sigmoid, 2 tanh, 3 erf
#include "sofie_runtime.h"

#include <cstdio>
#include <cstdlib>
#include <limits>

static double ulps(double ref, float got) {
    if (std::isnan(ref)) return std::isnan(got) ? 0 : 1e9;
    if (std::isinf(ref)) return got == ref ? 0 : 1e9;
    const float r = static_cast<float>(std::fabs(ref));
    const double u = r < std::numeric_limits<float>::min() ? double(std::numeric_limits<float>::min())
                                                            : double(std::nextafter(r, INFINITY)) - double(r);
    return std::fabs(double(got) - ref) / u;
}

int main(int argc, char** argv) {
    const int which = argc > 1 ? std::atoi(argv[1]) : 0;
    const char* names[] = {"exp", "sigmoid", "tanh", "erf"};
    if (which < 0 || which > 3) { std::fprintf(stderr, "usage: %s 0|1|2|3 (exp, sigmoid, tanh, erf)\n", argv[0]); return 2; }
    double worst = 0;
    float at = 0;
    static float xs[4096], ys[4096];
    uint32_t hi;
    const float h = 110.0f;
    std::memcpy(&hi, &h, 4);
    for (uint32_t sign : {0u, 0x80000000u})
        for (uint64_t b = 0; b <= hi; b += 4096) {
            int n = 0;
            for (uint64_t i = b; i <= hi && n < 4096; ++i, ++n) {
                const uint32_t u = static_cast<uint32_t>(i) | sign;
                std::memcpy(&xs[n], &u, 4);
            }
            if (which == 0) sofie_rt::apply_array<sofie_rt::Fn::Exp>(xs, ys, n);
            if (which == 1) sofie_rt::apply_array<sofie_rt::Fn::Sigmoid>(xs, ys, n);
            if (which == 2) sofie_rt::apply_array<sofie_rt::Fn::Tanh>(xs, ys, n);
            if (which == 3) sofie_rt::apply_array<sofie_rt::Fn::Erf>(xs, ys, n);
            for (int j = 0; j < n; ++j) {
                const double d = xs[j];
                const double r = which == 0 ? std::exp(d) : which == 1 ? 1 / (1 + std::exp(-d)) : which == 2 ? std::tanh(d) : std::erf(d);
                const double u = ulps(r, ys[j]);
                if (u > worst) { worst = u; at = xs[j]; }
            }
        }
    std::printf("%s: worst %.3f ulps at x = %.9g over every float in [-110, 110]\n", names[which], worst, at);
    return 0;
}
