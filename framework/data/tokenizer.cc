// framework/data/tokenizer.cc — the char and byte-level BPE tokenizers,
// BPE training, and the JSON file format.
#include "framework/data/tokenizer.h"

#include <algorithm>
#include <fstream>
#include <functional>
#include <queue>
#include <set>

#include "absl/strings/str_cat.h"
#include "framework/core/status_macros.h"
#include "framework/data/corpus.h"
#include "nlohmann/json.hpp"

namespace llmsys::data {
namespace {

using Json = nlohmann::json;

constexpr std::string_view kFormatName = "llmsys-tokenizer";
constexpr std::string_view kReplacementChar = "\xEF\xBF\xBD";  // U+FFFD

uint64_t PairKey(int32_t left, int32_t right) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) |
         static_cast<uint32_t>(right);
}
int32_t PairLeft(uint64_t key) { return static_cast<int32_t>(key >> 32); }
int32_t PairRight(uint64_t key) {
  return static_cast<int32_t>(key & 0xffffffffu);
}

absl::Status BadId(int32_t id, int32_t vocab_size) {
  return absl::InvalidArgumentError(
      absl::StrCat("token id ", id, " is out of range: expected an id in [0, ",
                   vocab_size, ")"));
}

Json Header(std::string_view type, int32_t vocab_size) {
  Json j = Json::object();
  j["format"] = std::string(kFormatName);
  j["version"] = kTokenizerFormatVersion;
  j["type"] = std::string(type);
  j["vocab_size"] = vocab_size;
  Json specials = Json::object();
  for (int32_t id = 0; id < kNumSpecialTokens; ++id) {
    specials[std::string(SpecialTokenName(id))] = id;
  }
  j["special_tokens"] = specials;
  return j;
}

// Writes the header members, then `list_name` with one element per line.
absl::Status WriteJson(const std::filesystem::path& path, const Json& header,
                       std::string_view list_name, const Json& list) {
  std::string text = "{\n";
  for (const char* key :
       {"format", "version", "type", "vocab_size", "special_tokens"}) {
    absl::StrAppend(&text, "  \"", key, "\": ", header.at(key).dump(), ",\n");
  }
  absl::StrAppend(&text, "  \"", std::string(list_name), "\": [");
  for (size_t i = 0; i < list.size(); ++i) {
    absl::StrAppend(&text, i == 0 ? "\n    " : ",\n    ", list[i].dump());
  }
  absl::StrAppend(&text, list.empty() ? "]\n}\n" : "\n  ]\n}\n");
  return WriteTextFile(path, text);
}

// Byte classes of the pre-split.
enum class ByteClass { kSpace, kLetter, kDigit, kOther };

ByteClass Classify(unsigned char c) {
  if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' ||
      c == '\f') {
    return ByteClass::kSpace;
  }
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c >= 0x80) {
    return ByteClass::kLetter;
  }
  if (c >= '0' && c <= '9') return ByteClass::kDigit;
  return ByteClass::kOther;
}

// Applies the merge `key` -> `id` to every occurrence in `symbols`, left to
// right. Returns whether any was found.
bool MergeInPlace(std::vector<int32_t>* symbols, int32_t left, int32_t right,
                  int32_t id) {
  std::vector<int32_t>& s = *symbols;
  size_t out = 0;
  bool found = false;
  for (size_t i = 0; i < s.size(); ++i) {
    if (i + 1 < s.size() && s[i] == left && s[i + 1] == right) {
      s[out++] = id;
      ++i;
      found = true;
    } else {
      s[out++] = s[i];
    }
  }
  s.resize(out);
  return found;
}

}  // namespace

std::string_view SpecialTokenName(int32_t id) {
  switch (id) {
    case kPadId:
      return "<pad>";
    case kBosId:
      return "<bos>";
    case kEosId:
      return "<eos>";
    case kUnkId:
      return "<unk>";
    default:
      return "";
  }
}

