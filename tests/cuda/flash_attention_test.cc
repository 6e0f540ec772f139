// attention.flash on the emulated device (tests/cuda/emu: the kernels of
// cuda/flash_attention.cu compiled for the CPU, called through the plugin's
// host code): its launch plans (tiles, shared memory, grids, workspace),
// its argument checks, and its outputs and gradients against the reference
// semantics written out in double in attention_test_util.cc, on problems
// that span several tiles with ragged edges (masks, causal with N != M,
// dropout from the call's random stream, a batch with every key masked, NaN
// inputs at masked and unmasked positions), for all four float dtypes and
// head sizes 1 to 128.
#include "cuda/flash_attention.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <iterator>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "framework/tensor/tensor.h"
#include "tests/cuda/attention_test_util.h"
#include "tests/cuda/cuda_test_util.h"

namespace llmsys::cuda_test {
namespace {

using cuda::DType;
using cuda::FlashAttentionPlan;
using cuda::FlashAttentionPlanFor;
using cuda::FlashAttentionShape;
using cuda::FlashKernel;
using cuda::FlashKernelChoice;
using cuda::FlashPass;
using tensor::kBF16;
using tensor::kF16;
using tensor::kF32;
using tensor::kF64;
using tensor::kI32;
using tensor::kU8;
using tensor::Tensor;
using Vec = std::vector<double>;

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kNan = std::numeric_limits<double>::quiet_NaN();
constexpr DType kDTypes[] = {DType::kF32, DType::kF64, DType::kBF16,
                             DType::kF16};
constexpr FlashPass kPasses[] = {FlashPass::kForward, FlashPass::kBackwardDq,
                                 FlashPass::kBackwardDkdv};

// ---- launch plans ----

TEST(FlashAttentionPlanTest, HeadSizesPickA64Or128Kernel) {
  EXPECT_EQ(cuda::FlashHeadDim({1, 1, 1, 1, 0, 0}), 64);
  EXPECT_EQ(cuda::FlashHeadDim({1, 1, 1, 1, 1, 64}), 64);
  EXPECT_EQ(cuda::FlashHeadDim({1, 1, 1, 1, 65, 8}), 128);
  EXPECT_EQ(cuda::FlashHeadDim({1, 1, 1, 1, 8, 65}), 128);
  EXPECT_EQ(cuda::FlashHeadDim({1, 1, 1, 1, 128, 128}), 128);
  EXPECT_EQ(cuda::FlashHeadDim({1, 1, 1, 1, 129, 64}), 0);
  EXPECT_EQ(cuda::FlashHeadDim({1, 1, 1, 1, 64, 256}), 0);
}

// Every SIMT plan: tiles that the 16-wide thread layout divides, a warp
// per softmax row with whole warps over the keys, at most 64 accumulators
// a thread, buffers that follow one another, and shared memory within
// what every GPU from sm_80 on grants.
TEST(FlashAttentionPlanTest, EverySimtPlanFitsItsThreadsAndSharedMemory) {
  for (DType t : kDTypes) {
    for (int64_t d : {1, 64, 80, 128}) {
      for (FlashPass pass : kPasses) {
        SCOPED_TRACE(std::string(cuda::DTypeName(t)) + " D " +
                     std::to_string(d) + " pass " +
                     std::to_string(static_cast<int>(pass)));
        const FlashAttentionShape s{2, 3, 100, 90, d, d};
        const FlashAttentionPlan p =
            FlashAttentionPlanFor(pass, t, s, FlashKernelChoice::kSimt);
        ASSERT_EQ(p.kernel, FlashKernel::kSimt);
        EXPECT_EQ(p.head_dim, d <= 64 ? 64 : 128);
        const cuda::FlashTiles& tl = p.tiles;
        ASSERT_EQ(tl.threads % 32, 0);
        const int ty = tl.threads / cuda::kFlashSimtTx;
        EXPECT_EQ(tl.rows % ty, 0);
        EXPECT_EQ(tl.keys % cuda::kFlashSimtTx, 0);
        EXPECT_EQ(p.head_dim % cuda::kFlashSimtTx, 0);
        if (pass == FlashPass::kForward) {
          EXPECT_EQ(tl.rows % (tl.threads / 32), 0);  // rows per warp
          EXPECT_EQ(tl.keys % 32, 0);                 // keys per lane
        }
        if (pass == FlashPass::kBackwardDkdv) {
          EXPECT_EQ(tl.keys % ty, 0);
        }
        // Accumulators a thread keeps for its part of the output tile(s).
        const int64_t owned =
            pass == FlashPass::kBackwardDkdv ? 2 * tl.keys : tl.rows;
        EXPECT_LE(owned * p.head_dim / tl.threads, 64);
        const int acc = t == DType::kF64 ? 8 : 4;
        const cuda::FlashSmemLayout l =
            cuda::SimtFlashLayout(pass, tl, p.head_dim);
        EXPECT_EQ(p.smem_bytes, acc * l.total);
        EXPECT_LE(p.smem_bytes, cuda::kFlashMaxSmemBytes);
        EXPECT_LT(l.stats, l.total);
        const int64_t q = int64_t{tl.rows} * (p.head_dim + 1);
        const int64_t kv = int64_t{tl.keys} * (p.head_dim + 1);
        const int64_t sp = int64_t{tl.rows} * (tl.keys + 1);
        switch (pass) {
          case FlashPass::kForward:
            EXPECT_EQ(l.k - l.q, q);
            EXPECT_EQ(l.v - l.k, kv);
            EXPECT_EQ(l.p - l.v, kv);
            EXPECT_EQ(l.stats - l.p, sp);
            EXPECT_EQ(l.total - l.stats, 3 * tl.rows);
            break;
          case FlashPass::kBackwardDq:
            EXPECT_EQ(l.dout - l.q, q);
            EXPECT_EQ(l.k - l.dout, q);
            EXPECT_EQ(l.v, l.k);  // V, then K, in one buffer
            EXPECT_EQ(l.ds - l.k, kv);
            EXPECT_EQ(l.stats - l.ds, sp);
            EXPECT_EQ(l.total - l.stats, 2 * tl.rows);
            break;
          default:
            EXPECT_EQ(l.v - l.k, kv);
            EXPECT_EQ(l.q - l.v, kv);
            EXPECT_EQ(l.dout - l.q, q);
            EXPECT_EQ(l.p - l.dout, q);
            EXPECT_EQ(l.ds - l.p, sp);
            EXPECT_EQ(l.stats - l.ds, sp);
            EXPECT_EQ(l.total - l.stats, 2 * tl.rows);
            break;
        }
      }
    }
  }
}

// The tensor-core plans: four warps of 16 rows (or keys) each, 32 in the
// forward, tiles of whole 16 x 16 steps, at most 64 keys a tile, streams
// streams, shared memory within what every GPU from sm_80 on grants, and
// every buffer 16-byte aligned for cp.async and ldmatrix.
TEST(FlashAttentionPlanTest, EveryTensorCorePlanFitsItsWarpsAndSharedMemory) {
  for (DType t : {DType::kBF16, DType::kF16}) {
    for (int64_t d : {64, 128}) {
      for (FlashPass pass : kPasses) {
        SCOPED_TRACE(std::string(cuda::DTypeName(t)) + " D " +
                     std::to_string(d) + " pass " +
                     std::to_string(static_cast<int>(pass)));
        const FlashAttentionShape s{2, 3, 100, 90, d, d};
        const FlashAttentionPlan p =
            FlashAttentionPlanFor(pass, t, s, FlashKernelChoice::kAuto);
        ASSERT_EQ(p.kernel, FlashKernel::kTensorCore);
        EXPECT_EQ(p.head_dim, d);
        const cuda::FlashTiles& tl = p.tiles;
        EXPECT_EQ(tl.threads, 128);
        const int owned = pass == FlashPass::kBackwardDkdv ? tl.keys : tl.rows;
        const int other = pass == FlashPass::kBackwardDkdv ? tl.rows : tl.keys;
        const int per_warp = owned / (tl.threads / 32);  // 16 or 32
        EXPECT_EQ(owned % (tl.threads / 32), 0);
        EXPECT_TRUE(per_warp == 16 ||
                    (per_warp == 32 && pass == FlashPass::kForward))
            << per_warp;
        EXPECT_EQ(other % 16, 0);
        EXPECT_LE(other, 64);
        const cuda::FlashSmemLayout l =
            cuda::TensorCoreFlashLayout(pass, tl, p.head_dim);
        EXPECT_EQ(p.smem_bytes, 2 * l.total);
        EXPECT_LE(p.smem_bytes, cuda::kFlashMaxSmemBytes);
        const int64_t ld = d + 8, q = tl.rows * ld, kv = tl.keys * ld;
        for (int64_t offset : {l.q, l.dout, l.k, l.v, l.stats})
          EXPECT_EQ(offset % 8, 0) << offset;  // 16 bytes
        EXPECT_EQ((ld * 2) % 128, 16);         // ldmatrix rows in 8 bank groups
        switch (pass) {
          case FlashPass::kForward:
            EXPECT_EQ(l.k - l.q, q);
            EXPECT_EQ(l.v - l.k, kv);
            EXPECT_EQ(l.total - l.v, kv);
            break;
          case FlashPass::kBackwardDq:
            EXPECT_EQ(l.dout - l.q, q);
            EXPECT_EQ(l.k - l.dout, q);
            EXPECT_EQ(l.v - l.k, 2 * kv);
            EXPECT_EQ(l.stats - l.v, 2 * kv);
            EXPECT_EQ(l.total - l.stats, 2 * 2 * tl.rows);
            break;
          default:
            EXPECT_EQ(l.v - l.k, kv);
            EXPECT_EQ(l.q - l.v, kv);
            EXPECT_EQ(l.dout - l.q, 2 * q);
            EXPECT_EQ(l.stats - l.dout, 2 * q);
            EXPECT_EQ(l.total - l.stats, 2 * 4 * tl.rows);
            break;
        }
      }
      // Other head sizes, other dtypes and kernel = 'simt' stay SIMT.
      for (FlashPass pass : kPasses) {
        EXPECT_EQ(FlashAttentionPlanFor(pass, t, {1, 1, 8, 8, d, d},
                                        FlashKernelChoice::kSimt)
                      .kernel,
                  FlashKernel::kSimt);
        EXPECT_EQ(FlashAttentionPlanFor(pass, t, {1, 1, 8, 8, d, 32},
                                        FlashKernelChoice::kAuto)
                      .kernel,
                  FlashKernel::kSimt);
        EXPECT_EQ(FlashAttentionPlanFor(pass, DType::kF32, {1, 1, 8, 8, d, d},
                                        FlashKernelChoice::kAuto)
                      .kernel,
                  FlashKernel::kSimt);
      }
    }
  }
}

TEST(FlashAttentionPlanTest, GridsHaveABlockPerTileAndHead) {
  const auto blocks = [](FlashPass pass, DType t, FlashAttentionShape s) {
    return FlashAttentionPlanFor(pass, t, s, FlashKernelChoice::kAuto).blocks;
  };
  // float32, D 64: 64 query rows a forward tile, 64 keys a dK/dV tile.
  EXPECT_EQ(blocks(FlashPass::kForward, DType::kF32, {2, 3, 0, 5, 64, 64}), 0);
  EXPECT_EQ(blocks(FlashPass::kForward, DType::kF32, {2, 3, 1, 5, 64, 64}), 6);
  EXPECT_EQ(blocks(FlashPass::kForward, DType::kF32, {2, 3, 64, 5, 64, 64}), 6);
  EXPECT_EQ(blocks(FlashPass::kForward, DType::kF32, {2, 3, 65, 5, 64, 64}),
            12);
  EXPECT_EQ(blocks(FlashPass::kBackwardDkdv, DType::kF32, {2, 3, 7, 0, 64, 64}),
            0);
  EXPECT_EQ(
      blocks(FlashPass::kBackwardDkdv, DType::kF32, {2, 3, 7, 129, 64, 64}),
      18);
  // float64, D 128: 16-row forward tiles, 16-key dK/dV tiles.
  EXPECT_EQ(blocks(FlashPass::kForward, DType::kF64, {1, 1, 33, 5, 128, 128}),
            3);
  EXPECT_EQ(
      blocks(FlashPass::kBackwardDkdv, DType::kF64, {1, 1, 5, 33, 128, 128}),
      3);
  // bfloat16, D 128, tensor cores: 128-row forward tiles, 64-row dQ tiles,
  // 64-key dK/dV tiles.
  EXPECT_EQ(blocks(FlashPass::kForward, DType::kBF16, {1, 2, 129, 5, 128, 128}),
            4);
  EXPECT_EQ(
      blocks(FlashPass::kBackwardDq, DType::kBF16, {1, 2, 129, 5, 128, 128}),
      6);
  EXPECT_EQ(
      blocks(FlashPass::kBackwardDkdv, DType::kBF16, {1, 2, 5, 65, 128, 128}),
      4);
  // Long sequences with many heads still fit one 1-D launch.
  const FlashAttentionShape big{64, 32, 1 << 16, 1 << 16, 128, 128};
  for (FlashPass pass : kPasses) {
    const int64_t b = blocks(pass, DType::kF64, big);
    EXPECT_GT(b, 0);
    EXPECT_LE(b, cuda::kFlashMaxBlocks);
  }
  EXPECT_EQ(cuda::FlashAttentionUnsupported(DType::kF64, big,
                                            FlashKernelChoice::kAuto),
            nullptr);
}

TEST(FlashAttentionPlanTest, UnsupportedCallsSayWhy) {
  const auto why = [](DType t, FlashAttentionShape s, FlashKernelChoice c) {
    const char* w = cuda::FlashAttentionUnsupported(t, s, c);
    return std::string(w != nullptr ? w : "");
  };
  EXPECT_EQ(why(DType::kF32, {2, 3, 4, 5, 128, 128}, FlashKernelChoice::kAuto),
            "");
  EXPECT_EQ(why(DType::kF32, {0, 3, 0, 0, 0, 0}, FlashKernelChoice::kSimt), "");
  EXPECT_NE(why(DType::kF32, {2, 3, 4, 5, 129, 64}, FlashKernelChoice::kAuto)
                .find("above 128"),
            std::string::npos);
  EXPECT_NE(why(DType::kBF16, {2, 3, 4, 5, 64, 256}, FlashKernelChoice::kSimt)
                .find("above 128"),
            std::string::npos);
  // Forcing the tensor-core kernel needs bfloat16/float16 and D = Dv in
  // {64, 128} (and the kernel in the build).
  for (DType t : kDTypes) {
    for (FlashAttentionShape s : {FlashAttentionShape{1, 1, 8, 8, 64, 64},
                                  FlashAttentionShape{1, 1, 8, 8, 128, 128},
                                  FlashAttentionShape{1, 1, 8, 8, 64, 32},
                                  FlashAttentionShape{1, 1, 8, 8, 96, 96}}) {
      const bool ok = cuda::kFlashTensorCoreBuilt &&
                      (t == DType::kBF16 || t == DType::kF16) && s.d == s.dv &&
                      (s.d == 64 || s.d == 128);
      EXPECT_EQ(why(t, s, FlashKernelChoice::kTensorCore).empty(), ok)
          << cuda::DTypeName(t) << " D " << s.d << " Dv " << s.dv;
      EXPECT_EQ(why(t, s, FlashKernelChoice::kSimt), "");
      EXPECT_EQ(cuda::FlashKernelFor(t, s, FlashKernelChoice::kSimt),
                FlashKernel::kSimt);
      EXPECT_EQ(cuda::FlashKernelFor(t, s, FlashKernelChoice::kAuto),
                ok ? FlashKernel::kTensorCore : FlashKernel::kSimt);
    }
  }
  EXPECT_NE(why(DType::kF32, {1 << 20, 1 << 10, 1 << 20, 8, 64, 64},
                FlashKernelChoice::kAuto)
                .find("blocks"),
            std::string::npos);
  EXPECT_NE(why(DType::kF32, {1LL << 40, 1LL << 40, 1, 1, 64, 64},
                FlashKernelChoice::kAuto)
                .find("blocks"),
            std::string::npos);
}

TEST(FlashAttentionPlanTest, TheWorkspaceHoldsDeltaInTheAccumulator) {
  const FlashAttentionShape s{2, 3, 100, 7, 64, 64};
  EXPECT_EQ(cuda::FlashAttentionWorkspaceBytes(DType::kF32, s), 2560);
  EXPECT_EQ(cuda::FlashAttentionWorkspaceBytes(DType::kBF16, s), 2560);
  EXPECT_EQ(cuda::FlashAttentionWorkspaceBytes(DType::kF16, s), 2560);
  EXPECT_EQ(cuda::FlashAttentionWorkspaceBytes(DType::kF64, s), 4864);
  EXPECT_EQ(cuda::FlashAttentionWorkspaceBytes(DType::kF32, {2, 3, 0, 7, 8, 8}),
            0);
  EXPECT_EQ(cuda::FlashAttentionWorkspaceBytes(DType::kF32, {1, 1, 1, 1, 8, 8}),
            256);
}

// ---- argument checks ----

TEST(FlashAttentionInferTest, OutputsFollowQAndV) {
  for (DLDataType t : {kF32, kF64, kBF16, kF16}) {
    absl::StatusOr<Specs> s =
        Infer("attention.flash",
              {FakeTensor{{2, 3, 4, 8}, t}, FakeTensor{{2, 3, 5, 8}, t},
               FakeTensor{{2, 3, 5, 6}, t}, FakeTensor{{2, 5}, kU8}});
    ASSERT_TRUE(s.ok()) << s.status();
    ASSERT_EQ(s->size(), 2u);
    EXPECT_EQ((*s)[0].first, (std::vector<int64_t>{2, 3, 4, 6}));
    EXPECT_EQ((*s)[1].first, (std::vector<int64_t>{2, 3, 4}));
    EXPECT_TRUE(llmsys_dtype_equal((*s)[0].second, t));
    EXPECT_TRUE(llmsys_dtype_equal((*s)[1].second, t.bits == 16 ? kF32 : t));
  }
}

TEST(FlashAttentionInferTest, TheWorkspaceIsAskedFor) {
  std::unique_ptr<runtime::OperatorImpl> impl =
      EmulatedOp("attention.flash", "attention");
  ASSERT_NE(impl, nullptr);
  std::vector<Tensor> in;
  for (const std::vector<int64_t>& shape :
       {std::vector<int64_t>{2, 3, 100, 8}, std::vector<int64_t>{2, 3, 5, 8},
        std::vector<int64_t>{2, 3, 5, 6}})
    in.push_back(*Tensor::Empty(shape, kF64, kCuda0));
  in.emplace_back();
  absl::StatusOr<runtime::OperatorImpl::InferResult> r =
      impl->Infer(in, *impl->Attrs({}));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->workspace_bytes, 4864u);  // Delta: 600 doubles, 256-rounded
}

TEST(FlashAttentionInferTest, HeadSizesAbove128AreNotImplemented) {
  absl::StatusOr<Specs> s =
      Infer("attention.flash",
            {FakeTensor{{1, 2, 4, 256}, kF32}, FakeTensor{{1, 2, 5, 256}, kF32},
             FakeTensor{{1, 2, 5, 64}, kF32}, std::nullopt});
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), absl::StatusCode::kUnimplemented);
  EXPECT_NE(s.status().message().find("above 128"), std::string::npos)
      << s.status();
  EXPECT_NE(s.status().message().find("attention.naive"), std::string::npos)
      << s.status();
}

