// framework/distributed/data_parallel.h — the gradient side of data-parallel
// training: every rank holds the whole model, computes gradients on its
// share of the batch, and GradientSync sums them over the ranks, in
// buckets, before the optimizer step (which then runs identically
// everywhere).
//
//   GradientSync sync(comm, params, {.bucket_bytes = 25 << 20});
//   ... forward; Backward(loss, seed, {.on_leaf_ready = sync.Hook()}) ...
//   LLMSYS_RETURN_IF_ERROR(sync.Finish());   // grads summed over the ranks
//
// Buckets hold parameters in reverse order of declaration (the order
// backward tends to finish them), up to bucket_bytes each, one all-reduce
// of one host buffer per bucket. With `overlap`, Hook() starts a bucket's
// all-reduce as soon as backward has finished every gradient in it and the
// buckets before it have started (every rank starts them in the same
// order, as MPI requires), so communication runs while backward computes
// the rest; without, Finish() starts them all. A parameter without a gradient
// on some ranks gets the sum of the others'; one without a gradient on every
// rank keeps none. The caller scales each rank's gradients so that their sum is
// the one it wants (trainer: each rank's share of the batch's predicted
// tokens).
//
// Thread-safety: the thread that runs backward.
#ifndef LLMSYS_FRAMEWORK_DISTRIBUTED_DATA_PARALLEL_H_
#define LLMSYS_FRAMEWORK_DISTRIBUTED_DATA_PARALLEL_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "framework/autograd/autograd.h"
#include "framework/distributed/communicator.h"
#include "framework/tensor/tensor.h"

namespace llmsys::distributed {

class GradientSync {
 public:
  struct Options {
    int64_t bucket_bytes = int64_t{25} << 20;
    bool overlap = false;
  };

  // `params`: the trainable parameters (their grads are summed).
  GradientSync(Communicator& comm, std::vector<autograd::Var> params,
               Options options);
  ~GradientSync();

  // For BackwardOptions::on_leaf_ready on the backward that completes the
  // step's gradients (with accumulation: the last micro-batch's); empty
  // without `overlap`.
  std::function<void(const autograd::Var&)> Hook();

  // Sums every bucket over the ranks (starting those not started) and sets
  // each parameter's grad to the sum. Every rank calls it once per step.
  absl::Status Finish();

  int num_buckets() const { return static_cast<int>(buckets_.size()); }

 private:
  struct Bucket {
    std::vector<size_t> params;   // indices into params_
    std::vector<int64_t> offset;  // each one's first element in `flat`
    DLDataType dtype;
    int64_t elements = 0;  // gradient elements, then one flag each
    int ready = 0;         // parameters whose gradient is final
    tensor::Tensor flat;   // host: gradients, then the flags
    std::unique_ptr<PendingCollective> pending;
  };

  absl::Status Start(Bucket& b);

  Communicator& comm_;
  std::vector<autograd::Var> params_;
  Options options_;
  std::vector<Bucket> buckets_;
  std::map<const autograd::VarImpl*, size_t> bucket_of_;
  size_t next_ = 0;           // the next bucket to start (index order)
  size_t complete_ = 0;       // buckets before it are known complete
  absl::Status hook_status_;  // the first error inside Hook()
};

// A compact host copy of `t` that is never `t`'s own memory (a buffer a
// collective may write into): one transfer from a GPU, a clone on the host.
absl::StatusOr<tensor::Tensor> HostCopy(const tensor::Tensor& t);

// Makes every rank's parameters rank 0's (at the start of a run, so that
// all ranks begin from the same weights whatever their initialization).
absl::Status BroadcastParameters(Communicator& comm,
                                 const std::vector<autograd::Var>& params);

}  // namespace llmsys::distributed

#endif  // LLMSYS_FRAMEWORK_DISTRIBUTED_DATA_PARALLEL_H_
