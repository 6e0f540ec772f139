#include "framework/eval/evaluator.h"

#include <cmath>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "framework/core/status_macros.h"
#include "framework/tensor/tensor.h"
#include "llmsys/evaluator.h"
#include "nlohmann/json.hpp"

namespace llmsys::eval {
namespace {

template <class T>
absl::StatusOr<tensor::Tensor> Vector(const std::vector<T>& values,
                                      DLDataType dtype) {
  LLMSYS_ASSIGN_OR_RETURN(
      tensor::Tensor t,
      tensor::Tensor::Zeros({static_cast<int64_t>(values.size())}, dtype,
                            DLDevice{kDLCPU, 0}));
  if (!values.empty())
    std::memcpy(t.data(), values.data(), values.size() * sizeof(T));
  return t;
}

struct Sink {
  EvalResult* result;
  static void Emit(void* data, const char* name, double value) {
    static_cast<Sink*>(data)->result->metrics.emplace_back(
        name != nullptr ? name : "", value);
  }
};

bool IsIndex(const std::string& s) {
  if (s.empty() || s.size() > 9) return false;
  for (char c : s)
    if (c < '0' || c > '9') return false;
  return true;
}

}  // namespace

std::optional<double> EvalResult::Get(const std::string& name) const {
  for (const auto& [n, v] : metrics)
    if (n == name) return v;
  return std::nullopt;
}

absl::StatusOr<std::unique_ptr<Evaluator>> Evaluator::Create(
    const runtime::Component& component,
    const std::vector<std::pair<std::string, runtime::ParamValue>>& params) {
  if (component.kind != LLMSYS_KIND_EVALUATOR)
    return absl::InvalidArgumentError(
        absl::StrCat(component.id, " is not an evaluator"));
  std::unique_ptr<Evaluator> e(new Evaluator);
  e->component_ = &component;
  absl::StatusOr<runtime::ParamPack> pack =
      runtime::ParamPack::Make(component.params, params);
  if (!pack.ok())
    return absl::InvalidArgumentError(absl::StrCat(
        "evaluator ", component.id, ": ", pack.status().message()));
  char message[1024] = {};
  llmsys_error_t err{message, sizeof(message)};
  const llmsys_status_t s = component.As<llmsys_evaluator_t>()->create(
      pack->c_params(), &e->instance_, &err);
  if (s != LLMSYS_STATUS_OK) {
    e->instance_ = nullptr;  // nothing to destroy, whatever create left
    return runtime::PluginStatus(s, component, "create", message);
  }
  return e;
}

Evaluator::~Evaluator() {
  if (instance_ != nullptr)
    component_->As<llmsys_evaluator_t>()->destroy(instance_);
}

uint32_t Evaluator::inputs() const {
  return component_->As<llmsys_evaluator_t>()->inputs;
}

absl::Status Evaluator::Check(uint32_t needed, const char* what) const {
  if ((inputs() & needed) != 0) return absl::OkStatus();
  std::string reads;
  if (inputs() & LLMSYS_EVAL_TEXT) reads += " hypotheses and references";
  if (inputs() & LLMSYS_EVAL_LOG_PROBS) reads += " log-probabilities";
  if (inputs() & LLMSYS_EVAL_PREDICTIONS) reads += " predictions and labels";
  return absl::InvalidArgumentError(
      absl::StrCat("evaluator ", id(), " does not read ", what,
                   reads.empty() ? "" : "; it reads" + reads));
}

absl::Status Evaluator::AddText(const std::vector<std::string>& hyps,
                                const std::vector<References>& refs) {
  LLMSYS_RETURN_IF_ERROR(Check(LLMSYS_EVAL_TEXT, "hypotheses and references"));
  if (refs.size() != hyps.size())
    return absl::InvalidArgumentError(absl::StrCat(
        hyps.size(), " hypotheses but ", refs.size(), " reference sets"));
  const size_t count = hyps.size();
  size_t num_refs = 0;
  for (const References& r : refs) num_refs = std::max(num_refs, r.size());
  std::vector<const char*> hyp_ptrs(count);
  std::vector<const char*> ref_ptrs(count * num_refs, nullptr);
  for (size_t i = 0; i < count; ++i) {
    hyp_ptrs[i] = hyps[i].c_str();
    for (size_t r = 0; r < refs[i].size(); ++r)
      if (refs[i][r].has_value()) ref_ptrs[r * count + i] = refs[i][r]->c_str();
  }
  llmsys_eval_batch_t batch{};
  batch.struct_size = sizeof(batch);
  batch.count = static_cast<uint32_t>(count);
  batch.hypotheses = hyp_ptrs.data();
  batch.references = ref_ptrs.data();
  batch.num_references = static_cast<uint32_t>(num_refs);
  return Send(batch);
}

absl::Status Evaluator::AddLogProbs(const std::vector<double>& log_probs,
                                    const std::vector<int64_t>& token_counts) {
  LLMSYS_RETURN_IF_ERROR(Check(LLMSYS_EVAL_LOG_PROBS, "log-probabilities"));
  if (log_probs.size() != token_counts.size())
    return absl::InvalidArgumentError(
        absl::StrCat(log_probs.size(), " log-probabilities but ",
                     token_counts.size(), " token counts"));
  LLMSYS_ASSIGN_OR_RETURN(tensor::Tensor lp,
                          Vector(log_probs, LLMSYS_DTYPE_F64));
  LLMSYS_ASSIGN_OR_RETURN(tensor::Tensor n,
                          Vector(token_counts, LLMSYS_DTYPE_I64));
  const DLTensor lp_dl = lp.Dl();
  const DLTensor n_dl = n.Dl();
  llmsys_eval_batch_t batch{};
  batch.struct_size = sizeof(batch);
  batch.count = static_cast<uint32_t>(log_probs.size());
  batch.log_probs = &lp_dl;
  batch.token_counts = &n_dl;
  return Send(batch);
}

absl::Status Evaluator::AddPredictions(const std::vector<int64_t>& predictions,
                                       const std::vector<int64_t>& labels) {
  LLMSYS_RETURN_IF_ERROR(
      Check(LLMSYS_EVAL_PREDICTIONS, "predictions and labels"));
  if (predictions.size() != labels.size())
    return absl::InvalidArgumentError(absl::StrCat(
        predictions.size(), " predictions but ", labels.size(), " labels"));
  LLMSYS_ASSIGN_OR_RETURN(tensor::Tensor p,
                          Vector(predictions, LLMSYS_DTYPE_I64));
  LLMSYS_ASSIGN_OR_RETURN(tensor::Tensor l, Vector(labels, LLMSYS_DTYPE_I64));
  const DLTensor p_dl = p.Dl();
  const DLTensor l_dl = l.Dl();
  llmsys_eval_batch_t batch{};
  batch.struct_size = sizeof(batch);
  batch.count = static_cast<uint32_t>(predictions.size());
  batch.predictions = &p_dl;
  batch.labels = &l_dl;
  return Send(batch);
}

absl::Status Evaluator::Send(const llmsys_eval_batch_t& batch) {
  char message[1024] = {};
  llmsys_error_t err{message, sizeof(message)};
  const llmsys_status_t s =
      component_->As<llmsys_evaluator_t>()->add(instance_, &batch, &err);
  if (s != LLMSYS_STATUS_OK)
    return runtime::PluginStatus(s, *component_, "add", message);
  return absl::OkStatus();
}

absl::StatusOr<EvalResult> Evaluator::Result() {
  EvalResult result;
  Sink sink{&result};
  llmsys_metric_sink_t c_sink{sizeof(llmsys_metric_sink_t), &sink, &Sink::Emit};
  std::vector<char> signature(4096, '\0');
  char message[1024] = {};
  llmsys_error_t err{message, sizeof(message)};
  const llmsys_status_t s = component_->As<llmsys_evaluator_t>()->result(
      instance_, &c_sink, signature.data(), signature.size(), &err);
  if (s != LLMSYS_STATUS_OK)
    return runtime::PluginStatus(s, *component_, "result", message);
  signature.back() = '\0';
  result.signature = signature.data();
  return result;
}

namespace {

nlohmann::json JsonNumber(double value) {
  if (!std::isfinite(value)) return nullptr;  // JSON has no NaN or infinity
  if (value == std::floor(value) && std::fabs(value) < 9007199254740992.0)
    return static_cast<int64_t>(value);
  return value;
}

// Where dotted `name` goes in `out`: a fresh slot, or nullptr when the path
// runs into a value already there (or skips list positions).
nlohmann::json* Slot(nlohmann::json& out, const std::string& name) {
  nlohmann::json* node = &out;
  size_t start = 0;
  while (true) {
    const size_t dot = name.find('.', start);
    const std::string part = name.substr(start, dot - start);
    const size_t index = IsIndex(part) ? std::stoul(part) : 0;
    const bool element =
        IsIndex(part) && ((node->is_null() && index == 0) ||
                          (node->is_array() && index <= node->size()));
    if (element) {
      if (node->is_null()) *node = nlohmann::json::array();
      if (index == node->size()) node->push_back(nullptr);
      node = &(*node)[index];
    } else {
      if (node->is_null()) *node = nlohmann::json::object();
      if (!node->is_object()) return nullptr;
      node = &(*node)[part];
    }
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  return node->is_null() ? node : nullptr;
}

}  // namespace

nlohmann::json MetricsJson(const EvalResult& result) {
  nlohmann::json out = nlohmann::json::object();
  for (const auto& [name, value] : result.metrics) {
    nlohmann::json* slot = Slot(out, name);
    if (slot != nullptr) {
      *slot = JsonNumber(value);
    } else {
      out[name] = JsonNumber(value);  // kept under its full name
    }
  }
  return out;
}

}  // namespace llmsys::eval
