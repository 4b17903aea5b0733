#!/usr/bin/env python3
"""Writes hostile ONNX files, one per class of attack on the readers and the compile pipeline:
absurd sizes that overflow 64-bit arithmetic, attributes far out of range, protobuf messages
nested deep enough to overflow a recursive decoder's stack, local functions that explode when
inlined, huge fan-in, and files whose declared facts contradict each other. Each is valid enough
to get past the protobuf decoder, so it tests what comes after. The tests expect a clear error
naming the file and the node/tensor, quickly and in bounded memory, for inspect, convert and
compile (see HostileInputTests.swift, which lists the expected fragments).
Usage: make_hostile_inputs.py OUTDIR"""
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
F = TensorProto.FLOAT
I64 = TensorProto.INT64
BIG = 2**62


def save(name, nodes, inputs, outputs, inits=(), opset=17, functions=(), check=False, extra=()):
    g = helper.make_graph(nodes, name, inputs, outputs, list(inits))
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)] + list(extra) +
                          ([helper.make_opsetid("local", 1)] if functions else []), functions=list(functions))
    m.ir_version = 8
    if check:
        onnx.checker.check_model(m)
    with open(os.path.join(out, name + ".onnx"), "wb") as f:
        f.write(m.SerializeToString())


def vi(name, shape, t=F):
    return helper.make_tensor_value_info(name, t, shape)


def const(name, values, t=I64):
    return helper.make_tensor(name, t, [len(values)], values)


# --- products of dimensions that overflow, or tensors far beyond any memory -----------------
x4 = vi("x", [1, 1])
save("expand_huge", [helper.make_node("Expand", ["x", "s"], ["y"], name="expand")], [x4], [vi("y", None)],
     [const("s", [2**31, 2**31, 2**31])])
save("tile_huge", [helper.make_node("Tile", ["x", "r"], ["y"], name="tile")], [x4], [vi("y", None)], [const("r", [2**40, 2**40])])
save("constantofshape_overflow", [helper.make_node("ConstantOfShape", ["s"], ["y"], name="fill")], [], [vi("y", None)],
     [const("s", [BIG, 4])])
save("constantofshape_4tib", [helper.make_node("ConstantOfShape", ["s"], ["y"], name="fill")], [], [vi("y", None)],
     [const("s", [2**20, 2**22, 256])])
save("input_overflow", [helper.make_node("Relu", ["x"], ["y"], name="relu")], [vi("x", [2**32, 2**32, 16])], [vi("y", None)])
save("input_int64max", [helper.make_node("Relu", ["x"], ["y"], name="relu")], [vi("x", [2**63 - 1])], [vi("y", None)])
save("reshape_huge", [helper.make_node("Reshape", ["x", "s"], ["y"], name="reshape")], [vi("x", [4])], [vi("y", None)],
     [const("s", [BIG, BIG, 0])])

# --- attributes far out of range --------------------------------------------------------------
w = numpy_helper.from_array(np.ones((2, 1, 3, 3), np.float32), "w")
xin = vi("x", [1, 1, 8, 8])
for what, attrs in {"strides": dict(strides=[BIG, BIG]), "pads": dict(pads=[BIG, BIG, BIG, BIG]),
                    "dilations": dict(dilations=[BIG, BIG]), "negative_pads": dict(pads=[-BIG, -BIG, -BIG, -BIG]),
                    "zero_strides": dict(strides=[0, 0])}.items():
    save(f"conv_{what}", [helper.make_node("Conv", ["x", "w"], ["y"], name="conv", **attrs)], [xin], [vi("y", None)], [w])
# depthwise (group = C) with a huge stride, and a huge stride beside a dilation: legal, output 1 wide
wd = numpy_helper.from_array(np.ones((2, 1, 3, 3), np.float32), "w")
save("conv_depthwise_strides", [helper.make_node("Conv", ["x", "w"], ["y"], name="conv", group=2, strides=[BIG, BIG])],
     [vi("x", [1, 2, 8, 8])], [vi("y", None)], [wd])
