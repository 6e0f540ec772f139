#include "framework/runtime/graph.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace llmsys::runtime {

Graph::Graph(OpDispatcher* ops, ParameterStore* parameters)
    : handle_{this}, ops_(ops), parameters_(parameters) {}

Graph::~Graph() = default;

llmsys_value_t Graph::NewValue(autograd::Var var) {
  ++live_;
  return new llmsys_value{std::move(var), 1, this};
}

void Graph::Release(llmsys_value_t v) {
  if (--v->refs > 0) return;
  --live_;
  delete v;
}

absl::Status Graph::SetOutput(const std::string& name, autograd::Var var) {
  if (name.empty())
    return absl::InvalidArgumentError("set_output: an output needs a name");
  if (name == "loss" && var->data.numel() != 1)
    return absl::InvalidArgumentError(absl::StrCat(
        "set_output: 'loss' must be a scalar, got ", var->data.Describe()));
  outputs_[name] = std::move(var);
  return absl::OkStatus();
}

absl::StatusOr<autograd::Var> Graph::Output(const std::string& name) const {
  auto it = outputs_.find(name);
  if (it != outputs_.end()) return it->second;
  std::vector<std::string> names;
  for (const auto& [n, v] : outputs_) names.push_back(n);
  return absl::NotFoundError(absl::StrCat(
      "the model set no output '", name,
      "' (it set: ", names.empty() ? "none" : absl::StrJoin(names, ", "), ")"));
}

}  // namespace llmsys::runtime
