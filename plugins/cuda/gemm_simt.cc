// matmul.cuda and linear.cuda: the matmul and linear ops on CUDA cores
// (cuda/gemm_simt.h), without cuBLAS. They run on any CUDA GPU as a
// fallback below matmul.cublas and linear.cublas (priority 50 against 100:
// an experiment picks them through its [ops] table), and in the CPU
// emulation of tests/cuda/emu, where cuBLASLt does not exist.
//
// Semantics, forward and backward, are the reference's
// (plugins/operators/reference/matmul.cc), in float32, float64, bfloat16
// and float16 (accumulated in float, double for float64). The GEMMs each
// call needs are cuda/matmul.h's plans, run by PlannedMatmul
// (plugins/cuda/matmul_plans.h) as for matmul.cublas: a weight shared by
// every batch folds the batch into one GEMM's rows, other batches run as
// strided-batched GEMMs (stride 0 for a broadcast operand), and the
// gradient of an operand broadcast over batch dims is computed per batch
// into the workspace (asked for in Infer) and summed over those dims in a
// fixed order; linear's bias gradient is the same fixed-order sum over
// rows. No atomics: the same bits on every run.
#include "cuda/gemm_simt.h"

#include <string>
#include <vector>

#include "cuda/matmul.h"
#include "plugins/cuda/common.h"
#include "plugins/cuda/matmul_plans.h"

namespace llmsys::cuda {
namespace {

// Sets every element of `t` (null: nothing) to zero on the call's stream.
void ZeroTensor(const llmsys_op_call_t& call, DLTensor* t) {
  if (t == nullptr) return;
  LLMSYS_CUDA_CHECK(
      call, LaunchSimtZero(DTypeOf(call, t->dtype), llmsys_tensor_data(t),
                           llmsys_tensor_numel(t), Stream(call)));
}

// c = op(x) @ op(y) (+ bias rows) as `g` says.
void Gemm(const llmsys_op_call_t& call, DType t, const RowGemm& g,
          const void* x, const void* y, void* c, const void* bias = nullptr) {
  LLMSYS_CUDA_CHECK(
      call, LaunchSimtGemm(t, g, x, y, c, bias, 1.0, 0.0, Stream(call)));
}

// ---- the components ----

class Matmul final : public PlannedMatmul {
 public:
  static sdk::Info Describe() {
    return {.id = "matmul.cuda",
            .description =
                "batched matmul as a tiled shared-memory GEMM on CUDA cores "
                "(no cuBLAS; transposes and broadcast batches in the kernel's "
                "strides, broadcast gradients summed deterministically)",
            .device_type = kDLCUDA,
            .op = "matmul",
            .op_flags = LLMSYS_OP_BACKWARD_NEEDS_INPUTS,
            .priority = 50};
  }
  explicit Matmul(const sdk::Params&) {}

 private:
  void ZeroGrad(const llmsys_op_call_t& call, DLTensor* t) override {
    ZeroTensor(call, t);
  }

  void RunPlan(const llmsys_op_call_t& call, DType t, const MatmulPlan& plan,
               const void* a, const void* b, const void* g,
               DLTensor* target) override {
    RunPlanWith(
        call, t, plan, a, b, g, target,
        [&](const RowGemm& gemm, const void* x, const void* y, void* c) {
          Gemm(call, t, gemm, x, y, c);
        },
        [&](void* out, const void* work, const BroadcastReduce& spec) {
          LLMSYS_CUDA_CHECK(call,
                            LaunchSimtReduce(t, out, work, spec, Stream(call)));
        });
  }
};

// out (rows, M) = x (rows, K) @ weight (M, K)^T + bias (M): one GEMM with
// the bias added in its epilogue.
class Linear : public sdk::Operator {
 public:
  static constexpr bool kHasBackward = true;
  static sdk::Info Describe() {
    return {.id = "linear.cuda",
            .description =
                "x @ weight^T + bias as a tiled shared-memory GEMM on CUDA "
                "cores (no cuBLAS; bias in the epilogue); backward: two "
                "GEMMs and a fixed-order column sum for the bias",
            .device_type = kDLCUDA,
            .op = "linear",
            .op_flags = LLMSYS_OP_BACKWARD_NEEDS_INPUTS,
            .priority = 50};
  }
  explicit Linear(const sdk::Params&) {}

  std::vector<llmsys_tensor_spec_t> Infer(const llmsys_op_call_t& call,
                                          size_t*) override {
    return reference::LinearOutputs(call);
  }

  void Forward(const llmsys_op_call_t& call, DLTensor* const* outputs,
               uint32_t) override {
    const reference::LinearDims d = reference::LinearDimsOf(call);
    const DType t = DTypeOf(call, call.inputs[0]->dtype);
    const void* x = llmsys_tensor_data(call.inputs[0]);  // (rows, K)
    const void* w = llmsys_tensor_data(call.inputs[1]);  // (M, K)
    const void* bias = d.bias ? llmsys_tensor_data(d.bias) : nullptr;  // (M)
    // An empty K gives the bias rows, or zeros (the kernel's empty sum).
    Gemm(call, t, LinearForwardGemm(d.rows, d.k, d.m), x, w,
         llmsys_tensor_data(outputs[0]), bias);  // (rows, M)
  }

  // With g = dL/dout (rows, M): dx = g @ weight (rows, K), dweight = g^T @
  // x (M, K), dbias = g summed over the rows (M). An empty M, rows or K
  // makes a GEMM's inner dim empty: its output is zeros.
  void Backward(const llmsys_op_call_t& call, const DLTensor* const*,
                const DLTensor* const* grad_outputs, uint32_t,
                DLTensor* const* grad_inputs) override {
    if (grad_outputs[0] == nullptr) {  // a zero incoming gradient
      ZeroTensor(call, grad_inputs[0]);
      ZeroTensor(call, grad_inputs[1]);
      if (call.num_inputs > 2) ZeroTensor(call, grad_inputs[2]);
      return;
    }
    // With an incoming gradient LinearGradsOf only sorts out the pointers
    // (it zeroes through host memory only without one, handled above).
    const reference::LinearGrads grads =
        reference::LinearGradsOf(call, grad_outputs, grad_inputs);
    const reference::LinearDims d = reference::LinearDimsOf(call);
    const DType t = DTypeOf(call, call.inputs[0]->dtype);
    const void* x = llmsys_tensor_data(call.inputs[0]);  // (rows, K)
    const void* w = llmsys_tensor_data(call.inputs[1]);  // (M, K)
    const void* g = llmsys_tensor_data(grads.g);         // (rows, M)
    if (grads.x != nullptr)
      Gemm(call, t, LinearGradXGemm(d.rows, d.k, d.m), g, w,
           llmsys_tensor_data(grads.x));  // (rows, K)
    if (grads.weight != nullptr)
      Gemm(call, t, LinearGradWGemm(d.rows, d.k, d.m), g, x,
           llmsys_tensor_data(grads.weight));  // (M, K)
    if (grads.bias != nullptr)
      LLMSYS_CUDA_CHECK(
          call,
          LaunchSimtReduce(t, llmsys_tensor_data(grads.bias), g,
                           ColumnSums(d.rows, d.m), Stream(call)));  // (M)
  }
};

}  // namespace

void RegisterSimtMatmul(sdk::Registry& registry) {
  registry.Add<Matmul>();
  registry.Add<Linear>();
}

}  // namespace llmsys::cuda
