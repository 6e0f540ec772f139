// framework/core/suggest.h — "did you mean" for misspelled names (config
// keys, component ids, op implementations).
//
//   std::string hint = DidYouMean("adamw2", {"adam", "adamw", "sgd"});
//   // hint == " (did you mean 'adamw'?)"
//
// Thread-safety: pure functions.
#ifndef LLMSYS_FRAMEWORK_CORE_SUGGEST_H_
#define LLMSYS_FRAMEWORK_CORE_SUGGEST_H_

#include <string>
#include <string_view>
#include <vector>

namespace llmsys::core {

// Levenshtein distance (insert, delete, substitute; each costs 1).
size_t EditDistance(std::string_view a, std::string_view b);

// " (did you mean 'x'?)" for the closest candidate within a distance of
// max(2, |word| / 3), or "" when none is that close.
std::string DidYouMean(std::string_view word,
                       const std::vector<std::string>& candidates);

}  // namespace llmsys::core

#endif  // LLMSYS_FRAMEWORK_CORE_SUGGEST_H_
