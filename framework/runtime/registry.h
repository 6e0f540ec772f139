// framework/runtime/registry.h — every component the host can use, from
// every plugin file on the search path.
//
// Search order (DESIGN.md): the build's (or installation's) plugin folder,
// then each folder of LLMSYS_PLUGIN_PATH (':'-separated), then each
// --plugin-dir, then an experiment's [plugins] paths. Each folder's `*.so`
// files load in name order. A file that cannot be used is recorded with its
// reason and the rest go on; the same file reached twice loads once.
//
//   PluginRegistry registry;
//   LLMSYS_RETURN_IF_ERROR(registry.AddSearchDir(dir, "--plugin-dir"));
//   registry.LoadAll();
//   LLMSYS_ASSIGN_OR_RETURN(const Component* sgd,
//                           registry.Find(LLMSYS_KIND_OPTIMIZER, "sgd"));
//
// Duplicates: two files with the same plugin id — the later one is refused,
// naming both. Two plugins providing the same component (kind, id and
// device) — both are kept, and Find refuses the id, naming both files,
// unless Prefer() says which file to use.
//
// Thread-safety: build and load on one thread; afterwards the registry is
// read-only and may be read from any thread. Plugins stay loaded for the
// registry's lifetime (and longer while anything else holds them).
#ifndef LLMSYS_FRAMEWORK_RUNTIME_REGISTRY_H_
#define LLMSYS_FRAMEWORK_RUNTIME_REGISTRY_H_

#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "framework/runtime/plugin.h"

namespace llmsys::runtime {

struct SearchDir {
  std::filesystem::path path;
  std::string origin;  // "built-in", "LLMSYS_PLUGIN_PATH", "--plugin-dir", ...
};

struct RejectedFile {
  std::filesystem::path path;
  std::string reason;  // starts with the path
};

// Two plugins providing the same component.
struct Conflict {
  llmsys_kind_t kind;
  std::string id;
  int32_t device_type;
  std::vector<const Component*> providers;
};

// The plugin folder that ships with this build or installation:
// <dir of the running executable>/../lib/llmsys/plugins.
std::filesystem::path BuiltinPluginDir();

class PluginRegistry {
 public:
  // Appends a folder to the search path. A folder that does not exist (or is
  // not a folder) is a NOT_FOUND error naming it and its origin.
  absl::Status AddSearchDir(const std::filesystem::path& dir,
                            const std::string& origin);
  // The built-in folder, then LLMSYS_PLUGIN_PATH's entries.
  absl::Status AddDefaultSearchDirs();

  // Loads every plugin file of every folder on the search path not loaded yet.
  void LoadAll();
  // Loads one file (also outside the search path). The error is the reason.
  absl::Status LoadFile(const std::filesystem::path& file);

  // Use `file`'s component when several plugins provide kind/id.
  void Prefer(llmsys_kind_t kind, const std::string& id,
              const std::filesystem::path& file);

  const std::vector<SearchDir>& search_path() const { return search_path_; }
  const std::vector<std::shared_ptr<Plugin>>& plugins() const {
    return plugins_;
  }
  const std::vector<RejectedFile>& rejected() const { return rejected_; }
  // Components sorted by kind, then id, then file.
  std::vector<const Component*> Components() const;
  std::vector<Conflict> Conflicts() const;
  // Operators whose op contract no loaded plugin declares, with the reason.
  std::vector<std::pair<const Component*, std::string>> UnknownContracts()
      const;

  // The component of `kind` called `id` that runs on `device_type` (or on
  // any device: device_type 0, which returns the CPU's when each device has
  // one). One id may name one component per device (`adamw` on the CPU and
  // on CUDA). NOT_FOUND lists what exists and suggests the closest id;
  // FAILED_PRECONDITION names both files of a conflict.
  absl::StatusOr<const Component*> Find(llmsys_kind_t kind,
                                        const std::string& id,
                                        int32_t device_type = kDLCPU) const;
  // Every component called `id`, whatever its kind.
  std::vector<const Component*> FindAnyKind(const std::string& id) const;
  // The op contract `name`: standard or declared by a loaded plugin.
  const OpContract* FindOpContract(const std::string& name) const;

 private:
  std::vector<SearchDir> search_path_;
  std::vector<std::shared_ptr<Plugin>> plugins_;
  std::vector<RejectedFile> rejected_;
  std::vector<std::filesystem::path> seen_;  // canonical paths tried
  std::map<std::pair<llmsys_kind_t, std::string>, std::filesystem::path>
      prefer_;
};

}  // namespace llmsys::runtime

#endif  // LLMSYS_FRAMEWORK_RUNTIME_REGISTRY_H_
