// framework/runtime/host_api.h — the host API table handed to each plugin.
//
// Each plugin gets its own table (host_data points at its record, so log
// lines name the plugin). The graph functions work on the Graph behind the
// llmsys_graph_t they are given (graph.h): op calls go to its dispatcher,
// declarations to its parameter store.
//
// Thread-safety: the table is immutable once made; its functions are
// thread-safe as abi/llmsys/host.h says.
#ifndef LLMSYS_FRAMEWORK_RUNTIME_HOST_API_H_
#define LLMSYS_FRAMEWORK_RUNTIME_HOST_API_H_

#include <memory>
#include <string>

#include "llmsys/host.h"

namespace llmsys::runtime {

// Per-plugin data behind host_data.
struct HostApiOwner {
  std::string plugin_id;
};

// A table for the plugin described by `owner`, which must outlive it.
std::unique_ptr<llmsys_host_api_t> MakeHostApi(const HostApiOwner* owner);

}  // namespace llmsys::runtime

#endif  // LLMSYS_FRAMEWORK_RUNTIME_HOST_API_H_
