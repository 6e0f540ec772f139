#!/usr/bin/env bash
# tests/tools/writing_plugins_doc_test.sh — follows docs/writing-plugins.md as
# a newcomer would, so that every command in the tutorial keeps working.
#
# The page is turned into one bash script (set -euo pipefail), in page order:
#
#   ```sh block                    its lines run as they are (cd, export and
#                                  variables carry over, as in a terminal);
#   <!-- file: PATH -->            the next fenced block is written to PATH
#                                  (relative to the current folder then),
#                                  byte for byte, as the reader saves it;
#   <!-- excerpt: PATH -->         every line of the next block, but "...",
#                                  must occur in PATH at that point (the tour
#                                  of generated code cannot drift from it);
#   <!-- output -->                every line of the next ```text block, but
#                                  "...", must occur in the output of the sh
#                                  block before it, in order; "..." inside a
#                                  line matches anything, runs of spaces match
#                                  runs of spaces;
#   ```text block without a marker is illustrative output and is not checked.
#
# Any other fenced block (toml, cpp, diff, ...) without a file: or excerpt:
# marker is an error: the reader would be shown something the test skips.
#
# The script runs in a fresh folder standing in for a clone with
# tools/setup.sh done: build/ is BUILD_DIR, experiments/ and data/ are the
# source tree's; HOME is an empty folder, so `cmake --install build --prefix
# $HOME/llmsys` and the plugin folders land there. Then the test checks the
# artefacts: the comparison's files list every variant, the report has its
# charts, the pinned run was refused with the pin's message.
#
#   tests/tools/writing_plugins_doc_test.sh BUILD_DIR
#
# Registered with CTest by tests/tools/CMakeLists.txt (release builds).
set -euo pipefail

build=$(cd "$1" && pwd)
source_dir=$(cd "$(dirname "$0")/../.." && pwd)
doc=$source_dir/docs/writing-plugins.md
work=$(mktemp -d "${TMPDIR:-/tmp}/llmsys_writing_plugins.XXXXXX")
trap 'rm -rf "$work"' EXIT
unset LLMSYS_PLUGIN_PATH

fail() {
  echo "FAIL: $*" >&2
  exit 1
}

[[ -f "$doc" ]] || fail "no $doc"
mkdir -p "$work/home" "$work/clone" "$work/blocks" "$work/logs"
ln -s "$build" "$work/clone/build"
ln -s "$source_dir/experiments" "$work/clone/experiments"
ln -s "$source_dir/data" "$work/clone/data"

# The page as a script. Helpers the generated script calls:
#   __block N LINE      the sh block N (at the page's LINE) starts: its output
#                       goes to logs/N.log
#   __excerpt PATH F L  every line of F but "..." occurs in PATH
cat >"$work/tutorial.sh" <<'HEAD'
set -euo pipefail
__block() {
  echo "$1 $2" >"$LLMSYS_DOC_LOGS/current"
  exec >"$LLMSYS_DOC_LOGS/$1.log" 2>&1
}
__excerpt() {
  local line
  [[ -f "$1" ]] || { echo "FAIL: docs/writing-plugins.md:$3: excerpt of $1, which does not exist" >&2; exit 1; }
  while IFS= read -r line; do
    line=$(sed -e 's/^[[:space:]]*//' -e 's/[[:space:]]*$//' <<<"$line")
    [[ -z "$line" || "$line" == "..." ]] && continue
    grep -qF -- "$line" "$1" ||
      { echo "FAIL: docs/writing-plugins.md:$3: the excerpt of $1 shows a line it does not have: $line" >&2; exit 1; }
  done <"$2"
}
HEAD

# awk writes the script's body, the blocks (blocks/N) and the list of output
# checks (checks: "BLOCK_FILE SH_BLOCK PAGE_LINE").
awk -v blocks="$work/blocks" -v checks="$work/checks" '
  function die(msg) { print "FAIL: docs/writing-plugins.md:" NR ": " msg > "/dev/stderr"; bad = 1; exit 1 }
  BEGIN { in_block = 0; sh = 0; n = 0; marker = ""; arg = "" }
  in_block && /^```[[:space:]]*$/ {
    if (kind == "file") print "LLMSYS_DOC_EOF"
    if (kind == "excerpt") print "__excerpt " q(arg) " " q(path) " " start
    if (kind == "output") print path " " sh " " start > checks
    in_block = 0; next
  }
  in_block {
    if (kind == "sh" || kind == "file") print
    if (kind == "file" && $0 == "LLMSYS_DOC_EOF") die("a block may not hold LLMSYS_DOC_EOF")
    if (kind == "excerpt" || kind == "output") print > path
    next
  }
  /^[[:space:]]+```/ { die("an indented fence: start fenced blocks in column 1") }
  /^<!-- (file|excerpt): [^ ]+ -->$/ {
    if (marker != "") die("two markers before one block")
    marker = $2; sub(/:$/, "", marker); arg = $3; next
  }
  /^<!-- output -->$/ {
    if (marker != "") die("two markers before one block")
    marker = "output"; next
  }
  /^```/ {
    lang = substr($0, 4); start = NR; in_block = 1; n++
    path = blocks "/" n
    if (marker == "file") {
      kind = "file"
      print "cat >" q(arg) " <<'\''LLMSYS_DOC_EOF'\''"
    } else if (marker == "excerpt") {
      kind = "excerpt"; printf "" > path
    } else if (marker == "output") {
      if (lang != "text") die("<!-- output --> must precede a ```text block")
      if (sh == 0) die("<!-- output --> before any ```sh block")
      kind = "output"; printf "" > path
    } else if (lang == "sh") {
      kind = "sh"; sh++
      print "__block " sh " " NR
    } else if (lang == "text" || lang == "") {
      kind = "skip"
    } else {
      die("a ```" lang " block without <!-- file: PATH --> or <!-- excerpt: PATH -->: the test would skip it")
    }
    marker = ""; next
  }
  marker != "" && !/^[[:space:]]*$/ { die("a marker not followed by a fenced block") }
  function q(s) { gsub(/'\''/, "'\''\\'\'''\''", s); return "'\''" s "'\''" }
  END {
    if (bad) exit 1
    if (in_block) { print "FAIL: docs/writing-plugins.md: a fenced block is not closed" > "/dev/stderr"; exit 1 }
    if (sh == 0) { print "FAIL: docs/writing-plugins.md: no ```sh block" > "/dev/stderr"; exit 1 }
  }