TEST(FlashAttentionInferTest, BadInputsNameTheProblem) {
  struct Bad {
    std::vector<std::optional<FakeTensor>> in;
    runtime::AttrList attrs;
    std::string says;
  };
  const std::vector<Bad> bad = {
      {{FakeTensor{{2, 3, 4, 8}, kF32}, FakeTensor{{2, 3, 5, 7}, kF32},
        FakeTensor{{2, 3, 5, 6}, kF32}, std::nullopt},
       {},
       "q and k must agree on D"},
      {{FakeTensor{{2, 3, 4, 8}, kF32}, FakeTensor{{2, 3, 5, 8}, kF32},
        FakeTensor{{2, 3, 6, 6}, kF32}, std::nullopt},
       {},
       "k and v must agree on M"},
      {{FakeTensor{{2, 3, 4, 8}, kF32}, FakeTensor{{2, 3, 5, 8}, kF32},
        FakeTensor{{2, 3, 5, 6}, kF32}, FakeTensor{{2, 4}, kU8}},
       {},
       "key_padding_mask must have shape"},
      {{FakeTensor{{2, 3, 4, 8}, kF32}, FakeTensor{{2, 3, 5, 8}, kBF16},
        FakeTensor{{2, 3, 5, 6}, kF32}, std::nullopt},
       {},
       "same dtype"},
      {{FakeTensor{{2, 3, 4, 8}, kI32}, FakeTensor{{2, 3, 5, 8}, kI32},
        FakeTensor{{2, 3, 5, 6}, kI32}, std::nullopt},
       {},
       "must be float32"},
      {{FakeTensor{{2, 3, 4, 8}, kF32}, FakeTensor{{2, 3, 5, 8}, kF32},
        FakeTensor{{2, 3, 5, 6}, kF32}, std::nullopt},
       {{"dropout_p", -0.5}},
       "dropout_p must be in [0, 1]"},
      {{FakeTensor{{3, 4, 8}, kF32}, FakeTensor{{3, 5, 8}, kF32},
        FakeTensor{{3, 5, 6}, kF32}, std::nullopt},
       {},
       "must be 4-d"},
  };
  for (const Bad& b : bad) {
    absl::StatusOr<Specs> s = Infer("attention.flash", b.in, b.attrs);
    ASSERT_FALSE(s.ok()) << b.says;
    EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument) << b.says;
    EXPECT_NE(s.status().message().find(b.says), std::string::npos)
        << s.status();
  }
}

