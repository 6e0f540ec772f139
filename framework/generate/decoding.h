// framework/generate/decoding.h — text from a language model: a sampler
// component with its parameters, batched incremental decoding with the
// model's key/value cache, and a beam search generic over the model.
//
// Users: the trainer (samples after training, `llmsys generate`), and the
// encoder-decoder models of a later issue through the generic BeamSearch.
//
// clang-format off
//   PluginLanguageModel lm(*gpt, instance, &ops, &parameters, /*context=*/64);
//   LLMSYS_ASSIGN_OR_RETURN(auto sampler,
//                           Sampler::Create(*top_p, {{"top_p", 0.9}}));
//   LLMSYS_ASSIGN_OR_RETURN(DecodeResult r, Decode(lm, *sampler, {prompt_ids},
//       {.max_tokens = 100, .stop_tokens = {2}, .seed = 7}));
//   // r.outputs[0].tokens: the continuation; r.stats: tokens/s.
// clang-format on
//
// The cache follows llmsys/model.h: a LLMSYS_MODE_GENERATE call takes the
// new tokens, past_length and the "cache." values of the previous call and
// returns logits and the grown cache, the batch as dim 0 of every cache
// value, so the host selects rows (finished sequences dropped, beams
// reordered) by indexing dim 0. With the cache off, or for a model that
// returns no cache, every step recomputes the last context() tokens. When a
// sequence outgrows the context, both ways re-run its last context() tokens
// from position 0, so greedy decoding gives the same tokens with and without
// the cache (up to float rounding in near-ties of the logits).
//
// Thread-safety: none of these objects may be used from two threads at once;
// distinct instances are independent. Ownership: PluginLanguageModel borrows
// everything it is given; the caller keeps it alive.
#ifndef LLMSYS_FRAMEWORK_GENERATE_DECODING_H_
#define LLMSYS_FRAMEWORK_GENERATE_DECODING_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "framework/runtime/dispatch.h"
#include "framework/runtime/param_schema.h"
#include "framework/runtime/parameters.h"
#include "framework/runtime/plugin.h"
#include "framework/tensor/tensor.h"

namespace llmsys::generate {

// ---- the model side ----

// The "cache." values of a GENERATE call, by name (llmsys/model.h). Dim 0
// of every value is the batch.
using Cache = std::vector<std::pair<std::string, tensor::Tensor>>;

// Rows `rows` of every cache value (dim 0), in that order, as compact
// copies. OUT_OF_RANGE names a row beyond the batch.
absl::StatusOr<Cache> SelectCacheRows(const Cache& cache,
                                      const std::vector<int64_t>& rows);

struct LmOutput {
  tensor::Tensor logits;  // (B, T_new, V)
  Cache cache;            // empty when the model keeps none
};

// A causal language model, one LLMSYS_MODE_GENERATE call at a time.
class LanguageModel {
 public:
  virtual ~LanguageModel() = default;
  // tokens (B, T_new) int64 at positions past_length .. past_length +
  // T_new - 1; `cache` is the previous call's cache (rows as the caller
  // chose), empty when past_length is 0. `conditions` are further inputs
  // every call receives, row r of each belonging to row r of tokens (an
  // encoder-decoder's "src" and "src_padding_mask"); usually none.
  virtual absl::StatusOr<LmOutput> Forward(const tensor::Tensor& tokens,
                                           int64_t past_length,
                                           const Cache& cache,
                                           const Cache& conditions) = 0;
  // The longest context: past_length + T_new <= context().
  virtual int64_t context() const = 0;
  // For messages: "model gpt".
  virtual std::string name() const = 0;
};

// A model component's instance called through its C struct, with the
// dispatcher and parameters its create() declared into (all borrowed).
class PluginLanguageModel : public LanguageModel {
 public:
  PluginLanguageModel(const runtime::Component& model, void* instance,
                      runtime::OpDispatcher* ops,
                      runtime::ParameterStore* parameters, int64_t context);
  absl::StatusOr<LmOutput> Forward(const tensor::Tensor& tokens,
                                   int64_t past_length, const Cache& cache,
                                   const Cache& conditions) override;
  int64_t context() const override { return context_; }
  std::string name() const override;

