#!/usr/bin/env python3
"""What a run-time dimension costs: each model of Tests/Fixtures/runtime_dims compiled once with
`--dim n=max:BOUND` against the same model compiled with n fixed to the size it runs at.

For each model and each size L, one C++ program includes both headers (different namespaces),
checks that they give the same outputs for the same seeded input, and times `infer(L, x, y)` of
the bounded Session against `infer(x, y)` of the fixed one, interleaved: `--rounds` rounds, each
the median per call over batches of calls that fill 20 ms. Built with g++ -O3 -march=native.
cost = bounded time / fixed time (1.00: the run-time dimension costs nothing; the issue's goal
is at most 1.10). The table gives the range over rounds.

Usage: python3 benchmarks/bench_runtime_dims.py [--sofie .build/debug/sofie] [--bound 128]
           [--sizes 4,32,128] [--rounds 5] [--only SUBSTRING]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(ROOT, "Tests", "Fixtures", "runtime_dims")

DRIVER = r"""
#include <chrono>
#include <cmath>
#include <cstdio>
#include <random>
#include "bounded.hxx"
#include "fixed.hxx"
int main() {
    const int64_t L = %(L)d;
    bounded::Session b;
    fixed::Session f;
    std::mt19937 gen(5);
    std::normal_distribution<float> dist;
%(inputs)s
    std::vector<float> yb(bounded::Session::kOutput0Size), yf(fixed::Session::kOutput0Size);
    b.infer(%(dims)s, %(args)s, yb.data());
    f.infer(%(args)s, yf.data());
    double diff = 0, scale = 0;
    for (size_t i = 0; i < yf.size(); ++i) { diff = std::fmax(diff, std::fabs(yb[i] - yf[i])); scale = std::fmax(scale, std::fabs(yf[i])); }
    auto time = [&](auto&& call) {
        using clk = std::chrono::steady_clock;
        long n = 1;
        for (;;) {
            auto t0 = clk::now();
            for (long i = 0; i < n; ++i) call();
            double s = std::chrono::duration<double>(clk::now() - t0).count();
            if (s > 0.02) return s / n;
            n *= 2;
        }
    };
    std::vector<double> tb, tf;
    for (int r = 0; r < 7; ++r) {
        tb.push_back(time([&] { b.infer(%(dims)s, %(args)s, yb.data()); }));
        tf.push_back(time([&] { f.infer(%(args)s, yf.data()); }));
    }
    std::sort(tb.begin(), tb.end());
    std::sort(tf.begin(), tf.end());
    std::printf("{\"bounded_us\": %%.4f, \"fixed_us\": %%.4f, \"max_diff\": %%.3g, \"scale\": %%.3g}\n", tb[3] * 1e6, tf[3] * 1e6, diff, scale);
}
"""


def run(cmd, **kw):
    r = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if r.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{r.stdout}{r.stderr}")
    return r.stdout


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sofie", default=os.path.join(ROOT, ".build", "debug", "sofie"))
    ap.add_argument("--bound", type=int, default=128)
    ap.add_argument("--sizes", default="4,32,128")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--only", default="")
    a = ap.parse_args()
    sizes = [int(s) for s in a.sizes.split(",")]
    # The PyTorch exports (model.onnx); the Keras fixtures (model.keras) also carry a run-time
    # batch, which infer takes first: not timed here.
    names = sorted(n for n in os.listdir(FIXTURES) if os.path.exists(os.path.join(FIXTURES, n, "model.onnx")) and a.only in n)
    work = tempfile.mkdtemp(prefix="sofie-bench-rtdims-")
    binaries = {}
    for name in names:
        meta = json.load(open(os.path.join(FIXTURES, name, "meta.json")))
        model = os.path.join(FIXTURES, name, "model.onnx")
        # Every symbol scales with L, relative to its fixture bound (a GNN's e is twice its n).
        base = min(meta["bounds"].values())
        order = sorted(meta["bounds"])
        # A model that cannot take the bound (learned positions for 32 tokens) is left out, saying why.
        probe = subprocess.run([a.sofie, "compile", model, *[x for s in order for x in ("--dim", f"{s}=max:{a.bound * meta['bounds'][s] // base}")],
                                "--name", "probe", "-o", work], capture_output=True, text=True)
        if probe.returncode != 0:
            print(f"skipped {name}: {(probe.stdout + probe.stderr).strip().splitlines()[-1]}", file=sys.stderr)
            continue
        for L in sizes:
            values = {s: L * b // base for s, b in meta["bounds"].items()}
            d = os.path.join(work, f"{name}_{L}")
            os.makedirs(d, exist_ok=True)
            bounded = [x for s in order for x in ("--dim", f"{s}=max:{a.bound * meta['bounds'][s] // base}")]
            fixed = [x for s in order for x in ("--dim", f"{s}={values[s]}")]
            run([a.sofie, "compile", model, *bounded, "--name", "bounded", "-o", d, "--weights", "embed"])
            run([a.sofie, "compile", model, *fixed, "--name", "fixed", "-o", d, "--weights", "embed"])
            inputs, args = [], []
            for k, spec in enumerate(meta["cases"][0]["inputs"]):
                if spec["dtype"] == "int64":  # indices (a GNN's edges): in 0..L-1
                    inputs.append(f"    std::vector<int64_t> x{k}(fixed::Session::kInput{k}Size); for (auto& v : x{k}) v = static_cast<int64_t>(gen() %% L);")
                else:
                    inputs.append(f"    std::vector<float> x{k}(fixed::Session::kInput{k}Size); for (auto& v : x{k}) v = dist(gen);")
                args.append(f"x{k}.data()")
            with open(os.path.join(d, "driver.cpp"), "w") as f:
                f.write("#include <algorithm>\n" + DRIVER % {"L": L, "inputs": "\n".join(inputs).replace("%%", "%"),
                                                            "dims": ", ".join(str(values[s]) for s in order), "args": ", ".join(args)})
            run(["g++", "-std=c++17", "-O3", "-march=native", "driver.cpp", "-o", "driver"], cwd=d)
            binaries[(name, L)] = os.path.join(d, "driver")
    results = {k: [] for k in binaries}
    for _ in range(a.rounds):
        for k, exe in binaries.items():
            results[k].append(json.loads(run([exe])))
    print(f"bound {a.bound}, {a.rounds} rounds (ranges over rounds); cost = bounded / fixed")
    print(f"| model | n | bounded µs | fixed µs | cost | max |diff| / scale |")
    print("|---|---|---|---|---|---|")
    for (name, L), rs in results.items():
        b = [r["bounded_us"] for r in rs]
        f = [r["fixed_us"] for r in rs]
        c = [r["bounded_us"] / r["fixed_us"] for r in rs]
        rel = max(r["max_diff"] / max(r["scale"], 1e-30) for r in rs)
        print(f"| {name} | {L} | {min(b):.2f}–{max(b):.2f} | {min(f):.2f}–{max(f):.2f} | {min(c):.2f}–{max(c):.2f} | {rel:.1e} |")


if __name__ == "__main__":
    main()
