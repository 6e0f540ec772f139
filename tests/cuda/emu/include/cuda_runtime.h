// cuda_runtime.h (CPU emulation of CUDA) — what device code sees, as plain
// C++ over the scheduler of tests/cuda/emu (emu.h): the built-in variables
// (threadIdx, blockIdx, blockDim, gridDim, warpSize), __syncthreads, the
// warp shuffles and votes, atomics, __ldg, the math intrinsics, the launch
// macro LLMSYS_LAUNCH and LLMSYS_DYNAMIC_SMEM (cuda/common.cuh's, which it
// defines only for nvcc), and the host API of cuda_runtime_api.h.
//
//   LLMSYS_LAUNCH(neg_kernel<float>, plan.blocks, plan.threads, 0, stream)(
//       x, y, n);  // runs the grid now; failures: cudaGetLastError()
//
// Synchronization points (__syncthreads, every shuffle, vote and
// __syncwarp) switch to the next emulated thread; they record where they
// were called from (a defaulted std::source_location argument) so that the
// scheduler can tell threads waiting at different ones apart.
//
// Thread-safety: device functions run inside an emulated thread only; the
// built-in variables are per OS thread (the scheduler sets them before it
// switches to an emulated thread).
#ifndef LLMSYS_TESTS_CUDA_EMU_CUDA_RUNTIME_H_
#define LLMSYS_TESTS_CUDA_EMU_CUDA_RUNTIME_H_

#include <math.h>  // the C math functions (expf, ...) and <cmath>'s
                   // overloads (isnan, ...) in the global namespace

#include <atomic>
#include <bit>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <source_location>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>

#include "../emu.h"
#include "cuda_runtime_api.h"
#include "emu_defines.h"
#include "vector_types.h"

// ---- built-in variables ----

inline thread_local uint3 threadIdx;
inline thread_local uint3 blockIdx;
inline thread_local dim3 blockDim;
inline thread_local dim3 gridDim;
inline constexpr int warpSize = 32;

// ---- block and warp synchronization ----

inline void __syncthreads(
    std::source_location where = std::source_location::current()) {
  emu::SyncThreads(0, 0, where);
}
inline int __syncthreads_count(
    int predicate,
    std::source_location where = std::source_location::current()) {
  return emu::SyncThreads(1, predicate, where);
}
inline int __syncthreads_and(
    int predicate,
    std::source_location where = std::source_location::current()) {
  return emu::SyncThreads(2, predicate, where);
}
inline int __syncthreads_or(
    int predicate,
    std::source_location where = std::source_location::current()) {
  return emu::SyncThreads(3, predicate, where);
}

namespace emu::detail {

template <class T>
inline T Shuffle(WarpKind kind, unsigned mask, T var, int arg, int width,
                 const std::source_location& where) {
  static_assert(std::is_trivially_copyable_v<T> && sizeof(T) <= 16,
                "the emulated warp shuffles move trivially copyable values "
                "of at most 16 bytes");
  WarpOp op;
  op.kind = kind;
  op.mask = mask;
  op.arg = arg;
  op.width = width;
  op.size = sizeof(T);
  op.where = where;
  std::memcpy(op.in, &var, sizeof(T));
  WarpExchange(op);
  T out = var;
  std::memcpy(&out, op.out, sizeof(T));
  return out;
}

inline unsigned Ballot(unsigned mask, int predicate,
                       const std::source_location& where) {
  WarpOp op;
  op.kind = WarpKind::kBallot;
  op.mask = mask;
  op.size = sizeof(int);
  op.where = where;
  const int p = predicate != 0;
  std::memcpy(op.in, &p, sizeof(p));
  WarpExchange(op);
  unsigned out;
  std::memcpy(&out, op.out, sizeof(out));
  return out;
}

}  // namespace emu::detail

