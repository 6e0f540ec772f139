// framework/runtime/couplings.h — the host side of call_couplings
// (llmsys/host.h, ABI 1.1): a stack of additive coupling layers run without
// keeping their activations, and a backward that rebuilds each layer's
// input from its output and recomputes F and G one at a time (Gomez et al.,
// "The Reversible Residual Network", 2017).
//
// Forward (recording on) runs every F and G under no_grad, with the model's
// own add/sub op calls in between, so the random stream (dropout) advances
// exactly as if the layers were written out as op calls; it records one
// node whose only saved tensors are the final halves. Its backward, for
// layer L..1, with (y1, y2) the layer's output and (dy1, dy2) their
// gradients:
//   regular (y1 = x1 + F(x2), y2 = x2 + G(y1)):
//     g = G(y1) recomputed;  x2 = y2 - g;  dy1 += (dG/dy1)^T dy2
//     f = F(x2) recomputed;  x1 = y1 - f;  dx2 = dy2 + (dF/dx2)^T dy1
//     dx1 = dy1
//   inverse (x2 = y2 - G(y1), x1 = y1 - F(x2), read from (a1, a2) = (y1, y2)
//   to (b1, b2) = (x1, x2)):
//     f = F(b2) recomputed;  a1 = b1 + f;  db2 -= (dF/db2)^T db1
//     g = G(a1) recomputed;  a2 = b2 + g;  da1 = db1 - (dG/da1)^T db2
//     da2 = db2
// Each recomputation replays the random stream of its forward call, and
// the parameters' gradients accumulate as the recomputed F and G run their
// own backward. Without recording the layers simply run.
//
// Thread-safety: the training thread, as every graph function.
#ifndef LLMSYS_FRAMEWORK_RUNTIME_COUPLINGS_H_
#define LLMSYS_FRAMEWORK_RUNTIME_COUPLINGS_H_

#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "framework/autograd/autograd.h"
#include "framework/runtime/graph.h"
#include "llmsys/host.h"

namespace llmsys::runtime {

// Runs `layers` on (x1, x2) with `graph`'s dispatcher and parameters.
// Errors: a function's failure (its message, naming the layer and F or
// G), a function returning a value of another shape or dtype.
absl::StatusOr<std::pair<autograd::Var, autograd::Var>> RunCouplings(
    Graph& graph, const std::vector<llmsys_coupling_t>& layers,
    const autograd::Var& x1, const autograd::Var& x2,
    const std::vector<autograd::Var>& context);

}  // namespace llmsys::runtime

#endif  // LLMSYS_FRAMEWORK_RUNTIME_COUPLINGS_H_
