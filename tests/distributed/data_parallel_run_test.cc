// `mpirun -np 2 llmsys run` end to end on a tiny gpt: the losses of 2 ranks
// at batch b equal one process's at batch 2b; rank 0 alone writes the run
// directory; a rank killed mid-run stops the others with a message naming
// it; the run resumes from its last checkpoint with 2 ranks (the same
// losses as without the kill) or with 1.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/distributed/run_test_util.h"
#include "tests/tools/cli_test_util.h"

namespace llmsys::cli_test {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

class DataParallelRunTest : public ::testing::Test {
 protected:
  // One process at batch 4, and 2 ranks at batch 2: shared by the tests.
  static void SetUpTestSuite() {
    dir_ = new std::string(::testing::TempDir() + "llmsys_data_parallel_" +
                           std::to_string(getpid()));
    fs::remove_all(*dir_);
    toml_ = new std::string(
        WriteTinyGpt(*dir_,
                     "[train]\nsteps = 20\nblock_size = 16\nlog_every = 1\n"
                     "eval_every = 10\neval_batches = 3\ncheckpoint_every = 5\n"
                     "threads = 1\n[generate]\nsamples = 0\n"));
    one_ = new Result(RunLlmsys(
        "run " + *toml_ +
        " --no-progress --set experiment.name=one --set train.batch_size=4"));
    two_ = new Result(RunShell(Mpirun(2) + " run " + *toml_ +
                               " --no-progress --set experiment.name=two "
                               "--set train.batch_size=2"));
    overlap_ = new Result(
        RunShell(Mpirun(2) + " run " + *toml_ +
                 " --no-progress --set experiment.name=overlap "
                 "--set train.batch_size=2 --set distributed.overlap=true "
                 "--set distributed.bucket_mb=0.001 --set train.threads=0"));
  }
  static void TearDownTestSuite() {
    fs::remove_all(*dir_);
    delete dir_;
    delete toml_;
    delete one_;
    delete two_;
    delete overlap_;
  }
  static fs::path Runs() { return fs::path(*dir_) / "runs"; }

