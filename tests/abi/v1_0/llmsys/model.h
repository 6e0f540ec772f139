/* llmsys/model.h — a model: a network built from op calls through the host.
 *
 * create() declares the parameters (host->declare_parameter), so the host
 * owns their memory, initializes them from the run's seed, checkpoints them
 * and hands them to the optimizer. forward() receives named input values
 * (e.g. "tokens", "targets"; "src", "tgt"), builds the computation by
 * host->call_op, and names its outputs with host->set_output ("loss" for
 * training, "logits" for generation). The host records the op calls and runs
 * backward itself.
 *
 * Key/value cache (LLMSYS_MODE_GENERATE): the cache is the host's, passed
 * in and out as values, so the host can reorder, select or drop batch rows
 * (beam search, finished sequences) by indexing dim 0 and the model keeps
 * no state between calls.
 *   - inputs: "tokens" (B, T_new), the new tokens, at positions
 *     past_length .. past_length + T_new - 1; and, when past_length = P > 0,
 *     every value the previous call output under a name starting "cache."
 *     (e.g. "cache.blocks.0.k"), under the same name, rows selected or
 *     reordered by the host as it wishes (dim 0 is the batch).
 *   - outputs: "logits" (B, T_new, V) and, for every cache entry,
 *     "cache.<name>" holding the keys/values of all P + T_new positions,
 *     batch as dim 0 (the past concatenated with the new: a new value,
 *     the inputs are never written in place).
 *   - P = 0 starts a sequence (no cache inputs). A model may output no
 *     "cache." values at all; the host then recomputes the whole prefix
 *     each step. The new queries attend to every past position and causally
 *     among themselves. P + T_new beyond the model's context is an error;
 *     the host re-runs the last tokens from P = 0 instead.
 * LLMSYS_MODE_TRAIN and LLMSYS_MODE_EVAL take past_length 0 and output no
 * cache.
 *
 * Usage (C++): derive from llmsys::sdk::Model in llmsys/sdk.hpp.
 *
 * Thread-safety: one instance is used by one thread at a time.
 * Ownership: the graph and every value handle are the host's; handles the
 * plugin receives from host functions are released by the plugin. The
 * inputs array is borrowed for the call (its handles are not the plugin's to
 * release). */
#ifndef LLMSYS_MODEL_H_
#define LLMSYS_MODEL_H_

#include <stdint.h>

#include "llmsys/component.h"
#include "llmsys/host.h"
#include "llmsys/params.h"
#include "llmsys/status.h"

/* What a forward call is for. */
#define LLMSYS_MODE_TRAIN 0    /* dropout on, "loss" expected */
#define LLMSYS_MODE_EVAL 1     /* dropout off, "loss" and/or "logits" */
#define LLMSYS_MODE_GENERATE 2 /* dropout off, incremental: "cache." values */

/* A named input value. Frozen: used in arrays. */
typedef struct llmsys_named_value {
  const char* name;
  llmsys_value_t value;
} llmsys_named_value_t;

/* Grows only at its end. */
typedef struct llmsys_model_inputs {
  uint32_t struct_size;
  uint32_t mode; /* LLMSYS_MODE_* */
  const llmsys_named_value_t* values;
  uint32_t num_values;
  /* LLMSYS_MODE_GENERATE: tokens already seen, held by the "cache." inputs
   * (0: none; see the cache convention at the top). */
  int64_t past_length;
} llmsys_model_inputs_t;

typedef struct llmsys_model {
  llmsys_component_t base; /* base.kind == LLMSYS_KIND_MODEL */
  /* Creates an instance and declares its parameters on `graph`. */
  llmsys_status_t (*create)(const llmsys_params_t* params,
                            llmsys_graph_t* graph, void** instance,
                            llmsys_error_t* err);
  void (*destroy)(void* instance);
  llmsys_status_t (*forward)(void* instance, llmsys_graph_t* graph,
                             const llmsys_model_inputs_t* inputs,
                             llmsys_error_t* err);
} llmsys_model_t;

#endif /* LLMSYS_MODEL_H_ */
