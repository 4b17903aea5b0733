#!/usr/bin/env bash
# Sets everything up (Debian packages, .venv) and runs the whole test suite.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/scripts/setup.sh"
[ -x /opt/swift/usr/bin/swift ] && export PATH="/opt/swift/usr/bin:$PATH"
cd "$ROOT"
swift build --build-tests
set +e
# sofie itself under AddressSanitizer over every model and hostile file (its own release build,
# then about 4 minutes of runs), beside the suite: the suite leaves a core idle much of the time
# (single-threaded Swift work between the parallel C++ builds). Its report follows the suite's.
"$ROOT/scripts/asan.sh" > "$ROOT/.build/asan.log" 2>&1 &
asan_pid=$!
# XCTest only: the last summary line is the real one (see BUILD_NOTES: Swift Testing would add an empty run).
swift test --skip-build --disable-swift-testing 2>&1 | tee "$ROOT/.build/test.log" | grep -vE "^Test Case '.*' (started|passed)"
tests="${PIPESTATUS[0]}"
wait "$asan_pid"
asan=$?
cat "$ROOT/.build/asan.log"
set -e
[ "$tests" -eq 0 ] && [ "$asan" -eq 0 ]
