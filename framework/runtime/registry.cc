#include "framework/runtime/registry.h"

#include <algorithm>
#include <boost/dll/runtime_symbol_info.hpp>
#include <cstdlib>
#include <set>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "framework/core/logging.h"
#include "framework/core/suggest.h"

namespace llmsys::runtime {
namespace fs = std::filesystem;

fs::path BuiltinPluginDir() {
  std::error_code ec;
  fs::path exe = boost::dll::program_location(ec);
  if (ec) return {};
  return (exe.parent_path() / ".." / "lib" / "llmsys" / "plugins")
      .lexically_normal();
}

absl::Status PluginRegistry::AddSearchDir(const fs::path& dir,
                                          const std::string& origin) {
  std::error_code ec;
  if (!fs::exists(dir, ec)) {
    return absl::NotFoundError(absl::StrCat("plugin directory '", dir.string(),
                                            "' (from ", origin,
                                            ") does not exist"));
  }
  if (!fs::is_directory(dir, ec)) {
    return absl::InvalidArgumentError(
        absl::StrCat("plugin directory '", dir.string(), "' (from ", origin,
                     ") is not a directory"));
  }
  search_path_.push_back({fs::absolute(dir).lexically_normal(), origin});
  return absl::OkStatus();
}

absl::Status PluginRegistry::AddDefaultSearchDirs() {
  fs::path builtin = BuiltinPluginDir();
  std::error_code ec;
  if (!builtin.empty() && fs::is_directory(builtin, ec)) {
    search_path_.push_back({builtin, "built-in"});
  } else {
    core::Log(
        core::LogLevel::kWarning,
        absl::StrCat("the built-in plugin folder '", builtin.string(),
                     "' is missing; is llmsys built or installed completely?"));
  }
  if (const char* env = std::getenv("LLMSYS_PLUGIN_PATH"); env != nullptr) {
    for (absl::string_view part : absl::StrSplit(env, ':', absl::SkipEmpty())) {
      absl::Status s =
          AddSearchDir(fs::path(std::string(part)), "LLMSYS_PLUGIN_PATH");
      if (!s.ok()) return s;
    }
  }
  return absl::OkStatus();
}

void PluginRegistry::LoadAll() {
  for (const SearchDir& dir : search_path_) {
    std::vector<fs::path> files;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(dir.path, ec)) {
      if (e.path().extension() == ".so") files.push_back(e.path());
    }
    if (ec) {
      rejected_.push_back(
          {dir.path,
           absl::StrCat(dir.path.string(), ": cannot list: ", ec.message())});
      continue;
    }
    std::sort(files.begin(), files.end());
    core::Log(core::LogLevel::kDebug,
              absl::StrCat("scanning ", dir.path.string(), " (", dir.origin,
                           "): ", files.size(), " file(s)"));
    for (const fs::path& f : files) {
      if (absl::Status s = LoadFile(f); !s.ok()) {
        core::Log(core::LogLevel::kDebug,
                  absl::StrCat("rejected ", s.message()));
      }
    }
  }
}

absl::Status PluginRegistry::LoadFile(const fs::path& file) {
  std::error_code ec;
  fs::path canonical = fs::weakly_canonical(file, ec);
  if (ec) canonical = fs::absolute(file);
  if (std::find(seen_.begin(), seen_.end(), canonical) != seen_.end())
    return absl::OkStatus();
  seen_.push_back(canonical);

  absl::StatusOr<std::shared_ptr<Plugin>> plugin = Plugin::Load(file);
  if (!plugin.ok()) {
    rejected_.push_back({file, std::string(plugin.status().message())});
    return plugin.status();
  }
  for (const auto& other : plugins_) {
    if (other->id() == (*plugin)->id()) {
      absl::Status s = absl::AlreadyExistsError(
          absl::StrCat(file.string(), ": plugin id '", (*plugin)->id(),
                       "' is already provided by ", other->path().string(),
                       " (two copies of one plugin? remove one)"));
      rejected_.push_back({file, std::string(s.message())});
      return s;
    }
  }
  core::Log(
      core::LogLevel::kDebug,
      absl::StrCat("loaded ", file.string(), ": plugin '", (*plugin)->id(),
                   "' ", (*plugin)->version(), ", ABI ", (*plugin)->abi(), ", ",
                   (*plugin)->components().size(), " component(s)"));
  plugins_.push_back(*std::move(plugin));
  return absl::OkStatus();
}

void PluginRegistry::Prefer(llmsys_kind_t kind, const std::string& id,
                            const fs::path& file) {
  prefer_[{kind, id}] = fs::absolute(file).lexically_normal();
}

std::vector<const Component*> PluginRegistry::Components() const {
  std::vector<const Component*> all;
  for (const auto& p : plugins_) {
    for (const Component& c : p->components()) all.push_back(&c);
  }
  std::stable_sort(all.begin(), all.end(),
                   [](const Component* a, const Component* b) {
                     if (a->kind != b->kind) return a->kind < b->kind;
                     if (a->id != b->id) return a->id < b->id;
                     return a->plugin->path() < b->plugin->path();
                   });
  return all;
}

