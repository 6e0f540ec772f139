// cuda/reductions.h — sum, mean and max over a set of dims, and the strided
// walk they share with the elementwise ops (broadcast forwards, gradients
// summed back over broadcast dims): the geometry and the launch plan as
// plain C++, so that the CPU-side tests check them, and the launchers.
//
// A walk is an iteration shape (at most 8 dims), which of its dims are
// reduced, and for up to three operands their element strides along each
// dim (0 along a broadcast dim). MakeReduceGeom drops size-1 dims and merges
// neighbours that every operand walks contiguously, leaving K outputs (the
// kept dims, row-major: output j is element j of a compact output) each
// reduced over R elements (the reduced dims, row-major).
//
//   const ReduceGeom g =
//       MakeReduceGeom(shape, reduced, {CompactStrides(shape)});
//   const ReducePlan p = PlanReduce(g, ReduceValueBytes(t, false), true);
//   *workspace = p.workspace;                                // in Infer
//   LaunchSum(t, x, out, g, p, /*mean=*/false, ws, stream);  // in Forward
//
// Determinism: the plan is a pure function of the geometry (and of whether
// a workspace may be used), and every plan sums in a fixed order: each
// thread adds its elements in increasing order, blocks combine threads in a
// fixed shared-memory tree, and a two-pass plan adds its per-split partials
// in split order. No atomics.
//
// Thread-safety: pure functions; launchers as in cuda/launch.h.
#ifndef LLMSYS_CUDA_REDUCTIONS_H_
#define LLMSYS_CUDA_REDUCTIONS_H_

#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "cuda/launch.h"

namespace llmsys::cuda {

inline constexpr int kMaxDims = 8;      // LLMSYS_MAX_NDIM
inline constexpr int kMaxOperands = 3;  // where: cond, a, b

// Dims walked row-major, and each operand's element stride along them.
struct StridedDims {
  int n = 0;
  int64_t size[kMaxDims] = {};
  int64_t stride[kMaxOperands][kMaxDims] = {};
};

// K outputs over the kept dims, each reducing R elements over the reduced
// dims (K or R may be 0; then the dims are not filled in).
struct ReduceGeom {
  StridedDims kept;
  StridedDims red;
  int64_t k = 1;
  int64_t r = 1;
};

// The strides (in elements) of a compact tensor of shape `in` broadcast to
// `out` (NumPy rules: aligned at the right, 0 along a dim where `in` has 1
// or no dim). `in` has at most out.size() dims.
inline std::vector<int64_t> BroadcastStrides(const std::vector<int64_t>& in,
                                             const std::vector<int64_t>& out) {
  std::vector<int64_t> s(out.size(), 0);
  const size_t lead = out.size() - in.size();
  int64_t compact = 1;
  for (size_t i = in.size(); i-- > 0;) {
    s[lead + i] = in[i] == 1 ? 0 : compact;
    compact *= in[i];
  }
  return s;
}

// The strides of a compact tensor of `shape` (0 along size-1 dims, which a
// walk skips).
inline std::vector<int64_t> CompactStrides(const std::vector<int64_t>& shape) {
  return BroadcastStrides(shape, shape);
}

// The walk over `shape` reducing the dims where `reduced` is true, for the
// operands whose strides (each shape.size() long, at most kMaxOperands of
// them) are given; the other operands' strides stay 0.
inline ReduceGeom MakeReduceGeom(
    const std::vector<int64_t>& shape, const std::vector<bool>& reduced,
    const std::vector<std::vector<int64_t>>& strides) {
  ReduceGeom g;
  for (size_t d = 0; d < shape.size(); ++d)
    (reduced[d] ? g.r : g.k) *= shape[d];
  if (g.k == 0 || g.r == 0) return g;
  const size_t ops = std::min<size_t>(strides.size(), kMaxOperands);
  int last = -1;  // the list the previous walked dim went to: 0 kept, 1 red
  for (size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] == 1) continue;
    const int kind = reduced[d] ? 1 : 0;
    StridedDims& dims = kind == 1 ? g.red : g.kept;
    bool merge = last == kind;
    for (size_t o = 0; merge && o < ops; ++o)
      merge = dims.stride[o][dims.n - 1] == strides[o][d] * shape[d];
    if (merge) {
      dims.size[dims.n - 1] *= shape[d];
      for (size_t o = 0; o < ops; ++o)
        dims.stride[o][dims.n - 1] = strides[o][d];
    } else {
      dims.size[dims.n] = shape[d];
      for (size_t o = 0; o < ops; ++o) dims.stride[o][dims.n] = strides[o][d];
      ++dims.n;
    }
    last = kind;
  }
  return g;
}

