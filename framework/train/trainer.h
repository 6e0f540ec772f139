// framework/train/trainer.h — `llmsys run` and `llmsys generate`: an
// experiment file in, a run directory out.
//
// A run directory holds everything needed to compare, resume or share it:
//   config.toml         the resolved configuration (every key, defaults)
//   tokenizer.json      the tokenizer trained on the training text
//   metrics.jsonl       one JSON object per logged step and per evaluation
//   checkpoint/         model.safetensors, optimizer.safetensors,
//                       trainer_state.json (step, data position, random
//                       stream position), written atomically
//   samples.txt         text generated after training ([generate])
//   summary.json        final metrics, wall time, tokens/s, peak memory,
//                       which implementation served each op
//   profile.json        with RunOptions::profile: time per op and phase
//   trace.json          with RunOptions::profile: a Chrome trace of the
//                       first profile_steps steps (runtime/profiler.h)
// A run over several processes (RunOptions::communicator) trains data
// parallel: every rank draws the same global batch of N x batch_size
// sequences and takes its own rows, gradients are summed over the ranks
// (distributed/data_parallel.h), and rank 0 alone writes the directory.
//
//   provenance.json     versions, git commit, command, seed, threads,
//                       machine, config sha256, every plugin file used with
//                       its sha256 (framework/train/provenance.h)
//
//   LLMSYS_ASSIGN_OR_RETURN(RunResult r, RunExperiment({.experiment =
//       "experiments/quickstart.toml"}));
//
// Thread-safety: one run per process at a time.
#ifndef LLMSYS_FRAMEWORK_TRAIN_TRAINER_H_
#define LLMSYS_FRAMEWORK_TRAIN_TRAINER_H_

#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "dlpack/dlpack.h"
#include "framework/generate/decoding.h"

namespace llmsys::distributed {
class Communicator;
}  // namespace llmsys::distributed

namespace llmsys::train {

struct RunOptions {
  std::filesystem::path experiment;  // a new run from this file, or
  std::filesystem::path resume;      // continue the run in this directory
  std::vector<std::string> sets;     // --set section.key=value
  std::vector<std::string> plugin_dirs;
  // Whether the built-in plugin folder and LLMSYS_PLUGIN_PATH are searched
  // (tests that bring every plugin in plugin_dirs turn it off).
  bool default_plugin_dirs = true;
  bool overwrite = false;  // replace an existing run directory
  // Live progress bar (a terminal) or plain periodic lines.
  std::optional<bool> progress_bar;
  // Stop after this many optimizer steps in this process (tests use it to
  // interrupt a run); 0: run to the end.
  int64_t stop_after = 0;
  // The command recorded in provenance.json (empty: this process's command
  // line); e.g. `llmsys compare` names the variant it runs.
  std::string command;
  // Ctrl-C (SIGINT) or SIGTERM during training finishes the current step,
  // saves a checkpoint and returns with RunResult::interrupted set, so that
  // `--resume` continues exactly; a second signal kills as usual. The
  // previous handlers come back when the run returns.
  bool checkpoint_on_signal = false;
  // Time every op call and step phase of this process's steps; print the
  // table at the end and write profile.json and trace.json (the first
  // `profile_steps` steps) to the run directory. Results do not change.
  bool profile = false;
  int64_t profile_steps = 10;
  // The processes of this run (`mpirun -np N`; framework/distributed):
  // data parallel over its ranks, rank 0 writing the run directory. Null:
  // one process. Not owned.
  distributed::Communicator* communicator = nullptr;
  // For a run on GPUs with a GPU per rank: a communicator for collectives
  // on the GPU's memory over `communicator` (NCCL, where the build has
  // it: distributed/nccl_communicator.h). Empty: gradients and
  // activations travel through host memory over `communicator`.
  std::function<absl::StatusOr<std::unique_ptr<distributed::Communicator>>(
      distributed::Communicator&, DLDevice)>
      gpu_communicator;
  // Fault injection for tests: the process kills itself (SIGKILL) once
  // this step's gradients are summed; 0: never.
  int64_t kill_at_step = 0;
};

struct RunResult {
  std::filesystem::path run_dir;
  int64_t steps = 0;
  double train_loss = 0;
  double val_loss = 0;
  double tokens_per_second = 0;
  // Stopped by a signal (see RunOptions::checkpoint_on_signal), with a
  // checkpoint at `steps`.
  bool interrupted = false;
};

absl::StatusOr<RunResult> RunExperiment(const RunOptions& options);

// `llmsys generate`: the run's [generate] section, each field overriding
// its key when set.
struct GenerateOptions {
  std::filesystem::path run_dir;
  std::vector<std::string> prompts;  // empty: the run's [generate] prompt
  int64_t max_tokens = 0;            // 0: the run's
  // Another sampler, with its own defaults (empty: the run's, with its
  // parameters from the run).
  std::string sampler;
  std::vector<std::string> params;  // sampler parameters, "name=value"
  std::optional<uint64_t> seed;     // the run's [generate] seed if unset
  bool no_cache = false;            // recompute the context for every token
  int64_t num_beams = 0;            // 0: the run's; > 1: beam search
  std::vector<std::string> plugin_dirs;
  // Translation runs: the sources, one per line (instead of prompts), the
  // file the translations go to (one per line), and target-to-source
  // translation (duplex models).
  std::filesystem::path input, output;
  bool reverse = false;
};

struct GenerateResult {
  // Each prompt and its continuation; a translation run's: the
  // translations.
  std::vector<std::string> texts;
  generate::DecodeStats stats;  // tokens/s, prefill and decode
  bool used_cache = true;
};

// Continues each prompt with the model of the run's last checkpoint
// (framework/generate/decoding.h: the sampler, or beam search); in a
// translation run, translates each prompt or --input line.
absl::StatusOr<GenerateResult> Generate(const GenerateOptions& options);

}  // namespace llmsys::train

#endif  // LLMSYS_FRAMEWORK_TRAIN_TRAINER_H_
