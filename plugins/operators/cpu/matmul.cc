// matmul.blas: batched op(a) @ op(b) on OpenBLAS GEMMs. When b has no batch
// of its own (a weight) and a is not transposed, the batch folds into the
// rows: one GEMM forward, one per gradient (the weight's gradient sums over
// the batch inside the GEMM's inner dim), each split over the host's pool.
//
// linear.blas: x @ weight^T + bias as one GEMM whose output starts as the
// bias rows (beta = 1), so the bias costs no pass of its own: OpenBLAS
// otherwise spends the same pass zeroing the output. Backward: two GEMMs
// and the bias's row sums; no copy of the incoming gradient.
#include <algorithm>
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

// The shared batched loop's GEMM: C = op(A) op(B) (+ C when add).
template <class T>
void BlasGemm(bool ta, bool tb, int64_t rows, int64_t cols, int64_t inner,
              const T* a, int64_t lda, const T* b, int64_t ldb, bool add, T* c,
              int64_t ldc) {
  Gemm(ta, tb, rows, cols, inner, T(1), a, lda, b, ldb, add ? T(1) : T(0), c,
       ldc);
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
    return reference::MatmulOutputs(call);
  }

  void Forward(const llmsys_op_call_t& call, DLTensor* const* outputs,
               uint32_t) override {
    const DLTensor* a = call.inputs[0];
    const DLTensor* b = call.inputs[1];
    const Dims d = DimsOf(call, a, b);
    // Row strides of the stored matrices.
    const int64_t lda = d.transpose_a ? d.n : d.k,
                  ldb = d.transpose_b ? d.k : d.m;
    ForFloat(a->dtype, [&]<class T>(T) {
      const T* pa = sdk::Data<const T>(a);
      const T* pb = sdk::Data<const T>(b);
      T* po = sdk::Data<T>(outputs[0]);
      if (d.fold) {
        Gemm(call, false, d.transpose_b, Numel(d.batch) * d.n, d.m, d.k, T(1),
             pa, lda, pb, ldb, T(0), po, d.m);
        return;
      }
      UseThreads(call);
      reference::BatchedMatmulForward(d, pa, pb, po, BlasGemm<T>);
    });
  }

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
    const int64_t ldb = d.transpose_b ? d.k : d.m;
    ForFloat(a->dtype, [&]<class T>(T) {
      const T* pa = sdk::Data<const T>(a);
      const T* pb = sdk::Data<const T>(b);
      const T* pg = sdk::Data<const T>(g);
      if (d.fold) {
        const int64_t rows = Numel(d.batch) * d.n;
        // ga (rows, K) = g (rows, M) @ op(b)^T
        if (ga != nullptr)
          Gemm(call, false, !d.transpose_b, rows, d.k, d.m, T(1), pg, d.m, pb,
               ldb, T(0), sdk::Data<T>(ga), d.k);
        // gb: (K, M) = a^T g, or (M, K) = g^T a; the batch is in `rows`.
        if (gb != nullptr) {
          if (!d.transpose_b)
            Gemm(call, true, false, d.k, d.m, rows, T(1), pa, d.k, pg, d.m,
                 T(0), sdk::Data<T>(gb), d.m);
          else
            Gemm(call, true, false, d.m, d.k, rows, T(1), pg, d.m, pa, d.k,
                 T(0), sdk::Data<T>(gb), d.k);
        }
        return;
      }
      UseThreads(call);
      reference::BatchedMatmulBackward(
          d, pa, pb, pg, ga != nullptr ? sdk::Data<T>(ga) : nullptr,
          gb != nullptr ? sdk::Data<T>(gb) : nullptr, BlasGemm<T>);
    });
  }
};

class Linear : public sdk::Operator {
 public:
  static constexpr bool kHasBackward = true;
  static sdk::Info Describe() {
    return {.id = "linear.blas",
            .description =
                "x @ weight^T + bias as one OpenBLAS GEMM that "
                "starts from the bias rows",
            .op = "linear",
            .op_flags = LLMSYS_OP_BACKWARD_NEEDS_INPUTS,
            .priority = 100};
  }
  explicit Linear(const sdk::Params&) {}

  std::vector<llmsys_tensor_spec_t> Infer(const llmsys_op_call_t& call,
                                          size_t*) override {
    return reference::LinearOutputs(call);
  }

  void Forward(const llmsys_op_call_t& call, DLTensor* const* outputs,
               uint32_t) override {
    const reference::LinearDims d = reference::LinearDimsOf(call);
    ForFloat(call.inputs[0]->dtype, [&]<class T>(T) {
      const T* x = sdk::Data<const T>(call.inputs[0]);  // (rows, K)
      const T* w = sdk::Data<const T>(call.inputs[1]);  // (M, K)
      T* out = sdk::Data<T>(outputs[0]);                // (rows, M)
      if (d.bias != nullptr) {
        const T* bias = sdk::Data<const T>(d.bias);  // (M)
        ForRanges(call, d.rows,
                  std::max<int64_t>(1, kGrain / std::max<int64_t>(d.m, 1)),
                  [&](int64_t r0, int64_t r1) {
                    for (int64_t r = r0; r < r1; ++r)
                      std::copy(bias, bias + d.m, out + r * d.m);
                  });
      }
      // out = x @ w^T (+ out, the bias rows)
      Gemm(call, false, true, d.rows, d.m, d.k, T(1), x, d.k, w, d.k,
           d.bias != nullptr ? T(1) : T(0), out, d.m);
    });
  }

  void Backward(const llmsys_op_call_t& call, const DLTensor* const*,
                const DLTensor* const* grad_outputs, uint32_t,
                DLTensor* const* grad_inputs) override {
    const reference::LinearGrads grads =
        reference::LinearGradsOf(call, grad_outputs, grad_inputs);
    if (grads.g == nullptr) return;
    DLTensor *gx = grads.x, *gw = grads.weight, *gbias = grads.bias;
    const DLTensor* g = grads.g;
    const reference::LinearDims d = reference::LinearDimsOf(call);
    ForFloat(g->dtype, [&]<class T>(T) {
      const T* x = sdk::Data<const T>(call.inputs[0]);  // (rows, K)
      const T* w = sdk::Data<const T>(call.inputs[1]);  // (M, K)
      const T* pg = sdk::Data<const T>(g);              // (rows, M)
      // gx (rows, K) = g @ w
      if (gx != nullptr)
        Gemm(call, false, false, d.rows, d.k, d.m, T(1), pg, d.m, w, d.k, T(0),
             sdk::Data<T>(gx), d.k);
      // gw (M, K) = g^T @ x
      if (gw != nullptr)
        Gemm(call, true, false, d.m, d.k, d.rows, T(1), pg, d.m, x, d.k, T(0),
             sdk::Data<T>(gw), d.k);
      if (gbias != nullptr) SumRows(call, pg, d.rows, d.m, sdk::Data<T>(gbias));
    });
  }
};

}  // namespace

void RegisterMatmul(sdk::Registry& registry) {
  registry.Add<Matmul>();
  registry.Add<Linear>();
}

}  // namespace llmsys::cpu
