#include "framework/config/experiment.h"

#include <toml++/toml.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <optional>
#include <set>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "framework/config/toml_text.h"
#include "framework/core/logging.h"
#include "framework/core/provenance.h"
#include "framework/core/status_macros.h"
#include "framework/core/suggest.h"

namespace llmsys::config {
namespace {

namespace fs = std::filesystem;
using runtime::ParamSchema;
using runtime::ParamSchemaEntry;

// ---- the host's schema ----

ParamSchemaEntry Key(std::string name, llmsys_type_t type,
                     std::optional<ParamValue> def, std::string doc) {
  ParamSchemaEntry e;
  e.name = std::move(name);
  e.type = type;
  e.required = !def.has_value();
  e.default_value = std::move(def);
  e.doc = std::move(doc);
  return e;
}
ParamSchemaEntry Int(std::string name, int64_t def, std::string doc,
                     double min = 0) {
  ParamSchemaEntry e =
      Key(std::move(name), LLMSYS_TYPE_INT, def, std::move(doc));
  e.min_value = min;
  return e;
}
ParamSchemaEntry Float(std::string name, double def, std::string doc,
                       double min, std::optional<double> max = {}) {
  ParamSchemaEntry e =
      Key(std::move(name), LLMSYS_TYPE_FLOAT, def, std::move(doc));
  e.min_value = min;
  e.max_value = max;
  return e;
}
ParamSchemaEntry Str(std::string name, std::optional<std::string> def,
                     std::string doc, std::vector<std::string> choices = {}) {
  std::optional<ParamValue> d;
  if (def) d = ParamValue(*def);
  ParamSchemaEntry e =
      Key(std::move(name), LLMSYS_TYPE_STRING, d, std::move(doc));
  e.choices = std::move(choices);
  return e;
}

std::vector<SectionSchema> MakeSchema() {
  std::vector<SectionSchema> s;
  s.push_back({"experiment",
               "what the run is called and where it goes",
               {Str("name", "", "run name (default: the file's name)"),
                Int("seed", 1337, "seed of every random stream"),
                Str("output", "runs", "folder the run directory goes in")}});
  s.push_back({"plugins", "extra plugin folders", {}});
  s.push_back(
      {"data",
       "the corpus, its tokenizer and the task (docs/data.md)",
       {Str("task", "lm",
            "lm: next-token prediction on text; translation: sentence "
            "pairs; mlm: masked language modelling on lines of text",
            {"lm", "translation", "mlm"}),
        Str("train", "",
            "training text (plain or .gz); translation: the files' prefix "
            "(<train>.<source_lang>, <train>.<target_lang>, each maybe .gz); "
            "required unless synthetic_pairs > 0"),
        Str("valid", "",
            "validation text (translation: prefix); empty: the end of train"),
        Str("test", "", "test prefix (translation; [[evaluate]] split)"),
        Float("val_fraction", 0.1, "share of train held out for validation",
              0.0, 0.5),
        Str("source_lang", "", "translation: source file suffix (\"de\")"),
        Str("target_lang", "", "translation: target file suffix (\"en\")"),
        Int("max_source_len", 128, "translation: longest source, in tokens", 1),
        Int("max_target_len", 128, "translation: longest target, in tokens", 1),
        Str("too_long", "truncate",
            "translation: a longer pair is truncated (with a warning), "
            "skipped (counted), or an error",
            {"truncate", "skip", "error"}),
        Int("sort_batches", 100,
            "translation, mlm: runs of this many batches are sorted by "
            "length, so a batch holds similar lengths (0: plain shuffle)"),
        Int("synthetic_pairs", 0,
            "translation: > 0 generates this many training pairs of a "
            "synthetic reversible language pair instead of reading files "
            "(framework/data/synthetic.h)"),
        Int("synthetic_eval_pairs", 500,
            "synthetic: pairs in each of valid and test", 1),
        Int("synthetic_vocab", 100, "synthetic: source words", 1),
        Int("synthetic_min_len", 3, "synthetic: fewest source words", 1),
        Int("synthetic_max_len", 10, "synthetic: most source words", 1),
        Float("synthetic_split_fraction", 0.0,
              "synthetic: share of source words that become two target "
              "words",
              0.0, 1.0),
        Float("synthetic_swap_prob", 0.0,
              "synthetic: probability of swapping adjacent target words (0: "
              "monotonic)",
              0.0, 1.0),
        Float("mask_prob", 0.15,
              "mlm: share of tokens predicted (80% [MASK], 10% random, 10% "
              "kept)",
              0.0, 1.0),
        Str("tokenizer", "char", "tokenizer", {"char", "bpe"}),
        Int("vocab_size", 1024, "vocabulary size (bpe)", 16)}});
  s.push_back({"model",
               "the model: `use` names a model plugin component",
               {Str("use", std::nullopt, "model component id")},
               LLMSYS_KIND_MODEL});
  s.push_back({"ops",
               "implementation per op: op = \"implementation\"",
               {},
               0,
               /*open=*/true});
  s.push_back({"optimizer",
               "the optimizer: `use` names an optimizer component",
               {Str("use", "adamw", "optimizer component id")},
               LLMSYS_KIND_OPTIMIZER});
  s.push_back(
      {"schedule",
       "learning rate over the steps",
       {Float("lr", 1e-3, "peak learning rate", 0.0),
        Str("decay", "constant", "after warm-up",
            {"constant", "cosine", "linear", "inverse_sqrt"}),
        Int("warmup_steps", 0, "linear warm-up from 0 over these steps"),
        Float("min_lr", 0.0, "floor of cosine and linear decay", 0.0)}});
  s.push_back(
      {"train",
       "the training loop",
       {Int("steps", 1000, "optimizer steps", 1),
        Int("batch_size", 12, "sequences per micro-batch", 1),
        Int("block_size", 64, "tokens per sequence", 1),
        Int("accumulate", 1, "micro-batches per optimizer step", 1),
        Float("grad_clip", 1.0, "clip the global gradient norm (0: off)", 0.0),
        Int("log_every", 10, "steps between log lines", 1),
        Int("checkpoint_every", 0, "steps between checkpoints (0: at the end)"),
        Str("device", "cpu", "device", {"cpu", "cuda"}),
        Str("precision", "float32",
            "compute dtype: bfloat16 or float16 run matmul, linear and "
            "attention in that dtype over float32 master weights and "
            "optimizer state (float16 with dynamic loss scaling); needs "
            "device = \"cuda\"",
            {"float32", "bfloat16", "float16"}),
        Int("threads", 0,
            "CPU threads (0: all cores, shared among the ranks on a "
            "machine)"),
        Str("on_nonfinite", "stop", "a NaN or infinite loss", {"stop", "skip"}),
        Int("eval_every", 250,
            "steps between validation losses (0: at the end only)"),
        Int("eval_batches", 20, "validation batches per validation loss", 1)}});
  s.push_back(
      {"distributed",
       "a run over several processes (`mpirun -np N llmsys run`): data "
       "parallel, each rank batch_size sequences; or pipeline parallel, "
       "each rank one stage of the model (docs/distributed.md)",
       {Int("pipeline_stages", 1,
            "stages the model's layers are split into, one per rank (1: "
            "data parallel); the model must support stages (gpt does)",
            1),
        Int("micro_batches", 4,
            "pipeline: micro-batches each batch is split into (GPipe; 1 is "
            "naive model parallelism, one stage busy at a time)",
            1),
        Float("bucket_mb", 25.0,
              "MiB of gradients summed across the ranks per all-reduce", 0.0),
        Key("overlap", LLMSYS_TYPE_BOOL, ParamValue(false),
            "start each bucket's all-reduce as soon as backward has finished "
            "its gradients, overlapping communication with backward"),
        Float("timeout", 300.0,
              "seconds a rank waits for the others in a collective before "
              "stopping the run (a rank died or hung)",
              1.0)}});
  // `sampler` (first: it names the component) merges the sampler's own
  // parameters into the section, as `use` does for [model] and [optimizer].
  ParamSchemaEntry use_cache =
      Key("use_cache", LLMSYS_TYPE_BOOL, ParamValue(true),
          "reuse the model's key/value cache between tokens");
  ParamSchemaEntry length_penalty = Float(
      "length_penalty", 1.0,
      "beam search: score = sum log p / length^length_penalty", -10.0, 10.0);
  s.push_back(
      {"generate",
       "samples after training and `llmsys generate`: `sampler` names a "
       "sampler component whose parameters are keys here too",
       {Str("sampler", "greedy", "sampler component id"),
        Str("prompt", "\n", "text the samples start from"),
        Int("max_tokens", 200, "tokens per sample", 1),
        Int("samples", 1, "how many samples", 0),
        Int("seed", -1, "seed of the sampler (-1: [experiment] seed)", -1),
        use_cache,
        Str("stop", "[]",
            "strings that end a sample, a list (the sample stops before "
            "them)"),
        Int("num_beams", 1, "beam search width (1: use the sampler)", 1),
        length_penalty,
        Str("decoder", "autoregressive",
            "translation: token by token (the sampler or beam search), or "
            "one pass read by greedy CTC decoding (non-autoregressive "
            "models)",
            {"autoregressive", "ctc"})},
       LLMSYS_KIND_SAMPLER,
       /*open=*/false,
       /*string_lists=*/{"stop"}});
  s.push_back(
      {"evaluate",
       "[[evaluate]] entries: `use` names an evaluator component, whose "
       "parameters are keys here too (docs/evaluation.md)",
       {Str("use", std::nullopt, "evaluator component id"),
        Int("every", 0, "steps between evaluations (0: once, after training)",
            0),
        Int("batches", 0,
            "validation batches read (0: all; log-probability and "
            "prediction evaluators)",
            0),
        Int("segments", 20,
            "continuation tasks (text evaluators; translation: sentences "
            "of the split, 0: all)",
            0),
        Str("split", "valid",
            "translation: the sentence pairs translated and scored",
            {"valid", "test"}),
        Str("direction", "forward",
            "translation: source to target, or back (duplex models)",
            {"forward", "reverse"}),
        Int("prompt_tokens", 32,
            "tokens of each task's prompt (text evaluators)", 1),
        Int("max_tokens", 32,
            "tokens of each task's reference and continuation (text "
            "evaluators)",
            1)},
       LLMSYS_KIND_EVALUATOR,
       /*open=*/false,
       /*string_lists=*/{},
       /*array=*/true});
  return s;
}

// ---- TOML values ----

std::string Where(const toml::source_region& r, const std::string& file) {
  return absl::StrCat(file, ":", r.begin.line, ":", r.begin.column);
}

absl::StatusOr<ParamValue> FromNode(const toml::node& n) {
  if (auto v = n.value_exact<bool>()) return ParamValue(*v);
  if (auto v = n.value_exact<int64_t>()) return ParamValue(*v);
  if (auto v = n.value_exact<double>()) return ParamValue(*v);
  if (auto v = n.value_exact<std::string>()) return ParamValue(*v);
  if (const toml::array* a = n.as_array()) {
    std::vector<int64_t> ints;
    std::vector<double> floats;
    bool all_ints = true;
    for (const toml::node& item : *a) {
      if (auto i = item.value_exact<int64_t>()) {
        ints.push_back(*i);
        floats.push_back(static_cast<double>(*i));
      } else if (auto f = item.value_exact<double>()) {
        all_ints = false;
        floats.push_back(*f);
      } else {
        return absl::InvalidArgumentError("a list may hold only numbers here");
      }
    }
    if (all_ints) return ParamValue(ints);
    return ParamValue(floats);
  }
  const char* what = n.is_table()   ? "table"
                     : n.is_array() ? "list"
                                    : "date or time";
  return absl::InvalidArgumentError(
      absl::StrCat("a ", what, " is not a value this key can take"));
}

std::string TomlValue(const ParamValue& v) {
  if (const auto* s = std::get_if<std::string>(&v)) return TomlString(*s);
  return runtime::FormatParamValue(v);
}

// A value of a [[variants]] entry as TOML text, which --set reads back.
absl::StatusOr<std::string> NodeToml(const toml::node& n) {
  if (n.is_table() || n.is_date() || n.is_time() || n.is_date_time())
    return absl::InvalidArgumentError(
        "a table, date or time is not a value a variant can set");
  if (const toml::array* a = n.as_array()) {
    for (const toml::node& item : *a)
      LLMSYS_RETURN_IF_ERROR(NodeToml(item).status());
  }
  return TomlText(n);
}

// The leaves under `n` with their dotted paths: `optimizer.use = "x"` and
// `"optimizer.use" = "x"` both give ("optimizer.use", x).
void FlattenKeys(const toml::node& n, const std::string& path,
                 std::vector<std::pair<std::string, const toml::node*>>* out) {
  if (const toml::table* t = n.as_table()) {
    for (auto&& [k, v] : *t)
      FlattenKeys(v, absl::StrCat(path, ".", std::string(k.str())), out);
    return;
  }
  out->emplace_back(path, &n);
}

// A variant's name names its run folder: letters, digits and . _ - + = , @.
bool IsVariantName(const std::string& name) {
  if (name.empty() || name.size() > 100 || name[0] == '.' || name[0] == '-')
    return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return absl::ascii_isalnum(static_cast<unsigned char>(c)) ||
           std::string_view("._-+=,@").find(c) != std::string_view::npos;
  });
}

