#!/usr/bin/env python3
"""Makes the ONNX Runtime reference for a model: seeded standard-normal inputs (float inputs;
symbolic leading dims set to --batch, others to 1), ONNX Runtime on one thread with all graph optimizations, and both
written as raw little-endian files in0.bin, in1.bin, ... and out0.bin, out1.bin, ...
Usage: ort_run.py MODEL.onnx OUTDIR [--seed S]"""
import argparse
import os
import numpy as np
import onnxruntime as ort

ap = argparse.ArgumentParser()
ap.add_argument("model")
ap.add_argument("outdir")
ap.add_argument("--seed", type=int, default=1234)
ap.add_argument("--batch", type=int, default=1, help="value of symbolic leading dimensions")
args = ap.parse_args()
os.makedirs(args.outdir, exist_ok=True)
opts = ort.SessionOptions()
opts.intra_op_num_threads = 1
opts.inter_op_num_threads = 1
opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
sess = ort.InferenceSession(args.model, opts, providers=["CPUExecutionProvider"])
rng = np.random.default_rng(args.seed)
TYPES = {"tensor(float)": np.float32, "tensor(double)": np.float64, "tensor(int64)": np.int64, "tensor(int32)": np.int32}
feeds = {}
for k, i in enumerate(sess.get_inputs()):
    shape = [d if isinstance(d, int) else (args.batch if j == 0 else 1) for j, d in enumerate(i.shape)]
    x = rng.standard_normal(shape).astype(TYPES[i.type])
    x.tofile(os.path.join(args.outdir, f"in{k}.bin"))
    feeds[i.name] = x
for k, y in enumerate(sess.run(None, feeds)):
    np.ascontiguousarray(y).tofile(os.path.join(args.outdir, f"out{k}.ref"))
