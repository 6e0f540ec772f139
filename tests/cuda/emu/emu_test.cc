// Tests of the CPU emulation of CUDA (tests/cuda/emu): kernels written as
// the ones in cuda/ are (through cuda/common.cuh) run on the CPU with the
// results a GPU gives — block barriers and static shared memory, warp
// shuffles and common.cuh's reductions, dynamic shared memory, grid-stride
// loops, atomics, the bf16/half conversions bit for bit — and the mistakes
// a GPU leaves undefined (barrier divergence, shuffles with missing lanes,
// bad launch configurations) fail the launch with a message that says
// where. Last, the emulated llmsys.cuda plugin loads.
#include "tests/cuda/emu/emu.h"

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "cuda/common.cuh"
#include "framework/runtime/plugin.h"
#include "framework/tensor/tensor.h"

namespace {

using llmsys::cuda::BlockMax;
using llmsys::cuda::BlockSum;
using llmsys::cuda::WarpMax;
using llmsys::cuda::WarpSum;
using ::testing::HasSubstr;

// Each test starts from the default options and no pending error.
class EmuTest : public ::testing::Test {
 protected:
  void SetUp() override {
    emu::SetOptions({});
    (void)cudaGetLastError();
  }
  void TearDown() override { emu::SetOptions({}); }
};

// ---- barriers and static shared memory ----

constexpr int kTile = 256;

// (B * kTile) -> (B * kTile): each block's kTile values reversed.
__global__ void reverse_kernel(const int* in, int* out) {
  __shared__ int tile[kTile];
  const int t = threadIdx.x;
  const int64_t base = int64_t{blockIdx.x} * blockDim.x;
  tile[t] = in[base + t];
  __syncthreads();
  out[base + t] = tile[blockDim.x - 1 - t];
}

// The same without the barrier: a race.
__global__ void racy_reverse_kernel(const int* in, int* out) {
  __shared__ int tile[kTile];
  const int t = threadIdx.x;
  const int64_t base = int64_t{blockIdx.x} * blockDim.x;
  tile[t] = in[base + t];
  out[base + t] = tile[blockDim.x - 1 - t];
}

std::vector<int> Iota(int n) {
  std::vector<int> v(n);
  for (int i = 0; i < n; ++i) v[i] = i * 7 + 1;
  return v;
}

std::vector<int> Reversed(const std::vector<int>& in) {
  std::vector<int> want(in.size());
  for (size_t b = 0; b < in.size() / kTile; ++b)
    for (int t = 0; t < kTile; ++t)
      want[b * kTile + t] = in[b * kTile + kTile - 1 - t];
  return want;
}

TEST_F(EmuTest, BarrierAndStaticSharedMemoryReverseBlocks) {
  const std::vector<int> in = Iota(5 * kTile);
  for (const emu::Options& o :
       {emu::Options{}, emu::Options{.order = emu::Order::kReverse},
        emu::Options{.order = emu::Order::kShuffle, .seed = 7},
        emu::Options{.workers = 3}}) {
    emu::SetOptions(o);
    std::vector<int> out(in.size(), -1);
    const uint64_t launches = emu::LaunchCount();
    LLMSYS_LAUNCH(reverse_kernel, 5, kTile, 0, nullptr)(in.data(), out.data());
    EXPECT_EQ(cudaGetLastError(), cudaSuccess) << emu::LastMessage();
    EXPECT_EQ(emu::LaunchCount(), launches + 1);
    EXPECT_EQ(out, Reversed(in))
        << "order " << static_cast<int>(o.order) << ", workers " << o.workers;
  }
}

TEST_F(EmuTest, MissingBarrierGivesWrongResults) {
  const std::vector<int> in = Iota(2 * kTile);
  for (emu::Order order : {emu::Order::kForward, emu::Order::kReverse}) {
    emu::SetOptions({.order = order});
    std::vector<int> out(in.size(), -1);
    LLMSYS_LAUNCH(racy_reverse_kernel, 2, kTile, 0, nullptr)
    (in.data(), out.data());
    ASSERT_EQ(cudaGetLastError(), cudaSuccess) << emu::LastMessage();
    EXPECT_NE(out, Reversed(in));
  }
}

// (8 * 4 * 2 threads of (3 * 2) blocks) -> each thread's global linear id
// at its place, from the built-in variables.
__global__ void index_kernel(int* out) {
  const int block =
      blockIdx.x + gridDim.x * (blockIdx.y + gridDim.y * blockIdx.z);
  const int thread =
      threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z);
  const int per_block = blockDim.x * blockDim.y * blockDim.z;
  out[block * per_block + thread] = block * 1000 + thread;
}

