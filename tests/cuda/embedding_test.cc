// embedding.cuda on the emulated device (tests/cuda/emu: cuda/embedding.cu
// compiled for the CPU, called through the plugin's host code): the
// backward's bitonic sort schedule (run on the CPU with the kernels' own
// index functions), its workspace plan, the argument checks, and the
// gather and the scatter-add gradient against the reference's rules written
// out below in double (repeated rows, out-of-range indices, sorts of one
// tile and of many), for int32 and int64 indices and all four float dtypes.
#include "cuda/embedding.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "framework/tensor/tensor.h"
#include "tests/cuda/cuda_test_util.h"

namespace llmsys::cuda_test {
namespace {

using tensor::kBF16;
using tensor::kF16;
using tensor::kF32;
using tensor::kF64;
using tensor::kI32;
using tensor::kI64;
using tensor::Tensor;
using Shape = std::vector<int64_t>;
using Vec = std::vector<double>;

// ---- the sort ----

// The kernels' compare-exchange of pair t in step (k, j), on the CPU.
void Step(std::vector<uint64_t>& a, int64_t base, int64_t t, int64_t k,
          int64_t j) {
  const int64_t i = cuda::BitonicLower(t, j);
  uint64_t& lo = a[base + i];
  uint64_t& hi = a[base + i + j];
  if ((lo > hi) == cuda::BitonicAscending(base + i, k)) std::swap(lo, hi);
}

// The launcher's schedule: the tile sort, then BitonicSteps (global steps
// over the whole array, shared-memory merges per tile).
void Sort(std::vector<uint64_t>& a, int64_t tile) {
  const int64_t m = static_cast<int64_t>(a.size());
  for (int64_t base = 0; base < m; base += tile)
    for (int64_t k = 2; k <= tile; k *= 2)
      for (int64_t j = k / 2; j > 0; j /= 2)
        for (int64_t t = 0; t < tile / 2; ++t) Step(a, base, t, k, j);
  for (const cuda::SortStep& s : cuda::BitonicSteps(m, tile)) {
    if (s.j > 0) {
      for (int64_t t = 0; t < m / 2; ++t) Step(a, 0, t, s.k, s.j);
    } else {
      for (int64_t base = 0; base < m; base += tile)
        for (int64_t j = tile / 2; j > 0; j /= 2)
          for (int64_t t = 0; t < tile / 2; ++t) Step(a, base, t, s.k, j);
    }
  }
}

TEST(EmbeddingPlanTest, TheBitonicScheduleSortsForEveryTileSize) {
  std::mt19937_64 gen(3);
  for (int64_t m = 2; m <= 4096; m *= 2) {
    for (int64_t tile :
         {int64_t{2}, int64_t{8}, int64_t{64}, cuda::kEmbeddingSortTile}) {
      if (tile > m) continue;
      std::vector<uint64_t> a(static_cast<size_t>(m));
      for (uint64_t& x : a) x = gen() % 50;  // many equal keys
      std::vector<uint64_t> want = a;
      std::sort(want.begin(), want.end());
      Sort(a, tile);
      EXPECT_EQ(a, want) << "m " << m << " tile " << tile;
    }
  }
}

TEST(EmbeddingPlanTest, ScheduleAndWorkspace) {
  // GPT-2: N = 8192 positions, V = 50257 rows.
  const cuda::EmbeddingGradPlan p = cuda::PlanEmbeddingGrad(8192, 50257);
  EXPECT_TRUE(p.supported);
  EXPECT_EQ(p.sort_size, 8192);
  EXPECT_EQ(p.tile, 2048);
  EXPECT_EQ(p.bounds_offset, 8192u * 8);
  EXPECT_EQ(p.workspace, 8192u * 8 + 2u * 50257 * 4);
  // Three stages above the tile: 1 + 2 global steps, 2 merges.
  const std::vector<cuda::SortStep> steps = cuda::BitonicSteps(8192, 2048);
  ASSERT_EQ(steps.size(), 5u);
  EXPECT_EQ(steps[0].k, 4096);
  EXPECT_EQ(steps[0].j, 2048);
  EXPECT_EQ(steps[1].j, 0);
  EXPECT_EQ(steps[2].k, 8192);
  EXPECT_EQ(steps[2].j, 4096);
  // Small N: at least two keys; one tile, no further step.
  const cuda::EmbeddingGradPlan one = cuda::PlanEmbeddingGrad(1, 3);
  EXPECT_EQ(one.sort_size, 2);
  EXPECT_EQ(one.tile, 2);
  EXPECT_TRUE(cuda::BitonicSteps(2, 2).empty());
  EXPECT_EQ(cuda::PlanEmbeddingGrad(5000, 10).sort_size, 8192);
  EXPECT_FALSE(cuda::PlanEmbeddingGrad(int64_t{1} << 31, 10).supported);
  EXPECT_FALSE(cuda::PlanEmbeddingGrad(10, int64_t{1} << 31).supported);
  EXPECT_EQ(cuda::EmbeddingThreads(1), 32);
  EXPECT_EQ(cuda::EmbeddingThreads(192), 192);
  EXPECT_EQ(cuda::EmbeddingThreads(193), 224);
  EXPECT_EQ(cuda::EmbeddingThreads(100000), 256);
}

// ---- argument checks ----

TEST(EmbeddingInferTest, OutputIsIndicesShapeThenC) {
  for (DLDataType t : {kF32, kF64, kBF16, kF16})
    for (DLDataType it : {kI32, kI64}) {
      absl::StatusOr<Specs> s = Infer(
          "embedding.cuda", {FakeTensor{{10, 4}, t}, FakeTensor{{2, 3}, it}});
      ASSERT_TRUE(s.ok()) << s.status();
      EXPECT_EQ((*s)[0].first, (Shape{2, 3, 4}));
      EXPECT_TRUE(llmsys_dtype_equal((*s)[0].second, t));
    }
}

TEST(EmbeddingInferTest, BadInputsNameTheProblem) {
  struct Bad {
    std::vector<std::optional<FakeTensor>> in;
    std::string says;
  };
  for (const Bad& b : std::vector<Bad>{
           {{FakeTensor{{10}, kF32}, FakeTensor{{3}, kI64}}, "must be 2-D"},
           {{FakeTensor{{10, 4}, kF32}, FakeTensor{{3}, kF32}},
            "must be int32 or int64"},
           {{FakeTensor{{10, 4}, kI32}, FakeTensor{{3}, kI32}},
            "must be float32"},
       }) {
    absl::StatusOr<Specs> s = Infer("embedding.cuda", b.in);
    ASSERT_FALSE(s.ok()) << b.says;
    EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(s.status().message().find(b.says), std::string::npos)
        << s.status();
  }
}

// ---- values ----

Vec Random(int64_t n, uint32_t seed) {
  return RandomUniform(n, seed, -1.0, 1.0);
}

double Tolerance(DLDataType t) {
  if (llmsys_dtype_equal(t, kF64)) return 1e-12;
  if (llmsys_dtype_equal(t, kF32)) return 1e-5;
  return 2e-2;
}

// Runs embedding forward and backward on the emulated device and checks
// the gather (zero rows for indices outside [0, V)) and the gradient (each
// row the sum of its positions' gradient rows) against double.
void Check(int64_t v, int64_t c, const std::vector<int64_t>& idx, DLDataType t,
           DLDataType it) {
  SCOPED_TRACE("V " + std::to_string(v) + " C " + std::to_string(c) + " N " +
               std::to_string(idx.size()));
  std::unique_ptr<runtime::OperatorImpl> impl =
      EmulatedOp("embedding.cuda", "embedding");
  ASSERT_NE(impl, nullptr);
  const int64_t n = static_cast<int64_t>(idx.size());
  const Tensor w = OnDevice({v, c}, Random(v * c, 1), t);
  const Tensor ti = OnDevice({n}, Vec(idx.begin(), idx.end()), it);
  const runtime::ParamPack attrs = *impl->Attrs({});
  runtime::CallOptions options;
  options.poison = true;
  absl::StatusOr<std::vector<Tensor>> out =
      impl->Forward({w, ti}, attrs, options);
  ASSERT_TRUE(out.ok()) << out.status();
  const Vec wv = w.ToDoubles();
  const Vec g = OnDevice({n, c}, Random(n * c, 2), t).ToDoubles();
  Vec want(static_cast<size_t>(n * c), 0.0),
      gw(static_cast<size_t>(v * c), 0.0);
  for (int64_t p = 0; p < n; ++p) {
    if (idx[p] < 0 || idx[p] >= v) continue;
    for (int64_t j = 0; j < c; ++j) {
      want[p * c + j] = wv[idx[p] * c + j];
      gw[idx[p] * c + j] += g[p * c + j];
    }
  }
  EXPECT_EQ((*out)[0].ToDoubles(), want);
  absl::StatusOr<std::vector<Tensor>> grads =
      impl->Backward({w, ti}, {{true, {v, c}, t}, {true, {n}, it}}, attrs,
                     options, *out, {OnDevice({n, c}, g, t)}, {true, false});
  ASSERT_TRUE(grads.ok()) << grads.status();
  const Vec got = (*grads)[0].ToDoubles();
  ASSERT_EQ(got.size(), gw.size());
  for (size_t i = 0; i < got.size(); ++i)
    ASSERT_NEAR(got[i], gw[i], Tolerance(t) * (1.0 + std::abs(gw[i]))) << i;
}

TEST(EmbeddingTest, GatherAndScatterAddInEveryDtype) {
  const std::vector<int64_t> idx = {3, 0, 3, 7, 1, 3, 0, 9, 2, 2, 8};
  for (DLDataType t : {kF64, kF32, kBF16, kF16})
    for (DLDataType it : {kI32, kI64}) {
      Check(10, 8, idx, t, it);  // 16-byte packs
      Check(10, 5, idx, t, it);  // one element at a time
    }
}

TEST(EmbeddingTest, IndicesOutOfRangeGiveZeroRowsAndNoGradient) {
  const std::vector<int64_t> idx = {-1, 2, 4, 100, 2, -7};
  for (DLDataType it : {kI32, kI64}) Check(4, 3, idx, kF64, it);
}

TEST(EmbeddingTest, SortsLargerThanOneTile) {
  // 5000 positions over 40 rows: an 8192-key sort with global steps; the
  // gradient of a row adds ~125 positions in position order.
  std::mt19937 gen(9);
  std::vector<int64_t> idx(5000);
  for (int64_t& i : idx) i = static_cast<int64_t>(gen() % 40);
  Check(40, 4, idx, kF64, kI64);
  Check(40, 4, idx, kF32, kI32);
}

TEST(EmbeddingTest, NoPositionsOrNoIncomingGradientGiveZeros) {
  Check(6, 4, {}, kF32, kI64);
  std::unique_ptr<runtime::OperatorImpl> impl =
      EmulatedOp("embedding.cuda", "embedding");
  ASSERT_NE(impl, nullptr);
  const Tensor w = OnDevice({3, 2}, Random(6, 1), kF32);
  const Tensor ti = OnDevice({2}, {0, 2}, kI32);
  const runtime::ParamPack attrs = *impl->Attrs({});
  absl::StatusOr<std::vector<Tensor>> out = impl->Forward({w, ti}, attrs, {});
  ASSERT_TRUE(out.ok()) << out.status();
  absl::StatusOr<std::vector<Tensor>> grads =
      impl->Backward({w, ti}, {{true, {3, 2}, kF32}, {true, {2}, kI32}}, attrs,
                     {}, *out, {Tensor()}, {true, false});
  ASSERT_TRUE(grads.ok()) << grads.status();
  EXPECT_EQ((*grads)[0].ToDoubles(), Vec(6, 0.0));
}

}  // namespace
}  // namespace llmsys::cuda_test
