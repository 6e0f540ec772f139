// Tests of the gpt model (plugins/models/gpt), loaded from the built gpt.so
// with the reference operators and driven through its C struct as the host
// drives it: create() declares the parameters into a ParameterStore,
// forward() runs on a fresh runtime::Graph, the test reads the "loss" and
// "logits" outputs and runs autograd::Backward. Sizes are tiny: the
// reference operators are plain loops.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "framework/generate/decoding.h"
#include "tests/plugins/models/model_harness.h"

namespace llmsys::models_test {
namespace {

// A small config; `extra` overrides or adds to it.
Overrides Config(int64_t vocab, const Overrides& extra = {}) {
  return Merge({{"vocab_size", vocab},
                {"block_size", int64_t{6}},
                {"n_layer", int64_t{2}},
                {"n_head", int64_t{2}},
                {"n_embd", int64_t{8}}},
               extra);
}

// Tokens (B, T) with values from a fixed pseudo-random sequence below `vocab`.
std::vector<double> Tokens(int64_t n, int64_t vocab, uint64_t seed = 7) {
  std::vector<double> t;
  uint64_t s = seed;
  for (int64_t i = 0; i < n; ++i) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    t.push_back(static_cast<double>((s >> 33) % static_cast<uint64_t>(vocab)));
  }
  return t;
}

Inputs TokensAndTargets(int64_t B, int64_t T, int64_t vocab,
                        std::vector<double> targets = {}) {
  std::vector<double> tokens = Tokens(B * T, vocab);
  if (targets.empty()) targets = Tokens(B * T, vocab, /*seed=*/11);
  return {{"tokens", MakeTensor({B, T}, tokens, tensor::kI64)},
          {"targets", MakeTensor({B, T}, targets, tensor::kI64)}};
}

// The loss of one forward; fails the test on an error.
double Loss(ModelRun& run, const Inputs& inputs, uint32_t mode) {
  ForwardResult r = run.Forward(inputs, mode);
  EXPECT_EQ(r.status, LLMSYS_STATUS_OK) << r.message;
  if (r.status != LLMSYS_STATUS_OK) return NAN;
  return r.outputs.at("loss")->data.ToDoubles()[0];
}

TEST(GptTest, ParametersFollowTheFormulaAndNaming) {
  const int64_t V = 11, T = 6, L = 2, C = 8;
  ModelRun run("gpt", Config(V));
  ASSERT_EQ(run.Create(), LLMSYS_STATUS_OK) << run.message();
  // wte + wpe + per block (ln1, qkv, proj, ln2, fc, proj) + ln_f
  EXPECT_EQ(NumParameters(run),
            V * C + T * C + L * (12 * C * C + 13 * C) + 2 * C);
  std::vector<std::string> names;
  for (const runtime::Parameter& p : run.params().all())
    names.push_back(p.name);
  const std::vector<std::string> block0 = {
      "blocks.0.ln1.weight",       "blocks.0.ln1.bias",
      "blocks.0.ln2.weight",       "blocks.0.ln2.bias",
      "blocks.0.attn.qkv.weight",  "blocks.0.attn.qkv.bias",
      "blocks.0.attn.proj.weight", "blocks.0.attn.proj.bias",
      "blocks.0.mlp.fc.weight",    "blocks.0.mlp.fc.bias",
      "blocks.0.mlp.proj.weight",  "blocks.0.mlp.proj.bias"};
  ASSERT_EQ(names.size(), 2u + 2 * block0.size() + 2);
  EXPECT_EQ(names[0], "wte.weight");
  EXPECT_EQ(names[1], "wpe.weight");
  EXPECT_EQ(std::vector<std::string>(names.begin() + 2, names.begin() + 14),
            block0);
  EXPECT_EQ(names[names.size() - 2], "ln_f.weight");
  EXPECT_EQ(names.back(), "ln_f.bias");
  EXPECT_EQ(run.Param("blocks.1.attn.qkv.weight").var->data.shape(),
            (tensor::Shape{3 * C, C}));
  EXPECT_EQ(run.Param("blocks.1.mlp.fc.weight").var->data.shape(),
            (tensor::Shape{4 * C, C}));
  // Biases and LayerNorm weights are excluded from weight decay; they start
  // at zeros and ones.
  for (const runtime::Parameter& p : run.params().all()) {
    const bool vector = p.var->data.ndim() == 1;
    EXPECT_EQ((p.flags & LLMSYS_PARAMETER_NO_DECAY) != 0, vector) << p.name;
    EXPECT_TRUE(tensor::kF32 == p.var->data.dtype()) << p.name;
    if (!vector) continue;
    const double expected = p.name.find(".bias") != std::string::npos ? 0 : 1;
    for (double x : p.var->data.ToDoubles()) ASSERT_EQ(x, expected) << p.name;
  }

  // Untied, without biases, in float64: a separate lm_head, weight-only
  // LayerNorms.
  ModelRun untied("gpt", Config(V, {{"tie_embeddings", false},
                                    {"bias", false},
                                    {"dtype", std::string("float64")}}));
  ASSERT_EQ(untied.Create(), LLMSYS_STATUS_OK) << untied.message();
  EXPECT_EQ(NumParameters(untied),
            2 * V * C + T * C + L * (12 * C * C + 2 * C) + C);
  EXPECT_NE(untied.params().Find("lm_head.weight"), nullptr);
  EXPECT_EQ(untied.params().Find("ln_f.bias"), nullptr);
  EXPECT_TRUE(tensor::kF64 == untied.Param("wte.weight").var->data.dtype());
}

TEST(GptTest, InitialLossIsNearLogVocabAndLogitsHaveTheirShape) {
  const int64_t V = 32, B = 2, T = 6;
  ModelRun run("gpt", Config(V));
  ASSERT_EQ(run.Create(), LLMSYS_STATUS_OK) << run.message();
  ForwardResult r = run.Forward(TokensAndTargets(B, T, V), LLMSYS_MODE_EVAL);
  ASSERT_EQ(r.status, LLMSYS_STATUS_OK) << r.message;
  EXPECT_EQ(r.leaked_handles, 0);
  ASSERT_TRUE(r.outputs.count("loss") && r.outputs.count("logits"));
  EXPECT_NEAR(r.outputs["loss"]->data.ToDoubles()[0], std::log(V), 0.1);
  EXPECT_EQ(r.outputs["logits"]->data.shape(), (tensor::Shape{B, T, V}));

  // Generation: tokens only, logits only (shorter than block_size is fine).
  ForwardResult g =
      run.Forward({{"tokens", MakeTensor({1, 3}, {1, 2, 3}, tensor::kI64)}},
                  LLMSYS_MODE_GENERATE);
  ASSERT_EQ(g.status, LLMSYS_STATUS_OK) << g.message;
  EXPECT_EQ(g.outputs.count("loss"), 0u);
  EXPECT_EQ(g.outputs.at("logits")->data.shape(), (tensor::Shape{1, 3, V}));
}

// Changing the last token changes no logits before it (causal attention),
// and the same token at two positions gets different logits (positions).
TEST(GptTest, LogitsAreCausalAndPositionAware) {
  const int64_t V = 10, T = 5;
  ModelRun run("gpt", Config(V, {{"init_std", 0.5}}));
  ASSERT_EQ(run.Create(), LLMSYS_STATUS_OK) << run.message();
  auto logits = [&](std::vector<double> tokens) {
    ForwardResult r =
        run.Forward({{"tokens", MakeTensor({1, T}, tokens, tensor::kI64)}},
                    LLMSYS_MODE_EVAL);
    EXPECT_EQ(r.status, LLMSYS_STATUS_OK) << r.message;
    return r.status == LLMSYS_STATUS_OK
               ? r.outputs.at("logits")->data.ToDoubles()
               : std::vector<double>(T * V);
  };
  const std::vector<double> a = logits({3, 3, 1, 4, 1});
  const std::vector<double> b = logits({3, 3, 1, 4, 9});
  EXPECT_EQ(std::vector<double>(a.begin(), a.end() - V),
            std::vector<double>(b.begin(), b.end() - V));
  EXPECT_NE(std::vector<double>(a.end() - V, a.end()),
            std::vector<double>(b.end() - V, b.end()));
  EXPECT_NE(std::vector<double>(a.begin(), a.begin() + V),
            std::vector<double>(a.begin() + V, a.begin() + 2 * V));
}

TEST(GptTest, ErrorsSayWhatIsWrong) {
  ModelRun run("gpt", Config(5));
  ASSERT_EQ(run.Create(), LLMSYS_STATUS_OK) << run.message();
  ForwardResult r = run.Forward(TokensAndTargets(1, 7, 5), LLMSYS_MODE_EVAL);
  EXPECT_EQ(r.status, LLMSYS_STATUS_INVALID_ARGUMENT);
  EXPECT_NE(r.message.find("sequence length 7 exceeds block_size 6"),
            std::string::npos)
      << r.message;
  EXPECT_EQ(r.leaked_handles, 0);

  r = run.Forward({{"tokens", MakeTensor({1, 2}, {0, 1}, tensor::kI64)}},
                  LLMSYS_MODE_TRAIN);
  EXPECT_EQ(r.status, LLMSYS_STATUS_INVALID_ARGUMENT);
  EXPECT_NE(r.message.find("training needs an input 'targets'"),
            std::string::npos)
      << r.message;

  r = run.Forward({{"tokns", MakeTensor({1, 2}, {0, 1}, tensor::kI64)}},
                  LLMSYS_MODE_EVAL);
  EXPECT_EQ(r.status, LLMSYS_STATUS_INVALID_ARGUMENT);
  EXPECT_NE(r.message.find("needs an input 'tokens' (given: tokns)"),
            std::string::npos)
      << r.message;

  // A token out of the vocabulary: the embedding op's own error, intact.
  r = run.Forward({{"tokens", MakeTensor({1, 2}, {0, 9}, tensor::kI64)}},
                  LLMSYS_MODE_EVAL);
  EXPECT_EQ(r.status, LLMSYS_STATUS_INVALID_ARGUMENT) << r.message;
  EXPECT_NE(r.message.find("embedding"), std::string::npos) << r.message;
  EXPECT_EQ(r.leaked_handles, 0);

  ModelRun bad("gpt",
               Config(5, {{"n_embd", int64_t{10}}, {"n_head", int64_t{4}}}));
  EXPECT_EQ(bad.Create(), LLMSYS_STATUS_INVALID_ARGUMENT);
  EXPECT_NE(bad.message().find("n_embd (10) must be a multiple of n_head (4)"),
            std::string::npos)
      << bad.message();
}

// d(loss)/d(parameter element) by backward and by central differences, in
// float64, for elements of several parameters. In TRAIN mode with dropout
// the dispatcher's call counter is reset before every forward, so each one
// draws the same masks.
void GradientCheck(uint32_t mode, double dropout) {
  const int64_t V = 7, B = 2, T = 4;
  ModelRun run("gpt", Config(V, {{"dtype", std::string("float64")},
                                 {"init_std", 0.3},
                                 {"dropout", dropout}}));
  ASSERT_EQ(run.Create(), LLMSYS_STATUS_OK) << run.message();
  std::vector<double> targets = Tokens(B * T, V, 11);
  targets[3] = -100;  // ignored
  const Inputs inputs = TokensAndTargets(B, T, V, targets);
  const uint64_t calls = run.ops().calls();

  ForwardResult r = run.Forward(inputs, mode);
  ASSERT_EQ(r.status, LLMSYS_STATUS_OK) << r.message;
  ASSERT_TRUE(autograd::Backward(r.outputs.at("loss")).ok());

  CheckGradients(
      run,
      [&] {
        run.ops().set_calls(calls);
        return Loss(run, inputs, mode);
      },
      {"wte.weight", "wpe.weight", "blocks.0.ln1.weight", "blocks.0.ln1.bias",
       "blocks.0.attn.qkv.weight", "blocks.0.attn.qkv.bias",
       "blocks.1.attn.proj.weight", "blocks.1.ln2.weight",
       "blocks.1.mlp.fc.weight", "blocks.1.mlp.proj.bias", "ln_f.weight",
       "ln_f.bias"},
      /*h=*/1e-5, /*tolerance=*/1e-6);
}

TEST(GptTest, GradientsMatchCentralDifferencesInFloat64) {
  GradientCheck(LLMSYS_MODE_EVAL, 0.0);
}

TEST(GptTest, GradientsMatchCentralDifferencesWithDropout) {
  GradientCheck(LLMSYS_MODE_TRAIN, 0.2);
}

TEST(GptTest, PlainSgdOverfitsOneBatch) {
  const int64_t V = 16, B = 2, T = 8;
  ModelRun run("gpt", Config(V, {{"block_size", T},
                                 {"n_layer", int64_t{1}},
                                 {"n_embd", int64_t{16}}}));
  ASSERT_EQ(run.Create(), LLMSYS_STATUS_OK) << run.message();
  const Inputs inputs = TokensAndTargets(B, T, V);
  Losses l;
  ASSERT_NO_FATAL_FAILURE(Train(run, inputs, 30, PlainSgd(0.5), &l));
  EXPECT_NEAR(l.first, std::log(V), 0.1);
  EXPECT_LT(l.last, 0.5 * l.first)
      << "loss went from " << l.first << " to " << l.last;
}

TEST(GptTest, DropoutOnlyInTraining) {
  const int64_t V = 9, B = 1, T = 5;
  const Inputs inputs = TokensAndTargets(B, T, V);
  {
    ModelRun run("gpt", Config(V));  // dropout 0
    ASSERT_EQ(run.Create(), LLMSYS_STATUS_OK) << run.message();
    ForwardResult a = run.Forward(inputs, LLMSYS_MODE_TRAIN);
    ForwardResult b = run.Forward(inputs, LLMSYS_MODE_TRAIN);
    ForwardResult e = run.Forward(inputs, LLMSYS_MODE_EVAL);
    ASSERT_EQ(a.status, LLMSYS_STATUS_OK) << a.message;
    ASSERT_EQ(b.status, LLMSYS_STATUS_OK) << b.message;
    ASSERT_EQ(e.status, LLMSYS_STATUS_OK) << e.message;
    EXPECT_EQ(a.outputs["logits"]->data.ToDoubles(),
              b.outputs["logits"]->data.ToDoubles());
    EXPECT_EQ(a.outputs["loss"]->data.ToDoubles(),
              e.outputs["loss"]->data.ToDoubles());
  }
  ModelRun run("gpt", Config(V, {{"dropout", 0.5}}));
  ASSERT_EQ(run.Create(), LLMSYS_STATUS_OK) << run.message();
  ForwardResult e1 = run.Forward(inputs, LLMSYS_MODE_EVAL);
  ForwardResult t = run.Forward(inputs, LLMSYS_MODE_TRAIN);
  ForwardResult e2 = run.Forward(inputs, LLMSYS_MODE_EVAL);
  ASSERT_EQ(t.status, LLMSYS_STATUS_OK) << t.message;
  EXPECT_EQ(e1.outputs["logits"]->data.ToDoubles(),
            e2.outputs["logits"]->data.ToDoubles());
  EXPECT_NE(e1.outputs["logits"]->data.ToDoubles(),
            t.outputs["logits"]->data.ToDoubles());
}

// ---- the key/value cache (LLMSYS_MODE_GENERATE, llmsys/model.h) ----

// The "cache." outputs of a GENERATE call, by name.
generate::Cache CacheOf(const ForwardResult& r) {
  generate::Cache cache;
  for (const auto& [name, var] : r.outputs)
    if (name.rfind("cache.", 0) == 0) cache.emplace_back(name, var->data);
  return cache;
}

// Inputs of a GENERATE call: tokens and the cache.
Inputs WithCache(tensor::Tensor tokens, const generate::Cache& cache) {
  Inputs in = {{"tokens", std::move(tokens)}};
  for (const auto& [name, t] : cache) in.emplace_back(name, t);
  return in;
}

// |a - b| <= tol (1 + |b|) elementwise; the message names the first miss.
void ExpectClose(const std::vector<double>& a, const std::vector<double>& b,
                 double tol, const std::string& what) {
  ASSERT_EQ(a.size(), b.size()) << what;
  for (size_t i = 0; i < a.size(); ++i)
    ASSERT_LE(std::abs(a[i] - b[i]), tol * (1 + std::abs(b[i])))
        << what << ": element " << i << " is " << a[i] << ", expected " << b[i];
}

// Columns [t0, t1) of (B, T, V) logits, row-major.
std::vector<double> Positions(const ForwardResult& r, int64_t t0, int64_t t1) {
  absl::StatusOr<tensor::Tensor> s =
      r.outputs.at("logits")->data.Slice(1, t0, t1);
  EXPECT_TRUE(s.ok()) << s.status();
  return s.ok() ? s->ToDoubles() : std::vector<double>{};
}

// Prefill, a chunk of several tokens after a past (the explicit
// bottom-right causal path) and single tokens give the logits of one full
// forward, in float32 to 1e-5 and float64 to 1e-12; the cache grows by
// the new tokens, holds (B, H, P + T, D) per block, and the inputs given
// are never written.
void CachedMatchesFull(const std::string& dtype, double tol) {
  const int64_t V = 13, B = 2, T = 6, H = 2, D = 4;
  ModelRun run("gpt", Config(V, {{"init_std", 0.5}, {"dtype", dtype}}));
  ASSERT_EQ(run.Create(), LLMSYS_STATUS_OK) << run.message();
  const std::vector<double> tokens = Tokens(B * T, V);
  auto chunk = [&](int64_t t0, int64_t t1) {
    std::vector<double> v;
    for (int64_t b = 0; b < B; ++b)
      for (int64_t t = t0; t < t1; ++t)
        v.push_back(tokens[static_cast<size_t>(b * T + t)]);
    return MakeTensor({B, t1 - t0}, v, tensor::kI64);
  };
  ForwardResult full =
      run.Forward({{"tokens", chunk(0, T)}}, LLMSYS_MODE_GENERATE);
  ASSERT_EQ(full.status, LLMSYS_STATUS_OK) << full.message;

  // Steps [0, 2) from nothing, [2, 5) after 2, [5, 6) after 5.
  generate::Cache cache;
  for (auto [t0, t1] : {std::pair<int64_t, int64_t>{0, 2}, {2, 5}, {5, 6}}) {
    std::vector<std::vector<double>> before;
    for (const auto& [name, t] : cache) before.push_back(t.ToDoubles());
    ForwardResult r =
        run.Forward(WithCache(chunk(t0, t1), cache), LLMSYS_MODE_GENERATE, t0);
    ASSERT_EQ(r.status, LLMSYS_STATUS_OK) << r.message;
    EXPECT_EQ(r.leaked_handles, 0);
    EXPECT_EQ(r.outputs.at("logits")->data.shape(),
              (tensor::Shape{B, t1 - t0, V}));
    ExpectClose(
        r.outputs.at("logits")->data.ToDoubles(), Positions(full, t0, t1), tol,
        "logits of positions " + std::to_string(t0) + ".." +
            std::to_string(t1 - 1) + " with past_length " + std::to_string(t0));
    for (size_t i = 0; i < cache.size(); ++i)
      EXPECT_EQ(cache[i].second.ToDoubles(), before[i])
          << cache[i].first << " was written in place";
    cache = CacheOf(r);
    ASSERT_EQ(cache.size(), 4u);  // k and v of 2 blocks
    EXPECT_EQ(cache[0].first, "cache.blocks.0.k");
    EXPECT_EQ(cache[1].first, "cache.blocks.0.v");
    for (const auto& [name, t] : cache)
      EXPECT_EQ(t.shape(), (tensor::Shape{B, H, t1, D})) << name;
  }
  // The cache of the whole sequence is the full forward's.
  generate::Cache whole = CacheOf(full);
  ASSERT_EQ(whole.size(), cache.size());
  for (size_t i = 0; i < cache.size(); ++i)
    ExpectClose(cache[i].second.ToDoubles(), whole[i].second.ToDoubles(), tol,
                cache[i].first);
}

TEST(GptTest, CachedLogitsMatchFullRecomputeFloat32) {
  CachedMatchesFull("float32", 1e-5);
}

TEST(GptTest, CachedLogitsMatchFullRecomputeFloat64) {
  CachedMatchesFull("float64", 1e-12);
}

// The host may reorder and drop cache rows (beam search, finished rows):
// row i of the next call continues the sequence of the row it selected.
TEST(GptTest, CacheRowsFollowTheHostsSelection) {
  const int64_t V = 11, T = 4;
  ModelRun run("gpt", Config(V, {{"init_std", 0.5}}));
  ASSERT_EQ(run.Create(), LLMSYS_STATUS_OK) << run.message();
  const std::vector<double> a = {1, 2, 3, 4}, b = {5, 6, 7, 8},
                            c = {9, 10, 0, 1};
  std::vector<double> abc = a;
  abc.insert(abc.end(), b.begin(), b.end());
  abc.insert(abc.end(), c.begin(), c.end());
  ForwardResult prefill =
      run.Forward({{"tokens", MakeTensor({3, T}, abc, tensor::kI64)}},
                  LLMSYS_MODE_GENERATE);
  ASSERT_EQ(prefill.status, LLMSYS_STATUS_OK) << prefill.message;
  // Continue c then a (b dropped), with the next tokens 3 and 6.
  absl::StatusOr<generate::Cache> picked =
      generate::SelectCacheRows(CacheOf(prefill), {2, 0});
  ASSERT_TRUE(picked.ok()) << picked.status();
  ForwardResult next =
      run.Forward(WithCache(MakeTensor({2, 1}, {3, 6}, tensor::kI64), *picked),
                  LLMSYS_MODE_GENERATE, T);
  ASSERT_EQ(next.status, LLMSYS_STATUS_OK) << next.message;

  std::vector<double> ca = c;
  ca.push_back(3);
  ca.insert(ca.end(), a.begin(), a.end());
  ca.push_back(6);
  ForwardResult full =
      run.Forward({{"tokens", MakeTensor({2, T + 1}, ca, tensor::kI64)}},
                  LLMSYS_MODE_GENERATE);
  ASSERT_EQ(full.status, LLMSYS_STATUS_OK) << full.message;
  ExpectClose(next.outputs.at("logits")->data.ToDoubles(),
              Positions(full, T, T + 1), 1e-5, "reordered rows");
}

TEST(GptTest, CacheErrorsSayWhatIsWrong) {
  const int64_t V = 7;
  ModelRun run("gpt", Config(V));  // block_size 6, 2 heads of 4
  ASSERT_EQ(run.Create(), LLMSYS_STATUS_OK) << run.message();
  auto tokens = [](int64_t t) {
    return MakeTensor({1, t}, std::vector<double>(static_cast<size_t>(t), 1),
                      tensor::kI64);
  };
  // No cache for a past.
  ForwardResult r =
      run.Forward({{"tokens", tokens(1)}}, LLMSYS_MODE_GENERATE, 3);
  EXPECT_EQ(r.status, LLMSYS_STATUS_INVALID_ARGUMENT);
  EXPECT_NE(r.message.find("past_length 3 needs the input "
                           "'cache.blocks.0.k'"),
            std::string::npos)
      << r.message;
  EXPECT_EQ(r.leaked_handles, 0);

  ForwardResult prefill =
      run.Forward({{"tokens", tokens(3)}}, LLMSYS_MODE_GENERATE);
  ASSERT_EQ(prefill.status, LLMSYS_STATUS_OK) << prefill.message;
  // A cache of 3 positions given as 2.
  r = run.Forward(WithCache(tokens(1), CacheOf(prefill)), LLMSYS_MODE_GENERATE,
                  2);
  EXPECT_EQ(r.status, LLMSYS_STATUS_INVALID_ARGUMENT);
  EXPECT_NE(r.message.find("cache input 'cache.blocks.0.k' must be (B, H, "
                           "past_length, D) = (1, 2, 2, 4), got (1, 2, 3, 4)"),
            std::string::npos)
      << r.message;
  // Past the context.
  r = run.Forward(WithCache(tokens(4), CacheOf(prefill)), LLMSYS_MODE_GENERATE,
                  3);
  EXPECT_EQ(r.status, LLMSYS_STATUS_INVALID_ARGUMENT);
  EXPECT_NE(r.message.find("past_length 3 + 4 new tokens exceed block_size 6"),
            std::string::npos)
      << r.message;
  // past_length outside GENERATE; and EVAL outputs no cache.
  r = run.Forward({{"tokens", tokens(2)}}, LLMSYS_MODE_EVAL, 1);
  EXPECT_EQ(r.status, LLMSYS_STATUS_INVALID_ARGUMENT);
  EXPECT_NE(r.message.find("only meaningful in LLMSYS_MODE_GENERATE"),
            std::string::npos)
      << r.message;
  r = run.Forward({{"tokens", tokens(2)}}, LLMSYS_MODE_EVAL);
  ASSERT_EQ(r.status, LLMSYS_STATUS_OK) << r.message;
  EXPECT_TRUE(CacheOf(r).empty());
}

}  // namespace
}  // namespace llmsys::models_test
