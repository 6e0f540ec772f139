// Safetensors checkpoints: the exact byte layout, round trips of every
// dtype and odd shape, atomic writes, and a reader that rejects every kind
// of corruption with a message naming the file (and never crashes).
#include "framework/tensor/safetensors.h"

#include <dirent.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"

namespace llmsys::tensor {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

// A fresh directory per test, removed afterwards.
class SafetensorsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = ::testing::TempDir() + "/safetensors_test_XXXXXX";
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string Path(const std::string& name) const { return dir_ + "/" + name; }

  // The names in the directory, sorted.
  std::vector<std::string> Listing() const {
    std::vector<std::string> names;
    for (const auto& e : std::filesystem::directory_iterator(dir_))
      names.push_back(e.path().filename().string());
    std::sort(names.begin(), names.end());
    return names;
  }

  std::string dir_;
};

std::string ReadBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void WriteBytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::string LengthPrefix(uint64_t n) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[i] = static_cast<char>((n >> (8 * i)) & 0xFF);
  return s;
}

// A file from a header (padded with spaces to a multiple of 8) and data.
std::string RawFile(std::string header, const std::string& data) {
  header.append((8 - header.size() % 8) % 8, ' ');
  return LengthPrefix(header.size()) + header + data;
}

Tensor Iota(const Shape& shape, DLDataType dtype, double start = 0) {
  std::vector<double> v(static_cast<size_t>(Numel(shape)));
  for (size_t i = 0; i < v.size(); ++i)
    v[i] = start + static_cast<double>(i) * (dtype == kU8 ? 1 : -1.25);
  if (dtype == kI32 || dtype == kI64)
    for (double& x : v) x = std::floor(x * 1000) + 1e9 * (dtype == kI64);
  return *Tensor::FromDoubles(shape, v, dtype);
}

std::string Bytes(const Tensor& t) {
  const Tensor c = t.Contiguous();
  return std::string(static_cast<const char*>(c.data()),
                     static_cast<size_t>(c.numel()) * c.element_size());
}

void ExpectSame(const Tensor& got, const Tensor& want) {
  EXPECT_EQ(got.dtype(), want.dtype());
  EXPECT_EQ(got.shape(), want.shape());
  // (Tensor::is_contiguous is false for some empty shapes, e.g. (4, 0).)
  EXPECT_TRUE(got.numel() == 0 || got.is_contiguous());
  EXPECT_EQ(got.strides(), ContiguousStrides(got.shape()));
  EXPECT_EQ(got.device().device_type, kDLCPU);
  EXPECT_EQ(Bytes(got), Bytes(want)) << got.Describe();
}

TEST_F(SafetensorsTest, WritesHuggingFaceBytesExactly) {
  const std::string path = Path("a.safetensors");
  Tensor a = *Tensor::FromDoubles({2}, {1.0, -2.0}, kF32);
  ASSERT_TRUE(WriteSafetensors(path, {{"a", a}}, {{"format", "pt"}}).ok());
  const std::string header =
      R"({"__metadata__":{"format":"pt"},)"
      R"("a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  std::string data(8, '\0');
  const float values[2] = {1.0f, -2.0f};
  std::memcpy(data.data(), values, 8);
  EXPECT_EQ(ReadBytes(path), RawFile(header, data));
  // No metadata: no "__metadata__" key at all.
  ASSERT_TRUE(WriteSafetensors(path, {{"a", a}}, {}).ok());
  EXPECT_EQ(ReadBytes(path),
            RawFile(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})",
                    data));
}

