// `llmsys compare` and `llmsys report` as a user runs them: two variants of
// a tiny gpt trained a few steps each, the table, compare.json/.csv with
// differences computed from the runs' own summary.json, report.html rendered
// by headless Chromium, a failing variant, and the errors for bad input.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "nlohmann/json.hpp"
#include "tests/tools/cli_test_util.h"

namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using llmsys::cli_test::Contains;
using llmsys::cli_test::Result;
using llmsys::cli_test::RunLlmsys;

std::string ReadFile(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}
void WriteFile(const fs::path& p, const std::string& text) {
  std::ofstream(p, std::ios::binary) << text;
}
size_t Count(const std::string& haystack, const std::string& needle) {
  size_t n = 0;
  for (size_t p = haystack.find(needle); p != std::string::npos;
       p = haystack.find(needle, p + 1))
    ++n;
  return n;
}

// One comparison of two variants (adamw, sgd), made once for the suite.
class CompareCliTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new fs::path(fs::path(::testing::TempDir()) /
                        ("llmsys_compare_" + std::to_string(getpid())));
    fs::remove_all(*dir_);
    fs::create_directories(*dir_);
    std::string corpus;
    for (int i = 0; i < 200; ++i)
      corpus += "the quick brown fox jumps over the lazy dog " +
                std::to_string(i % 7) + "\n";
    WriteFile(*dir_ / "corpus.txt", corpus);
    WriteFile(*dir_ / "cmp.toml", Experiment("[[variants]]\nname = \"adamw\"\n"
                                             "[[variants]]\nname = \"sgd\"\n"
                                             "optimizer.use = \"sgd\"\n"
                                             "optimizer.momentum = 0.9\n"
                                             "[[variants]]\nname = \"broken\"\n"
                                             "data.train = \"missing.txt\"\n"));
  }
  static void TearDownTestSuite() {
    fs::remove_all(*dir_);
    delete dir_;
    delete compare_;
    compare_ = nullptr;
  }
  // `llmsys compare` of adamw and sgd, run by the first test that needs it.
  static const Result& Compare() {
    if (compare_ == nullptr)
      compare_ =
          new Result(RunLlmsys("compare " + (*dir_ / "cmp.toml").string() +
                               " --only adamw --only sgd --no-progress"));
    return *compare_;
  }

  // A tiny gpt for 6 steps; `extra` is appended.
  static std::string Experiment(const std::string& extra) {
    return "[experiment]\nname = \"cmp\"\nseed = 3\noutput = \"" +
           (*dir_ / "runs").string() + "\"\n[data]\ntrain = \"" +
           (*dir_ / "corpus.txt").string() +
           "\"\n[model]\nuse = \"gpt\"\nn_layer = 1\nn_head = 2\nn_embd = 16\n"
           "[optimizer]\nuse = \"adamw\"\nbeta2 = 0.95\n"
           "[train]\nsteps = 6\nbatch_size = 4\nblock_size = 16\n"
           "log_every = 2\neval_every = 3\neval_batches = 2\n"
           "[generate]\nsamples = 0\n"
           "[[evaluate]]\nuse = \"perplexity\"\nbatches = 2\n" +
           extra;
  }
  static fs::path Compared() { return *dir_ / "runs" / "cmp-compare"; }

  static fs::path* dir_;
  static Result* compare_;
};
fs::path* CompareCliTest::dir_ = nullptr;
Result* CompareCliTest::compare_ = nullptr;

TEST_F(CompareCliTest, EachVariantIsARunWithTheSameSeed) {
  ASSERT_EQ(Compare().exit_code, 0) << Compare().err;
  EXPECT_TRUE(Contains(Compare().err, "=== variant 1/2: adamw"))
      << Compare().err;
  EXPECT_TRUE(Contains(Compare().err, "=== variant 2/2: sgd"));
  for (const char* v : {"adamw", "sgd"}) {
    const std::string config = ReadFile(Compared() / v / "config.toml");
    EXPECT_TRUE(Contains(config, "seed = 3\n")) << config;
    EXPECT_TRUE(fs::exists(Compared() / v / "summary.json")) << v;
  }
  EXPECT_TRUE(Contains(ReadFile(Compared() / "sgd" / "config.toml"),
                       "use = \"sgd\"\nmomentum = 0.9\n"));
  EXPECT_FALSE(fs::exists(Compared() / "broken"));  // not --only
}

