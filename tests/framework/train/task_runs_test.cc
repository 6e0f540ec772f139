// The translation and mlm tasks end to end (framework/train/tasks.h): tiny
// transformer, reder and bert runs, the translations they write and score,
// `llmsys generate` on files, and the errors bad data gets.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "framework/data/corpus.h"
#include "framework/train/trainer.h"
#include "nlohmann/json.hpp"
#include "tests/framework/train/test_files.h"

namespace llmsys::train {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

// A toy language pair: source word "aN" translates to target word "bN",
// in order, so a model learns it in a few steps.
class TaskRunsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = FreshTestDir("llmsys_tasks");
    for (const char* split : {"train", "val", "test"}) {
      std::string src, tgt;
      const int n = std::string(split) == "train" ? 120 : 10;
      for (int i = 0; i < n; ++i) {
        const int len = 2 + i % 4;
        for (int w = 0; w < len; ++w) {
          const int k = (i * 7 + w * 3) % 6;
          src += (w ? " a" : "a") + std::to_string(k);
          tgt += (w ? " b" : "b") + std::to_string(k);
        }
        src += "\n";
        tgt += "\n";
      }
      Write(dir_ / (std::string(split) + ".xx"), src);
      Write(dir_ / (std::string(split) + ".yy"), tgt);
    }
  }
  void TearDown() override { fs::remove_all(dir_); }

  // A translation experiment; `model` is its [model] section's body,
  // `data` replaces or adds [data] keys (a value "" drops the key).
  std::string Translation(
      const std::string& model, const std::string& extra = "",
      const std::map<std::string, std::string>& data = {}) const {
    std::map<std::string, std::string> keys = {
        {"task", "\"translation\""},
        {"train", "\"" + (dir_ / "train").string() + "\""},
        {"valid", "\"" + (dir_ / "val").string() + "\""},
        {"test", "\"" + (dir_ / "test").string() + "\""},
        {"source_lang", "\"xx\""},
        {"target_lang", "\"yy\""},
        {"tokenizer", "\"char\""},
        {"max_source_len", "24"},
        {"max_target_len", "24"}};
    for (const auto& [k, v] : data) keys[k] = v;
    std::string d;
    for (const auto& [k, v] : keys)
      if (!v.empty()) d += k + " = " + v + "\n";
    return "[experiment]\nname = \"tiny\"\noutput = \"" +
           (dir_ / "runs").string() + "\"\n[data]\n" + d + "[model]\n" + model +
           "[optimizer]\nuse = \"adamw\"\n[schedule]\nlr = 3e-3\n"
           "[train]\nsteps = 8\nbatch_size = 8\nlog_every = 4\n"
           "eval_every = 4\n[generate]\nprompt = \"a1 a2\"\n" +
           extra;
  }
  absl::StatusOr<RunResult> Run(const std::string& toml) const {
    Write(dir_ / "x.toml", toml);
    RunOptions o;
    o.experiment = dir_ / "x.toml";
    o.progress_bar = false;
    o.overwrite = true;
    o.plugin_dirs = {LLMSYS_BUILTIN_PLUGIN_DIR};
    return RunExperiment(o);
  }
  fs::path RunDir() const { return dir_ / "runs" / "tiny"; }
  void ExpectError(const std::string& toml, const std::string& text) const {
    absl::StatusOr<RunResult> r = Run(toml);
    ASSERT_FALSE(r.ok()) << "no error; expected " << text;
    EXPECT_NE(r.status().message().find(text), std::string::npos) << r.status();
  }

  fs::path dir_;
};

const char kTransformer[] =
    "use = \"transformer\"\nn_encoder_layers = 1\nn_decoder_layers = 1\n"
    "n_embd = 16\nn_head = 2\nffn_dim = 32\ndropout = 0.0\n";

