// The elementwise components of llmsys.cuda: neg, exp, log, pow, sqrt,
// tanh, sigmoid, relu, gelu; add, sub, mul, div with broadcasting; where,
// masked_fill; contiguous and concat. Kernels in cuda/elementwise.cu.
//
// Semantics, forward and backward, are the reference's
// (plugins/operators/reference/elementwise.cc and shape_ops.cc), in
// float32, float64, bfloat16 and float16 (computed in float, double for
// float64). Gradients of broadcast operands are summed back with the fixed
// order reductions of cuda/reductions.h (no atomics): results are the same
// run to run. add and sub keep no inputs for backward, so the host gives
// their backward no workspace and a sum over a broadcast operand runs in
// one pass; mul, div and where keep their inputs and split large sums over
// a workspace Infer asks for.
#include "cuda/elementwise.h"

#include <string>
#include <vector>

#include "cuda/reductions.h"
#include "plugins/cuda/common.h"

namespace llmsys::cuda {
namespace {

// ---- helpers ----

void* DataOf(const DLTensor* t) { return llmsys_tensor_data(t); }

int64_t Bytes(const DLTensor* t) {
  return llmsys_tensor_numel(t) * (t->dtype.bits / 8);
}

// Sets every element of `t` to zero on the call's stream.
void ZeroTensor(const llmsys_op_call_t& call, DLTensor* t) {
  LLMSYS_CUDA_CHECK(call, LaunchZero(DataOf(t), Bytes(t), Stream(call)));
}

void* Workspace(const llmsys_op_call_t& call) {
  return call.ctx != nullptr ? call.ctx->workspace : nullptr;
}
size_t WorkspaceBytes(const llmsys_op_call_t& call) {
  return call.ctx != nullptr ? call.ctx->workspace_bytes : 0;
}

// The plan for `g` with the workspace the call has.
ReducePlan PlanFor(const llmsys_op_call_t& call, const ReduceGeom& g, DType t) {
  return PlanReduceWithin(g, ReduceValueBytes(t, false), Workspace(call),
                          WorkspaceBytes(call));
}

// The launcher tag of a bool-like dtype MaskArg accepted.
MaskType MaskTypeOf(DLDataType t) {
  if (t.code == kDLUInt) return MaskType::kU8;
  if (t.code == kDLInt) return t.bits == 32 ? MaskType::kI32 : MaskType::kI64;
  return t.bits == 32 ? MaskType::kF32 : MaskType::kF64;
}

// ---- unary ops ----

// A unary op's launcher op and flags; the tags below add its name (kOp).
template <UnaryOp kUnaryOp, uint32_t kOpFlags = LLMSYS_OP_BACKWARD_NEEDS_INPUTS>
struct UnaryTag {
  static constexpr UnaryOp kUnary = kUnaryOp;
  static constexpr uint32_t kFlags = kOpFlags;
};
struct NegFn : UnaryTag<UnaryOp::kNeg, 0> {  // backward reads no input
  static constexpr const char* kOp = "neg";
};
struct ExpFn : UnaryTag<UnaryOp::kExp> {
  static constexpr const char* kOp = "exp";
};
struct LogFn : UnaryTag<UnaryOp::kLog> {
  static constexpr const char* kOp = "log";
};
struct PowFn : UnaryTag<UnaryOp::kPow> {
  static constexpr const char* kOp = "pow";
};
struct SqrtFn : UnaryTag<UnaryOp::kSqrt> {
  static constexpr const char* kOp = "sqrt";
};
struct TanhFn : UnaryTag<UnaryOp::kTanh> {
  static constexpr const char* kOp = "tanh";
};
struct SigmoidFn : UnaryTag<UnaryOp::kSigmoid> {
  static constexpr const char* kOp = "sigmoid";
};
struct ReluFn : UnaryTag<UnaryOp::kRelu> {
  static constexpr const char* kOp = "relu";
};
struct GeluFn : UnaryTag<UnaryOp::kGeluErf> {  // or kGeluTanh
  static constexpr const char* kOp = "gelu";
};

template <class Fn>
class Unary : public sdk::Operator {
 public:
  static constexpr bool kHasBackward = true;
  static sdk::Info Describe() {
    return {.id = std::string(Fn::kOp) + ".cuda",
            .description = std::string(Fn::kOp) +
                           " on a CUDA GPU: one pass, 16-byte loads where "
                           "aligned; float32, float64, bfloat16, float16",
            .device_type = kDLCUDA,
            .op = Fn::kOp,
            .op_flags = Fn::kFlags,
            .priority = 100};
  }
  explicit Unary(const sdk::Params&) {}

