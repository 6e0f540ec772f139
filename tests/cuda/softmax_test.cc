// softmax.cuda, log_softmax.cuda and cross_entropy.cuda on the emulated
// device (tests/cuda/emu: cuda/softmax.cu compiled for the CPU, called
// through the plugin's host code): the strided plan, the loss reduction's
// parts and workspace, the argument checks, and values and gradients
// against the reference's formulas written out below in double, for all
// four float dtypes and every kernel path (rows in registers by a warp or
// a block, long rows in two passes, other dims strided; vector and
// single-element loads), NaN rows, ignored and out-of-range targets.
#include "cuda/softmax.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "framework/tensor/tensor.h"
#include "tests/cuda/cuda_test_util.h"

namespace llmsys::cuda_test {
namespace {

using cuda::CeReduction;
using cuda::DType;
using tensor::kBF16;
using tensor::kF16;
using tensor::kF32;
using tensor::kF64;
using tensor::kI32;
using tensor::kI64;
using tensor::kU8;
using tensor::Tensor;
using Shape = std::vector<int64_t>;
using Vec = std::vector<double>;

constexpr double kNan = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

// ---- plans ----

TEST(CudaSoftmaxPlanTest, StridedTilesCoverTheInnerLanes) {
  for (int64_t inner : {2, 3, 5, 8, 31, 32, 33, 100, 4096}) {
    const cuda::StridedPlan p = cuda::PlanStrided(7, inner);
    EXPECT_EQ(p.tx * p.ty, cuda::kStridedThreads) << inner;
    EXPECT_LE(p.tx, 32) << inner;
    EXPECT_EQ(p.tx & (p.tx - 1), 0) << inner;  // a power of two
    EXPECT_GE(p.tiles * p.tx, inner) << inner;
    EXPECT_LT((p.tiles - 1) * p.tx, inner) << inner;
    EXPECT_EQ(p.blocks, 7 * p.tiles) << inner;
  }
  EXPECT_EQ(cuda::PlanStrided(3, 3).tx, 4);
  EXPECT_EQ(cuda::PlanStrided(3, 3).ty, 64);
  EXPECT_EQ(cuda::PlanStrided(0, 5).blocks, 1);
  EXPECT_EQ(cuda::PlanStrided(int64_t{1} << 40, 64).blocks,
            cuda::rowops::kRowMaxBlocks);
}

TEST(CudaSoftmaxPlanTest, RowPlansAndCrossEntropyWorkspace) {
  // float32: forward rows up to 16384 in registers, backward (y and g) up
  // to 8192; vocabulary-sized rows take two passes.
  EXPECT_TRUE(cuda::SoftmaxRowsPlan(4, 16384, DType::kF32, true, false).cached);
  EXPECT_FALSE(
      cuda::SoftmaxRowsPlan(4, 16385, DType::kF32, true, false).cached);
  EXPECT_TRUE(cuda::SoftmaxRowsPlan(4, 8192, DType::kF32, true, true).cached);
  EXPECT_FALSE(cuda::SoftmaxRowsPlan(4, 8193, DType::kF32, true, true).cached);
  EXPECT_FALSE(
      cuda::CrossEntropyBackwardPlan(8, 50257, DType::kBF16, false).cached);
  EXPECT_EQ(cuda::CrossEntropyParts(0), 1);
  EXPECT_EQ(cuda::CrossEntropyParts(2048), 1);
  EXPECT_EQ(cuda::CrossEntropyParts(2049), 2);
  EXPECT_EQ(cuda::CrossEntropyParts(int64_t{1} << 40), cuda::kCeMaxParts);
  EXPECT_EQ(
      cuda::CrossEntropyWorkspaceBytes(100, DType::kF32, CeReduction::kNone),
      size_t{0});
  EXPECT_EQ(
      cuda::CrossEntropyWorkspaceBytes(100, DType::kF32, CeReduction::kMean),
      size_t{8 * 3 + 100 * 4});
  EXPECT_EQ(
      cuda::CrossEntropyWorkspaceBytes(5000, DType::kF64, CeReduction::kSum),
      size_t{8 * 7 + 5000 * 8});
  EXPECT_EQ(
      cuda::CrossEntropyWorkspaceBytes(0, DType::kBF16, CeReduction::kMean),
      size_t{24});
}

// ---- argument checks ----

struct Bad {
  std::string id;
  std::vector<std::optional<FakeTensor>> in;
  runtime::AttrList attrs;
  std::string says;
};

void ExpectInvalid(const std::vector<Bad>& bad) {
  for (const Bad& b : bad) {
    absl::StatusOr<Specs> s = Infer(b.id, b.in, b.attrs);
    ASSERT_FALSE(s.ok()) << b.id << ": " << b.says;
    EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument) << b.says;
    EXPECT_NE(s.status().message().find(b.says), std::string::npos)
        << s.status();
  }
}

TEST(CudaSoftmaxInferTest, OutputShapes) {
  for (DLDataType t : {kF32, kF64, kBF16, kF16}) {
    for (const char* id : {"softmax.cuda", "log_softmax.cuda"}) {
      absl::StatusOr<Specs> s =
          Infer(id, {FakeTensor{{2, 3, 4}, t}}, {{"dim", int64_t{1}}});
      ASSERT_TRUE(s.ok()) << s.status();
      EXPECT_EQ((*s)[0].first, (Shape{2, 3, 4}));
      EXPECT_TRUE(llmsys_dtype_equal((*s)[0].second, t));
      s = Infer(id, {FakeTensor{{}, t}});
      ASSERT_TRUE(s.ok()) << s.status();
      EXPECT_EQ((*s)[0].first, (Shape{}));
    }
    for (DLDataType it : {kI32, kI64}) {
      absl::StatusOr<Specs> s =
          Infer("cross_entropy.cuda",
                {FakeTensor{{2, 3, 10}, t}, FakeTensor{{2, 3}, it}});
      ASSERT_TRUE(s.ok()) << s.status();
      EXPECT_EQ((*s)[0].first, (Shape{}));
      s = Infer("cross_entropy.cuda",
                {FakeTensor{{2, 3, 10}, t}, FakeTensor{{2, 3}, it}},
                {{"reduction", std::string("none")}});
      ASSERT_TRUE(s.ok()) << s.status();
      EXPECT_EQ((*s)[0].first, (Shape{2, 3}));
    }
  }
}

TEST(CudaSoftmaxInferTest, BadInputsNameTheProblem) {
  ExpectInvalid({
      {"softmax.cuda",
       {FakeTensor{{2, 3}, kF32}},
       {{"dim", int64_t{2}}},
       "out of range"},
      {"log_softmax.cuda",
       {FakeTensor{{2, 3}, kF32}},
       {{"dim", int64_t{-3}}},
       "out of range"},
      {"softmax.cuda", {FakeTensor{{2, 3}, kI64}}, {}, "must be float32"},
      {"cross_entropy.cuda",
       {FakeTensor{{4, 0}, kF32}, FakeTensor{{4}, kI64}},
       {},
       "non-empty class dim"},
      {"cross_entropy.cuda",
       {FakeTensor{{}, kF32}, FakeTensor{{}, kI64}},
       {},
       "non-empty class dim"},
      {"cross_entropy.cuda",
       {FakeTensor{{4, 5}, kF32}, FakeTensor{{5}, kI64}},
       {},
       "targets must have logits' shape without the class dim"},
      {"cross_entropy.cuda",
       {FakeTensor{{4, 5}, kF32}, FakeTensor{{4}, kF32}},
       {},
       "must be int32 or int64"},
      {"cross_entropy.cuda",
       {FakeTensor{{4, 5}, kF32}, FakeTensor{{4}, kU8}},
       {},
       "must be int32 or int64"},
      {"cross_entropy.cuda",
       {FakeTensor{{4, 5}, kF32}, FakeTensor{{4}, kI32}},
       {{"label_smoothing", 1.5}},
       "label_smoothing must be in [0, 1]"},
  });
}

// ---- values ----

Vec Random(int64_t n, uint32_t seed, double lo = -2.0, double hi = 2.0) {
  return RandomUniform(n, seed, lo, hi);
}

double Tolerance(DLDataType t) {
  if (llmsys_dtype_equal(t, kF64)) return 1e-10;
  if (llmsys_dtype_equal(t, kF32)) return 1e-5;
  return 2e-2;
}

// Runs `op` forward and (with needs_grad) backward as the host does; the
// output and the gradient of input 0.
struct Ran {
  Vec out, dx;
  bool ok = false;
};
Ran RunOp(const std::string& op, const std::vector<Tensor>& inputs,
          const runtime::AttrList& attrs, const Vec& g, bool backward) {
  Ran ran;
  std::unique_ptr<runtime::OperatorImpl> impl = EmulatedOp(op + ".cuda", op);
  if (impl == nullptr) return ran;
  const runtime::ParamPack pack = *impl->Attrs(attrs);
  runtime::CallOptions options;
  options.poison = true;  // every output element must be written
  absl::StatusOr<std::vector<Tensor>> out =
      impl->Forward(inputs, pack, options);
  EXPECT_TRUE(out.ok()) << out.status();
  if (!out.ok()) return ran;
  ran.out = (*out)[0].ToDoubles();
  ran.ok = true;
  if (!backward) return ran;
  const bool kept = (impl->flags() & LLMSYS_OP_BACKWARD_NEEDS_INPUTS) != 0;
  const bool kept_out = (impl->flags() & LLMSYS_OP_BACKWARD_NEEDS_OUTPUTS) != 0;
  std::vector<Tensor> saved;
  std::vector<runtime::TensorMeta> meta;
  std::vector<bool> needs;
  for (const Tensor& t : inputs) {
    saved.push_back(kept ? t : Tensor());
    meta.push_back({true, t.shape(), t.dtype()});
    needs.push_back(needs.empty());
  }
  const Tensor tg =
      g.empty() ? Tensor() : OnDevice((*out)[0].shape(), g, (*out)[0].dtype());
  absl::StatusOr<std::vector<Tensor>> grads = impl->Backward(
      saved, meta, pack, options,
      kept_out ? *out : std::vector<Tensor>(out->size()), {tg}, needs);
  EXPECT_TRUE(grads.ok()) << grads.status();
  if (!grads.ok()) return ran;
  ran.dx = (*grads)[0].ToDoubles();
  return ran;
}

// ---- softmax / log_softmax ----

struct Lanes {
  int64_t outer = 1, len = 1, inner = 1;
};
Lanes LanesOf(const Shape& shape, int64_t dim) {
  Lanes l;
  if (shape.empty()) return l;
  if (dim < 0) dim += static_cast<int64_t>(shape.size());
  for (int64_t d = 0; d < dim; ++d) l.outer *= shape[d];
  l.len = shape[dim];
  for (size_t d = static_cast<size_t>(dim) + 1; d < shape.size(); ++d)
    l.inner *= shape[d];
  return l;
}

// The reference's forward from x, and backward from the output y (as the
// op saved it) and g.
void SoftmaxReference(bool log, const Vec& x, const Vec& y, const Vec& g,
                      const Lanes& l, Vec* out, Vec* dx) {
  out->assign(x.size(), 0.0);
  dx->assign(x.size(), 0.0);
  for (int64_t o = 0; o < l.outer; ++o)
    for (int64_t i = 0; i < l.inner; ++i) {
      auto at = [&](int64_t j) { return (o * l.len + j) * l.inner + i; };
      double mx = -kInf;
      for (int64_t j = 0; j < l.len; ++j) mx = std::max(mx, x[at(j)]);
      double sum = 0;
      for (int64_t j = 0; j < l.len; ++j) sum += std::exp(x[at(j)] - mx);
      for (int64_t j = 0; j < l.len; ++j) {
        const double s = x[at(j)] - mx;
        (*out)[at(j)] = log ? s - std::log(sum) : std::exp(s) / sum;
      }
      double gs = 0;
      for (int64_t j = 0; j < l.len; ++j)
        gs += log ? g[at(j)] : g[at(j)] * y[at(j)];
      for (int64_t j = 0; j < l.len; ++j)
        (*dx)[at(j)] = log ? g[at(j)] - std::exp(y[at(j)]) * gs
                           : y[at(j)] * (g[at(j)] - gs);
    }
}

struct SoftmaxCase {
  Shape shape;
  int64_t dim;
  bool offset = false;
};

void CheckSoftmax(bool log, DLDataType t, const SoftmaxCase& sc, uint32_t seed,
                  const Vec& values = {}) {
  const std::string op = log ? "log_softmax" : "softmax";
  std::string what = op + " " + tensor::DTypeName(t) + " (";
  for (int64_t d : sc.shape) what += std::to_string(d) + ",";
  what += ") dim " + std::to_string(sc.dim) + (sc.offset ? " off" : "");
  const int64_t n = Numel(sc.shape);
  const Tensor x = OnDevice(
      sc.shape, values.empty() ? Random(n, seed, -4, 4) : values, t, sc.offset);
  const Vec g = OnDevice(sc.shape, Random(n, seed + 1), t).ToDoubles();
  const Ran ran = RunOp(op, {x}, {{"dim", sc.dim}}, g, true);
  ASSERT_TRUE(ran.ok) << what;
  Vec out, dx;
  SoftmaxReference(log, x.ToDoubles(), ran.out, g, LanesOf(sc.shape, sc.dim),
                   &out, &dx);
  ExpectNear(ran.out, out, Tolerance(t), what + " out");
  ExpectNear(ran.dx, dx, Tolerance(t), what + " dx");
}

TEST(CudaSoftmaxTest, ValuesAndGradientsOnEveryPath) {
  const std::vector<SoftmaxCase> cases = {
      {{3, 7}, -1},         // a warp per row, single loads
      {{2, 64}, -1},        // a warp per row, vectors
      {{3, 1000}, 1},       // a block per row, registers
      {{3, 64}, -1, true},  // unaligned: single loads
      {{2, 17, 3}, 1},      // strided, 3 inner lanes
      {{4, 5}, 0},          // strided over the first dim
      {{3, 40, 70}, 1},     // strided, 3 tiles of 32 lanes
      {{5, 1}, 0},          // a dim of 5 with I == 1: rows
      {{}, 0},              // 0-d: one element, softmax 1
      {{6, 1}, 1},          // rows of one element
  };
  uint32_t seed = 1;
  for (DLDataType t : {kF32, kF64, kBF16, kF16})
    for (const SoftmaxCase& sc : cases) {
      CheckSoftmax(false, t, sc, seed);
      CheckSoftmax(true, t, sc, seed);
      seed += 10;
    }
}

TEST(CudaSoftmaxTest, LongRowsTakeTwoPasses) {
  CheckSoftmax(false, kF32, {{2, 20000}, -1}, 3);  // 16384 < L: two passes
  CheckSoftmax(true, kF32, {{2, 20000}, -1}, 4);
  CheckSoftmax(false, kBF16, {{2, 9001}, -1, true}, 5);
  CheckSoftmax(true, kF64, {{1, 9000}, 1}, 6);
}

TEST(CudaSoftmaxTest, NanInfAndAllMaskedRowsGiveNanAsTheReference) {
  // Row 0 finite with a -inf, row 1 a NaN, row 2 a +inf, row 3 all -inf.
  for (int64_t len : {int64_t{6}, int64_t{20000}}) {
    Vec x = Random(4 * len, 9);
    x[1] = -kInf;
    x[len + 2] = kNan;
    x[2 * len + 3] = kInf;
    for (int64_t j = 0; j < len; ++j) x[3 * len + j] = -kInf;
    for (bool log : {false, true}) {
      const Ran r =
          RunOp(log ? "log_softmax" : "softmax", {OnDevice({4, len}, x, kF32)},
                {{"dim", int64_t{-1}}}, {}, false);
      ASSERT_TRUE(r.ok);
      for (int64_t j = 0; j < len; ++j) {
        if (j == 1)
          EXPECT_EQ(r.out[j], log ? -kInf : 0.0);
        else
          EXPECT_FALSE(std::isnan(r.out[j])) << j;
        for (int row = 1; row < 4; ++row)
          EXPECT_TRUE(std::isnan(r.out[row * len + j])) << row << " " << j;
      }
    }
  }
  // Strided: the same along dim 0.
  Vec x = {1, kNan, -kInf,
           2, 0,    -kInf};  // (2, 3): lanes (1, 2), (nan, 0), (-inf, -inf)
  const Ran r = RunOp("softmax", {OnDevice({2, 3}, x, kF32)},
                      {{"dim", int64_t{0}}}, {}, false);
  ASSERT_TRUE(r.ok);
  EXPECT_NEAR(r.out[0], 1 / (1 + std::exp(1.0)), 1e-6);
  EXPECT_TRUE(std::isnan(r.out[1]));
  EXPECT_TRUE(std::isnan(r.out[4]));
  EXPECT_TRUE(std::isnan(r.out[2]));
  EXPECT_TRUE(std::isnan(r.out[5]));
}

TEST(CudaSoftmaxTest, NoIncomingGradientGivesZero) {
  const Tensor x = OnDevice({3, 10}, Random(30, 1), kF32);
  for (const char* op : {"softmax", "log_softmax"}) {
    const Ran r = RunOp(op, {x}, {{"dim", int64_t{-1}}}, {}, true);
    ASSERT_TRUE(r.ok);
    EXPECT_EQ(r.dx, Vec(30, 0.0)) << op;
  }
}

// ---- cross_entropy ----

struct CeRef {
  Vec loss;  // per row ('none'), or one value
  Vec dx;
};

// The reference's formulas. targets: the class per row (any value; those
// outside [0, V) that are not `ignore` give NaN, as the kernels do). g:
// the upstream gradient ((R) for 'none', () otherwise).
CeRef CeReference(const Vec& x, const std::vector<int64_t>& targets, int64_t v,
                  int64_t ignore, double eps, const std::string& reduction,
                  const Vec& g) {
  const int64_t rows = static_cast<int64_t>(targets.size());
  Vec loss(static_cast<size_t>(rows), 0.0);
  double total = 0;
  int64_t count = 0;
  Vec lse(static_cast<size_t>(rows), 0.0);
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t t = targets[r];
    if (t == ignore) continue;
    ++count;
    if (t < 0 || t >= v) {
      loss[r] = kNan;
      total += kNan;
      continue;
    }
    const double* row = x.data() + r * v;
    double mx = -kInf, sum = 0, sx = 0;
    for (int64_t j = 0; j < v; ++j) mx = std::max(mx, row[j]);
    for (int64_t j = 0; j < v; ++j) sum += std::exp(row[j] - mx);
    for (int64_t j = 0; j < v; ++j) sx += row[j];
    lse[r] = mx + std::log(sum);
    loss[r] = eps == 0 ? lse[r] - row[t]
                       : (1 - eps) * (lse[r] - row[t]) +
                             eps * (lse[r] - sx / static_cast<double>(v));
    total += loss[r];
  }
  CeRef ref;
  if (reduction == "none")
    ref.loss = loss;
  else if (reduction == "sum")
    ref.loss = {total};
  else
    ref.loss = {count > 0 ? total / static_cast<double>(count) : kNan};
  ref.dx.assign(x.size(), 0.0);
  if (g.empty()) return ref;
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t t = targets[r];
    if (t == ignore) continue;
    double s = reduction == "none" ? g[r] : g[0];
    if (reduction == "mean" && count > 0) s /= static_cast<double>(count);
    for (int64_t j = 0; j < v; ++j) {
      if (t < 0 || t >= v) {
        ref.dx[r * v + j] = kNan;
        continue;
      }
      double d = std::exp(x[r * v + j] - lse[r]) - eps / static_cast<double>(v);
      if (j == t) d -= 1 - eps;
      ref.dx[r * v + j] = s * d;
    }
  }
  return ref;
}

