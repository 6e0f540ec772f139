// plugins/models/bert/bert.cc — a BERT encoder with its masked-language-
// model head (plugin "llmsys.bert", model "bert"; Devlin et al., "BERT:
// Pre-training of Deep Bidirectional Transformers for Language
// Understanding", 2019), written with the C++ SDK like the gpt plugin.
//
//   tokens (B, T) int64, already masked by the host (framework/data/
//   masking.h; the [MASK] id is an ordinary id of the vocabulary)
//   x = word[tokens] + position[0..T) + token_type[segments]   (B, T, C)
//   x = dropout(LayerNorm(x))
//   n_layer times, post-LN (pre_norm = false, BERT's own blocks):
//     x = LN_a(x + dropout(attn(x)))
//     x = LN_o(x + dropout(ffn(x)))
//   or pre-LN (pre_norm = true), then one more LayerNorm at the end:
//     x = x + dropout(attn(LN_a(x)))
//     x = x + dropout(ffn(LN_o(x)))
//   attn(x) = dense(attention(qkv(x)))    bidirectional, n_head heads,
//             keys at padding masked, attention_dropout on the probabilities
//   ffn(x)  = dense2(act(dense1(x)))      C -> F -> C
//   h = LayerNorm(act(transform(x)))                            (B, T, C)
//   logits = h @ word^T + bias                                  (B, T, V)
//   loss = mean cross entropy(logits, targets) over targets != -100
//
// Inputs: "tokens" (B, T) int64, T <= block_size; "segments" (B, T) int64
// in [0, type_vocab_size), optional (all segment 0 when absent);
// "padding_mask" (B, T) int32, optional, non-zero at padding (the attention
// op's key_padding_mask: no position attends to a padded key; the padded
// positions still get logits, which the host ignores by setting their
// targets to -100); "targets" (B, T) int64, the original id where a token
// is predicted and -100 elsewhere, required in TRAIN, optional otherwise.
// Outputs: "logits" always, "loss" when targets are given.
//
// Linear layers keep torch.nn.Linear's layout: weight (out, in), applied as
// x @ weight^T. Parameter names are Hugging Face BertForMaskedLM's, except
// that the query, key and value projections are one fused layer (rows
// query | key | value, as gpt's qkv) and pre-LN adds a final LayerNorm:
//   bert.embeddings.{word,position,token_type}_embeddings.weight
//   bert.embeddings.LayerNorm.{weight,bias}
//   bert.encoder.layer.<i>.attention.self.qkv.{weight,bias}      (3C, C)
//   bert.encoder.layer.<i>.attention.output.dense.{weight,bias}  (C, C)
//   bert.encoder.layer.<i>.attention.output.LayerNorm.{weight,bias}  (LN_a)
//   bert.encoder.layer.<i>.intermediate.dense.{weight,bias}      (F, C)
//   bert.encoder.layer.<i>.output.dense.{weight,bias}            (C, F)
//   bert.encoder.layer.<i>.output.LayerNorm.{weight,bias}            (LN_o)
//   bert.encoder.LayerNorm.{weight,bias}                   (pre_norm only)
//   cls.predictions.transform.dense.{weight,bias}                (C, C)
//   cls.predictions.transform.LayerNorm.{weight,bias}
//   cls.predictions.bias                                         (V)
// The decoder is tied to the word embedding (no weight of its own). In
// pre-LN blocks LN_a and LN_o normalize the branch inputs instead of the
// sums; the embedding LayerNorm stays in both.
//
// Initialization as BERT's: every weight (embeddings included) normal(0,
// init_std), biases zeros, LayerNorm weights ones. Biases and LayerNorm
// weights are excluded from weight decay.
//
// Modes: TRAIN applies dropout (embeddings, residual branches) and
// attention_dropout, and needs "targets"; EVAL and GENERATE drop nothing
// and compute "loss" only when "targets" is given. An encoder has no
// key/value cache: past_length must be 0.
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
using llmsys::sdk::WeightInit;

// The hyperparameters, read once from the validated schema values.
struct Config {
  int64_t vocab_size, block_size, n_layer, n_head, n_embd, ffn_dim,
      type_vocab_size;
  double dropout, attention_dropout, layer_norm_eps, init_std;
  std::string activation;
  bool pre_norm;
  DLDataType dtype;
};

