// plugins/operators/reference/common.h — helpers shared by the reference
// operators (and by llmsys.cpu and llmsys.cuda, which include this header):
// argument checks with messages that name the op, the argument and the
// shapes; dtype dispatch; broadcasting; dims; the output shapes of the ops
// every implementation must agree on.
//
// The reference operators are the oracle every other implementation is
// checked against, so they are written to be read: plain loops over
// row-major indices, a shape comment on every tensor, no tricks. Inputs
// arrive compact row-major (the host copies views first), so element k of
// a tensor is data[k].
//
//   void Forward(const llmsys_op_call_t& call, DLTensor* const* out,
//                uint32_t) override {
//     const DLTensor* x = Arg(call, 0, "x");          // any shape
//     ForFloat(x->dtype, [&]<class T>(T) { ... });
//   }
#ifndef LLMSYS_PLUGINS_OPERATORS_REFERENCE_COMMON_H_
#define LLMSYS_PLUGINS_OPERATORS_REFERENCE_COMMON_H_

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "llmsys/sdk.hpp"

namespace llmsys::reference {

using sdk::Fail;
using sdk::Require;
using Shape = std::vector<int64_t>;

inline Shape ShapeOf(const DLTensor* t) {
  return Shape(t->shape, t->shape + t->ndim);
}

inline int64_t Numel(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) n *= d;
  return n;
}

inline std::string Str(const Shape& s) {
  std::string out = "(";
  for (size_t i = 0; i < s.size(); ++i)
    out += (i ? ", " : "") + std::to_string(s[i]);
  return out + ")";
}

inline std::string DtypeName(DLDataType t) {
  if (t.lanes != 1) return "a vector dtype";
  switch (t.code) {
    case kDLFloat:
      return "float" + std::to_string(t.bits);
    case kDLBfloat:
      return "bfloat" + std::to_string(t.bits);
    case kDLInt:
      return "int" + std::to_string(t.bits);
    case kDLUInt:
      return "uint" + std::to_string(t.bits);
    default:
      return "dtype code " + std::to_string(t.code);
  }
}

// "x float32 (2, 3)"
inline std::string Describe(const char* name, const DLTensor* t) {
  return std::string(name) + " " + DtypeName(t->dtype) + " " + Str(ShapeOf(t));
}

// Throws INVALID_ARGUMENT "<op>: <message>".
[[noreturn]] inline void ArgFail(const llmsys_op_call_t& call,
                                 const std::string& message) {
  Fail(LLMSYS_STATUS_INVALID_ARGUMENT, std::string(call.op) + ": " + message);
}

inline bool IsF32(DLDataType t) {
  return llmsys_dtype_equal(t, LLMSYS_DTYPE_F32);
}
inline bool IsF64(DLDataType t) {
  return llmsys_dtype_equal(t, LLMSYS_DTYPE_F64);
}
inline bool IsIndex(DLDataType t) {
  return llmsys_dtype_equal(t, LLMSYS_DTYPE_I32) ||
         llmsys_dtype_equal(t, LLMSYS_DTYPE_I64);
}
inline bool IsMask(DLDataType t) {
  return IsIndex(t) || IsF32(t) || IsF64(t) ||
         llmsys_dtype_equal(t, LLMSYS_DTYPE_U8);
}

// The device the call's implementation runs on (the CPU when the call has no
// context, as in a unit test that builds the call by hand).
inline DLDeviceType CallDevice(const llmsys_op_call_t& call) {
  return call.ctx != nullptr ? call.ctx->device.device_type : kDLCPU;
}

inline const char* DeviceWord(DLDeviceType type) {
  return type == kDLCPU    ? "the CPU"
         : type == kDLCUDA ? "a CUDA GPU"
                           : "another device";
}

// Input `index` of the call, required present, on the implementation's
// device.
inline const DLTensor* Arg(const llmsys_op_call_t& call, uint32_t index,
                           const char* name) {
  if (index >= call.num_inputs || call.inputs[index] == nullptr)
    ArgFail(call, std::string("input '") + name + "' is missing");
  const DLTensor* t = call.inputs[index];
  const DLDeviceType device = CallDevice(call);
  if (t->device.device_type != device)
    ArgFail(call, std::string("input '") + name + "' is on " +
                      DeviceWord(t->device.device_type) +
                      ", this implementation runs on " + DeviceWord(device));
  return t;
}

// Input `index`, or nullptr when the optional input is absent.
inline const DLTensor* OptionalArg(const llmsys_op_call_t& call, uint32_t index,
                                   const char* name) {
  if (index >= call.num_inputs || call.inputs[index] == nullptr) return nullptr;
  return Arg(call, index, name);
}

