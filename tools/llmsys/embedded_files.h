// tools/llmsys/embedded_files.h — files compiled into the llmsys command
// (tools/cmake/EmbedFiles.cmake writes the tables), so an installed command
// needs no source tree: the templates of `llmsys new-plugin`.
// Thread-safety: constant data. Ownership: static storage.
#ifndef LLMSYS_TOOLS_LLMSYS_EMBEDDED_FILES_H_
#define LLMSYS_TOOLS_LLMSYS_EMBEDDED_FILES_H_

#include <cstddef>

namespace llmsys::cli {

struct EmbeddedFile {
  const char* path;  // relative to the embedded folder, '/'-separated
  const char* text;
};

// tools/llmsys/templates/, sorted by path.
extern const EmbeddedFile kNewPluginTemplates[];
extern const size_t kNewPluginTemplates_count;

}  // namespace llmsys::cli

#endif  // LLMSYS_TOOLS_LLMSYS_EMBEDDED_FILES_H_
