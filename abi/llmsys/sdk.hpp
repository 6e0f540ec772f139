// llmsys/sdk.hpp — the header-only C++ SDK for plugin authors.
//
// It turns a component into a few lines of ordinary C++: derive from the
// kind's base class (Operator, Optimizer, Sampler, Evaluator, Model), give it
// a static Describe() and a constructor from Params, and list it in the
// LLMSYS_PLUGIN block. The SDK writes the C entry table and the trampolines,
// and turns every exception into a status code and message at the boundary
// (llmsys::sdk::Error keeps its code; anything else becomes INTERNAL).
//
//   class Sgd : public llmsys::sdk::Optimizer {
//    public:
//     static llmsys::sdk::Info Describe() {
//       return {.id = "sgd", .version = "1.0.0",
//               .description = "Stochastic gradient descent",
//               .params = {llmsys::sdk::ParamSpec::Float("momentum", 0.0,
//                              "momentum factor").Range(0.0, 1.0)}};
//     }
//     explicit Sgd(const llmsys::sdk::Params& p)
//         : momentum_(p.Float("momentum")) {}
//     void Step(const llmsys_optimizer_step_t& args) override { ... }
//
//    private:
//     double momentum_;
//   };
//
//   LLMSYS_PLUGIN("team7.optim", "0.1.0", "Our optimizers", "MIT") {
//     registry.Add<Sgd>();
//   }
//
// Compiled into each plugin; everything here has hidden visibility, so two
// plugins built from different SDK versions never share state.
// Thread-safety: as the C ABI says for each kind; Host() is set once in init.
#ifndef LLMSYS_SDK_HPP_
#define LLMSYS_SDK_HPP_

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <exception>
#include <functional>
#include <initializer_list>
#include <memory>
#include <new>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "llmsys/plugin.h"

// Hidden visibility for everything below, whatever flags the plugin is built
// with: two plugins never share the SDK's state (function-local statics).
#pragma GCC visibility push(hidden)

namespace llmsys::sdk {

// An error with a status code; thrown anywhere in plugin code, it reaches the
// host as that code and message.
class Error : public std::runtime_error {
 public:
  Error(llmsys_status_t code, const std::string& message)
      : std::runtime_error(message), code_(code) {}
  llmsys_status_t code() const { return code_; }

 private:
  llmsys_status_t code_;
};

[[noreturn]] inline void Fail(llmsys_status_t code,
                              const std::string& message) {
  throw Error(code, message);
}

// Throws INVALID_ARGUMENT (or `code`) with `message` unless `condition`.
inline void Require(bool condition, const std::string& message,
                    llmsys_status_t code = LLMSYS_STATUS_INVALID_ARGUMENT) {
  if (!condition) Fail(code, message);
}

// Runs `f` and converts any exception into a status and message.
template <class F>
llmsys_status_t Guard(llmsys_error_t* err, F&& f) noexcept {
  try {
    f();
    return LLMSYS_STATUS_OK;
  } catch (const Error& e) {
    llmsys_error_set(err, "%s", e.what());
    return e.code() == LLMSYS_STATUS_OK ? LLMSYS_STATUS_UNKNOWN : e.code();
  } catch (const std::bad_alloc&) {
    llmsys_error_set(err, "out of memory");
    return LLMSYS_STATUS_RESOURCE_EXHAUSTED;
  } catch (const std::exception& e) {
    llmsys_error_set(err, "uncaught C++ exception: %s", e.what());
    return LLMSYS_STATUS_INTERNAL;
  } catch (...) {
    llmsys_error_set(err, "uncaught C++ exception of unknown type");
    return LLMSYS_STATUS_UNKNOWN;
  }
}

// The host API table this plugin was given in init (nullptr before).
inline const llmsys_host_api_t*& HostSlot() {
  static const llmsys_host_api_t* host = nullptr;
  return host;
}
inline const llmsys_host_api_t* Host() { return HostSlot(); }

inline void Log(llmsys_log_level_t level, const std::string& message) {
  if (const llmsys_host_api_t* host = Host(); host != nullptr && host->log)
    host->log(host, level, message.c_str());
}

// Marks a loop kernel to be compiled for AVX-512 (x86-64-v4), AVX2+FMA
// (v3) and baseline x86-64, the best picked at load time from CPUID (GCC
// function multiversioning); a plain function with other compilers, other
// CPUs and under AddressSanitizer. For free functions, not lambdas.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && \
    !defined(__SANITIZE_ADDRESS__)
#define LLMSYS_MULTIVERSION \
  __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define LLMSYS_MULTIVERSION
#endif

// ---- the host's thread pool (parallel_for, ABI 1.2) ----

// The threads a compute call may use: ctx->num_threads, at least 1.
inline int Threads(const llmsys_call_context_t* ctx) {
  return ctx != nullptr && ctx->num_threads > 1 ? ctx->num_threads : 1;
}

// Runs fn(task) for task in [0, num_tasks) on the host's thread pool with
// the call's threads, or in order on this thread when the host has no pool
// (ABI < 1.2) or one thread is allowed. The first exception a task throws
// is rethrown here once every task has finished (the others still run).
template <class Fn>
void ParallelFor(const llmsys_call_context_t* ctx, int64_t num_tasks, Fn&& fn) {
  const int threads = Threads(ctx);
  const llmsys_host_api_t* host = ctx != nullptr ? ctx->host : nullptr;
  if (threads <= 1 || num_tasks <= 1 || host == nullptr ||
      !LLMSYS_HOST_HAS(host, parallel_for)) {
    for (int64_t t = 0; t < num_tasks; ++t) fn(t);
    return;
  }
  struct Shared {
    std::remove_reference_t<Fn>* fn;
    std::exception_ptr error;
    std::atomic<bool> failed{false};
  } shared{&fn, nullptr};
  host->parallel_for(host, threads, num_tasks, &shared,
                     [](void* arg, int64_t task) {
                       auto* s = static_cast<Shared*>(arg);
                       try {
                         (*s->fn)(task);
                       } catch (...) {
                         if (!s->failed.exchange(true))
                           s->error = std::current_exception();
                       }
                     });
  if (shared.error) std::rethrow_exception(shared.error);
}

// How many ranges ParallelRange cuts [0, n) into: at most one per thread,
// each of at least `grain` items (1 when n <= grain).
inline int64_t RangeParts(const llmsys_call_context_t* ctx, int64_t n,
                          int64_t grain) {
  if (n <= 0) return 0;
  const int64_t g = std::max<int64_t>(grain, 1);
  return std::max<int64_t>(1, std::min<int64_t>(Threads(ctx), (n + g - 1) / g));
}

// Runs fn(part, begin, end) for part in [0, parts), range part being
// [n * part / parts, n * (part + 1) / parts), through ParallelFor. Keep one
// partial per part and combine them in part order for a reduction that
// gives the same bits on every run with the same `parts`.
template <class Fn>
void ParallelParts(const llmsys_call_context_t* ctx, int64_t n, int64_t parts,
                   Fn&& fn) {
  ParallelFor(ctx, parts, [&](int64_t part) {
    fn(part, n * part / parts, n * (part + 1) / parts);
  });
}

// Splits [0, n) into RangeParts(ctx, n, grain) contiguous ranges and runs
// fn(begin, end) on each through ParallelFor. The ranges depend on n, grain
// and the thread count only.
template <class Fn>
void ParallelRange(const llmsys_call_context_t* ctx, int64_t n, int64_t grain,
                   Fn&& fn) {
  ParallelParts(ctx, n, RangeParts(ctx, n, grain),
                [&](int64_t, int64_t begin, int64_t end) { fn(begin, end); });
}

// ---------------------------------------------------------------------------
// Parameter schema

// One declared parameter; owns its strings. Build with the named
// constructors, refine with Range/Min/Max/Choices.
class ParamSpec {
 public:
  static ParamSpec Bool(std::string name, bool def, std::string doc) {
    ParamSpec p(std::move(name), LLMSYS_TYPE_BOOL, std::move(doc));
    p.spec_.default_value.as.i = def ? 1 : 0;
    return p;
  }
  static ParamSpec Int(std::string name, int64_t def, std::string doc) {
    ParamSpec p(std::move(name), LLMSYS_TYPE_INT, std::move(doc));
    p.spec_.default_value.as.i = def;
    return p;
  }
  static ParamSpec Float(std::string name, double def, std::string doc) {
    ParamSpec p(std::move(name), LLMSYS_TYPE_FLOAT, std::move(doc));
    p.spec_.default_value.as.f = def;
    return p;
  }
  static ParamSpec String(std::string name, std::string def, std::string doc) {
    ParamSpec p(std::move(name), LLMSYS_TYPE_STRING, std::move(doc));
    p.string_default_ = std::move(def);
    return p;
  }
  static ParamSpec IntList(std::string name, std::vector<int64_t> def,
                           std::string doc) {
    ParamSpec p(std::move(name), LLMSYS_TYPE_INT_LIST, std::move(doc));
    p.ints_default_ = std::move(def);
    return p;
  }
  static ParamSpec FloatList(std::string name, std::vector<double> def,
                             std::string doc) {
    ParamSpec p(std::move(name), LLMSYS_TYPE_FLOAT_LIST, std::move(doc));
    p.floats_default_ = std::move(def);
    return p;
  }
  // A parameter without a default: the experiment must set it.
  static ParamSpec Required(std::string name, llmsys_type_t type,
                            std::string doc) {
    ParamSpec p(std::move(name), type, std::move(doc));
    p.spec_.flags |= LLMSYS_PARAM_REQUIRED;
    return p;
  }

