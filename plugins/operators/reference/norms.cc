// TODO(helper): the reference norms operators.
#include "plugins/operators/reference/common.h"

namespace llmsys::reference {

void RegisterNorms(sdk::Registry& registry) { (void)registry; }

}  // namespace llmsys::reference
