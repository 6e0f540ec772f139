// matmul.cuda and linear.cuda: the matmul and linear ops on CUDA cores
// (cuda/gemm_simt.h), without cuBLAS. They run on any CUDA GPU as a
// fallback below matmul.cublas and linear.cublas (priority 50 against 100:
// an experiment picks them through its [ops] table), and in the CPU
// emulation of tests/cuda/emu, where cuBLASLt does not exist.
//
// Semantics, forward and backward, are the reference's
// (plugins/operators/reference/matmul.cc), in float32, float64, bfloat16
// and float16 (accumulated in float, double for float64). The GEMMs each
// call needs are cuda/matmul.h's plans, shared with matmul.cublas: a weight
// shared by every batch folds the batch into one GEMM's rows, other batches
// run as strided-batched GEMMs (stride 0 for a broadcast operand), and the
// gradient of an operand broadcast over batch dims is computed per batch
// into the workspace (asked for in Infer) and summed over those dims in a
// fixed order; linear's bias gradient is the same fixed-order sum over
// rows. No atomics: the same bits on every run.
#include "cuda/gemm_simt.h"

#include <string>
#include <vector>

#include "cuda/matmul.h"
#include "plugins/cuda/common.h"

namespace llmsys::cuda {
namespace {

// The call's workspace, checked to hold `bytes`.
void* Workspace(const llmsys_op_call_t& call, int64_t bytes) {
  if (bytes <= 0) return nullptr;
  if (call.ctx == nullptr || call.ctx->workspace == nullptr ||
      call.ctx->workspace_bytes < static_cast<size_t>(bytes))
    Fail(
        LLMSYS_STATUS_FAILED_PRECONDITION,
        std::string(call.op) + ": needs " + std::to_string(bytes) +
            " bytes of workspace (as infer asked), the host gave " +
            std::to_string(call.ctx != nullptr && call.ctx->workspace != nullptr
                               ? call.ctx->workspace_bytes
                               : 0));
  return call.ctx->workspace;
}

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

// Runs `plan` on a, b and g (dL/dout; null in forward) into `target`.
void RunPlan(const llmsys_op_call_t& call, DType t, const MatmulPlan& plan,
             const void* a, const void* b, const void* g, DLTensor* target) {
  if (plan.zero_target) {
    ZeroTensor(call, target);
    return;
  }
  if (plan.calls.empty()) return;
  const int64_t es = DTypeBytes(t);
  void* work = Workspace(call, plan.work_elems * es);
  void* out = llmsys_tensor_data(target);
  auto ptr = [&](MatBuf buf, int64_t offset) -> char* {
    const void* p = buf == MatBuf::kA      ? a
                    : buf == MatBuf::kB    ? b
                    : buf == MatBuf::kGrad ? g
                    : buf == MatBuf::kOut  ? out
                                           : work;
    return static_cast<char*>(const_cast<void*>(p)) + offset * es;
  };
  for (const GemmCall& c : plan.calls)
    Gemm(call, t, c.gemm, ptr(c.x, c.x_offset), ptr(c.y, c.y_offset),
         ptr(c.c, c.c_offset));
  if (plan.reduce)
    LLMSYS_CUDA_CHECK(
        call, LaunchSimtReduce(t, out, work, plan.reduction, Stream(call)));
}

MatmulShape MatmulShapeOf(const reference::MatmulDims& d) {
  MatmulShape s;
  s.batch_a = d.batch_a;
  s.batch_b = d.batch_b;
  s.batch = d.batch;
  s.n = d.n;
  s.k = d.k;
  s.m = d.m;
  s.transpose_a = d.transpose_a;
  s.transpose_b = d.transpose_b;
  return s;
}

// ---- the components ----

class Matmul : public sdk::Operator {
 public:
  static constexpr bool kHasBackward = true;
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

  // The workspace holds the per-batch products of a broadcast operand's
  // gradient (forward asks for it too: infer cannot tell the passes apart).
  std::vector<llmsys_tensor_spec_t> Infer(const llmsys_op_call_t& call,
                                          size_t* workspace) override {
    std::vector<llmsys_tensor_spec_t> out = reference::MatmulOutputs(call);
    const MatmulShape s = MatmulShapeOf(
        reference::MatmulDimsOf(call, call.inputs[0], call.inputs[1]));
    *workspace = static_cast<size_t>(MatmulWorkspaceElems(s) *
                                     DTypeBytes(DTypeOf(call, out[0].dtype)));
    return out;
  }

  void Forward(const llmsys_op_call_t& call, DLTensor* const* outputs,
               uint32_t) override {
    reference::MatmulOutputs(call);      // checks dtypes, devices and dims
    const DLTensor* a = call.inputs[0];  // (batch_a..., op: N, K)
    const DLTensor* b = call.inputs[1];  // (batch_b..., op: K, M)
    const MatmulShape s = MatmulShapeOf(reference::MatmulDimsOf(call, a, b));
    RunPlan(call, DTypeOf(call, a->dtype), MatmulForwardPlan(s),
            llmsys_tensor_data(a), llmsys_tensor_data(b), nullptr,
            outputs[0]);  // (batch..., N, M)
  }

  void Backward(const llmsys_op_call_t& call, const DLTensor* const*,
                const DLTensor* const* grad_outputs, uint32_t,
                DLTensor* const* grad_inputs) override {
    DLTensor* ga = grad_inputs[0];        // a's shape
    DLTensor* gb = grad_inputs[1];        // b's shape
    const DLTensor* g = grad_outputs[0];  // (batch..., N, M)
    if (g == nullptr) {
      ZeroTensor(call, ga);
      ZeroTensor(call, gb);
      return;
    }
    if (ga == nullptr && gb == nullptr) return;
    reference::MatmulOutputs(call);
    const DLTensor* a = Arg(call, 0, "a");  // kept for backward
    const DLTensor* b = Arg(call, 1, "b");  // kept for backward
    const MatmulShape s = MatmulShapeOf(reference::MatmulDimsOf(call, a, b));
    const DType t = DTypeOf(call, a->dtype);
    if (ga != nullptr)
      RunPlan(call, t, MatmulGradAPlan(s), llmsys_tensor_data(a),
              llmsys_tensor_data(b), llmsys_tensor_data(g), ga);
    if (gb != nullptr)  // after ga on the same stream: the workspace is free
      RunPlan(call, t, MatmulGradBPlan(s), llmsys_tensor_data(a),
              llmsys_tensor_data(b), llmsys_tensor_data(g), gb);
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
