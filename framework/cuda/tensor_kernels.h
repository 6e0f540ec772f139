// framework/cuda/tensor_kernels.h — the kernels the host itself runs on CUDA
// tensors (tensor::DeviceBackend's Copy, Fill, AddInto, SumTo, Scale,
// SumOfSquares): strided
// element loops with dtype conversion, on the host's stream.
//
// Plain C++ declarations; the kernels are in tensor_kernels.cu.
// Thread-safety: launchers may be called from any thread with its stream.
#ifndef LLMSYS_FRAMEWORK_CUDA_TENSOR_KERNELS_H_
#define LLMSYS_FRAMEWORK_CUDA_TENSOR_KERNELS_H_

#include <cuda_runtime_api.h>

#include <cstdint>

namespace llmsys::cuda {

inline constexpr int kMaxDims = 8;  // LLMSYS_MAX_NDIM

// Element types of the views, as the host's dtypes.
enum class ElemType : int { kF32, kF64, kBF16, kF16, kI32, kI64, kU8 };

// A strided view: `ndim` sizes and element strides, by value in kernel
// arguments.
struct StridedArg {
  void* data;
  ElemType type;
  int ndim;
  int64_t shape[kMaxDims];
  int64_t strides[kMaxDims];
};

// dst = src (same shape; dtypes converted; src strides may be 0).
cudaError_t LaunchStridedCopy(const StridedArg& dst, const StridedArg& src,
                              cudaStream_t stream);
// Every element of dst = value.
cudaError_t LaunchFill(const StridedArg& dst, double value,
                       cudaStream_t stream);
// dst += src (same shape; float types).
cudaError_t LaunchAddInto(const StridedArg& dst, const StridedArg& src,
                          cudaStream_t stream);
// dst = src summed over the dims where dst's size is 1 and src's is not
// (same ndim); one thread per output element, summing in double in index
// order (the host's SumToShape gives the same bits).
cudaError_t LaunchSumTo(const StridedArg& dst, const StridedArg& src,
                        cudaStream_t stream);
// dst *= factor (float types; in double, rounded to dst's type).
cudaError_t LaunchScale(const StridedArg& dst, double factor,
                        cudaStream_t stream);

// Sums of squares in two passes, in a fixed order (the same bits in every
// run): LaunchSumSquaresPartials writes kSumSquaresBlocks partial sums of
// src's squares to partials[0 .. kSumSquaresBlocks), block b taking the
// elements b x 256 + t + k x (kSumSquaresBlocks x 256); LaunchSumPartials
// then writes the sum of partials[0 .. count) to *out.
inline constexpr int kSumSquaresBlocks = 512;
cudaError_t LaunchSumSquaresPartials(const StridedArg& src, double* partials,
                                     cudaStream_t stream);
cudaError_t LaunchSumPartials(const double* partials, int64_t count,
                              double* out, cudaStream_t stream);

}  // namespace llmsys::cuda

#endif  // LLMSYS_FRAMEWORK_CUDA_TENSOR_KERNELS_H_
