// plugins/operators/cpu/common.h — what the llmsys.cpu operators share:
// argument checks (the reference's helpers, with this plugin's wording),
// dtype dispatch, the OpenBLAS GEMM wrapper that honours the call's thread
// count, a vectorizable float exp, and Philox draws four at a time.
//
// Every operator here computes float32 on a fast path (BLAS, loops written
// for the compiler to vectorize) and float64 the same way (so the
// conformance suite's gradient check runs). Results are deterministic for a
// fixed thread count: no atomics, no reductions whose order depends on
// timing.
#ifndef LLMSYS_PLUGINS_OPERATORS_CPU_COMMON_H_
#define LLMSYS_PLUGINS_OPERATORS_CPU_COMMON_H_

#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "llmsys/random.h"
#include "llmsys/sdk.hpp"
#include "plugins/operators/reference/common.h"

// Kernels compiled for AVX-512, AVX2+FMA and baseline x86-64, picked at load
// time from CPUID (sdk.hpp's LLMSYS_MULTIVERSION).
#define LLMSYS_CPU_KERNEL LLMSYS_MULTIVERSION

namespace llmsys::cpu {

using reference::Arg;
using reference::ArgFail;
using reference::BroadcastIndex;
using reference::BroadcastShape;
using reference::CheckedTarget;
using reference::CheckNormArgs;
using reference::Describe;
using reference::DropoutP;
using reference::FloatArg;
using reference::ForFloat;
using reference::IndexArg;
using reference::IndexAt;
using reference::IsF32;
using reference::IsF64;
using reference::IsIndex;
using reference::IsMask;
using reference::KeptShape;
using reference::LabelSmoothingOf;
using reference::Lanes;
using reference::LanesOf;
using reference::MaskArg;
using reference::MaskAt;
using reference::NormDim;
using reference::Numel;
using reference::OptionalArg;
using reference::OutShape;
using reference::ReducedDims;
using reference::Reduction;
using reference::ReductionOf;
using reference::RequireSameDtype;
using reference::Shape;
using reference::ShapeOf;
using reference::SpecOf;
using reference::Str;
using reference::Zero;
using sdk::Fail;

// ---- threads (the host's pool, sdk::ParallelFor) ----

// Elements per range below which a loop stays on one thread: waking the
// pool costs a few microseconds, about what 32k floats take.
constexpr int64_t kGrain = 1 << 15;

// Runs fn(begin, end) over [0, n) split into at most one contiguous range
// per call thread of at least `grain` items (sdk::ParallelRange: the split
// depends on n, grain and the thread count only).
template <class Fn>
void ForRanges(const llmsys_op_call_t& call, int64_t n, int64_t grain,
               Fn&& fn) {
  sdk::ParallelRange(call.ctx, n, grain, std::forward<Fn>(fn));
}

// out (len) = the sum of g's `rows` rows of `len` (a broadcast row's
// gradient, a bias's). Each thread owns a range of columns and adds the
// rows in order, so the result does not depend on the thread count.
template <class T>
void SumRows(const llmsys_op_call_t& call, const T* g, int64_t rows,
             int64_t len, T* out) {
  ForRanges(call, len,
            std::max<int64_t>(16, kGrain / std::max<int64_t>(rows, 1)),
            [&](int64_t j0, int64_t j1) {
              for (int64_t j = j0; j < j1; ++j) out[j] = T(0);
              for (int64_t r = 0; r < rows; ++r) {
                const T* gr = g + r * len;
                for (int64_t j = j0; j < j1; ++j) out[j] += gr[j];
              }
            });
}

// ---- BLAS ----

// Makes OpenBLAS use the call's thread count (a process-wide setting,
// changed only when it differs).
void UseThreads(const llmsys_op_call_t& call);

// Makes OpenBLAS use `threads` threads, for GEMMs run inside the pool's
// tasks (one each); the next UseThreads sets the call's count back.
void UseBlasThreads(int threads);

// Independent items that are a few GEMMs each, such as the (batch, head)
// pairs of attention: with enough items they are spread over the call's
// threads with one BLAS thread each; else they run in order with OpenBLAS
// on the call's threads. GemmParts says how many run at once (make that
// many scratch buffers); ForGemmItems runs fn(part, item) for every item,
// `part` < parts naming the buffer set of the thread running it. Items go
// to parts by index alone.
inline int64_t GemmParts(const llmsys_op_call_t& call, int64_t count) {
  const int threads = sdk::Threads(call.ctx);
  return threads > 1 && count >= threads ? threads : 1;
}

template <class Fn>
void ForGemmItems(const llmsys_op_call_t& call, int64_t count, int64_t parts,
                  Fn&& fn) {
  if (parts <= 1) {
    UseThreads(call);
    for (int64_t i = 0; i < count; ++i) fn(int64_t{0}, i);
    return;
  }
  UseBlasThreads(1);
  sdk::ParallelFor(call.ctx, parts, [&](int64_t part) {
    for (int64_t i = count * part / parts; i < count * (part + 1) / parts; ++i)
      fn(part, i);
  });
}

// Row-major C (m, n) = alpha * op(A) (m, k) @ op(B) (k, n) + beta * C, with
// A stored (m, k) or, transposed, (k, m); lda/ldb/ldc are row strides.
// Sizes of 0 are handled here (BLAS rejects a leading dim of 0).
void Gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha,
          const float* a, int64_t lda, const float* b, int64_t ldb, float beta,
          float* c, int64_t ldc);
void Gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, double alpha,
          const double* a, int64_t lda, const double* b, int64_t ldb,
          double beta, double* c, int64_t ldc);
