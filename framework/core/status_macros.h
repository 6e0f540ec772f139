// framework/core/status_macros.h — the two early-return macros for
// absl::Status / absl::StatusOr (Debian's Abseil predates its own).
//
//   LLMSYS_RETURN_IF_ERROR(ValidateSchema(spec));
//   LLMSYS_ASSIGN_OR_RETURN(auto plugin, LoadPlugin(path));
//
// Thread-safety: macros only.
#ifndef LLMSYS_FRAMEWORK_CORE_STATUS_MACROS_H_
#define LLMSYS_FRAMEWORK_CORE_STATUS_MACROS_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define LLMSYS_RETURN_IF_ERROR(expr)                                  \
  do {                                                                \
    if (absl::Status llmsys_status_ = (expr); !llmsys_status_.ok()) { \
      return llmsys_status_;                                          \
    }                                                                 \
  } while (0)

#define LLMSYS_STATUS_CONCAT_INNER_(a, b) a##b
#define LLMSYS_STATUS_CONCAT_(a, b) LLMSYS_STATUS_CONCAT_INNER_(a, b)

#define LLMSYS_ASSIGN_OR_RETURN(lhs, expr) \
  LLMSYS_ASSIGN_OR_RETURN_IMPL_(           \
      LLMSYS_STATUS_CONCAT_(llmsys_statusor_, __LINE__), lhs, expr)

#define LLMSYS_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, expr) \
  auto statusor = (expr);                                  \
  if (!statusor.ok()) return std::move(statusor).status(); \
  lhs = std::move(statusor).value()

#endif  // LLMSYS_FRAMEWORK_CORE_STATUS_MACROS_H_
