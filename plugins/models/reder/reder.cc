// plugins/models/reder/reder.cc — REDER, the reversible duplex
// non-autoregressive translator of Zheng et al., "Duplex Sequence-to-Sequence
// Learning for Reversible Machine Translation" (NeurIPS 2021) (plugin
// "llmsys.reder", model "reder"): one reversible network translates in both
// directions with the same parameters, trained with CTC on both.
//
//   d = n_embd, s = upsample, L = n_layer (even), blank = the CTC blank id
//   State: each position holds 2d numbers, two halves (x1, x2).
//   Coupling layer (regular form, and its exact inverse):
//     y1 = x1 + F(x2)          x2 = y2 - G(y1)
//     y2 = x2 + G(y1)          x1 = y1 - F(x2)
//   F(x) = dropout(proj(attention(qkv(LN(x) + PE))))   not causal, keys
//          masked at padding, n_head heads, PE sinusoidal over the frames
//          (inside F, so the coupling stays exactly invertible)
//   G(x) = dropout(fc2(act(fc1(LN(x)))))               act relu or gelu
//   Two ends of L/2 coupling layers each, source_end S_0..S_{L/2-1} and
//   target_end T_0..T_{L/2-1}:
//     f_{x->y} = T_0^-1 o ... o T_{L/2-1}^-1 o S_{L/2-1} o ... o S_0
//     f_{y->x} = S_0^-1 o ... o S_{L/2-1}^-1 o T_{L/2-1} o ... o T_0
//   so f_{y->x} o f_{x->y} = identity on every state.
//   ids (B, S) -> e = embed[ids] repeated s times per token  (B, s*S, d)
//   h0 = [e, e] -> f (direction 0: f_{x->y}, 1: f_{y->x}) -> [h1, h2]
//   logits = ((h1 + h2) / 2) @ embed^T                        (B, s*S, V)
//   ctc(logits, targets) = ctc_loss(log_softmax(logits) as (s*S, B, V),
//     input lengths s * lengths, blank, reduction mean (each sample's loss
//     over its target length, then the batch mean), zero_infinity)
//
// Inputs (ids int64 or int32, right-padded; lengths (B) and the ids are read
// on the host, so they must be in host-visible memory):
//   "src" (B, S), "src_lengths" (B), optional "src_padding_mask" (B, S)
//     (1 = pad; checked against the lengths), likewise "tgt",
//     "tgt_lengths", "tgt_padding_mask" (B, U);
//   optional "direction": a scalar int (shape () or (1)), 0 (default) when
//     "src" is in the source language, 1 when it is in the target language
//     (the host swaps the data); "tgt" is always the other language.
// Outputs:
//   with "src" and "tgt" (TRAIN or EVAL): both directions every call,
//     "ctc_forward" = ctc(translate(src), tgt), "ctc_reverse" =
//     ctc(translate(tgt), src), "loss" = their mean, "ctc_infeasible" (an
//     int64 scalar: how many of the 2B (pair, direction) have a target of U
//     labels with R adjacent repeats longer than its frames, U + R > s *
//     length; their loss is 0 and they still count in the batch mean),
//     "logits" and "logit_lengths" of translate(src);
//   with "src" only (EVAL, translation): "logits" (B, s*S, V) and
//     "logit_lengths" (B) int64 = s * src_lengths; the host decodes CTC
//     greedily (argmax, merge repeats, drop blanks, stop at the length);
//   with "state" (B, T, 2d) (the model's dtype) and optional
//     "state_padding_mask" (B, T) and "direction": "state" = f applied to it
//     (no embedding, no head), for tests and analysis.
//
// Parameters: "embed.weight" (V, d), tied with the output layer; for each
// end E in {source_end, target_end} and layer i < L/2, "E.layers.i.f.ln",
// "E.layers.i.f.qkv" (d -> 3d: q | k | v), "E.layers.i.f.proj" (d -> d),
// "E.layers.i.g.ln", "E.layers.i.g.fc1" (d -> ffn_dim), "E.layers.i.g.fc2"
// (ffn_dim -> d), each with ".weight" and ".bias". Linear weights keep
// torch.nn.Linear's (out, in) layout.
//
// Initialization: linear weights Xavier-uniform, U(-a, a) with
// a = sqrt(6 / (in + out)); biases zeros; LayerNorm weights ones; the
// embedding normal(0, d^-1/2). Biases and LayerNorm weights are excluded
// from weight decay.
//
// Modes: TRAIN applies dropout to the outputs of F and G and needs "tgt";
// EVAL drops nothing. GENERATE is refused: the model is non-autoregressive
// and translates in one EVAL call.
//
// recompute = true runs the stack through the host's call_couplings
// (llmsys/host.h): no activation inside it is stored, and backward rebuilds
// each layer's input from its output with the opposite form and recomputes
// F and G, so training memory stays flat in n_layer; the gradients are those
// of the stored path up to the rounding of the rebuilt inputs.
#include <cmath>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "llmsys/sdk.hpp"

