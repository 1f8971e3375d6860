// The ways fit runs a training step, and the one place that chooses among them: a table listed
// best first (steps/choose_step.cpp), as dispatch.cpp chooses an instruction set. Every step
// gives the same bits for every thread count; only the speed differs.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace fastmlp {

// Best first, as in the table.
enum class StepKind {
  vector,    // steps/vector_step.cpp: a batch of one row as matrix-vector products
  pipeline,  // steps/pipeline_step.cpp: the first layer split by input features
  rows,      // steps/rows_step.cpp: the batch split by rows
  columns,   // steps/columns_step.cpp: each product split by output columns
};

// What the table reads about a step before it runs.
struct StepFacts {
  std::size_t threads = 1;       // the pool's threads
  std::size_t parts = 1;         // threads the row split would use for this batch (Trainer::row_parts)
  std::size_t widest_layer = 0;  // units of the widest layer
  bool row_split_fits = false;   // no dropout nor batch normalization, and the row split's buffers were had
  bool pipeline_fits = false;    // FeaturePipeline::supports(net, parts)
  bool last_step_sparse = false; // the last step's inputs took the sparse path (this one's guess)
  bool vector_fits = false;      // one row, VectorPass::supports(net), and its lists were had
};

// The step for a batch: the first in the table that can run and pays; with a step forced
// (FASTMLP_STEP, set_step), the first from the forced one on that can run.
StepKind choose_step(const StepFacts& facts);
// The step to run when `failed` could not run after all (the pool was busy, its buffers could
// not be had): the next in the table that can run. The column split always can.
StepKind fallback_step(StepKind failed, const StepFacts& facts);
const char* step_name(StepKind kind);

// The steps' names, best first.
std::vector<std::string> available_steps();
// The forced step's name, or "auto" when the table chooses.
std::string active_step();
// Forces a step ("auto": the table chooses). Throws std::invalid_argument for an unknown name,
// listing the available ones.
void set_step(const std::string& name);
// Applies FASTMLP_STEP if set and not empty (same errors as set_step, named), else "auto".
void select_step_from_environment();

}  // namespace fastmlp
