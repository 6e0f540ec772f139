// tools/llmsys/main.cc — the `llmsys` command: dispatches to subcommands.
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <iostream>
#include <string>
#include <vector>

#include "framework/core/suggest.h"
#include "framework/core/version.h"
#include "framework/distributed/communicator.h"
#include "llmsys/version.h"
#include "tools/llmsys/bench_command.h"
#include "tools/llmsys/compare_command.h"
#include "tools/llmsys/eval_command.h"
#include "tools/llmsys/new_plugin_command.h"
#include "tools/llmsys/plugins_command.h"
#include "tools/llmsys/run_command.h"

namespace {

constexpr char kUsage[] =
    "usage: llmsys [--version] [--help] COMMAND [ARGS]\n"
    "\n"
    "commands:\n"
    "  run                train an experiment file into a run directory\n"
    "  generate           continue prompts with a run's model (sampling or "
    "beam search)\n"
    "  eval               score hypotheses against references (BLEU, chrF, "
    "ROUGE, ...)\n"
    "  plugins            list every component of every plugin found\n"
    "  plugins describe   show a component's description and parameters\n"
    "  plugins check      load one plugin file alone and report on it\n"
    "  compare            run an experiment once per variant and compare "
    "them\n"
    "  report             compare existing run directories on one page\n"
    "  new-plugin         scaffold a plugin folder that builds out of tree\n"
    "  bench              benchmarks: matmul (the ladder), attention "
    "(materialized,\n"
    "                     blas, flash), train (ms/step, tokens/s, memory)\n"
    "\n"
    "Run 'llmsys COMMAND --help' for a command's options.\n";

}  // namespace

// OpenBLAS picks its kernels when it loads, from the CPU it recognizes;
// Debian's 0.3.21 does not know recent Xeons and falls back to SSE3 kernels
// 4-5x slower. Name the core type for it (unless the user did) before any
// plugin loads the library. Its idle threads also spin (yielding) for 2^28
// cycles after each GEMM by default, taking the cores the host's pool and
// the next op need; 2^12 cycles made a GPT training step ~13% faster
// (docs/performance.md). Users' values win.
static void ChooseBlasKernels() {
  setenv("OPENBLAS_THREAD_TIMEOUT", "12", 0);
  if (std::getenv("OPENBLAS_CORETYPE") != nullptr) return;
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw"))
    setenv("OPENBLAS_CORETYPE", "SkylakeX", 0);
  else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
    setenv("OPENBLAS_CORETYPE", "Haswell", 0);
}

int main(int argc, char** argv) {
  ChooseBlasKernels();
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
  // Under mpirun every rank would do the whole work of the other commands
  // (and write the same files).
  if (command != "run" && llmsys::distributed::LaunchedRanks() > 1) {
    std::cerr << "llmsys " << command << ": started as one of "
              << llmsys::distributed::LaunchedRanks()
              << " ranks (mpirun, srun); only 'llmsys run' trains over "
                 "several processes (docs/distributed.md)\n";
    return 2;
  }
  try {
    if (command == "plugins") return llmsys::cli::RunPluginsCommand(args);
    if (command == "run") return llmsys::cli::RunCommand(args);
    if (command == "generate") return llmsys::cli::GenerateCommand(args);
    if (command == "eval") return llmsys::cli::EvalCommand(args);
    if (command == "compare") return llmsys::cli::CompareCommand(args);
    if (command == "report") return llmsys::cli::ReportCommand(args);
    if (command == "new-plugin") return llmsys::cli::NewPluginCommand(args);
    if (command == "bench") return llmsys::cli::BenchCommand(args);
  } catch (const std::exception& e) {
    std::cerr << "llmsys " << command << ": " << e.what() << "\n";
    return 2;
  }
  std::cerr << "llmsys: unknown command '" << command << "'"
            << llmsys::core::DidYouMean(
                   command, {"plugins", "run", "generate", "eval", "compare",
                             "report", "new-plugin", "bench"})
            << "\n\n"
            << kUsage;
  return 2;
}