class Bert : public llmsys::sdk::Model {
 public:
  static Info Describe() {
    return {
        .id = "bert",
        .version = "0.1.0",
        .description =
            "BERT encoder-only masked language model (bidirectional "
            "attention, learned positions and segments, tied MLM decoder)",
        .params = {
            ParamSpec::Required("vocab_size", LLMSYS_TYPE_INT,
                                "vocabulary size, the [MASK] id included "
                                "(the host sets it)")
                .Min(1),
            ParamSpec::Int("block_size", 128,
                           "longest sequence (learned positions)")
                .Min(1),
            ParamSpec::Int("n_layer", 4, "number of encoder blocks").Min(1),
            ParamSpec::Int("n_head", 4, "attention heads per block").Min(1),
            ParamSpec::Int("n_embd", 256, "model width (a multiple of n_head)")
                .Min(1),
            ParamSpec::Int("ffn_dim", 0,
                           "feed-forward inner width; 0 means 4 * n_embd")
                .Min(0),
            ParamSpec::Int("type_vocab_size", 2,
                           "number of segment (token type) ids")
                .Min(1),
            ParamSpec::Float("dropout", 0.1,
                             "dropout on the embeddings and the residual "
                             "branches in training, in [0, 1)")
                .Range(0.0, 1.0),
            ParamSpec::Float("attention_dropout", 0.1,
                             "dropout on the attention probabilities in "
                             "training, in [0, 1)")
                .Range(0.0, 1.0),
            ParamSpec::Float("layer_norm_eps", 1e-12, "LayerNorm epsilon")
                .Min(0.0),
            ParamSpec::Float("init_std", 0.02,
                             "std of the normal weight initialization")
                .Min(0.0),
            ParamSpec::String("activation", "gelu",
                              "feed-forward and MLM-head activation: gelu "
                              "(erf), gelu_tanh or relu")
                .Choices("gelu|gelu_tanh|relu"),
            ParamSpec::Bool("pre_norm", false,
                            "pre-LayerNorm blocks with a final LayerNorm "
                            "(false: BERT's post-LayerNorm blocks)"),
            ParamSpec::String("dtype", "float32", "parameter dtype")
                .Choices("float32|float64"),
        }};
  }

  // Reads the config and declares every parameter on `graph`.
  Bert(const Params& p, llmsys_graph_t* graph)
      : c_{.vocab_size = p.Int("vocab_size"),
           .block_size = p.Int("block_size"),
           .n_layer = p.Int("n_layer"),
           .n_head = p.Int("n_head"),
           .n_embd = p.Int("n_embd"),
           .ffn_dim = p.Int("ffn_dim"),
           .type_vocab_size = p.Int("type_vocab_size"),
           .dropout = p.Float("dropout"),
           .attention_dropout = p.Float("attention_dropout"),
           .layer_norm_eps = p.Float("layer_norm_eps"),
           .init_std = p.Float("init_std"),
           .activation = p.String("activation"),
           .pre_norm = p.Bool("pre_norm"),
           .dtype = llmsys::sdk::DtypeNamed(p.String("dtype"))} {
    Require(c_.n_embd % c_.n_head == 0, "bert: n_embd (" +
                                            std::to_string(c_.n_embd) +
                                            ") must be a multiple of n_head (" +
                                            std::to_string(c_.n_head) + ")");
    Require(c_.dropout < 1.0, "bert: dropout must be below 1");
    Require(c_.attention_dropout < 1.0,
            "bert: attention_dropout must be below 1");
    if (c_.ffn_dim == 0) c_.ffn_dim = 4 * c_.n_embd;
    const int64_t C = c_.n_embd, V = c_.vocab_size, F = c_.ffn_dim;
    // Every parameter in c_.dtype, every linear layer and LayerNorm with a
    // bias.
    const llmsys::sdk::ParameterMaker make{
        .dtype = c_.dtype, .bias = true, .eps = c_.layer_norm_eps};
    const WeightInit normal = NormalInit(c_.init_std);

    const std::string e = "bert.embeddings.";
    word_ = make.Weight(e + "word_embeddings.weight", {V, C}, normal);
    position_ = make.Weight(e + "position_embeddings.weight",
                            {c_.block_size, C}, normal);
    token_type_ = make.Weight(e + "token_type_embeddings.weight",
                              {c_.type_vocab_size, C}, normal);
    emb_ln_ = make.Norm(e + "LayerNorm", C);
    for (int64_t i = 0; i < c_.n_layer; ++i) {
      const std::string b = "bert.encoder.layer." + std::to_string(i) + ".";
      Block block;
      block.qkv = make.Linear(b + "attention.self.qkv", C, 3 * C, normal);
      block.attn_out = make.Linear(b + "attention.output.dense", C, C, normal);
      block.ln_a = make.Norm(b + "attention.output.LayerNorm", C);
      block.fc = make.Linear(b + "intermediate.dense", C, F, normal);
      block.proj = make.Linear(b + "output.dense", F, C, normal);
      block.ln_o = make.Norm(b + "output.LayerNorm", C);
      blocks_.push_back(block);
    }
    if (c_.pre_norm) final_ln_ = make.Norm("bert.encoder.LayerNorm", C);
    transform_ = make.Linear("cls.predictions.transform.dense", C, C, normal);
    transform_ln_ = make.Norm("cls.predictions.transform.LayerNorm", C);
    decoder_bias_ = make.Vector("cls.predictions.bias", V, "zeros");

    // Declaring is what create() is for: the host allocates and initializes.
    for (const ParameterSpec& spec : All()) spec.Get(graph);
  }

