// framework/distributed/mpi_communicator.h — the Communicator over MPI
// (Open MPI from Debian's packages; any MPI-3 library builds): the world of
// processes `mpirun -np N` (or `srun`, or another launcher) started.
//
//   if (distributed::LaunchedByMpi()) {
//     LLMSYS_ASSIGN_OR_RETURN(auto comm, distributed::MpiWorld());
//     options.communicator = comm.get();   // rank(), size(), collectives
//   }
//
// MPI is initialized on the first MpiWorld() (thread level FUNNELED: only
// the thread that calls it makes MPI calls) and finalized when the returned
// communicator is destroyed. Every wait polls a non-blocking call against
// the timeout (set_timeout; 300 s at first), backing off to 1 ms sleeps, so
// that a rank that waits neither hangs forever nor takes a core from the
// ranks still computing. MPI errors return statuses (MPI_ERRORS_RETURN)
// naming the call and MPI's message.
//
// Built into the llmsys_mpi library where CMake finds MPI; the trainer
// sees only the Communicator interface.
#ifndef LLMSYS_FRAMEWORK_DISTRIBUTED_MPI_COMMUNICATOR_H_
#define LLMSYS_FRAMEWORK_DISTRIBUTED_MPI_COMMUNICATOR_H_

#include <memory>

#include "absl/status/statusor.h"
#include "framework/distributed/communicator.h"

namespace llmsys::distributed {

// The world communicator; FAILED_PRECONDITION when MPI cannot start.
absl::StatusOr<std::unique_ptr<Communicator>> MpiWorld();

}  // namespace llmsys::distributed

#endif  // LLMSYS_FRAMEWORK_DISTRIBUTED_MPI_COMMUNICATOR_H_
