// plugins/evaluators/text/rouge.cc — rouge-score 0.1.2 on token ids.
//
// Texts become sequences of 32-bit ids (equal ids = equal tokens after
// stemming) through a cache shared by all calls of a scorer, so each
// distinct word is lowered, stemmed and hashed into a string once. Each
// score then renumbers the ids of its two texts densely (0..V-1) and works
// on integer arrays only: counts for rouge1, sorted n-gram keys for rougeN,
// an O(n m) dynamic programme for the LCS types.
#include "plugins/evaluators/text/rouge.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <mutex>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "plugins/evaluators/text/porter.h"

namespace llmsys::text {
namespace {

enum class Kind { kNgram, kLcs, kSummaryLcs };

struct TypeSpec {
  std::string name;
  Kind kind = Kind::kNgram;
  std::size_t n = 0;  // kNgram only
};

TypeSpec ParseType(const std::string& name) {
  if (name == "rougeL") return {name, Kind::kLcs, 0};
  if (name == "rougeLsum") return {name, Kind::kSummaryLcs, 0};
  constexpr std::string_view kPrefix = "rouge";
  const std::string_view digits = std::string_view(name).substr(
      name.compare(0, kPrefix.size(), kPrefix) == 0 ? kPrefix.size()
                                                    : name.size());
  const bool all_digits =
      !digits.empty() && std::all_of(digits.begin(), digits.end(), [](char c) {
        return c >= '0' && c <= '9';
      });
  if (!all_digits || digits.size() > 6) {
    throw std::invalid_argument(
        "RougeScorer: unknown ROUGE type '" + name +
        "'; expected rouge<N> (N >= 1, e.g. rouge1, rouge2), rougeL or "
        "rougeLsum");
  }
  if (digits[0] == '0') {
    throw std::invalid_argument(
        "RougeScorer: ROUGE type '" + name +
        "' has n = 0 or a leading zero; rouge-N needs N >= 1 written "
        "without leading zeros (rouge1, rouge2, ...)");
  }
  return {name, Kind::kNgram,
          static_cast<std::size_t>(std::stoul(std::string(digits)))};
}

double FMeasure(double precision, double recall) {
  // rouge_score.scoring.fmeasure, in the same order of operations.
  if (precision + recall > 0) {
    return 2 * precision * recall / (precision + recall);
  }
  return 0.0;
}

RougeScore MakeScore(double precision, double recall) {
  return {precision, recall, FMeasure(precision, recall)};
}

bool IsValidToken(std::string_view token) {
  return !token.empty() && std::all_of(token.begin(), token.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
  });
}

// Walks `text` as rouge_score.tokenize does before stemming: lower-cases,
// treats every character outside [a-z0-9] (after lowering) as a separator,
// and calls on_token(raw token) for each maximal run and on_newline() at
// each '\n' (after the token it ends). `buffer` is scratch space.
template <typename OnToken, typename OnNewline>
void ScanTokens(std::string_view text, std::string& buffer, OnToken on_token,
                OnNewline on_newline) {
  buffer.clear();
  auto flush = [&] {
    if (!buffer.empty()) {
      on_token(std::string_view(buffer));
      buffer.clear();
    }
  };
  const std::size_t size = text.size();
  std::size_t i = 0;
  while (i < size) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c < 0x80) {
      if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) {
        buffer.push_back(static_cast<char>(c));
      } else if (c >= 'A' && c <= 'Z') {
        buffer.push_back(static_cast<char>(c - 'A' + 'a'));
      } else {
        flush();
        if (c == '\n') on_newline();
      }
      ++i;
    } else if (c == 0xC4 && i + 1 < size &&
               static_cast<unsigned char>(text[i + 1]) == 0xB0) {
      // U+0130 lowers to "i" + U+0307 (a separator).
      buffer.push_back('i');
      flush();
      i += 2;
    } else if (c == 0xE2 && i + 2 < size &&
               static_cast<unsigned char>(text[i + 1]) == 0x84 &&
               static_cast<unsigned char>(text[i + 2]) == 0xAA) {
      buffer.push_back('k');  // U+212A KELVIN SIGN lowers to "k"
      i += 3;
    } else {
      flush();
      ++i;
    }
  }
  flush();
}

// A text as token ids; sentence k (for rougeLsum) is ids[ends[k-1], ends[k])
// with ends[-1] = 0. Sentences without tokens are left out: rouge-score's
// summary-level LCS gives them no weight.
struct TokenIds {
  std::vector<std::uint32_t> ids;
  std::vector<std::uint32_t> sentence_ends;
};

