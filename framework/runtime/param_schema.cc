#include "framework/runtime/param_schema.h"

#include <cmath>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "framework/core/status_macros.h"
#include "framework/core/suggest.h"

namespace llmsys::runtime {
namespace {

absl::StatusOr<ParamValue> ReadValue(const llmsys_typed_value_t& v,
                                     llmsys_type_t type) {
  if (v.type != type) {
    return absl::InvalidArgumentError(absl::StrCat(
        "its default has type ", TypeName(v.type), ", not ", TypeName(type)));
  }
  switch (type) {
    case LLMSYS_TYPE_BOOL:
      if (v.as.i != 0 && v.as.i != 1)
        return absl::InvalidArgumentError("its bool default is not 0 or 1");
      return ParamValue(v.as.i == 1);
    case LLMSYS_TYPE_INT:
      return ParamValue(static_cast<int64_t>(v.as.i));
    case LLMSYS_TYPE_FLOAT:
      return ParamValue(v.as.f);
    case LLMSYS_TYPE_STRING:
      if (v.as.s == nullptr)
        return absl::InvalidArgumentError("its string default is NULL");
      return ParamValue(std::string(v.as.s));
    case LLMSYS_TYPE_INT_LIST:
      if (v.count > 0 && v.as.ints == nullptr)
        return absl::InvalidArgumentError("its list default is NULL");
      return ParamValue(std::vector<int64_t>(v.as.ints, v.as.ints + v.count));
    case LLMSYS_TYPE_FLOAT_LIST:
      if (v.count > 0 && v.as.floats == nullptr)
        return absl::InvalidArgumentError("its list default is NULL");
      return ParamValue(
          std::vector<double>(v.as.floats, v.as.floats + v.count));
    default:
      break;
  }
  return absl::InvalidArgumentError("unknown type");
}

// The numbers a range applies to: the value itself or every list item.
std::vector<double> Numbers(const ParamValue& v) {
  if (const auto* i = std::get_if<int64_t>(&v))
    return {static_cast<double>(*i)};
  if (const auto* f = std::get_if<double>(&v)) return {*f};
  if (const auto* l = std::get_if<std::vector<int64_t>>(&v))
    return std::vector<double>(l->begin(), l->end());
  if (const auto* l = std::get_if<std::vector<double>>(&v)) return *l;
  return {};
}

std::string FormatDouble(double d) {
  if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 1e15)
    return absl::StrCat(static_cast<int64_t>(d), ".0");
  return absl::StrCat(d);
}

}  // namespace

std::string TypeName(llmsys_type_t type) {
  switch (type) {
    case LLMSYS_TYPE_BOOL:
      return "bool";
    case LLMSYS_TYPE_INT:
      return "int";
    case LLMSYS_TYPE_FLOAT:
      return "float";
    case LLMSYS_TYPE_STRING:
      return "str";
    case LLMSYS_TYPE_INT_LIST:
      return "int[]";
    case LLMSYS_TYPE_FLOAT_LIST:
      return "float[]";
    default:
      return absl::StrCat("?(", type, ")");
  }
}

bool IsParamName(std::string_view name) {
  if (name.empty() || name[0] < 'a' || name[0] > 'z') return false;
  for (char c : name) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
      return false;
  }
  return true;
}

