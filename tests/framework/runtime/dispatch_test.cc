// The dispatcher: which implementation serves an op, the [ops] errors, call
// checking, and the random stream each call gets.
#include "framework/runtime/dispatch.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "framework/autograd/autograd.h"

namespace llmsys::runtime {
namespace {

using autograd::MakeLeaf;
using tensor::kF32;
using tensor::Tensor;

PluginRegistry& Registry() {
  static PluginRegistry* r = [] {
    auto* reg = new PluginRegistry;
    EXPECT_TRUE(
        reg->LoadFile(std::string(LLMSYS_BUILTIN_PLUGIN_DIR) + "/reference.so")
            .ok());
    EXPECT_TRUE(reg->LoadFile(std::string(LLMSYS_TEST_PLUGIN_DIR) +
                              "/wrong_ops/wrong_ops.so")
                    .ok());
    return reg;
  }();
  return *r;
}

Var Values(std::vector<double> v) {
  const int64_t n = static_cast<int64_t>(v.size());
  return MakeLeaf(*Tensor::FromDoubles({n}, v, kF32));
}

TEST(DispatchTest, DefaultIsTheHighestPriorityForTheDevice) {
  OpDispatcher ops(&Registry(), tensor::kCpu);
  EXPECT_EQ(ops.Available("exp"),
            (std::vector<std::string>{"fast", "reference"}));
  EXPECT_EQ((*ops.Resolve("exp"))->id(), "exp.fast");  // priority 50
  EXPECT_EQ((*ops.Resolve("softmax"))->id(), "softmax.reference");
  ASSERT_TRUE(ops.Call("exp", {Values({0, 1})}).ok());
  std::vector<OpChoice> choices = ops.Choices();
  ASSERT_EQ(choices.size(), 2u);
  EXPECT_EQ(choices[0].op, "exp");
  EXPECT_EQ(choices[0].calls, 1u);
  EXPECT_FALSE(choices[0].chosen_by_experiment);
  EXPECT_NE(choices[0].file.find("wrong_ops.so"), std::string::npos);
}

TEST(DispatchTest, TheOpsTableChoosesByNameOrId) {
  OpDispatcher ops(&Registry(), tensor::kCpu);
  ASSERT_TRUE(ops.Configure({{"exp", "reference"}, {"add", "add.wrong"}}).ok());
  EXPECT_EQ((*ops.Resolve("exp"))->id(), "exp.reference");
  EXPECT_EQ((*ops.Resolve("add"))->id(), "add.wrong");
  // The example: the materialized attention by its usual name.
  OpDispatcher naive(&Registry(), tensor::kCpu);
  ASSERT_TRUE(naive.Configure({{"attention", "naive"}}).ok());
  EXPECT_EQ((*naive.Resolve("attention"))->id(), "attention.naive");
  EXPECT_TRUE(ops.Choices()[0].chosen_by_experiment);
}

TEST(DispatchTest, UnknownOpsAndImplementationsListWhatExists) {
  OpDispatcher ops(&Registry(), tensor::kCpu);
  absl::Status s = ops.Configure({{"exp", "refrence"}}, "x.toml: [ops]");
  EXPECT_TRUE(absl::IsNotFound(s)) << s;
  EXPECT_NE(s.message().find("x.toml: [ops] exp: unknown implementation "
                             "'refrence' of op 'exp' for cpu; available: "
                             "fast, reference (did you mean 'reference'?)"),
            std::string::npos)
      << s;
  s = ops.Configure({{"atention", "naive"}});
  EXPECT_TRUE(absl::IsNotFound(s)) << s;
  EXPECT_NE(s.message().find("unknown op 'atention' (did you mean "
                             "'attention'?)"),
            std::string::npos)
      << s;
}

TEST(DispatchTest, CallsAreCheckedAgainstTheContract) {
  OpDispatcher ops(&Registry(), tensor::kCpu);
  absl::StatusOr<std::vector<Var>> r =
      ops.Call("softmax", {Values({1, 2})}, {{"dimm", int64_t{0}}});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("unknown parameter 'dimm'"),
            std::string::npos)
      << r.status();
  EXPECT_NE(r.status().message().find("softmax(Tensor x, int dim=-1)"),
            std::string::npos);
  r = ops.Call("softmax", {Values({1, 2})}, {{"dim", std::string("last")}});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("'dim' expects int, got str"),
            std::string::npos)
      << r.status();
  r = ops.Call("mul", {Values({1, 2})});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("op mul takes 2 tensor inputs, got 1"),
            std::string::npos)
      << r.status();
  r = ops.Call("mul", {Values({1, 2}), nullptr});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("input 'b' is required"),
            std::string::npos)
      << r.status();
  r = ops.Call("gelu", {Values({1})}, {{"approximate", std::string("fast")}});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("approximate must be 'none' or 'tanh'"),
            std::string::npos)
      << r.status();
}

