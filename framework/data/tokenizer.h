// framework/data/tokenizer.h — text to token ids and back: a character
// tokenizer and a byte-level BPE tokenizer behind one interface, saved as
// JSON.
//
//   LLMSYS_ASSIGN_OR_RETURN(std::unique_ptr<Tokenizer> tok,
//                           TrainTokenizer("bpe", corpus.train(), {8000}));
//   std::vector<int32_t> ids = tok->Encode("Hello, world");
//   LLMSYS_ASSIGN_OR_RETURN(std::string text, tok->Decode(ids));
//   LLMSYS_RETURN_IF_ERROR(tok->Save("tokenizer.json"));
//   LLMSYS_ASSIGN_OR_RETURN(tok, LoadTokenizer("tokenizer.json"));
//
// Ids: every tokenizer reserves 0 <pad>, 1 <bos>, 2 <eos>, 3 <unk>. Encode
// never adds them (callers add <bos>/<eos> where a model wants them); Decode
// writes nothing for <pad>/<bos>/<eos> and U+FFFD for <unk>.
//
//   char: one token per character of the training text — a valid UTF-8
//         code point, or a single byte where the text is not valid UTF-8 —
//         ids 4, 5, ... in byte order of the characters. A character not in
//         the training text encodes as <unk>.
//   bpe:  byte-level BPE (GPT-2): ids 4..259 are the 256 bytes, 260, ... the
//         merges in the order they were learnt. Decode(Encode(s)) == s for
//         every byte string. Training pre-splits the text into words GPT-2
//         style (without its regex: an optional leading space plus a run of
//         letters — ASCII letters and every byte >= 0x80 — or of digits, or
//         of other non-space bytes; a run of whitespace is one word, except
//         that its last space joins a following word), counts the words,
//         then merges the most frequent adjacent pair until the vocabulary
//         is full or no pair occurs `min_pair_count` times. Ties go to the
//         smallest pair of ids (left id first), so training is
//         deterministic. Pair counts are updated incrementally over the
//         unique words, with a lazily corrected priority queue.
//
// File: {"format": "llmsys-tokenizer", "version": 1, "type": "char"|"bpe",
// "vocab_size": N, "special_tokens": {...}, then "tokens" (char: each a
// string, or an integer for a byte that is not valid UTF-8) or "merges"
// (bpe: [left, right] id pairs, the i-th making id 260 + i)}.
//
// Thread-safety: a trained or loaded tokenizer is immutable; Encode and
// Decode may be called from any number of threads.
#ifndef LLMSYS_FRAMEWORK_DATA_TOKENIZER_H_
#define LLMSYS_FRAMEWORK_DATA_TOKENIZER_H_

#include <array>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace llmsys::data {

inline constexpr int32_t kPadId = 0;
inline constexpr int32_t kBosId = 1;
inline constexpr int32_t kEosId = 2;
inline constexpr int32_t kUnkId = 3;
inline constexpr int32_t kNumSpecialTokens = 4;
inline constexpr int kTokenizerFormatVersion = 1;

// "<pad>", "<bos>", "<eos>", "<unk>" for ids 0..3, else "".
std::string_view SpecialTokenName(int32_t id);

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;

  virtual std::string_view type() const = 0;  // "char" or "bpe"
  // Ids are in [0, vocab_size()).
  virtual int32_t vocab_size() const = 0;
  virtual std::vector<int32_t> Encode(std::string_view text) const = 0;
  // INVALID_ARGUMENT for an id outside [0, vocab_size()), naming it.
  virtual absl::StatusOr<std::string> Decode(
      const std::vector<int32_t>& ids) const = 0;
  // The bytes of one token ("" for <pad>/<bos>/<eos>); id must be valid.
  virtual std::string TokenBytes(int32_t id) const = 0;
  // Writes the JSON file (replacing `path`).
  virtual absl::Status Save(const std::filesystem::path& path) const = 0;
};

class CharTokenizer : public Tokenizer {
 public:
  // The characters of `text`; an empty text gives the specials only.
  static CharTokenizer Train(std::string_view text);
  // `tokens` in id order (ids 4, 5, ...): each one character; duplicates
  // are INVALID_ARGUMENT.
  static absl::StatusOr<CharTokenizer> FromTokens(
      std::vector<std::string> tokens);

  std::string_view type() const override { return "char"; }
  int32_t vocab_size() const override {
    return kNumSpecialTokens + static_cast<int32_t>(tokens_.size());
  }
  std::vector<int32_t> Encode(std::string_view text) const override;
  absl::StatusOr<std::string> Decode(
      const std::vector<int32_t>& ids) const override;
  std::string TokenBytes(int32_t id) const override;
  absl::Status Save(const std::filesystem::path& path) const override;
  const std::vector<std::string>& tokens() const { return tokens_; }

 private:
  std::vector<std::string> tokens_;  // id - kNumSpecialTokens -> character
  std::array<int32_t, 256> single_byte_{};  // one-byte characters' ids
  std::unordered_map<std::string, int32_t> multi_byte_;
};

struct BpeOptions {
  int32_t vocab_size = 8000;   // including the 4 specials and 256 bytes
  int64_t min_pair_count = 2;  // stop when the best pair occurs less often
};

class BpeTokenizer : public Tokenizer {
 public:
  static constexpr int32_t kFirstByteId = kNumSpecialTokens;
  static constexpr int32_t kFirstMergeId = kNumSpecialTokens + 256;

  // INVALID_ARGUMENT when options.vocab_size < 260. The vocabulary may end
  // smaller than asked when the text runs out of pairs.
  static absl::StatusOr<BpeTokenizer> Train(std::string_view text,
                                            const BpeOptions& options = {});
  // Merges in order; merge i makes id 260 + i from two earlier ids.
  static absl::StatusOr<BpeTokenizer> FromMerges(
      std::vector<std::pair<int32_t, int32_t>> merges);

  std::string_view type() const override { return "bpe"; }
  int32_t vocab_size() const override {
    return kFirstMergeId + static_cast<int32_t>(merges_.size());
  }
  std::vector<int32_t> Encode(std::string_view text) const override;
  absl::StatusOr<std::string> Decode(
      const std::vector<int32_t>& ids) const override;
  std::string TokenBytes(int32_t id) const override;
  absl::Status Save(const std::filesystem::path& path) const override;
  const std::vector<std::pair<int32_t, int32_t>>& merges() const {
    return merges_;
  }

 private:
  void EncodeWord(std::string_view word, std::vector<int32_t>* out) const;

  std::vector<std::pair<int32_t, int32_t>> merges_;
  std::unordered_map<uint64_t, int32_t> merge_id_;  // (left, right) -> id
  std::vector<std::string> bytes_;                  // id -> bytes
};

// GPT-2-style pre-split of `text` into words (see above); the words
// concatenate to `text`.
std::vector<std::string_view> SplitWords(std::string_view text);

// "char" or "bpe" trained on `text` (BpeOptions applies to bpe only).
// Unknown kinds are INVALID_ARGUMENT listing the known ones.
absl::StatusOr<std::unique_ptr<Tokenizer>> TrainTokenizer(
    std::string_view kind, std::string_view text,
    const BpeOptions& options = {});

// Reads a file written by Save. Errors name the file: missing, not JSON,
// not a tokenizer file, another format version, or inconsistent contents.
absl::StatusOr<std::unique_ptr<Tokenizer>> LoadTokenizer(
    const std::filesystem::path& path);

}  // namespace llmsys::data

#endif  // LLMSYS_FRAMEWORK_DATA_TOKENIZER_H_
