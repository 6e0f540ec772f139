// plugins/samplers/samplers.cc — the built-in samplers (plugin
// "llmsys.samplers"): greedy decoding, and sampling from a filtered softmax.
//
// Components and their parameters (all on the CPU):
//
//   greedy       repetition_penalty
//   temperature  temperature, top_k, top_p, min_p, repetition_penalty
//   top_k        the same five; top_k defaults to 50
//   top_p        the same five; top_p defaults to 0.9
//   min_p        the same five; min_p defaults to 0.05
//
// The four sampling components are one sampler with different defaults, so
// sampler = "top_p" with temperature = 0.8 is temperature, then top-p. Every
// filter that is on is applied, in this fixed order (the order of Hugging
// Face transformers' logits processors and warpers), to each row x of the
// (B, V) logits, in double precision:
//
//   1. repetition penalty p (1 = off; the CTRL rule, Keskar et al. 2019):
//      for each distinct token v in the row's history,
//      x[v] = x[v] > 0 ? x[v] / p : x[v] * p;
//   2. temperature t: x = x / t;
//   3. top-k (0 = off): keep the k most likely tokens;
//   4. top-p (1 = off): keep the smallest set of most likely tokens whose
//      probability (softmax over what top-k kept) sums to at least top_p;
//      always at least one token, so top_p = 0 is greedy;
//   5. min-p (0 = off): drop the tokens whose probability (softmax over what
//      top-p kept) is below min_p times the largest probability;
//   6. draw one token from the softmax of the kept logits by inverse CDF:
//      with u the row's uniform number in [0, 1) and the kept tokens in
//      increasing id order, the first token whose cumulative unnormalized
//      weight exp(x[v] - max x) exceeds u times the total weight.
//
// "Most likely" orders tokens by logit, ties broken by the lower token id
// (so top_k = 1 is greedy, ties included). Unlike transformers, top-k keeps
// exactly k tokens even when several tie at the k-th logit.
//
// Random numbers: row b uses element b of the call's Philox stream,
// u = llmsys_random_uniform(ctx->rng_seed, ctx->rng_offset, b) (random.h), so
// a seeded call is reproducible and row b's token depends only on its own
// logits, its history and (seed, offset, b), never on the other rows. u has
// 24 bits, so each token's chance is its probability to within 2^-24.
// Successive calls need offsets 2^32 apart, as the host gives them
// (random.h): with offsets 0, 1, 2, ... row b + 4 of one call would reuse
// the number of row b of the next.
//
// greedy: tokens[b] = argmax_v of the (penalized) logits, ties going to the
// lowest index as torch.argmax does. It draws no random numbers; +inf and
// rows of -inf are allowed (an all -inf row gives token 0).
//
// Errors (INVALID_ARGUMENT, the message naming the component and the row):
// a NaN logit (torch would silently pick or propagate it; it almost always
// means the model diverged); for the sampling components also a +inf logit,
// a row whose every logit is -inf (-inf alone is a masked token and fine),
// and a history token outside [0, V) when the penalty is on. Every row is
// checked before any token is written, so a rejected call leaves `tokens`
// untouched. Bad parameters (temperature <= 0, top_p > 1, ...) fail at
// create, naming the parameter, even if the host's schema check was skipped.
//
// Shapes: logits (B, V) float32 with V >= 1; history (B, T) int64 or NULL
// (NULL: no tokens so far, so the penalty changes nothing); tokens (B)
// int64; all on the CPU. Strided views are accepted (e.g. the last position
// of (B, T, V) logits), so the host need not copy.
//
// Thread-safety: an instance is used by one thread at a time (sampler.h);
// the sampling components keep scratch buffers in the instance. Ownership:
// tensors are borrowed for the call.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <string>
#include <vector>

#include "llmsys/random.h"
#include "llmsys/sdk.hpp"

