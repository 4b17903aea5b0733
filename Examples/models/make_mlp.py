#!/usr/bin/env python3
"""Makes the bundled example model mlp.onnx: an MLP 784 -> 256 -> 128 -> 10 (ReLU, softmax),
the shape of a typical trigger/tagging network, with a symbolic batch dimension and
seeded random weights.  Usage: make_mlp.py OUT.onnx"""
import sys
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

rng = np.random.default_rng(2026)
sizes = [784, 256, 128, 10]
inits, nodes = [], []
x = "input"
for i, (a, b) in enumerate(zip(sizes, sizes[1:])):
    w = (rng.standard_normal((a, b)) * np.sqrt(2.0 / a)).astype(np.float32)
    bias = (rng.standard_normal(b) * 0.1).astype(np.float32)
    inits += [numpy_helper.from_array(w, f"dense{i}.weight"), numpy_helper.from_array(bias, f"dense{i}.bias")]
    y = f"dense{i}"
    nodes.append(helper.make_node("Gemm", [x, f"dense{i}.weight", f"dense{i}.bias"], [y], name=f"dense{i}"))
    x = y
    if i < len(sizes) - 2:
        nodes.append(helper.make_node("Relu", [x], [f"relu{i}"], name=f"relu{i}"))
        x = f"relu{i}"
nodes.append(helper.make_node("Softmax", [x], ["probabilities"], name="softmax", axis=1))
g = helper.make_graph(nodes, "mlp", [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 784])],
                      [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", 10])], inits)
m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], producer_name="swift-sofie example")
m.ir_version = 8
onnx.checker.check_model(m, full_check=True)
onnx.save(m, sys.argv[1])
