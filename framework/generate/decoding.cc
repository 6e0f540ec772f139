#include "framework/generate/decoding.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <limits>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "framework/autograd/autograd.h"
#include "framework/core/logging.h"
#include "framework/core/status_macros.h"
#include "framework/runtime/graph.h"
#include "llmsys/model.h"
#include "llmsys/sampler.h"

namespace llmsys::generate {
namespace {

using Clock = std::chrono::steady_clock;
using tensor::Tensor;

constexpr std::string_view kCachePrefix = "cache.";

double Seconds(Clock::time_point since) {
  return std::chrono::duration<double>(Clock::now() - since).count();
}

// (rows.size(), w) int64: the last w tokens of every row (each has >= w).
absl::StatusOr<Tensor> LastTokens(
    const std::vector<const std::vector<int32_t>*>& rows, int64_t w) {
  const int64_t b = static_cast<int64_t>(rows.size());
  LLMSYS_ASSIGN_OR_RETURN(Tensor t, Tensor::Empty({b, w}, tensor::kI64));
  int64_t* out = t.data_as<int64_t>();
  for (int64_t r = 0; r < b; ++r) {
    const std::vector<int32_t>& seq = *rows[static_cast<size_t>(r)];
    const int64_t start = static_cast<int64_t>(seq.size()) - w;
    for (int64_t i = 0; i < w; ++i)
      out[r * w + i] = seq[static_cast<size_t>(start + i)];
  }
  return t;
}

// One batch of equal-length sequences and the model's cache for them: the
// next-token logits of every row, each call reusing the cache when it can.
class CachedStepper {
 public:
  // `conditions`: the model's per-prompt inputs (DecodeOptions), borrowed.
  CachedStepper(LanguageModel& model, bool use_cache, const Cache& conditions)
      : model_(model), use_cache_(use_cache), conditions_(conditions) {}

  // Logits (B, V) of the token after each row (all of one length); row r
  // continues prompt `prompts[r]` (whose conditions it gets).
  absl::StatusOr<Tensor> Next(
      const std::vector<const std::vector<int32_t>*>& rows,
      const std::vector<int64_t>& prompts) {
    const int64_t b = static_cast<int64_t>(rows.size());
    const int64_t len = static_cast<int64_t>(rows[0]->size());
    for (const std::vector<int32_t>* r : rows)
      if (static_cast<int64_t>(r->size()) != len)
        return absl::InternalError(
            "decode: the rows of a batch must have equal lengths");
    const int64_t context = model_.context();
    int64_t past = 0, fresh = std::min(len, context);
    // The cache holds all but the newest token, and one more position fits.
    if (use_cache_ && !cache_.empty() && cached_ == len - 1 &&
        cached_ + 1 <= context) {
      past = cached_;
      fresh = 1;
    }
    LLMSYS_ASSIGN_OR_RETURN(Tensor tokens, LastTokens(rows, fresh));
    Cache conditions;
    if (!conditions_.empty()) {
      LLMSYS_ASSIGN_OR_RETURN(conditions,
                              SelectCacheRows(conditions_, prompts));
    }
    LLMSYS_ASSIGN_OR_RETURN(
        LmOutput out,
        model_.Forward(tokens, past, past > 0 ? cache_ : Cache{}, conditions));
    ++calls_;
    const tensor::Shape& s = out.logits.shape();
    if (!out.logits.defined() || s.size() != 3 || s[0] != b || s[1] != fresh ||
        s[2] < 1)
      return absl::FailedPreconditionError(
          absl::StrCat(model_.name(), ": logits must be (B, T_new, V) = (", b,
                       ", ", fresh, ", V), got ",
                       out.logits.defined() ? tensor::ShapeString(s) : "none"));
    if (use_cache_) {
      cache_ = std::move(out.cache);
      cached_ = cache_.empty() ? 0 : past + fresh;
      if (cache_.empty() && !warned_) {
        warned_ = true;
        core::Log(core::LogLevel::kDebug,
                  absl::StrCat(model_.name(),
                               " returned no cache: every step recomputes "
                               "the context"));
      }
    }
    LLMSYS_ASSIGN_OR_RETURN(Tensor last, out.logits.Slice(1, fresh - 1, fresh));
    return last.Reshape({b, s[2]});
  }

