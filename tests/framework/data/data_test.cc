// tests/framework/data/data_test.cc — corpora, tokenizers and batching.
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "framework/data/batching.h"
#include "framework/data/corpus.h"
#include "framework/data/tokenizer.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace llmsys::data {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

namespace fs = std::filesystem;

fs::path TempPath(const std::string& name) {
  fs::path dir = fs::path(::testing::TempDir()) / "llmsys_data_test";
  fs::create_directories(dir);
  return dir / name;
}

fs::path Write(const std::string& name, const std::string& text,
               bool gzip = false) {
  fs::path p = TempPath(name);
  absl::Status s = WriteTextFile(p, text, gzip);
  EXPECT_TRUE(s.ok()) << s;
  return p;
}

// A file's bytes, without gunzipping.
std::string ReadRaw(const fs::path& path) {
  std::string bytes;
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) return bytes;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), f)) > 0) bytes.append(buf, n);
  std::fclose(f);
  return bytes;
}

// Tricky byte strings for the round trips.
std::vector<std::string> TrickyTexts() {
  return {
      "",
      " ",
      "a",
      "Hello, world!",
      "  leading and   inner   spaces  ",
      "tabs\t\tand\nnewlines\n\n\r\n  \n",
      "emoji \xF0\x9F\x98\x80\xF0\x9F\x91\x8D\xF0\x9F\x8F\xBD ok",
      "Gr\xC3\xBC\xC3\x9F"
      "e aus K\xC3\xB6ln, \xE2\x82\xAC"
      "100",
      "invalid \xFF\xFE \xC3 \x80\x80 \xED\xA0\x80 bytes",
      std::string("nul\0inside", 10),
      "digits 12345 67 and x2y3",
      "don't stop-believing!!! ...",
      std::string(300, ' ') + "x" + std::string(50, '-'),
  };
}

// ---- corpora ----

TEST(CorpusTest, PlainAndGzipLoadTheSameText) {
  std::string text = "First line\nSecond line\n\xC3\xA9t\xC3\xA9\n";
  fs::path plain = Write("plain.txt", text);
  fs::path gz = Write("compressed.txt.gz", text, /*gzip=*/true);
  absl::StatusOr<std::string> a = ReadTextFile(plain);
  absl::StatusOr<std::string> b = ReadTextFile(gz);
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(*a, text);
  EXPECT_EQ(*b, text);
  // A gzip file is recognized by its bytes, whatever its name.
  fs::path unnamed = Write("compressed-without-suffix", text, true);
  EXPECT_EQ(*ReadTextFile(unnamed), text);
}

TEST(CorpusTest, ConcatenatedGzipMembersReadAsOne) {
  // Two gzip files joined, as `cat a.gz b.gz` makes.
  std::string joined = ReadRaw(Write("a.gz", "one\n", true)) +
                       ReadRaw(Write("b.gz", "two\n", true));
  absl::StatusOr<std::string> text = ReadTextFile(Write("both.gz", joined));
  ASSERT_TRUE(text.ok()) << text.status();
  EXPECT_EQ(*text, "one\ntwo\n");
}

TEST(CorpusTest, MissingFileIsNamed) {
  absl::StatusOr<TextCorpus> c = TextCorpus::Load(TempPath("nope.txt"));
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(c.status().message(), HasSubstr("nope.txt"));
}

TEST(CorpusTest, EmptyCorpusIsAnError) {
  absl::StatusOr<TextCorpus> c = TextCorpus::Load(Write("empty.txt", ""));
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(c.status().message(), HasSubstr("empty.txt is empty"));
  // Also when the emptiness is inside gzip.
  c = TextCorpus::Load(Write("empty.txt.gz", "", true));
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(c.status().message(), HasSubstr("is empty"));
}

TEST(CorpusTest, GzNameWithoutGzipBytesSaysSo) {
  absl::StatusOr<std::string> t = ReadTextFile(Write("fake.gz", "plain\n"));
  ASSERT_FALSE(t.ok());
  EXPECT_THAT(t.status().message(),
              HasSubstr("fake.gz is named .gz but is not gzip"));
}

TEST(CorpusTest, TruncatedAndCorruptGzipAreDataLoss) {
  std::string big;
  for (int i = 0; i < 2000; ++i) big += "line " + std::to_string(i) + "\n";
  fs::path gz = Write("full.gz", big, true);
  std::string bytes = ReadRaw(gz);
  absl::StatusOr<std::string> t =
      ReadTextFile(Write("cut.gz", bytes.substr(0, bytes.size() / 2)));
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(t.status().message(), HasSubstr("cut.gz"));
  std::string corrupt = bytes;
  for (size_t i = 12; i < 40 && i < corrupt.size(); ++i) corrupt[i] ^= 0x5a;
  t = ReadTextFile(Write("corrupt.gz", corrupt));
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().code(), absl::StatusCode::kDataLoss);
}

