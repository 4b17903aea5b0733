#!/usr/bin/env python3
"""Summarizes the conformance tests the C++ backend rejects, by reason, from a report written
with SOFIE_CONFORMANCE_VERBOSE=1 (`.build/conformance-report.txt` by default):

    SOFIE_CONFORMANCE_VERBOSE=1 swift test --filter ConformanceTests
    python3 scripts/conformance_rejections.py [REPORT]

Prints a Markdown table: reason, number of tests, the ops involved (as named in the messages)."""
import collections
import re
import sys

path = sys.argv[1] if len(sys.argv) > 1 else ".build/conformance-report.txt"
groups = collections.defaultdict(lambda: [0, collections.Counter()])
for line in open(path):
    m = re.match(r"REJECTED (\S+): (.*)", line)
    if not m:
        continue
    detail = m.group(2)
    op = re.search(r"\(op ([\w.]+)\)|unnamed ([\w.]+) node", detail)
    op = (op.group(1) or op.group(2)) if op else "-"
    if "is not supported by the C++ backend" in detail:
        reason = "op not implemented"
    elif "must be a compile-time constant" in detail:
        reason = "shape/axes/sizes given as a run-time input, no declared output shape (inside expanded functions) or an op without run-time shape inputs yet"
    elif "give it a bound with --dim" in detail:
        reason = "Range, NonZero or Compress over run-time values with no declared output shape (inside expanded functions): compiles with --dim NODE_len=max:BOUND"
    elif "element type" in detail or re.search(r"(quantizing to|dequantizing) (u?int[24]|float4e2m1)", detail):
        t = re.search(r"element type (\w+)|(?:quantizing to|dequantizing) (\w+)", detail)
        t = t.group(1) or t.group(2)
        reason = ("string tensors" if t == "string" else
                  "element types not supported: the sub-byte ones (int4/uint4/int2/uint2/float4e2m1) and float8e8m0")
        op = t
    elif "training mode" in detail:
        reason = "training-mode Dropout (random)"
    elif "string" in detail:
        reason = "string tensors"
    else:
        reason = re.sub(r"'[^']*'", "'…'", detail.split(": ", 1)[-1])[:90]
    g = groups[reason]
    g[0] += 1
    g[1][op] += 1

print("| reason | tests | ops (tests) |")
print("|---|---|---|")
for reason, (count, ops) in sorted(groups.items(), key=lambda kv: -kv[1][0]):
    listed = ", ".join(f"{op} {n}" for op, n in ops.most_common(60))
    more = "" if len(ops) <= 60 else f", … ({len(ops) - 60} more)"
    print(f"| {reason} | {count} | {listed}{more} |")
