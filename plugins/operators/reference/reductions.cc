// Reductions over a set of dims: sum, mean and max (keepdim or not).
#include <cmath>
#include <string>
#include <vector>

#include "plugins/operators/reference/common.h"

namespace llmsys::reference {
namespace {

// Elements of x per output element.
int64_t GroupSize(const Shape& x, const std::vector<bool>& reduced) {
  int64_t n = 1;
  for (size_t d = 0; d < x.size(); ++d)
    if (reduced[d]) n *= x[d];
  return n;
}

// For each element of x (row-major), the index of its output element.
std::vector<int64_t> OutIndex(const Shape& x,
                              const std::vector<bool>& reduced) {
  // The keepdim shape broadcasts to x along the reduced dims, and the output
  // has the same row-major order with or without keepdim.
  return BroadcastIndex(KeptShape(x, reduced), x);
}

// ---- sum and mean: out = sum (or mean) of x over the reduced dims ----

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
    return {.id = std::string(Fn::kOp) + ".reference",
            .description = std::string("reference ") + Fn::kOp +
                           " over dims (plain loop, double accumulator)",
            .op = Fn::kOp,
            .op_flags = 0};  // backward needs only the shapes
  }
  explicit SumLike(const sdk::Params&) {}

  std::vector<llmsys_tensor_spec_t> Infer(const llmsys_op_call_t& call,
                                          size_t*) override {
    const DLTensor* x = FloatArg(call, 0, "x");  // any shape
    const std::vector<bool> reduced = ReducedDims(call, ShapeOf(x));
    const bool keepdim = sdk::Params(&call.attrs).Bool("keepdim");
    return {SpecOf(call, x->dtype, OutShape(ShapeOf(x), reduced, keepdim))};
  }

  void Forward(const llmsys_op_call_t& call, DLTensor* const* outputs,
               uint32_t) override {
    const DLTensor* x = call.inputs[0];  // any shape
    const DLTensor* out = outputs[0];    // x's shape less the reduced dims
    const Shape xs = ShapeOf(x);
    const std::vector<bool> reduced = ReducedDims(call, xs);
    const std::vector<int64_t> index = OutIndex(xs, reduced);
    const double count = static_cast<double>(GroupSize(xs, reduced));
    ForFloat(x->dtype, [&]<class T>(T) {
      const T* px = sdk::Data<const T>(x);
      T* po = sdk::Data<T>(out);
      std::vector<double> acc(static_cast<size_t>(llmsys_tensor_numel(out)),
                              0.0);  // out's shape
      for (size_t k = 0; k < index.size(); ++k) acc[index[k]] += px[k];
      for (size_t k = 0; k < acc.size(); ++k)
        po[k] = static_cast<T>(Fn::kMean ? acc[k] / count : acc[k]);  // 0/0
    });
  }

  void Backward(const llmsys_op_call_t& call, const DLTensor* const*,
                const DLTensor* const* grad_outputs, uint32_t,
                DLTensor* const* grad_inputs) override {
    DLTensor* gx = grad_inputs[0];  // x's shape
    if (gx == nullptr) return;
    const DLTensor* g = grad_outputs[0];  // out's shape
    if (g == nullptr) return Zero(gx);
    const Shape xs = ShapeOf(gx);
    const std::vector<bool> reduced = ReducedDims(call, xs);
    const std::vector<int64_t> index = OutIndex(xs, reduced);
    const double count = static_cast<double>(GroupSize(xs, reduced));
    ForFloat(gx->dtype, [&]<class T>(T) {
      const T* pg = sdk::Data<const T>(g);
      T* pin = sdk::Data<T>(gx);
      for (size_t k = 0; k < index.size(); ++k) {
        const double v = pg[index[k]];
        pin[k] = static_cast<T>(Fn::kMean ? v / count : v);
      }
    });
  }
};

// ---- max: out = the largest element of each reduced group ----

