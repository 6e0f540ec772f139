// plugins/models/gpt/gpt.cc — a GPT-2 style language model (plugin
// "llmsys.gpt", model "gpt"), written with the C++ SDK as the example to
// copy: every tensor op is one SDK call through the host, which runs the
// implementation the experiment chose and records it for backward.
//
//   tokens (B, T) int64
//   x = wte[tokens] + wpe[0..T)                      (B, T, C)   dropout
//   n_layer times (pre-LayerNorm blocks):
//     x = x + dropout(proj(attention(qkv(ln1(x)))))  causal, n_head heads
//     x = x + dropout(mlp.proj(gelu_tanh(mlp.fc(ln2(x)))))
//   logits = ln_f(x) @ wte^T                         (B, T, V)   (tied)
//   loss = mean cross entropy(logits, targets), targets -100 ignored
//
// Linear layers keep torch.nn.Linear's layout: weight (out, in), applied as
// x @ weight^T (matmul with transpose_b), so the tied output layer is the
// same call on wte. Parameter names follow nanoGPT / Hugging Face
// ("wte.weight", "blocks.0.attn.qkv.weight", "ln_f.bias", ...), so a
// checkpoint reads naturally.
//
// Initialization as GPT-2: every weight normal(0, init_std), the residual
// projections (attn.proj, mlp.proj) normal(0, init_std / sqrt(2 n_layer)),
// biases zeros, LayerNorm weights ones. Biases and LayerNorm weights are
// excluded from weight decay.
//
// Pipeline stages (llmsys/host.h pipeline_stage): the blocks split evenly
// over the stages; the first also embeds, the last also computes ln_f, the
// logits and the loss; between them, "pipeline.in"/"pipeline.out" carry
// the residual stream x (B, T, C). The tied wte is declared by the first
// and the last stage (the host sums its two gradients).
//
// Modes: TRAIN applies dropout (embeddings, attention probabilities,
// residual branches) and needs "targets"; EVAL and GENERATE do not drop
// anything and compute "loss" only when "targets" is given. "logits" is
// always an output.
//
// Key/value cache (GENERATE only; the convention of llmsys/model.h): a call
// with past_length P reads "cache.blocks.<i>.k" and "cache.blocks.<i>.v",
// each (B, H, P, D), for every block i, takes the new tokens at positions
// P..P+T-1, and outputs the same names holding (B, H, P+T, D): the past
// concatenated with the new keys and values (a new tensor; the inputs are
// never written). With P = 0 no cache is read and the outputs hold the
// prompt's keys and values. The new queries attend to every past key and
// causally within the chunk. The attention op's causal mask is top-left
// aligned (query n sees keys m <= n), which is right only when N == M
// (P = 0); for one new token (T = 1) no mask is needed at all; only a chunk
// of T > 1 tokens after a past (P > 0, T > 1) takes the explicit path below
// (matmul, masked_fill, softmax, matmul) with the bottom-right mask
// m <= P + n.
#include <cmath>
#include <limits>
#include <string>
#include <tuple>
#include <vector>

#include "llmsys/sdk.hpp"

namespace {

using llmsys::sdk::AppendSpecs;
using llmsys::sdk::Apply;
using llmsys::sdk::Attention;
using llmsys::sdk::CrossEntropy;
using llmsys::sdk::Embedding;
using llmsys::sdk::Gelu;
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
  int64_t vocab_size, block_size, n_layer, n_head, n_embd;
  double dropout, layer_norm_eps, init_std;
  bool bias, tie_embeddings;
  DLDataType dtype;
};