// The walk of an elementwise map over `shape` (nothing reduced): output j
// is element j of a compact output, operand o sits at the offsets its
// strides give.
inline StridedDims MakeMapDims(
    const std::vector<int64_t>& shape,
    const std::vector<std::vector<int64_t>>& strides) {
  return MakeReduceGeom(shape, std::vector<bool>(shape.size(), false), strides)
      .kept;
}

// How a reduction runs:
//   kNone   K == 0: nothing to write;
//   kThread R <= kReduceThreadMaxR (R == 0 and R == 1 included): a thread
//           per output adds its R elements in order;
//   kRow    the innermost walked dim is reduced: a block per (output, split)
//           walks the split's elements with stride blockDim (coalesced),
//           then a shared-memory tree;
//   kCol    the innermost walked dim is kept: a block per (tile of `width`
//           neighbouring outputs, split), threads/width row groups each
//           adding every (threads/width)-th element, then a tree over the
//           row groups.
// A split plan (splits > 1) writes partials (K, splits) into the workspace
// and a second kernel adds each output's partials in split order.
enum class ReduceKind : int { kNone = 0, kThread, kRow, kCol };

struct ReducePlan {
  ReduceKind kind = ReduceKind::kNone;
  int threads = 0;       // block size (a power of two for kRow and kCol)
  int width = 1;         // kCol: outputs per block
  int64_t tiles = 0;     // kRow, kCol: blocks per split
  int64_t splits = 1;    // kRow, kCol: the reduced range cut in this many
  int64_t chunk = 0;     // reduced elements per split
  int64_t blocks = 0;    // first pass grid (a block loop covers the rest)
  size_t workspace = 0;  // bytes of partials, K * splits * value bytes
};

inline constexpr int64_t kReduceThreadMaxR = 16;
inline constexpr int64_t kReduceTargetBlocks = 1024;  // blocks that fill a GPU
inline constexpr int64_t kReduceMaxSplits = 1024;
inline constexpr int64_t kReduceMaxGrid = 65535 * 8;
inline constexpr int kReduceRowMaxThreads = 512;
inline constexpr int kReduceColThreads = 256;
inline constexpr int kReducePartialThreads = 128;

// The smallest power of two >= n (1 for n <= 1).
inline int64_t Pow2Ceil(int64_t n) {
  int64_t p = 1;
  while (p < n) p *= 2;
  return p;
}

