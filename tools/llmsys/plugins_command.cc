#include "tools/llmsys/plugins_command.h"

#include <algorithm>
#include <boost/program_options.hpp>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "framework/conformance/conformance.h"
#include "framework/core/logging.h"
#include "framework/core/suggest.h"
#include "framework/runtime/param_schema.h"
#include "framework/runtime/registry.h"

namespace llmsys::cli {
namespace {

namespace po = boost::program_options;
namespace fs = std::filesystem;
using runtime::Component;
using runtime::PluginRegistry;

// Left-aligned columns, two spaces apart; the last column is not padded.
std::string Table(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> width;
  for (const auto& row : rows) {
    width.resize(std::max(width.size(), row.size()));
    for (size_t i = 0; i < row.size(); ++i)
      width[i] = std::max(width[i], row[i].size());
  }
  std::ostringstream out;
  for (const auto& row : rows) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size())
        line += std::string(width[i] - row[i].size() + 2, ' ');
    }
    line.erase(line.find_last_not_of(' ') + 1);
    out << line << "\n";
  }
  return out.str();
}

struct Common {
  std::vector<std::string> plugin_dirs;
  bool verbose = false;
  bool help = false;
};

void AddCommon(po::options_description& desc, Common& common) {
  desc.add_options()("help,h", po::bool_switch(&common.help), "show this help")(
      "plugin-dir", po::value(&common.plugin_dirs)->composing(),
      "also load plugins from DIR (repeatable; after the built-in folder and "
      "LLMSYS_PLUGIN_PATH)")("verbose,v", po::bool_switch(&common.verbose),
                             "print the search order and every file tried");
}

// Parses `args`; positional arguments land in `positional`.
bool Parse(const std::vector<std::string>& args,
           const po::options_description& desc,
           const std::string& positional_name, int max_positional,
           std::vector<std::string>* positional) {
  po::options_description all;
  all.add(desc);
  all.add_options()(positional_name.c_str(),
                    po::value<std::vector<std::string>>(positional));
  po::positional_options_description pos;
  pos.add(positional_name.c_str(), max_positional);
  po::variables_map vm;
  po::store(po::command_line_parser(args).options(all).positional(pos).run(),
            vm);
  po::notify(vm);
  return true;
}

// The search path (built-in, LLMSYS_PLUGIN_PATH, --plugin-dir), loaded.
// Returns false after printing the error when a folder is wrong.
bool LoadRegistry(const Common& common, PluginRegistry* registry) {
  if (common.verbose) core::SetMinLogLevel(core::LogLevel::kDebug);
  absl::Status s = registry->AddDefaultSearchDirs();
  for (const std::string& dir : common.plugin_dirs) {
    if (!s.ok()) break;
    s = registry->AddSearchDir(dir, "--plugin-dir");
  }
  if (!s.ok()) {
    std::cerr << "error: " << s.message() << "\n";
    return false;
  }
  if (common.verbose) {
    std::cerr << "plugin search order:\n";
    int i = 1;
    for (const auto& d : registry->search_path())
      std::cerr << "  " << i++ << ". " << d.path.string() << "  (" << d.origin
                << ")\n";
  }
  registry->LoadAll();
  return true;
}

// Prints rejected files, conflicts and unknown op contracts to stderr.
// Returns the number of problems.
int ReportProblems(const PluginRegistry& registry) {
  int problems = 0;
  for (const auto& r : registry.rejected()) {
    std::cerr << "error: plugin not loaded: " << r.reason << "\n";
    ++problems;
  }
  for (const auto& c : registry.Conflicts()) {
    std::cerr << "error: " << runtime::KindName(c.kind) << " '" << c.id
              << "' is provided by several plugins:";
    for (const Component* p : c.providers)
      std::cerr << " " << p->plugin->path().string();
    std::cerr << "; experiments must say which one to use\n";
    ++problems;
  }
  for (const auto& [component, reason] : registry.UnknownContracts()) {
    std::cerr << "error: " << reason << "\n";
    ++problems;
  }
  return problems;
}