TEST_F(SafetensorsTest, LaysOutLargestElementsFirstThenByNameAligned) {
  const std::string path = Path("m.safetensors");
  // Given in an order that would misalign the wider tensors.
  std::vector<std::pair<std::string, Tensor>> tensors = {
      {"mask", Iota({3}, kU8)},   {"z_half", Iota({3}, kF16)},
      {"b_f32", Iota({1}, kF32)}, {"a_f32", Iota({2}, kF32)},
      {"steps", Iota({}, kI64)},  {"h", Iota({1}, kBF16)},
      {"d", Iota({2}, kF64)},
  };
  ASSERT_TRUE(WriteSafetensors(path, tensors, {}).ok());
  const std::string bytes = ReadBytes(path);
  uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  EXPECT_EQ(n % 8, 0u);
  const std::string header = bytes.substr(8, n);
  // Header order is the data order: 8-byte, 4-byte, 2-byte, 1-byte.
  std::vector<size_t> at;
  for (const char* name : {"\"d\"", "\"steps\"", "\"a_f32\"", "\"b_f32\"",
                           "\"h\"", "\"z_half\"", "\"mask\""})
    at.push_back(header.find(name));
  EXPECT_TRUE(std::is_sorted(at.begin(), at.end())) << header;
  EXPECT_THAT(header, HasSubstr(R"("d":{"dtype":"F64","shape":[2],)"
                                R"("data_offsets":[0,16]})"));
  EXPECT_THAT(header, HasSubstr(R"("steps":{"dtype":"I64","shape":[],)"
                                R"("data_offsets":[16,24]})"));
  EXPECT_THAT(header, HasSubstr(R"("mask":{"dtype":"U8","shape":[3],)"
                                R"("data_offsets":[44,47]})"));
  EXPECT_EQ(bytes.size(), 8 + n + 47);
}

TEST_F(SafetensorsTest, RoundTripsEveryDTypeAndOddShapes) {
  const std::string path = Path("all.safetensors");
  std::vector<std::pair<std::string, Tensor>> tensors;
  for (DLDataType dtype : {kF32, kF64, kBF16, kF16, kI32, kI64, kU8}) {
    const std::string name = DTypeName(dtype);
    tensors.emplace_back(name, Iota({2, 3, 4}, dtype, 7));
    tensors.emplace_back(name + ".scalar", Tensor::Scalar(3, dtype));
    tensors.emplace_back(name + ".empty", *Tensor::Empty({0, 5}, dtype));
    tensors.emplace_back(name + ".empty_end", *Tensor::Empty({4, 0}, dtype));
  }
  // Special values survive bit for bit.
  tensors.emplace_back(
      "specials",
      *Tensor::FromDoubles(
          {4}, {std::numeric_limits<double>::infinity(), -0.0, 1e-40, 3.0e38},
          kF32));
  std::map<std::string, std::string> metadata = {
      {"format", "pt"},
      {"step", "1200"},
      {"unicode", "\xc3\xa9t\xc3\xa9"},
      {"empty", ""}};
  ASSERT_TRUE(WriteSafetensors(path, tensors, metadata).ok());
  absl::StatusOr<SafetensorsFile> file = ReadSafetensors(path);
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_EQ(file->metadata, metadata);
  ASSERT_EQ(file->tensors.size(), tensors.size());
  for (const auto& [name, t] : tensors) {
    SCOPED_TRACE(name);
    ASSERT_EQ(file->tensors.count(name), 1u);
    ExpectSame(file->tensors.at(name), t);
  }
  // Host memory from the reader is aligned like any other tensor's.
  EXPECT_EQ(
      reinterpret_cast<uintptr_t>(file->tensors.at("float32").data()) % 64, 0u);
}

TEST_F(SafetensorsTest, EmptyFileHoldsNoTensors) {
  const std::string path = Path("none.safetensors");
  ASSERT_TRUE(WriteSafetensors(path, {}, {}).ok());
  EXPECT_EQ(ReadBytes(path), RawFile("{}", ""));
  absl::StatusOr<SafetensorsFile> file = ReadSafetensors(path);
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_TRUE(file->tensors.empty());
  EXPECT_TRUE(file->metadata.empty());
}

TEST_F(SafetensorsTest, WritesNonContiguousTensorsCompact) {
  const std::string path = Path("views.safetensors");
  Tensor x = Iota({3, 4}, kF64);
  Tensor xt = *x.Transpose(0, 1);
  Tensor every_other = *x.Slice(1, 0, 4, 2);
  Tensor expanded = *Iota({1, 3}, kI32).Expand({2, 3});
  ASSERT_FALSE(xt.is_contiguous());
  ASSERT_FALSE(every_other.is_contiguous());
  ASSERT_TRUE(
      WriteSafetensors(
          path,
          {{"xt", xt}, {"every_other", every_other}, {"expanded", expanded}},
          {})
          .ok());
  absl::StatusOr<SafetensorsFile> file = ReadSafetensors(path);
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_EQ(file->tensors.at("xt").shape(), (Shape{4, 3}));
  EXPECT_EQ(file->tensors.at("xt").ToDoubles(), xt.ToDoubles());
  EXPECT_EQ(file->tensors.at("every_other").ToDoubles(),
            every_other.ToDoubles());
  EXPECT_EQ(file->tensors.at("expanded").ToDoubles(), expanded.ToDoubles());
  // 12 + 6 doubles, 6 ints: nothing of the hidden elements was written.
  EXPECT_EQ(ReadBytes(path).size() % 8, 0u);
  uint64_t n = 0;
  std::memcpy(&n, ReadBytes(path).data(), 8);
  EXPECT_EQ(ReadBytes(path).size(), 8 + n + 12 * 8 + 6 * 8 + 6 * 4);
}