// A kernel that does not exist: the parameter's choices name the three.
TEST(FlashAttentionInferTest, AnUnknownKernelIsRefused) {
  const runtime::PluginRegistry& registry = EmulatedPlugin();
  absl::StatusOr<const runtime::Component*> c =
      registry.Find(LLMSYS_KIND_OPERATOR, "attention.flash", kDLCUDA);
  ASSERT_TRUE(c.ok()) << c.status();
  absl::StatusOr<std::unique_ptr<runtime::OperatorImpl>> impl =
      runtime::OperatorImpl::Create(**c, *registry.FindOpContract("attention"),
                                    {{"kernel", std::string("wgmma")}});
  ASSERT_FALSE(impl.ok());
  EXPECT_EQ(impl.status().code(), absl::StatusCode::kInvalidArgument);
  for (const char* says : {"kernel", "wgmma", "auto|simt|tensor_core"})
    EXPECT_NE(impl.status().message().find(says), std::string::npos)
        << says << ": " << impl.status();
}

// kernel = 'tensor_core' is refused where that kernel cannot run.
TEST(FlashAttentionInferTest, TheKernelParameterIsChecked) {
  for (const char* kernel : {"auto", "simt", "tensor_core"}) {
    SCOPED_TRACE(kernel);
    std::unique_ptr<runtime::OperatorImpl> impl = EmulatedOp(
        "attention.flash", "attention", {{"kernel", std::string(kernel)}});
    ASSERT_NE(impl, nullptr);
    for (DLDataType t : {kF32, kBF16}) {
      std::vector<Tensor> in;
      for (const std::vector<int64_t>& shape :
           {std::vector<int64_t>{1, 2, 9, 64},
            std::vector<int64_t>{1, 2, 5, 64},
            std::vector<int64_t>{1, 2, 5, 64}})
        in.push_back(*Tensor::Empty(shape, t, kCuda0));
      in.emplace_back();
      absl::StatusOr<runtime::OperatorImpl::InferResult> r =
          impl->Infer(in, *impl->Attrs({}));
      const bool ok =
          std::string(kernel) != "tensor_core" ||
          (cuda::kFlashTensorCoreBuilt && llmsys_dtype_equal(t, kBF16));
      EXPECT_EQ(r.ok(), ok) << r.status();
      if (!r.ok()) {
        EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
        EXPECT_NE(r.status().message().find("tensor_core"), std::string::npos)
            << r.status();
      }
    }
  }
}