// [[variants]]: each entry's name and keys, checked against the schema. The
// keys of a component's section are checked against the component the
// variant names (`optimizer.use = "lion"`), else the experiment's.
absl::StatusOr<std::vector<Variant>> ReadVariants(
    const toml::array& entries, const std::string& file, const Experiment& e,
    const runtime::PluginRegistry& registry) {
  const std::vector<SectionSchema>& schema = ExperimentSchema();
  std::vector<std::string> section_names;
  for (const SectionSchema& s : schema) section_names.push_back(s.name);
  std::vector<Variant> variants;
  for (size_t i = 0; i < entries.size(); ++i) {
    const toml::node& node = *entries.get(i);
    const std::string label = absl::StrCat("[[variants]] #", i + 1);
    const toml::table* entry = node.as_table();
    if (entry == nullptr)
      return absl::InvalidArgumentError(absl::StrCat(
          Where(node.source(), file), ": ", label,
          " must be a table: a name and the keys it sets (docs/compare.md)"));
    const toml::node* name_node = entry->get("name");
    std::optional<std::string> name;
    if (name_node != nullptr) name = name_node->value_exact<std::string>();
    if (!name)
      return absl::InvalidArgumentError(absl::StrCat(
          Where(name_node != nullptr ? name_node->source() : node.source(),
                file),
          ": ", label,
          " needs name = \"...\", a string: its run folder and its column in "
          "the comparison"));
    Variant v;
    v.name = *name;
    v.source.file = file;
    v.source.line = static_cast<int>(name_node->source().begin.line);
    v.source.column = static_cast<int>(name_node->source().begin.column);
    if (!IsVariantName(v.name))
      return absl::InvalidArgumentError(absl::StrCat(
          v.source.Describe(), ": ", label, " name \"", v.name,
          "\": it names a folder; use letters, digits and . _ - + = , @ (not "
          "first: . -), at most 100 characters"));
    for (const Variant& other : variants)
      if (other.name == v.name)
        return absl::InvalidArgumentError(absl::StrCat(
            v.source.Describe(), ": [[variants]] name \"", v.name,
            "\" is used twice (also at ", other.source.Describe(), ")"));
    std::vector<std::pair<std::string, const toml::node*>> keys;
    for (auto&& [k, value] : *entry)
      if (k.str() != "name") FlattenKeys(value, std::string(k.str()), &keys);
    // The components the variant itself names: its keys of their sections
    // are theirs.
    std::map<std::string, std::string> uses;
    for (const auto& [path, value] : keys) {
      const size_t dot = path.find('.');
      for (const SectionSchema& s : schema)
        if (s.component_kind != 0 && !s.array && dot != std::string::npos &&
            path.substr(0, dot) == s.name &&
            path.substr(dot + 1) == s.keys[0].name)
          if (auto id = value->value_exact<std::string>()) uses[s.name] = *id;
    }
    for (const auto& [path, value] : keys) {
      const std::string what = absl::StrCat(Where(value->source(), file),
                                            ": [[variants]] '", v.name, "': ");
      const size_t dot = path.find('.');
      if (dot == std::string::npos)
        return absl::InvalidArgumentError(
            absl::StrCat(what, "'", path,
                         "' is not section.key (e.g. train.steps = 100, or "
                         "\"ops.attention\" = \"naive\")"));
      const std::string section = path.substr(0, dot);
      const std::string key = path.substr(dot + 1);
      if (section == "experiment")
        return absl::InvalidArgumentError(absl::StrCat(
            what, path,
            ": [experiment] keys are not varied: every variant runs with the "
            "file's seed, and `llmsys compare` names and places the runs"));
      if (section == "plugins")
        return absl::InvalidArgumentError(absl::StrCat(
            what, path,
            ": [plugins] is not varied: list the plugin folders of every "
            "variant in [plugins] paths (or pass --plugin-dir)"));
      const SectionSchema* s = nullptr;
      for (const SectionSchema& candidate : schema)
        if (candidate.name == section) s = &candidate;
      if (s == nullptr)
        return absl::InvalidArgumentError(
            absl::StrCat(what, "unknown section '", section, "' in '", path,
                         "'", core::DidYouMean(section, section_names),
                         "; sections: ", absl::StrJoin(section_names, ", ")));
      if (s->array)
        return absl::InvalidArgumentError(absl::StrCat(
            what, path, ": [[", section, "]] entries are not varied"));
      if (s->open) {  // [ops]
        if (registry.FindOpContract(key) == nullptr) {
          std::vector<std::string> ops;
          for (const runtime::OpContract& c : runtime::StandardOpContracts())
            ops.push_back(c.name);
          return absl::InvalidArgumentError(
              absl::StrCat(what, "[ops] unknown op '", key, "' in '", path, "'",
                           core::DidYouMean(key, ops)));
        }
        if (!value->value_exact<std::string>())
          return absl::InvalidArgumentError(absl::StrCat(
              what, path, " must be an implementation name in quotes, e.g. \"",
              path, "\" = \"reference\""));
      } else {
        runtime::ParamSchema allowed = s->keys;
        const runtime::Component* component = nullptr;
        if (s->component_kind != 0) {
          if (auto use = uses.find(section); use != uses.end()) {
            absl::StatusOr<const runtime::Component*> found =
                registry.Find(s->component_kind, use->second, /*any device*/ 0);
            if (!found.ok())
              return absl::Status(
                  found.status().code(),
                  absl::StrCat(what, section, ".", s->keys[0].name, " = \"",
                               use->second, "\": ", found.status().message()));
            component = *found;
          } else {
            component = section == "model"       ? e.model()
                        : section == "optimizer" ? e.optimizer()
                                                 : e.sampler();
          }
          if (component != nullptr)
            for (const ParamSchemaEntry& p : component->params)
              allowed.push_back(p);
        }
        std::vector<std::string> names;
        const ParamSchemaEntry* entry_schema = nullptr;
        for (const ParamSchemaEntry& k : allowed) {
          names.push_back(k.name);
          if (k.name == key) entry_schema = &k;
        }
        if (entry_schema == nullptr)
          return absl::InvalidArgumentError(absl::StrCat(
              what, "unknown key '", path, "'", core::DidYouMean(key, names),
              " (keys of [", section, "]",
              component != nullptr ? absl::StrCat(" with ", component->id)
                                   : std::string(),
              ": ", absl::StrJoin(names, ", "), ")"));
        const bool list =
            std::find(s->string_lists.begin(), s->string_lists.end(), key) !=
            s->string_lists.end();
        if (s->component_kind != 0 && key == s->keys[0].name) {
          if (!value->value_exact<std::string>())
            return absl::InvalidArgumentError(
                absl::StrCat(what, path, " must be a component id in quotes"));
        } else if (!list) {
          absl::StatusOr<ParamValue> raw = FromNode(*value);
          if (raw.ok()) raw = runtime::CheckParamValue(*entry_schema, *raw);
          if (!raw.ok())
            return absl::InvalidArgumentError(
                absl::StrCat(what, path, ": ", raw.status().message(), " (",
                             runtime::TypeName(entry_schema->type), ": ",
                             entry_schema->doc, ")"));
        }
      }
      absl::StatusOr<std::string> text = NodeToml(*value);
      if (!text.ok())
        return absl::InvalidArgumentError(
            absl::StrCat(what, path, ": ", text.status().message()));
      v.sets.emplace_back(path, *std::move(text));
    }
    variants.push_back(std::move(v));
  }
  return variants;
}

