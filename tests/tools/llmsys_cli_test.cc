// The `llmsys` command as a user runs it: exit codes, tables, JSON and the
// error messages for bad input.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "framework/core/provenance.h"
#include "gtest/gtest.h"
#include "llmsys/version.h"
#include "nlohmann/json.hpp"
#include "tests/tools/cli_test_util.h"

namespace {

using llmsys::cli_test::Contains;
using llmsys::cli_test::Result;
using llmsys::cli_test::RunLlmsys;
using llmsys::cli_test::WriteTinyGpt;

std::string Dir(const std::string& name) {
  return std::string(LLMSYS_TEST_PLUGIN_DIR) + "/" + name;
}
std::string File(const std::string& name) {
  return Dir(name) + "/" + name + ".so";
}

TEST(LlmsysCliTest, VersionAndHelp) {
  Result r = RunLlmsys("--version");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_TRUE(Contains(r.out, "(plugin ABI " LLMSYS_ABI_VERSION_STRING ")"))
      << r.out;
  for (const char* args :
       {"--help", "plugins --help", "plugins describe --help",
        "plugins check --help", "eval --help", "generate --help"}) {
    r = RunLlmsys(args);
    EXPECT_EQ(r.exit_code, 0) << args;
    EXPECT_TRUE(Contains(r.out, "usage: llmsys")) << args << ": " << r.out;
  }
}

TEST(LlmsysCliTest, UnknownCommandAndOption) {
  Result r = RunLlmsys("plugin");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(
      Contains(r.err, "unknown command 'plugin' (did you mean 'plugins'?)"))
      << r.err;
  r = RunLlmsys("plugins --jsn");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(Contains(r.err, "jsn")) << r.err;
  r = RunLlmsys("plugins descibe sgd");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(Contains(r.err, "did you mean 'describe'?")) << r.err;
}

TEST(LlmsysCliTest, ListsComponentsAsATable) {
  Result r = RunLlmsys("plugins --plugin-dir " + Dir("good"));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(Contains(r.out, "KIND")) << r.out;
  EXPECT_TRUE(Contains(r.out, "operator")) << r.out;
  EXPECT_TRUE(Contains(r.out, "scale.test")) << r.out;
  EXPECT_TRUE(Contains(r.out, File("good"))) << r.out;
}

TEST(LlmsysCliTest, JsonListing) {
  Result r = RunLlmsys("plugins --json --plugin-dir " + Dir("good") +
                       " --plugin-dir " + Dir("pure_c"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  nlohmann::json j = nlohmann::json::parse(r.out);
  ASSERT_TRUE(j.is_array());
  bool found = false;
  for (const auto& row : j) {
    for (const char* key : {"kind", "id", "version", "device", "file", "abi"})
      EXPECT_TRUE(row.contains(key)) << row.dump();
    if (row["id"] == "c_sgd") {
      found = true;
      EXPECT_EQ(row["kind"], "optimizer");
      EXPECT_EQ(row["version"], "0.1.0");
      EXPECT_EQ(row["device"], "cpu");
      EXPECT_EQ(row["file"], File("pure_c"));
      EXPECT_EQ(row["abi"], LLMSYS_ABI_VERSION_STRING);
    }
  }
  EXPECT_TRUE(found) << r.out;
}

TEST(LlmsysCliTest, VerbosePrintsTheSearchOrder) {
  Result r = RunLlmsys("plugins --verbose --plugin-dir " + Dir("good"));
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_TRUE(Contains(r.err, "plugin search order:")) << r.err;
  EXPECT_TRUE(Contains(r.err, Dir("good") + "  (--plugin-dir)")) << r.err;
  EXPECT_TRUE(Contains(r.err, "loaded " + File("good"))) << r.err;
}

TEST(LlmsysCliTest, MissingPluginDirectory) {
  Result r = RunLlmsys("plugins --plugin-dir /no/such/dir");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(Contains(
      r.err,
      "plugin directory '/no/such/dir' (from --plugin-dir) does not exist"))
      << r.err;
}

TEST(LlmsysCliTest, RejectedFilesAndConflictsFailTheListing) {
  Result r =
      RunLlmsys("plugins --plugin-dir " + Dir("dup_a") + " --plugin-dir " +
                Dir("dup_b") + " --plugin-dir " + Dir("abi_major2"));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(Contains(r.out, "dup")) << r.out;  // the table still prints
  EXPECT_TRUE(
      Contains(r.err, "optimizer 'dup' is provided by several plugins: " +
                          File("dup_a") + " " + File("dup_b")))
      << r.err;
  EXPECT_TRUE(Contains(r.err, "plugin not loaded: " + File("abi_major2")))
      << r.err;
}

TEST(LlmsysCliTest, DescribeShowsTheSchemaAndContract) {
  Result r =
      RunLlmsys("plugins describe scale.test --plugin-dir " + Dir("good"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(Contains(r.out, "operator scale.test 0.3.0")) << r.out;
  EXPECT_TRUE(
      Contains(r.out, "scale(Tensor x, float factor=2.0) -> Tensor out"))
      << r.out;
  EXPECT_TRUE(Contains(r.out, "block")) << r.out;
  EXPECT_TRUE(Contains(r.out, "in [1, 4096]")) << r.out;
  EXPECT_TRUE(Contains(r.out, "licence MIT")) << r.out;

  r = RunLlmsys("plugins describe plain_sgd --plugin-dir " + Dir("good"));
  ASSERT_EQ(r.exit_code, 0);
  EXPECT_TRUE(Contains(r.out, "one of plain|fail")) << r.out;
  EXPECT_TRUE(Contains(r.out, "\"plain\"")) << r.out;

  r = RunLlmsys("plugins describe seven --kind optimizer --plugin-dir " +
                Dir("good"));
  EXPECT_EQ(r.exit_code, 2);
  r = RunLlmsys("plugins describe plain_sdg --plugin-dir " + Dir("good"));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(
      Contains(r.err, "no component 'plain_sdg' (did you mean 'plain_sgd'?)"))
      << r.err;
  r = RunLlmsys("plugins describe");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(Contains(r.err, "takes one component id")) << r.err;
}

TEST(LlmsysCliTest, CheckAGoodPlugin) {
  Result r = RunLlmsys("plugins check " + File("good"));
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_TRUE(Contains(r.out, "plugin:   test.good 1.2.3")) << r.out;
  EXPECT_TRUE(Contains(r.out, "op_contract")) << r.out;
  EXPECT_TRUE(Contains(r.out, "OK    5 component(s), 1 op contract(s)"))
      << r.out;
  r = RunLlmsys("plugins check " + File("pure_c"));
  EXPECT_EQ(r.exit_code, 0) << r.out;
}

TEST(LlmsysCliTest, CheckBrokenPluginsSaysWhy) {
  struct Case {
    std::string file;
    std::string reason;
  } cases[] = {
      {Dir("not_a_library") + "/notes.so",
       "not a shared library (no ELF header)"},
      {File("no_entry"),
       "does not export the entry symbol 'llmsys_plugin_entry'"},
      {File("abi_major2"),
       "built against llmsys ABI 2.0, but this host "
       "implements ABI " LLMSYS_ABI_VERSION_STRING},
      {File("newer_minor"),
       absl::StrCat("built against llmsys ABI ", LLMSYS_ABI_VERSION_MAJOR, ".",
                    LLMSYS_ABI_VERSION_MINOR + 1,
                    ", newer than this host's ABI ",
                    LLMSYS_ABI_VERSION_STRING)},
      {File("init_fails"), "failed (FAILED_PRECONDITION): this CPU lacks"},
      {File("throws_sdk"), "uncaught C++ exception: vector::at"},
      {File("throws_raw"), "threw a C++ exception across the C ABI"},
      {File("bad_schema"), "parameter 'lr': default 5.0 is outside its range"},
      {"/no/such/plugin.so", "no such file"},
  };
  for (const Case& c : cases) {
    Result r = RunLlmsys("plugins check " + c.file);
    EXPECT_EQ(r.exit_code, 1) << c.file;
    EXPECT_TRUE(Contains(r.out, "FAIL  " + c.file + ": ")) << r.out;
    EXPECT_TRUE(Contains(r.out, c.reason)) << c.file << ": " << r.out;
  }
  Result usage = RunLlmsys("plugins check");
  EXPECT_EQ(usage.exit_code, 2);
  EXPECT_TRUE(Contains(usage.err, "takes one plugin file")) << usage.err;
  Result r = RunLlmsys("plugins check " + File("unknown_op"));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(Contains(
      r.out, "implements op 'mystery', which is neither standard nor declared"))
      << r.out;
}

TEST(LlmsysCliTest, CheckRunsTheConformanceSuiteOnTheReference) {
  Result r =
      RunLlmsys("plugins check " + std::string(LLMSYS_BUILTIN_PLUGIN_DIR) +
                "/reference.so");
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_TRUE(Contains(r.out, "conformance against")) << r.out;
  for (const char* op : {"matmul.reference", "attention.reference",
                         "cross_entropy.reference", "layer_norm.reference"})
    EXPECT_TRUE(Contains(r.out, op)) << op;
  EXPECT_FALSE(Contains(r.out, "FAIL")) << r.out;
}

TEST(LlmsysCliTest, CheckAWrongPluginFailsNamingTheOpAndTheError) {
  Result r = RunLlmsys("plugins check " + File("wrong_ops"));
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_TRUE(Contains(r.out, "FAIL    add   add.wrong")) << r.out;
  EXPECT_TRUE(Contains(r.out, "output 'out' differs at (1, 2)")) << r.out;
  EXPECT_TRUE(Contains(r.out, "FAIL    relu  relu.wrong")) << r.out;
  EXPECT_TRUE(Contains(r.out, "gradient of 'x' differs")) << r.out;
  EXPECT_TRUE(Contains(r.out, "ok      exp   exp.fast")) << r.out;
  EXPECT_TRUE(Contains(r.out, "no float64: gradient check not run")) << r.out;
  EXPECT_TRUE(
      Contains(r.out, "FAIL  2 operator(s) failed the conformance suite"))
      << r.out;

  r = RunLlmsys("plugins check " + File("wrong_ops") +
                " --reference /no/such/reference.so");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(Contains(r.out, "cannot check operators without the reference"))
      << r.out;
}

TEST(LlmsysCliTest, RunAndGenerate) {
  const std::string dir =
      ::testing::TempDir() + "llmsys_cli_run_" + std::to_string(getpid());
  WriteTinyGpt(dir,
               "[train]\nsteps = 6\nbatch_size = 2\nblock_size = 8\n"
               "eval_batches = 1\n[generate]\nmax_tokens = 4\n");
  Result r = RunLlmsys("run " + dir + "/tiny.toml --no-progress");
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_TRUE(Contains(r.out, "run directory: " + dir + "/runs/tiny")) << r.out;
  EXPECT_TRUE(Contains(r.err, "step 6/6")) << r.err;
  r = RunLlmsys("run " + dir + "/tiny.toml");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(Contains(r.err, "already exists: pass --resume")) << r.err;
  r = RunLlmsys("generate " + dir +
                "/runs/tiny --prompt \"to be\" --max-tokens 5");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out.rfind("to be", 0), 0u) << r.out;
  std::filesystem::remove_all(dir);

  r = RunLlmsys("run");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(Contains(r.err, "takes an experiment file or --resume")) << r.err;
  r = RunLlmsys("run /no/such/experiment.toml");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(Contains(r.err, "/no/such/experiment.toml: cannot open"))
      << r.err;
  r = RunLlmsys("generate /no/such/run");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(Contains(r.err, "not a run directory")) << r.err;
}

// Starts `llmsys run TOML` as run NAME, sends `sig` once its first
// checkpoint exists, and returns waitpid's status; stderr goes to
// `err_file`.
int RunAndSignal(const std::string& dir, const std::string& toml,
                 const std::string& name, int sig,
                 const std::string& err_file) {
  const std::string set = "experiment.name=" + name;
  const pid_t pid = fork();
  if (pid == 0) {
    std::freopen(err_file.c_str(), "w", stderr);
    std::freopen("/dev/null", "w", stdout);
    execl(LLMSYS_BINARY, "llmsys", "run", toml.c_str(), "--set", set.c_str(),
          "--no-progress", nullptr);
    _exit(127);
  }
  const std::string state =
      dir + "/runs/" + name + "/checkpoint/trainer_state.json";
  for (int i = 0; i < 6000 && !std::filesystem::exists(state); ++i)
    usleep(10000);
  usleep(20000);
  kill(pid, sig);
  int status = 0;
  waitpid(pid, &status, 0);
  return status;
}

std::string FileBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Killed with SIGKILL mid-run, then resumed: the final weights are those of
// a run never interrupted, byte for byte. Stopped with Ctrl-C (SIGINT), the
// run checkpoints the step it is in, exits 130 and resumes the same way.
TEST(LlmsysCliTest, AnInterruptedRunResumesToTheSameWeights) {
  const std::string dir =
      ::testing::TempDir() + "llmsys_cli_kill_" + std::to_string(getpid());
  const std::string toml = WriteTinyGpt(
      dir,
      "[train]\nsteps = 400\nbatch_size = 2\nblock_size = 8\n"
      "checkpoint_every = 10\nthreads = 1\neval_every = 0\neval_batches = 1\n"
      "[generate]\nsamples = 0\n");
  Result whole =
      RunLlmsys("run " + toml + " --set experiment.name=whole --no-progress");
  ASSERT_EQ(whole.exit_code, 0) << whole.err;
  const std::string a =
      FileBytes(dir + "/runs/whole/checkpoint/model.safetensors");
  EXPECT_FALSE(a.empty());

  int status = RunAndSignal(dir, toml, "killed", SIGKILL, "/dev/null");
  EXPECT_TRUE(WIFSIGNALED(status)) << "the run ended before it was killed";
  ASSERT_TRUE(std::filesystem::exists(dir + "/runs/killed/checkpoint") ||
              std::filesystem::exists(dir + "/runs/killed/checkpoint.old"));
  Result resumed =
      RunLlmsys("run --resume " + dir + "/runs/killed --no-progress");
  ASSERT_EQ(resumed.exit_code, 0) << resumed.err;
  EXPECT_TRUE(a ==
              FileBytes(dir + "/runs/killed/checkpoint/model.safetensors"));

  const std::string err_file = dir + "/interrupted.err";
  status = RunAndSignal(dir, toml, "interrupted", SIGINT, err_file);
  ASSERT_TRUE(WIFEXITED(status)) << "Ctrl-C killed the run";
  EXPECT_EQ(WEXITSTATUS(status), 130);
  const std::string err = FileBytes(err_file);
  EXPECT_TRUE(Contains(err, "interrupted: checkpoint at step ")) << err;
  EXPECT_TRUE(Contains(err, "llmsys run --resume " + dir + "/runs/interrupted"))
      << err;
  const nlohmann::json state = nlohmann::json::parse(
      FileBytes(dir + "/runs/interrupted/checkpoint/trainer_state.json"));
  EXPECT_LT(state.at("step").get<int64_t>(), 400) << state.dump();
  EXPECT_FALSE(std::filesystem::exists(dir + "/runs/interrupted/summary.json"));
  resumed =
      RunLlmsys("run --resume " + dir + "/runs/interrupted --no-progress");
  ASSERT_EQ(resumed.exit_code, 0) << resumed.err;
  EXPECT_TRUE(
      a == FileBytes(dir + "/runs/interrupted/checkpoint/model.safetensors"));
  std::filesystem::remove_all(dir);
}

// `llmsys generate` with a sampler: a seed reproduces the text and another
// seed changes it; greedy text is the same with and without the cache (past
// the context: block_size 8, 30 tokens); several prompts, beam search, and
// the run's own [generate] sampler with its parameters and stop strings.
TEST(LlmsysCliTest, GenerateWithSamplersSeedsBeamsAndNoCache) {
  const std::string dir =
      ::testing::TempDir() + "llmsys_cli_generate_" + std::to_string(getpid());
  std::filesystem::create_directories(dir);
  {
    std::ofstream corpus(dir + "/corpus.txt");
    for (int i = 0; i < 100; ++i) corpus << "to be or not to be, that is it\n";
    std::ofstream toml(dir + "/tiny.toml");
    toml << "[experiment]\noutput = \"" << dir << "/runs\"\n"
         << "[data]\ntrain = \"" << dir << "/corpus.txt\"\n"
         << "[model]\nuse = \"gpt\"\nn_layer = 1\nn_head = 2\nn_embd = 16\n"
         << "[train]\nsteps = 20\nbatch_size = 4\nblock_size = 8\n"
         << "eval_batches = 1\n"
         << "[generate]\nsampler = \"top_k\"\ntop_k = 4\nsamples = 2\n"
         << "max_tokens = 12\nprompt = \"to\"\nstop = [\"that\"]\n";
  }
  Result r = RunLlmsys("run " + dir + "/tiny.toml --no-progress");
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_TRUE(Contains(r.err, "samples: ")) << r.err;
  EXPECT_TRUE(Contains(r.err, "tokens/s")) << r.err;
  std::ifstream samples(dir + "/runs/tiny/samples.txt");
  std::stringstream ss;
  ss << samples.rdbuf();
  const std::string text = ss.str();
  EXPECT_EQ(text.rfind("to", 0), 0u) << text;
  size_t separators = 0;
  for (size_t at = 0; (at = text.find("\n----\n", at)) != std::string::npos;
       ++at)
    ++separators;
  EXPECT_EQ(separators, 2u) << text;
  EXPECT_FALSE(Contains(text, "that")) << text;  // cut before the stop

  const std::string run = "generate " + dir + "/runs/tiny --prompt \"to be\" ";
  const std::string sampled =
      run + "--max-tokens 20 --sampler temperature --param temperature=1.5 ";
  Result a = RunLlmsys(sampled + "--seed 3");
  ASSERT_EQ(a.exit_code, 0) << a.err;
  EXPECT_EQ(a.out.rfind("to be", 0), 0u) << a.out;
  EXPECT_TRUE(Contains(a.err, "tokens/s")) << a.err;
  EXPECT_TRUE(Contains(a.err, "prefill")) << a.err;
  EXPECT_EQ(RunLlmsys(sampled + "--seed 3").out, a.out);
  EXPECT_EQ(RunLlmsys(sampled + "--seed 3 --no-cache").out, a.out);
  EXPECT_NE(RunLlmsys(sampled + "--seed 4").out, a.out);
  // The run's own sampler (top_k = 4) and seed: reproducible too.
  Result own = RunLlmsys(run + "--max-tokens 20");
  ASSERT_EQ(own.exit_code, 0) << own.err;
  EXPECT_EQ(RunLlmsys(run + "--max-tokens 20").out, own.out);

  Result greedy = RunLlmsys(run + "--max-tokens 30 --sampler greedy");
  ASSERT_EQ(greedy.exit_code, 0) << greedy.err;
  Result plain = RunLlmsys(run + "--max-tokens 30 --sampler greedy --no-cache");
  ASSERT_EQ(plain.exit_code, 0) << plain.err;
  EXPECT_EQ(plain.out, greedy.out);
  EXPECT_TRUE(Contains(plain.err, "[no cache]")) << plain.err;
  EXPECT_FALSE(Contains(greedy.err, "[no cache]")) << greedy.err;

  Result two = RunLlmsys("generate " + dir +
                         "/runs/tiny --prompt to --prompt \"be or\" "
                         "--max-tokens 5 --sampler greedy");
  ASSERT_EQ(two.exit_code, 0) << two.err;
  EXPECT_EQ(two.out.rfind("to", 0), 0u) << two.out;
  EXPECT_TRUE(Contains(two.out, "\n----\nbe or")) << two.out;
  Result beams = RunLlmsys(run + "--max-tokens 10 --num-beams 3");
  ASSERT_EQ(beams.exit_code, 0) << beams.err;
  EXPECT_EQ(beams.out.rfind("to be", 0), 0u) << beams.out;
  // One beam is greedy.
  Result one_beam =
      RunLlmsys(run + "--max-tokens 30 --num-beams 1 --sampler greedy");
  EXPECT_EQ(one_beam.out, greedy.out);

  r = RunLlmsys(run + "--sampler temperature --param temprature=1");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(Contains(r.err, "did you mean 'temperature'")) << r.err;
  r = RunLlmsys(run + "--sampler nope");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(Contains(r.err, "--sampler \"nope\"")) << r.err;
  r = RunLlmsys(run + "--num-beams 0");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(Contains(r.err, "--num-beams must be >= 1")) << r.err;
  std::filesystem::remove_all(dir);
}

// The hash a team sends with its plugin: `plugins check` prints it, an
// experiment pins it, a run records it in provenance.json, and a different
// file under the pinned name is refused.
TEST(LlmsysCliTest, CheckPrintsTheSha256AnExperimentPins) {
  const std::string gpt = std::string(LLMSYS_BUILTIN_PLUGIN_DIR) + "/gpt.so";
  absl::StatusOr<std::string> sha = llmsys::core::Sha256File(gpt);
  ASSERT_TRUE(sha.ok()) << sha.status();
  Result r = RunLlmsys("plugins check " + gpt);
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_TRUE(Contains(r.out, "sha256:   " + *sha + "\n")) << r.out;

  const std::string dir =
      ::testing::TempDir() + "llmsys_cli_pins_" + std::to_string(getpid());
  std::filesystem::create_directories(dir);
  auto write_experiment = [&](const std::string& pin) {
    std::ofstream corpus(dir + "/corpus.txt");
    for (int i = 0; i < 50; ++i) corpus << "to be or not to be\n";
    std::ofstream toml(dir + "/pinned.toml");
    toml << "[experiment]\noutput = \"" << dir << "/runs\"\n"
         << "[plugins]\npins = { \"gpt.so\" = \"" << pin << "\" }\n"
         << "[data]\ntrain = \"" << dir << "/corpus.txt\"\n"
         << "[model]\nuse = \"gpt\"\nn_layer = 1\nn_head = 2\nn_embd = 16\n"
         << "[train]\nsteps = 2\nbatch_size = 2\nblock_size = 8\n"
         << "eval_batches = 1\n[generate]\nsamples = 0\n";
  };
  write_experiment(*sha);
  r = RunLlmsys("run " + dir + "/pinned.toml --no-progress");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::ifstream in(dir + "/runs/pinned/provenance.json");
  const nlohmann::json provenance = nlohmann::json::parse(in);
  EXPECT_TRUE(Contains(provenance["command"], " run " + dir + "/pinned.toml"))
      << provenance["command"];
  bool recorded = false;
  for (const auto& p : provenance["plugins"])
    recorded = recorded || (p["file"] == gpt && p["sha256"] == *sha);
  EXPECT_TRUE(recorded) << provenance["plugins"].dump(2);

  const std::string other(64, '0');
  write_experiment(other);
  r = RunLlmsys("run " + dir + "/pinned.toml --overwrite --no-progress");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(Contains(r.err,
                       "pinned.toml:4:21: [plugins] pins: gpt.so has "
                       "sha256 " +
                           *sha + ", the experiment pins " + other + " (file " +
                           gpt))
      << r.err;
  std::filesystem::remove_all(dir);
}

TEST(LlmsysCliTest, ProfilePrintsTheOpTableAndWritesTheTrace) {
  const std::string dir =
      ::testing::TempDir() + "llmsys_cli_profile_" + std::to_string(getpid());
  WriteTinyGpt(dir,
               "[train]\nsteps = 3\nbatch_size = 2\nblock_size = 8\n"
               "eval_batches = 1\n[generate]\nsamples = 0\n");
  Result r = RunLlmsys("run " + dir +
                       "/tiny.toml --no-progress --profile --profile-steps 1");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(Contains(r.err, "profile: 3 steps")) << r.err;
  EXPECT_TRUE(Contains(r.err, "matmul")) << r.err;
  EXPECT_TRUE(Contains(r.err, "optimizer step")) << r.err;
  EXPECT_TRUE(Contains(r.err, "other (host)")) << r.err;
  std::ifstream in(dir + "/runs/tiny/trace.json");
  const nlohmann::json trace = nlohmann::json::parse(in, nullptr, false);
  ASSERT_FALSE(trace.is_discarded());
  int steps = 0;
  for (const auto& e : trace["traceEvents"])
    steps += e.value("cat", "") == "step";
  EXPECT_EQ(steps, 1);  // --profile-steps 1

  r = RunLlmsys("run " + dir + "/tiny.toml --overwrite --profile-steps -1");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(Contains(r.err, "--profile-steps must be >= 0, got -1")) << r.err;
  r = RunLlmsys("run " + dir + "/tiny.toml --overwrite --profile-steps 3");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(Contains(r.err, "--profile-steps needs --profile")) << r.err;
  std::filesystem::remove_all(dir);
}

}  // namespace