TEST_F(EmuTest, MultiDimensionalGridAndBlock) {
  std::vector<int> out(6 * 64, -1);
  LLMSYS_LAUNCH(index_kernel, dim3(3, 2), dim3(8, 4, 2), 0, nullptr)
  (out.data());
  ASSERT_EQ(cudaGetLastError(), cudaSuccess) << emu::LastMessage();
  for (int b = 0; b < 6; ++b)
    for (int t = 0; t < 64; ++t) EXPECT_EQ(out[b * 64 + t], b * 1000 + t);
}

// Every thread gets its own copy of the parameters.
__global__ void params_kernel(int n, int* out) {
  n += threadIdx.x;
  __syncthreads();
  out[threadIdx.x] = n;
}

TEST_F(EmuTest, ParametersArePerThread) {
  std::vector<int> out(64, -1);
  const int64_t n = 100;  // converted to the kernel's int
  LLMSYS_LAUNCH(params_kernel, 1, 64, 0, nullptr)(n, out.data());
  ASSERT_EQ(cudaGetLastError(), cudaSuccess) << emu::LastMessage();
  for (int t = 0; t < 64; ++t) EXPECT_EQ(out[t], 100 + t);
}

__global__ void count_kernel(int* out) {
  const int x = static_cast<int>(threadIdx.x);
  const int count = __syncthreads_count(x % 3 == 0);
  const int all = __syncthreads_and(x >= 0);
  const int any = __syncthreads_or(x == 1000);
  if (x == 0) {
    out[0] = count;
    out[1] = all;
    out[2] = any;
  }
}

TEST_F(EmuTest, CountingBarriers) {
  std::vector<int> out(3, -1);
  LLMSYS_LAUNCH(count_kernel, 1, 100, 0, nullptr)(out.data());
  ASSERT_EQ(cudaGetLastError(), cudaSuccess) << emu::LastMessage();
  EXPECT_EQ(out, (std::vector<int>{34, 1, 0}));
}

// ---- warp exchanges and common.cuh's reductions ----

// (n) -> (blockDim.x): every thread's copy of the block's sum and max.
template <class A>
__global__ void block_reduce_kernel(const A* x, int64_t n, A* sums, A* maxes) {
  __shared__ A scratch[32];
  A s = 0, m = -std::numeric_limits<A>::infinity();
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
    s += x[i];
    m = llmsys::cuda::MaxNan(m, x[i]);
  }
  const A sum = BlockSum(s, scratch);
  const A max = BlockMax(m, scratch, -std::numeric_limits<A>::infinity());
  sums[threadIdx.x] = sum;
  maxes[threadIdx.x] = max;
}

TEST_F(EmuTest, BlockSumAndMaxAreExactOnEveryThread) {
  for (int threads : {32, 64, 96, 256, 1024}) {
    const int64_t n = 3001;
    std::vector<float> x(n);
    double want = 0;
    for (int64_t i = 0; i < n; ++i) {
      x[i] = static_cast<float>((i * 37) % 101) - 50;  // exact in float
      want += x[i];
    }
    std::vector<float> sums(threads), maxes(threads);
    LLMSYS_LAUNCH(block_reduce_kernel<float>, 1, threads, 0, nullptr)
    (x.data(), n, sums.data(), maxes.data());
    ASSERT_EQ(cudaGetLastError(), cudaSuccess) << emu::LastMessage();
    for (int t = 0; t < threads; ++t) {
      EXPECT_EQ(sums[t], want) << threads << " threads, thread " << t;
      EXPECT_EQ(maxes[t], 50.0f) << threads << " threads, thread " << t;
    }
  }
}

TEST_F(EmuTest, BlockMaxPropagatesNan) {
  std::vector<double> x(500, 1.0);
  x[321] = std::nan("");
  std::vector<double> sums(128), maxes(128);
  LLMSYS_LAUNCH(block_reduce_kernel<double>, 1, 128, 0, nullptr)
  (x.data(), int64_t{500}, sums.data(), maxes.data());
  ASSERT_EQ(cudaGetLastError(), cudaSuccess) << emu::LastMessage();
  for (int t = 0; t < 128; ++t) {
    EXPECT_TRUE(std::isnan(sums[t]));
    EXPECT_TRUE(std::isnan(maxes[t]));
  }
}

