// The matmul ladder's GEMMs, from the i-j-k triple loop up to a packed,
// register-blocked AVX-512 micro-kernel split over threads. See README.md
// for what each rung changes and why it is faster.
#include "plugins/operators/ladder/kernels.h"

#include <algorithm>
#include <cstddef>
#include <new>
#include <thread>
#include <vector>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define LLMSYS_LADDER_X86 1
#endif

namespace llmsys::ladder {
namespace {

// ---- helpers ----

// A 64-byte aligned float buffer (packed panels: whole cache lines).
class Buffer {
 public:
  explicit Buffer(size_t n)
      : p_(static_cast<float*>(::operator new[](
            std::max<size_t>(n, 1) * sizeof(float), std::align_val_t(64)))) {}
  ~Buffer() { ::operator delete[](p_, std::align_val_t(64)); }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  float* get() const { return p_; }

 private:
  float* p_;
};

// op(X) (rows, cols) as a contiguous row-major copy when X is stored
// transposed; the plain rungs want unit-stride rows. Returns the pointer
// and row stride to use.
const float* Plain(bool transposed, int64_t rows, int64_t cols, const float* x,
                   int64_t ldx, std::vector<float>* copy, int64_t* ld) {
  if (!transposed) {
    *ld = ldx;
    return x;
  }
  copy->resize(static_cast<size_t>(rows * cols));
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c)
      (*copy)[static_cast<size_t>(r * cols + c)] = x[c * ldx + r];
  *ld = cols;
  return copy->data();
}

// ---- rung 1: i-j-k ----

// The textbook triple loop: the inner loop walks a column of B (stride n),
// so every step touches a new cache line, and the float sum is one serial
// dependency chain the compiler may not vectorize.
void Naive(int64_t m, int64_t n, int64_t k, const float* a, int64_t lda,
           const float* b, int64_t ldb, bool acc, float* c, int64_t ldc) {
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      float s = 0;
      for (int64_t p = 0; p < k; ++p) s += a[i * lda + p] * b[p * ldb + j];
      c[i * ldc + j] = acc ? c[i * ldc + j] + s : s;
    }
}

// ---- rung 2: i-k-j ----

// The same products in another order: the inner loop runs along a row of B
// and a row of C (unit stride), which the compiler vectorizes, and each
// A element is loaded once per row of B.
void LoopOrder(int64_t m, int64_t n, int64_t k, const float* a, int64_t lda,
               const float* b, int64_t ldb, bool acc, float* c, int64_t ldc) {
  for (int64_t i = 0; i < m; ++i) {
    float* ci = c + i * ldc;
    if (!acc) std::fill(ci, ci + n, 0.0f);
    for (int64_t p = 0; p < k; ++p) {
      const float aip = a[i * lda + p];
      const float* bp = b + p * ldb;
      for (int64_t j = 0; j < n; ++j) ci[j] += aip * bp[j];
    }
  }
}

// ---- rung 3: cache tiling ----

// i-k-j over blocks: a kTileK x kTileN block of B (128 x 256 floats =
// 128 KiB) stays in the 2 MiB L2 while kTileM = 64 rows of A stream past
// it, and the 1 KiB row of the C block being updated stays in the 48 KiB
// L1 for all kTileK steps.
constexpr int64_t kTileM = 64, kTileK = 128, kTileN = 256;

void Tiled(int64_t m, int64_t n, int64_t k, const float* a, int64_t lda,
           const float* b, int64_t ldb, bool acc, float* c, int64_t ldc) {
  if (!acc)
    for (int64_t i = 0; i < m; ++i) std::fill(c + i * ldc, c + i * ldc + n, 0);
  for (int64_t j0 = 0; j0 < n; j0 += kTileN) {
    const int64_t j1 = std::min(n, j0 + kTileN);
    for (int64_t p0 = 0; p0 < k; p0 += kTileK) {
      const int64_t p1 = std::min(k, p0 + kTileK);
      for (int64_t i0 = 0; i0 < m; i0 += kTileM) {
        const int64_t i1 = std::min(m, i0 + kTileM);
        for (int64_t i = i0; i < i1; ++i) {
          float* ci = c + i * ldc;
          for (int64_t p = p0; p < p1; ++p) {
            const float aip = a[i * lda + p];
            const float* bp = b + p * ldb;
            for (int64_t j = j0; j < j1; ++j) ci[j] += aip * bp[j];
          }
        }
      }
    }
  }
}

