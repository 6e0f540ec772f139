// cuda/reductions.cu — sum, mean and max over dims, their backwards, and a
// zero fill, on the strided walk engine of cuda/reductions.cuh.
//
// Letters: n elements of x, K outputs, R elements reduced per output.
#include "cuda/reductions.cuh"

namespace llmsys::cuda {
namespace {

// ---- functors ----

// Operand 0 of a walked element, as the accumulator.
template <class T>
struct LoadSrc {
  const T* x;  // (n) any walked layout
  __device__ Acc<T> operator()(const Offsets& off) const {
    return ToAcc(x[off.o[0]]);
  }
};

// Operand 0 and its offset, for ArgMaxReducer.
template <class T>
struct ArgLoadSrc {
  const T* x;  // (n)
  __device__ ArgMaxValue<Acc<T>> operator()(const Offsets& off) const {
    ArgMaxValue<Acc<T>> v;
    v.v = ToAcc(x[off.o[0]]);
    v.i = off.o[0];
    return v;
  }
};

// out[j] = v / divisor (divisor 1 for sums: exact).
template <class T>
struct StoreEpi {
  T* out;  // (K)
  Acc<T> divisor;
  __device__ void operator()(int64_t j, Acc<T> v) const {
    out[j] = FromAcc<T>(v / divisor);
  }
};

// out[j] = the maximum (an exact copy of the element's value).
template <class T>
struct MaxEpi {
  T* out;  // (K)
  __device__ void operator()(int64_t j, ArgMaxValue<Acc<T>> v) const {
    out[j] = FromAcc<T>(v.v);
  }
};

// gx[offset of the maximum of output j] = g[j]; gx is zero elsewhere (set
// first). Outputs own disjoint groups, so no two write one element.
template <class T>
struct MaxGradEpi {
  const T* g;  // (K)
  T* gx;       // (n)
  __device__ void operator()(int64_t j, ArgMaxValue<Acc<T>> v) const {
    gx[v.i] = g[j];
  }
};

// gx[j] = g at j's offset (operand 0), divided by `divisor`.
template <class T>
struct ExpandSrc {
  const T* g;  // (K) broadcast to x's shape
  __device__ Acc<T> operator()(const Offsets& off) const {
    return ToAcc(g[off.o[0]]);
  }
};

// ---- kernels ----

// Zero fill in 16-byte units, then the byte tail.
struct alignas(16) Zero16 {
  uint64_t a, b;
};

__global__ void zero16_kernel(Zero16* p, int64_t units) {
  LLMSYS_GRID_STRIDE_LOOP(i, units) {
    Zero16 z;
    z.a = 0;
    z.b = 0;
    p[i] = z;
  }
}

__global__ void zero_bytes_kernel(unsigned char* p, int64_t bytes) {
  LLMSYS_GRID_STRIDE_LOOP(i, bytes) { p[i] = 0; }
}

}  // namespace

// ---- launchers ----

cudaError_t LaunchZero(void* p, int64_t bytes, cudaStream_t stream) {
  if (bytes <= 0) return cudaSuccess;
  unsigned char* bp = static_cast<unsigned char*>(p);
  int64_t head = 0;  // bytes before the first 16-byte boundary
  const uintptr_t addr = reinterpret_cast<uintptr_t>(p);
  if (addr % 16 != 0)
    head = std::min<int64_t>(bytes, static_cast<int64_t>(16 - addr % 16));
  const int64_t units = (bytes - head) / 16;
  const int64_t tail = bytes - head - units * 16;
  if (head > 0) {
    const GridPlan plan = ElementwisePlan(head);
    LLMSYS_LAUNCH(zero_bytes_kernel, static_cast<unsigned>(plan.blocks),
                  plan.threads, 0, stream)
    (bp, head);
  }
  if (units > 0) {
    const GridPlan plan = ElementwisePlan(units);
    LLMSYS_LAUNCH(zero16_kernel, static_cast<unsigned>(plan.blocks),
                  plan.threads, 0, stream)
    (reinterpret_cast<Zero16*>(bp + head), units);
  }
  if (tail > 0) {
    const GridPlan plan = ElementwisePlan(tail);
    LLMSYS_LAUNCH(zero_bytes_kernel, static_cast<unsigned>(plan.blocks),
                  plan.threads, 0, stream)
    (bp + head + units * 16, tail);
  }
  return cudaGetLastError();
}

cudaError_t LaunchSum(DType t, const void* x, void* out, const ReduceGeom& g,
                      const ReducePlan& plan, bool mean, void* workspace,
                      cudaStream_t stream) {
  if (g.k == 0) return cudaSuccess;
  cudaError_t e = cudaSuccess;
  LLMSYS_DISPATCH_FLOAT(t, {
    using A = Acc<T>;
    const LoadSrc<T> src{static_cast<const T*>(x)};
    // mean: the sum divided by R (0/0 = NaN for an empty group, as the
    // reference's double division).
    const StoreEpi<T> epi{static_cast<T*>(out),
                          mean ? static_cast<A>(g.r) : A(1)};
    e = LaunchReduce<SumReducer<A>>(g, plan, src, epi, workspace, stream);
  });
  return e;
}

cudaError_t LaunchSumBackward(DType t, const void* g, void* gx,
                              const StridedDims& dims, int64_t n,
                              double divisor, cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  cudaError_t e = cudaSuccess;
  LLMSYS_DISPATCH_FLOAT(t, {
    using A = Acc<T>;
    const ExpandSrc<T> src{static_cast<const T*>(g)};
    const StoreEpi<T> epi{static_cast<T*>(gx), static_cast<A>(divisor)};
    e = LaunchMap(dims, n, src, epi, stream);
  });
  return e;
}

cudaError_t LaunchMax(DType t, const void* x, void* out, const ReduceGeom& g,
                      const ReducePlan& plan, void* workspace,
                      cudaStream_t stream) {
  if (g.k == 0) return cudaSuccess;
  if (g.r == 0) return cudaErrorInvalidValue;  // Infer rejects it
  cudaError_t e = cudaSuccess;
  LLMSYS_DISPATCH_FLOAT(t, {
    using A = Acc<T>;
    const ArgLoadSrc<T> src{static_cast<const T*>(x)};
    const MaxEpi<T> epi{static_cast<T*>(out)};
    e = LaunchReduce<ArgMaxReducer<A>>(g, plan, src, epi, workspace, stream);
  });
  return e;
}

cudaError_t LaunchMaxBackward(DType t, const void* x, const void* g, void* gx,
                              int64_t n, const ReduceGeom& geom,
                              const ReducePlan& plan, void* workspace,
                              cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  cudaError_t e = LaunchZero(gx, n * DTypeBytes(t), stream);
  if (e != cudaSuccess || g == nullptr || geom.k == 0) return e;
  if (geom.r == 0) return cudaErrorInvalidValue;
  LLMSYS_DISPATCH_FLOAT(t, {
    using A = Acc<T>;
    const ArgLoadSrc<T> src{static_cast<const T*>(x)};
    const MaxGradEpi<T> epi{static_cast<const T*>(g), static_cast<T*>(gx)};
    e = LaunchReduce<ArgMaxReducer<A>>(geom, plan, src, epi, workspace, stream);
  });
  return e;
}

}  // namespace llmsys::cuda
