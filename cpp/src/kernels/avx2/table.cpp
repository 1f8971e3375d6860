#include "fastmlp/kernels.h"

namespace fastmlp::avx2 {
#include "../kernel_decls.inc"
#define FASTMLP_ISA_NAME "avx2"
#include "../isa_table.inc"
}  // namespace fastmlp::avx2
