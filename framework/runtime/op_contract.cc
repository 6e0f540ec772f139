#include "framework/runtime/op_contract.h"

#include <cctype>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "framework/core/status_macros.h"
#include "llmsys/ops.h"

namespace llmsys::runtime {
namespace {

// A small recursive-descent reader over one signature.
class Reader {
 public:
  explicit Reader(std::string_view text) : text_(text) {}

  void SkipSpace() {
    while (pos_ < text_.size() &&
           std::isspace(static_cast<unsigned char>(text_[pos_])))
      ++pos_;
  }
  bool AtEnd() {
    SkipSpace();
    return pos_ >= text_.size();
  }
  bool Consume(std::string_view token) {
    SkipSpace();
    if (text_.substr(pos_, token.size()) == token) {
      pos_ += token.size();
      return true;
    }
    return false;
  }
  absl::Status Expect(std::string_view token) {
    if (Consume(token)) return absl::OkStatus();
    return Error(absl::StrCat("expected '", std::string(token), "'"));
  }
  absl::StatusOr<std::string> Name() {
    SkipSpace();
    size_t start = pos_;
    while (pos_ < text_.size() &&
           (std::isalnum(static_cast<unsigned char>(text_[pos_])) ||
            text_[pos_] == '_'))
      ++pos_;
    std::string name(text_.substr(start, pos_ - start));
    if (!IsParamName(name)) {
      pos_ = start;
      return Error("expected a name of the form [a-z][a-z0-9_]*");
    }
    return name;
  }
  // A run of characters up to the next ',' or ')' at depth 0.
  std::string_view RawValue() {
    SkipSpace();
    size_t start = pos_;
    int depth = 0;
    bool quoted = false;
    while (pos_ < text_.size()) {
      char c = text_[pos_];
      if (c == '\'') quoted = !quoted;
      if (!quoted) {
        if (c == '[') ++depth;
        if (c == ']') --depth;
        if (depth == 0 && (c == ',' || c == ')')) break;
      }
      ++pos_;
    }
    std::string_view v = text_.substr(start, pos_ - start);
    while (!v.empty() && std::isspace(static_cast<unsigned char>(v.back())))
      v.remove_suffix(1);
    return v;
  }
  absl::Status Error(std::string_view what) const {
    return absl::InvalidArgumentError(
        absl::StrCat("op signature \"", std::string(text_), "\" at column ",
                     pos_ + 1, ": ", std::string(what)));
  }
  size_t pos() const { return pos_; }

 private:
  std::string_view text_;
  size_t pos_ = 0;
};

std::optional<int64_t> ParseInt(std::string_view s) {
  int64_t v = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || ptr != s.data() + s.size()) return std::nullopt;
  return v;
}

std::optional<double> ParseFloat(std::string_view s) {
  if (s.empty()) return std::nullopt;
  std::string copy(s);
  char* end = nullptr;
  double v = std::strtod(copy.c_str(), &end);
  if (end != copy.c_str() + copy.size()) return std::nullopt;
  return v;
}

std::optional<ParamValue> ParseDefault(llmsys_type_t type, std::string_view s) {
  switch (type) {
    case LLMSYS_TYPE_BOOL:
      if (s == "true") return ParamValue(true);
      if (s == "false") return ParamValue(false);
      return std::nullopt;
    case LLMSYS_TYPE_INT:
      if (auto v = ParseInt(s)) return ParamValue(*v);
      return std::nullopt;
    case LLMSYS_TYPE_FLOAT:
      if (auto v = ParseFloat(s)) return ParamValue(*v);
      return std::nullopt;
    case LLMSYS_TYPE_STRING:
      if (s.size() >= 2 && s.front() == '\'' && s.back() == '\'')
        return ParamValue(std::string(s.substr(1, s.size() - 2)));
      return std::nullopt;
    case LLMSYS_TYPE_INT_LIST:
    case LLMSYS_TYPE_FLOAT_LIST: {
      if (s.size() < 2 || s.front() != '[' || s.back() != ']')
        return std::nullopt;
      std::string_view body = s.substr(1, s.size() - 2);
      std::vector<int64_t> ints;
      std::vector<double> floats;
      while (!body.empty()) {
        size_t comma = body.find(',');
        std::string_view item = body.substr(0, comma);
        while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
        while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
        if (type == LLMSYS_TYPE_INT_LIST) {
          auto v = ParseInt(item);
          if (!v) return std::nullopt;
          ints.push_back(*v);
        } else {
          auto v = ParseFloat(item);
          if (!v) return std::nullopt;
          floats.push_back(*v);
        }
        if (comma == std::string_view::npos) break;
        body.remove_prefix(comma + 1);
      }
      if (type == LLMSYS_TYPE_INT_LIST) return ParamValue(std::move(ints));
      return ParamValue(std::move(floats));
    }
    default:
      return std::nullopt;
  }
}

std::optional<llmsys_type_t> AttributeType(std::string_view t) {
  if (t == "bool") return LLMSYS_TYPE_BOOL;
  if (t == "int") return LLMSYS_TYPE_INT;
  if (t == "float") return LLMSYS_TYPE_FLOAT;
  if (t == "str") return LLMSYS_TYPE_STRING;
  if (t == "int[]") return LLMSYS_TYPE_INT_LIST;
  if (t == "float[]") return LLMSYS_TYPE_FLOAT_LIST;
  return std::nullopt;
}

}  // namespace

