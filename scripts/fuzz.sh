#!/usr/bin/env bash
# Fuzzes one of sofie's readers with libFuzzer (AddressSanitizer on) for SECONDS seconds.
#   scripts/fuzz.sh TARGET SECONDS [extra libFuzzer flags]
# TARGET: onnx (ONNX reader), compile (ONNX through the whole compile pipeline), keras
# (structure-aware .keras: config.json + the weights' HDF5 snapshot), h5 (a whole-model .h5's
# HDF5 snapshot); keras-libhdf5 and h5-libhdf5 feed the HDF5 files themselves to libhdf5
# in-process. The snapshot is what sofie's process receives from the child that runs libhdf5
# (the CLI never calls libhdf5 itself), so keras and h5 cover all of sofie's own code at full
# speed, and the -libhdf5 targets measure the library the child process contains.
# Builds Fuzz/ into .build-fuzz, seeds .build-fuzz/corpus/TARGET from the repository's fixtures
# and hostile files, and writes any crash/timeout/OOM input to .build-fuzz/findings/TARGET.
# A finding becomes a regression file under Tests/Fixtures/fuzz-regressions (see RELIABILITY.md).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TARGET="${1:?usage: fuzz.sh onnx|compile|keras|h5|keras-libhdf5|h5-libhdf5 SECONDS}"
SECONDS_TO_RUN="${2:?usage: fuzz.sh TARGET SECONDS}"
shift 2
[ -x /opt/swift/usr/bin/swift ] && export PATH="/opt/swift/usr/bin:$PATH"
case "$TARGET" in
  onnx) EXE=FuzzONNX ;; compile) EXE=FuzzCompile ;;
  keras|keras-libhdf5) EXE=FuzzKeras ;; h5|h5-libhdf5) EXE=FuzzH5 ;;
  *) echo "fuzz.sh: unknown target '$TARGET' (onnx, compile, keras, h5, keras-libhdf5, h5-libhdf5)" >&2; exit 2 ;;
esac
BUILD="$ROOT/.build-fuzz"
# The harness links the main package's modules: when their sources change, an incremental build
# has kept harness objects compiled against the old layouts of public structs (seen: a
# stack-buffer-overflow in Compiler.Options.init after the struct grew a field). Build anew
# whenever Sources/ or Fuzz/ differ from the last build (corpus and findings stay).
STAMP="$( (cd "$ROOT" && { git ls-files -s Sources Fuzz; git diff HEAD -- Sources Fuzz; git ls-files -o --exclude-standard -z Sources Fuzz | xargs -0 -r cat; }) | cksum | cut -d' ' -f1)"
if [ "$(cat "$BUILD/sources.stamp" 2>/dev/null)" != "$STAMP" ]; then
  rm -rf "$BUILD/release" "$BUILD"/*-unknown-linux-gnu
fi
mkdir -p "$BUILD"
# No cached build description: files added to the main package since the last build must be seen.
(cd "$ROOT/Fuzz" && swift build -c release -Xswiftc -sanitize=fuzzer,address --build-path "$BUILD" --product "$EXE" --disable-build-manifest-caching >&2)
echo "$STAMP" > "$BUILD/sources.stamp"
CORPUS="$BUILD/corpus/$TARGET"
FINDINGS="$BUILD/findings/$TARGET"
mkdir -p "$CORPUS" "$FINDINGS"
if [ -z "$(ls -A "$CORPUS")" ]; then
  case "$TARGET" in
    keras|h5)
      RAW="$BUILD/corpus/$TARGET-raw"
      "$ROOT/.venv/bin/python" "$ROOT/Tests/scripts/make_fuzz_seeds.py" "$TARGET" "$RAW"
      "$BUILD/release/$EXE" --convert-seeds "$RAW" "$CORPUS" ;;
    *) "$ROOT/.venv/bin/python" "$ROOT/Tests/scripts/make_fuzz_seeds.py" "${TARGET%-libhdf5}" "$CORPUS" ;;
  esac
fi
cd "$FINDINGS"
EXTRA=()
if [ "$TARGET" = keras-libhdf5 ] || [ "$TARGET" = h5-libhdf5 ]; then
  # libhdf5 runs in a forked child in the CLI; here it runs in-process so that ASan and
  # libFuzzer see it. Its own hangs and crashes (found earlier: a vlen/global-heap loop) would
  # stop the run, so each input runs in a forked libFuzzer worker and findings are kept.
  export SOFIE_FUZZ_LIBHDF5=1
  # libhdf5 loops on about one mutated file in a hundred; a 3 s timeout (a valid input takes
  # milliseconds) keeps those from eating the run.
  EXTRA=(-fork=1 -ignore_timeouts=1 -ignore_crashes=1 -ignore_ooms=1 -timeout=3)
fi
exec "$BUILD/release/$EXE" "$CORPUS" -max_total_time="$SECONDS_TO_RUN" -rss_limit_mb=4096 -timeout=10 \
  -max_len=32768 -print_final_stats=1 "${EXTRA[@]}" "$@"
