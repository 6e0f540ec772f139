// plugins/cuda/common.h — what the llmsys.cuda plugin's host code shares:
// the call's stream and cuBLAS(Lt) handles, CUDA errors turned into
// failures that name the op, the call and the file and line, and the dtype
// tag for the launchers in cuda/.
//
// The plugin's .cc files do only host work: they check arguments (with the
// reference's helpers, which accept bfloat16 and float16 on a GPU), pick
// the launch, and call a launcher from cuda/*.h on the call's stream. They
// never touch tensor memory (it is on the GPU) and never synchronize: the
// host reads results through its own copies on the same stream.
//
//   const DType t = DTypeOf(call, x->dtype);
//   LLMSYS_CUDA_CHECK(call, LaunchNeg(t, in, out, n, Stream(call)));
//
// Thread-safety: as the ABI says for operators; nothing here keeps state
// except the per-device attribute cache (thread-safe).
#ifndef LLMSYS_PLUGINS_CUDA_COMMON_H_
#define LLMSYS_PLUGINS_CUDA_COMMON_H_

#include <cuda_runtime_api.h>

#include <string>

#include "cuda/launch.h"
#include "llmsys/sdk.hpp"
#include "plugins/operators/reference/common.h"

namespace llmsys::cuda {

using reference::Arg;
using reference::ArgFail;
using reference::BroadcastShape;
using reference::CheckNormArgs;
using reference::Describe;
using reference::DropoutP;
using reference::FloatArg;
using reference::IndexArg;
using reference::KeptShape;
using reference::Lanes;
using reference::LanesOf;
using reference::MaskArg;
using reference::NormDim;
using reference::Numel;
using reference::OptionalArg;
using reference::OutShape;
using reference::ReducedDims;
using reference::RequireSameDtype;
using reference::Shape;
using reference::ShapeOf;
using reference::SpecOf;
using sdk::Fail;

// The call's stream; fails when the host gave none (a CPU context, or a
// host that does not run CUDA): kernels never run on the default stream.
inline cudaStream_t Stream(const llmsys_op_call_t& call) {
  if (call.ctx == nullptr || call.ctx->stream == nullptr)
    Fail(LLMSYS_STATUS_FAILED_PRECONDITION,
         std::string(call.op) +
             ": the host passed no CUDA stream (llmsys.cuda runs only on "
             "a CUDA device with a host that owns its streams)");
  return static_cast<cudaStream_t>(call.ctx->stream);
}

// Fails INTERNAL with "<op>: CUDA error <name> (<text>) in <what> at
// <file>:<line>" when `e` is not cudaSuccess. Use LLMSYS_CUDA_CHECK.
inline void CheckCuda(const char* op, cudaError_t e, const char* what,
                      const char* file, int line) {
  if (e == cudaSuccess) return;
  Fail(e == cudaErrorMemoryAllocation ? LLMSYS_STATUS_RESOURCE_EXHAUSTED
                                      : LLMSYS_STATUS_INTERNAL,
       std::string(op) + ": CUDA error " + cudaGetErrorName(e) + " (" +
           cudaGetErrorString(e) + ") in " + what + " at " + file + ":" +
           std::to_string(line));
}
#define LLMSYS_CUDA_CHECK(call, expr) \
  ::llmsys::cuda::CheckCuda((call).op, (expr), #expr, __FILE__, __LINE__)

// The launcher tag of a float dtype the reference's FloatArg accepted.
inline DType DTypeOf(const llmsys_op_call_t& call, DLDataType t) {
  if (t.lanes == 1 && t.code == kDLFloat && t.bits == 32) return DType::kF32;
  if (t.lanes == 1 && t.code == kDLFloat && t.bits == 64) return DType::kF64;
  if (t.lanes == 1 && t.code == kDLBfloat && t.bits == 16) return DType::kBF16;
  if (t.lanes == 1 && t.code == kDLFloat && t.bits == 16) return DType::kF16;
  ArgFail(call,
          "expected a float dtype (float32, float64, bfloat16, "
          "float16), got " +
              reference::DtypeName(t));
}

// The component registrations, one per op family (one .cc file each).
void RegisterElementwise(sdk::Registry& registry);
void RegisterReductions(sdk::Registry& registry);
void RegisterEmbedding(sdk::Registry& registry);
void RegisterNorms(sdk::Registry& registry);
void RegisterSoftmax(sdk::Registry& registry);
void RegisterDropout(sdk::Registry& registry);
void RegisterMatmul(sdk::Registry& registry);
void RegisterSimtMatmul(sdk::Registry& registry);
void RegisterAttention(sdk::Registry& registry);
void RegisterFlashAttention(sdk::Registry& registry);
void RegisterAdamW(sdk::Registry& registry);

}  // namespace llmsys::cuda

#endif  // LLMSYS_PLUGINS_CUDA_COMMON_H_