  std::vector<llmsys_tensor_spec_t> Infer(const llmsys_op_call_t& call,
                                          size_t*) override {
    const DLTensor* x = FloatArg(call, 0, "x");  // any shape
    OpOf(call);                                  // checks gelu's attribute
    return {SpecOf(call, x->dtype, ShapeOf(x))};
  }

  void Forward(const llmsys_op_call_t& call, DLTensor* const* outputs,
               uint32_t) override {
    const DLTensor* x = call.inputs[0];  // any shape
    DLTensor* out = outputs[0];          // x's shape
    LLMSYS_CUDA_CHECK(
        call,
        LaunchUnary(OpOf(call), DTypeOf(call, x->dtype), DataOf(x), DataOf(out),
                    llmsys_tensor_numel(x), Exponent(call), Stream(call)));
  }

  void Backward(const llmsys_op_call_t& call, const DLTensor* const*,
                const DLTensor* const* grad_outputs, uint32_t,
                DLTensor* const* grad_inputs) override {
    DLTensor* gx = grad_inputs[0];  // x's shape
    if (gx == nullptr) return;
    const DLTensor* g = grad_outputs[0];  // x's shape
    if (g == nullptr) return ZeroTensor(call, gx);
    const void* x = nullptr;  // neg reads no input
    if constexpr (Fn::kFlags & LLMSYS_OP_BACKWARD_NEEDS_INPUTS)
      x = DataOf(Arg(call, 0, "x"));
    LLMSYS_CUDA_CHECK(call, LaunchUnaryBackward(
                                OpOf(call), DTypeOf(call, gx->dtype), x,
                                DataOf(g), DataOf(gx), llmsys_tensor_numel(gx),
                                Exponent(call), Stream(call)));
  }

 private:
  // gelu's form from `approximate`, as the reference checks it.
  static UnaryOp OpOf(const llmsys_op_call_t& call) {
    if constexpr (Fn::kUnary != UnaryOp::kGeluErf) {
      return Fn::kUnary;
    } else {
      const std::string a = sdk::Params(&call.attrs).String("approximate");
      if (a != "none" && a != "tanh")
        ArgFail(call, "approximate must be 'none' or 'tanh', got '" + a + "'");
      return a == "tanh" ? UnaryOp::kGeluTanh : UnaryOp::kGeluErf;
    }
  }
  static double Exponent(const llmsys_op_call_t& call) {
    if constexpr (Fn::kUnary == UnaryOp::kPow)
      return sdk::Params(&call.attrs).Float("exponent");
    return 0.0;
  }
};

// ---- binary ops ----

struct AddFn {
  static constexpr const char* kOp = "add";
  static constexpr BinaryOp kBinary = BinaryOp::kAdd;
  static constexpr uint32_t kFlags = 0;  // backward needs only the shapes
};
struct SubFn {
  static constexpr const char* kOp = "sub";
  static constexpr BinaryOp kBinary = BinaryOp::kSub;
  static constexpr uint32_t kFlags = 0;
};
struct MulFn {
  static constexpr const char* kOp = "mul";
  static constexpr BinaryOp kBinary = BinaryOp::kMul;
  static constexpr uint32_t kFlags = LLMSYS_OP_BACKWARD_NEEDS_INPUTS;
};
struct DivFn {
  static constexpr const char* kOp = "div";
  static constexpr BinaryOp kBinary = BinaryOp::kDiv;
  static constexpr uint32_t kFlags = LLMSYS_OP_BACKWARD_NEEDS_INPUTS;
};

template <class Fn>
class Binary : public sdk::Operator {
 public:
  static constexpr bool kHasBackward = true;
  static constexpr bool kNeedsInputs =
      (Fn::kFlags & LLMSYS_OP_BACKWARD_NEEDS_INPUTS) != 0;
  static sdk::Info Describe() {
    return {.id = std::string(Fn::kOp) + ".cuda",
            .description =
                std::string(Fn::kOp) +
                " with broadcasting on a CUDA GPU: fast paths for equal "
                "shapes, bias rows and scalars, a strided walk for the rest; "
                "broadcast gradients summed in a fixed order (no atomics)",
            .device_type = kDLCUDA,
            .op = Fn::kOp,
            .op_flags = Fn::kFlags,
            .priority = 100};
  }
  explicit Binary(const sdk::Params&) {}