absl::Status CheckParamSchemaEntry(const ParamSchemaEntry& e) {
  if (!IsParamName(e.name)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "parameter name '", e.name, "' is not of the form [a-z][a-z0-9_]*"));
  }
  const std::string where = absl::StrCat("parameter '", e.name, "': ");
  if (e.type < LLMSYS_TYPE_BOOL || e.type > LLMSYS_TYPE_FLOAT_LIST)
    return absl::InvalidArgumentError(
        absl::StrCat(where, "unknown type ", e.type));
  if (e.doc.empty())
    return absl::InvalidArgumentError(absl::StrCat(where, "has no doc string"));
  if (e.required == e.default_value.has_value()) {
    return absl::InvalidArgumentError(absl::StrCat(
        where, e.required ? "is required but has a default"
                          : "has neither a default nor the REQUIRED flag"));
  }
  const bool numeric =
      e.type == LLMSYS_TYPE_INT || e.type == LLMSYS_TYPE_FLOAT ||
      e.type == LLMSYS_TYPE_INT_LIST || e.type == LLMSYS_TYPE_FLOAT_LIST;
  if ((e.min_value || e.max_value) && !numeric) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, "a range is given for a ", TypeName(e.type)));
  }
  if ((e.min_value && std::isnan(*e.min_value)) ||
      (e.max_value && std::isnan(*e.max_value))) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, "range bound is NaN"));
  }
  if (e.min_value && e.max_value && *e.min_value > *e.max_value) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, "min ", FormatDouble(*e.min_value), " > max ",
                     FormatDouble(*e.max_value)));
  }
  if (!e.choices.empty() && e.type != LLMSYS_TYPE_STRING) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, "choices are given for a ", TypeName(e.type)));
  }
  for (const std::string& c : e.choices) {
    if (c.empty())
      return absl::InvalidArgumentError(absl::StrCat(where, "an empty choice"));
  }
  if (e.default_value) {
    for (double d : Numbers(*e.default_value)) {
      if ((e.min_value && d < *e.min_value) ||
          (e.max_value && d > *e.max_value)) {
        return absl::InvalidArgumentError(
            absl::StrCat(where, "default ", FormatParamValue(*e.default_value),
                         " is outside its range (", FormatConstraint(e), ")"));
      }
    }
    if (!e.choices.empty()) {
      const std::string& s = std::get<std::string>(*e.default_value);
      bool found = false;
      for (const std::string& c : e.choices) found = found || c == s;
      if (!found) {
        return absl::InvalidArgumentError(
            absl::StrCat(where, "default \"", s, "\" is not among its choices ",
                         absl::StrJoin(e.choices, "|")));
      }
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<ParamSchema> ReadParamSchema(
    const llmsys_param_spec_t* const* specs, uint32_t count) {
  ParamSchema schema;
  if (count > 0 && specs == nullptr)
    return absl::InvalidArgumentError("num_params > 0 but params is NULL");
  for (uint32_t i = 0; i < count; ++i) {
    const llmsys_param_spec_t* s = specs[i];
    const std::string where = absl::StrCat("parameter #", i, ": ");
    if (s == nullptr)
      return absl::InvalidArgumentError(absl::StrCat(where, "NULL"));
    if (s->struct_size < sizeof(llmsys_param_spec_t)) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, "struct_size ", s->struct_size,
                       " is smaller than ", sizeof(llmsys_param_spec_t)));
    }
    if (s->name == nullptr)
      return absl::InvalidArgumentError(absl::StrCat(where, "name is NULL"));
    ParamSchemaEntry e;
    e.name = s->name;
    e.type = s->type;
    e.required = (s->flags & LLMSYS_PARAM_REQUIRED) != 0;
    e.doc = s->doc != nullptr ? s->doc : "";
    if (s->flags & LLMSYS_PARAM_HAS_MIN) e.min_value = s->min_value;
    if (s->flags & LLMSYS_PARAM_HAS_MAX) e.max_value = s->max_value;
    if (s->choices != nullptr) {
      e.choices = absl::StrSplit(absl::string_view(s->choices), '|');
    }
    if (!e.required) {
      absl::StatusOr<ParamValue> v = ReadValue(s->default_value, s->type);
      if (!v.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat("parameter '", e.name, "': ", v.status().message()));
      }
      e.default_value = *std::move(v);
    }
    LLMSYS_RETURN_IF_ERROR(CheckParamSchemaEntry(e));
    for (const ParamSchemaEntry& other : schema) {
      if (other.name == e.name) {
        return absl::InvalidArgumentError(
            absl::StrCat("parameter '", e.name, "' is declared twice"));
      }
    }
    schema.push_back(std::move(e));
  }
  return schema;
}

std::string FormatParamValue(const ParamValue& value) {
  struct Visitor {
    std::string operator()(bool b) const { return b ? "true" : "false"; }
    std::string operator()(int64_t i) const { return absl::StrCat(i); }
    std::string operator()(double d) const { return FormatDouble(d); }
    std::string operator()(const std::string& s) const {
      return absl::StrCat("\"", s, "\"");
    }
    std::string operator()(const std::vector<int64_t>& l) const {
      return absl::StrCat("[", absl::StrJoin(l, ", "), "]");
    }
    std::string operator()(const std::vector<double>& l) const {
      std::vector<std::string> parts;
      for (double d : l) parts.push_back(FormatDouble(d));
      return absl::StrCat("[", absl::StrJoin(parts, ", "), "]");
    }
  };
  return std::visit(Visitor{}, value);
}

