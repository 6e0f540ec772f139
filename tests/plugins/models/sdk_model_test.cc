// Tests of the SDK's model-building section (abi/llmsys/sdk.hpp: Value,
// its operators and views, the op wrappers, CallOp, constants, parameters,
// inputs and outputs), through a fixture model plugin (sdk_values_model.cc)
// run on the reference operators: each output is checked by value, the
// handle counts balance, and host errors reach the caller intact.
#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "tests/plugins/models/model_harness.h"

namespace llmsys::models_test {
namespace {

using D = std::vector<double>;

class SdkModelTest : public ::testing::Test {
 protected:
  ForwardResult Run(const std::string& fail = "none") {
    run_ = std::make_unique<ModelRun>("sdk_values",
                                      Overrides{{"fail", std::string(fail)}});
    EXPECT_EQ(run_->Create(), LLMSYS_STATUS_OK) << run_->message();
    return run_->Forward(
        {{"x", MakeTensor({2, 3}, {1, 2, 3, 4, 5, 6}, tensor::kF64)}},
        LLMSYS_MODE_EVAL);
  }
  std::unique_ptr<ModelRun> run_;
};

void ExpectNear(const D& actual, const D& expected, const std::string& what) {
  ASSERT_EQ(actual.size(), expected.size()) << what;
  for (size_t i = 0; i < expected.size(); ++i)
    EXPECT_NEAR(actual[i], expected[i], 1e-9) << what << " [" << i << "]";
}

TEST_F(SdkModelTest, OperatorsViewsAndOpsComputeWhatTheySay) {
  ForwardResult r = Run();
  ASSERT_EQ(r.status, LLMSYS_STATUS_OK) << r.message;
  EXPECT_EQ(r.leaked_handles, 0) << "the SDK leaked value handles";
  auto values = [&](const std::string& name) {
    EXPECT_TRUE(r.outputs.count(name)) << name;
    return r.outputs.count(name) ? r.outputs[name]->data.ToDoubles() : D{};
  };
  auto shape = [&](const std::string& name) {
    return r.outputs.count(name) ? r.outputs[name]->data.shape()
                                 : tensor::Shape{};
  };
  const D x = {1, 2, 3, 4, 5, 6};
  auto map = [&](double (*f)(double)) {
    D y;
    for (double v : x) y.push_back(f(v));
    return y;
  };
  ExpectNear(values("add"), {2, 4, 6, 8, 10, 12}, "add");
  ExpectNear(values("add_scalar"), {3, 4, 5, 6, 7, 8}, "add_scalar");
  ExpectNear(values("scalar_sub"), {0, -1, -2, -3, -4, -5}, "scalar_sub");
  ExpectNear(values("mul"), {1, 4, 9, 16, 25, 36}, "mul");
  ExpectNear(values("scalar_mul"), {3, 6, 9, 12, 15, 18}, "scalar_mul");
  ExpectNear(values("div"), {0.5, 1, 1.5, 2, 2.5, 3}, "div");
  ExpectNear(values("scalar_div"), {6, 3, 2, 1.5, 1.2, 1}, "scalar_div");
  ExpectNear(values("sub"), {0.5, 1.5, 2.5, 3.5, 4.5, 5.5}, "sub");
  ExpectNear(values("neg"), {-1, -2, -3, -4, -5, -6}, "neg");
  ExpectNear(values("reshape"), x, "reshape");
  EXPECT_EQ(shape("reshape"), (tensor::Shape{3, 2}));
  EXPECT_EQ(shape("view"), (tensor::Shape{6}));
  ExpectNear(values("permute"), {1, 4, 2, 5, 3, 6}, "permute");
  ExpectNear(values("transpose"), {1, 4, 2, 5, 3, 6}, "transpose");
  ExpectNear(values("slice"), {1, 3, 4, 6}, "slice");
  ExpectNear(values("expand"), {4, 5, 6, 4, 5, 6, 4, 5, 6}, "expand");
  ExpectNear(values("detach"), x, "detach");
  EXPECT_FALSE(r.outputs["detach"]->requires_grad);
  ExpectNear(values("matmul_t"), {14, 32, 32, 77}, "matmul_t");
  ExpectNear(values("sum_rows"), {6, 15}, "sum_rows");
  EXPECT_EQ(shape("sum_rows"), (tensor::Shape{2, 1}));
  ExpectNear(values("mean_all"), {3.5}, "mean_all");
  ExpectNear(values("max_cols"), {4, 5, 6}, "max_cols");
  const double s = std::exp(1) + std::exp(2) + std::exp(3);
  const D sm = values("softmax");
  ExpectNear(D(sm.begin(), sm.begin() + 3),
             {std::exp(1) / s, std::exp(2) / s, std::exp(3) / s}, "softmax");
  const double lse0 = std::log(std::exp(1) + std::exp(4));
  EXPECT_NEAR(values("log_softmax")[0], 1 - lse0, 1e-9);
  ExpectNear(values("exp_log"), x, "exp_log");
  ExpectNear(values("sqrt_pow"), x, "sqrt_pow");
  ExpectNear(values("tanh"), map([](double v) { return std::tanh(v); }),
             "tanh");
  ExpectNear(values("sigmoid"),
             map([](double v) { return 1 / (1 + std::exp(-v)); }), "sigmoid");
  ExpectNear(values("relu"), {0, 0, 1, 2, 3, 4}, "relu");
  ExpectNear(values("gelu_tanh"), map([](double v) {
               return 0.5 * v *
                      (1 + std::tanh(std::sqrt(2 / M_PI) *
                                     (v + 0.044715 * v * v * v)));
             }),
             "gelu_tanh");
  EXPECT_EQ(shape("concat"), (tensor::Shape{4, 3}));
  ExpectNear(values("where"), {1, -2, 3, 4, 5, 6}, "where");
  ExpectNear(values("masked_fill"), {-1, 2, -1, -1, 5, -1}, "masked_fill");
  const D ln = values("layer_norm");
  EXPECT_NEAR(ln[0], -std::sqrt(1.5), 1e-4);
  EXPECT_NEAR(ln[1], 0, 1e-9);
  EXPECT_NEAR(values("rms_norm")[2], 3 / std::sqrt(14.0 / 3), 1e-6);
  ExpectNear(values("embedding"), {4, 5, 6, 4, 5, 6, 1, 2, 3}, "embedding");
  EXPECT_NEAR(values("cross_entropy")[0], std::log(s) - 3,
              1e-9);  // the second row is ignored
  ExpectNear(values("call_op"), {5, 7, 9}, "call_op");
  // Causal: row 0 attends to itself only, so its output is x[0].
  const D att = values("attention");
  ExpectNear(D(att.begin(), att.begin() + 3), {1, 2, 3}, "attention row 0");
  EXPECT_EQ(shape("attention"), (tensor::Shape{1, 1, 2, 3}));
  ExpectNear(values("shape"), {2, 3}, "shape");
  ExpectNear(values("size_last"), {3}, "size_last");
  ExpectNear(values("copy"), x, "copy");

  // The parameter and the buffer, declared with the SDK; the gradient of
  // sum(w * x) reaches w.
  const runtime::Parameter& w = run_->Param("w");
  EXPECT_EQ(w.flags, LLMSYS_PARAMETER_NO_DECAY);
  EXPECT_TRUE(tensor::kF64 == w.var->data.dtype());
  EXPECT_FALSE(run_->Param("cache").trainable);
  ExpectNear(values("loss"), {21}, "loss");
  ASSERT_TRUE(autograd::Backward(r.outputs["loss"]).ok());
  ExpectNear(w.var->grad.ToDoubles(), x, "d loss / d w");
}

TEST_F(SdkModelTest, HostErrorsComeBackIntact) {
  ForwardResult r = Run("unknown_op");
  EXPECT_EQ(r.status, LLMSYS_STATUS_NOT_FOUND);
  EXPECT_NE(r.message.find("did you mean 'softmax'"), std::string::npos)
      << r.message;
  EXPECT_EQ(r.leaked_handles, 0);

  r = Run("bad_shape");
  EXPECT_EQ(r.status, LLMSYS_STATUS_INVALID_ARGUMENT);
  EXPECT_NE(r.message.find("inner dims differ (K 3 vs 2)"), std::string::npos)
      << r.message;
  EXPECT_EQ(r.leaked_handles, 0);

  r = Run("null_value");
  EXPECT_EQ(r.status, LLMSYS_STATUS_FAILED_PRECONDITION);
  EXPECT_NE(r.message.find("exp: the first input is null"), std::string::npos)
      << r.message;
}

}  // namespace
}  // namespace llmsys::models_test
