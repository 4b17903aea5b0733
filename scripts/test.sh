#!/usr/bin/env bash
# Sets everything up (Debian packages, .venv) and runs the whole test suite.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/scripts/setup.sh"
[ -x /opt/swift/usr/bin/swift ] && export PATH="/opt/swift/usr/bin:$PATH"
cd "$ROOT"
swift build --build-tests
# XCTest only: the last summary line is the real one (see BUILD_NOTES: Swift Testing would add an empty run).
set +e
swift test --skip-build --disable-swift-testing 2>&1 | tee "$ROOT/.build/test.log" | grep -vE "^Test Case '.*' (started|passed)"
tests="${PIPESTATUS[0]}"
# sofie itself under AddressSanitizer over every model and hostile file (about 4 minutes).
"$ROOT/scripts/asan.sh"
asan=$?
set -e
[ "$tests" -eq 0 ] && [ "$asan" -eq 0 ]
