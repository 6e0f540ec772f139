#include "framework/conformance/conformance.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <random>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "framework/core/status_macros.h"
#include "framework/tensor/device.h"

namespace llmsys::conformance {
namespace {

using runtime::CallOptions;
using runtime::OperatorImpl;
using runtime::ParamPack;
using runtime::ParamValue;
using runtime::TensorMeta;
using tensor::kF32;
using tensor::kF64;
using tensor::kI32;
using tensor::kI64;
using tensor::kU8;
using tensor::Shape;

constexpr size_t kMaxFailures = 4;

// Deterministic random tensors: the suite is reproducible run to run.
class Gen {
 public:
  explicit Gen(uint64_t seed) : rng_(seed) {}
  Tensor Uniform(const Shape& shape, double lo = -1.0, double hi = 1.0) {
    std::uniform_real_distribution<double> d(lo, hi);
    std::vector<double> v(static_cast<size_t>(tensor::Numel(shape)));
    for (double& x : v) x = d(rng_);
    return *Tensor::FromDoubles(shape, v, kF64);
  }
  // |x| >= 0.05: away from the kink of relu and the like.
  Tensor AwayFromZero(const Shape& shape) {
    Tensor t = Uniform(shape, 0.05, 1.0);
    std::vector<double> v = t.ToDoubles();
    std::bernoulli_distribution sign(0.5);
    for (double& x : v) x = sign(rng_) ? -x : x;
    return *Tensor::FromDoubles(shape, v, kF64);
  }
  Tensor Ints(const Shape& shape, int64_t lo, int64_t hi, DLDataType dtype) {
    std::uniform_int_distribution<int64_t> d(lo, hi);
    std::vector<double> v(static_cast<size_t>(tensor::Numel(shape)));
    for (double& x : v) x = static_cast<double>(d(rng_));
    return *Tensor::FromDoubles(shape, v, dtype);
  }
  Tensor Mask(const Shape& shape, double p_true = 0.4) {
    std::bernoulli_distribution d(p_true);
    std::vector<double> v(static_cast<size_t>(tensor::Numel(shape)));
    for (double& x : v) x = d(rng_) ? 1 : 0;
    return *Tensor::FromDoubles(shape, v, kU8);
  }

