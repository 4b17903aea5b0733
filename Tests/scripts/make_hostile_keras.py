#!/usr/bin/env python3
"""Writes hostile Keras files by editing copies of the committed fixtures (zipfile, json, h5py):
a layer called with no input tensor, an UpSampling2D size, a padding, a Softmax axis and a
tensor index of 1e308, a tensor index of -1, a negative input dimension, a nested model with
more input layers than it is called with, an LSTM whose kernel does not match units x gates, and weight datasets that declare 2^31 floats in a file of a few KB
(.h5 and inside a .keras). The tests expect a clear error naming the file and the layer,
quickly and without allocating what the file declares.
Usage: make_hostile_keras.py FIXTURES_DIR OUTDIR"""
import json
import os
import shutil
import sys
import zipfile

import h5py
import numpy as np

src, out = sys.argv[1], sys.argv[2]
os.makedirs(out, exist_ok=True)


def edit_config(fixture, name, change):
    with zipfile.ZipFile(os.path.join(src, fixture, "model.keras")) as z:
        entries = {n: z.read(n) for n in z.namelist()}
    cfg = json.loads(entries["config.json"])
    change(cfg["config"]["layers"])
    entries["config.json"] = json.dumps(cfg).encode()
    with zipfile.ZipFile(os.path.join(out, name), "w") as z:
        for n, data in entries.items():
            z.writestr(n, data)


def no_inbound(layers):
    for layer in layers:
        if layer["class_name"] == "Conv2D":
            layer["inbound_nodes"] = [{"args": [], "kwargs": {}}]
            return


def upsampling_huge(layers):
    for layer in layers:
        if layer["class_name"] == "UpSampling2D":
            layer["config"]["size"] = [1e308, 1e308]
            return


def nested_extra_input(layers):
    # The nested model gains a second InputLayer but is still called with one tensor
    # (found by fuzzing: the reader indexed past the tensors it was called with).
    for layer in layers:
        if layer["class_name"] == "Functional":
            inner = layer["config"]["layers"]
            extra = json.loads(json.dumps(inner[0]))
            extra["name"] = extra["config"]["name"] = "extra_in"
            inner.insert(1, extra)
            return


def padding_huge(layers):
    for layer in layers:
        if layer["class_name"] == "ZeroPadding2D":
            layer["config"]["padding"] = [[1e308, 1], [1, 1]]
            return


def softmax_axis_huge(layers):
    for layer in layers:
        if layer["class_name"] == "Softmax":
            layer["config"]["axis"] = 1e308
            return


def history_index(value):
    def change(layers):
        for layer in layers:
            if layer["class_name"] == "Conv2D":
                layer["inbound_nodes"][0]["args"][0]["config"]["keras_history"][2] = value
                return
    return change


def batch_shape_negative(layers):
    layers[0]["config"]["batch_shape"] = [None, -5, 8, 3]


edit_config("nested_functional", "nested_extra_input.keras", nested_extra_input)
edit_config("padding_cropping", "padding_huge.keras", padding_huge)
edit_config("softmax_axis", "softmax_axis_huge.keras", softmax_axis_huge)
edit_config("resnet_block", "history_index_huge.keras", history_index(1e308))
edit_config("resnet_block", "history_index_negative.keras", history_index(-1))
edit_config("resnet_block", "batch_shape_negative.keras", batch_shape_negative)
edit_config("resnet_block", "no_inbound.keras", no_inbound)
edit_config("padding_cropping", "upsampling_huge.keras", upsampling_huge)


def replace_dataset(path, pick, shape, write=True):
    """Replaces the first dataset whose name ends in `pick` by one of `shape` (unwritten data
    stays unallocated: the file stays small while it declares the whole shape)."""
    with h5py.File(path, "r+") as f:
        names = []
        f.visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) and n.endswith(pick) else None)
        target = names[0]
        del f[target]
        d = f.create_dataset(target, shape=shape, dtype="float32")
        if write:
            d[...] = np.ones(shape, np.float32)


lstm_h5 = os.path.join(out, "lstm_kernel_mismatch.h5")
shutil.copy(os.path.join(src, "lstm", "model_k3.h5"), lstm_h5)
replace_dataset(lstm_h5, "lstm_cell/kernel", (5, 20))  # units 7 x 4 gates = 28 columns expected

huge_h5 = os.path.join(out, "huge_dataset.h5")
shutil.copy(os.path.join(src, "mlp", "model_k3.h5"), huge_h5)
replace_dataset(huge_h5, "kernel", (1 << 16, 1 << 15), write=False)

# The same inside a .keras archive (its weights file is opened from memory).
with zipfile.ZipFile(os.path.join(src, "mlp", "model.keras")) as z:
    entries = {n: z.read(n) for n in z.namelist()}
weights = os.path.join(out, "model.weights.h5")
with open(weights, "wb") as fh:
    fh.write(entries["model.weights.h5"])
replace_dataset(weights, "vars/0", (1 << 16, 1 << 15), write=False)
with open(weights, "rb") as fh:
    entries["model.weights.h5"] = fh.read()
os.remove(weights)
with zipfile.ZipFile(os.path.join(out, "huge_dataset.keras"), "w") as z:
    for n, data in entries.items():
        z.writestr(n, data)
