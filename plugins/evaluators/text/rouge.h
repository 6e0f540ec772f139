// plugins/evaluators/text/rouge.h — ROUGE exactly as Google's rouge-score
// 0.1.2 (rouge_score.rouge_scorer.RougeScorer with its default tokenizer),
// stemming with NLTK's Porter stemmer (porter.h) when asked. For the text
// evaluators and anyone who needs ROUGE numbers that match the Python
// package to the last bit.
//
//   llmsys::text::RougeScorer scorer({.rouge_types = {"rouge1", "rougeL"},
//                                     .use_stemmer = true});
//   auto s = scorer.Score("The cat sat.", "the cats sat down");
//   double f = s.at("rougeL").fmeasure;
//
//   llmsys::text::Rouge corpus({.rouge_types = {"rouge1", "rougeLsum"}});
//   corpus.Add(hypothesis, {reference_a, std::nullopt});  // one segment
//   auto means = corpus.Scores();  // per type: mean P, R, F over segments
//
// Types: "rouge1" ... "rouge9" (n-gram overlap), "rougeL" (longest common
// subsequence of the whole texts) and "rougeLsum" (summary-level LCS: both
// texts split on "\n" only, empty lines dropped; for each target sentence
// the union of its LCS tokens with every prediction sentence, as
// rouge-score's _union_lcs with the same backtracking tie-breaks, counted
// at most as often as the token occurs in each text). "rougeN" with N >= 10
// is an extension: rouge-score's regex takes one digit and rejects it; here
// it is the same n-gram formula with that N. rouge-score's split_summaries
// (NLTK sentence splitting for rougeLsum) is not offered: it defaults to
// False, and rougeLsum texts carry one sentence per line.
//
// Tokens: Python's str.lower(), every run of characters outside [a-z0-9]
// a separator, tokens longer than 3 characters stemmed when use_stemmer.
// Outside ASCII only two characters lower-case to [a-z0-9]: U+0130 (I with
// dot above, to "i" + U+0307, so it ends a token after its "i") and U+212A
// (Kelvin sign, to "k"); every other non-ASCII character separates tokens.
// Text is UTF-8; it is not validated (invalid bytes separate tokens).
//
// Scores: precision = matches / prediction count, recall = matches / target
// count, fmeasure = 2PR / (P + R), all 0 when P + R = 0. rougeN divides by
// max(count, 1); rougeL and rougeLsum are 0 when either text has no token.
// Several targets (ScoreMulti, Rouge::Add): per type, the target with the
// highest fmeasure, the first on a tie (rouge-score's score_multi).
//
// Thread-safety: RougeScorer's methods are const and may be called from
// any number of threads at once (a word cache inside is locked). A Rouge
// accumulator is a value; use each from one thread at a time.
// Ownership: texts are read during the call only; no reference is kept.
// Memory: rougeLsum keeps one (target line + 1, prediction line + 1) table
// of 32-bit ints at a time, as rouge-score does; rougeL keeps one row.
#ifndef LLMSYS_PLUGINS_EVALUATORS_TEXT_ROUGE_H_
#define LLMSYS_PLUGINS_EVALUATORS_TEXT_ROUGE_H_

#include <cstddef>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace llmsys::text {

struct RougeScore {
  double precision = 0.0;
  double recall = 0.0;
  double fmeasure = 0.0;
};

struct RougeOptions {
  // Distinct names, at least one: "rouge<N>" (N >= 1, no leading zero),
  // "rougeL", "rougeLsum".
  std::vector<std::string> rouge_types = {"rouge1", "rouge2", "rougeL"};
  // Porter-stem (NLTK_EXTENSIONS) tokens longer than 3 characters.
  bool use_stemmer = false;
};

// The tokens rouge-score's DefaultTokenizer(use_stemmer).tokenize(text)
// returns. For inspection and tests; the scorers work on token ids.
std::vector<std::string> RougeTokenize(std::string_view text, bool use_stemmer);

// Scores one prediction against one or more targets.
class RougeScorer {
 public:
  // Throws std::invalid_argument naming the bad type when a type is
  // unknown or repeated, or when there is none.
  explicit RougeScorer(RougeOptions options);
  ~RougeScorer();
  RougeScorer(RougeScorer&&) noexcept;
  RougeScorer& operator=(RougeScorer&&) noexcept;

  const RougeOptions& options() const { return options_; }

  // rouge-score's score(target, prediction): one entry per type.
  std::map<std::string, RougeScore> Score(std::string_view target,
                                          std::string_view prediction) const;

  // rouge-score's score_multi(targets, prediction): per type, the score
  // against the target with the highest fmeasure (the first on a tie).
  // Throws std::invalid_argument when `targets` is empty.
  std::map<std::string, RougeScore> ScoreMulti(
      const std::vector<std::string_view>& targets,
      std::string_view prediction) const;

 private:
  struct Impl;
  RougeOptions options_;
  std::unique_ptr<Impl> impl_;
};

// Corpus ROUGE: the mean over segments of each type's precision, recall and
// fmeasure (what rouge-score users report), each segment scored as
// ScoreMulti against its present references.
//
// A segment whose references are all missing (std::nullopt) or that has
// none is skipped: it is counted in num_skipped() and leaves the means
// alone. Scoring it against "" would add zeros that measure nothing, and
// dropping it silently would hide a data problem; check num_skipped().
// An empty string is a present reference, scored like any other.
class Rouge {
 public:
  // Throws std::invalid_argument as RougeScorer's constructor.
  explicit Rouge(RougeOptions options = {});

  // Adds one segment: a hypothesis and its references (the k-th entry is
  // reference stream k's line for this segment; nullopt = missing).
  void Add(std::string_view hypothesis,
           const std::vector<std::optional<std::string_view>>& references);

  // Per type, the means over the scored segments (summed with compensation,
  // so the order of segments changes nothing beyond the last bit). Throws
  // std::invalid_argument when no segment was scored.
  std::map<std::string, RougeScore> Scores() const;

  std::size_t num_segments() const { return num_scored_ + num_skipped_; }
  std::size_t num_scored() const { return num_scored_; }
  std::size_t num_skipped() const { return num_skipped_; }

  // Everything that determines the numbers, e.g.
  // "rouge|types:rouge1,rougeLsum|stem:no|tok:rouge-score-default|
  //  lsum:newline|multiref:max-f|agg:mean|version:rouge-score-0.1.2".
  std::string Signature() const;

 private:
  struct Sum {  // Neumaier-compensated sum
    double sum = 0.0;
    double compensation = 0.0;
    void Add(double x);
    double Value() const { return sum + compensation; }
  };
  struct TypeSums {
    Sum precision, recall, fmeasure;
  };

  RougeScorer scorer_;
  std::map<std::string, TypeSums> sums_;
  std::size_t num_scored_ = 0;
  std::size_t num_skipped_ = 0;
};

}  // namespace llmsys::text

#endif  // LLMSYS_PLUGINS_EVALUATORS_TEXT_ROUGE_H_
