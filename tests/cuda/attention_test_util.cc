#include "tests/cuda/attention_test_util.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <memory>

#include "framework/tensor/tensor.h"
#include "llmsys/random.h"
#include "tests/cuda/cuda_test_util.h"

namespace llmsys::cuda_test {

using tensor::kF32;
using tensor::Tensor;
using Vec = std::vector<double>;

namespace {
constexpr double kInf = std::numeric_limits<double>::infinity();
}  // namespace

AttentionResult AttentionReference(const AttentionProblem& s, const Vec& q,
                                   const Vec& k, const Vec& v, const Vec& g,
                                   const Vec* saved_lse) {
  const double scale = s.scale != 0.0 ? s.scale
                       : s.d > 0      ? 1.0 / std::sqrt(double(s.d))
                                      : 1.0;
  auto allowed = [&](int64_t b, int64_t n, int64_t m) {
    if (!s.mask.empty() && s.mask[b * s.m + m] != 0) return false;
    return !(s.causal && m > n);
  };
  auto keep = [&](int64_t i) {
    if (s.p == 0.0) return 1.0;
    return llmsys_random_uniform(s.seed, s.offset, static_cast<uint64_t>(i)) >=
                   s.p
               ? 1.0 / (1.0 - s.p)
               : 0.0;
  };
  AttentionResult r;
  r.out.assign(s.b * s.h * s.n * s.dv, 0.0);
  r.lse.assign(s.b * s.h * s.n, 0.0);
  r.dq.assign(s.b * s.h * s.n * s.d, 0.0);
  r.dk.assign(s.b * s.h * s.m * s.d, 0.0);
  r.dv.assign(s.b * s.h * s.m * s.dv, 0.0);
  Vec sc(s.m), pr(s.m), dp(s.m);
  for (int64_t bh = 0; bh < s.b * s.h; ++bh) {
    const int64_t b = bh / s.h;
    for (int64_t n = 0; n < s.n; ++n) {
      const int64_t row = bh * s.n + n;
      bool any = false;
      double mx = -kInf;
      for (int64_t m = 0; m < s.m; ++m) {
        if (!allowed(b, n, m)) continue;
        double dot = 0;
        for (int64_t j = 0; j < s.d; ++j)
          dot += q[row * s.d + j] * k[(bh * s.m + m) * s.d + j];
        sc[m] = scale * dot;
        mx = sc[m] > mx ? sc[m] : mx;  // std::max: a NaN reaches the sum
        any = true;
      }
      if (!any) {
        r.lse[row] = -kInf;
        continue;
      }
      double sum = 0;
      for (int64_t m = 0; m < s.m; ++m)
        if (allowed(b, n, m)) sum += std::exp(sc[m] - mx);
      r.lse[row] = mx + std::log(sum);
      const double lse = saved_lse != nullptr ? (*saved_lse)[row] : r.lse[row];
      double rowsum = 0;
      for (int64_t m = 0; m < s.m; ++m) {
        if (!allowed(b, n, m)) continue;
        const double pf = std::exp(sc[m] - r.lse[row]);  // forward's P
        pr[m] = std::exp(sc[m] - lse);                   // backward's P
        const double kp = keep(row * s.m + m);
        double dot = 0;
        for (int64_t j = 0; j < s.dv; ++j) {
          r.out[row * s.dv + j] += pf * kp * v[(bh * s.m + m) * s.dv + j];
          dot += g[row * s.dv + j] * v[(bh * s.m + m) * s.dv + j];
          r.dv[(bh * s.m + m) * s.dv + j] += pr[m] * kp * g[row * s.dv + j];
        }
        dp[m] = dot * kp;
        rowsum += pr[m] * dp[m];
      }
      for (int64_t m = 0; m < s.m; ++m) {
        if (!allowed(b, n, m)) continue;
        const double ds = pr[m] * (dp[m] - rowsum);
        for (int64_t j = 0; j < s.d; ++j) {
          r.dq[row * s.d + j] += scale * ds * k[(bh * s.m + m) * s.d + j];
          r.dk[(bh * s.m + m) * s.d + j] += scale * ds * q[row * s.d + j];
        }
      }
    }
  }
  return r;
}

AttentionResult RunAttention(const std::string& id,
                             const runtime::AttrList& params,
                             const AttentionProblem& s, DLDataType dtype,
                             DLDataType mask_dtype, Vec* q, Vec* k, Vec* v,
                             Vec* g, const std::vector<bool>& needs) {
  std::unique_ptr<runtime::OperatorImpl> impl =
      EmulatedOp(id, "attention", params);
  if (impl == nullptr) return {};
  const Tensor tq = OnDevice({s.b, s.h, s.n, s.d}, *q, dtype);
  const Tensor tk = OnDevice({s.b, s.h, s.m, s.d}, *k, dtype);
  const Tensor tv = OnDevice({s.b, s.h, s.m, s.dv}, *v, dtype);
  const Tensor tg = OnDevice({s.b, s.h, s.n, s.dv}, *g, dtype);
  *q = tq.ToDoubles();
  *k = tk.ToDoubles();
  *v = tv.ToDoubles();
  *g = tg.ToDoubles();
  Tensor tmask;
  if (!s.mask.empty())
    tmask = OnDevice({s.b, s.m}, Vec(s.mask.begin(), s.mask.end()), mask_dtype);
  absl::StatusOr<runtime::ParamPack> attrs = impl->Attrs(
      {{"causal", s.causal}, {"dropout_p", s.p}, {"scale", s.scale}});
  EXPECT_TRUE(attrs.ok()) << attrs.status();
  runtime::CallOptions options;
  options.rng = {s.seed, s.offset};
  options.poison = true;  // every output element must be written
  const std::vector<Tensor> inputs = {tq, tk, tv, tmask};
  absl::StatusOr<std::vector<Tensor>> out =
      impl->Forward(inputs, *attrs, options);
  EXPECT_TRUE(out.ok()) << out.status();
  if (!out.ok()) return {};
  AttentionResult r;
  r.out = (*out)[0].ToDoubles();
  r.lse = (*out)[1].ToDoubles();
  // lse in float32 for 16-bit inputs (the contract), else the inputs' dtype.
  EXPECT_TRUE(
      llmsys_dtype_equal((*out)[1].dtype(), dtype.bits == 16 ? kF32 : dtype))
      << tensor::DTypeName((*out)[1].dtype());
  if (needs.empty()) return r;
  std::vector<runtime::TensorMeta> meta;
  for (const Tensor& t : inputs)
    meta.push_back({t.defined(), t.defined() ? t.shape() : tensor::Shape{},
                    t.defined() ? t.dtype() : kF32});
  const bool float_mask =
      tmask.defined() && tensor::IsFloatDType(tmask.dtype());
  absl::StatusOr<std::vector<Tensor>> grads =
      impl->Backward(inputs, meta, *attrs, options, *out, {tg, Tensor()},
                     {needs[0], needs[1], needs[2], float_mask});
  EXPECT_TRUE(grads.ok()) << grads.status();
  if (!grads.ok()) return r;
  if (needs[0]) r.dq = (*grads)[0].ToDoubles();
  if (needs[1]) r.dk = (*grads)[1].ToDoubles();
  if (needs[2]) r.dv = (*grads)[2].ToDoubles();
  if (float_mask) {
    for (double x : (*grads)[3].ToDoubles()) EXPECT_EQ(x, 0.0);
  }
  return r;
}

}  // namespace llmsys::cuda_test