inline bool IsHalf(DLDataType t) {
  return llmsys_dtype_equal(t, LLMSYS_DTYPE_BF16) ||
         llmsys_dtype_equal(t, LLMSYS_DTYPE_F16);
}

// A float input: float32 or float64, and on a GPU also bfloat16 or float16
// (CPU implementations compute in float32 or float64 only).
inline const DLTensor* FloatArg(const llmsys_op_call_t& call, uint32_t index,
                                const char* name) {
  const DLTensor* t = Arg(call, index, name);
  const bool half_ok = CallDevice(call) != kDLCPU;
  if (!IsF32(t->dtype) && !IsF64(t->dtype) && !(half_ok && IsHalf(t->dtype)))
    ArgFail(call,
            std::string("input '") + name + "' must be float32" +
                (half_ok ? ", float64, bfloat16 or float16" : " or float64") +
                ", got " + Describe(name, t));
  return t;
}

// Two float inputs with the same dtype.
inline void RequireSameDtype(const llmsys_op_call_t& call, const DLTensor* a,
                             const char* an, const DLTensor* b,
                             const char* bn) {
  if (!llmsys_dtype_equal(a->dtype, b->dtype))
    ArgFail(call, std::string("inputs must have the same dtype, got ") +
                      Describe(an, a) + " and " + Describe(bn, b));
}

// An int32/int64 input.
inline const DLTensor* IndexArg(const llmsys_op_call_t& call, uint32_t index,
                                const char* name) {
  const DLTensor* t = Arg(call, index, name);
  if (!IsIndex(t->dtype))
    ArgFail(call, std::string("input '") + name +
                      "' must be int32 or int64, got " + Describe(name, t));
  return t;
}

// A bool-like input (uint8, int32, int64, float32, float64).
inline const DLTensor* MaskArg(const llmsys_op_call_t& call, uint32_t index,
                               const char* name) {
  const DLTensor* t = Arg(call, index, name);
  if (!IsMask(t->dtype))
    ArgFail(call, std::string("input '") + name +
                      "' must be uint8, int32, int64, float32 or float64, "
                      "got " +
                      Describe(name, t));
  return t;
}

// Element k of an int32/int64 tensor.
inline int64_t IndexAt(const DLTensor* t, int64_t k) {
  if (t->dtype.bits == 32) return sdk::Data<const int32_t>(t)[k];
  return sdk::Data<const int64_t>(t)[k];
}

// Element k of a bool-like tensor: non-zero is true.
inline bool MaskAt(const DLTensor* t, int64_t k) {
  switch (t->dtype.code) {
    case kDLUInt:
      return sdk::Data<const uint8_t>(t)[k] != 0;
    case kDLInt:
      return IndexAt(t, k) != 0;
    default:
      return t->dtype.bits == 32 ? sdk::Data<const float>(t)[k] != 0.0f
                                 : sdk::Data<const double>(t)[k] != 0.0;
  }
}

// Calls f(T{}) with T = float or double, as `dtype` says.
template <class F>
void ForFloat(DLDataType dtype, F&& f) {
  if (IsF32(dtype)) {
    f(float{});
  } else if (IsF64(dtype)) {
    f(double{});
  } else {
    Fail(LLMSYS_STATUS_INVALID_ARGUMENT,
         "this implementation computes in float32 or float64, not " +
             DtypeName(dtype));
  }
}

// Sets every element of a float tensor to zero.
inline void Zero(DLTensor* t) {
  ForFloat(t->dtype, [&]<class T>(T) {
    T* p = sdk::Data<T>(t);
    for (int64_t k = 0; k < llmsys_tensor_numel(t); ++k) p[k] = T(0);
  });
}

// A spec for an output of `dtype` and `shape`.
inline llmsys_tensor_spec_t SpecOf(const llmsys_op_call_t& call,
                                   DLDataType dtype, const Shape& shape) {
  if (shape.size() > LLMSYS_MAX_NDIM)
    ArgFail(call, "output " + Str(shape) + " has more than " +
                      std::to_string(LLMSYS_MAX_NDIM) + " dims");
  llmsys_tensor_spec_t s{};
  s.ndim = static_cast<int32_t>(shape.size());
  s.dtype = dtype;
  for (size_t i = 0; i < shape.size(); ++i) s.shape[i] = shape[i];
  return s;
}

// `dim` in [-ndim, ndim) made non-negative, or INVALID_ARGUMENT naming the
// attribute.
inline int64_t NormDim(const llmsys_op_call_t& call, int64_t dim, int64_t ndim,
                       const char* what) {
  if (dim < -ndim || dim >= ndim)
    ArgFail(call, std::string(what) + " " + std::to_string(dim) +
                      " is out of range for " + std::to_string(ndim) + " dims");
  return dim < 0 ? dim + ndim : dim;
}

