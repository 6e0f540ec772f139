#include "framework/train/tasks.h"

#include <algorithm>
#include <filesystem>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "framework/core/logging.h"
#include "framework/core/status_macros.h"
#include "framework/data/corpus.h"
#include "framework/data/masking.h"
#include "framework/data/synthetic.h"

namespace llmsys::train {
namespace {

namespace fs = std::filesystem;
using tensor::Tensor;

constexpr int32_t kIgnore = kIgnoreTarget;

// A (rows, cols) tensor of `dtype` from row-major int values.
Tensor IntTensor(const std::vector<int64_t>& values, tensor::Shape shape,
                 DLDataType dtype = tensor::kI64) {
  Tensor t = Tensor::Empty(shape, dtype).value();
  if (dtype == tensor::kI64) {
    std::copy(values.begin(), values.end(), t.data_as<int64_t>());
  } else {
    int32_t* out = t.data_as<int32_t>();
    for (size_t i = 0; i < values.size(); ++i)
      out[i] = static_cast<int32_t>(values[i]);
  }
  return t;
}

// Sequences padded to the longest: ids (B, L), lengths (B), mask (B, L).
struct Padded {
  std::vector<int64_t> ids, lengths, mask;
  int64_t rows = 0, cols = 0;
};
Padded Pad(const std::vector<const std::vector<int32_t>*>& seqs) {
  Padded p;
  p.rows = static_cast<int64_t>(seqs.size());
  for (const auto* s : seqs)
    p.cols = std::max(p.cols, static_cast<int64_t>(s->size()));
  p.ids.assign(static_cast<size_t>(p.rows * p.cols), data::kPadId);
  p.mask.assign(p.ids.size(), 1);
  for (int64_t r = 0; r < p.rows; ++r) {
    const std::vector<int32_t>& s = *seqs[static_cast<size_t>(r)];
    p.lengths.push_back(static_cast<int64_t>(s.size()));
    for (size_t c = 0; c < s.size(); ++c) {
      p.ids[static_cast<size_t>(r * p.cols) + c] = s[c];
      p.mask[static_cast<size_t>(r * p.cols) + c] = 0;
    }
  }
  return p;
}

// "src"/"tgt" inputs of padded sequences, under `prefix`.
void AddSide(const std::string& prefix, const Padded& p,
             std::vector<std::pair<std::string, Tensor>>& inputs) {
  inputs.emplace_back(prefix, IntTensor(p.ids, {p.rows, p.cols}));
  inputs.emplace_back(prefix + "_lengths", IntTensor(p.lengths, {p.rows}));
  inputs.emplace_back(prefix + "_padding_mask",
                      IntTensor(p.mask, {p.rows, p.cols}, tensor::kI32));
}

// The data split off the end of `n` items for validation (lm, mlm, and
// translation without [data] valid).
absl::StatusOr<size_t> TrainCount(const config::Experiment& e, size_t n) {
  return data::TrainSize(n, e.Float("data", "val_fraction"));
}

// ---- lm ----

class LmTask : public Task {
 public:
  static absl::StatusOr<std::unique_ptr<Task>> Load(
      const config::Experiment& e) {
    auto t = std::make_unique<LmTask>();
    const std::string valid = e.String("data", "valid");
    LLMSYS_ASSIGN_OR_RETURN(
        data::TextCorpus corpus,
        data::TextCorpus::Load(
            e.ResolvePath(e.String("data", "train")),
            valid.empty() ? e.Float("data", "val_fraction") : 0.0));
    t->train_text_ = std::string(corpus.train());
    t->val_text_ = std::string(corpus.validation());
    if (!valid.empty()) {
      LLMSYS_ASSIGN_OR_RETURN(t->val_text_,
                              data::ReadTextFile(e.ResolvePath(valid)));
    }
    return t;
  }

  std::string_view kind() const override { return "lm"; }
  std::string TokenizerText() const override { return train_text_; }