std::vector<std::string_view> SplitWords(std::string_view text) {
  std::vector<std::string_view> words;
  const size_t n = text.size();
  auto cls = [&](size_t k) {
    return Classify(static_cast<unsigned char>(text[k]));
  };
  size_t i = 0;
  while (i < n) {
    size_t start = i;
    size_t k = i;  // first byte after the optional leading space
    if (cls(i) == ByteClass::kSpace) {
      size_t j = i;
      while (j < n && cls(j) == ByteClass::kSpace) ++j;
      if (j == n || text[j - 1] != ' ') {
        words.push_back(text.substr(i, j - i));
        i = j;
        continue;
      }
      // The run's last space leads the word that follows it.
      if (j - 1 > i) words.push_back(text.substr(i, j - 1 - i));
      start = j - 1;
      k = j;
    }
    ByteClass c = cls(k);
    size_t end = k + 1;
    while (end < n && cls(end) == c) ++end;
    words.push_back(text.substr(start, end - start));
    i = end;
  }
  return words;
}

// ---- char ----

CharTokenizer CharTokenizer::Train(std::string_view text) {
  std::array<bool, 256> single{};
  std::set<std::string> multi;
  for (size_t i = 0; i < text.size();) {
    int len = Utf8CharLength(text, i);
    if (len <= 1) {
      single[static_cast<unsigned char>(text[i])] = true;
      ++i;
    } else {
      multi.emplace(text.substr(i, len));
      i += len;
    }
  }
  std::vector<std::string> tokens;
  for (int b = 0; b < 256; ++b) {
    if (single[b]) tokens.emplace_back(1, static_cast<char>(b));
  }
  tokens.insert(tokens.end(), multi.begin(), multi.end());
  std::sort(tokens.begin(), tokens.end());  // byte order
  return *FromTokens(std::move(tokens));
}

absl::StatusOr<CharTokenizer> CharTokenizer::FromTokens(
    std::vector<std::string> tokens) {
  CharTokenizer tok;
  tok.single_byte_.fill(kUnkId);
  for (size_t i = 0; i < tokens.size(); ++i) {
    const std::string& t = tokens[i];
    int32_t id = kNumSpecialTokens + static_cast<int32_t>(i);
    bool one_char =
        t.size() == 1 ||
        (!t.empty() && Utf8CharLength(t, 0) == static_cast<int>(t.size()));
    if (!one_char) {
      return absl::InvalidArgumentError(absl::StrCat(
          "char tokenizer: token ", id, " has ", t.size(),
          " bytes that are not one character (expected one UTF-8 character "
          "or one byte)"));
    }
    bool duplicate;
    if (t.size() == 1) {
      int32_t& slot = tok.single_byte_[static_cast<unsigned char>(t[0])];
      duplicate = slot != kUnkId;
      slot = id;
    } else {
      duplicate = !tok.multi_byte_.emplace(t, id).second;
    }
    if (duplicate) {
      return absl::InvalidArgumentError(absl::StrCat(
          "char tokenizer: token ", id, " repeats an earlier character"));
    }
  }
  tok.tokens_ = std::move(tokens);
  return tok;
}

std::vector<int32_t> CharTokenizer::Encode(std::string_view text) const {
  std::vector<int32_t> ids;
  ids.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    int len = Utf8CharLength(text, i);
    if (len <= 1) {
      ids.push_back(single_byte_[static_cast<unsigned char>(text[i])]);
      ++i;
    } else {
      auto it = multi_byte_.find(std::string(text.substr(i, len)));
      ids.push_back(it == multi_byte_.end() ? kUnkId : it->second);
      i += len;
    }
  }
  return ids;
}

std::string CharTokenizer::TokenBytes(int32_t id) const {
  if (id == kUnkId) return std::string(kReplacementChar);
  if (id < kNumSpecialTokens) return "";
  return tokens_[id - kNumSpecialTokens];
}

