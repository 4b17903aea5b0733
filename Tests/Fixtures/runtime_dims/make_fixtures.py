#!/usr/bin/env python3
"""Exports small PyTorch models whose set or sequence length is a run-time dimension
(`sofie compile --dim n=max:32`), or whose node and edge counts are (a GNN), through both of
PyTorch's ONNX exporters -- TorchScript (`dynamo=False`, opset 17, dynamic_axes) and dynamo
(dynamic_shapes) -- and writes, per model and exporter, a folder with model.onnx and, for each
case (sizes up to the bounds, 1 and the bound included), seeded inputs case<c>_in<k>.bin and ONNX
Runtime's output case<c>_out0.ref (raw little-endian), plus meta.json (the bounds under the
exporter's symbol names, each case's sizes, dtypes and shapes, versions). Weights are random (seeded): the point is the graphs the exporters
write for a symbolic length.

Also two Keras models with None in the set or time dimension (keras_deepsets, keras_lstm: model.keras,
the references from Keras itself on its PyTorch backend).

Needs a separate environment (git-ignored), e.g.:
  python3 -m venv .venv-torch && .venv-torch/bin/pip install torch onnxscript onnx==1.23.2 onnxruntime==1.23.2 keras
Usage: .venv-torch/bin/python Tests/Fixtures/runtime_dims/make_fixtures.py [OUTDIR] [--only NAME]"""
import json
import os
import shutil
import sys
import warnings

import numpy as np
import onnx
import onnxruntime as ort
import torch
import torch.nn as nn

warnings.filterwarnings("ignore")
torch.backends.mha.set_fastpath_enabled(False)  # the fused encoder kernel has no ONNX export
OUT = sys.argv[1] if len(sys.argv) > 1 and not sys.argv[1].startswith("--") else os.path.dirname(os.path.abspath(__file__))
ONLY = sys.argv[sys.argv.index("--only") + 1] if "--only" in sys.argv else None
BOUND = 32
SIZES = [1, 2, 5, 17, 32]


class DeepSets(nn.Module):
    """phi per element, sum and mean over the set, rho on the pooled features."""
    def __init__(self):
        super().__init__()
        self.phi = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU())
        self.rho = nn.Sequential(nn.Linear(32, 8), nn.ReLU(), nn.Linear(8, 3))

    def forward(self, x):  # x: [1, n, 6]
        h = self.phi(x)
        return self.rho(torch.cat([h.sum(dim=1), h.mean(dim=1)], dim=-1))


class LastStepLSTM(nn.Module):
    """A 2-layer LSTM over n steps; the last step's output through a dense layer."""
    def __init__(self):
        super().__init__()
        self.rnn = nn.LSTM(8, 16, num_layers=2, batch_first=True)
        self.fc = nn.Linear(16, 4)

    def forward(self, x):  # x: [1, n, 8]
        y, _ = self.rnn(x)
        return self.fc(y[:, -1, :])