  ParamSpec& Min(double v) {
    spec_.flags |= LLMSYS_PARAM_HAS_MIN;
    spec_.min_value = v;
    return *this;
  }
  ParamSpec& Max(double v) {
    spec_.flags |= LLMSYS_PARAM_HAS_MAX;
    spec_.max_value = v;
    return *this;
  }
  ParamSpec& Range(double lo, double hi) { return Min(lo).Max(hi); }
  // Allowed values of a string parameter, '|'-separated: "mean|sum|none".
  ParamSpec& Choices(std::string choices) {
    choices_ = std::move(choices);
    has_choices_ = true;
    return *this;
  }

  // The C view; valid while this object lives and is not moved.
  const llmsys_param_spec_t* Get() {
    spec_.name = name_.c_str();
    spec_.doc = doc_.c_str();
    spec_.choices = has_choices_ ? choices_.c_str() : nullptr;
    switch (spec_.type) {
      case LLMSYS_TYPE_STRING:
        spec_.default_value.as.s = string_default_.c_str();
        break;
      case LLMSYS_TYPE_INT_LIST:
        spec_.default_value.as.ints = ints_default_.data();
        spec_.default_value.count = static_cast<uint32_t>(ints_default_.size());
        break;
      case LLMSYS_TYPE_FLOAT_LIST:
        spec_.default_value.as.floats = floats_default_.data();
        spec_.default_value.count =
            static_cast<uint32_t>(floats_default_.size());
        break;
      default:
        break;
    }
    return &spec_;
  }

 private:
  ParamSpec(std::string name, llmsys_type_t type, std::string doc)
      : name_(std::move(name)), doc_(std::move(doc)) {
    std::memset(&spec_, 0, sizeof(spec_));
    spec_.struct_size = sizeof(llmsys_param_spec_t);
    spec_.type = type;
    spec_.default_value.type = type;
  }

  std::string name_, doc_, choices_, string_default_;
  bool has_choices_ = false;
  std::vector<int64_t> ints_default_;
  std::vector<double> floats_default_;
  llmsys_param_spec_t spec_;
};

// Read access to a component's validated parameters (or an op call's
// attributes). Getters throw INVALID_ARGUMENT naming a missing or mistyped
// key, which only a host bug or a schema mismatch can cause.
class Params {
 public:
  explicit Params(const llmsys_params_t* params) : params_(params) {}
  explicit Params(const llmsys_params_t& params) : params_(&params) {}

  bool Has(std::string_view name) const { return Find(name) != nullptr; }
  bool Bool(std::string_view name) const {
    return Get(name, LLMSYS_TYPE_BOOL).as.i != 0;
  }
  int64_t Int(std::string_view name) const {
    return Get(name, LLMSYS_TYPE_INT).as.i;
  }
  double Float(std::string_view name) const {
    const llmsys_typed_value_t* v = Find(name);
    if (v != nullptr && v->type == LLMSYS_TYPE_INT)
      return static_cast<double>(v->as.i);
    return Get(name, LLMSYS_TYPE_FLOAT).as.f;
  }
  std::string String(std::string_view name) const {
    const char* s = Get(name, LLMSYS_TYPE_STRING).as.s;
    return s != nullptr ? s : "";
  }
  std::vector<int64_t> IntList(std::string_view name) const {
    const llmsys_typed_value_t& v = Get(name, LLMSYS_TYPE_INT_LIST);
    return std::vector<int64_t>(v.as.ints, v.as.ints + v.count);
  }
  std::vector<double> FloatList(std::string_view name) const {
    const llmsys_typed_value_t& v = Get(name, LLMSYS_TYPE_FLOAT_LIST);
    return std::vector<double>(v.as.floats, v.as.floats + v.count);
  }

 private:
  const llmsys_typed_value_t* Find(std::string_view name) const {
    if (params_ == nullptr) return nullptr;
    for (uint32_t i = 0; i < params_->count; ++i) {
      const char* n = params_->items[i].name;
      if (n != nullptr && name == n) return &params_->items[i].value;
    }
    return nullptr;
  }
  const llmsys_typed_value_t& Get(std::string_view name,
                                  llmsys_type_t type) const {
    const llmsys_typed_value_t* v = Find(name);
    if (v == nullptr)
      Fail(LLMSYS_STATUS_INVALID_ARGUMENT,
           "parameter '" + std::string(name) + "' was not passed");
    if (v->type != type)
      Fail(LLMSYS_STATUS_INVALID_ARGUMENT,
           "parameter '" + std::string(name) + "' has the wrong type");
    return *v;
  }
  const llmsys_params_t* params_;
};

// What a component says about itself.
// Every member has a default, so designated initializers may leave any out.
struct Info {
  std::string id = {};
  std::string version = "1.0.0";
  std::string description = {};
  int32_t device_type = kDLCPU;
  std::vector<ParamSpec> params = {};
  // Operators: the op contract implemented and LLMSYS_OP_* flags.
  std::string op = {};
  uint32_t op_flags = 0;
  int32_t priority = 0;  // see llmsys_operator_t::priority
  // Evaluators: LLMSYS_EVAL_* flags.
  uint32_t eval_inputs = 0;
};

// ---------------------------------------------------------------------------
// Tensor helpers

template <class T>
T* Data(const DLTensor* t) {
  return static_cast<T*>(llmsys_tensor_data(t));
}

inline llmsys_tensor_spec_t Spec(DLDataType dtype,
                                 std::initializer_list<int64_t> shape) {
  llmsys_tensor_spec_t s;
  std::memset(&s, 0, sizeof(s));
  Require(shape.size() <= LLMSYS_MAX_NDIM, "tensor spec has too many dims");
  s.dtype = dtype;
  s.ndim = static_cast<int32_t>(shape.size());
  int32_t i = 0;
  for (int64_t d : shape) s.shape[i++] = d;
  return s;
}

// Stride of dim `d` in elements (compact row-major when strides is NULL).
inline int64_t Stride(const DLTensor* t, int32_t d) {
  if (t->strides != nullptr) return t->strides[d];
  int64_t s = 1;
  for (int32_t i = t->ndim - 1; i > d; --i) s *= t->shape[i];
  return s;
}

inline std::string ShapeString(const DLTensor* t) {
  std::string s = "(";
  for (int32_t i = 0; i < t->ndim; ++i) {
    if (i) s += ", ";
    s += std::to_string(t->shape[i]);
  }
  return s + ")";
}

template <class T>
struct Trampolines;

// ---------------------------------------------------------------------------
// The kinds. A component class derives from one and has
//   static Info Describe();
//   explicit T(const Params& params);                   (Model: +
//   llmsys_graph_t*)

// The pass an op call is for (llmsys/operator.h phase): LLMSYS_PHASE_ANY
// from a host before ABI 1.6. Infer sizes the workspace with these:
//
//   if (WorkspaceForBackward(call)) *workspace = backward_bytes;
inline uint32_t PhaseOf(const llmsys_op_call_t& call) {
  return LLMSYS_CALL_HAS(&call, phase) ? call.phase : LLMSYS_PHASE_ANY;
}
inline bool WorkspaceForForward(const llmsys_op_call_t& call) {
  return PhaseOf(call) != LLMSYS_PHASE_BACKWARD;
}
inline bool WorkspaceForBackward(const llmsys_op_call_t& call) {
  return PhaseOf(call) != LLMSYS_PHASE_FORWARD;
}

class Operator {
 public:
  virtual ~Operator() = default;
  // Output specs of the call; set *workspace_bytes if scratch is needed
  // (by the pass the call is for: WorkspaceForForward/-Backward).
  virtual std::vector<llmsys_tensor_spec_t> Infer(const llmsys_op_call_t& call,
                                                  size_t* workspace_bytes) = 0;
  virtual void Forward(const llmsys_op_call_t& call, DLTensor* const* outputs,
                       uint32_t num_outputs) = 0;
  // Override together with Info::op_flags to make the operator
  // differentiable.
  virtual void Backward(const llmsys_op_call_t& call,
                        const DLTensor* const* outputs,
                        const DLTensor* const* grad_outputs,
                        uint32_t num_outputs, DLTensor* const* grad_inputs) {
    (void)call, (void)outputs, (void)grad_outputs, (void)num_outputs,
        (void)grad_inputs;
    Fail(LLMSYS_STATUS_UNIMPLEMENTED, "backward is not implemented");
  }
  static constexpr bool kHasBackward = false;
};

struct StateSpec {
  std::string name;
  DLDataType dtype = LLMSYS_DTYPE_F32;
};

class Optimizer {
 public:
  virtual ~Optimizer() = default;
  virtual std::vector<StateSpec> State() const { return {}; }
  virtual void Step(const llmsys_optimizer_step_t& args) = 0;

