// Batched matrix product: out = op(a) @ op(b) over the last two dims, where
// op transposes them when asked; leading (batch) dims broadcast. And linear:
// x @ weight^T + bias, a layer's affine map.
#include <string>
#include <vector>

#include "plugins/operators/reference/common.h"

namespace llmsys::reference {
namespace {

// Element (row, col) of op(x), for one matrix of x stored at `p`: op(x) is
// (rows, cols), and x itself is (cols, rows) when transposed.
template <class T>
T At(const T* p, bool transposed, int64_t rows, int64_t cols, int64_t row,
     int64_t col) {
  return transposed ? p[col * rows + row] : p[row * cols + col];
}

// Adds `v` to element (row, col) of op(x) in the double buffer `acc` of one
// matrix of x.
void AddAt(double* acc, bool transposed, int64_t rows, int64_t cols,
           int64_t row, int64_t col, double v) {
  if (transposed)
    acc[col * rows + row] += v;
  else
    acc[row * cols + col] += v;
}

class Matmul : public sdk::Operator {
 public:
  static constexpr bool kHasBackward = true;
  static sdk::Info Describe() {
    return {.id = "matmul.reference",
            .description =
                "reference batched matmul with transposes and "
                "broadcast batch dims (plain loops, double "
                "accumulator)",
            .op = "matmul",
            .op_flags = LLMSYS_OP_BACKWARD_NEEDS_INPUTS};
  }
  explicit Matmul(const sdk::Params&) {}

  std::vector<llmsys_tensor_spec_t> Infer(const llmsys_op_call_t& call,
                                          size_t*) override {
    return MatmulOutputs(call);
  }

  void Forward(const llmsys_op_call_t& call, DLTensor* const* outputs,
               uint32_t) override {
    const DLTensor* a = call.inputs[0];  // (batch_a..., op: N, K)
    const DLTensor* b = call.inputs[1];  // (batch_b..., op: K, M)
    const DLTensor* out = outputs[0];    // (batch..., N, M)
    const MatmulDims d = MatmulDimsOf(call, a, b);
    const std::vector<int64_t> ia = BroadcastIndex(d.batch_a, d.batch);
    const std::vector<int64_t> ib = BroadcastIndex(d.batch_b, d.batch);
    const int64_t size_a = d.n * d.k, size_b = d.k * d.m, size_o = d.n * d.m;
    ForFloat(a->dtype, [&]<class T>(T) {
      T* po = sdk::Data<T>(out);
      for (size_t batch = 0; batch < ia.size(); ++batch) {
        const T* pa = sdk::Data<const T>(a) + ia[batch] * size_a;  // (N, K)
        const T* pb = sdk::Data<const T>(b) + ib[batch] * size_b;  // (K, M)
        T* pob = po + static_cast<int64_t>(batch) * size_o;        // (N, M)
        for (int64_t n = 0; n < d.n; ++n)
          for (int64_t m = 0; m < d.m; ++m) {
            double s = 0;
            for (int64_t k = 0; k < d.k; ++k)
              s += static_cast<double>(At(pa, d.transpose_a, d.n, d.k, n, k)) *
                   At(pb, d.transpose_b, d.k, d.m, k, m);
            pob[n * d.m + m] = static_cast<T>(s);
          }
      }
    });
  }

  // With g = dL/dout (N, M): dL/dop(a) = g @ op(b)^T (N, K) and
  // dL/dop(b) = op(a)^T @ g (K, M), written back through op's transpose and
  // summed over the batch dims that broadcast.
  void Backward(const llmsys_op_call_t& call, const DLTensor* const*,
                const DLTensor* const* grad_outputs, uint32_t,
                DLTensor* const* grad_inputs) override {
    DLTensor* ga = grad_inputs[0];        // a's shape
    DLTensor* gb = grad_inputs[1];        // b's shape
    const DLTensor* g = grad_outputs[0];  // (batch..., N, M)
    if (g == nullptr) {
      if (ga != nullptr) Zero(ga);
      if (gb != nullptr) Zero(gb);
      return;
    }
    if (ga == nullptr && gb == nullptr) return;
    const DLTensor* a = Arg(call, 0, "a");  // kept for backward
    const DLTensor* b = Arg(call, 1, "b");  // kept for backward
    const MatmulDims d = MatmulDimsOf(call, a, b);
    const std::vector<int64_t> ia = BroadcastIndex(d.batch_a, d.batch);
    const std::vector<int64_t> ib = BroadcastIndex(d.batch_b, d.batch);
    const int64_t size_a = d.n * d.k, size_b = d.k * d.m, size_o = d.n * d.m;
    std::vector<double> acc_a(static_cast<size_t>(llmsys_tensor_numel(a)),
                              0.0);  // a's shape
    std::vector<double> acc_b(static_cast<size_t>(llmsys_tensor_numel(b)),
                              0.0);  // b's shape
    ForFloat(a->dtype, [&]<class T>(T) {
      const T* pg = sdk::Data<const T>(g);
      for (size_t batch = 0; batch < ia.size(); ++batch) {
        const T* pa = sdk::Data<const T>(a) + ia[batch] * size_a;  // (N, K)
        const T* pb = sdk::Data<const T>(b) + ib[batch] * size_b;  // (K, M)
        const T* pgb = pg + static_cast<int64_t>(batch) * size_o;  // (N, M)
        double* qa = acc_a.data() + ia[batch] * size_a;            // (N, K)
        double* qb = acc_b.data() + ib[batch] * size_b;            // (K, M)
        if (ga != nullptr)
          for (int64_t n = 0; n < d.n; ++n)
            for (int64_t k = 0; k < d.k; ++k) {
              double s = 0;
              for (int64_t m = 0; m < d.m; ++m)
                s += static_cast<double>(pgb[n * d.m + m]) *
                     At(pb, d.transpose_b, d.k, d.m, k, m);
              AddAt(qa, d.transpose_a, d.n, d.k, n, k, s);
            }
        if (gb != nullptr)
          for (int64_t k = 0; k < d.k; ++k)
            for (int64_t m = 0; m < d.m; ++m) {
              double s = 0;
              for (int64_t n = 0; n < d.n; ++n)
                s +=
                    static_cast<double>(At(pa, d.transpose_a, d.n, d.k, n, k)) *
                    pgb[n * d.m + m];
              AddAt(qb, d.transpose_b, d.k, d.m, k, m, s);
            }
      }
      if (ga != nullptr) {
        T* p = sdk::Data<T>(ga);
        for (size_t i = 0; i < acc_a.size(); ++i)
          p[i] = static_cast<T>(acc_a[i]);
      }
      if (gb != nullptr) {
        T* p = sdk::Data<T>(gb);
        for (size_t i = 0; i < acc_b.size(); ++i)
          p[i] = static_cast<T>(acc_b[i]);
      }
    });
  }
};

// out (rows, M) = x (rows, K) @ weight (M, K)^T + bias (M).
class Linear : public sdk::Operator {
 public:
  static constexpr bool kHasBackward = true;
  static sdk::Info Describe() {
    return {.id = "linear.reference",
            .description =
                "reference x @ weight^T + bias (plain loops, "
                "double accumulator)",
            .op = "linear",
            .op_flags = LLMSYS_OP_BACKWARD_NEEDS_INPUTS};
  }
  explicit Linear(const sdk::Params&) {}

