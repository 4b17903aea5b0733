#!/usr/bin/env python3
"""RDataFrameTests' two halves.
  rdf_functor.py models OUTDIR      (project venv) writes sel.onnx (6 features -> 1 score, sigmoid)
                                    and cls.onnx (6 features -> 3 probabilities), batch symbolic,
                                    and dsets.onnx (Deep Sets over n particles of 3 features -> 2
                                    values; n symbolic, compiled with --dim n=max:32)
  rdf_functor.py run OUTDIR         (ROOT venv) writes a 20,000-entry tree with RDataFrame, runs
                                    sel::Functor on float columns and cls::FunctorT<double> on
                                    double columns and dsets::FunctorT<ROOT::RVecF> on a column of
                                    1 to 20 particles per entry through a 2-thread RDataFrame (C++ declared to
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

    # Deep Sets: phi (3 -> 8, ReLU) per particle, summed over the n particles, rho (8 -> 2).
    w1 = numpy_helper.from_array(rng.normal(0, 0.5, (3, 8)).astype(np.float32), "w1")
    b1 = numpy_helper.from_array(rng.normal(0, 0.1, 8).astype(np.float32), "b1")
    w2 = numpy_helper.from_array(rng.normal(0, 0.5, (8, 2)).astype(np.float32), "w2")
    b2 = numpy_helper.from_array(rng.normal(0, 0.1, 2).astype(np.float32), "b2")
    axes = numpy_helper.from_array(np.array([0], dtype=np.int64), "axes")
    nodes = [helper.make_node("MatMul", ["x", "w1"], ["h"]), helper.make_node("Add", ["h", "b1"], ["hb"]),
             helper.make_node("Relu", ["hb"], ["r"]), helper.make_node("ReduceSum", ["r", "axes"], ["s"], keepdims=0),
             helper.make_node("MatMul", ["s", "w2"], ["z"]), helper.make_node("Add", ["z", "b2"], ["y"])]
    g = helper.make_graph(nodes, "dsets", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])], [w1, b1, w2, b2, axes])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.checker.check_model(m)
    onnx.save(m, os.path.join(out, "dsets.onnx"))
elif mode == "run":
    import ROOT
    ROOT.EnableImplicitMT(2)
    tree = os.path.join(out, "events.root")
    df = ROOT.RDataFrame(20000)
    for i in range(6):
        df = df.Define(f"f{i}", f"float(gRandom->Gaus({0.1 * i}, 1.0))").Define(f"d{i}", f"double(f{i})")
    df = df.Define("nparts", "int(1 + gRandom->Integer(20))").Define(
        "parts", "ROOT::RVecF v(3 * nparts); for (auto& e : v) e = float(gRandom->Gaus(0, 1)); return v;")
    df.Snapshot("events", tree)
    ROOT.gInterpreter.Declare(f'#include "{out}/sel.hxx"\n#include "{out}/cls.hxx"\n#include "{out}/dsets.hxx"')
    ROOT.gInterpreter.Declare(f"""
    ROOT::RDF::RNode with_scores(ROOT::RDF::RNode df) {{
        return df.Define("score", sel::Functor("{out}/sel.weights", df.GetNSlots()), {{"f0", "f1", "f2", "f3", "f4", "f5"}})
                 .Define("probs", cls::FunctorT<double>("{out}/cls.weights", df.GetNSlots()), {{"d0", "d1", "d2", "d3", "d4", "d5"}})
                 .Define("dsout", dsets::FunctorT<ROOT::RVecF>("{out}/dsets.weights", df.GetNSlots()), {{"parts"}});
    }}
    """)
    d = ROOT.with_scores(ROOT.RDF.AsRNode(ROOT.RDataFrame("events", tree)))
    cols = d.AsNumpy(["f0", "f1", "f2", "f3", "f4", "f5", "score", "probs", "parts", "dsout"])
    parts = [np.asarray(v, dtype=np.float32) for v in cols["parts"]]
    np.save(os.path.join(out, "parts_count.npy"), np.array([len(p) // 3 for p in parts], dtype=np.int64))
    np.save(os.path.join(out, "parts_flat.npy"), np.concatenate(parts))
    np.save(os.path.join(out, "dsout.npy"), np.array([np.asarray(v) for v in cols["dsout"]], dtype=np.float32))
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
    # Deep Sets: each entry's particles through ONNX Runtime at its own n.
    counts, flat, got = (np.load(os.path.join(out, f)) for f in ("parts_count.npy", "parts_flat.npy", "dsout.npy"))
    s = ort.InferenceSession(os.path.join(out, "dsets.onnx"), providers=["CPUExecutionProvider"])
    start, sizes = 0, set()
    for i, n in enumerate(counts):
        ref = s.run(None, {"x": flat[start:start + 3 * n].reshape(n, 3)})[0]
        start += 3 * n
        sizes.add(int(n))
        if got[i].shape != ref.shape or np.any(np.abs(got[i] - ref) > 1e-5 + 1e-4 * np.abs(ref)):
            ok = False
            print("dsets differs at entry", i, "n", n, got[i], ref)
            break
    if len(counts) != len(x) or len(sizes) < 20:
        ok = False
        print("dsets: entries", len(counts), "sizes", sorted(sizes))
    print("ok" if ok else "mismatch", len(x), "entries")
