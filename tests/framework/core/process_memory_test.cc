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
  // The mark restarts from what is resident now (under ASan the freed block
  // stays resident in its quarantine, so compare with the current size).
  ASSERT_TRUE(ResetPeakResident());
  EXPECT_LE(
      PeakResidentBytes(),
      ProcKilobytesLine("/proc/self/status", "VmRSS") + (int64_t{4} << 20));
}

}  // namespace
}  // namespace llmsys::core
