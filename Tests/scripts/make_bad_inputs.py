#!/usr/bin/env python3
"""Writes malformed and hostile ONNX files for the bad-input tests, built with the onnx
package itself so that only the defect under test is wrong.
Usage: make_bad_inputs.py OUTDIR"""
import os
import sys
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

out = sys.argv[1]
os.makedirs(out, exist_ok=True)


def model_with(init, name):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 2])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 2])
    node = helper.make_node("Add", ["x", init.name], ["y"], name="add0")
    g = helper.make_graph([node], "g", [x], [y], [init])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    path = os.path.join(out, name)
    with open(path, "wb") as f:
        f.write(m.SerializeToString())
    return m


good = numpy_helper.from_array(np.arange(4, dtype=np.float32).reshape(2, 2), "w")
m = model_with(good, "good.onnx")
data = m.SerializeToString()
with open(os.path.join(out, "truncated.onnx"), "wb") as f:
    f.write(data[: len(data) * 2 // 3])
with open(os.path.join(out, "corrupt.onnx"), "wb") as f:
    f.write(b"\x0a\xff\xff\xff\xff\x0f" + data[6:])
with open(os.path.join(out, "not_onnx.onnx"), "wb") as f:
    f.write(b"This is a text file that someone renamed to .onnx; it is not a model at all.\n")
with open(os.path.join(out, "empty.onnx"), "wb") as f:
    pass

short = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[2, 2], raw_data=np.zeros(3, np.float32).tobytes())
model_with(short, "raw_short.onnx")

huge = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[1 << 40, 1 << 40], raw_data=b"")
model_with(huge, "dims_overflow.onnx")

negative = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[-1, 4], raw_data=b"")
model_with(negative, "dims_negative.onnx")


def external(location, name, offset=0, length=16):
    t = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[2, 2])
    t.data_location = TensorProto.EXTERNAL
    for k, v in (("location", location), ("offset", str(offset)), ("length", str(length))):
        e = t.external_data.add()
        e.key, e.value = k, v
    model_with(t, name)


external("weights_missing.bin", "external_missing.onnx")
external("../../etc/passwd", "external_escape.onnx")
external("/etc/passwd", "external_absolute.onnx")
with open(os.path.join(out, "weights_small.bin"), "wb") as f:
    f.write(np.arange(2, dtype=np.float32).tobytes())
external("weights_small.bin", "external_short.onnx")
with open(os.path.join(out, "weights_ok.bin"), "wb") as f:
    f.write(b"\0" * 8 + np.arange(4, dtype=np.float32).tobytes())
external("weights_ok.bin", "external_ok.onnx", offset=8)
print("bad inputs written to", out)
