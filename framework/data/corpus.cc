// framework/data/corpus.cc — reading corpora: plain and gzip files, the
// train/validation split, line-aligned parallel files.
#include "framework/data/corpus.h"

#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "framework/core/status_macros.h"

namespace llmsys::data {
namespace {

bool HasGzipMagic(std::string_view bytes) {
  return bytes.size() >= 2 && static_cast<unsigned char>(bytes[0]) == 0x1f &&
         static_cast<unsigned char>(bytes[1]) == 0x8b;
}

bool NamedGz(const std::filesystem::path& path) {
  return path.extension() == ".gz";
}

absl::StatusOr<std::string> ReadBytes(const std::filesystem::path& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) {
    return absl::NotFoundError(
        absl::StrCat(path.string(),
                     ": no such file (expected a text file, "
                     "plain or gzip)"));
  }
  if (std::filesystem::is_directory(path, ec)) {
    return absl::InvalidArgumentError(
        absl::StrCat(path.string(), " is a folder, expected a text file"));
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::PermissionDeniedError(absl::StrCat(
        "cannot open ", path.string(), ": ", std::strerror(errno)));
  }
  std::string bytes((std::istreambuf_iterator<char>(in)),
                    std::istreambuf_iterator<char>());
  if (in.bad()) {
    return absl::DataLossError(absl::StrCat("error reading ", path.string()));
  }
  return bytes;
}

absl::StatusOr<std::string> Gunzip(const std::filesystem::path& path,
                                   std::string_view in) {
  z_stream zs;
  std::memset(&zs, 0, sizeof(zs));
  if (inflateInit2(&zs, 15 + 16) != Z_OK) {  // 16: gzip header and trailer
    return absl::InternalError("zlib: inflateInit2 failed");
  }
  std::string out;
  out.reserve(in.size() * 4);
  char buffer[1 << 16];
  size_t consumed = 0;
  bool member_done = false;
  absl::Status status;
  while (true) {
    if (zs.avail_in == 0 && consumed < in.size()) {
      size_t chunk = std::min<size_t>(in.size() - consumed, size_t{1} << 30);
      zs.next_in =
          reinterpret_cast<Bytef*>(const_cast<char*>(in.data())) + consumed;
      zs.avail_in = static_cast<uInt>(chunk);
      consumed += chunk;
    }
    zs.next_out = reinterpret_cast<Bytef*>(buffer);
    zs.avail_out = sizeof(buffer);
    int rc = inflate(&zs, Z_NO_FLUSH);
    out.append(buffer, sizeof(buffer) - zs.avail_out);
    if (rc == Z_STREAM_END) {
      size_t rest = zs.avail_in + (in.size() - consumed);
      if (rest == 0) {
        member_done = true;
        break;
      }
      // Another gzip member follows (as `cat a.gz b.gz` makes).
      std::string_view tail = in.substr(in.size() - rest);
      if (!HasGzipMagic(tail)) {
        status = absl::DataLossError(
            absl::StrCat(path.string(), ": ", rest,
                         " bytes after the end of the gzip data are not gzip"));
        break;
      }
      inflateReset(&zs);
      continue;
    }
    if (rc == Z_BUF_ERROR && zs.avail_in == 0 && consumed == in.size()) {
      break;  // input ended inside a member
    }
    if (rc != Z_OK && rc != Z_BUF_ERROR) {
      status = absl::DataLossError(
          absl::StrCat(path.string(), ": gzip data is corrupt (zlib: ",
                       zs.msg != nullptr ? zs.msg : "error", ")"));
      break;
    }
  }
  inflateEnd(&zs);
  LLMSYS_RETURN_IF_ERROR(status);
  if (!member_done) {
    return absl::DataLossError(absl::StrCat(
        path.string(), ": gzip data is truncated (the file ends early)"));
  }
  return out;
}

}  // namespace

