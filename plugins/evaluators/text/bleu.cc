#include "plugins/evaluators/text/bleu.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <stdexcept>
#include <utility>

#include "plugins/evaluators/text/format.h"
#include "plugins/evaluators/text/span_table.h"
#include "plugins/evaluators/text/unicode.h"

namespace llmsys::text {
namespace {

using internal::FormatFixed;
using internal::SpanTable;

enum Tokenizer { k13a = 0, kNoneTok, kIntl, kChar, kZh };
enum Smooth { kExp = 0, kFloor, kAddK, kNoSmooth };

template <size_t N>
std::string JoinNames(const std::string_view (&names)[N]) {
  std::string out;
  for (size_t i = 0; i < N; ++i) {
    if (i > 0) out += ", ";
    out += '\'';
    out += names[i];
    out += '\'';
  }
  return out;
}

template <size_t N>
int IndexOf(const std::string_view (&names)[N], std::string_view name) {
  for (size_t i = 0; i < N; ++i) {
    if (names[i] == name) return static_cast<int>(i);
  }
  return -1;
}

int ParseTokenizer(std::string_view name) {
  const int index = IndexOf(kBleuTokenizers, name);
  if (index < 0) {
    throw std::invalid_argument("BLEU: unknown tokenizer '" +
                                std::string(name) + "'; expected one of " +
                                JoinNames(kBleuTokenizers));
  }
  return index;
}

// The first expression of sacreBLEU's TokenizerRegexp (13a and zh), the
// class [\{-\~\[-\` -\&\(-\+\:-\@\/]: ASCII punctuation and symbols except
// ' , - . and the space itself, which is in it too.
constexpr bool Is13aSeparated(char32_t c) {
  return (c >= 0x20 && c <= 0x26) || (c >= 0x28 && c <= 0x2B) || c == 0x2F ||
         (c >= 0x3A && c <= 0x40) || (c >= 0x5B && c <= 0x60) ||
         (c >= 0x7B && c <= 0x7E);
}
constexpr bool IsAsciiDigit(char32_t c) { return c >= '0' && c <= '9'; }
constexpr bool IsDotOrComma(char32_t c) { return c == '.' || c == ','; }

// Python's s.replace(from, to): left to right, non-overlapping.
void ReplaceAll(std::u32string* s, std::u32string_view from,
                std::u32string_view to, std::u32string* tmp) {
  size_t pos = s->find(from);
  if (pos == std::u32string::npos) return;
  tmp->clear();
  size_t done = 0;
  while (pos != std::u32string::npos) {
    tmp->append(*s, done, pos - done);
    tmp->append(to);
    done = pos + from.size();
    pos = s->find(from, done);
  }
  tmp->append(*s, done, std::u32string::npos);
  s->swap(*tmp);
}

// re.sub(r'(X)', r' \1 ', s) for a one-character class X.
template <typename X>
void PadPass(std::u32string_view in, std::u32string* out, X x) {
  out->clear();
  for (char32_t c : in) {
    if (x(c)) {
      out->push_back(' ');
      out->push_back(c);
      out->push_back(' ');
    } else {
      out->push_back(c);
    }
  }
}

// re.sub(r'(A)(B)', r'\1 \2 ', s) (or r' \1 \2' when `lead_space`) for
// one-character classes A and B: matches are found left to right and do not
// overlap, so a character taken as B is not tried again as A.
template <typename A, typename B>
void PairPass(std::u32string_view in, std::u32string* out, A a, B b,
              bool lead_space) {
  out->clear();
  const size_t n = in.size();
  size_t i = 0;
  while (i < n) {
    if (i + 1 < n && a(in[i]) && b(in[i + 1])) {
      if (lead_space) out->push_back(' ');
      out->push_back(in[i]);
      out->push_back(' ');
      out->push_back(in[i + 1]);
      if (!lead_space) out->push_back(' ');
      i += 2;
    } else {
      out->push_back(in[i]);
      ++i;
    }
  }
}

// sacreBLEU's TokenizerRegexp before its final whitespace normalization:
// `in` -> `*out` (tmp is scratch).
void RegexpPasses(std::u32string_view in, std::u32string* out,
                  std::u32string* tmp) {
  PadPass(in, tmp, Is13aSeparated);
  // Period and comma unless preceded by a digit.
  PairPass(
      *tmp, out, [](char32_t c) { return !IsAsciiDigit(c); }, IsDotOrComma,
      false);
  // Period and comma unless followed by a digit.
  PairPass(
      *out, tmp, IsDotOrComma, [](char32_t c) { return !IsAsciiDigit(c); },
      true);
  // Dash when preceded by a digit.
  PairPass(
      *tmp, out, IsAsciiDigit, [](char32_t c) { return c == '-'; }, false);
}

// Applies tokenizer `kind` to `line`, leaving in `*out` a text whose
// Python-whitespace-separated words are the tokens. a and b are scratch.
void TokenizeRaw(int kind, std::u32string_view line, std::u32string* out,
                 std::u32string* a, std::u32string* b) {
  switch (kind) {
    case k13a: {
      a->assign(line);
      ReplaceAll(a, U"<skipped>", U"", b);
      ReplaceAll(a, U"-\n", U"", b);
      ReplaceAll(a, U"\n", U" ", b);
      if (a->find(U'&') != std::u32string::npos) {
        ReplaceAll(a, U"&quot;", U"\"", b);
        ReplaceAll(a, U"&amp;", U"&", b);
        ReplaceAll(a, U"&lt;", U"<", b);
        ReplaceAll(a, U"&gt;", U">", b);
      }
      b->clear();
      b->push_back(' ');
      b->append(*a);
      b->push_back(' ');
      RegexpPasses(*b, out, a);
      return;
    }
    case kNoneTok:
      out->assign(line);
      return;
    case kIntl: {
      // regex module: (\P{N})(\p{P}) -> '\1 \2 ', (\p{P})(\P{N}) ->
      // ' \1 \2', (\p{S}) -> ' \1 '.
      const auto not_number = [](char32_t c) { return !RegexIsNumber(c); };
      PairPass(line, a, not_number, RegexIsPunctuation, false);
      PairPass(*a, b, RegexIsPunctuation, not_number, true);
      PadPass(*b, out, RegexIsSymbol);
      return;
    }
    case kChar:
      // " ".join(line): the words are the non-space characters.
      out->assign(line);
      return;
    case kZh: {
      a->clear();
      for (char32_t c : PyStrip(line)) {
        if (IsSacrebleuChineseChar(c)) {
          a->push_back(' ');
          a->push_back(c);
          a->push_back(' ');
        } else {
          a->push_back(c);
        }
      }
      RegexpPasses(*a, out, b);
      return;
    }
    default:
      throw std::logic_error("BLEU: tokenizer index out of range");
  }
}

// Appends the tokens of a TokenizeRaw output to `tokens`.
void SplitTokens(int kind, std::u32string_view text,
                 std::vector<std::u32string_view>* tokens) {
  if (kind == kChar) {
    for (size_t i = 0; i < text.size(); ++i) {
      if (!PyIsSpace(text[i])) tokens->push_back(text.substr(i, 1));
    }
    return;
  }
  const size_t n = text.size();
  size_t i = 0;
  while (i < n) {
    while (i < n && PyIsSpace(text[i])) ++i;
    const size_t start = i;
    while (i < n && !PyIsSpace(text[i])) ++i;
    if (i > start) tokens->push_back(text.substr(start, i - start));
  }
}

}  // namespace

struct Bleu::Scratch {
  std::u32string decoded;
  std::u32string lowered;
  std::u32string tmp_a;
  std::u32string tmp_b;
  // Per text of the segment (hypothesis first, then present references):
  // the tokenizer output and its tokens.
  std::vector<std::u32string> tokenized;
  std::vector<std::u32string_view> tokens;
  std::vector<size_t> token_begin;  // per text, index into tokens; +1 end
  std::vector<uint32_t> ids;        // token ids, same layout as tokens
  SpanTable<char32_t> vocab;        // token text -> id, per segment
  SpanTable<uint32_t> ngrams;       // hypothesis n-grams, per segment
};

std::string BleuTokenize(std::string_view tokenizer, std::string_view line) {
  const int kind = ParseTokenizer(tokenizer);
  const std::u32string text = DecodeUtf8OrThrow(line, "BleuTokenize: line");
  std::u32string out, a, b;
  TokenizeRaw(kind, text, &out, &a, &b);
  std::vector<std::u32string_view> tokens;
  SplitTokens(kind, out, &tokens);
  std::string joined;
  for (size_t i = 0; i < tokens.size(); ++i) {
    if (i > 0) joined.push_back(' ');
    AppendUtf8(tokens[i], &joined);
  }
  return joined;
}

Bleu::Bleu(BleuOptions options)
    : options_(std::move(options)), scratch_(std::make_unique<Scratch>()) {
  tokenizer_ = ParseTokenizer(options_.tokenize);
  smooth_ = IndexOf(kBleuSmoothMethods, options_.smooth_method);
  if (smooth_ < 0) {
    throw std::invalid_argument("BLEU: unknown smooth_method '" +
                                options_.smooth_method + "'; expected one of " +
                                JoinNames(kBleuSmoothMethods));
  }
  if (options_.max_ngram_order < 1) {
    throw std::invalid_argument("BLEU: max_ngram_order must be >= 1, got " +
                                std::to_string(options_.max_ngram_order));
  }
  if (options_.smooth_value.has_value() &&
      !std::isfinite(*options_.smooth_value)) {
    throw std::invalid_argument("BLEU: smooth_value must be finite");
  }
  smooth_value_ = options_.smooth_value.value_or(smooth_ == kFloor ? 0.1 : 1.0);
  totals_.counts.assign(options_.max_ngram_order, 0);
  totals_.totals.assign(options_.max_ngram_order, 0);
}

Bleu::~Bleu() = default;
Bleu::Bleu(Bleu&&) noexcept = default;
Bleu& Bleu::operator=(Bleu&&) noexcept = default;

BleuStats Bleu::SegmentStats(
    std::string_view hypothesis,
    const std::vector<std::optional<std::string_view>>& references) {
  Scratch& s = *scratch_;
  const int max_n = options_.max_ngram_order;

  // Tokenize the hypothesis (text 0) and each present reference.
  size_t num_texts = 1;
  for (const auto& ref : references) num_texts += ref.has_value() ? 1 : 0;
  if (s.tokenized.size() < num_texts) s.tokenized.resize(num_texts);
  s.tokens.clear();
  s.token_begin.clear();
  size_t text_index = 0;
  const auto tokenize_one = [&](std::string_view utf8, size_t ref_number) {
    DecodeSegmentText(utf8, "BLEU", ref_number, &s.decoded);
    std::u32string_view view = s.decoded;
    if (options_.lowercase) {
      PyLowerInto(s.decoded, &s.lowered);
      view = s.lowered;
    }
    std::u32string& out = s.tokenized[text_index++];
    TokenizeRaw(tokenizer_, PyRstrip(view), &out, &s.tmp_a, &s.tmp_b);
    s.token_begin.push_back(s.tokens.size());
    SplitTokens(tokenizer_, out, &s.tokens);
  };
  tokenize_one(hypothesis, 0);
  for (size_t k = 0; k < references.size(); ++k) {
    if (references[k].has_value()) tokenize_one(*references[k], k + 1);
  }
  s.token_begin.push_back(s.tokens.size());

  // Token ids, shared by all texts of the segment.
  s.vocab.Clear();
  s.ids.resize(s.tokens.size());
  for (size_t t = 0; t < s.tokens.size(); ++t) {
    const std::u32string_view tok = s.tokens[t];
    uint64_t h = SpanTable<char32_t>::kSeed;
    for (char32_t c : tok) h = SpanTable<char32_t>::Step(h, c);
    s.ids[t] =
        s.vocab.FindOrInsert(tok.data(), static_cast<uint32_t>(tok.size()), h)
            ->id;
  }

  BleuStats stats;
  stats.counts.assign(max_n, 0);
  stats.totals.assign(max_n, 0);
  const uint32_t* hyp = s.ids.data();
  const int64_t hyp_len = static_cast<int64_t>(s.token_begin[1]);
  stats.sys_len = hyp_len;
  const size_t num_refs = num_texts - 1;
  if (num_refs == 0 && hyp_len > 0) {
    throw std::invalid_argument(
        "BLEU: no reference (all missing) but a non-empty hypothesis; "
        "sacreBLEU fails on this input too");
  }

  // Hypothesis n-gram counts (count_a).
  s.ngrams.Clear();
  for (int64_t i = 0; i < hyp_len; ++i) {
    uint64_t h = SpanTable<uint32_t>::kSeed;
    const int64_t top = std::min<int64_t>(max_n, hyp_len - i);
    for (int64_t n = 1; n <= top; ++n) {
      h = SpanTable<uint32_t>::Step(h, hyp[i + n - 1]);
      s.ngrams.FindOrInsert(hyp + i, static_cast<uint32_t>(n), h)->count_a++;
    }
  }

  // Per reference: counts of the n-grams the hypothesis has (count_c, valid
  // while stamp is the reference's), their maximum over references (count_b)
  // and the length closest to the hypothesis' (shorter on ties).
  int64_t closest_diff = -1;
  int64_t closest_len = -1;
  for (size_t r = 0; r < num_refs; ++r) {
    const uint32_t* ref = s.ids.data() + s.token_begin[r + 1];
    const auto ref_len =
        static_cast<int64_t>(s.token_begin[r + 2] - s.token_begin[r + 1]);
    const int64_t diff = std::abs(hyp_len - ref_len);
    if (closest_diff == -1 || diff < closest_diff) {
      closest_diff = diff;
      closest_len = ref_len;
    } else if (diff == closest_diff && ref_len < closest_len) {
      closest_len = ref_len;
    }
    const auto stamp = static_cast<uint32_t>(r + 1);
    for (int64_t i = 0; i < ref_len; ++i) {
      uint64_t h = SpanTable<uint32_t>::kSeed;
      const int64_t top = std::min<int64_t>(max_n, ref_len - i);
      for (int64_t n = 1; n <= top; ++n) {
        h = SpanTable<uint32_t>::Step(h, ref[i + n - 1]);
        auto* e = s.ngrams.Find(ref + i, static_cast<uint32_t>(n), h);
        if (e == nullptr) break;  // nor is any longer one in the hypothesis
        if (e->stamp != stamp) {
          e->stamp = stamp;
          e->count_c = 0;
        }
        e->count_b = std::max(e->count_b, ++e->count_c);
      }
    }
  }
  stats.ref_len = closest_len;

  for (const auto& e : s.ngrams.entries()) {
    stats.totals[e.len - 1] += e.count_a;
    stats.counts[e.len - 1] += std::min(e.count_a, e.count_b);
  }
  return stats;
}

void Bleu::Add(std::string_view hypothesis,
               const std::vector<std::optional<std::string_view>>& references) {
  BleuStats stats;
  try {
    stats = SegmentStats(hypothesis, references);
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument("segment " + std::to_string(num_segments_) +
                                ": " + e.what());
  }
  int64_t present = 0;
  for (const auto& ref : references) present += ref.has_value() ? 1 : 0;
  AddStats(stats, present);
}

void Bleu::AddStats(const BleuStats& stats, int64_t present) {
  if (num_segments_ == 0) {
    num_refs_ = present;
  } else if (present != num_refs_) {
    num_refs_varies_ = true;
  }
  totals_.sys_len += stats.sys_len;
  totals_.ref_len += stats.ref_len;
  for (int n = 0; n < options_.max_ngram_order; ++n) {
    totals_.counts[n] += stats.counts[n];
    totals_.totals[n] += stats.totals[n];
  }
  ++num_segments_;
}

BleuScore Bleu::Score() const {
  if (num_segments_ == 0) {
    throw std::invalid_argument("BLEU: no segments were added to score");
  }
  return ScoreStats(totals_);
}

BleuScore Bleu::ScoreStats(const BleuStats& stats) const {
  const int max_n = options_.max_ngram_order;
  if (static_cast<int>(stats.counts.size()) != max_n ||
      static_cast<int>(stats.totals.size()) != max_n) {
    throw std::invalid_argument("BLEU: statistics must have max_ngram_order (" +
                                std::to_string(max_n) + ") counts and totals");
  }
  BleuScore out;
  out.sys_len = stats.sys_len;
  out.ref_len = stats.ref_len;
  out.counts = stats.counts;
  out.totals = stats.totals;
  out.ratio = stats.ref_len != 0 ? static_cast<double>(stats.sys_len) /
                                       static_cast<double>(stats.ref_len)
                                 : 0.0;
  // Brevity penalty.
  out.bp = 1.0;
  if (stats.sys_len < stats.ref_len) {
    out.bp = stats.sys_len > 0
                 ? std::exp(1.0 - static_cast<double>(stats.ref_len) /
                                      static_cast<double>(stats.sys_len))
                 : 0.0;
  }
  out.precisions.assign(max_n, 0.0);
  if (std::all_of(stats.counts.begin(), stats.counts.end(),
                  [](int64_t c) { return c == 0; })) {
    out.score = 0.0;
    return out;
  }
  double smooth_mteval = 1.0;
  int eff_order = max_n;
  for (int n = 1; n <= max_n; ++n) {
    double correct = static_cast<double>(stats.counts[n - 1]);
    double total = static_cast<double>(stats.totals[n - 1]);
    if (smooth_ == kAddK && n > 1) {
      correct += smooth_value_;
      total += smooth_value_;
    }
    if (total == 0) break;
    if (options_.use_effective_order) eff_order = n;
    if (correct == 0) {
      if (smooth_ == kExp) {
        smooth_mteval *= 2;
        out.precisions[n - 1] = 100. / (smooth_mteval * total);
      } else if (smooth_ == kFloor) {
        out.precisions[n - 1] = 100. * smooth_value_ / total;
      }
    } else {
      out.precisions[n - 1] = 100. * correct / total;
    }
  }
  // sacreBLEU's my_log floors log(0) at -9999999999.
  double log_sum = 0.0;
  for (int n = 0; n < eff_order; ++n) {
    const double p = out.precisions[n];
    log_sum += p == 0.0 ? -9999999999.0 : std::log(p);
  }
  out.score = out.bp * std::exp(log_sum / eff_order);
  return out;
}

std::string Bleu::Signature() const {
  if (num_segments_ == 0) {
    throw std::invalid_argument(
        "BLEU: the signature needs the number of references; add segments "
        "first");
  }
  std::string smooth = options_.smooth_method;
  if (smooth_ == kFloor || smooth_ == kAddK) {
    smooth += "[" + FormatFixed(smooth_value_, 2) + "]";
  }
  std::string out = "nrefs:";
  out += num_refs_varies_ ? "var" : std::to_string(num_refs_);
  out += options_.lowercase ? "|case:lc" : "|case:mixed";
  out += options_.use_effective_order ? "|eff:yes" : "|eff:no";
  out += "|tok:" + options_.tokenize;
  out += "|smooth:" + smooth;
  out += "|version:";
  out += kSacrebleuVersion;
  return out;
}

std::string FormatBleu(const BleuScore& score, int width,
                       std::string_view signature) {
  std::string out = "BLEU";
  if (!signature.empty()) {
    out += '|';
    out += signature;
  }
  out += " = " + FormatFixed(score.score, width) + " ";
  for (size_t i = 0; i < score.precisions.size(); ++i) {
    if (i > 0) out += '/';
    out += FormatFixed(score.precisions[i], 1);
  }
  out += " (BP = " + FormatFixed(score.bp, 3) +
         " ratio = " + FormatFixed(score.ratio, 3) +
         " hyp_len = " + std::to_string(score.sys_len) +
         " ref_len = " + std::to_string(score.ref_len) + ")";
  return out;
}

}  // namespace llmsys::text