TEST_F(CompareCliTest, TheTableAndFilesHoldTheDifferencesToTheFirst) {
  ASSERT_EQ(Compare().exit_code, 0) << Compare().err;
  const std::string& out = Compare().out;
  EXPECT_TRUE(Contains(out, "cmp: 2 runs, baseline 'adamw'")) << out;
  EXPECT_TRUE(Contains(out, "optimizer.use ")) << out;
  EXPECT_TRUE(Contains(out, "train loss ")) << out;
  EXPECT_TRUE(Contains(out, "tokens/s ")) << out;
  EXPECT_TRUE(
      Contains(out, "report: " + (Compared() / "report.html").string()));

  const json c = json::parse(ReadFile(Compared() / "compare.json"));
  ASSERT_EQ(c["variants"].size(), 2u);
  EXPECT_EQ(c["baseline"], "adamw");
  EXPECT_EQ(c["varied_keys"], json({"optimizer.momentum", "optimizer.use"}));
  const json& sgd = c["variants"][1];
  EXPECT_EQ(sgd["name"], "sgd");
  EXPECT_EQ(sgd["status"], "ok");
  EXPECT_EQ(sgd["overrides"],
            json({{"optimizer.use", "sgd"}, {"optimizer.momentum", "0.9"}}));
  EXPECT_EQ(sgd["run_dir"], (Compared() / "sgd").string());
  // The values are the runs' own, the differences computed from them.
  const json a = json::parse(ReadFile(Compared() / "adamw" / "summary.json"));
  const json s = json::parse(ReadFile(Compared() / "sgd" / "summary.json"));
  for (const char* key : {"train_loss", "val_loss", "tokens_per_second"}) {
    SCOPED_TRACE(key);
    const double x = a[key].get<double>(), y = s[key].get<double>();
    EXPECT_DOUBLE_EQ(c["variants"][0]["values"][key].get<double>(), x);
    EXPECT_DOUBLE_EQ(sgd["values"][key].get<double>(), y);
    EXPECT_DOUBLE_EQ(sgd["delta"][key]["abs"].get<double>(), y - x);
    EXPECT_NEAR(sgd["delta"][key]["pct"].get<double>(),
                100 * (y - x) / std::fabs(x), 1e-9);
  }
  EXPECT_DOUBLE_EQ(sgd["values"]["peak_memory_mib"].get<double>(),
                   s["peak_memory_bytes"].get<double>() / 1048576.0);
  EXPECT_DOUBLE_EQ(sgd["values"]["perplexity.perplexity"].get<double>(),
                   s["evaluations"][0]["metrics"]["perplexity"].get<double>());
  // Both runs have the same build, machine and files: nothing to warn of
  // (the optimizer's own parameters differ because it was varied).
  for (const json& w : c["warnings"])
    EXPECT_FALSE(Contains(w.get<std::string>(), "differs")) << w;
  if (fs::exists(Compared() / "adamw" / "provenance.json")) {
    EXPECT_TRUE(c["warnings"].empty()) << c["warnings"].dump();
  }

  const std::string csv = ReadFile(Compared() / "compare.csv");
  EXPECT_EQ(Count(csv, "\r\n"), 3u) << csv;
  EXPECT_EQ(csv.rfind("variant,status,error,run_dir,optimizer.momentum,"
                      "optimizer.use,train_loss,train_loss_delta,",
                      0),
            0u)
      << csv;
  EXPECT_TRUE(Contains(
      csv, "\r\nsgd,ok,," + (Compared() / "sgd").string() + ",0.9,sgd,"))
      << csv;
}

