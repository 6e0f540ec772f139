// TODO(helper): the reference softmax operators.
#include "plugins/operators/reference/common.h"

namespace llmsys::reference {

void RegisterSoftmax(sdk::Registry& registry) { (void)registry; }

}  // namespace llmsys::reference
