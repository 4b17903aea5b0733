#!/usr/bin/env python3
"""Variants of ONNX's node tests whose shape-like inputs (axes, sizes, scales, shapes, repeats,
pads, k, depth, ...) are graph inputs: each such input becomes an initializer holding the value
of the test's data, as in real models, where these are constants. A test gets a variant when it
has one data set and every integer input, and every float input that feeds Resize's scales or a
shape-like position, can be made constant; the data set keeps the other inputs.

Usage: make_constant_input_variants.py NODE_TESTS_DIR OUTDIR [NAME ...]
Writes OUTDIR/NAME/{model.onnx, test_data_set_0/{input_*.pb, output_*.pb}}."""
import glob
import os
import shutil
import sys

import onnx
from onnx import numpy_helper

src, out = sys.argv[1], sys.argv[2]
names = sys.argv[3:] or sorted(os.listdir(src))
os.makedirs(out, exist_ok=True)
# (op, input positions) that carry shapes, axes, sizes or counts rather than data.
SHAPE_INPUTS = {
    "Resize": {1, 2, 3}, "Upsample": {1}, "Reshape": {1}, "Expand": {1}, "Tile": {1}, "Slice": {1, 2, 3, 4},
    "Split": {1}, "Squeeze": {1}, "Unsqueeze": {1}, "Pad": {1, 2, 3}, "ConstantOfShape": {0}, "Range": {0, 1, 2},
    "OneHot": {1}, "TopK": {1}, "CumSum": {1}, "CumProd": {1}, "ReduceSum": {1}, "ReduceMean": {1}, "ReduceMax": {1},
    "ReduceMin": {1}, "ReduceProd": {1}, "ReduceL1": {1}, "ReduceL2": {1}, "ReduceLogSum": {1}, "ReduceLogSumExp": {1},
    "ReduceSumSquare": {1}, "HannWindow": {0}, "HammingWindow": {0}, "BlackmanWindow": {0}, "MelWeightMatrix": {0, 1, 2, 3, 4},
    "STFT": {1, 3}, "DFT": {1, 2}, "AffineGrid": {1}, "CenterCropPad": {1}, "Col2Im": {1, 2},
}
count = 0
for name in names:
    d = os.path.join(src, name)
    sets = sorted(glob.glob(os.path.join(d, "test_data_set_*")))
    if len(sets) != 1 or not os.path.exists(os.path.join(d, "model.onnx")):
        continue
    m = onnx.load(os.path.join(d, "model.onnx"))
    inputs = [i.name for i in m.graph.input]
    shape_like = set()
    for n in m.graph.node:
        for pos in SHAPE_INPUTS.get(n.op_type, ()):
            if pos < len(n.input) and n.input[pos] in inputs:
                shape_like.add(n.input[pos])
    if not shape_like:
        continue
    data = [onnx.load_tensor(f) for f in sorted(glob.glob(os.path.join(sets[0], "input_*.pb")))]
    if len(data) != len(inputs):
        continue
    keep = []
    for name_i, t in zip(inputs, data):
        if name_i in shape_like:
            t.name = name_i
            m.graph.initializer.append(t)
        else:
            keep.append((name_i, t))
    for vi in list(m.graph.input):
        if vi.name in shape_like:
            m.graph.input.remove(vi)
    o = os.path.join(out, name)
    os.makedirs(os.path.join(o, "test_data_set_0"), exist_ok=True)
    onnx.save(m, os.path.join(o, "model.onnx"))
    for k, (_, t) in enumerate(keep):
        with open(os.path.join(o, "test_data_set_0", f"input_{k}.pb"), "wb") as f:
            f.write(t.SerializeToString())
    for f in sorted(glob.glob(os.path.join(sets[0], "output_*.pb"))):
        shutil.copy(f, os.path.join(o, "test_data_set_0", os.path.basename(f)))
    count += 1
print(f"{count} variants")