// ---- values against the reference semantics ----

using Problem = AttentionProblem;
using Result = AttentionResult;

Vec Random(int64_t n, uint32_t seed, double lo = -1.0, double hi = 1.0) {
  return RandomUniform(n, seed, lo, hi);
}

// Runs attention.flash forward and backward on the emulated device; the
// inputs it used (after rounding to `dtype`) come back in q, k, v, g.
// `needs` says which of q, k, v get a gradient.
Result RunFlash(const Problem& s, DLDataType dtype, DLDataType mask_dtype,
                Vec* q, Vec* k, Vec* v, Vec* g,
                std::vector<bool> needs = {true, true, true},
                const std::string& kernel = "auto") {
  return RunAttention("attention.flash", {{"kernel", kernel}}, s, dtype,
                      mask_dtype, q, k, v, g, needs);
}

double Tolerance(DLDataType t) {
  if (llmsys_dtype_equal(t, kF64)) return 1e-12;
  if (llmsys_dtype_equal(t, kF32)) return 2e-5;
  return 3e-2;  // bfloat16 and float16 inputs and outputs
}

// Runs the problem with inputs from `fill` (seeds 1..4, uniform in
// [-1, 1], then edited) and compares every output and gradient.
void Check(const Problem& s, DLDataType dtype, DLDataType mask_dtype = kU8,
           void (*edit)(const Problem&, Vec&, Vec&, Vec&, Vec&) = nullptr,
           const std::string& kernel = "auto") {
  Vec q = Random(s.b * s.h * s.n * s.d, 1),
      k = Random(s.b * s.h * s.m * s.d, 2),
      v = Random(s.b * s.h * s.m * s.dv, 3),
      g = Random(s.b * s.h * s.n * s.dv, 4);
  if (edit != nullptr) edit(s, q, k, v, g);
  const Result got = RunFlash(s, dtype, mask_dtype, &q, &k, &v, &g,
                              {true, true, true}, kernel);
  // The backward recomputes P from the saved lse.
  const Result want = AttentionReference(s, q, k, v, g, &got.lse);
  const Result exact = AttentionReference(s, q, k, v, g);
  const double tol = Tolerance(dtype);
  ExpectNear(got.out, exact.out, tol, "out");
  // A float32 lse of 16-bit inputs: float32 accuracy, not the inputs'.
  ExpectNear(got.lse, exact.lse, dtype.bits == 16 ? 1e-4 : tol, "lse");
  ExpectNear(got.dq, want.dq, tol, "dq");
  ExpectNear(got.dk, want.dk, tol, "dk");
  ExpectNear(got.dv, want.dv, tol, "dv");
}

