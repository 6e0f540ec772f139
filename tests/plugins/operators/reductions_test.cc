// TODO(helper): tests of the reference reductions operators.
#include <gtest/gtest.h>

#include "tests/plugins/operators/reference_test_util.h"
