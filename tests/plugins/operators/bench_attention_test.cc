// `llmsys bench attention` (the binary): the table at tiny sizes, parsed;
// flash's memory against materialized's; the skips of attention.naive and
// of rows too large; JSON; and bad usage.
#include <gtest/gtest.h>

#include <sstream>
#include <string>
#include <vector>

#include "tests/tools/cli_test_util.h"

namespace {

using llmsys::cli_test::Output;

Output RunLlmsys(const std::string& args) {
  return llmsys::cli_test::RunLlmsysMerged(args);
}

TEST(BenchAttention, PrintsOneRowPerSizeAndImplementation) {
  const Output out = RunLlmsys(
      "bench attention --n 16,70 --b 2 --h 2 --d 8 --causal --threads 2");
  ASSERT_EQ(out.code, 0) << out.text;
  EXPECT_NE(out.text.find("B 2 H 2 D 8, M = N, causal, 2 threads"),
            std::string::npos)
      << out.text;
  std::istringstream lines(out.text);
  std::string line;
  std::vector<std::string> seen;
  while (std::getline(lines, line)) {
    std::istringstream row(line);
    long long n = 0;
    std::string impl, rss;
    double ms = -1, tensors = -1;
    if (!(row >> n >> impl >> ms >> rss >> tensors)) continue;
    SCOPED_TRACE(line);
    seen.push_back(std::to_string(n) + " " + impl);
    EXPECT_GT(ms, 0);
    // Outputs and gradients: out, lse, dq, dk, dv at least.
    const double floats = 4.0 * 2 * 2 * n * 8 + 2 * 2 * n;
    EXPECT_GE(tensors * (1 << 20), floats * 4 * 0.99);
    if (rss != "n/a") {
      EXPECT_GE(std::stod(rss), 0);
    }
  }
  const std::vector<std::string> want = {"16 materialized", "16 blas",
                                         "16 flash",        "70 materialized",
                                         "70 blas",         "70 flash"};
  EXPECT_EQ(seen, want) << out.text;
  EXPECT_NE(out.text.find("counted: peak RSS rise"), std::string::npos);
  EXPECT_NE(out.text.find("N 70: flash / materialized: time "),
            std::string::npos)
      << out.text;
}

// At N = 256 (B 2, H 2) the materialized rows hold 2 x 2 x 256 x 256 floats
// twice, 2 MiB, and flash a few 64 x 64 tiles: the memory ratio shows it.
TEST(BenchAttention, FlashHoldsFarLessThanMaterialized) {
  const Output out = RunLlmsys(
      "bench attention --n 256 --b 2 --h 2 --d 16 --threads 1 "
      "--impl materialized,flash --json");
  ASSERT_EQ(out.code, 0) << out.text;
  const size_t at = out.text.find("\"peak_memory\": ");
  ASSERT_NE(at, std::string::npos) << out.text;
  EXPECT_LT(std::stod(out.text.substr(at + 15)), 0.5) << out.text;
}

TEST(BenchAttention, SkipsNaiveWithTheReason) {
  const Output out = RunLlmsys(
      "bench attention --n 8,64 --b 1 --h 1 --d 4 --impl naive,flash "
      "--max-naive-s 0 --json");
  ASSERT_EQ(out.code, 0) << out.text;
  // The first N is always measured (the prediction needs it); the second
  // is predicted to pass 0 s.
  EXPECT_NE(out.text.find("\"n\": 8,\n      \"peak_rss_bytes\""),
            std::string::npos)
      << out.text;
  EXPECT_NE(out.text.find("\"skipped\": \"predicted"), std::string::npos)
      << out.text;
  EXPECT_NE(out.text.find("\"impl\": \"flash\""), std::string::npos);
  const Output mem = RunLlmsys(
      "bench attention --n 8 --b 1 --h 1 --d 4 --impl materialized "
      "--max-gib 0");
  ASSERT_EQ(mem.code, 0) << mem.text;
  EXPECT_NE(mem.text.find("skipped: predicted memory"), std::string::npos)
      << mem.text;
}

TEST(BenchAttention, BadUsageSaysWhatIsWrong) {
  Output out = RunLlmsys("bench attention --n 16,x");
  EXPECT_EQ(out.code, 2);
  EXPECT_NE(out.text.find("--n: expected comma-separated integers"),
            std::string::npos)
      << out.text;
  EXPECT_NE(out.text.find("got 'x'"), std::string::npos) << out.text;
  out = RunLlmsys("bench attention --d 0");
  EXPECT_EQ(out.code, 2);
  EXPECT_NE(out.text.find("--d must be in [1, 4096], got 0"), std::string::npos)
      << out.text;
  out = RunLlmsys("bench attention --impl flsh");
  EXPECT_EQ(out.code, 2);
  EXPECT_NE(out.text.find("no attention implementation 'flsh'"),
            std::string::npos)
      << out.text;
  EXPECT_NE(out.text.find("did you mean 'flash'"), std::string::npos);
}

}  // namespace
