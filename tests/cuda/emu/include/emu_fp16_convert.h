// emu_fp16_convert.h (CPU emulation of CUDA) — exact conversions between
// float/double and the 16-bit float formats, bit for bit what an sm_80+
// GPU's cvt.rn instructions give: round to nearest even, subnormals kept
// (no flush to zero), overflow to infinity, and every NaN becomes the
// canonical NaN 0x7FFF (as CUDA's cuda_fp16.hpp/cuda_bf16.hpp host code
// does too). Part of tests/cuda/emu; cuda_fp16.h and cuda_bf16.h use it.
#ifndef LLMSYS_TESTS_CUDA_EMU_EMU_FP16_CONVERT_H_
#define LLMSYS_TESTS_CUDA_EMU_EMU_FP16_CONVERT_H_

#include <cmath>
#include <cstdint>
#include <cstring>

namespace emu::fp16 {

// `x` rounded to nearest even in a binary format with `exp_bits` exponent
// and `man_bits` mantissa bits (16 bits in all), as its bit pattern.
template <int kExpBits, int kManBits>
inline uint16_t RoundTo(double x) {
  static_assert(1 + kExpBits + kManBits == 16);
  constexpr int kBias = (1 << (kExpBits - 1)) - 1;
  constexpr int kEmin = 1 - kBias;
  constexpr uint32_t kInf = ((1u << kExpBits) - 1) << kManBits;
  if (std::isnan(x)) return 0x7FFF;
  const uint32_t sign = std::signbit(x) ? 0x8000u : 0u;
  const double a = std::fabs(x);
  if (std::isinf(a)) return static_cast<uint16_t>(sign | kInf);
  if (a == 0) return static_cast<uint16_t>(sign);
  int e2 = 0;
  std::frexp(a, &e2);        // a = m * 2^e2, m in [0.5, 1)
  int e = e2 - 1;            // a in [2^e, 2^(e+1))
  if (e < kEmin) e = kEmin;  // subnormal: the quantum stays 2^(emin-man)
  if (e > 2 * kBias + 2) return static_cast<uint16_t>(sign | kInf);
  // The mantissa as an integer in [2^man, 2^(man+1)] (or below 2^man for a
  // subnormal): exact in double, so one rounding, to nearest even.
  const double scaled = std::ldexp(a, kManBits - e);
  double q = std::floor(scaled);
  const double rest = scaled - q;
  if (rest > 0.5 || (rest == 0.5 && std::fmod(q, 2.0) != 0)) q += 1;
  // Normal numbers: ((e + bias) << man) + q - 2^man; the same formula
  // covers subnormals (e == emin) and a carry into the next binade.
  uint32_t bits =
      (static_cast<uint32_t>(e - kEmin) << kManBits) + static_cast<uint32_t>(q);
  if (bits >= kInf) bits = kInf;
  return static_cast<uint16_t>(sign | bits);
}

template <int kExpBits, int kManBits>
inline float Widen(uint16_t h) {
  constexpr int kBias = (1 << (kExpBits - 1)) - 1;
  constexpr uint32_t kManMask = (1u << kManBits) - 1;
  constexpr uint32_t kExpMask = (1u << kExpBits) - 1;
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> kManBits) & kExpMask;
  const uint32_t man = h & kManMask;
  uint32_t bits;
  if (exp == kExpMask) {  // inf or NaN (payload kept)
    bits = sign | 0x7F800000u | (man << (23 - kManBits));
  } else if (exp == 0) {  // zero or subnormal: exact in float
    const float v = std::ldexp(static_cast<float>(man), 1 - kBias - kManBits);
    std::memcpy(&bits, &v, 4);
    bits |= sign;
  } else {
    bits = sign | ((exp - kBias + 127) << 23) | (man << (23 - kManBits));
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

inline uint16_t FloatToHalf(float f) { return RoundTo<5, 10>(f); }
inline uint16_t DoubleToHalf(double d) { return RoundTo<5, 10>(d); }
inline float HalfToFloat(uint16_t h) { return Widen<5, 10>(h); }

inline uint16_t FloatToBf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7FFFFFFFu) > 0x7F800000u) return 0x7FFF;  // NaN
  u += 0x7FFFu + ((u >> 16) & 1u);        // round to nearest even; carries into
  return static_cast<uint16_t>(u >> 16);  // the exponent (and to inf)
}
inline uint16_t DoubleToBf16(double d) { return RoundTo<8, 7>(d); }
inline float Bf16ToFloat(uint16_t h) {
  const uint32_t u = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

}  // namespace emu::fp16

#endif  // LLMSYS_TESTS_CUDA_EMU_EMU_FP16_CONVERT_H_
