// TODO(helper): tests of the reference dropout operators.
#include <gtest/gtest.h>

#include "tests/plugins/operators/reference_test_util.h"
