/* llmsys/host.h — what the host offers a plugin: the host API table and the
 * per-call context.
 *
 * The host hands every plugin its own llmsys_host_api_t in init(); plugins
 * never link against the host library. The table stays valid, at the same
 * address, until the plugin's deinit() returns, so plugins keep the pointer.
 *
 * Versioning: the table grows only at its end. A plugin built against minor
 * M may use the members that minor M had; `struct_size` says how many the
 * host filled (LLMSYS_HOST_HAS(host, member) checks one).
 *
 * Usage:
 *   host->log(host, LLMSYS_LOG_INFO, "cache built");
 *   void* p = host->alloc(host, device, bytes, 64);  ...  host->free(host,
 * device, p);
 *
 * Graph functions (value handles, op calls, parameter declaration, outputs)
 * are how a model plugin builds its computation: it calls ops through the
 * host, which picks the implementation the experiment chose and records the
 * call for backward. They take the llmsys_graph_t the model function was
 * given, are valid only during that call, and only on the thread that made
 * it. Value handles are owned by the host and reference counted: every
 * handle a host function returns to the plugin carries one reference that
 * the plugin must give back with value_release (the C++ SDK does this).
 *
 * Thread-safety: log, alloc and free may be called from any thread at any
 * time between init() and the end of deinit(). Graph functions: see above. */
#ifndef LLMSYS_HOST_H_
#define LLMSYS_HOST_H_

#include <stddef.h>
#include <stdint.h>

#include "llmsys/params.h"
#include "llmsys/status.h"
#include "llmsys/tensor.h"

typedef uint32_t llmsys_log_level_t;
#define LLMSYS_LOG_DEBUG 0
#define LLMSYS_LOG_INFO 1
#define LLMSYS_LOG_WARNING 2
#define LLMSYS_LOG_ERROR 3

/* Opaque host objects. */
typedef struct llmsys_graph llmsys_graph_t; /* a model call's recording scope */
typedef struct llmsys_value* llmsys_value_t; /* a tensor value in a graph */

/* A parameter a model declares: the host allocates, initializes, checkpoints
 * it and hands it to the optimizer. Grows only at its end. */
typedef struct llmsys_parameter_decl {
  uint32_t struct_size;
  const char*
      name; /* unique within the model, e.g. "blocks.0.attn.qkv.weight" */
  int32_t ndim;
  const int64_t* shape; /* [ndim], borrowed for the call */
  DLDataType dtype;
  /* Initializer: "zeros", "ones", "normal" (mean a, std b), "uniform" (a, b).
   */
  const char* init;
  double init_a;
  double init_b;
  uint32_t flags; /* LLMSYS_PARAMETER_NO_DECAY: exclude from weight decay */
} llmsys_parameter_decl_t;
#define LLMSYS_PARAMETER_NO_DECAY 0x1u

typedef struct llmsys_host_api llmsys_host_api_t;

/* A function of one value, built with op calls on `graph` (a model's F or G
 * of a coupling layer). `context` holds further inputs (masks, positions),
 * borrowed for the call; `*out` receives a new value of x's shape and dtype
 * (one reference, the host's). Since ABI 1.1. */
typedef struct llmsys_function {
  void* self; /* the plugin's; valid until the graph's backward has run */
  llmsys_status_t (*call)(void* self, llmsys_graph_t* graph, llmsys_value_t x,
                          const llmsys_value_t* context, uint32_t num_context,
                          llmsys_value_t* out, llmsys_error_t* err);
} llmsys_function_t;

/* An additive coupling layer on a state split in halves (x1, x2):
 *   regular form  y1 = x1 + F(x2),  y2 = x2 + G(y1)
 *   inverse form  x2 = y2 - G(y1),  x1 = y1 - F(x2)   (inverse != 0: the
 *                 layer maps its input (a1, a2) read as (y1, y2) to (x1, x2))
 * Since ABI 1.1. Frozen: used in arrays. */
typedef struct llmsys_coupling {
  llmsys_function_t f;
  llmsys_function_t g;
  uint32_t inverse;
  uint32_t reserved; /* 0 */
} llmsys_coupling_t;

struct llmsys_host_api {
  uint32_t struct_size;
  uint32_t abi_major; /* the host's ABI version */
  uint32_t abi_minor;
  const char* host_version; /* e.g. "0.1.0"; host-owned, static */
  void* host_data;          /* host-private; plugins must not touch it */

  /* Writes `message` to the run's log, prefixed with the plugin id.
   * `message` is borrowed for the call. Any thread. */
  void (*log)(const llmsys_host_api_t* host, llmsys_log_level_t level,
              const char* message);

