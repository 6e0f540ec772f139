// plugins/evaluators/text/format.h — internal: Python's f"{x:.{d}f}" for
// the metrics' text lines. Not part of the library's API.
//
// std::to_chars in fixed format with a precision behaves as printf's %.*f:
// it rounds the exact binary value to nearest, ties to even, as CPython's
// float formatting does, so the two agree digit for digit.
#ifndef LLMSYS_PLUGINS_EVALUATORS_TEXT_FORMAT_H_
#define LLMSYS_PLUGINS_EVALUATORS_TEXT_FORMAT_H_

#include <charconv>
#include <stdexcept>
#include <string>

namespace llmsys::text::internal {

inline std::string FormatFixed(double value, int decimals) {
  if (decimals < 0) {
    throw std::invalid_argument("number format: decimals must be >= 0");
  }
  // A double has at most 309 digits before the point.
  std::string out(static_cast<size_t>(decimals) + 330, '\0');
  const auto result = std::to_chars(out.data(), out.data() + out.size(), value,
                                    std::chars_format::fixed, decimals);
  if (result.ec != std::errc()) {
    throw std::runtime_error("number format: to_chars failed");
  }
  out.resize(static_cast<size_t>(result.ptr - out.data()));
  return out;
}

}  // namespace llmsys::text::internal

#endif  // LLMSYS_PLUGINS_EVALUATORS_TEXT_FORMAT_H_
