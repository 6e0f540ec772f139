// plugins/evaluators/text_evaluators.cc — the text metrics of the built-in
// evaluator plugin, over the library in text/ (which reproduces sacreBLEU
// 2.6, rouge-score 0.1.2 and the SQuAD v1.1 script exactly). They read
// LLMSYS_EVAL_TEXT: hypotheses and reference streams; a NULL reference is
// a missing one.
//
//   bleu         sacreBLEU corpus BLEU (a one-segment corpus with
//                use_effective_order is its sentence_bleu). Metrics: score,
//                counts.0..N-1, totals.*, precisions.*, bp, ratio, sys_len,
//                ref_len. Parameters: tokenize, smooth_method, smooth_value
//                (negative: the method's default, floor 0.1 and add-k 1),
//                lowercase, use_effective_order, max_ngram_order.
//   chrf         sacreBLEU chrF / chrF++. Metric: score. Parameters:
//                char_order, word_order, beta, lowercase, whitespace,
//                eps_smoothing.
//   rouge        rouge-score; per type scores.<type>.{precision,recall,
//                fmeasure}, the mean over segments (one segment gives
//                rouge-score's own numbers); with several references a
//                segment takes, per type, the one with the best fmeasure
//                (score_multi). Segments whose references are all missing
//                are skipped and counted in `skipped`. Parameters:
//                rouge_types (comma- or space-separated), use_stemmer.
//   exact_match  SQuAD v1.1: 100 x the mean over segments of the best
//   token_f1     exact match / token F1 over the segment's references after
//                normalize_answer. Metric: score (and segments).
//
// Errors (invalid UTF-8, every reference of a BLEU or chrF segment missing
// while sacreBLEU would fail too) name the segment; a rejected batch
// changes nothing.
//
// Thread-safety: an instance is used by one thread at a time. Ownership:
// batch strings are borrowed for the call; the metrics keep statistics only.
#include "plugins/evaluators/text_evaluators.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "llmsys/sdk.hpp"
#include "plugins/evaluators/text/bleu.h"
#include "plugins/evaluators/text/chrf.h"
#include "plugins/evaluators/text/rouge.h"
#include "plugins/evaluators/text/squad.h"
#include "plugins/evaluators/text/unicode.h"