// ---- broadcasting (NumPy rules) ----

// The broadcast shape of a and b, or INVALID_ARGUMENT naming both.
inline Shape BroadcastShape(const llmsys_op_call_t& call, const Shape& a,
                            const char* an, const Shape& b, const char* bn) {
  const size_t n = a.size() > b.size() ? a.size() : b.size();
  Shape out(n);
  for (size_t i = 0; i < n; ++i) {
    const int64_t da = i + a.size() < n ? 1 : a[i + a.size() - n];
    const int64_t db = i + b.size() < n ? 1 : b[i + b.size() - n];
    if (da != db && da != 1 && db != 1)
      ArgFail(call, std::string("cannot broadcast ") + an + " " + Str(a) +
                        " with " + bn + " " + Str(b));
    out[i] = da == 1 ? db : da;
  }
  return out;
}

// The broadcast of a and b (NumPy rules), or false.
inline bool TryBroadcast(const Shape& a, const Shape& b, Shape* out) {
  const size_t n = a.size() > b.size() ? a.size() : b.size();
  out->assign(n, 0);
  for (size_t i = 0; i < n; ++i) {
    const int64_t da = i + a.size() < n ? 1 : a[i + a.size() - n];
    const int64_t db = i + b.size() < n ? 1 : b[i + b.size() - n];
    if (da != db && da != 1 && db != 1) return false;
    (*out)[i] = da == 1 ? db : da;
  }
  return true;
}

// For each element of `out` (row-major), the index of the element of a
// tensor of shape `in` broadcast to it.
inline std::vector<int64_t> BroadcastIndex(const Shape& in, const Shape& out) {
  const size_t lead = out.size() - in.size();
  // in's row-major strides, 0 along broadcast dims, aligned to out's dims.
  Shape strides(out.size(), 0);
  int64_t s = 1;
  for (size_t i = in.size(); i-- > 0;) {
    strides[lead + i] = in[i] == 1 ? 0 : s;
    s *= in[i];
  }
  std::vector<int64_t> index(static_cast<size_t>(Numel(out)));
  Shape pos(out.size(), 0);
  for (int64_t k = 0; k < static_cast<int64_t>(index.size()); ++k) {
    int64_t offset = 0;
    for (size_t d = 0; d < out.size(); ++d) offset += pos[d] * strides[d];
    index[k] = offset;
    for (size_t d = out.size(); d-- > 0;) {  // next row-major position
      if (++pos[d] < out[d]) break;
      pos[d] = 0;
    }
  }
  return index;
}

// ---- contiguous and concat (shared with llmsys.cuda) ----

// Bytes per element of a tensor the copying ops accept: any one-lane dtype
// of 1, 2, 4 or 8 bytes.
inline size_t ElementBytes(const llmsys_op_call_t& call,
                           const std::string& name, const DLTensor* t) {
  const DLDataType d = t->dtype;
  if (d.lanes != 1 ||
      (d.bits != 8 && d.bits != 16 && d.bits != 32 && d.bits != 64))
    ArgFail(call, "input '" + name + "' has an element size the op cannot " +
                      "copy: " + Describe(name.c_str(), t));
  return d.bits / 8;
}

// concat's `dim` attribute made non-negative for tensors of `ndim` dims.
inline int64_t ConcatDim(const llmsys_op_call_t& call, int64_t ndim) {
  return NormDim(call, sdk::Params(&call.attrs).Int("dim"), ndim, "dim");
}

// The elements of `t` before `dim` (the product of the sizes) and after it.
inline int64_t SizeBefore(const DLTensor* t, int64_t dim) {
  int64_t n = 1;
  for (int64_t d = 0; d < dim; ++d) n *= t->shape[d];
  return n;
}
inline int64_t SizeAfter(const DLTensor* t, int64_t dim) {
  int64_t n = 1;
  for (int64_t d = dim + 1; d < t->ndim; ++d) n *= t->shape[d];
  return n;
}