int List(const std::vector<std::string>& args) {
  Common common;
  bool json = false;
  po::options_description desc(
      "usage: llmsys plugins [--json] [--plugin-dir DIR]... [--verbose]\n"
      "       llmsys plugins describe ID\n"
      "       llmsys plugins check FILE\n\n"
      "Lists every component of every plugin on the search path: kind, id, "
      "version, device, plugin file.\n\noptions");
  desc.add_options()(
      "json", po::bool_switch(&json),
      "print a JSON array of {kind, id, version, device, file, abi}");
  AddCommon(desc, common);
  std::vector<std::string> positional;
  Parse(args, desc, "unexpected", 0, &positional);
  if (common.help) {
    std::cout << desc << "\n";
    return 0;
  }
  PluginRegistry registry;
  if (!LoadRegistry(common, &registry)) return 2;
  std::vector<const Component*> components = registry.Components();
  if (json) {
    nlohmann::json out = nlohmann::json::array();
    for (const Component* c : components) {
      out.push_back({{"kind", runtime::KindName(c->kind)},
                     {"id", c->id},
                     {"version", c->version},
                     {"device", runtime::DeviceName(c->device_type)},
                     {"file", c->plugin->path().string()},
                     {"abi", c->plugin->abi()}});
    }
    std::cout << out.dump(2) << "\n";
  } else {
    std::vector<std::vector<std::string>> rows = {
        {"KIND", "ID", "VERSION", "DEVICE", "FILE"}};
    for (const Component* c : components) {
      rows.push_back({runtime::KindName(c->kind), c->id, c->version,
                      runtime::DeviceName(c->device_type),
                      c->plugin->path().string()});
    }
    std::cout << Table(rows);
    std::cout << "\n"
              << components.size() << " component(s) from "
              << registry.plugins().size() << " plugin file(s)\n";
  }
  return ReportProblems(registry) == 0 ? 0 : 1;
}

std::string ParamTable(const runtime::ParamSchema& schema) {
  if (schema.empty()) return "  (none)\n";
  std::vector<std::vector<std::string>> rows = {
      {"NAME", "TYPE", "DEFAULT", "CONSTRAINT", "DESCRIPTION"}};
  for (const auto& p : schema) {
    rows.push_back({p.name, runtime::TypeName(p.type),
                    p.default_value
                        ? runtime::FormatParamValue(*p.default_value)
                        : "(required)",
                    runtime::FormatConstraint(p), p.doc});
  }
  std::string table = Table(rows);
  std::string indented;
  std::istringstream in(table);
  for (std::string line; std::getline(in, line);)
    indented += "  " + line + "\n";
  return indented;
}

void Describe(const Component& c, const PluginRegistry& registry) {
  const runtime::Plugin& p = *c.plugin;
  std::cout << runtime::KindName(c.kind) << " " << c.id << " " << c.version
            << "\n"
            << "  " << c.description << "\n\n"
            << "  plugin:  " << p.id() << " " << p.version() << " (ABI "
            << p.abi() << ", licence "
            << (p.license().empty() ? "not stated" : p.license()) << ")\n"
            << "  file:    " << p.path().string() << "\n"
            << "  device:  " << runtime::DeviceName(c.device_type) << "\n";
  if (c.kind == LLMSYS_KIND_OPERATOR) {
    const runtime::OpContract* contract = registry.FindOpContract(c.op);
    std::cout << "  op:      "
              << (contract != nullptr ? contract->signature
                                      : c.op + " (unknown contract)")
              << "\n";
    if (contract != nullptr && !contract->doc.empty())
      std::cout << "           " << contract->doc << "\n";
    const auto* op = c.As<llmsys_operator_t>();
    std::vector<std::string> traits;
    traits.push_back(op->backward != nullptr ? "differentiable"
                                             : "no backward");
    if (op->flags & LLMSYS_OP_STRIDED_INPUTS)
      traits.push_back("strided inputs");
    std::cout << "  priority: " << op->priority << " ("
              << absl::StrJoin(traits, ", ") << ")\n";
  }
  std::cout << "\nparameters:\n" << ParamTable(c.params);
}

