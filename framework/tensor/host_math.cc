#include "framework/tensor/host_math.h"

#include <vector>

#include "absl/strings/str_cat.h"
#include "framework/core/status_macros.h"

namespace llmsys::tensor {
namespace {

absl::Status CheckFloat(const Tensor& t, const char* what) {
  if (!t.defined())
    return absl::InvalidArgumentError(absl::StrCat(what, ": undefined tensor"));
  if (!IsFloatDType(t.dtype()))
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": needs a float tensor, got ", t.Describe()));
  return absl::OkStatus();
}

}  // namespace

namespace {

// d += s over strided views of one shape: row by row over the last dim
// when both rows are compact (a slice of a wider tensor), else per element.
template <class T>
absl::Status AddStrided(T* d, const Tensor& dst, const T* s,
                        const Tensor& src) {
  const Shape& shape = dst.shape();
  if (!shape.empty() && dst.strides().back() == 1 &&
      src.strides().back() == 1) {
    const Shape outer(shape.begin(), shape.end() - 1);
    const Shape d_outer(dst.strides().begin(), dst.strides().end() - 1);
    const Shape s_outer(src.strides().begin(), src.strides().end() - 1);
    const int64_t n = shape.back();
    ParallelForEachIndex(outer, {&d_outer, &s_outer}, n, [&](const int64_t* o) {
      T* dr = d + o[0];
      const T* sr = s + o[1];
      for (int64_t i = 0; i < n; ++i) dr[i] += sr[i];
    });
    return absl::OkStatus();
  }
  ForEachIndex(shape, {&dst.strides(), &src.strides()},
               [&](const int64_t* o) { d[o[0]] += s[o[1]]; });
  return absl::OkStatus();
}

}  // namespace

absl::Status AddInto(Tensor& dst, const Tensor& src) {
  LLMSYS_RETURN_IF_ERROR(CheckFloat(dst, "AddInto"));
  LLMSYS_RETURN_IF_ERROR(CheckFloat(src, "AddInto"));
  if (dst.shape() != src.shape())
    return absl::InvalidArgumentError(absl::StrCat(
        "AddInto: shapes differ: ", dst.Describe(), " += ", src.Describe()));
  if (dst.device().device_type != kDLCPU ||
      src.device().device_type != kDLCPU) {
    if (!(dst.device() == src.device()))
      return absl::InvalidArgumentError(absl::StrCat(
          "AddInto: devices differ: ", dst.Describe(), " += ", src.Describe()));
    LLMSYS_ASSIGN_OR_RETURN(DeviceBackend * b, BackendFor(dst.device()));
    return b->AddInto(dst.device(), dst.DeviceViewOf(), src.DeviceViewOf());
  }
  if (dst.dtype() == src.dtype() && dst.is_contiguous() &&
      src.is_contiguous()) {
    const int64_t n = dst.numel();
    if (dst.dtype() == kF32) {
      float* d = dst.data_as<float>();
      const float* s = src.data_as<float>();
      for (int64_t i = 0; i < n; ++i) d[i] += s[i];
      return absl::OkStatus();
    }
    if (dst.dtype() == kF64) {
      double* d = dst.data_as<double>();
      const double* s = src.data_as<double>();
      for (int64_t i = 0; i < n; ++i) d[i] += s[i];
      return absl::OkStatus();
    }
  }
  if (dst.dtype() == kF64 && src.dtype() == kF64)
    return AddStrided(dst.data_as<double>(), dst, src.data_as<double>(), src);
  if (dst.dtype() == kF32 && src.dtype() == kF32)
    return AddStrided(dst.data_as<float>(), dst, src.data_as<float>(), src);
  // Mixed or 16-bit: through double.
  std::vector<double> a = dst.ToDoubles(), b = src.ToDoubles();
  for (size_t i = 0; i < a.size(); ++i) a[i] += b[i];
  LLMSYS_ASSIGN_OR_RETURN(Tensor sum,
                          Tensor::FromDoubles(dst.shape(), a, kF64));
  return dst.CopyFrom(sum);
}

absl::StatusOr<Tensor> Add(const Tensor& a, const Tensor& b) {
  LLMSYS_ASSIGN_OR_RETURN(Tensor out,
                          Tensor::Empty(a.shape(), a.dtype(), a.device()));
  LLMSYS_RETURN_IF_ERROR(out.CopyFrom(a));
  LLMSYS_RETURN_IF_ERROR(AddInto(out, b));
  return out;
}

absl::StatusOr<Tensor> SumToShape(const Tensor& x, const Shape& shape) {
  if (x.shape() == shape) return x;
  LLMSYS_RETURN_IF_ERROR(CheckFloat(x, "SumToShape"));
  if (shape.size() > x.shape().size())
    return absl::InvalidArgumentError(
        absl::StrCat("SumToShape: ", x.Describe(), " to ", ShapeString(shape)));
  const size_t lead = x.shape().size() - shape.size();
  // Strides of the result, 0 along summed dims, aligned to x's dims.
  Shape out_strides(x.shape().size(), 0);
  const Shape compact = ContiguousStrides(shape);
  for (size_t i = 0; i < shape.size(); ++i) {
    const int64_t have = x.shape()[lead + i];
    if (shape[i] == have) {
      out_strides[lead + i] = compact[i];
    } else if (shape[i] != 1) {
      return absl::InvalidArgumentError(
          absl::StrCat("SumToShape: ", x.Describe(), " does not reduce to ",
                       ShapeString(shape)));
    }
  }
  if (x.device().device_type != kDLCPU) {
    LLMSYS_ASSIGN_OR_RETURN(Tensor out,
                            Tensor::Empty(shape, x.dtype(), x.device()));
    DeviceView dst = out.DeviceViewOf();  // padded to x's dims
    dst.shape.insert(dst.shape.begin(), lead, 1);
    dst.strides.insert(dst.strides.begin(), lead, 0);
    LLMSYS_ASSIGN_OR_RETURN(DeviceBackend * b, BackendFor(x.device()));
    LLMSYS_RETURN_IF_ERROR(b->SumTo(x.device(), dst, x.DeviceViewOf()));
    return out;
  }
  std::vector<double> acc(static_cast<size_t>(Numel(shape)), 0.0);
  const std::vector<double> values = x.ToDoubles();
  size_t k = 0;
  ForEachIndex(x.shape(), {&out_strides},
               [&](const int64_t* o) { acc[o[0]] += values[k++]; });
  return Tensor::FromDoubles(shape, acc, x.dtype());
}

}  // namespace llmsys::tensor
