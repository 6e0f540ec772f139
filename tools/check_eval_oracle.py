#!/usr/bin/env python3
"""Checks `llmsys eval --json` against the reference systems on random text.

Draws random corpora (words, punctuation, digits, entities, Unicode letters,
symbols and spaces, CJK, empty and missing segments), scores them with
sacreBLEU and Google's rouge-score and with `llmsys eval`, corpus-level and
with --sentence, over many option combinations, and prints one line per
combination with the largest relative difference. Exit status 1 if any
number differs by more than --tolerance (default 1e-9 relative).

  pip install sacrebleu==2.6.0 rouge-score   # the reference systems
  python3 tools/check_eval_oracle.py --llmsys build/bin/llmsys --cases 200

This is a developer's check (it needs the Python packages); the unit tests
read committed reference values instead (tests/data/eval/).
"""
import argparse
import json
import math
import os
import random
import subprocess
import sys
import tempfile

import sacrebleu
from rouge_score import rouge_scorer, scoring

WORDS = ("the a an of cat dog sat on mat running runs ran easily happiness "
         "skies dying generously agreed feet caresses ponies relational "
         "conditional rational valency hopeful goodness formalize "
         "electrical adjustable defensible irritant replacement "
         "Straße naïve café İstanbul KELVIN ÅNGSTRÖM don't it's o'clock "
         "U.S. e-mail state-of-the-art 3.14 1,000 10-20 $5 50% #tag @user "
         "&amp; &quot;quoted&quot; &lt;b&gt; <skipped> foo-\nbar").split(" ")
PUNCT = list(".,;:!?-'\"()[]{}/\\|@#$%^&*_+=~`<>") + [
    "…", "—", "–", "«", "»", "“", "”", "‘", "’", "¿", "¡", "·", "•", "€", "£",
    "©", "™", "°", "±", "×", "÷", "§", "¶", "‰", "′", "″", "、", "。", "「", "」"]
CJK = list("我们的中文句子有很多字日本語のテキストです한국어문장")
SPACES = [" ", " ", " ", "  ", "\t", "\u00a0", "\u2009", "\u3000", "\u2028",
          "\u0085", "\x1c"]
OTHER = ["é", "e\u0301", "ß", "Ω", "ω", "ﬁ", "Ⅻ", "½", "²", "٣", "𝔘", "😀",
         "\u200b", "\ufeff", "Σ", "ς", "ǅ", "İ", "K", "Å"]


def random_text(rng, words=None):
    n = rng.choice([0, 1, 2, 5, 8, 12, 20, 30]) if words is None else words
    out = []
    for _ in range(n):
        r = rng.random()
        if r < 0.55:
            w = rng.choice(WORDS)
            if rng.random() < 0.2:
                w = w.upper() if rng.random() < 0.5 else w.capitalize()
            out.append(w)
        elif r < 0.7:
            out.append(rng.choice(PUNCT))
        elif r < 0.8:
            out.append(str(rng.choice([0, 1, 7, 42, 1999, 3.5, 1000000])))
        elif r < 0.9:
            out.append("".join(rng.choice(CJK) for _ in range(rng.randint(1, 4))))
        else:
            out.append(rng.choice(OTHER))
        out.append(rng.choice(SPACES) if rng.random() < 0.15 else " ")
    return "".join(out).rstrip("\n") if rng.random() < 0.8 else "".join(out)


def perturb(rng, text):
    """A reference: the hypothesis with some words dropped, swapped, added."""
    toks = text.split(" ")
    out = []
    for t in toks:
        r = rng.random()
        if r < 0.15:
            continue
        if r < 0.3:
            out.append(rng.choice(WORDS))
        else:
            out.append(t)
        if rng.random() < 0.1:
            out.append(rng.choice(PUNCT))
    return " ".join(out)


def corpus(rng, n, nrefs, multiline=False):
    hyps, refs = [], [[] for _ in range(nrefs)]
    for _ in range(n):
        base = random_text(rng)
        if multiline:
            base = "\n".join(random_text(rng, rng.randint(0, 8))
                             for _ in range(rng.randint(1, 4)))
        hyps.append(base)
        for k in range(nrefs):
            r = rng.random()
            if r < 0.05 and k > 0:
                refs[k].append(None)
            elif r < 0.1:
                refs[k].append(random_text(rng))
            else:
                refs[k].append(perturb(rng, base) if not multiline else
                               "\n".join(perturb(rng, s)
                                         for s in base.split("\n")))
    return hyps, refs


def rel_diff(a, b):
    if a == b:
        return 0.0
    return abs(a - b) / max(abs(a), abs(b), 1e-300)


def compare(want, got, path=""):
    """Largest relative difference over the numbers of `want`."""
    if isinstance(want, dict):
        return max([compare(v, got.get(k), f"{path}.{k}")
                    for k, v in want.items()] or [0.0])
    if isinstance(want, list):
        if not isinstance(got, list) or len(got) != len(want):
            return math.inf
        return max([compare(a, b, path) for a, b in zip(want, got)] or [0.0])
    if isinstance(want, (int, float)):
        if not isinstance(got, (int, float)):
            return math.inf
        return rel_diff(float(want), float(got))
    return 0.0


def bleu_json(score):
    return {"score": score.score, "counts": score.counts,
            "totals": score.totals, "precisions": score.precisions,
            "bp": score.bp, "sys_len": score.sys_len,
            "ref_len": score.ref_len}


