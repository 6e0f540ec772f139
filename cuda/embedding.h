// cuda/embedding.h — embedding of llmsys.cuda: a row gather forward and a
// deterministic scatter-add backward, with their launch planning as plain
// C++.
//
// Forward: out (N, C) row p = weight (V, C) row indices[p]. The plugin
// cannot read the indices on the host (GPU memory, no synchronization), so
// an index outside [0, V) cannot be reported; it yields a row of zeros and
// never reads outside weight, and backward gives it no gradient.
//
// Backward, deterministic without atomics: the positions are sorted by
// (row, position) — keys (row << 32 | p), unique, bitonic-sorted in the
// workspace (a shared-memory tile sort, then global steps and shared-memory
// merges for the larger stages) — each row's run [start, end) in the sorted
// keys is found by its boundaries, and one block per row adds the run's
// gradient rows in position order (the reference's order) and writes the
// whole weight row, zero where the row was never indexed, so no separate
// zero fill. For GPT-2 shapes (N = 8192, V = 50257, C = 768) the sort is six
// launches over 64 KiB and the gather writes the (V, C) gradient once at
// full bandwidth plus reads the (N, C) gradient once: about the cost of the
// zero fill an atomicAdd scatter needs anyway, with a fixed summation order.
//
//   const EmbeddingGradPlan p = PlanEmbeddingGrad(n, v);  // workspace bytes
//   LaunchEmbeddingBackward(t, it, g, indices, gw, n, v, c, p, ws, stream);
//
// Thread-safety: pure functions; launchers as in cuda/launch.h.
#ifndef LLMSYS_CUDA_EMBEDDING_H_
#define LLMSYS_CUDA_EMBEDDING_H_

#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "cuda/launch.h"

#if defined(__CUDACC__)
#define LLMSYS_CUDA_HOST_DEVICE __host__ __device__
#else
#define LLMSYS_CUDA_HOST_DEVICE
#endif

namespace llmsys::cuda {

// The index dtype: int32 or int64.
enum class IndexType : int { kI32 = 0, kI64 };

// Positions and vocabulary rows the backward's 32-bit key halves hold.
inline constexpr int64_t kEmbeddingMaxCount = 0x7fffffff;
// Keys sorted per block in shared memory (16 KiB), by kEmbeddingSortTile/2
// threads.
inline constexpr int64_t kEmbeddingSortTile = 2048;
inline constexpr int64_t kEmbeddingGatherBlocks = 4096;

// Threads of a block that walks a row of `c_packs` packs: a multiple of 32
// in [32, 256].
inline int EmbeddingThreads(int64_t c_packs) {
  return static_cast<int>(
      std::clamp<int64_t>((c_packs + 31) / 32 * 32, 32, 256));
}

// ---- the bitonic sort of the backward ----

// Compare-exchange pair t (in [0, m/2)) of step j pairs element
// BitonicLower(t, j) with the one j above it; in stage k the pair sorts
// ascending iff BitonicAscending(lower, k). (Shared by the kernels and the
// CPU tests.)
LLMSYS_CUDA_HOST_DEVICE inline int64_t BitonicLower(int64_t t, int64_t j) {
  return (t / j) * 2 * j + t % j;
}
LLMSYS_CUDA_HOST_DEVICE inline bool BitonicAscending(int64_t i, int64_t k) {
  return (i & k) == 0;
}

// One launch after the tile sort: a global step (k, j) for j >= tile, or
// the shared-memory merge of stage k (steps tile/2, ..., 1), with j == 0.
struct SortStep {
  int64_t k = 0;
  int64_t j = 0;
};

// The launches that finish sorting m keys (a power of two) whose tiles of
// `tile` keys (a power of two <= m) the tile sort has sorted (stages 2 ..
// tile, alternating direction by tile).
inline std::vector<SortStep> BitonicSteps(int64_t m, int64_t tile) {
  std::vector<SortStep> steps;
  for (int64_t k = 2 * tile; k <= m; k *= 2) {
    for (int64_t j = k / 2; j >= tile; j /= 2) steps.push_back({k, j});
    steps.push_back({k, 0});
  }
  return steps;
}

// The workspace of one backward: keys (M uint64) at 0, then start and end
// (V int32 each).
struct EmbeddingGradPlan {
  int64_t sort_size = 0;  // M: a power of two >= max(N, 2)
  int64_t tile = 0;       // min(M, kEmbeddingSortTile)
  size_t bounds_offset = 0;
  size_t workspace = 0;
  bool supported = true;  // N and V at most kEmbeddingMaxCount
};

inline EmbeddingGradPlan PlanEmbeddingGrad(int64_t n, int64_t v) {
  EmbeddingGradPlan p;
  if (n > kEmbeddingMaxCount || v > kEmbeddingMaxCount) {
    p.supported = false;
    return p;
  }
  int64_t m = 2;
  while (m < n) m *= 2;
  p.sort_size = m;
  p.tile = std::min(m, kEmbeddingSortTile);
  p.bounds_offset = static_cast<size_t>(m) * sizeof(uint64_t);
  p.workspace = p.bounds_offset + 2 * static_cast<size_t>(v) * sizeof(int32_t);
  return p;
}

// out (N, C) = weight (V, C) rows at indices (N); zero rows for indices out
// of [0, V).
cudaError_t LaunchEmbedding(DType t, IndexType it, const void* weight,
                            const void* indices, void* out, int64_t n,
                            int64_t v, int64_t c, cudaStream_t stream);

// gw (V, C) = the sum over positions p with indices[p] == row of g (N, C)
// row p, in position order; zero when g is null. `workspace` holds
// plan.workspace bytes (not needed when g is null or N is 0).
cudaError_t LaunchEmbeddingBackward(DType t, IndexType it, const void* g,
                                    const void* indices, void* gw, int64_t n,
                                    int64_t v, int64_t c,
                                    const EmbeddingGradPlan& plan,
                                    void* workspace, cudaStream_t stream);

}  // namespace llmsys::cuda

#endif  // LLMSYS_CUDA_EMBEDDING_H_
