#!/usr/bin/env python3
"""OpenVINO's own time per layer for a model, to set beside benchmarks/layer_profile.py's figures
for the emitted code: compiles MODEL for the CPU with one inference thread, the latency hint,
f32 and PERF_COUNT, runs it on random inputs (uniform in [0, 1)), and prints the executed
layers that took the most time (microseconds per call, layer type, the kernel OpenVINO chose,
name), then the time per layer type. Profiling adds its own cost: the total printed is above
OpenVINO's plain time (mobilenet_v3_small: 1.58 ms profiled against 1.55-1.58 timed by
bench_real.py), so compare layers, not totals.

Usage: .venv-bench/bin/python benchmarks/ov_layer_profile.py MODEL.onnx [--top 40] [--iterations 100]
Needs the benchmark venv (pip install openvino numpy)."""
import argparse
import collections

import numpy as np
import openvino as ov

ap = argparse.ArgumentParser()
ap.add_argument("model")
ap.add_argument("--top", type=int, default=40)
ap.add_argument("--iterations", type=int, default=100)
args = ap.parse_args()

core = ov.Core()
compiled = core.compile_model(core.read_model(args.model), "CPU", {
    "INFERENCE_NUM_THREADS": 1, "PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": "f32", "PERF_COUNT": True})
request = compiled.create_infer_request()
rng = np.random.default_rng(0)
feed = {i.any_name: rng.random([d.get_length() for d in i.get_partial_shape()], dtype=np.float32) for i in compiled.inputs}
for _ in range(20):
    request.infer(feed)
layers = collections.defaultdict(float)
for _ in range(args.iterations):
    request.infer(feed)
    for p in request.profiling_info:
        if p.status == p.Status.EXECUTED:
            layers[(p.node_name, p.node_type, p.exec_type)] += p.real_time.total_seconds() * 1e6
per_call = {k: v / args.iterations for k, v in layers.items()}
print(f"{args.model}: {sum(per_call.values()):.1f} us per call under profiling")
for (name, kind, kernel), us in sorted(per_call.items(), key=lambda kv: -kv[1])[:args.top]:
    print(f"{us:9.1f} us  {kind:<18} {kernel:<28} {name[:80]}")
by_type = collections.Counter()
for (_, kind, _), us in per_call.items():
    by_type[kind] += us
print("by layer type:")
for kind, us in by_type.most_common():
    print(f"{us:9.1f} us  {kind}")