 private:
  template <class T>
  friend struct Trampolines;
  std::vector<StateSpec> state_names_;
  std::vector<llmsys_state_spec_t> state_;
  std::vector<const llmsys_state_spec_t*> state_ptrs_;
  bool state_built_ = false;
};

class Sampler {
 public:
  virtual ~Sampler() = default;
  virtual void Sample(const llmsys_sample_args_t& args) = 0;
};

struct EvalResult {
  std::vector<std::pair<std::string, double>> metrics;
  std::string signature;
};

class Evaluator {
 public:
  virtual ~Evaluator() = default;
  virtual void Add(const llmsys_eval_batch_t& batch) = 0;
  virtual EvalResult Result() = 0;
};

class Model {
 public:
  virtual ~Model() = default;
  virtual void Forward(llmsys_graph_t* graph,
                       const llmsys_model_inputs_t& inputs) = 0;
};

// ---------------------------------------------------------------------------
// Building a model: values, op calls, parameters, inputs and outputs
//
// A model's create() declares its parameters; its Forward() looks them up
// again with the same declarations (same name, shape and dtype: the host
// returns the same tensor), reads its inputs, calls ops and names outputs.
// Every op call goes through the host, which runs the implementation the
// experiment chose and records the call for backward. Values are handles
// valid only during the model call that made them: keep ParameterSpecs in
// the model, never Values.
//
//   class Linear : public llmsys::sdk::Model {
//    public:
//     static llmsys::sdk::Info Describe() {
//       return {.id = "linear",
//               .params = {llmsys::sdk::ParamSpec::Int("n", 8, "width")}};
//     }
//     Linear(const llmsys::sdk::Params& p, llmsys_graph_t* graph)
//         : w_{.name = "w", .shape = {p.Int("n"), p.Int("n")}} {
//       w_.Get(graph);  // declares it
//     }
//     void Forward(llmsys_graph_t* graph,
//                  const llmsys_model_inputs_t& inputs) override {
//       using namespace llmsys::sdk;
//       Value x = Input(graph, inputs, "x");         // (B, n) float32
//       Value y = Tanh(Matmul(x, w_.Get(graph), false, true)) * 2.0;
//       SetOutput(graph, "loss", Mean(y * y));
//     }
//
//    private:
//     llmsys::sdk::ParameterSpec w_;
//   };
//
// Errors from the host (a shape mismatch in an op, an unknown op) throw
// sdk::Error with the host's status and message, so they reach the host
// intact through the SDK's trampolines.

namespace internal {

// Calls host function `f(host, err)` and throws its status and message.
template <class F>
void CallHost(const char* what, F&& f) {
  const llmsys_host_api_t* host = Host();
  Require(host != nullptr,
          std::string(what) + ": no host (called outside init)",
          LLMSYS_STATUS_FAILED_PRECONDITION);
  char message[2048] = {};
  llmsys_error_t err{message, sizeof(message)};
  const llmsys_status_t s = f(host, &err);
  if (s != LLMSYS_STATUS_OK)
    Fail(s, message[0] != '\0' ? std::string(message)
                               : std::string(what) + " failed");
}

}  // namespace internal

// "(2, 3)" for a shape.
inline std::string ShapeString(const std::vector<int64_t>& shape) {
  std::string s = "(";
  for (size_t i = 0; i < shape.size(); ++i)
    s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + ")";
}

// The dtype called `name`: float32, float64, bfloat16, float16, int32,
// int64, uint8.
inline DLDataType DtypeNamed(std::string_view name) {
  if (name == "float32") return LLMSYS_DTYPE_F32;
  if (name == "float64") return LLMSYS_DTYPE_F64;
  if (name == "bfloat16") return LLMSYS_DTYPE_BF16;
  if (name == "float16") return LLMSYS_DTYPE_F16;
  if (name == "int32") return LLMSYS_DTYPE_I32;
  if (name == "int64") return LLMSYS_DTYPE_I64;
  if (name == "uint8") return LLMSYS_DTYPE_U8;
  Fail(LLMSYS_STATUS_INVALID_ARGUMENT,
       "unknown dtype '" + std::string(name) +
           "' (float32, float64, bfloat16, float16, int32, int64, uint8)");
}

// A tensor value in the model call's graph: owns one reference to a host
// handle (copying retains, destruction releases) and remembers its graph.
// A default-constructed Value is null: an absent optional op input.
class Value {
 public:
  Value() = default;
  // Takes over the reference a host function returned.
  static Value Adopt(llmsys_graph_t* graph, llmsys_value_t handle) {
    Value v;
    v.graph_ = graph;
    v.handle_ = handle;
    return v;
  }
  // Adds a reference to a borrowed handle (a model input).
  static Value Borrow(llmsys_graph_t* graph, llmsys_value_t handle) {
    if (handle != nullptr) Host()->value_retain(Host(), handle);
    return Adopt(graph, handle);
  }
  Value(const Value& other) : graph_(other.graph_), handle_(other.handle_) {
    if (handle_ != nullptr) Host()->value_retain(Host(), handle_);
  }
  Value(Value&& other) noexcept
      : graph_(other.graph_), handle_(std::exchange(other.handle_, nullptr)) {}
  Value& operator=(Value other) noexcept {
    std::swap(graph_, other.graph_);
    std::swap(handle_, other.handle_);
    return *this;
  }
  ~Value() {
    if (handle_ != nullptr && Host() != nullptr)
      Host()->value_release(Host(), handle_);
  }

  // The host handle (still owned by this Value) and the graph.
  llmsys_value_t get() const { return handle_; }
  llmsys_graph_t* graph() const { return graph_; }
  explicit operator bool() const { return handle_ != nullptr; }

  // A borrowed view of the tensor, valid until the next graph call.
  DLTensor Tensor() const {
    DLTensor t{};
    internal::CallHost("value_tensor", [&](auto* h, auto* e) {
      return h->value_tensor(h, NonNull(), &t, e);
    });
    return t;
  }
  std::vector<int64_t> Shape() const {
    const DLTensor t = Tensor();
    return std::vector<int64_t>(t.shape, t.shape + t.ndim);
  }
  int64_t Ndim() const { return Tensor().ndim; }
  // The size of dim `d` (negative counts from the end).
  int64_t Size(int64_t d) const {
    const std::vector<int64_t> s = Shape();
    const int64_t n = static_cast<int64_t>(s.size());
    Require(d >= -n && d < n, "dim " + std::to_string(d) +
                                  " is out of range for shape " +
                                  ShapeString(s));
    return s[static_cast<size_t>(d < 0 ? d + n : d)];
  }
  DLDataType Dtype() const { return Tensor().dtype; }

  // Views (no copy; gradients flow through them). Negative dims count from
  // the end. Reshape copies when the strides allow no view.
  Value Reshape(const std::vector<int64_t>& shape) const {
    return ViewOf(LLMSYS_VIEW_RESHAPE, shape);
  }
  Value View(const std::vector<int64_t>& shape) const { return Reshape(shape); }
  Value Permute(const std::vector<int64_t>& dims) const {
    return ViewOf(LLMSYS_VIEW_PERMUTE, dims);
  }
  // Swaps dims d0 and d1.
  Value Transpose(int64_t d0, int64_t d1) const {
    const int64_t n = Ndim();
    std::vector<int64_t> perm(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) perm[static_cast<size_t>(i)] = i;
    Require(d0 >= -n && d0 < n && d1 >= -n && d1 < n,
            "transpose: dims " + std::to_string(d0) + ", " +
                std::to_string(d1) + " out of range for " + std::to_string(n) +
                " dims");
    std::swap(perm[static_cast<size_t>(d0 < 0 ? d0 + n : d0)],
              perm[static_cast<size_t>(d1 < 0 ? d1 + n : d1)]);
    return Permute(perm);
  }
  // Elements start, start + step, ... < stop of dim `dim` (Python rules for
  // negative start and stop).
  Value Slice(int64_t dim, int64_t start, int64_t stop,
              int64_t step = 1) const {
    return ViewOf(LLMSYS_VIEW_SLICE, {dim, start, stop, step});
  }
  // Broadcasts size-1 dims to `shape` (-1 keeps a dim).
  Value Expand(const std::vector<int64_t>& shape) const {
    return ViewOf(LLMSYS_VIEW_EXPAND, shape);
  }
  // The same data, cut from the gradient.
  Value Detach() const { return ViewOf(LLMSYS_VIEW_DETACH, {}); }

