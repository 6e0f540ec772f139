// framework/tensor/safetensors.cc — see safetensors.h.
#include "framework/tensor/safetensors.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <limits>
#include <nlohmann/json.hpp>
#include <numeric>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "framework/core/status_macros.h"

namespace llmsys::tensor {
namespace {

// The format is little-endian; so is every host this framework targets.
static_assert(std::endian::native == std::endian::little,
              "safetensors I/O assumes a little-endian host");

using nlohmann::json;
using nlohmann::ordered_json;

constexpr char kMetadataKey[] = "__metadata__";
constexpr char kSupportedDTypes[] = "F32, F64, BF16, F16, I32, I64, U8, BOOL";

struct DTypeEntry {
  const char* name;
  DLDataType dtype;
};
constexpr DTypeEntry kDTypes[] = {
    {"F32", kF32}, {"F64", kF64}, {"BF16", kBF16}, {"F16", kF16},
    {"I32", kI32}, {"I64", kI64}, {"U8", kU8},
};

// Closes the descriptor it owns.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  // Closes now, reporting close's error (0 or an errno).
  int Close() {
    const int fd = fd_;
    fd_ = -1;
    return fd >= 0 && ::close(fd) != 0 ? errno : 0;
  }

 private:
  int fd_;
};

absl::Status OsError(int error, const std::string& what) {
  return absl::ErrnoToStatus(error, what);
}

absl::Status WriteAll(int fd, const void* data, size_t n,
                      const std::string& file) {
  const char* p = static_cast<const char*>(data);
  while (n > 0) {
    const ssize_t w = ::write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return OsError(errno, absl::StrCat("writing ", file));
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
  return absl::OkStatus();
}

// Reads exactly n bytes at `offset`; running out of file is an error.
absl::Status PreadAll(int fd, void* data, size_t n, uint64_t offset,
                      const std::string& file) {
  char* p = static_cast<char*>(data);
  while (n > 0) {
    const ssize_t r = ::pread(fd, p, n, static_cast<off_t>(offset));
    if (r < 0) {
      if (errno == EINTR) continue;
      return OsError(errno, absl::StrCat("reading ", file));
    }
    if (r == 0)
      return absl::DataLossError(
          absl::StrCat(file, ": unexpected end of file at byte ", offset,
                       " (did the file change while it was read?)"));
    p += r;
    n -= static_cast<size_t>(r);
    offset += static_cast<uint64_t>(r);
  }
  return absl::OkStatus();
}

// At most `limit` bytes of `s` (garbage can hold megabytes in one string).
std::string Clipped(const std::string& s, size_t limit = 200) {
  return s.size() <= limit ? s : absl::StrCat(s.substr(0, limit), "...");
}

std::string Quoted(const std::string& s) {
  return absl::StrCat("'", Clipped(s), "'");
}

std::string RangeString(uint64_t begin, uint64_t end) {
  return absl::StrCat("[", begin, ", ", end, ")");
}

// Longer inner lists (or objects) in a header are rejected while parsing
// (shapes have at most LLMSYS_MAX_NDIM sizes); this bounds memory on garbage.
constexpr size_t kMaxInnerElements = 64;

// Thrown from the parser callback to stop at once.
struct HeaderRejected {
  std::string message;
};

// Parses the header, rejecting duplicate keys in any object (so a tensor
// named twice) and nesting deeper than the format needs (object, entry,
// shape array), which also bounds the parser's memory on garbage.
absl::StatusOr<json> ParseHeader(const std::string& text,
                                 const std::string& path) {
  std::vector<std::set<std::string>> keys;  // one per open object
  size_t inner_elements = 0;                // in the open inner container
  auto callback = [&keys, &inner_elements](int depth, json::parse_event_t event,
                                           json& parsed) -> bool {
    switch (event) {
      case json::parse_event_t::object_start:
      case json::parse_event_t::array_start:
        if (depth >= 3)
          throw HeaderRejected{
              "the JSON header nests deeper than a safetensors header can"};
        if (event == json::parse_event_t::object_start) keys.emplace_back();
        inner_elements = 0;
        break;
      case json::parse_event_t::value:
        // Values at depth 3 are inside a container inside an entry (a
        // shape, data_offsets, or garbage).
        if (depth == 3 && ++inner_elements > kMaxInnerElements)
          throw HeaderRejected{
              absl::StrCat("the JSON header has an inner list or object "
                           "with more than ",
                           kMaxInnerElements,
                           " elements (shapes and data_offsets are short)")};
        break;
      case json::parse_event_t::object_end:
        if (!keys.empty()) keys.pop_back();
        break;
      case json::parse_event_t::key: {
        const std::string& key = parsed.get_ref<const std::string&>();
        if (!keys.empty() && !keys.back().insert(key).second) {
          throw HeaderRejected{
              absl::StrCat("the JSON header repeats the key ", Quoted(key),
                           depth == 1 ? " (a duplicate tensor name)" : "")};
        }
        break;
      }
      default:
        break;
    }
    return true;
  };
  try {
    return json::parse(text, callback);
  } catch (const HeaderRejected& e) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": ", e.message));
  } catch (const json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": the header is not valid JSON: ", std::string(e.what())));
  }
}

