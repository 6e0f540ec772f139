#!/bin/sh
# safetensors_interop.sh INTEROP_EXE INTEROP_PY WORK_DIR — the
# safetensors_interop test: checkpoints written by llmsys are read by
# PyTorch and the other way round. Exit 77 (ctest: skipped) when
# /usr/bin/python3 is missing; the script itself exits 77 without torch.
set -u
exe=$1
script=$2
work=$3
python=${LLMSYS_TORCH_PYTHON:-/usr/bin/python3}
if [ ! -x "$python" ]; then
  echo "safetensors_interop: skipped, no $python"
  exit 77
fi
rm -rf "$work" && mkdir -p "$work" || exit 1
exec "$python" "$script" "$exe" "$work"