 private:
  llmsys_value_t NonNull() const {
    Require(handle_ != nullptr, "a null Value was used",
            LLMSYS_STATUS_FAILED_PRECONDITION);
    return handle_;
  }
  Value ViewOf(uint32_t kind, const std::vector<int64_t>& ints) const {
    llmsys_value_t out = nullptr;
    internal::CallHost("value_view", [&](auto* h, auto* e) {
      return h->value_view(h, graph_, kind, NonNull(), ints.data(),
                           static_cast<uint32_t>(ints.size()), &out, e);
    });
    return Adopt(graph_, out);
  }

  llmsys_graph_t* graph_ = nullptr;
  llmsys_value_t handle_ = nullptr;
};

// One named op attribute; a braced {"name", value} builds one. Lists are
// spelled with their type: {"dims", std::vector<int64_t>{0, 1}}.
class Attr {
 public:
  Attr(std::string name, bool v) : name_(std::move(name)) {
    value_.type = LLMSYS_TYPE_BOOL;
    value_.as.i = v ? 1 : 0;
  }
  Attr(std::string name, int v) : Attr(std::move(name), int64_t{v}) {}
  Attr(std::string name, int64_t v) : name_(std::move(name)) {
    value_.type = LLMSYS_TYPE_INT;
    value_.as.i = v;
  }
  Attr(std::string name, double v) : name_(std::move(name)) {
    value_.type = LLMSYS_TYPE_FLOAT;
    value_.as.f = v;
  }
  Attr(std::string name, const char* v)
      : Attr(std::move(name), std::string(v)) {}
  Attr(std::string name, std::string v)
      : name_(std::move(name)), string_(std::move(v)) {
    value_.type = LLMSYS_TYPE_STRING;
  }
  Attr(std::string name, std::vector<int64_t> v)
      : name_(std::move(name)), ints_(std::move(v)) {
    value_.type = LLMSYS_TYPE_INT_LIST;
  }
  Attr(std::string name, std::vector<double> v)
      : name_(std::move(name)), floats_(std::move(v)) {
    value_.type = LLMSYS_TYPE_FLOAT_LIST;
  }

  // The C view; valid while this Attr lives and is not changed.
  llmsys_param_t Get() const {
    llmsys_param_t p{name_.c_str(), value_};
    if (value_.type == LLMSYS_TYPE_STRING) p.value.as.s = string_.c_str();
    if (value_.type == LLMSYS_TYPE_INT_LIST) {
      p.value.as.ints = ints_.data();
      p.value.count = static_cast<uint32_t>(ints_.size());
    }
    if (value_.type == LLMSYS_TYPE_FLOAT_LIST) {
      p.value.as.floats = floats_.data();
      p.value.count = static_cast<uint32_t>(floats_.size());
    }
    return p;
  }

 private:
  std::string name_, string_;
  std::vector<int64_t> ints_;
  std::vector<double> floats_;
  llmsys_typed_value_t value_{};
};

// Calls op contract `op` (standard or a plugin's own) on `inputs` (a null
// Value for an absent optional input; a variadic input's values in place)
// with `attrs` (any subset; the contract's defaults fill the rest). Returns
// all `num_outputs` outputs, which must be the op's output count.
inline std::vector<Value> CallOp(llmsys_graph_t* graph, const std::string& op,
                                 const std::vector<Value>& inputs,
                                 const std::vector<Attr>& attrs = {},
                                 uint32_t num_outputs = 1) {
  std::vector<llmsys_value_t> in;
  for (const Value& v : inputs) in.push_back(v.get());
  std::vector<llmsys_param_t> items;
  for (const Attr& a : attrs) items.push_back(a.Get());
  const llmsys_params_t c_attrs{items.data(),
                                static_cast<uint32_t>(items.size())};
  std::vector<llmsys_value_t> out(num_outputs, nullptr);
  internal::CallHost("call_op", [&](auto* h, auto* e) {
    return h->call_op(h, graph, op.c_str(), in.data(),
                      static_cast<uint32_t>(in.size()), &c_attrs, out.data(),
                      num_outputs, e);
  });
  std::vector<Value> result;
  for (llmsys_value_t v : out) result.push_back(Value::Adopt(graph, v));
  return result;
}

namespace internal {
// The first output of op `op` on `inputs` (graph from the first input).
inline Value Op(const std::string& op, const std::vector<Value>& inputs,
                const std::vector<Attr>& attrs = {}, uint32_t num_outputs = 1) {
  Require(!inputs.empty() && inputs[0], op + ": the first input is null",
          LLMSYS_STATUS_FAILED_PRECONDITION);
  return CallOp(inputs[0].graph(), op, inputs, attrs, num_outputs)[0];
}
}  // namespace internal

// A constant copied from `src` (host-visible memory).
inline Value Constant(llmsys_graph_t* graph, const DLTensor& src) {
  llmsys_value_t out = nullptr;
  internal::CallHost("value_from_tensor", [&](auto* h, auto* e) {
    return h->value_from_tensor(h, graph, &src, &out, e);
  });
  return Value::Adopt(graph, out);
}
// A constant of `shape` from row-major `values` (float, double, int64_t or
// int32_t elements).
template <class T>
Value Constant(llmsys_graph_t* graph, const std::vector<T>& values,
               std::vector<int64_t> shape) {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double> ||
                    std::is_same_v<T, int64_t> || std::is_same_v<T, int32_t>,
                "Constant: float, double, int64_t or int32_t elements");
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  Require(n == static_cast<int64_t>(values.size()),
          "Constant: " + std::to_string(values.size()) +
              " values do not fill shape " + ShapeString(shape));
  DLTensor t{};
  t.data = const_cast<T*>(values.data());
  t.device = DLDevice{kDLCPU, 0};
  t.ndim = static_cast<int32_t>(shape.size());
  t.shape = shape.data();
  if constexpr (std::is_same_v<T, float>) t.dtype = LLMSYS_DTYPE_F32;
  if constexpr (std::is_same_v<T, double>) t.dtype = LLMSYS_DTYPE_F64;
  if constexpr (std::is_same_v<T, int64_t>) t.dtype = LLMSYS_DTYPE_I64;
  if constexpr (std::is_same_v<T, int32_t>) t.dtype = LLMSYS_DTYPE_I32;
  return Constant(graph, t);
}
// A 0-d constant `value` of `dtype` (float32, float64, int32 or int64).
inline Value Scalar(llmsys_graph_t* graph, double value, DLDataType dtype) {
  if (llmsys_dtype_equal(dtype, LLMSYS_DTYPE_F32))
    return Constant(graph, std::vector<float>{static_cast<float>(value)}, {});
  if (llmsys_dtype_equal(dtype, LLMSYS_DTYPE_F64))
    return Constant(graph, std::vector<double>{value}, {});
  if (llmsys_dtype_equal(dtype, LLMSYS_DTYPE_I64))
    return Constant(graph, std::vector<int64_t>{static_cast<int64_t>(value)},
                    {});
  if (llmsys_dtype_equal(dtype, LLMSYS_DTYPE_I32))
    return Constant(graph, std::vector<int32_t>{static_cast<int32_t>(value)},
                    {});
  Fail(LLMSYS_STATUS_UNIMPLEMENTED,
       "Scalar: no scalar constants of this dtype (float32, float64, int32, "
       "int64)");
}

