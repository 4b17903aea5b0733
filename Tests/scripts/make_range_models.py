#!/usr/bin/env python3
"""Range with run-time bounds, as ROOT TMVA SOFIE's RangeFloat/RangeInt test models have it
(start, limit and delta are graph inputs), and a Range whose values feed more ops. sofie computes
the length at run time up to a bound (`--dim r_len=max:BOUND`; the node is named `r`).

Writes OUTDIR/NAME/model.onnx and OUTDIR/NAME/cases.json: per case the three scalar inputs and
ONNX Runtime's outputs (one thread), cases with an empty range (limit before start) and a
negative delta included.
Usage: make_range_models.py OUTDIR"""
import json
import os
import sys

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto as T, helper as h

out_dir = sys.argv[1]


def model(name, elem, nodes, outputs):
    inputs = [h.make_tensor_value_info(n, elem, []) for n in ("start", "limit", "delta")]
    g = h.make_graph(nodes, name, inputs, outputs)
    m = h.make_model(g, opset_imports=[h.make_opsetid("", 17)])
    m.ir_version = 8
    onnx.checker.check_model(m)
    return m


models = {
    # ROOT's RangeFloat / RangeInt: the Range alone, its length declared symbolic.
    "range_float": (model("range_float", T.FLOAT, [h.make_node("Range", ["start", "limit", "delta"], ["y"], name="r")],
                          [h.make_tensor_value_info("y", T.FLOAT, ["n"])]), np.float32),
    "range_int": (model("range_int", T.INT64, [h.make_node("Range", ["start", "limit", "delta"], ["y"], name="r")],
                        [h.make_tensor_value_info("y", T.INT64, ["n"])]), np.int64),
    # The range's values used further: y = 2 * r + 1, and its sum.
    "range_used": (model("range_used", T.FLOAT, [
        h.make_node("Range", ["start", "limit", "delta"], ["r_out"], name="r"),
        h.make_node("Constant", [], ["two"], value=h.make_tensor("two", T.FLOAT, [], [2.0])),
        h.make_node("Constant", [], ["one"], value=h.make_tensor("one", T.FLOAT, [], [1.0])),
        h.make_node("Mul", ["r_out", "two"], ["m"]),
        h.make_node("Add", ["m", "one"], ["y"]),
        h.make_node("ReduceSum", ["y"], ["s"], keepdims=0),
    ], [h.make_tensor_value_info("y", T.FLOAT, ["n"]), h.make_tensor_value_info("s", T.FLOAT, [])]), np.float32),
}
cases = [(0, 10, 1), (1, 10, 2), (5, 1, -1), (3, 3, 1), (4, 1, 1), (-2.5, 7.5, 0.5)]

for name, (m, dtype) in models.items():
    d = os.path.join(out_dir, name)
    os.makedirs(d, exist_ok=True)
    path = os.path.join(d, "model.onnx")
    onnx.save(m, path)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
    out = []
    for c in cases:
        if dtype == np.int64 and any(float(v) != int(v) for v in c):
            continue
        feeds = {k: np.array(v, dtype=dtype) for k, v in zip(("start", "limit", "delta"), c)}
        results = sess.run(None, feeds)
        out.append({"inputs": [float(v) for v in c], "outputs": [r.reshape(-1).astype(np.float64).tolist() for r in results]})
    with open(os.path.join(d, "cases.json"), "w") as f:
        json.dump({"dtype": np.dtype(dtype).name, "cases": out}, f)

# NonZero over a run-time input (its count known only at run time; --dim nz_len=max:20), the
# coordinates then cast and summed per row.
x_info = h.make_tensor_value_info("x", T.FLOAT, [4, 5])
nz = h.make_graph([
    h.make_node("NonZero", ["x"], ["idx"], name="nz"),
    h.make_node("Cast", ["idx"], ["idx_f"], to=T.FLOAT),
    h.make_node("ReduceSum", ["idx_f", "one_axis"], ["rows"], keepdims=0),
], "nonzero", [x_info], [h.make_tensor_value_info("idx", T.INT64, [2, "k"]), h.make_tensor_value_info("rows", T.FLOAT, [2])],
    [h.make_tensor("one_axis", T.INT64, [1], [1])])
m = h.make_model(nz, opset_imports=[h.make_opsetid("", 17)])
m.ir_version = 8
onnx.checker.check_model(m)
d = os.path.join(out_dir, "nonzero")
os.makedirs(d, exist_ok=True)
onnx.save(m, os.path.join(d, "model.onnx"))
sess = ort.InferenceSession(os.path.join(d, "model.onnx"), providers=["CPUExecutionProvider"])
rng = np.random.default_rng(3)
out = []
for density in (0.0, 0.3, 0.7, 1.0):
    x = (rng.random((4, 5)) < density).astype(np.float32) * rng.standard_normal((4, 5)).astype(np.float32)
    idx, rows = sess.run(None, {"x": x})
    out.append({"x": x.reshape(-1).astype(np.float64).tolist(), "idx": idx.reshape(-1).tolist(), "count": int(idx.shape[1]), "rows": rows.tolist()})
with open(os.path.join(d, "cases.json"), "w") as f:
    json.dump({"cases": out}, f)

# Compress along axis 0 by a run-time condition (--dim sel_len=max:6): the rows that pass.
cx = h.make_tensor_value_info("x", T.FLOAT, [6, 3])
cc = h.make_tensor_value_info("keep", T.BOOL, [6])
cg = h.make_graph([h.make_node("Compress", ["x", "keep"], ["y"], name="sel", axis=0)], "compress", [cx, cc],
                  [h.make_tensor_value_info("y", T.FLOAT, ["k", 3])])
m = h.make_model(cg, opset_imports=[h.make_opsetid("", 17)])
m.ir_version = 8
onnx.checker.check_model(m)
d = os.path.join(out_dir, "compress")
os.makedirs(d, exist_ok=True)
onnx.save(m, os.path.join(d, "model.onnx"))
sess = ort.InferenceSession(os.path.join(d, "model.onnx"), providers=["CPUExecutionProvider"])
x = rng.standard_normal((6, 3)).astype(np.float32)
out = []
for keep in ([0, 0, 0, 0, 0, 0], [1, 0, 1, 0, 0, 1], [1, 1, 1, 1, 1, 1], [0, 0, 0, 0, 0, 1]):
    (y,) = sess.run(None, {"x": x, "keep": np.array(keep, dtype=bool)})
    out.append({"x": x.reshape(-1).astype(np.float64).tolist(), "keep": keep, "y": y.reshape(-1).astype(np.float64).tolist(), "count": int(y.shape[0])})
with open(os.path.join(d, "cases.json"), "w") as f:
    json.dump({"cases": out}, f)
