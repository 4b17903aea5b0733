#!/usr/bin/env python3
"""Writes a model that calls ONNX local functions (one nested in another, with an attribute
reference and a default), for the function-inlining test.  Usage: make_function_model.py OUT.onnx"""
import sys
import onnx
from onnx import TensorProto, helper

# custom.ScaledLeaky(x) = LeakyRelu(x * 2, alpha=<caller's alpha, default 0.1>)
two = helper.make_node("Constant", [], ["two"], value=helper.make_tensor("two", TensorProto.FLOAT, [], [2.0]))
mul = helper.make_node("Mul", ["X", "two"], ["t"])
leaky = helper.make_node("LeakyRelu", ["t"], ["Y"])
attr = onnx.AttributeProto()
attr.name, attr.ref_attr_name, attr.type = "alpha", "alpha", onnx.AttributeProto.FLOAT
leaky.attribute.append(attr)
scaled = helper.make_function("custom", "ScaledLeaky", ["X"], ["Y"], [two, mul, leaky],
                              [helper.make_opsetid("", 17)], attributes=[])
scaled.attribute_proto.append(helper.make_attribute("alpha", 0.1))

# custom.Block(x) = ScaledLeaky(x) + x  (calls another local function)
inner = helper.make_node("ScaledLeaky", ["X"], ["t"], domain="custom", alpha=0.3)
add = helper.make_node("Add", ["t", "X"], ["Y"])
block = helper.make_function("custom", "Block", ["X"], ["Y"], [inner, add],
                             [helper.make_opsetid("", 17), helper.make_opsetid("custom", 1)])

x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [3, 4])
y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [3, 4])
nodes = [helper.make_node("Block", ["x"], ["h"], domain="custom", name="block1"),
         helper.make_node("ScaledLeaky", ["h"], ["y"], domain="custom", name="leaky2")]
g = helper.make_graph(nodes, "functions", [x], [y])
m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("custom", 1)],
                      functions=[scaled, block])
m.ir_version = 10
onnx.checker.check_model(m, full_check=True)
onnx.save(m, sys.argv[1])
