// Decoding (framework/generate): the sampler wrapper, Decode with and
// without the key/value cache, beam search against brute-force enumeration,
// and the [generate] section of experiment files. Models: toy step
// functions, and the gpt plugin with the reference operators, randomly
// initialized and trained for a few steps.
#include "framework/generate/decoding.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "framework/autograd/autograd.h"
#include "framework/config/experiment.h"
#include "framework/runtime/graph.h"
#include "framework/runtime/registry.h"
#include "llmsys/model.h"

namespace llmsys::generate {
namespace {

using tensor::Tensor;
using Ids = std::vector<int32_t>;
using Overrides = std::vector<std::pair<std::string, runtime::ParamValue>>;

// reference.so, gpt.so, samplers.so and optimizers.so (for experiment
// files) from the build; loaded once.
runtime::PluginRegistry& Registry() {
  static runtime::PluginRegistry* registry = [] {
    auto* r = new runtime::PluginRegistry;
    for (const char* file :
         {"reference.so", "gpt.so", "samplers.so", "optimizers.so"}) {
      absl::Status s =
          r->LoadFile(std::string(LLMSYS_BUILTIN_PLUGIN_DIR) + "/" + file);
      EXPECT_TRUE(s.ok()) << s;
    }
    return r;
  }();
  return *registry;
}

// The component, or null after a test failure.
const runtime::Component* Find(llmsys_kind_t kind, const std::string& id) {
  absl::StatusOr<const runtime::Component*> c = Registry().Find(kind, id);
  EXPECT_TRUE(c.ok()) << c.status();
  return c.ok() ? *c : nullptr;
}

std::unique_ptr<Sampler> MakeSampler(const std::string& id,
                                     Overrides params = {}) {
  const runtime::Component* c = Find(LLMSYS_KIND_SAMPLER, id);
  if (c == nullptr) return nullptr;
  absl::StatusOr<std::unique_ptr<Sampler>> s = Sampler::Create(*c, params);
  EXPECT_TRUE(s.ok()) << s.status();
  return s.ok() ? *std::move(s) : nullptr;
}

// A gpt instance with its own parameters and dispatcher (reference ops).
class Gpt {
 public:
  Gpt(int64_t vocab, int64_t block, Overrides extra = {})
      : block_(block),
        ops_(&Registry(), tensor::kCpu),
        params_(1, tensor::kCpu) {
    Overrides o = {{"vocab_size", vocab},   {"block_size", block},
                   {"n_layer", int64_t{2}}, {"n_head", int64_t{2}},
                   {"n_embd", int64_t{16}}, {"init_std", 0.5}};
    for (auto& e : extra) {
      auto it = std::find_if(o.begin(), o.end(),
                             [&](const auto& x) { return x.first == e.first; });
      if (it != o.end())
        it->second = e.second;
      else
        o.push_back(e);
    }
    component_ = Find(LLMSYS_KIND_MODEL, "gpt");
    if (component_ == nullptr) return;
    absl::StatusOr<runtime::ParamPack> pack =
        runtime::ParamPack::Make(component_->params, o);
    EXPECT_TRUE(pack.ok()) << pack.status();
    if (!pack.ok()) return;
    runtime::Graph graph(&ops_, &params_);
    char message[1024] = {};
    llmsys_error_t err{message, sizeof(message)};
    ok_ =
        component_->As<llmsys_model_t>()->create(
            pack->c_params(), graph.c(), &instance_, &err) == LLMSYS_STATUS_OK;
    EXPECT_TRUE(ok_) << message;
  }
  ~Gpt() {
    if (instance_ != nullptr)
      component_->As<llmsys_model_t>()->destroy(instance_);
  }
  bool ok() const { return ok_; }
  PluginLanguageModel Lm() {
    return PluginLanguageModel(*component_, instance_, &ops_, &params_, block_);
  }

  // `steps` of plain SGD on next-token prediction over windows of `data`;
  // returns the first and last loss.
  std::pair<double, double> Train(const Ids& data, int steps, double lr) {
    const int64_t t = block_, b = 4;
    std::vector<double> x, y;
    for (int64_t r = 0; r < b; ++r)
      for (int64_t i = 0; i < t; ++i) {
        x.push_back(data[static_cast<size_t>(r + i)]);
        y.push_back(data[static_cast<size_t>(r + i + 1)]);
      }
    double first = 0, last = 0;
    for (int step = 0; step < steps; ++step) {
      runtime::Graph graph(&ops_, &params_);
      absl::StatusOr<Tensor> xt = Tensor::FromDoubles({b, t}, x, tensor::kI64);
      absl::StatusOr<Tensor> yt = Tensor::FromDoubles({b, t}, y, tensor::kI64);
      std::vector<llmsys_named_value_t> values = {
          {"tokens", graph.NewValue(autograd::MakeLeaf(*xt))},
          {"targets", graph.NewValue(autograd::MakeLeaf(*yt))}};
      llmsys_model_inputs_t in{};
      in.struct_size = sizeof(in);
      in.mode = LLMSYS_MODE_TRAIN;
      in.values = values.data();
      in.num_values = 2;
      char message[1024] = {};
      llmsys_error_t err{message, sizeof(message)};
      const llmsys_status_t st = component_->As<llmsys_model_t>()->forward(
          instance_, graph.c(), &in, &err);
      for (auto& v : values) graph.Release(v.value);
      EXPECT_EQ(st, LLMSYS_STATUS_OK) << message;
      if (st != LLMSYS_STATUS_OK) return {NAN, NAN};
      autograd::Var loss = graph.outputs().at("loss");
      last = loss->data.ToDoubles()[0];
      if (step == 0) first = last;
      EXPECT_TRUE(autograd::Backward(loss).ok());
      for (const runtime::Parameter& p : params_.all()) {
        float* w = p.var->data.data_as<float>();
        const std::vector<double> g = p.var->grad.ToDoubles();
        for (size_t i = 0; i < g.size(); ++i)
          w[i] -= static_cast<float>(lr * g[i]);
        p.var->grad = Tensor();
      }
    }
    return {first, last};
  }

