// TODO(helper): the reference shape_ops operators.
#include "plugins/operators/reference/common.h"

namespace llmsys::reference {

void RegisterShapeOps(sdk::Registry& registry) { (void)registry; }

}  // namespace llmsys::reference
