// tests/cuda/emulated_device.h — a CUDA device for tests on machines
// without a GPU: tensor::DeviceBackend for kDLCUDA over host memory. With
// it installed, tensors on cuda:0 are host memory, the host's device paths
// (transfers, strided copies, fills, gradient sums, call contexts) run
// unchanged, and the emulated llmsys.cuda plugin (tests/cuda/emu, the real
// kernels compiled for the CPU) computes on them.
//
//   EmulatedDevice& device = EmulatedDevice::Install();  // for kDLCUDA
//   Tensor x = *cpu_tensor.ToDevice({kDLCUDA, 0});
//
// Allocations are counted, and every block is filled with 0xFF bytes (NaN
// in every float dtype) so that a kernel reading memory it never wrote
// shows up. Thread-safety: as DeviceBackend; one instance at a time.
#ifndef LLMSYS_TESTS_CUDA_EMULATED_DEVICE_H_
#define LLMSYS_TESTS_CUDA_EMULATED_DEVICE_H_

#include <atomic>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "framework/tensor/device.h"

namespace llmsys::cuda_test {

// Whether LLMSYS_CUDA_TEST_ON_GPU=1 asks the emulation's tests to run on
// the real GPU instead: EmulatedDevice::Install() then leaves the built-in
// CUDA backend in place, and the tests load the real cuda.so
// (tools/gpu_check.sh runs cuda_test both ways).
bool OnRealGpu();

class EmulatedDevice final : public tensor::DeviceBackend {
 public:
  // The test binary's one instance, installed for kDLCUDA on first use
  // (unless OnRealGpu()) and kept (never destroyed: tensors may outlive
  // any test).
  static EmulatedDevice& Install();

  absl::Status Available(DLDevice device) override;
  absl::StatusOr<void*> Allocate(DLDevice device, size_t bytes) override;
  void Free(DLDevice device, void* ptr) override;
  tensor::DeviceMemory Memory(DLDevice device) override;
  void ResetPeakMemory(DLDevice device) override;
  absl::Status CopyToHost(DLDevice device, void* dst, const void* src,
                          size_t bytes) override;
  absl::Status CopyFromHost(DLDevice device, void* dst, const void* src,
                            size_t bytes) override;
  absl::Status Copy(DLDevice device, const tensor::DeviceView& dst,
                    const tensor::DeviceView& src) override;
  absl::Status Fill(DLDevice device, const tensor::DeviceView& dst,
                    double value) override;
  absl::Status AddInto(DLDevice device, const tensor::DeviceView& dst,
                       const tensor::DeviceView& src) override;
  absl::Status SumTo(DLDevice device, const tensor::DeviceView& dst,
                     const tensor::DeviceView& src) override;
  absl::Status Scale(DLDevice device, const tensor::DeviceView& dst,
                     double factor) override;
  absl::StatusOr<double> SumOfSquares(
      DLDevice device, const std::vector<tensor::DeviceView>& srcs) override;
  absl::Status Synchronize(DLDevice device) override;
  absl::Status FillContext(DLDevice device,
                           llmsys_call_context_t* ctx) override;

  // Calls that reached each entry point, for tests of the host's routing.
  int copies_to_host() const { return to_host_; }
  int copies_from_host() const { return from_host_; }
  int context_fills() const { return contexts_; }

 private:
  EmulatedDevice() = default;

  std::mutex mu_;
  std::unordered_map<void*, size_t> blocks_;
  tensor::DeviceMemory memory_;
  std::atomic<int> to_host_{0}, from_host_{0}, contexts_{0};
};

}  // namespace llmsys::cuda_test

#endif  // LLMSYS_TESTS_CUDA_EMULATED_DEVICE_H_
