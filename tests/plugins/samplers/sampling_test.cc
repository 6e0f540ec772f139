// Tests of the built-in sampling components "temperature", "top_k", "top_p"
// and "min_p", and of the repetition penalty they share with "greedy"
// (plugins/samplers), loaded from the built samplers.so and called through
// the C ABI as the host calls them.
//
// Distributions are checked two ways: small cases whose filtered softmax is
// written out by hand (they pin the order of the filters), and random cases
// against ReferenceProbabilities below, a plain re-statement of the
// documented rules. Empirical frequencies are compared with a chi-square
// bound far in the tail (p < 1e-5), and the seeds are fixed, so the tests
// never flake but do fail on any wrong filter or order.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <numeric>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "framework/runtime/param_schema.h"
#include "framework/runtime/plugin.h"
#include "llmsys/plugin.h"
#include "llmsys/random.h"
#include "tests/plugins/plugin_test_util.h"

namespace llmsys::plugins_test {
namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr uint64_t kSeed = 0x5eed5eedULL;

// The offset the host gives its n-th sample call: calls are 2^32 counters
// apart (random.h), so that their streams never overlap. (Offsets 0, 1, 2,
// ... would: row b + 4 of one call would reuse row b of the next.)
uint64_t CallOffset(uint64_t n) { return n << 32; }

using Overrides = std::vector<std::pair<std::string, runtime::ParamValue>>;

// The documented filter settings (1/0/1/0/1 = everything off).
struct Config {
  double temperature = 1.0;
  int64_t top_k = 0;
  double top_p = 1.0;
  double min_p = 0.0;
  double repetition_penalty = 1.0;
};

Overrides ToOverrides(const Config& c) {
  return {{"temperature", c.temperature},
          {"top_k", c.top_k},
          {"top_p", c.top_p},
          {"min_p", c.min_p},
          {"repetition_penalty", c.repetition_penalty}};
}

// The distribution the sampler must draw from, restated from the plugin's
// documentation without its shortcuts: full sorts, normalized
// probabilities, one filter at a time.
std::vector<double> ReferenceProbabilities(std::vector<double> x,
                                           const std::vector<int64_t>& history,
                                           const Config& c) {
  const size_t vocab = x.size();
  for (int64_t t : std::set<int64_t>(history.begin(), history.end())) {
    double& v = x[static_cast<size_t>(t)];
    v = v > 0 ? v / c.repetition_penalty : v * c.repetition_penalty;
  }
  for (double& v : x) v /= c.temperature;
  std::vector<size_t> order(vocab);  // most likely first, ties to lower id
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&x](size_t a, size_t b) { return x[a] > x[b]; });
  std::vector<bool> keep(vocab);
  for (size_t v = 0; v < vocab; ++v) keep[v] = !std::isinf(x[v]);
  const auto softmax = [&x, &keep, vocab] {
    double max = -INFINITY, total = 0;
    for (size_t v = 0; v < vocab; ++v)
      if (keep[v]) max = std::max(max, x[v]);
    std::vector<double> p(vocab, 0.0);
    for (size_t v = 0; v < vocab; ++v)
      if (keep[v]) total += p[v] = std::exp(x[v] - max);
    for (double& q : p) q /= total;
    return p;
  };
  if (c.top_k > 0) {
    for (size_t r = static_cast<size_t>(c.top_k); r < vocab; ++r)
      keep[order[r]] = false;
  }
  if (c.top_p < 1.0) {
    const std::vector<double> p = softmax();
    double cumulative = 0;
    bool reached = false;
    for (size_t v : order) {
      if (!keep[v]) continue;
      if (reached) {
        keep[v] = false;
      } else {
        cumulative += p[v];
        reached = cumulative >= c.top_p;
      }
    }
  }
  if (c.min_p > 0.0) {
    const std::vector<double> p = softmax();
    const double max = *std::max_element(p.begin(), p.end());
    for (size_t v = 0; v < vocab; ++v)
      if (p[v] < c.min_p * max) keep[v] = false;
  }
  return softmax();
}

// The documented draw: the first token, in id order, whose cumulative
// probability exceeds u.
int64_t InverseCdf(const std::vector<double>& p, double u) {
  double cumulative = 0;
  int64_t last = -1;
  for (size_t v = 0; v < p.size(); ++v) {
    if (p[v] <= 0) continue;
    cumulative += p[v];
    last = static_cast<int64_t>(v);
    if (cumulative > u) return last;
  }
  return last;
}

std::vector<double> Normalized(std::vector<double> w) {
  double total = 0;
  for (double v : w) total += v;
  for (double& v : w) v /= total;
  return w;
}

std::vector<float> LogOf(const std::vector<double>& p, double shift = 0.0) {
  std::vector<float> x;
  for (double v : p) x.push_back(static_cast<float>(std::log(v) + shift));
  return x;
}

std::vector<float> RandomLogits(size_t n, uint32_t seed, float scale = 2.0f) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> normal(0.0f, scale);
  std::vector<float> x(n);
  for (float& v : x) v = normal(gen);
  return x;
}