template <class T>
inline T __shfl_sync(
    unsigned mask, T var, int src_lane, int width = warpSize,
    std::source_location where = std::source_location::current()) {
  return emu::detail::Shuffle(emu::WarpKind::kShflIdx, mask, var, src_lane,
                              width, where);
}
template <class T>
inline T __shfl_up_sync(
    unsigned mask, T var, unsigned int delta, int width = warpSize,
    std::source_location where = std::source_location::current()) {
  return emu::detail::Shuffle(emu::WarpKind::kShflUp, mask, var,
                              static_cast<int>(delta), width, where);
}
template <class T>
inline T __shfl_down_sync(
    unsigned mask, T var, unsigned int delta, int width = warpSize,
    std::source_location where = std::source_location::current()) {
  return emu::detail::Shuffle(emu::WarpKind::kShflDown, mask, var,
                              static_cast<int>(delta), width, where);
}
template <class T>
inline T __shfl_xor_sync(
    unsigned mask, T var, int lane_mask, int width = warpSize,
    std::source_location where = std::source_location::current()) {
  return emu::detail::Shuffle(emu::WarpKind::kShflXor, mask, var, lane_mask,
                              width, where);
}
inline void __syncwarp(
    unsigned mask = 0xffffffffu,
    std::source_location where = std::source_location::current()) {
  emu::WarpOp op;
  op.kind = emu::WarpKind::kSync;
  op.mask = mask;
  op.where = where;
  emu::WarpExchange(op);
}
inline unsigned __ballot_sync(
    unsigned mask, int predicate,
    std::source_location where = std::source_location::current()) {
  return emu::detail::Ballot(mask, predicate, where);
}
inline int __any_sync(
    unsigned mask, int predicate,
    std::source_location where = std::source_location::current()) {
  return emu::detail::Ballot(mask, predicate, where) != 0;
}
inline int __all_sync(
    unsigned mask, int predicate,
    std::source_location where = std::source_location::current()) {
  return emu::detail::Ballot(mask, predicate, where) == mask;
}

// Memory fences order nothing the emulation could reorder; they are real
// fences for blocks that run on several OS threads (Options::workers).
inline void __threadfence_block() {
  std::atomic_thread_fence(std::memory_order_seq_cst);
}
inline void __threadfence() {
  std::atomic_thread_fence(std::memory_order_seq_cst);
}
inline void __threadfence_system() {
  std::atomic_thread_fence(std::memory_order_seq_cst);
}

[[noreturn]] inline void __trap(
    std::source_location where = std::source_location::current()) {
  emu::Trap(where);
}
inline void __nanosleep(unsigned) {}
inline long long clock64() {
  return std::chrono::steady_clock::now().time_since_epoch().count();
}

// ---- atomics (relaxed, as the GPU's; real atomics for the workers) ----

namespace emu::detail {
template <class T>
inline T AtomicAdd(T* address, T value) {
  return std::atomic_ref<T>(*address).fetch_add(value,
                                                std::memory_order_relaxed);
}
template <class T, class F>
inline T AtomicUpdate(T* address, F f) {
  std::atomic_ref<T> ref(*address);
  T old = ref.load(std::memory_order_relaxed);
  while (!ref.compare_exchange_weak(old, f(old), std::memory_order_relaxed)) {
  }
  return old;
}
}  // namespace emu::detail

inline int atomicAdd(int* a, int v) { return emu::detail::AtomicAdd(a, v); }
inline unsigned int atomicAdd(unsigned int* a, unsigned int v) {
  return emu::detail::AtomicAdd(a, v);
}
inline unsigned long long atomicAdd(unsigned long long* a,
                                    unsigned long long v) {
  return emu::detail::AtomicAdd(a, v);
}
inline float atomicAdd(float* a, float v) {
  return emu::detail::AtomicAdd(a, v);
}
inline double atomicAdd(double* a, double v) {
  return emu::detail::AtomicAdd(a, v);
}
inline int atomicSub(int* a, int v) { return emu::detail::AtomicAdd(a, -v); }
inline unsigned int atomicSub(unsigned int* a, unsigned int v) {
  return emu::detail::AtomicAdd(a, 0u - v);
}

