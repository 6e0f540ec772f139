#include "framework/train/trainer.h"

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "framework/autograd/autograd.h"
#include "framework/config/experiment.h"
#include "framework/core/files.h"
#include "framework/core/logging.h"
#include "framework/core/process_memory.h"
#include "framework/core/provenance.h"
#include "framework/core/status_macros.h"
#include "framework/core/version.h"
#include "framework/cuda/cuda_backend.h"
#include "framework/data/batching.h"
#include "framework/data/corpus.h"
#include "framework/data/tokenizer.h"
#include "framework/distributed/communicator.h"
#include "framework/distributed/data_parallel.h"
#include "framework/distributed/pipeline.h"
#include "framework/generate/decoding.h"
#include "framework/runtime/dispatch.h"
#include "framework/runtime/graph.h"
#include "framework/runtime/parameters.h"
#include "framework/runtime/profiler.h"
#include "framework/tensor/device.h"
#include "framework/tensor/safetensors.h"
#include "framework/train/evaluation.h"
#include "framework/train/optimizer.h"
#include "framework/train/provenance.h"
#include "framework/train/schedule.h"
#include "framework/train/tasks.h"

namespace llmsys::train {
namespace {

namespace fs = std::filesystem;
using autograd::Var;
using Clock = std::chrono::steady_clock;
using json = nlohmann::json;
using tensor::Tensor;

constexpr int kCheckpointFormatVersion = 1;

double Seconds(Clock::time_point since) {
  return std::chrono::duration<double>(Clock::now() - since).count();
}

std::string Duration(double seconds) {
  const int64_t s = static_cast<int64_t>(seconds + 0.5);
  if (s >= 3600) return absl::StrFormat("%dh%02dm", s / 3600, s / 60 % 60);
  if (s >= 60) return absl::StrFormat("%dm%02ds", s / 60, s % 60);
  return absl::StrFormat("%ds", s);
}

// The device [train] device names, once it is known to run: "cpu", or
// "cuda" (GPU `gpu`), which needs a build with CUDA and a GPU; the error
// names the key and says why.
absl::StatusOr<DLDevice> RunDevice(const config::Experiment& e, int gpu = 0) {
  const std::string name = e.String("train", "device");
  if (name == "cpu") return tensor::kCpu;
  const DLDevice device{kDLCUDA, gpu};
  absl::StatusOr<tensor::DeviceBackend*> backend = tensor::BackendFor(device);
  absl::Status usable =
      backend.ok() ? (*backend)->Available(device) : backend.status();
  if (!usable.ok())
    return absl::FailedPreconditionError(absl::StrCat(
        e.Get("train", "device").source.Describe(), ": [train] device = \"",
        name, "\" cannot run here: ", usable.message(),
        " (device = \"cpu\" runs everywhere)"));
  return device;
}

// [train] precision: float32, or bfloat16 / float16 autocast (on a GPU:
// the CPU operators compute in float32 and float64 only).
absl::StatusOr<DLDataType> Precision(const config::Experiment& e,
                                     DLDevice device) {
  const std::string name = e.String("train", "precision");
  LLMSYS_ASSIGN_OR_RETURN(const DLDataType dtype, tensor::ParseDType(name));
  if (!(dtype == tensor::kF32) && device.device_type == kDLCPU)
    return absl::InvalidArgumentError(absl::StrCat(
        e.Get("train", "precision").source.Describe(),
        ": [train] precision = \"", name,
        "\" needs device = \"cuda\" (the CPU operators compute in float32 "
        "and float64)"));
  return dtype;
}

// Everything a model call needs: plugins, the configuration, the tokenizer,
// the ops, the parameters and the model instance.
class Session {
 public:
  ~Session() {
    if (instance_ != nullptr) model_->As<llmsys_model_t>()->destroy(instance_);
  }

  static absl::StatusOr<std::unique_ptr<Session>> Open(
      const fs::path& config, const std::vector<std::string>& sets,
      const std::vector<std::string>& plugin_dirs,
      bool default_plugin_dirs = true) {
    auto s = std::unique_ptr<Session>(new Session);
    if (default_plugin_dirs) {
      absl::Status builtin = s->registry_.AddDefaultSearchDirs();
      if (!builtin.ok() && !absl::IsNotFound(builtin)) return builtin;
    }
    for (const std::string& d : plugin_dirs)
      LLMSYS_RETURN_IF_ERROR(s->registry_.AddSearchDir(d, "--plugin-dir"));
    s->registry_.LoadAll();
    LLMSYS_ASSIGN_OR_RETURN(
        config::Experiment e,
        config::Experiment::Load(config, sets, s->registry_));
    s->experiment_ = std::make_unique<config::Experiment>(std::move(e));
    return s;
  }

  const config::Experiment& experiment() const { return *experiment_; }
  runtime::PluginRegistry& registry() { return registry_; }
  runtime::OpDispatcher& ops() { return *ops_; }
  runtime::ParameterStore& parameters() { return *parameters_; }
  data::Tokenizer& tokenizer() { return *tokenizer_; }
  const runtime::Component& model() const { return *model_; }
  void* model_instance() const { return instance_; }
  // Where the parameters live and the ops run (set by CreateModel).
  DLDevice device() const { return device_; }
  int64_t block_size() const { return block_size_; }

  void SetTokenizer(std::unique_ptr<data::Tokenizer> t) {
    tokenizer_ = std::move(t);
  }
  // Pipeline parallelism: the model this session creates and runs is stage
  // `stage` of `num_stages` (llmsys/host.h pipeline_stage). Before
  // CreateModel.
  void SetStage(uint32_t stage, uint32_t num_stages) {
    stage_ = stage;
    num_stages_ = num_stages;
  }
  // The GPU a "cuda" run uses (0 unless set; before CreateModel).
  void SetGpu(int gpu) { gpu_ = gpu; }

  // Creates the ops and the model (its parameters initialized from the
  // seed).
  absl::Status CreateModel() {
    const config::Experiment& e = *experiment_;
    const uint64_t seed = static_cast<uint64_t>(e.Int("experiment", "seed"));
    LLMSYS_ASSIGN_OR_RETURN(device_, RunDevice(e, gpu_));
    ops_ = std::make_unique<runtime::OpDispatcher>(&registry_, device_);
    LLMSYS_ASSIGN_OR_RETURN(const DLDataType precision, Precision(e, device_));
    ops_->set_autocast(precision);
    std::string where = e.file().string() + ": [ops]";
    if (!e.ops().empty())
      where = e.ops_sources().begin()->second.Describe() + ": [ops]";
    LLMSYS_RETURN_IF_ERROR(ops_->Configure(e.ops(), where));
    ops_->set_seed(seed);
    const int64_t threads = e.Int("train", "threads");
    ops_->set_num_threads(static_cast<int32_t>(
        threads > 0 ? threads
                    : std::max(1u, std::thread::hardware_concurrency())));
    parameters_ = std::make_unique<runtime::ParameterStore>(seed, device_);
    model_ = e.model();
    block_size_ = e.Int("train", "block_size");
    // The host fills what it knows: vocab_size from the tokenizer, and a
    // default block_size from [train].
    std::vector<std::pair<std::string, runtime::ParamValue>> params;
    for (auto& [k, v] : e.ComponentParams("model")) {
      if (k == "vocab_size") continue;
      if (k == "block_size" && e.Has("model", "block_size") &&
          e.Get("model", "block_size").is_default)
        v = block_size_;
      params.emplace_back(k, v);
    }
    bool wants_vocab = false;
    for (const runtime::ParamSchemaEntry& p : model_->params)
      wants_vocab = wants_vocab || p.name == "vocab_size";
    // mlm adds [MASK] after the tokenizer's ids (framework/train/tasks.h).
    const int64_t extra = e.String("data", "task") == "mlm" ? 1 : 0;
    if (wants_vocab)
      params.emplace_back(
          "vocab_size", static_cast<int64_t>(tokenizer_->vocab_size()) + extra);
    for (const auto& [k, v] : params) {
      if (k == "block_size" && std::get<int64_t>(v) < block_size_)
        return absl::InvalidArgumentError(absl::StrCat(
            "[train] block_size ", block_size_,
            " is larger than [model] "
            "block_size ",
            std::get<int64_t>(v), " (the positions the model has)"));
    }
    // Recorded, so that the run directory's config.toml rebuilds this model.
    for (const auto& [k, v] : params) experiment_->Set("model", k, v);
    absl::StatusOr<runtime::ParamPack> pack =
        runtime::ParamPack::Make(model_->params, params);
    if (!pack.ok())
      return absl::InvalidArgumentError(
          absl::StrCat("[model] ", model_->id, ": ", pack.status().message()));
    runtime::Graph graph(ops_.get(), parameters_.get());
    graph.set_stage(stage_, num_stages_);
    char message[2048] = {};
    llmsys_error_t err{message, sizeof(message)};
    llmsys_status_t st = model_->As<llmsys_model_t>()->create(
        pack->c_params(), graph.c(), &instance_, &err);
    if (st != LLMSYS_STATUS_OK)
      return runtime::PluginStatus(st, *model_, "create", message);
    if (num_stages_ > 1 && !graph.stage_asked())
      return absl::FailedPreconditionError(absl::StrCat(
          e.file().string(), ": [distributed] pipeline_stages = ", num_stages_,
          ", but model ", model_->id,
          " does not split into stages (it never asks the host for its "
          "stage: llmsys/host.h pipeline_stage); gpt does, or train this "
          "model data parallel with pipeline_stages = 1"));
    return absl::OkStatus();
  }

  // One forward pass on named inputs (and, between pipeline stages, the
  // values `vars`, "pipeline.in"). Returns the outputs.
  absl::StatusOr<std::map<std::string, Var>> Forward(
      const std::vector<std::pair<std::string, Tensor>>& named, uint32_t mode,
      const std::vector<std::pair<std::string, Var>>& vars = {}) {
    runtime::Graph graph(ops_.get(), parameters_.get());
    graph.set_stage(stage_, num_stages_);
    std::vector<llmsys_named_value_t> values;
    std::vector<llmsys_value_t> handles;
    for (const auto& [name, t] : named) {
      LLMSYS_ASSIGN_OR_RETURN(Tensor on_device, t.ToDevice(device_));
      handles.push_back(graph.NewValue(autograd::MakeLeaf(on_device)));
      values.push_back({name.c_str(), handles.back()});
    }
    for (const auto& [name, var] : vars) {
      handles.push_back(graph.NewValue(var));
      values.push_back({name.c_str(), handles.back()});
    }
    llmsys_model_inputs_t inputs{};
    inputs.struct_size = sizeof(inputs);
    inputs.mode = mode;
    inputs.values = values.data();
    inputs.num_values = static_cast<uint32_t>(values.size());
    char message[2048] = {};
    llmsys_error_t err{message, sizeof(message)};
    llmsys_status_t st = model_->As<llmsys_model_t>()->forward(
        instance_, graph.c(), &inputs, &err);
    for (llmsys_value_t h : handles) graph.Release(h);
    if (st != LLMSYS_STATUS_OK)
      return runtime::PluginStatus(st, *model_, "forward", message);
    return graph.outputs();
  }

  std::vector<Var> TrainableVars() const {
    std::vector<Var> out;
    for (const runtime::Parameter& p : parameters_->all())
      if (p.trainable) out.push_back(p.var);
    return out;
  }
  // The same with their names.
  std::vector<std::pair<std::string, Var>> NamedTrainableVars() const {
    std::vector<std::pair<std::string, Var>> out;
    for (const runtime::Parameter& p : parameters_->all())
      if (p.trainable) out.emplace_back(p.name, p.var);
    return out;
  }
  // Their values (checkpoints).
  distributed::NamedTensors Weights() const {
    distributed::NamedTensors out;
    for (const auto& [name, var] : NamedTrainableVars())
      out.emplace_back(name, var->data);
    return out;
  }