// Counts and frequencies agree: tokens of probability 0 are never drawn,
// and the chi-square statistic over the others stays below a bound that a
// correct sampler exceeds with probability < 1e-5.
void ExpectFrequencies(const std::vector<int64_t>& counts,
                       const std::vector<double>& expected,
                       const std::string& what) {
  ASSERT_EQ(counts.size(), expected.size()) << what;
  double n = 0;
  for (int64_t c : counts) n += static_cast<double>(c);
  double chi2 = 0;
  int df = -1;
  std::string table;
  for (size_t v = 0; v < counts.size(); ++v) {
    table += "\n  token " + std::to_string(v) + ": drawn " +
             std::to_string(counts[v]) + ", expected " +
             std::to_string(n * expected[v]);
    if (expected[v] == 0) {
      EXPECT_EQ(counts[v], 0) << what << ": token " << v
                              << " is outside the kept set but was drawn";
      continue;
    }
    const double e = n * expected[v];
    chi2 += (static_cast<double>(counts[v]) - e) *
            (static_cast<double>(counts[v]) - e) / e;
    ++df;
  }
  const double bound = df + 8.0 * std::sqrt(2.0 * df) + 8.0;
  EXPECT_LT(chi2, bound) << what << ": chi-square " << chi2 << " with " << df
                         << " degrees of freedom" << table;
}

// One created sampler; destroyed with the test.
class Instance {
 public:
  Instance(const llmsys_sampler_t* api, void* instance)
      : api_(api), instance_(instance) {}
  ~Instance() { api_->destroy(instance_); }
  Instance(const Instance&) = delete;
  Instance& operator=(const Instance&) = delete;

  llmsys_status_t Sample(const DLTensor* logits, const DLTensor* history,
                         DLTensor* tokens, uint64_t seed, uint64_t offset,
                         ErrorBuffer* err) {
    llmsys_call_context_t ctx = CpuContext();
    ctx.rng_seed = seed;
    ctx.rng_offset = offset;
    llmsys_sample_args_t args{};
    args.struct_size = sizeof(args);
    args.ctx = &ctx;
    args.logits = logits;
    args.history = history;
    args.tokens = tokens;
    return api_->sample(instance_, &args, err->get());
  }

  // The tokens drawn for `logits` (B, V); a failed call fails the test.
  std::vector<int64_t> Draw(const DLTensor* logits, const DLTensor* history,
                            uint64_t offset, uint64_t seed = kSeed) {
    TestTensor<int64_t> tokens({logits->shape[0]},
                               std::vector<int64_t>(logits->shape[0], -1));
    ErrorBuffer err;
    EXPECT_EQ(Sample(logits, history, tokens.dl(), seed, offset, &err),
              LLMSYS_STATUS_OK)
        << err.message();
    return tokens.values();
  }

  // How often each token is drawn from one row of logits (and history),
  // over `rows` copies of it times `calls` offsets.
  std::vector<int64_t> Count(const std::vector<float>& row,
                             const std::vector<int64_t>& history,
                             int64_t rows = 100, int64_t calls = 200) {
    const auto vocab = static_cast<int64_t>(row.size());
    std::vector<float> logits;
    std::vector<int64_t> hist;
    for (int64_t b = 0; b < rows; ++b) {
      logits.insert(logits.end(), row.begin(), row.end());
      hist.insert(hist.end(), history.begin(), history.end());
    }
    TestTensor<float> l({rows, vocab}, logits);
    TestTensor<int64_t> h({rows, static_cast<int64_t>(history.size())}, hist);
    std::vector<int64_t> counts(row.size(), 0);
    for (int64_t call = 0; call < calls; ++call) {
      for (int64_t t : Draw(l.dl(), history.empty() ? nullptr : h.dl(),
                            CallOffset(static_cast<uint64_t>(call)))) {
        if (t < 0 || t >= vocab) {
          ADD_FAILURE() << "token " << t << " outside [0, " << vocab << ")";
          return counts;
        }
        ++counts[static_cast<size_t>(t)];
      }
    }
    return counts;
  }

 private:
  const llmsys_sampler_t* api_;
  void* instance_;
};

class SamplingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    plugin_ = LoadBuiltinPlugin("samplers.so");
    ASSERT_NE(plugin_, nullptr);
  }

  const runtime::Component* Find(const std::string& id) {
    const runtime::Component* c =
        plugin_->FindComponent(LLMSYS_KIND_SAMPLER, id);
    EXPECT_NE(c, nullptr) << "no sampler '" << id << "'";
    return c;
  }

  // `id` created through the host's parameter check; nullptr (and a test
  // failure) if either rejects the parameters.
  std::unique_ptr<Instance> Create(const std::string& id,
                                   const Overrides& overrides = {}) {
    const runtime::Component* c = Find(id);
    if (c == nullptr) return nullptr;
    absl::StatusOr<runtime::ParamPack> pack =
        runtime::ParamPack::Make(c->params, overrides);
    EXPECT_TRUE(pack.ok()) << pack.status();
    if (!pack.ok()) return nullptr;
    const auto* api = c->As<llmsys_sampler_t>();
    void* instance = nullptr;
    ErrorBuffer err;
    EXPECT_EQ(api->create(pack->c_params(), &instance, err.get()),
              LLMSYS_STATUS_OK)
        << err.message();
    if (instance == nullptr) return nullptr;
    return std::make_unique<Instance>(api, instance);
  }
  std::unique_ptr<Instance> Create(const std::string& id, const Config& c) {
    return Create(id, ToOverrides(c));
  }

  // Calls create directly with the defaults, one value replaced, as a host
  // that skipped the schema check would; returns the status, and the
  // message in *message. A successful create is destroyed again.
  llmsys_status_t CreateRaw(const std::string& id, const std::string& name,
                            double value, std::string* message) {
    const runtime::Component* c = Find(id);
    if (c == nullptr) return LLMSYS_STATUS_NOT_FOUND;
    absl::StatusOr<runtime::ParamPack> pack =
        runtime::ParamPack::Make(c->params);
    EXPECT_TRUE(pack.ok()) << pack.status();
    if (!pack.ok()) return LLMSYS_STATUS_INTERNAL;
    const llmsys_params_t* defaults = pack->c_params();
    std::vector<llmsys_param_t> items(defaults->items,
                                      defaults->items + defaults->count);
    bool found = false;
    for (llmsys_param_t& item : items) {
      if (name != item.name) continue;
      found = true;
      if (item.value.type == LLMSYS_TYPE_INT) {
        item.value.as.i = static_cast<int64_t>(value);
      } else {
        item.value.as.f = value;
      }
    }
    EXPECT_TRUE(found) << id << " has no parameter " << name;
    llmsys_params_t params{items.data(), static_cast<uint32_t>(items.size())};
    const auto* api = c->As<llmsys_sampler_t>();
    void* instance = nullptr;
    ErrorBuffer err;
    const llmsys_status_t status = api->create(&params, &instance, err.get());
    if (instance != nullptr) api->destroy(instance);
    *message = err.message();
    return status;
  }

  std::shared_ptr<runtime::Plugin> plugin_;
};

const char* const kSamplingIds[] = {"temperature", "top_k", "top_p", "min_p"};

TEST_F(SamplingTest, DescribesItsParameters) {
  struct Expected {
    const char* id;
    int64_t top_k;
    double top_p, min_p;
  };
  for (const Expected& e :
       {Expected{"temperature", 0, 1.0, 0.0}, Expected{"top_k", 50, 1.0, 0.0},
        Expected{"top_p", 0, 0.9, 0.0}, Expected{"min_p", 0, 1.0, 0.05}}) {
    SCOPED_TRACE(e.id);
    const runtime::Component* c = Find(e.id);
    ASSERT_NE(c, nullptr);
    EXPECT_EQ(c->device_type, kDLCPU);
    EXPECT_FALSE(c->version.empty());
    EXPECT_FALSE(c->description.empty());
    ASSERT_EQ(c->params.size(), 5u);
    const std::vector<std::string> names = {"temperature", "top_k", "top_p",
                                            "min_p", "repetition_penalty"};
    for (size_t i = 0; i < names.size(); ++i) {
      EXPECT_EQ(c->params[i].name, names[i]);
      EXPECT_FALSE(c->params[i].doc.empty());
      EXPECT_FALSE(c->params[i].required);
    }
    EXPECT_EQ(std::get<double>(*c->params[0].default_value), 1.0);
    EXPECT_EQ(std::get<int64_t>(*c->params[1].default_value), e.top_k);
    EXPECT_EQ(std::get<double>(*c->params[2].default_value), e.top_p);
    EXPECT_EQ(std::get<double>(*c->params[3].default_value), e.min_p);
    EXPECT_EQ(std::get<double>(*c->params[4].default_value), 1.0);
    EXPECT_EQ(c->params[0].min_value.value_or(-1), 0.0);
    EXPECT_EQ(c->params[1].min_value.value_or(-1), 0.0);
    EXPECT_EQ(c->params[2].min_value.value_or(-1), 0.0);
    EXPECT_EQ(c->params[2].max_value.value_or(-1), 1.0);
    EXPECT_EQ(c->params[3].min_value.value_or(-1), 0.0);
    EXPECT_EQ(c->params[3].max_value.value_or(-1), 1.0);
    EXPECT_EQ(c->params[4].min_value.value_or(-1), 0.0);
  }
  const runtime::Component* greedy = Find("greedy");
  ASSERT_NE(greedy, nullptr);
  ASSERT_EQ(greedy->params.size(), 1u);
  EXPECT_EQ(greedy->params[0].name, "repetition_penalty");
}

TEST_F(SamplingTest, SameSeedAndOffsetGiveTheSameTokens) {
  const int64_t batch = 16, vocab = 40;
  TestTensor<float> logits({batch, vocab}, RandomLogits(batch * vocab, 1, 1));
  for (const char* id : kSamplingIds) {
    SCOPED_TRACE(id);
    std::unique_ptr<Instance> s = Create(id);
    std::unique_ptr<Instance> again = Create(id);
    ASSERT_NE(s, nullptr);
    ASSERT_NE(again, nullptr);
    const std::vector<int64_t> first =
        s->Draw(logits.dl(), nullptr, CallOffset(7));
    EXPECT_EQ(s->Draw(logits.dl(), nullptr, CallOffset(7)), first);
    EXPECT_EQ(again->Draw(logits.dl(), nullptr, CallOffset(7)), first);
    EXPECT_NE(s->Draw(logits.dl(), nullptr, CallOffset(8)), first);
    EXPECT_NE(s->Draw(logits.dl(), nullptr, CallOffset(7), kSeed + 1), first);
  }
}

