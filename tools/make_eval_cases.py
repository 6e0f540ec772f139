#!/usr/bin/env python3
"""Writes tests/data/eval/bleu_chrf_cases.jsonl, the reference data of the
BLEU, chrF, tokenizer, SQuAD and Unicode tests of plugins/evaluators/text.

    python3 tools/make_eval_cases.py            # from anywhere
    python3 tools/make_eval_cases.py --seed 7 --scale 20 --out /tmp/big.jsonl
    LLMSYS_TEXT_CASES=/tmp/big.jsonl build/bin/text_eval_cases_test

Every expected value comes from the real systems: sacreBLEU 2.6.0 (BLEU,
chrF, its tokenizers), CPython 3.11 (str.lower / isspace / isalnum, re) and
the regex module (\\p{P}, \\p{S}, \\p{N}); SQuAD from the official
evaluate-v1.1.py functions, restated below. Floats are written as Python's
repr (full double precision). The file is deterministic: a fixed seed, no
iteration over sets or dicts of strings, and the versions recorded in its
first line (the script refuses other versions unless --any-version).

One JSON object per line, "kind" saying what it holds:
  meta       versions, seed, counts
  tokenize   {tokenizer, text, expected}: the tokens of sacreBLEU's
             tokenizer(text) (what BLEU counts), joined by single spaces
  bleu       {api: corpus|sentence, options, hypotheses, references
             (streams: references[k][i], null = missing), expected{score,
             bp, ratio, sys_len, ref_len, counts, totals (raw sums of the
             segment statistics), precisions, formatted, formatted_signature,
             signature} or error: true where sacreBLEU raises}
  chrf       same shape; expected{score, name, stats, formatted, signature}
  squad      {prediction, references, expected{exact_match, f1,
             normalized_prediction}}
  pylower    {text, expected}: text.lower()
  uprops     {points: [[cp, flags, [lowered code points]], ...]}, flags:
             1 isspace, 2 isalnum, 4 re \\w, 8 \\p{P}, 16 \\p{S}, 32 \\p{N},
             64 sacreBLEU zh Chinese character

Metrics are separate generator functions listed in GENERATORS, so more (e.g.
ROUGE) can be added without touching the others.
"""

import argparse
import collections
import json
import logging
import os
import random
import re
import string
import sys
import unicodedata

import regex
import sacrebleu
from sacrebleu.metrics import BLEU, CHRF
from sacrebleu.tokenizers.tokenizer_zh import TokenizerZh

EXPECTED_VERSIONS = {
    "sacrebleu": "2.6.0",
    "regex": "2026.5.9",
    "unicodedata": "14.0.0",
}
SEED = 20250601
# Multiplies the number of cases (--scale); 1 for the committed file.
SCALE = 1
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "data", "eval", "bleu_chrf_cases.jsonl")

# ---------------------------------------------------------------------------
# Text pools


def regex_vs_python_diffs():
    """Code points whose P/S/N membership differs between the regex module
    (newer Unicode) and CPython's unicodedata: the intl tokenizer must follow
    regex."""
    out = []
    pats = [(k, regex.compile(r"\p{%s}" % k)) for k in ("P", "S", "N")]
    for cp in range(0x110000):
        if 0xD800 <= cp <= 0xDFFF:
            continue
        c = chr(cp)
        cat = unicodedata.category(c)
        for k, pat in pats:
            if bool(pat.match(c)) != cat.startswith(k):
                out.append(c)
                break
    return out


WORDS = (
    "the a an of and to in is was for on that with as by at from it he she "
    "they we you city council approved budget million road repairs ending "
    "weeks debate heavy rain forced organisers postpone marathon expected "
    "draw runners shares carmaker fell after warned chip shortages would cut "
    "production until police said suspect man arrested airport early sunday "
    "museum reopen new wing dedicated history railway scientists glacier "
    "lost nearly third mass since cat dog house tree green blue quickly "
    "however because although report data model train test value score"
).split()

CAPITALIZED = ["The", "A", "An", "THE", "Council", "NASA", "U.S.", "Mr.",
               "Dr.", "e.g.", "i.e.", "St.", "No.", "IBM", "iPhone",
               "McDonald"]

