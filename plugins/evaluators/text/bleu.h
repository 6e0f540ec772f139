// plugins/evaluators/text/bleu.h — BLEU exactly as sacreBLEU 2.6.0 computes
// it (corpus_bleu, sentence_bleu and the BLEU class), with its tokenizers
// 13a, none, intl, char and zh.
//
// Every number matches sacreBLEU to the last bit on valid UTF-8 input (the
// tests hold it to 1e-9 relative over hundreds of generated cases), including
// its quirks: lowercasing is Python's str.lower, lines are rstripped before
// tokenizing, the zh tokenizer's character ranges are those its table really
// encodes, and the reported precisions with add-k smoothing include the k.
//
// Usage:
//   Bleu bleu(BleuOptions{});                       // corpus_bleu defaults
//   for (...) bleu.Add(hyp, {ref_a, std::nullopt});  // nullopt: missing ref
//   BleuScore s = bleu.Score();
//   std::string line = FormatBleu(s);  // "BLEU = 36.40 70.2/44.2/..."
//   std::string sig = bleu.Signature();
// For sacreBLEU's sentence_bleu, set use_effective_order = true and Add one
// segment.
//
// Users: the evaluator plugin (plugins/evaluators) and `llmsys eval`.
// Thread-safety: a Bleu object is not safe to use from two threads at once
// (Add reuses scratch buffers); distinct objects are independent. Errors are
// std::invalid_argument with a message saying what was expected.
#ifndef LLMSYS_PLUGINS_EVALUATORS_TEXT_BLEU_H_
#define LLMSYS_PLUGINS_EVALUATORS_TEXT_BLEU_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace llmsys::text {

// The sacreBLEU release these metrics reproduce ("2.6.0"), as it appears in
// signatures.
inline constexpr std::string_view kSacrebleuVersion = "2.6.0";

// sacreBLEU's tokenizers that need no extra library, by their names.
inline constexpr std::string_view kBleuTokenizers[] = {"13a", "none", "intl",
                                                       "char", "zh"};
// The smoothing methods, by their names.
inline constexpr std::string_view kBleuSmoothMethods[] = {"exp", "floor",
                                                          "add-k", "none"};

// sacreBLEU's tokenizer `tokenizer` applied to `line`, as tokenizer(line)
// does in Python (no lowercasing, no rstrip): the tokens joined by single
// spaces. Throws std::invalid_argument on an unknown tokenizer or text that
// is not UTF-8.
std::string BleuTokenize(std::string_view tokenizer, std::string_view line);

struct BleuOptions {
  std::string tokenize = "13a";       // one of kBleuTokenizers
  std::string smooth_method = "exp";  // one of kBleuSmoothMethods
  // For floor (default 0.1) and add-k (default 1); ignored by the others.
  std::optional<double> smooth_value;
  bool lowercase = false;            // Python str.lower before tokenizing
  bool use_effective_order = false;  // true for sentence_bleu
  int max_ngram_order = 4;           // >= 1
};

// Sufficient statistics, summed over segments. counts[n-1] and totals[n-1]
// are the matched and hypothesis n-grams of order n.
struct BleuStats {
  int64_t sys_len = 0;  // hypothesis tokens
  int64_t ref_len = 0;  // per segment, the closest reference length
  std::vector<int64_t> counts;
  std::vector<int64_t> totals;
};

struct BleuScore {
  double score = 0;  // 0..100
  double bp = 0;     // brevity penalty
  double ratio = 0;  // sys_len / ref_len, 0 when ref_len is 0
  int64_t sys_len = 0;
  int64_t ref_len = 0;
  // The raw statistics (sacreBLEU's BLEUScore.counts/totals are the same
  // except with add-k smoothing, where it adds k to orders 2.. in place).
  std::vector<int64_t> counts;
  std::vector<int64_t> totals;
  std::vector<double> precisions;  // per order, in percent, after smoothing
};

class Bleu {
 public:
  // Throws std::invalid_argument on an unknown tokenizer or smoothing method
  // (listing the valid ones), max_ngram_order < 1 or a non-finite
  // smooth_value.
  explicit Bleu(BleuOptions options);
  ~Bleu();
  Bleu(Bleu&&) noexcept;
  Bleu& operator=(Bleu&&) noexcept;

  // Adds one segment: its hypothesis and its references (std::nullopt for a
  // missing one; the number present may vary between segments). Text is
  // UTF-8. Throws std::invalid_argument on text that is not UTF-8, and when
  // every reference is missing while the hypothesis has tokens (sacreBLEU
  // fails there too). With no reference and no hypothesis token the segment
  // counts with ref_len -1, as in sacreBLEU. The strings are not kept.
  void Add(std::string_view hypothesis,
           const std::vector<std::optional<std::string_view>>& references);

  // Adds statistics from SegmentStats for a segment with `present`
  // references (Add = SegmentStats + AddStats).
  void AddStats(const BleuStats& stats, int64_t present);

  // The statistics Add would add for this segment, without adding them.
  // Throws as Add does (without the segment number).
  BleuStats SegmentStats(
      std::string_view hypothesis,
      const std::vector<std::optional<std::string_view>>& references);

  // The corpus score over every segment added (sacreBLEU's corpus_score).
  // Throws std::invalid_argument when nothing was added.
  BleuScore Score() const;

  // The score of given statistics (sacreBLEU's compute_bleu with this
  // object's options).
  BleuScore ScoreStats(const BleuStats& stats) const;

  // sacreBLEU's signature, e.g.
  // "nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0"; nrefs is
  // "var" when the number of references present varied between segments.
  // Throws std::invalid_argument when nothing was added.
  std::string Signature() const;

  const BleuStats& totals() const { return totals_; }
  int64_t num_segments() const { return num_segments_; }
  const BleuOptions& options() const { return options_; }

 private:
  struct Scratch;

  BleuOptions options_;
  int tokenizer_ = 0;
  int smooth_ = 0;
  double smooth_value_ = 0;
  BleuStats totals_;
  int64_t num_segments_ = 0;
  int64_t num_refs_ = -1;  // refs present in every segment so far
  bool num_refs_varies_ = false;
  std::unique_ptr<Scratch> scratch_;
};

// sacreBLEU's text line for a score, "BLEU = 36.40 70.2/44.2/30.1/21.4 (BP =
// 1.000 ratio = 1.011 hyp_len = 90 ref_len = 89)", with `width` decimals for
// the score; with a signature, "BLEU|<signature> = ...".
std::string FormatBleu(const BleuScore& score, int width = 2,
                       std::string_view signature = {});

}  // namespace llmsys::text

#endif  // LLMSYS_PLUGINS_EVALUATORS_TEXT_BLEU_H_
