#!/usr/bin/env python3
"""Writes .npy files with NumPy for NPYTests: every dtype sofie reads, big-endian, Fortran order,
format versions 1/2/3, 0-d and empty arrays (NAME.npy), each beside the same elements as raw
C-order little-endian bytes (NAME.bin) and a cases.json of names, dtypes and shapes; and files
that must be refused (bad_*.npy). Usage: make_npy_cases.py OUTDIR"""
import json
import os
import sys
import numpy as np

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
rng = np.random.default_rng(3)
cases = {}


def add(name, a, version=None):
    path = os.path.join(out, name + ".npy")
    if version is None:
        np.save(path, a)
    else:
        with open(path, "wb") as f:
            np.lib.format.write_array(f, a, version=version)
    np.ascontiguousarray(a).astype(a.dtype.newbyteorder("<")).tofile(os.path.join(out, name + ".bin"))
    cases[name] = {"dtype": a.dtype.newbyteorder("<").str, "shape": list(a.shape)}


for dt in ["f2", "f4", "f8", "i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8"]:
    add("c_" + dt, (rng.uniform(-100, 100, (3, 4, 5)) if dt[0] != "u" else rng.uniform(0, 200, (3, 4, 5))).astype(dt))
add("c_b1", rng.uniform(size=(7, 3)) > 0.5)
add("big_f4", rng.normal(size=(4, 6)).astype(">f4"))
add("big_i8", rng.integers(-2**40, 2**40, (5,)).astype(">i8"))
add("fortran_f8", np.asfortranarray(rng.normal(size=(3, 4, 2))))
add("fortran_big_i4", np.asfortranarray(rng.integers(-1000, 1000, (2, 5, 3)).astype(">i4")))
add("scalar_f4", np.array(2.5, dtype=np.float32))
add("empty_f4", np.zeros((0, 3), dtype=np.float32))
add("v2_f4", rng.normal(size=(2, 3)).astype(np.float32), version=(2, 0))
add("v3_i2", rng.integers(-9, 9, (4,)).astype(np.int16), version=(3, 0))
json.dump(cases, open(os.path.join(out, "cases.json"), "w"), indent=1)

# Files to refuse.
np.save(os.path.join(out, "bad_object.npy"), np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
np.save(os.path.join(out, "bad_structured.npy"), np.zeros(3, dtype=[("x", "f4"), ("y", "i4")]))
np.save(os.path.join(out, "bad_complex.npy"), np.zeros(3, dtype=np.complex64))
np.save(os.path.join(out, "bad_string.npy"), np.array(["ab", "c"]))
good = open(os.path.join(out, "c_f4.npy"), "rb").read()
open(os.path.join(out, "bad_truncated.npy"), "wb").write(good[:-7])
open(os.path.join(out, "bad_extra.npy"), "wb").write(good + b"\0\0\0\0")
open(os.path.join(out, "bad_magic.npy"), "wb").write(b"PK\x03\x04" + good[4:])
open(os.path.join(out, "bad_header_cut.npy"), "wb").write(good[:40])


def raw(header, payload=b"", version=1):
    h = header.encode() + b"\n"
    return b"\x93NUMPY" + bytes([version, 0]) + len(h).to_bytes(2, "little") + h + payload


open(os.path.join(out, "bad_huge_shape.npy"), "wb").write(raw("{'descr': '<f4', 'fortran_order': False, 'shape': (4000000000000, 4000000000000), }"))
open(os.path.join(out, "bad_overflow_dim.npy"), "wb").write(raw("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999999999, ), }"))
open(os.path.join(out, "bad_negative.npy"), "wb").write(raw("{'descr': '<f4', 'fortran_order': False, 'shape': (-4, ), }"))
open(os.path.join(out, "bad_no_shape.npy"), "wb").write(raw("{'descr': '<f4', 'fortran_order': False, }"))
open(os.path.join(out, "bad_version.npy"), "wb").write(raw("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", b"\0" * 4, version=9))
open(os.path.join(out, "bad_header_length.npy"), "wb").write(b"\x93NUMPY\x02\x00\xff\xff\xff\x7f{")
print(f"{len(cases)} cases in {out}")
