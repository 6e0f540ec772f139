#include "framework/core/process_memory.h"

#include <gtest/gtest.h>

#include <cstring>
#include <memory>

namespace llmsys::core {
namespace {

TEST(ProcessMemoryTest, ReadsProcLinesAndSaysWhenOneIsAbsent) {
  EXPECT_GT(ProcKilobytesLine("/proc/self/status", "VmRSS"), 0);
  EXPECT_EQ(ProcKilobytesLine("/proc/self/status", "NoSuchKey"), -1);
  EXPECT_EQ(ProcKilobytesLine("/no/such/file", "VmRSS"), -1);
  EXPECT_GT(AvailableMemoryBytes(), 0);
}

TEST(ProcessMemoryTest, ThePeakFollowsTouchedMemoryAndResets) {
  ASSERT_TRUE(ResetPeakResident());
  const int64_t before = PeakResidentBytes();
  constexpr size_t kBytes = size_t{64} << 20;
  {
    std::unique_ptr<char[]> block(new char[kBytes]);
    std::memset(block.get(), 1, kBytes);  // resident now
    EXPECT_GE(PeakResidentBytes(), before + static_cast<int64_t>(kBytes) / 2);
  }
  ASSERT_TRUE(ResetPeakResident());  // the block went back to the system
  EXPECT_LT(PeakResidentBytes(), before + static_cast<int64_t>(kBytes) / 2);
}

}  // namespace
}  // namespace llmsys::core