namespace {

using llmsys::sdk::AppendSpecs;
using llmsys::sdk::Apply;
using llmsys::sdk::Attention;
using llmsys::sdk::HasInput;
using llmsys::sdk::Info;
using llmsys::sdk::Input;
using llmsys::sdk::LayerNorm;
using llmsys::sdk::LinearParams;
using llmsys::sdk::Matmul;
using llmsys::sdk::MaybeDropout;
using llmsys::sdk::MergeHeads;
using llmsys::sdk::NormalInit;
using llmsys::sdk::NormParams;
using llmsys::sdk::ParameterSpec;
using llmsys::sdk::Params;
using llmsys::sdk::ParamSpec;
using llmsys::sdk::Require;
using llmsys::sdk::SetOutput;
using llmsys::sdk::ShapeString;
using llmsys::sdk::SplitHeads;
using llmsys::sdk::Value;
using llmsys::sdk::XavierUniformInit;

// The hyperparameters, read once from the validated schema values.
struct Config {
  int64_t vocab_size, n_layer, n_head, n_embd, ffn_dim, upsample, blank,
      max_positions;
  double dropout, layer_norm_eps;
  bool gelu;       // activation "gelu" (erf form) rather than "relu"
  bool recompute;  // run the stack through the host's call_couplings
  DLDataType dtype;
};

// Integer elements of a host-visible tensor (int32, int64 or uint8), in
// row-major order whatever its strides; `name` appears in errors.
std::vector<int64_t> HostInts(const Value& v, const std::string& name) {
  const DLTensor t = v.Tensor();
  Require(t.device.device_type == kDLCPU || t.device.device_type == kDLCUDAHost,
          "reder: reads '" + name +
              "' on the host; it must be in host-visible memory (CPU)");
  const bool i64 = llmsys_dtype_equal(t.dtype, LLMSYS_DTYPE_I64);
  const bool i32 = llmsys_dtype_equal(t.dtype, LLMSYS_DTYPE_I32);
  const bool u8 = llmsys_dtype_equal(t.dtype, LLMSYS_DTYPE_U8);
  Require(i64 || i32 || u8,
          "reder: '" + name + "' must hold integers (int64, int32 or uint8)");
  int64_t n = 1;
  for (int32_t d = 0; d < t.ndim; ++d) n *= t.shape[d];
  std::vector<int64_t> out(static_cast<size_t>(n));
  const char* base = static_cast<const char*>(llmsys_tensor_data(&t));
  for (int64_t i = 0; i < n; ++i) {
    int64_t offset = 0, rest = i;  // element offset of row-major index i
    for (int32_t d = t.ndim - 1; d >= 0; --d) {
      offset += (rest % t.shape[d]) * llmsys::sdk::Stride(&t, d);
      rest /= t.shape[d];
    }
    if (i64)
      out[static_cast<size_t>(i)] =
          reinterpret_cast<const int64_t*>(base)[offset];
    else if (i32)
      out[static_cast<size_t>(i)] =
          reinterpret_cast<const int32_t*>(base)[offset];
    else
      out[static_cast<size_t>(i)] =
          reinterpret_cast<const uint8_t*>(base)[offset];
  }
  return out;
}

// A batch of sentences in one language: the ids value and, read on the
// host, the ids and the lengths.
struct Sentences {
  Value ids;  // (B, S)
  int64_t batch = 0, width = 0;
  std::vector<int64_t> host_ids;  // (B, S) row-major
  std::vector<int64_t> lengths;   // (B)
};

class Reder : public llmsys::sdk::Model {
 public:
  static Info Describe() {
    return {
        .id = "reder",
        .version = "0.1.0",
        .description =
            "REDER: reversible duplex non-autoregressive translator "
            "(coupling layers, upsampled CTC, both directions with the same "
            "parameters)",
        .params = {
            ParamSpec::Required("vocab_size", LLMSYS_TYPE_INT,
                                "vocabulary size of both languages together "
                                "(the host sets it from the tokenizer)")
                .Min(1),
            ParamSpec::Int("n_layer", 6,
                           "coupling layers in all, even: half form each "
                           "end")
                .Min(2),
            ParamSpec::Int("n_head", 4, "attention heads in each F").Min(1),
            ParamSpec::Int("n_embd", 256,
                           "d: the width of each half of the state (a "
                           "multiple of n_head)")
                .Min(1),
            ParamSpec::Int("ffn_dim", 1024, "hidden width of each G").Min(1),
            ParamSpec::Int("upsample", 2,
                           "s: frames per input token (the CTC input is s "
                           "times longer than the sentence)")
                .Min(1),
            ParamSpec::Int("blank", 0,
                           "the CTC blank id (also the padding id <pad>)")
                .Min(0),
            ParamSpec::Float("dropout", 0.1,
                             "dropout on the outputs of F and G in training, "
                             "in [0, 1)")
                .Range(0.0, 1.0),
            ParamSpec::String("activation", "relu", "activation inside G")
                .Choices("relu|gelu"),
            ParamSpec::Float("layer_norm_eps", 1e-5, "LayerNorm epsilon")
                .Min(0.0),
            ParamSpec::Int("max_positions", 512,
                           "most frames (s times the longest sentence)")
                .Min(1),
            ParamSpec::String("dtype", "float32", "parameter dtype")
                .Choices("float32|float64"),
            ParamSpec::Bool("recompute", false,
                            "train without storing the coupling layers' "
                            "activations: backward rebuilds each layer's "
                            "input with its inverse and recomputes it (memory "
                            "flat in n_layer, about a third more compute)"),
        }};
  }

