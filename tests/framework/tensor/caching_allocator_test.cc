// CachingAllocator over a fake device allocator that counts calls and can
// be told to fail: size classes, reuse, the retry after emptying the
// cache, the cache cap, and the statistics.
#include "framework/tensor/caching_allocator.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <map>
#include <set>
#include <vector>

namespace llmsys::tensor {
namespace {

struct FakeDevice {
  int64_t capacity = int64_t{1} << 40;
  int64_t used = 0;
  int mallocs = 0, frees = 0;
  std::set<void*> live;

  CachingAllocator::Backend Backend() {
    return {.malloc = [this](size_t bytes) -> void* {
              if (used + static_cast<int64_t>(bytes) > capacity) return nullptr;
              void* p = std::malloc(bytes);
              used += static_cast<int64_t>(bytes);
              ++mallocs;
              live.insert(p);
              sizes[p] = bytes;
              return p;
            },
            .free =
                [this](void* p) {
                  used -= static_cast<int64_t>(sizes[p]);
                  live.erase(p);
                  ++frees;
                  std::free(p);
                },
            .device_name = "fake:0"};
  }
  std::map<void*, size_t> sizes;
};

TEST(CachingAllocatorTest, RoundsToSizeClasses) {
  EXPECT_EQ(CachingAllocator::RoundSize(0), 512u);
  EXPECT_EQ(CachingAllocator::RoundSize(1), 512u);
  EXPECT_EQ(CachingAllocator::RoundSize(512), 512u);
  EXPECT_EQ(CachingAllocator::RoundSize(513), 1024u);
  EXPECT_EQ(CachingAllocator::RoundSize((1 << 20) - 1), size_t{1} << 20);
  // Above 1 MiB: four classes per power of two.
  EXPECT_EQ(CachingAllocator::RoundSize(1 << 20), size_t{1} << 20);
  EXPECT_EQ(CachingAllocator::RoundSize((1 << 20) + 1), size_t{1280} << 10);
  EXPECT_EQ(CachingAllocator::RoundSize(3 << 20), size_t{3} << 20);
  EXPECT_EQ(CachingAllocator::RoundSize((3 << 20) + 5), size_t{3584} << 10);
  for (size_t b : {size_t{1} << 21, size_t{5'000'000}, size_t{123'456'789}}) {
    const size_t r = CachingAllocator::RoundSize(b);
    EXPECT_GE(r, b);
    EXPECT_LE(r, b + b / 4) << b;  // at most 25% waste
  }
}

TEST(CachingAllocatorTest, ReusesFreedBlocksOfTheSameClass) {
  FakeDevice dev;
  CachingAllocator cache(dev.Backend());
  void* a = *cache.Allocate(1000);
  cache.Free(a);
  void* b = *cache.Allocate(1024);  // same class (1024)
  EXPECT_EQ(a, b);
  EXPECT_EQ(dev.mallocs, 1);
  void* c = *cache.Allocate(4096);  // another class: a new block
  EXPECT_NE(c, b);
  EXPECT_EQ(dev.mallocs, 2);
  const DeviceMemory m = cache.Memory();
  EXPECT_EQ(m.in_use, 1024 + 4096);
  EXPECT_EQ(m.cached, 0);
  EXPECT_EQ(m.cache_hits, 1);
  EXPECT_EQ(m.device_allocs, 2);
  cache.Free(b);
  cache.Free(c);
  EXPECT_EQ(cache.Memory().cached, 1024 + 4096);
  EXPECT_EQ(cache.Memory().reserved, 1024 + 4096);
  cache.EmptyCache();
  EXPECT_EQ(dev.frees, 2);
  EXPECT_EQ(cache.Memory().reserved, 0);
}

TEST(CachingAllocatorTest, ATrainingLoopAllocatesOnlyInItsFirstStep) {
  FakeDevice dev;
  CachingAllocator cache(dev.Backend());
  const std::vector<size_t> step = {4096, 3 << 20, 768, 4096, 50257 * 4};
  for (int s = 0; s < 5; ++s) {
    std::vector<void*> held;
    for (size_t b : step) held.push_back(*cache.Allocate(b));
    for (void* p : held) cache.Free(p);
  }
  EXPECT_EQ(dev.mallocs, static_cast<int>(step.size()));
  EXPECT_EQ(cache.Memory().cache_hits, 4 * static_cast<int64_t>(step.size()));
}

TEST(CachingAllocatorTest, OutOfMemoryGivesTheCacheBackAndRetries) {
  FakeDevice dev;
  dev.capacity = 8 << 20;
  CachingAllocator cache(dev.Backend());
  void* a = *cache.Allocate(6 << 20);
  cache.Free(a);  // cached: 6 MiB of the 8 held
  // 4 MiB do not fit beside the cached 6: the cache goes back, then it fits.
  absl::StatusOr<void*> b = cache.Allocate(4 << 20);
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(dev.frees, 1);
  EXPECT_EQ(cache.Memory().cached, 0);
  // Now truly full: a clear error naming the device and the figures.
  absl::StatusOr<void*> c = cache.Allocate(6 << 20);
  ASSERT_FALSE(c.ok());
  EXPECT_TRUE(absl::IsResourceExhausted(c.status()));
  EXPECT_NE(c.status().message().find("out of memory on fake:0"),
            std::string::npos)
      << c.status();
  EXPECT_NE(c.status().message().find("4 MiB in use"), std::string::npos)
      << c.status();
  cache.Free(*b);
}

TEST(CachingAllocatorTest, CapEvictsTheBlocksFreedLongestAgo) {
  FakeDevice dev;
  CachingAllocator cache(dev.Backend(), /*max_cached_bytes=*/2048);
  void* a = *cache.Allocate(1024);
  void* b = *cache.Allocate(2048);
  void* c = *cache.Allocate(512);
  cache.Free(a);  // cached 1024
  cache.Free(c);  // cached 1536
  cache.Free(b);  // 3584 > 2048: a (oldest) then c go back
  EXPECT_EQ(cache.Memory().cached, 2048);
  EXPECT_EQ(dev.live.count(a), 0u);
  EXPECT_EQ(dev.live.count(c), 0u);
  EXPECT_EQ(dev.live.count(b), 1u);
  void* again = *cache.Allocate(2048);
  EXPECT_EQ(again, b);
  cache.Free(again);
}

TEST(CachingAllocatorTest, PeaksAndForeignPointers) {
  FakeDevice dev;
  CachingAllocator cache(dev.Backend());
  void* a = *cache.Allocate(1 << 20);
  void* b = *cache.Allocate(1 << 20);
  cache.Free(a);
  EXPECT_EQ(cache.Memory().peak_in_use, 2 << 20);
  cache.ResetPeak();
  EXPECT_EQ(cache.Memory().peak_in_use, 1 << 20);
  int local = 0;
  cache.Free(&local);  // not its block: ignored, never freed
  cache.Free(nullptr);
  EXPECT_EQ(cache.Memory().in_use, 1 << 20);
  cache.Free(b);
}

}  // namespace
}  // namespace llmsys::tensor
