#include "framework/distributed/nccl_communicator.h"

#include <cuda_runtime.h>
#include <nccl.h>

#include <chrono>
#include <cstdlib>
#include <string>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "framework/core/status_macros.h"
#include "framework/tensor/device.h"
#include "framework/tensor/tensor.h"

namespace llmsys::distributed {
namespace {

using Clock = std::chrono::steady_clock;

absl::Status CudaStatus(cudaError_t e, const char* what) {
  if (e == cudaSuccess) return absl::OkStatus();
  return absl::InternalError(
      absl::StrCat(what, " failed: ", cudaGetErrorString(e)));
}

absl::Status NcclStatus(ncclResult_t r, const char* what) {
  if (r == ncclSuccess || r == ncclInProgress) return absl::OkStatus();
  return absl::InternalError(
      absl::StrCat(what, " failed: ", ncclGetErrorString(r)));
}

absl::StatusOr<ncclDataType_t> NcclType(DLDataType t) {
  if (llmsys_dtype_equal(t, tensor::kF32)) return ncclFloat32;
  if (llmsys_dtype_equal(t, tensor::kF64)) return ncclFloat64;
  if (llmsys_dtype_equal(t, tensor::kI64)) return ncclInt64;
  return absl::InvalidArgumentError(absl::StrCat(
      "all-reduce of ", tensor::DTypeName(t),
      ": only float32, float64 and int64 are summed across ranks"));
}

class NcclCommunicator;

// One NCCL call queued on the stream, complete when its event is.
class NcclPending final : public PendingCollective {
 public:
  NcclPending(NcclCommunicator* comm, std::string what, cudaEvent_t done)
      : comm_(comm), what_(std::move(what)), done_(done) {}
  ~NcclPending() override {
    if (done_ != nullptr) cudaEventDestroy(done_);
  }
  absl::StatusOr<bool> Test() override;
  absl::Status Wait() override;

 private:
  NcclCommunicator* comm_;
  std::string what_;
  cudaEvent_t done_;
};

// NCCL's calls run on a stream of their own (`stream`), each after the work
// queued on the ops' stream (`ops`) when it was made: a started all-reduce
// runs while the ops go on (backward computing the next buckets). Work the
// ops queue after a call's Wait() follows it (the host saw it complete).
class NcclCommunicator final : public Communicator {
 public:
  NcclCommunicator(Communicator& host, DLDevice device, ncclComm_t comm,
                   cudaStream_t ops, cudaStream_t stream)
      : host_(host), device_(device), comm_(comm), ops_(ops), stream_(stream) {}
  ~NcclCommunicator() override {
    if (comm_ != nullptr) ncclCommDestroy(comm_);
    cudaStreamDestroy(stream_);
  }

  int rank() const override { return host_.rank(); }
  int size() const override { return host_.size(); }
  int local_size() const override { return host_.local_size(); }
  int local_rank() const override { return host_.local_rank(); }
  DLDevice buffer_device() const override { return device_; }
  std::string Who() const override { return host_.Who(); }
  std::string Describe() const override {
    int version = 0;
    ncclGetVersion(&version);
    return absl::StrCat(host_.Describe(), ", NCCL ", version / 10000, ".",
                        version / 100 % 100, " on cuda:", device_.device_id);
  }
  void set_timeout(double seconds) override {
    timeout_ = seconds;
    host_.set_timeout(seconds);
  }
  double timeout() const { return timeout_; }

