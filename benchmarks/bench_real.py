#!/usr/bin/env python3
"""Real-model benchmark: sofie's emitted C++ against ONNX Runtime and OpenVINO, one thread, batch 1.

Run it in the benchmark environment (latest ONNX Runtime and OpenVINO, separate from the tests'
pinned .venv):

    python3 -m venv .venv-bench && .venv-bench/bin/pip install onnxruntime openvino onnx numpy
    .venv-bench/bin/python benchmarks/bench_real.py [--sofie .build/release/sofie] [--rounds 3]
        [--only SUBSTRING] [--models DIR]

Models:
- recurrent: the PyTorch exports committed as test fixtures (Tests/Fixtures/pytorch: LSTM and
  GRU, 2 layers of 32 over 20 steps, TorchScript and dynamo exporters) and larger ONNX
  LSTM/GRU/RNN nodes made here (random weights, the shapes are in the names);
- kernel lines: MatMul with a constant 1024x1024 weight at 1, 16 and 256 rows; 3x3 and 1x1
  convolutions at a ResNet shape and depthwise 3x3 / 5x5-stride-2 at MobileNet/EfficientNet
  shapes, with GFLOP/s and their share of the FMA peak (benchmarks/fma_peak.cpp, measured at the
  start and the end of the run: on a shared host it moves with the other tenants' load);
- every `*.onnx` in --models DIR (full-size models from make_real_models.py, not committed).

For each model and each optimization level (-O3 -march=native and plain -O2) the emitted header
is built with g++ and timed (median per call over `samples` batches of calls that fill 50 ms);
ONNX Runtime (1 intra-op and 1 inter-op thread, all graph optimizations) and OpenVINO
(INFERENCE_NUM_THREADS=1, latency hint, f32) are timed the same way on the same input, and so is
an Identity model of the input's size, whose per-call time (Python and framework overhead) is
subtracted from theirs (OpenVINO's inputs are set once, outside the timed calls). The whole measurement is repeated `--rounds` times, interleaved; the
table gives the range over rounds. ratio = the faster framework's net time / sofie's time
(above 1: sofie is faster). error: each timed executable also runs once in check mode, writing its
inputs and outputs, and ONNX Runtime runs on the same inputs; the column is the largest absolute
difference over the outputs divided by the largest absolute ONNX Runtime output.
"""
import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import onnx

import emitted_timing
from onnx import TensorProto, helper, numpy_helper

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
ap.add_argument("--sofie", default=os.path.join(ROOT, ".build/release/sofie"))
ap.add_argument("--cxx", default="g++")
ap.add_argument("--rounds", type=int, default=3)
ap.add_argument("--samples", type=int, default=15)
ap.add_argument("--only", default="")
ap.add_argument("--models", default="", help="folder of further .onnx models to time")
ap.add_argument("--no-o2", action="store_true", help="time only -O3 -march=native")
ap.add_argument("--peak-gflops", type=float, default=None,
                help="single-core FP32 peak for the kernel lines' share (default: measured in this run by "
                     "benchmarks/fma_peak.cpp, the best of its runs at the start and the end)")
args = ap.parse_args()
work = tempfile.mkdtemp(prefix="sofie-bench-real-")
rng = np.random.default_rng(0)

import onnxruntime as ort  # noqa: E402

try:
    import openvino as ov  # noqa: E402
except ImportError:
    ov = None


def save(graph, name, opset=17):
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    path = os.path.join(work, name + ".onnx")
    onnx.save(m, path)
    return path


def recurrent(op, inp, hidden, steps, directions=1, name=None):
    """One ONNX recurrent node over [steps, 1, inp] with random constant weights and bias."""
    gates = {"LSTM": 4, "GRU": 3, "RNN": 1}[op]
    s = 1 / np.sqrt(hidden)
    w = (rng.uniform(-s, s, (directions, gates * hidden, inp))).astype(np.float32)
    r = (rng.uniform(-s, s, (directions, gates * hidden, hidden))).astype(np.float32)
    b = (rng.uniform(-s, s, (directions, 2 * gates * hidden))).astype(np.float32)
    attrs = {"hidden_size": hidden}
    if directions == 2:
        attrs["direction"] = "bidirectional"
    if op == "GRU":
        attrs["linear_before_reset"] = 1  # as PyTorch and Keras export GRU
    node = helper.make_node(op, ["x", "W", "R", "B"], ["y", "yh"], **attrs)
    g = helper.make_graph([node], op.lower(), [helper.make_tensor_value_info("x", TensorProto.FLOAT, [steps, 1, inp])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [steps, directions, 1, hidden])],
                          [numpy_helper.from_array(w, "W"), numpy_helper.from_array(r, "R"), numpy_helper.from_array(b, "B")])
    return save(g, name or f"{op.lower()}_{inp}x{hidden}x{steps}")