int Utf8CharLength(std::string_view text, size_t i) {
  if (i >= text.size()) return 0;
  auto byte = [&](size_t k) { return static_cast<unsigned char>(text[k]); };
  unsigned char b0 = byte(i);
  if (b0 < 0x80) return 1;
  int len;
  uint32_t cp;
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    len = 2;
    cp = b0 & 0x1F;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    len = 3;
    cp = b0 & 0x0F;
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    len = 4;
    cp = b0 & 0x07;
  } else {
    return 0;  // continuation byte, C0/C1, F5..FF
  }
  if (i + len > text.size()) return 0;
  for (int k = 1; k < len; ++k) {
    unsigned char b = byte(i + k);
    if ((b & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (b & 0x3F);
  }
  if (len == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) return 0;
  if (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) return 0;
  return len;
}

absl::StatusOr<std::string> ReadTextFile(const std::filesystem::path& path) {
  LLMSYS_ASSIGN_OR_RETURN(std::string bytes, ReadBytes(path));
  if (HasGzipMagic(bytes)) return Gunzip(path, bytes);
  if (NamedGz(path)) {
    return absl::InvalidArgumentError(absl::StrCat(
        path.string(),
        " is named .gz but is not gzip (it does not start with the gzip "
        "magic bytes 1f 8b); rename it or compress it"));
  }
  return bytes;
}

absl::Status WriteTextFile(const std::filesystem::path& path,
                           std::string_view text, bool gzip) {
  if (!gzip) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
    out.close();
    if (!out) {
      return absl::PermissionDeniedError(
          absl::StrCat("cannot write ", path.string()));
    }
    return absl::OkStatus();
  }
  gzFile file = gzopen(path.c_str(), "wb");
  if (file == nullptr) {
    return absl::PermissionDeniedError(
        absl::StrCat("cannot write ", path.string()));
  }
  size_t done = 0;
  bool ok = true;
  while (ok && done < text.size()) {
    unsigned chunk =
        static_cast<unsigned>(std::min<size_t>(text.size() - done, 1 << 20));
    ok = gzwrite(file, text.data() + done, chunk) == static_cast<int>(chunk);
    done += chunk;
  }
  if (gzclose(file) != Z_OK) ok = false;
  if (!ok) {
    return absl::DataLossError(
        absl::StrCat("error writing gzip file ", path.string()));
  }
  return absl::OkStatus();
}

absl::StatusOr<size_t> TrainSize(size_t n, double validation_fraction) {
  if (!(validation_fraction >= 0.0 && validation_fraction < 1.0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("validation fraction ", validation_fraction,
                     " is out of range: expected a number in [0, 1)"));
  }
  double train =
      std::floor((1.0 - validation_fraction) * static_cast<double>(n));
  return std::min(n, static_cast<size_t>(train));
}

absl::StatusOr<std::pair<std::vector<int32_t>, std::vector<int32_t>>>
SplitTokens(const std::vector<int32_t>& tokens, double validation_fraction) {
  LLMSYS_ASSIGN_OR_RETURN(size_t n_train,
                          TrainSize(tokens.size(), validation_fraction));
  return std::make_pair(
      std::vector<int32_t>(tokens.begin(), tokens.begin() + n_train),
      std::vector<int32_t>(tokens.begin() + n_train, tokens.end()));
}

absl::StatusOr<TextCorpus> TextCorpus::Load(const std::filesystem::path& path,
                                            double validation_fraction) {
  LLMSYS_ASSIGN_OR_RETURN(std::string text, ReadTextFile(path));
  return FromText(std::move(text), validation_fraction, path.string());
}

absl::StatusOr<TextCorpus> TextCorpus::FromText(std::string text,
                                                double validation_fraction,
                                                std::string name) {
  if (text.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(name, " is empty: expected a non-empty text corpus"));
  }
  LLMSYS_ASSIGN_OR_RETURN(size_t cut,
                          TrainSize(text.size(), validation_fraction));
  // Do not cut a UTF-8 character in two: move back to its first byte.
  for (size_t back = 1; back <= 3 && back <= cut && cut < text.size(); ++back) {
    if ((static_cast<unsigned char>(text[cut - back + 1]) & 0xC0) != 0x80) {
      break;  // text[cut] (or a byte after it) is not a continuation byte
    }
    if (Utf8CharLength(text, cut - back) > static_cast<int>(back)) {
      cut -= back;
      break;
    }
  }
  TextCorpus corpus;
  corpus.name_ = std::move(name);
  corpus.text_ = std::move(text);
  corpus.train_size_ = cut;
  return corpus;
}

std::vector<std::string> SplitLines(std::string_view text) {
  std::vector<std::string> lines;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    size_t stop = end;
    if (stop > start && text[stop - 1] == '\r') --stop;
    lines.emplace_back(text.substr(start, stop - start));
    start = end + 1;
  }
  return lines;
}

absl::StatusOr<ParallelCorpus> ParallelCorpus::Load(
    const std::filesystem::path& source_path,
    const std::filesystem::path& target_path) {
  ParallelCorpus corpus;
  corpus.source_name = source_path.string();
  corpus.target_name = target_path.string();
  LLMSYS_ASSIGN_OR_RETURN(std::string source, ReadTextFile(source_path));
  LLMSYS_ASSIGN_OR_RETURN(std::string target, ReadTextFile(target_path));
  corpus.source = SplitLines(source);
  corpus.target = SplitLines(target);
  for (const auto& [name, lines] :
       {std::pair{&corpus.source_name, &corpus.source},
        std::pair{&corpus.target_name, &corpus.target}}) {
    if (lines->empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat(*name, " is empty: expected one sentence per line"));
    }
  }
  if (corpus.source.size() != corpus.target.size()) {
    return absl::FailedPreconditionError(
        absl::StrCat("parallel corpus is not aligned: ", corpus.source_name,
                     " has ", corpus.source.size(), " lines but ",
                     corpus.target_name, " has ", corpus.target.size(),
                     " (expected one sentence per line in each, "
                     "line i translating line i)"));
  }
  return corpus;
}

}  // namespace llmsys::data
