#!/usr/bin/env python3
"""Boosted decision trees and forests of the sizes physics analyses use, for bench_real.py
(--models DIR): scikit-learn models trained on a synthetic signal/background sample and
converted by skl2onnx (TreeEnsembleClassifier/Regressor, zipmap off), batch fixed to 1.

- bdt_800x3: GradientBoostingClassifier, 800 trees of depth 3 over 20 features (TMVA's default
  BDT size);
- bdt_200x6: GradientBoostingClassifier, 200 trees of depth 6;
- forest_100x10: RandomForestClassifier, 100 trees of depth up to 10.

Run in the tests' environment (.venv has scikit-learn and skl2onnx):
    .venv/bin/python benchmarks/make_bdt_models.py /work/bdt
"""
import os
import sys

import numpy as np
import onnx
from skl2onnx import to_onnx
from sklearn.datasets import make_classification
from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
X, y = make_classification(n_samples=20000, n_features=20, n_informative=12, random_state=0)
X = X.astype(np.float32)
for name, model in [("bdt_800x3", GradientBoostingClassifier(n_estimators=800, max_depth=3, random_state=0)),
                    ("bdt_200x6", GradientBoostingClassifier(n_estimators=200, max_depth=6, random_state=0)),
                    ("forest_100x10", RandomForestClassifier(n_estimators=100, max_depth=10, random_state=0, n_jobs=2))]:
    model.fit(X, y)
    onx = to_onnx(model, X[:1], options={id(model): {"zipmap": False}}, target_opset={"": 17, "ai.onnx.ml": 3})
    for v in list(onx.graph.input) + list(onx.graph.output):
        v.type.tensor_type.shape.dim[0].dim_value = 1
    onx.ir_version = 10
    onnx.save(onx, os.path.join(out, name + ".onnx"))
    print(name, sum(len(n.attribute) for n in onx.graph.node), "attributes written")
