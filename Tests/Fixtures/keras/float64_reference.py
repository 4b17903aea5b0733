#!/usr/bin/env python3
"""How far float32 alone moves a keras.applications model's output: for each application made by
make_applications.py, rebuilds it in float64 with the same weights, runs it on the same input,
and compares with that float64 output (the exact answer up to float64 rounding) both Keras'
own float32 output (keras3_output0.bin) and sofie's (the ONNX file `sofie convert` writes, run
by ONNX Runtime). The error is reported in units of the tests' tolerance,
max |a-b| / (1e-5 + 1e-4 |ref|): 1 is the tolerance. When Keras' float32 output is itself
several tolerances away from float64, no float32 implementation summing in another order can
be expected to match it at that tolerance; what shows that sofie is right is that its distance
to float64 is no larger than Keras'.

Usage (Keras venv): float64_reference.py APPS_DIR SOFIE [NAME ...]
Writes keras3_output0_f64.bin beside each model and prints one line per application."""
import json
import os
import subprocess
import sys
import tempfile
import warnings

warnings.filterwarnings("ignore")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np  # noqa: E402
import keras  # noqa: E402
import onnxruntime as ort  # noqa: E402


def to_float64(config):
    """The same config with every float32 dtype policy made float64."""
    if isinstance(config, dict):
        out = {}
        for k, v in config.items():
            if k == "dtype" and v == "float32":
                out[k] = "float64"
            elif k == "dtype" and isinstance(v, dict) and v.get("class_name") == "DTypePolicy":
                out[k] = {**v, "config": {**v["config"], "name": "float64"}}
            else:
                out[k] = to_float64(v)
        return out
    if isinstance(config, list):
        return [to_float64(v) for v in config]
    return config


def tolerance_units(a, ref):
    return float(np.max(np.abs(a.astype(np.float64) - ref) / (1e-5 + 1e-4 * np.abs(ref))))


def main():
    apps, sofie = sys.argv[1], sys.argv[2]
    names = sys.argv[3:] or sorted(n for n in os.listdir(apps) if os.path.exists(os.path.join(apps, n, "meta.json")))
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.log_severity_level = 3
    print(f"{'application':18} {'Keras f32':>10} {'sofie f32':>10}   (distance to Keras float64, in tolerances)")
    for name in names:
        d = os.path.join(apps, name)
        meta = json.load(open(os.path.join(d, "meta.json")))
        x = np.fromfile(os.path.join(d, "input0.bin"), dtype=np.float32).reshape(meta["inputs"][0]["shape"])
        y32 = np.fromfile(os.path.join(d, "keras3_output0.bin"), dtype=np.float32).reshape(meta["outputs"][0])
        m = keras.models.load_model(os.path.join(d, "model.keras"), compile=False)
        keras.config.set_floatx("float64")
        m64 = m.__class__.from_config(to_float64(m.get_config()))
        m64.set_weights([w.astype(np.float64) for w in m.get_weights()])
        keras.config.set_floatx("float32")
        y64 = np.asarray(m64(x.astype(np.float64), training=False), dtype=np.float64)
        y64.tofile(os.path.join(d, "keras3_output0_f64.bin"))
        with tempfile.TemporaryDirectory() as t:
            onnx_path = os.path.join(t, "m.onnx")
            subprocess.run([sofie, "convert", os.path.join(d, "model.keras"), "-o", onnx_path], check=True, capture_output=True)
            sess = ort.InferenceSession(onnx_path, opts, providers=["CPUExecutionProvider"])
            ys = sess.run(None, {sess.get_inputs()[0].name: x})[0]
        print(f"{name:18} {tolerance_units(y32, y64):10.3f} {tolerance_units(ys, y64):10.3f}   "
              f"(max |y| {np.max(np.abs(y64)):.3g}; Keras f32 vs sofie f32 {tolerance_units(ys, y32.astype(np.float64)):.3f})",
              flush=True)


main()
