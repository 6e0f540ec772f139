// plugins/models/transformer/transformer.cc — the encoder-decoder
// Transformer of Vaswani et al. (2017) with pre-LayerNorm blocks, as
// fairseq's transformer with normalize_before (plugin "llmsys.transformer",
// model "transformer"), for translation: German source ids in, English
// target logits out. Written with the C++ SDK like plugins/models/gpt.
//
//   src (B, S) int64, src_padding_mask (B, S) int32 (1 = padding)
//   tokens (B, T) int64 (<bos> then the target), targets (B, T) int64
//   E(ids, p0) = dropout(embed[ids] * sqrt(C) + PE[p0 .. p0+len))
//                (* sqrt(C) only with scale_embeddings)
//   encoder: x = E(src, 0)                                 (B, S, C)
//     n_encoder_layers times:
//       x = x + dropout(self_attn(ln(x)))        key padding mask, not causal
//       x = x + dropout(ffn(ln(x)))
//     memory = encoder.ln_f(x)                             (B, S, C)
//   decoder: y = E(tokens, 0)                              (B, T, C)
//     n_decoder_layers times:
//       y = y + dropout(self_attn(ln(y)))        causal
//       y = y + dropout(cross_attn(ln(y), memory))  key padding mask
//       y = y + dropout(ffn(ln(y)))
//   logits = decoder.ln_f(y) @ embed^T                     (B, T, V) (tied)
//   loss = label-smoothed cross entropy(logits, targets), mean over the
//          targets that are not -100; nll_loss = the same without smoothing
//
// with C = n_embd, H = n_head heads of D = C / H, F = ffn_dim, and
//   PE[pos, 2i] = sin(pos / 10000^(2i/C)), PE[pos, 2i+1] = cos(same),
//   self_attn(h) = out_proj(attention(split(qkv(h))))   qkv: C -> 3C fused
//   cross_attn(h, m) = out_proj(attention(q(h), split(kv(m))))  kv: C -> 2C
//   ffn(h) = fc2(dropout_act(activation(fc1(h))))    relu (or gelu, erf form)
// The padded end of the decoder side needs no mask: attention is causal and
// the targets there are -100. PE is computed here, not learned, and kept in
// the instance (grown to the longest length seen), so a call only copies the
// rows it needs; lengths beyond max_positions are an error.
//
// Inputs: "src", "src_padding_mask", "tokens" and (required in TRAIN,
// optional otherwise) "targets"; other inputs ("src_lengths", "tgt", ...)
// are ignored. Outputs: "logits" always; "loss" and "nll_loss" (for
// perplexity) when targets are given; the cache below in GENERATE.
//
// Linear layers keep torch.nn.Linear's layout: weight (out, in), applied as
// x @ weight^T, so the tied output layer is the same call on embed.weight.
// Parameters (prefix "encoder.layers.<i>." or "decoder.layers.<i>."):
//   embed.weight (V, C)                shared by source, target and output
//   self_attn_ln, self_attn.qkv (3C, C), self_attn.out_proj (C, C)
//   cross_attn_ln, cross_attn.q (C, C), cross_attn.kv (2C, C),
//   cross_attn.out_proj (C, C)                         (decoder only)
//   ffn_ln, ffn.fc1 (F, C), ffn.fc2 (C, F)
//   encoder.ln_f, decoder.ln_f; lm_head.weight (V, C) when untied
// each LayerNorm with .weight and .bias, each Linear with .weight and (when
// `bias`) .bias.
//
// Initialization as fairseq: Xavier-uniform weights, uniform(-b, b) with
// b = sqrt(6 / (fan_in + fan_out)); the attention input projections (q, k,
// v, fused or not) each take fairseq's gain 1/sqrt(2), b = sqrt(6 / 4C) —
// which is also plain Xavier of the fused (3C, C) qkv matrix. Embeddings
// (and an untied lm_head) normal(0, C^-1/2); biases zeros; LayerNorms ones and
// zeros. Biases and LayerNorm parameters are excluded from weight decay.
//
// Modes: TRAIN applies dropout (embeddings and residual branches `dropout`,
// attention probabilities `attention_dropout`, FFN hidden
// `activation_dropout`) and needs "targets"; EVAL and GENERATE drop nothing.
//
// Key/value cache (GENERATE only; llmsys/model.h's convention extended to a
// decoder with an encoder): every call gets "src_padding_mask" (and "src")
// with rows aligned to "tokens" (the host reorders them with the cache), and
// "tokens" (B, T) at positions P..P+T-1, P = past_length.
//   - P = 0: runs the encoder and outputs, for every decoder layer i,
//     "cache.decoder.<i>.cross_k" and ".cross_v" (B, H, S, D), the
//     cross-attention keys and values of the memory, and "cache.decoder.<i>.k"
//     and ".v" (B, H, T, D), the self-attention keys and values.
//   - P > 0: reads those inputs (the encoder is not run again; "src" is not
//     read), outputs ".k"/".v" grown to (B, H, P+T, D) (new tensors) and the
//     cross keys and values again, unchanged, so the host keeps them.
// Without cache inputs, P = 0 gives EVAL's logits. New queries see every
// past key; a chunk of T > 1 after a past takes the bottom-right causal mask
// (m <= P + n) of an explicit matmul-softmax-matmul, as gpt does.
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "llmsys/sdk.hpp"

