#!/usr/bin/env python3
"""Builds keras.applications models (Keras 3, weights=None, seeded random weights with
BatchNormalization statistics far from 0/1, small inputs) in the Keras fixture layout: a
folder per model with model.keras (and model_k3.h5 where Keras can write it), input0.bin,
keras3_output0.bin and meta.json. They are too large to commit (7-110 MB each), so they go to
Tests/Fixtures/keras-apps (git-ignored); KerasApplicationTests runs on them when present.
Needs: the Keras venv (pip install keras tensorflow-cpu). Usage:
make_applications.py [OUTDIR] [--only NAME] [--all] [--calibrate]   (--all: all 40 applications,
~11 GB; EfficientNets always, the others with --calibrate, get BatchNormalization statistics
from a calibration batch)"""
import json
import os
import sys
import zlib

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
import numpy as np
import keras

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = sys.argv[1] if len(sys.argv) > 1 and not sys.argv[1].startswith("--") else os.path.join(HERE, "..", "keras-apps")
ONLY = sys.argv[sys.argv.index("--only") + 1] if "--only" in sys.argv else None
A = keras.applications

# name -> (constructor, input side). One or two members of each family by default; --all adds
# the larger ones. Sides are the smallest each family accepts (or a little above).
DEFAULT = {
    "MobileNet": (lambda s: A.MobileNet(input_shape=(s, s, 3), alpha=0.5, weights=None, classes=10, classifier_activation=None), 64),
    "MobileNetV2": (lambda s: A.MobileNetV2(input_shape=(s, s, 3), alpha=0.5, weights=None, classes=10, classifier_activation=None), 64),
    "MobileNetV3Small": (lambda s: A.MobileNetV3Small(input_shape=(s, s, 3), weights=None, classes=10, classifier_activation=None), 64),
    "MobileNetV3Large": (lambda s: A.MobileNetV3Large(input_shape=(s, s, 3), weights=None, classes=10, classifier_activation=None), 64),
    "EfficientNetB0": (lambda s: A.EfficientNetB0(input_shape=(s, s, 3), weights=None, classes=10, classifier_activation=None), 64),
    "EfficientNetV2B0": (lambda s: A.EfficientNetV2B0(input_shape=(s, s, 3), weights=None, classes=10, classifier_activation=None), 64),
    "ResNet50": (lambda s: A.ResNet50(input_shape=(s, s, 3), weights=None, classes=10, classifier_activation=None), 64),
    "ResNet50V2": (lambda s: A.ResNet50V2(input_shape=(s, s, 3), weights=None, classes=10, classifier_activation=None), 64),
    "DenseNet121": (lambda s: A.DenseNet121(input_shape=(s, s, 3), weights=None, classes=10, classifier_activation=None), 64),
    "InceptionV3": (lambda s: A.InceptionV3(input_shape=(s, s, 3), weights=None, classes=10, classifier_activation=None), 75),
    "Xception": (lambda s: A.Xception(input_shape=(s, s, 3), weights=None, classes=10, classifier_activation=None), 71),
    "NASNetMobile": (lambda s: A.NASNetMobile(input_shape=(s, s, 3), weights=None, classes=10, classifier_activation=None), 64),
    "VGG16": (lambda s: A.VGG16(input_shape=(s, s, 3), weights=None, classes=10, classifier_activation=None), 32),
    "ConvNeXtTiny": (lambda s: A.ConvNeXtTiny(input_shape=(s, s, 3), weights=None, classes=10, classifier_activation=None), 32),
    "InceptionResNetV2": (lambda s: A.InceptionResNetV2(input_shape=(s, s, 3), weights=None, classes=10, classifier_activation=None), 75),
}
MORE = {
    "EfficientNetB3": (lambda s: A.EfficientNetB3(input_shape=(s, s, 3), weights=None, classes=10, classifier_activation=None), 64),
    "EfficientNetV2S": (lambda s: A.EfficientNetV2S(input_shape=(s, s, 3), weights=None, classes=10, classifier_activation=None), 64),
    "ResNet101": (lambda s: A.ResNet101(input_shape=(s, s, 3), weights=None, classes=10, classifier_activation=None), 64),
    "ResNet152V2": (lambda s: A.ResNet152V2(input_shape=(s, s, 3), weights=None, classes=10, classifier_activation=None), 64),
    "DenseNet201": (lambda s: A.DenseNet201(input_shape=(s, s, 3), weights=None, classes=10, classifier_activation=None), 64),
    "VGG19": (lambda s: A.VGG19(input_shape=(s, s, 3), weights=None, classes=10, classifier_activation=None), 32),
    "ConvNeXtSmall": (lambda s: A.ConvNeXtSmall(input_shape=(s, s, 3), weights=None, classes=10, classifier_activation=None), 32),
    "NASNetLarge": (lambda s: A.NASNetLarge(input_shape=(s, s, 3), weights=None, classes=10, classifier_activation=None), 64),
}
# The rest of Keras 3's 40 applications (deeper or wider members of the families above).
for _name, _side in [("EfficientNetB1", 64), ("EfficientNetB2", 64), ("EfficientNetB4", 64), ("EfficientNetB5", 64),
                     ("EfficientNetB6", 64), ("EfficientNetB7", 64), ("EfficientNetV2B1", 64), ("EfficientNetV2B2", 64),
                     ("EfficientNetV2B3", 64), ("EfficientNetV2M", 64), ("EfficientNetV2L", 64), ("ResNet152", 64),
                     ("ResNet101V2", 64), ("DenseNet169", 64), ("ConvNeXtBase", 32), ("ConvNeXtLarge", 32), ("ConvNeXtXLarge", 32)]:
    MORE[_name] = ((lambda f: lambda s: f(input_shape=(s, s, 3), weights=None, classes=10, classifier_activation=None))(getattr(A, _name)), _side)


