#!/usr/bin/env python3
"""Seeds a fuzz corpus from the repository's own models: PyTorch-export and example ONNX
files, the hostile ONNX files (their shapes reach the size checks), and the Keras fixtures --
.h5 files as they are, .keras archives in the fuzz target's structure-aware form
(4-byte little-endian length, config.json, then model.weights.h5). Files above 32 KiB are left
out (libFuzzer's -max_len). Usage: make_fuzz_seeds.py onnx|compile|keras|h5 OUTDIR"""
import glob
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import zipfile

target, out = sys.argv[1], sys.argv[2]
root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.makedirs(out, exist_ok=True)
LIMIT = 32 << 10
n = 0


def add(data, name):
    global n
    if len(data) <= LIMIT:
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)
        n += 1


if target in ("onnx", "compile"):
    paths = glob.glob(f"{root}/Tests/Fixtures/pytorch/*/model.onnx") + [f"{root}/Examples/models/mlp.onnx"]
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, f"{root}/Tests/scripts/make_hostile_inputs.py", tmp], check=True, capture_output=True)
        paths += glob.glob(f"{tmp}/*.onnx")
        for p in paths:
            add(open(p, "rb").read(), os.path.basename(os.path.dirname(p)) + "_" + os.path.basename(p))
elif target == "keras":
    for p in glob.glob(f"{root}/Tests/Fixtures/keras/*/model.keras"):
        with zipfile.ZipFile(p) as z:
            cfg, w = z.read("config.json"), z.read("model.weights.h5")
        add(struct.pack("<I", len(cfg)) + cfg + w, os.path.basename(os.path.dirname(p)) + ".bin")
elif target == "h5":
    for p in glob.glob(f"{root}/Tests/Fixtures/keras/*/model_k*.h5"):
        add(open(p, "rb").read(), os.path.basename(os.path.dirname(p)) + "_" + os.path.basename(p))
print(f"{n} seeds in {out}")