int DescribeCommand(const std::vector<std::string>& args) {
  Common common;
  std::string kind;
  po::options_description desc(
      "usage: llmsys plugins describe ID [--kind KIND] [--plugin-dir "
      "DIR]...\n\n"
      "Shows a component's description, where it comes from, and its parameter "
      "schema (name, type, default, range, description).\n\noptions");
  desc.add_options()("kind", po::value(&kind),
                     "operator, optimizer, sampler, evaluator or model (when "
                     "several kinds share the id)");
  AddCommon(desc, common);
  std::vector<std::string> positional;
  Parse(args, desc, "id", 1, &positional);
  if (common.help) {
    std::cout << desc << "\n";
    return 0;
  }
  if (positional.size() != 1) {
    std::cerr
        << "error: 'llmsys plugins describe' takes one component id, e.g. "
           "'llmsys plugins describe sgd'\n";
    return 2;
  }
  const std::string& id = positional[0];
  PluginRegistry registry;
  if (!LoadRegistry(common, &registry)) return 2;
  std::vector<const Component*> found = registry.FindAnyKind(id);
  if (!kind.empty()) {
    std::erase_if(found, [&](const Component* c) {
      return runtime::KindName(c->kind) != kind;
    });
  }
  if (found.empty()) {
    std::vector<std::string> ids;
    for (const Component* c : registry.Components()) ids.push_back(c->id);
    std::cerr << "error: no component '" << id << "'"
              << (kind.empty() ? "" : " of kind " + kind)
              << core::DidYouMean(id, ids)
              << "; 'llmsys plugins' lists them all\n";
    return 2;
  }
  for (size_t i = 0; i < found.size(); ++i) {
    if (i) std::cout << "\n";
    Describe(*found[i], registry);
  }
  return 0;
}

// Creates and destroys one instance with default parameters; "" if fine.
std::string TryCreate(const Component& c) {
  absl::StatusOr<runtime::ParamPack> pack = runtime::ParamPack::Make(c.params);
  if (!pack.ok()) return "";  // required parameters: nothing to try
  char message[1024] = {};
  llmsys_error_t err{message, sizeof(message)};
  void* instance = nullptr;
  llmsys_status_t s = LLMSYS_STATUS_OK;
  void (*destroy)(void*) = nullptr;
  switch (c.kind) {
    case LLMSYS_KIND_OPERATOR:
      if (c.As<llmsys_operator_t>()->create == nullptr) return "";
      s = c.As<llmsys_operator_t>()->create(pack->c_params(), &instance, &err);
      destroy = c.As<llmsys_operator_t>()->destroy;
      break;
    case LLMSYS_KIND_OPTIMIZER: {
      const auto* o = c.As<llmsys_optimizer_t>();
      s = o->create(pack->c_params(), &instance, &err);
      destroy = o->destroy;
      if (s == LLMSYS_STATUS_OK) {
        const llmsys_state_spec_t* const* specs = nullptr;
        uint32_t n = 0;
        s = o->state(instance, &specs, &n, &err);
      }
      break;
    }
    case LLMSYS_KIND_SAMPLER:
      s = c.As<llmsys_sampler_t>()->create(pack->c_params(), &instance, &err);
      destroy = c.As<llmsys_sampler_t>()->destroy;
      break;
    case LLMSYS_KIND_EVALUATOR:
      s = c.As<llmsys_evaluator_t>()->create(pack->c_params(), &instance, &err);
      destroy = c.As<llmsys_evaluator_t>()->destroy;
      break;
    default:
      return "";  // models need a graph (the tensor runtime)
  }
  if (instance != nullptr && destroy != nullptr) destroy(instance);
  if (s != LLMSYS_STATUS_OK) {
    return absl::StrCat(
        "creating it with default parameters failed (",
        absl::StatusCodeToString(static_cast<absl::StatusCode>(s)),
        "): ", message);
  }
  return "";
}

