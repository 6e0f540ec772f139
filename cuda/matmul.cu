// The kernels around matmul.cublas and linear.cublas's cuBLASLt GEMMs (see
// cuda/matmul.h): zero fill for empty sums, bias rows for linear when the
// bias epilogue is not available, and the deterministic sum of per-batch
// products over broadcast batch dims (also the column sums of linear's
// bias gradient).
//
// Letters: R rows, M columns (out features), O target matrices, E elements
// per matrix, W work matrices (the full batch).
#include "cuda/common.cuh"
#include "cuda/matmul.h"

namespace llmsys::cuda {
namespace {

__global__ void matmul_zero_kernel(unsigned char* p,  // (bytes)
                                   int64_t bytes) {
  LLMSYS_GRID_STRIDE_LOOP(i, bytes) { p[i] = 0; }
}

template <class T>
__global__ void bias_rows_kernel(T* out,         // (R, M)
                                 const T* bias,  // (M)
                                 int64_t rows, int64_t m) {
  LLMSYS_GRID_STRIDE_LOOP(i, rows * m) { out[i] = bias[i % m]; }
}

// One thread per target element (o, e): the sum over the reduced dims in
// row-major order, so the result never depends on the launch.
template <class T>
__global__ void broadcast_reduce_kernel(T* target,      // (O, E)
                                        const T* work,  // (W, E)
                                        BroadcastReduce spec) {
  using A = Acc<T>;
  const int64_t total = spec.outer * spec.mat;
  int64_t count = 1;
  for (int d = 0; d < spec.nred; ++d) count *= spec.red_size[d];
  LLMSYS_GRID_STRIDE_LOOP(i, total) {
    const int64_t e = i % spec.mat;
    int64_t o = i / spec.mat;
    int64_t base = 0;  // the kept dims' coordinates of o, as a work matrix
    for (int d = spec.nkeep - 1; d >= 0; --d) {
      base += (o % spec.keep_size[d]) * spec.keep_stride[d];
      o /= spec.keep_size[d];
    }
    int64_t pos[kMaxBatchDims] = {};
    int64_t off = 0;
    A sum = A(0);
    for (int64_t r = 0; r < count; ++r) {
      sum += ToAcc(work[(base + off) * spec.mat + e]);
      for (int d = spec.nred - 1; d >= 0; --d) {  // next row-major position
        off += spec.red_stride[d];
        if (++pos[d] < spec.red_size[d]) break;
        off -= spec.red_stride[d] * spec.red_size[d];
        pos[d] = 0;
      }
    }
    target[i] = FromAcc<T>(sum);
  }
}

}  // namespace

cudaError_t LaunchMatmulZero(void* p, int64_t bytes, cudaStream_t stream) {
  if (bytes <= 0) return cudaSuccess;
  const GridPlan plan = ElementwisePlan(bytes);
  LLMSYS_LAUNCH(matmul_zero_kernel, plan.blocks, plan.threads, 0, stream)
  (static_cast<unsigned char*>(p), bytes);
  return cudaGetLastError();
}

cudaError_t LaunchBiasRows(DType t, void* out, const void* bias, int64_t rows,
                           int64_t m, cudaStream_t stream) {
  if (rows * m <= 0) return cudaSuccess;
  const GridPlan plan = ElementwisePlan(rows * m);
  LLMSYS_DISPATCH_FLOAT(t, {
    LLMSYS_LAUNCH(bias_rows_kernel<T>, plan.blocks, plan.threads, 0, stream)
    (static_cast<T*>(out), static_cast<const T*>(bias), rows, m);
  });
  return cudaGetLastError();
}

cudaError_t LaunchBroadcastReduce(DType t, void* target, const void* work,
                                  const BroadcastReduce& spec,
                                  cudaStream_t stream) {
  if (spec.outer * spec.mat <= 0) return cudaSuccess;
  const GridPlan plan = ElementwisePlan(spec.outer * spec.mat);
  LLMSYS_DISPATCH_FLOAT(t, {
    LLMSYS_LAUNCH(broadcast_reduce_kernel<T>, plan.blocks, plan.threads, 0,
                  stream)
    (static_cast<T*>(target), static_cast<const T*>(work), spec);
  });
  return cudaGetLastError();
}

}  // namespace llmsys::cuda
