#!/usr/bin/env python3
"""A model whose nodes take each specialized path of the emitted runtime, with seeded random
weights, so that the C++ can be checked against ONNX Runtime on all of them:
- Gemm with a constant transB=1 weight at batch 1 (stored transposed at compile time, run by the
  row-streaming kernel), and a narrow Gemm (N < 16, K >= 64) whose weight the emitter also
  stores transposed, run as dot products;
- depthwise Conv (group = C) with stride 1 and 2, padding, dilation, and a channel multiplier;
- 3x3 Conv with padding and its fused Relu / residual epilogue;
- convolutions whose im2col matrix gemm_conv packs straight from the image: more rows than one
  K panel (the second starting inside a channel's taps), more columns than one column block (the
  second starting inside an output row), stride, dilation and asymmetric pads (the ragged copy),
  groups, 1-D and 3-D, 2 output channels (fewer than a register tile's rows), rows wider than a
  sliver;
- constant weights of MatMul and Gemm stored packed in slivers (gemm_packed): 3-D A, one
  weight shared by two products, transB, transA, a partial register tile, two K panels, more
  columns than one column block, one and two rows against an odd number of slivers;
- one-group convolutions with at most 16 output channels, which run the direct kernel
  conv_rows: a 3x3 with a residual and Relu epilogue, 1-D with kernel 7 (5 channels: a partial
  block of 6), 2 channels on 117-wide rows (a partial block of 4), 12 channels (two blocks of 6)
  with strides (2, 1), dilations (1, 2) and asymmetric pads, 16 channels in 1-D with pads wider
  than the kernel, a batch of 2 with a residual epilogue (the per-image offsets), rows of 6
  outputs (8 channels x 1 vector per step), one weight read by two such convolutions that block
  it differently, and strides along the row (rows split into phases): a 7x7 stride-2 stem with
  pads 3 on odd sizes, and 1-D stride 3 with dilation 2 and asymmetric pads;
- a strided convolution with more channels than conv_rows takes (gemm_conv's strided gather);
- convolutions with at most 16 output pixels, which run conv_pixels (im2col rows times the
  packed transposed weight): a 3x3 on a 4x4 image with a residual and Relu, 1-D with stride 2,
  a batch of 2 with one output pixel each (gemm_packed's one-row path), a strided 1x1, and a
  weight read both by conv_pixels and by gemm_conv (on a 20x20 image);
- depthwise Conv on a 117-wide row (every register block of the plane kernel and a partial
  vector), in 1-D with stride 3 (three phases), with stride 2 and an odd pad (the two-phase copy), and in
  3-D (the row kernel);
- activations stored from registers: a 1x1 with Clip and a 3x3 with a residual and LeakyRelu
  (the GEMM's tile store), depthwise convolutions with Clip at stride 1 and 2 (the plane
  kernel's tiles), and one with a residual before the Clip (activated after the residual);
  a 1x1 with HardSwish and depthwise convolutions with Sigmoid and HardSigmoid (the vector
  functions and selects in the same registers).
Usage: make_kernel_paths.py OUT.onnx"""
import sys
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

rng = np.random.default_rng(11)


def t(name, shape, scale=0.3):
    return numpy_helper.from_array((rng.standard_normal(shape) * scale).astype(np.float32), name)


