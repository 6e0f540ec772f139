// llmsys.reference: the reference CPU implementation of every standard op,
// forward and backward. It is the oracle the conformance suite checks every
// other implementation against (llmsys plugins check), so it is written to
// be read, not to be fast: plain loops, one shape comment per tensor.
#include "plugins/operators/reference/common.h"

LLMSYS_PLUGIN("llmsys.reference", "1.0.0",
              "Reference CPU operators: the oracle for every standard op",
              "MIT") {
  llmsys::reference::RegisterElementwise(registry);
  llmsys::reference::RegisterReductions(registry);
  llmsys::reference::RegisterShapeOps(registry);
  llmsys::reference::RegisterMatmul(registry);
  llmsys::reference::RegisterNorms(registry);
  llmsys::reference::RegisterSoftmax(registry);
  llmsys::reference::RegisterDropout(registry);
  llmsys::reference::RegisterAttention(registry);
  llmsys::reference::RegisterCtc(registry);
}
