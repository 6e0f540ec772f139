#include "framework/tensor/device.h"

#include <array>
#include <atomic>

#include "absl/strings/str_cat.h"
#include "framework/core/status_macros.h"
#include "framework/cuda/cuda_backend.h"

namespace llmsys::tensor {
namespace {

constexpr size_t kTypes = 32;  // DLDeviceType values fit below this

std::array<std::atomic<DeviceBackend*>, kTypes>& Installed() {
  static std::array<std::atomic<DeviceBackend*>, kTypes> installed{};
  return installed;
}

}  // namespace

void SetDeviceBackend(DLDeviceType type, DeviceBackend* backend) {
  if (static_cast<size_t>(type) < kTypes)
    Installed()[static_cast<size_t>(type)].store(backend);
}

absl::StatusOr<DeviceBackend*> BackendFor(DLDevice device) {
  const size_t type = static_cast<size_t>(device.device_type);
  DeviceBackend* backend = type < kTypes ? Installed()[type].load() : nullptr;
  if (backend == nullptr && device.device_type == kDLCUDA) {
    backend = cuda::BuiltinBackend();
    if (backend == nullptr) return cuda::GpuAvailable();
  }
  if (backend == nullptr)
    return absl::FailedPreconditionError(absl::StrCat(
        "no backend for device type ", static_cast<int>(device.device_type),
        " (llmsys runs on the CPU and on CUDA GPUs)"));
  return backend;
}

}  // namespace llmsys::tensor