// What every concat implementation returns: out (..., n0 + n1 + ..., ...)
// in the items' dtype, after checking that xs is not empty, that its items
// have a copyable dtype, one dtype and at least one dim, and that they
// agree in every dim but dim.
inline std::vector<llmsys_tensor_spec_t> ConcatOutputs(
    const llmsys_op_call_t& call) {
  if (call.num_inputs == 0) ArgFail(call, "xs is empty");
  const DLTensor* x0 = Arg(call, 0, "xs[0]");  // (..., n0, ...)
  ElementBytes(call, "xs[0]", x0);
  if (x0->ndim == 0)
    ArgFail(call, "cannot concatenate 0-d tensors: " + Describe("xs[0]", x0));
  const int64_t dim = ConcatDim(call, x0->ndim);
  Shape out = ShapeOf(x0);  // (..., n0 + n1 + ..., ...)
  for (uint32_t i = 1; i < call.num_inputs; ++i) {
    const std::string name = "xs[" + std::to_string(i) + "]";
    const DLTensor* xi = Arg(call, i, name.c_str());  // (..., ni, ...)
    if (!llmsys_dtype_equal(xi->dtype, x0->dtype))
      ArgFail(call, "inputs must have the same dtype, got " +
                        Describe("xs[0]", x0) + " and " +
                        Describe(name.c_str(), xi));
    bool same = xi->ndim == x0->ndim;
    for (int64_t d = 0; same && d < x0->ndim; ++d)
      same = d == dim || xi->shape[d] == x0->shape[d];
    if (!same)
      ArgFail(call, Describe(name.c_str(), xi) + " does not match " +
                        Describe("xs[0]", x0) + " in every dim but dim " +
                        std::to_string(dim));
    out[dim] += xi->shape[dim];
  }
  return {SpecOf(call, x0->dtype, out)};
}

// ---- where and masked_fill (shared with llmsys.cuda) ----

// What every where implementation returns: out, the broadcast of cond, a
// and b, in a's dtype, after checking cond is bool-like and a and b are
// floats of one dtype.
inline std::vector<llmsys_tensor_spec_t> WhereOutputs(
    const llmsys_op_call_t& call) {
  const DLTensor* cond = MaskArg(call, 0, "cond");  // broadcasts
  const DLTensor* a = FloatArg(call, 1, "a");       // broadcasts
  const DLTensor* b = FloatArg(call, 2, "b");       // broadcasts
  RequireSameDtype(call, a, "a", b, "b");
  Shape ca, out;
  if (!TryBroadcast(ShapeOf(cond), ShapeOf(a), &ca) ||
      !TryBroadcast(ca, ShapeOf(b), &out))
    ArgFail(call, "cannot broadcast together " + Describe("cond", cond) + ", " +
                      Describe("a", a) + " and " + Describe("b", b));
  return {SpecOf(call, a->dtype, out)};
}

// What every masked_fill implementation returns: out in x's shape and
// dtype, after checking the mask is bool-like and broadcasts to x.
inline std::vector<llmsys_tensor_spec_t> MaskedFillOutputs(
    const llmsys_op_call_t& call) {
  const DLTensor* x = FloatArg(call, 0, "x");       // any shape
  const DLTensor* mask = MaskArg(call, 1, "mask");  // broadcasts to x
  Shape both;
  if (!TryBroadcast(ShapeOf(mask), ShapeOf(x), &both) || both != ShapeOf(x))
    ArgFail(call, Describe("mask", mask) + " does not broadcast to " +
                      Describe("x", x));
  return {SpecOf(call, x->dtype, ShapeOf(x))};
}

// ---- per-op shape rules shared with llmsys.cpu and llmsys.cuda ----

// A tensor seen as (outer, len, inner) around softmax's `dim`: element
// (o, j, i) is data[(o * len + j) * inner + i]. A 0-d tensor is (1, 1, 1).
struct Lanes {
  int64_t outer = 1, len = 1, inner = 1;
};

inline Lanes LanesOf(const llmsys_op_call_t& call, const Shape& shape) {
  const int64_t ndim = static_cast<int64_t>(shape.size());
  const int64_t dim = NormDim(call, sdk::Params(&call.attrs).Int("dim"),
                              ndim > 0 ? ndim : 1, "dim");
  Lanes l;
  if (shape.empty()) return l;
  for (int64_t d = 0; d < dim; ++d) l.outer *= shape[d];
  l.len = shape[dim];
  for (int64_t d = dim + 1; d < ndim; ++d) l.inner *= shape[d];
  return l;
}

// Which dims of `x` a reduction (sum, mean, max) reduces, from the
// attribute `dims` (empty means every dim; negative dims count from the
// end; a repeated dim is an error).
inline std::vector<bool> ReducedDims(const llmsys_op_call_t& call,
                                     const Shape& x) {
  const std::vector<int64_t> dims = sdk::Params(&call.attrs).IntList("dims");
  const int64_t ndim = static_cast<int64_t>(x.size());
  std::vector<bool> reduced(x.size(), dims.empty());
  // A 0-d tensor takes dim 0 or -1, as in PyTorch; there is nothing to
  // reduce.
  const int64_t range = ndim == 0 ? 1 : ndim;
  std::vector<bool> seen(static_cast<size_t>(range), false);
  for (int64_t dim : dims) {
    const int64_t d = NormDim(call, dim, range, "dim");
    if (seen[d])
      ArgFail(call, "dim " + std::to_string(dim) + " is repeated in dims for " +
                        "x " + Str(x));
    seen[d] = true;
    if (ndim > 0) reduced[d] = true;
  }
  return reduced;
}