 private:
  std::mt19937_64 rng_;
};

Tensor Values(const Shape& shape, const std::vector<double>& v,
              DLDataType dtype) {
  return *Tensor::FromDoubles(shape, v, dtype);
}

std::vector<OpCase> BinaryCases(const std::string& op, Gen& g) {
  const bool div = op == "div";
  auto b = [&](const Shape& s) {
    return div ? g.Uniform(s, 0.5, 2.0) : g.Uniform(s);
  };
  return {
      {"(2, 3) and (2, 3)", {g.Uniform({2, 3}), b({2, 3})}, {}},
      {"(3, 1, 5) and (4, 1), broadcast",
       {g.Uniform({3, 1, 5}), b({4, 1})},
       {}},
      {"(7) and a 0-d scalar", {g.Uniform({7}), b({})}, {}},
  };
}

std::vector<OpCase> UnaryCases(const std::string& op, Gen& g) {
  auto x = [&](const Shape& s) {
    if (op == "log" || op == "sqrt" || op == "pow") return g.Uniform(s, 0.5, 2);
    if (op == "relu") return g.AwayFromZero(s);
    if (op == "gelu") return g.Uniform(s, -3, 3);
    return g.Uniform(s);
  };
  if (op == "pow")
    return {{"(3, 5) ^ 2", {x({3, 5})}, {{"exponent", 2.0}}},
            {"(7) ^ 0.5", {x({7})}, {{"exponent", 0.5}}},
            {"(2, 3) ^ -1.5", {x({2, 3})}, {{"exponent", -1.5}}}};
  if (op == "gelu")
    return {{"(3, 5) erf", {x({3, 5})}, {{"approximate", std::string("none")}}},
            {"(7) tanh", {x({7})}, {{"approximate", std::string("tanh")}}}};
  return {{"(3, 5)", {x({3, 5})}, {}}, {"(7)", {x({7})}, {}}};
}

std::vector<OpCase> ReductionCases(Gen& g) {
  using Ints = std::vector<int64_t>;
  return {
      {"(3, 4, 5) over all", {g.Uniform({3, 4, 5})}, {}},
      {"(3, 4, 5) dims [1]", {g.Uniform({3, 4, 5})}, {{"dims", Ints{1}}}},
      {"(3, 4, 5) dims [-1, 0] keepdim",
       {g.Uniform({3, 4, 5})},
       {{"dims", Ints{-1, 0}}, {"keepdim", true}}},
      {"(7) dims [0]", {g.Uniform({7})}, {{"dims", Ints{0}}}},
  };
}

std::vector<OpCase> CasesFor(const std::string& op) {
  uint64_t seed = 17;  // from the op name: stable across builds
  for (char ch : op) seed = seed * 131 + static_cast<unsigned char>(ch);
  Gen g(seed);
  if (op == "add" || op == "sub" || op == "mul" || op == "div")
    return BinaryCases(op, g);
  if (op == "neg" || op == "exp" || op == "log" || op == "pow" ||
      op == "sqrt" || op == "tanh" || op == "sigmoid" || op == "relu" ||
      op == "gelu")
    return UnaryCases(op, g);
  if (op == "sum" || op == "mean" || op == "max") return ReductionCases(g);
  if (op == "matmul")
    return {
        {"(3, 4) @ (4, 5)", {g.Uniform({3, 4}), g.Uniform({4, 5})}, {}},
        {"(2, 3, 4) @ (4, 2), broadcast",
         {g.Uniform({2, 3, 4}), g.Uniform({4, 2})},
         {}},
        {"(4, 3)^T @ (5, 4)^T",
         {g.Uniform({4, 3}), g.Uniform({5, 4})},
         {{"transpose_a", true}, {"transpose_b", true}}},
        {"(2, 1, 3, 4) @ (3, 4, 2)",
         {g.Uniform({2, 1, 3, 4}), g.Uniform({3, 4, 2})},
         {}},
    };
  if (op == "linear")
    return {{"(2, 3, 4) with bias (5)",
             {g.Uniform({2, 3, 4}), g.Uniform({5, 4}), g.Uniform({5})},
             {}},
            {"(3, 4) without bias",
             {g.Uniform({3, 4}), g.Uniform({2, 4}), Tensor()},
             {}},
            {"(1, 6), one row",
             {g.Uniform({1, 6}), g.Uniform({3, 6}), g.Uniform({3})},
             {}}};
  if (op == "contiguous") {
    Tensor base = g.Uniform({4, 3});
    Tensor slab = g.Uniform({2, 5, 3});
    return {{"(3, 4) transposed view", {*base.Transpose(0, 1)}, {}},
            {"(2, 2, 3) strided slice", {*slab.Slice(1, 1, 5, 2)}, {}},
            {"(2, 3) compact", {g.Uniform({2, 3})}, {}}};
  }
  if (op == "concat")
    return {{"(2, 3) and (4, 3) on dim 0",
             {g.Uniform({2, 3}), g.Uniform({4, 3})},
             {{"dim", int64_t{0}}}},
            {"(2, 3), (2, 1), (2, 2) on dim -1",
             {g.Uniform({2, 3}), g.Uniform({2, 1}), g.Uniform({2, 2})},
             {{"dim", int64_t{-1}}}}};
  if (op == "where")
    return {{"(2, 3) everywhere",
             {g.Mask({2, 3}), g.Uniform({2, 3}), g.Uniform({2, 3})},
             {}},
            {"(2, 3) cond, (3) a, (2, 1) b",
             {g.Mask({2, 3}), g.Uniform({3}), g.Uniform({2, 1})},
             {}}};
  if (op == "masked_fill")
    return {{"(3, 4) with (1, 4) mask",
             {g.Uniform({3, 4}), g.Mask({1, 4})},
             {{"value", -2.5}}},
            {"(2, 3) with (2, 3) int mask",
             {g.Uniform({2, 3}), g.Ints({2, 3}, 0, 1, kI64)},
             {{"value", 0.0}}}};
  if (op == "embedding")
    return {{"(5, 3) at int64 (2, 3)",
             {g.Uniform({5, 3}), Values({2, 3}, {0, 4, 2, 2, 1, 0}, kI64)},
             {}},
            {"(4, 2) at int32 (5)",
             {g.Uniform({4, 2}), Values({5}, {3, 3, 0, 1, 3}, kI32)},
             {}}};
  if (op == "layer_norm")
    return {{"(3, 5) affine",
             {g.Uniform({3, 5}), g.Uniform({5}), g.Uniform({5})},
             {}},
            {"(2, 3, 4) no affine",
             {g.Uniform({2, 3, 4}), Tensor(), Tensor()},
             {{"eps", 1e-3}}},
            {"(4, 6) weight only",
             {g.Uniform({4, 6}), g.Uniform({6}), Tensor()},
             {}}};
  if (op == "rms_norm")
    return {{"(3, 5) with weight", {g.Uniform({3, 5}), g.Uniform({5})}, {}},
            {"(2, 3, 4) no weight",
             {g.Uniform({2, 3, 4}), Tensor()},
             {{"eps", 1e-3}}}};
  if (op == "softmax" || op == "log_softmax")
    return {{"(3, 5) dim -1", {g.Uniform({3, 5}, -3, 3)}, {}},
            {"(4, 3, 2) dim 1",
             {g.Uniform({4, 3, 2}, -3, 3)},
             {{"dim", int64_t{1}}}}};
  if (op == "cross_entropy")
    return {{"(4, 5) mean, one ignored",
             {g.Uniform({4, 5}, -2, 2), Values({4}, {1, -100, 4, 0}, kI64)},
             {}},
            {"(4, 5) sum, label smoothing 0.1",
             {g.Uniform({4, 5}, -2, 2), Values({4}, {2, 2, 3, 0}, kI64)},
             {{"reduction", std::string("sum")}, {"label_smoothing", 0.1}}},
            {"(2, 3, 5) none, int32, ignore_index 3",
             {g.Uniform({2, 3, 5}, -2, 2),
              Values({2, 3}, {0, 3, 4, 1, 3, 2}, kI32)},
             {{"reduction", std::string("none")},
              {"ignore_index", int64_t{3}},
              {"label_smoothing", 0.2}}}};
  if (op == "ctc_loss") {
    // log_probs (T, N, C) log-softmaxed; targets (N, S) padded with 0.
    auto lp = [&](int64_t t, int64_t n, int64_t c) {
      std::vector<double> v = g.Uniform({t, n, c}, -2, 2).ToDoubles();
      for (int64_t r = 0; r < t * n; ++r) {
        double lse = 0;
        for (int64_t k = 0; k < c; ++k) lse += std::exp(v[r * c + k]);
        for (int64_t k = 0; k < c; ++k) v[r * c + k] -= std::log(lse);
      }
      return Values({t, n, c}, v, kF64);
    };
    return {{"(6, 3, 4) mean, a repeat and an empty target",
             {lp(6, 3, 4), Values({3, 3}, {1, 2, 2, 3, 0, 0, 0, 0, 0}, kI64),
              Values({3}, {6, 5, 4}, kI64), Values({3}, {3, 1, 0}, kI64)},
             {}},
            {"(5, 2, 3) sum, blank 2, int32",
             {lp(5, 2, 3), Values({2, 2}, {0, 1, 1, 1}, kI32),
              Values({2}, {5, 3}, kI32), Values({2}, {2, 2}, kI32)},
             {{"reduction", std::string("sum")}, {"blank", int64_t{2}}}},
            {"(4, 3, 3) none, one infeasible zeroed",
             {lp(4, 3, 3), Values({3, 3}, {1, 1, 1, 2, 1, 0, 1, 0, 0}, kI64),
              Values({3}, {4, 3, 2}, kI64), Values({3}, {3, 2, 1}, kI64)},
             {{"reduction", std::string("none")}}}};
  }
  if (op == "dropout")
    return {{"(4, 5) p 0.3", {g.Uniform({4, 5})}, {{"p", 0.3}}},
            {"(7) p 0", {g.Uniform({7})}, {{"p", 0.0}}}};
  if (op == "attention") {
    auto q = [&](int64_t n) { return g.Uniform({1, 2, n, 4}); };
    return {
        {"(1, 2, 3, 4) x 5 keys", {q(3), q(5), q(5), Tensor()}, {}},
        {"causal (1, 2, 4, 4)",
         {q(4), q(4), q(4), Tensor()},
         {{"causal", true}}},
        {"key padding, scale 0.5",
         {q(3), q(5), q(5), Values({1, 5}, {0, 1, 0, 0, 1}, kU8)},
         {{"scale", 0.5}}},
        {"dropout 0.2, causal",
         {q(3), q(3), q(3), Tensor()},
         {{"dropout_p", 0.2}, {"causal", true}}},
        {"a fully masked row",
         {q(2), q(3), q(3), Values({1, 3}, {1, 1, 1}, kU8)},
         {}},
    };
  }
  return {};
}

// |a - b| / max(1, |b|), with NaN and infinities compared exactly.
double RelError(double a, double b) {
  if (std::isnan(a) || std::isnan(b))
    return std::isnan(a) && std::isnan(b)
               ? 0.0
               : std::numeric_limits<double>::infinity();
  if (std::isinf(a) || std::isinf(b))
    return a == b ? 0.0 : std::numeric_limits<double>::infinity();
  return std::abs(a - b) / std::max(1.0, std::abs(b));
}

// Worst error and where it is ("[1, 2]: 3.5 vs 4.5").
std::pair<double, std::string> Compare(const Tensor& got, const Tensor& want) {
  const std::vector<double> a = got.ToDoubles(), b = want.ToDoubles();
  double worst = 0;
  size_t at = 0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) {
    const double e = RelError(a[i], b[i]);
    if (e > worst || (std::isinf(e) && !std::isinf(worst))) {
      worst = e;
      at = i;
    }
  }
  if (a.empty()) return {0.0, ""};
  // Row-major index of `at`.
  std::vector<int64_t> index(want.shape().size());
  size_t rest = at;
  for (size_t d = index.size(); d-- > 0;) {
    index[d] = static_cast<int64_t>(rest % want.shape()[d]);
    rest /= want.shape()[d];
  }
  return {worst, absl::StrFormat("at %s: %.9g vs reference %.9g",
                                 tensor::ShapeString(index), a[at], b[at])};
}

// The case's inputs with float inputs converted to `dtype` (views kept as
// views, so strided inputs stay strided).
std::vector<Tensor> Convert(const std::vector<Tensor>& inputs,
                            DLDataType dtype) {
  std::vector<Tensor> out;
  for (const Tensor& t : inputs) {
    if (!t.defined() || !(t.dtype() == kF64) || dtype == kF64) {
      out.push_back(t);
      continue;
    }
    // Keep the layout: convert the whole storage, then view it the same way.
    const int64_t n =
        static_cast<int64_t>(t.storage()->bytes() / t.element_size());
    Tensor base = *(*t.AsStrided({n}, {1}, 0)).To(dtype);
    out.push_back(*base.AsStrided(t.shape(), t.strides(), t.offset()));
  }
  return out;
}

struct Run {
  std::vector<Tensor> outputs;
  std::vector<Tensor> grads;
};

// `tensors` on `device` (the CPU: as they are), each with its layout: the
// whole storage moves, so a strided input stays strided.
absl::StatusOr<std::vector<Tensor>> OnDevice(const std::vector<Tensor>& tensors,
                                             DLDevice device) {
  if (device.device_type == kDLCPU) return tensors;
  std::vector<Tensor> out;
  for (const Tensor& t : tensors) {
    if (!t.defined()) {
      out.emplace_back();
      continue;
    }
    const int64_t n =
        static_cast<int64_t>(t.storage()->bytes() / t.element_size());
    LLMSYS_ASSIGN_OR_RETURN(Tensor flat, t.AsStrided({n}, {1}, 0));
    LLMSYS_ASSIGN_OR_RETURN(Tensor moved, flat.ToDevice(device));
    LLMSYS_ASSIGN_OR_RETURN(
        Tensor view, moved.AsStrided(t.shape(), t.strides(), t.offset()));
    out.push_back(std::move(view));
  }
  return out;
}

absl::StatusOr<std::vector<Tensor>> OnHost(const std::vector<Tensor>& tensors) {
  std::vector<Tensor> out;
  for (const Tensor& t : tensors) {
    if (!t.defined()) {
      out.emplace_back();
      continue;
    }
    LLMSYS_ASSIGN_OR_RETURN(Tensor host, t.ToDevice(tensor::kCpu));
    out.push_back(std::move(host));
  }
  return out;
}

class Checker {
 public:
  Checker(const runtime::Component& candidate,
          const runtime::Component& reference,
          const runtime::OpContract& contract, const Tolerances& tol,
          OpReport& report)
      : candidate_(candidate),
        reference_(reference),
        contract_(contract),
        tol_(tol),
        report_(report) {}

