// Tests of the bert model (plugins/models/bert), loaded from the built
// bert.so with the reference operators and driven through its C struct as
// the host drives it (tests/plugins/models/model_harness.h). Sizes are
// tiny: the reference operators are plain loops.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "framework/data/masking.h"
#include "tests/plugins/models/model_harness.h"

namespace llmsys::models_test {
namespace {

// A small config (dropout off unless asked); `extra` overrides or adds.
Overrides Config(int64_t vocab, const Overrides& extra = {}) {
  return Merge({{"vocab_size", vocab},
                {"block_size", int64_t{6}},
                {"n_layer", int64_t{2}},
                {"n_head", int64_t{2}},
                {"n_embd", int64_t{8}},
                {"dropout", 0.0},
                {"attention_dropout", 0.0}},
               extra);
}

// `n` values from a fixed pseudo-random sequence below `vocab`.
std::vector<double> Tokens(int64_t n, int64_t vocab, uint64_t seed = 7) {
  std::vector<double> t;
  uint64_t s = seed;
  for (int64_t i = 0; i < n; ++i) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    t.push_back(static_cast<double>((s >> 33) % static_cast<uint64_t>(vocab)));
  }
  return t;
}

tensor::Tensor I64(int64_t B, int64_t T, const std::vector<double>& v) {
  return MakeTensor({B, T}, v, tensor::kI64);
}
tensor::Tensor I32(int64_t B, int64_t T, const std::vector<double>& v) {
  return MakeTensor({B, T}, v, tensor::kI32);
}

// The logits of one forward (fails the test on an error).
std::vector<double> Logits(ModelRun& run, const Inputs& inputs,
                           uint32_t mode = LLMSYS_MODE_EVAL) {
  ForwardResult r = run.Forward(inputs, mode);
  EXPECT_EQ(r.status, LLMSYS_STATUS_OK) << r.message;
  EXPECT_EQ(r.leaked_handles, 0);
  return r.status == LLMSYS_STATUS_OK ? r.outputs.at("logits")->data.ToDoubles()
                                      : std::vector<double>{};
}
double Loss(ModelRun& run, const Inputs& inputs, uint32_t mode) {
  ForwardResult r = run.Forward(inputs, mode);
  EXPECT_EQ(r.status, LLMSYS_STATUS_OK) << r.message;
  if (r.status != LLMSYS_STATUS_OK) return NAN;
  return r.outputs.at("loss")->data.ToDoubles()[0];
}

// Elements [t * V, (t + 1) * V) of row b of (B, T, V) logits.
std::vector<double> At(const std::vector<double>& logits, int64_t T, int64_t V,
                       int64_t b, int64_t t) {
  const auto begin = logits.begin() + (b * T + t) * V;
  return std::vector<double>(begin, begin + V);
}

TEST(BertTest, ParametersFollowTheFormulaAndNaming) {
  const int64_t V = 11, T = 6, L = 2, C = 8, F = 4 * C, S = 2;
  ModelRun run("bert", Config(V));
  ASSERT_EQ(run.Create(), LLMSYS_STATUS_OK) << run.message();
  // embeddings + LN, per block (qkv, attn dense, LN, fc, proj, LN), head
  // dense + LN + decoder bias (the decoder weight is the word embedding).
  EXPECT_EQ(NumParameters(run), V * C + T * C + S * C + 2 * C +
                                    L * (4 * C * C + 2 * F * C + 9 * C + F) +
                                    C * C + 3 * C + V);
  std::vector<std::string> names;
  for (const runtime::Parameter& p : run.params().all())
    names.push_back(p.name);
  const std::string e = "bert.embeddings.", b = "bert.encoder.layer.0.";
  const std::vector<std::string> head = {
      e + "word_embeddings.weight", e + "position_embeddings.weight",
      e + "token_type_embeddings.weight", e + "LayerNorm.weight",
      e + "LayerNorm.bias"};
  const std::vector<std::string> block0 = {
      b + "attention.self.qkv.weight",
      b + "attention.self.qkv.bias",
      b + "attention.output.dense.weight",
      b + "attention.output.dense.bias",
      b + "attention.output.LayerNorm.weight",
      b + "attention.output.LayerNorm.bias",
      b + "intermediate.dense.weight",
      b + "intermediate.dense.bias",
      b + "output.dense.weight",
      b + "output.dense.bias",
      b + "output.LayerNorm.weight",
      b + "output.LayerNorm.bias"};
  const std::vector<std::string> tail = {
      "cls.predictions.transform.dense.weight",
      "cls.predictions.transform.dense.bias",
      "cls.predictions.transform.LayerNorm.weight",
      "cls.predictions.transform.LayerNorm.bias", "cls.predictions.bias"};
  ASSERT_EQ(names.size(), head.size() + L * block0.size() + tail.size());
  EXPECT_EQ(std::vector<std::string>(names.begin(), names.begin() + 5), head);
  EXPECT_EQ(std::vector<std::string>(names.begin() + 5, names.begin() + 17),
            block0);
  EXPECT_EQ(std::vector<std::string>(names.end() - 5, names.end()), tail);
  EXPECT_EQ(run.Param(e + "token_type_embeddings.weight").var->data.shape(),
            (tensor::Shape{S, C}));
  EXPECT_EQ(run.Param("bert.encoder.layer.1.attention.self.qkv.weight")
                .var->data.shape(),
            (tensor::Shape{3 * C, C}));
  EXPECT_EQ(run.Param("bert.encoder.layer.1.intermediate.dense.weight")
                .var->data.shape(),
            (tensor::Shape{F, C}));
  EXPECT_EQ(
      run.Param("bert.encoder.layer.1.output.dense.weight").var->data.shape(),
      (tensor::Shape{C, F}));
  // Biases and LayerNorm weights: no weight decay, zeros and ones; weights
  // normal(0, 0.02).
  for (const runtime::Parameter& p : run.params().all()) {
    const bool vector = p.var->data.ndim() == 1;
    EXPECT_EQ((p.flags & LLMSYS_PARAMETER_NO_DECAY) != 0, vector) << p.name;
    EXPECT_TRUE(tensor::kF32 == p.var->data.dtype()) << p.name;
    const std::vector<double> w = p.var->data.ToDoubles();
    if (vector) {
      const double expected = p.name.find("bias") != std::string::npos ? 0 : 1;
      for (double x : w) ASSERT_EQ(x, expected) << p.name;
    } else {
      double sq = 0;
      for (double x : w) sq += x * x;
      EXPECT_NEAR(std::sqrt(sq / static_cast<double>(w.size())), 0.02, 0.012)
          << p.name;
    }
  }

  // Pre-LN adds the final LayerNorm; ffn_dim and type_vocab_size set the
  // sizes; float64 parameters.
  ModelRun pre("bert", Config(V, {{"pre_norm", true},
                                  {"ffn_dim", int64_t{5}},
                                  {"type_vocab_size", int64_t{3}},
                                  {"dtype", std::string("float64")}}));
  ASSERT_EQ(pre.Create(), LLMSYS_STATUS_OK) << pre.message();
  EXPECT_EQ(NumParameters(pre), V * C + T * C + 3 * C + 2 * C +
                                    L * (4 * C * C + 2 * 5 * C + 9 * C + 5) +
                                    2 * C + C * C + 3 * C + V);
  EXPECT_NE(pre.params().Find("bert.encoder.LayerNorm.weight"), nullptr);
  EXPECT_EQ(run.params().Find("bert.encoder.LayerNorm.weight"), nullptr);
  EXPECT_EQ(pre.Param("bert.encoder.layer.0.intermediate.dense.weight")
                .var->data.shape(),
            (tensor::Shape{5, C}));
  EXPECT_TRUE(tensor::kF64 ==
              pre.Param(e + "word_embeddings.weight").var->data.dtype());
}

TEST(BertTest, InitialLossIsNearLogVocabAndOutputsHaveTheirShapes) {
  const int64_t V = 32, B = 2, T = 6;
  ModelRun run("bert", Config(V));
  ASSERT_EQ(run.Create(), LLMSYS_STATUS_OK) << run.message();
  std::vector<double> targets(B * T, -100);
  targets[1] = 5, targets[8] = 17;
  ForwardResult r = run.Forward({{"tokens", I64(B, T, Tokens(B * T, V))},
                                 {"targets", I64(B, T, targets)}},
                                LLMSYS_MODE_EVAL);
  ASSERT_EQ(r.status, LLMSYS_STATUS_OK) << r.message;
  EXPECT_EQ(r.leaked_handles, 0);
  EXPECT_EQ(r.outputs.at("logits")->data.shape(), (tensor::Shape{B, T, V}));
  EXPECT_NEAR(r.outputs.at("loss")->data.ToDoubles()[0], std::log(V), 0.1);
  // Without targets (EVAL or GENERATE): logits only; shorter than
  // block_size is fine.
  ForwardResult g =
      run.Forward({{"tokens", I64(1, 3, {1, 2, 3})}}, LLMSYS_MODE_GENERATE);
  ASSERT_EQ(g.status, LLMSYS_STATUS_OK) << g.message;
  EXPECT_EQ(g.outputs.count("loss"), 0u);
  EXPECT_EQ(g.outputs.at("logits")->data.shape(), (tensor::Shape{1, 3, V}));
}

// "loss" is the mean over the positions whose target is not -100 of
// -log softmax(logits)[target], computed here from the "logits" output;
// "cls.predictions.bias" adds to every position's logits.
TEST(BertTest, LossIsTheMeanCrossEntropyOverPredictedPositions) {
  const int64_t V = 9, B = 2, T = 5;
  ModelRun run("bert", Config(V, {{"dtype", std::string("float64")},
                                  {"init_std", 0.5}}));
  ASSERT_EQ(run.Create(), LLMSYS_STATUS_OK) << run.message();
  const std::vector<double> targets = {-100, 3,    -100, -100, 8,
                                       0,    -100, 7,    -100, -100};
  const Inputs inputs = {{"tokens", I64(B, T, Tokens(B * T, V))},
                         {"targets", I64(B, T, targets)}};
  ForwardResult r = run.Forward(inputs, LLMSYS_MODE_EVAL);
  ASSERT_EQ(r.status, LLMSYS_STATUS_OK) << r.message;
  const std::vector<double> logits = r.outputs.at("logits")->data.ToDoubles();
  double sum = 0;
  int count = 0;
  for (int64_t i = 0; i < B * T; ++i) {
    if (targets[static_cast<size_t>(i)] == -100) continue;
    const auto row = logits.begin() + i * V;
    const double m = *std::max_element(row, row + V);
    double z = 0;
    for (int64_t v = 0; v < V; ++v) z += std::exp(row[v] - m);
    sum += m + std::log(z) - row[static_cast<int64_t>(targets[i])];
    ++count;
  }
  const double loss = r.outputs.at("loss")->data.ToDoubles()[0];
  EXPECT_NEAR(loss, sum / count, 1e-12);
  EXPECT_GT(std::abs(loss - std::log(V)), 1e-3);  // not a trivial value

  // The decoder bias: + 0.25 on id 2 moves exactly that column.
  run.Param("cls.predictions.bias").var->data.data_as<double>()[2] += 0.25;
  const std::vector<double> shifted = Logits(run, inputs);
  ASSERT_EQ(shifted.size(), logits.size());
  for (size_t i = 0; i < logits.size(); ++i)
    ASSERT_NEAR(shifted[i] - logits[i], i % V == 2 ? 0.25 : 0.0, 1e-12) << i;
}

// Changing a padded token changes no logits at real positions (its key is
// masked), while without the mask it would.
TEST(BertTest, PaddedTokensDoNotChangeRealPositions) {
  const int64_t V = 10, B = 2, T = 5;
  ModelRun run("bert", Config(V, {{"init_std", 0.5}}));
  ASSERT_EQ(run.Create(), LLMSYS_STATUS_OK) << run.message();
  // Row 0 has 3 real tokens, row 1 has 5.
  const std::vector<double> pad = {0, 0, 0, 1, 1, 0, 0, 0, 0, 0};
  std::vector<double> a = {4, 5, 6, 0, 0, 7, 8, 9, 4, 5};
  std::vector<double> b = a;
  b[3] = 9, b[4] = 2;  // other padding tokens
  auto logits = [&](const std::vector<double>& tokens, bool masked) {
    Inputs in = {{"tokens", I64(B, T, tokens)}};
    if (masked) in.emplace_back("padding_mask", I32(B, T, pad));
    return Logits(run, in);
  };
  const std::vector<double> la = logits(a, true), lb = logits(b, true);
  for (int64_t t = 0; t < 3; ++t)
    EXPECT_EQ(At(la, T, V, 0, t), At(lb, T, V, 0, t)) << "position " << t;
  for (int64_t t = 0; t < T; ++t)
    EXPECT_EQ(At(la, T, V, 1, t), At(lb, T, V, 1, t)) << "row 1, " << t;
  EXPECT_NE(At(la, T, V, 0, 3), At(lb, T, V, 0, 3));  // its own token
  // Unmasked, the real positions see the padding.
  EXPECT_NE(At(logits(a, false), T, V, 0, 0), At(logits(b, false), T, V, 0, 0));
  // Row 1 (no padding) equals a forward without any mask.
  EXPECT_EQ(At(la, T, V, 1, 2), At(logits(a, false), T, V, 1, 2));
}

// Attention is bidirectional: the last token changes the first position's
// logits; positions are learned (the same token at two positions differs).
TEST(BertTest, LogitsSeeTheWholeSequenceAndPositions) {
  const int64_t V = 10, T = 5;
  ModelRun run("bert", Config(V, {{"init_std", 0.5}}));
  ASSERT_EQ(run.Create(), LLMSYS_STATUS_OK) << run.message();
  const std::vector<double> a =
      Logits(run, {{"tokens", I64(1, T, {3, 3, 1, 4, 1})}});
  const std::vector<double> b =
      Logits(run, {{"tokens", I64(1, T, {3, 3, 1, 4, 9})}});
  ASSERT_EQ(a.size(), static_cast<size_t>(T * V));
  for (int64_t t = 0; t < T; ++t)
    EXPECT_NE(At(a, T, V, 0, t), At(b, T, V, 0, t)) << "position " << t;
  EXPECT_NE(At(a, T, V, 0, 0), At(a, T, V, 0, 1));
}

// Segment 0 everywhere equals no segments; other segments change the
// output.
TEST(BertTest, SegmentsChangeTheOutput) {
  const int64_t V = 10, B = 1, T = 4;
  ModelRun run("bert", Config(V, {{"init_std", 0.5}}));
  ASSERT_EQ(run.Create(), LLMSYS_STATUS_OK) << run.message();
  const tensor::Tensor tokens = I64(B, T, {5, 6, 7, 8});
  const std::vector<double> none = Logits(run, {{"tokens", tokens}});
  const std::vector<double> zeros =
      Logits(run, {{"tokens", tokens}, {"segments", I64(B, T, {0, 0, 0, 0})}});
  const std::vector<double> split =
      Logits(run, {{"tokens", tokens}, {"segments", I64(B, T, {0, 0, 1, 1})}});
  ASSERT_EQ(none.size(), zeros.size());
  for (size_t i = 0; i < none.size(); ++i)
    ASSERT_NEAR(none[i], zeros[i], 1e-6) << i;
  for (int64_t t = 0; t < T; ++t)
    EXPECT_NE(At(none, T, V, 0, t), At(split, T, V, 0, t)) << "position " << t;

  ForwardResult r =
      run.Forward({{"tokens", tokens}, {"segments", I64(B, T, {0, 2, 0, 0})}},
                  LLMSYS_MODE_EVAL);
  EXPECT_EQ(r.status, LLMSYS_STATUS_INVALID_ARGUMENT);  // type_vocab_size 2
  EXPECT_NE(r.message.find("embedding"), std::string::npos) << r.message;
  EXPECT_EQ(r.leaked_handles, 0);
}

// Post-LN ends every block with a LayerNorm: with the last block's
// output.LayerNorm weight at zero every position's logits are the same.
// Pre-LN keeps the residual stream: the same change leaves them distinct,
// and it takes the final LayerNorm to make them constant.
TEST(BertTest, PostNormAndPreNormPlaceTheirLayerNorms) {
  const int64_t V = 10, T = 4;
  const Inputs inputs = {{"tokens", I64(1, T, {4, 5, 6, 7})}};
  auto distinct_rows = [&](ModelRun& run) {
    const std::vector<double> l = Logits(run, inputs);
    int n = 0;
    for (int64_t t = 1; t < T; ++t) {
      const std::vector<double> a = At(l, T, V, 0, 0), b = At(l, T, V, 0, t);
      double diff = 0;
      for (int64_t v = 0; v < V; ++v)
        diff = std::max(diff, std::abs(a[v] - b[v]));
      n += diff > 1e-6;
    }
    return n;
  };
  auto zero = [](ModelRun& run, const std::string& name) {
    float* w = run.Param(name).var->data.data_as<float>();
    for (int64_t i = 0; i < run.Param(name).var->data.numel(); ++i) w[i] = 0;
  };
  const std::string last_ln = "bert.encoder.layer.1.output.LayerNorm.weight";

  ModelRun post("bert", Config(V, {{"init_std", 0.5}}));
  ASSERT_EQ(post.Create(), LLMSYS_STATUS_OK) << post.message();
  EXPECT_EQ(distinct_rows(post), T - 1);
  zero(post, last_ln);
  EXPECT_EQ(distinct_rows(post), 0);

  ModelRun pre("bert", Config(V, {{"init_std", 0.5}, {"pre_norm", true}}));
  ASSERT_EQ(pre.Create(), LLMSYS_STATUS_OK) << pre.message();
  zero(pre, last_ln);
  EXPECT_EQ(distinct_rows(pre), T - 1);
  zero(pre, "bert.encoder.LayerNorm.weight");
  EXPECT_EQ(distinct_rows(pre), 0);
}

// The activation is used (the same weights, three different outputs).
TEST(BertTest, ActivationsDiffer) {
  const int64_t V = 8;
  const Inputs inputs = {{"tokens", I64(1, 3, {4, 5, 6})}};
  std::vector<std::vector<double>> outs;
  for (const char* act : {"gelu", "gelu_tanh", "relu"}) {
    ModelRun run("bert", Config(V, {{"init_std", 0.5},
                                    {"activation", std::string(act)}}));
    ASSERT_EQ(run.Create(), LLMSYS_STATUS_OK) << run.message();
    outs.push_back(Logits(run, inputs));
  }
  EXPECT_NE(outs[0], outs[1]);
  EXPECT_NE(outs[0], outs[2]);
  EXPECT_NE(outs[1], outs[2]);
}

TEST(BertTest, ErrorsSayWhatIsWrong) {
  const int64_t V = 5;
  ModelRun run("bert", Config(V));
  ASSERT_EQ(run.Create(), LLMSYS_STATUS_OK) << run.message();
  auto expect_error = [&](const Inputs& inputs, uint32_t mode,
                          const std::string& text, int64_t past = 0) {
    ForwardResult r = run.Forward(inputs, mode, past);
    EXPECT_EQ(r.status, LLMSYS_STATUS_INVALID_ARGUMENT) << text;
    EXPECT_NE(r.message.find(text), std::string::npos) << r.message;
    EXPECT_EQ(r.leaked_handles, 0) << text;
  };
  const tensor::Tensor tokens = I64(1, 2, {1, 4});
  expect_error({{"tokens", MakeTensor({2}, {1, 2}, tensor::kI64)}},
               LLMSYS_MODE_EVAL, "tokens must be (B, T), got (2)");
  expect_error({{"tokens", I64(1, 7, Tokens(7, V))}}, LLMSYS_MODE_EVAL,
               "sequence length 7 exceeds block_size 6");
  expect_error({{"tokens", tokens}}, LLMSYS_MODE_TRAIN,
               "training needs an input 'targets'");
  expect_error({{"tokens", tokens}, {"targets", I64(1, 3, {1, 2, 3})}},
               LLMSYS_MODE_EVAL,
               "targets must have the shape of tokens (B, T) = (1, 2), got "
               "(1, 3)");
  expect_error({{"tokens", tokens}, {"segments", I64(2, 1, {0, 1})}},
               LLMSYS_MODE_EVAL,
               "segments must have the shape of tokens (B, T) = (1, 2), got "
               "(2, 1)");
  expect_error({{"tokens", tokens}, {"padding_mask", I32(1, 1, {0})}},
               LLMSYS_MODE_EVAL,
               "padding_mask must have the shape of tokens (B, T) = (1, 2), "
               "got (1, 1)");
  expect_error({{"tokns", tokens}}, LLMSYS_MODE_EVAL,
               "needs an input 'tokens' (given: tokns)");
  expect_error({{"tokens", tokens}}, LLMSYS_MODE_GENERATE,
               "past_length must be 0, got 1", 1);
  expect_error({{"tokens", I64(1, 2, {1, 9})}}, LLMSYS_MODE_EVAL, "embedding");

  ModelRun bad("bert",
               Config(V, {{"n_embd", int64_t{10}}, {"n_head", int64_t{4}}}));
  EXPECT_EQ(bad.Create(), LLMSYS_STATUS_INVALID_ARGUMENT);
  EXPECT_NE(bad.message().find("n_embd (10) must be a multiple of n_head (4)"),
            std::string::npos)
      << bad.message();
  ModelRun act("bert", Config(V, {{"activation", std::string("swish")}}));
  EXPECT_EQ(act.Create(), LLMSYS_STATUS_INVALID_ARGUMENT);
  EXPECT_NE(act.message().find("gelu|gelu_tanh|relu"), std::string::npos)
      << act.message();
}

// d(loss)/d(parameter element) by backward and by central differences in
// float64, with segments and padding. In TRAIN mode with dropout the
// dispatcher's call counter is reset before every forward, so each one
// draws the same masks.
void GradientCheck(bool pre_norm, uint32_t mode, double dropout) {
  const int64_t V = 7, B = 2, T = 4;
  ModelRun run("bert", Config(V, {{"dtype", std::string("float64")},
                                  {"init_std", 0.3},
                                  {"pre_norm", pre_norm},
                                  {"dropout", dropout},
                                  {"attention_dropout", dropout},
                                  {"activation", std::string("gelu")}}));
  ASSERT_EQ(run.Create(), LLMSYS_STATUS_OK) << run.message();
  std::vector<double> targets = Tokens(B * T, V, 11);
  targets[1] = -100, targets[3] = -100, targets[6] = -100;
  const Inputs inputs = {{"tokens", I64(B, T, Tokens(B * T, V))},
                         {"segments", I64(B, T, {0, 0, 1, 1, 0, 1, 1, 1})},
                         {"padding_mask", I32(B, T, {0, 0, 0, 1, 0, 0, 0, 0})},
                         {"targets", I64(B, T, targets)}};
  const uint64_t calls = run.ops().calls();

  ForwardResult r = run.Forward(inputs, mode);
  ASSERT_EQ(r.status, LLMSYS_STATUS_OK) << r.message;
  ASSERT_TRUE(autograd::Backward(r.outputs.at("loss")).ok());

  const std::string e = "bert.embeddings.", b0 = "bert.encoder.layer.0.",
                    b1 = "bert.encoder.layer.1.";
  std::vector<std::string> names = {
      e + "word_embeddings.weight",
      e + "position_embeddings.weight",
      e + "token_type_embeddings.weight",
      e + "LayerNorm.weight",
      e + "LayerNorm.bias",
      b0 + "attention.self.qkv.weight",
      b0 + "attention.self.qkv.bias",
      b0 + "attention.output.dense.weight",
      b0 + "attention.output.LayerNorm.weight",
      b1 + "intermediate.dense.weight",
      b1 + "intermediate.dense.bias",
      b1 + "output.dense.weight",
      b1 + "output.LayerNorm.bias",
      "cls.predictions.transform.dense.weight",
      "cls.predictions.transform.LayerNorm.weight",
      "cls.predictions.bias"};
  if (pre_norm) names.push_back("bert.encoder.LayerNorm.weight");
  CheckGradients(
      run,
      [&] {
        run.ops().set_calls(calls);
        return Loss(run, inputs, mode);
      },
      names, /*h=*/1e-5, /*tolerance=*/1e-6);
}

TEST(BertTest, GradientsMatchCentralDifferencesPostNorm) {
  GradientCheck(false, LLMSYS_MODE_EVAL, 0.0);
}

TEST(BertTest, GradientsMatchCentralDifferencesPreNorm) {
  GradientCheck(true, LLMSYS_MODE_EVAL, 0.0);
}

TEST(BertTest, GradientsMatchCentralDifferencesWithDropout) {
  GradientCheck(false, LLMSYS_MODE_TRAIN, 0.2);
}

// Dropout only in TRAIN: EVAL is deterministic and differs from TRAIN.
TEST(BertTest, DropoutOnlyInTraining) {
  const int64_t V = 9, T = 5;
  ModelRun run("bert",
               Config(V, {{"dropout", 0.3}, {"attention_dropout", 0.3}}));
  ASSERT_EQ(run.Create(), LLMSYS_STATUS_OK) << run.message();
  const Inputs inputs = {{"tokens", I64(1, T, Tokens(T, V))},
                         {"targets", I64(1, T, Tokens(T, V, 3))}};
  const std::vector<double> e1 = Logits(run, inputs);
  const std::vector<double> t = Logits(run, inputs, LLMSYS_MODE_TRAIN);
  const std::vector<double> e2 = Logits(run, inputs);
  EXPECT_EQ(e1, e2);
  EXPECT_NE(e1, t);
}

// Masked-LM training through the harness: four fixed sentences masked by
// data::MaskTokens (the host's 80/10/10 rule) once, plain SGD on the
// gradients; the model overfits the batch.
void SgdLearnsMaskedTokens(bool pre_norm) {
  const int32_t V = 16, mask_id = V - 1;
  const int64_t B = 4, T = 8;
  ModelRun run("bert", Config(V, {{"block_size", T},
                                  {"n_layer", int64_t{1}},
                                  {"n_embd", int64_t{16}},
                                  {"pre_norm", pre_norm}}));
  ASSERT_EQ(run.Create(), LLMSYS_STATUS_OK) << run.message();
  std::vector<int32_t> sentences;
  for (double t : Tokens(B * T, V - 1 - data::kNumSpecialTokens, 5))
    sentences.push_back(data::kNumSpecialTokens + static_cast<int32_t>(t));
  const data::MlmOptions options{
      .mask_prob = 0.3, .mask_id = mask_id, .vocab_size = V};
  absl::StatusOr<data::MlmMasked> m =
      data::MaskTokens(sentences, options, /*seed=*/77, /*offset=*/0);
  ASSERT_TRUE(m.ok()) << m.status();
  ASSERT_GE(m->num_masked, 4);
  const Inputs inputs = {
      {"tokens",
       I64(B, T, std::vector<double>(m->inputs.begin(), m->inputs.end()))},
      {"targets",
       I64(B, T, std::vector<double>(m->targets.begin(), m->targets.end()))}};
  Losses l;
  ASSERT_NO_FATAL_FAILURE(Train(run, inputs, 50, PlainSgd(0.5), &l));
  EXPECT_NEAR(l.first, std::log(V), 0.15);
  EXPECT_LT(l.last, 0.5 * l.first)
      << "loss went from " << l.first << " to " << l.last;
}

TEST(BertTest, PlainSgdLearnsMaskedTokensPostNorm) {
  SgdLearnsMaskedTokens(false);
}

TEST(BertTest, PlainSgdLearnsMaskedTokensPreNorm) {
  SgdLearnsMaskedTokens(true);
}

}  // namespace
}  // namespace llmsys::models_test