  // Reads the config and declares every parameter on `graph`.
  Reder(const Params& p, llmsys_graph_t* graph)
      : c_{.vocab_size = p.Int("vocab_size"),
           .n_layer = p.Int("n_layer"),
           .n_head = p.Int("n_head"),
           .n_embd = p.Int("n_embd"),
           .ffn_dim = p.Int("ffn_dim"),
           .upsample = p.Int("upsample"),
           .blank = p.Int("blank"),
           .max_positions = p.Int("max_positions"),
           .dropout = p.Float("dropout"),
           .layer_norm_eps = p.Float("layer_norm_eps"),
           .gelu = p.String("activation") == "gelu",
           .recompute = p.Bool("recompute"),
           .dtype = llmsys::sdk::DtypeNamed(p.String("dtype"))} {
    Require(c_.n_layer % 2 == 0,
            "reder: n_layer (" + std::to_string(c_.n_layer) +
                ") must be even: half the coupling layers form each end");
    Require(c_.n_embd % c_.n_head == 0, "reder: n_embd (" +
                                            std::to_string(c_.n_embd) +
                                            ") must be a multiple of n_head (" +
                                            std::to_string(c_.n_head) + ")");
    Require(c_.blank < c_.vocab_size, "reder: blank (" +
                                          std::to_string(c_.blank) +
                                          ") must be an id below vocab_size (" +
                                          std::to_string(c_.vocab_size) + ")");
    Require(c_.dropout < 1.0, "reder: dropout must be below 1");
    const int64_t d = c_.n_embd, ffn = c_.ffn_dim;
    // Every parameter in c_.dtype, every linear layer and LayerNorm with a
    // bias; linear weights Xavier-uniform.
    const llmsys::sdk::ParameterMaker make{
        .dtype = c_.dtype, .bias = true, .eps = c_.layer_norm_eps};
    auto linear = [&make](const std::string& name, int64_t in, int64_t out) {
      return make.Linear(name, in, out, XavierUniformInit(in, out));
    };
    embed_ = make.Weight("embed.weight", {c_.vocab_size, d},
                         NormalInit(1.0 / std::sqrt(static_cast<double>(d))));
    for (const char* end : {"source_end", "target_end"}) {
      std::vector<Layer>& layers =
          std::string(end) == "source_end" ? source_end_ : target_end_;
      for (int64_t i = 0; i < c_.n_layer / 2; ++i) {
        const std::string b =
            std::string(end) + ".layers." + std::to_string(i) + ".";
        layers.push_back({.f_ln = make.Norm(b + "f.ln", d),
                          .qkv = linear(b + "f.qkv", d, 3 * d),
                          .proj = linear(b + "f.proj", d, d),
                          .g_ln = make.Norm(b + "g.ln", d),
                          .fc1 = linear(b + "g.fc1", d, ffn),
                          .fc2 = linear(b + "g.fc2", ffn, d)});
      }
    }
    // Declaring is what create() is for: the host allocates and initializes.
    for (const ParameterSpec& spec : All()) spec.Get(graph);
    if (c_.recompute) {
      Require(llmsys::sdk::HostHasCouplings(),
              "reder: recompute needs a host with call_couplings (llmsys ABI "
              "1.1 or later)",
              LLMSYS_STATUS_UNIMPLEMENTED);
      // F and G of every layer as functions the host calls (again in
      // backward); they live as long as the instance.
      for (const std::vector<Layer>* end : {&source_end_, &target_end_}) {
        for (const Layer& layer : *end) {
          const Layer* l = &layer;
          functions_.push_back({[this, l](llmsys_graph_t* g, const Value& x,
                                          const std::vector<Value>& context) {
                                  return F(ContextOf(g, x, context), *l, x);
                                },
                                [this, l](llmsys_graph_t* g, const Value& x,
                                          const std::vector<Value>& context) {
                                  return G(ContextOf(g, x, context), *l, x);
                                }});
        }
      }
    }
  }

