#include "framework/distributed/mpi_communicator.h"

#include <mpi.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <cstdlib>
#include <iostream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "framework/core/status_macros.h"
#include "framework/tensor/tensor.h"

namespace llmsys::distributed {
namespace {

using Clock = std::chrono::steady_clock;

std::string MpiError(int code) {
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  if (MPI_Error_string(code, text, &len) != MPI_SUCCESS)
    return absl::StrCat("MPI error ", code);
  return std::string(text, static_cast<size_t>(len));
}

absl::StatusOr<MPI_Datatype> MpiType(DLDataType t) {
  if (llmsys_dtype_equal(t, tensor::kF32)) return MPI_FLOAT;
  if (llmsys_dtype_equal(t, tensor::kF64)) return MPI_DOUBLE;
  if (llmsys_dtype_equal(t, tensor::kI64)) return MPI_INT64_T;
  return absl::InvalidArgumentError(absl::StrCat(
      "all-reduce of ", tensor::DTypeName(t),
      ": only float32, float64 and int64 are summed across ranks"));
}

// MPI counts are ints: larger buffers go in pieces of this many elements.
constexpr int64_t kMaxCount = int64_t{1} << 30;

class MpiCommunicator;

// Requests of one logical operation (several when its count was split).
class MpiPending final : public PendingCollective {
 public:
  // `timeout` < 0: the communicator's.
  MpiPending(MpiCommunicator* comm, std::string what,
             std::vector<MPI_Request> requests, double timeout = -1)
      : comm_(comm),
        what_(std::move(what)),
        requests_(std::move(requests)),
        timeout_(timeout) {}
  ~MpiPending() override;
  absl::StatusOr<bool> Test() override;
  absl::Status Wait() override;

 private:
  MpiCommunicator* comm_;
  std::string what_;
  std::vector<MPI_Request> requests_;
  double timeout_;
  bool failed_ = false;  // a wait failed or timed out: left to MPI
};

class MpiCommunicator final : public Communicator {
 public:
  // The ranks of `comm` (MPI_COMM_WORLD, or a group Split() made, which it
  // frees); `world_ranks`: each one's rank in MPI_COMM_WORLD, for messages;
  // `who`: a group's Who() ("" for the world: the base class's).
  MpiCommunicator(MPI_Comm comm, std::vector<int> world_ranks, std::string who,
                  int local_size, int local_rank, bool finalize)
      : comm_(comm),
        world_ranks_(std::move(world_ranks)),
        who_(std::move(who)),
        local_size_(local_size),
        local_rank_(local_rank),
        finalize_(finalize) {
    MPI_Comm_rank(comm_, &rank_);
    MPI_Comm_size(comm_, &size_);
    char host[MPI_MAX_PROCESSOR_NAME];
    int len = 0;
    if (MPI_Get_processor_name(host, &len) == MPI_SUCCESS)
      host_.assign(host, static_cast<size_t>(len));
    char version[MPI_MAX_LIBRARY_VERSION_STRING];
    if (MPI_Get_library_version(version, &len) == MPI_SUCCESS) {
      library_.assign(version, static_cast<size_t>(len));
      library_ = library_.substr(0, library_.find_first_of(",\n"));
    }
  }
  ~MpiCommunicator() override {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (finalized) return;
    if (comm_ != MPI_COMM_WORLD) MPI_Comm_free(&comm_);
    if (finalize_) MPI_Finalize();
  }

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  int local_size() const override { return local_size_; }
  int local_rank() const override { return local_rank_; }
  std::string Describe() const override {
    return absl::StrCat(size_, " ranks over MPI (", library_, "; rank ",
                        world_ranks_[static_cast<size_t>(rank_)], " on ", host_,
                        ")");
  }
  std::string Who() const override {
    return who_.empty() ? Communicator::Who() : who_;
  }
  void set_timeout(double seconds) override { timeout_ = seconds; }

  absl::StatusOr<std::unique_ptr<Communicator>> Split(
      int color, int key, const std::string& name) override {
    MPI_Comm part = MPI_COMM_NULL;
    int rc = MPI_Comm_split(comm_, color, key, &part);
    if (rc != MPI_SUCCESS) return Failed("MPI_Comm_split", rc);
    MPI_Comm_set_errhandler(part, MPI_ERRORS_RETURN);
    int n = 0;
    MPI_Comm_size(part, &n);
    std::vector<int> world(static_cast<size_t>(n));
    const int mine = world_ranks_[static_cast<size_t>(rank_)];
    rc = MPI_Allgather(&mine, 1, MPI_INT, world.data(), 1, MPI_INT, part);
    if (rc != MPI_SUCCESS) {
      MPI_Comm_free(&part);
      return Failed("MPI_Allgather", rc);
    }
    const std::string who = Who();  // "" in a job of one process
    auto group = std::make_unique<MpiCommunicator>(
        part, std::move(world),
        who.empty() ? "" : absl::StrCat(who, " (", name, ")"), local_size_,
        local_rank_, /*finalize=*/false);
    group->timeout_ = timeout_;
    return std::unique_ptr<Communicator>(std::move(group));
  }

