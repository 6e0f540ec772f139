// plugins/evaluators/text/squad.h — the SQuAD v1.1 answer metrics, exactly
// as the official evaluate-v1.1.py computes them per question.
//
// An answer is normalized by Python's str.lower, removing the ASCII
// punctuation of string.punctuation, replacing the articles a/an/the found by
// re.sub(r'\b(a|an|the)\b', ' ', ...) (Unicode word boundaries) and
// collapsing whitespace to single spaces. ExactMatch compares normalized
// strings; TokenF1 is the F1 of the bags of normalized tokens (0 when no
// token is shared). Both take the maximum over the references, as the
// script does; the script's corpus figures are 100 * the mean over
// questions.
//
// Usage:
//   double em = ExactMatch("The Eiffel Tower", {"Eiffel tower", "Paris"});
//   double f1 = TokenF1("in Paris, France", {"Paris"});  // 0.5
//
// Users: the evaluator plugin (plugins/evaluators) and `llmsys eval`.
// Thread-safety: pure functions. Errors: std::invalid_argument on text that
// is not UTF-8 or an empty reference list (max over nothing).
#ifndef LLMSYS_PLUGINS_EVALUATORS_TEXT_SQUAD_H_
#define LLMSYS_PLUGINS_EVALUATORS_TEXT_SQUAD_H_

#include <string>
#include <string_view>
#include <vector>

namespace llmsys::text {

// The script's normalize_answer (UTF-8 in and out).
std::string NormalizeAnswer(std::string_view text);

// 1.0 when the normalized prediction equals some normalized reference, else
// 0.0.
double ExactMatch(std::string_view prediction,
                  const std::vector<std::string_view>& references);

// The best token F1 against the references, in [0, 1].
double TokenF1(std::string_view prediction,
               const std::vector<std::string_view>& references);

}  // namespace llmsys::text

#endif  // LLMSYS_PLUGINS_EVALUATORS_TEXT_SQUAD_H_
