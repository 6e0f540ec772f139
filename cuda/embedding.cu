// cuda/embedding.cu — embedding forward (row gather) and its deterministic
// backward (sort positions by row, then a block per row adds its run); see
// cuda/embedding.h for the design.
//
// Letters: N positions (indices' elements), V vocabulary rows, C columns,
// W elements per 16-byte pack (kV), Cp = C / W packs per row, M keys sorted
// (a power of two >= N).
#include "cuda/common.cuh"
#include "cuda/embedding.h"
#include "cuda/reductions.h"

namespace llmsys::cuda {
namespace {

template <class T, int kV>
struct alignas(sizeof(T) * kV) Pack {
  T v[kV];
};

// Whether rows of c elements at a and b load as 16-byte packs of w.
bool PackOk(const void* a, const void* b, int64_t c, int w) {
  return reinterpret_cast<uintptr_t>(a) % 16 == 0 &&
         reinterpret_cast<uintptr_t>(b) % 16 == 0 && c % w == 0;
}

// The row of index value `idx`, or -1 outside [0, v).
__device__ __forceinline__ int64_t RowOf(int64_t idx, int64_t v) {
  return idx >= 0 && idx < v ? idx : -1;
}

// ---- forward ----

// out row p = weight row indices[p] (zeros for an index out of range);
// block b takes positions b, b + gridDim, ..., threads the packs of a row.
template <class T, class I, int kV>
__global__ void embedding_forward_kernel(const T* weight, const I* indices,
                                         T* out, int64_t n, int64_t v,
                                         int64_t c_packs) {
  using P = Pack<T, kV>;
  const P* pw = reinterpret_cast<const P*>(weight);  // (V, Cp)
  P* po = reinterpret_cast<P*>(out);                 // (N, Cp)
  for (int64_t p = blockIdx.x; p < n; p += gridDim.x) {
    const int64_t row = RowOf(static_cast<int64_t>(indices[p]), v);
    P* dst = po + p * c_packs;
    if (row >= 0) {
      const P* src = pw + row * c_packs;
      for (int64_t c = threadIdx.x; c < c_packs; c += blockDim.x)
        dst[c] = src[c];
    } else {
      P zero;
#pragma unroll
      for (int k = 0; k < kV; ++k) zero.v[k] = FromAcc<T>(Acc<T>(0));
      for (int64_t c = threadIdx.x; c < c_packs; c += blockDim.x) dst[c] = zero;
    }
  }
}

// ---- backward ----

// keys (M): position p < N gets (row << 32) | p, row 0xffffffff for an
// index out of range (after every real row); the padding p >= N gets
// UINT64_MAX (after every position).
template <class I>
__global__ void embedding_keys_kernel(const I* indices, uint64_t* keys,
                                      int64_t n, int64_t m, int64_t v) {
  LLMSYS_GRID_STRIDE_LOOP(p, m) {
    uint64_t key = ~uint64_t{0};
    if (p < n) {
      const int64_t row = RowOf(static_cast<int64_t>(indices[p]), v);
      const uint64_t r =
          row >= 0 ? static_cast<uint64_t>(row) : uint64_t{0xffffffffu};
      key = (r << 32) | static_cast<uint64_t>(p);
    }
    keys[p] = key;
  }
}

// Compare-exchange of s[i] and s[i + j] (local indices of a tile starting
// at global index `base`) in stage k.
__device__ __forceinline__ void CompareExchange(uint64_t* s, int64_t i,
                                                int64_t j, int64_t base,
                                                int64_t k) {
  const uint64_t lo = s[i], hi = s[i + j];
  if ((lo > hi) == BitonicAscending(base + i, k)) {
    s[i] = hi;
    s[i + j] = lo;
  }
}

// Sorts every tile of `tile` keys (blockDim = tile / 2) through stages
// 2 .. tile of the whole array's bitonic network (alternate tiles sort
// descending, as the network has them).
__global__ void bitonic_tile_sort_kernel(uint64_t* keys, int64_t tile) {
  __shared__ uint64_t s[kEmbeddingSortTile];  // (tile)
  const int64_t base = static_cast<int64_t>(blockIdx.x) * tile;
  const int t = threadIdx.x;
  s[t] = keys[base + t];
  s[t + blockDim.x] = keys[base + t + blockDim.x];
  __syncthreads();
  for (int64_t k = 2; k <= tile; k *= 2) {
    for (int64_t j = k / 2; j > 0; j /= 2) {
      CompareExchange(s, BitonicLower(t, j), j, base, k);
      __syncthreads();
    }
  }
  keys[base + t] = s[t];
  keys[base + t + blockDim.x] = s[t + blockDim.x];
}

// Steps tile/2, ..., 1 of stage k, in shared memory per tile.
__global__ void bitonic_tile_merge_kernel(uint64_t* keys, int64_t tile,
                                          int64_t k) {
  __shared__ uint64_t s[kEmbeddingSortTile];  // (tile)
  const int64_t base = static_cast<int64_t>(blockIdx.x) * tile;
  const int t = threadIdx.x;
  s[t] = keys[base + t];
  s[t + blockDim.x] = keys[base + t + blockDim.x];
  __syncthreads();
  for (int64_t j = tile / 2; j > 0; j /= 2) {
    CompareExchange(s, BitonicLower(t, j), j, base, k);
    __syncthreads();
  }
  keys[base + t] = s[t];
  keys[base + t + blockDim.x] = s[t + blockDim.x];
}

// One step (k, j >= tile) over all M keys in global memory.
__global__ void bitonic_step_kernel(uint64_t* keys, int64_t m, int64_t k,
                                    int64_t j) {
  LLMSYS_GRID_STRIDE_LOOP(t, m / 2) {
    const int64_t i = BitonicLower(t, j);
    const uint64_t lo = keys[i], hi = keys[i + j];
    if ((lo > hi) == BitonicAscending(i, k)) {
      keys[i] = hi;
      keys[i + j] = lo;
    }
  }
}

// start[row], end[row]: the run of `row` in the sorted keys (left 0, 0 for
// a row never indexed).
__global__ void embedding_bounds_kernel(const uint64_t* keys, int32_t* start,
                                        int32_t* end, int64_t n, int64_t v) {
  LLMSYS_GRID_STRIDE_LOOP(q, n) {
    const uint64_t row = keys[q] >> 32;
    if (row < static_cast<uint64_t>(v)) {
      if (q == 0 || (keys[q - 1] >> 32) != row)
        start[row] = static_cast<int32_t>(q);
      if (q + 1 == n || (keys[q + 1] >> 32) != row)
        end[row] = static_cast<int32_t>(q + 1);
    }
  }
}

// gw row r (every row: block b takes rows b, b + gridDim, ...) = the sum of
// g rows at the positions of r's run, in position order; threads take the
// packs of the row.
template <class T, int kV>
__global__ void embedding_grad_kernel(const T* g, const uint64_t* keys,
                                      const int32_t* start, const int32_t* end,
                                      T* gw, int64_t v, int64_t c_packs) {
  using P = Pack<T, kV>;
  using A = Acc<T>;
  const P* pg = reinterpret_cast<const P*>(g);  // (N, Cp)
  P* pw = reinterpret_cast<P*>(gw);             // (V, Cp)
  for (int64_t row = blockIdx.x; row < v; row += gridDim.x) {
    const int64_t q0 = start[row], q1 = end[row];
    P* dst = pw + row * c_packs;
    for (int64_t c = threadIdx.x; c < c_packs; c += blockDim.x) {
      A acc[kV];
#pragma unroll
      for (int k = 0; k < kV; ++k) acc[k] = A(0);
      for (int64_t q = q0; q < q1; ++q) {
        const int64_t p = static_cast<int64_t>(keys[q] & 0xffffffffu);
        const P gp = pg[p * c_packs + c];
#pragma unroll
        for (int k = 0; k < kV; ++k) acc[k] += ToAcc(gp.v[k]);
      }
      P out;
#pragma unroll
      for (int k = 0; k < kV; ++k) out.v[k] = FromAcc<T>(acc[k]);
      dst[c] = out;
    }
  }
}

template <class T, class I, int kV>
cudaError_t Forward(const void* weight, const void* indices, void* out,
                    int64_t n, int64_t v, int64_t c, cudaStream_t stream) {
  const int64_t c_packs = c / kV;
  const auto kernel = &embedding_forward_kernel<T, I, kV>;
  LLMSYS_LAUNCH(kernel, static_cast<unsigned>(std::min<int64_t>(n, 65535 * 8)),
                EmbeddingThreads(c_packs), 0, stream)
  (static_cast<const T*>(weight), static_cast<const I*>(indices),
   static_cast<T*>(out), n, v, c_packs);
  return cudaGetLastError();
}

template <class T, int kV>
cudaError_t Gather(const void* g, const uint64_t* keys, const int32_t* start,
                   const int32_t* end, void* gw, int64_t v, int64_t c,
                   cudaStream_t stream) {
  const int64_t c_packs = c / kV;
  const auto kernel = &embedding_grad_kernel<T, kV>;
  LLMSYS_LAUNCH(kernel,
                static_cast<unsigned>(std::min(v, kEmbeddingGatherBlocks)),
                EmbeddingThreads(c_packs), 0, stream)
  (static_cast<const T*>(g), keys, start, end, static_cast<T*>(gw), v, c_packs);
  return cudaGetLastError();
}

template <class I>
cudaError_t Keys(const void* indices, uint64_t* keys, int64_t n, int64_t m,
                 int64_t v, cudaStream_t stream) {
  const GridPlan plan = ElementwisePlan(m);
  LLMSYS_LAUNCH(embedding_keys_kernel<I>, static_cast<unsigned>(plan.blocks),
                plan.threads, 0, stream)
  (static_cast<const I*>(indices), keys, n, m, v);
  return cudaGetLastError();
}

}  // namespace

cudaError_t LaunchEmbedding(DType t, IndexType it, const void* weight,
                            const void* indices, void* out, int64_t n,
                            int64_t v, int64_t c, cudaStream_t stream) {
  if (n == 0 || c == 0) return cudaSuccess;
  cudaError_t e = cudaSuccess;
  LLMSYS_DISPATCH_FLOAT(t, {
    constexpr int kW = 16 / sizeof(T);
    const bool packed = PackOk(weight, out, c, kW);
    if (it == IndexType::kI32) {
      e = packed
              ? Forward<T, int32_t, kW>(weight, indices, out, n, v, c, stream)
              : Forward<T, int32_t, 1>(weight, indices, out, n, v, c, stream);
    } else {
      e = packed
              ? Forward<T, int64_t, kW>(weight, indices, out, n, v, c, stream)
              : Forward<T, int64_t, 1>(weight, indices, out, n, v, c, stream);
    }
  });
  return e;
}

cudaError_t LaunchEmbeddingBackward(DType t, IndexType it, const void* g,
                                    const void* indices, void* gw, int64_t n,
                                    int64_t v, int64_t c,
                                    const EmbeddingGradPlan& plan,
                                    void* workspace, cudaStream_t stream) {
  if (v == 0 || c == 0) return cudaSuccess;
  if (g == nullptr || n == 0)
    return LaunchZero(gw, v * c * DTypeBytes(t), stream);
  if (!plan.supported || workspace == nullptr) return cudaErrorInvalidValue;
  const int64_t m = plan.sort_size, tile = plan.tile;
  uint64_t* keys = static_cast<uint64_t*>(workspace);  // (M)
  int32_t* start = reinterpret_cast<int32_t*>(static_cast<char*>(workspace) +
                                              plan.bounds_offset);  // (V)
  int32_t* end = start + v;                                         // (V)
  cudaError_t e = it == IndexType::kI32
                      ? Keys<int32_t>(indices, keys, n, m, v, stream)
                      : Keys<int64_t>(indices, keys, n, m, v, stream);
  if (e != cudaSuccess) return e;
  // Sort: tiles in shared memory, then each larger stage's global steps and
  // its shared-memory merge.
  const unsigned tiles = static_cast<unsigned>(m / tile);
  const int sort_threads = static_cast<int>(tile / 2);
  LLMSYS_LAUNCH(bitonic_tile_sort_kernel, tiles, sort_threads, 0, stream)
  (keys, tile);
  for (const SortStep& s : BitonicSteps(m, tile)) {
    if (s.j > 0) {
      const GridPlan step = ElementwisePlan(m / 2);
      LLMSYS_LAUNCH(bitonic_step_kernel, static_cast<unsigned>(step.blocks),
                    step.threads, 0, stream)
      (keys, m, s.k, s.j);
    } else {
      LLMSYS_LAUNCH(bitonic_tile_merge_kernel, tiles, sort_threads, 0, stream)
      (keys, tile, s.k);
    }
  }
  e = cudaGetLastError();
  if (e != cudaSuccess) return e;
  // Runs: start and end of every row, 0 for rows never indexed.
  e = LaunchZero(start, 2 * v * static_cast<int64_t>(sizeof(int32_t)), stream);
  if (e != cudaSuccess) return e;
  const GridPlan bounds = ElementwisePlan(n);
  LLMSYS_LAUNCH(embedding_bounds_kernel, static_cast<unsigned>(bounds.blocks),
                bounds.threads, 0, stream)
  (keys, start, end, n, v);
  e = cudaGetLastError();
  if (e != cudaSuccess) return e;
  LLMSYS_DISPATCH_FLOAT(t, {
    constexpr int kW = 16 / sizeof(T);
    e = PackOk(g, gw, c, kW)
            ? Gather<T, kW>(g, keys, start, end, gw, v, c, stream)
            : Gather<T, 1>(g, keys, start, end, gw, v, c, stream);
  });
  return e;
}

}  // namespace llmsys::cuda