// [plugins] pins = { "file.so" = "<sha256>", ... }: read and checked for
// form (64 hex digits); `source_of(key, node)` says where a value came from.
absl::StatusOr<std::vector<PluginPin>> ReadPins(
    const toml::node& node, const Source& where,
    const std::function<Source(const std::string&, const toml::node&)>&
        source_of) {
  const toml::table* table = node.as_table();
  if (table == nullptr)
    return absl::InvalidArgumentError(absl::StrCat(
        where.Describe(),
        ": [plugins] pins must be a table of plugin file = \"sha256\", e.g. "
        "pins = { \"flash_attention.so\" = \"3f5a...e1\" }"));
  std::vector<PluginPin> pins;
  for (auto&& [k, value] : *table) {
    const std::string file(k.str());
    const Source at = source_of(file, value);
    if (file.empty())
      return absl::InvalidArgumentError(
          absl::StrCat(at.Describe(),
                       ": [plugins] pins: an empty file name; name a plugin "
                       "file (\"flash_attention.so\") or its path"));
    std::optional<std::string> hex = value.value_exact<std::string>();
    if (!hex || !core::IsSha256Hex(*hex))
      return absl::InvalidArgumentError(absl::StrCat(
          at.Describe(), ": [plugins] pins: \"", file,
          "\" must be a sha256, 64 hex digits, as a string (got ",
          hex ? absl::StrCat("\"", *hex, "\", ", hex->size(), " characters")
              : "a value that is not a string",
          "); `llmsys plugins check FILE` prints a file's sha256"));
    pins.push_back({file, {}, absl::AsciiStrToLower(*hex), at});
  }
  return pins;
}

