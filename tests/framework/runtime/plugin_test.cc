// The loader: each way a plugin file can be wrong gives a clear error that
// names the file and the reason, and the good plugins work through the C
// ABI, every kind of component included.
#include "framework/runtime/plugin.h"

#include <atomic>
#include <cstddef>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "framework/runtime/graph.h"
#include "framework/runtime/registry.h"
#include "gtest/gtest.h"
#include "llmsys/version.h"

namespace llmsys::runtime {
namespace {

std::string TestPlugin(const std::string& name) {
  return std::string(LLMSYS_TEST_PLUGIN_DIR) + "/" + name + "/" + name + ".so";
}

// Loads `file`, expects failure, returns the message (which must name it).
std::string LoadError(const std::string& file) {
  absl::StatusOr<std::shared_ptr<Plugin>> p = Plugin::Load(file);
  EXPECT_FALSE(p.ok()) << file;
  if (p.ok()) return "";
  std::string message(p.status().message());
  EXPECT_EQ(message.rfind(file, 0), 0u)
      << "message must start with the file: " << message;
  return message;
}

const Component& FindIn(const Plugin& p, llmsys_kind_t kind,
                        const std::string& id) {
  if (const Component* c = p.FindComponent(kind, id)) return *c;
  ADD_FAILURE() << "no " << KindName(kind) << " " << id;
  static Component none;
  return none;
}

struct Buffer {
  char text[512] = {};
  llmsys_error_t err{text, sizeof(text)};
};

TEST(PluginLoadTest, MissingFile) {
  EXPECT_NE(LoadError("/nonexistent/x.so").find("no such file"),
            std::string::npos);
}

TEST(PluginLoadTest, NotASharedLibrary) {
  std::string file =
      std::string(LLMSYS_TEST_PLUGIN_DIR) + "/not_a_library/notes.so";
  EXPECT_NE(LoadError(file).find("not a shared library (no ELF header)"),
            std::string::npos);
}

TEST(PluginLoadTest, ExecutableIsNotASharedLibrary) {
  // The test binary itself is an ELF file, but a position-independent
  // executable is also ET_DYN; either way it has no entry symbol.
  std::string message = LoadError("/proc/self/exe");
  EXPECT_TRUE(message.find("not a shared library") != std::string::npos ||
              message.find("entry symbol") != std::string::npos)
      << message;
}

TEST(PluginLoadTest, MissingEntrySymbol) {
  EXPECT_NE(LoadError(TestPlugin("no_entry"))
                .find("does not export the entry symbol 'llmsys_plugin_entry'"),
            std::string::npos);
}

TEST(PluginLoadTest, DifferentMajorIsRefusedNamingBothVersions) {
  std::string message = LoadError(TestPlugin("abi_major2"));
  EXPECT_NE(message.find("built against llmsys ABI 2.0, but this host "
                         "implements ABI " LLMSYS_ABI_VERSION_STRING),
            std::string::npos)
      << message;
  EXPECT_NE(message.find("Rebuild"), std::string::npos);
}

TEST(PluginLoadTest, NewerMinorIsRefused) {
  std::string message = LoadError(TestPlugin("newer_minor"));
  const int major = LLMSYS_ABI_VERSION_MAJOR;
  const int minor = LLMSYS_ABI_VERSION_MINOR;
  EXPECT_NE(message.find(absl::StrCat(
                "built against llmsys ABI ", major, ".", minor + 1,
                ", newer than this host's ABI ", major, ".", minor)),
            std::string::npos)
      << message;
}

TEST(PluginLoadTest, InitFailureCarriesThePluginsMessage) {
  std::string message = LoadError(TestPlugin("init_fails"));
  EXPECT_NE(
      message.find(
          "init() of plugin 'test.init_fails' failed (FAILED_PRECONDITION): "
          "this CPU lacks the AVX-512 instructions the kernels need"),
      std::string::npos)
      << message;
}

// Threads that load and drop one file over and over: a reload never runs
// the plugin's init() while another thread's deinit() of it is still
// running (the fixture's init fails if it does).
TEST(PluginLoadTest, AReloadWaitsForAnUnloadOnAnotherThread) {
  const std::string file = TestPlugin("init_once");
  std::atomic<int> failures{0};
  std::string first_error;
  std::mutex mu;
  auto churn = [&] {
    for (int i = 0; i < 150; ++i) {
      absl::StatusOr<std::shared_ptr<Plugin>> p = Plugin::Load(file);
      if (!p.ok()) {
        std::lock_guard<std::mutex> lock(mu);
        if (failures++ == 0) first_error = std::string(p.status().message());
      }
    }  // the last holder drops it: deinit
  };
  std::thread a(churn), b(churn);
  a.join();
  b.join();
  EXPECT_EQ(failures.load(), 0) << first_error;
}

TEST(PluginLoadTest, ExceptionInSdkPluginBecomesAStatus) {
  std::string message = LoadError(TestPlugin("throws_sdk"));
  EXPECT_NE(
      message.find(
          "failed (INTERNAL): uncaught C++ exception: vector::at: index 3"),
      std::string::npos)
      << message;
}

TEST(PluginLoadTest, ExceptionAcrossTheRawAbiIsCaught) {
  std::string message = LoadError(TestPlugin("throws_raw"));
  EXPECT_NE(message.find(
                "threw a C++ exception across the C ABI: raw plugin exploded"),
            std::string::npos)
      << message;
}

TEST(PluginLoadTest, MalformedSchemaNamesComponentAndParameter) {
  std::string message = LoadError(TestPlugin("bad_schema"));
  EXPECT_NE(message.find("optimizer 'bad_schema': malformed parameter schema: "
                         "parameter 'lr': default 5.0 is outside its range"),
            std::string::npos)
      << message;
}

TEST(PluginLoadTest, GoodPluginDescribesItself) {
  absl::StatusOr<std::shared_ptr<Plugin>> p = Plugin::Load(TestPlugin("good"));
  ASSERT_TRUE(p.ok()) << p.status();
  const Plugin& plugin = **p;
  EXPECT_EQ(plugin.id(), "test.good");
  EXPECT_EQ(plugin.version(), "1.2.3");
  EXPECT_EQ(plugin.license(), "MIT");
  EXPECT_EQ(plugin.abi(), LLMSYS_ABI_VERSION_STRING);
  ASSERT_EQ(plugin.components().size(), 5u);
  ASSERT_EQ(plugin.op_contracts().size(), 1u);
  EXPECT_EQ(plugin.op_contracts()[0].name, "scale");
  const Component& scale = FindIn(plugin, LLMSYS_KIND_OPERATOR, "scale.test");
  EXPECT_EQ(scale.op, "scale");
  EXPECT_EQ(scale.version, "0.3.0");
  EXPECT_EQ(scale.device_type, kDLCPU);
  ASSERT_EQ(scale.params.size(), 1u);
  EXPECT_EQ(scale.params[0].name, "block");
  EXPECT_EQ(FindIn(plugin, LLMSYS_KIND_EVALUATOR, "count").device_type, 0);
}

TEST(PluginLoadTest, PureCPluginWorks) {
  absl::StatusOr<std::shared_ptr<Plugin>> p =
      Plugin::Load(TestPlugin("pure_c"));
  ASSERT_TRUE(p.ok()) << p.status();
  const Component& c = FindIn(**p, LLMSYS_KIND_OPTIMIZER, "c_sgd");
  absl::StatusOr<ParamPack> params =
      ParamPack::Make(c.params, {{"scale", 2.0}});
  ASSERT_TRUE(params.ok());
  const auto* opt = c.As<llmsys_optimizer_t>();
  Buffer b;
  void* instance = nullptr;
  ASSERT_EQ(opt->create(params->c_params(), &instance, &b.err),
            LLMSYS_STATUS_OK);
  float w[2] = {1.0f, 2.0f}, g[2] = {0.5f, -1.0f};
  int64_t shape[1] = {2};
  DLTensor wt{w, {kDLCPU, 0}, 1, LLMSYS_DTYPE_F32, shape, nullptr, 0};
  DLTensor gt{g, {kDLCPU, 0}, 1, LLMSYS_DTYPE_F32, shape, nullptr, 0};
  DLTensor* params_list[1] = {&wt};
  const DLTensor* grads[1] = {&gt};
  llmsys_optimizer_step_t step{};
  step.struct_size = sizeof(step);
  step.num_params = 1;
  step.params = params_list;
  step.grads = grads;
  step.step = 1;
  step.lr = 0.1;
  ASSERT_EQ(opt->step(instance, &step, &b.err), LLMSYS_STATUS_OK) << b.text;
  EXPECT_FLOAT_EQ(w[0], 1.0f - 0.2f * 0.5f);
  EXPECT_FLOAT_EQ(w[1], 2.0f + 0.2f);
  opt->destroy(instance);
}

// Every kind of the good plugin, through the C ABI and the SDK trampolines.
class GoodPluginTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::shared_ptr<Plugin>> p =
        Plugin::Load(TestPlugin("good"));
    ASSERT_TRUE(p.ok()) << p.status();
    plugin_ = *std::move(p);
  }
  std::shared_ptr<Plugin> plugin_;
  Buffer b_;
};

