// A plugin built against the frozen ABI 1.0 headers (tests/abi/v1_0/, the
// include path of this file's target; never abi/), with one component of
// every kind, written with the 1.0 SDK. abi_v1_0_test loads it into the
// current host: the host must see ABI 1.0, load it, and run every component
// as it ran when 1.0 was current.
//
//   relu.v1_0      operator: relu, float32 and float64, forward and backward
//   sgd_v1_0       optimizer: p -= lr * buf, buf = momentum * buf + g
//   greedy_v1_0    sampler: the most likely token (ties to the lower id)
//   match_v1_0     evaluator: 100 x the fraction of exact matches
//   bigram_v1_0    model: logits = relu(wte[tokens]) @ head^T, cross entropy
//
// Thread-safety and ownership as the ABI says for each kind.
#include <cstdint>
#include <string>
#include <vector>

#include "llmsys/sdk.hpp"

static_assert(LLMSYS_ABI_VERSION_MAJOR == 1 && LLMSYS_ABI_VERSION_MINOR == 0,
              "this plugin must be built against tests/abi/v1_0, not abi/");

namespace {

namespace sdk = llmsys::sdk;
using sdk::Require;

bool IsF64(DLDataType t) { return llmsys_dtype_equal(t, LLMSYS_DTYPE_F64); }

double At(const DLTensor* t, int64_t i) {
  return IsF64(t->dtype) ? sdk::Data<const double>(t)[i]
                         : sdk::Data<const float>(t)[i];
}
void Put(DLTensor* t, int64_t i, double v) {
  if (IsF64(t->dtype)) {
    sdk::Data<double>(t)[i] = v;
  } else {
    sdk::Data<float>(t)[i] = static_cast<float>(v);
  }
}

class Relu : public sdk::Operator {
 public:
  static constexpr bool kHasBackward = true;
  static sdk::Info Describe() {
    return {.id = "relu.v1_0",
            .description = "relu built against ABI 1.0",
            .op = "relu",
            .op_flags = LLMSYS_OP_BACKWARD_NEEDS_INPUTS};
  }
  explicit Relu(const sdk::Params&) {}
  std::vector<llmsys_tensor_spec_t> Infer(const llmsys_op_call_t& call,
                                          size_t*) override {
    const DLTensor* x = Input(call);
    llmsys_tensor_spec_t s{};
    s.ndim = x->ndim;
    s.dtype = x->dtype;
    for (int32_t i = 0; i < x->ndim; ++i) s.shape[i] = x->shape[i];
    return {s};
  }
  void Forward(const llmsys_op_call_t& call, DLTensor* const* out,
               uint32_t) override {
    const DLTensor* x = Input(call);
    for (int64_t i = 0; i < llmsys_tensor_numel(x); ++i)
      Put(out[0], i, At(x, i) > 0 ? At(x, i) : 0.0);
  }
  void Backward(const llmsys_op_call_t& call, const DLTensor* const*,
                const DLTensor* const* grad_out, uint32_t,
                DLTensor* const* grad_in) override {
    if (grad_in[0] == nullptr) return;
    const DLTensor* x = Input(call);
    for (int64_t i = 0; i < llmsys_tensor_numel(x); ++i)
      Put(grad_in[0], i,
          grad_out[0] != nullptr && At(x, i) > 0 ? At(grad_out[0], i) : 0.0);
  }

 private:
  static const DLTensor* Input(const llmsys_op_call_t& call) {
    Require(call.num_inputs == 1, "relu.v1_0: one input expected");
    const DLTensor* x = call.inputs[0];
    Require(IsF64(x->dtype) || llmsys_dtype_equal(x->dtype, LLMSYS_DTYPE_F32),
            "relu.v1_0: float32 or float64 only");
    return x;
  }
};

class Sgd : public sdk::Optimizer {
 public:
  static sdk::Info Describe() {
    return {.id = "sgd_v1_0",
            .description = "SGD with momentum built against ABI 1.0",
            .params = {sdk::ParamSpec::Float("momentum", 0.0, "momentum")
                           .Range(0.0, 1.0)}};
  }
  explicit Sgd(const sdk::Params& p) : momentum_(p.Float("momentum")) {}
  std::vector<sdk::StateSpec> State() const override {
    return {{"momentum_buffer", LLMSYS_DTYPE_F64}};
  }
  void Step(const llmsys_optimizer_step_t& a) override {
    Require(a.num_state == 1, "sgd_v1_0: one state tensor per parameter");
    for (uint32_t p = 0; p < a.num_params; ++p) {
      for (int64_t i = 0; i < llmsys_tensor_numel(a.params[p]); ++i) {
        const double buf = momentum_ * At(a.state[p], i) + At(a.grads[p], i);
        Put(a.state[p], i, buf);
        Put(a.params[p], i, At(a.params[p], i) - a.lr * buf);
      }
    }
  }

