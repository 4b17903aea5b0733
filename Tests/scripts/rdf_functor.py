#!/usr/bin/env python3
"""RDataFrameTests' two halves.
  rdf_functor.py models OUTDIR      (project venv) writes sel.onnx (6 features -> 1 score, sigmoid)
                                    and cls.onnx (6 features -> 3 probabilities), batch symbolic
  rdf_functor.py run OUTDIR         (ROOT venv) writes a 20,000-entry tree with RDataFrame, runs
                                    sel::Functor on float columns and cls::FunctorT<double> on
                                    double columns through a 2-thread RDataFrame (C++ declared to
                                    cling, as a ROOT macro would), saves features and results (.npy)
  rdf_functor.py check OUTDIR       (project venv) compares them with ONNX Runtime; prints 'ok'"""
import os
import sys
import numpy as np

mode, out = sys.argv[1], sys.argv[2]

if mode == "models":
    import onnx
    from onnx import helper, numpy_helper, TensorProto
    rng = np.random.default_rng(21)

    def mlp(name, classes, final):
        w1 = numpy_helper.from_array(rng.normal(0, 0.5, (6, 16)).astype(np.float32), "w1")
        b1 = numpy_helper.from_array(rng.normal(0, 0.1, 16).astype(np.float32), "b1")
        w2 = numpy_helper.from_array(rng.normal(0, 0.5, (16, classes)).astype(np.float32), "w2")
        b2 = numpy_helper.from_array(rng.normal(0, 0.1, classes).astype(np.float32), "b2")
        nodes = [helper.make_node("Gemm", ["x", "w1", "b1"], ["h"]), helper.make_node("Relu", ["h"], ["r"]),
                 helper.make_node("Gemm", ["r", "w2", "b2"], ["z"]), helper.make_node(final, ["z"], ["y"])]
        g = helper.make_graph(nodes, name, [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 6])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", classes])], [w1, b1, w2, b2])
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
        onnx.checker.check_model(m)
        onnx.save(m, os.path.join(out, name + ".onnx"))

    mlp("sel", 1, "Sigmoid")
    mlp("cls", 3, "Softmax")
elif mode == "run":
    import ROOT
    ROOT.EnableImplicitMT(2)
    tree = os.path.join(out, "events.root")
    df = ROOT.RDataFrame(20000)
    for i in range(6):
        df = df.Define(f"f{i}", f"float(gRandom->Gaus({0.1 * i}, 1.0))").Define(f"d{i}", f"double(f{i})")
    df.Snapshot("events", tree)
    ROOT.gInterpreter.Declare(f'#include "{out}/sel.hxx"\n#include "{out}/cls.hxx"')
    ROOT.gInterpreter.Declare(f"""
    ROOT::RDF::RNode with_scores(ROOT::RDF::RNode df) {{
        return df.Define("score", sel::Functor("{out}/sel.weights", df.GetNSlots()), {{"f0", "f1", "f2", "f3", "f4", "f5"}})
                 .Define("probs", cls::FunctorT<double>("{out}/cls.weights", df.GetNSlots()), {{"d0", "d1", "d2", "d3", "d4", "d5"}});
    }}
    """)
    d = ROOT.with_scores(ROOT.RDF.AsRNode(ROOT.RDataFrame("events", tree)))
    cols = d.AsNumpy(["f0", "f1", "f2", "f3", "f4", "f5", "score", "probs"])
    np.save(os.path.join(out, "features.npy"), np.stack([cols[f"f{i}"] for i in range(6)], axis=1).astype(np.float32))
    np.save(os.path.join(out, "score.npy"), cols["score"].astype(np.float32))
    np.save(os.path.join(out, "probs.npy"), np.array([np.asarray(v) for v in cols["probs"]], dtype=np.float32))
    print("slots", ROOT.GetThreadPoolSize(), "entries", len(cols["score"]), "score type", cols["score"].dtype)
else:
    import onnxruntime as ort
    x = np.load(os.path.join(out, "features.npy"))
    ok = True
    for name, got in [("sel", np.load(os.path.join(out, "score.npy")).reshape(-1, 1)), ("cls", np.load(os.path.join(out, "probs.npy")))]:
        s = ort.InferenceSession(os.path.join(out, name + ".onnx"), providers=["CPUExecutionProvider"])
        ref = s.run(None, {"x": x})[0]
        if got.shape != ref.shape or np.any(np.abs(got - ref) > 1e-5 + 1e-4 * np.abs(ref)):
            ok = False
            print(name, "differs:", got.shape, ref.shape, np.abs(got - ref).max() if got.shape == ref.shape else "")
    print("ok" if ok else "mismatch", len(x), "entries")