 private:
  Session() = default;
  runtime::PluginRegistry registry_;
  std::unique_ptr<config::Experiment> experiment_;
  std::unique_ptr<data::Tokenizer> tokenizer_;
  std::unique_ptr<runtime::OpDispatcher> ops_;
  std::unique_ptr<runtime::ParameterStore> parameters_;
  const runtime::Component* model_ = nullptr;
  void* instance_ = nullptr;
  int64_t block_size_ = 0;
  DLDevice device_ = tensor::kCpu;
  uint32_t stage_ = 0, num_stages_ = 1;
  int gpu_ = 0;
};

// The experiment's optimizer for the session's device: the same id (and
// parameters) as [optimizer] names, implemented for that device.
absl::StatusOr<const runtime::Component*> OptimizerFor(Session& session) {
  const runtime::Component* chosen = session.experiment().optimizer();
  if (chosen->device_type == 0 ||
      chosen->device_type == session.device().device_type)
    return chosen;
  return session.registry().Find(LLMSYS_KIND_OPTIMIZER, chosen->id,
                                 session.device().device_type);
}

// The one element of a scalar output; NaN when it cannot be read (a failed
// device copy), which the loop reports as a non-finite loss.
double ScalarOf(const Var& v) {
  const std::vector<double> x = v->data.ToDoubles();
  return x.empty() ? std::nan("") : x[0];
}

// The gradient backward starts from at `loss`: `value` in every element.
absl::StatusOr<Tensor> SeedOf(const Var& loss, double value) {
  LLMSYS_ASSIGN_OR_RETURN(Tensor seed,
                          Tensor::Empty(loss->data.shape(), loss->data.dtype(),
                                        loss->data.device()));
  LLMSYS_RETURN_IF_ERROR(seed.Fill(value));
  return seed;
}

// ---- checkpoints ----

struct TrainerState {
  int64_t step = 0;
  data::BatcherState batcher;
  uint64_t op_calls = 0;
  int64_t tokens = 0;
  double elapsed = 0;
  // Examples per batch the data position counts (ranks x batch_size; 0 in
  // checkpoints from before distributed runs).
  int64_t global_batch = 0;
  // float16's dynamic loss scale and its run of good steps (0: none).
  double loss_scale = 0;
  int64_t loss_scale_good_steps = 0;
};

// A checkpoint is a folder of three files, replaced as a whole: the new one
// is written to "<dir>.tmp", the old one renamed to "<dir>.old", the new
// one renamed into place, the old one removed. A process killed at any
// point leaves either the old or the new checkpoint complete, and
// CheckpointDir finds it.
// What a checkpoint holds: the model's weights and the optimizer's state,
// by name (a pipeline's, gathered from its stages).
struct CheckpointTensors {
  std::string model;  // the model's id
  distributed::NamedTensors weights, optimizer;
};

absl::Status WriteCheckpointFiles(const fs::path& dir,
                                  const CheckpointTensors& tensors,
                                  const TrainerState& state);

absl::Status SaveCheckpoint(const fs::path& dir,
                            const CheckpointTensors& tensors,
                            const TrainerState& state) {
  const fs::path tmp = dir.string() + ".tmp", old = dir.string() + ".old";
  std::error_code ec;
  fs::remove_all(tmp, ec);
  LLMSYS_RETURN_IF_ERROR(WriteCheckpointFiles(tmp, tensors, state));
  fs::remove_all(old, ec);
  if (fs::exists(dir)) fs::rename(dir, old, ec);
  if (!ec) fs::rename(tmp, dir, ec);
  if (ec)
    return absl::InternalError(absl::StrCat(
        dir.string(),
        ": cannot put the new checkpoint in place: ", ec.message()));
  fs::remove_all(old, ec);
  return absl::OkStatus();
}

// The complete checkpoint of a run: <dir>, or <dir>.old when a process was
// killed between the two renames of SaveCheckpoint.
fs::path CheckpointDir(const fs::path& dir) {
  if (!fs::exists(dir) && fs::exists(dir.string() + ".old"))
    return dir.string() + ".old";
  return dir;
}

absl::Status WriteCheckpointFiles(const fs::path& dir,
                                  const CheckpointTensors& tensors,
                                  const TrainerState& state) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec)
    return absl::InternalError(
        absl::StrCat(dir.string(), ": cannot create: ", ec.message()));
  const std::map<std::string, std::string> meta = {
      {"format", "llmsys-checkpoint"},
      {"format_version", std::to_string(kCheckpointFormatVersion)},
      {"step", std::to_string(state.step)},
      {"model", tensors.model},
      {"llmsys_version", kHostVersion}};
  // Files hold host copies (a no-op on the CPU).
  auto on_host = [](std::vector<std::pair<std::string, Tensor>> tensors)
      -> absl::StatusOr<std::vector<std::pair<std::string, Tensor>>> {
    for (auto& [name, t] : tensors) {
      LLMSYS_ASSIGN_OR_RETURN(t, t.ToDevice(tensor::kCpu));
    }
    return tensors;
  };
  LLMSYS_ASSIGN_OR_RETURN(auto weights, on_host(tensors.weights));
  LLMSYS_ASSIGN_OR_RETURN(auto optimizer_state, on_host(tensors.optimizer));
  LLMSYS_RETURN_IF_ERROR(tensor::WriteSafetensors(
      (dir / "model.safetensors").string(), weights, meta));
  LLMSYS_RETURN_IF_ERROR(tensor::WriteSafetensors(
      (dir / "optimizer.safetensors").string(), optimizer_state, meta));
  json j = {{"format", "llmsys-trainer-state"},
            {"format_version", kCheckpointFormatVersion},
            {"step", state.step},
            {"batcher",
             {{"seed", state.batcher.seed},
              {"epoch", state.batcher.epoch},
              {"step", state.batcher.step}}},
            {"op_calls", state.op_calls},
            {"tokens", state.tokens},
            {"global_batch", state.global_batch},
            {"elapsed_seconds", state.elapsed}};
  if (state.loss_scale > 0) {
    j["loss_scale"] = state.loss_scale;
    j["loss_scale_good_steps"] = state.loss_scale_good_steps;
  }
  return core::AtomicWriteFile(dir / "trainer_state.json", j.dump(2) + "\n");
}

// Reads `file`'s tensors into `into`, by name: all of them, or with
// `subset` (a pipeline stage's) those `into` names.
absl::Status LoadTensors(
    const fs::path& file,
    const std::vector<std::pair<std::string, Tensor>>& into, int64_t step,
    bool subset = false) {
  LLMSYS_ASSIGN_OR_RETURN(tensor::SafetensorsFile f,
                          tensor::ReadSafetensors(file.string()));
  auto it = f.metadata.find("step");
  if (f.metadata["format"] != "llmsys-checkpoint" || it == f.metadata.end())
    return absl::InvalidArgumentError(
        absl::StrCat(file.string(), ": not an llmsys checkpoint"));
  if (it->second != std::to_string(step))
    return absl::DataLossError(absl::StrCat(
        file.string(), " is from step ", it->second,
        " but trainer_state.json from step ", step,
        ": the checkpoint is inconsistent (interrupted while writing?)"));
  if (!subset && f.tensors.size() != into.size())
    return absl::InvalidArgumentError(
        absl::StrCat(file.string(), " holds ", f.tensors.size(),
                     " tensors, the run has ", into.size()));
  for (const auto& [name, t] : into) {
    auto found = f.tensors.find(name);
    if (found == f.tensors.end())
      return absl::InvalidArgumentError(
          absl::StrCat(file.string(), ": no tensor '", name, "'"));
    if (found->second.shape() != t.shape() ||
        !(found->second.dtype() == t.dtype()))
      return absl::InvalidArgumentError(absl::StrCat(
          file.string(), ": '", name, "' is ", found->second.Describe(),
          ", the run expects ", t.Describe()));
    Tensor target = t;
    LLMSYS_RETURN_IF_ERROR(target.CopyFrom(found->second));
  }
  return absl::OkStatus();
}

// `subset`: the session holds one pipeline stage's parameters.
absl::StatusOr<TrainerState> LoadCheckpoint(const fs::path& run_checkpoint,
                                            Session& session,
                                            const Optimizer* optimizer,
                                            bool subset = false) {
  const fs::path dir = CheckpointDir(run_checkpoint);
  const fs::path state_file = dir / "trainer_state.json";
  std::ifstream in(state_file);
  if (!in)
    return absl::NotFoundError(
        absl::StrCat(state_file.string(), ": no checkpoint to resume from"));
  TrainerState state;
  try {
    json j = json::parse(in);
    if (j.at("format") != "llmsys-trainer-state" ||
        j.at("format_version") != kCheckpointFormatVersion)
      return absl::InvalidArgumentError(absl::StrCat(
          state_file.string(), ": not a trainer state of format version ",
          kCheckpointFormatVersion));
    state.step = j.at("step");
    state.batcher.seed = j.at("batcher").at("seed");
    state.batcher.epoch = j.at("batcher").at("epoch");
    state.batcher.step = j.at("batcher").at("step");
    state.op_calls = j.at("op_calls");
    state.tokens = j.at("tokens");
    state.elapsed = j.at("elapsed_seconds");
    state.global_batch = j.value("global_batch", int64_t{0});
    state.loss_scale = j.value("loss_scale", 0.0);
    state.loss_scale_good_steps = j.value("loss_scale_good_steps", int64_t{0});
  } catch (const json::exception& e) {
    return absl::DataLossError(absl::StrCat(
        state_file.string(), ": corrupt trainer state: ", e.what()));
  }
  LLMSYS_RETURN_IF_ERROR(LoadTensors(dir / "model.safetensors",
                                     session.Weights(), state.step, subset));
  if (optimizer != nullptr)
    LLMSYS_RETURN_IF_ERROR(LoadTensors(dir / "optimizer.safetensors",
                                       optimizer->State(), state.step, subset));
  return state;
}

// ---- data ----

// Loads the run's tokenizer (resume) or trains one on the task's text.
absl::Status PrepareTokenizer(Session& session, const fs::path& run_dir,
                              const Task& task, bool resume) {
  const fs::path file = run_dir / "tokenizer.json";
  if (resume) {
    LLMSYS_ASSIGN_OR_RETURN(std::unique_ptr<data::Tokenizer> t,
                            data::LoadTokenizer(file));
    session.SetTokenizer(std::move(t));
    return absl::OkStatus();
  }
  const config::Experiment& e = session.experiment();
  data::BpeOptions options;
  options.vocab_size = static_cast<int32_t>(e.Int("data", "vocab_size"));
  LLMSYS_ASSIGN_OR_RETURN(std::unique_ptr<data::Tokenizer> t,
                          data::TrainTokenizer(e.String("data", "tokenizer"),
                                               task.TokenizerText(), options));
  session.SetTokenizer(std::move(t));
  return absl::OkStatus();
}

// ---- generation ----

// What to generate and how: the run's [generate] section, or that with the
// overrides of `llmsys generate`.
struct GenerationPlan {
  std::vector<std::string> prompts;
  int64_t max_tokens = 0;
  std::string sampler;  // component id
  std::vector<std::pair<std::string, runtime::ParamValue>> sampler_params;
  uint64_t seed = 0;
  bool use_cache = true;
  std::vector<std::string> stop;
  int64_t num_beams = 1;
  double length_penalty = 1.0;
  // Beam search: hypotheses kept per prompt, best first (<= num_beams).
  int64_t hypotheses = 1;
  // Translation: target to source (duplex models).
  bool reverse = false;
};

// The run's [generate] section as a plan for `samples` samples (with beam
// search: the best `samples` hypotheses of one search).
GenerationPlan PlanFromConfig(const Session& session) {
  const config::Experiment& e = session.experiment();
  GenerationPlan plan;
  plan.max_tokens = e.Int("generate", "max_tokens");
  plan.num_beams = e.Int("generate", "num_beams");
  const int64_t samples = e.Int("generate", "samples");
  const int64_t copies =
      plan.num_beams > 1 ? std::min<int64_t>(samples, 1) : samples;
  plan.prompts.assign(static_cast<size_t>(copies),
                      e.String("generate", "prompt"));
  plan.hypotheses = std::min(samples, plan.num_beams);
  plan.sampler = e.String("generate", "sampler");
  plan.sampler_params = e.ComponentParams("generate");
  const int64_t seed = e.Int("generate", "seed");
  plan.seed =
      static_cast<uint64_t>(seed >= 0 ? seed : e.Int("experiment", "seed"));
  plan.use_cache = e.Bool("generate", "use_cache");
  plan.stop = e.Strings("generate", "stop");
  plan.length_penalty = e.Float("generate", "length_penalty");
  return plan;
}

