#!/usr/bin/env python3
"""Writes decomposed.onnx (opset 17): a small transformer-style block the way exporters write
it out op by op — LayerNormalization as ReduceMean/Sub/Pow/ReduceMean/Add/Sqrt/Div/Mul/Add,
Gelu as x * 0.5 * (1 + erf(x / sqrt 2)), Transposes feeding MatMuls, a residual Add —
with seeded random weights. The reference outputs are ONNX Runtime's on this file (the tests
run it). Usage: make_decomposed.py OUT.onnx"""
import sys
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

rng = np.random.default_rng(7)
D, H = 16, 32


def const(name, a):
    return numpy_helper.from_array(np.asarray(a, dtype=np.float32), name)


inits = [
    const("ln_gamma", rng.uniform(0.5, 1.5, D)), const("ln_beta", rng.normal(0, 0.1, D)),
    const("two", 2.0), const("eps", 1e-5), const("sqrt2", np.sqrt(2.0)), const("one", 1.0), const("half", 0.5),
    const("w1", rng.normal(0, 0.3, (D, H))), const("b1", rng.normal(0, 0.1, H)),
    const("w2t", rng.normal(0, 0.3, (D, H))), const("b2", rng.normal(0, 0.1, D)),
    numpy_helper.from_array(np.array([-1], dtype=np.int64), "axes"),
]
n = helper.make_node
nodes = [
    # LayerNormalization over the last axis, written out (opset 17: ReduceMean takes axes as an attribute).
    n("ReduceMean", ["x"], ["mean"], axes=[-1], keepdims=1),
    n("Sub", ["x", "mean"], ["d"]),
    n("Pow", ["d", "two"], ["d2"]),
    n("ReduceMean", ["d2"], ["var"], axes=[-1], keepdims=1),
    n("Add", ["var", "eps"], ["var_eps"]),
    n("Sqrt", ["var_eps"], ["std"]),
    n("Div", ["d", "std"], ["normed"]),
    n("Mul", ["normed", "ln_gamma"], ["scaled"]),
    n("Add", ["scaled", "ln_beta"], ["ln"]),
    # Dense + Gelu (PyTorch's order of products).
    n("MatMul", ["ln", "w1"], ["h0"]),
    n("Add", ["h0", "b1"], ["h"]),
    n("Mul", ["h", "half"], ["h_half"]),
    n("Div", ["h", "sqrt2"], ["h_scaled"]),
    n("Erf", ["h_scaled"], ["h_erf"]),
    n("Add", ["one", "h_erf"], ["h_erf1"]),
    n("Mul", ["h_half", "h_erf1"], ["gelu"]),
    # Second dense with a transposed weight read through a Transpose, and a residual.
    n("Transpose", ["w2t"], ["w2"], perm=[1, 0]),
    n("Transpose", ["gelu"], ["gelu_t"], perm=[1, 0]),
    n("Transpose", ["gelu_t"], ["gelu_back"], perm=[1, 0]),
    n("MatMul", ["gelu_back", "w2"], ["o0"]),
    n("Add", ["o0", "b2"], ["o1"]),
    n("Add", ["o1", "x"], ["y"]),
    # Attention-style scores: the product with a transposed computed operand.
    n("Transpose", ["ln"], ["ln_t"], perm=[1, 0]),
    n("MatMul", ["y", "ln_t"], ["scores0"]),
    n("Relu", ["scores0"], ["scores"]),
]
graph = helper.make_graph(nodes, "decomposed", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", D])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", D]),
                           helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["batch", "batch"])], inits)
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="make_decomposed.py")
model.ir_version = 8
onnx.checker.check_model(model, full_check=True)
onnx.save(model, sys.argv[1])