// (blockDim.x) -> (blockDim.x, 6): per lane, WarpSum, WarpMax and the four
// shuffles with width 8 (delta 3, xor 5, lane 6 of the segment), then a
// ballot of the odd lanes.
__global__ void shuffle_kernel(const float* x, float* out, unsigned* ballot) {
  const int t = threadIdx.x;
  const float v = x[t];
  float* o = out + 6 * t;
  o[0] = WarpSum(v);
  o[1] = WarpMax(v);
  o[2] = __shfl_down_sync(0xffffffffu, v, 3, 8);
  o[3] = __shfl_up_sync(0xffffffffu, v, 3, 8);
  o[4] = __shfl_xor_sync(0xffffffffu, v, 5, 8);
  o[5] = __shfl_sync(0xffffffffu, v, 6, 8);
  __syncwarp();
  const unsigned b = __ballot_sync(0xffffffffu, t & 1);
  if ((t & 31) == 0) ballot[t / 32] = b;
}

TEST_F(EmuTest, WarpShufflesFollowCudaSemantics) {
  const int n = 64;
  std::vector<float> x(n);
  for (int i = 0; i < n; ++i) x[i] = static_cast<float>(i * i % 17);
  std::vector<float> out(6 * n);
  std::vector<unsigned> ballot(2);
  LLMSYS_LAUNCH(shuffle_kernel, 1, n, 0, nullptr)
  (x.data(), out.data(), ballot.data());
  ASSERT_EQ(cudaGetLastError(), cudaSuccess) << emu::LastMessage();
  for (int t = 0; t < n; ++t) {
    const int warp = t / 32 * 32, lane = t % 32, seg = t / 8 * 8;
    float sum = 0, max = 0;
    for (int l = 0; l < 32; ++l) {
      sum += x[warp + l];
      max = std::max(max, x[warp + l]);
    }
    EXPECT_EQ(out[6 * t + 0], sum) << t;
    EXPECT_EQ(out[6 * t + 1], max) << t;
    // Outside the segment a lane gets its own value back.
    EXPECT_EQ(out[6 * t + 2], t + 3 < seg + 8 ? x[t + 3] : x[t]) << t;
    EXPECT_EQ(out[6 * t + 3], t - 3 >= seg ? x[t - 3] : x[t]) << t;
    EXPECT_EQ(out[6 * t + 4], x[warp + (lane ^ 5)]) << t;
    EXPECT_EQ(out[6 * t + 5], x[seg + 6]) << t;
  }
  EXPECT_EQ(ballot, (std::vector<unsigned>{0xAAAAAAAAu, 0xAAAAAAAAu}));
}

// A shuffle moves any trivially copyable value of up to 16 bytes.
__global__ void wide_shuffle_kernel(double2* out) {
  const double2 mine{static_cast<double>(threadIdx.x), -1.0 * threadIdx.x};
  out[threadIdx.x] = __shfl_xor_sync(0xffffffffu, mine, 1);
}

TEST_F(EmuTest, ShufflesMoveSixteenByteValues) {
  std::vector<double2> out(32);
  LLMSYS_LAUNCH(wide_shuffle_kernel, 1, 32, 0, nullptr)(out.data());
  ASSERT_EQ(cudaGetLastError(), cudaSuccess) << emu::LastMessage();
  for (int t = 0; t < 32; ++t) {
    EXPECT_EQ(out[t].x, t ^ 1);
    EXPECT_EQ(out[t].y, -(t ^ 1));
  }
}

// ---- dynamic shared memory ----

// (blockDim.x) -> (blockDim.x): x shifted by one through dynamic shared
// memory; slot blockDim.x is never written, so the last thread reads the
// poison. Also reports the buffer's alignment.
__global__ void dynamic_smem_kernel(const float* x, float* out,
                                    uintptr_t* address) {
  LLMSYS_DYNAMIC_SMEM(float, buf);  // (blockDim.x + 1)
  buf[threadIdx.x] = x[threadIdx.x];
  __syncthreads();
  out[threadIdx.x] = buf[threadIdx.x + 1];
  if (threadIdx.x == 0) *address = reinterpret_cast<uintptr_t>(buf);
}

