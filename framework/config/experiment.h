// framework/config/experiment.h — experiment files: TOML, every key checked.
//
// An experiment file has fixed sections ([experiment], [plugins], [data],
// [model], [ops], [optimizer], [schedule], [train], [distributed],
// [generate]) and a list
// of [[evaluate]] entries. [model], [optimizer] and each [[evaluate]] name
// a component with `use = "id"`, [generate] its sampler with
// `sampler = "id"`; their other keys include that component's parameters,
// checked against the schema the plugin declares. [ops] maps op names to
// implementations. [[variants]] entries are for `llmsys compare`: checked
// here (Variant), not applied.
// Every other key is known to the host's schema (ExperimentSchema()).
//
// Every error names where the value came from — `file:line:column` or the
// `--set` that gave it — the key, what was expected, and a did-you-mean:
//
//   experiments/x.toml:12:1: [train] unknown key 'stpes' (did you mean
//   'steps'?)
//
// `--set section.key=value` overrides any key (the value is read as TOML,
// or as a string when it is not valid TOML: --set data.train=a.txt). A
// --set that swaps a component (`--set optimizer.use=sgd`) also drops the
// file's parameters of the component it replaces that the new one does not
// take (logged), so that one line swaps it.
//
//   PluginRegistry registry;  ... AddDefaultSearchDirs ...
//   LLMSYS_ASSIGN_OR_RETURN(Experiment e, Experiment::Load(
//       "experiments/quickstart.toml", {"train.steps=100"}, registry));
//   int64_t steps = e.Int("train", "steps");
//   std::string resolved = e.ResolvedToml();  // defaults filled
//
// Thread-safety: an Experiment is an immutable value once loaded.
#ifndef LLMSYS_FRAMEWORK_CONFIG_EXPERIMENT_H_
#define LLMSYS_FRAMEWORK_CONFIG_EXPERIMENT_H_

#include <filesystem>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "framework/runtime/param_schema.h"
#include "framework/runtime/registry.h"

namespace llmsys::config {

using runtime::ParamValue;

// Where a value came from.
struct Source {
  std::string file = {};  // empty for defaults and --set
  int line = 0;
  int column = 0;
  std::string set;  // the --set argument that gave it, if any
  // "x.toml:3:7", "--set train.steps=5", or "default".
  std::string Describe() const;
};

struct Setting {
  ParamValue value;
  Source source;
  bool is_default = false;
};

// One fixed section of the host's schema.
struct SectionSchema {
  std::string name;
  std::string doc;
  runtime::ParamSchema keys;
  // [model], [optimizer], [generate], [[evaluate]]: the first key (`use`,
  // `sampler`) names a component of this kind whose parameter schema checks the
  // other keys. A default sampler that is not loaded leaves sampler() null.
  llmsys_kind_t component_kind = 0;
  // [ops]: any key (an op name) with a string value.
  bool open = false;
  // Keys that take a list of strings ([generate] stop), a type parameters do
  // not have: declared in `keys` as a string (their TOML text, "[]" by
  // default); Strings() gives the list.
  std::vector<std::string> string_lists = {};
  // [[evaluate]]: a list of tables, each checked like a section of this
  // schema (Experiment::evaluations()).
  bool array = false;
};

// One [[evaluate]] entry: its evaluator, the host's keys, and the
// evaluator's parameters (every key of its schema, defaults filled).
struct EvaluateEntry {
  EvaluateEntry(const runtime::Component* component,
                std::vector<std::pair<std::string, Setting>> settings);
  const runtime::Component* component;
  int64_t every = 0;    // steps between evaluations (0: after training)
  int64_t batches = 0;  // validation batches (0: all)
  int64_t segments = 0, prompt_tokens = 0, max_tokens = 0;  // text tasks
  std::string split = "valid";  // translation: "valid" or "test"
  bool reverse = false;         // translation: target to source
  std::vector<std::pair<std::string, ParamValue>> params;  // the evaluator's
  std::vector<std::pair<std::string, Setting>> settings;   // every key