  void Fail(const OpCase& c, const std::string& what) {
    if (report_.failures.size() < kMaxFailures)
      report_.failures.push_back(
          absl::StrCat("case \"", c.label, "\": ", what));
  }

  // Forward on the implementation's device; outputs come back to the host.
  absl::StatusOr<std::vector<Tensor>> Forward(const OperatorImpl& impl,
                                              const OpCase& c,
                                              const std::vector<Tensor>& in) {
    LLMSYS_ASSIGN_OR_RETURN(ParamPack attrs, impl.Attrs(c.attrs));
    LLMSYS_ASSIGN_OR_RETURN(std::vector<Tensor> dev_in,
                            OnDevice(in, impl.device()));
    LLMSYS_ASSIGN_OR_RETURN(std::vector<Tensor> out,
                            impl.Forward(dev_in, attrs, Options(c)));
    return OnHost(out);
  }

  static CallOptions Options(const OpCase& c) {
    CallOptions options;
    options.rng = c.rng;
    options.poison = true;
    return options;
  }

  // Forward, then backward with output gradients `w` (one per output,
  // undefined for aux outputs).
  absl::StatusOr<Run> ForwardBackward(const OperatorImpl& impl, const OpCase& c,
                                      const std::vector<Tensor>& host_in,
                                      const std::vector<Tensor>& host_w) {
    if (impl.device().device_type == kDLCPU)
      return ForwardBackwardHere(impl, c, host_in, host_w);
    // On a device: inputs and output gradients go there, results come back.
    LLMSYS_ASSIGN_OR_RETURN(std::vector<Tensor> in,
                            OnDevice(host_in, impl.device()));
    LLMSYS_ASSIGN_OR_RETURN(std::vector<Tensor> w,
                            OnDevice(host_w, impl.device()));
    LLMSYS_ASSIGN_OR_RETURN(Run run, ForwardBackwardHere(impl, c, in, w));
    LLMSYS_ASSIGN_OR_RETURN(run.outputs, OnHost(run.outputs));
    LLMSYS_ASSIGN_OR_RETURN(run.grads, OnHost(run.grads));
    return run;
  }

