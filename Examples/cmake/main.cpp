// Runs the MLP compiled by sofie_add_model(mlp ...) on one input and prints its outputs.
// Usage: classify [input.bin]   (float32, mlp::Session::kInput0Size values; default: a fixed pattern)
#include "mlp.hxx"

#include <cstdio>
#include <fstream>
#include <vector>

int main(int argc, char** argv) {
    std::vector<float> x(mlp::Session::kInput0Size);
    if (argc > 1) {
        std::ifstream f(argv[1], std::ios::binary);
        if (!f.read(reinterpret_cast<char*>(x.data()), static_cast<std::streamsize>(x.size() * sizeof(float)))) {
            std::fprintf(stderr, "classify: cannot read %zu floats from %s\n", x.size(), argv[1]);
            return 1;
        }
    } else {
        for (std::size_t i = 0; i < x.size(); ++i) x[i] = float((i * 37) % 100) / 100.0f - 0.5f;
    }
    mlp::Session session(SOFIE_MLP_WEIGHTS);  // the weights file sofie_add_model built beside the header
    std::vector<float> y = session.infer(x);
    for (float v : y) std::printf("%.9g\n", v);
    return 0;
}