// The plan for `g` whose partial values take `value_bytes` each; without
// `allow_split` (no workspace) always one pass.
inline ReducePlan PlanReduce(const ReduceGeom& g, int value_bytes,
                             bool allow_split) {
  ReducePlan p;
  if (g.k == 0) return p;
  if (g.r <= kReduceThreadMaxR) {
    const GridPlan e = ElementwisePlan(g.k);
    p.kind = ReduceKind::kThread;
    p.threads = e.threads;
    p.blocks = e.blocks;
    p.tiles = g.k;
    p.chunk = g.r;
    return p;
  }
  // R > 16: at least one reduced dim of size > 1 was walked. The operand 0
  // (the tensor reduced, compact) has stride 1 along the innermost dim.
  const bool row = g.kept.n == 0 || g.red.stride[0][g.red.n - 1] <
                                        g.kept.stride[0][g.kept.n - 1];
  int64_t min_chunk = 0;
  if (row) {
    p.kind = ReduceKind::kRow;
    p.tiles = g.k;
    min_chunk = 4096;
  } else {
    p.kind = ReduceKind::kCol;
    const int64_t kin = g.kept.size[g.kept.n - 1];
    p.width = static_cast<int>(std::min<int64_t>(32, Pow2Ceil(kin)));
    p.threads = kReduceColThreads;
    p.tiles = (g.k / kin) * ((kin + p.width - 1) / p.width);
    min_chunk = int64_t{kReduceColThreads / p.width} * 16;
  }
  int64_t splits = 1;
  if (allow_split && p.tiles < kReduceTargetBlocks / 2) {
    splits = std::min({(kReduceTargetBlocks + p.tiles - 1) / p.tiles,
                       (g.r + min_chunk - 1) / min_chunk, kReduceMaxSplits});
    splits = std::max<int64_t>(splits, 1);
  }
  p.chunk = (g.r + splits - 1) / splits;
  p.splits = (g.r + p.chunk - 1) / p.chunk;  // no empty split
  if (row)
    p.threads = static_cast<int>(std::clamp<int64_t>(
        Pow2Ceil((p.chunk + 7) / 8), 32, kReduceRowMaxThreads));
  p.blocks = std::min(p.tiles * p.splits, kReduceMaxGrid);
  p.workspace = p.splits > 1 ? static_cast<size_t>(g.k * p.splits) *
                                   static_cast<size_t>(value_bytes)
                             : 0;
  return p;
}

// The plan for `g` that splits only when `workspace` (workspace_bytes
// long; may be null) holds the split plan's partials: what an operator
// runs with the workspace its Infer asked for (PlanReduce(g, ..., true)),
// or one pass where the host passed none (a backward without its inputs).
inline ReducePlan PlanReduceWithin(const ReduceGeom& g, int value_bytes,
                                   const void* workspace,
                                   size_t workspace_bytes) {
  const ReducePlan split = PlanReduce(g, value_bytes, true);
  if (split.workspace == 0 ||
      (workspace != nullptr && workspace_bytes >= split.workspace))
    return split;
  return PlanReduce(g, value_bytes, false);
}

// Bytes of one partial: the accumulator (float, double for kF64) for sums,
// an accumulator and an int64 index (16 bytes) for max.
inline int ReduceValueBytes(DType t, bool arg_max) {
  if (arg_max) return 16;
  return t == DType::kF64 ? 8 : 4;
}

// ---- the ops ----

// out (K) = the sum (mean: divided by R; 0/0 is NaN) of x over the reduced
// dims of `g` (x is operand 0). `workspace` holds plan.workspace bytes.
cudaError_t LaunchSum(DType t, const void* x, void* out, const ReduceGeom& g,
                      const ReducePlan& plan, bool mean, void* workspace,
                      cudaStream_t stream);

// gx (n) = g broadcast to x's shape, divided by `divisor` (R for mean, 1
// for sum): `dims` walks x's shape with g's strides as operand 0.
cudaError_t LaunchSumBackward(DType t, const void* g, void* gx,
                              const StridedDims& dims, int64_t n,
                              double divisor, cudaStream_t stream);

// out (K) = the maximum of x over the reduced dims: the first NaN when a
// group has one, else the first maximal element (R >= 1).
cudaError_t LaunchMax(DType t, const void* x, void* out, const ReduceGeom& g,
                      const ReducePlan& plan, void* workspace,
                      cudaStream_t stream);

// gx (n, x's shape) = g[j] at the element LaunchMax picks for output j, 0
// elsewhere (all 0 when g is null).
cudaError_t LaunchMaxBackward(DType t, const void* x, const void* g, void* gx,
                              int64_t n, const ReduceGeom& geom,
                              const ReducePlan& plan, void* workspace,
                              cudaStream_t stream);

// Sets `bytes` bytes at p to zero (+0.0 in every float dtype).
cudaError_t LaunchZero(void* p, int64_t bytes, cudaStream_t stream);

}  // namespace llmsys::cuda

#endif  // LLMSYS_CUDA_REDUCTIONS_H_