  // ForwardBackward with everything already on the implementation's device.
  absl::StatusOr<Run> ForwardBackwardHere(const OperatorImpl& impl,
                                          const OpCase& c,
                                          const std::vector<Tensor>& in,
                                          const std::vector<Tensor>& w) {
    Run run;
    LLMSYS_ASSIGN_OR_RETURN(ParamPack attrs, impl.Attrs(c.attrs));
    LLMSYS_ASSIGN_OR_RETURN(run.outputs, impl.Forward(in, attrs, Options(c)));
    if (!impl.has_backward()) return run;
    std::vector<TensorMeta> meta;
    std::vector<bool> needs;
    for (const Tensor& t : in) {
      meta.push_back({t.defined(), t.defined() ? t.shape() : Shape{},
                      t.defined() ? t.dtype() : kF32});
      needs.push_back(t.defined() && tensor::IsFloatDType(t.dtype()));
    }
    std::vector<Tensor> saved_in(in.size()), saved_out(run.outputs.size());
    if (impl.flags() & LLMSYS_OP_BACKWARD_NEEDS_INPUTS) saved_in = in;
    if (impl.flags() & LLMSYS_OP_BACKWARD_NEEDS_OUTPUTS)
      saved_out = run.outputs;
    LLMSYS_ASSIGN_OR_RETURN(
        run.grads,
        impl.Backward(saved_in, meta, attrs, Options(c), saved_out, w, needs));
    return run;
  }

