// attention.blas: scaled dot-product attention per (batch, head) on GEMMs:
// S = scale Q K^T, a masked softmax per row (the saved lse is its
// log-sum-exp), dropout on the probabilities, O = P V. Backward recomputes P
// from the saved lse and runs four more GEMMs (dV = P^T dO, dP = dO V^T,
// dQ = scale dS K, dK = scale dS^T Q). Causal attention runs them in
// 64-row blocks that skip the fully masked ones. Masks and dropout follow the
// reference exactly: causal lets query n see keys m <= n, a query with every
// key masked gets out 0 and lse -inf, and probability (b, h, n, m) is kept
// iff llmsys_random_uniform(seed, offset, its row-major index) >= p.
//
// attention.materialized is the same arithmetic holding the whole
// (B, H, N, M) score, probability and gradient tensors at once, as the
// textbook algorithm and an unfused framework do: the memory baseline that
// `llmsys bench attention` sets attention.blas (one (N, M) buffer reused per
// head) and attention.flash (tiles only) against.
#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "plugins/operators/cpu/attention_common.h"

namespace llmsys::cpu {
namespace {

// One (b, h)'s view of the masks: which keys row n may attend.
struct RowMask {
  const uint8_t* pad;  // (M): 1 = masked, or nullptr when no mask
  bool causal;
  int64_t m;
  // Keys [0, Limit(n)) may be allowed; beyond are masked.
  int64_t Limit(int64_t n) const { return causal ? std::min(n + 1, m) : m; }
};

// Causal attention runs in blocks of this many query rows (and keys): rows
// [r0, r1) need keys [0, r1) only, and keys [c0, c1) reach rows [c0, N)
// only, so the GEMMs skip the masked upper triangle's whole blocks (for
// N = 128, a quarter of the work; for long N, nearly half).
constexpr int64_t kCausalBlock = 64;

// The block size: kCausalBlock when causal, else one block of everything.
int64_t RowBlock(const AttentionDims& s) {
  return s.causal ? kCausalBlock : std::max<int64_t>({s.n, s.m, 1});
}

// Keys that rows before r1 may see.
int64_t KeyLimit(const AttentionDims& s, int64_t r1) {
  return s.causal ? std::min(r1, s.m) : s.m;
}

// The first row that may see key c0.
int64_t FirstRow(const AttentionDims& s, int64_t c0) {
  return s.causal ? std::min(c0, s.n) : 0;
}

// row[0, lim) holds scores; masked entries (pad) become -inf, and returns
// whether any key is allowed.
template <class T>
bool MaskRow(T* row, int64_t lim, const uint8_t* pad) {
  if (pad == nullptr) return lim > 0;
  bool any = false;
  for (int64_t j = 0; j < lim; ++j) {
    if (pad[j]) row[j] = -std::numeric_limits<T>::infinity();
    any |= !pad[j];
  }
  return any;
}

// P row from scores: exp(s - shift) over [0, lim), scaled by `mul`; zeros
// beyond. Returns the sum of the exps (before `mul`).
template <class T>
LLMSYS_CPU_KERNEL T ExpRow(T* row, int64_t lim, int64_t m, T shift) {
  T sum = 0;
  for (int64_t j = 0; j < lim; ++j) row[j] = Exp(row[j] - shift);
#pragma omp simd reduction(+ : sum)
  for (int64_t j = 0; j < lim; ++j) sum += row[j];
  for (int64_t j = lim; j < m; ++j) row[j] = T(0);
  return sum;
}

template <class T>
LLMSYS_CPU_KERNEL void ScaleRow(T* row, int64_t n, T s) {
  for (int64_t j = 0; j < n; ++j) row[j] *= s;
}

template <class T>
LLMSYS_CPU_KERNEL void MulRow(T* row, const T* by, int64_t n) {
  for (int64_t j = 0; j < n; ++j) row[j] *= by[j];
}

// dS = P (dP - sum(P dP)) in place of dp.
template <class T>
LLMSYS_CPU_KERNEL void SoftmaxGradRow(const T* p, T* dp, int64_t n) {
  T sum = 0;
#pragma omp simd reduction(+ : sum)
  for (int64_t j = 0; j < n; ++j) sum += p[j] * dp[j];
  for (int64_t j = 0; j < n; ++j) dp[j] = p[j] * (dp[j] - sum);
}

// kWhole: every (b, h)'s buffers at once (attention.materialized), or one
// (N, M) set reused per head (attention.blas).
template <bool kWhole>
class Attention : public sdk::Operator {
 public:
  static constexpr bool kHasBackward = true;
  static sdk::Info Describe() {
    if (kWhole)
      return {.id = "attention.materialized",
              .description =
                  "textbook attention: the whole (B, H, N, M) scores, "
                  "probabilities and their gradients held at once (the "
                  "memory baseline for attention.flash)",
              .op = "attention",
              .op_flags = LLMSYS_OP_BACKWARD_NEEDS_INPUTS |
                          LLMSYS_OP_BACKWARD_NEEDS_OUTPUTS,
              .priority = 10};
    return {.id = "attention.blas",
            .description =
                "scaled dot-product attention, materialized per (b, h) "
                "on OpenBLAS GEMMs with a vectorized masked softmax",
            .op = "attention",
            .op_flags = LLMSYS_OP_BACKWARD_NEEDS_INPUTS |
                        LLMSYS_OP_BACKWARD_NEEDS_OUTPUTS,
            .priority = 100};
  }
  explicit Attention(const sdk::Params&) {}

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
      const int64_t nm = s.n * s.m, parts = GemmParts(call, s.b * s.h);
      const int64_t rb = RowBlock(s);
      std::vector<T> all_probs(
          static_cast<size_t>((kWhole ? s.b * s.h : parts) * nm));
      std::vector<T> all_keep(static_cast<size_t>(p > 0 ? parts * s.m : 0));
      ForGemmItems(call, s.b * s.h, parts, [&](int64_t part, int64_t bh) {
        const int64_t b = bh / s.h;
        T* const probs = all_probs.data() + (kWhole ? bh : part) * nm;
        T* const keep = p > 0 ? all_keep.data() + part * s.m : nullptr;
        const RowMask rm{pad.empty() ? nullptr : pad.data() + b * s.m, s.causal,
                         s.m};
        const T* q = pq + bh * s.n * s.d;
        const T* k = pk + bh * s.m * s.d;
        for (int64_t r0 = 0; r0 < s.n; r0 += rb) {
          // Rows [r0, r1) see keys [0, kl) at most.
          const int64_t r1 = std::min(s.n, r0 + rb), kl = KeyLimit(s, r1);
          T* block = probs + r0 * s.m;
          // S = scale Q K^T (r1 - r0, kl)
          Gemm(false, true, r1 - r0, kl, s.d, static_cast<T>(scale),
               q + r0 * s.d, s.d, k, s.d, T(0), block, s.m);
          for (int64_t n = r0; n < r1; ++n) {
            T* row = probs + n * s.m;
            const int64_t lim = rm.Limit(n);
            const int64_t index = bh * s.n + n;  // in (B, H, N)
            if (!MaskRow(row, lim, rm.pad)) {
              std::fill(row, row + s.m, T(0));
              lse[index] = -std::numeric_limits<T>::infinity();
              continue;
            }
            const T mx = RowMax(row, lim);
            const T sum = ExpRow(row, lim, s.m, mx);
            lse[index] = mx + static_cast<T>(std::log(sum));
            ScaleRow(row, lim, T(1) / sum);
            if (p > 0) {
              KeepScales(call, p, static_cast<uint64_t>(index * s.m), s.m,
                         keep);
              MulRow(row, keep, lim);
            }
          }
          // O = P V (r1 - r0, Dv)
          Gemm(false, false, r1 - r0, s.dv, kl, T(1), block, s.m,
               pv + bh * s.m * s.dv, s.dv, T(0), out + (bh * s.n + r0) * s.dv,
               s.dv);
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
    if (g == nullptr) {
      for (DLTensor* t : {gq, gk, gv})
        if (t != nullptr) Zero(t);
      return;
    }
    const double scale = AttentionScale(call, s);
    const double p = AttentionDropoutP(call);
    const std::vector<uint8_t> pad = AttentionPadding(s);
    ForFloat(call.inputs[0]->dtype, [&]<class T>(T) {
      const T* pq = sdk::Data<const T>(call.inputs[0]);
      const T* pk = sdk::Data<const T>(call.inputs[1]);
      const T* pv = sdk::Data<const T>(call.inputs[2]);
      const T* plse = sdk::Data<const T>(outputs[1]);
      const T* pg = sdk::Data<const T>(g);
      const size_t nm = static_cast<size_t>(s.n * s.m);
      const int64_t parts = GemmParts(call, s.b * s.h), rb = RowBlock(s);
      const size_t whole = static_cast<size_t>(kWhole ? s.b * s.h : parts) * nm;
      std::vector<T> all_probs(whole), all_dp(whole);  // P; dP, then dS
      std::vector<T> all_dropped(p > 0 ? whole : 0);   // P * keep / (1 - p)
      std::vector<T> all_keep(p > 0 ? whole : 0);
      ForGemmItems(call, s.b * s.h, parts, [&](int64_t part, int64_t bh) {
        const int64_t b = bh / s.h;
        const RowMask rm{pad.empty() ? nullptr : pad.data() + b * s.m, s.causal,
                         s.m};
        const size_t at = static_cast<size_t>(kWhole ? bh : part) * nm;
        T* const probs = all_probs.data() + at;
        T* const dp = all_dp.data() + at;
        T* const dropped = p > 0 ? all_dropped.data() + at : nullptr;
        T* const keep = p > 0 ? all_keep.data() + at : nullptr;
        const T* q = pq + bh * s.n * s.d;
        const T* k = pk + bh * s.m * s.d;
        const T* v = pv + bh * s.m * s.dv;
        const T* go = pg + bh * s.n * s.dv;
        const T* pp = p > 0 ? dropped : probs;  // P' = P * keep / (1 - p)
        const bool grad_qk = gq != nullptr || gk != nullptr;
        for (int64_t r0 = 0; r0 < s.n; r0 += rb) {
          const int64_t r1 = std::min(s.n, r0 + rb), kl = KeyLimit(s, r1);
          // P (r1 - r0, kl), recomputed from the saved lse.
          Gemm(false, true, r1 - r0, kl, s.d, static_cast<T>(scale),
               q + r0 * s.d, s.d, k, s.d, T(0), probs + r0 * s.m, s.m);
          for (int64_t n = r0; n < r1; ++n) {
            T* row = probs + n * s.m;
            const int64_t lim = rm.Limit(n);
            const int64_t index = bh * s.n + n;
            const T row_lse = plse[index];
            if (row_lse == -std::numeric_limits<T>::infinity() ||
                !MaskRow(row, lim, rm.pad)) {
              std::fill(row, row + s.m, T(0));
            } else {
              ExpRow(row, lim, s.m, row_lse);
            }
            if (p > 0) {
              T* kr = keep + n * s.m;
              KeepScales(call, p, static_cast<uint64_t>(index * s.m), s.m, kr);
              T* dr = dropped + n * s.m;
              for (int64_t j = 0; j < s.m; ++j) dr[j] = row[j] * kr[j];
            }
          }
          if (!grad_qk) continue;
          // dP (r1 - r0, kl) = dO V^T, times keep; then dS = P (dP -
          // rowsum(P dP)), 0 where P is.
          T* dblock = dp + r0 * s.m;
          Gemm(false, true, r1 - r0, kl, s.dv, T(1), go + r0 * s.dv, s.dv, v,
               s.dv, T(0), dblock, s.m);
          for (int64_t n = r0; n < r1; ++n) {
            if (p > 0) MulRow(dp + n * s.m, keep + n * s.m, kl);
            SoftmaxGradRow(probs + n * s.m, dp + n * s.m, kl);
          }
          // dQ (r1 - r0, D) = scale dS K
          if (gq != nullptr)
            Gemm(false, false, r1 - r0, s.d, kl, static_cast<T>(scale), dblock,
                 s.m, k, s.d, T(0), sdk::Data<T>(gq) + (bh * s.n + r0) * s.d,
                 s.d);
        }
        // Keys [c0, c1) are seen by rows [FirstRow(c0), N) only, and no row
        // sees a key at or past KeyLimit(N): their dV and dK rows are 0, and
        // the GEMMs never read the dS columns no row block wrote.
        const int64_t seen = KeyLimit(s, s.n);
        T* const pgv =
            gv != nullptr ? sdk::Data<T>(gv) + bh * s.m * s.dv : nullptr;
        T* const pgk =
            gk != nullptr ? sdk::Data<T>(gk) + bh * s.m * s.d : nullptr;
        if (pgv != nullptr)
          std::fill(pgv + seen * s.dv, pgv + s.m * s.dv, T(0));
        if (pgk != nullptr) std::fill(pgk + seen * s.d, pgk + s.m * s.d, T(0));
        for (int64_t c0 = 0; c0 < seen; c0 += rb) {
          const int64_t c1 = std::min(seen, c0 + rb), r0 = FirstRow(s, c0);
          // dV (c1 - c0, Dv) = P'^T dO
          if (pgv != nullptr)
            Gemm(true, false, c1 - c0, s.dv, s.n - r0, T(1), pp + r0 * s.m + c0,
                 s.m, go + r0 * s.dv, s.dv, T(0), pgv + c0 * s.dv, s.dv);
          // dK (c1 - c0, D) = scale dS^T Q
          if (pgk != nullptr)
            Gemm(true, false, c1 - c0, s.d, s.n - r0, static_cast<T>(scale),
                 dp + r0 * s.m + c0, s.m, q + r0 * s.d, s.d, T(0),
                 pgk + c0 * s.d, s.d);
        }
      });
    });
  }
};

}  // namespace

void RegisterAttention(sdk::Registry& registry) {
  registry.Add<Attention<false>>();
  registry.Add<Attention<true>>();
}

}  // namespace llmsys::cpu