TEST_F(GoodPluginTest, OperatorInferForwardBackward) {
  const Component& c = FindIn(*plugin_, LLMSYS_KIND_OPERATOR, "scale.test");
  const auto* op = c.As<llmsys_operator_t>();
  EXPECT_EQ(op->flags, LLMSYS_OP_BACKWARD_NEEDS_INPUTS);
  ASSERT_NE(op->backward, nullptr);
  absl::StatusOr<ParamPack> params = ParamPack::Make(c.params);
  void* instance = nullptr;
  ASSERT_EQ(op->create(params->c_params(), &instance, &b_.err),
            LLMSYS_STATUS_OK);

  float x[3] = {1, -2, 3}, y[3] = {}, gy[3] = {1, 1, 2}, gx[3] = {};
  int64_t shape[1] = {3};
  DLTensor xt{x, {kDLCPU, 0}, 1, LLMSYS_DTYPE_F32, shape, nullptr, 0};
  DLTensor yt{y, {kDLCPU, 0}, 1, LLMSYS_DTYPE_F32, shape, nullptr, 0};
  DLTensor gyt{gy, {kDLCPU, 0}, 1, LLMSYS_DTYPE_F32, shape, nullptr, 0};
  DLTensor gxt{gx, {kDLCPU, 0}, 1, LLMSYS_DTYPE_F32, shape, nullptr, 0};
  const DLTensor* inputs[1] = {&xt};
  llmsys_param_t attr{"factor", {LLMSYS_TYPE_FLOAT, 0, {.f = 3.0}}};
  llmsys_op_call_t call{};
  call.struct_size = sizeof(call);
  call.op = "scale";
  call.inputs = inputs;
  call.num_inputs = 1;
  call.attrs = {&attr, 1};

  llmsys_tensor_spec_t spec{};
  size_t workspace = 123;
  ASSERT_EQ(op->infer(instance, &call, &spec, 1, &workspace, &b_.err),
            LLMSYS_STATUS_OK);
  EXPECT_EQ(workspace, 48u);  // LLMSYS_PHASE_ANY: forward's or backward's
  call.phase = LLMSYS_PHASE_FORWARD;
  ASSERT_EQ(op->infer(instance, &call, &spec, 1, &workspace, &b_.err),
            LLMSYS_STATUS_OK);
  EXPECT_EQ(workspace, 16u);
  // A host before ABI 1.6 has no phase (its call ends before it).
  call.struct_size = offsetof(llmsys_op_call_t, phase);
  ASSERT_EQ(op->infer(instance, &call, &spec, 1, &workspace, &b_.err),
            LLMSYS_STATUS_OK);
  EXPECT_EQ(workspace, 48u);
  call.struct_size = sizeof(call);
  EXPECT_EQ(spec.ndim, 1);
  EXPECT_EQ(spec.shape[0], 3);
  DLTensor* outputs[1] = {&yt};
  ASSERT_EQ(op->forward(instance, &call, outputs, 1, &b_.err),
            LLMSYS_STATUS_OK);
  EXPECT_FLOAT_EQ(y[0], 3.0f);
  EXPECT_FLOAT_EQ(y[1], -6.0f);
  const DLTensor* fwd_out[1] = {&yt};
  const DLTensor* grad_out[1] = {&gyt};
  DLTensor* grad_in[1] = {&gxt};
  ASSERT_EQ(
      op->backward(instance, &call, fwd_out, grad_out, 1, grad_in, &b_.err),
      LLMSYS_STATUS_OK);
  EXPECT_FLOAT_EQ(gx[2], 6.0f);

  // The wrong number of outputs is the host's bug, reported as INTERNAL.
  llmsys_tensor_spec_t two[2];
  EXPECT_EQ(op->infer(instance, &call, two, 2, &workspace, &b_.err),
            LLMSYS_STATUS_INTERNAL);
  EXPECT_NE(std::string(b_.text).find("produced 1 outputs, contract has 2"),
            std::string::npos);

  // A wrong dtype is INVALID_ARGUMENT with the op's own message.
  xt.dtype = LLMSYS_DTYPE_F64;
  EXPECT_EQ(op->infer(instance, &call, &spec, 1, &workspace, &b_.err),
            LLMSYS_STATUS_INVALID_ARGUMENT);
  EXPECT_STREQ(b_.text, "scale: x must be float32, got shape (3)");
  op->destroy(instance);
}

