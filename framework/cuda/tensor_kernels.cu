// Kernels for tensor_kernels.h. Every kernel walks the elements of a shape
// (up to 8 dims) in a grid-stride loop and turns the linear index into one
// offset per view; values pass through double, as the host's converting
// copies do, so a device copy gives the bits a host copy gives.
//
// They follow cuda/common.cuh's conventions (LLMSYS_LAUNCH, BlockSum), so
// tests/cuda/emu runs them on the CPU too (tensor_kernels_emu_test).
#include "cuda/common.cuh"
#include "framework/cuda/tensor_kernels.h"

namespace llmsys::cuda {
namespace {

constexpr int kThreads = 256;

__device__ double LoadAt(const StridedArg& a, int64_t off) {
  switch (a.type) {
    case ElemType::kF32:
      return static_cast<const float*>(a.data)[off];
    case ElemType::kF64:
      return static_cast<const double*>(a.data)[off];
    case ElemType::kBF16:
      return __bfloat162float(static_cast<const __nv_bfloat16*>(a.data)[off]);
    case ElemType::kF16:
      return __half2float(static_cast<const __half*>(a.data)[off]);
    case ElemType::kI32:
      return static_cast<const int32_t*>(a.data)[off];
    case ElemType::kI64:
      return static_cast<double>(static_cast<const int64_t*>(a.data)[off]);
    default:
      return static_cast<const uint8_t*>(a.data)[off];
  }
}

// bf16 and f16 round from float, after double -> float, as the host does.
__device__ void StoreAt(const StridedArg& a, int64_t off, double v) {
  switch (a.type) {
    case ElemType::kF32:
      static_cast<float*>(a.data)[off] = static_cast<float>(v);
      break;
    case ElemType::kF64:
      static_cast<double*>(a.data)[off] = v;
      break;
    case ElemType::kBF16:
      static_cast<__nv_bfloat16*>(a.data)[off] =
          __float2bfloat16_rn(static_cast<float>(v));
      break;
    case ElemType::kF16:
      static_cast<__half*>(a.data)[off] =
          __float2half_rn(static_cast<float>(v));
      break;
    case ElemType::kI32:
      static_cast<int32_t*>(a.data)[off] = static_cast<int32_t>(v);
      break;
    case ElemType::kI64:
      static_cast<int64_t*>(a.data)[off] = static_cast<int64_t>(v);
      break;
    default:
      static_cast<uint8_t*>(a.data)[off] = static_cast<uint8_t>(v);
      break;
  }
}

// The element offset of linear index i (row-major over `shape`) in a view
// with `strides`.
__device__ int64_t OffsetOf(int64_t i, int ndim, const int64_t* shape,
                            const int64_t* strides) {
  int64_t off = 0;
  for (int d = ndim - 1; d >= 0; --d) {
    const int64_t size = shape[d];
    off += (i % size) * strides[d];
    i /= size;
  }
  return off;
}

__global__ void strided_copy_kernel(StridedArg dst, StridedArg src, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{blockDim.x} * gridDim.x) {
    const double v = LoadAt(src, OffsetOf(i, src.ndim, src.shape, src.strides));
    StoreAt(dst, OffsetOf(i, dst.ndim, dst.shape, dst.strides), v);
  }
}

__global__ void fill_kernel(StridedArg dst, double value, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{blockDim.x} * gridDim.x)
    StoreAt(dst, OffsetOf(i, dst.ndim, dst.shape, dst.strides), value);
}

__global__ void add_into_kernel(StridedArg dst, StridedArg src, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{blockDim.x} * gridDim.x) {
    const int64_t d = OffsetOf(i, dst.ndim, dst.shape, dst.strides);
    const double add =
        LoadAt(src, OffsetOf(i, src.ndim, src.shape, src.strides));
    if (dst.type == ElemType::kF64) {
      static_cast<double*>(dst.data)[d] += add;
    } else {
      // float arithmetic for float32/bf16/f16, as the host's AddInto.
      StoreAt(dst, d,
              static_cast<float>(LoadAt(dst, d)) + static_cast<float>(add));
    }
  }
}

// `reduced` holds the sizes of the dims dst keeps at 1 (others 1), in
// src's order; each output element sums its slice in row-major order.
__global__ void sum_to_kernel(StridedArg dst, StridedArg src,
                              StridedArg reduced, int64_t n_out,
                              int64_t n_reduced) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n_out;
       i += int64_t{blockDim.x} * gridDim.x) {
    // Offset of the slice's first element in src: dst's index in src's
    // strides (dst's reduced dims are 0 there).
    int64_t base = 0, rest = i;
    for (int d = dst.ndim - 1; d >= 0; --d) {
      const int64_t size = dst.shape[d];
      base += (rest % size) * src.strides[d];
      rest /= size;
    }
    double sum = 0;  // in double, in index order: the host's bits
    for (int64_t r = 0; r < n_reduced; ++r)
      sum += LoadAt(
          src, base + OffsetOf(r, reduced.ndim, reduced.shape, src.strides));
    StoreAt(dst, OffsetOf(i, dst.ndim, dst.shape, dst.strides), sum);
  }
}

