// framework/report/html.h — report.html: a comparison as one self-contained
// page (inline CSS and SVG; no script, nothing fetched): the table with the
// differences coloured, the warnings, the training loss of every run on one
// plot, a bar chart per final metric, and bars for tokens/s, peak memory
// and wall time.
//
//   std::string page = RenderHtml(comparison);
//
// Thread-safety: pure functions.
#ifndef LLMSYS_FRAMEWORK_REPORT_HTML_H_
#define LLMSYS_FRAMEWORK_REPORT_HTML_H_

#include <string>
#include <string_view>
#include <vector>

#include "framework/report/comparison.h"

namespace llmsys::report {

std::string RenderHtml(const Comparison& c);

// `text` safe inside HTML or SVG text and attribute values: & < > " '
// escaped, control characters other than tab and newline dropped.
std::string EscapeHtml(std::string_view text);

// About `count` round values from `lo` to `hi` that cover them (1, 2, 5
// times a power of ten apart): the ticks of an axis.
std::vector<double> NiceTicks(double lo, double hi, int count = 5);

}  // namespace llmsys::report

#endif  // LLMSYS_FRAMEWORK_REPORT_HTML_H_