save("conv_depthwise_dilated_strides", [helper.make_node("Conv", ["x", "w"], ["y"], name="conv", group=2, dilations=[1, 3], strides=[1, BIG])],
     [vi("x", [1, 2, 8, 8])], [vi("y", None)], [wd])
save("maxpool_kernel_huge", [helper.make_node("MaxPool", ["x"], ["y"], name="pool", kernel_shape=[BIG, BIG], strides=[BIG, 1])],
     [xin], [vi("y", None)])
save("pad_huge", [helper.make_node("Pad", ["x", "p"], ["y"], name="pad")], [vi("x", [1, 4])], [vi("y", None)],
     [const("p", [0, 2**63 - 8, 0, 2**63 - 8])])
save("range_huge", [helper.make_node("Range", ["a", "b", "d"], ["y"], name="range")], [], [vi("y", None, I64)],
     [helper.make_tensor("a", I64, [], [-2**63]), helper.make_tensor("b", I64, [], [2**63 - 1]), helper.make_tensor("d", I64, [], [2**62])])
save("range_float_huge", [helper.make_node("Range", ["a", "b", "d"], ["y"], name="range")], [], [vi("y", None)],
     [helper.make_tensor("a", F, [], [0.0]), helper.make_tensor("b", F, [], [1e30]), helper.make_tensor("d", F, [], [1e-30])])
for tag, scale in {"nan": float("nan"), "negative": -1.0, "huge": 1e30, "inf": float("inf")}.items():
    save(f"resize_scale_{tag}", [helper.make_node("Resize", ["x", "", "sc"], ["y"], name="resize", mode="nearest")],
         [vi("x", [1, 1, 4, 4])], [vi("y", None)], [helper.make_tensor("sc", F, [4], [1, 1, scale, scale])])
save("resize_sizes_huge", [helper.make_node("Resize", ["x", "", "", "sz"], ["y"], name="resize", mode="nearest")],
     [vi("x", [1, 1, 4, 4])], [vi("y", None)], [const("sz", [1, 1, BIG, BIG])])
save("depthtospace_zero", [helper.make_node("DepthToSpace", ["x"], ["y"], name="d2s", blocksize=0)], [vi("x", [1, 4, 2, 2])], [vi("y", None)])
save("spacetodepth_huge", [helper.make_node("SpaceToDepth", ["x"], ["y"], name="s2d", blocksize=BIG)], [vi("x", [1, 4, 2, 2])], [vi("y", None)])
save("cast_to_huge", [helper.make_node("Cast", ["x"], ["y"], name="cast", to=2**31)], [vi("x", [2])], [vi("y", None)])
save("cumsum_float_axis", [helper.make_node("CumSum", ["x", "a"], ["y"], name="cumsum")], [vi("x", [2, 3])], [vi("y", None)],
     [helper.make_tensor("a", F, [], [1e300])])
save("gather_axis_huge", [helper.make_node("Gather", ["x", "i"], ["y"], name="gather", axis=BIG)], [vi("x", [2, 3])], [vi("y", None)],
     [const("i", [0])])
save("concat_axis_min", [helper.make_node("Concat", ["x", "x"], ["y"], name="concat", axis=-2**63)], [vi("x", [2, 3])], [vi("y", None)])
save("split_huge", [helper.make_node("Split", ["x", "s"], ["y", "z"], name="split", axis=0)], [vi("x", [4])], [vi("y", None), vi("z", None)],
     [const("s", [BIG, -BIG + 4])])
save("slice_extreme", [helper.make_node("Slice", ["x", "st", "en", "ax", "sp"], ["y"], name="slice")], [vi("x", [10])], [vi("y", None)],
     [const("st", [-2**63]), const("en", [2**63 - 1]), const("ax", [0]), const("sp", [-2**63])])