  std::vector<llmsys_tensor_spec_t> Infer(const llmsys_op_call_t& call,
                                          size_t* workspace) override {
    const DLTensor* a = FloatArg(call, 0, "a");  // any shape
    const DLTensor* b = FloatArg(call, 1, "b");  // broadcasts with a
    RequireSameDtype(call, a, "a", b, "b");
    const Shape as = ShapeOf(a), bs = ShapeOf(b);
    const Shape out = BroadcastShape(call, as, "a", bs, "b");
    // The partials of a split gradient sum, in backward (only mul and div
    // get a workspace there: add and sub keep no inputs).
    if (kNeedsInputs && sdk::WorkspaceForBackward(call)) {
      const DType t = DTypeOf(call, a->dtype);
      for (const Shape* in : {&as, &bs}) {
        const ReduceGeom g = BroadcastGradGeom(*in, out, &as, &bs);
        *workspace =
            std::max(*workspace,
                     PlanReduce(g, ReduceValueBytes(t, false), true).workspace);
      }
    }
    return {SpecOf(call, a->dtype, out)};
  }

  void Forward(const llmsys_op_call_t& call, DLTensor* const* outputs,
               uint32_t) override {
    const DLTensor* a = call.inputs[0];  // broadcasts to out
    const DLTensor* b = call.inputs[1];  // broadcasts to out
    DLTensor* out = outputs[0];          // the broadcast shape
    const BinaryPlan plan = PlanBinary(ShapeOf(a), ShapeOf(b), ShapeOf(out));
    LLMSYS_CUDA_CHECK(
        call, LaunchBinary(Fn::kBinary, DTypeOf(call, a->dtype), DataOf(a),
                           DataOf(b), DataOf(out), plan, Stream(call)));
  }

  void Backward(const llmsys_op_call_t& call, const DLTensor* const*,
                const DLTensor* const* grad_outputs, uint32_t,
                DLTensor* const* grad_inputs) override {
    const DLTensor* g = grad_outputs[0];  // the broadcast shape
    const DLTensor* a = nullptr;          // mul, div: kept for backward
    const DLTensor* b = nullptr;
    if constexpr (kNeedsInputs) {
      a = Arg(call, 0, "a");
      b = Arg(call, 1, "b");
    }
    for (int which = 0; which < 2; ++which) {
      DLTensor* gin = grad_inputs[which];  // the input's shape
      if (gin == nullptr) continue;
      if (g == nullptr) {
        ZeroTensor(call, gin);
        continue;
      }
      const DType t = DTypeOf(call, gin->dtype);
      const Shape out = ShapeOf(g);
      Shape as, bs;  // empty (unused) for add and sub
      if constexpr (kNeedsInputs) {
        as = ShapeOf(a);
        bs = ShapeOf(b);
      }
      const ReduceGeom geom =
          BroadcastGradGeom(ShapeOf(gin), out, kNeedsInputs ? &as : nullptr,
                            kNeedsInputs ? &bs : nullptr);
      const ReducePlan plan = PlanFor(call, geom, t);
      LLMSYS_CUDA_CHECK(
          call,
          LaunchBinaryBackward(
              Fn::kBinary, which, t, DataOf(g),
              a != nullptr ? DataOf(a) : nullptr,
              b != nullptr ? DataOf(b) : nullptr, DataOf(gin), geom, plan,
              plan.workspace > 0 ? Workspace(call) : nullptr, Stream(call)));
    }
  }
};

// ---- where: out = cond ? a : b, all three broadcast together ----

class Where : public sdk::Operator {
 public:
  static constexpr bool kHasBackward = true;
  static sdk::Info Describe() {
    return {.id = "where.cuda",
            .description =
                "where with broadcasting on a CUDA GPU (a strided walk); "
                "gradients summed in a fixed order (no atomics); cond "
                "uint8, int32, int64, float32 or float64",
            .device_type = kDLCUDA,
            .op = "where",
            .op_flags = LLMSYS_OP_BACKWARD_NEEDS_INPUTS,  // cond
            .priority = 100};
  }
  explicit Where(const sdk::Params&) {}