  void Forward(llmsys_graph_t* graph,
               const llmsys_model_inputs_t& inputs) override {
    Require(inputs.mode != LLMSYS_MODE_GENERATE,
            "reder: LLMSYS_MODE_GENERATE is not supported: the model is "
            "non-autoregressive; translate with one LLMSYS_MODE_EVAL call on "
            "'src' and decode its CTC logits");
    Require(inputs.past_length == 0,
            "reder: past_length must be 0 (the model keeps no cache), got " +
                std::to_string(inputs.past_length));
    const bool train = inputs.mode == LLMSYS_MODE_TRAIN;
    const double p_drop = train ? c_.dropout : 0.0;
    const int64_t direction = Direction(graph, inputs);

    if (HasInput(inputs, "state")) {
      Require(!HasInput(inputs, "src") && !HasInput(inputs, "tgt"),
              "reder: give either 'state' (the duplex stack alone) or "
              "'src'/'tgt' (translation), not both");
      StatePath(graph, inputs, direction, p_drop);
      return;
    }

    const Sentences src = ReadSentences(graph, inputs, "src");
    const bool has_tgt = HasInput(inputs, "tgt");
    Require(has_tgt || !train,
            "reder: training needs an input 'tgt' (B, U) with 'tgt_lengths' "
            "(B): the loss is CTC in both directions");
    Value logits = Translate(graph, src, direction, p_drop);  // (B, sS, V)
    std::vector<int64_t> frames = Frames(src);
    SetOutput(graph, "logits", logits);
    SetOutput(graph, "logit_lengths",
              llmsys::sdk::Constant(graph, frames, {src.batch}));
    if (!has_tgt) return;

    const Sentences tgt = ReadSentences(graph, inputs, "tgt");
    Require(tgt.batch == src.batch, "reder: tgt " +
                                        ShapeString({tgt.batch, tgt.width}) +
                                        " must have the batch size of src " +
                                        ShapeString({src.batch, src.width}));
    Value reverse = Translate(graph, tgt, 1 - direction, p_drop);
    Value ctc_forward = Ctc(logits, frames, tgt);
    Value ctc_reverse = Ctc(reverse, Frames(tgt), src);
    SetOutput(graph, "ctc_forward", ctc_forward);
    SetOutput(graph, "ctc_reverse", ctc_reverse);
    SetOutput(graph, "loss", (ctc_forward + ctc_reverse) * 0.5);
    const int64_t infeasible =
        Infeasible(frames, tgt) + Infeasible(Frames(tgt), src);
    SetOutput(
        graph, "ctc_infeasible",
        llmsys::sdk::Constant(graph, std::vector<int64_t>{infeasible}, {}));
  }