TEST_F(SafetensorsTest, OverwritesAnExistingFile) {
  const std::string path = Path("w.safetensors");
  ASSERT_TRUE(WriteSafetensors(path, {{"a", Iota({100}, kF32)}}, {}).ok());
  ASSERT_TRUE(WriteSafetensors(path, {{"b", Iota({2}, kI64)}}, {}).ok());
  absl::StatusOr<SafetensorsFile> file = ReadSafetensors(path);
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_EQ(file->tensors.size(), 1u);
  EXPECT_EQ(file->tensors.count("b"), 1u);
  EXPECT_EQ(Listing(), (std::vector<std::string>{"w.safetensors"}));
}

TEST_F(SafetensorsTest, RejectsBadInputBeforeCreatingAnything) {
  const std::string path = Path("bad.safetensors");
  const Tensor t = Iota({2}, kF32);
  struct Case {
    std::vector<std::pair<std::string, Tensor>> tensors;
    std::map<std::string, std::string> metadata;
    std::string message;
  };
  const std::vector<Case> cases = {
      {{{"a", t}, {"a", t}}, {}, "two tensors are named 'a'"},
      {{{"__metadata__", t}}, {}, "reserved"},
      {{{"u", Tensor()}}, {}, "tensor 'u' is undefined"},
      {{{"a", t}}, {{"k", "\xff\xfe"}}, "not valid UTF-8"},
      {{{"\xc3", t}}, {}, "not valid UTF-8"},
  };
  for (const Case& c : cases) {
    absl::Status s = WriteSafetensors(path, c.tensors, c.metadata);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
    EXPECT_THAT(std::string(s.message()), HasSubstr(c.message));
    EXPECT_THAT(std::string(s.message()), HasSubstr(path));
    EXPECT_TRUE(Listing().empty());
  }
}

TEST_F(SafetensorsTest, FailedWritesLeaveNothingBehind) {
  // Into a missing directory: an error naming it, and no file anywhere.
  const std::string missing = Path("no/such/dir/x.safetensors");
  absl::Status s = WriteSafetensors(missing, {{"a", Iota({2}, kF32)}}, {});
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr(missing));
  EXPECT_TRUE(Listing().empty());

  // Over a directory: the rename fails after the data was written; the
  // temporary file is removed and the directory is untouched.
  const std::string dir_path = Path("taken");
  ASSERT_TRUE(std::filesystem::create_directory(dir_path));
  s = WriteSafetensors(dir_path, {{"a", Iota({2}, kF32)}}, {});
  EXPECT_FALSE(s.ok());
  EXPECT_THAT(std::string(s.message()), HasSubstr("renaming"));
  EXPECT_EQ(Listing(), (std::vector<std::string>{"taken"}));
  EXPECT_TRUE(std::filesystem::is_directory(dir_path));
}

TEST_F(SafetensorsTest, ExistingFileSurvivesAFailedOverwrite) {
  const std::string path = Path("keep.safetensors");
  ASSERT_TRUE(
      WriteSafetensors(path, {{"old", Iota({4}, kF32)}}, {{"v", "1"}}).ok());
  const std::string before = ReadBytes(path);

  // Rejected input.
  EXPECT_FALSE(WriteSafetensors(
                   path, {{"a", Iota({2}, kF32)}, {"a", Iota({2}, kF32)}}, {})
                   .ok());
  EXPECT_EQ(ReadBytes(path), before);

  // The disk "fills" halfway through the data: a child process limited to
  // 64 KiB files writes 1 MiB over the file.
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::signal(SIGXFSZ, SIG_IGN);  // write() fails with EFBIG instead
    struct rlimit limit = {64 << 10, 64 << 10};
    ::setrlimit(RLIMIT_FSIZE, &limit);
    absl::Status st =
        WriteSafetensors(path, {{"big", *Tensor::Zeros({1 << 18}, kF32)}}, {});
    ::_exit(st.ok()                                                   ? 1
            : st.message().find("writing") != absl::string_view::npos ? 0
                                                                      : 2);
  }
  int wstatus = 0;
  ASSERT_EQ(::waitpid(child, &wstatus, 0), child);
  ASSERT_TRUE(WIFEXITED(wstatus));
  EXPECT_EQ(WEXITSTATUS(wstatus), 0);
  EXPECT_EQ(ReadBytes(path), before);
  EXPECT_EQ(Listing(), (std::vector<std::string>{"keep.safetensors"}));
  absl::StatusOr<SafetensorsFile> file = ReadSafetensors(path);
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_EQ(file->metadata.at("v"), "1");
}