def kernel_matmul(m, k, n):
    """x[m, k] · W[k, n] with a constant W: 2·m·k·n flops."""
    w = (rng.standard_normal((k, n)) / np.sqrt(k)).astype(np.float32)
    g = helper.make_graph([helper.make_node("MatMul", ["x", "W"], ["y"])], "mm", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [m, k])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [m, n])], [numpy_helper.from_array(w, "W")])
    return save(g, f"matmul_{m}x{k}x{n}"), 2.0 * m * k * n


def kernel_conv(c, m, hw, kernel, stride=1, group=1, relu=True):
    """One Conv (+ Relu) on [1, c, hw, hw], 'same' padding: 2·(c/group)·k²·m·out² flops."""
    w = (rng.standard_normal((m, c // group, kernel, kernel)) / np.sqrt(c // group * kernel * kernel)).astype(np.float32)
    b = (rng.standard_normal(m) * 0.1).astype(np.float32)
    out = (hw + stride - 1) // stride
    pad = kernel // 2
    nodes = [helper.make_node("Conv", ["x", "W", "B"], ["c"], kernel_shape=[kernel, kernel], strides=[stride, stride],
                              pads=[pad] * 4, group=group)]
    nodes.append(helper.make_node("Relu", ["c"], ["y"]) if relu else helper.make_node("Identity", ["c"], ["y"]))
    g = helper.make_graph(nodes, "conv", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, c, hw, hw])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, m, out, out])],
                          [numpy_helper.from_array(w, "W"), numpy_helper.from_array(b, "B")])
    kind = "depthwise" if group == c and group > 1 else f"{kernel}x{kernel}"
    return save(g, f"conv_{kind}_{c}to{m}_{hw}_s{stride}"), 2.0 * (c // group) * kernel * kernel * m * out * out


def identity(shape, elem=TensorProto.FLOAT):
    g = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "id", [helper.make_tensor_value_info("x", elem, shape)],
                          [helper.make_tensor_value_info("y", elem, shape)])
    return save(g, f"identity_{elem}_" + "x".join(map(str, shape)))


def median_per_call(fn, samples):
    for _ in range(10):
        fn()
    t0, calib = time.perf_counter(), 0
    while time.perf_counter() - t0 < 0.05:
        fn()
        calib += 1
    res = []
    for _ in range(samples):
        a = time.perf_counter()
        for _ in range(calib):
            fn()
        res.append((time.perf_counter() - a) / calib * 1e6)
    return statistics.median(res)


def ort_time(path, feed, samples):
    o = ort.SessionOptions()
    o.intra_op_num_threads = 1
    o.inter_op_num_threads = 1
    o.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    sess = ort.InferenceSession(path, o, providers=["CPUExecutionProvider"])
    return median_per_call(lambda: sess.run(None, feed), samples)


def ov_time(path, feed, samples):
    if ov is None:
        return None
    core = ov.Core()
    compiled = core.compile_model(path, "CPU", {"INFERENCE_NUM_THREADS": 1, "PERFORMANCE_HINT": "LATENCY",
                                                "INFERENCE_PRECISION_HINT": "f32", "NUM_STREAMS": 1})
    req = compiled.create_infer_request()
    # Inputs set once: passing them to every infer() call costs tens of µs of conversion
    # in Python (noisy, and no C++ user of OpenVINO pays it).
    for i, v in enumerate(feed.values()):
        req.set_input_tensor(i, ov.Tensor(v))
    return median_per_call(lambda: req.infer(), samples)


def build(path, ns, flags):
    return emitted_timing.build(args.sofie, path, ns, flags, work, samples=args.samples, cxx=args.cxx)


def inputs_of(path):
    m = onnx.load(path, load_external_data=False)
    inits = {i.name for i in m.graph.initializer}
    feed = {}
    for i in m.graph.input:
        if i.name in inits:
            continue
        shape = [d.dim_value if d.dim_value > 0 else 1 for d in i.type.tensor_type.shape.dim]
        t = i.type.tensor_type.elem_type
        if t in (onnx.TensorProto.INT64, onnx.TensorProto.INT32):  # token ids, node indices: 0 and 1
            feed[i.name] = (np.arange(int(np.prod(shape))) % 2).reshape(shape).astype(np.int64 if t == onnx.TensorProto.INT64 else np.int32)
        else:
            feed[i.name] = rng.standard_normal(shape).astype(np.float32)
    return feed


