// plugins/evaluators/text/porter.cc — NLTK's Porter stemmer
// (NLTK_EXTENSIONS), step by step as nltk/stem/porter.py, on one mutable
// buffer. The helpers take a prefix length `n`: "the stem" of a rule is
// w[0, n), so no rule copies a substring to test its condition.
#include "plugins/evaluators/text/porter.h"

#include <array>
#include <cstddef>
#include <stdexcept>
#include <string>
#include <string_view>

namespace llmsys::text {
namespace {

bool IsVowelLetter(char c) {
  return c == 'a' || c == 'e' || c == 'i' || c == 'o' || c == 'u';
}

// Porter's consonant: not a, e, i, o, u, and not a 'y' that follows a
// consonant. A run of 'y's alternates, so count it instead of recursing.
bool IsConsonant(std::string_view w, std::size_t i) {
  if (IsVowelLetter(w[i])) return false;
  if (w[i] != 'y') return true;
  bool negate = false;
  while (i > 0 && w[i] == 'y') {
    negate = !negate;
    --i;
  }
  return !IsVowelLetter(w[i]) != negate;
}

// m of w[0, n): the number of vowel -> consonant transitions.
int Measure(std::string_view w, std::size_t n) {
  int m = 0;
  bool prev_consonant = true;  // "no vowel yet" counts like a consonant
  for (std::size_t i = 0; i < n; ++i) {
    bool consonant;
    if (IsVowelLetter(w[i])) {
      consonant = false;
    } else if (w[i] == 'y') {
      consonant = i == 0 ? true : !prev_consonant;
    } else {
      consonant = true;
    }
    if (consonant && i > 0 && !prev_consonant) ++m;
    prev_consonant = consonant;
  }
  return m;
}

// *v*: w[0, n) holds a vowel.
bool ContainsVowel(std::string_view w, std::size_t n) {
  bool prev_consonant = true;
  for (std::size_t i = 0; i < n; ++i) {
    bool consonant;
    if (IsVowelLetter(w[i])) {
      consonant = false;
    } else if (w[i] == 'y') {
      consonant = i == 0 ? true : !prev_consonant;
    } else {
      consonant = true;
    }
    if (!consonant) return true;
    prev_consonant = consonant;
  }
  return false;
}

// *d: w[0, n) ends with a double consonant.
bool EndsDoubleConsonant(std::string_view w, std::size_t n) {
  return n >= 2 && w[n - 1] == w[n - 2] && IsConsonant(w, n - 1);
}

// *o: w[0, n) ends consonant-vowel-consonant, the last not w, x or y; NLTK
// also accepts a two-letter vowel-consonant word.
bool EndsCvc(std::string_view w, std::size_t n) {
  if (n >= 3 && IsConsonant(w, n - 3) && !IsConsonant(w, n - 2) &&
      IsConsonant(w, n - 1) && w[n - 1] != 'w' && w[n - 1] != 'x' &&
      w[n - 1] != 'y') {
    return true;
  }
  return n == 2 && !IsConsonant(w, 0) && IsConsonant(w, 1);
}

bool EndsWith(std::string_view w, std::string_view suffix) {
  return w.size() >= suffix.size() &&
         w.substr(w.size() - suffix.size()) == suffix;
}

void ReplaceSuffix(std::string& w, std::size_t suffix_size,
                   std::string_view replacement) {
  w.resize(w.size() - suffix_size);
  w.append(replacement);
}

// The conditions the rule lists of steps 2-4 use, on the stem w[0, n).
enum class Condition {
  kMeasureAbove0,  // m > 0
  kMeasureAbove1,  // m > 1
  kIon,            // m > 1 and the stem ends in s or t
  kLogi,           // m > 0 of the stem plus its "l" (the word minus "ogi")
};

struct Rule {
  std::string_view suffix;
  std::string_view replacement;
  Condition condition;
};

bool Holds(Condition c, std::string_view w, std::size_t n) {
  switch (c) {
    case Condition::kMeasureAbove0:
      return Measure(w, n) > 0;
    case Condition::kMeasureAbove1:
      return Measure(w, n) > 1;
    case Condition::kIon:
      return Measure(w, n) > 1 && (w[n - 1] == 's' || w[n - 1] == 't');
    case Condition::kLogi:
      return Measure(w, n + 1) > 0;
  }
  return false;
}

// NLTK's _apply_rule_list for lists without the "*d" and "" pseudo-suffixes:
// the first rule whose suffix matches decides, whether or not its condition
// holds.
template <std::size_t kCount>
void ApplyRuleList(std::string& w, const std::array<Rule, kCount>& rules) {
  for (const Rule& rule : rules) {
    if (!EndsWith(w, rule.suffix)) continue;
    if (Holds(rule.condition, w, w.size() - rule.suffix.size())) {
      ReplaceSuffix(w, rule.suffix.size(), rule.replacement);
    }
    return;
  }
}

void Step1a(std::string& w) {
  if (w.size() == 4 && EndsWith(w, "ies")) {  // NLTK: dies -> die
    ReplaceSuffix(w, 3, "ie");
    return;
  }
  if (EndsWith(w, "sses")) {
    ReplaceSuffix(w, 4, "ss");
  } else if (EndsWith(w, "ies")) {
    ReplaceSuffix(w, 3, "i");
  } else if (EndsWith(w, "ss")) {
    // SS -> SS
  } else if (EndsWith(w, "s")) {
    ReplaceSuffix(w, 1, "");
  }
}

void Step1b(std::string& w) {
  if (EndsWith(w, "ied")) {  // NLTK: died -> die, spied -> spi
    ReplaceSuffix(w, 3, w.size() == 4 ? "ie" : "i");
    return;
  }
  if (EndsWith(w, "eed")) {
    if (Measure(w, w.size() - 3) > 0) ReplaceSuffix(w, 3, "ee");
    return;
  }
  std::size_t suffix_size = 0;
  if (EndsWith(w, "ed")) {
    suffix_size = 2;
  } else if (EndsWith(w, "ing")) {
    suffix_size = 3;
  }
  if (suffix_size == 0 || !ContainsVowel(w, w.size() - suffix_size)) return;
  w.resize(w.size() - suffix_size);  // the intermediate stem, not empty

  if (EndsWith(w, "at") || EndsWith(w, "bl") || EndsWith(w, "iz")) {
    w.push_back('e');
    return;
  }
  // The "*d" rule: NLTK tests the double consonant, and then (as for any
  // rule) whether the word literally ends in the suffix text "*d"; either
  // way the stem is the word minus two characters, to which the last one
  // is added back unless it is l, s or z.
  if (EndsDoubleConsonant(w, w.size()) || EndsWith(w, "*d")) {
    const char last = w.back();
    if (last != 'l' && last != 's' && last != 'z') w.erase(w.size() - 2, 1);
    return;
  }
  if (Measure(w, w.size()) == 1 && EndsCvc(w, w.size())) w.push_back('e');
}

void Step1c(std::string& w) {
  // NLTK: (*c and not c) Y -> I, i.e. a consonant before the y that is not
  // the first letter.
  if (EndsWith(w, "y") && w.size() - 1 > 1 && IsConsonant(w, w.size() - 2)) {
    w.back() = 'i';
  }
}

constexpr std::array<Rule, 22> kStep2Rules = {{
    {"ational", "ate", Condition::kMeasureAbove0},
    {"tional", "tion", Condition::kMeasureAbove0},
    {"enci", "ence", Condition::kMeasureAbove0},
    {"anci", "ance", Condition::kMeasureAbove0},
    {"izer", "ize", Condition::kMeasureAbove0},
    {"bli", "ble", Condition::kMeasureAbove0},
    {"alli", "al", Condition::kMeasureAbove0},
    {"entli", "ent", Condition::kMeasureAbove0},
    {"eli", "e", Condition::kMeasureAbove0},
    {"ousli", "ous", Condition::kMeasureAbove0},
    {"ization", "ize", Condition::kMeasureAbove0},
    {"ation", "ate", Condition::kMeasureAbove0},
    {"ator", "ate", Condition::kMeasureAbove0},
    {"alism", "al", Condition::kMeasureAbove0},
    {"iveness", "ive", Condition::kMeasureAbove0},
    {"fulness", "ful", Condition::kMeasureAbove0},
    {"ousness", "ous", Condition::kMeasureAbove0},
    {"aliti", "al", Condition::kMeasureAbove0},
    {"iviti", "ive", Condition::kMeasureAbove0},
    {"biliti", "ble", Condition::kMeasureAbove0},
    {"fulli", "ful", Condition::kMeasureAbove0},
    {"logi", "log", Condition::kLogi},
}};

void Step2(std::string& w) {
  // NLTK applies ALLI -> AL first and, when it fires, runs step 2 again.
  while (EndsWith(w, "alli") && Measure(w, w.size() - 4) > 0) {
    ReplaceSuffix(w, 4, "al");
  }
  ApplyRuleList(w, kStep2Rules);
}

constexpr std::array<Rule, 7> kStep3Rules = {{
    {"icate", "ic", Condition::kMeasureAbove0},
    {"ative", "", Condition::kMeasureAbove0},
    {"alize", "al", Condition::kMeasureAbove0},
    {"iciti", "ic", Condition::kMeasureAbove0},
    {"ical", "ic", Condition::kMeasureAbove0},
    {"ful", "", Condition::kMeasureAbove0},
    {"ness", "", Condition::kMeasureAbove0},
}};

constexpr std::array<Rule, 19> kStep4Rules = {{
    {"al", "", Condition::kMeasureAbove1},
    {"ance", "", Condition::kMeasureAbove1},
    {"ence", "", Condition::kMeasureAbove1},
    {"er", "", Condition::kMeasureAbove1},
    {"ic", "", Condition::kMeasureAbove1},
    {"able", "", Condition::kMeasureAbove1},
    {"ible", "", Condition::kMeasureAbove1},
    {"ant", "", Condition::kMeasureAbove1},
    {"ement", "", Condition::kMeasureAbove1},
    {"ment", "", Condition::kMeasureAbove1},
    {"ent", "", Condition::kMeasureAbove1},
    {"ion", "", Condition::kIon},
    {"ou", "", Condition::kMeasureAbove1},
    {"ism", "", Condition::kMeasureAbove1},
    {"ate", "", Condition::kMeasureAbove1},
    {"iti", "", Condition::kMeasureAbove1},
    {"ous", "", Condition::kMeasureAbove1},
    {"ive", "", Condition::kMeasureAbove1},
    {"ize", "", Condition::kMeasureAbove1},
}};

void Step5a(std::string& w) {
  // Both E rules are tried (unlike a rule list): m > 1, or m = 1 and not *o.
  if (!EndsWith(w, "e")) return;
  const std::size_t n = w.size() - 1;
  const int m = Measure(w, n);
  if (m > 1 || (m == 1 && !EndsCvc(w, n))) w.pop_back();
}

void Step5b(std::string& w) {
  // NLTK measures the word minus one letter (the stem plus one 'l').
  if (EndsWith(w, "ll") && Measure(w, w.size() - 1) > 1) w.pop_back();
}

// The irregular forms of NLTK_EXTENSIONS, looked up before any step.
struct Irregular {
  std::string_view word;
  std::string_view stem;
};
constexpr std::array<Irregular, 16> kIrregularForms = {{
    {"sky", "sky"},
    {"skies", "sky"},
    {"dying", "die"},
    {"lying", "lie"},
    {"tying", "tie"},
    {"news", "news"},
    {"innings", "inning"},
    {"inning", "inning"},
    {"outings", "outing"},
    {"outing", "outing"},
    {"cannings", "canning"},
    {"canning", "canning"},
    {"howe", "howe"},
    {"proceed", "proceed"},
    {"exceed", "exceed"},
    {"succeed", "succeed"},
}};

}  // namespace

std::string PorterStem(std::string_view word) {
  std::string w(word);
  for (char& c : w) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte >= 0x80) {
      throw std::invalid_argument(
          "PorterStem: the word holds a non-ASCII byte (0x" +
          std::string(1, "0123456789abcdef"[byte >> 4]) +
          std::string(1, "0123456789abcdef"[byte & 15]) +
          "); pass ASCII words, as the ROUGE tokenizer does");
    }
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  for (const Irregular& form : kIrregularForms) {
    if (w == form.word) return std::string(form.stem);
  }
  if (w.size() <= 2) return w;

  Step1a(w);
  Step1b(w);
  Step1c(w);
  Step2(w);
  ApplyRuleList(w, kStep3Rules);
  ApplyRuleList(w, kStep4Rules);
  Step5a(w);
  Step5b(w);
  return w;
}

}  // namespace llmsys::text