namespace llmsys::plugins {
namespace {

using sdk::ParamSpec;
using sdk::Require;

using sdk::Stride;

// The checked arguments of one sample call, as strided pointers.
struct SampleViews {
  const float* logits = nullptr;  // (B, V)
  int64_t batch = 0;
  int64_t vocab = 0;
  int64_t logits_row_stride = 0;
  int64_t logits_col_stride = 0;
  const int64_t* history = nullptr;  // (B, T); nullptr when absent
  int64_t time = 0;
  int64_t history_row_stride = 0;
  int64_t history_col_stride = 0;
  int64_t* tokens = nullptr;  // (B)
  int64_t tokens_stride = 0;
};

// Checks the shapes, dtypes and devices of a sample call; `who` (the
// component id) starts every message.
SampleViews CheckArgs(const std::string& who,
                      const llmsys_sample_args_t& args) {
  Require(args.struct_size >=
              offsetof(llmsys_sample_args_t, tokens) + sizeof(args.tokens),
          who + ": the sample arguments are too small (struct_size " +
              std::to_string(args.struct_size) + ")");
  const DLTensor* logits = args.logits;
  DLTensor* tokens = args.tokens;
  Require(logits != nullptr, who + ": logits is NULL");
  Require(tokens != nullptr, who + ": tokens is NULL");
  Require(logits->device.device_type == kDLCPU &&
              tokens->device.device_type == kDLCPU,
          who + ": logits and tokens must be on the CPU");
  Require(logits->ndim == 2,
          who + ": logits must be (B, V), got " + sdk::ShapeString(logits));
  Require(llmsys_dtype_equal(logits->dtype, LLMSYS_DTYPE_F32),
          who + ": logits must be float32");
  SampleViews v;
  v.batch = logits->shape[0];
  v.vocab = logits->shape[1];
  Require(v.vocab >= 1, who + ": logits " + sdk::ShapeString(logits) +
                            " has an empty vocabulary dimension");
  Require(tokens->ndim == 1 && tokens->shape[0] == v.batch,
          who + ": tokens must be (B) = (" + std::to_string(v.batch) +
              ") for logits " + sdk::ShapeString(logits) + ", got " +
              sdk::ShapeString(tokens));
  Require(llmsys_dtype_equal(tokens->dtype, LLMSYS_DTYPE_I64),
          who + ": tokens must be int64");
  v.logits = sdk::Data<const float>(logits);
  v.logits_row_stride = Stride(logits, 0);
  v.logits_col_stride = Stride(logits, 1);
  v.tokens = sdk::Data<int64_t>(tokens);
  v.tokens_stride = Stride(tokens, 0);

  if (const DLTensor* history = args.history; history != nullptr) {
    Require(history->device.device_type == kDLCPU,
            who + ": history must be on the CPU");
    Require(history->ndim == 2 && history->shape[0] == v.batch,
            who + ": history must be (B, T) with B = " +
                std::to_string(v.batch) + ", got " + sdk::ShapeString(history));
    Require(llmsys_dtype_equal(history->dtype, LLMSYS_DTYPE_I64),
            who + ": history must be int64");
    v.time = history->shape[1];
    if (v.time > 0) {
      v.history = sdk::Data<const int64_t>(history);
      v.history_row_stride = Stride(history, 0);
      v.history_col_stride = Stride(history, 1);
    }
  }
  return v;
}

// Copies row b of the logits into `row` as doubles. NaN is an error; so is
// +inf unless `allow_inf`. Returns the number of logits above -inf.
int64_t ReadRow(const std::string& who, const SampleViews& in, int64_t b,
                bool allow_inf, std::vector<double>* row) {
  row->resize(static_cast<size_t>(in.vocab));
  const float* src = in.logits + b * in.logits_row_stride;
  int64_t unmasked = 0;
  for (int64_t v = 0; v < in.vocab; ++v) {
    const float x = src[v * in.logits_col_stride];
    if (std::isnan(x)) {
      sdk::Fail(LLMSYS_STATUS_INVALID_ARGUMENT,
                who + ": logits row " + std::to_string(b) +
                    " has NaN at token " + std::to_string(v) +
                    " (did the model diverge?)");
    }
    if (x == std::numeric_limits<float>::infinity() && !allow_inf) {
      sdk::Fail(LLMSYS_STATUS_INVALID_ARGUMENT,
                who + ": logits row " + std::to_string(b) +
                    " has +inf at token " + std::to_string(v) +
                    " (only -inf, a masked token, is allowed)");
    }
    unmasked += x != -std::numeric_limits<float>::infinity();
    (*row)[static_cast<size_t>(v)] = x;
  }
  return unmasked;
}

// Step 1: the CTRL repetition penalty on the distinct tokens of history row
// b. `seen` is scratch.
void ApplyRepetitionPenalty(const std::string& who, const SampleViews& in,
                            int64_t b, double penalty, std::vector<double>* row,
                            std::vector<int64_t>* seen) {
  if (penalty == 1.0 || in.history == nullptr) return;
  seen->clear();
  const int64_t* src = in.history + b * in.history_row_stride;
  for (int64_t t = 0; t < in.time; ++t) {
    const int64_t token = src[t * in.history_col_stride];
    if (token < 0 || token >= in.vocab) {
      sdk::Fail(LLMSYS_STATUS_INVALID_ARGUMENT,
                who + ": history row " + std::to_string(b) + " position " +
                    std::to_string(t) + " holds token " +
                    std::to_string(token) + ", outside the vocabulary [0, " +
                    std::to_string(in.vocab) + ")");
    }
    seen->push_back(token);
  }
  std::sort(seen->begin(), seen->end());
  seen->erase(std::unique(seen->begin(), seen->end()), seen->end());
  for (int64_t token : *seen) {
    double& x = (*row)[static_cast<size_t>(token)];
    x = x > 0.0 ? x / penalty : x * penalty;
  }
}

// Writes the picked tokens; called only once every row succeeded.
void WriteTokens(const SampleViews& in, const std::vector<int64_t>& picked) {
  for (int64_t b = 0; b < in.batch; ++b)
    in.tokens[b * in.tokens_stride] = picked[static_cast<size_t>(b)];
}

ParamSpec RepetitionPenaltySpec() {
  return ParamSpec::Float("repetition_penalty", 1.0,
                          "> 0; divides positive and multiplies negative "
                          "logits of tokens in the history (1 = off; 1.2 is "
                          "the CTRL paper's value)")
      .Min(0.0);
}

// "0.5", "1e-07", "inf": short, exact enough for messages.
std::string FormatDouble(double value) {
  char buffer[32];
  std::snprintf(buffer, sizeof(buffer), "%g", value);
  return buffer;
}

// Throws INVALID_ARGUMENT naming `name` unless `value` is finite and > 0.
double PositiveFinite(const std::string& who, const sdk::Params& params,
                      const std::string& name, const std::string& hint) {
  const double value = params.Float(name);
  Require(std::isfinite(value) && value > 0.0,
          who + ": parameter '" + name + "' must be finite and > 0, got " +
              FormatDouble(value) + hint);
  return value;
}

class Greedy : public sdk::Sampler {
 public:
  static sdk::Info Describe() {
    sdk::Info info;
    info.id = "greedy";
    info.version = "1.1.0";  // 1.1: repetition_penalty
    info.description =
        "Greedy decoding: the most likely token of each row (ties to the "
        "lowest id), after an optional repetition penalty";
    info.device_type = kDLCPU;
    info.params.push_back(RepetitionPenaltySpec());
    return info;
  }

