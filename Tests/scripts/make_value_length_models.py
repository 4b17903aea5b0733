#!/usr/bin/env python3
"""Ops whose output length run-time values choose, with ONNX Runtime's outputs as references:
Unique over a run-time input (sorted, and in order of first occurrence along an axis),
NonMaxSuppression with run-time boxes, scores and thresholds, and TopK with a run-time k. The
output lengths are left symbolic in the files: sofie bounds them by the largest value they can
take (or by `--dim NODE_len=max:BOUND`).

Writes OUTDIR/NAME/model.onnx and OUTDIR/NAME/cases.json: per case the inputs (name, dtype,
flat values) and ONNX Runtime's outputs (dtype, flat values), one intra-op thread.
Usage: make_value_length_models.py OUTDIR"""
import json
import os
import sys

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto as T, helper as h

out_dir = sys.argv[1]
rng = np.random.default_rng(11)


def save(name, graph, feeds_list):
    m = h.make_model(graph, opset_imports=[h.make_opsetid("", 17)])
    m.ir_version = 8
    onnx.checker.check_model(m)
    d = os.path.join(out_dir, name)
    os.makedirs(d, exist_ok=True)
    path = os.path.join(d, "model.onnx")
    onnx.save(m, path)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
    cases = []
    for feeds in feeds_list:
        outs = sess.run(None, feeds)
        cases.append({
            "inputs": [{"name": k, "dtype": v.dtype.name, "values": v.reshape(-1).tolist()} for k, v in feeds.items()],
            "outputs": [{"dtype": o.dtype.name, "shape": list(o.shape), "values": o.reshape(-1).tolist()} for o in outs],
        })
    with open(os.path.join(d, "cases.json"), "w") as f:
        json.dump({"cases": cases}, f)


# Unique of 12 hit channels (sorted), the distinct values summed after; node "u".
g = h.make_graph([
    h.make_node("Unique", ["x"], ["y", "first", "inverse", "counts"], name="u", sorted=1),
    h.make_node("ReduceSum", ["y"], ["total"], keepdims=0),
], "unique_sorted", [h.make_tensor_value_info("x", T.FLOAT, [12])],
    [h.make_tensor_value_info("y", T.FLOAT, ["k"]), h.make_tensor_value_info("first", T.INT64, ["k"]),
     h.make_tensor_value_info("inverse", T.INT64, [12]), h.make_tensor_value_info("counts", T.INT64, ["k"]),
     h.make_tensor_value_info("total", T.FLOAT, [])])
save("unique_sorted", g, [
    {"x": np.array([3, 1, 2, 3, 1, 5, 5, 0, 2, 9, 3, 1], dtype=np.float32)},
    {"x": np.full(12, 4.5, dtype=np.float32)},
    {"x": np.arange(12, 0, -1).astype(np.float32)},
    {"x": np.array([0, -0.5, 7, 7, 7, -0.5, 2, 2, 1e6, -1e6, 0, 3], dtype=np.float32)},
])

# Unique rows of a 6x3 table along axis 0, in order of first occurrence; node "rows".
g = h.make_graph([
    h.make_node("Unique", ["x"], ["y", "first", "inverse", "counts"], name="rows", axis=0, sorted=0),
], "unique_rows", [h.make_tensor_value_info("x", T.INT64, [6, 3])],
    [h.make_tensor_value_info("y", T.INT64, ["k", 3]), h.make_tensor_value_info("first", T.INT64, ["k"]),
     h.make_tensor_value_info("inverse", T.INT64, [6]), h.make_tensor_value_info("counts", T.INT64, ["k"])])
save("unique_rows", g, [
    {"x": np.array([[1, 2, 3], [0, 0, 1], [1, 2, 3], [4, 4, 4], [0, 0, 1], [1, 2, 2]], dtype=np.int64)},
    {"x": np.zeros((6, 3), dtype=np.int64)},
    {"x": np.arange(18, dtype=np.int64).reshape(6, 3)[::-1].copy()},
])

# NonMaxSuppression over 10 boxes, 2 classes, 2 batches, thresholds given at run time; node "nms".
g = h.make_graph([
    h.make_node("NonMaxSuppression", ["boxes", "scores", "max_out", "iou", "score_th"], ["sel"], name="nms"),
], "nms", [h.make_tensor_value_info("boxes", T.FLOAT, [2, 10, 4]), h.make_tensor_value_info("scores", T.FLOAT, [2, 2, 10]),
           h.make_tensor_value_info("max_out", T.INT64, [1]), h.make_tensor_value_info("iou", T.FLOAT, [1]),
           h.make_tensor_value_info("score_th", T.FLOAT, [1])],
    [h.make_tensor_value_info("sel", T.INT64, ["k", 3])])
feeds = []
for max_out, iou, th in ((3, 0.5, 0.0), (10, 0.3, 0.4), (0, 0.5, 0.0), (10, 1.0, -1.0), (2, 0.0, 0.9)):
    corner = rng.random((2, 10, 2)).astype(np.float32) * 4
    size = rng.random((2, 10, 2)).astype(np.float32) * 2 + 0.1
    boxes = np.concatenate([corner, corner + size], axis=2)
    boxes[:, 3] = boxes[:, 2]  # an identical pair: one suppresses the other
    boxes[:, 5, :] = boxes[:, 5, [2, 3, 0, 1]]  # flipped corners
    feeds.append({"boxes": boxes.astype(np.float32), "scores": rng.random((2, 2, 10)).astype(np.float32),
                  "max_out": np.array([max_out], dtype=np.int64), "iou": np.array([iou], dtype=np.float32),
                  "score_th": np.array([th], dtype=np.float32)})
save("nms", g, feeds)

# TopK with k given at run time over rows of 10, then the kept values summed per row; node "top".
g = h.make_graph([
    h.make_node("TopK", ["x", "k"], ["values", "indices"], name="top", axis=1),
    h.make_node("ReduceSum", ["values", "axis1"], ["sums"], keepdims=0),
], "topk_k", [h.make_tensor_value_info("x", T.FLOAT, [2, 10]), h.make_tensor_value_info("k", T.INT64, [1])],
    [h.make_tensor_value_info("values", T.FLOAT, [2, "k"]), h.make_tensor_value_info("indices", T.INT64, [2, "k"]),
     h.make_tensor_value_info("sums", T.FLOAT, [2])],
    [h.make_tensor("axis1", T.INT64, [1], [1])])
x = rng.standard_normal((2, 10)).astype(np.float32)
save("topk_k", g, [{"x": x, "k": np.array([k], dtype=np.int64)} for k in (1, 3, 10, 0)])
