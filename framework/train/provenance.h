// framework/train/provenance.h — a run directory's provenance.json: what
// made the run, so that two runs can be compared and a run reproduced.
//
// The record (docs/experiments.md lists the fields): llmsys and ABI
// versions, the git commit the binary was built from, the command line, the
// start time, seed, threads, device, the machine (hostname, OS, CPU, cores,
// memory, GPUs), the sha256 of the resolved config.toml, and every plugin
// file whose components the run used — with its sha256, plugin id and
// version, ABI version and the components used ("operator matmul.cpu",
// "model gpt"). Plugins that were found but not used are not listed.
//
//   LLMSYS_ASSIGN_OR_RETURN(ProvenanceFile file,
//                           ProvenanceFile::Open(run_dir, resume));
//   ProvenanceInputs in{...};
//   LLMSYS_RETURN_IF_ERROR(file.Write(MakeProvenance(in)));
//
// A resumed run rewrites the file with its own record on top and the
// records of the processes before it, oldest first, under "earlier".
//
// Thread-safety: one ProvenanceFile per run directory, used from one thread.
#ifndef LLMSYS_FRAMEWORK_TRAIN_PROVENANCE_H_
#define LLMSYS_FRAMEWORK_TRAIN_PROVENANCE_H_

#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "framework/core/provenance.h"
#include "framework/runtime/dispatch.h"
#include "framework/runtime/registry.h"

namespace llmsys::train {

// What one process of a run knows about itself. Pointers are borrowed for
// the call to MakeProvenance.
struct ProvenanceInputs {
  std::string command;  // the command line ("llmsys run x.toml --set ...")
  std::filesystem::path experiment;  // the experiment file, or the run's
                                     // config.toml when resuming
  std::vector<std::string> sets;     // --set arguments
  std::string started;               // UTC, core::UtcTimestamp
  int64_t start_step = 0;            // 0, or the step a resume starts from
  uint64_t seed = 0;
  int threads = 0;            // threads the ops run on (the resolved number)
  std::string device;         // "cpu", "cuda"
  int ranks = 1;              // processes of a distributed run
  std::string config_sha256;  // of the run directory's config.toml
  // The components the run uses: model, optimizer, sampler, evaluators...
  std::vector<const runtime::Component*> components;
  // ... and the operator implementations dispatch chose; each op's
  // implementation is found in `registry` by its file and id, as is the
  // plugin that declares the op's contract when no standard op is it.
  std::vector<runtime::OpChoice> ops;
  const runtime::PluginRegistry* registry = nullptr;
  core::MachineInfo machine;
  core::BuildInfo build;
};

// The record as JSON, fields in the documented order (docs/experiments.md).
// Plugins sorted by file, components by kind and id.
nlohmann::ordered_json MakeProvenance(const ProvenanceInputs& in);

// A run directory's provenance.json.
class ProvenanceFile {
 public:
  // On resume, keeps the records already in run_dir/provenance.json (an
  // unreadable or missing one is noted in the log and left out).
  static absl::StatusOr<ProvenanceFile> Open(
      const std::filesystem::path& run_dir, bool resume);
  // Writes `record`, with the earlier processes' records under "earlier"
  // (atomically; may be called again as the record grows).
  absl::Status Write(nlohmann::ordered_json record) const;

 private:
  std::filesystem::path file_;
  nlohmann::ordered_json earlier_ = nlohmann::ordered_json::array();
};

}  // namespace llmsys::train

#endif  // LLMSYS_FRAMEWORK_TRAIN_PROVENANCE_H_