std::string FormatConstraint(const ParamSchemaEntry& e) {
  if (!e.choices.empty())
    return absl::StrCat("one of ", absl::StrJoin(e.choices, "|"));
  auto bound = [&](double d) {
    return e.type == LLMSYS_TYPE_INT || e.type == LLMSYS_TYPE_INT_LIST
               ? absl::StrCat(static_cast<int64_t>(d))
               : FormatDouble(d);
  };
  if (e.min_value && e.max_value)
    return absl::StrCat("in [", bound(*e.min_value), ", ", bound(*e.max_value),
                        "]");
  if (e.min_value) return absl::StrCat(">= ", bound(*e.min_value));
  if (e.max_value) return absl::StrCat("<= ", bound(*e.max_value));
  return "";
}

absl::StatusOr<ParamValue> ParamValueFromC(const llmsys_typed_value_t& v) {
  return ReadValue(v, v.type);
}

absl::StatusOr<ParamValue> CheckParamValue(const ParamSchemaEntry& e,
                                           const ParamValue& value) {
  ParamValue v = value;
  if (e.type == LLMSYS_TYPE_FLOAT) {
    if (const auto* i = std::get_if<int64_t>(&value))
      v = static_cast<double>(*i);
  } else if (e.type == LLMSYS_TYPE_FLOAT_LIST) {
    if (const auto* l = std::get_if<std::vector<int64_t>>(&value))
      v = std::vector<double>(l->begin(), l->end());
  } else if (e.type == LLMSYS_TYPE_INT_LIST) {
    // An empty list reads as either list type.
    if (const auto* l = std::get_if<std::vector<double>>(&value);
        l != nullptr && l->empty())
      v = std::vector<int64_t>{};
  }
  const llmsys_type_t types[] = {LLMSYS_TYPE_BOOL,     LLMSYS_TYPE_INT,
                                 LLMSYS_TYPE_FLOAT,    LLMSYS_TYPE_STRING,
                                 LLMSYS_TYPE_INT_LIST, LLMSYS_TYPE_FLOAT_LIST};
  const llmsys_type_t given = types[v.index()];
  if (given != e.type) {
    return absl::InvalidArgumentError(absl::StrCat(
        "'", e.name, "' expects ", TypeName(e.type), ", got ",
        TypeName(types[value.index()]), " ", FormatParamValue(value)));
  }
  for (double d : Numbers(v)) {
    if ((e.min_value && d < *e.min_value) ||
        (e.max_value && d > *e.max_value) || std::isnan(d)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "'", e.name, "' = ", FormatParamValue(value),
          " is out of range (expected ", FormatConstraint(e), ")"));
    }
  }
  if (!e.choices.empty()) {
    const std::string& s = std::get<std::string>(v);
    bool found = false;
    for (const std::string& c : e.choices) found = found || c == s;
    if (!found) {
      return absl::InvalidArgumentError(
          absl::StrCat("'", e.name, "' = \"", s, "\" is not one of ",
                       absl::StrJoin(e.choices, "|")));
    }
  }
  return v;
}

namespace {

template <class T>
bool ParseNumber(std::string_view text, T* out) {
  if (text.empty()) return false;
  const absl::string_view t(text.data(), text.size());
  if constexpr (std::is_same_v<T, double>) {
    return absl::SimpleAtod(t, out);
  } else {
    return absl::SimpleAtoi(t, out);
  }
}

template <class T>
bool ParseNumberList(std::string_view text, std::vector<T>* out) {
  for (absl::string_view item :
       absl::StrSplit(absl::string_view(text.data(), text.size()), ',',
                      absl::SkipEmpty())) {
    T v{};
    if (!ParseNumber(std::string_view(item.data(), item.size()), &v))
      return false;
    out->push_back(v);
  }
  return true;
}

}  // namespace

