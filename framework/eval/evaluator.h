// framework/eval/evaluator.h — the host's side of an evaluator plugin
// component: create it with checked parameters, feed it segments, read its
// metrics and signature.
//
// Used by `llmsys eval` and by the [[evaluate]] entries of experiments.
//
//   LLMSYS_ASSIGN_OR_RETURN(const runtime::Component* c,
//                           registry.Find(LLMSYS_KIND_EVALUATOR, "bleu"));
//   LLMSYS_ASSIGN_OR_RETURN(auto bleu, Evaluator::Create(*c, {}));
//   LLMSYS_RETURN_IF_ERROR(bleu->AddText({"the cat"}, {{"the cat"}}));
//   LLMSYS_ASSIGN_OR_RETURN(EvalResult r, bleu->Result());
//
// Metric names may contain dots: "counts.0" .. "counts.3" are the elements
// of a list `counts`, "scores.rouge1.precision" a field of nested objects;
// MetricsJson() builds that structure.
//
// Thread-safety: one Evaluator is used by one thread at a time.
// Ownership: the Evaluator owns its plugin instance; the component (and so
// its plugin) must outlive it.
#ifndef LLMSYS_FRAMEWORK_EVAL_EVALUATOR_H_
#define LLMSYS_FRAMEWORK_EVAL_EVALUATOR_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "framework/runtime/param_schema.h"
#include "framework/runtime/plugin.h"
#include "llmsys/evaluator.h"
#include "nlohmann/json_fwd.hpp"

namespace llmsys::eval {

struct EvalResult {
  std::vector<std::pair<std::string, double>> metrics;  // in emitted order
  std::string signature;

  // The value of metric `name`, if emitted.
  std::optional<double> Get(const std::string& name) const;
};

// The references of one segment; std::nullopt marks a missing reference.
using References = std::vector<std::optional<std::string>>;

class Evaluator {
 public:
  // The parameters are checked against the component's schema; an error
  // names the evaluator and the parameter.
  static absl::StatusOr<std::unique_ptr<Evaluator>> Create(
      const runtime::Component& component,
      const std::vector<std::pair<std::string, runtime::ParamValue>>& params);
  ~Evaluator();
  Evaluator(const Evaluator&) = delete;
  Evaluator& operator=(const Evaluator&) = delete;

  const std::string& id() const { return component_->id; }
  // LLMSYS_EVAL_* flags: what Add* the evaluator reads.
  uint32_t inputs() const;

  // Hypotheses and their references (refs[i] for hyps[i]; segments may have
  // different numbers of references: the shorter are padded with missing).
  absl::Status AddText(const std::vector<std::string>& hyps,
                       const std::vector<References>& refs);
  // Per-segment natural-log probability sums and token counts.
  absl::Status AddLogProbs(const std::vector<double>& log_probs,
                           const std::vector<int64_t>& token_counts);
  // Predictions and labels, one each per segment.
  absl::Status AddPredictions(const std::vector<int64_t>& predictions,
                              const std::vector<int64_t>& labels);

  absl::StatusOr<EvalResult> Result();

 private:
  Evaluator() = default;
  absl::Status Check(uint32_t needed, const char* what) const;
  absl::Status Send(const llmsys_eval_batch_t& batch);

  const runtime::Component* component_ = nullptr;
  void* instance_ = nullptr;
};

// The metrics as one JSON object, dotted names nested ("a.0", "a.1" ->
// "a": [..]; "s.x.p" -> "s": {"x": {"p": ..}}); integral values below 2^53
// are written as integers, NaN and infinities as null. A name whose path
// runs into another metric ("a" and "a.b"), or skips list positions, is
// kept flat under its full name, so nothing is lost.
nlohmann::json MetricsJson(const EvalResult& result);

}  // namespace llmsys::eval

#endif  // LLMSYS_FRAMEWORK_EVAL_EVALUATOR_H_