absl::StatusOr<std::string> CharTokenizer::Decode(
    const std::vector<int32_t>& ids) const {
  std::string text;
  text.reserve(ids.size());
  for (int32_t id : ids) {
    if (id < 0 || id >= vocab_size()) return BadId(id, vocab_size());
    if (id >= kNumSpecialTokens) {
      text += tokens_[id - kNumSpecialTokens];
    } else if (id == kUnkId) {
      text += kReplacementChar;
    }
  }
  return text;
}

absl::Status CharTokenizer::Save(const std::filesystem::path& path) const {
  Json list = Json::array();
  for (const std::string& t : tokens_) {
    if (t.size() == 1 && static_cast<unsigned char>(t[0]) >= 0x80) {
      list.push_back(static_cast<unsigned char>(t[0]));  // not valid UTF-8
    } else {
      list.push_back(t);
    }
  }
  return WriteJson(path, Header(type(), vocab_size()), "tokens", list);
}

// ---- bpe ----

namespace {

struct HeapEntry {
  int64_t count;
  uint64_t pair;
  // The top is the largest count, then the smallest pair.
  bool operator<(const HeapEntry& o) const {
    return count != o.count ? count < o.count : pair > o.pair;
  }
};

}  // namespace

absl::StatusOr<BpeTokenizer> BpeTokenizer::Train(std::string_view text,
                                                 const BpeOptions& options) {
  if (options.vocab_size < kFirstMergeId) {
    return absl::InvalidArgumentError(
        absl::StrCat("bpe vocabulary size ", options.vocab_size,
                     " is too small: expected ", kFirstMergeId, " or more (",
                     kNumSpecialTokens, " special tokens and 256 bytes)"));
  }
  // Unique words and their counts.
  std::unordered_map<std::string_view, int64_t> counts;
  for (std::string_view w : SplitWords(text)) ++counts[w];
  std::vector<std::vector<int32_t>> words;
  std::vector<int64_t> freq;
  words.reserve(counts.size());
  freq.reserve(counts.size());
  for (const auto& [w, c] : counts) {
    if (w.size() < 2) continue;  // no pairs
    std::vector<int32_t> s(w.size());
    for (size_t i = 0; i < w.size(); ++i) {
      s[i] = kFirstByteId + static_cast<unsigned char>(w[i]);
    }
    words.push_back(std::move(s));
    freq.push_back(c);
  }
  counts.clear();

  // Pair counts, and for each pair the words that may hold it (a superset:
  // entries go stale as merges change words, and are checked when used).
  std::unordered_map<uint64_t, int64_t> pair_count;
  std::unordered_map<uint64_t, std::vector<int32_t>> where;
  for (size_t w = 0; w < words.size(); ++w) {
    const auto& s = words[w];
    for (size_t i = 0; i + 1 < s.size(); ++i) {
      uint64_t key = PairKey(s[i], s[i + 1]);
      pair_count[key] += freq[w];
      auto& list = where[key];
      if (list.empty() || list.back() != static_cast<int32_t>(w)) {
        list.push_back(static_cast<int32_t>(w));
      }
    }
  }
  // Max-heap with lazy correction: every pair with a positive count has an
  // entry at least as large as its count; an entry whose count is stale is
  // re-pushed with the current count when it reaches the top.
  std::priority_queue<HeapEntry> heap;
  for (const auto& [key, c] : pair_count) heap.push({c, key});

  std::vector<std::pair<int32_t, int32_t>> merges;
  std::vector<int32_t> visited(words.size(), -1);  // last merge id per word
  std::vector<uint64_t> grown;                     // pairs that gained
  int32_t next_id = kFirstMergeId;
  while (next_id < options.vocab_size && !heap.empty()) {
    HeapEntry top = heap.top();
    heap.pop();
    auto found = pair_count.find(top.pair);
    int64_t current = found == pair_count.end() ? 0 : found->second;
    if (current != top.count) {
      if (current > 0) heap.push({current, top.pair});
      continue;
    }
    if (current < options.min_pair_count || current <= 0) break;
    const int32_t left = PairLeft(top.pair), right = PairRight(top.pair);
    const int32_t id = next_id++;
    merges.emplace_back(left, right);
    std::vector<int32_t> holders = std::move(where[top.pair]);
    where.erase(top.pair);
    grown.clear();
    for (int32_t w : holders) {
      if (visited[w] == id) continue;
      visited[w] = id;
      std::vector<int32_t>& s = words[w];
      const int64_t f = freq[w];
      bool has = false;
      for (size_t i = 0; i + 1 < s.size() && !has; ++i) {
        has = s[i] == left && s[i + 1] == right;
      }
      if (!has) continue;
      for (size_t i = 0; i + 1 < s.size(); ++i) {
        pair_count[PairKey(s[i], s[i + 1])] -= f;
      }
      MergeInPlace(&s, left, right, id);
      for (size_t i = 0; i + 1 < s.size(); ++i) {
        uint64_t key = PairKey(s[i], s[i + 1]);
        pair_count[key] += f;
        if (s[i] == id || s[i + 1] == id) {
          grown.push_back(key);
          auto& list = where[key];
          if (list.empty() || list.back() != w) list.push_back(w);
        }
      }
    }
    pair_count.erase(top.pair);
    std::sort(grown.begin(), grown.end());
    grown.erase(std::unique(grown.begin(), grown.end()), grown.end());
    for (uint64_t key : grown) heap.push({pair_count[key], key});
  }
  return FromMerges(std::move(merges));
}

