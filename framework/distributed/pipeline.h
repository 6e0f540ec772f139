// framework/distributed/pipeline.h — what pipeline-parallel training moves
// between ranks: each rank holds one stage of the model (a contiguous run
// of its layers, llmsys/host.h pipeline_stage), the trainer runs the GPipe
// schedule (every micro-batch forward through the stages, then every one
// backward in reverse), and these functions carry the tensors.
//
//   SendTensor / RecvTensor   an activation forward, its gradient back
//   SharedParameters          a parameter that several stages declare (a
//                             tied embedding): one value, gradients summed
//   GatherNamed               every stage's tensors on one rank (the whole
//                             model's checkpoint, evaluations)
//
//   LLMSYS_RETURN_IF_ERROR(SendTensor(comm, out->data, rank + 1, j));
//   LLMSYS_ASSIGN_OR_RETURN(Tensor in, RecvTensor(comm, rank - 1, j));
//
// Calls block until the peer takes part (or the communicator's timeout).
// Tensors travel through host memory, or GPU to GPU over NCCL.
//
// Thread-safety: the communicator's (one thread).
#ifndef LLMSYS_FRAMEWORK_DISTRIBUTED_PIPELINE_H_
#define LLMSYS_FRAMEWORK_DISTRIBUTED_PIPELINE_H_

#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "framework/autograd/autograd.h"
#include "framework/distributed/communicator.h"
#include "framework/tensor/tensor.h"

namespace llmsys::distributed {

using NamedTensors = std::vector<std::pair<std::string, tensor::Tensor>>;

// `t` (any device, any layout) to rank `peer`, which must RecvTensor with
// the same tag: its dtype and shape, then its elements.
absl::Status SendTensor(Communicator& comm, const tensor::Tensor& t, int peer,
                        int tag);
// What rank `peer` sent with SendTensor and `tag`: on the communicator's
// device if it was sent from there (NCCL), else on the host.
absl::StatusOr<tensor::Tensor> RecvTensor(Communicator& comm, int peer,
                                          int tag);

// Collective: the named tensors of every rank on rank `root`, rank by rank
// (root's own first), each name once (the first rank's copy); other ranks
// get an empty list. Host copies.
absl::StatusOr<NamedTensors> GatherNamed(Communicator& comm, int root,
                                         const NamedTensors& mine);

// The parameters that more than one rank declares.
class SharedParameters {
 public:
  // Collective: every rank passes the names and values of its trainable
  // parameters.
  static absl::StatusOr<SharedParameters> Find(
      Communicator& comm,
      const std::vector<std::pair<std::string, autograd::Var>>& params);

  // Sums each shared parameter's gradient over the ranks that hold it (a
  // rank without one adds zeros), in rank order, so that every holder gets
  // the same bits. Collective.
  absl::Status SumGradients();

  // Whether this rank is the one that counts `name` (in the gradient
  // norm, in checkpoints): the lowest rank that holds it.
  bool Counts(const std::string& name) const {
    return not_counted_.count(name) == 0;
  }
  // Shared names, each with the ranks that hold it (ascending).
  const std::map<std::string, std::vector<int>>& holders() const {
    return holders_;
  }

 private:
  SharedParameters(Communicator& comm) : comm_(&comm) {}
  Communicator* comm_;
  std::map<std::string, std::vector<int>> holders_;  // shared with this rank
  std::map<std::string, autograd::Var> vars_;
  std::set<std::string> not_counted_;
};

}  // namespace llmsys::distributed

#endif  // LLMSYS_FRAMEWORK_DISTRIBUTED_PIPELINE_H_
