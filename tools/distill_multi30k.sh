#!/usr/bin/env bash
# tools/distill_multi30k.sh — the distilled Multi30k corpus that
# experiments/multi30k_reder_kd.toml trains on (sequence-level knowledge
# distillation, Kim & Rush 2016, in both directions as REDER does).
#
#   tools/distill_multi30k.sh [BUILD_DIR]      # default build/
#
# 1. trains the two transformer teachers unless their runs exist:
#    runs/multi30k_transformer_long (de->en) and
#    runs/multi30k_transformer_long_ende (en->de, the same file with the
#    languages swapped); about 35 minutes each on 2 cores;
# 2. translates the training sources greedily with each teacher;
# 3. writes runs/multi30k_distill/train.{de,en}: the 29,000 real German
#    sentences paired with the de->en teacher's English, then the en->de
#    teacher's German paired with the 29,000 real English sentences.
#
# Validation and test keep their real references. Runs go to runs/ under the
# current directory, which must be the repository root.
set -euo pipefail

build=${1:-build}
llmsys="$build/bin/llmsys"
data=data/multi30k
out=runs/multi30k_distill
[[ -x $llmsys ]] || { echo "distill_multi30k.sh: no $llmsys (build first)" >&2; exit 2; }
[[ -f $data/train.de.gz ]] || { echo "distill_multi30k.sh: run me from the repository root" >&2; exit 2; }

teacher() {  # teacher RUN_NAME SOURCE TARGET SAMPLE_PROMPT
  if [[ -f runs/$1/summary.json ]]; then
    echo "distill_multi30k.sh: using the teacher in runs/$1"
    return
  fi
  "$llmsys" run experiments/multi30k_transformer_long.toml --overwrite \
    --set "experiment.name=$1" --set "data.source_lang=$2" \
    --set "data.target_lang=$3" --set "generate.prompt=$4"
}
teacher multi30k_transformer_long de en \
  "Ein Mann mit einem orangefarbenen Hut starrt auf etwas."
teacher multi30k_transformer_long_ende en de \
  "A man in an orange hat starring at something."

mkdir -p "$out"
"$llmsys" generate runs/multi30k_transformer_long --num-beams 1 \
  --input "$data/train.de.gz" --output "$out/teacher.en"
"$llmsys" generate runs/multi30k_transformer_long_ende --num-beams 1 \
  --input "$data/train.en.gz" --output "$out/teacher.de"

# Write to temporary names first: an interrupted run leaves no half corpus.
{ zcat "$data/train.de.gz"; cat "$out/teacher.de"; } > "$out/train.de.tmp"
{ cat "$out/teacher.en"; zcat "$data/train.en.gz"; } > "$out/train.en.tmp"
mv "$out/train.de.tmp" "$out/train.de"
mv "$out/train.en.tmp" "$out/train.en"
echo "distill_multi30k.sh: wrote $out/train.de and $out/train.en" \
     "($(wc -l < "$out/train.de") pairs)"
