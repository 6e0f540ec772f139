// The fused AdamW kernel (see cuda/adamw.h): one grid-stride loop over the
// concatenated elements of up to kAdamWTensorsPerLaunch parameters; each
// element finds its parameter by binary search in the table's element
// offsets and is updated on its own, so any launch shape gives the same
// bits.
//
// Letters: E the elements of one launch (the sum of its parameters').
#include <type_traits>

#include "cuda/adamw.h"
#include "cuda/common.cuh"

namespace llmsys::cuda {
namespace {

constexpr int kN = kAdamWTensorsPerLaunch;

// The parameter element type P, the state type S and the compute type C
// (the wider of the two: double when either is double, else float).
template <class P, class S>
struct AdamWTypes {
  using Param = P;
  using State = S;
  using Compute =
      typename std::conditional<(sizeof(Acc<P>) > sizeof(S)), Acc<P>, S>::type;
};

// The kernel argument: the table of one launch and the step's factors.
template <class C>
struct AdamWArgs {
  void* param[kN];
  const void* grad[kN];
  void* m[kN];
  void* v[kN];
  void* v_max[kN];  // nullptr entries unless amsgrad
  C shrink[kN];     // 1 - lr * weight_decay, or 1 without decay
  // Element offsets: parameter i is elements [start[i], start[i + 1]).
  int64_t start[kN + 1];
  int count;
  bool amsgrad;
  C beta1, beta2, one_minus_beta1, one_minus_beta2, bc2_sqrt, eps,
      neg_step_size;
};
static_assert(sizeof(AdamWArgs<double>) <= 4096,
              "the AdamW kernel argument must fit in 4 KiB");

__device__ __forceinline__ float Sqrt(float x) { return sqrtf(x); }
__device__ __forceinline__ double Sqrt(double x) { return sqrt(x); }

template <class K>
__global__ void adamw_kernel(AdamWArgs<typename K::Compute> a) {
  using P = typename K::Param;
  using S = typename K::State;
  using C = typename K::Compute;
  LLMSYS_GRID_STRIDE_LOOP(i, a.start[a.count]) {
    int lo = 0, hi = a.count - 1;  // the last parameter starting at or before i
    while (lo < hi) {
      const int mid = (lo + hi + 1) / 2;
      if (a.start[mid] <= i)
        lo = mid;
      else
        hi = mid - 1;
    }
    const int64_t e = i - a.start[lo];
    P* p = static_cast<P*>(a.param[lo]);             // (numel)
    const P* g = static_cast<const P*>(a.grad[lo]);  // (numel)
    S* m = static_cast<S*>(a.m[lo]);                 // (numel)
    S* v = static_cast<S*>(a.v[lo]);                 // (numel)
    const C pk = static_cast<C>(ToAcc(p[e])) * a.shrink[lo];
    const C gk = static_cast<C>(ToAcc(g[e]));
    const C mk = static_cast<C>(m[e]) * a.beta1 + a.one_minus_beta1 * gk;
    C vk = static_cast<C>(v[e]) * a.beta2 + a.one_minus_beta2 * gk * gk;
    m[e] = static_cast<S>(mk);
    v[e] = static_cast<S>(vk);
    if (a.amsgrad) {
      S* v_max = static_cast<S*>(a.v_max[lo]);  // (numel)
      const C vm = static_cast<C>(v_max[e]);
      vk = vm < vk ? vk : vm;  // std::max's choice, as the CPU adamw
      v_max[e] = static_cast<S>(vk);
    }
    const C denom = Sqrt(vk) / a.bc2_sqrt + a.eps;
    p[e] = FromAcc<P>(static_cast<Acc<P>>(pk + a.neg_step_size * mk / denom));
  }
}

// Launches the kernel for parameters [0, count) of `tensors` (at most kN,
// none empty).
template <class K>
cudaError_t LaunchChunk(const AdamWTensor* tensors, int count,
                        const AdamWScalars& s, cudaStream_t stream) {
  using C = typename K::Compute;
  AdamWArgs<C> a{};
  a.count = count;
  a.amsgrad = s.amsgrad;
  a.beta1 = static_cast<C>(s.beta1);
  a.beta2 = static_cast<C>(s.beta2);
  a.one_minus_beta1 = static_cast<C>(s.one_minus_beta1);
  a.one_minus_beta2 = static_cast<C>(s.one_minus_beta2);
  a.bc2_sqrt = static_cast<C>(s.bias_correction2_sqrt);
  a.eps = static_cast<C>(s.eps);
  a.neg_step_size = static_cast<C>(s.neg_step_size);
  a.start[0] = 0;
  for (int i = 0; i < count; ++i) {
    a.param[i] = tensors[i].param;
    a.grad[i] = tensors[i].grad;
    a.m[i] = tensors[i].exp_avg;
    a.v[i] = tensors[i].exp_avg_sq;
    a.v_max[i] = tensors[i].max_exp_avg_sq;
    a.shrink[i] = tensors[i].decay ? static_cast<C>(s.shrink) : C(1);
    a.start[i + 1] = a.start[i] + tensors[i].numel;
  }
  const GridPlan plan = ElementwisePlan(a.start[count]);
  LLMSYS_LAUNCH(adamw_kernel<K>, plan.blocks, plan.threads, 0, stream)(a);
  return cudaGetLastError();
}

template <class P>
cudaError_t LaunchAll(DType state, const AdamWTensor* tensors, int64_t count,
                      const AdamWScalars& s, cudaStream_t stream) {
  AdamWTensor chunk[kN];
  int n = 0;
  for (int64_t i = 0; i <= count; ++i) {
    if (i < count && tensors[i].numel > 0) chunk[n++] = tensors[i];
    if (n > 0 && (n == kN || i == count)) {
      cudaError_t e;
      if (state == DType::kF64) {
        using K = AdamWTypes<P, double>;
        e = LaunchChunk<K>(chunk, n, s, stream);
      } else {
        using K = AdamWTypes<P, float>;
        e = LaunchChunk<K>(chunk, n, s, stream);
      }
      if (e != cudaSuccess) return e;
      n = 0;
    }
  }
  return cudaSuccess;
}

}  // namespace

cudaError_t LaunchAdamW(DType param, DType state, const AdamWTensor* tensors,
                        int64_t count, const AdamWScalars& s,
                        cudaStream_t stream) {
  if (count <= 0) return cudaSuccess;
  LLMSYS_DISPATCH_FLOAT(
      param, { return LaunchAll<T>(state, tensors, count, s, stream); });
  return cudaErrorInvalidValue;
}

}  // namespace llmsys::cuda
