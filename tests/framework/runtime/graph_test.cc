// The graph functions of the host API table, called as a model plugin calls
// them: constants, op calls, views, parameters, buffers, outputs, handle
// reference counts, and their errors.
#include "framework/runtime/graph.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "framework/runtime/registry.h"

namespace llmsys::runtime {
namespace {

using tensor::kF32;
using tensor::Shape;

class GraphTest : public ::testing::Test {
 protected:
  GraphTest()
      : ops_(&Registry(), tensor::kCpu),
        params_(/*seed=*/3, tensor::kCpu),
        graph_(&ops_, &params_),
        host_(Registry().plugins().front()->host_api()) {}

  static PluginRegistry& Registry() {
    static PluginRegistry* r = [] {
      auto* reg = new PluginRegistry;
      EXPECT_TRUE(reg->LoadFile(std::string(LLMSYS_BUILTIN_PLUGIN_DIR) +
                                "/reference.so")
                      .ok());
      return reg;
    }();
    return *r;
  }

  llmsys_value_t Constant(std::vector<float> v, Shape shape) {
    DLTensor t{v.data(),
               {kDLCPU, 0},
               static_cast<int32_t>(shape.size()),
               LLMSYS_DTYPE_F32,
               shape.data(),
               nullptr,
               0};
    llmsys_value_t out = nullptr;
    EXPECT_EQ(host_->value_from_tensor(host_, graph_.c(), &t, &out, Err()),
              LLMSYS_STATUS_OK)
        << message_;
    return out;
  }
  llmsys_value_t Param(const char* name, Shape shape, const char* init,
                       llmsys_status_t expect = LLMSYS_STATUS_OK) {
    llmsys_parameter_decl_t d{};
    d.struct_size = sizeof(d);
    d.name = name;
    d.ndim = static_cast<int32_t>(shape.size());
    d.shape = shape.data();
    d.dtype = LLMSYS_DTYPE_F32;
    d.init = init;
    d.init_a = 0;
    d.init_b = 1;
    llmsys_value_t out = nullptr;
    EXPECT_EQ(host_->declare_parameter(host_, graph_.c(), &d, &out, Err()),
              expect)
        << message_;
    return out;
  }
  std::vector<double> Values(llmsys_value_t v) {
    DLTensor view;
    EXPECT_EQ(host_->value_tensor(host_, v, &view, Err()), LLMSYS_STATUS_OK);
    return tensor::Tensor::CopyOf(view)->ToDoubles();
  }
  llmsys_error_t* Err() {
    message_[0] = '\0';
    err_ = {message_, sizeof(message_)};
    return &err_;
  }