TEST_F(GoodPluginTest, OptimizerStateAndStep) {
  const Component& c = FindIn(*plugin_, LLMSYS_KIND_OPTIMIZER, "plain_sgd");
  const auto* opt = c.As<llmsys_optimizer_t>();
  absl::StatusOr<ParamPack> params = ParamPack::Make(c.params);
  void* instance = nullptr;
  ASSERT_EQ(opt->create(params->c_params(), &instance, &b_.err),
            LLMSYS_STATUS_OK);
  const llmsys_state_spec_t* const* specs = nullptr;
  uint32_t n = 0;
  ASSERT_EQ(opt->state(instance, &specs, &n, &b_.err), LLMSYS_STATUS_OK);
  ASSERT_EQ(n, 1u);
  EXPECT_STREQ(specs[0]->name, "velocity");
  EXPECT_TRUE(llmsys_dtype_equal(specs[0]->dtype, LLMSYS_DTYPE_F32));
  opt->destroy(instance);

  // A std::exception inside step becomes INTERNAL with its text.
  absl::StatusOr<ParamPack> failing =
      ParamPack::Make(c.params, {{"mode", std::string("fail")}});
  ASSERT_EQ(opt->create(failing->c_params(), &instance, &b_.err),
            LLMSYS_STATUS_OK);
  llmsys_optimizer_step_t step{};
  step.struct_size = sizeof(step);
  EXPECT_EQ(opt->step(instance, &step, &b_.err), LLMSYS_STATUS_INTERNAL);
  EXPECT_STREQ(b_.text, "uncaught C++ exception: asked to fail");
  opt->destroy(instance);
}

