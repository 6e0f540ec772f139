#include "plugins/evaluators/text/chrf.h"

#include <algorithm>
#include <stdexcept>
#include <utility>

#include "plugins/evaluators/text/bleu.h"  // kSacrebleuVersion
#include "plugins/evaluators/text/format.h"
#include "plugins/evaluators/text/span_table.h"
#include "plugins/evaluators/text/unicode.h"

namespace llmsys::text {
namespace {

using internal::FormatFixed;
using internal::SpanTable;

// Python's string.punctuation, which chrF++ splits off words.
constexpr bool IsAsciiPunct(char32_t c) {
  return (c >= 0x21 && c <= 0x2F) || (c >= 0x3A && c <= 0x40) ||
         (c >= 0x5B && c <= 0x60) || (c >= 0x7B && c <= 0x7E);
}

// Id for a reference word the hypothesis does not have: no n-gram holding it
// can match.
constexpr uint32_t kUnknownWord = 0xFFFFFFFFu;

// sacreBLEU's CHRF._remove_punctuation: the words of `text`, each longer
// than one character split into body and trailing punctuation character,
// else into leading punctuation character and body.
void SplitWords(std::u32string_view text,
                std::vector<std::u32string_view>* words) {
  words->clear();
  for (std::u32string_view w : PySplit(text)) {
    if (w.size() == 1) {
      words->push_back(w);
    } else if (IsAsciiPunct(w.back())) {
      words->push_back(w.substr(0, w.size() - 1));
      words->push_back(w.substr(w.size() - 1));
    } else if (IsAsciiPunct(w.front())) {
      words->push_back(w.substr(0, 1));
      words->push_back(w.substr(1));
    } else {
      words->push_back(w);
    }
  }
}

uint64_t HashOf(std::u32string_view s) {
  uint64_t h = SpanTable<char32_t>::kSeed;
  for (char32_t c : s) h = SpanTable<char32_t>::Step(h, c);
  return h;
}

int64_t NgramsOf(int64_t length, int n) {
  return std::max<int64_t>(0, length - n + 1);
}

}  // namespace

struct Chrf::Scratch {
  std::u32string decoded;
  std::u32string hyp_text;  // lowercased when asked; word views point here
  std::u32string hyp_chars;
  std::u32string ref_text;
  std::u32string ref_chars;
  std::vector<std::u32string_view> hyp_words;
  std::vector<std::u32string_view> ref_words;
  std::vector<uint32_t> hyp_ids;
  std::vector<uint32_t> ref_ids;
  SpanTable<char32_t> vocab;       // hypothesis words -> ids
  SpanTable<char32_t> char_grams;  // hypothesis character n-grams
  SpanTable<uint32_t> word_grams;  // hypothesis word n-grams
  std::vector<int64_t> stats;
};

Chrf::Chrf(ChrfOptions options)
    : options_(options), scratch_(std::make_unique<Scratch>()) {
  if (options_.char_order < 0 || options_.word_order < 0) {
    throw std::invalid_argument(
        "chrF: char_order and word_order must be >= 0, got " +
        std::to_string(options_.char_order) + " and " +
        std::to_string(options_.word_order));
  }
  if (options_.char_order + options_.word_order < 1) {
    throw std::invalid_argument(
        "chrF: char_order + word_order must be >= 1 (no n-gram order to "
        "score)");
  }
  if (options_.beta < 0) {
    throw std::invalid_argument("chrF: beta must be >= 0, got " +
                                std::to_string(options_.beta));
  }
  totals_.assign(3 * (options_.char_order + options_.word_order), 0);
}

Chrf::~Chrf() = default;
Chrf::Chrf(Chrf&&) noexcept = default;
Chrf& Chrf::operator=(Chrf&&) noexcept = default;

// sacreBLEU's CHRF._compute_f_score, operation for operation.
double Chrf::FScore(const int64_t* stats) const {
  const int order = options_.char_order + options_.word_order;
  const double eps = 1e-16;
  const double factor = static_cast<double>(options_.beta) * options_.beta;
  double score = 0.0;
  int effective_order = 0;
  double avg_prec = 0.0;
  double avg_rec = 0.0;
  for (int i = 0; i < order; ++i) {
    const int64_t n_hyp = stats[3 * i];
    const int64_t n_ref = stats[3 * i + 1];
    const auto n_match = static_cast<double>(stats[3 * i + 2]);
    const double prec = n_hyp > 0 ? n_match / static_cast<double>(n_hyp) : eps;
    const double rec = n_ref > 0 ? n_match / static_cast<double>(n_ref) : eps;
    const double denom = factor * prec + rec;
    score += denom > 0 ? ((1 + factor) * prec * rec / denom) : eps;
    if (n_hyp > 0 && n_ref > 0) {
      avg_prec += prec;
      avg_rec += rec;
      ++effective_order;
    }
  }
  if (options_.eps_smoothing) return 100 * score / order;
  if (effective_order == 0) {
    avg_prec = avg_rec = 0.0;
  } else {
    avg_prec /= effective_order;
    avg_rec /= effective_order;
  }
  if (avg_prec + avg_rec != 0) {
    score = (1 + factor) * avg_prec * avg_rec;
    score /= ((factor * avg_prec) + avg_rec);
    return 100 * score;
  }
  return 0.0;
}

std::vector<int64_t> Chrf::SegmentStats(
    std::string_view hypothesis,
    const std::vector<std::optional<std::string_view>>& references) {
  Scratch& s = *scratch_;
  const int char_order = options_.char_order;
  const int word_order = options_.word_order;

  const auto prepare = [&](std::string_view utf8, size_t ref_number,
                           std::u32string* text, std::u32string* chars) {
    DecodeSegmentText(utf8, "chrF", ref_number, &s.decoded);
    if (options_.lowercase) {
      PyLowerInto(s.decoded, text);
    } else {
      text->swap(s.decoded);
    }
    if (options_.whitespace) {
      chars->assign(*text);
    } else {
      chars->clear();
      for (char32_t c : *text) {
        if (!PyIsSpace(c)) chars->push_back(c);
      }
    }
  };

  bool any_reference = false;
  for (const auto& ref : references) any_reference |= ref.has_value();
  if (!any_reference) {
    throw std::invalid_argument(
        "chrF: no reference (all missing); sacreBLEU fails on this input "
        "too");
  }

  // The hypothesis: its character n-grams and word n-grams (count_a).
  prepare(hypothesis, 0, &s.hyp_text, &s.hyp_chars);
  const auto hyp_chars_len = static_cast<int64_t>(s.hyp_chars.size());
  s.char_grams.Clear();
  for (int64_t i = 0; i < hyp_chars_len; ++i) {
    uint64_t h = SpanTable<char32_t>::kSeed;
    const int64_t top = std::min<int64_t>(char_order, hyp_chars_len - i);
    for (int64_t n = 1; n <= top; ++n) {
      h = SpanTable<char32_t>::Step(h, s.hyp_chars[i + n - 1]);
      s.char_grams
          .FindOrInsert(s.hyp_chars.data() + i, static_cast<uint32_t>(n), h)
          ->count_a++;
    }
  }
  int64_t hyp_words_len = 0;
  if (word_order > 0) {
    SplitWords(s.hyp_text, &s.hyp_words);
    s.vocab.Clear();
    s.hyp_ids.resize(s.hyp_words.size());
    for (size_t t = 0; t < s.hyp_words.size(); ++t) {
      const std::u32string_view w = s.hyp_words[t];
      s.hyp_ids[t] =
          s.vocab
              .FindOrInsert(w.data(), static_cast<uint32_t>(w.size()),
                            HashOf(w))
              ->id;
    }
    hyp_words_len = static_cast<int64_t>(s.hyp_ids.size());
    s.word_grams.Clear();
    for (int64_t i = 0; i < hyp_words_len; ++i) {
      uint64_t h = SpanTable<uint32_t>::kSeed;
      const int64_t top = std::min<int64_t>(word_order, hyp_words_len - i);
      for (int64_t n = 1; n <= top; ++n) {
        h = SpanTable<uint32_t>::Step(h, s.hyp_ids[i + n - 1]);
        s.word_grams
            .FindOrInsert(s.hyp_ids.data() + i, static_cast<uint32_t>(n), h)
            ->count_a++;
      }
    }
  }

  // Each reference: matches counted as min(hypothesis count, reference
  // count) one occurrence at a time (count_c is the reference's count so far
  // while stamp is the reference's).
  std::vector<int64_t> best;
  double best_f = -1.0;
  uint32_t stamp = 0;
  for (size_t r = 0; r < references.size(); ++r) {
    if (!references[r].has_value()) continue;
    ++stamp;
    prepare(*references[r], r + 1, &s.ref_text, &s.ref_chars);
    s.stats.assign(totals_.size(), 0);
    const auto ref_chars_len = static_cast<int64_t>(s.ref_chars.size());
    for (int64_t i = 0; i < ref_chars_len; ++i) {
      uint64_t h = SpanTable<char32_t>::kSeed;
      const int64_t top = std::min<int64_t>(char_order, ref_chars_len - i);
      for (int64_t n = 1; n <= top; ++n) {
        h = SpanTable<char32_t>::Step(h, s.ref_chars[i + n - 1]);
        auto* e = s.char_grams.Find(s.ref_chars.data() + i,
                                    static_cast<uint32_t>(n), h);
        if (e == nullptr) break;  // nor is any longer one in the hypothesis
        if (e->stamp != stamp) {
          e->stamp = stamp;
          e->count_c = 0;
        }
        if (++e->count_c <= e->count_a) ++s.stats[3 * (n - 1) + 2];
      }
    }
    for (int n = 1; n <= char_order; ++n) {
      const int64_t ref_count = NgramsOf(ref_chars_len, n);
      s.stats[3 * (n - 1)] = ref_count > 0 ? NgramsOf(hyp_chars_len, n) : 0;
      s.stats[3 * (n - 1) + 1] = ref_count;
    }
    if (word_order > 0) {
      SplitWords(s.ref_text, &s.ref_words);
      s.ref_ids.resize(s.ref_words.size());
      for (size_t t = 0; t < s.ref_words.size(); ++t) {
        const std::u32string_view w = s.ref_words[t];
        const auto* e =
            s.vocab.Find(w.data(), static_cast<uint32_t>(w.size()), HashOf(w));
        s.ref_ids[t] = e != nullptr ? e->id : kUnknownWord;
      }
      const auto ref_words_len = static_cast<int64_t>(s.ref_ids.size());
      for (int64_t i = 0; i < ref_words_len; ++i) {
        uint64_t h = SpanTable<uint32_t>::kSeed;
        const int64_t top = std::min<int64_t>(word_order, ref_words_len - i);
        for (int64_t n = 1; n <= top; ++n) {
          const uint32_t id = s.ref_ids[i + n - 1];
          if (id == kUnknownWord) break;
          h = SpanTable<uint32_t>::Step(h, id);
          auto* e = s.word_grams.Find(s.ref_ids.data() + i,
                                      static_cast<uint32_t>(n), h);
          if (e == nullptr) break;
          if (e->stamp != stamp) {
            e->stamp = stamp;
            e->count_c = 0;
          }
          if (++e->count_c <= e->count_a) {
            ++s.stats[3 * (char_order + n - 1) + 2];
          }
        }
      }
      for (int n = 1; n <= word_order; ++n) {
        const int64_t ref_count = NgramsOf(ref_words_len, n);
        const size_t at = 3 * (char_order + n - 1);
        s.stats[at] = ref_count > 0 ? NgramsOf(hyp_words_len, n) : 0;
        s.stats[at + 1] = ref_count;
      }
    }
    const double f = FScore(s.stats.data());
    if (f > best_f) {
      best_f = f;
      best = s.stats;
    }
  }
  return best;
}

void Chrf::Add(std::string_view hypothesis,
               const std::vector<std::optional<std::string_view>>& references) {
  std::vector<int64_t> stats;
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

void Chrf::AddStats(const std::vector<int64_t>& stats, int64_t present) {
  if (num_segments_ == 0) {
    num_refs_ = present;
  } else if (present != num_refs_) {
    num_refs_varies_ = true;
  }
  for (size_t i = 0; i < totals_.size(); ++i) totals_[i] += stats[i];
  ++num_segments_;
}

ChrfScore Chrf::Score() const {
  if (num_segments_ == 0) {
    throw std::invalid_argument("chrF: no segments were added to score");
  }
  return ScoreStats(totals_);
}

ChrfScore Chrf::ScoreStats(const std::vector<int64_t>& stats) const {
  if (stats.size() != totals_.size()) {
    throw std::invalid_argument(
        "chrF: statistics must have 3 * (char_order "
        "+ word_order) = " +
        std::to_string(totals_.size()) + " numbers");
  }
  ChrfScore out;
  out.score = FScore(stats.data());
  out.name = "chrF" + std::to_string(options_.beta) +
             std::string(static_cast<size_t>(options_.word_order), '+');
  out.stats = stats;
  return out;
}

std::string Chrf::Signature() const {
  if (num_segments_ == 0) {
    throw std::invalid_argument(
        "chrF: the signature needs the number of references; add segments "
        "first");
  }
  std::string out = "nrefs:";
  out += num_refs_varies_ ? "var" : std::to_string(num_refs_);
  out += options_.lowercase ? "|case:lc" : "|case:mixed";
  out += options_.eps_smoothing ? "|eff:no" : "|eff:yes";
  out += "|nc:" + std::to_string(options_.char_order);
  out += "|nw:" + std::to_string(options_.word_order);
  out += options_.whitespace ? "|space:yes" : "|space:no";
  out += "|version:";
  out += kSacrebleuVersion;
  return out;
}

std::string FormatChrf(const ChrfScore& score, int width,
                       std::string_view signature) {
  std::string out = score.name;
  if (!signature.empty()) {
    out += '|';
    out += signature;
  }
  out += " = " + FormatFixed(score.score, width);
  return out;
}

}  // namespace llmsys::text
