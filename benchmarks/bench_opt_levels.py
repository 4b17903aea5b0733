#!/usr/bin/env python3
"""sofie's emitted code at the optimization levels users build with, side by side in one run.

    python3 benchmarks/bench_opt_levels.py --sofie .build/release/sofie [--rounds 5] MODEL.onnx ...

For each model the header is compiled once and built with g++ at -O3 -march=native, plain -O2
(which on x86-64 carries the AVX2 twin of `run`, taken when the CPU has AVX2 + FMA) and
-O2 -DSOFIE_NO_DISPATCH (plain SSE2, what -O2 gave before the twin); the executables are timed
interleaved, `--rounds` times (median per call of each round, emitted_timing's driver), and the
table gives the range over rounds and the slowdown of each -O2 build against -O3 -march=native
(the issue's bar: at most 2x). Needs only numpy/onnx (any of the venvs).
"""
import argparse
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import emitted_timing  # noqa: E402

LEVELS = ["-O3 -march=native", "-O2", "-O2 -DSOFIE_NO_DISPATCH"]

ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
ap.add_argument("--sofie", required=True)
ap.add_argument("--rounds", type=int, default=5)
ap.add_argument("--samples", type=int, default=15)
ap.add_argument("models", nargs="+")
args = ap.parse_args()

work = tempfile.mkdtemp(prefix="sofie-optlevels-")
rows = []
for path in args.models:
    name = os.path.basename(os.path.dirname(path)) if os.path.basename(path) == "model.onnx" else os.path.splitext(os.path.basename(path))[0]
    ns = "m_" + "".join(c if c.isalnum() else "_" for c in name)
    exes = [emitted_timing.build(args.sofie, path, ns, lv, work, samples=args.samples) for lv in LEVELS]
    times = [[] for _ in LEVELS]
    for _ in range(args.rounds):
        for i, exe in enumerate(exes):
            times[i].append(float(subprocess.run([exe], check=True, capture_output=True, text=True).stdout.split()[0]))
    rows.append((name, times))
    print(name, [f"{min(t):.1f}-{max(t):.1f}" for t in times], flush=True)


def rng(v, fmt="{:.1f}"):
    lo, hi = min(v), max(v)
    return fmt.format(lo) if fmt.format(lo) == fmt.format(hi) else fmt.format(lo) + "–" + fmt.format(hi)


print()
print("| model | -O3 -march=native (µs) | -O2 (µs) | -O2 -DSOFIE_NO_DISPATCH (µs) | -O2 / -O3 | no dispatch / -O3 |")
print("|---|---|---|---|---|---|")
for name, (o3, o2, o2g) in rows:
    print(f"| {name} | {rng(o3)} | {rng(o2)} | {rng(o2g)} | {rng([b / a for a, b in zip(o3, o2)], '{:.2f}')}× "
          f"| {rng([b / a for a, b in zip(o3, o2g)], '{:.2f}')}× |")