  std::vector<llmsys_tensor_spec_t> Infer(const llmsys_op_call_t& call,
                                          size_t* workspace) override {
    std::vector<llmsys_tensor_spec_t> specs = reference::WhereOutputs(call);
    const Shape cs = ShapeOf(call.inputs[0]);  // cond
    const Shape out(specs[0].shape, specs[0].shape + specs[0].ndim);
    const DType t = DTypeOf(call, specs[0].dtype);
    if (!sdk::WorkspaceForBackward(call)) return specs;  // forward: none
    for (const DLTensor* in : {call.inputs[1], call.inputs[2]}) {  // a, b
      const ReduceGeom g = BroadcastGradGeom(ShapeOf(in), out, &cs, nullptr);
      *workspace =
          std::max(*workspace,
                   PlanReduce(g, ReduceValueBytes(t, false), true).workspace);
    }
    return specs;
  }

  void Forward(const llmsys_op_call_t& call, DLTensor* const* outputs,
               uint32_t) override {
    const DLTensor* cond = call.inputs[0];  // broadcasts to out
    const DLTensor* a = call.inputs[1];     // broadcasts to out
    const DLTensor* b = call.inputs[2];     // broadcasts to out
    DLTensor* out = outputs[0];             // the broadcast shape
    const Shape os = ShapeOf(out);
    const StridedDims dims =
        MakeMapDims(os, {BroadcastStrides(ShapeOf(cond), os),
                         BroadcastStrides(ShapeOf(a), os),
                         BroadcastStrides(ShapeOf(b), os)});
    LLMSYS_CUDA_CHECK(
        call, LaunchWhere(DTypeOf(call, a->dtype), MaskTypeOf(cond->dtype),
                          DataOf(cond), DataOf(a), DataOf(b), DataOf(out), dims,
                          llmsys_tensor_numel(out), Stream(call)));
  }

  void Backward(const llmsys_op_call_t& call, const DLTensor* const*,
                const DLTensor* const* grad_outputs, uint32_t,
                DLTensor* const* grad_inputs) override {
    const DLTensor* cond = Arg(call, 0, "cond");  // kept for backward
    const DLTensor* g = grad_outputs[0];          // the broadcast shape
    // cond is piecewise constant: a float cond asked for a gradient gets 0.
    if (grad_inputs[0] != nullptr) ZeroTensor(call, grad_inputs[0]);
    const Shape cs = ShapeOf(cond);
    for (int which = 1; which <= 2; ++which) {  // a, then b
      DLTensor* gin = grad_inputs[which];       // the input's shape
      if (gin == nullptr) continue;
      if (g == nullptr) {
        ZeroTensor(call, gin);
        continue;
      }
      const DType t = DTypeOf(call, gin->dtype);
      const ReduceGeom geom =
          BroadcastGradGeom(ShapeOf(gin), ShapeOf(g), &cs, nullptr);
      const ReducePlan plan = PlanFor(call, geom, t);
      LLMSYS_CUDA_CHECK(
          call,
          LaunchWhereBackward(t, MaskTypeOf(cond->dtype), which == 1,
                              DataOf(cond), DataOf(g), DataOf(gin), geom, plan,
                              plan.workspace > 0 ? Workspace(call) : nullptr,
                              Stream(call)));
    }
  }
};

// ---- masked_fill: x with value where mask (broadcast to x) is true ----

class MaskedFill : public sdk::Operator {
 public:
  static constexpr bool kHasBackward = true;
  static sdk::Info Describe() {
    return {.id = "masked_fill.cuda",
            .description =
                "masked_fill on a CUDA GPU (a strided walk over the mask); "
                "mask uint8, int32, int64, float32 or float64",
            .device_type = kDLCUDA,
            .op = "masked_fill",
            .op_flags = LLMSYS_OP_BACKWARD_NEEDS_INPUTS,  // mask
            .priority = 100};
  }
  explicit MaskedFill(const sdk::Params&) {}

  std::vector<llmsys_tensor_spec_t> Infer(const llmsys_op_call_t& call,
                                          size_t*) override {
    return reference::MaskedFillOutputs(call);
  }

