// The text metrics against the real systems: every BLEU / chrF case of
// tests/data/eval/dev_cases.json (values from sacreBLEU 2.6.0, with token
// streams and per-segment statistics) and every tokenize / bleu / chrf /
// squad case of tests/data/eval/bleu_chrf_cases.jsonl (written by
// tools/make_eval_cases.py from sacreBLEU and the SQuAD v1.1 functions).
// Scores must agree to 1e-9 relative; statistics, names, signatures and
// text lines exactly.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "plugins/evaluators/text/bleu.h"
#include "plugins/evaluators/text/chrf.h"
#include "plugins/evaluators/text/squad.h"

namespace llmsys::text {
namespace {

using nlohmann::json;

constexpr double kRelTol = 1e-9;

::testing::AssertionResult Near(double got, double want) {
  if (got == want || std::abs(got - want) <= kRelTol * std::abs(want)) {
    return ::testing::AssertionSuccess();
  }
  std::ostringstream msg;
  msg.precision(17);
  msg << "got " << got << ", want " << want << " (relative error "
      << std::abs(got - want) / std::abs(want) << ")";
  return ::testing::AssertionFailure() << msg.str();
}

std::string DataPath(const char* name) {
  return std::string(LLMSYS_EVAL_DATA_DIR) + "/" + name;
}

// The generated cases; LLMSYS_TEXT_CASES may name another file made by
// tools/make_eval_cases.py (e.g. a larger stress set with another seed).
std::vector<json> ReadGeneratedCases() {
  const char* override_path = std::getenv("LLMSYS_TEXT_CASES");
  const std::string path = override_path != nullptr
                               ? std::string(override_path)
                               : DataPath("bleu_chrf_cases.jsonl");
  std::ifstream in(path);
  EXPECT_TRUE(in) << "missing " << path << " (run tools/make_eval_cases.py)";
  std::vector<json> out;
  std::string line;
  while (std::getline(in, line)) out.push_back(json::parse(line));
  return out;
}

// One segment's references out of sacreBLEU's stream layout
// (references[k][i], null = missing). The views point into `streams`.
std::vector<std::optional<std::string_view>> SegmentRefs(const json& streams,
                                                         size_t i) {
  std::vector<std::optional<std::string_view>> refs;
  for (const auto& stream : streams) {
    const json& r = stream.at(i);
    if (r.is_null()) {
      refs.emplace_back(std::nullopt);
    } else {
      refs.emplace_back(r.get_ref<const std::string&>());
    }
  }
  return refs;
}

BleuOptions ParseBleuOptions(const json& o) {
  BleuOptions options;
  options.tokenize = o.at("tokenize").get<std::string>();
  options.smooth_method = o.at("smooth_method").get<std::string>();
  if (!o.at("smooth_value").is_null()) {
    options.smooth_value = o.at("smooth_value").get<double>();
  }
  options.lowercase = o.at("lowercase").get<bool>();
  options.use_effective_order = o.at("use_effective_order").get<bool>();
  options.max_ngram_order = o.at("max_ngram_order").get<int>();
  return options;
}

ChrfOptions ParseChrfOptions(const json& o) {
  ChrfOptions options;
  options.char_order = o.at("char_order").get<int>();
  options.word_order = o.at("word_order").get<int>();
  options.beta = o.at("beta").get<int>();
  options.lowercase = o.at("lowercase").get<bool>();
  // dev_cases.json spells it remove_whitespace (its negation).
  options.whitespace = o.contains("whitespace")
                           ? o.at("whitespace").get<bool>()
                           : !o.at("remove_whitespace").get<bool>();
  options.eps_smoothing = o.at("eps_smoothing").get<bool>();
  return options;
}

// Adds every segment of a case to `metric`.
template <typename Metric>
void AddAll(Metric& metric, const json& c) {
  const json& hyps = c.at("hypotheses");
  for (size_t i = 0; i < hyps.size(); ++i) {
    metric.Add(hyps[i].get_ref<const std::string&>(),
               SegmentRefs(c.at("references"), i));
  }
}

void CheckBleu(const json& c) {
  const std::string id = c.at("id");
  SCOPED_TRACE(id);
  Bleu bleu(ParseBleuOptions(c.at("options")));
  if (c.value("error", false)) {
    EXPECT_THROW(AddAll(bleu, c), std::invalid_argument);
    return;
  }
  AddAll(bleu, c);
  const BleuScore s = bleu.Score();
  const json& e = c.at("expected");
  EXPECT_TRUE(Near(s.score, e.at("score")));
  EXPECT_TRUE(Near(s.bp, e.at("bp")));
  EXPECT_EQ(s.sys_len, e.at("sys_len").get<int64_t>());
  EXPECT_EQ(s.ref_len, e.at("ref_len").get<int64_t>());
  if (e.contains("ratio")) {
    EXPECT_TRUE(Near(s.ratio, e.at("ratio")));
  }
  // dev_cases.json records sacreBLEU's counts, which include add-k's k.
  if (c.at("options").at("smooth_method") != "add-k" || c.contains("kind")) {
    EXPECT_EQ(s.counts, e.at("counts").get<std::vector<int64_t>>());
    EXPECT_EQ(s.totals, e.at("totals").get<std::vector<int64_t>>());
  }
  const auto precisions = e.at("precisions").get<std::vector<double>>();
  ASSERT_EQ(s.precisions.size(), precisions.size());
  for (size_t n = 0; n < precisions.size(); ++n) {
    EXPECT_TRUE(Near(s.precisions[n], precisions[n])) << "order " << n + 1;
  }
  EXPECT_EQ(FormatBleu(s), e.at("formatted").get<std::string>());
  EXPECT_EQ(bleu.Signature(), e.at("signature").get<std::string>());
  if (e.contains("formatted_signature")) {
    EXPECT_EQ(FormatBleu(s, 2, bleu.Signature()),
              e.at("formatted_signature").get<std::string>());
  }
}

void CheckChrf(const json& c) {
  const std::string id = c.at("id");
  SCOPED_TRACE(id);
  Chrf chrf(ParseChrfOptions(c.at("options")));
  if (c.value("error", false)) {
    EXPECT_THROW(AddAll(chrf, c), std::invalid_argument);
    return;
  }
  AddAll(chrf, c);
  const ChrfScore s = chrf.Score();
  const json& e = c.at("expected");
  EXPECT_TRUE(Near(s.score, e.at("score")));
  EXPECT_EQ(s.name, e.at("name").get<std::string>());
  const char* stats_key = e.contains("stats") ? "stats" : "corpus_stats";
  EXPECT_EQ(s.stats, e.at(stats_key).get<std::vector<int64_t>>());
  EXPECT_EQ(FormatChrf(s), e.at("formatted").get<std::string>());
  EXPECT_EQ(chrf.Signature(), e.at("signature").get<std::string>());
  if (e.contains("formatted_signature")) {
    EXPECT_EQ(FormatChrf(s, 2, chrf.Signature()),
              e.at("formatted_signature").get<std::string>());
  }
}

TEST(DevCasesTest, BleuAndChrfMatchSacrebleu) {
  std::ifstream in(DataPath("dev_cases.json"));
  ASSERT_TRUE(in) << "missing " << DataPath("dev_cases.json");
  const json doc = json::parse(in);
  int checked = 0;
  for (const json& c : doc.at("cases")) {
    const std::string metric = c.at("metric");
    if (metric == "bleu" || metric == "sentence_bleu") {
      CheckBleu(c);
      // The oracle's token streams: lines are rstripped, then tokenized.
      const json& tok = c.at("debug").at("tokenized");
      const std::string tokenizer = c.at("options").at("tokenize");
      const json& hyps = c.at("hypotheses");
      for (size_t i = 0; i < hyps.size(); ++i) {
        std::string line = hyps[i];
        EXPECT_EQ(BleuTokenize(tokenizer, line),
                  tok.at("hypotheses").at(i).get<std::string>());
      }
      for (size_t k = 0; k < c.at("references").size(); ++k) {
        for (size_t i = 0; i < hyps.size(); ++i) {
          const json& ref = c.at("references")[k][i];
          if (ref.is_null()) continue;
          EXPECT_EQ(BleuTokenize(tokenizer, ref.get<std::string>()),
                    tok.at("references").at(k).at(i).get<std::string>());
        }
      }
      ++checked;
    } else if (metric == "chrf") {
      CheckChrf(c);
      // Per-segment statistics of the best reference.
      Chrf chrf(ParseChrfOptions(c.at("options")));
      const json& hyps = c.at("hypotheses");
      const json& segs = c.at("debug").at("segment_stats_best_ref");
      for (size_t i = 0; i < hyps.size(); ++i) {
        EXPECT_EQ(chrf.SegmentStats(hyps[i].get<std::string>(),
                                    SegmentRefs(c.at("references"), i)),
                  segs.at(i).get<std::vector<int64_t>>())
            << c.at("id") << " segment " << i;
      }
      ++checked;
    }
  }
  EXPECT_EQ(checked, 5);
}

TEST(GeneratedCasesTest, RecordsItsVersions) {
  const std::vector<json> cases = ReadGeneratedCases();
  ASSERT_FALSE(cases.empty());
  const json& meta = cases.front();
  ASSERT_EQ(meta.at("kind"), "meta");
  EXPECT_EQ(meta.at("versions").at("sacrebleu"),
            std::string(kSacrebleuVersion));
}

TEST(GeneratedCasesTest, TokenizersMatchSacrebleu) {
  int checked = 0;
  for (const json& c : ReadGeneratedCases()) {
    if (c.at("kind") != "tokenize") continue;
    EXPECT_EQ(BleuTokenize(c.at("tokenizer").get<std::string>(),
                           c.at("text").get<std::string>()),
              c.at("expected").get<std::string>())
        << c.at("id");
    ++checked;
  }
  EXPECT_GT(checked, 300);
}

TEST(GeneratedCasesTest, BleuMatchesSacrebleu) {
  int checked = 0;
  int errors = 0;
  for (const json& c : ReadGeneratedCases()) {
    if (c.at("kind") != "bleu") continue;
    CheckBleu(c);
    ++checked;
    errors += c.value("error", false) ? 1 : 0;
  }
  EXPECT_GT(checked, 250);
  EXPECT_GT(checked - errors, 240);
}

TEST(GeneratedCasesTest, ChrfMatchesSacrebleu) {
  int checked = 0;
  for (const json& c : ReadGeneratedCases()) {
    if (c.at("kind") != "chrf") continue;
    CheckChrf(c);
    ++checked;
  }
  EXPECT_GT(checked, 200);
}

TEST(GeneratedCasesTest, SquadMatchesTheOfficialScript) {
  int checked = 0;
  for (const json& c : ReadGeneratedCases()) {
    if (c.at("kind") != "squad") continue;
    SCOPED_TRACE(c.at("id").get<std::string>());
    const std::string prediction = c.at("prediction");
    const auto refs_owned = c.at("references").get<std::vector<std::string>>();
    const std::vector<std::string_view> refs(refs_owned.begin(),
                                             refs_owned.end());
    const json& e = c.at("expected");
    EXPECT_EQ(NormalizeAnswer(prediction),
              e.at("normalized_prediction").get<std::string>());
    EXPECT_EQ(ExactMatch(prediction, refs), e.at("exact_match").get<double>());
    EXPECT_TRUE(Near(TokenF1(prediction, refs), e.at("f1").get<double>()));
    ++checked;
  }
  EXPECT_GT(checked, 150);
}

}  // namespace
}  // namespace llmsys::text
