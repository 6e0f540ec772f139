// Ops that move elements: contiguous, concat, where, masked_fill and
// embedding.
#include <cstring>
#include <string>
#include <vector>

#include "plugins/operators/reference/common.h"

namespace llmsys::reference {
namespace {

// The row-major multi-index of element k of `shape`: "(1, 0, 2)".
std::string Position(const Shape& shape, int64_t k) {
  Shape pos(shape.size(), 0);
  for (size_t d = shape.size(); d-- > 0;) {
    pos[d] = k % shape[d];
    k /= shape[d];
  }
  return Str(pos);
}

// Writes the double accumulator `acc` into a float tensor of its size.
void Store(const std::vector<double>& acc, DLTensor* t) {
  ForFloat(t->dtype, [&]<class T>(T) {
    T* p = sdk::Data<T>(t);
    for (size_t k = 0; k < acc.size(); ++k) p[k] = static_cast<T>(acc[k]);
  });
}

// ---- contiguous: a compact copy of a strided input, any dtype ----

class Contiguous : public sdk::Operator {
 public:
  static constexpr bool kHasBackward = true;
  static sdk::Info Describe() {
    return {.id = "contiguous.reference",
            .description =
                "reference contiguous: copies any strided input "
                "to compact row-major (plain loop)",
            .op = "contiguous",
            .op_flags = LLMSYS_OP_STRIDED_INPUTS};
  }
  explicit Contiguous(const sdk::Params&) {}

  std::vector<llmsys_tensor_spec_t> Infer(const llmsys_op_call_t& call,
                                          size_t*) override {
    const DLTensor* x = Arg(call, 0, "x");  // any shape, strides, dtype
    ElementBytes(call, "x", x);
    return {SpecOf(call, x->dtype, ShapeOf(x))};
  }

  void Forward(const llmsys_op_call_t& call, DLTensor* const* outputs,
               uint32_t) override {
    const DLTensor* x = call.inputs[0];  // any shape; strided
    DLTensor* out = outputs[0];          // x's shape, compact
    const size_t bytes = ElementBytes(call, "x", x);
    const Shape shape = ShapeOf(x);
    // x's strides in elements (NULL means compact row-major); 0 along
    // expanded dims, any sign.
    Shape strides(shape.size(), 0);
    int64_t compact = 1;
    for (size_t d = shape.size(); d-- > 0;) {
      strides[d] = x->strides != nullptr ? x->strides[d] : compact;
      compact *= shape[d];
    }
    const char* px = sdk::Data<const char>(x);  // data plus byte_offset
    char* po = sdk::Data<char>(out);
    Shape pos(shape.size(), 0);
    for (int64_t k = 0; k < Numel(shape); ++k) {
      int64_t offset = 0;  // in elements
      for (size_t d = 0; d < shape.size(); ++d) offset += pos[d] * strides[d];
      std::memcpy(po + k * static_cast<int64_t>(bytes),
                  px + offset * static_cast<int64_t>(bytes), bytes);
      for (size_t d = shape.size(); d-- > 0;) {  // next row-major position
        if (++pos[d] < shape[d]) break;
        pos[d] = 0;
      }
    }
  }

  void Backward(const llmsys_op_call_t&, const DLTensor* const*,
                const DLTensor* const* grad_outputs, uint32_t,
                DLTensor* const* grad_inputs) override {
    DLTensor* gx = grad_inputs[0];  // x's shape, compact
    if (gx == nullptr) return;
    const DLTensor* g = grad_outputs[0];  // x's shape, compact
    if (g == nullptr) return Zero(gx);
    ForFloat(gx->dtype, [&]<class T>(T) {
      const T* pg = sdk::Data<const T>(g);
      T* pin = sdk::Data<T>(gx);
      for (int64_t k = 0; k < llmsys_tensor_numel(gx); ++k) pin[k] = pg[k];
    });
  }
};

// ---- concat: xs[0], xs[1], ... joined along dim, any dtype ----

class Concat : public sdk::Operator {
 public:
  static constexpr bool kHasBackward = true;
  static sdk::Info Describe() {
    return {.id = "concat.reference",
            .description = "reference concat along dim (plain copies)",
            .op = "concat",
            // Backward needs every item's size along dim, also of items
            // that get no gradient.
            .op_flags = LLMSYS_OP_BACKWARD_NEEDS_INPUTS};
  }
  explicit Concat(const sdk::Params&) {}