  absl::Status Prepare(const data::Tokenizer& tokenizer, int64_t batch,
                       int64_t block, uint64_t seed) override {
    train_ids_ = tokenizer.Encode(train_text_);
    val_ids_ = tokenizer.Encode(val_text_);
    LLMSYS_ASSIGN_OR_RETURN(
        batcher_, data::LmBatcher::Create(train_ids_, batch, block, seed));
    LLMSYS_ASSIGN_OR_RETURN(
        val_, data::LmEvalBatches::Create(val_ids_, batch, block));
    return absl::OkStatus();
  }

  absl::StatusOr<TaskBatch> Next() override { return Make(batcher_->Next()); }
  data::BatcherState state() const override { return batcher_->state(); }
  absl::Status Restore(const data::BatcherState& s) override {
    return batcher_->Restore(s);
  }
  absl::StatusOr<std::vector<TaskBatch>> Validation(
      int64_t max_batches) override {
    val_->Reset();
    std::vector<TaskBatch> out;
    while (max_batches == 0 || static_cast<int64_t>(out.size()) < max_batches) {
      std::optional<data::LmBatch> b = val_->Next();
      if (!b) break;
      LLMSYS_ASSIGN_OR_RETURN(TaskBatch t, Make(*b));
      out.push_back(std::move(t));
    }
    return out;
  }
  std::string Describe() const override {
    return absl::StrFormat("%d train / %d validation tokens", train_ids_.size(),
                           val_ids_.size());
  }
  const std::vector<int32_t>* lm_validation() const override {
    return &val_ids_;
  }

 private:
  static absl::StatusOr<TaskBatch> Make(const data::LmBatch& b) {
    TaskBatch t{.targets = b.y, .rows = b.batch_size, .cols = b.block_size};
    t.tokens = b.batch_size * b.block_size;
    LLMSYS_ASSIGN_OR_RETURN(Tensor x,
                            data::IdsToTensor(b.x, b.batch_size, b.block_size));
    LLMSYS_ASSIGN_OR_RETURN(Tensor y,
                            data::IdsToTensor(b.y, b.batch_size, b.block_size));
    t.inputs = {{"tokens", std::move(x)}, {"targets", std::move(y)}};
    return t;
  }

  std::string train_text_, val_text_;
  std::vector<int32_t> train_ids_, val_ids_;
  std::optional<data::LmBatcher> batcher_;
  std::optional<data::LmEvalBatches> val_;
};

// ---- translation ----

// The longest source and target, and what to do with a longer one ([data]
// max_source_len, max_target_len, too_long).
struct Limits {
  int64_t source = 0, target = 0;
  std::string policy;  // truncate, skip, error
};

class TranslationTask : public Task {
 public:
  static absl::StatusOr<std::unique_ptr<Task>> Load(
      const config::Experiment& e) {
    for (const char* key : {"source_lang", "target_lang"})
      if (e.String("data", key).empty() &&
          e.Int("data", "synthetic_pairs") == 0)
        return absl::InvalidArgumentError(
            absl::StrCat(e.Get("data", "task").source.Describe(),
                         ": [data] task = \"translation\" needs [data] ", key,
                         " (the file suffix of that side, e.g. \"de\" for "
                         "train.de.gz)"));
    auto t = std::make_unique<TranslationTask>();
    t->limits_ = {e.Int("data", "max_source_len"),
                  e.Int("data", "max_target_len"),
                  e.String("data", "too_long")};
    t->sort_batches_ = e.Int("data", "sort_batches");
    if (e.Int("data", "synthetic_pairs") > 0) {
      LLMSYS_RETURN_IF_ERROR(t->Generate(e));
      return t;
    }
    LLMSYS_ASSIGN_OR_RETURN(t->train_, LoadSplit(e, "train"));
    if (!e.String("data", "valid").empty()) {
      LLMSYS_ASSIGN_OR_RETURN(t->valid_, LoadSplit(e, "valid"));
    } else {
      // The last val_fraction of the training pairs.
      TranslationSplit& v = t->valid_;
      LLMSYS_ASSIGN_OR_RETURN(size_t keep,
                              TrainCount(e, t->train_.source_text.size()));
      if (keep == t->train_.source_text.size() || keep == 0)
        return absl::InvalidArgumentError(absl::StrCat(
            t->train_.source_file, ": ", t->train_.source_text.size(),
            " pairs leave no validation pairs at [data] val_fraction = ",
            e.Float("data", "val_fraction"), "; set [data] valid"));
      v.name = "valid";
      v.source_file = t->train_.source_file;
      v.target_file = t->train_.target_file;
      for (auto* lines : {&t->train_.source_text, &t->train_.target_text}) {
        auto& to =
            lines == &t->train_.source_text ? v.source_text : v.target_text;
        to.assign(lines->begin() + static_cast<int64_t>(keep), lines->end());
        lines->resize(keep);
      }
    }
    if (!e.String("data", "test").empty()) {
      LLMSYS_ASSIGN_OR_RETURN(TranslationSplit test, LoadSplit(e, "test"));
      t->test_ = std::move(test);
    }
    return t;
  }