 private:
  // One coupling layer: F (attention) and G (feed-forward), with
  // llmsys/sdk.hpp's layer helpers.
  struct Layer {
    NormParams f_ln;
    LinearParams qkv, proj;
    NormParams g_ln;
    LinearParams fc1, fc2;
  };
  // What every layer of one stack application shares: the frames' positions
  // and padding.
  struct Context {
    llmsys_graph_t* graph = nullptr;
    int64_t batch = 0, frames = 0;  // B, T
    Value pe;                       // (T, d) sinusoidal positions
    Value mask;                     // (B, T) non-zero = pad, or null
    double p_drop = 0.0;
  };

  // Every parameter, in declaration order.
  std::vector<ParameterSpec> All() const {
    std::vector<ParameterSpec> all = {embed_};
    for (const std::vector<Layer>* end : {&source_end_, &target_end_})
      for (const Layer& l : *end)
        AppendSpecs(&all, l.f_ln, l.qkv, l.proj, l.g_ln, l.fc1, l.fc2);
    return all;
  }

  // A float constant of the model's dtype.
  Value FloatConstant(llmsys_graph_t* graph, const std::vector<double>& values,
                      std::vector<int64_t> shape) const {
    if (llmsys_dtype_equal(c_.dtype, LLMSYS_DTYPE_F64))
      return llmsys::sdk::Constant(graph, values, std::move(shape));
    return llmsys::sdk::Constant(
        graph, std::vector<float>(values.begin(), values.end()),
        std::move(shape));
  }

  // Sinusoidal positions of Vaswani et al. (T, d): PE[t, 2i] =
  // sin(t / 10000^(2i/d)), PE[t, 2i+1] = cos(t / 10000^(2i/d)).
  Value Positions(llmsys_graph_t* graph, int64_t frames) const {
    const int64_t d = c_.n_embd;
    std::vector<double> pe(static_cast<size_t>(frames * d));
    for (int64_t t = 0; t < frames; ++t) {
      for (int64_t j = 0; j < d; ++j) {
        const double angle = static_cast<double>(t) /
                             std::pow(10000.0, static_cast<double>(j - j % 2) /
                                                   static_cast<double>(d));
        pe[static_cast<size_t>(t * d + j)] =
            j % 2 == 0 ? std::sin(angle) : std::cos(angle);
      }
    }
    return FloatConstant(graph, pe, {frames, d});
  }

  Context MakeContext(llmsys_graph_t* graph, int64_t batch, int64_t frames,
                      Value mask, double p_drop) const {
    Require(frames <= c_.max_positions,
            "reder: " + std::to_string(frames) +
                " frames exceed max_positions " +
                std::to_string(c_.max_positions) +
                " (frames = upsample x sentence length)");
    return {.graph = graph,
            .batch = batch,
            .frames = frames,
            .pe = Positions(graph, frames),
            .mask = std::move(mask),
            .p_drop = p_drop};
  }

  // F(x) = dropout(proj(attention(qkv(LN(x) + PE)))): (B, T, d) -> (B, T, d).
  Value F(const Context& ctx, const Layer& layer, const Value& x) const {
    const int64_t H = c_.n_head;
    Value h = LayerNorm(ctx.graph, layer.f_ln, x) + ctx.pe;
    Value qkv = Apply(ctx.graph, layer.qkv, h);  // (B, T, 3d): q | k | v
    const std::vector<Value> heads = SplitHeads(qkv, 3, H);  // (B, H, T, D)
    Value y = Attention(heads[0], heads[1], heads[2],
                        ctx.mask ? &ctx.mask : nullptr, /*causal=*/false);
    y = MergeHeads(y);  // (B, T, d)
    return MaybeDropout(Apply(ctx.graph, layer.proj, y), ctx.p_drop);
  }

