#include "framework/core/files.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>

#include "absl/strings/str_cat.h"

namespace llmsys::core {
namespace {

absl::Status OsError(const std::filesystem::path& path, const char* what) {
  return absl::InternalError(
      absl::StrCat(path.string(), ": ", what, ": ", std::strerror(errno)));
}

}  // namespace

absl::StatusOr<std::string> ReadFile(const std::filesystem::path& file) {
  std::error_code ec;
  if (std::filesystem::is_directory(file, ec))
    return absl::InvalidArgumentError(
        absl::StrCat(file.string(), ": is a folder, not a file"));
  std::ifstream in(file, std::ios::binary);
  if (!in)
    return absl::NotFoundError(
        absl::StrCat(file.string(), ": cannot open (does the file exist?)"));
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad())
    return absl::DataLossError(absl::StrCat(file.string(), ": read error"));
  return text.str();
}

absl::Status AtomicWriteFile(const std::filesystem::path& path,
                             std::string_view bytes) {
  static std::atomic<uint64_t> counter{0};
  const std::filesystem::path tmp =
      absl::StrCat(path.string(), ".tmp.", getpid(), ".", counter.fetch_add(1));
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) return OsError(tmp, "cannot create");
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      absl::Status s = OsError(tmp, "cannot write");
      ::close(fd);
      ::unlink(tmp.c_str());
      return s;
    }
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    absl::Status s = OsError(tmp, "cannot flush");
    ::unlink(tmp.c_str());
    return s;
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    absl::Status s = OsError(path, "cannot replace");
    ::unlink(tmp.c_str());
    return s;
  }
  const std::filesystem::path dir =
      path.has_parent_path() ? path.parent_path() : ".";
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
  return absl::OkStatus();
}

}  // namespace llmsys::core