  // Random output gradients (float64 master, converted to `dtype`).
  std::vector<Tensor> OutputGrads(const std::vector<Tensor>& outputs,
                                  DLDataType dtype) {
    Gen g(77);
    std::vector<Tensor> w(outputs.size());
    for (size_t i = 0; i < outputs.size(); ++i) {
      if (contract_.outputs[i].aux || !tensor::IsFloatDType(outputs[i].dtype()))
        continue;
      w[i] = *g.Uniform(outputs[i].shape()).To(dtype);
    }
    return w;
  }

  // Steps 1-3 for one dtype. Returns false if the candidate refused the
  // dtype (float64 is optional).
  bool CompareWithReference(const OperatorImpl& cand, const OperatorImpl& ref,
                            const OpCase& c, DLDataType dtype) {
    const std::vector<Tensor> in = Convert(c.inputs, dtype);
    absl::StatusOr<std::vector<Tensor>> want_out = Forward(ref, c, in);
    if (!want_out.ok()) {
      Fail(c, absl::StrCat("the reference failed on ", tensor::DTypeName(dtype),
                           ": ", want_out.status().message()));
      return true;
    }
    const std::vector<Tensor> w = OutputGrads(*want_out, dtype);
    absl::StatusOr<Run> got = ForwardBackward(cand, c, in, w);
    if (!got.ok()) {
      if (dtype == kF64) return false;  // float64 is optional
      Fail(c, absl::StrCat(tensor::DTypeName(dtype), ": ",
                           got.status().message()));
      return true;
    }
    absl::StatusOr<Run> want = ForwardBackward(ref, c, in, w);
    if (!want.ok()) {
      Fail(c, absl::StrCat("the reference failed: ", want.status().message()));
      return true;
    }
    const double tol = dtype == kF64 ? tol_.float64 : tol_.float32;
    const std::string dt = tensor::DTypeName(dtype);
    for (size_t i = 0; i < want->outputs.size(); ++i) {
      const Tensor& a = got->outputs[i];
      const Tensor& b = want->outputs[i];
      const std::string name = contract_.outputs[i].name;
      if (a.shape() != b.shape() || !(a.dtype() == b.dtype())) {
        Fail(c, absl::StrCat(dt, ": output '", name, "' is ", a.Describe(),
                             ", the reference gives ", b.Describe()));
        continue;
      }
      auto [err, where] = Compare(a, b);
      report_.forward_error = std::max(report_.forward_error, err);
      if (!(err <= tol))
        Fail(c, absl::StrFormat("%s: output '%s' differs %s (error %.3g > "
                                "%.3g)",
                                dt, name, where, err, tol));
    }
    if (!cand.has_backward()) return true;
    for (size_t i = 0; i < want->grads.size() && i < got->grads.size(); ++i) {
      if (!want->grads[i].defined()) continue;
      const std::string name = InputName(i);
      if (!got->grads[i].defined() ||
          got->grads[i].shape() != want->grads[i].shape()) {
        Fail(c, absl::StrCat(dt, ": gradient of '", name, "' is ",
                             got->grads[i].Describe(), ", the reference gives ",
                             want->grads[i].Describe()));
        continue;
      }
      auto [err, where] = Compare(got->grads[i], want->grads[i]);
      report_.backward_error = std::max(report_.backward_error, err);
      if (!(err <= tol))
        Fail(c, absl::StrFormat("%s: gradient of '%s' differs %s (error %.3g "
                                "> %.3g)",
                                dt, name, where, err, tol));
    }
    return true;
  }