// The sampler component `id`; `where` says who named it.
absl::StatusOr<const runtime::Component*> FindSampler(
    Session& session, const std::string& id, const std::string& where) {
  absl::StatusOr<const runtime::Component*> found =
      session.registry().Find(LLMSYS_KIND_SAMPLER, id);
  if (!found.ok())
    return absl::Status(
        found.status().code(),
        absl::StrCat(where, " \"", id, "\": ", found.status().message()));
  return found;
}

// The plan's sampler with its parameters.
absl::StatusOr<std::unique_ptr<generate::Sampler>> MakeSampler(
    Session& session, const GenerationPlan& plan) {
  LLMSYS_ASSIGN_OR_RETURN(
      const runtime::Component* component,
      FindSampler(session, plan.sampler, "[generate] sampler ="));
  return generate::Sampler::Create(*component, plan.sampler_params);
}

// `text` up to the first stop string in it.
std::string CutAtStop(const std::string& text,
                      const std::vector<std::string>& stop) {
  size_t cut = text.size();
  for (const std::string& s : stop)
    if (!s.empty()) cut = std::min(cut, text.find(s));
  return text.substr(0, cut);
}

// Runs the plan with the session's model: each prompt followed by its
// continuation (with beam search, by its best `hypotheses` ones). <eos>
// ends a sample; a stop string ends it before the string.
absl::StatusOr<std::vector<std::vector<int32_t>>> Translate(
    Session& session, const GenerationPlan& plan,
    const std::vector<std::vector<int32_t>>& sources, bool reverse,
    generate::DecodeStats* stats);
absl::StatusOr<std::vector<std::string>> TranslationText(
    const data::Tokenizer& tokenizer,
    const std::vector<std::vector<int32_t>>& ids);

// A translation run's prompts are sources: their translations, each cut to
// [data] max_source_len tokens first.
absl::StatusOr<GenerateResult> TranslatePrompts(Session& session,
                                                const GenerationPlan& plan) {
  const int64_t limit = session.experiment().Int("data", "max_source_len");
  std::vector<std::vector<int32_t>> sources;
  for (const std::string& p : plan.prompts) {
    sources.push_back(session.tokenizer().Encode(p));
    if (static_cast<int64_t>(sources.back().size()) > limit)
      sources.back().resize(static_cast<size_t>(limit));
  }
  GenerateResult result;
  result.used_cache = plan.use_cache;
  LLMSYS_ASSIGN_OR_RETURN(
      auto ids, Translate(session, plan, sources, plan.reverse, &result.stats));
  LLMSYS_ASSIGN_OR_RETURN(result.texts,
                          TranslationText(session.tokenizer(), ids));
  return result;
}

absl::StatusOr<GenerateResult> RunGeneration(Session& session,
                                             const GenerationPlan& plan) {
  if (session.experiment().String("data", "task") == "translation")
    return TranslatePrompts(session, plan);
  generate::PluginLanguageModel lm(session.model(), session.model_instance(),
                                   &session.ops(), &session.parameters(),
                                   session.block_size());
  const data::Tokenizer& tokenizer = session.tokenizer();
  std::vector<std::vector<int32_t>> ids;
  for (const std::string& prompt : plan.prompts) {
    ids.push_back(tokenizer.Encode(prompt));
    if (ids.back().empty()) ids.back().push_back(data::kBosId);
  }
  GenerateResult result;
  result.used_cache = plan.use_cache;
  auto text_of =
      [&](size_t i,
          const std::vector<int32_t>& tokens) -> absl::StatusOr<std::string> {
    LLMSYS_ASSIGN_OR_RETURN(std::string continuation, tokenizer.Decode(tokens));
    return plan.prompts[i] + CutAtStop(continuation, plan.stop);
  };
  if (plan.num_beams > 1) {
    generate::BeamOptions options{.num_beams = plan.num_beams,
                                  .max_tokens = plan.max_tokens,
                                  .length_penalty = plan.length_penalty,
                                  .eos_tokens = {data::kEosId}};
    LLMSYS_ASSIGN_OR_RETURN(
        auto hyps,
        generate::BeamSearch(lm, ids, options, plan.use_cache, &result.stats));
    for (size_t i = 0; i < hyps.size(); ++i) {
      for (size_t h = 0;
           h < hyps[i].size() && static_cast<int64_t>(h) < plan.hypotheses;
           ++h) {
        LLMSYS_ASSIGN_OR_RETURN(std::string text,
                                text_of(i, hyps[i][h].tokens));
        result.texts.push_back(std::move(text));
      }
    }
    return result;
  }
  LLMSYS_ASSIGN_OR_RETURN(std::unique_ptr<generate::Sampler> sampler,
                          MakeSampler(session, plan));
  generate::DecodeOptions options{
      .max_tokens = plan.max_tokens,
      .stop_tokens = {data::kEosId},
      .stop_strings = plan.stop,
      .token_text = [&](int32_t id) { return tokenizer.TokenBytes(id); },
      .use_cache = plan.use_cache,
      .seed = plan.seed};
  LLMSYS_ASSIGN_OR_RETURN(generate::DecodeResult r,
                          generate::Decode(lm, *sampler, ids, options));
  for (size_t i = 0; i < r.outputs.size(); ++i) {
    LLMSYS_ASSIGN_OR_RETURN(std::string text, text_of(i, r.outputs[i].tokens));
    result.texts.push_back(std::move(text));
  }
  result.stats = r.stats;
  return result;
}

// `text` with every byte that is not part of valid UTF-8 replaced by
// U+FFFD (byte-level tokens cut at a window's edge may split a character),
// so the text metrics always get valid UTF-8.
std::string ValidUtf8(const std::string& text) {
  std::string valid;
  for (size_t i = 0; i < text.size();) {
    const int n = data::Utf8CharLength(text, i);
    if (n == 0) {
      valid += "\xEF\xBF\xBD";
      ++i;
    } else {
      valid.append(text, i, static_cast<size_t>(n));
      i += static_cast<size_t>(n);
    }
  }
  return valid;
}

// The model and tokenizer of `session` as an evaluation reads them; text
// tasks continue their prompts with the run's [generate] sampler.
ModelAccess AccessOf(Session& session) {
  ModelAccess access;
  access.logits = [&session](const std::vector<int32_t>& x, int64_t batch,
                             int64_t block) -> absl::StatusOr<Tensor> {
    autograd::NoGradGuard no_grad;
    LLMSYS_ASSIGN_OR_RETURN(Tensor tokens, data::IdsToTensor(x, batch, block));
    LLMSYS_ASSIGN_OR_RETURN(
        auto out, session.Forward({{"tokens", tokens}}, LLMSYS_MODE_EVAL));
    auto logits = out.find("logits");
    if (logits == out.end())
      return absl::FailedPreconditionError(
          absl::StrCat("model ", session.model().id,
                       " set no 'logits' output, which [[evaluate]] reads"));
    // Evaluators read float32 logits on the host (autocast may have made
    // them 16-bit on a GPU).
    LLMSYS_ASSIGN_OR_RETURN(Tensor host,
                            logits->second->data.ToDevice(tensor::kCpu));
    if (host.dtype() == tensor::kF32) return host;
    return host.To(tensor::kF32);
  };
  access.generate = [&session](const std::vector<std::vector<int32_t>>& prompts,
                               int64_t max_tokens)
      -> absl::StatusOr<std::vector<std::vector<int32_t>>> {
    const GenerationPlan plan = PlanFromConfig(session);
    generate::PluginLanguageModel lm(session.model(), session.model_instance(),
                                     &session.ops(), &session.parameters(),
                                     session.block_size());
    LLMSYS_ASSIGN_OR_RETURN(std::unique_ptr<generate::Sampler> sampler,
                            MakeSampler(session, plan));
    generate::DecodeOptions options{.max_tokens = max_tokens,
                                    .stop_tokens = {data::kEosId},
                                    .use_cache = plan.use_cache,
                                    .seed = plan.seed};
    LLMSYS_ASSIGN_OR_RETURN(generate::DecodeResult r,
                            generate::Decode(lm, *sampler, prompts, options));
    std::vector<std::vector<int32_t>> out;
    for (generate::Continuation& c : r.outputs)
      out.push_back(std::move(c.tokens));
    return out;
  };
  access.decode =
      [&session](
          const std::vector<int32_t>& ids) -> absl::StatusOr<std::string> {
    LLMSYS_ASSIGN_OR_RETURN(std::string text, session.tokenizer().Decode(ids));
    return ValidUtf8(text);
  };
  return access;
}

// ---- translation ----

// Rows of (B, T, V) logits decoded greedily as CTC: the argmax of each of
// row r's first lengths[r] frames, repeats merged, blanks dropped.
std::vector<std::vector<int32_t>> CtcGreedy(const Tensor& logits,
                                            const std::vector<double>& lengths,
                                            int32_t blank) {
  const int64_t b = logits.shape()[0], t = logits.shape()[1],
                v = logits.shape()[2];
  const std::vector<double> x = logits.ToDoubles();
  std::vector<std::vector<int32_t>> out(static_cast<size_t>(b));
  for (int64_t r = 0; r < b; ++r) {
    const int64_t frames =
        std::min<int64_t>(t, static_cast<int64_t>(lengths[r]));
    int32_t previous = -1;
    for (int64_t f = 0; f < frames; ++f) {
      const double* row = x.data() + (r * t + f) * v;
      const int32_t best =
          static_cast<int32_t>(std::max_element(row, row + v) - row);
      if (best != previous && best != blank)
        out[static_cast<size_t>(r)].push_back(best);
      previous = best;
    }
  }
  return out;
}

// Sentences translated together (sorted by length, so a chunk pads little).
constexpr size_t kTranslateChunk = 128;

// Translations of `sources` (ids without specials) with the run's
// [generate] decoder: token by token (the sampler, or beam search with
// num_beams > 1; at most [data] max_target_len tokens and <eos>), or one
// pass read by greedy CTC decoding. `reverse` translates target to source
// (duplex models; the model receives "direction" = 1).
absl::StatusOr<std::vector<std::vector<int32_t>>> Translate(
    Session& session, const GenerationPlan& plan,
    const std::vector<std::vector<int32_t>>& sources, bool reverse,
    generate::DecodeStats* stats) {
  const config::Experiment& e = session.experiment();
  const bool ctc = e.String("generate", "decoder") == "ctc";
  if (reverse && !ctc)
    return absl::InvalidArgumentError(
        "translating in reverse needs a duplex model decoded in one pass "
        "([generate] decoder = \"ctc\", e.g. the reder model)");
  const int64_t max_tokens = e.Int("data", "max_target_len") + 1;
  const int32_t blank = e.Has("model", "blank")
                            ? static_cast<int32_t>(e.Int("model", "blank"))
                            : data::kPadId;
  std::unique_ptr<generate::Sampler> sampler;
  if (!ctc && plan.num_beams == 1) {
    LLMSYS_ASSIGN_OR_RETURN(sampler, MakeSampler(session, plan));
  }
  std::vector<size_t> order(sources.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return sources[a].size() < sources[b].size();
  });
  std::vector<std::vector<int32_t>> out(sources.size());
  for (size_t first = 0; first < order.size(); first += kTranslateChunk) {
    const size_t last = std::min(order.size(), first + kTranslateChunk);
    std::vector<std::vector<int32_t>> chunk;
    for (size_t i = first; i < last; ++i) chunk.push_back(sources[order[i]]);
    generate::Cache conditions = SourceInputs(chunk);
    std::vector<std::vector<int32_t>> result;
    if (ctc) {
      const Clock::time_point start = Clock::now();
      autograd::NoGradGuard no_grad;
      if (reverse) {
        LLMSYS_ASSIGN_OR_RETURN(Tensor direction,
                                Tensor::FromDoubles({1}, {1}, tensor::kI64));
        conditions.emplace_back("direction", direction);
      }
      LLMSYS_ASSIGN_OR_RETURN(auto outputs,
                              session.Forward(conditions, LLMSYS_MODE_EVAL));
      auto logits = outputs.find("logits");
      if (logits == outputs.end() || logits->second->data.ndim() != 3)
        return absl::FailedPreconditionError(absl::StrCat(
            "model ", session.model().id,
            " set no (B, T, V) 'logits' output for a source batch, which "
            "[generate] decoder = \"ctc\" reads"));
      const Tensor& l = logits->second->data;
      std::vector<double> lengths(chunk.size(),
                                  static_cast<double>(l.shape()[1]));
      if (auto n = outputs.find("logit_lengths"); n != outputs.end())
        lengths = n->second->data.ToDoubles();
      result = CtcGreedy(l, lengths, blank);
      if (stats != nullptr) {  // one pass: all of it counts as prefill
        stats->sequences += static_cast<int64_t>(chunk.size());
        for (size_t i = 0; i < chunk.size(); ++i) {
          stats->prompt_tokens += static_cast<int64_t>(chunk[i].size());
          stats->generated_tokens += static_cast<int64_t>(result[i].size());
        }
        ++stats->model_calls;
        stats->prefill_seconds += Seconds(start);
      }
    } else {
      generate::PluginLanguageModel lm(session.model(),
                                       session.model_instance(), &session.ops(),
                                       &session.parameters(), max_tokens + 1);
      const std::vector<std::vector<int32_t>> prompts(chunk.size(),
                                                      {data::kBosId});
      if (plan.num_beams > 1) {
        generate::BeamOptions options{.num_beams = plan.num_beams,
                                      .max_tokens = max_tokens,
                                      .length_penalty = plan.length_penalty,
                                      .eos_tokens = {data::kEosId}};
        LLMSYS_ASSIGN_OR_RETURN(
            auto hyps, generate::BeamSearch(lm, prompts, options,
                                            plan.use_cache, stats, conditions));
        for (auto& h : hyps) result.push_back(std::move(h.at(0).tokens));
      } else {
        generate::DecodeOptions options{.max_tokens = max_tokens,
                                        .stop_tokens = {data::kEosId},
                                        .use_cache = plan.use_cache,
                                        .seed = plan.seed,
                                        .conditions = conditions};
        LLMSYS_ASSIGN_OR_RETURN(
            generate::DecodeResult r,
            generate::Decode(lm, *sampler, prompts, options));
        if (stats != nullptr) {
          const generate::DecodeStats& d = r.stats;
          stats->sequences += d.sequences;
          stats->prompt_tokens += d.prompt_tokens;
          stats->generated_tokens += d.generated_tokens;
          stats->model_calls += d.model_calls;
          stats->prefill_seconds += d.prefill_seconds;
          stats->decode_seconds += d.decode_seconds;
        }
        for (generate::Continuation& c : r.outputs)
          result.push_back(std::move(c.tokens));
      }
    }
    for (size_t i = first; i < last; ++i)
      out[order[i]] = std::move(result[i - first]);
  }
  return out;
}

