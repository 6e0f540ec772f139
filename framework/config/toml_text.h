// framework/config/toml_text.h — TOML values written back as TOML text, the
// one way config.toml, --set overrides and comparisons spell a value.
//
//   TomlString("a\"b\n")      -> "\"a\\\"b\\n\""
//   TomlText(node(0.0003))    -> "0.0003"   (2.0 -> "2.0", never "2")
//
// Thread-safety: pure functions.
#ifndef LLMSYS_FRAMEWORK_CONFIG_TOML_TEXT_H_
#define LLMSYS_FRAMEWORK_CONFIG_TOML_TEXT_H_

#include <toml++/toml.h>

#include <string>

namespace llmsys::config {

// A TOML basic string, every control character escaped. (toml++ writes
// text with a newline as a multi-line string, whose first newline a reader
// drops: the default prompt "\n" read back as "".)
std::string TomlString(const std::string& s);

// The shortest text that reads back as the same value: strings quoted,
// floats always with a '.' or exponent (so they stay floats), nan/inf,
// arrays and inline tables recursively, dates and times as toml++ writes
// them. The same value always gives the same text.
std::string TomlText(const toml::node& n);

}  // namespace llmsys::config

#endif  // LLMSYS_FRAMEWORK_CONFIG_TOML_TEXT_H_