' "$doc" >>"$work/tutorial.sh" || fail "cannot read the page's blocks"
touch "$work/checks"
echo "== docs/writing-plugins.md: $(grep -c '^__block ' "$work/tutorial.sh") sh blocks"

# Run it: one process, as one terminal session, from the clone's root.
status=0
(cd "$work/clone" && HOME="$work/home" LLMSYS_DOC_LOGS="$work/logs" \
  bash "$work/tutorial.sh") || status=$?
if ((status != 0)); then
  read -r block line <"$work/logs/current" || true
  echo "--- output of the sh block at docs/writing-plugins.md:$line (last 60 lines):" >&2
  tail -n 60 "$work/logs/$block.log" >&2 || true
  fail "the block at docs/writing-plugins.md:$line failed (exit status $status)"
fi
for log in "$work"/logs/*.log; do cat "$log"; done >"$work/all.log"

# Expected output: each line (but "...") in the sh block's output, in order;
# "..." within a line matches anything and runs of spaces any run of spaces.
regex_of() {  # an extended regular expression for one expected line
  sed -e 's/[][\.^$*+?(){}|]/\\&/g' -e 's/\\\.\\\.\\\./.*/g' \
    -e 's/[[:space:]][[:space:]]*/[[:space:]]+/g' <<<"$1"
}
while read -r expected block line; do
  from=1
  while IFS= read -r want; do
    want=$(sed -e 's/^[[:space:]]*//' -e 's/[[:space:]]*$//' <<<"$want")
    [[ -z "$want" || "$want" == "..." ]] && continue
    regex=$(regex_of "$want")
    at=$(tail -n "+$from" "$work/logs/$block.log" | grep -nE -m1 -- "$regex" | cut -d: -f1) ||
      true
    if [[ -z "$at" ]]; then
      echo "--- output of the sh block before docs/writing-plugins.md:$line:" >&2
      cat "$work/logs/$block.log" >&2
      fail "docs/writing-plugins.md:$line shows '$want', which that output lacks (after line $from)"
    fi
    from=$((from + at))
  done <"$expected"
done <"$work/checks"
echo "ok $(wc -l <"$work/checks") output blocks match"

# What the tutorial promises at the end.
cmp_dir=$work/home/my_attention/runs/attention-compare
for f in compare.json compare.csv report.html; do
  [[ -s "$cmp_dir/$f" ]] || fail "no $cmp_dir/$f after the tutorial"
done
for v in naive blas mine; do
  [[ -f "$cmp_dir/$v/summary.json" ]] || fail "variant $v has no summary.json"
  grep -q "^$v,ok," "$cmp_dir/compare.csv" ||
    { cat "$cmp_dir/compare.csv"; fail "compare.csv has no successful row for $v"; }
  grep -q "data-variant=\"$v\"" "$cmp_dir/report.html" ||
    fail "report.html does not show variant $v"
done
grep -q 'attention.my_attention' "$cmp_dir/mine/summary.json" ||
  fail "variant mine did not run attention.my_attention"
# The same attention as naive, up to rounding: the final losses agree (the
# operator with the tutorial's bug in it, had it stayed, would not).
loss() {  # loss VARIANT COLUMN: a value of compare.csv's row VARIANT
  awk -F, -v v="$1" -v c="$2" 'NR == 1 { for (i = 1; i <= NF; ++i) if ($i == c) k = i }
    NR > 1 && $1 == v && k { print $k }' "$cmp_dir/compare.csv"
}
for column in train_loss val_loss; do
  a=$(loss naive "$column") b=$(loss mine "$column")
  awk -v a="$a" -v b="$b" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(a != "" && d <= 1e-3 * a) }' ||
    fail "$column: mine $b, naive $a: the tutorial's attention should match the reference"
done
# The compare table names the three variants and the swapped implementation.
grep -Eq '^ +naive +blas +mine *$' "$work/all.log" ||
  fail "the compare table's header 'naive blas mine' is missing"
grep -Eq '^ops\.attention +naive +blas +my_attention *$' "$work/all.log" ||
  fail "the compare table's row ops.attention is missing"
[[ $(grep -c '<path class="train-loss"' "$cmp_dir/report.html") -eq 3 ]] ||
  fail "report.html should hold 3 training-loss curves"
# The page says the variants differ in nothing but ops.attention.
grep -q '"warnings": \[\]' "$cmp_dir/compare.json" ||
  { grep -A5 '"warnings"' "$cmp_dir/compare.json"; fail "compare.json has warnings; the page says there are none"; }
# Sharing: the pinned run of team B used the plugin it was sent; the new
# build was refused by the pin before training.
grep -q '"sha256"' "$work/home/team_b/runs/pinned/provenance.json" ||
  fail "team B's pinned run has no provenance.json with sha256"
grep -Eq 'pins: my_attention\.so has sha256 [0-9a-f]{64}, the experiment pins [0-9a-f]{64}' \
  "$work/all.log" || fail "the pin mismatch message is missing"
echo "ok the tutorial ran: install, scaffold, edit, check, compare, share, pin"
