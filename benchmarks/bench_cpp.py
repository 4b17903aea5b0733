#!/usr/bin/env python3
"""Baseline benchmark of sofie's emitted C++ against ONNX Runtime at batch 1, single thread.

Models: MLP 784->256->128->10 (ReLU), a PyTorch-style MLP 64->128->128->1 (Gemm transB=1),
a small CNN (3x32x32: conv3x3(16)+ReLU, maxpool, conv3x3(32)+ReLU, maxpool, dense 10), a
MobileNetV2 inverted-residual block at 24x56x56, and ONNX's light_resnet50. For each: time of
`sofie compile`, time of the C++ compile of the emitted header (g++ -O3 -march=native), median
time per inference of the emitted code, and of ONNX Runtime (pip, 1 thread, all graph
optimizations) minus the per-call overhead of an Identity model of the same input size
(measured in the same run and printed), and the ratio.
Usage: .venv/bin/python benchmarks/bench_cpp.py [--sofie .build/release/sofie] [--quick]"""
import argparse
import os
import subprocess
import tempfile
import time
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

import ort_timing
from ort_timing import identity_model

ap = argparse.ArgumentParser()
ap.add_argument("--sofie", default=".build/release/sofie")
ap.add_argument("--cxx", default="g++")
ap.add_argument("--quick", action="store_true", help="fewer repetitions")
args = ap.parse_args()
work = tempfile.mkdtemp(prefix="sofie-bench-")
rng = np.random.default_rng(0)


def save(graph, name):
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    path = os.path.join(work, name + ".onnx")
    onnx.save(m, path)
    return path


def mlp():
    sizes = [784, 256, 128, 10]
    inits, nodes, x = [], [], "x"
    for i, (a, b) in enumerate(zip(sizes, sizes[1:])):
        inits += [numpy_helper.from_array((rng.standard_normal((a, b)) * np.sqrt(2 / a)).astype(np.float32), f"w{i}"),
                  numpy_helper.from_array((rng.standard_normal(b) * 0.1).astype(np.float32), f"b{i}")]
        nodes.append(helper.make_node("Gemm", [x, f"w{i}", f"b{i}"], [f"g{i}"]))
        x = f"g{i}"
        if i < 2:
            nodes.append(helper.make_node("Relu", [x], [f"r{i}"]))
            x = f"r{i}"
    return save(helper.make_graph(nodes, "mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 784])],
                                  [helper.make_tensor_value_info(x, TensorProto.FLOAT, [1, 10])], inits), "mlp")


def cnn():
    def conv(cin, cout):
        return (rng.standard_normal((cout, cin, 3, 3)) * np.sqrt(2 / (cin * 9))).astype(np.float32)
    inits = [numpy_helper.from_array(conv(3, 16), "c1"), numpy_helper.from_array((rng.standard_normal(16) * .1).astype(np.float32), "c1b"),
             numpy_helper.from_array(conv(16, 32), "c2"), numpy_helper.from_array((rng.standard_normal(32) * .1).astype(np.float32), "c2b"),
             numpy_helper.from_array((rng.standard_normal((32 * 8 * 8, 10)) * 0.02).astype(np.float32), "fw"),
             numpy_helper.from_array(np.zeros(10, np.float32), "fb"),
             numpy_helper.from_array(np.array([1, 32 * 8 * 8], np.int64), "flat")]
    nodes = [helper.make_node("Conv", ["x", "c1", "c1b"], ["a1"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["a1"], ["r1"]),
             helper.make_node("MaxPool", ["r1"], ["p1"], kernel_shape=[2, 2], strides=[2, 2]),
             helper.make_node("Conv", ["p1", "c2", "c2b"], ["a2"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["a2"], ["r2"]),
             helper.make_node("MaxPool", ["r2"], ["p2"], kernel_shape=[2, 2], strides=[2, 2]),
             helper.make_node("Reshape", ["p2", "flat"], ["f"]),
             helper.make_node("Gemm", ["f", "fw", "fb"], ["y"])]
    return save(helper.make_graph(nodes, "cnn", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 32, 32])],
                                  [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 10])], inits), "cnn")


