// framework/runtime/plugin.h — one loaded plugin file and the components it
// provides.
//
// Plugin::Load checks a file step by step and says exactly why it cannot be
// used: not a file, not a shared library, no entry symbol (checked before
// any of the file's code runs), a load error from the dynamic linker, an
// incompatible ABI version, a failing or throwing init(), a malformed
// component (bad id, missing function, malformed parameter schema, bad op
// contract). Every message starts with the file's path.
//
//   absl::StatusOr<std::shared_ptr<Plugin>> p = Plugin::Load("x.so");
//   for (const Component& c : (*p)->components()) ...
//
// Lifetime: the library stays loaded, and deinit() is not called, until the
// last shared_ptr to the Plugin goes; whatever uses a component keeps one.
// Thread-safety: Load and destruction on the main thread; a loaded Plugin is
// immutable and may be read from any thread.
#ifndef LLMSYS_FRAMEWORK_RUNTIME_PLUGIN_H_
#define LLMSYS_FRAMEWORK_RUNTIME_PLUGIN_H_

#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "framework/runtime/op_contract.h"
#include "framework/runtime/param_schema.h"
#include "llmsys/plugin.h"

namespace llmsys::runtime {

class Plugin;

// "operator", "optimizer", "sampler", "evaluator", "model", "op_contract".
std::string KindName(llmsys_kind_t kind);
// The kinds of component, in listing order.
inline constexpr llmsys_kind_t kComponentKinds[] = {
    LLMSYS_KIND_OPERATOR, LLMSYS_KIND_OPTIMIZER, LLMSYS_KIND_SAMPLER,
    LLMSYS_KIND_EVALUATOR, LLMSYS_KIND_MODEL};

// A plugin function's failure as a Status: its code (UNKNOWN when out of
// range) and "<what>: <message>", e.g. what = "optimizer sgd step".
absl::Status PluginStatus(llmsys_status_t code, const std::string& what,
                          const char* message);
// The same with what = "<kind> <id> <function>" ("optimizer sgd step").
absl::Status PluginStatus(llmsys_status_t code, const struct Component& c,
                          const char* function, const char* message);

// A call context for running component `c` on the CPU: its plugin's host
// table, `num_threads` threads, random stream (0, 0).
llmsys_call_context_t CpuCallContext(const struct Component& c,
                                     int32_t num_threads);
// The context for a call of component `c` on `device`: on the CPU as
// CpuCallContext; on a GPU also its stream, BLAS handles and workspace
// (FAILED_PRECONDITION when the device cannot run).
absl::StatusOr<llmsys_call_context_t> DeviceCallContext(
    const struct Component& c, DLDevice device, int32_t num_threads);

// "cpu", "cuda", "any" (0), or "device N".
std::string DeviceName(int32_t device_type);

// Lower-case letters, digits, '_', '-', '.'; starts with a letter or digit.
bool IsComponentId(std::string_view id);

// One component, as the host sees it.
struct Component {
  llmsys_kind_t kind = 0;
  std::string id;
  std::string version;
  std::string description;
  int32_t device_type = 0;
  ParamSchema params;
  std::string op;                         // operators: the contract implemented
  const llmsys_component_t* c = nullptr;  // the plugin's struct
  const Plugin* plugin = nullptr;         // the file it came from

  // Typed access to the plugin's struct (kind checked by the loader).
  template <class T>
  const T* As() const {
    return reinterpret_cast<const T*>(c);
  }
};

class Plugin : public std::enable_shared_from_this<Plugin> {
 public:
  static absl::StatusOr<std::shared_ptr<Plugin>> Load(
      const std::filesystem::path& file);

  ~Plugin();
  Plugin(const Plugin&) = delete;
  Plugin& operator=(const Plugin&) = delete;

  const std::filesystem::path& path() const { return path_; }
  const std::string& id() const { return id_; }
  const std::string& version() const { return version_; }
  const std::string& description() const { return description_; }
  const std::string& license() const { return license_; }
  // The SHA-256 of the file's bytes, read just before the dynamic linker
  // loaded it (64 lower-case hex digits): what provenance records and
  // experiments pin ([plugins] pins).
  const std::string& sha256() const { return sha256_; }
  uint32_t abi_major() const { return abi_major_; }
  uint32_t abi_minor() const { return abi_minor_; }
  std::string abi() const;  // "1.0"
  const std::vector<Component>& components() const { return components_; }
  // The component of `kind` called `id`, or nullptr.
  const Component* FindComponent(llmsys_kind_t kind, std::string_view id) const;
  const std::vector<OpContract>& op_contracts() const { return op_contracts_; }
  // The host API table this plugin was given (valid while it is loaded).
  const llmsys_host_api_t* host_api() const;

 private:
  struct Impl;
  explicit Plugin(std::filesystem::path path);
  absl::Status Init();
  absl::Status ReadComponents();

  std::filesystem::path path_;
  std::unique_ptr<Impl> impl_;
  std::string id_, version_, description_, license_, sha256_;
  uint32_t abi_major_ = 0, abi_minor_ = 0;
  std::vector<Component> components_;
  std::vector<OpContract> op_contracts_;
};

}  // namespace llmsys::runtime

#endif  // LLMSYS_FRAMEWORK_RUNTIME_PLUGIN_H_