// x's shape with the reduced dims set to 1 (the keepdim shape).
inline Shape KeptShape(const Shape& x, const std::vector<bool>& reduced) {
  Shape kept = x;
  for (size_t d = 0; d < x.size(); ++d)
    if (reduced[d]) kept[d] = 1;
  return kept;
}

// A reduction's output shape: the keepdim shape, or x's shape without the
// reduced dims.
inline Shape OutShape(const Shape& x, const std::vector<bool>& reduced,
                      bool keepdim) {
  if (keepdim) return KeptShape(x, reduced);
  Shape out;
  for (size_t d = 0; d < x.size(); ++d)
    if (!reduced[d]) out.push_back(x[d]);
  return out;
}

// layer_norm and rms_norm: checks x (..., C) and the optional per-channel
// `param` (C), and returns x.shape[:-1], the shape of the saved statistics.
inline Shape CheckNormArgs(const llmsys_op_call_t& call, const DLTensor* x,
                           const DLTensor* param, const char* param_name) {
  const Shape xs = ShapeOf(x);
  if (xs.empty())
    ArgFail(call, "x must have at least one dim (the normalized one), got " +
                      Describe("x", x));
  if (param != nullptr) {
    RequireSameDtype(call, x, "x", param, param_name);
    if (ShapeOf(param) != Shape{xs.back()})
      ArgFail(call, std::string(param_name) + " must have shape (C) = (" +
                        std::to_string(xs.back()) + ") to match " +
                        Describe("x", x) + ", got " +
                        Describe(param_name, param));
  }
  return Shape(xs.begin(), xs.end() - 1);
}

// dropout's `p`, checked to be in [0, 1].
inline double DropoutP(const llmsys_op_call_t& call) {
  const double p = sdk::Params(&call.attrs).Float("p");
  if (!(p >= 0.0 && p <= 1.0))
    ArgFail(call, "p must be in [0, 1], got " + std::to_string(p));
  return p;
}

// ---- shape checks shared with llmsys.cpu ----

// The sizes of one matmul call: op(a) is (..., N, K), op(b) is (..., K, M),
// out is (batch..., N, M), op transposing the last two dims when asked.
struct MatmulDims {
  Shape batch_a, batch_b, batch;  // leading dims of a, b and out
  int64_t n = 0, k = 0, m = 0;
  bool transpose_a = false, transpose_b = false;
};

// Checks a matmul call (INVALID_ARGUMENT naming both shapes and the
// transposes) and returns its sizes.
inline MatmulDims MatmulDimsOf(const llmsys_op_call_t& call, const DLTensor* a,
                               const DLTensor* b) {
  const sdk::Params p(&call.attrs);
  MatmulDims d;
  d.transpose_a = p.Bool("transpose_a");
  d.transpose_b = p.Bool("transpose_b");
  const std::string both =
      Describe("a", a) + " (transpose_a=" + (d.transpose_a ? "true" : "false") +
      ") and " + Describe("b", b) +
      " (transpose_b=" + (d.transpose_b ? "true" : "false") + ")";
  if (a->ndim < 2 || b->ndim < 2)
    ArgFail(call, "both inputs must have at least 2 dims, got " + both);
  const Shape as = ShapeOf(a), bs = ShapeOf(b);
  const size_t ra = as.size(), rb = bs.size();
  d.batch_a = Shape(as.begin(), as.end() - 2);
  d.batch_b = Shape(bs.begin(), bs.end() - 2);
  d.n = d.transpose_a ? as[ra - 1] : as[ra - 2];
  const int64_t ka = d.transpose_a ? as[ra - 2] : as[ra - 1];
  const int64_t kb = d.transpose_b ? bs[rb - 1] : bs[rb - 2];
  d.m = d.transpose_b ? bs[rb - 2] : bs[rb - 1];
  if (ka != kb)
    ArgFail(call, "inner dims differ (K " + std::to_string(ka) + " vs " +
                      std::to_string(kb) + ") for " + both);
  d.k = ka;
  // Leading dims broadcast (NumPy rules).
  const size_t nb =
      d.batch_a.size() > d.batch_b.size() ? d.batch_a.size() : d.batch_b.size();
  d.batch.assign(nb, 0);
  for (size_t i = 0; i < nb; ++i) {
    const size_t la = d.batch_a.size(), lb = d.batch_b.size();
    const int64_t da = i + la < nb ? 1 : d.batch_a[i + la - nb];
    const int64_t db = i + lb < nb ? 1 : d.batch_b[i + lb - nb];
    if (da != db && da != 1 && db != 1)
      ArgFail(call, "batch dims do not broadcast for " + both);
    d.batch[i] = da == 1 ? db : da;
  }
  return d;
}

