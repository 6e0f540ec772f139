// tests/plugins/evaluators/text/rouge_test.cc — ROUGE against Google's
// rouge-score 0.1.2: the generated cases of tests/data/eval/rouge_cases.jsonl
// (tools/make_rouge_cases.py), the hand-made ROUGE cases of
// tests/data/eval/dev_cases.json, the tokenizer, type validation, the
// corpus accumulator and concurrent use.
#include "plugins/evaluators/text/rouge.h"

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace llmsys::text {
namespace {

using nlohmann::json;

std::string DataPath(const std::string& name) {
  return std::string(LLMSYS_EVAL_DATA_DIR) + "/" + name;
}

// |got - want| <= 1e-12 + 1e-9 |want|: the values are ratios of small
// integers, so anything beyond rounding is a real difference.
::testing::AssertionResult Near(double got, double want) {
  if (std::abs(got - want) <= 1e-12 + 1e-9 * std::abs(want)) {
    return ::testing::AssertionSuccess();
  }
  return ::testing::AssertionFailure()
         << "got " << got << ", rouge-score gives " << want << " (difference "
         << got - want << ")";
}

void ExpectScore(const RougeScore& got, const json& want,
                 const std::string& where) {
  // want: [precision, recall, fmeasure]
  EXPECT_TRUE(Near(got.precision, want.at(0).get<double>()))
      << where << " precision";
  EXPECT_TRUE(Near(got.recall, want.at(1).get<double>())) << where << " recall";
  EXPECT_TRUE(Near(got.fmeasure, want.at(2).get<double>()))
      << where << " fmeasure";
}

std::vector<json> ReadJsonLines(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    ADD_FAILURE() << "cannot open " << path
                  << "; run tools/make_rouge_cases.py to write it";
    return {};
  }
  std::vector<json> lines;
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty()) lines.push_back(json::parse(line));
  }
  return lines;
}

RougeOptions OptionsOf(const json& c) {
  RougeOptions options;
  options.rouge_types = c.at("rouge_types").get<std::vector<std::string>>();
  options.use_stemmer = c.at("use_stemmer").get<bool>();
  return options;
}

// Scores one generated case with `scorer` and compares every value.
void CheckCase(const RougeScorer& scorer, const json& c) {
  const std::string id = c.at("id").get<std::string>();
  const auto targets = c.at("targets").get<std::vector<std::string>>();
  const auto prediction = c.at("prediction").get<std::string>();
  std::map<std::string, RougeScore> got;
  if (c.at("api") == "score_multi") {
    got = scorer.ScoreMulti(
        std::vector<std::string_view>(targets.begin(), targets.end()),
        prediction);
  } else {
    ASSERT_EQ(targets.size(), 1u) << id;
    got = scorer.Score(targets[0], prediction);
  }
  const json& expected = c.at("expected");
  ASSERT_EQ(got.size(), expected.size()) << id;
  for (const auto& [type, want] : expected.items()) {
    ASSERT_TRUE(got.count(type)) << id << ": no " << type;
    ExpectScore(got.at(type), want, id + " " + type);
  }
}

TEST(Rouge, MatchesRougeScoreOnGeneratedCases) {
  const std::vector<json> cases = ReadJsonLines(DataPath("rouge_cases.jsonl"));
  ASSERT_GT(cases.size(), 300u);
  // A fresh scorer per case, then one scorer per configuration shared by
  // all its cases in reverse order: the word cache must not change a value.
  for (const json& c : cases) CheckCase(RougeScorer(OptionsOf(c)), c);
  std::map<std::string, RougeScorer> shared;
  for (auto it = cases.rbegin(); it != cases.rend(); ++it) {
    const std::string key =
        it->at("rouge_types").dump() + it->at("use_stemmer").dump();
    auto found = shared.find(key);
    if (found == shared.end()) {
      found = shared.emplace(key, RougeScorer(OptionsOf(*it))).first;
    }
    CheckCase(found->second, *it);
  }
}

