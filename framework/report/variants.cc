#include "framework/report/variants.h"

#include <toml++/toml.h>

#include <algorithm>
#include <map>
#include <string_view>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace llmsys::report {
namespace {

// Splits at commas outside brackets and quotes.
std::vector<std::string> SplitValues(std::string_view text) {
  std::vector<std::string> out;
  std::string current;
  int depth = 0;
  char quote = 0;
  for (const char c : text) {
    if (quote != 0) {
      if (c == quote) quote = 0;
    } else if (c == '"' || c == '\'') {
      quote = c;
    } else if (c == '[' || c == '{') {
      ++depth;
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    } else if (c == ',' && depth == 0) {
      out.push_back(current);
      current.clear();
      continue;
    }
    current += c;
  }
  out.push_back(current);
  return out;
}

// The string a --set value stands for, or nothing when it is TOML of
// another type.
std::optional<std::string> StringValue(const std::string& value) {
  try {
    toml::table parsed = toml::parse("v = " + value);
    if (auto s = parsed["v"].value_exact<std::string>()) return *s;
    return std::nullopt;
  } catch (const toml::parse_error&) {
    return value;  // not TOML: --set reads it as a plain string
  }
}

std::string SafeName(const std::string& text) {
  std::string out;
  for (const char c : text)
    out += absl::ascii_isalnum(static_cast<unsigned char>(c)) ||
                   std::string_view("._-+=,@").find(c) != std::string::npos
               ? c
               : '_';
  if (out.empty() || out[0] == '.' || out[0] == '-') out = "_" + out;
  return out;
}

// The part of a variant's name one axis value gives.
std::string NamePart(const std::string& key, const std::string& value) {
  if (std::optional<std::string> s = StringValue(value)) return SafeName(*s);
  return SafeName(absl::StrCat(key.substr(key.rfind('.') + 1), "=", value));
}

}  // namespace

std::vector<std::string> VariantSpec::SetArgs() const {
  std::vector<std::string> args;
  for (const VariantSet& s : sets) args.push_back(s.key + "=" + s.value);
  return args;
}

absl::StatusOr<std::vector<VaryAxis>> ParseVary(
    const std::vector<std::string>& args) {
  std::vector<VaryAxis> axes;
  for (const std::string& arg : args) {
    const std::string what = "--vary " + arg;
    const size_t eq = arg.find('=');
    const size_t dot = arg.find('.');
    if (eq == std::string::npos)
      return absl::InvalidArgumentError(
          absl::StrCat(what,
                       ": expected section.key=value1,value2,... (e.g. --vary "
                       "optimizer.use=adamw,lion)"));
    const std::string key = arg.substr(0, eq);
    if (dot == std::string::npos || dot > eq || dot == 0 || dot + 1 == eq ||
        key.find('.', dot + 1) != std::string::npos)
      return absl::InvalidArgumentError(absl::StrCat(
          what, ": '", key,
          "' is not section.key (e.g. --vary schedule.lr=1e-3,3e-3)"));
    if (key.starts_with("experiment."))
      return absl::InvalidArgumentError(absl::StrCat(
          what,
          ": [experiment] keys are not varied: every variant runs with "
          "the file's seed, and `llmsys compare` names and places the "
          "runs"));
    if (key.starts_with("plugins."))
      return absl::InvalidArgumentError(
          absl::StrCat(what,
                       ": [plugins] is not varied: pass every variant's plugin "
                       "folders with --plugin-dir (or [plugins] paths)"));
    VaryAxis axis;
    axis.key = key;
    for (const std::string& raw : SplitValues(arg.substr(eq + 1))) {
      const std::string value(absl::StripAsciiWhitespace(raw));
      if (value.empty())
        return absl::InvalidArgumentError(absl::StrCat(
            what,
            ": an empty value; list the values after '=', separated by "
            "commas (e.g. --vary ",
            key, "=a,b)"));
      if (std::find(axis.values.begin(), axis.values.end(), value) !=
          axis.values.end())
        return absl::InvalidArgumentError(
            absl::StrCat(what, ": the value '", value, "' is listed twice"));
      axis.values.push_back(value);
    }
    for (const VaryAxis& other : axes)
      if (other.key == key)
        return absl::InvalidArgumentError(absl::StrCat(
            what, ": ", key,
            " is varied twice; list all its values in one --vary"));
    axes.push_back(std::move(axis));
  }
  return axes;
}

absl::StatusOr<std::vector<VariantSpec>> CrossVariants(
    const std::vector<config::Variant>& entries,
    const std::vector<VaryAxis>& axes) {
  if (entries.empty() && axes.empty())
    return absl::InvalidArgumentError(
        "no variants: add [[variants]] entries to the experiment file, each a "
        "name and the keys it sets:\n\n  [[variants]]\n  name = \"lion\"\n  "
        "optimizer.use = \"lion\"\n\nor vary keys on the command line: --vary "
        "optimizer.use=adamw,lion (docs/compare.md)");
  for (const VaryAxis& axis : axes)
    for (const config::Variant& entry : entries)
      for (const auto& [key, value] : entry.sets)
        if (key == axis.key)
          return absl::InvalidArgumentError(absl::StrCat(
              "--vary ", axis.key, ": [[variants]] '", entry.name, "' (",
              entry.source.Describe(), ") sets it too; vary each key one way"));
  std::vector<VariantSpec> out;
  if (entries.empty()) {
    out.push_back({});
  } else {
    for (const config::Variant& entry : entries) {
      VariantSpec spec;
      spec.name = entry.name;
      for (const auto& [key, value] : entry.sets)
        spec.sets.push_back({key, value,
                             absl::StrCat(entry.source.Describe(),
                                          " [[variants]] '", entry.name, "'")});
      out.push_back(std::move(spec));
    }
  }
  for (const VaryAxis& axis : axes) {
    std::vector<VariantSpec> crossed;
    for (const VariantSpec& base : out) {
      for (const std::string& value : axis.values) {
        VariantSpec spec = base;
        const std::string part = NamePart(axis.key, value);
        spec.name = spec.name.empty() ? part : spec.name + "+" + part;
        spec.sets.push_back({axis.key, value, "--vary " + axis.key});
        crossed.push_back(std::move(spec));
      }
    }
    out = std::move(crossed);
  }
  std::map<std::string, size_t> seen;
  for (size_t i = 0; i < out.size(); ++i) {
    auto [it, fresh] = seen.emplace(out[i].name, i);
    if (!fresh)
      return absl::InvalidArgumentError(absl::StrCat(
          "variants ", it->second + 1, " and ", i + 1, " are both named '",
          out[i].name,
          "' (names keep letters, digits and . _ - + = , @ of the values); "
          "make the values differ in those"));
  }
  return out;
}

}  // namespace llmsys::report