  OpDispatcher ops_;
  ParameterStore params_;
  Graph graph_;
  const llmsys_host_api_t* host_;
  char message_[1024] = {};
  llmsys_error_t err_{};
};

TEST_F(GraphTest, OpCallsViewsAndOutputsThroughTheTable) {
  llmsys_value_t w = Param("w", {2, 3}, "normal");
  llmsys_value_t c = Constant({1, 2, 3, 4, 5, 6}, {3, 2});
  llmsys_value_t wt = nullptr;
  const int64_t perm[] = {1, 0};
  ASSERT_EQ(host_->value_view(host_, graph_.c(), LLMSYS_VIEW_PERMUTE, w, perm,
                              2, &wt, Err()),
            LLMSYS_STATUS_OK)
      << message_;
  llmsys_value_t prod = nullptr;
  llmsys_value_t in[] = {wt, c};
  ASSERT_EQ(
      host_->call_op(host_, graph_.c(), "mul", in, 2, nullptr, &prod, 1, Err()),
      LLMSYS_STATUS_OK)
      << message_;
  // sum over all dims, via an attribute list.
  llmsys_param_t keep{"keepdim", {}};
  keep.value.type = LLMSYS_TYPE_BOOL;
  keep.value.as.i = 0;
  llmsys_params_t attrs{&keep, 1};
  llmsys_value_t loss = nullptr;
  ASSERT_EQ(host_->call_op(host_, graph_.c(), "sum", &prod, 1, &attrs, &loss, 1,
                           Err()),
            LLMSYS_STATUS_OK)
      << message_;
  EXPECT_EQ(host_->set_output(host_, graph_.c(), "logits", prod, Err()),
            LLMSYS_STATUS_OK);
  EXPECT_EQ(host_->set_output(host_, graph_.c(), "loss", prod, Err()),
            LLMSYS_STATUS_INVALID_ARGUMENT);
  EXPECT_NE(std::string(message_).find("'loss' must be a scalar"),
            std::string::npos)
      << message_;
  ASSERT_EQ(host_->set_output(host_, graph_.c(), "loss", loss, Err()),
            LLMSYS_STATUS_OK);
  for (llmsys_value_t v : {w, c, wt, prod, loss})
    host_->value_release(host_, v);
  EXPECT_EQ(graph_.live_values(), 0);

  // The outputs outlive the handles; backward reaches the parameter.
  autograd::Var out = *graph_.Output("loss");
  ASSERT_TRUE(autograd::Backward(out).ok());
  const Parameter* p = params_.Find("w");
  ASSERT_NE(p, nullptr);
  // d(sum(w^T * c))/dw = c^T
  EXPECT_EQ(p->var->grad.ToDoubles(), (std::vector<double>{1, 3, 5, 2, 4, 6}));
  absl::StatusOr<autograd::Var> missing = graph_.Output("logts");
  EXPECT_TRUE(absl::IsNotFound(missing.status()));
  EXPECT_NE(missing.status().message().find("it set: logits, loss"),
            std::string::npos);
}

TEST_F(GraphTest, ParametersAreDeterministicAndRedeclarationIsChecked) {
  llmsys_value_t a = Param("a", {4}, "normal");
  llmsys_value_t u = Param("u", {1000}, "uniform");
  const std::vector<double> values = Values(a);
  ParameterStore other(/*seed=*/3, tensor::kCpu);
  Graph g2(&ops_, &other);
  llmsys_parameter_decl_t d{};
  d.struct_size = sizeof(d);
  d.name = "a";
  int64_t shape[] = {4};
  d.ndim = 1;
  d.shape = shape;
  d.dtype = LLMSYS_DTYPE_F32;
  d.init = "normal";
  d.init_b = 1;
  llmsys_value_t again = nullptr;
  ASSERT_EQ(host_->declare_parameter(host_, g2.c(), &d, &again, Err()),
            LLMSYS_STATUS_OK);
  EXPECT_EQ(Values(again), values);  // same seed and name: same values
  double lo = 1, hi = 0, mean = 0;
  for (double x : Values(u)) {
    lo = std::min(lo, x);
    hi = std::max(hi, x);
    mean += x / 1000;
  }
  EXPECT_GE(lo, 0);
  EXPECT_LT(hi, 1);
  EXPECT_NEAR(mean, 0.5, 0.05);

  llmsys_value_t same = Param("a", {4}, "normal");  // a lookup
  EXPECT_EQ(Values(same), values);
  Param("a", {5}, "normal", LLMSYS_STATUS_INVALID_ARGUMENT);
  EXPECT_NE(std::string(message_).find("declared again as float32 (5)"),
            std::string::npos)
      << message_;
  Param("b", {2}, "xavier", LLMSYS_STATUS_INVALID_ARGUMENT);
  EXPECT_NE(std::string(message_).find("unknown initializer 'xavier'"),
            std::string::npos)
      << message_;
  for (llmsys_value_t v : {a, u, again, same}) host_->value_release(host_, v);
}

TEST_F(GraphTest, BuffersAreZerosAndNotTrained) {
  llmsys_parameter_decl_t d{};
  d.struct_size = sizeof(d);
  d.name = "cache";
  int64_t shape[] = {2, 2};
  d.ndim = 2;
  d.shape = shape;
  d.dtype = LLMSYS_DTYPE_F32;
  llmsys_value_t b = nullptr;
  ASSERT_EQ(host_->declare_buffer(host_, graph_.c(), &d, &b, Err()),
            LLMSYS_STATUS_OK);
  EXPECT_EQ(Values(b), (std::vector<double>{0, 0, 0, 0}));
  EXPECT_FALSE(params_.Find("cache")->trainable);
  EXPECT_FALSE(b->var->requires_grad);
  host_->value_release(host_, b);
}

TEST_F(GraphTest, ErrorsComeBackAsStatusAndMessage) {
  llmsys_value_t x = Constant({1, 2}, {2});
  llmsys_value_t out = nullptr;
  EXPECT_EQ(host_->call_op(host_, graph_.c(), "softmx", &x, 1, nullptr, &out, 1,
                           Err()),
            LLMSYS_STATUS_NOT_FOUND);
  EXPECT_NE(std::string(message_).find("did you mean 'softmax'"),
            std::string::npos)
      << message_;
  llmsys_value_t outs[2];
  EXPECT_EQ(
      host_->call_op(host_, graph_.c(), "exp", &x, 1, nullptr, outs, 2, Err()),
      LLMSYS_STATUS_INVALID_ARGUMENT);
  EXPECT_NE(std::string(message_).find("the op has 1 outputs"),
            std::string::npos)
      << message_;
  const int64_t shape[] = {3};
  EXPECT_EQ(host_->value_view(host_, graph_.c(), LLMSYS_VIEW_RESHAPE, x, shape,
                              1, &out, Err()),
            LLMSYS_STATUS_INVALID_ARGUMENT);
  EXPECT_NE(std::string(message_).find("cannot reshape (2)"), std::string::npos)
      << message_;
  EXPECT_EQ(
      host_->call_op(host_, nullptr, "exp", &x, 1, nullptr, &out, 1, Err()),
      LLMSYS_STATUS_INVALID_ARGUMENT);
  Graph no_params(&ops_, nullptr);
  llmsys_parameter_decl_t d{};
  d.struct_size = sizeof(d);
  d.name = "w";
  EXPECT_EQ(host_->declare_parameter(host_, no_params.c(), &d, &out, Err()),
            LLMSYS_STATUS_FAILED_PRECONDITION);
  host_->value_release(host_, x);
  EXPECT_EQ(graph_.live_values(), 0);
}

}  // namespace
}  // namespace llmsys::runtime