TEST(Rouge, MatchesDevCases) {
  std::ifstream in(DataPath("dev_cases.json"));
  ASSERT_TRUE(in) << "cannot open " << DataPath("dev_cases.json");
  const json dev = json::parse(in);
  int n = 0;
  for (const json& c : dev.at("cases")) {
    if (c.at("metric") != "rouge") continue;
    ++n;
    const std::string id = c.at("id").get<std::string>();
    const json& opt = c.at("options");
    ASSERT_FALSE(opt.at("split_summaries").get<bool>()) << id;
    RougeScorer scorer({opt.at("rouge_types").get<std::vector<std::string>>(),
                        opt.at("use_stemmer").get<bool>()});
    const auto target = c.at("references").at(0).at(0).get<std::string>();
    const auto prediction = c.at("hypotheses").at(0).get<std::string>();
    const auto got = scorer.Score(target, prediction);
    for (const auto& [type, want] : c.at("expected").items()) {
      ASSERT_TRUE(got.count(type)) << id << ": no " << type;
      ExpectScore(got.at(type),
                  json::array({want.at("precision"), want.at("recall"),
                               want.at("fmeasure")}),
                  id + " " + type);
    }
    const bool stem = opt.at("use_stemmer").get<bool>();
    EXPECT_EQ(RougeTokenize(target, stem),
              c.at("debug").at("target_tokens").get<std::vector<std::string>>())
        << id;
    EXPECT_EQ(
        RougeTokenize(prediction, stem),
        c.at("debug").at("prediction_tokens").get<std::vector<std::string>>())
        << id;
  }
  EXPECT_GE(n, 3);
}

TEST(Rouge, ReadmeExample) {
  // rouge-score's README example.
  RougeScorer scorer({.rouge_types = {"rouge1", "rougeL"}});
  const auto s = scorer.Score("The quick brown fox jumps over the lazy dog",
                              "The quick brown dog jumps on the log.");
  EXPECT_EQ(s.at("rouge1").precision, 0.75);  // 6 of 8 prediction tokens
  EXPECT_EQ(s.at("rouge1").recall, 6.0 / 9.0);
  EXPECT_EQ(s.at("rouge1").fmeasure,
            2 * 0.75 * (6.0 / 9.0) / (0.75 + 6.0 / 9.0));
  EXPECT_EQ(s.at("rougeL").precision, 5.0 / 8.0);
  EXPECT_EQ(s.at("rougeL").recall, 5.0 / 9.0);
}

TEST(RougeTokenize, LowersSplitsAndStems) {
  using V = std::vector<std::string>;
  EXPECT_EQ(RougeTokenize("The Runners were RUNNING; 3.14", false),
            (V{"the", "runners", "were", "running", "3", "14"}));
  EXPECT_EQ(RougeTokenize("The Runners were RUNNING; 3.14", true),
            (V{"the", "runner", "were", "run", "3", "14"}));
  // Only tokens longer than 3 characters are stemmed: "dies" is, "ies" not.
  EXPECT_EQ(RougeTokenize("dies ies", true), (V{"die", "ies"}));
  EXPECT_EQ(RougeTokenize("", true), V{});
  EXPECT_EQ(RougeTokenize(" \n\t!?", false), V{});
}

TEST(RougeTokenize, NonAsciiAsPythonLower) {
  using V = std::vector<std::string>;
  // U+212A KELVIN SIGN lowers to "k", inside a token.
  EXPECT_EQ(RougeTokenize("\xe2\x84\xaa"
                          "elvin x\xe2\x84\xaay",
                          false),
            (V{"kelvin", "xky"}));
  // U+0130 lowers to "i" + U+0307: an "i" that ends its token.
  EXPECT_EQ(RougeTokenize("\xc4\xb0stanbul a\xc4\xb0\xc4\xb0", false),
            (V{"i", "stanbul", "ai", "i"}));
  // Every other non-ASCII character separates, e.g. e-acute, fullwidth 1.
  EXPECT_EQ(RougeTokenize("caf\xc3\xa9s \xef\xbc\x91x", false),
            (V{"caf", "s", "x"}));
}

TEST(RougeScorer, RejectsBadTypes) {
  for (const std::string bad :
       {"rouge0", "rouge01", "rougeX", "ROUGE1", "rougel", "rouge", "rouge-1",
        "rougeLsum ", ""}) {
    try {
      RougeScorer scorer({.rouge_types = {"rouge1", bad}});
      ADD_FAILURE() << "accepted '" << bad << "'";
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find("'" + bad + "'"), std::string::npos)
          << e.what();
    }
  }
  EXPECT_THROW(RougeScorer({.rouge_types = {}}), std::invalid_argument);
  EXPECT_THROW(RougeScorer({.rouge_types = {"rougeL", "rougeL"}}),
               std::invalid_argument);
  EXPECT_NO_THROW(RougeScorer({.rouge_types = {"rouge10", "rougeLsum"}}));
}

TEST(RougeScorer, ScoreMultiNeedsATarget) {
  RougeScorer scorer({});
  EXPECT_THROW(scorer.ScoreMulti({}, "a b"), std::invalid_argument);
}