  std::string_view kind() const override { return "translation"; }
  std::string TokenizerText() const override {
    std::string text;
    for (const auto* lines : {&train_.source_text, &train_.target_text})
      for (const std::string& l : *lines) absl::StrAppend(&text, l, "\n");
    return text;
  }

  absl::Status Prepare(const data::Tokenizer& tokenizer, int64_t batch,
                       int64_t block, uint64_t seed) override {
    (void)block;
    for (TranslationSplit* s : {&train_, &valid_, test_ ? &*test_ : nullptr})
      if (s != nullptr) LLMSYS_RETURN_IF_ERROR(Encode(tokenizer, *s));
    // Training skips pairs with an empty side (nothing to learn).
    std::vector<std::vector<int32_t>> src, tgt;
    for (size_t i = 0; i < train_.source.size(); ++i) {
      if (train_.source[i].empty() || train_.target[i].empty()) {
        ++empty_;
        continue;
      }
      src.push_back(train_.source[i]);
      tgt.push_back(train_.target[i]);
    }
    if (empty_ > 0)
      core::Log(core::LogLevel::kWarning,
                absl::StrFormat("%s: %d training pairs with an empty side "
                                "are skipped",
                                train_.source_file, empty_));
    LLMSYS_ASSIGN_OR_RETURN(
        batcher_, data::ParallelBatcher::Create(std::move(src), std::move(tgt),
                                                batch, seed, false,
                                                data::kPadId, sort_batches_));
    batch_ = batch;
    return absl::OkStatus();
  }

  absl::StatusOr<TaskBatch> Next() override {
    data::ParallelBatch b = batcher_->Next();
    std::vector<std::vector<int32_t>> src(static_cast<size_t>(b.batch_size)),
        tgt(src.size());
    for (int64_t r = 0; r < b.batch_size; ++r) {
      const auto at = [&](const std::vector<int32_t>& ids, int64_t len,
                          int64_t n) {
        return std::vector<int32_t>(ids.begin() + r * len,
                                    ids.begin() + r * len + n);
      };
      src[static_cast<size_t>(r)] =
          at(b.source, b.source_len, b.source_lengths[static_cast<size_t>(r)]);
      tgt[static_cast<size_t>(r)] =
          at(b.target, b.target_len, b.target_lengths[static_cast<size_t>(r)]);
    }
    return Make(src, tgt);
  }
  data::BatcherState state() const override { return batcher_->state(); }
  absl::Status Restore(const data::BatcherState& s) override {
    return batcher_->Restore(s);
  }
  absl::StatusOr<std::vector<TaskBatch>> Validation(
      int64_t max_batches) override {
    std::vector<TaskBatch> out;
    const size_t n = valid_.source.size();
    for (size_t first = 0; first < n; first += static_cast<size_t>(batch_)) {
      if (max_batches > 0 && static_cast<int64_t>(out.size()) >= max_batches)
        break;
      const size_t last = std::min(n, first + static_cast<size_t>(batch_));
      std::vector<std::vector<int32_t>> src(valid_.source.begin() + first,
                                            valid_.source.begin() + last),
          tgt(valid_.target.begin() + first, valid_.target.begin() + last);
      LLMSYS_ASSIGN_OR_RETURN(TaskBatch b, Make(src, tgt));
      out.push_back(std::move(b));
    }
    return out;
  }
  std::string Describe() const override {
    std::string d = absl::StrFormat("%d train / %d validation",
                                    batcher_ ? batcher_->size() : 0,
                                    valid_.source_text.size());
    if (test_) absl::StrAppend(&d, " / ", test_->source_text.size(), " test");
    absl::StrAppend(&d, " sentence pairs");
    if (truncated_ > 0)
      absl::StrAppend(&d, ", ", truncated_, " sides truncated");
    if (skipped_ > 0) absl::StrAppend(&d, ", ", skipped_, " too long skipped");
    return d;
  }
  const TranslationSplit* split(std::string_view name) const override {
    if (name == "valid") return &valid_;
    if (name == "test" && test_) return &*test_;
    return nullptr;
  }

