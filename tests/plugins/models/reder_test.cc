// Tests of the reder model (plugins/models/reder), loaded from the built
// reder.so with the reference operators and driven through its C struct as
// the host drives it. The oracles are independent of the plugin: a coupling
// layer written out by hand in doubles, the inverse composed with the
// forward, CTC by brute-force enumeration of alignments, central
// differences. Sizes are tiny: the reference operators are plain loops.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "tests/plugins/models/model_harness.h"

namespace llmsys::models_test {
namespace {

using autograd::Var;

constexpr int64_t kD = 4;  // n_embd of most tests

// A small float64 config without dropout; `extra` overrides or adds to it.
Overrides Config(int64_t vocab, const Overrides& extra = {}) {
  return Merge({{"vocab_size", vocab},
                {"n_layer", int64_t{2}},
                {"n_head", int64_t{2}},
                {"n_embd", kD},
                {"ffn_dim", int64_t{8}},
                {"upsample", int64_t{2}},
                {"dropout", 0.0},
                {"max_positions", int64_t{32}},
                {"dtype", std::string("float64")}},
               extra);
}

// A fixed pseudo-random sequence in [-1, 1).
std::vector<double> Uniform(int64_t n, uint64_t seed) {
  std::vector<double> v;
  uint64_t s = seed;
  for (int64_t i = 0; i < n; ++i) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    v.push_back(static_cast<double>(s >> 11) * 0x1.0p-52 - 1.0);
  }
  return v;
}

// Adds scale * Uniform to every float64 parameter, so LayerNorm weights and
// biases are not the trivial ones and ones and zeros.
void Perturb(ModelRun& run, double scale, uint64_t seed) {
  for (const runtime::Parameter& p : run.params().all()) {
    double* w = p.var->data.data_as<double>();
    const std::vector<double> u = Uniform(p.var->data.numel(), seed++);
    for (size_t i = 0; i < u.size(); ++i) w[i] += scale * u[i];
  }
}

void Zero(ModelRun& run, const std::string& name) {
  const runtime::Parameter& p = run.Param(name);
  double* w = p.var->data.data_as<double>();
  std::fill(w, w + p.var->data.numel(), 0.0);
}

// Sentences `name` ("src" or "tgt"): ids (B, S), "<name>_lengths" (B) and
// "<name>_padding_mask" (B, S) int32, appended to `in`.
void AddSentences(Inputs& in, const std::string& name, int64_t B, int64_t S,
                  const std::vector<double>& ids,
                  const std::vector<double>& lengths) {
  std::vector<double> mask;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t i = 0; i < S; ++i)
      mask.push_back(i >= lengths[static_cast<size_t>(b)] ? 1 : 0);
  in.emplace_back(name, MakeTensor({B, S}, ids, tensor::kI64));
  in.emplace_back(name + "_lengths", MakeTensor({B}, lengths, tensor::kI64));
  in.emplace_back(name + "_padding_mask",
                  MakeTensor({B, S}, mask, tensor::kI32));
}

// The same from rows of ids, right-padded with 0 to the longest row.
void AddRows(Inputs& in, const std::string& name,
             const std::vector<std::vector<int64_t>>& rows) {
  size_t S = 0;
  for (const auto& r : rows) S = std::max(S, r.size());
  std::vector<double> ids, lengths;
  for (const auto& r : rows) {
    for (size_t i = 0; i < S; ++i)
      ids.push_back(i < r.size() ? static_cast<double>(r[i]) : 0.0);
    lengths.push_back(static_cast<double>(r.size()));
  }
  AddSentences(in, name, static_cast<int64_t>(rows.size()),
               static_cast<int64_t>(S), ids, lengths);
}

tensor::Tensor Direction(int64_t direction) {
  return MakeTensor({}, {static_cast<double>(direction)}, tensor::kI64);
}

// Output `name` of a successful forward, as doubles.
std::vector<double> Out(const ForwardResult& r, const std::string& name) {
  EXPECT_EQ(r.status, LLMSYS_STATUS_OK) << r.message;
  EXPECT_EQ(r.leaked_handles, 0);
  auto it = r.outputs.find(name);
  EXPECT_NE(it, r.outputs.end()) << "no output " << name;
  return it == r.outputs.end() ? std::vector<double>{}
                               : it->second->data.ToDoubles();
}

// The duplex stack on `state` (B, T, 2d) in `direction`.
std::vector<double> Stack(ModelRun& run, const std::vector<double>& state,
                          int64_t B, int64_t T, int64_t width,
                          const std::vector<double>& mask, int64_t direction) {
  Inputs in = {{"state", MakeTensor({B, T, width}, state, tensor::kF64)},
               {"direction", Direction(direction)}};
  if (!mask.empty())
    in.emplace_back("state_padding_mask",
                    MakeTensor({B, T}, mask, tensor::kI32));
  return Out(run.Forward(in, LLMSYS_MODE_EVAL), "state");
}

// max_i |a_i - b_i| / (1 + |b_i|).
double MaxError(const std::vector<double>& a, const std::vector<double>& b) {
  EXPECT_EQ(a.size(), b.size());
  double worst = a.size() == b.size() ? 0.0 : INFINITY;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i)
    worst = std::max(worst, std::abs(a[i] - b[i]) / (1 + std::abs(b[i])));
  return worst;
}