TEST(CorpusTest, InvalidUtf8IsKeptAsBytes) {
  std::string text = "ok \xFF\xFE\xC3 end";
  absl::StatusOr<TextCorpus> c =
      TextCorpus::Load(Write("bytes.txt", text), 0.0);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->train(), text);
  EXPECT_EQ(c->validation(), "");
}

TEST(CorpusTest, SplitTakesValidationFromTheEnd) {
  std::string text;
  for (int i = 0; i < 100; ++i) text += static_cast<char>('a' + i % 26);
  absl::StatusOr<TextCorpus> c = TextCorpus::FromText(text, 0.1);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->train(), text.substr(0, 90));
  EXPECT_EQ(c->validation(), text.substr(90));
  c = TextCorpus::FromText(text, 0.25);
  EXPECT_EQ(c->train().size(), 75u);
  // nanoGPT's int(0.9 * n) on tiny Shakespeare's 1,115,394 characters.
  EXPECT_EQ(*TrainSize(1115394, 0.1), 1003854u);
  EXPECT_FALSE(TrainSize(10, 1.0).ok());
  EXPECT_FALSE(TrainSize(10, -0.1).ok());
  auto [train, val] = *SplitTokens({1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, 0.2);
  EXPECT_THAT(train, ElementsAre(1, 2, 3, 4, 5, 6, 7, 8));
  EXPECT_THAT(val, ElementsAre(9, 10));
}

TEST(CorpusTest, SplitDoesNotCutACharacter) {
  // 9 ASCII bytes then a 3-byte euro sign: the 10% cut of 12 bytes falls at
  // byte 10, inside the euro sign; it moves back to byte 9.
  std::string text = "abcdefghi\xE2\x82\xAC";
  absl::StatusOr<TextCorpus> c = TextCorpus::FromText(text, 0.1);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->train(), "abcdefghi");
  EXPECT_EQ(c->validation(), "\xE2\x82\xAC");
}

TEST(CorpusTest, TinyShakespeareLoads) {
  absl::StatusOr<TextCorpus> c = TextCorpus::Load(
      fs::path(LLMSYS_SOURCE_DIR) / "data/tinyshakespeare/input.txt", 0.1);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->text().size(), 1115394u);
  EXPECT_EQ(c->train().size(), 1003854u);
  EXPECT_EQ(c->text().substr(0, 14), "First Citizen:");
}

TEST(ParallelCorpusTest, LoadsAlignedFilesPlainOrGzip) {
  fs::path en = Write("p.en", "A dog.\r\nTwo cats.\n\nEnd\n");
  fs::path de = Write("p.de.gz", "Ein Hund.\nZwei Katzen.\n\nEnde", true);
  absl::StatusOr<ParallelCorpus> c = ParallelCorpus::Load(de, en);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->size(), 4u);
  EXPECT_THAT(c->target, ElementsAre("A dog.", "Two cats.", "", "End"));
  EXPECT_THAT(c->source, ElementsAre("Ein Hund.", "Zwei Katzen.", "", "Ende"));
}

TEST(ParallelCorpusTest, MismatchNamesBothFilesAndCounts) {
  fs::path a = Write("m.en", "one\ntwo\nthree\n");
  fs::path b = Write("m.de", "eins\nzwei\n");
  absl::StatusOr<ParallelCorpus> c = ParallelCorpus::Load(a, b);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(c.status().message(), HasSubstr("m.en has 3 lines"));
  EXPECT_THAT(c.status().message(), HasSubstr("m.de has 2"));
  c = ParallelCorpus::Load(a, TempPath("missing.de"));
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(c.status().message(), HasSubstr("missing.de"));
}

TEST(ParallelCorpusTest, Multi30kTrainIsAligned) {
  fs::path dir = fs::path(LLMSYS_SOURCE_DIR) / "data/multi30k";
  absl::StatusOr<ParallelCorpus> c =
      ParallelCorpus::Load(dir / "train.de.gz", dir / "train.en.gz");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->size(), 29000u);
}

// ---- tokenizers ----