namespace {

using llmsys::sdk::AppendSpecs;
using llmsys::sdk::Apply;
using llmsys::sdk::Attention;
using llmsys::sdk::CrossEntropy;
using llmsys::sdk::Embedding;
using llmsys::sdk::HasInput;
using llmsys::sdk::Info;
using llmsys::sdk::Input;
using llmsys::sdk::LayerNorm;
using llmsys::sdk::LinearParams;
using llmsys::sdk::Matmul;
using llmsys::sdk::MaybeDropout;
using llmsys::sdk::NormalInit;
using llmsys::sdk::NormParams;
using llmsys::sdk::ParameterSpec;
using llmsys::sdk::Params;
using llmsys::sdk::ParamSpec;
using llmsys::sdk::Require;
using llmsys::sdk::SetOutput;
using llmsys::sdk::ShapeString;
using llmsys::sdk::UniformInit;
using llmsys::sdk::Value;
using llmsys::sdk::WeightInit;
using llmsys::sdk::XavierUniformInit;

// The hyperparameters, read once from the validated schema values.
struct Config {
  int64_t vocab_size, n_embd, n_head, ffn_dim, n_encoder_layers,
      n_decoder_layers, max_positions;
  double dropout, attention_dropout, activation_dropout, layer_norm_eps,
      label_smoothing;
  bool bias, tie_embeddings, scale_embeddings, gelu;
  DLDataType dtype;
};

// Dropout probabilities of one forward call (all 0 outside TRAIN).
struct Drop {
  double residual = 0, attention = 0, activation = 0;
};

class Transformer : public llmsys::sdk::Model {
 public:
  static Info Describe() {
    return {
        .id = "transformer",
        .version = "0.1.0",
        .description =
            "encoder-decoder Transformer (Vaswani et al.), pre-LayerNorm, "
            "sinusoidal positions, shared embeddings",
        .params = {
            ParamSpec::Required("vocab_size", LLMSYS_TYPE_INT,
                                "shared source/target vocabulary size (the "
                                "host sets it from the tokenizer)")
                .Min(1),
            ParamSpec::Int("n_embd", 256,
                           "model width C (a multiple of n_head)")
                .Min(1),
            ParamSpec::Int("n_head", 4, "attention heads").Min(1),
            ParamSpec::Int("ffn_dim", 1024, "hidden width of the FFN").Min(1),
            ParamSpec::Int("n_encoder_layers", 3, "encoder blocks").Min(1),
            ParamSpec::Int("n_decoder_layers", 3, "decoder blocks").Min(1),
            ParamSpec::Int("max_positions", 256,
                           "longest source or target sequence")
                .Min(1),
            ParamSpec::Float("dropout", 0.1,
                             "dropout on embeddings and residual branches in "
                             "training, in [0, 1)")
                .Range(0.0, 1.0),
            ParamSpec::Float("attention_dropout", 0.0,
                             "dropout on attention probabilities in training")
                .Range(0.0, 1.0),
            ParamSpec::Float("activation_dropout", 0.0,
                             "dropout after the FFN activation in training")
                .Range(0.0, 1.0),
            ParamSpec::String("activation", "relu", "FFN activation")
                .Choices("relu|gelu"),
            ParamSpec::Bool("bias", true,
                            "biases in the linear layers and LayerNorms"),
            ParamSpec::Bool("tie_embeddings", true,
                            "output layer shares the embedding table"),
            ParamSpec::Bool("scale_embeddings", true,
                            "multiply embeddings by sqrt(n_embd)"),
            ParamSpec::Float("label_smoothing", 0.1,
                             "label smoothing of the training loss")
                .Range(0.0, 1.0),
            ParamSpec::Float("layer_norm_eps", 1e-5, "LayerNorm epsilon")
                .Min(0.0),
            ParamSpec::String("dtype", "float32", "parameter dtype")
                .Choices("float32|float64"),
        }};
  }

