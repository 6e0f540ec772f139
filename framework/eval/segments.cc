#include "framework/eval/segments.h"

#include "absl/strings/str_cat.h"
#include "framework/core/files.h"
#include "framework/core/status_macros.h"
#include "framework/data/corpus.h"
#include "llmsys/evaluator.h"
#include "nlohmann/json.hpp"

namespace llmsys::eval {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

// Splits on "\n", checking UTF-8; the error names file:line and the byte.
absl::StatusOr<std::vector<std::string>> SplitLines(const fs::path& file,
                                                    const std::string& text) {
  std::vector<std::string> lines;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    const std::string_view line(text.data() + start, end - start);
    for (size_t i = 0; i < line.size();) {
      const int n = data::Utf8CharLength(line, i);
      if (n == 0)
        return absl::InvalidArgumentError(absl::StrCat(
            file.string(), ":", lines.size() + 1, ": invalid UTF-8 at byte ",
            i + 1, " of the line (0x",
            absl::Hex(static_cast<unsigned char>(line[i]), absl::kZeroPad2),
            "); the text must be UTF-8"));
      i += static_cast<size_t>(n);
    }
    lines.emplace_back(line);
    start = end + 1;
  }
  return lines;
}

std::string Where(const fs::path& file, size_t line) {
  return absl::StrCat(file.string(), ":", line);
}

// `key` of `object` as T; the error names file:line and what was expected.
template <class T>
absl::StatusOr<T> Field(const json& object, const char* key,
                        const char* expected, const std::string& where) {
  auto it = object.find(key);
  if (it == object.end())
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": missing key \"", key, "\" (", expected, ")"));
  try {
    if constexpr (std::is_same_v<T, int64_t>) {
      if (!it->is_number_integer()) throw std::invalid_argument("not an int");
    } else if constexpr (std::is_same_v<T, double>) {
      if (!it->is_number()) throw std::invalid_argument("not a number");
    } else {
      if (!it->is_string()) throw std::invalid_argument("not a string");
    }
    return it->get<T>();
  } catch (const std::exception&) {
    return absl::InvalidArgumentError(absl::StrCat(
        where, ": \"", key, "\" must be ", expected, ", got ", it->dump()));
  }
}

absl::Status AddTextObject(const json& o, const std::string& where,
                           Segments* s) {
  LLMSYS_ASSIGN_OR_RETURN(std::string hyp,
                          Field<std::string>(o, "hyp", "a string", where));
  References refs;
  if (auto r = o.find("refs"); r != o.end()) {
    if (!r->is_array())
      return absl::InvalidArgumentError(absl::StrCat(
          where,
          ": \"refs\" must be a list of strings (null for a missing "
          "reference), got ",
          r->dump()));
    for (const json& item : *r) {
      if (item.is_null()) {
        refs.emplace_back(std::nullopt);
      } else if (item.is_string()) {
        refs.emplace_back(item.get<std::string>());
      } else {
        return absl::InvalidArgumentError(absl::StrCat(
            where, ": \"refs\" items must be strings or null, got ",
            item.dump()));
      }
    }
  } else if (o.contains("ref")) {
    LLMSYS_ASSIGN_OR_RETURN(std::string ref,
                            Field<std::string>(o, "ref", "a string", where));
    refs.emplace_back(std::move(ref));
  } else {
    return absl::InvalidArgumentError(absl::StrCat(
        where, ": missing key \"refs\" (a list of reference strings)"));
  }
  s->hyps.push_back(std::move(hyp));
  s->refs.push_back(std::move(refs));
  return absl::OkStatus();
}

absl::Status AddLogProbObject(const json& o, const std::string& where,
                              Segments* s) {
  LLMSYS_ASSIGN_OR_RETURN(double lp,
                          Field<double>(o, "log_prob", "a number", where));
  LLMSYS_ASSIGN_OR_RETURN(int64_t n,
                          Field<int64_t>(o, "tokens", "an integer", where));
  s->log_probs.push_back(lp);
  s->token_counts.push_back(n);
  return absl::OkStatus();
}

