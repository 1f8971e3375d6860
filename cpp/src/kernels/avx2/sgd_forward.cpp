// AVX2's own copy of ../simd/sgd_forward.inc (see there), compiled with this folder's flags.
#include <utility>

#include "fastmlp/kernels.h"
#include "vec.h"

namespace fastmlp::avx2 {
#include "../kernel_decls.inc"
// Accumulators per column block: the rest of the 16 vector registers hold a row's operands.
constexpr int kSgdForwardVectors = 7;
#include "../simd/sgd_forward.inc"
}  // namespace fastmlp::avx2