class LastStepGRU(nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn = nn.GRU(8, 16, batch_first=True)
        self.fc = nn.Linear(16, 4)

    def forward(self, x):
        y, _ = self.rnn(x)
        return self.fc(y[:, -1, :])


class Encoder(nn.Module):
    """nn.TransformerEncoder (2 layers, d=32, 4 heads) over n tokens, a dense layer per token."""
    def __init__(self):
        super().__init__()
        layer = nn.TransformerEncoderLayer(32, 4, dim_feedforward=64, dropout=0.0, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, num_layers=2, enable_nested_tensor=False)
        self.head = nn.Linear(32, 5)

    def forward(self, x):  # x: [1, n, 32]
        return self.head(self.encoder(x))


class PositionalTokens(nn.Module):
    """Tokens plus a learned position embedding of positions 0..n-1 (torch.arange over the
    symbolic length: exported as Range over Shape), a dense layer and softmax over the tokens."""
    def __init__(self):
        super().__init__()
        self.pos = nn.Embedding(BOUND, 16)
        self.proj = nn.Linear(16, 4)

    def forward(self, x):  # x: [1, n, 16]
        positions = torch.arange(x.shape[1])
        h = torch.tanh(x + self.pos(positions))
        return torch.softmax(self.proj(h), dim=1)


class GNN(nn.Module):
    """Message passing over a graph of n nodes and e edges, both symbolic: gather the source
    nodes' features (index_select), transform, sum into the targets (scatter_add), update, read out."""
    def __init__(self):
        super().__init__()
        self.msg = nn.Linear(8, 16)
        self.upd = nn.Linear(24, 16)
        self.out = nn.Linear(16, 3)

    def forward(self, x, edges):  # x: [n, 8] float, edges: [2, e] int64
        m = torch.relu(self.msg(torch.index_select(x, 0, edges[0])))
        agg = torch.zeros(x.shape[0], 16, dtype=x.dtype).scatter_add(0, edges[1].unsqueeze(1).expand(-1, 16), m)
        h = torch.relu(self.upd(torch.cat([x, agg], dim=1)))
        return self.out(h.mean(dim=0, keepdim=True))


def sequence(features):
    """One input [1, n, features]; the cases are n in SIZES, bound BOUND."""
    def inputs(rng, n):
        return [rng.standard_normal((1, n, features)).astype(np.float32)]
    return {"bounds": {"n": BOUND}, "cases": [{"n": L} for L in SIZES], "inputs": inputs,
            "example": lambda: inputs(np.random.default_rng(0), 7),
            "axes": [{1: "n"}]}


def graph():
    """x [n, 8] and edges [2, e] (targets and sources in 0..n-1): n up to 32, e up to 64."""
    def inputs(rng, n, e):
        return [rng.standard_normal((n, 8)).astype(np.float32), rng.integers(0, n, size=(2, e)).astype(np.int64)]
    return {"bounds": {"n": 32, "e": 64}, "cases": [{"n": 1, "e": 1}, {"n": 2, "e": 3}, {"n": 5, "e": 9}, {"n": 17, "e": 40}, {"n": 32, "e": 64}],
            "inputs": inputs, "example": lambda: inputs(np.random.default_rng(0), 7, 11), "axes": [{0: "n"}, {1: "e"}]}


MODELS = {
    "deepsets": (DeepSets, sequence(6)),
    "lstm_steps": (LastStepLSTM, sequence(8)),
    "gru_steps": (LastStepGRU, sequence(8)),
    "transformer_tokens": (Encoder, sequence(32)),
    "positions_tokens": (PositionalTokens, sequence(16)),
    "gnn_nodes_edges": (GNN, graph()),
}


def export(model, spec, path, dynamo):
    example = tuple(torch.from_numpy(a) for a in spec["example"]())
    names = [f"input{k}" for k in range(len(example))]
    if dynamo:
        dims = {s: torch.export.Dim(s, min=1, max=b) for s, b in spec["bounds"].items()}
        shapes = [{axis: dims[s] for axis, s in ax.items()} for ax in spec["axes"]]
        prog = torch.onnx.export(model, example, dynamo=True, dynamic_shapes=tuple(shapes), input_names=names, output_names=["y"])
        prog.save(path)
    else:
        torch.onnx.export(model, example, path, dynamo=False, opset_version=17, input_names=names, output_names=["y"],
                          dynamic_axes={nm: ax for nm, ax in zip(names, spec["axes"])})


def main():
    for name, (cls, spec) in MODELS.items():
        if ONLY and name != ONLY:
            continue
        for dynamo in (False, True):
            torch.manual_seed(7)
            model = cls().eval()
            folder = os.path.join(OUT, f"{name}_{'dynamo' if dynamo else 'torchscript'}")
            os.makedirs(folder, exist_ok=True)
            path = os.path.join(folder, "model.onnx")
            try:
                with torch.no_grad():
                    export(model, spec, path, dynamo)
            except Exception as e:  # an exporter that cannot: reported, skipped
                print(f"{name} ({'dynamo' if dynamo else 'torchscript'}): not exported: {str(e).splitlines()[0]}")
                shutil.rmtree(folder)
                continue
            m = onnx.load(path)
            onnx.save(m, path)  # one file (dynamo may write external data)
            for f in os.listdir(folder):
                if f.endswith(".data") or f.endswith(".bin") or f.endswith(".ref"):
                    os.remove(os.path.join(folder, f))
            # The exporters name the symbols themselves (dynamo: s0, s1...): map ours to theirs.
            symbols = {}
            for k, ax in enumerate(spec["axes"]):
                for axis, ours in ax.items():
                    symbols[ours] = m.graph.input[k].type.tensor_type.shape.dim[axis].dim_param
            sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
            rng = np.random.default_rng(11)
            feeds = lambda xs: {i.name: x for i, x in zip(sess.get_inputs(), xs)}
            try:  # an export that bakes the example's sizes in (TorchScript's attention) fails here
                for case in spec["cases"]:
                    sess.run(None, feeds(spec["inputs"](np.random.default_rng(1), **case)))
            except Exception as e:
                print(f"{os.path.basename(folder)}: exported, but ONNX Runtime cannot run it at other sizes: {str(e).splitlines()[0][:160]}")
                shutil.rmtree(folder)
                continue
            cases = []
            for c, case in enumerate(spec["cases"]):
                xs = spec["inputs"](rng, **case)
                (y,) = sess.run(None, feeds(xs))
                with torch.no_grad():
                    want = model(*[torch.from_numpy(x) for x in xs]).numpy()
                assert np.allclose(y, want, rtol=1e-4, atol=1e-5), f"{name}: ONNX Runtime and PyTorch differ at {case}"
                for k, x in enumerate(xs):
                    x.tofile(os.path.join(folder, f"case{c}_in{k}.bin"))
                y.astype(np.float32).tofile(os.path.join(folder, f"case{c}_out0.ref"))
                cases.append({"values": {symbols[s]: v for s, v in case.items()},
                              "inputs": [{"dtype": str(x.dtype), "shape": list(x.shape)} for x in xs], "out": list(y.shape)})
            meta = {"bounds": {symbols[s]: b for s, b in spec["bounds"].items()}, "cases": cases,
                    "torch": torch.__version__, "onnx": onnx.__version__, "onnxruntime": ort.__version__}
            with open(os.path.join(folder, "meta.json"), "w") as f:
                json.dump(meta, f, indent=1)
            print(f"{os.path.basename(folder)}: symbols {symbols}, ops {sorted({n.op_type for n in m.graph.node})}")


def keras_models():
    """Keras models with None in the set or time dimension (Keras 3 on PyTorch's backend, so the
    same environment serves): sofie names that dimension INPUTNAME_dim1."""
    os.environ.setdefault("KERAS_BACKEND", "torch")
    try:
        import keras
    except ImportError:
        print("keras is not installed: Keras fixtures skipped")
        return
    def deepsets():
        x = keras.Input(shape=(None, 6), name="particles")
        h = keras.layers.Dense(16, activation="relu")(x)
        h = keras.layers.Dense(16, activation="relu")(h)
        pooled = keras.layers.Concatenate()([keras.layers.GlobalAveragePooling1D()(h), keras.layers.GlobalMaxPooling1D()(h)])
        return keras.Model(x, keras.layers.Dense(3)(keras.layers.Dense(8, activation="relu")(pooled))), 6
    def lstm():
        x = keras.Input(shape=(None, 8), name="hits")
        h = keras.layers.LSTM(16, return_sequences=True)(x)
        h = keras.layers.GRU(12)(h)
        return keras.Model(x, keras.layers.Dense(4)(h)), 8
    for name, make in [("keras_deepsets", deepsets), ("keras_lstm", lstm)]:
        if ONLY and name != ONLY:
            continue
        keras.utils.set_random_seed(3)
        model, features = make()
        folder = os.path.join(OUT, name)
        shutil.rmtree(folder, ignore_errors=True)
        os.makedirs(folder)
        model.save(os.path.join(folder, "model.keras"))
        symbol = model.inputs[0].name + "_dim1"
        rng = np.random.default_rng(11)
        cases = []
        for c, L in enumerate(SIZES):
            x = rng.standard_normal((1, L, features)).astype(np.float32)
            y = np.asarray(model.predict(x, verbose=0)).astype(np.float32)
            x.tofile(os.path.join(folder, f"case{c}_in0.bin"))
            y.tofile(os.path.join(folder, f"case{c}_out0.ref"))
            cases.append({"values": {symbol: L}, "inputs": [{"dtype": "float32", "shape": list(x.shape)}], "out": list(y.shape)})
        with open(os.path.join(folder, "meta.json"), "w") as f:
            json.dump({"bounds": {symbol: BOUND}, "cases": cases, "keras": keras.__version__, "backend": keras.backend.backend()}, f, indent=1)
        print(f"{name}: symbol {symbol}")


if __name__ == "__main__":
    main()
    keras_models()