inits = [
    t("dw1", (8, 1, 3, 3)), t("dw1b", (8,)),          # depthwise, stride 1, pad 1
    t("dw2", (16, 1, 3, 3)), t("dw2b", (16,)),        # depthwise, multiplier 2, stride 2, dilation 2
    t("c1", (8, 8, 3, 3)), t("c1b", (8,)),            # 3x3 conv, pad 1, residual + relu
    t("g1", (40, 8 * 4 * 5)), t("g1b", (40,)),        # Gemm transB=1, M = 1 (weight stored transposed)
    t("g2", (40, 3)), t("g2b", (3,)),                 # narrow Gemm: N = 3 < 16, K = 40 (< 64: plain)
    t("g3", (16 * 5 * 5, 5)), t("g3b", (5,)),         # narrow Gemm: N = 5, K = 400 >= 64 (transposed copy, dot kernel)
    numpy_helper.from_array(np.array([1, -1], np.int64), "flat"),
    t("dw3", (2, 1, 3, 3)), t("dw3b", (2,)),          # wide rows: 117 outputs per row
    t("dw4", (6, 1, 5)),                              # 1-D, stride 3, pad 2, no bias
    t("dw5", (4, 1, 3, 3, 3)), t("dw5b", (4,)),       # 3-D depthwise
    t("dw6", (2, 1, 3, 3)),                           # stride 2 with an odd pad on an odd-width row
    t("k1", (24, 32, 3, 3), 0.1), t("k1b", (24,)),    # K = 288 > one 256-row panel, 1600 columns > 1024
    t("k2", (10, 32, 5, 3), 0.1),                     # strides (2, 3), dilations (1, 2), pads (2, 0, 1, 3)
    t("k3", (16, 8, 3, 3), 0.1), t("k3b", (16,)),     # 4 groups of 8 channels
    t("k4", (5, 6, 7)),                               # 1-D, kernel 7, pad 3
    t("k5", (3, 4, 3, 3, 3)), t("k5b", (3,)),         # 3-D, strides (1, 2, 1)
    t("k6", (2, 2, 3, 3)),                            # 2 output channels on 117-wide rows
    t("cr1", (12, 8, 3, 3), 0.2), t("cr1b", (12,)),   # conv_rows: two blocks of 8, strides (2, 1), dilations (1, 2), pads (0, 3, 2, 1)
    t("cr2", (16, 6, 3), 0.2),                         # conv_rows 1-D: pads (4, 5) wider than the kernel
    t("cr3", (3, 3, 3, 3), 0.2), t("cr3b", (3,)),      # conv_rows on a batch of 2 with a residual
    t("cr4", (7, 8, 3, 5), 0.2),                       # conv_rows: 6-wide rows here, 16-wide in a second conv
    t("k7", (20, 8, 3, 3), 0.1),                       # 20 channels, stride 2: gemm_conv's strided gather
    t("cp1", (32, 32, 3, 3), 0.05), t("cp1b", (32,)),  # conv_pixels: 4x4 image, residual + Relu
    t("cp2", (64, 5, 3), 0.2),                         # conv_pixels 1-D, stride 2: 5 pixels
    t("cp3", (32, 16, 3, 3), 0.1), t("cp3b", (32,)),  # conv_pixels: batch 2, one pixel each
    t("cp4", (64, 16, 1, 1), 0.2),                     # conv_pixels: 1x1 stride 2
    t("cr5", (8, 3, 7, 7), 0.1), t("cr5b", (8,)),     # conv_rows: 7x7 stride 2 (two phases), pads 3
    t("cr6", (5, 6, 4), 0.2),                          # conv_rows 1-D: stride 3, dilation 2, pads (2, 1)
    t("ep1", (24, 32, 1, 1), 0.2), t("ep1b", (24,)),   # 1x1 + Clip: activation in the GEMM's register store
    t("ep2", (32, 32, 3, 3), 0.05), t("ep2b", (32,)),  # 3x3 + residual + LeakyRelu, same store
    t("ep3", (32, 1, 3, 3), 0.3), t("ep3b", (32,)),    # depthwise + Clip: in the tiles' registers; + residual: after
    t("wp1", (64, 96), 0.1),                          # MatMul weight of a 3-D A, read by two products
    t("wp2", (64, 300), 0.05), t("wp2b", (64,)),        # Gemm transB = 1, K = 300 (two panels), M = 3
    t("wp3", (300, 720), 0.05), t("wp3b", (720,)),      # M = 1, 23 slivers
    t("wp4", (40, 64), 0.1),                           # Gemm transA = 1, M = 2
    t("wp5", (64, 1056), 0.1),                         # 1056 columns: two column blocks, M = 7
]
n = helper.make_node
nodes = [
    n("Conv", ["x", "dw1", "dw1b"], ["d1"], group=8, pads=[1, 1, 1, 1]),
    n("Conv", ["d1", "c1", "c1b"], ["c1o"], pads=[1, 1, 1, 1]),
    n("Add", ["c1o", "x"], ["res"]),
    n("Relu", ["res"], ["r1"]),
    n("Conv", ["r1", "dw2", "dw2b"], ["d2"], group=8, strides=[2, 2], dilations=[2, 2], pads=[2, 2, 2, 2]),
    n("Relu", ["d2"], ["d2c"]),
    n("MaxPool", ["r1"], ["p1"], kernel_shape=[2, 2], strides=[2, 2]),
    n("Reshape", ["p1", "flat"], ["f1"]),
    n("Gemm", ["f1", "g1", "g1b"], ["h1"], transB=1),
    n("Relu", ["h1"], ["h1r"]),
    n("Gemm", ["h1r", "g2", "g2b"], ["y1"]),
    n("Reshape", ["d2c", "flat"], ["f2"]),
    n("Gemm", ["f2", "g3", "g3b"], ["y2"]),
    n("Conv", ["w", "dw3", "dw3b"], ["y3"], group=2, pads=[1, 1, 1, 1]),
    n("Conv", ["u", "dw4"], ["y4"], group=6, strides=[3], pads=[2, 2]),
    n("Conv", ["v", "dw5", "dw5b"], ["y5"], group=4, pads=[1, 1, 1, 1, 1, 1]),
    n("Conv", ["w", "dw6"], ["y6"], group=2, strides=[2, 2], pads=[1, 1, 1, 1]),
    n("Conv", ["z", "k1", "k1b"], ["y7"], pads=[1, 1, 1, 1]),
    n("Conv", ["z", "k2"], ["y8"], strides=[2, 3], dilations=[1, 2], pads=[2, 0, 1, 3]),
    n("Conv", ["z", "k3", "k3b"], ["k3o"], group=4, pads=[1, 1, 1, 1]),
    n("Relu", ["k3o"], ["y9"]),
    n("Conv", ["u", "k4"], ["y10"], pads=[3, 3]),
    n("Conv", ["v", "k5", "k5b"], ["y11"], strides=[1, 2, 1], pads=[1, 1, 1, 1, 1, 1]),
    n("Conv", ["w", "k6"], ["y12"], pads=[1, 1, 1, 1]),
    n("MatMul", ["m", "wp1"], ["y13"]),
    n("Tanh", ["m"], ["mt"]),
    n("MatMul", ["mt", "wp1"], ["y13b"]),
    n("Gemm", ["q", "wp2", "wp2b"], ["p2o"], transB=1),
    n("Relu", ["p2o"], ["y14"]),
    n("Gemm", ["q1", "wp3", "wp3b"], ["y15"]),
    n("Gemm", ["q2", "wp4"], ["y16"], transA=1, alpha=0.5),
    n("MatMul", ["r", "wp5"], ["y17"]),
    n("Conv", ["x", "cr1", "cr1b"], ["y18"], strides=[2, 1], dilations=[1, 2], pads=[0, 3, 2, 1]),
    n("Conv", ["u", "cr2"], ["cr2o"], pads=[4, 5]),
    n("LeakyRelu", ["cr2o"], ["y19"], alpha=0.1),
    n("Conv", ["b2", "cr3", "cr3b"], ["cr3o"], pads=[1, 1, 1, 1]),
    n("Add", ["cr3o", "b2"], ["cr3r"]),
    n("Relu", ["cr3r"], ["y20"]),
    n("Conv", ["x", "cr4"], ["y21"]),
    n("Conv", ["x2", "cr4"], ["y22"]),
    n("Conv", ["s3", "cr5", "cr5b"], ["cr5o"], strides=[2, 2], pads=[3, 3, 3, 3]),
    n("Relu", ["cr5o"], ["y23"]),
    n("Conv", ["x", "k7"], ["y25"], strides=[2, 2], pads=[1, 1, 1, 1]),
    n("Conv", ["p4", "cp1", "cp1b"], ["cp1o"], pads=[1, 1, 1, 1]),
    n("Add", ["cp1o", "p4"], ["cp1r"]),
    n("Relu", ["cp1r"], ["y26"]),
    n("Conv", ["v1", "cp2"], ["y27"], strides=[2], pads=[1, 1]),
    n("Conv", ["b3", "cp3", "cp3b"], ["y28"]),
    n("Conv", ["p16", "cp4"], ["y29"], strides=[2, 2]),
    n("Conv", ["p20", "cp1"], ["y30"], pads=[1, 1, 1, 1]),
    n("Conv", ["u", "cr6"], ["y24"], strides=[3], dilations=[2], pads=[2, 1]),
    n("Conv", ["z", "ep1", "ep1b"], ["ep1o"]),
    n("Clip", ["ep1o", "clip_lo", "clip_hi"], ["y31"]),
    n("Conv", ["z", "ep2", "ep2b"], ["ep2o"], pads=[1, 1, 1, 1]),
    n("Add", ["ep2o", "z"], ["ep2r"]),
    n("LeakyRelu", ["ep2r"], ["y32"], alpha=0.2),
    n("Conv", ["z", "ep3", "ep3b"], ["ep3o"], group=32, pads=[1, 1, 1, 1]),
    n("Clip", ["ep3o", "clip_lo", "clip_hi"], ["y33"]),
    n("Conv", ["z", "ep3", "ep3b"], ["ep3p"], group=32, strides=[2, 2], pads=[1, 1, 1, 1]),
    n("Clip", ["ep3p", "clip_lo", "clip_hi"], ["y34"]),
    n("Conv", ["z", "ep3"], ["ep3q"], group=32, pads=[1, 1, 1, 1]),
    n("Add", ["ep3q", "z"], ["ep3r"]),
    n("Clip", ["ep3r", "clip_lo", "clip_hi"], ["y35"]),
    n("Conv", ["p20", "ep1", "ep1b"], ["ep1s"]),
    n("HardSwish", ["ep1s"], ["y36"]),
    n("Conv", ["p20", "ep3", "ep3b"], ["ep3s"], group=32, pads=[1, 1, 1, 1]),
    n("Sigmoid", ["ep3s"], ["y37"]),
    n("Conv", ["p20", "ep3", "ep3b"], ["ep3t"], group=32, strides=[2, 2], pads=[1, 1, 1, 1]),
    n("HardSigmoid", ["ep3t"], ["y38"], alpha=0.3, beta=0.4),
]
inits += [numpy_helper.from_array(np.array(-0.2, np.float32), "clip_lo"), numpy_helper.from_array(np.array(0.3, np.float32), "clip_hi")]
graph = helper.make_graph(nodes, "kernel_paths", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8, 9, 10]),
                                                  helper.make_tensor_value_info("w", TensorProto.FLOAT, [1, 2, 4, 117]),
                                                  helper.make_tensor_value_info("u", TensorProto.FLOAT, [1, 6, 50]),
                                                  helper.make_tensor_value_info("v", TensorProto.FLOAT, [1, 4, 3, 6, 7]),
                                                  helper.make_tensor_value_info("z", TensorProto.FLOAT, [1, 32, 40, 40]),
                                                  helper.make_tensor_value_info("m", TensorProto.FLOAT, [2, 5, 64]),
                                                  helper.make_tensor_value_info("q", TensorProto.FLOAT, [3, 300]),
                                                  helper.make_tensor_value_info("q1", TensorProto.FLOAT, [1, 300]),
                                                  helper.make_tensor_value_info("q2", TensorProto.FLOAT, [40, 2]),
                                                  helper.make_tensor_value_info("r", TensorProto.FLOAT, [7, 64]),
                                                  helper.make_tensor_value_info("b2", TensorProto.FLOAT, [2, 3, 6, 21]),
                                                  helper.make_tensor_value_info("x2", TensorProto.FLOAT, [1, 8, 5, 20]),
                                                  helper.make_tensor_value_info("s3", TensorProto.FLOAT, [1, 3, 23, 37]),
                                                  helper.make_tensor_value_info("p4", TensorProto.FLOAT, [1, 32, 4, 4]),
                                                  helper.make_tensor_value_info("v1", TensorProto.FLOAT, [1, 5, 9]),
                                                  helper.make_tensor_value_info("b3", TensorProto.FLOAT, [2, 16, 3, 3]),
                                                  helper.make_tensor_value_info("p16", TensorProto.FLOAT, [1, 16, 4, 4]),
                                                  helper.make_tensor_value_info("p20", TensorProto.FLOAT, [1, 32, 20, 20])],
                          [helper.make_tensor_value_info("y1", TensorProto.FLOAT, [1, 3]),
                           helper.make_tensor_value_info("y2", TensorProto.FLOAT, [1, 5]),
                           helper.make_tensor_value_info("y3", TensorProto.FLOAT, [1, 2, 4, 117]),
                           helper.make_tensor_value_info("y4", TensorProto.FLOAT, [1, 6, 17]),
                           helper.make_tensor_value_info("y5", TensorProto.FLOAT, [1, 4, 3, 6, 7]),
                           helper.make_tensor_value_info("y6", TensorProto.FLOAT, [1, 2, 2, 59]),
                           helper.make_tensor_value_info("y7", TensorProto.FLOAT, [1, 24, 40, 40]),
                           helper.make_tensor_value_info("y8", TensorProto.FLOAT, [1, 10, 20, 13]),
                           helper.make_tensor_value_info("y9", TensorProto.FLOAT, [1, 16, 40, 40]),
                           helper.make_tensor_value_info("y10", TensorProto.FLOAT, [1, 5, 50]),
                           helper.make_tensor_value_info("y11", TensorProto.FLOAT, [1, 3, 3, 3, 7]),
                           helper.make_tensor_value_info("y12", TensorProto.FLOAT, [1, 2, 4, 117]),
                           helper.make_tensor_value_info("y13", TensorProto.FLOAT, [2, 5, 96]),
                           helper.make_tensor_value_info("y13b", TensorProto.FLOAT, [2, 5, 96]),
                           helper.make_tensor_value_info("y14", TensorProto.FLOAT, [3, 64]),
                           helper.make_tensor_value_info("y15", TensorProto.FLOAT, [1, 720]),
                           helper.make_tensor_value_info("y16", TensorProto.FLOAT, [2, 64]),
                           helper.make_tensor_value_info("y17", TensorProto.FLOAT, [7, 1056]),
                           helper.make_tensor_value_info("y18", TensorProto.FLOAT, [1, 12, 5, 10]),
                           helper.make_tensor_value_info("y19", TensorProto.FLOAT, [1, 16, 57]),
                           helper.make_tensor_value_info("y20", TensorProto.FLOAT, [2, 3, 6, 21]),
                           helper.make_tensor_value_info("y21", TensorProto.FLOAT, [1, 7, 7, 6]),
                           helper.make_tensor_value_info("y22", TensorProto.FLOAT, [1, 7, 3, 16]),
                           helper.make_tensor_value_info("y23", TensorProto.FLOAT, [1, 8, 12, 19]),
                           helper.make_tensor_value_info("y24", TensorProto.FLOAT, [1, 5, 16]),
                           helper.make_tensor_value_info("y25", TensorProto.FLOAT, [1, 20, 5, 5]),
                           helper.make_tensor_value_info("y26", TensorProto.FLOAT, [1, 32, 4, 4]),
                           helper.make_tensor_value_info("y27", TensorProto.FLOAT, [1, 64, 5]),
                           helper.make_tensor_value_info("y28", TensorProto.FLOAT, [2, 32, 1, 1]),
                           helper.make_tensor_value_info("y29", TensorProto.FLOAT, [1, 64, 2, 2]),
                           helper.make_tensor_value_info("y30", TensorProto.FLOAT, [1, 32, 20, 20]),
                           helper.make_tensor_value_info("y31", TensorProto.FLOAT, [1, 24, 40, 40]),
                           helper.make_tensor_value_info("y32", TensorProto.FLOAT, [1, 32, 40, 40]),
                           helper.make_tensor_value_info("y33", TensorProto.FLOAT, [1, 32, 40, 40]),
                           helper.make_tensor_value_info("y34", TensorProto.FLOAT, [1, 32, 20, 20]),
                           helper.make_tensor_value_info("y35", TensorProto.FLOAT, [1, 32, 40, 40]),
                           helper.make_tensor_value_info("y36", TensorProto.FLOAT, [1, 24, 20, 20]),
                           helper.make_tensor_value_info("y37", TensorProto.FLOAT, [1, 32, 20, 20]),
                           helper.make_tensor_value_info("y38", TensorProto.FLOAT, [1, 32, 10, 10])], inits)
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="make_kernel_paths.py")
model.ir_version = 8
onnx.checker.check_model(model, full_check=True)
if len(sys.argv) != 2 or sys.argv[1].startswith("-"):
    sys.exit("usage: make_kernel_paths.py OUT.onnx")
onnx.save(model, sys.argv[1])