  // G(x) = dropout(fc2(act(fc1(LN(x))))): (B, T, d) -> (B, T, d).
  Value G(const Context& ctx, const Layer& layer, const Value& x) const {
    Value h = Apply(ctx.graph, layer.fc1, LayerNorm(ctx.graph, layer.g_ln, x));
    h = c_.gelu ? llmsys::sdk::Gelu(h) : llmsys::sdk::Relu(h);
    return MaybeDropout(Apply(ctx.graph, layer.fc2, h), ctx.p_drop);
  }

  // One coupling layer on the halves (x1, x2). Regular form:
  // y1 = x1 + F(x2), y2 = x2 + G(y1). Inverse form (x1, x2 hold y1, y2):
  // x2 = y2 - G(y1), x1 = y1 - F(x2).
  std::pair<Value, Value> Coupling(const Context& ctx, const Layer& layer,
                                   const Value& x1, const Value& x2,
                                   bool inverse) const {
    if (!inverse) {
      Value y1 = x1 + F(ctx, layer, x2);
      Value y2 = x2 + G(ctx, layer, y1);
      return {std::move(y1), std::move(y2)};
    }
    Value a2 = x2 - G(ctx, layer, x1);
    Value a1 = x1 - F(ctx, layer, a2);
    return {std::move(a1), std::move(a2)};
  }

  // The duplex stack: direction 0 runs source_end forward then target_end
  // inverted (f_{x->y}); direction 1 the other way round (f_{y->x}).
  std::pair<Value, Value> Duplex(const Context& ctx, Value x1, Value x2,
                                 int64_t direction) const {
    if (c_.recompute) return Recomputed(ctx, x1, x2, direction);
    const std::vector<Layer>& first =
        direction == 0 ? source_end_ : target_end_;
    const std::vector<Layer>& second =
        direction == 0 ? target_end_ : source_end_;
    for (const Layer& layer : first)
      std::tie(x1, x2) = Coupling(ctx, layer, x1, x2, /*inverse=*/false);
    for (auto it = second.rbegin(); it != second.rend(); ++it)
      std::tie(x1, x2) = Coupling(ctx, *it, x1, x2, /*inverse=*/true);
    return {std::move(x1), std::move(x2)};
  }

  // The same stack through the host's call_couplings (recompute): the
  // layers' F and G get the context as values (positions, dropout
  // probability, and the padding mask when there is one).
  std::pair<Value, Value> Recomputed(const Context& ctx, const Value& x1,
                                     const Value& x2, int64_t direction) const {
    const size_t half = source_end_.size();
    const size_t first = direction == 0 ? 0 : half;  // into functions_
    const size_t second = direction == 0 ? half : 0;
    std::vector<llmsys::sdk::CouplingLayer> layers;
    for (size_t i = 0; i < half; ++i)
      layers.push_back({&functions_[first + i].f, &functions_[first + i].g,
                        /*inverse=*/false});
    for (size_t i = half; i-- > 0;)
      layers.push_back({&functions_[second + i].f, &functions_[second + i].g,
                        /*inverse=*/true});
    std::vector<Value> context = {
        ctx.pe,
        llmsys::sdk::Constant(ctx.graph, std::vector<double>{ctx.p_drop}, {1})};
    if (ctx.mask) context.push_back(ctx.mask);
    return llmsys::sdk::Couplings(ctx.graph, layers, x1, x2, context);
  }

  // The Context a host-called F or G receives (Recomputed's values).
  Context ContextOf(llmsys_graph_t* graph, const Value& x,
                    const std::vector<Value>& context) const {
    const std::vector<int64_t> shape = x.Shape();
    const DLTensor p = context.at(1).Tensor();
    Require(
        p.device.device_type == kDLCPU || p.device.device_type == kDLCUDAHost,
        "reder: reads its dropout rate on the host; reder runs on the CPU "
        "only (set [train] device = \"cpu\")");
    return {.graph = graph,
            .batch = shape[0],
            .frames = shape[1],
            .pe = context.at(0),
            .mask = context.size() > 2 ? context[2] : Value(),
            .p_drop = static_cast<const double*>(llmsys_tensor_data(&p))[0]};
  }