def randomize(model, rng):
    """Keeps Keras' initial kernels (variance-preserving, so activations stay in range through
    deep nets) and draws BatchNormalization statistics, biases and scales away from 0/1."""
    ws = []
    for w in model.weights:
        v = w.numpy()
        n = w.path.split("/")[-1]
        if n == "moving_variance":
            v = rng.uniform(0.5, 1.5, v.shape)
        elif n == "moving_mean":
            v = rng.normal(0.0, 0.2, v.shape)
        elif n == "gamma":
            v = rng.uniform(0.7, 1.3, v.shape)
        elif n in ("beta", "bias") and v.dtype.kind == "f":
            v = rng.normal(0.0, 0.1, v.shape)
        ws.append(np.asarray(v).astype(w.numpy().dtype))
    model.set_weights(ws)


def calibrate(model, rng, side):
    """Sets every BatchNormalization's moving statistics to those of a random calibration
    batch (one training-mode call with momentum 0), as a trained network's would be: with
    drawn statistics the deep EfficientNets' activations grow to 1e4-1e10, where float32
    rounding alone moves Keras' own outputs by as much as any comparison tolerates.
    The batch is 32 and every variance is floored at 0.1: in the last stages the feature map
    is 2x2, a small batch gives some channels a near-zero variance, and dividing by its root
    amplifies float32 rounding until Keras' float32 output is 19-192 tolerances away from its
    own float64 output (EfficientNetB7; float64_reference.py measures this). Trained networks
    do not have such channels; with the floor Keras' float32 is within 0.1 tolerance of
    float64. The last BatchNormalization of each block (`*_project_bn`) then has its scale and
    shift multiplied by 0.3, as trained residual networks' branches are small beside the skip
    path: at Keras' initial kernels the EfficientNetV2 blocks each amplify a perturbation about
    threefold, so that in V2M float32 rounding flips squeeze-and-excitation gates and Keras'
    float32 output lands 1e5 tolerances from its float64 one (0.02 with the damping)."""
    bns = [layer for layer in model._flatten_layers() if isinstance(layer, keras.layers.BatchNormalization)]
    saved = [b.momentum for b in bns]
    for b in bns:
        b.momentum = 0.0
    model(rng.uniform(-1, 1, (32, side, side, 3)).astype(np.float32), training=True)
    for b, m in zip(bns, saved):
        b.momentum = m
        b.moving_variance.assign(np.maximum(b.moving_variance.numpy(), 0.1))
        if b.name.endswith("project_bn"):
            b.gamma.assign(b.gamma.numpy() * 0.3)
            b.beta.assign(b.beta.numpy() * 0.3)


def main():
    table = dict(DEFAULT)
    if "--all" in sys.argv or ONLY in MORE:
        table.update(MORE)
    made = 0
    for name, (build, side) in table.items():
        if ONLY and name != ONLY:
            continue
        rng = np.random.default_rng(zlib.crc32(name.encode()))
        keras.utils.set_random_seed(zlib.crc32(name.encode()) % (1 << 31))
        m = build(side)
        randomize(m, rng)
        if "--calibrate" in sys.argv or name.startswith("EfficientNet"):
            calibrate(m, rng, side)
        x = rng.uniform(-1, 1, (2, side, side, 3)).astype(np.float32)
        y = np.asarray(m(x, training=False))
        d = os.path.join(OUT, name)
        os.makedirs(d, exist_ok=True)
        m.save(os.path.join(d, "model.keras"))
        formats = ["model.keras"]
        try:
            m.save(os.path.join(d, "model_k3.h5"))
            formats.append("model_k3.h5")
        except Exception as e:  # noqa: BLE001 - Keras' legacy writer fails on some configs
            print(f"{name}: Keras 3 cannot write .h5 ({e})")
        x.tofile(os.path.join(d, "input0.bin"))
        y.astype(np.float32).tofile(os.path.join(d, "keras3_output0.bin"))
        meta = {"inputs": [{"shape": list(x.shape), "dtype": "float32"}], "outputs": [list(y.shape)], "formats": formats,
                "keras3": keras.__version__, "application": name, "side": side, "params": int(m.count_params())}
        with open(os.path.join(d, "meta.json"), "w") as f:
            json.dump(meta, f, indent=1)
        made += 1
        print(f"{name}: {side}x{side}, {m.count_params():,} parameters, {', '.join(formats)}")
    print(f"{made} applications in {OUT}")


main()