 private:
  int64_t block_;
  runtime::OpDispatcher ops_;
  runtime::ParameterStore params_;
  const runtime::Component* component_ = nullptr;
  void* instance_ = nullptr;
  bool ok_ = false;
};

// Records every call (past_length, T_new) on the way to a model.
class Recorder : public LanguageModel {
 public:
  explicit Recorder(LanguageModel& inner) : inner_(inner) {}
  absl::StatusOr<LmOutput> Forward(const Tensor& tokens, int64_t past_length,
                                   const Cache& cache,
                                   const Cache& conditions) override {
    calls.emplace_back(past_length, tokens.shape()[1]);
    return inner_.Forward(tokens, past_length, cache, conditions);
  }
  int64_t context() const override { return inner_.context(); }
  std::string name() const override { return inner_.name(); }
  std::vector<std::pair<int64_t, int64_t>> calls;

 private:
  LanguageModel& inner_;
};

// The next-token logits of `seq`: one full forward of its last `context`
// tokens.
std::vector<double> FullLogits(LanguageModel& lm, const Ids& seq) {
  const int64_t w =
      std::min<int64_t>(static_cast<int64_t>(seq.size()), lm.context());
  std::vector<double> v(seq.end() - w, seq.end());
  absl::StatusOr<Tensor> t = Tensor::FromDoubles({1, w}, v, tensor::kI64);
  absl::StatusOr<LmOutput> out = lm.Forward(*t, 0, {}, {});
  EXPECT_TRUE(out.ok()) << out.status();
  if (!out.ok()) return {};
  absl::StatusOr<Tensor> last = out->logits.Slice(1, w - 1, w);
  return last->ToDoubles();
}

// Greedy decoding written out plainly: recompute, argmax (first maximum).
Ids ReferenceGreedy(LanguageModel& lm, Ids seq, int64_t max_tokens) {
  Ids out;
  for (int64_t i = 0; i < max_tokens; ++i) {
    const std::vector<double> l = FullLogits(lm, seq);
    if (l.empty()) return out;
    const int32_t best =
        static_cast<int32_t>(std::max_element(l.begin(), l.end()) - l.begin());
    seq.push_back(best);
    out.push_back(best);
  }
  return out;
}

std::vector<double> LogSoftmax(const std::vector<double>& x) {
  const double mx = *std::max_element(x.begin(), x.end());
  double sum = 0;
  for (double v : x) sum += std::exp(v - mx);
  std::vector<double> out;
  for (double v : x) out.push_back(v - mx - std::log(sum));
  return out;
}

// ---- the sampler wrapper ----

TEST(SamplerTest, CallsTheComponentWithHistoryAndChecksParameters) {
  std::unique_ptr<Sampler> greedy = MakeSampler("greedy");
  ASSERT_NE(greedy, nullptr);
  absl::StatusOr<Tensor> logits =
      Tensor::FromDoubles({2, 3}, {5, 4, 1, 0, 1, 3}, tensor::kF64);
  absl::StatusOr<std::vector<int64_t>> t =
      greedy->Sample(*logits, Tensor(), 0, 0);
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(*t, (std::vector<int64_t>{0, 2}));

  // The history reaches the sampler: a repetition penalty of 10 on token 0
  // (row 0) turns its logit 5 into 0.5.
  std::unique_ptr<Sampler> penalized =
      MakeSampler("greedy", {{"repetition_penalty", 10.0}});
  ASSERT_NE(penalized, nullptr);
  absl::StatusOr<Tensor> history =
      Tensor::FromDoubles({2, 1}, {0, 1}, tensor::kI64);
  t = penalized->Sample(*logits, *history, 0, 0);
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(*t, (std::vector<int64_t>{1, 2}));

  const runtime::Component* c = Find(LLMSYS_KIND_SAMPLER, "greedy");
  ASSERT_NE(c, nullptr);
  absl::StatusOr<std::unique_ptr<Sampler>> bad =
      Sampler::Create(*c, {{"temprature", 0.5}});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("sampler greedy: unknown parameter "
                                        "'temprature'"),
            std::string::npos)
      << bad.status();
  const runtime::Component* model = Find(LLMSYS_KIND_MODEL, "gpt");
  ASSERT_NE(model, nullptr);
  bad = Sampler::Create(*model);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("gpt is a model, not a sampler"),
            std::string::npos)
      << bad.status();
}