TEST(SplitWordsTest, Gpt2StyleWords) {
  EXPECT_THAT(
      SplitWords("Hello world, it's 2024!!"),
      ElementsAre("Hello", " world", ",", " it", "'", "s", " 2024", "!!"));
  EXPECT_THAT(SplitWords("a   b\n\nc  "),
              ElementsAre("a", "  ", " b", "\n\n", "c", "  "));
  EXPECT_THAT(SplitWords("K\xC3\xB6ln x1"),
              ElementsAre("K\xC3\xB6ln", " x", "1"));
  EXPECT_TRUE(SplitWords("").empty());
  for (const std::string& t : TrickyTexts()) {
    std::string joined;
    for (std::string_view w : SplitWords(t)) joined += w;
    EXPECT_EQ(joined, t);
  }
}

TEST(CharTokenizerTest, SortedCodePointsAndRoundTrip) {
  CharTokenizer tok = CharTokenizer::Train("hello \xC3\xA9t\xC3\xA9 \xFF");
  // Specials, then ' ', 'e', 'h', 'l', 'o', 't', 0xFF, U+00E9 (C3 A9).
  EXPECT_EQ(tok.vocab_size(), kNumSpecialTokens + 8);
  EXPECT_THAT(tok.tokens(),
              ElementsAre(" ", "e", "h", "l", "o", "t", "\xC3\xA9", "\xFF"));
  std::string text = "hello \xC3\xA9t\xC3\xA9 \xFF";
  std::vector<int32_t> ids = tok.Encode(text);
  EXPECT_EQ(ids.size(), 11u);  // 11 characters
  EXPECT_EQ(*tok.Decode(ids), text);
  // Unseen characters are <unk>, decoded as U+FFFD; specials decode to "".
  EXPECT_THAT(tok.Encode("hz\xE2\x82\xAC"), ElementsAre(6, kUnkId, kUnkId));
  EXPECT_EQ(*tok.Decode({kBosId, 6, kUnkId, kEosId, kPadId}), "h\xEF\xBF\xBD");
  absl::StatusOr<std::string> bad = tok.Decode({tok.vocab_size()});
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.status().message(), HasSubstr("token id 12 is out of range"));
}

TEST(CharTokenizerTest, TrickyTextsRoundTripWhenTrainedOnThem) {
  for (const std::string& t : TrickyTexts()) {
    CharTokenizer tok = CharTokenizer::Train(t);
    EXPECT_EQ(*tok.Decode(tok.Encode(t)), t);
  }
}

TEST(BpeTokenizerTest, RoundTripsAnyBytes) {
  std::string train;
  for (const std::string& t : TrickyTexts()) train += t;
  for (int i = 0; i < 20; ++i) train += " the quick brown fox jumps over";
  absl::StatusOr<BpeTokenizer> tok = BpeTokenizer::Train(train, {400, 2});
  ASSERT_TRUE(tok.ok()) << tok.status();
  EXPECT_GT(tok->vocab_size(), BpeTokenizer::kFirstMergeId);
  std::string all_bytes;
  for (int b = 0; b < 256; ++b) all_bytes += static_cast<char>(b);
  std::vector<std::string> texts = TrickyTexts();
  texts.push_back(all_bytes);
  texts.push_back(" the quick brown fox jumps over the lazy dog");
  for (const std::string& t : texts) {
    std::vector<int32_t> ids = tok->Encode(t);
    absl::StatusOr<std::string> back = tok->Decode(ids);
    ASSERT_TRUE(back.ok());
    EXPECT_EQ(*back, t);
  }
  EXPECT_TRUE(tok->Encode("").empty());
  // Merges compress the training phrase.
  EXPECT_LT(tok->Encode(" the quick brown fox").size(), 8u);
}

TEST(BpeTokenizerTest, KnownMergesOnASmallText) {
  // "aaab" x3 as one word: pairs (a,a)=6, (a,b)=3. First merge is (a,a).
  absl::StatusOr<BpeTokenizer> tok =
      BpeTokenizer::Train("aaab aaab aaab", {BpeTokenizer::kFirstMergeId + 2});
  ASSERT_TRUE(tok.ok());
  const int32_t a = BpeTokenizer::kFirstByteId + 'a';
  const int32_t b = BpeTokenizer::kFirstByteId + 'b';
  const int32_t sp = BpeTokenizer::kFirstByteId + ' ';
  ASSERT_EQ(tok->merges().size(), 2u);
  // Words: "aaab" x1, " aaab" x2. Pair counts: (a,a) 6, (a,b) 3, (sp,a) 2.
  EXPECT_EQ(tok->merges()[0], std::make_pair(a, a));
  // After it: "aa a b": (aa,a) 3, (a,b) 3, (sp,aa) 2: tie broken by the
  // smaller pair, (a, b) (a < aa).
  EXPECT_EQ(tok->merges()[1], std::make_pair(a, b));
  EXPECT_EQ(tok->TokenBytes(BpeTokenizer::kFirstMergeId + 1), "ab");
  EXPECT_THAT(tok->Encode(" aaab"),
              ElementsAre(sp, BpeTokenizer::kFirstMergeId,
                          BpeTokenizer::kFirstMergeId + 1));
  EXPECT_FALSE(BpeTokenizer::Train("x", {100}).ok());
}