// Decoded translations: one line each (a newline the model produced
// becomes a space, so line i stays sentence i).
absl::StatusOr<std::vector<std::string>> TranslationText(
    const data::Tokenizer& tokenizer,
    const std::vector<std::vector<int32_t>>& ids) {
  std::vector<std::string> lines;
  for (const std::vector<int32_t>& t : ids) {
    LLMSYS_ASSIGN_OR_RETURN(std::string text, tokenizer.Decode(t));
    std::replace(text.begin(), text.end(), '\n', ' ');
    lines.push_back(ValidUtf8(text));
  }
  return lines;
}

// Translations already made at this step, by split, direction and count.
using TranslationCache = std::map<std::string, std::vector<std::string>>;

// A translation [[evaluate]] entry: translates the first `segments` (0:
// all) sentences of its split (or takes them from `cache`), writes them to
// <run>/translations/<split>.<lang>, and scores them against the split's
// reference text.
absl::StatusOr<eval::EvalResult> RunTranslationEvaluation(
    Session& session, const Task& task, const config::EvaluateEntry& entry,
    const fs::path& run_dir, TranslationCache& cache) {
  const config::Experiment& e = session.experiment();
  const TranslationSplit* split = task.split(entry.split);
  if (split == nullptr)
    return absl::InvalidArgumentError(
        absl::StrCat("no split ", entry.split));  // CheckEvaluation's
  const auto& sources = entry.reverse ? split->target : split->source;
  const auto& refs = entry.reverse ? split->source_text : split->target_text;
  size_t n = sources.size();
  if (entry.segments > 0) n = std::min(n, static_cast<size_t>(entry.segments));
  const std::string key =
      absl::StrCat(entry.split, entry.reverse ? ":reverse:" : ":", n);
  std::vector<std::string>& hyps = cache[key];
  if (hyps.empty()) {
    const std::vector<std::vector<int32_t>> chosen(
        sources.begin(), sources.begin() + static_cast<int64_t>(n));
    const Clock::time_point start = Clock::now();
    generate::DecodeStats stats;
    LLMSYS_ASSIGN_OR_RETURN(auto ids,
                            Translate(session, PlanFromConfig(session), chosen,
                                      entry.reverse, &stats));
    LLMSYS_ASSIGN_OR_RETURN(hyps, TranslationText(session.tokenizer(), ids));
    std::string lang =
        e.String("data", entry.reverse ? "source_lang" : "target_lang");
    if (lang.empty()) lang = entry.reverse ? "src" : "tgt";  // synthetic
    const fs::path dir = run_dir / "translations";
    std::error_code ec;
    fs::create_directories(dir, ec);
    std::string text;
    for (const std::string& h : hyps) absl::StrAppend(&text, h, "\n");
    LLMSYS_RETURN_IF_ERROR(core::AtomicWriteFile(
        dir / absl::StrCat(entry.split, ".", lang), text));
    core::Log(core::LogLevel::kInfo,
              absl::StrFormat("translated %d %s sentences%s in %.1f s", n,
                              entry.split, entry.reverse ? " in reverse" : "",
                              Seconds(start)));
  }
  std::vector<eval::References> references;
  for (size_t i = 0; i < n; ++i) references.push_back({refs[i]});
  LLMSYS_ASSIGN_OR_RETURN(
      std::unique_ptr<eval::Evaluator> evaluator,
      eval::Evaluator::Create(*entry.component, entry.params));
  LLMSYS_RETURN_IF_ERROR(evaluator->AddText(hyps, references));
  return evaluator->Result();
}

// The masked targets of `b` the model's "logits" predict correctly (argmax).
absl::StatusOr<int64_t> CountCorrect(const std::map<std::string, Var>& outputs,
                                     const TaskBatch& b) {
  auto logits = outputs.find("logits");
  if (logits == outputs.end())
    return absl::FailedPreconditionError(
        "the model set no 'logits' output, which the masked-token accuracy "
        "reads");
  const Tensor l = logits->second->data.Contiguous();
  const int64_t v = l.shape().back();
  if (l.numel() != static_cast<int64_t>(b.targets.size()) * v)
    return absl::FailedPreconditionError(
        absl::StrCat("the model's logits ", l.Describe(), " do not match (",
                     b.rows, ", ", b.cols, ") targets"));
  const std::vector<double> x = l.ToDoubles();
  int64_t correct = 0;
  for (size_t i = 0; i < b.targets.size(); ++i) {
    if (b.targets[i] < 0) continue;
    const double* row = x.data() + i * static_cast<size_t>(v);
    correct += (std::max_element(row, row + v) - row) == b.targets[i];
  }
  return correct;
}

// Rank `rank`'s rows of a batch split over `ranks`: rows
// [R rank / ranks, R (rank + 1) / ranks) of R (equal shares when R divides;
// an epoch's last, short batch may leave a rank fewer or none). Each input
// whose first dimension is the batch's, the targets, and the count of
// predicted tokens among them.
absl::StatusOr<TaskBatch> RowsOf(const TaskBatch& b, int rank, int ranks) {
  const int64_t first = b.rows * rank / ranks;
  const int64_t n = b.rows * (rank + 1) / ranks - first;
  TaskBatch out;
  out.rows = n;
  out.cols = b.cols;
  for (const auto& [name, t] : b.inputs) {
    if (t.ndim() == 0 || t.shape()[0] != b.rows) {
      out.inputs.emplace_back(name, t);
      continue;
    }
    LLMSYS_ASSIGN_OR_RETURN(Tensor rows, t.Slice(0, first, first + n));
    out.inputs.emplace_back(name, rows.Contiguous());
  }
  out.targets.assign(b.targets.begin() + first * b.cols,
                     b.targets.begin() + (first + n) * b.cols);
  for (int32_t y : out.targets) out.tokens += y != kIgnoreTarget;
  return out;
}

// The model's other scalar training outputs ("ctc_forward",
// "ctc_infeasible", ...), logged with each step line: a float's mean over
// the micro-batches since the last line, an integer's sum (a count), whose
// run total also goes to summary.json (this process's steps; in a
// distributed run, rank 0's rows only).
class ScalarOutputs {
 public:
  void Add(const std::map<std::string, Var>& outputs) {
    for (const auto& [name, v] : outputs) {
      if (name == "loss" || name == "nll_loss" || v->data.numel() != 1)
        continue;
      Entry& e = entries_[name];
      e.integer = !tensor::IsFloatDType(v->data.dtype());
      const double x = ScalarOf(v);
      e.sum += x;
      e.total += x;
      ++e.count;
    }
  }
  void Flush(json& record) {
    for (auto& [name, e] : entries_) {
      if (e.count == 0) continue;
      if (e.integer)
        record[name] = static_cast<int64_t>(e.sum);
      else
        record[name] = e.sum / static_cast<double>(e.count);
      e.sum = 0;
      e.count = 0;
    }
  }
  json totals() const {
    json t = json::object();
    for (const auto& [name, e] : entries_)
      if (e.integer) t[name] = static_cast<int64_t>(e.total);
    return t;
  }

 private:
  struct Entry {
    double sum = 0, total = 0;
    int64_t count = 0;
    bool integer = false;
  };
  std::map<std::string, Entry> entries_;
};

class MetricsLog {
 public:
  // A new file; or, resuming from the checkpoint at `step`, the records
  // through that step (a process that died after it wrote later ones, which
  // the resumed run writes again; a torn last line is dropped too).
  absl::Status Open(const fs::path& file, std::optional<int64_t> step) {
    if (step) {
      std::ifstream in(file);
      std::string line, kept;
      int64_t dropped = 0;
      while (std::getline(in, line)) {
        const json j = json::parse(line, nullptr, /*allow_exceptions=*/false);
        if (j.is_object() && j.contains("step") &&
            j["step"].is_number_integer() && j["step"].get<int64_t>() <= *step)
          kept += line + "\n";
        else
          ++dropped;
      }
      in.close();
      if (dropped > 0) {
        core::Log(core::LogLevel::kInfo,
                  absl::StrFormat("%s: %d records after the checkpoint's step "
                                  "%d dropped (they are written again)",
                                  file.string(), dropped, *step));
        LLMSYS_RETURN_IF_ERROR(core::AtomicWriteFile(file, kept));
      }
    }
    out_.open(file, step ? std::ios::app : std::ios::trunc);
    if (!out_)
      return absl::InternalError(absl::StrCat(file.string(), ": cannot write"));
    return absl::OkStatus();
  }
  // A no-op unless opened (ranks other than 0 of a distributed run).
  void Write(const json& j) {
    if (!out_.is_open()) return;
    out_ << j.dump() << "\n";
    out_.flush();
  }

 private:
  std::ofstream out_;
};

// Set by SIGINT/SIGTERM while a SignalCheckpoint is alive; read at each
// step's end.
volatile sig_atomic_t g_stop_signal = 0;

void OnStopSignal(int sig) {
  g_stop_signal = sig;
  // A second signal is not caught: it ends the process at once.
  signal(sig, SIG_DFL);
}

// Catches SIGINT and SIGTERM for its lifetime (when `enabled`), restoring
// the previous handlers after.
class SignalCheckpoint {
 public:
  explicit SignalCheckpoint(bool enabled) : enabled_(enabled) {
    if (!enabled_) return;
    g_stop_signal = 0;
    struct sigaction action {};
    action.sa_handler = OnStopSignal;
    sigemptyset(&action.sa_mask);
    sigaction(SIGINT, &action, &old_int_);
    sigaction(SIGTERM, &action, &old_term_);
  }
  ~SignalCheckpoint() {
    if (!enabled_) return;
    sigaction(SIGINT, &old_int_, nullptr);
    sigaction(SIGTERM, &old_term_, nullptr);
  }
  SignalCheckpoint(const SignalCheckpoint&) = delete;
  SignalCheckpoint& operator=(const SignalCheckpoint&) = delete;

