#!/usr/bin/env python3
"""Compares pairs of ONNX models in ONNX Runtime (single thread) on the same seeded random
inputs: every output must agree within |a-b| <= atol + rtol*|b|.
Usage: compare_ort_many.py pairs.tsv [--rtol R --atol A]   (lines: reference.onnx<TAB>candidate.onnx<TAB>label)
Prints one line per pair and a summary; exits 1 if any pair differs or fails to run."""
import argparse
import sys
import numpy as np
import onnxruntime as ort

ap = argparse.ArgumentParser()
ap.add_argument("pairs")
ap.add_argument("--rtol", type=float, default=1e-4)
ap.add_argument("--atol", type=float, default=1e-5)
args = ap.parse_args()

TYPES = {"tensor(float)": np.float32, "tensor(double)": np.float64, "tensor(int64)": np.int64,
         "tensor(int32)": np.int32, "tensor(bool)": np.bool_}
opts = ort.SessionOptions()
opts.intra_op_num_threads = 1
opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
sessions = {}


def session(path):
    if path not in sessions:
        sessions[path] = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
    return sessions[path]


ok_count, failed = 0, []
for line in open(args.pairs):
    if not line.strip():
        continue
    ref, cand, label = line.rstrip("\n").split("\t")
    try:
        sa, sb = session(ref), session(cand)
        rng = np.random.default_rng(0)
        feeds = {}
        for i in sa.get_inputs():
            shape = [d if isinstance(d, int) else 2 for d in i.shape]
            t = TYPES[i.type]
            feeds[i.name] = (rng.standard_normal(shape) if t in (np.float32, np.float64) else rng.integers(0, 3, shape)).astype(t)
        ra, rb = sa.run(None, feeds), sb.run(None, feeds)
        bad = [f"{o.name}: max |a-b| = {np.max(np.abs(a - b)) if a.shape == b.shape else f'shape {a.shape} vs {b.shape}'}"
               for o, a, b in zip(sa.get_outputs(), ra, rb)
               if a.shape != b.shape or not np.all(np.abs(b - a) <= args.atol + args.rtol * np.abs(a))]
        if len(ra) != len(rb):
            bad.append(f"{len(ra)} outputs vs {len(rb)}")
    except Exception as e:  # a model ONNX Runtime rejects is a failure too
        bad = [f"error: {str(e)[:300]}"]
    if bad:
        failed.append(label)
        print(f"FAIL {label}: {'; '.join(bad)}")
    else:
        ok_count += 1
print(f"{ok_count} ok, {len(failed)} failed")
sys.exit(1 if failed else 0)
