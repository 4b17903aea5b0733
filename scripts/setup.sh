#!/usr/bin/env bash
# Installs what swift-sofie needs on a Debian machine: the C libraries it links
# (protobuf-c, HDF5, libzip), and a project-local Python virtual environment
# (.venv, git-ignored) with onnx, onnxruntime and numpy for the tests' references.
# Idempotent: does nothing that is already done.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

PKGS=(libprotobuf-c-dev protobuf-c-compiler libhdf5-dev libzip-dev pkg-config g++)
# cmake: the tests build Examples/cmake with cmake/SofieModel.cmake (not needed to install sofie).
# chromium: the tests open `sofie inspect --html` pages in headless Chromium.
[ -n "${SOFIE_SETUP_NO_PYTHON:-}" ] || PKGS+=(cmake chromium)
missing=()
for p in "${PKGS[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "[setup] installing Debian packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if ! command -v swift >/dev/null 2>&1; then
  if [ -x /opt/swift/usr/bin/swift ]; then export PATH="/opt/swift/usr/bin:$PATH"; else
    echo "[setup] error: no Swift toolchain found (need Swift 6; looked on PATH and in /opt/swift)" >&2; exit 1; fi
fi

VENV="$ROOT/.venv"
# SOFIE_SETUP_NO_PYTHON=1 (scripts/install.sh): only what sofie itself needs, no test environment.
[ -n "${SOFIE_SETUP_NO_PYTHON:-}" ] && exit 0
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c "import onnx, onnxruntime, numpy, h5py, sklearn, skl2onnx" >/dev/null 2>&1; then
  echo "[setup] creating Python environment in .venv (onnx, onnxruntime, numpy, h5py, scikit-learn, skl2onnx)"
  if ! python3 -m venv "$VENV" >/dev/null 2>&1; then
    # Debian's system Python keeps venv in a separate package.
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq python3-venv >/dev/null
    rm -rf "$VENV"
    python3 -m venv "$VENV"
  fi
  "$VENV/bin/pip" install -q --disable-pip-version-check -r "$ROOT/scripts/requirements.txt"
fi

# ROOT (PyPI's `root`, with RDataFrame and its C++ interpreter) for RDataFrameTests, in its own
# environment: it is large (about 250 MB) and pins its own numpy.
ROOTVENV="$ROOT/.venv-root"
if [ ! -x "$ROOTVENV/bin/python" ] || ! "$ROOTVENV/bin/python" -c "import ROOT" >/dev/null 2>&1; then
  echo "[setup] creating the ROOT environment in .venv-root (pip install root numpy)"
  rm -rf "$ROOTVENV"
  python3 -m venv "$ROOTVENV"
  "$ROOTVENV/bin/pip" install -q --disable-pip-version-check root==0.1a12 numpy
fi
