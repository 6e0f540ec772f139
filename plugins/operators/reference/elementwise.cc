// Elementwise ops: add, sub, mul, div (broadcasting) and the unary ops
// neg, exp, log, pow, sqrt, tanh, sigmoid, relu, gelu.
#include <cmath>
#include <string>

#include "plugins/operators/reference/common.h"

namespace llmsys::reference {
namespace {

// ---- binary ops: out = f(a, b), a and b broadcast to out ----

struct AddFn {
  static constexpr const char* kOp = "add";
  static constexpr uint32_t kFlags = 0;  // backward needs only the shapes
  template <class T>
  static T F(T a, T b) {
    return a + b;
  }
  template <class T>
  static T DA(T, T) {
    return T(1);
  }
  template <class T>
  static T DB(T, T) {
    return T(1);
  }
};
struct SubFn {
  static constexpr const char* kOp = "sub";
  static constexpr uint32_t kFlags = 0;
  template <class T>
  static T F(T a, T b) {
    return a - b;
  }
  template <class T>
  static T DA(T, T) {
    return T(1);
  }
  template <class T>
  static T DB(T, T) {
    return T(-1);
  }
};
struct MulFn {
  static constexpr const char* kOp = "mul";
  static constexpr uint32_t kFlags = LLMSYS_OP_BACKWARD_NEEDS_INPUTS;
  template <class T>
  static T F(T a, T b) {
    return a * b;
  }
  template <class T>
  static T DA(T, T b) {
    return b;
  }
  template <class T>
  static T DB(T a, T) {
    return a;
  }
};
struct DivFn {
  static constexpr const char* kOp = "div";
  static constexpr uint32_t kFlags = LLMSYS_OP_BACKWARD_NEEDS_INPUTS;
  template <class T>
  static T F(T a, T b) {
    return a / b;
  }
  template <class T>
  static T DA(T, T b) {
    return T(1) / b;
  }
  template <class T>
  static T DB(T a, T b) {
    return -a / (b * b);
  }
};

template <class Fn>
class Binary : public sdk::Operator {
 public:
  static constexpr bool kHasBackward = true;
  static sdk::Info Describe() {
    return {.id = std::string(Fn::kOp) + ".reference",
            .description = std::string("reference ") + Fn::kOp +
                           " with broadcasting (plain loops)",
            .op = Fn::kOp,
            .op_flags = Fn::kFlags};
  }
  explicit Binary(const sdk::Params&) {}

  std::vector<llmsys_tensor_spec_t> Infer(const llmsys_op_call_t& call,
                                          size_t*) override {
    const DLTensor* a = FloatArg(call, 0, "a");  // any shape
    const DLTensor* b = FloatArg(call, 1, "b");  // broadcasts with a
    RequireSameDtype(call, a, "a", b, "b");
    return {SpecOf(call, a->dtype,
                   BroadcastShape(call, ShapeOf(a), "a", ShapeOf(b), "b"))};
  }

  void Forward(const llmsys_op_call_t& call, DLTensor* const* outputs,
               uint32_t) override {
    const DLTensor* a = call.inputs[0];
    const DLTensor* b = call.inputs[1];
    const DLTensor* out = outputs[0];  // broadcast shape
    const std::vector<int64_t> ia = BroadcastIndex(ShapeOf(a), ShapeOf(out));
    const std::vector<int64_t> ib = BroadcastIndex(ShapeOf(b), ShapeOf(out));
    ForFloat(a->dtype, [&]<class T>(T) {
      const T* pa = sdk::Data<const T>(a);
      const T* pb = sdk::Data<const T>(b);
      T* po = sdk::Data<T>(out);
      for (size_t k = 0; k < ia.size(); ++k)
        po[k] = Fn::F(pa[ia[k]], pb[ib[k]]);
    });
  }

