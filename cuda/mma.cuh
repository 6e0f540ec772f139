// cuda/mma.cuh — the tensor-core primitives of the flash-attention kernels:
// each is a small __device__ wrapper around one PTX instruction (sm_80 and
// later), with a plain C++ version under LLMSYS_CUDA_EMULATION that
// computes the same result with warp shuffles, so that the CPU emulation
// (tests/cuda/emu) checks every fragment index the kernels use.
//
//   uint32_t a[4], b[4];
//   LdMatrixX4(a, q_row);               // A: 16x16 of Q, row-major
//   LdMatrixX4(b, k_row);               // B: two 16x8 halves of K^T
//   Mma16816<__nv_bfloat16>(c0, a, b[0], b[1]);  // c0 += A B0 (16x8)
//
// Fragments of mma.sync.aligned.m16n8k16.row.col.f32.{bf16,f16}: lane l of
// the warp, g = l / 4 and t = l % 4; a 32-bit register holds two 16-bit
// elements, the lower index in its low half.
//   A (16 x 16, M x K):  a[0] = A[g][2t, 2t+1],     a[1] = A[g+8][2t, 2t+1],
//                        a[2] = A[g][2t+8, 2t+9],   a[3] = A[g+8][2t+8, 2t+9]
//   B (16 x 8, K x N):   b0 = B[2t, 2t+1][g],       b1 = B[2t+8, 2t+9][g]
//   C (16 x 8, floats):  c[0], c[1] = C[g][2t, 2t+1], c[2], c[3] = C[g+8][..]
// ldmatrix.x4: lane l gives the address of row l % 8 of matrix l / 8 (an
// 8x8 block of 16-bit elements, each row 16 contiguous bytes); register i
// gets matrix i's elements [g][2t, 2t+1] (.trans: [2t][g] and [2t+1][g]).
// So an A fragment is ldmatrix.x4 of the four 8x8 blocks (rows 0-7, 8-15) x
// (columns 0-7, 8-15) in that order, a B fragment of B^T stored row-major
// (K of S = Q K^T) is ldmatrix.x4 and one of B stored row-major (V of P V)
// is ldmatrix.x4.trans.
//
// Thread-safety: device code; every lane of the warp calls each function
// together (they are warp-synchronous).
#ifndef LLMSYS_CUDA_MMA_CUH_
#define LLMSYS_CUDA_MMA_CUH_

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <cstring>
#include <type_traits>

