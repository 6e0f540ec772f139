#include "framework/autograd/views.h"

#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "framework/core/status_macros.h"
#include "framework/tensor/host_math.h"

namespace llmsys::autograd {
namespace {

using tensor::Shape;

class ViewNode : public Node {
 public:
  ViewNode(ViewKind kind, Shape input_shape, std::vector<int64_t> ints)
      : kind_(kind),
        input_shape_(std::move(input_shape)),
        ints_(std::move(ints)) {}

  std::string name() const override { return "view." + ViewKindName(kind_); }

  // A slice adds its gradient into its part of the input's buffer: one
  // buffer of zeros for all the slices of a tensor (q, k and v of a fused
  // projection) instead of one each, summed after.
  absl::StatusOr<bool> AccumulateInputGrad(
      const std::vector<Tensor>& grad_outputs, Tensor& buffer) override {
    const Tensor& g = grad_outputs[0];
    if (kind_ != ViewKind::kSlice || !g.defined() ||
        g.device().device_type != kDLCPU)
      return false;
    const bool fresh = !buffer.defined();
    if (fresh) {
      LLMSYS_ASSIGN_OR_RETURN(
          buffer, Tensor::Zeros(input_shape_, g.dtype(), g.device()));
    } else if (!buffer.sole_owner() || !buffer.is_contiguous() ||
               buffer.dtype() != g.dtype()) {
      return false;  // not ours to write: the ordinary path
    }
    LLMSYS_ASSIGN_OR_RETURN(
        Tensor part, buffer.Slice(ints_[0], ints_[1], ints_[2], ints_[3]));
    LLMSYS_RETURN_IF_ERROR(fresh ? part.CopyFrom(g) : tensor::AddInto(part, g));
    return true;
  }

  absl::StatusOr<std::vector<Tensor>> Apply(
      const std::vector<Tensor>& grad_outputs) override {
    const Tensor& g = grad_outputs[0];
    Tensor out;
    switch (kind_) {
      case ViewKind::kReshape: {
        LLMSYS_ASSIGN_OR_RETURN(out, g.Reshape(input_shape_));
        break;
      }
      case ViewKind::kPermute: {
        std::vector<int64_t> inverse(ints_.size());
        for (size_t i = 0; i < ints_.size(); ++i) {
          const int64_t n = static_cast<int64_t>(ints_.size());
          inverse[static_cast<size_t>((ints_[i] + n) % n)] =
              static_cast<int64_t>(i);
        }
        LLMSYS_ASSIGN_OR_RETURN(out, g.Permute(inverse));
        break;
      }
      case ViewKind::kSlice: {
        LLMSYS_ASSIGN_OR_RETURN(
            out, Tensor::Zeros(input_shape_, g.dtype(), g.device()));
        LLMSYS_ASSIGN_OR_RETURN(
            Tensor part, out.Slice(ints_[0], ints_[1], ints_[2], ints_[3]));
        LLMSYS_RETURN_IF_ERROR(part.CopyFrom(g));
        break;
      }
      case ViewKind::kExpand: {
        LLMSYS_ASSIGN_OR_RETURN(out, tensor::SumToShape(g, input_shape_));
        break;
      }
      case ViewKind::kDetach:
        break;
    }
    return std::vector<Tensor>{out};
  }

 private:
  ViewKind kind_;
  Shape input_shape_;
  std::vector<int64_t> ints_;
};

absl::Status WrongArity(ViewKind kind, const std::vector<int64_t>& ints,
                        const char* expected) {
  return absl::InvalidArgumentError(
      absl::StrCat("view ", ViewKindName(kind), ": expected ", expected,
                   ", got [", absl::StrJoin(ints, ", "), "]"));
}

}  // namespace

std::string ViewKindName(ViewKind kind) {
  switch (kind) {
    case ViewKind::kReshape:
      return "reshape";
    case ViewKind::kPermute:
      return "permute";
    case ViewKind::kSlice:
      return "slice";
    case ViewKind::kExpand:
      return "expand";
    case ViewKind::kDetach:
      return "detach";
  }
  return "unknown";
}

absl::StatusOr<Var> ApplyView(ViewKind kind, const Var& x,
                              const std::vector<int64_t>& ints) {
  if (!x) return absl::InvalidArgumentError("view of a null value");
  const Tensor& t = x->data;
  absl::StatusOr<Tensor> view;
  switch (kind) {
    case ViewKind::kReshape:
      view = t.Reshape(ints);  // copies when the strides allow no view
      break;
    case ViewKind::kPermute:
      view = t.Permute(ints);
      break;
    case ViewKind::kSlice:
      if (ints.size() != 4)
        return WrongArity(kind, ints, "{dim, start, stop, step}");
      view = t.Slice(ints[0], ints[1], ints[2], ints[3]);
      break;
    case ViewKind::kExpand:
      view = t.Expand(ints);
      break;
    case ViewKind::kDetach:
      if (!ints.empty()) return WrongArity(kind, ints, "no arguments");
      return Detach(x);
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("unknown view kind ", static_cast<uint32_t>(kind)));
  }
  if (!view.ok())
    return absl::Status(
        view.status().code(),
        absl::StrCat("view ", ViewKindName(kind), " of ", t.Describe(), ": ",
                     std::string(view.status().message())));
  std::shared_ptr<Node> node;
  if (AnyRequiresGrad({x})) {
    std::vector<int64_t> saved = ints;
    if (kind == ViewKind::kSlice) {
      // Normalize the dim so the backward slice matches.
      LLMSYS_ASSIGN_OR_RETURN(saved[0],
                              tensor::NormalizeDim(ints[0], t.ndim()));
    }
    node = std::make_shared<ViewNode>(kind, t.shape(), saved);
    node->inputs = {x};
  }
  return MakeOutputs({*std::move(view)}, node, {true})[0];
}

}  // namespace llmsys::autograd
