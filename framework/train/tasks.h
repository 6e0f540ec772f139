// framework/train/tasks.h — what a run trains on ([data] task): the data,
// its batches, and the named inputs the model receives (docs/data.md).
//
//   lm           text; random windows of block_size tokens:
//                  "tokens" (B, T) int64, "targets" (B, T) int64 (shifted)
//   translation  sentence pairs <prefix>.<source_lang> / <prefix>.<target_lang>
//                (each maybe .gz), one shared tokenizer trained on both
//                sides of train:
//                  "src" (B, S) int64   source ids, no special tokens,
//                                       right-padded with <pad> (0)
//                  "src_lengths" (B) int64
//                  "src_padding_mask" (B, S) int32, 1 at padding
//                  "tgt", "tgt_lengths", "tgt_padding_mask"  the same for
//                                       the target
//                  "tokens" (B, T+1) int64   <bos> tgt (teacher forcing)
//                  "targets" (B, T+1) int64  tgt <eos>, -100 at padding
//                An autoregressive model reads src, src_padding_mask,
//                tokens, targets; a non-autoregressive one src, tgt and
//                their lengths.
//   mlm          lines of text, two consecutive lines A, B per example:
//                  "tokens" (B, L) int64   <bos> A <eos> B <eos>, masked
//                                          (framework/data/masking.h: 80%
//                                          [MASK], 10% random, 10% kept)
//                  "segments" (B, L) int64 0 over <bos> A <eos>, 1 after
//                  "padding_mask" (B, L) int32, 1 at padding
//                  "targets" (B, L) int64  the original id where masked,
//                                          -100 elsewhere
//                [MASK] is the id after the tokenizer's last, so the model's
//                vocabulary is one larger than the tokenizer's.
//
//   LLMSYS_ASSIGN_OR_RETURN(std::unique_ptr<Task> task, Task::Load(e));
//   ... train or load a tokenizer on task->TokenizerText() ...
//   LLMSYS_RETURN_IF_ERROR(task->Prepare(tokenizer, batch, block, seed));
//   LLMSYS_ASSIGN_OR_RETURN(TaskBatch b, task->Next());
//
// Every batch is a pure function of (seed, epoch, step): state()/Restore()
// resume exactly (framework/data/batching.h).
//
// Thread-safety: use a task from one thread.
#ifndef LLMSYS_FRAMEWORK_TRAIN_TASKS_H_
#define LLMSYS_FRAMEWORK_TRAIN_TASKS_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "framework/config/experiment.h"
#include "framework/data/batching.h"
#include "framework/data/tokenizer.h"
#include "framework/tensor/tensor.h"

namespace llmsys::train {

// A target that nothing predicts (padding; mlm's unmasked tokens).
inline constexpr int32_t kIgnoreTarget = -100;

// One model call's inputs and the targets its loss predicts.
struct TaskBatch {
  std::vector<std::pair<std::string, tensor::Tensor>> inputs = {};
  // (rows, cols) row-major, aligned with the model's (rows, cols, V)
  // logits; -100 where nothing is predicted.
  std::vector<int32_t> targets;
  int64_t rows = 0, cols = 0;
  int64_t tokens = 0;  // targets predicted (tokens/s counts these)
};

// A split of sentence pairs with its text (the references of BLEU).
struct TranslationSplit {
  std::string name;                                   // "valid", "test"
  std::string source_file, target_file;               // as found
  std::vector<std::string> source_text, target_text;  // lines
  std::vector<std::vector<int32_t>> source, target;   // encoded (Prepare)
};

// The source-side inputs of translating `sources` (ids without specials):
// "src", "src_lengths" and "src_padding_mask" as the task describes them,
// padded to the longest.
std::vector<std::pair<std::string, tensor::Tensor>> SourceInputs(
    const std::vector<std::vector<int32_t>>& sources);

class Task {
 public:
  // Reads the files of [data] (errors name the file and the key).
  static absl::StatusOr<std::unique_ptr<Task>> Load(
      const config::Experiment& e);
  virtual ~Task() = default;

  virtual std::string_view kind() const = 0;  // "lm", "translation", "mlm"
  // The text a new tokenizer learns from.
  virtual std::string TokenizerText() const = 0;
  // Encodes the data and builds the batchers: `batch` examples per batch,
  // `block` tokens per example (lm, mlm).
  virtual absl::Status Prepare(const data::Tokenizer& tokenizer, int64_t batch,
                               int64_t block, uint64_t seed) = 0;
  // Ids the task adds after the tokenizer's (mlm: [MASK]).
  virtual int32_t extra_tokens() const { return 0; }
  // The next training batch.
  virtual absl::StatusOr<TaskBatch> Next() = 0;
  virtual data::BatcherState state() const = 0;
  virtual absl::Status Restore(const data::BatcherState& state) = 0;
  // The first `max_batches` validation batches (0: all), the same every
  // time (mlm masks them with fixed draws).
  virtual absl::StatusOr<std::vector<TaskBatch>> Validation(
      int64_t max_batches) = 0;
  // For the run's first log line: "29000 train / 1014 validation pairs".
  virtual std::string Describe() const = 0;

  // lm: the validation token ids (the language-model evaluations read
  // them); others: null.
  virtual const std::vector<int32_t>* lm_validation() const { return nullptr; }
  // translation: the split "valid" or "test" (null when not configured).
  virtual const TranslationSplit* split(std::string_view name) const {
    (void)name;
    return nullptr;
  }
};

// <prefix>.<lang>, or <prefix>.<lang>.gz when only that exists; NOT_FOUND
// names both.
absl::StatusOr<std::string> PairFile(const config::Experiment& e,
                                     const std::string& key,
                                     const std::string& lang_key);

}  // namespace llmsys::train

#endif  // LLMSYS_FRAMEWORK_TRAIN_TASKS_H_