  absl::Status AllReduceSum(void* data, int64_t count,
                            DLDataType dtype) override {
    if (!OnDevice(data)) return host_.AllReduceSum(data, count, dtype);
    LLMSYS_ASSIGN_OR_RETURN(std::unique_ptr<PendingCollective> p,
                            StartAllReduceSum(data, count, dtype));
    return p->Wait();
  }
  absl::StatusOr<std::unique_ptr<PendingCollective>> StartAllReduceSum(
      void* data, int64_t count, DLDataType dtype) override {
    if (!OnDevice(data)) return host_.StartAllReduceSum(data, count, dtype);
    LLMSYS_ASSIGN_OR_RETURN(ncclDataType_t type, NcclType(dtype));
    LLMSYS_RETURN_IF_ERROR(Queue("ncclAllReduce", [&] {
      return ncclAllReduce(data, data, static_cast<size_t>(count), type,
                           ncclSum, comm_, stream_);
    }));
    return Pending(absl::StrCat("an NCCL all-reduce of ", count, " ",
                                tensor::DTypeName(dtype)));
  }
  absl::Status Broadcast(void* data, int64_t bytes, int root) override {
    if (!OnDevice(data)) return host_.Broadcast(data, bytes, root);
    LLMSYS_RETURN_IF_ERROR(Queue("ncclBroadcast", [&] {
      return ncclBroadcast(data, data, static_cast<size_t>(bytes), ncclUint8,
                           root, comm_, stream_);
    }));
    return WaitFor(absl::StrCat("an NCCL broadcast of ", bytes,
                                " bytes from rank ", root));
  }
  absl::Status Send(const void* data, int64_t bytes, int peer,
                    int tag) override {
    if (!OnDevice(data)) return host_.Send(data, bytes, peer, tag);
    // NCCL pairs a send with its receive by order, not tag: the callers
    // (pipeline.h) keep one order per pair of ranks.
    LLMSYS_RETURN_IF_ERROR(Queue("ncclSend", [&] {
      return ncclSend(data, static_cast<size_t>(bytes), ncclUint8, peer, comm_,
                      stream_);
    }));
    return WaitFor(
        absl::StrCat("an NCCL send of ", bytes, " bytes to rank ", peer));
  }
  absl::Status Recv(void* data, int64_t bytes, int peer, int tag) override {
    if (!OnDevice(data)) return host_.Recv(data, bytes, peer, tag);
    LLMSYS_RETURN_IF_ERROR(Queue("ncclRecv", [&] {
      return ncclRecv(data, static_cast<size_t>(bytes), ncclUint8, peer, comm_,
                      stream_);
    }));
    return WaitFor(
        absl::StrCat("an NCCL receive of ", bytes, " bytes from rank ", peer));
  }
  absl::Status Barrier(double timeout_seconds) override {
    return host_.Barrier(timeout_seconds);
  }
  [[noreturn]] void Abort(const std::string& why, int code) override {
    if (comm_ != nullptr) ncclCommAbort(comm_);
    comm_ = nullptr;
    host_.Abort(why, code);
    std::_Exit(code);  // host_.Abort does not return
  }

  // Polls `done` until it completes, NCCL reports an error, or the timeout.
  absl::Status Poll(cudaEvent_t done, const std::string& what) {
    const Clock::time_point start = Clock::now();
    while (true) {
      if (comm_ == nullptr)
        return absl::FailedPreconditionError(absl::StrCat(
            RankPrefix(this), what, ": the NCCL communicator was aborted"));
      const cudaError_t q = cudaEventQuery(done);
      if (q == cudaSuccess) return absl::OkStatus();
      if (q != cudaErrorNotReady)
        return absl::InternalError(absl::StrCat(
            RankPrefix(this), what, " failed: ", cudaGetErrorString(q)));
      ncclResult_t async = ncclSuccess;
      ncclCommGetAsyncError(comm_, &async);
      if (async != ncclSuccess && async != ncclInProgress)
        return absl::InternalError(absl::StrCat(
            RankPrefix(this), what, " failed: ", ncclGetErrorString(async)));
      if (std::chrono::duration<double>(Clock::now() - start).count() >
          timeout_) {
        ncclCommAbort(comm_);  // the kernel waits for a peer forever
        comm_ = nullptr;
        return absl::DeadlineExceededError(absl::StrCat(
            RankPrefix(this), "no answer from the other ranks for ", timeout_,
            " s in ", what, ": a rank died or hung ([distributed] timeout)"));
      }
      std::this_thread::sleep_for(std::chrono::microseconds(100));
    }
  }

