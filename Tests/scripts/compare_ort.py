#!/usr/bin/env python3
"""Runs two ONNX models in ONNX Runtime on the same random inputs and compares all outputs
(|a-b| <= atol + rtol*|b|). Usage: compare_ort.py A.onnx B.onnx [--rtol R --atol A --seed S]"""
import argparse
import sys
import numpy as np
import onnxruntime as ort

ap = argparse.ArgumentParser()
ap.add_argument("a")
ap.add_argument("b")
ap.add_argument("--rtol", type=float, default=1e-5)
ap.add_argument("--atol", type=float, default=1e-6)
ap.add_argument("--seed", type=int, default=0)
args = ap.parse_args()

TYPES = {"tensor(float)": np.float32, "tensor(double)": np.float64, "tensor(int64)": np.int64,
         "tensor(int32)": np.int32, "tensor(bool)": np.bool_}
rng = np.random.default_rng(args.seed)
opts = ort.SessionOptions()
opts.intra_op_num_threads = 1
sa = ort.InferenceSession(args.a, opts, providers=["CPUExecutionProvider"])
sb = ort.InferenceSession(args.b, opts, providers=["CPUExecutionProvider"])
feeds = {}
for i in sa.get_inputs():
    shape = [d if isinstance(d, int) else 1 for d in i.shape]
    feeds[i.name] = rng.standard_normal(shape).astype(TYPES[i.type])
ra, rb = sa.run(None, feeds), sb.run(None, feeds)
ok = True
for o, a, b in zip(sa.get_outputs(), ra, rb):
    if a.shape != b.shape or not np.all(np.abs(a - b) <= args.atol + args.rtol * np.abs(b)):
        ok = False
        print(f"output {o.name} differs: max |a-b| = {np.max(np.abs(a - b)) if a.shape == b.shape else 'shape'}")
print("outputs match" if ok else "outputs differ")
sys.exit(0 if ok else 1)