TEST_F(EmuTest, DynamicSharedMemoryIsAlignedAndPoisoned) {
  const int n = 96;
  std::vector<float> x(n), out(n);
  for (int i = 0; i < n; ++i) x[i] = 0.5f * i;
  uintptr_t address = 1;
  LLMSYS_LAUNCH(dynamic_smem_kernel, 1, n, (n + 1) * sizeof(float), nullptr)
  (x.data(), out.data(), &address);
  ASSERT_EQ(cudaGetLastError(), cudaSuccess) << emu::LastMessage();
  EXPECT_EQ(address % 16, 0u);
  for (int i = 0; i + 1 < n; ++i) EXPECT_EQ(out[i], x[i + 1]);
  EXPECT_EQ(std::bit_cast<uint32_t>(out[n - 1]), 0xFFFFFFFFu);  // a NaN
  EXPECT_TRUE(std::isnan(out[n - 1]));
}

__global__ void big_smem_kernel(float* out) {
  LLMSYS_DYNAMIC_SMEM(float, buf);
  buf[threadIdx.x] = 1.0f;
  __syncthreads();
  out[threadIdx.x] = buf[(threadIdx.x + 1) % blockDim.x];
}

TEST_F(EmuTest, SharedMemoryOver48KiBNeedsTheAttribute) {
  std::vector<float> out(32);
  const size_t bytes = 100 * 1024;
  LLMSYS_LAUNCH(big_smem_kernel, 1, 32, bytes, nullptr)(out.data());
  EXPECT_EQ(cudaGetLastError(), cudaErrorInvalidValue);
  EXPECT_THAT(emu::LastMessage(),
              HasSubstr("cudaFuncAttributeMaxDynamicSharedMemorySize"));
  ASSERT_EQ(cudaFuncSetAttribute(big_smem_kernel,
                                 cudaFuncAttributeMaxDynamicSharedMemorySize,
                                 static_cast<int>(bytes)),
            cudaSuccess);
  LLMSYS_LAUNCH(big_smem_kernel, 1, 32, bytes, nullptr)(out.data());
  EXPECT_EQ(cudaGetLastError(), cudaSuccess) << emu::LastMessage();
  EXPECT_EQ(out, std::vector<float>(32, 1.0f));
  // Past the 227 KiB of an H100/H200: refused either way.
  EXPECT_EQ(cudaFuncSetAttribute(big_smem_kernel,
                                 cudaFuncAttributeMaxDynamicSharedMemorySize,
                                 228 * 1024),
            cudaErrorInvalidValue);
  LLMSYS_LAUNCH(big_smem_kernel, 1, 32, 228 * 1024, nullptr)(out.data());
  EXPECT_EQ(cudaGetLastError(), cudaErrorInvalidValue);
}

#if !defined(__SANITIZE_ADDRESS__)
__global__ void smem_overflow_kernel() {
  LLMSYS_DYNAMIC_SMEM(float, buf);  // (blockDim.x)
  buf[threadIdx.x + 1] = 0;
}

TEST_F(EmuTest, WritesPastDynamicSharedMemoryFail) {
  LLMSYS_LAUNCH(smem_overflow_kernel, 1, 32, 32 * sizeof(float), nullptr)();
  EXPECT_EQ(cudaGetLastError(), cudaErrorIllegalAddress);
  EXPECT_THAT(emu::LastMessage(), HasSubstr("past the end"));
}
#endif

// ---- grid-stride loops and atomics ----

// (n) -> (n): y = 2 x + 1, over an ElementwisePlan with few blocks, and a
// count of the elements each visit touched.
__global__ void axpb_kernel(const double* x, double* y, int* visits,
                            int64_t n) {
  LLMSYS_GRID_STRIDE_LOOP(i, n) {
    y[i] = 2 * x[i] + 1;
    atomicAdd(&visits[i], 1);
  }
}

TEST_F(EmuTest, GridStrideLoopCoversEveryElementOnce) {
  const int64_t n = 10007;
  const llmsys::cuda::GridPlan plan = llmsys::cuda::ElementwisePlan(n, 7);
  ASSERT_EQ(plan.blocks, 7);
  std::vector<double> x(n), y(n);
  std::vector<int> visits(n);
  for (int64_t i = 0; i < n; ++i) x[i] = 0.25 * i;
  LLMSYS_LAUNCH(axpb_kernel, plan.blocks, plan.threads, 0, nullptr)
  (x.data(), y.data(), visits.data(), n);
  ASSERT_EQ(cudaGetLastError(), cudaSuccess) << emu::LastMessage();
  for (int64_t i = 0; i < n; ++i) {
    ASSERT_EQ(y[i], 2 * x[i] + 1) << i;
    ASSERT_EQ(visits[i], 1) << i;
  }
}