// A non-negative JSON integer that fits in int64 (as uint64), or nullopt.
std::optional<uint64_t> NonNegativeInteger(const json& v) {
  if (v.is_number_unsigned()) {
    const uint64_t u = v.get<uint64_t>();
    if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
      return std::nullopt;
    return u;
  }
  if (v.is_number_integer()) {
    const int64_t i = v.get<int64_t>();
    if (i < 0) return std::nullopt;
    return static_cast<uint64_t>(i);
  }
  return std::nullopt;
}

struct Entry {
  std::string name;
  DLDataType dtype;
  Shape shape;
  uint64_t begin;
  uint64_t end;
};

// Checks one tensor's entry; data_bytes is the size of the data section.
absl::StatusOr<Entry> ParseEntry(const std::string& name, const json& value,
                                 uint64_t data_bytes, const std::string& path) {
  const std::string who = absl::StrCat(path, ": tensor ", Quoted(name));
  auto invalid = [&who](const std::string& what) {
    return absl::InvalidArgumentError(absl::StrCat(who, ": ", what));
  };
  if (!value.is_object())
    return invalid(absl::StrCat("its entry is a JSON ",
                                std::string(value.type_name()),
                                ", not an object"));
  for (const auto& [key, unused] : value.items()) {
    if (key != "dtype" && key != "shape" && key != "data_offsets")
      return invalid(absl::StrCat(
          "unknown key ", Quoted(key),
          " (an entry has exactly dtype, shape and data_offsets)"));
  }
  for (const char* key : {"dtype", "shape", "data_offsets"}) {
    if (!value.contains(key))
      return invalid(absl::StrCat("its entry has no \"", key, "\""));
  }

  Entry e;
  e.name = name;
  const json& dtype = value.at("dtype");
  if (!dtype.is_string())
    return invalid(absl::StrCat("\"dtype\" is a JSON ",
                                std::string(dtype.type_name()),
                                ", not a string"));
  absl::StatusOr<DLDataType> parsed =
      ParseSafetensorsDType(dtype.get<std::string>());
  if (!parsed.ok()) return invalid(std::string(parsed.status().message()));
  e.dtype = *parsed;

  const json& shape = value.at("shape");
  if (!shape.is_array())
    return invalid(absl::StrCat("\"shape\" is a JSON ",
                                std::string(shape.type_name()),
                                ", not an array"));
  if (shape.size() > LLMSYS_MAX_NDIM)
    return invalid(absl::StrCat("shape ", Clipped(shape.dump()), " has ",
                                shape.size(), " dims, more than the ",
                                LLMSYS_MAX_NDIM, " a tensor may have"));
  bool any_zero = false;
  for (const json& d : shape) {
    if (d.is_number_integer() && !d.is_number_unsigned() &&
        d.get<int64_t>() < 0)
      return invalid(
          absl::StrCat("negative size in shape ", Clipped(shape.dump())));
    const std::optional<uint64_t> size = NonNegativeInteger(d);
    if (!size)
      return invalid(absl::StrCat("shape ", Clipped(shape.dump()),
                                  " is not a list of sizes (integers from 0 "
                                  "to 2^63 - 1)"));
    e.shape.push_back(static_cast<int64_t>(*size));
    any_zero = any_zero || *size == 0;
  }
  // numel * element size, refusing overflow (a zero size anywhere makes
  // the tensor empty whatever the other sizes).
  uint64_t bytes = any_zero ? 0 : DTypeSize(e.dtype);
  if (!any_zero) {
    for (int64_t d : e.shape) {
      if (__builtin_mul_overflow(bytes, static_cast<uint64_t>(d), &bytes) ||
          bytes > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
        return invalid(absl::StrCat("shape ", ShapeString(e.shape),
                                    " is too large (its byte size overflows)"));
    }
  }

  const json& offsets = value.at("data_offsets");
  if (!offsets.is_array() || offsets.size() != 2 ||
      !NonNegativeInteger(offsets[0]) || !NonNegativeInteger(offsets[1]))
    return invalid(absl::StrCat("\"data_offsets\" is ", Clipped(offsets.dump()),
                                ", not [begin, end] (two integers from 0 to "
                                "2^63 - 1)"));
  e.begin = *NonNegativeInteger(offsets[0]);
  e.end = *NonNegativeInteger(offsets[1]);
  if (e.end < e.begin)
    return invalid(absl::StrCat("data_offsets ", Clipped(offsets.dump()),
                                " end before they begin"));
  if (e.end - e.begin != bytes)
    return invalid(absl::StrCat("data_offsets ", RangeString(e.begin, e.end),
                                " span ", e.end - e.begin, " bytes but ",
                                DTypeName(e.dtype), " ", ShapeString(e.shape),
                                " needs ", bytes));
  if (e.end > data_bytes)
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": truncated: tensor ", Quoted(name), " needs bytes ",
        RangeString(e.begin, e.end), " but the data section has ", data_bytes));
  return e;
}

}  // namespace