absl::StatusOr<BpeTokenizer> BpeTokenizer::FromMerges(
    std::vector<std::pair<int32_t, int32_t>> merges) {
  BpeTokenizer tok;
  tok.bytes_.resize(kFirstMergeId + merges.size());
  for (int b = 0; b < 256; ++b) {
    tok.bytes_[kFirstByteId + b] = std::string(1, static_cast<char>(b));
  }
  tok.merge_id_.reserve(merges.size());
  for (size_t i = 0; i < merges.size(); ++i) {
    const auto [left, right] = merges[i];
    const int32_t id = kFirstMergeId + static_cast<int32_t>(i);
    if (left < kFirstByteId || left >= id || right < kFirstByteId ||
        right >= id) {
      return absl::InvalidArgumentError(
          absl::StrCat("bpe merge ", i, " [", left, ", ", right,
                       "] is invalid: expected "
                       "two ids of bytes or earlier merges, in [",
                       kFirstByteId, ", ", id, ")"));
    }
    if (!tok.merge_id_.emplace(PairKey(left, right), id).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("bpe merge ", i, " [", left, ", ", right,
                       "] repeats an earlier merge"));
    }
    tok.bytes_[id] = tok.bytes_[left] + tok.bytes_[right];
  }
  tok.merges_ = std::move(merges);
  return tok;
}