namespace llmsys::plugins {
namespace {

using sdk::Require;

constexpr char kSquadVersion[] = "1.0.0";

// One segment's text: the hypothesis and its references (nullopt: missing).
struct Segment {
  std::string_view hyp;
  std::vector<std::optional<std::string_view>> refs;
};

// Runs `fn` (which may throw std::invalid_argument) as an sdk error naming
// the evaluator and the segment.
template <class Fn>
void ForSegment(const char* id, int64_t index, Fn&& fn) {
  try {
    fn();
  } catch (const std::invalid_argument& e) {
    sdk::Fail(LLMSYS_STATUS_INVALID_ARGUMENT, std::string(id) + ": segment " +
                                                  std::to_string(index) + ": " +
                                                  e.what());
  }
}

// The batch's segments, every text checked to be UTF-8 first. Errors name
// a segment by its index among everything fed to the instance (`base`
// segments came in earlier batches).
std::vector<Segment> Segments(const llmsys_eval_batch_t& batch, const char* id,
                              int64_t base) {
  Require(batch.struct_size >= offsetof(llmsys_eval_batch_t, num_references) +
                                   sizeof(batch.num_references),
          std::string(id) + ": the batch is too small (struct_size " +
              std::to_string(batch.struct_size) + ")");
  Require(batch.count == 0 || batch.hypotheses != nullptr,
          std::string(id) + ": hypotheses is NULL");
  Require(batch.num_references == 0 || batch.references != nullptr,
          std::string(id) + ": references is NULL");
  std::vector<Segment> out(batch.count);
  std::u32string scratch;
  for (uint32_t i = 0; i < batch.count; ++i) {
    const std::string where =
        std::string(id) + ": segment " + std::to_string(base + i) + ": ";
    Require(batch.hypotheses[i] != nullptr, where + "the hypothesis is NULL");
    out[i].hyp = batch.hypotheses[i];
    for (uint32_t r = 0; r < batch.num_references; ++r) {
      const char* ref = batch.references[r * batch.count + i];
      out[i].refs.push_back(
          ref != nullptr ? std::optional<std::string_view>(ref) : std::nullopt);
    }
    for (size_t t = 0; t <= out[i].refs.size(); ++t) {
      if (t > 0 && !out[i].refs[t - 1]) continue;
      ForSegment(id, base + i, [&] {
        text::DecodeSegmentText(t == 0 ? out[i].hyp : *out[i].refs[t - 1], "",
                                t, &scratch);
      });
    }
  }
  return out;
}

int64_t Present(const Segment& s) {
  int64_t n = 0;
  for (const auto& r : s.refs) n += r.has_value() ? 1 : 0;
  return n;
}

template <class Fn>
auto Checked(const char* id, Fn&& fn) {
  try {
    return fn();
  } catch (const std::invalid_argument& e) {
    sdk::Fail(LLMSYS_STATUS_INVALID_ARGUMENT,
              std::string(id) + ": " + e.what());
  }
}

// Metric list "name.i" for a vector.
template <class T>
void EmitList(const std::string& name, const std::vector<T>& values,
              sdk::EvalResult* result) {
  for (size_t i = 0; i < values.size(); ++i)
    result->metrics.emplace_back(name + "." + std::to_string(i),
                                 static_cast<double>(values[i]));
}

std::string Choices(const std::string_view* begin,
                    const std::string_view* end) {
  std::string out;
  for (const std::string_view* c = begin; c != end; ++c)
    out += (out.empty() ? "" : "|") + std::string(*c);
  return out;
}

class BleuEvaluator : public sdk::Evaluator {
 public:
  static sdk::Info Describe() {
    sdk::Info info;
    info.id = "bleu";
    info.version = std::string(text::kSacrebleuVersion);
    info.description =
        "BLEU exactly as sacreBLEU 2.x corpus_bleu (sentence_bleu with "
        "use_effective_order on one segment)";
    info.device_type = kDLCPU;
    info.eval_inputs = LLMSYS_EVAL_TEXT;
    info.params.push_back(
        sdk::ParamSpec::String("tokenize", "13a", "tokenizer")
            .Choices(Choices(std::begin(text::kBleuTokenizers),
                             std::end(text::kBleuTokenizers))));
    info.params.push_back(
        sdk::ParamSpec::String("smooth_method", "exp", "smoothing")
            .Choices(Choices(std::begin(text::kBleuSmoothMethods),
                             std::end(text::kBleuSmoothMethods))));
    info.params.push_back(sdk::ParamSpec::Float(
        "smooth_value", -1.0,
        "floor / add-k value (negative: the method's default, 0.1 / 1)"));
    info.params.push_back(sdk::ParamSpec::Bool(
        "lowercase", false, "lowercase (Python str.lower) first"));
    info.params.push_back(sdk::ParamSpec::Bool(
        "use_effective_order", false,
        "leave out orders without n-grams (sentence BLEU)"));
    info.params.push_back(
        sdk::ParamSpec::Int("max_ngram_order", 4, "largest n-gram order")
            .Range(1, 100));
    return info;
  }

  explicit BleuEvaluator(const sdk::Params& p)
      : bleu_(Checked("bleu", [&] {
          text::BleuOptions o;
          o.tokenize = p.String("tokenize");
          o.smooth_method = p.String("smooth_method");
          if (p.Float("smooth_value") >= 0)
            o.smooth_value = p.Float("smooth_value");
          o.lowercase = p.Bool("lowercase");
          o.use_effective_order = p.Bool("use_effective_order");
          o.max_ngram_order = static_cast<int>(p.Int("max_ngram_order"));
          return text::Bleu(o);
        })) {}

  void Add(const llmsys_eval_batch_t& batch) override {
    const std::vector<Segment> segments = Segments(batch, "bleu", seen_);
    // Every segment checked before any is counted.
    std::vector<text::BleuStats> stats(segments.size());
    for (size_t i = 0; i < segments.size(); ++i)
      ForSegment("bleu", seen_ + static_cast<int64_t>(i), [&] {
        stats[i] = bleu_.SegmentStats(segments[i].hyp, segments[i].refs);
      });
    for (size_t i = 0; i < segments.size(); ++i)
      bleu_.AddStats(stats[i], Present(segments[i]));
    seen_ += static_cast<int64_t>(segments.size());
  }

