// Sizes shared by the two ways a network runs a training step (network.cpp, steps/row_split.cpp).
// Only speed depends on them: every kernel choice gives the same bits.
#pragma once

#include <cstddef>

namespace fastmlp {

// Batches up to this many rows skip gemm (its packing costs more than it saves there); the sparse
// kernel with every index listed runs the same FMA chains.
constexpr std::size_t kSmallBatch = 4;

}  // namespace fastmlp
