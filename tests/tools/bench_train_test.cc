// `llmsys bench train` end to end on a tiny gpt: the table and its JSON,
// the bad-input messages; and tools/bench_torch.py --smoke when
// /usr/bin/python3 can import torch (skipped otherwise).
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>

#include "framework/cuda/cuda_backend.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/tools/cli_test_util.h"

namespace {

using llmsys::cli_test::Contains;
using llmsys::cli_test::Result;
using llmsys::cli_test::RunLlmsys;
using llmsys::cli_test::WriteTinyGpt;

// "name   value" lines of the table after the first line.
std::map<std::string, std::string> ParseTable(const std::string& out) {
  std::map<std::string, std::string> rows;
  std::istringstream in(out);
  std::string line;
  std::getline(in, line);  // the title
  while (std::getline(in, line)) {
    const size_t gap = line.find("  ");
    if (gap == std::string::npos) continue;
    const size_t value = line.find_first_not_of(' ', gap);
    if (value == std::string::npos) continue;
    rows[line.substr(0, gap)] = line.substr(value);
  }
  return rows;
}

TEST(BenchTrainTest, PrintsTheTableAndJson) {
  const std::string dir =
      ::testing::TempDir() + "llmsys_bench_train_" + std::to_string(getpid());
  // Batch 2 x 8 tokens = 16 tokens/step.
  const std::string toml =
      WriteTinyGpt(dir,
                   "[optimizer]\nuse = \"adamw\"\n[train]\nbatch_size = "
                   "2\nblock_size = 8\n");
  Result r = RunLlmsys("bench train " + toml +
                       " --steps 2 --warmup 1 --threads 1 --generate 5");
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_TRUE(Contains(r.out, "2 steps timed after 1 warm-up")) << r.out;
  auto rows = ParseTable(r.out);
  // vocabulary: 13 characters + 4 specials = 17; 1 layer of width 16; 8
  // positions ([train] block_size):
  // 17*16 + 8*16 + (12*16*16 + 13*16) + 2*16 = 3712.
  EXPECT_EQ(rows["parameters"], "3712") << r.out;
  EXPECT_EQ(rows["threads"], "1") << r.out;
  EXPECT_EQ(rows["tokens/step"], "16") << r.out;
  const double median = std::atof(rows["ms/step (median)"].c_str());
  const double mean = std::atof(rows["ms/step (mean)"].c_str());
  EXPECT_GT(median, 0) << r.out;
  EXPECT_GT(mean, 0) << r.out;
  // Two timed steps: the median is their mean.
  EXPECT_NEAR(median, mean, 0.011) << r.out;
  // tokens/s = tokens/step / mean, the mean printed to 0.01 ms.
  const double tps = std::atof(rows["tokens/s"].c_str());
  EXPECT_GE(tps, 16 / ((mean + 0.006) / 1e3) - 1) << r.out;
  if (mean > 0.006) {
    EXPECT_LE(tps, 16 / ((mean - 0.006) / 1e3) + 1) << r.out;
  }
  EXPECT_GT(std::atof(rows["peak memory (MiB)"].c_str()), 1.0) << r.out;
  EXPECT_EQ(rows["generated tokens"], "5") << r.out;
  EXPECT_GT(std::atof(rows["generate tokens/s"].c_str()), 0) << r.out;
  EXPECT_FALSE(Contains(r.out, "run directory")) << r.out;

  // --json --keep --profile: the per-op table and a kept run directory.
  r = RunLlmsys("bench train " + toml +
                " --steps 3 --warmup 0 --json --keep --profile");
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  const nlohmann::json j = nlohmann::json::parse(r.out, nullptr, false);
  ASSERT_TRUE(j.is_object()) << r.out;
  EXPECT_EQ(j["steps"], 3);
  EXPECT_EQ(j["warmup"], 0);
  EXPECT_EQ(j["parameters"], 3712);
  EXPECT_GT(j["tokens_per_second"].get<double>(), 0);
  EXPECT_GT(j["ms_per_step_median"].get<double>(), 0);
  EXPECT_TRUE(Contains(r.err, "matmul")) << r.err;  // the op table
  const std::string run_dir = j.value("run_dir", "");
  EXPECT_TRUE(std::filesystem::exists(run_dir + "/metrics.jsonl")) << run_dir;
  std::filesystem::remove_all(std::filesystem::path(run_dir).parent_path());
  std::filesystem::remove_all(dir);
}

TEST(BenchTrainTest, BadInput) {
  Result r = RunLlmsys("bench train /no/such/bench.toml");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(Contains(r.err, "/no/such/bench.toml: no such experiment file"))
      << r.err;
  r = RunLlmsys("bench train");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(Contains(r.err, "needs an experiment file")) << r.err;
  const std::string toml =
      std::string(LLMSYS_SOURCE_DIR) + "/experiments/bench/gpt_s.toml";
  r = RunLlmsys("bench train " + toml + " --steps 0");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(Contains(r.err, "--steps must be in [1, 1000000], got 0"))
      << r.err;
  r = RunLlmsys("bench train " + toml + " --warmup -1");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(Contains(r.err, "--warmup must be in [0, 1000000], got -1"))
      << r.err;
  r = RunLlmsys("bench train " + toml + " --threads 0");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(Contains(r.err, "--threads must be in [1, 1024], got 0"))
      << r.err;
  // A config error names the key.
  r = RunLlmsys("bench train " + toml + " --steps 1 --set train.batch_size=0");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(Contains(r.err, "batch_size")) << r.err;
}

// `llmsys bench cuda` where no GPU can run: a message saying why, exit 1;
// a bad option: the usage, exit 2. (With a GPU it would run the benchmark:
// tools/gpu_check.sh does that.)
TEST(BenchCudaTest, WithoutAGpuSaysWhy) {
  Result r = RunLlmsys("bench cuda --bogus");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(Contains(r.err, "unrecognised option '--bogus'")) << r.err;
  EXPECT_TRUE(Contains(r.err, "usage: llmsys bench cuda")) << r.err;
  if (llmsys::cuda::GpuAvailable().ok()) GTEST_SKIP() << "a GPU is here";
  r = RunLlmsys("bench cuda --quick");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(Contains(r.err, "llmsys bench cuda: no GPU can run here: "))
      << r.err;
}

// tools/bench_torch.py --smoke: the peer script runs and prints the same
// parameter counts as our gpt (S: 3,258,880; M: 13,891,584).
TEST(BenchTrainTest, TorchPeerSmoke) {
  if (std::system("/usr/bin/python3 -c 'import torch' >/dev/null 2>&1") != 0)
    GTEST_SKIP() << "/usr/bin/python3 cannot import torch";
  const std::string out_file =
      ::testing::TempDir() + "bench_torch_" + std::to_string(getpid());
  const std::string command =
      std::string("/usr/bin/python3 ") + LLMSYS_SOURCE_DIR +
      "/tools/bench_torch.py --smoke --json > " + out_file + " 2>&1";
  ASSERT_EQ(std::system(command.c_str()), 0);
  std::ifstream in(out_file);
  std::stringstream text;
  text << in.rdbuf();
  std::remove(out_file.c_str());
  const nlohmann::json j = nlohmann::json::parse(text.str(), nullptr, false);
  ASSERT_TRUE(j.is_array()) << text.str();
  ASSERT_EQ(j.size(), 2u) << text.str();
  EXPECT_EQ(j[0]["parameters"], 3258880) << text.str();
  EXPECT_EQ(j[1]["parameters"], 13891584) << text.str();
  EXPECT_GT(j[0]["tokens_per_second"].get<double>(), 0) << text.str();
  EXPECT_GT(j[0]["generate_tokens_per_second"].get<double>(), 0) << text.str();
}

}  // namespace
