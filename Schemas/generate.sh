#!/usr/bin/env bash
# Regenerates the protobuf-c code for onnx.proto into CSofieONNX/ (committed).
# Needs protoc-c (Debian: protobuf-c-compiler).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
protoc-c --c_out="$tmp" onnx.proto
mkdir -p CSofieONNX/include
mv "$tmp/onnx.pb-c.c" CSofieONNX/onnx.pb-c.c
mv "$tmp/onnx.pb-c.h" CSofieONNX/include/onnx.pb-c.h
echo "generated CSofieONNX/onnx.pb-c.c and CSofieONNX/include/onnx.pb-c.h with $(protoc-c --version | head -1)"
