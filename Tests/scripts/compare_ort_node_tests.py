#!/usr/bin/env python3
"""ONNX Runtime on each ONNX operator conformance model before and after our passes, fed the
test's own test_data_set_0 inputs: every output must agree (floats |a-b| <= 1e-5 + 1e-4|a|,
NaN equal to NaN; other types exactly). Models ONNX Runtime cannot run as given (ops or
options it lacks) are counted as skipped.
Usage: compare_ort_node_tests.py pairs.tsv   (lines: original.onnx<TAB>optimized.onnx<TAB>name)
Prints a summary line; exits 1 if any optimized model differs or fails to run."""
import glob
import os
import sys
import numpy as np
import onnx
import onnxruntime as ort
from onnx import numpy_helper

opts = ort.SessionOptions()
opts.intra_op_num_threads = 1
opts.log_severity_level = 4
opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
ok = skipped = 0
bad = []
for line in open(sys.argv[1]):
    if not line.strip():
        continue
    ref, cand, name = line.rstrip("\n").split("\t")
    inputs = sorted(glob.glob(os.path.join(os.path.dirname(ref), "test_data_set_0", "input_*.pb")))
    try:
        sa = ort.InferenceSession(ref, opts, providers=["CPUExecutionProvider"])
        feeds = {}
        for i, p in zip(sa.get_inputs(), inputs):
            t = onnx.TensorProto()
            with open(p, "rb") as f:
                t.ParseFromString(f.read())
            feeds[i.name] = numpy_helper.to_array(t)
        ra = sa.run(None, feeds)
    except Exception:
        skipped += 1
        continue
    try:
        sb = ort.InferenceSession(cand, opts, providers=["CPUExecutionProvider"])
        names = {i.name for i in sb.get_inputs()}
        rb = sb.run(None, {k: v for k, v in feeds.items() if k in names})
        differ = []
        for o, a, b in zip(sa.get_outputs(), ra, rb):
            a, b = np.asarray(a), np.asarray(b)
            if a.shape != b.shape:
                differ.append(f"{o.name} shape {a.shape} vs {b.shape}")
            elif a.dtype.kind in "fc" and not np.allclose(b, a, rtol=1e-4, atol=1e-5, equal_nan=True):
                differ.append(f"{o.name} max |a-b| {np.nanmax(np.abs(a - b))}")
            elif a.dtype.kind not in "fc" and not np.array_equal(a, b):
                differ.append(f"{o.name} values")
        if len(ra) != len(rb):
            differ.append(f"{len(ra)} outputs vs {len(rb)}")
        if differ:
            bad.append(f"{name}: {'; '.join(differ)}")
        else:
            ok += 1
    except Exception as e:
        bad.append(f"{name}: {str(e)[:300]}")
for b in bad:
    print("FAIL", b)
print(f"{ok} ok, {skipped} skipped (ONNX Runtime cannot run the original), {len(bad)} failed")
sys.exit(1 if bad else 0)
