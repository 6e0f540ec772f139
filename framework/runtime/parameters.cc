#include "framework/runtime/parameters.h"

#include <cmath>
#include <string_view>
#include <vector>

#include "absl/strings/str_cat.h"
#include "framework/core/status_macros.h"
#include "framework/tensor/tensor.h"
#include "llmsys/random.h"

namespace llmsys::runtime {
namespace {

using tensor::Shape;
using tensor::Tensor;

// FNV-1a: the parameter's own stretch of the random stream.
uint64_t NameHash(std::string_view name) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : name) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

}  // namespace

ParameterStore::ParameterStore(uint64_t seed, DLDevice device)
    : seed_(seed), device_(device) {}

const Parameter* ParameterStore::Find(const std::string& name) const {
  for (const Parameter& p : items_) {
    if (p.name == name) return &p;
  }
  return nullptr;
}

absl::StatusOr<autograd::Var> ParameterStore::Declare(
    const llmsys_parameter_decl_t& decl, bool trainable) {
  const char* what = trainable ? "parameter" : "buffer";
  if (decl.struct_size < sizeof(llmsys_parameter_decl_t) ||
      decl.name == nullptr || decl.name[0] == '\0')
    return absl::InvalidArgumentError(
        absl::StrCat(what, " declaration without a name or too small"));
  const std::string name = decl.name;
  if (decl.ndim < 0 || decl.ndim > LLMSYS_MAX_NDIM ||
      (decl.ndim > 0 && decl.shape == nullptr))
    return absl::InvalidArgumentError(
        absl::StrCat(what, " '", name, "': ndim ", decl.ndim, " (expected 0..",
                     LLMSYS_MAX_NDIM, " with a shape)"));
  const Shape shape(decl.shape, decl.shape + decl.ndim);
  if (const Parameter* p = Find(name)) {
    if (p->var->data.shape() != shape ||
        !(p->var->data.dtype() == decl.dtype) || p->trainable != trainable)
      return absl::InvalidArgumentError(absl::StrCat(
          what, " '", name, "' is declared again as ",
          tensor::DTypeName(decl.dtype), " ", tensor::ShapeString(shape),
          ", first as ", p->var->data.Describe(),
          p->trainable != trainable ? " (parameter vs buffer)" : ""));
    return p->var;
  }
  if (!tensor::IsFloatDType(decl.dtype) && trainable)
    return absl::InvalidArgumentError(
        absl::StrCat("parameter '", name, "' must have a float dtype, not ",
                     tensor::DTypeName(decl.dtype)));
  absl::StatusOr<Tensor> t = Tensor::Empty(shape, decl.dtype, device_);
  if (!t.ok())
    return absl::Status(t.status().code(),
                        absl::StrCat(what, " '", name,
                                     "': ", std::string(t.status().message())));
  const std::string init =
      decl.init != nullptr && trainable ? decl.init : "zeros";
  const int64_t n = t->numel();
  std::vector<double> values(static_cast<size_t>(n));
  const uint64_t offset = NameHash(name);
  if (init == "zeros" || init == "ones") {
    for (double& v : values) v = init == "ones" ? 1.0 : 0.0;
  } else if (init == "uniform") {
    for (int64_t i = 0; i < n; ++i)
      values[i] = decl.init_a + (decl.init_b - decl.init_a) *
                                    llmsys_random_uniform(seed_, offset, i);
  } else if (init == "normal") {
    // Box-Muller on the pair (2i, 2i+1); 2^-25 keeps log away from 0.
    for (int64_t i = 0; i < n; ++i) {
      const double u1 = llmsys_random_uniform(seed_, offset, 2 * i) + 0x1p-25;
      const double u2 = llmsys_random_uniform(seed_, offset, 2 * i + 1);
      values[i] = decl.init_a + decl.init_b * std::sqrt(-2.0 * std::log(u1)) *
                                    std::cos(2.0 * M_PI * u2);
    }
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("parameter '", name, "': unknown initializer '", init,
                     "' (expected zeros, ones, normal or uniform)"));
  }
  LLMSYS_ASSIGN_OR_RETURN(Tensor host,
                          Tensor::FromDoubles(shape, values, decl.dtype));
  LLMSYS_RETURN_IF_ERROR(t->CopyFrom(host));
  autograd::Var var = autograd::MakeLeaf(*std::move(t), trainable, name);
  items_.push_back({name, var, trainable, decl.flags});
  return var;
}

}  // namespace llmsys::runtime