  std::vector<llmsys_tensor_spec_t> Infer(const llmsys_op_call_t& call,
                                          size_t*) override {
    return ConcatOutputs(call);
  }

  void Forward(const llmsys_op_call_t& call, DLTensor* const* outputs,
               uint32_t) override {
    const DLTensor* out = outputs[0];  // (..., n0 + n1 + ..., ...)
    const int64_t dim = ConcatDim(call, out->ndim);
    const int64_t bytes = out->dtype.bits / 8;
    const int64_t outer = SizeBefore(out, dim), inner = SizeAfter(out, dim);
    char* po = sdk::Data<char>(out);
    int64_t start = 0;  // where xs[i] begins along dim
    for (uint32_t i = 0; i < call.num_inputs; ++i) {
      const DLTensor* xi = call.inputs[i];           // (..., ni, ...)
      const int64_t chunk = xi->shape[dim] * inner;  // elements per outer
      const char* px = sdk::Data<const char>(xi);
      for (int64_t o = 0; o < outer && chunk > 0; ++o)
        std::memcpy(po + ((o * out->shape[dim] + start) * inner) * bytes,
                    px + o * chunk * bytes, chunk * bytes);
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
      const int64_t dim = ConcatDim(call, xi->ndim);
      const int64_t ni = xi->shape[dim];
      if (gi != nullptr && g == nullptr) {
        Zero(gi);
      } else if (gi != nullptr) {
        const int64_t bytes = gi->dtype.bits / 8;
        const int64_t outer = SizeBefore(g, dim), inner = SizeAfter(g, dim);
        const int64_t chunk = ni * inner;  // elements per outer
        const char* pg = sdk::Data<const char>(g);
        char* pin = sdk::Data<char>(gi);
        for (int64_t o = 0; o < outer && chunk > 0; ++o)
          std::memcpy(pin + o * chunk * bytes,
                      pg + ((o * g->shape[dim] + start) * inner) * bytes,
                      chunk * bytes);
      }
      start += ni;
    }
  }
};

// ---- where: out = cond ? a : b, all three broadcast together ----

class Where : public sdk::Operator {
 public:
  static constexpr bool kHasBackward = true;
  static sdk::Info Describe() {
    return {.id = "where.reference",
            .description = "reference where with broadcasting (plain loop)",
            .op = "where",
            .op_flags = LLMSYS_OP_BACKWARD_NEEDS_INPUTS};  // cond
  }
  explicit Where(const sdk::Params&) {}

  std::vector<llmsys_tensor_spec_t> Infer(const llmsys_op_call_t& call,
                                          size_t*) override {
    return WhereOutputs(call);
  }

  void Forward(const llmsys_op_call_t& call, DLTensor* const* outputs,
               uint32_t) override {
    const DLTensor* cond = call.inputs[0];
    const DLTensor* a = call.inputs[1];
    const DLTensor* b = call.inputs[2];
    const DLTensor* out = outputs[0];  // broadcast shape
    const Shape os = ShapeOf(out);
    const std::vector<int64_t> ic = BroadcastIndex(ShapeOf(cond), os);
    const std::vector<int64_t> ia = BroadcastIndex(ShapeOf(a), os);
    const std::vector<int64_t> ib = BroadcastIndex(ShapeOf(b), os);
    ForFloat(a->dtype, [&]<class T>(T) {
      const T* pa = sdk::Data<const T>(a);
      const T* pb = sdk::Data<const T>(b);
      T* po = sdk::Data<T>(out);
      for (size_t k = 0; k < ic.size(); ++k)
        po[k] = MaskAt(cond, ic[k]) ? pa[ia[k]] : pb[ib[k]];
    });
  }

