// `llmsys run --profile` end to end on a tiny gpt: the table counts every op
// call of every step (checked against the dispatcher's own counters in
// summary.json), shares add up to at most the step time, the Chrome trace
// parses with each op nested in its phase and step and stops after
// profile_steps steps, and profiling changes no result.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <map>
#include <string>
#include <utility>

#include "framework/runtime/profiler.h"
#include "framework/train/trainer.h"
#include "nlohmann/json.hpp"
#include "tests/framework/train/test_files.h"

namespace llmsys::train {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

class ProfileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = FreshTestDir("llmsys_profile");
    std::string corpus;
    for (int i = 0; i < 200; ++i)
      corpus += "the quick brown fox jumps over the lazy dog " +
                std::to_string(i % 7) + "\n";
    Write(dir_ / "corpus.txt", corpus);
    // eval_every = 0: one validation at the end only, so runs of different
    // lengths differ in op calls by their training steps alone.
    Write(dir_ / "tiny.toml",
          "[experiment]\noutput = \"" + (dir_ / "runs").string() +
              "\"\n[data]\ntrain = \"" + (dir_ / "corpus.txt").string() +
              "\"\n"
              "[model]\nuse = \"gpt\"\nn_layer = 2\nn_head = 2\nn_embd = 16\n"
              "[optimizer]\nuse = \"adamw\"\n"
              "[train]\nsteps = 4\nbatch_size = 2\nblock_size = 16\n"
              "log_every = 1\neval_every = 0\neval_batches = 1\n"
              "[generate]\nprompt = \"the\"\nmax_tokens = 4\n");
  }
  void TearDown() override { fs::remove_all(dir_); }

  // A run named `name` of `steps` steps, profiled or not.
  fs::path Run(const std::string& name, int64_t steps, bool profile,
               int64_t profile_steps = 10) {
    RunOptions o;
    o.experiment = dir_ / "tiny.toml";
    o.progress_bar = false;
    o.plugin_dirs = {LLMSYS_BUILTIN_PLUGIN_DIR};
    o.sets = {"experiment.name=" + name,
              "train.steps=" + std::to_string(steps)};
    o.profile = profile;
    o.profile_steps = profile_steps;
    absl::StatusOr<RunResult> r = RunExperiment(o);
    EXPECT_TRUE(r.ok()) << r.status();
    return dir_ / "runs" / name;
  }

  fs::path dir_;
};

json ReadJson(const fs::path& p) {
  const std::string text = Read(p);
  EXPECT_FALSE(text.empty()) << p;
  return json::parse(text, nullptr, /*allow_exceptions=*/false);
}

// Forward calls per op in profile.json.
std::map<std::string, int64_t> ForwardCalls(const json& profile) {
  std::map<std::string, int64_t> calls;
  for (const json& row : profile.at("rows"))
    if (row.at("pass") == "forward")
      calls[row.at("name")] += row.at("calls").get<int64_t>();
  return calls;
}

// Calls per op in summary.json (the dispatcher's counters: every forward
// call of the run, training, validation and generation).
std::map<std::string, int64_t> SummaryCalls(const json& summary) {
  std::map<std::string, int64_t> calls;
  for (const json& op : summary.at("ops"))
    calls[op.at("op")] = op.at("calls").get<int64_t>();
  return calls;
}

