// Tests of the built-in sampler "greedy" (plugins/samplers), loaded from the
// built samplers.so and called through the C ABI as the host calls it.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "framework/runtime/param_schema.h"
#include "framework/runtime/plugin.h"
#include "llmsys/plugin.h"
#include "tests/plugins/plugin_test_util.h"

namespace llmsys::plugins_test {
namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr float kInf = std::numeric_limits<float>::infinity();

class GreedyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    plugin_ = LoadBuiltinPlugin("samplers.so");
    ASSERT_NE(plugin_, nullptr);
    component_ = plugin_->FindComponent(LLMSYS_KIND_SAMPLER, "greedy");
    ASSERT_NE(component_, nullptr);
    api_ = component_->As<llmsys_sampler_t>();
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

  llmsys_status_t Sample(DLTensor* logits, DLTensor* tokens, ErrorBuffer* err) {
    llmsys_call_context_t ctx = CpuContext();
    llmsys_sample_args_t args{};
    args.struct_size = sizeof(args);
    args.ctx = &ctx;
    args.logits = logits;
    args.history = nullptr;
    args.tokens = tokens;
    return api_->sample(instance_, &args, err->get());
  }

  std::shared_ptr<runtime::Plugin> plugin_;
  const runtime::Component* component_ = nullptr;
  const llmsys_sampler_t* api_ = nullptr;
  void* instance_ = nullptr;
};

TEST_F(GreedyTest, DescribesItself) {
  EXPECT_EQ(plugin_->id(), "llmsys.samplers");
  EXPECT_EQ(component_->device_type, kDLCPU);
  // One parameter, off by default (sampling_test.cc tests its effect).
  ASSERT_EQ(component_->params.size(), 1u);
  EXPECT_EQ(component_->params[0].name, "repetition_penalty");
  EXPECT_EQ(std::get<double>(*component_->params[0].default_value), 1.0);
}

TEST_F(GreedyTest, PicksTheLargestLogitOfEachRow) {
  // (B, V) = (3, 5)
  TestTensor<float> logits({3, 5}, {0.1f, 2.0f, -1.0f, 0.5f, 1.9f,      //
                                    -3.0f, -2.0f, -1.0f, -4.0f, -5.0f,  //
                                    0.0f, 0.0f, 0.0f, 0.0f, 7.5f});
  TestTensor<int64_t> tokens({3}, {-1, -1, -1});
  ErrorBuffer err;
  ASSERT_EQ(Sample(logits.dl(), tokens.dl(), &err), LLMSYS_STATUS_OK)
      << err.message();
  EXPECT_EQ(tokens.values(), (std::vector<int64_t>{1, 2, 4}));
}

// Ties go to the lowest index, as torch.argmax does: a row of equal values,
// a tie between two maxima, and infinities.
TEST_F(GreedyTest, TiesGoToTheLowestIndex) {
  TestTensor<float> logits({4, 4}, {1.0f, 1.0f, 1.0f, 1.0f,      //
                                    0.0f, 3.0f, -1.0f, 3.0f,     //
                                    -kInf, -kInf, -kInf, -kInf,  //
                                    kInf, 2.0f, kInf, 1.0f});
  TestTensor<int64_t> tokens({4}, {-1, -1, -1, -1});
  ErrorBuffer err;
  ASSERT_EQ(Sample(logits.dl(), tokens.dl(), &err), LLMSYS_STATUS_OK)
      << err.message();
  EXPECT_EQ(tokens.values(), (std::vector<int64_t>{0, 1, 0, 0}));
}

TEST_F(GreedyTest, NaNIsAnErrorNamingTheRowAndLeavesTokensAlone) {
  TestTensor<float> logits({3, 3}, {1.0f, 2.0f, 3.0f,  //
                                    0.0f, kNaN, 1.0f,  //
                                    3.0f, 2.0f, 1.0f});
  TestTensor<int64_t> tokens({3}, {-1, -1, -1});
  ErrorBuffer err;
  EXPECT_EQ(Sample(logits.dl(), tokens.dl(), &err),
            LLMSYS_STATUS_INVALID_ARGUMENT);
  EXPECT_NE(err.message().find("row 1"), std::string::npos) << err.message();
  EXPECT_NE(err.message().find("NaN"), std::string::npos) << err.message();
  EXPECT_EQ(tokens.values(), (std::vector<int64_t>{-1, -1, -1}));
}

// The last position of (B, T, V) logits, viewed without a copy: (B, V) with
// strides (T * V, 1) and an offset of (T - 1) * V elements.
TEST_F(GreedyTest, ReadsAStridedView) {
  const int64_t batch = 2, time = 3, vocab = 4;
  std::vector<float> storage(batch * time * vocab, 0.0f);
  storage[(0 * time + 2) * vocab + 3] = 5.0f;  // row 0, last position
  storage[(0 * time + 1) * vocab + 1] = 9.0f;  // row 0, not the last position
  storage[(1 * time + 2) * vocab + 2] = 1.0f;  // row 1, last position
  int64_t shape[] = {batch, vocab};
  int64_t strides[] = {time * vocab, 1};
  DLTensor logits{};
  logits.data = storage.data();
  logits.device = DLDevice{kDLCPU, 0};
  logits.ndim = 2;
  logits.dtype = LLMSYS_DTYPE_F32;
  logits.shape = shape;
  logits.strides = strides;
  logits.byte_offset = (time - 1) * vocab * sizeof(float);
  TestTensor<int64_t> tokens({batch}, {-1, -1});
  ErrorBuffer err;
  ASSERT_EQ(Sample(&logits, tokens.dl(), &err), LLMSYS_STATUS_OK)
      << err.message();
  EXPECT_EQ(tokens.values(), (std::vector<int64_t>{3, 2}));
}

TEST_F(GreedyTest, RejectsBadShapesAndDtypes) {
  TestTensor<float> logits({2, 3}, {0, 1, 2, 3, 4, 5});
  TestTensor<int64_t> three_tokens({3}, {0, 0, 0});
  ErrorBuffer err;
  EXPECT_EQ(Sample(logits.dl(), three_tokens.dl(), &err),
            LLMSYS_STATUS_INVALID_ARGUMENT);
  EXPECT_NE(err.message().find("(2, 3)"), std::string::npos) << err.message();

  TestTensor<int32_t> int32_tokens({2}, {0, 0});
  ErrorBuffer err2;
  EXPECT_EQ(Sample(logits.dl(), int32_tokens.dl(), &err2),
            LLMSYS_STATUS_INVALID_ARGUMENT);
  EXPECT_NE(err2.message().find("int64"), std::string::npos) << err2.message();

  TestTensor<double> f64_logits({2, 3}, {0, 1, 2, 3, 4, 5});
  TestTensor<int64_t> tokens({2}, {0, 0});
  ErrorBuffer err3;
  EXPECT_EQ(Sample(f64_logits.dl(), tokens.dl(), &err3),
            LLMSYS_STATUS_INVALID_ARGUMENT);
  EXPECT_NE(err3.message().find("float32"), std::string::npos)
      << err3.message();

  TestTensor<float> empty_vocab({2, 0}, {});
  ErrorBuffer err4;
  EXPECT_EQ(Sample(empty_vocab.dl(), tokens.dl(), &err4),
            LLMSYS_STATUS_INVALID_ARGUMENT);
}

}  // namespace
}  // namespace llmsys::plugins_test