TEST(CacheTest, SelectRowsCopiesAndChecksTheRows) {
  absl::StatusOr<Tensor> t =
      Tensor::FromDoubles({3, 2}, {0, 1, 10, 11, 20, 21}, tensor::kF32);
  absl::StatusOr<Cache> c = SelectCacheRows({{"cache.x", *t}}, {2, 0, 2});
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->at(0).second.ToDoubles(),
            (std::vector<double>{20, 21, 0, 1, 20, 21}));
  c = SelectCacheRows({{"cache.x", *t}}, {3});
  EXPECT_EQ(c.status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_NE(c.status().message().find("row 3 is not in the batch"),
            std::string::npos)
      << c.status();
}

// ---- Decode ----

// Greedy with the cache, without it, and written out plainly agree, through
// prompts of several lengths (separate batches) and past the context
// (block_size 8, up to 5 + 12 tokens), and the cached run really used the
// cache: single-token calls after a past, full re-runs once full.
void ExpectGreedyAgrees(Gpt& gpt, const std::vector<Ids>& prompts,
                        int64_t max_tokens) {
  ASSERT_TRUE(gpt.ok());
  PluginLanguageModel lm = gpt.Lm();
  std::unique_ptr<Sampler> greedy = MakeSampler("greedy");
  ASSERT_NE(greedy, nullptr);
  Recorder cached_lm(lm), plain_lm(lm);
  absl::StatusOr<DecodeResult> cached =
      Decode(cached_lm, *greedy, prompts, {.max_tokens = max_tokens});
  ASSERT_TRUE(cached.ok()) << cached.status();
  absl::StatusOr<DecodeResult> plain =
      Decode(plain_lm, *greedy, prompts,
             {.max_tokens = max_tokens, .use_cache = false});
  ASSERT_TRUE(plain.ok()) << plain.status();
  for (size_t i = 0; i < prompts.size(); ++i) {
    const Ids expected = ReferenceGreedy(lm, prompts[i], max_tokens);
    EXPECT_EQ(cached->outputs[i].tokens, expected) << "prompt " << i;
    EXPECT_EQ(plain->outputs[i].tokens, expected) << "prompt " << i;
    EXPECT_EQ(cached->outputs[i].finish, FinishReason::kLength);
  }
  std::map<size_t, int> lengths;
  int64_t prompt_tokens = 0;
  for (const Ids& p : prompts) {
    ++lengths[p.size()];
    prompt_tokens += static_cast<int64_t>(p.size());
  }
  const int64_t calls = static_cast<int64_t>(lengths.size()) * max_tokens;
  for (const DecodeResult* r : {&*cached, &*plain}) {
    EXPECT_EQ(r->stats.sequences, static_cast<int64_t>(prompts.size()));
    EXPECT_EQ(r->stats.prompt_tokens, prompt_tokens);
    EXPECT_EQ(r->stats.generated_tokens,
              static_cast<int64_t>(prompts.size()) * max_tokens);
    EXPECT_EQ(r->stats.model_calls, calls);
  }
  EXPECT_EQ(static_cast<int64_t>(cached_lm.calls.size()), calls);
  int incremental = 0, full_rerun = 0;
  for (auto [past, fresh] : cached_lm.calls) {
    if (past > 0) {
      EXPECT_EQ(fresh, 1);
      EXPECT_LT(past, lm.context());
      ++incremental;
    }
    if (past == 0 && fresh == lm.context()) ++full_rerun;
  }
  EXPECT_GT(incremental, 0);
  EXPECT_GT(full_rerun, 0) << "no sequence outgrew the context";
  for (auto [past, fresh] : plain_lm.calls) EXPECT_EQ(past, 0);
}

TEST(DecodeTest, GreedyIsTheSameWithAndWithoutTheCacheRandomInit) {
  Gpt gpt(13, 8);
  ExpectGreedyAgrees(gpt, {{1, 2, 3}, {4, 5, 6}, {7, 8, 9, 10, 11}, {3}}, 12);
}

// A model whose next token is its row's condition "label" (B, 1): it checks
// that every call gets the rows of the sequences it continues, also after
// sequences finish and beams reorder. Its cache is the step count.
class Labeller : public LanguageModel {
 public:
  absl::StatusOr<LmOutput> Forward(const Tensor& tokens, int64_t past_length,
                                   const Cache& cache,
                                   const Cache& conditions) override {
    if (conditions.size() != 1 || conditions[0].first != "label")
      return absl::InvalidArgumentError("no condition 'label'");
    const Tensor& label = conditions[0].second;
    const int64_t b = tokens.shape()[0], t = tokens.shape()[1];
    if (label.shape()[0] != b)
      return absl::InvalidArgumentError("label rows != token rows");
    (void)past_length;
    (void)cache;
    const std::vector<double> l = label.ToDoubles();
    std::vector<double> logits(static_cast<size_t>(b * t * kVocab), 0.0);
    for (int64_t r = 0; r < b; ++r)
      for (int64_t i = 0; i < t; ++i)
        logits[static_cast<size_t>((r * t + i) * kVocab) +
               static_cast<size_t>(l[static_cast<size_t>(r)])] = 5.0;
    LmOutput out;
    out.logits = *Tensor::FromDoubles({b, t, kVocab}, logits, tensor::kF32);
    return out;
  }
  int64_t context() const override { return 100; }
  std::string name() const override { return "labeller"; }
  static constexpr int64_t kVocab = 10;
};

