#include "framework/core/provenance.h"

#include <openssl/evp.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>
#include <system_error>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "framework/core/files.h"
#include "framework/core/version.h"
#include "llmsys/version.h"
#include "llmsys_build_info.h"  // generated: tools/cmake/BuildInfo.cmake

namespace llmsys::core {
namespace {

namespace fs = std::filesystem;

struct MdCtxDeleter {
  void operator()(EVP_MD_CTX* ctx) const { EVP_MD_CTX_free(ctx); }
};
using MdCtx = std::unique_ptr<EVP_MD_CTX, MdCtxDeleter>;

// Debian's Abseil has its own string_view.
absl::string_view Absl(std::string_view s) { return {s.data(), s.size()}; }

std::string Hex(const unsigned char* bytes, unsigned int n) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(2 * n);
  for (unsigned int i = 0; i < n; ++i) {
    out.push_back(kDigits[bytes[i] >> 4]);
    out.push_back(kDigits[bytes[i] & 15]);
  }
  return out;
}

// A fresh SHA-256 context; null only when OpenSSL is out of memory or has
// no SHA-256, both broken installations.
MdCtx NewSha256() {
  MdCtx ctx(EVP_MD_CTX_new());
  if (ctx != nullptr &&
      EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) != 1)
    ctx.reset();
  return ctx;
}

std::string Finish(EVP_MD_CTX* ctx) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  if (EVP_DigestFinal_ex(ctx, digest, &n) != 1) return "";
  return Hex(digest, n);
}

// The value after "key:" on the first line starting with `key` (then only
// blanks before the colon), trimmed.
std::string FieldValue(std::string_view text, std::string_view key) {
  for (absl::string_view line : absl::StrSplit(Absl(text), '\n')) {
    if (!absl::StartsWith(line, Absl(key))) continue;
    absl::string_view rest = line.substr(key.size());
    const size_t colon = rest.find(':');
    if (colon == absl::string_view::npos) continue;
    if (!absl::StripAsciiWhitespace(rest.substr(0, colon)).empty()) continue;
    return std::string(absl::StripAsciiWhitespace(rest.substr(colon + 1)));
  }
  return "";
}

// An executable called `name` in a folder of $PATH.
bool OnPath(const std::string& name) {
  const char* path = std::getenv("PATH");
  if (path == nullptr) return false;
  for (absl::string_view dir : absl::StrSplit(path, ':', absl::SkipEmpty())) {
    const std::string file = absl::StrCat(dir, "/", name);
    if (::access(file.c_str(), X_OK) == 0) return true;
  }
  return false;
}

std::vector<std::string> ProbeGpus() {
  // /proc first: no process to start. One folder per GPU, named by its PCI
  // address, so sorting gives the driver's order.
  std::vector<std::string> gpus;
  std::error_code ec;
  std::vector<fs::path> dirs;
  for (const auto& e : fs::directory_iterator("/proc/driver/nvidia/gpus", ec)) {
    dirs.push_back(e.path());
  }
  std::sort(dirs.begin(), dirs.end());
  for (const fs::path& d : dirs) {
    std::string model =
        ParseNvidiaProcInformation(ReadFile(d / "information").value_or(""));
    if (!model.empty()) gpus.push_back(std::move(model));
  }
  if (!gpus.empty() || !OnPath("nvidia-smi")) return gpus;
  FILE* pipe = ::popen("nvidia-smi -L 2>/dev/null", "r");
  if (pipe == nullptr) return gpus;
  std::string text;
  std::array<char, 4096> buffer;
  size_t n = 0;
  while ((n = std::fread(buffer.data(), 1, buffer.size(), pipe)) > 0)
    text.append(buffer.data(), n);
  ::pclose(pipe);
  return ParseNvidiaSmiList(text);
}

std::string OsDescription() {
  std::string os;
  utsname u{};
  if (::uname(&u) == 0)
    os = absl::StrCat(u.sysname, " ", u.release, " ", u.machine);
  const std::string release = ReadFile("/etc/os-release").value_or("");
  for (absl::string_view line : absl::StrSplit(release, '\n')) {
    if (!absl::ConsumePrefix(&line, "PRETTY_NAME=")) continue;
    line = absl::StripAsciiWhitespace(line);
    if (line.size() >= 2 && (line.front() == '"' || line.front() == '\''))
      line = line.substr(1, line.size() - 2);
    if (!line.empty())
      absl::StrAppend(&os, os.empty() ? "" : " ", "(", line, ")");
    break;
  }
  return os;
}

// `word` as a POSIX shell reads it back: unchanged when it holds only safe
// characters, else in single quotes.
std::string ShellQuote(const std::string& word) {
  const bool safe =
      !word.empty() &&
      std::all_of(word.begin(), word.end(), [](unsigned char c) {
        return absl::ascii_isalnum(c) ||
               std::strchr("@%+=:,./-_", static_cast<char>(c)) != nullptr;
      });
  if (safe) return word;
  std::string out = "'";
  for (char c : word) {
    if (c == '\'')
      out += "'\\''";
    else
      out.push_back(c);
  }
  return out + "'";
}

}  // namespace

