// framework/autograd/views.h — views of Vars that gradients flow through.
//
// The host runs these itself (no operator is involved): they only change
// shape and strides. Their backward maps the gradient back: reshape back,
// the inverse permutation, a zero tensor with the gradient in the slice,
// a sum over the expanded dims.
//
//   LLMSYS_ASSIGN_OR_RETURN(Var heads, ApplyView(ViewKind::kReshape, x,
//                                                 {B, N, H, D}));
//
// Thread-safety: as autograd.h.
#ifndef LLMSYS_FRAMEWORK_AUTOGRAD_VIEWS_H_
#define LLMSYS_FRAMEWORK_AUTOGRAD_VIEWS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "framework/autograd/autograd.h"

namespace llmsys::autograd {

// The values match LLMSYS_VIEW_* in abi/llmsys/host.h.
enum class ViewKind : uint32_t {
  kReshape = 1,  // ints: the shape, one -1 inferred
  kPermute = 2,  // ints: the dims in their new order
  kSlice = 3,    // ints: {dim, start, stop, step}
  kExpand = 4,   // ints: the shape, -1 keeps a dim
  kDetach = 5,   // no ints
};

std::string ViewKindName(ViewKind kind);

// A view of `x`. Errors name the view, the tensor and the arguments.
absl::StatusOr<Var> ApplyView(ViewKind kind, const Var& x,
                              const std::vector<int64_t>& ints);

}  // namespace llmsys::autograd

#endif  // LLMSYS_FRAMEWORK_AUTOGRAD_VIEWS_H_
