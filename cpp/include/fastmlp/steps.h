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
  // The pool's threads; 1 when the batch is too small to share (`alone`).
  std::size_t threads = 1;
  std::size_t parts = 1;         // threads the row split would use for this batch (Trainer::row_parts)
  // The pool has threads to spare, but the batch is under two parts' worth of work
  // (min_row_part_work): the step runs on the caller alone, as with one thread.
  bool alone = false;
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

// The least work (multiply-adds of a batch's forward pass, nominal, dense) that pays for a part of
// the row split on a thread of its own (Trainer::row_parts); below two parts' worth a batch runs
// on the caller alone. Any value gives the same bits; tests lower it so that small models still
// run in several parts. n >= 1.
std::size_t min_row_part_work();
void set_min_row_part_work(std::size_t n);

}  // namespace fastmlp