std::string FormatError(double e) {
  if (e < 0) return "-";
  return absl::StrFormat("%.1e", e);
}

// Runs the conformance suite on every operator of `file_registry` (which
// holds only the plugin under check) against the reference plugin. Prints
// a table and the failures; returns the number of failed operators, or -1
// when there is no reference to check against.
int CheckConformance(const PluginRegistry& file_registry,
                     const std::string& reference_file) {
  std::vector<const Component*> operators;
  for (const Component* c : file_registry.Components()) {
    if (c->kind == LLMSYS_KIND_OPERATOR) operators.push_back(c);
  }
  if (operators.empty()) return 0;
  const runtime::Plugin& checked = *file_registry.plugins().front();
  // The reference itself is its own oracle (loading it twice would share
  // its state).
  PluginRegistry oracle_storage;
  const PluginRegistry* oracle = &file_registry;
  std::error_code ec;
  if (!fs::equivalent(checked.path(), reference_file, ec)) {
    if (absl::Status s = oracle_storage.LoadFile(reference_file); !s.ok()) {
      std::cout << "FAIL  cannot check operators without the reference "
                   "plugin: "
                << s.message()
                << "\n      (pass its file with --reference FILE)\n";
      return -1;
    }
    oracle = &oracle_storage;
  }
  const conformance::Tolerances tol;
  std::cout << "conformance against " << reference_file << "\n"
            << absl::StrFormat(
                   "(relative error |a - b| / max(1, |b|); tolerances: "
                   "float32 %.0e, float64 %.0e, float64 central "
                   "differences %.0e)\n\n",
                   tol.float32, tol.float64, tol.gradcheck);
  std::vector<conformance::OpReport> reports =
      conformance::CheckOperators(operators, *oracle, tol);
  std::vector<std::vector<std::string>> rows = {
      {"RESULT", "OP", "IMPLEMENTATION", "CASES", "FORWARD", "BACKWARD",
       "GRADCHECK", "NOTE"}};
  int failed = 0;
  for (const conformance::OpReport& r : reports) {
    std::string result = r.skipped ? "skip" : r.passed() ? "ok" : "FAIL";
    std::string note;
    if (r.skipped)
      note = r.skip_reason;
    else if (r.backward_error < 0)
      note = "no backward: not differentiable";
    else if (!r.float64)
      note = "no float64: gradient check not run";
    if (!r.passed()) {
      ++failed;
      note = r.failures.front();
    }
    rows.push_back({result, r.op, r.implementation, std::to_string(r.cases),
                    FormatError(r.forward_error), FormatError(r.backward_error),
                    FormatError(r.gradcheck_error), note});
  }
  std::cout << Table(rows);
  for (const conformance::OpReport& r : reports) {
    if (r.failures.size() < 2) continue;
    std::cout << "\n" << r.implementation << ":\n";
    for (const std::string& f : r.failures) std::cout << "  " << f << "\n";
  }
  std::cout << "\n";
  return failed;
}

