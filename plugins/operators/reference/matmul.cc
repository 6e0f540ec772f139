// TODO(helper): the reference matmul operators.
#include "plugins/operators/reference/common.h"

namespace llmsys::reference {

void RegisterMatmul(sdk::Registry& registry) { (void)registry; }

}  // namespace llmsys::reference