NUMBERS = ["3.14", "1,000", "2-3", "-5", "5-", "1.", ".5", "10,5", "(555)",
           "4.5%", "$4.5", "1st", "2025", "2025.", "1,2,3", "7.-", "0.5.",
           "12-", "3-4-5", "1.000,50", "9,", ",9", "٣", "١٢٣", "१२३", "½",
           "²", "Ⅻ", "①", "𝟙", "੩", "三"]

APOSTROPHES = ["don't", "'quoted'", "rock'n'roll", "O'Neil", "dogs'", "'s",
               "it’s", "‘single’", "``tex''", "l'homme", "'"]

UNI_WORDS = [
    "café", "naïve", "cafe\u0301", "nai\u0308ve", "Straße", "STRASSE", "ẞ",
    "ﬁne", "Ǆemal", "ǅ", "İstanbul", "IĞDIR", "ı", "İ", "iİi", "ΟΔΟΣ",
    "Σίσυφος", "ΣΑΣ", "ΑΣ.Β", "Σ", "ΌΣΟΣ'", "Α\u0345Σ", "ΑΣ\u0301", "Москва",
    "ПРИВЕТ", "Ёлка", "مرحبا", "،", "؟", "नमस्ते", "।", "สวัสดี", "Ꭰ", "ꭰ",
    "Ⓐ", "ⓐ", "ᾈ", "ῼ", "ǰ", "ŉ", "\u0301", "\u0308\u0301", "ʰ", "ˈ",
    "\u00ad", "a\u200db", "𐐀𐐨", "𞤀", "Ꙁ", "ǈ",
]

PUNCT_SYMBOLS = [
    ",", ".", ";", ":", "!", "?", "(", ")", "[", "]", "{", "}", "\"", "'",
    "-", "--", "...", "/", "\\", "@", "#", "$", "%", "^", "&", "*", "_", "+",
    "=", "<", ">", "|", "~", "`", "—", "–", "…", "“", "”", "«", "»", "¿",
    "¡", "€", "£", "©", "®", "™", "°", "±", "×", "÷", "≤", "→", "★", "😀",
    "👍🏽", "§", "¶", "•", "※", "〜", "、", "。", "「", "」", "《", "》", "·",
    "‰", "′", "‽", "⁂", "¦", "¨", "´", "¸", "¬", "¯", "^_^", ":-)", "a.b",
    "x,y", "a-b", "1-a", "a-1", ".,", ",.", ".-", "-.", "..5", "5..",
]

ENTITIES = ["&amp;", "&quot;", "&lt;", "&gt;", "&amp;quot;", "&amp;lt;",
            "&apos;", "&#39;", "&", "AT&T", "&amp", "&lt", "&&gt;;",
            "&QUOT;", "&AMP;"]

SKIPPED = ["<skipped>", "<SKIPPED>", "<skipped", "x<skipped>y", "-<skipped>"]

SEPARATORS = (
    [" "] * 30 + ["", "  ", "\t", "\u00a0", "\u2028", "\u2029", "\u3000",
                  "\u2009", "\u202f", "\u205f", "\u1680", "\x1c", "\x1f",
                  "\x85", "\n", "-\n", "\r\n", "\r", "\u200b", "\ufeff",
                  "\x0b", "\x0c", " \n ", "\u180e"])

CJK_RANGES = [
    (0x4E00, 0x9FA5), (0x3400, 0x4DB5), (0x9FA6, 0x9FFF), (0x20000, 0x2A6D6),
    (0xF900, 0xFAD9), (0x3040, 0x30FF), (0xAC00, 0xD7A3), (0xFF01, 0xFF5E),
    (0xFF61, 0xFFEF), (0x3000, 0x303F), (0x2E80, 0x2FDF), (0x3100, 0x312F),
    (0x2000, 0x206F), (0x2600, 0x27BF), (0x2A6D0, 0x2A6DF), (0x2F800,
                                                             0x2FA1F),
    (0x1F300, 0x1F64F), (0xFE10, 0xFE4F), (0x3200, 0x33FF),
]