TEST(BpeTokenizerTest, TrainingIsDeterministic) {
  absl::StatusOr<TextCorpus> c = TextCorpus::Load(
      fs::path(LLMSYS_SOURCE_DIR) / "data/tinyshakespeare/input.txt", 0.1);
  ASSERT_TRUE(c.ok()) << c.status();
  std::string_view text = c->train().substr(0, 200000);
  absl::StatusOr<BpeTokenizer> a = BpeTokenizer::Train(text, {1000});
  absl::StatusOr<BpeTokenizer> b = BpeTokenizer::Train(text, {1000});
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->vocab_size(), 1000);
  EXPECT_EQ(a->merges(), b->merges());
  // The first merge joins two bytes.
  EXPECT_LT(a->merges()[0].first, BpeTokenizer::kFirstMergeId);
  EXPECT_LT(a->merges()[0].second, BpeTokenizer::kFirstMergeId);
  std::vector<int32_t> ids = a->Encode(c->validation());
  EXPECT_EQ(*a->Decode(ids), c->validation());
  EXPECT_LT(ids.size(), c->validation().size() / 2);  // it compresses
}

// The textbook trainer: recount every pair of every word for each merge.
std::vector<std::pair<int32_t, int32_t>> NaiveBpeMerges(std::string_view text,
                                                        int32_t vocab_size) {
  std::map<std::string, int64_t> counts;
  for (std::string_view w : SplitWords(text)) ++counts[std::string(w)];
  std::vector<std::vector<int32_t>> words;
  std::vector<int64_t> freq;
  for (const auto& [w, c] : counts) {
    std::vector<int32_t> s;
    for (unsigned char b : w) s.push_back(BpeTokenizer::kFirstByteId + b);
    words.push_back(s);
    freq.push_back(c);
  }
  std::vector<std::pair<int32_t, int32_t>> merges;
  for (int32_t id = BpeTokenizer::kFirstMergeId; id < vocab_size; ++id) {
    std::map<std::pair<int32_t, int32_t>, int64_t> pairs;
    for (size_t w = 0; w < words.size(); ++w) {
      for (size_t i = 0; i + 1 < words[w].size(); ++i) {
        pairs[{words[w][i], words[w][i + 1]}] += freq[w];
      }
    }
    std::pair<int32_t, int32_t> best;
    int64_t best_count = 0;
    for (const auto& [p, c] : pairs) {  // ascending: the first max wins
      if (c > best_count) best = p, best_count = c;
    }
    if (best_count < 2) break;
    merges.push_back(best);
    for (auto& s : words) {
      std::vector<int32_t> out;
      for (size_t i = 0; i < s.size(); ++i) {
        if (i + 1 < s.size() && s[i] == best.first && s[i + 1] == best.second) {
          out.push_back(id);
          ++i;
        } else {
          out.push_back(s[i]);
        }
      }
      s = out;
    }
  }
  return merges;
}

TEST(BpeTokenizerTest, IncrementalTrainingMatchesFullRecount) {
  absl::StatusOr<TextCorpus> c = TextCorpus::Load(
      fs::path(LLMSYS_SOURCE_DIR) / "data/tinyshakespeare/input.txt", 0.1);
  ASSERT_TRUE(c.ok()) << c.status();
  std::string text =
      std::string(c->train().substr(0, 30000)) +
      "aaaa aaaa aaaaaa \xFF\xFF\xFF \xF0\x9F\x98\x80\xF0\x9F\x98\x80";
  absl::StatusOr<BpeTokenizer> tok = BpeTokenizer::Train(text, {700});
  ASSERT_TRUE(tok.ok());
  EXPECT_EQ(tok->merges(), NaiveBpeMerges(text, 700));
}

// The textbook encoder: the earliest-learnt merge present, everywhere, until
// none is.
std::vector<int32_t> NaiveEncodeWord(const BpeTokenizer& tok,
                                     std::string_view word) {
  std::vector<int32_t> s;
  for (unsigned char b : word) s.push_back(BpeTokenizer::kFirstByteId + b);
  const auto& merges = tok.merges();
  while (true) {
    size_t best = merges.size();
    for (size_t i = 0; i + 1 < s.size(); ++i) {
      for (size_t m = 0; m < best; ++m) {
        if (merges[m] == std::make_pair(s[i], s[i + 1])) best = m;
      }
    }
    if (best == merges.size()) return s;
    std::vector<int32_t> out;
    for (size_t i = 0; i < s.size(); ++i) {
      if (i + 1 < s.size() && std::make_pair(s[i], s[i + 1]) == merges[best]) {
        out.push_back(BpeTokenizer::kFirstMergeId + static_cast<int32_t>(best));
        ++i;
      } else {
        out.push_back(s[i]);
      }
    }
    s = out;
  }
}

