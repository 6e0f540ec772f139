// The ABI's struct layouts are pinned (static assertions in C++ here and in
// C in abi_layout_c.c), and C and C++ agree on every struct's size.
#include <cstddef>

#include "absl/status/status.h"
#include "gtest/gtest.h"
#include "llmsys/plugin.h"
#include "llmsys/sdk.hpp"

#define LLMSYS_PIN(cond) static_assert(cond, #cond);
#include "abi_layout.inc"
#include "abi_layout_types.inc"

extern "C" size_t llmsys_test_c_sizeof(const char* name);

namespace {

TEST(AbiLayoutTest, CAndCppAgreeOnEveryStructSize) {
#define LLMSYS_EXPECT_SAME_SIZE(T) \
  EXPECT_EQ(llmsys_test_c_sizeof(#T), sizeof(T)) << #T;
  LLMSYS_ABI_STRUCTS(LLMSYS_EXPECT_SAME_SIZE)
#undef LLMSYS_EXPECT_SAME_SIZE
}

TEST(AbiLayoutTest, VersionFieldsLeadTheEntryTable) {
  // These three keep their place in every future major version.
  EXPECT_EQ(offsetof(llmsys_plugin_entry_t, struct_size), 0u);
  EXPECT_EQ(offsetof(llmsys_plugin_entry_t, abi_major), 4u);
  EXPECT_EQ(offsetof(llmsys_plugin_entry_t, abi_minor), 8u);
}

TEST(AbiLayoutTest, StatusCodesMatchAbseil) {
  EXPECT_EQ(LLMSYS_STATUS_INVALID_ARGUMENT,
            static_cast<int>(absl::StatusCode::kInvalidArgument));
  EXPECT_EQ(LLMSYS_STATUS_UNIMPLEMENTED,
            static_cast<int>(absl::StatusCode::kUnimplemented));
  EXPECT_EQ(LLMSYS_STATUS_UNAUTHENTICATED,
            static_cast<int>(absl::StatusCode::kUnauthenticated));
}

TEST(AbiLayoutTest, ErrorSetTruncatesAndTerminates) {
  char buffer[8];
  llmsys_error_t err{buffer, sizeof(buffer)};
  llmsys_error_set(&err, "%s", "a long message");
  EXPECT_STREQ(buffer, "a long ");
  llmsys_error_set(nullptr, "ignored");  // must not crash
}

TEST(AbiLayoutTest, HostHasChecksTheTableSize) {
  llmsys_host_api_t host{};
  host.struct_size = offsetof(llmsys_host_api_t, alloc);  // a table up to log
  host.log = [](const llmsys_host_api_t*, llmsys_log_level_t, const char*) {};
  host.alloc = [](const llmsys_host_api_t*, DLDevice, size_t, size_t) -> void* {
    return nullptr;
  };
  EXPECT_TRUE(LLMSYS_HOST_HAS(&host, log));
  EXPECT_FALSE(LLMSYS_HOST_HAS(&host, alloc));
}

TEST(AbiLayoutTest, TensorHelpers) {
  int64_t shape[3] = {2, 3, 4};
  int64_t strides[3] = {12, 4, 1};
  float data[24] = {};
  DLTensor t{data, {kDLCPU, 0}, 3, LLMSYS_DTYPE_F32, shape, strides, 8};
  EXPECT_EQ(llmsys_tensor_numel(&t), 24);
  EXPECT_EQ(llmsys_tensor_data(&t), static_cast<void*>(data + 2));
  EXPECT_TRUE(llmsys_tensor_is_contiguous(&t));
  int64_t transposed[3] = {12, 1, 4};
  t.strides = transposed;
  EXPECT_FALSE(llmsys_tensor_is_contiguous(&t));
  t.strides = nullptr;
  EXPECT_TRUE(llmsys_tensor_is_contiguous(&t));
}

}  // namespace