  explicit Greedy(const sdk::Params& params)
      : penalty_(PositiveFinite("greedy", params, "repetition_penalty", "")) {}

  void Sample(const llmsys_sample_args_t& args) override {
    const std::string who = "greedy";
    const SampleViews in = CheckArgs(who, args);
    std::vector<int64_t> picked(static_cast<size_t>(in.batch));
    for (int64_t b = 0; b < in.batch; ++b) {
      ReadRow(who, in, b, /*allow_inf=*/true, &row_);
      ApplyRepetitionPenalty(who, in, b, penalty_, &row_, &seen_);
      // Strictly greater: the first maximum wins, as in torch.argmax.
      int64_t best = 0;
      for (int64_t v = 1; v < in.vocab; ++v) {
        if (row_[static_cast<size_t>(v)] > row_[static_cast<size_t>(best)])
          best = v;
      }
      picked[static_cast<size_t>(b)] = best;
    }
    WriteTokens(in, picked);
  }

 private:
  double penalty_;
  std::vector<double> row_;    // (V) scratch
  std::vector<int64_t> seen_;  // (T) scratch
};

// The four sampling components: which filter each one is named after, and
// so which default differs.
enum class Filter { kTemperature, kTopK, kTopP, kMinP };

struct FilterDefaults {
  const char* id;
  const char* description;
  int64_t top_k;
  double top_p;
  double min_p;
};

constexpr FilterDefaults DefaultsOf(Filter filter) {
  switch (filter) {
    case Filter::kTopK:
      return {"top_k",
              "Top-k sampling: the k most likely tokens (default 50), with "
              "temperature, top_p, min_p and repetition_penalty",
              50, 1.0, 0.0};
    case Filter::kTopP:
      return {"top_p",
              "Nucleus (top-p) sampling: the most likely tokens up to "
              "probability top_p (default 0.9), with temperature, top_k, "
              "min_p and repetition_penalty",
              0, 0.9, 0.0};
    case Filter::kMinP:
      return {"min_p",
              "Min-p sampling: tokens at least min_p (default 0.05) times "
              "as likely as the most likely, with temperature, top_k, top_p "
              "and repetition_penalty",
              0, 1.0, 0.05};
    case Filter::kTemperature:
      break;
  }
  return {"temperature",
          "Sampling from softmax(logits / temperature), with optional "
          "top_k, top_p, min_p and repetition_penalty",
          0, 1.0, 0.0};
}

template <Filter kFilter>
class FilteredSampler : public sdk::Sampler {
 public:
  static constexpr FilterDefaults kDefaults = DefaultsOf(kFilter);