  void Forward(const llmsys_op_call_t& call, DLTensor* const* outputs,
               uint32_t) override {
    const DLTensor* x = call.inputs[0];     // any shape
    const DLTensor* mask = call.inputs[1];  // broadcasts to x
    DLTensor* out = outputs[0];             // x's shape
    const Shape xs = ShapeOf(x);
    const StridedDims dims = MakeMapDims(
        xs, {CompactStrides(xs), BroadcastStrides(ShapeOf(mask), xs)});
    LLMSYS_CUDA_CHECK(
        call, LaunchMaskedFill(
                  DTypeOf(call, x->dtype), MaskTypeOf(mask->dtype), DataOf(x),
                  DataOf(mask), DataOf(out), dims, llmsys_tensor_numel(x),
                  sdk::Params(&call.attrs).Float("value"), Stream(call)));
  }

  void Backward(const llmsys_op_call_t& call, const DLTensor* const*,
                const DLTensor* const* grad_outputs, uint32_t,
                DLTensor* const* grad_inputs) override {
    // mask is piecewise constant: a float mask asked for a gradient gets 0.
    if (grad_inputs[1] != nullptr) ZeroTensor(call, grad_inputs[1]);
    DLTensor* gx = grad_inputs[0];  // x's shape
    if (gx == nullptr) return;
    const DLTensor* g = grad_outputs[0];  // x's shape
    if (g == nullptr) return ZeroTensor(call, gx);
    const DLTensor* mask = Arg(call, 1, "mask");  // kept for backward
    const Shape xs = ShapeOf(gx);
    const StridedDims dims = MakeMapDims(
        xs, {CompactStrides(xs), BroadcastStrides(ShapeOf(mask), xs)});
    LLMSYS_CUDA_CHECK(
        call, LaunchMaskedFillBackward(DTypeOf(call, gx->dtype),
                                       MaskTypeOf(mask->dtype), DataOf(mask),
                                       DataOf(g), DataOf(gx), dims,
                                       llmsys_tensor_numel(gx), Stream(call)));
  }
};

// ---- contiguous and concat: byte copies, any 1/2/4/8-byte dtype ----

// Inputs arrive compact (the host copies strided views first), so
// contiguous is one copy.
class Contiguous : public sdk::Operator {
 public:
  static constexpr bool kHasBackward = true;
  static sdk::Info Describe() {
    return {.id = "contiguous.cuda",
            .description =
                "contiguous on a CUDA GPU: inputs arrive compact, so one "
                "copy; any 1, 2, 4 or 8-byte dtype",
            .device_type = kDLCUDA,
            .op = "contiguous",
            .op_flags = 0,
            .priority = 100};
  }
  explicit Contiguous(const sdk::Params&) {}

  std::vector<llmsys_tensor_spec_t> Infer(const llmsys_op_call_t& call,
                                          size_t*) override {
    const DLTensor* x = Arg(call, 0, "x");  // any shape and dtype
    reference::ElementBytes(call, "x", x);
    return {SpecOf(call, x->dtype, ShapeOf(x))};
  }

  void Forward(const llmsys_op_call_t& call, DLTensor* const* outputs,
               uint32_t) override {
    const DLTensor* x = call.inputs[0];  // compact
    const int64_t bytes = Bytes(x);
    LLMSYS_CUDA_CHECK(call, LaunchCopy2D(DataOf(x), bytes, DataOf(outputs[0]),
                                         bytes, 1, bytes, Stream(call)));
  }

  void Backward(const llmsys_op_call_t& call, const DLTensor* const*,
                const DLTensor* const* grad_outputs, uint32_t,
                DLTensor* const* grad_inputs) override {
    DLTensor* gx = grad_inputs[0];  // x's shape
    if (gx == nullptr) return;
    const DLTensor* g = grad_outputs[0];  // x's shape
    if (g == nullptr) return ZeroTensor(call, gx);
    const int64_t bytes = Bytes(gx);
    LLMSYS_CUDA_CHECK(call, LaunchCopy2D(DataOf(g), bytes, DataOf(gx), bytes, 1,
                                         bytes, Stream(call)));
  }
};

// xs[0], xs[1], ... joined along dim: the variadic input arrives expanded,
// xs[i] = call.inputs[i] for i < num_inputs. Each item is one strided copy
// of `outer` rows into its column range of the output.
class Concat : public sdk::Operator {
 public:
  static constexpr bool kHasBackward = true;
  static sdk::Info Describe() {
    return {.id = "concat.cuda",
            .description =
                "concat along dim on a CUDA GPU: one 2-D copy per input; "
                "any 1, 2, 4 or 8-byte dtype",
            .device_type = kDLCUDA,
            .op = "concat",
            // Backward needs every item's size along dim, also of items
            // that get no gradient.
            .op_flags = LLMSYS_OP_BACKWARD_NEEDS_INPUTS,
            .priority = 100};
  }
  explicit Concat(const sdk::Params&) {}

