#include "framework/tensor/tensor.h"

#include <algorithm>
#include <atomic>
#include <bit>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <numeric>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "framework/core/status_macros.h"
#include "framework/core/thread_pool.h"
#include "framework/tensor/device.h"

namespace llmsys::tensor {
namespace {

constexpr size_t kHostAlignment = 64;

// Reads element `i` (an element offset from `base`) of dtype `t` as double.
double Load(const void* base, int64_t i, DLDataType t) {
  const char* p = static_cast<const char*>(base);
  switch (t.code) {
    case kDLFloat:
      if (t.bits == 32) return reinterpret_cast<const float*>(p)[i];
      if (t.bits == 64) return reinterpret_cast<const double*>(p)[i];
      return F16ToFloat(reinterpret_cast<const uint16_t*>(p)[i]);
    case kDLBfloat:
      return BF16ToFloat(reinterpret_cast<const uint16_t*>(p)[i]);
    case kDLInt:
      if (t.bits == 32)
        return static_cast<double>(reinterpret_cast<const int32_t*>(p)[i]);
      return static_cast<double>(reinterpret_cast<const int64_t*>(p)[i]);
    default:
      return reinterpret_cast<const uint8_t*>(p)[i];
  }
}

void Store(void* base, int64_t i, DLDataType t, double v) {
  char* p = static_cast<char*>(base);
  switch (t.code) {
    case kDLFloat:
      if (t.bits == 32)
        reinterpret_cast<float*>(p)[i] = static_cast<float>(v);
      else if (t.bits == 64)
        reinterpret_cast<double*>(p)[i] = v;
      else
        reinterpret_cast<uint16_t*>(p)[i] = FloatToF16(static_cast<float>(v));
      break;
    case kDLBfloat:
      reinterpret_cast<uint16_t*>(p)[i] = FloatToBF16(static_cast<float>(v));
      break;
    case kDLInt:
      if (t.bits == 32)
        reinterpret_cast<int32_t*>(p)[i] = static_cast<int32_t>(v);
      else
        reinterpret_cast<int64_t*>(p)[i] = static_cast<int64_t>(v);
      break;
    default:
      reinterpret_cast<uint8_t*>(p)[i] = static_cast<uint8_t>(v);
      break;
  }
}

absl::StatusOr<Shape> InferShape(const Shape& shape, int64_t numel,
                                 const Shape& from) {
  Shape out = shape;
  int64_t known = 1;
  int infer = -1;
  for (size_t i = 0; i < out.size(); ++i) {
    if (out[i] == -1) {
      if (infer >= 0)
        return absl::InvalidArgumentError(absl::StrCat(
            "reshape to ", ShapeString(shape), ": only one -1 is allowed"));
      infer = static_cast<int>(i);
    } else if (out[i] < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("reshape to ", ShapeString(shape), ": negative size"));
    } else {
      known *= out[i];
    }
  }
  if (infer >= 0) {
    if (known == 0 || numel % known != 0)
      return absl::InvalidArgumentError(
          absl::StrCat("cannot reshape ", ShapeString(from), " to ",
                       ShapeString(shape), ": sizes do not divide"));
    out[infer] = numel / known;
  } else if (known != numel) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot reshape ", ShapeString(from), " (", numel,
                     " elements) to ", ShapeString(shape)));
  }
  return out;
}

void DeleteManaged(DLManagedTensor* self) {
  delete static_cast<std::shared_ptr<Storage>*>(self->manager_ctx);
  delete[] self->dl_tensor.shape;
  delete[] self->dl_tensor.strides;
  delete self;
}

}  // namespace

bool IsSupportedDType(DLDataType t) {
  if (t.lanes != 1) return false;
  switch (t.code) {
    case kDLFloat:
      return t.bits == 16 || t.bits == 32 || t.bits == 64;
    case kDLBfloat:
      return t.bits == 16;
    case kDLInt:
      return t.bits == 32 || t.bits == 64;
    case kDLUInt:
      return t.bits == 8;
    default:
      return false;
  }
}

bool IsFloatDType(DLDataType t) {
  return IsSupportedDType(t) && (t.code == kDLFloat || t.code == kDLBfloat);
}

size_t DTypeSize(DLDataType t) { return (t.bits * t.lanes + 7) / 8; }

