// framework/report/comparison.h — run directories side by side, as
// `llmsys compare` and `llmsys report` print and write them: each run's final
// metrics, speed and memory with the difference to the first (the
// baseline), and warnings where two runs differ in more than what was
// varied.
//
//   std::vector<ComparedRun> runs;
//   for (const auto& [name, dir] : dirs) {
//     LLMSYS_ASSIGN_OR_RETURN(RunData data, LoadRun(dir));
//     runs.push_back({.name = name, .data = std::move(data)});
//   }
//   DistinguishingKeys(&runs);  // `llmsys report`: the keys that differ
//   Comparison c = Compare("title", "", std::move(runs));
//   std::cout << FormatTable(c);
//   LLMSYS_RETURN_IF_ERROR(WriteComparison(c, out_dir));
//
// Thread-safety: pure functions and values.
#ifndef LLMSYS_FRAMEWORK_REPORT_COMPARISON_H_
#define LLMSYS_FRAMEWORK_REPORT_COMPARISON_H_

#include <cstdint>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace llmsys::report {

struct Point {
  int64_t step = 0;
  double value = 0;  // NaN: not finite
};

// What a comparison reads from a run directory.
struct RunData {
  std::filesystem::path dir;
  nlohmann::json summary;     // summary.json; null when absent (unfinished)
  nlohmann::json provenance;  // provenance.json; null when absent (older)
  // config.toml flattened: "section.key" -> the value as TOML text;
  // [[evaluate]] entries as "evaluate#1.use".
  std::map<std::string, std::string> config;
  std::vector<Point> train_loss, val_loss;  // from metrics.jsonl
};

// Reads a run directory. NOT_FOUND when it holds no config.toml (not a run
// directory); a missing summary.json, provenance.json or metrics.jsonl
// leaves that part empty, an unreadable one is an error naming it.
absl::StatusOr<RunData> LoadRun(const std::filesystem::path& dir);
// A resolved configuration's text (config.toml) flattened as RunData::config.
absl::StatusOr<std::map<std::string, std::string>> ParseConfig(
    const std::string& toml_text, const std::string& name);

// One run (a column) of a comparison.
struct ComparedRun {
  std::string name;
  // The keys that tell it apart ("optimizer.use" -> "\"lion\"", TOML text).
  std::vector<std::pair<std::string, std::string>> overrides = {};
  std::string error = {};  // why a variant failed; "" when it ran
  RunData data = {};       // data.dir empty: it never got a directory
};

enum class Better { kNeither, kLower, kHigher };

// One row of the comparison.
struct Quantity {
  std::string key;    // "train_loss", "chrf.score": compare.json/csv names
  std::string label;  // "train loss", "chrf score"
  Better better = Better::kNeither;
  int decimals = -1;   // digits after the point; -1: 5 significant digits
  bool chart = false;  // a bar chart in report.html
};

struct Comparison {
  std::string title;
  std::string experiment;  // the experiment file; "" for `llmsys report`
  std::vector<std::string> varied_keys;
  std::vector<ComparedRun> runs;  // runs[0]: the baseline
  std::vector<Quantity> quantities;
  std::vector<std::vector<double>> values;  // [run][quantity]; NaN: n/a
  std::vector<std::string> warnings;

  // Run `run` minus the baseline in quantity `q`, and that in percent of
  // |baseline|; NaN when either is n/a (or the baseline is 0, for %).
  double Delta(size_t run, size_t q) const;
  double DeltaPercent(size_t run, size_t q) const;
};

// What was varied among `runs` (their overrides): keys, "section.*" for a
// section whose component (`use`, [generate] `sampler`) differs, and the
// component and implementation ids the varied keys name.
struct Varied {
  std::set<std::string> keys;
  std::set<std::string> component_ids;
  bool Covers(const std::string& key) const;
};
Varied VariedOf(const std::vector<ComparedRun>& runs);

// What `other` has that `base` does not besides what was varied: config
// keys, and from provenance.json the llmsys version and commit, the
// machine, threads, seed and device, and the sha256 of each plugin both
// used (unless it serves a varied component). One line per finding.
std::vector<std::string> DiffRuns(const ComparedRun& base,
                                  const ComparedRun& other,
                                  const Varied& varied);

// For `llmsys report`: the config keys whose values differ among the runs
// (experiment.name and output aside; a swapped component's own keys go
// with its `use`), set as each run's overrides. Returns the keys.
std::vector<std::string> DistinguishingKeys(std::vector<ComparedRun>* runs);

// The table: final losses, every [[evaluate]] metric, tokens/s, peak memory,
// wall time and parameters of each run; and the warnings (DiffRuns of each
// run against the first, a run without provenance or summary).
Comparison Compare(std::string title, std::string experiment,
                   std::vector<ComparedRun> runs);

// The table as text for a terminal, warnings and failures below it.
std::string FormatTable(const Comparison& c);
// compare.json: everything in the table, each run's overrides, directory,
// status, and the warnings.
nlohmann::json ToJson(const Comparison& c);
// compare.csv: one row per run, one column per quantity (and its delta and
// delta %), RFC 4180 (quoted where needed, CRLF line ends).
std::string ToCsv(const Comparison& c);
// Writes compare.json, compare.csv and report.html into `dir` (created).
absl::Status WriteComparison(const Comparison& c,
                             const std::filesystem::path& dir);

// A number as the table shows it ("n/a" for NaN).
std::string FormatValue(double v, const Quantity& q);
// A TOML value's text as shown to a person: a plain string unquoted.
std::string DisplayValue(const std::string& toml_text);
// What `run` has for varied key `key`, as shown: its resolved config's
// value, else what it set; "-" for neither (its component has no such key).
std::string VariedValue(const ComparedRun& run, const std::string& key);

}  // namespace llmsys::report

#endif  // LLMSYS_FRAMEWORK_REPORT_COMPARISON_H_
