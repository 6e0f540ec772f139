// framework/cuda/cuda_backend.h — the host's CUDA device: one stream, one
// cuBLAS and one cuBLASLt handle and a cuBLAS workspace per GPU, created on
// first use, and device memory through a CachingAllocator. The tensor
// layer reaches it through tensor::BackendFor({kDLCUDA, i}); operator calls
// get its stream and handles in their context (never the default stream).
//
// CUDA and cuBLAS errors become absl::Status values that name the call, the
// error and the file and line (LLMSYS_CUDA_RETURN_IF_ERROR).
//
//   LLMSYS_ASSIGN_OR_RETURN(tensor::DeviceBackend* cuda, BackendFor(dev));
//
// Thread-safety: thread-safe; each device's state is created once, under a
// mutex, and its stream orders the work of every host thread.
#ifndef LLMSYS_FRAMEWORK_CUDA_CUDA_BACKEND_H_
#define LLMSYS_FRAMEWORK_CUDA_CUDA_BACKEND_H_

#include <string>

#include "absl/status/status.h"
#include "framework/tensor/device.h"

namespace llmsys::cuda {

// The built-in CUDA backend (a process-wide singleton), or nullptr in a
// build without CUDA.
tensor::DeviceBackend* BuiltinBackend();

// OK when at least one CUDA GPU is usable; else why not ("this build has no
// CUDA", "no CUDA driver", "no GPU found") — what tests print when they
// skip.
absl::Status GpuAvailable();

// The CUDA GPUs this process can use; 0 without CUDA, a driver or a GPU.
int DeviceCount();

// "NVIDIA H200 (sm_90, 132 SMs, 139.8 GiB)" for provenance and reports;
// the error from GpuAvailable when there is none.
std::string DeviceDescription(int device = 0);

// Bytes of the cuBLAS(Lt) workspace each device's context carries.
inline constexpr size_t kBlasWorkspaceBytes = size_t{32} << 20;

}  // namespace llmsys::cuda

#endif  // LLMSYS_FRAMEWORK_CUDA_CUDA_BACKEND_H_
