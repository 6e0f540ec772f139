#include "framework/report/html.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "framework/core/version.h"

namespace llmsys::report {
namespace {

// Distinct colours (d3's category10 and two more); past 12 runs they repeat
// with dotted lines.
constexpr const char* kColors[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728",
                                   "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
                                   "#bcbd22", "#17becf", "#393b79", "#e7ba52"};
constexpr size_t kNumColors = sizeof(kColors) / sizeof(kColors[0]);

std::string Color(size_t i) { return kColors[i % kNumColors]; }
std::string LineStyle(size_t i) {
  return i < kNumColors ? "" : " stroke-dasharray=\"2 3\"";
}

// A coordinate.
std::string F(double v) { return absl::StrFormat("%.1f", v); }

std::string Clip(const std::string& s, size_t n) {
  return s.size() <= n ? s : s.substr(0, n - 1) + "~";
}

std::string TickLabel(double v, double step) {
  if (std::fabs(v) < step * 1e-9) v = 0;
  if (std::fabs(v) >= 1e6 || (v != 0 && std::fabs(v) < 1e-4))
    return absl::StrFormat("%.3g", v);
  const int decimals =
      step >= 1 ? 0 : static_cast<int>(std::ceil(-std::log10(step) - 1e-9));
  return absl::StrFormat("%.*f", decimals, v);
}

struct Axis {
  double lo = 0, hi = 1;
  std::vector<double> ticks;
  double step() const { return ticks.size() > 1 ? ticks[1] - ticks[0] : 1; }
};

Axis MakeAxis(double lo, double hi) {
  if (!(hi - lo > 1e-9 * std::max(std::fabs(lo), std::fabs(hi)))) {
    const double pad = lo == 0 ? 1 : std::fabs(lo) * 0.1;
    lo -= pad;
    hi += pad;
  }
  Axis a;
  a.ticks = NiceTicks(lo, hi);
  a.lo = std::min(lo, a.ticks.front());
  a.hi = std::max(hi, a.ticks.back());
  return a;
}

// An SVG path through the finite points; a NaN lifts the pen.
template <class X, class Y>
std::string PathData(const std::vector<Point>& points, X x, Y y,
                     size_t* drawn) {
  std::string d;
  bool pen_down = false;
  *drawn = 0;
  for (const Point& p : points) {
    if (!std::isfinite(p.value)) {
      pen_down = false;
      continue;
    }
    absl::StrAppend(&d, d.empty() ? "" : " ", pen_down ? "L" : "M",
                    F(x(static_cast<double>(p.step))), " ", F(y(p.value)));
    pen_down = true;
    ++*drawn;
  }
  return d;
}

std::string LossChart(const Comparison& c) {
  constexpr double kWidth = 780, kHeight = 380;
  constexpr double kLeft = 70, kRight = 560, kTop = 20, kBottom = 320;
  double xmin = std::numeric_limits<double>::infinity(), xmax = -xmin;
  double ymin = xmin, ymax = -xmin;
  for (const ComparedRun& r : c.runs)
    for (const auto* series : {&r.data.train_loss, &r.data.val_loss})
      for (const Point& p : *series) {
        if (!std::isfinite(p.value)) continue;
        xmin = std::min(xmin, static_cast<double>(p.step));
        xmax = std::max(xmax, static_cast<double>(p.step));
        ymin = std::min(ymin, p.value);
        ymax = std::max(ymax, p.value);
      }
  std::string svg = absl::StrCat(
      "<svg class=\"chart loss-chart\" xmlns=\"http://www.w3.org/2000/svg\" "
      "viewBox=\"0 0 ",
      kWidth, " ", kHeight, "\" width=\"", kWidth, "\" height=\"", kHeight,
      "\" role=\"img\"><title>Training loss of every run (solid) and "
      "validation loss (dashed, circles) against the step</title>\n");
  if (!std::isfinite(xmin)) {
    absl::StrAppend(&svg, "<text x=\"", F(kWidth / 2), "\" y=\"",
                    F(kHeight / 2),
                    "\" text-anchor=\"middle\" class=\"empty\">no losses "
                    "logged (metrics.jsonl is missing or empty)</text></svg>");
    return svg;
  }
  if (xmax == xmin) {  // one logged step
    xmin = std::max(0.0, xmin - 1);
    xmax += 1;
  }
  const Axis ax = MakeAxis(xmin, xmax);
  const Axis ay = MakeAxis(ymin, ymax);
  auto x = [&](double s) {
    return kLeft + (s - ax.lo) / (ax.hi - ax.lo) * (kRight - kLeft);
  };
  auto y = [&](double v) {
    return kBottom - (v - ay.lo) / (ay.hi - ay.lo) * (kBottom - kTop);
  };
  for (double t : ay.ticks)
    absl::StrAppend(&svg, "<line class=\"grid\" x1=\"", F(kLeft), "\" x2=\"",
                    F(kRight), "\" y1=\"", F(y(t)), "\" y2=\"", F(y(t)),
                    "\"/><text class=\"tick\" x=\"", F(kLeft - 6), "\" y=\"",
                    F(y(t) + 4), "\" text-anchor=\"end\">",
                    TickLabel(t, ay.step()), "</text>\n");
  for (double t : ax.ticks)
    absl::StrAppend(&svg, "<line class=\"grid\" x1=\"", F(x(t)), "\" x2=\"",
                    F(x(t)), "\" y1=\"", F(kTop), "\" y2=\"", F(kBottom),
                    "\"/><text class=\"tick\" x=\"", F(x(t)), "\" y=\"",
                    F(kBottom + 16), "\" text-anchor=\"middle\">",
                    TickLabel(t, ax.step()), "</text>\n");
  absl::StrAppend(
      &svg, "<path class=\"axis\" d=\"M", F(kLeft), " ", F(kTop), " L",
      F(kLeft), " ", F(kBottom), " L", F(kRight), " ", F(kBottom),
      "\"/>\n<text class=\"axis-label\" x=\"", F((kLeft + kRight) / 2),
      "\" y=\"", F(kBottom + 40),
      "\" text-anchor=\"middle\">step</text>\n<text class=\"axis-label\" "
      "text-anchor=\"middle\" transform=\"translate(18 ",
      F((kTop + kBottom) / 2), ") rotate(-90)\">loss</text>\n");
  for (size_t i = 0; i < c.runs.size(); ++i) {
    const ComparedRun& r = c.runs[i];
    const std::string name = EscapeHtml(r.name);
    size_t drawn = 0;
    const std::string train = PathData(r.data.train_loss, x, y, &drawn);
    if (!train.empty())
      absl::StrAppend(&svg, "<path class=\"train-loss\" data-variant=\"", name,
                      "\" d=\"", train, "\" stroke=\"", Color(i), "\"",
                      LineStyle(i), "><title>", name,
                      ": training loss</title></path>\n");
    if (drawn == 1)  // one point: a line would not show
      for (const Point& p : r.data.train_loss)
        if (std::isfinite(p.value))
          absl::StrAppend(&svg, "<circle class=\"train-point\" cx=\"",
                          F(x(static_cast<double>(p.step))), "\" cy=\"",
                          F(y(p.value)), "\" r=\"3.5\" fill=\"", Color(i),
                          "\"><title>", name, ": training loss ",
                          absl::StrFormat("%.5g", p.value), " at step ", p.step,
                          "</title></circle>\n");
    const std::string val = PathData(r.data.val_loss, x, y, &drawn);
    if (!val.empty())
      absl::StrAppend(&svg, "<path class=\"val-loss\" data-variant=\"", name,
                      "\" d=\"", val, "\" stroke=\"", Color(i),
                      "\" stroke-dasharray=\"6 4\"><title>", name,
                      ": validation loss</title></path>\n");
    for (const Point& p : r.data.val_loss)
      if (std::isfinite(p.value))
        absl::StrAppend(&svg, "<circle class=\"val-point\" cx=\"",
                        F(x(static_cast<double>(p.step))), "\" cy=\"",
                        F(y(p.value)), "\" r=\"3\" stroke=\"", Color(i),
                        "\"><title>", name, ": validation loss ",
                        absl::StrFormat("%.5g", p.value), " at step ", p.step,
                        "</title></circle>\n");
  }
  // The legend: one entry per run, then the two line styles.
  double ly = kTop + 6;
  for (size_t i = 0; i < c.runs.size(); ++i, ly += 20) {
    const ComparedRun& r = c.runs[i];
    const bool empty = r.data.train_loss.empty() && r.data.val_loss.empty();
    absl::StrAppend(&svg, "<g class=\"legend-entry\"><line x1=\"",
                    F(kRight + 20), "\" x2=\"", F(kRight + 44), "\" y1=\"",
                    F(ly), "\" y2=\"", F(ly), "\" stroke=\"", Color(i),
                    "\" stroke-width=\"3\"", LineStyle(i), "/><text x=\"",
                    F(kRight + 50), "\" y=\"", F(ly + 4), "\">",
                    EscapeHtml(Clip(r.name, 22)), empty ? " (no data)" : "",
                    "</text><title>", EscapeHtml(r.name), "</title></g>\n");
  }
  ly += 10;
  absl::StrAppend(
      &svg, "<line x1=\"", F(kRight + 20), "\" x2=\"", F(kRight + 44),
      "\" y1=\"", F(ly), "\" y2=\"", F(ly), "\" class=\"key\"/><text x=\"",
      F(kRight + 50), "\" y=\"", F(ly + 4), "\">training</text>\n<line x1=\"",
      F(kRight + 20), "\" x2=\"", F(kRight + 44), "\" y1=\"", F(ly + 20),
      "\" y2=\"", F(ly + 20),
      "\" class=\"key\" stroke-dasharray=\"6 4\"/><text x=\"", F(kRight + 50),
      "\" y=\"", F(ly + 24), "\">validation</text>\n</svg>");
  return svg;
}

// One horizontal bar per run.
std::string BarChart(const Comparison& c, size_t q) {
  const Quantity& quantity = c.quantities[q];
  constexpr double kWidth = 440, kRow = 22, kTop = 6;
  constexpr double kBarLeft = 130, kBarRight = 300;
  const double height = kTop * 2 + kRow * static_cast<double>(c.runs.size());
  double lo = 0, hi = 0;
  for (size_t i = 0; i < c.runs.size(); ++i)
    if (std::isfinite(c.values[i][q])) {
      lo = std::min(lo, c.values[i][q]);
      hi = std::max(hi, c.values[i][q]);
    }
  if (hi == lo) hi = lo + 1;
  auto x = [&](double v) {
    return kBarLeft + (v - lo) / (hi - lo) * (kBarRight - kBarLeft);
  };
  const char* hint = quantity.better == Better::kLower    ? "lower is better"
                     : quantity.better == Better::kHigher ? "higher is better"
                                                          : "";
  std::string out = absl::StrCat(
      "<figure class=\"bar-chart\" data-quantity=\"", EscapeHtml(quantity.key),
      "\"><figcaption>", EscapeHtml(quantity.label),
      *hint ? absl::StrCat(" <span class=\"hint\">", hint, "</span>") : "",
      "</figcaption>\n<svg class=\"chart\" "
      "xmlns=\"http://www.w3.org/2000/svg\" "
      "viewBox=\"0 0 ",
      kWidth, " ", F(height), "\" width=\"", kWidth, "\" height=\"", F(height),
      "\" role=\"img\"><title>", EscapeHtml(quantity.label),
      " of each run</title>\n");
  for (size_t i = 0; i < c.runs.size(); ++i) {
    const double top = kTop + kRow * static_cast<double>(i);
    const std::string name = EscapeHtml(c.runs[i].name);
    absl::StrAppend(&out, "<text class=\"bar-label\" x=\"", F(kBarLeft - 6),
                    "\" y=\"", F(top + 15), "\" text-anchor=\"end\">",
                    EscapeHtml(Clip(c.runs[i].name, 18)), "<title>", name,
                    "</title></text>");
    const double v = c.values[i][q];
    if (!std::isfinite(v)) {
      absl::StrAppend(&out, "<text class=\"na\" x=\"", F(kBarLeft + 4),
                      "\" y=\"", F(top + 15), "\">",
                      c.runs[i].error.empty() ? "n/a" : "failed", "</text>\n");
      continue;
    }
    const double x0 = std::min(x(0), x(v)), x1 = std::max(x(0), x(v));
    std::string text = FormatValue(v, quantity);
    if (const double pct = i > 0 ? c.DeltaPercent(i, q) : NAN;
        std::isfinite(pct))
      absl::StrAppend(&text, absl::StrFormat(" (%+.1f%%)", pct));
    absl::StrAppend(&out, "<rect x=\"", F(x0), "\" y=\"", F(top + 2),
                    "\" width=\"", F(std::max(x1 - x0, 1.0)),
                    "\" height=\"16\" fill=\"", Color(i), "\"><title>", name,
                    ": ", EscapeHtml(text), "</title></rect><text x=\"",
                    F(std::max(x(0), x(v)) + 4), "\" y=\"", F(top + 15), "\">",
                    EscapeHtml(text), "</text>\n");
  }
  if (lo < 0)
    absl::StrAppend(&out, "<line class=\"zero\" x1=\"", F(x(0)), "\" x2=\"",
                    F(x(0)), "\" y1=\"", F(kTop), "\" y2=\"", F(height - kTop),
                    "\"/>");
  absl::StrAppend(&out, "</svg></figure>\n");
  return out;
}

// "better", "worse", "same" or "neutral": how `run` compares in `q`.
const char* DeltaClass(const Comparison& c, size_t run, size_t q) {
  const double d = c.Delta(run, q);
  if (d == 0) return "same";
  const Better b = c.quantities[q].better;
  if (b == Better::kNeither) return "neutral";
  return (d < 0) == (b == Better::kLower) ? "better" : "worse";
}

std::string Table(const Comparison& c) {
  std::string out =
      "<table class=\"comparison\" id=\"comparison\">\n<thead><tr><th></th>";
  for (size_t i = 0; i < c.runs.size(); ++i)
    absl::StrAppend(&out,
                    "<th scope=\"col\"><span class=\"swatch\" "
                    "style=\"background:",
                    Color(i), "\"></span>", EscapeHtml(c.runs[i].name),
                    i == 0 ? " <span class=\"tag\">baseline</span>" : "",
                    "</th>");
  absl::StrAppend(&out, "</tr></thead>\n<tbody>\n");
  if (std::any_of(c.runs.begin(), c.runs.end(),
                  [](const ComparedRun& r) { return !r.error.empty(); })) {
    absl::StrAppend(&out, "<tr class=\"status\"><th scope=\"row\">status</th>");
    for (const ComparedRun& r : c.runs)
      absl::StrAppend(
          &out, r.error.empty()
                    ? "<td>ok</td>"
                    : absl::StrCat("<td class=\"failed\" title=\"",
                                   EscapeHtml(r.error), "\">failed</td>"));
    absl::StrAppend(&out, "</tr>\n");
  }
  for (const std::string& key : c.varied_keys) {
    absl::StrAppend(&out, "<tr class=\"varied\"><th scope=\"row\">",
                    EscapeHtml(key), "</th>");
    for (const ComparedRun& r : c.runs)
      absl::StrAppend(&out, "<td>", EscapeHtml(VariedValue(r, key)), "</td>");
    absl::StrAppend(&out, "</tr>\n");
  }
  for (size_t q = 0; q < c.quantities.size(); ++q) {
    const Quantity& quantity = c.quantities[q];
    absl::StrAppend(&out, "<tr data-quantity=\"", EscapeHtml(quantity.key),
                    "\"><th scope=\"row\">", EscapeHtml(quantity.label),
                    "</th>");
    for (size_t i = 0; i < c.runs.size(); ++i) {
      absl::StrAppend(&out, "<td>",
                      EscapeHtml(FormatValue(c.values[i][q], quantity)));
      const double d = i > 0 ? c.Delta(i, q) : NAN;
      if (std::isfinite(d)) {
        const double pct = c.DeltaPercent(i, q);
        std::string delta = quantity.decimals >= 0
                                ? absl::StrFormat("%+.*f", quantity.decimals, d)
                                : absl::StrFormat("%+.5g", d);
        if (std::isfinite(pct))
          absl::StrAppend(&delta, absl::StrFormat(", %+.1f%%", pct));
        absl::StrAppend(&out, " <span class=\"delta ", DeltaClass(c, i, q),
                        "\">(", EscapeHtml(delta), ")</span>");
      }
      absl::StrAppend(&out, "</td>");
    }
    absl::StrAppend(&out, "</tr>\n");
  }
  absl::StrAppend(&out, "</tbody></table>\n");
  return out;
}

constexpr char kStyle[] = R"css(
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif;
       margin: 2em auto; max-width: 1200px; padding: 0 1em; color: #1f2328; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; }
h2 { font-size: 1.2em; margin-top: 2em; border-bottom: 1px solid #d0d7de; }
.meta { color: #59636e; margin: 0.2em 0; }
code { background: #f6f8fa; padding: 0 0.3em; border-radius: 4px; }
table { border-collapse: collapse; margin: 0.5em 0; }
th, td { border: 1px solid #d0d7de; padding: 4px 10px; text-align: right;
         font-variant-numeric: tabular-nums; vertical-align: top; }
th[scope=row], table.runs th, table.runs td { text-align: left; }
thead th { background: #f6f8fa; }
tr.varied td { color: #0550ae; }
.tag { font-size: 0.75em; background: #ddf4ff; color: #0550ae;
       border-radius: 8px; padding: 0 6px; }
.swatch { display: inline-block; width: 10px; height: 10px;
          border-radius: 2px; margin-right: 5px; }
.delta { font-size: 0.9em; }
.delta.better { color: #1a7f37; }
.delta.worse { color: #cf222e; }
.delta.same, .delta.neutral { color: #59636e; }
td.failed, .failed { color: #cf222e; font-weight: 600; }
.warnings li { background: #fff8c5; border: 1px solid #d4a72c55;
               margin: 4px 0; padding: 4px 8px; list-style: none; }
.warnings ul { padding: 0; }
.ok { color: #1a7f37; }
.charts { display: flex; flex-wrap: wrap; gap: 12px 28px; }
figure { margin: 0.5em 0; }
figcaption { font-weight: 600; margin-bottom: 4px; }
.hint { font-weight: normal; color: #59636e; font-size: 0.85em; }
svg text { font: 12px system-ui, sans-serif; fill: #1f2328; }
svg .tick { fill: #59636e; font-size: 11px; }
svg .axis-label { font-size: 13px; }
svg .grid { stroke: #eaeef2; }
svg .axis { stroke: #57606a; fill: none; }
svg .zero { stroke: #57606a; }
svg path.train-loss, svg path.val-loss { fill: none; stroke-width: 1.8; }
svg circle.val-point { fill: #ffffff; stroke-width: 1.5; }
svg line.key { stroke: #57606a; stroke-width: 2; }
svg .na, svg .empty { fill: #59636e; font-style: italic; }
)css";

}  // namespace

std::string EscapeHtml(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (const char ch : text) {
    const unsigned char c = static_cast<unsigned char>(ch);
    switch (ch) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        if (c >= 0x20 || ch == '\n' || ch == '\t') out += ch;
    }
  }
  return out;
}

std::vector<double> NiceTicks(double lo, double hi, int count) {
  if (!std::isfinite(lo) || !std::isfinite(hi) || !(hi > lo) || count < 1)
    return {lo};
  const double raw = (hi - lo) / count;
  // A range too wide for a double, or too narrow to count steps across.
  if (!std::isfinite(raw) ||
      raw < 1e-12 * std::max(std::fabs(lo), std::fabs(hi)))
    return {lo, hi};
  const int exponent = static_cast<int>(std::floor(std::log10(raw)));
  const double magnitude = std::pow(10.0, exponent);
  const double r = raw / magnitude;
  const double mantissa = r < 1.5 ? 1.0 : r < 3.0 ? 2.0 : r < 7.0 ? 5.0 : 10.0;
  const double step = mantissa * magnitude;
  // k * mantissa / 10^-exponent: one rounding, so 3 * 0.2 is 0.6.
  auto tick = [&](double k) {
    return exponent < 0 ? k * mantissa / std::pow(10.0, -exponent)
                        : k * mantissa * magnitude;
  };
  std::vector<double> ticks;
  const double first = std::floor(lo / step + 1e-9);
  const double last = std::ceil(hi / step - 1e-9);
  for (double k = first; k <= last; k += 1)
    ticks.push_back(k == 0 ? 0.0 : tick(k));
  return ticks;
}

std::string RenderHtml(const Comparison& c) {
  std::string out = absl::StrCat(
      "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
      "<meta name=\"viewport\" content=\"width=device-width, "
      "initial-scale=1\">\n"
      // Nothing but this page: no script, no request.
      "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src "
      "'none'; style-src 'unsafe-inline'\">\n<title>",
      EscapeHtml(c.title), " - llmsys comparison</title>\n<style>", kStyle,
      "</style>\n</head>\n<body>\n<h1>", EscapeHtml(c.title), "</h1>\n");
  if (!c.experiment.empty())
    absl::StrAppend(&out, "<p class=\"meta\">experiment <code>",
                    EscapeHtml(c.experiment), "</code></p>\n");
  absl::StrAppend(
      &out, "<p class=\"meta\">", c.runs.size(),
      c.runs.size() == 1 ? " run" : " runs", "; baseline <b>",
      EscapeHtml(c.runs.at(0).name), "</b>; differences are to the baseline",
      c.varied_keys.empty()
          ? std::string()
          : absl::StrCat("; varied: <code>",
                         EscapeHtml(absl::StrJoin(c.varied_keys, ", ")),
                         "</code>"),
      "</p>\n<p class=\"meta\">made by llmsys ", kHostVersion, "</p>\n");

  absl::StrAppend(&out, "<section id=\"warnings\" class=\"warnings\">\n");
  if (c.warnings.empty()) {
    absl::StrAppend(&out,
                    "<p class=\"ok\">No differences between the runs besides "
                    "what was varied.</p>\n");
  } else {
    absl::StrAppend(&out, "<h2>Warnings</h2>\n<ul>\n");
    for (const std::string& w : c.warnings)
      absl::StrAppend(&out, "<li>", EscapeHtml(w), "</li>\n");
    absl::StrAppend(&out, "</ul>\n");
  }
  absl::StrAppend(&out, "</section>\n");

  absl::StrAppend(&out, "<h2>Results</h2>\n", Table(c));

  absl::StrAppend(&out, "<h2>Training loss</h2>\n<figure id=\"loss\">",
                  LossChart(c),
                  "</figure>\n<h2>Final metrics</h2>\n<div class=\"charts\" "
                  "id=\"metrics\">\n");
  const std::vector<std::string> speed = {"tokens_per_second",
                                          "peak_memory_mib", "wall_seconds"};
  for (size_t q = 0; q < c.quantities.size(); ++q)
    if (c.quantities[q].chart && std::find(speed.begin(), speed.end(),
                                           c.quantities[q].key) == speed.end())
      absl::StrAppend(&out, BarChart(c, q));
  absl::StrAppend(&out,
                  "</div>\n<h2>Speed and memory</h2>\n<div class=\"charts\" "
                  "id=\"speed\">\n");
  for (size_t q = 0; q < c.quantities.size(); ++q)
    if (std::find(speed.begin(), speed.end(), c.quantities[q].key) !=
        speed.end())
      absl::StrAppend(&out, BarChart(c, q));
  absl::StrAppend(&out,
                  "</div>\n<h2>Runs</h2>\n<table class=\"runs\">\n<thead><tr>"
                  "<th>run</th><th>directory</th><th>sets</th><th>status</th>"
                  "</tr></thead>\n<tbody>\n");
  for (const ComparedRun& r : c.runs) {
    std::vector<std::string> sets;
    for (const auto& [k, v] : r.overrides)
      sets.push_back(absl::StrCat(k, " = ", v));
    absl::StrAppend(
        &out, "<tr><td>", EscapeHtml(r.name), "</td><td><code>",
        EscapeHtml(r.data.dir.string()), "</code></td><td>",
        sets.empty()
            ? std::string("-")
            : absl::StrCat("<code>", EscapeHtml(absl::StrJoin(sets, "; ")),
                           "</code>"),
        "</td>",
        r.error.empty()
            ? std::string("<td>ok</td>")
            : absl::StrCat("<td class=\"failed\">failed: ", EscapeHtml(r.error),
                           "</td>"),
        "</tr>\n");
  }
  absl::StrAppend(&out, "</tbody></table>\n</body>\n</html>\n");
  return out;
}

}  // namespace llmsys::report
