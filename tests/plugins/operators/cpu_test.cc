// llmsys.cpu (plugins/operators/cpu) beyond the conformance suite: shapes
// the size of a small GPT's, compared with the reference in float32, exact
// dropout masks, determinism for a fixed thread count, and a micro
// benchmark (printed, not asserted) of the reference and llmsys.cpu.
//
// Like the llmsys binary should, this test sets OPENBLAS_CORETYPE before
// the plugin (and with it OpenBLAS) loads, so the benchmark measures the
// kernels a user gets.
#include <dlfcn.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "tests/plugins/operators/reference_test_util.h"

namespace llmsys::plugins_test {
namespace {

using tensor::kF32;
using tensor::kI64;
using tensor::kU8;

// OPENBLAS_CORETYPE from CPUID, unless the environment already sets it;
// runs before main, so before any plugin loads OpenBLAS.
const bool kCoreTypeSet = [] {
#if defined(__x86_64__) && defined(__GNUC__)
  __builtin_cpu_init();
  const char* core = nullptr;
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512vl"))
    core = "SkylakeX";
  else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
    core = "Haswell";
  if (core != nullptr) setenv("OPENBLAS_CORETYPE", core, /*overwrite=*/0);
#endif
  return true;
}();

std::unique_ptr<OperatorImpl> CpuOp(const std::string& id,
                                    const std::string& op) {
  return BuiltinOp("cpu.so", id, op);
}

// The BLAS core OpenBLAS runs (it is loaded by cpu.so).
std::string BlasCore() {
  BuiltinPlugin("cpu.so");
  void* lib = dlopen("libopenblas.so.0", RTLD_LAZY | RTLD_NOLOAD);
  if (lib == nullptr) return "unknown (libopenblas.so.0 not loaded)";
  auto* fn = reinterpret_cast<char* (*)()>(dlsym(lib, "openblas_get_corename"));
  std::string core = fn != nullptr ? fn() : "unknown";
  dlclose(lib);
  return core;
}

// Worst |a - b| / max(1, |b|).
double MaxRelError(const Tensor& a, const Tensor& b) {
  EXPECT_EQ(a.shape(), b.shape());
  const std::vector<double> x = a.ToDoubles(), y = b.ToDoubles();
  if (x.size() != y.size()) return INFINITY;
  double worst = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    if (std::isinf(x[i]) || std::isinf(y[i])) {
      if (x[i] != y[i]) return INFINITY;
      continue;
    }
    const double e = std::abs(x[i] - y[i]) / std::max(1.0, std::abs(y[i]));
    if (!(e <= worst)) worst = e;  // NaN wins
  }
  return worst;
}

// One call of an implementation: its id, op, inputs and attributes.
struct Case {
  const char* id;
  const char* op;
  std::vector<Tensor> inputs;
  AttrList attrs;
};

// Runs `cpu_id` and `op`.reference on the same inputs and compares every
// output and every input gradient (loss = sum(w * out0)).
void ExpectMatchesReference(const std::string& cpu_id, const std::string& op,
                            const std::vector<Tensor>& inputs,
                            const AttrList& attrs, double tol = 1e-4,
                            runtime::CallOptions options = {}) {
  SCOPED_TRACE(cpu_id);
  auto cpu = CpuOp(cpu_id, op);
  auto ref = ReferenceOp(op);
  ASSERT_NE(cpu, nullptr);
  ASSERT_NE(ref, nullptr);
  std::vector<Tensor> a = RunForward(*cpu, inputs, attrs, options);
  std::vector<Tensor> b = RunForward(*ref, inputs, attrs, options);
  ASSERT_EQ(a.size(), b.size());
  ASSERT_FALSE(a.empty());
  for (size_t i = 0; i < a.size(); ++i)
    EXPECT_LT(MaxRelError(a[i], b[i]), tol) << "output " << i;
  const Tensor w = RandomTensor(b[0].shape(), b[0].dtype(), 7);
  std::vector<Tensor> ga = RunBackward(*cpu, inputs, attrs, w, options);
  std::vector<Tensor> gb = RunBackward(*ref, inputs, attrs, w, options);
  ASSERT_EQ(ga.size(), gb.size());
  for (size_t i = 0; i < ga.size(); ++i) {
    if (!gb[i].defined()) continue;
    ASSERT_TRUE(ga[i].defined()) << "gradient " << i;
    EXPECT_LT(MaxRelError(ga[i], gb[i]), tol) << "gradient " << i;
  }
}

TEST(CpuOps, MatmulFoldedWeightMatchesReference) {
  // (3, 64, 128) @ (96, 128)^T: a linear layer, batch folded into rows.
  ExpectMatchesReference(
      "matmul.blas", "matmul",
      {RandomTensor({3, 64, 128}, kF32, 1), RandomTensor({96, 128}, kF32, 2)},
      {{"transpose_b", true}});
  ExpectMatchesReference(
      "matmul.blas", "matmul",
      {RandomTensor({3, 64, 128}, kF32, 1), RandomTensor({128, 96}, kF32, 2)},
      {});
}

TEST(CpuOps, MatmulBatchedBroadcastAndTransposesMatchReference) {
  ExpectMatchesReference("matmul.blas", "matmul",
                         {RandomTensor({2, 1, 64, 128}, kF32, 3),
                          RandomTensor({3, 128, 96}, kF32, 4)},
                         {});
  ExpectMatchesReference("matmul.blas", "matmul",
                         {RandomTensor({2, 3, 128, 64}, kF32, 5),
                          RandomTensor({2, 3, 96, 128}, kF32, 6)},
                         {{"transpose_a", true}, {"transpose_b", true}});
  ExpectMatchesReference(
      "matmul.blas", "matmul",
      {RandomTensor({4, 128, 64}, kF32, 7), RandomTensor({128, 96}, kF32, 8)},
      {{"transpose_a", true}});
}

// One row (a decoding step) takes the gemv path: every transpose.
TEST(CpuOps, MatmulOfOneRowMatchesReference) {
  for (bool ta : {false, true}) {
    for (bool tb : {false, true}) {
      const Tensor a = ta ? RandomTensor({128, 1}, kF32, 21)
                          : RandomTensor({1, 1, 128}, kF32, 21);
      const Tensor b = tb ? RandomTensor({96, 128}, kF32, 22)
                          : RandomTensor({128, 96}, kF32, 22);
      ExpectMatchesReference("matmul.blas", "matmul", {a, b},
                             {{"transpose_a", ta}, {"transpose_b", tb}});
    }
  }
}

TEST(CpuOps, AttentionCausalMatchesReference) {
  ExpectMatchesReference("attention.blas", "attention",
                         {RandomTensor({2, 4, 64, 32}, kF32, 11),
                          RandomTensor({2, 4, 64, 32}, kF32, 12),
                          RandomTensor({2, 4, 64, 32}, kF32, 13), Tensor()},
                         {{"causal", true}});
}

TEST(CpuOps, AttentionMasksAndDropoutMatchReference) {
  std::vector<double> mask(2 * 64, 0.0);
  for (int i = 0; i < 64; i += 3) mask[i] = 1;  // every third key of b 0
  for (int i = 64; i < 128; ++i) mask[i] = 1;   // every key of b 1
  Tensor pad = *Tensor::FromDoubles({2, 64}, mask, kU8);
  runtime::CallOptions options;
  options.rng = {4321, 9ull << 32};
  ExpectMatchesReference("attention.blas", "attention",
                         {RandomTensor({2, 4, 48, 32}, kF32, 14),
                          RandomTensor({2, 4, 64, 32}, kF32, 15),
                          RandomTensor({2, 4, 64, 16}, kF32, 16), pad},
                         {{"causal", true}, {"dropout_p", 0.1}}, 1e-4, options);
  ExpectMatchesReference("attention.blas", "attention",
                         {RandomTensor({2, 4, 48, 32}, kF32, 14),
                          RandomTensor({2, 4, 64, 32}, kF32, 15),
                          RandomTensor({2, 4, 64, 16}, kF32, 16), pad},
                         {{"scale", 0.3}}, 1e-4, options);
}

// attention.flash, attention.materialized and attention.blas (their heads
// spread over 3 threads) against the reference, forward and backward: N != M
// both ways, N and M not multiples of the 64 tile or row block, causal
// (incl. blocks skipped whole), a padding
// mask with a batch whose every key is masked, dropout, an explicit scale,
// and several threads.
TEST(CpuOps, FlashAttentionMatchesReference) {
  std::vector<double> mask(2 * 100, 0.0);
  for (int i = 0; i < 100; i += 3) mask[i] = 1;  // every third key of b 0
  for (int i = 100; i < 200; ++i) mask[i] = 1;   // every key of b 1
  Tensor pad = *Tensor::FromDoubles({2, 100}, mask, kU8);
  runtime::CallOptions options;
  options.rng = {4321, 9ull << 32};
  options.num_threads = 3;
  const std::vector<Tensor> qkv = {RandomTensor({2, 3, 70, 32}, kF32, 21),
                                   RandomTensor({2, 3, 100, 32}, kF32, 22),
                                   RandomTensor({2, 3, 100, 16}, kF32, 23)};
  for (const AttrList& attrs : {AttrList{}, AttrList{{"causal", true}},
                                AttrList{{"causal", true}, {"dropout_p", 0.2}},
                                AttrList{{"scale", 0.3}, {"dropout_p", 0.1}}}) {
    for (const char* impl :
         {"attention.flash", "attention.materialized", "attention.blas"}) {
      ExpectMatchesReference(impl, "attention",
                             {qkv[0], qkv[1], qkv[2], Tensor()}, attrs, 1e-4,
                             options);
      ExpectMatchesReference(impl, "attention", {qkv[0], qkv[1], qkv[2], pad},
                             attrs, 1e-4, options);
    }
  }
  // Causal, 130 query rows = 3 blocks of 64 (flash's tiles, the row blocks
  // of blas and materialized): M < N (rows past M see every key) and M = N.
  for (int64_t m : {50, 130}) {
    const std::vector<Tensor> long_qkv = {
        RandomTensor({1, 2, 130, 8}, kF32, 24),
        RandomTensor({1, 2, m, 8}, kF32, 25),
        RandomTensor({1, 2, m, 8}, kF32, 26)};
    for (const char* impl :
         {"attention.flash", "attention.materialized", "attention.blas"})
      ExpectMatchesReference(
          impl, "attention", {long_qkv[0], long_qkv[1], long_qkv[2], Tensor()},
          {{"causal", true}, {"dropout_p", 0.3}}, 1e-4, options);
  }
}

// A NaN key reaches every query that attends to it, as in the reference,
// wherever it sits in its tile, causal or not (attention.flash once took a
// tile whose max came out -inf for a fully masked one); so does a query of
// NaNs, whose every score is NaN.
TEST(CpuOps, AttentionCarriesANaNKeyLikeTheReference) {
  auto ref = ReferenceOp("attention");
  ASSERT_NE(ref, nullptr);
  for (int64_t at : {0, 5, 60, 63, 64, 99}) {
    std::vector<double> kd = RandomTensor({1, 1, 100, 8}, kF32, 91).ToDoubles();
    kd[static_cast<size_t>(at * 8 + 3)] = NAN;
    const std::vector<Tensor> in = {
        RandomTensor({1, 1, 70, 8}, kF32, 90),
        *Tensor::FromDoubles({1, 1, 100, 8}, kd, kF32),
        RandomTensor({1, 1, 100, 8}, kF32, 92), Tensor()};
    for (bool causal : {false, true}) {
      const AttrList attrs = {{"causal", causal}};
      const std::vector<double> want =
          RunForward(*ref, in, attrs)[0].ToDoubles();
      for (const char* impl :
           {"attention.flash", "attention.blas", "attention.materialized"}) {
        SCOPED_TRACE(std::string(impl) + " key " + std::to_string(at) +
                     (causal ? " causal" : ""));
        auto op = CpuOp(impl, "attention");
        ASSERT_NE(op, nullptr);
        const std::vector<double> got =
            RunForward(*op, in, attrs)[0].ToDoubles();
        ASSERT_EQ(got.size(), want.size());
        int64_t nans = 0;
        for (size_t i = 0; i < got.size(); ++i) {
          EXPECT_EQ(std::isnan(got[i]), std::isnan(want[i])) << "element " << i;
          nans += std::isnan(want[i]);
        }
        // Causal: queries 0..69 see key `at` only when at < 70.
        EXPECT_EQ(nans > 0, !causal || at < 70);
      }
    }
  }
  std::vector<double> qd = RandomTensor({1, 1, 70, 8}, kF32, 93).ToDoubles();
  for (int j = 0; j < 8; ++j) qd[static_cast<size_t>(5 * 8 + j)] = NAN;
  const std::vector<Tensor> in = {*Tensor::FromDoubles({1, 1, 70, 8}, qd, kF32),
                                  RandomTensor({1, 1, 100, 8}, kF32, 94),
                                  RandomTensor({1, 1, 100, 8}, kF32, 95),
                                  Tensor()};
  for (const char* impl :
       {"attention.flash", "attention.blas", "attention.materialized"}) {
    SCOPED_TRACE(impl);
    const std::vector<double> got =
        RunForward(*CpuOp(impl, "attention"), in, {{"causal", true}})[0]
            .ToDoubles();
    for (size_t i = 0; i < got.size(); ++i)
      EXPECT_EQ(std::isnan(got[i]), i / 8 == 5) << "element " << i;
  }
}

// The fully masked rows: out 0 and lse -inf, gradients 0, never NaN; and
// dropout_p = 1 gives zeros.
TEST(CpuOps, FlashAttentionMaskedRowsAndFullDropout) {
  auto flash = CpuOp("attention.flash", "attention");
  ASSERT_NE(flash, nullptr);
  Tensor pad = *Tensor::FromDoubles({1, 5}, {1, 1, 1, 1, 1}, kU8);
  const std::vector<Tensor> in = {RandomTensor({1, 2, 3, 4}, kF32, 31),
                                  RandomTensor({1, 2, 5, 4}, kF32, 32),
                                  RandomTensor({1, 2, 5, 4}, kF32, 33), pad};
  std::vector<Tensor> out = RunForward(*flash, in, {});
  ASSERT_EQ(out.size(), 2u);
  for (double x : out[0].ToDoubles()) EXPECT_EQ(x, 0.0);
  for (double x : out[1].ToDoubles()) EXPECT_EQ(x, -INFINITY);
  std::vector<Tensor> g =
      RunBackward(*flash, in, {}, RandomTensor({1, 2, 3, 4}, kF32, 34));
  ASSERT_GE(g.size(), 3u);
  for (int i = 0; i < 3; ++i)
    for (double x : g[i].ToDoubles()) EXPECT_EQ(x, 0.0) << "gradient " << i;
  std::vector<Tensor> dropped =
      RunForward(*flash, {in[0], in[1], in[2], Tensor()}, {{"dropout_p", 1.0}});
  ASSERT_EQ(dropped.size(), 2u);
  for (double x : dropped[0].ToDoubles()) EXPECT_EQ(x, 0.0);
  for (double x : dropped[1].ToDoubles()) EXPECT_TRUE(std::isfinite(x));
}

// Central differences in float64 through the tiles: 70 x 66 crosses the
// 64 boundary in both N and M.
TEST(CpuOps, FlashAttentionGradCheckFloat64) {
  auto flash = CpuOp("attention.flash", "attention");
  ASSERT_NE(flash, nullptr);
  std::vector<double> mask(66, 0.0);
  mask[3] = mask[65] = 1;
  Tensor pad = *Tensor::FromDoubles({1, 66}, mask, kU8);
  runtime::CallOptions options;
  options.rng = {5, 1ull << 32};
  EXPECT_LT(CheckedGrad(*flash,
                        {RandomTensor({1, 1, 70, 3}, tensor::kF64, 41, -2, 2),
                         RandomTensor({1, 1, 66, 3}, tensor::kF64, 42, -2, 2),
                         RandomTensor({1, 1, 66, 2}, tensor::kF64, 43), pad},
                        {{"causal", true}, {"dropout_p", 0.25}}, options),
            1e-6);
}

// GELU's tanh saturates its argument at +-10: values past it, tiny ones and
// the non-finite ones (a NaN stays NaN, +inf stays +inf).
TEST(CpuOps, GeluTanhAtTheEdges) {
  const std::vector<double> finite = {-1e4, -50, -10.5, -9.9, -3,   -1e-6, 0,
                                      1e-6, 0.7, 3,     9.9,  10.5, 50,    1e4};
  const AttrList tanh_form = {{"approximate", std::string("tanh")}};
  ExpectMatchesReference(
      "gelu.fused", "gelu",
      {*Tensor::FromDoubles({static_cast<int64_t>(finite.size())}, finite,
                            kF32)},
      tanh_form);
  auto gelu = CpuOp("gelu.fused", "gelu");
  ASSERT_NE(gelu, nullptr);
  const std::vector<double> out =
      RunForward(*gelu, {*Tensor::FromDoubles({2}, {NAN, INFINITY}, kF32)},
                 tanh_form)[0]
          .ToDoubles();
  EXPECT_TRUE(std::isnan(out[0]));
  EXPECT_EQ(out[1], INFINITY);
}

TEST(CpuOps, GptSizedFusedOpsMatchReference) {
  ExpectMatchesReference(
      "layer_norm.fused", "layer_norm",
      {RandomTensor({12, 64, 128}, kF32, 21, -3, 5),
       RandomTensor({128}, kF32, 22), RandomTensor({128}, kF32, 23)},
      {});
  ExpectMatchesReference("gelu.fused", "gelu",
                         {RandomTensor({768, 512}, kF32, 24, -6, 6)},
                         {{"approximate", std::string("tanh")}});
  ExpectMatchesReference("gelu.fused", "gelu",
                         {RandomTensor({768, 64}, kF32, 25, -6, 6)},
                         {{"approximate", std::string("none")}});
  ExpectMatchesReference("softmax.fused", "softmax",
                         {RandomTensor({768, 65}, kF32, 26, -8, 8)}, {});
  ExpectMatchesReference("log_softmax.fused", "log_softmax",
                         {RandomTensor({768, 65}, kF32, 27, -8, 8)}, {});
  std::vector<double> targets(768);
  for (size_t i = 0; i < targets.size(); ++i)
    targets[i] = static_cast<double>((i * 7) % 65);
  ExpectMatchesReference("cross_entropy.fused", "cross_entropy",
                         {RandomTensor({12, 64, 65}, kF32, 28, -4, 4),
                          *Tensor::FromDoubles({12, 64}, targets, kI64)},
                         {});
  ExpectMatchesReference("embedding.fused", "embedding",
                         {RandomTensor({65, 128}, kF32, 29),
                          *Tensor::FromDoubles({12, 64}, targets, kI64)},
                         {});
}

// The ops that split rows or elements over the host's pool, past their
// grain on 3 threads: they match the reference, and two runs give the same
// bits (the reductions add per-range partials in range order).
TEST(CpuOps, ThreadedOpsMatchReferenceAndRepeatExactly) {
  runtime::CallOptions options;
  options.num_threads = 3;
  const Tensor x = RandomTensor({16, 128, 256}, kF32, 61, -3, 3);
  std::vector<double> targets(16 * 128);
  for (size_t i = 0; i < targets.size(); ++i)
    targets[i] = static_cast<double>((i * 11) % 300);
  const std::vector<Case> cases = {
      {"layer_norm.fused",
       "layer_norm",
       {x, RandomTensor({256}, kF32, 62), RandomTensor({256}, kF32, 63)},
       {}},
      {"gelu.fused", "gelu", {x}, {{"approximate", std::string("tanh")}}},
      {"add.cpu", "add", {x, RandomTensor({256}, kF32, 64)}, {}},
      {"add.cpu", "add", {x, RandomTensor({16, 128, 256}, kF32, 65)}, {}},
      {"softmax.fused", "softmax", {x}, {}},
      {"linear.blas",
       "linear",
       {x, RandomTensor({96, 256}, kF32, 68), RandomTensor({96}, kF32, 69)},
       {}},
      // GEMMs split into row blocks (with a transposed operand or not) and
      // column blocks (the weight's gradient: wider than tall).
      {"matmul.blas",
       "matmul",
       {x, RandomTensor({300, 256}, kF32, 70)},
       {{"transpose_b", true}}},
      {"matmul.blas", "matmul", {x, RandomTensor({256, 300}, kF32, 71)}, {}},
      // 40 rows, 300 columns: the output splits by columns.
      {"matmul.blas",
       "matmul",
       {RandomTensor({1, 40, 256}, kF32, 72),
        RandomTensor({300, 256}, kF32, 73)},
       {{"transpose_b", true}}},
      {"cross_entropy.fused",
       "cross_entropy",
       {RandomTensor({16, 128, 300}, kF32, 66, -4, 4),
        *Tensor::FromDoubles({16, 128}, targets, kI64)},
       {}}};
  for (const Case& c : cases) {
    SCOPED_TRACE(c.id);
    ExpectMatchesReference(c.id, c.op, c.inputs, c.attrs, 1e-4, options);
    auto op = CpuOp(c.id, c.op);
    ASSERT_NE(op, nullptr);
    const std::vector<Tensor> out = RunForward(*op, c.inputs, c.attrs, options);
    const Tensor w = RandomTensor(out[0].shape(), out[0].dtype(), 67);
    const std::vector<Tensor> g1 =
        RunBackward(*op, c.inputs, c.attrs, w, options);
    const std::vector<Tensor> g2 =
        RunBackward(*op, c.inputs, c.attrs, w, options);
    EXPECT_EQ(RunForward(*op, c.inputs, c.attrs, options)[0].ToDoubles(),
              out[0].ToDoubles());
    for (size_t i = 0; i < g1.size(); ++i) {
      if (!g1[i].defined()) continue;
      EXPECT_EQ(g1[i].ToDoubles(), g2[i].ToDoubles()) << "gradient " << i;
    }
  }
}

TEST(CpuOps, GptSizedElementwiseAndReductionsMatchReference) {
  const Tensor x = RandomTensor({12, 64, 128}, kF32, 31);
  ExpectMatchesReference("add.cpu", "add", {x, RandomTensor({128}, kF32, 32)},
                         {});
  ExpectMatchesReference("add.cpu", "add",
                         {x, RandomTensor({64, 128}, kF32, 33)}, {});
  ExpectMatchesReference("add.cpu", "add",
                         {x, RandomTensor({12, 64, 128}, kF32, 34)}, {});
  ExpectMatchesReference("sub.cpu", "sub", {RandomTensor({128}, kF32, 35), x},
                         {});
  ExpectMatchesReference("mul.cpu", "mul", {x, RandomTensor({128}, kF32, 36)},
                         {});
  ExpectMatchesReference("div.cpu", "div",
                         {x, RandomTensor({1, 64, 128}, kF32, 37, 0.5, 2)}, {});
  ExpectMatchesReference("mul.cpu", "mul",
                         {x, RandomTensor({12, 1, 128}, kF32, 38)}, {});
  using Ints = std::vector<int64_t>;
  ExpectMatchesReference("sum.cpu", "sum", {x}, {{"dims", Ints{0, 1}}});
  ExpectMatchesReference("mean.cpu", "mean", {x},
                         {{"dims", Ints{-1}}, {"keepdim", true}});
  ExpectMatchesReference("sum.cpu", "sum", {x}, {{"dims", Ints{1}}});
  ExpectMatchesReference("mean.cpu", "mean", {x}, {});
}

TEST(CpuOps, DropoutMaskIsTheReferences) {
  runtime::CallOptions options;
  options.rng = {99, 3ull << 32};
  const Tensor x = RandomTensor({12, 64, 129}, kF32, 41);
  auto cpu = CpuOp("dropout.cpu", "dropout");
  auto ref = ReferenceOp("dropout");
  std::vector<Tensor> a = RunForward(*cpu, {x}, {{"p", 0.1}}, options);
  std::vector<Tensor> b = RunForward(*ref, {x}, {{"p", 0.1}}, options);
  ASSERT_EQ(a.size(), 2u);
  EXPECT_EQ(a[0].ToDoubles(), b[0].ToDoubles());
  EXPECT_EQ(a[1].ToDoubles(), b[1].ToDoubles());
}

// A large GEMM is cut into one block of rows or columns per thread, each a
// one-thread BLAS GEMM: with OpenBLAS's SkylakeX kernels every output
// element is the same sum as on one thread, so 1, 2 and 3 threads give the
// same bits. Other cores' kernels (Haswell: AVX2 machines) sum a narrower
// product in another order, so there the blocks agree to float rounding.
TEST(CpuOps, SplitGemmsGiveTheOneThreadBits) {
  std::string core = BlasCore();
  for (char& ch : core) ch = static_cast<char>(std::tolower(ch));
  const bool exact = core == "skylakex";
  auto expect_same = [&](const std::vector<double>& got,
                         const std::vector<double>& want,
                         const std::string& what) {
    if (exact) {
      EXPECT_EQ(got, want) << what;
      return;
    }
    ASSERT_EQ(got.size(), want.size()) << what;
    for (size_t i = 0; i < got.size(); ++i)
      ASSERT_NEAR(got[i], want[i], 1e-5 * (1 + std::abs(want[i])))
          << what << " [" << i << "] (OpenBLAS core " << BlasCore() << ")";
  };
  const Tensor x = RandomTensor({4, 100, 256}, kF32, 81);
  const std::vector<Case> cases = {
      {"linear.blas",
       "linear",
       {x, RandomTensor({200, 256}, kF32, 82), RandomTensor({200}, kF32, 83)},
       {}},
      {"linear.blas",
       "linear",
       {RandomTensor({2, 20, 256}, kF32, 84),
        RandomTensor({520, 256}, kF32, 85), Tensor()},
       {}},
      {"matmul.blas", "matmul", {x, RandomTensor({256, 600}, kF32, 86)}, {}}};
  for (const Case& c : cases) {
    SCOPED_TRACE(c.id);
    auto op = CpuOp(c.id, c.op);
    ASSERT_NE(op, nullptr);
    std::vector<std::vector<double>> outs, grads;
    for (int threads : {1, 2, 3}) {
      runtime::CallOptions options;
      options.num_threads = threads;
      const std::vector<Tensor> out =
          RunForward(*op, c.inputs, c.attrs, options);
      const Tensor w = RandomTensor(out[0].shape(), out[0].dtype(), 87);
      std::vector<double> g;
      for (const Tensor& t : RunBackward(*op, c.inputs, c.attrs, w, options))
        if (t.defined())
          for (double v : t.ToDoubles()) g.push_back(v);
      outs.push_back(out[0].ToDoubles());
      grads.push_back(g);
    }
    for (size_t i = 1; i < outs.size(); ++i) {
      expect_same(outs[i], outs[0],
                  "forward, " + std::to_string(i + 1) + " threads");
      expect_same(grads[i], grads[0],
                  "backward, " + std::to_string(i + 1) + " threads");
    }
  }
}

TEST(CpuOps, DeterministicForAFixedThreadCount) {
  runtime::CallOptions options;
  options.num_threads = 2;
  auto matmul = CpuOp("matmul.blas", "matmul");
  const std::vector<Tensor> in = {RandomTensor({8, 96, 256}, kF32, 51),
                                  RandomTensor({384, 256}, kF32, 52)};
  const AttrList attrs = {{"transpose_b", true}};
  const std::vector<double> first =
      RunForward(*matmul, in, attrs, options)[0].ToDoubles();
  for (int i = 0; i < 3; ++i)
    EXPECT_EQ(RunForward(*matmul, in, attrs, options)[0].ToDoubles(), first);
}

// The best of `reps` calls of `f`: wall seconds and process CPU seconds
// (every thread's). On a loaded machine the CPU time is the steadier one.
struct Timing {
  double wall = INFINITY, cpu = INFINITY;
};

double CpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) +
         1e-9 * static_cast<double>(ts.tv_nsec);
}