// 70 queries and 100 keys: two row tiles and two or four key tiles, each
// side ragged.
TEST(FlashAttentionTest, EveryDtypeOverSeveralRaggedTiles) {
  for (DLDataType t : {kF64, kF32, kBF16, kF16}) {
    SCOPED_TRACE(tensor::DTypeName(t));
    Check({.b = 2, .h = 2, .n = 70, .m = 100, .d = 16, .dv = 24}, t);
  }
}

TEST(FlashAttentionTest, HeadSizesFrom1To128) {
  for (auto [d, dv] : {std::pair<int64_t, int64_t>{64, 64},
                       {128, 128},
                       {80, 48},
                       {1, 3},
                       {33, 128}}) {
    SCOPED_TRACE("D " + std::to_string(d) + " Dv " + std::to_string(dv));
    const Problem s{.b = 1, .h = 2, .n = 67, .m = 45, .d = d, .dv = dv};
    Check(s, kF32);
    Check(s, kF64);
  }
  Check({.b = 1, .h = 1, .n = 40, .m = 70, .d = 128, .dv = 128}, kBF16);
}

TEST(FlashAttentionTest, CausalWithMoreQueriesOrMoreKeysAndAScale) {
  for (auto [n, m] :
       {std::pair<int64_t, int64_t>{100, 30}, {30, 100}, {129, 129}}) {
    SCOPED_TRACE("N " + std::to_string(n) + " M " + std::to_string(m));
    Problem s{.b = 1, .h = 2, .n = n, .m = m, .d = 8, .dv = 8, .causal = true};
    Check(s, kF32);
    s.scale = 0.7;
    Check(s, kF64);
  }
}

