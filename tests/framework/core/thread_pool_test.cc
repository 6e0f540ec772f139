// The host's thread pool and the SDK's ParallelFor / ParallelRange on it:
// every task once, nested and concurrent runs, exceptions, the ranges.
#include "framework/core/thread_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <stdexcept>
#include <thread>
#include <vector>

#include "llmsys/sdk.hpp"

namespace llmsys::core {
namespace {

TEST(ThreadPoolTest, RunsEveryTaskOnceOnAtMostTheThreadsAsked) {
  ThreadPool pool;
  for (int threads : {1, 2, 3, 8}) {
    std::vector<std::atomic<int>> runs(1000);
    std::mutex mu;
    std::vector<std::thread::id> ids;
    pool.Run(threads, 1000, [&](int64_t t) {
      runs[static_cast<size_t>(t)].fetch_add(1);
      std::lock_guard<std::mutex> lock(mu);
      if (std::find(ids.begin(), ids.end(), std::this_thread::get_id()) ==
          ids.end())
        ids.push_back(std::this_thread::get_id());
    });
    for (const auto& r : runs) ASSERT_EQ(r.load(), 1) << threads << " threads";
    EXPECT_LE(static_cast<int>(ids.size()), threads);
  }
  EXPECT_EQ(pool.workers(), 7);  // started for the largest run
  pool.Run(4, 0, [](int64_t) { FAIL() << "no task to run"; });
}

TEST(ThreadPoolTest, HostThreadsAreSetAndAtLeastOne) {
  EXPECT_EQ(HostThreads(), 1);  // until set
  SetHostThreads(3);
  EXPECT_EQ(HostThreads(), 3);
  SetHostThreads(0);
  EXPECT_EQ(HostThreads(), 1);
}

TEST(ThreadPoolTest, NestedAndConcurrentRunsFinish) {
  ThreadPool pool;
  std::atomic<int> inner{0};
  pool.Run(2, 4, [&](int64_t) {
    pool.Run(2, 5, [&](int64_t) { inner.fetch_add(1); });  // in order
  });
  EXPECT_EQ(inner.load(), 20);
  // Two threads running at once: one holds the pool, the other runs its
  // tasks itself; both complete.
  std::atomic<int> a{0}, b{0};
  std::thread other([&] {
    for (int i = 0; i < 200; ++i) pool.Run(2, 16, [&](int64_t) { ++a; });
  });
  for (int i = 0; i < 200; ++i) pool.Run(2, 16, [&](int64_t) { ++b; });
  other.join();
  EXPECT_EQ(a.load(), 200 * 16);
  EXPECT_EQ(b.load(), 200 * 16);
}

// A host table with only parallel_for, as a 1.2 host hands it to plugins.
struct FakeHost {
  llmsys_host_api_t api;
  llmsys_call_context_t ctx;
  explicit FakeHost(int threads, bool with_pool = true) {
    std::memset(&api, 0, sizeof(api));
    api.struct_size = sizeof(api);
    if (with_pool)
      api.parallel_for = [](const llmsys_host_api_t*, int32_t n, int64_t tasks,
                            void* arg, void (*fn)(void*, int64_t)) {
        ThreadPool::Global().Run(n, tasks, arg, fn);
      };
    std::memset(&ctx, 0, sizeof(ctx));
    ctx.struct_size = sizeof(ctx);
    ctx.host = &api;
    ctx.num_threads = threads;
  }
};

TEST(SdkParallelTest, RangesDependOnTheThreadCountOnly) {
  for (int threads : {1, 2, 3}) {
    FakeHost host(threads);
    std::vector<std::pair<int64_t, int64_t>> ranges(8, {-1, -1});
    std::atomic<int> count{0};
    sdk::ParallelRange(&host.ctx, 10, 3, [&](int64_t begin, int64_t end) {
      ranges[static_cast<size_t>(count++)] = {begin, end};
    });
    ranges.resize(static_cast<size_t>(count.load()));
    std::sort(ranges.begin(), ranges.end());
    ASSERT_EQ(static_cast<int>(ranges.size()), threads);  // <= ceil(10/3)
    EXPECT_EQ(ranges.front().first, 0);
    EXPECT_EQ(ranges.back().second, 10);
    for (size_t i = 1; i < ranges.size(); ++i)
      EXPECT_EQ(ranges[i].first, ranges[i - 1].second);
  }
  FakeHost many(16);
  std::atomic<int> parts{0};
  sdk::ParallelRange(&many.ctx, 10, 4, [&](int64_t, int64_t) { ++parts; });
  EXPECT_EQ(parts.load(), 3);  // grain 4: ceil(10 / 4) ranges at most
}

TEST(SdkParallelTest, AnExceptionInATaskIsRethrownAfterTheRest) {
  FakeHost host(2);
  std::atomic<int> ran{0};
  EXPECT_THROW(sdk::ParallelFor(&host.ctx, 50,
                                [&](int64_t t) {
                                  ++ran;
                                  if (t == 7)
                                    sdk::Fail(LLMSYS_STATUS_INTERNAL, "task 7");
                                }),
               sdk::Error);
  EXPECT_EQ(ran.load(), 50);
}

TEST(SdkParallelTest, AnOlderHostRunsTheTasksInOrder) {
  FakeHost old(4, /*with_pool=*/false);
  old.api.struct_size = offsetof(llmsys_host_api_t, parallel_for);  // 1.1
  std::vector<int64_t> order;
  sdk::ParallelFor(&old.ctx, 5, [&](int64_t t) { order.push_back(t); });
  EXPECT_EQ(order, (std::vector<int64_t>{0, 1, 2, 3, 4}));
}

}  // namespace
}  // namespace llmsys::core
