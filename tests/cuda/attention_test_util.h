// tests/cuda/attention_test_util.h — what the value tests of
// attention.naive and attention.flash share: one problem, the reference
// attention written out in double (plugins/operators/reference/
// attention.cc's rules, once more), and a forward and backward run of an
// implementation on the emulated device (cuda_test_util.h).
//
//   AttentionProblem s{.b = 2, .h = 3, .n = 5, .m = 7, .d = 8, .dv = 8};
//   Vec q = ..., k = ..., v = ..., g = ...;
//   AttentionResult got = RunAttention("attention.flash", {}, s, kF32, kU8,
//                                      &q, &k, &v, &g);
//   AttentionResult want = AttentionReference(s, q, k, v, g);
//
// Thread-safety: test-only helpers, used from the test's thread.
#ifndef LLMSYS_TESTS_CUDA_ATTENTION_TEST_UTIL_H_
#define LLMSYS_TESTS_CUDA_ATTENTION_TEST_UTIL_H_

#include <cstdint>
#include <string>
#include <vector>

#include "framework/runtime/operator_call.h"
#include "llmsys/tensor.h"

namespace llmsys::cuda_test {

// q (B, H, N, D), k (B, H, M, D), v (B, H, M, Dv) and the attributes.
struct AttentionProblem {
  int64_t b, h, n, m, d, dv;
  bool causal = false;
  double scale = 0.0;  // the attribute: 0 means 1/sqrt(D)
  double p = 0.0;
  uint64_t seed = 0, offset = 0;
  std::vector<int> mask = {};  // (B, M) 1 = masked, or empty
};

// out (B, H, N, Dv), lse (B, H, N) and the gradients of q, k and v (empty
// where not asked for).
struct AttentionResult {
  std::vector<double> out, lse, dq, dk, dv;
};

// The reference attention in double. Its backward reads `saved_lse` when
// given (as the reference reads the saved lse), else the lse it computes;
// g is dL/dout (B, H, N, Dv).
AttentionResult AttentionReference(
    const AttentionProblem& s, const std::vector<double>& q,
    const std::vector<double>& k, const std::vector<double>& v,
    const std::vector<double>& g,
    const std::vector<double>* saved_lse = nullptr);

// Runs component `id` (op attention, parameters `params`) forward on the
// emulated device, every output element poisoned first, and checks lse's
// dtype (float32 for 16-bit inputs, else the inputs'); then, unless
// `needs` (which of q, k, v get a gradient) is empty, backward with
// incoming gradient g. The inputs it used (after rounding to `dtype`) come
// back in q, k, v, g. A float mask's gradient is expected to be 0.
AttentionResult RunAttention(
    const std::string& id, const runtime::AttrList& params,
    const AttentionProblem& s, DLDataType dtype, DLDataType mask_dtype,
    std::vector<double>* q, std::vector<double>* k, std::vector<double>* v,
    std::vector<double>* g,
    const std::vector<bool>& needs = {true, true, true});

}  // namespace llmsys::cuda_test

#endif  // LLMSYS_TESTS_CUDA_ATTENTION_TEST_UTIL_H_
