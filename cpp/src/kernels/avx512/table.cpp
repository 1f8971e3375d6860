#include "fastmlp/kernels.h"

namespace fastmlp::avx512 {
#include "../kernel_decls.inc"
#define FASTMLP_ISA_NAME "avx512"
#include "../isa_table.inc"
}  // namespace fastmlp::avx512
