// emu_float16_type.h (CPU emulation of CUDA) — the interface __half and
// __nv_bfloat16 share: 16-bit storage, conversions to and from the built-in
// arithmetic types (CUDA's, rounding to nearest even) and arithmetic done
// in float and rounded back, as cuda_fp16.hpp and cuda_bf16.hpp declare
// them. Part of tests/cuda/emu.
#ifndef LLMSYS_TESTS_CUDA_EMU_EMU_FLOAT16_TYPE_H_
#define LLMSYS_TESTS_CUDA_EMU_EMU_FLOAT16_TYPE_H_

#include "emu_defines.h"
#include "emu_fp16_convert.h"

// The 16-bit float types share their interface: T the type, RAW its raw
// struct, the conversions from float and double and to float.
#define LLMSYS_EMU_FLOAT16_TYPE(T, RAW, TO_BITS, FROM_BITS, DTO_BITS)        \
  struct __align__(2) T {                                                    \
   protected:                                                                \
    unsigned short __x;                                                      \
                                                                             \
   public:                                                                   \
    T() = default;                                                           \
    constexpr T(const RAW& r) : __x(r.x) {}                                  \
    T(float f) : __x(TO_BITS(f)) {}                                          \
    T(double d) : __x(DTO_BITS(d)) {}                                        \
    T(short v) : T(static_cast<float>(v)) {}                                 \
    T(unsigned short v) : T(static_cast<float>(v)) {}                        \
    T(int v) : T(static_cast<double>(v)) {}                                  \
    T(unsigned int v) : T(static_cast<double>(v)) {}                         \
    T(long v) : T(static_cast<double>(v)) {}                                 \
    T(unsigned long v) : T(static_cast<double>(v)) {}                        \
    T(long long v) : T(static_cast<double>(v)) {}                            \
    T(unsigned long long v) : T(static_cast<double>(v)) {}                   \
    operator float() const { return FROM_BITS(__x); }                        \
    operator RAW() const { return RAW{__x}; }                                \
    operator signed char() const {                                           \
      return static_cast<signed char>(float(*this));                         \
    }                                                                        \
    operator unsigned char() const {                                         \
      return static_cast<unsigned char>(float(*this));                       \
    }                                                                        \
    operator char() const { return static_cast<char>(float(*this)); }        \
    operator short() const { return static_cast<short>(float(*this)); }      \
    operator unsigned short() const {                                        \
      return static_cast<unsigned short>(float(*this));                      \
    }                                                                        \
    operator int() const { return static_cast<int>(float(*this)); }          \
    operator unsigned int() const {                                          \
      return static_cast<unsigned int>(float(*this));                        \
    }                                                                        \
    operator long() const { return static_cast<long>(float(*this)); }        \
    operator unsigned long() const {                                         \
      return static_cast<unsigned long>(float(*this));                       \
    }                                                                        \
    operator long long() const {                                             \
      return static_cast<long long>(float(*this));                           \
    }                                                                        \
    operator unsigned long long() const {                                    \
      return static_cast<unsigned long long>(float(*this));                  \
    }                                                                        \
    T& operator=(float f) { return *this = T(f); }                           \
    T& operator=(double d) { return *this = T(d); }                          \
    T& operator+=(const T& o) { return *this = T(float(*this) + float(o)); } \
    T& operator-=(const T& o) { return *this = T(float(*this) - float(o)); } \
    T& operator*=(const T& o) { return *this = T(float(*this) * float(o)); } \
    T& operator/=(const T& o) { return *this = T(float(*this) / float(o)); } \
    T& operator++() { return *this += T(1.0f); }                             \
    T& operator--() { return *this -= T(1.0f); }                             \
    T operator++(int) {                                                      \
      T old = *this;                                                         \
      ++*this;                                                               \
      return old;                                                            \
    }                                                                        \
    T operator--(int) {                                                      \
      T old = *this;                                                         \
      --*this;                                                               \
      return old;                                                            \
    }                                                                        \
    unsigned short emu_bits() const { return __x; }                          \
    static T emu_from_bits(unsigned short b) { return T(RAW{b}); }           \
  };                                                                         \
  inline T operator+(const T& a, const T& b) {                               \
    return T(float(a) + float(b));                                           \
  }                                                                          \
  inline T operator-(const T& a, const T& b) {                               \
    return T(float(a) - float(b));                                           \
  }                                                                          \
  inline T operator*(const T& a, const T& b) {                               \
    return T(float(a) * float(b));                                           \
  }                                                                          \
  inline T operator/(const T& a, const T& b) {                               \
    return T(float(a) / float(b));                                           \
  }                                                                          \
  inline T operator+(const T& a) { return a; }                               \
  inline T operator-(const T& a) {                                           \
    return T::emu_from_bits(                                                 \
        static_cast<unsigned short>(a.emu_bits() ^ 0x8000u));                \
  }                                                                          \
  inline bool operator==(const T& a, const T& b) {                           \
    return float(a) == float(b);                                             \
  }                                                                          \
  inline bool operator!=(const T& a, const T& b) {                           \
    return float(a) != float(b);                                             \
  }                                                                          \
  inline bool operator<(const T& a, const T& b) {                            \
    return float(a) < float(b);                                              \
  }                                                                          \
  inline bool operator<=(const T& a, const T& b) {                           \
    return float(a) <= float(b);                                             \
  }                                                                          \
  inline bool operator>(const T& a, const T& b) {                            \
    return float(a) > float(b);                                              \
  }                                                                          \
  inline bool operator>=(const T& a, const T& b) {                           \
    return float(a) >= float(b);                                             \
  }

#endif  // LLMSYS_TESTS_CUDA_EMU_EMU_FLOAT16_TYPE_H_