std::string DTypeName(DLDataType t) {
  if (IsSupportedDType(t)) {
    switch (t.code) {
      case kDLFloat:
        return absl::StrCat("float", t.bits);
      case kDLBfloat:
        return "bfloat16";
      case kDLInt:
        return absl::StrCat("int", t.bits);
      default:
        return "uint8";
    }
  }
  return absl::StrCat("dtype(code ", t.code, ", bits ", t.bits, ", lanes ",
                      t.lanes, ")");
}

absl::StatusOr<DLDataType> ParseDType(std::string_view name) {
  for (DLDataType t : {kF32, kF64, kBF16, kF16, kI32, kI64, kU8}) {
    if (DTypeName(t) == name) return t;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown dtype '", std::string(name),
                   "'; expected float32, float64, bfloat16, float16, int32, "
                   "int64 or uint8"));
}

std::string DeviceName(DLDevice d) {
  switch (d.device_type) {
    case kDLCPU:
      return "cpu";
    case kDLCUDA:
      return absl::StrCat("cuda:", d.device_id);
    default:
      return absl::StrCat("device(", static_cast<int>(d.device_type), ":",
                          d.device_id, ")");
  }
}

std::string ShapeString(const Shape& shape) {
  return absl::StrCat("(", absl::StrJoin(shape, ", "), ")");
}

