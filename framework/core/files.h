// framework/core/files.h — writing a file so that a crash never leaves it
// half-written: the bytes go to a temporary file in the same folder, which
// is flushed to disk and renamed over the target.
//
//   LLMSYS_RETURN_IF_ERROR(AtomicWriteFile(dir / "summary.json", text));
//
// Thread-safety: safe for different paths.
#ifndef LLMSYS_FRAMEWORK_CORE_FILES_H_
#define LLMSYS_FRAMEWORK_CORE_FILES_H_

#include <filesystem>
#include <string_view>

#include "absl/status/status.h"

namespace llmsys::core {

// Replaces `path` with `bytes` atomically (temp file, fsync, rename, fsync
// of the folder). On error `path` is untouched and the temp file removed.
absl::Status AtomicWriteFile(const std::filesystem::path& path,
                             std::string_view bytes);

}  // namespace llmsys::core

#endif  // LLMSYS_FRAMEWORK_CORE_FILES_H_
