// Tests of the template plugin's operator "relu.template"
// (plugins/template), loaded from the built template.so and called through
// the C ABI as the host calls an op: infer, allocate, forward, backward.
// Copy this file with the template when you start a plugin.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "framework/runtime/param_schema.h"
#include "framework/runtime/plugin.h"
#include "llmsys/plugin.h"
#include "tests/plugins/plugin_test_util.h"

namespace llmsys::plugins_test {
namespace {

class ReluTemplateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    plugin_ = LoadBuiltinPlugin("template.so");
    ASSERT_NE(plugin_, nullptr);
    component_ = plugin_->FindComponent(LLMSYS_KIND_OPERATOR, "relu.template");
    ASSERT_NE(component_, nullptr);
    api_ = component_->As<llmsys_operator_t>();
    ASSERT_NE(api_->create, nullptr);
    absl::StatusOr<runtime::ParamPack> pack =
        runtime::ParamPack::Make(component_->params);
    ASSERT_TRUE(pack.ok()) << pack.status();
    ErrorBuffer err;
    ASSERT_EQ(api_->create(pack->c_params(), &instance_, err.get()),
              LLMSYS_STATUS_OK)
        << err.message();
  }
  void TearDown() override {
    if (instance_ != nullptr) api_->destroy(instance_);
  }

  // An op call on one input, as the host builds it.
  struct Call {
    llmsys_call_context_t ctx = CpuContext();
    const DLTensor* inputs[1] = {nullptr};
    llmsys_op_call_t call{};
    explicit Call(const DLTensor* x) {
      inputs[0] = x;
      call.struct_size = sizeof(call);
      call.ctx = &ctx;
      call.op = "relu";
      call.inputs = inputs;
      call.num_inputs = 1;
      call.attrs = llmsys_params_t{nullptr, 0};
    }
    Call(const Call&) = delete;
    Call& operator=(const Call&) = delete;
  };

  llmsys_status_t Infer(const DLTensor* x, llmsys_tensor_spec_t* spec,
                        ErrorBuffer* err) {
    Call c(x);
    size_t workspace = 123;
    llmsys_status_t s =
        api_->infer(instance_, &c.call, spec, 1, &workspace, err->get());
    if (s == LLMSYS_STATUS_OK) {
      EXPECT_EQ(workspace, 0u);
    }
    return s;
  }

  llmsys_status_t Forward(const DLTensor* x, DLTensor* out, ErrorBuffer* err) {
    Call c(x);
    DLTensor* outputs[] = {out};
    return api_->forward(instance_, &c.call, outputs, 1, err->get());
  }

  llmsys_status_t Backward(const DLTensor* x, const DLTensor* grad_out,
                           DLTensor* grad_x, ErrorBuffer* err) {
    Call c(x);
    const DLTensor* outputs[] = {nullptr};  // not kept: NEEDS_INPUTS only
    const DLTensor* grad_outputs[] = {grad_out};
    DLTensor* grad_inputs[] = {grad_x};
    return api_->backward(instance_, &c.call, outputs, grad_outputs, 1,
                          grad_inputs, err->get());
  }

  std::shared_ptr<runtime::Plugin> plugin_;
  const runtime::Component* component_ = nullptr;
  const llmsys_operator_t* api_ = nullptr;
  void* instance_ = nullptr;
};

TEST_F(ReluTemplateTest, ImplementsTheReluContractWithBackward) {
  EXPECT_EQ(plugin_->id(), "llmsys.template");
  EXPECT_EQ(component_->op, "relu");
  EXPECT_EQ(component_->device_type, kDLCPU);
  EXPECT_EQ(api_->flags, LLMSYS_OP_BACKWARD_NEEDS_INPUTS);
  EXPECT_NE(api_->backward, nullptr);
}

// An odd-sized (3, 5) input: the output spec is its shape and dtype, and
// the values are max(x, 0) (0 at x == 0 and at -0.0).
TEST_F(ReluTemplateTest, ForwardIsMaxOfXAndZero) {
  TestTensor<float> x({3, 5}, {-2.0f, -0.5f, 0.0f, 0.5f, 2.0f,       //
                               -0.0f, 1e-30f, -1e-30f, 3.0f, -3.0f,  //
                               100.0f, -100.0f, 0.25f, -0.25f, 7.0f});
  llmsys_tensor_spec_t spec{};
  ErrorBuffer err;
  ASSERT_EQ(Infer(x.dl(), &spec, &err), LLMSYS_STATUS_OK) << err.message();
  EXPECT_EQ(spec.ndim, 2);
  EXPECT_EQ(spec.shape[0], 3);
  EXPECT_EQ(spec.shape[1], 5);
  EXPECT_TRUE(llmsys_dtype_equal(spec.dtype, LLMSYS_DTYPE_F32));

  TestTensor<float> out({3, 5}, std::vector<float>(15, -1.0f));
  ASSERT_EQ(Forward(x.dl(), out.dl(), &err), LLMSYS_STATUS_OK) << err.message();
  for (size_t i = 0; i < 15; ++i) {
    const float expected = x[i] > 0.0f ? x[i] : 0.0f;
    EXPECT_EQ(out[i], expected) << "element " << i << ", x = " << x[i];
    EXPECT_FALSE(std::signbit(out[i])) << "element " << i;
  }
}

