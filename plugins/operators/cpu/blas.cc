// The OpenBLAS side of llmsys.cpu: GEMM wrappers and the thread count.
#include <cblas.h>

#include <algorithm>
#include <atomic>
#include <mutex>

#include "plugins/operators/cpu/common.h"

namespace llmsys::cpu {
namespace {

// BLAS takes int sizes.
int I(int64_t v) {
  if (v > INT32_MAX)
    Fail(LLMSYS_STATUS_INVALID_ARGUMENT,
         "a matrix dim of " + std::to_string(v) + " exceeds BLAS's int range");
  return static_cast<int>(v);
}

// C (m, n) = beta * C, for k == 0 (nothing to multiply).
template <class T>
void ScaleOnly(int64_t m, int64_t n, T beta, T* c, int64_t ldc) {
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j)
      c[i * ldc + j] = beta == T(0) ? T(0) : beta * c[i * ldc + j];
}

}  // namespace

void UseBlasThreads(int want) {
  static std::mutex mu;
  static std::atomic<int> current{0};
  if (current.load(std::memory_order_relaxed) == want) return;
  std::lock_guard<std::mutex> lock(mu);
  if (current.load(std::memory_order_relaxed) == want) return;
  openblas_set_num_threads(want);
  current.store(want, std::memory_order_relaxed);
}

void UseThreads(const llmsys_op_call_t& call) {
  UseBlasThreads(sdk::Threads(call.ctx));
}

void Gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha,
          const float* a, int64_t lda, const float* b, int64_t ldb, float beta,
          float* c, int64_t ldc) {
  if (m == 0 || n == 0) return;
  if (k == 0) return ScaleOnly(m, n, beta, c, ldc);
  if (m == 1) {
    // One row (a decoding step): OpenBLAS's gemm would pack all of B for
    // it; gemv reads B once. a's k elements are 1 apart (or lda when
    // transposed); op(B) is (k, n).
    const int64_t inc_a = ta ? lda : 1;
    if (beta == 0.0f) std::fill(c, c + n, 0.0f);  // never 0 * garbage
    if (tb) {                                     // B stored (n, k): c = B a
      cblas_sgemv(CblasRowMajor, CblasNoTrans, I(n), I(k), alpha, b, I(ldb), a,
                  I(inc_a), beta, c, 1);
    } else {  // B stored (k, n): c = B^T a
      cblas_sgemv(CblasRowMajor, CblasTrans, I(k), I(n), alpha, b, I(ldb), a,
                  I(inc_a), beta, c, 1);
    }
    return;
  }
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans,
              tb ? CblasTrans : CblasNoTrans, I(m), I(n), I(k), alpha, a,
              I(lda), b, I(ldb), beta, c, I(ldc));
}

void Gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, double alpha,
          const double* a, int64_t lda, const double* b, int64_t ldb,
          double beta, double* c, int64_t ldc) {
  if (m == 0 || n == 0) return;
  if (k == 0) return ScaleOnly(m, n, beta, c, ldc);
  cblas_dgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans,
              tb ? CblasTrans : CblasNoTrans, I(m), I(n), I(k), alpha, a,
              I(lda), b, I(ldb), beta, c, I(ldc));
}

std::string BlasCore() {
  const char* core = openblas_get_corename();
  return core != nullptr ? core : "unknown";
}

}  // namespace llmsys::cpu