  absl::Status AllReduceSum(void* data, int64_t count,
                            DLDataType dtype) override {
    LLMSYS_ASSIGN_OR_RETURN(std::unique_ptr<PendingCollective> p,
                            StartAllReduceSum(data, count, dtype));
    return p->Wait();
  }

  absl::StatusOr<std::unique_ptr<PendingCollective>> StartAllReduceSum(
      void* data, int64_t count, DLDataType dtype) override {
    LLMSYS_ASSIGN_OR_RETURN(MPI_Datatype type, MpiType(dtype));
    const int64_t elem = static_cast<int64_t>(tensor::DTypeSize(dtype));
    LLMSYS_ASSIGN_OR_RETURN(
        std::vector<MPI_Request> requests,
        Pieces("MPI_Iallreduce", count, [&](int64_t at, int n, MPI_Request* r) {
          return MPI_Iallreduce(MPI_IN_PLACE,
                                static_cast<char*>(data) + at * elem, n, type,
                                MPI_SUM, comm_, r);
        }));
    return std::unique_ptr<PendingCollective>(std::make_unique<MpiPending>(
        this,
        absl::StrCat("an all-reduce of ", count, " ", tensor::DTypeName(dtype)),
        std::move(requests)));
  }

  absl::Status Broadcast(void* data, int64_t bytes, int root) override {
    LLMSYS_ASSIGN_OR_RETURN(
        std::vector<MPI_Request> requests,
        Pieces("MPI_Ibcast", bytes, [&](int64_t at, int n, MPI_Request* r) {
          return MPI_Ibcast(static_cast<char*>(data) + at, n, MPI_BYTE, root,
                            comm_, r);
        }));
    return MpiPending(this,
                      absl::StrCat("a broadcast of ", bytes,
                                   " bytes from rank ", World(root)),
                      std::move(requests))
        .Wait();
  }

  absl::Status Send(const void* data, int64_t bytes, int peer,
                    int tag) override {
    LLMSYS_ASSIGN_OR_RETURN(
        std::vector<MPI_Request> requests,
        Pieces("MPI_Isend", bytes, [&](int64_t at, int n, MPI_Request* r) {
          return MPI_Isend(static_cast<const char*>(data) + at, n, MPI_BYTE,
                           peer, tag, comm_, r);
        }));
    return MpiPending(this,
                      absl::StrCat("a send of ", bytes, " bytes to rank ",
                                   World(peer)),
                      std::move(requests))
        .Wait();
  }

  absl::Status Recv(void* data, int64_t bytes, int peer, int tag) override {
    LLMSYS_ASSIGN_OR_RETURN(
        std::vector<MPI_Request> requests,
        Pieces("MPI_Irecv", bytes, [&](int64_t at, int n, MPI_Request* r) {
          return MPI_Irecv(static_cast<char*>(data) + at, n, MPI_BYTE, peer,
                           tag, comm_, r);
        }));
    return MpiPending(this,
                      absl::StrCat("a receive of ", bytes, " bytes from rank ",
                                   World(peer)),
                      std::move(requests))
        .Wait();
  }

  absl::Status Barrier(double timeout_seconds) override {
    MPI_Request r;
    const int rc = MPI_Ibarrier(comm_, &r);
    if (rc != MPI_SUCCESS) return Failed("MPI_Ibarrier", rc);
    return MpiPending(this, "a barrier", {r}, timeout_seconds).Wait();
  }

  [[noreturn]] void Abort(const std::string& why, int code) override {
    std::cerr << RankPrefix(this) << why << std::endl;
    MPI_Abort(MPI_COMM_WORLD, code);
    std::_Exit(code);  // MPI_Abort does not return; in case it does
  }

