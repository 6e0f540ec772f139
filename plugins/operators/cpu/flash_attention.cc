// attention.flash: scaled dot-product attention in tiles, never holding an
// (N, M) score matrix. Forward, per (b, h) and block of kBr query rows: loop
// over blocks of kBc keys (skipping blocks causality masks entirely), S =
// scale Q K^T for the tile, an online softmax (running max m, running sum l
// of the pre-dropout exps, accumulator rescaled by e^{m_old - m_new}),
// dropout on the tile's probabilities, acc += P' V; at the end out = acc / l
// and lse = m + log l. Backward recomputes each tile's P from the saved lse,
// with D_i = rowsum(dO * O): dV += P'^T dO, dP = (dO V^T) * keep,
// dS = P (dP - D_i), dQ += scale dS K, dK += scale dS^T Q.
//
// The semantics are attention.blas's and the reference's exactly: causal
// lets query n see keys m <= n, a query with every key masked gets out 0 and
// lse -inf, and probability (b, h, n, m) is kept iff
// llmsys_random_uniform(seed, offset, (b H + h) N M + n M + m) >= p (scaled
// by 1/(1-p)); the softmax normalizer is the sum before dropout.
//
// Memory: per thread, a few kBr x kBc tiles and a kBr x Dv accumulator;
// nothing of size N x M. The (b, h) pairs are split over the call's threads
// on the host's pool (ForGemmItems), each pair done whole by one thread, so
// results do not depend on timing. The tile products are OpenBLAS GEMMs run
// with one BLAS thread inside each task (64 x 64 x D is below OpenBLAS's
// threading threshold anyway); the masked exps are loops the compiler
// vectorizes.
#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "plugins/operators/cpu/attention_common.h"

namespace llmsys::cpu {
namespace {

constexpr int64_t kBr = 64;  // query rows per block
constexpr int64_t kBc = 64;  // keys per block

template <class T>
LLMSYS_CPU_KERNEL void ExpShift(T* row, int64_t n, T shift) {
  for (int64_t j = 0; j < n; ++j) row[j] = Exp(row[j] - shift);
}

class FlashAttention : public sdk::Operator {
 public:
  static constexpr bool kHasBackward = true;
  static sdk::Info Describe() {
    return {.id = "attention.flash",
            .description =
                "scaled dot-product attention in 64x64 tiles with an online "
                "softmax (FlashAttention-2 on the CPU): memory O(tile + N D) "
                "per thread, never (N, M); backward recomputes P from lse",
            .op = "attention",
            .op_flags = LLMSYS_OP_BACKWARD_NEEDS_INPUTS |
                        LLMSYS_OP_BACKWARD_NEEDS_OUTPUTS,
            .priority = 90};
  }
  explicit FlashAttention(const sdk::Params&) {}

  std::vector<llmsys_tensor_spec_t> Infer(const llmsys_op_call_t& call,
                                          size_t*) override {
    return AttentionOutputs(call);
  }