// ---- a coupling layer by hand ----

std::vector<double> P(ModelRun& run, const std::string& name) {
  return run.Param(name).var->data.ToDoubles();
}

// weight (out, in) @ x + bias for one row x.
std::vector<double> LinearRow(ModelRun& run, const std::string& name,
                              const std::vector<double>& x) {
  const std::vector<double> w = P(run, name + ".weight"),
                            b = P(run, name + ".bias");
  std::vector<double> y = b;
  for (size_t o = 0; o < y.size(); ++o)
    for (size_t i = 0; i < x.size(); ++i) y[o] += w[o * x.size() + i] * x[i];
  return y;
}

std::vector<double> LayerNormRow(ModelRun& run, const std::string& name,
                                 const std::vector<double>& x) {
  const std::vector<double> w = P(run, name + ".weight"),
                            b = P(run, name + ".bias");
  double mean = 0, var = 0;
  for (double v : x) mean += v;
  mean /= static_cast<double>(x.size());
  for (double v : x) var += (v - mean) * (v - mean);
  var /= static_cast<double>(x.size());
  std::vector<double> y(x.size());
  for (size_t i = 0; i < x.size(); ++i)
    y[i] = (x[i] - mean) / std::sqrt(var + 1e-5) * w[i] + b[i];
  return y;
}

// The regular form of coupling layer `prefix` ("source_end.layers.0.") on
// state (B, T, 2d), n_head 2, relu, sinusoidal positions, keys masked where
// mask (B, T) is 1.
std::vector<double> HandCoupling(ModelRun& run, const std::string& prefix,
                                 const std::vector<double>& state, int64_t B,
                                 int64_t T, int64_t d,
                                 const std::vector<double>& mask) {
  const int64_t H = 2, D = d / H;
  std::vector<double> out(state.size());
  for (int64_t b = 0; b < B; ++b) {
    auto half = [&](int64_t t, int64_t which) {
      const double* row = &state[static_cast<size_t>((b * T + t) * 2 * d)];
      return std::vector<double>(row + which * d, row + (which + 1) * d);
    };
    // F(x2): LN, + PE, q | k | v, attention over unmasked keys, proj.
    std::vector<std::vector<double>> qkv;
    for (int64_t t = 0; t < T; ++t) {
      std::vector<double> h = LayerNormRow(run, prefix + "f.ln", half(t, 1));
      for (int64_t j = 0; j < d; ++j) {
        const double angle =
            static_cast<double>(t) /
            std::pow(10000.0,
                     static_cast<double>(2 * (j / 2)) / static_cast<double>(d));
        h[static_cast<size_t>(j)] +=
            j % 2 == 0 ? std::sin(angle) : std::cos(angle);
      }
      qkv.push_back(LinearRow(run, prefix + "f.qkv", h));
    }
    for (int64_t n = 0; n < T; ++n) {
      std::vector<double> att(static_cast<size_t>(d), 0.0);
      for (int64_t hh = 0; hh < H; ++hh) {
        std::vector<double> score(static_cast<size_t>(T), -INFINITY);
        double top = -INFINITY, total = 0;
        for (int64_t m = 0; m < T; ++m) {
          if (!mask.empty() && mask[static_cast<size_t>(b * T + m)] != 0)
            continue;
          double s = 0;
          for (int64_t j = 0; j < D; ++j)
            s += qkv[n][hh * D + j] * qkv[m][d + hh * D + j];
          score[m] = s / std::sqrt(static_cast<double>(D));
          top = std::max(top, score[m]);
        }
        for (int64_t m = 0; m < T; ++m)
          if (score[m] > -INFINITY) total += std::exp(score[m] - top);
        for (int64_t m = 0; m < T; ++m) {
          if (score[m] == -INFINITY) continue;
          const double p = std::exp(score[m] - top) / total;
          for (int64_t j = 0; j < D; ++j)
            att[hh * D + j] += p * qkv[m][2 * d + hh * D + j];
        }
      }
      const std::vector<double> f = LinearRow(run, prefix + "f.proj", att);
      std::vector<double> y1 = half(n, 0), y2 = half(n, 1);
      for (int64_t j = 0; j < d; ++j) y1[j] += f[j];
      // G(y1): LN, fc1, relu, fc2.
      std::vector<double> g = LinearRow(run, prefix + "g.fc1",
                                        LayerNormRow(run, prefix + "g.ln", y1));
      for (double& v : g) v = std::max(v, 0.0);
      g = LinearRow(run, prefix + "g.fc2", g);
      for (int64_t j = 0; j < d; ++j) y2[j] += g[j];
      double* o = &out[static_cast<size_t>((b * T + n) * 2 * d)];
      std::copy(y1.begin(), y1.end(), o);
      std::copy(y2.begin(), y2.end(), o + d);
    }
  }
  return out;
}

// ---- CTC by brute force ----

// log_softmax of logits (B, T, V) at row b, frame t.
std::vector<double> LogSoftmaxRow(const std::vector<double>& logits, int64_t b,
                                  int64_t t, int64_t T, int64_t V) {
  const double* z = &logits[static_cast<size_t>((b * T + t) * V)];
  const double top = *std::max_element(z, z + V);
  double total = 0;
  for (int64_t c = 0; c < V; ++c) total += std::exp(z[c] - top);
  std::vector<double> y(static_cast<size_t>(V));
  for (int64_t c = 0; c < V; ++c) y[c] = z[c] - top - std::log(total);
  return y;
}