TEST_F(SafetensorsTest, ReadsBoolAsUint8AndRejectsOtherDTypes) {
  const std::string path = Path("bool.safetensors");
  WriteBytes(
      path,
      RawFile(R"({"m":{"dtype":"BOOL","shape":[3],"data_offsets":[0,3]}})",
              std::string("\x01\x00\x01", 3)));
  absl::StatusOr<SafetensorsFile> file = ReadSafetensors(path);
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_EQ(file->tensors.at("m").dtype(), kU8);
  EXPECT_EQ(file->tensors.at("m").ToDoubles(), (std::vector<double>{1, 0, 1}));
}

// Each corruption, and the words its error must contain.
struct Corruption {
  const char* what;
  std::string bytes;
  std::string message;
};

std::vector<Corruption> Corruptions() {
  const std::string d8(8, '\x11'), d16(16, '\x22');
  auto f32 = [](const std::string& name, const std::string& shape,
                const std::string& offsets) {
    return absl::StrCat("\"", name, "\":{\"dtype\":\"F32\",\"shape\":", shape,
                        ",\"data_offsets\":", offsets, "}");
  };
  return {
      {"empty file", "", "0 bytes, shorter than the 8-byte header length"},
      {"short file", "abcde", "5 bytes, shorter than the 8-byte"},
      {"length past the end", LengthPrefix(64) + "{}      ",
       "header length 64 runs past the end of the file (16 bytes)"},
      {"absurd length", LengthPrefix(uint64_t{1} << 40) + "{}      ",
       "header length 1099511627776 is absurd"},
      {"huge length", LengthPrefix(~uint64_t{0}) + "{}      ", "is absurd"},
      {"not JSON", RawFile("{\"a\":", ""), "the header is not valid JSON"},
      {"binary header", RawFile(std::string("{\0\0\0", 4), ""),
       "not valid JSON"},
      {"JSON array", RawFile("[]", ""), "the header is a JSON array"},
      {"trailing JSON", RawFile("{} {}", ""), "not valid JSON"},
      {"entry not object", RawFile(R"({"x":[1]})", ""),
       "tensor 'x': its entry is a JSON array, not an object"},
      {"missing dtype",
       RawFile(R"({"x":{"shape":[2],"data_offsets":[0,8]}})", d8),
       "tensor 'x': its entry has no \"dtype\""},
      {"missing shape",
       RawFile(R"({"x":{"dtype":"F32","data_offsets":[0,8]}})", d8),
       "has no \"shape\""},
      {"missing offsets", RawFile(R"({"x":{"dtype":"F32","shape":[2]}})", d8),
       "has no \"data_offsets\""},
      {"extra key",
       RawFile(absl::StrCat("{", f32("x", "[2]", "[0,8]"), "}")
                   .replace(6, 0, "\"extra\":1,"),
               d8),
       "unknown key 'extra'"},
      {"dtype not string",
       RawFile(R"({"x":{"dtype":4,"shape":[2],"data_offsets":[0,8]}})", d8),
       "\"dtype\" is a JSON number, not a string"},
      {"unknown dtype",
       RawFile(R"({"x":{"dtype":"I8","shape":[8],"data_offsets":[0,8]}})", d8),
       "tensor 'x': unknown dtype 'I8' (supported: F32"},
      {"shape not array",
       RawFile(R"({"x":{"dtype":"F32","shape":"2","data_offsets":[0,8]}})", d8),
       "\"shape\" is a JSON string, not an array"},
      {"fractional shape", RawFile("{" + f32("x", "[2.0]", "[0,8]") + "}", d8),
       "shape [2.0] is not a list of sizes"},
      {"negative shape", RawFile("{" + f32("x", "[-2]", "[0,8]") + "}", d8),
       "negative size in shape [-2]"},
      {"shape too big for int64",
       RawFile("{" + f32("x", "[9223372036854775808]", "[0,8]") + "}", d8),
       "is not a list of sizes"},
      {"shape overflows",
       RawFile("{" + f32("x", "[4294967296,4294967296]", "[0,8]") + "}", d8),
       "is too large"},
      {"nine dims",
       RawFile("{" + f32("x", "[1,1,1,1,1,1,1,1,2]", "[0,8]") + "}", d8),
       "has 9 dims, more than the 8"},
      {"very long array",
       RawFile("{" +
                   f32(
                       "x",
                       "[1" +
                           [] {
                             std::string s;
                             for (int i = 0; i < 100; ++i) s += ",1";
                             return s;
                           }() +
                           "]",
                       "[0,8]") +
                   "}",
               d8),
       "with more than 64 elements"},
      {"deep nesting", RawFile(R"({"x":{"shape":[[[[1]]]]}})", ""),
       "nests deeper than a safetensors header can"},
      {"offsets not pair", RawFile("{" + f32("x", "[2]", "[0]") + "}", d8),
       "\"data_offsets\" is [0], not [begin, end]"},
      {"offsets negative", RawFile("{" + f32("x", "[2]", "[-8,0]") + "}", d8),
       "not [begin, end]"},
      {"offsets reversed", RawFile("{" + f32("x", "[0]", "[8,0]") + "}", d8),
       "end before they begin"},
      {"size mismatch", RawFile("{" + f32("x", "[3]", "[0,8]") + "}", d8),
       "data_offsets [0, 8) span 8 bytes but float32 (3) needs 12"},
      {"truncated", RawFile("{" + f32("x", "[4]", "[0,16]") + "}", d8),
       "truncated: tensor 'x' needs bytes [0, 16) but the data section has 8"},
      {"overlap",
       RawFile("{" + f32("x", "[4]", "[0,16]") + "," +
                   f32("y", "[2]", "[8,16]") + "}",
               d16),
       "tensors 'x' (bytes [0, 16)) and 'y' (bytes [8, 16)) overlap"},
      {"same bytes",
       RawFile("{" + f32("x", "[2]", "[0,8]") + "," + f32("y", "[2]", "[0,8]") +
                   "}",
               d8),
       "overlap"},
      {"gap", RawFile("{" + f32("x", "[2]", "[8,16]") + "}", d16),
       "no tensor covers bytes [0, 8) of the data section (before tensor 'x')"},
      {"trailing bytes", RawFile("{" + f32("x", "[2]", "[0,8]") + "}", d16),
       "the data section has 16 bytes but its tensors end at byte 8"},
      {"duplicate name",
       RawFile("{" + f32("x", "[2]", "[0,8]") + "," +
                   f32("x", "[2]", "[8,16]") + "}",
               d16),
       "repeats the key 'x' (a duplicate tensor name)"},
      {"duplicate field",
       RawFile(R"({"x":{"dtype":"F32","dtype":"F32","shape":[2],)"
               R"("data_offsets":[0,8]}})",
               d8),
       "repeats the key 'dtype'"},
      {"metadata not object", RawFile(R"({"__metadata__":[]})", ""),
       "\"__metadata__\" is a JSON array, not an object"},
      {"metadata not string", RawFile(R"({"__metadata__":{"step":3}})", ""),
       "metadata 'step' is a JSON number, not a string"},
      {"invalid UTF-8", RawFile("{\"\xff\":1}", ""), "not valid JSON"},
  };
}