// Elementwise arithmetic, broadcasting (add, sub, mul, div, neg); a double
// becomes a 0-d constant of the other operand's dtype.
inline Value operator+(const Value& a, const Value& b) {
  return internal::Op("add", {a, b});
}
inline Value operator-(const Value& a, const Value& b) {
  return internal::Op("sub", {a, b});
}
inline Value operator*(const Value& a, const Value& b) {
  return internal::Op("mul", {a, b});
}
inline Value operator/(const Value& a, const Value& b) {
  return internal::Op("div", {a, b});
}
inline Value operator-(const Value& x) { return internal::Op("neg", {x}); }
inline Value operator+(const Value& a, double b) {
  return a + Scalar(a.graph(), b, a.Dtype());
}
inline Value operator-(const Value& a, double b) {
  return a - Scalar(a.graph(), b, a.Dtype());
}
inline Value operator*(const Value& a, double b) {
  return a * Scalar(a.graph(), b, a.Dtype());
}
inline Value operator/(const Value& a, double b) {
  return a / Scalar(a.graph(), b, a.Dtype());
}
inline Value operator+(double a, const Value& b) {
  return Scalar(b.graph(), a, b.Dtype()) + b;
}
inline Value operator-(double a, const Value& b) {
  return Scalar(b.graph(), a, b.Dtype()) - b;
}
inline Value operator*(double a, const Value& b) {
  return Scalar(b.graph(), a, b.Dtype()) * b;
}
inline Value operator/(double a, const Value& b) {
  return Scalar(b.graph(), a, b.Dtype()) / b;
}

// op(a) @ op(b) over the last two dims, op transposing when asked; leading
// dims broadcast.
inline Value Matmul(const Value& a, const Value& b, bool transpose_a = false,
                    bool transpose_b = false) {
  return internal::Op(
      "matmul", {a, b},
      {{"transpose_a", transpose_a}, {"transpose_b", transpose_b}});
}
// x (..., K) @ weight (M, K)^T + bias (M): torch.nn.functional.linear. bias
// may be null. (The "linear" op: ABI 1.3 hosts and newer.)
inline Value Linear(const Value& x, const Value& weight, const Value* bias) {
  return internal::Op("linear", {x, weight, bias ? *bias : Value()});
}
// Elementwise functions.
inline Value Exp(const Value& x) { return internal::Op("exp", {x}); }
inline Value Log(const Value& x) { return internal::Op("log", {x}); }
inline Value Sqrt(const Value& x) { return internal::Op("sqrt", {x}); }
inline Value Tanh(const Value& x) { return internal::Op("tanh", {x}); }
inline Value Sigmoid(const Value& x) { return internal::Op("sigmoid", {x}); }
inline Value Relu(const Value& x) { return internal::Op("relu", {x}); }
// GELU; approximate "none" is the erf form, "tanh" the tanh form (GPT-2).
inline Value Gelu(const Value& x, const std::string& approximate = "none") {
  return internal::Op("gelu", {x}, {{"approximate", approximate}});
}
inline Value Pow(const Value& x, double exponent) {
  return internal::Op("pow", {x}, {{"exponent", exponent}});
}
// Reductions over `dims` (all dims when empty).
inline Value Sum(const Value& x, std::vector<int64_t> dims = {},
                 bool keepdim = false) {
  return internal::Op("sum", {x},
                      {{"dims", std::move(dims)}, {"keepdim", keepdim}});
}
inline Value Mean(const Value& x, std::vector<int64_t> dims = {},
                  bool keepdim = false) {
  return internal::Op("mean", {x},
                      {{"dims", std::move(dims)}, {"keepdim", keepdim}});
}
inline Value Max(const Value& x, std::vector<int64_t> dims = {},
                 bool keepdim = false) {
  return internal::Op("max", {x},
                      {{"dims", std::move(dims)}, {"keepdim", keepdim}});
}
// A compact row-major copy.
inline Value Contiguous(const Value& x) {
  return internal::Op("contiguous", {x});
}
inline Value Softmax(const Value& x, int64_t dim = -1) {
  return internal::Op("softmax", {x}, {{"dim", dim}});
}
inline Value LogSoftmax(const Value& x, int64_t dim = -1) {
  return internal::Op("log_softmax", {x}, {{"dim", dim}});
}
// Concatenation along `dim`.
inline Value Concat(const std::vector<Value>& xs, int64_t dim = 0) {
  return internal::Op("concat", xs, {{"dim", dim}});
}
// cond ? a : b elementwise, broadcasting.
inline Value Where(const Value& cond, const Value& a, const Value& b) {
  return internal::Op("where", {cond, a, b});
}
// x with `value` where `mask` (broadcast to x) is non-zero.
inline Value MaskedFill(const Value& x, const Value& mask, double value) {
  return internal::Op("masked_fill", {x, mask}, {{"value", value}});
}
// Rows of weight (V, C) at int indices (...) -> (..., C).
inline Value Embedding(const Value& weight, const Value& indices) {
  return internal::Op("embedding", {weight, indices});
}
// Normalizes the last dim; weight and bias may be null. Returns the output
// only (the saved statistics stay with the host).
inline Value LayerNorm(const Value& x, const Value* weight, const Value* bias,
                       double eps = 1e-5) {
  return internal::Op("layer_norm",
                      {x, weight ? *weight : Value(), bias ? *bias : Value()},
                      {{"eps", eps}}, 3);
}
inline Value LayerNorm(const Value& x, const Value& weight, const Value& bias,
                       double eps = 1e-5) {
  return LayerNorm(x, &weight, &bias, eps);
}
// x / sqrt(mean(x^2) + eps) * weight over the last dim; weight may be null.
inline Value RmsNorm(const Value& x, const Value* weight, double eps = 1e-6) {
  return internal::Op("rms_norm", {x, weight ? *weight : Value()},
                      {{"eps", eps}}, 2);
}
// Zeroes elements with probability p, scales the rest by 1/(1-p). The
// output only; the host keeps the mask for backward.
inline Value Dropout(const Value& x, double p) {
  return internal::Op("dropout", {x}, {{"p", p}}, 2);
}
// Mean (or "sum", or per-element "none") cross entropy of logits (..., V)
// against int targets (...); targets equal to ignore_index do not count.
inline Value CrossEntropy(const Value& logits, const Value& targets,
                          int64_t ignore_index = -100,
                          double label_smoothing = 0.0,
                          const std::string& reduction = "mean") {
  return internal::Op("cross_entropy", {logits, targets},
                      {{"ignore_index", ignore_index},
                       {"label_smoothing", label_smoothing},
                       {"reduction", reduction}});
}
// Scaled dot-product attention: q (B, H, N, D), k and v (B, H, M, D),
// key_padding_mask (B, M) non-zero = masked (may be null); scale 0 means
// 1/sqrt(D). Returns the output (B, H, N, D) only.
inline Value Attention(const Value& q, const Value& k, const Value& v,
                       const Value* key_padding_mask, bool causal,
                       double dropout_p = 0.0, double scale = 0.0) {
  return internal::Op(
      "attention", {q, k, v, key_padding_mask ? *key_padding_mask : Value()},
      {{"causal", causal}, {"dropout_p", dropout_p}, {"scale", scale}}, 2);
}

// x's last dim cut into `parts` equal parts, each as `heads` heads: x (B, T,
// parts * C) -> parts x (B, heads, T, C / heads), views; parts is 3 for q,
// k and v of a fused projection. They are slices of one (B, T, parts,
// heads, D) view of x, so backward the heads' gradients land in one buffer
// for x's gradient, each in one strided copy (slicing C first would need a
// copy to merge heads and D back; a view per part, a buffer per part).
inline std::vector<Value> SplitHeads(const Value& x, int64_t parts,
                                     int64_t heads) {
  const int64_t B = x.Size(0), T = x.Size(1);
  const int64_t D = x.Size(2) / (parts * heads);
  const Value all = x.Reshape({B, T, parts, heads, D});
  std::vector<Value> out;
  for (int64_t i = 0; i < parts; ++i)
    out.push_back(
        all.Slice(2, i, i + 1).Reshape({B, T, heads, D}).Transpose(1, 2));
  return out;
}
// Heads (B, H, T, D) side by side: (B, T, H * D).
inline Value MergeHeads(const Value& y) {
  return y.Transpose(1, 2).Reshape(
      {y.Size(0), y.Size(2), y.Size(1) * y.Size(3)});
}