  sdk::EvalResult Result() override {
    const text::BleuScore s = Checked("bleu", [&] { return bleu_.Score(); });
    sdk::EvalResult result;
    result.metrics.emplace_back("score", s.score);
    // As sacreBLEU reports them: add-k smoothing adds k to the counts and
    // totals of orders 2 and up in place, unless nothing matched at all
    // (then it returns before smoothing).
    std::vector<double> counts(s.counts.begin(), s.counts.end());
    std::vector<double> totals(s.totals.begin(), s.totals.end());
    const bool matched = std::any_of(s.counts.begin(), s.counts.end(),
                                     [](int64_t c) { return c > 0; });
    if (bleu_.options().smooth_method == "add-k" && matched) {
      const double k = bleu_.options().smooth_value.value_or(1.0);
      for (size_t n = 1; n < counts.size(); ++n) {
        counts[n] += k;
        totals[n] += k;
      }
    }
    EmitList("counts", counts, &result);
    EmitList("totals", totals, &result);
    EmitList("precisions", s.precisions, &result);
    result.metrics.emplace_back("bp", s.bp);
    result.metrics.emplace_back("ratio", s.ratio);
    result.metrics.emplace_back("sys_len", static_cast<double>(s.sys_len));
    result.metrics.emplace_back("ref_len", static_cast<double>(s.ref_len));
    result.signature = bleu_.Signature();
    return result;
  }

 private:
  text::Bleu bleu_;
  int64_t seen_ = 0;
};

class ChrfEvaluator : public sdk::Evaluator {
 public:
  static sdk::Info Describe() {
    sdk::Info info;
    info.id = "chrf";
    info.version = std::string(text::kSacrebleuVersion);
    info.description =
        "chrF / chrF++ exactly as sacreBLEU 2.x (word_order = 2 for chrF++)";
    info.device_type = kDLCPU;
    info.eval_inputs = LLMSYS_EVAL_TEXT;
    info.params.push_back(
        sdk::ParamSpec::Int("char_order", 6, "character n-gram order")
            .Range(0, 100));
    info.params.push_back(
        sdk::ParamSpec::Int("word_order", 0, "word n-gram order (2: chrF++)")
            .Range(0, 100));
    info.params.push_back(
        sdk::ParamSpec::Int("beta", 2, "recall weighs beta^2 times precision")
            .Range(0, 100));
    info.params.push_back(sdk::ParamSpec::Bool(
        "lowercase", false, "lowercase (Python str.lower) first"));
    info.params.push_back(sdk::ParamSpec::Bool(
        "whitespace", false, "keep whitespace in character n-grams"));
    info.params.push_back(sdk::ParamSpec::Bool(
        "eps_smoothing", false,
        "chrF++.py's eps smoothing instead of the effective order"));
    return info;
  }

  explicit ChrfEvaluator(const sdk::Params& p)
      : chrf_(Checked("chrf", [&] {
          text::ChrfOptions o;
          o.char_order = static_cast<int>(p.Int("char_order"));
          o.word_order = static_cast<int>(p.Int("word_order"));
          o.beta = static_cast<int>(p.Int("beta"));
          o.lowercase = p.Bool("lowercase");
          o.whitespace = p.Bool("whitespace");
          o.eps_smoothing = p.Bool("eps_smoothing");
          return text::Chrf(o);
        })) {}

  void Add(const llmsys_eval_batch_t& batch) override {
    const std::vector<Segment> segments = Segments(batch, "chrf", seen_);
    std::vector<std::vector<int64_t>> stats(segments.size());
    for (size_t i = 0; i < segments.size(); ++i)
      ForSegment("chrf", seen_ + static_cast<int64_t>(i), [&] {
        stats[i] = chrf_.SegmentStats(segments[i].hyp, segments[i].refs);
      });
    for (size_t i = 0; i < segments.size(); ++i)
      chrf_.AddStats(stats[i], Present(segments[i]));
    seen_ += static_cast<int64_t>(segments.size());
  }

  sdk::EvalResult Result() override {
    const text::ChrfScore s = Checked("chrf", [&] { return chrf_.Score(); });
    sdk::EvalResult result;
    result.metrics.emplace_back("score", s.score);
    result.signature = chrf_.Signature();
    return result;
  }

 private:
  text::Chrf chrf_;
  int64_t seen_ = 0;
};

std::vector<std::string> SplitTypes(const std::string& text) {
  std::vector<std::string> out;
  std::string current;
  for (char c : text + ",") {
    if (c == ',' || c == ' ') {
      if (!current.empty()) out.push_back(current);
      current.clear();
    } else {
      current += c;
    }
  }
  return out;
}

class RougeEvaluator : public sdk::Evaluator {
 public:
  static sdk::Info Describe() {
    sdk::Info info;
    info.id = "rouge";
    info.version = "0.1.2";
    info.description =
        "ROUGE-N, ROUGE-L and ROUGE-Lsum exactly as Google's rouge-score, "
        "averaged over segments";
    info.device_type = kDLCPU;
    info.eval_inputs = LLMSYS_EVAL_TEXT;
    info.params.push_back(sdk::ParamSpec::String(
        "rouge_types", "rouge1,rouge2,rougeL,rougeLsum",
        "types, comma- or space-separated: rouge<N>, rougeL, rougeLsum"));
    info.params.push_back(sdk::ParamSpec::Bool(
        "use_stemmer", false,
        "Porter-stem (NLTK extensions) tokens longer than 3 characters"));
    return info;
  }

