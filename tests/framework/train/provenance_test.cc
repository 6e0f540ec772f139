// A run directory's provenance.json (every field, the plugins used and only
// those, the records a resume keeps) and [plugins] pins: a pinned file with
// the right sha256 runs, a wrong one, a missing one, an unloadable one and a
// malformed pin are clear errors before training, in `llmsys run` and in
// `llmsys generate` alike.
#include "framework/train/provenance.h"

#include <gtest/gtest.h>

#include <cctype>
#include <filesystem>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include "framework/config/experiment.h"
#include "framework/core/provenance.h"
#include "framework/core/version.h"
#include "framework/train/trainer.h"
#include "nlohmann/json.hpp"
#include "tests/framework/train/test_files.h"
#include "llmsys/version.h"

namespace llmsys::train {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

const fs::path kBuiltin = LLMSYS_BUILTIN_PLUGIN_DIR;

std::string Sha256Of(const fs::path& file) {
  absl::StatusOr<std::string> h = core::Sha256File(file);
  EXPECT_TRUE(h.ok()) << h.status();
  return h.ok() ? *h : "";
}

class ProvenanceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = FreshTestDir("llmsys_provenance");
    std::string corpus;
    for (int i = 0; i < 100; ++i)
      corpus += "to be or not to be, that is the question " +
                std::to_string(i % 5) + "\n";
    Write(dir_ / "corpus.txt", corpus);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // A tiny experiment (no samples, no evaluators); `extra` is appended.
  void WriteExperiment(const std::string& extra) const {
    Write(dir_ / "tiny.toml",
          "[experiment]\nname = \"tiny\"\nseed = 7\noutput = \"" +
              (dir_ / "runs").string() + "\"\n[data]\ntrain = \"" +
              (dir_ / "corpus.txt").string() +
              "\"\n[model]\nuse = \"gpt\"\nn_layer = 1\nn_head = 2\n"
              "n_embd = 16\n[optimizer]\nuse = \"adamw\"\n"
              "[train]\nsteps = 3\nbatch_size = 2\nblock_size = 8\n"
              "eval_batches = 1\nthreads = 1\n"
              "[generate]\nsamples = 0\n" +
              extra);
  }
  RunOptions Options() const {
    RunOptions o;
    o.experiment = dir_ / "tiny.toml";
    o.progress_bar = false;
    o.plugin_dirs = {kBuiltin.string()};
    return o;
  }
  fs::path Run() const { return dir_ / "runs" / "tiny"; }
  json Provenance() const {
    return json::parse(Read(Run() / "provenance.json"));
  }
  // "pins = { "<file>" = "<sha>" }" under [plugins].
  static std::string Pin(const std::string& file, const std::string& sha) {
    return "[plugins]\npins = { \"" + file + "\" = \"" + sha + "\" }\n";
  }

  fs::path dir_;
};

// The plugins entry for `file_name`, or null.
const json* PluginEntry(const json& provenance, const std::string& file_name) {
  for (const json& p : provenance["plugins"])
    if (fs::path(p["file"].get<std::string>()).filename() == file_name)
      return &p;
  return nullptr;
}

bool HasComponent(const json& entry, const std::string& component) {
  for (const json& c : entry["components"])
    if (c == component) return true;
  return false;
}

