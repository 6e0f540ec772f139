// Every operator of the emulated llmsys.cuda plugin (the real kernels, run
// on the CPU by tests/cuda/emu) through the conformance suite against the
// CPU reference, on the emulated device: shapes, values, gradients and the
// float64 central-difference check, as `llmsys plugins check` does for CPU
// plugins. gpu_test.cc runs the same on a GPU with the real cuda.so.
#include "framework/conformance/conformance.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <string>
#include <vector>

#include "tests/cuda/cuda_test_util.h"

namespace llmsys::cuda_test {
namespace {

const runtime::PluginRegistry& Oracle() {
  static const runtime::PluginRegistry* const oracle = [] {
    auto* r = new runtime::PluginRegistry;
    absl::Status s =
        r->LoadFile(std::string(LLMSYS_BUILTIN_PLUGIN_DIR) + "/reference.so");
    EXPECT_TRUE(s.ok()) << s;
    return r;
  }();
  return *oracle;
}

// One test per operator, so a failure names the component.
class EmulatedConformanceTest : public ::testing::TestWithParam<std::string> {};

TEST_P(EmulatedConformanceTest, MatchesTheReference) {
  const runtime::PluginRegistry& plugin = EmulatedPlugin();
  absl::StatusOr<const runtime::Component*> c =
      plugin.Find(LLMSYS_KIND_OPERATOR, GetParam(), kDLCUDA);
  ASSERT_TRUE(c.ok()) << c.status();
  const std::vector<conformance::OpReport> reports =
      conformance::CheckOperators({*c}, Oracle());
  ASSERT_EQ(reports.size(), 1u);
  const conformance::OpReport& r = reports[0];
  if (r.skipped) GTEST_SKIP() << r.skip_reason;
  std::printf(
      "%s: %d cases, float64 %s, forward %.3g, backward %.3g, "
      "gradcheck %.3g\n",
      r.implementation.c_str(), r.cases, r.float64 ? "yes" : "no",
      r.forward_error, r.backward_error, r.gradcheck_error);
  for (const std::string& f : r.failures) ADD_FAILURE() << f;
}

std::vector<std::string> OperatorIds() {
  std::vector<std::string> ids;
  for (const runtime::Component* c : EmulatedPlugin().Components())
    if (c->kind == LLMSYS_KIND_OPERATOR) ids.push_back(c->id);
  return ids;
}

INSTANTIATE_TEST_SUITE_P(CudaEmu, EmulatedConformanceTest,
                         ::testing::ValuesIn(OperatorIds()),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           std::string name = info.param;
                           for (char& ch : name)
                             if (ch == '.') ch = '_';
                           return name;
                         });

}  // namespace
}  // namespace llmsys::cuda_test