  // Polls `requests` until all complete: spins briefly, then sleeps in
  // growing steps up to 1 ms; DEADLINE_EXCEEDED after the timeout.
  // `timeout` < 0: the communicator's; 0: none.
  absl::Status WaitAll(std::vector<MPI_Request>& requests,
                       const std::string& what, double timeout) {
    if (timeout < 0) timeout = timeout_;
    const Clock::time_point start = Clock::now();
    auto pause = std::chrono::microseconds(0);
    for (;;) {
      LLMSYS_ASSIGN_OR_RETURN(bool done, TestAll(requests, what));
      if (done) return absl::OkStatus();
      const double waited =
          std::chrono::duration<double>(Clock::now() - start).count();
      if (timeout > 0 && waited > timeout)
        return absl::DeadlineExceededError(absl::StrFormat(
            "%sno answer from the other ranks for %.0f s in %s: a rank died "
            "or hung (see its messages), or one takes longer than "
            "[distributed] timeout = %g s",
            RankPrefix(this), waited, what, timeout));
      if (pause.count() == 0)
        std::this_thread::yield();
      else
        std::this_thread::sleep_for(pause);
      pause = std::min(std::chrono::microseconds(1000),
                       pause + std::chrono::microseconds(20));
    }
  }

  absl::StatusOr<bool> TestAll(std::vector<MPI_Request>& requests,
                               const std::string& what) {
    int done = 0;
    const int rc = MPI_Testall(static_cast<int>(requests.size()),
                               requests.data(), &done, MPI_STATUSES_IGNORE);
    if (rc != MPI_SUCCESS) return Failed(what, rc);
    return done != 0;
  }

 private:
  // Starts `start(at, n, &request)` for each piece of at most kMaxCount
  // elements of `count` (one empty piece when count is 0: every rank still
  // takes part).
  template <class Start>
  absl::StatusOr<std::vector<MPI_Request>> Pieces(const char* call,
                                                  int64_t count,
                                                  Start start) const {
    std::vector<MPI_Request> requests;
    int64_t at = 0;
    do {
      MPI_Request r;
      const int rc =
          start(at, static_cast<int>(std::min(kMaxCount, count - at)), &r);
      if (rc != MPI_SUCCESS) return Failed(call, rc);
      requests.push_back(r);
      at += kMaxCount;
    } while (at < count);
    return requests;
  }

  absl::Status Failed(const std::string& what, int code) const {
    return absl::InternalError(
        absl::StrCat(RankPrefix(this), what, " failed: ", MpiError(code)));
  }

  // Rank `r` of this communicator in MPI_COMM_WORLD (as messages name it).
  int World(int r) const {
    return r >= 0 && r < size_ ? world_ranks_[static_cast<size_t>(r)] : r;
  }

  MPI_Comm comm_;
  std::vector<int> world_ranks_;
  std::string who_;
  int rank_ = 0, size_ = 1, local_size_, local_rank_;
  bool finalize_;
  double timeout_ = 300;
  std::string host_ = "?", library_ = "MPI";
};

MpiPending::~MpiPending() {
  // An operation dropped unfinished (an error elsewhere) must not leave MPI
  // writing into freed memory: complete it, within the timeout. One whose
  // wait already failed is left to MPI: the run is ending (Abort), and MPI
  // only advances it inside later MPI calls.
  if (!requests_.empty() && !failed_) (void)Wait();
}

absl::StatusOr<bool> MpiPending::Test() {
  if (requests_.empty()) return true;
  if (failed_) return absl::FailedPreconditionError(what_ + " failed earlier");
  LLMSYS_ASSIGN_OR_RETURN(bool done, comm_->TestAll(requests_, what_));
  if (done) requests_.clear();
  return done;
}

absl::Status MpiPending::Wait() {
  if (requests_.empty()) return absl::OkStatus();
  if (failed_) return absl::FailedPreconditionError(what_ + " failed earlier");
  absl::Status s = comm_->WaitAll(requests_, what_, timeout_);
  if (s.ok())
    requests_.clear();
  else
    failed_ = true;
  return s;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Communicator>> MpiWorld() {
  int initialized = 0;
  MPI_Initialized(&initialized);
  bool finalize = false;
  if (!initialized) {
    int provided = 0;
    if (MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided) !=
        MPI_SUCCESS)
      return absl::FailedPreconditionError(
          "MPI could not start (MPI_Init_thread failed); is this process "
          "started by mpirun or srun?");
    finalize = true;
  }
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  int rank = 0, size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  // The ranks that share this machine's memory (and cores).
  int local_size = 1, local_rank = 0;
  MPI_Comm local;
  if (MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank,
                          MPI_INFO_NULL, &local) == MPI_SUCCESS) {
    MPI_Comm_size(local, &local_size);
    MPI_Comm_rank(local, &local_rank);
    MPI_Comm_free(&local);
  }
  std::vector<int> world(static_cast<size_t>(size));
  for (int r = 0; r < size; ++r) world[static_cast<size_t>(r)] = r;
  return std::unique_ptr<Communicator>(std::make_unique<MpiCommunicator>(
      MPI_COMM_WORLD, std::move(world), /*who=*/"", local_size, local_rank,
      finalize));
}

}  // namespace llmsys::distributed