// -log of the total probability of every path over the first `frames`
// frames of row b that collapses (merge repeats, drop blanks) to `label`:
// all V^frames paths enumerated. Infinity when none does.
double BruteForceCtc(const std::vector<double>& logits, int64_t b, int64_t T,
                     int64_t V, int64_t frames,
                     const std::vector<int64_t>& label, int64_t blank) {
  int64_t paths = 1;
  for (int64_t t = 0; t < frames; ++t) paths *= V;
  double total = 0;
  for (int64_t code = 0; code < paths; ++code) {
    std::vector<int64_t> path, collapsed;
    for (int64_t t = 0, c = code; t < frames; ++t, c /= V)
      path.push_back(c % V);
    double logp = 0;
    for (int64_t t = 0; t < frames; ++t) {
      logp += LogSoftmaxRow(logits, b, t, T, V)[path[t]];
      if (path[t] != blank && (t == 0 || path[t] != path[t - 1]))
        collapsed.push_back(path[t]);
    }
    if (collapsed == label) total += std::exp(logp);
  }
  return -std::log(total);
}

// Argmax per frame over the first `frames` frames of row b, repeats merged,
// blanks dropped.
std::vector<int64_t> GreedyCtc(const std::vector<double>& logits, int64_t b,
                               int64_t T, int64_t V, int64_t frames,
                               int64_t blank) {
  std::vector<int64_t> out;
  int64_t previous = -1;
  for (int64_t t = 0; t < frames; ++t) {
    const double* z = &logits[static_cast<size_t>((b * T + t) * V)];
    const int64_t c = std::max_element(z, z + V) - z;
    if (c != blank && c != previous) out.push_back(c);
    previous = c;
  }
  return out;
}

// ---- tests ----

TEST(RederTest, ParametersFollowTheFormulaNamingAndInit) {
  const int64_t V = 9, d = 8, ffn = 16, L = 4;
  ModelRun run("reder",
               Config(V, {{"n_layer", L}, {"n_embd", d}, {"ffn_dim", ffn}}));
  ASSERT_EQ(run.Create(), LLMSYS_STATUS_OK) << run.message();
  // embed + per layer: F (ln, qkv, proj) and G (ln, fc1, fc2); no head.
  const int64_t per_layer = (2 * d + 3 * d * d + 3 * d + d * d + d) +
                            (2 * d + ffn * d + ffn + d * ffn + d);
  EXPECT_EQ(NumParameters(run), V * d + L * per_layer);
  std::vector<std::string> names;
  for (const runtime::Parameter& p : run.params().all())
    names.push_back(p.name);
  ASSERT_EQ(names.size(), 1u + 12 * L);
  EXPECT_EQ(names[0], "embed.weight");
  const std::vector<std::string> layer0 = {
      "source_end.layers.0.f.ln.weight",   "source_end.layers.0.f.ln.bias",
      "source_end.layers.0.f.qkv.weight",  "source_end.layers.0.f.qkv.bias",
      "source_end.layers.0.f.proj.weight", "source_end.layers.0.f.proj.bias",
      "source_end.layers.0.g.ln.weight",   "source_end.layers.0.g.ln.bias",
      "source_end.layers.0.g.fc1.weight",  "source_end.layers.0.g.fc1.bias",
      "source_end.layers.0.g.fc2.weight",  "source_end.layers.0.g.fc2.bias"};
  EXPECT_EQ(std::vector<std::string>(names.begin() + 1, names.begin() + 13),
            layer0);
  EXPECT_EQ(names[25], "target_end.layers.0.f.ln.weight");
  EXPECT_EQ(names.back(), "target_end.layers.1.g.fc2.bias");
  EXPECT_EQ(run.Param("target_end.layers.1.f.qkv.weight").var->data.shape(),
            (tensor::Shape{3 * d, d}));
  EXPECT_EQ(run.Param("source_end.layers.1.g.fc2.weight").var->data.shape(),
            (tensor::Shape{d, ffn}));
  // Xavier-uniform weights fill (-a, a), a = sqrt(6 / (in + out)); vectors
  // start at zeros and ones and are excluded from weight decay; the
  // embedding is normal(0, 1/sqrt(d)).
  for (const runtime::Parameter& p : run.params().all()) {
    const std::vector<double> w = p.var->data.ToDoubles();
    const bool vector = p.var->data.ndim() == 1;
    EXPECT_EQ((p.flags & LLMSYS_PARAMETER_NO_DECAY) != 0, vector) << p.name;
    if (vector) {
      const double expected = p.name.find(".bias") != std::string::npos ? 0 : 1;
      for (double x : w) ASSERT_EQ(x, expected) << p.name;
      continue;
    }
    double sum2 = 0, top = 0;
    for (double x : w) sum2 += x * x, top = std::max(top, std::abs(x));
    const double rms = std::sqrt(sum2 / static_cast<double>(w.size()));
    const tensor::Shape s = p.var->data.shape();
    if (p.name == "embed.weight") {
      EXPECT_NEAR(rms, 1 / std::sqrt(double{d}), 0.25 / std::sqrt(double{d}));
      continue;
    }
    const double a = std::sqrt(6.0 / static_cast<double>(s[0] + s[1]));
    EXPECT_LE(top, a) << p.name;
    EXPECT_GT(top, 0.8 * a) << p.name;
    EXPECT_NEAR(rms, a / std::sqrt(3.0), 0.25 * a) << p.name;  // U(-a, a)
  }
}

