#!/usr/bin/env bash
# Sets everything up and runs sofie's main job on the bundled example model
# (Examples/models/mlp.onnx, an MLP 784-256-128-10): prints its summary, compiles it to a C++
# header, builds a small program with it, runs it, and compares with ONNX Runtime.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/scripts/setup.sh"
[ -x /opt/swift/usr/bin/swift ] && export PATH="/opt/swift/usr/bin:$PATH"
cd "$ROOT"
swift build -c release --product sofie
SOFIE="$(swift build -c release --show-bin-path)/sofie"
OUT="$ROOT/out/demo"
mkdir -p "$OUT"
echo "== sofie inspect Examples/models/mlp.onnx"
"$SOFIE" inspect Examples/models/mlp.onnx
echo
echo "== sofie compile Examples/models/mlp.onnx -o out/demo"
"$SOFIE" compile Examples/models/mlp.onnx -o "$OUT"
cat > "$OUT/main.cpp" <<'CPP'
#include "mlp.hxx"
#include <cstdio>
#include <fstream>
int main(int argc, char** argv) {
    std::vector<float> x(mlp::Session::kInput0Size);
    for (std::size_t i = 0; i < x.size(); ++i) x[i] = float((i * 37) % 100) / 100.0f - 0.5f;
    if (argc > 1) std::ofstream(argv[1], std::ios::binary).write(reinterpret_cast<const char*>(x.data()), x.size() * sizeof(float));
    mlp::Session session;
    std::vector<float> y = session.infer(x);
    std::printf("C++ output:");
    for (float v : y) std::printf(" %.6f", v);
    std::printf("\n");
}
CPP
echo
echo "== g++ -std=c++17 -O2 out/demo/main.cpp && run"
g++ -std=c++17 -O2 -Wall -Wextra -I"$OUT" "$OUT/main.cpp" -o "$OUT/mlp_demo"
"$OUT/mlp_demo" "$OUT/input.bin"
"$ROOT/.venv/bin/python" - "$OUT/input.bin" <<'PY'
import sys, numpy as np, onnxruntime as ort
x = np.fromfile(sys.argv[1], dtype=np.float32).reshape(1, 784)
y = ort.InferenceSession("Examples/models/mlp.onnx", providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]
print("ONNX Runtime:", " ".join(f"{v:.6f}" for v in y.ravel()))
PY
