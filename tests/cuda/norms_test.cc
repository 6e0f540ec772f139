// layer_norm.cuda and rms_norm.cuda on the emulated device (tests/cuda/emu:
// cuda/norms.cu compiled for the CPU, called through the plugin's host
// code): the row plans (rowops::PlanRows, shared with softmax.cu), the
// backward's parts and workspace, the argument checks, and values and
// gradients against the reference's formulas written out below in double,
// for all four float dtypes and every kernel path (a warp per row, a
// block per row with the row in registers, the uncached long rows; vector
// and single-element loads), plus determinism of the parameter gradients.
#include "cuda/norms.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "cuda/rows.h"
#include "framework/tensor/tensor.h"
#include "tests/cuda/cuda_test_util.h"

namespace llmsys::cuda_test {
namespace {

using cuda::DType;
using cuda::rowops::PlanRows;
using cuda::rowops::RowCacheElems;
using cuda::rowops::RowPlan;
using tensor::kBF16;
using tensor::kF16;
using tensor::kF32;
using tensor::kF64;
using tensor::kI32;
using tensor::Tensor;
using Shape = std::vector<int64_t>;
using Vec = std::vector<double>;

// ---- plans ----

// Every cached plan covers its rows: a warp (or the block) times the
// elements a thread holds reaches the row's length.
TEST(CudaRowPlanTest, CachedPlansCoverTheRow) {
  for (int bytes : {2, 4, 8})
    for (int arrays : {1, 2, 4})
      for (bool aligned : {false, true})
        for (int64_t cols :
             {int64_t{0}, int64_t{1}, int64_t{7}, int64_t{32}, int64_t{255},
              int64_t{256}, int64_t{257}, int64_t{512}, int64_t{513},
              int64_t{768}, int64_t{1000}, int64_t{4096}, int64_t{5000},
              int64_t{8192}, int64_t{16384}, int64_t{16385}, int64_t{50257}}) {
          const RowPlan p = PlanRows(10, cols, bytes, aligned, arrays);
          const int elems = RowCacheElems(bytes, arrays, aligned);
          const std::string what = "bytes " + std::to_string(bytes) +
                                   " arrays " + std::to_string(arrays) +
                                   " cols " + std::to_string(cols);
          EXPECT_EQ(p.vec, aligned ? 16 / bytes : 1) << what;
          EXPECT_EQ(elems % p.vec, 0) << what;
          EXPECT_EQ(p.threads % 32, 0) << what;
          EXPECT_GE(p.threads, 32) << what;
          EXPECT_LE(p.threads, 1024) << what;
          if (p.warp_rows) {
            EXPECT_TRUE(p.cached) << what;
            EXPECT_EQ(p.threads, 32 * cuda::rowops::kRowWarpsPerBlock);
            EXPECT_LE(cols, int64_t{32} * elems) << what;
            EXPECT_EQ(p.blocks, 3) << what;  // 10 rows, 4 per block
          } else if (p.cached) {
            EXPECT_GE(int64_t{p.threads} * elems, cols) << what;
            EXPECT_LT(int64_t{p.threads - 32} * elems, cols) << what;
            EXPECT_EQ(p.blocks, 10) << what;
          } else {
            EXPECT_GT(cols, cuda::rowops::RowCacheLimit(bytes, arrays, aligned))
                << what;
            EXPECT_EQ(p.threads, 1024) << what;
            EXPECT_EQ(p.blocks, 10) << what;
          }
        }
}

TEST(CudaRowPlanTest, ShortAndLongRowsAndHugeGrids) {
  // float32 forward, vector loads: a warp holds 32 * 16 = 512 elements.
  EXPECT_TRUE(PlanRows(8, 512, 4, true, 1).warp_rows);
  RowPlan p = PlanRows(8, 513, 4, true, 1);
  EXPECT_FALSE(p.warp_rows);
  EXPECT_TRUE(p.cached);
  EXPECT_EQ(p.threads, 64);
  p = PlanRows(8, 4096, 4, true, 1);  // 256 threads of 4 float4 each
  EXPECT_EQ(p.threads, 256);
  EXPECT_EQ(p.vec, 4);
  p = PlanRows(8, 16384, 4, true, 1);
  EXPECT_TRUE(p.cached);
  EXPECT_EQ(p.threads, 1024);
  EXPECT_FALSE(PlanRows(8, 16385, 4, true, 1).cached);
  // No rows: still a valid launch shape (launchers return before it).
  EXPECT_EQ(PlanRows(0, 100, 4, true, 1).blocks, 1);
  // A huge number of rows: the grid is capped, the kernels loop.
  EXPECT_EQ(PlanRows(int64_t{1} << 40, 2048, 2, true, 1).blocks,
            cuda::rowops::kRowMaxBlocks);
  EXPECT_EQ(PlanRows(int64_t{1} << 40, 64, 2, true, 1).blocks,
            cuda::rowops::kRowMaxBlocks);
}

TEST(CudaNormsPlanTest, PartsAndWorkspace) {
  EXPECT_EQ(cuda::NormGradParts(0, 768, DType::kF32), 0);
  EXPECT_EQ(cuda::NormGradParts(10, 0, DType::kF32), 0);
  EXPECT_EQ(cuda::NormGradParts(1, 768, DType::kF32), 1);
  EXPECT_EQ(cuda::NormGradParts(8, 768, DType::kF32), 1);
  EXPECT_EQ(cuda::NormGradParts(9, 768, DType::kF32), 2);
  EXPECT_EQ(cuda::NormGradParts(8192, 768, DType::kBF16), 1024);
  EXPECT_EQ(cuda::NormGradParts(int64_t{1} << 30, 768, DType::kF32), 2048);
  // The partial sums of one parameter stay within 16 MiB.
  EXPECT_EQ(cuda::NormGradParts(int64_t{1} << 30, 16384, DType::kF32), 256);
  EXPECT_EQ(cuda::NormGradParts(int64_t{1} << 30, 16384, DType::kF64), 128);
  EXPECT_EQ(cuda::NormGradParts(1000, int64_t{1} << 30, DType::kF32), 1);
  EXPECT_EQ(cuda::LayerNormWorkspaceBytes(32, 100, DType::kF32, true, true),
            size_t{2 * 4 * 100 * 4});
  EXPECT_EQ(cuda::LayerNormWorkspaceBytes(32, 100, DType::kF64, false, true),
            size_t{4 * 100 * 8});
  EXPECT_EQ(cuda::LayerNormWorkspaceBytes(32, 100, DType::kF16, false, false),
            size_t{0});
  EXPECT_EQ(cuda::RmsNormWorkspaceBytes(0, 100, DType::kF32, true), size_t{0});
  EXPECT_EQ(cuda::RmsNormWorkspaceBytes(48, 10, DType::kBF16, true),
            size_t{6 * 10 * 4});
  const cuda::NormBackwardPlan b =
      cuda::PlanNormBackward(8192, 4096, DType::kF32, true);
  EXPECT_EQ(b.parts, 1024);  // the 16 MiB cap: 1024 rows of 4096 floats
  EXPECT_EQ(b.row.blocks, 1024);
  EXPECT_TRUE(b.row.cached);
  EXPECT_EQ(b.row.threads, 1024);  // 4 floats per thread in backward
  EXPECT_EQ(cuda::NormParamGradPlan(0).blocks, 1);
  EXPECT_EQ(cuda::NormParamGradPlan(8).blocks, 1);
  EXPECT_EQ(cuda::NormParamGradPlan(9).blocks, 2);
  EXPECT_EQ(cuda::NormParamGradPlan(int64_t{1} << 30).blocks, 65535);
  EXPECT_EQ(cuda::NormParamGradPlan(9).threads, 32 * cuda::kNormGradCols);
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

TEST(CudaNormsInferTest, OutputsAndStatistics) {
  for (DLDataType t : {kF32, kF64, kBF16, kF16}) {
    absl::StatusOr<Specs> s = Infer(
        "layer_norm.cuda",
        {FakeTensor{{2, 3, 8}, t}, FakeTensor{{8}, t}, FakeTensor{{8}, t}});
    ASSERT_TRUE(s.ok()) << s.status();
    ASSERT_EQ(s->size(), 3u);
    EXPECT_EQ((*s)[0].first, (Shape{2, 3, 8}));
    EXPECT_EQ((*s)[1].first, (Shape{2, 3}));
    EXPECT_EQ((*s)[2].first, (Shape{2, 3}));
    for (const auto& spec : *s) EXPECT_TRUE(llmsys_dtype_equal(spec.second, t));
    s = Infer("layer_norm.cuda",
              {FakeTensor{{5}, t}, std::nullopt, std::nullopt});
    ASSERT_TRUE(s.ok()) << s.status();
    EXPECT_EQ((*s)[1].first, (Shape{}));
    s = Infer("rms_norm.cuda", {FakeTensor{{4, 6}, t}, FakeTensor{{6}, t}});
    ASSERT_TRUE(s.ok()) << s.status();
    ASSERT_EQ(s->size(), 2u);
    EXPECT_EQ((*s)[0].first, (Shape{4, 6}));
    EXPECT_EQ((*s)[1].first, (Shape{4}));
  }
}

TEST(CudaNormsInferTest, BadInputsNameTheProblem) {
  ExpectInvalid({
      {"layer_norm.cuda",
       {FakeTensor{{}, kF32}, std::nullopt, std::nullopt},
       {},
       "at least one dim"},
      {"layer_norm.cuda",
       {FakeTensor{{2, 8}, kF32}, FakeTensor{{7}, kF32}, std::nullopt},
       {},
       "weight must have shape (C) = (8)"},
      {"layer_norm.cuda",
       {FakeTensor{{2, 8}, kF32}, std::nullopt, FakeTensor{{8}, kF64}},
       {},
       "same dtype"},
      {"layer_norm.cuda",
       {FakeTensor{{2, 8}, kI32}, std::nullopt, std::nullopt},
       {},
       "must be float32"},
      {"layer_norm.cuda",
       {FakeTensor{{2, 8}, kF32}, std::nullopt, std::nullopt},
       {{"eps", -1.0}},
       "eps must be >= 0"},
      {"rms_norm.cuda",
       {FakeTensor{{2, 8}, kBF16}, FakeTensor{{8}, kF16}},
       {},
       "same dtype"},
      {"rms_norm.cuda",
       {FakeTensor{{2, 8}, kF32}, FakeTensor{{2, 8}, kF32}},
       {},
       "weight must have shape (C) = (8)"},
      {"rms_norm.cuda", {FakeTensor{{}, kF64}, std::nullopt}, {}, "one dim"},
  });
}

TEST(CudaNormsInferTest, WorkspaceOnlyForParameters) {
  struct Case {
    std::string id, op;
    bool weight, bias;
    size_t bytes;
  };
  // x (40, 10) float32: 5 parts of 10 floats per parameter.
  for (const Case& c : std::vector<Case>{
           {"layer_norm.cuda", "layer_norm", true, true, 2 * 5 * 10 * 4},
           {"layer_norm.cuda", "layer_norm", false, true, 5 * 10 * 4},
           {"layer_norm.cuda", "layer_norm", false, false, 0},
           {"rms_norm.cuda", "rms_norm", true, false, 5 * 10 * 4},
           {"rms_norm.cuda", "rms_norm", false, false, 0},
       }) {
    std::unique_ptr<runtime::OperatorImpl> impl = EmulatedOp(c.id, c.op);
    ASSERT_NE(impl, nullptr);
    std::vector<Tensor> in = {*Tensor::Empty({40, 10}, kF32, kCuda0)};
    in.push_back(c.weight ? *Tensor::Empty({10}, kF32, kCuda0) : Tensor());
    if (c.op == "layer_norm")
      in.push_back(c.bias ? *Tensor::Empty({10}, kF32, kCuda0) : Tensor());
    absl::StatusOr<runtime::OperatorImpl::InferResult> r =
        impl->Infer(in, *impl->Attrs({}));
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->workspace_bytes, c.bytes) << c.id;
  }
}

// ---- values ----

Vec Random(int64_t n, uint32_t seed, double lo = -2.0, double hi = 2.0) {
  return RandomUniform(n, seed, lo, hi);
}

double Tolerance(DLDataType t) {
  if (llmsys_dtype_equal(t, kF64)) return 1e-10;
  if (llmsys_dtype_equal(t, kF32)) return 1e-4;
  return 3e-2;
}

// One forward and one backward call of a norm, as the host makes them.
struct Ran {
  std::vector<Vec> out;    // out, then the statistics
  std::vector<Vec> grads;  // per input; empty where not asked
};

Ran RunNorm(const std::string& op, const std::vector<Tensor>& inputs,
            double eps, const Vec& g, const std::vector<bool>& needs_grad) {
  Ran ran;
  std::unique_ptr<runtime::OperatorImpl> impl = EmulatedOp(op + ".cuda", op);
  if (impl == nullptr) return ran;
  const runtime::ParamPack pack = *impl->Attrs({{"eps", eps}});
  runtime::CallOptions options;
  options.poison = true;  // every output element must be written
  absl::StatusOr<std::vector<Tensor>> out =
      impl->Forward(inputs, pack, options);
  EXPECT_TRUE(out.ok()) << out.status();
  if (!out.ok()) return ran;
  for (const Tensor& t : *out) ran.out.push_back(t.ToDoubles());
  std::vector<runtime::TensorMeta> meta;
  for (const Tensor& t : inputs)
    meta.push_back(t.defined() ? runtime::TensorMeta{true, t.shape(), t.dtype()}
                               : runtime::TensorMeta{});
  std::vector<Tensor> gout(out->size());
  if (!g.empty()) gout[0] = OnDevice((*out)[0].shape(), g, (*out)[0].dtype());
  absl::StatusOr<std::vector<Tensor>> grads =
      impl->Backward(inputs, meta, pack, options, *out, gout, needs_grad);
  EXPECT_TRUE(grads.ok()) << grads.status();
  if (!grads.ok()) return ran;
  for (size_t i = 0; i < grads->size(); ++i)
    ran.grads.push_back(needs_grad[i] ? (*grads)[i].ToDoubles() : Vec{});
  return ran;
}

// The reference's formulas in double. x (R, C), w and b (C) or empty, g
// (R, C) or empty (zero). mean/rstd: the saved statistics the backward
// reads (the op's own outputs, rounded to its dtype).
struct NormRef {
  Vec out, mean, rstd, dx, dw, db;
};

NormRef Reference(bool rms, const Vec& x, const Vec& w, const Vec& b,
                  const Vec& g, int64_t rows, int64_t c, double eps,
                  const Vec& saved_mean, const Vec& saved_rstd) {
  NormRef r;
  r.out.resize(x.size());
  r.dx.resize(x.size());
  r.dw.assign(static_cast<size_t>(c), 0.0);
  r.db.assign(static_cast<size_t>(c), 0.0);
  for (int64_t i = 0; i < rows; ++i) {
    const double* xr = x.data() + i * c;
    double mu = 0, var = 0;
    if (!rms) {
      for (int64_t j = 0; j < c; ++j) mu += xr[j];
      mu /= static_cast<double>(c);
    }
    for (int64_t j = 0; j < c; ++j) var += (xr[j] - mu) * (xr[j] - mu);
    var /= static_cast<double>(c);
    const double rs = 1.0 / std::sqrt(var + eps);
    for (int64_t j = 0; j < c; ++j) {
      double y = (xr[j] - mu) * rs;
      if (!w.empty()) y *= w[j];
      if (!b.empty()) y += b[j];
      r.out[i * c + j] = y;
    }
    r.mean.push_back(mu);
    r.rstd.push_back(rs);
    // Backward from the saved statistics.
    const double smu = rms ? 0.0 : saved_mean[i], srs = saved_rstd[i];
    double m1 = 0, m2 = 0;
    for (int64_t j = 0; j < c; ++j) {
      const double gj = g.empty() ? 0.0 : g[i * c + j];
      const double xh = (xr[j] - smu) * srs;
      const double gy = w.empty() ? gj : gj * w[j];
      m1 += gy;
      m2 += gy * (rms ? xr[j] : xh);
      r.dw[j] += gj * xh;
      r.db[j] += gj;
    }
    m1 /= static_cast<double>(c);
    m2 /= static_cast<double>(c);
    for (int64_t j = 0; j < c; ++j) {
      const double gj = g.empty() ? 0.0 : g[i * c + j];
      const double gy = w.empty() ? gj : gj * w[j];
      const double xh = (xr[j] - smu) * srs;
      r.dx[i * c + j] =
          rms ? srs * (gy - xr[j] * srs * srs * m2) : srs * (gy - m1 - xh * m2);
    }
  }
  return r;
}

struct NormCase {
  Shape shape;
  bool weight, bias;
  bool offset = false;  // x unaligned (single-element loads)
};

void CheckNorm(bool rms, DLDataType t, const NormCase& nc, uint32_t seed) {
  const std::string op = rms ? "rms_norm" : "layer_norm";
  const int64_t c = nc.shape.back();
  const int64_t rows = Numel(nc.shape) / c;
  const std::string what = op + " " + tensor::DTypeName(t) + " (" +
                           std::to_string(rows) + ", " + std::to_string(c) +
                           ")" + (nc.weight ? " w" : "") +
                           (nc.bias ? " b" : "") + (nc.offset ? " off" : "");
  const Tensor x =
      OnDevice(nc.shape, Random(Numel(nc.shape), seed, -3, 5), t, nc.offset);
  const Tensor w = nc.weight ? OnDevice({c}, Random(c, seed + 1), t) : Tensor();
  const Tensor b =
      !rms && nc.bias ? OnDevice({c}, Random(c, seed + 2), t) : Tensor();
  const Tensor g = OnDevice(nc.shape, Random(Numel(nc.shape), seed + 3), t);
  std::vector<Tensor> inputs = {x, w};
  if (!rms) inputs.push_back(b);
  std::vector<bool> needs = {true, nc.weight};
  if (!rms) needs.push_back(nc.bias);
  const double eps = 1e-5;
  const Ran ran = RunNorm(op, inputs, eps, g.ToDoubles(), needs);
  ASSERT_EQ(ran.out.size(), rms ? 2u : 3u) << what;
  const Vec& saved_rstd = ran.out.back();
  const Vec saved_mean = rms ? Vec{} : ran.out[1];
  const NormRef ref =
      Reference(rms, x.ToDoubles(), nc.weight ? w.ToDoubles() : Vec{},
                !rms && nc.bias ? b.ToDoubles() : Vec{}, g.ToDoubles(), rows, c,
                eps, saved_mean, saved_rstd);
  const double tol = Tolerance(t);
  ExpectNear(ran.out[0], ref.out, tol, what + " out");
  if (!rms) ExpectNear(ran.out[1], ref.mean, tol, what + " mean");
  ExpectNear(saved_rstd, ref.rstd, tol, what + " rstd");
  ASSERT_EQ(ran.grads.size(), needs.size()) << what;
  ExpectNear(ran.grads[0], ref.dx, tol, what + " dx");
  // The parameter gradients sum over rows: the tolerance grows with them.
  const double sum_tol = tol * std::sqrt(static_cast<double>(rows));
  if (nc.weight) ExpectNear(ran.grads[1], ref.dw, sum_tol, what + " dweight");
  if (!rms && nc.bias)
    ExpectNear(ran.grads[2], ref.db, sum_tol, what + " dbias");
}

TEST(CudaNormsTest, ValuesAndGradientsOnEveryPath) {
  const std::vector<NormCase> cases = {
      {{3, 8}, true, true},            // a warp per row, vectors
      {{5, 37}, true, false},          // a warp per row, single loads
      {{2, 3, 64}, false, true},       // leading dims flatten
      {{70, 24}, true, true},          // 9 parts, 4 warps combined
      {{6, 1000}, true, true},         // a block per row, registers
      {{3, 600}, false, false, true},  // unaligned x: single loads
      {{1, 1}, true, true},            // one element
  };
  uint32_t seed = 1;
  for (DLDataType t : {kF32, kF64, kBF16, kF16})
    for (const NormCase& nc : cases) {
      CheckNorm(false, t, nc, seed);
      CheckNorm(true, t, nc, seed);
      seed += 10;
    }
}

TEST(CudaNormsTest, LongRowsTakeTheUncachedPath) {
  // Beyond RowCacheLimit: float32 forward 16384, backward 4096.
  CheckNorm(false, kF32, {{2, 17000}, true, true}, 7);
  CheckNorm(true, kF32, {{3, 5000}, true, false}, 8);
  CheckNorm(false, kF64, {{20, 3000}, true, true}, 9);  // 3 parts uncached
  CheckNorm(false, kBF16, {{2, 9000}, true, true, true}, 10);
}

TEST(CudaNormsTest, ParameterGradientsAreDeterministic) {
  const Shape shape = {300, 96};
  const Tensor x = OnDevice(shape, Random(300 * 96, 3), kF32);
  const Tensor w = OnDevice({96}, Random(96, 4), kF32);
  const Tensor b = OnDevice({96}, Random(96, 5), kF32);
  const Vec g = Random(300 * 96, 6);
  const Ran a = RunNorm("layer_norm", {x, w, b}, 1e-5, g, {true, true, true});
  const Ran c = RunNorm("layer_norm", {x, w, b}, 1e-5, g, {true, true, true});
  ASSERT_EQ(a.grads.size(), 3u);
  ASSERT_EQ(c.grads.size(), 3u);
  for (size_t i = 0; i < 3; ++i)
    EXPECT_EQ(std::memcmp(a.grads[i].data(), c.grads[i].data(),
                          a.grads[i].size() * sizeof(double)),
              0)
        << "gradient " << i;
}

TEST(CudaNormsTest, OnlyTheGradientsAskedForAndZeroIncomingGradient) {
  const Tensor x = OnDevice({4, 16}, Random(64, 11), kF32);
  const Tensor w = OnDevice({16}, Random(16, 12), kF32);
  const Tensor b = OnDevice({16}, Random(16, 13), kF32);
  // dweight only.
  Ran r = RunNorm("layer_norm", {x, w, b}, 1e-5, Random(64, 14),
                  {false, true, false});
  ASSERT_EQ(r.grads.size(), 3u);
  EXPECT_TRUE(r.grads[0].empty());
  EXPECT_EQ(r.grads[1].size(), 16u);
  // No incoming gradient: every gradient asked for is zero.
  r = RunNorm("layer_norm", {x, w, b}, 1e-5, {}, {true, true, true});
  ASSERT_EQ(r.grads.size(), 3u);
  for (const Vec& v : r.grads)
    for (double d : v) EXPECT_EQ(d, 0.0);
  r = RunNorm("rms_norm", {x, w}, 1e-6, {}, {true, true});
  ASSERT_EQ(r.grads.size(), 2u);
  for (const Vec& v : r.grads)
    for (double d : v) EXPECT_EQ(d, 0.0);
}

TEST(CudaNormsTest, EmptyShapes) {
  // No rows: outputs empty, parameter gradients zero.
  Ran r =
      RunNorm("layer_norm",
              {OnDevice({0, 5}, {}, kF32), OnDevice({5}, Random(5, 1), kF32),
               OnDevice({5}, Random(5, 2), kF32)},
              1e-5, {}, {true, true, true});
  ASSERT_EQ(r.grads.size(), 3u);
  EXPECT_EQ(r.grads[1], Vec(5, 0.0));
  EXPECT_EQ(r.grads[2], Vec(5, 0.0));
  // An empty normalized dim: mean and rstd are NaN (0 / 0), as the
  // reference's.
  r = RunNorm("layer_norm", {OnDevice({3, 0}, {}, kF32), Tensor(), Tensor()},
              1e-5, {}, {true, false, false});
  ASSERT_EQ(r.out.size(), 3u);
  ASSERT_EQ(r.out[1].size(), 3u);
  for (double m : r.out[1]) EXPECT_TRUE(std::isnan(m));
  for (double s : r.out[2]) EXPECT_TRUE(std::isnan(s));
}

TEST(CudaNormsTest, NanRowsStayNan) {
  Vec xv = Random(3 * 40, 21);
  xv[45] = std::numeric_limits<double>::quiet_NaN();  // row 1
  const Ran r =
      RunNorm("layer_norm", {OnDevice({3, 40}, xv, kF32), Tensor(), Tensor()},
              1e-5, Random(120, 22), {true, false, false});
  ASSERT_EQ(r.out.size(), 3u);
  for (int64_t j = 0; j < 40; ++j) {
    EXPECT_FALSE(std::isnan(r.out[0][j]));
    EXPECT_TRUE(std::isnan(r.out[0][40 + j]));
    EXPECT_FALSE(std::isnan(r.out[0][80 + j]));
  }
  EXPECT_TRUE(std::isnan(r.out[1][1]));
}

}  // namespace
}  // namespace llmsys::cuda_test
