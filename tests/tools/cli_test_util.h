// tests/tools/cli_test_util.h — running the built `llmsys` command from a
// test and capturing what it prints.
#ifndef LLMSYS_TESTS_TOOLS_CLI_TEST_UTIL_H_
#define LLMSYS_TESTS_TOOLS_CLI_TEST_UTIL_H_

#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "gtest/gtest.h"

namespace llmsys::cli_test {

struct Result {
  int exit_code = -1;
  std::string out;
  std::string err;
};

// Runs a shell command line; captures stdout and stderr.
inline Result RunShell(const std::string& command_line) {
  const std::string err_file =
      ::testing::TempDir() + "llmsys_cli_stderr_" + std::to_string(getpid());
  const std::string command = command_line + " 2>" + err_file;
  Result r;
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return r;
  std::array<char, 4096> buffer;
  size_t n;
  while ((n = fread(buffer.data(), 1, buffer.size(), pipe)) > 0)
    r.out.append(buffer.data(), n);
  int status = pclose(pipe);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  std::ifstream in(err_file);
  std::stringstream ss;
  ss << in.rdbuf();
  r.err = ss.str();
  std::remove(err_file.c_str());
  return r;
}

// Runs `llmsys ARGS` (a shell command line) with a clean plugin path;
// captures stdout and stderr.
inline Result RunLlmsys(const std::string& args) {
  return RunShell("env -u LLMSYS_PLUGIN_PATH " + std::string(LLMSYS_BINARY) +
                  " " + args);
}

// stdout followed by stderr, for tests that read a table and its notes.
struct Output {
  int code = -1;
  std::string text;
};

inline Output RunLlmsysMerged(const std::string& args) {
  Result r = RunLlmsys(args);
  return {r.exit_code, r.out + r.err};
}

// A 1-layer gpt on a 100-line corpus, written into `dir` with `rest` (more
// sections: [train], [generate], ...) appended; returns the experiment file.
// Its runs go to DIR/runs.
inline std::string WriteTinyGpt(const std::string& dir,
                                const std::string& rest) {
  std::filesystem::create_directories(dir);
  const std::string toml = dir + "/tiny.toml";
  std::ofstream corpus(dir + "/corpus.txt");
  for (int i = 0; i < 100; ++i) corpus << "to be or not to be, that is it\n";
  std::ofstream out(toml);
  out << "[experiment]\noutput = \"" << dir << "/runs\"\n"
      << "[data]\ntrain = \"" << dir << "/corpus.txt\"\n"
      << "[model]\nuse = \"gpt\"\nn_layer = 1\nn_head = 2\nn_embd = 16\n"
      << rest;
  return toml;
}

inline bool Contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

}  // namespace llmsys::cli_test

#endif  // LLMSYS_TESTS_TOOLS_CLI_TEST_UTIL_H_
