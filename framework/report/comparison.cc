#include "framework/report/comparison.h"

#include <toml++/toml.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <ctime>
#include <fstream>
#include <limits>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "framework/config/toml_text.h"
#include "framework/core/files.h"
#include "framework/core/status_macros.h"
#include "framework/core/version.h"
#include "framework/report/html.h"

namespace llmsys::report {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// The shortest text that reads back as `v`, as %g writes it (0.0003).
std::string Shortest(double v) {
  char buffer[64];
  const auto [end, ec] = std::to_chars(buffer, buffer + sizeof buffer, v,
                                       std::chars_format::general);
  return std::string(buffer, end);
}

void FlattenConfig(const toml::table& t, const std::string& prefix,
                   std::map<std::string, std::string>* out) {
  for (auto&& [k, v] : t) {
    const std::string key(k.str());
    const std::string path = prefix.empty() ? key : prefix + "." + key;
    if (const toml::table* sub = v.as_table()) {
      FlattenConfig(*sub, path, out);
    } else if (const toml::array* a = v.as_array();
               a != nullptr && !a->empty() && a->is_array_of_tables()) {
      for (size_t i = 0; i < a->size(); ++i)
        FlattenConfig(*a->get(i)->as_table(), absl::StrCat(path, "#", i + 1),
                      out);
    } else {
      (*out)[path] = config::TomlText(v);
    }
  }
}

double Number(const json& j) { return j.is_number() ? j.get<double>() : kNaN; }

absl::StatusOr<json> ReadJsonIfPresent(const fs::path& p) {
  if (!fs::exists(p)) return json();
  LLMSYS_ASSIGN_OR_RETURN(std::string text, core::ReadFile(p));
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object())
    return absl::InvalidArgumentError(
        absl::StrCat(p.string(), ": not a JSON object"));
  return j;
}

// Sorted by step, the last record of a step kept (a resumed run repeats
// the steps after its checkpoint).
void Tidy(std::vector<Point>* points) {
  std::stable_sort(
      points->begin(), points->end(),
      [](const Point& a, const Point& b) { return a.step < b.step; });
  std::vector<Point> out;
  for (const Point& p : *points) {
    if (!out.empty() && out.back().step == p.step) {
      out.back() = p;
    } else {
      out.push_back(p);
    }
  }
  *points = std::move(out);
}

// Is more of metric `name` (its last dotted part) better, or less?
Better DirectionOf(const std::string& name) {
  const std::string m = name.substr(name.rfind('.') + 1);
  for (const char* lower : {"loss", "perplexity", "nll", "bits_per_token",
                            "bits_per_byte", "error", "wer", "cer", "ter"})
    if (m == lower || m.ends_with(std::string("_") + lower))
      return Better::kLower;
  for (const char* higher : {"accuracy", "score", "precision", "recall",
                             "fmeasure", "f1", "exact_match", "bleu", "chrf"})
    if (m == higher || m.ends_with(std::string("_") + higher))
      return Better::kHigher;
  if (m.starts_with("pass@") || m.starts_with("rouge")) return Better::kHigher;
  return Better::kNeither;
}

// The numbers under `j` with their dotted paths (lists left out: per-order
// details such as BLEU's n-gram precisions).
void FlattenMetrics(const json& j, const std::string& prefix,
                    std::vector<std::pair<std::string, double>>* out) {
  for (const auto& [k, v] : j.items()) {
    const std::string path = prefix.empty() ? k : prefix + "." + k;
    if (v.is_object()) {
      FlattenMetrics(v, path, out);
    } else if (v.is_number() || v.is_null()) {
      out->emplace_back(path, Number(v));
    }
  }
}