class TextGen:
    """Random and adversarial text, all from one seeded generator."""

    def __init__(self, rng, diff_chars):
        self.rng = rng
        self.diff_chars = diff_chars

    def cjk(self):
        lo, hi = self.rng.choice(CJK_RANGES)
        n = self.rng.randint(1, 6)
        return "".join(chr(self.rng.randint(lo, hi)) for _ in range(n))

    def random_char(self):
        while True:
            plane = self.rng.random()
            if plane < 0.6:
                cp = self.rng.randrange(0x80, 0x3000)
            elif plane < 0.9:
                cp = self.rng.randrange(0x3000, 0x10000)
            else:
                cp = self.rng.randrange(0x10000, 0x110000)
            if not 0xD800 <= cp <= 0xDFFF:
                return chr(cp)

    def word(self):
        r = self.rng.random()
        rng = self.rng
        if r < 0.45:
            w = rng.choice(WORDS)
            x = rng.random()
            if x < 0.1:
                w = w.capitalize()
            elif x < 0.13:
                w = w.upper()
            if rng.random() < 0.15:
                w = w + rng.choice(",.;:!?)\"'%")
            elif rng.random() < 0.05:
                w = rng.choice("(\"'[$#") + w
            return w
        if r < 0.50:
            return rng.choice(CAPITALIZED)
        if r < 0.58:
            return rng.choice(NUMBERS)
        if r < 0.62:
            return rng.choice(APOSTROPHES)
        if r < 0.70:
            return rng.choice(UNI_WORDS)
        if r < 0.79:
            return rng.choice(PUNCT_SYMBOLS)
        if r < 0.82:
            return rng.choice(ENTITIES)
        if r < 0.84:
            return rng.choice(SKIPPED)
        if r < 0.91:
            return self.cjk()
        if r < 0.95:
            c = rng.choice(self.diff_chars)
            return rng.choice(["", "a", "1", "."]) + c + rng.choice(
                ["", "b", "2", ","])
        return "".join(self.random_char() for _ in range(rng.randint(1, 3)))

    def separator(self):
        return self.rng.choice(SEPARATORS)

    def join(self, words):
        if not words:
            return ""
        out = [words[0]]
        for w in words[1:]:
            out.append(self.separator())
            out.append(w)
        text = "".join(out)
        r = self.rng.random()
        if r < 0.08:
            text = self.separator() + text
        elif r < 0.16:
            text = text + self.rng.choice([" ", "\n", "\t", "\u3000", "  ",
                                           "\u00a0", "\x85"])
        return text

    def words(self, lo=0, hi=25):
        return [self.word() for _ in range(self.rng.randint(lo, hi))]

    def perturb(self, words):
        """A hypothesis near a reference: drops, swaps, substitutions,
        duplicates, case changes."""
        rng = self.rng
        out = list(words)
        for _ in range(rng.randint(0, max(1, len(out) // 3))):
            op = rng.random()
            if not out:
                out.append(self.word())
                continue
            i = rng.randrange(len(out))
            if op < 0.25:
                del out[i]
            elif op < 0.45 and len(out) > 1:
                j = min(i + 1, len(out) - 1)
                out[i], out[j] = out[j], out[i]
            elif op < 0.7:
                out[i] = self.word()
            elif op < 0.8:
                out.insert(i, out[i])
            elif op < 0.9:
                out[i] = out[i].upper() if rng.random() < 0.5 else \
                    out[i].lower()
            else:
                out.insert(i, self.word())
        return out

    def special_text(self):
        return self.rng.choice([
            "", " ", "\t\n", "\u3000", "\u2028", "<skipped>", ".", "a",
            "&amp;", "-\n", "\u200b", "Σ", "İ", "1.", "x" * 40,
            "the the the the the", "。。。", "a-\nb", "\x85"])

    def pair(self, n_refs, missing_rate):
        """One segment: hypothesis and n_refs references (None = missing)."""
        rng = self.rng
        base = self.words(0, 25)
        refs = []
        for _ in range(n_refs):
            if rng.random() < missing_rate:
                refs.append(None)
            elif rng.random() < 0.05:
                refs.append(self.special_text())
            else:
                refs.append(self.join(self.perturb(base)))
        r = rng.random()
        if r < 0.06:
            hyp = self.special_text()
        elif r < 0.12:
            hyp = self.join(self.words(0, 12))
        else:
            hyp = self.join(self.perturb(base))
        return hyp, refs


# ---------------------------------------------------------------------------
# Generators, one per metric


def tokenize_cases(gen):
    rng = gen.rng
    tokenizers = {name: BLEU(tokenize=name).tokenizer
                  for name in ("13a", "none", "intl", "char", "zh")}
    cases = []
    for name in ("13a", "none", "intl", "char", "zh"):
        count = (30 if name in ("none", "char") else 110) * SCALE
        for i in range(count):
            if i < 8:
                text = gen.special_text()
            else:
                text = gen.join(gen.words(1, 14))
            if rng.random() < 0.1:
                text = text.lower()
            cases.append({"kind": "tokenize", "id": f"tok_{name}_{i:03d}",
                          "tokenizer": name, "text": text,
                          "expected": " ".join(
                              tokenizers[name](text).split())})
    return cases


def bleu_options(rng):
    tokenize = rng.choice(["13a"] * 4 + ["none", "intl", "intl", "char",
                                         "zh", "zh"])
    smooth = rng.choice(["exp", "exp", "floor", "add-k", "none"])
    value = None
    if smooth in ("floor", "add-k") and rng.random() < 0.5:
        value = rng.choice([0.01, 0.05, 0.1, 0.5, 1, 2, 0.3333])
    return {
        "tokenize": tokenize,
        "smooth_method": smooth,
        "smooth_value": value,
        "lowercase": rng.random() < 0.3,
        "use_effective_order": rng.random() < 0.4,
        "max_ngram_order": rng.choice([4] * 6 + [1, 2, 3, 5, 6]),
    }


def make_bleu(options):
    return BLEU(lowercase=options["lowercase"], tokenize=options["tokenize"],
                smooth_method=options["smooth_method"],
                smooth_value=options["smooth_value"],
                max_ngram_order=options["max_ngram_order"],
                effective_order=options["use_effective_order"])


def corpus(gen, n_segments, n_refs, missing_rate):
    hyps = []
    streams = [[] for _ in range(n_refs)]
    for _ in range(n_segments):
        hyp, refs = gen.pair(n_refs, missing_rate)
        for k in range(n_refs):
            streams[k].append(refs[k])
        hyps.append(hyp)
    return hyps, streams


def fix_all_missing(hyps, streams, rng):
    """Segments whose references are all missing make sacreBLEU raise unless
    the hypothesis is empty; keep a few such, fix the rest."""
    for i in range(len(hyps)):
        if all(s[i] is None for s in streams):
            if rng.random() < 0.5:
                streams[0][i] = "a reference"
            else:
                hyps[i] = rng.choice(["", " ", "<skipped>"])


def bleu_expected(metric, hyps, streams, api):
    if api == "sentence":
        score = metric.sentence_score(hyps[0], [s[0] for s in streams])
    else:
        score = metric.corpus_score(hyps, streams)
    signature = metric.get_signature().format()
    stats = metric._extract_corpus_statistics(hyps, streams)
    n = metric.max_ngram_order
    sums = [sum(int(s[j]) for s in stats) for j in range(2 + 2 * n)]
    return {
        "score": score.score, "bp": score.bp, "ratio": float(score.ratio),
        "sys_len": score.sys_len, "ref_len": score.ref_len,
        "counts": sums[2:2 + n], "totals": sums[2 + n:],
        "precisions": [float(p) for p in score.precisions],
        "formatted": score.format(),
        "formatted_signature": score.format(signature=signature),
        "signature": signature,
    }


def bleu_cases(gen):
    rng = gen.rng
    cases = []
    for i in range(260 * SCALE):
        options = bleu_options(rng)
        api = "sentence" if rng.random() < 0.4 else "corpus"
        if api == "sentence":
            options["use_effective_order"] = rng.random() < 0.85
        n_segments = 1 if api == "sentence" else rng.randint(1, 12)
        n_refs = rng.choice([1, 1, 1, 2, 3, 4])
        missing = rng.choice([0, 0, 0.15, 0.4]) if n_refs > 1 or \
            rng.random() < 0.1 else 0
        hyps, streams = corpus(gen, n_segments, n_refs, missing)
        if rng.random() < 0.95:
            fix_all_missing(hyps, streams, rng)
        case = {"kind": "bleu", "id": f"bleu_{i:03d}", "api": api,
                "options": options, "hypotheses": hyps,
                "references": streams}
        try:
            case["expected"] = bleu_expected(make_bleu(options), hyps,
                                             streams, api)
        except (TypeError, ValueError, IndexError) as e:
            case["error"] = True
            case["python_error"] = f"{type(e).__name__}: {e}"
        cases.append(case)
    # The compatibility entry points with their defaults.
    for i in range(12):
        hyps, streams = corpus(gen, rng.randint(1, 6), rng.choice([1, 2]), 0)
        if i % 2 == 0:
            score = sacrebleu.corpus_bleu(hyps, streams)
            options = {"tokenize": "13a", "smooth_method": "exp",
                       "smooth_value": None, "lowercase": False,
                       "use_effective_order": False, "max_ngram_order": 4}
            api = "corpus"
        else:
            hyps = hyps[:1]
            streams = [s[:1] for s in streams]
            score = sacrebleu.sentence_bleu(hyps[0], [s[0] for s in streams])
            options = {"tokenize": "13a", "smooth_method": "exp",
                       "smooth_value": None, "lowercase": False,
                       "use_effective_order": True, "max_ngram_order": 4}
            api = "sentence"
        expected = bleu_expected(make_bleu(options), hyps, streams, api)
        assert expected["score"] == score.score
        cases.append({"kind": "bleu", "id": f"bleu_compat_{i:02d}",
                      "api": api, "options": options, "hypotheses": hyps,
                      "references": streams, "expected": expected})
    return cases


def chrf_options(rng):
    char_order = rng.choice([6] * 6 + [0, 1, 2, 3, 4])
    word_order = rng.choice([0, 0, 2, 2, 1, 3])
    if char_order + word_order == 0:
        char_order = 6
    return {
        "char_order": char_order, "word_order": word_order,
        "beta": rng.choice([2] * 5 + [0, 1, 3]),
        "lowercase": rng.random() < 0.3,
        "whitespace": rng.random() < 0.3,
        "eps_smoothing": rng.random() < 0.35,
    }


def make_chrf(options):
    return CHRF(char_order=options["char_order"],
                word_order=options["word_order"], beta=options["beta"],
                lowercase=options["lowercase"],
                whitespace=options["whitespace"],
                eps_smoothing=options["eps_smoothing"])


def chrf_expected(metric, hyps, streams, api):
    if api == "sentence":
        score = metric.sentence_score(hyps[0], [s[0] for s in streams])
    else:
        score = metric.corpus_score(hyps, streams)
    signature = metric.get_signature().format()
    stats = metric._extract_corpus_statistics(hyps, streams)
    sums = [sum(int(s[j]) for s in stats) for j in range(len(stats[0]))]
    return {
        "score": float(score.score), "name": score.name, "stats": sums,
        "formatted": score.format(),
        "formatted_signature": score.format(signature=signature),
        "signature": signature,
    }


def chrf_cases(gen):
    rng = gen.rng
    cases = []
    for i in range(220 * SCALE):
        options = chrf_options(rng)
        api = "sentence" if rng.random() < 0.4 else "corpus"
        n_segments = 1 if api == "sentence" else rng.randint(1, 10)
        n_refs = rng.choice([1, 1, 1, 2, 3, 4])
        missing = rng.choice([0, 0.15, 0.4]) if n_refs > 1 else 0
        hyps, streams = corpus(gen, n_segments, n_refs, missing)
        if rng.random() < 0.96:
            for j in range(len(hyps)):
                if all(s[j] is None for s in streams):
                    streams[rng.randrange(n_refs)][j] = gen.join(
                        gen.words(0, 8))
        case = {"kind": "chrf", "id": f"chrf_{i:03d}", "api": api,
                "options": options, "hypotheses": hyps,
                "references": streams}
        try:
            case["expected"] = chrf_expected(make_chrf(options), hyps,
                                             streams, api)
        except (TypeError, ValueError, IndexError) as e:
            case["error"] = True
            case["python_error"] = f"{type(e).__name__}: {e}"
        cases.append(case)
    return cases


# The official SQuAD v1.1 evaluation functions (evaluate-v1.1.py), restated.
def squad_normalize_answer(s):
    def remove_articles(text):
        return re.sub(r"\b(a|an|the)\b", " ", text)

    def white_space_fix(text):
        return " ".join(text.split())

    def remove_punc(text):
        exclude = set(string.punctuation)
        return "".join(ch for ch in text if ch not in exclude)

    return white_space_fix(remove_articles(remove_punc(s.lower())))


def squad_f1(prediction, ground_truth):
    prediction_tokens = squad_normalize_answer(prediction).split()
    ground_truth_tokens = squad_normalize_answer(ground_truth).split()
    common = (collections.Counter(prediction_tokens)
              & collections.Counter(ground_truth_tokens))
    num_same = sum(common.values())
    if num_same == 0:
        return 0
    precision = 1.0 * num_same / len(prediction_tokens)
    recall = 1.0 * num_same / len(ground_truth_tokens)
    return (2 * precision * recall) / (precision + recall)


def squad_em(prediction, ground_truth):
    return squad_normalize_answer(prediction) == squad_normalize_answer(
        ground_truth)


SQUAD_WORDS = ["a", "an", "the", "A", "An", "THE", "The", "an.", "the,",
               "(the)", "a-b", "a_b", "_a", "a1", "an2", "theater", "another",
               "aa", "á", "a\u0301", "the\u0301", "ana", "thé", "ａ", "Ａ",
               "İ", "the—the", "a.the", "a'", "l'a", "à", "_the_", "ǎn",
               "Paris", "France", "Eiffel", "Tower", "1,000", "3.5", "U.S.",
               "don't", "«the»", "the…", "de", "la", "THE\u00a0END", "a\tb"]


def squad_cases(gen):
    rng = gen.rng
    cases = []
    for i in range(160 * SCALE):
        def answer():
            words = [rng.choice(SQUAD_WORDS) if rng.random() < 0.6
                     else gen.word() for _ in range(rng.randint(0, 7))]
            return gen.join(words)
        prediction = answer()
        references = [answer() for _ in range(rng.randint(1, 3))]
        if rng.random() < 0.25:
            references[0] = gen.join(gen.perturb(
                prediction.split() or ["the"]))
        em = max(squad_em(prediction, r) for r in references)
        f1 = max(squad_f1(prediction, r) for r in references)
        cases.append({"kind": "squad", "id": f"squad_{i:03d}",
                      "prediction": prediction, "references": references,
                      "expected": {
                          "exact_match": 1.0 if em else 0.0,
                          "f1": float(f1),
                          "normalized_prediction":
                              squad_normalize_answer(prediction)}})
    return cases


LOWER_CHARS = None


def pylower_cases(gen):
    """str.lower on strings dense in cased characters and sigma contexts."""
    global LOWER_CHARS
    rng = gen.rng
    if LOWER_CHARS is None:
        LOWER_CHARS = [chr(cp) for cp in range(0x110000)
                       if not 0xD800 <= cp <= 0xDFFF
                       and chr(cp).lower() != chr(cp)]
    context = ["Σ", "Σ", "Σ", "\u0301", "'", "\u00ad", "ʰ", "\u0345", " ",
               ".", "a", "1", "\u200d", "ς", "σ", "ǅ", "ᾈ"]
    cases = []
    for i in range(60 * SCALE):
        parts = []
        for _ in range(rng.randint(1, 60)):
            r = rng.random()
            if r < 0.45:
                parts.append(rng.choice(LOWER_CHARS))
            elif r < 0.8:
                parts.append(rng.choice(context))
            else:
                parts.append(gen.random_char())
        text = "".join(parts)
        cases.append({"kind": "pylower", "id": f"lower_{i:03d}",
                      "text": text, "expected": text.lower()})
    return cases


def uprops_cases(gen):
    """Property bits of every code point next to a boundary of any property
    (computed here, independently of the table generator) plus a random
    sample."""
    rng = gen.rng
    word = re.compile(r"\w")
    pats = [regex.compile(p) for p in (r"\p{P}", r"\p{S}", r"\p{N}")]
    is_zh = TokenizerZh._is_chinese_char

    def flags(cp):
        c = chr(cp)
        f = 0
        f |= 1 if c.isspace() else 0
        f |= 2 if c.isalnum() else 0
        f |= 4 if word.match(c) else 0
        f |= 8 if pats[0].match(c) else 0
        f |= 16 if pats[1].match(c) else 0
        f |= 32 if pats[2].match(c) else 0
        f |= 64 if is_zh(c) else 0
        return f

    def lowered(cp):
        return chr(cp).lower() if cp != 0x3A3 else "\u03c3"

    wanted = set()
    prev_f, prev_d = flags(0), ord(lowered(0)[0]) - 0
    for cp in range(1, 0x110000):
        f = flags(cp)
        low = lowered(cp)
        d = ord(low[0]) - cp if len(low) == 1 else None
        if f != prev_f or d != prev_d:
            wanted.update((cp - 1, cp))
        prev_f, prev_d = f, d
    points = sorted(wanted)
    points += sorted(rng.randrange(0x110000) for _ in range(1500))
    points += [0, 0x10FFFF, 0xD800, 0xDFFF]
    rows = [[cp, flags(cp), [ord(ch) for ch in lowered(cp)]]
            for cp in points]
    # Several lines of ~2000 points keep each line a reasonable size.
    return [{"kind": "uprops", "id": f"uprops_{i // 2000:02d}",
             "points": rows[i:i + 2000]} for i in range(0, len(rows), 2000)]


GENERATORS = [
    ("tokenize", tokenize_cases),
    ("bleu", bleu_cases),
    ("chrf", chrf_cases),
    ("squad", squad_cases),
    ("pylower", pylower_cases),
    ("uprops", uprops_cases),
]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--any-version", action="store_true")
    parser.add_argument("--out", default=OUT)
    parser.add_argument("--seed", type=int, default=SEED,
                        help="another seed, for a larger local stress set")
    parser.add_argument("--scale", type=int, default=1,
                        help="multiply the number of cases (stress runs; "
                             "point LLMSYS_TEXT_CASES at the file)")
    args = parser.parse_args()
    global SCALE
    SCALE = args.scale
    versions = {"sacrebleu": sacrebleu.__version__,
                "regex": regex.__version__,
                "unicodedata": unicodedata.unidata_version}
    if versions != EXPECTED_VERSIONS and not args.any_version:
        sys.exit(f"expected {EXPECTED_VERSIONS}, found {versions}")
    logging.getLogger("sacrebleu").setLevel(logging.ERROR)
    rng = random.Random(args.seed)
    gen = TextGen(rng, regex_vs_python_diffs())
    lines = []
    counts = {}
    for name, fn in GENERATORS:
        cases = fn(gen)
        counts[name] = len(cases)
        lines += [json.dumps(c, ensure_ascii=False) for c in cases]
    meta = {"kind": "meta", "versions": versions,
            "python": sys.version.split()[0], "seed": args.seed,
            "counts": counts}
    with open(args.out, "w", encoding="utf-8", newline="\n") as f:
        f.write(json.dumps(meta) + "\n")
        for line in lines:
            f.write(line + "\n")
    size = os.path.getsize(args.out)
    print(f"wrote {args.out}: {sum(counts.values())} cases, {size} bytes, "
          f"{counts}")


if __name__ == "__main__":
    main()
