// plugins/cuda/matmul_plans.h — the matmul op as the GEMM plans of
// cuda/matmul.h, written once for the two implementations that run them:
// matmul.cublas (matmul.cc, GEMMs on cuBLASLt) and matmul.cuda
// (gemm_simt.cc, GEMMs on CUDA cores). PlannedMatmul checks the call, asks
// for the workspace, builds the forward and gradient plans and zeroes the
// gradients of a call without an incoming one; an implementation derives
// from it and supplies how one plan runs (its GEMM, zero fill and
// fixed-order workspace sum), usually through RunPlanWith.
//
//   class Matmul final : public PlannedMatmul {
//    public:
//     static sdk::Info Describe() { return {.id = "matmul.x", ...}; }
//     explicit Matmul(const sdk::Params&) {}
//    private:
//     void ZeroGrad(const llmsys_op_call_t& call, DLTensor* t) override;
//     void RunPlan(const llmsys_op_call_t& call, DType t,
//                  const MatmulPlan& plan, const void* a, const void* b,
//                  const void* g, DLTensor* target) override {
//       RunPlanWith(call, t, plan, a, b, g, target, my_gemm, my_reduce);
//     }
//   };
//
// Thread-safety: as the ABI says for operators (one thread per instance at
// a time); nothing here keeps state.
#ifndef LLMSYS_PLUGINS_CUDA_MATMUL_PLANS_H_
#define LLMSYS_PLUGINS_CUDA_MATMUL_PLANS_H_

#include <string>
#include <vector>

#include "cuda/matmul.h"
#include "plugins/cuda/common.h"

namespace llmsys::cuda {

inline MatmulShape MatmulShapeOf(const reference::MatmulDims& d) {
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

class PlannedMatmul : public sdk::Operator {
 public:
  static constexpr bool kHasBackward = true;

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
      ZeroGrad(call, ga);
      ZeroGrad(call, gb);
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

 protected:
  // Sets every element of `t` (null: nothing) to zero on the call's stream.
  virtual void ZeroGrad(const llmsys_op_call_t& call, DLTensor* t) = 0;

  // Runs `plan` on a, b and g (dL/dout; null in forward), all of dtype `t`,
  // into `target`.
  virtual void RunPlan(const llmsys_op_call_t& call, DType t,
                       const MatmulPlan& plan, const void* a, const void* b,
                       const void* g, DLTensor* target) = 0;

  // RunPlan from the implementation's kernels: ZeroGrad(target) when the
  // plan's sum is empty; else gemm(row_gemm, x, y, c) for each of its GEMMs
  // on the buffers the GemmCall names (the workspace checked to hold what
  // the plan writes), then reduce(out, work, spec) when the plan sums its
  // per-batch products over broadcast dims.
  template <class Gemm, class Reduce>
  void RunPlanWith(const llmsys_op_call_t& call, DType t,
                   const MatmulPlan& plan, const void* a, const void* b,
                   const void* g, DLTensor* target, Gemm&& gemm,
                   Reduce&& reduce) {
    if (plan.zero_target) {
      ZeroGrad(call, target);
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
      gemm(c.gemm, ptr(c.x, c.x_offset), ptr(c.y, c.y_offset),
           ptr(c.c, c.c_offset));
    if (plan.reduce) reduce(out, work, plan.reduction);
  }

 private:
  // The call's workspace, checked to hold `bytes`.
  static void* Workspace(const llmsys_op_call_t& call, int64_t bytes) {
    if (bytes <= 0) return nullptr;
    if (call.ctx == nullptr || call.ctx->workspace == nullptr ||
        call.ctx->workspace_bytes < static_cast<size_t>(bytes))
      Fail(LLMSYS_STATUS_FAILED_PRECONDITION,
           std::string(call.op) + ": needs " + std::to_string(bytes) +
               " bytes of workspace (as infer asked), the host gave " +
               std::to_string(call.ctx != nullptr &&
                                      call.ctx->workspace != nullptr
                                  ? call.ctx->workspace_bytes
                                  : 0));
    return call.ctx->workspace;
  }
};

}  // namespace llmsys::cuda

#endif  // LLMSYS_PLUGINS_CUDA_MATMUL_PLANS_H_
