// tools/llmsys/bench_command.h — `llmsys bench WHAT`: micro benchmarks that
// print a table for this machine. `bench matmul` times every implementation
// of `matmul` (the ladder of docs/performance.md). One function per WHAT in
// bench_command.cc.
#ifndef LLMSYS_TOOLS_LLMSYS_BENCH_COMMAND_H_
#define LLMSYS_TOOLS_LLMSYS_BENCH_COMMAND_H_

#include <string>
#include <vector>

namespace llmsys::cli {

// Exit codes: 0 measured; 1 an implementation failed or gave a wrong
// result; 2 bad usage.
int BenchCommand(const std::vector<std::string>& args);

// `llmsys bench cuda` (bench_cuda.cc); 1 when no GPU can run.
int BenchCuda(const std::vector<std::string>& args);

}  // namespace llmsys::cli

#endif  // LLMSYS_TOOLS_LLMSYS_BENCH_COMMAND_H_