  // Reads the config and declares every parameter on `graph`.
  Transformer(const Params& p, llmsys_graph_t* graph)
      : c_{.vocab_size = p.Int("vocab_size"),
           .n_embd = p.Int("n_embd"),
           .n_head = p.Int("n_head"),
           .ffn_dim = p.Int("ffn_dim"),
           .n_encoder_layers = p.Int("n_encoder_layers"),
           .n_decoder_layers = p.Int("n_decoder_layers"),
           .max_positions = p.Int("max_positions"),
           .dropout = p.Float("dropout"),
           .attention_dropout = p.Float("attention_dropout"),
           .activation_dropout = p.Float("activation_dropout"),
           .layer_norm_eps = p.Float("layer_norm_eps"),
           .label_smoothing = p.Float("label_smoothing"),
           .bias = p.Bool("bias"),
           .tie_embeddings = p.Bool("tie_embeddings"),
           .scale_embeddings = p.Bool("scale_embeddings"),
           .gelu = p.String("activation") == "gelu",
           .dtype = llmsys::sdk::DtypeNamed(p.String("dtype"))} {
    Require(c_.n_embd % c_.n_head == 0, "transformer: n_embd (" +
                                            std::to_string(c_.n_embd) +
                                            ") must be a multiple of n_head (" +
                                            std::to_string(c_.n_head) + ")");
    for (double d : {c_.dropout, c_.attention_dropout, c_.activation_dropout})
      Require(d < 1.0, "transformer: dropout probabilities must be below 1");
    const int64_t C = c_.n_embd, F = c_.ffn_dim, V = c_.vocab_size;
    // Every parameter in c_.dtype; biases (linear layers and LayerNorms)
    // only with c_.bias.
    const llmsys::sdk::ParameterMaker make{
        .dtype = c_.dtype, .bias = c_.bias, .eps = c_.layer_norm_eps};
    // fairseq: q, k and v each Xavier with gain 1/sqrt(2), whatever fused.
    const WeightInit in_proj =
        UniformInit(std::sqrt(6.0 / static_cast<double>(4 * C)));
    const WeightInit xavier_cc = XavierUniformInit(C, C);

    embed_ = make.Weight("embed.weight", {V, C},
                         NormalInit(1.0 / std::sqrt(static_cast<double>(C))));
    auto layer = [&](const std::string& l, bool cross) {
      Layer y;
      y.self_attn_ln = make.Norm(l + "self_attn_ln", C);
      y.qkv = make.Linear(l + "self_attn.qkv", C, 3 * C, in_proj);
      y.out_proj = make.Linear(l + "self_attn.out_proj", C, C, xavier_cc);
      if (cross) {
        y.cross_attn_ln = make.Norm(l + "cross_attn_ln", C);
        y.cross_q = make.Linear(l + "cross_attn.q", C, C, in_proj);
        y.cross_kv = make.Linear(l + "cross_attn.kv", C, 2 * C, in_proj);
        y.cross_out_proj =
            make.Linear(l + "cross_attn.out_proj", C, C, xavier_cc);
      }
      y.ffn_ln = make.Norm(l + "ffn_ln", C);
      y.fc1 = make.Linear(l + "ffn.fc1", C, F, XavierUniformInit(C, F));
      y.fc2 = make.Linear(l + "ffn.fc2", F, C, XavierUniformInit(F, C));
      return y;
    };
    for (int64_t i = 0; i < c_.n_encoder_layers; ++i)
      encoder_.push_back(
          layer("encoder.layers." + std::to_string(i) + ".", false));
    encoder_ln_f_ = make.Norm("encoder.ln_f", C);
    for (int64_t i = 0; i < c_.n_decoder_layers; ++i)
      decoder_.push_back(
          layer("decoder.layers." + std::to_string(i) + ".", true));
    decoder_ln_f_ = make.Norm("decoder.ln_f", C);
    if (!c_.tie_embeddings) {
      lm_head_ = embed_;  // normal(0, C^-1/2) too, as fairseq's
      lm_head_.name = "lm_head.weight";
    }

    // Declaring is what create() is for: the host allocates and initializes.
    for (const ParameterSpec& spec : All()) spec.Get(graph);
  }

