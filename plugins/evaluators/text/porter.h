// plugins/evaluators/text/porter.h — the Porter stemmer exactly as NLTK's
// nltk.stem.porter.PorterStemmer() in its default NLTK_EXTENSIONS mode, the
// stemmer Google's rouge-score uses for ROUGE with use_stemmer=True.
//
//   std::string s = llmsys::text::PorterStem("generously");  // "gener"
//   llmsys::text::PorterStem("skies");                        // "sky"
//
// What "exactly" covers: the irregular-form table (skies -> sky, dying ->
// die, news -> news, ...), the NLTK-only rules (ies/ied on four-letter
// words, (*c and not c) Y -> I, ALLI -> AL first and step 2 again, FULLI,
// LOGI measured with its "l", the two-letter *o case), the rule-list
// semantics (the first rule whose suffix matches decides; a failed
// condition stops the list) and words of one or two letters returned
// unchanged. tests/data/eval/porter_cases.tsv holds NLTK's stems of ~43k
// words and random strings (tools/make_rouge_cases.py writes it).
//
// NLTK versions: 3.8 and 3.10 give the same stems for every lower-case
// word. They differ only in (a) the irregular-form lookup, made on the word
// as given in 3.8 and on the lower-cased word in 3.10 ("Skies": 3.8 "ski",
// 3.10 "sky"; this follows 3.10), and (b) 3.8 recursing once per letter of
// a run of 'y's, so a word with about a thousand of them raises
// RecursionError there; here it has the stem both versions define.
// rouge-score only ever passes lower-case [a-z0-9]+ tokens, for which the
// two versions agree.
//
// Input: ASCII; 'A'-'Z' are lower-cased first (as NLTK's to_lowercase=True)
// and every other byte is kept, counting as a consonant as in NLTK (digits
// and punctuation are neither vowels nor 'y'). Non-ASCII bytes throw
// std::invalid_argument: NLTK works on code points, which a byte-level
// stemmer would count differently.
//
// Thread-safety: a pure function with no shared state; call it from any
// thread.
#ifndef LLMSYS_PLUGINS_EVALUATORS_TEXT_PORTER_H_
#define LLMSYS_PLUGINS_EVALUATORS_TEXT_PORTER_H_

#include <string>
#include <string_view>

namespace llmsys::text {

// Returns the stem of `word`, as PorterStemmer().stem(word) of NLTK 3.10.
// Throws std::invalid_argument when `word` holds a byte >= 0x80.
std::string PorterStem(std::string_view word);

}  // namespace llmsys::text

#endif  // LLMSYS_PLUGINS_EVALUATORS_TEXT_PORTER_H_
