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

namespace {

// Gemm(call, ...): see common.h.
template <class T>
void SplitGemm(const llmsys_op_call_t& call, bool ta, bool tb, int64_t m,
               int64_t n, int64_t k, T alpha, const T* a, int64_t lda,
               const T* b, int64_t ldb, T beta, T* c, int64_t ldc) {
  const int threads = sdk::Threads(call.ctx);
  // Below ~4 MFLOP a second thread's wake-up is not worth it.
  const bool split = threads > 1 && m * n * k >= (int64_t{1} << 21) &&
                     std::max(m, n) >= 32 * threads;
  if (!split) {
    UseThreads(call);
    return Gemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  }
  UseBlasThreads(1);
  const bool by_rows = m >= n;
  const int64_t len = by_rows ? m : n;
  // Block edges on multiples of 16 elements (one cache line of floats).
  const int64_t units = (len + 15) / 16;
  sdk::ParallelFor(call.ctx, threads, [&](int64_t part) {
    const int64_t lo = std::min(len, units * part / threads * 16);
    const int64_t hi = std::min(len, units * (part + 1) / threads * 16);
    if (lo >= hi) return;
    if (by_rows) {
      const T* pa = ta ? a + lo : a + lo * lda;
      Gemm(ta, tb, hi - lo, n, k, alpha, pa, lda, b, ldb, beta, c + lo * ldc,
           ldc);
    } else {
      const T* pb = tb ? b + lo * ldb : b + lo;
      Gemm(ta, tb, m, hi - lo, k, alpha, a, lda, pb, ldb, beta, c + lo, ldc);
    }
  });
}

}  // namespace

void Gemm(const llmsys_op_call_t& call, bool ta, bool tb, int64_t m, int64_t n,
          int64_t k, float alpha, const float* a, int64_t lda, const float* b,
          int64_t ldb, float beta, float* c, int64_t ldc) {
  SplitGemm(call, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}
void Gemm(const llmsys_op_call_t& call, bool ta, bool tb, int64_t m, int64_t n,
          int64_t k, double alpha, const double* a, int64_t lda,
          const double* b, int64_t ldb, double beta, double* c, int64_t ldc) {
  SplitGemm(call, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

std::string BlasCore() {
  const char* core = openblas_get_corename();
  return core != nullptr ? core : "unknown";
}

}  // namespace llmsys::cpu
