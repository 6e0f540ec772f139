// llmsys.cpu: fast CPU implementations of the ops a GPT trains with —
// matmul and attention on OpenBLAS GEMMs, fused norms, softmaxes, losses
// and GELU in loops the compiler vectorizes, and the elementwise ops and
// reductions with fast paths for the shapes a model uses (same shape, bias
// rows, leading-dim sums), and a row-wise contiguous copy. Every component has
// priority 100, so it replaces the reference unless the experiment chooses
// otherwise, except attention.flash (tiled, flash_attention.cc) at 90 and
// attention.materialized (the memory baseline) at 10, chosen only by name;
// the conformance suite checks each against the reference.
//
// OpenBLAS picks its kernels when it loads, from OPENBLAS_CORETYPE or its
// own CPU detection; Debian's 0.3.21 does not know recent Xeons and falls
// back to "Prescott" (SSE3), 4-5x slower. The host must set
// OPENBLAS_CORETYPE (SkylakeX with AVX-512, Haswell with AVX2) before it
// loads this plugin; init logs a warning when the core is a slow one on a
// CPU that has better.
#include "plugins/operators/cpu/common.h"

namespace {

void CheckBlasCore() {
  const std::string core = llmsys::cpu::BlasCore();
#if defined(__x86_64__) && defined(__GNUC__)
  __builtin_cpu_init();
  const bool avx512 = __builtin_cpu_supports("avx512f") &&
                      __builtin_cpu_supports("avx512bw") &&
                      __builtin_cpu_supports("avx512vl");
  const bool avx2 =
      __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  const bool slow_core = core == "Prescott" || core == "Core2" ||
                         core == "Nehalem" || core == "Sandybridge" ||
                         core == "unknown";
  if ((avx512 || avx2) && slow_core)
    llmsys::sdk::Log(
        LLMSYS_LOG_WARNING,
        "OpenBLAS runs its '" + core + "' kernels on a CPU with " +
            (avx512 ? "AVX-512" : "AVX2") +
            ": GEMMs are several times slower than they could be. Set "
            "OPENBLAS_CORETYPE=" +
            (avx512 ? "SkylakeX" : "Haswell") +
            " in the environment before the process starts (or before the "
            "host loads any plugin).");
#endif
}

}  // namespace

LLMSYS_PLUGIN("llmsys.cpu", "1.0.0",
              "Fast CPU operators: OpenBLAS matmul and attention, fused "
              "norms, softmaxes, cross-entropy and GELU",
              "MIT") {
  CheckBlasCore();
  llmsys::cpu::RegisterMatmul(registry);
  llmsys::cpu::RegisterElementwise(registry);
  llmsys::cpu::RegisterReductions(registry);
  llmsys::cpu::RegisterNorms(registry);
  llmsys::cpu::RegisterSoftmax(registry);
  llmsys::cpu::RegisterEmbedding(registry);
  llmsys::cpu::RegisterDropout(registry);
  llmsys::cpu::RegisterAttention(registry);
  llmsys::cpu::RegisterFlashAttention(registry);
  llmsys::cpu::RegisterContiguous(registry);
}