  void Forward(llmsys_graph_t* graph,
               const llmsys_model_inputs_t& inputs) override {
    const bool train = inputs.mode == LLMSYS_MODE_TRAIN;
    const double p_drop = train ? c_.dropout : 0.0;
    const double p_attn = train ? c_.attention_dropout : 0.0;
    Require(inputs.past_length == 0,
            "bert: past_length must be 0, got " +
                std::to_string(inputs.past_length) +
                " (an encoder sees the whole sequence at once; it has no "
                "key/value cache)");

    Value tokens = Input(graph, inputs, "tokens");  // (B, T)
    const std::vector<int64_t> shape = tokens.Shape();
    Require(shape.size() == 2,
            "bert: tokens must be (B, T), got " + ShapeString(shape));
    const int64_t T = shape[1];
    Require(T <= c_.block_size, "bert: sequence length " + std::to_string(T) +
                                    " exceeds block_size " +
                                    std::to_string(c_.block_size) +
                                    " (the number of learned positions)");

    // Word + position + segment embeddings: (B, T, C) + (T, C) + (B, T, C)
    // or, without segments, + (1, C) (segment 0 everywhere).
    std::vector<int64_t> positions(static_cast<size_t>(T));
    for (int64_t t = 0; t < T; ++t) positions[static_cast<size_t>(t)] = t;
    Value pos = llmsys::sdk::Constant(graph, positions, {T});
    Value x = Embedding(word_.Get(graph), tokens) +
              Embedding(position_.Get(graph), pos);
    if (HasInput(inputs, "segments")) {
      Value segments = Input(graph, inputs, "segments");  // (B, T)
      Require(segments.Shape() == shape,
              "bert: segments must have the shape of tokens (B, T) = " +
                  ShapeString(shape) + ", got " +
                  ShapeString(segments.Shape()));
      x = x + Embedding(token_type_.Get(graph), segments);
    } else {
      x = x + token_type_.Get(graph).Slice(0, 0, 1);
    }
    x = MaybeDropout(LayerNorm(graph, emb_ln_, x), p_drop);

    Value padding;  // (B, T) non-zero = padding, or null
    if (HasInput(inputs, "padding_mask")) {
      padding = Input(graph, inputs, "padding_mask");
      Require(padding.Shape() == shape,
              "bert: padding_mask must have the shape of tokens (B, T) = " +
                  ShapeString(shape) + ", got " + ShapeString(padding.Shape()));
    }
    const Value* mask = padding ? &padding : nullptr;

    for (const Block& block : blocks_) {
      if (c_.pre_norm) {
        Value a = SelfAttention(graph, block, LayerNorm(graph, block.ln_a, x),
                                mask, p_attn);
        x = x + MaybeDropout(a, p_drop);
        Value f = FeedForward(graph, block, LayerNorm(graph, block.ln_o, x));
        x = x + MaybeDropout(f, p_drop);
      } else {
        Value a = SelfAttention(graph, block, x, mask, p_attn);
        x = LayerNorm(graph, block.ln_a, x + MaybeDropout(a, p_drop));
        Value f = FeedForward(graph, block, x);
        x = LayerNorm(graph, block.ln_o, x + MaybeDropout(f, p_drop));
      }
    }
    if (c_.pre_norm) x = LayerNorm(graph, final_ln_, x);

    // MLM head: (B, T, C) -> (B, T, C) @ (V, C)^T + (V) -> (B, T, V)
    Value h = LayerNorm(graph, transform_ln_,
                        Activation(Apply(graph, transform_, x)));
    Value logits =
        Matmul(h, word_.Get(graph), false, true) + decoder_bias_.Get(graph);
    SetOutput(graph, "logits", logits);

    const bool has_targets = HasInput(inputs, "targets");
    Require(has_targets || !train,
            "bert: training needs an input 'targets' (B, T): the original id "
            "at each predicted position, -100 elsewhere");
    if (has_targets) {
      Value targets = Input(graph, inputs, "targets");  // (B, T)
      Require(targets.Shape() == shape,
              "bert: targets must have the shape of tokens (B, T) = " +
                  ShapeString(shape) + ", got " + ShapeString(targets.Shape()));
      SetOutput(graph, "loss",
                CrossEntropy(logits, targets, -100, 0.0, "mean"));
    }
  }

