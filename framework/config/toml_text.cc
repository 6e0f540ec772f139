#include "framework/config/toml_text.h"

#include <charconv>
#include <cmath>
#include <sstream>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace llmsys::config {

std::string TomlString(const std::string& s) {
  std::string out = "\"";
  for (const char ch : s) {
    const unsigned char c = static_cast<unsigned char>(ch);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += ch;
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c < 0x20 || c == 0x7f) {
      out += absl::StrFormat("\\u%04X", c);
    } else {
      out += ch;
    }
  }
  return out + "\"";
}

std::string TomlText(const toml::node& n) {
  if (auto v = n.value_exact<std::string>()) return TomlString(*v);
  if (auto v = n.value_exact<bool>()) return *v ? "true" : "false";
  if (auto v = n.value_exact<int64_t>()) return absl::StrCat(*v);
  if (auto v = n.value_exact<double>()) {
    if (std::isnan(*v)) return "nan";
    if (std::isinf(*v)) return *v > 0 ? "inf" : "-inf";
    // As %g would write it (0.0003, not 3e-04), but exact.
    char buffer[64];
    const auto [end, ec] = std::to_chars(buffer, buffer + sizeof buffer, *v,
                                         std::chars_format::general);
    std::string text(buffer, end);
    // 2.0 is written "2", which TOML reads as an integer.
    if (text.find_first_of(".e") == std::string::npos) text += ".0";
    return text;
  }
  if (const toml::array* a = n.as_array()) {
    std::vector<std::string> items;
    for (const toml::node& item : *a) items.push_back(TomlText(item));
    return absl::StrCat("[", absl::StrJoin(items, ", "), "]");
  }
  if (const toml::table* t = n.as_table()) {
    std::vector<std::string> items;
    for (auto&& [k, v] : *t)
      items.push_back(absl::StrCat(std::string(k.str()), " = ", TomlText(v)));
    return absl::StrCat("{", absl::StrJoin(items, ", "), "}");
  }
  std::ostringstream out;  // dates and times
  n.visit([&](auto&& v) { out << v; });
  return out.str();
}

}  // namespace llmsys::config