TEST_F(ProfileTest, TheTableCountsEveryOpCallOfEveryStep) {
  const fs::path four = Run("four", 4, true);
  const fs::path two = Run("two", 2, true);
  const json p4 = ReadJson(four / "profile.json");
  const json p2 = ReadJson(two / "profile.json");
  ASSERT_FALSE(p4.is_discarded());
  ASSERT_FALSE(p2.is_discarded());
  EXPECT_EQ(p4.at("steps"), 4);
  EXPECT_EQ(p2.at("steps"), 2);

  const std::map<std::string, int64_t> f4 = ForwardCalls(p4),
                                       f2 = ForwardCalls(p2);
  for (const char* op : {"matmul", "attention", "layer_norm", "cross_entropy"})
    EXPECT_GT(f4.count(op) ? f4.at(op) : 0, 0) << op << " missing:\n" << p4;
  // Every step makes the same calls; the dispatcher's counters differ
  // between the runs by exactly the two extra steps' calls.
  const std::map<std::string, int64_t> s4 = SummaryCalls(
                                           ReadJson(four / "summary.json")),
                                       s2 = SummaryCalls(
                                           ReadJson(two / "summary.json"));
  ASSERT_EQ(f4.size(), f2.size());
  for (const auto& [op, calls] : f4) {
    EXPECT_EQ(calls, 2 * f2.at(op)) << op;
    EXPECT_EQ(s4.at(op) - s2.at(op), calls - f2.at(op)) << op;
  }

  // Rows: a backward row per differentiated op; shares of the step time
  // add up to at most 100% (the "other" row makes up the rest).
  double share = 0, total_ms = 0;
  int64_t matmul_backward = 0;
  bool optimizer = false, data = false, other = false;
  double previous = INFINITY;
  for (const json& row : p4.at("rows")) {
    EXPECT_GE(row.at("share").get<double>(), 0.0) << row;
    EXPECT_GE(row.at("total_ms").get<double>(), 0.0) << row;
    EXPECT_LE(row.at("total_ms").get<double>(), previous) << "not sorted";
    previous = row.at("total_ms");
    share += row.at("share").get<double>();
    total_ms += row.at("total_ms").get<double>();
    if (row.at("name") == "matmul" && row.at("pass") == "backward")
      matmul_backward += row.at("calls").get<int64_t>();
    optimizer = optimizer || row.at("name") == "optimizer step";
    data = data || row.at("name") == "data (batching)";
    other = other || row.at("name") == "other (host)";
  }
  EXPECT_EQ(matmul_backward, f4.at("matmul"));  // every matmul has weights
  EXPECT_TRUE(optimizer && data && other) << p4;
  EXPECT_LE(share, 1.0 + 1e-9);
  EXPECT_GT(share, 0.99);  // the rows account for the whole step
  EXPECT_NEAR(total_ms, p4.at("step_ms").get<double>(),
              1e-6 * p4.at("step_ms").get<double>() + 1e-9);
}

TEST_F(ProfileTest, TheTraceNestsOpsInPhasesAndStopsAfterProfileSteps) {
  const fs::path run = Run("traced", 4, true, /*profile_steps=*/2);
  const json profile = ReadJson(run / "profile.json");
  EXPECT_EQ(profile.at("traced_steps"), 2);
  const json trace = ReadJson(run / "trace.json");
  ASSERT_FALSE(trace.is_discarded()) << "trace.json is not JSON";
  EXPECT_EQ(trace.at("displayTimeUnit"), "ms");
  ASSERT_TRUE(trace.at("traceEvents").is_array());

  struct Span {
    double begin, end;
  };
  std::vector<Span> steps;
  std::multimap<std::string, Span> phases;        // by name
  std::vector<std::pair<std::string, Span>> ops;  // by pass
  int64_t forward_events = 0;
  for (const json& e : trace.at("traceEvents")) {
    if (e.at("ph") == "M") continue;
    ASSERT_EQ(e.at("ph"), "X") << e;
    const double ts = e.at("ts"), dur = e.at("dur");
    EXPECT_GE(ts, 0.0) << e;
    EXPECT_GE(dur, 0.0) << e;
    EXPECT_EQ(e.at("pid"), 1);
    const Span span{ts, ts + dur};
    const std::string cat = e.at("cat");
    if (cat == "step") {
      EXPECT_EQ(
          e.at("name"),
          "step " + std::to_string(e.at("args").at("step").get<int64_t>()))
          << e;
      steps.push_back(span);
    } else if (cat == "phase") {
      phases.insert({e.at("name").get<std::string>(), span});
    } else {
      ASSERT_TRUE(cat == "forward" || cat == "backward") << e;
      // Named by implementation, with the op and its input shapes.
      EXPECT_EQ(e.at("name").get<std::string>().rfind(
                    e.at("args").at("op").get<std::string>() + ".", 0),
                0u)
          << e;
      EXPECT_EQ(e.at("args").at("inputs").get<std::string>().substr(0, 1), "[")
          << e;
      ops.push_back({cat, span});
      forward_events += cat == "forward";
    }
  }
  EXPECT_EQ(steps.size(), 2u);  // the cap
  int64_t all_forward = 0;
  for (const auto& [op, calls] : ForwardCalls(profile)) all_forward += calls;
  EXPECT_EQ(forward_events, all_forward / 4 * 2);  // 2 of 4 equal steps
  // Clock reads a few ns apart, printed as µs doubles.
  constexpr double kSlack = 1e-3;
  auto inside = [&](const Span& in, const Span& out) {
    return in.begin >= out.begin - kSlack && in.end <= out.end + kSlack;
  };
  for (const auto& [pass, span] : ops) {
    bool in_step = false, in_phase = false;
    for (const Span& s : steps) in_step = in_step || inside(span, s);
    auto [lo, hi] = phases.equal_range(pass);
    for (auto it = lo; it != hi; ++it)
      in_phase = in_phase || inside(span, it->second);
    EXPECT_TRUE(in_step && in_phase)
        << pass << " op at " << span.begin << " not inside its step/phase";
  }
  for (const auto& [name, span] : phases) {
    bool in_step = false;
    for (const Span& s : steps) in_step = in_step || inside(span, s);
    EXPECT_TRUE(in_step) << name;
  }
}