struct StringHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const {
    return std::hash<std::string_view>{}(s);
  }
};
using IdMap =
    std::unordered_map<std::string, std::uint32_t, StringHash, std::equal_to<>>;

constexpr std::uint32_t kDropped = 0xFFFFFFFFu;
// Above this many cached words the cache starts afresh (at the start of a
// call, so the ids inside one call always agree).
constexpr std::size_t kMaxCachedWords = std::size_t{1} << 20;

// Renumbers the ids of two texts densely as 0..V-1; returns V.
std::uint32_t Densify(std::vector<std::uint32_t>& a,
                      std::vector<std::uint32_t>& b,
                      std::vector<std::uint32_t>& scratch) {
  scratch.assign(a.begin(), a.end());
  scratch.insert(scratch.end(), b.begin(), b.end());
  std::sort(scratch.begin(), scratch.end());
  scratch.erase(std::unique(scratch.begin(), scratch.end()), scratch.end());
  auto rank = [&](std::uint32_t id) {
    return static_cast<std::uint32_t>(
        std::lower_bound(scratch.begin(), scratch.end(), id) - scratch.begin());
  };
  for (auto& id : a) id = rank(id);
  for (auto& id : b) id = rank(id);
  return static_cast<std::uint32_t>(scratch.size());
}

// Sum over distinct keys of min(count in a, count in b); sorts both.
std::size_t SortedIntersection(std::vector<std::uint64_t>& a,
                               std::vector<std::uint64_t>& b) {
  std::sort(a.begin(), a.end());
  std::sort(b.begin(), b.end());
  std::size_t matches = 0;
  std::size_t i = 0;
  std::size_t j = 0;
  while (i < a.size() && j < b.size()) {
    if (a[i] < b[j]) {
      ++i;
    } else if (b[j] < a[i]) {
      ++j;
    } else {
      ++matches;
      ++i;
      ++j;
    }
  }
  return matches;
}

// Everything one score needs, reused across the types and targets of a
// call so the hot loops do not allocate.
struct Workspace {
  std::vector<std::uint32_t> target;      // (m,) dense ids
  std::vector<std::uint32_t> prediction;  // (n,) dense ids
  std::vector<std::uint32_t> counts_a, counts_b;
  std::vector<std::uint32_t> level_a, level_b;
  std::vector<std::uint64_t> keys_a, keys_b, ranks;
  std::vector<std::uint32_t> table;  // (r + 1, c + 1) LCS table
  std::vector<std::uint8_t> in_union;
  std::vector<std::uint32_t> scratch;
};

// rouge_score.rouge_scorer._score_ngrams(_create_ngrams(target, n),
// _create_ngrams(prediction, n)) on dense ids in [0, vocab).
RougeScore NgramScore(Workspace& w, std::uint32_t vocab, std::size_t n) {
  const std::vector<std::uint32_t>& a = w.target;
  const std::vector<std::uint32_t>& b = w.prediction;
  const std::size_t count_a = a.size() >= n ? a.size() - n + 1 : 0;
  const std::size_t count_b = b.size() >= n ? b.size() - n + 1 : 0;
  std::size_t matches = 0;
  if (count_a > 0 && count_b > 0) {
    if (n == 1) {
      w.counts_a.assign(vocab, 0);
      for (std::uint32_t t : a) ++w.counts_a[t];
      for (std::uint32_t t : b) {
        if (w.counts_a[t] > 0) {
          --w.counts_a[t];
          ++matches;
        }
      }
    } else {
      // An n-gram is named by (name of its first n-1 tokens, last token);
      // names of (n-1)-grams are dense ranks, so keys stay below 2^64.
      w.level_a.assign(a.begin(), a.end());
      w.level_b.assign(b.begin(), b.end());
      for (std::size_t len = 2;; ++len) {
        const std::size_t na = a.size() - len + 1;
        const std::size_t nb = b.size() - len + 1;
        w.keys_a.resize(na);
        w.keys_b.resize(nb);
        for (std::size_t i = 0; i < na; ++i) {
          w.keys_a[i] = w.level_a[i] * std::uint64_t{vocab} + a[i + len - 1];
        }
        for (std::size_t i = 0; i < nb; ++i) {
          w.keys_b[i] = w.level_b[i] * std::uint64_t{vocab} + b[i + len - 1];
        }
        if (len == n) break;
        w.ranks.assign(w.keys_a.begin(), w.keys_a.end());
        w.ranks.insert(w.ranks.end(), w.keys_b.begin(), w.keys_b.end());
        std::sort(w.ranks.begin(), w.ranks.end());
        w.ranks.erase(std::unique(w.ranks.begin(), w.ranks.end()),
                      w.ranks.end());
        auto rank = [&](std::uint64_t key) {
          return static_cast<std::uint32_t>(
              std::lower_bound(w.ranks.begin(), w.ranks.end(), key) -
              w.ranks.begin());
        };
        w.level_a.resize(na);
        w.level_b.resize(nb);
        for (std::size_t i = 0; i < na; ++i) w.level_a[i] = rank(w.keys_a[i]);
        for (std::size_t i = 0; i < nb; ++i) w.level_b[i] = rank(w.keys_b[i]);
      }
      matches = SortedIntersection(w.keys_a, w.keys_b);
    }
  }
  const double m = static_cast<double>(matches);
  return MakeScore(m / static_cast<double>(std::max<std::size_t>(count_b, 1)),
                   m / static_cast<double>(std::max<std::size_t>(count_a, 1)));
}

