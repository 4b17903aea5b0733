#!/usr/bin/env bash
# Runs `sofie verify` on every Keras fixture (.keras) and every PyTorch-export fixture, once
# against ONNX Runtime (the project's .venv) and once against sofie's Swift reference
# evaluator (--swift-reference, no Python), and prints a line per failure and the counts.
#   scripts/verify_fixtures.sh [SOFIE]     (default: .build/debug/sofie; about 15 minutes)
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SOFIE="${1:-$ROOT/.build/debug/sofie}"
cd "$ROOT"
status=0
for mode in onnxruntime swift; do
  ok=0; bad=0
  args=(--python "$ROOT/.venv/bin/python")
  [ "$mode" = swift ] && args=(--swift-reference)
  for f in Tests/Fixtures/keras/*/model.keras Tests/Fixtures/pytorch/*/model.onnx; do
    if out="$("$SOFIE" verify "$f" --runs 3 "${args[@]}" 2>&1)"; then
      ok=$((ok + 1))
    else
      bad=$((bad + 1)); status=1
      echo "FAIL ($mode) $f: $(echo "$out" | tail -2 | tr '\n' ' ')"
    fi
  done
  echo "sofie verify against $mode: $ok match, $bad failed"
done
exit $status