 private:
  const runtime::Component* model_;
  void* instance_;
  runtime::OpDispatcher* ops_;
  runtime::ParameterStore* parameters_;
  int64_t context_;
};

// ---- samplers ----

// A sampler component instance (llmsys/sampler.h) created with its
// parameters, checked against the component's schema.
class Sampler {
 public:
  static absl::StatusOr<std::unique_ptr<Sampler>> Create(
      const runtime::Component& component,
      const std::vector<std::pair<std::string, runtime::ParamValue>>& params =
          {});
  ~Sampler();
  Sampler(const Sampler&) = delete;
  Sampler& operator=(const Sampler&) = delete;

  // The next token of each row of `logits` (B, V) (float32, or float64
  // converted), given `history` (B, T) int64, the tokens so far with the
  // prompt (undefined: none), drawing from the random stream (rng_seed,
  // rng_offset). A token outside [0, V) is an INTERNAL error naming the
  // sampler.
  absl::StatusOr<std::vector<int64_t>> Sample(const tensor::Tensor& logits,
                                              const tensor::Tensor& history,
                                              uint64_t rng_seed,
                                              uint64_t rng_offset);
  const runtime::Component& component() const { return *component_; }

 private:
  Sampler() = default;
  const runtime::Component* component_ = nullptr;
  void* instance_ = nullptr;
};

// The random stream of a decoded sequence: sequence `index` (its position in
// the prompts given to Decode) draws its token of step s (0-based) from
// (SequenceSeed(seed, index), StepOffset(s)), so its tokens depend on the
// seed and its own prompt only, not on the other sequences of the batch or
// when they finish.
uint64_t SequenceSeed(uint64_t seed, uint64_t index);
inline uint64_t StepOffset(int64_t step) {
  return static_cast<uint64_t>(step) << 32;  // random.h: 2^32 per call
}

// ---- sampling decode ----

struct DecodeOptions {
  int64_t max_tokens = 16;  // new tokens per sequence, at most
  // A sequence ends when it samples one of these (not kept in its tokens).
  std::vector<int32_t> stop_tokens = {};
  // ... or when its continuation (not the prompt) contains one of these;
  // its tokens then end with the token that completed the match.
  std::vector<std::string> stop_strings = {};
  // The bytes of a token; needed for stop_strings.
  std::function<std::string(int32_t)> token_text = nullptr;
  bool use_cache = true;
  uint64_t seed = 0;  // see SequenceSeed
  // Inputs of every model call, row i of each for prompt i (the model
  // receives the rows of the sequences it continues; LanguageModel).
  Cache conditions = {};
};

enum class FinishReason { kLength, kStopToken, kStopString };
// "length", "stop_token", "stop_string".
std::string_view FinishReasonName(FinishReason reason);

struct Continuation {
  std::vector<int32_t> tokens;  // generated, without the prompt
  FinishReason finish = FinishReason::kLength;
  int32_t stop_token = -1;  // kStopToken: the one sampled
  std::string stop_string;  // kStopString: the one found
};

// Work and time of one Decode or BeamSearch. Prefill is each batch's first
// model call (the prompts); decode is every later call.
struct DecodeStats {
  int64_t sequences = 0;
  int64_t prompt_tokens = 0;
  int64_t generated_tokens = 0;  // sampled (stop tokens included)
  int64_t model_calls = 0;
  double prefill_seconds = 0;
  double decode_seconds = 0;

