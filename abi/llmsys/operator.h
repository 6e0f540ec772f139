/* llmsys/operator.h — an operator: one implementation of an op contract
 * (ops.h), forward and backward, for one device.
 *
 * How the host calls it, for one op call:
 *   1. infer(): from the inputs and attributes, the output specs and the
 *      workspace size. It validates shapes and dtypes here and fails with
 *      INVALID_ARGUMENT naming the op, the argument and the shapes.
 *   2. The host allocates the outputs and the workspace.
 *   3. forward(): fills every output.
 *   4. On backward, the host calls infer() again when it still has the
 *      inputs (for the workspace), then backward() with the same call (the
 *      saved inputs), the forward outputs and the output gradients, and
 *      backward writes input gradients.
 * The call's `phase` (ABI 1.6) tells infer which pass the workspace is for,
 * so that a workspace only backward needs is not allocated for forward.
 *
 * Inputs: compact row-major unless the operator sets LLMSYS_OP_STRIDED_INPUTS,
 * on the operator's device, with the dtypes the contract allows. Outputs,
 * gradients and the workspace are compact and 64-byte aligned. Auxiliary
 * outputs (`Tensor(aux)` in the contract) never receive a gradient.
 *
 * Usage (C++): derive from llmsys::sdk::Operator in llmsys/sdk.hpp.
 *
 * Thread-safety: one instance is used by one thread at a time; different
 * instances of the same operator may run concurrently.
 * Ownership: every tensor is borrowed for the call; outputs, gradients and the
 * workspace are host memory that the plugin writes but never frees. */
#ifndef LLMSYS_OPERATOR_H_
#define LLMSYS_OPERATOR_H_

#include <stddef.h>
#include <stdint.h>

#include "llmsys/component.h"
#include "llmsys/host.h"
#include "llmsys/params.h"
#include "llmsys/status.h"
#include "llmsys/tensor.h"

/* One op call, as the operator sees it. Grows only at its end. */
typedef struct llmsys_op_call {
  uint32_t struct_size;
  const llmsys_call_context_t* ctx;
  const char* op; /* the contract name, e.g. "matmul" */
  /* Inputs in contract order; NULL for an absent optional input. A variadic
   * input (Tensor[]) is expanded in place, so num_inputs counts its items. */
  const DLTensor* const* inputs;
  uint32_t num_inputs;
  /* Every attribute of the contract, in contract order, defaults filled. */
  llmsys_params_t attrs;

  /* ---- since ABI 1.6 (check with LLMSYS_CALL_HAS) ---- */

  /* The pass this call is for (LLMSYS_PHASE_*): infer() sizes the
   * workspace for it alone. LLMSYS_PHASE_ANY (also a host before 1.6):
   * the workspace must serve forward and backward alike. */
  uint32_t phase;
} llmsys_op_call_t;

#define LLMSYS_PHASE_ANY 0u      /* infer for shapes, or a host before 1.6 */
#define LLMSYS_PHASE_FORWARD 1u  /* infer then forward */
#define LLMSYS_PHASE_BACKWARD 2u /* infer then backward */

/* Non-zero when the host filled op-call member `member` (it was built
 * against a minor that had it). */
#define LLMSYS_CALL_HAS(call, member)                          \
  ((call)->struct_size >= offsetof(llmsys_op_call_t, member) + \
                              sizeof(((llmsys_op_call_t*)0)->member))

/* Operator flags. */
#define LLMSYS_OP_BACKWARD_NEEDS_INPUTS 0x1u  /* keep inputs for backward */
#define LLMSYS_OP_BACKWARD_NEEDS_OUTPUTS 0x2u /* keep outputs for backward */
/* The operator reads strided inputs (any strides, byte_offset). Without it
 * the host passes every input compact row-major (strides NULL), copying
 * views through the `contiguous` op first. */
#define LLMSYS_OP_STRIDED_INPUTS 0x4u

typedef struct llmsys_operator {
  llmsys_component_t base; /* base.kind == LLMSYS_KIND_OPERATOR */
  const char* op;          /* the op contract it implements */
  uint32_t flags;

  /* Creates an instance from the component's validated parameters (complete,
   * schema order). Optional: NULL means the operator has no state and every
   * call gets instance == NULL. Called on the host's main thread. */
  llmsys_status_t (*create)(const llmsys_params_t* params, void** instance,
                            llmsys_error_t* err);
  /* Destroys what create made. Optional when create is NULL. */
  void (*destroy)(void* instance);

  /* Writes the spec of every output into outputs[0 .. num_outputs) and the
   * scratch bytes the call's phase needs into *workspace_bytes (0 if none;
   * LLMSYS_PHASE_ANY: the larger of forward's and backward's). Must not
   * touch tensor data (it may be called on metadata only). */
  llmsys_status_t (*infer)(void* instance, const llmsys_op_call_t* call,
                           llmsys_tensor_spec_t* outputs, uint32_t num_outputs,
                           size_t* workspace_bytes, llmsys_error_t* err);

  /* Computes the outputs (allocated by the host to the specs infer gave). */
  llmsys_status_t (*forward)(void* instance, const llmsys_op_call_t* call,
                             DLTensor* const* outputs, uint32_t num_outputs,
                             llmsys_error_t* err);

  /* Optional: NULL means not differentiable. `outputs` are the forward's
   * outputs (NULL entries unless LLMSYS_OP_BACKWARD_NEEDS_OUTPUTS), and the
   * call's inputs are NULL unless LLMSYS_OP_BACKWARD_NEEDS_INPUTS.
   * grad_outputs[i] may be NULL (that output's gradient is zero).
   * grad_inputs[i] is NULL when input i needs no gradient; otherwise it has
   * the input's shape and dtype, and backward overwrites all of it. */
  llmsys_status_t (*backward)(void* instance, const llmsys_op_call_t* call,
                              const DLTensor* const* outputs,
                              const DLTensor* const* grad_outputs,
                              uint32_t num_outputs,
                              DLTensor* const* grad_inputs,
                              llmsys_error_t* err);

  /* Rank among the implementations of `op` for the same device: when the
   * experiment does not choose, the host uses the highest (ties: the
   * smallest id). The reference implementations have 0; fast ones ship
   * with 100. */
  int32_t priority;
} llmsys_operator_t;

#endif /* LLMSYS_OPERATOR_H_ */
