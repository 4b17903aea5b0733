#!/usr/bin/env python3
"""Replays libFuzzer findings through the sofie CLI, where libhdf5 runs in its isolated child.

    replay_fuzz_findings.py SOFIE TARGET FINDINGS_DIR [--keep DIR]

TARGET is keras (findings are [4-byte length][config.json][model.weights.h5], packed here into
a real .keras zip) or h5 (findings are whole .h5 files) or onnx/compile (.onnx files). Each
replayed file must make `sofie inspect` end with status 0, or status 1 and one error paragraph
starting with the file's path, within 60 s and without a signal. Prints one line per file that
does not, then a summary; exits 1 if any did not.
"""
import os, subprocess, sys, tempfile, zipfile, collections

def keras_parts(b):
    if len(b) < 4:
        return b"", b""
    n = int.from_bytes(b[:4], "little")
    return b[4:4 + n], b[4 + n:]

def main():
    sofie, target, findings = sys.argv[1], sys.argv[2], sys.argv[3]
    keep = sys.argv[sys.argv.index("--keep") + 1] if "--keep" in sys.argv else None
    work = keep or tempfile.mkdtemp(prefix="sofie-replay-")
    os.makedirs(work, exist_ok=True)
    ext = {"keras": ".keras", "h5": ".h5", "onnx": ".onnx", "compile": ".onnx"}[target]
    counts, bad = collections.Counter(), []
    for name in sorted(os.listdir(findings)):
        data = open(os.path.join(findings, name), "rb").read()
        path = os.path.join(work, name + ext)
        if target == "keras":
            config, weights = keras_parts(data)
            with zipfile.ZipFile(path, "w") as z:
                z.writestr("config.json", config)
                z.writestr("model.weights.h5", weights)
        else:
            with open(path, "wb") as f:
                f.write(data)
        try:
            p = subprocess.run([sofie, "inspect", path], capture_output=True, text=True, timeout=60)
        except subprocess.TimeoutExpired:
            bad.append((name, "no answer within 60 s")); counts["hang"] += 1; continue
        err = p.stderr.strip()
        if p.returncode == 0:
            counts["accepted"] += 1
        elif p.returncode == 1 and err.startswith("error: " + path) and err.count("\nerror:") == 0:
            counts["clear error"] += 1
            reason = err.split(":", 3)[-1].strip()
            counts["  libhdf5 crashed/looped (isolated)"] += ("libhdf5" in reason and ("did not finish" in reason or "crashed" in reason or "signal" in reason))
        else:
            bad.append((name, f"status {p.returncode}: {err[:300]}")); counts["bad"] += 1
    for name, why in bad:
        print(f"{name}: {why}")
    print(f"{target}: {sum(v for k, v in counts.items() if not k.startswith(' '))} files:",
          ", ".join(f"{k.strip()} {v}" for k, v in counts.items()))
    return 1 if bad else 0

if __name__ == "__main__":
    sys.exit(main())
