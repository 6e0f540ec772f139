// framework/data/corpus.h — text corpora read from disk: a language-modelling
// corpus with a train/validation split, and a line-aligned parallel corpus.
//
// Files are plain or gzip (recognized by their magic bytes 1f 8b, so a
// compressed file works whatever its name; a file named *.gz that is not
// gzip is an error that says so). Text is bytes: invalid UTF-8 is kept as is.
//
//   LLMSYS_ASSIGN_OR_RETURN(TextCorpus corpus,
//                           TextCorpus::Load("data/tinyshakespeare/input.txt",
//                                            /*validation_fraction=*/0.1));
//   corpus.train();       // the first 90% of the bytes
//   corpus.validation();  // the last 10%, as nanoGPT splits
//
//   LLMSYS_ASSIGN_OR_RETURN(ParallelCorpus pairs,
//                           ParallelCorpus::Load("data/multi30k/train.de.gz",
//                                                "data/multi30k/train.en.gz"));
//   pairs.source[i], pairs.target[i];  // line i of each file
//
// Thread-safety: values; the functions are thread-safe.
#ifndef LLMSYS_FRAMEWORK_DATA_CORPUS_H_
#define LLMSYS_FRAMEWORK_DATA_CORPUS_H_

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace llmsys::data {

// The whole file as bytes, gunzipped when it starts with the gzip magic
// (several concatenated gzip members are read as one stream). NOT_FOUND
// names a missing file; INVALID_ARGUMENT a *.gz file that is not gzip;
// DATA_LOSS corrupt or truncated gzip data.
absl::StatusOr<std::string> ReadTextFile(const std::filesystem::path& path);

// Writes `text` to `path`, gzip-compressed when `gzip` is true.
absl::Status WriteTextFile(const std::filesystem::path& path,
                           std::string_view text, bool gzip = false);

// The number of leading elements that go to training when the last
// `validation_fraction` of `n` goes to validation: floor((1 - f) * n), as
// nanoGPT's int(0.9 * len(data)). f must lie in [0, 1).
absl::StatusOr<size_t> TrainSize(size_t n, double validation_fraction);

// Splits token ids the same way (the tail is validation).
absl::StatusOr<std::pair<std::vector<int32_t>, std::vector<int32_t>>>
SplitTokens(const std::vector<int32_t>& tokens, double validation_fraction);

class TextCorpus {
 public:
  // Reads `path` and splits off the last `validation_fraction` of its bytes
  // (moved back to the start of a UTF-8 character when the cut would fall
  // inside one). An empty file is INVALID_ARGUMENT.
  static absl::StatusOr<TextCorpus> Load(const std::filesystem::path& path,
                                         double validation_fraction = 0.1);
  // The same from text in memory; `name` appears in errors.
  static absl::StatusOr<TextCorpus> FromText(std::string text,
                                             double validation_fraction,
                                             std::string name = "text");

  const std::string& name() const { return name_; }  // the path
  const std::string& text() const { return text_; }  // everything
  std::string_view train() const {
    return std::string_view(text_).substr(0, train_size_);
  }
  std::string_view validation() const {
    return std::string_view(text_).substr(train_size_);
  }

 private:
  std::string name_;
  std::string text_;
  size_t train_size_ = 0;
};

// Two files aligned by line: line i of `source` translates line i of
// `target`. Lines end at '\n' (a '\r' before it is dropped); a final newline
// does not start another line.
struct ParallelCorpus {
  std::string source_name, target_name;
  std::vector<std::string> source, target;

  size_t size() const { return source.size(); }

  // Errors: either file missing or unreadable, either empty, or different
  // line counts (FAILED_PRECONDITION naming both files and both counts).
  static absl::StatusOr<ParallelCorpus> Load(
      const std::filesystem::path& source_path,
      const std::filesystem::path& target_path);
};

// `text` cut into lines as ParallelCorpus does.
std::vector<std::string> SplitLines(std::string_view text);

// The length of the valid UTF-8 character starting at text[i] (1 to 4), or 0
// when the bytes there are not one (a stray continuation byte, an overlong
// form, a surrogate, a truncated sequence, or beyond U+10FFFF).
int Utf8CharLength(std::string_view text, size_t i);

}  // namespace llmsys::data

#endif  // LLMSYS_FRAMEWORK_DATA_CORPUS_H_