int64_t Numel(const Shape& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

Shape ContiguousStrides(const Shape& shape) {
  Shape strides(shape.size());
  int64_t s = 1;
  for (size_t i = shape.size(); i-- > 0;) {
    strides[i] = s;
    s *= std::max<int64_t>(shape[i], 1);
  }
  return strides;
}

absl::StatusOr<Shape> BroadcastShapes(const Shape& a, const Shape& b) {
  const size_t n = std::max(a.size(), b.size());
  Shape out(n);
  for (size_t i = 0; i < n; ++i) {
    const int64_t da = i < n - a.size() ? 1 : a[i - (n - a.size())];
    const int64_t db = i < n - b.size() ? 1 : b[i - (n - b.size())];
    if (da != db && da != 1 && db != 1)
      return absl::InvalidArgumentError(absl::StrCat(
          "shapes ", ShapeString(a), " and ", ShapeString(b),
          " do not broadcast (dim ", i, ": ", da, " vs ", db, ")"));
    out[i] = da == 1 ? db : da;
  }
  return out;
}

absl::StatusOr<int64_t> NormalizeDim(int64_t dim, int64_t ndim) {
  const int64_t lo = ndim == 0 ? -1 : -ndim, hi = ndim == 0 ? 0 : ndim - 1;
  if (dim < lo || dim > hi)
    return absl::InvalidArgumentError(
        absl::StrCat("dim ", dim, " is out of range for ", ndim,
                     " dims (expected ", lo, "..", hi, ")"));
  return dim < 0 ? dim + std::max<int64_t>(ndim, 1) : dim;
}

uint16_t FloatToBF16(float f) {
  uint32_t u = std::bit_cast<uint32_t>(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return 0x7fc0;  // NaN
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}

float BF16ToFloat(uint16_t h) {
  return std::bit_cast<float>(static_cast<uint32_t>(h) << 16);
}

uint16_t FloatToF16(float f) { return std::bit_cast<uint16_t>(_Float16(f)); }

float F16ToFloat(uint16_t h) {
  return static_cast<float>(std::bit_cast<_Float16>(h));
}

// ---- Storage ----

namespace {
std::atomic<int64_t> host_bytes{0}, peak_host_bytes{0};
}  // namespace

absl::StatusOr<std::shared_ptr<Storage>> Storage::Allocate(size_t bytes,
                                                           DLDevice device) {
  if (device.device_type != kDLCPU) {
    LLMSYS_ASSIGN_OR_RETURN(DeviceBackend * backend, BackendFor(device));
    LLMSYS_ASSIGN_OR_RETURN(void* p, backend->Allocate(device, bytes));
    return std::make_shared<Storage>(
        p, bytes, device, [backend, device, p] { backend->Free(device, p); });
  }
  size_t rounded =
      (bytes + kHostAlignment - 1) / kHostAlignment * kHostAlignment;
  if (rounded == 0) rounded = kHostAlignment;
  void* p = std::aligned_alloc(kHostAlignment, rounded);
  if (p == nullptr)
    return absl::ResourceExhaustedError(
        absl::StrCat("out of host memory allocating ", bytes, " bytes"));
  const int64_t n = static_cast<int64_t>(rounded);
  const int64_t now = host_bytes.fetch_add(n) + n;
  int64_t peak = peak_host_bytes.load();
  while (now > peak && !peak_host_bytes.compare_exchange_weak(peak, now)) {
  }
  return std::make_shared<Storage>(p, bytes, device, [p, n] {
    std::free(p);
    host_bytes.fetch_sub(n);
  });
}

HostMemory HostTensorMemory() {
  return {host_bytes.load(), peak_host_bytes.load()};
}

void ResetPeakHostTensorMemory() { peak_host_bytes.store(host_bytes.load()); }

Storage::Storage(void* data, size_t bytes, DLDevice device,
                 std::function<void()> deleter)
    : data_(data),
      bytes_(bytes),
      device_(device),
      deleter_(std::move(deleter)) {}

Storage::~Storage() {
  if (deleter_) deleter_();
}

// ---- Tensor ----

Tensor::Tensor(std::shared_ptr<Storage> storage, Shape shape, Shape strides,
               int64_t offset, DLDataType dtype)
    : storage_(std::move(storage)),
      shape_(std::move(shape)),
      strides_(std::move(strides)),
      offset_(offset),
      dtype_(dtype) {}

Tensor Tensor::WithLayout(Shape shape, Shape strides, int64_t offset) const {
  return Tensor(storage_, std::move(shape), std::move(strides), offset, dtype_);
}

absl::StatusOr<Tensor> Tensor::Empty(const Shape& shape, DLDataType dtype,
                                     DLDevice device) {
  if (!IsSupportedDType(dtype))
    return absl::InvalidArgumentError(
        absl::StrCat("unsupported dtype ", DTypeName(dtype)));
  for (int64_t d : shape) {
    if (d < 0)
      return absl::InvalidArgumentError(
          absl::StrCat("negative size in shape ", ShapeString(shape)));
  }
  if (shape.size() > LLMSYS_MAX_NDIM)
    return absl::InvalidArgumentError(absl::StrCat("shape ", ShapeString(shape),
                                                   " has more than ",
                                                   LLMSYS_MAX_NDIM, " dims"));
  LLMSYS_ASSIGN_OR_RETURN(
      std::shared_ptr<Storage> storage,
      Storage::Allocate(static_cast<size_t>(Numel(shape)) * DTypeSize(dtype),
                        device));
  return Tensor(std::move(storage), shape, ContiguousStrides(shape), 0, dtype);
}

absl::StatusOr<Tensor> Tensor::Zeros(const Shape& shape, DLDataType dtype,
                                     DLDevice device) {
  LLMSYS_ASSIGN_OR_RETURN(Tensor t, Empty(shape, dtype, device));
  if (device.device_type != kDLCPU) {
    LLMSYS_RETURN_IF_ERROR(t.Fill(0.0));
    return t;
  }
  // One range of bytes per thread of the host's loops when large (1 MiB).
  char* const bytes = static_cast<char*>(t.data());
  const int64_t size = static_cast<int64_t>(t.storage_->bytes());
  const int parts = size >= (int64_t{1} << 20) ? core::HostThreads() : 1;
  core::ThreadPool::Global().Run(parts, parts, [&](int64_t part) {
    const int64_t lo = size * part / parts, hi = size * (part + 1) / parts;
    std::memset(bytes + lo, 0, static_cast<size_t>(hi - lo));
  });
  return t;
}

absl::StatusOr<Tensor> Tensor::FromDoubles(const Shape& shape,
                                           const std::vector<double>& values,
                                           DLDataType dtype) {
  LLMSYS_ASSIGN_OR_RETURN(Tensor t, Empty(shape, dtype));
  if (static_cast<int64_t>(values.size()) != t.numel())
    return absl::InvalidArgumentError(
        absl::StrCat(values.size(), " values for shape ", ShapeString(shape)));
  for (size_t i = 0; i < values.size(); ++i)
    Store(t.data(), static_cast<int64_t>(i), dtype, values[i]);
  return t;
}

Tensor Tensor::Scalar(double value, DLDataType dtype) {
  return *FromDoubles({}, {value}, dtype);
}

DLDevice Tensor::device() const { return storage_ ? storage_->device() : kCpu; }

bool Tensor::is_contiguous() const {
  if (numel() == 0) return true;  // no element to be out of place
  int64_t expected = 1;
  for (size_t i = shape_.size(); i-- > 0;) {
    if (shape_[i] != 1 && strides_[i] != expected) return false;
    expected *= shape_[i];
  }
  return true;
}

void* Tensor::data() const {
  if (!storage_) return nullptr;
  return static_cast<char*>(storage_->data()) +
         offset_ * static_cast<int64_t>(element_size());
}

absl::StatusOr<Tensor> Tensor::View(const Shape& shape) const {
  LLMSYS_ASSIGN_OR_RETURN(Shape out, InferShape(shape, numel(), shape_));
  if (is_contiguous()) return WithLayout(out, ContiguousStrides(out), offset_);
  // Maps each run of old dims that is contiguous in memory onto the new
  // dims (PyTorch's computeStride): a view exists iff every new dim falls
  // inside one such run.
  if (numel() == 0) return WithLayout(out, ContiguousStrides(out), offset_);
  Shape new_strides(out.size());
  int64_t view_d = static_cast<int64_t>(out.size()) - 1;
  int64_t base_stride = strides_.back();
  int64_t tensor_numel = 1, view_numel = 1;
  for (int64_t d = ndim() - 1; d >= 0; --d) {
    tensor_numel *= shape_[d];
    if (d == 0 ||
        (shape_[d - 1] != 1 && strides_[d - 1] != tensor_numel * base_stride)) {
      while (view_d >= 0 && (view_numel < tensor_numel || out[view_d] == 1)) {
        new_strides[view_d] = view_numel * base_stride;
        view_numel *= out[view_d];
        --view_d;
      }
      if (view_numel != tensor_numel)
        return absl::FailedPreconditionError(
            absl::StrCat("cannot view ", Describe(), " as ", ShapeString(out),
                         " without a copy (use Reshape)"));
      if (d > 0) {
        base_stride = strides_[d - 1];
        tensor_numel = 1;
        view_numel = 1;
      }
    }
  }
  if (view_d != -1)
    return absl::FailedPreconditionError(
        absl::StrCat("cannot view ", Describe(), " as ", ShapeString(out)));
  return WithLayout(out, new_strides, offset_);
}

absl::StatusOr<Tensor> Tensor::Reshape(const Shape& shape) const {
  absl::StatusOr<Tensor> view = View(shape);
  if (view.ok() || !absl::IsFailedPrecondition(view.status())) return view;
  return Clone().View(shape);
}

absl::StatusOr<Tensor> Tensor::Permute(const std::vector<int64_t>& dims) const {
  if (static_cast<int64_t>(dims.size()) != ndim())
    return absl::InvalidArgumentError(
        absl::StrCat("permute of ", Describe(), " needs ", ndim(),
                     " dims, got (", absl::StrJoin(dims, ", "), ")"));
  Shape shape(dims.size()), strides(dims.size());
  std::vector<bool> seen(dims.size(), false);
  for (size_t i = 0; i < dims.size(); ++i) {
    LLMSYS_ASSIGN_OR_RETURN(int64_t d, NormalizeDim(dims[i], ndim()));
    if (seen[d])
      return absl::InvalidArgumentError(absl::StrCat(
          "permute (", absl::StrJoin(dims, ", "), ") repeats dim ", d));
    seen[d] = true;
    shape[i] = shape_[d];
    strides[i] = strides_[d];
  }
  return WithLayout(shape, strides, offset_);
}

absl::StatusOr<Tensor> Tensor::Transpose(int64_t dim0, int64_t dim1) const {
  LLMSYS_ASSIGN_OR_RETURN(int64_t a, NormalizeDim(dim0, ndim()));
  LLMSYS_ASSIGN_OR_RETURN(int64_t b, NormalizeDim(dim1, ndim()));
  std::vector<int64_t> dims(ndim());
  std::iota(dims.begin(), dims.end(), 0);
  std::swap(dims[a], dims[b]);
  return Permute(dims);
}

absl::StatusOr<Tensor> Tensor::Slice(int64_t dim, int64_t start, int64_t stop,
                                     int64_t step) const {
  if (ndim() == 0)
    return absl::InvalidArgumentError("cannot slice a 0-d tensor");
  LLMSYS_ASSIGN_OR_RETURN(int64_t d, NormalizeDim(dim, ndim()));
  if (step < 1)
    return absl::InvalidArgumentError(
        absl::StrCat("slice step must be >= 1, got ", step));
  const int64_t n = shape_[d];
  auto clamp = [n](int64_t i) {
    if (i < 0) i += n;
    return std::clamp<int64_t>(i, 0, n);
  };
  start = clamp(start);
  stop = std::max(clamp(stop), start);
  Shape shape = shape_, strides = strides_;
  shape[d] = (stop - start + step - 1) / step;
  strides[d] = strides_[d] * step;
  return WithLayout(shape, strides, offset_ + start * strides_[d]);
}

absl::StatusOr<Tensor> Tensor::Expand(const Shape& shape) const {
  if (shape.size() < shape_.size())
    return absl::InvalidArgumentError(absl::StrCat("cannot expand ", Describe(),
                                                   " to ", ShapeString(shape),
                                                   ": fewer dims"));
  const size_t lead = shape.size() - shape_.size();
  Shape out(shape.size()), strides(shape.size(), 0);
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i < lead) {
      if (shape[i] < 0)
        return absl::InvalidArgumentError(
            absl::StrCat("expand to ", ShapeString(shape),
                         ": -1 is not allowed in a new leading dim"));
      out[i] = shape[i];
      continue;
    }
    const int64_t have = shape_[i - lead];
    const int64_t want = shape[i] == -1 ? have : shape[i];
    if (want == have) {
      out[i] = have;
      strides[i] = strides_[i - lead];
    } else if (have == 1 && want >= 0) {
      out[i] = want;
    } else {
      return absl::InvalidArgumentError(absl::StrCat(
          "cannot expand ", Describe(), " to ", ShapeString(shape), " (dim ", i,
          ": ", have, " to ", want, "; only size-1 dims expand)"));
    }
  }
  return WithLayout(out, strides, offset_);
}

