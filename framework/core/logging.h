// framework/core/logging.h — the host's log: leveled lines on stderr.
//
//   llmsys::core::Log(llmsys::core::LogLevel::kWarning, "plugin x: ...");
//   llmsys::core::SetMinLogLevel(llmsys::core::LogLevel::kDebug);  // --verbose
//
// Thread-safety: Log may be called from any thread; each line is written
// whole. SetMinLogLevel is meant for start-up, before other threads exist.
#ifndef LLMSYS_FRAMEWORK_CORE_LOGGING_H_
#define LLMSYS_FRAMEWORK_CORE_LOGGING_H_

#include <string_view>

namespace llmsys::core {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3 };

void SetMinLogLevel(LogLevel level);
LogLevel MinLogLevel();
void Log(LogLevel level, std::string_view message);

}  // namespace llmsys::core

#endif  // LLMSYS_FRAMEWORK_CORE_LOGGING_H_