// Row b draws element b of the (seed, offset) stream and inverts the CDF of
// its filtered softmax in id order: checked exactly against the reference,
// with filters combined.
TEST_F(SamplingTest, FollowsTheDocumentedDraw) {
  const int64_t batch = 8, vocab = 30, time = 5;
  TestTensor<float> logits({batch, vocab}, RandomLogits(batch * vocab, 2));
  std::vector<int64_t> hist(batch * time);
  std::mt19937 gen(3);
  for (int64_t& t : hist)
    t = std::uniform_int_distribution<int64_t>(0, vocab - 1)(gen);
  TestTensor<int64_t> history({batch, time}, hist);
  for (const Config& c :
       {Config{}, Config{0.7, 10, 0.9, 0.02, 1.3},
        Config{1.5, 0, 0.8, 0.0, 1.0}, Config{1.0, 5, 1.0, 0.1, 0.8}}) {
    std::unique_ptr<Instance> s = Create("temperature", c);
    ASSERT_NE(s, nullptr);
    for (uint64_t call = 0; call < 50; ++call) {
      const uint64_t offset = CallOffset(call);
      const std::vector<int64_t> got =
          s->Draw(logits.dl(), history.dl(), offset);
      for (int64_t b = 0; b < batch; ++b) {
        const std::vector<float>& all = logits.values();
        std::vector<double> row(all.begin() + b * vocab,
                                all.begin() + (b + 1) * vocab);
        std::vector<int64_t> h(hist.begin() + b * time,
                               hist.begin() + (b + 1) * time);
        const double u = llmsys_random_uniform(kSeed, offset, b);
        ASSERT_EQ(got[b], InverseCdf(ReferenceProbabilities(row, h, c), u))
            << "row " << b << ", offset " << offset << ", temperature "
            << c.temperature << ", top_k " << c.top_k << ", top_p " << c.top_p
            << ", min_p " << c.min_p;
      }
    }
  }
}

// A nucleus of hundreds of tokens (the plugin sorts a growing prefix).
TEST_F(SamplingTest, FollowsTheDocumentedDrawWithALargeNucleus) {
  const int64_t batch = 4, vocab = 3000;
  TestTensor<float> logits({batch, vocab},
                           RandomLogits(batch * vocab, 11, 0.5f));
  for (const Config& c : {Config{1.0, 0, 0.9}, Config{0.8, 500, 0.95, 0.01}}) {
    std::unique_ptr<Instance> s = Create("top_p", c);
    ASSERT_NE(s, nullptr);
    for (uint64_t call = 0; call < 30; ++call) {
      const uint64_t offset = CallOffset(call);
      const std::vector<int64_t> got = s->Draw(logits.dl(), nullptr, offset);
      for (int64_t b = 0; b < batch; ++b) {
        const std::vector<float>& all = logits.values();
        std::vector<double> row(all.begin() + b * vocab,
                                all.begin() + (b + 1) * vocab);
        const double u = llmsys_random_uniform(kSeed, offset, b);
        ASSERT_EQ(got[b], InverseCdf(ReferenceProbabilities(row, {}, c), u))
            << "row " << b << ", call " << call << ", top_k " << c.top_k;
      }
    }
  }
}

// "Most likely" breaks ties by the lower id, in top-k and in top-p.
TEST_F(SamplingTest, TiesGoToTheLowerIds) {
  std::unique_ptr<Instance> top_k = Create("top_k", Config{1.0, 2});
  ASSERT_NE(top_k, nullptr);
  ExpectFrequencies(top_k->Count({1, 1, 1, 1, 0}, {}), {.5, .5, 0, 0, 0},
                    "top_k 2 of four equal logits");
  std::unique_ptr<Instance> top_p = Create("top_p", Config{1.0, 0, 0.5});
  ASSERT_NE(top_p, nullptr);
  ExpectFrequencies(top_p->Count({2, 2, 2, 2}, {}), {.5, .5, 0, 0},
                    "top_p 0.5 of four equal logits");
}

TEST_F(SamplingTest, ARowsTokenDoesNotDependOnTheOtherRows) {
  const int64_t batch = 6, vocab = 25, time = 3;
  TestTensor<float> a({batch, vocab}, RandomLogits(batch * vocab, 4));
  TestTensor<float> b({batch, vocab}, RandomLogits(batch * vocab, 5));
  TestTensor<int64_t> ha({batch, time}, std::vector<int64_t>(batch * time, 1));
  TestTensor<int64_t> hb({batch, time}, std::vector<int64_t>(batch * time, 2));
  const int64_t kept = 3;  // row 3 is the same in both batches
  for (int64_t v = 0; v < vocab; ++v) b[kept * vocab + v] = a[kept * vocab + v];
  for (int64_t t = 0; t < time; ++t) hb[kept * time + t] = 7;
  for (int64_t t = 0; t < time; ++t) ha[kept * time + t] = 7;
  std::unique_ptr<Instance> s = Create("top_p", Config{0.9, 0, 0.95, 0.0, 1.5});
  ASSERT_NE(s, nullptr);
  int differing_rows = 0;
  for (uint64_t call = 0; call < 100; ++call) {
    const uint64_t offset = CallOffset(call);
    const std::vector<int64_t> ta = s->Draw(a.dl(), ha.dl(), offset);
    const std::vector<int64_t> tb = s->Draw(b.dl(), hb.dl(), offset);
    ASSERT_EQ(ta[kept], tb[kept]) << "offset " << offset;
    differing_rows += ta[0] != tb[0];
  }
  EXPECT_GT(differing_rows, 0) << "the other rows did change";
}