// Length of the longest common subsequence of a (na,) and b (nb,).
std::uint32_t LcsLength(const std::uint32_t* a, std::size_t na,
                        const std::uint32_t* b, std::size_t nb,
                        std::vector<std::uint32_t>& row) {
  row.assign(nb + 1, 0);  // row[j]: LCS of a[0, i) and b[0, j)
  for (std::size_t i = 0; i < na; ++i) {
    std::uint32_t diagonal = 0;  // LCS of a[0, i) and b[0, j - 1)
    const std::uint32_t ai = a[i];
    for (std::size_t j = 1; j <= nb; ++j) {
      const std::uint32_t up = row[j];
      row[j] = ai == b[j - 1] ? diagonal + 1 : std::max(up, row[j - 1]);
      diagonal = up;
    }
  }
  return row[nb];
}

// rouge_score.rouge_scorer._score_lcs.
RougeScore LcsScore(Workspace& w) {
  const std::size_t m = w.target.size();
  const std::size_t n = w.prediction.size();
  if (m == 0 || n == 0) return {};
  const double lcs =
      LcsLength(w.target.data(), m, w.prediction.data(), n, w.table);
  return MakeScore(lcs / static_cast<double>(n), lcs / static_cast<double>(m));
}

// Marks in `in_union` the positions of r (nr,) that rouge-score's lcs_ind
// (its _lcs_table then _backtrack_norec) picks against c (nc,).
void MarkLcs(const std::uint32_t* r, std::size_t nr, const std::uint32_t* c,
             std::size_t nc, std::vector<std::uint32_t>& table,
             std::vector<std::uint8_t>& in_union) {
  const std::size_t cols = nc + 1;
  table.assign((nr + 1) * cols, 0);  // (nr + 1, nc + 1)
  for (std::size_t i = 1; i <= nr; ++i) {
    std::uint32_t* t = table.data() + i * cols;
    const std::uint32_t* above = t - cols;
    const std::uint32_t ri = r[i - 1];
    for (std::size_t j = 1; j <= nc; ++j) {
      t[j] = ri == c[j - 1] ? above[j - 1] + 1 : std::max(above[j], t[j - 1]);
    }
  }
  std::size_t i = nr;
  std::size_t j = nc;
  while (i > 0 && j > 0) {
    if (r[i - 1] == c[j - 1]) {
      in_union[i - 1] = 1;
      --i;
      --j;
    } else if (table[i * cols + j - 1] > table[(i - 1) * cols + j]) {
      --j;
    } else {
      --i;
    }
  }
}

// rouge_score.rouge_scorer._summary_level_lcs.
RougeScore SummaryLcsScore(Workspace& w, std::uint32_t vocab,
                           const std::vector<std::uint32_t>& target_ends,
                           const std::vector<std::uint32_t>& prediction_ends) {
  const std::size_t m = w.target.size();
  const std::size_t n = w.prediction.size();
  if (m == 0 || n == 0) return {};
  // A hit uses up one occurrence of its token in the prediction, so no
  // prediction token counts twice. rouge-score also caps by the target's
  // counts, which can never bind: each target position is in at most one
  // union and so hits at most once.
  w.counts_b.assign(vocab, 0);
  for (std::uint32_t t : w.prediction) ++w.counts_b[t];
  std::size_t hits = 0;
  std::uint32_t r_begin = 0;
  for (std::uint32_t r_end : target_ends) {
    const std::uint32_t* r = w.target.data() + r_begin;
    const std::size_t nr = r_end - r_begin;
    r_begin = r_end;
    w.in_union.assign(nr, 0);
    std::uint32_t c_begin = 0;
    for (std::uint32_t c_end : prediction_ends) {
      MarkLcs(r, nr, w.prediction.data() + c_begin, c_end - c_begin, w.table,
              w.in_union);
      c_begin = c_end;
    }
    for (std::size_t k = 0; k < nr; ++k) {
      const std::uint32_t t = r[k];
      if (w.in_union[k] && w.counts_b[t] > 0) {
        ++hits;
        --w.counts_b[t];
      }
    }
  }
  const double h = static_cast<double>(hits);
  return MakeScore(h / static_cast<double>(n), h / static_cast<double>(m));
}

}  // namespace

