// emu_defines.h (CPU emulation of CUDA) — the CUDA declaration qualifiers
// as plain C++: __global__, __device__, __host__ and friends vanish,
// __shared__ becomes `static thread_local` (the threads of a block run on
// one OS thread, so they share it; blocks on other OS threads get their
// own), __align__(n) an alignment attribute. Part of tests/cuda/emu.
#ifndef LLMSYS_TESTS_CUDA_EMU_EMU_DEFINES_H_
#define LLMSYS_TESTS_CUDA_EMU_EMU_DEFINES_H_

#ifndef LLMSYS_CUDA_EMULATION
#error "the CPU emulation of CUDA needs -DLLMSYS_CUDA_EMULATION"
#endif

#define __global__
#define __device__
#define __host__
#define __constant__
#define __managed__
#define __shared__ static thread_local
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __align__(n) __attribute__((aligned(n)))
#define __grid_constant__
// __restrict__ is a GNU C++ keyword already.

#endif  // LLMSYS_TESTS_CUDA_EMU_EMU_DEFINES_H_