// Declares (in create) or looks up (in forward) the trainable parameter
// `name`. init: "normal" (mean a, std b), "uniform" [a, b), "zeros",
// "ones"; no_decay excludes it from weight decay.
inline Value DeclareParameter(llmsys_graph_t* graph, const std::string& name,
                              const std::vector<int64_t>& shape,
                              DLDataType dtype, const std::string& init,
                              double a = 0.0, double b = 0.0,
                              bool no_decay = false) {
  llmsys_parameter_decl_t decl{};
  decl.struct_size = sizeof(decl);
  decl.name = name.c_str();
  decl.ndim = static_cast<int32_t>(shape.size());
  decl.shape = shape.data();
  decl.dtype = dtype;
  decl.init = init.c_str();
  decl.init_a = a;
  decl.init_b = b;
  decl.flags = no_decay ? LLMSYS_PARAMETER_NO_DECAY : 0u;
  llmsys_value_t out = nullptr;
  internal::CallHost("declare_parameter", [&](auto* h, auto* e) {
    return h->declare_parameter(h, graph, &decl, &out, e);
  });
  return Value::Adopt(graph, out);
}
// Declares or looks up a persistent, zero-initialized, untrained buffer
// (a key/value cache).
inline Value DeclareBuffer(llmsys_graph_t* graph, const std::string& name,
                           const std::vector<int64_t>& shape,
                           DLDataType dtype) {
  llmsys_parameter_decl_t decl{};
  decl.struct_size = sizeof(decl);
  decl.name = name.c_str();
  decl.ndim = static_cast<int32_t>(shape.size());
  decl.shape = shape.data();
  decl.dtype = dtype;
  decl.init = "zeros";
  llmsys_value_t out = nullptr;
  internal::CallHost("declare_buffer", [&](auto* h, auto* e) {
    return h->declare_buffer(h, graph, &decl, &out, e);
  });
  return Value::Adopt(graph, out);
}

// A parameter's declaration, kept by the model: Get() in create declares
// it, Get() in forward returns the same tensor.
struct ParameterSpec {
  std::string name = {};
  std::vector<int64_t> shape = {};
  DLDataType dtype = LLMSYS_DTYPE_F32;
  std::string init = "normal";
  double a = 0.0;   // normal: mean; uniform: low
  double b = 0.02;  // normal: std; uniform: high
  bool no_decay = false;

  Value Get(llmsys_graph_t* graph) const {
    return DeclareParameter(graph, name, shape, dtype, init, a, b, no_decay);
  }
  int64_t Numel() const {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    return n;
  }
};

// Whether the model call was given an input called `name`.
inline bool HasInput(const llmsys_model_inputs_t& inputs,
                     std::string_view name) {
  for (uint32_t i = 0; i < inputs.num_values; ++i)
    if (inputs.values[i].name != nullptr && name == inputs.values[i].name)
      return true;
  return false;
}
// The input called `name` (the handle is retained: the Value owns a
// reference of its own). INVALID_ARGUMENT, listing the inputs, if absent.
inline Value Input(llmsys_graph_t* graph, const llmsys_model_inputs_t& inputs,
                   std::string_view name) {
  std::string given;
  for (uint32_t i = 0; i < inputs.num_values; ++i) {
    const char* n = inputs.values[i].name;
    if (n != nullptr && name == n)
      return Value::Borrow(graph, inputs.values[i].value);
    given += (given.empty() ? "" : ", ") + std::string(n ? n : "(null)");
  }
  Fail(LLMSYS_STATUS_INVALID_ARGUMENT,
       "the model needs an input '" + std::string(name) +
           "' (given: " + (given.empty() ? "none" : given) + ")");
}

// Names an output of the model call: "loss" (a scalar), "logits", ...
inline void SetOutput(llmsys_graph_t* graph, const std::string& name,
                      const Value& value) {
  internal::CallHost("set_output", [&](auto* h, auto* e) {
    return h->set_output(h, graph, name.c_str(), value.get(), e);
  });
}

// The pipeline stage this model call builds (host.h pipeline_stage, ABI
// 1.5): {0, 1}, the whole model, from a host without pipelines. Call it in
// the constructor (which then declares only the stage's parameters) and in
// Forward; StageRange splits n layers evenly over the stages.
struct PipelineStage {
  uint32_t stage = 0, num_stages = 1;
  bool first() const { return stage == 0; }
  bool last() const { return stage + 1 >= num_stages; }
  // Layers [begin, end) of `n` that this stage runs: contiguous, the
  // earlier stages taking one fewer when n does not divide.
  std::pair<int64_t, int64_t> StageRange(int64_t n) const {
    const int64_t s = stage, k = num_stages;
    return {n * s / k, n * (s + 1) / k};
  }
};
inline PipelineStage StageOf(llmsys_graph_t* graph) {
  PipelineStage p;
  const llmsys_host_api_t* host = Host();
  if (host == nullptr || !LLMSYS_HOST_HAS(host, pipeline_stage)) return p;
  internal::CallHost("pipeline_stage", [&](auto* h, auto* e) {
    return h->pipeline_stage(h, graph, &p.stage, &p.num_stages, e);
  });
  return p;
}

// ---- layers: linear layers and LayerNorms ----
//
// The bookkeeping every transformer repeats. In create, a ParameterMaker
// (the model's dtype, whether its layers have biases, the LayerNorm
// epsilon) makes the ParameterSpecs of each layer, which the model keeps;
// in forward, Apply and LayerNorm run them.
//
//   const ParameterMaker make{.dtype = dtype, .bias = true, .eps = 1e-5};
//   ln_ = make.Norm("ln", C);                                  // in create
//   fc_ = make.Linear("mlp.fc", C, 4 * C, NormalInit(0.02));
//   ...
//   Value h = Apply(graph, fc_, LayerNorm(graph, ln_, x));     // in forward
//
// A layer made without a bias leaves its `bias` unnamed: never declared,
// skipped by Apply, LayerNorm and AppendSpecs.

// How a weight is initialized: ParameterSpec's init, a and b.
struct WeightInit {
  std::string init = "normal";
  double a = 0.0;
  double b = 0.02;
};
// normal(0, stddev).
inline WeightInit NormalInit(double stddev) {
  return {.init = "normal", .a = 0.0, .b = stddev};
}
// uniform(-bound, bound).
inline WeightInit UniformInit(double bound) {
  return {.init = "uniform", .a = -bound, .b = bound};
}
// Xavier (Glorot) uniform of a weight (fan_out, fan_in):
// uniform(-a, a) with a = sqrt(6 / (fan_in + fan_out)).
inline WeightInit XavierUniformInit(int64_t fan_in, int64_t fan_out) {
  return UniformInit(std::sqrt(6.0 / static_cast<double>(fan_in + fan_out)));
}

// A linear layer y = x @ weight^T + bias, in torch.nn.Linear's layout:
// weight (out, in), bias (out).
struct LinearParams {
  ParameterSpec weight = {}, bias = {};
};
// A LayerNorm over the last dim: weight (n), bias (n) and its epsilon.
struct NormParams {
  ParameterSpec weight = {}, bias = {};
  double eps = 1e-5;
};

// Makes one model's ParameterSpecs: all in `dtype`; biases in linear
// layers and LayerNorms when `bias`; LayerNorms with epsilon `eps`. Biases
// and LayerNorm weights are excluded from weight decay (as GPT-2 and BERT
// train them); other weights are not.
struct ParameterMaker {
  DLDataType dtype = LLMSYS_DTYPE_F32;
  bool bias = true;
  double eps = 1e-5;

  // A weight of `shape` initialized as `init`; weight decay applies.
  ParameterSpec Weight(std::string name, std::vector<int64_t> shape,
                       const WeightInit& init) const {
    return {.name = std::move(name),
            .shape = std::move(shape),
            .dtype = dtype,
            .init = init.init,
            .a = init.a,
            .b = init.b};
  }
  // A vector (n) initialized "zeros" or "ones" and excluded from weight
  // decay: a bias or a LayerNorm weight.
  ParameterSpec Vector(std::string name, int64_t n, std::string init) const {
    return {.name = std::move(name),
            .shape = {n},
            .dtype = dtype,
            .init = std::move(init),
            .no_decay = true};
  }
  // "<name>.weight" (out, in) initialized as `init` and, with `bias`,
  // "<name>.bias" (out) zeros.
  LinearParams Linear(const std::string& name, int64_t in, int64_t out,
                      const WeightInit& init) const {
    LinearParams l{.weight = Weight(name + ".weight", {out, in}, init)};
    if (bias) l.bias = Vector(name + ".bias", out, "zeros");
    return l;
  }
  // "<name>.weight" (n) ones and, with `bias`, "<name>.bias" (n) zeros.
  NormParams Norm(const std::string& name, int64_t n) const {
    NormParams l{.weight = Vector(name + ".weight", n, "ones"), .eps = eps};
    if (bias) l.bias = Vector(name + ".bias", n, "zeros");
    return l;
  }
};

