/* llmsys/evaluator.h — an evaluator: accumulates predictions and references
 * and reports named metrics with a signature string.
 *
 * The host feeds batches with add() (texts and references, or per-segment
 * log-probabilities and token counts, or predictions and labels, as
 * `inputs` declares), then asks for the metrics once with result().
 * Evaluators never touch the network.
 *
 * Usage (C++): derive from llmsys::sdk::Evaluator in llmsys/sdk.hpp.
 *
 * Thread-safety: one instance is used by one thread at a time.
 * Ownership: every string and tensor in a batch is borrowed for the call;
 * copy what must outlive it. */
#ifndef LLMSYS_EVALUATOR_H_
#define LLMSYS_EVALUATOR_H_

#include <stddef.h>
#include <stdint.h>

#include "llmsys/component.h"
#include "llmsys/params.h"
#include "llmsys/status.h"
#include "llmsys/tensor.h"

/* What an evaluator reads (flags for llmsys_evaluator_t.inputs). */
#define LLMSYS_EVAL_TEXT 0x1u        /* hypotheses and references */
#define LLMSYS_EVAL_LOG_PROBS 0x2u   /* log_probs and token_counts */
#define LLMSYS_EVAL_PREDICTIONS 0x4u /* predictions and labels */

/* One batch of segments. Grows only at its end. */
typedef struct llmsys_eval_batch {
  uint32_t struct_size;
  uint32_t count; /* segments in this batch */
  /* LLMSYS_EVAL_TEXT: [count] UTF-8 hypotheses. */
  const char* const* hypotheses;
  /* LLMSYS_EVAL_TEXT: reference streams, stream-major:
   * references[r * count + i] is reference r of segment i; NULL = missing. */
  const char* const* references;
  uint32_t num_references;
  /* LLMSYS_EVAL_LOG_PROBS: (count) float64 natural-log probability sums and
   * (count) int64 token counts. */
  const DLTensor* log_probs;
  const DLTensor* token_counts;
  /* LLMSYS_EVAL_PREDICTIONS: (count) int64 each. */
  const DLTensor* predictions;
  const DLTensor* labels;
} llmsys_eval_batch_t;

/* Where result() writes its metrics. Grows only at its end. */
typedef struct llmsys_metric_sink {
  uint32_t struct_size;
  void* data; /* host-private */
  /* Records metric `name` = value. `name` is borrowed for the call. */
  void (*emit)(void* data, const char* name, double value);
} llmsys_metric_sink_t;

typedef struct llmsys_evaluator {
  llmsys_component_t base; /* base.kind == LLMSYS_KIND_EVALUATOR */
  uint32_t inputs;         /* LLMSYS_EVAL_* flags */
  llmsys_status_t (*create)(const llmsys_params_t* params, void** instance,
                            llmsys_error_t* err);
  void (*destroy)(void* instance);
  llmsys_status_t (*add)(void* instance, const llmsys_eval_batch_t* batch,
                         llmsys_error_t* err);
  /* Emits every metric, and writes the signature (every option spelled out,
   * e.g. "nrefs:1|case:mixed|tok:13a|smooth:exp|version:1.0.0") into the
   * caller-owned `signature` buffer of `signature_capacity` bytes. */
  llmsys_status_t (*result)(void* instance, const llmsys_metric_sink_t* sink,
                            char* signature, size_t signature_capacity,
                            llmsys_error_t* err);
} llmsys_evaluator_t;

#endif /* LLMSYS_EVALUATOR_H_ */
