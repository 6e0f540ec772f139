// cuda/rows.h — the launch plan of the row kernels (norms.cu, softmax.cu):
// kernels that reduce each contiguous row of `cols` elements and then
// rewrite it (layer_norm, rms_norm, softmax, log_softmax, cross_entropy).
//
// One warp per row for short rows (kRowWarpsPerBlock rows per block), one
// block per row for long ones. A row of at most RowCacheLimit elements
// is read once into registers (`cached`); a longer one is read again from
// global memory (L2) for each pass. Loads are 16-byte vectors when every
// row starts 16-byte aligned (the launcher checks the pointers and the row
// size at run time), single elements otherwise.
//
//   const rowops::RowPlan p =
//       rowops::PlanRows(rows, cols, DTypeBytes(t), aligned, /*arrays=*/1);
//
// Plain C++ (no CUDA syntax), so that CPU-side tests check the plans;
// namespace llmsys::cuda::rowops.
// Thread-safety: pure functions.
#ifndef LLMSYS_CUDA_ROWS_H_
#define LLMSYS_CUDA_ROWS_H_

#include <algorithm>
#include <cstdint>

namespace llmsys::cuda::rowops {

// The largest block of a row kernel. Every row kernel is compiled with
// __launch_bounds__(kRowMaxThreads, 1): at most 64 registers, and ptxas
// does not squeeze to 32 (and spill) to fit two such blocks per SM.
inline constexpr int kRowMaxThreads = 1024;
// Rows per block (one per warp) when a warp covers a row.
inline constexpr int kRowWarpsPerBlock = 4;
// The most blocks a row launch uses; the kernels loop over the rest.
inline constexpr int64_t kRowMaxBlocks = int64_t{1} << 21;

// The most elements one thread of a row kernel holds in registers, for a
// dtype of `dtype_bytes`, kernels that hold `arrays` row arrays (1:
// forward passes; 2: softmax backward's y and g; 4: the norms' backward x,
// g and two parameter-gradient sums) and 16-byte vector loads (`vec`) or
// single-element ones (each with its own address: fewer fit). Chosen so
// that the kernels fit in 64 registers (1024 threads per block) without
// spilling; a multiple of RowVecElems when `vec`.
constexpr int RowCacheElems(int dtype_bytes, int arrays, bool vec) {
  if (arrays <= 1)
    return vec ? (dtype_bytes == 8 ? 8 : 16) : (dtype_bytes == 8 ? 4 : 8);
  if (arrays == 2) return vec ? (dtype_bytes == 8 ? 4 : 8) : 4;
  return vec ? (dtype_bytes == 8   ? 2
                : dtype_bytes == 4 ? 4
                                   : 8)
             : (dtype_bytes == 8 ? 2 : 4);
}

// Elements per 16-byte vector load.
constexpr int RowVecElems(int dtype_bytes) { return 16 / dtype_bytes; }

// The longest row held in registers: every thread of the largest block
// holds RowCacheElems.
constexpr int64_t RowCacheLimit(int dtype_bytes, int arrays, bool vec) {
  return int64_t{kRowMaxThreads} * RowCacheElems(dtype_bytes, arrays, vec);
}

struct RowPlan {
  int vec = 1;             // elements per load: RowVecElems or 1
  bool cached = true;      // the row is read once into registers
  bool warp_rows = false;  // one warp per row; else one block per row
  int threads = 32;        // block size, a multiple of 32
  int64_t blocks = 1;      // grid size (the kernels loop over the rows)
};

// The plan for `rows` rows of `cols` elements of `dtype_bytes` each, for
// a kernel holding `arrays` row arrays (RowCacheElems). `aligned`: every
// row start (of every row-shaped operand) is 16-byte aligned, so 16-byte
// vector loads are allowed.
inline RowPlan PlanRows(int64_t rows, int64_t cols, int dtype_bytes,
                        bool aligned, int arrays) {
  RowPlan p;
  p.vec = aligned ? RowVecElems(dtype_bytes) : 1;
  const int elems = RowCacheElems(dtype_bytes, arrays, aligned);
  if (cols <= int64_t{32} * elems) {
    p.warp_rows = true;
    p.threads = 32 * kRowWarpsPerBlock;
    p.blocks = (rows + kRowWarpsPerBlock - 1) / kRowWarpsPerBlock;
  } else if (cols <= int64_t{kRowMaxThreads} * elems) {
    // Every thread full: ceil(cols / elems) threads, a multiple of 32.
    const int64_t t = (cols + elems - 1) / elems;
    p.threads = static_cast<int>((t + 31) / 32 * 32);
    p.blocks = rows;
  } else {
    p.cached = false;
    p.threads = kRowMaxThreads;
    p.blocks = rows;
  }
  p.blocks = std::clamp<int64_t>(p.blocks, 1, kRowMaxBlocks);
  return p;
}

}  // namespace llmsys::cuda::rowops

#endif  // LLMSYS_CUDA_ROWS_H_