TEST_F(SamplingTest, TopKOneAndTinyTopPAreGreedy) {
  const int64_t batch = 32, vocab = 20, time = 4;
  std::vector<float> x = RandomLogits(batch * vocab, 6);
  for (int64_t b = 0; b < batch; b += 4)
    x[b * vocab + 5] = x[b * vocab + 9] = 9;
  TestTensor<float> logits({batch, vocab}, x);  // some rows tie at the top
  std::vector<int64_t> hist(batch * time);
  // Penalized tokens 0..4 only, so the tie between 5 and 9 stays.
  for (size_t i = 0; i < hist.size(); ++i) hist[i] = (i * 3) % 5;
  TestTensor<int64_t> history({batch, time}, hist);
  std::unique_ptr<Instance> greedy =
      Create("greedy", {{"repetition_penalty", 1.7}});
  ASSERT_NE(greedy, nullptr);
  const std::vector<int64_t> expected =
      greedy->Draw(logits.dl(), history.dl(), 0);
  for (int64_t b = 0; b < batch; b += 4) EXPECT_EQ(expected[b], 5);
  for (const auto& [id, c] :
       {std::pair{"top_k", Config{1.3, 1, 1.0, 0.0, 1.7}},
        std::pair{"top_p", Config{0.8, 0, 1e-9, 0.0, 1.7}},
        std::pair{"top_p", Config{2.0, 0, 0.0, 0.0, 1.7}}}) {
    std::unique_ptr<Instance> s = Create(id, c);
    ASSERT_NE(s, nullptr);
    for (uint64_t call = 0; call < 20; ++call) {
      const uint64_t offset = CallOffset(call);
      EXPECT_EQ(s->Draw(logits.dl(), history.dl(), offset), expected)
          << id << " top_k " << c.top_k << " top_p " << c.top_p << " min_p "
          << c.min_p << " offset " << offset;
    }
  }
}

// Hand-computed filtered softmaxes of p = (0.4, 0.3, 0.2, 0.1). The
// combined cases pin the order: the other order would keep other tokens.
TEST_F(SamplingTest, DrawsFromTheFilteredSoftmax) {
  const std::vector<float> x = LogOf({0.4, 0.3, 0.2, 0.1});
  struct Case {
    const char* what;
    Config config;
    std::vector<double> expected;
  };
  const Case cases[] = {
      {"plain", {}, {0.4, 0.3, 0.2, 0.1}},
      {"temperature 0.5 squares p", {0.5}, Normalized({.16, .09, .04, .01})},
      {"temperature 2 takes sqrt(p)",
       {2.0},
       Normalized(
           {std::sqrt(.4), std::sqrt(.3), std::sqrt(.2), std::sqrt(.1)})},
      {"top_k 2", {1.0, 2}, Normalized({.4, .3, 0, 0})},
      {"top_p 0.65", {1.0, 0, 0.65}, Normalized({.4, .3, 0, 0})},
      {"top_p 0.75", {1.0, 0, 0.75}, Normalized({.4, .3, .2, 0})},
      {"min_p 0.3 (keep p >= 0.12)",
       {1.0, 0, 1.0, 0.3},
       Normalized({.4, .3, .2, 0})},
      {"min_p 0.6 (keep p >= 0.24)",
       {1.0, 0, 1.0, 0.6},
       Normalized({.4, .3, 0, 0})},
      // Temperature first: p^2 ~ (.53, .30, .13, .03) reaches 0.8 with two
      // tokens; top-p first would keep three.
      {"temperature 0.5 then top_p 0.8",
       {0.5, 0, 0.8},
       Normalized({.16, .09, 0, 0})},
      // Top-k first: top_p 0.5 of (4/7, 3/7) keeps one token; top-p first
      // would keep two.
      {"top_k 2 then top_p 0.5", {1.0, 2, 0.5}, {1, 0, 0, 0}},
      // Top-p first keeps (.4, .3, .2); min-p first would renormalize to
      // (.44, .33, .22) and top-p would then keep two.
      {"top_p 0.75 then min_p 0.3",
       {1.0, 0, 0.75, 0.3},
       Normalized({.4, .3, .2, 0})},
  };
  for (const Case& c : cases) {
    std::unique_ptr<Instance> s = Create("temperature", c.config);
    ASSERT_NE(s, nullptr);
    ExpectFrequencies(s->Count(x, {}), c.expected, c.what);
    std::vector<double> row(x.begin(), x.end());
    const std::vector<double> reference =
        ReferenceProbabilities(row, {}, c.config);
    for (size_t v = 0; v < row.size(); ++v)
      EXPECT_NEAR(reference[v], c.expected[v], 1e-6)
          << c.what << " token " << v;
  }
}