#define LLMSYS_EMU_ATOMIC_INT_OPS(T)                                           \
  inline T atomicExch(T* a, T v) {                                             \
    return std::atomic_ref<T>(*a).exchange(v, std::memory_order_relaxed);      \
  }                                                                            \
  inline T atomicCAS(T* a, T compare, T v) {                                   \
    std::atomic_ref<T>(*a).compare_exchange_strong(compare, v,                 \
                                                   std::memory_order_relaxed); \
    return compare;                                                            \
  }                                                                            \
  inline T atomicMax(T* a, T v) {                                              \
    return emu::detail::AtomicUpdate(a, [v](T o) { return o < v ? v : o; });   \
  }                                                                            \
  inline T atomicMin(T* a, T v) {                                              \
    return emu::detail::AtomicUpdate(a, [v](T o) { return v < o ? v : o; });   \
  }                                                                            \
  inline T atomicAnd(T* a, T v) {                                              \
    return std::atomic_ref<T>(*a).fetch_and(v, std::memory_order_relaxed);     \
  }                                                                            \
  inline T atomicOr(T* a, T v) {                                               \
    return std::atomic_ref<T>(*a).fetch_or(v, std::memory_order_relaxed);      \
  }                                                                            \
  inline T atomicXor(T* a, T v) {                                              \
    return std::atomic_ref<T>(*a).fetch_xor(v, std::memory_order_relaxed);     \
  }
LLMSYS_EMU_ATOMIC_INT_OPS(int)
LLMSYS_EMU_ATOMIC_INT_OPS(unsigned int)
LLMSYS_EMU_ATOMIC_INT_OPS(long long)
LLMSYS_EMU_ATOMIC_INT_OPS(unsigned long long)
#undef LLMSYS_EMU_ATOMIC_INT_OPS
inline float atomicExch(float* a, float v) {
  return std::atomic_ref<float>(*a).exchange(v, std::memory_order_relaxed);
}
inline unsigned short atomicCAS(unsigned short* a, unsigned short compare,
                                unsigned short v) {
  std::atomic_ref<unsigned short>(*a).compare_exchange_strong(
      compare, v, std::memory_order_relaxed);
  return compare;
}

// ---- loads through the read-only cache: plain loads here ----

#define LLMSYS_EMU_LDG(T) \
  inline T __ldg(const T* p) { return *p; }
LLMSYS_EMU_LDG(char)
LLMSYS_EMU_LDG(signed char)
LLMSYS_EMU_LDG(unsigned char)
LLMSYS_EMU_LDG(short)
LLMSYS_EMU_LDG(unsigned short)
LLMSYS_EMU_LDG(int)
LLMSYS_EMU_LDG(unsigned int)
LLMSYS_EMU_LDG(long)
LLMSYS_EMU_LDG(unsigned long)
LLMSYS_EMU_LDG(long long)
LLMSYS_EMU_LDG(unsigned long long)
LLMSYS_EMU_LDG(float)
LLMSYS_EMU_LDG(double)
LLMSYS_EMU_LDG(char2)
LLMSYS_EMU_LDG(char4)
LLMSYS_EMU_LDG(uchar2)
LLMSYS_EMU_LDG(uchar4)
LLMSYS_EMU_LDG(short2)
LLMSYS_EMU_LDG(short4)
LLMSYS_EMU_LDG(ushort2)
LLMSYS_EMU_LDG(ushort4)
LLMSYS_EMU_LDG(int2)
LLMSYS_EMU_LDG(int4)
LLMSYS_EMU_LDG(uint2)
LLMSYS_EMU_LDG(uint4)
LLMSYS_EMU_LDG(longlong2)
LLMSYS_EMU_LDG(ulonglong2)
LLMSYS_EMU_LDG(float2)
LLMSYS_EMU_LDG(float4)
LLMSYS_EMU_LDG(double2)
#undef LLMSYS_EMU_LDG

// ---- math: <cmath> as is, CUDA's extra functions and intrinsics ----
// The fast intrinsics (__expf, __logf, ...) are the exact functions here:
// the GPU's approximations differ from them in the last bits.

