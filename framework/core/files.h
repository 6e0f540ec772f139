// framework/core/files.h — reading a whole file with an error that names
// it, and writing a file so that a crash never leaves it half-written: the
// bytes go to a temporary file in the same folder, which is flushed to disk
// and renamed over the target.
//
//   LLMSYS_ASSIGN_OR_RETURN(std::string text, ReadFile(dir / "config.toml"));
//   LLMSYS_RETURN_IF_ERROR(AtomicWriteFile(dir / "summary.json", text));
//
// Thread-safety: safe for different paths.
#ifndef LLMSYS_FRAMEWORK_CORE_FILES_H_
#define LLMSYS_FRAMEWORK_CORE_FILES_H_

#include <filesystem>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace llmsys::core {

// The bytes of `file`. Errors name it: "<file>: is a folder, not a file"
// (INVALID_ARGUMENT), "<file>: cannot open (does the file exist?)"
// (NOT_FOUND), "<file>: read error" (DATA_LOSS).
absl::StatusOr<std::string> ReadFile(const std::filesystem::path& file);

// Replaces `path` with `bytes` atomically (temp file, fsync, rename, fsync
// of the folder). On error `path` is untouched and the temp file removed.
absl::Status AtomicWriteFile(const std::filesystem::path& path,
                             std::string_view bytes);

}  // namespace llmsys::core

#endif  // LLMSYS_FRAMEWORK_CORE_FILES_H_