  // Keeps rows `rows` (dim 0) of the cache, in that order.
  absl::Status Select(const std::vector<int64_t>& rows) {
    if (cache_.empty()) return absl::OkStatus();
    LLMSYS_ASSIGN_OR_RETURN(cache_, SelectCacheRows(cache_, rows));
    return absl::OkStatus();
  }

  int64_t calls() const { return calls_; }

 private:
  LanguageModel& model_;
  bool use_cache_;
  const Cache& conditions_;
  Cache cache_;
  int64_t cached_ = 0;  // positions the cache holds
  int64_t calls_ = 0;
  bool warned_ = false;
};

// Prompt indices grouped by prompt length, shortest first.
std::map<size_t, std::vector<size_t>> ByLength(
    const std::vector<std::vector<int32_t>>& prompts) {
  std::map<size_t, std::vector<size_t>> groups;
  for (size_t i = 0; i < prompts.size(); ++i)
    groups[prompts[i].size()].push_back(i);
  return groups;
}

uint64_t SplitMix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// log_prob / length^alpha (length 0: the log-probability itself).
double BeamScore(double log_prob, int64_t length, double alpha) {
  if (length <= 0) return log_prob;
  return log_prob / std::pow(static_cast<double>(length), alpha);
}

}  // namespace

// ---- the model side ----

absl::StatusOr<Cache> SelectCacheRows(const Cache& cache,
                                      const std::vector<int64_t>& rows) {
  Cache out;
  out.reserve(cache.size());
  for (const auto& [name, t] : cache) {
    if (t.ndim() < 1)
      return absl::InvalidArgumentError(
          absl::StrCat("cache value '", name, "' ", t.Describe(),
                       " has no batch dimension"));
    tensor::Shape shape = t.shape();
    shape[0] = static_cast<int64_t>(rows.size());
    LLMSYS_ASSIGN_OR_RETURN(Tensor dst,
                            Tensor::Empty(shape, t.dtype(), t.device()));
    for (size_t i = 0; i < rows.size(); ++i) {
      const int64_t r = rows[i];
      if (r < 0 || r >= t.shape()[0])
        return absl::OutOfRangeError(absl::StrCat("cache value '", name, "' ",
                                                  t.Describe(), ": row ", r,
                                                  " is not in the batch"));
      const int64_t at = static_cast<int64_t>(i);
      LLMSYS_ASSIGN_OR_RETURN(Tensor to, dst.Slice(0, at, at + 1));
      LLMSYS_ASSIGN_OR_RETURN(Tensor from, t.Slice(0, r, r + 1));
      LLMSYS_RETURN_IF_ERROR(to.CopyFrom(from));
    }
    out.emplace_back(name, std::move(dst));
  }
  return out;
}

PluginLanguageModel::PluginLanguageModel(const runtime::Component& model,
                                         void* instance,
                                         runtime::OpDispatcher* ops,
                                         runtime::ParameterStore* parameters,
                                         int64_t context)
    : model_(&model),
      instance_(instance),
      ops_(ops),
      parameters_(parameters),
      context_(context) {}

std::string PluginLanguageModel::name() const {
  return absl::StrCat("model ", model_->id);
}

absl::StatusOr<LmOutput> PluginLanguageModel::Forward(const Tensor& tokens,
                                                      int64_t past_length,
                                                      const Cache& cache,
                                                      const Cache& conditions) {
  autograd::NoGradGuard no_grad;
  runtime::Graph graph(ops_, parameters_);
  std::vector<llmsys_named_value_t> values;
  // Inputs on the ops' device (the cache is there already).
  LLMSYS_ASSIGN_OR_RETURN(Tensor on_device, tokens.ToDevice(ops_->device()));
  values.push_back({"tokens", graph.NewValue(autograd::MakeLeaf(
                                  on_device, false, "tokens"))});
  for (const Cache* named : {&conditions, &cache})
    for (const auto& [name, t] : *named) {
      LLMSYS_ASSIGN_OR_RETURN(Tensor value, t.ToDevice(ops_->device()));
      values.push_back({name.c_str(), graph.NewValue(autograd::MakeLeaf(
                                          value, false, name))});
    }
  llmsys_model_inputs_t inputs{};
  inputs.struct_size = sizeof(inputs);
  inputs.mode = LLMSYS_MODE_GENERATE;
  inputs.values = values.data();
  inputs.num_values = static_cast<uint32_t>(values.size());
  inputs.past_length = past_length;
  char message[2048] = {};
  llmsys_error_t err{message, sizeof(message)};
  const llmsys_status_t st = model_->As<llmsys_model_t>()->forward(
      instance_, graph.c(), &inputs, &err);
  for (llmsys_named_value_t& v : values) graph.Release(v.value);
  if (st != LLMSYS_STATUS_OK)
    return runtime::PluginStatus(st, absl::StrCat(name(), " forward"), message);
  LmOutput out;
  for (const auto& [name, var] : graph.outputs()) {
    if (name == "logits") out.logits = var->data;
    if (name.compare(0, kCachePrefix.size(), kCachePrefix) == 0)
      out.cache.emplace_back(name, var->data);
  }
  if (!out.logits.defined())
    return absl::FailedPreconditionError(
        absl::StrCat(name(), " set no 'logits' output in generate mode"));
  return out;
}

// ---- samplers ----

absl::StatusOr<std::unique_ptr<Sampler>> Sampler::Create(
    const runtime::Component& component,
    const std::vector<std::pair<std::string, runtime::ParamValue>>& params) {
  if (component.kind != LLMSYS_KIND_SAMPLER)
    return absl::InvalidArgumentError(
        absl::StrCat(component.id, " is a ", runtime::KindName(component.kind),
                     ", not a sampler"));
  absl::StatusOr<runtime::ParamPack> pack =
      runtime::ParamPack::Make(component.params, params);
  if (!pack.ok())
    return absl::InvalidArgumentError(
        absl::StrCat("sampler ", component.id, ": ", pack.status().message()));
  std::unique_ptr<Sampler> s(new Sampler);
  s->component_ = &component;
  char message[1024] = {};
  llmsys_error_t err{message, sizeof(message)};
  const llmsys_status_t st = component.As<llmsys_sampler_t>()->create(
      pack->c_params(), &s->instance_, &err);
  if (st != LLMSYS_STATUS_OK) {
    s->instance_ = nullptr;
    return runtime::PluginStatus(
        st, absl::StrCat("sampler ", component.id, " create"), message);
  }
  return s;
}

Sampler::~Sampler() {
  if (instance_ != nullptr)
    component_->As<llmsys_sampler_t>()->destroy(instance_);
}

absl::StatusOr<std::vector<int64_t>> Sampler::Sample(const Tensor& logits,
                                                     const Tensor& history,
                                                     uint64_t rng_seed,
                                                     uint64_t rng_offset) {
  if (logits.ndim() != 2 || !tensor::IsFloatDType(logits.dtype()))
    return absl::InvalidArgumentError(
        absl::StrCat("sampler ", component_->id,
                     ": logits must be float (B, V), got ", logits.Describe()));
  // Samplers run on the host: float32 logits and int64 history there.
  LLMSYS_ASSIGN_OR_RETURN(Tensor l, logits.ToDevice(tensor::kCpu));
  if (!(l.dtype() == tensor::kF32)) {
    LLMSYS_ASSIGN_OR_RETURN(l, l.To(tensor::kF32));
  }
  const int64_t b = l.shape()[0], v = l.shape()[1];
  Tensor h;
  if (history.defined()) {
    LLMSYS_ASSIGN_OR_RETURN(h, history.ToDevice(tensor::kCpu));
    LLMSYS_ASSIGN_OR_RETURN(h, h.To(tensor::kI64));
  }
  LLMSYS_ASSIGN_OR_RETURN(Tensor tokens, Tensor::Zeros({b}, tensor::kI64));
  DLTensor l_dl = l.Dl(), h_dl{}, t_dl = tokens.Dl();
  if (h.defined()) h_dl = h.Dl();
  llmsys_call_context_t ctx = runtime::CpuCallContext(*component_, 1);
  ctx.rng_seed = rng_seed;
  ctx.rng_offset = rng_offset;
  llmsys_sample_args_t args;
  std::memset(&args, 0, sizeof(args));
  args.struct_size = sizeof(args);
  args.ctx = &ctx;
  args.logits = &l_dl;
  args.history = h.defined() ? &h_dl : nullptr;
  args.tokens = &t_dl;
  char message[1024] = {};
  llmsys_error_t err{message, sizeof(message)};
  const llmsys_status_t st =
      component_->As<llmsys_sampler_t>()->sample(instance_, &args, &err);
  if (st != LLMSYS_STATUS_OK)
    return runtime::PluginStatus(st, absl::StrCat("sampler ", component_->id),
                                 message);
  std::vector<int64_t> out(static_cast<size_t>(b));
  const int64_t* data = tokens.data_as<int64_t>();
  for (int64_t i = 0; i < b; ++i) {
    if (data[i] < 0 || data[i] >= v)
      return absl::InternalError(absl::StrCat(
          "sampler ", component_->id, " returned token ", data[i], " for row ",
          i, ", outside the vocabulary [0, ", v, ")"));
    out[static_cast<size_t>(i)] = data[i];
  }
  return out;
}

uint64_t SequenceSeed(uint64_t seed, uint64_t index) {
  return SplitMix64(seed ^ SplitMix64(index));
}

// ---- sampling decode ----

std::string_view FinishReasonName(FinishReason reason) {
  switch (reason) {
    case FinishReason::kLength:
      return "length";
    case FinishReason::kStopToken:
      return "stop_token";
    case FinishReason::kStopString:
      return "stop_string";
  }
  return "?";
}

double DecodeStats::TokensPerSecond() const {
  return seconds() > 0 ? static_cast<double>(generated_tokens) / seconds() : 0;
}
double DecodeStats::PrefillTokensPerSecond() const {
  return prefill_seconds > 0
             ? static_cast<double>(prompt_tokens) / prefill_seconds
             : 0;
}
double DecodeStats::DecodeTokensPerSecond() const {
  // Each sequence's first token comes from the prefill.
  const int64_t n = std::max<int64_t>(0, generated_tokens - sequences);
  return decode_seconds > 0 ? static_cast<double>(n) / decode_seconds : 0;
}

std::string DecodeStats::Describe() const {
  return absl::StrFormat(
      "%d tokens in %.2f s: %.1f tokens/s (prefill %d prompt tokens in "
      "%.3f s, %.1f tokens/s; decode %.2f s, %.1f tokens/s; %d model calls)",
      generated_tokens, seconds(), TokensPerSecond(), prompt_tokens,
      prefill_seconds, PrefillTokensPerSecond(), decode_seconds,
      DecodeTokensPerSecond(), model_calls);
}

absl::StatusOr<DecodeResult> Decode(
    LanguageModel& model, Sampler& sampler,
    const std::vector<std::vector<int32_t>>& prompts,
    const DecodeOptions& options) {
  if (options.max_tokens < 0)
    return absl::InvalidArgumentError(absl::StrCat(
        "decode: max_tokens must be >= 0, got ", options.max_tokens));
  if (!options.stop_strings.empty() && !options.token_text)
    return absl::InvalidArgumentError(
        "decode: stop strings need token_text (the bytes of a token)");
  size_t longest_stop = 0;
  for (const std::string& s : options.stop_strings) {
    if (s.empty())
      return absl::InvalidArgumentError("decode: a stop string is empty");
    longest_stop = std::max(longest_stop, s.size());
  }
  if (model.context() < 1)
    return absl::InvalidArgumentError(absl::StrCat(
        "decode: ", model.name(), " has a context of ", model.context()));
  DecodeResult result;
  result.outputs.resize(prompts.size());
  result.stats.sequences = static_cast<int64_t>(prompts.size());
  for (size_t i = 0; i < prompts.size(); ++i) {
    if (prompts[i].empty())
      return absl::InvalidArgumentError(absl::StrCat(
          "decode: prompt ", i, " has no tokens (start it with <bos>)"));
    result.stats.prompt_tokens += static_cast<int64_t>(prompts[i].size());
  }

  struct Row {
    size_t index;              // into prompts
    std::vector<int32_t> seq;  // prompt + generated
    std::string text;          // generated bytes (stop strings only)
  };
  for (const auto& [length, members] : ByLength(prompts)) {
    std::vector<Row> rows;
    for (size_t i : members) rows.push_back({i, prompts[i], ""});
    std::vector<size_t> active(rows.size());
    for (size_t i = 0; i < active.size(); ++i) active[i] = i;
    CachedStepper stepper(model, options.use_cache, options.conditions);
    for (int64_t step = 0; step < options.max_tokens && !active.empty();
         ++step) {
      const Clock::time_point start = Clock::now();
      std::vector<const std::vector<int32_t>*> seqs;
      std::vector<int64_t> indices;
      for (size_t a : active) {
        seqs.push_back(&rows[a].seq);
        indices.push_back(static_cast<int64_t>(rows[a].index));
      }
      LLMSYS_ASSIGN_OR_RETURN(Tensor logits,
                              stepper.Next(seqs, indices));  // (B, V)
      ++result.stats.model_calls;
      std::vector<int64_t> keep;
      for (size_t i = 0; i < active.size(); ++i) {
        Row& row = rows[active[i]];
        Continuation& out = result.outputs[row.index];
        const int64_t at = static_cast<int64_t>(i);
        LLMSYS_ASSIGN_OR_RETURN(Tensor row_logits, logits.Slice(0, at, at + 1));
        LLMSYS_ASSIGN_OR_RETURN(
            Tensor history,
            LastTokens({&row.seq}, static_cast<int64_t>(row.seq.size())));
        LLMSYS_ASSIGN_OR_RETURN(
            std::vector<int64_t> picked,
            sampler.Sample(row_logits, history,
                           SequenceSeed(options.seed, row.index),
                           StepOffset(step)));
        const int32_t token = static_cast<int32_t>(picked[0]);
        ++result.stats.generated_tokens;
        bool done = false;
        if (std::find(options.stop_tokens.begin(), options.stop_tokens.end(),
                      token) != options.stop_tokens.end()) {
          out.finish = FinishReason::kStopToken;
          out.stop_token = token;
          done = true;
        } else {
          row.seq.push_back(token);
          out.tokens.push_back(token);
          if (!options.stop_strings.empty()) {
            // Only a match that ends in the new token's bytes is new.
            const size_t before = row.text.size();
            row.text += options.token_text(token);
            const size_t from =
                before >= longest_stop ? before - longest_stop + 1 : 0;
            for (const std::string& s : options.stop_strings) {
              if (row.text.find(s, from) != std::string::npos) {
                out.finish = FinishReason::kStopString;
                out.stop_string = s;
                done = true;
                break;
              }
            }
          }
        }
        if (!done) keep.push_back(at);
      }
      if (!keep.empty() && keep.size() < active.size()) {
        LLMSYS_RETURN_IF_ERROR(stepper.Select(keep));
      }
      std::vector<size_t> still;
      for (int64_t k : keep) still.push_back(active[static_cast<size_t>(k)]);
      active = std::move(still);
      (step == 0 ? result.stats.prefill_seconds
                 : result.stats.decode_seconds) += Seconds(start);
    }
  }
  return result;
}

// ---- beam search ----

absl::StatusOr<std::vector<std::vector<Hypothesis>>> BeamSearch(
    const std::vector<std::vector<int32_t>>& prompts,
    const BeamOptions& options, const BeamStepFn& step,
    const BeamReorderFn& reorder) {
  const int64_t k = options.num_beams;
  if (k < 1)
    return absl::InvalidArgumentError(
        absl::StrCat("beam search: num_beams must be >= 1, got ", k));
  if (options.max_tokens < 0)
    return absl::InvalidArgumentError(absl::StrCat(
        "beam search: max_tokens must be >= 0, got ", options.max_tokens));
  if (!std::isfinite(options.length_penalty))
    return absl::InvalidArgumentError(
        "beam search: length_penalty must be finite");
  const double alpha = options.length_penalty;
  const size_t n = prompts.size();
  std::vector<std::vector<Hypothesis>> finished(n);
  if (options.max_tokens == 0) {
    for (auto& f : finished) f.push_back(Hypothesis{});
    return finished;
  }

  struct Beam {
    int64_t input;
    std::vector<int32_t> prefix;  // prompt + generated
    std::vector<int32_t> generated;
    double log_prob;
  };
  auto is_eos = [&](int32_t t) {
    return std::find(options.eos_tokens.begin(), options.eos_tokens.end(), t) !=
           options.eos_tokens.end();
  };
  // Keeps the k best hypotheses of an input, best first (ties: earlier).
  auto add = [&](std::vector<Hypothesis>& hyps, Hypothesis h) {
    auto at = std::upper_bound(hyps.begin(), hyps.end(), h,
                               [](const Hypothesis& a, const Hypothesis& b) {
                                 return a.score > b.score;
                               });
    hyps.insert(at, std::move(h));
    if (static_cast<int64_t>(hyps.size()) > k) hyps.pop_back();
  };

  std::vector<Beam> beams;
  for (size_t i = 0; i < n; ++i)
    beams.push_back({static_cast<int64_t>(i), prompts[i], {}, 0.0});
  const size_t candidates_per_input =
      static_cast<size_t>(k) * (1 + options.eos_tokens.size());
  for (int64_t t = 0; t < options.max_tokens && !beams.empty(); ++t) {
    BeamRows rows;
    for (const Beam& b : beams) {
      rows.prefixes.push_back(b.prefix);
      rows.inputs.push_back(b.input);
    }
    LLMSYS_ASSIGN_OR_RETURN(std::vector<std::vector<double>> log_probs,
                            step(rows));
    if (log_probs.size() != beams.size())
      return absl::InvalidArgumentError(
          absl::StrCat("beam search: the step function returned ",
                       log_probs.size(), " rows for ", beams.size()));
    const size_t vocab = log_probs[0].size();
    for (size_t r = 0; r < log_probs.size(); ++r) {
      if (log_probs[r].size() != vocab || vocab == 0)
        return absl::InvalidArgumentError(absl::StrCat(
            "beam search: row ", r, " of the step function has ",
            log_probs[r].size(), " log-probabilities, row 0 has ", vocab));
    }

    std::vector<Beam> next;
    std::vector<int64_t> parents;
    const bool last_step = t + 1 == options.max_tokens;
    for (size_t first = 0; first < beams.size();) {
      const int64_t input = beams[first].input;
      size_t end = first;
      while (end < beams.size() && beams[end].input == input) ++end;
      // (score, row, token), best first; ties to the lower row, then token.
      struct Candidate {
        double log_prob;
        size_t row;
        int32_t token;
      };
      std::vector<Candidate> c;
      c.reserve((end - first) * vocab);
      for (size_t r = first; r < end; ++r) {
        for (size_t v = 0; v < vocab; ++v) {
          const double lp = log_probs[r][v];
          if (std::isnan(lp) || lp > 1e-9)
            return absl::InvalidArgumentError(
                absl::StrCat("beam search: log-probability ", lp, " of token ",
                             v, " in row ", r, " is not <= 0"));
          if (lp == -std::numeric_limits<double>::infinity()) continue;
          c.push_back({beams[r].log_prob + lp, r, static_cast<int32_t>(v)});
        }
      }
      auto better = [](const Candidate& a, const Candidate& b) {
        if (a.log_prob != b.log_prob) return a.log_prob > b.log_prob;
        if (a.row != b.row) return a.row < b.row;
        return a.token < b.token;
      };
      const size_t top = std::min(candidates_per_input, c.size());
      std::partial_sort(c.begin(), c.begin() + static_cast<int64_t>(top),
                        c.end(), better);
      std::vector<Hypothesis>& hyps = finished[static_cast<size_t>(input)];
      const size_t next_first = next.size();
      for (size_t rank = 0; rank < top; ++rank) {
        const Candidate& cand = c[rank];
        const Beam& parent = beams[cand.row];
        if (is_eos(cand.token)) {
          if (rank >= static_cast<size_t>(k)) continue;
          const int64_t length =
              static_cast<int64_t>(parent.generated.size()) + 1;
          add(hyps, {parent.generated, true, cand.log_prob,
                     BeamScore(cand.log_prob, length, alpha)});
          continue;
        }
        Beam b{input, parent.prefix, parent.generated, cand.log_prob};
        b.prefix.push_back(cand.token);
        b.generated.push_back(cand.token);
        next.push_back(std::move(b));
        parents.push_back(static_cast<int64_t>(cand.row));
        if (static_cast<int64_t>(next.size() - next_first) == k) break;
      }
      // Done: out of tokens (the live beams become hypotheses), no live
      // beam, or none can beat the worst of k hypotheses.
      bool done = next.size() == next_first;
      if (last_step) {
        for (size_t i = next_first; i < next.size(); ++i) {
          const int64_t length = static_cast<int64_t>(next[i].generated.size());
          add(hyps, {next[i].generated, false, next[i].log_prob,
                     BeamScore(next[i].log_prob, length, alpha)});
        }
        done = true;
      } else if (!done && static_cast<int64_t>(hyps.size()) >= k) {
        double best = -std::numeric_limits<double>::infinity();
        for (size_t i = next_first; i < next.size(); ++i)
          best = std::max(best, next[i].log_prob);
        // A live beam's hypothesis has length in [t + 2, max_tokens] and a
        // log-probability <= best (<= 0).
        const int64_t length = alpha > 0 ? options.max_tokens : t + 2;
        done = hyps.back().score >= BeamScore(best, length, alpha);
      }
      if (done) {
        next.resize(next_first);
        parents.resize(next_first);
      }
      first = end;
    }
    beams = std::move(next);
    if (!beams.empty()) LLMSYS_RETURN_IF_ERROR(reorder(parents));
  }
  return finished;
}

absl::StatusOr<std::vector<std::vector<Hypothesis>>> BeamSearch(
    LanguageModel& model, const std::vector<std::vector<int32_t>>& prompts,
    const BeamOptions& options, bool use_cache, DecodeStats* stats,
    const Cache& conditions) {
  DecodeStats local;
  DecodeStats& s = stats != nullptr ? *stats : local;
  s.sequences += static_cast<int64_t>(prompts.size());
  for (size_t i = 0; i < prompts.size(); ++i) {
    if (prompts[i].empty())
      return absl::InvalidArgumentError(absl::StrCat(
          "beam search: prompt ", i, " has no tokens (start it with <bos>)"));
    s.prompt_tokens += static_cast<int64_t>(prompts[i].size());
  }
  std::vector<std::vector<Hypothesis>> result(prompts.size());
  for (const auto& [length, members] : ByLength(prompts)) {
    std::vector<std::vector<int32_t>> group;
    for (size_t i : members) group.push_back(prompts[i]);
    CachedStepper stepper(model, use_cache, conditions);
    auto step = [&](const BeamRows& rows)
        -> absl::StatusOr<std::vector<std::vector<double>>> {
      const Clock::time_point start = Clock::now();
      const bool first = stepper.calls() == 0;
      std::vector<const std::vector<int32_t>*> seqs;
      for (const std::vector<int32_t>& p : rows.prefixes) seqs.push_back(&p);
      std::vector<int64_t> indices;  // rows.inputs index the group
      for (int64_t in : rows.inputs)
        indices.push_back(
            static_cast<int64_t>(members[static_cast<size_t>(in)]));
      LLMSYS_ASSIGN_OR_RETURN(Tensor logits,
                              stepper.Next(seqs, indices));  // (B, V)
      const int64_t v = logits.shape()[1];
      const std::vector<double> x = logits.ToDoubles();
      std::vector<std::vector<double>> out(rows.prefixes.size());
      for (size_t r = 0; r < out.size(); ++r) {
        const double* row = x.data() + r * static_cast<size_t>(v);
        const double mx = *std::max_element(row, row + v);
        double sum = 0;
        for (int64_t i = 0; i < v; ++i) sum += std::exp(row[i] - mx);
        const double lse = mx + std::log(sum);
        out[r].resize(static_cast<size_t>(v));
        for (int64_t i = 0; i < v; ++i)
          out[r][static_cast<size_t>(i)] = row[i] - lse;
      }
      ++s.model_calls;
      s.generated_tokens += static_cast<int64_t>(rows.prefixes.size());
      (first ? s.prefill_seconds : s.decode_seconds) += Seconds(start);
      return out;
    };
    auto reorder = [&](const std::vector<int64_t>& parents) {
      return stepper.Select(parents);
    };
    LLMSYS_ASSIGN_OR_RETURN(std::vector<std::vector<Hypothesis>> hyps,
                            BeamSearch(group, options, step, reorder));
    for (size_t i = 0; i < members.size(); ++i)
      result[members[i]] = std::move(hyps[i]);
  }
  return result;
}

}  // namespace llmsys::generate
