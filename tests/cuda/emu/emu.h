// tests/cuda/emu/emu.h — the scheduler of the CPU emulation of CUDA: runs
// a kernel's grid on the CPU, each block's threads as coroutines on one OS
// thread that switch at __syncthreads and at every warp exchange, and checks
// what a GPU would leave undefined (barrier divergence, shuffles whose
// lanes disagree, bad launch configurations).
//
// Kernels never call this header directly: the fake CUDA headers in
// include/ (cuda_runtime.h and friends, compiled with
// -DLLMSYS_CUDA_EMULATION) turn LLMSYS_LAUNCH, __syncthreads, the shuffles
// and LLMSYS_DYNAMIC_SMEM into calls to it. Tests use the inspection and
// option functions:
//
//   EXPECT_EQ(LaunchX(..., stream), cudaErrorLaunchFailure);
//   EXPECT_THAT(emu::LastMessage(), HasSubstr("barrier divergence"));
//   emu::SetOptions({.order = emu::Order::kReverse});  // shake out races
//
// A launch runs the whole grid before it returns (streams are ignored);
// its failure becomes the calling thread's last CUDA error
// (cudaGetLastError) and LastMessage() says what went wrong, where.
//
// Thread-safety: launches may come from any host thread at the same time
// (each OS thread runs its blocks with its own coroutines, stacks and shared
// memory); options are process-wide; LastMessage and LaunchCount are per
// host thread.
#ifndef LLMSYS_TESTS_CUDA_EMU_EMU_H_
#define LLMSYS_TESTS_CUDA_EMU_EMU_H_

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>
#include <source_location>
#include <string>

namespace emu {

// ---- what tests use ----

// The order in which a block's runnable threads run between two
// synchronization points. kForward is thread 0, 1, 2, ...; kReverse and
// kShuffle (a seeded permutation, new at each step) make a data race that
// kForward happens to hide give different results.
enum class Order { kForward, kReverse, kShuffle };

struct Options {
  Order order = Order::kForward;
  uint64_t seed = 1;     // kShuffle's permutations
  int workers = 1;       // OS threads sharing one grid's blocks (1: in order)
  bool verbose = false;  // print every launch failure to stderr
};

// Process-wide; the defaults come from the environment on first use:
// LLMSYS_EMU_ORDER=forward|reverse|shuffle[:seed], LLMSYS_EMU_WORKERS=n,
// LLMSYS_EMU_VERBOSE=1.
Options GetOptions();
void SetOptions(const Options& options);

// What the calling host thread's last failed launch (or other emulated
// call) reported, "" when none failed yet: the kernel, the block and
// threads, the source lines involved.
std::string LastMessage();
// Kernel launches (grids run, or refused) the calling host thread made.
uint64_t LaunchCount();

// The limits the emulation enforces, those of an H100/H200 (sm_90).
inline constexpr int kMaxThreadsPerBlock = 1024;
inline constexpr size_t kDefaultSmemLimit = 48 * 1024;  // without opt-in
inline constexpr size_t kMaxSmemOptin = 227 * 1024;     // 232448 bytes
inline constexpr int kNumSms = 132;
// Each emulated thread's stack.
inline constexpr size_t kStackBytes = 256 * 1024;
// The byte dynamic shared memory holds before each block: 0xFF, a NaN in
// float32, float64, bfloat16 and float16.
inline constexpr unsigned char kSmemPoison = 0xFF;

// ---- what the fake headers call ----

// One launch: the configuration as given (before any narrowing to dim3),
// and a function each emulated thread calls with `closure`.
struct LaunchSpec {
  int64_t grid[3] = {1, 1, 1};
  int64_t block[3] = {1, 1, 1};
  int64_t smem = 0;
  cudaStream_t stream = nullptr;
  const void* kernel = nullptr;  // the key of cudaFuncSetAttribute
  const char* name = "";         // as written at the launch
  const char* types = "";        // the kernel's parameter types
  std::source_location where;    // the launch
  void (*run)(const void* closure) = nullptr;
};
// Runs the grid; records a failure as the last error (and LastMessage).
void Launch(const LaunchSpec& spec, const void* closure);

// The block's dynamic shared memory (16-byte aligned).
void* DynamicSmem();

// __syncthreads and its counting forms: kind 0 plain (returns 0), 1 count,
// 2 and, 3 or, of `predicate` over the block.
int SyncThreads(int kind, int predicate, const std::source_location& where);

// One warp-level exchange (__shfl_*_sync, __syncwarp, __ballot_sync, ...)
// of the calling thread: `in` holds its `size` bytes, `out` gets the result.
enum class WarpKind { kShflIdx, kShflUp, kShflDown, kShflXor, kSync, kBallot };
struct WarpOp {
  WarpKind kind = WarpKind::kSync;
  unsigned mask = 0xffffffffu;
  int arg = 0;  // source lane, delta or lane mask
  int width = 32;
  size_t size = 0;
  alignas(16) unsigned char in[16] = {};
  alignas(16) unsigned char out[16] = {};
  std::source_location where;
};
void WarpExchange(WarpOp& op);

// __trap(): the launch fails with cudaErrorLaunchFailure.
[[noreturn]] void Trap(const std::source_location& where);

// cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize).
cudaError_t SetMaxDynamicSmem(const void* kernel, int bytes);

// The last-error slot of the calling host thread.
cudaError_t GetLastError(bool reset);
void SetLastError(cudaError_t error, std::string message);
// cudaGetErrorString: the standard text, plus LastMessage() when `error` is
// the code of the calling thread's last failure.
const char* ErrorString(cudaError_t error);
const char* ErrorName(cudaError_t error);

}  // namespace emu

#endif  // LLMSYS_TESTS_CUDA_EMU_EMU_H_
