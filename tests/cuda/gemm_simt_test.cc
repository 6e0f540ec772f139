// matmul.cuda and linear.cuda on the emulated device (tests/cuda/emu:
// cuda/gemm_simt.cu compiled for the CPU, called through the plugin's host
// code): the launch plans, the argument checks and workspace, and values
// and gradients against the reference plugin (matmul.reference and
// linear.reference, run on the CPU in float64 from the same rounded
// inputs) for 2-D, batched, broadcast and transposed products, a weight
// shared by the batch, linear with and without bias, ragged sizes on both
// tile sizes, empty dims, and float32, float64, bfloat16 and float16.
// Outputs and gradients start poisoned (NaN), so an element left unwritten
// fails.
#include "cuda/gemm_simt.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "framework/runtime/operator_call.h"
#include "framework/runtime/registry.h"
#include "framework/tensor/tensor.h"
#include "tests/cuda/cuda_test_util.h"

namespace llmsys::cuda_test {
namespace {

using cuda::BroadcastReduce;
using cuda::SimtGemmPlan;
using cuda::SimtGemmPlanOf;
using tensor::kBF16;
using tensor::kF16;
using tensor::kF32;
using tensor::kF64;
using tensor::kI32;
using tensor::Tensor;
using Shape = std::vector<int64_t>;
using Vec = std::vector<double>;

// ---- plans ----

TEST(SimtGemmPlanTest, TilesCoverRaggedMatricesAndTheBatch) {
  SimtGemmPlan p = SimtGemmPlanOf(17, 33, 1);  // both sides > 16: 32 tiles
  EXPECT_EQ(p.tile, 32);
  EXPECT_EQ(p.tiles_rows, 1);
  EXPECT_EQ(p.tiles_cols, 2);
  EXPECT_EQ(p.work, 2);
  EXPECT_EQ(p.blocks, 2);
  EXPECT_EQ(p.threads, 256);
  p = SimtGemmPlanOf(17, 9, 1);  // a side of at most 16: 16 tiles
  EXPECT_EQ(p.tile, 16);
  EXPECT_EQ(p.tiles_rows, 2);
  EXPECT_EQ(p.tiles_cols, 1);
  p = SimtGemmPlanOf(16, 1000, 3);
  EXPECT_EQ(p.tile, 16);
  EXPECT_EQ(p.tiles_rows, 1);
  EXPECT_EQ(p.tiles_cols, 63);
  EXPECT_EQ(p.work, 3 * 63);
  p = SimtGemmPlanOf(64, 64, 10);
  EXPECT_EQ(p.tile, 32);
  EXPECT_EQ(p.work, 40);
  EXPECT_EQ(p.blocks, 40);
  for (int64_t rows : {1, 15, 16, 17, 31, 32, 33, 100, 1000})
    for (int64_t cols : {1, 16, 17, 64, 65, 50257}) {
      p = SimtGemmPlanOf(rows, cols, 2);
      EXPECT_GE(p.tiles_rows * p.tile, rows);
      EXPECT_LT((p.tiles_rows - 1) * p.tile, rows);
      EXPECT_GE(p.tiles_cols * p.tile, cols);
      EXPECT_LT((p.tiles_cols - 1) * p.tile, cols);
      EXPECT_EQ(p.work, 2 * p.tiles_rows * p.tiles_cols);
    }
}

TEST(SimtGemmPlanTest, EmptyAndHugeProblems) {
  // Empty: no work, still a valid launch shape (the launcher returns first).
  for (const Shape& s : {Shape{0, 5, 1}, Shape{5, 0, 1}, Shape{5, 5, 0}}) {
    const SimtGemmPlan p = SimtGemmPlanOf(s[0], s[1], s[2]);
    EXPECT_EQ(p.work, 0);
    EXPECT_EQ(p.blocks, 1);
  }
  // More tiles than the grid takes: blocks loop.
  SimtGemmPlan p = SimtGemmPlanOf(int64_t{1} << 20, int64_t{1} << 20, 1);
  EXPECT_EQ(p.work, int64_t{1} << 30);
  EXPECT_EQ(p.blocks, cuda::kSimtMaxBlocks);
  p = SimtGemmPlanOf(8, 8, int64_t{1} << 40);  // a huge batch
  EXPECT_EQ(p.blocks, cuda::kSimtMaxBlocks);
  EXPECT_LE(cuda::kSimtMaxBlocks, int64_t{2147483647});
}

TEST(SimtGemmPlanTest, ReductionBlocks) {
  BroadcastReduce r;
  r.outer = 0;
  r.mat = 10;
  EXPECT_EQ(cuda::SimtReducePlan(r).blocks, 1);
  r.outer = 1;
  r.mat = 32;
  EXPECT_EQ(cuda::SimtReducePlan(r).blocks, 1);
  r.mat = 33;
  EXPECT_EQ(cuda::SimtReducePlan(r).blocks, 2);
  EXPECT_EQ(cuda::SimtReducePlan(r).threads, 256);
  r.outer = int64_t{1} << 20;
  r.mat = int64_t{1} << 20;
  EXPECT_EQ(cuda::SimtReducePlan(r).blocks, cuda::kSimtMaxBlocks);
}

// ---- argument checks ----

TEST(SimtMatmulInferTest, ShapesWorkspaceAndPriority) {
  absl::StatusOr<Specs> s =
      Infer("matmul.cuda",
            {FakeTensor{{2, 1, 3, 4}, kF32}, FakeTensor{{5, 4, 6}, kF32}});
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ((*s)[0].first, (Shape{2, 5, 3, 6}));
  s = Infer("matmul.cuda",
            {FakeTensor{{3, 5, 4}, kBF16}, FakeTensor{{3, 6, 5}, kBF16}},
            {{"transpose_a", true}, {"transpose_b", true}});
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ((*s)[0].first, (Shape{3, 4, 6}));
  EXPECT_TRUE(llmsys_dtype_equal((*s)[0].second, kBF16));
  s = Infer("linear.cuda", {FakeTensor{{2, 3, 4}, kF16},
                            FakeTensor{{5, 4}, kF16}, FakeTensor{{5}, kF16}});
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ((*s)[0].first, (Shape{2, 3, 5}));
  s = Infer("linear.cuda",
            {FakeTensor{{7, 4}, kF64}, FakeTensor{{5, 4}, kF64}, std::nullopt});
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ((*s)[0].first, (Shape{7, 5}));

  // The workspace: the per-batch products of a broadcast operand's
  // gradient; none when the batch folds or every batch is full.
  struct Case {
    std::string id, op;
    Shape a, b;
    DLDataType t;
    size_t bytes;
  };
  for (const Case& c : std::vector<Case>{
           // a (2, 1) and b (5) broadcast to (2, 5): grad a needs 10
           // (3, 4) products, grad b 10 (4, 6); they share the larger.
           {"matmul.cuda",
            "matmul",
            {2, 1, 3, 4},
            {5, 4, 6},
            kF32,
            10 * 4 * 6 * 4},
           {"matmul.cuda",
            "matmul",
            {2, 1, 3, 4},
            {5, 4, 6},
            kF64,
            10 * 4 * 6 * 8},
           // Here grad a's 6 (5, 4) products are the larger.
           {"matmul.cuda",
            "matmul",
            {2, 1, 5, 4},
            {3, 4, 2},
            kBF16,
            6 * 5 * 4 * 2},
           {"matmul.cuda", "matmul", {2, 3, 4, 5}, {5, 6}, kF32, 0},
           {"matmul.cuda", "matmul", {3, 4, 5}, {3, 5, 6}, kBF16, 0},
           {"linear.cuda", "linear", {2, 3, 4}, {5, 4}, kF32, 0},
       }) {
    std::unique_ptr<runtime::OperatorImpl> impl = EmulatedOp(c.id, c.op);
    ASSERT_NE(impl, nullptr);
    EXPECT_EQ(impl->op().priority, 50) << c.id;
    std::vector<Tensor> in = {*Tensor::Empty(c.a, c.t, kCuda0),
                              *Tensor::Empty(c.b, c.t, kCuda0)};
    if (c.op == "linear") in.emplace_back();
    absl::StatusOr<runtime::OperatorImpl::InferResult> r =
        impl->Infer(in, *impl->Attrs({}));
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->workspace_bytes, c.bytes) << c.id;
  }
}

TEST(SimtMatmulInferTest, BadInputsNameTheProblem) {
  struct Bad {
    std::string id;
    std::vector<std::optional<FakeTensor>> in;
    std::string says;
  };
  for (const Bad& b : std::vector<Bad>{
           {"matmul.cuda",
            {FakeTensor{{2, 4, 5}, kF32}, FakeTensor{{4, 6}, kF32}},
            "inner dims differ"},
           {"matmul.cuda",
            {FakeTensor{{5}, kF32}, FakeTensor{{5, 6}, kF32}},
            "at least 2 dims"},
           {"matmul.cuda",
            {FakeTensor{{2, 4, 5}, kF32}, FakeTensor{{3, 5, 6}, kF32}},
            "batch dims do not broadcast"},
           {"matmul.cuda",
            {FakeTensor{{4, 5}, kF32}, FakeTensor{{5, 6}, kF64}},
            "same dtype"},
           {"matmul.cuda",
            {FakeTensor{{4, 5}, kI32}, FakeTensor{{5, 6}, kI32}},
            "must be float32"},
           {"linear.cuda",
            {FakeTensor{{2, 3, 4}, kF32}, FakeTensor{{5, 4}, kF32},
             FakeTensor{{4}, kF32}},
            "bias must be (5)"},
           {"linear.cuda",
            {FakeTensor{{2, 3, 4}, kF32}, FakeTensor{{5, 3}, kF32},
             std::nullopt},
            "weight (M, K)"},
           {"linear.cuda",
            {FakeTensor{{2, 4}, kF32}, FakeTensor{{5, 4}, kBF16}, std::nullopt},
            "same dtype"},
       }) {
    absl::StatusOr<Specs> s = Infer(b.id, b.in);
    ASSERT_FALSE(s.ok()) << b.says;
    EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument) << b.says;
    EXPECT_NE(s.status().message().find(b.says), std::string::npos)
        << s.status();
  }
}