// ---- rungs 4 and 5: packed panels and a register-blocked micro-kernel ----

// The micro-kernel keeps an MR x NR block of C in vector registers for a
// whole run of kc products: per step it loads NR floats of B (2 vectors),
// broadcasts MR floats of A, and issues 2 * MR independent FMAs (enough to
// cover the FMA latency on both FMA ports). A and B are packed first so
// that the kernel reads both sequentially.
using MicroKernel = void (*)(int64_t kc, const float* pa, const float* pb,
                             float* c, int64_t ldc, bool acc);

constexpr int kMr512 = 8, kNr512 = 32;  // AVX-512: 16 zmm accumulators
constexpr int kMr256 = 6, kNr256 = 16;  // AVX2: 12 ymm accumulators

#ifdef LLMSYS_LADDER_X86

__attribute__((target("avx512f"))) void Kernel512(int64_t kc, const float* pa,
                                                  const float* pb, float* c,
                                                  int64_t ldc, bool acc) {
  __m512 r[kMr512][2];
#pragma GCC unroll 8
  for (int i = 0; i < kMr512; ++i) r[i][0] = r[i][1] = _mm512_setzero_ps();
  for (int64_t p = 0; p < kc; ++p) {
    const __m512 b0 = _mm512_load_ps(pb), b1 = _mm512_load_ps(pb + 16);
#pragma GCC unroll 8
    for (int i = 0; i < kMr512; ++i) {
      const __m512 ai = _mm512_set1_ps(pa[i]);
      r[i][0] = _mm512_fmadd_ps(ai, b0, r[i][0]);
      r[i][1] = _mm512_fmadd_ps(ai, b1, r[i][1]);
    }
    pa += kMr512;
    pb += kNr512;
  }
#pragma GCC unroll 8
  for (int i = 0; i < kMr512; ++i) {
    float* ci = c + i * ldc;
    if (acc) {
      r[i][0] = _mm512_add_ps(r[i][0], _mm512_loadu_ps(ci));
      r[i][1] = _mm512_add_ps(r[i][1], _mm512_loadu_ps(ci + 16));
    }
    _mm512_storeu_ps(ci, r[i][0]);
    _mm512_storeu_ps(ci + 16, r[i][1]);
  }
}

__attribute__((target("avx2,fma"))) void Kernel256(int64_t kc, const float* pa,
                                                   const float* pb, float* c,
                                                   int64_t ldc, bool acc) {
  __m256 r[kMr256][2];
#pragma GCC unroll 6
  for (int i = 0; i < kMr256; ++i) r[i][0] = r[i][1] = _mm256_setzero_ps();
  for (int64_t p = 0; p < kc; ++p) {
    const __m256 b0 = _mm256_load_ps(pb), b1 = _mm256_load_ps(pb + 8);
#pragma GCC unroll 6
    for (int i = 0; i < kMr256; ++i) {
      const __m256 ai = _mm256_broadcast_ss(pa + i);
      r[i][0] = _mm256_fmadd_ps(ai, b0, r[i][0]);
      r[i][1] = _mm256_fmadd_ps(ai, b1, r[i][1]);
    }
    pa += kMr256;
    pb += kNr256;
  }
#pragma GCC unroll 6
  for (int i = 0; i < kMr256; ++i) {
    float* ci = c + i * ldc;
    if (acc) {
      r[i][0] = _mm256_add_ps(r[i][0], _mm256_loadu_ps(ci));
      r[i][1] = _mm256_add_ps(r[i][1], _mm256_loadu_ps(ci + 8));
    }
    _mm256_storeu_ps(ci, r[i][0]);
    _mm256_storeu_ps(ci + 8, r[i][1]);
  }
}
#endif  // LLMSYS_LADDER_X86

struct Isa {
  const char* name = "none";
  MicroKernel kernel = nullptr;
  int64_t mr = 0, nr = 0;
};

