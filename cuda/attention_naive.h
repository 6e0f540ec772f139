// cuda/attention_naive.h — attention.naive's launchers (cuda/
// attention_naive.cu): scaled dot-product attention written the plain way,
// the GPU baseline the fast kernels are compared with. Every score is
// materialized in a (B, H, N, M) workspace of the accumulation type (float,
// double for float64), one simple kernel per step, no cuBLAS and no tiling:
//
//   forward:  S = scale q k^T (masked), P = softmax(S) with its row lse,
//             P' = P * keep / (1 - p) (dropout), out = P' v;
//   backward: S and P again (from q, k and the masks, in the accumulation
//             type, without the saved lse),
//             dV = P'^T dO, dS = P * (dP - rowsum(P * dP)) with
//             dP = keep / (1 - p) * dO v^T, dQ = scale dS k, dK = scale dS^T q.
//
// Semantics are the reference's (plugins/operators/reference/attention.cc):
// key_padding_mask (B, M) non-zero = masked; causal lets query n see keys
// m <= n; a row with every key masked gives out 0 and lse -inf and no
// gradient; probability (b, h, n, m) is kept iff
// llmsys_random_uniform(seed, offset, i) >= p, i its row-major index in
// (B, H, N, M); NaN scores reach the outputs of their rows.
//
//   const size_t ws = NaiveAttentionWorkspaceBytes(DType::kF32, shape);
//   LaunchNaiveAttentionForward(DType::kF32, out, lse, q, k, v, mask,
//                               NaiveMask::kNone, shape, opts, ws_ptr, stream);
//
// Plain C++ (no CUDA syntax). Thread-safety: launchers may be called from
// any thread with its own stream.
#ifndef LLMSYS_CUDA_ATTENTION_NAIVE_H_
#define LLMSYS_CUDA_ATTENTION_NAIVE_H_

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include "cuda/launch.h"

namespace llmsys::cuda {

// The sizes: q (B, H, N, D), k (B, H, M, D), v (B, H, M, Dv).
struct NaiveAttentionShape {
  int64_t b = 0, h = 0, n = 0, m = 0, d = 0, dv = 0;
};

// The key padding mask's element type (kNone: no mask).
enum class NaiveMask : int { kNone = 0, kU8, kI32, kI64, kF32, kF64 };

// The attributes and the call's random stream.
struct NaiveAttentionOptions {
  bool causal = false;
  double scale = 1.0;      // already resolved (0 means 1/sqrt(D) upstream)
  double dropout_p = 0.0;  // in [0, 1]
  uint64_t seed = 0, offset = 0;
};

// The (B, H, N, M) score buffer, in float (double for kF64).
inline size_t NaiveAttentionWorkspaceBytes(DType t,
                                           const NaiveAttentionShape& s) {
  const int64_t n = s.b * s.h * s.n * s.m;
  return static_cast<size_t>(n) * (t == DType::kF64 ? 8 : 4);
}

// out (B, H, N, Dv), lse (B, H, N) in the accumulation type; workspace of
// NaiveAttentionWorkspaceBytes.
cudaError_t LaunchNaiveAttentionForward(
    DType t, void* out, void* lse, const void* q, const void* k, const void* v,
    const void* mask, NaiveMask mask_type, const NaiveAttentionShape& s,
    const NaiveAttentionOptions& o, void* workspace, cudaStream_t stream);

// grad_q (B, H, N, D), grad_k (B, H, M, D), grad_v (B, H, M, Dv), each
// nullptr when not wanted; grad_out (B, H, N, Dv), nullptr for a zero
// gradient (the wanted gradients are zeroed). Same workspace as forward.
cudaError_t LaunchNaiveAttentionBackward(
    DType t, void* grad_q, void* grad_k, void* grad_v, const void* grad_out,
    const void* q, const void* k, const void* v, const void* mask,
    NaiveMask mask_type, const NaiveAttentionShape& s,
    const NaiveAttentionOptions& o, void* workspace, cudaStream_t stream);

// Sets `bytes` bytes at `p` to zero (a float mask's zero gradient).
cudaError_t LaunchAttentionZero(void* p, int64_t bytes, cudaStream_t stream);

}  // namespace llmsys::cuda

#endif  // LLMSYS_CUDA_ATTENTION_NAIVE_H_
