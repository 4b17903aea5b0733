#!/usr/bin/env python3
"""Decision-tree ensembles as physics analyses train them — scikit-learn models converted by
skl2onnx (TreeEnsembleClassifier/TreeEnsembleRegressor, ai.onnx.ml 3) — with ONNX Runtime's
outputs (one thread) as references:

- gbc_binary: GradientBoostingClassifier, signal vs background (one score, LOGISTIC);
- gbc_multiclass: GradientBoostingClassifier over 3 classes (SOFTMAX);
- rfc_multiclass: RandomForestClassifier over 3 classes (averaged leaf probabilities);
- gbr: GradientBoostingRegressor (base value + trees);
- rfr_two_targets: RandomForestRegressor with two targets;
- rfc_missing: RandomForestClassifier trained and evaluated with NaN features (skl2onnx writes
  nodes_missing_value_tracks_true = 0: a NaN feature takes the false branch).

The batch is fixed to 64 rows in the saved model. Writes each model in the layout of ONNX's
node tests: OUTDIR/NAME/{model.onnx, test_data_set_0/{input_0.pb, output_K.pb}}.
Usage: make_tree_models.py OUTDIR"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np
import onnx
from skl2onnx import to_onnx
from sklearn.datasets import make_classification, make_regression
from sklearn.ensemble import GradientBoostingClassifier, GradientBoostingRegressor, RandomForestClassifier, RandomForestRegressor

import node_test_layout as layout

out_dir = sys.argv[1]
ROWS = 64


def save(name, model, X, test):
    options = {id(model): {"zipmap": False}} if hasattr(model, "predict_proba") else None
    onx = to_onnx(model, X[:1], options=options, target_opset={"": 17, "ai.onnx.ml": 3})
    for v in list(onx.graph.input) + list(onx.graph.output):
        v.type.tensor_type.shape.dim[0].dim_value = ROWS
    onx.ir_version = 10
    onnx.checker.check_model(onx)
    layout.write(out_dir, name, onx, {onx.graph.input[0].name: test})


X, y = make_classification(n_samples=600, n_features=10, n_informative=6, random_state=0)
X = X.astype(np.float32)
save("gbc_binary", GradientBoostingClassifier(n_estimators=40, max_depth=3, random_state=0).fit(X[:500], y[:500]), X, X[500:500 + ROWS])
X3, y3 = make_classification(n_samples=600, n_features=10, n_informative=6, n_classes=3, random_state=1)
X3 = X3.astype(np.float32)
save("gbc_multiclass", GradientBoostingClassifier(n_estimators=20, max_depth=3, random_state=0).fit(X3[:500], y3[:500]), X3, X3[500:500 + ROWS])
save("rfc_multiclass", RandomForestClassifier(n_estimators=15, max_depth=6, random_state=0).fit(X3[:500], y3[:500]), X3, X3[500:500 + ROWS])
Xr, yr = make_regression(n_samples=600, n_features=8, random_state=2)
Xr = Xr.astype(np.float32)
save("gbr", GradientBoostingRegressor(n_estimators=30, max_depth=4, random_state=0).fit(Xr[:500], yr[:500]), Xr, Xr[500:500 + ROWS])
Xm, ym = make_regression(n_samples=600, n_features=8, n_targets=2, random_state=3)
Xm = Xm.astype(np.float32)
save("rfr_two_targets", RandomForestRegressor(n_estimators=10, max_depth=6, random_state=0).fit(Xm[:500], ym[:500]), Xm, Xm[500:500 + ROWS])
Xn = X.copy()
rng = np.random.default_rng(4)
Xn[rng.random(Xn.shape) < 0.15] = np.nan
save("rfc_missing", RandomForestClassifier(n_estimators=10, max_depth=6, random_state=0).fit(Xn[:500], y[:500]), Xn, Xn[500:500 + ROWS])