// ---- values and gradients against the reference ----

const runtime::PluginRegistry& Reference() {
  static const runtime::PluginRegistry* const r = [] {
    auto* registry = new runtime::PluginRegistry;
    absl::Status s = registry->LoadFile(std::string(LLMSYS_BUILTIN_PLUGIN_DIR) +
                                        "/reference.so");
    EXPECT_TRUE(s.ok()) << s;
    return registry;
  }();
  return *r;
}

std::unique_ptr<runtime::OperatorImpl> ReferenceOp(const std::string& op) {
  const runtime::PluginRegistry& registry = Reference();
  absl::StatusOr<const runtime::Component*> c =
      registry.Find(LLMSYS_KIND_OPERATOR, op + ".reference", kDLCPU);
  EXPECT_TRUE(c.ok()) << c.status();
  const runtime::OpContract* contract = registry.FindOpContract(op);
  if (!c.ok() || contract == nullptr) return nullptr;
  absl::StatusOr<std::unique_ptr<runtime::OperatorImpl>> impl =
      runtime::OperatorImpl::Create(**c, *contract);
  EXPECT_TRUE(impl.ok()) << impl.status();
  return impl.ok() ? *std::move(impl) : nullptr;
}

int64_t Numel(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) n *= d;
  return n;
}

std::string Str(const Shape& s) {
  std::string out = "(";
  for (size_t i = 0; i < s.size(); ++i)
    out += (i ? ", " : "") + std::to_string(s[i]);
  return out + ")";
}