TEST_F(CompareCliTest, ReportRendersInHeadlessChromium) {
  ASSERT_EQ(Compare().exit_code, 0) << Compare().err;
  const fs::path page = Compared() / "report.html";
  ASSERT_TRUE(fs::exists(page));
  if (system("command -v chromium >/dev/null 2>&1") != 0)
    GTEST_SKIP() << "chromium is not installed (tools/setup.sh installs it)";
  const fs::path dom = *dir_ / "dom.html", log = *dir_ / "chromium.log";
  // The console's messages go to the log as "...:CONSOLE..." lines.
  const std::string command =
      "timeout 60 chromium --headless=new --no-sandbox --disable-gpu "
      "--no-first-run --user-data-dir=" +
      (*dir_ / "chromium-profile").string() +
      " --enable-logging=stderr --v=0 --dump-dom file://" + page.string() +
      " >" + dom.string() + " 2>" + log.string();
  ASSERT_EQ(system(command.c_str()), 0) << ReadFile(log);
  const std::string rendered = ReadFile(dom);
  EXPECT_TRUE(Contains(rendered, "<table class=\"comparison\"")) << rendered;
  EXPECT_TRUE(Contains(rendered, "<h1>cmp</h1>"));
  EXPECT_GE(Count(rendered, "<svg"), 4u);  // losses, metrics, speed, memory
  EXPECT_EQ(Count(rendered, "<path class=\"train-loss\""), 2u);
  EXPECT_TRUE(Contains(rendered, "data-variant=\"sgd\""));
  EXPECT_TRUE(Contains(rendered, "data-quantity=\"tokens_per_second\""));
  EXPECT_TRUE(Contains(rendered, "data-quantity=\"peak_memory_mib\""));
  const std::string console = ReadFile(log);
  EXPECT_FALSE(Contains(console, ":CONSOLE")) << console;
  EXPECT_FALSE(Contains(console, "Uncaught")) << console;
}

TEST_F(CompareCliTest, ReportComparesExistingRuns) {
  ASSERT_EQ(Compare().exit_code, 0) << Compare().err;
  const fs::path out = *dir_ / "report";
  Result r = RunLlmsys("report " + (Compared() / "adamw").string() + " " +
                       (Compared() / "sgd").string() + "/ --output " +
                       out.string() + " --name \"two optimizers\"");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(Contains(r.out, "two optimizers: 2 runs, baseline 'adamw'"))
      << r.out;
  const json c = json::parse(ReadFile(out / "compare.json"));
  // The keys that differ; sgd's own momentum goes with optimizer.use.
  EXPECT_EQ(c["varied_keys"], json({"optimizer.use"}));
  EXPECT_EQ(c["variants"][1]["name"], "sgd");
  const json compared = json::parse(ReadFile(Compared() / "compare.json"));
  EXPECT_EQ(c["variants"][1]["values"], compared["variants"][1]["values"]);
  EXPECT_EQ(c["warnings"], compared["warnings"]);
  EXPECT_TRUE(fs::exists(out / "report.html"));
  EXPECT_TRUE(fs::exists(out / "compare.csv"));

  r = RunLlmsys("report " + Compared().string());
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(Contains(r.err, "not a run directory (no config.toml)")) << r.err;
  EXPECT_TRUE(Contains(r.err, "a comparison's folder: give its runs")) << r.err;
  r = RunLlmsys("report");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(Contains(r.err, "takes one or more run directories")) << r.err;
}

TEST_F(CompareCliTest, AFailedVariantIsARowAndExitCodeOne) {
  ASSERT_EQ(Compare().exit_code, 0) << Compare().err;
  // Only "broken" runs; the two earlier runs are compared with it.
  Result r = RunLlmsys("compare " + (*dir_ / "cmp.toml").string() +
                       " --only broken --no-progress");
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_TRUE(Contains(r.out, "cmp: 3 runs, baseline 'adamw'")) << r.out;
  EXPECT_TRUE(Contains(r.out, "'broken' failed: ")) << r.out;
  EXPECT_TRUE(Contains(r.out, "missing.txt")) << r.out;
  const json c = json::parse(ReadFile(Compared() / "compare.json"));
  ASSERT_EQ(c["variants"].size(), 3u);
  EXPECT_EQ(c["variants"][2]["status"], "failed");
  EXPECT_TRUE(
      Contains(c["variants"][2]["error"].get<std::string>(), "missing.txt"));
  EXPECT_TRUE(c["variants"][2]["values"]["train_loss"].is_null());
  // It never got a directory; its configuration is the one it would have had.
  EXPECT_TRUE(c["variants"][2]["run_dir"].is_null());
  EXPECT_TRUE(
      Contains(ReadFile(Compared() / "compare.csv"), ",-,adamw,missing.txt,"))
      << ReadFile(Compared() / "compare.csv");
  EXPECT_EQ(c["variants"][1]["status"], "ok");
  EXPECT_TRUE(Contains(ReadFile(Compared() / "report.html"), "failed"));

  // The runs exist: a second comparison needs --overwrite.
  r = RunLlmsys("compare " + (*dir_ / "cmp.toml").string() +
                " --only sgd --no-progress");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(Contains(r.err, "sgd already exists: pass --overwrite")) << r.err;
}

