// framework/runtime/profiler.h — where a training step's time goes: every
// op call through the dispatcher (forward and backward), and the step's
// phases (data, forward, backward, optimizer), timed with a steady clock.
//
// Users: `llmsys run --profile` (framework/train/trainer.cc) and the
// benchmarks. The dispatcher reports op calls (OpDispatcher::set_profiler);
// the caller marks steps and phases. The summary covers every step; the
// Chrome trace (Trace Event Format, opened by ui.perfetto.dev or
// chrome://tracing) keeps the events of the first `trace_steps` steps only,
// so that its file stays small.
//
//   runtime::Profiler profiler({.trace_steps = 10});
//   session.ops().set_profiler(&profiler);
//   for (int64_t step = 1; step <= steps; ++step) {
//     profiler.BeginStep(step);
//     {
//       runtime::Profiler::Phase phase(&profiler, "forward");
//       ...
//     }
//     profiler.EndStep();
//   }
//   session.ops().set_profiler(nullptr);
//   std::cerr << runtime::FormatProfile(profiler.Summary());
//   LLMSYS_RETURN_IF_ERROR(profiler.WriteFiles(run_dir));
//
// Op calls outside a step (evaluation between steps, generation) are not
// counted. Overhead: with no profiler the dispatcher takes one branch per
// call; with one, two clock reads and a map update per call (plus the
// input shapes as text in traced steps).
//
// Thread-safety: one thread (the dispatcher's). The profiler must outlive
// its registration with a dispatcher.
#ifndef LLMSYS_FRAMEWORK_RUNTIME_PROFILER_H_
#define LLMSYS_FRAMEWORK_RUNTIME_PROFILER_H_

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "absl/status/status.h"
#include "nlohmann/json.hpp"

namespace llmsys::runtime {

// One row of the profile: an op implementation in one pass, or a phase's
// own time (data, optimizer, other host work).
struct ProfileRow {
  std::string name;            // op ("matmul") or phase ("optimizer step")
  std::string implementation;  // component id; "" for a phase row
  std::string pass;            // "forward", "backward" or "" (phase row)
  int64_t calls = 0;
  double total_ms = 0;
  double mean_us = 0;
  double share = 0;  // of the summed step wall time, in [0, 1]
};

struct ProfileSummary {
  int64_t steps = 0;
  int64_t traced_steps = 0;
  double step_ms = 0;            // summed wall time of the steps
  std::vector<ProfileRow> rows;  // by total time, largest first
};

class Profiler {
 public:
  using Clock = std::chrono::steady_clock;
  enum class Pass { kForward, kBackward };

  struct Options {
    // Steps whose events go into the trace (the first ones); 0: none.
    int64_t trace_steps = 10;
  };

  explicit Profiler(Options options);
  Profiler() : Profiler(Options{}) {}
  Profiler(const Profiler&) = delete;
  Profiler& operator=(const Profiler&) = delete;

  // A step: every op call and phase between BeginStep and EndStep belongs
  // to it. Steps do not nest.
  void BeginStep(int64_t step);
  void EndStep();
  bool in_step() const { return in_step_; }
  // Whether the current step's events go into the trace (the dispatcher
  // describes input shapes only then).
  bool tracing() const { return in_step_ && steps_ <= options_.trace_steps; }

  // A phase of the current step ("data", "forward", "backward",
  // "optimizer"); phases do not nest. Outside a step: nothing.
  class Phase {
   public:
    Phase(Profiler* profiler, const char* name);
    ~Phase();
    Phase(const Phase&) = delete;
    Phase& operator=(const Phase&) = delete;

   private:
    Profiler* profiler_;
  };

  // One op call that ran from `start` to `end`; `shapes` describes its
  // inputs (for the trace; may be empty). Ignored outside a step.
  void RecordOp(const std::string& op, const std::string& implementation,
                Pass pass, Clock::time_point start, Clock::time_point end,
                std::string shapes);

  // The table over every step so far.
  ProfileSummary Summary() const;
  // {"traceEvents": [...], "displayTimeUnit": "ms"}: one "X" event per
  // traced step, phase and op call (ts and dur in µs from the profiler's
  // creation), ops nested in their phase, phases in their step.
  nlohmann::json Trace() const;
  // Writes `dir`/profile.json (the summary) and `dir`/trace.json.
  absl::Status WriteFiles(const std::filesystem::path& dir) const;

 private:
  void BeginPhase(const char* name);
  void EndPhase();
  double Micros(Clock::time_point t) const;
  // The index of `text` in strings_, added on first use.
  int32_t Intern(const std::string& text);
  void AddEvent(int32_t name, const char* cat, Clock::time_point start,
                Clock::time_point end, int32_t op = -1, int32_t shapes = -1);

  struct Stat {
    int64_t calls = 0;
    double seconds = 0;
  };
  Options options_;
  Clock::time_point origin_;
  bool in_step_ = false;
  int64_t step_ = 0;
  int64_t steps_ = 0;  // steps begun
  Clock::time_point step_start_;
  double step_seconds_ = 0;
  const char* phase_ = nullptr;
  Clock::time_point phase_start_;
  double phase_op_seconds_ = 0;  // op time inside the current phase
  // (op, implementation, pass) -> calls and time.
  std::map<std::tuple<std::string, std::string, Pass>, Stat> ops_;
  // phase -> its own time (without the ops inside it).
  std::map<std::string, Stat> phases_;
  // A traced event, kept flat: a JSON object per event (a dozen small
  // allocations that outlive the step) fragmented the heap between the
  // steps' large tensors and grew a GPT S run's peak memory by ~95 MiB per
  // traced step. Strings are indices into strings_ (-1: none); Trace()
  // builds the JSON.
  struct Event {
    int32_t name, op, shapes;
    const char* cat;  // "step", "phase", "forward" or "backward"
    int64_t step;     // for "step" events
    double ts, dur;   // µs
  };
  std::vector<Event> events_;
  std::vector<std::string> strings_;
  std::map<std::string, int32_t, std::less<>> string_index_;
};

// The summary as a text table (op, implementation, pass, calls, total ms,
// mean µs, share of step), with a header naming the steps and their time.
std::string FormatProfile(const ProfileSummary& summary);
// The summary as profile.json holds it.
nlohmann::json ProfileJson(const ProfileSummary& summary);

}  // namespace llmsys::runtime

#endif  // LLMSYS_FRAMEWORK_RUNTIME_PROFILER_H_
