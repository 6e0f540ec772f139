/* llmsys/sampler.h — a sampler: turns a batch of logits into next tokens.
 *
 * Random numbers come from the call context's counter-based stream
 * (ctx->rng_seed, ctx->rng_offset), so a seeded generation is reproducible.
 *
 * Usage (C++): derive from llmsys::sdk::Sampler in llmsys/sdk.hpp.
 *
 * Thread-safety: one instance is used by one thread at a time.
 * Ownership: tensors are borrowed for the call. */
#ifndef LLMSYS_SAMPLER_H_
#define LLMSYS_SAMPLER_H_

#include <stdint.h>

#include "llmsys/component.h"
#include "llmsys/host.h"
#include "llmsys/params.h"
#include "llmsys/status.h"
#include "llmsys/tensor.h"

/* Grows only at its end. */
typedef struct llmsys_sample_args {
  uint32_t struct_size;
  const llmsys_call_context_t* ctx;
  const DLTensor* logits; /* (B, V) float32 */
  /* (B, T) int64, the tokens so far (prompt included) for penalties; may be
   * NULL. */
  const DLTensor* history;
  DLTensor* tokens; /* (B) int64, written by the sampler */
} llmsys_sample_args_t;

typedef struct llmsys_sampler {
  llmsys_component_t base; /* base.kind == LLMSYS_KIND_SAMPLER */
  llmsys_status_t (*create)(const llmsys_params_t* params, void** instance,
                            llmsys_error_t* err);
  void (*destroy)(void* instance);
  llmsys_status_t (*sample)(void* instance, const llmsys_sample_args_t* args,
                            llmsys_error_t* err);
} llmsys_sampler_t;

#endif /* LLMSYS_SAMPLER_H_ */
