#!/usr/bin/env bash
# tools/distill_multi30k.sh end to end on a miniature: in a scratch folder
# laid out like the repository (data/multi30k with 6 sentence pairs, two
# tiny transformer teachers already trained into runs/), the script must
# skip training, translate both training sides and write the paired corpus
# (6 real German lines + 6 teacher German lines, and the same for English).
# Then its bad-input paths: no build, and a folder that is not the root.
#
#   tests/tools/distill_multi30k_test.sh BUILD_DIR
set -euo pipefail
build=$(cd "$1" && pwd)
src=$(cd "$(dirname "$0")/../.." && pwd)
llmsys=$build/bin/llmsys
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

mkdir -p "$work/repo/data/multi30k" "$work/repo/tools"
cp "$src/tools/distill_multi30k.sh" "$work/repo/tools/"
cd "$work/repo"
printf '%s\n' "ein hund läuft" "eine frau singt" "zwei kinder spielen" \
  "ein mann liest" "die katze schläft" "ein vogel fliegt" | gzip > data/multi30k/train.de.gz
printf '%s\n' "a dog runs" "a woman sings" "two children play" \
  "a man reads" "the cat sleeps" "a bird flies" | gzip > data/multi30k/train.en.gz
for split in val; do
  cp data/multi30k/train.de.gz data/multi30k/$split.de.gz
  cp data/multi30k/train.en.gz data/multi30k/$split.en.gz
done
cat > tiny.toml <<'TOML'
[data]
task = "translation"
train = "data/multi30k/train"
valid = "data/multi30k/val"
tokenizer = "char"
[model]
use = "transformer"
n_encoder_layers = 1
n_decoder_layers = 1
n_embd = 16
n_head = 2
ffn_dim = 32
[train]
steps = 2
batch_size = 2
eval_every = 0
[generate]
max_tokens = 8
TOML
for t in "multi30k_transformer_long de en" "multi30k_transformer_long_ende en de"; do
  set -- $t
  "$llmsys" run tiny.toml --no-progress --set experiment.name=$1 \
    --set data.source_lang=$2 --set data.target_lang=$3 \
    --set generate.samples=0 > /dev/null 2>&1 || fail "training teacher $1"
done

out=$(bash tools/distill_multi30k.sh "$build" 2>&1) || fail "the script failed: $out"
grep -q "using the teacher in runs/multi30k_transformer_long_ende" <<<"$out" ||
  fail "did not reuse the existing teachers: $out"
[[ $(wc -l < runs/multi30k_distill/train.de) == 12 ]] || fail "train.de has $(wc -l < runs/multi30k_distill/train.de) lines"
[[ $(wc -l < runs/multi30k_distill/train.en) == 12 ]] || fail "train.en has $(wc -l < runs/multi30k_distill/train.en) lines"
[[ $(head -1 runs/multi30k_distill/train.de) == "ein hund läuft" ]] || fail "German side does not start with the real sentences"
[[ $(tail -1 runs/multi30k_distill/train.en) == "a bird flies" ]] || fail "English side does not end with the real sentences"
[[ ! -e runs/multi30k_distill/train.de.tmp ]] || fail "a temporary file was left"

# Bad input: no build; not the repository root.
if out=$(bash tools/distill_multi30k.sh "$work/nowhere" 2>&1); then fail "ran without a build"; fi
grep -q "no $work/nowhere/bin/llmsys (build first)" <<<"$out" || fail "wrong message: $out"
cd "$work"
if out=$(bash repo/tools/distill_multi30k.sh "$build" 2>&1); then fail "ran outside the root"; fi
grep -q "run me from the repository root" <<<"$out" || fail "wrong message: $out"
echo "distill_multi30k_test: ok"
