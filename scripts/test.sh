#!/usr/bin/env bash
# Sets everything up (Debian packages, .venv) and runs the whole test suite.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/scripts/setup.sh"
[ -x /opt/swift/usr/bin/swift ] && export PATH="/opt/swift/usr/bin:$PATH"
cd "$ROOT"
swift build --build-tests
# XCTest only: the last summary line is the real one (see BUILD_NOTES: Swift Testing would add an empty run).
swift test --skip-build --disable-swift-testing 2>&1 | tee "$ROOT/.build/test.log" | grep -vE "^Test Case '.*' (started|passed)"
exit "${PIPESTATUS[0]}"