class Gpt : public llmsys::sdk::Model {
 public:
  static Info Describe() {
    return {
        .id = "gpt",
        .version = "0.1.0",
        .description =
            "GPT-2 style decoder-only transformer (pre-LayerNorm, "
            "learned positions, tied embeddings)",
        .params = {
            ParamSpec::Required("vocab_size", LLMSYS_TYPE_INT,
                                "vocabulary size (the host sets it from the "
                                "tokenizer)")
                .Min(1),
            ParamSpec::Int("block_size", 64,
                           "longest sequence (context length)")
                .Min(1),
            ParamSpec::Int("n_layer", 4, "number of transformer blocks").Min(1),
            ParamSpec::Int("n_head", 4, "attention heads per block").Min(1),
            ParamSpec::Int("n_embd", 128, "model width (a multiple of n_head)")
                .Min(1),
            ParamSpec::Float("dropout", 0.0,
                             "dropout probability in training, in [0, 1)")
                .Range(0.0, 1.0),
            ParamSpec::Bool("bias", true,
                            "biases in the linear layers and LayerNorms"),
            ParamSpec::Bool("tie_embeddings", true,
                            "output layer shares the token embedding"),
            ParamSpec::Float("layer_norm_eps", 1e-5, "LayerNorm epsilon")
                .Min(0.0),
            ParamSpec::Float("init_std", 0.02,
                             "std of the normal weight initialization")
                .Min(0.0),
            ParamSpec::String("dtype", "float32", "parameter dtype")
                .Choices("float32|float64"),
        }};
  }

  // Reads the config and declares every parameter on `graph`.
  Gpt(const Params& p, llmsys_graph_t* graph)
      : c_{.vocab_size = p.Int("vocab_size"),
           .block_size = p.Int("block_size"),
           .n_layer = p.Int("n_layer"),
           .n_head = p.Int("n_head"),
           .n_embd = p.Int("n_embd"),
           .dropout = p.Float("dropout"),
           .layer_norm_eps = p.Float("layer_norm_eps"),
           .init_std = p.Float("init_std"),
           .bias = p.Bool("bias"),
           .tie_embeddings = p.Bool("tie_embeddings"),
           .dtype = llmsys::sdk::DtypeNamed(p.String("dtype"))} {
    Require(c_.n_embd % c_.n_head == 0, "gpt: n_embd (" +
                                            std::to_string(c_.n_embd) +
                                            ") must be a multiple of n_head (" +
                                            std::to_string(c_.n_head) + ")");
    Require(c_.dropout < 1.0, "gpt: dropout must be below 1");
    const int64_t C = c_.n_embd, V = c_.vocab_size;
    // Every parameter in c_.dtype; biases (linear layers and LayerNorms)
    // only with c_.bias.
    const llmsys::sdk::ParameterMaker make{
        .dtype = c_.dtype, .bias = c_.bias, .eps = c_.layer_norm_eps};
    const WeightInit normal = NormalInit(c_.init_std);
    // GPT-2's scaled init for the projections that write into the residual.
    const WeightInit residual = NormalInit(
        c_.init_std / std::sqrt(2.0 * static_cast<double>(c_.n_layer)));

    wte_ = make.Weight("wte.weight", {V, C}, normal);
    wpe_ = make.Weight("wpe.weight", {c_.block_size, C}, normal);
    for (int64_t i = 0; i < c_.n_layer; ++i) {
      const std::string b = "blocks." + std::to_string(i) + ".";
      Block block;
      block.ln1 = make.Norm(b + "ln1", C);
      block.qkv = make.Linear(b + "attn.qkv", C, 3 * C, normal);
      block.attn_proj = make.Linear(b + "attn.proj", C, C, residual);
      block.ln2 = make.Norm(b + "ln2", C);
      block.fc = make.Linear(b + "mlp.fc", C, 4 * C, normal);
      block.mlp_proj = make.Linear(b + "mlp.proj", 4 * C, C, residual);
      blocks_.push_back(block);
    }
    ln_f_ = make.Norm("ln_f", C);
    if (!c_.tie_embeddings)
      lm_head_ = make.Weight("lm_head.weight", {V, C}, normal);

    // Declaring is what create() is for: the host allocates and initializes.
    // A pipeline stage (llmsys/host.h pipeline_stage) declares its own:
    // blocks [first_, last_), the embeddings on the first stage, ln_f and
    // the output layer on the last (the tied wte on both).
    stage_ = llmsys::sdk::StageOf(graph);
    Require(stage_.num_stages <= static_cast<uint32_t>(c_.n_layer),
            "gpt: " + std::to_string(stage_.num_stages) +
                " pipeline stages need at least as many blocks; n_layer is " +
                std::to_string(c_.n_layer));
    std::tie(first_, last_) = stage_.StageRange(c_.n_layer);
    for (const ParameterSpec& spec : All()) spec.Get(graph);
  }