 private:
  // [data] synthetic_*: train, valid and test from one generated corpus
  // (one lexicon): its first synthetic_pairs pairs, then synthetic_eval_pairs
  // each.
  absl::Status Generate(const config::Experiment& e) {
    data::SyntheticPairOptions o;
    o.seed = static_cast<uint64_t>(e.Int("experiment", "seed"));
    const int64_t train = e.Int("data", "synthetic_pairs");
    const int64_t eval = e.Int("data", "synthetic_eval_pairs");
    o.num_pairs = train + 2 * eval;
    o.vocab_size = e.Int("data", "synthetic_vocab");
    o.min_len = e.Int("data", "synthetic_min_len");
    o.max_len = e.Int("data", "synthetic_max_len");
    o.split_fraction = e.Float("data", "synthetic_split_fraction");
    o.swap_prob = e.Float("data", "synthetic_swap_prob");
    absl::StatusOr<data::SyntheticPairs> pairs = data::MakeSyntheticPairs(o);
    if (!pairs.ok())
      return absl::InvalidArgumentError(
          absl::StrCat(e.Get("data", "synthetic_pairs").source.Describe(),
                       ": [data] ", pairs.status().message()));
    const data::ParallelCorpus& c = pairs->corpus;
    int64_t from = 0;
    for (auto [split, name, n] : {std::tuple{&train_, "train", train},
                                  std::tuple{&valid_, "valid", eval}}) {
      split->name = name;
      split->source_file = absl::StrCat("synthetic ", name, " source");
      split->target_file = absl::StrCat("synthetic ", name, " target");
      split->source_text.assign(c.source.begin() + from,
                                c.source.begin() + from + n);
      split->target_text.assign(c.target.begin() + from,
                                c.target.begin() + from + n);
      from += n;
    }
    TranslationSplit test;
    test.name = "test";
    test.source_file = "synthetic test source";
    test.target_file = "synthetic test target";
    test.source_text.assign(c.source.begin() + from, c.source.end());
    test.target_text.assign(c.target.begin() + from, c.target.end());
    test_ = std::move(test);
    return absl::OkStatus();
  }

  static absl::StatusOr<TranslationSplit> LoadSplit(const config::Experiment& e,
                                                    const std::string& key) {
    TranslationSplit s;
    s.name = key;
    LLMSYS_ASSIGN_OR_RETURN(s.source_file, PairFile(e, key, "source_lang"));
    LLMSYS_ASSIGN_OR_RETURN(s.target_file, PairFile(e, key, "target_lang"));
    LLMSYS_ASSIGN_OR_RETURN(
        data::ParallelCorpus pairs,
        data::ParallelCorpus::Load(s.source_file, s.target_file));
    s.source_text = std::move(pairs.source);
    s.target_text = std::move(pairs.target);
    return s;
  }