TEST(DecodeTest, ConditionsFollowTheirRows) {
  Labeller model;
  const std::vector<Ids> prompts = {{1}, {1, 1}, {1}, {1}};
  const std::vector<double> labels = {7, 4, 2, 9};  // 2 is the stop token
  Cache conditions = {
      {"label", *Tensor::FromDoubles({4, 1}, labels, tensor::kI64)}};
  absl::StatusOr<std::unique_ptr<Sampler>> greedy =
      Sampler::Create(*Registry().Find(LLMSYS_KIND_SAMPLER, "greedy").value());
  ASSERT_TRUE(greedy.ok()) << greedy.status();
  absl::StatusOr<DecodeResult> r =
      Decode(model, **greedy, prompts,
             {.max_tokens = 3, .stop_tokens = {2}, .conditions = conditions});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->outputs[0].tokens, (Ids{7, 7, 7}));
  EXPECT_EQ(r->outputs[1].tokens, (Ids{4, 4, 4}));
  EXPECT_EQ(r->outputs[2].tokens, Ids{});  // stopped at once
  EXPECT_EQ(r->outputs[3].tokens, (Ids{9, 9, 9}));

  absl::StatusOr<std::vector<std::vector<Hypothesis>>> beams = BeamSearch(
      model, prompts, {.num_beams = 2, .max_tokens = 3, .eos_tokens = {2}},
      /*use_cache=*/true, nullptr, conditions);
  ASSERT_TRUE(beams.ok()) << beams.status();
  EXPECT_EQ((*beams)[0][0].tokens, (Ids{7, 7, 7}));
  EXPECT_EQ((*beams)[1][0].tokens, (Ids{4, 4, 4}));
  EXPECT_EQ((*beams)[2][0].tokens, Ids{});
  EXPECT_TRUE((*beams)[2][0].eos);
  EXPECT_EQ((*beams)[3][0].tokens, (Ids{9, 9, 9}));
}

// A model that keeps no cache (third-party models may not implement one):
// with use_cache on, every step falls back to a full recompute and the
// output is still the plain greedy one.
class NoCache : public LanguageModel {
 public:
  explicit NoCache(LanguageModel& inner) : inner_(inner) {}
  absl::StatusOr<LmOutput> Forward(const Tensor& tokens, int64_t past_length,
                                   const Cache& cache,
                                   const Cache& conditions) override {
    absl::StatusOr<LmOutput> out =
        inner_.Forward(tokens, past_length, cache, conditions);
    if (out.ok()) out->cache.clear();
    return out;
  }
  int64_t context() const override { return inner_.context(); }
  std::string name() const override { return "model without cache"; }

 private:
  LanguageModel& inner_;
};

TEST(DecodeTest, AModelWithoutACacheIsRecomputedEveryStep) {
  Gpt gpt(13, 8);
  ASSERT_TRUE(gpt.ok());
  PluginLanguageModel lm = gpt.Lm();
  NoCache no_cache(lm);
  Recorder recorder(no_cache);
  std::unique_ptr<Sampler> greedy = MakeSampler("greedy");
  ASSERT_NE(greedy, nullptr);
  const Ids prompt = {1, 2, 3};
  absl::StatusOr<DecodeResult> r =
      Decode(recorder, *greedy, {prompt}, {.max_tokens = 10});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->outputs[0].tokens, ReferenceGreedy(lm, prompt, 10));
  ASSERT_EQ(recorder.calls.size(), 10u);
  for (auto [past, fresh] : recorder.calls) EXPECT_EQ(past, 0);
}

TEST(DecodeTest, GreedyIsTheSameWithAndWithoutTheCacheTrained) {
  Gpt gpt(10, 8, {{"init_std", 0.02}});
  ASSERT_TRUE(gpt.ok());
  Ids data;
  for (int i = 0; i < 40; ++i) data.push_back(4 + (i * 3) % 6);  // period 6
  const auto [first, last] = gpt.Train(data, 40, 0.5);
  EXPECT_LT(last, 0.5 * first)
      << "training did not take: " << first << " -> " << last;
  ExpectGreedyAgrees(gpt, {{4, 7, 4}, {5, 8, 5}, {4, 7, 4, 7, 4}}, 11);
}