// Every pin names a loaded file (by name, or by path when it has a '/')
// whose bytes have the pinned sha256.
absl::Status CheckPins(const std::vector<PluginPin>& pins,
                       const runtime::PluginRegistry& registry) {
  auto same_file = [](const fs::path& a, const fs::path& b) {
    std::error_code ec;
    return fs::weakly_canonical(a, ec) == fs::weakly_canonical(b, ec);
  };
  auto matches = [&](const PluginPin& pin, const fs::path& file) {
    return pin.path.empty() ? file.filename() == pin.file
                            : same_file(file, pin.path);
  };
  for (const PluginPin& pin : pins) {
    const std::string what =
        absl::StrCat(pin.source.Describe(), ": [plugins] pins: ", pin.file);
    bool loaded = false;
    for (const auto& plugin : registry.plugins()) {
      if (!matches(pin, plugin->path())) continue;
      loaded = true;
      if (plugin->sha256() != pin.sha256)
        return absl::FailedPreconditionError(absl::StrCat(
            what, " has sha256 ", plugin->sha256(), ", the experiment pins ",
            pin.sha256, " (file ", plugin->path().string(),
            "; a different build of the plugin? rebuild the pinned version, "
            "or update the pin if this one is meant)"));
    }
    if (loaded) continue;
    for (const runtime::RejectedFile& r : registry.rejected()) {
      if (matches(pin, r.path))
        return absl::FailedPreconditionError(absl::StrCat(
            what, " is pinned but could not be loaded: ", r.reason));
    }
    std::vector<std::string> dirs;
    for (const runtime::SearchDir& d : registry.search_path())
      dirs.push_back(d.path.string());
    return absl::NotFoundError(absl::StrCat(
        what, " is pinned but ",
        pin.path.empty()
            ? absl::StrCat("no plugin folder provides a file of that name "
                           "(searched: ",
                           dirs.empty() ? "none" : absl::StrJoin(dirs, ", "),
                           "); add its folder to [plugins] paths or "
                           "--plugin-dir")
            : absl::StrCat(pin.path.string(),
                           " is not a loaded plugin file; add its folder to "
                           "[plugins] paths or --plugin-dir")));
  }
  return absl::OkStatus();
}

}  // namespace

std::string Source::Describe() const {
  if (!set.empty()) return "--set " + set;
  if (!file.empty()) return absl::StrCat(file, ":", line, ":", column);
  return "default";
}

const std::vector<SectionSchema>& ExperimentSchema() {
  static const std::vector<SectionSchema>* schema =
      new std::vector<SectionSchema>(MakeSchema());
  return *schema;
}

