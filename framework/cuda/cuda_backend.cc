#include "framework/cuda/cuda_backend.h"

#include "absl/strings/str_cat.h"

#ifdef LLMSYS_HAVE_CUDA

#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include <array>
#include <memory>
#include <mutex>

#include "framework/core/status_macros.h"
#include "framework/cuda/tensor_kernels.h"

namespace llmsys::cuda {
namespace {

using tensor::DeviceView;

absl::Status CudaError(cudaError_t e, const char* expr, const char* file,
                       int line) {
  const std::string message = absl::StrCat("CUDA error ", cudaGetErrorName(e),
                                           " (", cudaGetErrorString(e), ") in ",
                                           expr, " at ", file, ":", line);
  return e == cudaErrorMemoryAllocation ? absl::ResourceExhaustedError(message)
                                        : absl::InternalError(message);
}

absl::Status CublasError(cublasStatus_t s, const char* expr, const char* file,
                         int line) {
  return absl::InternalError(absl::StrCat(
      "cuBLAS error ", cublasGetStatusName(s), " (", cublasGetStatusString(s),
      ") in ", expr, " at ", file, ":", line));
}

#define LLMSYS_CUDA_RETURN_IF_ERROR(expr)                 \
  do {                                                    \
    if (const cudaError_t e_ = (expr); e_ != cudaSuccess) \
      return CudaError(e_, #expr, __FILE__, __LINE__);    \
  } while (0)
#define LLMSYS_CUBLAS_RETURN_IF_ERROR(expr)                            \
  do {                                                                 \
    if (const cublasStatus_t s_ = (expr); s_ != CUBLAS_STATUS_SUCCESS) \
      return CublasError(s_, #expr, __FILE__, __LINE__);               \
  } while (0)

constexpr int kMaxDevices = 16;

// One GPU's stream, handles and memory.
struct DeviceState {
  int index = 0;
  cudaStream_t stream = nullptr;
  cublasHandle_t blas = nullptr;
  cublasLtHandle_t lt = nullptr;
  void* workspace = nullptr;
  std::unique_ptr<tensor::CachingAllocator> memory;
};

absl::StatusOr<tensor::DeviceView> Checked(const DeviceView& v) {
  if (v.shape.size() > static_cast<size_t>(kMaxDims) ||
      v.strides.size() != v.shape.size())
    return absl::InvalidArgumentError("device view with more than 8 dims");
  return v;
}

ElemType TypeOf(DLDataType t) {
  if (t.code == kDLBfloat) return ElemType::kBF16;
  if (t.code == kDLFloat)
    return t.bits == 64   ? ElemType::kF64
           : t.bits == 16 ? ElemType::kF16
                          : ElemType::kF32;
  if (t.code == kDLInt) return t.bits == 64 ? ElemType::kI64 : ElemType::kI32;
  return ElemType::kU8;
}

StridedArg ArgOf(const DeviceView& v) {
  StridedArg a{};
  a.data = v.data;
  a.type = TypeOf(v.dtype);
  a.ndim = static_cast<int>(v.shape.size());
  for (int d = 0; d < a.ndim; ++d) {
    a.shape[d] = v.shape[static_cast<size_t>(d)];
    a.strides[d] = v.strides[static_cast<size_t>(d)];
  }
  return a;
}

class CudaBackend final : public tensor::DeviceBackend {
 public:
  absl::Status Available(DLDevice device) override {
    return State(device).status();
  }

  absl::StatusOr<void*> Allocate(DLDevice device, size_t bytes) override {
    LLMSYS_ASSIGN_OR_RETURN(DeviceState * s, State(device));
    return s->memory->Allocate(bytes);
  }

  void Free(DLDevice device, void* ptr) override {
    absl::StatusOr<DeviceState*> s = State(device);
    if (s.ok()) (*s)->memory->Free(ptr);
  }

  tensor::DeviceMemory Memory(DLDevice device) override {
    absl::StatusOr<DeviceState*> s = State(device);
    return s.ok() ? (*s)->memory->Memory() : tensor::DeviceMemory{};
  }

  void ResetPeakMemory(DLDevice device) override {
    absl::StatusOr<DeviceState*> s = State(device);
    if (s.ok()) (*s)->memory->ResetPeak();
  }

  absl::Status CopyToHost(DLDevice device, void* dst, const void* src,
                          size_t bytes) override {
    LLMSYS_ASSIGN_OR_RETURN(DeviceState * s, State(device));
    if (bytes == 0) return absl::OkStatus();
    LLMSYS_CUDA_RETURN_IF_ERROR(
        cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, s->stream));
    LLMSYS_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(s->stream));
    return absl::OkStatus();
  }

  absl::Status CopyFromHost(DLDevice device, void* dst, const void* src,
                            size_t bytes) override {
    LLMSYS_ASSIGN_OR_RETURN(DeviceState * s, State(device));
    if (bytes == 0) return absl::OkStatus();
    // The source is pageable host memory the caller may free on return:
    // wait for the copy (cudaMemcpyAsync from pageable memory has staged
    // it only partly when it returns).
    LLMSYS_CUDA_RETURN_IF_ERROR(
        cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, s->stream));
    LLMSYS_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(s->stream));
    return absl::OkStatus();
  }

