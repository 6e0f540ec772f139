// cuda/elementwise.h — the elementwise ops of llmsys.cuda (unary ops, add,
// sub, mul, div with broadcasting, where, masked_fill) and the copies of
// contiguous and concat: launchers and their launch planning as plain C++.
//
// Binary ops take one of three paths (PlanBinary): both operands have the
// output's shape; one is a row (its shape, leading 1s dropped, a suffix of
// the output's) repeated over the leading dims, or a scalar; or the general
// strided walk of cuda/reductions.h (up to 8 dims, sizes and strides passed
// by value). The first two load 16 bytes per thread at a time where every
// pointer allows (PackWidth). Gradients of broadcast operands are summed
// back over the broadcast dims with the deterministic reductions of
// cuda/reductions.h.
//
//   const BinaryPlan plan = PlanBinary(a_shape, b_shape, out_shape);
//   LLMSYS_CUDA_CHECK(call, LaunchBinary(BinaryOp::kAdd, t, a, b, out, plan,
//                                        Stream(call)));
//
// Thread-safety: pure functions; launchers as in cuda/launch.h.
#ifndef LLMSYS_CUDA_ELEMENTWISE_H_
#define LLMSYS_CUDA_ELEMENTWISE_H_

#include <cuda_runtime_api.h>

#include <cstdint>
#include <initializer_list>
#include <vector>

#include "cuda/launch.h"
#include "cuda/reductions.h"

