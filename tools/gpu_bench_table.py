#!/usr/bin/env python3
"""Sets `llmsys bench cuda --json` beside tools/bench_cuda_torch.py's records.

Prints one markdown table row per shape: ours, PyTorch's, the ratio, and the
goal issue 9 sets (GEMM >= 0.95x torch.matmul; flash forward >= 0.8x and
backward >= 0.6x SDPA's flash backend; LayerNorm and softmax >= 80% of the
measured copy bandwidth, compared with our own copy's GB/s).

Usage: python3 tools/gpu_bench_table.py ours.json torch.json
"""
import json
import sys

GOALS = {"gemm": 0.95, "flash_fwd": 0.8, "flash_bwd": 0.6}


def load(path):
    try:
        with open(path) as f:
            return [json.loads(line) for line in f if line.strip()]
    except OSError as e:
        sys.exit(f"gpu_bench_table.py: {e}")


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    ours, torch = load(sys.argv[1]), load(sys.argv[2])
    theirs = {(r["bench"], r["shape"], r["dtype"]): r for r in torch}
    copy_gbs = {r["dtype"]: r["gbs"] for r in torch
                if r["bench"] == "contiguous"}
    print("| bench | shape | dtype | llmsys | PyTorch | ratio | goal |")
    print("|---|---|---|---|---|---|---|")
    misses = 0
    for r in ours:
        key = (r["bench"], r["shape"], r["dtype"])
        t = theirs.get(key)
        unit = "TFLOP/s" if r["tflops"] else "GB/s"
        mine = r["tflops"] or r["gbs"]
        other = (t["tflops"] or t["gbs"]) if t else None
        ratio = mine / other if other else None
        if r["bench"] in GOALS:
            goal = f">= {GOALS[r['bench']]:.2f}x"
            ok = ratio is not None and ratio >= GOALS[r["bench"]]
        elif r["bench"] in ("layer_norm", "softmax") and r["dtype"] in copy_gbs:
            frac = mine / copy_gbs[r["dtype"]]
            goal = f">= 80% of copy ({frac:.0%})"
            ok = frac >= 0.8
        else:
            goal, ok = "", True
        misses += 0 if ok else 1
        print(f"| {r['bench']} | {r['shape']} | {r['dtype']} | "
              f"{mine:.1f} {unit} | "
              f"{'%.1f' % other if other else 'n/a'} | "
              f"{'%.2fx' % ratio if ratio else 'n/a'} | "
              f"{goal}{'' if ok else ' MISSED'} |")
    print(f"\n{misses} row(s) below their goal")


if __name__ == "__main__":
    main()
