#!/bin/sh
# optimizers_vs_torch.sh DUMP_EXE COMPARE_PY OUT_JSON — the
# optimizers_vs_pytorch test: runs the built-in optimizers through their C
# ABI, then recomputes the trajectories with torch.optim. Exit 77 (ctest:
# skipped) when /usr/bin/python3 is missing; the script itself exits 77 when
# torch cannot be imported.
set -u
dump=$1
compare=$2
out=$3
python=${LLMSYS_TORCH_PYTHON:-/usr/bin/python3}
if [ ! -x "$python" ]; then
  echo "optimizers_vs_pytorch: skipped, no $python"
  exit 77
fi
"$dump" "$out" || exit 1
exec "$python" "$compare" "$out"
