#!/usr/bin/env python3
"""A small model whose names try to break generated code: quotes, comment terminators,
newlines, backslashes, non-ASCII, C++ keywords, names equal after sanitizing, a very long
name, and a name that is a preprocessor directive. Numerics are ordinary (Gemm + Relu +
Add), so the emitted code's outputs can be checked against ONNX Runtime.
Usage: make_hostile_model.py OUT.onnx"""
import sys
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

rng = np.random.default_rng(3)
names = {
    "x": 'in"put*/\n#include <evil>\\',
    "x2": "int",
    "w": "*/ } system(\"rm -rf /\"); /*",
    "b": "bias\r\n#define float double",
    "h": "naïve–名前",
    "r": "h",  # differs from the previous only after sanitizing? (see h2)
    "h2": "na?ve??/",
    "y": "class",
    "y2": "out put",
    "long": "L" * 500,
}
w = numpy_helper.from_array(rng.standard_normal((4, 3)).astype(np.float32), names["w"])
b = numpy_helper.from_array(rng.standard_normal(3).astype(np.float32), names["b"])
nodes = [
    helper.make_node("Gemm", [names["x"], names["w"], names["b"]], [names["h"]], name="*/ namespace {"),
    helper.make_node("Relu", [names["h"]], [names["h2"]], name="\\\nreturn 0;"),
    helper.make_node("Add", [names["h2"], names["x2"]], [names["long"]], name="??=define"),
    helper.make_node("Identity", [names["long"]], [names["y"]], name="new"),
    helper.make_node("Neg", [names["long"]], [names["y2"]], name="delete"),
]
g = helper.make_graph(nodes, 'graph "name" */',
                      [helper.make_tensor_value_info(names["x"], TensorProto.FLOAT, [2, 4]),
                       helper.make_tensor_value_info(names["x2"], TensorProto.FLOAT, [2, 3])],
                      [helper.make_tensor_value_info(names["y"], TensorProto.FLOAT, [2, 3]),
                       helper.make_tensor_value_info(names["y2"], TensorProto.FLOAT, [2, 3])], [w, b])
m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
m.ir_version = 8
onnx.checker.check_model(m, full_check=True)
onnx.save(m, sys.argv[1])