  void Forward(llmsys_graph_t* graph,
               const llmsys_model_inputs_t& inputs) override {
    const bool train = inputs.mode == LLMSYS_MODE_TRAIN;
    const bool generate = inputs.mode == LLMSYS_MODE_GENERATE;
    Drop drop;
    if (train) drop = {c_.dropout, c_.attention_dropout, c_.activation_dropout};
    Require(inputs.past_length == 0 || generate,
            "transformer: past_length " + std::to_string(inputs.past_length) +
                " is only meaningful in LLMSYS_MODE_GENERATE (the key/value "
                "cache); it must be 0 in training and evaluation");
    // Target tokens already in the cache (GENERATE only).
    const int64_t P = generate ? inputs.past_length : 0;
    Require(P >= 0,
            "transformer: past_length must be >= 0, got " + std::to_string(P));

    Value tokens = Input(graph, inputs, "tokens");  // (B, T)
    const std::vector<int64_t> shape = tokens.Shape();
    Require(shape.size() == 2,
            "transformer: tokens must be (B, T), got " + ShapeString(shape));
    const int64_t B = shape[0], T = shape[1];
    Require(T >= 1, "transformer: tokens " + ShapeString(shape) +
                        " must hold at least one position");
    Require(T <= c_.max_positions,
            "transformer: target length " + std::to_string(T) +
                " exceeds max_positions " + std::to_string(c_.max_positions));
    Require(P + T <= c_.max_positions,
            "transformer: past_length " + std::to_string(P) + " + " +
                std::to_string(T) + " new tokens exceed max_positions " +
                std::to_string(c_.max_positions));
    const bool has_targets = HasInput(inputs, "targets");
    Require(has_targets || !train,
            "transformer: training needs an input 'targets'");
    Value targets;
    if (has_targets) {
      targets = Input(graph, inputs, "targets");  // (B, T)
      Require(targets.Shape() == shape,
              "transformer: targets " + ShapeString(targets.Shape()) +
                  " must have the shape of tokens " + ShapeString(shape));
    }

    // The source: src (B, S) when the encoder runs, and its padding mask.
    Value src;
    if (P == 0) {
      src = Input(graph, inputs, "src");
      Require(
          src.Ndim() == 2 && src.Size(0) == B,
          "transformer: src must be (B, S) with the B = " + std::to_string(B) +
              " rows of tokens, got " + ShapeString(src.Shape()));
    }
    Value pad = Input(graph, inputs, "src_padding_mask");  // (B, S)
    const std::vector<int64_t> pad_shape = pad.Shape();
    if (src) {
      Require(pad_shape == src.Shape(),
              "transformer: src_padding_mask must have the shape of src " +
                  ShapeString(src.Shape()) + ", got " + ShapeString(pad_shape));
    } else {
      Require(pad_shape.size() == 2 && pad_shape[0] == B,
              "transformer: src_padding_mask must be (B, S) with the B = " +
                  std::to_string(B) + " rows of tokens, got " +
                  ShapeString(pad_shape));
    }
    const int64_t S = pad_shape[1];
    Require(S >= 1, "transformer: src_padding_mask " + ShapeString(pad_shape) +
                        " must hold at least one position");
    Require(S <= c_.max_positions,
            "transformer: source length " + std::to_string(S) +
                " exceeds max_positions " + std::to_string(c_.max_positions));

    Value embed = embed_.Get(graph);
    const int64_t C = c_.n_embd, H = c_.n_head, D = C / H;

    // Every decoder layer's cross-attention keys and values (B, H, S, D):
    // from the encoder's output, or (P > 0) from the cache.
    std::vector<Value> cross_k(decoder_.size()), cross_v(decoder_.size());
    if (P == 0) {
      Value x = Embed(graph, embed, src, 0, drop);  // (B, S, C)
      for (const Layer& layer : encoder_) {
        Value a =
            SelfAttention(graph, layer, LayerNorm(graph, layer.self_attn_ln, x),
                          &pad, drop.attention, nullptr);
        x = x + MaybeDropout(a, drop.residual);
        x = x + MaybeDropout(Ffn(graph, layer, x, drop), drop.residual);
      }
      Value memory = LayerNorm(graph, encoder_ln_f_, x);  // (B, S, C)
      for (size_t i = 0; i < decoder_.size(); ++i) {
        Value kv = Apply(graph, decoder_[i].cross_kv, memory);  // (B, S, 2C)
        const std::vector<Value> heads = Heads(kv);
        cross_k[i] = heads[0];
        cross_v[i] = heads[1];
      }
    } else {
      for (size_t i = 0; i < decoder_.size(); ++i) {
        const std::string name = CacheName(i);
        cross_k[i] =
            CacheInput(graph, inputs, P, name + "cross_k", "S", {B, H, S, D});
        cross_v[i] =
            CacheInput(graph, inputs, P, name + "cross_v", "S", {B, H, S, D});
      }
    }

    Value y = Embed(graph, embed, tokens, P, drop);  // (B, T, C)
    for (size_t i = 0; i < decoder_.size(); ++i) {
      const Layer& layer = decoder_[i];
      Cache cache;
      if (generate) {
        cache = {.name = CacheName(i), .past = P, .inputs = &inputs};
        SetOutput(graph, cache.name + "cross_k", cross_k[i]);
        SetOutput(graph, cache.name + "cross_v", cross_v[i]);
      }
      Value a =
          SelfAttention(graph, layer, LayerNorm(graph, layer.self_attn_ln, y),
                        nullptr, drop.attention, generate ? &cache : nullptr);
      y = y + MaybeDropout(a, drop.residual);
      // Cross attention: queries from ln(y), keys and values of the memory.
      Value h = LayerNorm(graph, layer.cross_attn_ln, y);
      Value q = Heads(Apply(graph, layer.cross_q, h))[0];  // (B, H, T, D)
      a = Attention(q, cross_k[i], cross_v[i], &pad, /*causal=*/false,
                    drop.attention);
      a = Apply(graph, layer.cross_out_proj, llmsys::sdk::MergeHeads(a));
      y = y + MaybeDropout(a, drop.residual);
      y = y + MaybeDropout(Ffn(graph, layer, y, drop), drop.residual);
    }
    y = LayerNorm(graph, decoder_ln_f_, y);

    // (B, T, C) @ (V, C)^T -> (B, T, V)
    Value logits =
        Matmul(y, c_.tie_embeddings ? embed : lm_head_.Get(graph), false, true);
    SetOutput(graph, "logits", logits);
    if (has_targets) {
      Value loss =
          CrossEntropy(logits, targets, -100, c_.label_smoothing, "mean");
      SetOutput(graph, "loss", loss);
      SetOutput(graph, "nll_loss",
                c_.label_smoothing > 0.0
                    ? CrossEntropy(logits, targets, -100, 0.0, "mean")
                    : loss);
    }
  }