struct CeCase {
  int64_t rows, v;
  DLDataType index;
  int64_t ignore;
  double eps;
  std::string reduction;
  bool offset = false;
};

void CheckCrossEntropy(DLDataType t, const CeCase& c, uint32_t seed,
                       const std::vector<int64_t>& fixed_targets = {}) {
  const std::string what = "cross_entropy " + tensor::DTypeName(t) + " (" +
                           std::to_string(c.rows) + ", " + std::to_string(c.v) +
                           ") " + c.reduction + " eps " +
                           std::to_string(c.eps) + (c.offset ? " off" : "");
  const Tensor x =
      OnDevice({c.rows, c.v}, Random(c.rows * c.v, seed, -5, 5), t, c.offset);
  std::vector<int64_t> targets = fixed_targets;
  if (targets.empty()) {
    std::mt19937 gen(seed + 1);
    for (int64_t r = 0; r < c.rows; ++r)
      targets.push_back(r % 5 == 2 ? c.ignore
                                   : static_cast<int64_t>(gen() % c.v));
  }
  const Vec tv(targets.begin(), targets.end());
  const Tensor tt = OnDevice({c.rows}, tv, c.index);
  const Vec g =
      c.reduction == "none"
          ? OnDevice({c.rows}, Random(c.rows, seed + 2), t).ToDoubles()
          : OnDevice({}, {1.5}, t).ToDoubles();
  const Ran ran = RunOp("cross_entropy", {x, tt},
                        {{"ignore_index", c.ignore},
                         {"label_smoothing", c.eps},
                         {"reduction", c.reduction}},
                        g, true);
  ASSERT_TRUE(ran.ok) << what;
  const CeRef ref =
      CeReference(x.ToDoubles(), targets, c.v, c.ignore, c.eps, c.reduction, g);
  ExpectNear(ran.out, ref.loss, Tolerance(t), what + " loss");
  ExpectNear(ran.dx, ref.dx, Tolerance(t), what + " dlogits");
}