absl::StatusOr<Experiment> Experiment::Load(
    const fs::path& file, const std::vector<std::string>& overrides,
    runtime::PluginRegistry& registry) {
  std::ifstream in(file, std::ios::binary);
  if (!in)
    return absl::NotFoundError(
        absl::StrCat(file.string(), ": cannot open the experiment file"));
  std::stringstream text;
  text << in.rdbuf();
  LLMSYS_ASSIGN_OR_RETURN(
      Experiment e, Parse(text.str(), file.string(), overrides, registry));
  return e;
}

absl::StatusOr<Experiment> Experiment::Parse(
    std::string_view text, const std::string& name,
    const std::vector<std::string>& overrides,
    runtime::PluginRegistry& registry) {
  Experiment e;
  e.file_ = name;
  toml::table root;
  try {
    root = toml::parse(text, name);
  } catch (const toml::parse_error& err) {
    return absl::InvalidArgumentError(absl::StrCat(
        Where(err.source(), name), ": ", std::string(err.description())));
  }

  // --set section.key=value
  std::map<std::pair<std::string, std::string>, std::string> set_by;
  // The file's string values that a --set replaced: a swapped component's
  // id, whose parameters the file may still list (left out below).
  std::map<std::pair<std::string, std::string>, std::string> replaced;
  for (const std::string& o : overrides) {
    const size_t eq = o.find('=');
    const size_t dot = o.find('.');
    if (eq == std::string::npos || dot == std::string::npos || dot > eq ||
        o.find('.', dot + 1) < eq)
      return absl::InvalidArgumentError(absl::StrCat(
          "--set ", o, ": expected section.key=value (e.g. train.steps=100)"));
    const std::string section = o.substr(0, dot);
    const std::string key = o.substr(dot + 1, eq - dot - 1);
    const std::string value = o.substr(eq + 1);
    toml::table* t = root[section].as_table();
    if (t == nullptr) {
      if (root.contains(section))
        return absl::InvalidArgumentError(
            absl::StrCat("--set ", o, ": '", section, "' is not a section"));
      root.insert_or_assign(section, toml::table{});
      t = root[section].as_table();
    }
    if (const toml::node* before = t->get(key);
        before != nullptr && !set_by.contains({section, key})) {
      if (auto id = before->value_exact<std::string>())
        replaced[{section, key}] = *id;
    }
    try {
      toml::table parsed = toml::parse("v = " + value);
      parsed.get("v")->visit(
          [&](auto&& node) { t->insert_or_assign(key, node); });
    } catch (const toml::parse_error&) {
      t->insert_or_assign(key, value);  // not TOML: a plain string
    }
    set_by[{section, key}] = o;
  }
  // Where the value (or key) `n` was written, or the --set that gave it.
  auto source_of = [&](const std::string& section, const std::string& key,
                       const auto& n) {
    Source s;
    auto it = set_by.find({section, key});
    if (key.empty() && n.source().begin.line == 0) {
      // A section that only --set created.
      it = set_by.lower_bound({section, ""});
      if (it != set_by.end() && it->first.first != section) it = set_by.end();
    }
    if (it != set_by.end()) {
      s.set = it->second;
    } else {
      s.file = name;
      s.line = static_cast<int>(n.source().begin.line);
      s.column = static_cast<int>(n.source().begin.column);
    }
    return s;
  };

  // Files written before [[evaluate]] entries existed (and the run
  // directories they made) had [evaluate] every/batches for the validation
  // loss: read those as [train] eval_every/eval_batches.
  if (toml::table* legacy = root["evaluate"].as_table()) {
    if (root["train"].as_table() == nullptr)
      root.insert_or_assign("train", toml::table{});
    toml::table* train = root["train"].as_table();
    for (auto&& [k, node] : *legacy) {
      const std::string key(k.str());
      if (key != "every" && key != "batches")
        return absl::InvalidArgumentError(absl::StrCat(
            source_of("evaluate", key, node).Describe(),
            ": [evaluate] is a list of evaluator entries now, each written "
            "[[evaluate]] with `use = \"perplexity\"` (or bleu, chrf, "
            "rouge, ...); the validation loss is [train] eval_every / "
            "eval_batches"));
      if (!train->contains("eval_" + key))
        node.visit([&](auto&& value) {
          train->insert_or_assign("eval_" + key, value);
        });
    }
    root.erase("evaluate");
    core::Log(core::LogLevel::kWarning,
              absl::StrCat(name,
                           ": [evaluate] every/batches are [train] "
                           "eval_every/eval_batches now; read as those"));
  }

  const std::vector<SectionSchema>& schema = ExperimentSchema();
  std::vector<std::string> section_names;
  for (const SectionSchema& s : schema) section_names.push_back(s.name);
  section_names.push_back("variants");  // [[variants]]: read at the end
  for (auto&& [k, node] : root) {
    const std::string section(k.str());
    bool known = false;
    for (const std::string& s : section_names) known = known || s == section;
    const Source where = source_of(section, "", node);
    if (section == "variants") {
      if (!node.is_array())
        return absl::InvalidArgumentError(absl::StrCat(
            where.Describe(),
            ": 'variants' must be a list of entries, each written "
            "[[variants]] with a name and the keys it sets (docs/compare.md)"));
      continue;
    }
    if (!known)
      return absl::InvalidArgumentError(
          absl::StrCat(where.Describe(), ": unknown section [", section, "]",
                       core::DidYouMean(section, section_names),
                       "; sections: ", absl::StrJoin(section_names, ", ")));
    const bool array = std::any_of(
        schema.begin(), schema.end(),
        [&](const SectionSchema& s) { return s.name == section && s.array; });
    if (array && !node.is_array())
      return absl::InvalidArgumentError(absl::StrCat(
          where.Describe(), ": '", section, "' must be a list of entries, ",
          "each written [[", section, "]]"));
    if (!array && !node.is_table())
      return absl::InvalidArgumentError(
          absl::StrCat(where.Describe(), ": '", section,
                       "' must be a section ([", section, "]), not a value"));
  }

  // [plugins] paths first: [model] and [optimizer] may come from them.
  if (const toml::table* plugins = root["plugins"].as_table()) {
    for (auto&& [k, node] : *plugins) {
      const std::string key(k.str());
      const Source where = source_of("plugins", key, node);
      if (key == "pins") {
        LLMSYS_ASSIGN_OR_RETURN(
            e.plugin_pins_,
            ReadPins(node, where,
                     [&](const std::string& pin_key, const toml::node& n) {
                       Source s = source_of("plugins", key, n);
                       if (s.set.empty()) return s;
                       s.set = absl::StrCat(s.set, " (", pin_key, ")");
                       return s;
                     }));
        for (PluginPin& pin : e.plugin_pins_) {
          if (pin.file.find('/') == std::string::npos) continue;
          pin.path = fs::absolute(e.ResolvePath(pin.file)).lexically_normal();
        }
        continue;
      }
      if (key != "paths")
        return absl::InvalidArgumentError(absl::StrCat(
            where.Describe(), ": [plugins] unknown key '", key, "'",
            core::DidYouMean(key, {"paths", "pins"}),
            " (keys: paths, a list of folders; pins, file = \"sha256\")"));
      const toml::array* paths = node.as_array();
      std::vector<std::string> items;
      if (paths != nullptr) {
        for (const toml::node& p : *paths) {
          if (auto s = p.value_exact<std::string>()) items.push_back(*s);
        }
      }
      if (paths == nullptr || items.size() != paths->size())
        return absl::InvalidArgumentError(absl::StrCat(
            where.Describe(),
            ": [plugins] paths must be a list of folder names, e.g. "
            "paths = [\"plugins/team7\"]"));
      for (const std::string& p : items) {
        const fs::path dir = e.ResolvePath(p);
        LLMSYS_RETURN_IF_ERROR(registry.AddSearchDir(
            dir, absl::StrCat(where.Describe(), " [plugins] paths")));
        e.plugin_paths_.push_back(dir);
      }
    }
    registry.LoadAll();
    LLMSYS_RETURN_IF_ERROR(CheckPins(e.plugin_pins_, registry));
  }

  for (const SectionSchema& s : schema) {
    if (s.name == "plugins") continue;
    const toml::table* table = root[s.name].as_table();
    if (s.open) {  // [ops]
      if (table == nullptr) continue;
      std::vector<std::string> ops;
      for (const runtime::OpContract& c : runtime::StandardOpContracts())
        ops.push_back(c.name);
      for (auto&& [k, node] : *table) {
        const std::string op(k.str());
        const Source where = source_of(s.name, op, node);
        if (registry.FindOpContract(op) == nullptr)
          return absl::InvalidArgumentError(absl::StrCat(
              source_of(s.name, op, k).Describe(), ": [ops] unknown op '", op,
              "'", core::DidYouMean(op, ops)));
        auto impl = node.value_exact<std::string>();
        if (!impl)
          return absl::InvalidArgumentError(
              absl::StrCat(where.Describe(), ": [ops] ", op,
                           " must be an implementation name in quotes, e.g. ",
                           op, " = \"reference\""));
        e.ops_[op] = *impl;
        e.ops_sources_[op] = where;
      }
      continue;
    }
    // Each table of the section ([[evaluate]] has one per entry).
    std::vector<std::pair<const toml::table*, std::string>> tables;
    if (s.array) {
      const toml::array* entries = root[s.name].as_array();
      for (size_t i = 0; entries != nullptr && i < entries->size(); ++i) {
        const toml::table* entry = entries->get(i)->as_table();
        if (entry == nullptr)
          return absl::InvalidArgumentError(
              absl::StrCat(Where(entries->get(i)->source(), name), ": [[",
                           s.name, "]] entries must be tables"));
        tables.emplace_back(entry, absl::StrCat("[[", s.name, "]] #", i + 1));
      }
    } else {
      tables.emplace_back(table, absl::StrCat("[", s.name, "]"));
    }
    for (const auto& [table, label] : tables) {
      // The keys this section accepts: the host's, plus the component's.
      ParamSchema keys = s.keys;
      const runtime::Component* component = nullptr;
      // The component of the file that a --set swapped out, if any.
      const runtime::Component* swapped_out = nullptr;
      // The key naming the component: `use`, or [generate]'s `sampler`.
      const std::string use_key =
          s.component_kind != 0 ? s.keys[0].name : std::string();
      if (s.component_kind != 0) {
        Setting use;
        use.source.file = "";
        std::optional<std::string> id;
        if (table != nullptr) {
          if (const toml::node* n = table->get(use_key)) {
            use.source = source_of(s.name, use_key, *n);
            id = n->value_exact<std::string>();
            if (!id)
              return absl::InvalidArgumentError(
                  absl::StrCat(use.source.Describe(), ": ", label, " ", use_key,
                               " must be a component id in quotes"));
          }
        }
        if (!id) {
          if (!s.keys[0].default_value)
            return absl::InvalidArgumentError(
                absl::StrCat(name, ": ", label, " needs `", use_key,
                             " = \"...\"` naming the ",
                             runtime::KindName(s.component_kind), " to use"));
          id = std::get<std::string>(*s.keys[0].default_value);
        }
        absl::StatusOr<const runtime::Component*> found =
            registry.Find(s.component_kind, *id, /*any device*/ 0);
        // The default sampler not loaded is not an error here (a test's
        // registry, a file that never generates): sampler() is null then and
        // the host asks again when it generates.
        const bool optional =
            s.component_kind == LLMSYS_KIND_SAMPLER &&
            s.keys[0].default_value &&
            *id == std::get<std::string>(*s.keys[0].default_value);
        if (!found.ok() && !(optional && absl::IsNotFound(found.status())))
          return absl::Status(
              found.status().code(),
              absl::StrCat(use.source.Describe(), ": ", label, " ", use_key,
                           " = \"", *id, "\": ", found.status().message()));
        if (found.ok()) component = *found;
        if (auto was = replaced.find({s.name, use_key});
            was != replaced.end() && was->second != *id) {
          absl::StatusOr<const runtime::Component*> old =
              registry.Find(s.component_kind, was->second, /*any device*/ 0);
          if (old.ok()) swapped_out = *old;
        }
        if (component != nullptr) {
          for (const ParamSchemaEntry& p : component->params) {
            for (const ParamSchemaEntry& host : s.keys)
              if (host.name == p.name)
                return absl::InvalidArgumentError(absl::StrCat(
                    use.source.Describe(), ": ", label, " ", use_key, " = \"",
                    *id, "\": its parameter '", p.name, "' has the name of a [",
                    s.name, "] key of the host; the plugin must rename it"));
            keys.push_back(p);
          }
        }
        if (s.component_kind == LLMSYS_KIND_MODEL) e.model_ = component;
        if (s.component_kind == LLMSYS_KIND_OPTIMIZER) e.optimizer_ = component;
        if (s.component_kind == LLMSYS_KIND_SAMPLER) e.sampler_ = component;
      }
      std::vector<std::string> key_names;
      for (const ParamSchemaEntry& k : keys) key_names.push_back(k.name);
      std::vector<std::pair<std::string, Setting>> settings;
      if (table != nullptr) {
        for (auto&& [k, node] : *table) {
          const std::string key(k.str());
          const Source where = source_of(s.name, key, node);
          const Source key_where = source_of(s.name, key, k);
          const ParamSchemaEntry* entry = nullptr;
          for (const ParamSchemaEntry& candidate : keys)
            if (candidate.name == key) entry = &candidate;
          if (entry == nullptr && swapped_out != nullptr && where.set.empty() &&
              std::any_of(
                  swapped_out->params.begin(), swapped_out->params.end(),
                  [&](const ParamSchemaEntry& p) { return p.name == key; })) {
            core::Log(
                core::LogLevel::kInfo,
                absl::StrCat(where.Describe(), ": ", label, " ", key,
                             " is a parameter of ", swapped_out->id, ", which ",
                             source_of(s.name, use_key, k).Describe(),
                             " swapped out; left out"));
            continue;
          }
          if (entry == nullptr)
            return absl::InvalidArgumentError(absl::StrCat(
                key_where.Describe(), ": ", label, " unknown key '", key, "'",
                core::DidYouMean(key, key_names),
                component != nullptr
                    ? absl::StrCat(" (keys: ", absl::StrJoin(key_names, ", "),
                                   "; `llmsys plugins describe ", component->id,
                                   "` explains ", component->id, "'s)")
                    : absl::StrCat(" (keys: ", absl::StrJoin(key_names, ", "),
                                   ")")));
          if (std::find(s.string_lists.begin(), s.string_lists.end(), key) !=
              s.string_lists.end()) {
            // A list of strings (or one string): kept as its TOML text, the
            // strings themselves in string_lists_.
            std::vector<std::string> items;
            bool strings = true;
            if (auto one = node.value_exact<std::string>()) {
              strings = !one->empty();
              items.push_back(*one);
            } else if (const toml::array* a = node.as_array()) {
              for (const toml::node& item : *a) {
                auto text = item.value_exact<std::string>();
                strings = strings && text.has_value() && !text->empty();
                if (text) items.push_back(*text);
              }
            } else {
              strings = false;
            }
            if (!strings)
              return absl::InvalidArgumentError(
                  absl::StrCat(where.Describe(), ": ", label, " ", key,
                               " must be a list of non-empty strings, e.g. ",
                               key, " = [\"\\n\\n\"] (", entry->doc, ")"));
            std::vector<std::string> quoted;
            for (const std::string& item : items)
              quoted.push_back(TomlString(item));
            e.string_lists_[s.name][key] = items;
            settings.push_back(
                {key, Setting{ParamValue(absl::StrCat(
                                  "[", absl::StrJoin(quoted, ", "), "]")),
                              where, false}});
            continue;
          }
          absl::StatusOr<ParamValue> raw = FromNode(node);
          if (!raw.ok())
            return absl::InvalidArgumentError(
                absl::StrCat(where.Describe(), ": ", label, " ", key,
                             ": expected ", runtime::TypeName(entry->type),
                             " (", entry->doc, "); ", raw.status().message()));
          absl::StatusOr<ParamValue> checked =
              runtime::CheckParamValue(*entry, *raw);
          if (!checked.ok())
            return absl::InvalidArgumentError(absl::StrCat(
                where.Describe(), ": ", label, " ", checked.status().message(),
                " (", entry->doc, ")"));
          settings.push_back({key, Setting{*std::move(checked), where, false}});
        }
      }
      // Schema order, defaults filled; required keys present.
      std::vector<std::pair<std::string, Setting>> ordered;
      for (const ParamSchemaEntry& k : keys) {
        auto it =
            std::find_if(settings.begin(), settings.end(),
                         [&](const auto& p) { return p.first == k.name; });
        if (it != settings.end()) {
          ordered.push_back(*it);
        } else if (k.default_value) {
          ordered.push_back({k.name, Setting{*k.default_value, {}, true}});
        } else if (!(s.component_kind != 0 && k.name == use_key) &&
                   !(s.component_kind == LLMSYS_KIND_MODEL &&
                     k.name == "vocab_size")) {  // the host fills it
          return absl::InvalidArgumentError(
              absl::StrCat(name, ": ", label, " needs '", k.name, "' (",
                           runtime::TypeName(k.type), ": ", k.doc, ")"));
        }
      }
      if (s.component_kind != 0 && component != nullptr &&
          !std::any_of(ordered.begin(), ordered.end(),
                       [&](const auto& p) { return p.first == use_key; }))
        ordered.insert(ordered.begin(),
                       {use_key, Setting{component->id, {}, true}});
      if (s.array) {
        e.evaluations_.push_back(EvaluateEntry(component, std::move(ordered)));
      } else {
        e.sections_[s.name] = std::move(ordered);
      }
    }
  }
  // [[variants]] last: their keys are checked against the components above.
  if (const toml::array* variants = root["variants"].as_array()) {
    LLMSYS_ASSIGN_OR_RETURN(e.variants_,
                            ReadVariants(*variants, name, e, registry));
    std::vector<std::string> names;
    for (const Variant& v : e.variants_) names.push_back(v.name);
    core::Log(core::LogLevel::kDebug,
              absl::StrCat(name, ": [[variants]] ", absl::StrJoin(names, ", "),
                           " checked; `llmsys compare` runs them, `llmsys "
                           "run` does not"));
  }
  return e;
}

