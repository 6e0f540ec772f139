// Tests of plugins/evaluators/text/chrf.h on hand-checked inputs (values
// from sacreBLEU 2.6.0): statistics layout, word splitting, best-reference
// choice, smoothing modes, signature and errors. The bulk comparison with
// sacreBLEU is in eval_cases_test.cc.
#include "plugins/evaluators/text/chrf.h"

#include <gtest/gtest.h>

#include <stdexcept>
#include <string>

namespace llmsys::text {
namespace {

using Refs = std::vector<std::optional<std::string_view>>;

TEST(ChrfTest, IdenticalTextScores100) {
  Chrf chrf(ChrfOptions{});
  chrf.Add("The cat sat.", Refs{"The cat sat."});
  const ChrfScore s = chrf.Score();
  EXPECT_EQ(s.score, 100.0);
  EXPECT_EQ(s.name, "chrF2");
  EXPECT_EQ(FormatChrf(s), "chrF2 = 100.00");
  EXPECT_EQ(chrf.Signature(),
            "nrefs:1|case:mixed|eff:yes|nc:6|nw:0|space:no|version:2.6.0");
}

TEST(ChrfTest, ChrfPlusPlusStatistics) {
  ChrfOptions o;
  o.word_order = 2;
  Chrf chrf(o);
  const std::vector<int64_t> expected = {20, 16, 14, 19, 15, 11, 18, 14,
                                         8,  17, 13, 6,  16, 12, 4,  15,
                                         11, 2,  8,  7,  4,  7,  6,  2};
  EXPECT_EQ(chrf.SegmentStats("The cat sat (on) the mat.",
                              Refs{"A cat sat on the mat!"}),
            expected);
  chrf.Add("The cat sat (on) the mat.", Refs{"A cat sat on the mat!"});
  const ChrfScore s = chrf.Score();
  EXPECT_EQ(s.name, "chrF2++");
  EXPECT_EQ(FormatChrf(s), "chrF2++ = 48.34");
  EXPECT_EQ(s.stats, expected);
}

TEST(ChrfTest, NoOverlapAndEmptyTextScoreZero) {
  for (const auto& [hyp, ref] :
       {std::pair{"abc", "xyz"}, std::pair{"", ""}, std::pair{"abc", ""}}) {
    Chrf chrf(ChrfOptions{});
    chrf.Add(hyp, Refs{ref});
    EXPECT_EQ(chrf.Score().score, 0.0) << hyp << " / " << ref;
  }
}

TEST(ChrfTest, EpsSmoothingAveragesPerOrderScores) {
  ChrfOptions o;
  o.eps_smoothing = true;
  Chrf chrf(o);
  chrf.Add("abc", Refs{"abd"});
  EXPECT_NEAR(chrf.Score().score, 19.444444444444443, 1e-12);
  EXPECT_NE(chrf.Signature().find("|eff:no|"), std::string::npos);
}

TEST(ChrfTest, PicksTheBestReference) {
  Chrf chrf(ChrfOptions{});
  const std::vector<int64_t> stats = chrf.SegmentStats(
      "abc def", Refs{"xyz", std::nullopt, "abc de", "abc def"});
  EXPECT_EQ(stats, (std::vector<int64_t>{6, 6, 6, 5, 5, 5, 4, 4, 4, 3, 3, 3, 2,
                                         2, 2, 1, 1, 1}));
}

TEST(ChrfTest, WhitespaceLowercaseBeta) {
  ChrfOptions o;
  o.whitespace = true;
  o.lowercase = true;
  o.char_order = 2;
  o.beta = 1;
  Chrf chrf(o);
  chrf.Add("A B", Refs{"a b"});
  EXPECT_EQ(chrf.Score().stats, (std::vector<int64_t>{3, 3, 3, 2, 2, 2}));
  EXPECT_EQ(FormatChrf(chrf.Score(), 2, chrf.Signature()),
            "chrF1|nrefs:1|case:lc|eff:yes|nc:2|nw:0|space:yes|"
            "version:2.6.0 = 100.00");
}

TEST(ChrfTest, Errors) {
  ChrfOptions none;
  none.char_order = 0;
  EXPECT_THROW(Chrf{none}, std::invalid_argument);
  ChrfOptions negative;
  negative.word_order = -1;
  EXPECT_THROW(Chrf{negative}, std::invalid_argument);
  ChrfOptions beta;
  beta.beta = -2;
  EXPECT_THROW(Chrf{beta}, std::invalid_argument);

  Chrf chrf(ChrfOptions{});
  EXPECT_THROW(chrf.Score(), std::invalid_argument);
  EXPECT_THROW(chrf.Signature(), std::invalid_argument);
  EXPECT_THROW(chrf.Add("a", Refs{std::nullopt, std::nullopt}),
               std::invalid_argument);
  EXPECT_THROW(chrf.Add("\xC0\x80", Refs{"a"}), std::invalid_argument);
  EXPECT_EQ(chrf.num_segments(), 0);
  EXPECT_THROW(chrf.ScoreStats({1, 2, 3}), std::invalid_argument);
}

}  // namespace
}  // namespace llmsys::text
