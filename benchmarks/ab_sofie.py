#!/usr/bin/env python3
"""Before/after timing of one change to the emitted code: compiles each model with two sofie
binaries (A: before, B: after; e.g. a build of the previous commit in a git worktree), builds
both headers with the same flags and driver (emitted_timing.py), then runs the two executables
alternately ROUNDS times, so that the machine's drift over minutes hits both alike. Prints per
model each side's minimum and median over the rounds (each round is itself a median of
calibrated samples) and the ratio of minima A/B (above 1: B is faster).

Usage: .venv/bin/python benchmarks/ab_sofie.py --a /tmp/old/.build/debug/sofie --b .build/debug/sofie
           [--rounds 8] [--flags "-O3 -march=native"] MODEL.onnx [MODEL.onnx ...]
Needs only numpy and onnx (reads the models' input and output counts)."""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import emitted_timing  # noqa: E402

ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
ap.add_argument("--a", required=True, help="sofie binary before the change")
ap.add_argument("--b", required=True, help="sofie binary after the change")
ap.add_argument("--rounds", type=int, default=8)
ap.add_argument("--samples", type=int, default=9)
ap.add_argument("--flags", default="-O3 -march=native")
ap.add_argument("--cxx", default="g++")
ap.add_argument("models", nargs="+")
args = ap.parse_args()
work = tempfile.mkdtemp(prefix="sofie-ab-")

print(f"| model | A min | A median | B min | B median | A/B (minima) |")
print(f"|---|---|---|---|---|---|")
for path in args.models:
    # "DIR/model.onnx" (the fixtures' layout) is named after DIR.
    base = os.path.splitext(os.path.basename(path))[0]
    if base == "model":
        base = os.path.basename(os.path.dirname(os.path.abspath(path)))
    stem = "".join(c if c.isalnum() else "_" for c in base)
    exes = {side: emitted_timing.build(sofie, path, f"{stem}_{side}", args.flags, work, samples=args.samples, cxx=args.cxx)
            for side, sofie in (("a", args.a), ("b", args.b))}
    times = {"a": [], "b": []}
    for r in range(args.rounds):
        order = ("a", "b") if r % 2 == 0 else ("b", "a")
        for side in order:
            times[side].append(float(subprocess.run([exes[side]], check=True, capture_output=True, text=True).stdout))
    a, b = times["a"], times["b"]
    print(f"| {base} | {min(a):.1f} µs | {statistics.median(a):.1f} | {min(b):.1f} | "
          f"{statistics.median(b):.1f} | {min(a) / min(b):.2f}× |", flush=True)