TEST_F(ProvenanceTest, ARunRecordsWhatMadeIt) {
  WriteExperiment("");
  RunOptions options = Options();
  options.sets = {"train.steps=3"};
  absl::StatusOr<RunResult> r = RunExperiment(options);
  ASSERT_TRUE(r.ok()) << r.status();
  const json p = Provenance();

  EXPECT_EQ(p["llmsys_version"], kHostVersion);
  EXPECT_EQ(p["abi_version"], LLMSYS_ABI_VERSION_STRING);
  const core::BuildInfo build = core::GetBuildInfo();
  if (build.git_commit) {
    EXPECT_EQ(p["git_commit"], *build.git_commit);
    EXPECT_EQ(p["git_dirty"], *build.git_dirty);
  } else {
    EXPECT_TRUE(p["git_commit"].is_null());
    EXPECT_TRUE(p["git_dirty"].is_null());
  }
  EXPECT_NE(p["command"].get<std::string>().find("provenance_test"),
            std::string::npos)
      << p["command"];
  EXPECT_EQ(p["experiment"], (dir_ / "tiny.toml").string());
  EXPECT_EQ(p["sets"], json::array({"train.steps=3"}));
  EXPECT_TRUE(
      std::regex_match(p["started"].get<std::string>(),
                       std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)")))
      << p["started"];
  EXPECT_EQ(p["start_step"], 0);
  EXPECT_EQ(p["seed"], 7);
  EXPECT_EQ(p["threads"], 1);
  EXPECT_EQ(p["device"], "cpu");
  const json& m = p["machine"];
  EXPECT_FALSE(m["hostname"].get<std::string>().empty());
  EXPECT_EQ(m["os"].get<std::string>().rfind("Linux ", 0), 0u) << m["os"];
  EXPECT_TRUE(m["cpu"].is_string());
  EXPECT_GE(m["cores"].get<int>(), 1);
  EXPECT_GT(m["memory_bytes"].get<int64_t>(), int64_t{64} << 20);
  EXPECT_TRUE(m["gpus"].is_array());
  EXPECT_EQ(p["config_sha256"], Sha256Of(Run() / "config.toml"));
  EXPECT_TRUE(p["earlier"].empty());

  // Every plugin listed with its true hash and identity.
  ASSERT_TRUE(p["plugins"].is_array());
  for (const json& entry : p["plugins"]) {
    const std::string file = entry["file"];
    EXPECT_TRUE(fs::path(file).is_absolute()) << file;
    EXPECT_EQ(entry["sha256"], Sha256Of(file)) << file;
    EXPECT_FALSE(entry["plugin_id"].get<std::string>().empty()) << file;
    EXPECT_FALSE(entry["plugin_version"].get<std::string>().empty()) << file;
    EXPECT_EQ(entry["abi_version"], LLMSYS_ABI_VERSION_STRING) << file;
    EXPECT_FALSE(entry["components"].empty()) << file;
  }
  const json* gpt = PluginEntry(p, "gpt.so");
  ASSERT_NE(gpt, nullptr) << p["plugins"].dump(2);
  EXPECT_EQ((*gpt)["plugin_id"], "llmsys.gpt");
  EXPECT_TRUE(HasComponent(*gpt, "model gpt")) << gpt->dump();
  const json* optimizers = PluginEntry(p, "optimizers.so");
  ASSERT_NE(optimizers, nullptr) << p["plugins"].dump(2);
  EXPECT_EQ((*optimizers)["components"], json::array({"optimizer adamw"}));
  // Every op summary.json says was served, by the file that served it.
  const json summary = json::parse(Read(Run() / "summary.json"));
  ASSERT_FALSE(summary["ops"].empty());
  for (const json& op : summary["ops"]) {
    const std::string file = op["file"];
    const json* entry = PluginEntry(p, fs::path(file).filename().string());
    ASSERT_NE(entry, nullptr) << file;
    EXPECT_EQ((*entry)["file"], file);
    EXPECT_TRUE(HasComponent(
        *entry, "operator " + op["implementation"].get<std::string>()))
        << op.dump() << " not in " << entry->dump();
  }
  // Found on the search path, but not used: not listed.
  for (const char* unused : {"samplers.so", "evaluators.so"}) {
    ASSERT_TRUE(fs::exists(kBuiltin / unused)) << unused;
    EXPECT_EQ(PluginEntry(p, unused), nullptr) << unused;
  }
}

TEST_F(ProvenanceTest, SamplersAndEvaluatorsCountWhenUsed) {
  WriteExperiment("[[evaluate]]\nuse = \"perplexity\"\n");
  RunOptions options = Options();
  options.sets = {"generate.samples=1", "generate.max_tokens=2"};
  options.command = "llmsys compare x.toml (variant a)";
  ASSERT_TRUE(RunExperiment(options).ok());
  const json p = Provenance();
  EXPECT_EQ(p["command"], "llmsys compare x.toml (variant a)");
  const json* evaluators = PluginEntry(p, "evaluators.so");
  ASSERT_NE(evaluators, nullptr) << p["plugins"].dump(2);
  EXPECT_EQ((*evaluators)["components"], json::array({"evaluator perplexity"}));
  const json* samplers = PluginEntry(p, "samplers.so");
  ASSERT_NE(samplers, nullptr) << p["plugins"].dump(2);
  EXPECT_EQ((*samplers)["components"].size(), 1u);
}

TEST_F(ProvenanceTest, AResumeKeepsTheEarlierRecords) {
  WriteExperiment("");
  RunOptions first = Options();
  first.stop_after = 2;
  ASSERT_TRUE(RunExperiment(first).ok());
  const json before = Provenance();
  EXPECT_EQ(before["start_step"], 0);
  EXPECT_FALSE(before["plugins"].empty());  // written when interrupted too

  RunOptions resume = Options();
  resume.experiment.clear();
  resume.resume = Run();
  ASSERT_TRUE(RunExperiment(resume).ok());
  const json after = Provenance();
  EXPECT_EQ(after["start_step"], 2);
  EXPECT_EQ(after["experiment"], (Run() / "config.toml").string());
  EXPECT_EQ(after["config_sha256"], before["config_sha256"]);
  ASSERT_EQ(after["earlier"].size(), 1u);
  json earlier = after["earlier"][0];
  json expected = before;
  expected.erase("earlier");
  EXPECT_EQ(earlier, expected);

  // A second resume (nothing left to train) appends, oldest first.
  ASSERT_TRUE(RunExperiment(resume).ok());
  const json third = Provenance();
  ASSERT_EQ(third["earlier"].size(), 2u);
  EXPECT_EQ(third["earlier"][0]["start_step"], 0);
  EXPECT_EQ(third["earlier"][1]["start_step"], 2);
  EXPECT_EQ(third["start_step"], 3);
}

TEST_F(ProvenanceTest, APinnedPluginWithItsHashRuns) {
  const std::string sha = Sha256Of(kBuiltin / "gpt.so");
  std::string upper = sha;
  for (char& c : upper) c = static_cast<char>(std::toupper(c));
  WriteExperiment(Pin("gpt.so", upper));
  absl::StatusOr<RunResult> r = RunExperiment(Options());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ((*PluginEntry(Provenance(), "gpt.so"))["sha256"], sha);
  // The resolved configuration keeps the pin (lower case) for resume and
  // generate.
  EXPECT_NE(Read(Run() / "config.toml").find("\"gpt.so\" = \"" + sha + "\""),
            std::string::npos)
      << Read(Run() / "config.toml");

  // By path: that file only, written absolute into the run's config.
  fs::remove_all(dir_ / "runs");
  WriteExperiment(Pin((kBuiltin / "gpt.so").string(), sha));
  r = RunExperiment(Options());
  ASSERT_TRUE(r.ok()) << r.status();
  GenerateOptions g;
  g.run_dir = Run();
  g.plugin_dirs = {kBuiltin.string()};
  g.max_tokens = 2;
  absl::StatusOr<GenerateResult> generated = Generate(g);
  ASSERT_TRUE(generated.ok()) << generated.status();

  // generate checks the run's pins too: a run whose gpt.so was rebuilt
  // since (here: the pin edited) is refused.
  std::string config = Read(Run() / "config.toml");
  const std::string wrong(64, 'e');
  config.replace(config.find(sha), sha.size(), wrong);
  Write(Run() / "config.toml", config);
  generated = Generate(g);
  ASSERT_FALSE(generated.ok());
  EXPECT_NE(generated.status().message().find(
                "[plugins] pins: " + (kBuiltin / "gpt.so").string() +
                " has sha256 " + sha + ", the experiment pins " + wrong),
            std::string::npos)
      << generated.status();
}

TEST_F(ProvenanceTest, APinMismatchIsAnErrorBeforeTraining) {
  const std::string sha = Sha256Of(kBuiltin / "gpt.so");
  const std::string wrong(64, 'a');
  WriteExperiment(Pin("gpt.so", wrong));
  absl::StatusOr<RunResult> r = RunExperiment(Options());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition)
      << r.status();
  const std::string expected = (dir_ / "tiny.toml").string() +
                               ":23:21: [plugins] pins: gpt.so has sha256 " +
                               sha + ", the experiment pins " + wrong +
                               " (file " + (kBuiltin / "gpt.so").string();
  EXPECT_NE(r.status().message().find(expected), std::string::npos)
      << r.status() << "\nexpected: " << expected;
  EXPECT_FALSE(fs::exists(Run())) << "a refused run leaves nothing behind";
}

