// ABI stability: a plugin compiled against the frozen ABI 1.0 headers
// (tests/abi/v1_0/, plugin v1_0_plugin.cc) loads into the current host, which
// sees ABI 1.0, and every component works as it did: the operator passes the
// conformance suite, the optimizer's steps give the numbers of its rule, and
// a training run uses its model, operator, optimizer, sampler and evaluator
// together. (A plugin built against a newer minor than the host is refused:
// fixture newer_minor, tests/framework/runtime/plugin_test.cc.)
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "framework/conformance/conformance.h"
#include "framework/runtime/op_contract.h"
#include "framework/runtime/param_schema.h"
#include "framework/runtime/plugin.h"
#include "gtest/gtest.h"
#include "llmsys/plugin.h"
#include "nlohmann/json.hpp"
#include "tests/plugins/plugin_test_util.h"
#include "tests/tools/cli_test_util.h"

namespace llmsys {
namespace {

namespace fs = std::filesystem;
using plugins_test::ErrorBuffer;
using plugins_test::TestTensor;

const std::string kPluginDir = std::string(LLMSYS_TEST_PLUGIN_DIR) + "/v1_0";

std::shared_ptr<runtime::Plugin> LoadV10() {
  absl::StatusOr<std::shared_ptr<runtime::Plugin>> p =
      runtime::Plugin::Load(kPluginDir + "/v1_0.so");
  EXPECT_TRUE(p.ok()) << p.status();
  return p.ok() ? *std::move(p) : nullptr;
}

TEST(AbiV10Test, APluginBuiltAgainstTheFrozenHeadersLoadsAsAbi10) {
  std::shared_ptr<runtime::Plugin> plugin = LoadV10();
  ASSERT_NE(plugin, nullptr);
  EXPECT_EQ(plugin->id(), "test.v1_0");
  EXPECT_EQ(plugin->abi_major(), 1u);
  EXPECT_EQ(plugin->abi_minor(), 0u);
  EXPECT_EQ(plugin->abi(), "1.0");
  EXPECT_GT(LLMSYS_ABI_VERSION_MINOR, 0) << "the host should be newer than 1.0";
  std::vector<std::string> ids;
  for (const runtime::Component& c : plugin->components()) ids.push_back(c.id);
  EXPECT_EQ(ids.size(), 5u);
  for (const char* id :
       {"relu.v1_0", "sgd_v1_0", "greedy_v1_0", "match_v1_0", "bigram_v1_0"})
    EXPECT_NE(std::find(ids.begin(), ids.end(), id), ids.end()) << id;
}

TEST(AbiV10Test, ItsOperatorPassesTheConformanceSuite) {
  std::shared_ptr<runtime::Plugin> plugin = LoadV10();
  ASSERT_NE(plugin, nullptr);
  absl::StatusOr<std::shared_ptr<runtime::Plugin>> reference =
      runtime::Plugin::Load(std::string(LLMSYS_BUILTIN_PLUGIN_DIR) +
                            "/reference.so");
  ASSERT_TRUE(reference.ok()) << reference.status();
  const runtime::Component* relu =
      plugin->FindComponent(LLMSYS_KIND_OPERATOR, "relu.v1_0");
  const runtime::Component* oracle =
      (*reference)->FindComponent(LLMSYS_KIND_OPERATOR, "relu.reference");
  ASSERT_NE(relu, nullptr);
  ASSERT_NE(oracle, nullptr);
  const runtime::OpContract* contract = nullptr;
  for (const runtime::OpContract& c : runtime::StandardOpContracts())
    if (c.name == "relu") contract = &c;
  ASSERT_NE(contract, nullptr);
  const conformance::OpReport r =
      conformance::CheckOperator(*relu, *oracle, *contract);
  EXPECT_TRUE(r.passed()) << (r.failures.empty() ? "" : r.failures[0]);
  EXPECT_GT(r.cases, 0);
  EXPECT_TRUE(r.float64);
  EXPECT_GE(r.gradcheck_error, 0.0);  // the gradient check ran
  EXPECT_LT(r.gradcheck_error, 1e-6);
}

// Two steps of p -= lr * buf, buf = momentum * buf + g with momentum 0.5,
// lr 0.1, g = (0.5, 1): buf (0.5, 1) then (0.75, 1.5).
TEST(AbiV10Test, ItsOptimizerStepsGiveTheNumbersOfItsRule) {
  std::shared_ptr<runtime::Plugin> plugin = LoadV10();
  ASSERT_NE(plugin, nullptr);
  const runtime::Component* c =
      plugin->FindComponent(LLMSYS_KIND_OPTIMIZER, "sgd_v1_0");
  ASSERT_NE(c, nullptr);
  const llmsys_optimizer_t* api = c->As<llmsys_optimizer_t>();
  absl::StatusOr<runtime::ParamPack> pack =
      runtime::ParamPack::Make(c->params, {{"momentum", 0.5}});
  ASSERT_TRUE(pack.ok()) << pack.status();
  ErrorBuffer err;
  void* instance = nullptr;
  ASSERT_EQ(api->create(pack->c_params(), &instance, err.get()),
            LLMSYS_STATUS_OK)
      << err.message();
  const llmsys_state_spec_t* const* specs = nullptr;
  uint32_t num_state = 0;
  ASSERT_EQ(api->state(instance, &specs, &num_state, err.get()),
            LLMSYS_STATUS_OK);
  ASSERT_EQ(num_state, 1u);
  EXPECT_STREQ(specs[0]->name, "momentum_buffer");
  EXPECT_TRUE(llmsys_dtype_equal(specs[0]->dtype, LLMSYS_DTYPE_F64));

  TestTensor<float> p({2}, {1.0f, -2.0f});
  TestTensor<float> g({2}, {0.5f, 1.0f});
  TestTensor<double> buf({2}, {0.0, 0.0});
  llmsys_call_context_t ctx = plugins_test::CpuContext();
  DLTensor* params[] = {p.dl()};
  const DLTensor* grads[] = {g.dl()};
  DLTensor* state[] = {buf.dl()};
  llmsys_optimizer_step_t args{};
  args.struct_size = sizeof(args);
  args.ctx = &ctx;
  args.num_params = 1;
  args.params = params;
  args.grads = grads;
  args.state = state;
  args.num_state = 1;
  args.lr = 0.1;
  const std::vector<std::vector<double>> want_p = {{0.95, -2.1},
                                                   {0.875, -2.25}};
  const std::vector<std::vector<double>> want_buf = {{0.5, 1.0}, {0.75, 1.5}};
  for (int step = 1; step <= 2; ++step) {
    args.step = step;
    ASSERT_EQ(api->step(instance, &args, err.get()), LLMSYS_STATUS_OK)
        << err.message();
    for (size_t i = 0; i < 2; ++i) {
      EXPECT_NEAR(p[i], want_p[step - 1][i], 1e-6) << "step " << step;
      EXPECT_DOUBLE_EQ(buf[i], want_buf[step - 1][i]) << "step " << step;
    }
  }
  api->destroy(instance);
}

std::string Read(const fs::path& file) {
  std::ifstream in(file);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// `llmsys run` with every component of the 1.0 plugin swapped in: its model
// built through the host's graph functions, its relu serving the model's
// relu calls, its optimizer, its sampler for the samples and its evaluator.
TEST(AbiV10Test, ATrainingRunUsesEveryComponentOfThePlugin) {
  const fs::path dir = fs::path(::testing::TempDir()) / "abi_v1_0_run";
  fs::remove_all(dir);
  fs::create_directories(dir);
  {
    std::ifstream in(std::string(LLMSYS_SOURCE_DIR) +
                     "/data/tinyshakespeare/input.txt");
    std::string text(5000, '\0');
    in.read(text.data(), static_cast<std::streamsize>(text.size()));
    ASSERT_EQ(in.gcount(), 5000);
    std::ofstream(dir / "tiny.txt") << text;
  }
  std::ofstream(dir / "v1_0.toml") << R"([experiment]
name = "v1_0"
seed = 3
output = ")" << (dir / "runs").string()
                                   << R"("
[data]
train = "tiny.txt"
tokenizer = "char"
[model]
use = "bigram_v1_0"
n_embd = 16
[ops]
relu = "v1_0"
[optimizer]
use = "sgd_v1_0"
momentum = 0.9
[schedule]
lr = 0.5
[train]
steps = 20
batch_size = 8
block_size = 16
log_every = 1
eval_every = 20
eval_batches = 2
threads = 1
[generate]
sampler = "greedy_v1_0"
max_tokens = 20
[[evaluate]]
use = "match_v1_0"
segments = 3
prompt_tokens = 4
max_tokens = 4
)";
  cli_test::Result r = cli_test::RunLlmsys(
      "run " + (dir / "v1_0.toml").string() + " --plugin-dir " + kPluginDir);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const fs::path run = dir / "runs" / "v1_0";
  const nlohmann::json summary =
      nlohmann::json::parse(Read(run / "summary.json"));
  EXPECT_EQ(summary.at("model"), "bigram_v1_0");
  EXPECT_EQ(summary.at("optimizer"), "sgd_v1_0");
  int64_t relu_calls = 0;
  for (const nlohmann::json& op : summary.at("ops"))
    if (op.at("implementation") == "relu.v1_0")
      relu_calls = op.at("calls").get<int64_t>();
  EXPECT_GT(relu_calls, 0) << summary.dump(2);
  ASSERT_EQ(summary.at("evaluations").size(), 1u);
  EXPECT_EQ(summary.at("evaluations")[0].at("evaluator"), "match_v1_0");
  EXPECT_EQ(summary.at("evaluations")[0].at("metrics").at("segments"), 3);
  EXPECT_FALSE(Read(run / "samples.txt").empty());
  // The loss falls: the model, the operator's backward and the optimizer
  // work together.
  std::ifstream metrics(run / "metrics.jsonl");
  std::string line;
  double first = -1;
  while (std::getline(metrics, line)) {
    const nlohmann::json m = nlohmann::json::parse(line);
    if (m.contains("loss") && first < 0) first = m.at("loss").get<double>();
  }
  const double last = summary.at("train_loss").get<double>();
  ASSERT_GT(first, 0);
  EXPECT_TRUE(std::isfinite(last));
  EXPECT_LT(last, first - 0.1) << "first " << first << ", last " << last;
}

}  // namespace
}  // namespace llmsys