TEST_F(SafetensorsTest, RejectsEveryCorruptionWithAClearMessage) {
  for (const Corruption& c : Corruptions()) {
    SCOPED_TRACE(c.what);
    const std::string path = Path("corrupt.safetensors");
    WriteBytes(path, c.bytes);
    absl::StatusOr<SafetensorsFile> file = ReadSafetensors(path);
    ASSERT_FALSE(file.ok());
    EXPECT_EQ(file.status().code(), absl::StatusCode::kInvalidArgument)
        << file.status();
    EXPECT_THAT(std::string(file.status().message()), StartsWith(path + ": "));
    EXPECT_THAT(std::string(file.status().message()), HasSubstr(c.message));
  }
}

TEST_F(SafetensorsTest, MissingFileAndDirectoryAreErrors) {
  absl::StatusOr<SafetensorsFile> file = ReadSafetensors(Path("nope"));
  EXPECT_EQ(file.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(file.status().message()), HasSubstr(Path("nope")));
  file = ReadSafetensors(dir_);
  EXPECT_FALSE(file.ok());
  EXPECT_THAT(std::string(file.status().message()), HasSubstr(dir_));
}

// A small valid file with a few dtypes and metadata.
std::string SmallValidFile(const std::string& path) {
  EXPECT_TRUE(WriteSafetensors(path,
                               {{"w", Iota({2, 2}, kF32)},
                                {"b", Iota({3}, kBF16)},
                                {"n", Iota({}, kI64)},
                                {"m", Iota({2}, kU8)}},
                               {{"k", "v"}})
                  .ok());
  return ReadBytes(path);
}