TEST_F(ProvenanceTest, APinOfAFileNotFoundOrNotLoadedIsAnError) {
  const std::string sha = Sha256Of(kBuiltin / "gpt.so");
  WriteExperiment(Pin("flash_attention.so", sha));
  absl::StatusOr<RunResult> r = RunExperiment(Options());
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(absl::IsNotFound(r.status())) << r.status();
  EXPECT_NE(r.status().message().find(
                "[plugins] pins: flash_attention.so is pinned but no plugin "
                "folder provides a file of that name (searched: " +
                kBuiltin.string()),
            std::string::npos)
      << r.status();

  WriteExperiment(Pin("/no/such/dir/gpt.so", sha));
  r = RunExperiment(Options());
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("/no/such/dir/gpt.so is not a loaded "
                                      "plugin file"),
            std::string::npos)
      << r.status();

  // Found, but refused by the loader: the pin says why.
  const fs::path fixture =
      fs::path(LLMSYS_TEST_PLUGIN_DIR) / "init_fails" / "init_fails.so";
  ASSERT_TRUE(fs::exists(fixture));
  WriteExperiment("[plugins]\npaths = [\"" + fixture.parent_path().string() +
                  "\"]\npins = { \"init_fails.so\" = \"" + sha + "\" }\n");
  r = RunExperiment(Options());
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find(
                "[plugins] pins: init_fails.so is pinned but could not be "
                "loaded: " +
                fixture.string()),
            std::string::npos)
      << r.status();
}