TEST_F(SamplingTest, MatchesTheReferenceOnRandomLogits) {
  const std::vector<float> x = RandomLogits(12, 8, 1.0f);
  const std::vector<int64_t> history = {3, 3, 0, 11};
  for (const Config& c :
       {Config{0.8, 6, 0.9, 0.05, 1.4}, Config{1.2, 0, 0.7, 0.0, 1.0},
        Config{1.0, 0, 1.0, 0.2, 0.7}}) {
    std::unique_ptr<Instance> s = Create("temperature", c);
    ASSERT_NE(s, nullptr);
    std::vector<double> row(x.begin(), x.end());
    ExpectFrequencies(s->Count(x, history),
                      ReferenceProbabilities(row, history, c),
                      "top_k " + std::to_string(c.top_k) + " top_p " +
                          std::to_string(c.top_p));
  }
}

// Each component applies its own filter by default. Equal logits also show
// the tie rule: the lower ids win.
TEST_F(SamplingTest, EachComponentFiltersByDefault) {
  std::unique_ptr<Instance> top_k = Create("top_k");
  ASSERT_NE(top_k, nullptr);
  std::vector<double> first_50(100, 0.0);
  for (size_t v = 0; v < 50; ++v) first_50[v] = 1.0 / 50;
  ExpectFrequencies(top_k->Count(std::vector<float>(100, 0.5f), {}), first_50,
                    "top_k default 50 of 100 equal logits");

  std::unique_ptr<Instance> top_p = Create("top_p");
  ASSERT_NE(top_p, nullptr);
  ExpectFrequencies(top_p->Count(LogOf({.5, .3, .15, .05}), {}),
                    Normalized({.5, .3, .15, 0}), "top_p default 0.9");
  // 11 / 12 is the first multiple of 1 / 12 to reach 0.9.
  std::vector<double> first_11(12, 1.0 / 11);
  first_11[11] = 0;
  ExpectFrequencies(top_p->Count(std::vector<float>(12, 1.0f), {}), first_11,
                    "top_p 0.9 of 12 equal logits keeps ids 0..10");

  std::unique_ptr<Instance> min_p = Create("min_p");
  ASSERT_NE(min_p, nullptr);
  ExpectFrequencies(min_p->Count(LogOf({.5, .3, .19, .01}), {}),
                    Normalized({.5, .3, .19, 0}), "min_p default 0.05");

  std::unique_ptr<Instance> temperature = Create("temperature");
  ASSERT_NE(temperature, nullptr);
  ExpectFrequencies(temperature->Count(LogOf({.5, .3, .19, .01}), {}),
                    {.5, .3, .19, .01}, "temperature 1, no filter");
}

TEST_F(SamplingTest, MaskedTokensAreNeverDrawn) {
  std::vector<float> x = RandomLogits(10, 9, 0.5f);
  x[0] = x[4] = x[9] = -kInf;
  std::unique_ptr<Instance> s = Create("temperature", Config{3.0});
  ASSERT_NE(s, nullptr);
  std::vector<double> row(x.begin(), x.end());
  ExpectFrequencies(s->Count(x, {}),
                    ReferenceProbabilities(row, {}, Config{3.0}),
                    "-inf logits");
}

// CTRL rule: positive logits are divided by the penalty, negative ones
// multiplied, once per distinct token of the row's own history.
TEST_F(SamplingTest, RepetitionPenaltyFollowsTheCtrlRule) {
  // Rows: (3.0, 1.4) with token 0 seen twice: 1.5 > 1.4 (applied once);
  // (-1.0, -1.5) with token 0 seen: -2.0 < -1.5 (multiplied);
  // (1.0, 2.0) with token 0 seen and penalty < 1: 4.0 > 2.0;
  // (2.0, 1.5) with token 1 seen: the penalty leaves token 0 alone.
  TestTensor<float> logits({4, 2}, {3.0f, 1.4f, -1.0f, -1.5f,  //
                                    1.0f, 2.0f, 2.0f, 1.5f});
  TestTensor<int64_t> history({4, 2}, {0, 0, 0, 0, 0, 0, 1, 1});
  struct Case {
    double penalty;
    std::vector<int64_t> expected;
  };
  for (const Case& c : {Case{2.0, {0, 1, 1, 0}}, Case{0.25, {0, 0, 0, 1}},
                        Case{1.0, {0, 0, 1, 0}}}) {
    std::unique_ptr<Instance> greedy =
        Create("greedy", {{"repetition_penalty", c.penalty}});
    std::unique_ptr<Instance> top_k =
        Create("top_k", Config{1.0, 1, 1.0, 0.0, c.penalty});
    ASSERT_NE(greedy, nullptr);
    ASSERT_NE(top_k, nullptr);
    EXPECT_EQ(greedy->Draw(logits.dl(), history.dl(), 0), c.expected)
        << "penalty " << c.penalty;
    EXPECT_EQ(top_k->Draw(logits.dl(), history.dl(), 0), c.expected)
        << "penalty " << c.penalty;
    // Without a history there is nothing to penalize.
    EXPECT_EQ(greedy->Draw(logits.dl(), nullptr, 0),
              (std::vector<int64_t>{0, 0, 1, 0}));
  }

  // In distribution: logits log(0.4, 0.3, 0.2, 0.1), token 0 seen, penalty
  // 2: its weight becomes 0.4^2.
  std::unique_ptr<Instance> s =
      Create("temperature", Config{1.0, 0, 1.0, 0.0, 2.0});
  ASSERT_NE(s, nullptr);
  ExpectFrequencies(s->Count(LogOf({.4, .3, .2, .1}), {0, 0, 0}),
                    Normalized({.16, .3, .2, .1}), "penalty 2 on token 0");
  // Positive logits log(p) + 5 are divided: token 0 gets (log .4 + 5) / 2.
  const double penalized = (std::log(.4) + 5) / 2 - 5;
  ExpectFrequencies(s->Count(LogOf({.4, .3, .2, .1}, 5.0), {0}),
                    Normalized({std::exp(penalized), .3, .2, .1}),
                    "penalty 2 on a positive logit");
  // Before top-k: token 0 falls from first to last, so top_k 2 keeps 1, 2.
  std::unique_ptr<Instance> k = Create("top_k", Config{1.0, 2, 1.0, 0.0, 3.0});
  ASSERT_NE(k, nullptr);
  ExpectFrequencies(k->Count(LogOf({.4, .3, .2, .1}), {0}),
                    Normalized({0, .3, .2, 0}), "penalty 3 then top_k 2");
}

