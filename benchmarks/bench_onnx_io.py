#!/usr/bin/env python3
"""Times `sofie inspect` and `sofie convert` (read + verify + write) on ONNX's light real models,
side by side with the onnx Python package doing the same work (onnx.load; onnx.load + onnx.save).
Each figure is the median wall time of N runs of the whole process/operation.
Usage: .venv/bin/python benchmarks/bench_onnx_io.py [--sofie PATH] [--runs N]"""
import argparse
import os
import statistics
import subprocess
import tempfile
import time
import onnx

ap = argparse.ArgumentParser()
ap.add_argument("--sofie", default=".build/release/sofie")
ap.add_argument("--runs", type=int, default=11)
ap.add_argument("--models", default="resnet50,vgg19,densenet121")
args = ap.parse_args()
light = os.path.join(os.path.dirname(onnx.__file__), "backend/test/data/light")


def median_time(fn):
    times = []
    for _ in range(args.runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e3


tmp = tempfile.mkdtemp()
start = median_time(lambda: subprocess.run([args.sofie, "--version"], check=True, stdout=subprocess.DEVNULL))
print(f"process start-up of sofie (sofie --version): {start:.1f} ms, included in the sofie columns; the onnx columns run in-process")
print(f"{'model':<14} {'sofie inspect':>14} {'sofie convert':>14} {'onnx.load':>10} {'load+save':>10}  (ms, median of {args.runs})")
for name in args.models.split(","):
    path = os.path.join(light, f"light_{name}.onnx")
    out = os.path.join(tmp, f"{name}.onnx")
    ins = median_time(lambda: subprocess.run([args.sofie, "inspect", path], check=True, stdout=subprocess.DEVNULL))
    conv = median_time(lambda: subprocess.run([args.sofie, "convert", path, "-o", out], check=True, stdout=subprocess.DEVNULL))
    load = median_time(lambda: onnx.load(path))
    ls = median_time(lambda: onnx.save(onnx.load(path), out + ".py.onnx"))
    print(f"{name:<14} {ins:>14.1f} {conv:>14.1f} {load:>10.1f} {ls:>10.1f}")