void BpeTokenizer::EncodeWord(std::string_view word,
                              std::vector<int32_t>* out) const {
  const size_t n = word.size();
  std::vector<int32_t> s(n);
  for (size_t i = 0; i < n; ++i) {
    s[i] = kFirstByteId + static_cast<unsigned char>(word[i]);
  }
  auto merge_of = [&](int32_t left, int32_t right) {
    auto it = merge_id_.find(PairKey(left, right));
    return it == merge_id_.end() ? -1 : it->second;
  };
  if (n <= 32) {
    // Short words: apply the earliest-learnt merge present, everywhere,
    // until none is.
    while (s.size() > 1) {
      int32_t best = INT32_MAX;
      for (size_t i = 0; i + 1 < s.size(); ++i) {
        int32_t id = merge_of(s[i], s[i + 1]);
        if (id >= 0 && id < best) best = id;
      }
      if (best == INT32_MAX) break;
      const auto& [left, right] = merges_[best - kFirstMergeId];
      MergeInPlace(&s, left, right, best);
    }
    out->insert(out->end(), s.begin(), s.end());
    return;
  }
  // Long words: the same merges in the same order — earliest-learnt first,
  // left to right within one merge — from a heap over a linked list, so a
  // long run without spaces costs O(n log n), not O(n^2).
  std::vector<int32_t> prev(n), next(n);
  for (size_t i = 0; i < n; ++i) {
    prev[i] = static_cast<int32_t>(i) - 1;
    next[i] = i + 1 < n ? static_cast<int32_t>(i + 1) : -1;
  }
  // (merge id, left position, left symbol, right symbol); smallest first.
  using Candidate = std::array<int32_t, 4>;
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<>> heap;
  auto push = [&](int32_t i) {
    if (i < 0 || next[i] < 0) return;
    int32_t id = merge_of(s[i], s[next[i]]);
    if (id >= 0) heap.push({id, i, s[i], s[next[i]]});
  };
  for (size_t i = 0; i + 1 < n; ++i) push(static_cast<int32_t>(i));
  while (!heap.empty()) {
    const auto [id, i, left, right] = heap.top();
    heap.pop();
    const int32_t j = next[i];
    if (s[i] != left || j < 0 || s[j] != right) continue;  // stale
    s[i] = id;
    s[j] = -1;  // removed
    next[i] = next[j];
    if (next[j] >= 0) prev[next[j]] = i;
    push(prev[i]);
    push(i);
  }
  for (int32_t i = 0; i >= 0; i = next[i]) out->push_back(s[i]);
}

std::vector<int32_t> BpeTokenizer::Encode(std::string_view text) const {
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 1);
  // Words repeat; each distinct one is encoded once per call.
  std::unordered_map<std::string_view, std::pair<size_t, size_t>> cache;
  for (std::string_view word : SplitWords(text)) {
    if (word.size() == 1) {
      ids.push_back(kFirstByteId + static_cast<unsigned char>(word[0]));
      continue;
    }
    auto [it, inserted] = cache.try_emplace(word);
    if (!inserted) {
      const auto [begin, size] = it->second;
      ids.reserve(ids.size() + size);
      for (size_t k = 0; k < size; ++k) ids.push_back(ids[begin + k]);
      continue;
    }
    size_t begin = ids.size();
    EncodeWord(word, &ids);
    it->second = {begin, ids.size() - begin};
  }
  return ids;
}

std::string BpeTokenizer::TokenBytes(int32_t id) const {
  if (id == kUnkId) return std::string(kReplacementChar);
  return bytes_[id];
}

absl::StatusOr<std::string> BpeTokenizer::Decode(
    const std::vector<int32_t>& ids) const {
  std::string text;
  text.reserve(ids.size() * 4);
  for (int32_t id : ids) {
    if (id < 0 || id >= vocab_size()) return BadId(id, vocab_size());
    if (id == kUnkId) {
      text += kReplacementChar;
    } else {
      text += bytes_[id];
    }
  }
  return text;
}

absl::Status BpeTokenizer::Save(const std::filesystem::path& path) const {
  Json list = Json::array();
  for (const auto& [left, right] : merges_) list.push_back({left, right});
  return WriteJson(path, Header(type(), vocab_size()), "merges", list);
}

// ---- factory and file ----

absl::StatusOr<std::unique_ptr<Tokenizer>> TrainTokenizer(
    std::string_view kind, std::string_view text, const BpeOptions& options) {
  if (kind == "char") {
    return std::make_unique<CharTokenizer>(CharTokenizer::Train(text));
  }
  if (kind == "bpe") {
    LLMSYS_ASSIGN_OR_RETURN(BpeTokenizer bpe,
                            BpeTokenizer::Train(text, options));
    return std::make_unique<BpeTokenizer>(std::move(bpe));
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown tokenizer '", std::string(kind),
                   "': expected one of char, bpe"));
}

