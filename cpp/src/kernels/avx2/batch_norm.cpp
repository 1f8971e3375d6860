// AVX2's own copy of ../simd/batch_norm.inc (see there), compiled with this folder's flags.
#include "fastmlp/kernels.h"
#include "row_chunks.h"

namespace fastmlp::avx2 {
#include "../kernel_decls.inc"
#include "../simd/batch_norm.inc"
}  // namespace fastmlp::avx2
