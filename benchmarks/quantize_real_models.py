#!/usr/bin/env python3
"""int8 versions of the full-size benchmark models: for each NAME.onnx in DIR (from
make_real_models.py), ONNX Runtime's quantize_static in QDQ format (uint8 activations, int8
per-channel weights, calibrated on 8 random inputs) writes DIR/NAME_int8.onnx, which
bench_real.py --models DIR then times next to the float model (ONNX Runtime runs it with its
fused int8 kernels; sofie runs the QDQ graph: constant weights dequantized at compile time,
float convolutions, activations quantized and dequantized between them).

Usage: .venv-bench/bin/python benchmarks/quantize_real_models.py DIR [NAME ...]"""
import os
import sys

import numpy as np
import onnx
from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

folder = sys.argv[1]
names = sys.argv[2:] or [f[:-5] for f in sorted(os.listdir(folder)) if f.endswith(".onnx") and not f.endswith("_int8.onnx")]
rng = np.random.default_rng(0)


class Reader(CalibrationDataReader):
    def __init__(self, model):
        inp = model.graph.input[0]
        shape = [d.dim_value or 1 for d in inp.type.tensor_type.shape.dim]
        self.data = iter([{inp.name: rng.random(shape, dtype=np.float32)} for _ in range(8)])

    def get_next(self):
        return next(self.data, None)


for name in names:
    src = os.path.join(folder, name + ".onnx")
    dst = os.path.join(folder, name + "_int8.onnx")
    quantize_static(src, dst, Reader(onnx.load(src)), quant_format=QuantFormat.QDQ,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, per_channel=True)
    print(name, "->", dst)
