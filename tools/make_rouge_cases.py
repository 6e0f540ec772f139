#!/usr/bin/env python3
"""Writes the reference data of the ROUGE and Porter-stemmer tests.

    python3 tools/make_rouge_cases.py            # from the repository root

Writes, deterministically (fixed seed, sorted inputs):
  tests/data/eval/porter_cases.tsv   word<TAB>stem, NLTK's PorterStemmer()
                                     (NLTK_EXTENSIONS) on every word of
                                     data/tinyshakespeare and data/multi30k
                                     plus made-up words and random strings
  tests/data/eval/rouge_cases.jsonl  one case a line: Google rouge-score's
                                     RougeScorer(...).score / score_multi on
                                     varied texts, every value a Python float
                                     repr (full double precision)

Needs the Python packages rouge-score (0.1.2) and nltk. The C++ tests
(tests/plugins/evaluators/text/{rouge,porter}_test.cc) read these files; the
C++ code (plugins/evaluators/text/{rouge,porter}.cc) was written from the
algorithm, not from this script.

rouge-score's type regex admits one digit ("rouge[0-9]$"); for rougeN with
N >= 10, which the C++ scorer accepts, the expected values come from
rouge-score's own _create_ngrams/_score_ngrams with that N.
"""

import gzip
import json
import os
import random
import re
import sys

import nltk
from nltk.stem import porter
from rouge_score import rouge_scorer
from rouge_score import tokenizers

import rouge_score

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT_DIR = os.path.join(ROOT, "tests", "data", "eval")
SEED = 20240229


