// Tests of the transformer model (plugins/models/transformer), loaded from
// the built transformer.so with the reference operators and driven through
// its C struct as the host drives it (tests/plugins/models/model_harness.h).
// Sizes are tiny (C = 8, two heads, two layers each side): the reference
// operators are plain loops. Expected values come from invariants (source
// padding, causality), hand computations from the logits (the loss),
// central differences (gradients) and the full forward (the cache).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "framework/generate/decoding.h"
#include "tests/plugins/models/model_harness.h"

namespace llmsys::models_test {
namespace {

constexpr int64_t kC = 8, kH = 2, kD = 4, kF = 16, kLayers = 2;

// A small config without dropout; `extra` overrides or adds to it.
Overrides Config(int64_t vocab, const Overrides& extra = {}) {
  return Merge({{"vocab_size", vocab},
                {"n_embd", kC},
                {"n_head", kH},
                {"ffn_dim", kF},
                {"n_encoder_layers", kLayers},
                {"n_decoder_layers", kLayers},
                {"max_positions", int64_t{12}},
                {"dropout", 0.0}},
               extra);
}

// n values from a fixed pseudo-random sequence in [lo, hi).
std::vector<double> Ids(int64_t n, int64_t lo, int64_t hi, uint64_t seed) {
  std::vector<double> t;
  uint64_t s = seed;
  for (int64_t i = 0; i < n; ++i) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    t.push_back(static_cast<double>(
        lo + static_cast<int64_t>((s >> 33) % static_cast<uint64_t>(hi - lo))));
  }
  return t;
}

// A translation batch: src (B, S) right-padded with 0 after lengths[b]
// tokens, decoder tokens and targets (B, T).
struct Batch {
  int64_t B = 0, S = 0, T = 0;
  std::vector<double> src = {}, pad = {}, tokens = {},
                      targets = {};  // targets may be empty

