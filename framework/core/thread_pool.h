// The host's one CPU thread pool: what `parallel_for` in llmsys/host.h
// (ABI 1.2) runs plugin work on, and what the host's own loops use.
//
//   core::ThreadPool::Global().Run(threads, num_tasks,
//                                  [&](int64_t task) { ... });
//
// Workers are started on first use, up to the largest thread count asked
// for, and wait passively (after a short spin) between runs, so they do not
// fight OpenBLAS's own threads for the cores. Tasks are handed out in index
// order to whichever thread is free; a task runs whole on one thread. A run
// started from inside a task, or while another thread's run holds the pool,
// runs its tasks in order on the calling thread. Thread-safe.
#ifndef LLMSYS_FRAMEWORK_CORE_THREAD_POOL_H_
#define LLMSYS_FRAMEWORK_CORE_THREAD_POOL_H_

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>
#include <type_traits>
#include <vector>

namespace llmsys::core {

class ThreadPool {
 public:
  using TaskFn = void (*)(void* arg, int64_t task);

  static ThreadPool& Global();

  ThreadPool() = default;
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  // Runs fn(arg, task) for task in [0, num_tasks) on at most `threads`
  // threads (the caller included) and returns when every task has run.
  void Run(int threads, int64_t num_tasks, void* arg, TaskFn fn);

  template <class Fn>
  void Run(int threads, int64_t num_tasks, Fn&& fn) {
    Run(threads, num_tasks, &fn, [](void* f, int64_t task) {
      (*static_cast<std::remove_reference_t<Fn>*>(f))(task);
    });
  }

  // Worker threads started so far (tests).
  int workers() const;

 private:
  // One run. A worker that wakes late holds its own reference and finds
  // every task claimed, so it never calls a finished run's fn.
  struct Job {
    void* arg;
    TaskFn fn;
    int64_t num_tasks;
    int helpers;  // workers [0, helpers) may take part
    std::atomic<int64_t> next{0};
    std::atomic<int64_t> done{0};
  };

  void Work(int index);
  static void RunTasks(Job& job);

  mutable std::mutex start_mu_;  // guards workers_ growth
  std::mutex run_mu_;            // held by the thread whose run is on
  std::mutex wake_mu_;           // guards job_
  std::condition_variable wake_;
  std::vector<std::thread> workers_;
  std::atomic<uint64_t> generation_{0};
  std::shared_ptr<Job> job_;
  bool stop_ = false;
};

// The threads the host's own loops over large tensors may use (copies into
// and sums over strided views, zero fills): the run's thread count, set
// with the op dispatcher's (runtime::OpDispatcher::set_num_threads); 1
// until set. Process-wide: the last setting wins. Those loops are
// element-wise, so the count never changes a result.
void SetHostThreads(int threads);
int HostThreads();

}  // namespace llmsys::core

#endif  // LLMSYS_FRAMEWORK_CORE_THREAD_POOL_H_
