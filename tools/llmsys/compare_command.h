// tools/llmsys/compare_command.h — `llmsys compare` (an experiment run once
// per variant, in this process, one after another, then compared) and
// `llmsys report` (the same comparison of existing run directories).
// docs/compare.md is the user's guide; framework/report/ does the work.
#ifndef LLMSYS_TOOLS_LLMSYS_COMPARE_COMMAND_H_
#define LLMSYS_TOOLS_LLMSYS_COMPARE_COMMAND_H_

#include <string>
#include <vector>

namespace llmsys::cli {

// Exit codes: 0 all variants ran; 1 a variant failed (the comparison is
// still written) or the experiment is invalid; 2 bad usage.
int CompareCommand(const std::vector<std::string>& args);
// Exit codes: 0 written; 1 a folder is not a run directory; 2 bad usage.
int ReportCommand(const std::vector<std::string>& args);

}  // namespace llmsys::cli

#endif  // LLMSYS_TOOLS_LLMSYS_COMPARE_COMMAND_H_
