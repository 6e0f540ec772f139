// framework/eval/segments.h — reading evaluation segments from files, for
// `llmsys eval`: hypothesis/reference files with one segment per line, or a
// JSON Lines file with one object per segment.
//
// Lines are kept verbatim, as the Python APIs of sacreBLEU and rouge-score
// see their strings: only the "\n" that ends a line is removed (a "\r"
// before it stays; the metrics strip what their reference systems strip).
// Text must be valid UTF-8; an error names the file, the line and the byte.
// A file with no segment at all is an error; an empty line is a valid,
// empty segment.
//
// JSON Lines objects, by what the evaluator reads:
//   text         {"hyp": "...", "refs": ["...", null, ...]}  (null: missing;
//                "ref": "..." is accepted for a single reference)
//   log-probs    {"log_prob": -12.5, "tokens": 7}
//   predictions  {"prediction": 3, "label": 3}, or for pass@k
//                {"n": 10, "c": 3} (samples, correct samples)
// Blank lines are skipped.
//
// Thread-safety: free functions, no shared state.
#ifndef LLMSYS_FRAMEWORK_EVAL_SEGMENTS_H_
#define LLMSYS_FRAMEWORK_EVAL_SEGMENTS_H_

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "framework/eval/evaluator.h"

namespace llmsys::eval {

struct Segments {
  // LLMSYS_EVAL_TEXT
  std::vector<std::string> hyps;
  std::vector<References> refs;
  // LLMSYS_EVAL_LOG_PROBS
  std::vector<double> log_probs;
  std::vector<int64_t> token_counts;
  // LLMSYS_EVAL_PREDICTIONS
  std::vector<int64_t> predictions;
  std::vector<int64_t> labels;

  size_t size() const;
};

// The lines of a text file (see above).
absl::StatusOr<std::vector<std::string>> ReadLines(
    const std::filesystem::path& file);

// Hypotheses from `hyp_file` and one reference stream per `ref_files`
// entry; every file must have as many lines as the hypotheses.
absl::StatusOr<Segments> ReadTextFiles(
    const std::filesystem::path& hyp_file,
    const std::vector<std::filesystem::path>& ref_files);

// A JSON Lines file of segments for evaluator `evaluator_id` reading
// `inputs` (LLMSYS_EVAL_* flags; the first flag set decides the object
// form, and pass_at_k takes {"n", "c"} rather than prediction/label).
absl::StatusOr<Segments> ReadJsonl(const std::filesystem::path& file,
                                   uint32_t inputs,
                                   const std::string& evaluator_id);

// Feeds segments [begin, end) to `evaluator` in the form it reads.
absl::Status AddSegments(Evaluator& evaluator, const Segments& segments,
                         size_t begin, size_t end);

}  // namespace llmsys::eval

#endif  // LLMSYS_FRAMEWORK_EVAL_SEGMENTS_H_