namespace llmsys::cuda {

enum class UnaryOp : int {
  kNeg = 0,
  kExp,
  kLog,
  kPow,  // x^exponent
  kSqrt,
  kTanh,
  kSigmoid,
  kRelu,
  kGeluErf,   // gelu, approximate 'none'
  kGeluTanh,  // gelu, approximate 'tanh'
};

enum class BinaryOp : int { kAdd = 0, kSub, kMul, kDiv };

// The dtype of a bool-like tensor (where's cond, masked_fill's mask):
// non-zero is true.
enum class MaskType : int { kU8 = 0, kI32, kI64, kF32, kF64 };

// Elements per 16-byte load of `t` when every pointer is 16-byte aligned
// and every count in `multiples_of` divides by it, else 1.
inline int PackWidth(DType t, std::initializer_list<const void*> pointers,
                     std::initializer_list<int64_t> multiples_of) {
  const int width = 16 / DTypeBytes(t);
  for (const void* p : pointers)
    if (reinterpret_cast<uintptr_t>(p) % 16 != 0) return 1;
  for (int64_t m : multiples_of)
    if (m % width != 0) return 1;
  return width;
}

// How a binary op's operand sits in the output.
enum class OperandLayout : int {
  kFull = 0,  // the output's elements, one to one
  kRow,       // a row of `len` elements repeated over the leading dims
  kScalar,    // one element
  kGeneral,   // anything else
};

// The layout of an operand of shape `in` in the output `out` (`in`
// broadcasts to `out`); *len is its element count.
inline OperandLayout LayoutOf(const std::vector<int64_t>& in,
                              const std::vector<int64_t>& out, int64_t* len) {
  int64_t n_in = 1, n_out = 1;
  for (int64_t d : in) n_in *= d;
  for (int64_t d : out) n_out *= d;
  *len = n_in;
  // Broadcast-compatible with the same count: the same elements in order.
  if (n_in == n_out) return OperandLayout::kFull;
  if (n_in == 1) return OperandLayout::kScalar;
  size_t first = 0;  // leading 1s dropped
  while (first < in.size() && in[first] == 1) ++first;
  const size_t rest = in.size() - first;
  if (rest > out.size()) return OperandLayout::kGeneral;
  for (size_t i = 0; i < rest; ++i)
    if (in[first + i] != out[out.size() - rest + i])
      return OperandLayout::kGeneral;
  return OperandLayout::kRow;
}

struct BinaryPlan {
  int64_t n = 0;  // output elements
  OperandLayout a = OperandLayout::kFull, b = OperandLayout::kFull;
  int64_t len_a = 0, len_b = 0;
  bool general = false;  // walk `dims` (operand 0 a, 1 b) instead
  StridedDims dims;
};

// The plan of out = f(a, b), `out` the broadcast of a and b.
inline BinaryPlan PlanBinary(const std::vector<int64_t>& a,
                             const std::vector<int64_t>& b,
                             const std::vector<int64_t>& out) {
  BinaryPlan p;
  p.n = 1;
  for (int64_t d : out) p.n *= d;
  p.a = LayoutOf(a, out, &p.len_a);
  p.b = LayoutOf(b, out, &p.len_b);
  p.general = p.a == OperandLayout::kGeneral || p.b == OperandLayout::kGeneral;
  if (p.general)
    p.dims =
        MakeMapDims(out, {BroadcastStrides(a, out), BroadcastStrides(b, out)});
  return p;
}

// The walk that sums a gradient g (out's shape) back to an input of shape
// `in` that broadcasts to `out`, with operands 0 g, 1 a, 2 b (a and b may
// be empty shapes when the op does not read them; their strides are then
// 0).
inline ReduceGeom BroadcastGradGeom(const std::vector<int64_t>& in,
                                    const std::vector<int64_t>& out,
                                    const std::vector<int64_t>* a,
                                    const std::vector<int64_t>* b) {
  std::vector<bool> reduced(out.size(), false);
  const size_t lead = out.size() - in.size();
  for (size_t d = 0; d < out.size(); ++d)
    reduced[d] = d < lead ? out[d] != 1 : (in[d - lead] == 1 && out[d] != 1);
  std::vector<std::vector<int64_t>> strides = {CompactStrides(out)};
  strides.push_back(a != nullptr ? BroadcastStrides(*a, out)
                                 : std::vector<int64_t>(out.size(), 0));
  strides.push_back(b != nullptr ? BroadcastStrides(*b, out)
                                 : std::vector<int64_t>(out.size(), 0));
  return MakeReduceGeom(out, reduced, strides);
}

// Whether a gradient walk (BroadcastGradGeom) is one to one over compact
// operands (g, and a and b when the op reads them): no reduction, so the
// launcher takes the 16-byte pointwise path.
inline bool IsPointwiseGrad(const ReduceGeom& g, bool reads_inputs) {
  if (g.r != 1 || g.kept.n != 1) return false;
  for (int o = 0; o < (reads_inputs ? 3 : 1); ++o)
    if (g.kept.stride[o][0] != 1) return false;
  return true;
}

// ---- unary ops: out (n) = f(x (n)) ----

cudaError_t LaunchUnary(UnaryOp op, DType t, const void* x, void* out,
                        int64_t n, double exponent, cudaStream_t stream);

// gx (n) = g (n) * f'(x (n)) with the reference's formulas; x is not read
// (may be null) for kNeg.
cudaError_t LaunchUnaryBackward(UnaryOp op, DType t, const void* x,
                                const void* g, void* gx, int64_t n,
                                double exponent, cudaStream_t stream);

// ---- binary ops ----

// out = a op b as `plan` says.
cudaError_t LaunchBinary(BinaryOp op, DType t, const void* a, const void* b,
                         void* out, const BinaryPlan& plan,
                         cudaStream_t stream);

// The gradient of input `which` (0 a, 1 b): gin = the sum over `geom`'s
// reduced dims of g * d(op)/d(input) (BroadcastGradGeom; add and sub do
// not read a and b, which may be null). `workspace` holds plan.workspace
// bytes.
cudaError_t LaunchBinaryBackward(BinaryOp op, int which, DType t, const void* g,
                                 const void* a, const void* b, void* gin,
                                 const ReduceGeom& geom, const ReducePlan& plan,
                                 void* workspace, cudaStream_t stream);

// ---- where and masked_fill ----

// out (n) = cond ? a : b over `dims` (operands 0 cond, 1 a, 2 b).
cudaError_t LaunchWhere(DType t, MaskType m, const void* cond, const void* a,
                        const void* b, void* out, const StridedDims& dims,
                        int64_t n, cudaStream_t stream);

// The gradient of a (for_a) or b: the sum over `geom`'s reduced dims of g
// where cond is true (for a) or false (for b); operands 0 g, 1 cond.
cudaError_t LaunchWhereBackward(DType t, MaskType m, bool for_a,
                                const void* cond, const void* g, void* gin,
                                const ReduceGeom& geom, const ReducePlan& plan,
                                void* workspace, cudaStream_t stream);

// out (n) = mask ? value : x over `dims` (x's shape; operands 0 x, 1 mask).
cudaError_t LaunchMaskedFill(DType t, MaskType m, const void* x,
                             const void* mask, void* out,
                             const StridedDims& dims, int64_t n, double value,
                             cudaStream_t stream);

// gx (n) = mask ? 0 : g over `dims` (operands 0 g, 1 mask).
cudaError_t LaunchMaskedFillBackward(DType t, MaskType m, const void* mask,
                                     const void* g, void* gx,
                                     const StridedDims& dims, int64_t n,
                                     cudaStream_t stream);

// ---- copies (any dtype: bytes) ----

// The widest unit (16, 8, 4, 2 or 1 bytes) that divides every address,
// pitch and row length given.
inline int CopyUnit(std::initializer_list<uintptr_t> values) {
  for (int unit : {16, 8, 4, 2}) {
    bool ok = true;
    for (uintptr_t v : values) ok = ok && v % static_cast<uintptr_t>(unit) == 0;
    if (ok) return unit;
  }
  return 1;
}

// rows rows of row_bytes bytes from src (rows src_pitch bytes apart) to dst
// (rows dst_pitch bytes apart); the ranges do not overlap.
cudaError_t LaunchCopy2D(const void* src, int64_t src_pitch, void* dst,
                         int64_t dst_pitch, int64_t rows, int64_t row_bytes,
                         cudaStream_t stream);

}  // namespace llmsys::cuda

#endif  // LLMSYS_CUDA_ELEMENTWISE_H_