def read_lines(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as f:
        return [line.rstrip("\n") for line in f]


def corpus():
    shakespeare = read_lines(
        os.path.join(ROOT, "data/tinyshakespeare/input.txt"))
    m30k = {}
    for split in ("train", "val", "test_2016_flickr"):
        for lang in ("en", "de"):
            m30k[split, lang] = read_lines(
                os.path.join(ROOT, f"data/multi30k/{split}.{lang}.gz"))
    return shakespeare, m30k


# ---------------------------------------------------------------- Porter ----

SUFFIXES = [
    "s", "es", "ies", "sses", "ss", "ed", "ied", "eed", "ing", "y", "ly",
    "ational", "tional", "enci", "anci", "izer", "bli", "alli", "entli", "eli",
    "ousli", "ization", "ation", "ator", "alism", "iveness", "fulness",
    "ousness", "aliti", "iviti", "biliti", "fulli", "logi", "icate", "ative",
    "alize", "iciti", "ical", "ful", "ness", "al", "ance", "ence", "er", "ic",
    "able", "ible", "ant", "ement", "ment", "ent", "ion", "sion", "tion", "ou",
    "ism", "ate", "iti", "ous", "ive", "ize", "e", "ll", "at", "bl", "iz",
]


def porter_words(shakespeare, m30k, rng):
    words = set()
    for text in [shakespeare] + list(m30k.values()):
        for line in text:
            words.update(re.sub(r"[^a-z0-9]+", " ", line.lower()).split())
    # Made-up words: short stems with one or two rule suffixes, which reach
    # every rule and condition (measure 0/1/2, *o, *d, y as vowel/consonant).
    letters = "abcdefghijklmnopqrstuvwxyz"
    for _ in range(6000):
        stem = "".join(rng.choice("aeiouy" if rng.random() < 0.4 else letters)
                       for _ in range(rng.randint(0, 6)))
        word = stem + rng.choice(SUFFIXES)
        if rng.random() < 0.3:
            word += rng.choice(SUFFIXES)
        words.add(word)
    # Random strings over small alphabets (vowels, y, doubled letters, digits).
    for alphabet in ("aey", "ybl", "sielda", "abcdeilnorstuy", "a1y2e",
                     "abcdefghijklmnopqrstuvwxyz0123456789"):
        for _ in range(800):
            words.add("".join(rng.choice(alphabet)
                              for _ in range(rng.randint(1, 12))))
    # Runs of y (NLTK 3.8 recursed once per y) and the irregular forms.
    for k in (1, 2, 3, 4, 5, 9, 40, 1200):
        words.update({"y" * k, "a" + "y" * k, "b" + "y" * k, "y" * k + "s",
                      "t" + "y" * k + "ing"})
    words.update(["sky", "skies", "dying", "lying", "tying", "news", "innings",
                  "inning", "outings", "outing", "cannings", "canning", "howe",
                  "proceed", "exceed", "succeed", "", "a", "ab"])
    words = sorted(words)
    # ASCII beyond [a-z0-9] (never from the ROUGE tokenizer): upper case and
    # punctuation, including NLTK's literal "*d" suffix quirk.
    extras = ["Skies", "DYING", "Running", "GENERALLY", "x*ded", "ab*ded",
              "AB*DING", "o*d", "it's", "e-mail", "co-operation", "a.b.c",
              "Y", "YY", "hOpPiNg"]
    return words + extras


def write_porter(words):
    stemmer = porter.PorterStemmer()
    path = os.path.join(OUT_DIR, "porter_cases.tsv")
    with open(path, "w", encoding="ascii", newline="\n") as f:
        f.write(f"# word<TAB>stem: nltk {nltk.__version__} "
                "PorterStemmer() (NLTK_EXTENSIONS), stem(word).\n")
        f.write("# Written by tools/make_rouge_cases.py; do not edit.\n")
        for w in words:
            assert "\t" not in w and "\n" not in w
            f.write(f"{w}\t{stemmer.stem(w)}\n")
    return path, len(words)


# ----------------------------------------------------------------- ROUGE ----

UNICODE_BITS = ["\u0130stanbul", "\u212Aelvin", "\u212A", "caf\u00e9",
                "Stra\u00dfe", "na\u00efve", "\u00bd", "\uff11\uff12",
                "\u2167", "\u00b2", "\U0001F600", "\u4e2d\u6587", "\u00a0",
                "\u2028", "e\u0301", "\u0130", "\u0130\u0130x", "\u03a3\u0391",
                "\u00c9COLE", "\u2160", "x\u212Ay", "\u0131", "\ufb01le"]
PUNCT = [",", ".", "!", "?", ";", ":", "'", "\"", "-", "--", "(", ")", "$",
         "%", "&", "/", "\\", "@", "#", "*", "_", "\t", "\r", " ", "  "]


def perturb(words, rng):
    """A hypothesis-like variant of a word list: drops, swaps, duplicates."""
    out = list(words)
    for _ in range(rng.randint(0, 4)):
        if not out:
            break
        op = rng.random()
        i = rng.randrange(len(out))
        if op < 0.3:
            del out[i]
        elif op < 0.55:
            j = rng.randrange(len(out))
            out[i], out[j] = out[j], out[i]
        elif op < 0.75:
            out.insert(i, out[i])
        elif op < 0.9:
            out[i] = out[i].upper() if rng.random() < 0.5 else out[i] + "s"
        else:
            out.insert(i, rng.choice(["the", "a", "of", "running", "ran"]))
    return out


def noisy(text, rng):
    """Sprinkles punctuation, digits and non-ASCII characters into text."""
    words = text.split(" ")
    out = []
    for w in words:
        r = rng.random()
        if r < 0.1:
            out.append(w + rng.choice(PUNCT))
        elif r < 0.15:
            out.append(rng.choice(UNICODE_BITS))
            out.append(w)
        elif r < 0.2:
            out.append(str(rng.randint(0, 3000)) + rng.choice(["", "th", ".5"]))
            out.append(w)
        elif r < 0.23:
            out.append(w + rng.choice(UNICODE_BITS) + w[::-1])
        else:
            out.append(w)
    return " ".join(out)


def join_sentences(sents, rng):
    seps = ["\n", "\n", "\n", "\n\n", "\r\n", "\n \n", " \n"]
    text = ""
    for i, s in enumerate(sents):
        text += s
        if i + 1 < len(sents):
            text += rng.choice(seps)
    if rng.random() < 0.15:
        text = "\n" + text
    if rng.random() < 0.15:
        text += "\n"
    return text


def soup(rng, vocab, n_tokens, newline_p):
    """Random text over a tiny vocabulary: many LCS ties and repeats."""
    toks = []
    for _ in range(n_tokens):
        toks.append(rng.choice(vocab))
        if rng.random() < newline_p:
            toks.append("\n")
    return " ".join(toks).replace(" \n ", "\n")


def expected_scores(types, use_stemmer, targets, prediction, multi):
    standard = [t for t in types
                if not (re.fullmatch(r"rouge[0-9]+", t) and len(t) > 6)]
    wide = [t for t in types if t not in standard]
    result = {}
    if standard:
        scorer = rouge_scorer.RougeScorer(standard, use_stemmer=use_stemmer)
        if multi:
            scores = scorer.score_multi(targets, prediction)
        else:
            scores = scorer.score(targets[0], prediction)
        result.update(scores)
    if wide:
        tok = tokenizers.DefaultTokenizer(use_stemmer)
        p_tokens = tok.tokenize(prediction)
        for t in wide:
            n = int(t[5:])
            per_target = [rouge_scorer._score_ngrams(
                rouge_scorer._create_ngrams(tok.tokenize(x), n),
                rouge_scorer._create_ngrams(p_tokens, n)) for x in targets]
            best = max(range(len(per_target)),
                       key=lambda i: (per_target[i].fmeasure, -i))
            result[t] = per_target[best]
    return {t: [result[t].precision, result[t].recall, result[t].fmeasure]
            for t in types}


def rouge_cases(shakespeare, m30k, rng):
    en = m30k["train", "en"]
    de = m30k["train", "de"]
    plays = [line for line in shakespeare if line.strip()]
    cases = []

    def add(kind, types, stem, targets, prediction, multi=False):
        cases.append({
            "id": f"{kind}_{len(cases):03d}",
            "rouge_types": types,
            "use_stemmer": stem,
            "api": "score_multi" if multi else "score",
            "targets": targets,
            "prediction": prediction,
        })

    base_types = ["rouge1", "rouge2", "rougeL", "rougeLsum"]
    all_types = ["rouge1", "rouge2", "rouge3", "rouge4", "rougeL", "rougeLsum"]

    # Captions against perturbed or different captions.
    for _ in range(60):
        i = rng.randrange(len(en))
        words = en[i].split(" ")
        pred = " ".join(perturb(words, rng))
        if rng.random() < 0.3:
            pred = en[rng.randrange(len(en))]
        add("caption", rng.choice([base_types, all_types]),
            rng.random() < 0.5, [en[i]], pred)
    # Multi-sentence summaries (rougeLsum), some noisy.
    for _ in range(60):
        k = rng.randint(1, 5)
        start = rng.randrange(len(en) - 10)
        tgt_sents = en[start:start + k]
        pred_sents = [" ".join(perturb(s.split(" "), rng)) for s in tgt_sents]
        rng.shuffle(pred_sents)
        if rng.random() < 0.5:
            pred_sents = pred_sents[:rng.randint(1, len(pred_sents))]
        if rng.random() < 0.3:
            pred_sents.append(en[rng.randrange(len(en))])
        tgt = join_sentences(tgt_sents, rng)
        pred = join_sentences(pred_sents, rng)
        if rng.random() < 0.4:
            tgt, pred = noisy(tgt, rng), noisy(pred, rng)
        add("summary", rng.choice([base_types, all_types, ["rougeLsum"]]),
            rng.random() < 0.5, [tgt], pred)
    # Tiny vocabularies: repeated tokens, LCS ties, hit capping in rougeLsum.
    for _ in range(50):
        vocab = rng.choice([["a", "b"], ["a", "b", "c"], ["x", "y", "z", "w"],
                            ["cat", "cats", "running", "runs", "ran"]])
        tgt = soup(rng, vocab, rng.randint(0, 25), rng.choice([0, 0.2, 0.5]))
        pred = soup(rng, vocab, rng.randint(0, 25), rng.choice([0, 0.2, 0.5]))
        add("soup", all_types, rng.random() < 0.5, [tgt], pred)
    # German (non-ASCII letters split tokens) and noisy English.
    for _ in range(30):
        i = rng.randrange(len(de))
        add("german", base_types, rng.random() < 0.5,
            [de[i]], noisy(" ".join(perturb(de[i].split(" "), rng)), rng))
    for _ in range(30):
        i = rng.randrange(len(en))
        add("noisy", all_types, rng.random() < 0.5,
            [noisy(en[i], rng)], noisy(en[rng.randrange(len(en))], rng))
    # Shakespeare passages: long texts, many lines.
    for _ in range(12):
        s = rng.randrange(len(plays) - 40)
        tgt = "\n".join(plays[s:s + rng.randint(5, 30)])
        pred_lines = perturb(plays[s:s + rng.randint(5, 30)], rng)
        add("play", all_types, rng.random() < 0.5, [tgt],
            "\n".join(" ".join(perturb(p.split(" "), rng)) for p in pred_lines))
    # Multiple targets: the best fmeasure per type, ties to the first.
    for _ in range(40):
        i = rng.randrange(len(en))
        targets = [en[(i + d) % len(en)] for d in range(rng.randint(1, 4))]
        if rng.random() < 0.3:
            targets.append(targets[0])  # an exact tie
        if rng.random() < 0.2:
            targets.insert(rng.randrange(len(targets) + 1), "")
        pred = " ".join(perturb(rng.choice(targets).split(" "), rng))
        add("multi", rng.choice([base_types, all_types]), rng.random() < 0.5,
            targets, pred, multi=True)
    # Ties in fmeasure between targets with different precision and recall:
    # the first target wins.
    for targets, pred in ((["a b c d", "a"], "a b"), (["a", "a b c d"], "a b"),
                          (["a b\nc d", "b"], "b a"), (["x", "a b c d"], "a b"),
                          (["b a x y", "a b x y"], "a b")):
        add("tie", base_types, False, targets, pred, multi=True)
    # Higher n, including N >= 10 (an extension of the C++ scorer).
    for _ in range(8):
        i = rng.randrange(len(plays) - 12)
        tgt = " ".join(plays[i:i + 6])
        pred = " ".join(perturb(tgt.split(" "), rng))
        add("high_n", ["rouge5", "rouge9", "rouge10", "rouge12"],
            rng.random() < 0.5, [tgt], pred)
    # Edge cases, spelled out.
    edge = [
        ("", ""), ("", "a b c"), ("a b c", ""), (" ", " "), ("\n\n", "\n"),
        ("!!! ??? ...", "--- ,,,"), ("a", "a"), ("a", "b"), ("a b", "b a"),
        ("The cat.", "the CAT!"), ("cats running", "cat runs"),
        ("\u0130stanbul", "i stanbul"), ("\u212Aelvin", "kelvin"),
        ("x\u212Ay", "xky"), ("\u0130\u0130", "i i"), ("caf\u00e9", "caf"),
        ("\uff11\uff12 \u00bd", "12 1 2"), ("a\nb\nc", "c\nb\na"),
        ("a b\n\n\nc d", "a b c d"), ("a b c d", "a b\nc d"),
        ("a a a\na a", "a\na a a a"), ("a b a b\nb a", "b a\na b a b"),
        ("yyyyyyyyyyyy " * 3, "yyyyyyyyyyyyy"),
        ("skies dying news", "sky die news"),
        ("generously generous", "generate general"), ("\r\n", "\r"),
        ("one\rtwo", "one two"), ("a\u2028b", "a b"), ("tab\tsep", "tab sep"),
        ("2024-01-01 12:30", "2024 01 01 12 30"), ("e\u0301t\u00e9", "et"),
        ("a" * 300, "a" * 300), ("y" * 1500, "y" * 1500 + " s"),
    ]
    for tgt, pred in edge:
        for stem in (False, True):
            add("edge", all_types, stem, [tgt], pred)
    return cases


def write_rouge(cases):
    path = os.path.join(OUT_DIR, "rouge_cases.jsonl")
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        for c in cases:
            c["expected"] = expected_scores(c["rouge_types"], c["use_stemmer"],
                                            c["targets"], c["prediction"],
                                            c["api"] == "score_multi")
            f.write(json.dumps(c, ensure_ascii=False) + "\n")
    return path


def main():
    version = getattr(rouge_score, "__version__", None)
    if version is None:
        from importlib import metadata
        version = metadata.version("rouge-score")
    if version != "0.1.2":
        sys.exit("make_rouge_cases.py: needs rouge-score 0.1.2, found "
                 f"{version}")
    os.makedirs(OUT_DIR, exist_ok=True)
    shakespeare, m30k = corpus()
    rng = random.Random(SEED)
    path, n = write_porter(porter_words(shakespeare, m30k, rng))
    print(f"{path}: {n} words")
    cases = rouge_cases(shakespeare, m30k, rng)
    print(f"{write_rouge(cases)}: {len(cases)} cases")


if __name__ == "__main__":
    main()
