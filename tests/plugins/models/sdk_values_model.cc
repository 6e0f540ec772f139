// A test model plugin ("test.sdk_values", model "sdk_values") that exercises
// the SDK's model-building section: every Value operator and view, the op
// wrappers, CallOp with attributes, constants, parameters, inputs and
// outputs. Its forward reads input "x" (2, 3) and names one output per
// expression; sdk_model_test checks them. The `fail` parameter makes the
// forward fail in one way, to check that host errors come back intact.
#include <string>
#include <vector>

#include "llmsys/sdk.hpp"

namespace {

namespace sdk = llmsys::sdk;
using sdk::Value;

class SdkValues : public sdk::Model {
 public:
  static sdk::Info Describe() {
    return {.id = "sdk_values",
            .description = "SDK Value operators (test model)",
            .params = {sdk::ParamSpec::String("fail", "none", "how to fail")
                           .Choices("none|unknown_op|bad_shape|null_value")}};
  }
  SdkValues(const sdk::Params& p, llmsys_graph_t* graph)
      : fail_(p.String("fail")),
        w_{.name = "w",
           .shape = {2, 3},
           .dtype = LLMSYS_DTYPE_F64,
           .init = "ones",
           .no_decay = true} {
    w_.Get(graph);
    sdk::DeclareBuffer(graph, "cache", {4}, LLMSYS_DTYPE_F64);
  }

  void Forward(llmsys_graph_t* g,
               const llmsys_model_inputs_t& inputs) override {
    const Value x = sdk::Input(g, inputs, "x");  // (2, 3) float64
    if (fail_ == "unknown_op") sdk::CallOp(g, "softmx", {x});
    if (fail_ == "bad_shape") (void)sdk::Matmul(x, x);
    if (fail_ == "null_value") (void)sdk::Exp(Value());

    auto out = [g](const std::string& name, const Value& v) {
      sdk::SetOutput(g, name, v);
    };
    out("add", x + x);
    out("add_scalar", x + 2.0);
    out("scalar_sub", 1.0 - x);
    out("mul", x * x);
    out("scalar_mul", 3.0 * x);
    out("div", x / 2.0);
    out("scalar_div", 6.0 / x);
    out("sub", x - 0.5);
    out("neg", -x);
    out("reshape", x.Reshape({3, 2}));
    out("view", x.View({-1}));
    out("permute", x.Permute({1, 0}));
    out("transpose", x.Transpose(0, -1));
    out("slice", x.Slice(1, 0, 3, 2));
    out("expand", x.Slice(0, 1, 2).Expand({3, 3}));
    out("detach", x.Detach());
    out("matmul_t", sdk::Matmul(x, x, false, true));
    out("sum_rows", sdk::Sum(x, {1}, true));
    out("mean_all", sdk::Mean(x));
    out("max_cols", sdk::Max(x, {0}));
    out("softmax", sdk::Softmax(x, -1));
    out("log_softmax", sdk::LogSoftmax(x, 0));
    out("exp_log", sdk::Log(sdk::Exp(x)));
    out("sqrt_pow", sdk::Sqrt(sdk::Pow(x, 2.0)));
    out("tanh", sdk::Tanh(x));
    out("sigmoid", sdk::Sigmoid(x));
    out("relu", sdk::Relu(x - 2.0));
    out("gelu_tanh", sdk::Gelu(x, "tanh"));
    out("concat", sdk::Concat({x, x}, 0));
    out("where", sdk::Where(x - 2.0, x, -x));
    const Value mask = sdk::Constant(g, std::vector<int64_t>{1, 0, 1}, {3});
    out("masked_fill", sdk::MaskedFill(x, mask, -1.0));
    out("layer_norm", sdk::LayerNorm(x, nullptr, nullptr, 1e-5));
    out("rms_norm", sdk::RmsNorm(x, nullptr, 1e-6));
    const Value idx = sdk::Constant(g, std::vector<int64_t>{1, 1, 0}, {3});
    out("embedding", sdk::Embedding(x, idx));
    const Value targets = sdk::Constant(g, std::vector<int64_t>{2, -100}, {2});
    out("cross_entropy", sdk::CrossEntropy(x, targets));
    out("call_op", sdk::CallOp(g, "sum", {x},
                               {{"dims", std::vector<int64_t>{0}},
                                {"keepdim", false}})[0]);
    // q = k = v = x as (1, 1, 2, 3), causal: the first row sees itself only.
    const Value q = x.Reshape({1, 1, 2, 3});
    out("attention", sdk::Attention(q, q, q, nullptr, true));
    const std::vector<int64_t> shape = x.Shape();
    out("shape", sdk::Constant(g, shape, {static_cast<int64_t>(shape.size())}));
    out("size_last",
        sdk::Scalar(g, static_cast<double>(x.Size(-1)), LLMSYS_DTYPE_I64));
    // A copied, then reassigned Value: the references must balance.
    Value copy = x;
    Value moved = std::move(copy);
    copy = moved;
    const Value& self = copy;
    copy = self;  // self-assignment
    out("copy", copy);
    // loss = sum(w * x): d loss / d w = x.
    out("loss", sdk::Sum(w_.Get(g) * x));
    sdk::Require(sdk::HasInput(inputs, "x") && !sdk::HasInput(inputs, "y"),
                 "HasInput is wrong");
    sdk::Require(llmsys_dtype_equal(x.Dtype(), LLMSYS_DTYPE_F64),
                 "Dtype is wrong");
  }

 private:
  std::string fail_;
  sdk::ParameterSpec w_;
};

}  // namespace

LLMSYS_PLUGIN("test.sdk_values", "0.1.0", "SDK Value test model", "MIT") {
  registry.Add<SdkValues>();
}
