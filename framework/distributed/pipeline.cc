#include "framework/distributed/pipeline.h"

#include <algorithm>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "framework/core/status_macros.h"
#include "framework/distributed/data_parallel.h"

namespace llmsys::distributed {

using autograd::Var;
using tensor::Tensor;

namespace {

// Tags of the messages below; a pair of ranks receives each tag's messages
// in the order they were sent.
constexpr int kTensorTag = 1 << 12;  // SendTensor adds the caller's tag
constexpr int kGatherTag = 1;
constexpr int kSharedTag = 2;
constexpr int kMaxDims = 8;

int64_t Bytes(const Tensor& t) {
  return t.numel() * static_cast<int64_t>(t.element_size());
}

absl::Status SendString(Communicator& comm, const std::string& s, int peer,
                        int tag) {
  int64_t n = static_cast<int64_t>(s.size());
  LLMSYS_RETURN_IF_ERROR(comm.Send(&n, sizeof n, peer, tag));
  return n > 0 ? comm.Send(s.data(), n, peer, tag) : absl::OkStatus();
}

absl::StatusOr<std::string> RecvString(Communicator& comm, int peer, int tag) {
  int64_t n = 0;
  LLMSYS_RETURN_IF_ERROR(comm.Recv(&n, sizeof n, peer, tag));
  if (n < 0 || n > (int64_t{1} << 30))
    return absl::DataLossError(absl::StrCat(
        "rank ", peer, " sent a malformed message (length ", n, ")"));
  std::string s(static_cast<size_t>(n), '\0');
  if (n > 0) LLMSYS_RETURN_IF_ERROR(comm.Recv(s.data(), n, peer, tag));
  return s;
}

}  // namespace

absl::Status SendTensor(Communicator& comm, const Tensor& t, int peer,
                        int tag) {
  if (t.ndim() > kMaxDims)
    return absl::InvalidArgumentError(absl::StrCat("SendTensor: ", t.Describe(),
                                                   " has more than ", kMaxDims,
                                                   " dimensions"));
  // A tensor on the communicator's device (NCCL's GPU) goes as it is;
  // anything else through host memory. The header says which.
  const DLDevice where = comm.buffer_device();
  const bool on_device = where.device_type != kDLCPU && t.device() == where;
  int64_t header[5 + kMaxDims] = {};
  header[0] = t.dtype().code;
  header[1] = t.dtype().bits;
  header[2] = t.dtype().lanes;
  header[3] = on_device ? 1 : 0;
  header[4] = t.ndim();
  for (int d = 0; d < t.ndim(); ++d) header[5 + d] = t.shape()[d];
  LLMSYS_RETURN_IF_ERROR(
      comm.Send(header, sizeof header, peer, kTensorTag + tag));
  if (t.numel() == 0) return absl::OkStatus();
  // Only read: the tensor itself when it is contiguous where it travels.
  LLMSYS_ASSIGN_OR_RETURN(Tensor there,
                          on_device ? t : t.ToDevice(tensor::kCpu));
  LLMSYS_ASSIGN_OR_RETURN(Tensor data, there.MakeContiguous());
  return comm.Send(data.data(), Bytes(data), peer, kTensorTag + tag);
}

absl::StatusOr<Tensor> RecvTensor(Communicator& comm, int peer, int tag) {
  int64_t header[5 + kMaxDims] = {};
  LLMSYS_RETURN_IF_ERROR(
      comm.Recv(header, sizeof header, peer, kTensorTag + tag));
  DLDataType dtype{static_cast<uint8_t>(header[0]),
                   static_cast<uint8_t>(header[1]),
                   static_cast<uint16_t>(header[2])};
  if (header[4] < 0 || header[4] > kMaxDims || header[1] % 8 != 0 ||
      (header[3] != 0 && header[3] != 1))
    return absl::DataLossError(
        absl::StrCat("rank ", peer, " sent a malformed tensor header"));
  tensor::Shape shape(header + 5, header + 5 + header[4]);
  LLMSYS_ASSIGN_OR_RETURN(
      Tensor t,
      Tensor::Empty(shape, dtype,
                    header[3] == 1 ? comm.buffer_device() : tensor::kCpu));
  if (t.numel() > 0)
    LLMSYS_RETURN_IF_ERROR(
        comm.Recv(t.data(), Bytes(t), peer, kTensorTag + tag));
  return t;
}

absl::StatusOr<NamedTensors> GatherNamed(Communicator& comm, int root,
                                         const NamedTensors& mine) {
  NamedTensors out;
  if (comm.rank() != root) {
    std::vector<std::string> names;
    for (const auto& [name, t] : mine) names.push_back(name);
    LLMSYS_RETURN_IF_ERROR(
        SendString(comm, absl::StrJoin(names, "\n"), root, kGatherTag));
    for (const auto& [name, t] : mine)
      LLMSYS_RETURN_IF_ERROR(SendTensor(comm, t, root, kGatherTag));
    return out;
  }
  std::set<std::string> seen;
  for (const auto& [name, t] : mine) {
    LLMSYS_ASSIGN_OR_RETURN(Tensor host, HostCopy(t));
    if (seen.insert(name).second) out.emplace_back(name, std::move(host));
  }
  for (int r = 0; r < comm.size(); ++r) {
    if (r == root) continue;
    LLMSYS_ASSIGN_OR_RETURN(std::string joined,
                            RecvString(comm, r, kGatherTag));
    if (joined.empty()) continue;
    for (const std::string& name :
         std::vector<std::string>(absl::StrSplit(joined, '\n'))) {
      LLMSYS_ASSIGN_OR_RETURN(Tensor t, RecvTensor(comm, r, kGatherTag));
      if (seen.insert(name).second) out.emplace_back(name, std::move(t));
    }
  }
  return out;
}

absl::StatusOr<SharedParameters> SharedParameters::Find(
    Communicator& comm,
    const std::vector<std::pair<std::string, Var>>& params) {
  SharedParameters shared(comm);
  std::vector<std::string> names;
  for (const auto& [name, var] : params) names.push_back(name);
  std::string mine = absl::StrJoin(names, "\n");
  // Every rank's names, each broadcast by its rank.
  std::map<std::string, std::vector<int>> ranks_of;
  for (int r = 0; r < comm.size(); ++r) {
    int64_t n = static_cast<int64_t>(mine.size());
    LLMSYS_RETURN_IF_ERROR(comm.Broadcast(&n, sizeof n, r));
    std::string joined = r == comm.rank() ? mine : std::string(n, '\0');
    if (n > 0) LLMSYS_RETURN_IF_ERROR(comm.Broadcast(joined.data(), n, r));
    if (joined.empty()) continue;
    for (const std::string& name :
         std::vector<std::string>(absl::StrSplit(joined, '\n')))
      ranks_of[name].push_back(r);
  }
  for (const auto& [name, var] : params) {
    const std::vector<int>& ranks = ranks_of[name];
    if (ranks.size() < 2) continue;
    shared.holders_[name] = ranks;
    shared.vars_[name] = var;
    if (ranks.front() != comm.rank()) shared.not_counted_.insert(name);
  }
  return shared;
}

absl::Status SharedParameters::SumGradients() {
  // Every rank goes through the shared names in the same (sorted) order,
  // so the exchanges of different pairs of ranks cannot wait on each
  // other in a cycle.
  for (const auto& [name, ranks] : holders_) {
    const Var& p = vars_.at(name);
    Tensor grad = p->grad;
    if (!grad.defined()) {
      LLMSYS_ASSIGN_OR_RETURN(grad,
                              Tensor::Zeros(p->data.shape(), p->data.dtype()));
    }
    const int first = ranks.front();
    Tensor sum;
    if (comm_->rank() == first) {
      std::vector<double> total = grad.ToDoubles();
      for (size_t k = 1; k < ranks.size(); ++k) {
        LLMSYS_ASSIGN_OR_RETURN(Tensor other,
                                RecvTensor(*comm_, ranks[k], kSharedTag));
        if (other.shape() != grad.shape())
          return absl::FailedPreconditionError(absl::StrCat(
              "parameter '", name, "' is ", grad.Describe(), " on rank ", first,
              " and ", other.Describe(), " on rank ", ranks[k],
              ": the stages that share it must declare it alike"));
        std::vector<double> v = other.ToDoubles();
        for (size_t i = 0; i < total.size(); ++i) total[i] += v[i];
      }
      LLMSYS_ASSIGN_OR_RETURN(
          sum, Tensor::FromDoubles(grad.shape(), total, grad.dtype()));
      for (size_t k = 1; k < ranks.size(); ++k)
        LLMSYS_RETURN_IF_ERROR(SendTensor(*comm_, sum, ranks[k], kSharedTag));
    } else {
      LLMSYS_RETURN_IF_ERROR(SendTensor(*comm_, grad, first, kSharedTag));
      LLMSYS_ASSIGN_OR_RETURN(sum, RecvTensor(*comm_, first, kSharedTag));
      if (sum.shape() != grad.shape())
        return absl::FailedPreconditionError(absl::StrCat(
            "parameter '", name, "': rank ", first, " sent the sum as ",
            sum.Describe(), ", this rank holds ", grad.Describe()));
    }
    if (!p->grad.defined()) {
      LLMSYS_ASSIGN_OR_RETURN(
          p->grad,
          Tensor::Zeros(p->data.shape(), p->data.dtype(), p->data.device()));
    }
    LLMSYS_RETURN_IF_ERROR(p->grad.CopyFrom(sum));
  }
  return absl::OkStatus();
}

}  // namespace llmsys::distributed