  std::vector<llmsys_tensor_spec_t> Infer(const llmsys_op_call_t& call,
                                          size_t*) override {
    return LinearOutputs(call);
  }

  void Forward(const llmsys_op_call_t& call, DLTensor* const* outputs,
               uint32_t) override {
    const LinearDims d = LinearDimsOf(call);
    ForFloat(call.inputs[0]->dtype, [&]<class T>(T) {
      const T* x = sdk::Data<const T>(call.inputs[0]);  // (rows, K)
      const T* w = sdk::Data<const T>(call.inputs[1]);  // (M, K)
      const T* bias = d.bias ? sdk::Data<const T>(d.bias) : nullptr;  // (M)
      T* out = sdk::Data<T>(outputs[0]);  // (rows, M)
      for (int64_t r = 0; r < d.rows; ++r)
        for (int64_t m = 0; m < d.m; ++m) {
          double s = bias ? static_cast<double>(bias[m]) : 0.0;
          for (int64_t k = 0; k < d.k; ++k)
            s += static_cast<double>(x[r * d.k + k]) * w[m * d.k + k];
          out[r * d.m + m] = static_cast<T>(s);
        }
    });
  }

  // With g = dL/dout (rows, M): dx = g @ weight (rows, K),
  // dweight = g^T @ x (M, K), dbias = g summed over the rows (M).
  void Backward(const llmsys_op_call_t& call, const DLTensor* const*,
                const DLTensor* const* grad_outputs, uint32_t,
                DLTensor* const* grad_inputs) override {
    const LinearGrads grads = LinearGradsOf(call, grad_outputs, grad_inputs);
    if (grads.g == nullptr) return;
    DLTensor *gx = grads.x, *gw = grads.weight, *gbias = grads.bias;
    const DLTensor* g = grads.g;
    const LinearDims d = LinearDimsOf(call);
    ForFloat(g->dtype, [&]<class T>(T) {
      const T* x = sdk::Data<const T>(call.inputs[0]);  // (rows, K)
      const T* w = sdk::Data<const T>(call.inputs[1]);  // (M, K)
      const T* pg = sdk::Data<const T>(g);              // (rows, M)
      if (gx != nullptr)
        for (int64_t r = 0; r < d.rows; ++r)
          for (int64_t k = 0; k < d.k; ++k) {
            double s = 0;
            for (int64_t m = 0; m < d.m; ++m)
              s += static_cast<double>(pg[r * d.m + m]) * w[m * d.k + k];
            sdk::Data<T>(gx)[r * d.k + k] = static_cast<T>(s);
          }
      if (gw != nullptr)
        for (int64_t m = 0; m < d.m; ++m)
          for (int64_t k = 0; k < d.k; ++k) {
            double s = 0;
            for (int64_t r = 0; r < d.rows; ++r)
              s += static_cast<double>(pg[r * d.m + m]) * x[r * d.k + k];
            sdk::Data<T>(gw)[m * d.k + k] = static_cast<T>(s);
          }
      if (gbias != nullptr)
        for (int64_t m = 0; m < d.m; ++m) {
          double s = 0;
          for (int64_t r = 0; r < d.rows; ++r) s += pg[r * d.m + m];
          sdk::Data<T>(gbias)[m] = static_cast<T>(s);
        }
    });
  }
};

}  // namespace

void RegisterMatmul(sdk::Registry& registry) {
  registry.Add<Matmul>();
  registry.Add<Linear>();
}

}  // namespace llmsys::reference
