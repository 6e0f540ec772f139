#include "framework/runtime/host_api.h"

#include <cstdlib>
#include <cstring>
#include <string>

#include "absl/strings/str_cat.h"
#include "framework/autograd/views.h"
#include "framework/core/logging.h"
#include "framework/core/thread_pool.h"
#include "framework/core/version.h"
#include "framework/runtime/couplings.h"
#include "framework/runtime/graph.h"
#include "framework/tensor/device.h"
#include "llmsys/version.h"

namespace llmsys::runtime {
namespace {

const HostApiOwner* Owner(const llmsys_host_api_t* host) {
  return static_cast<const HostApiOwner*>(host->host_data);
}

void HostLog(const llmsys_host_api_t* host, llmsys_log_level_t level,
             const char* message) {
  core::LogLevel l = core::LogLevel::kError;
  switch (level) {
    case LLMSYS_LOG_DEBUG:
      l = core::LogLevel::kDebug;
      break;
    case LLMSYS_LOG_INFO:
      l = core::LogLevel::kInfo;
      break;
    case LLMSYS_LOG_WARNING:
      l = core::LogLevel::kWarning;
      break;
    default:
      break;
  }
  core::Log(l, "[" + Owner(host)->plugin_id + "] " +
                   (message != nullptr ? message : "(null)"));
}

void* HostAlloc(const llmsys_host_api_t*, DLDevice device, size_t bytes,
                size_t alignment) {
  if (device.device_type != kDLCPU) {
    // The device's caching allocator: 256-byte aligned blocks.
    absl::StatusOr<tensor::DeviceBackend*> b = tensor::BackendFor(device);
    if (!b.ok() || alignment > 256) return nullptr;
    absl::StatusOr<void*> p = (*b)->Allocate(device, bytes);
    return p.ok() ? *p : nullptr;
  }
  if (alignment == 0) alignment = 64;
  if ((alignment & (alignment - 1)) != 0 || alignment < sizeof(void*))
    return nullptr;
  size_t rounded = (bytes + alignment - 1) / alignment * alignment;
  if (rounded == 0) rounded = alignment;
  return std::aligned_alloc(alignment, rounded);
}

void HostFree(const llmsys_host_api_t*, DLDevice device, void* ptr) {
  if (device.device_type == kDLCPU) {
    std::free(ptr);
    return;
  }
  absl::StatusOr<tensor::DeviceBackend*> b = tensor::BackendFor(device);
  if (b.ok()) (*b)->Free(device, ptr);
}

// Writes `status` into the plugin's error buffer and returns its code.
llmsys_status_t Report(const absl::Status& status, llmsys_error_t* err) {
  if (status.ok()) return LLMSYS_STATUS_OK;
  llmsys_error_set(err, "%s", std::string(status.message()).c_str());
  return static_cast<llmsys_status_t>(status.code());
}

absl::StatusOr<Graph*> GraphOf(llmsys_graph_t* g, const char* function) {
  Graph* graph = Graph::From(g);
  if (graph == nullptr)
    return absl::InvalidArgumentError(
        absl::StrCat(function,
                     ": the graph is NULL (graph functions work "
                     "only inside a model call)"));
  return graph;
}

absl::StatusOr<autograd::Var> VarOf(llmsys_value_t v, const char* function) {
  if (v == nullptr || !v->var)
    return absl::InvalidArgumentError(
        absl::StrCat(function, ": a value handle is NULL"));
  return v->var;
}

void ValueRetain(const llmsys_host_api_t*, llmsys_value_t v) {
  if (v != nullptr) v->graph->Retain(v);
}

void ValueRelease(const llmsys_host_api_t*, llmsys_value_t v) {
  if (v != nullptr) v->graph->Release(v);
}

llmsys_status_t ValueTensor(const llmsys_host_api_t*, llmsys_value_t value,
                            DLTensor* view, llmsys_error_t* err) {
  absl::StatusOr<autograd::Var> var = VarOf(value, "value_tensor");
  if (!var.ok()) return Report(var.status(), err);
  if (view == nullptr)
    return Report(absl::InvalidArgumentError("value_tensor: view is NULL"),
                  err);
  *view = (*var)->data.Dl();
  return LLMSYS_STATUS_OK;
}

llmsys_status_t ValueFromTensor(const llmsys_host_api_t*, llmsys_graph_t* g,
                                const DLTensor* src, llmsys_value_t* out,
                                llmsys_error_t* err) {
  absl::StatusOr<Graph*> graph = GraphOf(g, "value_from_tensor");
  if (!graph.ok()) return Report(graph.status(), err);
  if (src == nullptr || out == nullptr)
    return Report(
        absl::InvalidArgumentError("value_from_tensor: src or out is NULL"),
        err);
  // A host copy, then on the graph's device.
  absl::StatusOr<tensor::Tensor> copy = tensor::Tensor::CopyOf(*src);
  if (copy.ok() && (*graph)->ops() != nullptr)
    copy = copy->ToDevice((*graph)->ops()->device());
  if (!copy.ok())
    return Report(absl::Status(copy.status().code(),
                               absl::StrCat("value_from_tensor: ",
                                            copy.status().message())),
                  err);
  *out = (*graph)->NewValue(autograd::MakeLeaf(*std::move(copy)));
  return LLMSYS_STATUS_OK;
}

llmsys_status_t CallOp(const llmsys_host_api_t*, llmsys_graph_t* g,
                       const char* op, const llmsys_value_t* inputs,
                       uint32_t num_inputs, const llmsys_params_t* attrs,
                       llmsys_value_t* outputs, uint32_t num_outputs,
                       llmsys_error_t* err) {
  absl::StatusOr<Graph*> graph = GraphOf(g, "call_op");
  if (!graph.ok()) return Report(graph.status(), err);
  if (op == nullptr || (num_inputs > 0 && inputs == nullptr) ||
      (num_outputs > 0 && outputs == nullptr))
    return Report(
        absl::InvalidArgumentError("call_op: op, inputs or outputs is NULL"),
        err);
  std::vector<autograd::Var> vars(num_inputs);
  for (uint32_t i = 0; i < num_inputs; ++i) {
    if (inputs[i] != nullptr) vars[i] = inputs[i]->var;
  }
  AttrList attr_list;
  if (attrs != nullptr) {
    for (uint32_t i = 0; i < attrs->count; ++i) {
      const llmsys_param_t& p = attrs->items[i];
      absl::StatusOr<ParamValue> v = ParamValueFromC(p.value);
      if (p.name == nullptr || !v.ok())
        return Report(
            absl::InvalidArgumentError(absl::StrCat(
                "call_op ", op, ": attribute #", i, " (",
                p.name != nullptr ? p.name : "NULL", ") is malformed")),
            err);
      attr_list.emplace_back(p.name, *std::move(v));
    }
  }
  absl::StatusOr<std::vector<autograd::Var>> result =
      (*graph)->ops()->Call(op, vars, attr_list);
  if (!result.ok()) return Report(result.status(), err);
  if (result->size() != num_outputs)
    return Report(absl::InvalidArgumentError(absl::StrCat(
                      "call_op ", op, ": the op has ", result->size(),
                      " outputs, the call asked for ", num_outputs)),
                  err);
  for (uint32_t i = 0; i < num_outputs; ++i)
    outputs[i] = (*graph)->NewValue((*result)[i]);
  return LLMSYS_STATUS_OK;
}

llmsys_status_t DeclareAny(llmsys_graph_t* g,
                           const llmsys_parameter_decl_t* decl,
                           llmsys_value_t* out, bool trainable,
                           llmsys_error_t* err) {
  const char* function = trainable ? "declare_parameter" : "declare_buffer";
  absl::StatusOr<Graph*> graph = GraphOf(g, function);
  if (!graph.ok()) return Report(graph.status(), err);
  if (decl == nullptr || out == nullptr)
    return Report(absl::InvalidArgumentError(
                      absl::StrCat(function, ": decl or out is NULL")),
                  err);
  if ((*graph)->parameters() == nullptr)
    return Report(absl::FailedPreconditionError(absl::StrCat(
                      function, ": this model call cannot declare ",
                      trainable ? "parameters" : "buffers")),
                  err);
  absl::StatusOr<autograd::Var> var =
      (*graph)->parameters()->Declare(*decl, trainable);
  if (!var.ok()) return Report(var.status(), err);
  *out = (*graph)->NewValue(*std::move(var));
  return LLMSYS_STATUS_OK;
}

llmsys_status_t DeclareParameter(const llmsys_host_api_t*, llmsys_graph_t* g,
                                 const llmsys_parameter_decl_t* decl,
                                 llmsys_value_t* out, llmsys_error_t* err) {
  return DeclareAny(g, decl, out, /*trainable=*/true, err);
}

llmsys_status_t DeclareBuffer(const llmsys_host_api_t*, llmsys_graph_t* g,
                              const llmsys_parameter_decl_t* decl,
                              llmsys_value_t* out, llmsys_error_t* err) {
  return DeclareAny(g, decl, out, /*trainable=*/false, err);
}

llmsys_status_t SetOutput(const llmsys_host_api_t*, llmsys_graph_t* g,
                          const char* name, llmsys_value_t value,
                          llmsys_error_t* err) {
  absl::StatusOr<Graph*> graph = GraphOf(g, "set_output");
  if (!graph.ok()) return Report(graph.status(), err);
  absl::StatusOr<autograd::Var> var = VarOf(value, "set_output");
  if (!var.ok()) return Report(var.status(), err);
  return Report((*graph)->SetOutput(name != nullptr ? name : "", *var), err);
}

llmsys_status_t ValueView(const llmsys_host_api_t*, llmsys_graph_t* g,
                          uint32_t kind, llmsys_value_t value,
                          const int64_t* ints, uint32_t num_ints,
                          llmsys_value_t* out, llmsys_error_t* err) {
  absl::StatusOr<Graph*> graph = GraphOf(g, "value_view");
  if (!graph.ok()) return Report(graph.status(), err);
  absl::StatusOr<autograd::Var> var = VarOf(value, "value_view");
  if (!var.ok()) return Report(var.status(), err);
  if ((num_ints > 0 && ints == nullptr) || out == nullptr)
    return Report(absl::InvalidArgumentError("value_view: ints or out is NULL"),
                  err);
  absl::StatusOr<autograd::Var> view =
      autograd::ApplyView(static_cast<autograd::ViewKind>(kind), *var,
                          std::vector<int64_t>(ints, ints + num_ints));
  if (!view.ok()) return Report(view.status(), err);
  *out = (*graph)->NewValue(*std::move(view));
  return LLMSYS_STATUS_OK;
}

llmsys_status_t CallCouplings(const llmsys_host_api_t*, llmsys_graph_t* g,
                              const llmsys_coupling_t* layers,
                              uint32_t num_layers, llmsys_value_t x1,
                              llmsys_value_t x2, const llmsys_value_t* context,
                              uint32_t num_context, llmsys_value_t* out,
                              llmsys_error_t* err) {
  absl::StatusOr<Graph*> graph = GraphOf(g, "call_couplings");
  if (!graph.ok()) return Report(graph.status(), err);
  if ((num_layers > 0 && layers == nullptr) ||
      (num_context > 0 && context == nullptr) || out == nullptr)
    return Report(absl::InvalidArgumentError(
                      "call_couplings: layers, context or out is NULL"),
                  err);
  absl::StatusOr<autograd::Var> a = VarOf(x1, "call_couplings");
  if (!a.ok()) return Report(a.status(), err);
  absl::StatusOr<autograd::Var> b = VarOf(x2, "call_couplings");
  if (!b.ok()) return Report(b.status(), err);
  std::vector<autograd::Var> ctx;
  for (uint32_t i = 0; i < num_context; ++i) {
    absl::StatusOr<autograd::Var> c = VarOf(context[i], "call_couplings");
    if (!c.ok()) return Report(c.status(), err);
    ctx.push_back(*c);
  }
  absl::StatusOr<std::pair<autograd::Var, autograd::Var>> r = RunCouplings(
      **graph, std::vector<llmsys_coupling_t>(layers, layers + num_layers), *a,
      *b, ctx);
  if (!r.ok()) return Report(r.status(), err);
  out[0] = (*graph)->NewValue(r->first);
  out[1] = (*graph)->NewValue(r->second);
  return LLMSYS_STATUS_OK;
}

void ParallelFor(const llmsys_host_api_t*, int32_t num_threads,
                 int64_t num_tasks, void* arg,
                 void (*fn)(void* arg, int64_t task)) {
  if (fn == nullptr) return;
  core::ThreadPool::Global().Run(num_threads, num_tasks, arg, fn);
}

llmsys_status_t PipelineStage(const llmsys_host_api_t*, llmsys_graph_t* g,
                              uint32_t* stage, uint32_t* num_stages,
                              llmsys_error_t* err) {
  absl::StatusOr<Graph*> graph = GraphOf(g, "pipeline_stage");
  if (!graph.ok()) return Report(graph.status(), err);
  if (stage == nullptr || num_stages == nullptr)
    return Report(absl::InvalidArgumentError(
                      "pipeline_stage: stage or num_stages is NULL"),
                  err);
  (*graph)->mark_stage_asked();
  *stage = (*graph)->stage();
  *num_stages = (*graph)->num_stages();
  return LLMSYS_STATUS_OK;
}

}  // namespace

std::unique_ptr<llmsys_host_api_t> MakeHostApi(const HostApiOwner* owner) {
  auto api = std::make_unique<llmsys_host_api_t>();
  std::memset(api.get(), 0, sizeof(*api));
  api->struct_size = sizeof(llmsys_host_api_t);
  api->abi_major = LLMSYS_ABI_VERSION_MAJOR;
  api->abi_minor = LLMSYS_ABI_VERSION_MINOR;
  api->host_version = kHostVersion;
  api->host_data = const_cast<HostApiOwner*>(owner);
  api->log = &HostLog;
  api->alloc = &HostAlloc;
  api->free = &HostFree;
  api->value_retain = &ValueRetain;
  api->value_release = &ValueRelease;
  api->value_tensor = &ValueTensor;
  api->value_from_tensor = &ValueFromTensor;
  api->call_op = &CallOp;
  api->declare_parameter = &DeclareParameter;
  api->declare_buffer = &DeclareBuffer;
  api->set_output = &SetOutput;
  api->value_view = &ValueView;
  api->call_couplings = &CallCouplings;
  api->parallel_for = &ParallelFor;
  api->pipeline_stage = &PipelineStage;
  return api;
}

}  // namespace llmsys::runtime