TEST_F(ProfileTest, ProfilingChangesNoResultAndOffWritesNoFiles) {
  const fs::path on = Run("on", 3, true);
  const fs::path off = Run("off", 3, false);
  EXPECT_TRUE(fs::exists(on / "trace.json"));
  EXPECT_FALSE(fs::exists(off / "profile.json"));
  EXPECT_FALSE(fs::exists(off / "trace.json"));
  const std::string weights = Read(on / "checkpoint/model.safetensors");
  EXPECT_FALSE(weights.empty());
  EXPECT_EQ(weights, Read(off / "checkpoint/model.safetensors"));
  const json a = ReadJson(on / "summary.json"),
             b = ReadJson(off / "summary.json");
  EXPECT_EQ(a.at("train_loss"), b.at("train_loss"));
  EXPECT_EQ(a.at("val_loss"), b.at("val_loss"));
}

TEST(ProfilerTest, PhasesAndOpsOutsideAStepAreNotCounted) {
  runtime::Profiler p({.trace_steps = 1});
  const auto t = runtime::Profiler::Clock::now();
  p.RecordOp("matmul", "matmul.x", runtime::Profiler::Pass::kForward, t, t, "");
  { runtime::Profiler::Phase phase(&p, "data"); }
  EXPECT_EQ(p.Summary().rows.size(), 1u);  // "other (host)" only
  p.BeginStep(1);
  {
    runtime::Profiler::Phase phase(&p, "forward");
    p.RecordOp("matmul", "matmul.x", runtime::Profiler::Pass::kForward, t, t,
               "[2,3]");
  }
  p.EndStep();
  p.BeginStep(2);
  p.RecordOp("matmul", "matmul.x", runtime::Profiler::Pass::kForward, t, t, "");
  p.EndStep();
  const runtime::ProfileSummary s = p.Summary();
  EXPECT_EQ(s.steps, 2);
  EXPECT_EQ(s.traced_steps, 1);
  ASSERT_FALSE(s.rows.empty());
  int64_t matmul = 0;
  for (const runtime::ProfileRow& r : s.rows)
    if (r.name == "matmul") matmul += r.calls;
  EXPECT_EQ(matmul, 2);
  // The trace: the thread name, then step 1's op, phase and step only.
  EXPECT_EQ(p.Trace().at("traceEvents").size(), 4u) << p.Trace();
  EXPECT_NE(runtime::FormatProfile(s).find("matmul.x"), std::string::npos);
}

}  // namespace
}  // namespace llmsys::train