  absl::Status Copy(DLDevice device, const DeviceView& dst,
                    const DeviceView& src) override {
    LLMSYS_ASSIGN_OR_RETURN(DeviceState * s, State(device));
    LLMSYS_RETURN_IF_ERROR(Checked(dst).status());
    LLMSYS_RETURN_IF_ERROR(Checked(src).status());
    LLMSYS_CUDA_RETURN_IF_ERROR(
        LaunchStridedCopy(ArgOf(dst), ArgOf(src), s->stream));
    return absl::OkStatus();
  }

  absl::Status Fill(DLDevice device, const DeviceView& dst,
                    double value) override {
    LLMSYS_ASSIGN_OR_RETURN(DeviceState * s, State(device));
    LLMSYS_RETURN_IF_ERROR(Checked(dst).status());
    LLMSYS_CUDA_RETURN_IF_ERROR(LaunchFill(ArgOf(dst), value, s->stream));
    return absl::OkStatus();
  }

  absl::Status AddInto(DLDevice device, const DeviceView& dst,
                       const DeviceView& src) override {
    LLMSYS_ASSIGN_OR_RETURN(DeviceState * s, State(device));
    LLMSYS_RETURN_IF_ERROR(Checked(dst).status());
    LLMSYS_RETURN_IF_ERROR(Checked(src).status());
    LLMSYS_CUDA_RETURN_IF_ERROR(
        LaunchAddInto(ArgOf(dst), ArgOf(src), s->stream));
    return absl::OkStatus();
  }

  absl::Status SumTo(DLDevice device, const DeviceView& dst,
                     const DeviceView& src) override {
    LLMSYS_ASSIGN_OR_RETURN(DeviceState * s, State(device));
    LLMSYS_RETURN_IF_ERROR(Checked(dst).status());
    LLMSYS_RETURN_IF_ERROR(Checked(src).status());
    LLMSYS_CUDA_RETURN_IF_ERROR(LaunchSumTo(ArgOf(dst), ArgOf(src), s->stream));
    return absl::OkStatus();
  }

  absl::Status Scale(DLDevice device, const DeviceView& dst,
                     double factor) override {
    LLMSYS_ASSIGN_OR_RETURN(DeviceState * s, State(device));
    LLMSYS_RETURN_IF_ERROR(Checked(dst).status());
    LLMSYS_CUDA_RETURN_IF_ERROR(LaunchScale(ArgOf(dst), factor, s->stream));
    return absl::OkStatus();
  }