Timing Time(int reps, const std::function<void()>& f) {
  Timing best;
  for (int i = 0; i < reps; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    const double c0 = CpuSeconds();
    f();
    const double cpu = CpuSeconds() - c0;
    const double wall =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0)
            .count();
    best.wall = std::min(best.wall, wall);
    best.cpu = std::min(best.cpu, cpu);
  }
  return best;
}

TEST(CpuOps, MicroBenchmark) {
  std::printf("OpenBLAS core: %s (OPENBLAS_CORETYPE=%s)\n", BlasCore().c_str(),
              std::getenv("OPENBLAS_CORETYPE")
                  ? std::getenv("OPENBLAS_CORETYPE")
                  : "unset");
  for (int threads : {1, 2}) {
    runtime::CallOptions options;
    options.num_threads = threads;
    {
      const std::vector<Tensor> in = {RandomTensor({512, 512}, kF32, 61),
                                      RandomTensor({512, 512}, kF32, 62)};
      auto cpu = CpuOp("matmul.blas", "matmul");
      auto ref = ReferenceOp("matmul");
      const Timing t_cpu = Time(5, [&] { RunForward(*cpu, in, {}, options); });
      const Timing t_ref =
          threads == 1 ? Time(1, [&] { RunForward(*ref, in, {}, options); })
                       : Timing{NAN, NAN};
      std::printf(
          "[%d thread(s)] matmul 512^3 forward: reference %.1f ms (cpu %.1f "
          "ms), matmul.blas %.2f ms (cpu %.2f ms; %.1f GFLOPS wall)\n",
          threads, t_ref.wall * 1e3, t_ref.cpu * 1e3, t_cpu.wall * 1e3,
          t_cpu.cpu * 1e3, 2.0 * 512 * 512 * 512 / t_cpu.wall / 1e9);
    }
    {
      const std::vector<Tensor> in = {RandomTensor({2, 4, 64, 32}, kF32, 63),
                                      RandomTensor({2, 4, 64, 32}, kF32, 64),
                                      RandomTensor({2, 4, 64, 32}, kF32, 65),
                                      Tensor()};
      const AttrList attrs = {{"causal", true}};
      const Tensor w = RandomTensor({2, 4, 64, 32}, kF32, 66);
      auto cpu = CpuOp("attention.blas", "attention");
      auto ref = ReferenceOp("attention");
      const Timing t_cpu =
          Time(20, [&] { RunBackward(*cpu, in, attrs, w, options); });
      const Timing t_ref =
          Time(3, [&] { RunBackward(*ref, in, attrs, w, options); });
      std::printf(
          "[%d thread(s)] attention fwd+bwd B=2 H=4 N=64 D=32 causal: "
          "reference %.2f ms (cpu %.2f ms), attention.blas %.3f ms (cpu %.3f "
          "ms)\n",
          threads, t_ref.wall * 1e3, t_ref.cpu * 1e3, t_cpu.wall * 1e3,
          t_cpu.cpu * 1e3);
    }
  }
}

}  // namespace
}  // namespace llmsys::plugins_test