TEST(CudaCrossEntropyTest, ValuesAndGradientsOnEveryPath) {
  const std::vector<CeCase> cases = {
      {37, 10, kI64, -100, 0.0, "mean"},         // a warp per row
      {37, 10, kI32, 3, 0.1, "sum"},             // custom ignore_index
      {9, 1000, kI64, -100, 0.1, "none"},        // a block per row
      {9, 1000, kI32, -100, 0.0, "mean", true},  // unaligned logits
      {3, 20001, kI64, -100, 0.2, "mean"},       // vocabulary-sized rows
      {1, 1, kI64, -100, 0.0, "mean"},           // one class
  };
  uint32_t seed = 1;
  for (DLDataType t : {kF32, kF64, kBF16, kF16})
    for (const CeCase& c : cases) {
      CheckCrossEntropy(t, c, seed);
      seed += 10;
    }
}

TEST(CudaCrossEntropyTest, IgnoredAndOutOfRangeTargets) {
  // Every row ignored: 'mean' is NaN (0 / 0), 'sum' 0, gradients 0.
  CheckCrossEntropy(kF32, {4, 6, kI64, -100, 0.0, "mean"}, 1,
                    {-100, -100, -100, -100});
  CheckCrossEntropy(kF32, {4, 6, kI64, -100, 0.0, "sum"}, 2,
                    {-100, -100, -100, -100});
  // A target outside [0, V) that is not ignored: NaN loss and gradient
  // for its row (the host cannot check targets on the GPU).
  CheckCrossEntropy(kF32, {4, 6, kI64, -100, 0.0, "none"}, 3, {1, 6, -1, 2});
  CheckCrossEntropy(kF32, {4, 6, kI32, -100, 0.1, "mean"}, 4, {1, 7, 0, 2});
  CheckCrossEntropy(kF32, {3, 20001, kI64, -100, 0.0, "none"}, 5,
                    {20001, 5, -100});
}