absl::StatusOr<Tensor> Tensor::AsStrided(const Shape& shape,
                                         const Shape& strides,
                                         int64_t offset) const {
  if (!defined()) return absl::InvalidArgumentError("AsStrided: undefined");
  if (shape.size() != strides.size() || offset < 0)
    return absl::InvalidArgumentError(
        absl::StrCat("AsStrided: shape ", ShapeString(shape), " and strides ",
                     ShapeString(strides), " differ in length"));
  int64_t last = offset;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] < 0 || strides[i] < 0)
      return absl::InvalidArgumentError("AsStrided: negative size or stride");
    if (shape[i] == 0) return WithLayout(shape, strides, offset);
    last += (shape[i] - 1) * strides[i];
  }
  const int64_t capacity =
      static_cast<int64_t>(storage_->bytes() / element_size());
  if (last >= capacity)
    return absl::OutOfRangeError(
        absl::StrCat("AsStrided: ", ShapeString(shape), " with strides ",
                     ShapeString(strides), " at offset ", offset,
                     " reaches element ", last, " of a storage of ", capacity));
  return WithLayout(shape, strides, offset);
}

absl::StatusOr<Tensor> Tensor::Unsqueeze(int64_t dim) const {
  LLMSYS_ASSIGN_OR_RETURN(int64_t d, NormalizeDim(dim, ndim() + 1));
  Shape shape = shape_, strides = strides_;
  const int64_t stride = d < ndim() ? strides_[d] * shape_[d] : 1;
  shape.insert(shape.begin() + d, 1);
  strides.insert(strides.begin() + d, stride);
  return WithLayout(shape, strides, offset_);
}