  /* Allocates `bytes` on `device` aligned to `alignment` (a power of two;
   * 0 means 64; on a GPU at most 256, from the host's caching allocator,
   * usable in work queued on the call's stream). Returns NULL on failure.
   * Memory from alloc goes back through free on the same device, never through
   * the plugin's own allocator. Any thread. */
  void* (*alloc)(const llmsys_host_api_t* host, DLDevice device, size_t bytes,
                 size_t alignment);
  void (*free)(const llmsys_host_api_t* host, DLDevice device, void* ptr);

  /* ---- graph functions (model plugins) ---- */

  /* Adds one reference to `value`. */
  void (*value_retain)(const llmsys_host_api_t* host, llmsys_value_t value);
  /* Gives back one reference; the host frees the value when none is left. */
  void (*value_release)(const llmsys_host_api_t* host, llmsys_value_t value);
  /* Fills `view` with a borrowed view of the value's tensor, valid while the
   * plugin holds a reference and until the next graph call. */
  llmsys_status_t (*value_tensor)(const llmsys_host_api_t* host,
                                  llmsys_value_t value, DLTensor* view,
                                  llmsys_error_t* err);
  /* Copies `src` (host-visible memory) into a new constant value on the
   * run's device. */
  llmsys_status_t (*value_from_tensor)(const llmsys_host_api_t* host,
                                       llmsys_graph_t* graph,
                                       const DLTensor* src, llmsys_value_t* out,
                                       llmsys_error_t* err);
  /* Calls op `op` (an op contract name) on `inputs` (NULL for an absent
   * optional input) with `attrs` (any subset, by name; the contract's
   * defaults fill the rest). Writes `num_outputs` new values to `outputs`.
   * The implementation is the one the experiment chose for this op. */
  llmsys_status_t (*call_op)(const llmsys_host_api_t* host,
                             llmsys_graph_t* graph, const char* op,
                             const llmsys_value_t* inputs, uint32_t num_inputs,
                             const llmsys_params_t* attrs,
                             llmsys_value_t* outputs, uint32_t num_outputs,
                             llmsys_error_t* err);
  /* Declares (in a model's create) or looks up (in forward) a parameter. */
  llmsys_status_t (*declare_parameter)(const llmsys_host_api_t* host,
                                       llmsys_graph_t* graph,
                                       const llmsys_parameter_decl_t* decl,
                                       llmsys_value_t* out,
                                       llmsys_error_t* err);
  /* Declares or looks up a persistent buffer that is not trained, such as a
   * key/value cache for incremental decoding (zero-initialized). */
  llmsys_status_t (*declare_buffer)(const llmsys_host_api_t* host,
                                    llmsys_graph_t* graph,
                                    const llmsys_parameter_decl_t* decl,
                                    llmsys_value_t* out, llmsys_error_t* err);
  /* Names an output of a model call: "loss" (a scalar, for training),
   * "logits" (for generation and evaluation), or any name an evaluator reads.
   */
  llmsys_status_t (*set_output)(const llmsys_host_api_t* host,
                                llmsys_graph_t* graph, const char* name,
                                llmsys_value_t value, llmsys_error_t* err);
  /* A view of `value` without copying (LLMSYS_VIEW_*; `ints` as the kind
   * says, borrowed for the call). Gradients flow through views. Reshape
   * copies when the strides do not allow a view, as torch.reshape does. */
  llmsys_status_t (*value_view)(const llmsys_host_api_t* host,
                                llmsys_graph_t* graph, uint32_t kind,
                                llmsys_value_t value, const int64_t* ints,
                                uint32_t num_ints, llmsys_value_t* out,
                                llmsys_error_t* err);

  /* ---- since ABI 1.1 ---- */

  /* Runs `num_layers` coupling layers in order on the halves (x1, x2),
   * writing the final halves to out[0], out[1], without keeping any
   * activation inside the stack: backward rebuilds each layer's input from
   * its output with the opposite form and recomputes F and G one at a time
   * (Gomez et al., "The Reversible Residual Network", 2017), so the memory
   * of a training step does not grow with the number of layers. F and G
   * receive `context` (borrowed) and may use dropout: each call replays the
   * random stream of its first run. Gradients equal those of the same
   * layers written out as op calls, up to the rounding of the rebuilt
   * inputs. `layers` is copied; the functions' `self` must stay valid
   * until backward. Without gradient recording the layers simply run. */
  llmsys_status_t (*call_couplings)(
      const llmsys_host_api_t* host, llmsys_graph_t* graph,
      const llmsys_coupling_t* layers, uint32_t num_layers, llmsys_value_t x1,
      llmsys_value_t x2, const llmsys_value_t* context, uint32_t num_context,
      llmsys_value_t* out, llmsys_error_t* err);

  /* ---- since ABI 1.2 ---- */

