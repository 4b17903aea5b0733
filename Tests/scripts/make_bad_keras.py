#!/usr/bin/env python3
"""Writes defective Keras files for the error tests, by editing copies of the committed
fixtures with the standard library only (zipfile, json): a Lambda layer, a custom layer
class, a Dense whose config disagrees with its weights, an unsupported option, a truncated
archive, a weights-only .h5, and a file that is not a zip at all.
Usage: make_bad_keras.py FIXTURES_DIR OUTDIR"""
import json
import os
import shutil
import sys
import zipfile

src, out = sys.argv[1], sys.argv[2]
os.makedirs(out, exist_ok=True)


def edit(fixture, name, change):
    with zipfile.ZipFile(os.path.join(src, fixture, "model.keras")) as z:
        entries = {n: z.read(n) for n in z.namelist()}
    cfg = json.loads(entries["config.json"])
    change(cfg)
    entries["config.json"] = json.dumps(cfg).encode()
    with zipfile.ZipFile(os.path.join(out, name), "w") as z:
        for n, data in entries.items():
            z.writestr(n, data)


def layers(cfg):
    return cfg["config"]["layers"]


def to_lambda(cfg):
    for layer in layers(cfg):
        if layer["class_name"] == "Dense":
            layer["class_name"] = "Lambda"
            layer["config"]["function"] = {"class_name": "__lambda__", "config": {"code": "x"}}
            return


def to_custom(cfg):
    for layer in layers(cfg):
        if layer["class_name"] == "Dense":
            layer["class_name"] = "MyDense"
            layer["registered_name"] = "Custom>MyDense"
            layer["module"] = None
            return


def wrong_units(cfg):
    for layer in layers(cfg):
        if layer["class_name"] == "Dense":
            layer["config"]["units"] = layer["config"]["units"] + 1
            layer["config"]["use_bias"] = False
            return


def bicubic(cfg):
    for layer in layers(cfg):
        if layer["class_name"] == "UpSampling2D":
            layer["config"]["interpolation"] = "bicubic"
            return


def several_unsupported(cfg):
    # Three layers of two unsupported classes, one inside the nested model: one error lists all.
    outer = layers(cfg)
    for layer in outer:
        if layer["class_name"] == "Dense":
            layer["class_name"] = "GroupedQueryAttention"
        if layer["class_name"] == "Functional":
            for inner in layer["config"]["layers"]:
                if inner["class_name"] == "Dense":
                    inner["class_name"] = "SpectralNormalization"


edit("nested_functional", "several_unsupported.keras", several_unsupported)
edit("mlp", "lambda.keras", to_lambda)
edit("mlp", "custom_class.keras", to_custom)
edit("mlp", "wrong_weights.keras", wrong_units)
edit("padding_cropping", "bicubic.keras", bicubic)
data = open(os.path.join(src, "cnn", "model.keras"), "rb").read()
open(os.path.join(out, "truncated.keras"), "wb").write(data[: len(data) // 2])
open(os.path.join(out, "not_zip.keras"), "wb").write(b"definitely not a zip archive\n")
with zipfile.ZipFile(os.path.join(src, "mlp", "model.keras")) as z:
    open(os.path.join(out, "weights_only.h5"), "wb").write(z.read("model.weights.h5"))
shutil.copy(os.path.join(src, "mlp", "model.keras"), os.path.join(out, "good.keras"))
print("bad Keras files written to", out)