absl::StatusOr<Tensor> Tensor::Squeeze(int64_t dim) const {
  LLMSYS_ASSIGN_OR_RETURN(int64_t d, NormalizeDim(dim, ndim()));
  if (shape_[d] != 1)
    return absl::InvalidArgumentError(absl::StrCat(
        "cannot squeeze dim ", d, " of ", Describe(), ": its size is not 1"));
  Shape shape = shape_, strides = strides_;
  shape.erase(shape.begin() + d);
  strides.erase(strides.begin() + d);
  return WithLayout(shape, strides, offset_);
}

Tensor Tensor::Contiguous() const {
  if (!defined() || is_contiguous()) return *this;
  return Clone();
}

absl::StatusOr<Tensor> Tensor::MakeContiguous() const {
  if (!defined() || is_contiguous()) return *this;
  LLMSYS_ASSIGN_OR_RETURN(Tensor out, Empty(shape_, dtype_, device()));
  LLMSYS_RETURN_IF_ERROR(out.CopyFrom(*this));
  return out;
}

Tensor Tensor::Clone() const {
  absl::StatusOr<Tensor> out = Empty(shape_, dtype_, device());
  absl::Status s = out.ok() ? out->CopyFrom(*this) : out.status();
  if (!s.ok()) {  // out of memory or a device failure: callers that can
                  // take an error use MakeContiguous or To
    std::fprintf(stderr, "llmsys: Clone of %s failed: %s\n", Describe().c_str(),
                 std::string(s.message()).c_str());
    std::abort();
  }
  return *std::move(out);
}