TEST_F(TaskRunsTest, ATransformerRunTranslatesAndScoresTheTestSplit) {
  absl::StatusOr<RunResult> r =
      Run(Translation(kTransformer,
                      "num_beams = 2\n[[evaluate]]\nuse = \"bleu\"\n"
                      "split = \"test\"\nsegments = 0\n[[evaluate]]\n"
                      "use = \"chrf\"\nsplit = \"test\"\nsegments = 4\n"));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(std::isfinite(r->val_loss));
  // Every test sentence translated, one per line; chrF's 4 reuse nothing
  // (a different count) and overwrite the file last.
  const std::vector<std::string> lines =
      data::SplitLines(Read(RunDir() / "translations" / "test.yy"));
  EXPECT_EQ(lines.size(), 4u);
  const json summary = json::parse(Read(RunDir() / "summary.json"));
  ASSERT_EQ(summary["evaluations"].size(), 2u);
  EXPECT_EQ(summary["evaluations"][0]["evaluator"], "bleu");
  EXPECT_TRUE(summary["evaluations"][0]["metrics"].contains("score"));
  EXPECT_NE(
      summary["evaluations"][0]["signature"].get<std::string>().find("tok:13a"),
      std::string::npos);
  EXPECT_NE(Read(RunDir() / "samples.txt").find("a1 a2\n=> "),
            std::string::npos);

  // `llmsys generate` translates a file, line by line.
  Write(dir_ / "in.xx", "a1 a2\na3\n\na4 a5 a0\n");
  GenerateOptions g;
  g.run_dir = RunDir();
  g.input = dir_ / "in.xx";
  g.output = dir_ / "out" / "in.yy";
  g.plugin_dirs = {LLMSYS_BUILTIN_PLUGIN_DIR};
  absl::StatusOr<GenerateResult> out = Generate(g);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->texts.size(), 4u);
  EXPECT_EQ(data::SplitLines(Read(dir_ / "out" / "in.yy")).size(), 4u);
  g.prompts = {"a1"};  // and --input: one source or the other
  absl::StatusOr<GenerateResult> both = Generate(g);
  ASSERT_FALSE(both.ok());
  EXPECT_NE(both.status().message().find("either with --prompt or with "
                                         "--input"),
            std::string::npos)
      << both.status();
  g.prompts.clear();
  g.reverse = true;
  absl::StatusOr<GenerateResult> back = Generate(g);
  ASSERT_FALSE(back.ok());
  EXPECT_NE(back.status().message().find("decoder = \"ctc\""),
            std::string::npos)
      << back.status();
}

TEST_F(TaskRunsTest, ARederRunTranslatesBothWaysWithCtc) {
  absl::StatusOr<RunResult> r = Run(Translation(
      "use = \"reder\"\nn_layer = 2\nn_embd = 16\nn_head = 2\nffn_dim = 32\n"
      "dropout = 0.0\n",
      "decoder = \"ctc\"\n[[evaluate]]\nuse = \"bleu\"\nsplit = \"test\"\n"
      "segments = 0\n[[evaluate]]\nuse = \"bleu\"\nsplit = \"test\"\n"
      "direction = \"reverse\"\nsegments = 0\n"));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(std::isfinite(r->val_loss));
  // The model's other outputs are logged: the CTC losses of both
  // directions and the count of targets too long for their frames.
  const std::string metrics = Read(RunDir() / "metrics.jsonl");
  EXPECT_NE(metrics.find("\"ctc_reverse\":"), std::string::npos);
  EXPECT_NE(metrics.find("\"ctc_infeasible\":"), std::string::npos);
  EXPECT_TRUE(
      json::parse(Read(RunDir() / "summary.json"))["output_totals"].contains(
          "ctc_infeasible"));
  EXPECT_EQ(
      data::SplitLines(Read(RunDir() / "translations" / "test.yy")).size(),
      10u);
  EXPECT_EQ(
      data::SplitLines(Read(RunDir() / "translations" / "test.xx")).size(),
      10u);
  GenerateOptions g;
  g.run_dir = RunDir();
  g.prompts = {"b1 b2"};
  g.reverse = true;
  g.plugin_dirs = {LLMSYS_BUILTIN_PLUGIN_DIR};
  absl::StatusOr<GenerateResult> back = Generate(g);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->texts.size(), 1u);
}

// [data] synthetic_pairs generates the corpus: train, valid and test from
// one lexicon; the translations go to translations/test.tgt and .src.
TEST_F(TaskRunsTest, ASyntheticPairNeedsNoFiles) {
  const std::string reder =
      "use = \"reder\"\nn_layer = 2\nn_embd = 16\nn_head = 2\nffn_dim = 32\n"
      "dropout = 0.0\n";
  const std::string evaluate =
      "decoder = \"ctc\"\n[[evaluate]]\nuse = \"bleu\"\nsplit = \"test\"\n"
      "segments = 0\n[[evaluate]]\nuse = \"bleu\"\nsplit = \"test\"\n"
      "direction = \"reverse\"\nsegments = 0\n";
  const std::map<std::string, std::string> data = {
      {"train", ""},
      {"valid", ""},
      {"test", ""},
      {"source_lang", ""},
      {"target_lang", ""},
      {"synthetic_pairs", "40"},
      {"synthetic_eval_pairs", "6"},
      {"synthetic_vocab", "12"},
      {"synthetic_split_fraction", "0.25"}};
  absl::StatusOr<RunResult> r = Run(Translation(reder, evaluate, data));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(
      data::SplitLines(Read(RunDir() / "translations" / "test.tgt")).size(),
      6u);
  EXPECT_EQ(
      data::SplitLines(Read(RunDir() / "translations" / "test.src")).size(),
      6u);
  std::map<std::string, std::string> bad = data;
  bad["synthetic_min_len"] = "20";
  ExpectError(Translation(reder, evaluate, bad), "min_len 20");
  bad = data;
  bad["task"] = "\"lm\"";
  ExpectError(Translation(reder, evaluate, bad),
              "synthetic_pairs makes a translation corpus");
  bad = data;
  bad["synthetic_pairs"] = "0";
  ExpectError(Translation(reder, evaluate, bad), "[data] train is required");
}

