// AVX-512's own copy of ../simd/fma_peak_loop.inc (see there), compiled with this folder's flags.
#include "fastmlp/kernels.h"
#include "vec.h"

namespace fastmlp::avx512 {
#include "../kernel_decls.inc"
#include "../simd/fma_peak_loop.inc"
}  // namespace fastmlp::avx512