struct RougeScorer::Impl {
  std::vector<TypeSpec> types;
  bool use_stemmer = false;

  // Word cache: raw token -> id of what it stands for after stemming
  // (kDropped when that is not a valid token); stem -> id when stemming.
  std::mutex mu;
  IdMap word_ids;
  IdMap stem_ids;

  // Appends `text` as ids to `out`. Requires mu held.
  void TokenizeLocked(std::string_view text, std::string& buffer,
                      TokenIds& out) {
    out.ids.clear();
    out.sentence_ends.clear();
    ScanTokens(
        text, buffer,
        [&](std::string_view raw) {
          const std::uint32_t id = IdOf(raw);
          if (id != kDropped) out.ids.push_back(id);
        },
        [&] { EndSentence(out); });
    EndSentence(out);
  }

  static void EndSentence(TokenIds& out) {
    const auto end = static_cast<std::uint32_t>(out.ids.size());
    const std::uint32_t begin =
        out.sentence_ends.empty() ? 0 : out.sentence_ends.back();
    if (end > begin) out.sentence_ends.push_back(end);
  }

  std::uint32_t IdOf(std::string_view raw) {
    if (auto it = word_ids.find(raw); it != word_ids.end()) return it->second;
    std::uint32_t id;
    if (!use_stemmer) {
      id = static_cast<std::uint32_t>(word_ids.size());
    } else {
      const std::string stem =
          raw.size() > 3 ? PorterStem(raw) : std::string(raw);
      if (!IsValidToken(stem)) {
        id = kDropped;
      } else {
        auto [it, inserted] = stem_ids.try_emplace(
            stem, static_cast<std::uint32_t>(stem_ids.size()));
        id = it->second;
      }
    }
    word_ids.emplace(std::string(raw), id);
    return id;
  }

  // Tokenizes all texts under one lock, so their ids agree.
  void Tokenize(const std::vector<std::string_view>& texts,
                std::vector<TokenIds>& out) {
    out.resize(texts.size());
    std::string buffer;
    std::lock_guard<std::mutex> lock(mu);
    if (word_ids.size() > kMaxCachedWords) {
      word_ids.clear();
      stem_ids.clear();
    }
    for (std::size_t i = 0; i < texts.size(); ++i) {
      TokenizeLocked(texts[i], buffer, out[i]);
    }
  }

  std::map<std::string, RougeScore> ScoreIds(const TokenIds& target,
                                             const TokenIds& prediction,
                                             Workspace& w) const {
    w.target.assign(target.ids.begin(), target.ids.end());
    w.prediction.assign(prediction.ids.begin(), prediction.ids.end());
    const std::uint32_t vocab = Densify(w.target, w.prediction, w.scratch);
    std::map<std::string, RougeScore> result;
    for (const TypeSpec& type : types) {
      RougeScore score;
      switch (type.kind) {
        case Kind::kNgram:
          score = NgramScore(w, vocab, type.n);
          break;
        case Kind::kLcs:
          score = LcsScore(w);
          break;
        case Kind::kSummaryLcs:
          score = SummaryLcsScore(w, vocab, target.sentence_ends,
                                  prediction.sentence_ends);
          break;
      }
      result.emplace(type.name, score);
    }
    return result;
  }
};

std::vector<std::string> RougeTokenize(std::string_view text,
                                       bool use_stemmer) {
  std::vector<std::string> tokens;
  std::string buffer;
  ScanTokens(
      text, buffer,
      [&](std::string_view raw) {
        std::string token =
            use_stemmer && raw.size() > 3 ? PorterStem(raw) : std::string(raw);
        if (IsValidToken(token)) tokens.push_back(std::move(token));
      },
      [] {});
  return tokens;
}