  bool stopped() const { return enabled_ && g_stop_signal != 0; }

 private:
  bool enabled_;
  struct sigaction old_int_ {};
  struct sigaction old_term_ {};
};

// What this process of the run is, for provenance.json; the ops come from
// the dispatcher when the record is written.
absl::StatusOr<ProvenanceInputs> ProvenanceOf(
    Session& session, const RunOptions& options, const fs::path& run_dir,
    const Optimizer& optimizer, bool sampler_used, int64_t start_step) {
  const config::Experiment& e = session.experiment();
  ProvenanceInputs in;
  in.command = options.command.empty() ? core::CommandLine() : options.command;
  in.experiment = options.resume.empty() ? options.experiment
                                         : options.resume / "config.toml";
  in.sets = options.sets;
  in.started = core::UtcTimestamp(std::chrono::system_clock::now());
  in.start_step = start_step;
  in.seed = static_cast<uint64_t>(e.Int("experiment", "seed"));
  in.threads = session.ops().num_threads();
  in.device = e.String("train", "device");
  in.ranks = options.communicator != nullptr ? options.communicator->size() : 1;
  LLMSYS_ASSIGN_OR_RETURN(in.config_sha256,
                          core::Sha256File(run_dir / "config.toml"));
  in.components = {&session.model(), &optimizer.component()};
  if (sampler_used) {
    absl::StatusOr<const runtime::Component*> sampler = session.registry().Find(
        LLMSYS_KIND_SAMPLER, PlanFromConfig(session).sampler);
    if (sampler.ok()) in.components.push_back(*sampler);
  }
  for (const config::EvaluateEntry& entry : e.evaluations())
    in.components.push_back(entry.component);
  in.registry = &session.registry();
  in.machine = core::ProbeMachine();
  in.build = core::GetBuildInfo();
  return in;
}

}  // namespace

