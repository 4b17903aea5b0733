#!/usr/bin/env python3
"""Full-size keras.applications models for benchmarks/bench_real.py (random weights; the speed
does not depend on their values): builds each at 224x224x3 (Keras 3, weights=None, and no
softmax on the classifier: with random weights the 1000 probabilities all round to 1/1000 in
every framework, so bench_real.py's error column compared nothing; the logits differ) and saves
OUTDIR/NAME.keras; then converts each to ONNX with sofie (OUTDIR/NAME.onnx) so that ONNX
Runtime, OpenVINO and sofie time the same graph. Too large to commit (14-100 MB each).

Needs the Keras venv (pip install keras tensorflow-cpu h5py). Usage:
    .venv-keras/bin/python benchmarks/make_real_models.py [--sofie .build/debug/sofie] OUTDIR [NAME ...]
then  .venv-bench/bin/python benchmarks/bench_real.py --models OUTDIR
"""
import argparse
import os
import subprocess

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
import keras  # noqa: E402

A = keras.applications
MODELS = {
    "keras_MobileNetV2": lambda: A.MobileNetV2(input_shape=(224, 224, 3), weights=None, classifier_activation=None),
    "keras_MobileNetV3Small": lambda: A.MobileNetV3Small(input_shape=(224, 224, 3), weights=None, classifier_activation=None),
    "keras_EfficientNetB0": lambda: A.EfficientNetB0(input_shape=(224, 224, 3), weights=None, classifier_activation=None),
    "keras_ResNet50": lambda: A.ResNet50(input_shape=(224, 224, 3), weights=None, classifier_activation=None),
}
ap = argparse.ArgumentParser()
ap.add_argument("out")
ap.add_argument("--sofie", default=os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), ".build/debug/sofie"))
ap.add_argument("names", nargs="*")
args = ap.parse_args()
os.makedirs(args.out, exist_ok=True)
for name in args.names or MODELS:
    keras.utils.set_random_seed(0)
    model = MODELS[name]()
    path = os.path.join(args.out, name + ".keras")
    model.save(path)
    subprocess.run([args.sofie, "convert", path, "-o", os.path.join(args.out, name + ".onnx")], check=True)
    print(name, "done")
