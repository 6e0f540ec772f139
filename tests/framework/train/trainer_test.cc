// Training end to end on a tiny model: the run directory, exact resume, and
// the errors bad input gets (nothing half-written left as if complete).
#include "framework/train/trainer.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace llmsys::train {
namespace {

namespace fs = std::filesystem;

std::string Read(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void Write(const fs::path& p, const std::string& text) {
  std::ofstream(p, std::ios::binary) << text;
}

class TrainerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(::testing::TempDir()) /
           ("llmsys_trainer_" + std::to_string(getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    std::string corpus;
    for (int i = 0; i < 200; ++i)
      corpus += "the quick brown fox jumps over the lazy dog " +
                std::to_string(i % 7) + "\n";
    Write(dir_ / "corpus.txt", corpus);
    Write(dir_ / "tiny.toml", Experiment(""));
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string Experiment(const std::string& extra) const {
    return "[experiment]\nname = \"tiny\"\noutput = \"" +
           (dir_ / "runs").string() +
           "\"\n"
           "[data]\ntrain = \"" +
           (dir_ / "corpus.txt").string() +
           "\"\n"
           "[model]\nuse = \"gpt\"\nn_layer = 1\nn_head = 2\nn_embd = 16\n"
           "[optimizer]\nuse = \"adamw\"\n"
           "[train]\nsteps = 12\nbatch_size = 4\nblock_size = 16\n"
           "log_every = 4\ncheckpoint_every = 4\n"
           "[evaluate]\nevery = 6\nbatches = 2\n"
           "[generate]\nprompt = \"the\"\nmax_tokens = 8\n" +
           extra;
  }
  RunOptions Options() const {
    RunOptions o;
    o.experiment = dir_ / "tiny.toml";
    o.progress_bar = false;
    o.plugin_dirs = {LLMSYS_BUILTIN_PLUGIN_DIR};
    return o;
  }
  fs::path Run() const { return dir_ / "runs" / "tiny"; }

  fs::path dir_;
};

TEST_F(TrainerTest, ARunLeavesEverythingInItsDirectory) {
  absl::StatusOr<RunResult> r = RunExperiment(Options());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->steps, 12);
  for (const char* f :
       {"config.toml", "tokenizer.json", "metrics.jsonl", "samples.txt",
        "summary.json", "checkpoint/model.safetensors",
        "checkpoint/optimizer.safetensors", "checkpoint/trainer_state.json"})
    EXPECT_TRUE(fs::exists(Run() / f)) << f;
  EXPECT_NE(Read(Run() / "summary.json").find("\"val_loss\""),
            std::string::npos);
  EXPECT_EQ(Read(Run() / "samples.txt").rfind("the", 0), 0u);
  EXPECT_LT(r->train_loss, std::log(39.0));  // below ln(vocab) already

  // The same config and seed reproduce the losses bit for bit.
  const std::string metrics = Read(Run() / "metrics.jsonl");
  RunOptions again = Options();
  again.overwrite = true;
  ASSERT_TRUE(RunExperiment(again).ok());
  auto losses = [](const std::string& m) {
    std::string out;
    for (size_t at = 0; (at = m.find("\"loss\":", at)) != std::string::npos;
         ++at)
      out += m.substr(at, m.find(',', at) - at) + ";";
    return out;
  };
  EXPECT_EQ(losses(Read(Run() / "metrics.jsonl")), losses(metrics));
}

TEST_F(TrainerTest, AResumedRunEndsWithTheWeightsOfAnUninterruptedOne) {
  ASSERT_TRUE(RunExperiment(Options()).ok());
  const std::string whole = Read(Run() / "checkpoint/model.safetensors");
  const std::string whole_opt =
      Read(Run() / "checkpoint/optimizer.safetensors");

  RunOptions first = Options();
  first.overwrite = true;
  first.stop_after = 5;  // interrupted between checkpoints
  absl::StatusOr<RunResult> part = RunExperiment(first);
  ASSERT_TRUE(part.ok()) << part.status();
  EXPECT_EQ(part->steps, 5);
  // Killed while replacing the checkpoint: after the old one moved aside
  // and before the new one moved in, with a half-written new one left.
  fs::rename(Run() / "checkpoint", Run() / "checkpoint.old");
  fs::create_directories(Run() / "checkpoint.tmp");
  Write(Run() / "checkpoint.tmp/model.safetensors", "partial");
  RunOptions resume = Options();
  resume.experiment.clear();
  resume.resume = Run();
  absl::StatusOr<RunResult> rest = RunExperiment(resume);
  ASSERT_TRUE(rest.ok()) << rest.status();
  EXPECT_EQ(rest->steps, 12);
  EXPECT_TRUE(Read(Run() / "checkpoint/model.safetensors") == whole);
  EXPECT_TRUE(Read(Run() / "checkpoint/optimizer.safetensors") == whole_opt);
}

TEST_F(TrainerTest, BadInputIsAClearError) {
  ASSERT_TRUE(RunExperiment(Options()).ok());
  absl::StatusOr<RunResult> exists = RunExperiment(Options());
  ASSERT_FALSE(exists.ok());
  EXPECT_TRUE(absl::IsAlreadyExists(exists.status()));
  EXPECT_NE(exists.status().message().find("pass --resume"), std::string::npos);

  auto run_with = [&](const std::string& extra) {
    Write(dir_ / "bad_ops.toml", Experiment(extra));
    RunOptions o = Options();
    o.experiment = dir_ / "bad_ops.toml";
    o.overwrite = true;
    return RunExperiment(o);
  };
  auto expect = [](const absl::StatusOr<RunResult>& r,
                   const std::string& text) {
    ASSERT_FALSE(r.ok()) << "expected: " << text;
    EXPECT_NE(r.status().message().find(text), std::string::npos) << r.status();
  };
  RunOptions o = Options();
  o.sets = {"data.train=/no/such/corpus.txt", "experiment.name=x"};
  expect(RunExperiment(o), "/no/such/corpus.txt");
  Write(dir_ / "empty.txt", "");
  o.sets = {"data.train=" + (dir_ / "empty.txt").string(), "experiment.name=y"};
  expect(RunExperiment(o), "empty");
  expect(run_with("[ops]\nmatmul = \"fastest\"\n"),
         "unknown implementation 'fastest' of op 'matmul'");
  o.sets = {"train.block_size=5000", "model.block_size=5000",
            "experiment.name=z"};
  expect(RunExperiment(o), "block size 5000 is larger than the data");
  o.sets = {"model.use=gtp", "experiment.name=w"};
  expect(RunExperiment(o), "did you mean 'gpt'");
  o.sets = {"schedule.lr=1e30", "train.grad_clip=0", "experiment.name=v"};
  absl::StatusOr<RunResult> diverged = RunExperiment(o);
  ASSERT_FALSE(diverged.ok());
  EXPECT_NE(diverged.status().message().find("step "), std::string::npos);
  EXPECT_NE(diverged.status().message().find("last checkpoint"),
            std::string::npos)
      << diverged.status();

  // A corrupt checkpoint is refused, naming the file.
  const fs::path model = Run() / "checkpoint/model.safetensors";
  const std::string bytes = Read(model);
  Write(model, bytes.substr(0, bytes.size() / 2));
  RunOptions resume = Options();
  resume.experiment.clear();
  resume.resume = Run();
  expect(RunExperiment(resume), "model.safetensors");
  resume.resume = dir_ / "not_a_run";
  expect(RunExperiment(resume), "not a run directory");
}

}  // namespace
}  // namespace llmsys::train