// An epoch's data position counts batches of the checkpoint's size: a
// translation run resumed with another global batch (ranks x batch_size)
// would land elsewhere in the epoch, so it is refused with the batch_size
// that fits; with that one it resumes.
TEST_F(TaskRunsTest, AnEpochRunResumesOnlyAtItsGlobalBatch) {
  ASSERT_TRUE(Run(Translation(kTransformer)).ok());
  RunOptions resume;
  resume.resume = RunDir();
  resume.progress_bar = false;
  resume.plugin_dirs = {LLMSYS_BUILTIN_PLUGIN_DIR};
  resume.sets = {"train.steps=10", "train.batch_size=4"};
  absl::StatusOr<RunResult> r = RunExperiment(resume);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find(
                "the checkpoint's data position counts batches of 8 examples, "
                "and this run's batch is 4 (1 rank(s) x batch_size 4); resume "
                "with ranks x batch_size = 8, e.g. --set train.batch_size=8"),
            std::string::npos)
      << r.status();
  resume.sets = {"train.steps=10"};
  r = RunExperiment(resume);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->steps, 10);
}

TEST_F(TaskRunsTest, TranslationDataErrorsNameTheFileAndLine) {
  Write(dir_ / "bad.xx", "a1\na2\na3\n");
  Write(dir_ / "bad.yy", "b1\nb2\n");
  const std::string bad = "\"" + (dir_ / "bad").string() + "\"";
  ExpectError(Translation(kTransformer, "", {{"train", bad}}), "has 3 lines");
  ExpectError(Translation(kTransformer, "", {{"train", bad}}), "bad.yy");
  ExpectError(Translation(kTransformer, "",
                          {{"train", "\"" + (dir_ / "nope").string() + "\""}}),
              "nope.xx nor");
  ExpectError(Translation(kTransformer, "", {{"target_lang", ""}}),
              "needs [data] target_lang");
  // The first line's source "aK aK" has 5 characters.
  ExpectError(Translation(kTransformer, "",
                          {{"max_source_len", "4"}, {"too_long", "\"error\""}}),
              "train.xx:1: 5 tokens, more than [data] max_source_len = 4");
  ExpectError(Translation(kTransformer,
                          "[[evaluate]]\nuse = \"bleu\"\nsplit = \"test\"\n",
                          {{"test", ""}}),
              "split = \"test\" needs [data] test");
  ExpectError(Translation(kTransformer, "[[evaluate]]\nuse = \"perplexity\"\n"),
              "scores its translations with text evaluators");
  ExpectError(Translation(kTransformer,
                          "[[evaluate]]\nuse = \"bleu\"\nprompt_tokens = 3\n"),
              "'prompt_tokens' does not apply to translation");
  // Skipped and truncated pairs are counted, not fatal.
  EXPECT_TRUE(
      Run(Translation(kTransformer, "",
                      {{"max_source_len", "9"}, {"too_long", "\"skip\""}}))
          .ok());
  EXPECT_TRUE(
      Run(Translation(kTransformer, "", {{"max_target_len", "4"}})).ok());
}

TEST_F(TaskRunsTest, AnMlmRunReportsMaskedAccuracy) {
  std::string text;
  for (int i = 0; i < 300; ++i)
    text += "line " + std::to_string(i % 9) + " of the corpus\n";
  Write(dir_ / "lines.txt", text);
  const std::string toml =
      "[experiment]\nname = \"tiny\"\noutput = \"" + (dir_ / "runs").string() +
      "\"\n[data]\ntask = \"mlm\"\ntrain = \"" + (dir_ / "lines.txt").string() +
      "\"\n[model]\nuse = \"bert\"\nn_layer = 1\nn_head = 2\nn_embd = 16\n"
      "[optimizer]\nuse = \"adamw\"\n[train]\nsteps = 6\nbatch_size = 8\n"
      "block_size = 48\neval_every = 3\n";
  absl::StatusOr<RunResult> r = Run(toml);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(std::isfinite(r->val_loss));
  const std::string metrics = Read(RunDir() / "metrics.jsonl");
  EXPECT_NE(metrics.find("\"val_accuracy\""), std::string::npos);
  EXPECT_EQ(Read(RunDir() / "samples.txt"), "");
  // The model's vocabulary holds [MASK] after the tokenizer's ids.
  const json tokenizer = json::parse(Read(RunDir() / "tokenizer.json"));
  EXPECT_NE(Read(RunDir() / "config.toml")
                .find("vocab_size = " +
                      std::to_string(tokenizer["vocab_size"].get<int>() + 1)),
            std::string::npos);
  GenerateOptions g;
  g.run_dir = RunDir();
  g.plugin_dirs = {LLMSYS_BUILTIN_PLUGIN_DIR};
  EXPECT_FALSE(Generate(g).ok());
  ExpectError(toml + "[[evaluate]]\nuse = \"accuracy\"\n",
              "an mlm task reports");
}

}  // namespace
}  // namespace llmsys::train
