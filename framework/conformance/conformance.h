// framework/conformance/conformance.h — the conformance suite: checks any
// implementation of a standard op against the reference implementation and
// against central differences.
//
// For every case of the op (several shapes, odd sizes, attribute
// variations, strided inputs where it matters):
//   1. shapes and dtypes of every output equal the reference's;
//   2. values equal the reference's within the dtype's tolerance, in
//      float32 and (when the implementation takes it) float64;
//   3. input gradients equal the reference's for random output gradients;
//   4. in float64, the implementation's own backward equals central
//      differences of its own forward: |analytic - numeric| / max(1,
//      |numeric|) < 1e-6.
// Outputs and gradients are poisoned with NaN before each call, so an
// element an implementation forgets to write fails the check.
//
//   OpReport r = CheckOperator(*candidate, *reference);
//   if (!r.passed()) std::cerr << r.failures[0];
//
// `llmsys plugins check FILE` and tests/conformance run this suite.
// Thread-safety: pure functions over the components they are given.
#ifndef LLMSYS_FRAMEWORK_CONFORMANCE_CONFORMANCE_H_
#define LLMSYS_FRAMEWORK_CONFORMANCE_CONFORMANCE_H_

#include <string>
#include <vector>

#include "framework/runtime/operator_call.h"
#include "framework/runtime/registry.h"
#include "framework/tensor/tensor.h"

namespace llmsys::conformance {

using runtime::AttrList;
using tensor::Tensor;

// One input configuration. Float inputs are given in float64 and converted
// to the dtype under test; index and mask inputs are used as they are.
struct OpCase {
  std::string label;           // "(3, 1, 5) * (4, 1)"
  std::vector<Tensor> inputs;  // undefined: an absent optional input
  AttrList attrs;
  runtime::CallRng rng{1234, 5ull << 32};
};

// The cases for standard op `op`; empty for ops the suite does not know.
std::vector<OpCase> StandardCases(const std::string& op);

struct Tolerances {
  double float32 = 1e-4;    // forward and backward versus the reference
  double float64 = 1e-9;    // forward and backward versus the reference
  double gradcheck = 1e-6;  // float64, versus central differences
  double step = 1e-6;       // central-difference step
};

struct OpReport {
  std::string op;
  std::string implementation;  // component id
  std::string file;
  int cases = 0;
  bool skipped = false;  // no cases, or no reference for the op
  std::string skip_reason;
  bool float64 = false;         // the implementation took float64 inputs
  double forward_error = 0;     // worst relative error versus the reference
  double backward_error = -1;   // as forward_error; -1: no backward
  double gradcheck_error = -1;  // worst, versus central differences; -1 not run
  std::vector<std::string> failures;  // "case ...: what" (the first few)
  bool passed() const { return failures.empty(); }
};

// Checks `candidate` (an operator component) against `reference` (the
// oracle for the same op; may be the candidate itself, which still runs the
// gradient check).
OpReport CheckOperator(const runtime::Component& candidate,
                       const runtime::Component& reference,
                       const runtime::OpContract& contract,
                       const Tolerances& tolerances = {});

// Checks every operator of `candidates` against `<op>.reference` in
// `oracle` (a registry holding the reference plugin).
std::vector<OpReport> CheckOperators(
    const std::vector<const runtime::Component*>& candidates,
    const runtime::PluginRegistry& oracle, const Tolerances& tolerances = {});

}  // namespace llmsys::conformance

#endif  // LLMSYS_FRAMEWORK_CONFORMANCE_CONFORMANCE_H_
