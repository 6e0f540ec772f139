// TODO(helper): tests of the reference matmul operators.
#include <gtest/gtest.h>

#include "tests/plugins/operators/reference_test_util.h"
