// framework/runtime/parameters.h — the parameters and buffers a model
// declares through the host (host.h declare_parameter / declare_buffer).
//
// The host owns their memory: parameters are leaves that require a
// gradient, initialized from the run's seed and their name (so adding a
// parameter never changes another's initial values); buffers (a key/value
// cache) are zero-filled and never trained. Declaring a name again returns
// the same value when shape and dtype agree, and is an error otherwise.
//
//   ParameterStore store(/*seed=*/42, tensor::kCpu);
//   LLMSYS_ASSIGN_OR_RETURN(Var w, store.Declare(decl, /*trainable=*/true));
//
// Thread-safety: one thread (the model's create and forward).
#ifndef LLMSYS_FRAMEWORK_RUNTIME_PARAMETERS_H_
#define LLMSYS_FRAMEWORK_RUNTIME_PARAMETERS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "framework/autograd/autograd.h"
#include "llmsys/host.h"

namespace llmsys::runtime {

struct Parameter {
  std::string name;
  autograd::Var var;
  bool trainable = true;  // false for buffers
  uint32_t flags = 0;     // LLMSYS_PARAMETER_*
};

class ParameterStore {
 public:
  ParameterStore(uint64_t seed, DLDevice device);

  // Declares (or looks up) `decl.name`. Errors name the parameter and say
  // what is wrong (shape, dtype, initializer).
  absl::StatusOr<autograd::Var> Declare(const llmsys_parameter_decl_t& decl,
                                        bool trainable);
  // Declaration order.
  const std::vector<Parameter>& all() const { return items_; }
  const Parameter* Find(const std::string& name) const;

 private:
  uint64_t seed_;
  DLDevice device_;
  std::vector<Parameter> items_;
};

}  // namespace llmsys::runtime

#endif  // LLMSYS_FRAMEWORK_RUNTIME_PARAMETERS_H_
