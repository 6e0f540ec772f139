// tools/llmsys/eval_command.h — `llmsys eval`: scores hypotheses against
// references with an evaluator plugin, like the sacrebleu command.
// Thread-safety: main thread only.
#ifndef LLMSYS_TOOLS_LLMSYS_EVAL_COMMAND_H_
#define LLMSYS_TOOLS_LLMSYS_EVAL_COMMAND_H_

#include <string>
#include <vector>

namespace llmsys::cli {

// `args` are the words after "eval". Returns the exit code: 0, 1 (failure,
// e.g. bad input files) or 2 (bad usage).
int EvalCommand(const std::vector<std::string>& args);

}  // namespace llmsys::cli

#endif  // LLMSYS_TOOLS_LLMSYS_EVAL_COMMAND_H_