__global__ void atomic_kernel(float* f, double* d, int* i,
                              unsigned long long* u, __nv_bfloat16* b) {
  atomicAdd(f, 0.5f);
  atomicAdd(d, 0.25);
  atomicAdd(i, 2);
  atomicAdd(u, 3ull);
  if (threadIdx.x == 0) atomicAdd(b, __nv_bfloat16(1.0f));
}

TEST_F(EmuTest, AtomicAddAcrossBlocksAndWorkers) {
  for (int workers : {1, 4}) {
    emu::SetOptions({.workers = workers});
    float f = 0;
    double d = 0;
    int i = 0;
    unsigned long long u = 0;
    __nv_bfloat16 b = 0.0f;
    LLMSYS_LAUNCH(atomic_kernel, 40, 128, 0, nullptr)(&f, &d, &i, &u, &b);
    ASSERT_EQ(cudaGetLastError(), cudaSuccess) << emu::LastMessage();
    EXPECT_EQ(f, 40 * 128 * 0.5f);
    EXPECT_EQ(d, 40 * 128 * 0.25);
    EXPECT_EQ(i, 40 * 128 * 2);
    EXPECT_EQ(u, 40ull * 128 * 3);
    EXPECT_EQ(float(b), 40.0f);
  }
}

// ---- bf16 and half conversions ----

uint16_t Bits(__nv_bfloat16 h) { return __bfloat16_as_ushort(h); }
uint16_t Bits(__half h) { return __half_as_ushort(h); }

TEST_F(EmuTest, Float16ConversionsRoundToNearestEven) {
  const auto bf16 = [](float f) { return Bits(__float2bfloat16_rn(f)); };
  const auto half = [](float f) { return Bits(__float2half_rn(f)); };
  const auto from_bits = [](uint32_t u) { return std::bit_cast<float>(u); };
  EXPECT_EQ(bf16(1.0f), 0x3F80);
  EXPECT_EQ(bf16(-2.0f), 0xC000);
  EXPECT_EQ(bf16(from_bits(0x3F808000)), 0x3F80);  // tie: to even
  EXPECT_EQ(bf16(from_bits(0x3F818000)), 0x3F82);  // tie: to even
  EXPECT_EQ(bf16(from_bits(0x3F808001)), 0x3F81);  // above the tie
  EXPECT_EQ(bf16(from_bits(0x7F7FFFFF)), 0x7F80);  // max float: to inf
  EXPECT_EQ(bf16(from_bits(0x00000001)), 0x0000);  // tiny: to zero
  EXPECT_EQ(bf16(from_bits(0x00018000)), 0x0002);  // subnormal tie
  EXPECT_EQ(bf16(-0.0f), 0x8000);
  EXPECT_EQ(bf16(std::numeric_limits<float>::infinity()), 0x7F80);
  EXPECT_EQ(bf16(std::nanf("")), 0x7FFF);  // the GPU's canonical NaN
  EXPECT_EQ(bf16(-std::nanf("")), 0x7FFF);
  EXPECT_EQ(half(1.0f), 0x3C00);
  EXPECT_EQ(half(65504.0f), 0x7BFF);
  EXPECT_EQ(half(65519.0f), 0x7BFF);  // below the midpoint to 65536
  EXPECT_EQ(half(65520.0f), 0x7C00);  // the midpoint: to even, inf
  EXPECT_EQ(half(std::ldexp(1.0f, -24)), 0x0001);         // smallest subnormal
  EXPECT_EQ(half(std::ldexp(1.0f, -25)), 0x0000);         // tie: to even (0)
  EXPECT_EQ(half(std::ldexp(3.0f, -25)), 0x0002);         // tie: to even (2)
  EXPECT_EQ(half(std::ldexp(1.5f, -25)), 0x0001);         // above the tie
  EXPECT_EQ(half(std::ldexp(1023.5f, -24)), 0x0400);      // up to the normals
  EXPECT_EQ(half(1.0f + std::ldexp(1.0f, -11)), 0x3C00);  // tie: to even
  EXPECT_EQ(half(-0.0f), 0x8000);
  EXPECT_EQ(half(std::nanf("")), 0x7FFF);
  // Doubles round once (not through float): above the tie by 2^-30.
  const double above_tie = 1.0 + std::ldexp(1.0, -8) + std::ldexp(1.0, -30);
  EXPECT_EQ(Bits(__double2bfloat16(above_tie)), 0x3F81);
  EXPECT_EQ(Bits(__float2bfloat16_rn(static_cast<float>(above_tie))), 0x3F80);
  const double half_above = 1.0 + std::ldexp(1.0, -11) + std::ldexp(1.0, -40);
  EXPECT_EQ(Bits(__double2half(half_above)), 0x3C01);
}

