#!/usr/bin/env python3
"""A PyTorch-style MLP (nn.Linear exports Gemm with transB=1) with a symbolic batch:
64 -> 128 -> 128 -> 3, ReLU, ReLU, sigmoid; seeded random weights.
Usage: make_linear_mlp.py OUT.onnx"""
import sys
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

rng = np.random.default_rng(5)
sizes = [64, 128, 128, 3]
inits, nodes, x = [], [], "x"
for i, (a, b) in enumerate(zip(sizes, sizes[1:])):
    inits += [numpy_helper.from_array((rng.standard_normal((b, a)) * np.sqrt(2 / a)).astype(np.float32), f"w{i}"),
              numpy_helper.from_array((rng.standard_normal(b) * 0.1).astype(np.float32), f"b{i}")]
    nodes.append(helper.make_node("Gemm", [x, f"w{i}", f"b{i}"], [f"g{i}"], transB=1))
    x = f"g{i}"
    nodes.append(helper.make_node("Relu" if i < 2 else "Sigmoid", [x], [f"r{i}"]))
    x = f"r{i}"
graph = helper.make_graph(nodes, "linear_mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 64])],
                          [helper.make_tensor_value_info(x, TensorProto.FLOAT, ["N", 3])], inits)
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="make_linear_mlp.py")
model.ir_version = 8
onnx.checker.check_model(model, full_check=True)
onnx.save(model, sys.argv[1])
