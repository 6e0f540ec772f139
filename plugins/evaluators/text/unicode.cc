#include "plugins/evaluators/text/unicode.h"

#include <algorithm>
#include <array>
#include <cstdint>
#include <span>
#include <stdexcept>

namespace llmsys::text {
namespace {

// A closed range [lo, hi] of code points.
struct CodeRange {
  char32_t lo;
  char32_t hi;
};

// Code points first + k*stride (k < count) lowercase to themselves + delta.
struct LowerRun {
  char32_t first;
  uint32_t count;
  uint32_t stride;
  int32_t delta;
};

#include "plugins/evaluators/text/unicode_tables.inc"

// Flags of the first 256 code points, so that ASCII and Latin-1 text skips
// the binary searches.
enum : uint8_t {
  kSpaceBit = 1,
  kAlnumBit = 2,
  kPunctBit = 4,
  kSymbolBit = 8,
  kNumberBit = 16,
  kZhBit = 32,
};

template <size_t N>
constexpr bool InRangesLinear(const CodeRange (&ranges)[N], char32_t c) {
  for (const CodeRange& r : ranges) {
    if (r.lo <= c && c <= r.hi) return true;
  }
  return false;
}

constexpr std::array<uint8_t, 256> BuildLatin1Flags() {
  std::array<uint8_t, 256> flags{};
  for (char32_t c = 0; c < 256; ++c) {
    uint8_t f = 0;
    if (InRangesLinear(kPySpace, c)) f |= kSpaceBit;
    if (InRangesLinear(kPyAlnum, c)) f |= kAlnumBit;
    if (InRangesLinear(kRegexPunct, c)) f |= kPunctBit;
    if (InRangesLinear(kRegexSymbol, c)) f |= kSymbolBit;
    if (InRangesLinear(kRegexNumber, c)) f |= kNumberBit;
    if (InRangesLinear(kZhChinese, c)) f |= kZhBit;
    flags[c] = f;
  }
  return flags;
}

constexpr std::array<uint8_t, 256> kLatin1Flags = BuildLatin1Flags();

bool InRanges(std::span<const CodeRange> ranges, char32_t c) {
  // The first range whose upper end is >= c.
  auto it = std::lower_bound(
      ranges.begin(), ranges.end(), c,
      [](const CodeRange& r, char32_t value) { return r.hi < value; });
  return it != ranges.end() && it->lo <= c;
}

// CPython's one-to-one lowercase of c (c itself when unmapped). Not for
// U+0130 (two code points) or U+03A3 (context).
char32_t LowerSimple(char32_t c) {
  if (c < 0x80) return (c >= 'A' && c <= 'Z') ? c + 32 : c;
  const auto& runs = kPyLowerRuns;
  // The last run starting at or before c.
  auto it = std::upper_bound(
      std::begin(runs), std::end(runs), c,
      [](char32_t value, const LowerRun& r) { return value < r.first; });
  if (it == std::begin(runs)) return c;
  --it;
  const uint32_t offset = c - it->first;
  if (offset % it->stride != 0 || offset / it->stride >= it->count) return c;
  return static_cast<char32_t>(static_cast<int64_t>(c) + it->delta);
}

bool IsCaseIgnorable(char32_t c) { return InRanges(kCaseIgnorable, c); }
bool IsCasedNotIgnorable(char32_t c) { return InRanges(kCasedNotIgnorable, c); }

// CPython's handle_capital_sigma: U+03A3 at `i` is final when a cased
// character precedes it and none follows, skipping case-ignorable ones both
// ways.
char32_t LowerSigma(std::u32string_view s, size_t i) {
  size_t j = i;
  while (j > 0 && IsCaseIgnorable(s[j - 1])) --j;
  bool final_sigma = j > 0 && IsCasedNotIgnorable(s[j - 1]);
  if (final_sigma) {
    size_t k = i + 1;
    while (k < s.size() && IsCaseIgnorable(s[k])) ++k;
    final_sigma = k == s.size() || !IsCasedNotIgnorable(s[k]);
  }
  return final_sigma ? U'\u03C2' : U'\u03C3';
}

}  // namespace

const char* PythonUnicodeVersion() { return kPythonUnicodeVersionText; }
const char* RegexUnicodeVersion() { return kRegexUnicodeVersionText; }
const char* RegexModuleVersion() { return kRegexModuleVersionText; }

bool DecodeUtf8(std::string_view in, std::u32string* out,
                size_t* bad_byte_offset) {
  out->clear();
  out->reserve(in.size());
  const auto* p = reinterpret_cast<const unsigned char*>(in.data());
  const size_t n = in.size();
  size_t i = 0;
  while (i < n) {
    const unsigned char b0 = p[i];
    if (b0 < 0x80) {
      out->push_back(b0);
      ++i;
      continue;
    }
    size_t len = 0;
    char32_t cp = 0;
    char32_t min_cp = 0;
    if (b0 >= 0xC2 && b0 <= 0xDF) {
      len = 2;
      cp = b0 & 0x1F;
      min_cp = 0x80;
    } else if (b0 >= 0xE0 && b0 <= 0xEF) {
      len = 3;
      cp = b0 & 0x0F;
      min_cp = 0x800;
    } else if (b0 >= 0xF0 && b0 <= 0xF4) {
      len = 4;
      cp = b0 & 0x07;
      min_cp = 0x10000;
    }
    bool ok = len != 0 && i + len <= n;
    for (size_t k = 1; ok && k < len; ++k) {
      const unsigned char b = p[i + k];
      if ((b & 0xC0) != 0x80) {
        ok = false;
      } else {
        cp = (cp << 6) | (b & 0x3F);
      }
    }
    ok =
        ok && cp >= min_cp && cp <= 0x10FFFF && !(cp >= 0xD800 && cp <= 0xDFFF);
    if (!ok) {
      if (bad_byte_offset != nullptr) *bad_byte_offset = i;
      return false;
    }
    out->push_back(cp);
    i += len;
  }
  return true;
}

std::u32string DecodeUtf8OrThrow(std::string_view in, std::string_view what) {
  std::u32string out;
  size_t bad = 0;
  if (!DecodeUtf8(in, &out, &bad)) {
    throw std::invalid_argument(std::string(what) +
                                " is not valid UTF-8 (bad byte sequence at "
                                "byte offset " +
                                std::to_string(bad) + ")");
  }
  return out;
}

void DecodeSegmentText(std::string_view utf8, std::string_view metric,
                       size_t ref_number, std::u32string* out) {
  size_t bad = 0;
  if (DecodeUtf8(utf8, out, &bad)) return;
  const std::string what = ref_number == 0
                               ? std::string("the hypothesis")
                               : "reference " + std::to_string(ref_number);
  throw std::invalid_argument(
      (metric.empty() ? std::string() : std::string(metric) + ": ") + what +
      " is not valid UTF-8 (bad byte sequence at byte offset " +
      std::to_string(bad) + ")");
}

void AppendUtf8(std::u32string_view in, std::string* out) {
  for (char32_t c : in) {
    if (c < 0x80) {
      out->push_back(static_cast<char>(c));
    } else if (c < 0x800) {
      out->push_back(static_cast<char>(0xC0 | (c >> 6)));
      out->push_back(static_cast<char>(0x80 | (c & 0x3F)));
    } else if (c < 0x10000) {
      if (c >= 0xD800 && c <= 0xDFFF) {
        throw std::invalid_argument(
            "EncodeUtf8: a surrogate code point cannot be encoded");
      }
      out->push_back(static_cast<char>(0xE0 | (c >> 12)));
      out->push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
      out->push_back(static_cast<char>(0x80 | (c & 0x3F)));
    } else if (c <= 0x10FFFF) {
      out->push_back(static_cast<char>(0xF0 | (c >> 18)));
      out->push_back(static_cast<char>(0x80 | ((c >> 12) & 0x3F)));
      out->push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
      out->push_back(static_cast<char>(0x80 | (c & 0x3F)));
    } else {
      throw std::invalid_argument(
          "EncodeUtf8: code point above U+10FFFF cannot be encoded");
    }
  }
}

std::string EncodeUtf8(std::u32string_view in) {
  std::string out;
  out.reserve(in.size());
  AppendUtf8(in, &out);
  return out;
}

void PyLowerInto(std::u32string_view in, std::u32string* out) {
  out->clear();
  out->reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    const char32_t c = in[i];
    if (c == U'\u03A3') {
      out->push_back(LowerSigma(in, i));
    } else if (c == U'\u0130') {
      out->append(std::begin(kLowerOf0130), std::end(kLowerOf0130));
    } else {
      out->push_back(LowerSimple(c));
    }
  }
}

