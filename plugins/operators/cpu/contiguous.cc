// contiguous.cpu: a compact row-major copy of a strided view, one memcpy
// (or one strided loop) per innermost row instead of per element. The GPT's
// head split and merge (slice, reshape, transpose) go through it.
#include <string>
#include <vector>

#include "plugins/operators/cpu/common.h"

namespace llmsys::cpu {
namespace {

template <class E>
void CopyRow(const char* src, char* dst, int64_t n, int64_t stride) {
  const E* s = reinterpret_cast<const E*>(src);
  E* d = reinterpret_cast<E*>(dst);
  for (int64_t j = 0; j < n; ++j) d[j] = s[j * stride];
}

class Contiguous : public sdk::Operator {
 public:
  static constexpr bool kHasBackward = true;
  static sdk::Info Describe() {
    return {.id = "contiguous.cpu",
            .description =
                "contiguous: strided view to compact row-major, a memcpy "
                "or strided loop per innermost row",
            .op = "contiguous",
            .op_flags = LLMSYS_OP_STRIDED_INPUTS,
            .priority = 100};
  }
  explicit Contiguous(const sdk::Params&) {}

  std::vector<llmsys_tensor_spec_t> Infer(const llmsys_op_call_t& call,
                                          size_t*) override {
    const DLTensor* x = Arg(call, 0, "x");
    ElementBytes(call, x);
    return {SpecOf(call, x->dtype, ShapeOf(x))};
  }

  void Forward(const llmsys_op_call_t& call, DLTensor* const* outputs,
               uint32_t) override {
    const DLTensor* x = call.inputs[0];
    const int64_t bytes = static_cast<int64_t>(ElementBytes(call, x));
    const Shape shape = ShapeOf(x);
    const int64_t total = Numel(shape);
    const char* px = sdk::Data<const char>(x);  // data plus byte_offset
    char* po = sdk::Data<char>(outputs[0]);
    if (total == 0) return;
    if (shape.empty()) {
      std::memcpy(po, px, static_cast<size_t>(bytes));
      return;
    }
    const size_t nd = shape.size();
    Shape strides(nd, 0);  // in elements
    int64_t compact = 1;
    bool is_compact = true;
    for (size_t d = nd; d-- > 0;) {
      strides[d] = x->strides != nullptr ? x->strides[d] : compact;
      if (shape[d] != 1 && strides[d] != compact) is_compact = false;
      compact *= shape[d];
    }
    if (is_compact) {
      std::memcpy(po, px, static_cast<size_t>(total * bytes));
      return;
    }
    const int64_t len = shape[nd - 1], inner = strides[nd - 1];
    const int64_t rows = total / len;
    Shape pos(nd - 1, 0);
    for (int64_t r = 0; r < rows; ++r) {
      int64_t offset = 0;
      for (size_t d = 0; d + 1 < nd; ++d) offset += pos[d] * strides[d];
      const char* src = px + offset * bytes;
      char* dst = po + r * len * bytes;
      if (inner == 1) {
        std::memcpy(dst, src, static_cast<size_t>(len * bytes));
      } else {
        switch (bytes) {
          case 1:
            CopyRow<uint8_t>(src, dst, len, inner);
            break;
          case 2:
            CopyRow<uint16_t>(src, dst, len, inner);
            break;
          case 4:
            CopyRow<uint32_t>(src, dst, len, inner);
            break;
          default:
            CopyRow<uint64_t>(src, dst, len, inner);
            break;
        }
      }
      for (size_t d = nd - 1; d-- > 0;) {  // next row
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
    const DLTensor* g = grad_outputs[0];
    if (g == nullptr) return Zero(gx);
    const size_t bytes =
        static_cast<size_t>(llmsys_tensor_numel(gx)) * (gx->dtype.bits / 8);
    if (bytes > 0)
      std::memcpy(llmsys_tensor_data(gx), llmsys_tensor_data(g), bytes);
  }

 private:
  static size_t ElementBytes(const llmsys_op_call_t& call, const DLTensor* t) {
    const DLDataType d = t->dtype;
    if (d.lanes != 1 ||
        (d.bits != 8 && d.bits != 16 && d.bits != 32 && d.bits != 64))
      ArgFail(call, "input 'x' has an element size the op cannot copy: " +
                        cpu::Describe("x", t));
    return d.bits / 8;
  }
};

}  // namespace

void RegisterContiguous(sdk::Registry& registry) { registry.Add<Contiguous>(); }

}  // namespace llmsys::cpu