 private:
  // An encoder layer, or a decoder layer with the cross_* members too
  // (llmsys/sdk.hpp's layer helpers; an encoder's cross_* stay unnamed).
  struct Layer {
    NormParams self_attn_ln, cross_attn_ln, ffn_ln;
    LinearParams qkv, out_proj, cross_q, cross_kv, cross_out_proj, fc1, fc2;
  };

  // Every parameter, in declaration order.
  std::vector<ParameterSpec> All() const {
    std::vector<ParameterSpec> all = {embed_};
    auto add_layer = [&all](const Layer& y) {  // in the order forward uses them
      AppendSpecs(&all, y.self_attn_ln, y.qkv, y.out_proj, y.cross_attn_ln,
                  y.cross_q, y.cross_kv, y.cross_out_proj, y.ffn_ln, y.fc1,
                  y.fc2);
    };
    for (const Layer& y : encoder_) add_layer(y);
    AppendSpecs(&all, encoder_ln_f_);
    for (const Layer& y : decoder_) add_layer(y);
    AppendSpecs(&all, decoder_ln_f_, lm_head_);
    return all;
  }

  // Vaswani's sinusoids for positions [start, start + n): a constant
  // (n, C) copied from the instance's table, which grows to the longest
  // length asked for and is never recomputed.
  Value Positions(llmsys_graph_t* graph, int64_t start, int64_t n) {
    const int64_t C = c_.n_embd;
    const bool f64 = llmsys_dtype_equal(c_.dtype, LLMSYS_DTYPE_F64);
    for (int64_t pos = rows_; pos < start + n; ++pos) {
      for (int64_t j = 0; j < C; ++j) {
        // Columns 2i and 2i + 1 share the frequency 1 / 10000^(2i/C).
        const double angle = static_cast<double>(pos) /
                             std::pow(10000.0, static_cast<double>(j - j % 2) /
                                                   static_cast<double>(C));
        const double pe = j % 2 == 0 ? std::sin(angle) : std::cos(angle);
        if (f64)
          pe64_.push_back(pe);
        else
          pe32_.push_back(static_cast<float>(pe));
      }
      rows_ = pos + 1;
    }
    int64_t shape[2] = {n, C};
    DLTensor t{};
    t.data = f64 ? static_cast<void*>(pe64_.data() + start * C)
                 : static_cast<void*>(pe32_.data() + start * C);
    t.device = DLDevice{kDLCPU, 0};
    t.ndim = 2;
    t.shape = shape;
    t.dtype = c_.dtype;
    return llmsys::sdk::Constant(graph, t);
  }