// The same on the call's threads: C's rows (or columns, when wider) split
// into one block per thread, each a one-thread OpenBLAS GEMM on the host's
// pool, so OpenBLAS's own threads stay asleep. Small products run as one
// GEMM on OpenBLAS's threads.
void Gemm(const llmsys_op_call_t& call, bool ta, bool tb, int64_t m, int64_t n,
          int64_t k, float alpha, const float* a, int64_t lda, const float* b,
          int64_t ldb, float beta, float* c, int64_t ldc);
void Gemm(const llmsys_op_call_t& call, bool ta, bool tb, int64_t m, int64_t n,
          int64_t k, double alpha, const double* a, int64_t lda,
          const double* b, int64_t ldb, double beta, double* c, int64_t ldc);

// The BLAS core OpenBLAS chose ("SkylakeX", "Haswell", "Prescott", ...).
std::string BlasCore();

// ---- math ----

// e^x = 2^n p(r) for x = n ln 2 + r, |r| <= ln 2 / 2: returns p(r) (Cephes'
// polynomial, ~2 ulp) and sets n, a whole number as a float. Vectorizable;
// x must be finite and within +-2^22 ln 2.
inline float ExpReduced(float x, float* n_out) {
  // n = round(x / ln 2), by the magic-number trick (exact for |n| < 2^22).
  const float magic = 12582912.0f;  // 1.5 * 2^23
  float n = x * 1.44269504088896341f + magic;
  n -= magic;
  float r = x - n * 0.693359375f;
  r -= n * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  *n_out = n;
  return p * r * r + r + 1.0f;
}

// 2^n for n in [-126, 127], from the exponent bits.
inline float Pow2(int32_t n) { return std::bit_cast<float>((n + 127) << 23); }

// e^x in float, vectorizable (~2 ulp; 0 below -87.3, +inf above 88.7, NaN
// stays NaN).
inline float FastExp(float x) {
  const float hi = 88.72283935546875f, lo = -87.33654022216797f;
  const bool nan = x != x;
  const bool over = x > hi, under = x < lo;
  x = x < lo ? lo : (x > hi ? hi : x);
  float n;
  const float p = ExpReduced(x, &n);
  // n is in [-126, 128]: the scale in two halves keeps both normal.
  const int32_t ni = static_cast<int32_t>(n);
  const int32_t n1 = ni / 2;
  float y = p * Pow2(n1) * Pow2(ni - n1);
  y = under ? 0.0f : y;
  y = over ? std::bit_cast<float>(0x7f800000) : y;
  return nan ? x : y;
}

// e^x for the dtype: the vectorizable float form, or std::exp in double.
inline float Exp(float x) { return FastExp(x); }
inline double Exp(double x) { return std::exp(x); }

// tanh for the dtype: std::tanh in double; in float 1 - 2 / (e^{2x} + 1)
// with x clamped to [-10, 10] first (tanh(10) rounds to 1 in float), so
// e^{2x} = 2^n p(r) with n in [-29, 29] needs neither FastExp's overflow and
// underflow guards nor its split scale: a quarter fewer vector operations
// for GELU, its one user. A NaN stays NaN.
inline float Tanh(float x) {
  const bool nan = x != x;
  x = x < -10.0f ? -10.0f : (x > 10.0f ? 10.0f : x);
  float n;
  const float p = ExpReduced(2.0f * x, &n);
  const float t = 1.0f - 2.0f / (p * Pow2(static_cast<int32_t>(n)) + 1.0f);
  return nan ? x : t;
}
inline double Tanh(double x) { return std::tanh(x); }

// The largest of x[0, n) that is not NaN (-inf when there is none), as a
// vectorized max reduction: written `std::max(mx, x[j])`, the loop
// compiles to a scalar chain that took half of a softmax row's time. In
// this form every lane skips NaNs, so the result does not depend on where a
// NaN sits; callers still get NaN from the exps of x - max and their sums.
template <class T>
inline T RowMax(const T* x, int64_t n) {
  T mx = -std::numeric_limits<T>::infinity();
#pragma omp simd reduction(max : mx)
  for (int64_t j = 0; j < n; ++j) mx = x[j] > mx ? x[j] : mx;
  return mx;
}

// ---- random numbers (llmsys/random.h) ----

// out[j] = llmsys_random_uniform(seed, offset, first + j) for j < count,
// one Philox evaluation per four numbers.
inline void Uniforms(uint64_t seed, uint64_t offset, uint64_t first,
                     int64_t count, float* out) {
  const uint32_t key[2] = {static_cast<uint32_t>(seed),
                           static_cast<uint32_t>(seed >> 32)};
  int64_t j = 0;
  while (j < count) {
    const uint64_t i = first + static_cast<uint64_t>(j);
    const uint64_t counter = offset + i / 4;
    uint32_t c[4] = {static_cast<uint32_t>(counter),
                     static_cast<uint32_t>(counter >> 32), 0, 0};
    llmsys_philox4x32_10(c, key);
    for (uint64_t w = i % 4; w < 4 && j < count; ++w, ++j)
      out[j] = static_cast<float>(c[w] >> 8) * (1.0f / 16777216.0f);
  }
}

// Registration, one function per source file (plugin.cc calls them all).
void RegisterMatmul(sdk::Registry& registry);
void RegisterElementwise(sdk::Registry& registry);
void RegisterReductions(sdk::Registry& registry);
void RegisterNorms(sdk::Registry& registry);
void RegisterSoftmax(sdk::Registry& registry);
void RegisterEmbedding(sdk::Registry& registry);
void RegisterDropout(sdk::Registry& registry);
void RegisterAttention(sdk::Registry& registry);
void RegisterFlashAttention(sdk::Registry& registry);
void RegisterContiguous(sdk::Registry& registry);

}  // namespace llmsys::cpu

#endif  // LLMSYS_PLUGINS_OPERATORS_CPU_COMMON_H_
