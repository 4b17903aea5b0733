#!/usr/bin/env python3
"""ONNX's light models make every weight with ConstantOfShape, so their outputs are constant
(softmax of equal logits). This writes a copy whose fills are replaced by seeded random
initializers of sensible scale (He-style for Conv/Gemm weights, positive variances for
BatchNormalization), so that comparing outputs tests real numerics.
Usage: randomize_fills.py IN.onnx OUT.onnx [--seed S]"""
import argparse
import numpy as np
import onnx
from onnx import numpy_helper

ap = argparse.ArgumentParser()
ap.add_argument("src")
ap.add_argument("dst")
ap.add_argument("--seed", type=int, default=7)
args = ap.parse_args()
m = onnx.load(args.src)
g = m.graph
rng = np.random.default_rng(args.seed)
consts = {t.name: numpy_helper.to_array(t) for t in g.initializer}
for n in g.node:
    if n.op_type == "Constant":
        consts[n.output[0]] = numpy_helper.to_array(n.attribute[0].t)
role = {}
for n in g.node:
    for k, name in enumerate(n.input):
        role.setdefault(name, (n.op_type, k))
keep, added = [], []
for n in g.node:
    if n.op_type != "ConstantOfShape":
        keep.append(n)
        continue
    shape = consts[n.input[0]].astype(np.int64)
    value = numpy_helper.to_array(n.attribute[0].t).ravel()[0] if n.attribute else 0.0
    op, k = role.get(n.output[0], ("", -1))
    if op in ("Conv", "Gemm", "MatMul") and k == 1 and len(shape) >= 2:
        fan_in = int(np.prod(shape[1:])) if op == "Conv" else int(shape[1] if op == "Gemm" else shape[0])
        arr = rng.standard_normal(shape) * np.sqrt(2.0 / max(fan_in, 1))
    elif op == "BatchNormalization" and k == 4:
        arr = 0.5 + rng.random(shape)
    elif op == "BatchNormalization" and k == 1:
        arr = 0.8 + 0.4 * rng.random(shape)
    else:
        arr = value + 0.1 * rng.standard_normal(shape)
    added.append(numpy_helper.from_array(arr.astype(np.float32), n.output[0]))
del g.node[:]
g.node.extend(keep)
g.initializer.extend(added)
onnx.save(m, args.dst)
