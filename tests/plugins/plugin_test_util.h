// tests/plugins/plugin_test_util.h — what the built-in plugin tests share:
// loading a built plugin file, an error buffer, and DLTensors over
// std::vector storage.
//
// clang-format off
//   std::shared_ptr<runtime::Plugin> plugin = LoadBuiltinPlugin("optimizers.so");
//   const runtime::Component* sgd =
//       plugin->FindComponent(LLMSYS_KIND_OPTIMIZER, "sgd");
//   TestTensor<float> p({2, 3}, {1, 2, 3, 4, 5, 6});
//   ErrorBuffer err;
//   ... sgd->As<llmsys_optimizer_t>()->step(instance, &args, err.get()) ...
// clang-format on
//
// The tests call the plugins through the C ABI exactly as the host does, so
// they check what a user's experiment will see.
//
// Thread-safety: test-only helpers, used from the test's thread.
// Ownership: a TestTensor owns its storage and its DLTensor view; the view
// from dl() stays valid while the TestTensor lives and keeps its size.
#ifndef LLMSYS_TESTS_PLUGINS_PLUGIN_TEST_UTIL_H_
#define LLMSYS_TESTS_PLUGINS_PLUGIN_TEST_UTIL_H_

#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "framework/runtime/plugin.h"
#include "llmsys/plugin.h"

namespace llmsys::plugins_test {

// Loads LLMSYS_BUILTIN_PLUGIN_DIR/<file> (e.g. "optimizers.so"); a load
// error fails the test and returns nullptr.
inline std::shared_ptr<runtime::Plugin> LoadBuiltinPlugin(
    const std::string& file) {
  absl::StatusOr<std::shared_ptr<runtime::Plugin>> plugin =
      runtime::Plugin::Load(std::string(LLMSYS_BUILTIN_PLUGIN_DIR) + "/" +
                            file);
  EXPECT_TRUE(plugin.ok()) << plugin.status();
  return plugin.ok() ? *std::move(plugin) : nullptr;
}

// A caller-owned message buffer for one C call.
class ErrorBuffer {
 public:
  ErrorBuffer() : err_{message_, sizeof(message_)} {}
  ErrorBuffer(const ErrorBuffer&) = delete;
  ErrorBuffer& operator=(const ErrorBuffer&) = delete;

  llmsys_error_t* get() { return &err_; }
  std::string message() const { return message_; }

 private:
  char message_[1024] = {};
  llmsys_error_t err_;
};

template <class T>
DLDataType DtypeOf() {
  if constexpr (std::is_same_v<T, float>) return LLMSYS_DTYPE_F32;
  if constexpr (std::is_same_v<T, double>) return LLMSYS_DTYPE_F64;
  if constexpr (std::is_same_v<T, int64_t>) return LLMSYS_DTYPE_I64;
  if constexpr (std::is_same_v<T, int32_t>) return LLMSYS_DTYPE_I32;
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double> ||
                    std::is_same_v<T, int64_t> || std::is_same_v<T, int32_t>,
                "no DLPack dtype for this element type");
}

// A compact row-major CPU tensor over a std::vector. Not copyable or
// movable, so the DLTensor view never dangles.
template <class T>
class TestTensor {
 public:
  TestTensor(std::vector<int64_t> shape, std::vector<T> values)
      : shape_(std::move(shape)), values_(std::move(values)) {
    int64_t n = 1;
    for (int64_t d : shape_) n *= d;
    EXPECT_EQ(static_cast<int64_t>(values_.size()), n)
        << "test bug: values do not fill the shape";
  }
  TestTensor(const TestTensor&) = delete;
  TestTensor& operator=(const TestTensor&) = delete;

  // The DLPack view (strides NULL: compact).
  DLTensor* dl() {
    dl_ = DLTensor{};
    dl_.data = values_.data();
    dl_.device = DLDevice{kDLCPU, 0};
    dl_.ndim = static_cast<int32_t>(shape_.size());
    dl_.dtype = DtypeOf<T>();
    dl_.shape = shape_.data();
    dl_.strides = nullptr;
    dl_.byte_offset = 0;
    return &dl_;
  }

  const std::vector<int64_t>& shape() const { return shape_; }
  std::vector<T>& values() { return values_; }
  const std::vector<T>& values() const { return values_; }
  T& operator[](size_t i) { return values_[i]; }

 private:
  std::vector<int64_t> shape_;
  std::vector<T> values_;
  DLTensor dl_{};
};

// A CPU call context with one thread and no host (the plugins under test
// need neither the host API nor a workspace).
inline llmsys_call_context_t CpuContext() {
  llmsys_call_context_t ctx{};
  ctx.struct_size = sizeof(ctx);
  ctx.device = DLDevice{kDLCPU, 0};
  ctx.num_threads = 1;
  return ctx;
}

}  // namespace llmsys::plugins_test

#endif  // LLMSYS_TESTS_PLUGINS_PLUGIN_TEST_UTIL_H_