absl::StatusOr<std::string> SafetensorsDTypeName(DLDataType dtype) {
  for (const DTypeEntry& d : kDTypes) {
    if (d.dtype == dtype) return std::string(d.name);
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "dtype ", DTypeName(dtype), " has no safetensors equivalent here"));
}

absl::StatusOr<DLDataType> ParseSafetensorsDType(const std::string& name) {
  for (const DTypeEntry& d : kDTypes) {
    if (name == d.name) return d.dtype;
  }
  if (name == "BOOL") return kU8;  // one byte, 0 or 1
  return absl::InvalidArgumentError(absl::StrCat(
      "unknown dtype ", Quoted(name), " (supported: ", kSupportedDTypes, ")"));
}

absl::Status WriteSafetensors(
    const std::string& path,
    const std::vector<std::pair<std::string, Tensor>>& tensors,
    const std::map<std::string, std::string>& metadata) {
  auto invalid = [&path](const std::string& what) {
    return absl::InvalidArgumentError(
        absl::StrCat("writing ", path, ": ", what));
  };

  // Everything is checked before a file is created.
  std::set<std::string> names;
  std::vector<std::string> dtype_names;
  for (const auto& [name, t] : tensors) {
    if (name == kMetadataKey)
      return invalid(absl::StrCat("the tensor name ", Quoted(name),
                                  " is reserved for the metadata"));
    if (!names.insert(name).second)
      return invalid(absl::StrCat("two tensors are named ", Quoted(name)));
    if (!t.defined())
      return invalid(absl::StrCat("tensor ", Quoted(name), " is undefined"));
    if (t.device().device_type != kDLCPU)
      return invalid(absl::StrCat("tensor ", Quoted(name), " is on ",
                                  DeviceName(t.device()),
                                  "; copy it to the host first"));
    absl::StatusOr<std::string> dtype = SafetensorsDTypeName(t.dtype());
    if (!dtype.ok())
      return invalid(absl::StrCat("tensor ", Quoted(name), ": ",
                                  std::string(dtype.status().message())));
    dtype_names.push_back(*std::move(dtype));
  }

  // Largest elements first, then by name: every tensor starts aligned.
  std::vector<size_t> order(tensors.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::sort(order.begin(), order.end(), [&tensors](size_t a, size_t b) {
    const size_t sa = tensors[a].second.element_size();
    const size_t sb = tensors[b].second.element_size();
    if (sa != sb) return sa > sb;
    return tensors[a].first < tensors[b].first;
  });

  ordered_json header = ordered_json::object();
  if (!metadata.empty()) {
    ordered_json m = ordered_json::object();
    for (const auto& [key, value] : metadata) m[key] = value;
    header[kMetadataKey] = std::move(m);
  }
  uint64_t offset = 0;
  for (size_t i : order) {
    const Tensor& t = tensors[i].second;
    const uint64_t bytes = static_cast<uint64_t>(t.numel()) *
                           static_cast<uint64_t>(t.element_size());
    ordered_json entry = ordered_json::object();
    entry["dtype"] = dtype_names[i];
    entry["shape"] = t.shape();
    entry["data_offsets"] = {offset, offset + bytes};
    header[tensors[i].first] = std::move(entry);
    offset += bytes;
  }
  std::string text;
  try {
    text = header.dump();
  } catch (const ordered_json::exception& e) {
    return invalid(absl::StrCat("a tensor name or metadata string is not ",
                                "valid UTF-8: ", std::string(e.what())));
  }
  text.append((8 - text.size() % 8) % 8, ' ');  // data starts 8-aligned
  const uint64_t header_bytes = text.size();

  static std::atomic<uint64_t> sequence{0};
  const std::string temp =
      absl::StrCat(path, ".tmp.", ::getpid(), ".", sequence.fetch_add(1));
  Fd fd(::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (fd.get() < 0)
    return OsError(errno, absl::StrCat("creating ", temp, " to write ", path));

  // Writes, syncs and closes the temporary file.
  auto write_temp = [&]() -> absl::Status {
    char length[8];
    std::memcpy(length, &header_bytes, 8);
    LLMSYS_RETURN_IF_ERROR(WriteAll(fd.get(), length, 8, temp));
    LLMSYS_RETURN_IF_ERROR(WriteAll(fd.get(), text.data(), text.size(), temp));
    for (size_t i : order) {
      const Tensor compact = tensors[i].second.Contiguous();
      const size_t bytes =
          static_cast<size_t>(compact.numel()) * compact.element_size();
      if (bytes > 0)
        LLMSYS_RETURN_IF_ERROR(WriteAll(fd.get(), compact.data(), bytes, temp));
    }
    if (::fsync(fd.get()) != 0)
      return OsError(errno, absl::StrCat("syncing ", temp));
    if (const int error = fd.Close(); error != 0)
      return OsError(error, absl::StrCat("closing ", temp));
    if (::rename(temp.c_str(), path.c_str()) != 0)
      return OsError(errno, absl::StrCat("renaming ", temp, " to ", path));
    return absl::OkStatus();
  };
  if (absl::Status s = write_temp(); !s.ok()) {
    fd.Close();
    ::unlink(temp.c_str());
    return s;
  }

  // Make the rename itself durable.
  std::string dir = std::filesystem::path(path).parent_path().string();
  if (dir.empty()) dir = ".";
  Fd dir_fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dir_fd.get() < 0)
    return OsError(errno, absl::StrCat("opening ", dir, " to sync ", path));
  // Some file systems cannot sync a directory (EINVAL): nothing more to do.
  if (::fsync(dir_fd.get()) != 0 && errno != EINVAL)
    return OsError(errno,
                   absl::StrCat("syncing ", dir, " after writing ", path));
  return absl::OkStatus();
}

absl::StatusOr<SafetensorsFile> ReadSafetensors(const std::string& path) {
  auto invalid = [&path](const std::string& what) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": ", what));
  };
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return OsError(errno, absl::StrCat("opening ", path));
  struct stat st;
  if (::fstat(fd.get(), &st) != 0)
    return OsError(errno, absl::StrCat("examining ", path));
  if (!S_ISREG(st.st_mode)) return invalid("not a regular file");
  const uint64_t file_bytes = static_cast<uint64_t>(st.st_size);
  if (file_bytes < 8)
    return invalid(absl::StrCat(
        "not a safetensors file: ", file_bytes,
        " bytes, shorter than the 8-byte header length that starts one"));

  uint64_t header_bytes = 0;
  LLMSYS_RETURN_IF_ERROR(PreadAll(fd.get(), &header_bytes, 8, 0, path));
  if (header_bytes > kSafetensorsMaxHeaderBytes)
    return invalid(absl::StrCat(
        "header length ", header_bytes, " is absurd (the limit is ",
        kSafetensorsMaxHeaderBytes, " bytes); not a safetensors file?"));
  if (header_bytes > file_bytes - 8)
    return invalid(absl::StrCat("header length ", header_bytes,
                                " runs past the end of the file (", file_bytes,
                                " bytes)"));
  std::string text(header_bytes, '\0');
  LLMSYS_RETURN_IF_ERROR(PreadAll(fd.get(), text.data(), text.size(), 8, path));
  LLMSYS_ASSIGN_OR_RETURN(json header, ParseHeader(text, path));
  if (!header.is_object())
    return invalid(absl::StrCat("the header is a JSON ",
                                std::string(header.type_name()),
                                ", not an object"));

  const uint64_t data_start = 8 + header_bytes;
  const uint64_t data_bytes = file_bytes - data_start;
  SafetensorsFile file;
  std::vector<Entry> entries;
  for (const auto& [key, value] : header.items()) {
    if (key == kMetadataKey) {
      if (!value.is_object())
        return invalid(absl::StrCat("\"", kMetadataKey, "\" is a JSON ",
                                    std::string(value.type_name()),
                                    ", not an object"));
      for (const auto& [mkey, mvalue] : value.items()) {
        if (!mvalue.is_string())
          return invalid(absl::StrCat("metadata ", Quoted(mkey), " is a JSON ",
                                      std::string(mvalue.type_name()),
                                      ", not a string"));
        file.metadata.emplace(mkey, mvalue.get<std::string>());
      }
      continue;
    }
    LLMSYS_ASSIGN_OR_RETURN(Entry e, ParseEntry(key, value, data_bytes, path));
    entries.push_back(std::move(e));
  }

  // The tensors tile the data section: no overlap, no gap, nothing after.
  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  uint64_t covered = 0;
  const Entry* previous = nullptr;
  for (const Entry& e : entries) {
    if (e.begin < covered)
      return invalid(absl::StrCat(
          "tensors ", Quoted(previous->name), " (bytes ",
          RangeString(previous->begin, previous->end), ") and ", Quoted(e.name),
          " (bytes ", RangeString(e.begin, e.end), ") overlap"));
    if (e.begin > covered)
      return invalid(absl::StrCat(
          "no tensor covers bytes ", RangeString(covered, e.begin),
          " of the data section (before tensor ", Quoted(e.name), ")"));
    covered = e.end;
    previous = &e;
  }
  if (covered != data_bytes)
    return invalid(absl::StrCat("the data section has ", data_bytes,
                                " bytes but its tensors end at byte ", covered,
                                " (trailing bytes)"));

  for (const Entry& e : entries) {
    absl::StatusOr<Tensor> t = Tensor::Empty(e.shape, e.dtype);
    if (!t.ok())
      return absl::Status(t.status().code(),
                          absl::StrCat(path, ": tensor ", Quoted(e.name), ": ",
                                       std::string(t.status().message())));
    if (e.end > e.begin)
      LLMSYS_RETURN_IF_ERROR(PreadAll(fd.get(), t->data(), e.end - e.begin,
                                      data_start + e.begin, path));
    file.tensors.emplace(e.name, *std::move(t));
  }
  return file;
}

}  // namespace llmsys::tensor
