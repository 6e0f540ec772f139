// Training on the (emulated) GPU end to end: the trainer with
// `device = "cuda"` keeps parameters, gradients and optimizer state on the
// device, runs every op from llmsys.cuda (here its emulated build, the real
// kernels on the CPU), and matches the CPU run's losses; mixed precision
// (bfloat16 autocast, float16 with loss scaling) trains too, and
// [[evaluate]] reads the logits of every precision. The same experiment on
// a machine without a GPU is refused at start with the reason
// (trainer_test.cc).
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include "framework/train/trainer.h"
#include "nlohmann/json.hpp"
#include "tests/cuda/cuda_test_util.h"
#include "tests/framework/train/test_files.h"

namespace llmsys::cuda_test {
namespace {

namespace fs = std::filesystem;

class CudaTrainTest : public ::testing::Test {
 protected:
  void SetUp() override {
    EmulatedDevice::Install();
    dir_ = train::FreshTestDir("llmsys_cuda_train");
    // Every built-in plugin but the real cuda.so, plus the emulated one.
    fs::create_directories(dir_ / "plugins");
    for (const auto& f : fs::directory_iterator(LLMSYS_BUILTIN_PLUGIN_DIR)) {
      if (f.path().extension() != ".so" || f.path().filename() == "cuda.so")
        continue;
      fs::create_symlink(f.path(), dir_ / "plugins" / f.path().filename());
    }
    fs::create_symlink(CudaPluginFile(), dir_ / "plugins" / "cuda_emu.so");
    std::string corpus;
    for (int i = 0; i < 100; ++i)
      corpus += "the quick brown fox jumps over the lazy dog " +
                std::to_string(i % 7) + "\n";
    train::Write(dir_ / "corpus.txt", corpus);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // A one-layer GPT, 6 steps (`stop_after` > 0: stopped and checkpointed
  // after that many); `extra` adds keys to [train].
  absl::StatusOr<train::RunResult> Train(const std::string& name,
                                         const std::string& extra,
                                         int64_t stop_after = 0) {
    train::Write(dir_ / (name + ".toml"),
                 "[experiment]\nname = \"" + name + "\"\noutput = \"" +
                     (dir_ / "runs").string() + "\"\n[data]\ntrain = \"" +
                     (dir_ / "corpus.txt").string() +
                     "\"\n[model]\nuse = \"gpt\"\nn_layer = 1\nn_head = 2\n"
                     "n_embd = 16\n[optimizer]\nuse = \"adamw\"\n"
                     "[train]\nsteps = 6\nbatch_size = 2\nblock_size = 8\n"
                     "log_every = 1\ncheckpoint_every = 3\neval_every = 6\n"
                     "eval_batches = 1\n" +
                     extra +
                     "\n[generate]\nprompt = \"the\"\nmax_tokens = 4\n"
                     "[[evaluate]]\nuse = \"accuracy\"\nbatches = 1\n");
    train::RunOptions o;
    o.experiment = dir_ / (name + ".toml");
    o.stop_after = stop_after;
    o.progress_bar = false;
    o.default_plugin_dirs = false;
    o.plugin_dirs = {(dir_ / "plugins").string()};
    return train::RunExperiment(o);
  }

  // The training losses the run logged, one per step.
  std::vector<double> Losses(const std::string& name) {
    std::vector<double> out;
    std::istringstream in(train::Read(dir_ / "runs" / name / "metrics.jsonl"));
    std::string line;
    while (std::getline(in, line)) {
      nlohmann::json j = nlohmann::json::parse(line);
      if (j.contains("loss") && j.contains("step") && !j.contains("split"))
        out.push_back(j["loss"].get<double>());
    }
    return out;
  }

  fs::path dir_;
};

TEST_F(CudaTrainTest, TheGpuRunMatchesTheCpuRun) {
  absl::StatusOr<train::RunResult> cpu = Train("cpu", "device = \"cpu\"");
  ASSERT_TRUE(cpu.ok()) << cpu.status();
  absl::StatusOr<train::RunResult> gpu = Train("gpu", "device = \"cuda\"");
  ASSERT_TRUE(gpu.ok()) << gpu.status();
  const std::vector<double> a = Losses("cpu"), b = Losses("gpu");
  ASSERT_EQ(a.size(), 6u);
  ASSERT_EQ(b.size(), a.size());
  for (size_t i = 0; i < a.size(); ++i)
    EXPECT_NEAR(b[i], a[i], 1e-4 * std::abs(a[i])) << "step " << i + 1;
  EXPECT_NEAR(gpu->val_loss, cpu->val_loss, 1e-4 * cpu->val_loss);
  // The checkpoint holds host copies: the same file format as the CPU's.
  EXPECT_TRUE(fs::exists(gpu->run_dir / "checkpoint" / "model.safetensors"));
  EXPECT_TRUE(fs::exists(gpu->run_dir / "samples.txt"));
}

TEST_F(CudaTrainTest, MixedPrecisionTrains) {
  absl::StatusOr<train::RunResult> f32 = Train("f32", "device = \"cuda\"");
  ASSERT_TRUE(f32.ok()) << f32.status();
  for (const char* precision : {"bfloat16", "float16"}) {
    SCOPED_TRACE(precision);
    const std::string name = std::string("mp_") + precision;
    absl::StatusOr<train::RunResult> r =
        Train(name, std::string("device = \"cuda\"\nprecision = \"") +
                        precision + "\"");
    ASSERT_TRUE(r.ok()) << r.status();
    const std::vector<double> a = Losses("f32"), b = Losses(name);
    ASSERT_EQ(b.size(), a.size());
    // Rounding to 16 bits moves the losses a little, not the training.
    for (size_t i = 0; i < a.size(); ++i)
      EXPECT_NEAR(b[i], a[i], 0.05 * a[i]) << "step " << i + 1;
    EXPECT_LT(b.back(), b.front());
  }
}

// float16's loss scale is part of the checkpoint: a resumed run goes on
// with it (and with its run of good steps) instead of starting at 2^16.
TEST_F(CudaTrainTest, AResumedFloat16RunKeepsItsLossScale) {
  const std::string fp16 = "device = \"cuda\"\nprecision = \"float16\"";
  absl::StatusOr<train::RunResult> whole = Train("fp16", fp16);
  ASSERT_TRUE(whole.ok()) << whole.status();
  const fs::path state_file =
      whole->run_dir / "checkpoint" / "trainer_state.json";
  nlohmann::json state = nlohmann::json::parse(train::Read(state_file));
  EXPECT_EQ(state["loss_scale"], 65536.0);  // no overflow in 6 steps
  EXPECT_EQ(state["loss_scale_good_steps"], 6);
  // float32 runs save none.
  absl::StatusOr<train::RunResult> f32 =
      Train("f32_scale", "device = \"cuda\"");
  ASSERT_TRUE(f32.ok()) << f32.status();
  EXPECT_FALSE(nlohmann::json::parse(train::Read(f32->run_dir / "checkpoint" /
                                                 "trainer_state.json"))
                   .contains("loss_scale"));

  // The step-3 checkpoint, made to say 1024 after 1998 good steps: resumed,
  // step 5 is the 2000th good one and doubles the scale.
  absl::StatusOr<train::RunResult> half =
      Train("fp16_resumed", fp16, /*stop_after=*/3);
  ASSERT_TRUE(half.ok()) << half.status();
  const fs::path half_state =
      half->run_dir / "checkpoint" / "trainer_state.json";
  state = nlohmann::json::parse(train::Read(half_state));
  ASSERT_EQ(state["step"], 3);
  state["loss_scale"] = 1024.0;
  state["loss_scale_good_steps"] = 1998;
  train::Write(half_state, state.dump(2));
  auto resume = [&](const fs::path& run) {
    train::RunOptions o;
    o.resume = run;
    o.progress_bar = false;
    o.default_plugin_dirs = false;
    o.plugin_dirs = {(dir_ / "plugins").string()};
    return train::RunExperiment(o);
  };
  absl::StatusOr<train::RunResult> resumed = resume(half->run_dir);
  ASSERT_TRUE(resumed.ok()) << resumed.status();
  state = nlohmann::json::parse(train::Read(half_state));
  EXPECT_EQ(state["step"], 6);
  EXPECT_EQ(state["loss_scale"], 2048.0);
  EXPECT_EQ(state["loss_scale_good_steps"], 1);

  // A corrupt scale: not a number is a corrupt checkpoint, named; a scale
  // that is not positive starts afresh at 2^16.
  absl::StatusOr<train::RunResult> bad =
      Train("fp16_bad_scale", fp16, /*stop_after=*/3);
  ASSERT_TRUE(bad.ok()) << bad.status();
  const fs::path bad_state = bad->run_dir / "checkpoint" / "trainer_state.json";
  state = nlohmann::json::parse(train::Read(bad_state));
  state["loss_scale"] = "large";
  train::Write(bad_state, state.dump(2));
  absl::StatusOr<train::RunResult> refused = resume(bad->run_dir);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find(bad_state.string() +
                                            ": corrupt trainer state"),
            std::string::npos)
      << refused.status();
  state["loss_scale"] = -8.0;
  train::Write(bad_state, state.dump(2));
  ASSERT_TRUE(resume(bad->run_dir).ok());
  state = nlohmann::json::parse(train::Read(bad_state));
  EXPECT_EQ(state["loss_scale"], 65536.0);
  EXPECT_EQ(state["loss_scale_good_steps"], 3);
}

TEST_F(CudaTrainTest, MixedPrecisionNeedsTheGpu) {
  absl::StatusOr<train::RunResult> r =
      Train("cpu_bf16", "device = \"cpu\"\nprecision = \"bfloat16\"");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find(
                "[train] precision = \"bfloat16\" needs device = \"cuda\""),
            std::string::npos)
      << r.status();
}

}  // namespace
}  // namespace llmsys::cuda_test
