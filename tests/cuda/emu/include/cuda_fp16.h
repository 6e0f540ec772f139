// cuda_fp16.h (CPU emulation of CUDA) — __half and __half2: 16-bit storage
// types with CUDA's conversions (round to nearest even, exactly as the GPU;
// see emu_fp16_convert.h) and float-computed arithmetic. Part of
// tests/cuda/emu.
#ifndef LLMSYS_TESTS_CUDA_EMU_CUDA_FP16_H_
#define LLMSYS_TESTS_CUDA_EMU_CUDA_FP16_H_

#include <atomic>

#include "emu_defines.h"
#include "emu_float16_type.h"
#include "vector_types.h"

struct __half_raw {
  unsigned short x;
};

LLMSYS_EMU_FLOAT16_TYPE(__half, __half_raw, ::emu::fp16::FloatToHalf,
                        ::emu::fp16::HalfToFloat, ::emu::fp16::DoubleToHalf)

struct __align__(4) __half2 {
  __half x, y;
};
typedef __half half;
typedef __half2 half2;

inline __half __float2half(float f) { return __half(f); }
inline __half __float2half_rn(float f) { return __half(f); }
inline __half __double2half(double d) { return __half(d); }
inline float __half2float(__half h) { return float(h); }
inline unsigned short __half_as_ushort(__half h) { return h.emu_bits(); }
inline __half __ushort_as_half(unsigned short b) {
  return __half::emu_from_bits(b);
}
inline short __half_as_short(__half h) {
  return static_cast<short>(h.emu_bits());
}
inline __half __short_as_half(short b) {
  return __half::emu_from_bits(static_cast<unsigned short>(b));
}
inline __half __int2half_rn(int v) { return __half(v); }
inline bool __hisnan(__half h) { return (h.emu_bits() & 0x7FFFu) > 0x7C00u; }
inline bool __hisinf(__half h) { return (h.emu_bits() & 0x7FFFu) == 0x7C00u; }
inline __half __hadd(__half a, __half b) { return a + b; }
inline __half __hsub(__half a, __half b) { return a - b; }
inline __half __hmul(__half a, __half b) { return a * b; }
inline __half __hdiv(__half a, __half b) { return a / b; }
inline __half __hneg(__half a) { return -a; }
inline __half __habs(__half a) {
  return __half::emu_from_bits(
      static_cast<unsigned short>(a.emu_bits() & 0x7FFFu));
}
inline __half __hfma(__half a, __half b, __half c) {
  return __half(std::fma(float(a), float(b), float(c)));
}

inline __half2 __halves2half2(__half a, __half b) { return __half2{a, b}; }
inline __half2 __half2half2(__half a) { return __half2{a, a}; }
inline __half2 __floats2half2_rn(float a, float b) {
  return __half2{__half(a), __half(b)};
}
inline __half2 __float22half2_rn(float2 f) {
  return __half2{__half(f.x), __half(f.y)};
}
inline __half2 __float2half2_rn(float f) {
  return __half2{__half(f), __half(f)};
}
inline float2 __half22float2(__half2 h) {
  return float2{float(h.x), float(h.y)};
}
inline float __low2float(__half2 h) { return float(h.x); }
inline float __high2float(__half2 h) { return float(h.y); }
inline __half __low2half(__half2 h) { return h.x; }
inline __half __high2half(__half2 h) { return h.y; }

inline __half __ldg(const __half* p) { return *p; }
inline __half2 __ldg(const __half2* p) { return *p; }

// atomicAdd on a 16-bit float: a compare-and-swap loop on its bits.
inline __half atomicAdd(__half* address, __half value) {
  std::atomic_ref<unsigned short> ref(
      *reinterpret_cast<unsigned short*>(address));
  unsigned short old = ref.load(std::memory_order_relaxed);
  while (!ref.compare_exchange_weak(
      old, (__half::emu_from_bits(old) + value).emu_bits(),
      std::memory_order_relaxed)) {
  }
  return __half::emu_from_bits(old);
}

#define CUDART_INF_FP16 __ushort_as_half((unsigned short)0x7C00U)
#define CUDART_NAN_FP16 __ushort_as_half((unsigned short)0x7FFFU)
#define CUDART_MAX_NORMAL_FP16 __ushort_as_half((unsigned short)0x7BFFU)

#endif  // LLMSYS_TESTS_CUDA_EMU_CUDA_FP16_H_