TEST(BpeTokenizerTest, LongWordsEncodeAsShortOnesDo) {
  std::string train;
  for (int i = 0; i < 50; ++i) {
    train += " abcabcab aaaa ----- ==--== xyzzy abab aaaaaaa";
  }
  absl::StatusOr<BpeTokenizer> tok = BpeTokenizer::Train(train, {320});
  ASSERT_TRUE(tok.ok());
  std::vector<std::string> words = {
      std::string(101, 'a'),
      std::string(77, '-'),
      "==--==--==--==--==--==--==--==--==--==--==--==--==",
  };
  std::string mixed;
  for (int i = 0; i < 40; ++i) mixed += "abcab"[i % 5];
  words.push_back(mixed + "xyzzyxyzzy" + mixed);
  for (const std::string& w : words) {
    ASSERT_EQ(SplitWords(w).size(), 1u) << w;
    EXPECT_EQ(tok->Encode(w), NaiveEncodeWord(*tok, w)) << w;
    EXPECT_EQ(*tok->Decode(tok->Encode(w)), w);
  }
  // A megabyte without a space takes about a second, not hours (O(n log n)).
  std::string huge(1 << 20, '-');
  auto t0 = std::chrono::steady_clock::now();
  std::vector<int32_t> ids = tok->Encode(huge);
  double s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0)
          .count();
  std::printf("1 MiB word encoded to %zu tokens in %.3f s\n", ids.size(), s);
  EXPECT_EQ(*tok->Decode(ids), huge);
}

TEST(TokenizerFileTest, SaveLoadRoundTrip) {
  std::string text =
      "Tiny text, with \xC3\xA9m\xC3\xB8ji \xF0\x9F\x98\x80 "
      "and \xFF raw bytes. Tiny text again.";
  for (const char* kind : {"char", "bpe"}) {
    absl::StatusOr<std::unique_ptr<Tokenizer>> tok =
        TrainTokenizer(kind, text, {300, 2});
    ASSERT_TRUE(tok.ok()) << tok.status();
    fs::path path = TempPath(std::string(kind) + ".json");
    ASSERT_TRUE((*tok)->Save(path).ok());
    absl::StatusOr<std::unique_ptr<Tokenizer>> loaded = LoadTokenizer(path);
    ASSERT_TRUE(loaded.ok()) << loaded.status();
    EXPECT_EQ((*loaded)->type(), kind);
    EXPECT_EQ((*loaded)->vocab_size(), (*tok)->vocab_size());
    EXPECT_EQ((*loaded)->Encode(text), (*tok)->Encode(text));
    EXPECT_EQ(*(*loaded)->Decode((*loaded)->Encode(text)), text);
    for (int32_t id = 0; id < (*tok)->vocab_size(); ++id) {
      EXPECT_EQ((*loaded)->TokenBytes(id), (*tok)->TokenBytes(id));
    }
  }
  absl::StatusOr<std::unique_ptr<Tokenizer>> bad =
      TrainTokenizer("wordpiece", text);
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.status().message(), HasSubstr("expected one of char, bpe"));
}