absl::Status AddPredictionObject(const json& o, const std::string& where,
                                 bool pass_at_k, Segments* s) {
  const char* first = pass_at_k ? "c" : "prediction";
  const char* second = pass_at_k ? "n" : "label";
  LLMSYS_ASSIGN_OR_RETURN(int64_t p,
                          Field<int64_t>(o, first, "an integer", where));
  LLMSYS_ASSIGN_OR_RETURN(int64_t l,
                          Field<int64_t>(o, second, "an integer", where));
  s->predictions.push_back(p);
  s->labels.push_back(l);
  return absl::OkStatus();
}

}  // namespace

size_t Segments::size() const {
  return std::max({hyps.size(), log_probs.size(), predictions.size()});
}

absl::StatusOr<std::vector<std::string>> ReadLines(const fs::path& file) {
  LLMSYS_ASSIGN_OR_RETURN(std::string text, core::ReadFile(file));
  if (text.empty())
    return absl::InvalidArgumentError(absl::StrCat(
        file.string(), ": the file is empty (expected one segment per line)"));
  return SplitLines(file, text);
}

absl::StatusOr<Segments> ReadTextFiles(const fs::path& hyp_file,
                                       const std::vector<fs::path>& ref_files) {
  if (ref_files.empty())
    return absl::InvalidArgumentError(
        "no reference file (give at least one --ref)");
  Segments s;
  LLMSYS_ASSIGN_OR_RETURN(s.hyps, ReadLines(hyp_file));
  s.refs.resize(s.hyps.size());
  for (const fs::path& ref_file : ref_files) {
    LLMSYS_ASSIGN_OR_RETURN(std::vector<std::string> refs, ReadLines(ref_file));
    if (refs.size() != s.hyps.size())
      return absl::InvalidArgumentError(
          absl::StrCat(ref_file.string(), " has ", refs.size(), " lines but ",
                       hyp_file.string(), " has ", s.hyps.size(),
                       "; every reference file needs one line per hypothesis"));
    for (size_t i = 0; i < refs.size(); ++i)
      s.refs[i].emplace_back(std::move(refs[i]));
  }
  return s;
}

absl::StatusOr<Segments> ReadJsonl(const fs::path& file, uint32_t inputs,
                                   const std::string& evaluator_id) {
  LLMSYS_ASSIGN_OR_RETURN(std::string text, core::ReadFile(file));
  LLMSYS_ASSIGN_OR_RETURN(std::vector<std::string> lines,
                          SplitLines(file, text));
  Segments s;
  for (size_t i = 0; i < lines.size(); ++i) {
    if (lines[i].find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = Where(file, i + 1);
    json o;
    try {
      o = json::parse(lines[i]);
    } catch (const json::parse_error& e) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": not valid JSON (", e.what(), ")"));
    }
    if (!o.is_object())
      return absl::InvalidArgumentError(absl::StrCat(
          where, ": expected one JSON object per line, got ", o.dump()));
    if (inputs & LLMSYS_EVAL_TEXT) {
      LLMSYS_RETURN_IF_ERROR(AddTextObject(o, where, &s));
    } else if (inputs & LLMSYS_EVAL_LOG_PROBS) {
      LLMSYS_RETURN_IF_ERROR(AddLogProbObject(o, where, &s));
    } else if (inputs & LLMSYS_EVAL_PREDICTIONS) {
      LLMSYS_RETURN_IF_ERROR(
          AddPredictionObject(o, where, evaluator_id == "pass_at_k", &s));
    } else {
      return absl::InvalidArgumentError(
          "the evaluator declares no input it reads");
    }
  }
  if (s.size() == 0)
    return absl::InvalidArgumentError(absl::StrCat(
        file.string(), ": no segments (expected one JSON object per line)"));
  return s;
}

absl::Status AddSegments(Evaluator& evaluator, const Segments& s, size_t begin,
                         size_t end) {
  auto part = [&](const auto& v) {
    using V = std::decay_t<decltype(v)>;
    return V(v.begin() + static_cast<ptrdiff_t>(begin),
             v.begin() + static_cast<ptrdiff_t>(end));
  };
  if (!s.hyps.empty()) return evaluator.AddText(part(s.hyps), part(s.refs));
  if (!s.log_probs.empty())
    return evaluator.AddLogProbs(part(s.log_probs), part(s.token_counts));
  return evaluator.AddPredictions(part(s.predictions), part(s.labels));
}

}  // namespace llmsys::eval
