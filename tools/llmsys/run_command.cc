#include "tools/llmsys/run_command.h"

#include <boost/program_options.hpp>
#include <iostream>

#include "framework/core/logging.h"
#include "framework/train/trainer.h"

namespace llmsys::cli {
namespace {

namespace po = boost::program_options;

// Parses `args`; false (after printing why) on bad usage.
bool ParseArgs(const std::vector<std::string>& args,
               const po::options_description& desc, const char* positional,
               po::variables_map* vm) {
  po::positional_options_description pos;
  pos.add(positional, 1);
  try {
    po::store(po::command_line_parser(args).options(desc).positional(pos).run(),
              *vm);
    po::notify(*vm);
  } catch (const po::error& e) {
    std::cerr << "error: " << e.what() << "\n";
    return false;
  }
  return true;
}

}  // namespace

int RunCommand(const std::vector<std::string>& args) {
  train::RunOptions options;
  std::string experiment, resume;
  bool help = false, no_bar = false, verbose = false;
  po::options_description desc(
      "usage: llmsys run EXPERIMENT.toml [--set section.key=value]... "
      "[--overwrite]\n"
      "       llmsys run --resume RUN_DIR\n\n"
      "Trains the experiment's model and leaves a run directory (config.toml, "
      "tokenizer.json, metrics.jsonl, checkpoint/, samples.txt, "
      "summary.json).\n\noptions");
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
      "verbose,v", po::bool_switch(&verbose), "print debug messages");
  po::variables_map vm;
  if (!ParseArgs(args, desc, "experiment", &vm)) return 2;
  if (help) {
    std::cout << desc << "\n";
    return 0;
  }
  if (experiment.empty() == resume.empty()) {
    std::cerr << "error: 'llmsys run' takes an experiment file or --resume "
                 "RUN_DIR (one of them)\n";
    return 2;
  }
  if (verbose) core::SetMinLogLevel(core::LogLevel::kDebug);
  options.experiment = experiment;
  options.resume = resume;
  if (no_bar) options.progress_bar = false;
  absl::StatusOr<train::RunResult> r = train::RunExperiment(options);
  if (!r.ok()) {
    std::cerr << "llmsys run: " << r.status().message() << "\n";
    return 1;
  }
  std::cout << "run directory: " << r->run_dir.string() << "\n";
  return 0;
}

int GenerateCommand(const std::vector<std::string>& args) {
  train::GenerateOptions options;
  std::string run_dir;
  bool help = false;
  po::options_description desc(
      "usage: llmsys generate RUN_DIR [--prompt TEXT] [--max-tokens N]\n\n"
      "Continues a prompt with the model of a run's last checkpoint "
      "(greedy).\n\noptions");
  desc.add_options()("help,h", po::bool_switch(&help), "show this help")(
      "run", po::value(&run_dir), "the run directory")(
      "prompt", po::value(&options.prompt),
      "text to continue (default: the run's [generate] prompt)")(
      "max-tokens", po::value(&options.max_tokens),
      "tokens to generate (default: the run's)")(
      "plugin-dir", po::value(&options.plugin_dirs)->composing(),
      "also load plugins from DIR (repeatable)");
  po::variables_map vm;
  if (!ParseArgs(args, desc, "run", &vm)) return 2;
  if (help) {
    std::cout << desc << "\n";
    return 0;
  }
  if (run_dir.empty()) {
    std::cerr << "error: 'llmsys generate' takes a run directory\n";
    return 2;
  }
  options.run_dir = run_dir;
  absl::StatusOr<std::string> text = train::Generate(options);
  if (!text.ok()) {
    std::cerr << "llmsys generate: " << text.status().message() << "\n";
    return 1;
  }
  std::cout << *text << "\n";
  return 0;
}

}  // namespace llmsys::cli