// With target_end's F and G zeroed (proj and fc2), direction 0 is the
// regular form of source_end.layers.0 alone and direction 1 its inverse
// form: the first matches a hand computation, the second undoes it.
TEST(RederTest, OneCouplingLayerMatchesAHandComputationAndItsInverse) {
  const int64_t B = 2, T = 5, d = kD;
  ModelRun run("reder", Config(6));
  ASSERT_EQ(run.Create(), LLMSYS_STATUS_OK) << run.message();
  Perturb(run, 0.3, 100);
  for (const char* name :
       {"target_end.layers.0.f.proj.weight", "target_end.layers.0.f.proj.bias",
        "target_end.layers.0.g.fc2.weight", "target_end.layers.0.g.fc2.bias"})
    Zero(run, name);
  const std::vector<double> h = Uniform(B * T * 2 * d, 5);
  const std::vector<double> mask = {0, 0, 0, 0, 0, 0, 0, 0, 1, 1};

  const std::vector<double> y = Stack(run, h, B, T, 2 * d, mask, 0);
  const std::vector<double> hand =
      HandCoupling(run, "source_end.layers.0.", h, B, T, d, mask);
  EXPECT_LT(MaxError(y, hand), 1e-13);
  EXPECT_GT(MaxError(y, h), 0.1);  // the layer does something
  EXPECT_LT(MaxError(Stack(run, y, B, T, 2 * d, mask, 1), h), 1e-13);
}

// f_{y->x}(f_{x->y}(h)) = h and f_{x->y}(f_{y->x}(h)) = h for random states
// with padding, 2 layers per end, all parameters random.
TEST(RederTest, DirectionsInvertEachOtherInFloat64) {
  const int64_t B = 2, T = 6, d = 8;
  ModelRun run("reder", Config(5, {{"n_layer", int64_t{4}},
                                   {"n_embd", d},
                                   {"activation", std::string("gelu")}}));
  ASSERT_EQ(run.Create(), LLMSYS_STATUS_OK) << run.message();
  Perturb(run, 0.2, 300);
  const std::vector<double> h = Uniform(B * T * 2 * d, 9);
  const std::vector<double> mask = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1};
  for (int64_t first : {0, 1}) {
    const std::vector<double> y = Stack(run, h, B, T, 2 * d, mask, first);
    EXPECT_GT(MaxError(y, h), 0.1) << "direction " << first;
    const std::vector<double> back =
        Stack(run, y, B, T, 2 * d, mask, 1 - first);
    const double error = MaxError(back, h);
    EXPECT_LT(error, 1e-12) << "direction " << first << " then back";
  }
  // The two directions are different maps.
  EXPECT_GT(MaxError(Stack(run, h, B, T, 2 * d, mask, 0),
                     Stack(run, h, B, T, 2 * d, mask, 1)),
            0.1);
}

// One set of parameters: each direction alone sends gradient to every
// parameter of both ends.
TEST(RederTest, BothDirectionsTrainBothEnds) {
  const int64_t B = 1, T = 4, d = kD;
  ModelRun run("reder", Config(5, {{"n_layer", int64_t{4}}}));
  ASSERT_EQ(run.Create(), LLMSYS_STATUS_OK) << run.message();
  Perturb(run, 0.2, 7);
  for (int64_t direction : {0, 1}) {
    run.ZeroGrads();
    ForwardResult r = run.Forward(
        {{"state",
          MakeTensor({B, T, 2 * d}, Uniform(B * T * 2 * d, 3), tensor::kF64)},
         {"direction", Direction(direction)}},
        LLMSYS_MODE_EVAL);
    ASSERT_EQ(r.status, LLMSYS_STATUS_OK) << r.message;
    const Var state = r.outputs.at("state");
    const tensor::Tensor seed = MakeTensor(
        state->data.shape(), Uniform(state->data.numel(), 4), tensor::kF64);
    ASSERT_TRUE(autograd::Backward(state, seed).ok());
    for (const runtime::Parameter& p : run.params().all()) {
      if (p.name == "embed.weight") continue;  // not on the state path
      ASSERT_TRUE(p.var->grad.defined())
          << p.name << " got no gradient in direction " << direction;
      double norm = 0;
      for (double g : p.var->grad.ToDoubles()) norm += g * g;
      EXPECT_GT(norm, 0) << p.name << " in direction " << direction;
    }
  }
}

