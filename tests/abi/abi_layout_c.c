/* The ABI's struct layouts as a C11 compiler sees them: pinned by static
 * assertions, and reported to the C++ test so both languages must agree. */
#include <stddef.h>
#include <string.h>

#include "llmsys/plugin.h"

#define LLMSYS_PIN(cond) _Static_assert(cond, #cond);
#include "abi_layout.inc"
#include "abi_layout_types.inc"

size_t llmsys_test_c_sizeof(const char* name);

#define LLMSYS_C_SIZEOF(T) \
  if (strcmp(name, #T) == 0) return sizeof(T);

size_t llmsys_test_c_sizeof(const char* name) {
  LLMSYS_ABI_STRUCTS(LLMSYS_C_SIZEOF)
  return 0;
}