TEST_F(SamplingTest, HistoryTokensOutsideTheVocabularyAreErrors) {
  TestTensor<float> logits({2, 3}, {0, 1, 2, 3, 4, 5});
  TestTensor<int64_t> history({2, 2}, {0, 1, 2, 3});
  TestTensor<int64_t> tokens({2}, {-1, -1});
  for (const char* id : {"greedy", "top_p"}) {
    std::unique_ptr<Instance> s = Create(id, {{"repetition_penalty", 1.2}});
    ASSERT_NE(s, nullptr);
    ErrorBuffer err;
    EXPECT_EQ(s->Sample(logits.dl(), history.dl(), tokens.dl(), kSeed, 0, &err),
              LLMSYS_STATUS_INVALID_ARGUMENT);
    EXPECT_NE(err.message().find("history row 1 position 1 holds token 3"),
              std::string::npos)
        << err.message();
    EXPECT_EQ(tokens.values(), (std::vector<int64_t>{-1, -1}));

    TestTensor<int64_t> three_rows({3, 1}, {0, 0, 0});
    ErrorBuffer err2;
    EXPECT_EQ(
        s->Sample(logits.dl(), three_rows.dl(), tokens.dl(), kSeed, 0, &err2),
        LLMSYS_STATUS_INVALID_ARGUMENT);
    EXPECT_NE(err2.message().find("history must be (B, T)"), std::string::npos)
        << err2.message();
  }
}

// The last position of (B, T, V) logits viewed without a copy, and a
// history with a column stride of 2: the same tokens as compact copies.
TEST_F(SamplingTest, ReadsStridedViews) {
  const int64_t batch = 3, time = 4, vocab = 16;
  std::vector<float> storage = RandomLogits(batch * time * vocab, 10);
  int64_t shape[] = {batch, vocab};
  int64_t strides[] = {time * vocab, 1};
  DLTensor view{};
  view.data = storage.data();
  view.device = DLDevice{kDLCPU, 0};
  view.ndim = 2;
  view.dtype = LLMSYS_DTYPE_F32;
  view.shape = shape;
  view.strides = strides;
  view.byte_offset = (time - 1) * vocab * sizeof(float);
  std::vector<float> last;
  for (int64_t b = 0; b < batch; ++b) {
    const auto* row = storage.data() + (b * time + time - 1) * vocab;
    last.insert(last.end(), row, row + vocab);
  }
  TestTensor<float> compact({batch, vocab}, last);

  std::vector<int64_t> hist_storage(batch * time * 2, 0);
  std::vector<int64_t> hist(batch * time);
  for (int64_t i = 0; i < batch * time; ++i) {
    hist[i] = (i * 5) % vocab;
    hist_storage[2 * i] = hist[i];
    hist_storage[2 * i + 1] = 15;  // never read
  }
  int64_t hist_shape[] = {batch, time};
  int64_t hist_strides[] = {2 * time, 2};
  DLTensor hist_view{};
  hist_view.data = hist_storage.data();
  hist_view.device = DLDevice{kDLCPU, 0};
  hist_view.ndim = 2;
  hist_view.dtype = LLMSYS_DTYPE_I64;
  hist_view.shape = hist_shape;
  hist_view.strides = hist_strides;
  TestTensor<int64_t> hist_compact({batch, time}, hist);

  std::unique_ptr<Instance> s = Create("top_p", Config{1.0, 0, 0.95, 0.0, 5.0});
  ASSERT_NE(s, nullptr);
  for (uint64_t call = 0; call < 50; ++call) {
    const uint64_t offset = CallOffset(call);
    EXPECT_EQ(s->Draw(&view, &hist_view, offset),
              s->Draw(compact.dl(), hist_compact.dl(), offset))
        << "offset " << offset;
  }
}

