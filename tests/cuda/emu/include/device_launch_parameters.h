// device_launch_parameters.h (CPU emulation of CUDA) — threadIdx, blockIdx,
// blockDim, gridDim and warpSize, which cuda_runtime.h declares. Part of
// tests/cuda/emu.
#ifndef LLMSYS_TESTS_CUDA_EMU_DEVICE_LAUNCH_PARAMETERS_H_
#define LLMSYS_TESTS_CUDA_EMU_DEVICE_LAUNCH_PARAMETERS_H_

#include "cuda_runtime.h"

#endif  // LLMSYS_TESTS_CUDA_EMU_DEVICE_LAUNCH_PARAMETERS_H_
