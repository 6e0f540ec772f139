// framework/runtime/op_contract.h — op contracts parsed from their
// signatures (grammar in abi/llmsys/ops.h).
//
//   absl::StatusOr<OpContract> c = ParseOpSignature(
//       "softmax(Tensor x, int dim=-1) -> Tensor out", "Softmax along dim.");
//   const std::vector<OpContract>& all = StandardOpContracts();
//
// Thread-safety: ParseOpSignature is pure; StandardOpContracts is built once,
// thread-safely, on first use.
#ifndef LLMSYS_FRAMEWORK_RUNTIME_OP_CONTRACT_H_
#define LLMSYS_FRAMEWORK_RUNTIME_OP_CONTRACT_H_

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "framework/runtime/param_schema.h"

namespace llmsys::runtime {

struct OpTensorArg {
  std::string name;
  bool optional = false;  // Tensor?
  bool variadic = false;  // Tensor[]
};

struct OpOutput {
  std::string name;
  bool aux = false;  // Tensor(aux): not differentiable
};

struct OpContract {
  std::string name;
  std::string signature;
  std::string doc;
  std::vector<OpTensorArg> inputs;
  ParamSchema attributes;  // in signature order
  std::vector<OpOutput> outputs;
};

// Parses one signature. Errors say what was expected at which column.
absl::StatusOr<OpContract> ParseOpSignature(std::string_view signature,
                                            std::string_view doc);

// The contracts of LLMSYS_STANDARD_OPS, in order (index =
// llmsys_standard_op_t).
const std::vector<OpContract>& StandardOpContracts();

}  // namespace llmsys::runtime

#endif  // LLMSYS_FRAMEWORK_RUNTIME_OP_CONTRACT_H_