const Setting& Experiment::Get(const std::string& section,
                               const std::string& key) const {
  auto it = sections_.find(section);
  if (it != sections_.end()) {
    for (const auto& [k, s] : it->second)
      if (k == key) return s;
  }
  std::abort();  // a key the schema does not declare: a programming error
}

bool Experiment::Has(const std::string& section, const std::string& key) const {
  auto it = sections_.find(section);
  if (it == sections_.end()) return false;
  for (const auto& [k, s] : it->second)
    if (k == key) return true;
  return false;
}

int64_t Experiment::Int(const std::string& section,
                        const std::string& key) const {
  return std::get<int64_t>(Get(section, key).value);
}
double Experiment::Float(const std::string& section,
                         const std::string& key) const {
  return std::get<double>(Get(section, key).value);
}
bool Experiment::Bool(const std::string& section,
                      const std::string& key) const {
  return std::get<bool>(Get(section, key).value);
}
std::string Experiment::String(const std::string& section,
                               const std::string& key) const {
  return std::get<std::string>(Get(section, key).value);
}

EvaluateEntry::EvaluateEntry(const runtime::Component* c,
                             std::vector<std::pair<std::string, Setting>> s)
    : component(c), settings(std::move(s)) {
  for (const auto& [key, setting] : settings) {
    const ParamValue& v = setting.value;
    if (key == "every") {
      every = std::get<int64_t>(v);
    } else if (key == "batches") {
      batches = std::get<int64_t>(v);
    } else if (key == "segments") {
      segments = std::get<int64_t>(v);
    } else if (key == "prompt_tokens") {
      prompt_tokens = std::get<int64_t>(v);
    } else if (key == "max_tokens") {
      max_tokens = std::get<int64_t>(v);
    } else if (key == "split") {
      split = std::get<std::string>(v);
    } else if (key == "direction") {
      reverse = std::get<std::string>(v) == "reverse";
    } else if (key != "use") {
      params.emplace_back(key, v);
    }
  }
}