 private:
  static bool OnDevice(const void* p) {
    cudaPointerAttributes a{};
    if (cudaPointerGetAttributes(&a, p) != cudaSuccess) {
      cudaGetLastError();  // host memory CUDA never saw: not an error
      return false;
    }
    return a.type == cudaMemoryTypeDevice || a.type == cudaMemoryTypeManaged;
  }
  // Queues `call` on stream_ behind the work queued on ops_ so far (which
  // produced its buffer).
  template <class F>
  absl::Status Queue(const char* what, F&& call) {
    if (comm_ == nullptr)
      return absl::FailedPreconditionError(
          absl::StrCat(what, ": the NCCL communicator was aborted"));
    cudaEvent_t ready = nullptr;
    LLMSYS_RETURN_IF_ERROR(
        CudaStatus(cudaEventCreateWithFlags(&ready, cudaEventDisableTiming),
                   "cudaEventCreate"));
    absl::Status s =
        CudaStatus(cudaEventRecord(ready, ops_), "cudaEventRecord");
    if (s.ok())
      s = CudaStatus(cudaStreamWaitEvent(stream_, ready, 0),
                     "cudaStreamWaitEvent");
    cudaEventDestroy(ready);  // released once the wait has passed it
    LLMSYS_RETURN_IF_ERROR(s);
    return NcclStatus(call(), what);
  }
  absl::StatusOr<std::unique_ptr<PendingCollective>> Pending(std::string what) {
    cudaEvent_t done = nullptr;
    LLMSYS_RETURN_IF_ERROR(
        CudaStatus(cudaEventCreateWithFlags(&done, cudaEventDisableTiming),
                   "cudaEventCreate"));
    absl::Status s =
        CudaStatus(cudaEventRecord(done, stream_), "cudaEventRecord");
    if (!s.ok()) {
      cudaEventDestroy(done);
      return s;
    }
    return std::unique_ptr<PendingCollective>(
        std::make_unique<NcclPending>(this, std::move(what), done));
  }
  absl::Status WaitFor(std::string what) {
    LLMSYS_ASSIGN_OR_RETURN(std::unique_ptr<PendingCollective> p,
                            Pending(std::move(what)));
    return p->Wait();
  }

  Communicator& host_;
  DLDevice device_;
  ncclComm_t comm_;
  cudaStream_t ops_;     // the host's ops' stream for device_
  cudaStream_t stream_;  // NCCL's, owned
  double timeout_ = 300;
};

absl::StatusOr<bool> NcclPending::Test() {
  const cudaError_t q = cudaEventQuery(done_);
  if (q == cudaSuccess) return true;
  if (q == cudaErrorNotReady) return false;
  return absl::InternalError(
      absl::StrCat(what_, " failed: ", cudaGetErrorString(q)));
}

absl::Status NcclPending::Wait() { return comm_->Poll(done_, what_); }

}  // namespace

absl::StatusOr<std::unique_ptr<Communicator>> NcclOver(Communicator& host,
                                                       DLDevice device) {
  if (device.device_type != kDLCUDA)
    return absl::InvalidArgumentError("NCCL needs a CUDA device");
  // The stream the host's ops run on for this device (NCCL's own waits
  // for it).
  LLMSYS_ASSIGN_OR_RETURN(tensor::DeviceBackend * backend,
                          tensor::BackendFor(device));
  llmsys_call_context_t ctx{};
  ctx.struct_size = sizeof(ctx);
  LLMSYS_RETURN_IF_ERROR(backend->FillContext(device, &ctx));
  ncclUniqueId id{};
  if (host.rank() == 0)
    LLMSYS_RETURN_IF_ERROR(NcclStatus(ncclGetUniqueId(&id), "ncclGetUniqueId"));
  LLMSYS_RETURN_IF_ERROR(host.Broadcast(&id, sizeof id, 0));
  LLMSYS_RETURN_IF_ERROR(
      CudaStatus(cudaSetDevice(device.device_id), "cudaSetDevice"));
  cudaStream_t stream = nullptr;
  LLMSYS_RETURN_IF_ERROR(
      CudaStatus(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking),
                 "cudaStreamCreate"));
  ncclComm_t comm = nullptr;
  absl::Status s =
      NcclStatus(ncclCommInitRank(&comm, host.size(), id, host.rank()),
                 "ncclCommInitRank");
  if (!s.ok()) {
    cudaStreamDestroy(stream);
    return s;
  }
  return std::unique_ptr<Communicator>(std::make_unique<NcclCommunicator>(
      host, device, comm, static_cast<cudaStream_t>(ctx.stream), stream));
}

}  // namespace llmsys::distributed