absl::StatusOr<Tensor> Tensor::ToDevice(DLDevice device) const {
  if (!defined() || this->device() == device) return *this;
  LLMSYS_ASSIGN_OR_RETURN(Tensor out, Empty(shape_, dtype_, device));
  LLMSYS_RETURN_IF_ERROR(out.CopyFrom(*this));
  return out;
}

DeviceView Tensor::DeviceViewOf() const {
  return DeviceView{data(), dtype_, shape_, strides_};
}

absl::Status Tensor::CopyFrom(const Tensor& src) {
  if (src.shape_ != shape_)
    return absl::InvalidArgumentError(absl::StrCat(
        "copy from ", src.Describe(), " into ", Describe(), ": shapes differ"));
  if (device().device_type != kDLCPU || src.device().device_type != kDLCPU)
    return CopyAcrossDevices(src);
  const DLDataType st = src.dtype_, dt = dtype_;
  void* const dst_base = storage_->data();
  const void* const src_base = src.storage_->data();
  const int64_t so = src.offset_, dof = offset_;
  if (st == dt) {
    const size_t es = element_size();
    char* const d = static_cast<char*>(dst_base) + dof * es;
    const char* const s = static_cast<const char*>(src_base) + so * es;
    if (numel() == 0) return absl::OkStatus();
    if (is_contiguous() && src.is_contiguous()) {
      std::memmove(d, s, static_cast<size_t>(numel()) * es);
      return absl::OkStatus();
    }
    // Row by row over the last dim (a memcpy when both rows are compact).
    const Shape outer(shape_.begin(), shape_.end() - 1);
    const Shape d_outer(strides_.begin(), strides_.end() - 1);
    const Shape s_outer(src.strides_.begin(), src.strides_.end() - 1);
    const int64_t n = shape_.back(), ds = strides_.back(),
                  ss = src.strides_.back();
    ParallelForEachIndex(outer, {&d_outer, &s_outer}, n, [&](const int64_t* o) {
      char* drow = d + o[0] * static_cast<int64_t>(es);
      const char* srow = s + o[1] * static_cast<int64_t>(es);
      if (ds == 1 && ss == 1) {
        std::memcpy(drow, srow, static_cast<size_t>(n) * es);
        return;
      }
      for (int64_t i = 0; i < n; ++i)
        std::memcpy(drow + i * ds * static_cast<int64_t>(es),
                    srow + i * ss * static_cast<int64_t>(es), es);
    });
  } else {
    ForEachIndex(shape_, {&strides_, &src.strides_}, [&](const int64_t* o) {
      Store(dst_base, dof + o[0], dt, Load(src_base, so + o[1], st));
    });
  }
  return absl::OkStatus();
}

absl::Status Tensor::CopyAcrossDevices(const Tensor& src) {
  if (numel() == 0) return absl::OkStatus();
  const DLDevice dd = device(), sd = src.device();
  if (dd == sd) {  // on one device: its strided copy kernel
    LLMSYS_ASSIGN_OR_RETURN(DeviceBackend * b, BackendFor(dd));
    return b->Copy(dd, DeviceViewOf(), src.DeviceViewOf());
  }
  if (sd.device_type == kDLCPU) {  // host -> device
    LLMSYS_ASSIGN_OR_RETURN(DeviceBackend * b, BackendFor(dd));
    // Converted and compact on the host, then one transfer into this
    // tensor (or into a compact device buffer copied into its strides).
    Tensor host = src;
    if (!(src.dtype_ == dtype_) || !src.is_contiguous()) {
      LLMSYS_ASSIGN_OR_RETURN(host, Empty(shape_, dtype_));
      LLMSYS_RETURN_IF_ERROR(host.CopyFrom(src));
    }
    const size_t bytes = static_cast<size_t>(numel()) * element_size();
    if (is_contiguous()) return b->CopyFromHost(dd, data(), host.data(), bytes);
    LLMSYS_ASSIGN_OR_RETURN(Tensor staged, Empty(shape_, dtype_, dd));
    LLMSYS_RETURN_IF_ERROR(
        b->CopyFromHost(dd, staged.data(), host.data(), bytes));
    return b->Copy(dd, DeviceViewOf(), staged.DeviceViewOf());
  }
  // device -> host (or device -> another device, through the host):
  // compact on the source device, one transfer, then the host's copy.
  LLMSYS_ASSIGN_OR_RETURN(DeviceBackend * b, BackendFor(sd));
  LLMSYS_ASSIGN_OR_RETURN(Tensor compact, src.MakeContiguous());
  LLMSYS_ASSIGN_OR_RETURN(Tensor host, Empty(shape_, src.dtype_));
  LLMSYS_RETURN_IF_ERROR(
      b->CopyToHost(sd, host.data(), compact.data(),
                    static_cast<size_t>(numel()) * src.element_size()));
  return CopyFrom(host);
}