models = []
fixtures = os.path.join(ROOT, "Tests/Fixtures/pytorch")
for name in ["lstm_torchscript", "lstm_dynamo", "gru_torchscript", "gru_dynamo"]:
    models.append((f"PyTorch {name} (2x32, 20 steps)", os.path.join(fixtures, name, "model.onnx")))
models += [
    ("ONNX LSTM 64->128, 50 steps", recurrent("LSTM", 64, 128, 50)),
    ("ONNX LSTM 256->256, 25 steps", recurrent("LSTM", 256, 256, 25)),
    ("ONNX GRU bidir 32->64, 100 steps", recurrent("GRU", 32, 64, 100, directions=2)),
    ("ONNX RNN 16->64, 100 steps", recurrent("RNN", 16, 64, 100)),
]
def attention(heads, seq, head, causal=True):
    """One ONNX Attention (opset 23) over 4-D Q, K, V [1, heads, seq, head]: 4·heads·seq²·head flops."""
    ins = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, heads, seq, head]) for n in "qkv"]
    g = helper.make_graph([helper.make_node("Attention", ["q", "k", "v"], ["y"], is_causal=int(causal))], "attn", ins,
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, heads, seq, head])])
    return save(g, f"attention_{heads}x{seq}x{head}", opset=23), 4.0 * heads * seq * seq * head


# Kernel lines: the flops of each, for GFLOP/s and the share of --peak-gflops.
flops = {}
for title, (path, f) in [
    ("kernel MatMul 1x1024x1024", kernel_matmul(1, 1024, 1024)),
    ("kernel MatMul 16x1024x1024", kernel_matmul(16, 1024, 1024)),
    ("kernel MatMul 256x1024x1024", kernel_matmul(256, 1024, 1024)),
    ("kernel Conv 3x3 64->64 56x56 +Relu", kernel_conv(64, 64, 56, 3)),
    ("kernel Conv 1x1 64->256 56x56 +Relu", kernel_conv(64, 256, 56, 1)),
    ("kernel Conv depthwise 3x3 144 56x56 +Relu", kernel_conv(144, 144, 56, 3, group=144)),
    ("kernel Conv depthwise 5x5 s2 240 28x28 +Relu", kernel_conv(240, 240, 28, 5, stride=2, group=240)),
    ("kernel Attention causal 12 heads x 128 tokens x 64", attention(12, 128, 64)),
]:
    models.append((title, path))
    flops[title] = f
if args.models:
    for f in sorted(os.listdir(args.models)):
        if f.endswith(".onnx"):
            models.append((f[:-5], os.path.join(args.models, f)))
models = [m for m in models if args.only.lower() in m[0].lower()]

def check(exe, path, feed):
    """Runs EXE once in check mode (it writes its inputs and outputs) and ONNX Runtime on the
    same inputs; returns the largest |sofie - ORT| over all outputs relative to the largest |ORT|
    (one number that says the timed code computes the model)."""
    with tempfile.TemporaryDirectory() as d:
        subprocess.run([exe, d], check=True)
        ins = {k: np.fromfile(os.path.join(d, f"in{i}.bin"), dtype=v.dtype).reshape(v.shape) for i, (k, v) in enumerate(feed.items())}
        o = ort.SessionOptions()
        o.intra_op_num_threads = 1
        refs = ort.InferenceSession(path, o, providers=["CPUExecutionProvider"]).run(None, ins)
        worst = 0.0
        for i, r in enumerate(refs):
            r = np.asarray(r)
            got = np.fromfile(os.path.join(d, f"out{i}.bin"), dtype=r.dtype).reshape(r.shape)
            if r.dtype.kind in "fc":
                scale = float(np.max(np.abs(r))) if r.size else 0.0
                err = float(np.max(np.abs(got.astype(np.float64) - r))) if r.size else 0.0
                worst = max(worst, err / scale if scale > 0 else err)
            elif not np.array_equal(got, r):
                worst = float("inf")
        return worst


levels = ["-O3 -march=native"] + ([] if args.no_o2 else ["-O2"])