  void Forward(llmsys_graph_t* graph,
               const llmsys_model_inputs_t& inputs) override {
    const bool train = inputs.mode == LLMSYS_MODE_TRAIN;
    const bool generate = inputs.mode == LLMSYS_MODE_GENERATE;
    const double p_drop = train ? c_.dropout : 0.0;
    // Tokens already in the cache (llmsys/model.h; GENERATE only).
    const int64_t P = generate ? inputs.past_length : 0;
    Require(inputs.past_length == 0 || generate,
            "gpt: past_length " + std::to_string(inputs.past_length) +
                " is only meaningful in LLMSYS_MODE_GENERATE (the key/value "
                "cache); it must be 0 in training and evaluation");
    Require(P >= 0, "gpt: past_length must be >= 0, got " + std::to_string(P));

    Require(stage_.num_stages == 1 || !generate,
            "gpt: a pipeline stage does not generate");
    Value tokens = Input(graph, inputs, "tokens");  // (B, T)
    const std::vector<int64_t> shape = tokens.Shape();
    Require(shape.size() == 2,
            "gpt: tokens must be (B, T), got " + ShapeString(shape));
    const int64_t B = shape[0], T = shape[1];
    Require(T <= c_.block_size,
            "gpt: sequence length " + std::to_string(T) +
                " exceeds block_size " + std::to_string(c_.block_size) +
                " (the longest context the model was built for)");
    Require(P + T <= c_.block_size,
            "gpt: past_length " + std::to_string(P) + " + " +
                std::to_string(T) + " new tokens exceed block_size " +
                std::to_string(c_.block_size) +
                " (re-run the last block_size tokens without the cache)");

    // Token and position embeddings: (B, T, C) + (T, C) broadcasts. The new
    // tokens sit at positions P..P+T-1.
    std::vector<int64_t> positions(static_cast<size_t>(T));
    for (int64_t t = 0; t < T; ++t) positions[static_cast<size_t>(t)] = P + t;
    Value x;
    if (stage_.first()) {
      Value pos = llmsys::sdk::Constant(graph, positions, {T});
      x = Embedding(wte_.Get(graph), tokens) + Embedding(wpe_.Get(graph), pos);
      x = MaybeDropout(x, p_drop);
    } else {  // the previous stage's residual stream
      x = Input(graph, inputs, "pipeline.in");
      Require(x.Shape() == std::vector<int64_t>{B, T, c_.n_embd},
              "gpt: pipeline.in must be (B, T, n_embd), got " +
                  ShapeString(x.Shape()));
    }

    for (size_t i = static_cast<size_t>(first_); i < static_cast<size_t>(last_);
         ++i) {
      const Block& block = blocks_[i];
      // In GENERATE, the block's cache: read when P > 0, always written.
      Cache cache;
      if (generate) {
        cache.name = "cache.blocks." + std::to_string(i) + ".";
        cache.past = P;
        cache.inputs = &inputs;
      }
      // x + dropout(attn.proj(attention(ln1(x))))
      Value a = LayerNorm(graph, block.ln1, x);
      a = SelfAttention(graph, block, a, B, T, p_drop,
                        generate ? &cache : nullptr);
      x = x + MaybeDropout(a, p_drop);
      // x + dropout(mlp.proj(gelu(mlp.fc(ln2(x)))))
      Value h = LayerNorm(graph, block.ln2, x);
      h = Gelu(Apply(graph, block.fc, h), "tanh");  // (B, T, 4C)
      x = x + MaybeDropout(Apply(graph, block.mlp_proj, h), p_drop);
    }
    if (!stage_.last()) {
      SetOutput(graph, "pipeline.out", x);
      return;
    }
    x = LayerNorm(graph, ln_f_, x);

    // (B, T, C) @ (V, C)^T -> (B, T, V)
    const ParameterSpec& head = c_.tie_embeddings ? wte_ : lm_head_;
    Value logits = Matmul(x, head.Get(graph), false, true);
    SetOutput(graph, "logits", logits);

    const bool has_targets = HasInput(inputs, "targets");
    Require(has_targets || !train, "gpt: training needs an input 'targets'");
    if (has_targets) {
      Value targets = Input(graph, inputs, "targets");  // (B, T)
      Require(targets.Shape() == shape,
              "gpt: targets " + ShapeString(targets.Shape()) +
                  " must have the shape of tokens " + ShapeString(shape));
      SetOutput(graph, "loss",
                CrossEntropy(logits, targets, -100, 0.0, "mean"));
    }
  }

