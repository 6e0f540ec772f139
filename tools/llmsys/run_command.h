// tools/llmsys/run_command.h — `llmsys run` and `llmsys generate`.
// Thread-safety: main thread only.
#ifndef LLMSYS_TOOLS_LLMSYS_RUN_COMMAND_H_
#define LLMSYS_TOOLS_LLMSYS_RUN_COMMAND_H_

#include <string>
#include <vector>

namespace llmsys::cli {

// `args` are the words after "run" / "generate". Return the exit code.
int RunCommand(const std::vector<std::string>& args);
int GenerateCommand(const std::vector<std::string>& args);

}  // namespace llmsys::cli

#endif  // LLMSYS_TOOLS_LLMSYS_RUN_COMMAND_H_
