// add, sub, mul, div with broadcasting, gelu (gelu.fused) and relu. The binary
// ops have fast paths for the shapes a model makes: both the same shape,
// one of them a row broadcast along the leading dims (a bias, a position
// embedding), or a scalar; anything else takes the general broadcast loop.
#include <algorithm>
#include <cmath>
#include <string>
#include <type_traits>
#include <vector>

#include "plugins/operators/cpu/common.h"

namespace llmsys::cpu {
namespace {

// ---- binary ops ----

struct AddFn {
  static constexpr const char* kOp = "add";
  static constexpr uint32_t kFlags = 0;
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

// How an input of shape `in` sits in the output `out`: the whole of it, a
// row of length `len` repeated along the leading dims (its shape, leading 1s
// dropped, is a suffix of out's), or something else.
enum class Layout { kFull, kRow, kGeneral };

Layout LayoutOf(const Shape& in, const Shape& out, int64_t* len) {
  *len = Numel(in);
  if (Numel(in) == Numel(out) && in.size() <= out.size()) {
    // Same element count with broadcast-compatible shapes: the same data.
    return Layout::kFull;
  }
  size_t first = 0;  // drop leading 1s
  while (first < in.size() && in[first] == 1) ++first;
  const size_t rest = in.size() - first;
  if (rest > out.size()) return Layout::kGeneral;
  for (size_t i = 0; i < rest; ++i)
    if (in[first + i] != out[out.size() - rest + i]) return Layout::kGeneral;
  return Layout::kRow;
}

template <class Fn, class T>
LLMSYS_CPU_KERNEL void FullFull(const T* a, const T* b, T* o, int64_t n) {
  for (int64_t i = 0; i < n; ++i) o[i] = Fn::F(a[i], b[i]);
}

// `full` is the whole output's shape, `row` a row of `len` repeated along
// the leading dims (kARow: the row is the op's first operand).
template <class Fn, class T, bool kARow>
LLMSYS_CPU_KERNEL void FullRow(const T* full, const T* row, T* o, int64_t rows,
                               int64_t len) {
  if (len == 1) {
    const T s = row[0];
    for (int64_t r = 0; r < rows; ++r)
      o[r] = kARow ? Fn::F(s, full[r]) : Fn::F(full[r], s);
    return;
  }
  for (int64_t r = 0; r < rows; ++r) {
    const T* x = full + r * len;
    T* y = o + r * len;
    for (int64_t j = 0; j < len; ++j)
      y[j] = kARow ? Fn::F(row[j], x[j]) : Fn::F(x[j], row[j]);
  }
}

template <class Fn>
class Binary : public sdk::Operator {
 public:
  static constexpr bool kHasBackward = true;
  static sdk::Info Describe() {
    return {.id = std::string(Fn::kOp) + ".cpu",
            .description = std::string(Fn::kOp) +
                           " with broadcasting; vectorized fast paths for "
                           "same shapes, bias rows and scalars",
            .op = Fn::kOp,
            .op_flags = Fn::kFlags,
            .priority = 100};
  }
  explicit Binary(const sdk::Params&) {}

  std::vector<llmsys_tensor_spec_t> Infer(const llmsys_op_call_t& call,
                                          size_t*) override {
    const DLTensor* a = FloatArg(call, 0, "a");
    const DLTensor* b = FloatArg(call, 1, "b");
    RequireSameDtype(call, a, "a", b, "b");
    return {SpecOf(call, a->dtype,
                   BroadcastShape(call, ShapeOf(a), "a", ShapeOf(b), "b"))};
  }