namespace llmsys::cuda {

// The raw bits of a 16-bit float, and two of them packed (lo in the low
// half).
__device__ __forceinline__ uint32_t Bits16(__nv_bfloat16 x) {
  return __bfloat16_as_ushort(x);
}
__device__ __forceinline__ uint32_t Bits16(__half x) {
  return __half_as_ushort(x);
}
__device__ __forceinline__ uint32_t Bits16Of(float x, __nv_bfloat16) {
  return Bits16(__float2bfloat16_rn(x));
}
__device__ __forceinline__ uint32_t Bits16Of(float x, __half) {
  return Bits16(__float2half_rn(x));
}
// Two floats rounded to T (round to nearest even), `lo` in the low half.
template <class T>
__device__ __forceinline__ uint32_t PackPair(float lo, float hi) {
  return Bits16Of(lo, T{}) | (Bits16Of(hi, T{}) << 16);
}

#ifdef LLMSYS_CUDA_EMULATION
namespace mma_emu {
template <class T>
inline float Half16(uint32_t word, int which) {
  const unsigned short bits =
      static_cast<unsigned short>(which == 0 ? word & 0xffffu : word >> 16);
  if constexpr (std::is_same_v<T, __half>)
    return __half2float(__ushort_as_half(bits));
  else
    return __bfloat162float(__ushort_as_bfloat16(bits));
}
}  // namespace mma_emu
#endif

// c += A B for one m16n8k16 tile; T is __nv_bfloat16 or __half.
template <class T>
__device__ __forceinline__ void Mma16816(float (&c)[4], const uint32_t (&a)[4],
                                         uint32_t b0, uint32_t b1) {
#ifdef LLMSYS_CUDA_EMULATION
  const int lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
  // Rows g and g + 8 of A from lanes 4g .. 4g + 3; columns 2t and 2t + 1
  // of B from lanes 8t .. 8t + 3 and 8t + 4 .. 8t + 7.
  float a_lo[16], a_hi[16], b_0[16], b_1[16];
  for (int j = 0; j < 4; ++j) {
    const int src = 4 * g + j;
    const uint32_t r0 = __shfl_sync(0xffffffffu, a[0], src);
    const uint32_t r1 = __shfl_sync(0xffffffffu, a[1], src);
    const uint32_t r2 = __shfl_sync(0xffffffffu, a[2], src);
    const uint32_t r3 = __shfl_sync(0xffffffffu, a[3], src);
    for (int e = 0; e < 2; ++e) {
      a_lo[2 * j + e] = mma_emu::Half16<T>(r0, e);
      a_hi[2 * j + e] = mma_emu::Half16<T>(r1, e);
      a_lo[2 * j + 8 + e] = mma_emu::Half16<T>(r2, e);
      a_hi[2 * j + 8 + e] = mma_emu::Half16<T>(r3, e);
    }
  }
  for (int j = 0; j < 4; ++j) {
    const int src0 = 4 * (2 * t) + j, src1 = 4 * (2 * t + 1) + j;
    const uint32_t x0 = __shfl_sync(0xffffffffu, b0, src0);
    const uint32_t x1 = __shfl_sync(0xffffffffu, b1, src0);
    const uint32_t y0 = __shfl_sync(0xffffffffu, b0, src1);
    const uint32_t y1 = __shfl_sync(0xffffffffu, b1, src1);
    for (int e = 0; e < 2; ++e) {
      b_0[2 * j + e] = mma_emu::Half16<T>(x0, e);
      b_0[2 * j + 8 + e] = mma_emu::Half16<T>(x1, e);
      b_1[2 * j + e] = mma_emu::Half16<T>(y0, e);
      b_1[2 * j + 8 + e] = mma_emu::Half16<T>(y1, e);
    }
  }
  float s00 = 0, s01 = 0, s10 = 0, s11 = 0;
  for (int k = 0; k < 16; ++k) {
    s00 += a_lo[k] * b_0[k];
    s01 += a_lo[k] * b_1[k];
    s10 += a_hi[k] * b_0[k];
    s11 += a_hi[k] * b_1[k];
  }
  c[0] += s00;
  c[1] += s01;
  c[2] += s10;
  c[3] += s11;
#elif defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  if constexpr (std::is_same_v<T, __half>) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 "
        "{%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
        "{%0, %1, %2, %3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  } else {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 "
        "{%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
        "{%0, %1, %2, %3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  }
#elif defined(__CUDA_ARCH__)
  (void)c, (void)a, (void)b0, (void)b1;
  __trap();  // tensor cores need sm_80; the build targets sm_80 and later
#else
  (void)c, (void)a, (void)b0, (void)b1;
#endif
}

// Four 8x8 matrices of 16-bit elements from shared memory; `row` is this
// lane's row (16-byte aligned): row l % 8 of matrix l / 8.
__device__ __forceinline__ void LdMatrixX4(uint32_t (&r)[4],
                                           const uint32_t* row) {
#ifdef LLMSYS_CUDA_EMULATION
  const int lane = threadIdx.x % 32;
  for (int i = 0; i < 4; ++i) {
    const uint32_t* src = __shfl_sync(0xffffffffu, row, 8 * i + lane / 4);
    r[i] = src[lane % 4];
  }
#elif defined(__CUDA_ARCH__)
  const unsigned addr = static_cast<unsigned>(__cvta_generic_to_shared(row));
  asm volatile(
      "ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
      : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
      : "r"(addr));
#else
  (void)r, (void)row;
#endif
}

// The same, each matrix transposed: register i gets matrix i's elements
// [2t][g] (low half) and [2t + 1][g].
__device__ __forceinline__ void LdMatrixX4Trans(uint32_t (&r)[4],
                                                const uint32_t* row) {
#ifdef LLMSYS_CUDA_EMULATION
  const int lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
  for (int i = 0; i < 4; ++i) {
    const uint32_t* r0 = __shfl_sync(0xffffffffu, row, 8 * i + 2 * t);
    const uint32_t* r1 = __shfl_sync(0xffffffffu, row, 8 * i + 2 * t + 1);
    const uint32_t w0 = r0[g / 2], w1 = r1[g / 2];
    const uint32_t lo = g % 2 == 0 ? w0 & 0xffffu : w0 >> 16;
    const uint32_t hi = g % 2 == 0 ? w1 & 0xffffu : w1 >> 16;
    r[i] = lo | (hi << 16);
  }
#elif defined(__CUDA_ARCH__)
  const unsigned addr = static_cast<unsigned>(__cvta_generic_to_shared(row));
  asm volatile(
      "ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, "
      "[%4];\n"
      : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
      : "r"(addr));
#else
  (void)r, (void)row;
#endif
}

// 16 bytes from global to shared memory without passing through registers
// (cp.async.cg: cached in L2 only); both addresses 16-byte aligned. The
// copy lands after CpAsyncWaitAll (and, for other threads, a
// __syncthreads after it). The emulation copies at once.
__device__ __forceinline__ void CpAsync16(uint32_t* smem, const void* global) {
#ifdef LLMSYS_CUDA_EMULATION
  std::memcpy(smem, global, 16);
#elif defined(__CUDA_ARCH__)
  const unsigned addr = static_cast<unsigned>(__cvta_generic_to_shared(smem));
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(addr),
               "l"(global)
               : "memory");
#else
  (void)smem, (void)global;
#endif
}

// Closes the group of copies issued since the last commit.
__device__ __forceinline__ void CpAsyncCommit() {
#if !defined(LLMSYS_CUDA_EMULATION) && defined(__CUDA_ARCH__)
  asm volatile("cp.async.commit_group;\n" ::: "memory");
#endif
}

// Waits until every copy group this thread committed has landed.
__device__ __forceinline__ void CpAsyncWaitAll() {
#if !defined(LLMSYS_CUDA_EMULATION) && defined(__CUDA_ARCH__)
  asm volatile("cp.async.wait_group 0;\n" ::: "memory");
#endif
}

}  // namespace llmsys::cuda

#endif  // LLMSYS_CUDA_MMA_CUH_
