// cuda/norms.h — launchers of the layer_norm and rms_norm kernels
// (norms.cu) and their launch plans, for the llmsys.cuda plugin
// (plugins/cuda/norms.cc) and its CPU-side tests.
//
// Rows are x's leading dims flattened (R), normalized over the last dim
// (C). Forward: one warp (C <= 32 * cache elements) or one block per row,
// the row read once into registers (C <= rowops::RowCacheLimit) or re-read per
// pass beyond that. Backward: dx per row from two row sums; the parameter
// gradients summed deterministically: block p of P sums rows
// [p R / P, (p + 1) R / P) in a fixed order into its own partial row of
// the workspace, then a second kernel adds the P partials in order.
//
//   const size_t ws = LayerNormWorkspaceBytes(rows, cols, t, true, true);
//   LaunchLayerNormForward(t, x, w, b, out, mean, rstd, rows, cols, eps, s);
//
// Thread-safety: pure functions; launchers as cuda/common.cuh says.
#ifndef LLMSYS_CUDA_NORMS_H_
#define LLMSYS_CUDA_NORMS_H_

#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "cuda/launch.h"
#include "cuda/rows.h"

namespace llmsys::cuda {

// Bytes of the accumulation type (float, double for kF64).
inline int NormAccBytes(DType t) { return t == DType::kF64 ? 8 : 4; }

// Row arrays a thread caches: forward holds x; backward holds x, g and
// the two parameter-gradient sums (rowops::RowCacheElems).
inline constexpr int kNormForwardArrays = 1;
inline constexpr int kNormBackwardArrays = 4;

inline rowops::RowPlan NormForwardPlan(int64_t rows, int64_t cols, DType t,
                                       bool aligned) {
  return rowops::PlanRows(rows, cols, DTypeBytes(t), aligned,
                          kNormForwardArrays);
}

// Rows per part at least (fewer parts: less partial-sum traffic), parts at
// most, and the most bytes the partial sums of one parameter take.
inline constexpr int64_t kNormMinRowsPerPart = 8;
inline constexpr int64_t kNormMaxParts = 2048;
inline constexpr int64_t kNormMaxPartialBytes = int64_t{16} << 20;

// The parts P of a backward call: 0 when there is nothing to sum (R or C
// is 0), else ceil(R / 8) clamped to [1, 2048] and to the workspace cap
// (many parts keep the GPU busy; their partial sums mostly stay in L2).
// A function of (R, C, dtype) only, so that the sums' order is the same
// on every run.
inline int64_t NormGradParts(int64_t rows, int64_t cols, DType t) {
  if (rows <= 0 || cols <= 0) return 0;
  const int64_t by_bytes =
      std::max<int64_t>(1, kNormMaxPartialBytes / (cols * NormAccBytes(t)));
  const int64_t want = (rows + kNormMinRowsPerPart - 1) / kNormMinRowsPerPart;
  return std::clamp<int64_t>(want, 1, std::min(kNormMaxParts, by_bytes));
}

struct NormBackwardPlan {
  rowops::RowPlan row;  // row.blocks == parts (block p sums part p)
  int64_t parts = 0;    // NormGradParts
};

inline NormBackwardPlan PlanNormBackward(int64_t rows, int64_t cols, DType t,
                                         bool aligned) {
  NormBackwardPlan p;
  p.row =
      rowops::PlanRows(rows, cols, DTypeBytes(t), aligned, kNormBackwardArrays);
  p.parts = NormGradParts(rows, cols, t);
  p.row.blocks = std::max<int64_t>(1, p.parts);
  return p;
}

// The second kernel: 8 columns per block of 256 threads, 32 threads per
// column adding every 32nd part, then one thread per column adding those
// 32 in order.
inline constexpr int kNormGradCols = 8;
inline GridPlan NormParamGradPlan(int64_t cols) {
  const int64_t tiles = (cols + kNormGradCols - 1) / kNormGradCols;
  return {std::clamp<int64_t>(tiles, 1, 65535), 256};
}

// Workspace of layer_norm: (P, C) partial sums (accumulation type) for
// dweight when it has a weight, then (P, C) for dbias when it has a bias.
inline size_t LayerNormWorkspaceBytes(int64_t rows, int64_t cols, DType t,
                                      bool has_weight, bool has_bias) {
  const int64_t n = (has_weight ? 1 : 0) + (has_bias ? 1 : 0);
  return static_cast<size_t>(n * NormGradParts(rows, cols, t) * cols *
                             NormAccBytes(t));
}
// Workspace of rms_norm: (P, C) partial sums for dweight.
inline size_t RmsNormWorkspaceBytes(int64_t rows, int64_t cols, DType t,
                                    bool has_weight) {
  return LayerNormWorkspaceBytes(rows, cols, t, has_weight, false);
}

// layer_norm forward: out = (x - mean) * rstd * weight + bias per row,
// rstd = 1 / sqrt(biased variance + eps); mean and rstd saved per row.
// weight and bias may be null (absent).
cudaError_t LaunchLayerNormForward(DType t,
                                   const void* x,       // (R, C)
                                   const void* weight,  // (C) or null
                                   const void* bias,    // (C) or null
                                   void* out,           // (R, C)
                                   void* mean,          // (R)
                                   void* rstd,          // (R)
                                   int64_t rows, int64_t cols, double eps,
                                   cudaStream_t stream);

// layer_norm backward from the saved mean and rstd. g null: the incoming
// gradient is zero (every gradient asked for is set to 0). dx, dweight,
// dbias null: not asked for. `workspace` holds LayerNormWorkspaceBytes(
// rows, cols, t, weight != null, had a bias) bytes.
cudaError_t LaunchLayerNormBackward(DType t,
                                    const void* x,       // (R, C)
                                    const void* weight,  // (C) or null
                                    const void* g,       // (R, C) or null
                                    const void* mean,    // (R)
                                    const void* rstd,    // (R)
                                    void* dx,            // (R, C) or null
                                    void* dweight,       // (C) or null
                                    void* dbias,         // (C) or null
                                    int64_t rows, int64_t cols, void* workspace,
                                    cudaStream_t stream);

// rms_norm forward: out = x * rstd * weight, rstd = 1 / sqrt(mean(x^2) +
// eps) per row, saved.
cudaError_t LaunchRmsNormForward(DType t,
                                 const void* x,       // (R, C)
                                 const void* weight,  // (C) or null
                                 void* out,           // (R, C)
                                 void* rstd,          // (R)
                                 int64_t rows, int64_t cols, double eps,
                                 cudaStream_t stream);

// rms_norm backward from the saved rstd; as LaunchLayerNormBackward, with
// RmsNormWorkspaceBytes(rows, cols, t, weight != null) of workspace.
cudaError_t LaunchRmsNormBackward(DType t,
                                  const void* x,       // (R, C)
                                  const void* weight,  // (C) or null
                                  const void* g,       // (R, C) or null
                                  const void* rstd,    // (R)
                                  void* dx,            // (R, C) or null
                                  void* dweight,       // (C) or null
                                  int64_t rows, int64_t cols, void* workspace,
                                  cudaStream_t stream);

}  // namespace llmsys::cuda

#endif  // LLMSYS_CUDA_NORMS_H_
