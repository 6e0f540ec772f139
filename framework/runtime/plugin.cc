#include "framework/runtime/plugin.h"

#include <boost/dll/library_info.hpp>
#include <boost/dll/shared_library.hpp>
#include <condition_variable>
#include <cstddef>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <system_error>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "framework/core/logging.h"
#include "framework/core/provenance.h"
#include "framework/core/status_macros.h"
#include "framework/runtime/host_api.h"
#include "framework/tensor/device.h"
#include "llmsys/version.h"

namespace llmsys::runtime {
namespace fs = std::filesystem;

// The size of each table as ABI 1.0 shipped it: the least a plugin may give.
constexpr size_t kEntrySize_1_0 = sizeof(llmsys_plugin_entry_t);
constexpr size_t kVersionFieldsEnd =
    offsetof(llmsys_plugin_entry_t, abi_minor) + sizeof(uint32_t);

struct Plugin::Impl {
  boost::dll::shared_library library;
  const llmsys_plugin_entry_t* entry = nullptr;
  HostApiOwner owner;
  std::unique_ptr<llmsys_host_api_t> host_api;
  bool initialized = false;
};

namespace {

absl::Status FileError(const fs::path& file, const std::string& reason) {
  return absl::InvalidArgumentError(absl::StrCat(file.string(), ": ", reason));
}

absl::StatusCode CodeOf(llmsys_status_t s) {
  if (s < 0 || s > 16) return absl::StatusCode::kUnknown;
  return static_cast<absl::StatusCode>(s);
}

std::string Str(const char* s) { return s != nullptr ? s : ""; }

// Checks the ELF header: a shared object for this machine's word size.
absl::Status CheckElf(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  unsigned char header[20] = {};
  in.read(reinterpret_cast<char*>(header), sizeof(header));
  if (in.gcount() < static_cast<std::streamsize>(sizeof(header)) ||
      std::memcmp(header,
                  "\x7f"
                  "ELF",
                  4) != 0) {
    return FileError(file, "not a shared library (no ELF header)");
  }
  if (header[4] != (sizeof(void*) == 8 ? 2 : 1)) {
    return FileError(
        file,
        absl::StrCat("an ELF file for a ", header[4] == 1 ? 32 : 64,
                     "-bit machine; this host is ", sizeof(void*) * 8, "-bit"));
  }
  uint16_t type = header[16] | (header[17] << 8);  // little-endian hosts
  if (type != 3) {                                 // ET_DYN
    return FileError(file, absl::StrCat("an ELF file but not a shared library "
                                        "(e_type ",
                                        type, ")"));
  }
  return absl::OkStatus();
}

// Finds the entry symbol without running any of the file's code.
absl::Status CheckEntrySymbol(const fs::path& file) {
  try {
    boost::dll::library_info info(file);
    for (const std::string& s : info.symbols()) {
      if (s == LLMSYS_ENTRY_SYMBOL) return absl::OkStatus();
    }
  } catch (const std::exception& e) {
    return FileError(file,
                     absl::StrCat("cannot read its symbol table: ", e.what()));
  }
  return FileError(
      file,
      "does not export the entry symbol '" LLMSYS_ENTRY_SYMBOL
      "', so it is not an llmsys plugin (define it with LLMSYS_PLUGIN(...) "
      "from llmsys/sdk.hpp, or as abi/llmsys/plugin.h shows, with default "
      "visibility)");
}

// The least struct_size a component of each kind may have (ABI 1.0).
size_t MinComponentSize(llmsys_kind_t kind) {
  switch (kind) {
    case LLMSYS_KIND_OPERATOR:
      return sizeof(llmsys_operator_t);
    case LLMSYS_KIND_OPTIMIZER:
      return sizeof(llmsys_optimizer_t);
    case LLMSYS_KIND_SAMPLER:
      return sizeof(llmsys_sampler_t);
    case LLMSYS_KIND_EVALUATOR:
      return sizeof(llmsys_evaluator_t);
    case LLMSYS_KIND_MODEL:
      return sizeof(llmsys_model_t);
    default:
      return 0;
  }
}

// The names of the required function pointers that are NULL.
std::vector<std::string> MissingFunctions(const llmsys_component_t* c) {
  std::vector<std::string> missing;
  auto need = [&](const void* fn, const char* name) {
    if (fn == nullptr) missing.push_back(name);
  };
  switch (c->kind) {
    case LLMSYS_KIND_OPERATOR: {
      auto* o = reinterpret_cast<const llmsys_operator_t*>(c);
      need(reinterpret_cast<const void*>(o->infer), "infer");
      need(reinterpret_cast<const void*>(o->forward), "forward");
      if (o->create != nullptr)
        need(reinterpret_cast<const void*>(o->destroy), "destroy");
      break;
    }
    case LLMSYS_KIND_OPTIMIZER: {
      auto* o = reinterpret_cast<const llmsys_optimizer_t*>(c);
      need(reinterpret_cast<const void*>(o->create), "create");
      need(reinterpret_cast<const void*>(o->destroy), "destroy");
      need(reinterpret_cast<const void*>(o->state), "state");
      need(reinterpret_cast<const void*>(o->step), "step");
      break;
    }
    case LLMSYS_KIND_SAMPLER: {
      auto* s = reinterpret_cast<const llmsys_sampler_t*>(c);
      need(reinterpret_cast<const void*>(s->create), "create");
      need(reinterpret_cast<const void*>(s->destroy), "destroy");
      need(reinterpret_cast<const void*>(s->sample), "sample");
      break;
    }
    case LLMSYS_KIND_EVALUATOR: {
      auto* e = reinterpret_cast<const llmsys_evaluator_t*>(c);
      need(reinterpret_cast<const void*>(e->create), "create");
      need(reinterpret_cast<const void*>(e->destroy), "destroy");
      need(reinterpret_cast<const void*>(e->add), "add");
      need(reinterpret_cast<const void*>(e->result), "result");
      break;
    }
    case LLMSYS_KIND_MODEL: {
      auto* m = reinterpret_cast<const llmsys_model_t*>(c);
      need(reinterpret_cast<const void*>(m->create), "create");
      need(reinterpret_cast<const void*>(m->destroy), "destroy");
      need(reinterpret_cast<const void*>(m->forward), "forward");
      break;
    }
    default:
      break;
  }
  return missing;
}

}  // namespace

absl::Status PluginStatus(llmsys_status_t code, const std::string& what,
                          const char* message) {
  return absl::Status(CodeOf(code), absl::StrCat(what, ": ", Str(message)));
}

absl::Status PluginStatus(llmsys_status_t code, const Component& c,
                          const char* function, const char* message) {
  return PluginStatus(
      code, absl::StrCat(KindName(c.kind), " ", c.id, " ", function), message);
}

llmsys_call_context_t CpuCallContext(const Component& c, int32_t num_threads) {
  llmsys_call_context_t ctx;
  std::memset(&ctx, 0, sizeof(ctx));
  ctx.struct_size = sizeof(ctx);
  ctx.host = c.plugin != nullptr ? c.plugin->host_api() : nullptr;
  ctx.device = DLDevice{kDLCPU, 0};
  ctx.num_threads = num_threads;
  return ctx;
}

absl::StatusOr<llmsys_call_context_t> DeviceCallContext(const Component& c,
                                                        DLDevice device,
                                                        int32_t num_threads) {
  llmsys_call_context_t ctx = CpuCallContext(c, num_threads);
  ctx.device = device;
  if (device.device_type != kDLCPU) {
    LLMSYS_ASSIGN_OR_RETURN(tensor::DeviceBackend * b,
                            tensor::BackendFor(device));
    LLMSYS_RETURN_IF_ERROR(b->FillContext(device, &ctx));
  }
  return ctx;
}

std::string KindName(llmsys_kind_t kind) {
  switch (kind) {
    case LLMSYS_KIND_OPERATOR:
      return "operator";
    case LLMSYS_KIND_OPTIMIZER:
      return "optimizer";
    case LLMSYS_KIND_SAMPLER:
      return "sampler";
    case LLMSYS_KIND_EVALUATOR:
      return "evaluator";
    case LLMSYS_KIND_MODEL:
      return "model";
    case LLMSYS_KIND_OP_CONTRACT:
      return "op_contract";
    default:
      return absl::StrCat("kind ", kind);
  }
}

std::string DeviceName(int32_t device_type) {
  switch (device_type) {
    case 0:
      return "any";
    case kDLCPU:
      return "cpu";
    case kDLCUDA:
      return "cuda";
    default:
      return absl::StrCat("device ", device_type);
  }
}

bool IsComponentId(std::string_view id) {
  if (id.empty()) return false;
  for (size_t i = 0; i < id.size(); ++i) {
    char c = id[i];
    bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
    if (!(alnum || (i > 0 && (c == '_' || c == '-' || c == '.')))) return false;
  }
  return true;
}

Plugin::Plugin(fs::path path)
    : path_(std::move(path)), impl_(std::make_unique<Impl>()) {}

Plugin::~Plugin() {
  if (impl_->initialized && impl_->entry->deinit != nullptr) {
    try {
      impl_->entry->deinit();
    } catch (...) {
      core::Log(core::LogLevel::kError,
                absl::StrCat(path_.string(), ": deinit() threw an exception"));
    }
  }
  // impl_->library unloads when impl_ goes, after deinit.
}

const Component* Plugin::FindComponent(llmsys_kind_t kind,
                                       std::string_view id) const {
  for (const Component& c : components_) {
    if (c.kind == kind && c.id == id) return &c;
  }
  return nullptr;
}

std::string Plugin::abi() const {
  return absl::StrCat(abi_major_, ".", abi_minor_);
}

absl::StatusOr<std::shared_ptr<Plugin>> Plugin::Load(const fs::path& file) {
  std::error_code ec;
  if (!fs::exists(file, ec)) return FileError(file, "no such file");
  if (!fs::is_regular_file(file, ec))
    return FileError(file, "not a regular file");
  LLMSYS_RETURN_IF_ERROR(CheckElf(file));
  LLMSYS_RETURN_IF_ERROR(CheckEntrySymbol(file));

  // One Plugin per file in the process: the dynamic linker maps a file
  // once, so a second registry loading it shares the first one's instance
  // (and its init), and deinit runs when the last holder lets go, never
  // under another registry still using it. The map's entry for a file goes
  // only once its instance is destroyed (deinit run, under the lock): a
  // thread loading the file while the last holder on another thread lets
  // go waits for that, so one instance's deinit always ends before the
  // next one's init starts.
  static auto* loaded_mu = new std::recursive_mutex;
  static auto* unloaded = new std::condition_variable_any;
  static auto* loaded = new std::map<fs::path, std::weak_ptr<Plugin>>;
  fs::path key = fs::weakly_canonical(file, ec);
  if (ec) key = fs::absolute(file).lexically_normal();
  std::unique_lock<std::recursive_mutex> lock(*loaded_mu);
  for (auto it = loaded->find(key); it != loaded->end();
       it = loaded->find(key)) {
    if (std::shared_ptr<Plugin> shared = it->second.lock()) return shared;
    unloaded->wait(lock);  // its last holder let go; deinit is due
  }

  std::shared_ptr<Plugin> plugin(
      new Plugin(fs::absolute(file).lexically_normal()), [key](Plugin* p) {
        std::lock_guard<std::recursive_mutex> unloading(*loaded_mu);
        delete p;
        auto it = loaded->find(key);
        if (it != loaded->end() && it->second.expired()) loaded->erase(it);
        unloaded->notify_all();
      });
  absl::StatusOr<std::string> sha256 = core::Sha256File(file);
  if (!sha256.ok()) return sha256.status();  // the message names the file
  plugin->sha256_ = *std::move(sha256);
  Impl& impl = *plugin->impl_;
  try {
    impl.library.load(plugin->path_, boost::dll::load_mode::rtld_now |
                                         boost::dll::load_mode::rtld_local);
  } catch (const std::exception& e) {
    return FileError(
        file, absl::StrCat("the dynamic linker cannot load it: ", e.what()));
  }
  if (!impl.library.has(LLMSYS_ENTRY_SYMBOL))
    return FileError(
        file, "the entry symbol '" LLMSYS_ENTRY_SYMBOL "' is not visible");
  impl.entry =
      &impl.library.get<const llmsys_plugin_entry_t>(LLMSYS_ENTRY_SYMBOL);
  const llmsys_plugin_entry_t& entry = *impl.entry;

  if (entry.struct_size < kVersionFieldsEnd)
    return FileError(file,
                     absl::StrCat("its entry table is too small (struct_size ",
                                  entry.struct_size, ")"));
  plugin->abi_major_ = entry.abi_major;
  plugin->abi_minor_ = entry.abi_minor;
  const std::string host_abi = LLMSYS_ABI_VERSION_STRING;
  if (entry.abi_major != LLMSYS_ABI_VERSION_MAJOR) {
    return FileError(
        file,
        absl::StrCat("built against llmsys ABI ", plugin->abi(),
                     ", but this host implements ABI ", host_abi,
                     "; a different major version is incompatible. Rebuild "
                     "the plugin against this llmsys's abi/ headers"));
  }
  if (entry.abi_minor > LLMSYS_ABI_VERSION_MINOR) {
    return FileError(
        file, absl::StrCat("built against llmsys ABI ", plugin->abi(),
                           ", newer than this host's ABI ", host_abi,
                           "; it may call host functions this host lacks. "
                           "Upgrade llmsys, or rebuild the plugin against this "
                           "llmsys's abi/ headers"));
  }
  if (entry.struct_size < kEntrySize_1_0)
    return FileError(
        file, absl::StrCat("its entry table is too small for ABI ",
                           plugin->abi(), " (struct_size ", entry.struct_size,
                           ", expected at least ", kEntrySize_1_0, ")"));
  if (entry.id == nullptr || !IsComponentId(entry.id))
    return FileError(file, absl::StrCat("its plugin id '", Str(entry.id),
                                        "' is missing or not of the form "
                                        "[a-z0-9][a-z0-9_.-]*"));
  std::vector<std::string> missing;
  if (entry.init == nullptr) missing.push_back("init");
  if (entry.deinit == nullptr) missing.push_back("deinit");
  if (entry.count == nullptr) missing.push_back("count");
  if (entry.get == nullptr) missing.push_back("get");
  if (!missing.empty()) {
    std::string list;
    for (const auto& m : missing) list += (list.empty() ? "" : ", ") + m;
    return FileError(file, "its entry table lacks " + list);
  }
  plugin->id_ = entry.id;
  plugin->version_ = Str(entry.version);
  plugin->description_ = Str(entry.description);
  plugin->license_ = Str(entry.license);

  LLMSYS_RETURN_IF_ERROR(plugin->Init());
  LLMSYS_RETURN_IF_ERROR(plugin->ReadComponents());
  (*loaded)[key] = plugin;
  return plugin;
}

const llmsys_host_api_t* Plugin::host_api() const {
  return impl_->host_api.get();
}

absl::Status Plugin::Init() {
  Impl& impl = *impl_;
  impl.owner.plugin_id = id_;
  impl.host_api = MakeHostApi(&impl.owner);
  char message[1024] = {};
  llmsys_error_t err{message, sizeof(message)};
  llmsys_status_t s = LLMSYS_STATUS_OK;
  try {
    s = impl.entry->init(impl.host_api.get(), &err);
  } catch (const std::exception& e) {
    return FileError(path_, absl::StrCat("init() of plugin '", id_,
                                         "' threw a C++ exception across the C "
                                         "ABI: ",
                                         e.what()));
  } catch (...) {
    return FileError(path_,
                     absl::StrCat("init() of plugin '", id_,
                                  "' threw an exception across the C ABI"));
  }
  if (s != LLMSYS_STATUS_OK) {
    return FileError(
        path_, absl::StrCat("init() of plugin '", id_, "' failed (",
                            absl::StatusCodeToString(CodeOf(s)),
                            "): ", message[0] ? message : "(no message)"));
  }
  impl.initialized = true;
  return absl::OkStatus();
}

absl::Status Plugin::ReadComponents() {
  const llmsys_plugin_entry_t& entry = *impl_->entry;
  try {
    // Op contracts first, so operators can name them.
    for (uint32_t i = 0, n = entry.count(LLMSYS_KIND_OP_CONTRACT); i < n; ++i) {
      auto* c = static_cast<const llmsys_op_contract_t*>(
          entry.get(LLMSYS_KIND_OP_CONTRACT, i));
      if (c == nullptr || c->struct_size < sizeof(llmsys_op_contract_t) ||
          c->signature == nullptr) {
        return FileError(
            path_, absl::StrCat("op contract #", i,
                                " is NULL, too small or has no signature"));
      }
      absl::StatusOr<OpContract> parsed =
          ParseOpSignature(c->signature, Str(c->doc));
      if (!parsed.ok())
        return FileError(path_, std::string(parsed.status().message()));
      for (const OpContract& standard : StandardOpContracts()) {
        if (standard.name == parsed->name) {
          return FileError(path_,
                           absl::StrCat("declares op contract '", parsed->name,
                                        "', which is a standard op"));
        }
      }
      op_contracts_.push_back(*std::move(parsed));
    }
    for (llmsys_kind_t kind : kComponentKinds) {
      for (uint32_t i = 0, n = entry.count(kind); i < n; ++i) {
        auto* c = static_cast<const llmsys_component_t*>(entry.get(kind, i));
        const std::string what = absl::StrCat(KindName(kind), " #", i);
        if (c == nullptr)
          return FileError(path_, absl::StrCat(what, " is NULL"));
        if (c->kind != kind) {
          return FileError(
              path_, absl::StrCat(what, " says it is a ", KindName(c->kind)));
        }
        if (c->id == nullptr || !IsComponentId(c->id)) {
          return FileError(
              path_, absl::StrCat(what, " has id '", Str(c->id),
                                  "', not of the form [a-z0-9][a-z0-9_.-]*"));
        }
        Component comp;
        comp.kind = kind;
        comp.id = c->id;
        const std::string name =
            absl::StrCat(KindName(kind), " '", comp.id, "'");
        if (c->struct_size < MinComponentSize(kind)) {
          return FileError(path_,
                           absl::StrCat(name, ": struct_size ", c->struct_size,
                                        " is smaller than ABI 1.0's ",
                                        MinComponentSize(kind)));
        }
        std::vector<std::string> missing = MissingFunctions(c);
        if (!missing.empty()) {
          std::string list;
          for (const auto& m : missing) list += (list.empty() ? "" : ", ") + m;
          return FileError(path_, absl::StrCat(name, ": lacks ", list));
        }
        absl::StatusOr<ParamSchema> schema =
            ReadParamSchema(c->params, c->num_params);
        if (!schema.ok()) {
          return FileError(path_,
                           absl::StrCat(name, ": malformed parameter schema: ",
                                        schema.status().message()));
        }
        comp.version = Str(c->version);
        comp.description = Str(c->description);
        comp.device_type = c->device_type;
        comp.params = *std::move(schema);
        comp.c = c;
        comp.plugin = this;
        if (kind == LLMSYS_KIND_OPERATOR) {
          comp.op = Str(comp.As<llmsys_operator_t>()->op);
          const std::string prefix = comp.op + ".";
          if (comp.op.empty() || comp.id.rfind(prefix, 0) != 0 ||
              comp.id.size() == prefix.size()) {
            return FileError(path_,
                             absl::StrCat(name,
                                          ": an operator's id must be "
                                          "'<op>.<implementation>' with op '",
                                          comp.op, "'"));
          }
        }
        if (FindComponent(kind, comp.id) != nullptr) {
          return FileError(path_, absl::StrCat(name, " is listed twice"));
        }
        components_.push_back(std::move(comp));
      }
    }
  } catch (...) {
    return FileError(path_,
                     "count() or get() threw an exception across the C ABI");
  }
  return absl::OkStatus();
}

}  // namespace llmsys::runtime
