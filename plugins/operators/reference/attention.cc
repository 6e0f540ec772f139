// TODO(helper): the reference attention operators.
#include "plugins/operators/reference/common.h"

namespace llmsys::reference {

void RegisterAttention(sdk::Registry& registry) { (void)registry; }

}  // namespace llmsys::reference