  void Forward(const llmsys_op_call_t& call, DLTensor* const* outputs,
               uint32_t) override {
    const DLTensor* a = call.inputs[0];
    const DLTensor* b = call.inputs[1];
    const DLTensor* out = outputs[0];
    const Shape os = ShapeOf(out);
    const int64_t n = Numel(os);
    int64_t la = 0, lb = 0;
    const Layout ka = LayoutOf(ShapeOf(a), os, &la);
    const Layout kb = LayoutOf(ShapeOf(b), os, &lb);
    ForFloat(a->dtype, [&]<class T>(T) {
      const T* pa = sdk::Data<const T>(a);
      const T* pb = sdk::Data<const T>(b);
      T* po = sdk::Data<T>(out);
      if (ka == Layout::kFull && kb == Layout::kFull)
        return ForRanges(call, n, kGrain, [&](int64_t i0, int64_t i1) {
          FullFull<Fn, T>(pa + i0, pb + i0, po + i0, i1 - i0);
        });
      // A row operand: ranges of whole rows.
      auto rows = [&](const T* full, const T* row, int64_t len, auto a_row) {
        ForRanges(call, n / len, std::max<int64_t>(1, kGrain / len),
                  [&](int64_t r0, int64_t r1) {
                    FullRow<Fn, T, decltype(a_row)::value>(
                        full + r0 * len, row, po + r0 * len, r1 - r0, len);
                  });
      };
      if (ka == Layout::kFull && kb == Layout::kRow && lb > 0)
        return rows(pa, pb, lb, std::false_type{});
      if (kb == Layout::kFull && ka == Layout::kRow && la > 0)
        return rows(pb, pa, la, std::true_type{});
      const std::vector<int64_t> ia = BroadcastIndex(ShapeOf(a), os);
      const std::vector<int64_t> ib = BroadcastIndex(ShapeOf(b), os);
      for (size_t k = 0; k < ia.size(); ++k)
        po[k] = Fn::F(pa[ia[k]], pb[ib[k]]);
    });
  }

