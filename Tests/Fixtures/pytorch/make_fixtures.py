#!/usr/bin/env python3
"""Exports small real-architecture PyTorch models (random weights, seeded) through both of
PyTorch's ONNX exporters -- TorchScript (`dynamo=False`, opset 17) and dynamo (the default) --
and writes, per model and exporter, a folder with model.onnx, seeded inputs in<k>.bin, the
ONNX Runtime outputs out<k>.ref (raw little-endian) and meta.json (dtypes, shapes, versions).

The architectures are torchvision's / transformers' own classes at reduced widths or input
sizes so the files stay small (the weights are random: the point is the exporters' graphs --
shared initializers through Identity, Shape/Gather/Concat chains, odd attributes -- not
accuracy). A model an exporter cannot export is reported and skipped.

Needs a separate environment (git-ignored), e.g.:
  python3 -m venv .venv-torch && .venv-torch/bin/pip install torch torchvision transformers onnxscript onnx==1.23.2 onnxruntime==1.23.2
Usage: .venv-torch/bin/python Tests/Fixtures/pytorch/make_fixtures.py [OUTDIR] [--only NAME]"""
import json
import os
import sys
import warnings

import numpy as np
import onnx
import onnxruntime as ort
import torch
import torch.nn as nn
import torchvision
from torchvision.models import resnet as tv_resnet

warnings.filterwarnings("ignore")
OUT = sys.argv[1] if len(sys.argv) > 1 and not sys.argv[1].startswith("--") else os.path.dirname(os.path.abspath(__file__))
ONLY = sys.argv[sys.argv.index("--only") + 1] if "--only" in sys.argv else None


def mini_resnet():
    """ResNet-18's layout (stem, 4 stages of 2 BasicBlocks, downsampling 1x1 convs) at widths 8..64."""
    class MiniResNet(tv_resnet.ResNet):
        def __init__(self):
            nn.Module.__init__(self)
            self._norm_layer = nn.BatchNorm2d
            self.inplanes, self.dilation, self.groups, self.base_width = 8, 1, 1, 64
            self.conv1 = nn.Conv2d(3, 8, 7, 2, 3, bias=False)
            self.bn1 = nn.BatchNorm2d(8)
            self.relu = nn.ReLU(inplace=True)
            self.maxpool = nn.MaxPool2d(3, 2, 1)
            self.layer1 = self._make_layer(tv_resnet.BasicBlock, 8, 2)
            self.layer2 = self._make_layer(tv_resnet.BasicBlock, 16, 2, stride=2)
            self.layer3 = self._make_layer(tv_resnet.BasicBlock, 32, 2, stride=2)
            self.layer4 = self._make_layer(tv_resnet.BasicBlock, 64, 2, stride=2)
            self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
            self.fc = nn.Linear(64, 10)
    return MiniResNet()


class LSTMNet(nn.Module):
    def __init__(self, cell):
        super().__init__()
        self.rnn = cell(16, 32, num_layers=2, batch_first=True)
        self.fc = nn.Linear(32, 4)

    def forward(self, x):
        y, _ = self.rnn(x)
        return self.fc(y[:, -1])


class GNN(nn.Module):
    """One message-passing layer: gather source features (index_select), transform, sum into
    targets (scatter_add / index_add), then a readout."""
    def __init__(self):
        super().__init__()
        g = torch.Generator().manual_seed(5)
        self.register_buffer("src", torch.randint(0, 12, (30,), generator=g))
        self.register_buffer("dst", torch.randint(0, 12, (30,), generator=g))
        self.msg = nn.Linear(8, 16)
        self.upd = nn.Linear(8 + 16, 16)
        self.out = nn.Linear(16, 3)

    def forward(self, x):  # x: [12 nodes, 8 features]
        m = torch.relu(self.msg(torch.index_select(x, 0, self.src)))
        agg = torch.zeros(x.shape[0], 16, dtype=x.dtype).scatter_add(0, self.dst.unsqueeze(1).expand(-1, 16), m)
        h = torch.relu(self.upd(torch.cat([x, agg], dim=1)))
        return self.out(h.mean(dim=0, keepdim=True))


class Encoder(nn.Module):
    def __init__(self):
        super().__init__()
        layer = nn.TransformerEncoderLayer(d_model=32, nhead=4, dim_feedforward=64, dropout=0.0, batch_first=True)
        self.enc = nn.TransformerEncoder(layer, num_layers=2, enable_nested_tensor=False)
        self.head = nn.Linear(32, 5)

    def forward(self, x):
        return self.head(self.enc(x))


class Bert(nn.Module):
    def __init__(self):
        super().__init__()
        from transformers import BertConfig, BertModel
        cfg = BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                         intermediate_size=64, max_position_embeddings=32, attn_implementation="eager")
        self.bert = BertModel(cfg)

    def forward(self, ids):
        return self.bert(input_ids=ids).last_hidden_state


def efficientnet_small():
    from torchvision.models.efficientnet import EfficientNet, _efficientnet_conf
    setting, last = _efficientnet_conf("efficientnet_b0", width_mult=0.25, depth_mult=0.34)
    return EfficientNet(setting, 0.2, num_classes=10, last_channel=last)


def regnet_small():
    from torchvision.models.regnet import BlockParams, RegNet
    params = BlockParams.from_init_params(depth=6, w_0=16, w_a=8.0, w_m=2.0, group_width=8)
    return RegNet(params, num_classes=10)