  std::vector<llmsys_tensor_spec_t> Infer(const llmsys_op_call_t& call,
                                          size_t*) override {
    return reference::ConcatOutputs(call);
  }

  void Forward(const llmsys_op_call_t& call, DLTensor* const* outputs,
               uint32_t) override {
    const DLTensor* out = outputs[0];  // (..., n0 + n1 + ..., ...)
    const int64_t dim = reference::ConcatDim(call, out->ndim);
    const int64_t bytes = out->dtype.bits / 8;
    const int64_t outer = reference::SizeBefore(out, dim),
                  inner = reference::SizeAfter(out, dim);
    const int64_t out_row = out->shape[dim] * inner * bytes;  // per outer
    char* po = static_cast<char*>(DataOf(out));
    int64_t start = 0;  // where xs[i] begins along dim
    for (uint32_t i = 0; i < call.num_inputs; ++i) {
      const DLTensor* xi = call.inputs[i];                 // (..., ni, ...)
      const int64_t row = xi->shape[dim] * inner * bytes;  // per outer
      LLMSYS_CUDA_CHECK(
          call, LaunchCopy2D(DataOf(xi), row, po + start * inner * bytes,
                             out_row, outer, row, Stream(call)));
      start += xi->shape[dim];
    }
  }

  void Backward(const llmsys_op_call_t& call, const DLTensor* const*,
                const DLTensor* const* grad_outputs, uint32_t,
                DLTensor* const* grad_inputs) override {
    const DLTensor* g = grad_outputs[0];  // (..., n0 + n1 + ..., ...)
    int64_t start = 0;                    // where xs[i] begins along dim
    for (uint32_t i = 0; i < call.num_inputs; ++i) {
      DLTensor* gi = grad_inputs[i];  // xs[i]'s shape, or NULL
      const DLTensor* xi = call.inputs[i] != nullptr ? call.inputs[i] : gi;
      if (xi == nullptr)
        Fail(LLMSYS_STATUS_FAILED_PRECONDITION,
             "concat: backward needs the inputs (BACKWARD_NEEDS_INPUTS)");
      const int64_t dim = reference::ConcatDim(call, xi->ndim);
      const int64_t ni = xi->shape[dim];
      if (gi != nullptr && g == nullptr) {
        ZeroTensor(call, gi);
      } else if (gi != nullptr) {
        const int64_t bytes = gi->dtype.bits / 8;
        const int64_t outer = reference::SizeBefore(g, dim),
                      inner = reference::SizeAfter(g, dim);
        const int64_t row = ni * inner * bytes;               // per outer
        const int64_t g_row = g->shape[dim] * inner * bytes;  // per outer
        const char* pg = static_cast<const char*>(DataOf(g));
        LLMSYS_CUDA_CHECK(
            call, LaunchCopy2D(pg + start * inner * bytes, g_row, DataOf(gi),
                               row, outer, row, Stream(call)));
      }
      start += ni;
    }
  }
};

}  // namespace

void RegisterElementwise(sdk::Registry& registry) {
  registry.Add<Unary<NegFn>>();
  registry.Add<Unary<ExpFn>>();
  registry.Add<Unary<LogFn>>();
  registry.Add<Unary<PowFn>>();
  registry.Add<Unary<SqrtFn>>();
  registry.Add<Unary<TanhFn>>();
  registry.Add<Unary<SigmoidFn>>();
  registry.Add<Unary<ReluFn>>();
  registry.Add<Unary<GeluFn>>();
  registry.Add<Binary<AddFn>>();
  registry.Add<Binary<SubFn>>();
  registry.Add<Binary<MulFn>>();
  registry.Add<Binary<DivFn>>();
  registry.Add<Where>();
  registry.Add<MaskedFill>();
  registry.Add<Contiguous>();
  registry.Add<Concat>();
}

}  // namespace llmsys::cuda