  void Backward(const llmsys_op_call_t& call, const DLTensor* const*,
                const DLTensor* const* grad_outputs, uint32_t,
                DLTensor* const* grad_inputs) override {
    const DLTensor* g = grad_outputs[0];  // broadcast shape
    for (int which = 0; which < 2; ++which) {
      DLTensor* gin = grad_inputs[which];  // the input's shape
      if (gin == nullptr) continue;
      const std::vector<int64_t> index =
          BroadcastIndex(ShapeOf(gin), ShapeOf(g));
      // Only mul and div read the inputs; add and sub need the shapes.
      const Shape out_shape = ShapeOf(g);
      std::vector<int64_t> ia, ib;
      if (Fn::kFlags & LLMSYS_OP_BACKWARD_NEEDS_INPUTS) {
        ia = BroadcastIndex(ShapeOf(call.inputs[0]), out_shape);
        ib = BroadcastIndex(ShapeOf(call.inputs[1]), out_shape);
      }
      ForFloat(g->dtype, [&]<class T>(T) {
        const T* pg = sdk::Data<const T>(g);
        T* pin = sdk::Data<T>(gin);
        for (int64_t k = 0; k < Numel(ShapeOf(gin)); ++k) pin[k] = T(0);
        for (size_t k = 0; k < index.size(); ++k) {
          T av = T(0), bv = T(0);
          if (!ia.empty()) {
            av = sdk::Data<const T>(call.inputs[0])[ia[k]];
            bv = sdk::Data<const T>(call.inputs[1])[ib[k]];
          }
          const T d = which == 0 ? Fn::DA(av, bv) : Fn::DB(av, bv);
          pin[index[k]] += pg[k] * d;  // sums over broadcast dims
        }
      });
    }
  }
};

// ---- unary ops: out = f(x), same shape ----

struct NegFn {
  static constexpr const char* kOp = "neg";
  static constexpr uint32_t kFlags = 0;
  template <class T>
  static T F(T x, const sdk::Params&) {
    return -x;
  }
  template <class T>
  static T D(T, const sdk::Params&) {
    return T(-1);
  }
};
struct ExpFn {
  static constexpr const char* kOp = "exp";
  static constexpr uint32_t kFlags = LLMSYS_OP_BACKWARD_NEEDS_INPUTS;
  template <class T>
  static T F(T x, const sdk::Params&) {
    return std::exp(x);
  }
  template <class T>
  static T D(T x, const sdk::Params&) {
    return std::exp(x);
  }
};
struct LogFn {
  static constexpr const char* kOp = "log";
  static constexpr uint32_t kFlags = LLMSYS_OP_BACKWARD_NEEDS_INPUTS;
  template <class T>
  static T F(T x, const sdk::Params&) {
    return std::log(x);
  }
  template <class T>
  static T D(T x, const sdk::Params&) {
    return T(1) / x;
  }
};
struct PowFn {
  static constexpr const char* kOp = "pow";
  static constexpr uint32_t kFlags = LLMSYS_OP_BACKWARD_NEEDS_INPUTS;
  template <class T>
  static T F(T x, const sdk::Params& p) {
    return std::pow(x, static_cast<T>(p.Float("exponent")));
  }
  template <class T>
  static T D(T x, const sdk::Params& p) {
    const T e = static_cast<T>(p.Float("exponent"));
    if (e == T(0)) return T(0);
    return e * std::pow(x, e - T(1));
  }
};
struct SqrtFn {
  static constexpr const char* kOp = "sqrt";
  static constexpr uint32_t kFlags = LLMSYS_OP_BACKWARD_NEEDS_INPUTS;
  template <class T>
  static T F(T x, const sdk::Params&) {
    return std::sqrt(x);
  }
  template <class T>
  static T D(T x, const sdk::Params&) {
    return T(0.5) / std::sqrt(x);
  }
};
struct TanhFn {
  static constexpr const char* kOp = "tanh";
  static constexpr uint32_t kFlags = LLMSYS_OP_BACKWARD_NEEDS_INPUTS;
  template <class T>
  static T F(T x, const sdk::Params&) {
    return std::tanh(x);
  }
  template <class T>
  static T D(T x, const sdk::Params&) {
    const T t = std::tanh(x);
    return T(1) - t * t;
  }
};
struct SigmoidFn {
  static constexpr const char* kOp = "sigmoid";
  static constexpr uint32_t kFlags = LLMSYS_OP_BACKWARD_NEEDS_INPUTS;
  template <class T>
  static T F(T x, const sdk::Params&) {
    return T(1) / (T(1) + std::exp(-x));
  }
  template <class T>
  static T D(T x, const sdk::Params& p) {
    const T s = F(x, p);
    return s * (T(1) - s);
  }
};
struct ReluFn {
  static constexpr const char* kOp = "relu";
  static constexpr uint32_t kFlags = LLMSYS_OP_BACKWARD_NEEDS_INPUTS;
  template <class T>
  static T F(T x, const sdk::Params&) {
    return x > T(0) ? x : T(0);
  }
  template <class T>
  static T D(T x, const sdk::Params&) {
    return x > T(0) ? T(1) : T(0);
  }
};
// GELU. approximate 'none': x * Phi(x) = 0.5 x (1 + erf(x / sqrt 2)).
// approximate 'tanh': 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).
struct GeluFn {
  static constexpr const char* kOp = "gelu";
  static constexpr uint32_t kFlags = LLMSYS_OP_BACKWARD_NEEDS_INPUTS;
  static bool Tanh(const sdk::Params& p) {
    const std::string a = p.String("approximate");
    Require(a == "none" || a == "tanh",
            "gelu: approximate must be 'none' or 'tanh', got '" + a + "'");
    return a == "tanh";
  }
  template <class T>
  static T F(T x, const sdk::Params& p) {
    if (Tanh(p)) {
      const T k = std::sqrt(T(2) / T(M_PI));
      return T(0.5) * x * (T(1) + std::tanh(k * (x + T(0.044715) * x * x * x)));
    }
    return T(0.5) * x * (T(1) + std::erf(x / std::sqrt(T(2))));
  }
  template <class T>
  static T D(T x, const sdk::Params& p) {
    if (Tanh(p)) {
      const T k = std::sqrt(T(2) / T(M_PI));
      const T t = std::tanh(k * (x + T(0.044715) * x * x * x));
      return T(0.5) * (T(1) + t) + T(0.5) * x * (T(1) - t * t) * k *
                                       (T(1) + T(3) * T(0.044715) * x * x);
    }
    const T cdf = T(0.5) * (T(1) + std::erf(x / std::sqrt(T(2))));
    const T pdf = std::exp(T(-0.5) * x * x) / std::sqrt(T(2) * T(M_PI));
    return cdf + x * pdf;
  }
};

template <class Fn>
class Unary : public sdk::Operator {
 public:
  static constexpr bool kHasBackward = true;
  static sdk::Info Describe() {
    return {
        .id = std::string(Fn::kOp) + ".reference",
        .description = std::string("reference ") + Fn::kOp + " (plain loop)",
        .op = Fn::kOp,
        .op_flags = Fn::kFlags};
  }
  explicit Unary(const sdk::Params&) {}