bool EvaluateEntry::ReadsText() const {
  return (component->As<llmsys_evaluator_t>()->inputs & LLMSYS_EVAL_TEXT) != 0;
}

std::string EvaluateKeyMisfit(const EvaluateEntry& entry,
                              const std::string& key, bool translation) {
  if (!translation && (key == "split" || key == "direction"))
    return absl::StrCat("'", key, "' applies to translation tasks only");
  if (translation && key == "prompt_tokens")
    return "'prompt_tokens' does not apply to translation (the source "
           "sentence is the prompt)";
  if (key == "window" || key == "stride")
    return absl::StrCat("'", key,
                        "' is stated by the host (the run's block_size), not "
                        "set");
  const bool text = entry.ReadsText();
  const bool text_key =
      key == "segments" || key == "prompt_tokens" || key == "max_tokens";
  if ((text && key == "batches") || (!text && text_key))
    return absl::StrCat(
        "'", key, "' does not apply to it (", text ? "a text" : "a non-text",
        " evaluator: ",
        text ? "segments, prompt_tokens, max_tokens" : "batches", " apply)");
  return "";
}

std::vector<std::string> Experiment::Strings(const std::string& section,
                                             const std::string& key) const {
  auto s = string_lists_.find(section);
  if (s == string_lists_.end()) return {};
  auto k = s->second.find(key);
  return k == s->second.end() ? std::vector<std::string>{} : k->second;
}