TEST_F(SafetensorsTest, EveryTruncationIsAnError) {
  const std::string full = SmallValidFile(Path("full.safetensors"));
  ASSERT_TRUE(ReadSafetensors(Path("full.safetensors")).ok());
  const std::string path = Path("cut.safetensors");
  for (size_t n = 0; n < full.size(); ++n) {
    SCOPED_TRACE(n);
    WriteBytes(path, full.substr(0, n));
    absl::StatusOr<SafetensorsFile> file = ReadSafetensors(path);
    ASSERT_FALSE(file.ok());
    EXPECT_THAT(std::string(file.status().message()), StartsWith(path));
  }
  // Past the header, the message is the truncation one.
  uint64_t header = 0;
  std::memcpy(&header, full.data(), 8);
  WriteBytes(path, full.substr(0, full.size() - 1));
  EXPECT_THAT(std::string(ReadSafetensors(path).status().message()),
              HasSubstr("truncated: tensor"));
}

TEST_F(SafetensorsTest, SingleByteFlipsNeverCrash) {
  const std::string full = SmallValidFile(Path("full.safetensors"));
  uint64_t header = 0;
  std::memcpy(&header, full.data(), 8);
  const std::string path = Path("flip.safetensors");
  int accepted = 0;
  for (size_t i = 0; i < 8 + header; ++i) {
    for (unsigned char mask : {0x01, 0x20, 0x80, 0xFF}) {
      std::string bytes = full;
      bytes[i] = static_cast<char>(bytes[i] ^ mask);
      WriteBytes(path, bytes);
      absl::StatusOr<SafetensorsFile> file = ReadSafetensors(path);
      if (!file.ok()) {
        EXPECT_THAT(std::string(file.status().message()), StartsWith(path));
        continue;
      }
      // A flip that still parses (e.g. inside a name or a metadata value)
      // must still describe the bytes exactly.
      ++accepted;
      size_t total = 0;
      for (const auto& [name, t] : file->tensors)
        total += static_cast<size_t>(t.numel()) * t.element_size();
      EXPECT_EQ(total + 8 + header, full.size());
    }
  }
  EXPECT_GT(accepted, 0);  // name and value bytes can flip harmlessly
}

TEST_F(SafetensorsTest, RandomBytesNeverCrash) {
  std::mt19937_64 rng(20240611);
  const std::string path = Path("random.safetensors");
  const std::string valid = SmallValidFile(Path("full.safetensors"));
  for (int i = 0; i < 400; ++i) {
    std::string bytes(rng() % 300, '\0');
    for (char& c : bytes) c = static_cast<char>(rng());
    if (i % 4 == 1 && bytes.size() >= 8) {  // a plausible length
      const std::string len = LengthPrefix(rng() % (bytes.size() - 7));
      bytes.replace(0, 8, len);
    } else if (i % 4 == 2) {  // a valid file with random bytes spliced in
      bytes = valid;
      for (int k = 0; k < 3; ++k)
        bytes[rng() % bytes.size()] = static_cast<char>(rng());
    } else if (i % 4 == 3) {  // JSON-ish noise under a right length
      static const char kAlphabet[] = "{}[]\":,0123456789-.eE ftnulrsadF";
      std::string text(rng() % 120, ' ');
      for (char& c : text) c = kAlphabet[rng() % (sizeof(kAlphabet) - 1)];
      bytes = RawFile(text, std::string(rng() % 40, '\0'));
    }
    WriteBytes(path, bytes);
    absl::StatusOr<SafetensorsFile> file = ReadSafetensors(path);
    if (!file.ok()) {
      EXPECT_THAT(std::string(file.status().message()), StartsWith(path));
    }
  }
}

}  // namespace
}  // namespace llmsys::tensor
