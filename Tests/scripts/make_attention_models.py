#!/usr/bin/env python3
"""ONNX Attention (opset 23) models at transformer sizes, with ONNX Runtime's outputs (one
thread) as references: causal self-attention prefill (4-D, 8 heads of 64 over 64 tokens),
a prefill after a cached prefix at sizes off every block (causal and not),
grouped-query attention on 3-D inputs with a float mask, a decode step with a KV cache (past
and present outputs), and a padded batch with a boolean key mask, and softcap.

For each model NAME writes OUTDIR/NAME/{model.onnx, in0.bin..., out0.ref..., meta.json}.
Usage: make_attention_models.py OUTDIR"""
import json
import os
import sys

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto as T, helper as h

out_dir = sys.argv[1]
rng = np.random.default_rng(20261203)
NP = {T.FLOAT: np.float32, T.BOOL: np.bool_}


def save(name, inputs, outputs, **attrs):
    """inputs: [(name, elem_type, array or None for an omitted optional input)]; outputs: names ('' = omitted)."""
    node = h.make_node("Attention", [n if a is not None else "" for n, _, a in inputs], outputs, **attrs)
    given = [(n, t, a) for n, t, a in inputs if a is not None]
    g = h.make_graph([node], name, [h.make_tensor_value_info(n, t, list(a.shape)) for n, t, a in given],
                     [h.make_tensor_value_info(o, T.FLOAT, None) for o in outputs if o])
    model = h.make_model(g, opset_imports=[h.make_opsetid("", 23)], ir_version=10)
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    s = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    results = s.run(None, {n: a for n, _, a in given})
    d = os.path.join(out_dir, name)
    os.makedirs(d, exist_ok=True)
    onnx.save(model, os.path.join(d, "model.onnx"))
    for k, (_, _, a) in enumerate(given):
        np.ascontiguousarray(a).tofile(os.path.join(d, f"in{k}.bin"))
    for k, r in enumerate(results):
        np.ascontiguousarray(r).astype(np.float32).tofile(os.path.join(d, f"out{k}.ref"))
    with open(os.path.join(d, "meta.json"), "w") as f:
        json.dump({"inputs": [n for n, _, _ in given],
                   "outputs": [{"dtype": "float32", "shape": list(r.shape)} for r in results]}, f)


def f32(*shape):
    return rng.standard_normal(shape).astype(np.float32)


# Decoder prefill: causal self-attention, 8 heads of 64, 64 tokens.
save("causal_prefill_4d", [("Q", T.FLOAT, f32(1, 8, 64, 64)), ("K", T.FLOAT, f32(1, 8, 64, 64)), ("V", T.FLOAT, f32(1, 8, 64, 64))],
     ["Y"], is_causal=1)

# Causal prefill after a cached prefix, sizes off every block: 21 new tokens over 24 cached (45
# keys: the last sliver of packed keys part padding; query blocks of 16 and 5 rows, each row
# attending up to its position after the prefix), 3 heads of 40; and without the mask (every
# row attends all 45 keys).
for causal in (1, 0):
    save(f"{'causal' if causal else 'full'}_after_prefix_odd_sizes",
         [("Q", T.FLOAT, f32(1, 3, 21, 40)), ("K", T.FLOAT, f32(1, 3, 21, 40)), ("V", T.FLOAT, f32(1, 3, 21, 40)),
          ("attn_mask", T.FLOAT, None), ("past_key", T.FLOAT, f32(1, 3, 24, 40)), ("past_value", T.FLOAT, f32(1, 3, 24, 40))],
         ["Y", "present_key", "present_value"], is_causal=causal)

# Grouped-query attention on 3-D inputs (8 query heads over 2 key/value heads of 32), an
# additive float mask over the keys, an explicit scale.
mask = np.where(rng.random((32, 48)) < 0.2, -np.inf, rng.standard_normal((32, 48)) * 0.1).astype(np.float32)
mask[:, 0] = 0  # every query attends something
save("gqa_3d_float_mask", [("Q", T.FLOAT, f32(2, 32, 8 * 32)), ("K", T.FLOAT, f32(2, 48, 2 * 32)), ("V", T.FLOAT, f32(2, 48, 2 * 32)),
                           ("attn_mask", T.FLOAT, mask)],
     ["Y"], q_num_heads=8, kv_num_heads=2, scale=0.125)

# One decode step with a KV cache: 1 new token over 63 cached, present key/value returned.
save("decode_step_kv_cache", [("Q", T.FLOAT, f32(1, 4, 1, 64)), ("K", T.FLOAT, f32(1, 4, 1, 64)), ("V", T.FLOAT, f32(1, 4, 1, 64)),
                              ("attn_mask", T.FLOAT, None), ("past_key", T.FLOAT, f32(1, 4, 63, 64)), ("past_value", T.FLOAT, f32(1, 4, 63, 64))],
     ["Y", "present_key", "present_value"], is_causal=1)

# A padded batch of two sequences (16 and 11 valid tokens): a boolean key mask broadcast over
# heads (ONNX Runtime wants the query axis spelled out), and the post-softmax probabilities as
# the fourth output. (No softcap here: ONNX Runtime 1.23 applies it after the mask, so masked
# keys get -softcap instead of -inf; the spec, ONNX's reference and sofie apply it before.)
valid = np.zeros((2, 1, 16, 16), np.bool_)
valid[0, ..., :16] = True
valid[1, ..., :11] = True
save("padded_batch_bool_mask", [("Q", T.FLOAT, f32(2, 4, 16, 32)), ("K", T.FLOAT, f32(2, 4, 16, 32)), ("V", T.FLOAT, f32(2, 4, 16, 32)),
                                ("attn_mask", T.BOOL, valid)],
     ["Y", "", "", "qk_matmul_output"], qk_matmul_output_mode=3)

# Softcap without a mask, with the raw scores (mode 0) as the fourth output. (Mode 1, the
# capped scores, is in ONNX's node tests; ONNX Runtime 1.23 returns the raw ones for it.)
save("softcap_scores", [("Q", T.FLOAT, f32(1, 2, 8, 16) * 3), ("K", T.FLOAT, f32(1, 2, 8, 16) * 3), ("V", T.FLOAT, f32(1, 2, 8, 16))],
     ["Y", "", "", "qk_matmul_output"], softcap=5.0, qk_matmul_output_mode=0)