std::vector<std::pair<std::string, ParamValue>> Experiment::ComponentParams(
    const std::string& section) const {
  std::vector<std::pair<std::string, ParamValue>> out;
  auto it = sections_.find(section);
  if (it == sections_.end()) return out;
  const runtime::Component* c = section == "model"       ? model_
                                : section == "optimizer" ? optimizer_
                                : section == "generate"  ? sampler_
                                                         : nullptr;
  for (const auto& [k, s] : it->second) {
    if (c == nullptr) continue;
    for (const ParamSchemaEntry& p : c->params)
      if (p.name == k) out.emplace_back(k, s.value);
  }
  return out;
}

void Experiment::Set(const std::string& section, const std::string& key,
                     ParamValue value) {
  auto& settings = sections_[section];
  for (auto& [k, s] : settings) {
    if (k == key) {
      s = Setting{std::move(value), Source{.set = "(filled by the host)"},
                  false};
      return;
    }
  }
  settings.push_back(
      {key, Setting{std::move(value), Source{.set = "(filled by the host)"},
                    false}});
}

fs::path Experiment::ResolvePath(const std::string& path) const {
  const fs::path p(path);
  if (p.is_absolute() || fs::exists(p) || file_.empty()) return p;
  const fs::path beside = file_.parent_path() / p;
  return fs::exists(beside) ? beside : p;
}

std::string Experiment::ResolvedToml() const {
  std::ostringstream out;
  out << "# The resolved configuration: every key, defaults filled.\n";
  for (const SectionSchema& s : ExperimentSchema()) {
    if (s.name == "plugins") {
      if (plugin_paths_.empty() && plugin_pins_.empty()) continue;
      out << "\n[plugins]\n";
      if (!plugin_paths_.empty()) {
        out << "paths = [";
        for (size_t i = 0; i < plugin_paths_.size(); ++i)
          out << (i ? ", " : "") << TomlString(plugin_paths_[i].string());
        out << "]\n";
      }
      if (!plugin_pins_.empty()) {
        // Paths absolute: the resolved file lives in the run directory.
        out << "pins = { ";
        for (size_t i = 0; i < plugin_pins_.size(); ++i) {
          const PluginPin& pin = plugin_pins_[i];
          out << (i ? ", " : "")
              << TomlString(pin.path.empty() ? pin.file : pin.path.string())
              << " = " << TomlString(pin.sha256);
        }
        out << " }\n";
      }
      continue;
    }
    if (s.open) {
      if (ops_.empty()) continue;
      out << "\n[ops]\n";
      for (const auto& [op, impl] : ops_)
        out << op << " = " << TomlString(impl) << "\n";
      continue;
    }
    if (s.array) {
      const bool translation = String("data", "task") == "translation";
      for (const EvaluateEntry& entry : evaluations_) {
        out << "\n[[" << s.name << "]]\n";
        for (const auto& [k, setting] : entry.settings) {
          if (setting.is_default &&
              !EvaluateKeyMisfit(entry, k, translation).empty())
            continue;
          out << k << " = " << TomlValue(setting.value);
          if (setting.is_default) out << "  # default";
          out << "\n";
        }
      }
      continue;
    }
    auto it = sections_.find(s.name);
    if (it == sections_.end()) continue;
    out << "\n[" << s.name << "]\n";
    for (const auto& [k, setting] : it->second) {
      const bool list = std::find(s.string_lists.begin(), s.string_lists.end(),
                                  k) != s.string_lists.end();
      out << k << " = "
          << (list ? std::get<std::string>(setting.value)
                   : TomlValue(setting.value));
      if (setting.is_default) out << "  # default";
      out << "\n";
    }
  }
  return out.str();
}

}  // namespace llmsys::config