  // Encodes a split; a side beyond its limit is truncated, skipped or an
  // error ([data] too_long); only training pairs are ever skipped.
  absl::Status Encode(const data::Tokenizer& tokenizer, TranslationSplit& s) {
    const bool train = &s == &train_;
    s.source.clear();
    s.target.clear();
    std::vector<std::string> src_text, tgt_text;
    for (size_t i = 0; i < s.source_text.size(); ++i) {
      std::vector<int32_t> src = tokenizer.Encode(s.source_text[i]);
      std::vector<int32_t> tgt = tokenizer.Encode(s.target_text[i]);
      const bool long_src = static_cast<int64_t>(src.size()) > limits_.source;
      const bool long_tgt = static_cast<int64_t>(tgt.size()) > limits_.target;
      if (long_src || long_tgt) {
        const std::string where = absl::StrCat(
            long_src ? s.source_file : s.target_file, ":", i + 1, ": ",
            long_src ? src.size() : tgt.size(), " tokens, more than [data] ",
            long_src ? "max_source_len = " : "max_target_len = ",
            long_src ? limits_.source : limits_.target);
        if (limits_.policy == "error")
          return absl::InvalidArgumentError(absl::StrCat(
              where,
              " ([data] too_long = \"error\"; set it to \"truncate\" or "
              "\"skip\", or raise the limit)"));
        if (limits_.policy == "skip" && train) {
          if (skipped_++ == 0)
            core::Log(core::LogLevel::kWarning,
                      absl::StrCat(where,
                                   ": skipped (and any more such pairs; "
                                   "the count is in the run's log)"));
          continue;
        }
        if (truncated_++ == 0)
          core::Log(core::LogLevel::kWarning,
                    absl::StrCat(where,
                                 ": truncated (and any more such "
                                 "sides; the count is in the run's "
                                 "log)"));
        if (long_src) src.resize(static_cast<size_t>(limits_.source));
        if (long_tgt) tgt.resize(static_cast<size_t>(limits_.target));
      }
      s.source.push_back(std::move(src));
      s.target.push_back(std::move(tgt));
      src_text.push_back(std::move(s.source_text[i]));
      tgt_text.push_back(std::move(s.target_text[i]));
    }
    s.source_text = std::move(src_text);
    s.target_text = std::move(tgt_text);
    return absl::OkStatus();
  }

  static absl::StatusOr<TaskBatch> Make(
      const std::vector<std::vector<int32_t>>& src,
      const std::vector<std::vector<int32_t>>& tgt) {
    std::vector<const std::vector<int32_t>*> s, t;
    for (size_t i = 0; i < src.size(); ++i) {
      s.push_back(&src[i]);
      t.push_back(&tgt[i]);
    }
    const Padded ps = Pad(s), pt = Pad(t);
    TaskBatch b;
    AddSide("src", ps, b.inputs);
    AddSide("tgt", pt, b.inputs);
    // tokens = <bos> tgt, targets = tgt <eos> (-100 after it).
    b.rows = pt.rows;
    b.cols = pt.cols + 1;
    std::vector<int64_t> tokens(static_cast<size_t>(b.rows * b.cols),
                                data::kPadId);
    b.targets.assign(tokens.size(), kIgnore);
    for (int64_t r = 0; r < b.rows; ++r) {
      const std::vector<int32_t>& y = tgt[static_cast<size_t>(r)];
      const size_t row = static_cast<size_t>(r * b.cols);
      tokens[row] = data::kBosId;
      for (size_t c = 0; c < y.size(); ++c) {
        tokens[row + c + 1] = y[c];
        b.targets[row + c] = y[c];
      }
      b.targets[row + y.size()] = data::kEosId;
      b.tokens += static_cast<int64_t>(y.size()) + 1;
    }
    b.inputs.emplace_back("tokens", IntTensor(tokens, {b.rows, b.cols}));
    std::vector<int64_t> targets(b.targets.begin(), b.targets.end());
    b.inputs.emplace_back("targets", IntTensor(targets, {b.rows, b.cols}));
    return b;
  }

