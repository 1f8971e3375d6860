// AVX2's own copy of ../simd/vec_math.inc (see there). Internal linkage, AVX2
// translation units only (see vec.h).
#pragma once

#include <math.h>
#include "vec.h"

namespace fastmlp::avx2 {
namespace {
#include "../simd/vec_math.inc"
}  // namespace
}  // namespace fastmlp::avx2