TEST(DecodeTest, StopTokensAndStopStringsEndARowAndOnlyThatRow) {
  Gpt gpt(13, 8);
  ASSERT_TRUE(gpt.ok());
  PluginLanguageModel lm = gpt.Lm();
  std::unique_ptr<Sampler> greedy = MakeSampler("greedy");
  ASSERT_NE(greedy, nullptr);
  const Ids a = {1, 2, 3}, b = {4, 5, 6};
  const Ids ga = ReferenceGreedy(lm, a, 10), gb = ReferenceGreedy(lm, b, 10);
  ASSERT_EQ(ga.size(), 10u);

  // Stop at row a's 5th token (or its first occurrence); b runs on, its
  // cache rows selected out of the batch once a is done.
  const int32_t stop = ga[4];
  const size_t j =
      static_cast<size_t>(std::find(ga.begin(), ga.end(), stop) - ga.begin());
  const bool stops_b = std::find(gb.begin(), gb.end(), stop) != gb.end();
  absl::StatusOr<DecodeResult> r =
      Decode(lm, *greedy, {a, b}, {.max_tokens = 10, .stop_tokens = {stop}});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->outputs[0].tokens, Ids(ga.begin(), ga.begin() + j));
  EXPECT_EQ(r->outputs[0].finish, FinishReason::kStopToken);
  EXPECT_EQ(r->outputs[0].stop_token, stop);
  if (!stops_b) {
    EXPECT_EQ(r->outputs[1].tokens, gb);
    EXPECT_EQ(r->outputs[1].finish, FinishReason::kLength);
  }

  // A stop string of the bytes of tokens 3 and 4: the tokens end with the
  // one that completes its first occurrence.
  auto text = [](int32_t id) { return std::string(1, char('a' + id)); };
  const std::string s = text(ga[2]) + text(ga[3]);
  std::string so_far;
  size_t k = 0;
  while (so_far.find(s) == std::string::npos) so_far += text(ga[k++]);
  r = Decode(lm, *greedy, {a},
             {.max_tokens = 10, .stop_strings = {s}, .token_text = text});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->outputs[0].tokens, Ids(ga.begin(), ga.begin() + k));
  EXPECT_EQ(r->outputs[0].finish, FinishReason::kStopString);
  EXPECT_EQ(r->outputs[0].stop_string, s);

  r = Decode(lm, *greedy, {a}, {.max_tokens = 3, .stop_strings = {"x"}});
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("stop strings need token_text"),
            std::string::npos);
  r = Decode(lm, *greedy, {a, {}}, {.max_tokens = 3});
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("prompt 1 has no tokens"),
            std::string::npos);
}

// A seeded sampler is reproducible, another seed changes the samples, a
// sequence's samples do not depend on the rest of its batch, and the cache
// changes nothing.
TEST(DecodeTest, SeededSamplingIsReproducibleAndPerSequence) {
  Gpt gpt(13, 8);
  ASSERT_TRUE(gpt.ok());
  PluginLanguageModel lm = gpt.Lm();
  std::unique_ptr<Sampler> sampler =
      MakeSampler("temperature", {{"temperature", 1.5}});
  ASSERT_NE(sampler, nullptr);
  const std::vector<Ids> prompts = {{1, 2}, {3, 4}, {5, 6, 7}};
  auto run = [&](const std::vector<Ids>& p, uint64_t seed, bool cache) {
    absl::StatusOr<DecodeResult> r = Decode(
        lm, *sampler, p, {.max_tokens = 12, .use_cache = cache, .seed = seed});
    EXPECT_TRUE(r.ok()) << r.status();
    std::vector<Ids> out;
    if (r.ok())
      for (const Continuation& c : r->outputs) out.push_back(c.tokens);
    return out;
  };
  const std::vector<Ids> first = run(prompts, 7, true);
  ASSERT_EQ(first.size(), 3u);
  EXPECT_EQ(run(prompts, 7, true), first);
  EXPECT_EQ(run(prompts, 7, false), first);
  EXPECT_NE(run(prompts, 8, true), first);
  EXPECT_EQ(run({prompts[0]}, 7, true)[0], first[0]);
  // Greedy differs from sampling at temperature 1.5 somewhere.
  std::unique_ptr<Sampler> greedy = MakeSampler("greedy");
  ASSERT_NE(greedy, nullptr);
  absl::StatusOr<DecodeResult> g =
      Decode(lm, *greedy, prompts, {.max_tokens = 12});
  ASSERT_TRUE(g.ok()) << g.status();
  bool differs = false;
  for (size_t i = 0; i < prompts.size(); ++i)
    differs = differs || g->outputs[i].tokens != first[i];
  EXPECT_TRUE(differs);
}

// ---- beam search: a toy model ----

// Log-probabilities over `vocab` tokens after `prefix`: a fixed
// pseudo-random function of the prefix.
std::vector<double> ToyLogProbs(const Ids& prefix, int32_t vocab) {
  uint64_t h = 1469598103934665603ull;
  for (int32_t t : prefix)
    h = (h ^ static_cast<uint64_t>(t)) * 1099511628211ull;
  std::vector<double> logits;
  for (int32_t v = 0; v < vocab; ++v) {
    uint64_t x = h + 0x9E3779B97F4A7C15ull * static_cast<uint64_t>(v + 1);
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    x ^= x >> 31;
    logits.push_back(3.0 * static_cast<double>(x >> 11) / 9007199254740992.0);
  }
  return LogSoftmax(logits);
}

// A step function over `logp` that also checks the reorder contract: each
// row extends, by one token, the row of the last step its parent names.
struct ToyModel {
  explicit ToyModel(std::function<std::vector<double>(const Ids&)> f)
      : logp(std::move(f)) {}

  std::function<std::vector<double>(const Ids&)> logp;
  BeamRows last;
  std::vector<int64_t> parents;
  int steps = 0;

  BeamStepFn Step() {
    return [this](const BeamRows& rows)
               -> absl::StatusOr<std::vector<std::vector<double>>> {
      if (steps > 0) {
        if (parents.size() != rows.prefixes.size())
          return absl::InternalError("reorder was not called with the rows");
        for (size_t i = 0; i < rows.prefixes.size(); ++i) {
          Ids parent = rows.prefixes[i];
          parent.pop_back();
          const size_t p = static_cast<size_t>(parents[i]);
          if (parent != last.prefixes[p] || rows.inputs[i] != last.inputs[p])
            return absl::InternalError("a row does not extend its parent");
        }
      }
      ++steps;
      last = rows;
      std::vector<std::vector<double>> out;
      for (const Ids& p : rows.prefixes) out.push_back(logp(p));
      return out;
    };
  }
  BeamReorderFn Reorder() {
    return [this](const std::vector<int64_t>& p) {
      parents = p;
      return absl::OkStatus();
    };
  }
};