inline float rsqrtf(float x) { return 1.0f / std::sqrt(x); }
inline double rsqrt(double x) { return 1.0 / std::sqrt(x); }
inline float rcbrtf(float x) { return 1.0f / std::cbrt(x); }
inline double rcbrt(double x) { return 1.0 / std::cbrt(x); }
inline float normcdff(float x) {
  return 0.5f * std::erfc(-x * 0.70710678118654752f);
}
inline double normcdf(double x) {
  return 0.5 * std::erfc(-x * 0.70710678118654752440);
}
inline float __expf(float x) { return std::exp(x); }
inline float __exp10f(float x) { return std::pow(10.0f, x); }
inline float __logf(float x) { return std::log(x); }
inline float __log2f(float x) { return std::log2(x); }
inline float __log10f(float x) { return std::log10(x); }
inline float __powf(float x, float y) { return std::pow(x, y); }
inline float __sinf(float x) { return std::sin(x); }
inline float __cosf(float x) { return std::cos(x); }
inline float __tanf(float x) { return std::tan(x); }
inline void __sincosf(float x, float* s, float* c) {
  *s = std::sin(x);
  *c = std::cos(x);
}
inline float __fdividef(float x, float y) { return x / y; }
inline float fdividef(float x, float y) { return x / y; }
inline float __frcp_rn(float x) { return 1.0f / x; }
inline double __drcp_rn(double x) { return 1.0 / x; }
inline float __fsqrt_rn(float x) { return std::sqrt(x); }
inline double __dsqrt_rn(double x) { return std::sqrt(x); }
inline float __frsqrt_rn(float x) { return 1.0f / std::sqrt(x); }
inline float __fadd_rn(float x, float y) { return x + y; }
inline float __fsub_rn(float x, float y) { return x - y; }
inline float __fmul_rn(float x, float y) { return x * y; }
inline float __fdiv_rn(float x, float y) { return x / y; }
inline float __fmaf_rn(float x, float y, float z) { return std::fma(x, y, z); }
inline double __dadd_rn(double x, double y) { return x + y; }
inline double __dsub_rn(double x, double y) { return x - y; }
inline double __dmul_rn(double x, double y) { return x * y; }
inline double __ddiv_rn(double x, double y) { return x / y; }
inline double __fma_rn(double x, double y, double z) {
  return std::fma(x, y, z);
}
inline float __saturatef(float x) {
  return x >= 1.0f ? 1.0f : x > 0.0f ? x : 0.0f;  // NaN -> 0
}

inline int __float_as_int(float x) { return std::bit_cast<int>(x); }
inline float __int_as_float(int x) { return std::bit_cast<float>(x); }
inline unsigned int __float_as_uint(float x) {
  return std::bit_cast<unsigned int>(x);
}
inline float __uint_as_float(unsigned int x) { return std::bit_cast<float>(x); }
inline long long __double_as_longlong(double x) {
  return std::bit_cast<long long>(x);
}
inline double __longlong_as_double(long long x) {
  return std::bit_cast<double>(x);
}

inline int __float2int_rn(float x) {
  return static_cast<int>(std::nearbyint(x));
}
inline int __float2int_rz(float x) { return static_cast<int>(x); }
inline int __float2int_rd(float x) { return static_cast<int>(std::floor(x)); }
inline int __float2int_ru(float x) { return static_cast<int>(std::ceil(x)); }
inline unsigned int __float2uint_rn(float x) {
  return static_cast<unsigned int>(std::nearbyint(x));
}
inline long long __float2ll_rn(float x) {
  return static_cast<long long>(std::nearbyint(x));
}
inline long long __double2ll_rn(double x) {
  return static_cast<long long>(std::nearbyint(x));
}
inline int __double2int_rn(double x) {
  return static_cast<int>(std::nearbyint(x));
}
inline float __int2float_rn(int x) { return static_cast<float>(x); }
inline float __uint2float_rn(unsigned int x) { return static_cast<float>(x); }
inline float __ll2float_rn(long long x) { return static_cast<float>(x); }
inline float __double2float_rn(double x) { return static_cast<float>(x); }