  static std::string* dir_;
  static std::string* toml_;
  static Result* one_;
  static Result* two_;
  static Result* overlap_;
};
std::string* DataParallelRunTest::dir_ = nullptr;
std::string* DataParallelRunTest::toml_ = nullptr;
Result* DataParallelRunTest::one_ = nullptr;
Result* DataParallelRunTest::two_ = nullptr;
Result* DataParallelRunTest::overlap_ = nullptr;

TEST_F(DataParallelRunTest, TwoRanksLoseWhatOneProcessLosesAtTwiceTheBatch) {
  ASSERT_EQ(one_->exit_code, 0) << one_->err;
  ASSERT_EQ(two_->exit_code, 0) << two_->err;
  const Losses one = Read(Runs() / "one"), two = Read(Runs() / "two");
  ASSERT_EQ(one.train.size(), 20u);
  // Float sums in another order: within 1e-5 relative over 20 steps.
  ExpectClose(two.train, one.train, 1e-5, "training loss");
  ExpectClose(two.val, one.val, 1e-5, "validation loss (sharded)");
  EXPECT_EQ(two.records, one.records);  // rank 0 alone wrote metrics
  const json s1 = ReadJson(Runs() / "one" / "summary.json"),
             s2 = ReadJson(Runs() / "two" / "summary.json");
  EXPECT_EQ(s2["ranks"], 2);
  EXPECT_EQ(s1["ranks"], 1);
  EXPECT_EQ(s2["tokens"], s1["tokens"]);  // tokens of every rank
  EXPECT_EQ(ReadJson(Runs() / "two" / "provenance.json")["ranks"], 2);
  // One "run directory:" line, from rank 0; rank 0's log says how it ran.
  EXPECT_EQ(two_->out, "run directory: " + (Runs() / "two").string() + "\n");
  EXPECT_TRUE(Contains(two_->err, "on each of 2 ranks over MPI")) << two_->err;
}

TEST_F(DataParallelRunTest, OverlappedSmallBucketsSumTheSameGradients) {
  ASSERT_EQ(overlap_->exit_code, 0) << overlap_->err;
  ExpectClose(Read(Runs() / "overlap").train, Read(Runs() / "one").train, 1e-5,
              "training loss, overlapped all-reduce");
  // threads = 0: the machine's cores shared by its 2 ranks.
  const int cores = static_cast<int>(sysconf(_SC_NPROCESSORS_ONLN));
  EXPECT_EQ(ReadJson(Runs() / "overlap" / "provenance.json")["threads"],
            std::max(1, cores / 2));
}

TEST_F(DataParallelRunTest, AKilledRankStopsTheRunWhichResumesOnAnyRanks) {
  ASSERT_EQ(two_->exit_code, 0) << two_->err;
  const auto start = std::chrono::steady_clock::now();
  const Result killed =
      RunShell(Mpirun(2, "LLMSYS_TEST_KILL_RANK=1:7") + " run " + *toml_ +
               " --no-progress --set experiment.name=killed "
               "--set train.batch_size=2");
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count();
  EXPECT_NE(killed.exit_code, 0);
  EXPECT_LT(seconds, 60.0);
  EXPECT_TRUE(Contains(killed.out + killed.err, "rank 1"))
      << killed.out << killed.err;
  const fs::path run = Runs() / "killed";
  ASSERT_EQ(ReadJson(run / "checkpoint" / "trainer_state.json")["step"], 5);
  fs::copy(run, Runs() / "killed_one", fs::copy_options::recursive);

  // The same number of ranks: exactly the run that was not killed.
  const Result again =
      RunShell(Mpirun(2) + " run --resume " + run.string() + " --no-progress");
  ASSERT_EQ(again.exit_code, 0) << again.err;
  const Losses two = Read(Runs() / "two"), resumed = Read(run);
  ExpectClose(resumed.train, two.train, 0.0, "resumed on 2 ranks");

  // Another number: one process goes on from step 5 at its own batch.
  const Result one = RunLlmsys(
      "run --resume " + (Runs() / "killed_one").string() + " --no-progress");
  ASSERT_EQ(one.exit_code, 0) << one.err;
  const Losses alone = Read(Runs() / "killed_one");
  EXPECT_EQ(alone.train.size(), 20u);
  for (const auto& [step, loss] : alone.train) EXPECT_TRUE(std::isfinite(loss));
  EXPECT_EQ(ReadJson(Runs() / "killed_one" / "summary.json")["ranks"], 1);
}

TEST_F(DataParallelRunTest, BadDistributedKeysAreNamed) {
  const Result r = RunLlmsys("run " + *toml_ +
                             " --set experiment.name=bad "
                             "--set distributed.timeout=0");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(Contains(r.err, "[distributed] 'timeout'")) << r.err;
  const Result r2 = RunLlmsys("run " + *toml_ +
                              " --set experiment.name=bad "
                              "--set distributed.overlapp=true");
  EXPECT_EQ(r2.exit_code, 1);
  EXPECT_TRUE(Contains(r2.err, "did you mean 'overlap'")) << r2.err;
  EXPECT_FALSE(fs::exists(Runs() / "bad"));
}

// Ranks that read different configurations refuse to start, before any
// file is written (here rank 1 gets another --set in its own arguments).
TEST_F(DataParallelRunTest, RanksWithDifferentConfigurationsRefuseToStart) {
  const std::string args =
      " run " + *toml_ + " --no-progress --set experiment.name=differ ";
  const Result r =
      RunShell(Mpirun(1) + args + "--set train.batch_size=2 : -np 1 " +
               LLMSYS_BINARY + args + "--set train.batch_size=3");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_TRUE(Contains(r.out + r.err,
                       "1 rank(s) resolved another configuration than rank "
                       "0's"))
      << r.out << r.err;
  EXPECT_FALSE(fs::exists(Runs() / "differ"));
}

// A fault-injection value that is not RANK:STEP is named and ignored: the
// run trains on.
TEST_F(DataParallelRunTest, AMalformedKillRankIsIgnoredWithAWarning) {
  const Result r = RunShell(
      "LLMSYS_TEST_KILL_RANK=one:two " + std::string(LLMSYS_BINARY) + " run " +
      *toml_ +
      " --no-progress --set experiment.name=malformed --set train.steps=2");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(Contains(
      r.err, "warning: LLMSYS_TEST_KILL_RANK='one:two' is not RANK:STEP"))
      << r.err;
}

TEST_F(DataParallelRunTest, OnlyRunTrainsOverSeveralRanks) {
  const Result r = RunShell(Mpirun(2) + " plugins");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_TRUE(Contains(r.err, "llmsys plugins: started as one of 2 ranks"))
      << r.err;
}

}  // namespace
}  // namespace llmsys::cli_test
