// tests/framework/data/synthetic_test.cc — the synthetic reversible language
// pair (framework/data/synthetic.h): determinism, the lexicon as a
// bijection, target lengths, and swaps of adjacent words only.
#include "framework/data/synthetic.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace llmsys::data {
namespace {

using ::testing::HasSubstr;

// The ids of a line of words "<prefix><id> ..."; fails on another word.
std::vector<int64_t> Ids(const std::string& line, char prefix) {
  std::vector<int64_t> ids;
  size_t i = 0;
  while (i < line.size()) {
    size_t j = line.find(' ', i);
    if (j == std::string::npos) j = line.size();
    const std::string word = line.substr(i, j - i);
    EXPECT_TRUE(word.size() >= 2 && word[0] == prefix &&
                std::all_of(word.begin() + 1, word.end(),
                            [](char c) { return c >= '0' && c <= '9'; }))
        << "word '" << word << "' in '" << line << "'";
    ids.push_back(std::stoll(word.substr(1)));
    i = j + 1;
  }
  return ids;
}

SyntheticPairs Make(const SyntheticPairOptions& o) {
  absl::StatusOr<SyntheticPairs> data = MakeSyntheticPairs(o);
  EXPECT_TRUE(data.ok()) << data.status();
  return data.ok() ? *std::move(data) : SyntheticPairs{};
}

SyntheticPairOptions Options(double split_fraction, double swap_prob) {
  SyntheticPairOptions o;
  o.seed = 42;
  o.num_pairs = 300;
  o.vocab_size = 20;
  o.min_len = 2;
  o.max_len = 7;
  o.split_fraction = split_fraction;
  o.swap_prob = swap_prob;
  return o;
}

// The target of a source sentence before any swap: its words' lexicon
// entries, concatenated.
std::vector<int64_t> Monotonic(const SyntheticPairs& data,
                               const std::vector<int64_t>& source) {
  std::vector<int64_t> t;
  for (int64_t w : source) {
    const auto& entry = data.lexicon.at(static_cast<size_t>(w));
    t.insert(t.end(), entry.begin(), entry.end());
  }
  return t;
}

TEST(SyntheticPairsTest, SameOptionsSameCorpusOtherSeedAnother) {
  const SyntheticPairOptions o = Options(0.25, 0.3);
  const SyntheticPairs a = Make(o), b = Make(o);
  EXPECT_EQ(a.corpus.source, b.corpus.source);
  EXPECT_EQ(a.corpus.target, b.corpus.target);
  EXPECT_EQ(a.lexicon, b.lexicon);
  ASSERT_EQ(a.corpus.size(), 300u);
  EXPECT_EQ(a.corpus.target.size(), 300u);
  EXPECT_THAT(a.corpus.source_name, HasSubstr("seed 42"));

  SyntheticPairOptions other = o;
  other.seed = 43;
  const SyntheticPairs c = Make(other);
  EXPECT_NE(a.corpus.source, c.corpus.source);
  EXPECT_NE(a.lexicon, c.lexicon);
  // Pair p depends on p alone: a longer corpus starts with the shorter.
  SyntheticPairOptions longer = o;
  longer.num_pairs = 310;
  const SyntheticPairs d = Make(longer);
  EXPECT_TRUE(std::equal(a.corpus.target.begin(), a.corpus.target.end(),
                         d.corpus.target.begin()));
}

// Source word w always becomes lexicon[w]; every target id belongs to
// exactly one source word, so a target sentence parses back to its source.
TEST(SyntheticPairsTest, MonotonicMapIsABijectionOnWords) {
  const SyntheticPairs data = Make(Options(0.25, 0.0));
  ASSERT_EQ(data.lexicon.size(), 20u);
  EXPECT_EQ(data.target_vocab_size, 25);                // 5 of 20 words split
  std::map<int64_t, std::pair<int64_t, size_t>> owner;  // target -> (w, i)
  int64_t split = 0;
  for (size_t w = 0; w < data.lexicon.size(); ++w) {
    const auto& entry = data.lexicon[w];
    ASSERT_TRUE(entry.size() == 1 || entry.size() == 2) << "s" << w;
    split += entry.size() == 2;
    for (size_t i = 0; i < entry.size(); ++i) {
      ASSERT_GE(entry[i], 0);
      ASSERT_LT(entry[i], data.target_vocab_size);
      ASSERT_TRUE(owner.emplace(entry[i], std::make_pair(w, i)).second)
          << "t" << entry[i] << " belongs to two source words";
    }
  }
  EXPECT_EQ(split, 5);
  EXPECT_EQ(owner.size(), 25u);

  // Observed in the corpus (without the lexicon): each source word is always
  // followed by the same target words at its place in the target.
  std::map<int64_t, std::vector<int64_t>> seen;
  std::set<int64_t> used_sources;
  for (size_t p = 0; p < data.corpus.size(); ++p) {
    const std::vector<int64_t> s = Ids(data.corpus.source[p], 's');
    const std::vector<int64_t> t = Ids(data.corpus.target[p], 't');
    ASSERT_EQ(t, Monotonic(data, s)) << "pair " << p;
    // The inverse: parse the target with `owner`, word by word.
    std::vector<int64_t> back;
    for (size_t i = 0; i < t.size();) {
      const auto [w, pos] = owner.at(t[i]);
      ASSERT_EQ(pos, 0u) << "pair " << p << " starts a word mid-entry";
      back.push_back(w);
      const size_t n = data.lexicon[static_cast<size_t>(w)].size();
      const std::vector<int64_t> piece(t.begin() + static_cast<long>(i),
                                       t.begin() + static_cast<long>(i + n));
      auto [it, fresh] = seen.emplace(w, piece);
      EXPECT_EQ(it->second, piece) << "s" << w << " mapped two ways";
      i += n;
    }
    EXPECT_EQ(back, s) << "pair " << p;
    used_sources.insert(s.begin(), s.end());
  }
  EXPECT_EQ(used_sources.size(), 20u);  // 300 sentences use every word
}

TEST(SyntheticPairsTest, TargetLengthIsSourceLengthPlusSplitWords) {
  for (double swap : {0.0, 0.5}) {
    const SyntheticPairs data = Make(Options(0.5, swap));
    std::set<size_t> lengths;
    for (size_t p = 0; p < data.corpus.size(); ++p) {
      const std::vector<int64_t> s = Ids(data.corpus.source[p], 's');
      const std::vector<int64_t> t = Ids(data.corpus.target[p], 't');
      size_t split = 0;
      for (int64_t w : s)
        split += data.lexicon[static_cast<size_t>(w)].size() == 2;
      EXPECT_EQ(t.size(), s.size() + split) << "pair " << p;
      lengths.insert(s.size());
    }
    // Uniform in [2, 7]: both ends and everything between occur.
    EXPECT_EQ(lengths, (std::set<size_t>{2, 3, 4, 5, 6, 7}));
  }
  // No split words: the lengths agree; every word split: twice as long.
  for (const auto& [fraction, factor] :
       {std::pair<double, size_t>{0.0, 1}, {1.0, 2}}) {
    const SyntheticPairs data = Make(Options(fraction, 0.0));
    for (size_t p = 0; p < data.corpus.size(); ++p)
      EXPECT_EQ(Ids(data.corpus.target[p], 't').size(),
                factor * Ids(data.corpus.source[p], 's').size());
  }
}

// With swap_prob, the target is the monotonic target with some disjoint
// adjacent transpositions: each word at most one place away.
TEST(SyntheticPairsTest, SwapsOnlyExchangeAdjacentWords) {
  const SyntheticPairs data = Make(Options(0.25, 0.4));
  int64_t swaps = 0, slots = 0;
  for (size_t p = 0; p < data.corpus.size(); ++p) {
    const std::vector<int64_t> m =
        Monotonic(data, Ids(data.corpus.source[p], 's'));
    const std::vector<int64_t> t = Ids(data.corpus.target[p], 't');
    ASSERT_EQ(t.size(), m.size()) << "pair " << p;
    slots += static_cast<int64_t>(m.size()) - 1;
    for (size_t i = 0; i < m.size();) {
      if (t[i] == m[i]) {
        ++i;
      } else {
        ASSERT_LT(i + 1, m.size()) << "pair " << p;
        ASSERT_EQ(t[i], m[i + 1]) << "pair " << p << " word " << i;
        ASSERT_EQ(t[i + 1], m[i]) << "pair " << p << " word " << i;
        ++swaps;
        i += 2;
      }
    }
  }
  // Some but not all slots swapped (about swap_prob of the free slots).
  EXPECT_GT(swaps, slots / 10);
  EXPECT_LT(swaps, slots / 2);

  // swap_prob 1 swaps every pair it can, left to right.
  SyntheticPairOptions all = Options(0.0, 1.0);
  const SyntheticPairs d = Make(all);
  const std::vector<int64_t> s = Ids(d.corpus.source[0], 's');
  std::vector<int64_t> expected = Monotonic(d, s);
  for (size_t i = 0; i + 1 < expected.size(); i += 2)
    std::swap(expected[i], expected[i + 1]);
  EXPECT_EQ(Ids(d.corpus.target[0], 't'), expected);
}

TEST(SyntheticPairsTest, BadOptionsSayWhatIsWrong) {
  auto error = [](SyntheticPairOptions o) {
    absl::StatusOr<SyntheticPairs> r = MakeSyntheticPairs(o);
    EXPECT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
    return std::string(r.status().message());
  };
  SyntheticPairOptions o = Options(0.0, 0.0);
  o.num_pairs = 0;
  EXPECT_THAT(error(o), HasSubstr("num_pairs 0 is invalid: expected 1 to"));
  o = Options(0.0, 0.0);
  o.vocab_size = -3;
  EXPECT_THAT(error(o), HasSubstr("vocab_size -3 is invalid"));
  o = Options(0.0, 0.0);
  o.min_len = 5;
  o.max_len = 3;
  EXPECT_THAT(error(o), HasSubstr("min_len 5 is larger than max_len 3"));
  o = Options(0.0, 0.0);
  o.min_len = 0;
  EXPECT_THAT(error(o), HasSubstr("min_len 0 is invalid"));
  o = Options(1.5, 0.0);
  EXPECT_THAT(error(o),
              HasSubstr("split_fraction 1.5 is out of range: expected a "
                        "fraction in [0, 1]"));
  o = Options(0.0, std::numeric_limits<double>::quiet_NaN());
  EXPECT_THAT(error(o), HasSubstr("swap_prob nan is out of range"));
  o = Options(0.0, -0.1);
  EXPECT_THAT(error(o), HasSubstr("swap_prob -0.1 is out of range"));
}

}  // namespace
}  // namespace llmsys::data