  // Step 4: backward against central differences, float64.
  void GradCheck(const OperatorImpl& cand, const OpCase& c) {
    const std::vector<Tensor> in = Convert(c.inputs, kF64);
    absl::StatusOr<std::vector<Tensor>> out = Forward(cand, c, in);
    if (!out.ok()) return;
    const std::vector<Tensor> w = OutputGrads(*out, kF64);
    absl::StatusOr<Run> run = ForwardBackward(cand, c, in, w);
    if (!run.ok()) {
      Fail(c, absl::StrCat("float64 backward: ", run.status().message()));
      return;
    }
    auto loss = [&](const std::vector<Tensor>& x) -> double {
      absl::StatusOr<std::vector<Tensor>> o = Forward(cand, c, x);
      if (!o.ok()) return std::numeric_limits<double>::quiet_NaN();
      double s = 0;
      for (size_t i = 0; i < w.size(); ++i) {
        if (!w[i].defined()) continue;
        const std::vector<double> ov = (*o)[i].ToDoubles();
        const std::vector<double> wv = w[i].ToDoubles();
        for (size_t k = 0; k < ov.size(); ++k)
          if (wv[k] != 0) s += wv[k] * ov[k];
      }
      return s;
    };
    double worst = 0;
    for (size_t i = 0; i < in.size(); ++i) {
      if (!in[i].defined() || !(in[i].dtype() == kF64) ||
          i >= run->grads.size() || !run->grads[i].defined())
        continue;
      const std::vector<double> analytic = run->grads[i].ToDoubles();
      std::vector<double> x = in[i].ToDoubles();
      std::vector<Tensor> probe = in;
      for (size_t k = 0; k < x.size(); ++k) {
        const double x0 = x[k];
        x[k] = x0 + tol_.step;
        probe[i] = Values(in[i].shape(), x, kF64);
        const double up = loss(probe);
        x[k] = x0 - tol_.step;
        probe[i] = Values(in[i].shape(), x, kF64);
        const double down = loss(probe);
        x[k] = x0;
        const double numeric = (up - down) / (2 * tol_.step);
        const double err = RelError(analytic[k], numeric);
        if (err > worst) worst = err;
        if (!(err <= tol_.gradcheck) && report_.failures.size() < kMaxFailures)
          Fail(c,
               absl::StrFormat(
                   "float64 gradient of '%s' at element %d: backward "
                   "%.9g, central difference %.9g (error %.3g > %.3g)",
                   InputName(i), k, analytic[k], numeric, err, tol_.gradcheck));
      }
    }
    report_.gradcheck_error = std::max(report_.gradcheck_error, worst);
  }

