#include "framework/distributed/communicator.h"

#include <cstdlib>

#include "absl/strings/str_cat.h"

namespace llmsys::distributed {

absl::Status GpuPerRank(Communicator& comm, int gpus_here) {
  int64_t short_of_gpus = comm.local_size() > gpus_here ? 1 : 0;
  absl::Status s = comm.AllReduceSum(&short_of_gpus, 1, {kDLInt, 64, 1});
  if (!s.ok()) return s;
  if (short_of_gpus == 0) return absl::OkStatus();
  return absl::FailedPreconditionError(absl::StrCat(
      "not one GPU per rank: ", short_of_gpus,
      " rank(s) run on a machine with more ranks than GPUs (this machine: ",
      comm.local_size(), " rank(s), ", gpus_here, " GPU(s))"));
}

std::string Communicator::Who() const {
  return size() > 1 ? absl::StrCat("rank ", rank(), "/", size()) : "";
}

absl::StatusOr<std::unique_ptr<Communicator>> Communicator::Split(
    int, int, const std::string& name) {
  return absl::UnimplementedError(
      absl::StrCat(Describe(), " cannot split into groups (", name,
                   "): split its host communicator, then wrap each part"));
}

std::string RankPrefix(const Communicator* comm) {
  if (comm == nullptr) return "";
  const std::string who = comm->Who();
  return who.empty() ? "" : who + ": ";
}

bool LaunchedByMpi() {
  for (const char* v :
       {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_SIZE", "PMI_RANK"})
    if (std::getenv(v) != nullptr) return true;
  return false;
}

int LaunchedRanks() {
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE"}) {
    const char* value = std::getenv(v);
    if (value != nullptr && std::atoi(value) > 0) return std::atoi(value);
  }
  // srun with PMIx says the job's size only in Slurm's own variable.
  const char* tasks = std::getenv("SLURM_NTASKS");
  if (LaunchedByMpi() && tasks != nullptr && std::atoi(tasks) > 0)
    return std::atoi(tasks);
  return 1;
}

}  // namespace llmsys::distributed
