// The MPI communicator and the gradient all-reduce, run as 2 ranks by
// `mpirun -np 2` (ctest's communicator_mpi). Every test runs on every rank;
// collectives are made in the same order on each.
#include "framework/distributed/communicator.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "framework/autograd/autograd.h"
#include "framework/distributed/data_parallel.h"
#include "framework/distributed/mpi_communicator.h"
#include "framework/distributed/pipeline.h"
#include "framework/tensor/tensor.h"

namespace llmsys::distributed {
namespace {

using autograd::Var;
using tensor::Tensor;

std::unique_ptr<Communicator>& WorldHolder() {
  static std::unique_ptr<Communicator> world;
  return world;
}

Communicator& World() {
  std::unique_ptr<Communicator>& world = WorldHolder();
  if (world == nullptr) {
    absl::StatusOr<std::unique_ptr<Communicator>> c = MpiWorld();
    EXPECT_TRUE(c.ok()) << c.status();
    if (c.ok()) world = *std::move(c);
  }
  return *world;
}

// MPI_Finalize (the communicator's destructor) after the last test: a rank
// that exits without it is an abnormal end to mpirun.
class FinalizeMpi : public ::testing::Environment {
 public:
  void TearDown() override { WorldHolder().reset(); }
};
[[maybe_unused]] ::testing::Environment* const kFinalizeMpi =
    ::testing::AddGlobalTestEnvironment(new FinalizeMpi);

TEST(MpiCommunicatorTest, TwoRanks) {
  ASSERT_TRUE(LaunchedByMpi()) << "run me with mpirun -np 2";
  EXPECT_EQ(World().size(), 2);
  EXPECT_EQ(RankPrefix(&World()),
            World().rank() == 0 ? "rank 0/2: " : "rank 1/2: ");
  EXPECT_NE(World().Describe().find("2 ranks"), std::string::npos)
      << World().Describe();
}

TEST(MpiCommunicatorTest, AllReduceSumsEachDtype) {
  const int r = World().rank();
  std::vector<float> f = {1.5f + r, -2.0f * r, 0.25f};
  ASSERT_TRUE(World().AllReduceSum(f.data(), 3, tensor::kF32).ok());
  EXPECT_EQ(f, (std::vector<float>{4.0f, -2.0f, 0.5f}));
  std::vector<double> d = {1e300 * (r + 1), 1.0 / 3};
  ASSERT_TRUE(World().AllReduceSum(d.data(), 2, tensor::kF64).ok());
  EXPECT_EQ(d[0], 3e300);
  EXPECT_EQ(d[1], 2.0 / 3);
  std::vector<int64_t> i = {int64_t{1} << 40, r};
  ASSERT_TRUE(World().AllReduceSum(i.data(), 2, tensor::kI64).ok());
  EXPECT_EQ(i, (std::vector<int64_t>{int64_t{1} << 41, 1}));
  // Nothing to sum is fine; an unsupported dtype says which.
  EXPECT_TRUE(World().AllReduceSum(nullptr, 0, tensor::kF32).ok());
  absl::Status bad = World().AllReduceSum(f.data(), 3, tensor::kBF16);
  EXPECT_TRUE(absl::IsInvalidArgument(bad)) << bad;
  EXPECT_NE(bad.message().find("bfloat16"), std::string::npos) << bad;
}

TEST(MpiCommunicatorTest, StartedAllReduceCompletesByTestOrWait) {
  std::vector<double> a(1000, World().rank() + 1.0), b(5, 1.0);
  auto pa = World().StartAllReduceSum(a.data(), 1000, tensor::kF64);
  auto pb = World().StartAllReduceSum(b.data(), 5, tensor::kF64);
  ASSERT_TRUE(pa.ok() && pb.ok());
  bool done = false;
  for (int i = 0; i < 100000 && !done; ++i) {
    absl::StatusOr<bool> t = (*pb)->Test();
    ASSERT_TRUE(t.ok()) << t.status();
    done = *t;
  }
  ASSERT_TRUE((*pa)->Wait().ok());
  ASSERT_TRUE((*pb)->Wait().ok());  // again after Test: fine
  EXPECT_EQ(a, std::vector<double>(1000, 3.0));
  EXPECT_EQ(b, std::vector<double>(5, 2.0));
}

TEST(MpiCommunicatorTest, BroadcastAndPointToPoint) {
  const int r = World().rank();
  std::vector<char> text(6, 0);
  if (r == 1) std::memcpy(text.data(), "hello", 6);
  ASSERT_TRUE(World().Broadcast(text.data(), 6, /*root=*/1).ok());
  EXPECT_STREQ(text.data(), "hello");
  // A ring of two: each sends its rank to the other.
  int64_t mine = 10 + r, theirs = -1;
  if (r == 0) {
    ASSERT_TRUE(World().Send(&mine, sizeof mine, 1, 7).ok());
    ASSERT_TRUE(World().Recv(&theirs, sizeof theirs, 1, 7).ok());
  } else {
    ASSERT_TRUE(World().Recv(&theirs, sizeof theirs, 0, 7).ok());
    ASSERT_TRUE(World().Send(&mine, sizeof mine, 0, 7).ok());
  }
  EXPECT_EQ(theirs, 10 + (1 - r));
  EXPECT_TRUE(World().Barrier().ok());
}

// A parameter of `shape` with `grad` (or none) on this rank.
Var Param(const tensor::Shape& shape, const std::vector<double>* grad) {
  auto v = std::make_shared<autograd::VarImpl>();
  v->data = *Tensor::Zeros(shape, tensor::kF32);
  v->requires_grad = true;
  if (grad != nullptr)
    v->grad = *Tensor::FromDoubles(shape, *grad, tensor::kF32);
  return v;
}

void CheckSums(bool overlap, int64_t bucket_bytes) {
  const int r = World().rank();
  const std::vector<double> a = {1.0 + r, 2.0, 3.0 * r, 4.0},
                            b = {10.0 * (r + 1), 0.5}, c = {7.0, 8.0, 9.0};
  std::vector<Var> params = {
      Param({2, 2}, &a), Param({2}, &b),
      Param({3}, r == 1 ? &c : nullptr),  // a gradient on rank 1 only
      Param({4}, nullptr)};               // on no rank
  GradientSync sync(World(), params,
                    {.bucket_bytes = bucket_bytes, .overlap = overlap});
  if (bucket_bytes <= 8) {
    EXPECT_EQ(sync.num_buckets(), 4);
  } else {
    EXPECT_EQ(sync.num_buckets(), 1);
  }
  if (overlap) {
    auto hook = sync.Hook();
    ASSERT_TRUE(static_cast<bool>(hook));
    for (size_t i = params.size(); i-- > 0;) hook(params[i]);
  } else {
    EXPECT_FALSE(static_cast<bool>(sync.Hook()));
  }
  ASSERT_TRUE(sync.Finish().ok());
  EXPECT_EQ(params[0]->grad.ToDoubles(),
            (std::vector<double>{3.0, 4.0, 3.0, 8.0}));
  EXPECT_EQ(params[1]->grad.ToDoubles(), (std::vector<double>{30.0, 1.0}));
  EXPECT_EQ(params[2]->grad.ToDoubles(), c);
  EXPECT_FALSE(params[3]->grad.defined());
  // A second step reuses the buckets.
  params[0]->grad = *Tensor::FromDoubles({2, 2}, {1, 1, 1, 1}, tensor::kF32);
  params[1]->grad = Tensor();
  params[2]->grad = Tensor();
  ASSERT_TRUE(sync.Finish().ok());
  EXPECT_EQ(params[0]->grad.ToDoubles(), (std::vector<double>(4, 2.0)));
  EXPECT_FALSE(params[1]->grad.defined());
}

TEST(GradientSyncTest, SumsGradientsInOneBucket) { CheckSums(false, 1 << 20); }
TEST(GradientSyncTest, SumsGradientsInABucketEach) { CheckSums(false, 8); }
TEST(GradientSyncTest, OverlapStartsBucketsFromTheHook) {
  CheckSums(true, 8);
  CheckSums(true, 1 << 20);
}

// A parameter backward never reaches on rank 0 (no gradient, no hook call)
// holds back the buckets after it there; every rank still starts its
// buckets in the same order, so each is summed with its own partners.
TEST(GradientSyncTest, OverlapKeepsTheBucketOrderWhenARankSkipsAParameter) {
  const int r = World().rank();
  const std::vector<double> a = {1.0 + r}, b = {10.0 + r}, c = {100.0 + r},
                            d = {1000.0};
  std::vector<Var> params = {Param({1}, &a), Param({1}, &b), Param({1}, &c),
                             Param({1}, r == 1 ? &d : nullptr)};
  GradientSync sync(World(), params, {.bucket_bytes = 4, .overlap = true});
  ASSERT_EQ(sync.num_buckets(), 4);  // the last parameter's is bucket 0
  auto hook = sync.Hook();
  for (size_t i = 0; i < 3; ++i) hook(params[i]);
  if (r == 1) hook(params[3]);
  ASSERT_TRUE(sync.Finish().ok());
  EXPECT_EQ(params[0]->grad.ToDoubles(), (std::vector<double>{3.0}));
  EXPECT_EQ(params[1]->grad.ToDoubles(), (std::vector<double>{21.0}));
  EXPECT_EQ(params[2]->grad.ToDoubles(), (std::vector<double>{201.0}));
  EXPECT_EQ(params[3]->grad.ToDoubles(), (std::vector<double>{1000.0}));
}

TEST(GradientSyncTest, BroadcastMakesRankZerosWeights) {
  Var p = Param({3}, nullptr);
  ASSERT_TRUE(p->data.Fill(World().rank() == 0 ? 1.5 : -4.0).ok());
  ASSERT_TRUE(BroadcastParameters(World(), {p}).ok());
  EXPECT_EQ(p->data.ToDoubles(), (std::vector<double>(3, 1.5)));
}

// ---- what pipeline parallelism moves (distributed/pipeline.h) ----

TEST(PipelineTransportTest, ATensorGoesWithItsDtypeAndShape) {
  // A transposed view (not contiguous) of float64, and an empty int64.
  if (World().rank() == 0) {
    absl::StatusOr<Tensor> t =
        Tensor::FromDoubles({2, 3}, {1, 2, 3, 4, 5, 6}, tensor::kF64);
    ASSERT_TRUE(t.ok());
    absl::StatusOr<Tensor> view = t->Permute({1, 0});
    ASSERT_TRUE(view.ok());
    ASSERT_TRUE(SendTensor(World(), *view, 1, 7).ok());
    absl::StatusOr<Tensor> empty = Tensor::Empty({0, 4}, tensor::kI64);
    ASSERT_TRUE(empty.ok());
    ASSERT_TRUE(SendTensor(World(), *empty, 1, 7).ok());
  } else {
    absl::StatusOr<Tensor> got = RecvTensor(World(), 0, 7);
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(got->shape(), (tensor::Shape{3, 2}));
    EXPECT_TRUE(llmsys_dtype_equal(got->dtype(), tensor::kF64));
    EXPECT_EQ(got->ToDoubles(), (std::vector<double>{1, 4, 2, 5, 3, 6}));
    absl::StatusOr<Tensor> empty = RecvTensor(World(), 0, 7);
    ASSERT_TRUE(empty.ok()) << empty.status();
    EXPECT_EQ(empty->shape(), (tensor::Shape{0, 4}));
  }
}

TEST(PipelineTransportTest, GatherNamedKeepsTheFirstRanksCopyOfAName) {
  auto filled = [](double v) {
    absl::StatusOr<Tensor> t = Tensor::FromDoubles({2}, {v, v}, tensor::kF32);
    EXPECT_TRUE(t.ok());
    return *t;
  };
  const int r = World().rank();
  NamedTensors mine = {{"shared", filled(10 + r)},
                       {r == 0 ? "a" : "b", filled(r)}};
  absl::StatusOr<NamedTensors> all = GatherNamed(World(), 0, mine);
  ASSERT_TRUE(all.ok()) << all.status();
  if (r != 0) {
    EXPECT_TRUE(all->empty());
    return;
  }
  ASSERT_EQ(all->size(), 3u);
  EXPECT_EQ((*all)[0].first, "shared");
  EXPECT_EQ((*all)[0].second.ToDoubles(), (std::vector<double>{10, 10}));
  EXPECT_EQ((*all)[1].first, "a");
  EXPECT_EQ((*all)[2].first, "b");
  EXPECT_EQ((*all)[2].second.ToDoubles(), (std::vector<double>{1, 1}));
}

// Both ranks hold "tied"; only rank 1 holds "own" and only rank 0 "mine".
TEST(PipelineTransportTest, SharedParametersSumTheirGradientsOnEveryHolder) {
  const int r = World().rank();
  Var tied = Param({3}, nullptr);
  Var alone = Param({2}, nullptr);
  absl::StatusOr<Tensor> g =
      Tensor::FromDoubles({3}, {1.0 + r, 2.0, -0.5 * r}, tensor::kF32);
  ASSERT_TRUE(g.ok());
  tied->grad = *g;
  absl::StatusOr<SharedParameters> shared = SharedParameters::Find(
      World(), {{"tied", tied}, {r == 0 ? "mine" : "own", alone}});
  ASSERT_TRUE(shared.ok()) << shared.status();
  EXPECT_EQ(shared->holders().size(), 1u);
  EXPECT_EQ(shared->holders().at("tied"), (std::vector<int>{0, 1}));
  EXPECT_EQ(shared->Counts("tied"), r == 0);  // the lowest holder counts it
  EXPECT_TRUE(shared->Counts(r == 0 ? "mine" : "own"));
  ASSERT_TRUE(shared->SumGradients().ok());
  EXPECT_EQ(tied->grad.ToDoubles(), (std::vector<double>{3, 4, -0.5}));
  EXPECT_FALSE(alone->grad.defined());
}

TEST(GpuPerRankTest, SaysWhenAMachineHasMoreRanksThanGpus) {
  const int here = World().local_size();
  EXPECT_TRUE(GpuPerRank(World(), here).ok());
  absl::Status none = GpuPerRank(World(), 0);
  EXPECT_TRUE(absl::IsFailedPrecondition(none)) << none;
  EXPECT_NE(none.message().find("not one GPU per rank: 2 rank(s) run on a "
                                "machine with more ranks than GPUs"),
            std::string::npos)
      << none;
  EXPECT_GE(World().local_rank(), 0);
  EXPECT_LT(World().local_rank(), here);
  EXPECT_EQ(World().buffer_device().device_type, kDLCPU);
}

// Split: a group of both ranks in reverse order, then a group each.
TEST(MpiCommunicatorTest, SplitMakesGroupsByColorRankedByKey) {
  const int r = World().rank();
  absl::StatusOr<std::unique_ptr<Communicator>> reversed =
      World().Split(/*color=*/0, /*key=*/-r, "reversed");
  ASSERT_TRUE(reversed.ok()) << reversed.status();
  Communicator& g = **reversed;
  EXPECT_EQ(g.size(), 2);
  EXPECT_EQ(g.rank(), 1 - r);
  EXPECT_EQ(g.Who(), absl::StrCat("rank ", r, "/2 (reversed)"));
  EXPECT_EQ(RankPrefix(&g), absl::StrCat("rank ", r, "/2 (reversed): "));
  double v = g.rank() + 1.0;
  ASSERT_TRUE(g.AllReduceSum(&v, 1, tensor::kF64).ok());
  EXPECT_EQ(v, 3.0);
  int64_t x = g.rank() == 0 ? 42 : 0;  // group rank 0 is world rank 1
  ASSERT_TRUE(g.Broadcast(&x, sizeof x, /*root=*/0).ok());
  EXPECT_EQ(x, 42);
  int mine = r, theirs = -1;
  if (g.rank() == 0) {
    ASSERT_TRUE(g.Send(&mine, sizeof mine, 1, 3).ok());
    ASSERT_TRUE(g.Recv(&theirs, sizeof theirs, 1, 3).ok());
  } else {
    ASSERT_TRUE(g.Recv(&theirs, sizeof theirs, 0, 3).ok());
    ASSERT_TRUE(g.Send(&mine, sizeof mine, 0, 3).ok());
  }
  EXPECT_EQ(theirs, 1 - r);

  // The group's timeout is its own; its messages name the peer's world
  // rank. World rank 1 (group rank 0) waits 0.5 s for a message world
  // rank 0 sends after 1.5 s (to a buffer that outlives the test: MPI
  // completes the abandoned receive later).
  g.set_timeout(0.5);
  static int late = 0;
  if (r == 1) {
    absl::Status s = g.Recv(&late, sizeof late, /*peer=*/1, 4);
    EXPECT_TRUE(absl::IsDeadlineExceeded(s)) << s;
    EXPECT_NE(s.message().find("rank 1/2 (reversed): no answer from the "
                               "other ranks"),
              std::string::npos)
        << s;
    EXPECT_NE(s.message().find("a receive of 4 bytes from rank 0"),
              std::string::npos)
        << s;
  } else {
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));
    EXPECT_TRUE(g.Send(&mine, sizeof mine, /*peer=*/0, 4).ok());
  }
  g.set_timeout(300);
  EXPECT_TRUE(World().Barrier().ok());

