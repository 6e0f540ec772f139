// Tests of the built-in evaluator "accuracy" (plugins/evaluators), loaded
// from the built evaluators.so and called through the C ABI as the host
// calls it: create, add() per batch, result() once.
#include <gtest/gtest.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "framework/runtime/param_schema.h"
#include "framework/runtime/plugin.h"
#include "llmsys/plugin.h"
#include "tests/plugins/plugin_test_util.h"

namespace llmsys::plugins_test {
namespace {

using Overrides = std::vector<std::pair<std::string, runtime::ParamValue>>;

struct Result {
  llmsys_status_t status = LLMSYS_STATUS_UNKNOWN;
  std::map<std::string, double> metrics;
  std::vector<std::string> order;  // names in the order emitted
  std::string signature;
};

class AccuracyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    plugin_ = LoadBuiltinPlugin("evaluators.so");
    ASSERT_NE(plugin_, nullptr);
    component_ = plugin_->FindComponent(LLMSYS_KIND_EVALUATOR, "accuracy");
    ASSERT_NE(component_, nullptr);
    api_ = component_->As<llmsys_evaluator_t>();
  }
  void TearDown() override {
    if (instance_ != nullptr) api_->destroy(instance_);
  }

  void Create(const Overrides& overrides = {}) {
    absl::StatusOr<runtime::ParamPack> pack =
        runtime::ParamPack::Make(component_->params, overrides);
    ASSERT_TRUE(pack.ok()) << pack.status();
    ErrorBuffer err;
    ASSERT_EQ(api_->create(pack->c_params(), &instance_, err.get()),
              LLMSYS_STATUS_OK)
        << err.message();
  }

  llmsys_status_t Add(uint32_t count, const DLTensor* predictions,
                      const DLTensor* labels, ErrorBuffer* err) {
    llmsys_eval_batch_t batch{};
    batch.struct_size = sizeof(batch);
    batch.count = count;
    batch.predictions = predictions;
    batch.labels = labels;
    return api_->add(instance_, &batch, err->get());
  }

  // add() with two int64 vectors of equal length; fails the test on error.
  void AddOk(std::vector<int64_t> predictions, std::vector<int64_t> labels) {
    // Sizes first: the constructors' arguments are evaluated in any order.
    const int64_t n = static_cast<int64_t>(predictions.size());
    const int64_t m = static_cast<int64_t>(labels.size());
    TestTensor<int64_t> p({n}, std::move(predictions));
    TestTensor<int64_t> l({m}, std::move(labels));
    ErrorBuffer err;
    EXPECT_EQ(Add(static_cast<uint32_t>(n), p.dl(), l.dl(), &err),
              LLMSYS_STATUS_OK)
        << err.message();
  }

  Result GetResult() {
    Result r;
    llmsys_metric_sink_t sink{};
    sink.struct_size = sizeof(sink);
    sink.data = &r;
    sink.emit = [](void* data, const char* name, double value) {
      auto* out = static_cast<Result*>(data);
      out->metrics[name] = value;
      out->order.push_back(name);
    };
    char signature[256] = {};
    ErrorBuffer err;
    r.status =
        api_->result(instance_, &sink, signature, sizeof(signature), err.get());
    EXPECT_EQ(r.status, LLMSYS_STATUS_OK) << err.message();
    r.signature = signature;
    return r;
  }

  std::shared_ptr<runtime::Plugin> plugin_;
  const runtime::Component* component_ = nullptr;
  const llmsys_evaluator_t* api_ = nullptr;
  void* instance_ = nullptr;
};

TEST_F(AccuracyTest, DescribesItself) {
  EXPECT_EQ(plugin_->id(), "llmsys.evaluators");
  EXPECT_EQ(api_->inputs, LLMSYS_EVAL_PREDICTIONS);
  ASSERT_EQ(component_->params.size(), 1u);
  EXPECT_EQ(component_->params[0].name, "ignore_index");
  ASSERT_TRUE(component_->params[0].default_value.has_value());
  EXPECT_EQ(*component_->params[0].default_value,
            runtime::ParamValue(int64_t{-100}));
}

