// `llmsys new-plugin`: fills the templates of tools/llmsys/templates/
// (compiled into the command, see embedded_files.h) for one kind and writes
// them into a new folder.
#include "tools/llmsys/new_plugin_command.h"

#include <algorithm>
#include <boost/program_options.hpp>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <regex>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "framework/core/suggest.h"
#include "framework/runtime/op_contract.h"
#include "framework/runtime/plugin.h"
#include "framework/runtime/registry.h"
#include "llmsys/version.h"
#include "tools/llmsys/embedded_files.h"

namespace llmsys::cli {
namespace {

namespace fs = std::filesystem;
namespace po = boost::program_options;

const std::vector<std::string> kKinds = {"operator", "model", "optimizer",
                                         "sampler", "evaluator"};

// The ops with a template: the source template and, for the elementwise
// ones, the snippet with their math (F and DF).
struct OpTemplate {
  std::string op;
  std::string source;
  std::string math;  // empty: none
  std::string what;  // for the README
};
const std::vector<OpTemplate>& OpTemplates() {
  static const std::vector<OpTemplate> templates = {
      {"relu", "operator/unary.cc.in", "operator/relu.math.in",
       "max(x, 0), forward and backward, float32 and float64"},
      {"gelu", "operator/unary.cc.in", "operator/gelu.math.in",
       "GELU (erf and tanh forms), forward and backward, float32 and "
       "float64"},
      {"attention", "operator/attention.cc.in", "",
       "scaled dot-product attention with masks and dropout, forward and "
       "backward, float32 and float64"},
  };
  return templates;
}

std::string OpTemplateList() {
  std::string list;
  for (const OpTemplate& t : OpTemplates())
    list += (list.empty() ? "" : ", ") + t.op;
  return list;
}

// The embedded template at `path` (relative to tools/llmsys/templates/).
std::string Template(std::string_view path) {
  for (size_t i = 0; i < kNewPluginTemplates_count; ++i)
    if (path == kNewPluginTemplates[i].path) return kNewPluginTemplates[i].text;
  throw std::logic_error("internal error: the template '" + std::string(path) +
                         "' is not compiled into this llmsys");
}

// Replaces every @KEY@ of `vars` in `text`; a placeholder left over is an
// internal error (a template and this file out of step).
std::string Fill(std::string text,
                 const std::map<std::string, std::string>& vars,
                 const std::string& what) {
  for (const auto& [key, value] : vars) {
    const std::string token = "@" + key + "@";
    for (size_t at = text.find(token); at != std::string::npos;
         at = text.find(token, at + value.size()))
      text.replace(at, token.size(), value);
  }
  std::smatch left;
  if (std::regex_search(text, left, std::regex("@[A-Z_]+@")))
    throw std::logic_error("internal error: " + what + " has placeholder " +
                           left.str() + " with no value");
  return text;
}

// A component and file name: lower-case letters, digits and '_', starting
// with a letter (it is also a CMake target and a file name).
bool IsPluginName(std::string_view name) {
  if (name.empty() || name.size() > 64 || name[0] < 'a' || name[0] > 'z')
    return false;
  for (char c : name)
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
      return false;
  return true;
}

// "layer_norm" -> "LayerNorm".
std::string ClassName(std::string_view name) {
  std::string out;
  bool upper = true;
  for (char c : name) {
    if (c == '_') {
      upper = true;
      continue;
    }
    out += upper && c >= 'a' && c <= 'z' ? static_cast<char>(c - 'a' + 'A') : c;
    upper = false;
  }
  return out;
}

// The folder the running llmsys is installed in (or built in): the one
// holding bin/ and lib/llmsys/plugins.
fs::path Prefix() {
  const fs::path plugins = runtime::BuiltinPluginDir();
  if (plugins.empty()) return {};
  std::error_code ec;
  return fs::weakly_canonical(plugins / ".." / ".." / "..", ec);
}

// An op signature as the lines of a C++ comment: "//   " before each,
// broken after ", " to stay within 80 columns.
std::string WrapSignature(const std::string& signature) {
  std::string out, line;
  size_t start = 0;
  while (start < signature.size()) {
    size_t end = signature.find(", ", start);
    end = end == std::string::npos ? signature.size() : end + 2;
    const std::string piece = signature.substr(start, end - start);
    if (!line.empty() && 5 + line.size() + piece.size() > 80) {
      while (!line.empty() && line.back() == ' ') line.pop_back();
      out += line + "\n//   ";
      line.clear();
    }
    line += piece;
    start = end;
  }
  return out + line;
}

// What one scaffold is.
struct Plan {
  std::string kind, name, op, plugin_id, component_id;
};

// The file of a built-in plugin already providing `plan`'s component or
// plugin id, or "" when none does (or the built-in folder is missing).
std::string BuiltinClash(const Plan& plan) {
  const fs::path dir = runtime::BuiltinPluginDir();
  std::error_code ec;
  if (dir.empty() || !fs::is_directory(dir, ec)) return "";
  runtime::PluginRegistry registry;
  if (!registry.AddSearchDir(dir, "built-in").ok()) return "";
  registry.LoadAll();
  for (const runtime::Component* c : registry.FindAnyKind(plan.component_id))
    if (runtime::KindName(c->kind) == plan.kind)
      return plan.kind + " '" + plan.component_id + "' (in " +
             c->plugin->path().string() + ")";
  for (const auto& p : registry.plugins())
    if (p->id() == plan.plugin_id)
      return "plugin id '" + plan.plugin_id + "' (" + p->path().string() + ")";
  return "";
}

// The experiment's kind-specific blocks and the README's lines.
std::map<std::string, std::string> KindVars(const Plan& p) {
  const std::string& id = p.component_id;
  const std::string gpt = "use = \"gpt\"\nn_layer = 1\nn_head = 2\nn_embd = 16";
  std::map<std::string, std::string> v = {
      {"DATA", ""},
      {"MODEL", gpt},
      {"OPS", ""},
      {"OPTIMIZER", "use = \"sgd\""},
      {"GENERATE", "\n[generate]\nmax_tokens = 40\n"},
      {"EVALUATE", ""},
      {"CHECK_NOTE", ""},
      {"CMAKE_CHECK_NOTE", ""},
      {"PARAMS_NOTE",
       "An experiment sets its parameters in the section that swaps it in "
       "(below); the host\nchecks each value against the declared type and "
       "range before the run starts."},
  };
  if (p.kind == "operator") {
    v["OPS"] = "[ops]\n" + p.op + " = \"" + p.name +
               "\"        # <- yours: op " + p.op + " runs " + id + "\n\n";
    if (p.op == "relu") {
      // bert's feed-forward is the built-in model that calls relu.
      v["DATA"] = "task = \"mlm\"          # masked language modelling\n";
      v["MODEL"] =
          "use = \"bert\"\nn_layer = 1\nn_head = 2\nn_embd = 16\nffn_dim = "
          "32\nactivation = \"relu\"   # its feed-forward calls the relu op";
      v["GENERATE"] = "";
    }
    v["CHECK_NOTE"] =
        ", and runs " + id +
        " through the conformance suite: outputs and gradients against the "
        "reference implementation, float64 gradients against central "
        "differences";
    v["CMAKE_CHECK_NOTE"] =
        ", then runs\n# " + id +
        " through the conformance suite (against the reference\n# "
        "implementation, and central differences in float64)";
    v["PARAMS_NOTE"] =
        "An experiment chooses the implementation of each op (below); "
        "operators are created with\ntheir default parameters.";
    v["SWAP"] = "[ops]\n" + p.op + " = \"" + p.name +
                "\"   # or the full id, \"" + id + "\"";
  } else if (p.kind == "model") {
    v["MODEL"] = "use = \"" + id + "\"        # <- yours\nn_embd = 32";
    v["SWAP"] = "[model]\nuse = \"" + id + "\"\nn_embd = 32";
  } else if (p.kind == "optimizer") {
    v["OPTIMIZER"] = "use = \"" + id + "\"        # <- yours\nmomentum = 0.9";
    v["SWAP"] = "[optimizer]\nuse = \"" + id + "\"\nmomentum = 0.9";
  } else if (p.kind == "sampler") {
    v["GENERATE"] = "\n[generate]\nsampler = \"" + id +
                    "\"        # <- yours: draws the samples after "
                    "training\nk = 5\nmax_tokens = 40\n";
    v["SWAP"] = "[generate]\nsampler = \"" + id + "\"\nk = 5";
  } else {  // evaluator
    v["EVALUATE"] =
        "\n[[evaluate]]\nuse = \"" + id +
        "\"        # <- yours: scores 4 continuations after training\n"
        "segments = 4\nprompt_tokens = 8\nmax_tokens = 8\n";
    v["SWAP"] = "[[evaluate]]\nuse = \"" + id + "\"";
  }
  return v;
}

// Every file of the scaffold: path relative to DIR -> contents.
std::map<std::string, std::string> Files(const Plan& p,
                                         const std::string& prefix) {
  std::string source, what;
  std::map<std::string, std::string> vars = KindVars(p);
  if (p.kind == "operator") {
    for (const OpTemplate& t : OpTemplates()) {
      if (t.op != p.op) continue;
      source = t.source;
      what = t.what;
      if (!t.math.empty()) vars["MATH"] = Template(t.math);
    }
    for (const runtime::OpContract& c : runtime::StandardOpContracts())
      if (c.name == p.op) vars["SIGNATURE"] = WrapSignature(c.signature);
  } else {
    source = p.kind + "/" + p.kind + ".cc.in";
    what = p.kind == "model"       ? "a bigram language model with one layer"
           : p.kind == "optimizer" ? "SGD with momentum"
           : p.kind == "sampler"   ? "top-k sampling with a temperature"
                                   : "exact match, best over references";
  }
  vars.insert({{"NAME", p.name},
               {"KIND", p.kind},
               {"OP", p.op},
               {"PLUGIN_ID", p.plugin_id},
               {"COMPONENT_ID", p.component_id},
               {"CLASS", ClassName(p.op)},  // operator/unary.cc.in
               {"FILE", p.name + ".cc"},
               {"WHAT", what},
               {"ABI_VERSION", LLMSYS_ABI_VERSION_STRING},
               {"PREFIX", prefix}});
  // The snippet has placeholders of its own (kId is a constant there).
  if (vars.count("MATH")) vars["MATH"] = Fill(vars["MATH"], vars, "the math");
  std::map<std::string, std::string> files;
  auto add = [&](const std::string& to, const std::string& from) {
    files[to] = Fill(Template(from), vars, "template " + from);
  };
  add("CMakeLists.txt", "common/CMakeLists.txt.in");
  add(p.name + ".cc", source);
  add("experiment.toml", "common/experiment.toml.in");
  add("tests/run_experiment.cmake", "common/run_experiment.cmake.in");
  add("README.md", "common/README.md.in");
  add(".gitignore", "common/gitignore.in");
  files["data/tiny.txt"] = Template("common/tiny.txt");
  return files;
}

int Usage(const std::string& message) {
  std::cerr << "llmsys new-plugin: " << message << "\n";
  return 2;
}

}  // namespace

int NewPluginCommand(const std::vector<std::string>& args) {
  Plan plan;
  std::string dir;
  bool force = false, help = false;
  po::options_description desc(
      "usage: llmsys new-plugin --kind KIND --name NAME [--op OP] "
      "[--plugin-id ID] [--force] DIR\n\n"
      "Writes a plugin folder DIR that builds out of tree against the "
      "installed llmsys SDK (find_package(llmsys)): CMakeLists.txt, "
      "NAME.cc with one working component, experiment.toml that swaps it "
      "in, tests and a README.md saying what to do next. The component is "
      "OP.NAME for an operator, NAME otherwise. DIR must be new or empty "
      "(--force writes over the scaffold's own files and keeps the rest). "
      "Exit status 0; 1 when DIR cannot be written (not empty, not a "
      "folder); 2 for bad options.\n\n"
      "options");
  desc.add_options()("help,h", po::bool_switch(&help), "show this help")(
      "kind,k", po::value(&plan.kind),
      "operator, model, optimizer, sampler or evaluator")(
      "name,n", po::value(&plan.name),
      "the plugin's name: its file NAME.so, its component's id (an "
      "operator's is OP.NAME); lower-case letters, digits and '_'")(
      "op", po::value(&plan.op),
      ("operators: the op contract to implement (default relu; templates: " +
       OpTemplateList() + ")")
          .c_str())("plugin-id", po::value(&plan.plugin_id),
                    "the plugin's own id (default local.NAME; make it "
                    "team.name before you share it)")(
      "force", po::bool_switch(&force),
      "write into a non-empty DIR, replacing the scaffold's files");
  po::options_description hidden;
  hidden.add_options()("dir", po::value(&dir));
  po::options_description all;
  all.add(desc).add(hidden);
  po::positional_options_description positional;
  positional.add("dir", 1);
  try {
    po::variables_map vm;
    po::store(
        po::command_line_parser(args).options(all).positional(positional).run(),
        vm);
    po::notify(vm);
  } catch (const po::error& e) {
    return Usage(std::string(e.what()) + " (try --help)");
  }
  if (help) {
    std::cout << desc << "\n";
    return 0;
  }

  // ---- what to write ----
  if (plan.kind.empty())
    return Usage(
        "--kind is required: one of operator, model, optimizer, "
        "sampler, evaluator");
  if (std::find(kKinds.begin(), kKinds.end(), plan.kind) == kKinds.end())
    return Usage("unknown --kind '" + plan.kind + "'" +
                 core::DidYouMean(plan.kind, kKinds) +
                 "; one of operator, model, optimizer, sampler, evaluator");
  if (plan.name.empty())
    return Usage("--name is required, e.g. --name my_" + plan.kind);
  if (!IsPluginName(plan.name))
    return Usage("--name '" + plan.name +
                 "' is not a plugin name: lower-case letters, digits and "
                 "'_', starting with a letter, at most 64 characters (it "
                 "names the .so file, the CMake target and the component)");
  if (plan.kind == "operator") {
    if (plan.op.empty()) plan.op = "relu";
    std::vector<std::string> contracts;
    for (const runtime::OpContract& c : runtime::StandardOpContracts())
      contracts.push_back(c.name);
    std::vector<std::string> templated;
    for (const OpTemplate& t : OpTemplates()) templated.push_back(t.op);
    if (std::find(contracts.begin(), contracts.end(), plan.op) ==
        contracts.end()) {
      std::string list;
      for (const std::string& c : contracts)
        list += (list.empty() ? "" : ", ") + c;
      return Usage("--op '" + plan.op +
                   "' is not an op contract this host "
                   "knows" +
                   core::DidYouMean(plan.op, contracts) +
                   "; the standard ops are " + list);
    }
    if (std::find(templated.begin(), templated.end(), plan.op) ==
        templated.end())
      return Usage("new-plugin has no template for op '" + plan.op +
                   "'; it has templates for " + OpTemplateList() +
                   ". Scaffold one of them (relu for an elementwise op, "
                   "attention for anything with several inputs) and change "
                   "info.op, Infer, Forward and Backward: the conformance "
                   "suite of 'llmsys plugins check' then tests the result "
                   "against the reference " +
                   plan.op);
    plan.component_id = plan.op + "." + plan.name;
  } else {
    if (!plan.op.empty())
      return Usage("--op goes with --kind operator (" + plan.kind + "s" +
                   " implement no op contract)");
    plan.component_id = plan.name;
  }
  if (plan.plugin_id.empty()) plan.plugin_id = "local." + plan.name;
  if (!runtime::IsComponentId(plan.plugin_id))
    return Usage("--plugin-id '" + plan.plugin_id +
                 "' is not a plugin id: lower-case letters, digits, '_', "
                 "'-' and '.', starting with a letter or digit (e.g. "
                 "team7.attention)");
  if (dir.empty())
    return Usage(
        "the folder to write is required, e.g. 'llmsys new-plugin "
        "--kind " +
        plan.kind + " --name " + plan.name + " " + plan.name + "'");
  if (const std::string clash = BuiltinClash(plan); !clash.empty())
    return Usage("a built-in plugin already provides " + clash +
                 "; choose another --name (two plugins providing one id make "
                 "every experiment "
                 "name the file to use)");

  // ---- where ----
  const fs::path root(dir);
  std::error_code ec;
  if (fs::exists(root, ec) && !fs::is_directory(root, ec)) {
    std::cerr << "llmsys new-plugin: " << dir
              << " exists and is not a folder\n";
    return 1;
  }
  if (fs::is_directory(root, ec) && !fs::is_empty(root, ec) && !force) {
    std::cerr << "llmsys new-plugin: " << dir
              << " is not empty; choose a new or empty folder, or pass "
                 "--force to write the scaffold's files into it (other files "
                 "are kept)\n";
    return 1;
  }
  const fs::path prefix = Prefix();
  const bool installed =
      !prefix.empty() &&
      fs::exists(prefix / "lib/cmake/llmsys/llmsysConfig.cmake", ec);
  const std::string prefix_text =
      installed ? prefix.string() : "<llmsys install prefix>";

  const std::map<std::string, std::string> files = Files(plan, prefix_text);
  for (const auto& [path, text] : files) {
    const fs::path to = root / path;
    fs::create_directories(to.parent_path(), ec);
    std::ofstream out(to, std::ios::binary | std::ios::trunc);
    out << text;
    out.close();
    if (!out) {
      std::cerr << "llmsys new-plugin: cannot write " << to.string()
                << (ec ? ": " + ec.message() : std::string()) << "\n";
      return 1;
    }
  }

  std::cout << "wrote " << dir << "/: " << plan.kind << " '"
            << plan.component_id << "' in plugin '" << plan.plugin_id << "' ("
            << plan.name << ".so)\n";
  for (const auto& [path, text] : files) std::cout << "  " << path << "\n";
  std::cout << "next:\n"
            << "  cd " << dir << "\n"
            << "  cmake -S . -B build -DCMAKE_PREFIX_PATH=" << prefix_text
            << "\n"
            << "  cmake --build build && ctest --test-dir build "
               "--output-on-failure\n";
  if (!installed)
    std::cout << "(this llmsys is not installed: run 'cmake --install BUILD "
                 "--prefix PREFIX' in the llmsys tree and use that PREFIX)\n";
  std::cout << "then see " << dir << "/README.md\n";
  return 0;
}

}  // namespace llmsys::cli
