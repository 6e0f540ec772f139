#include "framework/train/evaluation.h"

#include <algorithm>
#include <cmath>
#include <optional>

#include "absl/strings/str_cat.h"
#include "framework/core/status_macros.h"
#include "framework/data/batching.h"
#include "framework/eval/segments.h"
#include "llmsys/evaluator.h"

namespace llmsys::train {
namespace {

using tensor::Tensor;

// The model's logits for (B, T) targets must be (B, T, V) float32 on the
// CPU.
absl::Status CheckLogits(const Tensor& logits,
                         const std::vector<int32_t>& targets) {
  if (logits.ndim() != 3 || logits.dtype() != tensor::kF32 ||
      logits.device().device_type != kDLCPU ||
      static_cast<int64_t>(targets.size()) !=
          logits.shape()[0] * logits.shape()[1])
    return absl::InvalidArgumentError(
        absl::StrCat("the model's logits must be (B, T, V) float32 on the "
                     "CPU for ",
                     targets.size(), " targets; got ", logits.Describe()));
  return absl::OkStatus();
}

// Log-probabilities or predictions over the validation batches.
absl::Status FeedWindows(const config::EvaluateEntry& entry,
                         const ModelAccess& model,
                         const std::vector<int32_t>& val_ids, int64_t batch,
                         int64_t block, eval::Evaluator& evaluator) {
  LLMSYS_ASSIGN_OR_RETURN(
      data::LmEvalBatches batches,
      data::LmEvalBatches::Create(val_ids, batch, block, "validation"));
  const bool log_probs = evaluator.inputs() & LLMSYS_EVAL_LOG_PROBS;
  for (int64_t n = 0; entry.batches == 0 || n < entry.batches; ++n) {
    std::optional<data::LmBatch> b = batches.Next();
    if (!b) break;
    LLMSYS_ASSIGN_OR_RETURN(Tensor logits,
                            model.logits(b->x, b->batch_size, b->block_size));
    if (log_probs) {
      LLMSYS_ASSIGN_OR_RETURN(std::vector<double> lp,
                              RowLogProbs(logits, b->y));
      LLMSYS_RETURN_IF_ERROR(evaluator.AddLogProbs(
          lp, std::vector<int64_t>(lp.size(), b->block_size)));
      continue;
    }
    LLMSYS_RETURN_IF_ERROR(CheckLogits(logits, b->y));
    const Tensor l = logits.Contiguous();
    const int64_t vocab = l.shape().back();
    const float* data = l.data_as<const float>();
    std::vector<int64_t> predictions(b->y.size());
    for (size_t i = 0; i < b->y.size(); ++i) {
      const float* row = data + static_cast<int64_t>(i) * vocab;
      predictions[i] = std::max_element(row, row + vocab) - row;
    }
    LLMSYS_RETURN_IF_ERROR(evaluator.AddPredictions(
        predictions, std::vector<int64_t>(b->y.begin(), b->y.end())));
  }
  return absl::OkStatus();
}

// Continuation tasks spread evenly over the validation tokens.
absl::Status FeedContinuations(const config::EvaluateEntry& entry,
                               const ModelAccess& model,
                               const std::vector<int32_t>& val_ids,
                               eval::Evaluator& evaluator) {
  const int64_t span = entry.prompt_tokens + entry.max_tokens;
  const int64_t n = static_cast<int64_t>(val_ids.size());
  if (span > n)
    return absl::InvalidArgumentError(absl::StrCat(
        "[[evaluate]] ", entry.component->id, ": prompt_tokens + max_tokens = ",
        span, " is more than the ", n, " validation tokens"));
  std::vector<std::vector<int32_t>> prompts, targets;
  for (int64_t i = 0; i < entry.segments; ++i) {
    const int64_t start =
        entry.segments == 1 ? 0 : (n - span) * i / (entry.segments - 1);
    const auto at = val_ids.begin() + start;
    prompts.emplace_back(at, at + entry.prompt_tokens);
    targets.emplace_back(at + entry.prompt_tokens, at + span);
  }
  LLMSYS_ASSIGN_OR_RETURN(std::vector<std::vector<int32_t>> continuations,
                          model.generate(prompts, entry.max_tokens));
  std::vector<std::string> hyps;
  std::vector<eval::References> refs;
  for (size_t i = 0; i < prompts.size(); ++i) {
    LLMSYS_ASSIGN_OR_RETURN(std::string hyp, model.decode(continuations[i]));
    LLMSYS_ASSIGN_OR_RETURN(std::string ref, model.decode(targets[i]));
    hyps.push_back(std::move(hyp));
    refs.push_back({std::move(ref)});
  }
  return evaluator.AddText(hyps, refs);
}

}  // namespace

absl::StatusOr<std::vector<double>> RowLogProbs(
    const Tensor& logits, const std::vector<int32_t>& targets) {
  LLMSYS_RETURN_IF_ERROR(CheckLogits(logits, targets));
  const int64_t rows = logits.shape()[0];
  const int64_t steps = logits.shape()[1];
  const int64_t vocab = logits.shape()[2];
  const Tensor l = logits.Contiguous();
  const float* data = l.data_as<const float>();
  std::vector<double> sums(static_cast<size_t>(rows), 0.0);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t t = 0; t < steps; ++t) {
      const float* x = data + (r * steps + t) * vocab;
      const int32_t y = targets[static_cast<size_t>(r * steps + t)];
      if (y < 0 || y >= vocab)
        return absl::InvalidArgumentError(absl::StrCat(
            "target ", y, " is outside the vocabulary of ", vocab));
      double max = x[0];
      for (int64_t v = 1; v < vocab; ++v) max = std::max(max, double{x[v]});
      double sum = 0;
      for (int64_t v = 0; v < vocab; ++v) sum += std::exp(double{x[v]} - max);
      sums[static_cast<size_t>(r)] += double{x[y]} - max - std::log(sum);
    }
  }
  return sums;
}