// What every matmul implementation returns: out (batch..., N, M) in a's
// dtype, after checking a and b are floats of one dtype with matching dims.
inline std::vector<llmsys_tensor_spec_t> MatmulOutputs(
    const llmsys_op_call_t& call) {
  const DLTensor* a = FloatArg(call, 0, "a");  // (..., N, K) or (..., K, N)
  const DLTensor* b = FloatArg(call, 1, "b");  // (..., K, M) or (..., M, K)
  RequireSameDtype(call, a, "a", b, "b");
  const MatmulDims d = MatmulDimsOf(call, a, b);
  Shape out = d.batch;  // (batch..., N, M)
  out.push_back(d.n);
  out.push_back(d.m);
  return {SpecOf(call, a->dtype, out)};
}

// ---- linear (shared with llmsys.cpu) ----

// The sizes of one call: x (rows..., K) as (rows, K), weight (M, K), bias
// (M) or absent.
struct LinearDims {
  Shape out;  // x's shape with its last dim M
  int64_t rows = 0, k = 0, m = 0;
  const DLTensor* bias = nullptr;
};

// Checks a linear call (INVALID_ARGUMENT naming the shapes) and returns its
// sizes.
inline LinearDims LinearDimsOf(const llmsys_op_call_t& call) {
  const DLTensor* x = FloatArg(call, 0, "x");
  const DLTensor* w = FloatArg(call, 1, "weight");
  const DLTensor* bias = OptionalArg(call, 2, "bias");
  RequireSameDtype(call, x, "x", w, "weight");
  const Shape xs = ShapeOf(x), ws = ShapeOf(w);
  if (xs.empty() || ws.size() != 2 || ws[1] != xs.back())
    ArgFail(call, "needs x (..., K) and weight (M, K), got " +
                      Describe("x", x) + " and " + Describe("weight", w));
  LinearDims d;
  d.k = ws[1];
  d.m = ws[0];
  d.rows = Numel(Shape(xs.begin(), xs.end() - 1));
  if (bias != nullptr) {
    RequireSameDtype(call, x, "x", bias, "bias");
    if (ShapeOf(bias) != Shape{d.m})
      ArgFail(call, "bias must be (" + std::to_string(d.m) +
                        "), weight's rows, got " + Describe("bias", bias) +
                        " with " + Describe("weight", w));
  }
  d.bias = bias;
  d.out = xs;
  d.out.back() = d.m;
  return d;
}

// What a linear backward writes: the gradients asked for (null where not)
// and the incoming one. Without an incoming gradient `g` is null and every
// gradient asked for has been set to zero here.
struct LinearGrads {
  DLTensor *x, *weight, *bias;
  const DLTensor* g;
};
inline LinearGrads LinearGradsOf(const llmsys_op_call_t& call,
                                 const DLTensor* const* grad_outputs,
                                 DLTensor* const* grad_inputs) {
  LinearGrads r{grad_inputs[0], grad_inputs[1],
                call.num_inputs > 2 ? grad_inputs[2] : nullptr,
                grad_outputs[0]};
  if (r.g == nullptr)
    for (DLTensor* t : {r.x, r.weight, r.bias})
      if (t != nullptr) Zero(t);
  return r;
}

inline std::vector<llmsys_tensor_spec_t> LinearOutputs(
    const llmsys_op_call_t& call) {
  return {SpecOf(call, call.inputs[0]->dtype, LinearDimsOf(call).out)};
}

// ---- attention (shared with llmsys.cpu) ----

// The sizes of one call: q (B, H, N, D), k (B, H, M, D), v (B, H, M, Dv),
// and its masks.
struct AttentionDims {
  int64_t b, h, n, m, d, dv;
  const DLTensor* mask;  // key_padding_mask (B, M) or nullptr
  bool causal;
};

// dropout_p, checked to be in [0, 1].
inline double AttentionDropoutP(const llmsys_op_call_t& call) {
  const double p = sdk::Params(&call.attrs).Float("dropout_p");
  if (!(p >= 0.0 && p <= 1.0))
    ArgFail(call, "dropout_p must be in [0, 1], got " + std::to_string(p));
  return p;
}

