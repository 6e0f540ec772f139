#include "framework/core/suggest.h"

#include "gtest/gtest.h"

namespace llmsys::core {
namespace {

TEST(SuggestTest, EditDistance) {
  EXPECT_EQ(EditDistance("", ""), 0u);
  EXPECT_EQ(EditDistance("abc", ""), 3u);
  EXPECT_EQ(EditDistance("kitten", "sitting"), 3u);
  EXPECT_EQ(EditDistance("adam", "adamw"), 1u);
}

TEST(SuggestTest, SuggestsTheClosestWithinReach) {
  EXPECT_EQ(DidYouMean("adamw2", {"adam", "adamw", "sgd"}),
            " (did you mean 'adamw'?)");
  EXPECT_EQ(DidYouMean("tpo_p", {"top_k", "top_p"}),
            " (did you mean 'top_p'?)");
  EXPECT_EQ(DidYouMean("transformer", {"sgd", "bleu"}), "");
  EXPECT_EQ(DidYouMean("x", {}), "");
}

}  // namespace
}  // namespace llmsys::core