  Limits limits_;
  TranslationSplit train_, valid_;
  std::optional<TranslationSplit> test_;
  int64_t sort_batches_ = 0, batch_ = 1;
  int64_t empty_ = 0, truncated_ = 0, skipped_ = 0;
  std::optional<data::ParallelBatcher> batcher_;
};

// ---- mlm ----

class MlmTask : public Task {
 public:
  static absl::StatusOr<std::unique_ptr<Task>> Load(
      const config::Experiment& e) {
    auto t = std::make_unique<MlmTask>();
    const std::string valid = e.String("data", "valid");
    const fs::path train = e.ResolvePath(e.String("data", "train"));
    LLMSYS_ASSIGN_OR_RETURN(std::string text, data::ReadTextFile(train));
    std::vector<std::string> lines = NonEmptyLines(text);
    if (valid.empty()) {
      LLMSYS_ASSIGN_OR_RETURN(size_t keep, TrainCount(e, lines.size()));
      t->val_lines_.assign(lines.begin() + static_cast<int64_t>(keep),
                           lines.end());
      lines.resize(keep);
    } else {
      LLMSYS_ASSIGN_OR_RETURN(std::string v,
                              data::ReadTextFile(e.ResolvePath(valid)));
      t->val_lines_ = NonEmptyLines(v);
    }
    t->train_lines_ = std::move(lines);
    if (t->train_lines_.size() < 2 || t->val_lines_.size() < 2)
      return absl::InvalidArgumentError(
          absl::StrCat(train.string(),
                       ": [data] task = \"mlm\" needs at least two "
                       "non-empty lines for training and two for "
                       "validation; got ",
                       t->train_lines_.size(), " and ", t->val_lines_.size()));
    t->mask_prob_ = e.Float("data", "mask_prob");
    t->sort_batches_ = e.Int("data", "sort_batches");
    return t;
  }

  std::string_view kind() const override { return "mlm"; }
  std::string TokenizerText() const override {
    std::string text;
    for (const std::string& l : train_lines_) absl::StrAppend(&text, l, "\n");
    return text;
  }
  int32_t extra_tokens() const override { return 1; }

  absl::Status Prepare(const data::Tokenizer& tokenizer, int64_t batch,
                       int64_t block, uint64_t seed) override {
    if (block < 5)
      return absl::InvalidArgumentError(absl::StrCat(
          "[train] block_size ", block,
          " is too short for masked language modelling (<bos> A <eos> B "
          "<eos> needs at least 5)"));
    block_ = block;
    seed_ = seed;
    options_.mask_prob = mask_prob_;
    options_.mask_id = tokenizer.vocab_size();
    options_.vocab_size = tokenizer.vocab_size() + 1;
    LLMSYS_ASSIGN_OR_RETURN(auto train, Pairs(tokenizer, train_lines_));
    LLMSYS_ASSIGN_OR_RETURN(
        batcher_, data::ParallelBatcher::Create(
                      std::move(train.first), std::move(train.second), batch,
                      seed, false, data::kPadId, sort_batches_));
    LLMSYS_ASSIGN_OR_RETURN(auto val, Pairs(tokenizer, val_lines_));
    val_pairs_ = static_cast<int64_t>(val.first.size());
    val_.clear();
    for (size_t first = 0; first < val.first.size();
         first += static_cast<size_t>(batch)) {
      const size_t last =
          std::min(val.first.size(), first + static_cast<size_t>(batch));
      std::vector<std::vector<int32_t>> a(val.first.begin() + first,
                                          val.first.begin() + last),
          b(val.second.begin() + first, val.second.begin() + last);
      // Fixed draws, apart from every training batch's.
      const uint64_t offset =
          (uint64_t{1} << 63) + (static_cast<uint64_t>(val_.size()) << 32);
      LLMSYS_ASSIGN_OR_RETURN(TaskBatch t, Make(a, b, offset));
      val_.push_back(std::move(t));
    }
    return absl::OkStatus();
  }

