/* tests/abi/abi_layout_v1_0.c — the static check that ABI 1.0 still holds:
 * every field of every ABI 1.0 struct keeps its offset and size, and no
 * struct shrinks (abi_layout_v1_0.inc, measured on the frozen headers of
 * tests/abi/v1_0). A plugin built against 1.0 reads and writes exactly
 * those bytes, so a change here breaks it; growth happens only at a
 * struct's end, after its 1.0 fields.
 *
 * Compiled (nothing runs; a failure stops the build) against the current
 * abi/ as C11 and as C++20, and against tests/abi/v1_0 itself, where every
 * struct must have exactly its 1.0 size: that checks the table. */
#include <stddef.h>

#include "llmsys/plugin.h"

#ifdef __cplusplus
#define LLMSYS_V1_0_ASSERT(cond, message) static_assert(cond, message)
#else
#define LLMSYS_V1_0_ASSERT(cond, message) _Static_assert(cond, message)
#endif

#define LLMSYS_V1_0_FIELD(T, field, offset, size)                         \
  LLMSYS_V1_0_ASSERT(                                                     \
      offsetof(T, field) == (offset) && sizeof(((T*)0)->field) == (size), \
      #T "." #field " moved or changed size since ABI 1.0");

#if LLMSYS_ABI_VERSION_MAJOR == 1 && LLMSYS_ABI_VERSION_MINOR == 0
#define LLMSYS_V1_0_STRUCT(T, size) \
  LLMSYS_V1_0_ASSERT(sizeof(T) == (size), #T ": not its ABI 1.0 size");
#else
#define LLMSYS_V1_0_STRUCT(T, size) \
  LLMSYS_V1_0_ASSERT(sizeof(T) >= (size), #T " shrank since ABI 1.0");
#endif

#include "abi_layout_v1_0.inc"

typedef int llmsys_abi_layout_v1_0_unit_t; /* ISO C: no empty unit */