def mobilenet_block():
    """MobileNetV2 inverted residual at 56x56: 1x1 expand 24->144 + ReLU6, 3x3 depthwise + ReLU6,
    1x1 project 144->24, residual Add."""
    def w(shape):
        return (rng.standard_normal(shape) * np.sqrt(2 / np.prod(shape[1:]))).astype(np.float32)
    inits = [numpy_helper.from_array(w((144, 24, 1, 1)), "e"), numpy_helper.from_array(np.zeros(144, np.float32), "eb"),
             numpy_helper.from_array(w((144, 1, 3, 3)), "d"), numpy_helper.from_array(np.zeros(144, np.float32), "db"),
             numpy_helper.from_array(w((24, 144, 1, 1)), "p"), numpy_helper.from_array(np.zeros(24, np.float32), "pb"),
             numpy_helper.from_array(np.array(0, np.float32), "lo"), numpy_helper.from_array(np.array(6, np.float32), "hi")]
    nodes = [helper.make_node("Conv", ["x", "e", "eb"], ["a"]),
             helper.make_node("Clip", ["a", "lo", "hi"], ["ar"]),
             helper.make_node("Conv", ["ar", "d", "db"], ["b"], group=144, pads=[1, 1, 1, 1]),
             helper.make_node("Clip", ["b", "lo", "hi"], ["br"]),
             helper.make_node("Conv", ["br", "p", "pb"], ["c"]),
             helper.make_node("Add", ["c", "x"], ["y"])]
    return save(helper.make_graph(nodes, "mbblock", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 24, 56, 56])],
                                  [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 24, 56, 56])], inits), "mbblock")


def linear_mlp():
    """PyTorch-style MLP (nn.Linear exports Gemm with transB=1): 64->128->128->1, ReLU, sigmoid."""
    sizes = [64, 128, 128, 1]
    inits, nodes, x = [], [], "x"
    for i, (a, b) in enumerate(zip(sizes, sizes[1:])):
        inits += [numpy_helper.from_array((rng.standard_normal((b, a)) * np.sqrt(2 / a)).astype(np.float32), f"w{i}"),
                  numpy_helper.from_array((rng.standard_normal(b) * 0.1).astype(np.float32), f"b{i}")]
        nodes.append(helper.make_node("Gemm", [x, f"w{i}", f"b{i}"], [f"g{i}"], transB=1))
        x = f"g{i}"
        nodes.append(helper.make_node("Relu" if i < 2 else "Sigmoid", [x], [f"r{i}"]))
        x = f"r{i}"
    return save(helper.make_graph(nodes, "linear_mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 64])],
                                  [helper.make_tensor_value_info(x, TensorProto.FLOAT, [1, 1])], inits), "linear_mlp")


def identity(shape):
    return identity_model(work, shape)


DRIVER = r'''
#include "%(ns)s.hxx"
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
// Usage: bench [BATCH] - with BATCH, times infer(BATCH, ...) on BATCH rows.
template <class S>
auto infer_rows(S& s, std::size_t b, const float* x, float* y) -> decltype(s.infer(b, x, y)) { return s.infer(b, x, y); }
template <class S>
void infer_rows(S&, ...) {}  // models compiled for a fixed batch
int main(int argc, char** argv) {
    const std::size_t batch = argc > 1 ? std::stoul(argv[1]) : 0;
    %(ns)s::Session s%(ctor)s;
    std::vector<float> x(%(ns)s::Session::kInput0Size * std::max<std::size_t>(batch, 1)),
        y(%(ns)s::Session::kOutput0Size * std::max<std::size_t>(batch, 1));
    for (std::size_t i = 0; i < x.size(); ++i) x[i] = float((i * 7919) %% 1000) / 1000.0f - 0.5f;
    auto once = [&] { if (batch) infer_rows(s, batch, x.data(), y.data()); else s.infer(x.data(), y.data()); };
    for (int i = 0; i < 20; ++i) once();
    auto t0 = std::chrono::steady_clock::now();
    int calib = 0;
    while (std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() < 0.05) { once(); ++calib; }
    std::vector<double> samples;
    for (int k = 0; k < %(samples)d; ++k) {
        auto a = std::chrono::steady_clock::now();
        for (int i = 0; i < calib; ++i) once();
        samples.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - a).count() / calib);
    }
    std::sort(samples.begin(), samples.end());
    std::printf("%%.3f\n", samples[samples.size() / 2]);
}
'''