std::vector<Conflict> PluginRegistry::Conflicts() const {
  std::vector<Conflict> conflicts;
  for (const Component* c : Components()) {
    auto same = [&](const Conflict& k) {
      return k.kind == c->kind && k.id == c->id &&
             k.device_type == c->device_type;
    };
    auto it = std::find_if(conflicts.begin(), conflicts.end(), same);
    if (it != conflicts.end()) {
      it->providers.push_back(c);
    } else {
      conflicts.push_back({c->kind, c->id, c->device_type, {c}});
    }
  }
  std::erase_if(conflicts,
                [](const Conflict& c) { return c.providers.size() < 2; });
  return conflicts;
}

const OpContract* PluginRegistry::FindOpContract(
    const std::string& name) const {
  for (const OpContract& c : StandardOpContracts()) {
    if (c.name == name) return &c;
  }
  for (const auto& p : plugins_) {
    for (const OpContract& c : p->op_contracts()) {
      if (c.name == name) return &c;
    }
  }
  return nullptr;
}

std::vector<std::pair<const Component*, std::string>>
PluginRegistry::UnknownContracts() const {
  std::vector<std::pair<const Component*, std::string>> unknown;
  std::vector<std::string> names;
  for (const OpContract& c : StandardOpContracts()) names.push_back(c.name);
  for (const Component* c : Components()) {
    if (c->kind != LLMSYS_KIND_OPERATOR || FindOpContract(c->op) != nullptr)
      continue;
    unknown.emplace_back(
        c, absl::StrCat(c->plugin->path().string(), ": operator '", c->id,
                        "' implements op '", c->op,
                        "', which is not a standard op and no loaded plugin "
                        "declares it",
                        core::DidYouMean(c->op, names)));
  }
  return unknown;
}

absl::StatusOr<const Component*> PluginRegistry::Find(
    llmsys_kind_t kind, const std::string& id, int32_t device_type) const {
  std::vector<const Component*> matches;
  std::vector<std::string> ids;
  std::vector<const Component*> elsewhere;  // the id, on another device
  for (const Component* c : Components()) {
    if (c->kind != kind) continue;
    const bool here = device_type == 0 || c->device_type == 0 ||
                      c->device_type == device_type;
    if (c->id == id) (here ? matches : elsewhere).push_back(c);
    if (here && (ids.empty() || ids.back() != c->id)) ids.push_back(c->id);
  }
  if (matches.empty() && !elsewhere.empty())
    return absl::NotFoundError(absl::StrCat(
        KindName(kind), " '", id, "' runs on ",
        DeviceName(elsewhere[0]->device_type), " (",
        elsewhere[0]->plugin->path().string(), "), not on ",
        DeviceName(device_type), "; available on ", DeviceName(device_type),
        ": ", ids.empty() ? "(none)" : absl::StrJoin(ids, ", ")));
  if (matches.empty()) {
    std::string search;
    for (const SearchDir& d : search_path_)
      search += absl::StrCat(search.empty() ? "" : ", ", d.path.string());
    return absl::NotFoundError(absl::StrCat(
        "no plugin provides ", KindName(kind), " '", id, "'",
        core::DidYouMean(id, ids),
        "; available: ", ids.empty() ? "(none)" : absl::StrJoin(ids, ", "),
        ". Searched: ", search.empty() ? "(nothing)" : search,
        " — add a folder with --plugin-dir or LLMSYS_PLUGIN_PATH"));
  }
  if (matches.size() == 1) return matches[0];
  if (device_type == 0) {
    // Any device: one component per device is no conflict (`adamw` on the
    // CPU and on CUDA); the CPU's, else the first, stands for them.
    std::set<int32_t> devices;
    bool one_per_device = true;
    for (const Component* c : matches)
      one_per_device = devices.insert(c->device_type).second && one_per_device;
    if (one_per_device) {
      for (const Component* c : matches)
        if (c->device_type == kDLCPU) return c;
      return matches[0];
    }
  }
  if (auto it = prefer_.find({kind, id}); it != prefer_.end()) {
    for (const Component* c : matches) {
      if (c->plugin->path() == it->second) return c;
    }
  }
  std::vector<std::string> files;
  for (const Component* c : matches)
    files.push_back(c->plugin->path().string());
  return absl::FailedPreconditionError(absl::StrCat(
      KindName(kind), " '", id,
      "' is provided by several plugins: ", absl::StrJoin(files, " and "),
      "; remove one, or say in the experiment which file to use"));
}

std::vector<const Component*> PluginRegistry::FindAnyKind(
    const std::string& id) const {
  std::vector<const Component*> found;
  for (const Component* c : Components()) {
    if (c->id == id) found.push_back(c);
  }
  return found;
}

}  // namespace llmsys::runtime
