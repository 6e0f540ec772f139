// tests/framework/data/masking_test.cc — BERT's MLM masking
// (framework/data/masking.h): the documented draws, the 80/10/10 rates,
// eligibility and option errors.
#include "framework/data/masking.h"

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "llmsys/random.h"

namespace llmsys::data {
namespace {

using ::testing::HasSubstr;

// `n` ordinary (eligible, non-[MASK]) ids in [kNumSpecialTokens, vocab - 1),
// from a fixed LCG (mask_id is vocab - 1 in these tests).
std::vector<int32_t> Words(int64_t n, int32_t vocab, uint64_t seed = 5) {
  std::vector<int32_t> t;
  uint64_t s = seed;
  const uint64_t range = static_cast<uint64_t>(vocab - 1 - kNumSpecialTokens);
  for (int64_t i = 0; i < n; ++i) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    t.push_back(kNumSpecialTokens + static_cast<int32_t>((s >> 33) % range));
  }
  return t;
}

MlmOptions Options(int32_t vocab) {
  return {.mask_id = vocab - 1, .vocab_size = vocab};
}

MlmMasked Mask(const std::vector<int32_t>& tokens, const MlmOptions& o,
               uint64_t seed, uint64_t offset = 0) {
  absl::StatusOr<MlmMasked> m = MaskTokens(tokens, o, seed, offset);
  EXPECT_TRUE(m.ok()) << m.status();
  return m.ok() ? *std::move(m) : MlmMasked{};
}

// The outcome of every position re-derived from the draws masking.h
// documents, straight from llmsys/random.h: any change to which number
// decides what breaks this.
TEST(MaskingTest, FollowsTheDocumentedDraws) {
  const int32_t V = 50;
  MlmOptions o = Options(V);
  o.mask_prob = 0.4;  // more of each outcome in a short input
  std::vector<int32_t> tokens = Words(500, V);
  tokens[7] = kUnkId;
  const uint64_t seed = 1234, offset = 7ull << 32;
  const MlmMasked m = Mask(tokens, o, seed, offset);
  ASSERT_EQ(m.inputs.size(), tokens.size());
  ASSERT_EQ(m.targets.size(), tokens.size());
  int64_t selected = 0, masked = 0, random = 0, kept = 0;
  for (size_t p = 0; p < tokens.size(); ++p) {
    const uint64_t i = 3 * p;
    const bool sel = llmsys_random_uniform(seed, offset, i) < o.mask_prob;
    const double u1 = llmsys_random_uniform(seed, offset, i + 1);
    int32_t expected = tokens[p];
    if (sel && u1 < 0.8) {
      expected = V - 1, ++masked;
    } else if (sel && u1 < 0.9) {
      // Candidates 4..48 (mask_id 49 is the last id: nothing to skip).
      expected = kNumSpecialTokens +
                 static_cast<int32_t>(llmsys_random_u32(seed, offset, i + 2) %
                                      (V - 1 - kNumSpecialTokens));
      ++random;
    } else if (sel) {
      ++kept;
    }
    selected += sel;
    ASSERT_EQ(m.inputs[p], expected) << "position " << p;
    ASSERT_EQ(m.targets[p], sel ? tokens[p] : kIgnoreTarget)
        << "position " << p;
  }
  EXPECT_EQ(m.num_masked, selected);
  // The input exercised every branch.
  EXPECT_GT(masked, 0);
  EXPECT_GT(random, 0);
  EXPECT_GT(kept, 0);
}

TEST(MaskingTest, ASeedAndOffsetGiveTheSameMasksAndOthersDiffer) {
  const int32_t V = 100;
  const std::vector<int32_t> tokens = Words(2000, V);
  const MlmMasked a = Mask(tokens, Options(V), 42, 0);
  const MlmMasked b = Mask(tokens, Options(V), 42, 0);
  EXPECT_EQ(a.inputs, b.inputs);
  EXPECT_EQ(a.targets, b.targets);
  EXPECT_EQ(a.num_masked, b.num_masked);
  EXPECT_NE(Mask(tokens, Options(V), 43, 0).targets, a.targets);
  EXPECT_NE(Mask(tokens, Options(V), 42, 1ull << 32).targets, a.targets);
  // Position i depends on nothing but i and its token: a prefix masks as
  // the whole does.
  const std::vector<int32_t> prefix(tokens.begin(), tokens.begin() + 300);
  const MlmMasked p = Mask(prefix, Options(V), 42, 0);
  EXPECT_EQ(p.inputs,
            std::vector<int32_t>(a.inputs.begin(), a.inputs.begin() + 300));
  EXPECT_EQ(p.targets,
            std::vector<int32_t>(a.targets.begin(), a.targets.begin() + 300));
}

// 200000 positions: the selection rate and the 80/10/10 split within five
// standard deviations of a binomial.
TEST(MaskingTest, RatesMatchTheOptions) {
  const int32_t V = 1000;
  const int64_t n = 200000;
  const std::vector<int32_t> tokens = Words(n, V);
  const MlmMasked m = Mask(tokens, Options(V), 2024, 0);
  int64_t selected = 0, masked = 0, random = 0, kept = 0;
  for (int64_t i = 0; i < n; ++i) {
    const int32_t t = m.targets[static_cast<size_t>(i)];
    const int32_t x = m.inputs[static_cast<size_t>(i)];
    if (t == kIgnoreTarget) {
      ASSERT_EQ(x, tokens[static_cast<size_t>(i)]) << i;
      continue;
    }
    ASSERT_EQ(t, tokens[static_cast<size_t>(i)]) << i;
    ++selected;
    if (x == V - 1) {
      ++masked;
    } else if (x != t) {
      ++random;
    } else {
      ++kept;  // includes the ~1/995 random draws that hit the original
    }
  }
  EXPECT_EQ(m.num_masked, selected);
  auto within = [](int64_t count, int64_t trials, double p) {
    const double sd = std::sqrt(p * (1 - p) / static_cast<double>(trials));
    const double rate =
        static_cast<double>(count) / static_cast<double>(trials);
    EXPECT_NEAR(rate, p, 5 * sd + 1e-3)
        << count << " of " << trials << " trials";
  };
  within(selected, n, 0.15);
  within(masked, selected, 0.8);
  within(random, selected, 0.1);
  within(kept, selected, 0.1);

  // Other rates: 30% selected, all of them random.
  MlmOptions o = Options(V);
  o.mask_prob = 0.3, o.mask_token = 0.0, o.random_token = 1.0;
  const MlmMasked r = Mask(tokens, o, 2024, 0);
  within(r.num_masked, n, 0.3);
  for (size_t i = 0; i < tokens.size(); ++i) {
    if (r.targets[i] != kIgnoreTarget) {
      ASSERT_NE(r.inputs[i], V - 1) << i;
    }
  }
}

// Random replacements are uniform over [first_random_id, vocab_size) less
// mask_id, which lies inside that range here.
TEST(MaskingTest, RandomIdsAreUniformAndNeverTheMaskId) {
  const int32_t V = 10, mask_id = 6;
  const MlmOptions o{.mask_prob = 1.0,
                     .mask_token = 0.0,
                     .random_token = 1.0,
                     .mask_id = mask_id,
                     .vocab_size = V};
  const std::vector<int32_t> tokens(50000, 5);
  const MlmMasked m = Mask(tokens, o, 9, 0);
  EXPECT_EQ(m.num_masked, 50000);
  std::vector<int64_t> counts(V, 0);
  for (int32_t x : m.inputs) {
    ASSERT_GE(x, kNumSpecialTokens);
    ASSERT_LT(x, V);
    ++counts[static_cast<size_t>(x)];
  }
  EXPECT_EQ(counts[mask_id], 0);
  for (int32_t id : {4, 5, 7, 8, 9})  // 5 candidates, 10000 expected each
    EXPECT_NEAR(counts[static_cast<size_t>(id)], 10000, 5 * std::sqrt(8000.0))
        << "id " << id;

  // A narrower range, starting at the mask id: only 7..9.
  MlmOptions from = o;
  from.first_random_id = mask_id;
  for (int32_t x : Mask(tokens, from, 9, 0).inputs) {
    ASSERT_GE(x, 7);
    ASSERT_LT(x, V);
  }
}

TEST(MaskingTest, PadBosEosAreNeverSelectedUnkMayBe) {
  const int32_t V = 20;
  MlmOptions o = Options(V);
  o.mask_prob = 1.0, o.mask_token = 1.0, o.random_token = 0.0;
  const std::vector<int32_t> tokens = {kBosId, 7,      kUnkId, 12, kEosId,
                                       kPadId, kPadId, V - 1,  4};
  const MlmMasked m = Mask(tokens, o, 3, 0);
  const int32_t M = V - 1, I = kIgnoreTarget;
  EXPECT_EQ(m.inputs, (std::vector<int32_t>{kBosId, M, M, M, kEosId, kPadId,
                                            kPadId, M, M}));
  EXPECT_EQ(m.targets, (std::vector<int32_t>{I, 7, kUnkId, 12, I, I, I, M, 4}));
  EXPECT_EQ(m.num_masked, 5);
  EXPECT_FALSE(MlmEligible(kPadId));
  EXPECT_FALSE(MlmEligible(kBosId));
  EXPECT_FALSE(MlmEligible(kEosId));
  EXPECT_TRUE(MlmEligible(kUnkId));

  // With every token special, at any rate, nothing changes.
  const std::vector<int32_t> specials(300, kPadId);
  const MlmMasked s = Mask(specials, o, 3, 0);
  EXPECT_EQ(s.inputs, specials);
  EXPECT_EQ(s.num_masked, 0);
  // mask_prob 0 selects nothing; an empty input is fine.
  o.mask_prob = 0.0;
  EXPECT_EQ(Mask(Words(300, V), o, 3, 0).num_masked, 0);
  EXPECT_TRUE(Mask({}, o, 3, 0).inputs.empty());
}

TEST(MaskingTest, BadOptionsSayWhatIsWrong) {
  const std::vector<int32_t> tokens = {4, 5, 6};
  auto error = [&](MlmOptions o, std::vector<int32_t> t = {4, 5, 6}) {
    absl::StatusOr<MlmMasked> m = MaskTokens(t, o, 1, 0);
    EXPECT_FALSE(m.ok());
    EXPECT_EQ(m.status().code(), absl::StatusCode::kInvalidArgument);
    return std::string(m.status().message());
  };
  MlmOptions o = Options(10);
  o.mask_prob = 1.5;
  EXPECT_THAT(error(o), HasSubstr("mask_prob is 1.5: expected a probability "
                                  "in [0, 1]"));
  o = Options(10), o.mask_token = -0.1;
  EXPECT_THAT(error(o), HasSubstr("mask_token is -0.1"));
  o = Options(10), o.random_token = NAN;
  EXPECT_THAT(error(o), HasSubstr("random_token is nan"));
  o = Options(10), o.mask_token = 0.8, o.random_token = 0.3;
  EXPECT_THAT(error(o), HasSubstr("mask_token 0.8 + random_token 0.3 "
                                  "exceeds 1"));
  o = Options(10), o.vocab_size = 0;
  EXPECT_THAT(error(o), HasSubstr("vocab_size is 0"));
  o = Options(10), o.mask_id = 10;
  EXPECT_THAT(error(o), HasSubstr("mask_id 10 is outside the vocabulary "
                                  "[0, 10)"));
  o = Options(10), o.mask_id = -1;
  EXPECT_THAT(error(o), HasSubstr("mask_id -1 is outside"));
  o = Options(10), o.first_random_id = 11;
  EXPECT_THAT(error(o), HasSubstr("first_random_id 11 is outside "
                                  "[0, vocab_size = 10]"));
  // Only the mask id left to draw from.
  o = Options(10), o.first_random_id = 9;
  EXPECT_THAT(error(o), HasSubstr("no id can be drawn"));
  o.random_token = 0.0;  // ... which is fine when nothing is drawn
  EXPECT_TRUE(MaskTokens(tokens, o, 1, 0).ok());
  o = Options(10);
  EXPECT_THAT(error(o, {4, 10, 5}),
              HasSubstr("token 10 at position 1 is outside the vocabulary "
                        "[0, 10)"));
  EXPECT_THAT(error(o, {4, 5, -3}), HasSubstr("token -3 at position 2"));
  // The defaults (mask_id -1) are rejected until the host sets the ids.
  EXPECT_THAT(error(MlmOptions{}), HasSubstr("vocab_size is 0"));
}

}  // namespace
}  // namespace llmsys::data