  void Backward(const llmsys_op_call_t& call, const DLTensor* const*,
                const DLTensor* const* grad_outputs, uint32_t,
                DLTensor* const* grad_inputs) override {
    const DLTensor* g = grad_outputs[0];  // the output's shape
    constexpr bool kNeedsInputs = Fn::kFlags & LLMSYS_OP_BACKWARD_NEEDS_INPUTS;
    for (int which = 0; which < 2; ++which) {
      DLTensor* gin = grad_inputs[which];  // the input's shape
      if (gin == nullptr) continue;
      if (g == nullptr) {
        Zero(gin);
        continue;
      }
      const Shape os = ShapeOf(g);
      const int64_t n = Numel(os);
      int64_t len = 0;
      const Layout layout = LayoutOf(ShapeOf(gin), os, &len);
      ForFloat(g->dtype, [&]<class T>(T) {
        const T* pg = sdk::Data<const T>(g);
        T* pin = sdk::Data<T>(gin);
        const T* pa = nullptr;
        const T* pb = nullptr;
        Layout la = Layout::kFull, lb = Layout::kFull;
        int64_t lena = 0, lenb = 0;
        if constexpr (kNeedsInputs) {
          pa = sdk::Data<const T>(call.inputs[0]);
          pb = sdk::Data<const T>(call.inputs[1]);
          la = LayoutOf(ShapeOf(call.inputs[0]), os, &lena);
          lb = LayoutOf(ShapeOf(call.inputs[1]), os, &lenb);
        }
        const bool simple =
            !kNeedsInputs || ((la == Layout::kFull || la == Layout::kRow) &&
                              (lb == Layout::kFull || lb == Layout::kRow) &&
                              lena > 0 && lenb > 0);
        // The values of a and b at output element k on the fast paths.
        auto av = [&](int64_t k) {
          if constexpr (kNeedsInputs)
            return la == Layout::kFull ? pa[k] : pa[k % lena];
          (void)k;
          return T(0);
        };
        auto bv = [&](int64_t k) {
          if constexpr (kNeedsInputs)
            return lb == Layout::kFull ? pb[k] : pb[k % lenb];
          (void)k;
          return T(0);
        };
        if (simple && layout == Layout::kFull) {
          ForRanges(call, n, kGrain, [&](int64_t k0, int64_t k1) {
            if (!kNeedsInputs) {
              const T d = which == 0 ? Fn::DA(T(0), T(0)) : Fn::DB(T(0), T(0));
              if (d == T(1)) {
                std::memcpy(pin + k0, pg + k0,
                            static_cast<size_t>(k1 - k0) * sizeof(T));
              } else {
                for (int64_t k = k0; k < k1; ++k) pin[k] = pg[k] * d;
              }
            } else if (la == Layout::kFull && lb == Layout::kFull) {
              for (int64_t k = k0; k < k1; ++k)
                pin[k] = pg[k] * (which == 0 ? Fn::DA(pa[k], pb[k])
                                             : Fn::DB(pa[k], pb[k]));
            } else {
              for (int64_t k = k0; k < k1; ++k)
                pin[k] = pg[k] * (which == 0 ? Fn::DA(av(k), bv(k))
                                             : Fn::DB(av(k), bv(k)));
            }
          });
          return;
        }
        if (simple && layout == Layout::kRow && len > 0) {
          // Sum over the leading (broadcast) rows; each thread owns a range
          // of columns and adds the rows in order, so the result does not
          // depend on the thread count.
          const int64_t rows = n / len;
          if constexpr (!kNeedsInputs) {
            SumRows(call, pg, rows, len, pin);
            const T d = which == 0 ? Fn::DA(T(0), T(0)) : Fn::DB(T(0), T(0));
            if (d != T(1))
              for (int64_t j = 0; j < len; ++j) pin[j] *= d;
            return;
          }
          ForRanges(call, len, std::max<int64_t>(16, kGrain / rows),
                    [&](int64_t j0, int64_t j1) {
                      for (int64_t j = j0; j < j1; ++j) pin[j] = T(0);
                      for (int64_t r = 0; r < rows; ++r) {
                        const T* gr = pg + r * len;
                        for (int64_t j = j0; j < j1; ++j) {
                          const int64_t k = r * len + j;
                          pin[j] += gr[j] * (which == 0 ? Fn::DA(av(k), bv(k))
                                                        : Fn::DB(av(k), bv(k)));
                        }
                      }
                    });
          return;
        }
        // General: as the reference.
        const std::vector<int64_t> index = BroadcastIndex(ShapeOf(gin), os);
        std::vector<int64_t> ia, ib;
        if (kNeedsInputs) {
          ia = BroadcastIndex(ShapeOf(call.inputs[0]), os);
          ib = BroadcastIndex(ShapeOf(call.inputs[1]), os);
        }
        for (int64_t k = 0; k < Numel(ShapeOf(gin)); ++k) pin[k] = T(0);
        for (size_t k = 0; k < index.size(); ++k) {
          T x = T(0), y = T(0);
          if (!ia.empty()) x = pa[ia[k]], y = pb[ib[k]];
          pin[index[k]] += pg[k] * (which == 0 ? Fn::DA(x, y) : Fn::DB(x, y));
        }
      });
    }
  }
};

// ---- gelu ----

// approximate 'none': 0.5 x (1 + erf(x / sqrt 2)); 'tanh':
// 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).
bool TanhForm(const llmsys_op_call_t& call) {
  const std::string a = sdk::Params(&call.attrs).String("approximate");
  if (a != "none" && a != "tanh")
    ArgFail(call, "approximate must be 'none' or 'tanh', got '" + a + "'");
  return a == "tanh";
}

template <class T>
LLMSYS_CPU_KERNEL void GeluTanhForward(const T* x, T* y, int64_t n) {
  const T k = T(0.7978845608028654);  // sqrt(2 / pi)
  for (int64_t i = 0; i < n; ++i) {
    const T v = x[i];
    const T t = Tanh(k * (v + T(0.044715) * v * v * v));
    y[i] = T(0.5) * v * (T(1) + t);
  }
}

template <class T>
LLMSYS_CPU_KERNEL void GeluTanhBackward(const T* x, const T* g, T* gx,
                                        int64_t n) {
  const T k = T(0.7978845608028654);
  for (int64_t i = 0; i < n; ++i) {
    const T v = x[i];
    const T t = Tanh(k * (v + T(0.044715) * v * v * v));
    const T d = T(0.5) * (T(1) + t) + T(0.5) * v * (T(1) - t * t) * k *
                                          (T(1) + T(3) * T(0.044715) * v * v);
    gx[i] = g[i] * d;
  }
}

template <class T>
void GeluErfForward(const T* x, T* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i)
    y[i] = T(0.5) * x[i] * (T(1) + std::erf(x[i] * T(0.7071067811865476)));
}

template <class T>
void GeluErfBackward(const T* x, const T* g, T* gx, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const T v = x[i];
    const T cdf = T(0.5) * (T(1) + std::erf(v * T(0.7071067811865476)));
    const T pdf = Exp(T(-0.5) * v * v) * T(0.3989422804014327);
    gx[i] = g[i] * (cdf + v * pdf);
  }
}

class Gelu : public sdk::Operator {
 public:
  static constexpr bool kHasBackward = true;
  static sdk::Info Describe() {
    return {.id = "gelu.fused",
            .description =
                "GELU, erf or tanh form, one vectorized pass forward "
                "and backward",
            .op = "gelu",
            .op_flags = LLMSYS_OP_BACKWARD_NEEDS_INPUTS,
            .priority = 100};
  }
  explicit Gelu(const sdk::Params&) {}

  std::vector<llmsys_tensor_spec_t> Infer(const llmsys_op_call_t& call,
                                          size_t*) override {
    const DLTensor* x = FloatArg(call, 0, "x");
    TanhForm(call);
    return {SpecOf(call, x->dtype, ShapeOf(x))};
  }

