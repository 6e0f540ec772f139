// plugins/evaluators/evaluators.cc — the built-in evaluators (plugin
// "llmsys.evaluators"). The text metrics (bleu, chrf, rouge, exact_match,
// token_f1) live in text_evaluators.cc over the library in text/; this file
// has the counting ones.
//
// accuracy: the fraction of predictions equal to their labels, over every
// batch fed to one instance. Labels equal to `ignore_index` (default -100,
// the value PyTorch's cross_entropy skips, so padded label tensors can be
// fed unchanged) are left out of both counts. Metrics:
//   accuracy  correct / total, in [0, 1]; 0 when total is 0
//   correct   predictions that matched a counted label
//   total     labels counted (not ignored)
// Signature: "ignore_index:-100|version:1.0.0".
// Inputs (LLMSYS_EVAL_PREDICTIONS): predictions and labels, each a (count)
// int64 tensor on the CPU; strided 1-D views are accepted.
//
// perplexity: exp of the mean negative log-likelihood per token, from
// per-segment sums of natural-log token probabilities and token counts
// (LLMSYS_EVAL_LOG_PROBS: log_probs (count) float64, token_counts (count)
// int64). Metrics: perplexity, nll (nats per token), bits_per_token,
// tokens, segments. The host states how it computed the log-probabilities
// with the parameters `window` (tokens of context per forward pass) and
// `stride` (tokens scored per window), which go into the signature:
// "tokens:1000|window:128|stride:128|logbase:e|version:1.0.0".
//
// pass_at_k: the unbiased pass@k estimator of Chen et al. (2021) for each k
// of `k` (default [1]): per problem with n samples of which c are correct,
// 1 - C(n-c, k) / C(n, k), computed as a product to stay exact; averaged
// over problems. Reads predictions = c and labels = n
// (LLMSYS_EVAL_PREDICTIONS); a problem with n < k is an error. Metrics:
// "pass@1", ..., problems.
//
// Every batch is checked in full before it is counted, so a rejected batch
// changes nothing.
//
// Thread-safety: an instance is used by one thread at a time
// (evaluator.h). Ownership: batch tensors are borrowed for the call; only
// counters are kept.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "llmsys/sdk.hpp"
#include "plugins/evaluators/text_evaluators.h"

namespace llmsys::plugins {
namespace {

using sdk::Require;

constexpr char kAccuracyVersion[] = "1.0.0";
constexpr char kPerplexityVersion[] = "1.0.0";
constexpr char kPassAtKVersion[] = "1.0.0";

// Checks a (count) tensor of `dtype` on the CPU; `what` prefixes errors.
void CheckVector(const DLTensor* t, const std::string& what, uint32_t count,
                 DLDataType dtype, const char* dtype_name) {
  Require(t != nullptr, what + " is NULL");
  Require(t->device.device_type == kDLCPU, what + " must be on the CPU");
  Require(llmsys_dtype_equal(t->dtype, dtype), what + " must be " + dtype_name);
  Require(t->ndim == 1 && t->shape[0] == static_cast<int64_t>(count),
          what + " must be (count) = (" + std::to_string(count) + "), got " +
              sdk::ShapeString(t));
}

template <class T>
std::vector<T> Values(const DLTensor* t, uint32_t count) {
  const T* data = sdk::Data<const T>(t);
  std::vector<T> out(count);
  const int64_t stride = sdk::Stride(t, 0);
  for (uint32_t i = 0; i < count; ++i) out[i] = data[i * stride];
  return out;
}

// The batch must be large enough to hold `field`.
#define LLMSYS_CHECK_BATCH(batch, field, name)                              \
  Require((batch).struct_size >=                                            \
              offsetof(llmsys_eval_batch_t, field) + sizeof((batch).field), \
          std::string(name) + ": the batch is too small (struct_size " +    \
              std::to_string((batch).struct_size) + ")")

class Accuracy : public sdk::Evaluator {
 public:
  static sdk::Info Describe() {
    sdk::Info info;
    info.id = "accuracy";
    info.version = kAccuracyVersion;
    info.description = "Fraction of predictions equal to their labels";
    // It reads the predictions and labels tensors, which live on the CPU.
    info.device_type = kDLCPU;
    info.params.push_back(sdk::ParamSpec::Int(
        "ignore_index", -100, "labels equal to this value are not counted"));
    info.eval_inputs = LLMSYS_EVAL_PREDICTIONS;
    return info;
  }