// The model's CTC losses against enumeration of every alignment, from its
// own logits (T' = 4 frames, V = 4), with two infeasible (pair, direction):
// counted, loss 0, finite gradients.
TEST(RederTest, CtcLossMatchesBruteForceAndCountsInfeasiblePairs) {
  const int64_t V = 4, B = 3, S = 2, up = 2, blank = 0;
  ModelRun run("reder", Config(V));
  ASSERT_EQ(run.Create(), LLMSYS_STATUS_OK) << run.message();
  Perturb(run, 0.3, 11);
  // Row 1's forward target [3, 3] needs 3 frames, its source gives 2; row
  // 2's reverse target [3, 3] likewise.
  const std::vector<std::vector<int64_t>> src = {{1, 2}, {2}, {3, 3}},
                                          tgt = {{3, 1}, {3, 3}, {1}};
  Inputs in;
  AddRows(in, "src", src);
  AddRows(in, "tgt", tgt);
  ForwardResult r = run.Forward(in, LLMSYS_MODE_EVAL);
  ASSERT_EQ(r.status, LLMSYS_STATUS_OK) << r.message;
  EXPECT_EQ(r.leaked_handles, 0);
  EXPECT_EQ(Out(r, "ctc_infeasible"), std::vector<double>{2});
  // Reverse logits: tgt translated as the target language.
  Inputs rev;
  AddRows(rev, "src", tgt);
  rev.emplace_back("direction", Direction(1));
  const std::vector<double> reverse =
      Out(run.Forward(rev, LLMSYS_MODE_EVAL), "logits");
  const std::vector<double> forward = Out(r, "logits");
  ASSERT_EQ(forward.size(), static_cast<size_t>(B * up * S * V));
  // The same translation without tgt gives the same logits.
  Inputs fwd;
  AddRows(fwd, "src", src);
  EXPECT_EQ(Out(run.Forward(fwd, LLMSYS_MODE_EVAL), "logits"), forward);

  auto expected = [&](const std::vector<double>& logits,
                      const std::vector<std::vector<int64_t>>& from,
                      const std::vector<std::vector<int64_t>>& to,
                      int* infeasible) {
    double mean = 0;
    for (int64_t b = 0; b < B; ++b) {
      const double nll = BruteForceCtc(
          logits, b, up * S, V, up * static_cast<int64_t>(from[b].size()),
          to[b], blank);
      if (std::isinf(nll)) {
        ++*infeasible;
        continue;  // zero_infinity
      }
      mean += nll / static_cast<double>(std::max<size_t>(to[b].size(), 1));
    }
    return mean / B;
  };
  int infeasible = 0;
  const double ctc_forward = expected(forward, src, tgt, &infeasible);
  const double ctc_reverse = expected(reverse, tgt, src, &infeasible);
  EXPECT_EQ(infeasible, 2);
  EXPECT_NEAR(Out(r, "ctc_forward")[0], ctc_forward, 1e-12);
  EXPECT_NEAR(Out(r, "ctc_reverse")[0], ctc_reverse, 1e-12);
  EXPECT_NEAR(Out(r, "loss")[0], (ctc_forward + ctc_reverse) / 2, 1e-12);

  ASSERT_TRUE(autograd::Backward(r.outputs.at("loss")).ok());
  for (const runtime::Parameter& p : run.params().all()) {
    ASSERT_TRUE(p.var->grad.defined()) << p.name;
    for (double g : p.var->grad.ToDoubles())
      ASSERT_TRUE(std::isfinite(g)) << p.name;
  }
}

// d(loss)/d(parameter element) by backward and by central differences, in
// float64. With dropout (TRAIN) the dispatcher's call counter is reset
// before every forward, so each one draws the same masks.
void GradientCheck(uint32_t mode, double dropout) {
  const int64_t V = 7;
  ModelRun run("reder",
               Config(V, {{"n_layer", int64_t{4}}, {"dropout", dropout}}));
  ASSERT_EQ(run.Create(), LLMSYS_STATUS_OK) << run.message();
  Perturb(run, 0.2, 21);
  Inputs in;
  AddRows(in, "src", {{1, 2, 3}, {4, 5}});
  AddRows(in, "tgt", {{6, 1}, {2, 3, 2}});
  const uint64_t calls = run.ops().calls();
  ForwardResult r = run.Forward(in, mode);
  ASSERT_EQ(r.status, LLMSYS_STATUS_OK) << r.message;
  ASSERT_EQ(Out(r, "ctc_infeasible"), std::vector<double>{0});
  ASSERT_TRUE(autograd::Backward(r.outputs.at("loss")).ok());

  auto loss = [&] {
    run.ops().set_calls(calls);
    ForwardResult f = run.Forward(in, mode);
    EXPECT_EQ(f.status, LLMSYS_STATUS_OK) << f.message;
    return f.status == LLMSYS_STATUS_OK
               ? f.outputs.at("loss")->data.ToDoubles()[0]
               : NAN;
  };
  CheckGradients(
      run, loss,
      {"embed.weight", "source_end.layers.0.f.ln.weight",
       "source_end.layers.0.f.qkv.weight", "source_end.layers.1.f.proj.bias",
       "source_end.layers.1.g.fc1.weight", "target_end.layers.0.g.ln.bias",
       "target_end.layers.0.f.qkv.bias", "target_end.layers.1.g.fc2.weight"},
      /*h=*/1e-5, /*tolerance=*/1e-6);
}

TEST(RederTest, GradientsMatchCentralDifferencesInFloat64) {
  GradientCheck(LLMSYS_MODE_EVAL, 0.0);
}

TEST(RederTest, GradientsMatchCentralDifferencesWithDropout) {
  GradientCheck(LLMSYS_MODE_TRAIN, 0.2);
}

