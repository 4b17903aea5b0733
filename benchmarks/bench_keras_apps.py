#!/usr/bin/env python3
"""keras.applications models (made by Tests/Fixtures/keras/make_applications.py) through the
emitted C++ against ONNX Runtime, batch 1, one thread.

For each model: `sofie compile` of the .keras file (weights in a file), the header built with
g++ -O3 -march=native, the median time per inference (31 samples, each averaging as many calls
as fit in 50 ms); ONNX Runtime (pip, 1 intra- and 1 inter-op thread, all graph optimizations)
on `sofie convert -O0` output (the plain lowering, so that ONNX Runtime's own optimizer sees the
model as Keras wrote it), timed the same way, minus the per-call overhead of an Identity model
of the same input. Each model is measured --repeat times; the table gives the range.
Usage: .venv/bin/python benchmarks/bench_keras_apps.py [--sofie .build/release/sofie]
       [--apps Tests/Fixtures/keras-apps] [--repeat 3] [NAME ...]"""
import argparse
import json
import os
import subprocess
import tempfile

import numpy as np
from ort_timing import identity_model, ort_time

ap = argparse.ArgumentParser()
ap.add_argument("--sofie", default=".build/release/sofie")
ap.add_argument("--apps", default="Tests/Fixtures/keras-apps")
ap.add_argument("--cxx", default="g++")
ap.add_argument("--repeat", type=int, default=3)
ap.add_argument("names", nargs="*")
args = ap.parse_args()
work = tempfile.mkdtemp(prefix="sofie-apps-")
rng = np.random.default_rng(0)
SAMPLES = 31

DRIVER = r'''
#include "%(ns)s.hxx"
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <vector>
// Run-time batch models take infer(batch, x, y); fixed-batch ones infer(x, y).
template <class S>
auto run(S& s, const float* x, float* y, int) -> decltype(s.infer(std::size_t(1), x, y)) { return s.infer(std::size_t(1), x, y); }
template <class S>
void run(S& s, const float* x, float* y, long) { s.infer(x, y); }
int main() {
    %(ns)s::Session s("%(weights)s");
    std::vector<float> x(%(ns)s::Session::kInput0Size), y(%(ns)s::Session::kOutput0Size);
    for (std::size_t i = 0; i < x.size(); ++i) x[i] = float((i * 7919) %% 1000) / 1000.0f - 0.5f;
    auto once = [&] { run(s, x.data(), y.data(), 0); };
    for (int i = 0; i < 5; ++i) once();
    auto t0 = std::chrono::steady_clock::now();
    int calib = 0;
    while (std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() < 0.05) { once(); ++calib; }
    for (int r = 0; r < %(repeat)d; ++r) {
        std::vector<double> samples;
        for (int k = 0; k < %(samples)d; ++k) {
            auto a = std::chrono::steady_clock::now();
            for (int i = 0; i < calib; ++i) once();
            samples.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - a).count() / calib);
        }
        std::sort(samples.begin(), samples.end());
        std::printf("%%.3f\n", samples[samples.size() / 2]);
    }
}
'''


names = args.names or sorted(n for n in os.listdir(args.apps) if os.path.exists(os.path.join(args.apps, n, "meta.json")))
print("| model | input | sofie µs | ONNX Runtime µs (net of call overhead) | ratio ORT/sofie |")
print("|---|---|---|---|---|")
for name in names:
    d = os.path.join(args.apps, name)
    side = json.load(open(os.path.join(d, "meta.json")))["inputs"][0]["shape"][1]
    shape = [1, side, side, 3]
    ns = "app_" + name.lower()
    out = os.path.join(work, ns)
    subprocess.run([args.sofie, "compile", os.path.join(d, "model.keras"), "-o", out, "--name", ns, "--weights", "file"],
                   check=True, stdout=subprocess.DEVNULL)
    with open(os.path.join(out, "bench.cpp"), "w") as f:
        f.write(DRIVER % {"ns": ns, "weights": os.path.join(out, ns + ".weights"), "samples": SAMPLES, "repeat": args.repeat})
    subprocess.run([args.cxx, "-std=c++17", "-O3", "-march=native", "bench.cpp", "-o", "bench"], cwd=out, check=True)
    ours = [float(v) for v in subprocess.run([os.path.join(out, "bench")], check=True, capture_output=True, text=True).stdout.split()]
    plain = os.path.join(work, name + ".onnx")
    subprocess.run([args.sofie, "convert", os.path.join(d, "model.keras"), "-o", plain, "-O0"], check=True, stdout=subprocess.DEVNULL)
    theirs = []
    for _ in range(args.repeat):
        x = rng.uniform(-0.5, 0.5, shape).astype(np.float32)
        theirs.append(ort_time(plain, x, SAMPLES, warmup=5) - ort_time(identity_model(work, shape), x, SAMPLES, warmup=5))
    ratios = [t / o for t, o in zip(theirs, ours)]
    print(f"| {name} | {side}x{side} | {min(ours):.0f}–{max(ours):.0f} | {min(theirs):.0f}–{max(theirs):.0f} | "
          f"{min(ratios):.2f}–{max(ratios):.2f} |", flush=True)
print("ratio above 1: the emitted C++ is faster than ONNX Runtime.")