  // The CTC frames of each sentence: s * length.
  std::vector<int64_t> Frames(const Sentences& s) const {
    std::vector<int64_t> frames = s.lengths;
    for (int64_t& f : frames) f *= c_.upsample;
    return frames;
  }

  // Logits (B, s*S, V) of translating `s` in `direction`.
  Value Translate(llmsys_graph_t* graph, const Sentences& s, int64_t direction,
                  double p_drop) const {
    const int64_t B = s.batch, S = s.width, up = c_.upsample, d = c_.n_embd,
                  T = up * S;
    // The upsampled padding mask: frame t of row b is padding when
    // t >= s * length_b. Null when no row is padded.
    std::vector<int32_t> pad(static_cast<size_t>(B * T), 0);
    bool any = false;
    for (int64_t b = 0; b < B; ++b) {
      for (int64_t t = up * s.lengths[static_cast<size_t>(b)]; t < T; ++t) {
        pad[static_cast<size_t>(b * T + t)] = 1;
        any = true;
      }
    }
    Context ctx = MakeContext(
        graph, B, T, any ? llmsys::sdk::Constant(graph, pad, {B, T}) : Value(),
        p_drop);
    // (B, S, d) -> (B, S, 1, d) -> (B, S, s, d) -> (B, s*S, d): each token's
    // embedding repeated s times, by views.
    Value embed = embed_.Get(graph);
    Value e = llmsys::sdk::Embedding(embed, s.ids)
                  .Reshape({B, S, 1, d})
                  .Expand({B, S, up, d})
                  .Reshape({B, T, d});
    auto [h1, h2] = Duplex(ctx, e, e, direction);
    return Matmul((h1 + h2) * 0.5, embed, false, true);  // (B, T, V)
  }

  // Mean CTC loss of `logits` (B, T, V) with `frames` (B) against `target`.
  Value Ctc(const Value& logits, const std::vector<int64_t>& frames,
            const Sentences& target) const {
    llmsys_graph_t* graph = logits.graph();
    const int64_t B = target.batch;
    Value log_probs = llmsys::sdk::LogSoftmax(logits, -1).Transpose(0, 1);
    return llmsys::sdk::CallOp(
        graph, "ctc_loss",
        {log_probs, target.ids, llmsys::sdk::Constant(graph, frames, {B}),
         llmsys::sdk::Constant(graph, target.lengths, {B})},
        {{"blank", c_.blank},
         {"reduction", "mean"},
         {"zero_infinity", true}})[0];
  }

  // How many rows of `target` cannot fit their frames: U labels with R
  // adjacent repeats need U + R frames (a blank between the repeats).
  static int64_t Infeasible(const std::vector<int64_t>& frames,
                            const Sentences& target) {
    int64_t count = 0;
    for (int64_t b = 0; b < target.batch; ++b) {
      const int64_t u = target.lengths[static_cast<size_t>(b)];
      const int64_t* row =
          &target.host_ids[static_cast<size_t>(b * target.width)];
      int64_t repeats = 0;
      for (int64_t i = 1; i < u; ++i) repeats += row[i] == row[i - 1];
      count += u + repeats > frames[static_cast<size_t>(b)];
    }
    return count;
  }

  // The optional "direction" input: 0 (default) or 1.
  static int64_t Direction(llmsys_graph_t* graph,
                           const llmsys_model_inputs_t& inputs) {
    if (!HasInput(inputs, "direction")) return 0;
    Value v = Input(graph, inputs, "direction");
    const std::vector<int64_t> shape = v.Shape();
    Require(shape.empty() || shape == std::vector<int64_t>{1},
            "reder: direction must be a scalar, shape () or (1), got " +
                ShapeString(shape));
    const int64_t direction = HostInts(v, "direction")[0];
    Require(direction == 0 || direction == 1,
            "reder: direction must be 0 (source to target) or 1 (target to "
            "source), got " +
                std::to_string(direction));
    return direction;
  }

