// framework/tensor/tensor.h — the host's strided tensor.
//
// A Tensor is a view (shape, strides and offset, in elements) of a Storage
// (bytes on one device, shared and reference counted). Views — View/Reshape,
// Permute, Transpose, Slice, Expand, Unsqueeze, Squeeze — share the storage
// and never copy. Dtypes: float32, float64, int32, int64, uint8 (masks), and
// bfloat16/float16 as storage types for the CUDA path. Host memory is 64-byte
// aligned for SIMD. Every tensor records its device. At the ABI a tensor
// is a DLPack DLTensor (Dl() borrows, ToDLPack/FromDLPack hand ownership).
//
//   LLMSYS_ASSIGN_OR_RETURN(Tensor x, Tensor::Empty({2, 3}, kF32));
//   LLMSYS_ASSIGN_OR_RETURN(Tensor xt, x.Transpose(0, 1));   // a view
//   Tensor c = xt.Contiguous();                               // a copy
//
// Thread-safety: a Tensor is a value; distinct Tensors may be used from
// different threads, even when they share storage, as long as writes to the
// same elements are not concurrent.
#ifndef LLMSYS_FRAMEWORK_TENSOR_TENSOR_H_
#define LLMSYS_FRAMEWORK_TENSOR_TENSOR_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "framework/tensor/device.h"
#include "llmsys/tensor.h"

// Equality of the DLPack value types (global, so that lookup finds them
// wherever DLDataType and DLDevice are compared).
inline bool operator==(DLDataType a, DLDataType b) {
  return a.code == b.code && a.bits == b.bits && a.lanes == b.lanes;
}
inline bool operator==(DLDevice a, DLDevice b) {
  return a.device_type == b.device_type && a.device_id == b.device_id;
}

namespace llmsys::tensor {

using Shape = std::vector<int64_t>;

inline constexpr DLDataType kF32{kDLFloat, 32, 1};
inline constexpr DLDataType kF64{kDLFloat, 64, 1};
inline constexpr DLDataType kF16{kDLFloat, 16, 1};
inline constexpr DLDataType kBF16{kDLBfloat, 16, 1};
inline constexpr DLDataType kI32{kDLInt, 32, 1};
inline constexpr DLDataType kI64{kDLInt, 64, 1};
inline constexpr DLDataType kU8{kDLUInt, 8, 1};
inline constexpr DLDevice kCpu{kDLCPU, 0};

// One of the dtypes above (lanes 1).
bool IsSupportedDType(DLDataType dtype);
bool IsFloatDType(DLDataType dtype);  // float32/64, bfloat16, float16
size_t DTypeSize(DLDataType dtype);   // bytes per element
// "float32", "float64", "bfloat16", "float16", "int32", "int64", "uint8".
std::string DTypeName(DLDataType dtype);
absl::StatusOr<DLDataType> ParseDType(std::string_view name);
std::string DeviceName(DLDevice device);      // "cpu", "cuda:0"
std::string ShapeString(const Shape& shape);  // "(2, 3)"
int64_t Numel(const Shape& shape);
Shape ContiguousStrides(const Shape& shape);
// NumPy broadcasting; the error names both shapes.
absl::StatusOr<Shape> BroadcastShapes(const Shape& a, const Shape& b);
// A dim in [-ndim, ndim) made non-negative; the error names the range.
absl::StatusOr<int64_t> NormalizeDim(int64_t dim, int64_t ndim);

// bfloat16 and float16 conversions (round to nearest even).
uint16_t FloatToBF16(float f);
float BF16ToFloat(uint16_t h);
uint16_t FloatToF16(float f);
float F16ToFloat(uint16_t h);

// Bytes on one device, freed by its deleter when the last Tensor lets go.
// Host memory of the tensors Storage::Allocate made (64-byte rounded):
// what they hold now, and the most they held at once since the process
// started or the last ResetPeakHostTensorMemory(). Memory a plugin
// allocates itself, or that arrives by DLPack, is not counted.
struct HostMemory {
  int64_t current = 0;
  int64_t peak = 0;
};
HostMemory HostTensorMemory();
void ResetPeakHostTensorMemory();

class Storage {
 public:
  // Host memory is 64-byte aligned and uninitialized; other devices'
  // memory comes from their backend (device.h), uninitialized.
  static absl::StatusOr<std::shared_ptr<Storage>> Allocate(size_t bytes,
                                                           DLDevice device);
  // Memory owned elsewhere (DLPack); `deleter` runs in the destructor.
  Storage(void* data, size_t bytes, DLDevice device,
          std::function<void()> deleter);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  void* data() const { return data_; }
  size_t bytes() const { return bytes_; }
  DLDevice device() const { return device_; }

 private:
  void* data_;
  size_t bytes_;
  DLDevice device_;
  std::function<void()> deleter_;
};

class Tensor {
 public:
  Tensor() = default;  // undefined: defined() is false

  static absl::StatusOr<Tensor> Empty(const Shape& shape, DLDataType dtype,
                                      DLDevice device = kCpu);
  static absl::StatusOr<Tensor> Zeros(const Shape& shape, DLDataType dtype,
                                      DLDevice device = kCpu);
  // A CPU tensor holding `values` converted to `dtype`.
  static absl::StatusOr<Tensor> FromDoubles(const Shape& shape,
                                            const std::vector<double>& values,
                                            DLDataType dtype);
  // A scalar (0-d) CPU tensor.
  static Tensor Scalar(double value, DLDataType dtype = kF32);

