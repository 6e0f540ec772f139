#include "framework/runtime/host_api.h"

#include <cstdlib>
#include <cstring>
#include <string>

#include "framework/core/logging.h"
#include "framework/core/version.h"
#include "llmsys/version.h"

namespace llmsys::runtime {
namespace {

const HostApiOwner* Owner(const llmsys_host_api_t* host) {
  return static_cast<const HostApiOwner*>(host->host_data);
}

void HostLog(const llmsys_host_api_t* host, llmsys_log_level_t level,
             const char* message) {
  core::LogLevel l = core::LogLevel::kError;
  switch (level) {
    case LLMSYS_LOG_DEBUG:
      l = core::LogLevel::kDebug;
      break;
    case LLMSYS_LOG_INFO:
      l = core::LogLevel::kInfo;
      break;
    case LLMSYS_LOG_WARNING:
      l = core::LogLevel::kWarning;
      break;
    default:
      break;
  }
  core::Log(l, "[" + Owner(host)->plugin_id + "] " +
                   (message != nullptr ? message : "(null)"));
}

void* HostAlloc(const llmsys_host_api_t*, DLDevice device, size_t bytes,
                size_t alignment) {
  if (device.device_type != kDLCPU) return nullptr;  // CUDA: issue 9
  if (alignment == 0) alignment = 64;
  if ((alignment & (alignment - 1)) != 0 || alignment < sizeof(void*))
    return nullptr;
  size_t rounded = (bytes + alignment - 1) / alignment * alignment;
  if (rounded == 0) rounded = alignment;
  return std::aligned_alloc(alignment, rounded);
}

void HostFree(const llmsys_host_api_t*, DLDevice device, void* ptr) {
  if (device.device_type == kDLCPU) std::free(ptr);
}

llmsys_status_t NoGraph(llmsys_error_t* err) {
  llmsys_error_set(err,
                   "graph calls need the tensor runtime, which this host "
                   "build does not have yet (llmsys issue 3)");
  return LLMSYS_STATUS_UNIMPLEMENTED;
}

void ValueRetain(const llmsys_host_api_t*, llmsys_value_t) {}
void ValueRelease(const llmsys_host_api_t*, llmsys_value_t) {}
llmsys_status_t ValueTensor(const llmsys_host_api_t*, llmsys_value_t, DLTensor*,
                            llmsys_error_t* err) {
  return NoGraph(err);
}
llmsys_status_t ValueFromTensor(const llmsys_host_api_t*, llmsys_graph_t*,
                                const DLTensor*, llmsys_value_t*,
                                llmsys_error_t* err) {
  return NoGraph(err);
}
llmsys_status_t CallOp(const llmsys_host_api_t*, llmsys_graph_t*, const char*,
                       const llmsys_value_t*, uint32_t, const llmsys_params_t*,
                       llmsys_value_t*, uint32_t, llmsys_error_t* err) {
  return NoGraph(err);
}
llmsys_status_t Declare(const llmsys_host_api_t*, llmsys_graph_t*,
                        const llmsys_parameter_decl_t*, llmsys_value_t*,
                        llmsys_error_t* err) {
  return NoGraph(err);
}
llmsys_status_t SetOutput(const llmsys_host_api_t*, llmsys_graph_t*,
                          const char*, llmsys_value_t, llmsys_error_t* err) {
  return NoGraph(err);
}

}  // namespace

std::unique_ptr<llmsys_host_api_t> MakeHostApi(const HostApiOwner* owner) {
  auto api = std::make_unique<llmsys_host_api_t>();
  std::memset(api.get(), 0, sizeof(*api));
  api->struct_size = sizeof(llmsys_host_api_t);
  api->abi_major = LLMSYS_ABI_VERSION_MAJOR;
  api->abi_minor = LLMSYS_ABI_VERSION_MINOR;
  api->host_version = kHostVersion;
  api->host_data = const_cast<HostApiOwner*>(owner);
  api->log = &HostLog;
  api->alloc = &HostAlloc;
  api->free = &HostFree;
  api->value_retain = &ValueRetain;
  api->value_release = &ValueRelease;
  api->value_tensor = &ValueTensor;
  api->value_from_tensor = &ValueFromTensor;
  api->call_op = &CallOp;
  api->declare_parameter = &Declare;
  api->declare_buffer = &Declare;
  api->set_output = &SetOutput;
  return api;
}

}  // namespace llmsys::runtime