// recompute = true (the host's call_couplings) gives the loss, outputs and
// every gradient of the stored path: in float64 to ~1e-12, with dropout
// (the recomputation replays each F's and G's random stream), with 4
// layers, both directions and padding.
void ExpectRecomputeMatches(uint32_t mode, double dropout,
                            const std::string& activation) {
  SCOPED_TRACE(std::string(mode == LLMSYS_MODE_TRAIN ? "train" : "eval") +
               " dropout " + std::to_string(dropout) + " " + activation);
  const int64_t V = 9;
  Overrides extra = {{"n_layer", int64_t{4}},
                     {"dropout", dropout},
                     {"activation", activation}};
  ModelRun stored("reder", Config(V, extra));
  extra.emplace_back("recompute", true);
  ModelRun recomputed("reder", Config(V, extra));
  ASSERT_EQ(stored.Create(), LLMSYS_STATUS_OK) << stored.message();
  ASSERT_EQ(recomputed.Create(), LLMSYS_STATUS_OK) << recomputed.message();
  Perturb(stored, 0.3, 5);
  Perturb(recomputed, 0.3, 5);
  Inputs in;
  AddRows(in, "src", {{4, 5, 6}, {7, 8}});
  AddRows(in, "tgt", {{5, 4}, {6, 7, 8, 4}});
  std::vector<std::vector<double>> grads[2];
  std::map<std::string, std::vector<double>> outputs[2];
  ModelRun* runs[2] = {&stored, &recomputed};
  for (int k = 0; k < 2; ++k) {
    ForwardResult r = runs[k]->Forward(in, mode);
    ASSERT_EQ(r.status, LLMSYS_STATUS_OK) << r.message;
    EXPECT_EQ(r.leaked_handles, 0);
    for (const char* name : {"loss", "ctc_forward", "ctc_reverse", "logits"})
      outputs[k][name] = r.outputs.at(name)->data.ToDoubles();
    ASSERT_TRUE(autograd::Backward(r.outputs.at("loss")).ok());
    for (const runtime::Parameter& p : runs[k]->params().all()) {
      ASSERT_TRUE(p.var->grad.defined()) << p.name;
      grads[k].push_back(p.var->grad.ToDoubles());
    }
  }
  for (const auto& [name, values] : outputs[0])
    for (size_t i = 0; i < values.size(); ++i)
      EXPECT_NEAR(outputs[1][name][i], values[i], 1e-12)
          << name << "[" << i << "]";
  double worst = 0;
  for (size_t p = 0; p < grads[0].size(); ++p)
    for (size_t i = 0; i < grads[0][p].size(); ++i)
      worst = std::max(worst, std::abs(grads[1][p][i] - grads[0][p][i]) /
                                  std::max(std::abs(grads[0][p][i]), 1e-3));
  EXPECT_LT(worst, 1e-9) << "worst relative gradient difference";
  // Recomputation restores the random stream's position.
  EXPECT_EQ(recomputed.ops().calls(), stored.ops().calls());
}

TEST(RederTest, RecomputeGivesTheStoredGradients) {
  ExpectRecomputeMatches(LLMSYS_MODE_EVAL, 0.0, "relu");
  ExpectRecomputeMatches(LLMSYS_MODE_TRAIN, 0.3, "gelu");
}

// Translation is the duplex stack on the upsampled embedding (each token's
// row repeated s times), averaged halves times embed^T: checked against the
// state path on a hand-built state, with s = 3.
TEST(RederTest, LogitsAreTheStackOnTheUpsampledEmbedding) {
  const int64_t V = 7, B = 2, S = 3, up = 3, T = up * S, d = kD;
  ModelRun run("reder", Config(V, {{"upsample", up}}));
  ASSERT_EQ(run.Create(), LLMSYS_STATUS_OK) << run.message();
  Perturb(run, 0.2, 31);
  const std::vector<double> ids = {1, 2, 3, 4, 5, 0}, lengths = {3, 2};
  Inputs in;
  AddSentences(in, "src", B, S, ids, lengths);
  in.emplace_back("direction", Direction(1));
  ForwardResult r = run.Forward(in, LLMSYS_MODE_EVAL);
  const std::vector<double> logits = Out(r, "logits");
  ASSERT_EQ(r.outputs.at("logits")->data.shape(), (tensor::Shape{B, T, V}));
  EXPECT_EQ(Out(r, "logit_lengths"), (std::vector<double>{9, 6}));
  EXPECT_EQ(r.outputs.count("loss"), 0u);

  const std::vector<double> embed = P(run, "embed.weight");
  std::vector<double> state, mask;
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t t = 0; t < T; ++t) {
      const int64_t id = static_cast<int64_t>(ids[b * S + t / up]);
      for (int half = 0; half < 2; ++half)
        state.insert(state.end(), &embed[id * d], &embed[id * d] + d);
      mask.push_back(t >= up * lengths[b] ? 1 : 0);
    }
  }
  const std::vector<double> h = Stack(run, state, B, T, 2 * d, mask, 1);
  std::vector<double> expected;
  for (int64_t row = 0; row < B * T; ++row) {
    for (int64_t v = 0; v < V; ++v) {
      double z = 0;
      for (int64_t j = 0; j < d; ++j)
        z += 0.5 * (h[row * 2 * d + j] + h[row * 2 * d + d + j]) *
             embed[v * d + j];
      expected.push_back(z);
    }
  }
  EXPECT_LT(MaxError(logits, expected), 1e-13);
}

