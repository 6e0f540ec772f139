// plugins/evaluators/text_evaluators.h — registers the text metrics (bleu,
// chrf, rouge, exact_match, token_f1) of the built-in evaluator plugin;
// see text_evaluators.cc.
#ifndef LLMSYS_PLUGINS_EVALUATORS_TEXT_EVALUATORS_H_
#define LLMSYS_PLUGINS_EVALUATORS_TEXT_EVALUATORS_H_

#include "llmsys/sdk.hpp"

namespace llmsys::plugins {

void AddTextEvaluators(sdk::Registry& registry);

}  // namespace llmsys::plugins

#endif  // LLMSYS_PLUGINS_EVALUATORS_TEXT_EVALUATORS_H_
