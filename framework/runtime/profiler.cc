#include "framework/runtime/profiler.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "framework/core/files.h"
#include "framework/core/status_macros.h"

namespace llmsys::runtime {
namespace {

using json = nlohmann::json;

double SecondsBetween(Profiler::Clock::time_point a,
                      Profiler::Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

const char* PassName(Profiler::Pass pass) {
  return pass == Profiler::Pass::kForward ? "forward" : "backward";
}

// The row of a phase's own time (its ops have rows of their own); the
// forward and backward passes' own time is host work ("other").
std::string PhaseRowName(const std::string& phase) {
  if (phase == "data") return "data (batching)";
  if (phase == "optimizer") return "optimizer step";
  return "";
}

}  // namespace

Profiler::Profiler(Options options)
    : options_(options), origin_(Clock::now()) {}

double Profiler::Micros(Clock::time_point t) const {
  return std::chrono::duration<double, std::micro>(t - origin_).count();
}

void Profiler::AddEvent(const std::string& name, const char* cat,
                        Clock::time_point start, Clock::time_point end,
                        json args) {
  json event = {{"name", name},
                {"cat", cat},
                {"ph", "X"},
                {"ts", Micros(start)},
                {"dur", std::max(0.0, Micros(end) - Micros(start))},
                {"pid", 1},
                {"tid", 1}};
  if (!args.is_null()) event["args"] = std::move(args);
  events_.push_back(std::move(event));
}

void Profiler::BeginStep(int64_t step) {
  if (in_step_) EndStep();
  in_step_ = true;
  step_ = step;
  ++steps_;
  step_start_ = Clock::now();
}

void Profiler::EndStep() {
  if (!in_step_) return;
  if (phase_ != nullptr) EndPhase();
  const Clock::time_point end = Clock::now();
  step_seconds_ += SecondsBetween(step_start_, end);
  if (tracing())
    AddEvent(absl::StrCat("step ", step_), "step", step_start_, end,
             json{{"step", step_}});
  in_step_ = false;
}

Profiler::Phase::Phase(Profiler* profiler, const char* name)
    : profiler_(profiler) {
  if (profiler_ != nullptr) profiler_->BeginPhase(name);
}

Profiler::Phase::~Phase() {
  if (profiler_ != nullptr) profiler_->EndPhase();
}

void Profiler::BeginPhase(const char* name) {
  if (!in_step_) return;
  if (phase_ != nullptr) EndPhase();
  phase_ = name;
  phase_op_seconds_ = 0;
  phase_start_ = Clock::now();
}

void Profiler::EndPhase() {
  if (phase_ == nullptr) return;
  const Clock::time_point end = Clock::now();
  Stat& s = phases_[phase_];
  ++s.calls;
  s.seconds += SecondsBetween(phase_start_, end) - phase_op_seconds_;
  if (tracing()) AddEvent(phase_, "phase", phase_start_, end, json());
  phase_ = nullptr;
}

void Profiler::RecordOp(const std::string& op,
                        const std::string& implementation, Pass pass,
                        Clock::time_point start, Clock::time_point end,
                        std::string shapes) {
  if (!in_step_) return;
  const double seconds = SecondsBetween(start, end);
  Stat& s = ops_[{op, implementation, pass}];
  ++s.calls;
  s.seconds += seconds;
  if (phase_ != nullptr) phase_op_seconds_ += seconds;
  if (tracing()) {
    json args = {{"op", op}};
    if (!shapes.empty()) args["inputs"] = std::move(shapes);
    AddEvent(implementation, PassName(pass), start, end, std::move(args));
  }
}

ProfileSummary Profiler::Summary() const {
  ProfileSummary out;
  out.steps = steps_;
  out.traced_steps = std::min(steps_, options_.trace_steps);
  out.step_ms = step_seconds_ * 1e3;
  double accounted = 0;
  auto add = [&](std::string name, std::string impl, std::string pass,
                 const Stat& s) {
    ProfileRow row;
    row.name = std::move(name);
    row.implementation = std::move(impl);
    row.pass = std::move(pass);
    row.calls = s.calls;
    row.total_ms = s.seconds * 1e3;
    row.mean_us =
        s.calls > 0 ? s.seconds * 1e6 / static_cast<double>(s.calls) : 0.0;
    row.share = step_seconds_ > 0 ? s.seconds / step_seconds_ : 0.0;
    accounted += s.seconds;
    out.rows.push_back(std::move(row));
  };
  for (const auto& [key, s] : ops_)
    add(std::get<0>(key), std::get<1>(key), PassName(std::get<2>(key)), s);
  for (const auto& [phase, s] : phases_) {
    const std::string name = PhaseRowName(phase);
    if (!name.empty()) add(name, "", "", s);
  }
  Stat other;
  other.calls = steps_;
  other.seconds = std::max(0.0, step_seconds_ - accounted);
  add("other (host)", "", "", other);
  std::stable_sort(out.rows.begin(), out.rows.end(),
                   [](const ProfileRow& a, const ProfileRow& b) {
                     return a.total_ms > b.total_ms;
                   });
  return out;
}

json Profiler::Trace() const {
  json events = json::array();
  events.push_back({{"name", "thread_name"},
                    {"ph", "M"},
                    {"pid", 1},
                    {"tid", 1},
                    {"args", {{"name", "training"}}}});
  for (const json& e : events_) events.push_back(e);
  return {{"traceEvents", std::move(events)}, {"displayTimeUnit", "ms"}};
}

absl::Status Profiler::WriteFiles(const std::filesystem::path& dir) const {
  LLMSYS_RETURN_IF_ERROR(core::AtomicWriteFile(
      dir / "profile.json", ProfileJson(Summary()).dump(2) + "\n"));
  return core::AtomicWriteFile(dir / "trace.json", Trace().dump() + "\n");
}

std::string FormatProfile(const ProfileSummary& summary) {
  std::string out = absl::StrFormat(
      "profile: %d steps, %.1f ms (%.2f ms/step); shares of the step time\n",
      summary.steps, summary.step_ms,
      summary.steps > 0 ? summary.step_ms / static_cast<double>(summary.steps)
                        : 0.0);
  absl::StrAppend(&out, absl::StrFormat("%-18s %-24s %-8s %8s %11s %11s %7s\n",
                                        "op", "implementation", "pass", "calls",
                                        "total ms", "mean us", "share"));
  for (const ProfileRow& r : summary.rows)
    absl::StrAppend(
        &out,
        absl::StrFormat("%-18s %-24s %-8s %8d %11.2f %11.1f %6.1f%%\n", r.name,
                        r.implementation.empty() ? "-" : r.implementation,
                        r.pass.empty() ? "-" : r.pass, r.calls, r.total_ms,
                        r.mean_us, 100.0 * r.share));
  return out;
}

json ProfileJson(const ProfileSummary& summary) {
  json rows = json::array();
  for (const ProfileRow& r : summary.rows)
    rows.push_back({{"name", r.name},
                    {"implementation", r.implementation},
                    {"pass", r.pass},
                    {"calls", r.calls},
                    {"total_ms", r.total_ms},
                    {"mean_us", r.mean_us},
                    {"share", r.share}});
  return {{"steps", summary.steps},
          {"traced_steps", summary.traced_steps},
          {"step_ms", summary.step_ms},
          {"rows", std::move(rows)}};
}

}  // namespace llmsys::runtime