Isa DetectIsa() {
  Isa isa;
#ifdef LLMSYS_LADDER_X86
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f")) {
    isa = {"avx512", Kernel512, kMr512, kNr512};
  } else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
    isa = {"avx2", Kernel256, kMr256, kNr256};
  }
#endif
  return isa;
}

const Isa& TheIsa() {
  static const Isa isa = DetectIsa();
  return isa;
}

// Block sizes of the packed GEMM (GotoBLAS's loop nest): a kc x nr sliver
// of packed B (256 x 32 floats = 32 KiB) stays in the 48 KiB L1 while the
// kernel runs down the packed A block; the mc x kc block of A (192 x 256 =
// 192 KiB) stays in the 2 MiB L2; the kc x nc panel of B (256 x 1024 =
// 1 MiB) is reused by every A block of the thread's rows.
constexpr int64_t kKc = 256, kMc = 192, kNc = 1024;

// Strides of op(X): element (r, c) is x[r * rs + c * cs].
struct View {
  const float* x;
  int64_t rs, cs;
  float at(int64_t r, int64_t c) const { return x[r * rs + c * cs]; }
};

// Packs op(A)[i0 : i0 + mc, p0 : p0 + kc] into strips of mr rows, each
// stored k-major (mr floats per step), zero-padding the last strip.
void PackA(const View& a, int64_t i0, int64_t mc, int64_t p0, int64_t kc,
           int64_t mr, float* dst) {
  for (int64_t s = 0; s < mc; s += mr) {
    const int64_t rows = std::min(mr, mc - s);
    for (int64_t p = 0; p < kc; ++p) {
      for (int64_t r = 0; r < rows; ++r) dst[r] = a.at(i0 + s + r, p0 + p);
      for (int64_t r = rows; r < mr; ++r) dst[r] = 0;
      dst += mr;
    }
  }
}

// Packs op(B)[p0 : p0 + kc, j0 : j0 + nc] into strips of nr columns, each
// stored k-major (nr floats per step), zero-padding the last strip.
void PackB(const View& b, int64_t p0, int64_t kc, int64_t j0, int64_t nc,
           int64_t nr, float* dst) {
  for (int64_t s = 0; s < nc; s += nr) {
    const int64_t cols = std::min(nr, nc - s);
    for (int64_t p = 0; p < kc; ++p) {
      if (b.cs == 1) {
        const float* src = b.x + (p0 + p) * b.rs + j0 + s;
        std::copy(src, src + cols, dst);
      } else {
        for (int64_t q = 0; q < cols; ++q) dst[q] = b.at(p0 + p, j0 + s + q);
      }
      for (int64_t q = cols; q < nr; ++q) dst[q] = 0;
      dst += nr;
    }
  }
}

// C[i0 : i1, :] (+)= op(A)[i0 : i1, :] @ op(B) with the packed kernel.
void Packed(const Isa& isa, const View& a, const View& b, int64_t i0,
            int64_t i1, int64_t n, int64_t k, bool acc, float* c, int64_t ldc) {
  const int64_t mr = isa.mr, nr = isa.nr;
  Buffer pa(static_cast<size_t>(kMc * kKc));
  Buffer pb(static_cast<size_t>(((kNc + nr - 1) / nr) * nr * kKc));
  alignas(64) float tile[kMr512 * kNr512 > kMr256 * kNr256 ? kMr512 * kNr512
                                                           : kMr256 * kNr256];
  for (int64_t j0 = 0; j0 < n; j0 += kNc) {
    const int64_t nc = std::min(kNc, n - j0);
    for (int64_t p0 = 0; p0 < k; p0 += kKc) {
      const int64_t kc = std::min(kKc, k - p0);
      const bool add = acc || p0 > 0;  // later k blocks add to the first
      PackB(b, p0, kc, j0, nc, nr, pb.get());
      for (int64_t ic = i0; ic < i1; ic += kMc) {
        const int64_t mc = std::min(kMc, i1 - ic);
        PackA(a, ic, mc, p0, kc, mr, pa.get());
        for (int64_t jr = 0; jr < nc; jr += nr) {
          const int64_t cols = std::min(nr, nc - jr);
          const float* sb = pb.get() + jr * kc;
          for (int64_t ir = 0; ir < mc; ir += mr) {
            const int64_t rows = std::min(mr, mc - ir);
            const float* sa = pa.get() + ir * kc;
            float* cij = c + (ic + ir) * ldc + j0 + jr;
            if (rows == mr && cols == nr) {
              isa.kernel(kc, sa, sb, cij, ldc, add);
              continue;
            }
            // An edge tile: the full tile into `tile`, then its valid part.
            isa.kernel(kc, sa, sb, tile, nr, false);
            for (int64_t r = 0; r < rows; ++r)
              for (int64_t q = 0; q < cols; ++q)
                cij[r * ldc + q] = add ? cij[r * ldc + q] + tile[r * nr + q]
                                       : tile[r * nr + q];
          }
        }
      }
    }
  }
}

