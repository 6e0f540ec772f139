// tests/plugins/operators/reference_test_util.h — calling one reference
// operator on host tensors, and a central-difference gradient check.
//
// clang-format off
//   auto impl = ReferenceOp("softmax");                  // softmax.reference
//   Tensor x = RandomTensor({3, 5}, tensor::kF64, 1);
//   std::vector<Tensor> out = RunForward(*impl, {x}, {{"dim", int64_t{0}}});
//   EXPECT_LT(GradCheck(*impl, {x}, {{"dim", int64_t{0}}}), 1e-6);
// clang-format on
//
// Thread-safety: test-only helpers, used from the test's thread.
#ifndef LLMSYS_TESTS_PLUGINS_OPERATORS_REFERENCE_TEST_UTIL_H_
#define LLMSYS_TESTS_PLUGINS_OPERATORS_REFERENCE_TEST_UTIL_H_

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "framework/runtime/operator_call.h"
#include "framework/runtime/registry.h"
#include "framework/tensor/tensor.h"

namespace llmsys::plugins_test {

using runtime::AttrList;
using runtime::OperatorImpl;
using tensor::Tensor;

// The built-in plugin `file` (e.g. "cpu.so"), loaded once per test binary
// from the build's plugin folder and kept for its lifetime.
inline const runtime::PluginRegistry& BuiltinPlugin(const std::string& file) {
  static auto* registries =
      new std::map<std::string, std::unique_ptr<runtime::PluginRegistry>>;
  std::unique_ptr<runtime::PluginRegistry>& r = (*registries)[file];
  if (r == nullptr) {
    r = std::make_unique<runtime::PluginRegistry>();
    absl::Status s =
        r->LoadFile(std::string(LLMSYS_BUILTIN_PLUGIN_DIR) + "/" + file);
    EXPECT_TRUE(s.ok()) << s;
  }
  return *r;
}

// Operator `id` of the built-in plugin `file` for op contract `op`, created
// with default parameters; nullptr (after a test failure) if missing.
inline std::unique_ptr<OperatorImpl> BuiltinOp(const std::string& file,
                                               const std::string& id,
                                               const std::string& op) {
  const runtime::PluginRegistry& registry = BuiltinPlugin(file);
  absl::StatusOr<const runtime::Component*> c =
      registry.Find(LLMSYS_KIND_OPERATOR, id);
  EXPECT_TRUE(c.ok()) << c.status();
  const runtime::OpContract* contract = registry.FindOpContract(op);
  EXPECT_NE(contract, nullptr) << op;
  if (!c.ok() || contract == nullptr) return nullptr;
  absl::StatusOr<std::unique_ptr<OperatorImpl>> impl =
      OperatorImpl::Create(**c, *contract);
  EXPECT_TRUE(impl.ok()) << impl.status();
  return impl.ok() ? *std::move(impl) : nullptr;
}

// `op`.reference, created with default parameters.
inline std::unique_ptr<OperatorImpl> ReferenceOp(const std::string& op) {
  return BuiltinOp("reference.so", op + ".reference", op);
}

// Uniform in [lo, hi), deterministic from `seed`.
inline Tensor RandomTensor(const tensor::Shape& shape, DLDataType dtype,
                           uint64_t seed, double lo = -1.0, double hi = 1.0) {
  std::mt19937_64 gen(seed);
  std::uniform_real_distribution<double> dist(lo, hi);
  std::vector<double> v(static_cast<size_t>(tensor::Numel(shape)));
  for (double& x : v) x = dist(gen);
  return *Tensor::FromDoubles(shape, v, dtype);
}

inline absl::StatusOr<std::vector<Tensor>> TryForward(
    const OperatorImpl& impl, const std::vector<Tensor>& inputs,
    const AttrList& attrs = {}, runtime::CallOptions options = {}) {
  absl::StatusOr<runtime::ParamPack> pack = impl.Attrs(attrs);
  if (!pack.ok()) return pack.status();
  options.poison = true;
  return impl.Forward(inputs, *pack, options);
}

inline std::vector<Tensor> RunForward(const OperatorImpl& impl,
                                      const std::vector<Tensor>& inputs,
                                      const AttrList& attrs = {},
                                      runtime::CallOptions options = {}) {
  absl::StatusOr<std::vector<Tensor>> out =
      TryForward(impl, inputs, attrs, options);
  EXPECT_TRUE(out.ok()) << out.status();
  return out.ok() ? *std::move(out) : std::vector<Tensor>{};
}

// Input gradients of loss = sum(w * out0) for every float input.
inline std::vector<Tensor> RunBackward(const OperatorImpl& impl,
                                       const std::vector<Tensor>& inputs,
                                       const AttrList& attrs, const Tensor& w,
                                       runtime::CallOptions options = {}) {
  runtime::ParamPack pack = *impl.Attrs(attrs);
  options.poison = true;
  std::vector<Tensor> out = *impl.Forward(inputs, pack, options);
  std::vector<runtime::TensorMeta> meta;
  std::vector<bool> needs;
  for (const Tensor& t : inputs) {
    meta.push_back({t.defined(), t.defined() ? t.shape() : tensor::Shape{},
                    t.defined() ? t.dtype() : tensor::kF32});
    needs.push_back(t.defined() && tensor::IsFloatDType(t.dtype()));
  }
  std::vector<Tensor> grads(out.size());
  grads[0] = w;
  absl::StatusOr<std::vector<Tensor>> g =
      impl.Backward(inputs, meta, pack, options, out, grads, needs);
  EXPECT_TRUE(g.ok()) << g.status();
  return g.ok() ? *std::move(g) : std::vector<Tensor>{};
}

// Worst |analytic - numeric| / max(1, |numeric|) over every element of every
// float input, for loss = sum(w * out0) with random w; float64 inputs.
inline double GradCheck(const OperatorImpl& impl,
                        const std::vector<Tensor>& inputs,
                        const AttrList& attrs = {},
                        runtime::CallOptions options = {}) {
  std::vector<Tensor> out = RunForward(impl, inputs, attrs, options);
  if (out.empty()) return INFINITY;
  const Tensor w = RandomTensor(out[0].shape(), tensor::kF64, 99);
  const std::vector<double> wv = w.ToDoubles();
  std::vector<Tensor> analytic = RunBackward(impl, inputs, attrs, w, options);
  if (analytic.size() != inputs.size()) return INFINITY;
  auto loss = [&](const std::vector<Tensor>& in) {
    std::vector<double> o = RunForward(impl, in, attrs, options)[0].ToDoubles();
    double s = 0;
    for (size_t i = 0; i < o.size(); ++i) s += wv[i] * o[i];
    return s;
  };
  double worst = 0;
  const double h = 1e-6;
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (!inputs[i].defined() || !tensor::IsFloatDType(inputs[i].dtype()))
      continue;
    const std::vector<double> a = analytic[i].ToDoubles();
    std::vector<double> x = inputs[i].ToDoubles();
    for (size_t k = 0; k < x.size(); ++k) {
      std::vector<Tensor> in = inputs;
      const double x0 = x[k];
      x[k] = x0 + h;
      in[i] = *Tensor::FromDoubles(inputs[i].shape(), x, tensor::kF64);
      const double up = loss(in);
      x[k] = x0 - h;
      in[i] = *Tensor::FromDoubles(inputs[i].shape(), x, tensor::kF64);
      const double down = loss(in);
      x[k] = x0;
      const double numeric = (up - down) / (2 * h);
      const double err =
          std::abs(a[k] - numeric) / std::max(1.0, std::abs(numeric));
      if (!(err <= worst)) worst = err;  // NaN (an unwritten element) wins
    }
  }
  return worst;
}

