// framework/tensor/caching_allocator.h — a caching allocator for device
// memory: freed blocks are kept in size classes and handed out again, so a
// training loop that allocates the same sizes every step calls the
// device's allocator (cudaMalloc, which synchronizes and takes
// milliseconds) only in its first step.
//
// Sizes round up to a class: multiples of 512 bytes below 1 MiB, and above
// it four classes per power of two (at most 25% waste). A free block is
// reused only for its own class. When the device allocator fails, every
// cached block is given back and the allocation is tried once more; the
// error then says how much was in use and cached. `max_cached_bytes`
// bounds the cache: past it, the blocks freed longest ago go back first.
//
// Work on one stream is ordered, so a block freed while kernels that use it
// are still queued may be handed out at once to the next allocation on the
// same stream (PyTorch's caching allocator makes the same argument); the
// device allocator's own free waits for the device.
//
//   CachingAllocator cache({.malloc = ..., .free = ...});
//   LLMSYS_ASSIGN_OR_RETURN(void* p, cache.Allocate(bytes));
//   cache.Free(p);
//
// Thread-safety: every member is thread-safe (one mutex).
#ifndef LLMSYS_FRAMEWORK_TENSOR_CACHING_ALLOCATOR_H_
#define LLMSYS_FRAMEWORK_TENSOR_CACHING_ALLOCATOR_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <list>
#include <map>
#include <mutex>
#include <string>
#include <unordered_map>

#include "absl/status/statusor.h"

namespace llmsys::tensor {

// What a device's memory looks like through its caching allocator, in
// bytes of whole blocks (rounded sizes).
struct DeviceMemory {
  int64_t in_use = 0;       // handed out and not yet freed
  int64_t peak_in_use = 0;  // since creation or ResetPeak()
  int64_t cached = 0;       // freed, kept for reuse
  int64_t reserved = 0;     // in_use + cached: what the device allocator holds
  int64_t peak_reserved = 0;
  int64_t device_allocs = 0;  // calls to the device allocator that succeeded
  int64_t cache_hits = 0;     // allocations served from the cache
};

class CachingAllocator {
 public:
  struct Backend {
    // Device allocation of exactly `bytes`; nullptr when out of memory.
    std::function<void*(size_t bytes)> malloc;
    std::function<void(void* ptr)> free;
    // For messages: "cuda:0".
    std::string device_name = "device";
  };
  explicit CachingAllocator(Backend backend,
                            int64_t max_cached_bytes = INT64_MAX);
  ~CachingAllocator();  // gives every cached block back (in-use ones leak)
  CachingAllocator(const CachingAllocator&) = delete;
  CachingAllocator& operator=(const CachingAllocator&) = delete;

  // A block of at least `bytes` (0 allowed: one 512-byte block).
  // RESOURCE_EXHAUSTED when the device has no room even after the cache was
  // given back.
  absl::StatusOr<void*> Allocate(size_t bytes);
  // Returns a block from Allocate to the cache; nullptr is ignored.
  void Free(void* ptr);
  // Gives every cached block back to the device allocator.
  void EmptyCache();
  DeviceMemory Memory() const;
  void ResetPeak();

  // The class `bytes` rounds up to.
  static size_t RoundSize(size_t bytes);

 private:
  void EvictLocked(int64_t target_cached);  // mutex held

  Backend backend_;
  const int64_t max_cached_;
  mutable std::mutex mu_;
  std::unordered_map<void*, size_t> in_use_;  // block -> class size
  // Cached blocks, oldest free first, and per class an index into it.
  std::list<std::pair<size_t, void*>> cached_;
  std::multimap<size_t, std::list<std::pair<size_t, void*>>::iterator> by_size_;
  DeviceMemory memory_;
};

}  // namespace llmsys::tensor

#endif  // LLMSYS_FRAMEWORK_TENSOR_CACHING_ALLOCATOR_H_
