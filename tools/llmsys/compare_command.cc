#include "tools/llmsys/compare_command.h"

#include <algorithm>
#include <filesystem>
#include <iostream>
#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "framework/config/experiment.h"
#include "framework/core/logging.h"
#include "framework/core/process_memory.h"
#include "framework/core/suggest.h"
#include "framework/report/comparison.h"
#include "framework/report/variants.h"
#include "framework/runtime/dispatch.h"
#include "framework/runtime/registry.h"
#include "framework/tensor/tensor.h"
#include "framework/train/trainer.h"
#include "tools/llmsys/parse_args.h"

namespace llmsys::cli {
namespace {

namespace po = boost::program_options;
namespace fs = std::filesystem;

std::string TomlQuote(const std::string& s) {
  return absl::StrCat(
      "\"", absl::StrReplaceAll(s, {{"\\", "\\\\"}, {"\"", "\\\""}}), "\"");
}

// A registry with the built-in plugins and --plugin-dir folders loaded, and
// the experiment read with `sets`. The registry outlives the experiment.
struct Loaded {
  runtime::PluginRegistry registry;
  std::unique_ptr<config::Experiment> experiment;
};
absl::Status Load(const fs::path& file, const std::vector<std::string>& sets,
                  const std::vector<std::string>& plugin_dirs, Loaded* out) {
  absl::Status builtin = out->registry.AddDefaultSearchDirs();
  if (!builtin.ok() && !absl::IsNotFound(builtin)) return builtin;
  for (const std::string& d : plugin_dirs) {
    absl::Status s = out->registry.AddSearchDir(d, "--plugin-dir");
    if (!s.ok()) return s;
  }
  out->registry.LoadAll();
  absl::StatusOr<config::Experiment> e =
      config::Experiment::Load(file, sets, out->registry);
  if (!e.ok()) return e.status();
  out->experiment = std::make_unique<config::Experiment>(*std::move(e));
  return absl::OkStatus();
}

// Everything a variant's run checks before it starts, checked for all of
// them before the first runs: its keys and values, its components, its
// [ops] implementations. Messages name where each key came from. Returns
// the variant's resolved configuration.
absl::StatusOr<std::string> CheckVariant(
    const fs::path& file, const std::vector<std::string>& sets,
    const report::VariantSpec& spec,
    const std::vector<std::string>& plugin_dirs) {
  std::vector<std::string> all = sets;
  for (const std::string& s : spec.SetArgs()) all.push_back(s);
  Loaded loaded;
  absl::Status status = Load(file, all, plugin_dirs, &loaded);
  if (status.ok()) {
    const config::Experiment& e = *loaded.experiment;
    runtime::OpDispatcher ops(&loaded.registry, tensor::kCpu);
    std::string where = e.file().string() + ": [ops]";
    if (!e.ops().empty())
      where = e.ops_sources().begin()->second.Describe() + ": [ops]";
    status = ops.Configure(e.ops(), where);
    if (status.ok()) return e.ResolvedToml();
  }
  std::string message(status.message());
  for (const report::VariantSet& s : spec.sets)
    message = absl::StrReplaceAll(
        message, {{absl::StrCat("--set ", s.key, "=", s.value),
                   absl::StrCat(s.origin, ": ", s.key, " = ", s.value)}});
  return absl::Status(status.code(),
                      absl::StrCat("variant '", spec.name, "': ", message));
}

std::string Describe(const report::VariantSpec& spec) {
  if (spec.sets.empty()) return "the experiment as it is";
  std::vector<std::string> parts;
  for (const report::VariantSet& s : spec.sets)
    parts.push_back(absl::StrCat(s.key, " = ", s.value));
  return absl::StrJoin(parts, ", ");
}

// Writes the comparison's files and prints its table; the exit code.
int Finish(const report::Comparison& c, const fs::path& dir,
           const char* command, int code) {
  std::cout << report::FormatTable(c);
  absl::Status written = report::WriteComparison(c, dir);
  if (!written.ok()) {
    std::cerr << "llmsys " << command << ": " << written.message() << "\n";
    return 1;
  }
  std::cout << "\nreport: " << (dir / "report.html").string()
            << "\ntables: " << (dir / "compare.json").string() << ", "
            << (dir / "compare.csv").string() << "\n";
  return code;
}

}  // namespace

int CompareCommand(const std::vector<std::string>& args) {
  std::string experiment;
  std::vector<std::string> vary, sets, only, plugin_dirs;
  bool help = false, overwrite = false, no_bar = false, verbose = false;
  po::options_description desc(
      "usage: llmsys compare EXPERIMENT.toml [--vary section.key=v1,v2]... "
      "[--set section.key=value]... [--only NAME]... [--overwrite] "
      "[--no-progress]\n\n"
      "Runs the experiment once per variant, one after another with the same "
      "seed, into <output>/<name>-compare/<variant>/, and compares them: one "
      "table of final metrics, tokens/s, peak memory and wall time with the "
      "difference to the first variant, warnings where the runs differ in "
      "more than what was varied, and compare.json, compare.csv and "
      "report.html in the comparison's folder. Variants are the file's "
      "[[variants]] entries (a name and the keys it sets) crossed with each "
      "--vary. See docs/compare.md.\n\noptions");
  desc.add_options()("help,h", po::bool_switch(&help), "show this help")(
      "experiment", po::value(&experiment), "the experiment file")(
      "vary", po::value(&vary)->composing(),
      "run each value of a key: --vary optimizer.use=adamw,lion (repeatable: "
      "every combination)")("set", po::value(&sets)->composing(),
                            "override a key of every variant: --set "
                            "train.steps=100 (repeatable)")(
      "only", po::value(&only)->composing(),
      "run only this variant (repeatable); the others' earlier runs, if "
      "any, are compared with it")(
      "overwrite", po::bool_switch(&overwrite),
      "replace the variants' existing run directories")(
      "plugin-dir", po::value(&plugin_dirs)->composing(),
      "also load plugins from DIR (repeatable)")(
      "no-progress", po::bool_switch(&no_bar),
      "plain log lines instead of a progress bar")(
      "verbose,v", po::bool_switch(&verbose), "print debug messages");
  po::variables_map vm;
  if (!ParseArgs(args, desc, "experiment", -1, &vm)) return 2;
  if (help) {
    std::cout << desc << "\n";
    return 0;
  }
  if (experiment.empty()) {
    std::cerr << "error: 'llmsys compare' takes an experiment file\n";
    return 2;
  }
  if (verbose) core::SetMinLogLevel(core::LogLevel::kDebug);
  absl::StatusOr<std::vector<report::VaryAxis>> axes = report::ParseVary(vary);
  if (!axes.ok()) {
    std::cerr << "error: " << axes.status().message() << "\n";
    return 2;
  }
  const fs::path file = experiment;
  Loaded base;
  if (absl::Status s = Load(file, sets, plugin_dirs, &base); !s.ok()) {
    std::cerr << "llmsys compare: " << s.message() << "\n";
    return 1;
  }
  const config::Experiment& e = *base.experiment;
  absl::StatusOr<std::vector<report::VariantSpec>> variants =
      report::CrossVariants(e.variants(), *axes);
  if (!variants.ok()) {
    std::cerr << "llmsys compare: " << file.string() << ": "
              << variants.status().message() << "\n";
    return 1;
  }
  // --only: those run; the others' earlier runs, where there are any, are
  // compared with them.
  std::vector<bool> selected(variants->size(), only.empty());
  for (const std::string& name : only) {
    std::vector<std::string> names;
    for (const report::VariantSpec& v : *variants) names.push_back(v.name);
    auto it = std::find(names.begin(), names.end(), name);
    if (it == names.end()) {
      std::cerr << "error: --only " << name << ": no such variant"
                << core::DidYouMean(name, names)
                << "; variants: " << absl::StrJoin(names, ", ") << "\n";
      return 2;
    }
    selected[it - names.begin()] = true;
  }
  // Checked quietly: what loading says about a variant, its run says again.
  const core::LogLevel level = core::MinLogLevel();
  if (!verbose) core::SetMinLogLevel(core::LogLevel::kWarning);
  std::vector<std::string> resolved(variants->size());
  for (size_t i = 0; i < variants->size(); ++i) {
    if (!selected[i]) continue;
    absl::StatusOr<std::string> config =
        CheckVariant(file, sets, (*variants)[i], plugin_dirs);
    if (!config.ok()) {
      std::cerr << "llmsys compare: " << config.status().message() << "\n";
      return 1;
    }
    resolved[i] = *std::move(config);
  }
  core::SetMinLogLevel(level);
  std::string name = e.String("experiment", "name");
  if (name.empty()) name = file.stem().string();
  const fs::path dir =
      fs::absolute(e.ResolvePath(e.String("experiment", "output")) /
                   (name + "-compare"))
          .lexically_normal();
  std::vector<std::string> existing;
  for (size_t i = 0; i < variants->size(); ++i)
    if (selected[i] && fs::exists(dir / (*variants)[i].name))
      existing.push_back((dir / (*variants)[i].name).string());
  if (!existing.empty() && !overwrite) {
    std::cerr << "llmsys compare: " << absl::StrJoin(existing, ", ")
              << (existing.size() == 1 ? " already exists" : " already exist")
              << ": pass --overwrite to replace the runs, or --set "
                 "experiment.name=... for a new comparison\n";
    return 1;
  }

  std::vector<report::ComparedRun> runs;
  bool failed = false;
  const size_t total = std::count(selected.begin(), selected.end(), true);
  size_t count = 0;
  for (size_t i = 0; i < variants->size(); ++i) {
    const report::VariantSpec& v = (*variants)[i];
    const fs::path run_dir = dir / v.name;
    report::ComparedRun run;
    run.name = v.name;
    for (const report::VariantSet& s : v.sets)
      run.overrides.emplace_back(s.key, s.value);
    if (!selected[i]) {
      if (!fs::exists(run_dir / "config.toml")) continue;
      std::cerr << "variant " << v.name << ": not run (--only); its run in "
                << run_dir.string() << " is compared\n";
    } else {
      std::cerr << "\n=== variant " << ++count << "/" << total << ": " << v.name
                << " (" << Describe(v) << ") -> " << run_dir.string()
                << " ===\n";
      std::error_code ec;
      fs::remove_all(run_dir, ec);  // --overwrite: no stale results
      train::RunOptions options;
      options.experiment = file;
      options.sets = sets;
      for (const std::string& s : v.SetArgs()) options.sets.push_back(s);
      options.sets.push_back("experiment.name=" + TomlQuote(v.name));
      options.sets.push_back("experiment.output=" + TomlQuote(dir.string()));
      options.plugin_dirs = plugin_dirs;
      options.overwrite = overwrite;
      if (no_bar) options.progress_bar = false;
      core::ResetPeakResident();
      absl::StatusOr<train::RunResult> r = train::RunExperiment(options);
      if (!r.ok()) {
        failed = true;
        run.error = std::string(r.status().message());
        std::cerr << "variant " << v.name << " failed: " << run.error << "\n";
      }
    }
    if (fs::exists(run_dir / "config.toml")) {
      absl::StatusOr<report::RunData> data = report::LoadRun(run_dir);
      if (data.ok()) {
        run.data = *std::move(data);
      } else if (run.error.empty()) {
        failed = true;
        run.error = std::string(data.status().message());
      }
    } else if (!resolved[i].empty()) {
      // Failed before its run directory: the configuration it would have had.
      absl::StatusOr<std::map<std::string, std::string>> config =
          report::ParseConfig(resolved[i], v.name);
      if (config.ok()) run.data.config = *std::move(config);
    }
    runs.push_back(std::move(run));
  }
  std::cerr << "\n";
  const report::Comparison c =
      report::Compare(name, file.string(), std::move(runs));
  return Finish(c, dir, "compare", failed ? 1 : 0);
}

int ReportCommand(const std::vector<std::string>& args) {
  std::vector<std::string> dirs;
  std::string output = "report", title;
  bool help = false;
  po::options_description desc(
      "usage: llmsys report RUN_DIR... [--output DIR] [--name TITLE]\n\n"
      "Compares existing run directories as `llmsys compare` does its "
      "variants: the first is the baseline, the configuration keys that "
      "differ tell the runs apart, and warnings say where their builds, "
      "machines or plugin files differ. Writes compare.json, compare.csv "
      "and report.html into DIR. See docs/compare.md.\n\noptions");
  desc.add_options()("help,h", po::bool_switch(&help), "show this help")(
      "runs", po::value(&dirs)->composing(), "the run directories")(
      "output,o", po::value(&output),
      "folder for compare.json, compare.csv and report.html (default: "
      "report)")("name", po::value(&title),
                 "the report's title (default: the runs' names)");
  po::variables_map vm;
  if (!ParseArgs(args, desc, "runs", -1, &vm)) return 2;
  if (help) {
    std::cout << desc << "\n";
    return 0;
  }
  if (dirs.empty()) {
    std::cerr << "error: 'llmsys report' takes one or more run directories\n";
    return 2;
  }
  std::vector<report::ComparedRun> runs;
  for (const std::string& d : dirs) {
    absl::StatusOr<report::RunData> data = report::LoadRun(d);
    if (!data.ok()) {
      std::cerr << "llmsys report: " << data.status().message();
      if (fs::exists(fs::path(d) / "compare.json"))
        std::cerr << " (a comparison's folder: give its runs, "
                  << (fs::path(d) / "*").string() << ")";
      std::cerr << "\n";
      return 1;
    }
    fs::path p = fs::path(d).lexically_normal();
    if (p.filename().empty()) p = p.parent_path();
    report::ComparedRun run;
    run.name = p.filename().string();
    run.data = *std::move(data);
    runs.push_back(std::move(run));
  }
  // Runs of the same name (two comparisons' "adamw") are told apart by
  // their folder.
  for (size_t i = 0; i < runs.size(); ++i) {
    bool twin = false;
    for (size_t j = 0; j < runs.size(); ++j)
      twin = twin || (i != j && runs[i].name == runs[j].name);
    if (!twin) continue;
    fs::path p = fs::path(dirs[i]).lexically_normal();
    if (p.filename().empty()) p = p.parent_path();
    runs[i].name = (p.parent_path().filename() / p.filename()).string();
  }
  for (size_t i = 0; i < runs.size(); ++i)
    for (size_t j = 0; j < i; ++j)
      if (runs[i].name == runs[j].name)
        runs[i].name += absl::StrCat("#", i + 1);
  report::DistinguishingKeys(&runs);
  if (title.empty()) {
    std::vector<std::string> names;
    for (const report::ComparedRun& r : runs) names.push_back(r.name);
    title = absl::StrJoin(names, " vs ");
  }
  const report::Comparison c = report::Compare(title, "", std::move(runs));
  return Finish(c, output, "report", 0);
}

}  // namespace llmsys::cli