// GradCheck, after checking that backward wrote a finite value into every
// element of every gradient (they are poisoned with NaN first).
inline double CheckedGrad(const OperatorImpl& impl,
                          const std::vector<Tensor>& inputs,
                          const AttrList& attrs = {},
                          runtime::CallOptions options = {}) {
  std::vector<Tensor> out = RunForward(impl, inputs, attrs, options);
  if (out.empty()) return INFINITY;
  std::vector<Tensor> g =
      RunBackward(impl, inputs, attrs,
                  RandomTensor(out[0].shape(), tensor::kF64, 98), options);
  for (size_t i = 0; i < g.size(); ++i) {
    if (!g[i].defined()) continue;
    for (double v : g[i].ToDoubles()) {
      if (!std::isfinite(v)) {
        ADD_FAILURE() << "gradient " << i << " has " << v;
        return INFINITY;
      }
    }
  }
  return GradCheck(impl, inputs, attrs, options);
}

// The status is INVALID_ARGUMENT and the message holds every one of `parts`.
inline void ExpectInvalid(const absl::StatusOr<std::vector<Tensor>>& out,
                          const std::vector<std::string>& parts) {
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().code(), absl::StatusCode::kInvalidArgument)
      << out.status();
  for (const std::string& p : parts)
    EXPECT_NE(out.status().message().find(p), std::string::npos)
        << "missing '" << p << "' in " << out.status();
}

}  // namespace llmsys::plugins_test

#endif  // LLMSYS_TESTS_PLUGINS_OPERATORS_REFERENCE_TEST_UTIL_H_
