#!/usr/bin/env bash
# Scaling on this machine, the quickstart model at one global batch:
#  - data parallel: one process with all the cores against N ranks
#    (mpirun -np N) sharing them, the all-reduce after backward and
#    overlapped with it;
#  - pipeline parallel over N stages: naive model parallelism (one
#    micro-batch: one stage busy at a time) against GPipe with 4 and 8
#    micro-batches, on the same split.
# Prints two markdown tables (tokens/s, wall time of the training steps,
# speed-up, final training loss) for docs/distributed.md.
#
#   tools/bench_distributed.sh [BUILD_DIR] [--steps S] [--ranks N] [--batch B]
#
# BUILD_DIR defaults to build/; S = 200 steps, N = 2 ranks, B = 12 sequences
# in the global batch (B / N per rank). Run it on an idle machine.
set -euo pipefail
cd "$(dirname "$0")/.."
build=build
if [[ $# -gt 0 && $1 != --* ]]; then build=$1; shift; fi
steps=200 ranks=2 batch=12
while [[ $# -gt 0 ]]; do
  case $1 in
    --steps|--ranks|--batch)
      [[ $# -ge 2 && $2 =~ ^[1-9][0-9]*$ ]] ||
        { echo "error: $1 needs a positive whole number, got '${2-}'" >&2; exit 2; }
      case $1 in --steps) steps=$2 ;; --ranks) ranks=$2 ;; --batch) batch=$2 ;; esac
      shift 2 ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "error: unknown option '$1' (--steps, --ranks, --batch)" >&2; exit 2 ;;
  esac
done
if ((batch % ranks != 0)); then
  echo "error: --batch $batch is not a multiple of --ranks $ranks" >&2
  exit 2
fi
llmsys=$build/bin/llmsys
[[ -x $llmsys ]] || { echo "error: no $llmsys (build first: tools/setup.sh)" >&2; exit 2; }
command -v mpirun >/dev/null ||
  { echo "error: no mpirun (tools/setup.sh installs Open MPI)" >&2; exit 2; }
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
cores=$(nproc)
common=(--no-progress --overwrite --set experiment.output="$out"
        --set train.steps="$steps" --set train.eval_every=0
        --set train.eval_batches=1 --set generate.samples=0)
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_rmaps_base_oversubscribe=1

# The quickstart without its [[evaluate]] entries (training speed only).
sed '/^\[\[evaluate\]\]/,$d' experiments/quickstart.toml > "$out/bench.toml"
sed -i "s|^train = \"data/|train = \"$PWD/data/|" "$out/bench.toml"

# run NAME COMMAND...: its output to $out/NAME.log, shown if it fails.
run() {
  local name=$1
  shift
  "$@" >"$out/$name.log" 2>&1 || { cat "$out/$name.log" >&2; exit 1; }
}
run one "$llmsys" run "$out/bench.toml" "${common[@]}" \
  --set experiment.name=one --set train.batch_size="$batch" \
  --set train.threads="$cores"
run ranks mpirun -np "$ranks" "$llmsys" run "$out/bench.toml" "${common[@]}" \
  --set experiment.name=ranks --set train.batch_size=$((batch / ranks))
run overlap mpirun -np "$ranks" "$llmsys" run "$out/bench.toml" \
  "${common[@]}" --set experiment.name=overlap \
  --set train.batch_size=$((batch / ranks)) --set distributed.overlap=true

for micro in 1 4 8; do
  run "pipe$micro" mpirun -np "$ranks" "$llmsys" run "$out/bench.toml" \
    "${common[@]}" --set experiment.name="pipe$micro" \
    --set train.batch_size="$batch" \
    --set distributed.pipeline_stages="$ranks" \
    --set distributed.micro_batches="$micro"
done

python3 - "$out" "$ranks" "$cores" "$batch" "$steps" <<'EOF'
import json, sys
out, ranks, cores, batch, steps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
rows = [("1 process", "one", f"{cores} threads"),
        (f"{ranks} ranks", "ranks", f"{max(1, cores // ranks)} thread(s) each"),
        (f"{ranks} ranks, overlap", "overlap", f"{max(1, cores // ranks)} thread(s) each")]
base = None
print(f"| run ({steps} steps, global batch {batch}) | threads | tokens/s | training s | speed-up | final loss |")
print("| --- | --- | --- | --- | --- | --- |")
for label, name, threads in rows:
    s = json.load(open(f"{out}/{name}/summary.json"))
    tps = s["tokens_per_second"]
    base = base or tps
    print(f"| {label} | {threads} | {tps:,.0f} | {s['train_seconds']:.1f} | "
          f"{tps / base:.2f}x | {s['train_loss']:.4f} |")
print()
print(f"| pipeline, {ranks} stages ({steps} steps, batch {batch}) | micro-batches | tokens/s | training s | vs naive | final loss |")
print("| --- | --- | --- | --- | --- | --- |")
base = None
for micro in (1, 4, 8):
    s = json.load(open(f"{out}/pipe{micro}/summary.json"))
    tps = s["tokens_per_second"]
    base = base or tps
    label = "naive model parallel" if micro == 1 else "GPipe"
    print(f"| {label} | {micro} | {tps:,.0f} | {s['train_seconds']:.1f} | "
          f"{tps / base:.2f}x | {s['train_loss']:.4f} |")
EOF
