/* llmsys/optimizer.h — an optimizer: a parameter update rule with declared
 * per-parameter state.
 *
 * The optimizer declares its state (names and dtypes of tensors shaped like
 * each parameter, e.g. Adam's "exp_avg" and "exp_avg_sq"); the host allocates
 * it zero-filled, checkpoints it, and calls step() with all parameters at
 * once, so an implementation may fuse across them.
 *
 * Usage (C++): derive from llmsys::sdk::Optimizer in llmsys/sdk.hpp.
 *
 * Thread-safety: one instance is used by one thread at a time.
 * Ownership: tensors are borrowed for the call; the plugin updates params
 * and state in place and never frees them. */
#ifndef LLMSYS_OPTIMIZER_H_
#define LLMSYS_OPTIMIZER_H_

#include <stdint.h>

#include "llmsys/component.h"
#include "llmsys/host.h"
#include "llmsys/params.h"
#include "llmsys/status.h"
#include "llmsys/tensor.h"

/* One per-parameter state tensor, shaped like its parameter. Grows only at
 * its end. */
typedef struct llmsys_state_spec {
  uint32_t struct_size;
  const char* name; /* e.g. "exp_avg"; unique within the optimizer */
  DLDataType dtype; /* usually float32, also for bf16 parameters */
} llmsys_state_spec_t;

/* The arguments of one optimizer step. Grows only at its end. */
typedef struct llmsys_optimizer_step {
  uint32_t struct_size;
  const llmsys_call_context_t* ctx;
  uint32_t num_params;
  DLTensor* const* params;      /* [num_params], updated in place */
  const DLTensor* const* grads; /* [num_params] */
  /* [num_params * num_state], parameter-major: state[p * num_state + s]. */
  DLTensor* const* state;
  uint32_t num_state;
  /* [num_params] or NULL: 1 where the parameter is excluded from weight
   * decay (biases, norms), 0 elsewhere. */
  const uint8_t* no_decay;
  int64_t step; /* 1 for the first update; restored on resume */
  double lr;    /* this step's learning rate, after the host's schedule */
} llmsys_optimizer_step_t;

typedef struct llmsys_optimizer {
  llmsys_component_t base; /* base.kind == LLMSYS_KIND_OPTIMIZER */

  /* Creates an instance from validated parameters. Main thread. */
  llmsys_status_t (*create)(const llmsys_params_t* params, void** instance,
                            llmsys_error_t* err);
  void (*destroy)(void* instance);

  /* The instance's per-parameter state: writes a pointer to an array of
   * *num_state spec pointers, owned by the instance and valid until destroy. */
  llmsys_status_t (*state)(void* instance,
                           const llmsys_state_spec_t* const** specs,
                           uint32_t* num_state, llmsys_error_t* err);

  /* Updates every parameter. */
  llmsys_status_t (*step)(void* instance, const llmsys_optimizer_step_t* args,
                          llmsys_error_t* err);
} llmsys_optimizer_t;

#endif /* LLMSYS_OPTIMIZER_H_ */