  // The model's inputs; with the targets when `with_targets`.
  Inputs Make(bool with_targets = true) const {
    Inputs in = {{"src", MakeTensor({B, S}, src, tensor::kI64)},
                 {"src_padding_mask", MakeTensor({B, S}, pad, tensor::kI32)},
                 {"tokens", MakeTensor({B, T}, tokens, tensor::kI64)}};
    if (with_targets && !targets.empty())
      in.emplace_back("targets", MakeTensor({B, T}, targets, tensor::kI64));
    return in;
  }
};

// Random source ids in [3, V) for `lengths` (padded to S), tokens in
// [3, V) and targets in [0, V).
Batch RandomBatch(int64_t V, const std::vector<int64_t>& lengths, int64_t S,
                  int64_t T, uint64_t seed = 7) {
  Batch b{.B = static_cast<int64_t>(lengths.size()), .S = S, .T = T};
  b.src = Ids(b.B * S, 3, V, seed);
  for (int64_t r = 0; r < b.B; ++r)
    for (int64_t s = 0; s < S; ++s) {
      const bool padded = s >= lengths[static_cast<size_t>(r)];
      b.pad.push_back(padded ? 1 : 0);
      if (padded) b.src[static_cast<size_t>(r * S + s)] = 0;
    }
  b.tokens = Ids(b.B * T, 3, V, seed + 1);
  b.targets = Ids(b.B * T, 0, V, seed + 2);
  return b;
}

ForwardResult Call(ModelRun& run, const Inputs& inputs, uint32_t mode,
                   int64_t past_length = 0) {
  ForwardResult r = run.Forward(inputs, mode, past_length);
  EXPECT_EQ(r.status, LLMSYS_STATUS_OK) << r.message;
  EXPECT_EQ(r.leaked_handles, 0);
  return r;
}

std::vector<double> Logits(ModelRun& run, const Inputs& inputs) {
  ForwardResult r = Call(run, inputs, LLMSYS_MODE_EVAL);
  return r.status == LLMSYS_STATUS_OK ? r.outputs.at("logits")->data.ToDoubles()
                                      : std::vector<double>{};
}

double Scalar(const ForwardResult& r, const std::string& name) {
  return r.status == LLMSYS_STATUS_OK ? r.outputs.at(name)->data.ToDoubles()[0]
                                      : NAN;
}

// |a - b| <= tol (1 + |b|) elementwise; the message names the first miss.
void ExpectClose(const std::vector<double>& a, const std::vector<double>& b,
                 double tol, const std::string& what) {
  ASSERT_EQ(a.size(), b.size()) << what;
  for (size_t i = 0; i < a.size(); ++i)
    ASSERT_LE(std::abs(a[i] - b[i]), tol * (1 + std::abs(b[i])))
        << what << ": element " << i << " is " << a[i] << ", expected " << b[i];
}

// ---- parameters ----

TEST(TransformerTest, ParametersFollowTheFormulaAndNaming) {
  const int64_t V = 11, C = kC, F = kF, L = kLayers;
  ModelRun run("transformer", Config(V));
  ASSERT_EQ(run.Create(), LLMSYS_STATUS_OK) << run.message();
  // embed + encoder layers (2 LNs, qkv, out_proj, fc1, fc2) + decoder layers
  // (3 LNs, qkv, out_proj, q, kv, out_proj, fc1, fc2) + two final LNs.
  const int64_t encoder_layer = 4 * C * C + 2 * C * F + 9 * C + F;
  const int64_t decoder_layer = 8 * C * C + 2 * C * F + 15 * C + F;
  EXPECT_EQ(NumParameters(run),
            V * C + L * (encoder_layer + decoder_layer) + 4 * C);

  std::vector<std::string> names;
  for (const runtime::Parameter& p : run.params().all())
    names.push_back(p.name);
  const std::vector<std::string> encoder0 = {
      "encoder.layers.0.self_attn_ln.weight",
      "encoder.layers.0.self_attn_ln.bias",
      "encoder.layers.0.self_attn.qkv.weight",
      "encoder.layers.0.self_attn.qkv.bias",
      "encoder.layers.0.self_attn.out_proj.weight",
      "encoder.layers.0.self_attn.out_proj.bias",
      "encoder.layers.0.ffn_ln.weight",
      "encoder.layers.0.ffn_ln.bias",
      "encoder.layers.0.ffn.fc1.weight",
      "encoder.layers.0.ffn.fc1.bias",
      "encoder.layers.0.ffn.fc2.weight",
      "encoder.layers.0.ffn.fc2.bias"};
  const std::vector<std::string> decoder1 = {
      "decoder.layers.1.self_attn_ln.weight",
      "decoder.layers.1.self_attn_ln.bias",
      "decoder.layers.1.self_attn.qkv.weight",
      "decoder.layers.1.self_attn.qkv.bias",
      "decoder.layers.1.self_attn.out_proj.weight",
      "decoder.layers.1.self_attn.out_proj.bias",
      "decoder.layers.1.cross_attn_ln.weight",
      "decoder.layers.1.cross_attn_ln.bias",
      "decoder.layers.1.cross_attn.q.weight",
      "decoder.layers.1.cross_attn.q.bias",
      "decoder.layers.1.cross_attn.kv.weight",
      "decoder.layers.1.cross_attn.kv.bias",
      "decoder.layers.1.cross_attn.out_proj.weight",
      "decoder.layers.1.cross_attn.out_proj.bias",
      "decoder.layers.1.ffn_ln.weight",
      "decoder.layers.1.ffn_ln.bias",
      "decoder.layers.1.ffn.fc1.weight",
      "decoder.layers.1.ffn.fc1.bias",
      "decoder.layers.1.ffn.fc2.weight",
      "decoder.layers.1.ffn.fc2.bias"};
  ASSERT_EQ(names.size(),
            1u + 2 * encoder0.size() + 2 + 2 * decoder1.size() + 2);
  EXPECT_EQ(names[0], "embed.weight");
  EXPECT_EQ(std::vector<std::string>(names.begin() + 1, names.begin() + 13),
            encoder0);
  EXPECT_EQ(names[25], "encoder.ln_f.weight");
  EXPECT_EQ(std::vector<std::string>(names.end() - 22, names.end() - 2),
            decoder1);
  EXPECT_EQ(names[names.size() - 2], "decoder.ln_f.weight");
  EXPECT_EQ(names.back(), "decoder.ln_f.bias");
  EXPECT_EQ(
      run.Param("decoder.layers.1.cross_attn.kv.weight").var->data.shape(),
      (tensor::Shape{2 * C, C}));
  EXPECT_EQ(run.Param("encoder.layers.1.ffn.fc2.weight").var->data.shape(),
            (tensor::Shape{C, F}));

  // Init: Xavier-uniform bounds (sqrt(6 / 4C) for the attention input
  // projections), embed normal(0, C^-1/2), biases zeros, LayerNorms ones;
  // vectors excluded from weight decay.
  const double in_proj = std::sqrt(6.0 / (4.0 * C));
  for (const runtime::Parameter& p : run.params().all()) {
    const bool vector = p.var->data.ndim() == 1;
    EXPECT_EQ((p.flags & LLMSYS_PARAMETER_NO_DECAY) != 0, vector) << p.name;
    EXPECT_TRUE(tensor::kF32 == p.var->data.dtype()) << p.name;
    const std::vector<double> w = p.var->data.ToDoubles();
    if (vector) {
      const double expected = p.name.find(".bias") != std::string::npos ? 0 : 1;
      for (double x : w) ASSERT_EQ(x, expected) << p.name;
      continue;
    }
    if (p.name == "embed.weight") {
      double sq = 0;
      for (double x : w) sq += x * x;
      EXPECT_NEAR(std::sqrt(sq / static_cast<double>(w.size())),
                  1 / std::sqrt(double{C}), 0.3 / std::sqrt(double{C}));
      continue;
    }
    const bool input_projection = p.name.find(".qkv.") != std::string::npos ||
                                  p.name.find(".q.") != std::string::npos ||
                                  p.name.find(".kv.") != std::string::npos;
    const tensor::Shape& s = p.var->data.shape();
    const double bound =
        input_projection ? in_proj
                         : std::sqrt(6.0 / static_cast<double>(s[0] + s[1]));
    double largest = 0;
    for (double x : w) largest = std::max(largest, std::abs(x));
    EXPECT_LE(largest, bound) << p.name;
    EXPECT_GT(largest, 0.8 * bound) << p.name << " looks narrower than Xavier";
  }

  // Untied, without biases, in float64: a separate lm_head, weight-only
  // LayerNorms.
  ModelRun untied("transformer",
                  Config(V, {{"tie_embeddings", false},
                             {"bias", false},
                             {"dtype", std::string("float64")}}));
  ASSERT_EQ(untied.Create(), LLMSYS_STATUS_OK) << untied.message();
  EXPECT_EQ(NumParameters(untied), 2 * V * C +
                                       L * (4 * C * C + 2 * C * F + 2 * C +
                                            8 * C * C + 2 * C * F + 3 * C) +
                                       2 * C);
  EXPECT_NE(untied.params().Find("lm_head.weight"), nullptr);
  EXPECT_EQ(untied.params().Find("decoder.ln_f.bias"), nullptr);
  EXPECT_EQ(untied.params().Find("encoder.layers.0.ffn.fc1.bias"), nullptr);
  EXPECT_TRUE(tensor::kF64 == untied.Param("embed.weight").var->data.dtype());
}

// ---- errors ----

TEST(TransformerTest, ErrorsSayWhatIsWrong) {
  const int64_t V = 9;
  ModelRun bad("transformer",
               Config(V, {{"n_embd", int64_t{10}}, {"n_head", int64_t{4}}}));
  EXPECT_EQ(bad.Create(), LLMSYS_STATUS_INVALID_ARGUMENT);
  EXPECT_NE(bad.message().find("n_embd (10) must be a multiple of n_head (4)"),
            std::string::npos)
      << bad.message();

  ModelRun run("transformer", Config(V));  // max_positions 12
  ASSERT_EQ(run.Create(), LLMSYS_STATUS_OK) << run.message();
  const Batch b = RandomBatch(V, {3, 2}, 3, 4);
  auto expect_error = [&](const Inputs& in, uint32_t mode,
                          const std::string& text, int64_t past = 0) {
    ForwardResult r = run.Forward(in, mode, past);
    EXPECT_EQ(r.status, LLMSYS_STATUS_INVALID_ARGUMENT) << text;
    EXPECT_NE(r.message.find(text), std::string::npos) << r.message;
    EXPECT_EQ(r.leaked_handles, 0) << text;
  };
  auto without = [&](const std::string& name) {
    Inputs in;
    for (auto& [n, t] : b.Make())
      if (n != name) in.emplace_back(n, t);
    return in;
  };
  auto replaced = [&](const std::string& name, tensor::Tensor t) {
    Inputs in = b.Make();
    for (auto& [n, v] : in)
      if (n == name) v = t;
    return in;
  };
  expect_error(without("src"), LLMSYS_MODE_EVAL, "needs an input 'src' (given");
  expect_error(without("src_padding_mask"), LLMSYS_MODE_EVAL,
               "needs an input 'src_padding_mask'");
  expect_error(without("targets"), LLMSYS_MODE_TRAIN,
               "training needs an input 'targets'");
  expect_error(
      replaced("src_padding_mask",
               MakeTensor({2, 2}, {0, 0, 0, 1}, tensor::kI32)),
      LLMSYS_MODE_EVAL,
      "src_padding_mask must have the shape of src (2, 3), got (2, 2)");
  expect_error(replaced("src", MakeTensor({1, 3}, {3, 4, 5}, tensor::kI64)),
               LLMSYS_MODE_EVAL,
               "src must be (B, S) with the B = 2 rows of tokens, got (1, 3)");
  expect_error(
      replaced("targets", MakeTensor({2, 3}, Ids(6, 0, V, 1), tensor::kI64)),
      LLMSYS_MODE_EVAL, "targets (2, 3) must have the shape of tokens (2, 4)");
  expect_error(
      replaced("tokens", MakeTensor({8}, Ids(8, 3, V, 1), tensor::kI64)),
      LLMSYS_MODE_EVAL, "tokens must be (B, T), got (8)");

  const Batch long_src = RandomBatch(V, {13}, 13, 2);
  expect_error(long_src.Make(), LLMSYS_MODE_EVAL,
               "source length 13 exceeds max_positions 12");
  const Batch long_tgt = RandomBatch(V, {2}, 2, 13);
  expect_error(long_tgt.Make(), LLMSYS_MODE_EVAL,
               "target length 13 exceeds max_positions 12");
  expect_error(b.Make(), LLMSYS_MODE_EVAL,
               "only meaningful in LLMSYS_MODE_GENERATE", 1);

  // A source id out of the vocabulary: the embedding op's own error.
  Batch oov = b;
  oov.src[0] = static_cast<double>(V);
  ForwardResult r = run.Forward(oov.Make(), LLMSYS_MODE_EVAL);
  EXPECT_EQ(r.status, LLMSYS_STATUS_INVALID_ARGUMENT) << r.message;
  EXPECT_NE(r.message.find("embedding"), std::string::npos) << r.message;
  EXPECT_EQ(r.leaked_handles, 0);
}

// ---- invariants ----

// Source padding is invisible: other ids at padded positions, or more
// padding appended, give the same logits; a real source token does not.
TEST(TransformerTest, SourcePaddingDoesNotChangeTheLogits) {
  const int64_t V = 10, S = 5, T = 4;
  ModelRun run("transformer", Config(V, {{"dtype", std::string("float64")}}));
  ASSERT_EQ(run.Create(), LLMSYS_STATUS_OK) << run.message();
  const Batch b = RandomBatch(V, {5, 3, 1}, S, T);
  const std::vector<double> base = Logits(run, b.Make());
  ASSERT_EQ(base.size(), static_cast<size_t>(3 * T * V));

  Batch other = b;  // ids at the padding positions of rows 1 and 2
  for (size_t i = 0; i < other.src.size(); ++i)
    if (other.pad[i] != 0) other.src[i] = static_cast<double>(3 + i % 7);
  ExpectClose(Logits(run, other.Make()), base, 1e-12, "other padding ids");

  Batch longer = b;  // two more padding columns
  longer.S = S + 2;
  longer.src.clear(), longer.pad.clear();
  for (int64_t r = 0; r < b.B; ++r) {
    for (int64_t s = 0; s < longer.S; ++s) {
      const bool old = s < S;
      longer.src.push_back(old ? b.src[static_cast<size_t>(r * S + s)] : 0);
      longer.pad.push_back(old ? b.pad[static_cast<size_t>(r * S + s)] : 1);
    }
  }
  ExpectClose(Logits(run, longer.Make()), base, 1e-12, "appended padding");

  Batch real = b;  // a real token of row 1 changes row 1 only
  real.src[static_cast<size_t>(1 * S + 1)] =
      real.src[static_cast<size_t>(1 * S + 1)] == 4 ? 5 : 4;
  const std::vector<double> changed = Logits(run, real.Make());
  const auto row = [&](const std::vector<double>& x, int64_t r) {
    return std::vector<double>(x.begin() + r * T * V,
                               x.begin() + (r + 1) * T * V);
  };
  EXPECT_EQ(row(changed, 0), row(base, 0));
  EXPECT_NE(row(changed, 1), row(base, 1));
  EXPECT_EQ(row(changed, 2), row(base, 2));
}

// Changing decoder token t changes no logits before t, and those at t.
TEST(TransformerTest, DecoderIsCausal) {
  const int64_t V = 10, T = 5;
  ModelRun run("transformer", Config(V));
  ASSERT_EQ(run.Create(), LLMSYS_STATUS_OK) << run.message();
  const Batch b = RandomBatch(V, {4}, 4, T);
  const std::vector<double> base = Logits(run, b.Make());
  for (int64_t t = 1; t < T; ++t) {
    Batch c = b;
    c.tokens[static_cast<size_t>(t)] =
        c.tokens[static_cast<size_t>(t)] == 3 ? 4 : 3;
    const std::vector<double> x = Logits(run, c.Make());
    ASSERT_EQ(x.size(), base.size());
    EXPECT_EQ(std::vector<double>(x.begin(), x.begin() + t * V),
              std::vector<double>(base.begin(), base.begin() + t * V))
        << "token " << t << " changed earlier logits";
    EXPECT_NE(
        std::vector<double>(x.begin() + t * V, x.begin() + (t + 1) * V),
        std::vector<double>(base.begin() + t * V, base.begin() + (t + 1) * V))
        << "token " << t << " changed nothing at its position";
  }
}

// ---- the loss ----

// loss = mean over non-ignored (b, t) of
//   (1 - eps) (lse - z[target]) + eps mean_v (lse - z[v]),
// nll_loss the same with eps = 0, both computed here from the logits.
TEST(TransformerTest, LossIsLabelSmoothedCrossEntropyOfTheLogits) {
  const int64_t V = 9, T = 4;
  for (double eps : {0.1, 0.3, 0.0}) {
    ModelRun run("transformer", Config(V, {{"dtype", std::string("float64")},
                                           {"label_smoothing", eps}}));
    ASSERT_EQ(run.Create(), LLMSYS_STATUS_OK) << run.message();
    Batch b = RandomBatch(V, {4, 2}, 4, T);
    b.targets[2] = -100, b.targets[6] = -100, b.targets[7] = -100;
    ForwardResult r = Call(run, b.Make(), LLMSYS_MODE_EVAL);
    ASSERT_EQ(r.status, LLMSYS_STATUS_OK);
    const std::vector<double> z = r.outputs.at("logits")->data.ToDoubles();
    double smoothed = 0, nll = 0;
    int count = 0;
    for (size_t i = 0; i < b.targets.size(); ++i) {
      if (b.targets[i] == -100) continue;
      const double* row = z.data() + i * V;
      double m = row[0], sum = 0, mean_neg_logp = 0;
      for (int64_t v = 0; v < V; ++v) m = std::max(m, row[v]);
      for (int64_t v = 0; v < V; ++v) sum += std::exp(row[v] - m);
      const double lse = m + std::log(sum);
      for (int64_t v = 0; v < V; ++v) mean_neg_logp += (lse - row[v]) / V;
      const double neg_logp_t = lse - row[static_cast<int64_t>(b.targets[i])];
      smoothed += (1 - eps) * neg_logp_t + eps * mean_neg_logp;
      nll += neg_logp_t;
      ++count;
    }
    ASSERT_EQ(count, 5);
    EXPECT_NEAR(Scalar(r, "loss"), smoothed / count, 1e-12) << "eps " << eps;
    EXPECT_NEAR(Scalar(r, "nll_loss"), nll / count, 1e-12) << "eps " << eps;
    if (eps > 0) {
      EXPECT_GT(std::abs(smoothed - nll), 1e-3);
    }
  }
  // Without targets: logits only.
  ModelRun run("transformer", Config(V));
  ASSERT_EQ(run.Create(), LLMSYS_STATUS_OK) << run.message();
  ForwardResult r =
      Call(run, RandomBatch(V, {3}, 3, T).Make(false), LLMSYS_MODE_EVAL);
  EXPECT_EQ(r.outputs.count("loss"), 0u);
  EXPECT_EQ(r.outputs.count("nll_loss"), 0u);
  EXPECT_EQ(r.outputs.at("logits")->data.shape(), (tensor::Shape{1, T, V}));
}

// ---- gradients ----

// d(loss)/d(parameter element) by backward and by central differences, in
// float64, for elements of parameters on every path (source and target
// embedding, encoder, cross-attention, decoder, untied head). In TRAIN with
// dropout the dispatcher's call counter is reset before every forward, so
// each draws the same masks.
void GradientCheck(uint32_t mode, double dropout, bool tied) {
  const int64_t V = 7, T = 4;
  ModelRun run("transformer", Config(V, {{"dtype", std::string("float64")},
                                         {"dropout", dropout},
                                         {"attention_dropout", dropout},
                                         {"activation_dropout", dropout},
                                         {"activation", std::string("gelu")},
                                         {"tie_embeddings", tied}}));
  ASSERT_EQ(run.Create(), LLMSYS_STATUS_OK) << run.message();
  Batch b = RandomBatch(V, {4, 2}, 4, T);
  b.targets[3] = -100;
  const Inputs inputs = b.Make();
  const uint64_t calls = run.ops().calls();

  ForwardResult r = Call(run, inputs, mode);
  ASSERT_EQ(r.status, LLMSYS_STATUS_OK);
  ASSERT_TRUE(autograd::Backward(r.outputs.at("loss")).ok());

  std::vector<std::string> names = {
      "embed.weight",
      "encoder.layers.0.self_attn_ln.weight",
      "encoder.layers.0.self_attn.qkv.weight",
      "encoder.layers.1.ffn.fc1.weight",
      "encoder.layers.1.ffn.fc2.bias",
      "encoder.ln_f.weight",
      "encoder.ln_f.bias",
      "decoder.layers.0.self_attn.qkv.bias",
      "decoder.layers.0.cross_attn.q.weight",
      "decoder.layers.0.cross_attn.kv.weight",
      "decoder.layers.1.cross_attn.kv.bias",
      "decoder.layers.1.cross_attn.out_proj.weight",
      "decoder.layers.1.cross_attn_ln.bias",
      "decoder.layers.1.ffn.fc2.weight",
      "decoder.ln_f.weight"};
  if (!tied) names.push_back("lm_head.weight");
  CheckGradients(
      run,
      [&] {
        run.ops().set_calls(calls);
        return Scalar(Call(run, inputs, mode), "loss");
      },
      names, /*h=*/1e-5, /*tolerance=*/1e-6);
}

TEST(TransformerTest, GradientsMatchCentralDifferencesInFloat64) {
  GradientCheck(LLMSYS_MODE_EVAL, 0.0, /*tied=*/true);
}

TEST(TransformerTest, GradientsMatchCentralDifferencesUntiedWithDropout) {
  GradientCheck(LLMSYS_MODE_TRAIN, 0.2, /*tied=*/false);
}

TEST(TransformerTest, DropoutOnlyInTraining) {
  const int64_t V = 9;
  ModelRun run("transformer", Config(V, {{"dropout", 0.3}}));
  ASSERT_EQ(run.Create(), LLMSYS_STATUS_OK) << run.message();
  const Inputs inputs = RandomBatch(V, {3, 2}, 3, 4).Make();
  ForwardResult e1 = Call(run, inputs, LLMSYS_MODE_EVAL);
  ForwardResult t = Call(run, inputs, LLMSYS_MODE_TRAIN);
  ForwardResult e2 = Call(run, inputs, LLMSYS_MODE_EVAL);
  ASSERT_EQ(t.status, LLMSYS_STATUS_OK);
  EXPECT_EQ(e1.outputs["logits"]->data.ToDoubles(),
            e2.outputs["logits"]->data.ToDoubles());
  EXPECT_NE(e1.outputs["logits"]->data.ToDoubles(),
            t.outputs["logits"]->data.ToDoubles());
}

// ---- the key/value cache (LLMSYS_MODE_GENERATE) ----

generate::Cache CacheOf(const ForwardResult& r) {
  generate::Cache cache;
  for (const auto& [name, var] : r.outputs)
    if (name.rfind("cache.", 0) == 0) cache.emplace_back(name, var->data);
  return cache;
}

const tensor::Tensor& Named(const generate::Cache& cache,
                            const std::string& name) {
  for (const auto& [n, t] : cache)
    if (n == name) return t;
  ADD_FAILURE() << "no cache value " << name;
  static const tensor::Tensor none;
  return none;
}

// Columns [t0, t1) of `b`'s tokens with its source, plus `cache`.
Inputs Step(const Batch& b, int64_t t0, int64_t t1,
            const generate::Cache& cache) {
  std::vector<double> v;
  for (int64_t r = 0; r < b.B; ++r)
    for (int64_t t = t0; t < t1; ++t)
      v.push_back(b.tokens[static_cast<size_t>(r * b.T + t)]);
  Inputs in = {
      {"src", MakeTensor({b.B, b.S}, b.src, tensor::kI64)},
      {"src_padding_mask", MakeTensor({b.B, b.S}, b.pad, tensor::kI32)},
      {"tokens", MakeTensor({b.B, t1 - t0}, v, tensor::kI64)}};
  for (const auto& [name, t] : cache) in.emplace_back(name, t);
  return in;
}

std::vector<double> Positions(const ForwardResult& r, int64_t t0, int64_t t1) {
  absl::StatusOr<tensor::Tensor> s =
      r.outputs.at("logits")->data.Slice(1, t0, t1);
  EXPECT_TRUE(s.ok()) << s.status();
  return s.ok() ? s->ToDoubles() : std::vector<double>{};
}

// The decoder's input is embed[token] * sqrt(C) (or unscaled) + PE[pos],
// PE[pos, 2i] = sin(pos / 10000^(2i/C)), PE[pos, 2i+1] = cos(same): seen
// through layer 0's self-attention keys in the cache, with the key part of
// qkv set to the identity, so k = self_attn_ln(x) split into heads. A
// second call at past_length 3 checks positions 3 and 4.
TEST(TransformerTest, DecoderInputIsScaledEmbeddingPlusSinusoids) {
  const int64_t V = 6, C = kC;
  for (bool scale : {true, false}) {
    ModelRun run("transformer", Config(V, {{"dtype", std::string("float64")},
                                           {"scale_embeddings", scale}}));
    ASSERT_EQ(run.Create(), LLMSYS_STATUS_OK) << run.message();
    const runtime::Parameter& qkv =
        run.Param("decoder.layers.0.self_attn.qkv.weight");  // (3C, C)
    double* w = qkv.var->data.data_as<double>();
    for (int64_t r = C; r < 2 * C; ++r)
      for (int64_t c = 0; c < C; ++c) w[r * C + c] = r - C == c ? 1.0 : 0.0;
    const std::vector<double> embed =
        run.Param("embed.weight").var->data.ToDoubles();

    const Batch b{.B = 1,
                  .S = 2,
                  .T = 5,
                  .src = {3, 4},
                  .pad = {0, 0},
                  .tokens = {1, 5, 3, 3, 2},
                  .targets = {}};
    generate::Cache cache;
    for (auto [t0, t1] : {std::pair<int64_t, int64_t>{0, 3}, {3, 5}}) {
      ForwardResult r =
          Call(run, Step(b, t0, t1, cache), LLMSYS_MODE_GENERATE, t0);
      ASSERT_EQ(r.status, LLMSYS_STATUS_OK);
      cache = CacheOf(r);
      const std::vector<double> k =
          Named(cache, "cache.decoder.0.k").ToDoubles();  // (1, H, t1, D)
      ASSERT_EQ(k.size(), static_cast<size_t>(t1 * C));
      for (int64_t pos = t0; pos < t1; ++pos) {
        std::vector<double> x(static_cast<size_t>(C));
        double mean = 0, var = 0;
        const int64_t token = static_cast<int64_t>(b.tokens[pos]);
        for (int64_t c = 0; c < C; ++c) {
          const double angle =
              pos / std::pow(10000.0, static_cast<double>(c - c % 2) / C);
          x[c] = embed[token * C + c] * (scale ? std::sqrt(double{C}) : 1.0) +
                 (c % 2 == 0 ? std::sin(angle) : std::cos(angle));
          mean += x[c] / C;
        }
        for (int64_t c = 0; c < C; ++c)
          var += (x[c] - mean) * (x[c] - mean) / C;
        for (int64_t c = 0; c < C; ++c) {
          const double expected = (x[c] - mean) / std::sqrt(var + 1e-5);
          const double got = k[((c / kD) * t1 + pos) * kD + c % kD];
          EXPECT_NEAR(got, expected, 1e-12)
              << "position " << pos << ", channel " << c << ", scale " << scale;
        }
      }
    }
  }
}

// Prefill of 2 tokens (no cache: EVAL's logits), a chunk of 3 after them
// (the bottom-right causal path) and one more token give the logits of one
// full EVAL forward to 1e-9 in float64; the self-attention cache grows, the
// cross-attention cache comes back unchanged, and no input is written.
TEST(TransformerTest, CachedGenerationMatchesTheFullForward) {
  const int64_t V = 13, T = 6, S = 5;
  ModelRun run("transformer", Config(V, {{"dtype", std::string("float64")}}));
  ASSERT_EQ(run.Create(), LLMSYS_STATUS_OK) << run.message();
  const Batch b = RandomBatch(V, {5, 3}, S, T);
  ForwardResult full = Call(run, b.Make(false), LLMSYS_MODE_EVAL);
  ASSERT_EQ(full.status, LLMSYS_STATUS_OK);
  EXPECT_TRUE(CacheOf(full).empty()) << "EVAL outputs no cache";

  generate::Cache cache;
  for (auto [t0, t1] : {std::pair<int64_t, int64_t>{0, 2}, {2, 5}, {5, 6}}) {
    const std::string what = "positions " + std::to_string(t0) + ".." +
                             std::to_string(t1 - 1) + " after " +
                             std::to_string(t0);
    std::vector<std::vector<double>> before;
    for (const auto& [name, t] : cache) before.push_back(t.ToDoubles());
    ForwardResult r =
        Call(run, Step(b, t0, t1, cache), LLMSYS_MODE_GENERATE, t0);
    ASSERT_EQ(r.status, LLMSYS_STATUS_OK) << what;
    EXPECT_EQ(r.outputs.count("loss"), 0u);
    EXPECT_EQ(r.outputs.at("logits")->data.shape(),
              (tensor::Shape{b.B, t1 - t0, V}));
    ExpectClose(r.outputs.at("logits")->data.ToDoubles(),
                Positions(full, t0, t1), 1e-9, what);
    for (size_t i = 0; i < cache.size(); ++i)
      EXPECT_EQ(cache[i].second.ToDoubles(), before[i])
          << cache[i].first << " was written in place";
    generate::Cache next = CacheOf(r);
    ASSERT_EQ(next.size(), 4u * kLayers) << what;
    for (int64_t i = 0; i < kLayers; ++i) {
      const std::string name = "cache.decoder." + std::to_string(i) + ".";
      for (const char* kv : {"k", "v"})
        EXPECT_EQ(Named(next, name + kv).shape(),
                  (tensor::Shape{b.B, kH, t1, kD}))
            << name << kv;
      for (const char* kv : {"cross_k", "cross_v"}) {
        EXPECT_EQ(Named(next, name + kv).shape(),
                  (tensor::Shape{b.B, kH, S, kD}))
            << name << kv;
        if (t0 > 0) {
          EXPECT_EQ(Named(next, name + kv).ToDoubles(),
                    Named(cache, name + kv).ToDoubles())
              << name << kv << " changed";
        }
      }
    }
    cache = std::move(next);
  }
}

// The host reorders and drops rows (beam search): with the cache rows and
// the source rows selected alike, row i continues the sequence it picked.
TEST(TransformerTest, CacheRowsFollowTheHostsSelection) {
  const int64_t V = 11, T = 3, S = 4;
  ModelRun run("transformer", Config(V, {{"dtype", std::string("float64")}}));
  ASSERT_EQ(run.Create(), LLMSYS_STATUS_OK) << run.message();
  Batch b = RandomBatch(V, {4, 2, 3}, S, T + 1);
  ForwardResult prefill = Call(run, Step(b, 0, T, {}), LLMSYS_MODE_GENERATE);
  ASSERT_EQ(prefill.status, LLMSYS_STATUS_OK);

  const std::vector<int64_t> rows = {2, 0};  // row 1 dropped, 2 and 0 swap
  Batch picked{.B = 2, .S = S, .T = T + 1};
  for (int64_t r : rows) {
    for (int64_t s = 0; s < S; ++s) {
      picked.src.push_back(b.src[static_cast<size_t>(r * S + s)]);
      picked.pad.push_back(b.pad[static_cast<size_t>(r * S + s)]);
    }
    for (int64_t t = 0; t <= T; ++t)
      picked.tokens.push_back(b.tokens[static_cast<size_t>(r * (T + 1) + t)]);
  }
  absl::StatusOr<generate::Cache> cache =
      generate::SelectCacheRows(CacheOf(prefill), rows);
  ASSERT_TRUE(cache.ok()) << cache.status();
  ForwardResult next =
      Call(run, Step(picked, T, T + 1, *cache), LLMSYS_MODE_GENERATE, T);
  ASSERT_EQ(next.status, LLMSYS_STATUS_OK);
  ForwardResult full = Call(run, picked.Make(false), LLMSYS_MODE_EVAL);
  ASSERT_EQ(full.status, LLMSYS_STATUS_OK);
  ExpectClose(next.outputs.at("logits")->data.ToDoubles(),
              Positions(full, T, T + 1), 1e-9, "reordered rows");
}

TEST(TransformerTest, CacheErrorsSayWhatIsWrong) {
  const int64_t V = 7;
  ModelRun run("transformer", Config(V));
  ASSERT_EQ(run.Create(), LLMSYS_STATUS_OK) << run.message();
  const Batch b = RandomBatch(V, {5}, 5, 13);
  ForwardResult r = run.Forward(Step(b, 2, 3, {}), LLMSYS_MODE_GENERATE, 2);
  EXPECT_EQ(r.status, LLMSYS_STATUS_INVALID_ARGUMENT);
  EXPECT_NE(r.message.find("past_length 2 needs the input "
                           "'cache.decoder.0.cross_k'"),
            std::string::npos)
      << r.message;
  EXPECT_EQ(r.leaked_handles, 0);

  ForwardResult prefill = Call(run, Step(b, 0, 2, {}), LLMSYS_MODE_GENERATE);
  ASSERT_EQ(prefill.status, LLMSYS_STATUS_OK);
  // The cache of a 5-token source with a mask of 4.
  Batch shorter = b;
  shorter.S = 4;
  shorter.src.resize(4), shorter.pad.resize(4);
  r = run.Forward(Step(shorter, 2, 3, CacheOf(prefill)), LLMSYS_MODE_GENERATE,
                  2);
  EXPECT_EQ(r.status, LLMSYS_STATUS_INVALID_ARGUMENT);
  EXPECT_NE(r.message.find("cache input 'cache.decoder.0.cross_k' must be (B, "
                           "H, S, D) = (1, 2, 4, 4), got (1, 2, 5, 4)"),
            std::string::npos)
      << r.message;
  // A self-attention cache of 2 positions given as 3.
  r = run.Forward(Step(b, 3, 4, CacheOf(prefill)), LLMSYS_MODE_GENERATE, 3);
  EXPECT_EQ(r.status, LLMSYS_STATUS_INVALID_ARGUMENT);
  EXPECT_NE(r.message.find("cache input 'cache.decoder.0.k' must be (B, H, "
                           "past_length, D) = (1, 2, 3, 4), got (1, 2, 2, 4)"),
            std::string::npos)
      << r.message;
  // Past max_positions (12).
  r = run.Forward(Step(b, 2, 13, CacheOf(prefill)), LLMSYS_MODE_GENERATE, 2);
  EXPECT_EQ(r.status, LLMSYS_STATUS_INVALID_ARGUMENT);
  EXPECT_NE(r.message.find("past_length 2 + 11 new tokens exceed "
                           "max_positions 12"),
            std::string::npos)
      << r.message;
}

// ---- training ----

// Reversing 4-symbol sequences over 8 symbols (ids 3..10; 0 <pad>, 1 <bos>,
// 2 <eos>) needs cross-attention by position: a few hundred Adam steps on
// one fixed set of 16 pairs bring the cross entropy far below its start.
TEST(TransformerTest, LearnsToReverseSequences) {
  const int64_t V = 11, B = 16, S = 4, T = S + 1;
  ModelRun run("transformer", Config(V, {{"n_embd", int64_t{16}},
                                         {"ffn_dim", int64_t{32}},
                                         {"n_encoder_layers", int64_t{1}},
                                         {"n_decoder_layers", int64_t{1}},
                                         {"label_smoothing", 0.0}}));
  ASSERT_EQ(run.Create(), LLMSYS_STATUS_OK) << run.message();
  Batch b{.B = B, .S = S, .T = T};
  b.src = Ids(B * S, 3, V, 5);
  b.pad.assign(static_cast<size_t>(B * S), 0);
  for (int64_t r = 0; r < B; ++r) {
    b.tokens.push_back(1);
    for (int64_t t = 0; t < S; ++t) {
      const double x = b.src[static_cast<size_t>(r * S + S - 1 - t)];
      b.targets.push_back(x);
      if (t + 1 < T) b.tokens.push_back(x);
    }
    b.targets.push_back(2);
  }
  const Inputs inputs = b.Make();

  // Adam (beta 0.9, 0.98 as fairseq), lr 1e-2, no weight decay.
  const double lr = 1e-2, b1 = 0.9, b2 = 0.98, eps = 1e-8;
  std::vector<std::vector<double>> m, v;
  for (const runtime::Parameter& p : run.params().all()) {
    m.emplace_back(static_cast<size_t>(p.var->data.numel()), 0.0);
    v.emplace_back(static_cast<size_t>(p.var->data.numel()), 0.0);
  }
  auto adam = [&](int step, size_t k, float* w, const std::vector<double>& g) {
    for (size_t i = 0; i < g.size(); ++i) {
      m[k][i] = b1 * m[k][i] + (1 - b1) * g[i];
      v[k][i] = b2 * v[k][i] + (1 - b2) * g[i] * g[i];
      const double mh = m[k][i] / (1 - std::pow(b1, step));
      const double vh = v[k][i] / (1 - std::pow(b2, step));
      w[i] -= static_cast<float>(lr * mh / (std::sqrt(vh) + eps));
    }
  };
  Losses l;
  ASSERT_NO_FATAL_FAILURE(Train(run, inputs, 200, adam, &l));
  EXPECT_GT(l.first, 0.5 * std::log(V)) << l.first;
  EXPECT_LT(l.last, 0.1 * l.first)
      << "loss went from " << l.first << " to " << l.last;
}

}  // namespace
}  // namespace llmsys::models_test
