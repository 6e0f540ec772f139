// tools/llmsys/main.cc — the `llmsys` command: dispatches to subcommands.
#include <cstdio>
#include <exception>
#include <iostream>
#include <string>
#include <vector>

#include "framework/core/suggest.h"
#include "framework/core/version.h"
#include "llmsys/version.h"
#include "tools/llmsys/plugins_command.h"

namespace {

constexpr char kUsage[] =
    "usage: llmsys [--version] [--help] COMMAND [ARGS]\n"
    "\n"
    "commands:\n"
    "  plugins            list every component of every plugin found\n"
    "  plugins describe   show a component's description and parameters\n"
    "  plugins check      load one plugin file alone and report on it\n"
    "\n"
    "Run 'llmsys COMMAND --help' for a command's options.\n";

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty() || args[0] == "--help" || args[0] == "-h" ||
      args[0] == "help") {
    std::cout << kUsage;
    return args.empty() ? 2 : 0;
  }
  if (args[0] == "--version") {
    std::cout << "llmsys " << llmsys::kHostVersion << " (plugin ABI "
              << LLMSYS_ABI_VERSION_STRING << ")\n";
    return 0;
  }
  const std::string command = args[0];
  args.erase(args.begin());
  try {
    if (command == "plugins") return llmsys::cli::RunPluginsCommand(args);
  } catch (const std::exception& e) {
    std::cerr << "llmsys " << command << ": " << e.what() << "\n";
    return 2;
  }
  std::cerr << "llmsys: unknown command '" << command << "'"
            << llmsys::core::DidYouMean(command, {"plugins"}) << "\n\n"
            << kUsage;
  return 2;
}
