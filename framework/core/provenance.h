// framework/core/provenance.h — the facts a run records about where it ran:
// SHA-256 of files (plugins, configs), the machine, the build's version and
// git commit, the command line and the time. The trainer writes them to a
// run directory's provenance.json (framework/train/provenance.h); the
// plugin loader hashes every file it loads; experiments pin plugins by hash.
//
//   LLMSYS_ASSIGN_OR_RETURN(std::string hex, core::Sha256File("cpu.so"));
//   core::MachineInfo m = core::ProbeMachine();  // hostname, CPU, GPUs, ...
//   core::BuildInfo b = core::GetBuildInfo();     // version, commit, dirty
//
// Nothing here needs a GPU library: GPU names come from
// /proc/driver/nvidia or `nvidia-smi -L` when either exists.
//
// Thread-safety: every function may be called from any thread, except
// ProbeMachine, which may start `nvidia-smi` (call it from the main thread).
#ifndef LLMSYS_FRAMEWORK_CORE_PROVENANCE_H_
#define LLMSYS_FRAMEWORK_CORE_PROVENANCE_H_

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace llmsys::core {

// ---- SHA-256 (OpenSSL's libcrypto) ----

// The SHA-256 of `bytes`, as 64 lower-case hex digits.
std::string Sha256Hex(std::string_view bytes);
// The SHA-256 of the file's contents, as 64 lower-case hex digits. Reads in
// chunks (any size). NOT_FOUND / a read error names the file.
absl::StatusOr<std::string> Sha256File(const std::filesystem::path& path);
// True for exactly 64 hex digits (either case).
bool IsSha256Hex(std::string_view text);

// ---- the machine ----

struct MachineInfo {
  std::string hostname;
  std::string os;   // "Linux 6.1.0-18-amd64 x86_64 (Debian GNU/Linux 12)"
  std::string cpu;  // /proc/cpuinfo's model name; "" when unknown
  int cores = 0;    // logical CPUs
  int64_t memory_bytes = 0;       // physical memory
  std::vector<std::string> gpus;  // "NVIDIA H200", one per GPU; empty: none
};
MachineInfo ProbeMachine();

// GPU names from the text of `nvidia-smi -L` ("GPU 0: NVIDIA H200 (UUID:
// GPU-...)" per line).
std::vector<std::string> ParseNvidiaSmiList(std::string_view text);
// The model from the text of /proc/driver/nvidia/gpus/*/information
// ("Model: \t NVIDIA H200"); "" when absent.
std::string ParseNvidiaProcInformation(std::string_view text);
// /proc/cpuinfo's first "model name" (x86) or "Model"/"cpu model" (others);
// "" when absent.
std::string ParseCpuModel(std::string_view cpuinfo);

// ---- the build ----

struct BuildInfo {
  std::string version;      // the host's version, "0.1.0"
  std::string abi_version;  // the plugin ABI it implements, "1.1"
  // The commit the binary was built from, and whether tracked files
  // differed from it; unset when not built from a git checkout.
  std::optional<std::string> git_commit;
  std::optional<bool> git_dirty;
};
BuildInfo GetBuildInfo();

// ---- the process ----

// This process's command line (/proc/self/cmdline), words joined by spaces,
// each quoted for a POSIX shell when it needs to be.
std::string CommandLine();
// "2026-11-29T08:00:00Z".
std::string UtcTimestamp(std::chrono::system_clock::time_point t);

}  // namespace llmsys::core

#endif  // LLMSYS_FRAMEWORK_CORE_PROVENANCE_H_