TEST_F(GoodPluginTest, SamplerWritesTokens) {
  const Component& c = FindIn(*plugin_, LLMSYS_KIND_SAMPLER, "seven");
  const auto* s = c.As<llmsys_sampler_t>();
  absl::StatusOr<ParamPack> params = ParamPack::Make(c.params);
  void* instance = nullptr;
  ASSERT_EQ(s->create(params->c_params(), &instance, &b_.err),
            LLMSYS_STATUS_OK);
  int64_t tokens[2] = {0, 0};
  int64_t shape[1] = {2};
  DLTensor t{tokens, {kDLCPU, 0}, 1, LLMSYS_DTYPE_I64, shape, nullptr, 0};
  llmsys_sample_args_t args{};
  args.struct_size = sizeof(args);
  args.tokens = &t;
  ASSERT_EQ(s->sample(instance, &args, &b_.err), LLMSYS_STATUS_OK);
  EXPECT_EQ(tokens[0], 7);
  EXPECT_EQ(tokens[1], 7);
  s->destroy(instance);
}

TEST_F(GoodPluginTest, EvaluatorAddAndResult) {
  const Component& c = FindIn(*plugin_, LLMSYS_KIND_EVALUATOR, "count");
  const auto* e = c.As<llmsys_evaluator_t>();
  EXPECT_EQ(e->inputs, LLMSYS_EVAL_TEXT);
  absl::StatusOr<ParamPack> params = ParamPack::Make(c.params);
  void* instance = nullptr;
  ASSERT_EQ(e->create(params->c_params(), &instance, &b_.err),
            LLMSYS_STATUS_OK);
  const char* hyps[3] = {"a", "b", "c"};
  llmsys_eval_batch_t batch{};
  batch.struct_size = sizeof(batch);
  batch.count = 3;
  batch.hypotheses = hyps;
  ASSERT_EQ(e->add(instance, &batch, &b_.err), LLMSYS_STATUS_OK);
  batch.hypotheses = nullptr;
  EXPECT_EQ(e->add(instance, &batch, &b_.err), LLMSYS_STATUS_INVALID_ARGUMENT);
  EXPECT_STREQ(b_.text, "count: the batch has no hypotheses");

  std::vector<std::pair<std::string, double>> metrics;
  llmsys_metric_sink_t sink{
      sizeof(sink), &metrics, [](void* data, const char* name, double value) {
        static_cast<std::vector<std::pair<std::string, double>>*>(data)
            ->emplace_back(name, value);
      }};
  char signature[64] = {};
  ASSERT_EQ(e->result(instance, &sink, signature, sizeof(signature), &b_.err),
            LLMSYS_STATUS_OK);
  ASSERT_EQ(metrics.size(), 1u);
  EXPECT_EQ(metrics[0].first, "segments");
  EXPECT_EQ(metrics[0].second, 3.0);
  EXPECT_STREQ(signature, "count|v:1");
  e->destroy(instance);
}

