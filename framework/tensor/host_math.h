// framework/tensor/host_math.h — the few computations the host itself does
// on tensors: gradient accumulation and reducing a broadcast gradient (on a
// device through its backend's kernels, device.h).
// Everything a model computes goes through operators (dispatch), not here.
//
//   LLMSYS_RETURN_IF_ERROR(AddInto(grad, more));          // grad += more
//   LLMSYS_ASSIGN_OR_RETURN(Tensor g, SumToShape(g, {1, 4}));
//
// Thread-safety: pure functions of their arguments.
#ifndef LLMSYS_FRAMEWORK_TENSOR_HOST_MATH_H_
#define LLMSYS_FRAMEWORK_TENSOR_HOST_MATH_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "framework/tensor/tensor.h"

namespace llmsys::tensor {

// dst += src, elementwise; same shape, float dtypes (src converted).
absl::Status AddInto(Tensor& dst, const Tensor& src);
// A new compact tensor a + b (same shape, a's dtype).
absl::StatusOr<Tensor> Add(const Tensor& a, const Tensor& b);
// Sums `x` over the dims broadcasting added to reach x's shape from `shape`
// (leading dims and size-1 dims): the gradient of Expand.
absl::StatusOr<Tensor> SumToShape(const Tensor& x, const Shape& shape);

}  // namespace llmsys::tensor

#endif  // LLMSYS_FRAMEWORK_TENSOR_HOST_MATH_H_