__global__ void scale_kernel(StridedArg dst, double factor, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{blockDim.x} * gridDim.x) {
    const int64_t d = OffsetOf(i, dst.ndim, dst.shape, dst.strides);
    StoreAt(dst, d, LoadAt(dst, d) * factor);
  }
}

// kSumSquaresBlocks blocks of kThreads: partials[block] = its elements'
// squares, each thread's in index order, then the block's tree.
__global__ void sum_squares_kernel(StridedArg src, int64_t n,
                                   double* partials) {
  double sum = 0;
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{blockDim.x} * gridDim.x) {
    const double v = LoadAt(src, OffsetOf(i, src.ndim, src.shape, src.strides));
    sum += v * v;
  }
  __shared__ double scratch[32];  // (warps)
  sum = BlockSum(sum, scratch);   // a fixed order of warp shuffles
  if (threadIdx.x == 0) partials[blockIdx.x] = sum;
}

// One block: *out = partials[0 .. count), strided over the threads, then
// the block's tree.
__global__ void sum_partials_kernel(const double* partials, int64_t count,
                                    double* out) {
  double sum = 0;
  for (int64_t i = threadIdx.x; i < count; i += blockDim.x) sum += partials[i];
  __shared__ double scratch[32];  // (warps)
  sum = BlockSum(sum, scratch);
  if (threadIdx.x == 0) *out = sum;
}

int64_t Numel(const StridedArg& a) {
  int64_t n = 1;
  for (int d = 0; d < a.ndim; ++d) n *= a.shape[d];
  return n;
}

unsigned Blocks(int64_t n) {
  const int64_t want = (n + kThreads - 1) / kThreads;
  return static_cast<unsigned>(want < 65535 * 8 ? want : 65535 * 8);
}

}  // namespace

cudaError_t LaunchStridedCopy(const StridedArg& dst, const StridedArg& src,
                              cudaStream_t stream) {
  const int64_t n = Numel(dst);
  if (n == 0) return cudaSuccess;
  LLMSYS_LAUNCH(strided_copy_kernel, Blocks(n), kThreads, 0, stream)
  (dst, src, n);
  return cudaGetLastError();
}

cudaError_t LaunchFill(const StridedArg& dst, double value,
                       cudaStream_t stream) {
  const int64_t n = Numel(dst);
  if (n == 0) return cudaSuccess;
  LLMSYS_LAUNCH(fill_kernel, Blocks(n), kThreads, 0, stream)(dst, value, n);
  return cudaGetLastError();
}

cudaError_t LaunchAddInto(const StridedArg& dst, const StridedArg& src,
                          cudaStream_t stream) {
  const int64_t n = Numel(dst);
  if (n == 0) return cudaSuccess;
  LLMSYS_LAUNCH(add_into_kernel, Blocks(n), kThreads, 0, stream)(dst, src, n);
  return cudaGetLastError();
}

cudaError_t LaunchSumTo(const StridedArg& dst, const StridedArg& src,
                        cudaStream_t stream) {
  const int64_t n_out = Numel(dst);
  if (n_out == 0) return cudaSuccess;
  StridedArg reduced = src;
  int64_t n_reduced = 1;
  for (int d = 0; d < src.ndim; ++d) {
    reduced.shape[d] = dst.shape[d] == 1 ? src.shape[d] : 1;
    n_reduced *= reduced.shape[d];
  }
  if (n_reduced == 0) return LaunchFill(dst, 0.0, stream);
  LLMSYS_LAUNCH(sum_to_kernel, Blocks(n_out), kThreads, 0, stream)
  (dst, src, reduced, n_out, n_reduced);
  return cudaGetLastError();
}

cudaError_t LaunchScale(const StridedArg& dst, double factor,
                        cudaStream_t stream) {
  const int64_t n = Numel(dst);
  if (n == 0) return cudaSuccess;
  LLMSYS_LAUNCH(scale_kernel, Blocks(n), kThreads, 0, stream)(dst, factor, n);
  return cudaGetLastError();
}

cudaError_t LaunchSumSquaresPartials(const StridedArg& src, double* partials,
                                     cudaStream_t stream) {
  // Every block runs, an empty view's too: each writes its partial.
  LLMSYS_LAUNCH(sum_squares_kernel, kSumSquaresBlocks, kThreads, 0, stream)
  (src, Numel(src), partials);
  return cudaGetLastError();
}

cudaError_t LaunchSumPartials(const double* partials, int64_t count,
                              double* out, cudaStream_t stream) {
  LLMSYS_LAUNCH(sum_partials_kernel, 1, kThreads, 0, stream)
  (partials, count, out);
  return cudaGetLastError();
}

}  // namespace llmsys::cuda