inline int __popc(unsigned int x) { return std::popcount(x); }
inline int __popcll(unsigned long long x) { return std::popcount(x); }
inline int __clz(int x) { return std::countl_zero(static_cast<unsigned>(x)); }
inline int __clzll(long long x) {
  return std::countl_zero(static_cast<unsigned long long>(x));
}
inline int __ffs(int x) { return __builtin_ffs(x); }
inline int __ffsll(long long x) { return __builtin_ffsll(x); }
inline unsigned int __brev(unsigned int x) {
  x = ((x >> 1) & 0x55555555u) | ((x & 0x55555555u) << 1);
  x = ((x >> 2) & 0x33333333u) | ((x & 0x33333333u) << 2);
  x = ((x >> 4) & 0x0F0F0F0Fu) | ((x & 0x0F0F0F0Fu) << 4);
  x = ((x >> 8) & 0x00FF00FFu) | ((x & 0x00FF00FFu) << 8);
  return (x >> 16) | (x << 16);
}
inline int __mulhi(int x, int y) {
  return static_cast<int>((static_cast<long long>(x) * y) >> 32);
}
inline unsigned int __umulhi(unsigned int x, unsigned int y) {
  return static_cast<unsigned int>((static_cast<unsigned long long>(x) * y) >>
                                   32);
}
inline int __mul24(int x, int y) {
  return static_cast<int>(static_cast<long long>((x << 8) >> 8) *
                          ((y << 8) >> 8));
}

// CUDA's global min and max overloads (device code calls them unqualified).
#define LLMSYS_EMU_MINMAX(R, A, B)                                    \
  inline R min(A a, B b) {                                            \
    return static_cast<R>(a) < static_cast<R>(b) ? static_cast<R>(a)  \
                                                 : static_cast<R>(b); \
  }                                                                   \
  inline R max(A a, B b) {                                            \
    return static_cast<R>(a) > static_cast<R>(b) ? static_cast<R>(a)  \
                                                 : static_cast<R>(b); \
  }
LLMSYS_EMU_MINMAX(int, int, int)
LLMSYS_EMU_MINMAX(unsigned int, unsigned int, unsigned int)
LLMSYS_EMU_MINMAX(unsigned int, int, unsigned int)
LLMSYS_EMU_MINMAX(unsigned int, unsigned int, int)
LLMSYS_EMU_MINMAX(long, long, long)
LLMSYS_EMU_MINMAX(unsigned long, unsigned long, unsigned long)
LLMSYS_EMU_MINMAX(long long, long long, long long)
LLMSYS_EMU_MINMAX(unsigned long long, unsigned long long, unsigned long long)
LLMSYS_EMU_MINMAX(unsigned long long, long long, unsigned long long)
LLMSYS_EMU_MINMAX(unsigned long long, unsigned long long, long long)
#undef LLMSYS_EMU_MINMAX
inline float min(float a, float b) { return std::fmin(a, b); }
inline float max(float a, float b) { return std::fmax(a, b); }
inline double min(double a, double b) { return std::fmin(a, b); }
inline double max(double a, double b) { return std::fmax(a, b); }
inline double min(float a, double b) { return std::fmin(double{a}, b); }
inline double max(float a, double b) { return std::fmax(double{a}, b); }
inline double min(double a, float b) { return std::fmin(a, double{b}); }
inline double max(double a, float b) { return std::fmax(a, double{b}); }

// ---- launches ----

namespace emu::detail {

template <class D>
inline void Extent(const D& d, int64_t out[3]) {
  if constexpr (std::is_integral_v<D>) {
    if constexpr (std::is_unsigned_v<D>) {
      out[0] = d > static_cast<std::make_unsigned_t<int64_t>>(INT64_MAX)
                   ? INT64_MAX
                   : static_cast<int64_t>(d);
    } else {
      out[0] = static_cast<int64_t>(d);
    }
    out[1] = out[2] = 1;
  } else {
    const dim3 v(d);
    out[0] = v.x;
    out[1] = v.y;
    out[2] = v.z;
  }
}

// "const float*, float*, long int": the kernel's parameter types, which
// tell the instantiations of a template kernel apart in messages.
inline std::string BracedList(const std::string& f) {
  const size_t open = f.find("P = {"), close = f.rfind('}');
  if (open == std::string::npos || close == std::string::npos || close < open)
    return std::string();
  return f.substr(open + 5, close - open - 5);
}
template <class... P>
const char* ParameterTypes() {
  static const std::string types = BracedList(__PRETTY_FUNCTION__);
  return types.c_str();
}

template <class... P>
class Launcher {
 public:
  Launcher(void (*kernel)(P...), const LaunchSpec& spec)
      : kernel_(kernel), spec_(spec) {}