  std::vector<llmsys_tensor_spec_t> Infer(const llmsys_op_call_t& call,
                                          size_t*) override {
    const DLTensor* x = FloatArg(call, 0, "x");  // any shape
    if constexpr (std::is_same_v<Fn, GeluFn>) GeluFn::Tanh(Attrs(call));
    return {SpecOf(call, x->dtype, ShapeOf(x))};
  }

  void Forward(const llmsys_op_call_t& call, DLTensor* const* outputs,
               uint32_t) override {
    const DLTensor* x = call.inputs[0];
    const sdk::Params p = Attrs(call);
    ForFloat(x->dtype, [&]<class T>(T) {
      const T* px = sdk::Data<const T>(x);
      T* po = sdk::Data<T>(outputs[0]);
      for (int64_t k = 0; k < llmsys_tensor_numel(x); ++k)
        po[k] = Fn::F(px[k], p);
    });
  }

  void Backward(const llmsys_op_call_t& call, const DLTensor* const*,
                const DLTensor* const* grad_outputs, uint32_t,
                DLTensor* const* grad_inputs) override {
    DLTensor* gx = grad_inputs[0];
    if (gx == nullptr) return;
    const DLTensor* g = grad_outputs[0];
    const sdk::Params p = Attrs(call);
    ForFloat(g->dtype, [&]<class T>(T) {
      const T* pg = sdk::Data<const T>(g);
      const T* px = call.inputs[0] != nullptr
                        ? sdk::Data<const T>(call.inputs[0])
                        : nullptr;  // neg needs no input
      T* pin = sdk::Data<T>(gx);
      for (int64_t k = 0; k < llmsys_tensor_numel(g); ++k)
        pin[k] = pg[k] * Fn::D(px != nullptr ? px[k] : T(0), p);
    });
  }

 private:
  static sdk::Params Attrs(const llmsys_op_call_t& call) {
    return sdk::Params(&call.attrs);
  }
};

}  // namespace

void RegisterElementwise(sdk::Registry& registry) {
  registry.Add<Binary<AddFn>>();
  registry.Add<Binary<SubFn>>();
  registry.Add<Binary<MulFn>>();
  registry.Add<Binary<DivFn>>();
  registry.Add<Unary<NegFn>>();
  registry.Add<Unary<ExpFn>>();
  registry.Add<Unary<LogFn>>();
  registry.Add<Unary<PowFn>>();
  registry.Add<Unary<SqrtFn>>();
  registry.Add<Unary<TanhFn>>();
  registry.Add<Unary<SigmoidFn>>();
  registry.Add<Unary<ReluFn>>();
  registry.Add<Unary<GeluFn>>();
}

}  // namespace llmsys::reference
