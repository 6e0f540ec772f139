// framework/runtime/graph.h — the host side of the ABI's opaque graph and
// value handles (abi/llmsys/host.h): what a model plugin's op calls,
// parameters and outputs land in.
//
// A Graph lives for one model call (create or forward). The plugin holds
// llmsys_value_t handles, each a reference-counted pointer to an autograd
// Var; the graph counts live handles so a leak shows in tests.
//
//   Graph graph(&dispatcher, &parameters);
//   model->forward(instance, graph.c(), &inputs, &err);
//   LLMSYS_ASSIGN_OR_RETURN(Var loss, graph.Output("loss"));
//
// Thread-safety: one thread, the one making the model call.
#ifndef LLMSYS_FRAMEWORK_RUNTIME_GRAPH_H_
#define LLMSYS_FRAMEWORK_RUNTIME_GRAPH_H_

#include <cstdint>
#include <map>
#include <string>

#include "absl/status/statusor.h"
#include "framework/autograd/autograd.h"
#include "framework/runtime/dispatch.h"
#include "framework/runtime/parameters.h"
#include "llmsys/host.h"

namespace llmsys::runtime {
class Graph;
}

// Completes the ABI's opaque types (global namespace, as host.h declares).
struct llmsys_graph {
  llmsys::runtime::Graph* graph;
};
struct llmsys_value {
  llmsys::autograd::Var var;
  int64_t refs = 1;
  llmsys::runtime::Graph* graph = nullptr;
};

namespace llmsys::runtime {

class Graph {
 public:
  // `parameters` may be null (no declarations allowed then).
  Graph(OpDispatcher* ops, ParameterStore* parameters);
  ~Graph();
  Graph(const Graph&) = delete;
  Graph& operator=(const Graph&) = delete;

  llmsys_graph_t* c() { return &handle_; }
  static Graph* From(llmsys_graph_t* g) {
    return g != nullptr ? g->graph : nullptr;
  }

  OpDispatcher* ops() const { return ops_; }
  ParameterStore* parameters() const { return parameters_; }

  // A new handle with one reference.
  llmsys_value_t NewValue(autograd::Var var);
  void Retain(llmsys_value_t v) { ++v->refs; }
  void Release(llmsys_value_t v);
  int64_t live_values() const { return live_; }

  // The pipeline stage the model call builds (host.h pipeline_stage): 0 of
  // 1 unless set; `stage_asked()` says whether the model asked.
  void set_stage(uint32_t stage, uint32_t num_stages) {
    stage_ = stage;
    num_stages_ = num_stages;
  }
  uint32_t stage() const { return stage_; }
  uint32_t num_stages() const { return num_stages_; }
  bool stage_asked() const { return stage_asked_; }
  void mark_stage_asked() { stage_asked_ = true; }

  absl::Status SetOutput(const std::string& name, autograd::Var var);
  // NOT_FOUND names the outputs that were set.
  absl::StatusOr<autograd::Var> Output(const std::string& name) const;
  const std::map<std::string, autograd::Var>& outputs() const {
    return outputs_;
  }

 private:
  llmsys_graph handle_;
  OpDispatcher* ops_;
  ParameterStore* parameters_;
  std::map<std::string, autograd::Var> outputs_;
  int64_t live_ = 0;
  uint32_t stage_ = 0, num_stages_ = 1;
  bool stage_asked_ = false;
};

}  // namespace llmsys::runtime

#endif  // LLMSYS_FRAMEWORK_RUNTIME_GRAPH_H_
