// framework/data/batching.cc — language-model windows and sentence-pair
// batches from the Philox stream.
#include "framework/data/batching.h"

#include <algorithm>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "framework/core/status_macros.h"
#include "llmsys/random.h"

namespace llmsys::data {
namespace {

absl::Status CheckSizes(int64_t num_tokens, int64_t batch_size,
                        int64_t block_size, const std::string& split) {
  if (batch_size < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "batch size ", batch_size, " is invalid: expected 1 or more"));
  }
  if (block_size < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "block size ", block_size, " is invalid: expected 1 or more"));
  }
  if (block_size >= num_tokens) {
    return absl::InvalidArgumentError(absl::StrCat(
        "block size ", block_size, " is larger than the data: ", num_tokens,
        " tokens in ", split, " (a window of ", block_size,
        " and its shifted target need ", block_size + 1, ")"));
  }
  return absl::OkStatus();
}

}  // namespace

uint64_t RandomU64(uint64_t seed, uint64_t offset, uint64_t k) {
  uint64_t hi = llmsys_random_u32(seed, offset, 2 * k);
  uint64_t lo = llmsys_random_u32(seed, offset, 2 * k + 1);
  return (hi << 32) | lo;
}

uint64_t RandomIndex(uint64_t seed, uint64_t offset, uint64_t k, uint64_t n) {
  return RandomU64(seed, offset, k) % n;
}

// ---- LmBatcher ----

absl::StatusOr<LmBatcher> LmBatcher::Create(std::vector<int32_t> tokens,
                                            int64_t batch_size,
                                            int64_t block_size, uint64_t seed,
                                            std::string split) {
  LLMSYS_RETURN_IF_ERROR(CheckSizes(static_cast<int64_t>(tokens.size()),
                                    batch_size, block_size, split));
  LmBatcher b;
  b.tokens_ = std::move(tokens);
  b.batch_size_ = batch_size;
  b.block_size_ = block_size;
  b.seed_ = seed;
  return b;
}

LmBatch LmBatcher::At(int64_t step) const {
  LmBatch batch;
  batch.batch_size = batch_size_;
  batch.block_size = block_size_;
  batch.x.resize(batch_size_ * block_size_);
  batch.y.resize(batch_size_ * block_size_);
  batch.starts.resize(batch_size_);
  const uint64_t num_starts = tokens_.size() - block_size_;
  for (int64_t r = 0; r < batch_size_; ++r) {
    uint64_t k = static_cast<uint64_t>(step) * batch_size_ + r;
    int64_t start = static_cast<int64_t>(RandomIndex(seed_, 0, k, num_starts));
    batch.starts[r] = start;
    std::memcpy(&batch.x[r * block_size_], &tokens_[start],
                block_size_ * sizeof(int32_t));
    std::memcpy(&batch.y[r * block_size_], &tokens_[start + 1],
                block_size_ * sizeof(int32_t));
  }
  return batch;
}

LmBatch LmBatcher::Next() { return At(step_++); }

absl::Status LmBatcher::Restore(const BatcherState& state) {
  if (state.seed != seed_) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot restore the batcher: the state's seed ",
                     state.seed, " is not this batcher's seed ", seed_));
  }
  if (state.step < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "cannot restore the batcher: step ", state.step, " is negative"));
  }
  step_ = state.step;
  return absl::OkStatus();
}

// ---- LmEvalBatches ----

absl::StatusOr<LmEvalBatches> LmEvalBatches::Create(std::vector<int32_t> tokens,
                                                    int64_t batch_size,
                                                    int64_t block_size,
                                                    std::string split) {
  LLMSYS_RETURN_IF_ERROR(CheckSizes(static_cast<int64_t>(tokens.size()),
                                    batch_size, block_size, split));
  LmEvalBatches b;
  b.num_windows_ = (static_cast<int64_t>(tokens.size()) - 1) / block_size;
  b.tokens_ = std::move(tokens);
  b.batch_size_ = batch_size;
  b.block_size_ = block_size;
  return b;
}

