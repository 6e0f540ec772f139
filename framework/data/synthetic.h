// framework/data/synthetic.h — a synthetic, reversible "language pair": a
// parallel corpus whose translation rule is known exactly, for testing
// translation models (reder, transformer) and their decoders without real
// data. Source words are "s0".."s{n-1}"; a random bijection maps each source
// word to one target word "t<k>", except that a fraction of the source words
// map to two target words (fertility 2); optionally adjacent target words are
// swapped at random (a non-monotonic variant).
//
//   SyntheticPairOptions o;
//   o.seed = 1;
//   o.num_pairs = 1000;
//   o.vocab_size = 50;
//   o.split_fraction = 0.2;   // 10 source words become two target words
//   LLMSYS_ASSIGN_OR_RETURN(SyntheticPairs data, MakeSyntheticPairs(o));
//   data.corpus.source[i], data.corpus.target[i];  // "s3 s17 s0", "t8 t2 t40
//   t5" data.lexicon[3];  // {8}: s3 always becomes t8 (before any swap)
//
// Generation (Philox4x32-10 of abi/llmsys/random.h through RandomIndex of
// batching.h, so a seed gives the same corpus on every machine):
//   1. the split words: the first round(split_fraction * n) entries of a
//      Fisher-Yates shuffle of 0..n-1 drawn from stream (seed, 0);
//   2. the lexicon: a shuffle of 0..m-1 (m = n + the split words, the target
//      vocabulary) from stream (seed, 1 << 32), dealt out in source word
//      order, one target word per source word and two per split word, so
//      distinct source words never share a target word (the monotonic map
//      is invertible);
//   3. pair p from stream (seed, (p + 2) << 32): its length uniform in
//      [min_len, max_len], its words uniform over the source vocabulary, the
//      target the concatenation of their lexicon entries; then, going left
//      to right over the target, each adjacent pair (i, i + 1) is swapped
//      with probability swap_prob, and a swapped word is not swapped again
//      (each word moves at most one place).
// A pair is a pure function of (options, p). Ranges of the random indices
// use the modulo reduction of RandomIndex (bias below range / 2^64).
//
// Thread-safety: a pure function of its options; values are plain data.
#ifndef LLMSYS_FRAMEWORK_DATA_SYNTHETIC_H_
#define LLMSYS_FRAMEWORK_DATA_SYNTHETIC_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "framework/data/corpus.h"

namespace llmsys::data {

struct SyntheticPairOptions {
  uint64_t seed = 0;
  int64_t num_pairs = 1000;     // sentence pairs, >= 1 (at most 2^31)
  int64_t vocab_size = 100;     // source words n, >= 1 (at most 2^31)
  int64_t min_len = 3;          // source words per sentence,
  int64_t max_len = 10;         // 1 <= min_len <= max_len <= 2^20
  double split_fraction = 0.0;  // in [0, 1]: source words of fertility 2
  double swap_prob = 0.0;       // in [0, 1]: each adjacent target pair swapped
};

struct SyntheticPairs {
  // Space-joined words, one sentence per line (no newline characters);
  // source_name and target_name describe the options.
  ParallelCorpus corpus;
  // lexicon[i]: the target word ids source word "s<i>" becomes, in order
  // (one, or two for a split word); every target id occurs exactly once.
  std::vector<std::vector<int64_t>> lexicon;
  int64_t target_vocab_size = 0;  // m = n + the number of split words
};

// The corpus of `options`. INVALID_ARGUMENT names the option that is out of
// range and the range ("synthetic pairs: min_len 5 is larger than max_len
// 3").
absl::StatusOr<SyntheticPairs> MakeSyntheticPairs(
    const SyntheticPairOptions& options);

}  // namespace llmsys::data

#endif  // LLMSYS_FRAMEWORK_DATA_SYNTHETIC_H_
