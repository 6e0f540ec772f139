// tools/llmsys/plugins_command.h — `llmsys plugins [describe ID | check FILE]`.
// Thread-safety: main thread only.
#ifndef LLMSYS_TOOLS_LLMSYS_PLUGINS_COMMAND_H_
#define LLMSYS_TOOLS_LLMSYS_PLUGINS_COMMAND_H_

#include <string>
#include <vector>

namespace llmsys::cli {

// `args` are the words after "plugins". Returns the process exit code.
int RunPluginsCommand(const std::vector<std::string>& args);

}  // namespace llmsys::cli

#endif  // LLMSYS_TOOLS_LLMSYS_PLUGINS_COMMAND_H_
