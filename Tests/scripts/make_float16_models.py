#!/usr/bin/env python3
"""float16 models (weights, inputs and outputs in float16) with ONNX Runtime's outputs as
references: a small CNN (Conv, Relu, MaxPool, Sigmoid*x, GlobalAveragePool, Flatten, Gemm,
Softmax) and a transformer block (LayerNormalization, MatMul, Transpose, Reshape, Div, Softmax,
Erf-GELU, residual Add). sofie computes each op in float32 and rounds its result to float16;
ONNX Runtime (CPU) does the same for the ops it has float16 kernels for and computes runs of
the others in float32 without rounding between them, so the outputs agree to a few float16
units in the last place, not bit for bit. Each model also gets out0.f32ref: the same model with
float32 weights (the float16 values, widened) run by ONNX Runtime, to bound the float16 error
against the scale of the output.

For each model NAME writes OUTDIR/NAME/{model.onnx, in0.bin, out0.ref, out0.f32ref, meta.json}.
Usage: make_float16_models.py OUTDIR"""
import json
import os
import sys

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto as T, helper as h, numpy_helper as nh

out_dir = sys.argv[1]
rng = np.random.default_rng(20261202)


def w(name, shape, scale):
    return nh.from_array((rng.standard_normal(shape) * scale).astype(np.float16), name)


def run(model, x):
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    s = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    return s.run(None, {s.get_inputs()[0].name: x})[0]


def widened(model):
    m = onnx.ModelProto()
    m.CopyFrom(model)
    for t in m.graph.initializer:
        if t.data_type == T.FLOAT16:
            t.CopyFrom(nh.from_array(nh.to_array(t).astype(np.float32), t.name))
    for v in list(m.graph.input) + list(m.graph.output):
        if v.type.tensor_type.elem_type == T.FLOAT16:
            v.type.tensor_type.elem_type = T.FLOAT
    return m


def save(name, nodes, inits, x_shape, y_shape):
    g = h.make_graph(nodes, name, [h.make_tensor_value_info("x", T.FLOAT16, x_shape)],
                     [h.make_tensor_value_info("y", T.FLOAT16, y_shape)], inits)
    model = h.make_model(g, opset_imports=[h.make_opsetid("", 17)], ir_version=8)
    onnx.checker.check_model(model, full_check=True)
    x = rng.standard_normal(x_shape).astype(np.float16)
    y = run(model, x)
    y32 = run(widened(model), x.astype(np.float32))
    assert y.dtype == np.float16 and list(y.shape) == y_shape
    d = os.path.join(out_dir, name)
    os.makedirs(d, exist_ok=True)
    onnx.save(model, os.path.join(d, "model.onnx"))
    x.tofile(os.path.join(d, "in0.bin"))
    y.tofile(os.path.join(d, "out0.ref"))
    y32.astype(np.float32).tofile(os.path.join(d, "out0.f32ref"))
    with open(os.path.join(d, "meta.json"), "w") as f:
        json.dump({"inputs": ["x"], "outputs": [{"dtype": "float16", "shape": y_shape}]}, f)


# A small CNN.
save("cnn_fp16", [
    h.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1]),
    h.make_node("Relu", ["c1"], ["r1"]),
    h.make_node("MaxPool", ["r1"], ["p1"], kernel_shape=[2, 2], strides=[2, 2]),
    h.make_node("Conv", ["p1", "w2", "b2"], ["c2"], pads=[1, 1, 1, 1]),
    h.make_node("Sigmoid", ["c2"], ["s2"]),
    h.make_node("Mul", ["c2", "s2"], ["m2"]),
    h.make_node("GlobalAveragePool", ["m2"], ["g"]),
    h.make_node("Flatten", ["g"], ["f"]),
    h.make_node("Gemm", ["f", "wd", "bd"], ["logits"], transB=1),
    h.make_node("Softmax", ["logits"], ["y"], axis=-1),
], [w("w1", (8, 3, 3, 3), 0.3), w("b1", (8,), 0.1), w("w2", (16, 8, 3, 3), 0.15), w("b2", (16,), 0.1),
    w("wd", (10, 16), 0.4), w("bd", (10,), 0.1)], [1, 3, 16, 16], [1, 10])

# A transformer block (one head, 8 tokens of 16).
S, D = 8, 16
save("attention_fp16", [
    h.make_node("LayerNormalization", ["x", "ln_g", "ln_b"], ["n"], axis=-1),
    h.make_node("MatMul", ["n", "wq"], ["q"]),
    h.make_node("MatMul", ["n", "wk"], ["k"]),
    h.make_node("MatMul", ["n", "wv"], ["v"]),
    h.make_node("Transpose", ["k"], ["kt"], perm=[0, 2, 1]),
    h.make_node("MatMul", ["q", "kt"], ["qk"]),
    h.make_node("Div", ["qk", "sqrt_d"], ["scores"]),
    h.make_node("Softmax", ["scores"], ["attn"], axis=-1),
    h.make_node("MatMul", ["attn", "v"], ["ctx"]),
    h.make_node("Add", ["x", "ctx"], ["res"]),
    h.make_node("MatMul", ["res", "w_ff"], ["ff"]),
    h.make_node("Div", ["ff", "sqrt2"], ["ff_s"]),
    h.make_node("Erf", ["ff_s"], ["erf"]),
    h.make_node("Add", ["erf", "one"], ["erf1"]),
    h.make_node("Mul", ["ff", "erf1"], ["g1"]),
    h.make_node("Mul", ["g1", "half"], ["gelu"]),
    h.make_node("Reshape", ["gelu", "shape"], ["y"]),
], [nh.from_array(np.ones(D, np.float16), "ln_g"), nh.from_array(np.zeros(D, np.float16), "ln_b"),
    w("wq", (D, D), 0.25), w("wk", (D, D), 0.25), w("wv", (D, D), 0.25), w("w_ff", (D, D), 0.25),
    nh.from_array(np.array(np.sqrt(D), np.float16), "sqrt_d"), nh.from_array(np.array(np.sqrt(2), np.float16), "sqrt2"),
    nh.from_array(np.array(1, np.float16), "one"), nh.from_array(np.array(0.5, np.float16), "half"),
    nh.from_array(np.array([1, S * D], np.int64), "shape")], [1, S, D], [1, S * D])