Vec Random(int64_t n, uint32_t seed) {
  return RandomUniform(n, seed, -1.0, 1.0);
}

// `values` rounded to `dtype`, on the host.
Tensor OnHost(const Shape& shape, const Vec& values, DLDataType dtype) {
  EmulatedDevice::Install();  // cuda:0 before the first test's plugin load
  absl::StatusOr<Tensor> t = Tensor::FromDoubles(shape, values, dtype);
  EXPECT_TRUE(t.ok()) << t.status();
  return *t;
}

// One forward and one backward call (every gradient asked for), outputs
// and gradients poisoned first. grads[i] is input i's gradient, empty for
// an absent input.
struct Ran {
  Vec out;
  std::vector<Vec> grads;
};

Ran RunOp(runtime::OperatorImpl& impl, const std::vector<Tensor>& inputs,
          const runtime::AttrList& attrs, const Shape& out_shape, const Vec& g,
          DLDataType dtype, DLDevice device) {
  Ran ran;
  const runtime::ParamPack pack = *impl.Attrs(attrs);
  runtime::CallOptions options;
  options.poison = true;
  absl::StatusOr<std::vector<Tensor>> out = impl.Forward(inputs, pack, options);
  EXPECT_TRUE(out.ok()) << out.status();
  if (!out.ok()) return ran;
  EXPECT_EQ((*out)[0].shape(), out_shape);
  ran.out = (*out)[0].ToDoubles();
  std::vector<runtime::TensorMeta> meta;
  std::vector<bool> needs;
  for (const Tensor& t : inputs) {
    meta.push_back(t.defined() ? runtime::TensorMeta{true, t.shape(), t.dtype()}
                               : runtime::TensorMeta{});
    needs.push_back(t.defined());
  }
  std::vector<Tensor> gout(1);
  if (!g.empty()) gout[0] = *OnHost(out_shape, g, dtype).ToDevice(device);
  absl::StatusOr<std::vector<Tensor>> grads =
      impl.Backward(inputs, meta, pack, options, *out, gout, needs);
  EXPECT_TRUE(grads.ok()) << grads.status();
  if (!grads.ok()) return ran;
  for (size_t i = 0; i < grads->size(); ++i)
    ran.grads.push_back(needs[i] ? (*grads)[i].ToDoubles() : Vec{});
  return ran;
}