  /* Runs fn(arg, task) for every task in [0, num_tasks) on the host's one
   * CPU thread pool, on at most `num_threads` threads (the calling thread
   * included; pass the call context's num_threads), and returns when every
   * task has run. A task runs whole on one thread; which thread is
   * unspecified, so for results that do not depend on timing split the work
   * by task index alone (a reduction keeps one partial per task and adds
   * them in task order afterwards). Called from inside a task, or while
   * another thread's run holds the pool, it runs the tasks in order on the
   * calling thread. fn must return normally (no exception, no longjmp).
   * Any thread. Check with LLMSYS_HOST_HAS(host, parallel_for). */
  void (*parallel_for)(const llmsys_host_api_t* host, int32_t num_threads,
                       int64_t num_tasks, void* arg,
                       void (*fn)(void* arg, int64_t task));

  /* ---- since ABI 1.5 ---- */

  /* The pipeline stage a model call builds (pipeline parallelism: the
   * model's layers split over processes, docs/distributed.md): stage
   * `*stage` of `*num_stages`; 0 of 1 is the whole model. A model that
   * splits calls this in create() and in forward():
   *   - create() declares only the parameters its stage uses. One used by
   *     several stages (a tied embedding) is declared by each of them: the
   *     host gives them the same initial values and sums their gradients.
   *   - forward() of stage 0 reads the model's inputs; a later stage reads
   *     "pipeline.in", the value the stage before set as the output
   *     "pipeline.out", and the model's inputs too (the last stage needs
   *     the targets). Every stage but the last sets "pipeline.out" (one
   *     floating-point value, any shape); the last sets the whole model's
   *     outputs ("loss", "logits").
   * The host splits only a model that calls this in create(), and never in
   * LLMSYS_MODE_GENERATE. An error (too many stages for the model's layers)
   * is the model's to report from create(). Graph functions' rules; check
   * with LLMSYS_HOST_HAS(host, pipeline_stage). */
  llmsys_status_t (*pipeline_stage)(const llmsys_host_api_t* host,
                                    llmsys_graph_t* graph, uint32_t* stage,
                                    uint32_t* num_stages, llmsys_error_t* err);
};

/* View kinds for value_view. Negative dims count from the end. */
#define LLMSYS_VIEW_RESHAPE 1 /* ints: the new shape; one -1 is inferred */
#define LLMSYS_VIEW_PERMUTE 2 /* ints: every dim once, in its new order */
#define LLMSYS_VIEW_SLICE 3   /* ints: {dim, start, stop, step}, step >= 1 */
#define LLMSYS_VIEW_EXPAND 4  /* ints: the new shape; -1 keeps a dim */
#define LLMSYS_VIEW_DETACH 5  /* no ints: same data, cut from the gradient */

/* Non-zero when the host's table has `member` (it was built against a minor
 * that had it). */
#define LLMSYS_HOST_HAS(host, member)                                    \
  ((host)->struct_size >= offsetof(llmsys_host_api_t, member) +          \
                              sizeof(((llmsys_host_api_t*)0)->member) && \
   (host)->member != NULL)

/* What every compute call (operator, optimizer step, sampler) receives.
 * Grows only at its end. Borrowed for the call. */
typedef struct llmsys_call_context {
  uint32_t struct_size;
  const llmsys_host_api_t* host;
  DLDevice device;
  /* The stream to run on (cudaStream_t on CUDA; NULL on the CPU). Never use
   * the default stream. */
  void* stream;
  /* The host's BLAS handle for `device` (cublasHandle_t on CUDA; NULL on the
   * CPU). */
  void* blas_handle;
  /* Counter-based random stream (Philox 4x32-10 by convention): the call's
   * random numbers are a pure function of (seed, offset), so a call can be
   * replayed. The host advances the offset between calls. */
  uint64_t rng_seed;
  uint64_t rng_offset;
  /* Scratch memory the operator asked for in infer(); NULL if none. */
  void* workspace;
  size_t workspace_bytes;
  /* Threads the call may use on the CPU (>= 1). */
  int32_t num_threads;

  /* ---- since ABI 1.4 (check with LLMSYS_CONTEXT_HAS) ---- */

  /* The host's cuBLASLt handle for `device` (cublasLtHandle_t on CUDA; NULL
   * on the CPU). */
  void* blas_lt_handle;
  /* Scratch memory on `device` for cuBLAS(Lt) calls made on `stream` during
   * this call (NULL and 0 on the CPU). Owned by the host; the next call on
   * the stream may reuse it, so never keep it past the call. */
  void* blas_workspace;
  size_t blas_workspace_bytes;
} llmsys_call_context_t;

/* Non-zero when the host filled context member `member` (it was built
 * against a minor that had it). */
#define LLMSYS_CONTEXT_HAS(ctx, member)                            \
  ((ctx)->struct_size >= offsetof(llmsys_call_context_t, member) + \
                             sizeof(((llmsys_call_context_t*)0)->member))

#endif /* LLMSYS_HOST_H_ */
