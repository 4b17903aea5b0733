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
# The suite runs as two XCTest processes side by side: much of each suite is single-threaded
# (Swift compiles, Python references, one release build at a time), so one process left a core
# idle about half the time. Group A holds the suites that read ONNX's node tests (each process
# writes them once into its own temporary folder) and the release and sanitizer builds; group B
# is every other test. The test bundle runs directly, named tests in hand (two `swift test` would
# wait for each other's lock on .build); XCTest only: Swift Testing would add an empty run.
GROUP_A='^SofieTests\.(ConformanceTests|PassNumericsTests|RoundTripTests|RuntimeDimsTests|GeneratedCodeTests|InstallTests|QuantizedModelTests)/'
swift test list --skip-build 2>/dev/null | grep '/' > "$ROOT/.build/tests.txt"
grep -E "$GROUP_A" "$ROOT/.build/tests.txt" > "$ROOT/.build/tests-a.txt"
grep -vE "$GROUP_A" "$ROOT/.build/tests.txt" > "$ROOT/.build/tests-b.txt"
xctest="$(ls -d "$(swift build --show-bin-path)"/*PackageTests.xctest | head -1)"
"$xctest" "$(paste -sd, "$ROOT/.build/tests-a.txt")" > "$ROOT/.build/test-a.log" 2>&1 &
a_pid=$!
"$xctest" "$(paste -sd, "$ROOT/.build/tests-b.txt")" > "$ROOT/.build/test-b.log" 2>&1 &
b_pid=$!
wait "$a_pid"; a=$?
wait "$b_pid"; b=$?
cat "$ROOT/.build/test-a.log" "$ROOT/.build/test-b.log" > "$ROOT/.build/test.log"
for g in a b; do
  echo "== test group $g (.build/test-$g.log)"
  grep -vE "^Test Case '.*' (started|passed)" "$ROOT/.build/test-$g.log"
done
# Every listed test ran, in one of the groups.
listed="$(wc -l < "$ROOT/.build/tests.txt")"
ran=0
for g in a b; do
  n="$(grep -oE "Executed [0-9]+ tests?" "$ROOT/.build/test-$g.log" | tail -1 | grep -oE "[0-9]+" || echo 0)"
  ran=$((ran + n))
done
counted=0
if [ "$listed" -gt 0 ] && [ "$ran" -eq "$listed" ]; then counted=1; else echo "test groups ran $ran tests; swift test list has $listed" >&2; fi
wait "$asan_pid"
asan=$?
cat "$ROOT/.build/asan.log"
set -e
echo "tests: group A exit $a, group B exit $b, $ran of $listed tests run; asan exit $asan"
[ "$a" -eq 0 ] && [ "$b" -eq 0 ] && [ "$counted" -eq 1 ] && [ "$asan" -eq 0 ]