// Two batches accumulate; labels of -100 (the default ignore_index) count
// in neither total nor correct, even when the prediction equals them.
TEST_F(AccuracyTest, AccumulatesBatchesAndSkipsIgnoredLabels) {
  Create();
  AddOk({1, 2, 3, 4}, {1, 0, 3, -100});  // 2 of 3 counted
  AddOk({5, -100, 7}, {5, -100, 8});     // 1 of 2 counted
  Result r = GetResult();
  EXPECT_EQ(r.order,
            (std::vector<std::string>{"accuracy", "correct", "total"}));
  EXPECT_EQ(r.metrics["correct"], 3.0);
  EXPECT_EQ(r.metrics["total"], 5.0);
  EXPECT_DOUBLE_EQ(r.metrics["accuracy"], 0.6);
  EXPECT_EQ(r.signature, "ignore_index:-100|version:1.0.0");
}

TEST_F(AccuracyTest, IgnoreIndexIsConfigurable) {
  Create({{"ignore_index", int64_t{0}}});
  // Label 0 is skipped now; -100 is an ordinary (wrongly predicted) label.
  AddOk({0, 1, 2, 3}, {0, 1, 9, -100});
  Result r = GetResult();
  EXPECT_EQ(r.metrics["correct"], 1.0);
  EXPECT_EQ(r.metrics["total"], 3.0);
  EXPECT_DOUBLE_EQ(r.metrics["accuracy"], 1.0 / 3.0);
  EXPECT_EQ(r.signature, "ignore_index:0|version:1.0.0");
}

TEST_F(AccuracyTest, EmptyInputGivesZeroNotNaN) {
  Create();
  Result r = GetResult();
  EXPECT_EQ(r.metrics["accuracy"], 0.0);
  EXPECT_EQ(r.metrics["total"], 0.0);

  // A batch of only ignored labels, and an empty batch, change nothing.
  AddOk({3, 4}, {-100, -100});
  AddOk({}, {});
  r = GetResult();
  EXPECT_EQ(r.metrics["accuracy"], 0.0);
  EXPECT_EQ(r.metrics["correct"], 0.0);
  EXPECT_EQ(r.metrics["total"], 0.0);
}

TEST_F(AccuracyTest, RejectsMismatchedLengthsAndCountsNothing) {
  Create();
  TestTensor<int64_t> predictions({3}, {1, 2, 3});
  TestTensor<int64_t> labels({2}, {1, 2});
  ErrorBuffer err;
  EXPECT_EQ(Add(3, predictions.dl(), labels.dl(), &err),
            LLMSYS_STATUS_INVALID_ARGUMENT);
  EXPECT_NE(err.message().find("labels"), std::string::npos) << err.message();
  EXPECT_NE(err.message().find("(3)"), std::string::npos) << err.message();
  EXPECT_NE(err.message().find("(2)"), std::string::npos) << err.message();
  Result r = GetResult();
  EXPECT_EQ(r.metrics["total"], 0.0);
}

TEST_F(AccuracyTest, RejectsMissingWrongDtypeAndWrongRankInputs) {
  Create();
  TestTensor<int64_t> predictions({2}, {1, 2});
  ErrorBuffer err;
  EXPECT_EQ(Add(2, predictions.dl(), nullptr, &err),
            LLMSYS_STATUS_INVALID_ARGUMENT);
  EXPECT_NE(err.message().find("labels is NULL"), std::string::npos)
      << err.message();

  TestTensor<int32_t> int32_labels({2}, {1, 2});
  ErrorBuffer err2;
  EXPECT_EQ(Add(2, predictions.dl(), int32_labels.dl(), &err2),
            LLMSYS_STATUS_INVALID_ARGUMENT);
  EXPECT_NE(err2.message().find("int64"), std::string::npos) << err2.message();

  TestTensor<int64_t> matrix({1, 2}, {1, 2});
  ErrorBuffer err3;
  EXPECT_EQ(Add(2, matrix.dl(), predictions.dl(), &err3),
            LLMSYS_STATUS_INVALID_ARGUMENT);
  EXPECT_NE(err3.message().find("predictions"), std::string::npos)
      << err3.message();
}

}  // namespace
}  // namespace llmsys::plugins_test