  // The kernel's arguments, converted to its parameter types as a launch
  // does; each emulated thread gets its own copy.
  template <class... A>
  void operator()(A&&... args) const {
    static_assert(sizeof...(A) == sizeof...(P),
                  "LLMSYS_LAUNCH(...)(args): the kernel takes a different "
                  "number of arguments");
    using Params = std::tuple<P...>;
    const Params params(std::forward<A>(args)...);
    struct Closure {
      void (*kernel)(P...);
      const Params* params;
    };
    const Closure closure{kernel_, &params};
    LaunchSpec spec = spec_;
    spec.run = [](const void* c) {
      const Closure& cl = *static_cast<const Closure*>(c);
      Params copy(*cl.params);
      std::apply(cl.kernel, std::move(copy));
    };
    Launch(spec, &closure);
  }

 private:
  void (*kernel_)(P...);
  LaunchSpec spec_;
};

template <class... P, class G, class B, class S>
Launcher<P...> MakeLauncher(
    void (*kernel)(P...), const G& grid, const B& block, S smem,
    cudaStream_t stream, const char* name,
    std::source_location where = std::source_location::current()) {
  static_assert(std::is_integral_v<S>,
                "LLMSYS_LAUNCH: the shared memory size is an integer");
  LaunchSpec spec;
  Extent(grid, spec.grid);
  Extent(block, spec.block);
  if constexpr (std::is_unsigned_v<S>) {
    spec.smem = smem > static_cast<std::make_unsigned_t<int64_t>>(INT64_MAX)
                    ? INT64_MAX
                    : static_cast<int64_t>(smem);
  } else {
    spec.smem = static_cast<int64_t>(smem);
  }
  spec.stream = stream;
  spec.kernel = reinterpret_cast<const void*>(kernel);
  spec.name = name;
  spec.types = ParameterTypes<P...>();
  spec.where = where;
  return Launcher<P...>(kernel, spec);
}

}  // namespace emu::detail

// `kernel` names one function (a template kernel with its arguments
// spelled out: neg_kernel<T>); the grid and block are dim3 or integers
// (checked before any narrowing), smem bytes an integer.
#define LLMSYS_LAUNCH(kernel, grid, block, smem, stream)                   \
  ::emu::detail::MakeLauncher((kernel), (grid), (block), (smem), (stream), \
                              #kernel)
#define LLMSYS_DYNAMIC_SMEM(T, name) \
  T* name = reinterpret_cast<T*>(::emu::DynamicSmem())

template <class T>
inline cudaError_t cudaFuncSetAttribute(T* entry, cudaFuncAttribute attr,
                                        int value) {
  return cudaFuncSetAttribute(reinterpret_cast<const void*>(entry), attr,
                              value);
}

// __constant__ and __device__ variables are host variables here.
template <class T>
inline cudaError_t cudaMemcpyToSymbol(
    T& symbol, const void* src, size_t count, size_t offset = 0,
    cudaMemcpyKind kind = cudaMemcpyHostToDevice) {
  if (offset + count > sizeof(T)) return cudaErrorInvalidValue;
  return cudaMemcpy(reinterpret_cast<char*>(&symbol) + offset, src, count,
                    kind);
}
template <class T>
inline cudaError_t cudaMemcpyToSymbolAsync(T& symbol, const void* src,
                                           size_t count, size_t offset,
                                           cudaMemcpyKind kind, cudaStream_t) {
  return cudaMemcpyToSymbol(symbol, src, count, offset, kind);
}

#endif  // LLMSYS_TESTS_CUDA_EMU_CUDA_RUNTIME_H_
