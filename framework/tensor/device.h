// framework/tensor/device.h — what the tensor layer needs from a device
// other than the CPU: memory, copies, and the few kernels the host itself
// runs on device tensors (strided copies with dtype conversion, fills,
// gradient accumulation, broadcast-gradient sums, the gradient norm and its
// clipping), plus what an operator
// call's context carries (stream, BLAS handles, workspace).
//
// The CUDA backend (framework/cuda) is the built-in one for kDLCUDA in
// builds with CUDA. Tests install their own (SetDeviceBackend) to run the
// device paths without a GPU.
//
//   LLMSYS_ASSIGN_OR_RETURN(DeviceBackend* b, BackendFor(device));
//   LLMSYS_RETURN_IF_ERROR(b->Synchronize(device));
//
// Thread-safety: backends are thread-safe; work from one host thread is
// ordered on the device's one stream. SetDeviceBackend is for startup and
// tests, before any tensor of that device exists.
#ifndef LLMSYS_FRAMEWORK_TENSOR_DEVICE_H_
#define LLMSYS_FRAMEWORK_TENSOR_DEVICE_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "framework/tensor/caching_allocator.h"
#include "llmsys/host.h"
#include "llmsys/tensor.h"

namespace llmsys::tensor {

// A strided view of device memory, as the backend's kernels take it.
struct DeviceView {
  void* data = nullptr;  // element (0, ..., 0)
  DLDataType dtype{};
  std::vector<int64_t> shape;
  std::vector<int64_t> strides;  // in elements; 0 for a broadcast dim
};

class DeviceBackend {
 public:
  virtual ~DeviceBackend() = default;

  // OK when `device` can run work; else why not (no GPU, no driver, an
  // index past the last device), in words a user can act on.
  virtual absl::Status Available(DLDevice device) = 0;

  // Memory on `device`, aligned to 256 bytes; RESOURCE_EXHAUSTED with the
  // in-use and cached figures when full.
  virtual absl::StatusOr<void*> Allocate(DLDevice device, size_t bytes) = 0;
  virtual void Free(DLDevice device, void* ptr) = 0;
  virtual DeviceMemory Memory(DLDevice device) = 0;
  virtual void ResetPeakMemory(DLDevice device) = 0;

  // Byte copies, ordered on the device's stream. CopyToHost returns once
  // the bytes have landed in host memory.
  virtual absl::Status CopyToHost(DLDevice device, void* dst, const void* src,
                                  size_t bytes) = 0;
  virtual absl::Status CopyFromHost(DLDevice device, void* dst, const void* src,
                                    size_t bytes) = 0;

  // dst = src elementwise: same shape, any strides (src may broadcast with
  // stride 0), any supported dtypes (converted as the host converts).
  virtual absl::Status Copy(DLDevice device, const DeviceView& dst,
                            const DeviceView& src) = 0;
  // Every element of dst = value (converted to dst's dtype).
  virtual absl::Status Fill(DLDevice device, const DeviceView& dst,
                            double value) = 0;
  // dst += src elementwise: same shape, float dtypes (src converted).
  virtual absl::Status AddInto(DLDevice device, const DeviceView& dst,
                               const DeviceView& src) = 0;
  // dst = src summed over the dims where dst has size 1 (dst has src's
  // ndim; leading dims already padded with 1s by the caller); float dtypes,
  // accumulated in double in index order, as the host's SumToShape.
  virtual absl::Status SumTo(DLDevice device, const DeviceView& dst,
                             const DeviceView& src) = 0;
  // dst *= factor elementwise (float dtypes; in double, rounded to dst's
  // dtype, as the host scales).
  virtual absl::Status Scale(DLDevice device, const DeviceView& dst,
                             double factor) = 0;
  // The sum of the squares of every element of `srcs` (float dtypes), in
  // double: one wait for the result, the same bits in every run (a fixed
  // order of partial sums, not necessarily the host's).
  virtual absl::StatusOr<double> SumOfSquares(
      DLDevice device, const std::vector<DeviceView>& srcs) = 0;

  // Waits for the work queued on the device's stream; reports an error a
  // kernel raised since the last check.
  virtual absl::Status Synchronize(DLDevice device) = 0;
  // Sets the context's stream, blas_handle, blas_lt_handle and
  // blas_workspace fields for a call on `device`.
  virtual absl::Status FillContext(DLDevice device,
                                   llmsys_call_context_t* ctx) = 0;
};

// The backend for `device`: the installed one, else the built-in one
// (CUDA in builds with it); FAILED_PRECONDITION naming why the device
// cannot be used (a build without CUDA, no GPU). Not for kDLCPU.
absl::StatusOr<DeviceBackend*> BackendFor(DLDevice device);

// Installs `backend` for devices of `type` (nullptr: back to the
// built-in). The caller keeps ownership and keeps it alive while tensors
// of that device exist.
void SetDeviceBackend(DLDeviceType type, DeviceBackend* backend);

}  // namespace llmsys::tensor

#endif  // LLMSYS_FRAMEWORK_TENSOR_DEVICE_H_
