// framework/data/batching.h — deterministic batches of token ids: random
// (x, y) windows for language-model training, sequential windows for
// evaluation, and shuffled padded sentence pairs for translation.
//
//   LLMSYS_ASSIGN_OR_RETURN(LmBatcher train,
//                           LmBatcher::Create(train_ids, /*batch_size=*/32,
//                                             /*block_size=*/256, seed));
//   LmBatch b = train.Next();          // b.x, b.y: (32, 256), row-major
//   BatcherState saved = train.state();  // ... later, for an exact resume:
//   LLMSYS_RETURN_IF_ERROR(train.Restore(saved));
//
//   LLMSYS_ASSIGN_OR_RETURN(LmEvalBatches val,
//                           LmEvalBatches::Create(val_ids, 32, 256));
//   while (std::optional<LmBatch> b = val.Next()) { ... }
//
// Randomness: Philox4x32-10 of abi/llmsys/random.h (the counter-based
// stream the operators use), never std::uniform_int_distribution, so a seed
// gives the same batches with every compiler and machine. Random index k of
// a stream (seed, offset) is the 64-bit word
//   (llmsys_random_u32(seed, offset, 2k) << 32) | llmsys_random_u32(..., 2k+1)
// reduced modulo the range (the bias, below range / 2^64, is negligible).
//   LmBatcher: row b of batch `step` starts at random index step * B + b of
//     stream (seed, 0), modulo N - T (x = tokens[i, i+T), y = tokens[i+1,
//     i+T+1), nanoGPT's get_batch).
//   ParallelBatcher: epoch e's order is a Fisher-Yates shuffle of 0..n-1
//     (i from n-1 down to 1 swaps with random index n-1-i modulo i+1 of
//     stream (seed, e << 32)); batches are consecutive runs of that order.
//     With sort_batches = k > 0, each run of k * batch_size pairs of that
//     order is then stably sorted by (target length, source length) and its
//     full batches are shuffled as blocks (the same Fisher-Yates over the
//     blocks, random indices counted on across the runs of stream (seed,
//     (e << 32) + 2^31)), so a batch holds pairs of similar lengths (little
//     padding) and the lengths still come in random order.
// A batch is a pure function of (seed, epoch, step), which BatcherState
// records; Restore with the same data and sizes resumes exactly.
//
// Thread-safety: a batcher is a value; use each from one thread at a time.
#ifndef LLMSYS_FRAMEWORK_DATA_BATCHING_H_
#define LLMSYS_FRAMEWORK_DATA_BATCHING_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "framework/data/tokenizer.h"
#include "framework/tensor/tensor.h"

namespace llmsys::data {

// The k-th random 64-bit word of the Philox stream (seed, offset), and the
// same reduced to [0, n) (n > 0).
uint64_t RandomU64(uint64_t seed, uint64_t offset, uint64_t k);
uint64_t RandomIndex(uint64_t seed, uint64_t offset, uint64_t k, uint64_t n);

// Where a batcher is: enough to resume exactly.
struct BatcherState {
  uint64_t seed = 0;
  int64_t epoch = 0;  // ParallelBatcher only
  int64_t step = 0;   // batches drawn (in this epoch, for ParallelBatcher)
  bool operator==(const BatcherState&) const = default;
};

struct LmBatch {
  int64_t batch_size = 0;       // rows (the last evaluation batch may be short)
  int64_t block_size = 0;       // T
  std::vector<int32_t> x, y;    // (batch_size, block_size), row-major
  std::vector<int64_t> starts;  // each row's first token index
};

// Random windows over a token stream (training).
class LmBatcher {
 public:
  // INVALID_ARGUMENT when batch_size or block_size is not positive, or
  // block_size >= tokens.size() ("block size 256 is larger than the data:
  // 100 tokens in train"); `split` names the data in errors.
  static absl::StatusOr<LmBatcher> Create(std::vector<int32_t> tokens,
                                          int64_t batch_size,
                                          int64_t block_size, uint64_t seed,
                                          std::string split = "train");

