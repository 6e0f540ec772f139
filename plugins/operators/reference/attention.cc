// attention: scaled dot-product attention in its naive, materialized form
// (one row of scores at a time), with a key padding mask, a causal mask and
// dropout on the probabilities. Backward recomputes the probabilities from
// q, k and the saved row log-sum-exp.
#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "llmsys/random.h"
#include "plugins/operators/reference/common.h"

namespace llmsys::reference {
namespace {

using Dims = AttentionDims;

class Attention : public sdk::Operator {
 public:
  static constexpr bool kHasBackward = true;
  static sdk::Info Describe() {
    return {.id = "attention.reference",
            .description =
                "reference scaled dot-product attention, scores "
                "materialized row by row (plain loops)",
            .op = "attention",
            .op_flags = LLMSYS_OP_BACKWARD_NEEDS_INPUTS |
                        LLMSYS_OP_BACKWARD_NEEDS_OUTPUTS};
  }
  explicit Attention(const sdk::Params&) {}

  std::vector<llmsys_tensor_spec_t> Infer(const llmsys_op_call_t& call,
                                          size_t*) override {
    return AttentionOutputs(call);
  }

  // Per row (b, h, n): S[m] = scale * q[n] . k[m] over the allowed keys,
  // lse = log sum_m exp(S[m]), P[m] = exp(S[m] - lse),
  // out[n] = sum_m P[m] * keep[m] / (1 - p) * v[m].
  void Forward(const llmsys_op_call_t& call, DLTensor* const* outputs,
               uint32_t) override {
    const Dims s = CheckAttention(call);
    const DLTensor* q = call.inputs[0];  // (B, H, N, D)
    const DLTensor* k = call.inputs[1];  // (B, H, M, D)
    const DLTensor* v = call.inputs[2];  // (B, H, M, Dv)
    const double scale = AttentionScale(call, s);
    const double p = AttentionDropoutP(call);
    ForFloat(q->dtype, [&]<class T>(T) {
      const T* pq = sdk::Data<const T>(q);
      const T* pk = sdk::Data<const T>(k);
      const T* pv = sdk::Data<const T>(v);
      T* out = sdk::Data<T>(outputs[0]);                     // (B, H, N, Dv)
      T* lse = sdk::Data<T>(outputs[1]);                     // (B, H, N)
      std::vector<double> scores(static_cast<size_t>(s.m));  // one row (M)
      std::vector<double> acc(static_cast<size_t>(s.dv));    // one row (Dv)
      for (int64_t bh = 0; bh < s.b * s.h; ++bh) {
        const int64_t b = bh / s.h;
        for (int64_t n = 0; n < s.n; ++n) {
          const int64_t row = bh * s.n + n;  // index in (B, H, N)
          const double row_lse = RowScores(s, scale, b, n, pq + row * s.d,
                                           pk + bh * s.m * s.d, scores);
          std::fill(acc.begin(), acc.end(), 0.0);
          if (row_lse != -std::numeric_limits<double>::infinity()) {
            for (int64_t m = 0; m < s.m; ++m) {
              if (!Allowed(s, b, n, m)) continue;
              const double pm =
                  std::exp(scores[m] - row_lse) *
                  KeepScale(call, p, static_cast<uint64_t>(row * s.m + m));
              const T* vm = pv + (bh * s.m + m) * s.dv;
              for (int64_t j = 0; j < s.dv; ++j) acc[j] += pm * vm[j];
            }
          }
          for (int64_t j = 0; j < s.dv; ++j)
            out[row * s.dv + j] = static_cast<T>(acc[j]);
          lse[row] = static_cast<T>(row_lse);
        }
      }
    });
  }

