// The CPU scheduler behind the emulated CUDA headers (see emu.h).
//
// A launch runs its blocks one after another on the calling OS thread (or
// on Options::workers threads). A block's threads are coroutines with
// their own stacks on that OS thread: the scheduler runs every runnable
// thread until it reaches a synchronization point (__syncthreads, a warp
// exchange) or exits, then completes whatever can complete — a warp
// exchange once every lane its mask names has arrived at it, the barrier
// once every live thread has — and runs again. When nothing can complete,
// the block is stuck: on a GPU a hang or undefined behaviour, here a
// launch failure whose message names the threads and source lines.
#include "tests/cuda/emu/emu.h"

#include <cuda_runtime.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <new>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#if defined(__SANITIZE_ADDRESS__)
#define LLMSYS_EMU_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define LLMSYS_EMU_ASAN 1
#endif
#endif
#ifdef LLMSYS_EMU_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif

#if defined(__x86_64__) && !defined(LLMSYS_EMU_UCONTEXT)
#define LLMSYS_EMU_ASM_SWITCH 1
// Saves the callee-saved registers on the current stack, stores the stack
// pointer in *save_sp, loads load_sp and restores what is saved there. A
// new context's stack holds the same frame with llmsys_emu_trampoline as
// the return address, which calls r13(r12). The floating-point control
// registers (MXCSR, x87) are not switched: saving them made up most of a
// switch's cost, and neither kernels nor the scheduler change them.
extern "C" void llmsys_emu_switch(void** save_sp, void* load_sp);
extern "C" void llmsys_emu_trampoline();
asm(R"(
  .pushsection .text
  .p2align 4
  .globl llmsys_emu_switch
  .hidden llmsys_emu_switch
  .type llmsys_emu_switch, @function
llmsys_emu_switch:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
  .size llmsys_emu_switch, .-llmsys_emu_switch

  .p2align 4
  .globl llmsys_emu_trampoline
  .hidden llmsys_emu_trampoline
  .type llmsys_emu_trampoline, @function
llmsys_emu_trampoline:
  .cfi_startproc
  .cfi_undefined rip
  movq %r12, %rdi
  callq *%r13
  ud2
  .cfi_endproc
  .size llmsys_emu_trampoline, .-llmsys_emu_trampoline
  .popsection
)");
#else
#include <ucontext.h>
#endif

