// AVX-512's own copies of ../simd/row_chunks.inc and row_groups.inc (see there). Internal linkage, AVX-512
// translation units only (see vec.h).
#pragma once

#include "vec.h"

namespace fastmlp::avx512 {
namespace {
#include "../simd/row_chunks.inc"
#include "../simd/row_groups.inc"
}  // namespace
}  // namespace fastmlp::avx512
