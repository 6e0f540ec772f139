/* llmsys/plugin.h — the one symbol a plugin exports: its entry table.
 *
 * This is the header a plugin includes; it brings in every other ABI
 * header. A plugin is a shared library that exports exactly one symbol,
 * `llmsys_plugin_entry` (LLMSYS_ENTRY_SYMBOL), an llmsys_plugin_entry_t.
 * Everything else has hidden visibility. The host:
 *   1. finds the symbol in the file without running any of its code;
 *   2. loads it (RTLD_NOW | RTLD_LOCAL) and reads abi_major/abi_minor: a
 *      different major, or a newer minor than the host's, is refused;
 *   3. calls init(host) once, then count()/get() for each kind;
 *   4. calls deinit() once, when nothing from the plugin is alive any more.
 * Registration happens in init(), never in static constructors.
 *
 * Usage (plain C; the C++ SDK's LLMSYS_PLUGIN macro writes this for you):
 *   LLMSYS_EXTERN_C LLMSYS_EXPORT const llmsys_plugin_entry_t
 * llmsys_plugin_entry; const llmsys_plugin_entry_t llmsys_plugin_entry = {
 *       sizeof(llmsys_plugin_entry_t), LLMSYS_ABI_VERSION_MAJOR,
 *       LLMSYS_ABI_VERSION_MINOR, "team7.attention", "0.1.0",
 *       "A faster attention", "MIT", my_init, my_deinit, my_count, my_get};
 *
 * Thread-safety: the host calls every entry function from its main thread,
 * never concurrently. Ownership: the entry table and all it points to belong
 * to the plugin and stay valid while the library is loaded. */
#ifndef LLMSYS_PLUGIN_H_
#define LLMSYS_PLUGIN_H_

#include <stdint.h>

#include "llmsys/component.h"
#include "llmsys/evaluator.h"
#include "llmsys/host.h"
#include "llmsys/model.h"
#include "llmsys/operator.h"
#include "llmsys/ops.h"
#include "llmsys/optimizer.h"
#include "llmsys/params.h"
#include "llmsys/random.h"
#include "llmsys/sampler.h"
#include "llmsys/status.h"
#include "llmsys/tensor.h"
#include "llmsys/version.h"

#define LLMSYS_ENTRY_SYMBOL "llmsys_plugin_entry"

/* The entry table. Its first three members keep their place in every future
 * major version, so any host can tell which ABI a plugin was built against.
 * Grows only at its end. */
typedef struct llmsys_plugin_entry {
  uint32_t struct_size; /* sizeof(llmsys_plugin_entry_t) the plugin saw */
  uint32_t abi_major;   /* LLMSYS_ABI_VERSION_MAJOR the plugin was built with */
  uint32_t abi_minor;   /* LLMSYS_ABI_VERSION_MINOR the plugin was built with */
  const char* id;       /* the plugin's id, e.g. "llmsys.optimizers" */
  const char* version;  /* the plugin's version, e.g. "0.1.0" */
  const char* description;
  const char* license; /* SPDX identifier, e.g. "MIT" */

  /* Called once, before anything else. `host` stays valid until deinit()
   * returns. On failure write why into `err`; the host then unloads the
   * plugin without calling deinit(). */
  llmsys_status_t (*init)(const llmsys_host_api_t* host, llmsys_error_t* err);
  /* Called once, last, when nothing created by the plugin is alive. */
  void (*deinit)(void);
  /* How many components of `kind` the plugin provides (0 for unknown kinds). */
  uint32_t (*count)(llmsys_kind_t kind);
  /* The index-th component of `kind` (for LLMSYS_KIND_OP_CONTRACT, an
   * llmsys_op_contract_t), valid until deinit(); NULL if out of range. */
  const void* (*get)(llmsys_kind_t kind, uint32_t index);
} llmsys_plugin_entry_t;

#endif /* LLMSYS_PLUGIN_H_ */