  void Forward(const llmsys_op_call_t& call, DLTensor* const* outputs,
               uint32_t) override {
    const DLTensor* x = call.inputs[0];
    const bool tanh_form = TanhForm(call);
    const int64_t n = llmsys_tensor_numel(x);
    ForFloat(x->dtype, [&]<class T>(T) {
      const T* px = sdk::Data<const T>(x);
      T* py = sdk::Data<T>(outputs[0]);
      ForRanges(call, n, kGrain / 8, [&](int64_t i0, int64_t i1) {
        if (tanh_form)
          GeluTanhForward<T>(px + i0, py + i0, i1 - i0);
        else
          GeluErfForward<T>(px + i0, py + i0, i1 - i0);
      });
    });
  }

  void Backward(const llmsys_op_call_t& call, const DLTensor* const*,
                const DLTensor* const* grad_outputs, uint32_t,
                DLTensor* const* grad_inputs) override {
    DLTensor* gx = grad_inputs[0];
    if (gx == nullptr) return;
    const DLTensor* g = grad_outputs[0];
    if (g == nullptr) return Zero(gx);
    const DLTensor* x = Arg(call, 0, "x");
    const bool tanh_form = TanhForm(call);
    const int64_t n = llmsys_tensor_numel(x);
    ForFloat(x->dtype, [&]<class T>(T) {
      const T* px = sdk::Data<const T>(x);
      const T* pg = sdk::Data<const T>(g);
      T* pgx = sdk::Data<T>(gx);
      ForRanges(call, n, kGrain / 8, [&](int64_t i0, int64_t i1) {
        if (tanh_form)
          GeluTanhBackward<T>(px + i0, pg + i0, pgx + i0, i1 - i0);
        else
          GeluErfBackward<T>(px + i0, pg + i0, pgx + i0, i1 - i0);
      });
    });
  }
};

// ---- relu ----

class Relu : public sdk::Operator {
 public:
  static constexpr bool kHasBackward = true;
  static sdk::Info Describe() {
    return {
        .id = "relu.cpu",
        .description = "max(x, 0), one vectorized pass forward and backward",
        .op = "relu",
        .op_flags = LLMSYS_OP_BACKWARD_NEEDS_INPUTS,
        .priority = 100};
  }
  explicit Relu(const sdk::Params&) {}

  std::vector<llmsys_tensor_spec_t> Infer(const llmsys_op_call_t& call,
                                          size_t*) override {
    const DLTensor* x = FloatArg(call, 0, "x");
    return {SpecOf(call, x->dtype, ShapeOf(x))};
  }

  void Forward(const llmsys_op_call_t& call, DLTensor* const* outputs,
               uint32_t) override {
    const DLTensor* x = call.inputs[0];
    const int64_t n = llmsys_tensor_numel(x);
    ForFloat(x->dtype, [&]<class T>(T) {
      const T* px = sdk::Data<const T>(x);
      T* py = sdk::Data<T>(outputs[0]);
      for (int64_t i = 0; i < n; ++i) py[i] = px[i] > T(0) ? px[i] : T(0);
    });
  }

  // The gradient at 0 is 0, as PyTorch's.
  void Backward(const llmsys_op_call_t& call, const DLTensor* const*,
                const DLTensor* const* grad_outputs, uint32_t,
                DLTensor* const* grad_inputs) override {
    DLTensor* gx = grad_inputs[0];
    if (gx == nullptr) return;
    const DLTensor* g = grad_outputs[0];
    if (g == nullptr) return Zero(gx);
    const DLTensor* x = Arg(call, 0, "x");
    const int64_t n = llmsys_tensor_numel(x);
    ForFloat(x->dtype, [&]<class T>(T) {
      const T* px = sdk::Data<const T>(x);
      const T* pg = sdk::Data<const T>(g);
      T* pgx = sdk::Data<T>(gx);
      for (int64_t i = 0; i < n; ++i) pgx[i] = px[i] > T(0) ? pg[i] : T(0);
    });
  }
};

}  // namespace

void RegisterElementwise(sdk::Registry& registry) {
  registry.Add<Binary<AddFn>>();
  registry.Add<Binary<SubFn>>();
  registry.Add<Binary<MulFn>>();
  registry.Add<Binary<DivFn>>();
  registry.Add<Gelu>();
  registry.Add<Relu>();
}

}  // namespace llmsys::cpu
