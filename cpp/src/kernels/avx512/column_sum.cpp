// AVX-512's own copy of ../simd/column_sum.inc (see there), compiled with this folder's flags.
#include "fastmlp/kernels.h"
#include "row_chunks.h"

namespace fastmlp::avx512 {
#include "../kernel_decls.inc"
#include "../simd/column_sum.inc"
}  // namespace fastmlp::avx512
