#!/usr/bin/env bash
# Builds sofie in release mode and installs it into PREFIX (default /usr/local):
#   PREFIX/bin/sofie                          the compiler
#   PREFIX/lib/cmake/Sofie/SofieConfig.cmake  find_package(Sofie) -> sofie_add_model(...)
#   PREFIX/lib/cmake/Sofie/SofieModel.cmake
# Usage: scripts/install.sh [PREFIX]     (e.g. scripts/install.sh ~/.local)
# The Swift runtime is linked statically, so the installed sofie runs without the Swift
# toolchain; it needs only the C libraries it reads models with (Debian: libprotobuf-c1,
# libhdf5-103-1, libzip4 — installed with their -dev packages by this script).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PREFIX="${1:-/usr/local}"
SOFIE_SETUP_NO_PYTHON=1 "$ROOT/scripts/setup.sh"
[ -x /opt/swift/usr/bin/swift ] && export PATH="/opt/swift/usr/bin:$PATH"
cd "$ROOT"
# SOFIE_INSTALL_SCRATCH: another build folder than .build (the tests use one of their own).
SCRATCH=()
[ -n "${SOFIE_INSTALL_SCRATCH:-}" ] && SCRATCH=(--scratch-path "$SOFIE_INSTALL_SCRATCH")
swift build -c release --product sofie --static-swift-stdlib "${SCRATCH[@]}"
BIN="$(swift build -c release --static-swift-stdlib "${SCRATCH[@]}" --show-bin-path)/sofie"
install -d "$PREFIX/bin" "$PREFIX/lib/cmake/Sofie"
install -m 755 "$BIN" "$PREFIX/bin/sofie.tmp.$$"
mv -f "$PREFIX/bin/sofie.tmp.$$" "$PREFIX/bin/sofie"
install -m 644 "$ROOT/cmake/SofieModel.cmake" "$ROOT/cmake/SofieConfig.cmake" "$PREFIX/lib/cmake/Sofie/"
echo "installed $PREFIX/bin/sofie ($("$PREFIX/bin/sofie" --version 2>/dev/null || echo 'version unknown'))"
case ":$PATH:" in *":$PREFIX/bin:"*) ;; *) echo "note: $PREFIX/bin is not on your PATH; add it: export PATH=\"$PREFIX/bin:\$PATH\"";; esac
