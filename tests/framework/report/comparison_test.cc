// Comparing run directories: what is read from them, the values and their
// differences to the baseline, the warnings (what differs besides what was
// varied), the text table, compare.csv and report.html.
#include "framework/report/comparison.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include "framework/report/html.h"
#include "tests/framework/train/test_files.h"

namespace llmsys::report {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using train::FreshTestDir;
using train::Write;

json Summary(double train_loss, double val_loss, double tps, double memory) {
  return {{"train_loss", train_loss},
          {"val_loss", val_loss},
          {"val_perplexity", std::exp(val_loss)},
          {"tokens_per_second", tps},
          {"peak_memory_bytes", memory},
          {"wall_seconds", 2.5},
          {"parameters", 1000},
          {"evaluations",
           {{{"step", 10},
             {"evaluator", "bleu"},
             {"metrics",
              {{"score", 20.0}, {"precisions", {50.0, 25.0}}, {"bp", 1.0}}}},
            {{"step", 10},
             {"evaluator", "bleu"},
             {"metrics", {{"score", 10.0}}}}}}};
}

json Provenance() {
  return {{"llmsys_version", "0.1.0"},
          {"git_commit", "abc"},
          {"git_dirty", false},
          {"seed", 1},
          {"threads", 2},
          {"device", "cpu"},
          {"machine", {{"hostname", "h"}, {"cpu", "X"}, {"cores", 2}}},
          {"plugins",
           {{{"file", "/p/optimizers.so"},
             {"sha256", "aaaa"},
             {"plugin_id", "llmsys.optimizers"},
             {"plugin_version", "1.0"},
             {"components", {"optimizer adamw"}}},
            {{"file", "/p/gpt.so"},
             {"sha256", "bbbb"},
             {"plugin_id", "llmsys.gpt"},
             {"plugin_version", "1.0"},
             {"components", {"model gpt"}}}}}};
}

ComparedRun MakeRun(const std::string& name, std::string optimizer) {
  ComparedRun r;
  r.name = name;
  r.overrides = {{"optimizer.use", "\"" + optimizer + "\""}};
  r.data.dir = "/runs/" + name;
  r.data.config = {{"experiment.name", "\"" + name + "\""},
                   {"optimizer.use", "\"" + optimizer + "\""},
                   {"optimizer.beta2", "0.99"},
                   {"train.steps", "10"}};
  r.data.summary = Summary(2.0, 2.5, 1000, 100 * 1024 * 1024);
  r.data.provenance = Provenance();
  return r;
}

bool HasWarning(const std::vector<std::string>& w, const std::string& text) {
  for (const std::string& s : w)
    if (s.find(text) != std::string::npos) return true;
  return false;
}

TEST(ComparisonTest, OnlyWhatWasNotVariedIsWarnedAbout) {
  ComparedRun a = MakeRun("adamw", "adamw"), b = MakeRun("lion", "lion");
  b.data.config["optimizer.beta2"] = "0.95";  // lion's own default
  b.data.provenance["plugins"][0]["components"] = {"optimizer lion"};
  b.data.provenance["plugins"][0]["sha256"] = "cccc";  // serves lion
  Varied varied = VariedOf({a, b});
  EXPECT_TRUE(varied.Covers("optimizer.use"));
  EXPECT_TRUE(varied.Covers("optimizer.beta2"));  // the swapped component's
  EXPECT_FALSE(varied.Covers("train.steps"));
  EXPECT_TRUE(varied.component_ids.contains("lion"));
  EXPECT_EQ(DiffRuns(a, b, varied), std::vector<std::string>{});

  // A key that was not varied, another build of a plugin both used, another
  // machine, thread count and commit.
  b.data.config["train.steps"] = "20";
  b.data.provenance["plugins"][1]["sha256"] = "dddd";
  b.data.provenance["machine"]["cpu"] = "Y";
  b.data.provenance["threads"] = 4;
  b.data.provenance["git_commit"] = "def";
  b.data.provenance["llmsys_version"] = "0.2.0";
  const std::vector<std::string> w = DiffRuns(a, b, varied);
  ASSERT_EQ(w.size(), 6u) << ::testing::PrintToString(w);
  EXPECT_EQ(w[0],
            "'lion' differs from 'adamw' in train.steps = 20 ('adamw': 10), "
            "not varied");
  EXPECT_TRUE(HasWarning(w,
                         "'lion' was made by llmsys 0.2.0, 'adamw' by "
                         "0.1.0"));
  EXPECT_TRUE(HasWarning(w, "built from commit def, 'adamw' from abc"));
  EXPECT_TRUE(HasWarning(w, "'lion' ran with threads 4, 'adamw' with 2"));
  EXPECT_TRUE(HasWarning(w,
                         "ran on another machine than 'adamw': cpu Y "
                         "('adamw': X)"));
  EXPECT_TRUE(HasWarning(w,
                         "'lion' used plugin llmsys.gpt 1.0 (/p/gpt.so, "
                         "sha256 dddd...), 'adamw' another build of it"));
  // Varied threads are no warning.
  b.overrides.push_back({"train.threads", "4"});
  EXPECT_FALSE(HasWarning(DiffRuns(a, b, VariedOf({a, b})), "threads"));
}

TEST(ComparisonTest, RunsWithoutProvenanceOrSummaryAreWarnedAbout) {
  ComparedRun a = MakeRun("a", "adamw"), b = MakeRun("b", "adamw");
  b.data.provenance = json();
  b.data.summary = json();
  Comparison c = Compare("t", "", {a, b});
  EXPECT_TRUE(HasWarning(c.warnings, "'b' has no provenance.json"));
  EXPECT_TRUE(HasWarning(c.warnings, "'b' has no summary.json"));
  EXPECT_TRUE(std::isnan(c.values[1][0]));
  // A failed variant without a directory: no data, no such warnings.
  ComparedRun failed = MakeRun("f", "adamw");
  failed.data = {};
  failed.error = "boom";
  c = Compare("t", "", {a, failed});
  EXPECT_TRUE(c.warnings.empty()) << ::testing::PrintToString(c.warnings);
}

TEST(ComparisonTest, ValuesAndDifferencesToTheBaseline) {
  ComparedRun a = MakeRun("a", "adamw"), b = MakeRun("b", "lion");
  b.data.summary = Summary(1.5, 3.0, 1500, 50 * 1024 * 1024);
  b.data.summary["evaluations"][0]["metrics"]["score"] = 30.0;
  Comparison c = Compare("t", "x.toml", {a, b});
  std::vector<std::string> keys;
  for (const Quantity& q : c.quantities) keys.push_back(q.key);
  EXPECT_EQ(keys, (std::vector<std::string>{
                      "train_loss", "val_loss", "val_perplexity", "bleu.bp",
                      "bleu.score", "bleu#2.score", "tokens_per_second",
                      "peak_memory_mib", "wall_seconds", "parameters"}));
  EXPECT_EQ(c.varied_keys, std::vector<std::string>{"optimizer.use"});
  EXPECT_DOUBLE_EQ(c.values[0][0], 2.0);
  EXPECT_DOUBLE_EQ(c.Delta(1, 0), -0.5);
  EXPECT_DOUBLE_EQ(c.DeltaPercent(1, 0), -25.0);
  EXPECT_DOUBLE_EQ(c.values[1][4], 30.0);  // bleu.score
  EXPECT_DOUBLE_EQ(c.DeltaPercent(1, 4), 50.0);
  EXPECT_DOUBLE_EQ(c.values[1][7], 50.0);  // MiB
  EXPECT_EQ(c.quantities[4].better, Better::kHigher);
  EXPECT_EQ(c.quantities[3].better, Better::kNeither);  // bp
  EXPECT_FALSE(c.quantities[3].chart);

  const std::string table = FormatTable(c);
  EXPECT_NE(table.find("t: 2 runs, baseline 'a'"), std::string::npos);
  EXPECT_NE(table.find("optimizer.use      adamw"), std::string::npos) << table;
  EXPECT_NE(table.find("1.5 (-0.5, -25.0%)"), std::string::npos) << table;
  EXPECT_NE(table.find("1500 (+500, +50.0%)"), std::string::npos) << table;
  EXPECT_NE(table.find("50.0 (-50.0, -50.0%)"), std::string::npos) << table;

  const json j = ToJson(c);
  EXPECT_EQ(j["baseline"], "a");
  EXPECT_EQ(j["variants"][1]["overrides"]["optimizer.use"], "lion");
  EXPECT_DOUBLE_EQ(j["variants"][1]["delta"]["train_loss"]["abs"].get<double>(),
                   -0.5);
  EXPECT_DOUBLE_EQ(j["variants"][1]["delta"]["train_loss"]["pct"].get<double>(),
                   -25.0);
  EXPECT_FALSE(j["variants"][0].contains("delta"));

  // A failed run: its values are n/a, its status and message everywhere.
  b.error = "step 3: the loss is nan";
  c = Compare("t", "x.toml", {a, b});
  EXPECT_TRUE(std::isnan(c.values[1][0]));
  EXPECT_TRUE(std::isnan(c.Delta(1, 0)));
  EXPECT_NE(FormatTable(c).find("'b' failed: step 3: the loss is nan"),
            std::string::npos);
  EXPECT_EQ(ToJson(c)["variants"][1]["status"], "failed");
  EXPECT_TRUE(ToJson(c)["variants"][1]["values"]["train_loss"].is_null());
}

TEST(ComparisonTest, CsvIsOneQuotedRowPerRun) {
  ComparedRun a = MakeRun("a", "adamw"), b = MakeRun("b,\"x\"", "lion");
  b.error = "line one\nline two";
  const std::string csv = ToCsv(Compare("t", "", {a, b}));
  const std::string header =
      "variant,status,error,run_dir,optimizer.use,train_loss,train_loss_delta,"
      "train_loss_delta_pct,";
  EXPECT_EQ(csv.substr(0, header.size()), header);
  EXPECT_NE(csv.find("\r\na,ok,,/runs/a,adamw,2,,,2.5,,,"), std::string::npos)
      << csv;
  EXPECT_NE(csv.find("\r\n\"b,\"\"x\"\"\",failed,\"line one\nline two\","),
            std::string::npos)
      << csv;
  size_t rows = 0;
  for (size_t p = csv.find("\r\n"); p != std::string::npos;
       p = csv.find("\r\n", p + 1))
    ++rows;
  EXPECT_EQ(rows, 3u);
}

TEST(ComparisonTest, DistinguishingKeysOfExistingRuns) {
  ComparedRun a = MakeRun("a", "adamw"), b = MakeRun("b", "lion"),
              c = MakeRun("c", "adamw");
  b.data.config["optimizer.beta2"] = "0.95";
  c.data.config["train.steps"] = "20";
  c.data.config["experiment.output"] = "\"elsewhere\"";
  std::vector<ComparedRun> runs = {a, b, c};
  EXPECT_EQ(DistinguishingKeys(&runs),
            (std::vector<std::string>{"optimizer.use", "train.steps"}));
  using Overrides = std::vector<std::pair<std::string, std::string>>;
  EXPECT_EQ(runs[1].overrides,
            (Overrides{{"optimizer.use", "\"lion\""}, {"train.steps", "10"}}));
}

TEST(ComparisonTest, LoadRunReadsWhatTheRunDirectoryHolds) {
  const fs::path dir = FreshTestDir("llmsys_report");
  absl::StatusOr<RunData> missing = LoadRun(dir);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("not a run directory"),
            std::string::npos);
  Write(dir / "config.toml",
        "[optimizer]\nuse = \"adamw\"\n[schedule]\nlr = 0.001\n"
        "[[evaluate]]\nuse = \"bleu\"\n[[evaluate]]\nuse = \"chrf\"\n");
  // Step 4 again after a resume (the later record counts); a cut last line.
  Write(dir / "metrics.jsonl",
        "{\"step\":2,\"loss\":3.0}\n{\"step\":4,\"loss\":2.9}\n"
        "{\"step\":4,\"val_loss\":3.1}\n{\"step\":4,\"loss\":2.5}\n"
        "{\"step\":4,\"evaluator\":\"bleu\",\"metrics\":{}}\n"
        "{\"step\":6,\"loss\":null}\n{\"step\":8,\"lo");
  absl::StatusOr<RunData> r = LoadRun(dir);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->config.at("optimizer.use"), "\"adamw\"");
  EXPECT_EQ(r->config.at("schedule.lr"), "0.001");
  EXPECT_EQ(r->config.at("evaluate#2.use"), "\"chrf\"");
  ASSERT_EQ(r->train_loss.size(), 3u);
  EXPECT_EQ(r->train_loss[1].step, 4);
  EXPECT_DOUBLE_EQ(r->train_loss[1].value, 2.5);
  EXPECT_TRUE(std::isnan(r->train_loss[2].value));
  ASSERT_EQ(r->val_loss.size(), 1u);
  EXPECT_TRUE(r->summary.is_null());
  EXPECT_TRUE(r->provenance.is_null());
  Write(dir / "summary.json", "{not json");
  r = LoadRun(dir);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("summary.json: not a JSON object"),
            std::string::npos);
  fs::remove_all(dir);
}

