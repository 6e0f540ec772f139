// TODO(helper): the reference reductions operators.
#include "plugins/operators/reference/common.h"

namespace llmsys::reference {

void RegisterReductions(sdk::Registry& registry) { (void)registry; }

}  // namespace llmsys::reference
