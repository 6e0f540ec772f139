// Tests of plugins/evaluators/text/unicode.h: strict UTF-8, and Python's
// str.lower / isspace / isalnum / split / strip and the regex module's
// categories, spot-checked here and checked against CPython and regex on
// thousands of code points (every property boundary) in
// tests/data/eval/bleu_chrf_cases.jsonl.
#include "plugins/evaluators/text/unicode.h"

#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>

namespace llmsys::text {
namespace {

std::u32string Decode(std::string_view s) {
  std::u32string out;
  size_t bad = 0;
  EXPECT_TRUE(DecodeUtf8(s, &out, &bad)) << "bad byte " << bad;
  return out;
}

// The offset DecodeUtf8 reports for `bytes`, or -1 when it accepts them.
long BadOffset(std::string_view bytes) {
  std::u32string out;
  size_t bad = 12345;
  if (DecodeUtf8(bytes, &out, &bad)) return -1;
  return static_cast<long>(bad);
}

TEST(Utf8Test, DecodesAllLengths) {
  EXPECT_EQ(Decode("a\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80"),
            std::u32string(U"a\u00E9\u20AC\U0001F600"));
  EXPECT_EQ(Decode(""), std::u32string());
  EXPECT_EQ(Decode(std::string_view("a\0b", 3)), std::u32string(U"a\0b", 3));
  EXPECT_EQ(Decode("\xF4\x8F\xBF\xBF"), std::u32string(U"\U0010FFFF"));
  EXPECT_EQ(Decode("\xED\x9F\xBF"), std::u32string(U"\uD7FF"));
  EXPECT_EQ(Decode("\xEE\x80\x80"), std::u32string(U"\uE000"));
}

TEST(Utf8Test, RejectsMalformedInputAtTheRightByte) {
  EXPECT_EQ(BadOffset("ab\x80"), 2);            // stray continuation byte
  EXPECT_EQ(BadOffset("a\xC3"), 1);             // truncated
  EXPECT_EQ(BadOffset("a\xE2\x82"), 1);         // truncated
  EXPECT_EQ(BadOffset("\xC3\x28"), 0);          // bad continuation
  EXPECT_EQ(BadOffset("x\xC0\xAF"), 1);         // overlong '/'
  EXPECT_EQ(BadOffset("\xC1\xBF"), 0);          // overlong
  EXPECT_EQ(BadOffset("\xE0\x80\xAF"), 0);      // overlong, 3 bytes
  EXPECT_EQ(BadOffset("\xF0\x80\x80\xAF"), 0);  // overlong, 4 bytes
  EXPECT_EQ(BadOffset("ok\xED\xA0\x80"), 2);    // surrogate U+D800
  EXPECT_EQ(BadOffset("\xED\xBF\xBF"), 0);      // surrogate U+DFFF
  EXPECT_EQ(BadOffset("\xF4\x90\x80\x80"), 0);  // U+110000
  EXPECT_EQ(BadOffset("\xF5\x80\x80\x80"), 0);  // lead byte F5
  EXPECT_EQ(BadOffset("\xFF"), 0);
  EXPECT_EQ(BadOffset("\xE2\x82\xAC\xE2\x28\xA1"), 3);
}

TEST(Utf8Test, OrThrowNamesWhatAndWhere) {
  try {
    DecodeUtf8OrThrow("abc\xFF", "reference 2");
    FAIL() << "no exception";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("reference 2"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("byte offset 3"), std::string::npos)
        << e.what();
  }
}

TEST(Utf8Test, EncodeRoundTripsAndRejectsSurrogates) {
  const std::string text = "a\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80";
  EXPECT_EQ(EncodeUtf8(Decode(text)), text);
  EXPECT_THROW(EncodeUtf8(std::u32string(1, char32_t{0xD800})),
               std::invalid_argument);
  EXPECT_THROW(EncodeUtf8(std::u32string(1, char32_t{0x110000})),
               std::invalid_argument);
}

TEST(PyLowerTest, SpotChecksAgainstPython) {
  EXPECT_EQ(PyLower(U"Hello WORLD"), U"hello world");
  // U+0130 has the one multi-character lowercase: "i" + combining dot.
  EXPECT_EQ(PyLower(U"\u0130stanbul"), U"i\u0307stanbul");
  EXPECT_EQ(PyLower(U"I\u0131"), U"i\u0131");        // dotless i stays
  EXPECT_EQ(PyLower(U"\u1E9E"), U"\u00DF");          // capital sharp s
  EXPECT_EQ(PyLower(U"\u01C5"), U"\u01C6");          // title-case Dz
  EXPECT_EQ(PyLower(U"\u2160"), U"\u2170");          // Roman numeral one
  EXPECT_EQ(PyLower(U"\U00010400"), U"\U00010428");  // Deseret
  EXPECT_EQ(PyLower(U"\u00C0\u0100\u0101"), U"\u00E0\u0101\u0101");
  EXPECT_EQ(PyLower(U"\u13A0"), U"\uAB70");  // Cherokee
}

TEST(PyLowerTest, FinalSigmaFollowsCPython) {
  // Σ at the end of a word becomes ς, elsewhere σ.
  EXPECT_EQ(PyLower(U"\u039F\u0394\u039F\u03A3"), U"\u03BF\u03B4\u03BF\u03C2");
  EXPECT_EQ(PyLower(U"\u03A3"), U"\u03C3");  // no cased letter before
  EXPECT_EQ(PyLower(U"\u03A3\u0391"), U"\u03C3\u03B1");
  EXPECT_EQ(PyLower(U"\u0391\u03A3 \u0391"), U"\u03B1\u03C2 \u03B1");
  // Case-ignorable characters are skipped both ways.
  EXPECT_EQ(PyLower(U"\u0391'\u03A3'"), U"\u03B1'\u03C2'");
  EXPECT_EQ(PyLower(U"\u0391\u03A3'\u0391"), U"\u03B1\u03C3'\u03B1");
  EXPECT_EQ(PyLower(U"\u0391\u0301\u03A3"), U"\u03B1\u0301\u03C2");
  EXPECT_EQ(PyLower(U"1\u03A3"), U"1\u03C3");
}

TEST(PredicatesTest, PythonWhitespace) {
  for (char32_t c :
       U"\t\n\v\f\r\x1C\x1D\x1E\x1F \u0085\u00A0\u1680\u2000"
       U"\u200A\u2028\u2029\u202F\u205F\u3000") {
    if (c == 0) continue;  // the literal's terminator
    EXPECT_TRUE(PyIsSpace(c)) << std::hex << static_cast<uint32_t>(c);
  }
  for (char32_t c : {U'a', U'\u200B', U'\uFEFF', U'\u180E', U'\u0000',
                     U'\u001B', U'\u00AD', U'\u2060'}) {
    EXPECT_FALSE(PyIsSpace(c)) << std::hex << static_cast<uint32_t>(c);
  }
}

TEST(PredicatesTest, AlnumWordAndCategories) {
  EXPECT_TRUE(PyIsAlnum(U'a'));
  EXPECT_TRUE(PyIsAlnum(U'\u00BD'));  // ½ is numeric
  EXPECT_TRUE(PyIsAlnum(U'\u0663'));  // Arabic-Indic three
  EXPECT_FALSE(PyIsAlnum(U'_'));
  EXPECT_TRUE(IsWordChar(U'_'));
  EXPECT_FALSE(IsWordChar(U'\u0301'));  // combining marks are not \w
  EXPECT_FALSE(IsWordChar(U'-'));
  EXPECT_TRUE(RegexIsPunctuation(U'\u00BF'));  // ¿
  EXPECT_TRUE(RegexIsPunctuation(U'-'));
  EXPECT_FALSE(RegexIsPunctuation(U'$'));
  EXPECT_TRUE(RegexIsSymbol(U'$'));
  EXPECT_TRUE(RegexIsSymbol(U'\U0001F600'));
  EXPECT_TRUE(RegexIsNumber(U'\u2160'));  // Nl
  EXPECT_TRUE(RegexIsNumber(U'\u00B2'));  // No
  EXPECT_FALSE(RegexIsNumber(U'a'));
}

TEST(PredicatesTest, SacrebleuChineseRangesKeepTheirTypos) {
  EXPECT_TRUE(IsSacrebleuChineseChar(U'\u4E2D'));
  EXPECT_TRUE(IsSacrebleuChineseChar(U'\u3002'));   // 。
  EXPECT_TRUE(IsSacrebleuChineseChar(U'\u2014'));   // — (via "\u20000")
  EXPECT_FALSE(IsSacrebleuChineseChar(U'\u2000'));  // the bound is exclusive
  EXPECT_TRUE(IsSacrebleuChineseChar(U'\u2A6D'));
  EXPECT_FALSE(IsSacrebleuChineseChar(U'\U00020000'));  // Ext B is not
  EXPECT_FALSE(IsSacrebleuChineseChar(U'a'));
}

TEST(SplitStripTest, LikePython) {
  const std::u32string text = U"\u3000 a\u00A0b\t\u200Bc  \u2028";
  const auto words = PySplit(text);
  ASSERT_EQ(words.size(), 3u);
  EXPECT_EQ(words[0], U"a");
  EXPECT_EQ(words[1], U"b");
  EXPECT_EQ(words[2], U"\u200Bc");
  EXPECT_TRUE(PySplit(U" \t\n").empty());
  EXPECT_EQ(PyStrip(text), U"a\u00A0b\t\u200Bc");
  EXPECT_EQ(PyRstrip(text), U"\u3000 a\u00A0b\t\u200Bc");
  EXPECT_EQ(PyStrip(U"  "), U"");
}

TEST(VersionsTest, Recorded) {
  EXPECT_STREQ(PythonUnicodeVersion(), "14.0.0");
  EXPECT_STREQ(RegexUnicodeVersion(), "17.0.0");
  EXPECT_STREQ(RegexModuleVersion(), "2026.5.9");
}

// Every code point next to a property boundary, and a random sample,
// against CPython / regex / sacreBLEU (uprops lines), and str.lower on text
// dense in cased letters and sigma contexts (pylower lines).
TEST(GeneratedCasesTest, MatchPython) {
  std::ifstream in(LLMSYS_EVAL_DATA_DIR "/bleu_chrf_cases.jsonl");
  ASSERT_TRUE(in) << "missing " LLMSYS_EVAL_DATA_DIR
                     "/bleu_chrf_cases.jsonl (tools/make_eval_cases.py)";
  std::string line;
  int points = 0;
  int lowers = 0;
  while (std::getline(in, line)) {
    const auto c = nlohmann::json::parse(line);
    const std::string kind = c.at("kind");
    if (kind == "uprops") {
      for (const auto& row : c.at("points")) {
        const auto cp = row.at(0).get<char32_t>();
        const int flags = row.at(1).get<int>();
        std::u32string lowered;
        for (const auto& v : row.at(2)) lowered.push_back(v.get<char32_t>());
        const std::string where = "U+" + std::to_string(cp);
        EXPECT_EQ(PyIsSpace(cp), (flags & 1) != 0) << where;
        EXPECT_EQ(PyIsAlnum(cp), (flags & 2) != 0) << where;
        EXPECT_EQ(IsWordChar(cp), (flags & 4) != 0) << where;
        EXPECT_EQ(RegexIsPunctuation(cp), (flags & 8) != 0) << where;
        EXPECT_EQ(RegexIsSymbol(cp), (flags & 16) != 0) << where;
        EXPECT_EQ(RegexIsNumber(cp), (flags & 32) != 0) << where;
        EXPECT_EQ(IsSacrebleuChineseChar(cp), (flags & 64) != 0) << where;
        EXPECT_EQ(PyLower(std::u32string(1, cp)), lowered) << where;
        ++points;
      }
    } else if (kind == "pylower") {
      const std::u32string text = Decode(c.at("text").get<std::string>());
      EXPECT_EQ(EncodeUtf8(PyLower(text)), c.at("expected").get<std::string>())
          << c.at("id");
      ++lowers;
    }
  }
  EXPECT_GT(points, 5000);
  EXPECT_GT(lowers, 50);
}

}  // namespace
}  // namespace llmsys::text