  absl::StatusOr<double> SumOfSquares(
      DLDevice device, const std::vector<DeviceView>& srcs) override {
    LLMSYS_ASSIGN_OR_RETURN(DeviceState * s, State(device));
    for (const DeviceView& v : srcs)
      LLMSYS_RETURN_IF_ERROR(Checked(v).status());
    // Each view's partials, then their sum: one buffer, freed after the
    // copy has waited for the kernels.
    const int64_t count = static_cast<int64_t>(srcs.size()) * kSumSquaresBlocks;
    LLMSYS_ASSIGN_OR_RETURN(
        void* buffer,
        s->memory->Allocate(static_cast<size_t>(count + 1) * sizeof(double)));
    double* partials = static_cast<double*>(buffer);
    absl::Status status = [&]() -> absl::Status {
      for (size_t i = 0; i < srcs.size(); ++i)
        LLMSYS_CUDA_RETURN_IF_ERROR(LaunchSumSquaresPartials(
            ArgOf(srcs[i]), partials + i * kSumSquaresBlocks, s->stream));
      LLMSYS_CUDA_RETURN_IF_ERROR(
          LaunchSumPartials(partials, count, partials + count, s->stream));
      return absl::OkStatus();
    }();
    double sum = 0;
    if (status.ok())
      status = CopyToHost(device, &sum, partials + count, sizeof sum);
    if (!status.ok())
      LLMSYS_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(s->stream));
    s->memory->Free(buffer);
    LLMSYS_RETURN_IF_ERROR(status);
    return sum;
  }

  absl::Status Synchronize(DLDevice device) override {
    LLMSYS_ASSIGN_OR_RETURN(DeviceState * s, State(device));
    LLMSYS_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(s->stream));
    LLMSYS_CUDA_RETURN_IF_ERROR(cudaGetLastError());
    return absl::OkStatus();
  }

  absl::Status FillContext(DLDevice device,
                           llmsys_call_context_t* ctx) override {
    LLMSYS_ASSIGN_OR_RETURN(DeviceState * s, State(device));
    // Kernels launch from the calling thread: make its current device the
    // tensor's.
    LLMSYS_CUDA_RETURN_IF_ERROR(cudaSetDevice(s->index));
    ctx->stream = s->stream;
    ctx->blas_handle = s->blas;
    if (LLMSYS_CONTEXT_HAS(ctx, blas_workspace_bytes)) {
      ctx->blas_lt_handle = s->lt;
      ctx->blas_workspace = s->workspace;
      ctx->blas_workspace_bytes = kBlasWorkspaceBytes;
    }
    return absl::OkStatus();
  }

 private:
  // The device's state, created on first use.
  absl::StatusOr<DeviceState*> State(DLDevice device) {
    if (device.device_type != kDLCUDA || device.device_id < 0 ||
        device.device_id >= kMaxDevices)
      return absl::InvalidArgumentError(
          absl::StrCat("not a CUDA device index: ", device.device_id));
    std::lock_guard<std::mutex> lock(mu_);
    std::unique_ptr<DeviceState>& slot =
        states_[static_cast<size_t>(device.device_id)];
    if (slot != nullptr) return slot.get();
    LLMSYS_RETURN_IF_ERROR(GpuAvailable());
    int count = 0;
    LLMSYS_CUDA_RETURN_IF_ERROR(cudaGetDeviceCount(&count));
    if (device.device_id >= count)
      return absl::FailedPreconditionError(
          absl::StrCat("cuda:", device.device_id,
                       " does not exist: this "
                       "machine has ",
                       count, " CUDA GPU(s), cuda:0..cuda:", count - 1));
    auto s = std::make_unique<DeviceState>();
    s->index = device.device_id;
    LLMSYS_CUDA_RETURN_IF_ERROR(cudaSetDevice(s->index));
    LLMSYS_CUDA_RETURN_IF_ERROR(
        cudaStreamCreateWithFlags(&s->stream, cudaStreamNonBlocking));
    LLMSYS_CUBLAS_RETURN_IF_ERROR(cublasCreate(&s->blas));
    LLMSYS_CUBLAS_RETURN_IF_ERROR(cublasSetStream(s->blas, s->stream));
    LLMSYS_CUBLAS_RETURN_IF_ERROR(cublasLtCreate(&s->lt));
    LLMSYS_CUDA_RETURN_IF_ERROR(cudaMalloc(&s->workspace, kBlasWorkspaceBytes));
    LLMSYS_CUBLAS_RETURN_IF_ERROR(
        cublasSetWorkspace(s->blas, s->workspace, kBlasWorkspaceBytes));
    const int index = s->index;
    s->memory = std::make_unique<tensor::CachingAllocator>(
        tensor::CachingAllocator::Backend{
            .malloc = [index](size_t bytes) -> void* {
              void* p = nullptr;
              if (cudaSetDevice(index) != cudaSuccess) return nullptr;
              if (cudaMalloc(&p, bytes) != cudaSuccess) {
                (void)cudaGetLastError();  // clear the sticky-free error
                return nullptr;
              }
              return p;
            },
            .free = [](void* p) { (void)cudaFree(p); },
            .device_name = absl::StrCat("cuda:", index)});
    slot = std::move(s);
    return slot.get();
  }

  std::mutex mu_;
  std::array<std::unique_ptr<DeviceState>, kMaxDevices> states_;
};

}  // namespace

tensor::DeviceBackend* BuiltinBackend() {
  // Never destroyed: tensors freed during static destruction still find it.
  static CudaBackend* const backend = new CudaBackend;
  return backend;
}

absl::Status GpuAvailable() {
  int count = 0;
  const cudaError_t e = cudaGetDeviceCount(&count);
  if (e == cudaErrorNoDevice || (e == cudaSuccess && count == 0))
    return absl::FailedPreconditionError(
        "no CUDA GPU found on this machine (cudaGetDeviceCount)");
  if (e == cudaErrorInsufficientDriver)
    return absl::FailedPreconditionError(
        "no CUDA driver on this machine (or one older than the CUDA runtime "
        "this build uses), so no GPU can run");
  if (e != cudaSuccess)
    return absl::FailedPreconditionError(
        absl::StrCat("CUDA cannot start: ", cudaGetErrorName(e), " (",
                     cudaGetErrorString(e), ")"));
  return absl::OkStatus();
}

int DeviceCount() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  return count;
}

std::string DeviceDescription(int device) {
  if (absl::Status s = GpuAvailable(); !s.ok()) return std::string(s.message());
  cudaDeviceProp p{};
  if (cudaGetDeviceProperties(&p, device) != cudaSuccess)
    return absl::StrCat("cuda:", device, " (properties unavailable)");
  return absl::StrCat(
      p.name, " (sm_", p.major, p.minor, ", ", p.multiProcessorCount, " SMs, ",
      static_cast<double>(p.totalGlobalMem) / (1 << 30), " GiB)");
}

}  // namespace llmsys::cuda

#else  // no CUDA in this build

namespace llmsys::cuda {

tensor::DeviceBackend* BuiltinBackend() { return nullptr; }

absl::Status GpuAvailable() {
  return absl::FailedPreconditionError(
      "this build has no CUDA (nvcc was not found when it was configured, "
      "or it was configured with -DLLMSYS_CUDA=OFF)");
}

int DeviceCount() { return 0; }

std::string DeviceDescription(int) {
  return std::string(GpuAvailable().message());
}

}  // namespace llmsys::cuda

#endif
