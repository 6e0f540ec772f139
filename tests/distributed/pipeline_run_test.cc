// `mpirun -np 2 llmsys run` with [distributed] pipeline_stages = 2 on a
// tiny 3-block gpt (stage 0: the embeddings and block 0; stage 1: blocks 1
// and 2, ln_f and the tied output layer): the same losses and gradients as
// the unsplit model in one process, with GPipe micro-batches or without
// (naive model parallelism); rank 0 writes the whole model's checkpoint,
// which resumes on any split, and evaluates and samples with it; 2 such
// pipelines data parallel (mpirun -np 4); a killed stage stops the run;
// bad splits are refused with the key named.
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "framework/tensor/safetensors.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/distributed/run_test_util.h"
#include "tests/tools/cli_test_util.h"

namespace llmsys::cli_test {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// The weights of a run's checkpoint, by name.
std::map<std::string, std::vector<double>> Weights(const fs::path& run) {
  std::map<std::string, std::vector<double>> out;
  absl::StatusOr<tensor::SafetensorsFile> f = tensor::ReadSafetensors(
      (run / "checkpoint" / "model.safetensors").string());
  EXPECT_TRUE(f.ok()) << f.status();
  if (!f.ok()) return out;
  for (const auto& [name, t] : f->tensors) out[name] = t.ToDoubles();
  return out;
}

class PipelineRunTest : public ::testing::Test {
 protected:
  // One process, and 2 stages with 4 micro-batches and with 1, at batch 4:
  // shared by the tests.
  static void SetUpTestSuite() {
    dir_ = new std::string(::testing::TempDir() + "llmsys_pipeline_" +
                           std::to_string(getpid()));
    fs::remove_all(*dir_);
    toml_ = new std::string(WriteTinyGpt(
        *dir_,
        "[train]\nsteps = 12\nblock_size = 16\nbatch_size = 4\n"
        "log_every = 1\neval_every = 6\neval_batches = 2\n"
        "checkpoint_every = 4\nthreads = 1\n[generate]\nsamples = 0\n"));
    const std::string run = " run " + *toml_ + " --no-progress " + kThreeBlocks;
    one_ = new Result(RunLlmsys(run + " --set experiment.name=one"));
    gpipe_ = new Result(RunShell(
        Mpirun(2) + run +
        " --set experiment.name=gpipe --set distributed.pipeline_stages=2 "
        "--set generate.samples=1 --set generate.max_tokens=8"));
    naive_ = new Result(RunShell(
        Mpirun(2) + run +
        " --set experiment.name=naive --set distributed.pipeline_stages=2 "
        "--set distributed.micro_batches=1"));
  }
  static void TearDownTestSuite() {
    fs::remove_all(*dir_);
    delete dir_;
    delete toml_;
    delete one_;
    delete gpipe_;
    delete naive_;
  }
  static fs::path Runs() { return fs::path(*dir_) / "runs"; }

