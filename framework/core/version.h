// framework/core/version.h — the host's own version (not the ABI's; see
// abi/llmsys/version.h). Thread-safety: constants only.
#ifndef LLMSYS_FRAMEWORK_CORE_VERSION_H_
#define LLMSYS_FRAMEWORK_CORE_VERSION_H_

namespace llmsys {
inline constexpr const char kHostVersion[] = "0.1.0";
}  // namespace llmsys

#endif  // LLMSYS_FRAMEWORK_CORE_VERSION_H_