save("onehot_depth_huge", [helper.make_node("OneHot", ["i", "d", "v"], ["y"], name="onehot")], [vi("i", [2], I64)], [vi("y", None)],
     [helper.make_tensor("d", I64, [], [BIG]), helper.make_tensor("v", F, [2], [0, 1])])
save("topk_k_huge", [helper.make_node("TopK", ["x", "k"], ["y", "i"], name="topk")], [vi("x", [4])], [vi("y", None), vi("i", None, I64)],
     [const("k", [BIG])])
save("unsqueeze_axes_huge", [helper.make_node("Unsqueeze", ["x", "a"], ["y"], name="unsq")], [vi("x", [4])], [vi("y", None)],
     [const("a", [BIG])])
# Attention / RotaryEmbedding / quantization attributes that are sizes.
save("attention_heads_huge", [helper.make_node("Attention", ["q", "k", "v"], ["y"], name="attn", q_num_heads=BIG, kv_num_heads=BIG)],
     [vi("q", [1, 4, 24]), vi("k", [1, 4, 24]), vi("v", [1, 4, 24])], [vi("y", None)], opset=23)
save("rotary_dim_huge", [helper.make_node("RotaryEmbedding", ["x", "c", "s"], ["y"], name="rope", rotary_embedding_dim=BIG)],
     [vi("x", [1, 2, 4, 8]), vi("c", [1, 4, 4]), vi("s", [1, 4, 4])], [vi("y", None)], opset=23)
save("dequantize_block_huge", [helper.make_node("DequantizeLinear", ["x", "sc"], ["y"], name="dq", axis=1, block_size=BIG)],
     [vi("x", [4, 4], TensorProto.INT8)], [vi("y", None)], [helper.make_tensor("sc", F, [4, 1], [0.5] * 4)], opset=21)
# Tree ensembles: a cycle between two nodes (a walk would never end), a feature out of range.
save("tree_cycle", [helper.make_node("TreeEnsemble", ["x"], ["y"], name="trees", domain="ai.onnx.ml", n_targets=1,
                                     nodes_featureids=[0, 1], nodes_modes=helper.make_tensor("m", TensorProto.UINT8, [2], [0, 0]),
                                     nodes_splits=helper.make_tensor("s", F, [2], [0.5, 0.5]), nodes_truenodeids=[1, 0],
                                     nodes_falsenodeids=[0, 0], nodes_trueleafs=[0, 0], nodes_falseleafs=[1, 1],
                                     leaf_targetids=[0], leaf_weights=helper.make_tensor("w", F, [1], [1.0]), tree_roots=[0])],
     [vi("x", [2, 3])], [vi("y", None)], extra=[helper.make_opsetid("ai.onnx.ml", 5)])
save("tree_feature_out_of_range", [helper.make_node("TreeEnsembleRegressor", ["x"], ["y"], name="forest", domain="ai.onnx.ml", n_targets=1,
                                                    nodes_treeids=[0, 0, 0], nodes_nodeids=[0, 1, 2], nodes_featureids=[99, 0, 0],
                                                    nodes_modes=["BRANCH_LEQ", "LEAF", "LEAF"], nodes_values=[0.5, 0, 0],
                                                    nodes_truenodeids=[1, 0, 0], nodes_falsenodeids=[2, 0, 0],
                                                    target_treeids=[0, 0], target_nodeids=[1, 2], target_ids=[0, 0], target_weights=[1.0, 2.0])],
     [vi("x", [2, 3])], [vi("y", None)], extra=[helper.make_opsetid("ai.onnx.ml", 3)])
save("flatten_axis_huge", [helper.make_node("Flatten", ["x"], ["y"], name="flatten", axis=BIG)], [vi("x", [2, 3])], [vi("y", None)])
save("transpose_perm_bad", [helper.make_node("Transpose", ["x"], ["y"], name="transpose", perm=[BIG, 0])], [vi("x", [2, 3])], [vi("y", None)])
save("symbolic_negative_dim", [helper.make_node("Relu", ["x"], ["y"], name="relu")], [vi("x", ["batch", -5])], [vi("y", None)])