def ort_time(path, shape, samples):
    return ort_timing.ort_time(path, rng.standard_normal(shape).astype(np.float32), samples)


light = os.path.join(os.path.dirname(onnx.__file__), "backend/test/data/light/light_resnet50.onnx")
models = [("MLP 784-256-128-10", mlp(), [1, 784]), ("Linear MLP 64-128-128-1", linear_mlp(), [1, 64]),
          ("CNN 3x32x32", cnn(), [1, 3, 32, 32]), ("MobileNetV2 block", mobilenet_block(), [1, 24, 56, 56]),
          ("light_resnet50", light, [1, 3, 224, 224])]
samples = 11 if args.quick else 31
print(f"{'model':<24} {'sofie compile':>13} {'C++ compile':>11} {'sofie µs':>10} {'ORT µs':>10} {'ORT-Identity µs':>15} {'ratio':>7}")
for title, path, shape in models:
    ns = os.path.splitext(os.path.basename(path))[0]
    out = os.path.join(work, ns)
    t = time.perf_counter()
    subprocess.run([args.sofie, "compile", path, "-o", out, "--name", ns], check=True, stdout=subprocess.DEVNULL)
    t_sofie = time.perf_counter() - t
    weights = os.path.join(out, ns + ".weights")
    ctor = f'("{weights}")' if os.path.exists(weights) else ""
    with open(os.path.join(out, "bench.cpp"), "w") as f:
        f.write(DRIVER % {"ns": ns, "ctor": ctor, "samples": samples})
    t = time.perf_counter()
    subprocess.run([args.cxx, "-std=c++17", "-O3", "-march=native", "bench.cpp", "-o", "bench"], cwd=out, check=True)
    t_cxx = time.perf_counter() - t
    ours = float(subprocess.run([os.path.join(out, "bench")], check=True, capture_output=True, text=True).stdout)
    theirs = ort_time(path, shape, samples)
    overhead = ort_time(identity(shape), shape, samples)
    net = theirs - overhead
    print(f"{title:<24} {t_sofie:>12.2f}s {t_cxx:>10.2f}s {ours:>10.2f} {theirs:>10.2f} {net:>15.2f} {net / ours:>6.2f}x")
print("ratio = (ONNX Runtime - Identity-model overhead) / sofie; above 1 means the emitted C++ is faster.")

# Batched inference: the PyTorch-style MLP with a symbolic batch, run through infer(batch, ...)
# (16-row block body + single rows) and through ONNX Runtime with the same batch.
m = onnx.load(linear_mlp())
m.graph.input[0].type.tensor_type.shape.dim[0].dim_param = "N"
m.graph.output[0].type.tensor_type.shape.dim[0].dim_param = "N"
dyn = os.path.join(work, "linear_mlp_dyn.onnx")
onnx.save(m, dyn)
out = os.path.join(work, "linear_mlp_dyn")
subprocess.run([args.sofie, "compile", dyn, "-o", out, "--name", "lin"], check=True, stdout=subprocess.DEVNULL)
with open(os.path.join(out, "bench.cpp"), "w") as f:
    f.write(DRIVER % {"ns": "lin", "ctor": "", "samples": samples})
subprocess.run([args.cxx, "-std=c++17", "-O3", "-march=native", "bench.cpp", "-o", "bench"], cwd=out, check=True)
print()
print(f"{'Linear MLP, batch':<24} {'sofie µs':>10} {'µs/row':>8} {'ORT µs':>10} {'ORT-Identity µs':>15} {'ratio':>7}")
for b in [1, 16, 64, 256]:
    ours = float(subprocess.run([os.path.join(out, "bench"), str(b)], check=True, capture_output=True, text=True).stdout)
    theirs = ort_time(dyn, [b, 64], samples)
    overhead = ort_time(identity([b, 64]), [b, 64], samples)
    net = theirs - overhead
    print(f"{'batch ' + str(b):<24} {ours:>10.2f} {ours / b:>8.3f} {theirs:>10.2f} {net:>15.2f} {net / ours:>6.2f}x")