// Checks q (B, H, N, D), k (B, H, M, D), v (B, H, M, Dv) and the optional
// key_padding_mask (B, M); every mismatch fails naming all shapes.
inline AttentionDims CheckAttention(const llmsys_op_call_t& call) {
  const DLTensor* q = FloatArg(call, 0, "q");
  const DLTensor* k = FloatArg(call, 1, "k");
  const DLTensor* v = FloatArg(call, 2, "v");
  const DLTensor* mask = OptionalArg(call, 3, "key_padding_mask");
  if (mask != nullptr) MaskArg(call, 3, "key_padding_mask");
  RequireSameDtype(call, q, "q", k, "k");
  RequireSameDtype(call, q, "q", v, "v");
  const std::string all =
      Describe("q", q) + ", " + Describe("k", k) + ", " + Describe("v", v) +
      (mask != nullptr ? ", " + Describe("key_padding_mask", mask)
                       : std::string());
  if (q->ndim != 4 || k->ndim != 4 || v->ndim != 4)
    ArgFail(call,
            "q, k and v must be 4-d (B, H, N, D), (B, H, M, D), "
            "(B, H, M, Dv), got " +
                all);
  const Shape qs = ShapeOf(q), ks = ShapeOf(k), vs = ShapeOf(v);
  if (ks[0] != qs[0] || vs[0] != qs[0] || ks[1] != qs[1] || vs[1] != qs[1])
    ArgFail(call,
            "q, k and v must agree on B and H (dims 0 and 1), got " + all);
  if (vs[2] != ks[2])
    ArgFail(call, "k and v must agree on M (dim 2), got " + all);
  if (ks[3] != qs[3])
    ArgFail(call, "q and k must agree on D (dim 3), got " + all);
  if (mask != nullptr && ShapeOf(mask) != Shape{qs[0], ks[2]})
    ArgFail(call, "key_padding_mask must have shape (B, M) = " +
                      Str({qs[0], ks[2]}) + ", got " + all);
  AttentionDropoutP(call);
  return {qs[0], qs[1], qs[2], ks[2],
          qs[3], vs[3], mask,  sdk::Params(&call.attrs).Bool("causal")};
}

// What every attention implementation returns: out (B, H, N, Dv) and the
// row log-sum-exp lse (B, H, N), in q's dtype.
inline std::vector<llmsys_tensor_spec_t> AttentionOutputs(
    const llmsys_op_call_t& call) {
  const AttentionDims s = CheckAttention(call);
  const DLDataType dtype = call.inputs[0]->dtype;
  // lse in float32 for 16-bit q: the backward's P = exp(S - lse) needs it
  // to more bits than bfloat16's 8.
  const DLDataType lse = dtype.bits == 16 ? DLDataType{kDLFloat, 32, 1} : dtype;
  return {SpecOf(call, dtype, {s.b, s.h, s.n, s.dv}),
          SpecOf(call, lse, {s.b, s.h, s.n})};
}

// The scale attribute; 0 means 1 / sqrt(D) (1 when D is 0: the scores
// are all 0 then).
inline double AttentionScale(const llmsys_op_call_t& call,
                             const AttentionDims& s) {
  const double scale = sdk::Params(&call.attrs).Float("scale");
  if (scale != 0.0) return scale;
  return s.d > 0 ? 1.0 / std::sqrt(static_cast<double>(s.d)) : 1.0;
}

// A batched matmul and its gradients on a GEMM the caller supplies:
// gemm(ta, tb, rows, cols, inner, A, lda, B, ldb, add, C, ldc) sets
// C (rows, cols) = op(A) op(B), plus C when `add`. Broadcast batches run
// one GEMM each; shared by llmsys.cpu (OpenBLAS) and the ladder's rungs.
template <class T, class Gemm>
void BatchedMatmulForward(const MatmulDims& d, const T* a, const T* b, T* out,
                          Gemm gemm) {
  const int64_t lda = d.transpose_a ? d.n : d.k,
                ldb = d.transpose_b ? d.k : d.m;
  const std::vector<int64_t> ia = BroadcastIndex(d.batch_a, d.batch);
  const std::vector<int64_t> ib = BroadcastIndex(d.batch_b, d.batch);
  for (size_t i = 0; i < ia.size(); ++i)
    gemm(d.transpose_a, d.transpose_b, d.n, d.m, d.k, a + ia[i] * d.n * d.k,
         lda, b + ib[i] * d.k * d.m, ldb, false,
         out + static_cast<int64_t>(i) * d.n * d.m, d.m);
}

