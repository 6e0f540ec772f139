#include "framework/runtime/profiler.h"

#include <algorithm>
#include <string_view>
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

int32_t Profiler::Intern(const std::string& text) {
  auto it = string_index_.find(text);
  if (it != string_index_.end()) return it->second;
  const int32_t index = static_cast<int32_t>(strings_.size());
  strings_.push_back(text);
  string_index_.emplace(text, index);
  return index;
}

void Profiler::AddEvent(int32_t name, const char* cat, Clock::time_point start,
                        Clock::time_point end, int32_t op, int32_t shapes) {
  events_.push_back(Event{.name = name,
                          .op = op,
                          .shapes = shapes,
                          .cat = cat,
                          .step = step_,
                          .ts = Micros(start),
                          .dur = std::max(0.0, Micros(end) - Micros(start))});
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
  if (tracing()) AddEvent(-1, "step", step_start_, end);
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
  if (tracing()) AddEvent(Intern(phase_), "phase", phase_start_, end);
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
  if (tracing())
    AddEvent(Intern(implementation), PassName(pass), start, end, Intern(op),
             shapes.empty() ? -1 : Intern(shapes));
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
  for (const Event& e : events_) {
    const bool step = std::string_view(e.cat) == "step";
    json event = {{"name", step ? absl::StrCat("step ", e.step)
                                : strings_[static_cast<size_t>(e.name)]},
                  {"cat", e.cat},
                  {"ph", "X"},
                  {"ts", e.ts},
                  {"dur", e.dur},
                  {"pid", 1},
                  {"tid", 1}};
    if (step) event["args"] = {{"step", e.step}};
    if (e.op >= 0) {
      event["args"] = {{"op", strings_[static_cast<size_t>(e.op)]}};
      if (e.shapes >= 0)
        event["args"]["inputs"] = strings_[static_cast<size_t>(e.shapes)];
    }
    events.push_back(std::move(event));
  }
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