  std::string InputName(size_t i) const {
    const auto& args = contract_.inputs;
    if (args.size() == 1 && args[0].variadic)
      return absl::StrCat(args[0].name, "[", i, "]");
    return i < args.size() ? args[i].name : absl::StrCat("input ", i);
  }

 private:
  const runtime::Component& candidate_;
  const runtime::Component& reference_;
  const runtime::OpContract& contract_;
  Tolerances tol_;
  OpReport& report_;
};

}  // namespace

std::vector<OpCase> StandardCases(const std::string& op) {
  return CasesFor(op);
}

OpReport CheckOperator(const runtime::Component& candidate,
                       const runtime::Component& reference,
                       const runtime::OpContract& contract,
                       const Tolerances& tolerances) {
  OpReport report;
  report.op = contract.name;
  report.implementation = candidate.id;
  report.file =
      candidate.plugin != nullptr ? candidate.plugin->path().string() : "";
  const std::vector<OpCase> cases = CasesFor(contract.name);
  if (cases.empty()) {
    report.skipped = true;
    report.skip_reason = "the suite has no cases for this op";
    return report;
  }
  if (candidate.device_type != kDLCPU) {
    // On a device: inputs go there and results come back to be compared
    // with the reference on the host. Skipped, saying why, without one.
    const DLDevice device{static_cast<DLDeviceType>(candidate.device_type), 0};
    absl::StatusOr<tensor::DeviceBackend*> backend = tensor::BackendFor(device);
    absl::Status usable =
        backend.ok() ? (*backend)->Available(device) : backend.status();
    if (!usable.ok()) {
      report.skipped = true;
      report.skip_reason = absl::StrCat(tensor::DeviceName(device),
                                        " cannot run here: ", usable.message());
      return report;
    }
  }
  absl::StatusOr<std::unique_ptr<OperatorImpl>> cand =
      OperatorImpl::Create(candidate, contract);
  absl::StatusOr<std::unique_ptr<OperatorImpl>> ref =
      OperatorImpl::Create(reference, contract);
  if (!cand.ok() || !ref.ok()) {
    report.failures.push_back(absl::StrCat(
        "create: ", (!cand.ok() ? cand.status() : ref.status()).message()));
    return report;
  }
  Checker checker(candidate, reference, contract, tolerances, report);
  report.float64 = true;
  for (const OpCase& c : cases) {
    ++report.cases;
    checker.CompareWithReference(**cand, **ref, c, kF32);
    if (!checker.CompareWithReference(**cand, **ref, c, kF64))
      report.float64 = false;
  }
  if (report.float64 && (*cand)->has_backward()) {
    for (const OpCase& c : cases) checker.GradCheck(**cand, c);
  }
  return report;
}

