#!/usr/bin/env python3
"""Quantized models made by ONNX Runtime's own tools (onnxruntime.quantization), with ONNX
Runtime's outputs (one thread, the graph as written) as references:

- cnn_static_qdq: a float CNN (Conv+Relu, MaxPool, Conv+Relu, GlobalAveragePool, Gemm)
  quantized by quantize_static (QDQ format, uint8 activations, int8 per-channel weights,
  calibrated on 16 random inputs);
- mlp_dynamic: a float MLP (MatMul+Add, Relu, MatMul+Add) quantized by quantize_dynamic
  (DynamicQuantizeLinear, MatMulInteger, uint8/int8).

The references come from ONNX Runtime with its graph optimizations disabled, which runs the
graph as written (quantize, dequantize, float convolution: the ONNX semantics), as sofie does.
With its optimizations ONNX Runtime fuses the QDQ pattern into integer kernels whose results
depend on the machine: on x86-64 without VNNI (AVX2) its u8 x s8 products saturate in 16 bits
(the reason for quantize_static's reduce_range option), and this CNN's output then moved 6
quantization steps from the unfused graph's; on AVX-512 VNNI machines it stayed within one.
The test compares within one quantization step of the output; meta.json records each model's
step (`step`) so it can compare in those units.

For each model NAME writes OUTDIR/NAME/{model.onnx, in0.bin, out0.ref, meta.json}.
Usage: make_quantized_models.py OUTDIR"""
import json
import os
import sys
import tempfile

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto as T, helper as h, numpy_helper as nh
from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_dynamic, quantize_static

out_dir = sys.argv[1]
rng = np.random.default_rng(20261204)


def w(name, shape, scale):
    return nh.from_array((rng.standard_normal(shape) * scale).astype(np.float32), name)


def run(path, x):
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # the graph as written
    s = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    return s.run(None, {s.get_inputs()[0].name: x})[0]


class Reader(CalibrationDataReader):
    def __init__(self, shape):
        self.data = iter([{"x": rng.standard_normal(shape).astype(np.float32)} for _ in range(16)])

    def get_next(self):
        return next(self.data, None)


def finish(name, model_path, x, step):
    y = run(model_path, x)
    d = os.path.join(out_dir, name)
    os.makedirs(d, exist_ok=True)
    model = onnx.load(model_path)
    onnx.save(model, os.path.join(d, "model.onnx"))
    x.tofile(os.path.join(d, "in0.bin"))
    y.astype(np.float32).tofile(os.path.join(d, "out0.ref"))
    ops = sorted({n.op_type for n in model.graph.node})
    with open(os.path.join(d, "meta.json"), "w") as f:
        json.dump({"inputs": ["x"], "outputs": [{"dtype": "float32", "shape": list(y.shape)}], "step": step, "ops": ops}, f)


with tempfile.TemporaryDirectory() as tmp:
    # Static QDQ CNN.
    g = h.make_graph([
        h.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1]),
        h.make_node("Relu", ["c1"], ["r1"]),
        h.make_node("MaxPool", ["r1"], ["p1"], kernel_shape=[2, 2], strides=[2, 2]),
        h.make_node("Conv", ["p1", "w2", "b2"], ["c2"], pads=[1, 1, 1, 1]),
        h.make_node("Relu", ["c2"], ["r2"]),
        h.make_node("GlobalAveragePool", ["r2"], ["g"]),
        h.make_node("Flatten", ["g"], ["f"]),
        h.make_node("Gemm", ["f", "wd", "bd"], ["y"], transB=1),
    ], "cnn", [h.make_tensor_value_info("x", T.FLOAT, [1, 3, 32, 32])], [h.make_tensor_value_info("y", T.FLOAT, [1, 10])],
        [w("w1", (16, 3, 3, 3), 0.3), w("b1", (16,), 0.1), w("w2", (32, 16, 3, 3), 0.1), w("b2", (32,), 0.1),
         w("wd", (10, 32), 0.3), w("bd", (10,), 0.1)])
    float_path = os.path.join(tmp, "cnn.onnx")
    onnx.save(h.make_model(g, opset_imports=[h.make_opsetid("", 17)], ir_version=8), float_path)
    q_path = os.path.join(tmp, "cnn_q.onnx")
    quantize_static(float_path, q_path, Reader((1, 3, 32, 32)), quant_format=QuantFormat.QDQ,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, per_channel=True)
    qm = onnx.load(q_path)
    # The output's quantization step: the scale of the last QuantizeLinear.
    last_q = [n for n in qm.graph.node if n.op_type == "QuantizeLinear"][-1]
    scale = next(nh.to_array(t) for t in qm.graph.initializer if t.name == last_q.input[1])
    finish("cnn_static_qdq", q_path, rng.standard_normal((1, 3, 32, 32)).astype(np.float32), float(scale))

    # Dynamic MLP.
    g = h.make_graph([
        h.make_node("MatMul", ["x", "w1"], ["m1"]),
        h.make_node("Add", ["m1", "b1"], ["a1"]),
        h.make_node("Relu", ["a1"], ["r1"]),
        h.make_node("MatMul", ["r1", "w2"], ["m2"]),
        h.make_node("Add", ["m2", "b2"], ["y"]),
    ], "mlp", [h.make_tensor_value_info("x", T.FLOAT, [4, 64])], [h.make_tensor_value_info("y", T.FLOAT, [4, 16])],
        [w("w1", (64, 128), 0.15), w("b1", (128,), 0.1), w("w2", (128, 16), 0.1), w("b2", (16,), 0.1)])
    float_path = os.path.join(tmp, "mlp.onnx")
    onnx.save(h.make_model(g, opset_imports=[h.make_opsetid("", 17)], ir_version=8), float_path)
    q_path = os.path.join(tmp, "mlp_q.onnx")
    quantize_dynamic(float_path, q_path, weight_type=QuantType.QInt8)
    x = rng.standard_normal((4, 64)).astype(np.float32)
    # No fixed output scale (it is computed per call): the step is the float output's range / 255.
    y = run(q_path, x)
    finish("mlp_dynamic", q_path, x, float((y.max() - min(0, y.min())) / 255))
