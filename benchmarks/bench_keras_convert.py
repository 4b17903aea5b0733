#!/usr/bin/env python3
"""Times Keras -> ONNX conversion of Keras 3 ResNet50 and MobileNetV2 (keras.applications,
weights=None, seeded): `sofie convert model.keras` (whole process, median of 5 runs) against
tf2onnx.convert.from_keras (in-process, median of 3, TensorFlow already imported), and checks
that sofie's ONNX matches Keras on one input through ONNX Runtime.
Needs the fixture environment: pip install keras tensorflow-cpu tf2onnx onnxruntime.
Usage: .venv-keras/bin/python benchmarks/bench_keras_convert.py [--sofie .build/release/sofie]"""
import argparse
import os
import statistics
import subprocess
import tempfile
import time
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np
import keras

ap = argparse.ArgumentParser()
ap.add_argument("--sofie", default=".build/release/sofie")
args = ap.parse_args()
work = tempfile.mkdtemp(prefix="sofie-keras-bench-")
keras.utils.set_random_seed(0)
print(f"{'model':<14} {'params':>9} {'sofie convert':>14} {'tf2onnx':>22} {'max |sofie-keras|':>18}")
for name, build in [("ResNet50", lambda: keras.applications.ResNet50(weights=None)),
                    ("MobileNetV2", lambda: keras.applications.MobileNetV2(weights=None))]:
    model = build()
    path = os.path.join(work, name + ".keras")
    model.save(path)
    out = os.path.join(work, name + ".onnx")
    times = []
    for _ in range(5):
        t = time.perf_counter()
        subprocess.run([args.sofie, "convert", path, "-o", out], check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - t)
    ours = statistics.median(times)
    try:
        import tensorflow as tf
        import tf2onnx
        spec = (tf.TensorSpec((None,) + tuple(model.input_shape[1:]), tf.float32, name="input"),)
        tt = []
        for _ in range(3):
            t = time.perf_counter()
            tf2onnx.convert.from_keras(model, input_signature=spec, opset=17)
            tt.append(time.perf_counter() - t)
        theirs = f"{statistics.median(tt):.2f} s"
    except Exception as e:  # tf2onnx and Keras 3 often do not get along: report, do not hide
        theirs = "failed: " + type(e).__name__
    try:
        import onnxruntime as ort
        x = np.random.default_rng(0).standard_normal((1,) + tuple(model.input_shape[1:])).astype(np.float32)
        sess = ort.InferenceSession(out, providers=["CPUExecutionProvider"])
        y = sess.run(None, {sess.get_inputs()[0].name: x})[0]
        err = f"{float(np.max(np.abs(y - np.asarray(model(x, training=False))))):.2e}"
    except Exception as e:
        err = "n/a (" + type(e).__name__ + ")"
    print(f"{name:<14} {model.count_params():>9} {ours:>13.2f}s {theirs:>22} {err:>18}")
