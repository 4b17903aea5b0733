#!/usr/bin/env python3
"""Full-size torchvision models for benchmarks/bench_real.py, exported to ONNX by PyTorch (random
weights, seeded; the speed does not depend on their values, and bench_real.py checks sofie's
outputs against ONNX Runtime's on each). These are the models of issue 10's table at their real
sizes (224x224 inputs, 1000 classes); the test fixtures in Tests/Fixtures/pytorch are the same
architectures made small. Too large to commit (5-330 MB each).

Needs the PyTorch venv (git-ignored):
    python3 -m venv .venv-torch && .venv-torch/bin/pip install torch torchvision onnxscript onnx numpy
Usage:
    .venv-torch/bin/python benchmarks/make_pytorch_models.py OUTDIR [NAME ...] [--dynamo]
then  .venv-bench/bin/python benchmarks/bench_real.py --models OUTDIR
Writes OUTDIR/pytorch_NAME_torchscript.onnx (TorchScript exporter, opset 17), or
pytorch_NAME_dynamo.onnx with --dynamo (the dynamo exporter, PyTorch's default).
"""
import argparse
import os
import warnings

import onnx
import torch
import torch.nn as nn
import torchvision

warnings.filterwarnings("ignore")
V = torchvision.models


class Encoder(nn.Module):
    """A 2-layer TransformerEncoder, d=64, 4 heads, 32 tokens (the issue's small encoder)."""

    def __init__(self):
        super().__init__()
        layer = nn.TransformerEncoderLayer(64, 4, 256, dropout=0.0, batch_first=True)
        self.enc = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)

    def forward(self, x):
        return self.enc(x)


def image():
    return torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(3))


MODELS = {
    "resnet18": (lambda: V.resnet18(), image),
    "mobilenet_v3_small": (lambda: V.mobilenet_v3_small(), image),
    "efficientnet_b0": (lambda: V.efficientnet_b0(), image),
    "squeezenet1_1": (lambda: V.squeezenet1_1(), image),
    "shufflenet_v2_x0_5": (lambda: V.shufflenet_v2_x0_5(), image),
    "regnet_x_400mf": (lambda: V.regnet_x_400mf(), image),
    "vit_b_16": (lambda: V.vit_b_16(), image),
    "transformer_encoder_d64": (Encoder, lambda: torch.randn(1, 32, 64, generator=torch.Generator().manual_seed(3))),
}


def randomize(m):
    """Non-trivial normalization statistics (their defaults are 0/1) and no all-zero heads."""
    g = torch.Generator().manual_seed(11)
    for mod in m.modules():
        if isinstance(mod, nn.Linear) and not mod.weight.detach().any():
            mod.weight.data.copy_(torch.randn(mod.weight.shape, generator=g) * 0.02)
        if isinstance(mod, nn.BatchNorm2d):
            mod.running_mean.copy_(torch.randn(mod.running_mean.shape, generator=g) * 0.1)
            mod.running_var.copy_(torch.rand(mod.running_var.shape, generator=g) * 0.5 + 0.75)


ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
ap.add_argument("out")
ap.add_argument("names", nargs="*", help=f"some of {', '.join(MODELS)} (default: all)")
ap.add_argument("--dynamo", action="store_true", help="use the dynamo exporter instead of TorchScript")
args = ap.parse_args()
os.makedirs(args.out, exist_ok=True)
for name in args.names or MODELS:
    factory, make_input = MODELS[name]
    torch.manual_seed(1)
    module = factory().eval()
    randomize(module)
    x = make_input()
    tag = "dynamo" if args.dynamo else "torchscript"
    path = os.path.join(args.out, f"pytorch_{name}_{tag}.onnx")
    tmp = path + ".tmp.onnx"
    with torch.no_grad():
        if args.dynamo:
            torch.onnx.export(module, (x,), tmp, dynamo=True, external_data=False, input_names=["input0"])
        else:
            # The TorchScript exporter cannot export the fused fast path of nn.MultiheadAttention.
            torch.backends.mha.set_fastpath_enabled(False)
            torch.onnx.export(module, (x,), tmp, dynamo=False, opset_version=17, input_names=["input0"])
            torch.backends.mha.set_fastpath_enabled(True)
    onnx.checker.check_model(tmp)
    os.replace(tmp, path)
    print(f"{path}: {os.path.getsize(path) / 1e6:.1f} MB")
