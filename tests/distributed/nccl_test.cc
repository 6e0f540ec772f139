// The NCCL communicator on a real GPU, as one rank (`mpirun -np 1`, ctest's
// nccl_one_rank; NCCL runs one rank per GPU, and the machines this project
// gets have one): MPI bootstraps it, device buffers go through NCCL, host
// buffers through MPI, and GradientSync keeps its buckets on the GPU.
// Skips, saying why, without a GPU.
#include <gtest/gtest.h>

#include <memory>
#include <vector>

#include "framework/autograd/autograd.h"
#include "framework/cuda/cuda_backend.h"
#include "framework/distributed/data_parallel.h"
#include "framework/distributed/mpi_communicator.h"
#include "framework/distributed/nccl_communicator.h"
#include "framework/distributed/pipeline.h"
#include "framework/tensor/tensor.h"

namespace llmsys::distributed {
namespace {

using tensor::Tensor;

constexpr DLDevice kGpu{kDLCUDA, 0};

TEST(NcclCommunicatorTest, OneRankOnTheGpu) {
  if (absl::Status gpu = cuda::GpuAvailable(); !gpu.ok())
    GTEST_SKIP() << "no GPU: " << gpu.message();
  absl::StatusOr<std::unique_ptr<Communicator>> mpi = MpiWorld();
  ASSERT_TRUE(mpi.ok()) << mpi.status();
  ASSERT_EQ((*mpi)->size(), 1) << "run me with mpirun -np 1";
  ASSERT_TRUE(GpuPerRank(**mpi, cuda::DeviceCount()).ok());
  absl::StatusOr<std::unique_ptr<Communicator>> nccl = NcclOver(**mpi, kGpu);
  ASSERT_TRUE(nccl.ok()) << nccl.status();
  Communicator& c = **nccl;
  EXPECT_NE(c.Describe().find("NCCL"), std::string::npos) << c.Describe();
  EXPECT_EQ(c.buffer_device().device_type, kDLCUDA);

  // A device buffer: NCCL (one rank: the sum is itself).
  absl::StatusOr<Tensor> host =
      Tensor::FromDoubles({3}, {1, 2, 3}, tensor::kF32);
  ASSERT_TRUE(host.ok());
  absl::StatusOr<Tensor> dev = host->ToDevice(kGpu);
  ASSERT_TRUE(dev.ok()) << dev.status();
  ASSERT_TRUE(c.AllReduceSum(dev->data(), 3, tensor::kF32).ok());
  EXPECT_EQ(dev->ToDoubles(), (std::vector<double>{1, 2, 3}));
  ASSERT_TRUE(c.Broadcast(dev->data(), 12, 0).ok());
  // A host buffer: MPI.
  double one = 1;
  ASSERT_TRUE(c.AllReduceSum(&one, 1, tensor::kF64).ok());
  EXPECT_EQ(one, 1.0);

  // Gradients of parameters on the GPU, summed in a bucket on the GPU.
  auto p = std::make_shared<autograd::VarImpl>();
  p->data = *Tensor::Zeros({3}, tensor::kF32, kGpu);
  p->requires_grad = true;
  p->grad = *dev;
  GradientSync sync(c, {p}, {});
  ASSERT_TRUE(sync.Finish().ok());
  EXPECT_EQ(p->grad.device().device_type, kDLCUDA);
  EXPECT_EQ(p->grad.ToDoubles(), (std::vector<double>{1, 2, 3}));

  // NCCL's own stream follows the ops' stream: a started all-reduce of a
  // buffer the ops' stream is still filling sees the fill, and the ops
  // queued after its Wait see the sum.
  Tensor big = *Tensor::Zeros({1 << 22}, tensor::kF32, kGpu);
  ASSERT_TRUE(big.Fill(2.0).ok());  // queued on the ops' stream
  absl::StatusOr<std::unique_ptr<PendingCollective>> started =
      c.StartAllReduceSum(big.data(), big.numel(), tensor::kF32);
  ASSERT_TRUE(started.ok()) << started.status();
  ASSERT_TRUE((*started)->Wait().ok());
  const std::vector<double> sum = big.ToDoubles();
  EXPECT_EQ(sum.front(), 2.0);
  EXPECT_EQ(sum.back(), 2.0);

  // A parameter on the GPU: broadcast in place.
  ASSERT_TRUE(BroadcastParameters(c, {p}).ok());
  EXPECT_EQ(p->data.device().device_type, kDLCUDA);
  EXPECT_EQ(p->data.ToDoubles(), (std::vector<double>{0, 0, 0}));

  // Overlapped: buckets started from backward's hook.
  p->grad = *dev;
  GradientSync overlapped(c, {p}, {.bucket_bytes = 4, .overlap = true});
  overlapped.Hook()(p);
  ASSERT_TRUE(overlapped.Finish().ok());
  EXPECT_EQ(p->grad.ToDoubles(), (std::vector<double>{1, 2, 3}));
  nccl->reset();  // before MPI ends
}

}  // namespace
}  // namespace llmsys::distributed
