#include "tests/cuda/cuda_test_util.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "framework/core/status_macros.h"

namespace llmsys::cuda_test {

std::string CudaPluginFile() {
  return OnRealGpu() ? std::string(LLMSYS_BUILTIN_PLUGIN_DIR) + "/cuda.so"
                     : std::string(LLMSYS_CUDA_EMU_PLUGIN);
}

const runtime::PluginRegistry& EmulatedPlugin() {
  static const runtime::PluginRegistry* const registry = [] {
    EmulatedDevice::Install();
    auto* r = new runtime::PluginRegistry;
    absl::Status s = r->LoadFile(CudaPluginFile());
    EXPECT_TRUE(s.ok()) << s;
    return r;
  }();
  return *registry;
}

std::unique_ptr<runtime::OperatorImpl> EmulatedOp(
    const std::string& id, const std::string& op,
    const runtime::AttrList& params) {
  const runtime::PluginRegistry& registry = EmulatedPlugin();
  absl::StatusOr<const runtime::Component*> c =
      registry.Find(LLMSYS_KIND_OPERATOR, id, kDLCUDA);
  EXPECT_TRUE(c.ok()) << c.status();
  const runtime::OpContract* contract = registry.FindOpContract(op);
  EXPECT_NE(contract, nullptr) << op;
  if (!c.ok() || contract == nullptr) return nullptr;
  absl::StatusOr<std::unique_ptr<runtime::OperatorImpl>> impl =
      runtime::OperatorImpl::Create(**c, *contract, params);
  EXPECT_TRUE(impl.ok()) << impl.status();
  return impl.ok() ? *std::move(impl) : nullptr;
}

absl::StatusOr<Specs> Infer(
    const std::string& id, const std::vector<std::optional<FakeTensor>>& inputs,
    const runtime::AttrList& attrs) {
  const runtime::PluginRegistry& registry = EmulatedPlugin();
  LLMSYS_ASSIGN_OR_RETURN(const runtime::Component* c,
                          registry.Find(LLMSYS_KIND_OPERATOR, id, kDLCUDA));
  const runtime::OpContract* contract = registry.FindOpContract(c->op);
  if (contract == nullptr)
    return absl::NotFoundError("no op contract " + c->op);
  LLMSYS_ASSIGN_OR_RETURN(std::unique_ptr<runtime::OperatorImpl> impl,
                          runtime::OperatorImpl::Create(*c, *contract));
  std::vector<tensor::Tensor> in;
  for (const std::optional<FakeTensor>& f : inputs) {
    if (!f.has_value()) {
      in.emplace_back();
      continue;
    }
    LLMSYS_ASSIGN_OR_RETURN(tensor::Tensor t,
                            tensor::Tensor::Empty(f->shape, f->dtype, kCuda0));
    in.push_back(std::move(t));
  }
  LLMSYS_ASSIGN_OR_RETURN(runtime::ParamPack pack, impl->Attrs(attrs));
  LLMSYS_ASSIGN_OR_RETURN(runtime::OperatorImpl::InferResult r,
                          impl->Infer(in, pack));
  Specs specs;
  for (const runtime::TensorMeta& m : r.outputs)
    specs.emplace_back(m.shape, m.dtype);
  return specs;
}

int64_t Numel(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::vector<double> RandomUniform(int64_t n, uint32_t seed, double lo,
                                  double hi) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<double> dist(lo, hi);
  std::vector<double> v(static_cast<size_t>(n));
  for (double& x : v) x = dist(gen);
  return v;
}

tensor::Tensor OnDevice(const std::vector<int64_t>& shape,
                        const std::vector<double>& values, DLDataType dtype,
                        bool offset) {
  std::vector<double> v = values;
  std::vector<int64_t> s = shape;
  if (offset) {
    v.insert(v.begin(), 0.0);
    s = {Numel(shape) + 1};
  }
  EmulatedDevice::Install();  // cuda:0 before the first test's plugin load
  absl::StatusOr<tensor::Tensor> host =
      tensor::Tensor::FromDoubles(s, v, dtype);
  EXPECT_TRUE(host.ok()) << host.status();
  absl::StatusOr<tensor::Tensor> dev = host->ToDevice(kCuda0);
  EXPECT_TRUE(dev.ok()) << dev.status();
  if (!offset) return *dev;
  absl::StatusOr<tensor::Tensor> view = dev->Slice(0, 1, Numel(shape) + 1, 1);
  EXPECT_TRUE(view.ok()) << view.status();
  absl::StatusOr<tensor::Tensor> shaped = view->View(shape);
  EXPECT_TRUE(shaped.ok()) << shaped.status();
  return *shaped;
}

void ExpectNear(const std::vector<double>& got, const std::vector<double>& want,
                double tol, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  int reported = 0;
  for (size_t i = 0; i < got.size() && reported < 10; ++i) {
    bool ok;
    if (std::isnan(want[i]))
      ok = std::isnan(got[i]);
    else if (std::isinf(want[i]))
      ok = got[i] == want[i];
    else
      ok = std::abs(got[i] - want[i]) <= tol * (1.0 + std::abs(want[i]));
    if (!ok) {
      ADD_FAILURE() << what << "[" << i << "] = " << got[i] << ", want "
                    << want[i];
      ++reported;
    }
  }
}

}  // namespace llmsys::cuda_test
