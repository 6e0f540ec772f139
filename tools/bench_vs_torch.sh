#!/usr/bin/env bash
# Training speed of llmsys vs PyTorch, side by side: for each config (S, M),
# runs `llmsys bench train` (A) and tools/bench_torch.py (B) in the order
# A B A B ... (R rounds), and prints one table: the best of the R runs of
# each, every round's ms/step, and the
# ratio llmsys / torch of tokens/s (> 1: llmsys is faster). S also times
# greedy generation of 256 tokens with the key/value cache.
#
#   tools/bench_vs_torch.sh [BUILD_DIR] [--steps N] [--warmup W] [--threads T]
#                           [--rounds R]
#
# BUILD_DIR defaults to build/. Needs Debian's python3-torch (/usr/bin/python3)
# and python3 for the table. Run it on an idle machine: see
# docs/performance.md, "Training speed vs PyTorch".
set -euo pipefail
cd "$(dirname "$0")/.."
build=build
if [[ $# -gt 0 && $1 != --* ]]; then build=$1; shift; fi
steps=20 warmup=3 threads=$(nproc) rounds=3
usage="--steps N, --warmup W, --threads T, --rounds R"
while [[ $# -gt 0 ]]; do
  case $1 in
    --steps|--warmup|--threads|--rounds)
      [[ $# -ge 2 && $2 =~ ^[0-9]+$ ]] ||
        { echo "error: $1 needs a whole number, got '${2-}' ($usage)" >&2; exit 2; }
      case $1 in
        --steps) steps=$2 ;; --warmup) warmup=$2 ;;
        --threads) threads=$2 ;; --rounds) rounds=$2 ;;
      esac
      shift 2 ;;
    *) echo "error: unknown option '$1' ($usage)" >&2
       exit 2 ;;
  esac
done
(( steps > 0 && rounds > 0 && threads > 0 )) ||
  { echo "error: --steps, --rounds and --threads must be at least 1" >&2; exit 2; }
llmsys=$build/bin/llmsys
[[ -x $llmsys ]] || { echo "error: $llmsys not found: build first, or pass BUILD_DIR" >&2; exit 2; }
/usr/bin/python3 -c 'import torch' 2>/dev/null ||
  { echo "error: /usr/bin/python3 cannot import torch (apt-get install python3-torch)" >&2; exit 2; }

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for cfg in s m; do
  gen=(); [[ $cfg == s ]] && gen=(--generate 256)
  for round in $(seq 1 "$rounds"); do
    echo "[$cfg round $round] llmsys" >&2
    "$llmsys" bench train "experiments/bench/gpt_$cfg.toml" --steps "$steps" \
      --warmup "$warmup" --threads "$threads" "${gen[@]}" --json \
      > "$out/a_${cfg}_$round.json" 2> "$out/a_${cfg}_$round.log" ||
      { cat "$out/a_${cfg}_$round.log" >&2; exit 1; }
    echo "[$cfg round $round] torch" >&2
    /usr/bin/python3 tools/bench_torch.py --config "$cfg" --steps "$steps" \
      --warmup "$warmup" --threads "$threads" \
      --generate "$([[ $cfg == s ]] && echo 256 || echo 0)" --json \
      > "$out/b_${cfg}_$round.json"
  done
done

python3 - "$out" "$threads" "$rounds" <<'PY'
import json, sys
out, threads, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
def load(who, cfg):
    rows = []
    for r in range(1, rounds + 1):
        j = json.load(open(f"{out}/{who}_{cfg}_{r}.json"))
        rows.append(j[0] if isinstance(j, list) else j)
    return rows
print(f"training speed, ABAB (llmsys, torch, llmsys, torch, ...), {threads} threads;"
      f" best of {rounds} (ms/step: median)")
print(f"{'workload':<28}{'llmsys':>14}{'torch':>14}{'ratio':>8}")
for cfg in ("s", "m"):
    a, b = load("a", cfg), load("b", cfg)
    if a[0]["parameters"] != b[0]["parameters"]:
        print(f"warning: {cfg.upper()}: {a[0]['parameters']} parameters vs "
              f"{b[0]['parameters']}", file=sys.stderr)
    ta = max(r["tokens_per_second"] for r in a)
    tb = max(r["tokens_per_second"] for r in b)
    ma = min(r["ms_per_step_median"] for r in a)
    mb = min(r["ms_per_step_median"] for r in b)
    pa = max(r["peak_memory_bytes"] for r in a) / 2**20
    pb = max(r["peak_memory_bytes"] for r in b) / 2**20
    name = cfg.upper()
    print(f"{name + ' train tokens/s':<28}{ta:>14.0f}{tb:>14.0f}{ta / tb:>7.2f}x")
    print(f"{name + ' train ms/step':<28}{ma:>14.1f}{mb:>14.1f}{mb / ma:>7.2f}x")
    print(f"{name + ' peak memory MiB':<28}{pa:>14.0f}{pb:>14.0f}{pb / pa:>7.2f}x")
    if "generate_tokens_per_second" in a[0] and "generate_tokens_per_second" in b[0]:
        ga = max(r["generate_tokens_per_second"] for r in a)
        gb = max(r["generate_tokens_per_second"] for r in b)
        print(f"{name + ' generate tokens/s':<28}{ga:>14.1f}{gb:>14.1f}{ga / gb:>7.2f}x")
    each = lambda rows: ", ".join(f"{r['ms_per_step_median']:.0f}" for r in rows)
    print(f"  {name} ms/step by round: llmsys {each(a)}; torch {each(b)}")
print("ratio: llmsys over torch for tokens/s; torch over llmsys for ms and "
      "memory (> 1: llmsys is better)")
PY