# --- graph outputs without type (the verifier's error must name the file) ---------------------
save("output_without_type", [helper.make_node("Relu", ["x"], ["y"], name="relu")], [vi("x", [2])],
     [onnx.ValueInfoProto(name="y")])

# --- fan-in: one Sum node with 100,000 inputs ------------------------------------------------
save("sum_100k_inputs", [helper.make_node("Sum", ["x"] * 100_000, ["y"], name="sum")], [vi("x", [2])], [vi("y", None)])

# --- local functions that explode when inlined ------------------------------------------------
fns = [helper.make_function("local", "f0", ["a"], ["b"], [helper.make_node("Relu", ["a"], ["b"])], [helper.make_opsetid("", 17)])]
for k in range(1, 21):
    fns.append(helper.make_function("local", f"f{k}", ["a"], ["b"], [
        helper.make_node(f"f{k - 1}", ["a"], ["t"], domain="local"),
        helper.make_node(f"f{k - 1}", ["t"], ["b"], domain="local")], [helper.make_opsetid("", 17), helper.make_opsetid("local", 1)]))
save("function_exponential", [helper.make_node("f20", ["x"], ["y"], domain="local", name="call")], [vi("x", [2])], [vi("y", None)],
     functions=fns)
calls = [helper.make_node("f0", ["x" if k == 0 else f"t{k - 1}"], [f"t{k}"], domain="local", name=f"c{k}") for k in range(20_000)]
save("function_20k_calls", calls, [vi("x", [2])], [vi(f"t{19_999}", None)], functions=fns[:1])


# --- protobuf messages nested deep enough to overflow a recursive decoder ---------------------
def varint(n):
    b = bytearray()
    while True:
        c = n & 0x7F
        n >>= 7
        if n:
            b.append(c | 0x80)
        else:
            b.append(c)
            return bytes(b)


def field(num, payload):  # length-delimited field
    return varint(num << 3 | 2) + varint(len(payload)) + payload


def model_with_graph(graph_bytes):
    opset = field(1, b"") + varint(2 << 3) + varint(17)  # OperatorSetIdProto{domain="", version=17}
    return varint(1 << 3) + varint(8) + field(8, opset) + field(7, graph_bytes)


# If nodes whose then_branch holds an If node whose then_branch ... 10,000 deep.
inner = b""
for _ in range(10_000):
    attr = field(1, b"then_branch") + field(6, inner) + varint(20 << 3) + varint(5)  # AttributeProto{name, g, type=GRAPH}
    node = field(4, b"If") + field(1, b"c") + field(5, attr)  # NodeProto{op_type, input, attribute}
    inner = field(1, node)  # GraphProto{node}
with open(os.path.join(out, "nested_if_10000.onnx"), "wb") as f:
    f.write(model_with_graph(inner))

# A graph input whose type is a sequence of a sequence of ... 100,000 deep.
t = field(1, varint(1 << 3) + varint(1))  # TypeProto{tensor_type{elem_type=FLOAT}}
for _ in range(100_000):
    t = field(4, field(1, t))  # TypeProto{sequence_type{elem_type=t}}
vinfo = field(1, b"x") + field(2, t)
with open(os.path.join(out, "nested_sequence_100000.onnx"), "wb") as f:
    f.write(model_with_graph(field(11, vinfo)))

# An external-data tensor whose file the test replaces by a FIFO (a read would block forever).
ext = TensorProto(name="w", data_type=F, dims=[4])
ext.data_location = TensorProto.EXTERNAL
ext.external_data.add(key="location", value="fifo.bin")
save("external_fifo", [helper.make_node("Relu", ["w"], ["y"], name="relu")], [], [vi("y", [4])], [ext])
