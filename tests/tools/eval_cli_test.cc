// `llmsys eval` as a user runs it: the development cases computed with
// sacreBLEU and rouge-score (tests/data/eval/dev_cases.json) through the
// command's JSON output, its text output, and every kind of bad input.
#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/tools/cli_test_util.h"

namespace llmsys::cli_test {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

class EvalCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(::testing::TempDir()) / "eval_cli" /
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  std::string Write(const std::string& name, const std::string& text) {
    const fs::path p = dir_ / name;
    std::ofstream(p, std::ios::binary) << text;
    return p.string();
  }
  fs::path dir_;
};

json DevCases() {
  std::ifstream in(std::string(LLMSYS_SOURCE_DIR) +
                   "/tests/data/eval/dev_cases.json");
  return json::parse(in);
}

// The case's options as --param arguments (sacreBLEU / rouge-score names).
std::string Params(const json& c) {
  std::string out;
  for (const auto& [k, v] : c["options"].items()) {
    std::string value;
    if (k == "smooth_value_effective" || k == "split_summaries" || v.is_null())
      continue;
    if (k == "remove_whitespace") {
      out += " --param whitespace=" +
             std::string(v.get<bool>() ? "false" : "true");
      continue;
    }
    if (v.is_array()) {
      for (const json& item : v)
        value += (value.empty() ? "" : ",") + item.get<std::string>();
    } else if (v.is_string()) {
      value = v.get<std::string>();
    } else {
      value = v.dump();
    }
    out += " --param " + k + "=" + value;
  }
  return out;
}

void ExpectNear(const json& want, const json& got, const std::string& where) {
  if (want.is_object()) {
    for (const auto& [k, v] : want.items()) {
      ASSERT_TRUE(got.contains(k)) << where << ": no " << k << " in " << got;
      ExpectNear(v, got[k], where + "." + k);
    }
  } else if (want.is_array()) {
    ASSERT_TRUE(got.is_array() && got.size() == want.size())
        << where << ": " << got;
    for (size_t i = 0; i < want.size(); ++i)
      ExpectNear(want[i], got[i], where + "." + std::to_string(i));
  } else if (want.is_number()) {
    ASSERT_TRUE(got.is_number()) << where << ": " << got;
    const double a = want.get<double>(), b = got.get<double>();
    EXPECT_LE(std::fabs(a - b), 1e-9 * std::max(std::fabs(a), 1e-300))
        << where << ": want " << a << ", got " << b;
  }
}

TEST_F(EvalCliTest, DevelopmentCasesMatchTheReferenceSystems) {
  const json cases = DevCases();
  int checked = 0;
  for (const json& c : cases["cases"]) {
    const std::string metric = c["metric"];
    const bool sentence = metric == "sentence_bleu";
    std::string lines;
    const json& hyps = c["hypotheses"];
    for (size_t i = 0; i < hyps.size(); ++i) {
      json refs = json::array();
      for (const json& stream : c["references"]) refs.push_back(stream[i]);
      lines += json({{"hyp", hyps[i]}, {"refs", refs}}).dump() + "\n";
    }
    const std::string input =
        Write(c["id"].get<std::string>() + ".jsonl", lines);
    const std::string id = sentence ? "bleu" : metric;
    Result r =
        RunLlmsys("eval --metric " + id + " --input " + input + Params(c) +
                  " --json" + (sentence ? " --sentence" : ""));
    ASSERT_EQ(r.exit_code, 0) << c["id"] << ": " << r.err;
    const json got = json::parse(r.out);
    EXPECT_EQ(got["metric"], id);
    json want = c["expected"];
    if (metric == "rouge") {
      want = json{{"scores", want}};
    } else {
      for (const char* k : {"formatted", "signature", "corpus_stats", "name"})
        want.erase(k);
    }
    ExpectNear(want, got, c["id"]);
    if (metric == "chrf") {
      EXPECT_EQ(got["name"], c["expected"]["name"]);
    }
    ++checked;
  }
  EXPECT_GE(checked, 8);
}