 private:
  // A block's layers (llmsys/sdk.hpp's layer helpers).
  struct Block {
    LinearParams qkv, attn_out, fc, proj;
    NormParams ln_a, ln_o;
  };

  // Every parameter, in declaration order (Hugging Face's); final_ln_ is
  // unnamed, so skipped, without pre_norm.
  std::vector<ParameterSpec> All() const {
    std::vector<ParameterSpec> all = {word_, position_, token_type_};
    AppendSpecs(&all, emb_ln_);
    for (const Block& b : blocks_)
      AppendSpecs(&all, b.qkv, b.attn_out, b.ln_a, b.fc, b.proj, b.ln_o);
    AppendSpecs(&all, final_ln_, transform_, transform_ln_, decoder_bias_);
    return all;
  }

  Value Activation(const Value& x) const {
    if (c_.activation == "relu") return llmsys::sdk::Relu(x);
    return llmsys::sdk::Gelu(x, c_.activation == "gelu_tanh" ? "tanh" : "none");
  }

  // dense2(act(dense1(x))): (B, T, C) -> (B, T, F) -> (B, T, C).
  Value FeedForward(llmsys_graph_t* graph, const Block& block,
                    const Value& x) const {
    return Apply(graph, block.proj, Activation(Apply(graph, block.fc, x)));
  }

  // Bidirectional multi-head self-attention of h (B, T, C) -> (B, T, C),
  // keys where `mask` (B, T) is non-zero left out.
  Value SelfAttention(llmsys_graph_t* graph, const Block& block, const Value& h,
                      const Value* mask, double p_attn) const {
    const int64_t H = c_.n_head;
    Value qkv = Apply(graph, block.qkv, h);  // (B, T, 3C): q | k | v
    const std::vector<Value> heads = SplitHeads(qkv, 3, H);  // (B, H, T, D)
    Value y = Attention(heads[0], heads[1], heads[2], mask, /*causal=*/false,
                        p_attn);  // (B, H, T, D)
    y = MergeHeads(y);            // (B, T, C)
    return Apply(graph, block.attn_out, y);
  }

  Config c_;
  ParameterSpec word_, position_, token_type_, decoder_bias_;
  NormParams emb_ln_, final_ln_;  // final_ln_ only with pre_norm
  std::vector<Block> blocks_;
  LinearParams transform_;
  NormParams transform_ln_;
};

}  // namespace

LLMSYS_PLUGIN("llmsys.bert", "0.1.0", "BERT masked language model", "MIT") {
  registry.Add<Bert>();
}
