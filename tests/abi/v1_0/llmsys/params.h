/* llmsys/params.h — typed values and the parameter schema every component
 * declares.
 *
 * A component (an optimizer, a sampler, an operator implementation, ...)
 * declares its parameters as an array of llmsys_param_spec_t: name, type,
 * default, range or choices, and a one-line doc. The host validates the
 * experiment's TOML values against that schema before anything is created,
 * fills in defaults, and hands the component a complete llmsys_params_t in
 * schema order. `llmsys plugins describe ID` prints the schema.
 *
 * The same typed key/value list carries an operator call's attributes.
 *
 * Usage (plugin side, plain C):
 *   static const llmsys_param_spec_t kMomentum = {
 *       sizeof(llmsys_param_spec_t), "momentum", LLMSYS_TYPE_FLOAT,
 *       LLMSYS_PARAM_HAS_MIN | LLMSYS_PARAM_HAS_MAX,
 *       {LLMSYS_TYPE_FLOAT, 0, {.f = 0.0}}, 0.0, 1.0, NULL,
 *       "momentum factor (0 disables momentum)"};
 *   static const llmsys_param_spec_t* const kParams[] = {&kMomentum};
 *
 * Thread-safety: plain data. Ownership: every pointer in these structs is
 * owned by whoever built the struct (the plugin for specs, the host for
 * values) and stays valid for the duration documented where it is passed. */
#ifndef LLMSYS_PARAMS_H_
#define LLMSYS_PARAMS_H_

#include <stddef.h>
#include <stdint.h>

/* The type of a parameter, an attribute or a typed value. */
typedef uint32_t llmsys_type_t;
#define LLMSYS_TYPE_BOOL 1       /* as.i is 0 or 1 */
#define LLMSYS_TYPE_INT 2        /* as.i */
#define LLMSYS_TYPE_FLOAT 3      /* as.f */
#define LLMSYS_TYPE_STRING 4     /* as.s, UTF-8, NUL-terminated */
#define LLMSYS_TYPE_INT_LIST 5   /* as.ints[0 .. count) */
#define LLMSYS_TYPE_FLOAT_LIST 6 /* as.floats[0 .. count) */

/* A typed value. Frozen: never grows (it is used in arrays). */
typedef struct llmsys_typed_value {
  llmsys_type_t type;
  uint32_t count; /* number of elements for the list types; 0 otherwise */
  union {
    int64_t i;
    double f;
    const char* s;
    const int64_t* ints;
    const double* floats;
  } as;
} llmsys_typed_value_t;

/* One named value. Frozen: never grows (it is used in arrays). */
typedef struct llmsys_param {
  const char* name;
  llmsys_typed_value_t value;
} llmsys_param_t;

/* A list of named values: a component's parameters (complete, in schema
 * order, defaults filled in by the host) or an operator call's attributes
 * (complete, in the op contract's order). Frozen. */
typedef struct llmsys_params {
  const llmsys_param_t* items;
  uint32_t count;
} llmsys_params_t;

/* Flags of a parameter spec. */
#define LLMSYS_PARAM_REQUIRED                    \
  0x1u /* no default: the experiment must set it \
        */
#define LLMSYS_PARAM_HAS_MIN                      \
  0x2u /* min_value applies (numbers, list items) \
        */
#define LLMSYS_PARAM_HAS_MAX                      \
  0x4u /* max_value applies (numbers, list items) \
        */

/* One declared parameter. Grows only at its end; read `struct_size` first.
 *
 * Rules the host enforces when it loads a plugin (a violation rejects the
 * component, naming plugin file, component and parameter):
 *   - name: non-empty, [a-z][a-z0-9_]*, unique within the component;
 *   - type: one of LLMSYS_TYPE_*; default_value.type equals it unless
 *     LLMSYS_PARAM_REQUIRED is set;
 *   - min_value <= max_value, and the default lies within them;
 *   - choices (strings only): a '|'-separated list of allowed values that
 *     contains the default; NULL allows any string;
 *   - doc: a non-empty one-line description. */
typedef struct llmsys_param_spec {
  uint32_t struct_size; /* sizeof(llmsys_param_spec_t) the plugin saw */
  const char* name;
  llmsys_type_t type;
  uint32_t flags;
  llmsys_typed_value_t default_value;
  double min_value;
  double max_value;
  const char* choices;
  const char* doc;
} llmsys_param_spec_t;

#endif /* LLMSYS_PARAMS_H_ */
