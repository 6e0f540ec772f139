// framework/data/synthetic.cc — the synthetic reversible language pair.
#include "framework/data/synthetic.h"

#include <cmath>
#include <numeric>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "framework/data/batching.h"

namespace llmsys::data {
namespace {

constexpr int64_t kMaxCount = int64_t{1} << 31;  // num_pairs, vocab_size
constexpr int64_t kMaxLen = int64_t{1} << 20;

absl::Status Validate(const SyntheticPairOptions& o) {
  auto count = [](const char* name, int64_t v, int64_t max) -> absl::Status {
    if (v < 1 || v > max)
      return absl::InvalidArgumentError(
          absl::StrCat("synthetic pairs: ", name, " ", v,
                       " is invalid: expected 1 to ", max));
    return absl::OkStatus();
  };
  for (const absl::Status& s : {count("num_pairs", o.num_pairs, kMaxCount),
                                count("vocab_size", o.vocab_size, kMaxCount),
                                count("min_len", o.min_len, kMaxLen),
                                count("max_len", o.max_len, kMaxLen)})
    if (!s.ok()) return s;
  if (o.min_len > o.max_len)
    return absl::InvalidArgumentError(
        absl::StrCat("synthetic pairs: min_len ", o.min_len,
                     " is larger than max_len ", o.max_len));
  // Written so that NaN fails too.
  if (!(o.split_fraction >= 0.0 && o.split_fraction <= 1.0))
    return absl::InvalidArgumentError(
        absl::StrCat("synthetic pairs: split_fraction ", o.split_fraction,
                     " is out of range: expected a fraction in [0, 1]"));
  if (!(o.swap_prob >= 0.0 && o.swap_prob <= 1.0))
    return absl::InvalidArgumentError(
        absl::StrCat("synthetic pairs: swap_prob ", o.swap_prob,
                     " is out of range: expected a probability in [0, 1]"));
  return absl::OkStatus();
}

// A Fisher-Yates shuffle of 0..n-1 from stream (seed, offset): i from n-1
// down to 1 swaps with random index n-1-i modulo i+1 (as ParallelBatcher).
std::vector<int64_t> Shuffle(int64_t n, uint64_t seed, uint64_t offset) {
  std::vector<int64_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), int64_t{0});
  for (int64_t i = n - 1; i >= 1; --i) {
    const uint64_t j =
        RandomIndex(seed, offset, static_cast<uint64_t>(n - 1 - i),
                    static_cast<uint64_t>(i + 1));
    std::swap(order[static_cast<size_t>(i)], order[static_cast<size_t>(j)]);
  }
  return order;
}

// Random number k of stream (seed, offset) as a double in [0, 1).
double RandomUnit(uint64_t seed, uint64_t offset, uint64_t k) {
  return static_cast<double>(RandomU64(seed, offset, k) >> 11) * 0x1.0p-53;
}

std::string Words(const char* prefix, const std::vector<int64_t>& ids) {
  return absl::StrJoin(ids, " ", [prefix](std::string* out, int64_t id) {
    absl::StrAppend(out, prefix, id);
  });
}

}  // namespace

absl::StatusOr<SyntheticPairs> MakeSyntheticPairs(
    const SyntheticPairOptions& o) {
  if (absl::Status s = Validate(o); !s.ok()) return s;
  const int64_t n = o.vocab_size;
  const int64_t num_split =
      std::llround(o.split_fraction * static_cast<double>(n));

  // 1. Which source words split; 2. the lexicon, dealt from a shuffle of the
  // target vocabulary.
  std::vector<bool> split(static_cast<size_t>(n), false);
  const std::vector<int64_t> words = Shuffle(n, o.seed, 0);
  for (int64_t i = 0; i < num_split; ++i)
    split[static_cast<size_t>(words[static_cast<size_t>(i)])] = true;
  SyntheticPairs out;
  out.target_vocab_size = n + num_split;
  const std::vector<int64_t> targets =
      Shuffle(out.target_vocab_size, o.seed, uint64_t{1} << 32);
  out.lexicon.resize(static_cast<size_t>(n));
  size_t next = 0;
  for (int64_t w = 0; w < n; ++w) {
    const int fertility = split[static_cast<size_t>(w)] ? 2 : 1;
    for (int f = 0; f < fertility; ++f)
      out.lexicon[static_cast<size_t>(w)].push_back(targets[next++]);
  }

  // 3. The sentence pairs.
  const uint64_t lengths = static_cast<uint64_t>(o.max_len - o.min_len + 1);
  for (int64_t p = 0; p < o.num_pairs; ++p) {
    const uint64_t offset = static_cast<uint64_t>(p + 2) << 32;
    uint64_t k = 0;
    const int64_t len = o.min_len + static_cast<int64_t>(RandomIndex(
                                        o.seed, offset, k++, lengths));
    std::vector<int64_t> source, target;
    for (int64_t i = 0; i < len; ++i) {
      const int64_t w = static_cast<int64_t>(
          RandomIndex(o.seed, offset, k++, static_cast<uint64_t>(n)));
      source.push_back(w);
      for (int64_t t : out.lexicon[static_cast<size_t>(w)]) target.push_back(t);
    }
    if (o.swap_prob > 0.0) {
      for (size_t i = 0; i + 1 < target.size(); ++i) {
        if (RandomUnit(o.seed, offset, k++) < o.swap_prob) {
          std::swap(target[i], target[i + 1]);
          ++i;  // the moved word stays put
        }
      }
    }
    out.corpus.source.push_back(Words("s", source));
    out.corpus.target.push_back(Words("t", target));
  }
  const std::string what =
      absl::StrCat(" (seed ", o.seed, ", ", o.num_pairs, " pairs, vocab ", n,
                   ", lengths ", o.min_len, "-", o.max_len, ", split_fraction ",
                   o.split_fraction, ", swap_prob ", o.swap_prob, ")");
  out.corpus.source_name = "synthetic source" + what;
  out.corpus.target_name = "synthetic target" + what;
  return out;
}

}  // namespace llmsys::data