// [[evaluate]] results of a summary: (quantity, value) in order, an
// evaluator used twice numbered ("bleu#2").
std::vector<std::pair<Quantity, double>> EvaluationValues(const json& summary) {
  std::vector<std::pair<Quantity, double>> out;
  if (!summary.is_object() || !summary.contains("evaluations") ||
      !summary["evaluations"].is_array())
    return out;
  std::map<std::string, int> uses;
  for (const json& record : summary["evaluations"]) {
    if (!record.is_object() || !record.contains("evaluator") ||
        !record["evaluator"].is_string() || !record.contains("metrics"))
      continue;
    const std::string evaluator = record["evaluator"].get<std::string>();
    const int n = ++uses[evaluator];
    const std::string prefix =
        n > 1 ? absl::StrCat(evaluator, "#", n) : evaluator;
    std::vector<std::pair<std::string, double>> metrics;
    FlattenMetrics(record["metrics"], "", &metrics);
    for (const auto& [path, value] : metrics) {
      Quantity q;
      q.key = prefix + "." + path;
      q.label = path == evaluator ? prefix : prefix + " " + path;
      q.better = DirectionOf(path);
      q.chart = q.better != Better::kNeither;
      out.emplace_back(std::move(q), value);
    }
  }
  return out;
}

std::string Unquote(const std::string& toml_text) {
  try {
    toml::table t = toml::parse("v = " + toml_text);
    if (auto s = t["v"].value_exact<std::string>()) return *s;
  } catch (const toml::parse_error&) {
    return toml_text;  // a plain string, as --set reads it
  }
  return toml_text;
}

std::string Clip(const std::string& s, size_t n = 60) {
  return s.size() <= n ? s : s.substr(0, n - 3) + "...";
}

// A JSON field as text for a message.
std::string FieldText(const json& j, const std::string& key) {
  if (!j.is_object() || !j.contains(key) || j[key].is_null()) return "unknown";
  if (j[key].is_string()) return j[key].get<std::string>();
  return j[key].dump();
}
json Field(const json& j, const std::string& key) {
  return j.is_object() && j.contains(key) ? j[key] : json();
}

// A plugin's key in provenance.json: its id, or its file's name.
std::string PluginKey(const json& p) {
  if (p.contains("plugin_id") && p["plugin_id"].is_string())
    return p["plugin_id"].get<std::string>();
  if (p.contains("file") && p["file"].is_string())
    return fs::path(p["file"].get<std::string>()).filename().string();
  return "";
}

bool ServesVaried(const json& plugin, const Varied& varied) {
  if (!plugin.contains("components") || !plugin["components"].is_array())
    return false;
  for (const json& c : plugin["components"]) {
    if (!c.is_string()) continue;
    const std::string text = c.get<std::string>();  // "operator matmul.cpu"
    if (varied.component_ids.contains(text.substr(text.rfind(' ') + 1)))
      return true;
  }
  return false;
}

std::string Signed(double v, const Quantity& q) {
  if (std::isnan(v)) return "n/a";
  if (q.decimals >= 0) return absl::StrFormat("%+.*f", q.decimals, v);
  return absl::StrFormat("%+.5g", v);
}

std::string NumberOrEmpty(double v) {
  return std::isfinite(v) ? Shortest(v) : std::string();
}

