#!/usr/bin/env python3
"""Single Conv + activation models for the activation-store lines of BENCHMARKS.md (change 7):
pointwise and depthwise convolutions at MobileNetV2 sizes followed by Relu6 (Clip), Relu, HardSwish or Swish (Sigmoid, Mul),
seeded random weights. Usage: make_conv_act_models.py OUT_DIR (then ab_sofie.py on them)."""
import sys
import numpy as np, onnx
from onnx import helper as h, numpy_helper as nh, TensorProto as T
out = sys.argv[1] if len(sys.argv) > 1 else "."
rng = np.random.default_rng(0)
def model(name, c, m, hw, k, group, act):
    w = rng.standard_normal((m, c // group, k, k)).astype(np.float32) * 0.3
    b = rng.standard_normal(m).astype(np.float32) * 0.1
    nodes = [h.make_node("Conv", ["x", "w", "b"], ["c"], kernel_shape=[k, k], pads=[k // 2] * 4, group=group)]
    inits = [nh.from_array(w, "w"), nh.from_array(b, "b")]
    if act == "relu6":
        inits += [nh.from_array(np.array(0, np.float32), "lo"), nh.from_array(np.array(6, np.float32), "hi")]
        nodes.append(h.make_node("Clip", ["c", "lo", "hi"], ["y"]))
    elif act == "hardswish":
        nodes.append(h.make_node("HardSwish", ["c"], ["y"]))
    elif act == "swish":
        nodes += [h.make_node("Sigmoid", ["c"], ["s"]), h.make_node("Mul", ["c", "s"], ["y"])]
    else:
        nodes.append(h.make_node("Relu", ["c"], ["y"]))
    g = h.make_graph(nodes, name, [h.make_tensor_value_info("x", T.FLOAT, [1, c, hw, hw])], [h.make_tensor_value_info("y", T.FLOAT, [1, m, hw, hw])], inits)
    mo = h.make_model(g, opset_imports=[h.make_opsetid("", 17)]); mo.ir_version = 8
    onnx.save(mo, f"{out}/{name}.onnx")
model("pw16to96_112_relu6", 16, 96, 112, 1, 1, "relu6")
model("pw96to144_56_relu6", 96, 144, 56, 1, 1, "relu6")
model("dw96_112_relu6", 96, 96, 112, 3, 96, "relu6")
model("dw144_56_relu", 144, 144, 56, 3, 144, "relu")
model("pw16to96_112_hardswish", 16, 96, 112, 1, 1, "hardswish")
model("dw96_112_hardswish", 96, 96, 112, 3, 96, "hardswish")
model("pw16to96_112_swish", 16, 96, 112, 1, 1, "swish")
model("dw96_112_swish", 96, 96, 112, 3, 96, "swish")
