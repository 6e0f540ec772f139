#include "tests/cuda/emulated_device.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "framework/core/status_macros.h"
#include "framework/tensor/host_math.h"
#include "framework/tensor/tensor.h"

namespace llmsys::cuda_test {
namespace {

using tensor::DeviceView;
using tensor::Tensor;

// A CPU tensor over the view's memory (borrowed, never freed here).
Tensor HostAlias(const DeviceView& v) {
  auto* managed = new DLManagedTensor{};
  managed->dl_tensor.data = v.data;
  managed->dl_tensor.device = {kDLCPU, 0};
  managed->dl_tensor.ndim = static_cast<int32_t>(v.shape.size());
  managed->dl_tensor.dtype = v.dtype;
  auto* dims = new int64_t[2 * v.shape.size() + 2];
  std::copy(v.shape.begin(), v.shape.end(), dims);
  std::copy(v.strides.begin(), v.strides.end(), dims + v.shape.size() + 1);
  managed->dl_tensor.shape = dims;
  managed->dl_tensor.strides = dims + v.shape.size() + 1;
  managed->manager_ctx = dims;
  managed->deleter = [](DLManagedTensor* self) {
    delete[] static_cast<int64_t*>(self->manager_ctx);
    delete self;
  };
  return *Tensor::FromDLPack(managed);
}

int stream_token = 0;  // what FillContext hands out as the stream

}  // namespace

bool OnRealGpu() {
  const char* env = std::getenv("LLMSYS_CUDA_TEST_ON_GPU");
  return env != nullptr && std::string(env) == "1";
}

EmulatedDevice& EmulatedDevice::Install() {
  static EmulatedDevice* const device = [] {
    auto* d = new EmulatedDevice;
    if (!OnRealGpu()) tensor::SetDeviceBackend(kDLCUDA, d);
    return d;
  }();
  return *device;
}

absl::Status EmulatedDevice::Available(DLDevice device) {
  if (device.device_id != 0)
    return absl::FailedPreconditionError(absl::StrCat(
        "the emulated device is cuda:0 only, not cuda:", device.device_id));
  return absl::OkStatus();
}

absl::StatusOr<void*> EmulatedDevice::Allocate(DLDevice device, size_t bytes) {
  LLMSYS_RETURN_IF_ERROR(Available(device));
  const size_t rounded = std::max<size_t>(256, (bytes + 255) / 256 * 256);
  void* p = std::aligned_alloc(256, rounded);
  if (p == nullptr) return absl::ResourceExhaustedError("emulated device full");
  std::memset(p, 0xFF, rounded);
  std::lock_guard<std::mutex> lock(mu_);
  blocks_[p] = rounded;
  memory_.in_use += static_cast<int64_t>(rounded);
  memory_.reserved = memory_.in_use;
  memory_.peak_in_use = std::max(memory_.peak_in_use, memory_.in_use);
  memory_.peak_reserved = memory_.peak_in_use;
  ++memory_.device_allocs;
  return p;
}

void EmulatedDevice::Free(DLDevice, void* ptr) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = blocks_.find(ptr);
  if (it == blocks_.end()) return;
  memory_.in_use -= static_cast<int64_t>(it->second);
  memory_.reserved = memory_.in_use;
  std::free(ptr);
  blocks_.erase(it);
}

tensor::DeviceMemory EmulatedDevice::Memory(DLDevice) {
  std::lock_guard<std::mutex> lock(mu_);
  return memory_;
}

void EmulatedDevice::ResetPeakMemory(DLDevice) {
  std::lock_guard<std::mutex> lock(mu_);
  memory_.peak_in_use = memory_.peak_reserved = memory_.in_use;
}

absl::Status EmulatedDevice::CopyToHost(DLDevice, void* dst, const void* src,
                                        size_t bytes) {
  ++to_host_;
  if (bytes > 0) std::memcpy(dst, src, bytes);
  return absl::OkStatus();
}

absl::Status EmulatedDevice::CopyFromHost(DLDevice, void* dst, const void* src,
                                          size_t bytes) {
  ++from_host_;
  if (bytes > 0) std::memcpy(dst, src, bytes);
  return absl::OkStatus();
}

absl::Status EmulatedDevice::Copy(DLDevice, const DeviceView& dst,
                                  const DeviceView& src) {
  Tensor d = HostAlias(dst);
  return d.CopyFrom(HostAlias(src));
}

absl::Status EmulatedDevice::Fill(DLDevice, const DeviceView& dst,
                                  double value) {
  return HostAlias(dst).Fill(value);
}

absl::Status EmulatedDevice::AddInto(DLDevice, const DeviceView& dst,
                                     const DeviceView& src) {
  Tensor d = HostAlias(dst);
  return tensor::AddInto(d, HostAlias(src));
}

absl::Status EmulatedDevice::SumTo(DLDevice, const DeviceView& dst,
                                   const DeviceView& src) {
  tensor::Shape shape = dst.shape;  // src's ndim, 1 where summed
  LLMSYS_ASSIGN_OR_RETURN(Tensor sum,
                          tensor::SumToShape(HostAlias(src), shape));
  Tensor d = HostAlias(dst);
  return d.CopyFrom(sum);
}

absl::Status EmulatedDevice::Scale(DLDevice, const DeviceView& dst,
                                   double factor) {
  Tensor d = HostAlias(dst);
  std::vector<double> v = d.ToDoubles();
  for (double& x : v) x *= factor;
  LLMSYS_ASSIGN_OR_RETURN(Tensor scaled,
                          Tensor::FromDoubles(d.shape(), v, d.dtype()));
  return d.CopyFrom(scaled);
}

absl::StatusOr<double> EmulatedDevice::SumOfSquares(
    DLDevice, const std::vector<DeviceView>& srcs) {
  double sum = 0;
  for (const DeviceView& v : srcs)
    for (double x : HostAlias(v).ToDoubles()) sum += x * x;
  return sum;
}

absl::Status EmulatedDevice::Synchronize(DLDevice) { return absl::OkStatus(); }

absl::Status EmulatedDevice::FillContext(DLDevice device,
                                         llmsys_call_context_t* ctx) {
  LLMSYS_RETURN_IF_ERROR(Available(device));
  ++contexts_;
  ctx->stream = &stream_token;  // never the default (null) stream
  return absl::OkStatus();
}

}  // namespace llmsys::cuda_test