TEST(ReportHtmlTest, EscapingAndTicks) {
  EXPECT_EQ(EscapeHtml("<a href=\"x\">'&'</a>\x01"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
  EXPECT_EQ(NiceTicks(0.13, 0.92),
            (std::vector<double>{0, 0.2, 0.4, 0.6, 0.8, 1.0}));
  EXPECT_EQ(NiceTicks(2, 10), (std::vector<double>{2, 4, 6, 8, 10}));
  EXPECT_EQ(NiceTicks(3.8, 4.3).front(), 3.8);
  EXPECT_EQ(NiceTicks(5, 5), std::vector<double>{5});
  // Ranges a double cannot step across come back as their ends.
  EXPECT_EQ(NiceTicks(1.0, std::nextafter(1.0, 2.0)).size(), 2u);
  EXPECT_EQ(NiceTicks(-1e308, 1e308).size(), 2u);
}

// Counts `needle` in `haystack`.
size_t Count(const std::string& haystack, const std::string& needle) {
  size_t n = 0;
  for (size_t p = haystack.find(needle); p != std::string::npos;
       p = haystack.find(needle, p + 1))
    ++n;
  return n;
}

TEST(ReportHtmlTest, ThePageHasTheTableAndAChartPerQuantity) {
  std::vector<ComparedRun> runs;
  for (int i = 0; i < 12; ++i) {
    ComparedRun r =
        MakeRun(i == 3 ? "<b>&" : "run" + std::to_string(i), "adamw");
    r.overrides = {{"train.steps", std::to_string(10 + i)}};
    for (int s = 1; s <= 5; ++s)
      r.data.train_loss.push_back(
          {s * 10, s == 3 && i == 1 ? NAN : 4.0 - 0.1 * s - 0.01 * i});
    r.data.val_loss = {{50, 3.6}};
    runs.push_back(r);
  }
  runs[2].data.train_loss = {{10, 3.9}};  // a single logged step
  runs[4].data.train_loss = {{10, 1.0}, {20, std::nextafter(1.0, 2.0)}};
  runs[5].error = "failed <here>";
  const Comparison c = Compare("a & b", "x.toml", runs);
  const std::string page = RenderHtml(c);
  EXPECT_EQ(page.find("<b>&"), std::string::npos);  // escaped
  EXPECT_NE(page.find("&lt;b&gt;&amp;"), std::string::npos);
  EXPECT_NE(page.find("failed: failed &lt;here&gt;"), std::string::npos);
  EXPECT_EQ(page.find("<script"), std::string::npos);
  EXPECT_NE(page.find("<table class=\"comparison\""), std::string::npos);
  size_t charted = 0;
  for (const Quantity& q : c.quantities) charted += q.chart ? 1 : 0;
  EXPECT_EQ(Count(page, "<svg"), 1 + charted);  // the losses, one per quantity
  EXPECT_EQ(Count(page, "<path class=\"train-loss\""), 12u);
  EXPECT_EQ(Count(page, "<circle class=\"train-point\""), 1u);  // run2's
  EXPECT_EQ(Count(page, "<path class=\"val-loss\""), 12u);
  // run1's NaN at step 30 lifts the pen: its path has two pieces.
  const size_t run1 = page.find("class=\"train-loss\" data-variant=\"run1\"");
  ASSERT_NE(run1, std::string::npos);
  const std::string d =
      page.substr(run1, page.find("\"", page.find("d=\"", run1) + 3) - run1);
  EXPECT_EQ(Count(d, "M"), 2u) << d;
  EXPECT_EQ(Count(page, "class=\"delta better\""), 0u);  // equal values
  EXPECT_GE(Count(page, "class=\"delta same\""), 1u);
  EXPECT_NE(page.find(">failed</text>"), std::string::npos);  // run5's bars
}

}  // namespace
}  // namespace llmsys::report
