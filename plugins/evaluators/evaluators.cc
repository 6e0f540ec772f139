// plugins/evaluators/evaluators.cc — the built-in evaluators (plugin
// "llmsys.evaluators").
//
// accuracy: the fraction of predictions equal to their labels, over every
// batch fed to one instance. Labels equal to `ignore_index` (default -100,
// the value PyTorch's cross_entropy skips, so padded label tensors can be
// fed unchanged) are left out of both counts. Metrics:
//   accuracy  correct / total, in [0, 1]; 0 when total is 0
//   correct   predictions that matched a counted label
//   total     labels counted (not ignored)
// Signature: "ignore_index:-100|version:1.0.0".
//
// Inputs (LLMSYS_EVAL_PREDICTIONS): predictions and labels, each a (count)
// int64 tensor on the CPU; strided 1-D views are accepted. A batch is
// checked in full before it is counted, so a rejected batch changes nothing.
//
// Thread-safety: an instance is used by one thread at a time
// (evaluator.h). Ownership: batch tensors are borrowed for the call; only
// the two counters are kept.
#include <cstddef>
#include <cstdint>
#include <string>

#include "llmsys/sdk.hpp"

namespace llmsys::plugins {
namespace {

using sdk::Require;

constexpr char kAccuracyVersion[] = "1.0.0";

class Accuracy : public sdk::Evaluator {
 public:
  static sdk::Info Describe() {
    sdk::Info info;
    info.id = "accuracy";
    info.version = kAccuracyVersion;
    info.description = "Fraction of predictions equal to their labels";
    // It reads the predictions and labels tensors, which live on the CPU.
    info.device_type = kDLCPU;
    info.params.push_back(sdk::ParamSpec::Int(
        "ignore_index", -100, "labels equal to this value are not counted"));
    info.eval_inputs = LLMSYS_EVAL_PREDICTIONS;
    return info;
  }

  explicit Accuracy(const sdk::Params& p)
      : ignore_index_(p.Int("ignore_index")) {}

  void Add(const llmsys_eval_batch_t& batch) override {
    Require(batch.struct_size >=
                offsetof(llmsys_eval_batch_t, labels) + sizeof(batch.labels),
            "accuracy: the batch is too small (struct_size " +
                std::to_string(batch.struct_size) + ")");
    CheckInput(batch.predictions, "predictions", batch.count);
    CheckInput(batch.labels, "labels", batch.count);
    const int64_t* pred = sdk::Data<const int64_t>(batch.predictions);
    const int64_t* label = sdk::Data<const int64_t>(batch.labels);
    const int64_t pred_stride = Stride(batch.predictions);
    const int64_t label_stride = Stride(batch.labels);
    int64_t correct = 0;
    int64_t total = 0;
    for (int64_t i = 0; i < static_cast<int64_t>(batch.count); ++i) {
      const int64_t y = label[i * label_stride];
      if (y == ignore_index_) continue;
      ++total;
      correct += pred[i * pred_stride] == y;
    }
    correct_ += correct;
    total_ += total;
  }

  sdk::EvalResult Result() override {
    const double accuracy = total_ == 0 ? 0.0
                                        : static_cast<double>(correct_) /
                                              static_cast<double>(total_);
    sdk::EvalResult result;
    result.metrics = {{"accuracy", accuracy},
                      {"correct", static_cast<double>(correct_)},
                      {"total", static_cast<double>(total_)}};
    result.signature = "ignore_index:" + std::to_string(ignore_index_) +
                       "|version:" + kAccuracyVersion;
    return result;
  }

 private:
  static void CheckInput(const DLTensor* t, const char* name, uint32_t count) {
    const std::string what = std::string("accuracy: ") + name;
    Require(t != nullptr, what +
                              " is NULL (the evaluator reads predictions "
                              "and labels)");
    Require(t->device.device_type == kDLCPU, what + " must be on the CPU");
    Require(llmsys_dtype_equal(t->dtype, LLMSYS_DTYPE_I64),
            what + " must be int64");
    Require(t->ndim == 1 && t->shape[0] == static_cast<int64_t>(count),
            what + " must be (count) = (" + std::to_string(count) + "), got " +
                sdk::ShapeString(t));
  }

  static int64_t Stride(const DLTensor* t) {
    return t->strides != nullptr ? t->strides[0] : 1;
  }

  int64_t ignore_index_;
  int64_t correct_ = 0;
  int64_t total_ = 0;
};

}  // namespace
}  // namespace llmsys::plugins

LLMSYS_PLUGIN("llmsys.evaluators", "0.1.0", "Built-in evaluators: accuracy",
              "MIT") {
  registry.Add<llmsys::plugins::Accuracy>();
}
