// AVX-512's own copy of ../simd/row_chunks.inc (see there). Internal linkage, AVX-512
// translation units only (see vec.h).
#pragma once

#include "vec.h"

namespace fastmlp::avx512 {
namespace {
#include "../simd/row_chunks.inc"
}  // namespace
}  // namespace fastmlp::avx512