std::string Sha256Hex(std::string_view bytes) {
  MdCtx ctx = NewSha256();
  if (ctx == nullptr ||
      EVP_DigestUpdate(ctx.get(), bytes.data(), bytes.size()) != 1)
    return "";
  return Finish(ctx.get());
}

absl::StatusOr<std::string> Sha256File(const fs::path& path) {
  std::error_code ec;
  if (!fs::exists(path, ec))
    return absl::NotFoundError(
        absl::StrCat(path.string(), ": cannot hash: no such file"));
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return absl::InternalError(absl::StrCat(
        path.string(), ": cannot open to hash: ", std::strerror(errno)));
  MdCtx ctx = NewSha256();
  if (ctx == nullptr)
    return absl::InternalError("OpenSSL has no SHA-256 (broken libcrypto?)");
  std::vector<char> buffer(1 << 16);
  while (in) {
    in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
    const std::streamsize got = in.gcount();
    if (got > 0 && EVP_DigestUpdate(ctx.get(), buffer.data(),
                                    static_cast<size_t>(got)) != 1)
      return absl::InternalError(
          absl::StrCat(path.string(), ": SHA-256 update failed"));
  }
  if (in.bad())
    return absl::InternalError(
        absl::StrCat(path.string(), ": read error while hashing"));
  return Finish(ctx.get());
}

bool IsSha256Hex(std::string_view text) {
  return text.size() == 64 &&
         std::all_of(text.begin(), text.end(),
                     [](unsigned char c) { return absl::ascii_isxdigit(c); });
}

std::vector<std::string> ParseNvidiaSmiList(std::string_view text) {
  std::vector<std::string> gpus;
  for (absl::string_view line : absl::StrSplit(Absl(text), '\n')) {
    line = absl::StripAsciiWhitespace(line);
    if (!absl::ConsumePrefix(&line, "GPU ")) continue;
    const size_t colon = line.find(": ");
    if (colon == absl::string_view::npos) continue;
    line = line.substr(colon + 2);
    if (const size_t uuid = line.rfind(" (UUID:"); uuid != line.npos)
      line = line.substr(0, uuid);
    line = absl::StripAsciiWhitespace(line);
    if (!line.empty()) gpus.emplace_back(line);
  }
  return gpus;
}

std::string ParseNvidiaProcInformation(std::string_view text) {
  return FieldValue(text, "Model");
}

std::string ParseCpuModel(std::string_view cpuinfo) {
  for (const char* key : {"model name", "cpu model", "Model"}) {
    std::string v = FieldValue(cpuinfo, key);
    if (!v.empty()) return v;
  }
  return "";
}

MachineInfo ProbeMachine() {
  MachineInfo m;
  char host[256] = {};
  if (::gethostname(host, sizeof(host) - 1) == 0) m.hostname = host;
  m.os = OsDescription();
  m.cpu = ParseCpuModel(ReadFile("/proc/cpuinfo").value_or(""));
  m.cores = static_cast<int>(std::thread::hardware_concurrency());
  const long pages = ::sysconf(_SC_PHYS_PAGES);
  const long page_size = ::sysconf(_SC_PAGE_SIZE);
  if (pages > 0 && page_size > 0)
    m.memory_bytes = static_cast<int64_t>(pages) * page_size;
  m.gpus = ProbeGpus();
  return m;
}

BuildInfo GetBuildInfo() {
  BuildInfo b;
  b.version = kHostVersion;
  b.abi_version = LLMSYS_ABI_VERSION_STRING;
  const std::string commit = LLMSYS_GIT_COMMIT;
  if (!commit.empty()) b.git_commit = commit;
  if (LLMSYS_GIT_DIRTY >= 0) b.git_dirty = LLMSYS_GIT_DIRTY == 1;
  return b;
}

std::string CommandLine() {
  std::string raw = ReadFile("/proc/self/cmdline").value_or("");
  if (raw.empty()) return "";
  if (raw.back() == '\0') raw.pop_back();  // each word ends with a NUL
  std::string out;
  bool first = true;
  for (absl::string_view word : absl::StrSplit(raw, '\0')) {
    absl::StrAppend(&out, first ? "" : " ", ShellQuote(std::string(word)));
    first = false;
  }
  return out;
}

std::string UtcTimestamp(std::chrono::system_clock::time_point t) {
  const std::time_t seconds = std::chrono::system_clock::to_time_t(t);
  std::tm utc{};
  ::gmtime_r(&seconds, &utc);
  char text[32];
  std::strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%SZ", &utc);
  return text;
}

}  // namespace llmsys::core