TEST_F(EmuTest, Float16ConversionsMatchTheHost) {
  // framework/tensor's conversions (the bit trick for bf16, _Float16 for
  // half) on every exponent with random mantissas; NaN differs only in
  // its payload (the GPU's is 0x7FFF).
  std::mt19937 rng(3);
  for (int k = 0; k < 2000000; ++k) {
    const uint32_t u = k < 65536
                           ? (static_cast<uint32_t>(k) << 16) | (rng() & 0xFFFF)
                           : static_cast<uint32_t>(rng());
    const float f = std::bit_cast<float>(u);
    if (std::isnan(f)) {
      EXPECT_EQ(Bits(__float2bfloat16_rn(f)), 0x7FFF);
      EXPECT_EQ(Bits(__float2half_rn(f)), 0x7FFF);
      continue;
    }
    ASSERT_EQ(Bits(__float2bfloat16_rn(f)), llmsys::tensor::FloatToBF16(f))
        << std::hex << u;
    ASSERT_EQ(Bits(__float2half_rn(f)), llmsys::tensor::FloatToF16(f))
        << std::hex << u;
    ASSERT_EQ(Bits(__double2bfloat16(f)), llmsys::tensor::FloatToBF16(f))
        << std::hex << u;
    ASSERT_EQ(Bits(__double2half(f)), llmsys::tensor::FloatToF16(f))
        << std::hex << u;
  }
  // Every 16-bit pattern widens exactly and rounds back to itself.
  for (uint32_t h = 0; h < 65536; ++h) {
    const uint16_t b = static_cast<uint16_t>(h);
    const float bf = __bfloat162float(__ushort_as_bfloat16(b));
    const float hf = __half2float(__ushort_as_half(b));
    ASSERT_EQ(std::bit_cast<uint32_t>(bf), h << 16);
    if (std::isnan(hf)) continue;
    ASSERT_EQ(hf, llmsys::tensor::F16ToFloat(b)) << h;
    ASSERT_EQ(Bits(__float2half_rn(hf)), b) << h;
    if (!std::isnan(bf)) {
      ASSERT_EQ(Bits(__float2bfloat16_rn(bf)), b) << h;
    }
  }
}

// common.cuh's FromAcc/ToAcc in a kernel: (n) float -> (n) bf16 -> float.
template <class T>
__global__ void round_trip_kernel(const float* x, T* y, float* z, int64_t n) {
  LLMSYS_GRID_STRIDE_LOOP(i, n) {
    y[i] = llmsys::cuda::FromAcc<T>(x[i]);
    z[i] = llmsys::cuda::ToAcc(y[i]);
  }
}

TEST_F(EmuTest, FromAccAndToAccInKernels) {
  const std::vector<float> x = {1.0f,    1.00390625f, 3.14159265f,
                                -1e-40f, 65520.0f,    1e30f};
  const int64_t n = static_cast<int64_t>(x.size());
  std::vector<__nv_bfloat16> yb(n);
  std::vector<__half> yh(n);
  std::vector<float> zb(n), zh(n);
  LLMSYS_LAUNCH(round_trip_kernel<__nv_bfloat16>, 1, 32, 0, nullptr)
  (x.data(), yb.data(), zb.data(), n);
  LLMSYS_LAUNCH(round_trip_kernel<__half>, 1, 32, 0, nullptr)
  (x.data(), yh.data(), zh.data(), n);
  ASSERT_EQ(cudaGetLastError(), cudaSuccess) << emu::LastMessage();
  for (int64_t i = 0; i < n; ++i) {
    EXPECT_EQ(Bits(yb[i]), llmsys::tensor::FloatToBF16(x[i])) << i;
    EXPECT_EQ(zb[i], llmsys::tensor::BF16ToFloat(Bits(yb[i]))) << i;
    EXPECT_EQ(Bits(yh[i]), llmsys::tensor::FloatToF16(x[i])) << i;
    EXPECT_EQ(zh[i], llmsys::tensor::F16ToFloat(Bits(yh[i]))) << i;
  }
}

// ---- what a GPU leaves undefined fails the launch ----

__global__ void early_exit_barrier_kernel(int* out) {
  if (threadIdx.x >= 16) return;
  __syncthreads();
  out[threadIdx.x] = 1;
}

