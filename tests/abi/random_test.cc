// llmsys/random.h: Philox4x32-10 against the known-answer vectors of
// Random123 (Salmon et al., SC 2011), and the uniform mapping.
#include "llmsys/random.h"

#include <gtest/gtest.h>

#include <cstdint>

namespace {

struct Kat {
  uint32_t counter[4];
  uint32_t key[2];
  uint32_t expected[4];
};

TEST(RandomTest, PhiloxMatchesRandom123KnownAnswers) {
  const Kat kats[] = {
      {{0, 0, 0, 0}, {0, 0}, {0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}},
      {{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff},
       {0xffffffff, 0xffffffff},
       {0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}},
      {{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344},
       {0xa4093822, 0x299f31d0},
       {0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}},
  };
  for (const Kat& k : kats) {
    uint32_t c[4] = {k.counter[0], k.counter[1], k.counter[2], k.counter[3]};
    llmsys_philox4x32_10(c, k.key);
    for (int i = 0; i < 4; ++i) EXPECT_EQ(c[i], k.expected[i]) << i;
  }
}

TEST(RandomTest, ElementsMapToCounterWordsAndUniformsInUnitInterval) {
  // Element i uses counter offset + i / 4, word i % 4.
  uint32_t c[4] = {5, 0, 0, 0};
  const uint32_t key[2] = {42, 0};
  llmsys_philox4x32_10(c, key);
  for (int w = 0; w < 4; ++w)
    EXPECT_EQ(llmsys_random_u32(42, 5, static_cast<uint64_t>(w)), c[w]);
  EXPECT_EQ(llmsys_random_u32(42, 4, 4), c[0]);
  double sum = 0;
  for (uint64_t i = 0; i < 10000; ++i) {
    const float u = llmsys_random_uniform(1, 0, i);
    ASSERT_GE(u, 0.0f);
    ASSERT_LT(u, 1.0f);
    sum += u;
  }
  EXPECT_NEAR(sum / 10000, 0.5, 0.01);
}

}  // namespace