  // The input `name` (B, S) with "<name>_lengths" (B) and, when given,
  // "<name>_padding_mask" (B, S), checked.
  Sentences ReadSentences(llmsys_graph_t* graph,
                          const llmsys_model_inputs_t& inputs,
                          const std::string& name) const {
    Sentences s;
    s.ids = Input(graph, inputs, name);
    const std::vector<int64_t> shape = s.ids.Shape();
    Require(shape.size() == 2, "reder: " + name +
                                   " must be (B, S) token ids, got " +
                                   ShapeString(shape));
    s.batch = shape[0];
    s.width = shape[1];
    s.host_ids = HostInts(s.ids, name);
    const std::string lengths_name = name + "_lengths";
    Value lengths = Input(graph, inputs, lengths_name);
    Require(lengths.Shape() == std::vector<int64_t>{s.batch},
            "reder: " + lengths_name + " must be (B) = (" +
                std::to_string(s.batch) + ") for " + name + " " +
                ShapeString(shape) + ", got " + ShapeString(lengths.Shape()));
    s.lengths = HostInts(lengths, lengths_name);
    for (int64_t b = 0; b < s.batch; ++b) {
      const int64_t n = s.lengths[static_cast<size_t>(b)];
      Require(n >= 0 && n <= s.width,
              "reder: " + lengths_name + "[" + std::to_string(b) +
                  "] = " + std::to_string(n) + " is out of range [0, " +
                  std::to_string(s.width) + "] (S = " + name + ".shape[1])");
    }
    const std::string mask_name = name + "_padding_mask";
    if (HasInput(inputs, mask_name)) {
      Value mask = Input(graph, inputs, mask_name);
      Require(mask.Shape() == shape, "reder: " + mask_name + " must be " +
                                         ShapeString(shape) + " like " + name +
                                         ", got " + ShapeString(mask.Shape()));
      const std::vector<int64_t> m = HostInts(mask, mask_name);
      for (int64_t b = 0; b < s.batch; ++b) {
        for (int64_t i = 0; i < s.width; ++i) {
          const bool pad = i >= s.lengths[static_cast<size_t>(b)];
          Require((m[static_cast<size_t>(b * s.width + i)] != 0) == pad,
                  "reder: " + mask_name + "[" + std::to_string(b) + ", " +
                      std::to_string(i) + "] disagrees with " + lengths_name +
                      "[" + std::to_string(b) + "] = " +
                      std::to_string(s.lengths[static_cast<size_t>(b)]) +
                      " (1 = pad, from the length on)");
        }
      }
    }
    return s;
  }

  // "state" (B, T, 2d) through the duplex stack alone.
  void StatePath(llmsys_graph_t* graph, const llmsys_model_inputs_t& inputs,
                 int64_t direction, double p_drop) const {
    const int64_t d = c_.n_embd;
    Value state = Input(graph, inputs, "state");
    const std::vector<int64_t> shape = state.Shape();
    Require(shape.size() == 3 && shape[2] == 2 * d,
            "reder: state must be (B, T, 2 n_embd) = (B, T, " +
                std::to_string(2 * d) + "), got " + ShapeString(shape));
    Require(llmsys_dtype_equal(state.Dtype(), c_.dtype),
            "reder: state must have the model's dtype (param dtype)");
    const int64_t B = shape[0], T = shape[1];
    Value mask;
    if (HasInput(inputs, "state_padding_mask")) {
      mask = Input(graph, inputs, "state_padding_mask");
      Require(mask.Shape() == std::vector<int64_t>{B, T},
              "reder: state_padding_mask must be (B, T) = " +
                  ShapeString({B, T}) + ", got " + ShapeString(mask.Shape()));
    }
    Context ctx = MakeContext(graph, B, T, std::move(mask), p_drop);
    auto [y1, y2] =
        Duplex(ctx, state.Slice(2, 0, d), state.Slice(2, d, 2 * d), direction);
    SetOutput(graph, "state", llmsys::sdk::Concat({y1, y2}, 2));
  }

  Config c_;
  ParameterSpec embed_;
  std::vector<Layer> source_end_, target_end_;
  // recompute: F and G of source_end_'s layers, then target_end_'s.
  struct Functions {
    llmsys::sdk::CouplingFunction f, g;
  };
  std::vector<Functions> functions_;
};

}  // namespace

LLMSYS_PLUGIN("llmsys.reder", "0.1.0",
              "REDER reversible duplex non-autoregressive translator", "MIT") {
  registry.Add<Reder>();
}
