#!/usr/bin/env python3
"""Generates plugins/evaluators/text/unicode_tables.inc.

The text metrics (plugins/evaluators/text) must see characters exactly as
sacreBLEU 2.6.0 sees them, and sacreBLEU uses two different Unicode databases:

  * CPython's own (str.lower, str.isspace, str.split, str.isalnum and the `re`
    module's \\w), Unicode 14.0.0 in CPython 3.11;
  * the `regex` module's (\\p{P}, \\p{S}, \\p{N} in the `intl` tokenizer),
    Unicode 17.0.0 in regex 2026.5.9.

So every table is read off the running interpreter and libraries by asking
them about each code point, never from UCD files: what the script records is
what sacreBLEU does. Run it with the pyenv python3 that has sacrebleu 2.6.0
and regex installed:

    python3 tools/gen_unicode_tables.py          # rewrites the .inc
    python3 tools/gen_unicode_tables.py --out -  # to stdout

It refuses to run against other versions unless --any-version is given (the
header of the output names the versions it was made with).
"""

import argparse
import os
import re
import sys
import unicodedata

import regex
import sacrebleu
from sacrebleu.tokenizers.tokenizer_zh import TokenizerZh

EXPECTED = {
    "python": "3.11",
    "unicodedata": "14.0.0",
    "regex": "2026.5.9",
    "sacrebleu": "2.6.0",
}

# The regex module does not report its Unicode version; its documentation
# for 2026.5.9 says 17.0.0.
REGEX_UNICODE = "17.0.0"

MAX_CP = 0x110000
OUT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                   "plugins", "evaluators", "text", "unicode_tables.inc")
SIGMA = 0x3A3


def ranges_of(pred):
    """Sorted closed ranges [lo, hi] of the code points where pred is true."""
    out = []
    start = None
    for cp in range(MAX_CP):
        if pred(cp):
            if start is None:
                start = cp
        elif start is not None:
            out.append((start, cp - 1))
            start = None
    if start is not None:
        out.append((start, MAX_CP - 1))
    return out


def lower_tables():
    """CPython's str.lower per code point, as runs plus multi-char specials.

    Returns (runs, specials): runs are (first, count, stride, delta) meaning
    first + k*stride maps to itself + delta for k < count; specials are
    (cp, lowered string) for the few with a multi-character lowercase.
    Capital sigma is left out: str.lower treats it by context (final sigma).
    """
    pairs = []
    specials = []
    for cp in range(MAX_CP):
        if cp == SIGMA:
            continue
        low = chr(cp).lower()
        if low == chr(cp):
            continue
        if len(low) == 1:
            pairs.append((cp, ord(low) - cp))
        else:
            specials.append((cp, low))
    runs = []
    i = 0
    while i < len(pairs):
        first, delta = pairs[i]
        count = 1
        stride = 1
        if i + 1 < len(pairs) and pairs[i + 1][1] == delta:
            gap = pairs[i + 1][0] - first
            if gap in (1, 2):
                stride = gap
                while (i + count < len(pairs)
                       and pairs[i + count][1] == delta
                       and pairs[i + count][0] == first + count * stride):
                    count += 1
        runs.append((first, count, stride, delta))
        i += count
    return runs, specials


def sigma_context_tables():
    """The two properties str.lower's final-sigma rule reads.

    CPython lowers U+03A3 to U+03C2 when it follows a cased letter (skipping
    case-ignorable ones) and no cased letter follows (same skipping). Python
    does not expose Cased / Case_Ignorable, so they are probed through
    str.lower itself: with c ignorable, "A" c "Σ" ends in ς but c "Σ" does
    not; with c cased (and not ignorable) both do; otherwise neither.
    """
    ignorable = []
    cased = []
    for cp in range(MAX_CP):
        c = chr(cp)
        after_a = ("A" + c + "\u03a3").lower()[-1] == "\u03c2"
        alone = (c + "\u03a3").lower()[-1] == "\u03c2"
        if after_a and not alone:
            ignorable.append(cp)
        elif after_a and alone:
            cased.append(cp)
        elif alone:
            sys.exit(f"sigma probe inconsistent at U+{cp:04X}")
        # Forward check of the same property: "AΣ" c stays final unless c is
        # cased and not ignorable.
        forward = ("A\u03a3" + c).lower()[1] == "\u03c2"
        if forward != (not (alone and after_a)):
            sys.exit(f"forward sigma probe inconsistent at U+{cp:04X}")
    return set(ignorable), set(cased)


def check_python_predicates():
    """Asserts the identities the C++ side relies on."""
    word = re.compile(r"\w")
    for cp in range(MAX_CP):
        c = chr(cp)
        if bool(word.match(c)) != (c.isalnum() or c == "_"):
            sys.exit(f"re \\w differs from isalnum at U+{cp:04X}")
        if (len(("a" + c + "b").split()) == 2) != c.isspace():
            sys.exit(f"str.split differs from isspace at U+{cp:04X}")


