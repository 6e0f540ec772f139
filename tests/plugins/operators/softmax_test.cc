// TODO(helper): tests of the reference softmax operators.
#include <gtest/gtest.h>

#include "tests/plugins/operators/reference_test_util.h"