def models():
    """name -> (module factory, example inputs)."""
    f = lambda *s: torch.randn(*s)
    return {
        "resnet18_mini": (mini_resnet, [f(1, 3, 64, 64)]),
        "mobilenet_v3_small": (lambda: torchvision.models.mobilenet_v3_small(num_classes=10, width_mult=0.25), [f(1, 3, 64, 64)]),
        "efficientnet_b0_small": (efficientnet_small, [f(1, 3, 64, 64)]),
        "squeezenet1_1": (lambda: torchvision.models.squeezenet1_1(num_classes=10), [f(1, 3, 64, 64)]),
        "regnet_small": (regnet_small, [f(1, 3, 64, 64)]),
        "shufflenet_v2_x0_5": (lambda: torchvision.models.shufflenet_v2_x0_5(num_classes=10), [f(1, 3, 64, 64)]),
        "vit_tiny": (lambda: torchvision.models.VisionTransformer(image_size=32, patch_size=8, num_layers=2, num_heads=2,
                                                                  hidden_dim=32, mlp_dim=64, num_classes=10), [f(1, 3, 32, 32)]),
        "transformer_encoder": (Encoder, [f(1, 10, 32)]),
        "lstm": (lambda: LSTMNet(nn.LSTM), [f(1, 20, 16)]),
        "gru": (lambda: LSTMNet(nn.GRU), [f(1, 20, 16)]),
        "gnn": (GNN, [f(12, 8)]),
        "bert_tiny": (Bert, [torch.randint(0, 100, (1, 8), generator=torch.Generator().manual_seed(2))]),
    }


def randomize(m):
    """Non-trivial statistics for normalization layers (their defaults are 0/1), no all-zero layers."""
    g = torch.Generator().manual_seed(11)
    for mod in m.modules():
        # Some heads start at zero (torchvision's ViT): the outputs would be all zeros.
        if isinstance(mod, nn.Linear) and not mod.weight.detach().any():
            mod.weight.data.copy_(torch.randn(mod.weight.shape, generator=g) * 0.1)
        if isinstance(mod, nn.BatchNorm2d):
            mod.running_mean.copy_(torch.randn(mod.running_mean.shape, generator=g) * 0.1)
            mod.running_var.copy_(torch.rand(mod.running_var.shape, generator=g) * 0.5 + 0.75)
            mod.weight.data.copy_(torch.rand(mod.weight.shape, generator=g) + 0.5)
            mod.bias.data.copy_(torch.randn(mod.bias.shape, generator=g) * 0.1)


def export(module, inputs, path, dynamo):
    kwargs = dict(input_names=[f"input{k}" for k in range(len(inputs))])
    if dynamo:
        torch.onnx.export(module, tuple(inputs), path, dynamo=True, external_data=False, **kwargs)
    else:
        # The TorchScript exporter cannot export the fused fast path of nn.MultiheadAttention /
        # TransformerEncoderLayer that eval mode takes; the plain path is the same function.
        torch.backends.mha.set_fastpath_enabled(False)
        try:
            torch.onnx.export(module, tuple(inputs), path, dynamo=False, opset_version=17, **kwargs)
        finally:
            torch.backends.mha.set_fastpath_enabled(True)
    onnx.checker.check_model(onnx.load(path), full_check=True)


def main():
    report = []
    for name, (factory, inputs) in models().items():
        if ONLY and name != ONLY:
            continue
        torch.manual_seed(1)
        module = factory().eval()
        randomize(module)
        for exporter in ["torchscript", "dynamo"]:
            tag = f"{name}_{exporter}"
            d = os.path.join(OUT, tag)
            os.makedirs(d, exist_ok=True)
            path = os.path.join(d, "model.onnx")
            try:
                with torch.no_grad():
                    export(module, inputs, path, exporter == "dynamo")
            except Exception as e:  # reported, not fatal: some architectures do not export both ways
                report.append(f"{tag}: export failed: {type(e).__name__}: {str(e).splitlines()[0][:200]}")
                for f in os.listdir(d):
                    os.remove(os.path.join(d, f))
                os.rmdir(d)
                continue
            opts = ort.SessionOptions()
            opts.intra_op_num_threads = 1
            sess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
            feeds = {}
            meta = {"inputs": [], "outputs": [], "exporter": exporter, "torch": torch.__version__,
                    "onnxruntime": ort.__version__, "opset": onnx.load(path).opset_import[0].version}
            for k, (i, x) in enumerate(zip(sess.get_inputs(), inputs)):
                a = x.numpy()
                a.tofile(os.path.join(d, f"in{k}.bin"))
                feeds[i.name] = a
                meta["inputs"].append({"name": i.name, "dtype": str(a.dtype), "shape": list(a.shape)})
            outs = sess.run(None, feeds)
            with torch.no_grad():
                t = module(*inputs)
            t = t if isinstance(t, (tuple, list)) else [t]
            for k, y in enumerate(outs):
                np.ascontiguousarray(y).tofile(os.path.join(d, f"out{k}.ref"))
                meta["outputs"].append({"dtype": str(y.dtype), "shape": list(y.shape)})
                # ONNX Runtime is the reference; PyTorch's own result is recorded as a sanity check.
                meta["outputs"][-1]["max_abs_diff_vs_torch"] = float(np.max(np.abs(y - t[k].numpy()))) if k < len(t) else None
            with open(os.path.join(d, "meta.json"), "w") as fh:
                json.dump(meta, fh, indent=1)
            size = os.path.getsize(path)
            report.append(f"{tag}: {size} bytes, outputs {[o['shape'] for o in meta['outputs']]}, |ort-torch| {[o['max_abs_diff_vs_torch'] for o in meta['outputs']]}")
    print("\n".join(report))


if __name__ == "__main__":
    main()
