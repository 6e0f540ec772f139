#include "framework/runtime/op_contract.h"

#include "gtest/gtest.h"
#include "llmsys/ops.h"

namespace llmsys::runtime {
namespace {

TEST(OpContractTest, EveryStandardOpParsesInEnumOrder) {
  const std::vector<OpContract>& ops = StandardOpContracts();
  ASSERT_EQ(ops.size(), static_cast<size_t>(LLMSYS_OP_COUNT));
  EXPECT_EQ(ops[LLMSYS_OP_MATMUL].name, "matmul");
  EXPECT_EQ(ops[LLMSYS_OP_GELU].name, "gelu");
  EXPECT_EQ(ops[LLMSYS_OP_ATTENTION].name, "attention");
  EXPECT_EQ(ops[LLMSYS_OP_CROSS_ENTROPY].name, "cross_entropy");
  for (const OpContract& op : ops) {
    EXPECT_FALSE(op.doc.empty()) << op.name;
    EXPECT_FALSE(op.outputs.empty()) << op.name;
  }
}

TEST(OpContractTest, ParsesInputsAttributesAndOutputs) {
  const OpContract& ln = StandardOpContracts()[LLMSYS_OP_LAYER_NORM];
  ASSERT_EQ(ln.inputs.size(), 3u);
  EXPECT_EQ(ln.inputs[0].name, "x");
  EXPECT_FALSE(ln.inputs[0].optional);
  EXPECT_TRUE(ln.inputs[1].optional);
  ASSERT_EQ(ln.attributes.size(), 1u);
  EXPECT_EQ(ln.attributes[0].name, "eps");
  EXPECT_EQ(ln.attributes[0].type,
            static_cast<llmsys_type_t>(LLMSYS_TYPE_FLOAT));
  EXPECT_DOUBLE_EQ(std::get<double>(*ln.attributes[0].default_value), 1e-5);
  ASSERT_EQ(ln.outputs.size(), 3u);
  EXPECT_EQ(ln.outputs[0].name, "out");
  EXPECT_FALSE(ln.outputs[0].aux);
  EXPECT_EQ(ln.outputs[2].name, "rstd");
  EXPECT_TRUE(ln.outputs[2].aux);

  const OpContract& concat = StandardOpContracts()[LLMSYS_OP_CONCAT];
  EXPECT_TRUE(concat.inputs[0].variadic);
  const OpContract& sum = StandardOpContracts()[LLMSYS_OP_SUM];
  EXPECT_EQ(std::get<std::vector<int64_t>>(*sum.attributes[0].default_value),
            std::vector<int64_t>{});
  const OpContract& ce = StandardOpContracts()[LLMSYS_OP_CROSS_ENTROPY];
  EXPECT_EQ(std::get<int64_t>(*ce.attributes[0].default_value), -100);
  EXPECT_EQ(std::get<std::string>(*ce.attributes[2].default_value), "mean");
  const OpContract& pow = StandardOpContracts()[LLMSYS_OP_POW];
  EXPECT_TRUE(pow.attributes[0].required);
}

TEST(OpContractTest, ParsesListDefaultsAndNoArguments) {
  absl::StatusOr<OpContract> c = ParseOpSignature(
      "ctc_loss(Tensor log_probs, Tensor targets, int blank=0, "
      "float[] weights=[0.5, 2]) -> (Tensor loss, Tensor alpha)",
      "CTC");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(std::get<std::vector<double>>(*c->attributes[1].default_value),
            (std::vector<double>{0.5, 2.0}));
  absl::StatusOr<OpContract> none =
      ParseOpSignature("zeros() -> Tensor out", "");
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_TRUE(none->inputs.empty());
}

TEST(OpContractTest, ErrorsSayWhatWasExpectedAndWhere) {
  struct Case {
    const char* signature;
    const char* message;
  } cases[] = {
      {"Matmul(Tensor a) -> Tensor out", "column 1: expected a name"},
      {"f(Tensor a -> Tensor out", "expected ','"},
      {"f(Tensor a) Tensor out", "expected '->'"},
      {"f(tensor a) -> Tensor out", "expected a type"},
      {"f(int n, Tensor a) -> Tensor out", "tensor inputs must come before"},
      {"f(Tensor[] a, Tensor[] b) -> Tensor out", "at most one Tensor[]"},
      {"f(Tensor a, int n=1.5) -> Tensor out",
       "default '1.5' is not a valid int"},
      {"f(Tensor a, str s=mean) -> Tensor out", "is not a valid str"},
      {"f(Tensor a, bool b=yes) -> Tensor out", "is not a valid bool"},
      {"f(Tensor a) -> Tensor a", "name 'a' is used twice"},
      {"f(Tensor a) -> Tensor out extra", "unexpected text after the outputs"},
      {"f(Tensor a) -> (Tensor x, int y)", "expected 'Tensor'"},
  };
  for (const Case& c : cases) {
    absl::StatusOr<OpContract> r = ParseOpSignature(c.signature, "");
    ASSERT_FALSE(r.ok()) << c.signature;
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(std::string(r.status().message()).find(c.message),
              std::string::npos)
        << c.signature << " gave: " << r.status().message();
    EXPECT_NE(std::string(r.status().message()).find(c.signature),
              std::string::npos);
  }
}

}  // namespace
}  // namespace llmsys::runtime