// Below this many multiply-adds a second thread costs more than it saves.
constexpr int64_t kMinParallelWork = int64_t{1} << 18;

void Simd(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const float* a,
          int64_t lda, const float* b, int64_t ldb, bool acc, float* c,
          int64_t ldc, int threads) {
  const Isa& isa = TheIsa();
  const View va = ta ? View{a, 1, lda} : View{a, lda, 1};
  const View vb = tb ? View{b, 1, ldb} : View{b, ldb, 1};
  // Rows of C split over threads in whole micro-kernel strips: each element
  // is computed by one thread in the same order as with one thread.
  const int64_t strips = (m + isa.mr - 1) / isa.mr;
  int64_t t = std::min<int64_t>(std::max(threads, 1), strips);
  if (m * n * k < kMinParallelWork) t = 1;
  if (t <= 1) return Packed(isa, va, vb, 0, m, n, k, acc, c, ldc);
  std::vector<std::thread> workers;
  workers.reserve(static_cast<size_t>(t - 1));
  auto rows = [&](int64_t w) { return std::min(m, (strips * w / t) * isa.mr); };
  for (int64_t w = 1; w < t; ++w)
    workers.emplace_back([&, w] {
      Packed(isa, va, vb, rows(w), rows(w + 1), n, k, acc, c, ldc);
    });
  Packed(isa, va, vb, 0, rows(1), n, k, acc, c, ldc);
  for (std::thread& worker : workers) worker.join();
}

}  // namespace

const char* SimdIsa() { return TheIsa().name; }

void Sgemm(Rung rung, bool ta, bool tb, int64_t m, int64_t n, int64_t k,
           const float* a, int64_t lda, const float* b, int64_t ldb,
           bool accumulate, float* c, int64_t ldc, int threads) {
  if (m <= 0 || n <= 0) return;
  if (k <= 0) {
    if (!accumulate)
      for (int64_t i = 0; i < m; ++i)
        std::fill(c + i * ldc, c + i * ldc + n, 0);
    return;
  }
  if ((rung == Rung::kSimd || rung == Rung::kParallel) &&
      TheIsa().kernel != nullptr)
    return Simd(ta, tb, m, n, k, a, lda, b, ldb, accumulate, c, ldc,
                rung == Rung::kParallel ? threads : 1);
  std::vector<float> copy_a, copy_b;
  int64_t la = 0, lb = 0;
  const float* pa = Plain(ta, m, k, a, lda, &copy_a, &la);
  const float* pb = Plain(tb, k, n, b, ldb, &copy_b, &lb);
  switch (rung) {
    case Rung::kNaive:
      return Naive(m, n, k, pa, la, pb, lb, accumulate, c, ldc);
    case Rung::kLoopOrder:
      return LoopOrder(m, n, k, pa, la, pb, lb, accumulate, c, ldc);
    default:  // tiled, and simd/parallel without a vector ISA
      return Tiled(m, n, k, pa, la, pb, lb, accumulate, c, ldc);
  }
}

void Dgemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const double* a,
           int64_t lda, const double* b, int64_t ldb, bool accumulate,
           double* c, int64_t ldc) {
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      double s = 0;
      for (int64_t p = 0; p < k; ++p)
        s += (ta ? a[p * lda + i] : a[i * lda + p]) *
             (tb ? b[j * ldb + p] : b[p * ldb + j]);
      c[i * ldc + j] = accumulate ? c[i * ldc + j] + s : s;
    }
}

}  // namespace llmsys::ladder
