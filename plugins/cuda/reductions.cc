// sum.cuda, mean.cuda and max.cuda: reductions over a set of dims (empty
// `dims`: all; keepdim or not), kernels in cuda/reductions.cu.
//
// Semantics are the reference's (plugins/operators/reference/reductions.cc):
// mean of an empty group is NaN (0/0); max takes the first NaN of a group,
// else its first maximal element, and its gradient goes to that element
// only. Sums accumulate in float (double for float64) in a fixed order: a
// thread per output, a block per output (or per tile of outputs) with a
// fixed shared-memory tree, or — for few outputs with long groups — per
// split partials in the workspace Infer asks for, added in split order by a
// second kernel. No atomics: results are the same run to run.
#include "cuda/reductions.h"

#include <string>
#include <vector>

#include "plugins/cuda/common.h"

namespace llmsys::cuda {
namespace {

void* DataOf(const DLTensor* t) { return llmsys_tensor_data(t); }

// The walk reducing x (operand 0, compact) over the reduced dims.
ReduceGeom GeomOf(const Shape& x, const std::vector<bool>& reduced) {
  return MakeReduceGeom(x, reduced, {CompactStrides(x)});
}

// The plan for `g` with the workspace the call has (Infer asked for the
// split plan's).
ReducePlan PlanFor(const llmsys_op_call_t& call, const ReduceGeom& g,
                   int value_bytes) {
  return call.ctx != nullptr
             ? PlanReduceWithin(g, value_bytes, call.ctx->workspace,
                                call.ctx->workspace_bytes)
             : PlanReduce(g, value_bytes, false);
}

void* Workspace(const llmsys_op_call_t& call, const ReducePlan& plan) {
  return plan.workspace > 0 ? call.ctx->workspace : nullptr;
}

// ---- sum and mean ----

struct SumFn {
  static constexpr const char* kOp = "sum";
  static constexpr bool kMean = false;
};
struct MeanFn {
  static constexpr const char* kOp = "mean";
  static constexpr bool kMean = true;
};

template <class Fn>
class SumLike : public sdk::Operator {
 public:
  static constexpr bool kHasBackward = true;
  static sdk::Info Describe() {
    return {.id = std::string(Fn::kOp) + ".cuda",
            .description =
                std::string(Fn::kOp) +
                " over dims on a CUDA GPU: fixed-order block reductions, "
                "two passes over a workspace for long groups (no atomics)",
            .device_type = kDLCUDA,
            .op = Fn::kOp,
            .op_flags = 0,  // backward needs only the shapes
            .priority = 100};
  }
  explicit SumLike(const sdk::Params&) {}

  std::vector<llmsys_tensor_spec_t> Infer(const llmsys_op_call_t& call,
                                          size_t* workspace) override {
    const DLTensor* x = FloatArg(call, 0, "x");  // any shape
    const Shape xs = ShapeOf(x);
    const std::vector<bool> reduced = ReducedDims(call, xs);
    const bool keepdim = sdk::Params(&call.attrs).Bool("keepdim");
    const DType t = DTypeOf(call, x->dtype);
    *workspace =
        PlanReduce(GeomOf(xs, reduced), ReduceValueBytes(t, false), true)
            .workspace;
    return {SpecOf(call, x->dtype, OutShape(xs, reduced, keepdim))};
  }

  void Forward(const llmsys_op_call_t& call, DLTensor* const* outputs,
               uint32_t) override {
    const DLTensor* x = call.inputs[0];  // any shape
    DLTensor* out = outputs[0];          // x's shape less the reduced dims
    const Shape xs = ShapeOf(x);
    const DType t = DTypeOf(call, x->dtype);
    const ReduceGeom g = GeomOf(xs, ReducedDims(call, xs));
    const ReducePlan plan = PlanFor(call, g, ReduceValueBytes(t, false));
    LLMSYS_CUDA_CHECK(call,
                      LaunchSum(t, DataOf(x), DataOf(out), g, plan, Fn::kMean,
                                Workspace(call, plan), Stream(call)));
  }