TEST_F(SamplingTest, NonFiniteLogitsAreErrorsNamingTheRow) {
  struct Case {
    std::vector<float> logits;  // (3, 3)
    std::string expected;
  };
  const Case cases[] = {
      {{0, 1, 2, 0, kNaN, 1, 3, 2, 1}, "row 1 has NaN at token 1"},
      {{0, 1, 2, 0, 1, 2, 3, kInf, 1}, "row 2 has +inf at token 1"},
      {{-kInf, -kInf, -kInf, 0, 1, 2, 3, 2, 1}, "row 0 has every logit -inf"},
  };
  for (const char* id : kSamplingIds) {
    std::unique_ptr<Instance> s = Create(id);
    ASSERT_NE(s, nullptr);
    for (const Case& c : cases) {
      TestTensor<float> logits({3, 3}, c.logits);
      TestTensor<int64_t> tokens({3}, {-1, -1, -1});
      ErrorBuffer err;
      EXPECT_EQ(s->Sample(logits.dl(), nullptr, tokens.dl(), kSeed, 0, &err),
                LLMSYS_STATUS_INVALID_ARGUMENT)
          << id << ": " << c.expected;
      EXPECT_NE(err.message().find(c.expected), std::string::npos)
          << err.message();
      EXPECT_NE(err.message().find(id), std::string::npos) << err.message();
      EXPECT_EQ(tokens.values(), (std::vector<int64_t>{-1, -1, -1}));
    }
  }
}

TEST_F(SamplingTest, RejectsBadArguments) {
  std::unique_ptr<Instance> s = Create("top_k");
  ASSERT_NE(s, nullptr);
  TestTensor<float> logits({2, 3}, {0, 1, 2, 3, 4, 5});
  TestTensor<int64_t> three({3}, {0, 0, 0});
  ErrorBuffer err;
  EXPECT_EQ(s->Sample(logits.dl(), nullptr, three.dl(), kSeed, 0, &err),
            LLMSYS_STATUS_INVALID_ARGUMENT);
  EXPECT_NE(err.message().find("(2, 3)"), std::string::npos) << err.message();

  TestTensor<double> f64({2, 3}, {0, 1, 2, 3, 4, 5});
  TestTensor<int64_t> tokens({2}, {0, 0});
  ErrorBuffer err2;
  EXPECT_EQ(s->Sample(f64.dl(), nullptr, tokens.dl(), kSeed, 0, &err2),
            LLMSYS_STATUS_INVALID_ARGUMENT);
  EXPECT_NE(err2.message().find("float32"), std::string::npos)
      << err2.message();

  // The random stream lives in the context: sampling needs one.
  llmsys_sample_args_t args{};
  args.struct_size = sizeof(args);
  args.logits = logits.dl();
  args.tokens = tokens.dl();
  const runtime::Component* c = Find("top_k");
  ASSERT_NE(c, nullptr);
  absl::StatusOr<runtime::ParamPack> pack = runtime::ParamPack::Make(c->params);
  ASSERT_TRUE(pack.ok());
  const auto* api = c->As<llmsys_sampler_t>();
  void* instance = nullptr;
  ErrorBuffer err3;
  ASSERT_EQ(api->create(pack->c_params(), &instance, err3.get()),
            LLMSYS_STATUS_OK);
  ErrorBuffer err4;
  EXPECT_EQ(api->sample(instance, &args, err4.get()),
            LLMSYS_STATUS_INVALID_ARGUMENT);
  EXPECT_NE(err4.message().find("context"), std::string::npos)
      << err4.message();
  api->destroy(instance);
}

// Out-of-range parameters fail twice over: the host's schema check names
// the parameter, and so does create if a host skips that check.
TEST_F(SamplingTest, RejectsBadParametersNamingThem) {
  struct Case {
    const char* id;
    const char* name;
    double value;
    bool schema_rejects;  // false: only create can tell (a bound is open)
  };
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const Case cases[] = {
      {"temperature", "temperature", 0.0, false},
      {"top_p", "temperature", -1.0, true},
      {"min_p", "temperature", nan, true},
      {"top_k", "temperature", INFINITY, false},
      {"top_p", "top_p", 1.5, true},
      {"top_p", "top_p", -0.1, true},
      {"temperature", "top_p", nan, true},
      {"min_p", "min_p", 1.01, true},
      {"min_p", "min_p", -0.5, true},
      {"top_k", "top_k", -1, true},
      {"top_k", "repetition_penalty", 0.0, false},
      {"greedy", "repetition_penalty", 0.0, false},
      {"greedy", "repetition_penalty", -2.0, true},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(std::string(c.id) + " " + c.name + " = " +
                 std::to_string(c.value));
    const runtime::Component* component = Find(c.id);
    ASSERT_NE(component, nullptr);
    Overrides overrides;
    if (std::string(c.name) == "top_k") {
      overrides.emplace_back(c.name, static_cast<int64_t>(c.value));
    } else {
      overrides.emplace_back(c.name, c.value);
    }
    absl::StatusOr<runtime::ParamPack> pack =
        runtime::ParamPack::Make(component->params, overrides);
    if (c.schema_rejects) {
      ASSERT_FALSE(pack.ok());
      EXPECT_NE(pack.status().message().find(c.name), std::string::npos)
          << pack.status();
    } else {
      EXPECT_TRUE(pack.ok()) << pack.status();
    }
    std::string message;
    EXPECT_EQ(CreateRaw(c.id, c.name, c.value, &message),
              LLMSYS_STATUS_INVALID_ARGUMENT);
    EXPECT_NE(message.find(std::string("parameter '") + c.name + "'"),
              std::string::npos)
        << message;
  }
  // The bounds themselves are fine.
  for (const Config& c : {Config{1e-3, 0, 0.0, 1.0, 1e-3},
                          Config{100.0, 1000000, 1.0, 0.0, 100.0}}) {
    EXPECT_NE(Create("temperature", c), nullptr);
  }
}

}  // namespace
}  // namespace llmsys::plugins_test