TEST(TokenizerFileTest, CorruptOrWrongVersionFilesAreClearErrors) {
  auto load_error = [](const std::string& name, const std::string& content) {
    absl::StatusOr<std::unique_ptr<Tokenizer>> t =
        LoadTokenizer(Write(name, content));
    EXPECT_FALSE(t.ok()) << name;
    return t.ok() ? std::string() : std::string(t.status().message());
  };
  EXPECT_THAT(load_error("trunc.json", "{\"format\": \"llmsys-tok"),
              HasSubstr("trunc.json is not a tokenizer file: it is not "
                        "valid JSON"));
  EXPECT_THAT(load_error("other.json", "{\"hello\": 1}"),
              HasSubstr("not a tokenizer file"));
  EXPECT_THAT(
      load_error("v9.json",
                 "{\"format\": \"llmsys-tokenizer\", \"version\": 9, "
                 "\"type\": \"bpe\", \"merges\": []}"),
      HasSubstr("v9.json: it is format version 9, this build reads version "
                "1"));
  EXPECT_THAT(load_error("badmerge.json",
                         "{\"format\": \"llmsys-tokenizer\", \"version\": 1, "
                         "\"type\": \"bpe\", \"merges\": [[4, 5], [4, 9999]]}"),
              HasSubstr("bpe merge 1 [4, 9999] is invalid"));
  EXPECT_THAT(load_error("wrongtype.json",
                         "{\"format\": \"llmsys-tokenizer\", \"version\": 1, "
                         "\"type\": \"bpe\", \"merges\": \"oops\"}"),
              HasSubstr("wrongtype.json"));
  EXPECT_THAT(load_error("dup.json",
                         "{\"format\": \"llmsys-tokenizer\", \"version\": 1, "
                         "\"type\": \"char\", \"tokens\": [\"a\", \"a\"]}"),
              HasSubstr("repeats"));
  EXPECT_THAT(
      load_error("size.json",
                 "{\"format\": \"llmsys-tokenizer\", \"version\": 1, "
                 "\"type\": \"char\", \"vocab_size\": 9, \"tokens\": [\"a\"]}"),
      HasSubstr("vocab_size 9"));
  EXPECT_THAT(load_error("specials.json",
                         "{\"format\": \"llmsys-tokenizer\", \"version\": 1, "
                         "\"type\": \"bpe\", \"special_tokens\": {\"<pad>\": "
                         "7}, \"merges\": []}"),
              HasSubstr("expected <pad> to be id 0"));
  absl::StatusOr<std::unique_ptr<Tokenizer>> missing =
      LoadTokenizer(TempPath("absent.json"));
  ASSERT_FALSE(missing.ok());
  EXPECT_THAT(missing.status().message(), HasSubstr("absent.json"));
}

TEST(BpeTokenizerTest, Multi30kSpeed) {
  fs::path dir = fs::path(LLMSYS_SOURCE_DIR) / "data/multi30k";
  absl::StatusOr<std::string> en = ReadTextFile(dir / "train.en.gz");
  absl::StatusOr<std::string> de = ReadTextFile(dir / "train.de.gz");
  ASSERT_TRUE(en.ok() && de.ok());
  std::string text = *en + *de;
  auto t0 = std::chrono::steady_clock::now();
  absl::StatusOr<BpeTokenizer> tok = BpeTokenizer::Train(text, {8000});
  auto t1 = std::chrono::steady_clock::now();
  ASSERT_TRUE(tok.ok()) << tok.status();
  std::vector<int32_t> ids = tok->Encode(text);
  auto t2 = std::chrono::steady_clock::now();
  std::printf(
      "BPE on Multi30k train.en+train.de (%zu bytes): vocabulary %d trained "
      "in %.2f s; encoding to %zu tokens took %.2f s\n",
      text.size(), tok->vocab_size(),
      std::chrono::duration<double>(t1 - t0).count(), ids.size(),
      std::chrono::duration<double>(t2 - t1).count());
  EXPECT_EQ(tok->vocab_size(), 8000);
  EXPECT_EQ(*tok->Decode(ids), text);
}

// ---- batching ----

std::vector<int32_t> Iota(int n) {
  std::vector<int32_t> v(n);
  for (int i = 0; i < n; ++i) v[i] = i;
  return v;
}

TEST(BatchingTest, PhiloxWordsAreFixed) {
  // Philox4x32-10 of counter 0, key 0 is 6627e8d5 e169c58d bc57ac4c
  // 9b00dbd8 (Random123's known answer); word k joins words 2k and 2k+1.
  // These, the starts and the order below were checked against an
  // independent Python Philox: a change in the derivation breaks them.
  EXPECT_EQ(RandomU64(0, 0, 0), 0x6627e8d5e169c58dULL);
  EXPECT_EQ(RandomU64(1337, 0, 1), 15796851261242682590ULL);
  EXPECT_EQ(RandomIndex(1337, 0, 1, 16), 14u);
}