TEST_F(EmuTest, BarrierAfterSomeThreadsExitedIsDivergence) {
  std::vector<int> out(64);
  LLMSYS_LAUNCH(early_exit_barrier_kernel, 2, 64, 0, nullptr)(out.data());
  EXPECT_EQ(cudaGetLastError(), cudaErrorLaunchFailure);
  const std::string m = emu::LastMessage();
  EXPECT_THAT(m, HasSubstr("barrier divergence"));
  EXPECT_THAT(m, HasSubstr("early_exit_barrier_kernel"));
  EXPECT_THAT(m, HasSubstr("block (0,0,0)"));
  EXPECT_THAT(m, HasSubstr("threads 0..15"));
  EXPECT_THAT(m, HasSubstr("threads 16..63 have exited"));
  EXPECT_THAT(m, HasSubstr("tests/cuda/emu/emu_test.cc:"));
  // The plugin's error text (cudaGetErrorString) carries the message.
  EXPECT_THAT(cudaGetErrorString(cudaErrorLaunchFailure),
              HasSubstr("barrier divergence"));
}

__global__ void two_barriers_kernel() {
  if (threadIdx.x < 32)
    __syncthreads();
  else
    __syncthreads();
}

TEST_F(EmuTest, ThreadsAtDifferentBarriersAreDivergence) {
  LLMSYS_LAUNCH(two_barriers_kernel, 1, 64, 0, nullptr)();
  EXPECT_EQ(cudaGetLastError(), cudaErrorLaunchFailure);
  EXPECT_THAT(emu::LastMessage(), HasSubstr("barrier divergence"));
  EXPECT_THAT(emu::LastMessage(), HasSubstr("thread 32 waits at"));
}

__global__ void exited_lanes_shuffle_kernel(float* out) {
  if (threadIdx.x % 32 >= 16) return;
  out[threadIdx.x] = WarpSum(1.0f);
}

TEST_F(EmuTest, ShuffleWithExitedLanesFails) {
  std::vector<float> out(32);
  LLMSYS_LAUNCH(exited_lanes_shuffle_kernel, 1, 32, 0, nullptr)(out.data());
  EXPECT_EQ(cudaGetLastError(), cudaErrorLaunchFailure);
  EXPECT_THAT(emu::LastMessage(), HasSubstr("__shfl_xor_sync"));
  EXPECT_THAT(emu::LastMessage(), HasSubstr("has exited"));
  EXPECT_THAT(emu::LastMessage(), HasSubstr("cuda/common.cuh:"));
}

__global__ void partial_warp_shuffle_kernel(float* out) {
  out[threadIdx.x] = WarpSum(1.0f);
}

TEST_F(EmuTest, FullMaskShuffleInPartialWarpFails) {
  std::vector<float> out(48);
  LLMSYS_LAUNCH(partial_warp_shuffle_kernel, 1, 48, 0, nullptr)(out.data());
  EXPECT_EQ(cudaGetLastError(), cudaErrorLaunchFailure);
  EXPECT_THAT(emu::LastMessage(), HasSubstr("does not have"));
}

__global__ void divergent_shuffles_kernel(float* out) {
  float v = 1.0f;
  if (threadIdx.x < 8)
    v = __shfl_xor_sync(0xffffffffu, v, 1);
  else
    v = __shfl_xor_sync(0xffffffffu, v, 2);
  out[threadIdx.x] = v;
}

TEST_F(EmuTest, LanesAtDifferentShufflesFail) {
  std::vector<float> out(32);
  LLMSYS_LAUNCH(divergent_shuffles_kernel, 1, 32, 0, nullptr)(out.data());
  EXPECT_EQ(cudaGetLastError(), cudaErrorLaunchFailure);
  EXPECT_THAT(emu::LastMessage(), HasSubstr("cannot proceed"));
  EXPECT_THAT(emu::LastMessage(), HasSubstr("threads 0..7 wait at"));
  EXPECT_THAT(emu::LastMessage(), HasSubstr("threads 8..31 wait at"));
}

__global__ void half_warp_kernel(float* out) {
  // Lanes 0-15 exchange among themselves: a valid partial mask.
  float v = static_cast<float>(threadIdx.x);
  if (threadIdx.x < 16) v = __shfl_xor_sync(0x0000ffffu, v, 1);
  out[threadIdx.x] = v;
}

TEST_F(EmuTest, PartialMaskShuffleWithItsLanesWorks) {
  std::vector<float> out(32);
  LLMSYS_LAUNCH(half_warp_kernel, 1, 32, 0, nullptr)(out.data());
  ASSERT_EQ(cudaGetLastError(), cudaSuccess) << emu::LastMessage();
  for (int t = 0; t < 32; ++t)
    EXPECT_EQ(out[t], static_cast<float>(t < 16 ? t ^ 1 : t));
}