namespace {

absl::StatusOr<std::unique_ptr<Tokenizer>> FromJson(const Json& j) {
  if (!j.is_object() || !j.contains("format") ||
      j["format"] != std::string(kFormatName)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "it is not a tokenizer file (expected a JSON object with \"format\": "
        "\"",
        std::string(kFormatName), "\")"));
  }
  if (!j.contains("version") || !j["version"].is_number_integer()) {
    return absl::InvalidArgumentError("it has no integer \"version\"");
  }
  if (j["version"].get<int64_t>() != kTokenizerFormatVersion) {
    return absl::FailedPreconditionError(
        absl::StrCat("it is format version ", j["version"].get<int64_t>(),
                     ", this build reads version ", kTokenizerFormatVersion));
  }
  if (j.contains("special_tokens")) {
    for (int32_t id = 0; id < kNumSpecialTokens; ++id) {
      const std::string name(SpecialTokenName(id));
      const Json& specials = j["special_tokens"];
      if (!specials.contains(name) || specials[name] != id) {
        return absl::InvalidArgumentError(
            absl::StrCat("its special tokens are ", specials.dump(),
                         ": expected ", name, " to be id ", id));
      }
    }
  }
  const std::string type = j.at("type").get<std::string>();
  std::unique_ptr<Tokenizer> tok;
  if (type == "char") {
    std::vector<std::string> tokens;
    for (const Json& t : j.at("tokens")) {
      if (t.is_number_unsigned() && t.get<uint64_t>() < 256) {
        tokens.emplace_back(1, static_cast<char>(t.get<uint64_t>()));
      } else {
        tokens.push_back(t.get<std::string>());
      }
    }
    LLMSYS_ASSIGN_OR_RETURN(CharTokenizer c,
                            CharTokenizer::FromTokens(std::move(tokens)));
    tok = std::make_unique<CharTokenizer>(std::move(c));
  } else if (type == "bpe") {
    std::vector<std::pair<int32_t, int32_t>> merges;
    for (const Json& m : j.at("merges")) {
      if (!m.is_array() || m.size() != 2) {
        return absl::InvalidArgumentError(
            absl::StrCat("merge ", merges.size(), " is ", m.dump(),
                         ": expected a pair [left id, right id]"));
      }
      merges.emplace_back(m[0].get<int32_t>(), m[1].get<int32_t>());
    }
    LLMSYS_ASSIGN_OR_RETURN(BpeTokenizer b,
                            BpeTokenizer::FromMerges(std::move(merges)));
    tok = std::make_unique<BpeTokenizer>(std::move(b));
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("its type is '", type, "': expected one of char, bpe"));
  }
  if (j.contains("vocab_size") &&
      j["vocab_size"].get<int64_t>() != tok->vocab_size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("it says vocab_size ", j["vocab_size"].get<int64_t>(),
                     " but its contents make ", tok->vocab_size(), " tokens"));
  }
  return tok;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Tokenizer>> LoadTokenizer(
    const std::filesystem::path& path) {
  LLMSYS_ASSIGN_OR_RETURN(std::string text, ReadTextFile(path));
  Json j = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) {
    return absl::InvalidArgumentError(absl::StrCat(
        path.string(), " is not a tokenizer file: it is not valid JSON"));
  }
  absl::StatusOr<std::unique_ptr<Tokenizer>> tok;
  try {
    tok = FromJson(j);
  } catch (const Json::exception& e) {
    tok = absl::InvalidArgumentError(absl::StrCat(
        "a field is missing or of the wrong type (", e.what(), ")"));
  }
  if (!tok.ok()) {
    return absl::Status(
        tok.status().code(),
        absl::StrCat("cannot load tokenizer ", path.string(), ": ",
                     std::string(tok.status().message())));
  }
  return tok;
}

}  // namespace llmsys::data