TEST(FlashAttentionTest, PaddingMasksOfEveryDtypeAndAFullyMaskedBatch) {
  // Batch 1 masks every key: its rows give out 0, lse -inf, no gradient.
  Problem s{.b = 2, .h = 2, .n = 40, .m = 53, .d = 8, .dv = 5};
  s.mask.assign(2 * 53, 0);
  for (int64_t m = 0; m < 53; ++m) {
    s.mask[m] = m % 5 == 3 || m > 40;
    s.mask[53 + m] = 1;
  }
  for (bool causal : {false, true}) {
    s.causal = causal;
    SCOPED_TRACE(causal ? "causal" : "not causal");
    for (DLDataType t : {kF64, kF32, kBF16}) {
      SCOPED_TRACE(tensor::DTypeName(t));
      Check(s, t);
    }
    for (DLDataType mt : {kI32, tensor::kI64, kF32, kF64}) {
      SCOPED_TRACE(std::string("mask ") +
                   (mt.code == kDLFloat ? "float" : "int") +
                   std::to_string(mt.bits));
      Check(s, kF64, mt);
    }
  }
  Vec q = Random(2 * 2 * 40 * 8, 1), k = Random(2 * 2 * 53 * 8, 2),
      v = Random(2 * 2 * 53 * 5, 3), g = Random(2 * 2 * 40 * 5, 4);
  const Result r = RunFlash(s, kF32, kU8, &q, &k, &v, &g);
  ASSERT_EQ(r.lse.size(), 160u);
  for (int64_t i = 80; i < 160; ++i) EXPECT_EQ(r.lse[i], -kInf) << i;
  for (int64_t i = 80 * 5; i < 160 * 5; ++i) EXPECT_EQ(r.out[i], 0.0) << i;
  for (int64_t i = 80 * 8; i < 160 * 8; ++i) EXPECT_EQ(r.dq[i], 0.0) << i;
}

