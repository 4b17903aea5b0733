#!/usr/bin/env python3
"""Small models for bugs fixed in the emitted C++, each with ONNX Runtime's outputs (one
thread) on seeded inputs as the reference:
  reduce_logsumexp_*  ReduceLogSumExp with constant axes (the loop once never advanced its input)
  variadic_*          Sum/Max/Min/Mean of 12 inputs, some broadcast (emitted as one pass per input
                      above 8 inputs; one nested expression had quadratic size)
  name_clash          inputs and outputs whose names are equal after sanitizing ('x_2', 'x', 'x.')
                      (the third C++ argument was once named x_2 as well)
For each model NAME writes OUTDIR/NAME/{model.onnx, in0.bin..., out0.ref..., meta.json}.
Usage: make_regression_models.py OUTDIR"""
import json
import os
import sys

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

out_dir = sys.argv[1]
rng = np.random.default_rng(7)


def save(name, graph, opset):
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    onnx.checker.check_model(m, full_check=True)
    d = os.path.join(out_dir, name)
    os.makedirs(d, exist_ok=True)
    onnx.save(m, os.path.join(d, "model.onnx"))
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(m.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    feeds = {}
    for k, i in enumerate(sess.get_inputs()):
        x = (rng.standard_normal(i.shape) * 3).astype(np.float32)
        x.tofile(os.path.join(d, f"in{k}.bin"))
        feeds[i.name] = x
    results = sess.run(None, feeds)
    for k, y in enumerate(results):
        np.ascontiguousarray(y).tofile(os.path.join(d, f"out{k}.ref"))
    meta = {"inputs": [i.name for i in sess.get_inputs()],
            "outputs": [{"name": o.name, "dtype": "float32", "shape": list(y.shape)}
                        for o, y in zip(sess.get_outputs(), results)]}
    with open(os.path.join(d, "meta.json"), "w") as f:
        json.dump(meta, f)


def logsumexp(name, shape, axes, keepdims, opset):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)
    ax = [a % len(shape) for a in axes]
    out_shape = [1 if i in ax else d for i, d in enumerate(shape) if keepdims or i not in ax]
    inits = []
    if opset >= 18:
        inits.append(numpy_helper.from_array(np.array(axes, dtype=np.int64), "axes"))
        node = helper.make_node("ReduceLogSumExp", ["x", "axes"], ["y"], keepdims=keepdims)
    else:
        node = helper.make_node("ReduceLogSumExp", ["x"], ["y"], axes=axes, keepdims=keepdims)
    # A Relu after it keeps the reduction from being the graph's last op (as in real models).
    graph = helper.make_graph([node, helper.make_node("Relu", ["y"], ["z"])], name, [x],
                              [helper.make_tensor_value_info("z", TensorProto.FLOAT, out_shape)], initializer=inits)
    save(name, graph, opset)


logsumexp("reduce_logsumexp_last_axis", [2, 3, 5], [-1], 1, 18)
logsumexp("reduce_logsumexp_middle_axis", [2, 4, 3], [1], 0, 18)
logsumexp("reduce_logsumexp_two_axes", [3, 2, 4], [0, 2], 1, 13)

# Names that differ only in characters C++ identifiers cannot hold.
names_in = ["x_2", "x", "x."]
inputs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [2, 3]) for n in names_in]
nodes = [helper.make_node("Sub", ["x.", "x"], ["y."]), helper.make_node("Mul", ["x_2", "x."], ["y-"])]
outputs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [2, 3]) for n in ["y.", "y-"]]
save("name_clash", helper.make_graph(nodes, "name_clash", inputs, outputs), 17)

# Variadic ops with many inputs, some broadcast against the [3, 4] output.
for op in ["Sum", "Max", "Min", "Mean"]:
    shapes = [[3, 4], [4], [3, 1], [1]] * 3
    ins = [helper.make_tensor_value_info(f"v{k}", TensorProto.FLOAT, sh) for k, sh in enumerate(shapes)]
    node = helper.make_node(op, [f"v{k}" for k in range(len(shapes))], ["y"])
    save(f"variadic_{op.lower()}", helper.make_graph([node], op, ins, [helper.make_tensor_value_info("y", TensorProto.FLOAT, [3, 4])]), 13)
