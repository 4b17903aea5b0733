#!/usr/bin/env python3
"""What a run-time dimension costs: each model of Tests/Fixtures/runtime_dims compiled once with
`--dim n=max:BOUND` against the same model compiled with n fixed to the size it runs at.

For each model and each size L, three C++ programs are built with g++ -O3 -march=native from the
two headers (different namespaces):
- one holding both Sessions: checks that they give the same outputs for the same seeded input, and
  times `infer(L, x, y)` of the bounded Session against `infer(x, y)` of the fixed one,
  interleaved (each figure the median of 7 batches of calls filling 20 ms);
- one per Session, timing only that Session the same way. These two run alternately, `--rounds`
  times; cost = bounded / fixed of the same round. Two Sessions in one program sit at different
  code addresses, which alone moved small models by 10-20% in earlier runs (in either direction),
  so the separate programs are the main figure and the one-program one is kept beside it;
- when valgrind is installed, each single-Session program runs under cachegrind (no cache
  simulation) for K calls and for none: instructions per call, bounded / fixed. This counts the
  work each build does, free of the machine's noise.
cost 1.00: the run-time dimension costs nothing; the issue's goal is at most 1.10. Ranges are
over rounds.

Usage: python3 benchmarks/bench_runtime_dims.py [--sofie .build/debug/sofie] [--bound 128]
           [--sizes 4,32,128] [--rounds 5] [--only SUBSTRING] [--no-instructions]
"""
import argparse
import json
import os
import re
import subprocess
import sys
import shutil
import statistics
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(ROOT, "Tests", "Fixtures", "runtime_dims")

