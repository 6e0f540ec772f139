// The conformance suite, run on every implementation of every op in every
// built-in plugin, and on a plugin with deliberate mistakes (it must fail,
// naming the op and the error).
#include "framework/conformance/conformance.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "absl/strings/str_join.h"
#include "framework/runtime/op_contract.h"

namespace llmsys::conformance {
namespace {

using runtime::Component;
using runtime::PluginRegistry;

PluginRegistry& Builtin() {
  static PluginRegistry* registry = [] {
    auto* r = new PluginRegistry;
    if (r->AddSearchDir(LLMSYS_BUILTIN_PLUGIN_DIR, "built-in").ok())
      r->LoadAll();
    return r;
  }();
  return *registry;
}

// The CPU ones: the CUDA plugin's run in tests/cuda (emulated and on a GPU).
std::vector<std::string> BuiltinOperators() {
  std::vector<std::string> ids;
  for (const Component* c : Builtin().Components()) {
    if (c->kind == LLMSYS_KIND_OPERATOR && c->device_type == kDLCPU)
      ids.push_back(c->id);
  }
  return ids;
}

class Conformance : public ::testing::TestWithParam<std::string> {};

TEST_P(Conformance, MatchesTheReferenceAndCentralDifferences) {
  absl::StatusOr<const Component*> c =
      Builtin().Find(LLMSYS_KIND_OPERATOR, GetParam());
  ASSERT_TRUE(c.ok()) << c.status();
  std::vector<OpReport> reports = CheckOperators({*c}, Builtin());
  ASSERT_EQ(reports.size(), 1u);
  const OpReport& r = reports[0];
  EXPECT_FALSE(r.skipped) << r.skip_reason;
  EXPECT_GT(r.cases, 0);
  EXPECT_TRUE(r.passed()) << absl::StrJoin(r.failures, "\n");
  if ((*c)->As<llmsys_operator_t>()->backward != nullptr && r.float64) {
    EXPECT_GE(r.gradcheck_error, 0);
    EXPECT_LT(r.gradcheck_error, 1e-6);
  }
}

INSTANTIATE_TEST_SUITE_P(Builtin, Conformance,
                         ::testing::ValuesIn(BuiltinOperators()),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           std::string name = info.param;
                           for (char& ch : name)
                             if (ch == '.') ch = '_';
                           return name;
                         });

TEST(ConformanceSuite, EveryStandardOpHasCasesAndADifferentiableReference) {
  for (const runtime::OpContract& op : runtime::StandardOpContracts()) {
    SCOPED_TRACE(op.name);
    EXPECT_FALSE(StandardCases(op.name).empty());
    absl::StatusOr<const Component*> ref =
        Builtin().Find(LLMSYS_KIND_OPERATOR, op.name + ".reference");
    ASSERT_TRUE(ref.ok()) << ref.status();
    EXPECT_NE((*ref)->As<llmsys_operator_t>()->backward, nullptr);
  }
}

TEST(ConformanceSuite, CatchesWrongValuesAndWrongGradients) {
  PluginRegistry wrong;
  ASSERT_TRUE(wrong
                  .LoadFile(std::string(LLMSYS_TEST_PLUGIN_DIR) +
                            "/wrong_ops/wrong_ops.so")
                  .ok());
  std::vector<OpReport> reports = CheckOperators(wrong.Components(), Builtin());
  ASSERT_EQ(reports.size(), 3u);
  for (const OpReport& r : reports) {
    SCOPED_TRACE(r.implementation);
    if (r.implementation == "add.wrong") {
      ASSERT_FALSE(r.passed());
      EXPECT_NE(r.failures[0].find("output 'out' differs"), std::string::npos)
          << r.failures[0];
      EXPECT_LT(r.backward_error, 0);  // it has no backward
    } else if (r.implementation == "relu.wrong") {
      ASSERT_FALSE(r.passed());
      EXPECT_NE(r.failures[0].find("gradient of 'x' differs"),
                std::string::npos)
          << r.failures[0];
      EXPECT_GT(r.gradcheck_error, 0.1);
    } else {
      EXPECT_EQ(r.implementation, "exp.fast");
      EXPECT_TRUE(r.passed()) << absl::StrJoin(r.failures, "\n");
      EXPECT_FALSE(r.float64);
      EXPECT_LT(r.gradcheck_error, 0);  // not run without float64
    }
  }
}

}  // namespace
}  // namespace llmsys::conformance