double Tolerance(DLDataType t) {
  if (llmsys_dtype_equal(t, kF64)) return 1e-12;
  if (llmsys_dtype_equal(t, kF32)) return 1e-5;
  if (llmsys_dtype_equal(t, kBF16)) return 4e-2;
  return 5e-3;  // float16
}

// Runs `op`.cuda on the emulated device and `op`.reference on the CPU in
// float64 from the same (rounded) inputs, and compares the output and
// every gradient. shapes[i] empty: input i absent.
void Check(const std::string& op, const std::vector<Shape>& shapes,
           const runtime::AttrList& attrs, DLDataType t, uint32_t seed,
           const std::string& label) {
  const std::string what = op + " " + label + " " + tensor::DTypeName(t);
  std::vector<Tensor> dev, ref;
  for (size_t i = 0; i < shapes.size(); ++i) {
    if (shapes[i].empty()) {
      dev.emplace_back();
      ref.emplace_back();
      continue;
    }
    const Tensor h = OnHost(shapes[i], Random(Numel(shapes[i]), seed + i), t);
    dev.push_back(*h.ToDevice(kCuda0));
    ref.push_back(OnHost(shapes[i], h.ToDoubles(), kF64));
  }
  std::unique_ptr<runtime::OperatorImpl> ref_impl = ReferenceOp(op);
  ASSERT_NE(ref_impl, nullptr);
  // The output's shape from the reference's infer.
  absl::StatusOr<runtime::OperatorImpl::InferResult> inferred =
      ref_impl->Infer(ref, *ref_impl->Attrs(attrs));
  ASSERT_TRUE(inferred.ok()) << inferred.status();
  const Shape out_shape = inferred->outputs[0].shape;
  const Vec g =
      OnHost(out_shape, Random(Numel(out_shape), seed + 100), t).ToDoubles();
  const Ran want =
      RunOp(*ref_impl, ref, attrs, out_shape, g, kF64, {kDLCPU, 0});
  std::unique_ptr<runtime::OperatorImpl> impl = EmulatedOp(op + ".cuda", op);
  ASSERT_NE(impl, nullptr);
  const Ran got = RunOp(*impl, dev, attrs, out_shape, g, t, kCuda0);
  const double tol = Tolerance(t);
  ExpectNear(got.out, want.out, tol, what + " out");
  ASSERT_EQ(got.grads.size(), want.grads.size()) << what;
  for (size_t i = 0; i < got.grads.size(); ++i)
    ExpectNear(got.grads[i], want.grads[i], tol,
               what + " grad " + std::to_string(i));
}

struct MatmulCase {
  Shape a, b;
  bool ta = false, tb = false;
  std::string label;
};

std::vector<MatmulCase> MatmulCases() {
  return {
      {{5, 7}, {7, 3}, false, false, "2-D"},
      {{3, 4, 5}, {3, 5, 6}, false, false, "batched"},
      {{2, 1, 3, 4}, {5, 4, 6}, false, false, "broadcast batch"},
      {{2, 3, 4, 5}, {5, 6}, false, false, "shared weight"},
      {{4, 5}, {2, 3, 5, 6}, false, false, "shared a"},
      {{2, 1, 4, 3}, {5, 4, 6}, true, false, "broadcast, a^T"},
      {{2, 1, 3, 4}, {5, 6, 4}, false, true, "broadcast, b^T"},
      {{3, 5, 4}, {3, 6, 5}, true, true, "batched, a^T b^T"},
      {{2, 3, 4, 5}, {6, 5}, false, true, "shared weight, b^T"},
      {{2, 5, 4}, {5, 6}, true, false, "a^T with a shared b"},
      {{17, 33}, {33, 9}, false, false, "ragged 17x33x9 (16 tiles)"},
      {{33, 40}, {40, 35}, false, false, "ragged 33x40x35 (32 tiles)"},
      {{2, 40, 33}, {35, 40}, true, true, "ragged batched a^T b^T"},
  };
}

