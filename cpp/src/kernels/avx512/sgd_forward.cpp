// AVX-512's own copy of ../simd/sgd_forward.inc (see there), compiled with this folder's flags.
#include <utility>

#include "fastmlp/kernels.h"
#include "vec.h"

namespace fastmlp::avx512 {
#include "../kernel_decls.inc"
// Accumulators per column block: the rest of the 32 vector registers hold a row's operands.
constexpr int kSgdForwardVectors = 12;
#include "../simd/sgd_forward.inc"
}  // namespace fastmlp::avx512