  absl::StatusOr<std::unique_ptr<Communicator>> alone =
      World().Split(/*color=*/r, /*key=*/0, "alone");
  ASSERT_TRUE(alone.ok()) << alone.status();
  EXPECT_EQ((*alone)->size(), 1);
  EXPECT_EQ((*alone)->rank(), 0);
  EXPECT_EQ((*alone)->Who(), absl::StrCat("rank ", r, "/2 (alone)"));
  double five = 5;
  ASSERT_TRUE((*alone)->AllReduceSum(&five, 1, tensor::kF64).ok());
  EXPECT_EQ(five, 5.0);
}

// Last: it leaves the ranks one barrier apart until the late one arrives.
TEST(MpiCommunicatorTest, AWaitPastTheTimeoutNamesTheRankAndTheCall) {
  World().set_timeout(1.0);
  if (World().rank() == 1)
    std::this_thread::sleep_for(std::chrono::milliseconds(2500));
  const auto start = std::chrono::steady_clock::now();
  absl::Status s = World().Barrier();
  const double waited =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count();
  if (World().rank() == 0) {
    EXPECT_TRUE(absl::IsDeadlineExceeded(s)) << s;
    EXPECT_NE(s.message().find("rank 0/2: no answer from the other ranks"),
              std::string::npos)
        << s;
    EXPECT_NE(s.message().find("a barrier"), std::string::npos) << s;
    EXPECT_LT(waited, 2.0);
  } else {
    EXPECT_TRUE(s.ok()) << s;
  }
  World().set_timeout(300);
  // Rank 0's abandoned barrier completed when rank 1 arrived; both agree
  // again on what comes next.
  std::this_thread::sleep_for(std::chrono::milliseconds(1700));
  double one = 1;
  EXPECT_TRUE(World().AllReduceSum(&one, 1, tensor::kF64).ok());
  EXPECT_EQ(one, 2.0);
}

}  // namespace
}  // namespace llmsys::distributed
