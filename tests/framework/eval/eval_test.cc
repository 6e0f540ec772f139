// Tests of framework/eval: the host side of evaluators (checked parameters,
// the three input forms, metrics as nested JSON), reading segment files
// (UTF-8, line counts, JSON Lines errors), and the counting evaluators of
// the built-in plugin (perplexity, pass_at_k) through it.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "framework/eval/evaluator.h"
#include "framework/eval/segments.h"
#include "framework/runtime/registry.h"
#include "llmsys/evaluator.h"
#include "nlohmann/json.hpp"

namespace llmsys::eval {
namespace {

namespace fs = std::filesystem;
using Params = std::vector<std::pair<std::string, runtime::ParamValue>>;

class EvalTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(
        registry_.AddSearchDir(LLMSYS_BUILTIN_PLUGIN_DIR, "built-in").ok());
    registry_.LoadAll();
    dir_ = fs::path(::testing::TempDir()) /
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }

  const runtime::Component& Find(const std::string& id) {
    absl::StatusOr<const runtime::Component*> c =
        registry_.Find(LLMSYS_KIND_EVALUATOR, id);
    EXPECT_TRUE(c.ok()) << c.status();
    return **c;
  }

  std::unique_ptr<Evaluator> Make(const std::string& id,
                                  const Params& params = {}) {
    absl::StatusOr<std::unique_ptr<Evaluator>> e =
        Evaluator::Create(Find(id), params);
    EXPECT_TRUE(e.ok()) << e.status();
    return e.ok() ? *std::move(e) : nullptr;
  }

  fs::path Write(const std::string& name, const std::string& text) {
    const fs::path p = dir_ / name;
    std::ofstream(p, std::ios::binary) << text;
    return p;
  }

  runtime::PluginRegistry registry_;
  fs::path dir_;
};

TEST_F(EvalTest, PerplexityIsExpOfTheMeanNllPerToken) {
  auto e =
      Make("perplexity", {{"window", int64_t{128}}, {"stride", int64_t{64}}});
  ASSERT_NE(e, nullptr);
  ASSERT_TRUE(e->AddLogProbs({-3.0, -1.0}, {2, 2}).ok());
  ASSERT_TRUE(e->AddLogProbs({-2.0}, {4}).ok());
  absl::StatusOr<EvalResult> r = e->Result();
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_DOUBLE_EQ(*r->Get("nll"), 6.0 / 8.0);
  EXPECT_DOUBLE_EQ(*r->Get("perplexity"), std::exp(0.75));
  EXPECT_DOUBLE_EQ(*r->Get("bits_per_token"), 0.75 / std::log(2.0));
  EXPECT_EQ(*r->Get("tokens"), 8);
  EXPECT_EQ(*r->Get("segments"), 3);
  EXPECT_EQ(r->signature,
            "tokens:8|window:128|stride:64|logbase:e|version:1.0.0");
}

TEST_F(EvalTest, PerplexityRejectsPositiveLogProbsAndNoTokens) {
  auto e = Make("perplexity");
  ASSERT_NE(e, nullptr);
  absl::Status s = e->AddLogProbs({-1.0, 0.5}, {1, 1});
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("segment 1"), std::string::npos) << s;
  EXPECT_EQ(e->Result().status().code(), absl::StatusCode::kInvalidArgument);
}