  // With P recomputed from the saved lse and P' = P * keep / (1 - p):
  //   dV = P'^T dO,  dP = (dO V^T) * keep / (1 - p),
  //   dS = P * (dP - rowsum(P * dP)),  dQ = scale dS K,  dK = scale dS^T Q.
  // A row with every key masked contributes nothing.
  void Backward(const llmsys_op_call_t& call, const DLTensor* const* outputs,
                const DLTensor* const* grad_outputs, uint32_t,
                DLTensor* const* grad_inputs) override {
    const Dims s = CheckAttention(call);
    const DLTensor* q = call.inputs[0];   // (B, H, N, D)
    const DLTensor* k = call.inputs[1];   // (B, H, M, D)
    const DLTensor* v = call.inputs[2];   // (B, H, M, Dv)
    const DLTensor* lse = outputs[1];     // (B, H, N)
    const DLTensor* g = grad_outputs[0];  // (B, H, N, Dv) or nullptr (zero)
    DLTensor* gq = grad_inputs[0];        // (B, H, N, D) or nullptr
    DLTensor* gk = grad_inputs[1];        // (B, H, M, D) or nullptr
    DLTensor* gv = grad_inputs[2];        // (B, H, M, Dv) or nullptr
    const double scale = AttentionScale(call, s);
    const double p = AttentionDropoutP(call);
    std::vector<double> dq(static_cast<size_t>(s.b * s.h * s.n * s.d), 0.0);
    std::vector<double> dk(static_cast<size_t>(s.b * s.h * s.m * s.d), 0.0);
    std::vector<double> dv(static_cast<size_t>(s.b * s.h * s.m * s.dv), 0.0);
    ForFloat(q->dtype, [&]<class T>(T) {
      const T* pq = sdk::Data<const T>(q);
      const T* pk = sdk::Data<const T>(k);
      const T* pv = sdk::Data<const T>(v);
      const T* plse = sdk::Data<const T>(lse);
      const T* pg = g != nullptr ? sdk::Data<const T>(g) : nullptr;
      std::vector<double> scores(static_cast<size_t>(s.m));  // S, then P
      std::vector<double> dp(static_cast<size_t>(s.m));      // dP
      for (int64_t bh = 0; bh < s.b * s.h && pg != nullptr; ++bh) {
        const int64_t b = bh / s.h;
        for (int64_t n = 0; n < s.n; ++n) {
          const int64_t row = bh * s.n + n;  // index in (B, H, N)
          const double row_lse = plse[row];
          if (row_lse == -std::numeric_limits<double>::infinity()) continue;
          RowScores(s, scale, b, n, pq + row * s.d, pk + bh * s.m * s.d,
                    scores);
          const T* go = pg + row * s.dv;  // dO row (Dv)
          double rowsum = 0;              // sum_m P[m] * dP[m]
          for (int64_t m = 0; m < s.m; ++m) {
            if (!Allowed(s, b, n, m)) continue;
            const double pm = std::exp(scores[m] - row_lse);
            const double keep =
                KeepScale(call, p, static_cast<uint64_t>(row * s.m + m));
            const T* vm = pv + (bh * s.m + m) * s.dv;
            double dot = 0;  // dO . v[m]
            for (int64_t j = 0; j < s.dv; ++j) {
              dot += double(go[j]) * vm[j];
              dv[(bh * s.m + m) * s.dv + j] += pm * keep * go[j];
            }
            scores[m] = pm;
            dp[m] = dot * keep;
            rowsum += pm * dp[m];
          }
          for (int64_t m = 0; m < s.m; ++m) {
            if (!Allowed(s, b, n, m)) continue;
            const double ds = scores[m] * (dp[m] - rowsum);
            const T* km = pk + (bh * s.m + m) * s.d;
            const T* qn = pq + row * s.d;
            for (int64_t j = 0; j < s.d; ++j) {
              dq[row * s.d + j] += scale * ds * km[j];
              dk[(bh * s.m + m) * s.d + j] += scale * ds * qn[j];
            }
          }
        }
      }
      auto store = [](DLTensor* t, const std::vector<double>& from) {
        if (t == nullptr) return;
        T* to = sdk::Data<T>(t);
        for (size_t i = 0; i < from.size(); ++i)
          to[i] = static_cast<T>(from[i]);
      };
      store(gq, dq);
      store(gk, dk);
      store(gv, dv);
      // A float mask may be handed a gradient: it is zero (a mask is not
      // differentiable).
      if (DLTensor* gmask = grad_inputs[3]; gmask != nullptr)
        store(gmask, std::vector<double>(
                         static_cast<size_t>(llmsys_tensor_numel(gmask)), 0.0));
    });
  }

 private:
  // Whether query n of batch b may attend key m: not padding, and m <= n
  // when causal (top-left aligned, as PyTorch's is_causal).
  static bool Allowed(const Dims& s, int64_t b, int64_t n, int64_t m) {
    if (s.mask != nullptr && MaskAt(s.mask, b * s.m + m)) return false;
    if (s.causal && m > n) return false;
    return true;
  }

  // keep / (1 - p) for probability i (row-major in (B, H, N, M)).
  static double KeepScale(const llmsys_op_call_t& call, double p, uint64_t i) {
    if (p == 0.0) return 1.0;
    const bool keep =
        llmsys_random_uniform(call.ctx->rng_seed, call.ctx->rng_offset, i) >= p;
    return keep ? 1.0 / (1.0 - p) : 0.0;
  }

  // Fills scores[m] = scale * qn . k[m] for the allowed keys of row (b, n)
  // and returns their log-sum-exp (-inf when none is allowed).
  template <class T>
  static double RowScores(const Dims& s, double scale, int64_t b, int64_t n,
                          const T* qn,  // (D)
                          const T* kb,  // (M, D) of this (b, h)
                          std::vector<double>& scores) {
    bool any = false;
    double mx = -std::numeric_limits<double>::infinity();
    for (int64_t m = 0; m < s.m; ++m) {
      if (!Allowed(s, b, n, m)) continue;
      double dot = 0;
      for (int64_t j = 0; j < s.d; ++j) dot += double(qn[j]) * kb[m * s.d + j];
      scores[m] = scale * dot;
      mx = std::max(mx, scores[m]);
      any = true;
    }
    if (!any) return -std::numeric_limits<double>::infinity();
    double sum = 0;
    for (int64_t m = 0; m < s.m; ++m)
      if (Allowed(s, b, n, m)) sum += std::exp(scores[m] - mx);
    return mx + std::log(sum);
  }
};

// The same computation under the name experiments use for the materialized
// algorithm (`[ops] attention = "naive"`), beside the flash forms of the
// performance plugins. The reference id stays the oracle.
class NaiveAttention : public Attention {
 public:
  static sdk::Info Describe() {
    sdk::Info info = Attention::Describe();
    info.id = "attention.naive";
    info.description =
        "naive scaled dot-product attention: every score computed and "
        "softmaxed exactly, no tiling (the code of attention.reference)";
    return info;
  }
  using Attention::Attention;
};

}  // namespace

void RegisterAttention(sdk::Registry& registry) {
  registry.Add<Attention>();
  registry.Add<NaiveAttention>();
}

}  // namespace llmsys::reference
