// tools/llmsys/new_plugin_command.h — `llmsys new-plugin`: scaffolds a
// plugin folder that builds out of tree against the installed SDK.
//
//   llmsys new-plugin --kind operator --name my_attention --op attention DIR
//
// DIR gets a CMakeLists.txt (find_package(llmsys), llmsys_add_plugin and two
// tests), the source of one working component of KIND, an experiment that
// swaps it in, the check script, a tiny corpus and a README with the next
// steps. The templates (tools/llmsys/templates/) are compiled into the
// command, so an installed llmsys needs no source tree.
//
// Thread-safety: main thread only.
#ifndef LLMSYS_TOOLS_LLMSYS_NEW_PLUGIN_COMMAND_H_
#define LLMSYS_TOOLS_LLMSYS_NEW_PLUGIN_COMMAND_H_

#include <string>
#include <vector>

namespace llmsys::cli {

// `args` are the words after "new-plugin". Returns the exit code: 0, 1 (the
// folder could not be written: not empty, not writable) or 2 (bad usage: an
// unknown kind or op, a malformed name).
int NewPluginCommand(const std::vector<std::string>& args);

}  // namespace llmsys::cli

#endif  // LLMSYS_TOOLS_LLMSYS_NEW_PLUGIN_COMMAND_H_