  static sdk::Info Describe() {
    sdk::Info info;
    info.id = kDefaults.id;
    info.version = "1.0.0";
    info.description = kDefaults.description;
    info.device_type = kDLCPU;
    info.params.push_back(
        ParamSpec::Float("temperature", 1.0,
                         "> 0; divides the logits (below 1 sharpens, above "
                         "1 flattens; use greedy for 0)")
            .Min(0.0));
    info.params.push_back(
        ParamSpec::Int("top_k", kDefaults.top_k,
                       "keep the k most likely tokens (0 = off)")
            .Min(0));
    info.params.push_back(
        ParamSpec::Float("top_p", kDefaults.top_p,
                         "keep the fewest most likely tokens whose "
                         "probability reaches top_p (1 = off)")
            .Range(0.0, 1.0));
    info.params.push_back(
        ParamSpec::Float("min_p", kDefaults.min_p,
                         "drop tokens less likely than min_p times the most "
                         "likely (0 = off)")
            .Range(0.0, 1.0));
    info.params.push_back(RepetitionPenaltySpec());
    return info;
  }

  explicit FilteredSampler(const sdk::Params& params)
      : who_(kDefaults.id),
        temperature_(PositiveFinite(
            who_, params, "temperature",
            " (for deterministic decoding use sampler = \"greedy\")")),
        top_k_(params.Int("top_k")),
        top_p_(params.Float("top_p")),
        min_p_(params.Float("min_p")),
        penalty_(PositiveFinite(who_, params, "repetition_penalty", "")) {
    Require(top_k_ >= 0, who_ +
                             ": parameter 'top_k' must be >= 0 (0 = off), "
                             "got " +
                             std::to_string(top_k_));
    Require(top_p_ >= 0.0 && top_p_ <= 1.0,
            who_ + ": parameter 'top_p' must be in [0, 1] (1 = off), got " +
                FormatDouble(top_p_));
    Require(min_p_ >= 0.0 && min_p_ <= 1.0,
            who_ + ": parameter 'min_p' must be in [0, 1] (0 = off), got " +
                FormatDouble(min_p_));
  }

  void Sample(const llmsys_sample_args_t& args) override {
    const SampleViews in = CheckArgs(who_, args);
    Require(args.ctx != nullptr, who_ + ": the call context is NULL");
    Require(
        args.ctx->struct_size >= offsetof(llmsys_call_context_t, rng_offset) +
                                     sizeof(args.ctx->rng_offset),
        who_ +
            ": the call context is too small to hold the random "
            "stream (struct_size " +
            std::to_string(args.ctx->struct_size) + ")");
    std::vector<int64_t> picked(static_cast<size_t>(in.batch));
    for (int64_t b = 0; b < in.batch; ++b) {
      const double u = llmsys_random_uniform(
          args.ctx->rng_seed, args.ctx->rng_offset, static_cast<uint64_t>(b));
      picked[static_cast<size_t>(b)] = SampleRow(in, b, u);
    }
    WriteTokens(in, picked);
  }