  double seconds() const { return prefill_seconds + decode_seconds; }
  double TokensPerSecond() const;         // generated / seconds
  double PrefillTokensPerSecond() const;  // prompt tokens / prefill
  // Tokens generated after each batch's first / decode seconds.
  double DecodeTokensPerSecond() const;
  // One line: "12 tokens in 0.10 s: 120.0 tokens/s (prefill ..., decode
  // ...)".
  std::string Describe() const;
};

struct DecodeResult {
  std::vector<Continuation> outputs;  // one per prompt, in order
  DecodeStats stats;
};

// Continues every prompt (non-empty token ids) with tokens drawn by
// `sampler` from the model's logits at the last position. Prompts of equal
// length share the model calls of one batch (one cache length); the
// sampler is called per row, each with its own random stream, so a row's
// tokens do not depend on its batch; groups run one after the
// other in increasing length, and a sequence that finishes leaves its batch
// (its cache rows dropped). A prompt longer than the context keeps its last
// context() tokens. Errors: a model error, logits of the wrong shape, a
// sampler error, stop strings without token_text.
absl::StatusOr<DecodeResult> Decode(
    LanguageModel& model, Sampler& sampler,
    const std::vector<std::vector<int32_t>>& prompts,
    const DecodeOptions& options);

// ---- beam search ----

struct BeamOptions {
  int64_t num_beams = 4;
  int64_t max_tokens = 16;  // new tokens per hypothesis (its EOS included)
  // score = sum of log p / length^length_penalty, length = the generated
  // tokens with the EOS (as fairseq and Hugging Face transformers).
  double length_penalty = 1.0;
  std::vector<int32_t> eos_tokens = {};  // none: every hypothesis runs to max
};

struct Hypothesis {
  std::vector<int32_t> tokens;  // generated, without the prompt or the EOS
  bool eos = false;             // ended by an EOS (else by max_tokens)
  double log_prob = 0;          // sum of log p, the EOS's included
  double score = 0;             // log_prob / length^length_penalty
};

// The live beams at one step: row r extends prefixes[r] (prompt and
// generated tokens) of input inputs[r]. The rows of one input are
// contiguous, inputs in increasing order.
struct BeamRows {
  std::vector<std::vector<int32_t>> prefixes;
  std::vector<int64_t> inputs;
};
// Log-probabilities of the next token for each row: (rows, V), every row of
// the same V.
using BeamStepFn =
    std::function<absl::StatusOr<std::vector<std::vector<double>>>(
        const BeamRows& rows)>;
// Called before every step but the first: row i of the next step continues
// row parents[i] of the last one (a model reorders its cache with it).
using BeamReorderFn =
    std::function<absl::Status(const std::vector<int64_t>& parents)>;

// Beam search over any model, for every prompt at once (the prompts may
// differ in length; the model part lives in `step` and `reorder`). Each
// step keeps, per input, the num_beams best non-EOS continuations among the
// best num_beams * (1 + number of EOS tokens) candidates; an EOS among the
// num_beams best candidates finishes a hypothesis. An input stops when it
// holds num_beams finished hypotheses and no live beam can still beat the
// worst of them (an exact bound: log p <= 0 and the longest length), or at
// max_tokens, when its live beams become hypotheses too. Returns, per
// prompt, its hypotheses best first (at most num_beams). Hugging Face's
// early_stopping="never" rule; with num_beams 1 and length_penalty 0 the
// result is greedy decoding.
absl::StatusOr<std::vector<std::vector<Hypothesis>>> BeamSearch(
    const std::vector<std::vector<int32_t>>& prompts,
    const BeamOptions& options, const BeamStepFn& step,
    const BeamReorderFn& reorder);

// Beam search with a language model: log-softmax of its last logits, the
// cache (when `use_cache`) reordered with the beams, the context handled as
// Decode does. Prompts of equal length search together. `stats` (may be
// null) receives the work done; every beam's token counts as generated.
// `conditions` as DecodeOptions::conditions (each beam gets its prompt's
// rows).
absl::StatusOr<std::vector<std::vector<Hypothesis>>> BeamSearch(
    LanguageModel& model, const std::vector<std::vector<int32_t>>& prompts,
    const BeamOptions& options, bool use_cache, DecodeStats* stats = nullptr,
    const Cache& conditions = {});

}  // namespace llmsys::generate

#endif  // LLMSYS_FRAMEWORK_GENERATE_DECODING_H_
