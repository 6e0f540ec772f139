// cuda_bf16.h (CPU emulation of CUDA) — __nv_bfloat16 and __nv_bfloat162:
// 16-bit storage types with CUDA's conversions (round to nearest even,
// exactly as the GPU; see emu_fp16_convert.h) and float-computed
// arithmetic. Part of tests/cuda/emu.
#ifndef LLMSYS_TESTS_CUDA_EMU_CUDA_BF16_H_
#define LLMSYS_TESTS_CUDA_EMU_CUDA_BF16_H_

#include <atomic>

#include "cuda_fp16.h"
#include "emu_defines.h"
#include "emu_float16_type.h"
#include "vector_types.h"

struct __nv_bfloat16_raw {
  unsigned short x;
};

LLMSYS_EMU_FLOAT16_TYPE(__nv_bfloat16, __nv_bfloat16_raw,
                        ::emu::fp16::FloatToBf16, ::emu::fp16::Bf16ToFloat,
                        ::emu::fp16::DoubleToBf16)

struct __align__(4) __nv_bfloat162 {
  __nv_bfloat16 x, y;
};
typedef __nv_bfloat16 nv_bfloat16;
typedef __nv_bfloat162 nv_bfloat162;

inline __nv_bfloat16 __float2bfloat16(float f) { return __nv_bfloat16(f); }
inline __nv_bfloat16 __float2bfloat16_rn(float f) { return __nv_bfloat16(f); }
inline __nv_bfloat16 __double2bfloat16(double d) { return __nv_bfloat16(d); }
inline float __bfloat162float(__nv_bfloat16 h) { return float(h); }
inline unsigned short __bfloat16_as_ushort(__nv_bfloat16 h) {
  return h.emu_bits();
}
inline __nv_bfloat16 __ushort_as_bfloat16(unsigned short b) {
  return __nv_bfloat16::emu_from_bits(b);
}
inline short __bfloat16_as_short(__nv_bfloat16 h) {
  return static_cast<short>(h.emu_bits());
}
inline __nv_bfloat16 __short_as_bfloat16(short b) {
  return __nv_bfloat16::emu_from_bits(static_cast<unsigned short>(b));
}
inline __nv_bfloat16 __int2bfloat16_rn(int v) { return __nv_bfloat16(v); }
inline bool __hisnan(__nv_bfloat16 h) {
  return (h.emu_bits() & 0x7FFFu) > 0x7F80u;
}
inline bool __hisinf(__nv_bfloat16 h) {
  return (h.emu_bits() & 0x7FFFu) == 0x7F80u;
}
inline __nv_bfloat16 __hadd(__nv_bfloat16 a, __nv_bfloat16 b) { return a + b; }
inline __nv_bfloat16 __hsub(__nv_bfloat16 a, __nv_bfloat16 b) { return a - b; }
inline __nv_bfloat16 __hmul(__nv_bfloat16 a, __nv_bfloat16 b) { return a * b; }
inline __nv_bfloat16 __hdiv(__nv_bfloat16 a, __nv_bfloat16 b) { return a / b; }
inline __nv_bfloat16 __hneg(__nv_bfloat16 a) { return -a; }
inline __nv_bfloat16 __habs(__nv_bfloat16 a) {
  return __nv_bfloat16::emu_from_bits(
      static_cast<unsigned short>(a.emu_bits() & 0x7FFFu));
}
inline __nv_bfloat16 __hfma(__nv_bfloat16 a, __nv_bfloat16 b, __nv_bfloat16 c) {
  return __nv_bfloat16(std::fma(float(a), float(b), float(c)));
}

inline __nv_bfloat162 __halves2bfloat162(__nv_bfloat16 a, __nv_bfloat16 b) {
  return __nv_bfloat162{a, b};
}
inline __nv_bfloat162 __bfloat162bfloat162(__nv_bfloat16 a) {
  return __nv_bfloat162{a, a};
}
inline __nv_bfloat162 __floats2bfloat162_rn(float a, float b) {
  return __nv_bfloat162{__nv_bfloat16(a), __nv_bfloat16(b)};
}
inline __nv_bfloat162 __float22bfloat162_rn(float2 f) {
  return __nv_bfloat162{__nv_bfloat16(f.x), __nv_bfloat16(f.y)};
}
inline __nv_bfloat162 __float2bfloat162_rn(float f) {
  return __nv_bfloat162{__nv_bfloat16(f), __nv_bfloat16(f)};
}
inline float2 __bfloat1622float2(__nv_bfloat162 h) {
  return float2{float(h.x), float(h.y)};
}
inline float __low2float(__nv_bfloat162 h) { return float(h.x); }
inline float __high2float(__nv_bfloat162 h) { return float(h.y); }
inline __nv_bfloat16 __low2bfloat16(__nv_bfloat162 h) { return h.x; }
inline __nv_bfloat16 __high2bfloat16(__nv_bfloat162 h) { return h.y; }

inline __nv_bfloat16 __ldg(const __nv_bfloat16* p) { return *p; }
inline __nv_bfloat162 __ldg(const __nv_bfloat162* p) { return *p; }

// atomicAdd on a 16-bit float: a compare-and-swap loop on its bits.
inline __nv_bfloat16 atomicAdd(__nv_bfloat16* address, __nv_bfloat16 value) {
  std::atomic_ref<unsigned short> ref(
      *reinterpret_cast<unsigned short*>(address));
  unsigned short old = ref.load(std::memory_order_relaxed);
  while (!ref.compare_exchange_weak(
      old, (__nv_bfloat16::emu_from_bits(old) + value).emu_bits(),
      std::memory_order_relaxed)) {
  }
  return __nv_bfloat16::emu_from_bits(old);
}

#define CUDART_INF_BF16 __ushort_as_bfloat16((unsigned short)0x7F80U)
#define CUDART_NAN_BF16 __ushort_as_bfloat16((unsigned short)0x7FFFU)
#define CUDART_MAX_NORMAL_BF16 __ushort_as_bfloat16((unsigned short)0x7F7FU)

#endif  // LLMSYS_TESTS_CUDA_EMU_CUDA_BF16_H_
