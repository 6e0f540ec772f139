/* llmsys/status.h — status codes and the caller-owned error message buffer.
 *
 * Every fallible function across the ABI returns an llmsys_status_t and, on
 * failure, writes a human-readable message into an llmsys_error_t that the
 * caller owns. The codes have the numbers of absl::StatusCode, so the host
 * turns them into absl::Status without a table. Return the most specific
 * code: INVALID_ARGUMENT for bad shapes or values, UNIMPLEMENTED for an
 * unsupported dtype or device, RESOURCE_EXHAUSTED for a failed allocation.
 *
 * Usage (callee side):
 *   if (x->ndim != 2) {
 *     llmsys_error_set(err, "matmul: a must be 2-D, got %d-D", x->ndim);
 *     return LLMSYS_STATUS_INVALID_ARGUMENT;
 *   }
 *
 * Thread-safety: llmsys_error_set touches only the buffer it is given.
 * Ownership: the caller owns `message` and its storage; the callee writes at
 * most `capacity` bytes including the terminating NUL and keeps no pointer. */
#ifndef LLMSYS_STATUS_H_
#define LLMSYS_STATUS_H_

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef int32_t llmsys_status_t;

#define LLMSYS_STATUS_OK 0
#define LLMSYS_STATUS_CANCELLED 1
#define LLMSYS_STATUS_UNKNOWN 2
#define LLMSYS_STATUS_INVALID_ARGUMENT 3
#define LLMSYS_STATUS_DEADLINE_EXCEEDED 4
#define LLMSYS_STATUS_NOT_FOUND 5
#define LLMSYS_STATUS_ALREADY_EXISTS 6
#define LLMSYS_STATUS_PERMISSION_DENIED 7
#define LLMSYS_STATUS_RESOURCE_EXHAUSTED 8
#define LLMSYS_STATUS_FAILED_PRECONDITION 9
#define LLMSYS_STATUS_ABORTED 10
#define LLMSYS_STATUS_OUT_OF_RANGE 11
#define LLMSYS_STATUS_UNIMPLEMENTED 12
#define LLMSYS_STATUS_INTERNAL 13
#define LLMSYS_STATUS_UNAVAILABLE 14
#define LLMSYS_STATUS_DATA_LOSS 15
#define LLMSYS_STATUS_UNAUTHENTICATED 16

/* A caller-owned message buffer. Frozen: never grows. A NULL `message` or a
 * zero `capacity` means the caller does not want a message. */
typedef struct llmsys_error {
  char* message;
  size_t capacity;
} llmsys_error_t;

#if defined(__GNUC__) || defined(__clang__)
#define LLMSYS_PRINTF_LIKE(fmt, args) __attribute__((format(printf, fmt, args)))
#else
#define LLMSYS_PRINTF_LIKE(fmt, args)
#endif

/* Writes a printf-style message into `err` (truncated to its capacity, always
 * NUL-terminated). Safe with err == NULL. */
static inline void llmsys_error_set(llmsys_error_t* err, const char* format,
                                    ...) LLMSYS_PRINTF_LIKE(2, 3);

static inline void llmsys_error_set(llmsys_error_t* err, const char* format,
                                    ...) {
  va_list args;
  if (err == NULL || err->message == NULL || err->capacity == 0) return;
  va_start(args, format);
  vsnprintf(err->message, err->capacity, format, args);
  va_end(args);
}

#endif /* LLMSYS_STATUS_H_ */