absl::StatusOr<Tensor> Tensor::To(DLDataType dtype) const {
  LLMSYS_ASSIGN_OR_RETURN(Tensor out, Empty(shape_, dtype, device()));
  LLMSYS_RETURN_IF_ERROR(out.CopyFrom(*this));
  return out;
}

std::vector<double> Tensor::ToDoubles() const {
  std::vector<double> out;
  if (!defined()) return out;
  if (device().device_type != kDLCPU) {
    absl::StatusOr<Tensor> host = ToDevice(kCpu);
    return host.ok() ? host->ToDoubles() : out;
  }
  out.reserve(static_cast<size_t>(numel()));
  const void* base = storage_->data();
  ForEachIndex(shape_, {&strides_}, [&](const int64_t* o) {
    out.push_back(Load(base, offset_ + o[0], dtype_));
  });
  return out;
}

absl::Status Tensor::Fill(double value) {
  if (device().device_type != kDLCPU) {
    LLMSYS_ASSIGN_OR_RETURN(DeviceBackend * b, BackendFor(device()));
    return b->Fill(device(), DeviceViewOf(), value);
  }
  void* base = storage_->data();
  ForEachIndex(shape_, {&strides_}, [&](const int64_t* o) {
    Store(base, offset_ + o[0], dtype_, value);
  });
  return absl::OkStatus();
}

DLTensor Tensor::Dl() const {
  DLTensor t;
  std::memset(&t, 0, sizeof(t));
  if (!storage_) return t;
  t.data = storage_->data();
  t.device = storage_->device();
  t.ndim = static_cast<int32_t>(shape_.size());
  t.dtype = dtype_;
  t.shape = const_cast<int64_t*>(shape_.data());
  t.strides = const_cast<int64_t*>(strides_.data());
  t.byte_offset = static_cast<uint64_t>(offset_) * element_size();
  return t;
}

DLManagedTensor* Tensor::ToDLPack() const {
  auto* managed = new DLManagedTensor;
  managed->dl_tensor = Dl();
  managed->dl_tensor.shape = new int64_t[shape_.size() + 1];
  managed->dl_tensor.strides = new int64_t[shape_.size() + 1];
  std::copy(shape_.begin(), shape_.end(), managed->dl_tensor.shape);
  std::copy(strides_.begin(), strides_.end(), managed->dl_tensor.strides);
  managed->manager_ctx = new std::shared_ptr<Storage>(storage_);
  managed->deleter = &DeleteManaged;
  return managed;
}

absl::StatusOr<Tensor> Tensor::FromDLPack(DLManagedTensor* managed) {
  if (managed == nullptr)
    return absl::InvalidArgumentError("FromDLPack: null tensor");
  auto drop = [managed] {
    if (managed->deleter) managed->deleter(managed);
  };
  const DLTensor& t = managed->dl_tensor;
  if (!IsSupportedDType(t.dtype) || t.ndim < 0 || t.ndim > LLMSYS_MAX_NDIM ||
      (t.ndim > 0 && t.shape == nullptr)) {
    absl::Status s = absl::InvalidArgumentError(
        absl::StrCat("FromDLPack: unsupported tensor (", DTypeName(t.dtype),
                     ", ", t.ndim, " dims)"));
    drop();
    return s;
  }
  if (t.byte_offset % DTypeSize(t.dtype) != 0) {
    drop();
    return absl::InvalidArgumentError(
        "FromDLPack: byte_offset is not a multiple of the element size");
  }
  Shape shape(t.shape, t.shape + t.ndim);
  Shape strides = t.strides != nullptr ? Shape(t.strides, t.strides + t.ndim)
                                       : ContiguousStrides(shape);
  // The storage spans whatever the producer allocated; size is not known,
  // so record the bytes the view reaches.
  int64_t reach = 1;
  for (int32_t i = 0; i < t.ndim; ++i) reach += (shape[i] - 1) * strides[i];
  auto storage = std::make_shared<Storage>(
      t.data, static_cast<size_t>(reach) * DTypeSize(t.dtype) + t.byte_offset,
      t.device, drop);
  return Tensor(std::move(storage), std::move(shape), std::move(strides),
                static_cast<int64_t>(t.byte_offset / DTypeSize(t.dtype)),
                t.dtype);
}

