// llmsys.cuda: the CUDA operators and the fused AdamW, for kDLCUDA. Kernels
// and their launchers live in cuda/ (one file per op family); the files
// here check arguments and launch on the stream the host passes in every
// call. Matmul and linear go through cuBLASLt with the host's handle and
// workspace. init() touches no GPU, so the plugin loads (and its argument
// checks run in the CPU-side tests) on a machine without one.
#include "plugins/cuda/common.h"

LLMSYS_PLUGIN("llmsys.cuda", "1.0.0",
              "CUDA operators (cuBLASLt matmul, fused kernels, flash "
              "attention) and a fused AdamW",
              "MIT") {
  // Each family registers here once its file lands (see CMakeLists.txt).
  llmsys::cuda::RegisterFlashAttention(registry);
  // @register
  llmsys::cuda::RegisterSimtMatmul(registry);
  llmsys::cuda::RegisterElementwise(registry);
  llmsys::cuda::RegisterReductions(registry);
  llmsys::cuda::RegisterEmbedding(registry);
#ifndef LLMSYS_CUDA_EMULATION  // cuBLASLt has no CPU emulation (tests/cuda/emu)
  llmsys::cuda::RegisterMatmul(registry);
#endif
  llmsys::cuda::RegisterAttention(registry);
  llmsys::cuda::RegisterAdamW(registry);
  llmsys::cuda::RegisterNorms(registry);
  llmsys::cuda::RegisterSoftmax(registry);
  llmsys::cuda::RegisterDropout(registry);
}