TEST(CudaCrossEntropyTest, NoRows) {
  for (const char* reduction : {"mean", "sum", "none"}) {
    const Ran r = RunOp("cross_entropy",
                        {OnDevice({0, 5}, {}, kF32), OnDevice({0}, {}, kI64)},
                        {{"reduction", std::string(reduction)}}, {}, false);
    ASSERT_TRUE(r.ok) << reduction;
    if (std::string(reduction) == "none") {
      EXPECT_TRUE(r.out.empty());
    } else {
      ASSERT_EQ(r.out.size(), 1u);
      if (std::string(reduction) == "sum")
        EXPECT_EQ(r.out[0], 0.0);
      else
        EXPECT_TRUE(std::isnan(r.out[0]));
    }
  }
}

TEST(CudaCrossEntropyTest, NanLogitsGiveNanAndTheSumIsDeterministic) {
  Vec x = Random(5 * 50, 8);
  x[2 * 50 + 7] = kNan;
  const Tensor xt = OnDevice({5, 50}, x, kF32);
  const Tensor tt = OnDevice({5}, {1, 2, 3, 4, 5}, kI64);
  Ran r = RunOp("cross_entropy", {xt, tt}, {{"reduction", std::string("none")}},
                {}, false);
  ASSERT_TRUE(r.ok);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(std::isnan(r.out[i]), i == 2) << i;
  // A large 'sum' twice: the same bits.
  const int64_t rows = 5000;
  const Tensor big = OnDevice({rows, 7}, Random(rows * 7, 9), kF32);
  Vec tv;
  for (int64_t i = 0; i < rows; ++i) tv.push_back(static_cast<double>(i % 7));
  const Tensor bt = OnDevice({rows}, tv, kI32);
  const Ran a = RunOp("cross_entropy", {big, bt},
                      {{"reduction", std::string("sum")}}, {}, false);
  const Ran b = RunOp("cross_entropy", {big, bt},
                      {{"reduction", std::string("sum")}}, {}, false);
  ASSERT_TRUE(a.ok && b.ok);
  EXPECT_EQ(std::memcmp(a.out.data(), b.out.data(), sizeof(double)), 0);
}

}  // namespace
}  // namespace llmsys::cuda_test
