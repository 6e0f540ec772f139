/* llmsys/tensor.h — tensors at the ABI are DLPack (dlpack/dlpack.h).
 *
 * Operators, optimizers and samplers receive borrowed DLTensor views: data,
 * device, ndim, dtype, shape, strides (NULL means compact row-major) and
 * byte offset. The host allocates every output after asking the operator
 * for the output specs (llmsys_tensor_spec_t); nothing allocated on one side
 * is freed on the other.
 *
 * Usage:
 *   int64_t n = llmsys_tensor_numel(x);
 *   const float* p = (const float*)llmsys_tensor_data(x);
 *
 * Thread-safety: the helpers are pure. Ownership: a DLTensor passed into a
 * plugin function is borrowed for that call only; do not keep the pointer,
 * its shape or its data after returning. */
#ifndef LLMSYS_TENSOR_H_
#define LLMSYS_TENSOR_H_

#include <dlpack/dlpack.h>
#include <stddef.h>
#include <stdint.h>

/* The most dimensions a tensor spec can describe. */
#define LLMSYS_MAX_NDIM 8

/* The shape and dtype of a tensor the host will allocate. Frozen: used in
 * arrays, never grows. */
typedef struct llmsys_tensor_spec {
  int32_t ndim;
  DLDataType dtype;
  int64_t shape[LLMSYS_MAX_NDIM];
} llmsys_tensor_spec_t;

/* Number of elements of `t` (1 for a 0-d tensor). */
static inline int64_t llmsys_tensor_numel(const DLTensor* t) {
  int64_t n = 1;
  int32_t i;
  for (i = 0; i < t->ndim; ++i) n *= t->shape[i];
  return n;
}

/* Address of the first element (data plus byte_offset). */
static inline void* llmsys_tensor_data(const DLTensor* t) {
  return (void*)((char*)t->data + t->byte_offset);
}

/* Non-zero when `t` is compact row-major (strides NULL or matching). */
static inline int llmsys_tensor_is_contiguous(const DLTensor* t) {
  int64_t expected = 1;
  int32_t i;
  if (t->strides == NULL) return 1;
  for (i = t->ndim - 1; i >= 0; --i) {
    if (t->shape[i] != 1 && t->strides[i] != expected) return 0;
    expected *= t->shape[i];
  }
  return 1;
}

/* Convenience dtype constructors. */
static inline DLDataType llmsys_dtype(uint8_t code, uint8_t bits) {
  DLDataType d;
  d.code = code;
  d.bits = bits;
  d.lanes = 1;
  return d;
}
#define LLMSYS_DTYPE_F32 llmsys_dtype(kDLFloat, 32)
#define LLMSYS_DTYPE_F64 llmsys_dtype(kDLFloat, 64)
#define LLMSYS_DTYPE_F16 llmsys_dtype(kDLFloat, 16)
#define LLMSYS_DTYPE_BF16 llmsys_dtype(kDLBfloat, 16)
#define LLMSYS_DTYPE_I32 llmsys_dtype(kDLInt, 32)
#define LLMSYS_DTYPE_I64 llmsys_dtype(kDLInt, 64)
/* Masks and other booleans: one byte, 0 false, 1 true. */
#define LLMSYS_DTYPE_U8 llmsys_dtype(kDLUInt, 8)

static inline int llmsys_dtype_equal(DLDataType a, DLDataType b) {
  return a.code == b.code && a.bits == b.bits && a.lanes == b.lanes;
}

#endif /* LLMSYS_TENSOR_H_ */
