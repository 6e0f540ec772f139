// framework/runtime/dispatch.h — op calls: the implementation the
// experiment chose, recorded on the autograd tape.
//
// The dispatcher picks, per op, an operator component for its device: the
// one named in the experiment's [ops] table (`attention = "naive"` means
// component `attention.naive`), otherwise the highest-priority
// implementation for the device (ties: the smallest id). Call() runs it and,
// when gradients are on and an input requires one, records a node whose
// backward calls the same implementation's backward with what it asked to
// keep.
//
//   OpDispatcher ops(&registry, tensor::kCpu);
//   LLMSYS_RETURN_IF_ERROR(ops.Configure({{"attention", "naive"}}));
//   LLMSYS_ASSIGN_OR_RETURN(std::vector<Var> y,
//                           ops.Call("softmax", {x}, {{"dim", int64_t{-1}}}));
//
// Random numbers: every call gets its own stretch of the run's Philox stream
// (llmsys/random.h): seed = the run's seed, offset = 2^32 * the number of
// calls before it. Backward replays a call's stretch.
//
// Thread-safety: one dispatcher per thread of computation; Configure before
// the first Call.
#ifndef LLMSYS_FRAMEWORK_RUNTIME_DISPATCH_H_
#define LLMSYS_FRAMEWORK_RUNTIME_DISPATCH_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "framework/autograd/autograd.h"
#include "framework/core/thread_pool.h"
#include "framework/runtime/operator_call.h"
#include "framework/runtime/profiler.h"
#include "framework/runtime/registry.h"

namespace llmsys::runtime {

using autograd::Var;

// What ran for one op: for the run's log and provenance.
struct OpChoice {
  std::string op;
  std::string implementation;  // component id, e.g. "attention.naive"
  std::string file;            // the plugin file
  bool chosen_by_experiment = false;
  uint64_t calls = 0;
};

class OpDispatcher {
 public:
  OpDispatcher(const PluginRegistry* registry, DLDevice device);
  ~OpDispatcher();

  // The [ops] table: op name -> implementation name (the part after "op.")
  // or full component id. `where` prefixes errors (e.g. "x.toml: [ops]").
  // Unknown ops and implementations are NOT_FOUND errors that list what is
  // available (with a did-you-mean).
  absl::Status Configure(const std::map<std::string, std::string>& choices,
                         const std::string& where = "[ops]");

  // The implementation that serves `op` (created on first use).
  absl::StatusOr<OperatorImpl*> Resolve(const std::string& op);
  // The implementation names available for `op` on this device, best first.
  std::vector<std::string> Available(const std::string& op) const;

  // Calls `op` on `inputs` (null Var: an absent optional input; a variadic
  // input expanded in place) with `attrs` (by name; defaults fill the rest).
  absl::StatusOr<std::vector<Var>> Call(const std::string& op,
                                        const std::vector<Var>& inputs,
                                        const AttrList& attrs = {});

  void set_seed(uint64_t seed) { seed_ = seed; }
  uint64_t seed() const { return seed_; }
  // The number of op calls so far (the position in the random stream).
  uint64_t calls() const { return calls_; }
  void set_calls(uint64_t calls) { calls_ = calls; }
  // Also the host's own loops' count (core::SetHostThreads).
  void set_num_threads(int32_t n) {
    num_threads_ = n < 1 ? 1 : n;
    core::SetHostThreads(num_threads_);
  }
  int32_t num_threads() const { return num_threads_; }
  // Times every op call, forward and backward (runtime/profiler.h); null:
  // none (the default). Graphs recorded while one is set report their
  // backward calls to it, so it must outlive them.
  void set_profiler(Profiler* profiler) { profiler_ = profiler; }
  Profiler* profiler() const { return profiler_; }

  // Mixed precision (PyTorch's autocast policy): with `dtype` bfloat16 or
  // float16, matmul, linear and attention compute in `dtype` (their float
  // inputs cast, float32 master weights included, gradients flowing back
  // in float32); softmax, log_softmax, cross_entropy, the norms, sum,
  // mean, exp, log and pow compute in float32; every other op in the
  // widest dtype among its float inputs. float64 inputs stay float64.
  // float32 (the default) turns it off.
  void set_autocast(DLDataType dtype) { autocast_ = dtype; }
  DLDataType autocast() const { return autocast_; }

  DLDevice device() const { return device_; }
  const PluginRegistry& registry() const { return *registry_; }
  // Every op resolved so far, in name order.
  std::vector<OpChoice> Choices() const;

 private:
  struct Entry;
  absl::StatusOr<const Component*> Pick(const std::string& op,
                                        const std::string& name,
                                        const std::string& where) const;

  const PluginRegistry* registry_;
  DLDevice device_;
  std::map<std::string, std::unique_ptr<Entry>> entries_;
  std::map<std::string, std::string> choices_;
  // The inputs of `op` in the dtypes autocast computes it in.
  absl::StatusOr<std::vector<Var>> Autocast(
      const std::string& op, const std::vector<Var>& inputs) const;

  uint64_t seed_ = 0;
  uint64_t calls_ = 0;
  DLDataType autocast_ = tensor::kF32;
  int32_t num_threads_ = 1;
  Profiler* profiler_ = nullptr;
};

}  // namespace llmsys::runtime

#endif  // LLMSYS_FRAMEWORK_RUNTIME_DISPATCH_H_