TEST(BatchingTest, LmBatchesAreDeterministicAndPinned) {
  absl::StatusOr<LmBatcher> b = LmBatcher::Create(Iota(20), 2, 4, 1337);
  ASSERT_TRUE(b.ok()) << b.status();
  LmBatch first = b->Next();
  EXPECT_EQ(first.batch_size, 2);
  EXPECT_EQ(first.block_size, 4);
  // Windows of the identity stream: x = starts + [0, 4), y = x + 1.
  for (int r = 0; r < 2; ++r) {
    for (int t = 0; t < 4; ++t) {
      EXPECT_EQ(first.x[r * 4 + t], first.starts[r] + t);
      EXPECT_EQ(first.y[r * 4 + t], first.starts[r] + t + 1);
    }
  }
  EXPECT_THAT(first.starts, ElementsAre(10, 14));  // pinned
  absl::StatusOr<LmBatcher> again = LmBatcher::Create(Iota(20), 2, 4, 1337);
  EXPECT_EQ(again->Next().starts, first.starts);
  EXPECT_EQ(again->At(5).starts, b->At(5).starts);
  absl::StatusOr<LmBatcher> other = LmBatcher::Create(Iota(20), 2, 4, 7);
  std::vector<int64_t> mix;
  for (int s = 0; s < 4; ++s) {
    for (int64_t v : other->Next().starts) mix.push_back(v);
  }
  // Every start is a valid one: a window and its target fit.
  for (int64_t v : mix) {
    EXPECT_GE(v, 0);
    EXPECT_LE(v, 15);
  }
}

TEST(BatchingTest, LmBatcherResumesExactly) {
  absl::StatusOr<LmBatcher> a = LmBatcher::Create(Iota(1000), 4, 8, 42);
  for (int i = 0; i < 3; ++i) a->Next();
  BatcherState saved = a->state();
  EXPECT_EQ(saved.step, 3);
  LmBatch expected = a->Next();
  absl::StatusOr<LmBatcher> b = LmBatcher::Create(Iota(1000), 4, 8, 42);
  ASSERT_TRUE(b->Restore(saved).ok());
  EXPECT_EQ(b->Next().x, expected.x);
  BatcherState wrong = saved;
  wrong.seed = 43;
  EXPECT_FALSE(b->Restore(wrong).ok());
}

TEST(BatchingTest, BlockSizeMustFitTheData) {
  absl::StatusOr<LmBatcher> b =
      LmBatcher::Create(Iota(100), 4, 256, 0, "validation");
  ASSERT_FALSE(b.ok());
  EXPECT_THAT(b.status().message(),
              HasSubstr("block size 256 is larger than the data: 100 "
                        "tokens in validation"));
  EXPECT_FALSE(LmBatcher::Create(Iota(100), 4, 100, 0).ok());
  EXPECT_TRUE(LmBatcher::Create(Iota(100), 4, 99, 0).ok());
  EXPECT_FALSE(LmBatcher::Create(Iota(100), 0, 10, 0).ok());
  EXPECT_FALSE(LmEvalBatches::Create(Iota(10), 1, 10).ok());
}

TEST(BatchingTest, EvalBatchesAreSequentialWindows) {
  // 23 tokens, T = 5: windows at 0, 5, 10, 15 ((23 - 1) / 5 = 4), B = 3.
  absl::StatusOr<LmEvalBatches> e = LmEvalBatches::Create(Iota(23), 3, 5);
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->num_windows(), 4);
  EXPECT_EQ(e->num_batches(), 2);
  std::optional<LmBatch> b1 = e->Next();
  ASSERT_TRUE(b1.has_value());
  EXPECT_THAT(b1->starts, ElementsAre(0, 5, 10));
  EXPECT_EQ(b1->y[14], 15);
  BatcherState mid = e->state();
  std::optional<LmBatch> b2 = e->Next();
  ASSERT_TRUE(b2.has_value());
  EXPECT_EQ(b2->batch_size, 1);
  EXPECT_THAT(b2->x, ElementsAre(15, 16, 17, 18, 19));
  EXPECT_THAT(b2->y, ElementsAre(16, 17, 18, 19, 20));
  EXPECT_FALSE(e->Next().has_value());
  ASSERT_TRUE(e->Restore(mid).ok());
  EXPECT_EQ(e->Next()->starts, b2->starts);
  e->Reset();
  EXPECT_EQ(e->Next()->starts, b1->starts);
}

