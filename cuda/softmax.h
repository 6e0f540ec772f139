// cuda/softmax.h — launchers of the softmax, log_softmax and cross_entropy
// kernels (softmax.cu) and their launch plans, for the llmsys.cuda plugin
// (plugins/cuda/softmax.cc) and its CPU-side tests.
//
// softmax along any dim sees x as (O, L, I) around the dim (outer, len,
// inner): with I == 1 the lanes are contiguous rows (rowops::PlanRows:
// one read into registers up to RowCacheLimit, else an online max/sum pass
// and an output pass); otherwise a block takes `tx` consecutive inner
// lanes of one outer index, `ty` threads per lane striding along L
// (coalesced over I), their partials combined in shared memory in order.
//
// cross_entropy: one online log-sum-exp pass per row for the loss; the
// 'mean' and 'sum' reductions add the per-row losses in a fixed order (P
// parts, then one block), the mean's count computed on the GPU.
//
//   LaunchSoftmaxForward(DType::kF32, /*log=*/false, x, y, O, L, I, stream);
//
// Thread-safety: pure functions; launchers as cuda/common.cuh says.
#ifndef LLMSYS_CUDA_SOFTMAX_H_
#define LLMSYS_CUDA_SOFTMAX_H_

#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "cuda/launch.h"
#include "cuda/rows.h"

namespace llmsys::cuda {

// Row arrays a thread caches (rowops::RowCacheElems): softmax forward and
// cross_entropy backward hold x, softmax backward holds y and g.
inline constexpr int kSoftmaxForwardArrays = 1;
inline constexpr int kSoftmaxBackwardArrays = 2;

inline rowops::RowPlan SoftmaxRowsPlan(int64_t rows, int64_t cols, DType t,
                                       bool aligned, bool backward) {
  return rowops::PlanRows(
      rows, cols, DTypeBytes(t), aligned,
      backward ? kSoftmaxBackwardArrays : kSoftmaxForwardArrays);
}

// A softmax along a dim that is not the last (I > 1): blocks of 256
// threads, `tx` (a power of two, at most 32) consecutive inner lanes times
// `ty` = 256 / tx threads along L. A block task is one outer index and one
// tile of tx lanes: O * tiles tasks, at most rowops::kRowMaxBlocks blocks.
inline constexpr int kStridedThreads = 256;
struct StridedPlan {
  int tx = 32;
  int ty = 8;
  int64_t tiles = 1;  // tiles of tx lanes per outer index
  int64_t blocks = 1;
};

inline StridedPlan PlanStrided(int64_t outer, int64_t inner) {
  StridedPlan p;
  p.tx = 1;
  while (p.tx < 32 && p.tx < inner) p.tx *= 2;
  p.ty = kStridedThreads / p.tx;
  p.tiles = (inner + p.tx - 1) / p.tx;
  p.blocks = std::clamp<int64_t>(outer * p.tiles, 1, rowops::kRowMaxBlocks);
  return p;
}

// y = softmax (log: log_softmax) of x along L, x seen as (O, L, I).
cudaError_t LaunchSoftmaxForward(DType t, bool log,
                                 const void* x,  // (O, L, I)
                                 void* y,        // (O, L, I)
                                 int64_t outer, int64_t len, int64_t inner,
                                 cudaStream_t stream);

// dx from the forward output y and the incoming gradient g (null: zero):
//   softmax:     dx = y * (g - sum_L(g * y))
//   log_softmax: dx = g - exp(y) * sum_L(g)
cudaError_t LaunchSoftmaxBackward(DType t, bool log,
                                  const void* y,  // (O, L, I)
                                  const void* g,  // (O, L, I) or null
                                  void* dx,       // (O, L, I)
                                  int64_t outer, int64_t len, int64_t inner,
                                  cudaStream_t stream);

// ---- cross_entropy ----

enum class CeReduction : int { kMean = 0, kSum = 1, kNone = 2 };

// Rows per part of the loss reduction at least, parts at most; blocks of
// kCeReduceThreads.
inline constexpr int64_t kCeRowsPerPart = 2048;
inline constexpr int64_t kCeMaxParts = 1024;
inline constexpr int kCeReduceThreads = 256;

// The parts P of the loss sum: ceil(R / 2048) in [1, 1024], a function of
// R only (the sum's order is the same on every run).
inline int64_t CrossEntropyParts(int64_t rows) {
  return std::clamp<int64_t>((rows + kCeRowsPerPart - 1) / kCeRowsPerPart, 1,
                             kCeMaxParts);
}

// Workspace of cross_entropy, 0 for 'none'; else, in bytes:
//   [0, 8 P)             partial loss sums (double, P)
//   [8 P, 16 P)          partial non-ignored counts (double, P)
//   [16 P, 16 P + 8)     the count (double), for backward's 'mean'
//   [16 P + 8, ...)      the per-row losses (R, accumulation type)
inline size_t CrossEntropyWorkspaceBytes(int64_t rows, DType t, CeReduction r) {
  if (r == CeReduction::kNone) return 0;
  const int64_t acc = t == DType::kF64 ? 8 : 4;
  return static_cast<size_t>(8 * (2 * CrossEntropyParts(rows) + 1) +
                             rows * acc);
}

// Forward: one online log-sum-exp pass per row (rows of any length), a
// warp per row for short rows, a block per row otherwise.
inline rowops::RowPlan CrossEntropyForwardPlan(int64_t rows, int64_t classes,
                                               DType t, bool aligned) {
  return rowops::PlanRows(rows, classes, DTypeBytes(t), aligned, 1);
}
// Backward: the row in registers up to RowCacheLimit, else two passes.
inline rowops::RowPlan CrossEntropyBackwardPlan(int64_t rows, int64_t classes,
                                                DType t, bool aligned) {
  return rowops::PlanRows(rows, classes, DTypeBytes(t), aligned, 1);
}

// loss per row, with lse the row's log-sum-exp and eps the smoothing:
//   (1 - eps) * (lse - x[t]) + eps * (lse - mean_v x[v])  (eps == 0: the
//   first term only), 0 where t == ignore_index, NaN where t is outside
//   [0, V) (the host cannot check targets on the GPU). `loss` is (R) for
//   'none', () for 'sum' and 'mean' (mean over the non-ignored rows; NaN
//   when there are none). targets are int64 when targets64, else int32.
cudaError_t LaunchCrossEntropyForward(DType t,
                                      const void* logits,   // (R, V)
                                      const void* targets,  // (R)
                                      bool targets64,
                                      void* loss,  // (R) or ()
                                      int64_t rows, int64_t classes,
                                      int64_t ignore_index,
                                      double label_smoothing, CeReduction r,
                                      void* workspace, cudaStream_t stream);

// dlogits = s * (softmax(x) - eps / V - (1 - eps) * onehot(t)), s the row's
// upstream gradient (g[r] for 'none', g[0] otherwise, divided by the
// non-ignored count for 'mean'); 0 on ignored rows, NaN on rows whose
// target is out of range. g null: dlogits = 0.
cudaError_t LaunchCrossEntropyBackward(DType t,
                                       const void* logits,   // (R, V)
                                       const void* targets,  // (R)
                                       bool targets64,
                                       const void* g,  // (R), () or null
                                       void* dlogits,  // (R, V)
                                       int64_t rows, int64_t classes,
                                       int64_t ignore_index,
                                       double label_smoothing, CeReduction r,
                                       void* workspace, cudaStream_t stream);

}  // namespace llmsys::cuda

#endif  // LLMSYS_CUDA_SOFTMAX_H_
