#!/bin/sh
# gpt_checkpoint_vs_torch.sh LLMSYS SCRIPT WORK_DIR CORPUS — trains a tiny gpt
# with `llmsys run`, then re-evaluates its checkpoint in PyTorch
# (gpt_checkpoint_vs_torch.py). Exit 77 (ctest: skipped) without
# /usr/bin/python3; the script exits 77 without torch.
set -u
llmsys=$1
script=$2
work=$3
corpus=$4
python=${LLMSYS_TORCH_PYTHON:-/usr/bin/python3}
if [ ! -x "$python" ]; then
  echo "gpt_checkpoint_vs_torch: skipped, no $python"
  exit 77
fi
rm -rf "$work"
mkdir -p "$work"
head -c 30000 "$corpus" > "$work/corpus.txt"
cat > "$work/tiny.toml" <<TOML
[experiment]
name = "tiny"
output = "$work/runs"
[data]
train = "$work/corpus.txt"
[model]
use = "gpt"
n_layer = 2
n_head = 2
n_embd = 32
[train]
steps = 30
batch_size = 4
block_size = 16
[evaluate]
batches = 4
[generate]
samples = 0
TOML
"$llmsys" run "$work/tiny.toml" --no-progress || exit 1
exec "$python" "$script" "$work/runs/tiny"
