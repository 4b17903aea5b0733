#!/usr/bin/env python3
"""A model whose initializers of every small integer and 16-bit float type are stored in the
typed int32_data field (not raw_data), as some exporters write them: int8, uint8, bool, int16,
uint16, float16, bfloat16. Reading them once went through a pointer to freed memory. The graph
just concatenates their casts to float, so the values are visible in the output too.
Usage: make_typed_data_model.py OUT.onnx"""
import sys
import numpy as np
import onnx
from onnx import TensorProto, helper

rng = np.random.default_rng(7)
inits, nodes, casts = [], [], []
for k, (t, values) in enumerate([
        (TensorProto.INT8, rng.integers(-128, 128, 37)), (TensorProto.UINT8, rng.integers(0, 256, 41)),
        (TensorProto.BOOL, rng.integers(0, 2, 29)), (TensorProto.INT16, rng.integers(-30000, 30000, 33)),
        (TensorProto.UINT16, rng.integers(0, 65000, 31)),
        (TensorProto.FLOAT16, np.float16(rng.standard_normal(35)).view(np.uint16)),
        (TensorProto.BFLOAT16, rng.integers(0x3f00, 0x4100, 27))]):
    name = f"w{k}"
    tp = TensorProto(name=name, data_type=t, dims=[len(values)])
    tp.int32_data.extend(int(v) for v in values)
    inits.append(tp)
    nodes.append(helper.make_node("Cast", [name], [f"c{k}"], to=TensorProto.FLOAT, name=f"cast{k}"))
    casts.append(f"c{k}")
nodes.append(helper.make_node("Concat", casts, ["y"], axis=0, name="concat"))
g = helper.make_graph(nodes, "typed_data", [], [helper.make_tensor_value_info("y", TensorProto.FLOAT, [233])], inits)
m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
m.ir_version = 8
onnx.checker.check_model(m)
onnx.save(m, sys.argv[1])
