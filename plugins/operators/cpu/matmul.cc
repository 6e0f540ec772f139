// matmul.blas: batched op(a) @ op(b) on OpenBLAS GEMMs. When b has no batch
// of its own (a weight) and a is not transposed, the batch folds into the
// rows: one GEMM forward, one per gradient (the weight's gradient sums over
// the batch inside the GEMM's inner dim).
#include <string>
#include <vector>

#include "plugins/operators/cpu/common.h"

namespace llmsys::cpu {
namespace {

// The reference's checked sizes, plus: the batch folds into rows when b is
// one matrix shared by every batch and a has one per batch, not transposed.
struct Dims : reference::MatmulDims {
  bool fold = false;
};

Dims DimsOf(const llmsys_op_call_t& call, const DLTensor* a,
            const DLTensor* b) {
  Dims d;
  static_cast<reference::MatmulDims&>(d) = reference::MatmulDimsOf(call, a, b);
  d.fold = !d.transpose_a && Numel(d.batch_b) == 1 &&
           Numel(d.batch_a) == Numel(d.batch);
  return d;
}

class Matmul : public sdk::Operator {
 public:
  static constexpr bool kHasBackward = true;
  static sdk::Info Describe() {
    return {.id = "matmul.blas",
            .description =
                "batched matmul on OpenBLAS sgemm/dgemm (transposes "
                "in the GEMM, broadcast batch dims, weight batches "
                "folded into one GEMM)",
            .op = "matmul",
            .op_flags = LLMSYS_OP_BACKWARD_NEEDS_INPUTS,
            .priority = 100};
  }
  explicit Matmul(const sdk::Params&) {}

  std::vector<llmsys_tensor_spec_t> Infer(const llmsys_op_call_t& call,
                                          size_t*) override {
    const DLTensor* a = FloatArg(call, 0, "a");
    const DLTensor* b = FloatArg(call, 1, "b");
    RequireSameDtype(call, a, "a", b, "b");
    const Dims d = DimsOf(call, a, b);
    Shape out = d.batch;  // (batch..., N, M)
    out.push_back(d.n);
    out.push_back(d.m);
    return {SpecOf(call, a->dtype, out)};
  }

  void Forward(const llmsys_op_call_t& call, DLTensor* const* outputs,
               uint32_t) override {
    const DLTensor* a = call.inputs[0];
    const DLTensor* b = call.inputs[1];
    const Dims d = DimsOf(call, a, b);
    UseThreads(call);
    // Row strides of the stored matrices.
    const int64_t lda = d.transpose_a ? d.n : d.k,
                  ldb = d.transpose_b ? d.k : d.m;
    ForFloat(a->dtype, [&]<class T>(T) {
      const T* pa = sdk::Data<const T>(a);
      const T* pb = sdk::Data<const T>(b);
      T* po = sdk::Data<T>(outputs[0]);
      if (d.fold) {
        Gemm(false, d.transpose_b, Numel(d.batch) * d.n, d.m, d.k, T(1), pa,
             lda, pb, ldb, T(0), po, d.m);
        return;
      }
      const std::vector<int64_t> ia = BroadcastIndex(d.batch_a, d.batch);
      const std::vector<int64_t> ib = BroadcastIndex(d.batch_b, d.batch);
      for (size_t i = 0; i < ia.size(); ++i)
        Gemm(d.transpose_a, d.transpose_b, d.n, d.m, d.k, T(1),
             pa + ia[i] * d.n * d.k, lda, pb + ib[i] * d.k * d.m, ldb, T(0),
             po + static_cast<int64_t>(i) * d.n * d.m, d.m);
    });
  }

  // g = dL/dout (N, M): dop(a) = g op(b)^T, dop(b) = op(a)^T g, each
  // written in its input's layout and summed over broadcast batches.
  void Backward(const llmsys_op_call_t& call, const DLTensor* const*,
                const DLTensor* const* grad_outputs, uint32_t,
                DLTensor* const* grad_inputs) override {
    DLTensor* ga = grad_inputs[0];
    DLTensor* gb = grad_inputs[1];
    const DLTensor* g = grad_outputs[0];
    if (g == nullptr) {
      if (ga != nullptr) Zero(ga);
      if (gb != nullptr) Zero(gb);
      return;
    }
    if (ga == nullptr && gb == nullptr) return;
    const DLTensor* a = Arg(call, 0, "a");
    const DLTensor* b = Arg(call, 1, "b");
    const Dims d = DimsOf(call, a, b);
    UseThreads(call);
    const int64_t lda = d.transpose_a ? d.n : d.k,
                  ldb = d.transpose_b ? d.k : d.m;
    ForFloat(a->dtype, [&]<class T>(T) {
      const T* pa = sdk::Data<const T>(a);
      const T* pb = sdk::Data<const T>(b);
      const T* pg = sdk::Data<const T>(g);
      if (d.fold) {
        const int64_t rows = Numel(d.batch) * d.n;
        // ga (rows, K) = g (rows, M) @ op(b)^T
        if (ga != nullptr)
          Gemm(false, !d.transpose_b, rows, d.k, d.m, T(1), pg, d.m, pb, ldb,
               T(0), sdk::Data<T>(ga), d.k);
        // gb: (K, M) = a^T g, or (M, K) = g^T a; the batch is in `rows`.
        if (gb != nullptr) {
          if (!d.transpose_b)
            Gemm(true, false, d.k, d.m, rows, T(1), pa, d.k, pg, d.m, T(0),
                 sdk::Data<T>(gb), d.m);
          else
            Gemm(true, false, d.m, d.k, rows, T(1), pg, d.m, pa, d.k, T(0),
                 sdk::Data<T>(gb), d.k);
        }
        return;
      }
      const std::vector<int64_t> ia = BroadcastIndex(d.batch_a, d.batch);
      const std::vector<int64_t> ib = BroadcastIndex(d.batch_b, d.batch);
      if (ga != nullptr) Zero(ga);
      if (gb != nullptr) Zero(gb);
      for (size_t i = 0; i < ia.size(); ++i) {
        const T* ai = pa + ia[i] * d.n * d.k;
        const T* bi = pb + ib[i] * d.k * d.m;
        const T* gi = pg + static_cast<int64_t>(i) * d.n * d.m;  // (N, M)
        if (ga != nullptr) {
          T* out = sdk::Data<T>(ga) + ia[i] * d.n * d.k;
          if (!d.transpose_a)  // (N, K) = g op(b)^T
            Gemm(false, !d.transpose_b, d.n, d.k, d.m, T(1), gi, d.m, bi, ldb,
                 T(1), out, d.k);
          else  // (K, N) = op(b) g^T
            Gemm(d.transpose_b, true, d.k, d.n, d.m, T(1), bi, ldb, gi, d.m,
                 T(1), out, d.n);
        }
        if (gb != nullptr) {
          T* out = sdk::Data<T>(gb) + ib[i] * d.k * d.m;
          if (!d.transpose_b)  // (K, M) = op(a)^T g
            Gemm(!d.transpose_a, false, d.k, d.m, d.n, T(1), ai, lda, gi, d.m,
                 T(1), out, d.m);
          else  // (M, K) = g^T op(a)
            Gemm(true, d.transpose_a, d.m, d.k, d.n, T(1), gi, d.m, ai, lda,
                 T(1), out, d.k);
        }
      }
    });
  }
};

}  // namespace

void RegisterMatmul(sdk::Registry& registry) { registry.Add<Matmul>(); }

}  // namespace llmsys::cpu
