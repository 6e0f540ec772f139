// framework/tensor/safetensors.h — checkpoints in the Hugging Face
// safetensors format (https://huggingface.co/docs/safetensors).
//
// A file is: an 8-byte little-endian length N, N bytes of UTF-8 JSON (padded
// with spaces to a multiple of 8), then the data section. The JSON maps each
// tensor name to {"dtype", "shape", "data_offsets": [begin, end)} (offsets
// relative to the data section) and may hold "__metadata__", a string to
// string map. Tensor data is row-major, little-endian and compact; the data
// section has no gaps and nothing after the last tensor.
//
//   LLMSYS_RETURN_IF_ERROR(WriteSafetensors(
//       "model.safetensors", {{"wte", wte}, {"wpe", wpe}},
//       {{"format", "pt"}}));
//   LLMSYS_ASSIGN_OR_RETURN(SafetensorsFile f,
//                           ReadSafetensors("model.safetensors"));
//   const Tensor& wte = f.tensors.at("wte");
//
// Dtypes: F32, F64, BF16, F16, I32, I64 and U8 both ways; a file's BOOL
// tensors read as uint8 (0/1). Other safetensors dtypes (I8, F8_*, ...) are
// an error naming the tensor.
//
// Thread-safety: both functions are reentrant; concurrent writes of the same
// path each produce a complete file and the last rename wins.
#ifndef LLMSYS_FRAMEWORK_TENSOR_SAFETENSORS_H_
#define LLMSYS_FRAMEWORK_TENSOR_SAFETENSORS_H_

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "framework/tensor/tensor.h"

namespace llmsys::tensor {

// Headers longer than this are rejected as corrupt (real ones are a few
// hundred bytes per tensor).
inline constexpr uint64_t kSafetensorsMaxHeaderBytes = 100'000'000;

// The safetensors name of a dtype ("F32", "BF16", ...) and back.
absl::StatusOr<std::string> SafetensorsDTypeName(DLDataType dtype);
absl::StatusOr<DLDataType> ParseSafetensorsDType(const std::string& name);

// Writes `tensors` (host tensors, any strides: written compact) and
// `metadata` to `path`, atomically: the bytes go to "<path>.tmp.<pid>.<n>"
// in the same directory, which is fsynced and renamed over `path`, and the
// directory is fsynced. On an error before the rename the temporary file is
// removed and an existing `path` is untouched; an error fsyncing the
// directory (after the rename) is still reported. The new file has mode
// 0644 less the umask, whatever an old one had. A temporary file a crashed
// process left behind is overwritten when its name comes up again.
//
// Layout: the data section holds the tensors sorted by element size
// (largest first), then by name, as Hugging Face's own writer does, so that
// every tensor starts at an offset aligned to its element size (the data
// section starts at a multiple of 8). The JSON lists "__metadata__" (when
// `metadata` is not empty) and then the tensors in that order.
//
// InvalidArgument for an undefined or non-host tensor, an unsupported dtype,
// a duplicate or reserved ("__metadata__") name, or a name or metadata
// string that is not valid UTF-8; the OS error (with the path) otherwise.
absl::Status WriteSafetensors(
    const std::string& path,
    const std::vector<std::pair<std::string, Tensor>>& tensors,
    const std::map<std::string, std::string>& metadata = {});

struct SafetensorsFile {
  std::map<std::string, Tensor> tensors;  // compact host tensors
  std::map<std::string, std::string> metadata;
};

// Reads a whole file. Every structural property is checked, and a violation
// is an InvalidArgument (NotFound etc. for the OS errors) whose message
// starts with the path: a file shorter than 8 bytes; a header length past
// the end of the file or over kSafetensorsMaxHeaderBytes; JSON that does
// not parse (or is not an object, nests too deep, or repeats a key — so a
// duplicate tensor name is an error); entries with missing, extra or
// ill-typed keys; an unknown dtype; negative or overflowing shapes, or more
// than LLMSYS_MAX_NDIM dims; data_offsets whose size differs from
// numel * element size; offsets past the data section ("truncated: tensor
// 'x' needs bytes [a, b) but the data section has n"); overlapping tensors,
// gaps between them, or bytes after the last one.
absl::StatusOr<SafetensorsFile> ReadSafetensors(const std::string& path);

}  // namespace llmsys::tensor

#endif  // LLMSYS_FRAMEWORK_TENSOR_SAFETENSORS_H_
