#!/usr/bin/env bash
# Sets everything up and runs sofie on the bundled example model (Examples/models/mlp.onnx):
# prints its summary, and converts it (ONNX -> ONNX round trip, checked by onnx.checker).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/scripts/setup.sh"
[ -x /opt/swift/usr/bin/swift ] && export PATH="/opt/swift/usr/bin:$PATH"
cd "$ROOT"
swift build -c release --product sofie
SOFIE="$(swift build -c release --show-bin-path)/sofie"
OUT="$ROOT/out/demo"
mkdir -p "$OUT"
echo "== sofie inspect Examples/models/mlp.onnx"
"$SOFIE" inspect Examples/models/mlp.onnx
echo
echo "== sofie convert Examples/models/mlp.onnx -o out/demo/mlp.onnx"
"$SOFIE" convert Examples/models/mlp.onnx -o "$OUT/mlp.onnx"
"$ROOT/.venv/bin/python" -c "import onnx, sys; onnx.checker.check_model(onnx.load(sys.argv[1]), full_check=True); print('onnx.checker accepts', sys.argv[1])" "$OUT/mlp.onnx"
