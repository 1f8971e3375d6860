// AVX-512's own copy of ../simd/vec_math.inc (see there). Internal linkage, AVX-512
// translation units only (see vec.h).
#pragma once

#include <math.h>
#include "vec.h"

namespace fastmlp::avx512 {
namespace {
#include "../simd/vec_math.inc"
}  // namespace
}  // namespace fastmlp::avx512