namespace emu {
namespace {

// ---- options, last error, messages ----

std::mutex options_mu;
bool options_loaded = false;
Options options;

Options LoadOptions() {
  Options o;
  if (const char* order = std::getenv("LLMSYS_EMU_ORDER")) {
    const std::string_view v = order;
    if (v == "reverse") {
      o.order = Order::kReverse;
    } else if (v.starts_with("shuffle")) {
      o.order = Order::kShuffle;
      if (v.size() > 8 && v[7] == ':')
        o.seed = std::strtoull(order + 8, nullptr, 10);
    }
  }
  if (const char* w = std::getenv("LLMSYS_EMU_WORKERS"))
    o.workers = std::max(1, std::atoi(w));
  if (const char* v = std::getenv("LLMSYS_EMU_VERBOSE"))
    o.verbose = std::string_view(v) != "" && std::string_view(v) != "0";
  return o;
}

thread_local cudaError_t last_error = cudaSuccess;
thread_local cudaError_t last_failure = cudaSuccess;
thread_local std::string last_message;
thread_local std::string error_text;  // what ErrorString returned last
thread_local uint64_t launches = 0;

std::mutex attributes_mu;
std::unordered_map<const void*, int>& MaxDynamicSmem() {
  static auto* map = new std::unordered_map<const void*, int>;
  return *map;
}

// `file` relative to the repository root when it lies inside it.
std::string_view ShortPath(const char* file) {
  static const std::string_view root = [] {
    const std::string_view self = __FILE__;
    const size_t at = self.rfind("tests/cuda/emu/emu.cc");
    return at == std::string_view::npos ? std::string_view()
                                        : self.substr(0, at);
  }();
  std::string_view f = file;
  if (!root.empty() && f.starts_with(root)) f.remove_prefix(root.size());
  return f;
}

std::string Where(const std::source_location& w) {
  return std::string(ShortPath(w.file_name())) + ":" +
         std::to_string(w.line()) + ":" + std::to_string(w.column());
}

bool SameSite(const std::source_location& a, const std::source_location& b) {
  return a.line() == b.line() && a.column() == b.column() &&
         (a.file_name() == b.file_name() ||
          std::strcmp(a.file_name(), b.file_name()) == 0);
}

// "0..31, 40, 64..95" (at most a few ranges, then "...").
std::string Ranges(const std::vector<int>& ids) {
  std::string s;
  int shown = 0;
  for (size_t i = 0; i < ids.size();) {
    size_t j = i;
    while (j + 1 < ids.size() && ids[j + 1] == ids[j] + 1) ++j;
    if (shown == 6) {
      s += ", ...";
      break;
    }
    if (!s.empty()) s += ", ";
    s += std::to_string(ids[i]);
    if (j > i) s += ".." + std::to_string(ids[j]);
    ++shown;
    i = j + 1;
  }
  return s;
}

const char* WarpOpName(WarpKind k) {
  switch (k) {
    case WarpKind::kShflIdx:
      return "__shfl_sync";
    case WarpKind::kShflUp:
      return "__shfl_up_sync";
    case WarpKind::kShflDown:
      return "__shfl_down_sync";
    case WarpKind::kShflXor:
      return "__shfl_xor_sync";
    case WarpKind::kSync:
      return "__syncwarp";
    case WarpKind::kBallot:
      return "__ballot_sync/__any_sync/__all_sync";
  }
  return "?";
}

const char* BarrierName(int kind) {
  static const char* const names[] = {"__syncthreads", "__syncthreads_count",
                                      "__syncthreads_and", "__syncthreads_or"};
  return names[kind];
}

std::string Hex(unsigned v) {
  char buf[16];
  std::snprintf(buf, sizeof(buf), "0x%08x", v);
  return buf;
}

std::string Dims(const int64_t d[3]) {
  return "(" + std::to_string(d[0]) + "," + std::to_string(d[1]) + "," +
         std::to_string(d[2]) + ")";
}

// ---- coroutine contexts and stacks ----

struct Stack {
  char* lo = nullptr;  // lowest usable byte (a guard page lies below)
  size_t size = 0;
  size_t page = 0;
};

Stack NewStack() {
  Stack s;
  s.page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  s.size = kStackBytes;
  void* p =
      mmap(nullptr, s.size + s.page, PROT_READ | PROT_WRITE,
           MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
  if (p == MAP_FAILED) {
    std::fprintf(stderr, "llmsys emu: cannot map a %zu-byte thread stack\n",
                 s.size);
    std::abort();
  }
  mprotect(p, s.page, PROT_NONE);  // a stack overflow faults here
  s.lo = static_cast<char*>(p) + s.page;
  return s;
}

void FreeStack(const Stack& s) { munmap(s.lo - s.page, s.size + s.page); }

#ifdef LLMSYS_EMU_ASM_SWITCH
struct Context {
  void* sp = nullptr;
};
void SwitchContext(Context* from, Context* to) {
  llmsys_emu_switch(&from->sp, to->sp);
}
void MakeContext(Context* c, const Stack& s, void (*entry)(void*), void* arg) {
  // After the 7 pops and the return, rsp is `top`: 16-byte aligned, as
  // the trampoline's call needs.
  uintptr_t top = reinterpret_cast<uintptr_t>(s.lo) + s.size;
  top = (top & ~uintptr_t{15}) - 16;
  void** sp = reinterpret_cast<void**>(top - 56);
  sp[0] = nullptr;                         // r15
  sp[1] = nullptr;                         // r14
  sp[2] = reinterpret_cast<void*>(entry);  // r13
  sp[3] = arg;                             // r12
  sp[4] = nullptr;                         // rbx
  sp[5] = nullptr;                         // rbp (ends backtraces)
  sp[6] = reinterpret_cast<void*>(&llmsys_emu_trampoline);
  c->sp = sp;
}
#else
struct Context {
  ucontext_t uc;
};
thread_local void (*uc_entry)(void*);
thread_local void* uc_arg;
void UcontextEntry() { uc_entry(uc_arg); }
void SwitchContext(Context* from, Context* to) {
  swapcontext(&from->uc, &to->uc);
}
void MakeContext(Context* c, const Stack& s, void (*entry)(void*), void* arg) {
  getcontext(&c->uc);
  c->uc.uc_stack.ss_sp = s.lo;
  c->uc.uc_stack.ss_size = s.size;
  c->uc.uc_link = nullptr;
  // The entry reads its argument from thread-locals: a context starts on
  // the OS thread that made it, before that thread makes another.
  uc_entry = entry;
  uc_arg = arg;
  makecontext(&c->uc, &UcontextEntry, 0);
}
#endif

// ---- one OS thread's block runner ----

enum class State : uint8_t { kReady, kBarrier, kWarp, kExited };

struct Thread {
  Context ctx;
  uint3 idx{};
  State state = State::kReady;
  bool started = false;
  // At a barrier: its kind, this thread's predicate, the block's result.
  int barrier_kind = 0;
  int predicate = 0;
  int barrier_result = 0;
  std::source_location where;  // the barrier or warp exchange it waits at
  WarpOp* op = nullptr;        // the warp exchange (in the thread's frame)
  uint64_t full_warp_ops = 0;  // full-mask exchanges completed
#ifdef LLMSYS_EMU_ASAN
  void* fake_stack = nullptr;
#endif
};

struct Failure {
  cudaError_t code = cudaSuccess;
  std::string message;
};

class Runner;
thread_local Runner* active = nullptr;  // whose threads run on this OS thread

void ThreadMain(void* runner);

class Runner {
 public:
  Runner() = default;
  Runner(const Runner&) = delete;
  Runner& operator=(const Runner&) = delete;
  ~Runner() {
    for (const Stack& s : stacks_) FreeStack(s);
    FreeSmem();
  }

  // Prepares for the blocks of one launch on this OS thread.
  void Setup(const LaunchSpec& spec, const void* closure) {
    spec_ = &spec;
    closure_ = closure;
    n_ = static_cast<int>(spec.block[0] * spec.block[1] * spec.block[2]);
    threads_.assign(n_, Thread{});
    while (static_cast<int>(stacks_.size()) < n_) stacks_.push_back(NewStack());
    for (int i = 0; i < n_; ++i) {
      threads_[i].idx =
          uint3{static_cast<unsigned>(i % spec.block[0]),
                static_cast<unsigned>(i / spec.block[0] % spec.block[1]),
                static_cast<unsigned>(i / (spec.block[0] * spec.block[1]))};
    }
    blockDim = dim3(static_cast<unsigned>(spec.block[0]),
                    static_cast<unsigned>(spec.block[1]),
                    static_cast<unsigned>(spec.block[2]));
    gridDim = dim3(static_cast<unsigned>(spec.grid[0]),
                   static_cast<unsigned>(spec.grid[1]),
                   static_cast<unsigned>(spec.grid[2]));
    AllocSmem(static_cast<size_t>(spec.smem));
    order_.resize(n_);
    options_ = GetOptions();
  }

  // Runs block `linear` of the grid; false (and *failure) when it failed.
  bool RunBlock(uint64_t linear, Failure* failure) {
    const LaunchSpec& spec = *spec_;
    const uint64_t gx = static_cast<uint64_t>(spec.grid[0]);
    const uint64_t gy = static_cast<uint64_t>(spec.grid[1]);
    block_ = uint3{static_cast<unsigned>(linear % gx),
                   static_cast<unsigned>(linear / gx % gy),
                   static_cast<unsigned>(linear / (gx * gy))};
    block_linear_ = linear;
    blockIdx = block_;
    std::memset(smem_, kSmemPoison, smem_bytes_);
    for (Thread& t : threads_) {
      const uint3 idx = t.idx;
      t = Thread{};
      t.idx = idx;
    }
    live_ = n_;
    warp_waiting_.assign(Warps(), 0);
    failed_ = false;
    failure_ = Failure{};
    active = this;
    bool ok = Schedule();
    active = nullptr;
    if (ok) ok = CheckSmemGuards();
    if (!ok) {
      *failure = std::move(failure_);
      Abandon();
    }
    return ok;
  }

  // ---- called by the emulated threads ----

  Thread& Current() { return threads_[current_]; }
  // The calling thread waits at a warp exchange.
  void WaitInWarp() { ++warp_waiting_[current_ / 32]; }
  int current_index() const { return current_; }
  void* smem() { return smem_; }

  // Suspends the calling thread until the scheduler resumes it.
  void Suspend(Thread& t) {
#ifdef LLMSYS_EMU_ASAN
    __sanitizer_start_switch_fiber(&t.fake_stack, sched_stack_bottom_,
                                   sched_stack_size_);
#endif
    SwitchContext(&t.ctx, &sched_);
#ifdef LLMSYS_EMU_ASAN
    __sanitizer_finish_switch_fiber(t.fake_stack, &sched_stack_bottom_,
                                    &sched_stack_size_);
#endif
  }

  // Leaves the calling thread for good (it returned or trapped).
  [[noreturn]] void Exit(Thread& t) {
    t.state = State::kExited;
    --live_;
#ifdef LLMSYS_EMU_ASAN
    __sanitizer_start_switch_fiber(nullptr, sched_stack_bottom_,
                                   sched_stack_size_);
#endif
    SwitchContext(&t.ctx, &sched_);
    __builtin_unreachable();
  }

  void Fail(cudaError_t code, const std::string& what) {
    if (failed_) return;
    failed_ = true;
    failure_.code = code;
    failure_.message = Prefix() + what;
  }

  void Started() {
#ifdef LLMSYS_EMU_ASAN
    __sanitizer_finish_switch_fiber(nullptr, &sched_stack_bottom_,
                                    &sched_stack_size_);
#endif
  }
  void RunKernel() { spec_->run(closure_); }

  std::string ThreadName(int i) const {
    const uint3 t = threads_[i].idx;
    if (spec_->block[1] == 1 && spec_->block[2] == 1)
      return "thread " + std::to_string(t.x);
    return "thread (" + std::to_string(t.x) + "," + std::to_string(t.y) + "," +
           std::to_string(t.z) + ")";
  }

 private:
  std::string Prefix() const {
    const LaunchSpec& s = *spec_;
    std::string p = "kernel " + std::string(s.name);
    if (s.types[0] != '\0') p += "(" + std::string(s.types) + ")";
    p += " launched at " + Where(s.where) + ", block (" +
         std::to_string(block_.x) + "," + std::to_string(block_.y) + "," +
         std::to_string(block_.z) + ") of " + Dims(s.grid) + ", " +
         Dims(s.block) + " threads: ";
    return p;
  }

  void Resume(int i) {
    Thread& t = threads_[i];
    current_ = i;
    threadIdx = t.idx;
    if (!t.started) {
      t.started = true;
      MakeContext(&t.ctx, stacks_[i], &ThreadMain, this);
    }
#ifdef LLMSYS_EMU_ASAN
    void* fake = nullptr;
    __sanitizer_start_switch_fiber(&fake, stacks_[i].lo, stacks_[i].size);
#endif
    SwitchContext(&sched_, &t.ctx);
#ifdef LLMSYS_EMU_ASAN
    __sanitizer_finish_switch_fiber(fake, nullptr, nullptr);
#endif
  }

  void ComputeOrder(uint64_t round) {
    for (int i = 0; i < n_; ++i) order_[i] = i;
    if (options_.order == Order::kReverse) {
      std::reverse(order_.begin(), order_.end());
    } else if (options_.order == Order::kShuffle) {
      std::mt19937_64 rng(options_.seed * 0x9E3779B97F4A7C15ull ^
                          (block_linear_ << 20) ^ round);
      std::shuffle(order_.begin(), order_.end(), rng);
    }
  }

  // Runs the block to its end; false on failure (failure_ set).
  bool Schedule() {
    for (uint64_t round = 0;; ++round) {
      ComputeOrder(round);
      for (int i : order_) {
        if (threads_[i].state != State::kReady) continue;
        Resume(i);
        if (failed_) return false;
      }
      if (live_ == 0) return true;
      if (!Progress()) return false;
    }
  }

  int Warps() const { return (n_ + 31) / 32; }
  // The lanes that exist in warp w (a block's last warp may be partial).
  unsigned ExistingLanes(int w) const {
    const int lanes = std::min(32, n_ - 32 * w);
    return lanes == 32 ? 0xffffffffu : (1u << lanes) - 1;
  }

  // With every live thread waiting: completes what can complete. False
  // (failure_ set) when nothing can: the block would hang or misbehave.
  bool Progress() {
    bool progressed = false;
    for (int w = 0; w < Warps() && !failed_; ++w)
      if (warp_waiting_[w] > 0) progressed |= CompleteWarpOps(w);
    if (failed_) return false;
    if (progressed) return true;
    if (ReleaseBarrier()) return true;
    if (!failed_) Fail(cudaErrorLaunchFailure, Deadlock());
    return false;
  }

  // Completes the warp exchanges of warp w whose lanes have all arrived.
  bool CompleteWarpOps(int w) {
    bool progressed = false;
    const unsigned existing = ExistingLanes(w);
    unsigned checked = 0;  // lanes whose exchange was looked at
    for (int lane = 0; lane < 32; ++lane) {
      const int i = 32 * w + lane;
      if (i >= n_ || (checked >> lane & 1u) ||
          threads_[i].state != State::kWarp)
        continue;
      const Thread& t = threads_[i];
      const WarpOp& op = *t.op;
      auto calls = [&] {
        return ThreadName(i) + " calls " + WarpOpName(op.kind) + " at " +
               Where(op.where) + " (mask " + Hex(op.mask) + ")";
      };
      if (op.width < 1 || op.width > 32 || (op.width & (op.width - 1)) != 0) {
        Fail(cudaErrorLaunchFailure,
             calls() + " with width " + std::to_string(op.width) +
                 ", which is not a power of 2 from 1 to 32");
        return false;
      }
      if ((op.mask >> lane & 1u) == 0) {
        Fail(cudaErrorLaunchFailure, calls() + " but its own lane " +
                                         std::to_string(lane) +
                                         " is not in the mask");
        return false;
      }
      if ((op.mask & ~existing) != 0) {
        Fail(cudaErrorLaunchFailure, calls() + ", which names lanes " +
                                         Hex(op.mask & ~existing) +
                                         " that warp " + std::to_string(w) +
                                         " does not have (the block has " +
                                         std::to_string(n_) + " threads)");
        return false;
      }
      for (int l = 0; l < 32; ++l) {
        if ((op.mask >> l & 1u) &&
            threads_[32 * w + l].state == State::kExited) {
          Fail(cudaErrorLaunchFailure,
               calls() + ", but lane " + std::to_string(l) + " (" +
                   ThreadName(32 * w + l) + ") has exited: it never arrives");
          return false;
        }
      }
      // The lanes of the mask waiting at this very exchange.
      unsigned here = 0;
      for (int l = 0; l < 32; ++l) {
        if ((op.mask >> l & 1u) == 0) continue;
        const Thread& o = threads_[32 * w + l];
        if (o.state == State::kWarp && SameSite(o.where, op.where) &&
            o.op->kind == op.kind && o.op->mask == op.mask &&
            o.op->width == op.width && o.op->size == op.size &&
            (op.mask != 0xffffffffu || o.full_warp_ops == t.full_warp_ops))
          here |= 1u << l;
      }
      checked |= here;
      if (here != op.mask) continue;
      if (!Exchange(w, op.mask)) return false;
      progressed = true;
    }
    return progressed;
  }

  // Every lane of `mask` in warp w waits at the same exchange: compute each
  // lane's result and make them runnable.
  bool Exchange(int w, unsigned mask) {
    Thread* lanes[32] = {};
    for (int l = 0; l < 32; ++l)
      if (mask >> l & 1u) lanes[l] = &threads_[32 * w + l];
    const WarpOp& first = *lanes[std::countr_zero(mask)]->op;
    unsigned ballot = 0;
    if (first.kind == WarpKind::kBallot) {
      for (int l = 0; l < 32; ++l) {
        if (lanes[l] == nullptr) continue;
        int p;
        std::memcpy(&p, lanes[l]->op->in, sizeof(p));
        if (p) ballot |= 1u << l;
      }
    }
    for (int l = 0; l < 32; ++l) {
      if (lanes[l] == nullptr) continue;
      WarpOp& op = *lanes[l]->op;
      const int width = op.width;
      const int segment = l & ~(width - 1);
      int src = l;
      switch (op.kind) {
        case WarpKind::kShflIdx:
          src = segment + (op.arg & (width - 1));
          break;
        case WarpKind::kShflUp:
          src = l - op.arg;
          if (op.arg < 0 || src < segment) src = l;
          break;
        case WarpKind::kShflDown:
          src = l + op.arg;
          if (op.arg < 0 || src >= segment + width) src = l;
          break;
        case WarpKind::kShflXor:
          src = l ^ (op.arg & 31);
          if (src >= segment + width) src = l;
          break;
        case WarpKind::kSync:
          break;
        case WarpKind::kBallot:
          std::memcpy(op.out, &ballot, sizeof(ballot));
          break;
      }
      if (op.kind != WarpKind::kSync && op.kind != WarpKind::kBallot) {
        if (lanes[src] == nullptr) {
          Fail(cudaErrorLaunchFailure,
               ThreadName(32 * w + l) + " reads lane " + std::to_string(src) +
                   " in " + WarpOpName(op.kind) + " at " + Where(op.where) +
                   ", which is not in the mask " + Hex(mask) +
                   " (undefined on a GPU)");
          return false;
        }
        std::memcpy(op.out, lanes[src]->op->in, op.size);
      }
    }
    warp_waiting_[w] -= std::popcount(mask);
    for (int l = 0; l < 32; ++l) {
      if (lanes[l] == nullptr) continue;
      lanes[l]->state = State::kReady;
      lanes[l]->op = nullptr;
      if (mask == 0xffffffffu) ++lanes[l]->full_warp_ops;
    }
    return true;
  }

  // Releases the block barrier when every live thread waits at the same
  // one; fails when some threads have exited (barrier divergence) or wait
  // at different ones. False when the barrier cannot be released.
  bool ReleaseBarrier() {
    int first = -1;
    std::vector<int> exited, waiting;
    for (int i = 0; i < n_; ++i) {
      const Thread& t = threads_[i];
      if (t.state == State::kExited) {
        exited.push_back(i);
      } else if (t.state == State::kBarrier) {
        waiting.push_back(i);
        if (first < 0) first = i;
      } else {
        return false;  // a warp exchange is stuck: Deadlock() says why
      }
    }
    if (first < 0) return false;
    const Thread& f = threads_[first];
    const std::string at =
        std::string(BarrierName(f.barrier_kind)) + " at " + Where(f.where);
    if (!exited.empty()) {
      Fail(cudaErrorLaunchFailure,
           "barrier divergence: " + at + " is reached by threads " +
               Ranges(waiting) + " while threads " + Ranges(exited) +
               " have exited (undefined on a GPU: every thread of the "
               "block must reach every __syncthreads)");
      return false;
    }
    for (int i : waiting) {
      const Thread& t = threads_[i];
      if (!SameSite(t.where, f.where) || t.barrier_kind != f.barrier_kind) {
        Fail(cudaErrorLaunchFailure,
             "barrier divergence: " + ThreadName(first) + " waits at " + at +
                 " while " + ThreadName(i) + " waits at " +
                 BarrierName(t.barrier_kind) + " at " + Where(t.where));
        return false;
      }
    }
    int count = 0;
    for (int i : waiting) count += threads_[i].predicate != 0;
    const int n = static_cast<int>(waiting.size());
    const int result = f.barrier_kind == 1   ? count
                       : f.barrier_kind == 2 ? count == n
                       : f.barrier_kind == 3 ? count != 0
                                             : 0;
    for (int i : waiting) {
      threads_[i].barrier_result = result;
      threads_[i].state = State::kReady;
    }
    return true;
  }

  // Why nothing can proceed: the groups of threads and where they wait.
  std::string Deadlock() const {
    std::string s =
        "the block cannot proceed (on a GPU it would hang or misbehave): ";
    std::vector<bool> seen(n_, false);
    bool any = false;
    for (int i = 0; i < n_; ++i) {
      const Thread& t = threads_[i];
      if (seen[i] || t.state == State::kExited) continue;
      std::vector<int> group;
      for (int j = i; j < n_; ++j) {
        const Thread& o = threads_[j];
        if (seen[j] || o.state != t.state || !SameSite(o.where, t.where))
          continue;
        if (t.state == State::kWarp &&
            (j / 32 != i / 32 || o.op->mask != t.op->mask ||
             o.full_warp_ops != t.full_warp_ops))
          continue;
        seen[j] = true;
        group.push_back(j);
      }
      if (any) s += "; ";
      any = true;
      s += "threads " + Ranges(group) + " wait at ";
      if (t.state == State::kBarrier) {
        s += std::string(BarrierName(t.barrier_kind)) + " at " + Where(t.where);
      } else {
        s += std::string(WarpOpName(t.op->kind)) + " at " + Where(t.where) +
             " (warp " + std::to_string(i / 32) + ", mask " + Hex(t.op->mask) +
             ", after " + std::to_string(t.full_warp_ops) +
             " full-warp exchanges)";
      }
    }
    std::vector<int> exited;
    for (int i = 0; i < n_; ++i)
      if (threads_[i].state == State::kExited) exited.push_back(i);
    if (!exited.empty()) s += "; threads " + Ranges(exited) + " have exited";
    return s;
  }

  void AllocSmem(size_t bytes) {
    FreeSmem();
#ifdef LLMSYS_EMU_ASAN
    // Exactly the launch's bytes: AddressSanitizer reports any access past
    // them.
    smem_block_ = static_cast<unsigned char*>(
        ::operator new (bytes, std::align_val_t{16}));
    smem_ = smem_block_;
#else
    // The bytes between two guard zones checked after each block.
    smem_block_ = static_cast<unsigned char*>(
        ::operator new (bytes + 2 * kGuard, std::align_val_t{16}));
    smem_ = smem_block_ + kGuard;
    std::memset(smem_block_, kGuardByte, kGuard);
    std::memset(smem_ + bytes, kGuardByte, kGuard);
#endif
    smem_bytes_ = bytes;
  }
  void FreeSmem() {
    if (smem_block_ != nullptr)
      ::operator delete (smem_block_, std::align_val_t{16});
    smem_block_ = smem_ = nullptr;
  }
  bool CheckSmemGuards() {
#ifndef LLMSYS_EMU_ASAN
    for (size_t k = 0; k < kGuard; ++k) {
      const bool before = smem_block_[k] != kGuardByte;
      const bool after = smem_[smem_bytes_ + k] != kGuardByte;
      if (before || after) {
        Fail(cudaErrorIllegalAddress,
             "a thread wrote " +
                 std::string(before ? "before the start" : "past the end") +
                 " of the block's " + std::to_string(smem_bytes_) +
                 " bytes of dynamic shared memory");
        std::memset(smem_block_, kGuardByte, kGuard);
        std::memset(smem_ + smem_bytes_, kGuardByte, kGuard);
        return false;
      }
    }
#endif
    return true;
  }

  // After a failure: the unfinished threads are dropped where they stand
  // (kernels hold no resources); their stacks are reused from the top.
  void Abandon() {
#ifdef LLMSYS_EMU_ASAN
    for (int i = 0; i < n_; ++i)
      if (threads_[i].started)
        __asan_unpoison_memory_region(stacks_[i].lo, stacks_[i].size);
#endif
  }

  static constexpr size_t kGuard = 64;
  static constexpr unsigned char kGuardByte = 0xA5;

  const LaunchSpec* spec_ = nullptr;
  const void* closure_ = nullptr;
  int n_ = 0;
  std::vector<Thread> threads_;
  std::vector<Stack> stacks_;
  std::vector<int> order_;
  std::vector<int> warp_waiting_;  // lanes of each warp at an exchange
  Options options_;
  Context sched_;
#ifdef LLMSYS_EMU_ASAN
  const void* sched_stack_bottom_ = nullptr;
  size_t sched_stack_size_ = 0;
#endif
  int current_ = 0;
  int live_ = 0;
  uint3 block_{};
  uint64_t block_linear_ = 0;
  bool failed_ = false;
  Failure failure_;
  unsigned char* smem_block_ = nullptr;
  unsigned char* smem_ = nullptr;
  size_t smem_bytes_ = 0;
};

void ThreadMain(void* runner) {
  Runner* r = static_cast<Runner*>(runner);
  r->Started();
  r->RunKernel();
  r->Exit(r->Current());
}

Runner& LocalRunner() {
  thread_local std::unique_ptr<Runner> runner;
  if (!runner) runner = std::make_unique<Runner>();
  return *runner;
}

Runner& Active(const char* what) {
  if (active == nullptr) {
    std::fprintf(stderr,
                 "llmsys emu: %s called outside a kernel run by the "
                 "emulation\n",
                 what);
    std::abort();
  }
  return *active;
}

// Checks the launch configuration as the GPU does; "" when it is valid.
Failure CheckLaunch(const LaunchSpec& s) {
  auto fail = [](cudaError_t code, std::string m) {
    return Failure{code, std::move(m)};
  };
  const std::string what =
      "kernel " + std::string(s.name) + " launched at " + Where(s.where) + ": ";
  const int64_t* b = s.block;
  if (b[0] < 1 || b[1] < 1 || b[2] < 1 || b[0] > 1024 || b[1] > 1024 ||
      b[2] > 64 || b[0] * b[1] * b[2] > kMaxThreadsPerBlock)
    return fail(cudaErrorInvalidConfiguration,
                what + "block " + Dims(b) +
                    " is invalid (each dimension at least 1, x and y at "
                    "most 1024, z at most 64, at most 1024 threads)");
  const int64_t* g = s.grid;
  if (g[0] < 1 || g[1] < 1 || g[2] < 1 || g[0] > 2147483647 || g[1] > 65535 ||
      g[2] > 65535)
    return fail(cudaErrorInvalidConfiguration,
                what + "grid " + Dims(g) +
                    " is invalid (each dimension at least 1, x at most "
                    "2^31-1, y and z at most 65535)");
  if (s.smem < 0 || s.smem > static_cast<int64_t>(kMaxSmemOptin))
    return fail(cudaErrorInvalidValue,
                what + std::to_string(s.smem) +
                    " bytes of dynamic shared memory (at most " +
                    std::to_string(kMaxSmemOptin) + " on sm_90)");
  if (s.smem > static_cast<int64_t>(kDefaultSmemLimit)) {
    int allowed = static_cast<int>(kDefaultSmemLimit);
    {
      std::lock_guard<std::mutex> lock(attributes_mu);
      auto it = MaxDynamicSmem().find(s.kernel);
      if (it != MaxDynamicSmem().end()) allowed = it->second;
    }
    if (s.smem > allowed)
      return fail(cudaErrorInvalidValue,
                  what + std::to_string(s.smem) +
                      " bytes of dynamic shared memory need "
                      "cudaFuncSetAttribute(kernel, "
                      "cudaFuncAttributeMaxDynamicSharedMemorySize, bytes) "
                      "first (the kernel allows " +
                      std::to_string(allowed) + ")");
  }
  return Failure{};
}

}  // namespace

Options GetOptions() {
  std::lock_guard<std::mutex> lock(options_mu);
  if (!options_loaded) {
    options = LoadOptions();
    options_loaded = true;
  }
  return options;
}

void SetOptions(const Options& o) {
  std::lock_guard<std::mutex> lock(options_mu);
  options = o;
  options.workers = std::max(1, options.workers);
  options_loaded = true;
}

std::string LastMessage() { return last_message; }
uint64_t LaunchCount() { return launches; }

cudaError_t GetLastError(bool reset) {
  const cudaError_t e = last_error;
  if (reset) last_error = cudaSuccess;
  return e;
}

void SetLastError(cudaError_t error, std::string message) {
  last_error = error;
  if (error == cudaSuccess) return;
  last_failure = error;
  last_message = std::move(message);
  if (GetOptions().verbose)
    std::fprintf(stderr, "llmsys emu: %s: %s\n", ErrorName(error),
                 last_message.c_str());
}

const char* ErrorName(cudaError_t e) {
  switch (e) {
#define LLMSYS_EMU_NAME(x) \
  case x:                  \
    return #x;
    LLMSYS_EMU_NAME(cudaSuccess)
    LLMSYS_EMU_NAME(cudaErrorInvalidValue)
    LLMSYS_EMU_NAME(cudaErrorMemoryAllocation)
    LLMSYS_EMU_NAME(cudaErrorInitializationError)
    LLMSYS_EMU_NAME(cudaErrorInvalidConfiguration)
    LLMSYS_EMU_NAME(cudaErrorInvalidSymbol)
    LLMSYS_EMU_NAME(cudaErrorInvalidMemcpyDirection)
    LLMSYS_EMU_NAME(cudaErrorInvalidDeviceFunction)
    LLMSYS_EMU_NAME(cudaErrorNoDevice)
    LLMSYS_EMU_NAME(cudaErrorInvalidDevice)
    LLMSYS_EMU_NAME(cudaErrorInvalidResourceHandle)
    LLMSYS_EMU_NAME(cudaErrorNotReady)
    LLMSYS_EMU_NAME(cudaErrorIllegalAddress)
    LLMSYS_EMU_NAME(cudaErrorLaunchOutOfResources)
    LLMSYS_EMU_NAME(cudaErrorAssert)
    LLMSYS_EMU_NAME(cudaErrorIllegalInstruction)
    LLMSYS_EMU_NAME(cudaErrorMisalignedAddress)
    LLMSYS_EMU_NAME(cudaErrorLaunchFailure)
    LLMSYS_EMU_NAME(cudaErrorNotSupported)
    LLMSYS_EMU_NAME(cudaErrorUnknown)
#undef LLMSYS_EMU_NAME
  }
  return "cudaErrorUnknown";
}

const char* ErrorString(cudaError_t e) {
  const char* text = "unknown error";
  switch (e) {
    case cudaSuccess:
      text = "no error";
      break;
    case cudaErrorInvalidValue:
      text = "invalid argument";
      break;
    case cudaErrorMemoryAllocation:
      text = "out of memory";
      break;
    case cudaErrorInitializationError:
      text = "initialization error";
      break;
    case cudaErrorInvalidConfiguration:
      text = "invalid configuration argument";
      break;
    case cudaErrorInvalidSymbol:
      text = "invalid device symbol";
      break;
    case cudaErrorInvalidMemcpyDirection:
      text = "invalid copy direction for memcpy";
      break;
    case cudaErrorInvalidDeviceFunction:
      text = "invalid device function";
      break;
    case cudaErrorNoDevice:
      text = "no CUDA-capable device is detected";
      break;
    case cudaErrorInvalidDevice:
      text = "invalid device ordinal";
      break;
    case cudaErrorInvalidResourceHandle:
      text = "invalid resource handle";
      break;
    case cudaErrorNotReady:
      text = "device not ready";
      break;
    case cudaErrorIllegalAddress:
      text = "an illegal memory access was encountered";
      break;
    case cudaErrorLaunchOutOfResources:
      text = "too many resources requested for launch";
      break;
    case cudaErrorAssert:
      text = "device-side assert triggered";
      break;
    case cudaErrorIllegalInstruction:
      text = "an illegal instruction was encountered";
      break;
    case cudaErrorMisalignedAddress:
      text = "misaligned address";
      break;
    case cudaErrorLaunchFailure:
      text = "unspecified launch failure";
      break;
    case cudaErrorNotSupported:
      text = "operation not supported";
      break;
    case cudaErrorUnknown:
      break;
  }
  if (e == cudaSuccess || e != last_failure || last_message.empty())
    return text;
  error_text = std::string(text) + "; emulation: " + last_message;
  return error_text.c_str();
}

cudaError_t SetMaxDynamicSmem(const void* kernel, int bytes) {
  if (bytes < 0 || bytes > static_cast<int>(kMaxSmemOptin)) {
    SetLastError(cudaErrorInvalidValue,
                 "cudaFuncSetAttribute: " + std::to_string(bytes) +
                     " bytes of dynamic shared memory (at most " +
                     std::to_string(kMaxSmemOptin) + " on sm_90)");
    return cudaErrorInvalidValue;
  }
  std::lock_guard<std::mutex> lock(attributes_mu);
  MaxDynamicSmem()[kernel] = bytes;
  return cudaSuccess;
}

void Launch(const LaunchSpec& spec, const void* closure) {
  ++launches;
  if (active != nullptr) {
    SetLastError(cudaErrorNotSupported,
                 "kernel " + std::string(spec.name) + " launched at " +
                     Where(spec.where) +
                     " from device code (dynamic parallelism is not "
                     "emulated)");
    return;
  }
  Failure bad = CheckLaunch(spec);
  if (bad.code != cudaSuccess) {
    SetLastError(bad.code, std::move(bad.message));
    return;
  }
  const uint64_t blocks = static_cast<uint64_t>(spec.grid[0]) *
                          static_cast<uint64_t>(spec.grid[1]) *
                          static_cast<uint64_t>(spec.grid[2]);
  const int workers = static_cast<int>(
      std::min<uint64_t>(blocks, static_cast<uint64_t>(GetOptions().workers)));
  Failure failure;
  uint64_t failed_block = UINT64_MAX;
  if (workers <= 1) {
    Runner& r = LocalRunner();
    r.Setup(spec, closure);
    for (uint64_t b = 0; b < blocks; ++b) {
      if (!r.RunBlock(b, &failure)) {
        failed_block = b;
        break;
      }
    }
  } else {
    // Blocks are claimed in order, so every block below a failed one has
    // run: the failure reported is that of the lowest failing block.
    std::atomic<uint64_t> next{0};
    std::atomic<bool> stop{false};
    std::mutex mu;
    auto work = [&] {
      Runner& r = LocalRunner();
      r.Setup(spec, closure);
      Failure f;
      while (!stop.load()) {
        const uint64_t b = next.fetch_add(1);
        if (b >= blocks) break;
        if (!r.RunBlock(b, &f)) {
          std::lock_guard<std::mutex> lock(mu);
          if (b < failed_block) {
            failed_block = b;
            failure = std::move(f);
          }
          stop = true;
        }
      }
    };
    std::vector<std::thread> pool;
    for (int i = 1; i < workers; ++i) pool.emplace_back(work);
    work();
    for (std::thread& t : pool) t.join();
  }
  if (failed_block != UINT64_MAX)
    SetLastError(failure.code, std::move(failure.message));
}

void* DynamicSmem() { return Active("LLMSYS_DYNAMIC_SMEM").smem(); }

int SyncThreads(int kind, int predicate, const std::source_location& where) {
  Runner& r = Active(BarrierName(kind));
  Thread& t = r.Current();
  t.state = State::kBarrier;
  t.barrier_kind = kind;
  t.predicate = predicate;
  t.where = where;
  r.Suspend(t);
  return t.barrier_result;
}

void WarpExchange(WarpOp& op) {
  Runner& r = Active(WarpOpName(op.kind));
  Thread& t = r.Current();
  t.state = State::kWarp;
  t.where = op.where;
  t.op = &op;
  r.WaitInWarp();
  r.Suspend(t);
}

void Trap(const std::source_location& where) {
  Runner& r = Active("__trap");
  Thread& t = r.Current();
  r.Fail(cudaErrorLaunchFailure, r.ThreadName(r.current_index()) +
                                     " called __trap() at " + Where(where));
  r.Exit(t);
}

}  // namespace emu
