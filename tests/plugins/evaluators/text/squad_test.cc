// Tests of plugins/evaluators/text/squad.h on hand-checked inputs (values
// from the official SQuAD v1.1 script); eval_cases_test.cc compares 160
// generated cases with it.
#include "plugins/evaluators/text/squad.h"

#include <gtest/gtest.h>

#include <stdexcept>

namespace llmsys::text {
namespace {

TEST(SquadTest, NormalizeAnswer) {
  EXPECT_EQ(NormalizeAnswer("The  Eiffel\tTower!"), "eiffel tower");
  EXPECT_EQ(NormalizeAnswer("an apple a day"), "apple day");
  // Punctuation goes before articles: "the_the" and "Theater-" join up.
  EXPECT_EQ(NormalizeAnswer("Theater-the_the a\u0301 ana"),
            "theaterthethe \u0301 ana");
  // Python's lowercase of U+0130 is two code points; \b is Unicode-aware.
  EXPECT_EQ(NormalizeAnswer("\u0130 the"), "i\u0307");
  EXPECT_EQ(NormalizeAnswer("\u00E9the the\u00E9"), "\u00E9the the\u00E9");
  EXPECT_EQ(NormalizeAnswer(""), "");
}

TEST(SquadTest, ExactMatchAndF1TakeTheBestReference) {
  EXPECT_EQ(ExactMatch("The Eiffel Tower", {"Eiffel tower", "Paris"}), 1.0);
  EXPECT_EQ(TokenF1("The Eiffel Tower", {"Eiffel tower", "Paris"}), 1.0);
  EXPECT_EQ(ExactMatch("in Paris, France", {"Paris"}), 0.0);
  EXPECT_DOUBLE_EQ(TokenF1("in Paris, France", {"Paris"}), 0.5);
  EXPECT_DOUBLE_EQ(TokenF1("paris paris london", {"paris paris", "paris x"}),
                   (2 * (2.0 / 3) * 1.0) / (2.0 / 3 + 1.0));
  // Empty after normalization: exact match, but F1 is 0 (v1.1 script).
  EXPECT_EQ(ExactMatch("the", {"a"}), 1.0);
  EXPECT_EQ(TokenF1("the", {"a"}), 0.0);
}

TEST(SquadTest, Errors) {
  EXPECT_THROW(ExactMatch("x", {}), std::invalid_argument);
  EXPECT_THROW(TokenF1("x", {}), std::invalid_argument);
  EXPECT_THROW(TokenF1("\xFF", {"x"}), std::invalid_argument);
  EXPECT_THROW(NormalizeAnswer("\xED\xA0\x80"), std::invalid_argument);
}

}  // namespace
}  // namespace llmsys::text
