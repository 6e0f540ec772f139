// cuda/gemm_simt.h — matmul.cuda and linear.cuda (plugins/cuda/
// gemm_simt.cc): row-major GEMMs on CUDA cores, no cuBLAS, so that they run
// on any GPU (a fallback below the cuBLASLt components) and in the CPU
// emulation of tests/cuda/emu (where a whole model trains on the emulated
// device).
//
// One kernel (cuda/gemm_simt.cu) computes, for i in [0, batch),
//   C_i (rows, cols) = alpha * op(X_i) (rows, inner) @ op(Y_i) (inner, cols)
//                      (+ beta * C_i) (+ bias (cols) on every row)
// with the operands of cuda/matmul.h's RowGemm: row-major, each possibly
// transposed, row strides ld*, batch strides stride_* (0: one matrix shared
// by every batch). A block of 16 x 16 threads owns a kTile x kTile tile of
// C (kTile 16 or 32, so a thread owns (kTile / 16)^2 outputs) and walks the
// inner dim kTile at a time through shared memory, accumulating in float
// (double for kF64) in inner order: deterministic, and correct at ragged
// edges (out-of-range elements load as zeros and are never stored). Blocks
// loop over batch x tiles, so any batch and size fits the grid.
//
// The matmul and linear plans (which GEMMs, the broadcast reductions, the
// workspace) are cuda/matmul.h's, shared with matmul.cublas; the sums over
// broadcast batch dims (and linear's bias gradient) run through
// LaunchSimtReduce, a fixed-order reduction (no atomics).
//
//   const SimtGemmPlan p = SimtGemmPlanOf(g.rows, g.cols, g.batch);
//   LLMSYS_CUDA_CHECK(call, LaunchSimtGemm(t, g, x, y, c, nullptr, 1.0, 0.0,
//                                          stream));
//
// Plain C++ (no CUDA syntax). Thread-safety: pure functions; launchers as
// in cuda/common.cuh.
#ifndef LLMSYS_CUDA_GEMM_SIMT_H_
#define LLMSYS_CUDA_GEMM_SIMT_H_

#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstdint>

#include "cuda/launch.h"
#include "cuda/matmul.h"

namespace llmsys::cuda {

// The GEMM's block: 16 x 16 threads (threadIdx.x = ly * 16 + lx).
constexpr int kSimtSide = 16;
constexpr int kSimtThreads = kSimtSide * kSimtSide;
// Blocks loop over the work beyond this many.
constexpr int64_t kSimtMaxBlocks = int64_t{65535} * 32;

// The launch of one (batched) GEMM.
struct SimtGemmPlan {
  int tile = 0;  // 16 or 32: C tile side and inner step of a block
  int64_t tiles_rows = 0, tiles_cols = 0;  // tiles per C matrix
  int64_t work = 0;    // batch * tiles_rows * tiles_cols (tiles in all)
  int64_t blocks = 0;  // grid (1-D); each block loops over the work
  int threads = kSimtThreads;
};

// 32 x 32 tiles (4 outputs per thread, half the shared-memory reads per
// multiply-add of 16 x 16), except where a side of C is at most 16, which a
// 32 tile would leave at least half idle. At least one block, so that a
// plan for an empty problem is still a valid launch shape (the launcher
// returns before launching it).
inline SimtGemmPlan SimtGemmPlanOf(int64_t rows, int64_t cols, int64_t batch) {
  SimtGemmPlan p;
  p.tile = rows <= 16 || cols <= 16 ? 16 : 32;
  p.tiles_rows = (std::max<int64_t>(rows, 0) + p.tile - 1) / p.tile;
  p.tiles_cols = (std::max<int64_t>(cols, 0) + p.tile - 1) / p.tile;
  p.work = std::max<int64_t>(batch, 0) * p.tiles_rows * p.tiles_cols;
  p.blocks = std::clamp<int64_t>(p.work, 1, kSimtMaxBlocks);
  return p;
}

// The reduction's block: 32 consecutive target elements x 8 parts, part p
// summing reduced items p, p + 8, ... in order, then the 8 partial sums
// added in part order: a fixed order whatever the launch.
constexpr int kSimtReduceCols = 32;
constexpr int kSimtReduceParts = 8;
constexpr int kSimtReduceThreads = kSimtReduceCols * kSimtReduceParts;

inline GridPlan SimtReducePlan(const BroadcastReduce& r) {
  const int64_t n = std::max<int64_t>(r.outer * r.mat, 0);
  return {std::clamp<int64_t>((n + kSimtReduceCols - 1) / kSimtReduceCols, 1,
                              kSimtMaxBlocks),
          kSimtReduceThreads};
}

// ---- launchers (cuda/gemm_simt.cu) ----

// c (batch, rows, cols as g says) = alpha * op(x) @ op(y) (+ beta * c when
// beta != 0; c is not read otherwise) (+ bias[col] when bias is not null).
// An empty inner dim gives the bias rows, or zeros. Returns at once when
// batch * rows * cols == 0.
cudaError_t LaunchSimtGemm(DType t, const RowGemm& g, const void* x,
                           const void* y, void* c, const void* bias,
                           double alpha, double beta, cudaStream_t stream);

// target (outer, mat) = the sums `spec` describes over work (cuda/matmul.h:
// BroadcastReduce), in float (double for kF64), rounded once. An empty sum
// gives zeros.
cudaError_t LaunchSimtReduce(DType t, void* target, const void* work,
                             const BroadcastReduce& spec, cudaStream_t stream);

// p (n) = 0.
cudaError_t LaunchSimtZero(DType t, void* p, int64_t n, cudaStream_t stream);

}  // namespace llmsys::cuda

#endif  // LLMSYS_CUDA_GEMM_SIMT_H_
