#!/usr/bin/env python3
"""Single-op models for cases ONNX's node tests leave out, with ONNX Runtime's outputs (one
thread) as references, or ONNX's reference evaluator where ONNX Runtime has no kernel
(DeformConv) or disagrees with numpy (complex STFT):

- Einsum with an ellipsis over inputs of different ranks, explicit and implicit outputs;
- MaxUnpool with a constant output_shape (the pooled tensor's shape, larger than the unpooled one);
- BatchNormalization in training mode (batch statistics, running mean and variance);
- DFT with a constant axis input (opset 20), dft_length padding and truncation, inverse;
- RoiAlign in max mode with output_half_pixel and a fixed sampling_ratio;
- DeformConv with stride, dilation, padding, groups, two offset groups and a mask;
- STFT of a complex signal with a HannWindow, and of a real one with a frame_length.

Writes each model in the layout of ONNX's node tests:
OUTDIR/NAME/{model.onnx, test_data_set_0/{input_K.pb, output_K.pb}}.
Usage: make_op_models.py OUTDIR"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto as T, helper as h, numpy_helper as nh

import node_test_layout as layout
from node_test_layout import vi

out_dir = sys.argv[1]
rng = np.random.default_rng(20261203)


def save(name, nodes, inputs, outputs, feeds, initializers=(), opset=21, reference="ort"):
    layout.save(out_dir, name, nodes, inputs, outputs, feeds, initializers, opset, reference=reference)


def f32(*shape):
    return rng.standard_normal(shape).astype(np.float32)


save("einsum_ellipsis", [
    h.make_node("Einsum", ["a", "b"], ["mm"], equation="...ij,...jk->...ik"),
    h.make_node("Einsum", ["a", "b"], ["implicit"], equation="...ij,...jk"),
    h.make_node("Einsum", ["a"], ["tr"], equation="i...i->..."),
    h.make_node("Einsum", ["c"], ["diag"], equation="...ii->...i"),
], [vi("a", T.FLOAT, [3, 2, 3]), vi("b", T.FLOAT, [3, 3, 4]), vi("c", T.FLOAT, [2, 5, 3, 3])],
    [vi("mm", T.FLOAT, [3, 2, 4]), vi("implicit", T.FLOAT, [3, 2, 4]), vi("tr", T.FLOAT, [2]), vi("diag", T.FLOAT, [2, 5, 3])],
    {"a": f32(3, 2, 3), "b": f32(3, 3, 4), "c": f32(2, 5, 3, 3)})

# The indices come from pooling a 5x6 input (whose unpooled size, 4x6, is ambiguous: output_shape
# says 5x6). They index that 5x6 tensor, as ONNX Runtime reads them (ONNX's reference evaluator
# instead scatters into the 4x6 shape and pads, which does not invert the pooling).
x = f32(1, 2, 5, 6)
pool = h.make_model(h.make_graph(
    [h.make_node("MaxPool", ["x"], ["p", "i"], kernel_shape=[2, 2], strides=[2, 2])], "p",
    [vi("x", T.FLOAT, [1, 2, 5, 6])], [vi("p", T.FLOAT, [1, 2, 2, 3]), vi("i", T.INT64, [1, 2, 2, 3])]),
    opset_imports=[h.make_opsetid("", 21)])
pool.ir_version = 10
pooled, idx = ort.InferenceSession(pool.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})
save("maxunpool_output_shape", [
    h.make_node("MaxUnpool", ["p", "i", "shape"], ["y"], kernel_shape=[2, 2], strides=[2, 2]),
], [vi("p", T.FLOAT, [1, 2, 2, 3]), vi("i", T.INT64, [1, 2, 2, 3])], [vi("y", T.FLOAT, [1, 2, 5, 6])],
    {"p": pooled, "i": idx}, [nh.from_array(np.array([1, 2, 5, 6], np.int64), "shape")])

save("batchnorm_training", [
    h.make_node("BatchNormalization", ["x", "s", "b", "m", "v"], ["y", "rm", "rv"], training_mode=1, momentum=0.8, epsilon=1e-3),
], [vi("x", T.FLOAT, [3, 4, 2, 5])], [vi("y", T.FLOAT, [3, 4, 2, 5]), vi("rm", T.FLOAT, [4]), vi("rv", T.FLOAT, [4])],
    {"x": f32(3, 4, 2, 5) * 2 + 1},
    [nh.from_array(f32(4), "s"), nh.from_array(f32(4), "b"), nh.from_array(f32(4), "m"), nh.from_array(np.abs(f32(4)) + 0.5, "v")])

save("dft_axis_input_lengths", [
    h.make_node("DFT", ["x", "n12", "ax"], ["padded"]),
    h.make_node("DFT", ["x", "n5", "ax"], ["truncated"], onesided=1),
    h.make_node("DFT", ["z", "", "ax0"], ["inverse"], inverse=1),
], [vi("x", T.FLOAT, [2, 3, 8, 1]), vi("z", T.FLOAT, [1, 7, 3, 2])],
    [vi("padded", T.FLOAT, [2, 3, 12, 2]), vi("truncated", T.FLOAT, [2, 3, 3, 2]), vi("inverse", T.FLOAT, [1, 7, 3, 2])],
    {"x": f32(2, 3, 8, 1), "z": f32(1, 7, 3, 2)},
    [nh.from_array(np.array(12, np.int64), "n12"), nh.from_array(np.array(5, np.int64), "n5"),
     nh.from_array(np.array(-2, np.int64), "ax"), nh.from_array(np.array(1, np.int64), "ax0")], opset=20)

save("roialign_max_output_half_pixel", [
    h.make_node("RoiAlign", ["x", "rois", "bi"], ["y"], mode="max", coordinate_transformation_mode="output_half_pixel",
                output_height=3, output_width=2, sampling_ratio=2, spatial_scale=0.5),
], [vi("x", T.FLOAT, [2, 3, 8, 9]), vi("rois", T.FLOAT, [3, 4]), vi("bi", T.INT64, [3])], [vi("y", T.FLOAT, [3, 3, 3, 2])],
    {"x": f32(2, 3, 8, 9), "rois": np.array([[0, 0, 10, 12], [3.5, 2.25, 15, 16], [1, 1, 2, 2]], np.float32), "bi": np.array([1, 0, 1], np.int64)},
    opset=16)

save("deformconv_groups_mask", [
    h.make_node("DeformConv", ["x", "w", "off", "b", "mask"], ["y"], group=2, offset_group=2, strides=[2, 1], dilations=[1, 2], pads=[1, 0, 1, 2]),
], [vi("x", T.FLOAT, [1, 4, 6, 7]), vi("off", T.FLOAT, [1, 2 * 2 * 2 * 2, 4, 7]), vi("mask", T.FLOAT, [1, 2 * 2 * 2, 4, 7])],
    [vi("y", T.FLOAT, [1, 6, 4, 7])],
    {"x": f32(1, 4, 6, 7), "off": f32(1, 16, 4, 7) * 1.5, "mask": rng.random((1, 8, 4, 7)).astype(np.float32)},
    [nh.from_array(f32(6, 2, 2, 2), "w"), nh.from_array(f32(6), "b")], opset=22, reference="onnx")

# STFT of a complex signal (two-sided) with a Hann window made by HannWindow (folded at compile
# time), and of a real one (one-sided) with a frame_length and no window. Against ONNX's
# reference: ONNX Runtime 1.23's complex-input STFT disagrees with numpy.fft.fft of the windowed
# frames (first bin -0.551+4.615i where numpy and the reference give -0.226+1.350i); its real
# one agrees with both.
save("stft_window_complex", [
    h.make_node("HannWindow", ["n"], ["w"], periodic=1),
    h.make_node("STFT", ["z", "step", "w"], ["spec"], onesided=0),
    h.make_node("STFT", ["x", "step3", "", "len"], ["real"], onesided=1),
], [vi("z", T.FLOAT, [2, 40, 2]), vi("x", T.FLOAT, [1, 50, 1])], [vi("spec", T.FLOAT, [2, 7, 16, 2]), vi("real", T.FLOAT, [1, 8, 11, 2])],
    {"z": f32(2, 40, 2), "x": f32(1, 50, 1)},
    [nh.from_array(np.array(16, np.int64), "n"), nh.from_array(np.array(4, np.int64), "step"),
     nh.from_array(np.array(4, np.int64), "step3"), nh.from_array(np.array(20, np.int64), "len")], opset=17, reference="onnx")