TEST(SimtMatmulTest, ValuesAndGradientsMatchTheReference) {
  uint32_t seed = 1;
  for (DLDataType t : {kF32, kF64, kBF16})
    for (const MatmulCase& c : MatmulCases()) {
      Check("matmul", {c.a, c.b},
            {{"transpose_a", c.ta}, {"transpose_b", c.tb}}, t, seed,
            c.label + " a " + Str(c.a) + (c.ta ? "^T" : "") + " b " + Str(c.b) +
                (c.tb ? "^T" : ""));
      seed += 10;
    }
  Check("matmul", {{2, 1, 3, 4}, {5, 4, 6}}, {}, kF16, 7, "broadcast batch");
}

TEST(SimtLinearTest, ValuesAndGradientsMatchTheReference) {
  struct Case {
    Shape x, w;
    bool bias;
  };
  uint32_t seed = 500;
  for (DLDataType t : {kF32, kF64, kBF16, kF16})
    for (const Case& c : std::vector<Case>{
             {{2, 3, 8}, {5, 8}, true},
             {{2, 3, 8}, {5, 8}, false},
             {{3, 11, 17}, {19, 17}, true},  // 33 rows: 32 tiles, ragged
             {{4, 17}, {9, 17}, false},
             {{6}, {3, 6}, true},  // one row
         }) {
      Check("linear", {c.x, c.w, c.bias ? Shape{c.w[0]} : Shape{}}, {}, t, seed,
            "x " + Str(c.x) + " w " + Str(c.w) + (c.bias ? " +b" : ""));
      seed += 10;
    }
}

TEST(SimtMatmulTest, EmptyDimsGiveZerosOrNothing) {
  for (const MatmulCase& c : std::vector<MatmulCase>{
           {{3, 0}, {0, 4}, false, false, "K = 0"},
           {{2, 0, 5}, {5, 3}, false, false, "N = 0"},
           {{0, 2, 5}, {5, 3}, false, false, "batch 0"},
           {{2, 1, 3, 4}, {0, 4, 6}, false, false, "broadcast batch 0"},
       })
    Check("matmul", {c.a, c.b}, {}, kF32, 3, c.label);
  Check("linear", {{4, 0}, {3, 0}, {3}}, {}, kF32, 3, "K = 0 with bias");
  Check("linear", {{4, 0}, {3, 0}, {}}, {}, kF32, 3, "K = 0");
  Check("linear", {{0, 5}, {3, 5}, {3}}, {}, kF64, 3, "no rows");
}

// No incoming gradient: every gradient is zero.
TEST(SimtMatmulTest, NoIncomingGradientGivesZeros) {
  for (const std::string op : {"matmul", "linear"}) {
    std::unique_ptr<runtime::OperatorImpl> impl = EmulatedOp(op + ".cuda", op);
    ASSERT_NE(impl, nullptr);
    std::vector<Tensor> in = {
        *OnHost({3, 4}, Random(12, 1), kF32).ToDevice(kCuda0),
        *OnHost({op == "matmul" ? 4 : 5, op == "matmul" ? 5 : 4}, Random(20, 2),
                kF32)
             .ToDevice(kCuda0)};
    if (op == "linear")
      in.push_back(*OnHost({5}, Random(5, 3), kF32).ToDevice(kCuda0));
    const Ran r = RunOp(*impl, in, {}, {3, 5}, {}, kF32, kCuda0);
    ASSERT_EQ(r.grads.size(), in.size()) << op;
    for (const Vec& v : r.grads)
      for (double d : v) EXPECT_EQ(d, 0.0) << op;
  }
}

// The same inputs give the same bits: the broadcast gradients' sums run in
// a fixed order.
TEST(SimtMatmulTest, BroadcastGradientsAreDeterministic) {
  std::unique_ptr<runtime::OperatorImpl> impl =
      EmulatedOp("matmul.cuda", "matmul");
  ASSERT_NE(impl, nullptr);
  const std::vector<Tensor> in = {
      *OnHost({2, 1, 9, 20}, Random(360, 4), kF32).ToDevice(kCuda0),
      *OnHost({5, 20, 7}, Random(700, 5), kF32).ToDevice(kCuda0)};
  const Vec g = Random(2 * 5 * 9 * 7, 6);
  const Ran a = RunOp(*impl, in, {}, {2, 5, 9, 7}, g, kF32, kCuda0);
  const Ran b = RunOp(*impl, in, {}, {2, 5, 9, 7}, g, kF32, kCuda0);
  ASSERT_EQ(a.grads.size(), 2u);
  ASSERT_EQ(b.grads.size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    ASSERT_EQ(a.grads[i].size(), b.grads[i].size());
    EXPECT_EQ(std::memcmp(a.grads[i].data(), b.grads[i].data(),
                          a.grads[i].size() * sizeof(double)),
              0)
        << "gradient " << i;
  }
}

}  // namespace
}  // namespace llmsys::cuda_test
