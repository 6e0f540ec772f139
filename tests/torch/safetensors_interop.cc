// tests/torch/safetensors_interop.cc — the C++ half of the safetensors
// interop check with PyTorch (safetensors_interop.py drives it).
//
//   safetensors_interop write OUT.safetensors OUT.json
//       writes tensors of every dtype (and a 0-d, an empty and strided
//       ones) with WriteSafetensors, and their values as JSON;
//   safetensors_interop read IN.safetensors IN.json
//       reads a file Python wrote with ReadSafetensors and compares it with
//       the values in the JSON.
//
// JSON: {"metadata": {...}, "tensors": {name: {"dtype": "F32", "shape":
// [..], "values": [..]}}}, values row-major; floats as numbers or "nan",
// "inf", "-inf" (and "-0.0" for negative zero); integers exact.
//
// Exit status 0 on success, 1 on a mismatch or an error, 2 on a usage error.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <iostream>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "framework/tensor/safetensors.h"
#include "framework/tensor/tensor.h"

namespace {

using llmsys::tensor::Shape;
using llmsys::tensor::Tensor;
using nlohmann::json;
namespace tensor = llmsys::tensor;

json FloatValue(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  if (v == 0 && std::signbit(v)) return "-0.0";
  return v;
}

double ParseFloat(const json& v) {
  if (v.is_string()) {
    const std::string s = v.get<std::string>();
    if (s == "nan") return std::numeric_limits<double>::quiet_NaN();
    if (s == "inf") return std::numeric_limits<double>::infinity();
    if (s == "-inf") return -std::numeric_limits<double>::infinity();
    if (s == "-0.0") return -0.0;
    throw std::runtime_error("bad float value " + s);
  }
  return v.get<double>();
}

// The values of a host tensor as JSON (integers exactly).
json Values(const Tensor& t) {
  const Tensor c = t.Contiguous();
  json out = json::array();
  const int64_t n = c.numel();
  if (c.dtype() == tensor::kI64) {
    for (int64_t i = 0; i < n; ++i) out.push_back(c.data_as<int64_t>()[i]);
  } else if (c.dtype() == tensor::kI32) {
    for (int64_t i = 0; i < n; ++i) out.push_back(c.data_as<int32_t>()[i]);
  } else if (c.dtype() == tensor::kU8) {
    for (int64_t i = 0; i < n; ++i) out.push_back(c.data_as<uint8_t>()[i]);
  } else {
    for (double v : c.ToDoubles()) out.push_back(FloatValue(v));
  }
  return out;
}

Tensor Int64s(const Shape& shape, const std::vector<int64_t>& values) {
  Tensor t = *Tensor::Empty(shape, tensor::kI64);
  std::memcpy(t.data(), values.data(), values.size() * sizeof(int64_t));
  return t;
}

int Write(const std::string& path, const std::string& json_path) {
  const double inf = std::numeric_limits<double>::infinity();
  const double nan = std::numeric_limits<double>::quiet_NaN();
  // (3, 2) transposed: a strided (2, 3) view.
  Tensor f32 =
      *(*Tensor::FromDoubles({3, 2}, {1.5, -inf, nan, -0.0, 1e-40, 3.4e38},
                             tensor::kF32))
           .Transpose(0, 1);
  std::vector<std::pair<std::string, Tensor>> tensors = {
      {"f32.strided", f32},
      {"f64",
       *Tensor::FromDoubles({4}, {1.0 / 3, -1e300, 5e-324, inf}, tensor::kF64)},
      {"bf16", *Tensor::FromDoubles({2, 2}, {1.5, -2.25, 3.14159, 65280},
                                    tensor::kBF16)},
      {"f16", *Tensor::FromDoubles({3}, {0.5, -65504, 6.1e-5}, tensor::kF16)},
      {"i32", *Tensor::FromDoubles({4}, {-2147483648.0, 2147483647.0, 0, -1},
                                   tensor::kI32)},
      {"i64", Int64s({2, 2},
                     {-(int64_t{1} << 62) - 3, (int64_t{1} << 53) + 1, 0, -1})},
      {"u8", *Tensor::FromDoubles({4}, {0, 1, 255, 128}, tensor::kU8)},
      {"scalar", tensor::Tensor::Scalar(2.5, tensor::kF32)},
      {"empty", *Tensor::Empty({0, 3}, tensor::kF32)},
      {"i32.every_other",
       *(*Tensor::FromDoubles({6}, {10, 11, 12, 13, 14, 15}, tensor::kI32))
            .Slice(0, 0, 6, 2)},
  };
  const std::map<std::string, std::string> metadata = {{"format", "pt"},
                                                       {"producer", "llmsys"}};
  if (absl::Status s = tensor::WriteSafetensors(path, tensors, metadata);
      !s.ok()) {
    std::cerr << "safetensors_interop: " << s << "\n";
    return 1;
  }
  json expected = {{"metadata", metadata}, {"tensors", json::object()}};
  for (const auto& [name, t] : tensors) {
    expected["tensors"][name] = {
        {"dtype", *tensor::SafetensorsDTypeName(t.dtype())},
        {"shape", t.shape()},
        {"values", Values(t)}};
  }
  std::ofstream out(json_path);
  out << expected.dump(1) << "\n";
  return out.good() ? 0 : 1;
}

// Exact equality, NaN equal to NaN, and the sign of zero.
bool SameFloat(double a, double b) {
  if (std::isnan(a) || std::isnan(b)) return std::isnan(a) && std::isnan(b);
  return a == b && std::signbit(a) == std::signbit(b);
}

int Read(const std::string& path, const std::string& json_path) {
  absl::StatusOr<tensor::SafetensorsFile> file = tensor::ReadSafetensors(path);
  if (!file.ok()) {
    std::cerr << "safetensors_interop: " << file.status() << "\n";
    return 1;
  }
  std::ifstream in(json_path);
  const json expected = json::parse(in);
  int failures = 0;
  auto fail = [&failures](const std::string& what) {
    std::cerr << "safetensors_interop: MISMATCH " << what << "\n";
    ++failures;
  };
  if (json(file->metadata) != expected.at("metadata"))
    fail("metadata " + json(file->metadata).dump() + " vs " +
         expected.at("metadata").dump());
  if (file->tensors.size() != expected.at("tensors").size())
    fail("tensor count " + std::to_string(file->tensors.size()));
  for (const auto& [name, want] : expected.at("tensors").items()) {
    auto it = file->tensors.find(name);
    if (it == file->tensors.end()) {
      fail("missing tensor " + name);
      continue;
    }
    const Tensor& t = it->second;
    absl::StatusOr<DLDataType> dtype =
        tensor::ParseSafetensorsDType(want.at("dtype").get<std::string>());
    if (!dtype.ok() || !(t.dtype() == *dtype)) {
      fail(name + ": dtype " + tensor::DTypeName(t.dtype()));
      continue;
    }
    if (t.shape() != want.at("shape").get<Shape>()) {
      fail(name + ": shape " + tensor::ShapeString(t.shape()));
      continue;
    }
    const json got = Values(t);
    const json& values = want.at("values");
    if (got.size() != values.size()) {
      fail(name + ": value count");
      continue;
    }
    for (size_t i = 0; i < got.size(); ++i) {
      const bool same =
          tensor::IsFloatDType(t.dtype())
              ? SameFloat(ParseFloat(got[i]), ParseFloat(values[i]))
              : got[i].get<int64_t>() == values[i].get<int64_t>();
      if (!same) {
        fail(name + "[" + std::to_string(i) + "]: " + got[i].dump() + " vs " +
             values[i].dump());
        break;
      }
    }
  }
  std::cout << "safetensors_interop: read " << file->tensors.size()
            << " tensors from " << path << ", " << failures << " mismatches\n";
  return failures == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    std::cerr << "usage: safetensors_interop write|read FILE.safetensors "
                 "FILE.json\n";
    return 2;
  }
  const std::string mode = argv[1];
  try {
    if (mode == "write") return Write(argv[2], argv[3]);
    if (mode == "read") return Read(argv[2], argv[3]);
  } catch (const std::exception& e) {
    std::cerr << "safetensors_interop: " << e.what() << "\n";
    return 1;
  }
  std::cerr << "safetensors_interop: unknown mode " << mode << "\n";
  return 2;
}
