#!/usr/bin/env python3
"""Checks ONNX files converted from the Keras fixtures: onnx.checker (full_check) accepts each,
and ONNX Runtime on the fixture's input matches the outputs Keras computed
(|a-b| <= 1e-5 + 1e-4*|b|). Usage: check_keras_onnx.py LIST   (lines: ONNX<TAB>FIXTURE_DIR<TAB>PREFIX)
where PREFIX is keras3 or keras2. Prints a line per failure and 'N ok, M failed'."""
import json
import os
import sys
import warnings
warnings.filterwarnings("ignore")
import numpy as np
import onnx
import onnxruntime as ort

ok = failed = 0
opts = ort.SessionOptions()
opts.intra_op_num_threads = 1
opts.log_severity_level = 3
for line in open(sys.argv[1]):
    if not line.strip():
        continue
    path, d, prefix = line.rstrip("\n").split("\t")
    try:
        m = onnx.load(path)
        onnx.checker.check_model(m, full_check=True)
        meta = json.load(open(os.path.join(d, "meta.json")))
        sess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
        feeds = {}
        for i, (spec, inp) in enumerate(zip(meta["inputs"], sess.get_inputs())):
            x = np.fromfile(os.path.join(d, f"input{i}.bin"), dtype=spec["dtype"]).reshape(spec["shape"])
            feeds[inp.name] = x
        outs = sess.run(None, feeds)
        shapes = meta.get("outputs_keras2", meta["outputs"]) if prefix == "keras2" else meta["outputs"]
        for k, (y, shape) in enumerate(zip(outs, shapes)):
            ref = np.fromfile(os.path.join(d, f"{prefix}_output{k}.bin"), dtype=np.float32).reshape(shape)
            if y.shape != ref.shape:
                raise AssertionError(f"output {k} has shape {y.shape}, Keras gives {ref.shape}")
            err = np.abs(y - ref) - (1e-5 + 1e-4 * np.abs(ref))
            if np.any(err > 0):
                raise AssertionError(f"output {k} differs from Keras: max |a-b| = {np.max(np.abs(y - ref)):.3g}")
        ok += 1
    except Exception as e:
        failed += 1
        print(f"FAIL {path}: {str(e).splitlines()[0][:300]}")
print(f"{ok} ok, {failed} failed")
sys.exit(1 if failed else 0)
