// cuda/flash_attention.h — the launchers of attention.flash on CUDA
// (FlashAttention-2: a tiled online-softmax forward and a recomputing
// backward, in cuda/flash_attention.cu) and their launch plans, as plain
// functions of the problem size so that the CPU-side tests check them.
//
// Letters as in the op contract (abi/llmsys/ops.h): B batch, H heads, N
// queries, M keys, D the head size of q and k, Dv that of v.
//
//   const FlashAttentionShape s{b, h, n, m, d, dv};
//   if (const char* why = FlashAttentionUnsupported(t, s, choice)) ...;
//   LLMSYS_CUDA_CHECK(call, LaunchFlashAttentionForward(
//       t, out, lse, q, k, v, mask, s, options, stream));
//
// Two kernels compute every pass: a SIMT kernel (float or double
// accumulation, any D and Dv up to kFlashMaxHeadDim, every dtype) and, for
// bfloat16 and float16 with D = Dv in {64, 128}, a tensor-core kernel
// (mma.sync m16n8k16, cuda/mma.cuh; sm_80 and later, which the build
// targets). FlashAttentionPlanFor says which one runs (the component's
// `kernel` parameter may force one), with its tile sizes, threads and
// shared memory; every plan stays within kFlashMaxSmemBytes (the opt-in
// limit of every GPU from sm_80 on), and the launchers raise a kernel's
// dynamic shared-memory limit with cudaFuncSetAttribute when its plan needs
// more than the default 48 KiB. The tensor-core kernels read their tensors
// 16 bytes at a time: a launcher given a tensor that does not start 16-byte
// aligned runs the SIMT kernel of that pass instead.
//
// The backward is deterministic: one kernel per query tile writes dQ, one
// per key tile writes dK and dV (no atomics); both recompute the scores.
// The workspace (FlashAttentionWorkspaceBytes) holds Delta = rowsum(dO * O)
// in the accumulation type, (B, H, N).
//
// Plain C++ (no CUDA syntax except the __host__ __device__ marks of the
// layout functions, which the kernels share): included by the plugin's .cc
// file and by the .cu file. Thread-safety: pure functions.
#ifndef LLMSYS_CUDA_FLASH_ATTENTION_H_
#define LLMSYS_CUDA_FLASH_ATTENTION_H_

#include <cuda_runtime_api.h>

#include <cstdint>

#include "cuda/launch.h"

#if defined(__CUDACC__)
#define LLMSYS_FLASH_HD __host__ __device__
#else
#define LLMSYS_FLASH_HD
#endif