// Padded source ids change no real frame; a real id does.
TEST(RederTest, PaddingDoesNotLeakIntoRealFrames) {
  const int64_t V = 7, B = 2, S = 3, up = 2, T = up * S;
  ModelRun run("reder", Config(V));
  ASSERT_EQ(run.Create(), LLMSYS_STATUS_OK) << run.message();
  Perturb(run, 0.2, 41);
  auto logits = [&](std::vector<double> ids) {
    Inputs in;
    AddSentences(in, "src", B, S, ids, {3, 1});
    return Out(run.Forward(in, LLMSYS_MODE_EVAL), "logits");
  };
  // Row 1's real frames: 0..1 of T, its first up * V logits.
  auto real = [&](const std::vector<double>& z) {
    std::vector<double> out(z.begin(), z.begin() + T * V);  // row 0
    out.insert(out.end(), z.begin() + T * V, z.begin() + T * V + up * V);
    return out;
  };
  const std::vector<double> a = logits({1, 2, 3, 4, 0, 0});
  const std::vector<double> b = logits({1, 2, 3, 4, 6, 5});
  const std::vector<double> c = logits({1, 2, 3, 5, 0, 0});
  EXPECT_LT(MaxError(real(a), real(b)), 1e-14);
  EXPECT_NE(a, b);  // the padded frames themselves do change
  EXPECT_GT(MaxError(real(a), real(c)), 1e-3);
}

// A bijection, token k <-> token k + 5, learned in both directions by plain
// SGD: the loss falls clearly and greedy CTC decoding of training pairs
// gives the other side in both directions. The sentences have no adjacent
// repeats (CTC would need a blank between them, which takes a longer run to
// learn; the brute-force test covers repeats).
TEST(RederTest, PlainSgdLearnsABijectionInBothDirections) {
  const int64_t V = 11, up = 2, blank = 0;
  ModelRun run("reder", {{"vocab_size", V},
                         {"n_layer", int64_t{2}},
                         {"n_head", int64_t{2}},
                         {"n_embd", int64_t{16}},
                         {"ffn_dim", int64_t{32}},
                         {"dropout", 0.0},
                         {"max_positions", int64_t{16}}});
  ASSERT_EQ(run.Create(), LLMSYS_STATUS_OK) << run.message();
  std::vector<std::vector<int64_t>> src, tgt;
  const std::vector<double> u = Uniform(64, 77);
  for (size_t i = 0, k = 0; i < 8; ++i) {
    const size_t len = 2 + i % 3;
    std::vector<int64_t> s, t;
    int64_t token = 1 + static_cast<int64_t>((u[k++] + 1) * 2.5) % 5;
    for (size_t j = 0; j < len; ++j, ++k) {
      s.push_back(token);
      t.push_back(token + 5);
      // The next token in 1..5, never this one.
      token = 1 + (token + static_cast<int64_t>((u[k] + 1) * 2) % 4) % 5;
    }
    src.push_back(s);
    tgt.push_back(t);
  }
  Inputs in;
  AddRows(in, "src", src);
  AddRows(in, "tgt", tgt);
  Losses l;
  ASSERT_NO_FATAL_FAILURE(Train(run, in, 150, PlainSgd(0.2), &l));
  EXPECT_LT(l.last, 0.05 * l.first)
      << "loss went from " << l.first << " to " << l.last;

  for (int64_t direction : {0, 1}) {
    const auto& from = direction == 0 ? src : tgt;
    const auto& to = direction == 0 ? tgt : src;
    Inputs t;
    AddRows(t, "src", from);
    t.emplace_back("direction", Direction(direction));
    ForwardResult r = run.Forward(t, LLMSYS_MODE_EVAL);
    const std::vector<double> logits = Out(r, "logits");
    const std::vector<double> lengths = Out(r, "logit_lengths");
    const int64_t T = r.outputs.at("logits")->data.shape()[1];
    for (size_t b = 0; b < from.size(); ++b)
      EXPECT_EQ(GreedyCtc(logits, static_cast<int64_t>(b), T, V,
                          static_cast<int64_t>(lengths[b]), blank),
                to[b])
          << "pair " << b << " in direction " << direction;
    EXPECT_EQ(T, up * 4);
  }
}

TEST(RederTest, DropoutOnlyInTraining) {
  const int64_t V = 6;
  ModelRun run("reder", Config(V, {{"dropout", 0.5}}));
  ASSERT_EQ(run.Create(), LLMSYS_STATUS_OK) << run.message();
  Inputs in;
  AddRows(in, "src", {{1, 2, 3}});
  AddRows(in, "tgt", {{4, 5}});
  const std::vector<double> e1 =
      Out(run.Forward(in, LLMSYS_MODE_EVAL), "logits");
  const std::vector<double> t =
      Out(run.Forward(in, LLMSYS_MODE_TRAIN), "logits");
  const std::vector<double> e2 =
      Out(run.Forward(in, LLMSYS_MODE_EVAL), "logits");
  EXPECT_EQ(e1, e2);
  EXPECT_NE(e1, t);
}