int CheckCommand(const std::vector<std::string>& args) {
  Common common;
  std::string reference =
      (runtime::BuiltinPluginDir() / "reference.so").string();
  po::options_description desc(
      "usage: llmsys plugins check FILE [--reference REF]\n\n"
      "Loads one plugin file in isolation (no search path) and reports its "
      "sha256 (what an experiment's [plugins] pins name) and what it "
      "provides, or exactly why it cannot be loaded. Each component with no "
      "required parameter is also created and destroyed once. Every operator "
      "then goes through the conformance suite: output shapes, dtypes and "
      "values against the reference implementation of its op, input "
      "gradients against the reference, and float64 gradients against "
      "central differences.\n\noptions");
  desc.add_options()("help,h", po::bool_switch(&common.help), "show this help")(
      "reference", po::value(&reference),
      "the reference plugin to check operators against (default: the "
      "built-in reference.so)")("verbose,v", po::bool_switch(&common.verbose),
                                "print debug messages");
  std::vector<std::string> positional;
  Parse(args, desc, "file", 1, &positional);
  if (common.help) {
    std::cout << desc << "\n";
    return 0;
  }
  if (positional.size() != 1) {
    std::cerr << "error: 'llmsys plugins check' takes one plugin file\n";
    return 2;
  }
  if (common.verbose) core::SetMinLogLevel(core::LogLevel::kDebug);
  PluginRegistry registry;
  if (absl::Status s = registry.LoadFile(positional[0]); !s.ok()) {
    std::cout << "FAIL  " << s.message() << "\n";
    return 1;
  }
  const runtime::Plugin& p = *registry.plugins().front();
  std::cout << "file:     " << p.path().string() << "\n"
            << "sha256:   " << p.sha256() << "\n"
            << "plugin:   " << p.id() << " " << p.version() << " — "
            << p.description() << "\n"
            << "ABI:      " << p.abi() << " (host " << LLMSYS_ABI_VERSION_STRING
            << ")\n"
            << "licence:  "
            << (p.license().empty() ? "not stated" : p.license()) << "\n\n";
  int failures = 0;
  std::vector<std::vector<std::string>> rows = {
      {"RESULT", "KIND", "ID", "VERSION", "DEVICE", "NOTE"}};
  for (const runtime::OpContract& c : p.op_contracts()) {
    rows.push_back({"ok", "op_contract", c.name, "", "", c.signature});
  }
  for (const Component* c : registry.Components()) {
    std::string note = TryCreate(*c);
    if (note.empty() && c->kind == LLMSYS_KIND_OPERATOR &&
        registry.FindOpContract(c->op) == nullptr) {
      note = absl::StrCat(
          "implements op '", c->op,
          "', which is neither standard nor declared in this file");
    }
    failures += !note.empty();
    rows.push_back({note.empty() ? "ok" : "FAIL", runtime::KindName(c->kind),
                    c->id, c->version, runtime::DeviceName(c->device_type),
                    note});
  }
  std::cout << Table(rows) << "\n";
  const int failed_ops = CheckConformance(registry, reference);
  if (failed_ops < 0) return 1;
  if (failures > 0 || failed_ops > 0) {
    std::cout << "FAIL  ";
    if (failures > 0)
      std::cout << failures << " of " << registry.Components().size()
                << " component(s) failed to load or create";
    if (failures > 0 && failed_ops > 0) std::cout << "; ";
    if (failed_ops > 0)
      std::cout << failed_ops << " operator(s) failed the conformance suite";
    std::cout << "\n";
    return 1;
  }
  std::cout << "OK    " << registry.Components().size() << " component(s), "
            << p.op_contracts().size() << " op contract(s)\n";
  return 0;
}

}  // namespace

int RunPluginsCommand(const std::vector<std::string>& args) {
  if (!args.empty() && args[0] == "describe")
    return DescribeCommand({args.begin() + 1, args.end()});
  if (!args.empty() && args[0] == "check")
    return CheckCommand({args.begin() + 1, args.end()});
  if (!args.empty() && !args[0].empty() && args[0][0] != '-') {
    std::cerr << "error: unknown 'llmsys plugins' subcommand '" << args[0]
              << "'" << core::DidYouMean(args[0], {"describe", "check"})
              << "; 'llmsys plugins --help' lists them\n";
    return 2;
  }
  return List(args);
}

}  // namespace llmsys::cli