absl::StatusOr<RunResult> RunExperiment(const RunOptions& options) {
  const Clock::time_point start = Clock::now();
  const bool resume = !options.resume.empty();
  const fs::path config_file =
      resume ? options.resume / "config.toml" : options.experiment;
  if (resume && !fs::exists(config_file))
    return absl::NotFoundError(
        absl::StrCat(options.resume.string(),
                     ": not a run directory (no config.toml to resume from)"));
  LLMSYS_ASSIGN_OR_RETURN(
      std::unique_ptr<Session> session,
      Session::Open(config_file, options.sets, options.plugin_dirs,
                    options.default_plugin_dirs));
  const config::Experiment& e = session->experiment();
  // The ranks of a distributed run (below: how they share the work).
  distributed::Communicator* const comm =
      options.communicator != nullptr && options.communicator->size() > 1
          ? options.communicator
          : nullptr;
  const int rank = comm != nullptr ? comm->rank() : 0;
  const int ranks = comm != nullptr ? comm->size() : 1;
  const bool writer = rank == 0;  // writes the run directory and logs
  // Pipeline parallel: the model's layers split into `stages`, one rank
  // each, and `data_ranks` such pipelines data parallel, sharing each
  // batch (without a pipeline: every rank). Rank = replica x stages + stage: a
  // pipeline's stages are neighbouring ranks (one machine's, where they
  // fit), as activations go between them every micro-batch; the gradients
  // are summed over the ranks that hold the same stage, once a step.
  const int64_t stages = e.Int("distributed", "pipeline_stages");
  const bool pipeline = stages > 1;
  if (ranks % stages != 0)
    return absl::InvalidArgumentError(absl::StrCat(
        e.file().string(), ": [distributed] pipeline_stages = ", stages,
        " needs one rank per stage (mpirun -np ", stages, ", or ", 2 * stages,
        " for 2 data-parallel pipelines); this run has ", ranks, " rank(s): ",
        ranks > 1 ? absl::StrCat("--set distributed.pipeline_stages=", ranks,
                                 " splits the model over them, or 1 trains "
                                 "data parallel")
                  : "--set distributed.pipeline_stages=1 trains the whole "
                    "model in this process"));
  const int data_ranks = ranks / static_cast<int>(stages);
  const int stage = rank % static_cast<int>(stages);
  const int replica = rank / static_cast<int>(stages);
  const bool last_stage = stage == stages - 1;
  if (comm != nullptr) {
    comm->set_timeout(e.Float("distributed", "timeout"));
    // Every rank must train the same configuration (the same file and
    // --set arguments, the same plugins' parameters): compare with rank 0's.
    const std::string mine = core::Sha256Hex(e.ResolvedToml());
    std::string rank0 = mine;
    LLMSYS_RETURN_IF_ERROR(
        comm->Broadcast(rank0.data(), static_cast<int64_t>(rank0.size()), 0));
    int64_t differ = rank0 != mine ? 1 : 0;  // all stop before any file
    LLMSYS_RETURN_IF_ERROR(comm->AllReduceSum(&differ, 1, tensor::kI64));
    if (differ > 0)
      return absl::FailedPreconditionError(absl::StrCat(
          differ, " rank(s) resolved another configuration than rank 0's",
          rank0 != mine ? absl::StrCat(", this one among them (sha256 ",
                                       mine.substr(0, 12), " vs ",
                                       rank0.substr(0, 12), ")")
                        : "",
          ": every rank must read the same experiment file with the same "
          "--set arguments"));
  }
  // The ranks of this rank's pipeline (`pipe`, ranked by stage) and those
  // holding its stage (`dp`, ranked by replica): the world itself when it
  // is one of them, else groups of it; null where there is no such group.
  distributed::Communicator* pipe = nullptr;
  distributed::Communicator* dp = nullptr;
  std::unique_ptr<distributed::Communicator> pipe_group, dp_group;
  if (comm != nullptr && pipeline && data_ranks > 1) {
    LLMSYS_ASSIGN_OR_RETURN(
        pipe_group,
        comm->Split(replica, stage, absl::StrCat("pipeline ", replica)));
    LLMSYS_ASSIGN_OR_RETURN(
        dp_group, comm->Split(stage, replica, absl::StrCat("stage ", stage)));
    pipe = pipe_group.get();
    dp = dp_group.get();
  } else if (comm != nullptr) {
    (pipeline ? pipe : dp) = comm;
  }

  fs::path run_dir = options.resume;
  if (!resume) {
    std::string name = e.String("experiment", "name");
    if (name.empty()) name = options.experiment.stem().string();
    run_dir = e.ResolvePath(e.String("experiment", "output")) / name;
    if (writer && fs::exists(run_dir) && !options.overwrite)
      return absl::AlreadyExistsError(absl::StrCat(
          run_dir.string(), " already exists: pass --resume ", run_dir.string(),
          " to continue it, --overwrite to replace it, or --set "
          "experiment.name=... for a new one"));
  }

  // Data and tokenizer.
  LLMSYS_ASSIGN_OR_RETURN(std::unique_ptr<Task> task, Task::Load(e));
  LLMSYS_RETURN_IF_ERROR(PrepareTokenizer(*session, run_dir, *task, resume));
  const int64_t batch = e.Int("train", "batch_size");
  const int64_t block = e.Int("train", "block_size");
  const uint64_t seed = static_cast<uint64_t>(e.Int("experiment", "seed"));
  LLMSYS_RETURN_IF_ERROR(
      task->Prepare(session->tokenizer(), batch * data_ranks, block, seed));

  // Model and optimizer.
  if (pipeline)
    session->SetStage(static_cast<uint32_t>(stage),
                      static_cast<uint32_t>(stages));
  // On GPUs, several ranks: a GPU of its own for each (the local rank's)
  // where every machine has enough, and then NCCL for the pipeline's and
  // the gradients' transfers (options.gpu_communicator); else they share
  // GPU 0 and communicate through host memory.
  bool gpu_per_rank = false;
  if (comm != nullptr && e.String("train", "device") == "cuda") {
    const absl::Status per_rank =
        distributed::GpuPerRank(*comm, cuda::DeviceCount());
    gpu_per_rank = per_rank.ok();
    if (gpu_per_rank)
      session->SetGpu(comm->local_rank());
    else if (writer)
      core::Log(core::LogLevel::kInfo,
                absl::StrCat(per_rank.message(),
                             ": every rank uses GPU 0, and the ranks "
                             "communicate through host memory"));
  }
  LLMSYS_RETURN_IF_ERROR(session->CreateModel());
  std::unique_ptr<distributed::Communicator> pipe_gpu, dp_gpu;
  if (gpu_per_rank && options.gpu_communicator) {
    for (auto [group, gpu] : {std::pair(&pipe, &pipe_gpu), {&dp, &dp_gpu}}) {
      if (*group == nullptr) continue;
      LLMSYS_ASSIGN_OR_RETURN(
          *gpu, options.gpu_communicator(**group, session->device()));
      (*gpu)->set_timeout(e.Float("distributed", "timeout"));
      *group = gpu->get();
    }
  }
  if (comm != nullptr) {
    // Each rank its own dropout masks (the parameters' initialization keeps
    // the run's seed; rank 0's are broadcast below anyway).
    session->ops().set_seed(seed + 0x9E3779B97F4A7C15ull *
                                       static_cast<uint64_t>(rank));
    // threads = 0 (all cores): the ranks on one machine share them.
    if (e.Int("train", "threads") == 0)
      session->ops().set_num_threads(static_cast<int32_t>(
          std::max(1u, std::thread::hardware_concurrency()) /
          static_cast<unsigned>(std::max(1, comm->local_size()))));
  }
  // Everything used after training is checked now, not after hours of it:
  // the evaluators with their parameters, and the sampler (of the samples
  // and of text evaluations) with its own.
  bool sampler_needed = e.Int("generate", "samples") > 0 &&
                        e.Int("generate", "num_beams") == 1 &&
                        task->kind() != "mlm";
  for (const config::EvaluateEntry& entry : e.evaluations()) {
    LLMSYS_RETURN_IF_ERROR(CheckEvaluation(entry, *task));
    sampler_needed = sampler_needed || entry.ReadsText();
  }
  if (sampler_needed)
    LLMSYS_RETURN_IF_ERROR(
        MakeSampler(*session, PlanFromConfig(*session)).status());
  LLMSYS_ASSIGN_OR_RETURN(const runtime::Component* optimizer_component,
                          OptimizerFor(*session));
  LLMSYS_ASSIGN_OR_RETURN(
      std::unique_ptr<Optimizer> optimizer,
      Optimizer::Create(*optimizer_component, e.ComponentParams("optimizer"),
                        session->parameters().all()));
  // The run directory, once everything it describes is known to work (a
  // failed start leaves nothing behind).
  if (!resume && writer) {
    if (fs::exists(run_dir)) {  // --overwrite (checked above)
      std::error_code ec;
      fs::remove_all(run_dir, ec);
      if (ec)
        return absl::InternalError(
            absl::StrCat(run_dir.string(), ": cannot remove: ", ec.message()));
    }
    std::error_code ec;
    fs::create_directories(run_dir, ec);
    if (ec)
      return absl::InternalError(
          absl::StrCat(run_dir.string(), ": cannot create: ", ec.message()));
    LLMSYS_RETURN_IF_ERROR(
        core::AtomicWriteFile(run_dir / "config.toml", e.ResolvedToml()));
    LLMSYS_RETURN_IF_ERROR(
        session->tokenizer().Save(run_dir / "tokenizer.json"));
  }

  TrainerState state;
  state.batcher = task->state();
  if (resume) {
    LLMSYS_ASSIGN_OR_RETURN(
        state, LoadCheckpoint(run_dir / "checkpoint", *session, optimizer.get(),
                              /*subset=*/pipeline));
    // The data position counts batches of the saved size. lm windows are
    // draws k = step x batch + row of one random stream: another global
    // batch goes on at the first draw not used yet. An epoch's position
    // would land elsewhere in the epoch: refused.
    if (state.global_batch > 0 && state.global_batch != batch * data_ranks &&
        task->kind() == "lm") {
      state.batcher.step =
          (state.batcher.step * state.global_batch + batch * data_ranks - 1) /
          (batch * data_ranks);
    } else if (state.global_batch > 0 &&
               state.global_batch != batch * data_ranks)
      return absl::FailedPreconditionError(absl::StrFormat(
          "%s: the checkpoint's data position counts batches of %d "
          "examples, and this run's batch is %d (%d rank(s) x batch_size "
          "%d); resume with ranks x batch_size = %d, e.g. --set "
          "train.batch_size=%d",
          (run_dir / "checkpoint").string(), state.global_batch,
          batch * data_ranks, data_ranks, batch, state.global_batch,
          std::max<int64_t>(1, state.global_batch / data_ranks)));
    LLMSYS_RETURN_IF_ERROR(task->Restore(state.batcher));
    session->ops().set_calls(state.op_calls);
  }
  std::unique_ptr<distributed::GradientSync> gradient_sync;
  // Pipeline: the parameters several stages hold (gpt's tied wte, on the
  // first and the last), whose gradients are summed over those stages.
  std::optional<distributed::SharedParameters> shared;
  if (pipe != nullptr) {
    LLMSYS_ASSIGN_OR_RETURN(shared, distributed::SharedParameters::Find(
                                        *pipe, session->NamedTrainableVars()));
  }
  if (dp != nullptr) {
    // Every rank starts from rank 0's weights, whatever each initialized
    // or read (the optimizer state is read from the same checkpoint).
    std::vector<Var> all;
    for (const runtime::Parameter& p : session->parameters().all())
      all.push_back(p.var);
    LLMSYS_RETURN_IF_ERROR(distributed::BroadcastParameters(*dp, all));
    gradient_sync = std::make_unique<distributed::GradientSync>(
        *dp, session->TrainableVars(),
        distributed::GradientSync::Options{
            .bucket_bytes = static_cast<int64_t>(
                e.Float("distributed", "bucket_mb") * 1024 * 1024),
            .overlap = e.Bool("distributed", "overlap")});
  }
  MetricsLog metrics;
  if (writer)
    LLMSYS_RETURN_IF_ERROR(metrics.Open(
        run_dir / "metrics.jsonl",
        resume ? std::optional<int64_t>(state.step) : std::nullopt));
  // provenance.json: now, so that a run that fails still says what it ran
  // on, and again after this process's first step and at the end, once the
  // dispatcher has chosen the implementation of every op used.
  // (Rank 0's alone: it reads the config.toml rank 0 wrote.)
  std::optional<ProvenanceFile> provenance_file;
  ProvenanceInputs provenance;
  if (writer) {
    LLMSYS_ASSIGN_OR_RETURN(provenance_file,
                            ProvenanceFile::Open(run_dir, resume));
    LLMSYS_ASSIGN_OR_RETURN(provenance,
                            ProvenanceOf(*session, options, run_dir, *optimizer,
                                         sampler_needed, state.step));
  }
  auto write_provenance = [&]() {
    if (!provenance_file) return absl::OkStatus();
    provenance.ops = session->ops().Choices();
    return provenance_file->Write(MakeProvenance(provenance));
  };
  LLMSYS_RETURN_IF_ERROR(write_provenance());

  const int64_t steps = e.Int("train", "steps");
  const int64_t accumulate = e.Int("train", "accumulate");
  const int64_t log_every = e.Int("train", "log_every");
  const int64_t eval_every = e.Int("train", "eval_every");
  const int64_t eval_batches = e.Int("train", "eval_batches");
  const int64_t ckpt_every = e.Int("train", "checkpoint_every");
  const double clip = e.Float("train", "grad_clip");
  const int64_t micro_batches = e.Int("distributed", "micro_batches");
  const bool skip_nonfinite = e.String("train", "on_nonfinite") == "skip";
  Schedule schedule{.lr = e.Float("schedule", "lr"),
                    .decay = e.String("schedule", "decay"),
                    .warmup_steps = e.Int("schedule", "warmup_steps"),
                    .min_lr = e.Float("schedule", "min_lr"),
                    .total_steps = steps};
  const bool bar =
      writer && options.progress_bar.value_or(isatty(STDERR_FILENO) != 0);
  std::vector<Var> params = session->TrainableVars();
  int64_t n_params = 0;
  // Pipeline: the gradient norm and the parameter count are over every
  // stage's parameters, each shared one counted once.
  std::optional<NormOverRanks> norm_over_stages;
  if (pipeline) {
    norm_over_stages.emplace();
    norm_over_stages->sum = [&](double* v) {
      return pipe->AllReduceSum(v, 1, tensor::kF64);
    };
    for (const auto& [name, var] : session->NamedTrainableVars())
      norm_over_stages->counted.push_back(shared->Counts(name));
  }
  for (size_t i = 0; i < params.size(); ++i)
    if (!norm_over_stages || norm_over_stages->counted[i])
      n_params += params[i]->data.numel();
  if (pipeline)
    LLMSYS_RETURN_IF_ERROR(pipe->AllReduceSum(&n_params, 1, tensor::kI64));
  if (writer)
    core::Log(
        core::LogLevel::kInfo,
        absl::StrFormat(
            "run %s: %s task, model %s (%d parameters), optimizer %s, %d "
            "steps of %s x %d micro-batches%s%s, %s, vocabulary %d",
            run_dir.string(), task->kind(), session->model().id, n_params,
            optimizer->component().id, steps,
            task->kind() == "lm"
                ? absl::StrFormat("%d x %d tokens", batch, block)
                : absl::StrFormat("%d examples", batch),
            accumulate,
            pipeline ? absl::StrFormat(
                           ", over %d pipeline stages (GPipe, each batch as %d "
                           "micro-batches)%s",
                           stages, micro_batches,
                           data_ranks > 1
                               ? absl::StrFormat(" in each of %d data-parallel "
                                                 "pipelines",
                                                 data_ranks)
                               : "")
                     : "",
            comm != nullptr
                ? absl::StrCat(", on each of ", comm->Describe(),
                               pipe_gpu || dp_gpu
                                   ? ", NCCL between the ranks' GPUs"
                                   : "")
                : "",
            task->Describe(), session->tokenizer().vocab_size()));

  // Pipeline: this stage's forward pass of `b`: the previous stage's
  // "pipeline.out" received as "pipeline.in" (a leaf whose gradient goes
  // back to it), this stage's "pipeline.out" sent to the next. The last
  // stage keeps the model's outputs.
  struct StageForward {
    Var in;   // not on the first stage
    Var out;  // "pipeline.out"; on the last stage, the loss
    std::map<std::string, Var> outputs;  // the last stage's
  };
  constexpr int kForwardTag = 0, kBackwardTag = 1;
  auto stage_forward = [&](const TaskBatch& b,
                           uint32_t mode) -> absl::StatusOr<StageForward> {
    StageForward f;
    std::vector<std::pair<std::string, Var>> vars;
    if (stage > 0) {
      LLMSYS_ASSIGN_OR_RETURN(
          Tensor in, distributed::RecvTensor(*pipe, stage - 1, kForwardTag));
      LLMSYS_ASSIGN_OR_RETURN(in, in.ToDevice(session->device()));
      f.in = autograd::MakeLeaf(std::move(in), autograd::GradEnabled());
      vars.emplace_back("pipeline.in", f.in);
    }
    LLMSYS_ASSIGN_OR_RETURN(f.outputs, session->Forward(b.inputs, mode, vars));
    if (last_stage) return f;
    auto out = f.outputs.find("pipeline.out");
    if (out == f.outputs.end())
      return absl::FailedPreconditionError(absl::StrCat(
          "model ", session->model().id, ", pipeline stage ", stage, " of ",
          stages, ", set no 'pipeline.out' output for the next stage"));
    f.out = out->second;
    f.outputs.clear();
    LLMSYS_RETURN_IF_ERROR(
        distributed::SendTensor(*pipe, f.out->data, stage + 1, kForwardTag));
    return f;
  };

  // The validation loss: the mean over the predicted tokens of the model's
  // "nll_loss" (without label smoothing) or else "loss"; with it, for mlm,
  // the accuracy of the masked tokens.
  struct Validation {
    double loss = NAN;
    std::optional<double> accuracy;
  };
  auto evaluate = [&]() -> absl::StatusOr<Validation> {
    autograd::NoGradGuard no_grad;
    LLMSYS_ASSIGN_OR_RETURN(std::vector<TaskBatch> batches,
                            task->Validation(eval_batches));
    double sum = 0;
    int64_t tokens = 0, correct = 0;
    for (TaskBatch& b : batches) {
      std::map<std::string, Var> out;
      if (data_ranks > 1) {  // this replica's rows of each batch
        LLMSYS_ASSIGN_OR_RETURN(b, RowsOf(b, replica, data_ranks));
        if (b.tokens == 0) continue;  // on each of its stages alike
      }
      if (pipeline) {  // through the stages; the last has the loss
        LLMSYS_ASSIGN_OR_RETURN(StageForward f,
                                stage_forward(b, LLMSYS_MODE_EVAL));
        if (!last_stage) continue;
        out = std::move(f.outputs);
      } else {
        LLMSYS_ASSIGN_OR_RETURN(out,
                                session->Forward(b.inputs, LLMSYS_MODE_EVAL));
      }
      auto loss = out.find("nll_loss");
      if (loss == out.end()) loss = out.find("loss");
      if (loss == out.end())
        return absl::FailedPreconditionError(absl::StrCat(
            "model ", session->model().id,
            " set no 'loss' output in evaluation mode with targets"));
      sum += ScalarOf(loss->second) * static_cast<double>(b.tokens);
      tokens += b.tokens;
      if (task->kind() == "mlm") {
        LLMSYS_ASSIGN_OR_RETURN(int64_t c, CountCorrect(out, b));
        correct += c;
      }
    }
    if (comm != nullptr) {
      double totals[3] = {sum, static_cast<double>(tokens),
                          static_cast<double>(correct)};
      LLMSYS_RETURN_IF_ERROR(comm->AllReduceSum(totals, 3, tensor::kF64));
      sum = totals[0];
      tokens = static_cast<int64_t>(totals[1]);
      correct = static_cast<int64_t>(totals[2]);
    }
    Validation v;
    if (tokens > 0) v.loss = sum / static_cast<double>(tokens);
    if (task->kind() == "mlm" && tokens > 0)
      v.accuracy = static_cast<double>(correct) / static_cast<double>(tokens);
    return v;
  };

  const ModelAccess access = AccessOf(*session);
  const bool samples_wanted =
      e.Int("generate", "samples") > 0 && task->kind() != "mlm";
  // Pipeline: rank 0's copy of the whole model, for evaluations and
  // samples: made from the run directory when first needed, its weights
  // gathered from its pipeline's stages each time.
  std::unique_ptr<Session> whole;
  auto gather_whole = [&]() -> absl::Status {
    if (replica != 0) return absl::OkStatus();
    LLMSYS_ASSIGN_OR_RETURN(
        distributed::NamedTensors weights,
        distributed::GatherNamed(*pipe, 0, session->Weights()));
    if (!writer) return absl::OkStatus();
    if (whole == nullptr) {
      LLMSYS_ASSIGN_OR_RETURN(
          whole, Session::Open(run_dir / "config.toml", {}, options.plugin_dirs,
                               options.default_plugin_dirs));
      LLMSYS_ASSIGN_OR_RETURN(std::unique_ptr<data::Tokenizer> t,
                              data::LoadTokenizer(run_dir / "tokenizer.json"));
      whole->SetTokenizer(std::move(t));
      LLMSYS_RETURN_IF_ERROR(whole->CreateModel());
    }
    std::map<std::string, Tensor> by_name(weights.begin(), weights.end());
    for (auto& [name, target] : whole->Weights()) {
      auto it = by_name.find(name);
      if (it == by_name.end())
        return absl::InternalError(
            absl::StrCat("no pipeline stage holds parameter '", name,
                         "' of model ", whole->model().id));
      LLMSYS_RETURN_IF_ERROR(target.CopyFrom(it->second));
    }
    return absl::OkStatus();
  };
  json evaluations = json::array();  // the [[evaluate]] results at the end

  RunResult result;
  result.run_dir = run_dir;
  double last_loss = NAN, last_val = NAN;
  int64_t skipped = 0;
  const Clock::time_point loop_start = Clock::now();
  const int64_t first_step = state.step + 1;
  int64_t tokens_this_process = 0;
  ScalarOutputs extra;
  // Only around the steps: a signal in the final evaluation ends it.
  std::optional<SignalCheckpoint> signals(std::in_place,
                                          options.checkpoint_on_signal);
  // Ranks other than 0 wait, without a timeout, for work rank 0 does alone
  // (evaluations, a checkpoint), then take its count of op calls: every
  // rank's random stream is where a run resumed from that checkpoint puts
  // it (validation shards leave the counts different).
  auto follow_rank0 = [&]() -> absl::Status {
    if (comm == nullptr) return absl::OkStatus();
    LLMSYS_RETURN_IF_ERROR(comm->Barrier(/*timeout_seconds=*/0));
    uint64_t calls = session->ops().calls();
    LLMSYS_RETURN_IF_ERROR(comm->Broadcast(&calls, sizeof calls, 0));
    session->ops().set_calls(calls);
    return absl::OkStatus();
  };
  // --profile: the ops and phases of this process's steps (not evaluation
  // or generation between and after them).
  std::optional<runtime::Profiler> profiler;
  if (options.profile) {
    profiler.emplace(runtime::Profiler::Options{
        .trace_steps = std::max<int64_t>(0, options.profile_steps)});
    session->ops().set_profiler(&*profiler);
  }
  runtime::Profiler* const prof = profiler ? &*profiler : nullptr;
  // float16: dynamic loss scaling (as torch.cuda.amp.GradScaler): the loss
  // is multiplied by `loss_scale` before backward so small gradients stay
  // representable; a step whose gradients overflow is skipped and halves
  // the scale, 2000 good steps in a row double it.
  // A resumed run goes on with the checkpoint's scale.
  const bool scale_loss = session->ops().autocast() == tensor::kF16;
  double loss_scale = scale_loss ? 65536.0 : 1.0;
  int64_t good_steps = 0;
  if (scale_loss && std::isfinite(state.loss_scale) && state.loss_scale > 0) {
    loss_scale = state.loss_scale;
    good_steps = state.loss_scale_good_steps;
  }
  // The model's training loss among a forward pass's outputs.
  auto training_loss =
      [&](const std::map<std::string, Var>& outputs) -> absl::StatusOr<Var> {
    auto loss = outputs.find("loss");
    if (loss == outputs.end())
      return absl::FailedPreconditionError(
          absl::StrCat("model ", session->model().id,
                       " set no 'loss' output in training mode"));
    return loss->second;
  };
  // Pipeline: one batch on the GPipe schedule (Huang et al., 2019): its
  // micro-batches forward through the stages one after another, then
  // backward in reverse order, the gradients adding up. The last stage's
  // loss of a micro-batch is a mean over its tokens: weighted by its share
  // of the batch's tokens, the sum is the batch's mean (added to
  // *loss_sum times `weight`). The gradients are `grad_scale` times that
  // mean's. `backward_options` go to the last backward (the one that
  // completes the gradients: data parallel's all-reduce hook).
  auto pipeline_batch =
      [&](const TaskBatch& b, double weight, double grad_scale,
          double* loss_sum,
          const autograd::BackwardOptions& backward_options) -> absl::Status {
    struct Micro {
      StageForward f;
      double share = 0;
    };
    std::vector<Micro> micros;
    for (int64_t j = 0; j < micro_batches; ++j) {
      LLMSYS_ASSIGN_OR_RETURN(
          TaskBatch part,
          RowsOf(b, static_cast<int>(j), static_cast<int>(micro_batches)));
      if (part.tokens == 0) continue;  // every stage skips it alike
      runtime::Profiler::Phase phase(prof, "forward");
      Micro m;
      m.share =
          static_cast<double>(part.tokens) / static_cast<double>(b.tokens);
      LLMSYS_ASSIGN_OR_RETURN(m.f, stage_forward(part, LLMSYS_MODE_TRAIN));
      if (last_stage) {
        LLMSYS_ASSIGN_OR_RETURN(m.f.out, training_loss(m.f.outputs));
        *loss_sum += ScalarOf(m.f.out) * m.share * weight;
        extra.Add(m.f.outputs);
        m.f.outputs.clear();
      }
      micros.push_back(std::move(m));
    }
    for (size_t k = micros.size(); k-- > 0;) {
      Micro& m = micros[k];
      runtime::Profiler::Phase phase(prof, "backward");
      Tensor seed_grad;
      if (last_stage) {
        LLMSYS_ASSIGN_OR_RETURN(seed_grad,
                                SeedOf(m.f.out, grad_scale * m.share));
      } else {
        LLMSYS_ASSIGN_OR_RETURN(
            Tensor g, distributed::RecvTensor(*pipe, stage + 1, kBackwardTag));
        LLMSYS_ASSIGN_OR_RETURN(seed_grad, g.ToDevice(session->device()));
      }
      LLMSYS_RETURN_IF_ERROR(autograd::Backward(
          m.f.out, seed_grad,
          k == 0 ? backward_options : autograd::BackwardOptions{}));
      if (stage > 0) {
        Tensor g = m.f.in->grad;
        if (!g.defined()) {
          LLMSYS_ASSIGN_OR_RETURN(
              g, Tensor::Zeros(m.f.in->data.shape(), m.f.in->data.dtype(),
                               m.f.in->data.device()));
        }
        LLMSYS_RETURN_IF_ERROR(
            distributed::SendTensor(*pipe, g, stage - 1, kBackwardTag));
      }
      m = Micro{};  // its graph's saved tensors go now
    }
    return absl::OkStatus();
  };
  for (int64_t step = first_step; step <= steps; ++step) {
    if (prof != nullptr) prof->BeginStep(step);
    for (const Var& p : params) p->grad = Tensor();
    double loss_sum = 0;
    int64_t step_tokens = 0;
    for (int64_t micro = 0; micro < accumulate; ++micro) {
      std::optional<runtime::Profiler::Phase> phase(std::in_place, prof,
                                                    "data");
      LLMSYS_ASSIGN_OR_RETURN(TaskBatch b, task->Next());
      step_tokens += b.tokens;
      // This replica's rows, and its share of the batch's predicted tokens:
      // each replica's loss is a mean over its own tokens, so weighting it
      // by that share makes the sum over the replicas the batch's mean.
      double share = 1.0;
      if (data_ranks > 1) {
        const int64_t all_tokens = b.tokens;
        LLMSYS_ASSIGN_OR_RETURN(b, RowsOf(b, replica, data_ranks));
        share = all_tokens > 0 ? static_cast<double>(b.tokens) /
                                     static_cast<double>(all_tokens)
                               : 0.0;
        // Nothing predicted here (an epoch's short last batch): no loss and
        // no gradient to add; the all-reduce below still counts this rank.
        if (share == 0.0) continue;
      }
      // The backward that completes the step's gradients starts their
      // all-reduce bucket by bucket ([distributed] overlap).
      autograd::BackwardOptions backward_options;
      if (gradient_sync != nullptr && micro == accumulate - 1)
        backward_options.on_leaf_ready = gradient_sync->Hook();
      if (pipeline) {
        phase.reset();
        LLMSYS_RETURN_IF_ERROR(pipeline_batch(
            b, share, loss_scale * share / static_cast<double>(accumulate),
            &loss_sum, backward_options));
        continue;
      }
      phase.reset();
      phase.emplace(prof, "forward");
      LLMSYS_ASSIGN_OR_RETURN(auto out,
                              session->Forward(b.inputs, LLMSYS_MODE_TRAIN));
      LLMSYS_ASSIGN_OR_RETURN(const Var loss, training_loss(out));
      loss_sum += ScalarOf(loss) * share;
      extra.Add(out);
      LLMSYS_ASSIGN_OR_RETURN(
          const Tensor seed_grad,
          SeedOf(loss, loss_scale * share / static_cast<double>(accumulate)));
      phase.reset();
      phase.emplace(prof, "backward");
      LLMSYS_RETURN_IF_ERROR(
          autograd::Backward(loss, seed_grad, backward_options));
    }
    // Over the ranks: the gradients summed, the loss summed (each rank's
    // weighted by its share), and whether any rank was asked to stop.
    bool stop_signal = false;
    if (comm != nullptr) {
      stop_signal = signals->stopped();
      std::optional<runtime::Profiler::Phase> phase(std::in_place, prof,
                                                    "all-reduce");
      if (gradient_sync != nullptr)
        LLMSYS_RETURN_IF_ERROR(gradient_sync->Finish());
      if (shared) LLMSYS_RETURN_IF_ERROR(shared->SumGradients());
      double totals[2] = {loss_sum, stop_signal ? 1.0 : 0.0};
      LLMSYS_RETURN_IF_ERROR(comm->AllReduceSum(totals, 2, tensor::kF64));
      loss_sum = totals[0];
      stop_signal = totals[1] > 0;
    }
    if (step == options.kill_at_step) raise(SIGKILL);  // tests: a rank dies
    const double loss = loss_sum / static_cast<double>(accumulate);
    std::optional<runtime::Profiler::Phase> optimizer_phase(std::in_place, prof,
                                                            "optimizer");
    LLMSYS_ASSIGN_OR_RETURN(
        double norm,
        ClipGradNorm(params, clip, session->ops().num_threads(), loss_scale,
                     norm_over_stages ? &*norm_over_stages : nullptr));
    state.tokens += step_tokens;
    tokens_this_process += step_tokens;
    if (scale_loss && loss_scale > 1 && std::isfinite(loss) &&
        !std::isfinite(norm)) {
      // Overflow under the loss scale: not the model diverging (at scale 1
      // it is, and the ordinary non-finite rule below applies).
      ++skipped;
      good_steps = 0;
      loss_scale = std::max(1.0, loss_scale / 2);
      core::Log(core::LogLevel::kDebug,
                absl::StrFormat("step %d: float16 gradients overflowed; "
                                "step skipped, loss scale now %g",
                                step, loss_scale));
    } else if (!std::isfinite(loss) || !std::isfinite(norm)) {
      if (!skip_nonfinite) {
        if (bar) std::cerr << "\n";
        return absl::InternalError(absl::StrFormat(
            "step %d: the loss is %g (gradient norm %g); stopping. The last "
            "checkpoint in %s is intact; lower [schedule] lr, set "
            "[train] grad_clip, or set [train] on_nonfinite = \"skip\"",
            step, loss, norm, (run_dir / "checkpoint").string()));
      }
      ++skipped;
      core::Log(core::LogLevel::kWarning,
                absl::StrFormat("step %d: loss %g, step skipped", step, loss));
    } else {
      LLMSYS_RETURN_IF_ERROR(optimizer->Step(step, schedule.At(step)));
      last_loss = loss;
      if (scale_loss && ++good_steps == 2000) {
        loss_scale *= 2;
        good_steps = 0;
      }
    }
    optimizer_phase.reset();
    if (prof != nullptr) prof->EndStep();
    state.step = step;
    if (step == first_step) LLMSYS_RETURN_IF_ERROR(write_provenance());
    const double elapsed = Seconds(loop_start);
    const double tps =
        static_cast<double>(tokens_this_process) / std::max(elapsed, 1e-9);
    if (step % log_every == 0 || step == steps) {
      json record = {{"step", step},
                     {"loss", loss},
                     {"lr", schedule.At(step)},
                     {"grad_norm", norm},
                     {"tokens", state.tokens},
                     {"tokens_per_second", tps},
                     {"elapsed_seconds", state.elapsed + elapsed}};
      extra.Flush(record);
      metrics.Write(record);
      const double eta = elapsed / static_cast<double>(step - first_step + 1) *
                         static_cast<double>(steps - step);
      std::string line = absl::StrFormat(
          "step %d/%d | loss %.4f | %.0f tok/s | lr %.2e | ETA %s", step, steps,
          loss, tps, schedule.At(step), Duration(eta));
      for (const auto& [name, value] : record.items())  // counts, if any
        if (value.is_number_integer() && value.get<int64_t>() > 0 &&
            name != "step" && name != "tokens")
          absl::StrAppend(&line, " | ", name, " ", value.get<int64_t>());
      if (bar)
        std::cerr << "\r" << line << "   " << std::flush;
      else if (writer)
        std::cerr << line << "\n";
    }
    const bool last = step == steps;
    if ((eval_every > 0 && step % eval_every == 0) || last) {
      LLMSYS_ASSIGN_OR_RETURN(Validation v, evaluate());
      last_val = v.loss;
      json record = {{"step", step},
                     {"val_loss", last_val},
                     {"val_perplexity", std::exp(last_val)}};
      std::string line =
          absl::StrFormat("step %d: validation loss %.4f, perplexity %.2f",
                          step, last_val, std::exp(last_val));
      if (v.accuracy) {
        record["val_accuracy"] = *v.accuracy;
        absl::StrAppend(&line, absl::StrFormat(", masked-token accuracy %.4f",
                                               *v.accuracy));
      }
      metrics.Write(record);
      if (writer)
        std::cerr << (bar ? "\r" : "") << line
                  << (bar ? "              \n" : "\n");
    }
    // [[evaluate]] entries due now; at the last step after the checkpoint,
    // so that a failing evaluation cannot cost the trained weights (earlier
    // ones run before it, so a resumed run replays the same op calls).
    // Rank 0 alone runs them (their op calls, samples and files); the
    // other ranks wait for it (follow_rank0).
    auto due = [&](const config::EvaluateEntry& entry) {
      return (entry.every > 0 && step % entry.every == 0) || last;
    };
    const bool evaluations_due =
        std::any_of(e.evaluations().begin(), e.evaluations().end(), due);
    // Pipeline: rank 0 evaluates and samples with the whole model, the
    // stages' weights gathered (every rank takes part).
    if (pipeline && (evaluations_due || (last && samples_wanted)))
      LLMSYS_RETURN_IF_ERROR(gather_whole());
    auto run_evaluations = [&]() -> absl::Status {
      if (!writer) return absl::OkStatus();
      TranslationCache translations;  // shared by this step's entries
      Session& evaluated = pipeline ? *whole : *session;
      const ModelAccess evaluated_access = pipeline ? AccessOf(*whole) : access;
      for (const config::EvaluateEntry& entry : e.evaluations()) {
        if (!due(entry)) continue;
        LLMSYS_ASSIGN_OR_RETURN(
            eval::EvalResult r,
            task->kind() == "translation"
                ? RunTranslationEvaluation(evaluated, *task, entry, run_dir,
                                           translations)
                : RunEvaluation(entry, evaluated_access, *task->lm_validation(),
                                batch, block));
        const json record = {{"step", step},
                             {"evaluator", entry.component->id},
                             {"metrics", eval::MetricsJson(r)},
                             {"signature", r.signature}};
        metrics.Write(record);
        if (last) evaluations.push_back(record);
        std::string line =
            absl::StrFormat("step %d: %s", step, entry.component->id);
        for (const auto& [name, value] : r.metrics)
          absl::StrAppend(&line, absl::StrFormat(" %s %.6g", name, value));
        std::cerr << (bar ? "\r" : "") << line << (bar ? "   \n" : "\n");
      }
      return absl::OkStatus();
    };
    if (!last) LLMSYS_RETURN_IF_ERROR(run_evaluations());
    // One process: a signal up to now; several: one any rank had before
    // the all-reduce (so that all stop at the same step).
    const bool signalled =
        !last && (comm != nullptr ? stop_signal : signals->stopped());
    const bool stop_here =
        signalled ||
        (options.stop_after > 0 && step - first_step + 1 >= options.stop_after);
    const bool checkpoint =
        (ckpt_every > 0 && step % ckpt_every == 0) || last || stop_here;
    if (checkpoint) {
      // A pipeline's checkpoint is the whole model's, gathered from the
      // stages of rank 0's (so it resumes with any split, and `llmsys
      // generate` reads it).
      CheckpointTensors tensors;
      tensors.model = session->model().id;
      if (pipeline && replica == 0) {
        LLMSYS_ASSIGN_OR_RETURN(
            tensors.weights,
            distributed::GatherNamed(*pipe, 0, session->Weights()));
        LLMSYS_ASSIGN_OR_RETURN(
            tensors.optimizer,
            distributed::GatherNamed(*pipe, 0, optimizer->State()));
      } else if (writer) {
        tensors.weights = session->Weights();
        tensors.optimizer = optimizer->State();
      }
      if (writer) {
        state.batcher = task->state();
        state.global_batch = batch * data_ranks;
        state.loss_scale = scale_loss ? loss_scale : 0;
        state.loss_scale_good_steps = good_steps;
        state.op_calls = session->ops().calls();
        LLMSYS_RETURN_IF_ERROR(
            SaveCheckpoint(run_dir / "checkpoint", tensors, state));
      }
    }
    // After rank 0's evaluations and checkpoint (the last step's
    // evaluations come after its checkpoint; the other ranks are done).
    if ((evaluations_due || checkpoint) && !last)
      LLMSYS_RETURN_IF_ERROR(follow_rank0());
    if (last) LLMSYS_RETURN_IF_ERROR(run_evaluations());
    if (signalled) {
      result.interrupted = true;
      if (writer)
        std::cerr << (bar ? "\n" : "")
                  << absl::StrFormat(
                         "interrupted: checkpoint at step %d; continue with "
                         "'llmsys run --resume %s'\n",
                         step, run_dir.string());
    }
    if (stop_here) break;
  }
  signals.reset();
  if (bar) std::cerr << "\n";
  if (prof != nullptr) session->ops().set_profiler(nullptr);
  if (prof != nullptr && writer) {
    std::cerr << runtime::FormatProfile(prof->Summary());
    LLMSYS_RETURN_IF_ERROR(prof->WriteFiles(run_dir));
    std::cerr << "profile: " << (run_dir / "profile.json").string() << ", "
              << (run_dir / "trace.json").string()
              << " (open in ui.perfetto.dev or chrome://tracing)\n";
  }
  LLMSYS_RETURN_IF_ERROR(write_provenance());
  const double wall = Seconds(start);
  result.steps = state.step;
  result.train_loss = last_loss;
  result.val_loss = last_val;
  result.tokens_per_second = static_cast<double>(tokens_this_process) /
                             std::max(Seconds(loop_start), 1e-9);
  if (state.step < steps) return result;  // interrupted on purpose
  if (!writer) return result;             // samples and summary: rank 0's

  // Samples (a translation task translates the prompt; an mlm task has
  // none).
  std::string samples;
  if (samples_wanted) {
    const GenerationPlan plan = PlanFromConfig(*session);
    LLMSYS_ASSIGN_OR_RETURN(GenerateResult generated,
                            RunGeneration(pipeline ? *whole : *session, plan));
    for (const std::string& text : generated.texts)
      samples += (task->kind() == "translation"
                      ? absl::StrCat(plan.prompts.at(0), "\n=> ", text)
                      : text) +
                 "\n----\n";
    std::cerr << "samples: " << generated.stats.Describe()
              << (plan.use_cache ? "" : " [no cache]") << "\n";
  }
  LLMSYS_RETURN_IF_ERROR(
      core::AtomicWriteFile(run_dir / "samples.txt", samples));
  LLMSYS_RETURN_IF_ERROR(write_provenance());  // generation's ops too
  json ops = json::array();
  for (const runtime::OpChoice& c : session->ops().Choices())
    ops.push_back({{"op", c.op},
                   {"implementation", c.implementation},
                   {"file", c.file},
                   {"calls", c.calls}});
  json summary = {{"experiment", e.file().string()},
                  {"model", session->model().id},
                  {"parameters", n_params},
                  {"optimizer", optimizer->component().id},
                  {"steps", state.step},
                  {"skipped_steps", skipped},
                  {"tokens", state.tokens},
                  {"ranks", ranks},
                  {"pipeline_stages", stages},
                  {"train_loss", last_loss},
                  {"val_loss", last_val},
                  {"val_perplexity", std::exp(last_val)},
                  {"evaluations", evaluations},
                  {"output_totals", extra.totals()},
                  {"wall_seconds", wall},
                  {"train_seconds", state.elapsed + Seconds(loop_start)},
                  {"tokens_per_second", result.tokens_per_second},
                  {"peak_memory_bytes", core::PeakResidentBytes()},
                  {"seed", seed},
                  {"threads", session->ops().num_threads()},
                  {"llmsys_version", kHostVersion},
                  {"ops", ops}};
  LLMSYS_RETURN_IF_ERROR(
      core::AtomicWriteFile(run_dir / "summary.json", summary.dump(2) + "\n"));
  return result;
}