class Max : public sdk::Operator {
 public:
  static constexpr bool kHasBackward = true;
  static sdk::Info Describe() {
    return {.id = "max.reference",
            .description =
                "reference max over dims; the gradient goes to "
                "the first maximal element (plain loop)",
            .op = "max",
            .op_flags = LLMSYS_OP_BACKWARD_NEEDS_INPUTS};
  }
  explicit Max(const sdk::Params&) {}

  std::vector<llmsys_tensor_spec_t> Infer(const llmsys_op_call_t& call,
                                          size_t*) override {
    const DLTensor* x = FloatArg(call, 0, "x");  // any shape
    const Shape xs = ShapeOf(x);
    const std::vector<bool> reduced = ReducedDims(call, xs);
    if (GroupSize(xs, reduced) == 0)
      ArgFail(call, "max over an empty reduction of " +
                        reference::Describe("x", x) +
                        " (a reduced dim has size 0)");
    const bool keepdim = sdk::Params(&call.attrs).Bool("keepdim");
    return {SpecOf(call, x->dtype, OutShape(xs, reduced, keepdim))};
  }

  void Forward(const llmsys_op_call_t& call, DLTensor* const* outputs,
               uint32_t) override {
    const DLTensor* x = call.inputs[0];  // any shape
    const DLTensor* out = outputs[0];    // x's shape less the reduced dims
    const std::vector<int64_t> arg = ArgMax(call, x);  // out's shape
    ForFloat(x->dtype, [&]<class T>(T) {
      const T* px = sdk::Data<const T>(x);
      T* po = sdk::Data<T>(out);
      for (size_t k = 0; k < arg.size(); ++k) po[k] = px[arg[k]];
    });
  }

  void Backward(const llmsys_op_call_t& call, const DLTensor* const*,
                const DLTensor* const* grad_outputs, uint32_t,
                DLTensor* const* grad_inputs) override {
    DLTensor* gx = grad_inputs[0];  // x's shape
    if (gx == nullptr) return;
    Zero(gx);
    const DLTensor* g = grad_outputs[0];  // out's shape
    if (g == nullptr) return;
    const DLTensor* x = Arg(call, 0, "x");             // kept for backward
    const std::vector<int64_t> arg = ArgMax(call, x);  // out's shape
    ForFloat(gx->dtype, [&]<class T>(T) {
      const T* pg = sdk::Data<const T>(g);
      T* pin = sdk::Data<T>(gx);
      for (size_t k = 0; k < arg.size(); ++k) pin[arg[k]] = pg[k];
    });
  }

 private:
  // For each output element, the index in x of the first (row-major)
  // maximal element of its group; a NaN beats every number, as in PyTorch.
  static std::vector<int64_t> ArgMax(const llmsys_op_call_t& call,
                                     const DLTensor* x) {
    const Shape xs = ShapeOf(x);
    const std::vector<bool> reduced = ReducedDims(call, xs);
    const std::vector<int64_t> index = OutIndex(xs, reduced);
    const int64_t group = GroupSize(xs, reduced);
    if (group == 0)
      ArgFail(call,
              "max over an empty reduction of " + reference::Describe("x", x));
    const int64_t num_out = Numel(xs) / group;
    std::vector<int64_t> arg(static_cast<size_t>(num_out), -1);
    ForFloat(x->dtype, [&]<class T>(T) {
      const T* px = sdk::Data<const T>(x);
      for (size_t k = 0; k < index.size(); ++k) {
        int64_t& best = arg[index[k]];
        if (best < 0) {
          best = static_cast<int64_t>(k);
          continue;
        }
        const T v = px[k], b = px[best];
        if (std::isnan(b)) continue;  // the first NaN stays
        if (std::isnan(v) || v > b) best = static_cast<int64_t>(k);
      }
    });
    return arg;
  }
};

}  // namespace

void RegisterReductions(sdk::Registry& registry) {
  registry.Add<SumLike<SumFn>>();
  registry.Add<SumLike<MeanFn>>();
  registry.Add<Max>();
}

}  // namespace llmsys::reference
