// llmsys.ladder (plugins/operators/ladder): every rung of the matmul ladder
// against the reference on shapes that are not multiples of the tiles or
// the micro-kernel (forward and both gradients, float32), a float64
// gradient check, thread-count independence of matmul.parallel, the low
// priority, and `llmsys bench matmul`'s table and errors (the binary).
#include <gtest/gtest.h>

#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "tests/plugins/operators/reference_test_util.h"
#include "tests/tools/cli_test_util.h"

namespace llmsys::plugins_test {
namespace {

using tensor::kF32;
using tensor::kF64;

std::unique_ptr<OperatorImpl> LadderOp(const std::string& id) {
  return BuiltinOp("ladder.so", id, "matmul");
}

const std::vector<std::string> kRungs = {"matmul.naive", "matmul.loop_order",
                                         "matmul.tiled", "matmul.simd",
                                         "matmul.parallel"};

// Worst |a - b| / max(1, |b|).
double MaxRelError(const Tensor& a, const Tensor& b) {
  EXPECT_EQ(a.shape(), b.shape());
  const std::vector<double> x = a.ToDoubles(), y = b.ToDoubles();
  if (x.size() != y.size()) return INFINITY;
  double worst = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    const double e = std::abs(x[i] - y[i]) / std::max(1.0, std::abs(y[i]));
    if (!(e <= worst)) worst = e;  // NaN (an unwritten element) wins
  }
  return worst;
}

// Output and both input gradients of `id` equal the reference's.
void ExpectMatchesReference(const std::string& id,
                            const std::vector<Tensor>& inputs,
                            const AttrList& attrs, int threads = 1) {
  SCOPED_TRACE(id + " with " + std::to_string(threads) + " threads");
  auto impl = LadderOp(id);
  auto ref = ReferenceOp("matmul");
  ASSERT_NE(impl, nullptr);
  ASSERT_NE(ref, nullptr);
  runtime::CallOptions options;
  options.num_threads = threads;
  std::vector<Tensor> a = RunForward(*impl, inputs, attrs, options);
  std::vector<Tensor> b = RunForward(*ref, inputs, attrs, options);
  ASSERT_EQ(a.size(), 1u);
  ASSERT_EQ(b.size(), 1u);
  EXPECT_LT(MaxRelError(a[0], b[0]), 1e-5) << "output";
  const Tensor w = RandomTensor(b[0].shape(), b[0].dtype(), 7);
  std::vector<Tensor> ga = RunBackward(*impl, inputs, attrs, w, options);
  std::vector<Tensor> gb = RunBackward(*ref, inputs, attrs, w, options);
  ASSERT_EQ(ga.size(), 2u);
  ASSERT_EQ(gb.size(), 2u);
  for (size_t i = 0; i < 2; ++i)
    EXPECT_LT(MaxRelError(ga[i], gb[i]), 1e-5) << "gradient " << i;
}

struct Case {
  std::string name;
  tensor::Shape a, b;
  bool ta = false, tb = false;
};

// Shapes off every block size: 1, primes, past the packed kernel's 256-deep
// k blocks and 192-row A blocks and its 1024-wide B panels, transposed,
// batched with broadcasting, a shared weight, and an empty inner dim.
const std::vector<Case>& Cases() {
  static const std::vector<Case> cases = {
      {"1x1x1", {1, 1}, {1, 1}},
      {"17x33x65", {17, 33}, {33, 65}},
      {"transpose_a", {33, 17}, {33, 65}, true, false},
      {"transpose_b", {17, 33}, {65, 33}, false, true},
      {"transpose_both", {33, 17}, {65, 33}, true, true},
      {"batch_broadcast", {2, 1, 13, 21}, {3, 21, 19}},
      {"batch_broadcast_transposed", {3, 21, 13}, {1, 19, 21}, true, true},
      {"shared_weight", {3, 37, 70}, {50, 70}, false, true},
      {"past_the_blocks", {200, 300}, {300, 41}},
      {"wide_b_panel", {9, 5}, {5, 1030}},
      {"empty_inner_dim", {3, 0}, {0, 4}},
  };
  return cases;
}

TEST(Ladder, EveryRungMatchesTheReferenceForwardAndBackward) {
  for (const std::string& id : kRungs) {
    for (const Case& c : Cases()) {
      SCOPED_TRACE(c.name);
      ExpectMatchesReference(
          id, {RandomTensor(c.a, kF32, 1), RandomTensor(c.b, kF32, 2)},
          {{"transpose_a", c.ta}, {"transpose_b", c.tb}},
          id == "matmul.parallel" ? 3 : 1);
    }
  }
}

TEST(Ladder, ParallelSplitsRowsAndGivesTheSameBitsForAnyThreadCount) {
  auto impl = LadderOp("matmul.parallel");
  ASSERT_NE(impl, nullptr);
  const std::vector<Tensor> in = {RandomTensor({130, 300}, kF32, 3),
                                  RandomTensor({300, 257}, kF32, 4)};
  std::vector<double> first;
  for (int threads : {1, 2, 3, 8}) {
    runtime::CallOptions options;
    options.num_threads = threads;
    std::vector<Tensor> out = RunForward(*impl, in, {}, options);
    ASSERT_EQ(out.size(), 1u);
    if (first.empty())
      first = out[0].ToDoubles();
    else
      EXPECT_EQ(out[0].ToDoubles(), first) << threads << " threads";
  }
  // And the same bits as the one-thread simd rung.
  auto simd = LadderOp("matmul.simd");
  ASSERT_NE(simd, nullptr);
  EXPECT_EQ(RunForward(*simd, in, {})[0].ToDoubles(), first);
}

TEST(Ladder, Float64GradientsMatchCentralDifferences) {
  for (const std::string& id : kRungs) {
    SCOPED_TRACE(id);
    auto impl = LadderOp(id);
    ASSERT_NE(impl, nullptr);
    EXPECT_LT(CheckedGrad(*impl,
                          {RandomTensor({2, 3, 4}, kF64, 5),
                           RandomTensor({5, 4}, kF64, 6)},
                          {{"transpose_b", true}}),
              1e-6);
  }
}

TEST(Ladder, BadShapesAreInvalidArguments) {
  for (const std::string& id : kRungs) {
    SCOPED_TRACE(id);
    auto impl = LadderOp(id);
    ASSERT_NE(impl, nullptr);
    ExpectInvalid(TryForward(*impl, {RandomTensor({2, 3}, kF32, 1),
                                     RandomTensor({4, 5}, kF32, 2)}),
                  {"inner dims differ", "K 3 vs 4"});
  }
}

TEST(Ladder, RungsHaveLowPriorityAndSayWhichKernel) {
  for (const std::string& id : kRungs) {
    absl::StatusOr<const runtime::Component*> c =
        BuiltinPlugin("ladder.so").Find(LLMSYS_KIND_OPERATOR, id);
    ASSERT_TRUE(c.ok()) << c.status();
    EXPECT_LT((*c)->As<llmsys_operator_t>()->priority, 0) << id;
    EXPECT_NE((*c)->As<llmsys_operator_t>()->backward, nullptr) << id;
  }
  const std::string simd =
      (*BuiltinPlugin("ladder.so").Find(LLMSYS_KIND_OPERATOR, "matmul.simd"))
          ->description;
  EXPECT_TRUE(simd.find("AVX-512") != std::string::npos ||
              simd.find("AVX2") != std::string::npos ||
              simd.find("falls back to the tiled") != std::string::npos)
      << simd;
}

// ---- llmsys bench matmul ----

using llmsys::cli_test::Output;

Output RunLlmsys(const std::string& args) {
  return llmsys::cli_test::RunLlmsysMerged(args);
}

TEST(BenchMatmul, PrintsTheLadderTable) {
  const Output out = RunLlmsys("bench matmul --size 64 --reps 1 --threads 2");
  ASSERT_EQ(out.code, 0) << out.text;
  std::istringstream lines(out.text);
  std::string line;
  std::vector<std::string> seen;
  bool peak = false;
  while (std::getline(lines, line)) {
    if (line.rfind("peak = ", 0) == 0) {
      peak = true;
      EXPECT_NE(line.find("GHz x 2 cores"), std::string::npos) << line;
      continue;
    }
    std::istringstream row(line);
    std::string impl, abs_x, rel_x, pct;
    double ms = 0, gflops = 0, err = 0;
    if (!(row >> impl >> ms >> gflops >> abs_x >> rel_x >> pct >> err))
      continue;
    if (impl == "version") continue;
    SCOPED_TRACE(line);
    seen.push_back(impl);
    EXPECT_GT(ms, 0);
    EXPECT_GT(gflops, 0);
    EXPECT_EQ(abs_x.back(), 'x');
    EXPECT_EQ(rel_x.back(), 'x');
    EXPECT_EQ(pct.back(), '%');
    EXPECT_GT(std::stod(pct), 0);
    EXPECT_LT(err, 1e-5);
    if (seen.size() == 1) {
      EXPECT_EQ(abs_x, "1.0x");
    }
  }
  EXPECT_TRUE(peak) << out.text;
  // The ladder in order (blas only where OpenBLAS was found).
  std::vector<std::string> want = {"reference", "naive", "loop_order",
                                   "tiled",     "simd",  "parallel"};
  ASSERT_GE(seen.size(), want.size()) << out.text;
  EXPECT_EQ(std::vector<std::string>(seen.begin(), seen.begin() + 6), want)
      << out.text;
}

TEST(BenchMatmul, JsonHasOneRowPerImplementation) {
  const Output out = RunLlmsys(
      "bench matmul --size 33 --reps 1 --threads 1 --impl tiled,simd --json");
  ASSERT_EQ(out.code, 0) << out.text;
  EXPECT_NE(out.text.find("\"impl\": \"tiled\""), std::string::npos)
      << out.text;
  EXPECT_NE(out.text.find("\"impl\": \"simd\""), std::string::npos);
  EXPECT_EQ(out.text.find("\"impl\": \"naive\""), std::string::npos);
  EXPECT_NE(out.text.find("\"peak_gflops\""), std::string::npos);
}

TEST(BenchMatmul, BadUsageSaysWhatIsWrong) {
  Output out = RunLlmsys("bench matmul --size 0");
  EXPECT_EQ(out.code, 2);
  EXPECT_NE(out.text.find("--size must be in [1, 16384], got 0"),
            std::string::npos)
      << out.text;
  out = RunLlmsys("bench matmul --size 8 --impl tiledd");
  EXPECT_EQ(out.code, 2);
  EXPECT_NE(out.text.find("no matmul implementation 'tiledd'"),
            std::string::npos)
      << out.text;
  EXPECT_NE(out.text.find("tiled"), std::string::npos);
  out = RunLlmsys("bench matmull");
  EXPECT_EQ(out.code, 2);
  EXPECT_NE(out.text.find("unknown benchmark 'matmull'"), std::string::npos)
      << out.text;
  out = RunLlmsys("bench matmul --reps x");
  EXPECT_EQ(out.code, 2);
  EXPECT_NE(out.text.find("error:"), std::string::npos) << out.text;
}

}  // namespace
}  // namespace llmsys::plugins_test