def fma_peak():
    """The widest FMA's GFLOP/s on this core now (benchmarks/fma_peak.cpp)."""
    exe = os.path.join(work, "fma_peak")
    if not os.path.exists(exe):
        subprocess.run([args.cxx, "-O2", "-march=native", os.path.join(ROOT, "benchmarks/fma_peak.cpp"), "-o", exe], check=True)
    out = subprocess.run([exe], check=True, capture_output=True, text=True).stdout
    return float(out.split("\n")[0].split(":")[1].split()[0])


peaks = [fma_peak()] if args.peak_gflops is None and any(t in dict(models) for t in flops) else []
results = {}
for title, path in models:
    ns = "m" + str(abs(hash(title)) % 10**8)
    exes = {lv: build(path, ns, lv) for lv in levels}
    feed = inputs_of(path)
    idpaths = [identity(list(v.shape), helper.np_dtype_to_tensor_dtype(v.dtype)) for v in feed.values()]
    results[title] = {"sofie " + lv: [] for lv in levels} | {"ort": [], "ov": []}
    results[title]["check"] = max(check(exes[lv], path, feed) for lv in levels)
    for _ in range(args.rounds):
        for lv in levels:
            results[title]["sofie " + lv].append(float(subprocess.run([exes[lv]], check=True, capture_output=True, text=True).stdout))
        idfeed = {"x": next(iter(feed.values()))}
        o_over = ort_time(idpaths[0], idfeed, args.samples)
        results[title]["ort"].append(ort_time(path, feed, args.samples) - o_over)
        if ov is not None:
            try:
                v_time = ov_time(path, feed, args.samples)
            except Exception as e:  # e.g. OpenVINO has no conversion for ai.onnx.ml tree ensembles
                print(f"OpenVINO cannot run {title}: {str(e).splitlines()[-1][:120]}", file=sys.stderr)
            else:
                results[title]["ov"].append(v_time - ov_time(idpaths[0], idfeed, args.samples))
    print(f"done: {title}", file=sys.stderr)


def rng_str(v):
    return f"{min(v):.1f}–{max(v):.1f}" if v else "–"


print(f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; ONNX Runtime {ort.__version__}"
      + (f", OpenVINO {ov.__version__ if hasattr(ov, '__version__') else ov.get_version()}" if ov else ", OpenVINO not installed")
      + f"; {args.rounds} rounds; times in µs per inference (framework times net of the Identity model's)")
head = "| model | sofie -O3 -march=native | " + ("sofie -O2 | " if not args.no_o2 else "") + "ONNX Runtime | OpenVINO | ratio (O3) | ratio (O2) | error |"
print(head)
print("|" + "---|" * (head.count("|") - 1))
for title, r in results.items():
    best = [min(a, b) if b is not None else a for a, b in zip(r["ort"], r["ov"] or [None] * len(r["ort"]))]
    o3 = r["sofie -O3 -march=native"]
    ratio3 = [b / s for b, s in zip(best, o3)]
    cols = [title, rng_str(o3)]
    if not args.no_o2:
        cols.append(rng_str(r["sofie -O2"]))
    cols += [rng_str(r["ort"]), rng_str(r["ov"]), f"{min(ratio3):.2f}–{max(ratio3):.2f}×"]
    if not args.no_o2:
        ratio2 = [b / s for b, s in zip(best, r["sofie -O2"])]
        cols.append(f"{min(ratio2):.2f}–{max(ratio2):.2f}×")
    else:
        cols.append("–")
    cols.append(f"{r['check']:.1e}")
    print("| " + " | ".join(cols) + " |")

if any(t in results for t in flops):
    print()
    if args.peak_gflops is None:
        peaks.append(fma_peak())
        args.peak_gflops = max(peaks)
        source = "measured by fma_peak at the start and the end of this run: " + " and ".join(f"{p:.0f}" for p in peaks)
    else:
        source = "--peak-gflops"
    print(f"Kernel lines: GFLOP/s at -O3 -march=native (share of a {args.peak_gflops:.0f} GFLOP/s peak, {source}); best round of each")
    print("| kernel | sofie GFLOP/s | ONNX Runtime GFLOP/s | OpenVINO GFLOP/s |")
    print("|---|---|---|---|")
    for title, f in flops.items():
        if title not in results:
            continue
        r = results[title]

        def g(times):
            t = min(v for v in times if v > 0) if any(v > 0 for v in times) else None
            return f"{f / t / 1e3:.1f} ({100 * f / t / 1e3 / args.peak_gflops:.0f}%)" if t else "–"
        print(f"| {title[7:]} | {g(r['sofie -O3 -march=native'])} | {g(r['ort'])} | {g(r['ov'])} |")