  LmBatch Next();                  // batch state().step, then step + 1
  LmBatch At(int64_t step) const;  // any batch, without moving
  BatcherState state() const { return {seed_, 0, step_}; }
  // INVALID_ARGUMENT when the seed differs or the step is negative.
  absl::Status Restore(const BatcherState& state);

  int64_t batch_size() const { return batch_size_; }
  int64_t block_size() const { return block_size_; }
  int64_t num_tokens() const { return static_cast<int64_t>(tokens_.size()); }

 private:
  std::vector<int32_t> tokens_;
  int64_t batch_size_ = 0, block_size_ = 0;
  uint64_t seed_ = 0;
  int64_t step_ = 0;
};

// Non-overlapping windows in order (evaluation): starts 0, T, 2T, ... while
// a window and its shifted target fit, batch_size at a time.
class LmEvalBatches {
 public:
  // Errors as LmBatcher::Create (split defaults to "validation").
  static absl::StatusOr<LmEvalBatches> Create(std::vector<int32_t> tokens,
                                              int64_t batch_size,
                                              int64_t block_size,
                                              std::string split = "validation");

  std::optional<LmBatch> Next();  // nullopt after the last batch
  void Reset() { step_ = 0; }
  int64_t num_windows() const { return num_windows_; }  // (N - 1) / T
  int64_t num_batches() const {
    return (num_windows_ + batch_size_ - 1) / batch_size_;
  }
  BatcherState state() const { return {0, 0, step_}; }
  absl::Status Restore(const BatcherState& state);

 private:
  std::vector<int32_t> tokens_;
  int64_t batch_size_ = 0, block_size_ = 0, num_windows_ = 0;
  int64_t step_ = 0;
};

struct ParallelBatch {
  int64_t batch_size = 0;
  int64_t source_len = 0, target_len = 0;  // the longest in the batch
  std::vector<int32_t> source;  // (batch_size, source_len), pad-filled
  std::vector<int32_t> target;  // (batch_size, target_len), pad-filled
  std::vector<int32_t> source_lengths, target_lengths;  // before padding
  std::vector<int64_t> indices;  // the pairs' line numbers (0-based)
};

// Sentence pairs, shuffled each epoch, padded to the longest in the batch.
class ParallelBatcher {
 public:
  // The sequences are used as given (add <bos>/<eos> before). Errors:
  // different numbers of sources and targets, no pairs, batch_size < 1,
  // sort_batches < 0, or drop_last with fewer pairs than one batch.
  static absl::StatusOr<ParallelBatcher> Create(
      std::vector<std::vector<int32_t>> source,
      std::vector<std::vector<int32_t>> target, int64_t batch_size,
      uint64_t seed, bool drop_last = false, int32_t pad_id = kPadId,
      int64_t sort_batches = 0);

  // The next batch; after the epoch's last, epoch + 1 starts (reshuffled).
  ParallelBatch Next();
  int64_t batches_per_epoch() const;
  int64_t size() const { return static_cast<int64_t>(source_.size()); }
  BatcherState state() const { return {seed_, epoch_, step_}; }
  // INVALID_ARGUMENT when the seed differs or epoch/step are out of range.
  absl::Status Restore(const BatcherState& state);
  // Epoch `epoch`'s order of pair indices.
  std::vector<int64_t> EpochOrder(int64_t epoch) const;

 private:
  std::vector<std::vector<int32_t>> source_, target_;
  int64_t batch_size_ = 0;
  uint64_t seed_ = 0;
  bool drop_last_ = false;
  int32_t pad_id_ = kPadId;
  int64_t sort_batches_ = 0;
  int64_t epoch_ = 0, step_ = 0;
  std::vector<int64_t> order_;  // EpochOrder(epoch_)
};

// `ids` as a (rows, cols) CPU tensor of int64 or int32 (the index dtypes
// embedding and cross_entropy take); INVALID_ARGUMENT when the sizes
// disagree or the dtype is another.
absl::StatusOr<tensor::Tensor> IdsToTensor(const std::vector<int32_t>& ids,
                                           int64_t rows, int64_t cols,
                                           DLDataType dtype = tensor::kI64);

}  // namespace llmsys::data

#endif  // LLMSYS_FRAMEWORK_DATA_BATCHING_H_
