// Tests of plugins/evaluators/text/bleu.h: the tokenizers on hand-checked
// inputs (values from sacreBLEU 2.6.0), the edge cases of the score, and the
// errors. The bulk comparison with sacreBLEU is in eval_cases_test.cc.
#include "plugins/evaluators/text/bleu.h"

#include <gtest/gtest.h>

#include <cmath>
#include <stdexcept>
#include <string>

namespace llmsys::text {
namespace {

using Refs = std::vector<std::optional<std::string_view>>;

TEST(BleuTokenizeTest, Tokenizer13a) {
  EXPECT_EQ(BleuTokenize("13a", "Hello, world! It costs $4.5 (approx.)."),
            "Hello , world ! It costs $ 4.5 ( approx . ) .");
  // Periods and commas stay between digits; a dash after a digit splits.
  EXPECT_EQ(BleuTokenize("13a", "1,000.50 and 2-3 and a-b"),
            "1,000.50 and 2 - 3 and a-b");
  EXPECT_EQ(BleuTokenize("13a", "the year 2025."), "the year 2025 .");
  // <skipped> is dropped, "-\n" joins, entities are unescaped in order.
  EXPECT_EQ(BleuTokenize("13a", "a<skipped>b co-\nop x\ny"), "ab coop x y");
  EXPECT_EQ(BleuTokenize("13a", "AT&amp;T &quot;q&quot; &amp;lt;"),
            "AT & T \" q \" <");
  EXPECT_EQ(BleuTokenize("13a", "don't"), "don't");
  EXPECT_EQ(BleuTokenize("13a", "  \t "), "");
}

TEST(BleuTokenizeTest, PairRulesDoNotOverlap) {
  // re.sub consumes "a." before looking at ".,": the comma is then tried
  // only as the first character of the next match.
  EXPECT_EQ(BleuTokenize("13a", "a.,b"), "a . , b");
  EXPECT_EQ(BleuTokenize("13a", "5.,5"), "5 . , 5");
  EXPECT_EQ(BleuTokenize("13a", "..5"), ". .5");
}

TEST(BleuTokenizeTest, TokenizerIntlUsesUnicodeCategories) {
  EXPECT_EQ(BleuTokenize("intl", "Hello, world! 1,000.5 \u00BFQu\u00E9?"),
            "Hello , world ! 1,000.5 \u00BF Qu\u00E9 ?");
  EXPECT_EQ(BleuTokenize("intl", "5\u20AC and \u00A9x"),
            "5 \u20AC and \u00A9 x");
  EXPECT_EQ(BleuTokenize("intl", "the year 2025."), "the year 2025.");
}

TEST(BleuTokenizeTest, TokenizerZhAndCharAndNone) {
  EXPECT_EQ(BleuTokenize("zh", "\u6211\u4EEC\u53BBBeijing, ok\u3002"),
            "\u6211 \u4EEC \u53BB Beijing , ok \u3002");
  // The zh table's typo makes U+2014 a "Chinese" character.
  EXPECT_EQ(BleuTokenize("zh", "a\u2014b"), "a \u2014 b");
  EXPECT_EQ(BleuTokenize("char", "ab c\u00E9"), "a b c \u00E9");
  EXPECT_EQ(BleuTokenize("none", " a,b\u3000c "), "a,b c");
}

TEST(BleuTokenizeTest, RejectsUnknownTokenizerAndBadUtf8) {
  try {
    BleuTokenize("moses", "x");
    FAIL() << "no exception";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("'13a'"), std::string::npos)
        << e.what();
  }
  EXPECT_THROW(BleuTokenize("13a", "\xC3"), std::invalid_argument);
}

TEST(BleuTest, PerfectMatchScores100) {
  Bleu bleu(BleuOptions{});
  bleu.Add("The cat sat on the mat today .",
           Refs{"The cat sat on the mat today ."});
  const BleuScore s = bleu.Score();
  EXPECT_DOUBLE_EQ(s.score, 100.0);
  EXPECT_EQ(s.sys_len, 8);
  EXPECT_EQ(s.ref_len, 8);
  EXPECT_EQ(s.counts, (std::vector<int64_t>{8, 7, 6, 5}));
  EXPECT_EQ(s.totals, (std::vector<int64_t>{8, 7, 6, 5}));
  EXPECT_EQ(FormatBleu(s),
            "BLEU = 100.00 100.0/100.0/100.0/100.0 (BP = 1.000 ratio = 1.000 "
            "hyp_len = 8 ref_len = 8)");
  EXPECT_EQ(bleu.Signature(),
            "nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0");
}

TEST(BleuTest, ClosestReferenceLengthPrefersShorterOnTies) {
  Bleu bleu(BleuOptions{});
  // Hypothesis of 4 tokens; references of 3 and 5 tokens are equally close.
  bleu.Add("a b c d", Refs{"a b c d e", "a b c"});
  EXPECT_EQ(bleu.Score().ref_len, 3);
  // Clipping takes the maximum count over references.
  Bleu clip(BleuOptions{});
  clip.Add("x x x x", Refs{"x y", "x x z"});
  EXPECT_EQ(clip.Score().counts[0], 2);
}

TEST(BleuTest, EdgeCasesMatchSacrebleu) {
  // Empty hypothesis: no match anywhere, score 0, BP 0.
  Bleu empty(BleuOptions{});
  empty.Add("", Refs{"a b c"});
  BleuScore s = empty.Score();
  EXPECT_EQ(s.score, 0.0);
  EXPECT_EQ(s.bp, 0.0);
  EXPECT_EQ(FormatBleu(s),
            "BLEU = 0.00 0.0/0.0/0.0/0.0 (BP = 0.000 ratio = 0.000 hyp_len = "
            "0 ref_len = 3)");
  // Empty reference.
  Bleu empty_ref(BleuOptions{});
  empty_ref.Add("a b", Refs{""});
  s = empty_ref.Score();
  EXPECT_EQ(s.score, 0.0);
  EXPECT_EQ(s.ratio, 0.0);
  // All references missing and no hypothesis token: sacreBLEU counts the
  // segment with reference length -1.
  Bleu none(BleuOptions{});
  none.Add("", Refs{std::nullopt});
  none.Add("a b c", Refs{"a b c"});
  s = none.Score();
  EXPECT_EQ(s.ref_len, 2);
  EXPECT_EQ(none.Signature(),
            "nrefs:var|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0");
}

TEST(BleuTest, SmoothingOnAShortSentence) {
  // Hypothesis "a b c" against "a b d": 2/3 unigrams, 1/2 bigrams, no
  // trigram; 4-grams do not exist.
  const auto score = [](const char* method, bool eff) {
    BleuOptions o;
    o.smooth_method = method;
    o.use_effective_order = eff;
    Bleu bleu(o);
    bleu.Add("a b c", Refs{"a b d"});
    return bleu.Score();
  };
  // exp: the first zero-match order gets 100 / (2 * total).
  BleuScore s = score("exp", true);
  EXPECT_DOUBLE_EQ(s.precisions[2], 100.0 / 2.0);
  EXPECT_NEAR(
      s.score,
      std::exp((std::log(200.0 / 3) + std::log(50.0) + std::log(50.0)) / 3),
      1e-12);
  // floor: 100 * 0.1 / total.
  s = score("floor", true);
  EXPECT_DOUBLE_EQ(s.precisions[2], 10.0);
  // add-k: k added to counts and totals from order 2 on; 4-grams then
  // exist (0 + 1 of 0 + 1).
  s = score("add-k", true);
  EXPECT_DOUBLE_EQ(s.precisions[1], 100.0 * 2 / 3);
  EXPECT_DOUBLE_EQ(s.precisions[3], 100.0);
  // none, without effective order: a zero precision makes the score 0.
  s = score("none", false);
  EXPECT_EQ(s.score, 0.0);
}

TEST(BleuTest, SegmentStatsAndScoreStatsAgreeWithAdd) {
  Bleu bleu(BleuOptions{});
  const BleuStats seg = bleu.SegmentStats("the cat sat", Refs{"the cat"});
  EXPECT_EQ(bleu.num_segments(), 0);
  bleu.Add("the cat sat", Refs{"the cat"});
  EXPECT_EQ(bleu.totals().counts, seg.counts);
  EXPECT_EQ(bleu.Score().score, bleu.ScoreStats(seg).score);
  BleuStats wrong = seg;
  wrong.counts.pop_back();
  EXPECT_THROW(bleu.ScoreStats(wrong), std::invalid_argument);
}

TEST(BleuTest, Errors) {
  BleuOptions bad_tok;
  bad_tok.tokenize = "spm";
  EXPECT_THROW(Bleu{bad_tok}, std::invalid_argument);
  BleuOptions bad_smooth;
  bad_smooth.smooth_method = "add_k";
  try {
    Bleu b(bad_smooth);
    FAIL() << "no exception";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("'add-k'"), std::string::npos);
  }
  BleuOptions bad_order;
  bad_order.max_ngram_order = 0;
  EXPECT_THROW(Bleu{bad_order}, std::invalid_argument);
  BleuOptions bad_value;
  bad_value.smooth_value = std::nan("");
  EXPECT_THROW(Bleu{bad_value}, std::invalid_argument);