  absl::StatusOr<TaskBatch> Next() override {
    const data::BatcherState s = batcher_->state();
    // Batch number k of the run draws its masks from offset k << 32 (a
    // batch needs 3 draws per token, far below 2^32).
    const uint64_t k =
        static_cast<uint64_t>(s.epoch * batcher_->batches_per_epoch() + s.step);
    data::ParallelBatch p = batcher_->Next();
    std::vector<std::vector<int32_t>> a, b;
    for (int64_t r = 0; r < p.batch_size; ++r) {
      const auto ra = p.source.begin() + r * p.source_len;
      const auto rb = p.target.begin() + r * p.target_len;
      a.emplace_back(ra, ra + p.source_lengths[static_cast<size_t>(r)]);
      b.emplace_back(rb, rb + p.target_lengths[static_cast<size_t>(r)]);
    }
    return Make(a, b, k << 32);
  }
  data::BatcherState state() const override { return batcher_->state(); }
  absl::Status Restore(const data::BatcherState& s) override {
    return batcher_->Restore(s);
  }
  absl::StatusOr<std::vector<TaskBatch>> Validation(
      int64_t max_batches) override {
    const size_t n =
        max_batches == 0
            ? val_.size()
            : std::min(val_.size(), static_cast<size_t>(max_batches));
    return std::vector<TaskBatch>(val_.begin(),
                                  val_.begin() + static_cast<int64_t>(n));
  }
  std::string Describe() const override {
    return absl::StrFormat(
        "%d train / %d validation line pairs, %.0f%% of tokens masked",
        batcher_ ? batcher_->size() : 0, val_pairs_, 100 * mask_prob_);
  }

 private:
  static std::vector<std::string> NonEmptyLines(const std::string& text) {
    std::vector<std::string> out;
    for (std::string& l : data::SplitLines(text))
      if (l.find_first_not_of(" \t\r") != std::string::npos)
        out.push_back(std::move(l));
    return out;
  }

  // Consecutive lines (0, 1), (2, 3), ... encoded, each pair cut to fit
  // <bos> A <eos> B <eos> in block_ tokens (the longer side first).
  absl::StatusOr<std::pair<std::vector<std::vector<int32_t>>,
                           std::vector<std::vector<int32_t>>>>
  Pairs(const data::Tokenizer& tokenizer,
        const std::vector<std::string>& lines) const {
    std::vector<std::vector<int32_t>> a, b;
    const size_t room = static_cast<size_t>(block_ - 3);
    for (size_t i = 0; i + 1 < lines.size(); i += 2) {
      std::vector<int32_t> x = tokenizer.Encode(lines[i]);
      std::vector<int32_t> y = tokenizer.Encode(lines[i + 1]);
      while (x.size() + y.size() > room)
        (x.size() >= y.size() ? x : y).pop_back();
      a.push_back(std::move(x));
      b.push_back(std::move(y));
    }
    return std::make_pair(std::move(a), std::move(b));
  }

