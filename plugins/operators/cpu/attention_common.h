// What attention.blas and attention.flash share beyond the reference's
// checks (reference/common.h): the key padding mask as bytes and the dropout
// keep scales, so the two agree with each other and with the reference
// exactly.
#ifndef LLMSYS_PLUGINS_OPERATORS_CPU_ATTENTION_COMMON_H_
#define LLMSYS_PLUGINS_OPERATORS_CPU_ATTENTION_COMMON_H_

#include <algorithm>
#include <string>
#include <vector>

#include "plugins/operators/cpu/common.h"

namespace llmsys::cpu {

using reference::AttentionDims;
using reference::AttentionDropoutP;
using reference::AttentionOutputs;
using reference::AttentionScale;
using reference::CheckAttention;

// The key padding mask as bytes (B, M), 1 = masked; empty when absent.
inline std::vector<uint8_t> AttentionPadding(const AttentionDims& s) {
  std::vector<uint8_t> pad;
  if (s.mask == nullptr) return pad;
  pad.resize(static_cast<size_t>(s.b * s.m));
  for (int64_t i = 0; i < s.b * s.m; ++i) pad[i] = MaskAt(s.mask, i) ? 1 : 0;
  return pad;
}

// out[j] = keep / (1 - p) for probabilities first .. first + count, where
// probability i is kept iff llmsys_random_uniform(seed, offset, i) >= p.
template <class T>
void KeepScales(const llmsys_op_call_t& call, double p, uint64_t first,
                int64_t count, T* out) {
  constexpr int64_t kChunk = 256;
  float u[kChunk];
  const T kept = static_cast<T>(1.0 / (1.0 - p));
  for (int64_t j0 = 0; j0 < count; j0 += kChunk) {
    const int64_t c = std::min(kChunk, count - j0);
    Uniforms(call.ctx->rng_seed, call.ctx->rng_offset,
             first + static_cast<uint64_t>(j0), c, u);
    for (int64_t j = 0; j < c; ++j)
      out[j0 + j] = static_cast<double>(u[j]) >= p ? kept : T(0);
  }
}

}  // namespace llmsys::cpu

#endif  // LLMSYS_PLUGINS_OPERATORS_CPU_ATTENTION_COMMON_H_
