#include "tools/llmsys/eval_command.h"

#include <boost/program_options.hpp>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <memory>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "framework/core/logging.h"
#include "framework/eval/evaluator.h"
#include "framework/eval/segments.h"
#include "framework/runtime/registry.h"
#include "llmsys/evaluator.h"
#include "nlohmann/json.hpp"

namespace llmsys::cli {
namespace {

namespace po = boost::program_options;
using json = nlohmann::json;

struct Options {
  std::string metric, hyp, input;
  std::vector<std::string> refs, params, plugin_dirs;
  bool sentence = false, as_json = false, verbose = false;
};

double Metric(const eval::EvalResult& r, const std::string& name) {
  return r.Get(name).value_or(std::nan(""));
}

// sacreBLEU's name of a chrF variant: chrF2, chrF2++, chrF1+...
std::string ChrfName(
    const std::vector<std::pair<std::string, runtime::ParamValue>>& params) {
  int64_t beta = 2, word_order = 0;
  for (const auto& [k, v] : params) {
    if (k == "beta") beta = std::get<int64_t>(v);
    if (k == "word_order") word_order = std::get<int64_t>(v);
  }
  return absl::StrCat("chrF", beta,
                      std::string(static_cast<size_t>(word_order), '+'));
}

// One score as sacreBLEU's / rouge-score's text output; other evaluators as
// "name = value" lines.
std::string FormatText(const std::string& metric, const std::string& name,
                       const eval::EvalResult& r) {
  if (metric == "bleu") {
    std::string precisions;
    for (int n = 0; r.Get(absl::StrCat("precisions.", n)); ++n)
      absl::StrAppend(
          &precisions, n ? "/" : "",
          absl::StrFormat("%.1f", Metric(r, absl::StrCat("precisions.", n))));
    return absl::StrFormat(
        "BLEU|%s = %.2f %s (BP = %.3f ratio = %.3f hyp_len = %d ref_len = %d)",
        r.signature, Metric(r, "score"), precisions, Metric(r, "bp"),
        Metric(r, "ratio"), static_cast<int64_t>(Metric(r, "sys_len")),
        static_cast<int64_t>(Metric(r, "ref_len")));
  }
  if (metric == "chrf")
    return absl::StrFormat("%s|%s = %.2f", name, r.signature,
                           Metric(r, "score"));
  std::string out = absl::StartsWith(r.signature, metric + "|")
                        ? r.signature
                        : absl::StrCat(metric, "|", r.signature);
  if (metric == "rouge") {
    // scores.<type>.{precision,recall,fmeasure}, in emitted order.
    for (const auto& [k, v] : r.metrics) {
      if (!absl::EndsWith(k, ".precision")) continue;
      const std::string type = k.substr(7, k.size() - 7 - 10);
      const std::string base = "scores." + type + ".";
      absl::StrAppend(
          &out, absl::StrFormat("\n%-10s P = %.4f  R = %.4f  F = %.4f", type, v,
                                Metric(r, base + "recall"),
                                Metric(r, base + "fmeasure")));
    }
    return out;
  }
  for (const auto& [k, v] : r.metrics)
    absl::StrAppend(&out, absl::StrFormat("\n%s = %.6g", k, v));
  return out;
}

void Print(const Options& o, const std::string& name,
           const eval::EvalResult& r) {
  if (!o.as_json) {
    std::cout << FormatText(o.metric, name, r) << "\n";
    return;
  }
  json j = {{"metric", o.metric}};
  if (o.metric == "chrf") j["name"] = name;
  const json metrics = eval::MetricsJson(r);
  for (const auto& [k, v] : metrics.items()) j[k] = v;
  j["signature"] = r.signature;
  std::cout << j.dump(-1, ' ', false, json::error_handler_t::replace) << "\n";
}

int Fail(const absl::Status& s) {
  std::cerr << "llmsys eval: " << s.message() << "\n";
  return 1;
}

}  // namespace

int EvalCommand(const std::vector<std::string>& args) {
  Options o;
  bool help = false;
  po::options_description desc(
      "usage: llmsys eval --metric ID --hyp HYP.txt --ref REF.txt [--ref "
      "REF2.txt]... [--param name=value]... [--sentence] [--json]\n"
      "       llmsys eval --metric ID --input SEGMENTS.jsonl [...]\n\n"
      "Scores hypotheses against references with an evaluator plugin (bleu, "
      "chrf, rouge, exact_match, token_f1, pass_at_k, perplexity, accuracy, "
      "or any plugin's). Text files have one segment per line; a JSON Lines "
      "file has one object per segment, e.g. {\"hyp\": \"...\", \"refs\": "
      "[\"...\", null]} (see docs/evaluation.md).\n\noptions");
  desc.add_options()("help,h", po::bool_switch(&help), "show this help")(
      "metric,m", po::value(&o.metric), "the evaluator's id")(
      "hyp", po::value(&o.hyp), "hypotheses, one per line")(
      "ref,r", po::value(&o.refs)->composing(),
      "references, one per line (repeatable: one file per reference)")(
      "input,i", po::value(&o.input), "segments as JSON Lines")(
      "param,p", po::value(&o.params)->composing(),
      "an evaluator parameter, e.g. tokenize=intl (repeatable; 'llmsys "
      "plugins describe ID' lists them)")(
      "sentence", po::bool_switch(&o.sentence),
      "score every segment on its own (BLEU then uses the effective order "
      "unless use_effective_order is given)")(
      "json", po::bool_switch(&o.as_json), "print JSON objects")(
      "plugin-dir", po::value(&o.plugin_dirs)->composing(),
      "also load plugins from DIR (repeatable)")(
      "verbose,v", po::bool_switch(&o.verbose), "print debug messages");
  po::variables_map vm;
  try {
    po::store(po::command_line_parser(args).options(desc).run(), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 2;
  }
  if (help) {
    std::cout << desc << "\n";
    return 0;
  }
  if (o.metric.empty()) {
    std::cerr << "error: 'llmsys eval' needs --metric ID (e.g. --metric "
                 "bleu)\n";
    return 2;
  }
  if (o.input.empty() == o.hyp.empty()) {
    std::cerr << "error: 'llmsys eval' reads --hyp (with --ref) or --input "
                 "(one of them)\n";
    return 2;
  }
  if (!o.hyp.empty() && o.refs.empty()) {
    std::cerr << "error: --hyp needs at least one --ref (one file per "
                 "reference stream)\n";
    return 2;
  }
  if (!o.input.empty() && !o.refs.empty()) {
    std::cerr << "error: --ref goes with --hyp; an --input file carries its "
                 "references\n";
    return 2;
  }
  if (o.verbose) core::SetMinLogLevel(core::LogLevel::kDebug);

  runtime::PluginRegistry registry;
  absl::Status s = registry.AddDefaultSearchDirs();
  for (const std::string& dir : o.plugin_dirs)
    if (s.ok()) s = registry.AddSearchDir(dir, "--plugin-dir");
  if (!s.ok()) return Fail(s);
  registry.LoadAll();
  absl::StatusOr<const runtime::Component*> component =
      registry.Find(LLMSYS_KIND_EVALUATOR, o.metric);
  if (!component.ok()) return Fail(component.status());
  const runtime::Component& c = **component;

  std::vector<std::pair<std::string, runtime::ParamValue>> params;
  bool effective_order_given = false;
  for (const std::string& p : o.params) {
    auto parsed = runtime::ParseParamAssignment(
        c.params, p, absl::StrCat("evaluator ", c.id));
    if (!parsed.ok()) return Fail(parsed.status());
    effective_order_given |= parsed->first == "use_effective_order";
    params.push_back(*std::move(parsed));
  }
  if (o.sentence && !effective_order_given) {
    // sacreBLEU's sentence_bleu uses the effective order by default.
    for (const runtime::ParamSchemaEntry& e : c.params)
      if (e.name == "use_effective_order")
        params.emplace_back(e.name, runtime::ParamValue(true));
  }
  // chrF's display name reads the values actually used, defaults included.
  std::vector<std::pair<std::string, runtime::ParamValue>> resolved;
  for (const runtime::ParamSchemaEntry& e : c.params) {
    std::optional<runtime::ParamValue> v = e.default_value;
    for (const auto& [k, given] : params)
      if (k == e.name) v = given;
    if (v) resolved.emplace_back(e.name, *v);
  }
  const std::string name = o.metric == "chrf" ? ChrfName(resolved) : o.metric;

  const uint32_t inputs = c.As<llmsys_evaluator_t>()->inputs;
  if (!o.hyp.empty() && !(inputs & LLMSYS_EVAL_TEXT))
    return Fail(absl::InvalidArgumentError(absl::StrCat(
        "evaluator ", c.id,
        " does not read hypotheses and references; give its segments with "
        "--input FILE.jsonl")));
  absl::StatusOr<eval::Segments> segments =
      o.input.empty()
          ? eval::ReadTextFiles(o.hyp, {o.refs.begin(), o.refs.end()})
          : eval::ReadJsonl(o.input, inputs, c.id);
  if (!segments.ok()) return Fail(segments.status());

  const size_t n = segments->size();
  if (o.sentence) {
    for (size_t i = 0; i < n; ++i) {
      auto e = eval::Evaluator::Create(c, params);
      if (!e.ok()) return Fail(e.status());
      s = eval::AddSegments(**e, *segments, i, i + 1);
      if (!s.ok()) return Fail(s);
      absl::StatusOr<eval::EvalResult> r = (*e)->Result();
      if (!r.ok()) return Fail(r.status());
      Print(o, name, *r);
    }
    return 0;
  }
  auto e = eval::Evaluator::Create(c, params);
  if (!e.ok()) return Fail(e.status());
  s = eval::AddSegments(**e, *segments, 0, n);
  if (!s.ok()) return Fail(s);
  absl::StatusOr<eval::EvalResult> r = (*e)->Result();
  if (!r.ok()) return Fail(r.status());
  Print(o, name, *r);
  return 0;
}

}  // namespace llmsys::cli
