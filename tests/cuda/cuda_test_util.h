// tests/cuda/cuda_test_util.h — running llmsys.cuda's components in tests
// on a machine without a GPU: the emulated plugin (tests/cuda/emu: the same
// host code, the kernels compiled for the CPU) on the emulated device
// (emulated_device.h), plus argument-check helpers and what the value tests
// of every kernel family share (inputs on the device, tolerant compares).
//
//   Specs s = *Infer("layer_norm.cuda", {FakeTensor{{2, 8}, tensor::kF32},
//                                         std::nullopt, std::nullopt});
//   auto impl = EmulatedOp("softmax.cuda", "softmax");
//   Tensor x = OnDevice({2, 8}, RandomUniform(16, 1, -2.0, 2.0), kF32);
//   Tensor out = (*impl->Forward({x}, *impl->Attrs({}), {}))[0];
//   ExpectNear(out.ToDoubles(), want, 1e-5, "softmax");
//
// Thread-safety: test-only helpers, used from the test's thread.
#ifndef LLMSYS_TESTS_CUDA_CUDA_TEST_UTIL_H_
#define LLMSYS_TESTS_CUDA_CUDA_TEST_UTIL_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "framework/runtime/operator_call.h"
#include "framework/runtime/registry.h"
#include "framework/tensor/tensor.h"
#include "tests/cuda/emulated_device.h"

namespace llmsys::cuda_test {

inline constexpr DLDevice kCuda0{kDLCUDA, 0};

// A tensor on cuda:0 for argument checks: shape and dtype only (its memory
// is allocated on the emulated device and never read by Infer).
struct FakeTensor {
  std::vector<int64_t> shape;
  DLDataType dtype;
};
using Specs = std::vector<std::pair<std::vector<int64_t>, DLDataType>>;

// The file of the plugin under test: the emulated llmsys.cuda, or the real
// cuda.so when OnRealGpu().
std::string CudaPluginFile();

// The emulated llmsys.cuda plugin (CudaPluginFile()), loaded once per test
// binary (and the emulated device installed).
const runtime::PluginRegistry& EmulatedPlugin();

// Operator `id` of the emulated plugin for op `op`, default parameters
// replaced by `params`; nullptr after a test failure when missing.
std::unique_ptr<runtime::OperatorImpl> EmulatedOp(
    const std::string& id, const std::string& op,
    const runtime::AttrList& params = {});

// Runs component `id`'s infer (its argument checks and output shapes) with
// these inputs (std::nullopt: an absent optional input) and attributes.
absl::StatusOr<Specs> Infer(
    const std::string& id, const std::vector<std::optional<FakeTensor>>& inputs,
    const runtime::AttrList& attrs = {});

// ---- values ----

// The number of elements of a tensor of this shape.
int64_t Numel(const std::vector<int64_t>& shape);

// n values drawn uniformly from [lo, hi) by std::mt19937 seeded with
// `seed`: the same values on every run.
std::vector<double> RandomUniform(int64_t n, uint32_t seed, double lo,
                                  double hi);

// `values` on cuda:0 as `dtype` (the emulated device installed first);
// with `offset`, a view one element into a larger buffer (its data pointer
// is not 16-byte aligned: the kernels take single-element loads).
tensor::Tensor OnDevice(const std::vector<int64_t>& shape,
                        const std::vector<double>& values, DLDataType dtype,
                        bool offset = false);

// Expects got[i] within tol * (1 + |want[i]|) of want[i] (abs + rel), NaN
// where want[i] is NaN and the same infinity where it is infinite; reports
// the first 10 mismatches, each named what[i].
void ExpectNear(const std::vector<double>& got, const std::vector<double>& want,
                double tol, const std::string& what);

}  // namespace llmsys::cuda_test

#endif  // LLMSYS_TESTS_CUDA_CUDA_TEST_UTIL_H_