// Appends the named ParameterSpecs of `layers` (each a ParameterSpec,
// LinearParams or NormParams) to `specs` in order, a layer's weight before
// its bias; unnamed ones (a layer without a bias, one never made) are
// skipped. Lists a model's parameters in declaration order.
template <class... Layers>
void AppendSpecs(std::vector<ParameterSpec>* specs, const Layers&... layers) {
  auto one = [specs](const ParameterSpec& s) {
    if (!s.name.empty()) specs->push_back(s);
  };
  auto each = [&one](const auto& layer) {
    if constexpr (std::is_same_v<std::decay_t<decltype(layer)>,
                                 ParameterSpec>) {
      one(layer);
    } else {
      one(layer.weight);
      one(layer.bias);
    }
  };
  (each(layers), ...);
}

// The linear layer on x (..., in) -> (..., out): x @ weight^T + bias, the
// bias only when it has one; one "linear" op call.
inline Value Apply(llmsys_graph_t* graph, const LinearParams& linear,
                   const Value& x) {
  if (linear.bias.name.empty())
    return Linear(x, linear.weight.Get(graph), nullptr);
  const Value bias = linear.bias.Get(graph);
  return Linear(x, linear.weight.Get(graph), &bias);
}
// The LayerNorm on x (..., n) with its parameters and epsilon.
inline Value LayerNorm(llmsys_graph_t* graph, const NormParams& norm,
                       const Value& x) {
  Value w = norm.weight.Get(graph);
  if (norm.bias.name.empty()) return LayerNorm(x, &w, nullptr, norm.eps);
  Value b = norm.bias.Get(graph);
  return LayerNorm(x, &w, &b, norm.eps);
}
// Dropout(x, p) when p > 0; x itself, with no op call, when p is 0 (outside
// training, or dropout off), so evaluation records no dropout.
inline Value MaybeDropout(const Value& x, double p) {
  return p > 0.0 ? Dropout(x, p) : x;
}

// ---- reversible layers (host call_couplings, ABI 1.1) ----

// F or G of a coupling layer: x -> a value of x's shape, given the context
// values passed to Couplings. It is called again during backward, after
// forward returned, so the model keeps it alive (a member).
using CouplingFunction = std::function<Value(
    llmsys_graph_t* graph, const Value& x, const std::vector<Value>& context)>;

// One additive coupling layer (llmsys_coupling_t): y1 = x1 + F(x2),
// y2 = x2 + G(y1); `inverse` runs x2 = y2 - G(y1), x1 = y1 - F(x2).
struct CouplingLayer {
  const CouplingFunction* f = nullptr;
  const CouplingFunction* g = nullptr;
  bool inverse = false;
};

namespace internal {
inline llmsys_status_t CallCouplingFunction(void* self, llmsys_graph_t* graph,
                                            llmsys_value_t x,
                                            const llmsys_value_t* context,
                                            uint32_t num_context,
                                            llmsys_value_t* out,
                                            llmsys_error_t* err) {
  return Guard(err, [&] {
    const auto& fn = *static_cast<const CouplingFunction*>(self);
    std::vector<Value> ctx;
    for (uint32_t i = 0; i < num_context; ++i)
      ctx.push_back(Value::Borrow(graph, context[i]));
    Value y = fn(graph, Value::Borrow(graph, x), ctx);
    Require(static_cast<bool>(y), "a coupling function returned no value");
    Host()->value_retain(Host(), y.get());  // the reference *out hands over
    *out = y.get();
  });
}
}  // namespace internal

// Whether the host offers call_couplings (ABI 1.1 and later).
inline bool HostHasCouplings() {
  const llmsys_host_api_t* host = Host();
  return host != nullptr && LLMSYS_HOST_HAS(host, call_couplings);
}

// Runs `layers` on the halves (x1, x2) through the host without keeping
// their activations: backward rebuilds each layer's input with the
// opposite form and recomputes F and G (llmsys/host.h call_couplings).
inline std::pair<Value, Value> Couplings(
    llmsys_graph_t* graph, const std::vector<CouplingLayer>& layers,
    const Value& x1, const Value& x2, const std::vector<Value>& context) {
  Require(HostHasCouplings(),
          "this host has no call_couplings (it implements ABI " +
              std::to_string(Host() != nullptr ? Host()->abi_minor : 0) +
              " minor; recomputed reversible layers need 1.1)",
          LLMSYS_STATUS_UNIMPLEMENTED);
  std::vector<llmsys_coupling_t> c;
  for (const CouplingLayer& l : layers) {
    Require(l.f != nullptr && l.g != nullptr,
            "a coupling layer needs both F and G");
    llmsys_coupling_t layer{};
    layer.f = {const_cast<CouplingFunction*>(l.f),
               &internal::CallCouplingFunction};
    layer.g = {const_cast<CouplingFunction*>(l.g),
               &internal::CallCouplingFunction};
    layer.inverse = l.inverse ? 1u : 0u;
    c.push_back(layer);
  }
  std::vector<llmsys_value_t> ctx;
  for (const Value& v : context) ctx.push_back(v.get());
  llmsys_value_t out[2] = {nullptr, nullptr};
  internal::CallHost("call_couplings", [&](auto* h, auto* e) {
    return h->call_couplings(
        h, graph, c.data(), static_cast<uint32_t>(c.size()), x1.get(), x2.get(),
        ctx.data(), static_cast<uint32_t>(ctx.size()), out, e);
  });
  return {Value::Adopt(graph, out[0]), Value::Adopt(graph, out[1])};
}

// ---------------------------------------------------------------------------
// C trampolines, one set per component class.

template <class T>
struct Trampolines {
  static llmsys_status_t Create(const llmsys_params_t* params, void** instance,
                                llmsys_error_t* err) {
    return Guard(err, [&] { *instance = new T(Params(params)); });
  }
  static llmsys_status_t CreateModel(const llmsys_params_t* params,
                                     llmsys_graph_t* graph, void** instance,
                                     llmsys_error_t* err) {
    return Guard(err, [&] { *instance = new T(Params(params), graph); });
  }
  static void Destroy(void* instance) { delete static_cast<T*>(instance); }
  static T& Self(void* instance) {
    Require(instance != nullptr, "called without an instance",
            LLMSYS_STATUS_FAILED_PRECONDITION);
    return *static_cast<T*>(instance);
  }

  static llmsys_status_t Infer(void* instance, const llmsys_op_call_t* call,
                               llmsys_tensor_spec_t* outputs,
                               uint32_t num_outputs, size_t* workspace,
                               llmsys_error_t* err) {
    return Guard(err, [&] {
      *workspace = 0;
      std::vector<llmsys_tensor_spec_t> specs =
          Self(instance).Infer(*call, workspace);
      Require(specs.size() == num_outputs,
              std::string(call->op) + ": implementation produced " +
                  std::to_string(specs.size()) + " outputs, contract has " +
                  std::to_string(num_outputs),
              LLMSYS_STATUS_INTERNAL);
      for (uint32_t i = 0; i < num_outputs; ++i) outputs[i] = specs[i];
    });
  }
  static llmsys_status_t Forward(void* instance, const llmsys_op_call_t* call,
                                 DLTensor* const* outputs, uint32_t num_outputs,
                                 llmsys_error_t* err) {
    return Guard(err,
                 [&] { Self(instance).Forward(*call, outputs, num_outputs); });
  }
  static llmsys_status_t Backward(void* instance, const llmsys_op_call_t* call,
                                  const DLTensor* const* outputs,
                                  const DLTensor* const* grad_outputs,
                                  uint32_t num_outputs,
                                  DLTensor* const* grad_inputs,
                                  llmsys_error_t* err) {
    return Guard(err, [&] {
      Self(instance).Backward(*call, outputs, grad_outputs, num_outputs,
                              grad_inputs);
    });
  }

  static llmsys_status_t State(void* instance,
                               const llmsys_state_spec_t* const** specs,
                               uint32_t* num_state, llmsys_error_t* err) {
    return Guard(err, [&] {
      Optimizer& self = Self(instance);
      // Built on the first call only: the ABI promises the pointers stay
      // valid until destroy.
      if (!self.state_built_) {
        self.state_names_ = self.State();
        self.state_.assign(self.state_names_.size(), llmsys_state_spec_t{});
        for (size_t i = 0; i < self.state_names_.size(); ++i) {
          self.state_[i].struct_size = sizeof(llmsys_state_spec_t);
          self.state_[i].name = self.state_names_[i].name.c_str();
          self.state_[i].dtype = self.state_names_[i].dtype;
          self.state_ptrs_.push_back(&self.state_[i]);
        }
        self.state_built_ = true;
      }
      *specs = self.state_ptrs_.data();
      *num_state = static_cast<uint32_t>(self.state_ptrs_.size());
    });
  }
  static llmsys_status_t Step(void* instance,
                              const llmsys_optimizer_step_t* args,
                              llmsys_error_t* err) {
    return Guard(err, [&] { Self(instance).Step(*args); });
  }