  explicit Accuracy(const sdk::Params& p)
      : ignore_index_(p.Int("ignore_index")) {}

  void Add(const llmsys_eval_batch_t& batch) override {
    LLMSYS_CHECK_BATCH(batch, labels, "accuracy");
    CheckVector(batch.predictions, "accuracy: predictions", batch.count,
                LLMSYS_DTYPE_I64, "int64");
    CheckVector(batch.labels, "accuracy: labels", batch.count, LLMSYS_DTYPE_I64,
                "int64");
    const std::vector<int64_t> pred =
        Values<int64_t>(batch.predictions, batch.count);
    const std::vector<int64_t> label =
        Values<int64_t>(batch.labels, batch.count);
    for (uint32_t i = 0; i < batch.count; ++i) {
      if (label[i] == ignore_index_) continue;
      ++total_;
      correct_ += pred[i] == label[i];
    }
  }

  sdk::EvalResult Result() override {
    const double accuracy = total_ == 0 ? 0.0
                                        : static_cast<double>(correct_) /
                                              static_cast<double>(total_);
    sdk::EvalResult result;
    result.metrics = {{"accuracy", accuracy},
                      {"correct", static_cast<double>(correct_)},
                      {"total", static_cast<double>(total_)}};
    result.signature = "ignore_index:" + std::to_string(ignore_index_) +
                       "|version:" + kAccuracyVersion;
    return result;
  }

 private:
  int64_t ignore_index_;
  int64_t correct_ = 0;
  int64_t total_ = 0;
};

class Perplexity : public sdk::Evaluator {
 public:
  static sdk::Info Describe() {
    sdk::Info info;
    info.id = "perplexity";
    info.version = kPerplexityVersion;
    info.description =
        "exp(mean negative log-likelihood per token), from per-segment "
        "log-probability sums";
    info.device_type = kDLCPU;
    info.params.push_back(
        sdk::ParamSpec::Int("window", 0,
                            "tokens of context per forward pass, as the host "
                            "computed them (0: not stated)")
            .Min(0));
    info.params.push_back(
        sdk::ParamSpec::Int("stride", 0,
                            "tokens scored per window (0: not stated)")
            .Min(0));
    info.eval_inputs = LLMSYS_EVAL_LOG_PROBS;
    return info;
  }

  explicit Perplexity(const sdk::Params& p)
      : window_(p.Int("window")), stride_(p.Int("stride")) {}

  void Add(const llmsys_eval_batch_t& batch) override {
    LLMSYS_CHECK_BATCH(batch, token_counts, "perplexity");
    CheckVector(batch.log_probs, "perplexity: log_probs", batch.count,
                LLMSYS_DTYPE_F64, "float64");
    CheckVector(batch.token_counts, "perplexity: token_counts", batch.count,
                LLMSYS_DTYPE_I64, "int64");
    const std::vector<double> lp = Values<double>(batch.log_probs, batch.count);
    const std::vector<int64_t> n =
        Values<int64_t>(batch.token_counts, batch.count);
    for (uint32_t i = 0; i < batch.count; ++i) {
      Require(std::isfinite(lp[i]) && lp[i] <= 0.0,
              "perplexity: segment " + std::to_string(segments_ + i) +
                  " has log-probability " + std::to_string(lp[i]) +
                  " (expected a finite sum of log-probabilities, <= 0)");
      Require(n[i] >= 0, "perplexity: segment " +
                             std::to_string(segments_ + i) +
                             " has a negative token count");
    }
    for (uint32_t i = 0; i < batch.count; ++i) {
      log_prob_ += lp[i];
      tokens_ += n[i];
    }
    segments_ += batch.count;
  }

  sdk::EvalResult Result() override {
    Require(tokens_ > 0, "perplexity: no tokens were scored");
    const double nll = -log_prob_ / static_cast<double>(tokens_);
    sdk::EvalResult result;
    result.metrics = {{"perplexity", std::exp(nll)},
                      {"nll", nll},
                      {"bits_per_token", nll / std::log(2.0)},
                      {"tokens", static_cast<double>(tokens_)},
                      {"segments", static_cast<double>(segments_)}};
    result.signature = "tokens:" + std::to_string(tokens_) +
                       "|window:" + std::to_string(window_) +
                       "|stride:" + std::to_string(stride_) +
                       "|logbase:e|version:" + kPerplexityVersion;
    return result;
  }

