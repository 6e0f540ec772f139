#include "framework/tensor/caching_allocator.h"

#include <algorithm>
#include <bit>

#include "absl/strings/str_cat.h"

namespace llmsys::tensor {
namespace {

constexpr size_t kSmallStep = 512;
constexpr size_t kLarge = size_t{1} << 20;

std::string MiB(int64_t bytes) {
  return absl::StrCat(static_cast<double>(bytes) / (1 << 20), " MiB");
}

}  // namespace

size_t CachingAllocator::RoundSize(size_t bytes) {
  if (bytes < kLarge)
    return std::max(kSmallStep,
                    (bytes + kSmallStep - 1) / kSmallStep * kSmallStep);
  // Four classes per power of two: steps of 2^(floor(log2 bytes) - 2).
  const int log2 = std::bit_width(bytes) - 1;
  const size_t step = size_t{1} << (log2 - 2);
  return (bytes + step - 1) / step * step;
}

CachingAllocator::CachingAllocator(Backend backend, int64_t max_cached_bytes)
    : backend_(std::move(backend)), max_cached_(max_cached_bytes) {}

CachingAllocator::~CachingAllocator() { EmptyCache(); }

absl::StatusOr<void*> CachingAllocator::Allocate(size_t bytes) {
  const size_t size = RoundSize(bytes);
  std::lock_guard<std::mutex> lock(mu_);
  void* p = nullptr;
  // The class's most recently freed block (likeliest still in L2).
  if (auto hi = by_size_.upper_bound(size);
      hi != by_size_.begin() && std::prev(hi)->first == size) {
    auto it = std::prev(hi);
    p = it->second->second;
    cached_.erase(it->second);
    by_size_.erase(it);
    memory_.cached -= static_cast<int64_t>(size);
    ++memory_.cache_hits;
  } else {
    p = backend_.malloc(size);
    if (p == nullptr && memory_.cached > 0) {
      const int64_t freed = memory_.cached;
      EvictLocked(0);
      p = backend_.malloc(size);
      if (p == nullptr)
        return absl::ResourceExhaustedError(absl::StrCat(
            "out of memory on ", backend_.device_name, " allocating ",
            MiB(static_cast<int64_t>(size)), " (", MiB(memory_.in_use),
            " in use by tensors; ", MiB(freed),
            " of cached blocks were given back and the allocation retried)"));
    }
    if (p == nullptr)
      return absl::ResourceExhaustedError(absl::StrCat(
          "out of memory on ", backend_.device_name, " allocating ",
          MiB(static_cast<int64_t>(size)), " (", MiB(memory_.in_use),
          " in use by tensors, nothing cached)"));
    ++memory_.device_allocs;
    memory_.reserved += static_cast<int64_t>(size);
    memory_.peak_reserved = std::max(memory_.peak_reserved, memory_.reserved);
  }
  in_use_.emplace(p, size);
  memory_.in_use += static_cast<int64_t>(size);
  memory_.peak_in_use = std::max(memory_.peak_in_use, memory_.in_use);
  return p;
}

void CachingAllocator::Free(void* ptr) {
  if (ptr == nullptr) return;
  std::lock_guard<std::mutex> lock(mu_);
  auto it = in_use_.find(ptr);
  if (it == in_use_.end()) return;  // not ours: a bug elsewhere; never crash
  const size_t size = it->second;
  in_use_.erase(it);
  memory_.in_use -= static_cast<int64_t>(size);
  cached_.emplace_back(size, ptr);
  by_size_.emplace(size, std::prev(cached_.end()));
  memory_.cached += static_cast<int64_t>(size);
  if (memory_.cached > max_cached_) EvictLocked(max_cached_);
}

void CachingAllocator::EvictLocked(int64_t target_cached) {
  while (memory_.cached > target_cached && !cached_.empty()) {
    auto [size, p] = cached_.front();
    // The class index entry that points at the front of the list.
    auto [lo, hi] = by_size_.equal_range(size);
    for (auto it = lo; it != hi; ++it) {
      if (it->second == cached_.begin()) {
        by_size_.erase(it);
        break;
      }
    }
    cached_.pop_front();
    backend_.free(p);
    memory_.cached -= static_cast<int64_t>(size);
    memory_.reserved -= static_cast<int64_t>(size);
  }
}

void CachingAllocator::EmptyCache() {
  std::lock_guard<std::mutex> lock(mu_);
  EvictLocked(0);
}

DeviceMemory CachingAllocator::Memory() const {
  std::lock_guard<std::mutex> lock(mu_);
  return memory_;
}

void CachingAllocator::ResetPeak() {
  std::lock_guard<std::mutex> lock(mu_);
  memory_.peak_in_use = memory_.in_use;
  memory_.peak_reserved = memory_.reserved;
}

}  // namespace llmsys::tensor
