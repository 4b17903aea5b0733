"""Writes models in the layout of ONNX's node tests, with reference outputs, for the fixture
scripts beside it (make_subbyte_models.py, make_control_flow_models.py, make_op_models.py,
make_tree_models.py): OUTDIR/NAME/{model.onnx, test_data_set_K/{input_J.pb, output_J.pb}}.

References: "ort" — ONNX Runtime on one thread; "onnx" — ONNX's reference evaluator."""
import os

import numpy as np
import onnx
import onnxruntime as ort
from onnx import helper as h, numpy_helper as nh
from onnx.reference import ReferenceEvaluator


def vi(name, t, shape):
    return h.make_tensor_value_info(name, t, shape)


def write(out_dir, name, model, feeds, reference="ort"):
    """Saves `model` and, for each data set in `feeds` (one dict of inputs, or a list of them),
    its inputs and the reference's outputs."""
    if reference == "ort":
        so = ort.SessionOptions()
        so.intra_op_num_threads = 1
        run = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"]).run
    else:
        run = ReferenceEvaluator(model).run
    inits = {i.name for i in model.graph.initializer}
    inputs = [i.name for i in model.graph.input if i.name not in inits]
    outputs = [o.name for o in model.graph.output]
    for n, feed in enumerate(feeds if isinstance(feeds, list) else [feeds]):
        results = run(None, feed)
        d = os.path.join(out_dir, name, f"test_data_set_{n}")
        os.makedirs(d, exist_ok=True)
        for k, i in enumerate(inputs):
            onnx.save_tensor(nh.from_array(feed[i], i), os.path.join(d, f"input_{k}.pb"))
        for k, (o, r) in enumerate(zip(outputs, results)):
            onnx.save_tensor(nh.from_array(np.asarray(r), o), os.path.join(d, f"output_{k}.pb"))
    onnx.save(model, os.path.join(out_dir, name, "model.onnx"))


def save(out_dir, name, nodes, inputs, outputs, feeds, initializers=(), opset=21, ir_version=10, reference="ort"):
    """A one-graph model of `nodes` (checked by onnx.checker with full shape inference), written by `write`."""
    graph = h.make_graph(nodes, name, inputs, outputs, initializer=list(initializers))
    model = h.make_model(graph, opset_imports=[h.make_opsetid("", opset)])
    model.ir_version = ir_version
    onnx.checker.check_model(model, full_check=True)
    write(out_dir, name, model, feeds, reference)
