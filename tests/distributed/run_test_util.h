// What the `mpirun -np N llmsys run` tests share: the launcher's command
// line and the losses a run directory's metrics.jsonl records.
#ifndef LLMSYS_TESTS_DISTRIBUTED_RUN_TEST_UTIL_H_
#define LLMSYS_TESTS_DISTRIBUTED_RUN_TEST_UTIL_H_

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace llmsys::cli_test {

// `mpirun -np RANKS llmsys`, told that root may run it and that the ranks
// may share fewer cores, with `env` ("NAME=value ...") added; the
// arguments follow.
inline std::string Mpirun(int ranks, const std::string& env = "") {
  return "env -u LLMSYS_PLUGIN_PATH OMPI_ALLOW_RUN_AS_ROOT=1 "
         "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 "
         "OMPI_MCA_rmaps_base_oversubscribe=1 " +
         env + " " LLMSYS_MPIEXEC " -np " + std::to_string(ranks) + " " +
         LLMSYS_BINARY;
}

// step -> training loss, and step -> validation loss, of a run directory;
// a step's training loss written twice is a test failure.
struct Losses {
  std::map<int64_t, double> train, val;
  int64_t records = 0;
};

inline Losses Read(const std::filesystem::path& run) {
  Losses l;
  std::ifstream in(run / "metrics.jsonl");
  std::string line;
  while (std::getline(in, line)) {
    const nlohmann::json j = nlohmann::json::parse(line);
    ++l.records;
    if (j.contains("loss")) {
      EXPECT_FALSE(l.train.count(j["step"])) << "step written twice: " << line;
      l.train[j["step"]] = j["loss"];
    }
    if (j.contains("val_loss")) l.val[j["step"]] = j["val_loss"];
  }
  return l;
}

// Every step of `want` in `got`, within `rel` relative.
inline void ExpectClose(const std::map<int64_t, double>& got,
                        const std::map<int64_t, double>& want, double rel,
                        const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (const auto& [step, w] : want) {
    ASSERT_TRUE(got.count(step)) << what << " step " << step;
    EXPECT_LE(std::abs(got.at(step) - w), rel * std::abs(w))
        << what << " step " << step << ": " << got.at(step) << " vs " << w;
  }
}

inline nlohmann::json ReadJson(const std::filesystem::path& file) {
  std::ifstream in(file);
  return nlohmann::json::parse(in);
}

}  // namespace llmsys::cli_test

#endif  // LLMSYS_TESTS_DISTRIBUTED_RUN_TEST_UTIL_H_
