#!/usr/bin/env python3
"""Models with the sub-byte and microscaling element types (int4, uint4, int2, uint2,
float4e2m1, float8e8m0) beyond what ONNX's node tests cover: packed sub-byte initializers with
an odd element count, 4-bit weight-only quantization (DequantizeLinear of int4 weights with
per-axis and blocked scales feeding a MatMul), sub-byte tensors moved by Transpose, Reshape,
Concat and Gather, integer narrowing that wraps, float-to-int4 truncation and out-of-range
values, float4e2m1 ties and specials, and every float8e8m0 rounding mode with and without
saturation.

References come from ONNX's reference evaluator (onnx.reference, ml_dtypes underneath: the
implementation ONNX's own node tests were made with). Writes each model in the layout of
ONNX's node tests: OUTDIR/NAME/{model.onnx, test_data_set_0/{input_K.pb, output_K.pb}}.
Usage: make_subbyte_models.py OUTDIR"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import ml_dtypes
import numpy as np
import onnx
from onnx import TensorProto as T, helper as h, numpy_helper as nh

import node_test_layout as layout
from node_test_layout import vi

out_dir = sys.argv[1]
rng = np.random.default_rng(20261203)


def save(name, nodes, inputs, outputs, feeds, initializers=(), opset=25):
    layout.save(out_dir, name, nodes, inputs, outputs, feeds, initializers, opset, ir_version=11, reference="onnx")


# 4-bit weight-only quantization: int4 weights (8x5 = 40 values) with per-column scales and
# zero points, and uint4 weights (3x5 = 15, an odd count: the last byte half used) with
# blocked scales (blocks of 2 rows), both dequantized at run time into MatMuls.
w4 = rng.integers(-8, 8, size=(8, 5)).astype(ml_dtypes.int4)
z4 = rng.integers(-2, 3, size=(5,)).astype(ml_dtypes.int4)
s4 = (rng.random(5) * 0.1 + 0.01).astype(np.float32)
u4 = rng.integers(0, 16, size=(3, 5)).astype(ml_dtypes.uint4)
su = (rng.random((2, 5)) * 0.1 + 0.01).astype(np.float32)
zu = rng.integers(0, 16, size=(2, 5)).astype(ml_dtypes.uint4)
save("int4_weight_only_matmul", [
    h.make_node("DequantizeLinear", ["w4", "s4", "z4"], ["w"], axis=1),
    h.make_node("MatMul", ["x", "w"], ["y"]),
    h.make_node("DequantizeLinear", ["u4", "su", "zu"], ["u"], axis=0, block_size=2),
    h.make_node("MatMul", ["x3", "u"], ["y3"]),
], [vi("x", T.FLOAT, [2, 8]), vi("x3", T.FLOAT, [4, 3])], [vi("y", T.FLOAT, [2, 5]), vi("y3", T.FLOAT, [4, 5])],
    {"x": rng.standard_normal((2, 8)).astype(np.float32), "x3": rng.standard_normal((4, 3)).astype(np.float32)},
    [nh.from_array(w4, "w4"), nh.from_array(z4, "z4"), nh.from_array(s4, "s4"),
     nh.from_array(u4, "u4"), nh.from_array(su, "su"), nh.from_array(zu, "zu")], opset=21)

# Sub-byte tensors moved, not computed on (ONNX allows them in Reshape, Transpose, Flatten,
# Squeeze, Unsqueeze, Identity): an int4 input transposed, reshaped, flattened and unsqueezed,
# returned in its type and cast to float; a uint2 input reshaped.
save("subbyte_data_movement", [
    h.make_node("Transpose", ["a"], ["at"], perm=[2, 0, 1]),
    h.make_node("Reshape", ["at", "shape"], ["ar"]),
    h.make_node("Flatten", ["ar"], ["af"], axis=1),
    h.make_node("Unsqueeze", ["af", "axes"], ["au"]),
    h.make_node("Cast", ["au"], ["gf"], to=T.FLOAT),
    h.make_node("Reshape", ["b", "shape2"], ["br"]),
], [vi("a", T.INT4, [2, 3, 5]), vi("b", T.UINT2, [3, 3])],
    [vi("au", T.INT4, [5, 1, 6]), vi("gf", T.FLOAT, [5, 1, 6]), vi("br", T.UINT2, [9])],
    {"a": rng.integers(-8, 8, size=(2, 3, 5)).astype(ml_dtypes.int4), "b": rng.integers(0, 4, size=(3, 3)).astype(ml_dtypes.uint2)},
    [nh.from_array(np.array([5, 3, 2], np.int64), "shape"), nh.from_array(np.array([9], np.int64), "shape2"),
     nh.from_array(np.array([1], np.int64), "axes")])

# Integer narrowing wraps (the low bits, two's complement); float to int4/uint4 truncates, and
# gives 0 out of range or for NaN (the reference's choice; ONNX leaves it undefined).
ints = np.array([-129, -128, -9, -8, -3, -2, -1, 0, 1, 2, 3, 7, 8, 15, 16, 17, 127, 300], np.int32)
floats = np.array([-8.9, -8.0, -7.5, -2.7, -0.5, 0.0, 0.9, 2.5, 3.99, 7.9, 8.0, 15.5, 16.0, np.nan, np.inf, -np.inf], np.float32)
save("subbyte_integer_casts",
     [h.make_node("Cast", ["i"], [f"i_{t}"], to=code) for t, code in [("int4", T.INT4), ("uint4", T.UINT4), ("int2", T.INT2), ("uint2", T.UINT2)]]
     + [h.make_node("Cast", ["f"], [f"f_{t}"], to=code) for t, code in [("int4", T.INT4), ("uint4", T.UINT4), ("int2", T.INT2), ("uint2", T.UINT2)]],
     [vi("i", T.INT32, [18]), vi("f", T.FLOAT, [16])],
     [vi(f"i_{t}", code, [18]) for t, code in [("int4", T.INT4), ("uint4", T.UINT4), ("int2", T.INT2), ("uint2", T.UINT2)]]
     + [vi(f"f_{t}", code, [16]) for t, code in [("int4", T.INT4), ("uint4", T.UINT4), ("int2", T.INT2), ("uint2", T.UINT2)]],
     {"i": ints, "f": floats})

# float4e2m1: every tie between neighbouring values (to the even code), values past 6,
# infinities, zeros of both signs, and back to float16 and double.
ties = [0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5.0]
f4in = np.array(ties + [-t for t in ties] + [0.1, -0.1, 0.0, -0.0, 5.5, 6.0, 6.5, 100.0, -100.0, np.inf, -np.inf, 1e-30], np.float32)
save("float4e2m1_casts", [
    h.make_node("Cast", ["x"], ["q"], to=T.FLOAT4E2M1),
    h.make_node("Cast", ["q"], ["h"], to=T.FLOAT16),
    h.make_node("Cast", ["q"], ["d"], to=T.DOUBLE),
    h.make_node("QuantizeLinear", ["x", "s", "z"], ["qs"], axis=0),
], [vi("x", T.FLOAT, [len(f4in)])], [vi("q", T.FLOAT4E2M1, [len(f4in)]), vi("h", T.FLOAT16, [len(f4in)]), vi("d", T.DOUBLE, [len(f4in)]),
                                    vi("qs", T.FLOAT4E2M1, [len(f4in)])],
    {"x": f4in}, [nh.from_array(np.array(0.5, np.float32), "s"), nh.from_array(np.array(0, ml_dtypes.float4_e2m1fn), "z")])

# float8e8m0: each rounding mode, with and without saturation, over powers of two, values just
# above and below them, the guard-bit ties of "nearest", subnormals, the top of the range, zero,
# inf and NaN; and back to float.
e8in = np.array([1.0, 1.5, 1.25, 1.75, 0.75, 3.0, 2.0 ** -126, 2.0 ** -127, 2.0 ** -130, 0.0, 2.0 ** 127, 1.5 * 2.0 ** 127,
                 3.0e38, 100.0, 0.124, np.inf, np.nan], np.float32)
nodes, outs = [], []
for mode in ["up", "down", "nearest"]:
    for sat in [1, 0]:
        nodes.append(h.make_node("Cast", ["x"], [f"{mode}_{sat}"], to=T.FLOAT8E8M0, round_mode=mode, saturate=sat))
        outs.append(vi(f"{mode}_{sat}", T.FLOAT8E8M0, [len(e8in)]))
nodes.append(h.make_node("Cast", ["up_1"], ["back"], to=T.FLOAT))
outs.append(vi("back", T.FLOAT, [len(e8in)]))
save("float8e8m0_casts", nodes, [vi("x", T.FLOAT, [len(e8in)])], outs, {"x": e8in})
