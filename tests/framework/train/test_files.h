// tests/framework/train/test_files.h — file helpers of the training tests
// (trainer_test, task_runs_test): a fresh directory per test, and whole
// files read and written as strings.
//
// Thread-safety: test-only, one thread.
#ifndef LLMSYS_TESTS_FRAMEWORK_TRAIN_TEST_FILES_H_
#define LLMSYS_TESTS_FRAMEWORK_TRAIN_TEST_FILES_H_

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace llmsys::train {

// An empty directory for the running test,
// <TempDir>/<prefix>_<pid>_<test name>; whatever was there is removed.
inline std::filesystem::path FreshTestDir(const std::string& prefix) {
  const std::filesystem::path dir =
      std::filesystem::path(::testing::TempDir()) /
      (prefix + "_" + std::to_string(getpid()) + "_" +
       ::testing::UnitTest::GetInstance()->current_test_info()->name());
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

// The whole file at `p` ("" when it cannot be read).
inline std::string Read(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Writes `text` to `p`, replacing the file.
inline void Write(const std::filesystem::path& p, const std::string& text) {
  std::ofstream(p, std::ios::binary) << text;
}

}  // namespace llmsys::train

#endif  // LLMSYS_TESTS_FRAMEWORK_TRAIN_TEST_FILES_H_