absl::StatusOr<Tensor> Tensor::CopyOf(const DLTensor& src) {
  if (!IsSupportedDType(src.dtype) || src.ndim < 0 ||
      src.ndim > LLMSYS_MAX_NDIM || (src.ndim > 0 && src.shape == nullptr) ||
      (src.data == nullptr && llmsys_tensor_numel(&src) > 0))
    return absl::InvalidArgumentError(absl::StrCat("unsupported tensor (",
                                                   DTypeName(src.dtype), ", ",
                                                   src.ndim, " dims)"));
  Shape shape(src.shape, src.shape + src.ndim);
  Shape strides = src.strides != nullptr
                      ? Shape(src.strides, src.strides + src.ndim)
                      : ContiguousStrides(shape);
  const size_t es = DTypeSize(src.dtype);
  Tensor borrowed(std::make_shared<Storage>(src.data, 0, src.device, nullptr),
                  shape, strides, static_cast<int64_t>(src.byte_offset / es),
                  src.dtype);
  LLMSYS_ASSIGN_OR_RETURN(Tensor out, Empty(shape, src.dtype));
  LLMSYS_RETURN_IF_ERROR(out.CopyFrom(borrowed));
  return out;
}

std::string Tensor::Describe() const {
  if (!defined()) return "undefined tensor";
  return absl::StrCat(DTypeName(dtype_), " ", ShapeString(shape_), " ",
                      DeviceName(device()));
}

void ForEachIndex(const Shape& shape, const std::vector<const Shape*>& strides,
                  const std::function<void(const int64_t* offsets)>& f) {
  const size_t nd = shape.size(), nt = strides.size();
  for (int64_t d : shape) {
    if (d == 0) return;
  }
  std::vector<int64_t> index(nd, 0), offsets(nt, 0);
  while (true) {
    f(offsets.data());
    size_t d = nd;
    while (d > 0) {
      --d;
      ++index[d];
      for (size_t k = 0; k < nt; ++k) offsets[k] += (*strides[k])[d];
      if (index[d] < shape[d]) break;
      for (size_t k = 0; k < nt; ++k) offsets[k] -= (*strides[k])[d] * shape[d];
      index[d] = 0;
      if (d == 0) return;
    }
    if (nd == 0) return;
  }
}

void ParallelForEachIndex(
    const Shape& shape, const std::vector<const Shape*>& strides,
    int64_t elements_per_index,
    const std::function<void(const int64_t* offsets)>& f) {
  constexpr int64_t kMinElements = int64_t{1} << 18;
  const int threads = core::HostThreads();
  const int64_t first = shape.empty() ? 1 : shape[0];
  if (threads <= 1 || first < 2 ||
      Numel(shape) * std::max<int64_t>(elements_per_index, 1) < kMinElements) {
    ForEachIndex(shape, strides, f);
    return;
  }
  const int64_t parts = std::min<int64_t>(threads, first);
  core::ThreadPool::Global().Run(threads, parts, [&](int64_t part) {
    const int64_t lo = first * part / parts, hi = first * (part + 1) / parts;
    Shape sub = shape;
    sub[0] = hi - lo;
    std::vector<int64_t> base(strides.size()), at(strides.size());
    for (size_t k = 0; k < strides.size(); ++k) base[k] = lo * (*strides[k])[0];
    ForEachIndex(sub, strides, [&](const int64_t* o) {
      for (size_t k = 0; k < at.size(); ++k) at[k] = base[k] + o[k];
      f(at.data());
    });
  });
}

}  // namespace llmsys::tensor
