#!/usr/bin/env python3
"""Writes a model with MatMul -> BatchNormalization and Gemm -> BatchNormalization on 2-D
values (seeded random parameters, statistics far from 0/1), for the fuse-dense-bn test.
Usage: make_dense_bn.py OUT.onnx"""
import sys
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

rng = np.random.default_rng(11)
f = lambda *s: rng.standard_normal(s).astype(np.float32)
inits = [numpy_helper.from_array(f(6, 5), "w1"), numpy_helper.from_array(f(5, 4), "w2"), numpy_helper.from_array(f(4), "b2")]
for k, c in (("bn1", 5), ("bn2", 4)):
    inits += [numpy_helper.from_array(rng.uniform(0.5, 1.5, c).astype(np.float32), k + "_g"),
              numpy_helper.from_array(f(c), k + "_b"), numpy_helper.from_array(f(c) + 0.7, k + "_m"),
              numpy_helper.from_array(rng.uniform(0.5, 2.5, c).astype(np.float32), k + "_v")]
nodes = [helper.make_node("MatMul", ["x", "w1"], ["h1"]),
         helper.make_node("BatchNormalization", ["h1", "bn1_g", "bn1_b", "bn1_m", "bn1_v"], ["n1"], epsilon=1e-3),
         helper.make_node("Relu", ["n1"], ["r1"]),
         helper.make_node("Gemm", ["r1", "w2", "b2"], ["h2"]),
         helper.make_node("BatchNormalization", ["h2", "bn2_g", "bn2_b", "bn2_m", "bn2_v"], ["y"])]
g = helper.make_graph(nodes, "dense_bn", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [3, 6])],
                      [helper.make_tensor_value_info("y", TensorProto.FLOAT, [3, 4])], inits)
m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
m.ir_version = 8
onnx.save(m, sys.argv[1])