TEST_F(ReluTemplateTest, NaNPassesThroughAsInTorch) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  TestTensor<float> x({2}, {nan, -1.0f});
  TestTensor<float> out({2}, {0.0f, 5.0f});
  ErrorBuffer err;
  ASSERT_EQ(Forward(x.dl(), out.dl(), &err), LLMSYS_STATUS_OK) << err.message();
  EXPECT_TRUE(std::isnan(out[0]));
  EXPECT_EQ(out[1], 0.0f);
}

// dx = dy where x > 0, else 0 (the gradient at x == 0 is 0, as in PyTorch).
TEST_F(ReluTemplateTest, BackwardIsTheAnalyticGradient) {
  TestTensor<float> x({7}, {-3.0f, -1.0f, 0.0f, 0.5f, 1.0f, 2.0f, -0.1f});
  TestTensor<float> dy({7}, {1.0f, 2.0f, 3.0f, 4.0f, -5.0f, 6.0f, 7.0f});
  TestTensor<float> dx({7}, std::vector<float>(7, 99.0f));
  ErrorBuffer err;
  ASSERT_EQ(Backward(x.dl(), dy.dl(), dx.dl(), &err), LLMSYS_STATUS_OK)
      << err.message();
  EXPECT_EQ(dx.values(), (std::vector<float>{0, 0, 0, 4, -5, 6, 0}));

  // A NULL output gradient means zero: dx is overwritten with zeros.
  TestTensor<float> dx2({7}, std::vector<float>(7, 99.0f));
  ASSERT_EQ(Backward(x.dl(), nullptr, dx2.dl(), &err), LLMSYS_STATUS_OK)
      << err.message();
  EXPECT_EQ(dx2.values(), std::vector<float>(7, 0.0f));

  // A NULL input gradient means x needs none: nothing to do.
  EXPECT_EQ(Backward(x.dl(), dy.dl(), nullptr, &err), LLMSYS_STATUS_OK)
      << err.message();
}

// Backward against central differences of forward, for the loss
// L = sum(w * relu(x)); every x is at least 0.1 away from the kink, so the
// differences with h = 1e-2 are exact up to float32 rounding.
TEST_F(ReluTemplateTest, BackwardMatchesCentralDifferences) {
  const std::vector<float> x0 = {-1.3f, -0.2f, 0.1f, 0.7f, 2.5f};
  const std::vector<float> w = {0.3f, -1.1f, 2.0f, 0.5f, -0.7f};
  const int64_t n = static_cast<int64_t>(x0.size());
  auto loss = [&](const std::vector<float>& xs) {
    TestTensor<float> x({n}, xs);
    TestTensor<float> out({n}, std::vector<float>(x0.size(), 0.0f));
    ErrorBuffer err;
    EXPECT_EQ(Forward(x.dl(), out.dl(), &err), LLMSYS_STATUS_OK)
        << err.message();
    double l = 0.0;
    for (size_t i = 0; i < xs.size(); ++i) l += double{w[i]} * out[i];
    return l;
  };
  TestTensor<float> x({n}, x0);
  TestTensor<float> dy({n}, w);
  TestTensor<float> dx({n}, std::vector<float>(x0.size(), 0.0f));
  ErrorBuffer err;
  ASSERT_EQ(Backward(x.dl(), dy.dl(), dx.dl(), &err), LLMSYS_STATUS_OK)
      << err.message();
  const float h = 1e-2f;
  for (size_t i = 0; i < x0.size(); ++i) {
    std::vector<float> plus = x0, minus = x0;
    plus[i] += h;
    minus[i] -= h;
    const double numeric =
        (loss(plus) - loss(minus)) / (double{plus[i]} - double{minus[i]});
    EXPECT_NEAR(dx[i], numeric, 1e-4)
        << "element " << i << " (x = " << x0[i] << ")";
  }
}

TEST_F(ReluTemplateTest, WrongDtypeIsInvalidArgument) {
  TestTensor<double> x({2}, {1.0, -1.0});
  llmsys_tensor_spec_t spec{};
  ErrorBuffer err;
  EXPECT_EQ(Infer(x.dl(), &spec, &err), LLMSYS_STATUS_INVALID_ARGUMENT);
  EXPECT_NE(err.message().find("float32"), std::string::npos) << err.message();
  EXPECT_NE(err.message().find("relu.template: x"), std::string::npos)
      << err.message();
  EXPECT_NE(err.message().find("got float64"), std::string::npos)
      << err.message();

  TestTensor<double> out({2}, {0.0, 0.0});
  ErrorBuffer err2;
  EXPECT_EQ(Forward(x.dl(), out.dl(), &err2), LLMSYS_STATUS_INVALID_ARGUMENT);

  // A float32 input with a gradient of the wrong shape.
  TestTensor<float> xf({2}, {1.0f, -1.0f});
  TestTensor<float> dy({3}, {1.0f, 1.0f, 1.0f});
  TestTensor<float> dx({2}, {0.0f, 0.0f});
  ErrorBuffer err3;
  EXPECT_EQ(Backward(xf.dl(), dy.dl(), dx.dl(), &err3),
            LLMSYS_STATUS_INVALID_ARGUMENT);
  EXPECT_NE(err3.message().find("(3)"), std::string::npos) << err3.message();
}

}  // namespace
}  // namespace llmsys::plugins_test
