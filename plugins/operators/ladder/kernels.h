// plugins/operators/ladder/kernels.h — the rungs of the matmul ladder as
// plain GEMM routines: C (m, n) = [C +] op(A) (m, k) @ op(B) (k, n), row
// major, with row strides lda/ldb/ldc and A stored (k, m) when `ta`, B
// stored (n, k) when `tb`. The operators in matmul.cc call these.
//
// Thread-safety: every routine may be called from any thread; they share
// no state (the CPU features are read once, thread-safely).
#ifndef LLMSYS_PLUGINS_OPERATORS_LADDER_KERNELS_H_
#define LLMSYS_PLUGINS_OPERATORS_LADDER_KERNELS_H_

#include <cstdint>

namespace llmsys::ladder {

enum class Rung { kNaive, kLoopOrder, kTiled, kSimd, kParallel };

// The vector ISA the simd and parallel rungs use on this CPU: "avx512"
// (8x32 micro-kernel), "avx2" (6x16, AVX2+FMA) or "none" (they fall back to
// the tiled loops).
const char* SimdIsa();

// float32 GEMM of one rung. `accumulate` adds to C instead of overwriting
// it; `threads` is used by kParallel only (values < 1 mean 1). Results do
// not depend on the thread count: each element of C is computed by one
// thread, in the same order.
void Sgemm(Rung rung, bool ta, bool tb, int64_t m, int64_t n, int64_t k,
           const float* a, int64_t lda, const float* b, int64_t ldb,
           bool accumulate, float* c, int64_t ldc, int threads);

// float64 GEMM, the same for every rung (a plain loop with a double
// accumulator: the float64 path exists for the gradient check).
void Dgemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const double* a,
           int64_t lda, const double* b, int64_t ldb, bool accumulate,
           double* c, int64_t ldc);

}  // namespace llmsys::ladder

#endif  // LLMSYS_PLUGINS_OPERATORS_LADDER_KERNELS_H_