RougeScorer::RougeScorer(RougeOptions options)
    : options_(std::move(options)), impl_(std::make_unique<Impl>()) {
  if (options_.rouge_types.empty()) {
    throw std::invalid_argument(
        "RougeScorer: no ROUGE type given; name at least one of rouge<N>, "
        "rougeL, rougeLsum");
  }
  for (const std::string& name : options_.rouge_types) {
    for (const TypeSpec& seen : impl_->types) {
      if (seen.name == name) {
        throw std::invalid_argument("RougeScorer: ROUGE type '" + name +
                                    "' is listed twice");
      }
    }
    impl_->types.push_back(ParseType(name));
  }
  impl_->use_stemmer = options_.use_stemmer;
}

RougeScorer::~RougeScorer() = default;
RougeScorer::RougeScorer(RougeScorer&&) noexcept = default;
RougeScorer& RougeScorer::operator=(RougeScorer&&) noexcept = default;

std::map<std::string, RougeScore> RougeScorer::Score(
    std::string_view target, std::string_view prediction) const {
  std::vector<TokenIds> tokens;
  impl_->Tokenize({target, prediction}, tokens);
  Workspace w;
  return impl_->ScoreIds(tokens[0], tokens[1], w);
}

std::map<std::string, RougeScore> RougeScorer::ScoreMulti(
    const std::vector<std::string_view>& targets,
    std::string_view prediction) const {
  if (targets.empty()) {
    throw std::invalid_argument(
        "RougeScorer::ScoreMulti: no target given; pass at least one");
  }
  std::vector<std::string_view> texts(targets);
  texts.push_back(prediction);
  std::vector<TokenIds> tokens;
  impl_->Tokenize(texts, tokens);
  Workspace w;
  std::map<std::string, RougeScore> best;
  for (std::size_t i = 0; i < targets.size(); ++i) {
    std::map<std::string, RougeScore> scores =
        impl_->ScoreIds(tokens[i], tokens.back(), w);
    for (auto& [name, score] : scores) {
      auto [it, inserted] = best.try_emplace(name, score);
      // np.argmax: the first maximum wins.
      if (!inserted && score.fmeasure > it->second.fmeasure) {
        it->second = score;
      }
    }
  }
  return best;
}

void Rouge::Sum::Add(double x) {
  const double t = sum + x;
  if (std::abs(sum) >= std::abs(x)) {
    compensation += (sum - t) + x;
  } else {
    compensation += (x - t) + sum;
  }
  sum = t;
}

Rouge::Rouge(RougeOptions options) : scorer_(std::move(options)) {}

void Rouge::Add(
    std::string_view hypothesis,
    const std::vector<std::optional<std::string_view>>& references) {
  std::vector<std::string_view> present;
  for (const auto& ref : references) {
    if (ref.has_value()) present.push_back(*ref);
  }
  if (present.empty()) {
    ++num_skipped_;
    return;
  }
  const std::map<std::string, RougeScore> scores =
      present.size() == 1 ? scorer_.Score(present[0], hypothesis)
                          : scorer_.ScoreMulti(present, hypothesis);
  for (const auto& [name, score] : scores) {
    TypeSums& s = sums_[name];
    s.precision.Add(score.precision);
    s.recall.Add(score.recall);
    s.fmeasure.Add(score.fmeasure);
  }
  ++num_scored_;
}

std::map<std::string, RougeScore> Rouge::Scores() const {
  if (num_scored_ == 0) {
    throw std::invalid_argument(
        "Rouge::Scores: no segment was scored (" +
        std::to_string(num_skipped_) +
        " skipped for having no reference); Add segments with at least one "
        "reference first");
  }
  const auto n = static_cast<double>(num_scored_);
  std::map<std::string, RougeScore> means;
  for (const auto& [name, s] : sums_) {
    means[name] = {s.precision.Value() / n, s.recall.Value() / n,
                   s.fmeasure.Value() / n};
  }
  return means;
}

std::string Rouge::Signature() const {
  const RougeOptions& o = scorer_.options();
  std::string types;
  for (const std::string& t : o.rouge_types) {
    if (!types.empty()) types += ',';
    types += t;
  }
  return "rouge|types:" + types +
         "|stem:" + (o.use_stemmer ? "porter-nltk" : "no") +
         "|tok:rouge-score-default|lsum:newline|multiref:max-f|agg:mean"
         "|version:rouge-score-0.1.2";
}

}  // namespace llmsys::text