TEST_F(GoodPluginTest, ModelCreateDeclaresItsParametersThroughTheHost) {
  const Component& c = FindIn(*plugin_, LLMSYS_KIND_MODEL, "tiny");
  const auto* m = c.As<llmsys_model_t>();
  absl::StatusOr<ParamPack> params =
      ParamPack::Make(c.params, {{"width", int64_t{3}}});
  ASSERT_TRUE(params.ok()) << params.status();
  PluginRegistry empty;
  OpDispatcher ops(&empty, tensor::kCpu);
  ParameterStore store(/*seed=*/1, tensor::kCpu);
  Graph graph(&ops, &store);
  void* instance = nullptr;
  ASSERT_EQ(m->create(params->c_params(), graph.c(), &instance, &b_.err),
            LLMSYS_STATUS_OK)
      << b_.text;
  ASSERT_NE(store.Find("w"), nullptr);
  EXPECT_EQ(store.Find("w")->var->data.shape(), (tensor::Shape{3}));
  EXPECT_EQ(graph.live_values(), 0);  // the model released its handle
  m->destroy(instance);

  // Without a graph the host's error comes back intact through the SDK.
  instance = nullptr;
  EXPECT_EQ(m->create(params->c_params(), nullptr, &instance, &b_.err),
            LLMSYS_STATUS_INVALID_ARGUMENT);
  EXPECT_NE(std::string(b_.text).find("the graph is NULL"), std::string::npos)
      << b_.text;
  EXPECT_EQ(instance, nullptr);
}

}  // namespace
}  // namespace llmsys::runtime