__global__ void trap_kernel() {
  if (blockIdx.x == 2 && threadIdx.x == 5) __trap();
}

TEST_F(EmuTest, TrapFailsTheLaunch) {
  LLMSYS_LAUNCH(trap_kernel, 4, 32, 0, nullptr)();
  EXPECT_EQ(cudaGetLastError(), cudaErrorLaunchFailure);
  EXPECT_THAT(emu::LastMessage(), HasSubstr("thread 5 called __trap()"));
  EXPECT_THAT(emu::LastMessage(), HasSubstr("block (2,0,0)"));
}

__global__ void nothing_kernel() {}

TEST_F(EmuTest, BadConfigurationsAreRefused) {
  const dim3 bad_blocks[] = {dim3(0), dim3(1025), dim3(32, 32, 2),
                             dim3(1, 1, 65)};
  for (const dim3& block : bad_blocks) {
    LLMSYS_LAUNCH(nothing_kernel, 1, block, 0, nullptr)();
    EXPECT_EQ(cudaGetLastError(), cudaErrorInvalidConfiguration);
    EXPECT_THAT(emu::LastMessage(), HasSubstr("block ("));
  }
  const dim3 bad_grids[] = {dim3(0), dim3(1, 65536), dim3(1, 1, 0)};
  for (const dim3& grid : bad_grids) {
    LLMSYS_LAUNCH(nothing_kernel, grid, 32, 0, nullptr)();
    EXPECT_EQ(cudaGetLastError(), cudaErrorInvalidConfiguration);
    EXPECT_THAT(emu::LastMessage(), HasSubstr("grid ("));
  }
  // An int64 block count past 2^31 - 1 is caught before any narrowing.
  LLMSYS_LAUNCH(nothing_kernel, int64_t{1} << 32, 32, 0, nullptr)();
  EXPECT_EQ(cudaGetLastError(), cudaErrorInvalidConfiguration);
  LLMSYS_LAUNCH(nothing_kernel, 1, 32, -1, nullptr)();
  EXPECT_EQ(cudaGetLastError(), cudaErrorInvalidValue);
  // A valid one afterwards: the last error was reset.
  LLMSYS_LAUNCH(nothing_kernel, 1, 1024, 0, nullptr)();
  EXPECT_EQ(cudaPeekAtLastError(), cudaSuccess);
}

TEST_F(EmuTest, LastErrorIsResetByGetNotPeek) {
  LLMSYS_LAUNCH(nothing_kernel, 0, 32, 0, nullptr)();
  EXPECT_EQ(cudaPeekAtLastError(), cudaErrorInvalidConfiguration);
  EXPECT_EQ(cudaPeekAtLastError(), cudaErrorInvalidConfiguration);
  EXPECT_EQ(cudaGetLastError(), cudaErrorInvalidConfiguration);
  EXPECT_EQ(cudaGetLastError(), cudaSuccess);
  EXPECT_STREQ(cudaGetErrorName(cudaErrorLaunchFailure),
               "cudaErrorLaunchFailure");
  EXPECT_STREQ(cudaGetErrorString(cudaSuccess), "no error");
}

__global__ void nested_launch_kernel() {
  LLMSYS_LAUNCH(nothing_kernel, 1, 1, 0, nullptr)();
}

TEST_F(EmuTest, LaunchFromDeviceCodeIsNotSupported) {
  LLMSYS_LAUNCH(nested_launch_kernel, 1, 1, 0, nullptr)();
  EXPECT_EQ(cudaGetLastError(), cudaErrorNotSupported);
}

// ---- the emulated plugin ----

TEST_F(EmuTest, EmulatedPluginLoads) {
  auto plugin = llmsys::runtime::Plugin::Load(LLMSYS_CUDA_EMU_PLUGIN);
  ASSERT_TRUE(plugin.ok()) << plugin.status();
  EXPECT_EQ((*plugin)->id(), "llmsys.cuda");
  for (const llmsys::runtime::Component& c : (*plugin)->components()) {
    EXPECT_NE(c.id, "matmul.cublas");  // cuBLASLt is not emulated
    if (c.kind == LLMSYS_KIND_OPERATOR) {
      EXPECT_EQ(c.device_type, kDLCUDA) << c.id;
    }
  }
}

}  // namespace