// Each error names what is wrong; no handle leaks on the way out.
TEST(RederTest, ErrorsSayWhatIsWrong) {
  auto create_error = [](Overrides o) {
    ModelRun bad("reder", std::move(o));
    EXPECT_NE(bad.Create(), LLMSYS_STATUS_OK);
    return bad.message();
  };
  EXPECT_NE(create_error(Config(5, {{"n_layer", int64_t{3}}}))
                .find("n_layer (3) must be even"),
            std::string::npos);
  EXPECT_NE(
      create_error(Config(5, {{"n_embd", int64_t{10}}, {"n_head", int64_t{4}}}))
          .find("n_embd (10) must be a multiple of n_head (4)"),
      std::string::npos);
  EXPECT_NE(create_error(Config(5, {{"blank", int64_t{5}}}))
                .find("blank (5) must be an id below vocab_size (5)"),
            std::string::npos);

  ModelRun run("reder", Config(8));
  ASSERT_EQ(run.Create(), LLMSYS_STATUS_OK) << run.message();
  auto expect_error = [&](const Inputs& in, uint32_t mode,
                          const std::string& text) {
    ForwardResult r = run.Forward(in, mode);
    EXPECT_EQ(r.status, LLMSYS_STATUS_INVALID_ARGUMENT) << text;
    EXPECT_NE(r.message.find(text), std::string::npos) << r.message;
    EXPECT_EQ(r.leaked_handles, 0) << text;
  };
  const tensor::Tensor ids =
      MakeTensor({2, 3}, {1, 2, 3, 4, 5, 0}, tensor::kI64);
  expect_error({{"src", ids}}, LLMSYS_MODE_EVAL,
               "needs an input 'src_lengths' (given: src)");
  expect_error({{"source", ids}}, LLMSYS_MODE_EVAL,
               "needs an input 'src' (given: source)");
  Inputs src;
  AddSentences(src, "src", 2, 3, {1, 2, 3, 4, 5, 0}, {3, 2});
  expect_error(src, LLMSYS_MODE_TRAIN, "training needs an input 'tgt'");
  expect_error(src, LLMSYS_MODE_GENERATE,
               "LLMSYS_MODE_GENERATE is not supported");
  expect_error(
      {{"src", ids}, {"src_lengths", MakeTensor({3}, {3, 2, 1}, tensor::kI64)}},
      LLMSYS_MODE_EVAL,
      "src_lengths must be (B) = (2) for src (2, 3), got (3)");
  expect_error(
      {{"src", ids}, {"src_lengths", MakeTensor({2}, {3, 4}, tensor::kI64)}},
      LLMSYS_MODE_EVAL, "src_lengths[1] = 4 is out of range [0, 3]");
  expect_error({{"src", MakeTensor({6}, {1, 2, 3, 4, 5, 0}, tensor::kI64)},
                {"src_lengths", MakeTensor({1}, {6}, tensor::kI64)}},
               LLMSYS_MODE_EVAL, "src must be (B, S) token ids, got (6)");
  Inputs bad_mask = src;
  bad_mask[2].second = MakeTensor({2, 3}, {0, 0, 0, 0, 1, 1}, tensor::kI32);
  expect_error(bad_mask, LLMSYS_MODE_EVAL,
               "src_padding_mask[1, 1] disagrees with src_lengths[1] = 2");
  Inputs both = src;
  AddSentences(both, "tgt", 1, 2, {1, 2}, {2});
  expect_error(both, LLMSYS_MODE_EVAL,
               "tgt (1, 2) must have the batch size of src (2, 3)");
  Inputs dir = src;
  dir.emplace_back("direction", Direction(2));
  expect_error(dir, LLMSYS_MODE_EVAL,
               "direction must be 0 (source to target) or 1 (target to "
               "source), got 2");
  dir.back().second = MakeTensor({2}, {0, 1}, tensor::kI64);
  expect_error(dir, LLMSYS_MODE_EVAL,
               "direction must be a scalar, shape () or (1), got (2)");
  Inputs longer;
  AddSentences(longer, "src", 1, 17, std::vector<double>(17, 1), {17});
  expect_error(longer, LLMSYS_MODE_EVAL, "34 frames exceed max_positions 32");
  expect_error({{"state", MakeTensor({1, 3, 7}, std::vector<double>(21, 0),
                                     tensor::kF64)}},
               LLMSYS_MODE_EVAL,
               "state must be (B, T, 2 n_embd) = (B, T, 8), got (1, 3, 7)");
  Inputs state_and_src = src;
  state_and_src.emplace_back(
      "state", MakeTensor({1, 3, 8}, std::vector<double>(24, 0), tensor::kF64));
  expect_error(state_and_src, LLMSYS_MODE_EVAL,
               "give either 'state' (the duplex stack alone) or 'src'/'tgt'");
  // A label equal to the blank: the ctc_loss op's own error, intact.
  Inputs blank_label = src;
  AddSentences(blank_label, "tgt", 2, 2, {1, 0, 2, 3}, {2, 2});
  expect_error(blank_label, LLMSYS_MODE_EVAL, "blank");
  // A direction of shape (1) is a scalar too.
  Inputs one = src;
  one.emplace_back("direction", MakeTensor({1}, {1}, tensor::kI64));
  EXPECT_EQ(run.Forward(one, LLMSYS_MODE_EVAL).status, LLMSYS_STATUS_OK);
}

}  // namespace
}  // namespace llmsys::models_test