  // dropout(embed[ids] * sqrt(C) + PE[start .. start + L)), ids (B, L).
  Value Embed(llmsys_graph_t* graph, const Value& embed, const Value& ids,
              int64_t start, const Drop& drop) {
    Value x = Embedding(embed, ids);  // (B, L, C)
    if (c_.scale_embeddings) x = x * std::sqrt(static_cast<double>(c_.n_embd));
    x = x + Positions(graph, start, ids.Size(1));  // (L, C) broadcasts
    return MaybeDropout(x, drop.residual);
  }

  // fc2(dropout(activation(fc1(ffn_ln(x))))).
  Value Ffn(llmsys_graph_t* graph, const Layer& layer, const Value& x,
            const Drop& drop) const {
    Value h = Apply(graph, layer.fc1, LayerNorm(graph, layer.ffn_ln, x));
    h = c_.gelu ? llmsys::sdk::Gelu(h) : llmsys::sdk::Relu(h);  // (B, L, F)
    return Apply(graph, layer.fc2, MaybeDropout(h, drop.activation));
  }

  // The n parts of the last dim of x (B, L, n C), as heads (B, H, L, D).
  std::vector<Value> Heads(const Value& x) const {
    return llmsys::sdk::SplitHeads(x, x.Size(2) / c_.n_embd, c_.n_head);
  }

  // One decoder layer's self-attention cache in a GENERATE call: the names
  // of its inputs and outputs ("<name>k", "<name>v") and the tokens in it.
  struct Cache {
    std::string name;
    int64_t past = 0;
    const llmsys_model_inputs_t* inputs = nullptr;
  };
  static std::string CacheName(size_t i) {
    return "cache.decoder." + std::to_string(i) + ".";
  }

  // The cache input `name`, checked to be `expected`, (B, H, <len>, D).
  static Value CacheInput(llmsys_graph_t* graph,
                          const llmsys_model_inputs_t& inputs, int64_t past,
                          const std::string& name, const std::string& len,
                          const std::vector<int64_t>& expected) {
    Require(HasInput(inputs, name),
            "transformer: past_length " + std::to_string(past) +
                " needs the input '" + name +
                "': the cache the previous GENERATE call returned "
                "(llmsys/model.h)");
    Value v = Input(graph, inputs, name);
    Require(v.Shape() == expected, "transformer: cache input '" + name +
                                       "' must be (B, H, " + len +
                                       ", D) = " + ShapeString(expected) +
                                       ", got " + ShapeString(v.Shape()));
    return v;
  }

