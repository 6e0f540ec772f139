// framework/distributed/communicator.h — the processes of one run and the
// collectives that training over several of them needs.
//
// `llmsys run` under a launcher (`mpirun -np N`, Slurm's `srun`) makes one
// Communicator per process (distributed/mpi_communicator.h) and hands it to
// the trainer (train::RunOptions::communicator); a run without one is a
// single process. Ranks are 0 .. size - 1; rank 0 writes the run directory.
//
//   std::vector<double> v = {loss * tokens, tokens};
//   LLMSYS_RETURN_IF_ERROR(comm.AllReduceSum(v.data(), 2, tensor::kF64));
//
// Every call is collective (every rank makes it, in the same order) except
// Send/Recv. A call that waits longer than the communicator's timeout (a
// rank died or hung) returns DEADLINE_EXCEEDED naming this rank and the
// call; the caller then ends the run with Abort(), which stops every rank.
// Buffers are host memory, or buffer_device()'s; a buffer's two ends
// (every rank of a collective, both of a Send/Recv) use the same kind.
//
// Thread-safety: one thread per process makes the calls.
#ifndef LLMSYS_FRAMEWORK_DISTRIBUTED_COMMUNICATOR_H_
#define LLMSYS_FRAMEWORK_DISTRIBUTED_COMMUNICATOR_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "dlpack/dlpack.h"

namespace llmsys::distributed {

// A collective started and not yet complete (Communicator::StartAllReduce).
class PendingCollective {
 public:
  virtual ~PendingCollective() = default;
  // Advances it without blocking; true once complete.
  virtual absl::StatusOr<bool> Test() = 0;
  // Blocks until complete (or the timeout).
  virtual absl::Status Wait() = 0;
};

class Communicator {
 public:
  virtual ~Communicator() = default;

  virtual int rank() const = 0;
  virtual int size() const = 0;
  // Ranks on this machine (this one included): they share its cores and
  // GPUs; this rank is number local_rank() among them.
  virtual int local_size() const = 0;
  virtual int local_rank() const = 0;
  // Where the collectives prefer their buffers: host memory (MPI), or a
  // GPU's (NCCL, distributed/nccl_communicator.h), where GradientSync then
  // keeps its buckets. Host memory works with every communicator.
  virtual DLDevice buffer_device() const { return {kDLCPU, 0}; }
  // For logs: "2 ranks over MPI (Open MPI v4.1.4; rank 0 on host-a)".
  virtual std::string Describe() const = 0;
  // This process in messages: "rank 1/4", its rank in the job's world
  // (a Split() group's adds the group: "rank 3/4 (pipeline 1)"); "" when
  // the job has one process.
  virtual std::string Who() const;

  // Collective: the ranks that pass the same `color` form a group, ranked
  // by `key` (ties: by rank); returns this rank's group. `name` says what
  // the group is in its messages ("pipeline 1"). The group's calls name
  // peers by their rank in the group; it starts with this communicator's
  // timeout and must be destroyed before it. Communicators over several
  // transports (NCCL) cannot split: split the host one, then wrap each
  // part.
  virtual absl::StatusOr<std::unique_ptr<Communicator>> Split(
      int color, int key, const std::string& name);

  // Sums `count` elements of `dtype` (float32, float64 or int64) at `data`
  // over the ranks, in place.
  virtual absl::Status AllReduceSum(void* data, int64_t count,
                                    DLDataType dtype) = 0;
  // The same, started: `data` must stay untouched until it completes.
  virtual absl::StatusOr<std::unique_ptr<PendingCollective>> StartAllReduceSum(
      void* data, int64_t count, DLDataType dtype) = 0;
  // Rank `root`'s `bytes` bytes at `data` to every rank.
  virtual absl::Status Broadcast(void* data, int64_t bytes, int root) = 0;
  // Point to point, matched by (peer, tag).
  virtual absl::Status Send(const void* data, int64_t bytes, int peer,
                            int tag) = 0;
  virtual absl::Status Recv(void* data, int64_t bytes, int peer, int tag) = 0;
  // Waits for every rank; `timeout_seconds` < 0: the communicator's
  // timeout, 0: none (while rank 0 alone evaluates or writes samples).
  virtual absl::Status Barrier(double timeout_seconds = -1) = 0;

  // How long a call waits for the other ranks before DEADLINE_EXCEEDED.
  virtual void set_timeout(double seconds) = 0;

  // Ends the run on every rank: prints `why` (prefixed with this rank) and
  // exits with `code`.
  [[noreturn]] virtual void Abort(const std::string& why, int code) = 0;
};

// OK when every rank can have a GPU of its own (every machine has at least
// as many GPUs as ranks on it), as NCCL needs; else why not. `gpus_here`:
// the GPUs this machine has. Collective.
absl::Status GpuPerRank(Communicator& comm, int gpus_here);

// Who() and ": " for messages of a run over several ranks, "" for one.
std::string RankPrefix(const Communicator* comm);

// Whether a launcher started this process as one rank of a job (its
// environment says so: Open MPI's OMPI_COMM_WORLD_SIZE, PMIx's PMIX_RANK,
// PMI's PMI_SIZE or PMI_RANK, as mpirun, mpiexec and srun set them).
bool LaunchedByMpi();

// The job's size as the launcher's environment gives it
// (OMPI_COMM_WORLD_SIZE, PMI_SIZE, or SLURM_NTASKS under srun); 1 when it
// does not say.
int LaunchedRanks();

}  // namespace llmsys::distributed

#endif  // LLMSYS_FRAMEWORK_DISTRIBUTED_COMMUNICATOR_H_