absl::Status CheckEvaluation(const config::EvaluateEntry& entry,
                             const Task& task) {
  const std::string what =
      absl::StrCat("[[evaluate]] use = \"", entry.component->id, "\"");
  const bool translation = task.kind() == "translation";
  if (task.kind() == "mlm")
    return absl::InvalidArgumentError(absl::StrCat(
        what,
        ": an mlm task reports its validation loss, perplexity and "
        "masked-token accuracy itself ([train] eval_every); [[evaluate]] "
        "entries apply to the lm and translation tasks"));
  if (translation && !entry.ReadsText())
    return absl::InvalidArgumentError(absl::StrCat(
        what,
        ": a translation task scores its translations with text evaluators "
        "(bleu, chrf, ...); its validation loss and perplexity are logged "
        "with [train] eval_every"));
  if (entry.component->id == "pass_at_k")
    return absl::InvalidArgumentError(absl::StrCat(
        what,
        ": pass@k needs the test results of sampled programs, which a "
        "training run does not have; score them with `llmsys eval --metric "
        "pass_at_k --input FILE.jsonl`"));
  const bool text = entry.ReadsText();
  for (const auto& [key, setting] : entry.settings) {
    if (setting.is_default) continue;
    if (const std::string misfit =
            config::EvaluateKeyMisfit(entry, key, translation);
        !misfit.empty())
      return absl::InvalidArgumentError(
          absl::StrCat(setting.source.Describe(), ": ", what, ": ", misfit));
  }
  absl::StatusOr<std::unique_ptr<eval::Evaluator>> created =
      eval::Evaluator::Create(*entry.component, entry.params);
  if (!created.ok())
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": ", created.status().message()));
  if (translation) {
    if (task.split(entry.split) == nullptr)
      return absl::InvalidArgumentError(
          absl::StrCat(what, ": split = \"", entry.split, "\" needs [data] ",
                       entry.split, " (the prefix of its files)"));
    return absl::OkStatus();
  }
  if (!text) return absl::OkStatus();
  const int64_t val_tokens = static_cast<int64_t>(task.lm_validation()->size());
  if (entry.segments < 1)
    return absl::InvalidArgumentError(absl::StrCat(
        what, ": segments must be at least 1 for continuation tasks"));
  if (entry.prompt_tokens + entry.max_tokens > val_tokens)
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": prompt_tokens + max_tokens = ",
                     entry.prompt_tokens + entry.max_tokens,
                     " is more than the ", val_tokens, " validation tokens"));
  return absl::OkStatus();
}

absl::StatusOr<eval::EvalResult> RunEvaluation(
    const config::EvaluateEntry& entry, const ModelAccess& model,
    const std::vector<int32_t>& val_ids, int64_t batch, int64_t block) {
  std::vector<std::pair<std::string, runtime::ParamValue>> params =
      entry.params;
  const uint32_t inputs = entry.component->As<llmsys_evaluator_t>()->inputs;
  if (inputs & LLMSYS_EVAL_LOG_PROBS) {
    // The host states how it computed the log-probabilities.
    for (const runtime::ParamSchemaEntry& p : entry.component->params)
      if (p.name == "window" || p.name == "stride")
        params.emplace_back(p.name, runtime::ParamValue(block));
  }
  LLMSYS_ASSIGN_OR_RETURN(std::unique_ptr<eval::Evaluator> evaluator,
                          eval::Evaluator::Create(*entry.component, params));
  if (entry.ReadsText()) {
    LLMSYS_RETURN_IF_ERROR(
        FeedContinuations(entry, model, val_ids, *evaluator));
  } else {
    LLMSYS_RETURN_IF_ERROR(
        FeedWindows(entry, model, val_ids, batch, block, *evaluator));
  }
  return evaluator->Result();
}

}  // namespace llmsys::train
