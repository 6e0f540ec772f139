// framework/data/masking.cc — BERT's 80/10/10 masking from the Philox
// stream; the draws are specified in masking.h.
#include "framework/data/masking.h"

#include <cmath>
#include <cstddef>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "llmsys/random.h"

namespace llmsys::data {
namespace {

absl::Status CheckProbability(double p, const char* name) {
  if (!(p >= 0.0 && p <= 1.0)) {  // also rejects NaN
    return absl::InvalidArgumentError(
        absl::StrCat("MLM masking: ", name, " is ", p,
                     ": expected a probability in [0, 1]"));
  }
  return absl::OkStatus();
}

absl::Status CheckOptions(const MlmOptions& o) {
  for (absl::Status s : {CheckProbability(o.mask_prob, "mask_prob"),
                         CheckProbability(o.mask_token, "mask_token"),
                         CheckProbability(o.random_token, "random_token")}) {
    if (!s.ok()) return s;
  }
  if (o.mask_token + o.random_token > 1.0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "MLM masking: mask_token ", o.mask_token, " + random_token ",
        o.random_token, " exceeds 1 (the rest of the selected are kept)"));
  }
  if (o.vocab_size < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("MLM masking: vocab_size is ", o.vocab_size,
                     ": expected 1 or more (the model's vocabulary)"));
  }
  if (o.mask_id < 0 || o.mask_id >= o.vocab_size) {
    return absl::InvalidArgumentError(absl::StrCat(
        "MLM masking: mask_id ", o.mask_id, " is outside the vocabulary [0, ",
        o.vocab_size, ") (set it to the [MASK] id the model knows)"));
  }
  if (o.first_random_id < 0 || o.first_random_id > o.vocab_size) {
    return absl::InvalidArgumentError(
        absl::StrCat("MLM masking: first_random_id ", o.first_random_id,
                     " is outside [0, vocab_size = ", o.vocab_size, "]"));
  }
  return absl::OkStatus();
}

}  // namespace

bool MlmEligible(int32_t id) {
  return id != kPadId && id != kBosId && id != kEosId;
}

absl::StatusOr<MlmMasked> MaskTokens(const std::vector<int32_t>& tokens,
                                     const MlmOptions& options, uint64_t seed,
                                     uint64_t offset) {
  const MlmOptions& o = options;
  if (absl::Status s = CheckOptions(o); !s.ok()) return s;
  // The random candidates: [first_random_id, vocab_size) less mask_id.
  const bool mask_in_range =
      o.mask_id >= o.first_random_id && o.mask_id < o.vocab_size;
  const int64_t candidates = static_cast<int64_t>(o.vocab_size) -
                             o.first_random_id - (mask_in_range ? 1 : 0);
  if (o.random_token > 0.0 && candidates < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "MLM masking: random_token is ", o.random_token,
        " but no id can be drawn: [first_random_id = ", o.first_random_id,
        ", vocab_size = ", o.vocab_size, ") without mask_id ", o.mask_id,
        " is empty"));
  }

  MlmMasked m;
  m.inputs = tokens;
  m.targets.assign(tokens.size(), kIgnoreTarget);
  for (size_t pos = 0; pos < tokens.size(); ++pos) {
    const int32_t id = tokens[pos];
    if (id < 0 || id >= o.vocab_size) {
      return absl::InvalidArgumentError(
          absl::StrCat("MLM masking: token ", id, " at position ", pos,
                       " is outside the vocabulary [0, ", o.vocab_size, ")"));
    }
    if (!MlmEligible(id)) continue;
    const uint64_t i = 3 * static_cast<uint64_t>(pos);
    if (!(llmsys_random_uniform(seed, offset, i) < o.mask_prob)) continue;
    ++m.num_masked;
    m.targets[pos] = id;
    const double u1 = llmsys_random_uniform(seed, offset, i + 1);
    if (u1 < o.mask_token) {
      m.inputs[pos] = o.mask_id;
    } else if (u1 < o.mask_token + o.random_token) {
      const uint64_t k = llmsys_random_u32(seed, offset, i + 2) %
                         static_cast<uint64_t>(candidates);
      int32_t r = o.first_random_id + static_cast<int32_t>(k);
      if (mask_in_range && r >= o.mask_id) ++r;  // skip the [MASK] id
      m.inputs[pos] = r;
    }
  }
  return m;
}

}  // namespace llmsys::data