std::string CsvField(const std::string& s) {
  if (s.find_first_of(",\"\r\n") == std::string::npos) return s;
  std::string out = "\"";
  for (const char c : s) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

std::string NowUtc() {
  const std::time_t t =
      std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buffer[32];
  std::strftime(buffer, sizeof buffer, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buffer;
}

}  // namespace

absl::StatusOr<std::map<std::string, std::string>> ParseConfig(
    const std::string& toml_text, const std::string& name) {
  std::map<std::string, std::string> config;
  try {
    const toml::table t = toml::parse(toml_text, name);
    FlattenConfig(t, "", &config);
  } catch (const toml::parse_error& err) {
    return absl::InvalidArgumentError(
        absl::StrCat(name, ":", err.source().begin.line, ": ",
                     std::string(err.description())));
  }
  return config;
}

absl::StatusOr<RunData> LoadRun(const fs::path& dir) {
  RunData r;
  r.dir = dir;
  const fs::path config = dir / "config.toml";
  if (!fs::is_regular_file(config))
    return absl::NotFoundError(
        absl::StrCat(dir.string(),
                     ": not a run directory (no config.toml); give the "
                     "folders `llmsys run` or `llmsys compare` made"));
  LLMSYS_ASSIGN_OR_RETURN(std::string text, core::ReadFile(config));
  LLMSYS_ASSIGN_OR_RETURN(r.config, ParseConfig(text, config.string()));
  LLMSYS_ASSIGN_OR_RETURN(r.summary, ReadJsonIfPresent(dir / "summary.json"));
  LLMSYS_ASSIGN_OR_RETURN(r.provenance,
                          ReadJsonIfPresent(dir / "provenance.json"));
  if (fs::exists(dir / "metrics.jsonl")) {
    LLMSYS_ASSIGN_OR_RETURN(std::string text,
                            core::ReadFile(dir / "metrics.jsonl"));
    std::istringstream lines(text);
    std::string line;
    while (std::getline(lines, line)) {
      // A run killed while writing may leave half a line: skipped.
      const json j = json::parse(line, nullptr, /*allow_exceptions=*/false);
      if (j.is_discarded() || !j.is_object() || !j.contains("step") ||
          !j["step"].is_number_integer())
        continue;
      const int64_t step = j["step"].get<int64_t>();
      if (j.contains("loss") && !j.contains("evaluator"))
        r.train_loss.push_back({step, Number(j["loss"])});
      if (j.contains("val_loss"))
        r.val_loss.push_back({step, Number(j["val_loss"])});
    }
    Tidy(&r.train_loss);
    Tidy(&r.val_loss);
  }
  return r;
}

double Comparison::Delta(size_t run, size_t q) const {
  const double base = values.at(0).at(q), v = values.at(run).at(q);
  if (std::isnan(base) || std::isnan(v)) return kNaN;
  return v - base;
}

double Comparison::DeltaPercent(size_t run, size_t q) const {
  const double base = values.at(0).at(q);
  const double d = Delta(run, q);
  if (std::isnan(d) || base == 0) return kNaN;
  return 100.0 * d / std::fabs(base);
}

bool Varied::Covers(const std::string& key) const {
  if (keys.contains(key)) return true;
  const size_t dot = key.find('.');
  return dot != std::string::npos && keys.contains(key.substr(0, dot) + ".*");
}

Varied VariedOf(const std::vector<ComparedRun>& runs) {
  Varied v;
  for (const ComparedRun& run : runs) {
    for (const auto& [key, value] : run.overrides) {
      v.keys.insert(key);
      const size_t dot = key.find('.');
      if (dot == std::string::npos) continue;
      const std::string section = key.substr(0, dot);
      const std::string k = key.substr(dot + 1);
      const std::string id = Unquote(value);
      if (((section == "model" || section == "optimizer") && k == "use") ||
          (section == "generate" && k == "sampler")) {
        v.keys.insert(section + ".*");
        v.component_ids.insert(id);
      } else if (section == "ops") {
        v.component_ids.insert(id);
        v.component_ids.insert(k + "." + id);
      }
    }
  }
  return v;
}

std::vector<std::string> DiffRuns(const ComparedRun& base,
                                  const ComparedRun& other,
                                  const Varied& varied) {
  std::vector<std::string> out;
  if (base.data.dir.empty() || other.data.dir.empty()) return out;
  const std::string a = "'" + other.name + "'", b = "'" + base.name + "'";
  // The resolved configurations.
  if (!base.data.config.empty() && !other.data.config.empty()) {
    std::set<std::string> keys;
    for (const auto& [k, v] : base.data.config) keys.insert(k);
    for (const auto& [k, v] : other.data.config) keys.insert(k);
    std::vector<std::string> diffs;
    for (const std::string& key : keys) {
      if (key == "experiment.name" || key == "experiment.output" ||
          varied.Covers(key))
        continue;
      auto x = base.data.config.find(key), y = other.data.config.find(key);
      const std::string vx =
          x == base.data.config.end() ? "(absent)" : DisplayValue(x->second);
      const std::string vy =
          y == other.data.config.end() ? "(absent)" : DisplayValue(y->second);
      if (vx != vy)
        diffs.push_back(
            absl::StrCat(key, " = ", Clip(vy), " (", b, ": ", Clip(vx), ")"));
    }
    if (!diffs.empty())
      out.push_back(absl::StrCat(a, " differs from ", b, " in ",
                                 absl::StrJoin(diffs, ", "), ", not varied"));
  }
  // provenance.json
  const json& pb = base.data.provenance;
  const json& pa = other.data.provenance;
  if (!pa.is_object() || !pb.is_object()) return out;
  if (Field(pa, "llmsys_version") != Field(pb, "llmsys_version"))
    out.push_back(absl::StrCat(a, " was made by llmsys ",
                               FieldText(pa, "llmsys_version"), ", ", b, " by ",
                               FieldText(pb, "llmsys_version")));
  if (Field(pa, "git_commit") != Field(pb, "git_commit") ||
      Field(pa, "git_dirty") != Field(pb, "git_dirty")) {
    auto build = [](const json& p) {
      std::string s = FieldText(p, "git_commit");
      if (Field(p, "git_dirty") == json(true)) s += " with local changes";
      return s;
    };
    out.push_back(absl::StrCat(a, " was built from commit ", build(pa), ", ", b,
                               " from ", build(pb)));
  }
  const std::pair<const char*, const char*> settings[] = {
      {"seed", "experiment.seed"},
      {"threads", "train.threads"},
      {"device", "train.device"}};
  for (const auto& [field, key] : settings)
    if (!varied.Covers(key) && Field(pa, field) != Field(pb, field))
      out.push_back(absl::StrCat(a, " ran with ", field, " ",
                                 FieldText(pa, field), ", ", b, " with ",
                                 FieldText(pb, field)));
  const json ma = Field(pa, "machine"), mb = Field(pb, "machine");
  std::vector<std::string> machine;
  for (const char* f : {"hostname", "cpu", "cores", "gpus"})
    if (Field(ma, f) != Field(mb, f))
      machine.push_back(absl::StrCat(f, " ", FieldText(ma, f), " (", b, ": ",
                                     FieldText(mb, f), ")"));
  if (!machine.empty())
    out.push_back(absl::StrCat(a, " ran on another machine than ", b, ": ",
                               absl::StrJoin(machine, ", ")));
  const json plugins_a = Field(pa, "plugins"), plugins_b = Field(pb, "plugins");
  if (plugins_a.is_array() && plugins_b.is_array()) {
    for (const json& x : plugins_a) {
      if (!x.is_object()) continue;
      for (const json& y : plugins_b) {
        if (!y.is_object() || PluginKey(x).empty() ||
            PluginKey(x) != PluginKey(y) ||
            Field(x, "sha256") == Field(y, "sha256") ||
            ServesVaried(x, varied) || ServesVaried(y, varied))
          continue;
        out.push_back(absl::StrCat(
            a, " used plugin ", PluginKey(x), " ",
            FieldText(x, "plugin_version"), " (", FieldText(x, "file"),
            ", sha256 ", FieldText(x, "sha256").substr(0, 12), "...), ", b,
            " another build of it (", FieldText(y, "file"), ", sha256 ",
            FieldText(y, "sha256").substr(0, 12),
            "...): rebuild one, or pin it with [plugins] pins"));
      }
    }
  }
  return out;
}

std::vector<std::string> DistinguishingKeys(std::vector<ComparedRun>* runs) {
  std::set<std::string> all;
  for (const ComparedRun& r : *runs)
    for (const auto& [k, v] : r.data.config) all.insert(k);
  auto value = [](const ComparedRun& r, const std::string& k) {
    auto it = r.data.config.find(k);
    return it == r.data.config.end() ? std::string("(absent)") : it->second;
  };
  std::vector<std::string> keys;
  for (const std::string& k : all) {
    if (k == "experiment.name" || k == "experiment.output") continue;
    bool differs = false;
    for (const ComparedRun& r : *runs)
      differs = differs || (!r.data.config.empty() &&
                            value(r, k) != value(runs->front(), k));
    if (differs) keys.push_back(k);
  }
  // A swapped component's own keys go with its `use`.
  std::vector<std::string> out;
  for (const std::string& k : keys) {
    const std::string section = k.substr(0, k.find('.'));
    const std::string use =
        section == "generate" ? "generate.sampler" : section + ".use";
    if (k != use && std::find(keys.begin(), keys.end(), use) != keys.end())
      continue;
    out.push_back(k);
  }
  for (ComparedRun& r : *runs) {
    r.overrides.clear();
    for (const std::string& k : out)
      if (r.data.config.contains(k)) r.overrides.emplace_back(k, value(r, k));
  }
  return out;
}

Comparison Compare(std::string title, std::string experiment,
                   std::vector<ComparedRun> runs) {
  Comparison c;
  c.title = std::move(title);
  c.experiment = std::move(experiment);
  c.runs = std::move(runs);
  for (const ComparedRun& r : c.runs)
    for (const auto& [k, v] : r.overrides)
      if (std::find(c.varied_keys.begin(), c.varied_keys.end(), k) ==
          c.varied_keys.end())
        c.varied_keys.push_back(k);

  // The rows: losses, the evaluations (in the order they first appear),
  // speed, memory, size.
  c.quantities = {
      {"train_loss", "train loss", Better::kLower, -1, true},
      {"val_loss", "val loss", Better::kLower, -1, true},
      {"val_perplexity", "val perplexity", Better::kLower, -1, true}};
  std::vector<std::map<std::string, double>> evaluations(c.runs.size());
  for (size_t i = 0; i < c.runs.size(); ++i) {
    for (auto& [q, v] : EvaluationValues(c.runs[i].data.summary)) {
      evaluations[i][q.key] = v;
      if (std::none_of(c.quantities.begin(), c.quantities.end(),
                       [&](const Quantity& x) { return x.key == q.key; }))
        c.quantities.push_back(q);
    }
  }
  c.quantities.push_back(
      {"tokens_per_second", "tokens/s", Better::kHigher, 0, true});
  c.quantities.push_back(
      {"peak_memory_mib", "peak memory (MiB)", Better::kLower, 1, true});
  c.quantities.push_back(
      {"wall_seconds", "wall time (s)", Better::kLower, 2, true});
  c.quantities.push_back(
      {"parameters", "parameters", Better::kNeither, 0, false});
  for (size_t i = 0; i < c.runs.size(); ++i) {
    const json& s = c.runs[i].data.summary;
    std::vector<double> row;
    for (const Quantity& q : c.quantities) {
      double v = kNaN;
      if (auto e = evaluations[i].find(q.key); e != evaluations[i].end()) {
        v = e->second;
      } else if (q.key == "peak_memory_mib") {
        v = Number(Field(s, "peak_memory_bytes")) / (1024.0 * 1024.0);
      } else if (q.key.find('.') == std::string::npos) {
        v = Number(Field(s, q.key));
      }
      if (!c.runs[i].error.empty()) v = kNaN;  // a failed run has no result
      row.push_back(v);
    }
    c.values.push_back(std::move(row));
  }

  // Warnings, each once.
  std::vector<std::string> warnings;
  for (const ComparedRun& r : c.runs) {
    if (r.data.dir.empty()) continue;
    if (r.error.empty() && r.data.summary.is_null())
      warnings.push_back(absl::StrCat(
          "'", r.name,
          "' has no summary.json: the run did not finish; its final values "
          "are n/a"));
    if (r.data.provenance.is_null())
      warnings.push_back(absl::StrCat(
          "'", r.name,
          "' has no provenance.json (a run of an older llmsys?): its build, "
          "machine and plugin files are unknown"));
  }
  const Varied varied = VariedOf(c.runs);
  for (size_t i = 1; i < c.runs.size(); ++i)
    for (std::string& w : DiffRuns(c.runs[0], c.runs[i], varied))
      warnings.push_back(std::move(w));
  for (std::string& w : warnings)
    if (std::find(c.warnings.begin(), c.warnings.end(), w) == c.warnings.end())
      c.warnings.push_back(std::move(w));
  return c;
}

std::string FormatValue(double v, const Quantity& q) {
  if (std::isnan(v)) return "n/a";
  if (q.decimals >= 0) return absl::StrFormat("%.*f", q.decimals, v);
  return absl::StrFormat("%.5g", v);
}

std::string DisplayValue(const std::string& toml_text) {
  return Unquote(toml_text);
}

std::string VariedValue(const ComparedRun& run, const std::string& key) {
  if (auto it = run.data.config.find(key); it != run.data.config.end())
    return DisplayValue(it->second);
  for (const auto& [k, v] : run.overrides)
    if (k == key) return DisplayValue(v);
  return "-";
}

std::string FormatTable(const Comparison& c) {
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> header = {""};
  for (const ComparedRun& r : c.runs) header.push_back(r.name);
  rows.push_back(header);
  const bool any_failed =
      std::any_of(c.runs.begin(), c.runs.end(),
                  [](const ComparedRun& r) { return !r.error.empty(); });
  if (any_failed) {
    std::vector<std::string> row = {"status"};
    for (const ComparedRun& r : c.runs)
      row.push_back(r.error.empty() ? "ok" : "failed");
    rows.push_back(row);
  }
  for (const std::string& key : c.varied_keys) {
    std::vector<std::string> row = {key};
    for (const ComparedRun& r : c.runs)
      row.push_back(Clip(VariedValue(r, key), 30));
    rows.push_back(row);
  }
  for (size_t q = 0; q < c.quantities.size(); ++q) {
    const Quantity& quantity = c.quantities[q];
    std::vector<std::string> row = {quantity.label};
    for (size_t i = 0; i < c.runs.size(); ++i) {
      std::string cell = FormatValue(c.values[i][q], quantity);
      const double d = i > 0 ? c.Delta(i, q) : kNaN;
      if (!std::isnan(d)) {
        const double pct = c.DeltaPercent(i, q);
        cell += absl::StrCat(
            " (", Signed(d, quantity),
            std::isnan(pct) ? "" : absl::StrFormat(", %+.1f%%", pct), ")");
      }
      row.push_back(cell);
    }
    rows.push_back(row);
  }
  std::vector<size_t> width(header.size(), 0);
  for (const auto& row : rows)
    for (size_t j = 0; j < row.size(); ++j)
      width[j] = std::max(width[j], row[j].size());
  std::string out = absl::StrCat(c.title, ": ", c.runs.size(),
                                 c.runs.size() == 1 ? " run" : " runs",
                                 ", baseline '", c.runs.at(0).name, "'\n\n");
  for (const auto& row : rows) {
    std::string line;
    for (size_t j = 0; j < row.size(); ++j)
      absl::StrAppend(&line, j == 0 ? "" : "  ", row[j],
                      std::string(width[j] - row[j].size(), ' '));
    while (!line.empty() && line.back() == ' ') line.pop_back();
    absl::StrAppend(&out, line, "\n");
  }
  for (const ComparedRun& r : c.runs)
    if (!r.error.empty())
      absl::StrAppend(&out, "\n'", r.name, "' failed: ", r.error, "\n");
  if (!c.warnings.empty()) {
    absl::StrAppend(&out, "\nwarnings:\n");
    for (const std::string& w : c.warnings)
      absl::StrAppend(&out, "  - ", w, "\n");
  }
  return out;
}

json ToJson(const Comparison& c) {
  auto number = [](double v) { return std::isfinite(v) ? json(v) : json(); };
  json quantities = json::array();
  for (const Quantity& q : c.quantities)
    quantities.push_back(
        {{"key", q.key},
         {"label", q.label},
         {"better", q.better == Better::kLower    ? json("lower")
                    : q.better == Better::kHigher ? json("higher")
                                                  : json()}});
  json runs = json::array();
  for (size_t i = 0; i < c.runs.size(); ++i) {
    const ComparedRun& r = c.runs[i];
    json overrides = json::object();
    for (const auto& [k, v] : r.overrides) overrides[k] = DisplayValue(v);
    json values = json::object(), delta = json::object();
    for (size_t q = 0; q < c.quantities.size(); ++q) {
      values[c.quantities[q].key] = number(c.values[i][q]);
      if (i > 0)
        delta[c.quantities[q].key] = {{"abs", number(c.Delta(i, q))},
                                      {"pct", number(c.DeltaPercent(i, q))}};
    }
    json run = {
        {"name", r.name},
        {"status", r.error.empty() ? "ok" : "failed"},
        {"error", r.error.empty() ? json() : json(r.error)},
        {"run_dir", r.data.dir.empty() ? json() : json(r.data.dir.string())},
        {"overrides", overrides},
        {"values", values}};
    if (i > 0) run["delta"] = delta;
    runs.push_back(run);
  }
  return {{"title", c.title},
          {"experiment", c.experiment.empty() ? json() : json(c.experiment)},
          {"created", NowUtc()},
          {"llmsys_version", kHostVersion},
          {"baseline", c.runs.at(0).name},
          {"varied_keys", c.varied_keys},
          {"quantities", quantities},
          {"variants", runs},
          {"warnings", c.warnings}};
}

std::string ToCsv(const Comparison& c) {
  std::vector<std::string> header = {"variant", "status", "error", "run_dir"};
  for (const std::string& k : c.varied_keys) header.push_back(k);
  for (const Quantity& q : c.quantities) {
    header.push_back(q.key);
    header.push_back(q.key + "_delta");
    header.push_back(q.key + "_delta_pct");
  }
  std::vector<std::vector<std::string>> rows = {header};
  for (size_t i = 0; i < c.runs.size(); ++i) {
    const ComparedRun& r = c.runs[i];
    std::vector<std::string> row = {r.name, r.error.empty() ? "ok" : "failed",
                                    r.error, r.data.dir.string()};
    for (const std::string& k : c.varied_keys) row.push_back(VariedValue(r, k));
    for (size_t q = 0; q < c.quantities.size(); ++q) {
      row.push_back(NumberOrEmpty(c.values[i][q]));
      row.push_back(i > 0 ? NumberOrEmpty(c.Delta(i, q)) : "");
      row.push_back(i > 0 ? NumberOrEmpty(c.DeltaPercent(i, q)) : "");
    }
    rows.push_back(row);
  }
  std::string out;
  for (const auto& row : rows) {
    for (size_t j = 0; j < row.size(); ++j)
      absl::StrAppend(&out, j ? "," : "", CsvField(row[j]));
    out += "\r\n";
  }
  return out;
}

absl::Status WriteComparison(const Comparison& c, const fs::path& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec)
    return absl::InternalError(
        absl::StrCat(dir.string(), ": cannot create: ", ec.message()));
  LLMSYS_RETURN_IF_ERROR(
      core::AtomicWriteFile(dir / "compare.json", ToJson(c).dump(2) + "\n"));
  LLMSYS_RETURN_IF_ERROR(core::AtomicWriteFile(dir / "compare.csv", ToCsv(c)));
  return core::AtomicWriteFile(dir / "report.html", RenderHtml(c));
}

}  // namespace llmsys::report