 private:
  double momentum_;
};

class Greedy : public sdk::Sampler {
 public:
  static sdk::Info Describe() {
    return {.id = "greedy_v1_0",
            .description = "greedy sampling built against ABI 1.0"};
  }
  explicit Greedy(const sdk::Params&) {}
  void Sample(const llmsys_sample_args_t& a) override {
    const int64_t rows = a.logits->shape[0], vocab = a.logits->shape[1];
    for (int64_t b = 0; b < rows; ++b) {
      const float* row =
          sdk::Data<const float>(a.logits) + b * sdk::Stride(a.logits, 0);
      const int64_t col = sdk::Stride(a.logits, 1);
      int64_t best = 0;
      for (int64_t v = 1; v < vocab; ++v)
        if (row[v * col] > row[best * col]) best = v;
      sdk::Data<int64_t>(a.tokens)[b] = best;
    }
  }
};

class Match : public sdk::Evaluator {
 public:
  static sdk::Info Describe() {
    return {.id = "match_v1_0",
            .description = "exact match built against ABI 1.0",
            .eval_inputs = LLMSYS_EVAL_TEXT};
  }
  explicit Match(const sdk::Params&) {}
  void Add(const llmsys_eval_batch_t& b) override {
    for (uint32_t i = 0; i < b.count; ++i) {
      bool hit = false;
      for (uint32_t r = 0; r < b.num_references; ++r) {
        const char* ref = b.references[r * b.count + i];
        hit = hit || (ref != nullptr && std::string(ref) == b.hypotheses[i]);
      }
      hits_ += hit;
      ++count_;
    }
  }
  sdk::EvalResult Result() override {
    return {{{"match", count_ ? 100.0 * hits_ / count_ : 0.0},
             {"segments", static_cast<double>(count_)}},
            "v1_0"};
  }

 private:
  int64_t hits_ = 0, count_ = 0;
};

class Bigram : public sdk::Model {
 public:
  static sdk::Info Describe() {
    return {.id = "bigram_v1_0",
            .description = "bigram language model built against ABI 1.0",
            .params = {sdk::ParamSpec::Required("vocab_size", LLMSYS_TYPE_INT,
                                                "set by the host"),
                       sdk::ParamSpec::Int("n_embd", 8, "width").Min(1)}};
  }
  Bigram(const sdk::Params& p, llmsys_graph_t* graph)
      : wte_{.name = "wte",
             .shape = {p.Int("vocab_size"), p.Int("n_embd")},
             .b = 1.0},
        head_{.name = "head",
              .shape = {p.Int("vocab_size"), p.Int("n_embd")},
              .b = 0.1} {
    wte_.Get(graph);
    head_.Get(graph);
  }
  void Forward(llmsys_graph_t* g, const llmsys_model_inputs_t& in) override {
    const sdk::Value tokens = sdk::Input(g, in, "tokens");
    const sdk::Value logits =
        sdk::Matmul(sdk::Relu(sdk::Embedding(wte_.Get(g), tokens)),
                    head_.Get(g), false, true);
    sdk::SetOutput(g, "logits", logits);
    if (sdk::HasInput(in, "targets"))
      sdk::SetOutput(g, "loss",
                     sdk::CrossEntropy(logits, sdk::Input(g, in, "targets")));
  }

 private:
  sdk::ParameterSpec wte_, head_;
};

}  // namespace

LLMSYS_PLUGIN("test.v1_0", "1.0.0",
              "A plugin built against the frozen ABI 1.0 headers", "MIT") {
  // The host hands a table at least as large as the one 1.0 knows.
  Require(sdk::Host() != nullptr &&
              sdk::Host()->struct_size >= sizeof(llmsys_host_api_t),
          "test.v1_0: the host table is smaller than ABI 1.0's");
  registry.Add<Relu>();
  registry.Add<Sgd>();
  registry.Add<Greedy>();
  registry.Add<Match>();
  registry.Add<Bigram>();
}