  Bleu bleu(BleuOptions{});
  EXPECT_THROW(bleu.Score(), std::invalid_argument);
  EXPECT_THROW(bleu.Signature(), std::invalid_argument);
  EXPECT_THROW(bleu.Add("a", Refs{std::nullopt}), std::invalid_argument);
  try {
    bleu.Add("fine", Refs{"ok", "bad \xFF"});
    FAIL() << "no exception";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("reference 2"), std::string::npos)
        << e.what();
  }
  EXPECT_EQ(bleu.num_segments(), 0);
}

TEST(BleuTest, SignatureSpellsSmoothingValues) {
  BleuOptions o;
  o.smooth_method = "floor";
  o.lowercase = true;
  o.use_effective_order = true;
  o.tokenize = "intl";
  Bleu bleu(o);
  bleu.Add("a", Refs{"a", "b"});
  EXPECT_EQ(bleu.Signature(),
            "nrefs:2|case:lc|eff:yes|tok:intl|smooth:floor[0.10]|"
            "version:2.6.0");
  o.smooth_method = "add-k";
  o.smooth_value = 0.5;
  Bleu addk(o);
  addk.Add("a", Refs{"a"});
  EXPECT_NE(addk.Signature().find("smooth:add-k[0.50]"), std::string::npos);
  EXPECT_EQ(
      FormatBleu(addk.Score(), 1, addk.Signature()).rfind("BLEU|nrefs:1|", 0),
      0u);
}

}  // namespace
}  // namespace llmsys::text