absl::StatusOr<GenerateResult> Generate(const GenerateOptions& options) {
  const fs::path config_file = options.run_dir / "config.toml";
  if (!fs::exists(config_file))
    return absl::NotFoundError(absl::StrCat(
        options.run_dir.string(), ": not a run directory (no config.toml)"));
  LLMSYS_ASSIGN_OR_RETURN(std::unique_ptr<Session> session,
                          Session::Open(config_file, {}, options.plugin_dirs));
  LLMSYS_ASSIGN_OR_RETURN(
      std::unique_ptr<data::Tokenizer> t,
      data::LoadTokenizer(options.run_dir / "tokenizer.json"));
  session->SetTokenizer(std::move(t));
  LLMSYS_RETURN_IF_ERROR(session->CreateModel());
  LLMSYS_RETURN_IF_ERROR(
      LoadCheckpoint(options.run_dir / "checkpoint", *session, nullptr)
          .status());
  const config::Experiment& e = session->experiment();
  GenerationPlan plan = PlanFromConfig(*session);
  if (!options.sampler.empty()) {
    // Another sampler: its own defaults, not the run's sampler's values.
    LLMSYS_RETURN_IF_ERROR(
        FindSampler(*session, options.sampler, "--sampler").status());
    plan.sampler = options.sampler;
    plan.sampler_params.clear();
  }
  for (const std::string& assignment : options.params) {
    LLMSYS_ASSIGN_OR_RETURN(
        const runtime::Component* sampler,
        FindSampler(
            *session, plan.sampler,
            options.sampler.empty() ? "[generate] sampler =" : "--sampler"));
    LLMSYS_ASSIGN_OR_RETURN(
        auto param,
        runtime::ParseParamAssignment(
            sampler->params, assignment,
            absl::StrCat("--param ", assignment, ": sampler ", sampler->id)));
    auto it =
        std::find_if(plan.sampler_params.begin(), plan.sampler_params.end(),
                     [&](const auto& p) { return p.first == param.first; });
    if (it != plan.sampler_params.end())
      it->second = param.second;
    else
      plan.sampler_params.push_back(std::move(param));
  }
  const std::string kind = e.String("data", "task");
  if (kind == "mlm")
    return absl::FailedPreconditionError(absl::StrCat(
        options.run_dir.string(),
        ": a masked language model (mlm task) does not generate text"));
  const bool translation = kind == "translation";
  if (!translation &&
      (!options.input.empty() || !options.output.empty() || options.reverse))
    return absl::InvalidArgumentError(
        absl::StrCat("--input, --output and --reverse translate files; ",
                     options.run_dir.string(), " is a ", kind, " run"));
  plan.prompts = options.prompts;
  if (!options.input.empty()) {
    if (!plan.prompts.empty())
      return absl::InvalidArgumentError(
          "give the sources either with --prompt or with --input, not both");
    LLMSYS_ASSIGN_OR_RETURN(std::string text,
                            data::ReadTextFile(options.input));
    plan.prompts = data::SplitLines(text);
    if (plan.prompts.empty())
      return absl::InvalidArgumentError(
          absl::StrCat(options.input.string(), ": no lines to translate"));
  }
  plan.reverse = options.reverse;
  if (plan.prompts.empty()) plan.prompts = {e.String("generate", "prompt")};
  plan.hypotheses = 1;
  if (options.max_tokens > 0) plan.max_tokens = options.max_tokens;
  if (options.seed) plan.seed = *options.seed;
  if (options.no_cache) plan.use_cache = false;
  if (options.num_beams > 0) plan.num_beams = options.num_beams;
  if (plan.num_beams > 1 &&
      (!options.sampler.empty() || !options.params.empty()))
    return absl::InvalidArgumentError(absl::StrCat(
        "beam search (num_beams = ", plan.num_beams,
        ") uses no sampler: drop --sampler/--param, or pass --num-beams 1 to "
        "sample"));
  LLMSYS_ASSIGN_OR_RETURN(GenerateResult result, RunGeneration(*session, plan));
  if (!options.output.empty()) {
    std::string text;
    for (const std::string& line : result.texts)
      absl::StrAppend(&text, line, "\n");
    std::error_code ec;
    if (options.output.has_parent_path())
      fs::create_directories(options.output.parent_path(), ec);
    LLMSYS_RETURN_IF_ERROR(core::AtomicWriteFile(options.output, text));
  }
  return result;
}

}  // namespace llmsys::train
