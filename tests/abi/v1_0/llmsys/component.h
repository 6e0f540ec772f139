/* llmsys/component.h — the kinds of component and the header every
 * component starts with.
 *
 * A plugin provides components. Each is a static, plugin-owned struct of its
 * kind (llmsys_operator_t, llmsys_optimizer_t, ...) whose first member is an
 * llmsys_component_t, so the host can read the common part through a
 * pointer to it. The host reads kind-specific members only after checking
 * `base.struct_size`.
 *
 * Ids: lower-case letters, digits, '_', '-' and '.'. An operator's id is
 * "<op>.<implementation>" (e.g. "matmul.blas"); the other kinds use a plain
 * name ("adamw", "top_p", "bleu", "gpt").
 *
 * Thread-safety: plain data, read-only after the plugin's init() returns.
 * Ownership: the plugin owns the struct and every string and array it points
 * to; they must stay valid and unchanged until deinit() returns. */
#ifndef LLMSYS_COMPONENT_H_
#define LLMSYS_COMPONENT_H_

#include <stdint.h>

#include "llmsys/params.h"

typedef uint32_t llmsys_kind_t;
#define LLMSYS_KIND_OPERATOR 1
#define LLMSYS_KIND_OPTIMIZER 2
#define LLMSYS_KIND_SAMPLER 3
#define LLMSYS_KIND_EVALUATOR 4
#define LLMSYS_KIND_MODEL 5
/* Not a component: a new op contract the plugin declares for its models and
 * operators (see ops.h); listed through the same entry functions. */
#define LLMSYS_KIND_OP_CONTRACT 6

/* The common head of every component. Frozen: never grows, because the
 * kind-specific members follow it. */
typedef struct llmsys_component {
  /* sizeof the whole kind struct the plugin was built with (e.g.
   * sizeof(llmsys_optimizer_t)), so the kind struct can grow at its end. */
  uint32_t struct_size;
  llmsys_kind_t kind;
  const char* id;
  const char* version;     /* the component's own version, e.g. "1.2.0" */
  const char* description; /* one line */
  /* DLDeviceType the component runs on (kDLCPU, kDLCUDA); 0 for components
   * that touch no tensors (most evaluators). */
  int32_t device_type;
  uint32_t num_params;
  /* [num_params] pointers to the parameter schema (see params.h). */
  const llmsys_param_spec_t* const* params;
} llmsys_component_t;

#endif /* LLMSYS_COMPONENT_H_ */
