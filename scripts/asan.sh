#!/usr/bin/env bash
# Runs sofie built with AddressSanitizer (release, as users run it: the optimizer is what once
# turned an escaping pointer into a read of freed memory) over every model the repository has:
# the PyTorch-export and Keras fixtures, the bundled example, a model whose small-integer and
# float16 initializers sit in int32_data, the hand-made hostile files and the fuzz regressions.
# Every run must end with status 0 or 1 and no sanitizer report. Run by scripts/test.sh after
# the test suite; alone: scripts/asan.sh (needs .venv from scripts/setup.sh).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
[ -x /opt/swift/usr/bin/swift ] && export PATH="/opt/swift/usr/bin:$PATH"
cd "$ROOT"
PY="$ROOT/.venv/bin/python"
BUILD="$ROOT/.build-asan"
echo "asan: building sofie with -sanitize=address (release) into $BUILD"
swift build -c release -Xswiftc -sanitize=address --build-path "$BUILD" --product sofie 2>&1 | tail -1
SOFIE="$BUILD/release/sofie"
# Leak checking is off: a compiler process that exits may keep what it allocated.
export SOFIE_HDF5_TIMEOUT=2
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=0:exitcode=99:allocator_may_return_null=0"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
runs=0
failures=()

# check EXPECTED_STATUSES DESCRIPTION -- sofie arguments...
check() {
  local allowed="$1" what="$2"
  shift 3
  local out status
  runs=$((runs + 1))
  set +e
  out="$(timeout 120 "$SOFIE" "$@" 2>&1)"
  status=$?
  set -e
  if grep -q "AddressSanitizer\|runtime error:" <<<"$out" || [[ " $allowed " != *" $status "* ]]; then
    failures+=("$what (exit $status): $(head -c 3000 <<<"$out")")
  fi
}

# Models that must compile and convert.
models=(Examples/models/mlp.onnx Tests/Fixtures/pytorch/*/model.onnx)
for f in Tests/Fixtures/keras/*/model.keras Tests/Fixtures/keras/*/model_k3.h5 Tests/Fixtures/keras/*/model_k2.h5; do
  [ -f "$f" ] && models+=("$f")
done
for m in "${models[@]}"; do
  key="$(echo "$m" | tr '/.' '__')"
  check "0" "compile $m" -- compile "$m" -o "$WORK/$key" --weights file
  check "0" "convert $m" -- convert "$m" -o "$WORK/$key.onnx"
done

# Initializers in int32_data: read once from freed memory; the bytes must come back intact.
"$PY" Tests/scripts/make_typed_data_model.py "$WORK/typed.onnx"
check "0" "convert typed.onnx" -- convert "$WORK/typed.onnx" -o "$WORK/typed-out.onnx" -O0
printf '%s\t%s\n' "$WORK/typed.onnx" "$WORK/typed-out.onnx" > "$WORK/pairs.tsv"
"$PY" Tests/scripts/check_roundtrip.py "$WORK/pairs.tsv" >/dev/null || failures+=("typed.onnx: initializers changed through convert")

# Hostile files and fuzz regressions: a clear error (1) or success (0), nothing else.
mkdir -p "$WORK/hostile"
"$PY" Tests/scripts/make_hostile_inputs.py "$WORK/hostile" >/dev/null
"$PY" Tests/scripts/make_hostile_keras.py Tests/Fixtures/keras "$WORK/hostile" >/dev/null
mkfifo "$WORK/hostile/fifo.bin"
for f in "$WORK"/hostile/*.onnx "$WORK"/hostile/*.keras "$WORK"/hostile/*.h5 Tests/Fixtures/fuzz-regressions/*; do
  [[ "$f" == *.md ]] && continue
  name="$(basename "$f")"
  check "0 1" "inspect $name" -- inspect "$f"
  check "0 1" "convert $name" -- convert "$f" -o "$WORK/h-$name.onnx"
  check "0 1" "compile $name" -- compile "$f" -o "$WORK/h-$name"
done

if [ "${#failures[@]}" -gt 0 ]; then
  printf 'asan: FAILED %s\n\n' "${failures[@]}" >&2
  echo "asan: ${#failures[@]} of $runs runs failed" >&2
  exit 1
fi
echo "asan: $runs runs of sofie under AddressSanitizer, no report, every status as expected"
