#!/usr/bin/env python3
"""Node and Transpose counts of keras.applications models converted by sofie (default passes)
and by tf2onnx 1.17 (from the Keras 3 model as a tf.function, opset 18), side by side.
Needs the Keras venv with tf2onnx: .venv-keras/bin/pip install --no-deps tf2onnx
Usage: compare_tf2onnx.py SOFIE APPS_DIR [NAME ...]   (prints a Markdown table)"""
import collections
import json
import os
import subprocess
import sys
import tempfile
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import logging
logging.disable(logging.WARNING)
import onnx
import tensorflow as tf
import keras
import tf2onnx

sofie, apps = sys.argv[1], sys.argv[2]
names = sys.argv[3:] or sorted(n for n in os.listdir(apps) if os.path.exists(os.path.join(apps, n, "meta.json")))
tmp = tempfile.mkdtemp()


def counts(m):
    c = collections.Counter(n.op_type for n in m.graph.node)
    return len(m.graph.node), c.get("Transpose", 0)


print("| model | sofie nodes | sofie Transposes | tf2onnx nodes | tf2onnx Transposes |")
print("|---|---|---|---|---|")
for name in names:
    d = os.path.join(apps, name)
    out = os.path.join(tmp, name + ".onnx")
    subprocess.run([sofie, "convert", os.path.join(d, "model.keras"), "-o", out], check=True, capture_output=True)
    ours = counts(onnx.load(out, load_external_data=False))
    model = keras.saving.load_model(os.path.join(d, "model.keras"))
    shape = json.load(open(os.path.join(d, "meta.json")))["inputs"][0]["shape"]
    spec = (tf.TensorSpec([None] + shape[1:], tf.float32, name="x"),)
    proto, _ = tf2onnx.convert.from_function(tf.function(lambda x: model(x, training=False)), input_signature=spec, opset=18)
    theirs = counts(proto)
    print(f"| {name} | {ours[0]} | {ours[1]} | {theirs[0]} | {theirs[1]} |", flush=True)