TEST_F(EvalCliTest, TextOutputLooksLikeSacrebleus) {
  const std::string hyp = Write("hyp.txt", "the cat sat on the mat\n");
  const std::string ref = Write("ref.txt", "the cat sat on a mat\n");
  Result r = RunLlmsys("eval --metric bleu --hyp " + hyp + " --ref " + ref);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(Contains(r.out,
                       "BLEU|nrefs:1|case:mixed|eff:no|tok:13a|"
                       "smooth:exp|version:"))
      << r.out;
  EXPECT_TRUE(Contains(r.out,
                       " = 53.73 83.3/60.0/50.0/33.3 (BP = 1.000 "
                       "ratio = 1.000 hyp_len = 6 ref_len = 6)"))
      << r.out;
  r = RunLlmsys("eval --metric chrf --param word_order=2 --hyp " + hyp +
                " --ref " + ref);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(Contains(r.out, "chrF2++|nrefs:1|")) << r.out;
  EXPECT_TRUE(Contains(r.out, " = 72.03\n")) << r.out;  // sacreBLEU's
  r = RunLlmsys("eval --metric rouge --hyp " + hyp + " --ref " + ref);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out.rfind("rouge|types:rouge1,rouge2,rougeL,rougeLsum|", 0), 0u)
      << r.out;
  EXPECT_TRUE(Contains(r.out, "rouge2     P = 0.6000  R = 0.6000  F = 0.6000"))
      << r.out;
}

TEST_F(EvalCliTest, BadInputIsAClearError) {
  const std::string hyp = Write("hyp.txt", "a b c\nd e f\n");
  const std::string ref1 = Write("ref1.txt", "a b c\n");
  const std::string bad_utf8 = Write("bad.txt", "a b c\nd \xc3\x28 f\n");
  const std::string empty = Write("empty.txt", "");
  struct Case {
    std::string args, expected;
    int code;
  };
  for (const Case& c : std::vector<Case>{
           {"--metric bleu --hyp " + hyp + " --ref " + ref1,
            "ref1.txt has 1 lines but", 1},
           {"--metric bleu --hyp " + hyp + " --ref " + bad_utf8,
            "bad.txt:2: invalid UTF-8 at byte 3", 1},
           {"--metric bleu --hyp " + empty + " --ref " + ref1,
            "empty.txt: the file is empty", 1},
           {"--metric bleu --hyp " + hyp + " --ref " + (dir_ / "nope").string(),
            "nope: cannot open", 1},
           {"--metric blue --hyp " + hyp + " --ref " + hyp,
            "did you mean 'bleu'", 1},
           {"--metric bleu --param tokenise=intl --hyp " + hyp + " --ref " +
                hyp,
            "no parameter 'tokenise' (did you mean 'tokenize'?)", 1},
           {"--metric bleu --param tokenize=moses --hyp " + hyp + " --ref " +
                hyp,
            "tokenize", 1},
           {"--metric bleu --hyp " + hyp, "at least one --ref", 2},
           {"--hyp " + hyp + " --ref " + hyp, "needs --metric", 2},
           {"--metric bleu", "reads --hyp (with --ref) or --input", 2},
           {"--metric perplexity --hyp " + hyp + " --ref " + hyp,
            "does not read hypotheses and references", 1},
       }) {
    Result r = RunLlmsys("eval " + c.args);
    EXPECT_EQ(r.exit_code, c.code) << c.args << "\n" << r.err;
    EXPECT_TRUE(Contains(r.err, c.expected))
        << c.args << "\nwant: " << c.expected << "\ngot: " << r.err;
  }
}

TEST_F(EvalCliTest, EmptySegmentsAreValidInput) {
  const std::string hyp = Write("hyp.txt", "\nthe cat\n");
  const std::string ref = Write("ref.txt", "the cat\n\n");
  for (const char* metric : {"bleu", "chrf", "rouge"}) {
    Result r = RunLlmsys(std::string("eval --json --metric ") + metric +
                         " --hyp " + hyp + " --ref " + ref);
    EXPECT_EQ(r.exit_code, 0) << metric << ": " << r.err;
    EXPECT_NO_THROW(json::parse(r.out)) << r.out;
  }
}

TEST_F(EvalCliTest, CountingEvaluatorsReadJsonLines) {
  const std::string pass =
      Write("pass.jsonl", "{\"n\": 10, \"c\": 3}\n{\"n\": 10, \"c\": 0}\n");
  Result r =
      RunLlmsys("eval --metric pass_at_k --param k=1,5 --json --input " + pass);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json got = json::parse(r.out);
  EXPECT_NEAR(got["pass@1"].get<double>(), 0.15, 1e-12);
  EXPECT_EQ(got["problems"], 2);
  const std::string lp =
      Write("lp.jsonl", "{\"log_prob\": -4.0, \"tokens\": 2}\n");
  r = RunLlmsys("eval --metric perplexity --json --input " + lp);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NEAR(json::parse(r.out)["perplexity"].get<double>(), std::exp(2.0),
              1e-9);
}

}  // namespace
}  // namespace llmsys::cli_test
