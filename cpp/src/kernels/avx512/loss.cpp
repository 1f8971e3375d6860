// AVX-512's own copy of ../simd/loss.inc (see there), compiled with this folder's flags.
#include "fastmlp/kernels.h"
#include "row_chunks.h"
#include "vec_math.h"

namespace fastmlp::avx512 {
#include "../kernel_decls.inc"
#include "../simd/loss.inc"
}  // namespace fastmlp::avx512