  absl::StatusOr<TaskBatch> Make(const std::vector<std::vector<int32_t>>& a,
                                 const std::vector<std::vector<int32_t>>& b,
                                 uint64_t offset) const {
    std::vector<std::vector<int32_t>> seqs;
    std::vector<std::vector<int32_t>> segs;
    for (size_t i = 0; i < a.size(); ++i) {
      std::vector<int32_t> s = {data::kBosId};
      s.insert(s.end(), a[i].begin(), a[i].end());
      s.push_back(data::kEosId);
      std::vector<int32_t> g(s.size(), 0);
      s.insert(s.end(), b[i].begin(), b[i].end());
      s.push_back(data::kEosId);
      g.resize(s.size(), 1);
      seqs.push_back(std::move(s));
      segs.push_back(std::move(g));
    }
    std::vector<const std::vector<int32_t>*> ps, pg;
    for (size_t i = 0; i < seqs.size(); ++i) {
      ps.push_back(&seqs[i]);
      pg.push_back(&segs[i]);
    }
    const Padded tokens = Pad(ps), segments = Pad(pg);
    std::vector<int32_t> flat(tokens.ids.begin(), tokens.ids.end());
    LLMSYS_ASSIGN_OR_RETURN(data::MlmMasked m,
                            data::MaskTokens(flat, options_, seed_, offset));
    if (m.num_masked == 0) {
      // A loss over no target is undefined: predict the first eligible
      // token (a tiny batch may draw no selection at all).
      for (size_t i = 0; i < flat.size(); ++i) {
        if (!data::MlmEligible(flat[i])) continue;
        m.inputs[i] = options_.mask_id;
        m.targets[i] = flat[i];
        m.num_masked = 1;
        break;
      }
    }
    TaskBatch t{.targets = m.targets, .rows = tokens.rows, .cols = tokens.cols};
    t.tokens = m.num_masked;
    t.inputs.emplace_back(
        "tokens",
        IntTensor(std::vector<int64_t>(m.inputs.begin(), m.inputs.end()),
                  {t.rows, t.cols}));
    t.inputs.emplace_back("segments",
                          IntTensor(segments.ids, {t.rows, t.cols}));
    t.inputs.emplace_back(
        "padding_mask", IntTensor(tokens.mask, {t.rows, t.cols}, tensor::kI32));
    t.inputs.emplace_back(
        "targets",
        IntTensor(std::vector<int64_t>(m.targets.begin(), m.targets.end()),
                  {t.rows, t.cols}));
    return t;
  }

  std::vector<std::string> train_lines_, val_lines_;
  double mask_prob_ = 0.15;
  int64_t sort_batches_ = 0, block_ = 0, val_pairs_ = 0;
  uint64_t seed_ = 0;
  data::MlmOptions options_;
  std::optional<data::ParallelBatcher> batcher_;
  std::vector<TaskBatch> val_;
};

}  // namespace

std::vector<std::pair<std::string, Tensor>> SourceInputs(
    const std::vector<std::vector<int32_t>>& sources) {
  std::vector<const std::vector<int32_t>*> s;
  for (const auto& x : sources) s.push_back(&x);
  std::vector<std::pair<std::string, Tensor>> inputs;
  AddSide("src", Pad(s), inputs);
  return inputs;
}

absl::StatusOr<std::string> PairFile(const config::Experiment& e,
                                     const std::string& key,
                                     const std::string& lang_key) {
  const std::string prefix = e.String("data", key);
  const std::string name =
      absl::StrCat(prefix, ".", e.String("data", lang_key));
  const fs::path plain = e.ResolvePath(name);
  if (fs::exists(plain)) return plain.string();
  const fs::path gz = e.ResolvePath(name + ".gz");
  if (fs::exists(gz)) return gz.string();
  return absl::NotFoundError(
      absl::StrCat(e.Get("data", key).source.Describe(), ": [data] ", key,
                   " = \"", prefix, "\": neither ", plain.string(), " nor ",
                   gz.string(), " exists (the ", lang_key, " side)"));
}

absl::StatusOr<std::unique_ptr<Task>> Task::Load(const config::Experiment& e) {
  const std::string kind = e.String("data", "task");
  const bool synthetic = e.Int("data", "synthetic_pairs") > 0;
  if (synthetic && kind != "translation")
    return absl::InvalidArgumentError(absl::StrCat(
        e.Get("data", "synthetic_pairs").source.Describe(),
        ": [data] synthetic_pairs makes a translation corpus; it needs "
        "task = \"translation\""));
  if (!synthetic && e.String("data", "train").empty())
    return absl::InvalidArgumentError(absl::StrCat(
        e.file().empty() ? std::string("the experiment") : e.file().string(),
        ": [data] train is required: the training text (translation: the "
        "files' prefix; or synthetic_pairs > 0)"));
  if (kind == "translation") return TranslationTask::Load(e);
  if (kind == "mlm") return MlmTask::Load(e);
  return LmTask::Load(e);
}

}  // namespace llmsys::train
