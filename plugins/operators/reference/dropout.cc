// TODO(helper): the reference dropout operators.
#include "plugins/operators/reference/common.h"

namespace llmsys::reference {

void RegisterDropout(sdk::Registry& registry) { (void)registry; }

}  // namespace llmsys::reference
