// plugins/evaluators/text/chrf.h — chrF and chrF++ exactly as sacreBLEU
// 2.6.0 computes them (corpus_chrf, sentence_chrf and the CHRF class).
//
// Character n-grams of orders 1..char_order (whitespace removed unless
// `whitespace`), plus word n-grams of orders 1..word_order (chrF++ is
// word_order 2) over words with one trailing, else leading, ASCII
// punctuation character split off. With several references a segment keeps
// the statistics of the reference with the best sentence-level score (the
// first on ties); statistics are summed over the corpus and scored once.
// By default sacreBLEU averages precision and recall over the orders that
// have both hypothesis and reference n-grams (its "effective order");
// eps_smoothing = true averages per-order F-scores with chrF++.py's epsilon.
//
// Usage:
//   Chrf chrf(ChrfOptions{.word_order = 2});   // chrF++
//   for (...) chrf.Add(hyp, {ref});
//   ChrfScore s = chrf.Score();            // s.name == "chrF2++"
//   std::string line = FormatChrf(s);      // "chrF2++ = 73.08"
//   std::string sig = chrf.Signature();
// sacreBLEU's sentence_chrf is a Chrf with one segment added.
//
// Users: the evaluator plugin (plugins/evaluators) and `llmsys eval`.
// Thread-safety: a Chrf object is not safe to use from two threads at once;
// distinct objects are independent. Errors are std::invalid_argument.
#ifndef LLMSYS_PLUGINS_EVALUATORS_TEXT_CHRF_H_
#define LLMSYS_PLUGINS_EVALUATORS_TEXT_CHRF_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace llmsys::text {

struct ChrfOptions {
  int char_order = 6;          // >= 0
  int word_order = 0;          // >= 0; char_order + word_order >= 1
  int beta = 2;                // >= 0; recall weighs beta^2 times precision
  bool lowercase = false;      // Python str.lower first
  bool whitespace = false;     // keep whitespace in character n-grams
  bool eps_smoothing = false;  // chrF++.py averaging instead of effective order
};

struct ChrfScore {
  double score = 0;  // 0..100
  std::string name;  // "chrF2", "chrF2++" ("+" per word order)
  // Per order (characters 1..char_order, then words 1..word_order) three
  // numbers: hypothesis n-grams, reference n-grams, matches. The hypothesis
  // count is 0 where the reference has no n-gram of that order.
  std::vector<int64_t> stats;
};

class Chrf {
 public:
  // Throws std::invalid_argument on a negative order or beta, or no order.
  explicit Chrf(ChrfOptions options);
  ~Chrf();
  Chrf(Chrf&&) noexcept;
  Chrf& operator=(Chrf&&) noexcept;

  // Adds one segment (UTF-8 text; std::nullopt for a missing reference).
  // Throws std::invalid_argument on text that is not UTF-8 or when every
  // reference is missing (sacreBLEU fails there too). Strings are not kept.
  void Add(std::string_view hypothesis,
           const std::vector<std::optional<std::string_view>>& references);

  // Adds statistics from SegmentStats for a segment with `present`
  // references (Add = SegmentStats + AddStats).
  void AddStats(const std::vector<int64_t>& stats, int64_t present);

  // The statistics Add would add for this segment (those of the best
  // reference), without adding them. Throws as Add does (without the
  // segment number).
  std::vector<int64_t> SegmentStats(
      std::string_view hypothesis,
      const std::vector<std::optional<std::string_view>>& references);

  // The corpus score over every segment added. Throws std::invalid_argument
  // when nothing was added.
  ChrfScore Score() const;

  // The score of given statistics (3 * (char_order + word_order) numbers).
  ChrfScore ScoreStats(const std::vector<int64_t>& stats) const;

  // sacreBLEU's signature, e.g.
  // "nrefs:1|case:mixed|eff:yes|nc:6|nw:0|space:no|version:2.6.0". Throws
  // std::invalid_argument when nothing was added.
  std::string Signature() const;

  const std::vector<int64_t>& totals() const { return totals_; }
  int64_t num_segments() const { return num_segments_; }
  const ChrfOptions& options() const { return options_; }

 private:
  struct Scratch;

  double FScore(const int64_t* stats) const;

  ChrfOptions options_;
  std::vector<int64_t> totals_;
  int64_t num_segments_ = 0;
  int64_t num_refs_ = -1;
  bool num_refs_varies_ = false;
  std::unique_ptr<Scratch> scratch_;
};

// sacreBLEU's text line, "chrF2++ = 73.08" (`width` decimals); with a
// signature, "chrF2++|<signature> = 73.08".
std::string FormatChrf(const ChrfScore& score, int width = 2,
                       std::string_view signature = {});

}  // namespace llmsys::text

#endif  // LLMSYS_PLUGINS_EVALUATORS_TEXT_CHRF_H_