  explicit RougeEvaluator(const sdk::Params& p)
      : types_(SplitTypes(p.String("rouge_types"))),
        rouge_(Checked("rouge", [&] {
          text::RougeOptions o;
          o.rouge_types = types_;
          o.use_stemmer = p.Bool("use_stemmer");
          return text::Rouge(o);
        })) {}

  void Add(const llmsys_eval_batch_t& batch) override {
    const std::vector<Segment> segments = Segments(batch, "rouge", seen_);
    for (const Segment& s : segments) rouge_.Add(s.hyp, s.refs);
    seen_ += static_cast<int64_t>(segments.size());
  }

  sdk::EvalResult Result() override {
    const auto scores = Checked("rouge", [&] { return rouge_.Scores(); });
    sdk::EvalResult result;
    for (const std::string& type : types_) {
      const text::RougeScore& s = scores.at(type);
      const std::string base = "scores." + type + ".";
      result.metrics.emplace_back(base + "precision", s.precision);
      result.metrics.emplace_back(base + "recall", s.recall);
      result.metrics.emplace_back(base + "fmeasure", s.fmeasure);
    }
    result.metrics.emplace_back("segments",
                                static_cast<double>(rouge_.num_scored()));
    result.metrics.emplace_back("skipped",
                                static_cast<double>(rouge_.num_skipped()));
    result.signature = rouge_.Signature();
    return result;
  }

 private:
  std::vector<std::string> types_;
  text::Rouge rouge_;
  int64_t seen_ = 0;
};

// exact_match and token_f1: a mean of per-segment best scores.
template <bool kF1>
class SquadEvaluator : public sdk::Evaluator {
 public:
  static sdk::Info Describe() {
    sdk::Info info;
    info.id = kF1 ? "token_f1" : "exact_match";
    info.version = kSquadVersion;
    info.description =
        kF1 ? "SQuAD v1.1 token F1 (x100), best over references"
            : "SQuAD v1.1 exact match (x100) after normalize_answer, best "
              "over references";
    info.device_type = kDLCPU;
    info.eval_inputs = LLMSYS_EVAL_TEXT;
    return info;
  }

  explicit SquadEvaluator(const sdk::Params& /*params*/) {}

  void Add(const llmsys_eval_batch_t& batch) override {
    const char* id = kF1 ? "token_f1" : "exact_match";
    const std::vector<Segment> segments = Segments(batch, id, count_);
    std::vector<double> scores(segments.size());
    for (size_t i = 0; i < segments.size(); ++i) {
      const int64_t index = count_ + static_cast<int64_t>(i);
      std::vector<std::string_view> refs;
      for (const auto& r : segments[i].refs)
        if (r) refs.push_back(*r);
      Require(!refs.empty(), std::string(id) + ": segment " +
                                 std::to_string(index) + " has no reference");
      ForSegment(id, index, [&] {
        scores[i] = kF1 ? text::TokenF1(segments[i].hyp, refs)
                        : text::ExactMatch(segments[i].hyp, refs);
      });
    }
    for (double s : scores) sum_ += s;
    count_ += static_cast<int64_t>(scores.size());
  }

  sdk::EvalResult Result() override {
    sdk::EvalResult result;
    result.metrics = {
        {"score",
         count_ == 0 ? 0.0 : 100.0 * sum_ / static_cast<double>(count_)},
        {"segments", static_cast<double>(count_)}};
    result.signature = std::string(
                           "norm:squad-v1.1|agg:max-ref|scale:100|"
                           "version:") +
                       kSquadVersion;
    return result;
  }

 private:
  double sum_ = 0;
  int64_t count_ = 0;
};

}  // namespace

void AddTextEvaluators(sdk::Registry& registry) {
  registry.Add<BleuEvaluator>();
  registry.Add<ChrfEvaluator>();
  registry.Add<RougeEvaluator>();
  registry.Add<SquadEvaluator<false>>();
  registry.Add<SquadEvaluator<true>>();
}

}  // namespace llmsys::plugins
