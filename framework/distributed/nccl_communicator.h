// framework/distributed/nccl_communicator.h — collectives on GPU memory
// with NCCL, for runs whose ranks each train on a GPU of their own.
//
// NcclOver(host, device) wraps a host communicator (MPI): MPI starts the
// job and exchanges NCCL's unique id (rank 0 makes it, MPI broadcasts it),
// then every call whose buffer is device memory goes through NCCL on a
// stream of its own, queued after the kernels the ops' stream had queued
// (those that computed its input), so that a started all-reduce runs while
// backward goes on (GradientSync's overlap); every call on host
// memory, the barrier and Abort go through MPI as before. buffer_device()
// is the GPU: GradientSync keeps its buckets there and SendTensor sends
// device tensors without a host copy.
//
//   LLMSYS_ASSIGN_OR_RETURN(std::unique_ptr<Communicator> gpu,
//                           NcclOver(*mpi, {kDLCUDA, mpi->local_rank()}));
//
// NCCL needs one GPU per rank: where GpuPerRank (communicator.h) says a
// machine has more ranks than GPUs, the trainer keeps the host path. Waits poll
// the stream and give up after the timeout with DEADLINE_EXCEEDED, aborting the
// NCCL communicator.
//
// Built where CUDA, NCCL and MPI are found (LLMSYS_HAVE_NCCL).
//
// Thread-safety: one thread per process makes the calls.
#ifndef LLMSYS_FRAMEWORK_DISTRIBUTED_NCCL_COMMUNICATOR_H_
#define LLMSYS_FRAMEWORK_DISTRIBUTED_NCCL_COMMUNICATOR_H_

#include <memory>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "framework/distributed/communicator.h"

namespace llmsys::distributed {

// NCCL over `host`'s ranks, on `device` (a CUDA device). Collective.
absl::StatusOr<std::unique_ptr<Communicator>> NcclOver(Communicator& host,
                                                       DLDevice device);

}  // namespace llmsys::distributed

#endif  // LLMSYS_FRAMEWORK_DISTRIBUTED_NCCL_COMMUNICATOR_H_