TEST_F(CompareCliTest, VaryIsACrossProductAndRunIgnoresVariants) {
  WriteFile(*dir_ / "vary.toml", Experiment(""));
  Result r = RunLlmsys("compare " + (*dir_ / "vary.toml").string() +
                       " --vary schedule.lr=0.001,0.01 --set train.steps=2 "
                       "--set experiment.name=vary --no-progress");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json c =
      json::parse(ReadFile(*dir_ / "runs" / "vary-compare" / "compare.json"));
  ASSERT_EQ(c["variants"].size(), 2u);
  EXPECT_EQ(c["variants"][0]["name"], "lr=0.001");
  EXPECT_EQ(c["variants"][1]["name"], "lr=0.01");
  EXPECT_TRUE(Contains(
      ReadFile(*dir_ / "runs" / "vary-compare" / "lr=0.01" / "config.toml"),
      "lr = 0.01\n"));

  // `llmsys run` trains the file as it is.
  r = RunLlmsys("run " + (*dir_ / "cmp.toml").string() +
                " --set train.steps=1 --set experiment.name=plain "
                "--no-progress");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(Contains(ReadFile(*dir_ / "runs" / "plain" / "config.toml"),
                       "[optimizer]\nuse = \"adamw\""));
}

TEST_F(CompareCliTest, BadInputIsAClearErrorBeforeAnythingRuns) {
  for (const char* command : {"compare", "report"}) {
    Result help = RunLlmsys(std::string(command) + " --help");
    EXPECT_EQ(help.exit_code, 0);
    EXPECT_TRUE(Contains(help.out, std::string("usage: llmsys ") + command))
        << help.out;
  }
  Result none = RunLlmsys("compare");
  EXPECT_EQ(none.exit_code, 2);
  EXPECT_TRUE(Contains(none.err, "'llmsys compare' takes an experiment file"));
  struct Case {
    std::string variants, args;
    int code;
    std::string expected;
  };
  const Case cases[] = {
      {"[[variants]]\nname = \"a\"\noptimizer.use = \"sgd\"\n"
       "optimizer.momentm = 0.9\n",
       "", 1,
       "[[variants]] 'a': unknown key 'optimizer.momentm' (did you mean "
       "'momentum'?)"},
      {"[[variants]]\noptimizer.use = \"sgd\"\n", "", 1,
       "[[variants]] #1 needs name = \"...\""},
      {"[[variants]]\nname = \"a\"\n[[variants]]\nname = \"a\"\n", "", 1,
       "[[variants]] name \"a\" is used twice"},
      {"", "", 1, "no variants: add [[variants]] entries"},
      {"", "--vary optimizer.use", 2,
       "--vary optimizer.use: expected section.key=value1,value2"},
      {"", "--vary optimizer.use=", 2, "--vary optimizer.use=: an empty value"},
      {"", "--vary optimizer.use=sgd,lino", 1,
       "variant 'lino': --vary optimizer.use: optimizer.use = lino: "},
      {"", "--vary optimizer.momentm=1,2", 1,
       "[optimizer] unknown key 'momentm'"},
      {"[[variants]]\nname = \"a\"\n", "--only b", 2,
       "--only b: no such variant (did you mean 'a'?); variants: a"},
      {"[[variants]]\nname = \"a\"\noptimizer.use = \"sgd\"\n",
       "--vary optimizer.use=lion", 1,
       "--vary optimizer.use: [[variants]] 'a'"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.variants + c.args);
    WriteFile(*dir_ / "bad.toml", Experiment(c.variants));
    Result r = RunLlmsys("compare " + (*dir_ / "bad.toml").string() + " " +
                         c.args + " --set experiment.name=bad");
    EXPECT_EQ(r.exit_code, c.code) << r.err;
    EXPECT_TRUE(Contains(r.err, c.expected)) << r.err;
    EXPECT_FALSE(fs::exists(*dir_ / "runs" / "bad-compare"));
  }
}

}  // namespace