// Every hypothesis — each sequence of non-EOS tokens ended by an EOS, or
// max_tokens long — with its score, best first.
std::vector<Hypothesis> BruteForce(
    const std::function<std::vector<double>(const Ids&)>& logp,
    const Ids& prompt, int32_t vocab, int32_t eos, int64_t max_tokens,
    double alpha) {
  std::vector<Hypothesis> all;
  std::function<void(Ids&, double)> walk = [&](Ids& gen, double lp) {
    Ids prefix = prompt;
    prefix.insert(prefix.end(), gen.begin(), gen.end());
    const std::vector<double> next = logp(prefix);
    for (int32_t v = 0; v < vocab; ++v) {
      const double total = lp + next[static_cast<size_t>(v)];
      const double len = static_cast<double>(gen.size() + 1);
      if (v == eos) {
        all.push_back({gen, true, total, total / std::pow(len, alpha)});
        continue;
      }
      gen.push_back(v);
      if (static_cast<int64_t>(gen.size()) == max_tokens)
        all.push_back({gen, false, total, total / std::pow(len, alpha)});
      else
        walk(gen, total);
      gen.pop_back();
    }
  };
  Ids gen;
  walk(gen, 0.0);
  std::stable_sort(all.begin(), all.end(),
                   [](const Hypothesis& a, const Hypothesis& b) {
                     return a.score > b.score;
                   });
  return all;
}

void ExpectSameHypotheses(const std::vector<Hypothesis>& got,
                          const std::vector<Hypothesis>& want, double tol,
                          const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].tokens, want[i].tokens) << what << ", hypothesis " << i;
    EXPECT_EQ(got[i].eos, want[i].eos) << what << ", hypothesis " << i;
    EXPECT_NEAR(got[i].log_prob, want[i].log_prob, tol) << what << " " << i;
    EXPECT_NEAR(got[i].score, want[i].score, tol) << what << " " << i;
  }
}

// With as many beams as there are hypotheses nothing is pruned: beam search
// returns every hypothesis in the order of brute-force enumeration, for
// several length penalties and two prompts of different lengths at once.
TEST(BeamSearchTest, WideBeamsEqualBruteForceEnumeration) {
  const int32_t vocab = 4, eos = 0;
  const int64_t max_tokens = 3;  // 1 + 3 + 9 EOS-ended + 27 full = 40
  const std::vector<Ids> prompts = {{1}, {2, 3}};
  auto logp = [&](const Ids& p) { return ToyLogProbs(p, vocab); };
  for (double alpha : {0.0, 1.0, 2.0, -0.5}) {
    ToyModel toy{logp};
    absl::StatusOr<std::vector<std::vector<Hypothesis>>> r =
        BeamSearch(prompts,
                   {.num_beams = 40,
                    .max_tokens = max_tokens,
                    .length_penalty = alpha,
                    .eos_tokens = {eos}},
                   toy.Step(), toy.Reorder());
    ASSERT_TRUE(r.ok()) << r.status();
    for (size_t i = 0; i < prompts.size(); ++i) {
      const std::vector<Hypothesis> all =
          BruteForce(logp, prompts[i], vocab, eos, max_tokens, alpha);
      ASSERT_EQ(all.size(), 40u);
      ExpectSameHypotheses(
          (*r)[i], all, 1e-12,
          "alpha " + std::to_string(alpha) + ", prompt " + std::to_string(i));
    }
  }
}

// Narrow beams: every hypothesis returned is a real one with its true
// score, best first; the best is at most the brute-force best.
TEST(BeamSearchTest, NarrowBeamsReturnTrueScoresBestFirst) {
  const int32_t vocab = 5, eos = 0;
  const int64_t max_tokens = 4;
  auto logp = [&](const Ids& p) { return ToyLogProbs(p, vocab); };
  for (double alpha : {0.0, 1.0}) {
    const std::vector<Hypothesis> all =
        BruteForce(logp, {3}, vocab, eos, max_tokens, alpha);
    ToyModel toy{logp};
    absl::StatusOr<std::vector<std::vector<Hypothesis>>> r =
        BeamSearch({{3}},
                   {.num_beams = 3,
                    .max_tokens = max_tokens,
                    .length_penalty = alpha,
                    .eos_tokens = {eos}},
                   toy.Step(), toy.Reorder());
    ASSERT_TRUE(r.ok()) << r.status();
    const std::vector<Hypothesis>& got = (*r)[0];
    ASSERT_EQ(got.size(), 3u);
    for (size_t i = 0; i < got.size(); ++i) {
      auto same = std::find_if(all.begin(), all.end(), [&](const auto& h) {
        return h.tokens == got[i].tokens && h.eos == got[i].eos;
      });
      ASSERT_NE(same, all.end()) << "hypothesis " << i << " does not exist";
      EXPECT_NEAR(got[i].score, same->score, 1e-12);
      if (i > 0) {
        EXPECT_GE(got[i - 1].score, got[i].score);
      }
    }
    EXPECT_LE(got[0].score, all[0].score + 1e-12);
  }
}

