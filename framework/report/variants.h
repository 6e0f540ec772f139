// framework/report/variants.h — the variants `llmsys compare` runs: the
// experiment's [[variants]] entries crossed with each --vary axis.
//
//   LLMSYS_ASSIGN_OR_RETURN(std::vector<VaryAxis> axes,
//       ParseVary({"ops.attention=naive,blas", "schedule.lr=1e-3,3e-3"}));
//   LLMSYS_ASSIGN_OR_RETURN(std::vector<VariantSpec> variants,
//                           CrossVariants(experiment.variants(), axes));
//   // 4 variants: "naive+lr=0.001", "naive+lr=0.003", "blas+lr=0.001", ...
//   // variants[0] is the baseline; variants[i].SetArgs() are --set
//   // arguments (train::RunOptions::sets).
//
// A name is a folder name: the [[variants]] name, then one part per axis
// joined by '+': the value when it is a string (an implementation or
// component id says what it is), else `key=value` with the key's last part
// ("lr=0.003"). Characters other than letters, digits and . _ - + = , @
// become '_'.
//
// Thread-safety: pure functions and values.
#ifndef LLMSYS_FRAMEWORK_REPORT_VARIANTS_H_
#define LLMSYS_FRAMEWORK_REPORT_VARIANTS_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "framework/config/experiment.h"

namespace llmsys::report {

// One --vary section.key=v1,v2,...
struct VaryAxis {
  std::string key;  // "optimizer.use"
  // As given: TOML text, or a plain string when it is not valid TOML (as
  // --set reads values).
  std::vector<std::string> values;
};

// Parses --vary arguments: "section.key=v1,v2" (commas inside [...] or
// quotes do not split). INVALID_ARGUMENT, naming the argument, for a missing
// '=' or section, an empty value, a value given twice, a key varied twice,
// an [experiment] or [plugins] key (every variant has the file's seed).
absl::StatusOr<std::vector<VaryAxis>> ParseVary(
    const std::vector<std::string>& args);

// One key a variant sets.
struct VariantSet {
  std::string key;     // "section.key"
  std::string value;   // TOML text, or a plain string (as --set reads it)
  std::string origin;  // "--vary optimizer.use" or "x.toml:12:1 [[variants]]"
};

// One run of a comparison.
struct VariantSpec {
  std::string name;              // its run folder and column
  std::vector<VariantSet> sets;  // in order: the entry's, then the axes'
  // "section.key=value" for train::RunOptions::sets.
  std::vector<std::string> SetArgs() const;
};

// Every [[variants]] entry (or one empty entry when there are none) with
// every combination of the axes' values, the entries outermost and the
// first axis next. INVALID_ARGUMENT when nothing varies, when an axis varies
// a key an entry sets, or when two names come out the same.
absl::StatusOr<std::vector<VariantSpec>> CrossVariants(
    const std::vector<config::Variant>& entries,
    const std::vector<VaryAxis>& axes);

}  // namespace llmsys::report

#endif  // LLMSYS_FRAMEWORK_REPORT_VARIANTS_H_
