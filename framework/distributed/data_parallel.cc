#include "framework/distributed/data_parallel.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "framework/core/status_macros.h"

namespace llmsys::distributed {

using autograd::Var;
using tensor::Tensor;

namespace {

// The host element type a parameter's gradient is summed in: float64 for
// float64 parameters, float32 for every other float dtype.
DLDataType SumDType(const Tensor& param) {
  return llmsys_dtype_equal(param.dtype(), tensor::kF64) ? tensor::kF64
                                                         : tensor::kF32;
}

// Elements [offset, offset + numel(shape)) of the flat buffer, as `shape`.
absl::StatusOr<Tensor> Region(const Tensor& flat, int64_t offset,
                              const tensor::Shape& shape) {
  LLMSYS_ASSIGN_OR_RETURN(Tensor s,
                          flat.Slice(0, offset, offset + tensor::Numel(shape)));
  return s.View(shape);
}

}  // namespace

GradientSync::GradientSync(Communicator& comm, std::vector<Var> params,
                           Options options)
    : comm_(comm), params_(std::move(params)), options_(options) {
  // Reverse declaration order, a new bucket when the dtype changes or the
  // bucket is full (a parameter larger than a bucket gets its own).
  for (size_t k = params_.size(); k-- > 0;) {
    const Tensor& p = params_[k]->data;
    const DLDataType dtype = SumDType(p);
    const int64_t bytes =
        p.numel() * static_cast<int64_t>(tensor::DTypeSize(dtype));
    if (buckets_.empty() || !llmsys_dtype_equal(buckets_.back().dtype, dtype) ||
        (buckets_.back().elements > 0 &&
         (buckets_.back().elements *
              static_cast<int64_t>(tensor::DTypeSize(dtype)) +
          bytes) > options_.bucket_bytes)) {
      buckets_.emplace_back();
      buckets_.back().dtype = dtype;
    }
    Bucket& b = buckets_.back();
    b.params.push_back(k);
    b.offset.push_back(b.elements);
    b.elements += p.numel();
    bucket_of_[params_[k].get()] = buckets_.size() - 1;
  }
}

GradientSync::~GradientSync() = default;

std::function<void(const Var&)> GradientSync::Hook() {
  if (!options_.overlap) return {};
  return [this](const Var& leaf) {
    auto it = bucket_of_.find(leaf.get());
    if (it == bucket_of_.end() || !hook_status_.ok()) return;
    ++buckets_[it->second].ready;
    // MPI matches collectives by the order each rank starts them: start
    // buckets in index order only, each once all before it have started
    // (a bucket ready early on one rank waits for its turn).
    while (next_ < buckets_.size() && hook_status_.ok() &&
           buckets_[next_].ready ==
               static_cast<int>(buckets_[next_].params.size())) {
      hook_status_ = Start(buckets_[next_]);
      ++next_;
    }
    // MPI advances every pending collective inside any MPI call: testing
    // the oldest one not known complete keeps them all moving while
    // backward goes on (one test per leaf, not one per started bucket).
    while (hook_status_.ok() && complete_ < next_) {
      absl::StatusOr<bool> done = buckets_[complete_].pending->Test();
      if (!done.ok()) hook_status_ = done.status();
      if (!done.ok() || !*done) break;
      ++complete_;
    }
  };
}

absl::Status GradientSync::Start(Bucket& b) {
  if (!b.flat.defined()) {
    // On the communicator's device (NCCL: the GPU) when the parameters
    // live there; else in host memory.
    DLDevice where = comm_.buffer_device();
    for (size_t k : b.params)
      if (!(params_[k]->data.device() == where)) where = tensor::kCpu;
    LLMSYS_ASSIGN_OR_RETURN(
        b.flat,
        Tensor::Empty({b.elements + static_cast<int64_t>(b.params.size())},
                      b.dtype, where));
  }
  for (size_t j = 0; j < b.params.size(); ++j) {
    const autograd::VarImpl& p = *params_[b.params[j]];
    LLMSYS_ASSIGN_OR_RETURN(Tensor region,
                            Region(b.flat, b.offset[j], p.data.shape()));
    LLMSYS_ASSIGN_OR_RETURN(Tensor flag, Region(b.flat, b.elements + j, {1}));
    if (p.grad.defined()) {
      if (p.grad.shape() != p.data.shape())
        return absl::InternalError(absl::StrCat("the gradient of a parameter ",
                                                p.data.Describe(), " is ",
                                                p.grad.Describe()));
      LLMSYS_RETURN_IF_ERROR(region.CopyFrom(p.grad));
      LLMSYS_RETURN_IF_ERROR(flag.Fill(1.0));
    } else {
      LLMSYS_RETURN_IF_ERROR(region.Fill(0.0));
      LLMSYS_RETURN_IF_ERROR(flag.Fill(0.0));
    }
  }
  LLMSYS_ASSIGN_OR_RETURN(
      b.pending,
      comm_.StartAllReduceSum(b.flat.data(), b.flat.numel(), b.dtype));
  return absl::OkStatus();
}

absl::Status GradientSync::Finish() {
  absl::Status status = std::exchange(hook_status_, absl::OkStatus());
  for (; next_ < buckets_.size() && status.ok(); ++next_)
    status = Start(buckets_[next_]);  // the rest, in index order
  next_ = 0;
  complete_ = 0;
  for (Bucket& b : buckets_) {
    if (b.pending) {
      absl::Status s = b.pending->Wait();
      b.pending.reset();
      if (status.ok()) status = s;
    }
    b.ready = 0;
  }
  LLMSYS_RETURN_IF_ERROR(status);
  for (Bucket& b : buckets_) {
    LLMSYS_ASSIGN_OR_RETURN(
        Tensor flag_region,
        Region(b.flat, b.elements, {static_cast<int64_t>(b.params.size())}));
    const std::vector<double> flags = flag_region.ToDoubles();  // one copy
    for (size_t j = 0; j < b.params.size(); ++j) {
      autograd::VarImpl& p = *params_[b.params[j]];
      if (flags[j] == 0.0) {  // no rank had a gradient
        p.grad = Tensor();
        continue;
      }
      LLMSYS_ASSIGN_OR_RETURN(Tensor region,
                              Region(b.flat, b.offset[j], p.data.shape()));
      // A new tensor: the old gradient may be shared with the graph.
      LLMSYS_ASSIGN_OR_RETURN(
          Tensor sum,
          Tensor::Empty(p.data.shape(),
                        p.grad.defined() ? p.grad.dtype() : p.data.dtype(),
                        p.data.device()));
      LLMSYS_RETURN_IF_ERROR(sum.CopyFrom(region));
      p.grad = std::move(sum);
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<Tensor> HostCopy(const Tensor& t) {
  if (t.device().device_type == kDLCPU) return t.Clone();
  return t.ToDevice(tensor::kCpu);  // a compact copy already
}

absl::Status BroadcastParameters(Communicator& comm,
                                 const std::vector<Var>& params) {
  for (const Var& p : params) {
    const DLDevice device = p->data.device();
    // On the collectives' GPU (NCCL): in place.
    if (device.device_type != kDLCPU && device == comm.buffer_device() &&
        p->data.is_contiguous()) {
      LLMSYS_RETURN_IF_ERROR(comm.Broadcast(
          p->data.data(),
          p->data.numel() * static_cast<int64_t>(p->data.element_size()), 0));
      continue;
    }
    // Through host memory (the parameter is written only by CopyFrom).
    LLMSYS_ASSIGN_OR_RETURN(Tensor host, HostCopy(p->data));
    LLMSYS_RETURN_IF_ERROR(comm.Broadcast(
        host.data(), host.numel() * static_cast<int64_t>(host.element_size()),
        0));
    LLMSYS_RETURN_IF_ERROR(p->data.CopyFrom(host));
  }
  return absl::OkStatus();
}

}  // namespace llmsys::distributed