  void Backward(const llmsys_op_call_t& call, const DLTensor* const*,
                const DLTensor* const* grad_outputs, uint32_t,
                DLTensor* const* grad_inputs) override {
    const DLTensor* cond = Arg(call, 0, "cond");  // kept for backward
    const DLTensor* g = grad_outputs[0];          // broadcast shape
    // cond is piecewise constant: a float cond asked for a gradient gets 0.
    if (grad_inputs[0] != nullptr) Zero(grad_inputs[0]);
    for (int which = 1; which <= 2; ++which) {  // a, then b
      DLTensor* gin = grad_inputs[which];       // the input's shape
      if (gin == nullptr) continue;
      if (g == nullptr) {
        Zero(gin);
        continue;
      }
      const Shape gs = ShapeOf(g);
      const std::vector<int64_t> ic = BroadcastIndex(ShapeOf(cond), gs);
      const std::vector<int64_t> index = BroadcastIndex(ShapeOf(gin), gs);
      std::vector<double> acc(static_cast<size_t>(llmsys_tensor_numel(gin)),
                              0.0);  // the input's shape
      ForFloat(g->dtype, [&]<class T>(T) {
        const T* pg = sdk::Data<const T>(g);
        for (size_t k = 0; k < index.size(); ++k)
          if (MaskAt(cond, ic[k]) == (which == 1))
            acc[index[k]] += pg[k];  // sums over broadcast dims
      });
      Store(acc, gin);
    }
  }
};

// ---- masked_fill: x with value where mask (broadcast to x) is true ----

class MaskedFill : public sdk::Operator {
 public:
  static constexpr bool kHasBackward = true;
  static sdk::Info Describe() {
    return {.id = "masked_fill.reference",
            .description = "reference masked_fill (plain loop)",
            .op = "masked_fill",
            .op_flags = LLMSYS_OP_BACKWARD_NEEDS_INPUTS};  // mask
  }
  explicit MaskedFill(const sdk::Params&) {}

  std::vector<llmsys_tensor_spec_t> Infer(const llmsys_op_call_t& call,
                                          size_t*) override {
    return MaskedFillOutputs(call);
  }

  void Forward(const llmsys_op_call_t& call, DLTensor* const* outputs,
               uint32_t) override {
    const DLTensor* x = call.inputs[0];     // any shape
    const DLTensor* mask = call.inputs[1];  // broadcasts to x
    const DLTensor* out = outputs[0];       // x's shape
    const std::vector<int64_t> im = BroadcastIndex(ShapeOf(mask), ShapeOf(x));
    const double value = sdk::Params(&call.attrs).Float("value");
    ForFloat(x->dtype, [&]<class T>(T) {
      const T* px = sdk::Data<const T>(x);
      T* po = sdk::Data<T>(out);
      for (size_t k = 0; k < im.size(); ++k)
        po[k] = MaskAt(mask, im[k]) ? static_cast<T>(value) : px[k];
    });
  }

  void Backward(const llmsys_op_call_t& call, const DLTensor* const*,
                const DLTensor* const* grad_outputs, uint32_t,
                DLTensor* const* grad_inputs) override {
    // mask is piecewise constant: a float mask asked for a gradient gets 0.
    if (grad_inputs[1] != nullptr) Zero(grad_inputs[1]);
    DLTensor* gx = grad_inputs[0];  // x's shape
    if (gx == nullptr) return;
    const DLTensor* g = grad_outputs[0];  // x's shape
    if (g == nullptr) return Zero(gx);
    const DLTensor* mask = Arg(call, 1, "mask");  // kept for backward
    const std::vector<int64_t> im = BroadcastIndex(ShapeOf(mask), ShapeOf(gx));
    ForFloat(gx->dtype, [&]<class T>(T) {
      const T* pg = sdk::Data<const T>(g);
      T* pin = sdk::Data<T>(gx);
      for (size_t k = 0; k < im.size(); ++k)
        pin[k] = MaskAt(mask, im[k]) ? T(0) : pg[k];
    });
  }
};

// ---- embedding: out[..., c] = weight[indices[...], c] ----

class Embedding : public sdk::Operator {
 public:
  static constexpr bool kHasBackward = true;
  static sdk::Info Describe() {
    return {.id = "embedding.reference",
            .description =
                "reference embedding: row gather, scatter-add "
                "backward (plain loops)",
            .op = "embedding",
            .op_flags = LLMSYS_OP_BACKWARD_NEEDS_INPUTS};  // indices
  }
  explicit Embedding(const sdk::Params&) {}