TEST(FlashAttentionTest, DropoutKeepsWhatTheRandomStreamSays) {
  Problem s{.b = 2, .h = 2, .n = 50, .m = 70, .d = 8, .dv = 8};
  s.p = 0.3;
  s.seed = 1234;
  s.offset = 77;
  s.causal = true;
  s.mask.assign(2 * 70, 0);
  s.mask[3] = s.mask[70 + 65] = 1;
  for (DLDataType t : {kF64, kF32, kBF16, kF16}) {
    SCOPED_TRACE(tensor::DTypeName(t));
    Check(s, t);
  }
  s.p = 1.0;  // everything dropped: zeros, finite gradients
  Check(s, kF64);
}

// A NaN reaches exactly the outputs and gradients the reference's does:
// a NaN key or value those rows see, not one that is padding or in their
// future; a NaN query only its row; a NaN incoming gradient its row's
// share.
using Edit = void (*)(const Problem&, Vec&, Vec&, Vec&, Vec&);
const Edit kNanEdits[] = {
    [](const Problem& s, Vec&, Vec& k, Vec&, Vec&) {
      k[(s.m / 2) * s.d + 1] = kNan;  // key 50
    },
    [](const Problem& s, Vec&, Vec&, Vec& v, Vec&) {
      v[(s.m / 2 + 3) * s.dv] = kNan;  // value 53
    },
    [](const Problem& s, Vec& q, Vec&, Vec&, Vec&) {
      q[(s.n / 3) * s.d] = kNan;  // query 23
    },
    [](const Problem& s, Vec&, Vec&, Vec&, Vec& g) {
      g[(s.n / 2) * s.dv + 2] = kNan;  // gradient row 35
    },
    [](const Problem& s, Vec&, Vec& k, Vec& v, Vec&) {
      for (int64_t m = 0; m < s.m; ++m)  // padded keys and values
        if (!s.mask.empty() && s.mask[m] != 0) k[m * s.d] = v[m * s.dv] = kNan;
    },
};

TEST(FlashAttentionTest, NaNsReachOnlyWhatTheReferenceReaches) {
  for (bool causal : {false, true}) {
    for (bool padded : {false, true}) {
      Problem s{.b = 1, .h = 1, .n = 70, .m = 100, .d = 8, .dv = 8};
      s.causal = causal;
      if (padded) {
        s.mask.assign(100, 0);
        for (int64_t m : {5, 50, 53, 60, 63, 64, 99}) s.mask[m] = 1;
      }
      for (size_t e = 0; e < std::size(kNanEdits); ++e) {
        SCOPED_TRACE(std::string(causal ? "causal" : "not causal") +
                     (padded ? " padded" : "") + " edit " + std::to_string(e));
        Check(s, kF32, kU8, kNanEdits[e]);
      }
    }
  }
}

// The tensor-core kernels too, except for what sits at a causally masked
// position of a tile they compute (a future key or value, the query or
// incoming gradient of a row that does not see a key of the tile): one
// product covers the whole tile, so that NaN meets an exact 0 and gives NaN
// there, as in PyTorch's kernels (the row it belongs to is NaN anyway).
TEST(FlashAttentionTest, TheTensorCoreKernelsCarryNaNsLikeTheReference) {
  for (bool causal : {false, true}) {
    for (bool padded : {false, true}) {
      Problem s{.b = 1, .h = 1, .n = 70, .m = 100, .d = 64, .dv = 64};
      s.causal = causal;
      if (padded) {
        s.mask.assign(100, 0);
        for (int64_t m : {5, 50, 53, 60, 63, 64, 99}) s.mask[m] = 1;
      }
      for (size_t e = 0; e < std::size(kNanEdits); ++e) {
        if (causal && e != 4) continue;  // NaNs in the diagonal tiles
        SCOPED_TRACE(std::string(causal ? "causal" : "not causal") +
                     (padded ? " padded" : "") + " edit " + std::to_string(e));
        Check(s, kBF16, kU8, kNanEdits[e]);
      }
    }
  }
}

// bfloat16 and float16 with D = Dv = 64 or 128 run on the tensor-core
// kernels unless kernel = 'simt'; both match the reference on ragged tiles,
// causal or not, with padding and dropout.
TEST(FlashAttentionTest, TheTensorCoreAndSimtKernelsBothMatch) {
  struct Case {
    const char* kernel;
    DLDataType t;
    int64_t d;
  };
  for (const Case& c : {Case{"auto", kBF16, 64}, Case{"auto", kBF16, 128},
                        Case{"tensor_core", kF16, 64}, Case{"simt", kBF16, 64},
                        Case{"simt", kF16, 128}}) {
    for (bool causal : {false, true}) {
      SCOPED_TRACE(std::string(c.kernel) + " " + tensor::DTypeName(c.t) +
                   " D " + std::to_string(c.d) + (causal ? " causal" : ""));
      Problem s{.b = 2, .h = 1, .n = 70, .m = 100, .d = c.d, .dv = c.d};
      s.causal = causal;
      Check(s, c.t, kU8, nullptr, c.kernel);
      s.mask.assign(2 * 100, 0);
      for (int64_t m : {0, 7, 63, 64, 99}) s.mask[m] = 1;
      for (int64_t m = 60; m < 100; ++m) s.mask[100 + m] = 1;
      s.p = 0.25;
      s.seed = 5;
      s.offset = 11;
      Check(s, c.t, kU8, nullptr, c.kernel);
    }
  }
  // More queries than keys, a single partial tile, and no keys.
  for (auto [n, m] : {std::pair<int64_t, int64_t>{130, 30}, {5, 3}, {3, 0}}) {
    SCOPED_TRACE("N " + std::to_string(n) + " M " + std::to_string(m));
    Check({.b = 1, .h = 2, .n = n, .m = m, .d = 64, .dv = 64, .causal = true},
          kBF16);
  }
}