// Greedy takes the likelier first token and misses the best sequence; two
// beams find it. One beam is greedy.
TEST(BeamSearchTest, TwoBeamsFindWhatGreedyMissesAndOneBeamIsGreedy) {
  const int32_t eos = 0, a = 1, b = 2;
  auto logp = [&](const Ids& p) {
    std::vector<double> q(3);
    if (p.size() == 1) q = {0.0001, 0.55, 0.4499};           // A likelier
    if (p.size() == 2 && p[1] == a) q = {0.33, 0.34, 0.33};  // then flat
    if (p.size() == 2 && p[1] == b) q = {0.9, 0.05, 0.05};   // B, EOS: 0.405
    if (p.size() > 2) q = {0.98, 0.01, 0.01};
    std::vector<double> out;
    for (double x : q) out.push_back(std::log(x));
    return out;
  };
  ToyModel one{logp}, two{logp};
  const BeamOptions options{.num_beams = 1,
                            .max_tokens = 4,
                            .length_penalty = 0.0,
                            .eos_tokens = {eos}};
  absl::StatusOr<std::vector<std::vector<Hypothesis>>> r1 =
      BeamSearch({{7}}, options, one.Step(), one.Reorder());
  ASSERT_TRUE(r1.ok()) << r1.status();
  EXPECT_EQ((*r1)[0].at(0).tokens, (Ids{a, a}));  // greedy: A A EOS
  EXPECT_TRUE((*r1)[0].at(0).eos);
  BeamOptions wide = options;
  wide.num_beams = 2;
  absl::StatusOr<std::vector<std::vector<Hypothesis>>> r2 =
      BeamSearch({{7}}, wide, two.Step(), two.Reorder());
  ASSERT_TRUE(r2.ok()) << r2.status();
  EXPECT_EQ((*r2)[0].at(0).tokens, (Ids{b}));
  EXPECT_TRUE((*r2)[0].at(0).eos);
  EXPECT_NEAR((*r2)[0].at(0).log_prob, std::log(0.4499 * 0.9), 1e-12);

  // On the pseudo-random toy, one beam follows the argmax until EOS.
  auto toy_logp = [](const Ids& p) { return ToyLogProbs(p, 6); };
  for (int32_t start = 1; start < 6; ++start) {
    Ids seq = {start}, greedy;
    bool ended = false;
    for (int i = 0; i < 8 && !ended; ++i) {
      const std::vector<double> l = toy_logp(seq);
      const int32_t best = static_cast<int32_t>(
          std::max_element(l.begin(), l.end()) - l.begin());
      ended = best == eos;
      if (!ended) seq.push_back(best), greedy.push_back(best);
    }
    ToyModel toy{toy_logp};
    BeamOptions o = options;
    o.max_tokens = 8;
    absl::StatusOr<std::vector<std::vector<Hypothesis>>> r =
        BeamSearch({{start}}, o, toy.Step(), toy.Reorder());
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ((*r)[0].at(0).tokens, greedy) << "start " << start;
    EXPECT_EQ((*r)[0].at(0).eos, ended) << "start " << start;
  }
}

TEST(BeamSearchTest, BadOptionsAndStepsAreErrors) {
  ToyModel toy{[](const Ids& p) { return ToyLogProbs(p, 3); }};
  auto r = BeamSearch({{1}}, {.num_beams = 0}, toy.Step(), toy.Reorder());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("num_beams must be >= 1"),
            std::string::npos);
  ToyModel positive{[](const Ids&) { return std::vector<double>{0.5, -1}; }};
  r = BeamSearch({{1}}, {.num_beams = 2}, positive.Step(), positive.Reorder());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("is not <= 0"), std::string::npos)
      << r.status();
}

// ---- beam search: the gpt plugin ----

// With vocabulary 5 and 3 new tokens there are 85 hypotheses: 85 beams
// enumerate them all, scored from the model's full-recompute logits.
TEST(BeamSearchTest, GptWideBeamsEqualBruteForce) {
  Gpt gpt(5, 8);
  ASSERT_TRUE(gpt.ok());
  PluginLanguageModel lm = gpt.Lm();
  auto logp = [&](const Ids& p) { return LogSoftmax(FullLogits(lm, p)); };
  const std::vector<Hypothesis> all = BruteForce(logp, {1, 2}, 5, 0, 3, 1.0);
  ASSERT_EQ(all.size(), 85u);
  for (bool cache : {true, false}) {
    DecodeStats stats;
    absl::StatusOr<std::vector<std::vector<Hypothesis>>> r =
        BeamSearch(lm, {{1, 2}},
                   {.num_beams = 85,
                    .max_tokens = 3,
                    .length_penalty = 1.0,
                    .eos_tokens = {0}},
                   cache, &stats);
    ASSERT_TRUE(r.ok()) << r.status();
    ExpectSameHypotheses((*r)[0], all, 1e-5,
                         cache ? "with the cache" : "without the cache");
    EXPECT_EQ(stats.model_calls, 3);
    EXPECT_EQ(stats.generated_tokens, 1 + 4 + 16);  // rows scored per step
  }
}