  void Forward(const llmsys_op_call_t& call, DLTensor* const* outputs,
               uint32_t) override {
    const AttentionDims s = CheckAttention(call);
    const double scale = AttentionScale(call, s);
    const double p = AttentionDropoutP(call);
    const std::vector<uint8_t> pad = AttentionPadding(s);
    ForFloat(call.inputs[0]->dtype, [&]<class T>(T) {
      const T* pq = sdk::Data<const T>(call.inputs[0]);
      const T* pk = sdk::Data<const T>(call.inputs[1]);
      const T* pv = sdk::Data<const T>(call.inputs[2]);
      T* out = sdk::Data<T>(outputs[0]);  // (B, H, N, Dv)
      T* lse = sdk::Data<T>(outputs[1]);  // (B, H, N)
      ForGemmItems(
          call, s.b * s.h, GemmParts(call, s.b * s.h),
          [&](int64_t, int64_t bh) {
            const T inf = std::numeric_limits<T>::infinity();
            std::vector<T> st(static_cast<size_t>(kBr * kBc));  // S, then P
            std::vector<T> acc(static_cast<size_t>(kBr * s.dv));
            std::vector<T> mx(kBr), l(kBr), keep(kBc);
            const uint8_t* bpad =
                pad.empty() ? nullptr : pad.data() + bh / s.h * s.m;
            const T* q = pq + bh * s.n * s.d;
            const T* k = pk + bh * s.m * s.d;
            const T* v = pv + bh * s.m * s.dv;
            for (int64_t n0 = 0; n0 < s.n; n0 += kBr) {
              const int64_t br = std::min(kBr, s.n - n0);
              std::fill(acc.begin(), acc.end(), T(0));
              std::fill(mx.begin(), mx.end(), -inf);
              std::fill(l.begin(), l.end(), T(0));
              const int64_t mend = s.causal ? std::min(s.m, n0 + br) : s.m;
              for (int64_t m0 = 0; m0 < mend; m0 += kBc) {
                const int64_t bc = std::min(kBc, s.m - m0);
                Gemm(false, true, br, bc, s.d, static_cast<T>(scale),
                     q + n0 * s.d, s.d, k + m0 * s.d, s.d, T(0), st.data(),
                     kBc);
                for (int64_t i = 0; i < br; ++i) {
                  T* row = st.data() + i * kBc;
                  const int64_t n = n0 + i;
                  const int64_t lim =
                      s.causal ? std::clamp<int64_t>(n + 1 - m0, 0, bc) : bc;
                  bool any = false;  // an allowed key in this tile
                  for (int64_t j = 0; j < bc; ++j) {
                    if (j >= lim || (bpad != nullptr && bpad[m0 + j]))
                      row[j] = -inf;
                    else
                      any = true;
                  }
                  T tmax = RowMax(row, bc);
                  // Allowed keys whose scores are all NaN (or -inf) give
                  // NaN, as in the reference: not a masked tile.
                  if (any && tmax == -inf)
                    tmax = std::numeric_limits<T>::quiet_NaN();
                  // Not std::max: a NaN max carries on to the outputs.
                  const T mnew = mx[i] > tmax ? mx[i] : tmax;
                  if (mnew == -inf) {  // nothing allowed yet
                    std::fill(row, row + bc, T(0));
                    continue;
                  }
                  const T alpha = mx[i] == -inf ? T(0) : Exp(mx[i] - mnew);
                  mx[i] = mnew;
                  ExpShift(row, bc, mnew);
                  T sum = 0;
                  for (int64_t j = 0; j < bc; ++j) sum += row[j];
                  l[i] = l[i] * alpha + sum;
                  T* a = acc.data() + i * s.dv;
                  if (alpha != T(1))
                    for (int64_t x = 0; x < s.dv; ++x) a[x] *= alpha;
                  if (p > 0) {
                    const uint64_t first =
                        static_cast<uint64_t>((bh * s.n + n) * s.m + m0);
                    KeepScales(call, p, first, bc, keep.data());
                    for (int64_t j = 0; j < bc; ++j) row[j] *= keep[j];
                  }
                }
                Gemm(false, false, br, s.dv, bc, T(1), st.data(), kBc,
                     v + m0 * s.dv, s.dv, T(1), acc.data(), s.dv);
              }
              for (int64_t i = 0; i < br; ++i) {
                const int64_t index = bh * s.n + n0 + i;
                T* o = out + index * s.dv;
                if (l[i] == T(0)) {
                  std::fill(o, o + s.dv, T(0));
                  lse[index] = -inf;
                  continue;
                }
                const T inv = T(1) / l[i];
                for (int64_t x = 0; x < s.dv; ++x)
                  o[x] = acc[i * s.dv + x] * inv;
                lse[index] = mx[i] + static_cast<T>(std::log(l[i]));
              }
            }
          });
    });
  }