def emit_ranges(name, ranges, comment):
    lines = [f"// {comment} ({len(ranges)} ranges)",
             f"inline constexpr CodeRange {name}[] = {{"]
    row = ""
    for lo, hi in ranges:
        item = f"{{0x{lo:X}, 0x{hi:X}}}, "
        if len(row) + len(item) > 78:
            lines.append("    " + row.rstrip())
            row = ""
        row += item
    if row:
        lines.append("    " + row.rstrip())
    lines.append("};")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--any-version", action="store_true",
                        help="run even if the library versions differ")
    parser.add_argument("--out", default=OUT,
                        help="output file, '-' for stdout")
    args = parser.parse_args()
    found = {
        "python": f"{sys.version_info.major}.{sys.version_info.minor}",
        "unicodedata": unicodedata.unidata_version,
        "regex": regex.__version__,
        "sacrebleu": sacrebleu.__version__,
    }
    if found != EXPECTED and not args.any_version:
        sys.exit(f"expected {EXPECTED}, found {found} "
                 "(--any-version to go on)")

    check_python_predicates()
    space = ranges_of(lambda cp: chr(cp).isspace())
    alnum = ranges_of(lambda cp: chr(cp).isalnum())
    ignorable, cased = sigma_context_tables()
    ign_ranges = ranges_of(lambda cp: cp in ignorable)
    cased_ranges = ranges_of(lambda cp: cp in cased)
    runs, specials = lower_tables()
    if [cp for cp, _ in specials] != [0x130]:
        sys.exit(f"unexpected multi-character lowercase: {specials}")
    p_re, s_re, n_re = (regex.compile(p) for p in (r"\p{P}", r"\p{S}",
                                                   r"\p{N}"))
    punct = ranges_of(lambda cp: p_re.match(chr(cp)) is not None)
    symbol = ranges_of(lambda cp: s_re.match(chr(cp)) is not None)
    number = ranges_of(lambda cp: n_re.match(chr(cp)) is not None)
    # The zh tokenizer's own test, applied to every code point: its table
    # has typos ('\u20000' is U+2000 followed by '0') that change the ranges,
    # and those are what sacreBLEU does.
    is_zh = TokenizerZh._is_chinese_char
    chinese = ranges_of(lambda cp: is_zh(chr(cp)))

    out = []
    out.append("// Generated by tools/gen_unicode_tables.py -- do not edit.")
    out.append(f"// CPython {sys.version.split()[0]} (unicodedata "
               f"{unicodedata.unidata_version}), regex {regex.__version__} "
               f"(Unicode {REGEX_UNICODE}),")
    out.append(f"// sacrebleu {sacrebleu.__version__}.")
    out.append("// Included by unicode.cc only.")
    out.append("")
    out.append("// NOLINTBEGIN")
    out.append("// clang-format off")
    out.append(f'inline constexpr char kPythonUnicodeVersionText[] = '
               f'"{unicodedata.unidata_version}";')
    out.append(f'inline constexpr char kRegexModuleVersionText[] = '
               f'"{regex.__version__}";')
    out.append(f'inline constexpr char kRegexUnicodeVersionText[] = '
               f'"{REGEX_UNICODE}";')
    out.append("")
    out.append(emit_ranges("kPySpace", space,
                           "CPython str.isspace (what str.split splits on)"))
    out.append("")
    out.append(emit_ranges("kPyAlnum", alnum, "CPython str.isalnum"))
    out.append("")
    out.append(emit_ranges("kCaseIgnorable", ign_ranges,
                           "Case_Ignorable as CPython's final-sigma rule "
                           "sees it"))
    out.append("")
    out.append(emit_ranges("kCasedNotIgnorable", cased_ranges,
                           "Cased and not Case_Ignorable, ditto"))
    out.append("")
    out.append(emit_ranges("kRegexPunct", punct, r"regex \p{P}"))
    out.append("")
    out.append(emit_ranges("kRegexSymbol", symbol, r"regex \p{S}"))
    out.append("")
    out.append(emit_ranges("kRegexNumber", number, r"regex \p{N}"))
    out.append("")
    out.append(emit_ranges("kZhChinese", chinese,
                           "sacrebleu TokenizerZh._is_chinese_char"))
    out.append("")
    out.append("// CPython str.lower, one code point to one: first + "
               "k*stride maps to itself")
    out.append(f"// + delta for k < count ({len(runs)} runs; U+03A3 is "
               f"handled by context, U+0130 below).")
    out.append("inline constexpr LowerRun kPyLowerRuns[] = {")
    for first, count, stride, delta in runs:
        out.append(f"    {{0x{first:X}, {count}, {stride}, {delta}}},")
    out.append("};")
    out.append("")
    low = "".join(f"0x{ord(ch):X}, " for ch in specials[0][1]).rstrip(", ")
    out.append(f"// U+0130 lowers to {len(specials[0][1])} code points.")
    out.append(f"inline constexpr char32_t kLowerOf0130[] = {{{low}}};")
    out.append("// clang-format on")
    out.append("// NOLINTEND")
    text = "\n".join(out) + "\n"
    if args.out == "-":
        sys.stdout.write(text)
    else:
        with open(args.out, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)


if __name__ == "__main__":
    main()
