// SHA-256 against the FIPS 180-2 vectors and sha256sum, the parsers of the
// machine probe against captured text, and the probe and build facts
// against what this machine and build say.
#include "framework/core/provenance.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cctype>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>

#include "framework/core/version.h"
#include "llmsys/version.h"

namespace llmsys::core {
namespace {

namespace fs = std::filesystem;

fs::path TestFile(const std::string& name) {
  return fs::path(::testing::TempDir()) /
         ("llmsys_provenance_" + std::to_string(getpid()) + "_" + name);
}

void WriteBytes(const fs::path& p, const std::string& bytes) {
  std::ofstream(p, std::ios::binary) << bytes;
}

// The first word `command` prints ("" when it cannot run).
std::string FirstWordOf(const std::string& command) {
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) return "";
  char buffer[256] = {};
  std::string word;
  if (std::fscanf(pipe, "%255s", buffer) == 1) word = buffer;
  ::pclose(pipe);
  return word;
}

TEST(Sha256Test, KnownVectors) {
  EXPECT_EQ(Sha256Hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(Sha256Hex(""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(
      Sha256Hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
      "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

TEST(Sha256Test, FilesOfAnySize) {
  const fs::path empty = TestFile("empty");
  WriteBytes(empty, "");
  absl::StatusOr<std::string> h = Sha256File(empty);
  ASSERT_TRUE(h.ok()) << h.status();
  EXPECT_EQ(*h,
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");

  // One million 'a' (FIPS 180-2): sixteen read chunks, the last one short.
  const fs::path million = TestFile("million");
  WriteBytes(million, std::string(1000000, 'a'));
  h = Sha256File(million);
  ASSERT_TRUE(h.ok()) << h.status();
  EXPECT_EQ(*h,
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");

  // Random bytes (NULs included), an odd size over 64 KiB, against
  // coreutils.
  const fs::path noise = TestFile("noise");
  std::mt19937 rng(7);
  std::string bytes(200003, '\0');
  for (char& c : bytes) c = static_cast<char>(rng() & 0xff);
  WriteBytes(noise, bytes);
  h = Sha256File(noise);
  ASSERT_TRUE(h.ok()) << h.status();
  EXPECT_EQ(*h, Sha256Hex(bytes));
  const std::string coreutils =
      FirstWordOf("sha256sum '" + noise.string() + "' 2>/dev/null");
  if (coreutils.empty()) GTEST_SKIP() << "sha256sum not found";
  EXPECT_EQ(*h, coreutils);
  fs::remove(empty);
  fs::remove(million);
  fs::remove(noise);
}

TEST(Sha256Test, AMissingFileIsNotFoundNamingIt) {
  absl::StatusOr<std::string> h = Sha256File("/no/such/plugin.so");
  ASSERT_FALSE(h.ok());
  EXPECT_TRUE(absl::IsNotFound(h.status())) << h.status();
  EXPECT_NE(h.status().message().find("/no/such/plugin.so"), std::string::npos)
      << h.status();
}

TEST(Sha256Test, RecognizesHexDigests) {
  const std::string good = Sha256Hex("abc");
  EXPECT_TRUE(IsSha256Hex(good));
  std::string upper = good;
  for (char& c : upper) c = static_cast<char>(std::toupper(c));
  EXPECT_TRUE(IsSha256Hex(upper));
  EXPECT_FALSE(IsSha256Hex(good.substr(1)));
  EXPECT_FALSE(IsSha256Hex(good + "0"));
  EXPECT_FALSE(IsSha256Hex("g" + good.substr(1)));
  EXPECT_FALSE(IsSha256Hex(""));
}

TEST(MachineTest, ParsesNvidiaSmiList) {
  EXPECT_EQ(ParseNvidiaSmiList(
                "GPU 0: NVIDIA H200 (UUID: GPU-0d4d5d1e-aaaa-bbbb-cccc-1234)\n"
                "GPU 1: NVIDIA A100-SXM4-80GB (UUID: GPU-9f8e)\n"
                "  MIG 1g.10gb Device 0: (UUID: MIG-1234)\n"),
            (std::vector<std::string>{"NVIDIA H200", "NVIDIA A100-SXM4-80GB"}));
  EXPECT_TRUE(ParseNvidiaSmiList("").empty());
  EXPECT_TRUE(ParseNvidiaSmiList("NVIDIA-SMI has failed\n").empty());
}

TEST(MachineTest, ParsesProcInformationAndCpuInfo) {
  EXPECT_EQ(ParseNvidiaProcInformation("Model: \t\t NVIDIA H200\n"
                                       "IRQ:   \t\t 123\n"
                                       "GPU UUID: \t GPU-0d4d\n"),
            "NVIDIA H200");
  EXPECT_EQ(ParseNvidiaProcInformation("IRQ: 1\n"), "");
  EXPECT_EQ(ParseCpuModel("processor\t: 0\nvendor_id\t: GenuineIntel\n"
                          "model\t\t: 143\n"
                          "model name\t: Intel(R) Xeon(R) Platinum 8480+\n"
                          "processor\t: 1\n"
                          "model name\t: Intel(R) Xeon(R) Platinum 8480+\n"),
            "Intel(R) Xeon(R) Platinum 8480+");
  EXPECT_EQ(ParseCpuModel("processor\t: 0\nBogoMIPS\t: 50.00\n"
                          "CPU part\t: 0xd0c\n\nModel\t: Raspberry Pi 4\n"),
            "Raspberry Pi 4");
  EXPECT_EQ(ParseCpuModel(""), "");
}

TEST(MachineTest, ProbesThisMachine) {
  const MachineInfo m = ProbeMachine();
  EXPECT_FALSE(m.hostname.empty());
  EXPECT_EQ(m.os.rfind("Linux ", 0), 0u) << m.os;
  std::ifstream cpuinfo("/proc/cpuinfo");
  std::stringstream text;
  text << cpuinfo.rdbuf();
  EXPECT_EQ(m.cpu, ParseCpuModel(text.str()));
  EXPECT_GE(m.cores, 1);
  EXPECT_GT(m.memory_bytes, int64_t{64} << 20);  // more than 64 MiB
  for (const std::string& gpu : m.gpus) EXPECT_FALSE(gpu.empty());
}

TEST(BuildTest, VersionsAndCommit) {
  const BuildInfo b = GetBuildInfo();
  EXPECT_EQ(b.version, kHostVersion);
  EXPECT_EQ(b.abi_version, LLMSYS_ABI_VERSION_STRING);
  // Built from a git checkout here; a source tarball leaves both unset.
  EXPECT_EQ(b.git_commit.has_value(), b.git_dirty.has_value());
  if (b.git_commit) {
    EXPECT_EQ(b.git_commit->size(), 40u) << *b.git_commit;
    EXPECT_EQ(b.git_commit->find_first_not_of("0123456789abcdef"),
              std::string::npos)
        << *b.git_commit;
  }
}

TEST(ProcessTest, CommandLineAndTime) {
  const std::string command = CommandLine();
  EXPECT_NE(command.find("core_test"), std::string::npos) << command;
  EXPECT_EQ(UtcTimestamp(std::chrono::system_clock::time_point{}),
            "1970-01-01T00:00:00Z");
  EXPECT_EQ(UtcTimestamp(std::chrono::system_clock::from_time_t(1795939200)),
            "2026-11-29T08:00:00Z");
}

}  // namespace
}  // namespace llmsys::core
