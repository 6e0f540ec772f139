#include "plugins/evaluators/text/squad.h"

#include <algorithm>
#include <stdexcept>

#include "plugins/evaluators/text/unicode.h"

namespace llmsys::text {
namespace {

// Python's string.punctuation.
constexpr bool IsAsciiPunct(char32_t c) {
  return (c >= 0x21 && c <= 0x2F) || (c >= 0x3A && c <= 0x40) ||
         (c >= 0x5B && c <= 0x60) || (c >= 0x7B && c <= 0x7E);
}

// Length of the article re.sub(r'\b(a|an|the)\b', ...) matches at `i`, or
// 0. The caller checks the boundary before `i`.
size_t ArticleAt(std::u32string_view s, size_t i) {
  const auto boundary_at = [&](size_t j) {
    return j == s.size() || !IsWordChar(s[j]);
  };
  if (s[i] == 'a') {
    if (boundary_at(i + 1)) return 1;
    if (i + 1 < s.size() && s[i + 1] == 'n' && boundary_at(i + 2)) return 2;
    return 0;
  }
  if (s.substr(i, 3) == U"the" && boundary_at(i + 3)) return 3;
  return 0;
}

// normalize_answer, on code points; the result's tokens are separated by
// single spaces.
std::u32string Normalize(std::string_view utf8, std::string_view what) {
  const std::u32string lowered = PyLower(
      DecodeUtf8OrThrow(utf8, std::string("SQuAD: ") + std::string(what)));
  std::u32string no_punct;
  no_punct.reserve(lowered.size());
  for (char32_t c : lowered) {
    if (!IsAsciiPunct(c)) no_punct.push_back(c);
  }
  // re.sub scans left to right; after a match it goes on after it, and the
  // boundaries are judged on the text before replacement.
  std::u32string no_articles;
  no_articles.reserve(no_punct.size());
  size_t i = 0;
  while (i < no_punct.size()) {
    const bool boundary_before = i == 0 || !IsWordChar(no_punct[i - 1]);
    const size_t len = boundary_before ? ArticleAt(no_punct, i) : 0;
    if (len > 0) {
      no_articles.push_back(' ');
      i += len;
    } else {
      no_articles.push_back(no_punct[i]);
      ++i;
    }
  }
  std::u32string out;
  for (std::u32string_view word : PySplit(no_articles)) {
    if (!out.empty()) out.push_back(' ');
    out.append(word);
  }
  return out;
}

void RequireReferences(const std::vector<std::string_view>& references,
                       const char* function) {
  if (references.empty()) {
    throw std::invalid_argument(std::string("SQuAD ") + function +
                                ": needs at least one reference answer");
  }
}

}  // namespace

std::string NormalizeAnswer(std::string_view text) {
  return EncodeUtf8(Normalize(text, "answer"));
}

double ExactMatch(std::string_view prediction,
                  const std::vector<std::string_view>& references) {
  RequireReferences(references, "ExactMatch");
  const std::u32string pred = Normalize(prediction, "prediction");
  double best = 0.0;
  for (std::string_view ref : references) {
    if (Normalize(ref, "reference") == pred) best = 1.0;
  }
  return best;
}

double TokenF1(std::string_view prediction,
               const std::vector<std::string_view>& references) {
  RequireReferences(references, "TokenF1");
  const std::u32string pred = Normalize(prediction, "prediction");
  std::vector<std::u32string_view> pred_tokens = PySplit(pred);
  std::sort(pred_tokens.begin(), pred_tokens.end());
  double best = 0.0;
  for (std::string_view ref_text : references) {
    const std::u32string ref = Normalize(ref_text, "reference");
    std::vector<std::u32string_view> ref_tokens = PySplit(ref);
    std::sort(ref_tokens.begin(), ref_tokens.end());
    // Size of the multiset intersection (Counter & Counter).
    size_t num_same = 0;
    size_t a = 0;
    size_t b = 0;
    while (a < pred_tokens.size() && b < ref_tokens.size()) {
      if (pred_tokens[a] < ref_tokens[b]) {
        ++a;
      } else if (ref_tokens[b] < pred_tokens[a]) {
        ++b;
      } else {
        ++num_same;
        ++a;
        ++b;
      }
    }
    double f1 = 0.0;
    if (num_same > 0) {
      const double precision = 1.0 * static_cast<double>(num_same) /
                               static_cast<double>(pred_tokens.size());
      const double recall = 1.0 * static_cast<double>(num_same) /
                            static_cast<double>(ref_tokens.size());
      f1 = (2 * precision * recall) / (precision + recall);
    }
    best = std::max(best, f1);
  }
  return best;
}

}  // namespace llmsys::text