  void Backward(const llmsys_op_call_t& call, const DLTensor* const*,
                const DLTensor* const* grad_outputs, uint32_t,
                DLTensor* const* grad_inputs) override {
    DLTensor* gx = grad_inputs[0];  // x's shape
    if (gx == nullptr) return;
    const DType t = DTypeOf(call, gx->dtype);
    const int64_t n = llmsys_tensor_numel(gx);
    const DLTensor* g = grad_outputs[0];  // out's shape
    if (g == nullptr) {
      LLMSYS_CUDA_CHECK(
          call, LaunchZero(DataOf(gx), n * DTypeBytes(t), Stream(call)));
      return;
    }
    const Shape xs = ShapeOf(gx);
    const std::vector<bool> reduced = ReducedDims(call, xs);
    int64_t count = 1;  // elements per output
    for (size_t d = 0; d < xs.size(); ++d)
      if (reduced[d]) count *= xs[d];
    // g in the keepdim layout (the same order) broadcast over x.
    const StridedDims dims =
        MakeMapDims(xs, {BroadcastStrides(KeptShape(xs, reduced), xs)});
    LLMSYS_CUDA_CHECK(
        call, LaunchSumBackward(t, DataOf(g), DataOf(gx), dims, n,
                                Fn::kMean ? static_cast<double>(count) : 1.0,
                                Stream(call)));
  }
};

// ---- max ----

class Max : public sdk::Operator {
 public:
  static constexpr bool kHasBackward = true;
  static sdk::Info Describe() {
    return {.id = "max.cuda",
            .description =
                "max over dims on a CUDA GPU (first NaN, else first "
                "maximal element; the gradient goes there); fixed-order "
                "block reductions, two passes over a workspace for long "
                "groups",
            .device_type = kDLCUDA,
            .op = "max",
            .op_flags = LLMSYS_OP_BACKWARD_NEEDS_INPUTS,
            .priority = 100};
  }
  explicit Max(const sdk::Params&) {}

  std::vector<llmsys_tensor_spec_t> Infer(const llmsys_op_call_t& call,
                                          size_t* workspace) override {
    const DLTensor* x = FloatArg(call, 0, "x");  // any shape
    const Shape xs = ShapeOf(x);
    const std::vector<bool> reduced = ReducedDims(call, xs);
    int64_t group = 1;
    for (size_t d = 0; d < xs.size(); ++d)
      if (reduced[d]) group *= xs[d];
    if (group == 0)
      ArgFail(call, "max over an empty reduction of " +
                        reference::Describe("x", x) +
                        " (a reduced dim has size 0)");
    const bool keepdim = sdk::Params(&call.attrs).Bool("keepdim");
    *workspace =
        PlanReduce(GeomOf(xs, reduced),
                   ReduceValueBytes(DTypeOf(call, x->dtype), true), true)
            .workspace;
    return {SpecOf(call, x->dtype, OutShape(xs, reduced, keepdim))};
  }

  void Forward(const llmsys_op_call_t& call, DLTensor* const* outputs,
               uint32_t) override {
    const DLTensor* x = call.inputs[0];  // any shape
    DLTensor* out = outputs[0];          // x's shape less the reduced dims
    const Shape xs = ShapeOf(x);
    const DType t = DTypeOf(call, x->dtype);
    const ReduceGeom g = GeomOf(xs, ReducedDims(call, xs));
    const ReducePlan plan = PlanFor(call, g, ReduceValueBytes(t, true));
    LLMSYS_CUDA_CHECK(call, LaunchMax(t, DataOf(x), DataOf(out), g, plan,
                                      Workspace(call, plan), Stream(call)));
  }

  void Backward(const llmsys_op_call_t& call, const DLTensor* const*,
                const DLTensor* const* grad_outputs, uint32_t,
                DLTensor* const* grad_inputs) override {
    DLTensor* gx = grad_inputs[0];  // x's shape
    if (gx == nullptr) return;
    const DLTensor* g = grad_outputs[0];    // out's shape, or null
    const DLTensor* x = Arg(call, 0, "x");  // kept for backward
    const Shape xs = ShapeOf(x);
    const DType t = DTypeOf(call, x->dtype);
    const ReduceGeom geom = GeomOf(xs, ReducedDims(call, xs));
    const ReducePlan plan = PlanFor(call, geom, ReduceValueBytes(t, true));
    LLMSYS_CUDA_CHECK(
        call,
        LaunchMaxBackward(t, DataOf(x), g != nullptr ? DataOf(g) : nullptr,
                          DataOf(gx), llmsys_tensor_numel(gx), geom, plan,
                          Workspace(call, plan), Stream(call)));
  }
};

}  // namespace

void RegisterReductions(sdk::Registry& registry) {
  registry.Add<SumLike<SumFn>>();
  registry.Add<SumLike<MeanFn>>();
  registry.Add<Max>();
}

}  // namespace llmsys::cuda
