#!/usr/bin/env python3
"""Single-op RNN/LSTM/GRU models in the shapes ROOT TMVA SOFIE's own tests use (defaults,
batch-major layout=1, bidirectional, sequence_lens, initial_h/initial_c, peepholes, initial
bias, clip, linear_before_reset, HardSigmoid gates), with seeded random weights and inputs and
ONNX Runtime's outputs (one thread) as references.

For each model NAME writes OUTDIR/NAME/{model.onnx, in0.bin..., out0.ref..., meta.json}.
ONNX Runtime has no batch-major (layout=1) recurrent kernels: those references come from the
same model with layout=0, fed the transposed inputs, with the outputs transposed back.
A model whose `clip` is 0 (TMVA SOFIE writes clip=0 to mean "no clipping"; ONNX Runtime
refuses it) takes its reference from the same model without the attribute.
Usage: make_recurrent_ops.py OUTDIR"""
import json
import os
import sys

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

out_dir = sys.argv[1]
rng = np.random.default_rng(20261201)
GATES = {"RNN": 1, "GRU": 3, "LSTM": 4}


def make(name, op, seq=4, batch=3, inp=5, hidden=6, layout=0, direction="forward", seq_lens=None,
         initial_h=False, initial_c=False, peepholes=False, bias=True, outputs=("Y", "Y_h"), **attrs):
    dirs = 2 if direction == "bidirectional" else 1
    g = GATES[op]

    def x_shape(lay): return [batch, seq, inp] if lay else [seq, batch, inp]
    def state_shape(lay): return [batch, dirs, hidden] if lay else [dirs, batch, hidden]
    def out_shape(o, lay):
        if o == "Y":
            return [batch, seq, dirs, hidden] if lay else [seq, dirs, batch, hidden]
        return state_shape(lay)

    inits = [
        numpy_helper.from_array((rng.standard_normal((dirs, g * hidden, inp)) * 0.4).astype(np.float32), "W"),
        numpy_helper.from_array((rng.standard_normal((dirs, g * hidden, hidden)) * 0.4).astype(np.float32), "R"),
    ]
    node_inputs = ["X", "W", "R"]
    state_inputs = []

    def optional(present, input_name, value=None):
        if not present:
            node_inputs.append("")
            return
        node_inputs.append(input_name)
        if value is not None:
            inits.append(numpy_helper.from_array(value, input_name))
        else:
            state_inputs.append(input_name)

    optional(bias, "B", (rng.standard_normal((dirs, 2 * g * hidden)) * 0.3).astype(np.float32))
    optional(seq_lens is not None, "sequence_lens", np.array(seq_lens or [], dtype=np.int32))
    optional(initial_h, "initial_h")
    if op == "LSTM":
        optional(initial_c, "initial_c")
        optional(peepholes, "P", (rng.standard_normal((dirs, 3 * hidden)) * 0.3).astype(np.float32))
    while node_inputs and node_inputs[-1] == "":
        node_inputs.pop()
    all_outputs = ["Y", "Y_h"] + (["Y_c"] if op == "LSTM" else [])
    node_outputs = [o if o in outputs else "" for o in all_outputs]
    while node_outputs[-1] == "":
        node_outputs.pop()

    def build(attributes, lay):
        node = helper.make_node(op, node_inputs, node_outputs, name=name, hidden_size=hidden, direction=direction,
                                **({"layout": lay} if lay else {}), **attributes)
        graph_inputs = [helper.make_tensor_value_info("X", TensorProto.FLOAT, x_shape(lay))] + \
            [helper.make_tensor_value_info(i, TensorProto.FLOAT, state_shape(lay)) for i in state_inputs]
        graph = helper.make_graph([node], name, graph_inputs,
                                  [helper.make_tensor_value_info(o, TensorProto.FLOAT, out_shape(o, lay)) for o in outputs],
                                  initializer=inits)
        m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])
        m.ir_version = 8
        onnx.checker.check_model(m, full_check=True)
        return m

    model = build(attrs, layout)
    reference = build({k: v for k, v in attrs.items() if not (k == "clip" and v == 0)}, 0)
    d = os.path.join(out_dir, name)
    os.makedirs(d, exist_ok=True)
    onnx.save(model, os.path.join(d, "model.onnx"))
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(reference.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    feeds = {}
    for k, i in enumerate(["X"] + state_inputs):
        x = rng.standard_normal(x_shape(layout) if i == "X" else state_shape(layout)).astype(np.float32)
        x.tofile(os.path.join(d, f"in{k}.bin"))
        # batch-major [batch, seq|dirs, ...] -> sequence-major [seq|dirs, batch, ...]
        feeds[i] = np.ascontiguousarray(x.transpose(1, 0, 2)) if layout else x
    results = sess.run(None, feeds)
    if layout:
        results = [y.transpose(2, 0, 1, 3) if o == "Y" else y.transpose(1, 0, 2) for o, y in zip(outputs, results)]
    for k, y in enumerate(results):
        np.ascontiguousarray(y).tofile(os.path.join(d, f"out{k}.ref"))
    meta = {"inputs": ["X"] + state_inputs,
            "outputs": [{"name": o, "dtype": "float32", "shape": list(y.shape)} for o, y in zip(outputs, results)]}
    with open(os.path.join(d, "meta.json"), "w") as f:
        json.dump(meta, f)


make("rnn_defaults", "RNN", bias=False)
make("rnn_batchwise", "RNN", layout=1, initial_h=True)
make("rnn_bidirectional", "RNN", direction="bidirectional", initial_h=True)
make("rnn_bidirectional_batchwise", "RNN", direction="bidirectional", layout=1)
make("rnn_seq_lens", "RNN", seq_lens=[4, 1, 2], initial_h=True)
make("rnn_reverse_seq_lens", "RNN", direction="reverse", seq_lens=[2, 4, 3])
make("rnn_clip0", "RNN", clip=0.0)
make("lstm_defaults", "LSTM", bias=False, outputs=("Y", "Y_h", "Y_c"))
make("lstm_batchwise", "LSTM", layout=1, initial_h=True, initial_c=True, outputs=("Y", "Y_h", "Y_c"))
make("lstm_bidirectional", "LSTM", direction="bidirectional", outputs=("Y", "Y_h", "Y_c"))
make("lstm_peepholes", "LSTM", peepholes=True, initial_h=True, initial_c=True, outputs=("Y", "Y_h", "Y_c"))
make("lstm_seq_lens_bidirectional", "LSTM", direction="bidirectional", seq_lens=[3, 4, 1], peepholes=True,
     outputs=("Y", "Y_h", "Y_c"))
make("lstm_clip", "LSTM", clip=0.5, outputs=("Y", "Y_h", "Y_c"))
make("lstm_clip0", "LSTM", clip=0.0, outputs=("Y_h",))
make("lstm_hardsigmoid", "LSTM", activations=["HardSigmoid", "Tanh", "Tanh"], activation_alpha=[0.25],
     activation_beta=[0.4], outputs=("Y", "Y_h", "Y_c"))
make("gru_defaults", "GRU", bias=False)
make("gru_batchwise", "GRU", layout=1, initial_h=True)
make("gru_bidirectional", "GRU", direction="bidirectional", initial_h=True)
make("gru_linear_before_reset", "GRU", linear_before_reset=1, seq_lens=[2, 4, 3])
make("gru_reverse_batchwise", "GRU", direction="reverse", layout=1, linear_before_reset=1)
make("gru_clip0", "GRU", clip=0.0, outputs=("Y_h",))
make("gru_clip", "GRU", clip=0.3)