TEST(RougeScorer, ScoreMultiPicksBestTargetPerType) {
  RougeScorer scorer({.rouge_types = {"rouge1", "rouge2"}});
  // Target 0 has all unigrams in the wrong order; target 1 shares a bigram.
  const auto best = scorer.ScoreMulti({"c b a", "a b x y"}, "a b c");
  EXPECT_EQ(best.at("rouge1").fmeasure, 1.0);
  EXPECT_EQ(best.at("rouge2").precision, 0.5);  // "a b" of "a b", "b c"
}

TEST(Rouge, CorpusMeansSkipsAndSignature) {
  RougeOptions options{.rouge_types = {"rouge1", "rougeLsum"},
                       .use_stemmer = true};
  RougeScorer scorer(options);
  Rouge corpus(options);
  corpus.Add("the cats ran", {"a cat runs", std::nullopt});
  corpus.Add("nothing to compare", {std::nullopt, std::nullopt});
  corpus.Add("nothing at all", {});
  corpus.Add("one two\nthree", {"three\none two", "one"});
  corpus.Add("x", {""});  // an empty reference is present: all zeros
  EXPECT_EQ(corpus.num_segments(), 5u);
  EXPECT_EQ(corpus.num_scored(), 3u);
  EXPECT_EQ(corpus.num_skipped(), 2u);

  const auto s1 = scorer.Score("a cat runs", "the cats ran");
  const auto s2 =
      scorer.ScoreMulti({"three\none two", "one"}, "one two\nthree");
  const auto s3 = scorer.Score("", "x");
  const auto means = corpus.Scores();
  ASSERT_EQ(means.size(), 2u);
  for (const std::string type : {"rouge1", "rougeLsum"}) {
    EXPECT_TRUE(Near(means.at(type).precision,
                     (s1.at(type).precision + s2.at(type).precision +
                      s3.at(type).precision) /
                         3))
        << type;
    EXPECT_TRUE(Near(
        means.at(type).recall,
        (s1.at(type).recall + s2.at(type).recall + s3.at(type).recall) / 3))
        << type;
    EXPECT_TRUE(Near(
        means.at(type).fmeasure,
        (s1.at(type).fmeasure + s2.at(type).fmeasure + s3.at(type).fmeasure) /
            3))
        << type;
  }
  // Hand-checked: "the cat ran" vs "a cat run" shares one unigram of 3.
  EXPECT_DOUBLE_EQ(s1.at("rouge1").precision, 1.0 / 3.0);
  EXPECT_EQ(s2.at("rougeLsum").fmeasure, 1.0);

  EXPECT_EQ(corpus.Signature(),
            "rouge|types:rouge1,rougeLsum|stem:porter-nltk"
            "|tok:rouge-score-default|lsum:newline|multiref:max-f|agg:mean"
            "|version:rouge-score-0.1.2");
}

TEST(Rouge, ScoresNeedsAScoredSegment) {
  Rouge corpus;
  corpus.Add("a", {std::nullopt});
  try {
    corpus.Scores();
    FAIL() << "expected std::invalid_argument";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("1 skipped"), std::string::npos)
        << e.what();
  }
}

TEST(RougeScorer, ConcurrentCallsAgreeWithSerialOnes) {
  const std::vector<json> cases = ReadJsonLines(DataPath("rouge_cases.jsonl"));
  ASSERT_FALSE(cases.empty());
  const RougeScorer scorer(
      {.rouge_types = {"rouge1", "rouge2", "rougeL", "rougeLsum"},
       .use_stemmer = true});
  std::vector<std::map<std::string, RougeScore>> serial;
  for (const json& c : cases) {
    serial.push_back(scorer.Score(c.at("targets").at(0).get<std::string>(),
                                  c.at("prediction").get<std::string>()));
  }
  constexpr int kThreads = 4;
  std::vector<int> mismatches(kThreads, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (std::size_t k = 0; k < cases.size(); ++k) {
        const std::size_t i =
            (k * 7 + static_cast<std::size_t>(t) * 31) % cases.size();
        const auto s =
            scorer.Score(cases[i].at("targets").at(0).get<std::string>(),
                         cases[i].at("prediction").get<std::string>());
        for (const auto& [type, score] : s) {
          const RougeScore& want = serial[i].at(type);
          if (score.precision != want.precision ||
              score.recall != want.recall || score.fmeasure != want.fmeasure) {
            ++mismatches[t];
          }
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(mismatches[t], 0) << t;
}

}  // namespace
}  // namespace llmsys::text