// pass@k against the closed form 1 - C(n-c, k) / C(n, k).
TEST_F(EvalTest, PassAtKIsTheUnbiasedEstimator) {
  auto e = Make("pass_at_k", {{"k", std::vector<int64_t>{1, 2, 10}}});
  ASSERT_NE(e, nullptr);
  // Problems: (n=10, c=3), (n=10, c=0), (n=12, c=10).
  ASSERT_TRUE(e->AddPredictions({3, 0, 10}, {10, 10, 12}).ok());
  absl::StatusOr<EvalResult> r = e->Result();
  ASSERT_TRUE(r.ok()) << r.status();
  auto binom = [](double n, double k) {
    return std::tgamma(n + 1) / (std::tgamma(k + 1) * std::tgamma(n - k + 1));
  };
  auto pass = [&](double n, double c, double k) {
    return n - c < k ? 1.0 : 1.0 - binom(n - c, k) / binom(n, k);
  };
  for (int k : {1, 2, 10}) {
    const double want = (pass(10, 3, k) + pass(10, 0, k) + pass(12, 10, k)) / 3;
    EXPECT_NEAR(*r->Get("pass@" + std::to_string(k)), want, 1e-12) << k;
  }
  EXPECT_DOUBLE_EQ(*r->Get("pass@1"), (0.3 + 0.0 + 10.0 / 12.0) / 3);
  EXPECT_EQ(*r->Get("problems"), 3);
  EXPECT_EQ(r->signature, "k:1,2,10|version:1.0.0");
}

TEST_F(EvalTest, PassAtKRejectsTooFewSamples) {
  auto e = Make("pass_at_k", {{"k", std::vector<int64_t>{5}}});
  ASSERT_NE(e, nullptr);
  absl::Status s = e->AddPredictions({1, 1}, {5, 4});
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("problem 1 has n = 4 samples"), std::string::npos)
      << s;
  s = e->AddPredictions({6}, {5});
  EXPECT_NE(s.message().find("expected 0 <= c <= n"), std::string::npos) << s;
}

TEST_F(EvalTest, WrongInputFormNamesWhatTheEvaluatorReads) {
  auto e = Make("accuracy");
  ASSERT_NE(e, nullptr);
  absl::Status s = e->AddText({"a"}, {{"a"}});
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("reads predictions and labels"), std::string::npos)
      << s;
}

TEST_F(EvalTest, BadParametersNameTheEvaluatorAndTheParameter) {
  absl::StatusOr<std::unique_ptr<Evaluator>> e =
      Evaluator::Create(Find("pass_at_k"), {{"k", std::vector<int64_t>{0}}});
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.status().message().find("evaluator pass_at_k"), std::string::npos)
      << e.status();
  EXPECT_NE(e.status().message().find(">= 1"), std::string::npos) << e.status();

  auto parsed = runtime::ParseParamAssignment(
      Find("perplexity").params, "windw=3", "evaluator perplexity");
  ASSERT_FALSE(parsed.ok());
  EXPECT_NE(parsed.status().message().find("did you mean 'window'"),
            std::string::npos)
      << parsed.status();
  parsed = runtime::ParseParamAssignment(Find("perplexity").params,
                                         "window=abc", "evaluator perplexity");
  ASSERT_FALSE(parsed.ok());
  EXPECT_NE(parsed.status().message().find("expects int, got 'abc'"),
            std::string::npos)
      << parsed.status();
  parsed = runtime::ParseParamAssignment(Find("pass_at_k").params, "k=1,5,10",
                                         "evaluator pass_at_k");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(std::get<std::vector<int64_t>>(parsed->second),
            (std::vector<int64_t>{1, 5, 10}));
}

TEST(MetricsJsonTest, CollidingOrSparseNamesStayFlat) {
  EvalResult r;
  r.metrics = {{"a", 1}, {"a.b", 2}, {"x.5", 3}, {"l.0", 4}, {"l.0", 5}};
  EXPECT_EQ(MetricsJson(r).dump(),
            R"({"a":1,"a.b":2,"l":[4],"l.0":5,"x":{"5":3}})");
}

TEST(MetricsJsonTest, DottedNamesNestAndIntegersStayIntegers) {
  EvalResult r;
  r.metrics = {{"score", 12.5},
               {"counts.0", 3},
               {"counts.1", 1},
               {"scores.rouge1.precision", 0.5},
               {"scores.rouge1.recall", 1},
               {"bad", std::nan("")}};
  const nlohmann::json j = MetricsJson(r);
  EXPECT_EQ(j.dump(), R"({"bad":null,"counts":[3,1],"score":12.5,)"
                      R"("scores":{"rouge1":{"precision":0.5,"recall":1}}})");
}

