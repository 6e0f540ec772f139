// framework/data/masking.h — BERT's masked-language-model corruption of a
// batch of token ids (Devlin et al. 2019, section 3.1): each eligible
// position is selected with probability mask_prob; a selected position is
// replaced by the [MASK] id (80%), by a random id (10%) or kept (10%), and
// becomes a prediction target holding its original id. The host masks the
// batch, then hands "tokens" = inputs and "targets" = targets to a masked
// LM such as the bert plugin (plugins/models/bert).
//
//   MlmOptions o{.mask_id = mask_id, .vocab_size = model_vocab};
//   LLMSYS_ASSIGN_OR_RETURN(MlmMasked m,
//                           MaskTokens(batch.x, o, seed, step << 32));
//   // m.inputs, m.targets: the shape of batch.x; m.targets is -100 where
//   // nothing is predicted (cross_entropy's ignore_index).
//
// Randomness: the counter-based Philox stream of abi/llmsys/random.h, so a
// (seed, offset) pair gives the same masks with every compiler and machine.
// Position i (row-major over the whole batch) uses exactly three numbers of
// the stream (seed, offset), whether or not they matter:
//   u0 = llmsys_random_uniform(seed, offset, 3i)      selection: u0 < mask_prob
//   u1 = llmsys_random_uniform(seed, offset, 3i + 1)  what replaces it:
//          u1 < mask_token                  -> mask_id
//          u1 < mask_token + random_token   -> a random id
//          otherwise                        -> the original id (kept)
//   w2 = llmsys_random_u32(seed, offset, 3i + 2)      which random id: the
//          (w2 mod n)-th of the n candidates, in increasing order, of
//          [first_random_id, vocab_size) without mask_id (a random
//          replacement is never the [MASK] id; the modulo bias is below
//          n / 2^32).
// So position i's outcome depends only on (seed, offset, i, tokens[i]), and
// a host that gives each batch its own offset (e.g. step << 32, as the
// batchers do) never reuses a number.
//
// Eligibility: positions holding <pad>, <bos> or <eos> (kPadId, kBosId,
// kEosId) are never selected: they carry no content and a model that sees
// them masked learns nothing useful. <unk> (kUnkId) and every other id,
// mask_id included, may be selected: <unk> stands for real text.
//
// Thread-safety: pure functions.
#ifndef LLMSYS_FRAMEWORK_DATA_MASKING_H_
#define LLMSYS_FRAMEWORK_DATA_MASKING_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "framework/data/tokenizer.h"

namespace llmsys::data {

// The target value of positions that are not predicted (cross_entropy's
// default ignore_index).
inline constexpr int32_t kIgnoreTarget = -100;

struct MlmOptions {
  double mask_prob = 0.15;    // P(selected), in [0, 1]
  double mask_token = 0.8;    // P(-> mask_id | selected), in [0, 1]
  double random_token = 0.1;  // P(-> random id | selected), in [0, 1]
  // mask_token + random_token <= 1; the rest of the selected are kept.
  int32_t mask_id = -1;    // the [MASK] id, in [0, vocab_size)
  int32_t vocab_size = 0;  // every token and mask_id lies below it
  // Random replacements come from [first_random_id, vocab_size) without
  // mask_id; the default leaves out the special tokens.
  int32_t first_random_id = kNumSpecialTokens;
};

struct MlmMasked {
  std::vector<int32_t> inputs;   // the tokens after corruption
  std::vector<int32_t> targets;  // the original id where selected, else -100
  int64_t num_masked = 0;        // selected positions (targets != -100)
};

// Masks `tokens` (any shape, row-major; position i is the flat index).
// INVALID_ARGUMENT, naming the option or the position, when a probability is
// outside [0, 1] (or not a number), mask_token + random_token > 1,
// vocab_size < 1, mask_id or first_random_id is outside the vocabulary,
// random_token > 0 with no candidate id to draw, or a token is outside
// [0, vocab_size).
absl::StatusOr<MlmMasked> MaskTokens(const std::vector<int32_t>& tokens,
                                     const MlmOptions& options, uint64_t seed,
                                     uint64_t offset);

// Whether MaskTokens may select a position holding `id` (not <pad>, <bos>
// or <eos>).
bool MlmEligible(int32_t id);

}  // namespace llmsys::data

#endif  // LLMSYS_FRAMEWORK_DATA_MASKING_H_