def run_llmsys(llmsys, metric, segments, params, sentence):
    with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False,
                                     encoding="utf-8") as f:
        for hyp, refs in segments:
            f.write(json.dumps({"hyp": hyp, "refs": refs},
                               ensure_ascii=False) + "\n")
        name = f.name
    cmd = [llmsys, "eval", "--metric", metric, "--input", name, "--json"]
    for k, v in params.items():
        cmd += ["--param", f"{k}={v}"]
    if sentence:
        cmd.append("--sentence")
    p = subprocess.run(cmd, capture_output=True, text=True)
    os.unlink(name)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: {p.stderr}")
    return [json.loads(line) for line in p.stdout.splitlines()]


def segments_of(hyps, refs):
    return [(h, [r[i] for r in refs]) for i, h in enumerate(hyps)]


def check_bleu(llmsys, rng, n):
    worst = []
    for tok in ["13a", "none", "intl", "char", "zh"]:
        for smooth, value in [("exp", None), ("floor", None), ("floor", 0.3),
                              ("add-k", None), ("add-k", 2), ("none", None)]:
            for lowercase in [False, True]:
                for eff in [False, True]:
                    nrefs = rng.choice([1, 1, 2, 3])
                    hyps, refs = corpus(rng, n, nrefs)
                    kw = dict(tokenize=tok, smooth_method=smooth,
                              smooth_value=value, lowercase=lowercase,
                              use_effective_order=eff)
                    params = {"tokenize": tok, "smooth_method": smooth,
                              "lowercase": str(lowercase).lower(),
                              "use_effective_order": str(eff).lower()}
                    if value is not None:
                        params["smooth_value"] = value
                    want = bleu_json(sacrebleu.corpus_bleu(hyps, refs, **kw))
                    got = run_llmsys(llmsys, "bleu", segments_of(hyps, refs),
                                     params, False)[0]
                    d = compare(want, got)
                    worst.append((d, f"bleu {params} nrefs={nrefs}"))
                    # Sentence level: the first 20 segments.
                    segs = segments_of(hyps, refs)[:20]
                    gots = run_llmsys(llmsys, "bleu", segs, params, True)
                    for (h, rs), g in zip(segs, gots):
                        s = sacrebleu.sentence_bleu(
                            h, [r for r in rs if r is not None], **kw)
                        worst.append((compare(bleu_json(s), g),
                                      f"sentence bleu {params} hyp={h!r}"))
    return worst


def check_chrf(llmsys, rng, n):
    worst = []
    for char_order in [6, 3]:
        for word_order in [0, 2, 1]:
            for beta in [2, 1, 3]:
                for lowercase in [False, True]:
                    for whitespace in [False, True]:
                        for eps in [False, True]:
                            nrefs = rng.choice([1, 2])
                            hyps, refs = corpus(rng, n, nrefs)
                            kw = dict(char_order=char_order,
                                      word_order=word_order, beta=beta,
                                      lowercase=lowercase,
                                      whitespace=whitespace,
                                      eps_smoothing=eps)
                            params = {k: (str(v).lower()
                                          if isinstance(v, bool) else v)
                                      for k, v in kw.items()}
                            metric = sacrebleu.metrics.CHRF(**kw)
                            want = metric.corpus_score(hyps, refs).score
                            got = run_llmsys(llmsys, "chrf",
                                             segments_of(hyps, refs), params,
                                             False)[0]
                            worst.append((compare({"score": want}, got),
                                          f"chrf {params} nrefs={nrefs}"))
    return worst


def check_rouge(llmsys, rng, n):
    worst = []
    for types in [["rouge1", "rouge2", "rougeL", "rougeLsum"],
                  ["rouge3", "rouge4", "rougeL"]]:
        for stem in [False, True]:
            scorer = rouge_scorer.RougeScorer(types, use_stemmer=stem)
            hyps, refs = corpus(rng, n, 1, multiline=True)
            per = [scorer.score(r if r is not None else "", h)
                   for h, r in zip(hyps, refs[0])]
            want = {t: {"precision": sum(p[t].precision for p in per) / n,
                        "recall": sum(p[t].recall for p in per) / n,
                        "fmeasure": sum(p[t].fmeasure for p in per) / n}
                    for t in types}
            params = {"rouge_types": ",".join(types),
                      "use_stemmer": str(stem).lower()}
            segs = [(h, [r if r is not None else ""])
                    for h, r in zip(hyps, refs[0])]
            got = run_llmsys(llmsys, "rouge", segs, params, False)[0]
            worst.append((compare({"scores": want}, got),
                          f"rouge {params}"))
            gots = run_llmsys(llmsys, "rouge", segs[:20], params, True)
            for p, g in zip(per, gots):
                w = {t: {"precision": p[t].precision, "recall": p[t].recall,
                         "fmeasure": p[t].fmeasure} for t in types}
                worst.append((compare({"scores": w}, g),
                              f"sentence rouge {params}"))
    return worst


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--llmsys", default="build/bin/llmsys")
    ap.add_argument("--cases", type=int, default=100,
                    help="segments per corpus")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--tolerance", type=float, default=1e-9)
    ap.add_argument("--metrics", default="bleu,chrf,rouge")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    checks = {"bleu": check_bleu, "chrf": check_chrf, "rouge": check_rouge}
    failed = 0
    total = 0
    for metric in args.metrics.split(","):
        results = checks[metric](args.llmsys, rng, args.cases)
        bad = [r for r in results if not r[0] <= args.tolerance]
        total += len(results)
        failed += len(bad)
        print(f"{metric:6s} {len(results):5d} comparisons, "
              f"max rel diff {max(r[0] for r in results):.3g}, "
              f"{len(bad)} over {args.tolerance:g}")
        for d, what in sorted(bad, reverse=True)[:10]:
            print(f"   {d:.3g}  {what}"[:400])
    print(f"sacrebleu {sacrebleu.__version__}: {total - failed}/{total} agree")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
