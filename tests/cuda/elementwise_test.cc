// The elementwise components of llmsys.cuda on the emulated device
// (tests/cuda/emu: cuda/elementwise.cu compiled for the CPU, called through
// the plugin's host code): the binary ops' layouts and plans, pack widths,
// copy units, the argument checks, and values and gradients against the
// reference's formulas written out below in double (unary ops, broadcasts
// of every layout, where, masked_fill, contiguous, concat), for all four
// float dtypes.
#include "cuda/elementwise.h"

#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "framework/tensor/tensor.h"
#include "tests/cuda/cuda_test_util.h"

namespace llmsys::cuda_test {
namespace {

using cuda::DType;
using cuda::OperandLayout;
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

// ---- plans ----

TEST(ElementwisePlanTest, OperandLayouts) {
  int64_t len = 0;
  EXPECT_EQ(cuda::LayoutOf({2, 3}, {2, 3}, &len), OperandLayout::kFull);
  EXPECT_EQ(cuda::LayoutOf({3}, {1, 3}, &len), OperandLayout::kFull);
  EXPECT_EQ(cuda::LayoutOf({768}, {8, 1024, 768}, &len), OperandLayout::kRow);
  EXPECT_EQ(len, 768);
  EXPECT_EQ(cuda::LayoutOf({1, 1024, 768}, {8, 1024, 768}, &len),
            OperandLayout::kRow);
  EXPECT_EQ(len, 1024 * 768);
  EXPECT_EQ(cuda::LayoutOf({1}, {4, 5}, &len), OperandLayout::kScalar);
  EXPECT_EQ(cuda::LayoutOf({}, {4, 5}, &len), OperandLayout::kScalar);
  EXPECT_EQ(cuda::LayoutOf({4, 1}, {4, 5}, &len), OperandLayout::kGeneral);
  EXPECT_EQ(cuda::LayoutOf({3, 1, 5}, {3, 4, 5}, &len),
            OperandLayout::kGeneral);
}

TEST(ElementwisePlanTest, BinaryPlansPickTheFastPathsAndMergeGeneralDims) {
  cuda::BinaryPlan p = cuda::PlanBinary({8, 16}, {16}, {8, 16});
  EXPECT_FALSE(p.general);
  EXPECT_EQ(p.a, OperandLayout::kFull);
  EXPECT_EQ(p.b, OperandLayout::kRow);
  EXPECT_EQ(p.n, 128);
  p = cuda::PlanBinary({}, {4, 4}, {4, 4});
  EXPECT_FALSE(p.general);
  EXPECT_EQ(p.a, OperandLayout::kScalar);
  // (2, 3, 1) with (1, 3, 4): out (2, 3, 4), three dims that cannot merge.
  p = cuda::PlanBinary({2, 3, 1}, {1, 3, 4}, {2, 3, 4});
  ASSERT_TRUE(p.general);
  ASSERT_EQ(p.dims.n, 3);
  EXPECT_EQ(p.dims.stride[0][0], 3);
  EXPECT_EQ(p.dims.stride[0][2], 0);
  EXPECT_EQ(p.dims.stride[1][0], 0);
  EXPECT_EQ(p.dims.stride[1][1], 4);
  // A mask-like (B, 1, T, T) with (B, H, T, T): T and T merge.
  p = cuda::PlanBinary({2, 3, 4, 4}, {2, 1, 4, 4}, {2, 3, 4, 4});
  ASSERT_TRUE(p.general);
  EXPECT_EQ(p.dims.n, 3);
  EXPECT_EQ(p.dims.size[2], 16);
}

TEST(ElementwisePlanTest, PacksNeedAlignedPointersAndWholeCounts) {
  alignas(16) static char buffer[64];
  EXPECT_EQ(cuda::PackWidth(DType::kF32, {buffer, buffer + 16}, {8}), 4);
  EXPECT_EQ(cuda::PackWidth(DType::kBF16, {buffer}, {16, 8}), 8);
  EXPECT_EQ(cuda::PackWidth(DType::kF64, {buffer}, {6}), 2);
  EXPECT_EQ(cuda::PackWidth(DType::kF32, {buffer + 4}, {8}), 1);
  EXPECT_EQ(cuda::PackWidth(DType::kF32, {buffer}, {6}), 1);
  EXPECT_EQ(cuda::CopyUnit({0, 32, 48}), 16);
  EXPECT_EQ(cuda::CopyUnit({0, 8, 24}), 8);
  EXPECT_EQ(cuda::CopyUnit({4, 12}), 4);
  EXPECT_EQ(cuda::CopyUnit({2, 6}), 2);
  EXPECT_EQ(cuda::CopyUnit({16, 3}), 1);
}

TEST(ElementwisePlanTest, BroadcastGradientsReduceTheBroadcastDims) {
  // A bias (768) of (8, 1024, 768): 768 outputs, each over 8192 rows.
  const Shape out = {8, 1024, 768};
  cuda::ReduceGeom g = cuda::BroadcastGradGeom({768}, out, nullptr, nullptr);
  EXPECT_EQ(g.k, 768);
  EXPECT_EQ(g.r, 8192);
  ASSERT_EQ(g.red.n, 1);
  EXPECT_EQ(g.red.stride[0][0], 768);
  // (8, 1, 768) keeps dims 0 and 2.
  g = cuda::BroadcastGradGeom({8, 1, 768}, out, nullptr, nullptr);
  EXPECT_EQ(g.k, 8 * 768);
  EXPECT_EQ(g.r, 1024);
  // The full shape reduces nothing.
  const Shape b = {768};
  g = cuda::BroadcastGradGeom(out, out, &out, &b);
  EXPECT_EQ(g.r, 1);
  EXPECT_EQ(g.k, 8 * 1024 * 768);
  EXPECT_EQ(cuda::PlanReduce(g, 4, false).kind, cuda::ReduceKind::kThread);
  // ... but b's row is read at stride 0: not a pointwise gradient of a for
  // mul; for add (which reads no input) it is.
  EXPECT_FALSE(cuda::IsPointwiseGrad(g, true));
  g = cuda::BroadcastGradGeom(out, out, nullptr, nullptr);
  EXPECT_TRUE(cuda::IsPointwiseGrad(g, false));
  g = cuda::BroadcastGradGeom(out, out, &out, &out);
  EXPECT_TRUE(cuda::IsPointwiseGrad(g, true));
  g = cuda::BroadcastGradGeom({768}, out, nullptr, nullptr);
  EXPECT_FALSE(cuda::IsPointwiseGrad(g, false));
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

Shape OutShape(const std::string& id,
               const std::vector<std::optional<FakeTensor>>& in,
               const runtime::AttrList& attrs = {}) {
  absl::StatusOr<Specs> s = Infer(id, in, attrs);
  EXPECT_TRUE(s.ok()) << id << ": " << s.status();
  if (!s.ok() || s->size() != 1) return {-1};
  return (*s)[0].first;
}

TEST(ElementwiseInferTest, OutputShapes) {
  for (DLDataType t : {kF32, kF64, kBF16, kF16}) {
    for (const char* id : {"add.cuda", "sub.cuda", "mul.cuda", "div.cuda"})
      EXPECT_EQ(OutShape(id, {FakeTensor{{2, 1, 4}, t}, FakeTensor{{3, 1}, t}}),
                (Shape{2, 3, 4}));
    for (const char* id :
         {"neg.cuda", "exp.cuda", "log.cuda", "sqrt.cuda", "tanh.cuda",
          "sigmoid.cuda", "relu.cuda", "gelu.cuda"})
      EXPECT_EQ(OutShape(id, {FakeTensor{{2, 5}, t}}), (Shape{2, 5}));
    EXPECT_EQ(OutShape("pow.cuda", {FakeTensor{{3}, t}}, {{"exponent", 2.0}}),
              (Shape{3}));
    EXPECT_EQ(OutShape("where.cuda", {FakeTensor{{4, 1}, kU8},
                                      FakeTensor{{5}, t}, FakeTensor{{}, t}}),
              (Shape{4, 5}));
    EXPECT_EQ(OutShape("masked_fill.cuda",
                       {FakeTensor{{2, 3}, t}, FakeTensor{{3}, kI64}},
                       {{"value", -1.0}}),
              (Shape{2, 3}));
    EXPECT_EQ(OutShape("concat.cuda",
                       {FakeTensor{{2, 3}, t}, FakeTensor{{2, 5}, t},
                        FakeTensor{{2, 0}, t}},
                       {{"dim", int64_t{-1}}}),
              (Shape{2, 8}));
  }
  for (DLDataType t : {kU8, kI32, kI64, kBF16})
    EXPECT_EQ(OutShape("contiguous.cuda", {FakeTensor{{3, 2}, t}}),
              (Shape{3, 2}));
}

TEST(ElementwiseInferTest, BadInputsNameTheProblem) {
  ExpectInvalid({
      {"add.cuda",
       {FakeTensor{{2, 3}, kF32}, FakeTensor{{4}, kF32}},
       {},
       "cannot broadcast"},
      {"mul.cuda",
       {FakeTensor{{2, 3}, kF32}, FakeTensor{{3}, kF64}},
       {},
       "same dtype"},
      {"div.cuda",
       {FakeTensor{{2, 3}, kI32}, FakeTensor{{3}, kI32}},
       {},
       "must be float32"},
      {"exp.cuda", {FakeTensor{{2}, kI64}}, {}, "must be float32"},
      {"gelu.cuda",
       {FakeTensor{{2}, kF32}},
       {{"approximate", std::string("erf")}},
       "approximate must be 'none' or 'tanh'"},
      {"where.cuda",
       {FakeTensor{{2}, kU8}, FakeTensor{{3}, kF32}, FakeTensor{{3}, kF32}},
       {},
       "cannot broadcast together"},
      {"where.cuda",
       {FakeTensor{{3}, kF16}, FakeTensor{{3}, kF32}, FakeTensor{{3}, kF32}},
       {},
       "must be uint8"},
      {"masked_fill.cuda",
       {FakeTensor{{3}, kF32}, FakeTensor{{2, 3}, kU8}},
       {{"value", 0.0}},
       "does not broadcast to"},
      {"concat.cuda",
       {FakeTensor{{2, 3}, kF32}, FakeTensor{{3, 3}, kF32}},
       {{"dim", int64_t{1}}},
       "in every dim but dim 1"},
      {"concat.cuda",
       {FakeTensor{{2, 3}, kF32}, FakeTensor{{2, 3}, kF64}},
       {},
       "same dtype"},
      {"concat.cuda", {FakeTensor{{}, kF32}}, {}, "0-d"},
      {"concat.cuda",
       {FakeTensor{{2, 3}, kF32}},
       {{"dim", int64_t{2}}},
       "out of range"},
  });
}

TEST(ElementwiseInferTest, OnlyBroadcastMulAndDivAskForAWorkspace) {
  struct Case {
    std::string id, op;
    Shape a, b;
    bool wants;
  };
  for (const Case& c : std::vector<Case>{
           {"mul.cuda", "mul", {3, 100000}, {3, 1}, true},
           {"mul.cuda", "mul", {3, 100000}, {3, 100000}, false},
           {"add.cuda", "add", {3, 100000}, {3, 1}, false},  // none in backward
       }) {
    std::unique_ptr<runtime::OperatorImpl> impl = EmulatedOp(c.id, c.op);
    ASSERT_NE(impl, nullptr);
    const Tensor a = *Tensor::Empty(c.a, kF32, kCuda0);
    const Tensor b = *Tensor::Empty(c.b, kF32, kCuda0);
    absl::StatusOr<runtime::OperatorImpl::InferResult> r =
        impl->Infer({a, b}, *impl->Attrs({}));
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->workspace_bytes > 0, c.wants) << c.id;
  }
}

// ---- values ----

Vec Random(int64_t n, uint32_t seed, double lo = -2.0, double hi = 2.0) {
  return RandomUniform(n, seed, lo, hi);
}

double Tolerance(DLDataType t) {
  if (llmsys_dtype_equal(t, kF64)) return 1e-12;
  if (llmsys_dtype_equal(t, kF32)) return 1e-5;
  return 2e-2;
}

// Runs `op` forward, then backward with incoming gradient g (inputs passed
// only when the op keeps them, as the host does); returns the output and
// the gradients of the inputs asked for.
struct Ran {
  std::vector<Vec> out;
  std::vector<Vec> grads;  // empty where not asked
};
Ran RunOp(const std::string& id, const std::string& op,
          const std::vector<Tensor>& inputs, const runtime::AttrList& attrs,
          const Vec& g, const std::vector<bool>& needs_grad) {
  Ran ran;
  std::unique_ptr<runtime::OperatorImpl> impl = EmulatedOp(id, op);
  if (impl == nullptr) return ran;
  const runtime::ParamPack pack = *impl->Attrs(attrs);
  runtime::CallOptions options;
  options.poison = true;  // every output element must be written
  absl::StatusOr<std::vector<Tensor>> out =
      impl->Forward(inputs, pack, options);
  EXPECT_TRUE(out.ok()) << out.status();
  if (!out.ok()) return ran;
  ran.out.push_back((*out)[0].ToDoubles());
  if (needs_grad.empty()) return ran;
  const bool kept = (impl->flags() & LLMSYS_OP_BACKWARD_NEEDS_INPUTS) != 0;
  std::vector<Tensor> saved;
  std::vector<runtime::TensorMeta> meta;
  for (const Tensor& t : inputs) {
    saved.push_back(kept ? t : Tensor());
    meta.push_back({true, t.shape(), t.dtype()});
  }
  const Tensor tg =
      g.empty() ? Tensor() : OnDevice((*out)[0].shape(), g, (*out)[0].dtype());
  absl::StatusOr<std::vector<Tensor>> grads =
      impl->Backward(saved, meta, pack, options, *out, {tg}, needs_grad);
  EXPECT_TRUE(grads.ok()) << grads.status();
  if (!grads.ok()) return ran;
  for (size_t i = 0; i < grads->size(); ++i)
    ran.grads.push_back(needs_grad[i] ? (*grads)[i].ToDoubles() : Vec{});
  return ran;
}

// ---- unary ops ----

struct UnaryCase {
  std::string op;
  std::function<double(double)> f, d;
  double lo = -2.0, hi = 2.0;
  runtime::AttrList attrs = {};
};

double GeluErf(double x) {
  return 0.5 * x * (1.0 + std::erf(x / std::sqrt(2.0)));
}
double GeluErfD(double x) {
  const double cdf = 0.5 * (1.0 + std::erf(x / std::sqrt(2.0)));
  return cdf + x * std::exp(-0.5 * x * x) / std::sqrt(2.0 * M_PI);
}
double GeluTanh(double x) {
  const double k = std::sqrt(2.0 / M_PI);
  return 0.5 * x * (1.0 + std::tanh(k * (x + 0.044715 * x * x * x)));
}
double GeluTanhD(double x) {
  const double k = std::sqrt(2.0 / M_PI);
  const double t = std::tanh(k * (x + 0.044715 * x * x * x));
  return 0.5 * (1.0 + t) +
         0.5 * x * (1.0 - t * t) * k * (1.0 + 3.0 * 0.044715 * x * x);
}
double Sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }

std::vector<UnaryCase> UnaryCases() {
  return {
      {"neg", [](double x) { return -x; }, [](double) { return -1.0; }},
      {"exp", [](double x) { return std::exp(x); },
       [](double x) { return std::exp(x); }},
      {"log", [](double x) { return std::log(x); },
       [](double x) { return 1.0 / x; }, 0.1, 3.0},
      {"pow",
       [](double x) { return std::pow(x, 3.0); },
       [](double x) { return 3.0 * std::pow(x, 2.0); },
       -2.0,
       2.0,
       {{"exponent", 3.0}}},
      {"pow",
       [](double x) { return std::pow(x, 0.0); },
       [](double) { return 0.0; },
       -2.0,
       2.0,
       {{"exponent", 0.0}}},
      {"pow",
       [](double x) { return std::pow(x, 0.5); },
       [](double x) { return 0.5 * std::pow(x, -0.5); },
       0.1,
       3.0,
       {{"exponent", 0.5}}},
      {"sqrt", [](double x) { return std::sqrt(x); },
       [](double x) { return 0.5 / std::sqrt(x); }, 0.1, 3.0},
      {"tanh", [](double x) { return std::tanh(x); },
       [](double x) { return 1.0 - std::tanh(x) * std::tanh(x); }},
      {"sigmoid", Sigmoid,
       [](double x) { return Sigmoid(x) * (1.0 - Sigmoid(x)); }},
      {"relu", [](double x) { return x > 0 ? x : 0.0; },
       [](double x) { return x > 0 ? 1.0 : 0.0; }},
      {"gelu", GeluErf, GeluErfD},
      {"gelu",
       GeluTanh,
       GeluTanhD,
       -2.0,
       2.0,
       {{"approximate", std::string("tanh")}}},
  };
}

TEST(ElementwiseTest, UnaryOpsAndTheirGradients) {
  for (const UnaryCase& c : UnaryCases()) {
    for (DLDataType t : {kF64, kF32, kBF16, kF16}) {
      // 64 elements: 16-byte packs; 37: one element at a time.
      for (int64_t n : {64, 37}) {
        SCOPED_TRACE(c.op + " " + tensor::DTypeName(t) +
                     " n=" + std::to_string(n));
        const Tensor x = OnDevice({n}, Random(n, 5, c.lo, c.hi), t);
        const Tensor g0 = OnDevice({n}, Random(n, 6), t);
        const Vec xv = x.ToDoubles(), gv = g0.ToDoubles();
        const Ran r = RunOp(c.op + ".cuda", c.op, {x}, c.attrs, gv, {true});
        ASSERT_EQ(r.grads.size(), 1u);
        Vec want(xv.size()), dwant(xv.size());
        for (size_t i = 0; i < xv.size(); ++i) {
          want[i] = c.f(xv[i]);
          dwant[i] = gv[i] * c.d(xv[i]);
        }
        const double tol = Tolerance(t);
        ExpectNear(r.out[0], want, tol, "out");
        ExpectNear(r.grads[0], dwant, tol * 2, "grad");
      }
    }
  }
}

TEST(ElementwiseTest, UnaryEdgeValuesFollowTheReference) {
  const double inf = std::numeric_limits<double>::infinity();
  const Tensor x = OnDevice({6}, {kNan, inf, -inf, 0.0, -1.0, 1.0}, kF32);
  EXPECT_TRUE(std::isnan(RunOp("exp.cuda", "exp", {x}, {}, {}, {}).out[0][0]));
  const Vec relu = RunOp("relu.cuda", "relu", {x}, {}, {}, {}).out[0];
  EXPECT_EQ(relu[0], 0.0);  // NaN > 0 is false, as in the reference
  EXPECT_EQ(relu[1], inf);
  const Vec sig = RunOp("sigmoid.cuda", "sigmoid", {x}, {}, {}, {}).out[0];
  EXPECT_EQ(sig[1], 1.0);
  EXPECT_EQ(sig[2], 0.0);
  const Vec lg = RunOp("log.cuda", "log", {x}, {}, {}, {}).out[0];
  EXPECT_EQ(lg[3], -inf);
  EXPECT_TRUE(std::isnan(lg[4]));
  // relu's gradient at 0 is 0; an infinite incoming gradient times 0 is NaN,
  // as the reference's g * d.
  const Ran r =
      RunOp("relu.cuda", "relu", {x}, {}, {1, 1, 1, 1, inf, 1}, {true});
  EXPECT_EQ(r.grads[0][3], 0.0);
  EXPECT_TRUE(std::isnan(r.grads[0][4]));
  EXPECT_EQ(r.grads[0][5], 1.0);
}

TEST(ElementwiseTest, NoIncomingGradientGivesZeros) {
  const Tensor x = OnDevice({5}, Random(5, 1), kF32);
  EXPECT_EQ(RunOp("exp.cuda", "exp", {x}, {}, {}, {true}).grads[0],
            Vec(5, 0.0));
  EXPECT_EQ(RunOp("add.cuda", "add", {x, x}, {}, {}, {true, true}).grads[1],
            Vec(5, 0.0));
}

// ---- binary ops ----

// The reference: out[k] = F(a[ia[k]], b[ib[k]]); the gradient of each
// input sums g * d over the positions that read it.
struct BinaryWant {
  Vec out, ga, gb;
};
Vec Strides(const Shape& in, const Shape& out) {
  Vec s(out.size(), 0.0);
  const size_t lead = out.size() - in.size();
  int64_t compact = 1;
  for (size_t i = in.size(); i-- > 0;) {
    s[lead + i] = in[i] == 1 ? 0.0 : static_cast<double>(compact);
    compact *= in[i];
  }
  return s;
}
std::vector<int64_t> Index(const Shape& in, const Shape& out) {
  const Vec st = Strides(in, out);
  std::vector<int64_t> index(static_cast<size_t>(Numel(out)));
  Shape pos(out.size(), 0);
  for (size_t k = 0; k < index.size(); ++k) {
    double o = 0;
    for (size_t d = 0; d < out.size(); ++d) o += pos[d] * st[d];
    index[k] = static_cast<int64_t>(o);
    for (size_t d = out.size(); d-- > 0;) {
      if (++pos[d] < out[d]) break;
      pos[d] = 0;
    }
  }
  return index;
}

BinaryWant BinaryReference(const std::string& op, const Shape& as,
                           const Shape& bs, const Shape& os, const Vec& a,
                           const Vec& b, const Vec& g) {
  const std::vector<int64_t> ia = Index(as, os), ib = Index(bs, os);
  BinaryWant w;
  w.out.resize(ia.size());
  w.ga.assign(a.size(), 0.0);
  w.gb.assign(b.size(), 0.0);
  for (size_t k = 0; k < ia.size(); ++k) {
    const double x = a[ia[k]], y = b[ib[k]];
    double f = 0, da = 0, db = 0;
    if (op == "add") {
      f = x + y;
      da = 1;
      db = 1;
    } else if (op == "sub") {
      f = x - y;
      da = 1;
      db = -1;
    } else if (op == "mul") {
      f = x * y;
      da = y;
      db = x;
    } else {  // div
      f = x / y;
      da = 1 / y;
      db = -x / (y * y);
    }
    w.out[k] = f;
    w.ga[ia[k]] += g[k] * da;
    w.gb[ib[k]] += g[k] * db;
  }
  return w;
}

TEST(ElementwiseTest, BinaryOpsInEveryLayoutAndTheirGradients) {
  struct Shapes {
    Shape a, b, out;
  };
  const std::vector<Shapes> shapes = {
      {{4, 8}, {4, 8}, {4, 8}},           // same shape, packs
      {{3, 5}, {3, 5}, {3, 5}},           // same shape, odd
      {{6, 16}, {16}, {6, 16}},           // a bias row
      {{7}, {5, 7}, {5, 7}},              // the row first
      {{3, 4}, {}, {3, 4}},               // a scalar
      {{1}, {2, 3}, {2, 3}},              // the scalar first
      {{2, 3, 1}, {1, 3, 4}, {2, 3, 4}},  // general both ways
      {{5, 1}, {5, 6}, {5, 6}},           // a column
      {{40, 3}, {40, 1}, {40, 3}},        // a column of a thin matrix
      {{700, 24}, {24}, {700, 24}},       // a bias over many rows (split)
  };
  for (const std::string op : {"add", "sub", "mul", "div"}) {
    for (DLDataType t : {kF64, kF32, kBF16, kF16}) {
      for (const Shapes& s : shapes) {
        SCOPED_TRACE(op + " " + tensor::DTypeName(t) + " " +
                     ::testing::PrintToString(s.a) + " with " +
                     ::testing::PrintToString(s.b));
        const Tensor a = OnDevice(s.a, Random(Numel(s.a), 1), t);
        const Tensor b = OnDevice(s.b, Random(Numel(s.b), 2, 0.5, 2.0), t);
        const Vec gv = OnDevice(s.out, Random(Numel(s.out), 3), t).ToDoubles();
        const Ran r = RunOp(op + ".cuda", op, {a, b}, {}, gv, {true, true});
        ASSERT_EQ(r.grads.size(), 2u);
        const BinaryWant w = BinaryReference(op, s.a, s.b, s.out, a.ToDoubles(),
                                             b.ToDoubles(), gv);
        const double tol = Tolerance(t);
        ExpectNear(r.out[0], w.out, tol, "out");
        // Sums over broadcast dims round once per output in half dtypes.
        ExpectNear(r.grads[0], w.ga, tol * 4, "grad a");
        ExpectNear(r.grads[1], w.gb, tol * 4, "grad b");
      }
    }
  }
}

TEST(ElementwiseTest, OneGradientAskedForLeavesTheOtherAlone) {
  const Tensor a = OnDevice({2, 3}, Random(6, 1), kF32);
  const Tensor b = OnDevice({3}, Random(3, 2), kF32);
  const Vec g = Random(6, 3);
  const Ran r = RunOp("mul.cuda", "mul", {a, b}, {}, g, {false, true});
  ASSERT_EQ(r.grads.size(), 2u);
  EXPECT_TRUE(r.grads[0].empty());
  const BinaryWant w =
      BinaryReference("mul", {2, 3}, {3}, {2, 3}, a.ToDoubles(), b.ToDoubles(),
                      OnDevice({2, 3}, g, kF32).ToDoubles());
  ExpectNear(r.grads[1], w.gb, 1e-5, "grad b");
}

// ---- where and masked_fill ----

TEST(ElementwiseTest, WhereBroadcastsAndSendsGradientsToTheSideChosen) {
  const Shape cs = {4, 1}, as = {5}, bs = {4, 5}, os = {4, 5};
  const Vec cond = {1, 0, 0, 2};
  for (DLDataType mt : {kU8, kI32, kI64, kF32, kF64}) {
    for (DLDataType t : {kF64, kF32, kBF16}) {
      SCOPED_TRACE(tensor::DTypeName(t) + " cond " + std::to_string(mt.code) +
                   "/" + std::to_string(mt.bits));
      const Tensor c = OnDevice(cs, cond, mt);
      const Tensor a = OnDevice(as, Random(5, 1), t);
      Vec bv = Random(20, 2);
      bv[0] = kNan;  // b[0, 0]: not chosen (cond true), its gradient is 0
      const Tensor b = OnDevice(bs, bv, t);
      Vec gv = OnDevice(os, Random(20, 3), t).ToDoubles();
      gv[5] = kNan;  // row 1 takes b: the NaN goes to b only
      const Ran r =
          RunOp("where.cuda", "where", {c, a, b}, {}, gv, {false, true, true});
      ASSERT_EQ(r.grads.size(), 3u);
      const Vec av = a.ToDoubles(), bw = b.ToDoubles();
      Vec out(20), ga(5, 0.0), gb(20, 0.0);
      for (int64_t i = 0; i < 4; ++i)
        for (int64_t j = 0; j < 5; ++j) {
          const int64_t k = i * 5 + j;
          const bool take_a = cond[i] != 0;
          out[k] = take_a ? av[j] : bw[k];
          if (take_a)
            ga[j] += gv[k];
          else
            gb[k] += gv[k];
        }
      const double tol = Tolerance(t);
      ExpectNear(r.out[0], out, tol, "out");
      ExpectNear(r.grads[1], ga, tol * 4, "grad a");
      ExpectNear(r.grads[2], gb, tol, "grad b");
    }
  }
  // A float cond asked for a gradient gets zeros.
  const Tensor c = OnDevice({3}, {1, 0, 1}, kF32);
  const Tensor a = OnDevice({3}, {1, 2, 3}, kF32);
  const Ran r = RunOp("where.cuda", "where", {c, a, a}, {}, {1, 1, 1},
                      {true, true, true});
  EXPECT_EQ(r.grads[0], (Vec{0, 0, 0}));
  EXPECT_EQ(r.grads[1], (Vec{1, 0, 1}));
  EXPECT_EQ(r.grads[2], (Vec{0, 1, 0}));
}

TEST(ElementwiseTest, MaskedFillWithABroadcastMask) {
  // A causal-like (T, T) mask over (B, H, T, T).
  const Shape xs = {2, 3, 4, 4}, ms = {4, 4};
  Vec mask(16);
  for (int i = 0; i < 4; ++i)
    for (int j = 0; j < 4; ++j) mask[i * 4 + j] = j > i ? 1 : 0;
  for (DLDataType mt : {kU8, kI64, kF64})
    for (DLDataType t : {kF64, kF32, kF16}) {
      SCOPED_TRACE(tensor::DTypeName(t));
      const Tensor x = OnDevice(xs, Random(96, 1), t);
      const Tensor m = OnDevice(ms, mask, mt);
      const Vec gv = OnDevice(xs, Random(96, 2), t).ToDoubles();
      const double inf = std::numeric_limits<double>::infinity();
      const Ran r = RunOp("masked_fill.cuda", "masked_fill", {x, m},
                          {{"value", -inf}}, gv, {true, false});
      const Vec xv = x.ToDoubles();
      Vec out(96), gx(96);
      for (size_t k = 0; k < 96; ++k) {
        const bool on = mask[k % 16] != 0;
        out[k] = on ? -inf : xv[k];
        gx[k] = on ? 0.0 : gv[k];
      }
      ExpectNear(r.out[0], out, Tolerance(t), "out");
      ExpectNear(r.grads[0], gx, Tolerance(t), "grad");
    }
}

// ---- contiguous and concat ----

TEST(ElementwiseTest, ContiguousCopiesEveryDtype) {
  for (DLDataType t : {kU8, kI32, kI64, kF32, kF64, kBF16, kF16}) {
    Vec v(15);
    for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<double>(i);
    const Tensor x = OnDevice({3, 5}, v, t);
    EXPECT_EQ(RunOp("contiguous.cuda", "contiguous", {x}, {}, {}, {}).out[0],
              v);
  }
  const Tensor x = OnDevice({7}, Random(7, 1), kF32);
  const Vec g = OnDevice({7}, Random(7, 2), kF32).ToDoubles();
  EXPECT_EQ(RunOp("contiguous.cuda", "contiguous", {x}, {}, g, {true}).grads[0],
            g);
}

TEST(ElementwiseTest, ConcatJoinsAlongAnyDimAndSplitsTheGradient) {
  for (DLDataType t : {kF32, kBF16, kI64}) {
    for (int64_t dim : {0, 1, 2}) {
      SCOPED_TRACE("dim " + std::to_string(dim));
      Shape s0 = {2, 3, 4}, s1 = {2, 3, 4}, s2 = {2, 3, 4};
      s1[dim] = 1;
      s2[dim] = 0;
      const Vec v0 = OnDevice(s0, Random(Numel(s0), 1), t).ToDoubles();
      const Vec v1 = OnDevice(s1, Random(Numel(s1), 2), t).ToDoubles();
      const Tensor x0 = OnDevice(s0, v0, t), x1 = OnDevice(s1, v1, t),
                   x2 = OnDevice(s2, {}, t);
      Shape os = s0;
      os[dim] += s1[dim];
      const bool is_float = t.code != kDLInt;
      const Vec g = OnDevice(os, Random(Numel(os), 3), t).ToDoubles();
      const Ran r = RunOp(
          "concat.cuda", "concat", {x0, x1, x2}, {{"dim", dim}},
          is_float ? g : Vec{},
          is_float ? std::vector<bool>{true, true, true} : std::vector<bool>{});
      // outer x (n_i x inner) blocks side by side.
      int64_t outer = 1, inner = 1;
      for (int64_t d = 0; d < dim; ++d) outer *= os[d];
      for (int64_t d = dim + 1; d < 3; ++d) inner *= os[d];
      Vec want;
      for (int64_t o = 0; o < outer; ++o) {
        for (int64_t i = 0; i < s0[dim] * inner; ++i)
          want.push_back(v0[o * s0[dim] * inner + i]);
        for (int64_t i = 0; i < s1[dim] * inner; ++i)
          want.push_back(v1[o * s1[dim] * inner + i]);
      }
      EXPECT_EQ(r.out[0], want);
      if (!is_float) continue;
      ASSERT_EQ(r.grads.size(), 3u);
      Vec g0, g1;
      for (int64_t o = 0; o < outer; ++o) {
        const int64_t row = os[dim] * inner;
        for (int64_t i = 0; i < s0[dim] * inner; ++i)
          g0.push_back(g[o * row + i]);
        for (int64_t i = 0; i < s1[dim] * inner; ++i)
          g1.push_back(g[o * row + s0[dim] * inner + i]);
      }
      EXPECT_EQ(r.grads[0], g0);
      EXPECT_EQ(r.grads[1], g1);
      EXPECT_TRUE(r.grads[2].empty() || r.grads[2] == Vec{});
    }
  }
}

}  // namespace
}  // namespace llmsys::cuda_test
