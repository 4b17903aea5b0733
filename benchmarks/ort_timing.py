"""ONNX Runtime timing shared by the benchmark scripts: one intra- and one inter-op thread, all
graph optimizations, median over `samples` of as many calls as fit in 50 ms; and the Identity
model whose per-call time is the overhead subtracted from ONNX Runtime's."""
import os
import statistics
import time

import onnx
import onnxruntime as ort
from onnx import TensorProto, helper


def ort_time(path, x, samples, warmup=20):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    sess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
    feed = {sess.get_inputs()[0].name: x}
    for _ in range(warmup):
        sess.run(None, feed)
    t0, calib = time.perf_counter(), 0
    while time.perf_counter() - t0 < 0.05:
        sess.run(None, feed)
        calib += 1
    res = []
    for _ in range(samples):
        a = time.perf_counter()
        for _ in range(calib):
            sess.run(None, feed)
        res.append((time.perf_counter() - a) / calib * 1e6)
    return statistics.median(res)


def identity_model(work, shape):
    g = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "id", [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, shape)])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    path = os.path.join(work, "identity_" + "x".join(map(str, shape)) + ".onnx")
    onnx.save(m, path)
    return path