  std::vector<llmsys_tensor_spec_t> Infer(const llmsys_op_call_t& call,
                                          size_t*) override {
    const DLTensor* weight = FloatArg(call, 0, "weight");    // (V, C)
    const DLTensor* indices = IndexArg(call, 1, "indices");  // (...)
    if (weight->ndim != 2)
      ArgFail(call, "weight must be 2-D (V, C), got " +
                        reference::Describe("weight", weight) + " with " +
                        reference::Describe("indices", indices));
    Shape out = ShapeOf(indices);  // (..., C)
    out.push_back(weight->shape[1]);
    return {SpecOf(call, weight->dtype, out)};
  }

  void Forward(const llmsys_op_call_t& call, DLTensor* const* outputs,
               uint32_t) override {
    const DLTensor* weight = call.inputs[0];   // (V, C)
    const DLTensor* indices = call.inputs[1];  // (...)
    const DLTensor* out = outputs[0];          // (..., C)
    const int64_t c_size = weight->shape[1];
    ForFloat(weight->dtype, [&]<class T>(T) {
      const T* pw = sdk::Data<const T>(weight);
      T* po = sdk::Data<T>(out);
      for (int64_t k = 0; k < llmsys_tensor_numel(indices); ++k) {
        const int64_t row = Row(call, weight, indices, k);
        for (int64_t c = 0; c < c_size; ++c)
          po[k * c_size + c] = pw[row * c_size + c];
      }
    });
  }

  void Backward(const llmsys_op_call_t& call, const DLTensor* const*,
                const DLTensor* const* grad_outputs, uint32_t,
                DLTensor* const* grad_inputs) override {
    DLTensor* gw = grad_inputs[0];  // (V, C)
    if (gw == nullptr) return;
    const DLTensor* g = grad_outputs[0];  // (..., C)
    if (g == nullptr) return Zero(gw);
    const DLTensor* indices = Arg(call, 1, "indices");  // (...)
    const int64_t c_size = gw->shape[1];
    std::vector<double> acc(static_cast<size_t>(llmsys_tensor_numel(gw)),
                            0.0);  // (V, C)
    ForFloat(g->dtype, [&]<class T>(T) {
      const T* pg = sdk::Data<const T>(g);
      for (int64_t k = 0; k < llmsys_tensor_numel(indices); ++k) {
        const int64_t row = Row(call, gw, indices, k);
        for (int64_t c = 0; c < c_size; ++c)
          acc[row * c_size + c] += pg[k * c_size + c];  // scatter-add
      }
    });
    Store(acc, gw);
  }

 private:
  // indices[k], checked to be a row of weight (V, C).
  static int64_t Row(const llmsys_op_call_t& call, const DLTensor* weight,
                     const DLTensor* indices, int64_t k) {
    const int64_t row = IndexAt(indices, k);
    if (row < 0 || row >= weight->shape[0])
      ArgFail(call, "index " + std::to_string(row) + " at position " +
                        Position(ShapeOf(indices), k) + " of " +
                        reference::Describe("indices", indices) +
                        " is out of range [0, " +
                        std::to_string(weight->shape[0]) + ") for " +
                        reference::Describe("weight", weight));
    return row;
  }
};

}  // namespace

void RegisterShapeOps(sdk::Registry& registry) {
  registry.Add<Contiguous>();
  registry.Add<Concat>();
  registry.Add<Where>();
  registry.Add<MaskedFill>();
  registry.Add<Embedding>();
}

}  // namespace llmsys::reference
