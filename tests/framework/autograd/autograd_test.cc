// Autograd over op calls through the dispatcher (reference operators):
// gradients, accumulation, no_grad, detach, views, freeing the graph and
// the errors around backward.
#include "framework/autograd/autograd.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "framework/autograd/views.h"
#include "framework/runtime/dispatch.h"
#include "framework/runtime/registry.h"
#include "framework/tensor/host_math.h"

namespace llmsys::autograd {
namespace {

using runtime::OpDispatcher;
using tensor::kF64;
using tensor::Shape;

class AutogradTest : public ::testing::Test {
 protected:
  static runtime::PluginRegistry& Registry() {
    static runtime::PluginRegistry* r = [] {
      auto* reg = new runtime::PluginRegistry;
      EXPECT_TRUE(reg->LoadFile(std::string(LLMSYS_BUILTIN_PLUGIN_DIR) +
                                "/reference.so")
                      .ok());
      EXPECT_TRUE(reg->LoadFile(std::string(LLMSYS_TEST_PLUGIN_DIR) +
                                "/wrong_ops/wrong_ops.so")
                      .ok());
      return reg;
    }();
    return *r;
  }
  AutogradTest() : ops_(&Registry(), tensor::kCpu) {
    // The wrong_ops plugin is loaded for one test; use the reference.
    EXPECT_TRUE(ops_.Configure({{"add", "reference"},
                                {"exp", "reference"},
                                {"relu", "reference"}})
                    .ok());
  }

  Var Leaf(const Shape& shape, std::vector<double> v, bool grad = true) {
    return MakeLeaf(*Tensor::FromDoubles(shape, v, kF64), grad, "w");
  }
  Var Call(const std::string& op, std::vector<Var> in,
           runtime::AttrList attrs = {}) {
    absl::StatusOr<std::vector<Var>> out = ops_.Call(op, in, attrs);
    EXPECT_TRUE(out.ok()) << out.status();
    return out.ok() ? (*out)[0] : nullptr;
  }
  Var Sum(Var x) { return Call("sum", {x}); }

