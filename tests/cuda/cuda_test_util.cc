#include "tests/cuda/cuda_test_util.h"

#include <gtest/gtest.h>

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

}  // namespace llmsys::cuda_test
