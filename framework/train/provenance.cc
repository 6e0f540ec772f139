#include "framework/train/provenance.h"

#include <algorithm>
#include <map>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "framework/core/files.h"
#include "framework/core/logging.h"
#include "framework/runtime/plugin.h"

namespace llmsys::train {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::ordered_json;

json Optional(const auto& value) {
  if (!value) return nullptr;
  return *value;
}

// The loaded plugin at `file` (a Plugin::path() string), or null.
const runtime::Plugin* PluginAt(const runtime::PluginRegistry& registry,
                                const std::string& file) {
  for (const auto& p : registry.plugins()) {
    if (p->path().string() == file) return p.get();
  }
  return nullptr;
}

// The plugin declaring op contract `op`, or null when it is a standard op
// (or unknown).
const runtime::Plugin* ContractPlugin(const runtime::PluginRegistry& registry,
                                      const std::string& op) {
  for (const runtime::OpContract& c : runtime::StandardOpContracts()) {
    if (c.name == op) return nullptr;
  }
  for (const auto& p : registry.plugins()) {
    for (const runtime::OpContract& c : p->op_contracts()) {
      if (c.name == op) return p.get();
    }
  }
  return nullptr;
}

}  // namespace

json MakeProvenance(const ProvenanceInputs& in) {
  // plugin -> "kind id" of the components used from it.
  std::map<const runtime::Plugin*, std::set<std::string>> used;
  for (const runtime::Component* c : in.components) {
    if (c == nullptr || c->plugin == nullptr) continue;
    used[c->plugin].insert(
        absl::StrCat(runtime::KindName(c->kind), " ", c->id));
  }
  if (in.registry != nullptr) {
    for (const runtime::OpChoice& op : in.ops) {
      if (const runtime::Plugin* p = PluginAt(*in.registry, op.file))
        used[p].insert(absl::StrCat("operator ", op.implementation));
      if (const runtime::Plugin* p = ContractPlugin(*in.registry, op.op))
        used[p].insert(absl::StrCat("op_contract ", op.op));
    }
  }
  std::vector<std::pair<const runtime::Plugin*, std::set<std::string>>> sorted(
      used.begin(), used.end());
  std::sort(sorted.begin(), sorted.end(), [](const auto& a, const auto& b) {
    return a.first->path() < b.first->path();
  });
  json plugins = json::array();
  for (const auto& [p, components] : sorted) {
    plugins.push_back({{"file", p->path().string()},
                       {"sha256", p->sha256()},
                       {"plugin_id", p->id()},
                       {"plugin_version", p->version()},
                       {"abi_version", p->abi()},
                       {"components", components}});
  }
  const core::MachineInfo& m = in.machine;
  return json{{"llmsys_version", in.build.version},
              {"abi_version", in.build.abi_version},
              {"git_commit", Optional(in.build.git_commit)},
              {"git_dirty", Optional(in.build.git_dirty)},
              {"command", in.command},
              {"experiment",
               in.experiment.empty()
                   ? std::string()
                   : fs::absolute(in.experiment).lexically_normal().string()},
              {"sets", in.sets},
              {"started", in.started},
              {"start_step", in.start_step},
              {"seed", in.seed},
              {"threads", in.threads},
              {"device", in.device},
              {"ranks", in.ranks},
              {"machine",
               {{"hostname", m.hostname},
                {"os", m.os},
                {"cpu", m.cpu},
                {"cores", m.cores},
                {"memory_bytes", m.memory_bytes},
                {"gpus", m.gpus}}},
              {"config_sha256", in.config_sha256},
              {"plugins", plugins}};
}

absl::StatusOr<ProvenanceFile> ProvenanceFile::Open(const fs::path& run_dir,
                                                    bool resume) {
  ProvenanceFile f;
  f.file_ = run_dir / "provenance.json";
  std::error_code ec;
  if (!resume || !fs::exists(f.file_, ec)) return f;
  json old = json::parse(core::ReadFile(f.file_).value_or(""), nullptr,
                         /*allow_exceptions=*/false);
  if (!old.is_object()) {
    core::Log(core::LogLevel::kWarning,
              absl::StrCat(f.file_.string(),
                           ": not a JSON object; its records are not kept"));
    return f;
  }
  if (old.contains("earlier") && old["earlier"].is_array())
    f.earlier_ = old["earlier"];
  old.erase("earlier");
  f.earlier_.push_back(std::move(old));
  return f;
}

absl::Status ProvenanceFile::Write(json record) const {
  record["earlier"] = earlier_;
  return core::AtomicWriteFile(file_, record.dump(2) + "\n");
}

}  // namespace llmsys::train