TEST_F(EvalTest, TextFilesKeepLinesVerbatimAndCheckCounts) {
  const fs::path hyp = Write("hyp.txt", "a b \r\n\nc");
  const fs::path ref = Write("ref.txt", "x\ny\nz\n");
  absl::StatusOr<Segments> s = ReadTextFiles(hyp, {ref, ref});
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->hyps, (std::vector<std::string>{"a b \r", "", "c"}));
  ASSERT_EQ(s->refs.size(), 3u);
  EXPECT_EQ(s->refs[2], (References{"z", "z"}));

  const fs::path short_ref = Write("short.txt", "x\ny\n");
  absl::Status bad = ReadTextFiles(hyp, {short_ref}).status();
  EXPECT_EQ(bad.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(bad.message().find("short.txt has 2 lines but"), std::string::npos)
      << bad;
  bad = ReadTextFiles(Write("empty.txt", ""), {ref}).status();
  EXPECT_NE(bad.message().find("empty.txt: the file is empty"),
            std::string::npos)
      << bad;
  bad = ReadTextFiles(dir_ / "missing.txt", {ref}).status();
  EXPECT_EQ(bad.code(), absl::StatusCode::kNotFound);
  bad = ReadTextFiles(Write("bad.txt",
                            "ok\nca\xff"
                            "fe\n"),
                      {ref})
            .status();
  EXPECT_NE(bad.message().find("bad.txt:2: invalid UTF-8 at byte 3"),
            std::string::npos)
      << bad;
}

TEST_F(EvalTest, JsonlSegmentsAndTheirErrors) {
  absl::StatusOr<Segments> s =
      ReadJsonl(Write("ok.jsonl",
                      "{\"hyp\": \"a\\nb\", \"refs\": [\"x\", null]}\n\n"
                      "{\"hyp\": \"\", \"ref\": \"y\"}\n"),
                LLMSYS_EVAL_TEXT, "bleu");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->hyps, (std::vector<std::string>{"a\nb", ""}));
  EXPECT_EQ(s->refs[0], (References{"x", std::nullopt}));
  EXPECT_EQ(s->refs[1], (References{"y"}));

  s = ReadJsonl(Write("pass.jsonl", "{\"n\": 5, \"c\": 2}\n"),
                LLMSYS_EVAL_PREDICTIONS, "pass_at_k");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->predictions, (std::vector<int64_t>{2}));
  EXPECT_EQ(s->labels, (std::vector<int64_t>{5}));
  // accuracy reads prediction/label, never n/c.
  absl::Status wrong = ReadJsonl(Write("acc.jsonl", "{\"n\": 5, \"c\": 2}\n"),
                                 LLMSYS_EVAL_PREDICTIONS, "accuracy")
                           .status();
  EXPECT_NE(wrong.message().find("missing key \"prediction\""),
            std::string::npos)
      << wrong;

  struct Case {
    std::string text, expected;
  };
  for (const Case& c : std::vector<Case>{
           {"{\"hyp\": \"a\", \"refs\": [1]}\n", "b.jsonl:1: \"refs\" items"},
           {"\n{\"hyp\": \"a\"\n", "b.jsonl:2: not valid JSON"},
           {"[1, 2]\n", "b.jsonl:1: expected one JSON object per line"},
           {"{\"refs\": []}\n", "b.jsonl:1: missing key \"hyp\""},
           {"\n\n", "b.jsonl: no segments"}}) {
    absl::Status bad =
        ReadJsonl(Write("b.jsonl", c.text), LLMSYS_EVAL_TEXT, "bleu").status();
    EXPECT_NE(bad.message().find(c.expected), std::string::npos)
        << c.text << " -> " << bad;
  }
}

}  // namespace
}  // namespace llmsys::eval