// g = dL/dout (batch..., N, M): dop(a) = g op(b)^T and dop(b) = op(a)^T g,
// each written in its input's layout and summed over broadcast batches (the
// first batch that touches a gradient matrix overwrites it, later ones
// add). ga or gb may be null.
template <class T, class Gemm>
void BatchedMatmulBackward(const MatmulDims& d, const T* a, const T* b,
                           const T* g, T* ga, T* gb, Gemm gemm) {
  const int64_t lda = d.transpose_a ? d.n : d.k,
                ldb = d.transpose_b ? d.k : d.m;
  const std::vector<int64_t> ia = BroadcastIndex(d.batch_a, d.batch);
  const std::vector<int64_t> ib = BroadcastIndex(d.batch_b, d.batch);
  // An empty output batch writes nothing; otherwise every matrix of a and
  // b is touched by at least one batch.
  if (ia.empty()) {
    if (ga != nullptr) std::fill(ga, ga + Numel(d.batch_a) * d.n * d.k, T(0));
    if (gb != nullptr) std::fill(gb, gb + Numel(d.batch_b) * d.k * d.m, T(0));
    return;
  }
  std::vector<bool> seen_a(static_cast<size_t>(Numel(d.batch_a)), false);
  std::vector<bool> seen_b(static_cast<size_t>(Numel(d.batch_b)), false);
  for (size_t i = 0; i < ia.size(); ++i) {
    const T* ai = a + ia[i] * d.n * d.k;
    const T* bi = b + ib[i] * d.k * d.m;
    const T* gi = g + static_cast<int64_t>(i) * d.n * d.m;  // (N, M)
    if (ga != nullptr) {
      const bool add = seen_a[static_cast<size_t>(ia[i])];
      seen_a[static_cast<size_t>(ia[i])] = true;
      T* out = ga + ia[i] * d.n * d.k;
      if (!d.transpose_a)  // (N, K) = g op(b)^T
        gemm(false, !d.transpose_b, d.n, d.k, d.m, gi, d.m, bi, ldb, add, out,
             d.k);
      else  // (K, N) = op(b) g^T
        gemm(d.transpose_b, true, d.k, d.n, d.m, bi, ldb, gi, d.m, add, out,
             d.n);
    }
    if (gb != nullptr) {
      const bool add = seen_b[static_cast<size_t>(ib[i])];
      seen_b[static_cast<size_t>(ib[i])] = true;
      T* out = gb + ib[i] * d.k * d.m;
      if (!d.transpose_b)  // (K, M) = op(a)^T g
        gemm(!d.transpose_a, false, d.k, d.m, d.n, ai, lda, gi, d.m, add, out,
             d.m);
      else  // (M, K) = g^T op(a)
        gemm(true, d.transpose_a, d.m, d.k, d.n, gi, d.m, ai, lda, add, out,
             d.k);
    }
  }
}

// Registration, one function per source file (plugin.cc calls them all).
void RegisterElementwise(sdk::Registry& registry);
// The `reduction` attribute of cross_entropy and ctc_loss.
enum class Reduction { kMean, kSum, kNone };

inline Reduction ReductionOf(const llmsys_op_call_t& call) {
  const std::string r = sdk::Params(&call.attrs).String("reduction");
  if (r == "mean") return Reduction::kMean;
  if (r == "sum") return Reduction::kSum;
  if (r == "none") return Reduction::kNone;
  ArgFail(call, "reduction must be 'mean', 'sum' or 'none', got '" + r + "'");
}

// cross_entropy's `label_smoothing`, checked to be in [0, 1].
inline double LabelSmoothingOf(const llmsys_op_call_t& call) {
  const double eps = sdk::Params(&call.attrs).Float("label_smoothing");
  if (!(eps >= 0.0 && eps <= 1.0))
    ArgFail(call,
            "label_smoothing must be in [0, 1], got " + std::to_string(eps));
  return eps;
}

// cross_entropy's targets[p], checked to be ignore_index or a class in
// [0, v).
inline int64_t CheckedTarget(const llmsys_op_call_t& call,
                             const DLTensor* targets, int64_t p, int64_t v,
                             int64_t ignore) {
  const int64_t t = IndexAt(targets, p);
  if (t != ignore && (t < 0 || t >= v))
    ArgFail(call, "target " + std::to_string(t) + " at position " +
                      std::to_string(p) + " (row-major in targets " +
                      Str(ShapeOf(targets)) + ") is out of range [0, " +
                      std::to_string(v) + ") and is not ignore_index " +
                      std::to_string(ignore));
  return t;
}

void RegisterReductions(sdk::Registry& registry);
void RegisterShapeOps(sdk::Registry& registry);
void RegisterMatmul(sdk::Registry& registry);
void RegisterNorms(sdk::Registry& registry);
void RegisterSoftmax(sdk::Registry& registry);
void RegisterDropout(sdk::Registry& registry);
void RegisterAttention(sdk::Registry& registry);
void RegisterCtc(sdk::Registry& registry);

}  // namespace llmsys::reference

#endif  // LLMSYS_PLUGINS_OPERATORS_REFERENCE_COMMON_H_