namespace llmsys::cuda {

// The sizes of one call: q (B, H, N, D), k (B, H, M, D), v (B, H, M, Dv).
struct FlashAttentionShape {
  int64_t b = 0, h = 0, n = 0, m = 0, d = 0, dv = 0;
};

// The dtype of key_padding_mask (B, M), non-zero = masked, or kNone.
enum class FlashMask : int { kNone = 0, kU8, kI32, kI64, kF32, kF64 };

// Which kernel the component's `kernel` parameter asks for.
enum class FlashKernelChoice : int { kAuto = 0, kSimt, kTensorCore };

// The kernel a plan runs.
enum class FlashKernel : int { kSimt = 0, kTensorCore };

// The three kernels of a call with tiles: the forward, the backward's dQ
// pass (per query tile) and its dK/dV pass (per key tile).
enum class FlashPass : int { kForward = 0, kBackwardDq, kBackwardDkdv };

// The attributes of a call, as the launchers take them.
struct FlashAttentionOptions {
  bool causal = false;  // query n sees keys m <= n (top-left aligned)
  double scale = 1.0;   // the resolved scale (never 0 here)
  double dropout_p = 0.0;
  uint64_t rng_seed = 0, rng_offset = 0;
  FlashMask mask = FlashMask::kNone;
  FlashKernelChoice kernel = FlashKernelChoice::kAuto;
};

// Whether the plans may pick the tensor-core kernels. They are compiled
// either way; false sends every call to the SIMT kernels (and makes
// kernel = 'tensor_core' an error), a one-line switch should a GPU show a
// problem the CPU emulation cannot.
constexpr bool kFlashTensorCoreBuilt = true;

// The largest D and Dv the kernels compile for.
constexpr int64_t kFlashMaxHeadDim = 128;
// Dynamic shared memory without opting in, and the most any plan uses: the
// opt-in limit of sm_86/sm_89/sm_120 (99 KiB), below sm_80's and sm_90's.
constexpr int64_t kFlashDefaultSmemBytes = 48 * 1024;
constexpr int64_t kFlashMaxSmemBytes = 99 * 1024;
// The most blocks a 1-D grid may have.
constexpr int64_t kFlashMaxBlocks = 2147483647;

// The head-size bound a kernel is compiled for: 64 when D and Dv are at
// most 64, else 128 (0 when either is above kFlashMaxHeadDim).
inline int FlashHeadDim(const FlashAttentionShape& s) {
  const int64_t d = s.d > s.dv ? s.d : s.dv;
  return d <= 64 ? 64 : d <= kFlashMaxHeadDim ? 128 : 0;
}

// ---- the SIMT kernels' tiles and shared memory ----

// Tile sizes of one SIMT kernel. `rows` query rows and `keys` keys per tile;
// in the dK/dV pass a block owns `keys` keys and loops over query tiles of
// `rows`. Threads are laid out 16 wide (kFlashSimtTx) by threads / 16 tall
// over every product's output tile, so each tile side is a multiple of
// those; `keys` is a multiple of 32 except in the dK/dV pass (where no warp
// reduces over keys).
struct FlashTiles {
  int rows = 0, keys = 0, threads = 0;
};
constexpr int kFlashSimtTx = 16;

// The SIMT tiles for accumulators of `acc_bytes` (4: float, 8: double) and
// head-size bound `head_dim` (64 or 128), chosen so that every layout fits
// in kFlashMaxSmemBytes and a thread keeps at most 64 accumulators.
LLMSYS_FLASH_HD constexpr FlashTiles SimtFlashTiles(FlashPass pass,
                                                    int acc_bytes,
                                                    int head_dim) {
  const bool wide = acc_bytes > 4;  // double
  const bool big = head_dim > 64;
  switch (pass) {
    case FlashPass::kForward:
      return wide  ? FlashTiles{16, 32, 128}
             : big ? FlashTiles{64, 32, 128}
                   : FlashTiles{64, 64, 128};
    case FlashPass::kBackwardDq:
      return wide  ? (big ? FlashTiles{16, 32, 128} : FlashTiles{32, 32, 128})
             : big ? FlashTiles{64, 32, 128}
                   : FlashTiles{64, 64, 128};
    default:  // kBackwardDkdv
      return wide  ? (big ? FlashTiles{16, 16, 128} : FlashTiles{32, 32, 128})
             : big ? FlashTiles{32, 32, 128}
                   : FlashTiles{32, 64, 128};
  }
}

// Where each buffer of a SIMT kernel sits in its dynamic shared memory, in
// accumulator elements from the start. Every matrix is row-major with one
// element of padding per row (leading dimension cols + 1), so that threads
// reading a column hit 32 different banks.
//   forward: q (rows, hd), k (keys, hd), v (keys, hd), p (rows, keys),
//            stats (3 rows: alpha, seen, 1/l);
//   dQ:      q, dout (rows, hd), k and v share kv (keys, hd), ds (rows,
//            keys), stats (2 rows: lse, delta);
//   dK/dV:   k, v (keys, hd), q, dout (rows, hd), p, ds (rows, keys),
//            stats (2 rows: lse, delta).
struct FlashSmemLayout {
  int64_t q = 0, dout = 0, k = 0, v = 0, p = 0, ds = 0, stats = 0, total = 0;
};

LLMSYS_FLASH_HD constexpr FlashSmemLayout SimtFlashLayout(FlashPass pass,
                                                          FlashTiles t,
                                                          int head_dim) {
  const int64_t ld = head_dim + 1, lp = t.keys + 1;
  const int64_t q_elems = int64_t{t.rows} * ld, kv_elems = int64_t{t.keys} * ld;
  const int64_t p_elems = int64_t{t.rows} * lp;
  FlashSmemLayout l;
  switch (pass) {
    case FlashPass::kForward:
      l.q = 0;
      l.k = l.q + q_elems;
      l.v = l.k + kv_elems;
      l.p = l.v + kv_elems;
      l.stats = l.p + p_elems;
      l.total = l.stats + 3 * int64_t{t.rows};
      break;
    case FlashPass::kBackwardDq:
      l.q = 0;
      l.dout = l.q + q_elems;
      l.k = l.dout + q_elems;
      l.v = l.k;  // V, then K, in one buffer
      l.ds = l.k + kv_elems;
      l.stats = l.ds + p_elems;
      l.total = l.stats + 2 * int64_t{t.rows};
      break;
    default:  // kBackwardDkdv
      l.k = 0;
      l.v = l.k + kv_elems;
      l.q = l.v + kv_elems;
      l.dout = l.q + q_elems;
      l.p = l.dout + q_elems;
      l.ds = l.p + p_elems;
      l.stats = l.ds + p_elems;
      l.total = l.stats + 2 * int64_t{t.rows};
      break;
  }
  return l;
}

// ---- the tensor-core kernels' tiles and shared memory ----

// The tensor-core tiles (bfloat16/float16, D = Dv = head_dim in {64, 128}),
// 4 warps each:
//   forward: 128 query rows (32 a warp, so that each K or V fragment read
//            from shared memory feeds 4 products), 64 keys per tile (32 for
//            head_dim 128, to keep the accumulators in registers);
//   dQ:      64 query rows (16 a warp), 64 keys per tile (32 for 128);
//   dK/dV:   64 keys (16 a warp), 64 query rows per tile (32 for 128).
LLMSYS_FLASH_HD constexpr FlashTiles TensorCoreFlashTiles(FlashPass pass,
                                                          int head_dim) {
  switch (pass) {
    case FlashPass::kForward:
      return head_dim > 64 ? FlashTiles{128, 32, 128}
                           : FlashTiles{128, 64, 128};
    case FlashPass::kBackwardDq:
      return head_dim > 64 ? FlashTiles{64, 32, 128} : FlashTiles{64, 64, 128};
    default:  // kBackwardDkdv
      return head_dim > 64 ? FlashTiles{32, 64, 128} : FlashTiles{64, 64, 128};
  }
}

// Shared memory of the tensor-core kernels, in 2-byte elements from the
// start. Matrices are row-major with rows of head_dim + 8 elements (16
// bytes of padding, so that the 8 rows an ldmatrix reads fall in 8
// different 16-byte bank groups); every buffer starts 16-byte aligned. The
// tiles the loop streams are double-buffered (two consecutive copies):
//   forward: q (rows), k (keys), v (keys) — single, the loads of the next
//            k and of v overlap the products of the other;
//   dQ:      q, dout (rows), k and v (2 x keys each), stats (lse and delta
//            as floats, 2 rows floats);
//   dK/dV:   k, v (keys), q and dout (2 x rows each), stats (2 copies of
//            lse and delta, 4 rows floats).
LLMSYS_FLASH_HD constexpr FlashSmemLayout TensorCoreFlashLayout(FlashPass pass,
                                                                FlashTiles t,
                                                                int head_dim) {
  const int64_t ld = head_dim + 8;
  const int64_t q_elems = int64_t{t.rows} * ld, kv_elems = int64_t{t.keys} * ld;
  FlashSmemLayout l;
  switch (pass) {
    case FlashPass::kForward:
      l.q = 0;
      l.k = l.q + q_elems;
      l.v = l.k + kv_elems;
      l.stats = l.v + kv_elems;  // none: the statistics stay in registers
      l.total = l.stats;
      break;
    case FlashPass::kBackwardDq:
      l.q = 0;
      l.dout = l.q + q_elems;
      l.k = l.dout + q_elems;
      l.v = l.k + 2 * kv_elems;
      l.stats = l.v + 2 * kv_elems;
      l.total = l.stats + 2 * (2 * int64_t{t.rows});  // floats: 2 halves
      break;
    default:  // kBackwardDkdv
      l.k = 0;
      l.v = l.k + kv_elems;
      l.q = l.v + kv_elems;
      l.dout = l.q + 2 * q_elems;
      l.stats = l.dout + 2 * q_elems;
      l.total = l.stats + 2 * (4 * int64_t{t.rows});
      break;
  }
  return l;
}

// ---- plans ----

// Why this call cannot run here (nullptr when it can): a head size above
// kFlashMaxHeadDim, the tensor-core kernel forced for a dtype or head size
// it does not cover, or a grid too large for one launch.
inline const char* FlashAttentionUnsupported(DType t,
                                             const FlashAttentionShape& s,
                                             FlashKernelChoice choice) {
  if (FlashHeadDim(s) == 0)
    return "head sizes D and Dv above 128 are not supported by the CUDA "
           "flash kernels (use attention.naive)";
  if (choice == FlashKernelChoice::kTensorCore && !kFlashTensorCoreBuilt)
    return "kernel = 'tensor_core' is not in this build (use 'auto' or "
           "'simt')";
  if (choice == FlashKernelChoice::kTensorCore &&
      ((t != DType::kBF16 && t != DType::kF16) || s.d != s.dv ||
       (s.d != 64 && s.d != 128)))
    return "kernel = 'tensor_core' needs bfloat16 or float16 inputs with "
           "D = Dv = 64 or 128 (use kernel = 'auto' or 'simt')";
  // The most tiles any pass launches per (b, h), with its smallest tile.
  const int64_t smallest = 16;
  const int64_t longest = s.n > s.m ? s.n : s.m;
  const int64_t tiles = (longest + smallest - 1) / smallest;
  if (s.b > 0 && s.h > 0 &&
      (s.b > kFlashMaxBlocks / s.h ||
       (tiles > 0 && s.b * s.h > kFlashMaxBlocks / tiles)))
    return "B * H * tiles exceeds the 2^31 - 1 blocks of one launch";
  return nullptr;
}

// Whether `choice` runs the tensor-core kernel for this call: kAuto picks it
// for bfloat16/float16 with D = Dv in {64, 128}.
inline FlashKernel FlashKernelFor(DType t, const FlashAttentionShape& s,
                                  FlashKernelChoice choice) {
  const bool tc_ok = (t == DType::kBF16 || t == DType::kF16) && s.d == s.dv &&
                     (s.d == 64 || s.d == 128);
  if (choice == FlashKernelChoice::kSimt || !tc_ok || !kFlashTensorCoreBuilt)
    return FlashKernel::kSimt;
  return FlashKernel::kTensorCore;
}

// One pass's launch: the kernel, its compiled head-size bound, its tiles, its
// shared memory in bytes and its 1-D grid (B H blocks per tile of query rows
// in the forward and dQ passes, per tile of keys in the dK/dV pass).
struct FlashAttentionPlan {
  FlashKernel kernel = FlashKernel::kSimt;
  int head_dim = 0;
  FlashTiles tiles;
  int64_t smem_bytes = 0;
  int64_t blocks = 0;
};

inline FlashAttentionPlan FlashAttentionPlanFor(FlashPass pass, DType t,
                                                const FlashAttentionShape& s,
                                                FlashKernelChoice choice) {
  FlashAttentionPlan p;
  p.kernel = FlashKernelFor(t, s, choice);
  p.head_dim = FlashHeadDim(s);
  if (p.kernel == FlashKernel::kTensorCore) {
    p.tiles = TensorCoreFlashTiles(pass, p.head_dim);
    p.smem_bytes = 2 * TensorCoreFlashLayout(pass, p.tiles, p.head_dim).total;
  } else {
    const int acc_bytes = t == DType::kF64 ? 8 : 4;
    p.tiles = SimtFlashTiles(pass, acc_bytes, p.head_dim);
    p.smem_bytes = acc_bytes * SimtFlashLayout(pass, p.tiles, p.head_dim).total;
  }
  const int64_t len = pass == FlashPass::kBackwardDkdv ? s.m : s.n;
  const int64_t per =
      pass == FlashPass::kBackwardDkdv ? p.tiles.keys : p.tiles.rows;
  p.blocks = s.b * s.h * ((len + per - 1) / per);
  return p;
}

// The backward's workspace: Delta (B, H, N) in the accumulation type,
// rounded up to 256 bytes.
inline int64_t FlashAttentionWorkspaceBytes(DType t,
                                            const FlashAttentionShape& s) {
  const int64_t bytes = s.b * s.h * s.n * (t == DType::kF64 ? 8 : 4);
  return (bytes + 255) / 256 * 256;
}

// ---- launchers (stream last; cudaSuccess at once for empty problems) ----

// out (B, H, N, Dv) and lse (B, H, N) from q (B, H, N, D), k (B, H, M, D),
// v (B, H, M, Dv) and key_padding_mask (B, M) (nullptr when o.mask is
// kNone); every tensor compact, of dtype t (the mask of o.mask's) but lse,
// float32 for 16-bit t.
cudaError_t LaunchFlashAttentionForward(DType t, void* out, void* lse,
                                        const void* q, const void* k,
                                        const void* v, const void* mask,
                                        const FlashAttentionShape& s,
                                        const FlashAttentionOptions& o,
                                        cudaStream_t stream);

// dq (B, H, N, D), dk (B, H, M, D), dv (B, H, M, Dv) (each nullptr when not
// wanted) from the forward's inputs, its out and lse (as the forward's), and
// dout (B, H, N, Dv);
// `workspace` holds FlashAttentionWorkspaceBytes(t, s) bytes.
cudaError_t LaunchFlashAttentionBackward(
    DType t, void* dq, void* dk, void* dv, const void* q, const void* k,
    const void* v, const void* mask, const void* out, const void* lse,
    const void* dout, void* workspace, const FlashAttentionShape& s,
    const FlashAttentionOptions& o, cudaStream_t stream);

// Sets `bytes` bytes at p to zero (a float tensor's zeros).
cudaError_t LaunchFlashAttentionZero(void* p, int64_t bytes,
                                     cudaStream_t stream);

}  // namespace llmsys::cuda

#endif  // LLMSYS_CUDA_FLASH_ATTENTION_H_
