#include "framework/core/thread_pool.h"

#include <algorithm>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace llmsys::core {
namespace {

inline void Pause() {
#if defined(__x86_64__) || defined(__i386__)
  _mm_pause();
#else
  std::this_thread::yield();
#endif
}

thread_local bool in_task = false;

std::atomic<int> host_threads{1};

// Iterations a worker spins on the generation counter before sleeping:
// long enough to catch the next op's run (a few microseconds apart in a
// training step), short enough not to steal a core from OpenBLAS.
constexpr int kSpin = 200;

}  // namespace

ThreadPool& ThreadPool::Global() {
  static ThreadPool* pool = new ThreadPool();  // never destroyed: workers
  return *pool;                                // may outlive static dtors
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(wake_mu_);
    stop_ = true;
    generation_.fetch_add(1);
  }
  wake_.notify_all();
  for (std::thread& t : workers_) t.join();
}

int ThreadPool::workers() const {
  std::lock_guard<std::mutex> lock(start_mu_);
  return static_cast<int>(workers_.size());
}

void ThreadPool::RunTasks(Job& job) {
  for (;;) {
    const int64_t task = job.next.fetch_add(1, std::memory_order_relaxed);
    if (task >= job.num_tasks) return;
    job.fn(job.arg, task);
    job.done.fetch_add(1, std::memory_order_release);
  }
}

void ThreadPool::Work(int index) {
  uint64_t seen = 0;
  for (;;) {
    for (int i = 0;
         generation_.load(std::memory_order_acquire) == seen && i < kSpin; ++i)
      Pause();
    std::shared_ptr<Job> job;
    {
      std::unique_lock<std::mutex> lock(wake_mu_);
      wake_.wait(lock, [&] {
        return generation_.load(std::memory_order_acquire) != seen;
      });
      seen = generation_.load(std::memory_order_acquire);
      if (stop_) return;
      job = job_;
    }
    if (job == nullptr || index >= job->helpers) continue;
    in_task = true;
    RunTasks(*job);
    in_task = false;
  }
}

void ThreadPool::Run(int threads, int64_t num_tasks, void* arg, TaskFn fn) {
  if (num_tasks <= 0) return;
  const int64_t want = std::min<int64_t>(threads, num_tasks);
  std::unique_lock<std::mutex> run(run_mu_, std::defer_lock);
  if (want <= 1 || in_task || !run.try_lock()) {
    for (int64_t t = 0; t < num_tasks; ++t) fn(arg, t);
    return;
  }
  const int helpers = static_cast<int>(want) - 1;
  {
    std::lock_guard<std::mutex> lock(start_mu_);
    while (static_cast<int>(workers_.size()) < helpers) {
      const int index = static_cast<int>(workers_.size());
      workers_.emplace_back([this, index] { Work(index); });
    }
  }
  auto job = std::make_shared<Job>();
  job->arg = arg;
  job->fn = fn;
  job->num_tasks = num_tasks;
  job->helpers = helpers;
  {
    std::lock_guard<std::mutex> lock(wake_mu_);
    job_ = job;
    generation_.fetch_add(1, std::memory_order_release);
  }
  wake_.notify_all();
  in_task = true;
  RunTasks(*job);
  in_task = false;
  while (job->done.load(std::memory_order_acquire) < num_tasks) Pause();
}

void SetHostThreads(int threads) {
  host_threads.store(threads < 1 ? 1 : threads, std::memory_order_relaxed);
}

int HostThreads() { return host_threads.load(std::memory_order_relaxed); }

}  // namespace llmsys::core