  bool defined() const { return storage_ != nullptr; }
  const Shape& shape() const { return shape_; }
  const Shape& strides() const { return strides_; }  // in elements
  int64_t offset() const { return offset_; }         // in elements
  DLDataType dtype() const { return dtype_; }
  DLDevice device() const;
  int64_t ndim() const { return static_cast<int64_t>(shape_.size()); }
  int64_t numel() const { return Numel(shape_); }
  size_t element_size() const { return DTypeSize(dtype_); }
  bool is_contiguous() const;
  const std::shared_ptr<Storage>& storage() const { return storage_; }
  // Whether no other tensor (or view) shares this tensor's memory, so it
  // can be written in place without anyone else seeing it.
  bool sole_owner() const {
    return storage_ != nullptr && storage_.use_count() == 1;
  }
  // Address of element (0, ..., 0).
  void* data() const;
  template <class T>
  T* data_as() const {
    return static_cast<T*>(data());
  }

  // Views (no copy). View fails when the strides do not allow it; Reshape
  // then copies, as torch.reshape does. One -1 in a shape is inferred.
  absl::StatusOr<Tensor> View(const Shape& shape) const;
  absl::StatusOr<Tensor> Reshape(const Shape& shape) const;
  absl::StatusOr<Tensor> Permute(const std::vector<int64_t>& dims) const;
  absl::StatusOr<Tensor> Transpose(int64_t dim0, int64_t dim1) const;
  // Elements start, start+step, ... < stop of `dim` (negative start/stop
  // count from the end and are clamped, as in Python).
  absl::StatusOr<Tensor> Slice(int64_t dim, int64_t start, int64_t stop,
                               int64_t step = 1) const;
  // Size-1 dims (and new leading dims) repeat with stride 0; -1 keeps a dim.
  absl::StatusOr<Tensor> Expand(const Shape& shape) const;
  // Any layout over the same storage (torch.as_strided); every element it
  // reaches must lie inside the storage.
  absl::StatusOr<Tensor> AsStrided(const Shape& shape, const Shape& strides,
                                   int64_t offset) const;
  absl::StatusOr<Tensor> Unsqueeze(int64_t dim) const;
  absl::StatusOr<Tensor> Squeeze(int64_t dim) const;

  // A compact copy (or this tensor when it already is compact), on this
  // tensor's device. Aborts when memory runs out: code that can report an
  // error calls MakeContiguous.
  Tensor Contiguous() const;
  absl::StatusOr<Tensor> MakeContiguous() const;
  // A compact copy always (aborts when memory runs out).
  Tensor Clone() const;
  // Copies `src` (same shape, any strides, any supported dtype: converted,
  // any device: transferred) into this tensor.
  absl::Status CopyFrom(const Tensor& src);
  // A compact copy converted to `dtype`, on this tensor's device.
  absl::StatusOr<Tensor> To(DLDataType dtype) const;
  // A compact copy on `device` (this tensor when it is there already).
  absl::StatusOr<Tensor> ToDevice(DLDevice device) const;
  // Every element, row-major, as double (copied from a device first; empty
  // when that fails).
  std::vector<double> ToDoubles() const;
  // Sets every element to `value`.
  absl::Status Fill(double value);
  // This tensor's layout for a device backend's kernels.
  DeviceView DeviceViewOf() const;

  // A borrowed DLPack view: its shape and strides point into this Tensor,
  // valid while it lives and is not reassigned.
  DLTensor Dl() const;
  // A new DLPack owner that keeps the storage alive until its deleter runs.
  DLManagedTensor* ToDLPack() const;
  // Takes ownership of `managed` (its deleter runs when the storage dies,
  // or at once on error). Rejects unsupported dtypes and lanes.
  static absl::StatusOr<Tensor> FromDLPack(DLManagedTensor* managed);
  // A compact host copy of a borrowed DLTensor.
  static absl::StatusOr<Tensor> CopyOf(const DLTensor& src);

  // "float32 (2, 3) cpu"
  std::string Describe() const;

 private:
  Tensor(std::shared_ptr<Storage> storage, Shape shape, Shape strides,
         int64_t offset, DLDataType dtype);
  Tensor WithLayout(Shape shape, Shape strides, int64_t offset) const;
  // CopyFrom when either side is not on the CPU.
  absl::Status CopyAcrossDevices(const Tensor& src);

  std::shared_ptr<Storage> storage_;
  Shape shape_;
  Shape strides_;
  int64_t offset_ = 0;
  DLDataType dtype_ = kF32;
};

// Calls f(offsets) for every element of `shape`, row-major, where offsets[k]
// is the element offset of that index in a tensor with strides[k].
void ForEachIndex(const Shape& shape, const std::vector<const Shape*>& strides,
                  const std::function<void(const int64_t* offsets)>& f);

// ForEachIndex split along the first dim into one range per thread of the
// host's pool (core::HostThreads) when shape's elements times
// `elements_per_index` reach 2^18; else ForEachIndex. f runs on several
// threads at once, so it may only write what its offsets name.
void ParallelForEachIndex(const Shape& shape,
                          const std::vector<const Shape*>& strides,
                          int64_t elements_per_index,
                          const std::function<void(const int64_t* offsets)>& f);

}  // namespace llmsys::tensor

#endif  // LLMSYS_FRAMEWORK_TENSOR_TENSOR_H_