TEST_F(ProvenanceTest, MalformedPinsNameTheKey) {
  const std::string sha = Sha256Of(kBuiltin / "gpt.so");
  struct Case {
    std::string plugins;
    std::string expected;
  };
  const std::vector<Case> cases = {
      {"pins = \"" + sha + "\"",
       ":23:8: [plugins] pins must be a table of plugin file = \"sha256\""},
      {"pins = { \"gpt.so\" = \"3f5a\" }",
       ":23:21: [plugins] pins: \"gpt.so\" must be a sha256, 64 hex digits, "
       "as a string (got \"3f5a\", 4 characters)"},
      {"pins = { \"gpt.so\" = \"" + sha.substr(1) + "g\" }",
       "[plugins] pins: \"gpt.so\" must be a sha256"},
      {"pins = { \"gpt.so\" = 42 }", "(got a value that is not a string)"},
      {"pins = { \"\" = \"" + sha + "\" }",
       "[plugins] pins: an empty file name"},
      {"pin = { \"gpt.so\" = \"" + sha + "\" }",
       "[plugins] unknown key 'pin' (did you mean 'pins'?)"},
  };
  for (const Case& c : cases) {
    WriteExperiment("[plugins]\n" + c.plugins + "\n");
    absl::StatusOr<RunResult> r = RunExperiment(Options());
    ASSERT_FALSE(r.ok()) << c.plugins;
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument)
        << r.status();
    EXPECT_NE(r.status().message().find(c.expected), std::string::npos)
        << r.status() << "\nexpected: " << c.expected;
  }
  // --set names itself.
  WriteExperiment("");
  RunOptions options = Options();
  options.sets = {"plugins.pins={\"gpt.so\"=\"x\"}"};
  absl::StatusOr<RunResult> r = RunExperiment(options);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find(
                "--set plugins.pins={\"gpt.so\"=\"x\"} (gpt.so): [plugins] "
                "pins: \"gpt.so\" must be a sha256"),
            std::string::npos)
      << r.status();
}

}  // namespace
}  // namespace llmsys::train