absl::StatusOr<std::pair<std::string, ParamValue>> ParseParamAssignment(
    const ParamSchema& schema, const std::string& assignment,
    const std::string& what) {
  const size_t eq = assignment.find('=');
  if (eq == std::string::npos || eq == 0)
    return absl::InvalidArgumentError(absl::StrCat(
        "'", assignment, "': expected name=value (e.g. tokenize=intl)"));
  const std::string name = assignment.substr(0, eq);
  const std::string text = assignment.substr(eq + 1);
  const ParamSchemaEntry* entry = nullptr;
  std::vector<std::string> names;
  for (const ParamSchemaEntry& e : schema) {
    names.push_back(e.name);
    if (e.name == name) entry = &e;
  }
  if (entry == nullptr)
    return absl::InvalidArgumentError(
        absl::StrCat(what, " has no parameter '", name, "'",
                     core::DidYouMean(name, names), "; its parameters: ",
                     names.empty() ? "(none)" : absl::StrJoin(names, ", ")));
  ParamValue value;
  bool ok = true;
  switch (entry->type) {
    case LLMSYS_TYPE_BOOL:
      if (text == "true" || text == "yes" || text == "1") {
        value = true;
      } else if (text == "false" || text == "no" || text == "0") {
        value = false;
      } else {
        ok = false;
      }
      break;
    case LLMSYS_TYPE_INT: {
      int64_t v = 0;
      ok = ParseNumber(text, &v);
      value = v;
      break;
    }
    case LLMSYS_TYPE_FLOAT: {
      double v = 0;
      ok = ParseNumber(text, &v);
      value = v;
      break;
    }
    case LLMSYS_TYPE_INT_LIST: {
      std::vector<int64_t> v;
      ok = ParseNumberList(text, &v);
      value = v;
      break;
    }
    case LLMSYS_TYPE_FLOAT_LIST: {
      std::vector<double> v;
      ok = ParseNumberList(text, &v);
      value = v;
      break;
    }
    default:
      value = text;
  }
  if (!ok)
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": '", name, "' expects ", TypeName(entry->type),
                     ", got '", text, "'"));
  absl::StatusOr<ParamValue> checked = CheckParamValue(*entry, value);
  if (!checked.ok())
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": ", checked.status().message()));
  return std::make_pair(name, *std::move(checked));
}

absl::StatusOr<ParamPack> ParamPack::Make(
    const ParamSchema& schema,
    const std::vector<std::pair<std::string, ParamValue>>& overrides) {
  ParamPack pack;
  for (const auto& [name, value] : overrides) {
    bool known = false;
    for (const ParamSchemaEntry& e : schema) known = known || e.name == name;
    if (!known)
      return absl::InvalidArgumentError(
          absl::StrCat("unknown parameter '", name, "'"));
  }
  for (const ParamSchemaEntry& e : schema) {
    std::optional<ParamValue> value = e.default_value;
    for (const auto& [name, v] : overrides) {
      if (name == e.name) {
        LLMSYS_ASSIGN_OR_RETURN(value, CheckParamValue(e, v));
      }
    }
    if (!value) {
      return absl::InvalidArgumentError(
          absl::StrCat("parameter '", e.name, "' is required (",
                       TypeName(e.type), ": ", e.doc, ")"));
    }
    pack.values_.emplace_back(e.name, *std::move(value));
  }
  pack.Rebuild();
  return pack;
}

ParamPack::ParamPack(ParamPack&& other) noexcept
    : values_(std::move(other.values_)) {
  Rebuild();
}

ParamPack& ParamPack::operator=(ParamPack&& other) noexcept {
  values_ = std::move(other.values_);
  Rebuild();
  return *this;
}

void ParamPack::Rebuild() {
  items_.clear();
  for (const auto& [name, value] : values_) {
    llmsys_param_t p{};
    p.name = name.c_str();
    if (const auto* b = std::get_if<bool>(&value)) {
      p.value.type = LLMSYS_TYPE_BOOL;
      p.value.as.i = *b ? 1 : 0;
    } else if (const auto* i = std::get_if<int64_t>(&value)) {
      p.value.type = LLMSYS_TYPE_INT;
      p.value.as.i = *i;
    } else if (const auto* f = std::get_if<double>(&value)) {
      p.value.type = LLMSYS_TYPE_FLOAT;
      p.value.as.f = *f;
    } else if (const auto* s = std::get_if<std::string>(&value)) {
      p.value.type = LLMSYS_TYPE_STRING;
      p.value.as.s = s->c_str();
    } else if (const auto* il = std::get_if<std::vector<int64_t>>(&value)) {
      p.value.type = LLMSYS_TYPE_INT_LIST;
      p.value.count = static_cast<uint32_t>(il->size());
      p.value.as.ints = il->data();
    } else if (const auto* fl = std::get_if<std::vector<double>>(&value)) {
      p.value.type = LLMSYS_TYPE_FLOAT_LIST;
      p.value.count = static_cast<uint32_t>(fl->size());
      p.value.as.floats = fl->data();
    }
    items_.push_back(p);
  }
  c_params_.items = items_.data();
  c_params_.count = static_cast<uint32_t>(items_.size());
}

}  // namespace llmsys::runtime