std::optional<LmBatch> LmEvalBatches::Next() {
  int64_t first = step_ * batch_size_;
  if (first >= num_windows_) return std::nullopt;
  ++step_;
  LmBatch batch;
  batch.batch_size = std::min(batch_size_, num_windows_ - first);
  batch.block_size = block_size_;
  batch.x.resize(batch.batch_size * block_size_);
  batch.y.resize(batch.batch_size * block_size_);
  for (int64_t r = 0; r < batch.batch_size; ++r) {
    int64_t start = (first + r) * block_size_;
    batch.starts.push_back(start);
    std::memcpy(&batch.x[r * block_size_], &tokens_[start],
                block_size_ * sizeof(int32_t));
    std::memcpy(&batch.y[r * block_size_], &tokens_[start + 1],
                block_size_ * sizeof(int32_t));
  }
  return batch;
}

absl::Status LmEvalBatches::Restore(const BatcherState& state) {
  if (state.step < 0 || state.step > num_batches()) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot restore the evaluation batches: step ", state.step,
                     " is out of range: expected 0 to ", num_batches()));
  }
  step_ = state.step;
  return absl::OkStatus();
}

// ---- ParallelBatcher ----

absl::StatusOr<ParallelBatcher> ParallelBatcher::Create(
    std::vector<std::vector<int32_t>> source,
    std::vector<std::vector<int32_t>> target, int64_t batch_size, uint64_t seed,
    bool drop_last, int32_t pad_id, int64_t sort_batches) {
  if (source.size() != target.size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "parallel batcher: ", source.size(), " source sequences but ",
        target.size(), " target sequences (expected one target per source)"));
  }
  if (source.empty()) {
    return absl::InvalidArgumentError(
        "parallel batcher: no sentence pairs (expected at least one)");
  }
  if (batch_size < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "batch size ", batch_size, " is invalid: expected 1 or more"));
  }
  if (sort_batches < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("sort_batches ", sort_batches,
                     " is invalid: expected 0 (off) or more"));
  }
  if (drop_last && static_cast<int64_t>(source.size()) < batch_size) {
    return absl::InvalidArgumentError(absl::StrCat(
        "batch size ", batch_size, " is larger than the data: ", source.size(),
        " sentence pairs, and drop_last leaves no batch"));
  }
  ParallelBatcher b;
  b.source_ = std::move(source);
  b.target_ = std::move(target);
  b.batch_size_ = batch_size;
  b.seed_ = seed;
  b.drop_last_ = drop_last;
  b.pad_id_ = pad_id;
  b.sort_batches_ = sort_batches;
  b.order_ = b.EpochOrder(0);
  return b;
}

int64_t ParallelBatcher::batches_per_epoch() const {
  int64_t n = size();
  return drop_last_ ? n / batch_size_ : (n + batch_size_ - 1) / batch_size_;
}

std::vector<int64_t> ParallelBatcher::EpochOrder(int64_t epoch) const {
  const int64_t n = size();
  std::vector<int64_t> order(n);
  for (int64_t i = 0; i < n; ++i) order[i] = i;
  const uint64_t offset = static_cast<uint64_t>(epoch) << 32;
  for (int64_t i = n - 1; i >= 1; --i) {
    uint64_t j = RandomIndex(seed_, offset, static_cast<uint64_t>(n - 1 - i),
                             static_cast<uint64_t>(i + 1));
    std::swap(order[i], order[j]);
  }
  if (sort_batches_ == 0) return order;
  const int64_t window = sort_batches_ * batch_size_;
  const uint64_t block_offset = offset + (uint64_t{1} << 31);
  uint64_t draws = 0;
  std::vector<int64_t> sorted(order.size());
  for (int64_t w = 0; w < n; w += window) {
    const auto begin = order.begin() + w;
    const auto end = order.begin() + std::min(n, w + window);
    std::stable_sort(begin, end, [&](int64_t a, int64_t b) {
      if (target_[a].size() != target_[b].size())
        return target_[a].size() < target_[b].size();
      return source_[a].size() < source_[b].size();
    });
    // Shuffle the full batches of the run as blocks; a short last batch
    // (only in the last run) stays last.
    const int64_t blocks = (end - begin) / batch_size_;
    std::vector<int64_t> perm(static_cast<size_t>(blocks));
    for (int64_t i = 0; i < blocks; ++i) perm[i] = i;
    for (int64_t i = blocks - 1; i >= 1; --i) {
      uint64_t j = RandomIndex(seed_, block_offset, draws++,
                               static_cast<uint64_t>(i + 1));
      std::swap(perm[i], perm[j]);
    }
    for (int64_t i = 0; i < blocks; ++i)
      std::copy(begin + perm[i] * batch_size_,
                begin + (perm[i] + 1) * batch_size_,
                sorted.begin() + w + i * batch_size_);
    std::copy(begin + blocks * batch_size_, end,
              sorted.begin() + w + blocks * batch_size_);
  }
  return sorted;
}