  OpDispatcher ops_;
};

TEST_F(AutogradTest, GradientOfAProductOfAFunction) {
  Var w = Leaf({3}, {0.1, -0.2, 0.3});
  Var x = Leaf({3}, {1, 2, 3}, /*grad=*/false);
  Var loss = Sum(Call("mul", {Call("exp", {w}), x}));  // sum(exp(w) * x)
  ASSERT_TRUE(loss->requires_grad);
  ASSERT_TRUE(Backward(loss).ok());
  std::vector<double> g = w->grad.ToDoubles();
  for (int i = 0; i < 3; ++i)
    EXPECT_NEAR(g[i], std::exp(w->data.ToDoubles()[i]) * (i + 1), 1e-12);
  EXPECT_FALSE(x->grad.defined());
}

TEST_F(AutogradTest, GradientsAccumulateAcrossBackwardAndWithinAGraph) {
  Var w = Leaf({2}, {1.5, -2});
  Var loss = Sum(Call("mul", {w, w}));  // w used twice: d/dw = 2w
  ASSERT_TRUE(Backward(loss).ok());
  EXPECT_EQ(w->grad.ToDoubles(), (std::vector<double>{3, -4}));
  Var again = Sum(Call("mul", {w, w}));
  ASSERT_TRUE(Backward(again).ok());  // accumulates: 4w
  EXPECT_EQ(w->grad.ToDoubles(), (std::vector<double>{6, -8}));
}

// on_leaf_ready: once per leaf reached, after its last gradient, with the
// gradient complete; a leaf used twice is reported once, after both.
TEST_F(AutogradTest, EachLeafIsReportedOnceWhenItsGradientIsComplete) {
  Var w = Leaf({2}, {1.5, -2});
  Var u = Leaf({2}, {1, 1});
  Var unused = Leaf({2}, {0, 0});
  Var x = Leaf({2}, {3, 4}, /*grad=*/false);
  // sum(w * w + exp(u) * x): w twice, u once, x needs none.
  Var loss = Sum(
      Call("add", {Call("mul", {w, w}), Call("mul", {Call("exp", {u}), x})}));
  std::vector<std::string> seen;
  BackwardOptions options;
  options.on_leaf_ready = [&](const Var& leaf) {
    seen.push_back(leaf == w ? "w" : leaf == u ? "u" : "other");
    if (leaf == w) {
      EXPECT_EQ(w->grad.ToDoubles(), (std::vector<double>{3, -4}));
    }
  };
  ASSERT_TRUE(Backward(loss, {}, options).ok());
  std::sort(seen.begin(), seen.end());
  EXPECT_EQ(seen, (std::vector<std::string>{"u", "w"}));
  EXPECT_FALSE(unused->grad.defined());
  // A leaf as the root is reported too.
  seen.clear();
  ASSERT_TRUE(Backward(Leaf({}, {2}), {}, options).ok());
  EXPECT_EQ(seen, (std::vector<std::string>{"other"}));
}

// add's inputs of the output's shape (and sub's first) take the output's
// gradient itself; the leaves still own separate gradients, and a
// broadcast input still gets its sum from the implementation.
TEST_F(AutogradTest, AddAndSubPassTheGradientOnWithoutSharingLeafGradients) {
  Var a = Leaf({2, 2}, {1, 2, 3, 4});
  Var b = Leaf({2, 2}, {5, 6, 7, 8});
  Var row = Leaf({2}, {1, 1});
  // loss = sum((a + b) * 3 - row) + sum(a + a)
  Var ab = Call("add", {a, b});
  Var three = Leaf({}, {3}, /*grad=*/false);
  Var loss = Call("add", {Sum(Call("sub", {Call("mul", {ab, three}), row})),
                          Sum(Call("add", {a, a}))});
  ASSERT_TRUE(Backward(loss).ok());
  EXPECT_EQ(a->grad.ToDoubles(), (std::vector<double>{5, 5, 5, 5}));
  EXPECT_EQ(b->grad.ToDoubles(), (std::vector<double>{3, 3, 3, 3}));
  EXPECT_EQ(row->grad.ToDoubles(), (std::vector<double>{-2, -2}));
  EXPECT_NE(a->grad.data(), b->grad.data());
  // Each leaf's gradient is its own: changing one leaves the other.
  ASSERT_TRUE(tensor::AddInto(a->grad, b->grad).ok());
  EXPECT_EQ(a->grad.ToDoubles(), (std::vector<double>{8, 8, 8, 8}));
  EXPECT_EQ(b->grad.ToDoubles(), (std::vector<double>{3, 3, 3, 3}));
}

TEST_F(AutogradTest, NoGradAndDetachRecordNothing) {
  Var w = Leaf({2}, {1, 2});
  {
    NoGradGuard no_grad;
    EXPECT_FALSE(GradEnabled());
    Var y = Sum(Call("mul", {w, w}));
    EXPECT_FALSE(y->requires_grad);
    EXPECT_EQ(y->grad_fn, nullptr);
    absl::Status s = Backward(y);
    EXPECT_TRUE(absl::IsInvalidArgument(s));
    EXPECT_NE(s.message().find("does not require a gradient"),
              std::string::npos)
        << s;
  }
  EXPECT_TRUE(GradEnabled());
  Var d = Detach(Call("mul", {w, w}));
  EXPECT_FALSE(d->requires_grad);
  Var loss = Sum(Call("mul", {d, w}));  // only the second factor
  ASSERT_TRUE(Backward(loss).ok());
  EXPECT_EQ(w->grad.ToDoubles(), (std::vector<double>{1, 4}));
}

TEST_F(AutogradTest, TheGraphIsFreedAfterBackwardUnlessRetained) {
  Var w = Leaf({2}, {1, 2});
  Var loss = Sum(Call("exp", {w}));
  ASSERT_TRUE(Backward(loss, {}, {.retain_graph = true}).ok());
  ASSERT_TRUE(Backward(loss).ok());  // retained: runs again, frees
  absl::Status twice = Backward(loss);
  EXPECT_TRUE(absl::IsFailedPrecondition(twice)) << twice;
  EXPECT_NE(twice.message().find("a second time"), std::string::npos) << twice;
  EXPECT_NE(twice.message().find("retain_graph"), std::string::npos);
}

TEST_F(AutogradTest, NonScalarNeedsAGradient) {
  Var w = Leaf({2}, {1, 2});
  Var y = Call("mul", {w, w});
  absl::Status s = Backward(y);
  EXPECT_TRUE(absl::IsInvalidArgument(s));
  EXPECT_NE(s.message().find("non-scalar"), std::string::npos) << s;
  ASSERT_TRUE(Backward(y, *Tensor::FromDoubles({2}, {1, 10}, kF64)).ok());
  EXPECT_EQ(w->grad.ToDoubles(), (std::vector<double>{2, 40}));
  EXPECT_FALSE(Backward(Leaf({}, {1}), *Tensor::FromDoubles({2}, {1, 1}, kF64))
                   .ok());  // wrong gradient shape
}

TEST_F(AutogradTest, GradientsFlowThroughViews) {
  Var w = Leaf({2, 3}, {1, 2, 3, 4, 5, 6});
  // sum(slice(w, dim 1, every other column) * 2)
  Var s = *ApplyView(ViewKind::kSlice, w, {1, 0, 3, 2});
  Var two = Leaf({}, {2}, false);
  ASSERT_TRUE(Backward(Sum(Call("mul", {s, two}))).ok());
  EXPECT_EQ(w->grad.ToDoubles(), (std::vector<double>{2, 0, 2, 2, 0, 2}));

  // Reshape of a transpose needs a copy; the gradient still arrives.
  Var v = Leaf({2, 3}, {1, 2, 3, 4, 5, 6});
  Var t = *ApplyView(ViewKind::kPermute, v, {1, 0});  // (3, 2)
  Var flat = *ApplyView(ViewKind::kReshape, t, {6});  // copies
  Var c = Leaf({6}, {1, 2, 3, 4, 5, 6}, false);       // weights
  ASSERT_TRUE(Backward(Sum(Call("mul", {flat, c}))).ok());
  // flat = v^T flattened = [1, 4, 2, 5, 3, 6]; d/dv[i][j] = c[j*2 + i]
  EXPECT_EQ(v->grad.ToDoubles(), (std::vector<double>{1, 3, 5, 2, 4, 6}));

  Var row = Leaf({1, 3}, {1, 2, 3});
  Var e = *ApplyView(ViewKind::kExpand, row, {4, 3});
  ASSERT_TRUE(Backward(Sum(e)).ok());
  EXPECT_EQ(row->grad.ToDoubles(), (std::vector<double>{4, 4, 4}));

  Var cut = *ApplyView(ViewKind::kDetach, row, {});
  EXPECT_FALSE(cut->requires_grad);
  absl::StatusOr<Var> bad = ApplyView(ViewKind::kSlice, row, {0, 1});
  EXPECT_FALSE(bad.ok());
}

// Slices of one computed tensor add their gradients into one buffer (the
// q, k, v of a fused projection): overlapping, strided, and beside a use
// of the whole tensor, the sums are exact.
TEST_F(AutogradTest, SlicesOfOneTensorSumTheirGradientsInOneBuffer) {
  Var w = Leaf({2, 6}, {0.1, 0.2, 0.3, 0.4, 0.5, 0.6, -0.1, -0.2, -0.3, -0.4,
                        -0.5, -0.6});
  Var y = Call("exp", {w});
  auto weighted = [&](Var v, double k) {
    return Sum(Call("mul", {v, Leaf({}, {k}, false)}));
  };
  Var a = *ApplyView(ViewKind::kSlice, y, {1, 0, 2, 1});   // cols 0, 1
  Var b = *ApplyView(ViewKind::kSlice, y, {1, 2, 4, 1});   // cols 2, 3
  Var ov = *ApplyView(ViewKind::kSlice, y, {1, 1, 5, 2});  // cols 1, 3
  Var loss = Call("add", {Call("add", {weighted(a, 1), weighted(b, 2)}),
                          Call("add", {weighted(ov, 3), weighted(y, 10)})});
  ASSERT_TRUE(Backward(loss).ok());
  const double coef[6] = {11, 14, 12, 15, 10, 10};
  const std::vector<double> wv = w->data.ToDoubles(), g = w->grad.ToDoubles();
  for (int i = 0; i < 12; ++i)
    EXPECT_NEAR(g[i], std::exp(wv[i]) * coef[i % 6], 1e-12) << i;
}

TEST_F(AutogradTest, AuxOutputsAndIntegerOutputsNeedNoGradient) {
  Var x = Leaf({2, 4}, {1, 2, 3, 4, 5, 6, 7, 9});
  absl::StatusOr<std::vector<Var>> ln =
      ops_.Call("layer_norm", {x, nullptr, nullptr});
  ASSERT_TRUE(ln.ok()) << ln.status();
  ASSERT_EQ(ln->size(), 3u);
  EXPECT_TRUE((*ln)[0]->requires_grad);
  EXPECT_FALSE((*ln)[1]->requires_grad);  // mean
  EXPECT_FALSE((*ln)[2]->requires_grad);  // rstd
}

TEST_F(AutogradTest, AnImplementationWithoutBackwardFailsAtBackward) {
  OpDispatcher ops(&Registry(), tensor::kCpu);
  ASSERT_TRUE(ops.Configure({{"add", "wrong"}}).ok());
  // A broadcast input: its gradient is a sum the implementation must make
  // (an input of the output's shape takes the output's gradient as is).
  Var w = MakeLeaf(*Tensor::FromDoubles({1}, {2}, tensor::kF32), true);
  Var x =
      MakeLeaf(*Tensor::FromDoubles({2, 2}, {1, 2, 3, 4}, tensor::kF32), true);
  absl::StatusOr<std::vector<Var>> y = ops.Call("add", {x, w});
  ASSERT_TRUE(y.ok()) << y.status();
  absl::Status s = Backward(
      (*y)[0], *Tensor::FromDoubles({2, 2}, {1, 1, 1, 1}, tensor::kF32));
  EXPECT_TRUE(absl::IsUnimplemented(s)) << s;
  EXPECT_NE(s.message().find("add.wrong has no backward"), std::string::npos)
      << s;
}

}  // namespace
}  // namespace llmsys::autograd