 private:
  int64_t window_, stride_;
  double log_prob_ = 0;
  int64_t tokens_ = 0;
  int64_t segments_ = 0;
};

class PassAtK : public sdk::Evaluator {
 public:
  static sdk::Info Describe() {
    sdk::Info info;
    info.id = "pass_at_k";
    info.version = kPassAtKVersion;
    info.description =
        "Unbiased pass@k (Chen et al. 2021) from samples and correct samples "
        "per problem";
    info.device_type = kDLCPU;
    info.params.push_back(sdk::ParamSpec::IntList(
        "k", {1}, "the k of each pass@k reported (each >= 1)"));
    info.eval_inputs = LLMSYS_EVAL_PREDICTIONS;
    return info;
  }

  explicit PassAtK(const sdk::Params& p) : ks_(p.IntList("k")) {
    Require(!ks_.empty(), "pass_at_k: 'k' must list at least one k");
    for (size_t i = 0; i < ks_.size(); ++i) {
      Require(ks_[i] >= 1,
              "pass_at_k: every k must be >= 1, got " + std::to_string(ks_[i]));
      for (size_t j = 0; j < i; ++j)
        Require(ks_[j] != ks_[i], "pass_at_k: k = " + std::to_string(ks_[i]) +
                                      " is listed twice");
    }
    sums_.assign(ks_.size(), 0.0);
  }

  void Add(const llmsys_eval_batch_t& batch) override {
    LLMSYS_CHECK_BATCH(batch, labels, "pass_at_k");
    CheckVector(batch.predictions, "pass_at_k: predictions (correct samples)",
                batch.count, LLMSYS_DTYPE_I64, "int64");
    CheckVector(batch.labels, "pass_at_k: labels (samples)", batch.count,
                LLMSYS_DTYPE_I64, "int64");
    const std::vector<int64_t> c =
        Values<int64_t>(batch.predictions, batch.count);
    const std::vector<int64_t> n = Values<int64_t>(batch.labels, batch.count);
    for (uint32_t i = 0; i < batch.count; ++i) {
      const std::string where =
          "pass_at_k: problem " + std::to_string(problems_ + i) + " has ";
      Require(c[i] >= 0 && c[i] <= n[i],
              where + "c = " + std::to_string(c[i]) + " correct of n = " +
                  std::to_string(n[i]) + " samples (expected 0 <= c <= n)");
      for (int64_t k : ks_)
        Require(n[i] >= k, where + "n = " + std::to_string(n[i]) +
                               " samples, fewer than k = " + std::to_string(k));
    }
    for (uint32_t i = 0; i < batch.count; ++i)
      for (size_t j = 0; j < ks_.size(); ++j)
        sums_[j] += Estimate(n[i], c[i], ks_[j]);
    problems_ += batch.count;
  }

  sdk::EvalResult Result() override {
    sdk::EvalResult result;
    std::string ks;
    for (size_t j = 0; j < ks_.size(); ++j) {
      result.metrics.emplace_back(
          "pass@" + std::to_string(ks_[j]),
          problems_ == 0 ? 0.0 : sums_[j] / static_cast<double>(problems_));
      ks += (j ? "," : "") + std::to_string(ks_[j]);
    }
    result.metrics.emplace_back("problems", static_cast<double>(problems_));
    result.signature = "k:" + ks + "|version:" + kPassAtKVersion;
    return result;
  }

 private:
  // 1 - C(n-c, k) / C(n, k) = 1 - prod_{i=n-c+1}^{n} (1 - k / i).
  static double Estimate(int64_t n, int64_t c, int64_t k) {
    if (n - c < k) return 1.0;
    double keep = 1.0;
    for (int64_t i = n - c + 1; i <= n; ++i)
      keep *= 1.0 - static_cast<double>(k) / static_cast<double>(i);
    return 1.0 - keep;
  }

  std::vector<int64_t> ks_;
  std::vector<double> sums_;
  int64_t problems_ = 0;
};

}  // namespace
}  // namespace llmsys::plugins

LLMSYS_PLUGIN("llmsys.evaluators", "0.2.0",
              "Built-in evaluators: bleu, chrf, rouge, exact_match, token_f1, "
              "perplexity, accuracy, pass_at_k",
              "MIT") {
  llmsys::plugins::AddTextEvaluators(registry);
  registry.Add<llmsys::plugins::Accuracy>();
  registry.Add<llmsys::plugins::Perplexity>();
  registry.Add<llmsys::plugins::PassAtK>();
}
