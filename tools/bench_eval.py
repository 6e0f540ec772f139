#!/usr/bin/env python3
"""Speed of `llmsys eval` against the Python reference implementations.

Builds a corpus of N segments (default 100,000) from Multi30k's English
training text (data/multi30k), with each hypothesis a perturbed copy of its
reference, then times on one core (taskset -c 0):
  - sacreBLEU 2.x corpus_bleu, corpus_chrf (chrF2 and chrF++), and
    rouge-score (rouge1, rouge2, rougeL, rougeLsum, mean over segments),
    in-process (the files are read before the clock starts);
  - `llmsys eval` for the same metric on the same files, end to end (the
    process start, plugin loading and file reading included).
Prints a table of seconds, segments per second and the ratio, and checks
that both give the same score.

  pip install sacrebleu==2.6.0 rouge-score
  taskset -c 0 python3 tools/bench_eval.py --llmsys build/bin/llmsys
"""
import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time

import sacrebleu
from rouge_score import rouge_scorer


def corpus(n, seed):
    here = os.path.dirname(os.path.abspath(__file__))
    path = os.path.join(here, "..", "data", "multi30k", "train.en.gz")
    import gzip
    with gzip.open(path, "rt", encoding="utf-8") as f:
        lines = [line.rstrip("\n") for line in f]
    rng = random.Random(seed)
    refs, hyps = [], []
    for i in range(n):
        ref = lines[i % len(lines)]
        words = ref.split()
        out = []
        for w in words:
            r = rng.random()
            if r < 0.1:
                continue
            out.append(rng.choice(words) if r < 0.2 else w)
        refs.append(ref)
        hyps.append(" ".join(out))
    return hyps, refs


def timed(fn):
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--llmsys", default="build/bin/llmsys")
    ap.add_argument("--segments", type=int, default=100000)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    hyps, refs = corpus(args.segments, args.seed)
    tmp = tempfile.mkdtemp()
    hyp_file, ref_file = os.path.join(tmp, "hyp.txt"), os.path.join(tmp, "ref.txt")
    with open(hyp_file, "w", encoding="utf-8") as f:
        f.write("\n".join(hyps) + "\n")
    with open(ref_file, "w", encoding="utf-8") as f:
        f.write("\n".join(refs) + "\n")

    def python_rouge():
        scorer = rouge_scorer.RougeScorer(
            ["rouge1", "rouge2", "rougeL", "rougeLsum"])
        total = 0.0
        for h, r in zip(hyps, refs):
            total += scorer.score(r, h)["rougeL"].fmeasure
        return total / len(hyps)

    def llmsys(metric, *params):
        cmd = [args.llmsys, "eval", "--metric", metric, "--hyp", hyp_file,
               "--ref", ref_file, "--json"]
        for p in params:
            cmd += ["--param", p]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True)
        return json.loads(out.stdout)

    rows = [
        ("BLEU (13a)", lambda: sacrebleu.corpus_bleu(hyps, [refs]).score,
         lambda: llmsys("bleu")["score"]),
        ("chrF2", lambda: sacrebleu.corpus_chrf(hyps, [refs]).score,
         lambda: llmsys("chrf")["score"]),
        ("chrF2++",
         lambda: sacrebleu.corpus_chrf(hyps, [refs], word_order=2).score,
         lambda: llmsys("chrf", "word_order=2")["score"]),
        ("ROUGE 1/2/L/Lsum", python_rouge,
         lambda: llmsys("rouge")["scores"]["rougeL"]["fmeasure"]),
    ]
    n = len(hyps)
    print(f"{n} segments (Multi30k en, perturbed), one core; sacreBLEU "
          f"{sacrebleu.__version__}, rouge-score, Python "
          f"{sys.version.split()[0]}")
    print(f"| metric | Python s | llmsys s | Python seg/s | llmsys seg/s "
          f"| speed-up | same score |")
    print("|---|---:|---:|---:|---:|---:|:---:|")
    for name, py, ours in rows:
        t_py, v_py = timed(py)
        t_ours, v_ours = timed(ours)
        same = abs(v_py - v_ours) <= 1e-9 * max(abs(v_py), 1e-300)
        print(f"| {name} | {t_py:.2f} | {t_ours:.2f} | {n / t_py:,.0f} | "
              f"{n / t_ours:,.0f} | {t_py / t_ours:.0f}x | "
              f"{'yes' if same else f'NO ({v_py} vs {v_ours})'} |")


if __name__ == "__main__":
    sys.exit(main())