std::vector<OpReport> CheckOperators(
    const std::vector<const runtime::Component*>& candidates,
    const runtime::PluginRegistry& oracle, const Tolerances& tolerances) {
  std::vector<OpReport> reports;
  for (const runtime::Component* c : candidates) {
    if (c->kind != LLMSYS_KIND_OPERATOR) continue;
    const runtime::OpContract* contract = oracle.FindOpContract(c->op);
    if (contract == nullptr && c->plugin != nullptr) {
      for (const runtime::OpContract& k : c->plugin->op_contracts())
        if (k.name == c->op) contract = &k;
    }
    absl::StatusOr<const runtime::Component*> ref =
        oracle.Find(LLMSYS_KIND_OPERATOR, c->op + ".reference");
    if (contract == nullptr || !ref.ok()) {
      OpReport r;
      r.op = c->op;
      r.implementation = c->id;
      r.file = c->plugin != nullptr ? c->plugin->path().string() : "";
      r.skipped = true;
      r.skip_reason = absl::StrCat("no reference implementation of op '", c->op,
                                   "' to check against");
      reports.push_back(std::move(r));
      continue;
    }
    reports.push_back(CheckOperator(*c, **ref, *contract, tolerances));
  }
  return reports;
}

}  // namespace llmsys::conformance