// One beam without EOS is greedy decoding; the cache changes nothing;
// prompts of two lengths search together, past the context.
TEST(BeamSearchTest, GptOneBeamIsGreedyAndTheCacheChangesNothing) {
  Gpt gpt(13, 8);
  ASSERT_TRUE(gpt.ok());
  PluginLanguageModel lm = gpt.Lm();
  const std::vector<Ids> prompts = {{1, 2, 3}, {4, 5}};
  absl::StatusOr<std::vector<std::vector<Hypothesis>>> one = BeamSearch(
      lm, prompts, {.num_beams = 1, .max_tokens = 10, .length_penalty = 0.0},
      true);
  ASSERT_TRUE(one.ok()) << one.status();
  for (size_t i = 0; i < prompts.size(); ++i)
    EXPECT_EQ((*one)[i].at(0).tokens, ReferenceGreedy(lm, prompts[i], 10));

  const BeamOptions three{.num_beams = 3,
                          .max_tokens = 9,
                          .length_penalty = 1.0,
                          .eos_tokens = {0}};
  absl::StatusOr<std::vector<std::vector<Hypothesis>>> cached =
      BeamSearch(lm, prompts, three, true);
  absl::StatusOr<std::vector<std::vector<Hypothesis>>> plain =
      BeamSearch(lm, prompts, three, false);
  ASSERT_TRUE(cached.ok()) << cached.status();
  ASSERT_TRUE(plain.ok()) << plain.status();
  for (size_t i = 0; i < prompts.size(); ++i)
    ExpectSameHypotheses((*cached)[i], (*plain)[i], 1e-5,
                         "prompt " + std::to_string(i));
}

// ---- the [generate] section ----

absl::StatusOr<config::Experiment> Parse(const std::string& generate) {
  return config::Experiment::Parse(
      "[data]\ntrain = \"corpus.txt\"\n[model]\nuse = \"gpt\"\n" + generate,
      "x.toml", {}, Registry());
}

TEST(GenerateSectionTest, TheSamplersParametersAreKeysOfTheSection) {
  absl::StatusOr<config::Experiment> e = Parse("");
  ASSERT_TRUE(e.ok()) << e.status();
  ASSERT_NE(e->sampler(), nullptr);
  EXPECT_EQ(e->sampler()->id, "greedy");
  EXPECT_TRUE(e->Bool("generate", "use_cache"));
  EXPECT_EQ(e->Int("generate", "num_beams"), 1);
  EXPECT_TRUE(e->Strings("generate", "stop").empty());

  e = Parse(
      "[generate]\nsampler = \"temperature\"\ntemperature = 0.7\n"
      "stop = [\"\\n\\n\", \"END\", \"q\\\"b\\\\s\\u0001\"]\nseed = 5\n"
      "use_cache = false\n");
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->sampler()->id, "temperature");
  auto params = e->ComponentParams("generate");
  auto t = std::find_if(params.begin(), params.end(),
                        [](const auto& p) { return p.first == "temperature"; });
  ASSERT_NE(t, params.end());
  EXPECT_EQ(std::get<double>(t->second), 0.7);
  for (const auto& [k, v] : params) EXPECT_NE(k, "seed");  // the host's
  EXPECT_EQ(e->Strings("generate", "stop"),
            (std::vector<std::string>{"\n\n", "END", "q\"b\\s\x01"}));
  // The resolved configuration reads back the same.
  absl::StatusOr<config::Experiment> again = config::Experiment::Parse(
      e->ResolvedToml(), "resolved.toml", {}, Registry());
  ASSERT_TRUE(again.ok()) << again.status() << "\n" << e->ResolvedToml();
  EXPECT_EQ(again->Strings("generate", "stop"),
            (std::vector<std::string>{"\n\n", "END", "q\"b\\s\x01"}));
  EXPECT_EQ(again->Float("generate", "temperature"), 0.7);
  EXPECT_EQ(again->Int("generate", "seed"), 5);
  EXPECT_EQ(again->String("generate", "prompt"), "\n");  // the default
  EXPECT_FALSE(again->Bool("generate", "use_cache"));

  auto expect_error = [](const absl::StatusOr<config::Experiment>& r,
                         const std::string& text) {
    ASSERT_FALSE(r.ok()) << "no error; expected " << text;
    EXPECT_NE(r.status().message().find(text), std::string::npos) << r.status();
  };
  expect_error(
      Parse("[generate]\nsampler = \"temperature\"\ntemprature = 0.7\n"),
      "x.toml:7:1: [generate] unknown key 'temprature' (did you mean "
      "'temperature'?)");
  expect_error(Parse("[generate]\ntemperature = 0.7\n"),
               "[generate] unknown key 'temperature'");
  expect_error(Parse("[generate]\nsampler = \"temperature\"\n"
                     "temperature = -1.0\n"),
               "[generate] 'temperature' = -1");
  expect_error(Parse("[generate]\nstop = [1]\n"),
               "[generate] stop must be a list of non-empty strings");
  expect_error(Parse("[generate]\nstop = [\"a\", \"\"]\n"),
               "[generate] stop must be a list of non-empty strings");
  expect_error(Parse("[generate]\nsampler = \"nope\"\n"),
               "x.toml:6:11: [generate] sampler = \"nope\"");
  expect_error(Parse("[generate]\nnum_beams = 0\n"), "'num_beams' = 0");
}

}  // namespace
}  // namespace llmsys::generate
