// cuda/elementwise.cu — unary ops, add/sub/mul/div with broadcasting,
// where, masked_fill, and the byte copies of contiguous and concat.
//
// Letters: n elements of the output (of x for unary ops), L the length of a
// broadcast row, W elements per 16-byte pack (kV), P = n / W packs.
//
// Every op computes in float (double for float64) through ToAcc/FromAcc
// with the reference's formulas (plugins/operators/reference/elementwise.cc
// and shape_ops.cc), backward included: gx = g * f'(x).
#include "cuda/elementwise.h"
#include "cuda/reductions.cuh"

namespace llmsys::cuda {
namespace {

// ---- math on the accumulator types ----

__device__ __forceinline__ float Exp(float x) { return expf(x); }
__device__ __forceinline__ double Exp(double x) { return exp(x); }
__device__ __forceinline__ float Log(float x) { return logf(x); }
__device__ __forceinline__ double Log(double x) { return log(x); }
__device__ __forceinline__ float Pow(float x, float e) { return powf(x, e); }
__device__ __forceinline__ double Pow(double x, double e) { return pow(x, e); }
__device__ __forceinline__ float Sqrt(float x) { return sqrtf(x); }
__device__ __forceinline__ double Sqrt(double x) { return sqrt(x); }
__device__ __forceinline__ float Tanh(float x) { return tanhf(x); }
__device__ __forceinline__ double Tanh(double x) { return tanh(x); }
__device__ __forceinline__ float Erf(float x) { return erff(x); }
__device__ __forceinline__ double Erf(double x) { return erf(x); }

// W elements loaded and stored as one 16-byte access (W = 1: one element).
template <class T, int kV>
struct alignas(sizeof(T) * kV) Pack {
  T v[kV];
};

// ---- unary ops: the reference's F and D ----

// sqrt(2 / pi), sqrt(2 pi) and sqrt(2), rounded to A.
template <class A>
__device__ __forceinline__ A GeluK() {
  return A(0.79788456080286535587989211986876);
}
template <class A>
__device__ __forceinline__ A Sqrt2Pi() {
  return A(2.50662827463100050241576528481105);
}
template <class A>
__device__ __forceinline__ A Sqrt2() {
  return A(1.41421356237309504880168872420970);
}

template <UnaryOp kOp, class A>
__device__ __forceinline__ A UnaryF(A x, A e) {
  if constexpr (kOp == UnaryOp::kNeg) {
    return -x;
  } else if constexpr (kOp == UnaryOp::kExp) {
    return Exp(x);
  } else if constexpr (kOp == UnaryOp::kLog) {
    return Log(x);
  } else if constexpr (kOp == UnaryOp::kPow) {
    return Pow(x, e);
  } else if constexpr (kOp == UnaryOp::kSqrt) {
    return Sqrt(x);
  } else if constexpr (kOp == UnaryOp::kTanh) {
    return Tanh(x);
  } else if constexpr (kOp == UnaryOp::kSigmoid) {
    return A(1) / (A(1) + Exp(-x));
  } else if constexpr (kOp == UnaryOp::kRelu) {
    return x > A(0) ? x : A(0);
  } else if constexpr (kOp == UnaryOp::kGeluErf) {
    return A(0.5) * x * (A(1) + Erf(x / Sqrt2<A>()));
  } else {  // kGeluTanh
    return A(0.5) * x *
           (A(1) + Tanh(GeluK<A>() * (x + A(0.044715) * x * x * x)));
  }
}

// d out / d x at x (the reference's formulas; kNeg does not read x).
template <UnaryOp kOp, class A>
__device__ __forceinline__ A UnaryD(A x, A e) {
  if constexpr (kOp == UnaryOp::kNeg) {
    return A(-1);
  } else if constexpr (kOp == UnaryOp::kExp) {
    return Exp(x);
  } else if constexpr (kOp == UnaryOp::kLog) {
    return A(1) / x;
  } else if constexpr (kOp == UnaryOp::kPow) {
    if (e == A(0)) return A(0);
    return e * Pow(x, e - A(1));
  } else if constexpr (kOp == UnaryOp::kSqrt) {
    return A(0.5) / Sqrt(x);
  } else if constexpr (kOp == UnaryOp::kTanh) {
    const A t = Tanh(x);
    return A(1) - t * t;
  } else if constexpr (kOp == UnaryOp::kSigmoid) {
    const A s = A(1) / (A(1) + Exp(-x));
    return s * (A(1) - s);
  } else if constexpr (kOp == UnaryOp::kRelu) {
    return x > A(0) ? A(1) : A(0);
  } else if constexpr (kOp == UnaryOp::kGeluErf) {
    const A cdf = A(0.5) * (A(1) + Erf(x / Sqrt2<A>()));
    const A pdf = Exp(A(-0.5) * x * x) / Sqrt2Pi<A>();
    return cdf + x * pdf;
  } else {  // kGeluTanh
    const A k = GeluK<A>();
    const A t = Tanh(k * (x + A(0.044715) * x * x * x));
    return A(0.5) * (A(1) + t) + A(0.5) * x * (A(1) - t * t) * k *
                                     (A(1) + A(3) * A(0.044715) * x * x);
  }
}

// out (P packs) = F(x (P packs)).
template <UnaryOp kOp, class T, int kV>
__global__ void unary_forward_kernel(const T* x, T* out, int64_t packs,
                                     Acc<T> e) {
  using P = Pack<T, kV>;
  const P* px = reinterpret_cast<const P*>(x);  // (P)
  P* po = reinterpret_cast<P*>(out);            // (P)
  LLMSYS_GRID_STRIDE_LOOP(i, packs) {
    P p = px[i];
#pragma unroll
    for (int k = 0; k < kV; ++k)
      p.v[k] = FromAcc<T>(UnaryF<kOp>(ToAcc(p.v[k]), e));
    po[i] = p;
  }
}

// gx (P packs) = g * D(x).
template <UnaryOp kOp, class T, int kV>
__global__ void unary_backward_kernel(const T* x, const T* g, T* gx,
                                      int64_t packs, Acc<T> e) {
  using P = Pack<T, kV>;
  using A = Acc<T>;
  const P* px = reinterpret_cast<const P*>(x);  // (P), null for kNeg
  const P* pg = reinterpret_cast<const P*>(g);  // (P)
  P* po = reinterpret_cast<P*>(gx);             // (P)
  LLMSYS_GRID_STRIDE_LOOP(i, packs) {
    const P gp = pg[i];
    P p;
    if constexpr (kOp == UnaryOp::kNeg) {
#pragma unroll
      for (int k = 0; k < kV; ++k)
        p.v[k] = FromAcc<T>(ToAcc(gp.v[k]) * UnaryD<kOp>(A(0), e));
    } else {
      const P xp = px[i];
#pragma unroll
      for (int k = 0; k < kV; ++k)
        p.v[k] = FromAcc<T>(ToAcc(gp.v[k]) * UnaryD<kOp>(ToAcc(xp.v[k]), e));
    }
    po[i] = p;
  }
}

template <UnaryOp kOp>
cudaError_t UnaryForward(DType t, const void* x, void* out, int64_t n,
                         double exponent, cudaStream_t stream) {
  LLMSYS_DISPATCH_FLOAT(t, {
    constexpr int kW = 16 / sizeof(T);
    const int w = PackWidth(t, {x, out}, {n});
    const int64_t packs = n / w;
    const GridPlan plan = ElementwisePlan(packs);
    const auto a = static_cast<Acc<T>>(exponent);
    if (w == kW) {
      const auto kernel = &unary_forward_kernel<kOp, T, kW>;
      LLMSYS_LAUNCH(kernel, static_cast<unsigned>(plan.blocks), plan.threads, 0,
                    stream)
      (static_cast<const T*>(x), static_cast<T*>(out), packs, a);
    } else {
      const auto kernel = &unary_forward_kernel<kOp, T, 1>;
      LLMSYS_LAUNCH(kernel, static_cast<unsigned>(plan.blocks), plan.threads, 0,
                    stream)
      (static_cast<const T*>(x), static_cast<T*>(out), packs, a);
    }
  });
  return cudaGetLastError();
}

template <UnaryOp kOp>
cudaError_t UnaryBackward(DType t, const void* x, const void* g, void* gx,
                          int64_t n, double exponent, cudaStream_t stream) {
  LLMSYS_DISPATCH_FLOAT(t, {
    constexpr int kW = 16 / sizeof(T);
    const int w = kOp == UnaryOp::kNeg ? PackWidth(t, {g, gx}, {n})
                                       : PackWidth(t, {x, g, gx}, {n});
    const int64_t packs = n / w;
    const GridPlan plan = ElementwisePlan(packs);
    const auto a = static_cast<Acc<T>>(exponent);
    if (w == kW) {
      const auto kernel = &unary_backward_kernel<kOp, T, kW>;
      LLMSYS_LAUNCH(kernel, static_cast<unsigned>(plan.blocks), plan.threads, 0,
                    stream)
      (static_cast<const T*>(x), static_cast<const T*>(g), static_cast<T*>(gx),
       packs, a);
    } else {
      const auto kernel = &unary_backward_kernel<kOp, T, 1>;
      LLMSYS_LAUNCH(kernel, static_cast<unsigned>(plan.blocks), plan.threads, 0,
                    stream)
      (static_cast<const T*>(x), static_cast<const T*>(g), static_cast<T*>(gx),
       packs, a);
    }
  });
  return cudaGetLastError();
}

// ---- binary ops: the reference's F, DA and DB ----

struct AddOp {
  static constexpr bool kReadsInputs = false;
  template <class A>
  __device__ static A F(A a, A b) {
    return a + b;
  }
  template <class A>
  __device__ static A DA(A, A) {
    return A(1);
  }
  template <class A>
  __device__ static A DB(A, A) {
    return A(1);
  }
};
struct SubOp {
  static constexpr bool kReadsInputs = false;
  template <class A>
  __device__ static A F(A a, A b) {
    return a - b;
  }
  template <class A>
  __device__ static A DA(A, A) {
    return A(1);
  }
  template <class A>
  __device__ static A DB(A, A) {
    return A(-1);
  }
};
struct MulOp {
  static constexpr bool kReadsInputs = true;
  template <class A>
  __device__ static A F(A a, A b) {
    return a * b;
  }
  template <class A>
  __device__ static A DA(A, A b) {
    return b;
  }
  template <class A>
  __device__ static A DB(A a, A) {
    return a;
  }
};
struct DivOp {
  static constexpr bool kReadsInputs = true;
  template <class A>
  __device__ static A F(A a, A b) {
    return a / b;
  }
  template <class A>
  __device__ static A DA(A, A b) {
    return A(1) / b;
  }
  template <class A>
  __device__ static A DB(A a, A b) {
    return -a / (b * b);
  }
};

// Pack i of an operand laid out as `layout` (kFull, kRow of len_packs
// packs, kScalar: element 0 in every lane).
template <class T, int kV>
__device__ __forceinline__ Pack<T, kV> LoadOperand(const T* p, int layout,
                                                   int64_t len_packs,
                                                   int64_t i) {
  using P = Pack<T, kV>;
  if (layout == static_cast<int>(OperandLayout::kScalar)) {
    P s;
    const T v = p[0];
#pragma unroll
    for (int k = 0; k < kV; ++k) s.v[k] = v;
    return s;
  }
  const P* pp = reinterpret_cast<const P*>(p);
  return layout == static_cast<int>(OperandLayout::kRow) ? pp[i % len_packs]
                                                         : pp[i];
}

// out (P packs) = F(a, b), a and b each full, a row or a scalar.
template <class Op, class T, int kV>
__global__ void binary_kernel(const T* a, int layout_a, int64_t len_a,
                              const T* b, int layout_b, int64_t len_b, T* out,
                              int64_t packs) {
  using P = Pack<T, kV>;
  P* po = reinterpret_cast<P*>(out);  // (P)
  LLMSYS_GRID_STRIDE_LOOP(i, packs) {
    const P pa = LoadOperand<T, kV>(a, layout_a, len_a, i);  // (P) or (L/W)
    const P pb = LoadOperand<T, kV>(b, layout_b, len_b, i);  // (P) or (L/W)
    P p;
#pragma unroll
    for (int k = 0; k < kV; ++k)
      p.v[k] = FromAcc<T>(Op::F(ToAcc(pa.v[k]), ToAcc(pb.v[k])));
    po[i] = p;
  }
}

// The general forward: F(a at operand 0's offset, b at operand 1's).
template <class Op, class T>
struct BinarySrc {
  const T* a;
  const T* b;
  __device__ Acc<T> operator()(const Offsets& off) const {
    return Op::F(ToAcc(a[off.o[0]]), ToAcc(b[off.o[1]]));
  }
};

// out[j] = v.
template <class T>
struct StoreEpi {
  T* out;
  __device__ void operator()(int64_t j, Acc<T> v) const {
    out[j] = FromAcc<T>(v);
  }
};

// One element of the gradient of input `which`: g * DA(a, b) or
// g * DB(a, b) (operands 0 g, 1 a, 2 b; a and b unread for add and sub).
template <class Op, class T>
struct BinaryGradSrc {
  const T* g;
  const T* a;
  const T* b;
  int which;
  __device__ Acc<T> operator()(const Offsets& off) const {
    using A = Acc<T>;
    A av = A(0), bv = A(0);
    if constexpr (Op::kReadsInputs) {
      av = ToAcc(a[off.o[1]]);
      bv = ToAcc(b[off.o[2]]);
    }
    const A d =
        which == 0 ? Op::template DA<A>(av, bv) : Op::template DB<A>(av, bv);
    return ToAcc(g[off.o[0]]) * d;
  }
};

// gin (P packs) = 0 + g * DA(a, b) or g * DB(a, b), every operand full
// (the reference's sum of one term: -0 becomes +0 as there).
template <class Op, class T, int kV>
__global__ void binary_grad_kernel(const T* g, const T* a, const T* b, T* gin,
                                   int64_t packs, int which) {
  using P = Pack<T, kV>;
  using A = Acc<T>;
  const P* pg = reinterpret_cast<const P*>(g);  // (P)
  const P* pa = reinterpret_cast<const P*>(a);  // (P), unread for add, sub
  const P* pb = reinterpret_cast<const P*>(b);  // (P), unread for add, sub
  P* po = reinterpret_cast<P*>(gin);            // (P)
  LLMSYS_GRID_STRIDE_LOOP(i, packs) {
    const P gp = pg[i];
    P xa, xb;
    if constexpr (Op::kReadsInputs) {
      xa = pa[i];
      xb = pb[i];
    }
    P p;
#pragma unroll
    for (int k = 0; k < kV; ++k) {
      A av = A(0), bv = A(0);
      if constexpr (Op::kReadsInputs) {
        av = ToAcc(xa.v[k]);
        bv = ToAcc(xb.v[k]);
      }
      const A d =
          which == 0 ? Op::template DA<A>(av, bv) : Op::template DB<A>(av, bv);
      p.v[k] = FromAcc<T>(A(0) + ToAcc(gp.v[k]) * d);
    }
    po[i] = p;
  }
}

template <class Op>
cudaError_t BinaryForward(DType t, const void* a, const void* b, void* out,
                          const BinaryPlan& plan, cudaStream_t stream) {
  LLMSYS_DISPATCH_FLOAT(t, {
    const T* pa = static_cast<const T*>(a);
    const T* pb = static_cast<const T*>(b);
    T* po = static_cast<T*>(out);
    if (plan.general)
      return LaunchMap(plan.dims, plan.n, BinarySrc<Op, T>{pa, pb},
                       StoreEpi<T>{po}, stream);
    constexpr int kW = 16 / sizeof(T);
    // Scalars are loaded one element at a time: any alignment.
    const bool sa = plan.a == OperandLayout::kScalar;
    const bool sb = plan.b == OperandLayout::kScalar;
    const int w =
        PackWidth(t, {sa ? out : a, sb ? out : b, out},
                  {plan.n, sa ? plan.n : plan.len_a, sb ? plan.n : plan.len_b});
    const int64_t packs = plan.n / w;
    const GridPlan grid = ElementwisePlan(packs);
    const int la = static_cast<int>(plan.a), lb = static_cast<int>(plan.b);
    if (w == kW) {
      const auto kernel = &binary_kernel<Op, T, kW>;
      LLMSYS_LAUNCH(kernel, static_cast<unsigned>(grid.blocks), grid.threads, 0,
                    stream)
      (pa, la, plan.len_a / kW, pb, lb, plan.len_b / kW, po, packs);
    } else {
      const auto kernel = &binary_kernel<Op, T, 1>;
      LLMSYS_LAUNCH(kernel, static_cast<unsigned>(grid.blocks), grid.threads, 0,
                    stream)
      (pa, la, plan.len_a, pb, lb, plan.len_b, po, packs);
    }
  });
  return cudaGetLastError();
}

template <class Op>
cudaError_t BinaryBackward(int which, DType t, const void* g, const void* a,
                           const void* b, void* gin, const ReduceGeom& geom,
                           const ReducePlan& plan, void* workspace,
                           cudaStream_t stream) {
  if (geom.k == 0) return cudaSuccess;
  if (IsPointwiseGrad(geom, Op::kReadsInputs)) {  // no broadcast: one pass
    LLMSYS_DISPATCH_FLOAT(t, {
      constexpr int kW = 16 / sizeof(T);
      const int w = Op::kReadsInputs ? PackWidth(t, {g, a, b, gin}, {geom.k})
                                     : PackWidth(t, {g, gin}, {geom.k});
      const int64_t packs = geom.k / w;
      const GridPlan grid = ElementwisePlan(packs);
      const T* pg = static_cast<const T*>(g);
      const T* pa = static_cast<const T*>(a);
      const T* pb = static_cast<const T*>(b);
      T* po = static_cast<T*>(gin);
      if (w == kW) {
        const auto kernel = &binary_grad_kernel<Op, T, kW>;
        LLMSYS_LAUNCH(kernel, static_cast<unsigned>(grid.blocks), grid.threads,
                      0, stream)
        (pg, pa, pb, po, packs, which);
      } else {
        const auto kernel = &binary_grad_kernel<Op, T, 1>;
        LLMSYS_LAUNCH(kernel, static_cast<unsigned>(grid.blocks), grid.threads,
                      0, stream)
        (pg, pa, pb, po, packs, which);
      }
    });
    return cudaGetLastError();
  }
  cudaError_t e = cudaSuccess;
  LLMSYS_DISPATCH_FLOAT(t, {
    const BinaryGradSrc<Op, T> src{static_cast<const T*>(g),
                                   static_cast<const T*>(a),
                                   static_cast<const T*>(b), which};
    e = LaunchReduce<SumReducer<Acc<T>>>(
        geom, plan, src, StoreEpi<T>{static_cast<T*>(gin)}, workspace, stream);
  });
  return e;
}

// ---- where and masked_fill ----

// Calls `body` with `M` bound to the C++ type of mask dtype `m`.
#define LLMSYS_DISPATCH_MASK(m, ...)       \
  switch (m) {                             \
    case ::llmsys::cuda::MaskType::kU8: {  \
      using M = uint8_t;                   \
      __VA_ARGS__;                         \
    } break;                               \
    case ::llmsys::cuda::MaskType::kI32: { \
      using M = int32_t;                   \
      __VA_ARGS__;                         \
    } break;                               \
    case ::llmsys::cuda::MaskType::kI64: { \
      using M = int64_t;                   \
      __VA_ARGS__;                         \
    } break;                               \
    case ::llmsys::cuda::MaskType::kF32: { \
      using M = float;                     \
      __VA_ARGS__;                         \
    } break;                               \
    case ::llmsys::cuda::MaskType::kF64: { \
      using M = double;                    \
      __VA_ARGS__;                         \
    } break;                               \
  }

// cond at operand 0 ? a at 1 : b at 2.
template <class T, class M>
struct WhereSrc {
  const M* cond;
  const T* a;
  const T* b;
  __device__ Acc<T> operator()(const Offsets& off) const {
    return cond[off.o[0]] != M(0) ? ToAcc(a[off.o[1]]) : ToAcc(b[off.o[2]]);
  }
};

// g (operand 0) where cond (operand 1) is `want`, else nothing (0, so that
// a masked-off NaN does not reach the sum, as in the reference).
template <class T, class M>
struct WhereGradSrc {
  const T* g;
  const M* cond;
  bool want;
  __device__ Acc<T> operator()(const Offsets& off) const {
    const bool c = cond[off.o[1]] != M(0);
    return c == want ? ToAcc(g[off.o[0]]) : Acc<T>(0);
  }
};

// mask (operand 1) ? value : x (operand 0).
template <class T, class M>
struct MaskedFillSrc {
  const T* x;
  const M* mask;
  Acc<T> value;
  __device__ Acc<T> operator()(const Offsets& off) const {
    return mask[off.o[1]] != M(0) ? value : ToAcc(x[off.o[0]]);
  }
};

// mask (operand 1) ? 0 : g (operand 0).
template <class T, class M>
struct MaskedFillGradSrc {
  const T* g;
  const M* mask;
  __device__ Acc<T> operator()(const Offsets& off) const {
    return mask[off.o[1]] != M(0) ? Acc<T>(0) : ToAcc(g[off.o[0]]);
  }
};

// ---- copies ----

struct alignas(16) Bytes16 {
  uint64_t lo, hi;
};

// rows rows of `units` U each: dst row r = src row r.
template <class U>
__global__ void copy2d_kernel(const U* src, int64_t src_pitch, U* dst,
                              int64_t dst_pitch, int64_t rows, int64_t units) {
  const int64_t n = rows * units;
  LLMSYS_GRID_STRIDE_LOOP(i, n) {
    const int64_t r = i / units;
    const int64_t c = i - r * units;
    dst[r * dst_pitch + c] = src[r * src_pitch + c];
  }
}

template <class U>
cudaError_t Copy2D(const void* src, int64_t src_pitch, void* dst,
                   int64_t dst_pitch, int64_t rows, int64_t row_bytes,
                   cudaStream_t stream) {
  constexpr int64_t kU = sizeof(U);
  const int64_t units = row_bytes / kU;
  const GridPlan plan = ElementwisePlan(rows * units);
  LLMSYS_LAUNCH(copy2d_kernel<U>, static_cast<unsigned>(plan.blocks),
                plan.threads, 0, stream)
  (static_cast<const U*>(src), src_pitch / kU, static_cast<U*>(dst),
   dst_pitch / kU, rows, units);
  return cudaGetLastError();
}

}  // namespace

// ---- launchers ----

cudaError_t LaunchUnary(UnaryOp op, DType t, const void* x, void* out,
                        int64_t n, double exponent, cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  switch (op) {
    case UnaryOp::kNeg:
      return UnaryForward<UnaryOp::kNeg>(t, x, out, n, exponent, stream);
    case UnaryOp::kExp:
      return UnaryForward<UnaryOp::kExp>(t, x, out, n, exponent, stream);
    case UnaryOp::kLog:
      return UnaryForward<UnaryOp::kLog>(t, x, out, n, exponent, stream);
    case UnaryOp::kPow:
      return UnaryForward<UnaryOp::kPow>(t, x, out, n, exponent, stream);
    case UnaryOp::kSqrt:
      return UnaryForward<UnaryOp::kSqrt>(t, x, out, n, exponent, stream);
    case UnaryOp::kTanh:
      return UnaryForward<UnaryOp::kTanh>(t, x, out, n, exponent, stream);
    case UnaryOp::kSigmoid:
      return UnaryForward<UnaryOp::kSigmoid>(t, x, out, n, exponent, stream);
    case UnaryOp::kRelu:
      return UnaryForward<UnaryOp::kRelu>(t, x, out, n, exponent, stream);
    case UnaryOp::kGeluErf:
      return UnaryForward<UnaryOp::kGeluErf>(t, x, out, n, exponent, stream);
    case UnaryOp::kGeluTanh:
      return UnaryForward<UnaryOp::kGeluTanh>(t, x, out, n, exponent, stream);
  }
  return cudaErrorInvalidValue;
}

cudaError_t LaunchUnaryBackward(UnaryOp op, DType t, const void* x,
                                const void* g, void* gx, int64_t n,
                                double exponent, cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  switch (op) {
    case UnaryOp::kNeg:
      return UnaryBackward<UnaryOp::kNeg>(t, x, g, gx, n, exponent, stream);
    case UnaryOp::kExp:
      return UnaryBackward<UnaryOp::kExp>(t, x, g, gx, n, exponent, stream);
    case UnaryOp::kLog:
      return UnaryBackward<UnaryOp::kLog>(t, x, g, gx, n, exponent, stream);
    case UnaryOp::kPow:
      return UnaryBackward<UnaryOp::kPow>(t, x, g, gx, n, exponent, stream);
    case UnaryOp::kSqrt:
      return UnaryBackward<UnaryOp::kSqrt>(t, x, g, gx, n, exponent, stream);
    case UnaryOp::kTanh:
      return UnaryBackward<UnaryOp::kTanh>(t, x, g, gx, n, exponent, stream);
    case UnaryOp::kSigmoid:
      return UnaryBackward<UnaryOp::kSigmoid>(t, x, g, gx, n, exponent, stream);
    case UnaryOp::kRelu:
      return UnaryBackward<UnaryOp::kRelu>(t, x, g, gx, n, exponent, stream);
    case UnaryOp::kGeluErf:
      return UnaryBackward<UnaryOp::kGeluErf>(t, x, g, gx, n, exponent, stream);
    case UnaryOp::kGeluTanh:
      return UnaryBackward<UnaryOp::kGeluTanh>(t, x, g, gx, n, exponent,
                                               stream);
  }
  return cudaErrorInvalidValue;
}

cudaError_t LaunchBinary(BinaryOp op, DType t, const void* a, const void* b,
                         void* out, const BinaryPlan& plan,
                         cudaStream_t stream) {
  if (plan.n == 0) return cudaSuccess;
  switch (op) {
    case BinaryOp::kAdd:
      return BinaryForward<AddOp>(t, a, b, out, plan, stream);
    case BinaryOp::kSub:
      return BinaryForward<SubOp>(t, a, b, out, plan, stream);
    case BinaryOp::kMul:
      return BinaryForward<MulOp>(t, a, b, out, plan, stream);
    case BinaryOp::kDiv:
      return BinaryForward<DivOp>(t, a, b, out, plan, stream);
  }
  return cudaErrorInvalidValue;
}

cudaError_t LaunchBinaryBackward(BinaryOp op, int which, DType t, const void* g,
                                 const void* a, const void* b, void* gin,
                                 const ReduceGeom& geom, const ReducePlan& plan,
                                 void* workspace, cudaStream_t stream) {
  switch (op) {
    case BinaryOp::kAdd:
      return BinaryBackward<AddOp>(which, t, g, a, b, gin, geom, plan,
                                   workspace, stream);
    case BinaryOp::kSub:
      return BinaryBackward<SubOp>(which, t, g, a, b, gin, geom, plan,
                                   workspace, stream);
    case BinaryOp::kMul:
      return BinaryBackward<MulOp>(which, t, g, a, b, gin, geom, plan,
                                   workspace, stream);
    case BinaryOp::kDiv:
      return BinaryBackward<DivOp>(which, t, g, a, b, gin, geom, plan,
                                   workspace, stream);
  }
  return cudaErrorInvalidValue;
}

cudaError_t LaunchWhere(DType t, MaskType m, const void* cond, const void* a,
                        const void* b, void* out, const StridedDims& dims,
                        int64_t n, cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  cudaError_t e = cudaSuccess;
  LLMSYS_DISPATCH_FLOAT(t, {
    LLMSYS_DISPATCH_MASK(m, {
      const WhereSrc<T, M> src{static_cast<const M*>(cond),
                               static_cast<const T*>(a),
                               static_cast<const T*>(b)};
      e = LaunchMap(dims, n, src, StoreEpi<T>{static_cast<T*>(out)}, stream);
    });
  });
  return e;
}

cudaError_t LaunchWhereBackward(DType t, MaskType m, bool for_a,
                                const void* cond, const void* g, void* gin,
                                const ReduceGeom& geom, const ReducePlan& plan,
                                void* workspace, cudaStream_t stream) {
  cudaError_t e = cudaSuccess;
  LLMSYS_DISPATCH_FLOAT(t, {
    LLMSYS_DISPATCH_MASK(m, {
      const WhereGradSrc<T, M> src{static_cast<const T*>(g),
                                   static_cast<const M*>(cond), for_a};
      e = LaunchReduce<SumReducer<Acc<T>>>(geom, plan, src,
                                           StoreEpi<T>{static_cast<T*>(gin)},
                                           workspace, stream);
    });
  });
  return e;
}

cudaError_t LaunchMaskedFill(DType t, MaskType m, const void* x,
                             const void* mask, void* out,
                             const StridedDims& dims, int64_t n, double value,
                             cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  cudaError_t e = cudaSuccess;
  LLMSYS_DISPATCH_FLOAT(t, {
    LLMSYS_DISPATCH_MASK(m, {
      const MaskedFillSrc<T, M> src{static_cast<const T*>(x),
                                    static_cast<const M*>(mask),
                                    static_cast<Acc<T>>(value)};
      e = LaunchMap(dims, n, src, StoreEpi<T>{static_cast<T*>(out)}, stream);
    });
  });
  return e;
}

cudaError_t LaunchMaskedFillBackward(DType t, MaskType m, const void* mask,
                                     const void* g, void* gx,
                                     const StridedDims& dims, int64_t n,
                                     cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  cudaError_t e = cudaSuccess;
  LLMSYS_DISPATCH_FLOAT(t, {
    LLMSYS_DISPATCH_MASK(m, {
      const MaskedFillGradSrc<T, M> src{static_cast<const T*>(g),
                                        static_cast<const M*>(mask)};
      e = LaunchMap(dims, n, src, StoreEpi<T>{static_cast<T*>(gx)}, stream);
    });
  });
  return e;
}

cudaError_t LaunchCopy2D(const void* src, int64_t src_pitch, void* dst,
                         int64_t dst_pitch, int64_t rows, int64_t row_bytes,
                         cudaStream_t stream) {
  if (rows == 0 || row_bytes == 0) return cudaSuccess;
  const int unit = CopyUnit(
      {reinterpret_cast<uintptr_t>(src), reinterpret_cast<uintptr_t>(dst),
       static_cast<uintptr_t>(src_pitch), static_cast<uintptr_t>(dst_pitch),
       static_cast<uintptr_t>(row_bytes)});
  switch (unit) {
    case 16:
      return Copy2D<Bytes16>(src, src_pitch, dst, dst_pitch, rows, row_bytes,
                             stream);
    case 8:
      return Copy2D<uint64_t>(src, src_pitch, dst, dst_pitch, rows, row_bytes,
                              stream);
    case 4:
      return Copy2D<uint32_t>(src, src_pitch, dst, dst_pitch, rows, row_bytes,
                              stream);
    case 2:
      return Copy2D<uint16_t>(src, src_pitch, dst, dst_pitch, rows, row_bytes,
                              stream);
    default:
      return Copy2D<uint8_t>(src, src_pitch, dst, dst_pitch, rows, row_bytes,
                             stream);
  }
}

}  // namespace llmsys::cuda