 private:
  // A block's layers (llmsys/sdk.hpp's layer helpers); with bias = false
  // each bias is unnamed and never declared.
  struct Block {
    NormParams ln1, ln2;
    LinearParams qkv, attn_proj, fc, mlp_proj;
  };

  // Every parameter of this stage, in declaration order.
  std::vector<ParameterSpec> All() const {
    std::vector<ParameterSpec> all;
    if (stage_.first()) all = {wte_, wpe_};
    for (int64_t i = first_; i < last_; ++i) {
      const Block& b = blocks_[static_cast<size_t>(i)];
      AppendSpecs(&all, b.ln1, b.ln2, b.qkv, b.attn_proj, b.fc, b.mlp_proj);
    }
    if (stage_.last()) {
      AppendSpecs(&all, ln_f_, lm_head_);
      if (c_.tie_embeddings && !stage_.first()) all.push_back(wte_);
    }
    return all;
  }

  // One block's key/value cache in a GENERATE call: the names of its inputs
  // and outputs ("<name>k", "<name>v") and the tokens already in it.
  struct Cache {
    std::string name;
    int64_t past = 0;
    const llmsys_model_inputs_t* inputs = nullptr;
  };

  // The cache input `name`, checked to be (B, H, P, D).
  Value CacheInput(llmsys_graph_t* graph, const Cache& cache,
                   const std::string& name,
                   const std::vector<int64_t>& expected) const {
    Require(HasInput(*cache.inputs, name),
            "gpt: past_length " + std::to_string(cache.past) +
                " needs the input '" + name +
                "': the cache the previous GENERATE call returned "
                "(llmsys/model.h)");
    Value v = Input(graph, *cache.inputs, name);
    Require(v.Shape() == expected,
            "gpt: cache input '" + name +
                "' must be (B, H, past_length, D) = " + ShapeString(expected) +
                ", got " + ShapeString(v.Shape()));
    return v;
  }

  // Causal multi-head self-attention of h (B, T, C) -> (B, T, C); with a
  // cache, over the P past keys and values too.
  Value SelfAttention(llmsys_graph_t* graph, const Block& block, const Value& h,
                      int64_t B, int64_t T, double p_drop,
                      const Cache* cache) const {
    const int64_t C = c_.n_embd, H = c_.n_head, D = C / H;
    Value qkv = Apply(graph, block.qkv, h);  // (B, T, 3C): q | k | v
    const std::vector<Value> heads = SplitHeads(qkv, 3, H);
    Value q = heads[0], k = heads[1], v = heads[2];  // (B, H, T, D)
    const int64_t P = cache != nullptr ? cache->past : 0;
    if (cache != nullptr) {
      if (P > 0) {  // (B, H, P, D) ++ (B, H, T, D) -> (B, H, P+T, D)
        k = llmsys::sdk::Concat(
            {CacheInput(graph, *cache, cache->name + "k", {B, H, P, D}), k}, 2);
        v = llmsys::sdk::Concat(
            {CacheInput(graph, *cache, cache->name + "v", {B, H, P, D}), v}, 2);
      }
      SetOutput(graph, cache->name + "k", k);
      SetOutput(graph, cache->name + "v", v);
    }
    Value y;  // (B, H, T, D)
    if (P == 0 || T == 1) {
      // N == M (top-left causal is right), or one query that sees every key.
      y = Attention(q, k, v, /*key_padding_mask=*/nullptr,
                    /*causal=*/P == 0, p_drop);
    } else {
      y = ChunkAttention(graph, q, k, v, P);
    }
    y = MergeHeads(y);  // (B, T, C)
    return Apply(graph, block.attn_proj, y);
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
  llmsys::sdk::PipelineStage stage_;
  int64_t first_ = 0, last_ = 0;       // the stage's blocks
  ParameterSpec wte_, wpe_, lm_head_;  // lm_head_ only when untied
  std::vector<Block> blocks_;
  NormParams ln_f_;
};

}  // namespace

LLMSYS_PLUGIN("llmsys.gpt", "0.1.0", "GPT-2 style language model", "MIT") {
  registry.Add<Gpt>();
}