 private:
  // Steps 1-6 of the file comment for row b, with its uniform number u.
  int64_t SampleRow(const SampleViews& in, int64_t b, double u) {
    const int64_t unmasked = ReadRow(who_, in, b, /*allow_inf=*/false, &row_);
    Require(unmasked > 0, who_ + ": logits row " + std::to_string(b) +
                              " has every logit -inf: no token can be sampled");
    ApplyRepetitionPenalty(who_, in, b, penalty_, &row_, &seen_);
    kept_.clear();
    double max_logit = -std::numeric_limits<double>::infinity();
    for (int64_t v = 0; v < in.vocab; ++v) {
      double& x = row_[static_cast<size_t>(v)];
      x /= temperature_;
      if (x == -std::numeric_limits<double>::infinity()) continue;
      kept_.push_back(v);
      max_logit = std::max(max_logit, x);
    }
    // Only an extreme temperature or penalty can get here.
    Require(std::isfinite(max_logit),
            who_ + ": logits row " + std::to_string(b) +
                " overflowed after the repetition penalty and temperature");
    // kept_ is in increasing id order until a filter sorts it.
    bool by_id = true;
    const std::vector<double>& x = row_;
    const auto more_likely = [&x](int64_t a, int64_t c) {
      const double xa = x[static_cast<size_t>(a)];
      const double xc = x[static_cast<size_t>(c)];
      return xa > xc || (xa == xc && a < c);
    };
    const auto weight = [&x, max_logit](int64_t v) {
      return std::exp(x[static_cast<size_t>(v)] - max_logit);
    };

    const auto k = static_cast<size_t>(top_k_);
    if (top_k_ > 0 && k < kept_.size()) {
      std::nth_element(kept_.begin(), kept_.begin() + (k - 1), kept_.end(),
                       more_likely);
      kept_.resize(k);
      by_id = false;
    }
    if (top_p_ < 1.0) {
      by_id = false;
      double total = 0.0;
      for (int64_t v : kept_) total += weight(v);
      const double target = top_p_ * total;
      // The nucleus is usually small: sort only a prefix, 4x longer each
      // time it falls short. more_likely is a strict total order, so the
      // prefix is the same as in a full sort.
      double cumulative = 0.0;
      size_t n = 0, sorted = 0;
      bool reached = false;
      while (!reached && sorted < kept_.size()) {
        const size_t end =
            std::min(kept_.size(), std::max<size_t>(64, 4 * sorted));
        std::partial_sort(kept_.begin() + static_cast<ptrdiff_t>(sorted),
                          kept_.begin() + static_cast<ptrdiff_t>(end),
                          kept_.end(), more_likely);
        sorted = end;
        while (n < sorted && !reached) {
          cumulative += weight(kept_[n++]);
          reached = cumulative >= target;
        }
      }
      kept_.resize(n);
    }
    if (min_p_ > 0.0) {
      // p(v) / max p = exp(x[v] - max x); the most likely token (weight 1)
      // is always kept, since min_p <= 1.
      std::erase_if(kept_,
                    [&weight, this](int64_t v) { return weight(v) < min_p_; });
    }
    if (!by_id) std::sort(kept_.begin(), kept_.end());

    // Inverse CDF in id order. The running sum ends at exactly `total` and
    // u < 1, so some token with positive weight is always reached.
    double total = 0.0;
    for (int64_t v : kept_) total += weight(v);
    const double target = u * total;
    double cumulative = 0.0;
    int64_t last_positive = kept_.front();
    for (int64_t v : kept_) {
      const double w = weight(v);
      if (w <= 0.0) continue;
      cumulative += w;
      last_positive = v;
      if (cumulative > target) return v;
    }
    return last_positive;
  }

  std::string who_;
  double temperature_;
  int64_t top_k_;
  double top_p_;
  double min_p_;
  double penalty_;
  std::vector<double> row_;    // (V) scratch: the row's logits
  std::vector<int64_t> kept_;  // (<= V) scratch: the tokens still in
  std::vector<int64_t> seen_;  // (T) scratch: the history's tokens
};

}  // namespace
}  // namespace llmsys::plugins

LLMSYS_PLUGIN("llmsys.samplers", "0.2.0",
              "Built-in samplers: greedy, and temperature, top-k, top-p and "
              "min-p sampling with a repetition penalty",
              "MIT") {
  using llmsys::plugins::Filter;
  using llmsys::plugins::FilteredSampler;
  registry.Add<llmsys::plugins::Greedy>();
  registry.Add<FilteredSampler<Filter::kTemperature>>();
  registry.Add<FilteredSampler<Filter::kTopK>>();
  registry.Add<FilteredSampler<Filter::kTopP>>();
  registry.Add<FilteredSampler<Filter::kMinP>>();
}