  static llmsys_status_t Sample(void* instance,
                                const llmsys_sample_args_t* args,
                                llmsys_error_t* err) {
    return Guard(err, [&] { Self(instance).Sample(*args); });
  }

  static llmsys_status_t Add(void* instance, const llmsys_eval_batch_t* batch,
                             llmsys_error_t* err) {
    return Guard(err, [&] { Self(instance).Add(*batch); });
  }
  static llmsys_status_t Result(void* instance,
                                const llmsys_metric_sink_t* sink,
                                char* signature, size_t capacity,
                                llmsys_error_t* err) {
    return Guard(err, [&] {
      Require(sink != nullptr && sink->emit != nullptr,
              "result() was given no metric sink");
      EvalResult r = Self(instance).Result();
      for (const auto& [name, value] : r.metrics)
        sink->emit(sink->data, name.c_str(), value);
      if (signature != nullptr && capacity > 0)
        std::snprintf(signature, capacity, "%s", r.signature.c_str());
    });
  }

  static llmsys_status_t ModelForward(void* instance, llmsys_graph_t* graph,
                                      const llmsys_model_inputs_t* inputs,
                                      llmsys_error_t* err) {
    return Guard(err, [&] { Self(instance).Forward(graph, *inputs); });
  }
};

// ---------------------------------------------------------------------------
// Registration: what the LLMSYS_PLUGIN block fills in init().

class Registry {
 public:
  template <class T>
  void Add() {
    auto item = std::make_unique<Item>();
    item->info = T::Describe();
    using Tr = Trampolines<T>;
    std::memset(&item->c, 0, sizeof(item->c));  // unused members stay NULL
    llmsys_component_t* base = &item->c.base;
    if constexpr (std::is_base_of_v<Operator, T>) {
      llmsys_operator_t& c = item->c.op;
      Fill(base, *item, LLMSYS_KIND_OPERATOR, sizeof(c));
      c.op = item->info.op.c_str();
      c.flags = item->info.op_flags;
      c.create = &Tr::Create;
      c.destroy = &Tr::Destroy;
      c.infer = &Tr::Infer;
      c.forward = &Tr::Forward;
      c.backward = T::kHasBackward ? &Tr::Backward : nullptr;
      c.priority = item->info.priority;
    } else if constexpr (std::is_base_of_v<Optimizer, T>) {
      llmsys_optimizer_t& c = item->c.opt;
      Fill(base, *item, LLMSYS_KIND_OPTIMIZER, sizeof(c));
      c.create = &Tr::Create;
      c.destroy = &Tr::Destroy;
      c.state = &Tr::State;
      c.step = &Tr::Step;
    } else if constexpr (std::is_base_of_v<Sampler, T>) {
      llmsys_sampler_t& c = item->c.sampler;
      Fill(base, *item, LLMSYS_KIND_SAMPLER, sizeof(c));
      c.create = &Tr::Create;
      c.destroy = &Tr::Destroy;
      c.sample = &Tr::Sample;
    } else if constexpr (std::is_base_of_v<Evaluator, T>) {
      llmsys_evaluator_t& c = item->c.eval;
      Fill(base, *item, LLMSYS_KIND_EVALUATOR, sizeof(c));
      c.inputs = item->info.eval_inputs;
      c.create = &Tr::Create;
      c.destroy = &Tr::Destroy;
      c.add = &Tr::Add;
      c.result = &Tr::Result;
    } else if constexpr (std::is_base_of_v<Model, T>) {
      llmsys_model_t& c = item->c.model;
      Fill(base, *item, LLMSYS_KIND_MODEL, sizeof(c));
      c.create = &Tr::CreateModel;
      c.destroy = &Tr::Destroy;
      c.forward = &Tr::ModelForward;
    } else {
      static_assert(std::is_base_of_v<Operator, T>,
                    "a component derives from Operator, Optimizer, Sampler, "
                    "Evaluator or Model");
    }
    items_.push_back(std::move(item));
  }

  // Declares a new op contract (see llmsys/ops.h for the grammar).
  void AddOpContract(std::string signature, std::string doc) {
    auto c = std::make_unique<Contract>();
    c->signature = std::move(signature);
    c->doc = std::move(doc);
    c->contract.struct_size = sizeof(llmsys_op_contract_t);
    c->contract.signature = c->signature.c_str();
    c->contract.doc = c->doc.c_str();
    contracts_.push_back(std::move(c));
  }

  uint32_t Count(llmsys_kind_t kind) const {
    if (kind == LLMSYS_KIND_OP_CONTRACT)
      return static_cast<uint32_t>(contracts_.size());
    uint32_t n = 0;
    for (const auto& item : items_) n += item->c.base.kind == kind;
    return n;
  }
  const void* Get(llmsys_kind_t kind, uint32_t index) const {
    if (kind == LLMSYS_KIND_OP_CONTRACT)
      return index < contracts_.size() ? &contracts_[index]->contract : nullptr;
    for (const auto& item : items_) {
      if (item->c.base.kind != kind) continue;
      if (index-- == 0) return &item->c;
    }
    return nullptr;
  }

 private:
  struct Item {
    Info info;
    std::vector<const llmsys_param_spec_t*> params;
    union {
      llmsys_component_t base;
      llmsys_operator_t op;
      llmsys_optimizer_t opt;
      llmsys_sampler_t sampler;
      llmsys_evaluator_t eval;
      llmsys_model_t model;
    } c;
  };
  struct Contract {
    std::string signature, doc;
    llmsys_op_contract_t contract;
  };

  static void Fill(llmsys_component_t* base, Item& item, llmsys_kind_t kind,
                   size_t size) {
    for (ParamSpec& p : item.info.params) item.params.push_back(p.Get());
    base->struct_size = static_cast<uint32_t>(size);
    base->kind = kind;
    base->id = item.info.id.c_str();
    base->version = item.info.version.c_str();
    base->description = item.info.description.c_str();
    base->device_type = item.info.device_type;
    base->num_params = static_cast<uint32_t>(item.params.size());
    base->params = item.params.data();
  }

  std::vector<std::unique_ptr<Item>> items_;
  std::vector<std::unique_ptr<Contract>> contracts_;
};

namespace internal {

inline std::unique_ptr<Registry>& RegistrySlot() {
  static std::unique_ptr<Registry> registry;
  return registry;
}

inline llmsys_status_t Init(const llmsys_host_api_t* host, llmsys_error_t* err,
                            void (*register_components)(Registry&)) {
  return Guard(err, [&] {
    HostSlot() = host;
    auto registry = std::make_unique<Registry>();
    register_components(*registry);
    RegistrySlot() = std::move(registry);
  });
}

inline void Deinit() {
  RegistrySlot().reset();
  HostSlot() = nullptr;
}

inline uint32_t Count(llmsys_kind_t kind) {
  return RegistrySlot() ? RegistrySlot()->Count(kind) : 0;
}

inline const void* Get(llmsys_kind_t kind, uint32_t index) {
  return RegistrySlot() ? RegistrySlot()->Get(kind, index) : nullptr;
}

}  // namespace internal
}  // namespace llmsys::sdk

#pragma GCC visibility pop

// Defines the plugin's entry table. Follow it with a block that adds the
// plugin's components to `registry`; the block runs inside init().
#define LLMSYS_PLUGIN(ID, VERSION, DESCRIPTION, LICENSE)                       \
  static void LlmsysRegisterComponents(::llmsys::sdk::Registry& registry);     \
  static llmsys_status_t LlmsysPluginInit(const llmsys_host_api_t* host,       \
                                          llmsys_error_t* err) {               \
    return ::llmsys::sdk::internal::Init(host, err,                            \
                                         &LlmsysRegisterComponents);           \
  }                                                                            \
  extern "C" LLMSYS_EXPORT const llmsys_plugin_entry_t llmsys_plugin_entry;    \
  extern "C" LLMSYS_EXPORT const llmsys_plugin_entry_t llmsys_plugin_entry = { \
      sizeof(llmsys_plugin_entry_t),                                           \
      LLMSYS_ABI_VERSION_MAJOR,                                                \
      LLMSYS_ABI_VERSION_MINOR,                                                \
      ID,                                                                      \
      VERSION,                                                                 \
      DESCRIPTION,                                                             \
      LICENSE,                                                                 \
      &LlmsysPluginInit,                                                       \
      &::llmsys::sdk::internal::Deinit,                                        \
      &::llmsys::sdk::internal::Count,                                         \
      &::llmsys::sdk::internal::Get};                                          \
  static void LlmsysRegisterComponents(                                        \
      [[maybe_unused]] ::llmsys::sdk::Registry& registry)

#endif  // LLMSYS_SDK_HPP_