TEST(BatchingTest, ParallelBatchesShufflePadAndResume) {
  std::vector<std::vector<int32_t>> src, tgt;
  for (int i = 0; i < 7; ++i) {
    src.push_back(std::vector<int32_t>(1 + i % 3, 10 + i));
    tgt.push_back(std::vector<int32_t>(1 + (i * 2) % 5, 20 + i));
  }
  absl::StatusOr<ParallelBatcher> p = ParallelBatcher::Create(src, tgt, 3, 5);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->batches_per_epoch(), 3);
  std::vector<int64_t> order0 = p->EpochOrder(0);
  EXPECT_THAT(order0, ElementsAre(3, 2, 4, 6, 5, 0, 1));  // pinned
  std::vector<int64_t> seen;
  for (int s = 0; s < 3; ++s) {
    ParallelBatch b = p->Next();
    for (int64_t r = 0; r < b.batch_size; ++r) {
      int64_t i = b.indices[r];
      seen.push_back(i);
      EXPECT_EQ(b.source_lengths[r], static_cast<int32_t>(src[i].size()));
      for (int64_t c = 0; c < b.source_len; ++c) {
        EXPECT_EQ(b.source[r * b.source_len + c],
                  c < static_cast<int64_t>(src[i].size()) ? 10 + i : kPadId);
      }
      for (int64_t c = 0; c < b.target_len; ++c) {
        EXPECT_EQ(b.target[r * b.target_len + c],
                  c < static_cast<int64_t>(tgt[i].size()) ? 20 + i : kPadId);
      }
    }
  }
  EXPECT_EQ(seen, order0);
  EXPECT_NE(p->EpochOrder(1), order0);
  BatcherState saved = p->state();  // end of epoch 0
  ParallelBatch next = p->Next();   // epoch 1, batch 0
  EXPECT_EQ(p->state().epoch, 1);
  absl::StatusOr<ParallelBatcher> q = ParallelBatcher::Create(src, tgt, 3, 5);
  ASSERT_TRUE(q->Restore(saved).ok());
  EXPECT_EQ(q->Next().indices, next.indices);
  EXPECT_FALSE(ParallelBatcher::Create(src, {}, 3, 5).ok());
  EXPECT_FALSE(
      ParallelBatcher::Create(src, tgt, 8, 5, /*drop_last=*/true).ok());
}

TEST(BatchingTest, SortedParallelBatchesHoldSimilarLengths) {
  // 50 pairs of random lengths; batches of 4 sorted within runs of 3
  // batches (12 pairs).
  std::vector<std::vector<int32_t>> src, tgt;
  for (int i = 0; i < 50; ++i) {
    src.push_back(std::vector<int32_t>(1 + (i * 7) % 11, 5));
    tgt.push_back(std::vector<int32_t>(1 + (i * 13) % 17, 6));
  }
  absl::StatusOr<ParallelBatcher> p =
      ParallelBatcher::Create(src, tgt, 4, 9, false, kPadId, 3);
  ASSERT_TRUE(p.ok()) << p.status();
  const std::vector<int64_t> shuffled =
      ParallelBatcher::Create(src, tgt, 4, 9)->EpochOrder(0);
  const std::vector<int64_t> order = p->EpochOrder(0);
  ASSERT_EQ(order.size(), 50u);
  for (int64_t w = 0; w < 50; w += 12) {
    // A run holds the same pairs as the plain shuffle's run ...
    const int64_t e = std::min<int64_t>(50, w + 12);
    std::vector<int64_t> a(order.begin() + w, order.begin() + e);
    std::vector<int64_t> b(shuffled.begin() + w, shuffled.begin() + e);
    std::sort(a.begin(), a.end());
    std::sort(b.begin(), b.end());
    EXPECT_EQ(a, b) << "run at " << w;
  }
  // ... and each batch is a contiguous slice of its run sorted by target
  // length: no pair outside the batch lies strictly between its extremes.
  for (int64_t start = 0; start < 48; start += 4) {
    const int64_t w = start / 12 * 12;
    size_t lo = 100, hi = 0;
    for (int64_t i = start; i < start + 4; ++i) {
      lo = std::min(lo, tgt[order[i]].size());
      hi = std::max(hi, tgt[order[i]].size());
    }
    for (int64_t i = w; i < std::min<int64_t>(50, w + 12); ++i) {
      if (i >= start && i < start + 4) continue;
      const size_t len = tgt[order[i]].size();
      EXPECT_FALSE(len > lo && len < hi) << "batch at " << start;
    }
  }
  // The block order is random: not every run comes out ascending.
  bool some_descent = false;
  for (int64_t start = 4; start < 48; start += 4)
    if (start % 12 != 0 &&
        tgt[order[start]].size() < tgt[order[start - 1]].size())
      some_descent = true;
  EXPECT_TRUE(some_descent);
  EXPECT_EQ(p->EpochOrder(0), order);  // deterministic
  EXPECT_FALSE(ParallelBatcher::Create(src, tgt, 4, 9, false, kPadId, -1).ok());
}

TEST(BatchingTest, IdsToTensor) {
  absl::StatusOr<tensor::Tensor> t = IdsToTensor({1, 2, 3, 4, 5, 6}, 2, 3);
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->shape(), (tensor::Shape{2, 3}));
  EXPECT_EQ(t->dtype(), tensor::kI64);
  EXPECT_EQ(t->data_as<int64_t>()[5], 6);
  EXPECT_FALSE(IdsToTensor({1, 2, 3}, 2, 2).ok());
}

}  // namespace
}  // namespace llmsys::data
