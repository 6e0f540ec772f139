// TODO(helper): tests of the reference shape_ops operators.
#include <gtest/gtest.h>

#include "tests/plugins/operators/reference_test_util.h"