# Seconds per call of `call()`: calls doubled until a batch fills 20 ms (both drivers use it).
TIMER = r"""    auto time = [&](auto&& call) {
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
"""

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
%(timer)s    std::vector<double> tb, tf;
    for (int r = 0; r < 7; ++r) {
        tb.push_back(time([&] { b.infer(%(dims)s, %(args)s, yb.data()); }));
        tf.push_back(time([&] { f.infer(%(args)s, yf.data()); }));
    }
    std::sort(tb.begin(), tb.end());
    std::sort(tf.begin(), tf.end());
    std::printf("{\"bounded_us\": %%.4f, \"fixed_us\": %%.4f, \"max_diff\": %%.3g, \"scale\": %%.3g}\n", tb[3] * 1e6, tf[3] * 1e6, diff, scale);
}
"""


# One Session alone (SESSION_NS: bounded or fixed). argv[1]: "time", or a number of calls to make
# (for counting instructions: the difference between K calls and 0 calls, divided by K).
SINGLE = r"""
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include SESSION_HEADER
int main(int argc, char** argv) {
    const int64_t L = %(L)d;
    (void)L;
    SESSION_NS::Session s;
    std::mt19937 gen(5);
    std::normal_distribution<float> dist;
%(inputs)s
    std::vector<float> y(SESSION_NS::Session::kOutput0Size);
    auto call = [&] { s.infer(%(call_args)s, y.data()); };
    if (argc > 1 && std::strcmp(argv[1], "time") != 0) {
        const long k = std::atol(argv[1]);
        for (long i = 0; i < k; ++i) call();
        std::printf("%%g\n", double(y[0]));
        return 0;
    }
    call();
%(timer)s    std::vector<double> t;
    for (int r = 0; r < 7; ++r) t.push_back(time(call));
    std::sort(t.begin(), t.end());
    std::printf("{\"us\": %%.4f}\n", t[3] * 1e6);
}
"""


def instructions(exe, calls):
    """Instructions executed by `exe calls` under cachegrind (no cache simulation)."""
    r = subprocess.run(["valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null", exe, str(calls)],
                       capture_output=True, text=True)
    for line in r.stderr.splitlines():
        if "I" in line and "refs:" in line:
            return int(line.split("refs:")[1].strip().replace(",", ""))
    sys.exit(f"cachegrind gave no instruction count for {exe}:\n{r.stderr}")


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
    ap.add_argument("--no-instructions", action="store_true", help="skip the cachegrind instruction counts")
    a = ap.parse_args()
    count = not a.no_instructions and shutil.which("valgrind") is not None
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
                                                            "dims": ", ".join(str(values[s]) for s in order), "args": ", ".join(args), "timer": TIMER})
            run(["g++", "-std=c++17", "-O3", "-march=native", "driver.cpp", "-o", "driver"], cwd=d)
            # The inputs of size L (the fixed Session's sizes, as literals), drawn in the same order.
            fixed_hxx = open(os.path.join(d, "fixed.hxx")).read()
            sized = "\n".join(inputs).replace("%%", "%")
            for k in range(len(inputs)):
                size = re.search(rf"kInput{k}Size = (\d+)", fixed_hxx).group(1)
                sized = sized.replace(f"(fixed::Session::kInput{k}Size)", f"({size})")
            for which in ("bounded", "fixed"):
                with open(os.path.join(d, f"{which}.cpp"), "w") as f:
                    f.write(SINGLE % {"L": L, "inputs": sized, "timer": TIMER,
                                      "call_args": ", ".join(([str(values[s]) for s in order] if which == "bounded" else []) + args)})
                run(["g++", "-std=c++17", "-O3", "-march=native", f"-DSESSION_HEADER=\"{which}.hxx\"", f"-DSESSION_NS={which}",
                     f"{which}.cpp", "-o", which], cwd=d)
            binaries[(name, L)] = d
    results = {k: [] for k in binaries}
    for rnd in range(a.rounds):
        for k, d in binaries.items():
            both = json.loads(run([os.path.join(d, "driver")]))
            # The two single-Session programs alternate which runs first from round to round.
            alone = {w: json.loads(run([os.path.join(d, w), "time"]))["us"]
                     for w in (("bounded", "fixed") if rnd % 2 == 0 else ("fixed", "bounded"))}
            results[k].append({**both, "alone_bounded": alone["bounded"], "alone_fixed": alone["fixed"]})
    instr = {}
    if count:
        for k, d in binaries.items():
            # About 50 ms of calls natively (cachegrind runs them ~50x slower).
            calls = max(100, min(200000, int(0.05e6 / max(min(r["alone_fixed"] for r in results[k]), 0.01))))
            per = {}
            for w in ("bounded", "fixed"):
                exe = os.path.join(d, w)
                per[w] = (instructions(exe, calls) - instructions(exe, 0)) / calls
            instr[k] = per
    print(f"bound {a.bound}, {a.rounds} rounds (ranges over rounds); cost = bounded / fixed")
    print("| model | n | bounded µs | fixed µs | cost, separate programs: median (range) | cost, one program | instructions per call, bounded / fixed | max |diff| / scale |")
    print("|---|---|---|---|---|---|---|---|")
    for (name, L), rs in results.items():
        b = [r["alone_bounded"] for r in rs]
        f = [r["alone_fixed"] for r in rs]
        c = [r["alone_bounded"] / r["alone_fixed"] for r in rs]
        c1 = [r["bounded_us"] / r["fixed_us"] for r in rs]
        rel = max(r["max_diff"] / max(r["scale"], 1e-30) for r in rs)
        i = instr.get((name, L))
        ic = f"{i['bounded']:,.0f} / {i['fixed']:,.0f} = {i['bounded'] / i['fixed']:.3f}" if i else "not counted"
        print(f"| {name} | {L} | {min(b):.2f}–{max(b):.2f} | {min(f):.2f}–{max(f):.2f} | {statistics.median(c):.2f} ({min(c):.2f}–{max(c):.2f}) "
              f"| {min(c1):.2f}–{max(c1):.2f} | {ic} | {rel:.1e} |", flush=True)


if __name__ == "__main__":
    main()
