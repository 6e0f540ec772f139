// framework/train/evaluation.h — the [[evaluate]] entries of an experiment:
// what the host computes for each kind of evaluator over the validation
// split, and the evaluator's metrics.
//
// By what the evaluator reads (llmsys/evaluator.h):
//   log-probabilities  per validation window of block_size tokens (the
//                      windows of the validation loss, non-overlapping, so
//                      window = stride = block_size), the sum of the natural
//                      log-probabilities of its targets and its token count
//                      (perplexity);
//   predictions        each validation target and the model's most likely
//                      token there (accuracy of next-token prediction);
//   text               `segments` continuation tasks spread evenly over the
//                      validation tokens: the first `prompt_tokens` are the
//                      prompt, the next `max_tokens` decoded are the
//                      reference, and the model's continuation (with the
//                      run's [generate] sampler) is the hypothesis (bleu,
//                      chrf, rouge, exact_match, token_f1).
// `batches` limits the validation batches read (0: all of them).
// These are the language-model task's; a translation task scores the
// translations of a split with text evaluators (trainer.cc).
//
// Thread-safety: call from the training thread. Ownership: nothing kept.
#ifndef LLMSYS_FRAMEWORK_TRAIN_EVALUATION_H_
#define LLMSYS_FRAMEWORK_TRAIN_EVALUATION_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "framework/config/experiment.h"
#include "framework/eval/evaluator.h"
#include "framework/tensor/tensor.h"
#include "framework/train/tasks.h"

namespace llmsys::train {

// What an evaluation needs from the run's model and tokenizer.
struct ModelAccess {
  // Logits (B, T, V) for tokens x (B, T), row-major, in evaluation mode.
  std::function<absl::StatusOr<tensor::Tensor>(const std::vector<int32_t>& x,
                                               int64_t batch, int64_t block)>
      logits;
  // At most `max_tokens` tokens continuing each prompt.
  std::function<absl::StatusOr<std::vector<std::vector<int32_t>>>(
      const std::vector<std::vector<int32_t>>& prompts, int64_t max_tokens)>
      generate;
  std::function<absl::StatusOr<std::string>(const std::vector<int32_t>&)>
      decode;
};

// Checks `entry` before training: the evaluator can be created with its
// parameters, every key set applies to its kind (`batches` to log-prob and
// prediction evaluators, `segments`/`prompt_tokens`/`max_tokens` to text
// ones, `split`/`direction` to translation; `window`/`stride` are the
// host's), text tasks fit in the validation tokens, and the host can feed
// it: pass_at_k needs test results of sampled programs (use `llmsys eval`),
// a translation task feeds text evaluators only, from a split it has, and
// an mlm task none (it reports its own validation metrics).
absl::Status CheckEvaluation(const config::EvaluateEntry& entry,
                             const Task& task);

// Runs one [[evaluate]] entry over the validation tokens `val_ids`, cut
// into batches of `batch` windows of `block` tokens.
absl::StatusOr<eval::EvalResult> RunEvaluation(
    const config::EvaluateEntry& entry, const ModelAccess& model,
    const std::vector<int32_t>& val_ids, int64_t batch, int64_t block);

// Sums of log-softmax(logits)[target] per row of (B, T, V) logits and
// (B, T) targets, in double precision.
absl::StatusOr<std::vector<double>> RowLogProbs(
    const tensor::Tensor& logits, const std::vector<int32_t>& targets);

}  // namespace llmsys::train

#endif  // LLMSYS_FRAMEWORK_TRAIN_EVALUATION_H_
