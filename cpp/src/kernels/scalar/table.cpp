#include "fastmlp/kernels.h"

namespace fastmlp::scalar {
#include "../kernel_decls.inc"
#define FASTMLP_ISA_NAME "scalar"
#include "../isa_table.inc"
}  // namespace fastmlp::scalar