absl::StatusOr<OpContract> ParseOpSignature(std::string_view signature,
                                            std::string_view doc) {
  Reader r(signature);
  OpContract c;
  c.signature = std::string(signature);
  c.doc = std::string(doc);
  LLMSYS_ASSIGN_OR_RETURN(c.name, r.Name());
  LLMSYS_RETURN_IF_ERROR(r.Expect("("));
  bool any_variadic = false;
  if (!r.Consume(")")) {
    while (true) {
      if (r.Consume("Tensor")) {
        if (!c.attributes.empty())
          return r.Error("tensor inputs must come before attributes");
        OpTensorArg arg;
        if (r.Consume("?"))
          arg.optional = true;
        else if (r.Consume("[]"))
          arg.variadic = true;
        if (arg.variadic && any_variadic)
          return r.Error("at most one Tensor[] input");
        any_variadic = any_variadic || arg.variadic;
        LLMSYS_ASSIGN_OR_RETURN(arg.name, r.Name());
        c.inputs.push_back(std::move(arg));
      } else {
        std::optional<llmsys_type_t> type;
        for (std::string_view t :
             {"int[]", "float[]", "bool", "int", "float", "str"}) {
          if (r.Consume(t)) {
            type = AttributeType(t);
            break;
          }
        }
        if (!type)
          return r.Error(
              "expected a type: Tensor, Tensor?, Tensor[], bool, int, "
              "float, str, int[] or float[]");
        ParamSchemaEntry attr;
        attr.type = *type;
        LLMSYS_ASSIGN_OR_RETURN(attr.name, r.Name());
        if (r.Consume("=")) {
          std::string_view raw = r.RawValue();
          attr.default_value = ParseDefault(attr.type, raw);
          if (!attr.default_value) {
            return r.Error(absl::StrCat("default '", std::string(raw),
                                        "' is not a valid ",
                                        TypeName(attr.type)));
          }
        } else {
          attr.required = true;
        }
        attr.doc = absl::StrCat("attribute of ", c.name);
        LLMSYS_RETURN_IF_ERROR(CheckParamSchemaEntry(attr));
        c.attributes.push_back(std::move(attr));
      }
      if (r.Consume(")")) break;
      LLMSYS_RETURN_IF_ERROR(r.Expect(","));
    }
  }
  LLMSYS_RETURN_IF_ERROR(r.Expect("->"));
  const bool tuple = r.Consume("(");
  while (true) {
    LLMSYS_RETURN_IF_ERROR(r.Expect("Tensor"));
    OpOutput out;
    out.aux = r.Consume("(aux)");
    LLMSYS_ASSIGN_OR_RETURN(out.name, r.Name());
    c.outputs.push_back(std::move(out));
    if (!tuple || r.Consume(")")) break;
    LLMSYS_RETURN_IF_ERROR(r.Expect(","));
  }
  if (!r.AtEnd()) return r.Error("unexpected text after the outputs");
  // Every name once.
  std::vector<std::string> names;
  for (const auto& i : c.inputs) names.push_back(i.name);
  for (const auto& a : c.attributes) names.push_back(a.name);
  for (const auto& o : c.outputs) names.push_back(o.name);
  for (size_t i = 0; i < names.size(); ++i) {
    for (size_t j = i + 1; j < names.size(); ++j) {
      if (names[i] == names[j])
        return r.Error(absl::StrCat("name '", names[i], "' is used twice"));
    }
  }
  return c;
}

const std::vector<OpContract>& StandardOpContracts() {
  static const std::vector<OpContract>* contracts = [] {
    auto* v = new std::vector<OpContract>;
#define LLMSYS_PARSE_STANDARD_OP_(sig, doc)                        \
  {                                                                \
    absl::StatusOr<OpContract> c = ParseOpSignature(sig, doc);     \
    if (!c.ok()) {                                                 \
      /* A broken built-in table is a bug in abi/llmsys/ops.h. */  \
      std::fprintf(stderr, "%s\n", c.status().ToString().c_str()); \
      std::abort();                                                \
    }                                                              \
    v->push_back(*std::move(c));                                   \
  }
    LLMSYS_STANDARD_OPS(LLMSYS_PARSE_STANDARD_OP_)
#undef LLMSYS_PARSE_STANDARD_OP_
    return v;
  }();
  return *contracts;
}

}  // namespace llmsys::runtime