  // Multi-head self-attention of h (B, L, C) -> (B, L, C): over the source
  // with its key padding mask (encoder, `pad` given), or causal (decoder,
  // `pad` null), then with a cache over the past keys and values too.
  Value SelfAttention(llmsys_graph_t* graph, const Layer& layer, const Value& h,
                      const Value* pad, double p_attn,
                      const Cache* cache) const {
    const int64_t B = h.Size(0), L = h.Size(1), H = c_.n_head,
                  D = c_.n_embd / H;
    Value qkv = Apply(graph, layer.qkv, h);  // (B, L, 3C): q | k | v
    const std::vector<Value> heads = Heads(qkv);
    Value q = heads[0], k = heads[1], v = heads[2];
    const int64_t P = cache != nullptr ? cache->past : 0;
    if (cache != nullptr) {
      if (P > 0) {  // (B, H, P, D) ++ (B, H, L, D) -> (B, H, P+L, D)
        k = llmsys::sdk::Concat(
            {CacheInput(graph, *cache->inputs, P, cache->name + "k",
                        "past_length", {B, H, P, D}),
             k},
            2);
        v = llmsys::sdk::Concat(
            {CacheInput(graph, *cache->inputs, P, cache->name + "v",
                        "past_length", {B, H, P, D}),
             v},
            2);
      }
      SetOutput(graph, cache->name + "k", k);
      SetOutput(graph, cache->name + "v", v);
    }
    Value y;  // (B, H, L, D)
    if (pad != nullptr) {
      y = Attention(q, k, v, pad, /*causal=*/false, p_attn);
    } else if (P == 0 || L == 1) {
      // N == M (top-left causal is right), or one query that sees every key.
      y = Attention(q, k, v, nullptr, /*causal=*/P == 0, p_attn);
    } else {
      y = ChunkAttention(graph, q, k, v, P);
    }
    return Apply(graph, layer.out_proj, llmsys::sdk::MergeHeads(y));
  }

  // Attention of T new queries q (B, H, T, D) over P + T keys and values
  // (B, H, P+T, D), query n seeing keys m <= P + n (bottom-right causal).
  // GENERATE only, so without dropout.
  static Value ChunkAttention(llmsys_graph_t* graph, const Value& q,
                              const Value& k, const Value& v, int64_t P) {
    const std::vector<int64_t> qs = q.Shape();
    const int64_t T = qs[2], D = qs[3], M = P + T;
    std::vector<int32_t> masked(static_cast<size_t>(T * M));  // (T, M)
    for (int64_t n = 0; n < T; ++n)
      for (int64_t m = 0; m < M; ++m)
        masked[static_cast<size_t>(n * M + m)] = m > P + n ? 1 : 0;
    Value mask = llmsys::sdk::Constant(graph, masked, {T, M});
    // (B, H, T, D) @ (B, H, M, D)^T -> (B, H, T, M)
    Value scores =
        Matmul(q, k, false, true) * (1.0 / std::sqrt(static_cast<double>(D)));
    scores = llmsys::sdk::MaskedFill(scores, mask,
                                     -std::numeric_limits<double>::infinity());
    return Matmul(llmsys::sdk::Softmax(scores, -1), v);  // (B, H, T, D)
  }

  Config c_;
  ParameterSpec embed_, lm_head_;  // lm_head_ only when untied
  std::vector<Layer> encoder_, decoder_;
  NormParams encoder_ln_f_, decoder_ln_f_;
  // The sinusoid table, rows_ positions of C, in the parameter dtype.
  int64_t rows_ = 0;
  std::vector<float> pe32_;
  std::vector<double> pe64_;
};

}  // namespace

LLMSYS_PLUGIN("llmsys.transformer", "0.1.0",
              "encoder-decoder Transformer for translation", "MIT") {
  registry.Add<Transformer>();
}
