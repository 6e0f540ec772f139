// vector_types.h (CPU emulation of CUDA) — dim3, uint3 and the small vector
// types (float2, float4, int4, ...) with CUDA's sizes and alignments, and
// their make_* functions. Part of tests/cuda/emu (see emu.h).
#ifndef LLMSYS_TESTS_CUDA_EMU_VECTOR_TYPES_H_
#define LLMSYS_TESTS_CUDA_EMU_VECTOR_TYPES_H_

#include "emu_defines.h"

#define LLMSYS_EMU_VECTOR2(name, T, align) \
  struct __align__(align) name {           \
    T x, y;                                \
  };                                       \
  inline constexpr name make_##name(T x, T y) { return name{x, y}; }
#define LLMSYS_EMU_VECTOR3(name, T) \
  struct name {                     \
    T x, y, z;                      \
  };                                \
  inline constexpr name make_##name(T x, T y, T z) { return name{x, y, z}; }
#define LLMSYS_EMU_VECTOR4(name, T, align)                \
  struct __align__(align) name {                          \
    T x, y, z, w;                                         \
  };                                                      \
  inline constexpr name make_##name(T x, T y, T z, T w) { \
    return name{x, y, z, w};                              \
  }

LLMSYS_EMU_VECTOR2(char2, signed char, 2)
LLMSYS_EMU_VECTOR4(char4, signed char, 4)
LLMSYS_EMU_VECTOR2(uchar2, unsigned char, 2)
LLMSYS_EMU_VECTOR4(uchar4, unsigned char, 4)
LLMSYS_EMU_VECTOR2(short2, short, 4)
LLMSYS_EMU_VECTOR4(short4, short, 8)
LLMSYS_EMU_VECTOR2(ushort2, unsigned short, 4)
LLMSYS_EMU_VECTOR4(ushort4, unsigned short, 8)
LLMSYS_EMU_VECTOR2(int2, int, 8)
LLMSYS_EMU_VECTOR3(int3, int)
LLMSYS_EMU_VECTOR4(int4, int, 16)
LLMSYS_EMU_VECTOR2(uint2, unsigned int, 8)
LLMSYS_EMU_VECTOR3(uint3, unsigned int)
LLMSYS_EMU_VECTOR4(uint4, unsigned int, 16)
LLMSYS_EMU_VECTOR2(longlong2, long long, 16)
LLMSYS_EMU_VECTOR2(ulonglong2, unsigned long long, 16)
LLMSYS_EMU_VECTOR2(float2, float, 8)
LLMSYS_EMU_VECTOR3(float3, float)
LLMSYS_EMU_VECTOR4(float4, float, 16)
LLMSYS_EMU_VECTOR2(double2, double, 16)
LLMSYS_EMU_VECTOR3(double3, double)

#undef LLMSYS_EMU_VECTOR2
#undef LLMSYS_EMU_VECTOR3
#undef LLMSYS_EMU_VECTOR4

struct dim3 {
  unsigned int x, y, z;
  constexpr dim3(unsigned int vx = 1, unsigned int vy = 1, unsigned int vz = 1)
      : x(vx), y(vy), z(vz) {}
  constexpr dim3(uint3 v) : x(v.x), y(v.y), z(v.z) {}
  constexpr operator uint3() const { return uint3{x, y, z}; }
};

#endif  // LLMSYS_TESTS_CUDA_EMU_VECTOR_TYPES_H_
