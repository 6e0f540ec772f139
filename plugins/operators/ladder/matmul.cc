// The matmul ladder's operators: matmul.naive, matmul.loop_order,
// matmul.tiled, matmul.simd and matmul.parallel, each a complete `matmul`
// (batched, transposes, broadcast batch dims, backward as two GEMMs of the
// same rung) on the GEMMs of kernels.cc. float64 runs a plain loop.
#include <string>
#include <vector>

#include "plugins/operators/ladder/kernels.h"
#include "plugins/operators/reference/common.h"

namespace llmsys::ladder {
namespace {

using reference::Arg;
using reference::BatchedMatmulBackward;
using reference::BatchedMatmulForward;
using reference::ForFloat;
using reference::MatmulDims;
using reference::MatmulDimsOf;
using reference::MatmulOutputs;

// One GEMM of the rung in the dtype: C (m, n) (+)= op(A) @ op(B).
void Gemm(Rung rung, int threads, bool ta, bool tb, int64_t m, int64_t n,
          int64_t k, const float* a, int64_t lda, const float* b, int64_t ldb,
          bool acc, float* c, int64_t ldc) {
  Sgemm(rung, ta, tb, m, n, k, a, lda, b, ldb, acc, c, ldc, threads);
}
void Gemm(Rung, int, bool ta, bool tb, int64_t m, int64_t n, int64_t k,
          const double* a, int64_t lda, const double* b, int64_t ldb, bool acc,
          double* c, int64_t ldc) {
  Dgemm(ta, tb, m, n, k, a, lda, b, ldb, acc, c, ldc);
}

// Gemm of rung R on `threads` threads, in the form the shared batched loop
// (reference::BatchedMatmulForward/Backward) calls.
template <Rung R, class T>
auto RungGemm(int threads) {
  return [threads](bool ta, bool tb, int64_t m, int64_t n, int64_t k,
                   const T* a, int64_t lda, const T* b, int64_t ldb, bool acc,
                   T* c, int64_t ldc) {
    Gemm(R, threads, ta, tb, m, n, k, a, lda, b, ldb, acc, c, ldc);
  };
}

int ThreadsOf(const llmsys_op_call_t& call) {
  return call.ctx != nullptr && call.ctx->num_threads > 0
             ? call.ctx->num_threads
             : 1;
}

std::string SimdNote() {
  const std::string isa = SimdIsa();
  if (isa == "avx512") return "AVX-512 8x32 micro-kernel on packed panels";
  if (isa == "avx2") return "AVX2/FMA 6x16 micro-kernel on packed panels";
  return "no AVX2/AVX-512 on this CPU: falls back to the tiled loops";
}

struct RungInfo {
  const char* id;
  std::string description;
};

template <Rung R>
RungInfo InfoOf() {
  switch (R) {
    case Rung::kNaive:
      return {"matmul.naive",
              "ladder rung 1: i-j-k triple loop (float32 sum, strided B)"};
    case Rung::kLoopOrder:
      return {"matmul.loop_order",
              "ladder rung 2: i-k-j loop order (unit-stride inner loop the "
              "compiler vectorizes)"};
    case Rung::kTiled:
      return {"matmul.tiled",
              "ladder rung 3: i-k-j over 64x128x256 cache tiles"};
    case Rung::kSimd:
      return {"matmul.simd", "ladder rung 4: " + SimdNote() + ", one thread"};
    case Rung::kParallel:
      return {"matmul.parallel", "ladder rung 5: " + SimdNote() +
                                     ", rows split over the call's threads"};
  }
  return {};
}

template <Rung R>
class Matmul : public sdk::Operator {
 public:
  static constexpr bool kHasBackward = true;
  static sdk::Info Describe() {
    RungInfo info = InfoOf<R>();
    return {.id = info.id,
            .description = info.description +
                           "; float64 as a plain loop (priority -10: chosen "
                           "only by name)",
            .op = "matmul",
            .op_flags = LLMSYS_OP_BACKWARD_NEEDS_INPUTS,
            .priority = -10};
  }
  explicit Matmul(const sdk::Params&) {}

  std::vector<llmsys_tensor_spec_t> Infer(const llmsys_op_call_t& call,
                                          size_t*) override {
    return MatmulOutputs(call);
  }

  void Forward(const llmsys_op_call_t& call, DLTensor* const* outputs,
               uint32_t) override {
    const DLTensor* a = call.inputs[0];
    const DLTensor* b = call.inputs[1];
    const MatmulDims d = MatmulDimsOf(call, a, b);
    const int threads = ThreadsOf(call);
    ForFloat(a->dtype, [&]<class T>(T) {
      BatchedMatmulForward(d, sdk::Data<const T>(a), sdk::Data<const T>(b),
                           sdk::Data<T>(outputs[0]), RungGemm<R, T>(threads));
    });
  }

  void Backward(const llmsys_op_call_t& call, const DLTensor* const*,
                const DLTensor* const* grad_outputs, uint32_t,
                DLTensor* const* grad_inputs) override {
    DLTensor* ga = grad_inputs[0];
    DLTensor* gb = grad_inputs[1];
    const DLTensor* g = grad_outputs[0];
    if (g == nullptr) {
      if (ga != nullptr) ZeroAll(ga);
      if (gb != nullptr) ZeroAll(gb);
      return;
    }
    if (ga == nullptr && gb == nullptr) return;
    const DLTensor* a = Arg(call, 0, "a");
    const DLTensor* b = Arg(call, 1, "b");
    const MatmulDims d = MatmulDimsOf(call, a, b);
    const int threads = ThreadsOf(call);
    ForFloat(a->dtype, [&]<class T>(T) {
      BatchedMatmulBackward(
          d, sdk::Data<const T>(a), sdk::Data<const T>(b),
          sdk::Data<const T>(g), ga != nullptr ? sdk::Data<T>(ga) : nullptr,
          gb != nullptr ? sdk::Data<T>(gb) : nullptr, RungGemm<R, T>(threads));
    });
  }

 private:
  static void ZeroAll(DLTensor* t) {
    ForFloat(t->dtype, [&]<class T>(T) {
      T* p = sdk::Data<T>(t);
      for (int64_t i = 0; i < llmsys_tensor_numel(t); ++i) p[i] = T(0);
    });
  }
};

}  // namespace

void RegisterMatmul(sdk::Registry& registry) {
  registry.Add<Matmul<Rung::kNaive>>();
  registry.Add<Matmul<Rung::kLoopOrder>>();
  registry.Add<Matmul<Rung::kTiled>>();
  registry.Add<Matmul<Rung::kSimd>>();
  registry.Add<Matmul<Rung::kParallel>>();
}

}  // namespace llmsys::ladder

LLMSYS_PLUGIN("llmsys.ladder", "1.0.0",
              "The matmul ladder: naive, loop order, tiled, SIMD "
              "micro-kernel and multithreaded matmul, for `llmsys bench "
              "matmul` (never chosen by default)",
              "MIT") {
  llmsys::ladder::RegisterMatmul(registry);
}