TEST(FlashAttentionTest, NoKeysGiveZerosAndMinusInfinity) {
  Problem s{.b = 1, .h = 2, .n = 3, .m = 0, .d = 4, .dv = 2};
  Vec q = Random(2 * 3 * 4, 1), k, v, g = Random(2 * 3 * 2, 4);
  const Result r = RunFlash(s, kF32, kU8, &q, &k, &v, &g);
  ASSERT_EQ(r.out.size(), 12u);
  for (double x : r.out) EXPECT_EQ(x, 0.0);
  for (double x : r.lse) EXPECT_EQ(x, -kInf);
  for (double x : r.dq) EXPECT_EQ(x, 0.0);
}

TEST(FlashAttentionTest, NoQueriesGiveZeroKeyGradients) {
  Problem s{.b = 1, .h = 2, .n = 0, .m = 5, .d = 4, .dv = 2};
  Vec q, k = Random(2 * 5 * 4, 2), v = Random(2 * 5 * 2, 3), g;
  const Result r = RunFlash(s, kF32, kU8, &q, &k, &v, &g);
  ASSERT_EQ(r.dk.size(), 40u);
  for (double x : r.dk) EXPECT_EQ(x, 0.0);
  for (double x : r.dv) EXPECT_EQ(x, 0.0);
}

TEST(FlashAttentionTest, OnlyTheGradientsAskedForAreWritten) {
  const Problem s{
      .b = 1, .h = 2, .n = 20, .m = 30, .d = 8, .dv = 8, .causal = true};
  for (const std::vector<bool>& needs : {std::vector<bool>{true, false, false},
                                         {false, true, false},
                                         {false, false, true},
                                         {false, true, true}}) {
    Vec q = Random(2 * 20 * 8, 1), k = Random(2 * 30 * 8, 2),
        v = Random(2 * 30 * 8, 3), g = Random(2 * 20 * 8, 4);
    const Result got = RunFlash(s, kF64, kU8, &q, &k, &v, &g, needs);
    const Result want = AttentionReference(s, q, k, v, g);
    if (needs[0]) ExpectNear(got.dq, want.dq, 1e-12, "dq");
    if (needs[1]) ExpectNear(got.dk, want.dk, 1e-12, "dk");
    if (needs[2]) ExpectNear(got.dv, want.dv, 1e-12, "dv");
  }
}

TEST(FlashAttentionTest, RunsAreBitForBitTheSame) {
  const Problem s{.b = 2,
                  .h = 1,
                  .n = 70,
                  .m = 90,
                  .d = 16,
                  .dv = 16,
                  .causal = true,
                  .p = 0.2,
                  .seed = 9};
  Vec q = Random(2 * 70 * 16, 1), k = Random(2 * 90 * 16, 2),
      v = Random(2 * 90 * 16, 3), g = Random(2 * 70 * 16, 4);
  const Result a = RunFlash(s, kF32, kU8, &q, &k, &v, &g);
  const Result b = RunFlash(s, kF32, kU8, &q, &k, &v, &g);
  EXPECT_EQ(a.out, b.out);
  EXPECT_EQ(a.lse, b.lse);
  EXPECT_EQ(a.dq, b.dq);
  EXPECT_EQ(a.dk, b.dk);
  EXPECT_EQ(a.dv, b.dv);
}

TEST(FlashAttentionTest, AZeroIncomingGradientGivesZeroGradients) {
  std::unique_ptr<runtime::OperatorImpl> impl =
      EmulatedOp("attention.flash", "attention");
  ASSERT_NE(impl, nullptr);
  const Tensor q = OnDevice({1, 1, 2, 3}, Random(6, 1), kF32);
  const Tensor k = OnDevice({1, 1, 4, 3}, Random(12, 2), kF32);
  const Tensor v = OnDevice({1, 1, 4, 2}, Random(8, 3), kF32);
  const Tensor mask = OnDevice({1, 4}, {0, 1, 0, 0}, kF32);
  const runtime::ParamPack attrs = *impl->Attrs({});
  runtime::CallOptions options;
  options.poison = true;
  const std::vector<Tensor> inputs = {q, k, v, mask};
  const std::vector<runtime::TensorMeta> meta = {{true, q.shape(), kF32},
                                                 {true, k.shape(), kF32},
                                                 {true, v.shape(), kF32},
                                                 {true, mask.shape(), kF32}};
  absl::StatusOr<std::vector<Tensor>> grads =
      impl->Backward(inputs, meta, attrs, options, {}, {Tensor(), Tensor()},
                     {true, true, true, true});
  ASSERT_TRUE(grads.ok()) << grads.status();
  for (int i = 0; i < 4; ++i)
    for (double x : (*grads)[i].ToDoubles()) EXPECT_EQ(x, 0.0);
}

}  // namespace
}  // namespace llmsys::cuda_test