  // Whether the evaluator scores text (generated or translated) rather than
  // the model's log-probabilities.
  bool ReadsText() const;
};

// Why [[evaluate]] `key` has no effect for this entry in a translation task
// or not (`what` names the entry in the message); empty when it applies.
// Stating such a key is an error; the resolved configuration leaves the
// defaulted ones out, so a run directory resumes.
std::string EvaluateKeyMisfit(const EvaluateEntry& entry,
                              const std::string& key, bool translation);

// One [plugins] pins entry: a plugin file the experiment expects to be
// loaded with exactly these bytes.
struct PluginPin {
  // As written: a file name ("flash_attention.so") matches a loaded file of
  // that name in any folder; a path (with a '/') matches that file only.
  std::string file;
  std::filesystem::path path;  // absolute, when `file` is a path; else empty
  std::string sha256;          // 64 lower-case hex digits
  Source source;
};

// One [[variants]] entry, read by `llmsys compare` (docs/compare.md) and
// ignored by `llmsys run` once its keys are checked:
//
//   [[variants]]
//   name = "lion"
//   optimizer.use = "lion"        # or "optimizer.use" = "lion"
struct Variant {
  std::string name;
  Source source;  // where the entry's name is written
  // "section.key" -> the value as TOML text, applied like --set; in key order.
  std::vector<std::pair<std::string, std::string>> sets;
};

// The host's sections and keys, with defaults and docs.
const std::vector<SectionSchema>& ExperimentSchema();

class Experiment {
 public:
  // Reads `file`, applies `overrides` ("section.key=value"), loads the
  // plugin folders of [plugins] paths into `registry` (relative to the
  // file's folder), checks [plugins] pins against the files loaded (a
  // pinned file must be loaded, with that sha256), and checks every key. [ops]
  // names are checked against the op contracts; the implementations are checked
  // when the run's dispatcher is configured (Where() gives their positions).
  static absl::StatusOr<Experiment> Load(
      const std::filesystem::path& file,
      const std::vector<std::string>& overrides,
      runtime::PluginRegistry& registry);
  // The same from text; `name` stands for the file in messages and paths
  // resolve against the current folder.
  static absl::StatusOr<Experiment> Parse(
      std::string_view text, const std::string& name,
      const std::vector<std::string>& overrides,
      runtime::PluginRegistry& registry);

  // Typed values of the host's sections (and of [model]/[optimizer]
  // parameters). The schema guarantees the key exists with that type;
  // asking for an undeclared key is a programming error (aborts).
  const Setting& Get(const std::string& section, const std::string& key) const;
  bool Has(const std::string& section, const std::string& key) const;
  int64_t Int(const std::string& section, const std::string& key) const;
  double Float(const std::string& section, const std::string& key) const;
  bool Bool(const std::string& section, const std::string& key) const;
  std::string String(const std::string& section, const std::string& key) const;

  // A list-of-strings key (SectionSchema::string_lists); empty by default.
  std::vector<std::string> Strings(const std::string& section,
                                   const std::string& key) const;

  // The component [model] / [optimizer] / [generate] uses, and its
  // parameters (every key of its schema, in schema order, defaults filled).
  const runtime::Component* model() const { return model_; }
  const runtime::Component* optimizer() const { return optimizer_; }
  const runtime::Component* sampler() const { return sampler_; }
  // The [[evaluate]] entries, in file order.
  const std::vector<EvaluateEntry>& evaluations() const { return evaluations_; }
  std::vector<std::pair<std::string, ParamValue>> ComponentParams(
      const std::string& section) const;
  // [ops]: op -> implementation, and where each was written.
  const std::map<std::string, std::string>& ops() const { return ops_; }
  const std::map<std::string, Source>& ops_sources() const {
    return ops_sources_;
  }
  // [plugins] paths, resolved.
  const std::vector<std::filesystem::path>& plugin_paths() const {
    return plugin_paths_;
  }
  // [plugins] pins, in file order. Load/Parse has checked each against the
  // registry's loaded files: a pinned file is loaded, with that sha256.
  const std::vector<PluginPin>& plugin_pins() const { return plugin_pins_; }
  // The [[variants]] entries, in file order: each name valid as a folder
  // name and unique, each key one an override may set (for a component's
  // keys: of the component the variant, or else the experiment, uses), each
  // value of the key's type. `llmsys run` does not use them.
  const std::vector<Variant>& variants() const { return variants_; }
  // The experiment file ("" when parsed from text).
  const std::filesystem::path& file() const { return file_; }
  // Resolves a path written in the file: relative to the current folder if
  // it exists there, else relative to the experiment file's folder.
  std::filesystem::path ResolvePath(const std::string& path) const;

  // Sets `section.key` to `value` as if the file had said so (the host
  // records what it filled in, e.g. a model's vocab_size, so that the
  // resolved configuration rebuilds the same run).
  void Set(const std::string& section, const std::string& key,
           ParamValue value);

  // The resolved configuration as TOML: every section and key, defaults
  // filled, each default marked with a comment.
  std::string ResolvedToml() const;

 private:
  std::filesystem::path file_;
  // section -> key -> setting, keys in schema order.
  std::map<std::string, std::vector<std::pair<std::string, Setting>>> sections_;
  std::map<std::string, std::string> ops_;
  std::map<std::string, Source> ops_sources_;
  std::vector<std::filesystem::path> plugin_paths_;
  std::vector<PluginPin> plugin_pins_;
  const runtime::Component* model_ = nullptr;
  const runtime::Component* optimizer_ = nullptr;
  const runtime::Component* sampler_ = nullptr;
  std::vector<EvaluateEntry> evaluations_;
  std::vector<Variant> variants_;
  // section -> key -> strings, for SectionSchema::string_lists keys.
  std::map<std::string, std::map<std::string, std::vector<std::string>>>
      string_lists_;
};

}  // namespace llmsys::config

#endif  // LLMSYS_FRAMEWORK_CONFIG_EXPERIMENT_H_
