#include "tools/llmsys/run_command.h"

#include <cstdlib>
#include <iostream>
#include <memory>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "framework/core/logging.h"
#include "framework/distributed/communicator.h"
#include "framework/train/trainer.h"
#include "tools/llmsys/parse_args.h"
#if defined(LLMSYS_HAVE_MPI)
#include "framework/distributed/mpi_communicator.h"
#ifdef LLMSYS_HAVE_NCCL
#include "framework/distributed/nccl_communicator.h"
#endif
#endif

namespace llmsys::cli {

namespace po = boost::program_options;

// The processes of a run started by mpirun or srun (null: one process).
absl::StatusOr<std::unique_ptr<distributed::Communicator>> Ranks() {
  if (!distributed::LaunchedByMpi()) return nullptr;
#if defined(LLMSYS_HAVE_MPI)
  return distributed::MpiWorld();
#else
  return absl::FailedPreconditionError(
      "started by an MPI launcher, but this llmsys was built without MPI "
      "(install libopenmpi-dev and rebuild: tools/setup.sh)");
#endif
}

// LLMSYS_TEST_KILL_RANK=R:S (fault-injection for tests of a cluster setup):
// rank R kills itself after step S's gradients are summed. 0 elsewhere.
int64_t KillAtStep(int rank) {
  const char* env = std::getenv("LLMSYS_TEST_KILL_RANK");
  if (env == nullptr) return 0;
  std::vector<std::string> parts = absl::StrSplit(env, ':');
  int r = -1;
  int64_t step = 0;
  if (parts.size() != 2 || !absl::SimpleAtoi(parts[0], &r) ||
      !absl::SimpleAtoi(parts[1], &step) || step < 1) {
    std::cerr << "warning: LLMSYS_TEST_KILL_RANK='" << env
              << "' is not RANK:STEP; ignored\n";
    return 0;
  }
  return r == rank ? step : 0;
}

int RunCommand(const std::vector<std::string>& args) {
  train::RunOptions options;
  std::string experiment, resume;
  bool help = false, no_bar = false, verbose = false;
  po::options_description desc(
      "usage: llmsys run EXPERIMENT.toml [--set section.key=value]... "
      "[--overwrite] [--profile]\n"
      "       llmsys run --resume RUN_DIR\n\n"
      "Trains the experiment's model and leaves a run directory (config.toml, "
      "tokenizer.json, metrics.jsonl, checkpoint/, samples.txt, "
      "summary.json, provenance.json).\n\noptions");
  desc.add_options()("help,h", po::bool_switch(&help), "show this help")(
      "experiment", po::value(&experiment), "the experiment file")(
      "set", po::value(&options.sets)->composing(),
      "override a key: --set train.steps=100 (repeatable)")(
      "resume", po::value(&resume),
      "continue the run in RUN_DIR from its last checkpoint")(
      "overwrite", po::bool_switch(&options.overwrite),
      "replace an existing run directory")(
      "plugin-dir", po::value(&options.plugin_dirs)->composing(),
      "also load plugins from DIR (repeatable)")(
      "no-progress", po::bool_switch(&no_bar),
      "plain log lines instead of a progress bar")(
      "stop-after", po::value(&options.stop_after),
      "stop (with a checkpoint) after N steps of this process")(
      "profile", po::bool_switch(&options.profile),
      "time every op call and step phase; print a table at the end and "
      "write profile.json and trace.json (Chrome trace) to the run "
      "directory")("profile-steps", po::value(&options.profile_steps),
                   "steps the trace covers, from the first (default 10; the "
                   "table covers every step)")(
      "verbose,v", po::bool_switch(&verbose), "print debug messages");
  po::variables_map vm;
  if (!ParseArgs(args, desc, "experiment", 1, &vm)) return 2;
  if (help) {
    std::cout << desc << "\n";
    return 0;
  }
  if (experiment.empty() == resume.empty()) {
    std::cerr << "error: 'llmsys run' takes an experiment file or --resume "
                 "RUN_DIR (one of them)\n";
    return 2;
  }
  if (options.profile_steps < 0) {
    std::cerr << "error: --profile-steps must be >= 0, got "
              << options.profile_steps << "\n";
    return 2;
  }
  if (vm.count("profile-steps") && !options.profile) {
    std::cerr << "error: --profile-steps needs --profile\n";
    return 2;
  }
  if (verbose) core::SetMinLogLevel(core::LogLevel::kDebug);
  absl::StatusOr<std::unique_ptr<distributed::Communicator>> comm = Ranks();
  if (!comm.ok()) {
    std::cerr << "llmsys run: " << comm.status().message() << "\n";
    return 1;
  }
  const int rank = *comm != nullptr ? (*comm)->rank() : 0;
  // Rank 0 speaks for the run; the others only warn and fail.
  if (rank > 0 && !verbose) core::SetMinLogLevel(core::LogLevel::kWarning);
  options.communicator = comm->get();
#ifdef LLMSYS_HAVE_NCCL
  options.gpu_communicator = &distributed::NcclOver;
#endif
  options.kill_at_step = KillAtStep(rank);
  options.experiment = experiment;
  options.resume = resume;
  if (no_bar) options.progress_bar = false;
  options.checkpoint_on_signal = true;
  absl::StatusOr<train::RunResult> r = train::RunExperiment(options);
  if (!r.ok()) {
    // "rank 1/2: llmsys run: ...", the rank named once (a communicator's
    // message names it already).
    const std::string prefix = distributed::RankPrefix(comm->get());
    absl::string_view why = r.status().message();
    if (!prefix.empty() && absl::StartsWith(why, prefix))
      why.remove_prefix(prefix.size());
    const std::string message = absl::StrCat("llmsys run: ", why);
    // One rank's failure stops every rank (MPI_Abort), instead of leaving
    // them waiting for it; Abort prints the rank.
    if (*comm != nullptr && (*comm)->size() > 1) (*comm)->Abort(message, 1);
    std::cerr << message << "\n";
    return 1;
  }
  if (rank == 0) std::cout << "run directory: " << r->run_dir.string() << "\n";
  return r->interrupted ? 130 : 0;  // 128 + SIGINT, as shells report it
}

int GenerateCommand(const std::vector<std::string>& args) {
  train::GenerateOptions options;
  std::string run_dir;
  int64_t seed = -1;
  bool help = false;
  po::options_description desc(
      "usage: llmsys generate RUN_DIR [--prompt TEXT]... [--max-tokens N] "
      "[--sampler ID] [--param NAME=VALUE]... [--seed S] [--no-cache] "
      "[--num-beams K] [--input FILE] [--output FILE] [--reverse]\n\n"
      "Continues each prompt with the model of a run's last checkpoint, with "
      "the run's [generate] settings unless overridden; prints each prompt "
      "and its continuation (separated by lines \"----\"), and the speed to "
      "stderr. A translation run translates each prompt, or each line of "
      "--input into the same line of --output.\n\noptions");
  desc.add_options()("help,h", po::bool_switch(&help), "show this help")(
      "run", po::value(&run_dir), "the run directory")(
      "prompt", po::value(&options.prompts)->composing(),
      "text to continue (repeatable; default: the run's [generate] prompt)")(
      "max-tokens", po::value(&options.max_tokens),
      "tokens to generate per prompt (default: the run's)")(
      "sampler", po::value(&options.sampler),
      "sampler component, e.g. top_p (default: the run's, with its "
      "parameters)")("param", po::value(&options.params)->composing(),
                     "a sampler parameter, e.g. --param temperature=0.8 "
                     "(repeatable)")(
      "seed", po::value(&seed),
      "random seed of the sampler (default: the run's)")(
      "no-cache", po::bool_switch(&options.no_cache),
      "recompute the whole context for every token (no key/value cache)")(
      "num-beams", po::value(&options.num_beams),
      "beam search with K beams (1: the sampler; default: the run's)")(
      "input", po::value<std::string>(),
      "translation runs: translate each line of FILE (plain or .gz)")(
      "output", po::value<std::string>(),
      "translation runs: write the translations to FILE, one per line, "
      "instead of printing them")(
      "reverse", po::bool_switch(&options.reverse),
      "translation runs: from the target language to the source (duplex "
      "models)")("plugin-dir", po::value(&options.plugin_dirs)->composing(),
                 "also load plugins from DIR (repeatable)");
  po::variables_map vm;
  if (!ParseArgs(args, desc, "run", 1, &vm)) return 2;
  if (help) {
    std::cout << desc << "\n";
    return 0;
  }
  if (run_dir.empty()) {
    std::cerr << "error: 'llmsys generate' takes a run directory\n";
    return 2;
  }
  if (vm.count("seed")) {
    if (seed < 0) {
      std::cerr << "error: --seed must be >= 0, got " << seed << "\n";
      return 2;
    }
    options.seed = static_cast<uint64_t>(seed);
  }
  if (vm.count("max-tokens") && options.max_tokens < 1) {
    std::cerr << "error: --max-tokens must be >= 1, got " << options.max_tokens
              << "\n";
    return 2;
  }
  if (vm.count("num-beams") && options.num_beams < 1) {
    std::cerr << "error: --num-beams must be >= 1, got " << options.num_beams
              << "\n";
    return 2;
  }
  options.run_dir = run_dir;
  if (vm.count("input")) options.input = vm["input"].as<std::string>();
  if (vm.count("output")) options.output = vm["output"].as<std::string>();
  absl::StatusOr<train::GenerateResult> r = train::Generate(options);
  if (!r.ok()) {
    std::cerr << "llmsys generate: " << r.status().message() << "\n";
    return 1;
  }
  if (options.output.empty()) {
    for (size_t i = 0; i < r->texts.size(); ++i)
      std::cout << (i > 0 ? "----\n" : "") << r->texts[i] << "\n";
  } else {
    std::cerr << "generate: " << r->texts.size() << " translations written to "
              << options.output.string() << "\n";
  }
  std::cerr << "generate: " << r->stats.Describe()
            << (r->used_cache ? "" : " [no cache]") << "\n";
  return 0;
}

}  // namespace llmsys::cli