ParallelBatch ParallelBatcher::Next() {
  if (step_ >= batches_per_epoch()) {
    ++epoch_;
    step_ = 0;
    order_ = EpochOrder(epoch_);
  }
  const int64_t first = step_ * batch_size_;
  ++step_;
  ParallelBatch batch;
  batch.batch_size = std::min(batch_size_, size() - first);
  for (int64_t r = 0; r < batch.batch_size; ++r) {
    int64_t index = order_[first + r];
    batch.indices.push_back(index);
    batch.source_lengths.push_back(static_cast<int32_t>(source_[index].size()));
    batch.target_lengths.push_back(static_cast<int32_t>(target_[index].size()));
    batch.source_len =
        std::max<int64_t>(batch.source_len, source_[index].size());
    batch.target_len =
        std::max<int64_t>(batch.target_len, target_[index].size());
  }
  batch.source.assign(batch.batch_size * batch.source_len, pad_id_);
  batch.target.assign(batch.batch_size * batch.target_len, pad_id_);
  for (int64_t r = 0; r < batch.batch_size; ++r) {
    const auto& s = source_[batch.indices[r]];
    const auto& t = target_[batch.indices[r]];
    std::copy(s.begin(), s.end(), batch.source.begin() + r * batch.source_len);
    std::copy(t.begin(), t.end(), batch.target.begin() + r * batch.target_len);
  }
  return batch;
}

absl::Status ParallelBatcher::Restore(const BatcherState& state) {
  if (state.seed != seed_) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot restore the batcher: the state's seed ",
                     state.seed, " is not this batcher's seed ", seed_));
  }
  if (state.epoch < 0 || state.step < 0 || state.step > batches_per_epoch()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "cannot restore the batcher: epoch ", state.epoch, " step ", state.step,
        " is out of range (expected epoch >= 0 and step in [0, ",
        batches_per_epoch(), "])"));
  }
  epoch_ = state.epoch;
  step_ = state.step;
  order_ = EpochOrder(epoch_);
  return absl::OkStatus();
}

absl::StatusOr<tensor::Tensor> IdsToTensor(const std::vector<int32_t>& ids,
                                           int64_t rows, int64_t cols,
                                           DLDataType dtype) {
  if (rows < 0 || cols < 0 || rows * cols != static_cast<int64_t>(ids.size())) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot view ", ids.size(), " token ids as (", rows, ", ",
                     cols, "): expected rows * cols ids"));
  }
  if (!(dtype == tensor::kI64) && !(dtype == tensor::kI32)) {
    return absl::InvalidArgumentError(
        absl::StrCat("token ids as ", tensor::DTypeName(dtype),
                     ": expected int64 or int32"));
  }
  LLMSYS_ASSIGN_OR_RETURN(tensor::Tensor t,
                          tensor::Tensor::Empty({rows, cols}, dtype));
  if (dtype == tensor::kI32) {
    std::copy(ids.begin(), ids.end(), t.data_as<int32_t>());
  } else {
    std::copy(ids.begin(), ids.end(), t.data_as<int64_t>());
  }
  return t;
}

}  // namespace llmsys::data