  static constexpr const char* kThreeBlocks = " --set model.n_layer=3";
  static std::string* dir_;
  static std::string* toml_;
  static Result* one_;
  static Result* gpipe_;
  static Result* naive_;
};
std::string* PipelineRunTest::dir_ = nullptr;
std::string* PipelineRunTest::toml_ = nullptr;
Result* PipelineRunTest::one_ = nullptr;
Result* PipelineRunTest::gpipe_ = nullptr;
Result* PipelineRunTest::naive_ = nullptr;

TEST_F(PipelineRunTest, TwoStagesLoseWhatTheUnsplitModelLoses) {
  ASSERT_EQ(one_->exit_code, 0) << one_->err;
  ASSERT_EQ(gpipe_->exit_code, 0) << gpipe_->err;
  ASSERT_EQ(naive_->exit_code, 0) << naive_->err;
  const Losses one = Read(Runs() / "one");
  ASSERT_EQ(one.train.size(), 12u);
  ExpectClose(Read(Runs() / "gpipe").train, one.train, 1e-5,
              "training loss, 4 micro-batches");
  ExpectClose(Read(Runs() / "gpipe").val, one.val, 1e-5, "validation loss");
  ExpectClose(Read(Runs() / "naive").train, one.train, 1e-5,
              "training loss, 1 micro-batch");
  EXPECT_TRUE(Contains(gpipe_->err,
                       "over 2 pipeline stages (GPipe, each batch as 4 "
                       "micro-batches)"))
      << gpipe_->err;
  // The whole model's checkpoint (both stages' weights, the tied wte once),
  // close to the unsplit run's after 12 AdamW steps.
  const auto w1 = Weights(Runs() / "one"), w2 = Weights(Runs() / "gpipe");
  ASSERT_EQ(w2.size(), w1.size());
  for (const auto& [name, v] : w1) {
    ASSERT_TRUE(w2.count(name)) << name;
    ASSERT_EQ(w2.at(name).size(), v.size()) << name;
    for (size_t i = 0; i < v.size(); ++i)
      ASSERT_NEAR(w2.at(name)[i], v[i], 1e-4) << name << "[" << i << "]";
  }
  // The summary counts every parameter once; rank 0 sampled with the
  // whole model.
  const json j1 = ReadJson(Runs() / "one" / "summary.json"),
             j2 = ReadJson(Runs() / "gpipe" / "summary.json");
  EXPECT_EQ(j2["parameters"], j1["parameters"]);
  EXPECT_EQ(j2["pipeline_stages"], 2);
  EXPECT_EQ(j1["pipeline_stages"], 1);
  std::ifstream samples(Runs() / "gpipe" / "samples.txt");
  std::string text((std::istreambuf_iterator<char>(samples)), {});
  EXPECT_TRUE(Contains(text, "----")) << text;
}

// One SGD step at lr 1 without clipping: the weights move by minus the
// gradient, so equal checkpoints mean equal gradients, the tied wte's sum
// of its two stages' included.
TEST_F(PipelineRunTest, GradientsEqualTheUnsplitModels) {
  const std::string run =
      " run " + *toml_ + " --no-progress " + kThreeBlocks +
      " --set optimizer.use=sgd --set schedule.lr=1 --set train.grad_clip=0 "
      "--set train.steps=1 --set train.eval_every=0";
  const Result one = RunLlmsys(run + " --set experiment.name=sgd_one");
  ASSERT_EQ(one.exit_code, 0) << one.err;
  const Result two = RunShell(Mpirun(2) + run +
                              " --set experiment.name=sgd_two "
                              "--set distributed.pipeline_stages=2");
  ASSERT_EQ(two.exit_code, 0) << two.err;
  const auto w1 = Weights(Runs() / "sgd_one"), w2 = Weights(Runs() / "sgd_two");
  ASSERT_EQ(w2.size(), w1.size());
  ASSERT_TRUE(w1.count("wte.weight"));
  for (const auto& [name, v] : w1)
    for (size_t i = 0; i < v.size(); ++i)
      ASSERT_NEAR(w2.at(name)[i], v[i], 1e-6) << name << "[" << i << "]";
}

// Pipeline and data parallel: 2 pipelines of 2 stages (mpirun -np 4) at
// batch 2 each train as one process at batch 4.
TEST_F(PipelineRunTest, TwoDataParallelPipelinesLoseWhatOneProcessLoses) {
  ASSERT_EQ(one_->exit_code, 0) << one_->err;
  const Result four = RunShell(
      Mpirun(4) + " run " + *toml_ + " --no-progress " + kThreeBlocks +
      " --set experiment.name=hybrid --set distributed.pipeline_stages=2 "
      "--set train.batch_size=2");
  ASSERT_EQ(four.exit_code, 0) << four.err;
  EXPECT_TRUE(Contains(four.err,
                       "over 2 pipeline stages (GPipe, each batch as 4 "
                       "micro-batches) in each of 2 data-parallel pipelines"))
      << four.err;
  const Losses one = Read(Runs() / "one"), hybrid = Read(Runs() / "hybrid");
  ExpectClose(hybrid.train, one.train, 1e-5, "training loss, 2 x 2 ranks");
  ExpectClose(hybrid.val, one.val, 1e-5, "validation loss, 2 x 2 ranks");
  const auto w1 = Weights(Runs() / "one"), w4 = Weights(Runs() / "hybrid");
  ASSERT_EQ(w4.size(), w1.size());
  for (const auto& [name, v] : w1)
    for (size_t i = 0; i < v.size(); ++i)
      ASSERT_NEAR(w4.at(name)[i], v[i], 1e-4) << name << "[" << i << "]";
  const json j = ReadJson(Runs() / "hybrid" / "summary.json");
  EXPECT_EQ(j["ranks"], 4);
  EXPECT_EQ(j["pipeline_stages"], 2);
  // The gradients' all-reduce overlapped with the last micro-batch's
  // backward, bucket by bucket: the same losses.
  const Result overlap = RunShell(
      Mpirun(4) + " run " + *toml_ + " --no-progress " + kThreeBlocks +
      " --set experiment.name=hybrid_overlap --set train.batch_size=2 "
      "--set distributed.pipeline_stages=2 --set distributed.overlap=true "
      "--set distributed.bucket_mb=0.001 --set train.steps=6");
  ASSERT_EQ(overlap.exit_code, 0) << overlap.err;
  std::map<int64_t, double> first6(one.train.begin(), one.train.find(7));
  ExpectClose(Read(Runs() / "hybrid_overlap").train, first6, 1e-5,
              "training loss, 2 x 2 ranks, overlapped");
  EXPECT_EQ(j["parameters"],
            ReadJson(Runs() / "one" / "summary.json")["parameters"]);
}

TEST_F(PipelineRunTest, AKilledStageStopsTheRunWhichResumesOnAnySplit) {
  ASSERT_EQ(gpipe_->exit_code, 0) << gpipe_->err;
  const std::string run = " run " + *toml_ + " --no-progress " + kThreeBlocks +
                          " --set distributed.pipeline_stages=2";
  const Result killed = RunShell(Mpirun(2, "LLMSYS_TEST_KILL_RANK=1:6") + run +
                                 " --set experiment.name=killed");
  EXPECT_NE(killed.exit_code, 0);
  EXPECT_TRUE(Contains(killed.out + killed.err, "rank 1"))
      << killed.out << killed.err;
  const fs::path dir = Runs() / "killed";
  ASSERT_EQ(ReadJson(dir / "checkpoint" / "trainer_state.json")["step"], 4);
  fs::copy(dir, Runs() / "killed_one", fs::copy_options::recursive);

  // The same split: the very losses of the run that was not killed.
  const Result again =
      RunShell(Mpirun(2) + " run --resume " + dir.string() + " --no-progress");
  ASSERT_EQ(again.exit_code, 0) << again.err;
  ExpectClose(Read(dir).train, Read(Runs() / "gpipe").train, 0.0,
              "resumed on 2 stages");

  // One process, unsplit, from the same checkpoint.
  const Result one =
      RunLlmsys("run --resume " + (Runs() / "killed_one").string() +
                " --no-progress --set distributed.pipeline_stages=1");
  ASSERT_EQ(one.exit_code, 0) << one.err;
  ExpectClose(Read(Runs() / "killed_one").train, Read(Runs() / "gpipe").train,
              1e-5, "resumed in one process");
}

TEST_F(PipelineRunTest, BadSplitsAreRefusedNamingTheKey) {
  const std::string run = " run " + *toml_ + " --no-progress";
  // More stages than ranks.
  const Result ranks = RunLlmsys(
      run + " --set experiment.name=bad --set distributed.pipeline_stages=2");
  EXPECT_EQ(ranks.exit_code, 1);
  EXPECT_TRUE(Contains(ranks.err,
                       "[distributed] pipeline_stages = 2 needs one rank per "
                       "stage (mpirun -np 2, or 4 for 2 data-parallel "
                       "pipelines); this run has 1 rank(s): --set "
                       "distributed.pipeline_stages=1 trains the whole model "
                       "in this process"))
      << ranks.err;
  // More stages than blocks (the tiny gpt has one).
  const Result blocks = RunShell(
      Mpirun(2) + run +
      " --set experiment.name=bad --set distributed.pipeline_stages=2");
  EXPECT_NE(blocks.exit_code, 0);
  EXPECT_TRUE(Contains(blocks.err,
                       "2 pipeline stages need at least as many "
                       "blocks; n_layer is 1"))
      << blocks.err;
  // A model that does not split: the test plugin's "tiny".
  const std::string tiny = *dir_ + "/tiny_model.toml";
  std::ofstream(tiny) << "[experiment]\noutput = \"" << *dir_ << "/runs\"\n"
                      << "name = \"bad\"\n[data]\ntrain = \"" << *dir_
                      << "/corpus.txt\"\n[model]\nuse = \"tiny\"\n"
                      << "[distributed]\npipeline_stages = 2\n";
  const Result model =
      RunShell(Mpirun(2) + " run " + tiny +
               " --no-progress --plugin-dir " LLMSYS_TEST_PLUGIN_DIR "/good");
  EXPECT_NE(model.exit_code, 0);
  EXPECT_TRUE(Contains(model.err, "model tiny does not split into stages"))
      << model.err;
  EXPECT_FALSE(fs::exists(Runs() / "bad"));
}

}  // namespace
}  // namespace llmsys::cli_test