std::u32string PyLower(std::u32string_view in) {
  std::u32string out;
  PyLowerInto(in, &out);
  return out;
}

bool PyIsSpace(char32_t c) {
  if (c < 0x100) return (kLatin1Flags[c] & kSpaceBit) != 0;
  return InRanges(kPySpace, c);
}

bool PyIsAlnum(char32_t c) {
  if (c < 0x100) return (kLatin1Flags[c] & kAlnumBit) != 0;
  return InRanges(kPyAlnum, c);
}

bool IsWordChar(char32_t c) { return c == '_' || PyIsAlnum(c); }

bool RegexIsPunctuation(char32_t c) {
  if (c < 0x100) return (kLatin1Flags[c] & kPunctBit) != 0;
  return InRanges(kRegexPunct, c);
}

bool RegexIsSymbol(char32_t c) {
  if (c < 0x100) return (kLatin1Flags[c] & kSymbolBit) != 0;
  return InRanges(kRegexSymbol, c);
}

bool RegexIsNumber(char32_t c) {
  if (c < 0x100) return (kLatin1Flags[c] & kNumberBit) != 0;
  return InRanges(kRegexNumber, c);
}

bool IsSacrebleuChineseChar(char32_t c) {
  if (c < 0x100) return (kLatin1Flags[c] & kZhBit) != 0;
  return InRanges(kZhChinese, c);
}

std::vector<std::u32string_view> PySplit(std::u32string_view in) {
  std::vector<std::u32string_view> words;
  size_t i = 0;
  while (i < in.size()) {
    while (i < in.size() && PyIsSpace(in[i])) ++i;
    const size_t start = i;
    while (i < in.size() && !PyIsSpace(in[i])) ++i;
    if (i > start) words.push_back(in.substr(start, i - start));
  }
  return words;
}

std::u32string_view PyRstrip(std::u32string_view in) {
  size_t end = in.size();
  while (end > 0 && PyIsSpace(in[end - 1])) --end;
  return in.substr(0, end);
}

std::u32string_view PyStrip(std::u32string_view in) {
  in = PyRstrip(in);
  size_t start = 0;
  while (start < in.size() && PyIsSpace(in[start])) ++start;
  return in.substr(start);
}

}  // namespace llmsys::text
