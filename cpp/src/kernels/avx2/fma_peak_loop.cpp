// AVX2's own copy of ../simd/fma_peak_loop.inc (see there), compiled with this folder's flags.
#include "fastmlp/kernels.h"
#include "vec.h"

namespace fastmlp::avx2 {
#include "../kernel_decls.inc"
#include "../simd/fma_peak_loop.inc"
}  // namespace fastmlp::avx2
