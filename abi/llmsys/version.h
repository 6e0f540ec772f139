/* llmsys/version.h — the ABI version and the symbol-visibility macros.
 *
 * Users: every plugin (through plugin.h) and the host. The host compares the
 * version a plugin was built against (stored in its entry table) with its own:
 *   - a different major is refused, with both versions named;
 *   - an older or equal minor loads, and the host calls only what that minor
 * had;
 *   - a newer minor than the host is refused: the plugin may call host
 *     functions this host does not have.
 * Growth rule: structs and function tables start with a size field and only
 * grow at their end; a shipped function never changes (add a `_v2`).
 *
 * Thread-safety: macros only. Ownership: nothing is allocated here. */
#ifndef LLMSYS_VERSION_H_
#define LLMSYS_VERSION_H_

#define LLMSYS_ABI_VERSION_MAJOR 1
#define LLMSYS_ABI_VERSION_MINOR 6

/* "1.0", for messages. */
#define LLMSYS_ABI_STRINGIFY_(x) #x
#define LLMSYS_ABI_STRINGIFY(x) LLMSYS_ABI_STRINGIFY_(x)
#define LLMSYS_ABI_VERSION_STRING                \
  LLMSYS_ABI_STRINGIFY(LLMSYS_ABI_VERSION_MAJOR) \
  "." LLMSYS_ABI_STRINGIFY(LLMSYS_ABI_VERSION_MINOR)

/* C linkage for declarations shared with C++. */
#ifdef __cplusplus
#define LLMSYS_EXTERN_C extern "C"
#define LLMSYS_EXTERN_C_BEGIN extern "C" {
#define LLMSYS_EXTERN_C_END }
#else
#define LLMSYS_EXTERN_C extern
#define LLMSYS_EXTERN_C_BEGIN
#define LLMSYS_EXTERN_C_END
#endif

/* Plugins are compiled with hidden visibility; only the entry table is
 * exported, through this macro. */
#if defined(_WIN32)
#define LLMSYS_EXPORT __declspec(dllexport)
#else
#define LLMSYS_EXPORT __attribute__((visibility("default")))
#endif

#endif /* LLMSYS_VERSION_H_ */