  void Backward(const llmsys_op_call_t& call, const DLTensor* const* outputs,
                const DLTensor* const* grad_outputs, uint32_t,
                DLTensor* const* grad_inputs) override {
    const AttentionDims s = CheckAttention(call);
    const DLTensor* g = grad_outputs[0];  // (B, H, N, Dv) or nullptr
    DLTensor* gq = grad_inputs[0];
    DLTensor* gk = grad_inputs[1];
    DLTensor* gv = grad_inputs[2];
    if (DLTensor* gmask = grad_inputs[3]; gmask != nullptr) Zero(gmask);
    for (DLTensor* t : {gq, gk, gv})
      if (t != nullptr) Zero(t);
    if (g == nullptr || (gq == nullptr && gk == nullptr && gv == nullptr))
      return;
    const double scale = AttentionScale(call, s);
    const double p = AttentionDropoutP(call);
    const std::vector<uint8_t> pad = AttentionPadding(s);
    ForFloat(call.inputs[0]->dtype, [&]<class T>(T) {
      const T* pq = sdk::Data<const T>(call.inputs[0]);
      const T* pk = sdk::Data<const T>(call.inputs[1]);
      const T* pv = sdk::Data<const T>(call.inputs[2]);
      const T* po = sdk::Data<const T>(outputs[0]);
      const T* plse = sdk::Data<const T>(outputs[1]);
      const T* pg = sdk::Data<const T>(g);
      T* dq_all = gq != nullptr ? sdk::Data<T>(gq) : nullptr;
      T* dk_all = gk != nullptr ? sdk::Data<T>(gk) : nullptr;
      T* dv_all = gv != nullptr ? sdk::Data<T>(gv) : nullptr;
      ForGemmItems(
          call, s.b * s.h, GemmParts(call, s.b * s.h),
          [&](int64_t, int64_t bh) {
            const T inf = std::numeric_limits<T>::infinity();
            std::vector<T> pt(static_cast<size_t>(kBr * kBc));  // P
            std::vector<T> pd(static_cast<size_t>(kBr * kBc));  // P * keep
            std::vector<T> dp(static_cast<size_t>(kBr * kBc));  // dP, then dS
            std::vector<T> keep(static_cast<size_t>(p > 0 ? kBr * kBc : 0));
            std::vector<T> di(kBr);
            const uint8_t* bpad =
                pad.empty() ? nullptr : pad.data() + bh / s.h * s.m;
            const T* q = pq + bh * s.n * s.d;
            const T* k = pk + bh * s.m * s.d;
            const T* v = pv + bh * s.m * s.dv;
            const T* o = po + bh * s.n * s.dv;
            const T* go = pg + bh * s.n * s.dv;
            T* dq = dq_all != nullptr ? dq_all + bh * s.n * s.d : nullptr;
            T* dk = dk_all != nullptr ? dk_all + bh * s.m * s.d : nullptr;
            T* dv = dv_all != nullptr ? dv_all + bh * s.m * s.dv : nullptr;
            for (int64_t n0 = 0; n0 < s.n; n0 += kBr) {
              const int64_t br = std::min(kBr, s.n - n0);
              for (int64_t i = 0; i < br; ++i) {  // D_i = rowsum(dO * O)
                T sum = 0;
                const T* gi = go + (n0 + i) * s.dv;
                const T* oi = o + (n0 + i) * s.dv;
                for (int64_t x = 0; x < s.dv; ++x) sum += gi[x] * oi[x];
                di[i] = sum;
              }
              const int64_t mend = s.causal ? std::min(s.m, n0 + br) : s.m;
              for (int64_t m0 = 0; m0 < mend; m0 += kBc) {
                const int64_t bc = std::min(kBc, s.m - m0);
                Gemm(false, true, br, bc, s.d, static_cast<T>(scale),
                     q + n0 * s.d, s.d, k + m0 * s.d, s.d, T(0), pt.data(),
                     kBc);
                bool any = false;
                for (int64_t i = 0; i < br; ++i) {
                  T* row = pt.data() + i * kBc;
                  const int64_t n = n0 + i;
                  const T row_lse = plse[bh * s.n + n];
                  const int64_t lim =
                      s.causal ? std::clamp<int64_t>(n + 1 - m0, 0, bc) : bc;
                  if (row_lse == -inf) {
                    std::fill(row, row + bc, T(0));
                  } else {
                    for (int64_t j = 0; j < bc; ++j)
                      if (j >= lim || (bpad != nullptr && bpad[m0 + j]))
                        row[j] = -inf;
                    ExpShift(row, bc, row_lse);
                    any = true;
                  }
                  T* prow = pd.data() + i * kBc;
                  if (p > 0) {
                    T* kr = keep.data() + i * kBc;
                    KeepScales(call, p,
                               static_cast<uint64_t>((bh * s.n + n) * s.m + m0),
                               bc, kr);
                    for (int64_t j = 0; j < bc; ++j) prow[j] = row[j] * kr[j];
                  } else {
                    std::copy(row, row + bc, prow);
                  }
                }
                if (!any) continue;
                // dV (bc, Dv) += P'^T dO
                if (dv != nullptr)
                  Gemm(true, false, bc, s.dv, br, T(1), pd.data(), kBc,
                       go + n0 * s.dv, s.dv, T(1), dv + m0 * s.dv, s.dv);
                if (dq == nullptr && dk == nullptr) continue;
                // dP (br, bc) = dO V^T, times keep; dS = P (dP - D_i).
                Gemm(false, true, br, bc, s.dv, T(1), go + n0 * s.dv, s.dv,
                     v + m0 * s.dv, s.dv, T(0), dp.data(), kBc);
                for (int64_t i = 0; i < br; ++i) {
                  T* drow = dp.data() + i * kBc;
                  const T* prow = pt.data() + i * kBc;
                  if (p > 0) {
                    const T* kr = keep.data() + i * kBc;
                    for (int64_t j = 0; j < bc; ++j) drow[j] *= kr[j];
                  }
                  for (int64_t j = 0; j < bc; ++j)
                    drow[j] = prow[j] * (drow[j] - di[i]);
                }
                // dQ (br, D) += scale dS K; dK (bc, D) += scale dS^T Q.
                if (dq != nullptr)
                  Gemm(false, false, br, s.d, bc, static_cast<T>(scale),
                       dp.data(), kBc, k + m0 * s.d, s.d, T(1), dq + n0 * s.d,
                       s.d);
                if (dk != nullptr)
                  Gemm(true, false, bc, s.d, br, static_cast<T>(scale),
                       dp.data(), kBc, q + n0 * s.d, s.d, T(1), dk + m0 * s.d,
                       s.d);
              }
            }
          });
    });
  }
};

}  // namespace

void RegisterFlashAttention(sdk::Registry& registry) {
  registry.Add<FlashAttention>();
}

}  // namespace llmsys::cpu