TEST(DispatchTest, EveryCallGetsItsOwnRandomStream) {
  OpDispatcher ops(&Registry(), tensor::kCpu);
  ops.set_seed(7);
  Var x = MakeLeaf(*Tensor::Zeros({256}, kF32));
  ASSERT_TRUE(x->data.Fill(1.0).ok());
  std::vector<Var> a = *ops.Call("dropout", {x}, {{"p", 0.5}});
  std::vector<Var> b = *ops.Call("dropout", {x}, {{"p", 0.5}});
  EXPECT_EQ(ops.calls(), 2u);
  EXPECT_NE(a[1]->data.ToDoubles(), b[1]->data.ToDoubles());
  // The same seed and call number replay the same mask.
  OpDispatcher replay(&Registry(), tensor::kCpu);
  replay.set_seed(7);
  std::vector<Var> c = *replay.Call("dropout", {x}, {{"p", 0.5}});
  EXPECT_EQ(a[1]->data.ToDoubles(), c[1]->data.ToDoubles());
}

TEST(DispatchTest, InputsOnAnotherDeviceAreRejected) {
  // A tensor that claims to live on a GPU (its data is never touched).
  static float fake[2] = {1, 2};
  auto* m = new DLManagedTensor{};
  static int64_t shape[1] = {2};
  m->dl_tensor =
      DLTensor{fake, {kDLCUDA, 0}, 1, LLMSYS_DTYPE_F32, shape, nullptr, 0};
  m->deleter = [](DLManagedTensor* self) { delete self; };
  absl::StatusOr<Tensor> gpu = Tensor::FromDLPack(m);
  ASSERT_TRUE(gpu.ok()) << gpu.status();
  OpDispatcher ops(&Registry(), tensor::kCpu);
  absl::StatusOr<std::vector<Var>> r = ops.Call("softmax", {MakeLeaf(*gpu)});
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(absl::IsInvalidArgument(r.status()));
  EXPECT_NE(r.status().message().find(
                "input 'x' is on cuda:0, the implementation runs on cpu"),
            std::string::npos)
      << r.status();
}

// ABI 1.6: infer sizes the workspace for the pass the host calls it for.
// The test plugin's scale.test asks 16 bytes for forward and 48 for
// backward, and fails a call whose workspace is not its pass's.
TEST(DispatchTest, InferSizesTheWorkspaceForThePassAhead) {
  PluginRegistry registry;
  ASSERT_TRUE(
      registry.LoadFile(std::string(LLMSYS_TEST_PLUGIN_DIR) + "/good/good.so")
          .ok());
  OpDispatcher ops(&registry, tensor::kCpu);
  Var x = MakeLeaf(*Tensor::FromDoubles({3}, {1, -2, 3}, kF32),
                   /*requires_grad=*/true);
  absl::StatusOr<std::vector<Var>> y =
      ops.Call("scale", {x}, {{"factor", 2.0}});
  ASSERT_TRUE(y.ok()) << y.status();
  EXPECT_EQ((*y)[0]->data.ToDoubles(), (std::vector<double>{2, -4, 6}));
  absl::Status s =
      autograd::Backward((*y)[0], *Tensor::FromDoubles({3}, {1, 1, 0.5}, kF32));
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(x->grad.ToDoubles(), (std::vector<double>{2, 2, 1}));
  // Shape inference alone asks for either pass.
  absl::StatusOr<OperatorImpl*> scale = ops.Resolve("scale");
  ASSERT_TRUE(scale.ok()) << scale.status();
  absl::StatusOr<OperatorImpl::InferResult> inferred =
      (*scale)->Infer({x->data}, *(*scale)->Attrs({{"factor", 2.0}}));
  ASSERT_TRUE(inferred.ok()) << inferred.status();
  EXPECT_EQ(inferred->workspace_bytes, 48u);
}

}  // namespace
}  // namespace llmsys::runtime
